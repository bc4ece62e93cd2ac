"""Run.get_context(): the run inside a container, an OfflineRun elsewhere."""

import pytest

from trainyard import OfflineRun, Run

RUN_VARS = ("TRAINYARD_RUN_ID", "TRAINYARD_API_URL", "TRAINYARD_WORKSPACE", "TRAINYARD_TOKEN")


@pytest.fixture(autouse=True)
def no_run_env(monkeypatch):
    for name in RUN_VARS + ("TRAINYARD_EXPERIMENT_ID",):
        monkeypatch.delenv(name, raising=False)


def test_outside_a_run_logging_prints(capsys, tmp_path):
    run = OfflineRun()
    assert isinstance(Run.get_context(), OfflineRun) and run.id.startswith("OfflineRun_")
    assert Run.get_context() is Run.get_context()
    run.log("loss", 0.5)
    run.log("loss", 0.25, step=2)
    run.log_list("accs", [0.1, 0.2])
    run.log_row("epochs", epoch=1, acc=0.9)
    run.log_row("epochs", epoch=2, acc=0.95)
    run.log_table("results", {"a": [1, 2]})
    image = tmp_path / "p.png"
    image.write_bytes(b"png")
    run.log_image("plot", path=str(image))
    run.tag("stage", "dev")
    run.set_tags({"x": 1})
    run.add_properties({"owner": "me"})
    run.upload_file("outputs/p.png", str(image))
    run.flush()
    out = capsys.readouterr().out
    assert "Attempted to log scalar metric loss:\n0.5" in out
    assert "loss (step 2)" in out and "Attempted to log row metric epochs" in out
    assert "Attempted to upload file outputs/p.png (3 bytes)" in out
    assert run.get_metrics() == {"loss": [0.5, 0.25], "accs": [0.1, 0.2],
                                 "epochs": {"epoch": [1, 2], "acc": [0.9, 0.95]},
                                 "results": {"a": [1, 2]}, "plot": "images/plot/0.png"}
    assert run.get_tags() == {"stage": "dev", "x": "1"}
    assert run.get_status() == "Running" and run.wait_for_completion()["status"] == "Running"
    assert run.get_file_names() == ["images/plot/0.png"]


def test_offline_run_still_checks_values():
    with pytest.raises(TypeError):
        OfflineRun().log("name", "text")


def test_not_offline_when_refused():
    with pytest.raises(RuntimeError, match="TRAINYARD_RUN_ID"):
        Run.get_context(allow_offline=False)


def test_inside_a_run(monkeypatch):
    monkeypatch.setenv("TRAINYARD_RUN_ID", "r1")
    monkeypatch.setenv("TRAINYARD_API_URL", "http://127.0.0.1:8420")
    monkeypatch.setenv("TRAINYARD_WORKSPACE", "vision")
    monkeypatch.setenv("TRAINYARD_TOKEN", "tyd_run")
    run = Run.get_context()
    assert type(run) is Run and run.id == "r1"
    assert Run.get_context() is run
    assert run.workspace.name == "vision" and run.workspace.token == "tyd_run"
    assert run.workspace.url == "http://127.0.0.1:8420"
