//! Trainyard's file storage: every byte kept that is not a database row.
//!
//! Source snapshots, run outputs and log files (later datasets and models)
//! all go through [`Storage`], one type over object_store backends (a local
//! folder or memory for now). [`snapshot`] makes canonical, content-addressed
//! source archives, and moves a run's folders in and out as tar
//! ([`unpack_into`], [`archive`]).

mod blobs;
mod entries;
mod error;
mod files;
pub mod snapshot;
mod store;
#[cfg(test)]
mod tests;

pub use blobs::blob_key;
pub use error::{Result, StorageError};
pub use files::{archive, unpack_into};
pub use snapshot::{extract_to_dir, pack_dir, repack, IgnoreRules, Packed};
pub use store::{Storage, StoredObject};
