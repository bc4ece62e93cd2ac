//! `trainyard run …`: submit, follow, inspect, cancel and fetch the files of runs.

use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::Value;
use std::collections::HashMap;
use uuid::Uuid;

use super::client::{Client, ConnectionArgs};
use super::{files, logs, out, short_time, submit, table};

/// Commands on runs.
#[derive(Debug, Subcommand)]
pub enum RunCommand {
    /// Uploads a source directory and submits a run; prints the run id.
    ///
    /// The experiment is created if it does not exist. The directory is packed
    /// here (leaving out what .trainyardignore and the defaults leave out, such
    /// as .git/, __pycache__/, outputs/ and logs/), uploaded, and the run is
    /// submitted Queued. Only the run id goes to standard output.
    ///
    /// Example: trainyard run submit --source . --script train.py --gpus 1 -- --lr 0.01
    Submit(Box<submit::SubmitArgs>),
    /// Prints a run's log (stdout and stderr by default); -f follows it live.
    Logs(logs::LogsArgs),
    /// Follows a run until it ends, showing its stages and log.
    ///
    /// Log lines go to standard output, stage changes (`==> Running`) and the
    /// final status to standard error. Exits 0 when the run Completed, 1 when
    /// it Failed, 2 when it was Canceled.
    Wait(logs::WaitArgs),
    /// Cancels a run: a queued run ends at once, an active one is stopped.
    Cancel(RunId),
    /// Prints a run as JSON.
    Show(RunId),
    /// Lists runs, newest first.
    List(ListArgs),
    /// Lists a run's files (outputs/… and logs/…).
    Files(RunId),
    /// Downloads one file of a run, or all of them as a tar.gz.
    Download(files::DownloadArgs),
}

/// A command on one run.
#[derive(Debug, Args)]
pub struct RunId {
    #[command(flatten)]
    connection: ConnectionArgs,
    /// The run's id.
    run_id: Uuid,
}

/// Filters of `run list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    connection: ConnectionArgs,
    /// Only runs of this experiment (name or id).
    #[arg(long)]
    experiment: Option<String>,
    /// Only runs in this status (Queued, Running, Completed, …); repeat or
    /// separate with commas for several.
    #[arg(long, value_delimiter = ',')]
    status: Vec<String>,
    /// Only runs with this tag: KEY=VALUE, or KEY for any value; repeat to require several.
    #[arg(long)]
    tag: Vec<String>,
    /// Most runs to show.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=1000))]
    limit: u32,
}

/// Runs a `trainyard run …` command; returns the exit code.
pub async fn execute(command: RunCommand) -> anyhow::Result<i32> {
    match command {
        RunCommand::Submit(args) => submit::submit(*args).await,
        RunCommand::Logs(args) => logs::logs(args).await,
        RunCommand::Wait(args) => logs::wait_command(args).await,
        RunCommand::Cancel(args) => cancel(args).await,
        RunCommand::Show(args) => show(args).await,
        RunCommand::List(args) => list(args).await,
        RunCommand::Files(args) => {
            let client = args.connection.connect()?;
            files::list(&client, args.run_id).await
        }
        RunCommand::Download(args) => files::download(args).await,
    }
}

async fn show(args: RunId) -> anyhow::Result<i32> {
    let client = args.connection.connect()?;
    let run: Value = client.get(&["runs", &args.run_id.to_string()], &[]).await?;
    out(&serde_json::to_string_pretty(&run)?)?;
    Ok(0)
}

async fn cancel(args: RunId) -> anyhow::Result<i32> {
    let client = args.connection.connect()?;
    let id = args.run_id.to_string();
    let url = client.url(&["runs", &id, "cancel"]);
    let run: Value = client.json(client.request(Method::POST, url)).await?;
    let status = run["status"].as_str().unwrap_or("?");
    if status != "Canceled" && run["cancel_requested"] == Value::Bool(true) {
        // An active run ends Canceled once its container has stopped.
        eprintln!("cancel requested; the run is stopping (now {status})");
    }
    out(status)?;
    Ok(0)
}

async fn list(args: ListArgs) -> anyhow::Result<i32> {
    let client = args.connection.connect()?;
    let mut query = vec![("limit", args.limit.to_string())];
    if let Some(experiment) = &args.experiment {
        query.push(("experiment", experiment.clone()));
    }
    query.extend(args.status.iter().map(|s| ("status", s.clone())));
    query.extend(args.tag.iter().map(|t| ("tag", t.clone())));
    let page: Value = client.get(&["runs"], &query).await?;
    let runs = page["items"].as_array().cloned().unwrap_or_default();
    let names = experiment_names(&client).await?;
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|run| {
            let experiment = run["experiment_id"].as_str().unwrap_or_default();
            vec![
                run["id"].as_str().unwrap_or_default().to_string(),
                run["status"].as_str().unwrap_or_default().to_string(),
                names
                    .get(experiment)
                    .cloned()
                    .unwrap_or_else(|| experiment.to_string()),
                short_time(&run["created_at"]),
                run["display_name"].as_str().unwrap_or_default().to_string(),
            ]
        })
        .collect();
    table(&["ID", "STATUS", "EXPERIMENT", "CREATED", "NAME"], &rows)?;
    if page["next_cursor"].is_string() {
        eprintln!("(showing the newest {}; --limit shows more)", rows.len());
    }
    Ok(0)
}

/// Every experiment's name by id, archived ones included.
async fn experiment_names(client: &Client) -> anyhow::Result<HashMap<String, String>> {
    let mut names = HashMap::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut query = vec![
            ("include_archived", "true".to_string()),
            ("limit", "1000".to_string()),
        ];
        if let Some(cursor) = &cursor {
            query.push(("cursor", cursor.clone()));
        }
        let page: Value = client.get(&["experiments"], &query).await?;
        for experiment in page["items"].as_array().into_iter().flatten() {
            if let (Some(id), Some(name)) = (experiment["id"].as_str(), experiment["name"].as_str())
            {
                names.insert(id.to_string(), name.to_string());
            }
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => return Ok(names),
        }
    }
}
