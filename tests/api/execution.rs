//! Runs that really run, on the local Docker engine, in the tiny busybox
//! image (`docker/busybox`). Skipped with a message when no engine answers;
//! CI sets TRAINYARD_REQUIRE_DOCKER=1 so that a skip fails instead.

use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use trainyard_tests::{assert_problem, Options, TestApp};

const BUSYBOX: &str = "trainyard/busybox:latest";

async fn setup(options: Options) -> Option<(TestApp, String)> {
    let app = TestApp::spawn_executing(options).await?;
    app.workspace("lab").await;
    let token = app.token("lab", "contributor").await;
    app.experiment("lab", &token, "exec").await;
    Some((app, token))
}

fn busybox_env() -> Value {
    json!({ "spec": { "base_image": BUSYBOX } })
}

fn id(run: &Value) -> String {
    run["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_run_prints_ten_thousand_lines_and_keeps_its_files() {
    let Some((app, token)) = setup(Options::default()).await else {
        return;
    };
    let source = tempfile::tempdir().unwrap();
    let model: Vec<u8> = (0..200_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(source.path().join("model.src"), &model).unwrap();
    std::fs::write(
        source.path().join("train.sh"),
        "i=0\nwhile [ $i -lt 10000 ]; do echo \"out $i\"; echo \"err $i\" >&2; i=$((i+1)); done\n\
         seq 1 500 | sed 's/^/step /' > logs/train.log\n\
         cp model.src outputs/model.bin\n\
         printf 'no newline at the end'\n",
    )
    .unwrap();
    let digest = app.upload_snapshot("lab", &token, source.path()).await;
    let run = app
        .run(
            "lab",
            &token,
            "exec",
            json!({ "snapshot": digest, "script": "train.sh", "environment": busybox_env() }),
        )
        .await;
    let run_id = id(&run);
    let ended = app
        .wait_for_end("lab", &token, &run_id, Duration::from_secs(180))
        .await;
    assert_eq!(ended["status"], "Completed", "{ended}");
    assert_eq!(ended["exit_code"], 0);

    let stdout = app.log_lines("lab", &token, &run_id, "stdout").await;
    let stderr = app.log_lines("lab", &token, &run_id, "stderr").await;
    assert_eq!(
        stdout.len(),
        10_001,
        "every stdout line once, plus the unterminated last one"
    );
    assert_eq!(stderr.len(), 10_000);
    for (i, line) in stdout.iter().take(10_000).enumerate() {
        assert_eq!(line["seq"], i as i64);
        assert_eq!(line["line"], format!("out {i}"));
    }
    assert_eq!(stdout[10_000]["line"], "no newline at the end");
    for (i, line) in stderr.iter().enumerate() {
        assert_eq!(line["line"], format!("err {i}"));
    }
    let train_log = app
        .log_lines("lab", &token, &run_id, "logs/train.log")
        .await;
    assert_eq!(train_log.len(), 500);
    assert_eq!(train_log[499]["line"], "step 500");

    let (_, files) = app
        .get(
            &format!("/api/v1/workspaces/lab/runs/{run_id}/files"),
            &token,
        )
        .await;
    let paths: Vec<&str> = files["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, vec!["logs/train.log", "outputs/model.bin"]);
    let downloaded = app
        .request(
            reqwest::Method::GET,
            &format!("/api/v1/workspaces/lab/runs/{run_id}/files/download?path=outputs/model.bin"),
            &token,
        )
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(
        downloaded[..] == model[..],
        "outputs/model.bin differs from what the script wrote"
    );

    let archive = app
        .request(
            reqwest::Method::GET,
            &format!("/api/v1/workspaces/lab/runs/{run_id}/files/archive"),
            &token,
        )
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let mut names = Vec::new();
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(&archive[..]));
    for entry in tar.entries().unwrap() {
        names.push(entry.unwrap().path().unwrap().display().to_string());
    }
    assert!(
        names.contains(&"outputs/model.bin".to_string()),
        "{names:?}"
    );

    let (_, events) = app
        .get(
            &format!("/api/v1/workspaces/lab/runs/{run_id}/events"),
            &token,
        )
        .await;
    let path: Vec<&str> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["to"].as_str().unwrap())
        .collect();
    assert_eq!(
        path,
        vec![
            "Queued",
            "Preparing",
            "Starting",
            "Running",
            "Finalizing",
            "Completed"
        ]
    );
    let engine = app.engine.as_ref().unwrap();
    assert!(
        engine.run_containers(&app.owner).await.unwrap().is_empty(),
        "the container is removed"
    );
}

#[tokio::test]
async fn a_failing_process_fails_the_run_with_its_exit_code() {
    let Some((app, token)) = setup(Options::default()).await else {
        return;
    };
    let run = app
        .run("lab", &token, "exec", json!({ "command": ["sh", "-c", "echo about to fail; exit 3"], "environment": busybox_env() }))
        .await;
    let ended = app
        .wait_for_end("lab", &token, &id(&run), Duration::from_secs(120))
        .await;
    assert_eq!(ended["status"], "Failed");
    assert_eq!(ended["exit_code"], 3);
    assert!(
        ended["error"]
            .as_str()
            .unwrap()
            .contains("exited with code 3"),
        "{ended}"
    );
    let stdout = app.log_lines("lab", &token, &id(&run), "stdout").await;
    assert_eq!(stdout[0]["line"], "about to fail");
}

#[tokio::test]
async fn an_unchanged_environment_is_built_once() {
    let Some((app, token)) = setup(Options::default()).await else {
        return;
    };
    let marker = uuid::Uuid::new_v4().simple().to_string();
    let environment =
        json!({ "spec": { "base_image": BUSYBOX, "environment_variables": { "MARKER": marker } } });
    let (status, registered) = app
        .post(
            "/api/v1/workspaces/lab/environments",
            &token,
            json!({ "name": "tiny", "spec": environment["spec"] }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{registered}");
    assert_eq!(registered["version"], 1);
    assert_eq!(registered["build_state"], "not_built");
    let image = registered["image"].as_str().unwrap().to_string();
    let engine = app.engine.clone().unwrap();
    assert!(engine.image_identity(&image).await.unwrap().is_none());

    let submit =
        json!({ "command": ["sh", "-c", "echo $MARKER"], "environment": { "name": "tiny" } });
    let first = app.run("lab", &token, "exec", submit.clone()).await;
    let first = app
        .wait_for_end("lab", &token, &id(&first), Duration::from_secs(120))
        .await;
    assert_eq!(first["status"], "Completed", "{first}");
    assert_eq!(
        app.log_lines("lab", &token, &id(&first), "stdout").await[0]["line"],
        marker.as_str()
    );
    assert!(
        !app.log_lines("lab", &token, &id(&first), "build")
            .await
            .is_empty(),
        "the build log is in the run's history"
    );
    let built = engine
        .image_identity(&image)
        .await
        .unwrap()
        .expect("the image exists after the first run");
    let (_, env) = app
        .get("/api/v1/workspaces/lab/environments/tiny", &token)
        .await;
    assert_eq!(env["build_state"], "ready");
    // The environment's build log is the build source of the run that built it.
    let (status, build_log) = app
        .get(
            "/api/v1/workspaces/lab/environments/tiny/build-log?version=1",
            &token,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{build_log}");
    assert_eq!(build_log["run_id"], first["id"], "{build_log}");
    assert_eq!(build_log["build_state"], "ready");
    let run_build: Vec<Value> = app
        .log_lines("lab", &token, &id(&first), "build")
        .await
        .iter()
        .map(|l| l["line"].clone())
        .collect();
    let env_build: Vec<Value> = build_log["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["line"].clone())
        .collect();
    assert_eq!(env_build, run_build);
    // Another workspace with the same spec shares the image, not the log.
    app.workspace("other").await;
    let other = app.token("other", "contributor").await;
    let (status, _) = app
        .post(
            "/api/v1/workspaces/other/environments",
            &other,
            json!({ "name": "tiny", "spec": environment["spec"] }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, elsewhere) = app
        .get(
            "/api/v1/workspaces/other/environments/tiny/build-log",
            &other,
        )
        .await;
    assert_eq!(elsewhere["build_state"], "ready", "{elsewhere}");
    assert_eq!(elsewhere["run_id"], Value::Null, "{elsewhere}");
    assert_eq!(elsewhere["lines"], json!([]), "{elsewhere}");

    let second = app.run("lab", &token, "exec", submit).await;
    let second = app
        .wait_for_end("lab", &token, &id(&second), Duration::from_secs(120))
        .await;
    assert_eq!(second["status"], "Completed");
    let after = engine.image_identity(&image).await.unwrap().unwrap();
    assert_eq!(
        after, built,
        "the engine holds the very same image: no rebuild"
    );
    assert!(app
        .log_lines("lab", &token, &id(&second), "build")
        .await
        .is_empty());

    // A changed spec is a new version with a new image.
    let (_, v2) = app
        .post(
            "/api/v1/workspaces/lab/environments",
            &token,
            json!({ "name": "tiny", "spec": { "base_image": BUSYBOX, "environment_variables": { "MARKER": "other" } } }),
        )
        .await;
    assert_eq!(v2["version"], 2);
    assert_ne!(v2["image"], image.as_str());
}

#[tokio::test]
async fn a_broken_build_fails_the_run_in_preparing_with_the_build_error() {
    let Some((app, token)) = setup(Options::default()).await else {
        return;
    };
    let environment = json!({ "spec": { "dockerfile": format!("FROM {BUSYBOX}\nRUN echo building && exit 7\n") } });
    let run = app
        .run(
            "lab",
            &token,
            "exec",
            json!({ "command": ["true"], "environment": environment }),
        )
        .await;
    let ended = app
        .wait_for_end("lab", &token, &id(&run), Duration::from_secs(120))
        .await;
    assert_eq!(ended["status"], "Failed");
    let error = ended["error"].as_str().unwrap();
    assert!(error.contains("image build failed"), "{error}");
    assert!(
        error.contains("building"),
        "the error carries the build's last lines: {error}"
    );
    let (_, events) = app
        .get(
            &format!("/api/v1/workspaces/lab/runs/{}/events", id(&run)),
            &token,
        )
        .await;
    let path: Vec<&str> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["to"].as_str().unwrap())
        .collect();
    assert_eq!(path, vec!["Queued", "Preparing", "Failed"]);
    let build = app.log_lines("lab", &token, &id(&run), "build").await;
    assert!(build.iter().any(|l| l["line"] == "building"), "{build:?}");
}

#[tokio::test]
async fn canceling_a_sleeping_run_stops_it_within_the_grace_period() {
    let Some((app, token)) = setup(Options {
        stop_grace_seconds: Some(2),
        ..Options::default()
    })
    .await
    else {
        return;
    };
    let run = app
        .run("lab", &token, "exec", json!({ "command": ["sh", "-c", "echo started; sleep 300"], "environment": busybox_env() }))
        .await;
    let run_id = id(&run);
    app.wait_for_status("lab", &token, &run_id, "Running", Duration::from_secs(120))
        .await;
    let asked = Instant::now();
    let (status, answer) = app
        .post(
            &format!("/api/v1/workspaces/lab/runs/{run_id}/cancel"),
            &token,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer["cancel_requested"], true);
    let ended = app
        .wait_for_end("lab", &token, &run_id, Duration::from_secs(30))
        .await;
    assert_eq!(ended["status"], "Canceled");
    assert!(
        asked.elapsed() < Duration::from_secs(15),
        "took {:?}",
        asked.elapsed()
    );
    assert_eq!(
        app.log_lines("lab", &token, &run_id, "stdout").await[0]["line"],
        "started"
    );
}

#[tokio::test]
async fn a_run_over_its_time_limit_is_stopped_and_fails() {
    let Some((app, token)) = setup(Options::default()).await else {
        return;
    };
    let run = app
        .run("lab", &token, "exec", json!({ "command": ["sleep", "300"], "environment": busybox_env(), "time_limit_seconds": 2 }))
        .await;
    let ended = app
        .wait_for_end("lab", &token, &id(&run), Duration::from_secs(60))
        .await;
    assert_eq!(ended["status"], "Failed");
    assert!(
        ended["error"]
            .as_str()
            .unwrap()
            .contains("time limit of 2 s"),
        "{ended}"
    );
}

#[tokio::test]
async fn snapshots_are_stored_once_and_limited() {
    let Some((app, token)) = setup(Options {
        limits: trainyard_api::Limits {
            max_snapshot_bytes: 64 * 1024,
            ..Default::default()
        },
        ..Options::default()
    })
    .await
    else {
        return;
    };
    let source = tempfile::tempdir().unwrap();
    std::fs::write(source.path().join("train.py"), "print('hi')\n").unwrap();
    std::fs::create_dir(source.path().join(".git")).unwrap();
    std::fs::write(source.path().join(".git/big"), vec![1u8; 200 * 1024]).unwrap();
    let first = app.upload_snapshot("lab", &token, source.path()).await;
    let again = app.upload_snapshot("lab", &token, source.path()).await;
    assert_eq!(first, again);

    std::fs::write(source.path().join("data.bin"), vec![7u8; 100 * 1024]).unwrap();
    let packed = trainyard_storage::pack_dir(source.path(), u64::MAX).unwrap();
    let response = app
        .request(
            reqwest::Method::POST,
            "/api/v1/workspaces/lab/snapshots",
            &token,
        )
        .header("content-type", "application/gzip")
        .body(std::fs::read(&packed.path).unwrap())
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_problem(
        &(status, body.clone()),
        StatusCode::PAYLOAD_TOO_LARGE,
        "snapshot_too_large",
        None,
    );
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains("65536") && detail.contains(".trainyardignore"),
        "{detail}"
    );

    let unknown = app
        .post(
            "/api/v1/workspaces/lab/runs",
            &token,
            json!({ "experiment": "exec", "snapshot": "0".repeat(64), "script": "train.py" }),
        )
        .await;
    assert_problem(
        &unknown,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("snapshot"),
    );
}

/// The host's CA bundle: this machine's network intercepts TLS, so pip inside
/// a build reaches PyPI only when the build trusts it.
fn host_ca_bundle() -> Vec<u8> {
    std::fs::read("/etc/ssl/certs/ca-certificates.crt").unwrap_or_default()
}

#[tokio::test]
async fn pip_packages_install_through_the_extra_ca_certificates() {
    let Some((app, token)) = setup(Options {
        extra_ca: host_ca_bundle(),
        ..Options::default()
    })
    .await
    else {
        return;
    };
    let environment = json!({ "spec": { "pip_packages": ["six==1.16.0"] } });
    let run = app
        .run(
            "lab",
            &token,
            "exec",
            json!({ "command": ["python3", "-c", "import six, numpy; print(six.__version__)"], "environment": environment }),
        )
        .await;
    let ended = app
        .wait_for_end("lab", &token, &id(&run), Duration::from_secs(300))
        .await;
    assert_eq!(ended["status"], "Completed", "{ended}");
    assert_eq!(
        app.log_lines("lab", &token, &id(&run), "stdout").await[0]["line"],
        "1.16.0"
    );
}

#[tokio::test]
async fn a_broken_pip_package_fails_the_run_in_preparing() {
    let Some((app, token)) = setup(Options {
        extra_ca: host_ca_bundle(),
        ..Options::default()
    })
    .await
    else {
        return;
    };
    let environment = json!({ "spec": { "pip_packages": ["trainyard-no-such-package==0.0.0"] } });
    let run = app
        .run(
            "lab",
            &token,
            "exec",
            json!({ "command": ["true"], "environment": environment }),
        )
        .await;
    let ended = app
        .wait_for_end("lab", &token, &id(&run), Duration::from_secs(300))
        .await;
    assert_eq!(ended["status"], "Failed");
    let error = ended["error"].as_str().unwrap();
    assert!(
        error.contains("image build failed") && error.contains("trainyard-no-such-package"),
        "{error}"
    );
    let (_, events) = app
        .get(
            &format!("/api/v1/workspaces/lab/runs/{}/events", id(&run)),
            &token,
        )
        .await;
    assert_eq!(
        events["items"].as_array().unwrap().last().unwrap()["from"],
        "Preparing"
    );
}

#[tokio::test]
async fn the_log_follows_live_over_server_sent_events() {
    let Some((app, token)) = setup(Options::default()).await else {
        return;
    };
    let run = app
        .run(
            "lab",
            &token,
            "exec",
            json!({ "command": ["sh", "-c", "for i in 1 2 3 4 5; do echo tick $i; sleep 0.3; done"], "environment": busybox_env() }),
        )
        .await;
    let response = app
        .request(
            reqwest::Method::GET,
            &format!("/api/v1/workspaces/lab/runs/{}/logs/follow", id(&run)),
            &token,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let text = tokio::time::timeout(Duration::from_secs(120), response.text())
        .await
        .expect("the stream ends with the run")
        .unwrap();
    let mut lines = Vec::new();
    let mut statuses = Vec::new();
    let mut event = String::new();
    for row in text.lines() {
        if let Some(name) = row
            .strip_prefix("event: ")
            .or_else(|| row.strip_prefix("event:"))
        {
            event = name.trim().to_string();
        } else if let Some(data) = row
            .strip_prefix("data: ")
            .or_else(|| row.strip_prefix("data:"))
        {
            match event.as_str() {
                "line" => lines.push(
                    serde_json::from_str::<Value>(data).unwrap()["line"]
                        .as_str()
                        .unwrap()
                        .to_string(),
                ),
                "status" => statuses.push(data.to_string()),
                "end" => statuses.push(format!("end {data}")),
                _ => {}
            }
        }
    }
    assert_eq!(
        lines,
        (1..=5).map(|i| format!("tick {i}")).collect::<Vec<_>>()
    );
    assert_eq!(statuses.last().unwrap(), "end Completed");
    assert!(statuses.contains(&"Running".to_string()), "{statuses:?}");
}
