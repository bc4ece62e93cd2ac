//! Execution benchmark: real runs on the local Docker engine, through the
//! in-process server, scheduler and executor of `TestApp::spawn_executing`,
//! each set beside the plain `docker` CLI doing the same work.
//!
//! 1. Log throughput of one run that prints `--lines` numbered lines: from the
//!    run's `started_at` to its last stdout line stored in PostgreSQL, against
//!    `docker logs` of a plain container that printed the same lines.
//! 2. The same with `--parallel-runs` runs of `--parallel-lines` lines each,
//!    submitted together, against `docker logs` of as many plain containers
//!    read one after another.
//! 3. Submit-to-Running and submit-to-Completed of `--submits` runs of `true`
//!    (sequential, image already built), against `docker run --rm … true`.
//!
//! It prints a Markdown table and checks nothing about speed, only that every
//! run completed with every line stored. The server, PostgreSQL, the Docker
//! engine and the CLI share this machine's cores, so compare figures only
//! between runs on the same machine.
//!
//! `cargo run --release -p trainyard-tests --bin exec-bench -- --lines 200000 --parallel-runs 20 --parallel-lines 20000 --submits 10`

use anyhow::{bail, ensure, Context, Result};
use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use serde_json::json;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use trainyard_tests::TestApp;
use uuid::Uuid;

const USAGE: &str = "exec-bench [--lines N] [--parallel-runs N] [--parallel-lines N] [--submits N]";
const BUSYBOX: &str = "trainyard/busybox:latest";
const WORKSPACE: &str = "bench";
const EXPERIMENT: &str = "exec";
/// How often the stored line counts are polled; the resolution of "last line stored".
const POLL: Duration = Duration::from_millis(20);
/// Runs the test app's scheduler executes at once (`TestApp`'s setting).
const SLOTS: usize = 4;
/// Longest any run (or set of runs) may take before the benchmark gives up.
const RUN_LIMIT: Duration = Duration::from_secs(900);

/// Command-line figures.
struct Options {
    lines: u64,
    parallel_runs: usize,
    parallel_lines: u64,
    submits: usize,
}

impl Options {
    fn parse() -> Result<Options> {
        let mut options = Options {
            lines: 200_000,
            parallel_runs: 20,
            parallel_lines: 20_000,
            submits: 10,
        };
        let mut args = std::env::args().skip(1);
        while let Some(flag) = args.next() {
            let value = args
                .next()
                .with_context(|| format!("{flag} needs a value"))?;
            let number: u64 =
                value.parse().ok().filter(|n| *n > 0).with_context(|| {
                    format!("{flag} {value:?}: expected a whole number above 0")
                })?;
            match flag.as_str() {
                "--lines" => options.lines = number,
                "--parallel-runs" => options.parallel_runs = number as usize,
                "--parallel-lines" => options.parallel_lines = number,
                "--submits" => options.submits = number as usize,
                other => bail!("unknown argument {other:?}; usage: {USAGE}"),
            }
        }
        Ok(options)
    }
}

/// The shell script every log run and plain container runs.
fn printer(lines: u64) -> String {
    format!("seq 1 {lines}")
}

/// A span between two database (or client) timestamps; negative is zero.
fn span(from: DateTime<Utc>, to: DateTime<Utc>) -> Duration {
    (to - from).to_std().unwrap_or(Duration::ZERO)
}

/// Nearest-rank percentile.
fn percentile(samples: &[Duration], p: f64) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// A run as submitted: its id and the client's clock just before the POST.
#[derive(Clone, Copy)]
struct Submitted {
    id: Uuid,
    at: DateTime<Utc>,
}

/// A run's end as the store has it.
struct Ended {
    started_at: DateTime<Utc>,
    ended_at: DateTime<Utc>,
}

/// The columns of a run that say whether and how it ended.
#[derive(sqlx::FromRow)]
struct RunRow {
    status: String,
    error: Option<String>,
    started_at: Option<DateTime<Utc>>,
    ended_at: Option<DateTime<Utc>>,
}

/// What the Trainyard side of a log measurement saw.
struct LogRuns {
    submitted: Vec<Submitted>,
    /// Earliest `started_at` to the last stdout line stored of any run.
    to_last_line: Duration,
    /// Earliest `started_at` to the latest `ended_at`.
    to_last_end: Duration,
    /// The single run's container as Docker saw it, relative to `started_at`
    /// (start, exit), when it could still be inspected.
    container: Option<(f64, f64)>,
}

