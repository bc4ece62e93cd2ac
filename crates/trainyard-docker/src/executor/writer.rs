//! Batched, resumable writes of log lines.
//!
//! Streams are re-read from their start after a restart or an early end;
//! each pass numbers lines from 0 per source, and a line whose number is
//! already stored is skipped. So a line is stored once, with a stable seq.

use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use trainyard_db::logs::LogLine;
use trainyard_db::{Db, DbError};
use uuid::Uuid;

/// Lines buffered before a write is forced.
const MAX_BUFFERED: usize = 1000;
/// Longest a line waits in the buffer.
const MAX_DELAY: Duration = Duration::from_millis(250);

/// Buffers a run's lines and writes them in batches. One batch is written in
/// the background while the next fills, so reading the container's output
/// and storing it overlap.
pub(crate) struct LogWriter {
    db: Db,
    run_id: Uuid,
    stored: HashMap<String, i64>,
    pass: HashMap<String, i64>,
    buffer: Vec<LogLine>,
    oldest: Option<Instant>,
    in_flight: Option<tokio::task::JoinHandle<Result<u64, DbError>>>,
}

impl LogWriter {
    /// A writer that knows what is stored already.
    pub(crate) async fn open(db: Db, run_id: Uuid) -> Result<LogWriter, DbError> {
        let stored = db.run_log_counts(run_id).await?;
        Ok(LogWriter {
            db,
            run_id,
            stored,
            pass: HashMap::new(),
            buffer: Vec::new(),
            oldest: None,
            in_flight: None,
        })
    }

    /// Starts reading `source` again from its first line.
    pub(crate) fn restart(&mut self, source: &str) {
        self.pass.insert(source.to_string(), 0);
    }

    /// Starts reading `source` again at its line number `index` (a read that
    /// begins part-way, at a point in time).
    pub(crate) fn restart_at(&mut self, source: &str, index: i64) {
        self.pass.insert(source.to_string(), index.max(0));
    }

    /// How many lines of `source` are stored or on their way.
    pub(crate) fn stored(&self, source: &str) -> i64 {
        self.stored.get(source).copied().unwrap_or(0)
    }

    /// Offers the next line of `source` in this pass; it is kept only if it
    /// is not stored yet.
    pub(crate) fn offer(&mut self, source: &str, at: DateTime<Utc>, line: String) {
        let index = self.pass.entry(source.to_string()).or_insert(0);
        let seq = *index;
        *index += 1;
        let next = self.stored.entry(source.to_string()).or_insert(0);
        if seq < *next {
            return;
        }
        *next = seq + 1;
        self.buffer.push(LogLine {
            source: source.to_string(),
            seq,
            at,
            line,
        });
        self.oldest.get_or_insert_with(Instant::now);
    }

    /// Starts writing the buffer if it is full or has waited long enough.
    pub(crate) async fn flush_if_due(&mut self) -> Result<(), DbError> {
        let due = self.buffer.len() >= MAX_BUFFERED
            || self.oldest.is_some_and(|t| t.elapsed() >= MAX_DELAY);
        if due {
            self.send().await?;
        }
        Ok(())
    }

    /// Writes everything buffered and waits until it is stored.
    pub(crate) async fn flush(&mut self) -> Result<(), DbError> {
        self.send().await?;
        self.wait_in_flight().await
    }

    /// Hands the buffer to a background write, after the previous one is done
    /// (so at most one batch is in flight and errors are not lost).
    async fn send(&mut self) -> Result<(), DbError> {
        self.wait_in_flight().await?;
        if self.buffer.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.buffer);
        self.oldest = None;
        let (db, run_id) = (self.db.clone(), self.run_id);
        self.in_flight = Some(tokio::spawn(async move {
            db.append_run_logs(run_id, &batch).await
        }));
        Ok(())
    }

    async fn wait_in_flight(&mut self) -> Result<(), DbError> {
        if let Some(task) = self.in_flight.take() {
            match task.await {
                Ok(written) => {
                    written?;
                }
                // A panic in the write is a bug: let it surface here.
                Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
                Err(_) => {}
            }
        }
        Ok(())
    }
}
