"""Distributed runs without a server: the configurations, the body they make,
what is refused before any request, rank prefixes and rank placement."""

import io
import json

import pytest

from conftest import RUN_ID, RUN_PATH, WS, run_view
from trainyard import (Experiment, MpiConfiguration, PyTorchConfiguration, Run,
                       RunFailedError, ScriptRunConfig, TensorflowConfiguration)
from trainyard._follow import QueueWatcher, line_prefix, placement_text, print_line

EXPERIMENT = {"id": "e", "workspace_id": "w", "name": "exp", "tags": {}, "archived": False,
              "created_at": "2026-11-23T12:00:00Z"}


def body(config=None, **kwargs):
    """The run body a command-only ScriptRunConfig makes."""
    kwargs.setdefault("compute_target", "cluster")
    src = ScriptRunConfig(None, command=["python", "-c", "pass"],
                          distributed_job_config=config, **kwargs)
    src._check()
    return src._run_body("exp", None)


def shape(config, **kwargs):
    made = body(config, **kwargs)
    return made.get("node_count"), made.get("process_count_per_node"), made.get("distribution")


def test_the_names_import_from_where_azure_code_finds_them():
    import trainyard.core as core
    import trainyard.runconfig as runconfig
    import trainyard.script_run_config as script_run_config
    for module in (core, runconfig, script_run_config):
        assert module.MpiConfiguration is MpiConfiguration
        assert module.PyTorchConfiguration is PyTorchConfiguration
        assert module.TensorflowConfiguration is TensorflowConfiguration


def test_mpi_maps_nodes_and_processes_per_node():
    assert shape(MpiConfiguration()) == (1, 1, {"type": "mpi"})
    assert shape(MpiConfiguration(process_count_per_node=4, node_count=2)) == (
        2, 4, {"type": "mpi"})
    config = MpiConfiguration(2, 3)
    assert (config.process_count_per_node, config.node_count) == (2, 3)
    assert shape(config, node_count=5) == (5, 2, {"type": "mpi"})  # run_config.node_count


def test_pytorch_splits_the_processes_over_the_nodes():
    assert shape(PyTorchConfiguration()) == (1, 1, {"type": "pytorch"})
    assert shape(PyTorchConfiguration(process_count=8, node_count=2)) == (
        2, 4, {"type": "pytorch"})
    assert shape(PyTorchConfiguration(communication_backend="Gloo", process_count=4)) == (
        1, 4, {"type": "pytorch"})
    # By default one process per node, also for the ScriptRunConfig's node count.
    assert shape(PyTorchConfiguration(node_count=3)) == (3, 1, {"type": "pytorch"})
    assert shape(PyTorchConfiguration(), node_count=2) == (2, 1, {"type": "pytorch"})
    assert shape(PyTorchConfiguration(process_count=8), node_count=4) == (
        4, 2, {"type": "pytorch"})
    config = PyTorchConfiguration(process_count=6, node_count=3)
    assert (config.process_count_per_node, config.communication_backend) == (2, "Nccl")


def test_tensorflow_puts_each_task_on_a_node_by_default():
    assert shape(TensorflowConfiguration()) == (
        2, 1, {"type": "tensorflow", "worker_count": 1, "parameter_server_count": 1})
    assert shape(TensorflowConfiguration(worker_count=2, parameter_server_count=0)) == (
        2, 1, {"type": "tensorflow", "worker_count": 2, "parameter_server_count": 0})
    assert shape(TensorflowConfiguration(3, 1, chief=True)) == (
        5, 1, {"type": "tensorflow", "worker_count": 3, "parameter_server_count": 1,
               "chief": True})
    assert TensorflowConfiguration(4, 2).node_count == 6
    # ScriptRunConfig(node_count=…) packs the tasks on fewer nodes.
    assert shape(TensorflowConfiguration(4, 0), node_count=2)[:2] == (2, 2)


def test_the_whole_body_of_a_distributed_run():
    made = body(MpiConfiguration(process_count_per_node=2, node_count=2),
                resources={"gpus": 4, "cpus": 8}, environment="mpi")
    assert made == {"experiment": "exp", "command": ["python", "-c", "pass"],
                    "environment": {"name": "mpi"}, "compute_target": "cluster",
                    "resources": {"gpus": 4, "cpus": 8}, "node_count": 2,
                    "process_count_per_node": 2, "distribution": {"type": "mpi"}}
    # Without a configuration nothing distributed is sent.
    plain = body(None, node_count=1)
    assert not {"node_count", "process_count_per_node", "distribution"} & set(plain)


