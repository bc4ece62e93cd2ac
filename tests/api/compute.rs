//! Compute targets and nodes: the registry, its validation, limits and roles.

use reqwest::StatusCode;
use serde_json::json;
use trainyard_tests::{assert_problem, TestApp};

#[tokio::test]
async fn compute_targets_hold_nodes_up_to_max_nodes_and_nodes_are_cordoned() {
    let app = TestApp::spawn().await;
    app.workspace("lab").await;
    let reader = app.token("lab", "reader").await;
    let base = "/api/v1/workspaces/lab/compute";

    let (status, target) = app
        .post(
            base,
            &app.admin,
            json!({ "name": "gpucluster", "labels": { "vm_size": "8xA100" }, "max_nodes": 2,
                    "default_resources": { "gpus": 1, "cpus": 4, "memory_mb": 16384 } }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{target}");
    assert_eq!(target["default_resources"]["gpus"], 1);
    assert_eq!(target["labels"]["vm_size"], "8xA100");
    let again = app
        .post(
            base,
            &app.admin,
            json!({ "name": "gpucluster", "max_nodes": 1 }),
        )
        .await;
    assert_problem(&again, StatusCode::CONFLICT, "already_exists", Some("name"));
    let (status, got) = app.get(&format!("{base}/gpucluster"), &reader).await;
    assert_eq!(
        (status, &got["name"]),
        (StatusCode::OK, &json!("gpucluster"))
    );
    let (status, _) = app.get(&format!("{base}/cpucluster"), &reader).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "the SDK's get-or-create asks first"
    );
    let by_reader = app
        .post(base, &reader, json!({ "name": "mine", "max_nodes": 1 }))
        .await;
    assert_eq!(by_reader.0, StatusCode::FORBIDDEN);
    let bad = app
        .post(base, &app.admin, json!({ "name": "x", "max_nodes": 0 }))
        .await;
    assert_problem(
        &bad,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("max_nodes"),
    );
    // Defaults follow the rules of a run's own resources, which they become.
    let too_many = app
        .post(
            base,
            &app.admin,
            json!({ "name": "x", "max_nodes": 1, "default_resources": { "gpus": 65 } }),
        )
        .await;
    assert_problem(
        &too_many,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("default_resources.gpus"),
    );

    let nodes = format!("{base}/gpucluster/nodes");
    let node = |name: &str, endpoint: &str| {
        json!({ "name": name, "endpoint": endpoint, "gpu_mode": "simulated", "gpus": 8,
                "cpus": 32, "memory_mb": 262144 })
    };
    let (status, first) = app
        .post(
            &nodes,
            &app.admin,
            node("node-1", "unix:///var/run/docker.sock"),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(
        first["capacity"],
        json!({ "gpus": 8, "cpus": 32.0, "memory_mb": 262144 })
    );
    assert_eq!(
        (first["state"].as_str(), first["tls"].as_bool()),
        (Some("ready"), Some(false))
    );
    let mut tls_node = node("node-2", "tcp://10.0.0.7:2376");
    tls_node["tls"] = json!({ "ca": "/etc/trainyard/ca.pem", "cert": "/etc/trainyard/cert.pem",
                              "key": "/etc/trainyard/key.pem" });
    let (status, second) = app.post(&nodes, &app.admin, tls_node).await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    assert_eq!(second["tls"], true);
    let full = app
        .post(
            &nodes,
            &app.admin,
            node("node-3", "unix:///var/run/docker.sock"),
        )
        .await;
    assert_problem(&full, StatusCode::CONFLICT, "in_use", None);
    assert!(full.1["detail"].as_str().unwrap().contains("max_nodes"));

    for (body, field) in [
        (node("n", "http://host:2375"), "endpoint"),
        (node("n", "tcp://host"), "endpoint"),
        (
            json!({ "name": "n", "endpoint": "unix:///d.sock", "gpus": 2, "cpus": 1, "memory_mb": 1 }),
            "gpus",
        ),
        (
            json!({ "name": "n", "endpoint": "unix:///d.sock", "gpu_mode": "amd", "cpus": 1, "memory_mb": 1 }),
            "gpu_mode",
        ),
        (
            json!({ "name": "n", "endpoint": "unix:///d.sock", "cpus": 0, "memory_mb": 1 }),
            "cpus",
        ),
        (
            json!({ "name": "n", "endpoint": "tcp://h:1", "cpus": 1, "memory_mb": 1,
                 "tls": { "ca": "ca.pem", "cert": "/c", "key": "/k" } }),
            "tls.ca",
        ),
    ] {
        let answer = app.post(&nodes, &app.admin, body).await;
        assert_problem(
            &answer,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some(field),
        );
    }

    let state = format!("{nodes}/node-1/state");
    let (status, cordoned) = app
        .call(
            reqwest::Method::PUT,
            &state,
            &app.admin,
            Some(json!({ "state": "cordoned", "reason": "disk swap" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{cordoned}");
    assert_eq!(
        (
            cordoned["state"].as_str(),
            cordoned["state_reason"].as_str()
        ),
        (Some("cordoned"), Some("disk swap"))
    );
    let down = app
        .call(
            reqwest::Method::PUT,
            &state,
            &app.admin,
            Some(json!({ "state": "down" })),
        )
        .await;
    assert_problem(
        &down,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("state"),
    );
    let (_, ready) = app
        .call(
            reqwest::Method::PUT,
            &state,
            &app.admin,
            Some(json!({ "state": "ready" })),
        )
        .await;
    assert_eq!(
        (ready["state"].as_str(), &ready["state_reason"]),
        (Some("ready"), &json!(null))
    );
    let (_, listed) = app.get(&nodes, &reader).await;
    let names: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["node-1", "node-2"]);

    // Deleting a target is refused while a run that names it is not finished.
    let token = app.token("lab", "contributor").await;
    app.experiment("lab", &token, "exp").await;
    let run = app
        .run(
            "lab",
            &token,
            "exp",
            json!({ "command": ["true"], "compute_target": "gpucluster" }),
        )
        .await;
    let refused = app
        .request(
            reqwest::Method::DELETE,
            &format!("{base}/gpucluster"),
            &app.admin,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::CONFLICT);
    let run_id = run["id"].as_str().unwrap();
    let (status, _) = app
        .post(
            &format!("/api/v1/workspaces/lab/runs/{run_id}/cancel"),
            &token,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let deleted = app
        .request(
            reqwest::Method::DELETE,
            &format!("{base}/gpucluster"),
            &app.admin,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let (status, _) = app.get(&nodes, &reader).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// A second Docker engine on a loopback TCP port with mutual TLS, its
/// certificates made by `openssl`; stopped when dropped.
pub(crate) struct TlsEngine {
    child: std::process::Child,
    pub(crate) endpoint: String,
    bridge: String,
    dir: tempfile::TempDir,
}

impl TlsEngine {
    pub(crate) fn start() -> TlsEngine {
        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
        let openssl = |args: &[&str]| {
            let status = std::process::Command::new("openssl")
                .args(args)
                .current_dir(dir.path())
                .stderr(std::process::Stdio::null())
                .status()
                .expect("running openssl");
            assert!(status.success(), "openssl {args:?}");
        };
        std::fs::write(
            path("server.ext"),
            "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        std::fs::write(path("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca-key.pem",
            "-out",
            "ca.pem",
            "-days",
            "1",
            "-subj",
            "/CN=trainyard-test-ca",
        ]);
        for (who, ext) in [("server", "server.ext"), ("client", "client.ext")] {
            openssl(&[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                &format!("{who}-key.pem"),
                "-out",
                &format!("{who}.csr"),
                "-subj",
                &format!("/CN={who}"),
            ]);
            openssl(&[
                "x509",
                "-req",
                "-in",
                &format!("{who}.csr"),
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca-key.pem",
                "-CAcreateserial",
                "-out",
                &format!("{who}-cert.pem"),
                "-days",
                "1",
                "-extfile",
                ext,
            ]);
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let endpoint = format!("tcp://127.0.0.1:{port}");
        // A bridge of its own: with `--bridge none` dockerd deletes the
        // host's docker0, which the machine's own engine uses.
        let bridge = format!("tytls{port}");
        let ip = |args: &[&str]| {
            let status = std::process::Command::new("ip")
                .args(args)
                .status()
                .expect("running ip");
            assert!(status.success(), "ip {args:?}");
        };
        ip(&["link", "add", &bridge, "type", "bridge"]);
        ip(&["link", "set", &bridge, "up"]);
        let child = std::process::Command::new("dockerd")
            .args([
                "--data-root",
                &path("root"),
                "--exec-root",
                &path("exec"),
                "--pidfile",
                &path("docker.pid"),
            ])
            .args([
                "-H",
                &endpoint,
                "--tlsverify",
                "--tlscacert",
                &path("ca.pem"),
            ])
            .args([
                "--tlscert",
                &path("server-cert.pem"),
                "--tlskey",
                &path("server-key.pem"),
            ])
            .args(["--bridge", &bridge, "--iptables=false", "--ip6tables=false"])
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(path("dockerd.log")).unwrap())
            .spawn()
            .expect("starting a second dockerd");
        TlsEngine {
            child,
            endpoint,
            bridge,
            dir,
        }
    }

    /// Copies an image of the machine's engine into this one, once it
    /// answers (within a minute).
    pub(crate) fn load_image(&self, image: &str) {
        let path = |name: &str| self.dir.path().join(name).to_str().unwrap().to_string();
        let remote = format!(
            "docker -H {} --tlsverify --tlscacert {} --tlscert {} --tlskey {}",
            self.endpoint,
            path("ca.pem"),
            path("client-cert.pem"),
            path("client-key.pem")
        );
        let script = format!(
            "for i in $(seq 120); do {remote} version >/dev/null 2>&1 && break; sleep 0.5; done; \
             docker save {image} | {remote} load"
        );
        let status = std::process::Command::new("sh")
            .args(["-c", &script])
            .stdout(std::process::Stdio::null())
            .status()
            .expect("running docker save | docker load");
        assert!(status.success(), "loading {image} into the second engine");
    }

    /// Kills the engine at once (no container is stopped first), as when
    /// its machine goes away; what it had started is killed afterwards.
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub(crate) fn tls(&self) -> serde_json::Value {
        let path = |name: &str| self.dir.path().join(name).to_str().unwrap().to_string();
        json!({ "ca": path("ca.pem"), "cert": path("client-cert.pem"), "key": path("client-key.pem") })
    }

    fn stop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status();
            let _ = self.child.wait();
        }
    }
}

impl Drop for TlsEngine {
    fn drop(&mut self) {
        self.stop();
        // containerd and the shims it started outlive a killed dockerd.
        let _ = std::process::Command::new("pkill")
            .args(["-9", "-f", self.dir.path().to_str().unwrap()])
            .status();
        let _ = std::process::Command::new("ip")
            .args(["link", "delete", &self.bridge])
            .status();
    }
}

#[tokio::test]
async fn the_node_monitor_sees_engines_over_a_socket_and_tls_and_marks_silent_ones_down() {
    if trainyard_tests::docker_engine().await.is_none() {
        return;
    }
    let app = TestApp::spawn().await;
    app.workspace("lab").await;
    let base = "/api/v1/workspaces/lab/compute";
    let (status, _) = app
        .post(base, &app.admin, json!({ "name": "pool", "max_nodes": 4 }))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let mut second = TlsEngine::start();
    let nodes = format!("{base}/pool/nodes");
    let register = |name: &str, endpoint: &str, tls: Option<serde_json::Value>| {
        let mut body = json!({ "name": name, "endpoint": endpoint, "cpus": 2, "memory_mb": 1024 });
        if let Some(tls) = tls {
            body["tls"] = tls;
        }
        body
    };
    for body in [
        register("local", "unix:///var/run/docker.sock", None),
        register("tls", &second.endpoint, Some(second.tls())),
        register("silent", "tcp://127.0.0.1:1", None),
    ] {
        let (status, node) = app.post(&nodes, &app.admin, body).await;
        assert_eq!(status, StatusCode::CREATED, "{node}");
        assert_eq!(node["health"], "unknown");
    }

    // The second engine takes a moment to listen.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let seen = loop {
        trainyard_docker::nodes::check_all(&app.db).await;
        let seen = node_health(&app, &nodes).await;
        if seen["tls"]["health"] == "up" || std::time::Instant::now() > deadline {
            break seen;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    };
    assert_eq!(seen["local"]["health"], "up", "{:?}", seen["local"]);
    assert!(seen["local"]["engine_version"]
        .as_str()
        .is_some_and(|v| !v.is_empty()));
    assert_eq!(seen["tls"]["health"], "up", "{:?}", seen["tls"]);
    assert_eq!(seen["silent"]["health"], "down");
    assert!(seen["silent"]["health_reason"]
        .as_str()
        .unwrap()
        .contains("tcp://127.0.0.1:1"));

    // An engine that stops answering is marked down with the reason; the
    // state an administrator set is kept.
    let state = format!("{nodes}/tls/state");
    app.call(
        reqwest::Method::PUT,
        &state,
        &app.admin,
        Some(json!({ "state": "cordoned" })),
    )
    .await;
    second.stop();
    trainyard_docker::nodes::check_all(&app.db).await;
    let seen = node_health(&app, &nodes).await;
    assert_eq!(
        (
            seen["tls"]["health"].as_str(),
            seen["tls"]["state"].as_str()
        ),
        (Some("down"), Some("cordoned"))
    );
    assert!(seen["tls"]["health_reason"]
        .as_str()
        .is_some_and(|r| r.contains(&second.endpoint)));
}

/// The nodes of a target by name.
async fn node_health(
    app: &TestApp,
    nodes: &str,
) -> std::collections::BTreeMap<String, serde_json::Value> {
    let (_, listed) = app.get(nodes, &app.admin).await;
    listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["name"].as_str().unwrap().to_string(), n.clone()))
        .collect()
}

#[tokio::test]
async fn a_node_registered_without_capacity_gets_the_engines_cpus_and_memory() {
    if trainyard_tests::docker_engine().await.is_none() {
        return;
    }
    let app = TestApp::spawn().await;
    app.workspace("lab").await;
    let base = "/api/v1/workspaces/lab/compute";
    app.post(base, &app.admin, json!({ "name": "pool", "max_nodes": 4 }))
        .await;
    let nodes = format!("{base}/pool/nodes");
    let (status, node) = app
        .post(
            &nodes,
            &app.admin,
            json!({ "name": "local", "endpoint": "unix:///var/run/docker.sock" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{node}");
    let cpus = std::thread::available_parallelism().unwrap().get() as f64;
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
    let total_kib: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    assert_eq!(node["capacity"]["cpus"], cpus, "{node}");
    assert_eq!(node["capacity"]["memory_mb"], total_kib / 1024, "{node}");
    // Declared amounts win; an engine that does not answer cannot report.
    let (status, node) = app
        .post(
            &nodes,
            &app.admin,
            json!({ "name": "declared", "endpoint": "unix:///var/run/docker.sock", "cpus": 0.5 }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{node}");
    assert_eq!(node["capacity"]["cpus"], 0.5);
    assert_eq!(node["capacity"]["memory_mb"], total_kib / 1024);
    let silent = app
        .post(
            &nodes,
            &app.admin,
            json!({ "name": "silent", "endpoint": "tcp://127.0.0.1:1", "memory_mb": 1024 }),
        )
        .await;
    trainyard_tests::assert_problem(
        &silent,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("cpus"),
    );
}
