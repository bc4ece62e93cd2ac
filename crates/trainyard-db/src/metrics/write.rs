//! The metric write path. Batches that arrive while another is being written
//! wait, and the next flusher writes every waiting batch in one transaction:
//! one run check, one upsert of metric rows, one binary COPY, one update of
//! latest values and one commit, so the cost of a transaction (above all the
//! commit's WAL flush) is shared by every request in it. A batch that cannot
//! be stored (its run is elsewhere, a metric has another shape) is refused on
//! its own and the rest of its group is written without it.

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{FromRow, PgConnection};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;
use tokio::sync::oneshot;
use trainyard_core::{MetricKind, MetricValue};
use uuid::Uuid;

use super::NewMetricPoint;
use crate::{Db, DbError, CACHE_TTL};

/// Flushers writing at once: while one waits for its commit, another writes.
/// A second starts only when large batches pile up: small ones wait for the
/// running flusher's next group, so that groups stay large and the commit
/// (mostly the kernel's flush of the WAL) is shared by more of them.
const MAX_FLUSHERS: usize = 2;
/// Points waiting that justify another flusher besides a running one.
const BACKLOG_FOR_ANOTHER_FLUSHER: usize = 2_000;
/// Points one transaction carries at most; later batches wait for the next.
const MAX_GROUP_POINTS: usize = 50_000;

/// A batch of one run's points, waiting for a flusher.
struct Pending {
    /// The workspace the run must be in.
    workspace_id: Uuid,
    run_id: Uuid,
    /// Whether a deleted run refuses the batch (MLflow's rule).
    active_only: bool,
    points: Vec<NewMetricPoint>,
    reply: oneshot::Sender<Result<u64, DbError>>,
}

/// Runs whose metric rows this cache holds at most; beyond, it starts over.
const MAX_CACHED_RUNS: usize = 10_000;

/// Batches waiting to be written, shared by every clone of a [`Db`], and
/// what never changes about the runs and metric rows they write to.
#[derive(Default)]
pub(crate) struct MetricQueue {
    state: Mutex<QueueState>,
    known: Mutex<KnownRows>,
}

/// A run's workspace and a metric row's id and shape never change, so once
/// seen they need not be read again: a group whose every metric is known
/// (and whose points all carry steps) skips the run check and the upsert.
/// A run removed since is noticed when its metric rows are not updated; one
/// marked deleted by this server is forgotten at once, and whether a run is
/// deleted is read again after [`CACHE_TTL`] for batches that care, so that
/// another server's deletion is seen within that time.
#[derive(Default)]
struct KnownRows {
    runs: HashMap<Uuid, KnownRun>,
    heads: HeadIndex,
    /// Counts the runs forgotten, so that a group that read a run before it
    /// was forgotten does not remember it afterwards.
    generation: u64,
}

/// A run as a group read it.
#[derive(Debug, Clone, Copy)]
struct KnownRun {
    workspace_id: Uuid,
    deleted: bool,
    read_at: Instant,
}

#[derive(Default)]
struct QueueState {
    waiting: VecDeque<Pending>,
    flushers: usize,
}

impl MetricQueue {
    fn lock(&self) -> MutexGuard<'_, QueueState> {
        crate::lock(&self.state)
    }

    fn known(&self) -> MutexGuard<'_, KnownRows> {
        crate::lock(&self.known)
    }

    /// The group's metric rows, when all are known, the runs are in the
    /// workspaces asked for, the shapes agree and every point has a step
    /// (a point without one needs the row's current count).
    fn known_heads(&self, group: &[Pending]) -> Option<HeadIndex> {
        let known = self.known();
        let mut heads = HeadIndex::default();
        for pending in group {
            let run = known.runs.get(&pending.run_id)?;
            if pending.workspace_id != run.workspace_id {
                return None;
            }
            if pending.active_only && (run.deleted || run.read_at.elapsed() >= CACHE_TTL) {
                return None;
            }
            for point in &pending.points {
                let head = known.heads.get(pending.run_id, &point.name)?;
                if head.kind != point.kind || point.step.is_none() {
                    return None;
                }
                heads.insert(pending.run_id, &point.name, *head);
            }
        }
        Some(heads)
    }

    fn generation(&self) -> u64 {
        self.known().generation
    }

    /// Keeps what a group read, unless a run was forgotten since `generation`.
    fn remember(&self, generation: u64, runs: &HashMap<Uuid, KnownRun>, heads: &HeadIndex) {
        let mut known = self.known();
        if known.generation != generation {
            return;
        }
        if known.runs.len() > MAX_CACHED_RUNS {
            known.runs.clear();
            known.heads = HeadIndex::default();
        }
        known.runs.extend(runs);
        for (run, names) in &heads.0 {
            for (name, head) in names {
                known.heads.insert(*run, name, *head);
            }
        }
    }

    fn forget(&self, runs: impl IntoIterator<Item = Uuid>) {
        let mut known = self.known();
        known.generation += 1;
        for run in runs {
            known.runs.remove(&run);
            known.heads.0.remove(&run);
        }
    }
}

