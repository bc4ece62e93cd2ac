//! Metrics: every shape, batches and their limit, special values, the run
//! token's reach, history paging and downsampling, and comparisons.

use reqwest::StatusCode;
use serde_json::{json, Value};
use trainyard_tests::{assert_problem, TestApp};

async fn setup() -> (TestApp, String, String) {
    let app = TestApp::spawn().await;
    app.workspace("lab").await;
    let token = app.token("lab", "contributor").await;
    app.experiment("lab", &token, "exp").await;
    let run = app.run("lab", &token, "exp", json!({})).await;
    (app, token, run["id"].as_str().unwrap().to_string())
}

fn metrics_path(run: &str) -> String {
    format!("/api/v1/workspaces/lab/runs/{run}/metrics")
}

async fn latest(app: &TestApp, token: &str, run: &str) -> Value {
    let (status, body) = app.get(&metrics_path(run), token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut by_name = serde_json::Map::new();
    for item in body["items"].as_array().unwrap() {
        by_name.insert(item["name"].as_str().unwrap().to_string(), item.clone());
    }
    Value::Object(by_name)
}

#[tokio::test]
async fn every_shape_is_logged_and_read_back() {
    let (app, token, run) = setup().await;
    let batch = json!({ "metrics": [
        { "name": "loss", "value": 0.9, "step": 0 },
        { "name": "loss", "value": 0.5, "step": 1 },
        { "name": "loss", "value": 0.7, "step": 0, "timestamp": "2026-01-01T00:00:00Z" },
        { "name": "accuracies", "kind": "list", "value": [0.1, 0.5, 0.9] },
        { "name": "epoch", "kind": "row", "value": { "epoch": 1, "acc": 0.93 } },
        { "name": "confusion", "kind": "table", "value": { "label": [0, 1], "count": [10, 12] } },
        { "name": "curve", "kind": "image", "value": { "path": "images/curve/0.png" } },
        { "name": "lr", "value": 0.1 },
        { "name": "lr", "value": 0.05 },
    ]});
    let (status, answer) = app.post(&metrics_path(&run), &token, batch).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["accepted"], 9);

    let metrics = latest(&app, &token, &run).await;
    assert_eq!(metrics["loss"]["kind"], "scalar");
    assert_eq!(metrics["loss"]["count"], 3);
    assert_eq!(
        metrics["loss"]["latest"]["value"], 0.5,
        "the latest is the highest step"
    );
    assert_eq!(metrics["loss"]["latest"]["step"], 1);
    assert_eq!(
        metrics["accuracies"]["latest"]["value"],
        json!([0.1, 0.5, 0.9])
    );
    assert_eq!(metrics["epoch"]["latest"]["value"]["acc"], 0.93);
    assert_eq!(metrics["confusion"]["kind"], "table");
    assert_eq!(
        metrics["curve"]["latest"]["value"]["path"],
        "images/curve/0.png"
    );
    // Without steps, points are numbered after the metric's last one.
    assert_eq!(metrics["lr"]["latest"]["step"], 1);
    assert_eq!(metrics["lr"]["latest"]["value"], 0.05);

    let (_, more) = app
        .post(
            &metrics_path(&run),
            &token,
            json!({ "metrics": [{ "name": "lr", "value": 0.01 }] }),
        )
        .await;
    assert_eq!(more["accepted"], 1);
    let (_, history) = app
        .get(&format!("{}/history?name=lr", metrics_path(&run)), &token)
        .await;
    let steps: Vec<i64> = history["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["step"].as_i64().unwrap())
        .collect();
    assert_eq!(steps, vec![0, 1, 2]);
}

#[tokio::test]
async fn special_values_round_trip_and_bad_values_are_refused_whole() {
    let (app, token, run) = setup().await;
    let batch = json!({ "metrics": [
        { "name": "x", "value": "NaN", "step": 0 },
        { "name": "x", "value": "Infinity", "step": 1 },
        { "name": "x", "value": "-Infinity", "step": 2 },
        { "name": "x", "value": 1.7976931348623157e308, "step": 3 },
        { "name": "x", "value": -5e-324, "step": 4 },
    ]});
    assert_eq!(
        app.post(&metrics_path(&run), &token, batch).await.0,
        StatusCode::OK
    );
    let (_, history) = app
        .get(&format!("{}/history?name=x", metrics_path(&run)), &token)
        .await;
    let values: Vec<Value> = history["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["value"].clone())
        .collect();
    assert_eq!(
        values,
        vec![
            json!("NaN"),
            json!("Infinity"),
            json!("-Infinity"),
            json!(1.7976931348623157e308),
            json!(-5e-324)
        ]
    );

    // One bad entry refuses the batch: nothing of it is stored.
    let bad = json!({ "metrics": [
        { "name": "y", "value": 1.0 },
        { "name": "y", "value": "lots" },
    ]});
    let answer = app.post(&metrics_path(&run), &token, bad).await;
    assert_problem(
        &answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("metrics[1].value"),
    );
    let metrics = latest(&app, &token, &run).await;
    assert!(metrics.get("y").is_none());

    // Numbers beyond a double are not JSON this server reads.
    let response = app
        .request(reqwest::Method::POST, &metrics_path(&run), &token)
        .header("content-type", "application/json")
        .body(r#"{"metrics": [{"name": "z", "value": 1e400}]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    // A metric keeps its shape.
    let shape = app
        .post(
            &metrics_path(&run),
            &token,
            json!({ "metrics": [{ "name": "x", "kind": "list", "value": [1] }] }),
        )
        .await;
    assert_problem(
        &shape,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("metrics"),
    );
    let bad_shape = app
        .post(&metrics_path(&run), &token, json!({ "metrics": [{ "name": "t", "kind": "table", "value": { "a": [1], "b": [1, 2] } }] }))
        .await;
    assert_problem(
        &bad_shape,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("metrics[0].value"),
    );
}

#[tokio::test]
async fn batches_over_the_limit_are_refused_with_the_limit_named() {
    let (app, token, run) = setup().await;
    let full: Vec<Value> = (0..10_000)
        .map(|i| json!({ "name": "m", "value": i, "step": i }))
        .collect();
    let (status, answer) = app
        .post(&metrics_path(&run), &token, json!({ "metrics": full }))
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["accepted"], 10_000);

    let over: Vec<Value> = (0..10_001)
        .map(|i| json!({ "name": "n", "value": i }))
        .collect();
    let answer = app
        .post(&metrics_path(&run), &token, json!({ "metrics": over }))
        .await;
    assert_problem(
        &answer,
        StatusCode::BAD_REQUEST,
        "batch_too_large",
        Some("metrics"),
    );
    assert!(answer.1["detail"].as_str().unwrap().contains("10000"));
    assert!(
        latest(&app, &token, &run).await.get("n").is_none(),
        "nothing of the batch is stored"
    );
}

#[tokio::test]
async fn a_run_token_writes_only_its_own_run() {
    let (app, token, run) = setup().await;
    let other = app.run("lab", &token, "exp", json!({})).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let ws = uuid::Uuid::parse_str(&app.workspace_id("lab").await).unwrap();
    let run_token = app
        .db
        .create_run_token(ws, uuid::Uuid::parse_str(&run).unwrap(), None)
        .await
        .unwrap();
    let point = json!({ "metrics": [{ "name": "loss", "value": 1.0 }] });

    assert_eq!(
        app.post(&metrics_path(&run), &run_token, point.clone())
            .await
            .0,
        StatusCode::OK
    );
    let denied = app
        .post(&metrics_path(&other), &run_token, point.clone())
        .await;
    assert_problem(&denied, StatusCode::FORBIDDEN, "forbidden", None);
    let experiment = app
        .post(
            "/api/v1/workspaces/lab/experiments",
            &run_token,
            json!({ "name": "sneaky" }),
        )
        .await;
    assert_problem(&experiment, StatusCode::FORBIDDEN, "forbidden", None);
    // It can still read.
    assert_eq!(
        app.get(&metrics_path(&run), &run_token).await.0,
        StatusCode::OK
    );
    // A reader cannot log.
    let reader = app.token("lab", "reader").await;
    let answer = app.post(&metrics_path(&run), &reader, point).await;
    assert_problem(&answer, StatusCode::FORBIDDEN, "forbidden", None);
}

#[tokio::test]
async fn history_pages_and_downsamples_keeping_extremes() {
    let (app, token, run) = setup().await;
    let points: Vec<Value> = (0..5_000)
        .map(|i| {
            let value = if i == 3_333 {
                1000.0
            } else if i == 1_234 {
                -1000.0
            } else {
                (i % 7) as f64
            };
            json!({ "name": "wave", "value": value, "step": i })
        })
        .collect();
    app.post(&metrics_path(&run), &token, json!({ "metrics": points }))
        .await;

    let mut seen = 0;
    let mut after = String::new();
    loop {
        let (_, page) = app
            .get(
                &format!("{}/history?name=wave&limit=1500{after}", metrics_path(&run)),
                &token,
            )
            .await;
        let batch = page["points"].as_array().unwrap();
        assert_eq!(
            batch.first().map(|p| p["step"].as_i64().unwrap()),
            Some(seen)
        );
        seen += batch.len() as i64;
        match page["next_after_step"].as_i64() {
            Some(step) => after = format!("&after_step={step}"),
            None => break,
        }
    }
    assert_eq!(seen, 5_000);

    let (_, sampled) = app
        .get(
            &format!("{}/history?name=wave&max_points=100", metrics_path(&run)),
            &token,
        )
        .await;
    let sampled = sampled["points"].as_array().unwrap();
    assert!(
        sampled.len() <= 100 && sampled.len() >= 50,
        "{}",
        sampled.len()
    );
    let values: Vec<f64> = sampled
        .iter()
        .map(|p| p["value"].as_f64().unwrap())
        .collect();
    assert!(
        values.contains(&1000.0) && values.contains(&-1000.0),
        "spikes survive"
    );

    // Points logged one request each are stored one row each; their pages
    // read more rows than the first guess (made for chunks) and stay whole.
    for step in 0..250 {
        let point = json!({ "name": "single", "value": step as f64, "step": step });
        let (status, _) = app
            .post(&metrics_path(&run), &token, json!({ "metrics": [point] }))
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    let mut steps = Vec::new();
    let mut after = String::new();
    loop {
        let (_, page) = app
            .get(
                &format!(
                    "{}/history?name=single&limit=100{after}",
                    metrics_path(&run)
                ),
                &token,
            )
            .await;
        steps.extend(
            page["points"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["step"].as_i64().unwrap()),
        );
        match page["next_after_step"].as_i64() {
            Some(step) => after = format!("&after_step={step}"),
            None => break,
        }
    }
    assert_eq!(steps, (0..250).collect::<Vec<_>>());

    let missing = app
        .get(&format!("{}/history?name=nope", metrics_path(&run)), &token)
        .await;
    assert_problem(&missing, StatusCode::NOT_FOUND, "not_found", None);
}

#[tokio::test]
async fn runs_are_compared_metric_by_metric() {
    let (app, token, first) = setup().await;
    let second = app.run("lab", &token, "exp", json!({})).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    for (run, acc) in [(&first, 0.8), (&second, 0.95)] {
        let batch = json!({ "metrics": [
            { "name": "acc", "value": acc / 2.0, "step": 0 },
            { "name": "acc", "value": acc, "step": 1 },
            { "name": "loss", "value": 1.0 - acc, "step": 1 },
        ]});
        app.post(&metrics_path(run), &token, batch).await;
    }
    let (status, comparison) = app
        .get(&format!("/api/v1/workspaces/lab/metrics/compare?run={first}&run={second}&name=acc&max_points=10"), &token)
        .await;
    assert_eq!(status, StatusCode::OK, "{comparison}");
    let runs = comparison["runs"].as_array().unwrap();
    assert_eq!(runs[0]["run_id"], first.as_str());
    assert_eq!(runs[1]["metrics"][0]["latest"]["value"], 0.95);
    assert_eq!(
        runs[1]["metrics"].as_array().unwrap().len(),
        1,
        "only the chosen metric"
    );
    assert_eq!(
        runs[0]["metrics"][0]["history"].as_array().unwrap().len(),
        2
    );

    let foreign = app
        .get(
            &format!(
                "/api/v1/workspaces/lab/metrics/compare?run={}",
                uuid::Uuid::new_v4()
            ),
            &token,
        )
        .await;
    assert_problem(
        &foreign,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("run"),
    );
}

#[tokio::test]
async fn runs_are_sorted_and_filtered_by_metrics_and_properties() {
    let (app, token, first_bare) = setup().await;
    let mut ids = Vec::new();
    for (i, acc) in [0.7, 0.95, 0.85, 0.9].into_iter().enumerate() {
        let run = app
            .run(
                "lab",
                &token,
                "exp",
                json!({ "properties": { "arch": if i % 2 == 0 { "cnn" } else { "mlp" } } }),
            )
            .await;
        let id = run["id"].as_str().unwrap().to_string();
        app.post(
            &metrics_path(&id),
            &token,
            json!({ "metrics": [{ "name": "acc", "value": acc }] }),
        )
        .await;
        ids.push(id);
    }
    // Runs without the metric sort last, newest first.
    let bare = app.run("lab", &token, "exp", json!({})).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let list = |query: String| {
        let app = &app;
        let token = &token;
        async move {
            let (status, body) = app
                .get(&format!("/api/v1/workspaces/lab/runs?{query}"), token)
                .await;
            assert_eq!(status, StatusCode::OK, "{query}: {body}");
            body
        }
    };
    let names = |body: &Value| -> Vec<String> {
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect()
    };

    let sorted = list("order_by=metric:acc&limit=2".into()).await;
    assert_eq!(names(&sorted), vec![ids[1].clone(), ids[3].clone()]);
    let cursor = sorted["next_cursor"].as_str().unwrap().to_string();
    let rest = list(format!("order_by=metric:acc&limit=10&cursor={cursor}")).await;
    assert_eq!(
        names(&rest),
        vec![
            ids[2].clone(),
            ids[0].clone(),
            bare.clone(),
            first_bare.clone()
        ]
    );
    let ascending = list("order_by=metric:acc&order=asc&limit=1".into()).await;
    assert_eq!(names(&ascending), vec![ids[0].clone()]);

    let good = list("metric=acc%3E%3D0.9".into()).await;
    assert_eq!(names(&good).len(), 2);
    let good_mlp = list("metric=acc%3E0.8&property=arch%3Dmlp".into()).await;
    assert_eq!(names(&good_mlp).len(), 2);
    let cnn = list("property=arch%3Dcnn&metric=acc%3C0.9".into()).await;
    assert_eq!(names(&cnn), vec![ids[2].clone(), ids[0].clone()]);

    let bad = app
        .get("/api/v1/workspaces/lab/runs?metric=acc~1", &token)
        .await;
    assert_problem(
        &bad,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("metric"),
    );
    let bad = app
        .get("/api/v1/workspaces/lab/runs?order_by=size", &token)
        .await;
    assert_problem(
        &bad,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("order_by"),
    );
}

#[tokio::test]
async fn concurrent_batches_are_all_kept_and_a_bad_one_is_refused_alone() {
    let (app, token, run) = setup().await;
    let other = app.run("lab", &token, "exp", json!({})).await;
    let other = other["id"].as_str().unwrap().to_string();
    // `shape` exists as a scalar; one concurrent batch logs it as a list.
    let (status, _) = app
        .post(
            &metrics_path(&run),
            &token,
            json!({ "metrics": [{ "name": "shape", "value": 1 }] }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    // 24 good batches and a bad one at once, written in shared transactions:
    // steps left out are numbered after the metric's last point, across batches.
    let batches = (0..25).map(|i| {
        let (app, token) = (&app, &token);
        let target = if i % 2 == 0 {
            run.clone()
        } else {
            other.clone()
        };
        async move {
            let body = if i == 24 {
                json!({ "metrics": [
                    { "name": "loss", "value": 1.0 },
                    { "name": "shape", "kind": "list", "value": [1, 2] },
                ]})
            } else {
                let points: Vec<Value> = (0..50)
                    .map(|_| json!({ "name": "loss", "value": i }))
                    .collect();
                json!({ "metrics": points })
            };
            app.post(&metrics_path(&target), token, body).await
        }
    });
    let answers = futures::future::join_all(batches).await;
    for (i, (status, body)) in answers.iter().enumerate() {
        if i == 24 {
            assert_problem(
                &(*status, body.clone()),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_field",
                Some("metrics"),
            );
            assert!(
                body["detail"].as_str().unwrap().contains("scalar"),
                "{body}"
            );
        } else {
            assert_eq!(*status, StatusCode::OK, "batch {i}: {body}");
            assert_eq!(body["accepted"], 50);
        }
    }
    for target in [&run, &other] {
        let metrics = latest(&app, &token, target).await;
        assert_eq!(metrics["loss"]["count"], 12 * 50, "{metrics}");
        let (status, history) = app
            .get(
                &format!("{}/history?name=loss&limit=10000", metrics_path(target)),
                &token,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{history}");
        let steps: Vec<i64> = history["points"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["step"].as_i64().unwrap())
            .collect();
        assert_eq!(steps, (0..600).collect::<Vec<_>>(), "one point per step");
    }
    // Nothing of the refused batch was kept.
    let metrics = latest(&app, &token, &run).await;
    assert_eq!(metrics["shape"]["kind"], "scalar");
    assert_eq!(metrics["shape"]["count"], 1);
}

#[tokio::test]
async fn a_run_removed_behind_the_servers_back_is_not_found_and_keeps_no_points() {
    let (app, token, run) = setup().await;
    let batch = |steps: std::ops::Range<i64>| {
        let points: Vec<Value> = steps
            .map(|step| json!({ "name": "loss", "value": 0.5, "step": step }))
            .collect();
        json!({ "metrics": points })
    };
    // Logged once, so the server knows the run and its metric row.
    let (status, _) = app.post(&metrics_path(&run), &token, batch(0..1)).await;
    assert_eq!(status, StatusCode::OK);
    app.delete_run_row(&run).await;
    // Small or large, a batch is refused whole.
    for steps in [1..2, 1..6001] {
        let answer = app.post(&metrics_path(&run), &token, batch(steps)).await;
        assert_problem(&answer, StatusCode::NOT_FOUND, "not_found", None);
    }
    assert_eq!(app.point_rows().await, (0, 0));
}

#[tokio::test]
async fn the_latest_value_is_the_highest_step_whatever_order_points_arrive_in() {
    let (app, token, run) = setup().await;
    // After the first batch the metric row is known, and small batches of
    // points with steps are stored in one statement.
    for (step, value) in [(5, 0.5), (3, 0.3), (5, 0.55), (7, 0.7), (6, 0.6)] {
        let body = json!({ "metrics": [{ "name": "acc", "value": value, "step": step }] });
        let (status, answer) = app.post(&metrics_path(&run), &token, body).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
    }
    let metrics = latest(&app, &token, &run).await;
    assert_eq!(metrics["acc"]["count"], 5, "{metrics}");
    assert_eq!(metrics["acc"]["latest"]["step"], 7, "{metrics}");
    assert_eq!(metrics["acc"]["latest"]["value"], 0.7, "{metrics}");
}
