//! Metric-ingestion benchmark: scalar points through the batch API
//! (`POST /api/v1/workspaces/{ws}/runs/{run}/metrics`) against PostgreSQL's
//! own COPY of the same rows into the same table of the same database.
//!
//! (a) Trainyard: `--writers` concurrent writers, each logging to its own run
//! in batches of `--batch` points (`--keys` metric names × batch/keys steps,
//! as MLflow's log-batch benchmark sends them), `--points` in all.
//! (b) COPY: the same rows (metric_id, step, at, value) for runs of their
//! own, in the binary format the server sends, `--writers` concurrent COPY streams of one COPY each: the ceiling.
//! (b') COPY per batch: one COPY, and so one commit, per `--batch` rows: the
//! database work a batch request cannot avoid.
//!
//! Request bodies and COPY data are built before the clock starts, and each
//! writer first sends `--warmup` untimed batches. `--rounds` rounds run the
//! three phases one after the other, each on runs of its own, so that load
//! from outside falls on all of them; the summary takes each phase's median.
//! Before each phase the point tables (`metric_points`, `metric_chunks`) are
//! emptied (TRUNCATE) and a CHECKPOINT taken, so every phase starts from the
//! same state. Every phase is checked afterwards: the tables must hold
//! exactly the points sent. The
//! database (named on stderr and in the output) is kept, its points emptied.
//!
//! The server runs in-process on its own tokio runtime (threads `ty-server`),
//! the HTTP and COPY clients on another (`ty-client`), so the CPU each used
//! can be told apart; PostgreSQL's is read from /proc. Server, clients and
//! PostgreSQL share this machine's cores: compare figures only between runs
//! on the same machine.
//!
//! `cargo run --release -p trainyard-tests --bin metrics-bench -- --points 2000000 --batch 1000 --writers 4`

use anyhow::{bail, ensure, Context, Result};
use bytes::Bytes;
use chrono::{DateTime, Duration as ChronoDuration, TimeZone, Utc};
use serde_json::{json, Value};
use sqlx::postgres::PgPoolCopyExt;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};
use trainyard_api::{AppState, Limits};
use trainyard_db::metrics::PointCopy;
use trainyard_db::Db;
use uuid::Uuid;

const USAGE: &str = "metrics-bench [--points N] [--batch N] [--writers N] [--keys N] \
                     [--pool N] [--warmup N] [--rounds N] [--out FILE]";
/// Linux's USER_HZ: the unit of CPU times in /proc.
const CLOCK_TICKS: f64 = 100.0;
const SERVER_THREADS: &str = "ty-server";
const CLIENT_THREADS: &str = "ty-client";

/// Command-line settings.
struct Options {
    points: usize,
    batch: usize,
    writers: usize,
    keys: usize,
    pool: usize,
    warmup: usize,
    rounds: usize,
    out: Option<String>,
}

impl Options {
    fn parse() -> Result<Options> {
        let mut options = Options {
            points: 2_000_000,
            batch: 1_000,
            writers: 4,
            keys: 10,
            // The server's default `db_max_connections`; the tests' pool of 5
            // would leave the 4 writers waiting on each other's auth queries.
            pool: 20,
            warmup: 5,
            rounds: 3,
            out: None,
        };
        let mut args = std::env::args().skip(1);
        while let Some(flag) = args.next() {
            let value = args
                .next()
                .with_context(|| format!("{flag} needs a value; usage: {USAGE}"))?;
            let figure = match flag.as_str() {
                "--points" => &mut options.points,
                "--batch" => &mut options.batch,
                "--writers" => &mut options.writers,
                "--keys" => &mut options.keys,
                "--pool" => &mut options.pool,
                "--warmup" => &mut options.warmup,
                "--rounds" => &mut options.rounds,
                "--out" => {
                    options.out = Some(value);
                    continue;
                }
                other => bail!("unknown argument {other:?}; usage: {USAGE}"),
            };
            *figure = value
                .parse()
                .ok()
                .filter(|n| *n > 0 || flag == "--warmup")
                .with_context(|| format!("{flag} {value:?}: expected a whole number above 0"))?;
        }
        ensure!(
            options.batch <= trainyard_core::metrics::MAX_METRICS_PER_REQUEST,
            "--batch {} is above the API's limit of {} entries",
            options.batch,
            trainyard_core::metrics::MAX_METRICS_PER_REQUEST
        );
        ensure!(
            options.keys <= options.batch,
            "--keys must not exceed --batch"
        );
        ensure!(
            options.points >= options.writers,
            "--points must be at least --writers"
        );
        Ok(options)
    }
}

