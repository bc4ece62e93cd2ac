//! Starting and stopping the server: database (embedded or given), migrations,
//! the bootstrap administrator token, the HTTP listener, graceful shutdown.

use anyhow::Context;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::Duration;
use tokio::net::TcpListener;
use trainyard_api::{AppState, Limits};
use trainyard_db::embedded::EmbeddedPostgres;
use trainyard_db::Db;
use trainyard_docker::{Engine, Executor, ExecutorConfig};
use trainyard_scheduler::SchedulerConfig;
use trainyard_storage::Storage;

use crate::config::Config;

/// Runs the server until SIGTERM or SIGINT.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let (db, embedded) = open_database(&config).await?;
    let result = run(&config, db.clone()).await;
    db.close().await;
    if let Some(cluster) = embedded {
        if let Err(err) = cluster.stop().await {
            tracing::warn!(error = %err, "stopping the embedded PostgreSQL failed");
        }
    }
    result
}

/// Applies the migrations and exits.
pub async fn migrate(config: Config) -> anyhow::Result<()> {
    let (db, embedded) = open_database(&config).await?;
    db.close().await;
    if let Some(cluster) = embedded {
        cluster.stop().await?;
    }
    tracing::info!("database schema is up to date");
    Ok(())
}

async fn run(config: &Config, db: Db) -> anyhow::Result<()> {
    bootstrap_admin_token(config, &db).await?;
    let storage =
        Storage::local(&config.data_dir.join("objects")).context("opening the object store")?;
    let extra_ca = read_extra_ca(config)?;
    let (stop_scheduler, scheduler) = start_scheduler(config, &db, &storage, extra_ca.clone())?;
    tokio::spawn(fold_search_counters(db.clone()));
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listening on {}", config.listen))?;
    let address = listener.local_addr()?;
    tracing::info!(%address, "trainyard is listening");
    let state = AppState {
        db,
        limits: Limits {
            max_request_body_bytes: config.max_request_body_bytes,
            max_snapshot_bytes: config.max_snapshot_bytes,
        },
        storage,
        extra_ca: std::sync::Arc::new(extra_ca),
        run_searches: Default::default(),
    };
    trainyard_api::serve(listener, state, shutdown_signal())
        .await
        .context("serving HTTP")?;
    let _ = stop_scheduler.send(true);
    if let Some(task) = scheduler {
        let _ = task.await;
    }
    tracing::info!("trainyard stopped");
    Ok(())
}

/// How often the search counters of exited database backends are folded.
const SEARCH_COUNTER_FOLD_INTERVAL: Duration = Duration::from_secs(600);

/// Keeps the MLflow search counters at a row per live connection and
/// experiment (see `Db::fold_run_search_generations`).
async fn fold_search_counters(db: Db) {
    let mut every = tokio::time::interval(SEARCH_COUNTER_FOLD_INTERVAL);
    loop {
        every.tick().await;
        if let Err(err) = db.fold_run_search_generations().await {
            tracing::warn!(error = %err, "folding the search counters failed; trying again later");
        }
    }
}

/// How often every registered node's engine is asked whether it answers.
const NODE_CHECK_INTERVAL: Duration = Duration::from_secs(15);

/// Starts the scheduler, the Docker executor and the node monitor, unless
/// this replica only serves the API.
fn start_scheduler(
    config: &Config,
    db: &Db,
    storage: &Storage,
    extra_ca: Vec<u8>,
) -> anyhow::Result<(
    tokio::sync::watch::Sender<bool>,
    Option<tokio::task::JoinHandle<()>>,
)> {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    if !config.executor {
        tracing::info!("executor disabled: this replica only serves the API");
        return Ok((stop, None));
    }
    let engine = Engine::connect_local().context("connecting to the Docker engine")?;
    let executor = Executor::new(
        db.clone(),
        storage.clone(),
        engine,
        ExecutorConfig {
            owner: config.replica_name.clone(),
            api_url: config.container_api_url(),
            network_mode: Some(config.container_network.clone()),
            extra_ca,
            stop_grace_seconds: config.stop_grace_seconds,
            keep_containers: config.keep_containers,
            logs_poll: Duration::from_secs(2),
            mounts_dir: config.data_dir.join("mounts"),
        },
    );
    let scheduler_config = SchedulerConfig {
        owner: config.replica_name.clone(),
        lease: Duration::from_secs(60),
        max_concurrent_runs: config.max_concurrent_runs,
        poll_interval: Duration::from_secs(30),
        placement: trainyard_scheduler::placement::PlacementConfig::default(),
    };
    tokio::spawn(trainyard_docker::nodes::monitor_nodes(
        db.clone(),
        NODE_CHECK_INTERVAL,
        stopped.clone(),
    ));
    let task = tokio::spawn(trainyard_scheduler::run(
        db.clone(),
        executor,
        scheduler_config,
        stopped,
    ));
    Ok((stop, Some(task)))
}

/// The extra CA certificates for image builds, concatenated.
fn read_extra_ca(config: &Config) -> anyhow::Result<Vec<u8>> {
    let mut extra_ca = Vec::new();
    for path in &config.extra_ca_certificates {
        let pem = std::fs::read(path)
            .with_context(|| format!("reading extra CA certificates {}", path.display()))?;
        extra_ca.extend_from_slice(&pem);
        if !pem.ends_with(b"\n") {
            extra_ca.push(b'\n');
        }
    }
    Ok(extra_ca)
}

/// Connects to the configured database, or starts the embedded one, and
/// brings its schema up to date.
async fn open_database(config: &Config) -> anyhow::Result<(Db, Option<EmbeddedPostgres>)> {
    let (url, embedded) = match &config.database_url {
        Some(url) => (url.clone(), None),
        None => {
            let cluster =
                EmbeddedPostgres::start(&config.data_dir, config.postgres_bin_dir.as_deref())
                    .await?;
            tracing::info!(data_dir = %config.data_dir.display(), "embedded PostgreSQL is running");
            (cluster.url(), Some(cluster))
        }
    };
    let db = Db::connect(&url, config.db_max_connections)
        .await
        .context("connecting to PostgreSQL")?;
    db.migrate().await.context("applying migrations")?;
    Ok((db, embedded))
}

/// Makes sure a server administrator can sign in: the configured token is
/// accepted, or at first start a new one is made, printed once, and saved
/// (readable by the owner only) in the data directory.
async fn bootstrap_admin_token(config: &Config, db: &Db) -> anyhow::Result<()> {
    if let Some(secret) = &config.admin_token {
        trainyard_api::auth::ensure_admin_token(db, secret).await?;
        return Ok(());
    }
    if db.has_server_admin_token().await? {
        return Ok(());
    }
    let secret = trainyard_api::auth::create_admin_token(db).await?;
    let path = config.data_dir.join("admin-token");
    save_secret(&path, &secret)?;
    // Printed, not logged: log lines are collected and kept; this goes to the
    // person who started the server, once.
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "\nA server administrator token was created. It is shown once:\n\n    {secret}\n"
    )?;
    writeln!(
        out,
        "It was also saved to {} (mode 0600).\n",
        path.display()
    )?;
    Ok(())
}

fn save_secret(path: &Path, secret: &str) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("saving the admin token to {}", path.display()))?;
    writeln!(file, "{secret}")?;
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("installing the SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("installing the SIGINT handler");
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received, shutting down"),
        _ = int.recv() => tracing::info!("SIGINT received, shutting down"),
    }
}
