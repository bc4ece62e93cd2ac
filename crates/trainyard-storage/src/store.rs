//! [`Storage`]: keyed bytes over an object_store backend.

use crate::error::{Result, StorageError};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::stream::{BoxStream, StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::buffered::BufWriter;
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::{Path as ObjectPath, PathPart};
use object_store::prefix::PrefixStore;
use object_store::{ObjectMeta, ObjectStore};
use std::path::Path;
use std::sync::Arc;
use tokio::io::{AsyncWriteExt, BufReader};

/// Read size when streaming a local file up.
const FILE_CHUNK: usize = 1024 * 1024;

/// Parts of one upload in flight at once; with object_store's 10 MiB parts
/// this bounds an upload's memory to about 40 MiB however big the file.
const MAX_PARTS_IN_FLIGHT: usize = 4;

/// One stored object, as listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredObject {
    /// The key, relative to the prefix that was listed.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// When the object was last written.
    pub modified: DateTime<Utc>,
}

/// Where Trainyard keeps every byte that is not a database row, cheap to clone.
///
/// Keys are `/`-separated relative paths such as `snapshots/<digest>.tar.gz`.
/// A key may hold any UTF-8 except control characters; it may not be empty,
/// start with `/`, or have empty, `.` or `..` segments.
#[derive(Clone, Debug)]
pub struct Storage {
    store: Arc<dyn ObjectStore>,
    /// The folder of a local store, where objects are plain files.
    root: Option<std::path::PathBuf>,
}

/// Applies object_store configuration keys to a builder, naming a key the
/// service does not know.
fn configured<B, K: std::str::FromStr>(
    mut builder: B,
    options: &[(String, String)],
    service: &str,
    apply: impl Fn(B, K, &str) -> B,
) -> Result<B> {
    for (key, value) in options {
        let parsed = key
            .parse::<K>()
            .map_err(|_| StorageError::invalid(format!("{key:?} is not an option of {service}")))?;
        builder = apply(builder, parsed, value);
    }
    Ok(builder)
}

impl Storage {
    /// Files under `root`, which is created if missing.
    pub fn local(root: &Path) -> Result<Storage> {
        std::fs::create_dir_all(root)?;
        let store = LocalFileSystem::new_with_prefix(root)
            .map_err(StorageError::Store)?
            // Deleting a run's files should not leave empty folders behind.
            .with_automatic_cleanup(true);
        Ok(Storage {
            store: Arc::new(store),
            root: Some(root.canonicalize()?),
        })
    }

