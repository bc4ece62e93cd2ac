//! Scheduling benchmark, each figure beside a baseline measured in the same
//! run on the same machine:
//!
//! 1. Hand-off on a compute target: one node with one simulated GPU and
//!    `--handoffs` runs of `true` asking for it, submitted together, so each
//!    starts when the one before frees the GPU. Measured from the earlier
//!    run's `ended_at` to the next one's `started_at`. Baseline: submit to
//!    `started_at` of as many runs on the server's own engine (no placement),
//!    submitted one after another with a free slot each time.
//! 2. One placement pass in PostgreSQL over `--runs` queued runs and
//!    `--nodes` nodes (read the cluster, plan, store the decisions), against
//!    reading the same queued runs alone; and the pure plan of the same size.
//!
//! It prints a Markdown table and checks nothing about speed.
//!
//! `cargo run --release -p trainyard-tests --bin placement-bench -- --handoffs 10 --runs 10000 --nodes 1000`

use anyhow::{bail, ensure, Context, Result};
use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use trainyard_scheduler::cluster;
use trainyard_scheduler::placement::{self, PlacementConfig};
use trainyard_tests::{Options, TestApp};

const USAGE: &str = "placement-bench [--handoffs N] [--runs N] [--nodes N]";
const BUSYBOX: &str = "trainyard/busybox:latest";

struct Args {
    handoffs: usize,
    runs: usize,
    nodes: usize,
}

fn parse() -> Result<Args> {
    let mut parsed = Args {
        handoffs: 10,
        runs: 10_000,
        nodes: 1_000,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value: usize = args
            .next()
            .with_context(|| format!("{flag} needs a value; {USAGE}"))?
            .parse()
            .with_context(|| format!("{flag} takes a whole number"))?;
        match flag.as_str() {
            "--handoffs" => parsed.handoffs = value.max(2),
            "--runs" => parsed.runs = value,
            "--nodes" => parsed.nodes = value.max(1),
            _ => bail!("unknown flag {flag}; {USAGE}"),
        }
    }
    Ok(parsed)
}

