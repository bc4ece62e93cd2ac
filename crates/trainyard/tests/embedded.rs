//! The server binary on its embedded PostgreSQL: first start, restart with the
//! data kept, a second server refused on the same data directory, and a clear
//! message when PostgreSQL is not installed.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn server(data_dir: &Path, port: u16) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_trainyard"));
    command
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("DATABASE_URL")
        .env_remove("TRAINYARD_ADMIN_TOKEN")
        .env_remove("TRAINYARD_CONFIG");
    command
}

fn start(data_dir: &Path, port: u16) -> Child {
    server(data_dir, port)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting trainyard")
}

async fn wait_ready(port: u16, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Ok(response) = reqwest::get(format!("http://127.0.0.1:{port}/readyz")).await {
            if response.status() == 200 {
                return;
            }
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the server exited early with {status}");
        }
        assert!(Instant::now() < deadline, "the server did not become ready");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn stop(child: Child) -> Output {
    let pid = child.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    child.wait_with_output().unwrap()
}

fn wait_exit(child: Child, limit: Duration) -> Output {
    let deadline = Instant::now() + limit;
    let mut child = child;
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the process did not exit");
        std::thread::sleep(Duration::from_millis(100));
    }
    child.wait_with_output().unwrap()
}

#[tokio::test]
async fn the_embedded_database_survives_a_restart_and_is_not_shared() {
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut first = start(data.path(), port);
    wait_ready(port, &mut first).await;

    let token = std::fs::read_to_string(data.path().join("admin-token")).unwrap();
    let token = token.trim().to_string();
    let client = reqwest::Client::new();
    let created = client
        .post(format!("http://127.0.0.1:{port}/api/v1/workspaces"))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "name": "persisted" }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);

    // A second server on the same data directory refuses cleanly.
    let second = start(data.path(), free_port());
    let refused = wait_exit(second, Duration::from_secs(60));
    assert!(!refused.status.success());
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(
        message.contains("in use by another trainyard server"),
        "{message}"
    );
    // ...and the first one still serves.
    let still = reqwest::get(format!("http://127.0.0.1:{port}/readyz"))
        .await
        .unwrap();
    assert_eq!(still.status(), 200);

    let stopped = stop(first);
    assert!(
        stopped.status.success(),
        "{}",
        String::from_utf8_lossy(&stopped.stderr)
    );
    let first_stdout = String::from_utf8_lossy(&stopped.stdout);
    assert!(
        first_stdout.contains(&token),
        "the first start prints the admin token once"
    );
    assert!(
        !data.path().join("postgres/postmaster.pid").exists(),
        "PostgreSQL is stopped with the server"
    );

    let port = free_port();
    let mut again = start(data.path(), port);
    wait_ready(port, &mut again).await;
    let found = client
        .get(format!(
            "http://127.0.0.1:{port}/api/v1/workspaces/persisted"
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(found.status(), 200);
    let output = stop(again);
    assert!(output.status.success());
    assert!(
        !String::from_utf8_lossy(&output.stdout).contains("tyd_"),
        "the admin token is printed only at first start"
    );
}

#[test]
fn missing_postgres_binaries_give_one_clear_message() {
    let data = tempfile::tempdir().unwrap();
    let empty = tempfile::tempdir().unwrap();
    let output = server(data.path(), free_port())
        .arg("--postgres-bin-dir")
        .arg(empty.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(message.contains("apt-get install postgresql"), "{message}");
    assert!(message.contains("DATABASE_URL"), "{message}");
}
