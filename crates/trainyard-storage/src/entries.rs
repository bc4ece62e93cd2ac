//! Reading tar entries from untrusted archives without leaving the root.

use crate::error::{Result, StorageError};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};

/// Copy buffer for entry data.
pub(crate) const COPY_CHUNK: usize = 256 * 1024;

/// A read error on the archive side: the upload is broken, not the server.
pub(crate) fn unreadable(err: io::Error) -> StorageError {
    StorageError::invalid(format!("unreadable archive: {err}"))
}

/// `path` with `.` segments dropped; refuses absolute paths and `..`.
///
/// The result may be empty (an entry for the archive root itself).
pub(crate) fn confined(path: &Path) -> Result<PathBuf> {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                return Err(StorageError::invalid(format!(
                    "entry {} escapes the archive root",
                    path.display()
                )));
            }
        }
    }
    Ok(out)
}

/// Whether a symlink at `rel` pointing to `target` resolves outside the root.
pub(crate) fn link_escapes(rel: &Path, target: &Path) -> bool {
    // Depth of the folder holding the link, below the root.
    let mut depth = rel.components().count().saturating_sub(1);
    for component in target.components() {
        match component {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir => match depth.checked_sub(1) {
                Some(up) => depth = up,
                None => return true,
            },
            Component::RootDir | Component::Prefix(_) => return true,
        }
    }
    false
}

/// Checks a link entry at `rel`: returns the hard link's target (relative to
/// the root), `None` for a symlink that stays inside; refuses escaping links.
pub(crate) fn check_link<R: Read>(
    entry: &tar::Entry<'_, R>,
    rel: &Path,
) -> Result<Option<PathBuf>> {
    let target = entry.link_name().map_err(unreadable)?.unwrap_or_default();
    let escapes = || {
        StorageError::invalid(format!(
            "entry {} links outside the archive root ({})",
            rel.display(),
            target.display()
        ))
    };
    if entry.header().entry_type().is_hard_link() {
        // Hard link targets name another entry, from the archive root.
        let inside = confined(&target).map_err(|_| escapes())?;
        return Ok(Some(inside));
    }
    if link_escapes(rel, &target) {
        return Err(escapes());
    }
    Ok(None)
}

/// Whether an entry of this type carries file content.
pub(crate) fn is_regular(kind: tar::EntryType) -> bool {
    kind.is_file() || kind.is_contiguous() || kind.is_gnu_sparse()
}

/// Unpacks the tar stream `tar` into `dir`: regular files and folders only,
/// hard links as copies, symlinks and devices skipped. Refuses entries that
/// leave the root, and refuses with [`StorageError::TooLarge`] once more
/// than `cap` bytes have been written. Returns the number of files.
pub(crate) fn extract(tar: impl Read, dir: &Path, cap: u64) -> Result<u64> {
    let mut archive = tar::Archive::new(tar);
    let mut buf = vec![0; COPY_CHUNK];
    let (mut written, mut files) = (0u64, 0u64);
    for entry in archive.entries().map_err(unreadable)? {
        let mut entry = entry.map_err(unreadable)?;
        let rel = confined(&entry.path().map_err(unreadable)?)?;
        if rel.as_os_str().is_empty() {
            continue;
        }
        let kind = entry.header().entry_type();
        let dest = dir.join(&rel);
        if kind.is_dir() {
            refuse_symlinked(dir, &rel)?;
            fs::create_dir_all(&dest).map_err(clash(&rel))?;
            continue;
        }
        if kind.is_symlink() || kind.is_hard_link() {
            let Some(target) = check_link(&entry, &rel)? else {
                continue;
            };
            if target == rel {
                continue;
            }
            refuse_symlinked(dir, &target)?;
            let source = dir.join(&target);
            let meta = match fs::symlink_metadata(&source) {
                Ok(meta) if meta.is_file() => meta,
                // A link to something we skipped or never saw.
                _ => continue,
            };
            written = add_capped(written, meta.len(), cap)?;
            prepare_parent(dir, &rel)?;
            fs::copy(&source, &dest).map_err(clash(&rel))?;
            files += 1;
            continue;
        }
        if !is_regular(kind) {
            continue;
        }
        prepare_parent(dir, &rel)?;
        let mut out = File::create(&dest).map_err(clash(&rel))?;
        loop {
            let read = match entry.read(&mut buf) {
                Ok(0) => break,
                Ok(read) => read,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(unreadable(err)),
            };
            written = add_capped(written, read as u64, cap)?;
            out.write_all(&buf[..read])?;
        }
        set_executable(&out, entry.header().mode().unwrap_or(0o644) & 0o111 != 0)?;
        files += 1;
    }
    Ok(files)
}

fn add_capped(total: u64, more: u64, cap: u64) -> Result<u64> {
    match total.checked_add(more) {
        Some(sum) if sum <= cap => Ok(sum),
        _ => Err(StorageError::TooLarge { limit: cap }),
    }
}

/// Creates the folders above `rel`, refusing to write through a symlink
/// that was already in `dir`.
fn prepare_parent(dir: &Path, rel: &Path) -> Result<()> {
    refuse_symlinked(dir, rel)?;
    if let Some(parent) = dir.join(rel).parent() {
        fs::create_dir_all(parent).map_err(clash(rel))?;
    }
    Ok(())
}

/// Maps a file-versus-folder clash between two entries to
/// [`StorageError::Invalid`]; other errors are the server's own.
fn clash(rel: &Path) -> impl FnOnce(io::Error) -> StorageError + '_ {
    move |err| match err.kind() {
        io::ErrorKind::AlreadyExists
        | io::ErrorKind::IsADirectory
        | io::ErrorKind::NotADirectory => StorageError::invalid(format!(
            "entry {} clashes with another entry: {err}",
            rel.display()
        )),
        _ => err.into(),
    }
}

fn refuse_symlinked(dir: &Path, rel: &Path) -> Result<()> {
    let mut at = dir.to_path_buf();
    for component in rel.components() {
        at.push(component);
        match fs::symlink_metadata(&at) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(StorageError::invalid(format!(
                    "entry {} would be written through a symlink",
                    rel.display()
                )));
            }
            Ok(_) => {}
            // Nothing there yet; a file where a folder should be is left
            // for the write to report as a clash.
            Err(err)
                if matches!(
                    err.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) =>
            {
                return Ok(())
            }
            Err(err) => return Err(err.into()),
        }
    }
    Ok(())
}

/// Normalises a file's mode to 0755 or 0644, as the canonical form does.
pub(crate) fn set_executable(file: &File, executable: bool) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = if executable { 0o755 } else { 0o644 };
        file.set_permissions(fs::Permissions::from_mode(mode))?;
    }
    #[cfg(not(unix))]
    let _ = (file, executable);
    Ok(())
}

/// Whether a file's mode has any executable bit.
pub(crate) fn is_executable(meta: &fs::Metadata) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        meta.permissions().mode() & 0o111 != 0
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        false
    }
}
