"""A run submitted through Trainyard whose script uses only ``mlflow``: the
executor's MLFLOW_* variables point the client at the run itself, so its
params, metrics, tags and artifacts land in that Trainyard run, and the
executor, not the client, decides how it ends."""

import os
import textwrap

from mlflow import MlflowClient

from trainyard import Environment, Experiment, ScriptRunConfig

RUN_TIMEOUT = float(os.environ.get("TRAINYARD_TEST_MLFLOW_RUN_TIMEOUT", "900"))
SCRIPT = textwrap.dedent("""
    import mlflow

    with mlflow.start_run():
        mlflow.log_param("lr", "0.05")
        for step in range(3):
            mlflow.log_metric("acc", 0.5 + step / 10, step=step)
        mlflow.set_tag("via", "mlflow")
        mlflow.log_text("hello", "notes/hello.txt")
    print("logged with mlflow", mlflow.__version__)
""")


def test_a_submitted_run_that_uses_only_mlflow(tmp_path, trainyard_ws):
    (tmp_path / "train.py").write_text(SCRIPT)
    env = Environment("mlflow-client")
    # The client alone; the base image has Python 3.11.
    env.pip_packages = ["mlflow-skinny==3.17.2"]
    env = env.register(trainyard_ws)
    config = ScriptRunConfig(source_directory=str(tmp_path), script="train.py", environment=env)
    run = Experiment(trainyard_ws, "submitted-with-mlflow").submit(config)
    run.wait_for_completion(show_output=True, timeout=RUN_TIMEOUT)

    assert run.get_status() == "Completed"
    assert run.get_metrics()["acc"] == [0.5, 0.6, 0.7]
    assert run.get_properties() == {"lr": "0.05"}
    assert run.get_tags()["via"] == "mlflow"
    assert "notes/hello.txt" in run.get_file_names()
    seen = MlflowClient().get_run(run.id)
    assert seen.info.status == "FINISHED" and seen.data.metrics["acc"] == 0.7
