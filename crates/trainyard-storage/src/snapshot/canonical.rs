//! The canonical tar.gz: one byte sequence per content.
//!
//! Entries sorted by path; mtime 0, uid/gid 0, no user or group names; mode
//! 0755 for folders and executable files, 0644 for other files; gzip level
//! [`GZIP_LEVEL`] with no name or time in its header, compressed by flate2's
//! miniz_oxide backend (a zlib backend enabled elsewhere in the build would
//! compress differently). Changing any of this changes every digest.

use super::{IgnoreRules, Packed};
use crate::entries::is_executable;
use crate::error::{Result, StorageError};
use flate2::write::GzEncoder;
use flate2::Compression;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};
use tar::{EntryType, Header};
use walkdir::WalkDir;

/// Part of the canonical form, see the module docs.
const GZIP_LEVEL: u32 = 6;

/// One entry to write.
pub(super) struct Item {
    /// Path inside the archive, `/`-separated.
    rel: String,
    /// Where the content is on disk.
    source: PathBuf,
    kind: Kind,
}

enum Kind {
    Folder,
    File { size: u64, executable: bool },
}

/// Walks `dir` with `rules`, refusing as soon as the files total more than
/// `limit` bytes. Symlinks and special files are skipped. Sorted by path.
pub(super) fn collect(dir: &Path, rules: &IgnoreRules, limit: u64) -> Result<Vec<Item>> {
    let walker = WalkDir::new(dir)
        .follow_links(false)
        .into_iter()
        .filter_entry(|entry| match entry.path().strip_prefix(dir) {
            Ok(rel) => entry.depth() == 0 || !rules.is_ignored(rel, entry.file_type().is_dir()),
            Err(_) => false,
        });
    let mut items = Vec::new();
    let mut total = 0u64;
    for entry in walker {
        let entry = entry?;
        let file_type = entry.file_type();
        if entry.depth() == 0 || !(file_type.is_dir() || file_type.is_file()) {
            continue;
        }
        let rel = entry
            .path()
            .strip_prefix(dir)
            .map_err(|_| StorageError::invalid("walked outside the snapshot root"))?;
        let rel_str = slash_path(rel)?;
        let kind = if file_type.is_dir() {
            Kind::Folder
        } else {
            let meta = entry.metadata()?;
            total = total.saturating_add(meta.len());
            if total > limit {
                return Err(StorageError::TooLarge { limit });
            }
            Kind::File {
                size: meta.len(),
                executable: is_executable(&meta),
            }
        };
        items.push(Item {
            rel: rel_str,
            source: entry.into_path(),
            kind,
        });
    }
    items.sort_by(|a, b| a.rel.cmp(&b.rel));
    Ok(items)
}

/// Writes `items` as the canonical tar.gz into a temporary file.
pub(super) fn write(items: &[Item]) -> Result<Packed> {
    let mut temp = tempfile::NamedTempFile::new()?;
    let hashing = HashingWriter::new(io::BufWriter::new(temp.as_file_mut()));
    let mut tar = tar::Builder::new(GzEncoder::new(hashing, Compression::new(GZIP_LEVEL)));
    let (mut files, mut uncompressed) = (0u64, 0u64);
    for item in items {
        let mut header = Header::new_gnu();
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        match item.kind {
            Kind::Folder => {
                header.set_entry_type(EntryType::Directory);
                header.set_mode(0o755);
                header.set_size(0);
                tar.append_data(&mut header, &item.rel, io::empty())?;
            }
            Kind::File { size, executable } => {
                header.set_entry_type(EntryType::Regular);
                header.set_mode(if executable { 0o755 } else { 0o644 });
                header.set_size(size);
                // Never more than the size in the header, even if the file grew.
                let mut reader = File::open(&item.source)?.take(size);
                tar.append_data(&mut header, &item.rel, &mut reader)?;
                if reader.limit() != 0 {
                    return Err(StorageError::invalid(format!(
                        "{} shrank while it was being packed",
                        item.rel
                    )));
                }
                files += 1;
                uncompressed += size;
            }
        }
    }
    let (digest, size) = tar.into_inner()?.finish()?.finish()?;
    Ok(Packed {
        path: temp.into_temp_path(),
        digest,
        size,
        files,
        uncompressed,
    })
}

/// `rel` as a `/`-separated UTF-8 string.
fn slash_path(rel: &Path) -> Result<String> {
    let mut parts = Vec::new();
    for component in rel.components() {
        let Component::Normal(part) = component else {
            return Err(StorageError::invalid(format!(
                "unexpected path {}",
                rel.display()
            )));
        };
        let part = part
            .to_str()
            .ok_or_else(|| StorageError::invalid(format!("path {} is not UTF-8", rel.display())))?;
        parts.push(part);
    }
    Ok(parts.join("/"))
}

/// Counts and hashes what passes through to the file.
struct HashingWriter<W: Write> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W: Write> HashingWriter<W> {
    fn new(inner: W) -> HashingWriter<W> {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// Flushes; returns the sha256 hex and the byte count.
    fn finish(mut self) -> io::Result<(String, u64)> {
        self.inner.flush()?;
        Ok((hex::encode(self.hasher.finalize()), self.count))
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.hasher.update(&buf[..written]);
        self.count += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