/// What the plain-`docker` side of a log measurement saw.
struct PlainLogs {
    /// `docker logs` of every container, one after another.
    read: Duration,
    /// First container start to last container exit, as Docker recorded them.
    life: Duration,
}

/// The server with a contributor token in a workspace with one experiment.
struct Bench {
    app: TestApp,
    token: String,
}

impl Bench {
    async fn start() -> Result<Bench> {
        let app = TestApp::spawn_executing(trainyard_tests::Options::default())
            .await
            .context("no Docker engine answers")?;
        app.workspace(WORKSPACE).await;
        let token = app.token(WORKSPACE, "contributor").await;
        app.experiment(WORKSPACE, &token, EXPERIMENT).await;
        Ok(Bench { app, token })
    }

    /// Submits a busybox run of `command`.
    async fn submit(&self, command: &[&str]) -> Result<Submitted> {
        let body = json!({
            "experiment": EXPERIMENT,
            "command": command,
            "environment": { "spec": { "base_image": BUSYBOX } },
        });
        let path = format!("/api/v1/workspaces/{WORKSPACE}/runs");
        let at = Utc::now();
        let (status, run) = self.app.post(&path, &self.token, body).await;
        ensure!(status == StatusCode::CREATED, "submitting: {status} {run}");
        let id = run["id"].as_str().context("the run's id")?.parse()?;
        Ok(Submitted { id, at })
    }

    /// Waits until the run ends; it must have completed.
    async fn wait_for_end(&self, id: Uuid) -> Result<Ended> {
        let deadline = Instant::now() + RUN_LIMIT;
        loop {
            let RunRow {
                status,
                error,
                started_at,
                ended_at,
            } = sqlx::query_as(
                "SELECT status, error, started_at, ended_at FROM runs WHERE id = $1",
            )
            .bind(id)
            .fetch_one(self.app.db.pool())
            .await?;
            match status.as_str() {
                "Completed" => {
                    return Ok(Ended {
                        started_at: started_at.context("a completed run's started_at")?,
                        ended_at: ended_at.context("a completed run's ended_at")?,
                    })
                }
                "Failed" | "Canceled" => bail!("run {id} ended {status}: {error:?}"),
                _ => {}
            }
            ensure!(Instant::now() < deadline, "run {id} did not end in time");
            tokio::time::sleep(POLL).await;
        }
    }

    /// Polls until every run has `lines` stdout lines stored; returns, per
    /// run, the first poll that saw them all.
    async fn wait_for_lines(&self, ids: &[Uuid], lines: u64) -> Result<Vec<DateTime<Utc>>> {
        let lines = lines as i64;
        let mut stored_at: Vec<Option<DateTime<Utc>>> = vec![None; ids.len()];
        let deadline = Instant::now() + RUN_LIMIT;
        loop {
            // One index lookup per run: the highest seq stored so far.
            let counts: Vec<(String, i64)> = sqlx::query_as(
                "SELECT runs.status, coalesce((SELECT max(seq) + 1 FROM run_logs
                     WHERE run_id = t.id AND source = 'stdout'), 0)
                 FROM unnest($1::uuid[]) WITH ORDINALITY AS t(id, i)
                 JOIN runs ON runs.id = t.id ORDER BY t.i",
            )
            .bind(ids)
            .fetch_all(self.app.db.pool())
            .await?;
            let now = Utc::now();
            for ((slot, (status, count)), id) in stored_at.iter_mut().zip(&counts).zip(ids) {
                if slot.is_none() && *count >= lines {
                    *slot = Some(now);
                }
                ensure!(
                    slot.is_some()
                        || !matches!(status.as_str(), "Completed" | "Failed" | "Canceled"),
                    "run {id} ended {status} with {count} of {lines} lines stored"
                );
            }
            if stored_at.iter().all(Option::is_some) {
                return Ok(stored_at.into_iter().flatten().collect());
            }
            ensure!(
                Instant::now() < deadline,
                "the lines were not stored in time"
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// Runs that each print `lines` lines, submitted together; every one must
    /// complete with exactly `lines` stdout lines stored.
    async fn log_runs(&self, runs: usize, lines: u64) -> Result<LogRuns> {
        let script = printer(lines);
        let command = ["sh", "-c", script.as_str()];
        let submitted =
            futures::future::try_join_all((0..runs).map(|_| self.submit(&command))).await?;
        let ids: Vec<Uuid> = submitted.iter().map(|s| s.id).collect();
        let stored_at = self.wait_for_lines(&ids, lines).await?;
        let container = if runs == 1 {
            self.container_times(ids[0]).await
        } else {
            None
        };
        let mut ended = Vec::new();
        for id in &ids {
            ended.push(self.wait_for_end(*id).await?);
            let (count,): (i64,) = sqlx::query_as(
                "SELECT count(*) FROM run_logs WHERE run_id = $1 AND source = 'stdout'",
            )
            .bind(id)
            .fetch_one(self.app.db.pool())
            .await?;
            ensure!(
                count == lines as i64,
                "run {id} stored {count} of {lines} lines"
            );
        }
        let first_start = ended
            .iter()
            .map(|e| e.started_at)
            .min()
            .context("no runs")?;
        let last_line = stored_at.into_iter().max().context("no runs")?;
        let last_end = ended.iter().map(|e| e.ended_at).max().context("no runs")?;
        let container = container.map(|(start, exit)| {
            let offset =
                |t: DateTime<Utc>| (t - first_start).num_microseconds().unwrap_or(0) as f64 / 1e6;
            (offset(start), offset(exit))
        });
        Ok(LogRuns {
            submitted,
            to_last_line: span(first_start, last_line),
            to_last_end: span(first_start, last_end),
            container,
        })
    }

    /// The run's container start and exit as Docker recorded them, if the
    /// container is still there (it is removed once the run is finalized).
    async fn container_times(&self, id: Uuid) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        let (container,): (Option<String>,) =
            sqlx::query_as("SELECT container_id FROM runs WHERE id = $1")
                .bind(id)
                .fetch_one(self.app.db.pool())
                .await
                .ok()?;
        let container = container?;
        let (start, exit) =
            tokio::task::spawn_blocking(move || plain_container_times(&container).ok())
                .await
                .ok()??;
        (exit > start).then_some((start, exit))
    }