@pytest.mark.parametrize("make, argument", [
    (lambda: MpiConfiguration(process_count_per_node=0), "process_count_per_node"),
    (lambda: MpiConfiguration(process_count_per_node=65), "process_count_per_node"),
    (lambda: MpiConfiguration(node_count=0), "node_count"),
    (lambda: MpiConfiguration(node_count=65), "node_count"),
    (lambda: MpiConfiguration(node_count="2"), "node_count"),
    (lambda: MpiConfiguration(node_count=True), "node_count"),
    (lambda: MpiConfiguration(node_count=1.5), "node_count"),
    (lambda: PyTorchConfiguration(process_count=3, node_count=2), "process_count"),
    (lambda: PyTorchConfiguration(process_count=0), "process_count"),
    (lambda: PyTorchConfiguration(node_count=-1), "node_count"),
    (lambda: PyTorchConfiguration(communication_backend="carrier-pigeon"),
     "communication_backend"),
    (lambda: TensorflowConfiguration(worker_count=-1), "worker_count"),
    (lambda: TensorflowConfiguration(worker_count=0, parameter_server_count=1),
     "worker_count"),
    (lambda: TensorflowConfiguration(parameter_server_count=None), "parameter_server_count"),
    (lambda: TensorflowConfiguration(worker_count=65, parameter_server_count=0),
     "node_count"),
])
def test_bad_configurations_name_the_argument(make, argument):
    with pytest.raises(ValueError, match=argument):
        make()


@pytest.mark.parametrize("config, kwargs, argument", [
    (None, {"node_count": 2}, "distributed_job_config"),
    (MpiConfiguration(), {"node_count": 0}, "node_count"),
    (MpiConfiguration(16), {"node_count": 17}, "at most 256"),
    (PyTorchConfiguration(process_count=4), {"node_count": 3}, "process_count"),
    (TensorflowConfiguration(3, 0), {"node_count": 2}, "node_count"),
    (MpiConfiguration(2), {"compute_target": None}, "compute_target"),
    (MpiConfiguration(2), {"resources": {"gpus": 3}}, "multiple of process_count_per_node"),
])
def test_bad_run_shapes_are_refused_before_any_request(fake, workspace, config, kwargs,
                                                       argument):
    fake.route("PUT", f"{WS}/experiments/exp", (201, EXPERIMENT))
    experiment = Experiment(workspace, "exp")
    settings = dict({"compute_target": "cluster"}, **kwargs)
    with pytest.raises(ValueError, match=argument):
        src = ScriptRunConfig(None, command="true", distributed_job_config=config, **settings)
        experiment.submit(src)
    assert not fake.received("POST", f"{WS}/runs")


def test_a_configuration_changed_after_the_fact_is_checked_at_submit(fake, workspace):
    fake.route("PUT", f"{WS}/experiments/exp", (201, EXPERIMENT))
    config = PyTorchConfiguration(process_count=4, node_count=2)
    src = ScriptRunConfig(None, command="true", compute_target="c",
                          distributed_job_config=config)
    config.process_count = 5
    with pytest.raises(ValueError, match="process_count"):
        Experiment(workspace, "exp").submit(src)
    with pytest.raises(TypeError, match="distributed_job_config"):
        ScriptRunConfig(None, command="true", distributed_job_config={"type": "mpi"})
    assert not fake.received("POST", f"{WS}/runs")


def test_submit_sends_the_shape(fake, workspace):
    fake.route("PUT", f"{WS}/experiments/exp", (201, EXPERIMENT))
    fake.route("POST", f"{WS}/runs", (201, run_view()))
    src = ScriptRunConfig(None, command=["sh", "-c", "echo $TRAINYARD_RANK"],
                          compute_target="cluster",
                          distributed_job_config=TensorflowConfiguration(2, 0))
    assert "TensorflowConfiguration(worker_count=2" in repr(src)
    Experiment(workspace, "exp").submit(src)
    sent = fake.received("POST", f"{WS}/runs")[0].json()
    assert (sent["node_count"], sent["process_count_per_node"], sent["distribution"]) == (
        2, 1, {"type": "tensorflow", "worker_count": 2, "parameter_server_count": 0})


