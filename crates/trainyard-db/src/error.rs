use trainyard_core::TransitionError;

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The thing asked for does not exist (in this workspace).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A unique name is taken.
    #[error("{what} already exists")]
    Conflict {
        /// What kind of thing collided, e.g. "experiment".
        what: &'static str,
        /// The input field holding the colliding value.
        field: &'static str,
    },
    /// The change is refused while something still uses the resource; the
    /// text says what.
    #[error("{0}")]
    Busy(&'static str),
    /// The run state machine refused a status change.
    #[error(transparent)]
    Transition(#[from] TransitionError),
    /// A metric was logged with another shape than it has.
    #[error("metric {name:?} is a {existing} metric; log it with that shape or use another name")]
    MetricKind {
        /// The metric.
        name: String,
        /// The shape it has.
        existing: &'static str,
    },
    /// The thing exists but was deleted (MLflow's soft delete); restore it first.
    #[error("the {0} is deleted")]
    Deleted(&'static str),
    /// A run param was logged again with another value; params never change.
    #[error("param {key:?} was already logged with value {old:?}; a param cannot change (new value {new:?})")]
    ParamChanged {
        /// The param.
        key: String,
        /// The value it has.
        old: String,
        /// The value refused.
        new: String,
    },
    /// A pagination cursor that this store did not hand out.
    #[error("cursor is not one this server issued")]
    BadCursor,
    /// Any other database failure.
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
    /// A database failure of a write shared by several requests.
    #[error("database error: {0}")]
    Shared(std::sync::Arc<sqlx::Error>),
    /// The task writing a group of requests (metric batches, created runs)
    /// ended before answering (the server is shutting down).
    #[error("the writer stopped before storing the request")]
    WriterStopped,
    /// A migration could not be applied.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl DbError {
    /// Maps a unique-violation on `constraint` to a [`DbError::Conflict`].
    pub(crate) fn on_unique(
        constraint: &'static str,
        what: &'static str,
        field: &'static str,
    ) -> impl FnOnce(sqlx::Error) -> DbError {
        move |err| match &err {
            sqlx::Error::Database(db) if db.constraint() == Some(constraint) => {
                DbError::Conflict { what, field }
            }
            _ => DbError::Sqlx(err),
        }
    }
}
