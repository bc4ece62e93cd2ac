"""Compute targets' nodes, status, queue and cordoning, and how waiting for a
run shows its place in the queue, against the fake server."""

import json
import threading
import time

import pytest

from conftest import RUN_ID, RUN_PATH, WS, problem, run_view
from trainyard import Run, TrainyardError
from trainyard import _follow
from trainyard.compute import ComputeTarget, ComputeTargetStatus

TARGET = {"id": "t", "name": "gpucluster", "labels": {"vm_size": "8xA100"}, "max_nodes": 4,
          "default_resources": {"gpus": 1, "cpus": 1.0, "memory_mb": 2048},
          "created_at": "2026-11-23T12:00:00Z"}
COMPUTE = f"{WS}/compute/gpucluster"
BUSY = "needs 2 GPUs; the largest free on gpucluster is 1"
PLACEMENT = {"node": "gpu-1", "compute_target": "gpucluster", "gpus": [0, 3], "cpus": 2.0,
             "memory_mb": 4096}


def node(name, state="ready", health="up", gpus=8, free=None, allocated=None, runs=None,
         **extra):
    view = {"id": name, "compute_target": "gpucluster", "name": name,
            "endpoint": "unix:///var/run/docker.sock", "tls": False, "gpu_mode": "simulated",
            "state": state, "state_reason": None, "health": health, "health_reason": None,
            "last_seen_at": None, "engine_version": None,
            "capacity": {"gpus": gpus, "cpus": 32.0, "memory_mb": 262144},
            "created_at": "2026-11-23T12:00:00Z"}
    if free is not None:
        view.update(free=free, allocated=allocated, running_runs=runs or [])
    view.update(extra)
    return view


@pytest.fixture
def target(fake, workspace):
    fake.route("GET", COMPUTE, (200, TARGET))
    return ComputeTarget(workspace, "gpucluster")


def test_get_status_shows_each_node_and_totals(fake, target):
    fake.route("GET", f"{COMPUTE}/nodes", (200, {"items": [
        node("gpu-1", free={"gpus": [0, 4, 7], "cpus": 20.0, "memory_mb": 196608},
             allocated={"gpus": [1, 2, 3, 5, 6], "cpus": 12.0, "memory_mb": 65536},
             runs=["r1", "r2"]),
        node("gpu-2", state="cordoned", free={"gpus": [0, 1], "cpus": 8.0, "memory_mb": 1024},
             allocated={"gpus": [2, 3], "cpus": 8.0, "memory_mb": 1024}, gpus=4,
             runs=["r3"]),
        node("gpu-3", health="down", free={"gpus": [0], "cpus": 1.0, "memory_mb": 1},
             allocated={"gpus": [], "cpus": 0.0, "memory_mb": 0}, gpus=1),
    ]}))
    status = target.get_status()
    assert isinstance(status, ComputeTargetStatus)
    assert status.current_node_count == 3
    assert status.node_state_counts == {"ready": 2, "cordoned": 1, "draining": 0, "down": 0}
    assert status.running_runs == ["r1", "r2", "r3"]
    assert status.capacity == {"gpus": 13, "cpus": 96.0, "memory_mb": 3 * 262144}
    # Only nodes that take runs count as free: not the cordoned one, not the down one.
    assert status.free == {"gpus": 3, "cpus": 20.0, "memory_mb": 196608}
    first = status.nodes[0]
    assert (first["name"], first["state"], first["health"]) == ("gpu-1", "ready", "up")
    assert first["free"]["gpus"] == [0, 4, 7] and first["allocated"]["cpus"] == 12.0
    serialized = status.serialize()
    assert serialized["name"] == "gpucluster" and len(serialized["nodes"]) == 3
    assert json.loads(json.dumps(serialized)) == serialized


def test_get_status_of_a_server_without_allocations(fake, target):
    fake.route("GET", f"{COMPUTE}/nodes", (200, {"items": [node("gpu-1")]}))
    status = target.get_status()
    assert status.free is None and status.running_runs == []
    assert status.nodes[0]["free"] is None and status.nodes[0]["running_runs"] == []
    assert status.capacity["gpus"] == 8
    assert "current_node_count=1" in repr(status)


