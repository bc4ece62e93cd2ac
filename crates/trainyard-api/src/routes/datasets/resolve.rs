//! Turning a registration's paths, globs and URLs into the files of a
//! version, each copied into the content-addressed blobs.

use futures::StreamExt;
use globset::{Glob, GlobMatcher};
use std::collections::BTreeMap;
use tokio::io::AsyncWriteExt;
use trainyard_db::datasets::DatasetFile;
use trainyard_storage::{blob_key, Storage};

use crate::error::ApiError;
use crate::routes::datastores::{check_relative, DatastoreFiles};

/// Most bytes one URL may bring.
const MAX_URL_BYTES: u64 = 16 * 1024 * 1024 * 1024;

/// One path of a registration: a file, a folder (everything under it), or a glob.
enum Selector {
    Prefix(String),
    Glob(GlobMatcher),
}

fn selector(field: &str, pattern: &str) -> Result<Selector, ApiError> {
    check_relative(field, pattern.trim_end_matches('/'))?;
    if pattern.contains(['*', '?', '[', '{']) {
        let glob = Glob::new(pattern)
            .map_err(|e| ApiError::invalid(field, format!("is not a valid glob: {e}")))?;
        Ok(Selector::Glob(glob.compile_matcher()))
    } else {
        Ok(Selector::Prefix(pattern.trim_end_matches('/').to_string()))
    }
}

/// The files of `datastore` that `patterns` select, copied into blobs.
pub(super) async fn files_from_datastore(
    blobs: &Storage,
    datastore: &DatastoreFiles,
    patterns: &[String],
) -> Result<BTreeMap<String, DatasetFile>, ApiError> {
    let listing = datastore
        .storage
        .list(&datastore.prefix)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let mut chosen: BTreeMap<String, DatasetFile> = BTreeMap::new();
    for (i, pattern) in patterns.iter().enumerate() {
        let field = format!("paths[{i}]");
        let selector = selector(&field, pattern)?;
        let matches: Vec<&str> = listing
            .iter()
            .map(|o| o.key.as_str())
            .filter(|key| match &selector {
                Selector::Prefix(prefix) => {
                    *key == prefix || key.starts_with(&format!("{prefix}/"))
                }
                Selector::Glob(glob) => glob.is_match(key),
            })
            .collect();
        if matches.is_empty() {
            return Err(ApiError::invalid(
                field,
                format!("{pattern:?} matches no file in the datastore"),
            ));
        }
        for key in matches {
            if chosen.contains_key(key) {
                continue;
            }
            let (sha256, size) = blobs
                .store_blob_from(&datastore.storage, &datastore.key(key))
                .await
                .map_err(|e| ApiError::Internal(e.to_string()))?;
            chosen.insert(
                key.to_string(),
                DatasetFile {
                    path: key.to_string(),
                    size,
                    sha256,
                },
            );
        }
    }
    Ok(chosen)
}

/// Fetches each URL into a blob (cached by content hash); the file is named
/// after the URL's last path segment.
pub(super) async fn files_from_urls(
    blobs: &Storage,
    urls: &[String],
) -> Result<BTreeMap<String, DatasetFile>, ApiError> {
    let client = reqwest::Client::new();
    let mut chosen = BTreeMap::new();
    for (i, url) in urls.iter().enumerate() {
        let field = format!("urls[{i}]");
        let parsed =
            reqwest::Url::parse(url).map_err(|_| ApiError::invalid(&field, "is not a URL"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(ApiError::invalid(&field, "must be an http or https URL"));
        }
        let name = parsed
            .path_segments()
            .and_then(|mut s| s.next_back())
            .filter(|s| !s.is_empty())
            .unwrap_or("index")
            .to_string();
        check_relative(&field, &name)?;
        let response = client
            .get(parsed.clone())
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| ApiError::invalid(&field, format!("could not be fetched: {e}")))?;
        let temp = tempfile::NamedTempFile::new().map_err(|e| ApiError::Internal(e.to_string()))?;
        let mut file = tokio::fs::File::from_std(
            temp.reopen()
                .map_err(|e| ApiError::Internal(e.to_string()))?,
        );
        let mut hasher = <sha2::Sha256 as sha2::Digest>::new();
        let mut size = 0u64;
        let mut body = response.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk
                .map_err(|e| ApiError::invalid(&field, format!("could not be fetched: {e}")))?;
            size += chunk.len() as u64;
            if size > MAX_URL_BYTES {
                return Err(ApiError::invalid(
                    &field,
                    format!("is larger than {MAX_URL_BYTES} bytes"),
                ));
            }
            sha2::Digest::update(&mut hasher, &chunk);
            file.write_all(&chunk)
                .await
                .map_err(|e| ApiError::Internal(e.to_string()))?;
        }
        file.flush()
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        let sha256 = hex::encode(sha2::Digest::finalize(hasher));
        let key = blob_key(&sha256);
        if !blobs
            .exists(&key)
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?
        {
            blobs
                .put_file(&key, temp.path())
                .await
                .map_err(|e| ApiError::Internal(e.to_string()))?;
        }
        if chosen.contains_key(&name) {
            return Err(ApiError::invalid(
                &field,
                format!("another URL is also named {name:?}"),
            ));
        }
        chosen.insert(
            name.clone(),
            DatasetFile {
                path: name,
                size,
                sha256,
            },
        );
    }
    Ok(chosen)
}