impl std::fmt::Debug for MetricQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricQueue").finish_non_exhaustive()
    }
}

/// A flusher's place in the count; given back when the flusher ends, even by
/// a panic, so that a later batch starts a new one.
struct FlusherSlot {
    queue: Arc<MetricQueue>,
    given_back: bool,
}

impl Drop for FlusherSlot {
    fn drop(&mut self) {
        if !self.given_back {
            self.queue.lock().flushers -= 1;
        }
    }
}

/// Rows of `metric_points` in PostgreSQL's binary COPY format: no number is
/// formatted or parsed on either side.
pub struct PointCopy {
    buf: Vec<u8>,
    rows: usize,
}

/// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01).
const POSTGRES_EPOCH_MICROS: i64 = 946_684_800_000_000;

impl PointCopy {
    /// The statement that reads what [`PointCopy::finish`] returns.
    pub const STATEMENT: &'static str =
        "COPY metric_points (metric_id, step, at, value) FROM STDIN (FORMAT binary)";

    /// An empty set of rows.
    pub fn new() -> PointCopy {
        let mut buf = Vec::with_capacity(1024);
        buf.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
        buf.extend_from_slice(&0i32.to_be_bytes()); // flags
        buf.extend_from_slice(&0i32.to_be_bytes()); // header extension length
        PointCopy { buf, rows: 0 }
    }

    /// Adds one point.
    pub fn push(&mut self, metric_id: i64, step: i64, at: DateTime<Utc>, value: f64) {
        let micros = at.timestamp_micros() - POSTGRES_EPOCH_MICROS;
        self.buf.extend_from_slice(&4i16.to_be_bytes());
        for field in [
            metric_id.to_be_bytes(),
            step.to_be_bytes(),
            micros.to_be_bytes(),
            value.to_be_bytes(),
        ] {
            self.buf.extend_from_slice(&8i32.to_be_bytes());
            self.buf.extend_from_slice(&field);
        }
        self.rows += 1;
    }

    /// How many points were added.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Whether no point was added.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// The COPY data, trailer included.
    pub fn finish(mut self) -> Vec<u8> {
        self.buf.extend_from_slice(&(-1i16).to_be_bytes());
        self.buf
    }
}

impl Default for PointCopy {
    fn default() -> Self {
        PointCopy::new()
    }
}

impl Db {
    /// Stores a batch of points of a run of the workspace; returns how many
    /// were stored: all of them, or none with an error.
    pub async fn log_run_metrics(
        &self,
        workspace_id: Uuid,
        run_id: Uuid,
        points: Vec<NewMetricPoint>,
    ) -> Result<u64, DbError> {
        if points.is_empty() {
            self.get_run(workspace_id, run_id).await?;
            return Ok(0);
        }
        self.enqueue_metrics(workspace_id, run_id, false, points)
            .await
    }

    /// Stores a batch of points of a run of the workspace that is not marked
    /// deleted (`Err(Deleted)` when it is), as MLflow's tracking API wants.
    pub async fn log_active_run_metrics(
        &self,
        workspace_id: Uuid,
        run_id: Uuid,
        points: Vec<NewMetricPoint>,
    ) -> Result<u64, DbError> {
        if points.is_empty() {
            return Ok(0);
        }
        self.enqueue_metrics(workspace_id, run_id, true, points)
            .await
    }

    /// Forgets what the metric writers know of a run whose deletion changed.
    pub(crate) fn forget_run_for_metrics(&self, run_id: Uuid) {
        self.metric_queue.forget([run_id]);
    }

    async fn enqueue_metrics(
        &self,
        workspace_id: Uuid,
        run_id: Uuid,
        active_only: bool,
        points: Vec<NewMetricPoint>,
    ) -> Result<u64, DbError> {
        one_kind_per_name(&points)?;
        let (reply, answer) = oneshot::channel();
        let start_flusher = {
            let mut state = self.metric_queue.lock();
            state.waiting.push_back(Pending {
                workspace_id,
                run_id,
                active_only,
                points,
                reply,
            });
            let start = state.flushers == 0
                || (state.flushers < MAX_FLUSHERS
                    && waiting_points(&state.waiting) >= BACKLOG_FOR_ANOTHER_FLUSHER);
            if start {
                state.flushers += 1;
            }
            start
        };
        if start_flusher {
            let slot = FlusherSlot {
                queue: self.metric_queue.clone(),
                given_back: false,
            };
            tokio::spawn(self.clone().flush_metrics(slot));
        }
        answer.await.unwrap_or(Err(DbError::WriterStopped))
    }

