//! Source snapshots: canonical, content-addressed tar.gz archives.
//!
//! The client packs a folder with [`pack_dir`] and uploads it; the server
//! runs [`repack`] on the upload, which checks it and rewrites it in the
//! canonical form, so the same content gets the same digest whichever client
//! (or `tar` command) packed it. Both are blocking: run them on
//! `tokio::task::spawn_blocking` inside a server.
//!
//! A run's own files travel as tar too: [`unpack_into`] stores a container
//! folder's archive, [`archive`] hands everything under a prefix back.

mod canonical;
mod rules;
#[cfg(test)]
mod tests;

pub use crate::files::{archive, unpack_into};
pub use rules::{IgnoreRules, IGNORE_FILE};

use crate::entries;
use crate::error::{Result, StorageError};
use crate::Storage;
use flate2::read::MultiGzDecoder;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use tempfile::TempPath;

/// [`repack`] unpacks at most this many times its limit, ignored files
/// included, before giving up: a guard against decompression bombs.
pub const EXPANSION_FACTOR: u64 = 4;

/// A canonical snapshot archive in a temporary file, deleted on drop.
#[derive(Debug)]
pub struct Packed {
    /// The tar.gz file.
    pub path: TempPath,
    /// sha256 of the tar.gz bytes, lowercase hex.
    pub digest: String,
    /// Size of the tar.gz, in bytes.
    pub size: u64,
    /// Number of regular files in it.
    pub files: u64,
    /// Total size of those files, in bytes.
    pub uncompressed: u64,
}

impl Packed {
    /// Opens the tar.gz for reading.
    pub fn open(&self) -> io::Result<File> {
        File::open(&self.path)
    }
}

/// Packs `dir` into a canonical tar.gz, leaving out what [`IgnoreRules`]
/// (the defaults plus `dir/.trainyardignore`) ignore.
///
/// Refuses with [`StorageError::TooLarge`] as soon as the files kept total
/// more than `limit_bytes`. Symlinks and special files are skipped.
pub fn pack_dir(dir: &Path, limit_bytes: u64) -> Result<Packed> {
    if !std::fs::metadata(dir)?.is_dir() {
        return Err(StorageError::invalid(format!(
            "{} is not a folder",
            dir.display()
        )));
    }
    let rules = IgnoreRules::for_dir(dir)?;
    let items = canonical::collect(dir, &rules, limit_bytes)?;
    canonical::write(&items)
}

/// Checks an uploaded tar.gz and rewrites it in the canonical form, applying
/// the default rules and the archive's own `.trainyardignore`.
///
/// Refuses with [`StorageError::Invalid`] an unreadable archive, or an entry
/// that is absolute, has `..` or links outside the root (the reason names the
/// entry); with [`StorageError::TooLarge`] (`limit_bytes`) when the files kept
/// total more than `limit_bytes`, or ([`EXPANSION_FACTOR`] × `limit_bytes`)
/// when the whole archive unpacks to more than that.
pub fn repack(input: impl Read, limit_bytes: u64) -> Result<Packed> {
    // Unpacked once into a private folder: the archive's order is arbitrary
    // and its .trainyardignore may come last, and this keeps memory flat.
    let staging = tempfile::tempdir()?;
    let cap = limit_bytes.saturating_mul(EXPANSION_FACTOR);
    // Multi-member: concatenated gzip streams are valid gzip too.
    entries::extract(MultiGzDecoder::new(input), staging.path(), cap)?;
    pack_dir(staging.path(), limit_bytes)
}

/// Unpacks a snapshot tar.gz into `dir` (created if missing); returns the
/// number of files. `dir` should be new or empty: existing files are
/// overwritten. Refuses the same unsafe entries as [`repack`].
pub fn extract_to_dir(tar_gz: impl Read, dir: &Path) -> Result<u64> {
    std::fs::create_dir_all(dir)?;
    entries::extract(MultiGzDecoder::new(tar_gz), dir, u64::MAX)
}

impl Storage {
    /// The key of the snapshot with this digest: `snapshots/<digest>.tar.gz`.
    ///
    /// Refuses anything but 64 hex digits; upper case is folded to lower.
    pub fn snapshot_key(digest: &str) -> Result<String> {
        if digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(StorageError::invalid(format!(
                "{digest:?} is not a sha256 hex digest"
            )));
        }
        Ok(format!("snapshots/{}.tar.gz", digest.to_ascii_lowercase()))
    }

    /// Stores a snapshot under [`Storage::snapshot_key`] unless one with the
    /// same digest is there already; returns whether it was new.
    ///
    /// Two concurrent uploads of the same content may both write; they write
    /// the same bytes, so that is harmless.
    pub async fn put_snapshot(&self, packed: &Packed) -> Result<bool> {
        let key = Storage::snapshot_key(&packed.digest)?;
        if self.exists(&key).await? {
            return Ok(false);
        }
        self.put_file(&key, &packed.path).await?;
        Ok(true)
    }
}
