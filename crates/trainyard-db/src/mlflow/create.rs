//! runs/create. MLflow clients create runs from many threads and processes
//! at once, and each run alone would cost PostgreSQL a commit (its WAL
//! flush), which is more than its rows. So creates that arrive while a group
//! is being stored wait, and the next group stores every waiting run in one
//! statement and one commit. A run whose experiment is not found active, or
//! a group the database refuses, is retried on its own, so that one bad
//! request never fails another.

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::PgPool;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::oneshot;
use uuid::Uuid;

use super::runs::run_columns;
use super::{ExperimentRef, TrackedRun};
use crate::{Db, DbError};

/// Runs one statement stores at most; later ones wait for the next group.
const MAX_GROUP_RUNS: usize = 500;

/// A run an MLflow client asks for: tracked-only, Running from `start`.
#[derive(Debug, Clone)]
pub struct NewTrackedRun {
    /// The experiment it goes in (it must be active).
    pub experiment: ExperimentRef,
    /// Its display name.
    pub name: String,
    /// When it started.
    pub start: DateTime<Utc>,
    /// Its tags.
    pub tags: BTreeMap<String, String>,
}

/// A run waiting for a group, with the id it will have.
struct PendingCreate {
    id: Uuid,
    workspace_id: Uuid,
    run: NewTrackedRun,
    /// The run, or `None` when no active experiment matched.
    reply: oneshot::Sender<Result<Option<TrackedRun>, DbError>>,
}

/// Creates waiting to be stored, shared by every clone of a [`Db`].
#[derive(Default)]
pub(crate) struct CreateQueue {
    state: Mutex<CreateState>,
}

#[derive(Default)]
struct CreateState {
    waiting: Vec<PendingCreate>,
    /// Whether a writer is storing groups; there is at most one, so that
    /// groups stay large.
    writing: bool,
}

impl CreateQueue {
    fn lock(&self) -> MutexGuard<'_, CreateState> {
        crate::lock(&self.state)
    }
}

impl std::fmt::Debug for CreateQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateQueue").finish_non_exhaustive()
    }
}

/// The writer's flag, cleared when the writer ends, even by a panic, so that
/// a later create starts a new one.
struct WriterSlot {
    queue: Arc<CreateQueue>,
    given_back: bool,
}

impl Drop for WriterSlot {
    fn drop(&mut self) {
        if !self.given_back {
            self.queue.lock().writing = false;
        }
    }
}

impl Db {
    /// Creates a tracked-only run in an active experiment of the workspace
    /// (`Default` is created on first use).
    pub async fn mlflow_create_run(
        &self,
        workspace_id: Uuid,
        run: NewTrackedRun,
    ) -> Result<TrackedRun, DbError> {
        let experiment = run.experiment;
        if let Some(created) = self.enqueue_create(workspace_id, run.clone()).await? {
            return Ok(created);
        }
        // No active experiment matched: say why, or create `Default` and retry.
        let found = self.mlflow_experiment(workspace_id, experiment).await?;
        if found.archived_at.is_some() {
            return Err(DbError::Deleted("experiment"));
        }
        let retry = NewTrackedRun {
            experiment: ExperimentRef::Id(found.id),
            ..run
        };
        self.enqueue_create(workspace_id, retry)
            .await?
            .ok_or(DbError::NotFound("experiment"))
    }

    async fn enqueue_create(
        &self,
        workspace_id: Uuid,
        run: NewTrackedRun,
    ) -> Result<Option<TrackedRun>, DbError> {
        let (reply, answer) = oneshot::channel();
        let start_writer = {
            let mut state = self.run_creates.lock();
            state.waiting.push(PendingCreate {
                id: Uuid::now_v7(),
                workspace_id,
                run,
                reply,
            });
            !std::mem::replace(&mut state.writing, true)
        };
        if start_writer {
            let slot = WriterSlot {
                queue: self.run_creates.clone(),
                given_back: false,
            };
            tokio::spawn(self.clone().write_creates(slot));
        }
        answer.await.unwrap_or(Err(DbError::WriterStopped))
    }