    /// Writes waiting batches, a group at a time, until none waits.
    async fn flush_metrics(self, mut slot: FlusherSlot) {
        loop {
            let group = {
                let mut state = self.metric_queue.lock();
                if state.waiting.is_empty() {
                    // Under the same lock as the check, so a batch queued
                    // after it sees a free slot and starts a flusher.
                    state.flushers -= 1;
                    slot.given_back = true;
                    return;
                }
                take_group(&mut state.waiting)
            };
            let deferred = self.write_group(group).await;
            let mut state = self.metric_queue.lock();
            for pending in deferred.into_iter().rev() {
                state.waiting.push_front(pending);
            }
        }
    }

    /// Writes a group; returns the batches that must wait for another group
    /// because they give a metric another shape than an earlier batch does.
    async fn write_group(&self, group: Vec<Pending>) -> Vec<Pending> {
        let (mut group, deferred) = split_shape_disagreements(group);
        let mut attempts = 0;
        while !group.is_empty() {
            attempts += 1;
            match self.try_write_group(&group).await {
                Ok(stored) => {
                    for (pending, count) in group.into_iter().zip(stored) {
                        let _ = pending.reply.send(Ok(count));
                    }
                    break;
                }
                Err(GroupError::Refused(mut refused)) => {
                    // Highest index first, so the others keep their places.
                    refused.sort_by_key(|(index, _)| std::cmp::Reverse(*index));
                    for (index, err) in refused {
                        let _ = group.remove(index).reply.send(Err(err));
                    }
                }
                Err(GroupError::Stale) => {}
                // Two flushers updating rows of one run may lock them in
                // other orders; PostgreSQL breaks the tie, and the loser
                // writes again.
                Err(GroupError::Database(err)) if is_deadlock(&err) && attempts < 3 => {}
                Err(GroupError::Database(err)) => {
                    let err = Arc::new(err);
                    for pending in group {
                        let _ = pending.reply.send(Err(DbError::Shared(err.clone())));
                    }
                    break;
                }
            }
        }
        deferred
    }

    /// Stores the whole group at once, or returns the batches to refuse.
    async fn try_write_group(&self, group: &[Pending]) -> Result<Vec<u64>, GroupError> {
        let known = self.metric_queue.known_heads(group);
        if let Some(heads) = &known {
            let rows = GroupRows::of(group, heads);
            if rows.fit_one_statement() {
                return match rows.store_in_one_statement(self.pool()).await {
                    Err(err) if is_gone(&err) => {
                        self.metric_queue.forget(group.iter().map(|p| p.run_id));
                        Err(GroupError::Stale)
                    }
                    Err(err) => Err(err.into()),
                    Ok(()) => Ok(rows.stored),
                };
            }
        }

        let mut tx = self.pool().begin().await?;
        let heads = match known {
            Some(heads) => heads,
            None => {
                let generation = self.metric_queue.generation();
                let runs = read_runs(&mut tx, group).await?;
                let refused = refuse_runs(group, &runs);
                if !refused.is_empty() {
                    return Err(GroupError::Refused(refused));
                }
                let heads = upsert_metric_rows(&mut tx, group).await?;
                let refused = refuse_other_shapes(group, &heads);
                if !refused.is_empty() {
                    return Err(GroupError::Refused(refused));
                }
                self.metric_queue.remember(generation, &runs, &heads);
                heads
            }
        };
        let rows = GroupRows::of(group, &heads);
        if !rows.scalars.is_empty() {
            let mut sink = tx.copy_in_raw(PointCopy::STATEMENT).await?;
            sink.send(rows.scalars.to_copy().finish()).await?;
            sink.finish().await?;
        }
        if !rows.chunks.is_empty() {
            rows.chunks.store(&mut tx).await?;
        }
        rows.json.insert(&mut tx).await?;
        let metrics = rows.latest.len() as u64;
        if update_latest(&mut tx, rows.latest).await? != metrics {
            // A metric row is gone (its run was deleted): the cache was
            // stale. Dropping `tx` rolls the points back; the retry reads.
            self.metric_queue.forget(group.iter().map(|p| p.run_id));
            return Err(GroupError::Stale);
        }
        tx.commit().await?;
        Ok(rows.stored)
    }
}

/// Groups of at most this many points, all scalars, whose metric rows are
/// known, are stored by one call of `store_metric_points`: one round trip. A
/// larger group goes by binary COPY in a transaction, more round trips but
/// less work per point.
const ONE_STATEMENT_MAX_POINTS: usize = 5_000;

/// What a group adds: its points, and each metric's count and latest value.
struct GroupRows<'a> {
    /// Scalar points stored one row each.
    scalars: ScalarRows,
    /// Scalar points stored in chunks.
    chunks: PointChunks,
    json: JsonRows<'a>,
    latest: BTreeMap<i64, Latest<'a>>,
    /// Points stored of each batch, in the group's order.
    stored: Vec<u64>,
}