/// One point as every phase sends it.
#[derive(Clone, Copy)]
struct Point {
    key: usize,
    step: i64,
    at: DateTime<Utc>,
    value: f64,
}

/// The points of one writer, cut into batches: `keys` names per step,
/// `batch / keys` steps per batch, consecutive steps across batches.
fn writer_batches(writer: usize, points: usize, batch: usize, keys: usize) -> Vec<Vec<Point>> {
    let base = Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap();
    let mut state = 0x9E37_79B9_7F4A_7C15_u64 ^ (writer as u64 + 1).wrapping_mul(0xD1B5_4A32);
    let mut random = move || {
        // xorshift64*: a uniform double in [0, 1), like Python's random().
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    };
    let steps_per_batch = (batch / keys).max(1);
    let mut batches = Vec::new();
    let mut left = points;
    let mut step = 0i64;
    while left > 0 {
        let size = left.min(batch);
        let mut points = Vec::with_capacity(size);
        'steps: for _ in 0..steps_per_batch {
            for key in 0..keys {
                if points.len() == size {
                    break 'steps;
                }
                points.push(Point {
                    key,
                    step,
                    at: base + ChronoDuration::milliseconds(step),
                    value: random(),
                });
            }
            step += 1;
        }
        left -= points.len();
        batches.push(points);
    }
    batches
}

/// The API's JSON body for one batch.
fn api_body(points: &[Point]) -> Bytes {
    let metrics: Vec<Value> = points
        .iter()
        .map(|p| {
            json!({
                "name": format!("m{}", p.key),
                "value": p.value,
                "step": p.step,
                "timestamp": p.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            })
        })
        .collect();
    Bytes::from(serde_json::to_vec(&json!({ "metrics": metrics })).expect("JSON"))
}

/// Binary COPY data for some batches, spelled as the server spells it.
fn copy_data<'a>(batches: impl IntoIterator<Item = &'a Vec<Point>>, metric_ids: &[i64]) -> Bytes {
    let mut copy = PointCopy::new();
    for p in batches.into_iter().flatten() {
        copy.push(metric_ids[p.key], p.step, p.at, p.value);
    }
    Bytes::from(copy.finish())
}

/// The in-process server and a client with a contributor token.
#[derive(Clone)]
struct Api {
    client: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    async fn post(&self, path: &str, body: Bytes) -> Result<String> {
        let response = self
            .client
            .post(format!("{}/api/v1{path}", self.base))
            .bearer_auth(&self.token)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .with_context(|| path.to_string())?;
        let status = response.status();
        let text = response.text().await?;
        ensure!(status.is_success(), "{path}: {status} {text}");
        Ok(text)
    }

    async fn json(&self, path: &str, body: Value) -> Result<Value> {
        let text = self.post(path, Bytes::from(body.to_string())).await?;
        Ok(serde_json::from_str(&text)?)
    }

    async fn create_run(&self, name: &str) -> Result<Uuid> {
        let run = self
            .json(
                "/workspaces/bench/runs",
                json!({ "experiment": "bench", "display_name": name }),
            )
            .await?;
        run["id"]
            .as_str()
            .and_then(|id| id.parse().ok())
            .with_context(|| format!("no run id in {run}"))
    }
}

/// Starts the server (on the current runtime) over a fresh database;
/// returns the database URL, the server's base URL and an admin token.
async fn start_server(pool: u32) -> Result<(String, String, String)> {
    let url = trainyard_tests::fresh_database().await;
    let db = Db::connect(&url, pool).await?;
    let admin = trainyard_api::auth::create_admin_token(&db).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let state = AppState {
        db,
        limits: Limits::default(),
        storage: trainyard_storage::Storage::in_memory(),
        extra_ca: Default::default(),
        run_searches: Default::default(),
    };
    // Serves until the process exits after printing the figures.
    tokio::spawn(trainyard_api::serve(
        listener,
        state,
        std::future::pending(),
    ));
    Ok((url, base, admin))
}

