//! Run files: storing a container folder's tar stream, and handing back
//! everything under a prefix as one tar.gz.
//!
//! `tar` is a blocking library, so both functions run it on a blocking
//! thread and drive storage from there with [`Handle::block_on`].

use crate::entries::{confined, is_regular, unreadable, COPY_CHUNK};
use crate::error::{Result, StorageError};
use crate::store::{check_key, join_key, key_path};
use crate::{Storage, StoredObject};
use bytes::{Buf, Bytes};
use flate2::write::GzEncoder;
use flate2::Compression;
use futures::stream::{BoxStream, StreamExt};
use std::collections::HashSet;
use std::io::{self, Read, Seek, Write};
use std::path::Path;
use tempfile::NamedTempFile;
use tokio::io::AsyncWriteExt;
use tokio::runtime::Handle;

/// Stores every regular file of the (uncompressed) tar stream `tar_reader`
/// under `prefix`; returns them as listed afterwards, keys relative to
/// `prefix`.
///
/// The first path component of each entry is dropped, as Docker's archive
/// API names the folder itself first: `outputs/model.bin` is stored as
/// `<prefix>/model.bin`. Folders, symlinks (wherever they point) and special
/// files are skipped; hard links are stored as copies. Absolute entries,
/// entries with `..`, and names that cannot be keys are refused with
/// [`StorageError::Invalid`]; files stored before that stay stored.
///
/// To feed it an async byte stream (bollard's `download_from_container`),
/// wrap it in `tokio_util::io::SyncIoBridge`.
pub async fn unpack_into<R>(
    storage: &Storage,
    prefix: &str,
    tar_reader: R,
) -> Result<Vec<StoredObject>>
where
    R: Read + Send + 'static,
{
    let base = prefix.strip_suffix('/').unwrap_or(prefix).to_owned();
    if !base.is_empty() {
        check_key(&base)?;
    }
    let (worker, task_base) = (storage.clone(), base.clone());
    let keys =
        blocking(move |handle| store_entries(&handle, &worker, &task_base, tar_reader)).await?;
    let mut stored = storage.list(&base).await?;
    stored.retain(|object| keys.contains(&object.key));
    Ok(stored)
}

/// Writes everything under `prefix` into a tar.gz temporary file, paths
/// relative to `prefix`, each file with its modification time. The file is
/// rewound, ready to read.
pub async fn archive(storage: &Storage, prefix: &str) -> Result<NamedTempFile> {
    let objects = storage.list(prefix).await?;
    let base = prefix.strip_suffix('/').unwrap_or(prefix).to_owned();
    let worker = storage.clone();
    blocking(move |handle| write_archive(&handle, &worker, &base, &objects)).await
}