def test_queue_lists_waiting_runs_in_order(fake, target):
    entries = [{"run_id": "r1", "display_name": "big", "priority": 5,
                "created_at": "2026-11-23T12:00:00Z", "wait_reason": BUSY},
               {"run_id": "r2", "display_name": None, "priority": 0,
                "created_at": "2026-11-23T12:01:00Z", "wait_reason": None}]
    fake.route("GET", f"{COMPUTE}/queue", (200, {"runs": entries}))
    assert target.queue() == entries
    fake.route("GET", f"{COMPUTE}/queue", (200, {"runs": []}))
    assert target.queue() == []


def test_cordon_drain_uncordon_remove_and_get_node(fake, target):
    def set_state(request):
        body = request.json()
        return 200, node(request.path.split("/")[-2], state=body["state"],
                         state_reason=body.get("reason"))

    for name in ("gpu-1", "gpu-2"):
        fake.route("PUT", f"{COMPUTE}/nodes/{name}/state", set_state)
    assert target.cordon("gpu-1", reason="new drivers")["state"] == "cordoned"
    assert target.drain("gpu-2")["state"] == "draining"
    assert target.uncordon("gpu-1")["state"] == "ready"
    assert [r.json() for r in fake.received("PUT", f"{COMPUTE}/nodes/gpu-1/state")] == [
        {"state": "cordoned", "reason": "new drivers"}, {"state": "ready"}]
    assert fake.received("PUT", f"{COMPUTE}/nodes/gpu-2/state")[0].json() == {
        "state": "draining"}

    fake.route("GET", f"{COMPUTE}/nodes/gpu-1", (200, node("gpu-1")))
    assert target.get_node("gpu-1")["name"] == "gpu-1"
    fake.route("DELETE", f"{COMPUTE}/nodes/gpu-2", (204, None))
    target.remove_node("gpu-2")
    assert fake.received("DELETE", f"{COMPUTE}/nodes/gpu-2")
    fake.route("DELETE", f"{COMPUTE}/nodes/nope", problem(404, "not_found", "node not found"))
    with pytest.raises(TrainyardError) as raised:
        target.remove_node("nope")
    assert raised.value.status == 404


def test_register_node_sends_what_the_server_takes(fake, target):
    fake.route("POST", f"{COMPUTE}/nodes", lambda r: (201, node(r.json()["name"])))
    target.register_node("gpu-1", "tcp://10.0.0.7:2376", cpus=32, memory_mb=262144, gpus=8,
                         tls={"ca": "/c", "cert": "/e", "key": "/k"})
    target.register_node("cpu-1", "unix:///var/run/docker.sock", cpus=8, memory_mb=16384)
    first, second = [r.json() for r in fake.received("POST", f"{COMPUTE}/nodes")]
    assert first == {"name": "gpu-1", "endpoint": "tcp://10.0.0.7:2376", "cpus": 32,
                     "memory_mb": 262144, "gpus": 8, "gpu_mode": "nvidia",
                     "tls": {"ca": "/c", "cert": "/e", "key": "/k"}}
    assert second["gpu_mode"] == "none" and second["gpus"] == 0 and "tls" not in second


def test_the_queue_watch_says_each_new_reason_then_the_placement():
    watch = _follow.QueueWatcher()
    assert watch.observe(run_view("Queued", wait_reason=None, placement=None)) == ([], False)
    assert watch.observe(run_view("Queued", wait_reason=BUSY)) == (
        [f"==> Queued: {BUSY}"], False)
    assert watch.observe(run_view("Queued", wait_reason=BUSY)) == ([], False)
    assert watch.observe(run_view("Queued", wait_reason="no ready node")) == (
        ["==> Queued: no ready node"], False)
    assert watch.observe(run_view("Preparing", placement=PLACEMENT)) == (
        ["==> placed on gpu-1 (GPUs 0,3)"], True)
    # A run without a compute target (or a server without these fields).
    assert _follow.QueueWatcher().observe(run_view("Running")) == ([], True)
    assert _follow.placement_text({"node": "cpu-1", "gpus": []}) == "cpu-1"
    assert _follow.placement_text({"node": "g", "gpus": [5]}) == "g (GPU 5)"