/// Creates the workspace, a contributor token and an experiment.
async fn setup(admin: Api) -> Result<Api> {
    admin
        .json("/workspaces", json!({ "name": "bench" }))
        .await?;
    let token = json!({ "name": "bench", "role": "contributor" });
    let created = admin.json("/workspaces/bench/tokens", token).await?;
    let secret = created["secret"].as_str().context("the token's secret")?;
    let api = Api {
        token: secret.to_string(),
        ..admin
    };
    api.json("/workspaces/bench/experiments", json!({ "name": "bench" }))
        .await?;
    Ok(api)
}

/// CPU seconds so far: the whole machine (busy), this process, its client
/// threads, and PostgreSQL's processes.
#[derive(Clone, Copy, Default)]
struct Cpu {
    machine: f64,
    process: f64,
    client: f64,
    postgres: f64,
}

impl Cpu {
    fn since(self, before: Cpu) -> Cpu {
        Cpu {
            machine: self.machine - before.machine,
            process: self.process - before.process,
            client: self.client - before.client,
            postgres: self.postgres - before.postgres,
        }
    }
}

/// The name, parent and utime + stime (in seconds) in a /proc stat file.
fn stat_of(path: &str) -> Option<(String, u32, f64)> {
    let text = std::fs::read_to_string(path).ok()?;
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let name = text[open + 1..close].to_string();
    let fields: Vec<&str> = text[close + 2..].split_whitespace().collect();
    let parent = fields.get(1)?.parse().ok()?;
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some((name, parent, ticks / CLOCK_TICKS))
}

/// Which PostgreSQL processes count as this benchmark's: the cluster's
/// postmaster and its shared helpers, and the backends of our database, but
/// not those of other databases that other programs use at the same time.
struct PgScope {
    postmaster: u32,
    database: String,
}

static PG_SCOPE: std::sync::OnceLock<PgScope> = std::sync::OnceLock::new();

/// Helpers every database shares (process titles after "postgres: ").
const PG_HELPERS: [&str; 6] = [
    "checkpointer",
    "background writer",
    "walwriter",
    "autovacuum launcher",
    "logical replication launcher",
    "archiver",
];

fn counts_as_ours(scope: &PgScope, pid: u32, parent: u32) -> bool {
    if pid == scope.postmaster {
        return true;
    }
    if parent != scope.postmaster {
        return false;
    }
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let title = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    let title = title.trim_start_matches("postgres: ");
    PG_HELPERS.iter().any(|helper| title.starts_with(helper))
        || title.split_whitespace().any(|word| word == scope.database)
}

fn cpu_now() -> Cpu {
    let mut cpu = Cpu::default();
    if let Ok(stat) = std::fs::read_to_string("/proc/stat") {
        let ticks: Vec<f64> = stat
            .lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .skip(1)
            .take(8)
            .filter_map(|t| t.parse().ok())
            .collect();
        if ticks.len() >= 5 {
            let idle = ticks[3] + ticks[4];
            cpu.machine = (ticks.iter().sum::<f64>() - idle) / CLOCK_TICKS;
        }
    }
    // The process's own figure keeps the time of threads that have exited.
    cpu.process = stat_of("/proc/self/stat").map_or(0.0, |(_, _, s)| s);
    for task in std::fs::read_dir("/proc/self/task").into_iter().flatten() {
        let Ok(task) = task else { continue };
        match stat_of(&format!("{}/stat", task.path().display())) {
            Some((name, _, s)) if name.starts_with(CLIENT_THREADS) => cpu.client += s,
            _ => {}
        }
    }
    let scope = PG_SCOPE.get();
    for process in std::fs::read_dir("/proc").into_iter().flatten() {
        let Ok(process) = process else { continue };
        let Some(pid) = process.file_name().to_str().and_then(|p| p.parse().ok()) else {
            continue;
        };
        // Backends rename themselves ("postgres: trainyard db [local] ..."),
        // but their stat name stays the executable's.
        if let Some((name, parent, s)) = stat_of(&format!("/proc/{pid}/stat")) {
            let ours = scope.is_none_or(|scope| counts_as_ours(scope, pid, parent));
            if name == "postgres" && ours {
                cpu.postgres += s;
            }
        }
    }
    cpu
}

