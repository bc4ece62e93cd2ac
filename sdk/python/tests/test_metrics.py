"""The background metrics sender: batching, retries, refusals, exit flush."""

import json
import math
import os
import re
import subprocess
import sys
import textwrap
import time

import pytest

from conftest import RUN_ID, RUN_PATH, problem
from trainyard import MetricsError, Run, Workspace
from trainyard._metrics import MetricsSender, format_timestamp

METRICS = f"{RUN_PATH}/metrics"
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
SDK_ROOT = os.path.join(os.path.dirname(__file__), "..")


def accept(request):
    return 202, {"accepted": len(request.json()["metrics"])}


def sent_entries(fake):
    entries = []
    for request in fake.received("POST", METRICS):
        entries.extend(request.json()["metrics"])
    return entries


def delivered(fake):
    """Entries of the POSTs that were answered 2xx (the fake answers in order)."""
    return [e for r in fake.received("POST", METRICS) for e in r.json()["metrics"]]


def make_run(workspace, **sender_settings):
    run = Run(None, RUN_ID, _workspace=workspace)
    sender = run._get_sender()
    settings = {"interval": 0.05, "backoff_initial": 0.01, "backoff_max": 0.05}
    settings.update(sender_settings)
    for key, value in settings.items():
        setattr(sender, key, value)
    return run


def test_points_arrive_in_order_in_batches(fake, workspace):
    fake.route("POST", METRICS, accept)
    run = make_run(workspace)
    for i in range(2500):
        run.log("loss", 1.0 / (i + 1))
    run.log("acc", 0.5, step=7)
    run.flush()
    entries = sent_entries(fake)
    assert len(entries) == 2501
    assert [e["value"] for e in entries[:2500]] == [1.0 / (i + 1) for i in range(2500)]
    assert all(e["step"] is None and e["name"] == "loss" for e in entries[:2500])
    assert entries[-1]["step"] == 7
    assert all(TIMESTAMP.match(e["timestamp"]) for e in entries)
    assert set(entries[0]) == {"name", "value", "step", "timestamp"}
    posts = fake.received("POST", METRICS)
    assert posts[0].headers["content-type"] == "application/json"
    assert posts[0].headers["authorization"] == "Bearer tyd_test"


def test_no_request_holds_more_than_the_limit(fake):
    fake.route("POST", METRICS, accept)
    http = Workspace(fake.url, "ws", "t")._http
    sender = MetricsSender(lambda body: http.request("POST", METRICS, data=body,
                                                     content_type="application/json"),
                           interval=60, batch_size=10**9, max_body_bytes=10**9)
    for i in range(25_000):
        sender.append(("m", None, i, i, time.time()))
    sender.flush(timeout=30)
    sizes = [len(r.json()["metrics"]) for r in fake.received("POST", METRICS)]
    assert sizes == [10_000, 10_000, 5_000]


def test_bodies_stay_under_the_byte_limit(fake, workspace):
    fake.route("POST", METRICS, accept)
    run = make_run(workspace, max_body_bytes=2_000)
    for i in range(300):
        run.log("a_rather_long_metric_name", i)
    run.flush()
    posts = fake.received("POST", METRICS)
    assert len(posts) > 1 and all(len(p.body) <= 2_000 + 20 for p in posts)
    assert len(sent_entries(fake)) == 300


def test_sent_in_the_background_every_interval(fake, workspace):
    fake.route("POST", METRICS, accept)
    run = make_run(workspace, interval=0.1)
    run.log("loss", 0.3)
    deadline = time.time() + 5
    while not fake.received("POST", METRICS) and time.time() < deadline:
        time.sleep(0.02)
    assert len(sent_entries(fake)) == 1


def test_a_full_batch_is_sent_at_once(fake, workspace):
    fake.route("POST", METRICS, accept)
    run = make_run(workspace, interval=60, batch_size=10)
    for i in range(10):
        run.log("loss", i)
    deadline = time.time() + 5
    while not fake.received("POST", METRICS) and time.time() < deadline:
        time.sleep(0.02)
    assert len(sent_entries(fake)) == 10


