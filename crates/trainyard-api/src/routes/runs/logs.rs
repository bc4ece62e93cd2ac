//! A run's log: paged reads per source, and a live follow over Server-Sent Events.

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use chrono::{DateTime, Utc};
use futures::stream::Stream;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;
use trainyard_core::{Role, RunStatus};
use trainyard_db::logs::LogLine;
use trainyard_db::{Db, DbError};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::InWorkspace;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{AppJson, AppPath, AppQuery};
use crate::routes::int_param;

/// Most lines one page returns.
const MAX_LINES_PER_PAGE: i64 = 10_000;
/// How often a follow looks for new lines.
const FOLLOW_INTERVAL: Duration = Duration::from_millis(300);

/// One line of a run's log.
#[derive(Debug, Serialize, ToSchema)]
pub struct LogLineView {
    /// Where it came from: `stdout`, `stderr`, `build`, `logs/<file>`.
    pub source: String,
    /// Its position in its source, from 0.
    pub seq: i64,
    /// When it was written.
    pub at: DateTime<Utc>,
    /// Its text.
    pub line: String,
}

impl From<LogLine> for LogLineView {
    fn from(l: LogLine) -> Self {
        LogLineView {
            source: l.source,
            seq: l.seq,
            at: l.at,
            line: l.line,
        }
    }
}

/// Which part of the log to read.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LogQuery {
    /// The source to read (default `stdout`).
    pub source: Option<String>,
    /// First seq to return (default 0).
    #[param(value_type = Option<i64>)]
    pub from_seq: Option<String>,
    /// Most lines to return, 1 to 10000 (default 1000).
    #[param(value_type = Option<i64>)]
    pub limit: Option<String>,
}

/// A page of one source of a run's log.
#[derive(Debug, Serialize, ToSchema)]
pub struct LogPage {
    /// The source read: the one asked for, or by default `stdout` (rank 0's,
    /// `stdout/rank-0`, for a distributed run).
    pub source: String,
    /// Every source the run's log has.
    pub sources: Vec<String>,
    /// The lines, in order.
    pub lines: Vec<LogLineView>,
    /// Pass as `from_seq` to read on.
    pub next_seq: i64,
}

/// Reads a page of one source of a run's log.
#[utoipa::path(get, path = "/workspaces/{workspace}/runs/{run_id}/logs", tag = "runs",
    params(
        ("workspace" = String, Path, description = "Workspace name or id"),
        ("run_id" = Uuid, Path, description = "Run id"),
        LogQuery,
    ),
    responses(
        (status = 200, description = "A page of lines", body = LogPage),
        (status = 404, description = "No such run in the workspace", body = Problem),
    ))]
pub(super) async fn read_run_log(
    State(db): State<Db>,
    scope: InWorkspace,
    AppPath(path): AppPath<(String, Uuid)>,
    AppQuery(query): AppQuery<LogQuery>,
) -> ApiResult<AppJson<LogPage>> {
    let (_, run_id) = path;
    let workspace_id = scope.require(Role::Reader)?;
    let sources = db.run_log_sources(workspace_id, run_id).await?;
    let source = query
        .source
        .unwrap_or_else(|| default_source(&sources).to_string());
    let window = PageWindow::parse(query.from_seq.as_deref(), query.limit.as_deref())?;
    let (lines, next_seq) = window.read(&db, run_id, &source).await?;
    Ok(AppJson(LogPage {
        source,
        sources,
        lines,
        next_seq,
    }))
}

/// Which lines of a log source a page holds: `from_seq` (default 0) and
/// `limit` (1 to 10,000, default 1,000) as the query gives them.
pub(crate) struct PageWindow {
    from_seq: i64,
    limit: i64,
}

impl PageWindow {
    pub(crate) fn parse(from_seq: Option<&str>, limit: Option<&str>) -> Result<Self, ApiError> {
        Ok(PageWindow {
            from_seq: int_param("from_seq", from_seq, 0..=i64::MAX)?.unwrap_or(0),
            limit: int_param("limit", limit, 1..=MAX_LINES_PER_PAGE)?.unwrap_or(1000),
        })
    }

    /// The lines of `source` of the run's log in the window, and the
    /// `from_seq` of the next page.
    pub(crate) async fn read(
        &self,
        db: &Db,
        run_id: Uuid,
        source: &str,
    ) -> Result<(Vec<LogLineView>, i64), DbError> {
        let lines = db
            .read_run_log(run_id, source, self.from_seq, self.limit)
            .await?;
        let next_seq = lines.last().map(|l| l.seq + 1).unwrap_or(self.from_seq);
        Ok((lines.into_iter().map(Into::into).collect(), next_seq))
    }