/// Finds the cluster's postmaster (from `postmaster.pid` in its data
/// directory, which a superuser may read), so that only our database's
/// backends count; without it every PostgreSQL process counts.
async fn find_pg_scope(pool: &sqlx::PgPool) -> Result<()> {
    let database: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(pool)
        .await?;
    let data_directory: Option<String> = sqlx::query_scalar("SHOW data_directory")
        .fetch_one(pool)
        .await
        .ok();
    let postmaster = data_directory
        .and_then(|dir| std::fs::read_to_string(format!("{dir}/postmaster.pid")).ok())
        .and_then(|text| text.lines().next()?.trim().parse().ok());
    match postmaster {
        Some(postmaster) => {
            let _ = PG_SCOPE.set(PgScope {
                postmaster,
                database,
            });
        }
        None => eprintln!("postmaster.pid not readable: every PostgreSQL process counts"),
    }
    Ok(())
}

/// Position of the cluster's WAL insertion, in bytes (all its databases).
async fn wal_bytes(pool: &sqlx::PgPool) -> Result<f64> {
    Ok(
        sqlx::query_scalar("SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0')::float8")
            .fetch_one(pool)
            .await?,
    )
}

/// The kinds of phase, in the order each round runs them.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Api,
    Copy,
    CopyPerBatch,
}

impl Kind {
    const ALL: [Kind; 3] = [Kind::Api, Kind::Copy, Kind::CopyPerBatch];

    fn label(self) -> &'static str {
        match self {
            Kind::Api => "(a) Trainyard batch API",
            Kind::Copy => "(b) PostgreSQL COPY, one per stream",
            Kind::CopyPerBatch => "(b') PostgreSQL COPY, one per batch",
        }
    }

    fn key(self) -> &'static str {
        match self {
            Kind::Api => "trainyard",
            Kind::Copy => "copy",
            Kind::CopyPerBatch => "copy_per_batch",
        }
    }
}

/// What a phase measured.
struct Phase {
    kind: Kind,
    round: usize,
    points: usize,
    wall: Duration,
    /// Latency of each request or COPY statement.
    latencies: Vec<Duration>,
    cpu: Cpu,
    wal: f64,
}

impl Phase {
    fn points_per_second(&self) -> f64 {
        self.points as f64 / self.wall.as_secs_f64()
    }

    /// CPU milliseconds the system under test (the server, none for COPY,
    /// and PostgreSQL) spent per 1,000 points: unlike points/s, hardly moved
    /// by other programs taking the machine's cores.
    fn cpu_ms_per_1000(&self) -> f64 {
        (self.cpu.process - self.cpu.client + self.cpu.postgres) / self.points as f64 * 1e6
    }
}

/// Runs `work` once per writer concurrently and measures it. Each writer
/// returns how many points it stored and each request's latency.
async fn measure<F, Fut>(
    pool: &sqlx::PgPool,
    kind: Kind,
    round: usize,
    writers: usize,
    work: F,
) -> Result<Phase>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Result<(usize, Vec<Duration>)>>,
{
    let wal_before = wal_bytes(pool).await?;
    let before = cpu_now();
    let started = Instant::now();
    let results = futures::future::try_join_all((0..writers).map(work)).await?;
    let wall = started.elapsed();
    let cpu = cpu_now().since(before);
    let wal = wal_bytes(pool).await? - wal_before;
    let (points, latencies) =
        results
            .into_iter()
            .fold((0, Vec::new()), |(points, mut all), (n, latencies)| {
                all.extend(latencies);
                (points + n, all)
            });
    Ok(Phase {
        kind,
        round,
        points,
        wall,
        latencies,
        cpu,
        wal,
    })
}

/// Empties the point tables and checkpoints, so each phase starts alike.
async fn reset_table(pool: &sqlx::PgPool) -> Result<()> {
    sqlx::query("TRUNCATE metric_points, metric_chunks")
        .execute(pool)
        .await?;
    // Needs a superuser, as the tests' own cluster has; skipped otherwise.
    if let Err(e) = sqlx::query("CHECKPOINT").execute(pool).await {
        eprintln!("CHECKPOINT skipped: {e}");
    }
    Ok(())
}

