"""End-to-end tests against a live Trainyard server.

Set ``TRAINYARD_TEST_URL`` (e.g. ``http://127.0.0.1:8420``) and
``TRAINYARD_TEST_TOKEN`` (a server administrator token) to run them; each run
of the suite creates a fresh workspace. Submitting runs needs the server's
Docker executor and the base images ``trainyard/busybox:latest`` and
``trainyard/python:3.11-bookworm``.
"""

import io
import os
import tarfile
import time
import uuid

import pytest

from trainyard import (Environment, Experiment, RunFailedError, ScriptRunConfig,
                       TrainyardError, Workspace)
from trainyard._snapshot import pack_directory

URL = os.environ.get("TRAINYARD_TEST_URL")
TOKEN = os.environ.get("TRAINYARD_TEST_TOKEN")
RUN_TIMEOUT = float(os.environ.get("TRAINYARD_TEST_RUN_TIMEOUT", "300"))

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not (URL and TOKEN), reason=(
        "integration tests need a live server: set TRAINYARD_TEST_URL and "
        "TRAINYARD_TEST_TOKEN (a server administrator token)")),
]

# The smallest valid PNG (1x1, transparent).
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d49444154789c63000100000500010d0a2db40000000049454e44ae426082")


@pytest.fixture(scope="module")
def ws():
    name = f"sdk-test-{uuid.uuid4().hex[:12]}"
    return Workspace.create(name, URL, TOKEN, description="trainyard SDK tests")