impl<'a> GroupRows<'a> {
    fn of(group: &'a [Pending], heads: &HeadIndex) -> GroupRows<'a> {
        let mut rows = GroupRows {
            scalars: ScalarRows::default(),
            chunks: PointChunks::default(),
            json: JsonRows::default(),
            latest: BTreeMap::new(),
            stored: Vec::with_capacity(group.len()),
        };
        let mut next_step: HashMap<i64, i64> = HashMap::new();
        for pending in group {
            for point in &pending.points {
                let head = &heads[&(pending.run_id, point.name.as_str())];
                // A point without a step comes after the metric's last one.
                let auto = next_step.entry(head.id).or_insert(head.count);
                let step = point.step.unwrap_or(*auto);
                *auto = (*auto).max(step + 1);
                match &point.value {
                    MetricValue::Scalar(value) => {
                        rows.scalars.push(head.id, step, point.at, *value)
                    }
                    MetricValue::Json(value) => rows.json.push(head.id, step, point.at, value),
                }
                rows.latest
                    .entry(head.id)
                    .or_insert_with(|| Latest::first(step, point))
                    .add(step, point);
            }
            rows.stored.push(pending.points.len() as u64);
        }
        rows.scalars.sort_by_metric_and_step();
        rows.chunks = rows.scalars.split_off_chunks();
        rows
    }

    fn fit_one_statement(&self) -> bool {
        self.json.ids.is_empty()
            && self.scalars.ids.len() + self.chunks.steps.len() <= ONE_STATEMENT_MAX_POINTS
    }

    /// Stores scalar points and their metrics' new counts and latest values
    /// (none of which is JSON) in one statement.
    async fn store_in_one_statement(&self, pool: &sqlx::PgPool) -> Result<(), sqlx::Error> {
        let mut latest = ScalarRows::default();
        let mut added = Vec::with_capacity(self.latest.len());
        for (id, point) in &self.latest {
            let value = match point.value {
                MetricValue::Scalar(value) => *value,
                MetricValue::Json(_) => unreachable!("a group with JSON points uses COPY"),
            };
            latest.push(*id, point.step, point.at, value);
            added.push(point.added);
        }
        sqlx::query(
            "SELECT store_metric_points($1, $2, $3, $4, $5, $6, $7, $8, $9,
                                        $10, $11, $12, $13, $14, $15)",
        )
        .bind(&latest.ids)
        .bind(&added)
        .bind(&latest.steps)
        .bind(&latest.times)
        .bind(&latest.values)
        .bind(&self.scalars.ids)
        .bind(&self.scalars.steps)
        .bind(&self.scalars.times)
        .bind(&self.scalars.values)
        .bind(&self.chunks.metrics)
        .bind(&self.chunks.firsts)
        .bind(&self.chunks.lasts)
        .bind(&self.chunks.steps)
        .bind(&self.chunks.times)
        .bind(&self.chunks.values)
        .execute(pool)
        .await?;
        Ok(())
    }
}

/// A metric with at least this many points in a group has them stored in
/// chunks (one row per chunk); with fewer, one row per point, which takes
/// less room than a chunk of one or two.
const CHUNK_MIN_POINTS: usize = 4;
/// Points in a chunk at most: its row stays under the 2 kB at which
/// PostgreSQL would compress it or move it out of line, work that a chunk
/// of numbers does not repay.
const CHUNK_MAX_POINTS: usize = 64;

/// Chunks of scalar points: each a metric and a slice (first and last
/// position, from 1, as SQL counts) of the point columns.
#[derive(Default)]
struct PointChunks {
    metrics: Vec<i64>,
    firsts: Vec<i32>,
    lasts: Vec<i32>,
    steps: Vec<i64>,
    times: Vec<DateTime<Utc>>,
    values: Vec<f64>,
}

impl PointChunks {
    fn push(&mut self, metric: i64, steps: &[i64], times: &[DateTime<Utc>], values: &[f64]) {
        // A group holds at most MAX_GROUP_POINTS points.
        let first = self.steps.len() as i32 + 1;
        self.steps.extend_from_slice(steps);
        self.times.extend_from_slice(times);
        self.values.extend_from_slice(values);
        self.metrics.push(metric);
        self.firsts.push(first);
        self.lasts.push(self.steps.len() as i32);
    }

    fn is_empty(&self) -> bool {
        self.metrics.is_empty()
    }

    async fn store(&self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT store_metric_chunks($1, $2, $3, $4, $5, $6)")
            .bind(&self.metrics)
            .bind(&self.firsts)
            .bind(&self.lasts)
            .bind(&self.steps)
            .bind(&self.times)
            .bind(&self.values)
            .execute(conn)
            .await?;
        Ok(())
    }
}

/// Scalar points as columns.
#[derive(Default)]
struct ScalarRows {
    ids: Vec<i64>,
    steps: Vec<i64>,
    times: Vec<DateTime<Utc>>,
    values: Vec<f64>,
}