/// How many points the tables hold for these metric ids, as rows or in chunks.
async fn stored_points(pool: &sqlx::PgPool, ids: &[i64]) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM metric_points WHERE metric_id = ANY($1))
              + (SELECT coalesce(sum(cardinality(steps)), 0) FROM metric_chunks
                  WHERE metric_id = ANY($1))",
    )
    .bind(ids)
    .fetch_one(pool)
    .await?)
}

/// Metric rows (as the API would create them) for `runs`, `keys` each;
/// returns their ids per run, in key order.
async fn metric_rows(pool: &sqlx::PgPool, runs: &[Uuid], keys: usize) -> Result<Vec<Vec<i64>>> {
    let mut ids = Vec::new();
    for run in runs {
        let names: Vec<String> = (0..keys).map(|k| format!("m{k}")).collect();
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "INSERT INTO metrics (run_id, name, kind)
             SELECT $1, n, 'scalar' FROM UNNEST($2::text[]) AS n RETURNING id, name",
        )
        .bind(run)
        .bind(&names)
        .fetch_all(pool)
        .await?;
        let by_name: HashMap<String, i64> = rows.into_iter().map(|(id, n)| (n, id)).collect();
        ids.push(names.iter().map(|n| by_name[n]).collect());
    }
    Ok(ids)
}

/// Metric ids the API created for `runs`.
async fn metric_ids_of(pool: &sqlx::PgPool, runs: &[Uuid]) -> Result<Vec<i64>> {
    Ok(
        sqlx::query_scalar("SELECT id FROM metrics WHERE run_id = ANY($1)")
            .bind(runs)
            .fetch_all(pool)
            .await?,
    )
}

/// Nearest-rank percentile.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

fn table_row(phase: &Phase, reference: f64) -> String {
    let mut latencies = phase.latencies.clone();
    latencies.sort_unstable();
    let ms = |d: Duration| format!("{:.1}", d.as_secs_f64() * 1e3);
    let (p50, p99) = if latencies.len() > 1 {
        (
            ms(percentile(&latencies, 50.0)),
            ms(percentile(&latencies, 99.0)),
        )
    } else {
        ("–".into(), "–".into())
    };
    let cpu = &phase.cpu;
    let wall = phase.wall.as_secs_f64();
    format!(
        "| {} | {} | {} | {:.2} | {:.0} | {:.2} | {} | {} | {} | {:.2} | {:.1} | {:.1} | {:.1} | {:.1} | {:.2} | {:.0} |",
        phase.kind.label(),
        phase.round,
        phase.points,
        wall,
        phase.points_per_second(),
        reference / phase.points_per_second(),
        latencies.len(),
        p50,
        p99,
        cpu.machine / wall,
        cpu.process - cpu.client,
        cpu.client,
        cpu.postgres,
        cpu.machine - cpu.process - cpu.postgres,
        phase.cpu_ms_per_1000(),
        phase.wal / phase.points as f64,
    )
}

/// One round's phase of the batch API: writer `w` sends its bodies to `runs[w]`.
async fn api_phase(
    api: &Api,
    pool: &sqlx::PgPool,
    round: usize,
    bodies: &[Vec<Bytes>],
    batches: &[Vec<Vec<Point>>],
    keys: usize,
) -> Result<Phase> {
    let writers = bodies.len();
    let mut runs = Vec::new();
    for w in 0..writers {
        runs.push(api.create_run(&format!("api-{round}-{w}")).await?);
    }
    reset_table(pool).await?;
    let phase = measure(pool, Kind::Api, round, writers, |w| {
        let (bodies, run, batches) = (&bodies[w], runs[w], &batches[w]);
        async move {
            let path = format!("/workspaces/bench/runs/{run}/metrics");
            let mut latencies = Vec::with_capacity(bodies.len());
            for body in bodies {
                let sent = Instant::now();
                api.post(&path, body.clone()).await?;
                latencies.push(sent.elapsed());
            }
            Ok((batches.iter().map(Vec::len).sum(), latencies))
        }
    })
    .await?;
    let ids = metric_ids_of(pool, &runs).await?;
    let per_run = batches.iter().map(|b| b[0].len().min(keys)).sum::<usize>();
    ensure!(
        ids.len() == per_run,
        "the API created {} metrics",
        ids.len()
    );
    let stored = stored_points(pool, &ids).await?;
    ensure!(
        stored as usize == phase.points,
        "Trainyard stored {stored} of {} points",
        phase.points
    );
    Ok(phase)
}