fn time_of(run: &Value, field: &str) -> Result<DateTime<Utc>> {
    run[field]
        .as_str()
        .with_context(|| format!("{field} missing: {run}"))?
        .parse()
        .context("a timestamp")
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort_unstable();
    samples[samples.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = parse()?;
    let app = TestApp::spawn_executing(Options::default())
        .await
        .context("no Docker engine answers")?;
    app.workspace("bench").await;
    let token = app.token("bench", "contributor").await;
    app.experiment("bench", &token, "sched").await;
    let (status, body) = app
        .post(
            "/api/v1/workspaces/bench/compute",
            &app.admin,
            json!({ "name": "one-gpu", "max_nodes": 1,
                    "default_resources": { "gpus": 1, "cpus": 0.5, "memory_mb": 256 } }),
        )
        .await;
    ensure!(status == StatusCode::CREATED, "{body}");
    let (status, body) = app
        .post(
            "/api/v1/workspaces/bench/compute/one-gpu/nodes",
            &app.admin,
            json!({ "name": "gpu-1", "endpoint": "unix:///var/run/docker.sock",
                    "gpu_mode": "simulated", "gpus": 1, "cpus": 4, "memory_mb": 4096 }),
        )
        .await;
    ensure!(status == StatusCode::CREATED, "{body}");
    let true_run = |target: Option<&str>| {
        let mut body =
            json!({ "command": ["true"], "environment": { "spec": { "base_image": BUSYBOX } } });
        if let Some(target) = target {
            body["compute_target"] = json!(target);
        }
        body
    };
    // Builds the image once, outside the measurements.
    let warm = app.run("bench", &token, "sched", true_run(None)).await;
    let warm_id = warm["id"].as_str().unwrap().to_string();
    app.wait_for_end("bench", &token, &warm_id, Duration::from_secs(600))
        .await;

    // 1a. Baseline: the server's own engine, one run at a time.
    let mut local = Vec::new();
    for _ in 0..args.handoffs {
        let run = app.run("bench", &token, "sched", true_run(None)).await;
        let id = run["id"].as_str().unwrap().to_string();
        let run = app
            .wait_for_end("bench", &token, &id, Duration::from_secs(120))
            .await;
        ensure!(run["status"] == "Completed", "{run}");
        let wait = time_of(&run, "started_at")? - time_of(&run, "created_at")?;
        local.push(wait.to_std().unwrap_or_default());
    }
    // 1b. Hand-offs of the one GPU.
    let mut ids = Vec::new();
    for _ in 0..args.handoffs {
        let run = app
            .run("bench", &token, "sched", true_run(Some("one-gpu")))
            .await;
        ids.push(run["id"].as_str().unwrap().to_string());
    }
    let mut ended = Vec::new();
    for id in &ids {
        let run = app
            .wait_for_end("bench", &token, id, Duration::from_secs(300))
            .await;
        ensure!(run["status"] == "Completed", "{run}");
        ended.push((time_of(&run, "started_at")?, time_of(&run, "ended_at")?));
    }
    ended.sort();
    let handoffs: Vec<Duration> = ended
        .windows(2)
        .map(|w| (w[1].0 - w[0].1).to_std().unwrap_or_default())
        .collect();

    // 2. A pass over many queued runs and nodes, in a workspace of its own
    //    whose target the running scheduler also sees: its nodes are
    //    cordoned, so the background passes only record reasons.
    app.workspace("large").await;
    let large = app.token("large", "contributor").await;
    app.experiment("large", &large, "queue").await;
    let (status, body) = app
        .post(
            "/api/v1/workspaces/large/compute",
            &app.admin,
            json!({ "name": "big", "max_nodes": args.nodes }),
        )
        .await;
    ensure!(status == StatusCode::CREATED, "{body}");
    for i in 0..args.nodes {
        let (status, body) = app
            .post(
                "/api/v1/workspaces/large/compute/big/nodes",
                &app.admin,
                json!({ "name": format!("n{i}"), "endpoint": "tcp://127.0.0.1:1",
                        "gpu_mode": "simulated", "gpus": 8, "cpus": 64, "memory_mb": 262144 }),
            )
            .await;
        ensure!(status == StatusCode::CREATED, "{body}");
        app.call(
            reqwest::Method::PUT,
            &format!("/api/v1/workspaces/large/compute/big/nodes/n{i}/state"),
            &app.admin,
            Some(json!({ "state": "cordoned" })),
        )
        .await;
    }
    for i in 0..args.runs {
        let gpus = [1, 2, 4, 8][i % 4];
        let (status, body) = app
            .post(
                "/api/v1/workspaces/large/runs",
                &large,
                json!({ "experiment": "queue", "command": ["true"], "compute_target": "big",
                        "resources": { "gpus": gpus } }),
            )
            .await;
        ensure!(status == StatusCode::CREATED, "{body}");
    }
    let large_id = uuid::Uuid::parse_str(&app.workspace_id("large").await)?;
    let mut passes = Vec::new();
    let mut reads = Vec::new();
    for _ in 0..5 {
        let mut pass = loop {
            if let Some(pass) = app.db.begin_scheduling_pass().await? {
                break pass;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        let started = Instant::now();
        let state = pass.cluster_state(20_000).await?;
        let decisions = cluster::decide(&state, PlacementConfig::default());
        pass.record_waits(&decisions.waits, 10).await?;
        pass.commit().await?;
        passes.push(started.elapsed());
        ensure!(
            state.queued.len() >= args.runs,
            "queued: {}",
            state.queued.len()
        );
        let started = Instant::now();
        let _ = app.db.queue_of_target(large_id, "big", 20_000).await?;
        reads.push(started.elapsed());
    }
    let input = placement::synthetic_input(args.runs, args.nodes, 7);
    let mut plans = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let plan = placement::plan(&input);
        plans.push(started.elapsed());
        std::hint::black_box(plan);
    }

    let (local_p50, handoff_p50) = (median(local), median(handoffs));
    let (pass_p50, read_p50) = (median(passes), median(reads));
    println!("| measurement | figure (median) | baseline (median) | ratio |");
    println!("|---|---:|---:|---:|");
    println!(
        "| GPU freed → next run started on a compute target, {} runs | {} ms | submit → started on the server's own engine: {} ms | {:.2} |",
        args.handoffs,
        ms(handoff_p50),
        ms(local_p50),
        handoff_p50.as_secs_f64() / local_p50.as_secs_f64()
    );
    println!(
        "| placement pass in PostgreSQL, {} queued runs × {} nodes | {} ms | reading those queued runs: {} ms | {:.2} |",
        args.runs,
        args.nodes,
        ms(pass_p50),
        ms(read_p50),
        pass_p50.as_secs_f64() / read_p50.as_secs_f64()
    );
    println!(
        "| pure plan, {} runs × {} nodes (best of 5) | {} ms | | |",
        args.runs,
        args.nodes,
        ms(*plans.iter().min().unwrap())
    );
    Ok(())
}
