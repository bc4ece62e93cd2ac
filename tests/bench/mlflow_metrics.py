#!/usr/bin/env python3
"""Metric ingestion through MLflow's REST API: the MLflow side of metrics-bench.

Sends --points scalar points through POST /api/2.0/mlflow/runs/log-batch from --writers
concurrent writers, each logging to its own run in batches of --batch metrics (--keys names
x batch/keys steps, the shape of tests/bench/metrics_bench.rs and of tracking_api_bench.py's
row c). Request bodies are built before the clock starts; each writer first sends --warmup
batches to a run of its own that is not timed. --rounds timed rounds follow, each on new runs;
the median counts. After each round every run's history is read back and must hold exactly
the points sent.

Standard library only. Prints a Markdown table; --out FILE also writes key=value lines.
With --server-pid the CPU of that process tree (the MLflow server) is reported, beside this
client's and PostgreSQL's (with --postmaster-pid and --database, only that cluster's shared
processes and that database's backends; otherwise every process named "postgres").

    python3 tests/bench/mlflow_metrics.py --base-url http://127.0.0.1:5000 --points 50000
"""

import argparse
import http.client
import json
import os
import random
import resource
import sys
import threading
import time
import urllib.parse

API = "/api/2.0/mlflow/"
CLK_TCK = os.sysconf("SC_CLK_TCK")


class Client:
    """A JSON client over one keep-alive connection; one per thread."""

    def __init__(self, base_url):
        u = urllib.parse.urlsplit(base_url)
        self.host, self.port = u.hostname, u.port or 80
        self.conn = None

    def call(self, method, endpoint, body=None, query=None):
        path = API + endpoint + ("?" + urllib.parse.urlencode(query) if query else "")
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if isinstance(body, dict):
            body = json.dumps(body, separators=(",", ":")).encode()
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=300)
            try:
                self.conn.request(method, path, body=body, headers=headers)
                resp = self.conn.getresponse()
                raw = resp.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.conn.close()
                self.conn = None
                if attempt == 0:
                    continue
                raise
            if resp.status != 200:
                raise RuntimeError(f"{method} {endpoint}: HTTP {resp.status} {raw[:300]!r}")
            return json.loads(raw) if raw else {}

    def post(self, endpoint, body):
        return self.call("POST", endpoint, body)


def writer_batches(writer, points, batch, keys):
    """Request bodies (bytes) for one writer, without the run id; and the points they hold."""
    rng = random.Random(writer)
    base_ms = int(time.time() * 1000)
    steps_per_batch = max(1, batch // keys)
    batches, left, step = [], points, 0
    while left > 0:
        size = min(left, batch)
        metrics = []
        for _ in range(steps_per_batch):
            for k in range(keys):
                if len(metrics) == size:
                    break
                metrics.append({"key": f"m{k}", "value": rng.random(),
                                "timestamp": base_ms + step, "step": step})
            step += 1
            if len(metrics) == size:
                break
        left -= len(metrics)
        batches.append(metrics)
    return batches


def body(run_id, metrics):
    return json.dumps({"run_id": run_id, "metrics": metrics}, separators=(",", ":")).encode()


def proc_cpu(pid):
    """(parent pid, name, utime + stime in seconds) of a process, or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return None
    name = text[text.find("(") + 1:text.rfind(")")]
    fields = text[text.rfind(")") + 2:].split()
    return int(fields[1]), name, (int(fields[11]) + int(fields[12])) / CLK_TCK


PG_HELPERS = ("checkpointer", "background writer", "walwriter", "autovacuum launcher",
              "logical replication launcher", "archiver")


def is_our_postgres(pid, ppid, postmaster, database):
    """The cluster's postmaster, its shared helpers and the backends of our database."""
    if pid == postmaster:
        return True
    if ppid != postmaster:
        return False
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            title = f.read().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return False
    title = title.removeprefix("postgres: ")
    return title.startswith(PG_HELPERS) or database in title.split()


def cpu_now(server_pid, postmaster=0, database=""):
    """CPU seconds so far: machine busy, the server's process tree, postgres (ours only when
    the postmaster is known, else every process named postgres), this client."""
    with open("/proc/stat") as f:
        ticks = [int(t) for t in f.readline().split()[1:9]]
    machine = (sum(ticks) - ticks[3] - ticks[4]) / CLK_TCK
    procs = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            info = proc_cpu(d)
            if info:
                procs[int(d)] = info
    children = {}
    for pid, (ppid, _, _) in procs.items():
        children.setdefault(ppid, []).append(pid)
    server, stack = 0.0, [server_pid] if server_pid else []
    while stack:
        pid = stack.pop()
        if pid in procs:
            server += procs[pid][2]
            stack.extend(children.get(pid, []))
    postgres = sum(cpu for pid, (ppid, name, cpu) in procs.items() if name == "postgres"
                   and (not postmaster or is_our_postgres(pid, ppid, postmaster, database)))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"machine": machine, "server": server, "postgres": postgres,
            "client": usage.ru_utime + usage.ru_stime}