    /// The page of a log that has no lines to show.
    pub(crate) fn empty(&self) -> (Vec<LogLineView>, i64) {
        (Vec::new(), self.from_seq)
    }
}

/// The source a page shows when none is asked for: the process's output,
/// or rank 0's for a distributed run.
fn default_source(sources: &[String]) -> &'static str {
    let distributed =
        !sources.iter().any(|s| s == "stdout") && sources.iter().any(|s| s == "stdout/rank-0");
    if distributed {
        "stdout/rank-0"
    } else {
        "stdout"
    }
}

/// Which sources to follow.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FollowQuery {
    /// Sources to follow; every source when absent. Repeat for several.
    #[serde(default)]
    pub source: Vec<String>,
}

/// Follows a run's log live over Server-Sent Events: `line` events carry a
/// [`LogLineView`], `status` events the run's status when it changes, and the
/// stream ends with an `end` event once the run has ended and every line was sent.
#[utoipa::path(get, path = "/workspaces/{workspace}/runs/{run_id}/logs/follow", tag = "runs",
    params(
        ("workspace" = String, Path, description = "Workspace name or id"),
        ("run_id" = Uuid, Path, description = "Run id"),
        FollowQuery,
    ),
    responses(
        (status = 200, description = "An event stream (text/event-stream)", content_type = "text/event-stream", body = String),
        (status = 404, description = "No such run in the workspace", body = Problem),
    ))]
pub(super) async fn follow_run_log(
    State(db): State<Db>,
    scope: InWorkspace,
    AppPath(path): AppPath<(String, Uuid)>,
    AppQuery(query): AppQuery<FollowQuery>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let (_, run_id) = path;
    let workspace_id = scope.require(Role::Reader)?;
    db.get_run(workspace_id, run_id).await?;
    let stream = follow(db, workspace_id, run_id, query.source);
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

fn follow(
    db: Db,
    workspace_id: Uuid,
    run_id: Uuid,
    only: Vec<String>,
) -> impl Stream<Item = Result<Event, Infallible>> {
    channel_stream(move |tx| async move {
        let mut next: HashMap<String, i64> = HashMap::new();
        let mut last_status: Option<RunStatus> = None;
        loop {
            let Ok(run) = db.get_run(workspace_id, run_id).await else {
                return;
            };
            let status = run.status();
            // Read the lines after the status, so a terminal status seen here
            // means no line can come after the ones read below.
            let sources = db
                .run_log_sources(workspace_id, run_id)
                .await
                .unwrap_or_default();
            let mut batch = Vec::new();
            for source in sources
                .iter()
                .filter(|s| only.is_empty() || only.contains(s))
            {
                let from = *next.get(source).unwrap_or(&0);
                loop {
                    let Ok(lines) = db
                        .read_run_log(
                            run_id,
                            source,
                            from + batch_len(&batch, source),
                            MAX_LINES_PER_PAGE,
                        )
                        .await
                    else {
                        return;
                    };
                    let done = (lines.len() as i64) < MAX_LINES_PER_PAGE;
                    batch.extend(lines);
                    if done {
                        break;
                    }
                }
            }
            batch.sort_by(|a, b| {
                a.at.cmp(&b.at)
                    .then(a.source.cmp(&b.source))
                    .then(a.seq.cmp(&b.seq))
            });
            for line in batch {
                next.insert(line.source.clone(), line.seq + 1);
                let event = Event::default()
                    .event("line")
                    .json_data(LogLineView::from(line))
                    .unwrap_or_default();
                if tx.send(Ok(event)).await.is_err() {
                    return;
                }
            }
            if last_status != Some(status) {
                last_status = Some(status);
                let event = Event::default().event("status").data(status.as_str());
                if tx.send(Ok(event)).await.is_err() {
                    return;
                }
            }
            if status.is_terminal() {
                let _ = tx
                    .send(Ok(Event::default().event("end").data(status.as_str())))
                    .await;
                return;
            }
            tokio::time::sleep(FOLLOW_INTERVAL).await;
        }
    })
}

fn batch_len(batch: &[LogLine], source: &str) -> i64 {
    batch.iter().filter(|l| l.source == source).count() as i64
}

/// A stream fed by a task through a channel; the task ends when the client goes.
fn channel_stream<F, Fut>(producer: F) -> impl Stream<Item = Result<Event, Infallible>>
where
    F: FnOnce(tokio::sync::mpsc::Sender<Result<Event, Infallible>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(1024);
    tokio::spawn(producer(tx));
    futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
}
