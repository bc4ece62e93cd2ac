//! The command-line client against the real server binary (embedded
//! PostgreSQL, executor off so that no Docker is needed): submit, show, list,
//! cancel, wait, logs, files, environments, configuration and error messages.

use serde_json::Value;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const WORKSPACE: &str = "cli-tests";

/// A server on a private data directory, stopped (with its PostgreSQL) when dropped.
struct Server {
    child: Option<Child>,
    url: String,
    _data: tempfile::TempDir,
}

impl Server {
    async fn start() -> Server {
        let data = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(env!("CARGO_BIN_EXE_trainyard"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(data.path())
            .args(["--executor", "false"])
            .env_remove("DATABASE_URL")
            .env_remove("TRAINYARD_ADMIN_TOKEN")
            .env_remove("TRAINYARD_CONFIG")
            .env_remove("TRAINYARD_EXECUTOR")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting trainyard serve");
        let mut server = Server {
            child: Some(child),
            url: format!("http://127.0.0.1:{port}"),
            _data: data,
        };
        server.wait_ready().await;
        server
    }

    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if let Ok(answer) = reqwest::get(format!("{}/readyz", self.url)).await {
                if answer.status() == 200 {
                    return;
                }
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("the server exited early with {status}");
            }
            assert!(Instant::now() < deadline, "the server did not become ready");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// A workspace and a contributor token for it, made with the admin token.
    async fn contributor_token(&self) -> String {
        let admin = std::fs::read_to_string(self._data.path().join("admin-token")).unwrap();
        let http = reqwest::Client::new();
        let api = format!("{}/api/v1", self.url);
        let created = http
            .post(format!("{api}/workspaces"))
            .bearer_auth(admin.trim())
            .json(&serde_json::json!({ "name": WORKSPACE }))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 201);
        let token: Value = http
            .post(format!("{api}/workspaces/{WORKSPACE}/tokens"))
            .bearer_auth(admin.trim())
            .json(&serde_json::json!({ "name": "cli", "role": "contributor" }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        token["secret"].as_str().unwrap().to_string()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(60);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// How the client binary is called: connection settings from the environment
/// (or none), in a given directory.
struct Cli {
    env: Vec<(&'static str, String)>,
    cwd: PathBuf,
}

impl Cli {
    async fn run(&self, args: &[&str]) -> Output {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_trainyard"));
        command
            .args(args)
            .current_dir(&self.cwd)
            .env_remove("TRAINYARD_URL")
            .env_remove("TRAINYARD_TOKEN")
            .env_remove("TRAINYARD_WORKSPACE")
            .envs(self.env.iter().map(|(k, v)| (*k, v.as_str())));
        let output = tokio::time::timeout(Duration::from_secs(60), command.output())
            .await
            .unwrap_or_else(|_| panic!("trainyard {args:?} did not finish"))
            .unwrap();
        output
    }

    /// Runs a command that must succeed; returns its standard output.
    async fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args).await;
        assert!(
            output.status.success(),
            "trainyard {args:?} failed: {}",
            text(&output.stderr)
        );
        text(&output.stdout)
    }

    async fn json(&self, args: &[&str]) -> Value {
        serde_json::from_str(&self.ok(args).await).unwrap()
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn write(root: &Path, relative: &str, content: &str) {
    let path = root.join(relative);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_client_drives_runs_environments_and_reports_errors() {
    let server = Server::start().await;
    let token = server.contributor_token().await;
    let work = tempfile::tempdir().unwrap();
    let source = work.path().join("mnist-demo");
    write(&source, "train.py", "print('hello')\n");
    write(
        &source,
        "outputs/old-model.bin",
        "left out by the default rules",
    );
    let cli = Cli {
        env: vec![
            ("TRAINYARD_URL", server.url.clone()),
            ("TRAINYARD_TOKEN", token.clone()),
            ("TRAINYARD_WORKSPACE", WORKSPACE.to_string()),
        ],
        cwd: work.path().to_path_buf(),
    };
    let source_arg = source.to_str().unwrap();

    // Submit: only the id on standard output; the experiment is the folder's name.
    let submitted = cli
        .run(&[
            "run", "submit", "--source", source_arg, "--script", "train.py", "--gpus", "1",
            "--tag", "lr=0.1", "-e", "SEED=7", "--name", "first", "--", "--epochs", "2",
        ])
        .await;
    assert!(submitted.status.success(), "{}", text(&submitted.stderr));
    let id = text(&submitted.stdout).trim().to_string();
    uuid::Uuid::parse_str(&id).unwrap_or_else(|_| panic!("not a run id: {id:?}"));
    assert!(text(&submitted.stderr).contains("packed 1 files"));

    let digest = trainyard_storage::pack_dir(&source, 1 << 30)
        .unwrap()
        .digest;
    let run = cli.json(&["run", "show", &id]).await;
    assert_eq!(run["status"], "Queued");
    assert_eq!(run["spec"]["snapshot"], digest.as_str());
    assert_eq!(run["spec"]["script"], "train.py");
    assert_eq!(
        run["spec"]["arguments"],
        serde_json::json!(["--epochs", "2"])
    );
    assert_eq!(run["spec"]["resources"]["gpus"], 1);
    assert_eq!(run["spec"]["environment_variables"]["SEED"], "7");
    assert_eq!(run["tags"]["lr"], "0.1");
    assert_eq!(run["display_name"], "first");

    let listed = cli
        .ok(&[
            "run",
            "list",
            "--experiment",
            "mnist-demo",
            "--status",
            "Queued",
        ])
        .await;
    assert!(listed.starts_with("ID"), "{listed}");
    assert!(
        listed.contains(&id) && listed.contains("mnist-demo"),
        "{listed}"
    );
    assert_eq!(cli.ok(&["run", "logs", &id]).await, "");

    // Cancel, then wait: a canceled run exits 2.
    assert_eq!(cli.ok(&["run", "cancel", &id]).await.trim(), "Canceled");
    assert_eq!(cli.json(&["run", "show", &id]).await["status"], "Canceled");
    let waited = cli.run(&["run", "wait", &id]).await;
    assert_eq!(waited.status.code(), Some(2), "{}", text(&waited.stderr));
    assert!(text(&waited.stderr).contains("==> Canceled"));
    assert!(cli.run(&["run", "logs", "-f", &id]).await.status.success());
    let again = cli.run(&["run", "cancel", &id]).await;
    assert_eq!(again.status.code(), Some(1));
    assert!(text(&again.stderr).starts_with("error: "));

    // Files: none kept for a run that never ran; the archive is still a tar.gz.
    assert!(cli.run(&["run", "files", &id]).await.status.success());
    cli.ok(&["run", "download", &id, "--out", "all.tar.gz"])
        .await;
    let archive = std::fs::read(work.path().join("all.tar.gz")).unwrap();
    assert_eq!(&archive[..2], &[0x1f, 0x8b]);

    // A bad flag value is refused here, naming the flag.
    let bad = cli
        .run(&[
            "run", "submit", "--source", source_arg, "--script", "t.py", "--gpus", "-1",
        ])
        .await;
    assert!(!bad.status.success());
    assert!(
        text(&bad.stderr).contains("--gpus"),
        "{}",
        text(&bad.stderr)
    );
    // The server's validation errors name the field.
    for (flag, value, field) in [
        ("--cpus", "0", "resources.cpus"),
        ("-e", "TRAINYARD_X=1", "environment_variables.TRAINYARD_X"),
    ] {
        let refused = cli
            .run(&[
                "run", "submit", "--source", source_arg, "--script", "train.py", flag, value,
            ])
            .await;
        assert_eq!(refused.status.code(), Some(1));
        let message = text(&refused.stderr);
        assert!(
            message.contains(&format!("(field: {field})")) && message.contains("error: "),
            "{message}"
        );
        assert_eq!(text(&refused.stdout), "");
    }

    // Without a token: one clear message before any request.
    let anonymous = Cli {
        env: vec![("TRAINYARD_URL", server.url.clone())],
        cwd: work.path().to_path_buf(),
    };
    let missing = anonymous.run(&["run", "show", &id]).await;
    assert_eq!(missing.status.code(), Some(1));
    let message = text(&missing.stderr);
    assert!(
        message.contains("no API token") && message.contains("TRAINYARD_TOKEN"),
        "{message}"
    );
    let wrong = anonymous
        .run(&[
            "run",
            "show",
            &id,
            "--token",
            "tyd_wrong",
            "--workspace",
            WORKSPACE,
        ])
        .await;
    assert_eq!(wrong.status.code(), Some(1));
    assert!(
        text(&wrong.stderr).contains("hint:"),
        "{}",
        text(&wrong.stderr)
    );

    // .trainyard/config.json in a parent directory supplies what is missing.
    write(
        work.path(),
        ".trainyard/config.json",
        &serde_json::json!({ "url": server.url, "token": token, "workspace": WORKSPACE })
            .to_string(),
    );
    let nested = Cli {
        env: vec![],
        cwd: source.clone(),
    };
    assert_eq!(nested.json(&["run", "show", &id]).await["id"], id.as_str());

    // Environments: register a version, show it, run a command in it.
    let registered = cli
        .ok(&[
            "env",
            "register",
            "numpy-env",
            "--pip",
            "numpy==1.26",
            "-e",
            "OMP_NUM_THREADS=2",
        ])
        .await;
    assert_eq!(registered.trim(), "numpy-env:1");
    let shown = cli.json(&["env", "show", "numpy-env:1"]).await;
    assert_eq!(
        shown["spec"]["pip_packages"],
        serde_json::json!(["numpy==1.26"])
    );
    assert_eq!(shown["build_state"], "not_built");
    let command_run = cli
        .ok(&[
            "run",
            "submit",
            "--experiment",
            "commands",
            "--env",
            "numpy-env",
            "--command",
            "--",
            "echo",
            "hi",
        ])
        .await;
    let command_run = cli.json(&["run", "show", command_run.trim()]).await;
    assert_eq!(
        command_run["spec"]["command"],
        serde_json::json!(["echo", "hi"])
    );
    assert_eq!(command_run["spec"]["environment"]["name"], "numpy-env");
    let unknown = cli.run(&["env", "show", "missing-env"]).await;
    assert_eq!(unknown.status.code(), Some(1));
    assert!(text(&unknown.stderr).starts_with("error: "));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_client_moves_folders_to_and_from_datastores() {
    let server = Server::start().await;
    let token = server.contributor_token().await;
    let work = tempfile::tempdir().unwrap();
    let source = work.path().join("mnist");
    write(&source, "train/a.csv", "1,2\n");
    write(&source, "train/deep/b.csv", "3,4\n");
    write(&source, "labels.txt", "cats and dogs\n");
    let cli = Cli {
        env: vec![
            ("TRAINYARD_URL", server.url.clone()),
            ("TRAINYARD_TOKEN", token),
            ("TRAINYARD_WORKSPACE", WORKSPACE.to_string()),
        ],
        cwd: work.path().to_path_buf(),
    };
    let listed = cli.ok(&["datastore", "list"]).await;
    assert!(listed.contains("default"), "{listed}");

    let uploaded = cli
        .run(&["datastore", "upload", "--target", "data/mnist", "mnist"])
        .await;
    assert!(uploaded.status.success(), "{}", text(&uploaded.stderr));
    assert!(
        text(&uploaded.stderr).contains("uploaded 3 file(s), 22 bytes"),
        "{}",
        text(&uploaded.stderr)
    );
    // Again without --overwrite: nothing is replaced.
    write(&source, "labels.txt", "changed locally\n");
    let again = cli
        .run(&["datastore", "upload", "--target", "data/mnist", "mnist"])
        .await;
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert!(
        text(&again.stderr).contains("skipped 3"),
        "{}",
        text(&again.stderr)
    );

    let downloaded = cli
        .run(&[
            "datastore",
            "download",
            "--prefix",
            "data/mnist/train",
            "copy",
        ])
        .await;
    assert!(downloaded.status.success(), "{}", text(&downloaded.stderr));
    let copy = work.path().join("copy/data/mnist");
    assert_eq!(
        std::fs::read_to_string(copy.join("train/a.csv")).unwrap(),
        "1,2\n"
    );
    assert_eq!(
        std::fs::read_to_string(copy.join("train/deep/b.csv")).unwrap(),
        "3,4\n"
    );
    assert!(
        !copy.join("labels.txt").exists(),
        "only the prefix is fetched"
    );
    cli.ok(&["datastore", "download", "copy"]).await;
    assert_eq!(
        std::fs::read_to_string(copy.join("labels.txt")).unwrap(),
        "cats and dogs\n",
        "the first upload's bytes, not the skipped change"
    );

    let missing = cli
        .run(&["datastore", "upload", "--datastore", "nowhere", "mnist"])
        .await;
    assert!(!missing.status.success());
    assert!(
        text(&missing.stderr).contains("nowhere"),
        "{}",
        text(&missing.stderr)
    );
}