/// One round's COPY phase: the same rows for runs of their own.
async fn copy_phase(
    api: &Api,
    pool: &sqlx::PgPool,
    round: usize,
    kind: Kind,
    batches: &[Vec<Vec<Point>>],
    keys: usize,
) -> Result<Phase> {
    let writers = batches.len();
    let mut runs = Vec::new();
    for w in 0..writers {
        runs.push(
            api.create_run(&format!("{}-{round}-{w}", kind.key()))
                .await?,
        );
    }
    let ids = metric_rows(pool, &runs, keys).await?;
    // Per batch: one COPY document each; per stream: one for all its batches.
    let data: Vec<Vec<Bytes>> = batches
        .iter()
        .zip(&ids)
        .map(|(b, ids)| match kind {
            Kind::CopyPerBatch => b.iter().map(|points| copy_data([points], ids)).collect(),
            _ => vec![copy_data(b, ids)],
        })
        .collect();
    reset_table(pool).await?;
    let phase = measure(pool, kind, round, writers, |w| {
        let (data, batches) = (&data[w], &batches[w]);
        async move {
            let mut latencies = Vec::new();
            for document in data {
                let sent = Instant::now();
                let mut copy = pool.copy_in_raw(PointCopy::STATEMENT).await?;
                copy.send(document.clone()).await?;
                copy.finish().await?;
                latencies.push(sent.elapsed());
            }
            Ok((batches.iter().map(Vec::len).sum(), latencies))
        }
    })
    .await?;
    let stored = stored_points(pool, &ids.concat()).await?;
    ensure!(
        stored as usize == phase.points,
        "COPY stored {stored} of {} points",
        phase.points
    );
    Ok(phase)
}

