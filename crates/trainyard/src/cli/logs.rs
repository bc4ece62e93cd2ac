//! `trainyard run logs` and `trainyard run wait`.

use clap::Args;
use serde::Deserialize;
use serde_json::Value;
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
        vec!["stdout".to_string(), "stderr".to_string()]
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

/// Follows a run to its end: log lines (every source) on standard output,
/// stage changes and the outcome on standard error. Returns 0 for
/// Completed, 1 for Failed, 2 for Canceled.
pub async fn wait(client: &Client, run_id: Uuid) -> anyhow::Result<i32> {
    let ended = sse::follow(client, run_id, &[], |update| {
        match update {
            Update::Line(line) => print_line(&line)?,
            Update::Status(status) => eprintln!("==> {status}"),
        }
        Ok(())
    })
    .await?;
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
    #[test]
    fn only_completed_runs_exit_zero() {
        assert_eq!(super::exit_code("Completed"), 0);
        assert_eq!(super::exit_code("Failed"), 1);
        assert_eq!(super::exit_code("Canceled"), 2);
    }
}