class _Stream(list):
    """Server-Sent Events written one by one, each after its gate (a callable
    that returns once the test may go on)."""

    def __init__(self, steps):
        super().__init__([b""])  # the fake server streams lists of bytes
        self.steps = steps

    def __iter__(self):
        for gate, chunk in self.steps:
            gate()
            yield chunk


def _event(name, data):
    return f"event: {name}\ndata: {data}\n\n".encode()


def test_wait_prints_why_a_queued_run_waits_and_where_it_went(fake, workspace, capsys,
                                                             monkeypatch):
    monkeypatch.setattr(_follow, "QUEUE_POLL", 0.05)
    state = {"phase": "busy", "reads": {}}
    lock = threading.Condition()
    views = {
        "busy": run_view("Queued", wait_reason=BUSY, placement=None),
        "no node": run_view("Queued", wait_reason="gpucluster has no ready node",
                            placement=None),
        "placed": run_view("Preparing", wait_reason=None, placement=PLACEMENT),
        "done": run_view("Completed", wait_reason=None, placement=PLACEMENT, exit_code=0),
    }

    def get_run(request):
        with lock:
            phase = state["phase"]
            state["reads"][phase] = state["reads"].get(phase, 0) + 1
            lock.notify_all()
        return 200, views[phase]

    def after_reads(phase, count, then=None):
        def gate():
            with lock:
                assert lock.wait_for(lambda: state["reads"].get(phase, 0) >= count, timeout=10)
                if then:
                    state["phase"] = then
            time.sleep(0.1)  # the watcher prints what it read
        return gate

    def go_to(phase):
        def gate():
            with lock:
                state["phase"] = phase
        return gate

    line = json.dumps({"source": "stdout", "seq": 0, "at": "t", "line": "hello"})
    fake.route("GET", RUN_PATH, get_run)
    fake.route("GET", f"{RUN_PATH}/logs/follow", (200, _Stream([
        (lambda: None, _event("status", "Queued")),
        # Two looks with the same reason (said once), then a new reason.
        (after_reads("busy", 3, then="no node"), b": keep-alive\n\n"),
        (after_reads("no node", 1), _event("status", "Preparing")),
        # The run is placed once the stream has said Preparing.
        (lambda: (go_to("placed")(), after_reads("placed", 1)()), _event("line", line)),
        (go_to("done"), _event("status", "Completed")),
        (lambda: None, _event("end", "Completed")),
    ])))
    details = Run(None, RUN_ID, _workspace=workspace).wait_for_completion(show_output=True,
                                                                          timeout=30)
    assert details["status"] == "Completed" and details["placement"] == PLACEMENT
    out = capsys.readouterr().out
    said = [text for text in out.splitlines() if text.startswith("==>")]
    assert said == ["==> Queued", f"==> Queued: {BUSY}",
                    "==> Queued: gpucluster has no ready node", "==> Preparing",
                    "==> placed on gpu-1 (GPUs 0,3)", "==> Completed"]
    assert "hello\n" in out


def test_wait_reads_nothing_more_for_runs_never_queued(fake, workspace, capsys):
    fake.route("GET", RUN_PATH, (200, run_view("Completed", exit_code=0)))
    fake.route("GET", f"{RUN_PATH}/logs/follow", (200, [
        _event("status", "Running"), _event("status", "Completed"), _event("end", "Completed")]))
    details = Run(None, RUN_ID, _workspace=workspace).wait_for_completion(show_output=True)
    assert details["wait_reason"] is None and details["placement"] is None
    out = capsys.readouterr().out
    assert "Queued" not in out and "placed" not in out
    assert len(fake.received("GET", RUN_PATH)) == 2  # before and after following


def test_get_details_has_the_wait_reason_and_placement(fake, workspace):
    fake.route("GET", RUN_PATH, (200, run_view("Queued", wait_reason=BUSY, placement=None)))
    details = Run(None, RUN_ID, _workspace=workspace).get_details()
    assert details["wait_reason"] == BUSY and details["placement"] is None
