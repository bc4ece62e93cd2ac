//! Watching a running container: its output into the run's log, `./logs`
//! tailed, cancel requests and the time limit honoured, until it exits.

use chrono::{DateTime, Utc};
use futures::StreamExt;
use std::time::{Duration, Instant};
use tokio::time::MissedTickBehavior;
use trainyard_db::runs::Run;

use super::files::tail_logs_dir;
use super::outcome::{Ended, StopReason};
use super::writer::LogWriter;
use super::Executor;
use crate::container::OutputStream;
use crate::lines::LineSplitter;
use crate::DockerError;

/// The log sources of one container: `stdout`, `stderr` and `logs/…`, or
/// for a rank of a distributed run `stdout/rank-N`, `stderr/rank-N` and
/// `logs/rank-N/…`.
#[derive(Debug, Clone)]
pub(crate) struct Sources {
    stdout: String,
    stderr: String,
    rank: Option<u32>,
}

impl Sources {
    pub(crate) fn of(rank: Option<u32>) -> Sources {
        let (stdout, stderr) = match rank {
            None => ("stdout".to_string(), "stderr".to_string()),
            Some(rank) => (format!("stdout/rank-{rank}"), format!("stderr/rank-{rank}")),
        };
        Sources {
            stdout,
            stderr,
            rank,
        }
    }

    fn output(&self, stream: OutputStream) -> &str {
        match stream {
            OutputStream::Stdout => &self.stdout,
            OutputStream::Stderr => &self.stderr,
        }
    }

    fn outputs(&self) -> [&str; 2] {
        [&self.stdout, &self.stderr]
    }

    /// The source of a file under `./logs` (`logs/train.log`).
    pub(crate) fn logs_file(&self, path: String) -> String {
        match (self.rank, path.strip_prefix("logs/")) {
            (Some(rank), Some(rest)) => format!("logs/rank-{rank}/{rest}"),
            _ => path,
        }
    }
}

/// Splitters for both streams of one pass, noting since when each holds a
/// line that has begun but not ended.
#[derive(Default)]
struct Splitters {
    stdout: LineSplitter,
    stderr: LineSplitter,
    pending_since: [Option<DateTime<Utc>>; 2],
}

impl Splitters {
    fn get(&mut self, stream: OutputStream) -> &mut LineSplitter {
        match stream {
            OutputStream::Stdout => &mut self.stdout,
            OutputStream::Stderr => &mut self.stderr,
        }
    }

    /// Splits a chunk into complete lines.
    fn push(&mut self, stream: OutputStream, at: DateTime<Utc>, bytes: &[u8]) -> Vec<String> {
        let lines = self.get(stream).push(bytes);
        let pending = self.get(stream).has_pending();
        let since = &mut self.pending_since[stream as usize];
        match (pending, lines.is_empty()) {
            (false, _) => *since = None,
            (true, false) => *since = Some(at),
            (true, true) => *since = since.or(Some(at)),
        }
        lines
    }

    /// The earliest time of a line begun and not ended, if any.
    fn earliest_pending(&self) -> Option<DateTime<Utc>> {
        self.pending_since.iter().flatten().min().copied()
    }
}

