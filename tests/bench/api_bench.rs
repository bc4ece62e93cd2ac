//! API benchmark: the real server in-process over a fresh PostgreSQL database,
//! driven over HTTP by concurrent clients sharing one `reqwest::Client`.
//!
//! Phase 1 submits `--runs` runs; phase 2 lists them `--lists` times, mixing
//! the first page, a filtered page and pages deep in the list reached through
//! a cursor. It prints a Markdown table and checks nothing about speed. The
//! clients, the server and PostgreSQL share this machine's cores, so compare
//! figures only between runs on the same machine.
//!
//! `cargo run --release -p trainyard-tests --bin api-bench -- --runs 10000 --clients 8 --lists 2000`

use anyhow::{bail, ensure, Context, Result};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use trainyard_api::{AppState, Limits};
use trainyard_db::Db;

const USAGE: &str = "api-bench [--runs N] [--clients N] [--lists N]";
/// The server's default pool size; the tests' pool of 5 would throttle the
/// clients at the pool instead of measuring the API.
const DB_CONNECTIONS: u32 = 20;
const PAGE_SIZE: usize = 100;
/// Spread over the runs as the `team` tag; the filtered list asks for the first.
const TEAMS: [&str; 4] = ["vision", "speech", "text", "rl"];
/// How many cursors from the deeper half of the list the deep requests rotate through.
const DEEP_CURSORS: usize = 5;
const LIST_KINDS: [&str; 3] = ["first page", "filtered", "deep cursor"];

/// Command-line figures.
struct Options {
    runs: usize,
    clients: usize,
    lists: usize,
}

impl Options {
    fn parse() -> Result<Options> {
        let mut options = Options {
            runs: 10_000,
            clients: 8,
            lists: 2_000,
        };
        let mut args = std::env::args().skip(1);
        while let Some(flag) = args.next() {
            let figure = match flag.as_str() {
                "--runs" => &mut options.runs,
                "--clients" => &mut options.clients,
                "--lists" => &mut options.lists,
                other => bail!("unknown argument {other:?}; usage: {USAGE}"),
            };
            let value = args
                .next()
                .with_context(|| format!("{flag} needs a value"))?;
            *figure =
                value.parse().ok().filter(|n| *n > 0).with_context(|| {
                    format!("{flag} {value:?}: expected a whole number above 0")
                })?;
        }
        Ok(options)
    }
}

/// An API client bound to one token.
#[derive(Clone)]
struct Api {
    client: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    /// POSTs `body` to `path` under `/api/v1`, or GETs it without one, and
    /// returns the answer's body. Any status but success is an error, so
    /// failures never pass for fast answers.
    async fn call(&self, path: &str, body: Option<&Value>) -> Result<String> {
        let url = format!("{}/api/v1{path}", self.base);
        let request = match body {
            Some(body) => self.client.post(url).json(body),
            None => self.client.get(url),
        };
        let request = request.bearer_auth(&self.token);
        let response = request.send().await.with_context(|| path.to_string())?;
        let status = response.status();
        let text = response.text().await?;
        ensure!(status.is_success(), "{path}: {status} {text}");
        Ok(text)
    }

    async fn json(&self, path: &str, body: Option<Value>) -> Result<Value> {
        let text = self.call(path, body.as_ref()).await?;
        Ok(serde_json::from_str(&text)?)
    }
}

/// One request of a phase, built before the clock starts: a POST of `body`
/// to `path`, or a GET of it without one.
struct Request {
    kind: &'static str,
    path: String,
    body: Option<Value>,
}