impl ScalarRows {
    fn push(&mut self, id: i64, step: i64, at: DateTime<Utc>, value: f64) {
        self.ids.push(id);
        self.steps.push(step);
        self.times.push(at);
        self.values.push(value);
    }

    fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Puts each metric's points together, in step order (points of one
    /// step keep their order): clients log every metric of a step before
    /// the next step, and inserted in that order each point's index entry
    /// lands on another metric's index page than the last.
    fn sort_by_metric_and_step(&mut self) {
        let key = |i: usize| (self.ids[i], self.steps[i]);
        if (1..self.ids.len()).all(|i| key(i - 1) <= key(i)) {
            return;
        }
        let mut order: Vec<usize> = (0..self.ids.len()).collect();
        order.sort_by_key(|&i| key(i));
        self.ids = order.iter().map(|&i| self.ids[i]).collect();
        self.steps = order.iter().map(|&i| self.steps[i]).collect();
        self.times = order.iter().map(|&i| self.times[i]).collect();
        self.values = order.iter().map(|&i| self.values[i]).collect();
    }

    /// Moves the points of each metric that has at least
    /// [`CHUNK_MIN_POINTS`] into chunks, in their order; the others stay.
    /// The points must be sorted by metric.
    fn split_off_chunks(&mut self) -> PointChunks {
        let mut chunks = PointChunks::default();
        let mut rows = ScalarRows::default();
        let mut start = 0;
        while start < self.ids.len() {
            let id = self.ids[start];
            let end = start
                + self.ids[start..]
                    .iter()
                    .take_while(|&&other| other == id)
                    .count();
            if end - start < CHUNK_MIN_POINTS {
                for i in start..end {
                    rows.push(id, self.steps[i], self.times[i], self.values[i]);
                }
            } else {
                for first in (start..end).step_by(CHUNK_MAX_POINTS) {
                    let range = first..(first + CHUNK_MAX_POINTS).min(end);
                    chunks.push(
                        id,
                        &self.steps[range.clone()],
                        &self.times[range.clone()],
                        &self.values[range],
                    );
                }
            }
            start = end;
        }
        *self = rows;
        chunks
    }

    fn to_copy(&self) -> PointCopy {
        let mut copy = PointCopy::new();
        for i in 0..self.ids.len() {
            copy.push(self.ids[i], self.steps[i], self.times[i], self.values[i]);
        }
        copy
    }
}

/// `store_metric_points` found a metric row gone.
fn is_gone(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.code().as_deref() == Some("P0002"))
}

/// Why a group's transaction was abandoned.
enum GroupError {
    /// These batches (index in the group, reason) cannot be stored; the
    /// others can, without them.
    Refused(Vec<(usize, DbError)>),
    /// The metric rows known in memory were out of date; nothing was
    /// stored, and the group can be written again.
    Stale,
    /// The database failed; no batch was stored.
    Database(sqlx::Error),
}

impl From<sqlx::Error> for GroupError {
    fn from(err: sqlx::Error) -> Self {
        GroupError::Database(err)
    }
}

fn is_deadlock(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.code().as_deref() == Some("40P01"))
}

/// Points waiting in all (one batch per request waiting for its write:
/// summing them is little next to any of those requests).
fn waiting_points(waiting: &VecDeque<Pending>) -> usize {
    waiting.iter().map(|pending| pending.points.len()).sum()
}

/// Takes waiting batches, oldest first, up to [`MAX_GROUP_POINTS`] (and at
/// least one whatever its size).
fn take_group(waiting: &mut VecDeque<Pending>) -> Vec<Pending> {
    let mut group = Vec::new();
    let mut points = 0;
    while let Some(next) = waiting.front() {
        if !group.is_empty() && points + next.points.len() > MAX_GROUP_POINTS {
            break;
        }
        points += next.points.len();
        group.extend(waiting.pop_front());
    }
    group
}

/// A batch that names one metric with two shapes is refused before it waits.
fn one_kind_per_name(points: &[NewMetricPoint]) -> Result<(), DbError> {
    let mut kinds: HashMap<&str, MetricKind> = HashMap::new();
    for point in points {
        let kind = *kinds.entry(point.name.as_str()).or_insert(point.kind);
        if kind != point.kind {
            return Err(DbError::MetricKind {
                name: point.name.clone(),
                existing: kind.as_str(),
            });
        }
    }
    Ok(())
}

/// Splits off the batches that log a metric of a run with another shape than
/// an earlier batch of the group: they are judged against the stored shape
/// in a later group.
fn split_shape_disagreements(group: Vec<Pending>) -> (Vec<Pending>, Vec<Pending>) {
    let disagreeing = shape_disagreements(&group);
    let (mut kept, mut deferred) = (Vec::new(), Vec::new());
    for (index, pending) in group.into_iter().enumerate() {
        if disagreeing.contains(&index) {
            deferred.push(pending);
        } else {
            kept.push(pending);
        }
    }
    (kept, deferred)
}

