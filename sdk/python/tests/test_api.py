"""Experiments, environments, submitting, waiting, files and reading metrics,
against the fake server."""

import io
import json
import tarfile

import pytest

from conftest import RUN_ID, RUN_PATH, WS, problem, run_view
from trainyard import (Environment, Experiment, Run, RunFailedError, ScriptRunConfig,
                       TrainyardError)
from trainyard.core import Workspace as CoreWorkspace

EXPERIMENT = {"id": "e", "workspace_id": "w", "name": "exp", "tags": {}, "archived": False,
              "created_at": "2026-11-23T12:00:00Z"}
ENV_VIEW = {"id": "v", "name": "torchy", "version": 3, "image": "trainyard/env:abc",
            "build_state": "not_built", "created_at": "2026-11-23T12:00:00Z",
            "spec": {"pip_packages": ["torch==2.5.1"], "apt_packages": ["libgomp1"]}}


def sse(*events):
    return [f"event: {name}\ndata: {data}\n\n".encode() for name, data in events]


@pytest.fixture
def experiment(fake, workspace):
    fake.route("PUT", f"{WS}/experiments/exp", (201, EXPERIMENT))
    return Experiment(workspace, "exp")


def test_core_aliases():
    from trainyard import Workspace
    assert CoreWorkspace is Workspace


def test_experiment_is_get_or_create(fake, experiment):
    request = fake.received("PUT", f"{WS}/experiments/exp")[0]
    assert request.json() == {} and request.headers["content-type"] == "application/json"
    assert experiment.id == "e" and experiment.name == "exp"


def test_problems_become_trainyard_errors(fake, workspace):
    fake.route("PUT", f"{WS}/experiments/bad name",
               problem(422, "invalid_field", "must be letters", "name"))
    with pytest.raises(TrainyardError) as raised:
        Experiment(workspace, "bad name")
    err = raised.value
    assert (err.status, err.code, err.detail, err.field) == (422, "invalid_field",
                                                             "must be letters", "name")
    assert not err.transient
    fake.route("GET", f"{WS}", (502, "<html>bad gateway</html>"))
    with pytest.raises(TrainyardError) as raised:
        workspace.get_details()
    assert raised.value.status == 502 and raised.value.transient
    assert "bad gateway" in raised.value.detail


def test_start_logging_creates_a_record_only_run(fake, experiment):
    fake.route("POST", f"{WS}/runs", (201, run_view(spec={})))
    fake.route("GET", RUN_PATH, (200, run_view(spec={})))
    run = experiment.start_logging(display_name="nb")
    assert fake.received("POST", f"{WS}/runs")[0].json() == {"experiment": "exp",
                                                            "display_name": "nb"}
    assert run.id == RUN_ID
    assert run.wait_for_completion()["status"] == "Queued"  # nothing to wait for


def test_environment_register_and_get(fake, workspace, tmp_path):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("numpy==1.26\n")
    fake.route("POST", f"{WS}/environments", lambda r: (201, dict(ENV_VIEW, spec=r.json()["spec"])))
    env = Environment.from_pip_requirements("torchy", str(requirements))
    env.docker.base_image = "trainyard/python:3.11-bookworm"
    env.pip_packages = ["torch==2.5.1"]
    env.apt_packages = ["libgomp1"]
    env.environment_variables = {"OMP_NUM_THREADS": 4}
    registered = env.register(workspace)
    body = fake.received("POST", f"{WS}/environments")[0].json()
    assert body == {"name": "torchy", "spec": {
        "base_image": "trainyard/python:3.11-bookworm", "apt_packages": ["libgomp1"],
        "pip_packages": ["torch==2.5.1"], "pip_requirements": "numpy==1.26\n",
        "environment_variables": {"OMP_NUM_THREADS": "4"}}}
    assert (registered.version, registered.image, registered.build_state) == (
        3, "trainyard/env:abc", "not_built")
    assert env.version == 3 and env._choice() == {"name": "torchy", "version": 3}
    env.pip_packages.append("scipy")  # changed since: sent inline
    assert env._choice() == {"spec": env.spec()}

    fake.route("GET", f"{WS}/environments/torchy", (200, ENV_VIEW))
    got = Environment.get(workspace, "torchy", version=3)
    assert fake.received("GET", f"{WS}/environments/torchy")[0].query == {"version": ["3"]}
    assert got.pip_packages == ["torch==2.5.1"] and got.version == 3