/// Runs `work` on a blocking thread, handing it the runtime to block on.
async fn blocking<T, F>(work: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce(Handle) -> Result<T> + Send + 'static,
{
    let handle = Handle::current();
    match tokio::task::spawn_blocking(move || work(handle)).await {
        Ok(result) => result,
        Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
        Err(err) => Err(StorageError::Io(io::Error::other(err))),
    }
}

/// The loop of [`unpack_into`]; returns the relative keys stored.
fn store_entries(
    handle: &Handle,
    storage: &Storage,
    base: &str,
    tar_reader: impl Read,
) -> Result<HashSet<String>> {
    let mut archive = tar::Archive::new(tar_reader);
    let mut keys = HashSet::new();
    let mut buf = vec![0; COPY_CHUNK];
    for entry in archive.entries().map_err(unreadable)? {
        let mut entry = entry.map_err(unreadable)?;
        let Some(rel) = below_first(&entry.path().map_err(unreadable)?)? else {
            continue;
        };
        let kind = entry.header().entry_type();
        if kind.is_hard_link() {
            let target = entry.link_name().map_err(unreadable)?.unwrap_or_default();
            let target = below_first(&target)?;
            // Only links to a file already stored can be copied.
            if let Some(target) = target.filter(|t| *t != rel && keys.contains(t)) {
                let (from, to) = (join_key(base, &target), join_key(base, &rel));
                handle.block_on(storage.copy(&from, &to))?;
                keys.insert(rel);
            }
            continue;
        }
        if !is_regular(kind) {
            continue;
        }
        put_reader(handle, storage, &join_key(base, &rel), &mut entry, &mut buf)?;
        keys.insert(rel);
    }
    Ok(keys)
}

/// An entry's path without its first component, as a checked key; `None`
/// for the folder's own entry.
fn below_first(path: &Path) -> Result<Option<String>> {
    let inside = confined(path)?;
    let mut parts = Vec::new();
    for part in inside.iter().skip(1) {
        let part = part.to_str().ok_or_else(|| {
            StorageError::invalid(format!("entry {} is not UTF-8", path.display()))
        })?;
        parts.push(part);
    }
    if parts.is_empty() {
        return Ok(None);
    }
    let key = parts.join("/");
    check_key(&key)?;
    Ok(Some(key))
}

/// Streams `reader` to `key`, chunk by chunk.
fn put_reader(
    handle: &Handle,
    storage: &Storage,
    key: &str,
    reader: &mut impl Read,
    buf: &mut [u8],
) -> Result<u64> {
    let mut writer = storage.writer(key_path(key)?);
    let mut total = 0u64;
    let copied: Result<()> = loop {
        let read = match reader.read(buf) {
            Ok(0) => break Ok(()),
            Ok(read) => read,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => break Err(unreadable(err)),
        };
        if let Err(err) = handle.block_on(writer.write_all(&buf[..read])) {
            break Err(err.into());
        }
        total += read as u64;
    };
    match copied {
        Ok(()) => {
            handle.block_on(writer.shutdown())?;
            Ok(total)
        }
        Err(err) => {
            // Best effort: the copy error is the one worth reporting.
            let _ = handle.block_on(writer.abort());
            Err(err)
        }
    }
}

/// The loop of [`archive`].
fn write_archive(
    handle: &Handle,
    storage: &Storage,
    base: &str,
    objects: &[StoredObject],
) -> Result<NamedTempFile> {
    let mut temp = NamedTempFile::new()?;
    let gz = GzEncoder::new(io::BufWriter::new(temp.as_file_mut()), Compression::new(6));
    let mut tar = tar::Builder::new(gz);
    for object in objects {
        let key = join_key(base, &object.key);
        let (found, stream) = match handle.block_on(storage.open(&key)) {
            Ok(opened) => opened,
            // Deleted since it was listed.
            Err(StorageError::NotFound { .. }) => continue,
            Err(err) => return Err(err),
        };
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(found.size);
        header.set_mode(0o644);
        header.set_mtime(u64::try_from(found.modified.timestamp()).unwrap_or(0));
        header.set_uid(0);
        header.set_gid(0);
        let mut reader = BlockingReader::new(handle, stream).take(found.size);
        tar.append_data(&mut header, &object.key, &mut reader)?;
        if reader.limit() != 0 {
            return Err(StorageError::Io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{key} shrank while it was being archived"),
            )));
        }
    }
    tar.into_inner()?.finish()?.flush()?;
    temp.as_file_mut().rewind()?;
    Ok(temp)
}

/// A blocking [`Read`] over an object's chunk stream.
struct BlockingReader<'h> {
    handle: &'h Handle,
    stream: BoxStream<'static, Result<Bytes>>,
    chunk: Bytes,
}

impl<'h> BlockingReader<'h> {
    fn new(handle: &'h Handle, stream: BoxStream<'static, Result<Bytes>>) -> BlockingReader<'h> {
        BlockingReader {
            handle,
            stream,
            chunk: Bytes::new(),
        }
    }
}

impl Read for BlockingReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.chunk.is_empty() {
            match self.handle.block_on(self.stream.next()) {
                Some(chunk) => self.chunk = chunk?,
                None => return Ok(0),
            }
        }
        let len = buf.len().min(self.chunk.len());
        buf[..len].copy_from_slice(&self.chunk[..len]);
        self.chunk.advance(len);
        Ok(len)
    }
}