@pytest.mark.parametrize("failure", [
    problem(503, "unavailable"),
    problem(500, "internal"),
    problem(429, "too_many_requests") + (),
    "drop",
])
def test_transient_failures_are_retried_without_loss(fake, workspace, failure):
    fake.sequence("POST", METRICS, [failure, failure, (202, {"accepted": 3})])
    run = make_run(workspace)
    for i in range(3):
        run.log("loss", i)
    run.flush(timeout_seconds=10)
    posts = fake.received("POST", METRICS)
    assert len(posts) == 3
    assert [e["value"] for e in posts[-1].json()["metrics"]] == [0, 1, 2]
    assert posts[0].body == posts[-1].body  # the same points, retried as they were


def test_retry_after_is_honoured(fake, workspace):
    too_many = problem(429, "too_many_requests")
    too_many[2]["Retry-After"] = "0.3"
    fake.sequence("POST", METRICS, [too_many, (202, {"accepted": 1})])
    run = make_run(workspace)
    run.log("loss", 1)
    started = time.monotonic()
    run.flush(timeout_seconds=10)
    assert time.monotonic() - started >= 0.25
    assert len(fake.received("POST", METRICS)) == 2


def test_a_permanent_refusal_is_raised_on_flush_with_its_points(fake, workspace):
    fake.sequence("POST", METRICS, [problem(403, "forbidden", "the run has ended"),
                                    (202, {"accepted": 1})])
    run = make_run(workspace)
    run.log("loss", 1.5, step=1)
    run.log_list("l", [1, 2])
    with pytest.raises(MetricsError) as raised:
        run.flush()
    assert raised.value.cause.code == "forbidden"
    assert [e["name"] for e in raised.value.entries] == ["loss", "l"]
    assert raised.value.entries[0]["value"] == 1.5
    run.log("loss", 2)
    run.flush()  # the error was reported once; later points go through
    assert len(fake.received("POST", METRICS)) == 2


def test_a_refusal_naming_one_entry_refuses_only_that_one(fake, workspace):
    def handler(request):
        names = [e["name"] for e in request.json()["metrics"]]
        if "bad" in names:
            return problem(422, "invalid_field", "bad name",
                           f"metrics[{names.index('bad')}].name")
        return 202, {"accepted": len(names)}

    fake.route("POST", METRICS, handler)
    run = make_run(workspace)
    for name in ["a", "b", "bad", "c"]:
        run.log(name, 1)
    with pytest.raises(MetricsError) as raised:
        run.flush()
    assert [e["name"] for e in raised.value.entries] == ["bad"]
    last = fake.received("POST", METRICS)[-1].json()["metrics"]
    assert [e["name"] for e in last] == ["a", "b", "c"]


def test_batch_too_large_is_split(fake, workspace):
    def handler(request):
        count = len(request.json()["metrics"])
        if count > 40:
            return problem(400, "batch_too_large", "at most 40 entries")
        return 202, {"accepted": count}

    fake.route("POST", METRICS, handler)
    run = make_run(workspace)
    for i in range(100):
        run.log("m", i)
    run.flush()
    accepted = [e["value"] for r in fake.received("POST", METRICS)
                if len(r.json()["metrics"]) <= 40 for e in r.json()["metrics"]]
    assert accepted == list(range(100))


def test_flush_times_out_but_keeps_the_points(fake, workspace):
    fake.route("POST", METRICS, problem(503, "unavailable"))
    run = make_run(workspace)
    run.log("m", 1)
    with pytest.raises(TimeoutError, match="stay buffered"):
        run.flush(timeout_seconds=0.3)
    assert run._sender.pending == 1
    fake.route("POST", METRICS, accept)
    run.flush(timeout_seconds=10)
    assert run._sender.pending == 0
    assert sent_entries(fake)[-1]["value"] == 1


def test_special_floats_and_kinds(fake, workspace):
    fake.route("POST", METRICS, accept)
    run = make_run(workspace)
    run.log("nan", float("nan"))
    run.log("inf", math.inf)
    run.log("ninf", -math.inf)
    run.log("flag", True)
    run.log_list("accs", [0.1, float("nan")])
    run.log_row("epoch_row", epoch=1, acc=0.9)
    run.log_table("results", {"col_a": [1, 2], "col_b": (3, 4)})
    run.flush()
    entries = sent_entries(fake)
    assert all(TIMESTAMP.match(e.pop("timestamp")) for e in entries)
    assert [e["value"] for e in entries[:4]] == ["NaN", "Infinity", "-Infinity", 1]
    assert entries[4] == {"name": "accs", "kind": "list", "value": [0.1, "NaN"]}
    assert entries[5] == {"name": "epoch_row", "kind": "row", "value": {"epoch": 1, "acc": 0.9}}
    assert entries[6] == {"name": "results", "kind": "table",
                          "value": {"col_a": [1, 2], "col_b": [3, 4]}}
    body = fake.received("POST", METRICS)[0].body
    assert b"NaN\"" in body and b": NaN" not in body and b":NaN" not in body