def test_environment_from_dockerfile_and_conda(tmp_path):
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM trainyard/busybox:latest\n")
    assert Environment.from_dockerfile("d", str(dockerfile)).spec() == {
        "dockerfile": "FROM trainyard/busybox:latest\n"}
    assert Environment.from_dockerfile("d", "FROM x\nRUN true").dockerfile == "FROM x\nRUN true"
    with pytest.raises(FileNotFoundError):
        Environment.from_dockerfile("d", "missing/Dockerfile")
    conda = tmp_path / "env.yml"
    conda.write_text("dependencies: [numpy]\n")
    assert Environment.from_conda_specification("c", str(conda)).spec() == {
        "conda_specification": "dependencies: [numpy]\n"}


def test_submit_uploads_the_source_then_the_run(fake, experiment, tmp_path):
    (tmp_path / "train.py").write_text("print('hi')\n")
    (tmp_path / "outputs").mkdir()
    (tmp_path / "outputs" / "old.bin").write_text("x")
    (tmp_path / "data.csv").write_text("1,2\n")
    (tmp_path / ".trainyardignore").write_text("*.csv\n")
    fake.route("POST", f"{WS}/snapshots", (201, {"digest": "ab" * 32}))
    fake.route("POST", f"{WS}/runs", (201, run_view()))
    env = Environment("inline")
    env.docker.base_image = "trainyard/busybox:latest"
    config = ScriptRunConfig(str(tmp_path), script="train.py", arguments=["--lr", 0.01, 3],
                             compute_target="local", environment=env,
                             resources={"gpus": 1, "cpus": 2.5, "memory_mb": 4096},
                             environment_variables={"SEED": 1}, max_run_duration_seconds=60)
    run = experiment.submit(config, tags={"team": "vision"})
    upload = fake.received("POST", f"{WS}/snapshots")[0]
    assert upload.headers["content-type"] == "application/gzip"
    with tarfile.open(fileobj=io.BytesIO(upload.body), mode="r:gz") as tar:
        assert sorted(m.name for m in tar.getmembers() if m.isfile()) == [".trainyardignore",
                                                                         "train.py"]
    assert fake.received("POST", f"{WS}/runs")[0].json() == {
        "experiment": "exp", "snapshot": "ab" * 32, "script": "train.py",
        "arguments": ["--lr", "0.01", "3"],
        "environment": {"spec": {"base_image": "trainyard/busybox:latest"}},
        "compute_target": "local", "resources": {"gpus": 1, "cpus": 2.5, "memory_mb": 4096},
        "environment_variables": {"SEED": "1"}, "time_limit_seconds": 60,
        "tags": {"team": "vision"}}
    assert run.id == RUN_ID


def test_submit_a_command_by_environment_name(fake, experiment):
    fake.route("POST", f"{WS}/runs", (201, run_view()))
    experiment.submit(ScriptRunConfig(None, command="echo boom; exit 4", environment="torchy"))
    assert fake.received("POST", f"{WS}/runs")[0].json() == {
        "experiment": "exp", "command": ["sh", "-c", "echo boom; exit 4"],
        "environment": {"name": "torchy"}}
    assert not fake.received("POST", f"{WS}/snapshots")


def test_submit_checks_before_uploading(experiment, tmp_path):
    with pytest.raises(ValueError, match="script or a command"):
        experiment.submit(ScriptRunConfig(str(tmp_path)))
    with pytest.raises(FileNotFoundError):
        experiment.submit(ScriptRunConfig(str(tmp_path), script="nope.py"))
    (tmp_path / "outputs").mkdir()
    (tmp_path / "outputs" / "t.py").write_text("")
    with pytest.raises(ValueError, match="ignore"):
        experiment.submit(ScriptRunConfig(str(tmp_path), script="outputs/t.py"))
    (tmp_path / "t.py").write_text("")
    with pytest.raises(ValueError, match="resources"):
        experiment.submit(ScriptRunConfig(str(tmp_path), script="t.py", resources={"gpu": 1}))


