//! `trainyard run files` and `trainyard run download`.

use anyhow::Context;
use clap::Args;
use reqwest::Method;
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use uuid::Uuid;

use super::client::{Client, ConnectionArgs};
use super::{short_time, table};

/// What to download.
#[derive(Debug, Args)]
pub struct DownloadArgs {
    #[command(flatten)]
    connection: ConnectionArgs,
    /// One file, as `run files` lists it (`outputs/model.bin`); without it,
    /// every file as one tar.gz.
    #[arg(long, value_name = "P")]
    path: Option<String>,
    /// With the archive, only files under this folder (`outputs`).
    #[arg(long, value_name = "FOLDER", conflicts_with = "path")]
    prefix: Option<String>,
    /// Where to write it; `-` for standard output [default: the file's name,
    /// or run-<id>.tar.gz].
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// The run's id.
    run_id: Uuid,
}

/// `run files`: a table of path, size and time stored.
pub async fn list(client: &Client, run_id: Uuid) -> anyhow::Result<i32> {
    let listing: Value = client
        .get(&["runs", &run_id.to_string(), "files"], &[])
        .await?;
    let items = listing["items"].as_array().cloned().unwrap_or_default();
    if items.is_empty() {
        eprintln!("run {run_id} has no files (they are kept when a run ends)");
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|file| {
            vec![
                file["path"].as_str().unwrap_or_default().to_string(),
                file["size"].as_u64().unwrap_or_default().to_string(),
                short_time(&file["modified"]),
            ]
        })
        .collect();
    table(&["PATH", "SIZE", "MODIFIED"], &rows)?;
    Ok(0)
}

/// `run download`: one file or the archive, streamed to disk.
pub async fn download(args: DownloadArgs) -> anyhow::Result<i32> {
    let client = args.connection.connect()?;
    let id = args.run_id.to_string();
    let (url, query, default_name) = match &args.path {
        Some(path) => {
            let name = path
                .trim_end_matches('/')
                .rsplit('/')
                .next()
                .filter(|n| !n.is_empty() && *n != "." && *n != "..")
                .with_context(|| format!("--path {path:?} names no file"))?
                .to_string();
            (
                client.url(&["runs", &id, "files", "download"]),
                vec![("path", path.clone())],
                name,
            )
        }
        None => (
            client.url(&["runs", &id, "files", "archive"]),
            args.prefix.iter().map(|p| ("prefix", p.clone())).collect(),
            format!("run-{id}.tar.gz"),
        ),
    };
    // Asked before a file is created, so an error answer never lands in it.
    let mut response = client
        .send(client.request(Method::GET, url).query(&query))
        .await?;
    let target = args.out.unwrap_or_else(|| PathBuf::from(default_name));
    if target == Path::new("-") {
        let mut stdout = std::io::stdout().lock();
        while let Some(chunk) = response.chunk().await.context("downloading")? {
            stdout.write_all(&chunk)?;
        }
        stdout.flush()?;
        return Ok(0);
    }
    let mut file =
        std::fs::File::create(&target).with_context(|| format!("creating {}", target.display()))?;
    let mut written: u64 = 0;
    let copied: anyhow::Result<()> = async {
        while let Some(chunk) = response.chunk().await.context("downloading")? {
            file.write_all(&chunk)
                .with_context(|| format!("writing {}", target.display()))?;
            written += chunk.len() as u64;
        }
        file.flush()?;
        Ok(())
    }
    .await;
    if let Err(err) = copied {
        // Leave no truncated file that looks complete.
        let _ = std::fs::remove_file(&target);
        return Err(err);
    }
    eprintln!("wrote {} ({written} bytes)", target.display());
    Ok(0)
}