def run_writers(base_url, jobs):
    """Runs each job (a list of (run_id, body bytes)) on its own thread and connection;
    returns the latency of every request. Any failure fails the whole phase."""
    latencies, errors, lock = [], [], threading.Lock()

    def work(job):
        client, mine = Client(base_url), []
        try:
            for data in job:
                sent = time.perf_counter()
                client.post("runs/log-batch", data)
                mine.append(time.perf_counter() - sent)
        except Exception as e:  # noqa: BLE001 - reported below
            with lock:
                errors.append(repr(e))
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=work, args=(job,)) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise SystemExit(f"log-batch failed: {errors[0]}")
    return latencies


def stored_points(client, run_id, keys):
    total = 0
    for k in range(keys):
        token = None
        while True:
            query = {"run_id": run_id, "metric_key": f"m{k}", "max_results": 25000}
            if token:
                query["page_token"] = token
            page = client.call("GET", "metrics/get-history", query=query)
            total += len(page.get("metrics", []))
            token = page.get("next_page_token")
            if not token:
                break
    return total


def percentile(sorted_values, p):
    rank = max(1, min(len(sorted_values), -(-len(sorted_values) * p // 100)))
    return sorted_values[int(rank) - 1]


def median(values):
    values = sorted(values)
    n = len(values)
    return values[n // 2] if n % 2 else (values[n // 2 - 1] + values[n // 2]) / 2


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--base-url", required=True)
    p.add_argument("--points", type=int, default=50_000)
    p.add_argument("--batch", type=int, default=1_000,
                   help="metrics per log-batch (MLflow allows at most 1000)")
    p.add_argument("--writers", type=int, default=4)
    p.add_argument("--keys", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2, help="untimed batches per writer first")
    p.add_argument("--rounds", type=int, default=3, help="timed rounds, each on new runs; "
                   "the median counts")
    p.add_argument("--server-pid", type=int, default=0, help="the MLflow server's root process")
    p.add_argument("--postmaster-pid", type=int, default=0,
                   help="with --database: count only this cluster's helpers and that database's "
                        "backends as postgres CPU")
    p.add_argument("--database", default="", help="MLflow's database")
    p.add_argument("--label", default="(c) MLflow log-batch")
    p.add_argument("--out")
    args = p.parse_args()

    client = Client(args.base_url)
    exp = client.post("experiments/create",
                      {"name": f"metrics-bench-{time.time_ns()}"})["experiment_id"]

    def new_run(name):
        run = client.post("runs/create", {"experiment_id": exp, "run_name": name,
                                          "start_time": int(time.time() * 1000)})
        return run["run"]["info"]["run_id"]

    per_writer = [args.points // args.writers + (w < args.points % args.writers)
                  for w in range(args.writers)]
    batches = [writer_batches(w, per_writer[w], args.batch, args.keys) for w in range(args.writers)]
    points = sum(per_writer)

    warm = [new_run(f"warmup-{w}") for w in range(args.writers)]
    run_writers(args.base_url, [[body(warm[w], m) for m in batches[w][:args.warmup]]
                                for w in range(args.writers)])
    rows = []
    for round_ in range(1, args.rounds + 1):
        runs = [new_run(f"writer-{round_}-{w}") for w in range(args.writers)]
        jobs = [[body(runs[w], m) for m in batches[w]] for w in range(args.writers)]
        before = cpu_now(args.server_pid, args.postmaster_pid, args.database)
        started = time.perf_counter()
        latencies = run_writers(args.base_url, jobs)
        wall = time.perf_counter() - started
        after = cpu_now(args.server_pid, args.postmaster_pid, args.database)
        cpu = {k: after[k] - before[k] for k in after}
        stored = sum(stored_points(client, run, args.keys) for run in runs)
        if stored != points:
            raise SystemExit(f"MLflow stored {stored} of {points} points")
        latencies.sort()
        rows.append((round_, wall, points / wall, latencies, cpu))

    def cost(cpu):
        """CPU ms of the server and PostgreSQL per 1,000 points."""
        return (cpu["server"] + cpu["postgres"]) / points * 1e6
        print(f"round {round_}: {args.label}: {points / wall:.0f} points/s", file=sys.stderr)

    print("| measurement | round | points | wall s | points/s | requests | p50 ms | p99 ms "
          "| busy cores | server CPU-s | client CPU-s | postgres CPU-s | other CPU-s "
          "| CPU ms / 1,000 points |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for round_, wall, rate, latencies, cpu in rows:
        other = cpu["machine"] - cpu["server"] - cpu["client"] - cpu["postgres"]
        print(f"| {args.label} | {round_} | {points} | {wall:.2f} | {rate:.0f} | {len(latencies)} "
              f"| {percentile(latencies, 50) * 1e3:.1f} | {percentile(latencies, 99) * 1e3:.1f} "
              f"| {cpu['machine'] / wall:.2f} | {cpu['server']:.1f} | {cpu['client']:.1f} "
              f"| {cpu['postgres']:.1f} | {other:.1f} | {cost(cpu):.2f} |")
    rate = median([r[2] for r in rows])
    cpu_ms = median([cost(r[4]) for r in rows])
    print(f"\nmedian: {rate:.0f} points/s, {cpu_ms:.2f} CPU ms (server + postgres) per 1,000 points")
    if args.out:
        with open(args.out, "w") as f:
            f.write(f"mlflow_points={points}\nmlflow_points_per_s={rate:.1f}\n"
                    f"mlflow_rounds={','.join(f'{r[2]:.0f}' for r in rows)}\n"
                    f"mlflow_cpu_ms_per_1000={cpu_ms:.3f}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