def test_log_image_uploads_then_logs(fake, workspace, tmp_path):
    fake.route("POST", METRICS, accept)
    fake.route("PUT", f"{RUN_PATH}/files/upload", (200, {"path": "x"}))
    image = tmp_path / "plot.png"
    image.write_bytes(b"\x89PNG fake")

    class Figure:
        def savefig(self, stream, format):
            stream.write(b"\x89PNG figure " + format.encode())

    run = make_run(workspace)
    run.log_image("my plot", path=str(image))
    run.log_image("my plot", plot=Figure())
    run.flush()
    uploads = fake.received("PUT", f"{RUN_PATH}/files/upload")
    assert [u.query["path"][0] for u in uploads] == ["images/my_plot/0.png",
                                                     "images/my_plot/1.png"]
    assert uploads[0].body == b"\x89PNG fake" and uploads[1].body == b"\x89PNG figure png"
    assert uploads[0].headers["content-type"] == "application/octet-stream"
    assert [e["value"] for e in sent_entries(fake)] == [{"path": "images/my_plot/0.png"},
                                                         {"path": "images/my_plot/1.png"}]


def test_bad_values_raise_where_they_are_logged(workspace):
    run = Run(None, RUN_ID, _workspace=workspace)
    with pytest.raises(TypeError, match="tag"):
        run.log("optimizer", "adam")
    with pytest.raises(TypeError):
        run.log("", 1)
    with pytest.raises(TypeError):
        run.log_image("x")
    with pytest.raises(TypeError):
        run.log_table("t", [1, 2])
    with pytest.raises(ValueError, match="same length"):
        run.log_table("t", {"a": [1], "b": [1, 2]})
    with pytest.raises(TypeError, match="nested"):
        run.log_list("l", [[1], [2]])
    with pytest.raises(TypeError):
        run.log_list("l", "abc")
    with pytest.raises(TypeError, match="nested"):
        run.log_row("r", a=[1, 2])
    with pytest.raises(ValueError, match="250"):
        run.log("x" * 251, 1)
    with pytest.raises(ValueError, match="control"):
        run.log("a\nb", 1)
    assert run._sender is None  # nothing was buffered


def test_numpy_like_values_become_plain():
    class Scalar:
        def item(self):
            return 0.25

    class Array:
        def tolist(self):
            return [1, 2]

    from trainyard._logging import to_number, to_plain
    assert to_number(Scalar()) == 0.25
    assert to_plain({"a": Array(), "b": Scalar()}) == {"a": [1, 2], "b": 0.25}


def test_log_is_cheap(fake, workspace):
    fake.route("POST", METRICS, accept)
    run = make_run(workspace)
    started = time.perf_counter()
    for i in range(50_000):
        run.log("loss", 0.5, step=i)
    per_call = (time.perf_counter() - started) / 50_000
    run.flush()
    assert per_call < 50e-6, f"log() took {per_call * 1e6:.1f} µs"
    assert len(sent_entries(fake)) == 50_000


def test_points_are_flushed_at_exit(fake):
    fake.route("POST", METRICS, accept)
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {os.path.abspath(SDK_ROOT)!r})
        from trainyard import Run
        run = Run.get_context()
        for i in range(1500):
            run.log("loss", i)
        run.log_row("final", acc=0.9)
    """)
    env = dict(os.environ, TRAINYARD_RUN_ID=RUN_ID, TRAINYARD_API_URL=fake.url,
               TRAINYARD_WORKSPACE="ws", TRAINYARD_TOKEN="tyd_run")
    subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=60)
    entries = sent_entries(fake)
    assert len(entries) == 1501 and entries[-1]["kind"] == "row"
    assert fake.received("POST", METRICS)[0].headers["authorization"] == "Bearer tyd_run"


def test_format_timestamp():
    assert format_timestamp(0.1234) == "1970-01-01T00:00:00.123Z"
    assert format_timestamp(1795435200.5) == "2026-11-23T12:00:00.500Z"
    assert json.dumps(format_timestamp(time.time()))