/// Indexes of the batches that disagree with an earlier one on a shape.
fn shape_disagreements<'a>(group: &'a [Pending]) -> HashSet<usize> {
    let mut shapes: HashMap<(Uuid, &str), MetricKind> = HashMap::new();
    let mut disagreeing = HashSet::new();
    for (index, pending) in group.iter().enumerate() {
        let run_id = pending.run_id;
        let key = |point: &'a NewMetricPoint| (run_id, point.name.as_str());
        if pending.points.iter().any(|point| {
            shapes
                .get(&key(point))
                .is_some_and(|kind| *kind != point.kind)
        }) {
            disagreeing.insert(index);
            continue;
        }
        for point in &pending.points {
            shapes.entry(key(point)).or_insert(point.kind);
        }
    }
    disagreeing
}

/// Each run the group writes to that exists.
async fn read_runs(
    tx: &mut PgConnection,
    group: &[Pending],
) -> Result<HashMap<Uuid, KnownRun>, sqlx::Error> {
    let ids: Vec<Uuid> = group
        .iter()
        .map(|p| p.run_id)
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let read_at = Instant::now();
    Ok(sqlx::query_as::<_, (Uuid, Uuid, bool)>(
        "SELECT id, workspace_id, deleted_at IS NOT NULL FROM runs WHERE id = ANY($1)",
    )
    .bind(&ids)
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .map(|(id, workspace_id, deleted)| {
        let run = KnownRun {
            workspace_id,
            deleted,
            read_at,
        };
        (id, run)
    })
    .collect())
}

/// Batches whose run does not exist, is not in the workspace asked for, or
/// is deleted when that matters.
fn refuse_runs(group: &[Pending], runs: &HashMap<Uuid, KnownRun>) -> Vec<(usize, DbError)> {
    group
        .iter()
        .enumerate()
        .filter_map(|(index, p)| match runs.get(&p.run_id) {
            Some(run) if run.workspace_id == p.workspace_id => {
                (p.active_only && run.deleted).then(|| (index, DbError::Deleted("run")))
            }
            // Another workspace's run is answered as not found.
            _ => Some((index, DbError::NotFound("run"))),
        })
        .collect()
}

#[derive(FromRow)]
struct MetricRow {
    id: i64,
    run_id: Uuid,
    name: String,
    kind: String,
    count: i64,
}

/// What a group needs of a metric row.
#[derive(Debug, Clone, Copy)]
struct Head {
    id: i64,
    kind: MetricKind,
    /// Points stored before this group; read with the row, not cached.
    count: i64,
}

/// Creates the metric rows the group needs and locks them all, in (run,
/// name) order so that two flushers cannot deadlock.
async fn upsert_metric_rows(
    tx: &mut PgConnection,
    group: &[Pending],
) -> Result<HeadIndex, sqlx::Error> {
    let mut wanted: BTreeMap<(Uuid, &str), MetricKind> = BTreeMap::new();
    for pending in group {
        for point in &pending.points {
            wanted
                .entry((pending.run_id, point.name.as_str()))
                .or_insert(point.kind);
        }
    }
    let (mut runs, mut names, mut kinds) = (vec![], vec![], vec![]);
    for ((run, name), kind) in wanted {
        runs.push(run);
        names.push(name);
        kinds.push(kind.as_str());
    }
    let rows = sqlx::query_as::<_, MetricRow>(
        "INSERT INTO metrics (run_id, name, kind)
         SELECT r, n, k FROM UNNEST($1::uuid[], $2::text[], $3::text[]) AS u(r, n, k) ORDER BY r, n
         ON CONFLICT (run_id, name) DO UPDATE SET name = EXCLUDED.name
         RETURNING id, run_id, name, kind, count",
    )
    .bind(&runs)
    .bind(&names)
    .bind(&kinds)
    .fetch_all(&mut *tx)
    .await?;
    let mut heads = HeadIndex::default();
    for row in rows {
        let head = Head {
            id: row.id,
            kind: MetricKind::parse(&row.kind).unwrap_or_default(),
            count: row.count,
        };
        heads.insert(row.run_id, &row.name, head);
    }
    Ok(heads)
}

/// Metric rows by run, then name.
#[derive(Default)]
struct HeadIndex(HashMap<Uuid, HashMap<String, Head>>);

impl std::ops::Index<&(Uuid, &str)> for HeadIndex {
    type Output = Head;

    fn index(&self, (run, name): &(Uuid, &str)) -> &Head {
        self.get(*run, name)
            .expect("every metric of the group was upserted")
    }
}

impl HeadIndex {
    fn get(&self, run: Uuid, name: &str) -> Option<&Head> {
        self.0.get(&run)?.get(name)
    }

