//! Datastores, datasets in runs (mount and download), lineage and the model
//! registry, against the real server, PostgreSQL and Docker engine.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;
use trainyard_tests::{assert_problem, Options, TestApp};

async fn put_file(
    app: &TestApp,
    token: &str,
    datastore: &str,
    path: &str,
    body: &[u8],
    overwrite: bool,
) -> (StatusCode, Value) {
    let response = app
        .request(Method::PUT, &format!("/api/v1/workspaces/lab/datastores/{datastore}/files?path={path}&overwrite={overwrite}"), token)
        .header("content-type", "application/octet-stream")
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

#[tokio::test]
async fn dataset_versions_reach_runs_by_mount_and_download() {
    let Some(app) = TestApp::spawn_executing(Options::default()).await else {
        return;
    };
    app.workspace("lab").await;
    let token = app.token("lab", "contributor").await;
    app.experiment("lab", &token, "data").await;

    assert_eq!(
        put_file(&app, &token, "default", "mnist/a.txt", b"first a\n", false)
            .await
            .0,
        StatusCode::CREATED
    );
    assert_eq!(
        put_file(&app, &token, "default", "mnist/sub/b.txt", b"b\n", false)
            .await
            .0,
        StatusCode::CREATED
    );
    let again = put_file(&app, &token, "default", "mnist/a.txt", b"x", false).await;
    assert_problem(&again, StatusCode::CONFLICT, "already_exists", Some("path"));
    let (_, listing) = app
        .get(
            "/api/v1/workspaces/lab/datastores/default/files?prefix=mnist",
            &token,
        )
        .await;
    assert_eq!(listing["items"].as_array().unwrap().len(), 2);

    let register = |create_new_version: bool| json!({ "name": "mnist", "paths": ["mnist/"], "description": "digits", "create_new_version": create_new_version });
    let (status, v1) = app
        .post("/api/v1/workspaces/lab/datasets", &token, register(false))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v1}");
    assert_eq!(
        (v1["version"].as_i64(), v1["file_count"].as_i64()),
        (Some(1), Some(2))
    );

    put_file(&app, &token, "default", "mnist/a.txt", b"second a\n", true).await;
    let dup = app
        .post("/api/v1/workspaces/lab/datasets", &token, register(false))
        .await;
    assert_problem(&dup, StatusCode::CONFLICT, "already_exists", Some("name"));
    let (_, v2) = app
        .post("/api/v1/workspaces/lab/datasets", &token, register(true))
        .await;
    assert_eq!(v2["version"], 2);
    let (_, files_v1) = app
        .get(
            "/api/v1/workspaces/lab/datasets/mnist/files?version=1",
            &token,
        )
        .await;
    let a_v1 = files_v1["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "mnist/a.txt")
        .unwrap()
        .clone();
    assert_eq!(a_v1["sha256"], sha256_hex(b"first a\n"));

    // v1 mounted, v2 downloaded: the container checksums what it sees.
    let run = app
        .run(
            "lab",
            &token,
            "data",
            json!({
                "command": ["sh", "-c", "cd $0 && sha256sum mnist/a.txt mnist/sub/b.txt; cd $1 && sha256sum mnist/a.txt; touch $0/mnist/x 2>/dev/null && echo writable || echo read-only", "${{inputs.old}}", "${{inputs.new}}"],
                "environment": { "spec": { "base_image": "trainyard/busybox:latest" } },
                "inputs": [
                    { "name": "old", "dataset": "mnist", "version": 1, "mode": "mount" },
                    { "name": "new", "dataset": "mnist", "mode": "download", "path": "/data/new" },
                ],
            }),
        )
        .await;
    let run_id = run["id"].as_str().unwrap().to_string();
    let ended = app
        .wait_for_end("lab", &token, &run_id, Duration::from_secs(120))
        .await;
    assert_eq!(ended["status"], "Completed", "{ended}");
    let lines: Vec<String> = app
        .log_lines("lab", &token, &run_id, "stdout")
        .await
        .iter()
        .map(|l| l["line"].as_str().unwrap().to_string())
        .collect();
    assert!(lines[0].starts_with(&sha256_hex(b"first a\n")), "{lines:?}");
    assert!(lines[1].starts_with(&sha256_hex(b"b\n")), "{lines:?}");
    assert!(
        lines[2].starts_with(&sha256_hex(b"second a\n")),
        "{lines:?}"
    );
    assert_eq!(lines[3], "read-only");
    let inputs = ended["spec"]["inputs"].as_array().unwrap();
    assert_eq!(
        (inputs[0]["version"].as_i64(), inputs[1]["version"].as_i64()),
        (Some(1), Some(2))
    );
    assert_eq!(inputs[1]["path"], "/data/new");
}

#[tokio::test]
async fn models_register_from_runs_and_files_with_lineage() {
    let Some(app) = TestApp::spawn_executing(Options::default()).await else {
        return;
    };
    app.workspace("lab").await;
    let token = app.token("lab", "contributor").await;
    app.experiment("lab", &token, "train").await;
    put_file(&app, &token, "default", "d/x.csv", b"1,2\n", false).await;
    app.post(
        "/api/v1/workspaces/lab/datasets",
        &token,
        json!({ "name": "xs", "paths": ["d/x.csv"] }),
    )
    .await;
    let run = app
        .run(
            "lab",
            &token,
            "train",
            json!({
                "command": ["sh", "-c", "mkdir -p outputs/model && echo weights > outputs/model/w.bin && echo meta > outputs/model/meta.json"],
                "environment": { "spec": { "base_image": "trainyard/busybox:latest" } },
                "inputs": [{ "name": "xs", "dataset": "xs", "mode": "download" }],
            }),
        )
        .await;
    let run_id = run["id"].as_str().unwrap().to_string();
    assert_eq!(
        app.wait_for_end("lab", &token, &run_id, Duration::from_secs(120))
            .await["status"],
        "Completed"
    );

    let body = json!({
        "name": "digits", "run_id": run_id, "path": "outputs/model",
        "framework": "ScikitLearn", "framework_version": "1.5.2",
        "resource_configuration": { "cpu": 1, "memory_in_gb": 0.5 },
        "tags": { "stage": "dev" }, "description": "first",
    });
    let (status, v1) = app
        .post("/api/v1/workspaces/lab/models", &token, body.clone())
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v1}");
    assert_eq!(v1["version"], 1);
    assert_eq!(v1["run_id"], run_id.as_str());
    assert_eq!(v1["datasets"][0]["name"], "xs");
    let paths: Vec<&str> = v1["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, vec!["meta.json", "w.bin"]);
    let (_, v2) = app
        .post("/api/v1/workspaces/lab/models", &token, body)
        .await;
    assert_eq!(v2["version"], 2);

    let archive = app
        .request(
            Method::GET,
            "/api/v1/workspaces/lab/models/digits/versions/1/download",
            &token,
        )
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let mut contents = std::collections::BTreeMap::new();
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(&archive[..]));
    for entry in tar.entries().unwrap() {
        let mut entry = entry.unwrap();
        let mut text = String::new();
        std::io::Read::read_to_string(&mut entry, &mut text).unwrap();
        contents.insert(entry.path().unwrap().display().to_string(), text);
    }
    assert_eq!(contents.get("w.bin").map(String::as_str), Some("weights\n"));

    let (status, aliased) = app
        .call(
            Method::PUT,
            "/api/v1/workspaces/lab/models/digits/aliases/production",
            &token,
            Some(json!({ "version": 1 })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(aliased["aliases"], json!(["production"]));
    let (_, by_alias) = app
        .get(
            "/api/v1/workspaces/lab/models/digits?alias=production",
            &token,
        )
        .await;
    assert_eq!(by_alias["version"], 1);
    let (_, latest) = app
        .get("/api/v1/workspaces/lab/models/digits", &token)
        .await;
    assert_eq!(latest["version"], 2);
    let (_, patched) = app
        .call(
            Method::PATCH,
            "/api/v1/workspaces/lab/models/digits/versions/2",
            &token,
            Some(json!({ "tags": { "stage": "prod" } })),
        )
        .await;
    assert_eq!(patched["tags"]["stage"], "prod");
    let (status, _) = app
        .call(
            Method::DELETE,
            "/api/v1/workspaces/lab/models/digits/versions/1",
            &token,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let gone = app
        .get(
            "/api/v1/workspaces/lab/models/digits?alias=production",
            &token,
        )
        .await;
    assert_problem(&gone, StatusCode::NOT_FOUND, "not_found", None);
    let (_, versions) = app
        .get("/api/v1/workspaces/lab/models/digits/versions", &token)
        .await;
    assert_eq!(versions["items"].as_array().unwrap().len(), 1);

    // From local files: a tar.gz uploaded as a snapshot.
    let source = tempfile::tempdir().unwrap();
    std::fs::write(source.path().join("model.onnx"), b"onnx bytes").unwrap();
    let digest = app.upload_snapshot("lab", &token, source.path()).await;
    let (status, local) = app
        .post(
            "/api/v1/workspaces/lab/models",
            &token,
            json!({ "name": "uploaded", "snapshot": digest, "framework": "Onnx" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{local}");
    assert_eq!(local["files"][0]["path"], "model.onnx");
    assert!(local["run_id"].is_null());
}

#[tokio::test]
async fn bad_data_input_is_refused_and_nothing_is_half_written() {
    let app = TestApp::spawn().await;
    app.workspace("lab").await;
    let token = app.token("lab", "contributor").await;
    app.experiment("lab", &token, "exp").await;
    put_file(&app, &token, "default", "d/x.csv", b"1\n", false).await;
    let run = app.run("lab", &token, "exp", json!({})).await;
    let run_id = run["id"].as_str().unwrap();

    let cases = [
        (
            json!({ "name": "m", "run_id": run_id, "path": "outputs/none.pkl" }),
            "/api/v1/workspaces/lab/models",
            "path",
        ),
        (
            json!({ "name": "m", "run_id": run_id, "path": "../../etc" }),
            "/api/v1/workspaces/lab/models",
            "path",
        ),
        (
            json!({ "name": "ds", "datastore": "nowhere", "paths": ["d/x.csv"] }),
            "/api/v1/workspaces/lab/datasets",
            "datastore",
        ),
        (
            json!({ "name": "ds", "paths": ["../secrets"] }),
            "/api/v1/workspaces/lab/datasets",
            "paths[0]",
        ),
        (
            json!({ "name": "ds", "paths": ["d/nothing-*.csv"] }),
            "/api/v1/workspaces/lab/datasets",
            "paths[0]",
        ),
        (
            json!({ "name": "ds", "urls": ["ftp://example.com/x"] }),
            "/api/v1/workspaces/lab/datasets",
            "urls[0]",
        ),
        (
            json!({ "name": "ds", "urls": ["file:///etc/passwd"] }),
            "/api/v1/workspaces/lab/datasets",
            "urls[0]",
        ),
    ];
    for (body, path, field) in cases {
        let answer = app.post(path, &token, body).await;
        assert_problem(
            &answer,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some(field),
        );
    }
    let escape = put_file(&app, &token, "default", "../escape.txt", b"x", false).await;
    assert_problem(
        &escape,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("path"),
    );
    let (_, datasets) = app.get("/api/v1/workspaces/lab/datasets", &token).await;
    assert!(datasets["items"].as_array().unwrap().is_empty());
    let (_, models) = app.get("/api/v1/workspaces/lab/models", &token).await;
    assert!(models["items"].as_array().unwrap().is_empty());
    let unknown_input = app
        .post(
            "/api/v1/workspaces/lab/runs",
            &token,
            json!({ "experiment": "exp", "command": ["true"], "inputs": [{ "name": "x", "dataset": "nope", "mode": "download" }] }),
        )
        .await;
    assert_problem(
        &unknown_input,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("inputs[0].dataset"),
    );
    let bad_store = app
        .post(
            "/api/v1/workspaces/lab/datastores",
            &app.admin,
            json!({ "name": "cloud", "url": "ftp://bucket/prefix" }),
        )
        .await;
    assert_problem(
        &bad_store,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("url"),
    );
}

#[tokio::test]
async fn cloud_datastores_keep_secrets_in_the_servers_environment_only() {
    let app = TestApp::spawn().await;
    app.workspace("lab").await;
    let register = |body: Value| {
        let app = &app;
        async move {
            app.post("/api/v1/workspaces/lab/datastores", &app.admin, body)
                .await
        }
    };
    // A secret written as a value is refused, naming the option.
    let literal = register(
        json!({ "name": "s3", "url": "s3://bucket/data", "options": {
            "aws_region": "eu-west-1",
            "aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG",
        }}),
    )
    .await;
    assert_problem(
        &literal,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("options.aws_secret_access_key"),
    );
    assert!(
        !literal.1.to_string().contains("wJalrXUtnFEMI"),
        "{}",
        literal.1
    );
    // An option the service does not know, and a variable the server lacks.
    let unknown = register(json!({ "name": "s3", "url": "s3://bucket", "options": {
        "aws_colour": "blue",
    }}))
    .await;
    assert_problem(
        &unknown,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("url"),
    );
    assert!(unknown.1["detail"].as_str().unwrap().contains("aws_colour"));
    let missing = register(json!({ "name": "s3", "url": "s3://bucket", "options": {
        "aws_access_key_id": { "env": "TRAINYARD_TEST_NO_SUCH_VARIABLE" },
    }}))
    .await;
    assert_problem(
        &missing,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("options.aws_access_key_id"),
    );
    let nothing_kept = app
        .get("/api/v1/workspaces/lab/datastores", &app.admin)
        .await;
    assert_eq!(nothing_kept.1["items"].as_array().unwrap().len(), 1);

    // Referenced from the environment: registered; the API shows the
    // variable's name, never its value.
    std::env::set_var("TRAINYARD_TEST_S3_SECRET", "very-secret-value");
    // Azure's account keys are base64.
    std::env::set_var("TRAINYARD_TEST_AZURE_KEY", "dmVyeS1zZWNyZXQtYXp1cmUta2V5");
    for (name, url, options) in [
        (
            "s3",
            "s3://bucket/data",
            json!({
                "aws_region": "eu-west-1",
                "aws_endpoint": "http://127.0.0.1:9",
                "aws_allow_http": "true",
                "aws_access_key_id": { "env": "TRAINYARD_TEST_S3_SECRET" },
                "aws_secret_access_key": { "env": "TRAINYARD_TEST_S3_SECRET" },
            }),
        ),
        (
            "blob",
            "az://container/data",
            json!({
                "azure_storage_account_name": "lab",
                "azure_storage_account_key": { "env": "TRAINYARD_TEST_AZURE_KEY" },
            }),
        ),
        ("gcs", "gs://bucket", json!({})),
    ] {
        let (status, view) =
            register(json!({ "name": name, "url": url, "options": options })).await;
        assert_eq!(status, StatusCode::CREATED, "{view}");
        assert_eq!(view["kind"], url.split("://").next().unwrap());
    }
    let (status, view) = app
        .get("/api/v1/workspaces/lab/datastores/s3", &app.admin)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        view["options"]["aws_secret_access_key"],
        json!({ "env": "TRAINYARD_TEST_S3_SECRET" })
    );
    assert_eq!(view["options"]["aws_region"], "eu-west-1");
    let (_, all) = app
        .get("/api/v1/workspaces/lab/datastores", &app.admin)
        .await;
    assert!(!all.to_string().contains("very-secret-value"), "{all}");
    assert!(
        !all.to_string().contains("dmVyeS1zZWNyZXQtYXp1cmUta2V5"),
        "{all}"
    );
}

#[tokio::test]
async fn url_datasets_are_fetched_and_file_datastores_registered() {
    let app = TestApp::spawn().await;
    app.workspace("lab").await;
    let token = app.token("lab", "contributor").await;
    // A tiny HTTP server with one file.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut request = [0u8; 1024];
            let _ = socket.read(&mut request).await;
            let _ = socket
                .write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\nconnection: close\r\n\r\nlabels",
                )
                .await;
        }
    });
    let (status, ds) = app
        .post(
            "/api/v1/workspaces/lab/datasets",
            &token,
            json!({ "name": "remote", "urls": [format!("http://{address}/files/labels.txt")] }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{ds}");
    let (_, files) = app
        .get("/api/v1/workspaces/lab/datasets/remote/files", &token)
        .await;
    assert_eq!(files["items"][0]["path"], "labels.txt");
    assert_eq!(files["items"][0]["sha256"], sha256_hex(b"labels"));
    let response = app
        .request(
            Method::GET,
            "/api/v1/workspaces/lab/datasets/remote/files/download?path=labels.txt&version=1",
            &token,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.bytes().await.unwrap().as_ref(), b"labels");
    let (status, _) = app
        .get(
            "/api/v1/workspaces/lab/datasets/remote/files/download?path=other.txt",
            &token,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let folder = tempfile::tempdir().unwrap();
    std::fs::write(folder.path().join("local.txt"), b"on disk").unwrap();
    let url = format!("file://{}", folder.path().display());
    let (status, store) = app
        .post(
            "/api/v1/workspaces/lab/datastores",
            &app.admin,
            json!({ "name": "shared", "url": url }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{store}");
    let (_, ds) = app
        .post(
            "/api/v1/workspaces/lab/datasets",
            &token,
            json!({ "name": "local", "datastore": "shared", "paths": ["*.txt"] }),
        )
        .await;
    assert_eq!(ds["file_count"], 1);
    let (_, stores) = app.get("/api/v1/workspaces/lab/datastores", &token).await;
    let names: Vec<&str> = stores["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["default", "shared"]);
}
