//! Content-addressed blobs: files copied once by their SHA-256, so that a
//! dataset or model version keeps its bytes whatever happens to the source.

use futures::StreamExt;
use sha2::{Digest, Sha256};
use std::path::Path;
use tokio::io::AsyncWriteExt;

use crate::error::Result;
use crate::Storage;

/// The key of the blob with this hash.
pub fn blob_key(sha256: &str) -> String {
    format!("blobs/{sha256}")
}

impl Storage {
    /// Copies `key` of `source` into this store's blobs, streaming (memory
    /// stays flat), and returns its SHA-256 and size. A blob already present
    /// is not written again.
    pub async fn store_blob_from(&self, source: &Storage, key: &str) -> Result<(String, u64)> {
        let mut stream = source.get_stream(key).await?;
        let temp = tempfile::NamedTempFile::new()?;
        let mut file = tokio::fs::File::from_std(temp.reopen()?);
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            hasher.update(&chunk);
            size += chunk.len() as u64;
            file.write_all(&chunk).await?;
        }
        file.flush().await?;
        let sha256 = hex::encode(hasher.finalize());
        let blob = blob_key(&sha256);
        if !self.exists(&blob).await? {
            self.put_file(&blob, temp.path()).await?;
        }
        Ok((sha256, size))
    }

    /// Lays out `files` (path in the tree, blob hash) under `dir` as hard
    /// links to the blobs (copies where links are impossible). Only a local
    /// store can do this; returns `false` otherwise.
    pub async fn materialize(&self, files: &[(String, String)], dir: &Path) -> Result<bool> {
        for (path, sha256) in files {
            let Some(blob) = self.local_path(&blob_key(sha256)) else {
                return Ok(false);
            };
            crate::store::check_key(path)?;
            let target = dir.join(path);
            if let Some(parent) = target.parent() {
                tokio::fs::create_dir_all(parent).await?;
            }
            if tokio::fs::metadata(&target).await.is_ok() {
                continue;
            }
            if tokio::fs::hard_link(&blob, &target).await.is_err() {
                tokio::fs::copy(&blob, &target).await?;
            }
        }
        Ok(true)
    }
}