    fn insert(&mut self, run: Uuid, name: &str, head: Head) {
        let names = self.0.entry(run).or_default();
        if !names.contains_key(name) {
            names.insert(name.to_owned(), head);
        }
    }
}

/// Batches that log a metric with another shape than the stored one.
fn refuse_other_shapes(group: &[Pending], heads: &HeadIndex) -> Vec<(usize, DbError)> {
    group
        .iter()
        .enumerate()
        .filter_map(|(index, pending)| {
            pending.points.iter().find_map(|point| {
                let head = heads.get(pending.run_id, &point.name)?;
                (head.kind != point.kind).then(|| {
                    (
                        index,
                        DbError::MetricKind {
                            name: point.name.clone(),
                            existing: head.kind.as_str(),
                        },
                    )
                })
            })
        })
        .collect()
}

/// Points of the JSON shapes, as columns for one `UNNEST` insert.
#[derive(Default)]
struct JsonRows<'a> {
    ids: Vec<i64>,
    steps: Vec<i64>,
    times: Vec<DateTime<Utc>>,
    values: Vec<Json<&'a serde_json::Value>>,
}

impl<'a> JsonRows<'a> {
    fn push(&mut self, id: i64, step: i64, at: DateTime<Utc>, value: &'a serde_json::Value) {
        self.ids.push(id);
        self.steps.push(step);
        self.times.push(at);
        self.values.push(Json(value));
    }

    async fn insert(self, tx: &mut PgConnection) -> Result<(), sqlx::Error> {
        if self.ids.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO metric_values (metric_id, step, at, value)
             SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::timestamptz[], $4::jsonb[])",
        )
        .bind(&self.ids)
        .bind(&self.steps)
        .bind(&self.times)
        .bind(&self.values)
        .execute(tx)
        .await?;
        Ok(())
    }
}

/// The latest point of a metric in a group, and how many points it adds.
struct Latest<'a> {
    added: i64,
    step: i64,
    at: DateTime<Utc>,
    value: &'a MetricValue,
}

