//! Data benchmark: moving files through a real `trainyard serve` process,
//! set beside `cp` (and the `docker` CLI) doing the same work on the same disk.
//!
//! 1. Datastore upload: one big file (`--big-mb`, default 2048 MiB) and
//!    `--small-files` files of `--small-mb` MiB (default 1,000 of 1 MiB),
//!    `PUT` one after another into the workspace's `default` datastore,
//!    against `cp -r` of the same folders.
//! 2. Dataset registration of each set (the server hashes every file and
//!    copies it into the content-addressed blobs), against `cp -r`; the big
//!    file downloaded back through `GET …/files/download`, streamed to a file,
//!    against `cp`; and, when a Docker engine answers and `trainyard/busybox`
//!    exists, a run reading each dataset as a `download` input and as a
//!    `mount` input (`du -s /mnt/inputs/d`), submit to Completed, against
//!    `docker create` + `docker cp` + `docker start -a`, and `docker run -v`.
//! 3. The server's resident memory, sampled from `/proc/<pid>/status` every
//!    50 ms during each phase, with its high-water mark reset at each phase's
//!    start (`clear_refs`), so every phase reports its own peak.
//!
//! The server is the release binary `target/release/trainyard` (built beside
//! this one), started on a fresh data directory under `/tmp` with its own
//! PostgreSQL; it is stopped with SIGTERM and its data directory deleted at
//! the end. The source files are written once before any timing; every timed
//! step starts after a `sync`, so none inherits another's dirty pages, but
//! page caches cannot be dropped: reads come from memory on both sides. It
//! prints Markdown tables and checks nothing about speed, only that every
//! byte count matches; a run that fails is reported in the table with its
//! error (and the benchmark goes on), since that is a finding too.
//!
//! `cargo build --release -p trainyard -p trainyard-tests && target/release/data-bench --big-mb 2048 --small-files 1000 --small-mb 1`

use anyhow::{bail, ensure, Context, Result};
use futures::StreamExt;
use serde_json::{json, Value};
use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;

const USAGE: &str = "data-bench [--big-mb N] [--small-files N] [--small-mb N] [--server PATH]";
const MIB: u64 = 1 << 20;
const WORKSPACE: &str = "bench";
const EXPERIMENT: &str = "data";
const BUSYBOX: &str = "trainyard/busybox:latest";
/// How often the server's memory is sampled.
const SAMPLE_EVERY: Duration = Duration::from_millis(50);
/// How often a run's status is polled: the resolution of submit → Completed.
const POLL: Duration = Duration::from_millis(50);
/// The size of the chunks a streamed upload sends.
const UPLOAD_CHUNK: usize = 1 << 20;
/// Longest the server may take to answer `/readyz` after its start.
const START_LIMIT: Duration = Duration::from_secs(180);
/// Longest a run may take before the benchmark gives up.
const RUN_LIMIT: Duration = Duration::from_secs(1800);
/// What every run executes.
const DU: &str = "du -s /mnt/inputs/d";

/// Command-line figures.
struct Options {
    big_mb: u64,
    small_files: usize,
    small_mb: u64,
    server: Option<PathBuf>,
}

impl Options {
    fn parse() -> Result<Options> {
        let mut options = Options {
            big_mb: 2048,
            small_files: 1000,
            small_mb: 1,
            server: None,
        };
        let mut args = std::env::args().skip(1);
        while let Some(flag) = args.next() {
            let value = args
                .next()
                .with_context(|| format!("{flag} needs a value"))?;
            if flag == "--server" {
                options.server = Some(PathBuf::from(value));
                continue;
            }
            let number: u64 =
                value.parse().ok().filter(|n| *n > 0).with_context(|| {
                    format!("{flag} {value:?}: expected a whole number above 0")
                })?;
            match flag.as_str() {
                "--big-mb" => options.big_mb = number,
                "--small-files" => options.small_files = number as usize,
                "--small-mb" => options.small_mb = number,
                other => bail!("unknown argument {other:?}; usage: {USAGE}"),
            }
        }
        Ok(options)
    }
}

/// The benchmark's folder under `/tmp` (sources, `cp` copies, downloads and
/// the server's data directory) and the server process; dropping it stops
/// the server and deletes the folder, whatever happened before.
struct Workdir {
    root: PathBuf,
    server: Option<Child>,
}

impl Workdir {
    fn create() -> Result<Workdir> {
        let root = std::env::temp_dir().join(format!("data-bench-{}", std::process::id()));
        std::fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
        Ok(Workdir { root, server: None })
    }