impl Executor {
    /// Follows the container until it exits, then reads its output once more
    /// from the start: a follow can end early without error when the
    /// container exits just as it attaches, and the second pass stores
    /// whatever the first missed.
    pub(crate) async fn supervise(
        &self,
        run: &Run,
        container: &str,
        sources: &Sources,
    ) -> Result<Ended, DockerError> {
        let mut writer = LogWriter::open(self.db.clone(), run.id)
            .await
            .map_err(db_error)?;
        let limit = run_time_limit(run);
        let started = run
            .started_at
            .map(|t| t.into())
            .unwrap_or_else(std::time::SystemTime::now);
        let mut watch = Watch {
            sources: sources.clone(),
            stopped: None,
            last_cancel_check: Instant::now(),
            last_tail: Instant::now(),
        };

        let mut output = self.engine.output(container, true, 0).boxed();
        let mut splitters = Splitters::default();
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                chunk = output.next() => match chunk {
                    Some(Ok(chunk)) => {
                        for line in splitters.push(chunk.stream, chunk.at, &chunk.bytes) {
                            writer.offer(sources.output(chunk.stream), chunk.at, line);
                        }
                        writer.flush_if_due().await.map_err(db_error)?;
                    }
                    Some(Err(err)) => {
                        tracing::warn!(run_id = %run.id, error = %err, "log follow failed; re-reading after exit");
                        break;
                    }
                    None => break,
                },
                _ = tick.tick() => {
                    writer.flush_if_due().await.map_err(db_error)?;
                    self.watch(run, container, &mut watch, &mut writer, limit, started).await?;
                }
            }
        }
        drop(output);

        let exit_code = loop {
            match self.engine.container_state(container).await? {
                Some(state) if state.running => {
                    self.watch(run, container, &mut watch, &mut writer, limit, started)
                        .await?;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Some(state) => break state.exit_code,
                None => break None,
            }
        };

        // The final pass reads again from the second of the last line stored
        // (or of a line begun and not ended): a follow can end early, but
        // what it delivered came in order, so nothing before that is missing.
        writer.flush().await.map_err(db_error)?;
        let outputs = sources.outputs();
        let resume = match (
            self.db
                .last_output_at(run.id, &outputs)
                .await
                .map_err(db_error)?,
            splitters.earliest_pending(),
        ) {
            (Some(stored), Some(pending)) => Some(stored.min(pending)),
            (stored, pending) => stored.or(pending),
        };
        let since = resume.map(|at| at.timestamp()).unwrap_or(0);
        let boundary = DateTime::from_timestamp(since, 0).unwrap_or_default();
        let again = self
            .db
            .output_lines_since(run.id, &outputs, boundary)
            .await
            .map_err(db_error)?;
        for name in outputs {
            let repeated = if since == 0 {
                writer.stored(name)
            } else {
                again.get(name).copied().unwrap_or(0)
            };
            writer.restart_at(name, writer.stored(name) - repeated);
        }
        drop(splitters);
        let mut splitters = Splitters::default();
        let mut output = self.engine.output(container, false, since).boxed();
        let mut last_at = chrono::Utc::now();
        while let Some(chunk) = output.next().await {
            let chunk = chunk?;
            last_at = chunk.at;
            for line in splitters.push(chunk.stream, chunk.at, &chunk.bytes) {
                writer.offer(sources.output(chunk.stream), chunk.at, line);
            }
            writer.flush_if_due().await.map_err(db_error)?;
        }
        for stream in [OutputStream::Stdout, OutputStream::Stderr] {
            if let Some(rest) = splitters.get(stream).finish() {
                writer.offer(sources.output(stream), last_at, rest);
            }
        }
        tail_logs_dir(&self.engine, container, &mut writer, true, sources).await?;
        writer.flush().await.map_err(db_error)?;
        Ok(Ended {
            exit_code,
            stopped: watch.stopped,
        })
    }

    /// The periodic checks while a container runs.
    async fn watch(
        &self,
        run: &Run,
        container: &str,
        watch: &mut Watch,
        writer: &mut LogWriter,
        limit: Option<Duration>,
        started: std::time::SystemTime,
    ) -> Result<(), DockerError> {
        if watch.stopped.is_none() && watch.last_cancel_check.elapsed() >= Duration::from_secs(1) {
            watch.last_cancel_check = Instant::now();
            if self
                .db
                .cancel_requested_at(run.id)
                .await
                .map_err(db_error)?
                .is_some()
            {
                self.stop_in_background(run, container, StopReason::Canceled, watch);
            }
        }
        if watch.stopped.is_none() {
            if let Some(limit) = limit {
                if started.elapsed().unwrap_or_default() >= limit {
                    self.stop_in_background(run, container, StopReason::TimedOut, watch);
                }
            }
        }
        if watch.last_tail.elapsed() >= self.config.logs_poll {
            watch.last_tail = Instant::now();
            tail_logs_dir(&self.engine, container, writer, false, &watch.sources).await?;
        }
        Ok(())
    }

    /// Stops the container without holding up the log pump: SIGTERM, then
    /// SIGKILL after the grace period.
    fn stop_in_background(
        &self,
        run: &Run,
        container: &str,
        reason: StopReason,
        watch: &mut Watch,
    ) {
        tracing::info!(run_id = %run.id, ?reason, "stopping the run's container");
        watch.stopped = Some(reason);
        let engine = self.engine.clone();
        let container = container.to_string();
        let grace = self.config.stop_grace_seconds;
        tokio::spawn(async move {
            if let Err(err) = engine.stop_container(&container, grace).await {
                tracing::warn!(error = %err, "stopping a container failed");
            }
        });
    }
}

struct Watch {
    sources: Sources,
    stopped: Option<StopReason>,
    last_cancel_check: Instant,
    last_tail: Instant,
}

fn run_time_limit(run: &Run) -> Option<Duration> {
    run.spec
        .0
        .get("time_limit_seconds")
        .and_then(|v| v.as_u64())
        .map(Duration::from_secs)
}

pub(crate) fn db_error(err: trainyard_db::DbError) -> DockerError {
    DockerError::Other(format!("database: {err}"))
}
