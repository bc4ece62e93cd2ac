//! Shared helpers for the end-to-end tests: a real server on port 0 over a
//! fresh PostgreSQL database per test.
//!
//! The database server is the one named by `TRAINYARD_TEST_DATABASE_URL` (a
//! URL whose user may create databases), or else a private cluster that the
//! helpers start (and reuse) in `$TRAINYARD_TEST_POSTGRES_DIR` (default
//! `/tmp/trainyard-test-postgres`) with the embedded-PostgreSQL code the
//! server uses.

use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{json, Value};
use sqlx::Connection;
use std::path::PathBuf;
use tokio::sync::{oneshot, watch, OnceCell};
use trainyard_api::{AppState, Limits};
use trainyard_db::embedded::EmbeddedPostgres;
use trainyard_db::Db;
use trainyard_docker::{Engine, Executor, ExecutorConfig};
use trainyard_scheduler::SchedulerConfig;
use trainyard_storage::Storage;

/// The server URL under which test databases are created, with `{db}` where
/// the database name goes.
static SERVER: OnceCell<String> = OnceCell::const_new();

async fn database_server() -> &'static str {
    SERVER
        .get_or_init(|| async {
            if let Ok(url) = std::env::var("TRAINYARD_TEST_DATABASE_URL") {
                return url;
            }
            // Under the system's temp directory rather than target/: when the
            // tests run as root, the cluster runs as the postgres account,
            // which may not be able to reach the checkout.
            let dir = std::env::var_os("TRAINYARD_TEST_POSTGRES_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| std::env::temp_dir().join("trainyard-test-postgres"));
            let cluster = EmbeddedPostgres::start(&dir, None)
                .await
                .unwrap_or_else(|e| {
                    panic!("starting the test PostgreSQL in {}: {e}", dir.display())
                });
            let url = cluster.url();
            // The cluster outlives this process on purpose: the next test
            // binary adopts it instead of starting its own.
            std::mem::forget(cluster);
            url
        })
        .await
}

/// Test databases older than this are dropped by the next test process:
/// no test runs that long, and the cluster outlives every run.
const STALE_TEST_DATABASE: std::time::Duration = std::time::Duration::from_secs(6 * 3600);

static SWEPT: OnceCell<()> = OnceCell::const_new();

/// Drops the test databases earlier runs left behind (their names carry the
/// time they were made), so the shared cluster does not grow without end.
/// One still in use is left alone.
async fn drop_stale_test_databases(admin: &mut sqlx::PgConnection) {
    let names: Vec<String> =
        sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 'test\\_%'")
            .fetch_all(&mut *admin)
            .await
            .unwrap_or_default();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    for name in names {
        let made = name
            .split('_')
            .nth(1)
            .and_then(|secs| secs.parse::<u64>().ok())
            .map(std::time::Duration::from_secs);
        // Names without a time come from before times were recorded.
        if made.is_none_or(|made| now.saturating_sub(made) > STALE_TEST_DATABASE) {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
                .execute(&mut *admin)
                .await;
        }
    }
}

/// Creates an empty database with the schema applied and returns its URL.
pub async fn fresh_database() -> String {
    let server = database_server().await;
    let made = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let name = format!("test_{made}_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(server)
        .await
        .expect("connecting to the test PostgreSQL");
    SWEPT
        .get_or_init(|| drop_stale_test_databases(&mut admin))
        .await;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .expect("creating a test database");
    let url = with_database(server, &name);
    let db = Db::connect(&url, 2)
        .await
        .expect("connecting to the test database");
    db.migrate().await.expect("migrating the test database");
    db.close().await;
    url
}

fn with_database(server: &str, name: &str) -> String {
    let mut url = reqwest::Url::parse(server).expect("test database URL");
    url.set_path(name);
    url.to_string()
}

/// A running server and what a test needs to talk to it.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The server's store, for arranging and checking state directly.
    pub db: Db,
    /// A server administrator token.
    pub admin: String,
    /// The executor's Docker engine, when the app runs one.
    pub engine: Option<Engine>,
    /// The replica name the executor runs under.
    pub owner: String,
    client: reqwest::Client,
    _shutdown: oneshot::Sender<()>,
    stop_scheduler: Option<watch::Sender<bool>>,
    /// What starting the scheduler again needs.
    scheduler_parts: Option<SchedulerParts>,
    _files: tempfile::TempDir,
}

