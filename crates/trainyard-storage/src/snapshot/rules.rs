//! Which files a source snapshot leaves out.

use crate::error::{Result, StorageError};
use ignore::gitignore::{Gitignore, GitignoreBuilder};
use std::path::Path;

/// The file at a snapshot's root whose gitignore-syntax patterns add to the defaults.
pub const IGNORE_FILE: &str = ".trainyardignore";

/// Largest `.trainyardignore` read; anything bigger is surely a mistake.
const MAX_IGNORE_FILE: u64 = 1024 * 1024;

/// Left out of every snapshot unless `.trainyardignore` negates them.
const DEFAULT_PATTERNS: &[&str] = &[
    // No trailing slash: worktrees and submodules have a `.git` file.
    ".git",
    "__pycache__/",
    "*.pyc",
    ".ipynb_checkpoints/",
    ".trainyard/",
    // Root only: these are the run's own output folders, but a `src/outputs/`
    // package is source.
    "/outputs/",
    "/logs/",
];

/// Gitignore-syntax rules deciding what a snapshot leaves out.
///
/// Paths are relative to the snapshot root. A path is ignored when it or any
/// folder above it matches, as with git: a negation cannot bring back a file
/// whose folder is ignored.
#[derive(Clone, Debug)]
pub struct IgnoreRules {
    matcher: Gitignore,
}

impl IgnoreRules {
    /// Only the default patterns.
    pub fn defaults() -> IgnoreRules {
        IgnoreRules::with_patterns("").expect("the default patterns are valid")
    }

    /// The defaults followed by `patterns` (the text of a `.trainyardignore`),
    /// so that the file can negate a default (`!/logs/`).
    pub fn with_patterns(patterns: &str) -> Result<IgnoreRules> {
        // "." as root: paths are matched exactly as given, nothing stripped.
        let mut builder = GitignoreBuilder::new(".");
        for pattern in DEFAULT_PATTERNS {
            builder
                .add_line(None, pattern)
                .expect("the default patterns are valid");
        }
        for (number, line) in patterns.lines().enumerate() {
            builder.add_line(None, line).map_err(|err| {
                StorageError::invalid(format!("{IGNORE_FILE} line {}: {err}", number + 1))
            })?;
        }
        let matcher = builder
            .build()
            .map_err(|err| StorageError::invalid(format!("{IGNORE_FILE}: {err}")))?;
        Ok(IgnoreRules { matcher })
    }

    /// The defaults plus `dir/.trainyardignore` when that is a regular file.
    pub fn for_dir(dir: &Path) -> Result<IgnoreRules> {
        let path = dir.join(IGNORE_FILE);
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_file() => meta,
            Ok(_) => return Ok(IgnoreRules::defaults()),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Ok(IgnoreRules::defaults())
            }
            Err(err) => return Err(err.into()),
        };
        if meta.len() > MAX_IGNORE_FILE {
            return Err(StorageError::invalid(format!(
                "{IGNORE_FILE} is over {MAX_IGNORE_FILE} bytes"
            )));
        }
        let text = String::from_utf8(std::fs::read(&path)?)
            .map_err(|_| StorageError::invalid(format!("{IGNORE_FILE} is not UTF-8")))?;
        IgnoreRules::with_patterns(&text)
    }

    /// Whether `rel` (relative to the snapshot root) is left out.
    pub fn is_ignored(&self, rel: &Path, is_dir: bool) -> bool {
        let ignored_folder = rel
            .ancestors()
            .skip(1)
            .filter(|folder| !folder.as_os_str().is_empty())
            .any(|folder| self.matcher.matched(folder, true).is_ignore());
        ignored_folder || self.matcher.matched(rel, is_dir).is_ignore()
    }
}

impl Default for IgnoreRules {
    fn default() -> IgnoreRules {
        IgnoreRules::defaults()
    }
}