    fn data_dir(&self) -> PathBuf {
        self.root.join("data")
    }

    fn log_path(&self) -> PathBuf {
        self.root.join("server.log")
    }

    /// The last lines of the server's log, to explain a failure.
    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// Stops the server with SIGTERM; returns how long it took to exit.
    fn stop_server(&mut self) -> Result<Option<Duration>> {
        let Some(mut child) = self.server.take() else {
            return Ok(None);
        };
        let started = Instant::now();
        let pid = child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status()?;
        ensure!(sent.success(), "kill -TERM {pid} failed");
        while started.elapsed() < Duration::from_secs(60) {
            if let Some(status) = child.try_wait()? {
                ensure!(status.success(), "the server exited {status} after SIGTERM");
                return Ok(Some(started.elapsed()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        child.kill()?;
        child.wait()?;
        bail!(
            "the server did not exit within 60 s of SIGTERM; killed it (its PostgreSQL may linger)"
        )
    }
}

impl Drop for Workdir {
    fn drop(&mut self) {
        if let Err(err) = self.stop_server() {
            eprintln!("stopping the server: {err:#}");
        }
        if let Err(err) = std::fs::remove_dir_all(&self.root) {
            eprintln!("deleting {}: {err}", self.root.display());
        }
    }
}

/// A free port on the loopback interface.
fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// Starts `trainyard serve` on a fresh data directory; returns its base URL
/// and the administrator token it created.
async fn start_server(
    work: &mut Workdir,
    binary: &Path,
    executor: bool,
) -> Result<(String, String)> {
    let port = free_port()?;
    let data_dir = work.data_dir();
    let log = std::fs::File::create(work.log_path())?;
    let mut command = Command::new(binary);
    command
        .arg("serve")
        .arg("--data-dir")
        .arg(&data_dir)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--replica-name", "data-bench"])
        .args(["--executor", if executor { "true" } else { "false" }])
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    // Settings from this shell's environment would override the flags' defaults.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name.starts_with("TRAINYARD_") || name == "DATABASE_URL" {
            command.env_remove(name.as_ref());
        }
    }
    work.server = Some(
        command
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?,
    );
    let base = format!("http://127.0.0.1:{port}");
    let client = client()?;
    let token_path = data_dir.join("admin-token");
    let started = Instant::now();
    loop {
        if let Some(status) = work
            .server
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
        {
            bail!("the server exited {status} at start:\n{}", work.log_tail());
        }
        let ready = client
            .get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if ready && token_path.exists() {
            break;
        }
        ensure!(
            started.elapsed() < START_LIMIT,
            "the server was not ready within {START_LIMIT:?}:\n{}",
            work.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let token = std::fs::read_to_string(&token_path)?.trim().to_string();
    Ok((base, token))
}

fn client() -> Result<reqwest::Client> {
    // Never through a proxy from the environment: the server is on loopback.
    Ok(reqwest::Client::builder().no_proxy().build()?)
}

/// Samples a process's resident memory in the background.
struct Memory {
    pid: u32,
    /// Highest VmRSS sampled since the phase began, in KiB.
    peak_kb: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// What one phase did to the server's memory, in KiB.
#[derive(Clone, Copy)]
struct MemoryPhase {
    /// Highest VmRSS of the 50 ms samples (and of the phase's start and end).
    sampled_peak: u64,
    /// VmHWM at the phase's end: the exact peak since its start when the
    /// high-water mark could be reset, else since the process started.
    hwm: u64,
    hwm_reset: bool,
    /// VmRSS right after the phase.
    after: u64,
    /// CPU time the server spent in the phase (user + system, all threads).
    cpu: Duration,
}

/// Where a phase began.
struct PhaseStart {
    hwm_reset: bool,
    cpu_ticks: u64,
}

/// Clock ticks of `/proc/<pid>/stat`.
const TICKS_PER_SECOND: u64 = 100;

/// User + system CPU time of `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name, which is in parentheses; utime and
    // stime are the 14th and 15th fields of the whole line.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    let field = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    field(11).unwrap_or(0) + field(12).unwrap_or(0)
}

/// VmRSS and VmHWM of `pid`, in KiB.
fn rss_kb(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        line[name.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

impl Memory {
    fn start(pid: u32) -> Memory {
        let peak_kb = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (peak_kb, stop) = (peak_kb.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Some((rss, _)) = rss_kb(pid) {
                        peak_kb.fetch_max(rss, Ordering::Relaxed);
                    }
                    std::thread::sleep(SAMPLE_EVERY);
                }
            })
        };
        Memory {
            pid,
            peak_kb,
            stop,
            thread: Some(thread),
        }
    }

    fn now_kb(&self) -> u64 {
        rss_kb(self.pid).map_or(0, |(rss, _)| rss)
    }

    /// Starts a phase: resets the high-water mark (`echo 5 > clear_refs`)
    /// and the sampled peak, and notes the CPU time so far.
    fn begin(&self) -> PhaseStart {
        let hwm_reset = std::fs::write(format!("/proc/{}/clear_refs", self.pid), "5").is_ok();
        self.peak_kb.store(self.now_kb(), Ordering::Relaxed);
        PhaseStart {
            hwm_reset,
            cpu_ticks: cpu_ticks(self.pid),
        }
    }

    fn end(&self, start: PhaseStart) -> MemoryPhase {
        let (after, hwm) = rss_kb(self.pid).unwrap_or((0, 0));
        let ticks = cpu_ticks(self.pid).saturating_sub(start.cpu_ticks);
        MemoryPhase {
            sampled_peak: self.peak_kb.fetch_max(after, Ordering::Relaxed).max(after),
            hwm,
            hwm_reset: start.hwm_reset,
            after,
            cpu: Duration::from_millis(ticks * 1000 / TICKS_PER_SECOND),
        }
    }
}

impl Drop for Memory {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Flushes every dirty page, so that the next timed step starts clean.
fn sync_disks() -> Result<()> {
    ensure!(Command::new("sync").status()?.success(), "sync failed");
    Ok(())
}

/// Times `work` after a `sync`, with the server's memory sampled throughout.
async fn phase<T>(
    memory: &Memory,
    work: impl Future<Output = Result<T>>,
) -> Result<(Duration, MemoryPhase, T)> {
    sync_disks()?;
    let start = memory.begin();
    let started = Instant::now();
    let out = work.await?;
    let elapsed = started.elapsed();
    Ok((elapsed, memory.end(start), out))
}

/// Times `cp -r from to` after a `sync`, then deletes the copy (untimed).
fn cp(from: &Path, to: &Path) -> Result<Duration> {
    sync_disks()?;
    let started = Instant::now();
    let status = Command::new("cp").arg("-r").arg(from).arg(to).status()?;
    let elapsed = started.elapsed();
    ensure!(
        status.success(),
        "cp -r {} {}: {status}",
        from.display(),
        to.display()
    );
    std::fs::remove_dir_all(to)?;
    Ok(elapsed)
}

/// Runs a command and returns its standard output; failing is an error.
fn command_output(program: &str, args: &[&str]) -> Result<String> {
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {program}"))?;
    ensure!(
        output.status.success(),
        "{program} {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// Fills `buf` from a xorshift generator, so that no two files share content
/// (the blobs would otherwise store them once).
fn fill(buf: &mut [u8], state: &mut u64) {
    for word in buf.chunks_exact_mut(8) {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        word.copy_from_slice(&state.to_le_bytes());
    }
}

/// Writes a file of `mib` MiB of generated bytes.
fn write_source(path: &Path, mib: u64, state: &mut u64) -> Result<()> {
    let mut file = std::fs::File::create(path)?;
    let mut buf = vec![0u8; MIB as usize];
    for _ in 0..mib {
        fill(&mut buf, state);
        file.write_all(&buf)?;
    }
    Ok(())
}

/// The sources: `src/big/big.bin` and `src/small/small-NNNN.bin`.
struct Sources {
    big_dir: PathBuf,
    small_dir: PathBuf,
    big_bytes: u64,
    small_names: Vec<String>,
    small_bytes: u64,
}

fn write_sources(root: &Path, options: &Options) -> Result<Sources> {
    let big_dir = root.join("src/big");
    let small_dir = root.join("src/small");
    std::fs::create_dir_all(&big_dir)?;
    std::fs::create_dir_all(&small_dir)?;
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    write_source(&big_dir.join("big.bin"), options.big_mb, &mut state)?;
    let small_names: Vec<String> = (0..options.small_files)
        .map(|i| format!("small-{i:05}.bin"))
        .collect();
    for name in &small_names {
        write_source(&small_dir.join(name), options.small_mb, &mut state)?;
    }
    Ok(Sources {
        big_dir,
        small_dir,
        big_bytes: options.big_mb * MIB,
        small_bytes: options.small_files as u64 * options.small_mb * MIB,
        small_names,
    })
}

/// An API client bound to one token.
struct Api {
    client: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    fn url(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.base)
    }

    /// POSTs `body` to `path`, or GETs it without one; any status but
    /// success is an error.
    async fn json(&self, path: &str, body: Option<Value>) -> Result<Value> {
        let request = match body {
            Some(body) => self.client.post(self.url(path)).json(&body),
            None => self.client.get(self.url(path)),
        };
        let response = request
            .bearer_auth(&self.token)
            .send()
            .await
            .with_context(|| path.to_string())?;
        let status = response.status();
        let text = response.text().await?;
        ensure!(status.is_success(), "{path}: {status} {text}");
        Ok(serde_json::from_str(&text)?)
    }

    /// Uploads `body` to `key` in the default datastore; returns the size stored.
    async fn put(&self, key: &str, body: reqwest::Body) -> Result<u64> {
        let path = format!("/workspaces/{WORKSPACE}/datastores/default/files");
        let response = self
            .client
            .put(self.url(&path))
            .query(&[("path", key), ("overwrite", "true")])
            .bearer_auth(&self.token)
            .body(body)
            .send()
            .await?;
        let status = response.status();
        let text = response.text().await?;
        ensure!(status.is_success(), "uploading {key}: {status} {text}");
        let stored: Value = serde_json::from_str(&text)?;
        stored["size"].as_u64().context("the stored size")
    }

    /// Uploads a file streamed in 1 MiB chunks (never whole in memory).
    async fn upload_streamed(&self, key: &str, file: &Path) -> Result<u64> {
        let file = tokio::fs::File::open(file).await?;
        let chunks = futures::stream::unfold(file, |mut file| async move {
            let mut buf = vec![0u8; UPLOAD_CHUNK];
            match file.read(&mut buf).await {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    Some((Ok::<_, std::io::Error>(bytes::Bytes::from(buf)), file))
                }
                Err(err) => Some((Err(err), file)),
            }
        });
        self.put(key, reqwest::Body::wrap_stream(chunks)).await
    }

    /// Uploads a small file read whole.
    async fn upload_whole(&self, key: &str, file: &Path) -> Result<u64> {
        let bytes = tokio::fs::read(file).await?;
        self.put(key, reqwest::Body::from(bytes)).await
    }

    /// Downloads `key` of the default datastore, streamed to `out`.
    async fn download(&self, key: &str, out: &Path) -> Result<u64> {
        let path = format!("/workspaces/{WORKSPACE}/datastores/default/files/download");
        let response = self
            .client
            .get(self.url(&path))
            .query(&[("path", key)])
            .bearer_auth(&self.token)
            .send()
            .await?;
        let status = response.status();
        ensure!(status.is_success(), "downloading {key}: {status}");
        let mut file = std::io::BufWriter::with_capacity(MIB as usize, std::fs::File::create(out)?);
        let mut written = 0u64;
        let mut body = response.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk?;
            file.write_all(&chunk)?;
            written += chunk.len() as u64;
        }
        file.flush()?;
        Ok(written)
    }

    /// Registers a dataset of `paths`; checks the files and bytes it holds.
    async fn register(&self, name: &str, paths: &[&str], files: u64, bytes: u64) -> Result<()> {
        let body = json!({ "name": name, "paths": paths });
        let dataset = self
            .json(&format!("/workspaces/{WORKSPACE}/datasets"), Some(body))
            .await?;
        let (got_files, got_bytes) = (
            dataset["file_count"].as_u64(),
            dataset["total_bytes"].as_u64(),
        );
        ensure!(
            got_files == Some(files) && got_bytes == Some(bytes),
            "dataset {name}: {got_files:?} files, {got_bytes:?} bytes; expected {files}, {bytes}"
        );
        Ok(())
    }

    /// Submits a busybox run of `command` with `inputs`; returns its id.
    async fn submit(&self, command: &[&str], inputs: Value) -> Result<String> {
        let body = json!({
            "experiment": EXPERIMENT,
            "command": command,
            "environment": { "spec": { "base_image": BUSYBOX } },
            "inputs": inputs,
        });
        let run = self
            .json(&format!("/workspaces/{WORKSPACE}/runs"), Some(body))
            .await?;
        Ok(run["id"].as_str().context("the run's id")?.to_string())
    }

    /// Polls the run until it ends; it must have completed.
    async fn wait_completed(&self, id: &str) -> Result<()> {
        match self.wait_ended(id).await? {
            Ok(()) => Ok(()),
            Err(why) => bail!("run {id} {why}"),
        }
    }

    /// Polls the run until it ends: `Ok` when it completed, else how it ended.
    async fn wait_ended(&self, id: &str) -> Result<std::result::Result<(), String>> {
        let path = format!("/workspaces/{WORKSPACE}/runs/{id}");
        let deadline = Instant::now() + RUN_LIMIT;
        loop {
            let run = self.json(&path, None).await?;
            match run["status"].as_str() {
                Some("Completed") => return Ok(Ok(())),
                Some(status @ ("Failed" | "Canceled")) => {
                    let error = run["error"].as_str().unwrap_or("no error given");
                    return Ok(Err(format!("ended {status}: {error}")));
                }
                _ => {}
            }
            ensure!(Instant::now() < deadline, "run {id} did not end in time");
            tokio::time::sleep(POLL).await;
        }
    }

    /// The run's status changes, as seconds after its creation.
    async fn stages(&self, id: &str) -> Result<String> {
        let run = self
            .json(&format!("/workspaces/{WORKSPACE}/runs/{id}"), None)
            .await?;
        let created: chrono::DateTime<chrono::Utc> =
            serde_json::from_value(run["created_at"].clone())?;
        let events = self
            .json(&format!("/workspaces/{WORKSPACE}/runs/{id}/events"), None)
            .await?;
        let mut stages = Vec::new();
        for event in events["items"].as_array().context("the run's events")? {
            let at: chrono::DateTime<chrono::Utc> = serde_json::from_value(event["at"].clone())?;
            let seconds = (at - created).num_milliseconds() as f64 / 1e3;
            stages.push(format!(
                "{} {seconds:.2}",
                event["to"].as_str().unwrap_or("?")
            ));
        }
        Ok(stages.join(", "))
    }

    /// The run's first stdout line (the `du` figure), once it is stored.
    async fn first_stdout_line(&self, id: &str) -> Result<String> {
        let path = format!("/workspaces/{WORKSPACE}/runs/{id}/logs?source=stdout");
        for _ in 0..100 {
            let page = self.json(&path, None).await?;
            if let Some(line) = page["lines"][0]["line"].as_str() {
                return Ok(line.trim().to_string());
            }
            tokio::time::sleep(POLL).await;
        }
        bail!("run {id} stored no stdout line")
    }
}

/// Creates the workspace, a contributor token and the runs' experiment.
async fn setup(admin: Api) -> Result<Api> {
    admin
        .json("/workspaces", Some(json!({ "name": WORKSPACE })))
        .await?;
    let token = json!({ "name": "data-bench", "role": "contributor" });
    let created = admin
        .json(&format!("/workspaces/{WORKSPACE}/tokens"), Some(token))
        .await?;
    let secret = created["secret"].as_str().context("the token's secret")?;
    let api = Api {
        token: secret.to_string(),
        ..admin
    };
    api.json(
        &format!("/workspaces/{WORKSPACE}/experiments"),
        Some(json!({ "name": EXPERIMENT })),
    )
    .await?;
    Ok(api)
}

/// What a run with one dataset input measured.
struct RunFigures {
    wall: Duration,
    memory: MemoryPhase,
    stages: String,
    /// The `du` line when the run completed, else how it ended.
    outcome: std::result::Result<String, String>,
}

impl RunFigures {
    /// The table cell: the wall time, or how the run ended and when.
    fn cell(&self) -> String {
        match &self.outcome {
            Ok(_) => format!("{:.2} s", self.wall.as_secs_f64()),
            Err(why) => format!("{why} after {:.2} s", self.wall.as_secs_f64()),
        }
    }

    fn ratio(&self, baseline: Duration) -> String {
        match self.outcome {
            Ok(_) => ratio(self.wall, baseline),
            Err(_) => "–".to_string(),
        }
    }
}

async fn timed_run(api: &Api, memory: &Memory, dataset: &str, mode: &str) -> Result<RunFigures> {
    let inputs = json!([{ "name": "d", "dataset": dataset, "mode": mode }]);
    let (wall, memory, (id, ended)) = phase(memory, async {
        let id = api.submit(&["sh", "-c", DU], inputs).await?;
        let ended = api.wait_ended(&id).await?;
        Ok((id, ended))
    })
    .await?;
    let outcome = match ended {
        Ok(()) => Ok(api.first_stdout_line(&id).await?),
        Err(why) => Err(why),
    };
    Ok(RunFigures {
        wall,
        memory,
        stages: api.stages(&id).await?,
        outcome,
    })
}

/// `docker create` + `docker cp` of the files under `dir` to
/// `/mnt/inputs/d/<dir's name>` + `docker start -a`, the plain CLI's way of
/// copying files into a container before it starts; the container's removal
/// is not timed. Returns the wall time and the `du` line.
fn plain_download(root: &Path, dir: &Path) -> Result<(Duration, String)> {
    // The files hard-linked into the layout they take in the container.
    let stage = root.join("stage");
    let name = dir.file_name().context("a source folder's name")?;
    let target = stage.join("mnt/inputs/d").join(name);
    std::fs::create_dir_all(&target)?;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        std::fs::hard_link(entry.path(), target.join(entry.file_name()))?;
    }
    let container = format!("data-bench-{}", std::process::id());
    let staged = format!("{}/.", stage.display());
    sync_disks()?;
    let started = Instant::now();
    command_output(
        "docker",
        &["create", "--name", &container, BUSYBOX, "sh", "-c", DU],
    )?;
    let copied = command_output("docker", &["cp", &staged, &format!("{container}:/")]);
    let du = copied.and_then(|_| command_output("docker", &["start", "-a", &container]));
    let elapsed = started.elapsed();
    let removed = command_output("docker", &["rm", "-f", &container]);
    std::fs::remove_dir_all(&stage)?;
    let du = du?;
    removed?;
    Ok((elapsed, du))
}

/// `docker run --rm -v <dir>:/mnt/inputs/d/<dir's name>:ro`: the plain CLI's mount.
fn plain_mount(dir: &Path) -> Result<(Duration, String)> {
    let name = dir.file_name().context("a source folder's name")?;
    let volume = format!(
        "{}:/mnt/inputs/d/{}:ro",
        dir.display(),
        name.to_string_lossy()
    );
    sync_disks()?;
    let started = Instant::now();
    let du = command_output(
        "docker",
        &["run", "--rm", "-v", &volume, BUSYBOX, "sh", "-c", DU],
    )?;
    Ok((started.elapsed(), du))
}

/// Whether runs can be measured: an engine answers and the image exists.
fn docker_ready() -> std::result::Result<(), String> {
    command_output("docker", &["version", "--format", "{{.Server.Version}}"])
        .map_err(|e| format!("no Docker engine answers ({e:#})"))?;
    command_output("docker", &["image", "inspect", "-f", "{{.Id}}", BUSYBOX]).map_err(|_| {
        format!("the image {BUSYBOX} is missing (bash docker/build-base-images.sh --only busybox)")
    })?;
    Ok(())
}

/// What a run's `du` printed, or that it did not complete.
fn du_cell(outcome: &std::result::Result<String, String>) -> String {
    match outcome {
        Ok(du) => format!("{du:?}"),
        Err(_) => "nothing (not completed)".to_string(),
    }
}

fn mb_per_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / 1e6 / d.as_secs_f64()
}

fn throughput(bytes: u64, d: Duration) -> String {
    format!("{:.0} MB/s ({:.2} s)", mb_per_s(bytes, d), d.as_secs_f64())
}

fn ratio(trainyard: Duration, baseline: Duration) -> String {
    format!("{:.2}×", trainyard.as_secs_f64() / baseline.as_secs_f64())
}

fn mib(kb: u64) -> String {
    format!("{:.1}", kb as f64 / 1024.0)
}

/// A line of the measurements table.
struct Row {
    label: String,
    trainyard: String,
    baseline: String,
    ratio: String,
}

fn transfer_row(label: String, bytes: u64, trainyard: Duration, baseline: Duration) -> Row {
    Row {
        label,
        trainyard: throughput(bytes, trainyard),
        baseline: format!("cp: {}", throughput(bytes, baseline)),
        ratio: ratio(trainyard, baseline),
    }
}

/// The first three figures of `/proc/loadavg`.
fn load_average() -> String {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    load.split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The CPU's model name from `/proc/cpuinfo`.
fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, model)| model.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".to_string())
}