def test_wait_with_output_prints_and_raises(fake, workspace, capsys):
    fake.route("GET", RUN_PATH, (200, run_view("Failed", exit_code=4,
                                               error="the process exited with code 4")))
    line = {"source": "stdout", "seq": 0, "at": "2026-11-23T12:00:00Z", "line": "boom"}
    err_line = dict(line, source="stderr", line="oops")
    fake.route("GET", f"{RUN_PATH}/logs/follow", (200, sse(
        ("status", "Running"), ("line", json.dumps(line)), ("line", json.dumps(err_line)),
        ("status", "Failed"), ("end", "Failed"))))
    run = Run(None, RUN_ID, _workspace=workspace)
    with pytest.raises(RunFailedError) as raised:
        run.wait_for_completion(show_output=True, timeout=10)
    assert raised.value.error == "the process exited with code 4"
    assert raised.value.exit_code == 4 and raised.value.status == "Failed"
    out = capsys.readouterr().out
    assert "==> Running\nboom\n[stderr] oops\n==> Failed" in out
    assert fake.received("GET", f"{RUN_PATH}/logs/follow")[0].headers["accept"] == \
        "text/event-stream"


def test_wait_reconnects_without_printing_twice(fake, workspace, capsys):
    lines = [json.dumps({"source": "stdout", "seq": i, "at": "t", "line": f"l{i}"})
             for i in range(3)]
    fake.sequence("GET", f"{RUN_PATH}/logs/follow", [
        (200, sse(("status", "Running"), ("line", lines[0]), ("line", lines[1]))),
        (200, sse(("status", "Running"), ("line", lines[0]), ("line", lines[1]),
                  ("line", lines[2]), ("end", "Completed"))),
    ])
    fake.sequence("GET", RUN_PATH, [(200, run_view("Running")), (200, run_view("Running")),
                                    (200, run_view("Completed", exit_code=0))])
    details = Run(None, RUN_ID, _workspace=workspace).wait_for_completion(show_output=True)
    assert details["status"] == "Completed"
    out = capsys.readouterr().out
    assert out.count("l0\n") == 1 and out.count("l1\n") == 1 and out.count("l2\n") == 1


def test_wait_without_output_polls(fake, workspace):
    fake.sequence("GET", RUN_PATH, [(200, run_view("Queued")), (200, run_view("Running")),
                                    (200, run_view("Canceled"))])
    with pytest.raises(RunFailedError, match="Canceled"):
        Run(None, RUN_ID, _workspace=workspace).wait_for_completion()
    fake.route("GET", RUN_PATH, (200, run_view("Running")))
    with pytest.raises(TimeoutError):
        Run(None, RUN_ID, _workspace=workspace).wait_for_completion(timeout=0.5)


def test_tags_properties_cancel_and_portal(fake, workspace):
    fake.route("PUT", f"{RUN_PATH}/tags/stage", (200, run_view(tags={"stage": "tuning"})))
    fake.route("PUT", f"{RUN_PATH}/tags/a b", (200, run_view()))
    fake.route("PUT", f"{RUN_PATH}/properties/owner", (200, run_view()))
    fake.route("POST", f"{RUN_PATH}/cancel", (200, run_view(cancel_requested=True)))
    run = Run(None, RUN_ID, _workspace=workspace)
    run.tag("stage", "tuning")
    run.set_tags({"a b": 1})
    run.add_properties({"owner": "alice"})
    run.cancel()
    assert fake.received("PUT", f"{RUN_PATH}/tags/stage")[0].json() == {"value": "tuning"}
    assert fake.received("PUT", f"{RUN_PATH}/tags/a b")[0].json() == {"value": "1"}
    assert fake.received("PUT", f"{RUN_PATH}/properties/owner")[0].json() == {"value": "alice"}
    assert fake.received("POST", f"{RUN_PATH}/cancel")
    assert run.get_portal_url() == f"{fake.url}/#/workspaces/ws/runs/{RUN_ID}"


