//! Dataset inputs: copied into the container before it starts (download), or
//! bind-mounted read-only from the version's files on the node (mount).

use std::path::{Path, PathBuf};
use trainyard_core::{InputMode, RunInput};
use trainyard_db::datasets::DatasetFile;
use trainyard_storage::{blob_key, Storage};

use super::{Executor, Stop};

impl Executor {
    /// Prepares every input: returns the bind mounts to create the container
    /// with; downloads are copied in by [`Executor::copy_downloads`].
    pub(super) async fn mount_inputs(&self, inputs: &[RunInput]) -> Result<Vec<String>, Stop> {
        let mut binds = Vec::new();
        for input in inputs.iter().filter(|i| i.mode == InputMode::Mount) {
            if !self.engine.is_local() {
                return Err(Stop::Failed(format!(
                    "input {:?} asks for a mount, but the node's Docker engine is on another machine and cannot see the dataset's files; use download mode",
                    input.name
                )));
            }
            let files = self.dataset_files(input).await?;
            let dir = self.config.mounts_dir.join(input.dataset_id.to_string());
            let pairs: Vec<(String, String)> = files
                .iter()
                .map(|f| (f.path.clone(), f.sha256.clone()))
                .collect();
            let laid_out = self
                .storage
                .materialize(&pairs, &dir)
                .await
                .map_err(|e| Stop::Failed(format!("preparing input {:?}: {e}", input.name)))?;
            if !laid_out {
                return Err(Stop::Failed(format!(
                    "input {:?} asks for a mount, but the server's object store is not a folder this node can see; use download mode",
                    input.name
                )));
            }
            binds.push(format!("{}:{}:ro", dir.display(), input.path));
        }
        Ok(binds)
    }

    /// Copies the files of every download input into the created container.
    pub(super) async fn copy_downloads(
        &self,
        container: &str,
        inputs: &[RunInput],
    ) -> Result<(), Stop> {
        for input in inputs.iter().filter(|i| i.mode == InputMode::Download) {
            let files = self.dataset_files(input).await?;
            let archive = build_archive(&self.storage, &files, input.path.trim_start_matches('/'))
                .await
                .map_err(|e| Stop::Failed(format!("preparing input {:?}: {e}", input.name)))?;
            self.engine
                .upload_archive_file(container, "/", archive.path())
                .await?;
        }
        Ok(())
    }

    async fn dataset_files(&self, input: &RunInput) -> Result<Vec<DatasetFile>, Stop> {
        let dataset = self
            .db
            .dataset_by_id(input.dataset_id)
            .await
            .map_err(|e| Stop::Failed(format!("reading input {:?}: {e}", input.name)))?;
        Ok(dataset.files.0)
    }
}

/// A tar (on disk, so memory stays flat) of `files` under `root`.
async fn build_archive(
    storage: &Storage,
    files: &[DatasetFile],
    root: &str,
) -> std::io::Result<tempfile::NamedTempFile> {
    let archive = tempfile::NamedTempFile::new()?;
    let staging = tempfile::tempdir()?;
    let mut builder = tar::Builder::new(archive.reopen()?);
    for file in files {
        // Each blob goes through a temporary file so the tar writer, which
        // needs its size up front, never holds it in memory.
        let local = staging.path().join(&file.sha256);
        if !local.exists() {
            storage
                .get_file(&blob_key(&file.sha256), &local)
                .await
                .map_err(|e| std::io::Error::other(e.to_string()))?;
        }
        let mut header = tar::Header::new_gnu();
        header.set_size(file.size);
        header.set_mode(0o644);
        header.set_cksum();
        let name: PathBuf = Path::new(root).join(&file.path);
        builder.append_data(&mut header, name, std::fs::File::open(&local)?)?;
    }
    builder.finish()?;
    Ok(archive)
}