/// What a test app's scheduler and executor are made of.
#[derive(Clone)]
struct SchedulerParts {
    storage: Storage,
    engine: Engine,
    options: Options,
    mounts_dir: std::path::PathBuf,
}

/// How a test server is set up.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Request limits.
    pub limits: Limits,
    /// Run the scheduler and Docker executor.
    pub executor: bool,
    /// CA certificates image builds trust.
    pub extra_ca: Vec<u8>,
    /// Seconds between SIGTERM and SIGKILL.
    pub stop_grace_seconds: Option<i64>,
    /// Keep containers after their run ended (to inspect them).
    pub keep_containers: bool,
    /// The run containers' network (`host` when absent).
    pub container_network: Option<String>,
}

/// A Docker engine for the tests, or `None` (with a visible message) when
/// none answers. With `TRAINYARD_REQUIRE_DOCKER=1` (as in CI) a missing
/// engine fails the test instead.
pub async fn docker_engine() -> Option<Engine> {
    let engine = Engine::connect_local().ok();
    let answers = match &engine {
        Some(engine) => engine.ping().await,
        None => false,
    };
    if answers {
        return engine;
    }
    if std::env::var("TRAINYARD_REQUIRE_DOCKER").is_ok_and(|v| v == "1") {
        panic!("no Docker engine answers, and TRAINYARD_REQUIRE_DOCKER=1");
    }
    eprintln!("SKIPPED: no Docker engine answers (start one, e.g. with deploy/debian-setup.sh)");
    None
}

/// Whether the app's engine has `image`; when it does not, the test is
/// skipped with a visible message naming `how` to build it, or fails with
/// `TRAINYARD_REQUIRE_DOCKER=1` (as in CI).
pub async fn require_image(app: &TestApp, image: &str, how: &str) -> bool {
    let engine = app.engine.as_ref().expect("an app with an engine");
    if engine.has_image(image).await.unwrap_or(false) {
        return true;
    }
    if std::env::var("TRAINYARD_REQUIRE_DOCKER").is_ok_and(|v| v == "1") {
        panic!("the image {image} is missing, and TRAINYARD_REQUIRE_DOCKER=1; build it with {how}");
    }
    eprintln!("SKIPPED: the image {image} is missing; build it with {how}");
    false
}

/// Starts the scheduler and executor of a test app; they stop when the
/// returned sender is dropped or sent `true`.
fn spawn_scheduler(
    db: &Db,
    base: &str,
    owner: &str,
    parts: &SchedulerParts,
) -> watch::Sender<bool> {
    let executor = Executor::new(
        db.clone(),
        parts.storage.clone(),
        parts.engine.clone(),
        ExecutorConfig {
            owner: owner.to_string(),
            api_url: base.to_string(),
            network_mode: Some(
                parts
                    .options
                    .container_network
                    .clone()
                    .unwrap_or_else(|| "host".to_string()),
            ),
            extra_ca: parts.options.extra_ca.clone(),
            stop_grace_seconds: parts.options.stop_grace_seconds.unwrap_or(2),
            keep_containers: parts.options.keep_containers,
            logs_poll: std::time::Duration::from_millis(500),
            mounts_dir: parts.mounts_dir.clone(),
        },
    );
    let config = SchedulerConfig {
        owner: owner.to_string(),
        lease: std::time::Duration::from_secs(60),
        max_concurrent_runs: 4,
        poll_interval: std::time::Duration::from_secs(5),
        placement: trainyard_scheduler::placement::PlacementConfig::default(),
    };
    let (stop, stopped) = watch::channel(false);
    tokio::spawn(trainyard_scheduler::run(
        db.clone(),
        executor,
        config,
        stopped,
    ));
    stop
}

impl TestApp {
    /// Stops the scheduler and executor, as when the server stops; their
    /// runs keep their containers.
    pub fn stop_scheduler(&mut self) {
        if let Some(stop) = self.stop_scheduler.take() {
            let _ = stop.send(true);
        }
    }