def eventually(read, check, timeout=15.0):
    """``read()`` until ``check(value)`` holds (metrics are taken in asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if check(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.25)


def test_workspace_and_experiments(ws):
    assert ws.get_details()["name"] == ws.name
    first = Experiment(ws, "get-or-create")
    again = Experiment(ws, "get-or-create")
    assert first.id == again.id
    assert "get-or-create" in ws.experiments
    with pytest.raises(TrainyardError) as raised:
        Experiment(ws, "not a valid name!")
    assert raised.value.status == 422 and raised.value.field


def test_environment_versions(ws):
    env = Environment("sdk-env")
    env.pip_packages = ["numpy"]
    env.environment_variables = {"A": "1"}
    first = env.register(ws)
    env.apt_packages = ["curl"]
    second = env.register(ws)
    assert (first.version, second.version) == (1, 2)
    assert second.image.startswith("trainyard/env:") and second.build_state
    assert Environment.get(ws, "sdk-env").version == 2
    assert Environment.get(ws, "sdk-env", version=1).apt_packages == []
    assert "sdk-env" in ws.environments


def test_interactive_run_logs_and_reads_metrics(ws, tmp_path):
    run = Experiment(ws, "interactive").start_logging(display_name="notebook")
    for step, loss in enumerate([0.9, 0.5, 0.3]):
        run.log("loss", loss, step=step)
    run.log("acc", 0.8)
    run.log("weird", float("nan"))
    run.log_list("accs", [0.1, 0.2, 0.3])
    run.log_row("epochs", epoch=1, acc=0.7)
    run.log_row("epochs", epoch=2, acc=0.8)
    run.log_table("results", {"col_a": [1, 2], "col_b": [3, 4]})
    image = tmp_path / "plot.png"
    image.write_bytes(PNG)
    run.log_image("plot", path=str(image))
    run.flush()
    metrics = eventually(run.get_metrics, lambda m: len(m) == 7 and len(m.get("loss", [])) == 3)
    assert metrics["loss"] == [0.9, 0.5, 0.3]
    assert metrics["acc"] == 0.8
    assert metrics["weird"] != metrics["weird"]  # NaN came back as NaN
    assert metrics["accs"] == [0.1, 0.2, 0.3]
    assert metrics["epochs"] == {"epoch": [1, 2], "acc": [0.7, 0.8]}
    assert metrics["results"] == {"col_a": [1, 2], "col_b": [3, 4]}
    assert metrics["plot"] == "images/plot/0.png"
    assert run.get_metrics("acc") == {"acc": 0.8}
    assert [p["value"] for p in run.get_metric_history("loss")] == [0.9, 0.5, 0.3]
    assert "images/plot/0.png" in run.get_file_names()
    downloaded = run.download_file("images/plot/0.png", str(tmp_path / "back.png"))
    assert open(downloaded, "rb").read() == PNG
    run.tag("stage", "tuning")
    run.add_properties({"owner": "sdk"})
    assert run.get_tags()["stage"] == "tuning" and run.get_properties()["owner"] == "sdk"
    assert run.wait_for_completion()["spec"] == {}  # records only: returns at once


def test_a_failing_run_raises_with_its_error(ws, tmp_path, capsys):
    env = Environment("busybox")
    env.docker.base_image = "trainyard/busybox:latest"
    config = ScriptRunConfig(source_directory=str(tmp_path), environment=env,
                             command=["sh", "-c", "echo boom; exit 4"])
    experiment = Experiment(ws, "failing")
    run = experiment.submit(config)
    assert run.id in [r.id for r in experiment.get_runs(status=["Queued", "Preparing",
                                                                 "Starting", "Running"])]
    with pytest.raises(RunFailedError) as raised:
        run.wait_for_completion(show_output=True, timeout=RUN_TIMEOUT)
    assert raised.value.status == "Failed" and raised.value.exit_code == 4
    assert raised.value.error and "4" in raised.value.error
    out = capsys.readouterr().out
    assert "boom" in out and "==> Failed" in out
    assert run.get_status() == "Failed"


def test_cancel_ends_a_run_canceled(ws, tmp_path):
    env = Environment("busybox")
    env.docker.base_image = "trainyard/busybox:latest"
    config = ScriptRunConfig(str(tmp_path), command="echo started; sleep 120",
                             environment=env, max_run_duration_seconds=300)
    run = Experiment(ws, "canceled").submit(config, tags={"kind": "cancel"})
    deadline = time.monotonic() + RUN_TIMEOUT
    while run.get_status() in ("Queued", "Preparing", "Starting") and time.monotonic() < deadline:
        time.sleep(0.2)
    run.cancel()
    with pytest.raises(RunFailedError) as raised:
        run.wait_for_completion(timeout=RUN_TIMEOUT)
    assert raised.value.status == "Canceled"
    assert run.get_tags()["kind"] == "cancel"


def test_a_script_logs_from_inside_its_container(ws, tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    # No copy of the SDK in the source: the executor puts it on PYTHONPATH.
    (source / "train.py").write_text(
        "import sys\n"
        "from trainyard import Run, OfflineRun\n"
        "run = Run.get_context()\n"
        "assert not isinstance(run, OfflineRun), 'no run context'\n"
        "for step in range(5):\n"
        "    run.log('loss', 1.0 / (step + 1), step=step)\n"
        "run.log_row('summary', lr=float(sys.argv[2]), best=0.2)\n"
        "open('outputs/result.txt', 'w').write('done')\n"
        "run.tag('finished', 'yes')\n"
        "run.flush()\n"
        "print('trained with', sys.argv[1:])\n")
    config = ScriptRunConfig(str(source), script="train.py", arguments=["--lr", 0.01],
                             environment=Environment("python-default"))
    run = Experiment(ws, "in-container").submit(config, tags={"kind": "sdk-test"})
    details = run.wait_for_completion(show_output=True, timeout=RUN_TIMEOUT)
    assert details["status"] == "Completed" and details["tags"]["finished"] == "yes"
    metrics = eventually(run.get_metrics, lambda m: len(m.get("loss", [])) == 5)
    assert metrics["loss"] == [1.0, 0.5, 1.0 / 3, 0.25, 0.2]
    assert metrics["summary"] == {"lr": [0.01], "best": [0.2]}
    assert "outputs/result.txt" in run.get_file_names()
    written = run.download_files(prefix="outputs", output_directory=str(tmp_path / "out"))
    assert open(str(tmp_path / "out" / "outputs" / "result.txt")).read() == "done"
    assert written


def test_client_and_server_ignore_rules_agree(ws, tmp_path):
    files = ["train.py", "src/outputs/keep.py", "outputs/model.pt", "logs/x.log", ".git/HEAD",
             "pkg/__pycache__/m.pyc", "m.pyc", ".trainyard/config.json", "data/big.bin",
             "notes.md", "keep.md", "a/tmp/b/c.txt", "build", "src/build/x", "docs/a.txt",
             "docs/sub/a.txt", "cache/keep.txt", "logs2/y.log", ".ipynb_checkpoints/n.ipynb"]
    for rel in files:
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(rel)
    (tmp_path / ".trainyardignore").write_text(
        "data/\n*.md\n!keep.md\n**/tmp/**\n/build\ndocs/*.txt\ncache/\n!cache/keep.txt\n!/logs/\n")
    raw = io.BytesIO()  # everything, no rules applied: the server decides
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        tar.add(str(tmp_path), arcname=".")
    http, path = ws._http, ws._path("snapshots")
    server = http.request("POST", path, data=raw.getvalue(), content_type="application/gzip")
    packed, size, count = pack_directory(str(tmp_path))
    with packed:
        client = http.request("POST", path, data=packed.read(),
                              content_type="application/gzip")
    assert client["file_count"] == count
    assert (client["digest"], client["file_count"]) == (server["digest"], server["file_count"])


def test_a_killed_run_keeps_every_point_logged_before_the_last_flush(ws, tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    (source / "train.py").write_text(
        "import os, time\n"
        "from trainyard import Run\n"
        "run = Run.get_context()\n"
        "for step in range(2500):\n"
        "    run.log('loss', 1.0 / (step + 1), step=step)\n"
        "print('logged 2500 points', flush=True)\n"
        "time.sleep(3)  # longer than the SDK's flush interval\n"
        "os.kill(os.getpid(), 9)  # no atexit flush\n")
    config = ScriptRunConfig(str(source), script="train.py",
                             environment=Environment("python-default"))
    run = Experiment(ws, "killed").submit(config)
    with pytest.raises(RunFailedError):
        run.wait_for_completion(show_output=True, timeout=RUN_TIMEOUT)
    metrics = run.get_metrics()
    assert len(metrics["loss"]) == 2500
    assert metrics["loss"][-1] == 1.0 / 2500
