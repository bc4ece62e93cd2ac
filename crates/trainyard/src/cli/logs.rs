//! `trainyard run logs` and `trainyard run wait`.

use clap::Args;
use serde::Deserialize;
use serde_json::Value;
use std::time::Duration;
use tokio::sync::watch;
use uuid::Uuid;

use super::client::{Client, ConnectionArgs};
use super::out;
use super::sse::{self, LogLine, Update};

/// Lines asked for per page (the server's most).
const PAGE_LINES: usize = 10_000;

/// Which log to print.
#[derive(Debug, Args)]
pub struct LogsArgs {
    #[command(flatten)]
    connection: ConnectionArgs,
    /// Follow the log live until the run ends.
    #[arg(short, long)]
    follow: bool,
    /// A source to print (stdout, stderr, build, logs/<file>); repeat for
    /// several [default: stdout and stderr].
    #[arg(long, value_name = "S", conflicts_with = "all")]
    source: Vec<String>,
    /// Print every source the run's log has (build output, log files, …).
    #[arg(long)]
    all: bool,
    /// The run's id.
    run_id: Uuid,
}

/// Which run to wait for.
#[derive(Debug, Args)]
pub struct WaitArgs {
    #[command(flatten)]
    connection: ConnectionArgs,
    /// The run's id.
    run_id: Uuid,
}

#[derive(Debug, Deserialize)]
struct LogPage {
    sources: Vec<String>,
    lines: Vec<LogLine>,
    next_seq: i64,
}

/// Prints a line: stdout's as it is, other sources' after `[source] `.
fn print_line(line: &LogLine) -> std::io::Result<()> {
    if line.source == "stdout" {
        out(&line.line)
    } else {
        out(&format!("[{}] {}", line.source, line.line))
    }
}

/// `run logs`: the log so far, sources merged by time, or followed live.
pub async fn logs(args: LogsArgs) -> anyhow::Result<i32> {
    let client = args.connection.connect()?;
    let sources = if args.source.is_empty() && !args.all {
        let run: Value = client.get(&["runs", &args.run_id.to_string()], &[]).await?;
        output_sources(&run)
    } else {
        args.source.clone()
    };
    if args.follow {
        // An empty list follows every source, which is what --all asks for.
        sse::follow(&client, args.run_id, &sources, |update| {
            if let Update::Line(line) = update {
                print_line(&line)?;
            }
            Ok(())
        })
        .await?;
        return Ok(0);
    }
    let sources = if args.all {
        read_page(&client, args.run_id, "stdout", 0, 1)
            .await?
            .sources
    } else {
        sources
    };
    let mut lines = Vec::new();
    for source in &sources {
        let mut from = 0;
        loop {
            let page = read_page(&client, args.run_id, source, from, PAGE_LINES).await?;
            let full = page.lines.len() >= PAGE_LINES;
            lines.extend(page.lines);
            if !full {
                break;
            }
            from = page.next_seq;
        }
    }
    lines.sort_by(|a, b| {
        a.at.cmp(&b.at)
            .then_with(|| a.source.cmp(&b.source))
            .then(a.seq.cmp(&b.seq))
    });
    for line in &lines {
        print_line(line)?;
    }
    Ok(0)
}

/// The sources of a run's own output: `stdout` and `stderr`, or each rank's
/// (`stdout/rank-N`, `stderr/rank-N`) for a distributed run.
fn output_sources(run: &Value) -> Vec<String> {
    let spec = &run["spec"];
    let count = |field: &str| spec[field].as_u64().unwrap_or(1);
    let ranks = count("node_count") * count("process_count_per_node");
    if ranks <= 1 && spec["distribution"].is_null() {
        return vec!["stdout".to_string(), "stderr".to_string()];
    }
    (0..ranks)
        .flat_map(|rank| [format!("stdout/rank-{rank}"), format!("stderr/rank-{rank}")])
        .collect()
}

async fn read_page(
    client: &Client,
    run_id: Uuid,
    source: &str,
    from_seq: i64,
    limit: usize,
) -> anyhow::Result<LogPage> {
    let query = [
        ("source", source.to_string()),
        ("from_seq", from_seq.to_string()),
        ("limit", limit.to_string()),
    ];
    client
        .get(&["runs", &run_id.to_string(), "logs"], &query)
        .await
}