    /// Stores waiting creates, a group at a time, until none waits.
    async fn write_creates(self, mut slot: WriterSlot) {
        loop {
            let group: Vec<PendingCreate> = {
                let mut state = self.run_creates.lock();
                if state.waiting.is_empty() {
                    // Under the same lock as the check, so a create queued
                    // after it starts a writer.
                    state.writing = false;
                    slot.given_back = true;
                    return;
                }
                let take = state.waiting.len().min(MAX_GROUP_RUNS);
                state.waiting.drain(..take).collect()
            };
            self.store_creates(group).await;
        }
    }

    /// Stores a group and answers each of its creates.
    async fn store_creates(&self, group: Vec<PendingCreate>) {
        match insert_tracked_runs(self.pool(), &group).await {
            Ok(mut created) => {
                for pending in group {
                    let _ = pending.reply.send(Ok(created.remove(&pending.id)));
                }
            }
            // The database refused the statement for some run: each alone
            // finds out which.
            Err(_) if group.len() > 1 => {
                for pending in group {
                    let alone = insert_tracked_runs(self.pool(), std::slice::from_ref(&pending))
                        .await
                        .map(|mut created| created.remove(&pending.id));
                    let _ = pending.reply.send(alone.map_err(DbError::from));
                }
            }
            Err(err) => {
                if let Some(pending) = group.into_iter().next() {
                    let _ = pending.reply.send(Err(err.into()));
                }
            }
        }
    }
}

/// Stores the runs whose experiment is active in their workspace, each with
/// its first event, in one statement; returns them by id.
async fn insert_tracked_runs(
    pool: &PgPool,
    group: &[PendingCreate],
) -> Result<HashMap<Uuid, TrackedRun>, sqlx::Error> {
    let mut ids = Vec::with_capacity(group.len());
    let mut workspaces = Vec::with_capacity(group.len());
    let mut experiments = Vec::with_capacity(group.len());
    let mut names = Vec::with_capacity(group.len());
    let mut tags = Vec::with_capacity(group.len());
    let mut starts = Vec::with_capacity(group.len());
    for pending in group {
        ids.push(pending.id);
        workspaces.push(pending.workspace_id);
        experiments.push(match pending.run.experiment {
            ExperimentRef::Id(id) => Some(id),
            ExperimentRef::Default => None,
        });
        names.push(pending.run.name.as_str());
        tags.push(Json(&pending.run.tags));
        starts.push(pending.run.start);
    }
    let created = sqlx::query_as::<_, TrackedRun>(concat!(
        "WITH asked AS (
             SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::jsonb[],
                                  $6::timestamptz[])
                 AS a(id, workspace_id, experiment_id, name, tags, started_at)
         ),
         created AS (
             INSERT INTO runs (id, workspace_id, experiment_id, display_name, status, tags,
                               tracked_only, started_at)
             SELECT a.id, a.workspace_id, e.id, a.name, 'Running', a.tags, true, a.started_at
             FROM asked a
             JOIN experiments e ON e.id = COALESCE(a.experiment_id,
                 (SELECT d.id FROM experiments d
                  WHERE d.workspace_id = a.workspace_id AND d.name = 'Default'))
             WHERE e.workspace_id = a.workspace_id AND e.archived_at IS NULL
             RETURNING *
         ),
         event AS (
             INSERT INTO run_events (run_id, from_status, to_status, reason)
             SELECT id, NULL, 'Running', 'created by an MLflow client' FROM created
         )
         SELECT ",
        run_columns!(),
        " FROM created AS runs"
    ))
    .bind(ids)
    .bind(workspaces)
    .bind(experiments)
    .bind(names)
    .bind(tags)
    .bind(starts)
    .fetch_all(pool)
    .await?;
    Ok(created.into_iter().map(|run| (run.run.id, run)).collect())
}