    /// Submits `count` runs of `true` one after another, each after the
    /// previous ended; returns them with submit → Running and → Completed.
    async fn true_runs(
        &self,
        count: usize,
    ) -> Result<(Vec<Submitted>, Vec<Duration>, Vec<Duration>)> {
        let (mut submitted, mut running, mut completed) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..count {
            let run = self.submit(&["true"]).await?;
            let ended = self.wait_for_end(run.id).await?;
            running.push(span(run.at, ended.started_at));
            completed.push(span(run.at, ended.ended_at));
            submitted.push(run);
        }
        Ok((submitted, running, completed))
    }

    /// Each status step of the runs, in the order they first occur, with its
    /// duration in every run that took it; the first step starts at the POST.
    async fn steps(&self, runs: &[Submitted]) -> Result<Vec<(String, Vec<Duration>)>> {
        let mut steps: Vec<(String, Vec<Duration>)> = Vec::new();
        for run in runs {
            let events: Vec<(String, DateTime<Utc>)> = sqlx::query_as(
                "SELECT to_status, at FROM run_events WHERE run_id = $1 ORDER BY id",
            )
            .bind(run.id)
            .fetch_all(self.app.db.pool())
            .await?;
            let (mut from, mut since) = ("POST".to_string(), run.at);
            for (to, at) in events {
                let label = format!("{from} → {to}");
                let took = span(since, at);
                match steps.iter_mut().find(|(l, _)| *l == label) {
                    Some((_, samples)) => samples.push(took),
                    None => steps.push((label, vec![took])),
                }
                (from, since) = (to, at);
            }
        }
        Ok(steps)
    }
}