/// `run wait`.
pub async fn wait_command(args: WaitArgs) -> anyhow::Result<i32> {
    let client = args.connection.connect()?;
    wait(&client, args.run_id).await
}

/// How often a Queued run is asked for why it waits.
const QUEUE_POLL: Duration = Duration::from_secs(2);

/// Follows a run to its end: log lines (every source) on standard output,
/// stage changes and the outcome on standard error; while the run is Queued,
/// why it waits and, once placed, on which node. Returns 0 for Completed, 1
/// for Failed, 2 for Canceled.
pub async fn wait(client: &Client, run_id: Uuid) -> anyhow::Result<i32> {
    let (status_tx, status_rx) = watch::channel(None::<String>);
    let follow = sse::follow(client, run_id, &[], |update| {
        match update {
            Update::Line(line) => print_line(&line)?,
            Update::Status(status) => {
                eprintln!("==> {status}");
                status_tx.send_replace(Some(status));
            }
        }
        Ok(())
    });
    let queue = watch_queue(client, run_id, status_rx);
    tokio::pin!(follow, queue);
    let mut watching = true;
    let ended = loop {
        tokio::select! {
            ended = &mut follow => break ended?,
            () = &mut queue, if watching => watching = false,
        }
    };
    let run: Value = client.get(&["runs", &run_id.to_string()], &[]).await?;
    let status = run["status"].as_str().unwrap_or(&ended).to_string();
    let mut summary = format!("run {run_id} {status}");
    if let Some(code) = run["exit_code"].as_i64() {
        summary.push_str(&format!(" (exit code {code})"));
    }
    eprintln!("{summary}");
    if let Some(error) = run["error"].as_str() {
        eprintln!("error: {error}");
    }
    Ok(exit_code(&status))
}

/// While the log stream says the run is Queued, reads the run every
/// [`QUEUE_POLL`] and prints why it waits whenever that changes; once it
/// leaves the queue, reads it once more and prints where it was placed.
/// A run never seen Queued is not read. Errors are not fatal here (the log
/// stream reports the run's end).
async fn watch_queue(client: &Client, run_id: Uuid, mut status: watch::Receiver<Option<String>>) {
    let id = run_id.to_string();
    let mut seen = QueueWatch::default();
    let mut seen_queued = false;
    loop {
        // A new status (the first comes with the stream's start), or time for another look.
        tokio::select! {
            changed = status.changed() => if changed.is_err() { return },
            () = tokio::time::sleep(QUEUE_POLL) => {}
        }
        let now = status.borrow_and_update().clone();
        match now.as_deref() {
            None => continue,
            Some("Queued") => seen_queued = true,
            Some(_) if !seen_queued => return,
            Some(_) => {} // one more look, for the placement
        }
        let Ok(run) = client.get::<Value>(&["runs", &id], &[]).await else {
            continue;
        };
        let (messages, done) = seen.observe(&run);
        for message in messages {
            eprintln!("{message}");
        }
        if done {
            return;
        }
    }
}

/// What `run wait` has said about a run's place in the queue.
#[derive(Debug, Default)]
struct QueueWatch {
    reason: Option<String>,
}

impl QueueWatch {
    /// The lines a new look at the run calls for, and whether there is
    /// nothing more to watch (it was placed, or left the queue without a
    /// placement: a run without a compute target, or one that ended).
    fn observe(&mut self, run: &Value) -> (Vec<String>, bool) {
        let mut messages = Vec::new();
        let status = run["status"].as_str().unwrap_or_default();
        if status == "Queued" {
            let reason = run["wait_reason"].as_str().filter(|r| !r.is_empty());
            if let Some(reason) = reason {
                if self.reason.as_deref() != Some(reason) {
                    messages.push(format!("==> Queued: {reason}"));
                }
            }
            self.reason = reason.map(str::to_string);
        }
        if let Some(placement) = run.get("placement").filter(|p| p.is_object()) {
            messages.push(placement_line(placement));
            return (messages, true);
        }
        (messages, status != "Queued")
    }
}

