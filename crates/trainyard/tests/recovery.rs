//! Restart recovery against the real binary, a real PostgreSQL and the local
//! Docker engine: the server is killed with SIGKILL while runs go on; after
//! the restart a run still printing completes with every line exactly once, a
//! run that finished meanwhile is finalized, and a run whose container
//! vanished fails with the reason. Skipped (with a message) when no Docker
//! engine answers, unless TRAINYARD_REQUIRE_DOCKER=1.

use serde_json::{json, Value};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn docker_answers() -> bool {
    let ok = Command::new("docker")
        .arg("info")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        if std::env::var("TRAINYARD_REQUIRE_DOCKER").is_ok_and(|v| v == "1") {
            panic!("no Docker engine answers, and TRAINYARD_REQUIRE_DOCKER=1");
        }
        eprintln!("SKIPPED: no Docker engine answers");
    }
    ok
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start(data_dir: &Path, port: u16, replica: &str) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(data_dir.join("server-test.log"))
        .unwrap();
    Command::new(env!("CARGO_BIN_EXE_trainyard"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--replica-name", replica, "--stop-grace-seconds", "2"])
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

struct Api {
    base: String,
    token: String,
    client: reqwest::Client,
}

impl Api {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self
            .client
            .request(method, format!("{}/api/v1{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let value: Value = response.json().await.unwrap();
        assert!(status.is_success(), "{path}: {value}");
        value
    }

    async fn run(&self, command: &str) -> String {
        let body = json!({
            "experiment": "recovery",
            "command": ["sh", "-c", command],
            "environment": { "spec": { "base_image": "trainyard/busybox:latest" } },
        });
        let run = self
            .call(reqwest::Method::POST, "/workspaces/lab/runs", Some(body))
            .await;
        run["id"].as_str().unwrap().to_string()
    }

    async fn get_run(&self, id: &str) -> Value {
        self.call(
            reqwest::Method::GET,
            &format!("/workspaces/lab/runs/{id}"),
            None,
        )
        .await
    }

    async fn stdout(&self, id: &str) -> Vec<String> {
        let page = self
            .call(
                reqwest::Method::GET,
                &format!("/workspaces/lab/runs/{id}/logs?source=stdout&limit=10000"),
                None,
            )
            .await;
        page["lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["line"].as_str().unwrap().to_string())
            .collect()
    }

    async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(90);
        while !reqwest::get(format!("{}/readyz", self.base))
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            assert!(Instant::now() < deadline, "the server did not become ready");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn wait_for(&self, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let run = self.get_run(id).await;
            if done(&run) {
                return run;
            }
            assert!(Instant::now() < deadline, "waiting for {what}: {run}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

fn ended(run: &Value) -> bool {
    matches!(
        run["status"].as_str(),
        Some("Completed" | "Failed" | "Canceled")
    )
}

#[tokio::test]
async fn runs_survive_a_killed_server() {
    if !docker_answers() {
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let replica = format!("recovery-{}", std::process::id());
    let port = free_port();
    let mut server = start(data.path(), port, &replica);
    let mut api = Api {
        base: format!("http://127.0.0.1:{port}"),
        token: String::new(),
        client: reqwest::Client::new(),
    };
    api.wait_ready().await;
    api.token = std::fs::read_to_string(data.path().join("admin-token"))
        .unwrap()
        .trim()
        .to_string();
    api.call(
        reqwest::Method::POST,
        "/workspaces",
        Some(json!({ "name": "lab" })),
    )
    .await;
    api.call(
        reqwest::Method::PUT,
        "/workspaces/lab/experiments/recovery",
        Some(json!({})),
    )
    .await;

    // Prints 3000 lines over about six seconds.
    let long = api
        .run("i=0; while [ $i -lt 30 ]; do seq $((i*100)) $((i*100+99)) | sed 's/^/line /'; i=$((i+1)); sleep 0.2; done")
        .await;
    let short = api.run("echo quick; sleep 1; echo done").await;
    let doomed = api.run("echo waiting; sleep 300").await;
    for id in [&long, &short, &doomed] {
        api.wait_for(id, "Running", |r| r["status"] == "Running")
            .await;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while api.stdout(&long).await.len() < 200 {
        assert!(Instant::now() < deadline, "the long run printed nothing");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    server.kill().unwrap();
    server.wait().unwrap();
    // While the server is down: the short run finishes, the doomed run's
    // container disappears.
    let doomed_container = format!("trainyard-run-{doomed}");
    let removed = Command::new("docker")
        .args(["rm", "-f", &doomed_container])
        .output()
        .unwrap();
    assert!(
        removed.status.success(),
        "{}",
        String::from_utf8_lossy(&removed.stderr)
    );
    tokio::time::sleep(Duration::from_secs(2)).await;

    let port = free_port();
    api.base = format!("http://127.0.0.1:{port}");
    let mut server = start(data.path(), port, &replica);
    api.wait_ready().await;

    let long_run = api.wait_for(&long, "the long run to end", ended).await;
    assert_eq!(long_run["status"], "Completed", "{long_run}");
    let lines = api.stdout(&long).await;
    let expected: Vec<String> = (0..3000).map(|i| format!("line {i}")).collect();
    assert_eq!(lines.len(), 3000, "every line exactly once");
    assert!(lines == expected, "lines are in order");

    let short_run = api.wait_for(&short, "the short run to end", ended).await;
    assert_eq!(short_run["status"], "Completed", "{short_run}");
    assert_eq!(api.stdout(&short).await, vec!["quick", "done"]);

    let doomed_run = api.wait_for(&doomed, "the doomed run to end", ended).await;
    assert_eq!(doomed_run["status"], "Failed");
    assert!(
        doomed_run["error"]
            .as_str()
            .unwrap()
            .contains("container is gone"),
        "{doomed_run}"
    );

    // A clean stop also stops the embedded PostgreSQL the killed server left.
    let term = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    assert!(server.wait().unwrap().success());
}