async fn benchmark(options: &Options, url: String, base: String, admin: String) -> Result<()> {
    let writers = options.writers;
    let db = Db::connect(&url, writers as u32 + 1).await?;
    let pool = db.pool();
    let api = setup(Api {
        client: reqwest::Client::new(),
        base,
        token: admin,
    })
    .await?;
    find_pg_scope(pool).await?;
    let database: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(pool)
        .await?;
    eprintln!("database {database}");

    let per_writer =
        |w: usize| options.points / writers + usize::from(w < options.points % writers);
    let batches: Vec<Vec<Vec<Point>>> = (0..writers)
        .map(|w| writer_batches(w, per_writer(w), options.batch, options.keys))
        .collect();
    let bodies: Vec<Vec<Bytes>> = batches
        .iter()
        .map(|b| b.iter().map(|points| api_body(points)).collect())
        .collect();

    // Warm-up: a few untimed batches per writer, to runs of their own.
    let warmup = futures::future::try_join_all((0..writers).map(|w| {
        let (api, bodies) = (&api, &bodies[w]);
        async move {
            let run = api.create_run(&format!("warmup-{w}")).await?;
            for body in bodies.iter().take(options.warmup) {
                api.post(
                    &format!("/workspaces/bench/runs/{run}/metrics"),
                    body.clone(),
                )
                .await?;
            }
            anyhow::Ok(())
        }
    }));
    warmup.await?;

    // The phases alternate, so that load from outside falls on all of them.
    let mut phases = Vec::new();
    for round in 1..=options.rounds {
        for kind in Kind::ALL {
            let phase = match kind {
                Kind::Api => api_phase(&api, pool, round, &bodies, &batches, options.keys).await?,
                _ => copy_phase(&api, pool, round, kind, &batches, options.keys).await?,
            };
            eprintln!(
                "round {round}: {}: {:.0} points/s",
                kind.label(),
                phase.points_per_second()
            );
            phases.push(phase);
        }
    }
    let median_of = |kind: Kind, figure: fn(&Phase) -> f64| {
        median(
            phases
                .iter()
                .filter(|p| p.kind == kind)
                .map(figure)
                .collect(),
        )
    };
    let medians: Vec<(Kind, f64, f64)> = Kind::ALL
        .iter()
        .map(|&kind| {
            (
                kind,
                median_of(kind, Phase::points_per_second),
                median_of(kind, Phase::cpu_ms_per_1000),
            )
        })
        .collect();
    let reference = medians[0].1;

    let settings: Vec<(String, String)> = sqlx::query_as(
        "SELECT name, current_setting(name) FROM pg_settings
         WHERE name IN ('shared_buffers', 'synchronous_commit', 'fsync', 'max_wal_size',
                        'wal_level', 'full_page_writes') ORDER BY name",
    )
    .fetch_all(pool)
    .await?;
    let version: String = sqlx::query_scalar("SHOW server_version")
        .fetch_one(pool)
        .await?;

    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    println!("## Trainyard metric-ingestion benchmark: {cpus} CPUs, {profile} build\n");
    println!(
        "{} points per phase, {} rounds, {writers} concurrent writers (one run each), batches \
         of {} ({} names × {} steps); server pool {} connections; PostgreSQL {version} ({}); \
         database {database}.\n",
        phases[0].points,
        options.rounds,
        options.batch,
        options.keys,
        (options.batch / options.keys).max(1),
        options.pool,
        settings
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "| measurement | round | points | wall s | points/s | Trainyard ÷ this | requests | \
         p50 ms | p99 ms | busy cores | server CPU-s | client CPU-s | postgres CPU-s | \
         other CPU-s | CPU ms / 1,000 points | WAL B/point |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for phase in &phases {
        println!("{}", table_row(phase, reference));
    }
    println!(
        "\n| measurement | median points/s | Trainyard ÷ this | median CPU ms / 1,000 points |"
    );
    println!("|---|---:|---:|---:|");
    for (kind, rate, cost) in &medians {
        println!(
            "| {} | {rate:.0} | {:.2} | {cost:.2} |",
            kind.label(),
            reference / rate
        );
    }
    println!(
        "\n`requests` counts HTTP requests for (a) and COPY statements for (b), (b'). CPU-s \
         are summed over the phase: server = this process but its client threads (the \
         in-process server), client = the HTTP or COPY client's threads, postgres = the cluster's \
         shared processes and this database's backends, other = the rest of the machine's busy time \
         (kernel, other programs). CPU ms / 1,000 points counts server and postgres. WAL counts \
         the whole cluster's."
    );

    if let Some(out) = &options.out {
        let mut text = String::new();
        for (kind, rate, cost) in &medians {
            let key = kind.key();
            let rounds: Vec<String> = phases
                .iter()
                .filter(|p| p.kind == *kind)
                .map(|p| format!("{:.0}", p.points_per_second()))
                .collect();
            writeln!(text, "{key}_points={}", phases[0].points)?;
            writeln!(text, "{key}_points_per_s={rate:.1}")?;
            writeln!(text, "{key}_rounds={}", rounds.join(","))?;
            writeln!(text, "{key}_cpu_ms_per_1000={cost:.3}")?;
        }
        writeln!(text, "postgres_version={version}")?;
        std::fs::write(out, text).with_context(|| format!("writing {out}"))?;
    }
    // The last phase's points would take some 150 MB in the shared test
    // cluster; the runs and metric rows stay for inspection.
    sqlx::query("TRUNCATE metric_points, metric_chunks")
        .execute(pool)
        .await?;
    Ok(())
}

fn main() -> Result<()> {
    let options = Options::parse()?;
    let server = tokio::runtime::Builder::new_multi_thread()
        .thread_name(SERVER_THREADS)
        .enable_all()
        .build()?;
    let client = tokio::runtime::Builder::new_multi_thread()
        .thread_name(CLIENT_THREADS)
        .enable_all()
        .build()?;
    // The server keeps serving on its runtime's threads after this returns.
    let (url, base, admin) = server.block_on(start_server(options.pool as u32))?;
    client.block_on(benchmark(&options, url, base, admin))
}