/// Runs the docker CLI; its trimmed stdout, or an error with its stderr.
fn docker(args: &[&str]) -> Result<String> {
    let output = Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running docker {}", args.join(" ")))?;
    ensure!(
        output.status.success(),
        "docker {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// A container's start and exit, from `docker inspect`.
fn plain_container_times(id: &str) -> Result<(DateTime<Utc>, DateTime<Utc>)> {
    let times = docker(&[
        "inspect",
        "-f",
        "{{.State.StartedAt}} {{.State.FinishedAt}}",
        id,
    ])?;
    let (start, exit) = times.split_once(' ').context("two timestamps")?;
    let parse = |t: &str| -> Result<DateTime<Utc>> {
        Ok(DateTime::parse_from_rfc3339(t)
            .with_context(|| format!("a timestamp: {t:?}"))?
            .with_timezone(&Utc))
    };
    Ok((parse(start)?, parse(exit)?))
}

/// `docker logs <id> > /dev/null`.
fn read_logs(id: &str) -> Result<()> {
    let status = Command::new("docker")
        .args(["logs", id])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .context("running docker logs")?;
    ensure!(status.success(), "docker logs {id}: {status}");
    Ok(())
}

/// The number of lines `docker logs` gives for the container.
fn count_log_lines(id: &str) -> Result<usize> {
    let output = Command::new("docker")
        .args(["logs", id])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .context("running docker logs")?;
    ensure!(
        output.status.success(),
        "docker logs {id}: {}",
        output.status
    );
    Ok(output.stdout.iter().filter(|b| **b == b'\n').count())
}

/// Starts `containers` plain containers at once (one thread each) that
/// print `lines` lines, waits for them to exit, then times `docker logs` of
/// each, one after another. The containers are removed afterwards.
fn plain_logs(containers: usize, lines: u64) -> Result<PlainLogs> {
    let script = printer(lines);
    let started: Vec<Result<String>> = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..containers)
            .map(|_| scope.spawn(|| docker(&["run", "-d", BUSYBOX, "sh", "-c", &script])))
            .collect();
        threads
            .into_iter()
            .map(|t| {
                t.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a docker run thread panicked")))
            })
            .collect()
    });
    let ids: Vec<String> = started
        .iter()
        .filter_map(|r| r.as_ref().ok().cloned())
        .collect();
    let measured = started
        .into_iter()
        .collect::<Result<Vec<String>>>()
        .and_then(|ids| measure_plain_logs(&ids, lines));
    if !ids.is_empty() {
        let mut remove = vec!["rm", "-f"];
        remove.extend(ids.iter().map(String::as_str));
        docker(&remove)?;
    }
    measured
}

fn measure_plain_logs(ids: &[String], lines: u64) -> Result<PlainLogs> {
    let mut lives = Vec::new();
    for id in ids {
        let code = docker(&["wait", id])?;
        ensure!(code == "0", "plain container {id} exited with {code}");
        lives.push(plain_container_times(id)?);
    }
    let clock = Instant::now();
    for id in ids {
        read_logs(id)?;
    }
    let read = clock.elapsed();
    for id in ids {
        let count = count_log_lines(id)?;
        ensure!(
            count as u64 == lines,
            "plain container {id} printed {count} of {lines} lines"
        );
    }
    let first = lives.iter().map(|l| l.0).min().context("no containers")?;
    let last = lives.iter().map(|l| l.1).max().context("no containers")?;
    Ok(PlainLogs {
        read,
        life: span(first, last),
    })
}

/// Wall time of `docker run --rm busybox true`, `count` times.
fn plain_true_runs(count: usize) -> Result<Vec<Duration>> {
    (0..count)
        .map(|_| {
            let clock = Instant::now();
            docker(&["run", "--rm", BUSYBOX, "true"])?;
            Ok(clock.elapsed())
        })
        .collect()
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work).await?
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1e3)
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

fn rate(lines: u64, d: Duration) -> f64 {
    lines as f64 / d.as_secs_f64()
}

