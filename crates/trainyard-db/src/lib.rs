//! Trainyard's PostgreSQL store: the only crate that writes SQL.
//!
//! Every query is scoped by workspace. Values are always bound, never spliced.

mod auth_cache;
pub mod compute;
pub mod datasets;
pub mod datastores;
pub mod embedded;
pub mod environments;
mod error;
pub mod experiments;
pub mod logs;
pub mod metrics;
pub mod mlflow;
pub mod models;
mod page;
pub mod queue;
pub mod run_list;
pub mod runs;
pub mod scheduling;
pub mod snapshots;
pub mod tokens;
pub mod workspaces;

pub use error::DbError;
pub use page::{Cursor, Page};

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// How long this server trusts what it read of things another server over
/// the same database may change (a token's revocation, a run's deletion)
/// before reading them again. Changes made through this server apply at once.
pub const CACHE_TTL: Duration = Duration::from_secs(5);

/// The schema, from the repository's `migrations/` folder.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");

/// Locks state shared by requests that every change leaves consistent (one
/// insert, push, pop or flag at a time), so a panic elsewhere while it was
/// held does not make it unusable.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A handle on the database, cheap to clone.
#[derive(Clone, Debug)]
pub struct Db {
    pool: PgPool,
    metric_queue: Arc<metrics::MetricQueue>,
    run_creates: Arc<mlflow::CreateQueue>,
    auth_cache: Arc<auth_cache::AuthCache>,
}

impl Db {
    /// Connects to `url` with at most `max_connections` connections.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Db, DbError> {
        let options = PgConnectOptions::from_str(url)?.application_name("trainyard");
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            // No ping before each use: a round trip per query is a large part
            // of a short one, and a broken connection fails its query and is
            // dropped from the pool anyway.
            .test_before_acquire(false)
            // JIT compilation pays off for long analytical queries; here it
            // is chosen for large list sorts and costs more than it saves
            // (a runs list of 40,000 runs sorted by a metric: 0.24-0.57 s
            // with it, 0.12-0.16 s without), and a plan around a sort that a
            // transaction disabled looks costly enough to be compiled. Set
            // when a connection opens, not in the startup packet, which
            // connection poolers may refuse.
            .after_connect(|conn, _| {
                Box::pin(async move {
                    sqlx::query("SET jit = off").execute(conn).await?;
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        Ok(Db::from_pool(pool))
    }

    /// Wraps a pool made by [`Db::connect`].
    fn from_pool(pool: PgPool) -> Db {
        Db {
            pool,
            metric_queue: Arc::default(),
            run_creates: Arc::default(),
            auth_cache: Arc::default(),
        }
    }

    /// Applies every migration not yet applied.
    pub async fn migrate(&self) -> Result<(), DbError> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    /// Whether the database answers a trivial query.
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    /// The underlying pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Closes every connection, waiting for those in use.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}
