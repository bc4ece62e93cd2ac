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

/// Buffers a run's lines and writes them in batches.
pub(crate) struct LogWriter {
    db: Db,
    run_id: Uuid,
    stored: HashMap<String, i64>,
    pass: HashMap<String, i64>,
    buffer: Vec<LogLine>,
    oldest: Option<Instant>,
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
        })
    }

    /// Starts reading `source` again from its first line.
    pub(crate) fn restart(&mut self, source: &str) {
        self.pass.insert(source.to_string(), 0);
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

    /// Writes the buffer if it is full or has waited long enough.
    pub(crate) async fn flush_if_due(&mut self) -> Result<(), DbError> {
        let due = self.buffer.len() >= MAX_BUFFERED
            || self.oldest.is_some_and(|t| t.elapsed() >= MAX_DELAY);
        if due {
            self.flush().await?;
        }
        Ok(())
    }

    /// Writes everything buffered.
    pub(crate) async fn flush(&mut self) -> Result<(), DbError> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        self.db.append_run_logs(self.run_id, &self.buffer).await?;
        self.buffer.clear();
        self.oldest = None;
        Ok(())
    }
}
