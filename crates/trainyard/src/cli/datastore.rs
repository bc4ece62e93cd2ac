//! `trainyard datastore`: list datastores, upload a folder to one with a
//! progress bar, download its files back.

use anyhow::Context;
use clap::{Args, Subcommand};
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use reqwest::Method;
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::client::{Client, ConnectionArgs};
use super::table;

/// `trainyard datastore …`
#[derive(Debug, Subcommand)]
pub enum DatastoreCommand {
    /// Lists the workspace's datastores.
    List(ConnectionArgs),
    /// Uploads a local folder (or one file) to a datastore path.
    Upload(UploadArgs),
    /// Downloads a datastore's files (under a prefix) into a local folder.
    Download(DownloadArgs),
}

/// What to upload, and where.
#[derive(Debug, Args)]
pub struct UploadArgs {
    #[command(flatten)]
    connection: ConnectionArgs,
    /// The datastore.
    #[arg(long, default_value = "default")]
    datastore: String,
    /// The folder on the datastore the files go under (`mnist`).
    #[arg(long, value_name = "PATH")]
    target: Option<String>,
    /// Replace files that exist; otherwise they are skipped.
    #[arg(long)]
    overwrite: bool,
    /// The local folder or file.
    source: PathBuf,
}

/// What to download, and where.
#[derive(Debug, Args)]
pub struct DownloadArgs {
    #[command(flatten)]
    connection: ConnectionArgs,
    /// The datastore.
    #[arg(long, default_value = "default")]
    datastore: String,
    /// Only files under this folder of the datastore.
    #[arg(long, value_name = "FOLDER")]
    prefix: Option<String>,
    /// Replace local files that exist; otherwise they are skipped.
    #[arg(long)]
    overwrite: bool,
    /// The local folder the files go into, keeping their paths.
    target: PathBuf,
}

/// Runs a `datastore` command; returns the exit status.
pub async fn execute(command: DatastoreCommand) -> anyhow::Result<i32> {
    match command {
        DatastoreCommand::List(connection) => list(&connection.connect()?).await,
        DatastoreCommand::Upload(args) => upload(args).await,
        DatastoreCommand::Download(args) => download(args).await,
    }
}

async fn list(client: &Client) -> anyhow::Result<i32> {
    let listing: Value = client.get(&["datastores"], &[]).await?;
    let rows: Vec<Vec<String>> = listing["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| {
            let text = |key: &str| d[key].as_str().unwrap_or_default().to_string();
            vec![text("name"), text("kind"), text("url")]
        })
        .collect();
    table(&["NAME", "KIND", "URL"], &rows)?;
    Ok(0)
}

/// A bar of bytes over `total`, drawn on standard error when it is a terminal.
fn byte_bar(total: u64, verb: &str) -> ProgressBar {
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{verb} [{{bar:30}}] {{bytes}}/{{total_bytes}} {{bytes_per_sec}} {{msg}}"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar
}

/// The regular files under `source` with their `/`-separated paths relative
/// to it (a file alone keeps its name).
fn local_files(source: &Path) -> anyhow::Result<Vec<(PathBuf, String, u64)>> {
    if source.is_file() {
        let name = source
            .file_name()
            .context("the source names no file")?
            .to_string_lossy()
            .into_owned();
        return Ok(vec![(source.to_path_buf(), name, source.metadata()?.len())]);
    }
    let mut files = Vec::new();
    for entry in walkdir::WalkDir::new(source).sort_by_file_name() {
        let entry = entry.with_context(|| format!("reading {}", source.display()))?;
        if !entry.file_type().is_file() {
            continue;
        }
        let relative = entry.path().strip_prefix(source)?;
        let path = relative
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        files.push((entry.path().to_path_buf(), path, entry.metadata()?.len()));
    }
    Ok(files)
}

async fn upload(args: UploadArgs) -> anyhow::Result<i32> {
    let client = args.connection.connect()?;
    let files = local_files(&args.source)?;
    let total: u64 = files.iter().map(|(_, _, size)| size).sum();
    let bar = byte_bar(total, "Uploading");
    let (mut uploaded, mut skipped) = (0, 0);
    let target = args.target.as_deref().unwrap_or("").trim_matches('/');
    for (local, relative, size) in &files {
        let path = if target.is_empty() {
            relative.clone()
        } else {
            format!("{target}/{relative}")
        };
        bar.set_message(path.clone());
        let file = tokio::fs::File::open(local)
            .await
            .with_context(|| format!("opening {}", local.display()))?;
        let progress = bar.clone();
        let stream =
            tokio_util::io::ReaderStream::with_capacity(file, 1 << 20).inspect(move |chunk| {
                if let Ok(chunk) = chunk {
                    progress.inc(chunk.len() as u64);
                }
            });
        let request = client
            .request(
                Method::PUT,
                client.url(&["datastores", &args.datastore, "files"]),
            )
            .query(&[
                ("path", path.as_str()),
                ("overwrite", &args.overwrite.to_string()),
            ])
            .header(reqwest::header::CONTENT_LENGTH, *size)
            .body(reqwest::Body::wrap_stream(stream));
        match client.send(request).await {
            Ok(_) => uploaded += 1,
            Err(err) if is_conflict(&err) => {
                bar.println(format!(
                    "skipped {path}: it exists (--overwrite replaces it)"
                ));
                skipped += 1;
            }
            Err(err) => {
                bar.abandon();
                return Err(err);
            }
        }
    }
    bar.finish_and_clear();
    eprintln!(
        "uploaded {uploaded} file(s), {total} bytes in all, to {}:{target}; skipped {skipped}",
        args.datastore
    );
    Ok(0)
}

fn is_conflict(err: &anyhow::Error) -> bool {
    err.downcast_ref::<super::client::ApiProblem>()
        .is_some_and(|problem| problem.status == 409)
}

async fn download(args: DownloadArgs) -> anyhow::Result<i32> {
    let client = args.connection.connect()?;
    let query: Vec<(&str, String)> = args.prefix.iter().map(|p| ("prefix", p.clone())).collect();
    let listing: Value = client
        .get(&["datastores", &args.datastore, "files"], &query)
        .await?;
    let items: Vec<(String, u64)> = listing["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| Some((f["path"].as_str()?.to_string(), f["size"].as_u64()?)))
        .collect();
    let bar = byte_bar(items.iter().map(|(_, size)| size).sum(), "Downloading");
    let mut written = 0;
    for (path, _) in &items {
        let safe = !path.is_empty() && path.split('/').all(|p| !p.is_empty() && p != "..");
        anyhow::ensure!(
            safe,
            "the server listed a path outside the datastore: {path:?}"
        );
        let local = args.target.join(path);
        if local.exists() && !args.overwrite {
            bar.println(format!(
                "skipped {}: it exists (--overwrite replaces it)",
                local.display()
            ));
            continue;
        }
        if let Some(parent) = local.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut response = client
            .send(
                client
                    .request(
                        Method::GET,
                        client.url(&["datastores", &args.datastore, "files", "download"]),
                    )
                    .query(&[("path", path)]),
            )
            .await?;
        let mut file = std::fs::File::create(&local)
            .with_context(|| format!("creating {}", local.display()))?;
        while let Some(chunk) = response.chunk().await.context("downloading")? {
            file.write_all(&chunk)?;
            bar.inc(chunk.len() as u64);
        }
        written += 1;
    }
    bar.finish_and_clear();
    eprintln!(
        "downloaded {written} of {} file(s) into {}",
        items.len(),
        args.target.display()
    );
    Ok(0)
}