    /// Starts the scheduler and executor again under the same replica name,
    /// as a restarted server does: it re-adopts the runs it held.
    pub fn start_scheduler(&mut self) {
        self.stop_scheduler();
        if let Some(parts) = &self.scheduler_parts {
            self.stop_scheduler = Some(spawn_scheduler(&self.db, &self.base, &self.owner, parts));
        }
    }

    /// Starts a server with default limits on a fresh database.
    pub async fn spawn() -> TestApp {
        TestApp::spawn_with(Limits::default()).await
    }

    /// Starts a server with the given limits on a fresh database.
    pub async fn spawn_with(limits: Limits) -> TestApp {
        TestApp::start(
            Options {
                limits,
                ..Options::default()
            },
            None,
        )
        .await
    }

    /// Starts a server that also executes runs on the local Docker engine,
    /// or returns `None` (the test is skipped) when no engine answers.
    pub async fn spawn_executing(options: Options) -> Option<TestApp> {
        let engine = docker_engine().await?;
        Some(
            TestApp::start(
                Options {
                    executor: true,
                    ..options
                },
                Some(engine),
            )
            .await,
        )
    }

    async fn start(options: Options, engine: Option<Engine>) -> TestApp {
        let limits = options.limits;
        let files = tempfile::tempdir().expect("a temporary directory");
        let storage = Storage::local(files.path()).expect("a local object store");
        let url = fresh_database().await;
        let db = Db::connect(&url, 5).await.expect("connecting");
        let admin = trainyard_api::auth::create_admin_token(&db)
            .await
            .expect("creating the admin token");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = oneshot::channel::<()>();
        let owner = format!("test-{}", uuid::Uuid::new_v4().simple());
        let scheduler_parts = engine.clone().map(|engine| SchedulerParts {
            storage: storage.clone(),
            engine,
            options: options.clone(),
            mounts_dir: files.path().join("mounts"),
        });
        let stop_scheduler = scheduler_parts
            .as_ref()
            .map(|parts| spawn_scheduler(&db, &base, &owner, parts));
        let state = AppState {
            db: db.clone(),
            limits,
            storage,
            extra_ca: std::sync::Arc::new(options.extra_ca),
            run_searches: Default::default(),
        };
        tokio::spawn(async move {
            trainyard_api::serve(listener, state, async {
                let _ = rx.await;
            })
            .await
            .expect("serving");
        });
        TestApp {
            base,
            db,
            admin,
            engine,
            owner,
            client: reqwest::Client::new(),
            _shutdown: tx,
            stop_scheduler,
            scheduler_parts,
            _files: files,
        }
    }