def test_rank_sources_are_printed_after_their_rank():
    assert line_prefix("stdout") == ""
    assert line_prefix("stdout/rank-0") == "[rank 0] "
    assert line_prefix("stderr/rank-12") == "[rank 12] "
    assert line_prefix("stderr") == "[stderr] "
    assert line_prefix("logs/rank-1/train.log") == "[logs/rank-1/train.log] "
    assert line_prefix("stdout/rank-x") == "[stdout/rank-x] "
    out = io.StringIO()
    print_line({"source": "stdout/rank-1", "line": "hello"}, out)
    print_line({"source": "stdout", "line": "plain"}, out)
    assert out.getvalue() == "[rank 1] hello\nplain\n"


def sse(*events):
    return [f"event: {name}\ndata: {data}\n\n".encode() for name, data in events]


def test_wait_shows_every_rank_and_the_failing_one(fake, workspace, capsys):
    error = "rank 1 (node node-a) exited with code 1; the other ranks were stopped"
    fake.route("GET", RUN_PATH, (200, run_view("Failed", exit_code=1, error=error)))
    lines = [{"source": f"{stream}/rank-{rank}", "seq": 0, "at": "t", "line": f"{stream} {rank}"}
             for rank in (0, 1) for stream in ("stdout", "stderr")]
    fake.route("GET", f"{RUN_PATH}/logs/follow", (200, sse(
        ("status", "Running"), *[("line", json.dumps(line)) for line in lines],
        ("status", "Failed"), ("end", "Failed"))))
    with pytest.raises(RunFailedError, match="rank 1") as raised:
        Run(None, RUN_ID, _workspace=workspace).wait_for_completion(show_output=True,
                                                                   timeout=10)
    assert raised.value.error == error
    out = capsys.readouterr().out
    for rank in (0, 1):
        assert f"[rank {rank}] stdout {rank}\n" in out
        assert f"[rank {rank}] stderr {rank}\n" in out
    assert f"error: {error}" in out


RANKS = [{"node_id": "n1", "node": "node-a", "gpus": [0], "gpu_mode": "simulated",
          "cpus": 1.0, "memory_mb": 512, "address": "127.0.0.1", "port": 29500},
         {"node_id": "n1", "node": "node-a", "gpus": [1], "gpu_mode": "simulated",
          "cpus": 1.0, "memory_mb": 512, "address": "127.0.0.1", "port": 29501},
         {"node_id": "n2", "node": "node-b", "gpus": [], "gpu_mode": "simulated",
          "cpus": 1.0, "memory_mb": 512, "address": "127.0.0.1", "port": 29502}]


def test_placement_shows_the_ranks(fake, workspace):
    placement = {"node": "node-a", "compute_target": "cluster", "gpus": [0], "cpus": 1.0,
                 "memory_mb": 512, "ranks": RANKS}
    assert placement_text(placement) == \
        "3 ranks: node-a (ranks 0-1, GPUs 0,1), node-b (rank 2)"
    assert placement_text({"node": "gpu-1", "gpus": [0, 3]}) == "gpu-1 (GPUs 0,3)"
    lines, done = QueueWatcher().observe({"status": "Starting", "placement": placement})
    assert lines == ["==> placed on 3 ranks: node-a (ranks 0-1, GPUs 0,1), node-b (rank 2)"]
    assert done

    fake.sequence("GET", RUN_PATH, [(200, run_view("Queued")),
                                    (200, run_view("Running", placement=placement))])
    run = Run(None, RUN_ID, _workspace=workspace)
    assert run.get_ranks() == []
    ranks = run.get_ranks()
    assert [(r["node"], r["port"]) for r in ranks] == [
        ("node-a", 29500), ("node-a", 29501), ("node-b", 29502)]
    assert run.get_details()["placement"]["ranks"] == RANKS


def test_rank_outputs_are_sent_when_chosen_and_checked():
    config = MpiConfiguration(node_count=2)
    assert body(config, rank_outputs="rank0")["rank_outputs"] == "rank0"
    assert "rank_outputs" not in body(config)
    with pytest.raises(ValueError, match="rank_outputs"):
        body(config, rank_outputs="some")