#[tokio::main]
async fn main() -> Result<()> {
    let options = Options::parse()?;
    let binary = match &options.server {
        Some(path) => path.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("the benchmark's folder")?
            .join("trainyard"),
    };
    ensure!(
        binary.exists(),
        "{} is missing: cargo build --release -p trainyard",
        binary.display()
    );
    let docker = docker_ready();
    let mut work = Workdir::create()?;
    let result = bench(&mut work, &binary, &options, docker).await;
    let stopped = work.stop_server();
    let root = work.root.clone();
    drop(work);
    let tables = result?;
    println!("{tables}");
    match stopped {
        Ok(Some(took)) => println!(
            "The server exited {:.2} s after SIGTERM; {} was deleted.",
            took.as_secs_f64(),
            root.display()
        ),
        Ok(None) => {}
        Err(err) => println!("Stopping the server: {err:#}"),
    }
    Ok(())
}

/// Runs every measurement; returns the report.
async fn bench(
    work: &mut Workdir,
    binary: &Path,
    options: &Options,
    docker: std::result::Result<(), String>,
) -> Result<String> {
    let root = work.root.clone();
    let load_start = load_average();
    eprintln!("writing the source files under {}…", root.display());
    let sources = write_sources(&root, options)?;
    let small_count = sources.small_names.len() as u64;
    let big_key = "big/big.bin";
    let big_file = sources.big_dir.join("big.bin");

    eprintln!("starting {}…", binary.display());
    let (base, admin) = start_server(work, binary, docker.is_ok()).await?;
    let pid = work.server.as_ref().context("the server process")?.id();
    let memory = Memory::start(pid);
    let api = setup(Api {
        client: client()?,
        base,
        token: admin,
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle_kb = memory.now_kb();

    let mut rows = Vec::new();
    let mut memory_rows: Vec<(String, MemoryPhase)> = Vec::new();
    let big_label = format!("1 × {} MiB", options.big_mb);
    let small_label = format!("{} × {} MiB", small_count, options.small_mb);

    // 1. Datastore uploads.
    eprintln!("uploading…");
    let cp_big = cp(&sources.big_dir, &root.join("cp-big"))?;
    let (up_big, mem, size) = phase(&memory, api.upload_streamed(big_key, &big_file)).await?;
    ensure!(
        size == sources.big_bytes,
        "stored {size} of {} bytes",
        sources.big_bytes
    );
    rows.push(transfer_row(
        format!("datastore upload, {big_label} (streamed PUT)"),
        sources.big_bytes,
        up_big,
        cp_big,
    ));
    memory_rows.push((format!("datastore upload, {big_label}"), mem));

    let cp_small = cp(&sources.small_dir, &root.join("cp-small"))?;
    let (up_small, mem, stored) = phase(&memory, async {
        let mut stored = 0;
        for name in &sources.small_names {
            let key = format!("small/{name}");
            stored += api
                .upload_whole(&key, &sources.small_dir.join(name))
                .await?;
        }
        Ok(stored)
    })
    .await?;
    ensure!(
        stored == sources.small_bytes,
        "stored {stored} of {} bytes",
        sources.small_bytes
    );
    rows.push(transfer_row(
        format!("datastore upload, {small_label} (sequential PUTs)"),
        sources.small_bytes,
        up_small,
        cp_small,
    ));
    memory_rows.push((format!("datastore upload, {small_label}"), mem));

    // 2. Registration, download, runs.
    eprintln!("registering…");
    let cp_big = cp(&sources.big_dir, &root.join("cp-big"))?;
    let (reg_big, mem, ()) = phase(
        &memory,
        api.register("big", &[big_key], 1, sources.big_bytes),
    )
    .await?;
    rows.push(transfer_row(
        format!("dataset registration (hash + copy to blobs), {big_label}"),
        sources.big_bytes,
        reg_big,
        cp_big,
    ));
    memory_rows.push((format!("dataset registration, {big_label}"), mem));

    let cp_small = cp(&sources.small_dir, &root.join("cp-small"))?;
    let (reg_small, mem, ()) = phase(
        &memory,
        api.register("small", &["small/"], small_count, sources.small_bytes),
    )
    .await?;
    rows.push(transfer_row(
        format!("dataset registration (hash + copy to blobs), {small_label}"),
        sources.small_bytes,
        reg_small,
        cp_small,
    ));
    memory_rows.push((format!("dataset registration, {small_label}"), mem));

    eprintln!("downloading…");
    let cp_big = cp(&sources.big_dir, &root.join("cp-big"))?;
    let downloaded = root.join("downloaded.bin");
    let (down_big, mem, size) = phase(&memory, api.download(big_key, &downloaded)).await?;
    ensure!(
        size == sources.big_bytes,
        "downloaded {size} of {} bytes",
        sources.big_bytes
    );
    std::fs::remove_file(&downloaded)?;
    rows.push(transfer_row(
        format!("datastore download (streamed GET to a file), {big_label}"),
        sources.big_bytes,
        down_big,
        cp_big,
    ));
    memory_rows.push((format!("datastore download, {big_label}"), mem));

    let mut notes = Vec::new();
    match docker {
        Err(why) => notes.push(format!("Runs not measured: {why}.")),
        Ok(()) => {
            eprintln!("running…");
            // Warm-up, untimed: the runs' environment image is built here once.
            let warm = api.submit(&["true"], json!([])).await?;
            api.wait_completed(&warm).await?;
            plain_mount(&sources.big_dir)?;
            for (dataset, label, dir) in [
                ("big", &big_label, &sources.big_dir),
                ("small", &small_label, &sources.small_dir),
            ] {
                let download = timed_run(&api, &memory, dataset, "download").await?;
                let (plain_dl, plain_dl_du) = plain_download(&root, dir)?;
                let mount = timed_run(&api, &memory, dataset, "mount").await?;
                let (plain_mnt, plain_mnt_du) = plain_mount(dir)?;
                rows.push(Row {
                    label: format!("run, `download` input, {label}: submit → Completed"),
                    trainyard: download.cell(),
                    baseline: format!(
                        "docker create + cp + start -a: {:.2} s",
                        plain_dl.as_secs_f64()
                    ),
                    ratio: download.ratio(plain_dl),
                });
                rows.push(Row {
                    label: format!("run, `mount` input, {label}: submit → Completed"),
                    trainyard: mount.cell(),
                    baseline: format!("docker run --rm -v: {:.2} s", plain_mnt.as_secs_f64()),
                    ratio: mount.ratio(plain_mnt),
                });
                memory_rows.push((format!("run, `download` input, {label}"), download.memory));
                memory_rows.push((format!("run, `mount` input, {label}"), mount.memory));
                notes.push(format!(
                    "Runs of {label}: download / mount = {}; `du -s` printed {} (download), {} (mount), \
                     {plain_dl_du:?} / {plain_mnt_du:?} (plain docker). Stages, seconds after submit: \
                     download: {}; mount: {}.",
                    match (&download.outcome, &mount.outcome) {
                        (Ok(_), Ok(_)) => ratio(download.wall, mount.wall),
                        _ => "– (a run did not complete)".to_string(),
                    },
                    du_cell(&download.outcome),
                    du_cell(&mount.outcome),
                    download.stages,
                    mount.stages,
                ));
            }
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let end_kb = memory.now_kb();
    drop(memory);

    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    let mut out = String::new();
    let mut line = |text: String| {
        out.push_str(&text);
        out.push('\n');
    };
    line(format!(
        "## Trainyard data benchmark: {cpus} CPUs ({}), {profile} build\n",
        cpu_model()
    ));
    line(format!(
        "`trainyard serve` as its own process (pid {pid}) with its embedded PostgreSQL, data \
         directory, `cp` copies and sources all under {} (one filesystem). Every step starts \
         after `sync`; page caches cannot be dropped, so reads come from memory on both sides. \
         MB = 10^6 bytes; ratio = Trainyard's time / the baseline's (above 1: slower). \
         Load average (1, 5, 15 min) at the start: {load_start}; at the end: {}.\n",
        root.display(),
        load_average()
    ));
    line("| measurement | Trainyard | cp baseline | ratio |".to_string());
    line("|---|---:|---:|---:|".to_string());
    for row in &rows {
        line(format!(
            "| {} | {} | {} | {} |",
            row.label, row.trainyard, row.baseline, row.ratio
        ));
    }
    line(String::new());
    line(format!(
        "Server RSS at idle (after start and setup): {} MiB; at the end: {} MiB.\n",
        mib(idle_kb),
        mib(end_kb)
    ));
    line(
        "| phase | peak RSS MiB (50 ms samples) | peak RSS MiB (VmHWM) | RSS after MiB | server CPU s |"
            .to_string(),
    );
    line("|---|---:|---:|---:|---:|".to_string());
    for (label, mem) in &memory_rows {
        let hwm = if mem.hwm_reset {
            mib(mem.hwm)
        } else {
            format!("{} (since start)", mib(mem.hwm))
        };
        line(format!(
            "| {label} | {} | {hwm} | {} | {:.1} |",
            mib(mem.sampled_peak),
            mib(mem.after),
            mem.cpu.as_secs_f64()
        ));
    }
    line(String::new());
    for note in notes {
        line(format!("{note}\n"));
    }
    line(
        "RSS and CPU are the trainyard process alone (all its threads): its PostgreSQL and the Docker engine are other processes."
            .to_string(),
    );
    Ok(out)
}