    /// A request to `path` (under the server root) with `token` as bearer.
    pub fn request(&self, method: Method, path: &str, token: &str) -> RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token)
    }

    /// Sends a request and returns its status and JSON body (`Null` if none).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.request(method, path, token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("sending the request");
        let status = response.status();
        let text = response.text().await.expect("reading the body");
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, value)
    }

    /// GET as `token`.
    pub async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, token, None).await
    }

    /// POST `body` as `token`.
    pub async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, token, Some(body)).await
    }

    /// Deletes a run's row straight from the database, behind the
    /// server's back (its metrics and their points go with it).
    pub async fn delete_run_row(&self, run_id: &str) {
        sqlx::query("DELETE FROM runs WHERE id = $1")
            .bind(uuid::Uuid::parse_str(run_id).expect("run id"))
            .execute(self.db.pool())
            .await
            .expect("deleting a run row");
    }

    /// Rows holding scalar points in the whole database: (`metric_points`
    /// rows of one point, `metric_chunks` rows of several).
    pub async fn point_rows(&self) -> (i64, i64) {
        sqlx::query_as(
            "SELECT (SELECT count(*) FROM metric_points), (SELECT count(*) FROM metric_chunks)",
        )
        .fetch_one(self.db.pool())
        .await
        .expect("counting point rows")
    }

    /// Creates a workspace as the server administrator.
    pub async fn workspace(&self, name: &str) -> Value {
        let (status, body) = self
            .post("/api/v1/workspaces", &self.admin, json!({ "name": name }))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    /// The id of a workspace, by name.
    pub async fn workspace_id(&self, name: &str) -> String {
        let (_, body) = self
            .get(&format!("/api/v1/workspaces/{name}"), &self.admin)
            .await;
        body["id"].as_str().expect("workspace id").to_string()
    }

    /// Creates a token with `role` in `workspace` and returns its secret.
    pub async fn token(&self, workspace: &str, role: &str) -> String {
        let (status, body) = self
            .post(
                &format!("/api/v1/workspaces/{workspace}/tokens"),
                &self.admin,
                json!({ "name": format!("{role}-token"), "role": role }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["secret"].as_str().expect("secret").to_string()
    }

    /// Creates an experiment in `workspace` as `token`.
    pub async fn experiment(&self, workspace: &str, token: &str, name: &str) -> Value {
        let (status, body) = self
            .post(
                &format!("/api/v1/workspaces/{workspace}/experiments"),
                token,
                json!({ "name": name }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    /// Submits a run to `experiment` as `token`.
    pub async fn run(&self, workspace: &str, token: &str, experiment: &str, extra: Value) -> Value {
        let mut body = json!({ "experiment": experiment });
        if let (Some(target), Some(more)) = (body.as_object_mut(), extra.as_object()) {
            target.extend(more.clone());
        }
        let (status, body) = self
            .post(&format!("/api/v1/workspaces/{workspace}/runs"), token, body)
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }
}

/// Asserts a problem answer: its status, code and (if given) field.
pub fn assert_problem(
    answer: &(StatusCode, Value),
    status: StatusCode,
    code: &str,
    field: Option<&str>,
) {
    let (got, body) = answer;
    assert_eq!(*got, status, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], status.as_u16(), "{body}");
    assert!(
        body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{body}"
    );
    if let Some(field) = field {
        assert_eq!(body["field"], field, "{body}");
    }
}

impl TestApp {
    /// Packs `dir` like a client does and uploads it; returns the digest.
    pub async fn upload_snapshot(
        &self,
        workspace: &str,
        token: &str,
        dir: &std::path::Path,
    ) -> String {
        let packed =
            trainyard_storage::pack_dir(dir, 100 * 1024 * 1024).expect("packing the source");
        let bytes = std::fs::read(&packed.path).expect("reading the packed source");
        let response = self
            .request(
                Method::POST,
                &format!("/api/v1/workspaces/{workspace}/snapshots"),
                token,
            )
            .header("content-type", "application/gzip")
            .body(bytes)
            .send()
            .await
            .expect("uploading");
        let status = response.status();
        let body: Value = response.json().await.expect("a JSON answer");
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["digest"].as_str().expect("digest").to_string()
    }

    /// Waits until the run has ended (or `limit` passes) and returns it.
    pub async fn wait_for_end(
        &self,
        workspace: &str,
        token: &str,
        run_id: &str,
        limit: std::time::Duration,
    ) -> Value {
        let deadline = std::time::Instant::now() + limit;
        loop {
            let (_, run) = self
                .get(
                    &format!("/api/v1/workspaces/{workspace}/runs/{run_id}"),
                    token,
                )
                .await;
            if matches!(
                run["status"].as_str(),
                Some("Completed" | "Failed" | "Canceled")
            ) {
                return run;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the run did not end in time: {run}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }

    /// Waits until the run reaches `status`.
    pub async fn wait_for_status(
        &self,
        workspace: &str,
        token: &str,
        run_id: &str,
        status: &str,
        limit: std::time::Duration,
    ) -> Value {
        let deadline = std::time::Instant::now() + limit;
        loop {
            let (_, run) = self
                .get(
                    &format!("/api/v1/workspaces/{workspace}/runs/{run_id}"),
                    token,
                )
                .await;
            if run["status"] == status {
                return run;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the run did not reach {status}: {run}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// Every line of one source of a run's log, paging through it.
    pub async fn log_lines(
        &self,
        workspace: &str,
        token: &str,
        run_id: &str,
        source: &str,
    ) -> Vec<Value> {
        let mut lines = Vec::new();
        let mut from = 0;
        loop {
            let (status, page) = self
                .get(
                    &format!("/api/v1/workspaces/{workspace}/runs/{run_id}/logs?source={source}&from_seq={from}&limit=5000"),
                    token,
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{page}");
            let batch = page["lines"].as_array().expect("lines").clone();
            if batch.is_empty() {
                return lines;
            }
            from = page["next_seq"].as_i64().expect("next_seq");
            lines.extend(batch);
        }
    }
}
