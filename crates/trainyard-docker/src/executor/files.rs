//! Files the run writes: `./logs` (tailed into the run's log while it runs)
//! and `./outputs` (kept as the run's artifacts when it ends).

use chrono::Utc;
use std::io::Read;
use trainyard_core::run_spec::WORKDIR;
use trainyard_storage::Storage;
use uuid::Uuid;

use super::supervise::Sources;
use super::writer::LogWriter;
use crate::{DockerError, Engine};

/// The object-store prefix of a run's files.
pub fn run_files_prefix(run_id: Uuid) -> String {
    format!("runs/{run_id}")
}

/// Reads every file under the container's `./logs` into the run's log, one
/// source per file (`logs/train.log`). While the run runs, a last line
/// without its line break is left for a later pass; `final_pass` takes it.
pub(crate) async fn tail_logs_dir(
    engine: &Engine,
    container: &str,
    writer: &mut LogWriter,
    final_pass: bool,
    sources: &Sources,
) -> Result<(), DockerError> {
    let Some(archive) = engine
        .download_dir(container, &format!("{WORKDIR}/logs"))
        .await?
    else {
        return Ok(());
    };
    let mut files = Vec::new();
    let mut reader = tar::Archive::new(&archive[..]);
    let entries = reader
        .entries()
        .map_err(|e| DockerError::Other(format!("reading ./logs: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| DockerError::Other(format!("reading ./logs: {e}")))?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry
            .path()
            .map_err(|e| DockerError::Other(format!("reading ./logs: {e}")))?
            .display()
            .to_string();
        let mut bytes = Vec::new();
        entry
            .read_to_end(&mut bytes)
            .map_err(|e| DockerError::Other(format!("reading ./logs: {e}")))?;
        files.push((path, bytes));
    }
    files.sort();
    let now = Utc::now();
    for (path, bytes) in files {
        // The archive's first component is the directory itself: `logs/…`.
        let source = sources.logs_file(path);
        let mut lines = crate::lines::split_all(&bytes);
        if !final_pass && !bytes.ends_with(b"\n") {
            lines.pop();
        }
        writer.restart(&source);
        for line in lines {
            writer.offer(&source, now, line);
        }
    }
    Ok(())
}

/// Copies the container's `./outputs` and `./logs` into the run's files;
/// those of rank N > 0 of a distributed run go under `outputs/rank-N/` and
/// `logs/rank-N/`. Returns how many files were kept.
pub(crate) async fn collect_files(
    engine: &Engine,
    storage: &Storage,
    container: &str,
    run_id: Uuid,
    rank: Option<u32>,
) -> Result<usize, DockerError> {
    let mut kept = 0;
    for dir in ["outputs", "logs"] {
        let Some(archive) = engine
            .download_dir(container, &format!("{WORKDIR}/{dir}"))
            .await?
        else {
            continue;
        };
        let prefix = match rank {
            Some(rank) if rank > 0 => format!("{}/{dir}/rank-{rank}", run_files_prefix(run_id)),
            _ => format!("{}/{dir}", run_files_prefix(run_id)),
        };
        let stored =
            trainyard_storage::unpack_into(storage, &prefix, std::io::Cursor::new(archive))
                .await
                .map_err(|e| DockerError::Other(format!("keeping ./{dir}: {e}")))?;
        kept += stored.len();
    }
    Ok(kept)
}
