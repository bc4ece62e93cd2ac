"""Distributed runs against a live server: a TensorFlow-shaped run of two
workers whose ranks print their TF_CONFIG task, and a run whose rank 1 fails.

Needs ``TRAINYARD_TEST_URL`` and ``TRAINYARD_TEST_TOKEN`` (a server
administrator token), a server that executes runs on the machine's Docker
engine (``/var/run/docker.sock``, registered twice as the compute target's nodes)
and the base images ``trainyard/python:3.11-bookworm`` and
``trainyard/busybox:latest``. Ranks get ports from the server's range
(29500-30499) but open none, and the runs are short.
"""

import os
import re
import uuid

import pytest

from trainyard import (Environment, Experiment, PyTorchConfiguration, RunFailedError,
                       ScriptRunConfig, TensorflowConfiguration, Workspace)
from trainyard.compute import AmlCompute, ComputeTarget

URL = os.environ.get("TRAINYARD_TEST_URL")
TOKEN = os.environ.get("TRAINYARD_TEST_TOKEN")
RUN_TIMEOUT = float(os.environ.get("TRAINYARD_TEST_RUN_TIMEOUT", "300"))
ENGINE = "/var/run/docker.sock"

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not (URL and TOKEN), reason=(
        "integration tests need a live server: set TRAINYARD_TEST_URL and "
        "TRAINYARD_TEST_TOKEN (a server administrator token)")),
    pytest.mark.skipif(not os.path.exists(ENGINE), reason=(
        f"distributed runs need the Docker engine at {ENGINE} as the compute target's nodes")),
]

TF_TASK = """\
import json, os
config = json.loads(os.environ["TF_CONFIG"])
task = config["task"]
print(f"task={task['type']}:{task['index']} rank={os.environ['TRAINYARD_RANK']} "
      f"of {os.environ['TRAINYARD_WORLD_SIZE']} workers={len(config['cluster']['worker'])}",
      flush=True)
os.makedirs("outputs", exist_ok=True)
with open("outputs/task.txt", "w") as handle:
    handle.write(f"{task['type']}:{task['index']}")
"""


@pytest.fixture(scope="module")
def ws():
    return Workspace.create(f"sdk-dist-{uuid.uuid4().hex[:12]}", URL, TOKEN,
                            description="trainyard SDK distributed tests")


@pytest.fixture(scope="module")
def cluster(ws):
    """A compute target of two nodes, both the machine's engine, with simulated
    GPUs: each of a run's nodes goes to a node of its own."""
    config = AmlCompute.provisioning_configuration(max_nodes=2, gpus=0, cpus=0.5,
                                                   memory_mb=512)
    target = ComputeTarget.create(ws, "cluster", config)
    for node in ("node-a", "node-b"):
        target.register_node(node, f"unix://{ENGINE}", cpus=4, memory_mb=8192, gpus=2,
                             gpu_mode="simulated")
    return target


def test_tensorflow_workers_print_their_task_with_their_rank(ws, cluster, tmp_path, capsys):
    (tmp_path / "task.py").write_text(TF_TASK)
    env = Environment("python-dist")
    env.docker.base_image = "trainyard/python:3.11-bookworm"
    src = ScriptRunConfig(str(tmp_path), script="task.py", compute_target=cluster,
                          environment=env, max_run_duration_seconds=120,
                          distributed_job_config=TensorflowConfiguration(
                              worker_count=2, parameter_server_count=0))
    run = Experiment(ws, "tf-workers").submit(src)
    details = run.wait_for_completion(show_output=True, timeout=RUN_TIMEOUT)
    assert details["status"] == "Completed"
    out = capsys.readouterr().out
    for rank in (0, 1):
        assert f"[rank {rank}] task=worker:{rank} rank={rank} of 2 workers=2\n" in out, out
    spec = details["spec"]
    assert spec["node_count"] == 2 and spec.get("process_count_per_node", 1) == 1
    assert (spec["distribution"]["type"], spec["distribution"]["worker_count"]) == (
        "tensorflow", 2)
    ranks = run.get_ranks()
    assert sorted(r["node"] for r in ranks) == ["node-a", "node-b"]
    assert all(29500 <= r["port"] < 30500 for r in ranks) and ranks[0]["port"] != ranks[1]["port"]
    files = run.get_file_names()
    assert "outputs/task.txt" in files and "outputs/rank-1/task.txt" in files


def test_a_failing_rank_fails_the_run_and_is_named(ws, cluster, capsys):
    env = Environment("busybox-dist")
    env.docker.base_image = "trainyard/busybox:latest"
    command = ('echo "rank $TRAINYARD_RANK up"; '
               'if [ "$TRAINYARD_RANK" = 1 ]; then echo "rank 1 gives up" >&2; exit 1; fi; '
               'sleep 60')
    src = ScriptRunConfig(None, command=command, compute_target="cluster", environment=env,
                          max_run_duration_seconds=120,
                          distributed_job_config=PyTorchConfiguration(process_count=2,
                                                                      node_count=2))
    run = Experiment(ws, "failing-rank").submit(src)
    with pytest.raises(RunFailedError) as raised:
        run.wait_for_completion(show_output=True, timeout=RUN_TIMEOUT)
    assert raised.value.status == "Failed"
    assert re.search(r"\brank 1\b", raised.value.error or ""), raised.value.error
    assert "rank 1" in str(raised.value)
    out = capsys.readouterr().out
    assert "[rank 1] rank 1 up\n" in out and "[rank 1] rank 1 gives up\n" in out, out
    assert "==> Failed" in out
