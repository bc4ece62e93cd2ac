//! Run logs: one row per line, identified by (run, source, seq). Writes are
//! batched into one multi-row insert, and a line already stored is skipped,
//! so re-reading a stream after a restart neither loses nor duplicates lines.

use chrono::{DateTime, Utc};
use sqlx::FromRow;
use std::collections::HashMap;
use uuid::Uuid;

use crate::{Db, DbError};

/// One stored log line.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct LogLine {
    /// Where it came from: `stdout`, `stderr`, `build`, `logs/train.log`, …
    pub source: String,
    /// Its position in its source, from 0.
    pub seq: i64,
    /// When it was written.
    pub at: DateTime<Utc>,
    /// Its text, without the line break.
    pub line: String,
}

impl Db {
    /// Stores lines of a run; lines whose (source, seq) is stored already are
    /// skipped. Returns how many were new.
    pub async fn append_run_logs(&self, run_id: Uuid, lines: &[LogLine]) -> Result<u64, DbError> {
        if lines.is_empty() {
            return Ok(0);
        }
        let sources: Vec<&str> = lines.iter().map(|l| l.source.as_str()).collect();
        let seqs: Vec<i64> = lines.iter().map(|l| l.seq).collect();
        let times: Vec<DateTime<Utc>> = lines.iter().map(|l| l.at).collect();
        let texts: Vec<&str> = lines.iter().map(|l| l.line.as_str()).collect();
        let done = sqlx::query(
            "INSERT INTO run_logs (run_id, source, seq, at, line)
             SELECT $1, * FROM UNNEST($2::text[], $3::bigint[], $4::timestamptz[], $5::text[])
             ON CONFLICT (run_id, source, seq) DO NOTHING",
        )
        .bind(run_id)
        .bind(&sources)
        .bind(&seqs)
        .bind(&times)
        .bind(&texts)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected())
    }

    /// How many lines of each source are stored for a run (the next seq of each).
    pub async fn run_log_counts(&self, run_id: Uuid) -> Result<HashMap<String, i64>, DbError> {
        // A loose index scan: one index probe per source and one for its last
        // line, however many lines the run has (a GROUP BY would read them all).
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "WITH RECURSIVE sources AS (
                 (SELECT source FROM run_logs WHERE run_id = $1 ORDER BY source LIMIT 1)
                 UNION ALL
                 SELECT (SELECT l.source FROM run_logs l
                         WHERE l.run_id = $1 AND l.source > s.source ORDER BY l.source LIMIT 1)
                 FROM sources s WHERE s.source IS NOT NULL
             )
             SELECT s.source,
                    (SELECT l.seq FROM run_logs l WHERE l.run_id = $1 AND l.source = s.source
                     ORDER BY l.seq DESC LIMIT 1) + 1
             FROM sources s WHERE s.source IS NOT NULL",
        )
        .bind(run_id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().collect())
    }

    /// When the run's last stored stdout or stderr line was written.
    pub async fn last_output_at(
        &self,
        run_id: Uuid,
        sources: &[&str],
    ) -> Result<Option<DateTime<Utc>>, DbError> {
        Ok(sqlx::query_scalar(
            "SELECT max(at) FROM run_logs WHERE run_id = $1 AND source = ANY($2)",
        )
        .bind(run_id)
        .bind(sources)
        .fetch_one(self.pool())
        .await?)
    }

    /// How many stored stdout and stderr lines were written at or after `at`.
    pub async fn output_lines_since(
        &self,
        run_id: Uuid,
        sources: &[&str],
        at: DateTime<Utc>,
    ) -> Result<HashMap<String, i64>, DbError> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT source, count(*) FROM run_logs
             WHERE run_id = $1 AND source = ANY($2) AND at >= $3 GROUP BY source",
        )
        .bind(run_id)
        .bind(sources)
        .bind(at)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().collect())
    }

    /// The sources a run's log has.
    pub async fn run_log_sources(
        &self,
        workspace_id: Uuid,
        run_id: Uuid,
    ) -> Result<Vec<String>, DbError> {
        self.get_run(workspace_id, run_id).await?;
        let counts = self.run_log_counts(run_id).await?;
        let mut sources: Vec<String> = counts.into_keys().collect();
        sources.sort();
        Ok(sources)
    }

    /// Up to `limit` lines of one source with seq ≥ `from_seq`, in order.
    pub async fn read_run_log(
        &self,
        run_id: Uuid,
        source: &str,
        from_seq: i64,
        limit: i64,
    ) -> Result<Vec<LogLine>, DbError> {
        Ok(sqlx::query_as::<_, LogLine>(
            "SELECT source, seq, at, line FROM run_logs
             WHERE run_id = $1 AND source = $2 AND seq >= $3
             ORDER BY seq LIMIT $4",
        )
        .bind(run_id)
        .bind(source)
        .bind(from_seq)
        .bind(limit)
        .fetch_all(self.pool())
        .await?)
    }
}