#[tokio::main]
async fn main() -> Result<()> {
    let Options {
        lines,
        parallel_runs,
        parallel_lines,
        submits,
    } = Options::parse()?;
    docker(&["image", "inspect", "-f", "{{.Id}}", BUSYBOX]).with_context(|| {
        format!("the image {BUSYBOX} is missing: bash docker/build-base-images.sh --only busybox")
    })?;
    let bench = Bench::start().await?;

    // Warm-up, untimed: the run environment's image is built here once, and
    // the engine has started a busybox container before any timing.
    let warm = bench.submit(&["true"]).await?;
    bench.wait_for_end(warm.id).await?;
    blocking(|| plain_true_runs(1)).await?;

    // 1. One run, many lines.
    let one = bench.log_runs(1, lines).await?;
    let plain_one = blocking(move || plain_logs(1, lines)).await?;

    // 2. Many runs at once.
    let many = bench.log_runs(parallel_runs, parallel_lines).await?;
    let plain_many = blocking(move || plain_logs(parallel_runs, parallel_lines)).await?;

    // 3. Submit → Running → Completed with a cached image.
    let (true_runs, to_running, to_completed) = bench.true_runs(submits).await?;
    let plain_true = blocking(move || plain_true_runs(submits)).await?;

    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    let docker_version = docker(&["version", "-f", "{{.Server.Version}}"]).unwrap_or_default();
    println!("## Trainyard execution benchmark: {cpus} CPUs, {profile} build, Docker engine {docker_version}\n");
    println!(
        "Runs: busybox `sh -c 'seq 1 N'` on the local engine through the in-process server, \
         scheduler (at most {SLOTS} runs at once: the test app's setting) and executor; \
         `started_at` is when the run turned Running; \"stored\" is the first {}-ms poll that \
         saw the run's last stdout line in PostgreSQL.\n",
        POLL.as_millis()
    );
    println!("| measurement | Trainyard | docker baseline | ratio |");
    println!("|---|---:|---:|---:|");
    let total_many = parallel_lines * parallel_runs as u64;
    let (ours, theirs) = (rate(lines, one.to_last_line), rate(lines, plain_one.read));
    println!(
        "| log throughput, 1 run × {lines} lines (lines/s; Trainyard: `started_at` → last line stored; docker: `docker logs > /dev/null`) | {ours:.0} | {theirs:.0} | {:.2} |",
        ours / theirs
    );
    println!(
        "| 1 run: `started_at` → last line stored; docker: container start → exit | {} | {} | — |",
        secs(one.to_last_line),
        secs(plain_one.life)
    );
    println!(
        "| 1 run: `started_at` → Completed; docker: `docker logs` time | {} | {} | — |",
        secs(one.to_last_end),
        secs(plain_one.read)
    );
    let (ours, theirs) = (
        rate(total_many, many.to_last_line),
        rate(total_many, plain_many.read),
    );
    println!(
        "| log throughput, {parallel_runs} runs × {parallel_lines} lines at once (lines/s; Trainyard: first `started_at` → last line stored; docker: `docker logs` of each, sequentially) | {ours:.0} | {theirs:.0} | {:.2} |",
        ours / theirs
    );
    println!(
        "| {parallel_runs} runs: first `started_at` → last line stored; docker: first container start → last exit | {} | {} | — |",
        secs(many.to_last_line),
        secs(plain_many.life)
    );
    println!(
        "| {parallel_runs} runs: first `started_at` → last Completed; docker: `docker logs` time | {} | {} | — |",
        secs(many.to_last_end),
        secs(plain_many.read)
    );
    let plain_p50 = percentile(&plain_true, 50.0);
    for (label, samples) in [("Running", &to_running), ("Completed", &to_completed)] {
        let p50 = percentile(samples, 50.0);
        println!(
            "| submit → {label}, p50 of {submits} runs of `true` (docker: `docker run --rm busybox true` wall) | {} | {} | {:.2} |",
            ms(p50),
            ms(plain_p50),
            p50.as_secs_f64() / plain_p50.as_secs_f64()
        );
    }
    println!(
        "\nRatios: lines/s rows are Trainyard ÷ docker (below 1: slower than `docker logs`); \
         time rows are Trainyard ÷ docker (above 1: slower). \
         `docker run --rm … true` p50 {} (min {}, max {}); submit → Running max {}, → Completed max {}.",
        ms(plain_p50),
        ms(percentile(&plain_true, 0.0)),
        ms(percentile(&plain_true, 100.0)),
        ms(percentile(&to_running, 100.0)),
        ms(percentile(&to_completed, 100.0)),
    );
    if let Some((start, exit)) = one.container {
        println!(
            "The 1-run container, per `docker inspect`, started at {start:+.3} s and exited at \
             {exit:+.3} s relative to `started_at`; its last line was stored at {:+.3} s.",
            one.to_last_line.as_secs_f64()
        );
    }

    println!("\n### Where a run's time goes: each status step's p50 (max)\n");
    let columns = [
        (
            format!("1 run × {lines} lines"),
            bench.steps(&one.submitted).await?,
        ),
        (
            format!("{parallel_runs} runs × {parallel_lines} lines"),
            bench.steps(&many.submitted).await?,
        ),
        (
            format!("{submits} runs of `true`"),
            bench.steps(&true_runs).await?,
        ),
    ];
    let mut labels: Vec<&str> = Vec::new();
    for (_, steps) in &columns {
        for (label, _) in steps {
            if !labels.contains(&label.as_str()) {
                labels.push(label);
            }
        }
    }
    let header: Vec<&str> = columns.iter().map(|(name, _)| name.as_str()).collect();
    println!("| step | {} |", header.join(" | "));
    println!("|---|{}", "---:|".repeat(columns.len()));
    for label in labels {
        let cells: Vec<String> = columns
            .iter()
            .map(|(_, steps)| match steps.iter().find(|(l, _)| l == label) {
                Some((_, samples)) => format!(
                    "{} ({})",
                    ms(percentile(samples, 50.0)),
                    ms(percentile(samples, 100.0))
                ),
                None => "—".to_string(),
            })
            .collect();
        println!("| {label} | {} |", cells.join(" | "));
    }
    if parallel_runs > SLOTS {
        println!(
            "\nIn the {parallel_runs}-run column, `Queued → Preparing` includes the wait for one \
             of the {SLOTS} execution slots."
        );
    }
    Ok(())
}