/// What a phase measured: each request's kind and latency, and its wall time.
struct Phase {
    wall: Duration,
    samples: Vec<(&'static str, Duration)>,
}

/// Sends `requests` from `clients` concurrent clients, each taking the next
/// unsent request as soon as its previous one is answered.
async fn drive(api: &Api, clients: usize, requests: &[Request]) -> Result<Phase> {
    let next = AtomicUsize::new(0);
    let started = Instant::now();
    let per_client =
        futures::future::try_join_all((0..clients).map(|_| client(api, requests, &next))).await?;
    Ok(Phase {
        wall: started.elapsed(),
        samples: per_client.concat(),
    })
}

async fn client(
    api: &Api,
    requests: &[Request],
    next: &AtomicUsize,
) -> Result<Vec<(&'static str, Duration)>> {
    let mut samples = Vec::new();
    while let Some(request) = requests.get(next.fetch_add(1, Ordering::Relaxed)) {
        let sent = Instant::now();
        api.call(&request.path, request.body.as_ref()).await?;
        samples.push((request.kind, sent.elapsed()));
    }
    Ok(samples)
}

/// Starts the server on a fresh database; returns a client with an admin token.
async fn start_server() -> Result<Api> {
    let url = trainyard_tests::fresh_database().await;
    let db = Db::connect(&url, DB_CONNECTIONS).await?;
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
    let server = trainyard_api::serve(listener, state, std::future::pending());
    tokio::spawn(server);
    Ok(Api {
        client: reqwest::Client::new(),
        base,
        token: admin,
    })
}

/// Walks the whole list and keeps a few cursors spread over its deeper half.
async fn deep_cursors(api: &Api, runs_path: &str) -> Result<Vec<String>> {
    let mut cursors = Vec::new();
    let mut path = format!("{runs_path}?limit={PAGE_SIZE}");
    loop {
        let page = api.json(&path, None).await?;
        let Some(cursor) = page["next_cursor"].as_str() else {
            break;
        };
        path = format!("{runs_path}?limit={PAGE_SIZE}&cursor={cursor}");
        cursors.push(cursor.to_string());
    }
    ensure!(
        !cursors.is_empty(),
        "one page holds every run; use more runs"
    );
    let deeper_half = cursors.split_off(cursors.len() / 2);
    let step = (deeper_half.len() / DEEP_CURSORS).max(1);
    Ok(deeper_half
        .into_iter()
        .step_by(step)
        .take(DEEP_CURSORS)
        .collect())
}

/// Nearest-rank percentile of sorted samples.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// A table row for the samples of `kind` (all of the phase's if `None`);
/// req/s counts them over the whole phase's wall time.
fn row(label: &str, phase: &Phase, kind: Option<&str>) -> Option<String> {
    let mut latencies: Vec<Duration> = phase
        .samples
        .iter()
        .filter(|(sample_kind, _)| kind.is_none_or(|kind| kind == *sample_kind))
        .map(|(_, latency)| *latency)
        .collect();
    latencies.sort_unstable();
    let max = *latencies.last()?;
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    Some(format!(
        "| {label} | {} | {:.0} | {:.2} | {:.2} | {:.2} |",
        latencies.len(),
        latencies.len() as f64 / phase.wall.as_secs_f64(),
        ms(percentile(&latencies, 50.0)),
        ms(percentile(&latencies, 99.0)),
        ms(max),
    ))
}

/// Creates the benchmark's workspace, a contributor token and an
/// experiment; returns a client with that token.
async fn setup(admin: Api) -> Result<Api> {
    admin
        .json("/workspaces", Some(json!({ "name": "bench" })))
        .await?;
    let token = json!({ "name": "bench", "role": "contributor" });
    let created = admin.json("/workspaces/bench/tokens", Some(token)).await?;
    let secret = created["secret"].as_str().context("the token's secret")?;
    let api = Api {
        token: secret.to_string(),
        ..admin
    };
    let experiment = json!({ "name": "bench" });
    api.json("/workspaces/bench/experiments", Some(experiment))
        .await?;
    Ok(api)
}

#[tokio::main]
async fn main() -> Result<()> {
    let Options {
        runs,
        clients,
        lists,
    } = Options::parse()?;
    let api = setup(start_server().await?).await?;
    let runs_path = "/workspaces/bench/runs";

    let creates: Vec<Request> = (0..runs)
        .map(|i| Request {
            kind: "create",
            path: runs_path.to_string(),
            body: Some(json!({
                "experiment": "bench",
                "tags": { "team": TEAMS[i % TEAMS.len()], "seed": (i % 10).to_string() },
            })),
        })
        .collect();
    let create_phase = drive(&api, clients, &creates).await?;

    let deep = deep_cursors(&api, runs_path).await?;
    let list_requests: Vec<Request> = (0..lists)
        .map(|i| {
            let query = match i % LIST_KINDS.len() {
                0 => String::new(),
                1 => format!("&status=Queued&tag=team%3D{}", TEAMS[0]),
                _ => format!("&cursor={}", deep[i / LIST_KINDS.len() % deep.len()]),
            };
            Request {
                kind: LIST_KINDS[i % LIST_KINDS.len()],
                path: format!("{runs_path}?limit={PAGE_SIZE}{query}"),
                body: None,
            }
        })
        .collect();
    let list_phase = drive(&api, clients, &list_requests).await?;

    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    println!("## Trainyard API benchmark: {cpus} CPUs, {profile} build\n");
    let (team, cursors) = (TEAMS[0], deep.len());
    println!(
        "{runs} runs with 2 tags; {lists} lists of {PAGE_SIZE} runs: first page, filtered \
         (status=Queued, tag=team={team}), or from one of {cursors} cursors deep in the list; \
         {clients} concurrent clients.\n"
    );
    println!("| requests | count | req/s | p50 ms | p99 ms | max ms |");
    println!("|---|---:|---:|---:|---:|---:|");
    let list_rows =
        LIST_KINDS.map(|kind| row(&format!("run list: {kind}"), &list_phase, Some(kind)));
    let rows = [row("run create", &create_phase, None)]
        .into_iter()
        .chain(list_rows)
        .chain([row("run list: all", &list_phase, None)]);
    for row in rows.flatten() {
        println!("{row}");
    }
    println!("\nA list kind's req/s counts its requests over the whole mixed phase.");
    Ok(())
}