    /// The store a datastore URL names: `file:///folder` on the server's
    /// machine, `s3://bucket/prefix`, `az://container/prefix` (Azure Blob) or
    /// `gs://bucket/prefix`. `options` are object_store's configuration keys
    /// for that service (`aws_region`, `aws_endpoint`,
    /// `azure_storage_account_name`, `google_service_account_key`, …) with
    /// their values; a path in the URL becomes the prefix of every key.
    pub fn from_url(url: &str, options: &[(String, String)]) -> Result<Storage> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| StorageError::invalid("must be a file://, s3://, az:// or gs:// URL"))?;
        if scheme == "file" {
            if !rest.starts_with('/') {
                return Err(StorageError::invalid(
                    "a file:// URL needs an absolute path, e.g. file:///data/mnist",
                ));
            }
            if let Some((key, _)) = options.first() {
                return Err(StorageError::invalid(format!(
                    "a file:// datastore takes no options; {key:?} was given"
                )));
            }
            return Storage::local(Path::new(rest));
        }
        let (container, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if container.is_empty() {
            return Err(StorageError::invalid(format!(
                "name the bucket or container: {scheme}://NAME/optional/prefix"
            )));
        }
        let store: Arc<dyn ObjectStore> = match scheme {
            "s3" => Arc::new(
                configured(
                    AmazonS3Builder::new().with_url(url),
                    options,
                    "S3",
                    |b, k: AmazonS3ConfigKey, v| b.with_config(k, v),
                )?
                .build()
                .map_err(StorageError::Store)?,
            ),
            "az" => Arc::new(
                configured(
                    MicrosoftAzureBuilder::new().with_url(url),
                    options,
                    "Azure Blob",
                    |b, k: AzureConfigKey, v| b.with_config(k, v),
                )?
                .build()
                .map_err(StorageError::Store)?,
            ),
            "gs" => Arc::new(
                configured(
                    GoogleCloudStorageBuilder::new().with_url(url),
                    options,
                    "Google Cloud Storage",
                    |b, k: GoogleConfigKey, v| b.with_config(k, v),
                )?
                .build()
                .map_err(StorageError::Store)?,
            ),
            other => {
                return Err(StorageError::invalid(format!(
                    "{other}:// is not a datastore scheme; use file://, s3://, az:// or gs://"
                )))
            }
        };
        let prefix = prefix.trim_end_matches('/');
        let store = if prefix.is_empty() {
            store
        } else {
            Arc::new(PrefixStore::new(store, prefix))
        };
        Ok(Storage::from_store(store))
    }

    /// Everything in memory, gone on drop (tests, throwaway servers).
    pub fn in_memory() -> Storage {
        Storage::from_store(Arc::new(InMemory::new()))
    }

    /// Any other backend, configured by the caller.
    pub fn from_store(store: Arc<dyn ObjectStore>) -> Storage {
        Storage { store, root: None }
    }

    /// The file holding `key` on a local store, for keys whose segments need
    /// no encoding (hashes, plain names); `None` for other stores and keys.
    pub fn local_path(&self, key: &str) -> Option<std::path::PathBuf> {
        let plain = key.split('/').all(|s| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        });
        if check_key(key).is_err() || !plain {
            return None;
        }
        self.root.as_ref().map(|root| root.join(key))
    }

    /// Stores `bytes` under `key`, replacing what was there.
    pub async fn put(&self, key: &str, bytes: Bytes) -> Result<()> {
        let path = key_path(key)?;
        self.store
            .put(&path, bytes.into())
            .await
            .map_err(StorageError::on_key(key))?;
        Ok(())
    }

    /// Stores the file at `path` under `key`, streaming it in parts.
    ///
    /// Returns the number of bytes stored.
    pub async fn put_file(&self, key: &str, path: &Path) -> Result<u64> {
        let location = key_path(key)?;
        let file = tokio::fs::File::open(path).await?;
        let mut reader = BufReader::with_capacity(FILE_CHUNK, file);
        let mut writer = self.writer(location);
        match tokio::io::copy_buf(&mut reader, &mut writer).await {
            Ok(written) => {
                writer.shutdown().await?;
                Ok(written)
            }
            Err(err) => {
                // Best effort: the copy error is the one worth reporting.
                let _ = writer.abort().await;
                Err(err.into())
            }
        }
    }

    /// The whole object under `key`, in memory.
    pub async fn get(&self, key: &str) -> Result<Bytes> {
        let path = key_path(key)?;
        let on_err = StorageError::on_key(key);
        match self.store.get(&path).await {
            Ok(got) => got.bytes().await.map_err(on_err),
            Err(err) => Err(on_err(err)),
        }
    }

    /// The object under `key` as a stream of chunks.
    ///
    /// A missing key fails here, before the first chunk, so that an HTTP
    /// handler can still answer 404.
    pub async fn get_stream(&self, key: &str) -> Result<BoxStream<'static, Result<Bytes>>> {
        let (_, stream) = self.open(key).await?;
        Ok(stream)
    }

    /// Writes the object under `key` to a new file at `path`, streaming.
    ///
    /// Returns the number of bytes written.
    pub async fn get_file(&self, key: &str, path: &Path) -> Result<u64> {
        let (_, mut stream) = self.open(key).await?;
        let mut file = tokio::fs::File::create(path).await?;
        let mut written = 0;
        while let Some(chunk) = stream.try_next().await? {
            file.write_all(&chunk).await?;
            written += chunk.len() as u64;
        }
        file.flush().await?;
        Ok(written)
    }

    /// Size and modification time of the object under `key`.
    ///
    /// The returned [`StoredObject::key`] is `key` itself.
    pub async fn head(&self, key: &str) -> Result<StoredObject> {
        let path = key_path(key)?;
        let meta = self
            .store
            .head(&path)
            .await
            .map_err(StorageError::on_key(key))?;
        Ok(stored(key.to_owned(), &meta))
    }

    /// Whether an object is stored under `key`.
    pub async fn exists(&self, key: &str) -> Result<bool> {
        match self.head(key).await {
            Ok(_) => Ok(true),
            Err(StorageError::NotFound { .. }) => Ok(false),
            Err(err) => Err(err),
        }
    }

    /// Every object under `prefix` (a folder, not a string prefix: `runs/a`
    /// does not list `runs/ab`), sorted by key. `""` lists everything.
    pub async fn list(&self, prefix: &str) -> Result<Vec<StoredObject>> {
        let base = prefix_path(prefix)?;
        let metas: Vec<ObjectMeta> = self
            .store
            .list(base.as_ref())
            .try_collect()
            .await
            .map_err(StorageError::on_key(prefix))?;
        let empty = ObjectPath::default();
        let base = base.unwrap_or(empty);
        let mut objects: Vec<StoredObject> = metas
            .iter()
            .filter_map(|meta| {
                let parts = meta.location.prefix_match(&base)?;
                let key = parts
                    .map(|part| decode_part(part.as_ref()))
                    .collect::<Vec<_>>()
                    .join("/");
                Some(stored(key, meta))
            })
            .collect();
        objects.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(objects)
    }

    /// Deletes the object under `key`; deleting a missing key is not an error.
    pub async fn delete(&self, key: &str) -> Result<()> {
        let path = key_path(key)?;
        match self.store.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(err) => Err(StorageError::Store(err)),
        }
    }

    /// Deletes every object under `prefix`; returns how many there were.
    pub async fn delete_prefix(&self, prefix: &str) -> Result<u64> {
        let objects = self.list(prefix).await?;
        for object in &objects {
            self.delete(&join_key(prefix, &object.key)).await?;
        }
        Ok(objects.len() as u64)
    }

    /// Copies the object under `from` to `to`, replacing what was there.
    pub async fn copy(&self, from: &str, to: &str) -> Result<()> {
        let (source, target) = (key_path(from)?, key_path(to)?);
        self.store
            .copy(&source, &target)
            .await
            .map_err(StorageError::on_key(from))
    }

    /// Metadata and a chunk stream for `key`, from one request.
    pub(crate) async fn open(
        &self,
        key: &str,
    ) -> Result<(StoredObject, BoxStream<'static, Result<Bytes>>)> {
        let path = key_path(key)?;
        let got = self
            .store
            .get(&path)
            .await
            .map_err(StorageError::on_key(key))?;
        let object = stored(key.to_owned(), &got.meta);
        let owned_key = key.to_owned();
        let stream = got
            .into_stream()
            .map_err(move |err| StorageError::on_key(&owned_key)(err))
            .boxed();
        Ok((object, stream))
    }

    /// A streaming writer for `location`: one put when small, multipart otherwise.
    pub(crate) fn writer(&self, location: ObjectPath) -> BufWriter {
        BufWriter::new(Arc::clone(&self.store), location).with_max_concurrency(MAX_PARTS_IN_FLIGHT)
    }
}

