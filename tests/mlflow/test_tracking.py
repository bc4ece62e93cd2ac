"""Tracking through the real ``mlflow`` client: experiments, nested runs with
params, metrics, tags and artifacts, searches, metric histories, and errors;
then the same runs through Trainyard's own SDK."""

import math
import os

import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException, RestException

from trainyard import Run


def test_default_experiment_exists():
    default = MlflowClient().get_experiment("0")
    assert default.name == "Default" and default.lifecycle_stage == "active"
    assert MlflowClient().get_experiment_by_name("Default").experiment_id == "0"
    assert MlflowClient().get_experiment_by_name("no such experiment") is None


def test_nested_runs_land_in_trainyard(tmp_path, trainyard_ws):
    mlflow.set_experiment("tracking")
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    with mlflow.start_run(run_name="parent") as parent:
        mlflow.log_param("lr", 0.01)
        mlflow.set_tag("team", "vision")
        for step in range(5):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
        with mlflow.start_run(run_name="child", nested=True) as child:
            mlflow.log_params({"depth": 3, "kernel": "rbf"})
            mlflow.log_metrics({"acc": 0.91, "f1": 0.88}, step=1)
            mlflow.log_metric("weird", float("nan"))
            mlflow.log_artifact(str(notes), artifact_path="docs")
            mlflow.log_dict({"a": 1}, "config/params.json")
    client = MlflowClient()
    got = client.get_run(child.info.run_id)
    assert got.data.params == {"depth": "3", "kernel": "rbf"}
    assert got.data.metrics["acc"] == 0.91 and math.isnan(got.data.metrics["weird"])
    assert got.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert got.info.status == "FINISHED" and got.info.run_name == "child"
    history = client.get_metric_history(parent.info.run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(s, 1.0 / (s + 1)) for s in range(5)]
    assert sorted(a.path for a in client.list_artifacts(child.info.run_id)) == ["config", "docs"]
    local = client.download_artifacts(child.info.run_id, "docs/notes.txt", str(tmp_path / "dl"))
    assert open(local).read() == "hello"

    # The same run through Trainyard's SDK: params are properties, the
    # artifacts are run files, the metrics are Trainyard metrics.
    run = Run.get(trainyard_ws, child.info.run_id)
    assert run.get_status() == "Completed"
    assert run.get_properties() == {"depth": "3", "kernel": "rbf"}
    assert run.get_tags()["mlflow.parentRunId"] == parent.info.run_id
    assert run.get_metrics()["acc"] == 0.91
    assert set(run.get_file_names()) >= {"docs/notes.txt", "config/params.json"}
    assert Run.get(trainyard_ws, parent.info.run_id).get_metrics()["loss"][-1] == 0.2


def test_search_filters_orders_and_pages():
    experiment = mlflow.set_experiment("search")
    for i in range(7):
        with mlflow.start_run(run_name=f"r{i}"):
            mlflow.log_param("model", "cnn" if i % 2 else "mlp")
            mlflow.log_metric("acc", i / 10)
            mlflow.set_tag("parity", str(i % 2))
    found = mlflow.search_runs([experiment.experiment_id], "params.model = 'cnn' and metrics.acc > 0.2",
                               order_by=["metrics.acc DESC"])
    assert list(found["tags.mlflow.runName"]) == ["r5", "r3"]
    found = mlflow.search_runs([experiment.experiment_id], "tags.parity = '0' and attributes.status = 'FINISHED'",
                               order_by=["attributes.run_name ASC"])
    assert list(found["tags.mlflow.runName"]) == ["r0", "r2", "r4", "r6"]
    found = mlflow.search_runs([experiment.experiment_id], "attributes.run_name LIKE 'r%' and params.model != 'cnn'")
    assert len(found) == 4
    client = MlflowClient()
    first = client.search_runs([experiment.experiment_id], max_results=3, order_by=["metrics.acc ASC"])
    second = client.search_runs([experiment.experiment_id], max_results=3, order_by=["metrics.acc ASC"],
                                page_token=first.token)
    third = client.search_runs([experiment.experiment_id], max_results=3, order_by=["metrics.acc ASC"],
                               page_token=second.token)
    names = [r.info.run_name for page in (first, second, third) for r in page]
    assert names == [f"r{i}" for i in range(7)] and third.token is None
    with pytest.raises(MlflowException) as raised:
        client.search_runs([experiment.experiment_id], "metrics.acc > 'high'")
    assert raised.value.error_code == "INVALID_PARAMETER_VALUE"


def test_limits_and_errors_raise_what_mlflow_raises(trainyard_ws):
    client = MlflowClient()
    with mlflow.start_run() as run:
        mlflow.log_param("lr", "0.1")
        with pytest.raises(MlflowException) as raised:
            mlflow.log_param("lr", "0.2")
        assert raised.value.error_code == "INVALID_PARAMETER_VALUE"
    assert Run.get(trainyard_ws, run.info.run_id).get_properties() == {"lr": "0.1"}
    with pytest.raises(RestException) as raised:
        client.get_run("01a20000-0000-7000-8000-000000000000")
    assert raised.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException) as raised:
        client.create_experiment("tracking-dup")
        client.create_experiment("tracking-dup")
    assert raised.value.error_code == "RESOURCE_ALREADY_EXISTS"


def test_experiment_lifecycle():
    client = MlflowClient()
    experiment_id = client.create_experiment("lifecycle", tags={"owner": "ml"})
    client.rename_experiment(experiment_id, "lifecycle-renamed")
    client.set_experiment_tag(experiment_id, "stage", "dev")
    experiment = client.get_experiment(experiment_id)
    assert experiment.name == "lifecycle-renamed"
    assert experiment.tags == {"owner": "ml", "stage": "dev"}
    client.delete_experiment(experiment_id)
    assert client.get_experiment(experiment_id).lifecycle_stage == "deleted"
    assert experiment_id not in [e.experiment_id for e in client.search_experiments()]
    client.restore_experiment(experiment_id)
    assert experiment_id in [e.experiment_id for e in client.search_experiments(filter_string="name LIKE 'lifecycle%'")]


def test_large_artifacts_go_through_multipart_uploads(tmp_path, monkeypatch):
    # Small thresholds make the client use multipart uploads for 12 MB.
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE", str(5 * 1024 * 1024))
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE", str(5 * 1024 * 1024))
    big = tmp_path / "weights.bin"
    content = os.urandom(12 * 1024 * 1024)
    big.write_bytes(content)
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(big), artifact_path="ckpt")
    client = MlflowClient()
    [listed] = client.list_artifacts(run.info.run_id, "ckpt")
    assert listed.file_size == len(content)
    local = client.download_artifacts(run.info.run_id, "ckpt/weights.bin", str(tmp_path / "back"))
    assert open(local, "rb").read() == content