def test_files(fake, workspace, tmp_path):
    fake.route("GET", f"{RUN_PATH}/files", (200, {"items": [
        {"path": "logs/a.log", "size": 1, "modified": "t"},
        {"path": "outputs/model.bin", "size": 3, "modified": "t"}]}))
    fake.route("GET", f"{RUN_PATH}/files/download", (200, b"abc"))
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        for name, data in [("model.bin", b"abc"), ("./sub/x.txt", b"x"),
                           ("../evil", b"no")]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    fake.route("GET", f"{RUN_PATH}/files/archive", (200, archive.getvalue()))
    run = Run(None, RUN_ID, _workspace=workspace)
    assert run.get_file_names() == ["logs/a.log", "outputs/model.bin"]
    target = run.download_file("outputs/model.bin", str(tmp_path))
    assert open(target, "rb").read() == b"abc"
    assert fake.received("GET", f"{RUN_PATH}/files/download")[0].query == {
        "path": ["outputs/model.bin"]}
    written = run.download_files(prefix="outputs", output_directory=str(tmp_path / "all"))
    assert sorted(p.replace(str(tmp_path / "all"), "") for p in written) == [
        "/outputs/model.bin", "/outputs/sub/x.txt"]
    assert fake.received("GET", f"{RUN_PATH}/files/archive")[0].query == {"prefix": ["outputs"]}
    stripped = run.download_files(prefix="outputs", output_directory=str(tmp_path / "s"),
                                  append_prefix=False)
    assert sorted(p.replace(str(tmp_path / "s"), "") for p in stripped) == ["/model.bin",
                                                                            "/sub/x.txt"]


def test_get_metrics_shapes_like_azure(fake, workspace):
    def latest(value):
        return {"step": 0, "timestamp": "t", "value": value}

    fake.route("GET", f"{RUN_PATH}/metrics", (200, {"items": [
        {"name": "acc", "kind": "scalar", "count": 1, "latest": latest(0.9)},
        {"name": "loss", "kind": "scalar", "count": 3, "latest": latest(0.1)},
        {"name": "accs", "kind": "list", "count": 1, "latest": latest([0.1, "NaN"])},
        {"name": "rows", "kind": "row", "count": 2, "latest": latest({"epoch": 2})},
        {"name": "results", "kind": "table", "count": 1,
         "latest": latest({"a": [1, 2], "b": [3, 4]})},
        {"name": "plot", "kind": "image", "count": 1,
         "latest": latest({"path": "images/plot/0.png"})},
    ]}))

    def history(request):
        name, after = request.query["name"][0], request.query.get("after_step", ["-1"])[0]
        if name == "loss":
            if after == "-1":
                return 200, {"points": [{"step": 0, "timestamp": "t", "value": 0.5},
                                        {"step": 1, "timestamp": "t", "value": "Infinity"}],
                             "next_after_step": 1}
            return 200, {"points": [{"step": 2, "timestamp": "t", "value": 0.1}],
                         "next_after_step": None}
        return 200, {"points": [{"step": 0, "timestamp": "t", "value": {"epoch": 1, "acc": 0.5}},
                                {"step": 1, "timestamp": "t", "value": {"epoch": 2}}]}

    fake.route("GET", f"{RUN_PATH}/metrics/history", history)
    metrics = Run(None, RUN_ID, _workspace=workspace).get_metrics()
    assert metrics == {"acc": 0.9, "loss": [0.5, float("inf"), 0.1],
                       "accs": [0.1, metrics["accs"][1]],
                       "rows": {"epoch": [1, 2], "acc": [0.5, None]},
                       "results": {"a": [1, 2], "b": [3, 4]}, "plot": "images/plot/0.png"}
    assert metrics["accs"][1] != metrics["accs"][1]  # NaN
    assert Run(None, RUN_ID, _workspace=workspace).get_metrics("acc") == {"acc": 0.9}


def test_get_runs_filters(fake, experiment):
    fake.sequence("GET", f"{WS}/runs", [
        (200, {"items": [run_view(), run_view(id="r2")], "next_cursor": "c1"}),
        (200, {"items": [run_view(id="r3")]})])
    runs = list(experiment.get_runs(tags={"team": "vision"}, status="Failed"))
    assert [r.id for r in runs] == [RUN_ID, "r2", "r3"]
    first, second = fake.received("GET", f"{WS}/runs")
    assert first.query == {"experiment": ["e"], "tag": ["team=vision"], "status": ["Failed"]}
    assert second.query["cursor"] == ["c1"]