/// Checks `key` and encodes it as a backend path.
///
/// Each segment is percent-encoded the object_store way, so that names such
/// as `ckpt#100` or `a%b` survive every backend; [`Storage::list`] decodes.
pub(crate) fn key_path(key: &str) -> Result<ObjectPath> {
    check_key(key)?;
    Ok(ObjectPath::from_iter(key.split('/').map(PathPart::from)))
}

/// The backend path for a listing prefix; `None` for everything.
fn prefix_path(prefix: &str) -> Result<Option<ObjectPath>> {
    let prefix = prefix.strip_suffix('/').unwrap_or(prefix);
    if prefix.is_empty() {
        return Ok(None);
    }
    key_path(prefix).map(Some)
}

/// Refuses keys that could escape a folder or that backends disagree on.
pub(crate) fn check_key(key: &str) -> Result<()> {
    if key.is_empty() {
        return Err(StorageError::invalid("key is empty"));
    }
    if key.starts_with('/') {
        return Err(StorageError::invalid(format!(
            "key {key:?} starts with '/'"
        )));
    }
    for segment in key.split('/') {
        let problem = match segment {
            "" => "an empty segment",
            "." | ".." => "a '.' or '..' segment",
            s if s.chars().any(char::is_control) => "a control character",
            _ => continue,
        };
        return Err(StorageError::invalid(format!("key {key:?} has {problem}")));
    }
    Ok(())
}

/// `prefix/key`, or `key` alone under the empty prefix.
pub(crate) fn join_key(prefix: &str, key: &str) -> String {
    let prefix = prefix.strip_suffix('/').unwrap_or(prefix);
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}/{key}")
    }
}

fn decode_part(part: &str) -> String {
    percent_encoding::percent_decode_str(part)
        .decode_utf8_lossy()
        .into_owned()
}

fn stored(key: String, meta: &ObjectMeta) -> StoredObject {
    StoredObject {
        key,
        size: meta.size,
        modified: meta.last_modified,
    }
}
