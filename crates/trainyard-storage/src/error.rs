/// What can go wrong in storage.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// No object is stored under this key.
    #[error("{key} not found")]
    NotFound {
        /// The key asked for.
        key: String,
    },
    /// The content is over the size limit.
    #[error("larger than the limit of {limit} bytes")]
    TooLarge {
        /// The limit that was passed, in bytes.
        limit: u64,
    },
    /// A key, archive entry or ignore file that this crate refuses.
    #[error("invalid: {reason}")]
    Invalid {
        /// What was refused and why, naming the offending key or path.
        reason: String,
    },
    /// A local file or temporary file failed.
    #[error("I/O error: {0}")]
    Io(std::io::Error),
    /// The object store backend failed.
    #[error("object store error: {0}")]
    Store(object_store::Error),
}

/// Shorthand for this crate's results.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;

impl StorageError {
    /// A [`StorageError::Invalid`] with this reason.
    pub(crate) fn invalid(reason: impl Into<String>) -> StorageError {
        StorageError::Invalid {
            reason: reason.into(),
        }
    }

    /// Maps a backend error on `key`, keeping "not found" distinct.
    ///
    /// The backend's own message names its internal path (a filesystem path
    /// for the local store), which must not reach API clients.
    pub(crate) fn on_key(key: &str) -> impl FnOnce(object_store::Error) -> StorageError + '_ {
        move |err| match err {
            object_store::Error::NotFound { .. } => StorageError::NotFound {
                key: key.to_owned(),
            },
            other => StorageError::Store(other),
        }
    }
}

impl From<std::io::Error> for StorageError {
    /// Unwraps a [`StorageError`] that travelled through an `io::Error`
    /// (readers and writers handed to `tar` can only fail with `io::Error`).
    fn from(err: std::io::Error) -> StorageError {
        if err
            .get_ref()
            .is_some_and(|inner| inner.is::<StorageError>())
        {
            let inner = err.into_inner().expect("checked: has an inner error");
            return *inner
                .downcast::<StorageError>()
                .expect("checked: is a StorageError");
        }
        StorageError::Io(err)
    }
}

impl From<walkdir::Error> for StorageError {
    fn from(err: walkdir::Error) -> StorageError {
        StorageError::Io(err.into())
    }
}

impl From<StorageError> for std::io::Error {
    /// Wraps the error so that [`From<std::io::Error>`] can take it back out.
    fn from(err: StorageError) -> std::io::Error {
        match err {
            StorageError::Io(io) => io,
            other => std::io::Error::other(other),
        }
    }
}