/// `==> placed on gpu-1 (GPUs 0,3)`, or for a distributed run
/// `==> placed 2 ranks: 0 on gpu-1 (GPU 0), 1 on gpu-2 (GPU 3)`.
fn placement_line(placement: &Value) -> String {
    if let Some(ranks) = placement["ranks"].as_array().filter(|r| !r.is_empty()) {
        let each: Vec<String> = ranks
            .iter()
            .enumerate()
            .map(|(i, rank)| {
                let on = placement_line(rank);
                format!("{i} on {}", on.trim_start_matches("==> placed on "))
            })
            .collect();
        return format!("==> placed {} ranks: {}", ranks.len(), each.join(", "));
    }
    let node = placement["node"].as_str().unwrap_or("?");
    let gpus: Vec<String> = placement["gpus"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_u64)
        .map(|g| g.to_string())
        .collect();
    match gpus.as_slice() {
        [] => format!("==> placed on {node}"),
        [gpu] => format!("==> placed on {node} (GPU {gpu})"),
        gpus => format!("==> placed on {node} (GPUs {})", gpus.join(",")),
    }
}

/// The exit code `run wait` ends with for a final status.
fn exit_code(status: &str) -> i32 {
    match status {
        "Completed" => 0,
        "Canceled" => 2,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn distributed_runs_print_every_rank_and_where_it_went() {
        let run = json!({"spec": {"node_count": 2, "distribution": {"type": "pytorch"}}});
        assert_eq!(
            output_sources(&run),
            [
                "stdout/rank-0",
                "stderr/rank-0",
                "stdout/rank-1",
                "stderr/rank-1"
            ]
        );
        assert_eq!(output_sources(&json!({"spec": {}})), ["stdout", "stderr"]);
        let placement = json!({"node": "a", "gpus": [0], "ranks": [
            {"node": "a", "gpus": [0]}, {"node": "b", "gpus": [2, 3]}]});
        assert_eq!(
            placement_line(&placement),
            "==> placed 2 ranks: 0 on a (GPU 0), 1 on b (GPUs 2,3)"
        );
    }

    #[test]
    fn only_completed_runs_exit_zero() {
        assert_eq!(super::exit_code("Completed"), 0);
        assert_eq!(super::exit_code("Failed"), 1);
        assert_eq!(super::exit_code("Canceled"), 2);
    }

    #[test]
    fn wait_reasons_are_said_when_they_change_then_the_placement() {
        let mut watch = QueueWatch::default();
        let queued =
            |reason: Value| json!({"status": "Queued", "wait_reason": reason, "placement": null});
        assert_eq!(watch.observe(&queued(Value::Null)), (vec![], false));
        let busy = json!("needs 2 GPUs; the largest free on gpucluster is 1");
        assert_eq!(
            watch.observe(&queued(busy.clone())),
            (
                vec!["==> Queued: needs 2 GPUs; the largest free on gpucluster is 1".to_string()],
                false
            )
        );
        assert_eq!(watch.observe(&queued(busy.clone())), (vec![], false));
        assert_eq!(
            watch
                .observe(&queued(json!("gpucluster has no ready node")))
                .0,
            ["==> Queued: gpucluster has no ready node"]
        );
        // Back to an earlier reason: said again.
        assert_eq!(watch.observe(&queued(busy)).0.len(), 1);
        let placed = json!({"status": "Preparing", "wait_reason": null, "placement": {
            "node": "gpu-1", "compute_target": "gpucluster", "gpus": [0, 3],
            "cpus": 2.0, "memory_mb": 4096}});
        assert_eq!(
            watch.observe(&placed),
            (vec!["==> placed on gpu-1 (GPUs 0,3)".to_string()], true)
        );
    }

    #[test]
    fn runs_without_a_compute_target_end_the_watch_silently() {
        let mut watch = QueueWatch::default();
        // A server without the new fields, or a run on the local executor.
        assert_eq!(watch.observe(&json!({"status": "Queued"})), (vec![], false));
        assert_eq!(watch.observe(&json!({"status": "Running"})), (vec![], true));
        assert_eq!(
            QueueWatch::default().observe(&json!({"status": "Canceled", "placement": null})),
            (vec![], true)
        );
    }

    #[test]
    fn placements_name_the_node_and_its_gpus() {
        let line = |gpus: Value| placement_line(&json!({"node": "cpu-1", "gpus": gpus}));
        assert_eq!(line(json!([])), "==> placed on cpu-1");
        assert_eq!(line(Value::Null), "==> placed on cpu-1");
        assert_eq!(line(json!([5])), "==> placed on cpu-1 (GPU 5)");
        assert_eq!(line(json!([0, 3])), "==> placed on cpu-1 (GPUs 0,3)");
    }
}