impl<'a> Latest<'a> {
    fn first(step: i64, point: &'a NewMetricPoint) -> Latest<'a> {
        Latest {
            added: 0,
            step,
            at: point.at,
            value: &point.value,
        }
    }

    fn add(&mut self, step: i64, point: &'a NewMetricPoint) {
        self.added += 1;
        if (step, point.at) >= (self.step, self.at) {
            self.step = step;
            self.at = point.at;
            self.value = &point.value;
        }
    }
}

/// Adds the group's counts and moves each metric's latest value forward.
/// Returns how many metric rows it updated.
async fn update_latest(
    tx: &mut PgConnection,
    latest: BTreeMap<i64, Latest<'_>>,
) -> Result<u64, sqlx::Error> {
    let mut ids = Vec::with_capacity(latest.len());
    let (mut added, mut steps, mut times, mut values, mut jsons) =
        (vec![], vec![], vec![], vec![], vec![]);
    for (id, point) in latest {
        ids.push(id);
        added.push(point.added);
        steps.push(point.step);
        times.push(point.at);
        let (value, json) = match point.value {
            MetricValue::Scalar(value) => (Some(*value), None),
            MetricValue::Json(value) => (None, Some(Json(value))),
        };
        values.push(value);
        jsons.push(json);
    }
    let done = sqlx::query(
        "UPDATE metrics m SET count = m.count + u.added,
             latest_step = CASE WHEN m.latest_step IS NULL OR (u.step, u.at) >= (m.latest_step, m.latest_at) THEN u.step ELSE m.latest_step END,
             latest_value = CASE WHEN m.latest_step IS NULL OR (u.step, u.at) >= (m.latest_step, m.latest_at) THEN u.value ELSE m.latest_value END,
             latest_json = CASE WHEN m.latest_step IS NULL OR (u.step, u.at) >= (m.latest_step, m.latest_at) THEN u.json ELSE m.latest_json END,
             latest_at = CASE WHEN m.latest_step IS NULL OR (u.step, u.at) >= (m.latest_step, m.latest_at) THEN u.at ELSE m.latest_at END
         FROM UNNEST($1::bigint[], $2::bigint[], $3::bigint[], $4::timestamptz[], $5::float8[], $6::jsonb[])
              AS u(id, added, step, at, value, json)
         WHERE m.id = u.id",
    )
    .bind(&ids)
    .bind(&added)
    .bind(&steps)
    .bind(&times)
    .bind(&values)
    .bind(&jsons)
    .execute(tx)
    .await?;
    Ok(done.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(name: &str, kind: MetricKind) -> NewMetricPoint {
        NewMetricPoint {
            name: name.into(),
            kind,
            step: None,
            at: Utc::now(),
            value: MetricValue::Scalar(1.0),
        }
    }

    fn pending(run_id: Uuid, points: Vec<NewMetricPoint>) -> Pending {
        Pending {
            workspace_id: Uuid::nil(),
            run_id,
            active_only: false,
            points,
            reply: oneshot::channel().0,
        }
    }

    #[test]
    fn groups_stop_at_the_point_limit_but_take_at_least_one() {
        let run = Uuid::new_v4();
        let big = || pending(run, vec![point("a", MetricKind::Scalar); MAX_GROUP_POINTS]);
        let mut waiting: VecDeque<Pending> = [big(), big()].into_iter().collect();
        assert_eq!(take_group(&mut waiting).len(), 1);
        assert_eq!(waiting.len(), 1);
        let small = || pending(run, vec![point("a", MetricKind::Scalar); 10]);
        let mut waiting: VecDeque<Pending> = [small(), small(), small()].into_iter().collect();
        assert_eq!(take_group(&mut waiting).len(), 3);
    }

    #[test]
    fn a_batch_that_gives_a_metric_another_shape_waits_for_a_later_group() {
        let (run, other_run) = (Uuid::new_v4(), Uuid::new_v4());
        let group = vec![
            pending(run, vec![point("a", MetricKind::Scalar)]),
            pending(run, vec![point("a", MetricKind::List)]),
            pending(other_run, vec![point("a", MetricKind::List)]),
            pending(run, vec![point("b", MetricKind::Row)]),
        ];
        let (kept, deferred) = split_shape_disagreements(group);
        assert_eq!(kept.len(), 3);
        assert_eq!(deferred.len(), 1);
        assert_eq!(deferred[0].points[0].kind, MetricKind::List);
        assert_eq!(deferred[0].run_id, run);
    }

    #[test]
    fn points_go_metric_by_metric_in_step_order_and_equal_steps_keep_their_order() {
        let at = Utc::now();
        let mut rows = ScalarRows::default();
        // Two metrics logged step by step, metric 2 twice at step 1.
        for (id, step, value) in [
            (2, 0, 0.0),
            (1, 0, 1.0),
            (2, 1, 2.0),
            (2, 1, 3.0),
            (1, 1, 4.0),
        ] {
            rows.push(id, step, at, value);
        }
        rows.sort_by_metric_and_step();
        assert_eq!(rows.ids, [1, 1, 2, 2, 2]);
        assert_eq!(rows.steps, [0, 1, 0, 1, 1]);
        assert_eq!(rows.values, [1.0, 4.0, 0.0, 2.0, 3.0]);
    }

    #[test]
    fn metrics_with_many_points_go_in_chunks_and_the_few_stay_rows() {
        let at = Utc::now();
        let mut rows = ScalarRows::default();
        // Metric 1 has 150 points (three chunks: 64, 64, 22), metric 2 has
        // 3 (rows), metric 3 has exactly CHUNK_MIN_POINTS (one chunk).
        for step in 0..150 {
            rows.push(1, step, at, step as f64);
        }
        for step in 0..3 {
            rows.push(2, step, at, -1.0);
        }
        for step in 10..10 + CHUNK_MIN_POINTS as i64 {
            rows.push(3, step, at, 0.5);
        }
        let chunks = rows.split_off_chunks();
        assert_eq!(rows.ids, [2, 2, 2]);
        assert_eq!(rows.steps, [0, 1, 2]);
        assert_eq!(chunks.metrics, [1, 1, 1, 3]);
        assert_eq!(chunks.firsts, [1, 65, 129, 151]);
        assert_eq!(chunks.lasts, [64, 128, 150, 154]);
        assert_eq!(chunks.steps.len(), 154);
        // Slices are 1-based and inclusive, as in SQL.
        assert_eq!(chunks.steps[128], 128);
        assert_eq!(chunks.values[149], 149.0);
        assert_eq!(chunks.steps[150..], [10, 11, 12, 13]);
    }

    #[test]
    fn binary_copy_rows_have_four_eight_byte_fields() {
        let mut copy = PointCopy::new();
        let at = DateTime::<Utc>::from_timestamp(946_684_800, 0).unwrap();
        copy.push(7, 3, at, 0.5);
        assert_eq!(copy.len(), 1);
        let bytes = copy.finish();
        // Header (19 bytes), then the field count and four (length, value) pairs.
        let row = &bytes[19..19 + 2 + 4 * 12];
        assert_eq!(&row[..2], &4i16.to_be_bytes());
        assert_eq!(&row[2..6], &8i32.to_be_bytes());
        assert_eq!(&row[6..14], &7i64.to_be_bytes());
        // 2000-01-01 is PostgreSQL's zero.
        assert_eq!(&row[30..38], &0i64.to_be_bytes());
        assert_eq!(&row[42..50], &0.5f64.to_be_bytes());
        assert_eq!(&bytes[bytes.len() - 2..], &(-1i16).to_be_bytes());
    }
}
