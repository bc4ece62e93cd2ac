#!/usr/bin/env bash
# Metric-ingestion benchmark: Trainyard's batch API against PostgreSQL's COPY of the same
# rows and against MLflow's tracking server, all on this machine and the same PostgreSQL
# cluster (the tests' private one), in one sitting.
#
#   bash tests/bench/metrics-bench.sh [--points N] [--batch N] [--writers N] [--keys N]
#        [--rounds N] [--mlflow-points N] [--mlflow-workers N[,N...]]
#
# Defaults: 2,000,000 points per phase for Trainyard and COPY, 50,000 for MLflow, batches
# of 1,000 (10 names x 100 steps), 4 writers, 3 rounds (the median counts), MLflow with
# 1 worker and then with 4 (its default, as in /work/shared/bench/MLFLOW_BASELINE.md).
# Environment: MLFLOW_VENV (default /tmp/mlflow-bench-venv), MLFLOW_VERSION (default
# 3.17.2, the baseline's), TRAINYARD_TEST_POSTGRES_DIR (default /tmp/trainyard-test-postgres).
#
# 1. creates the virtualenv and installs mlflow + psycopg2-binary when missing;
# 2. builds and runs target/release/metrics-bench (Trainyard, COPY), which also starts the
#    tests' PostgreSQL cluster when it is not running;
# 3. for each MLflow worker count, starts `mlflow server` on a fresh database
#    `mlflow_bench` of that cluster, runs tests/bench/mlflow_metrics.py against it, stops it;
# 4. prints one Markdown table (details go to stderr).
set -euo pipefail

POINTS=2000000 BATCH=1000 WRITERS=4 KEYS=10 ROUNDS=3 MLFLOW_POINTS=50000 MLFLOW_WORKERS=1,4
while [ $# -gt 0 ]; do
    case "$1" in
        --points) POINTS=$2 ;;
        --batch) BATCH=$2 ;;
        --writers) WRITERS=$2 ;;
        --keys) KEYS=$2 ;;
        --rounds) ROUNDS=$2 ;;
        --mlflow-points) MLFLOW_POINTS=$2 ;;
        --mlflow-workers) MLFLOW_WORKERS=$2 ;;
        *) echo "unknown argument $1; see the head of $0" >&2; exit 2 ;;
    esac
    shift 2
done

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
VENV=${MLFLOW_VENV:-/tmp/mlflow-bench-venv}
MLFLOW_VERSION=${MLFLOW_VERSION:-3.17.2}
PGDIR=${TRAINYARD_TEST_POSTGRES_DIR:-/tmp/trainyard-test-postgres}
PGSOCK=$PGDIR/postgres
DB=mlflow_bench
WORK=$(mktemp -d /tmp/metrics-bench.XXXXXX)
MLFLOW_PID=

stop_mlflow() {
    if [ -n "$MLFLOW_PID" ] && kill -0 "$MLFLOW_PID" 2>/dev/null; then
        # Started with setsid: its process group holds the CLI, uvicorn and its workers.
        kill -TERM -- "-$MLFLOW_PID" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$MLFLOW_PID" 2>/dev/null || break; sleep 0.2; done
        kill -KILL -- "-$MLFLOW_PID" 2>/dev/null || true
    fi
    MLFLOW_PID=
}
trap stop_mlflow EXIT

if ! "$VENV/bin/mlflow" --version >/dev/null 2>&1; then
    echo "== installing mlflow==$MLFLOW_VERSION into $VENV" >&2
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q "mlflow==$MLFLOW_VERSION" psycopg2-binary >&2
fi

echo "== building metrics-bench (release)" >&2
cargo build --release -q -p trainyard-tests --bin metrics-bench >&2

# Everything runs on the tests' private cluster. When it already answers, name it, so that
# a test binary holding its data directory's lock does not keep this one from using it;
# otherwise metrics-bench starts it.
if psql -h "$PGSOCK" -U trainyard -d postgres -Atc 'SELECT 1' >/dev/null 2>&1; then
    export TRAINYARD_TEST_DATABASE_URL="postgres://trainyard@localhost/postgres?host=$PGSOCK&port=5432"
else
    unset TRAINYARD_TEST_DATABASE_URL
fi
export TRAINYARD_TEST_POSTGRES_DIR=$PGDIR

echo "== (a), (b): Trainyard and COPY, $POINTS points, $ROUNDS rounds" >&2
target/release/metrics-bench --points "$POINTS" --batch "$BATCH" --writers "$WRITERS" \
    --keys "$KEYS" --rounds "$ROUNDS" --out "$WORK/rust.txt" >&2

psql_admin() { psql -q -h "$PGSOCK" -U trainyard -d postgres -c "$1" >&2; }
for workers in ${MLFLOW_WORKERS//,/ }; do
    echo "== (c): MLflow $MLFLOW_VERSION, $workers worker(s), $MLFLOW_POINTS points" >&2
    psql_admin "DROP DATABASE IF EXISTS $DB"
    psql_admin "CREATE DATABASE $DB"
    PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])')
    # The job runner's huey consumers (on by default since MLflow 3) play no part here.
    MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false setsid "$VENV/bin/mlflow" server \
        --backend-store-uri "postgresql+psycopg2://trainyard@/$DB?host=$PGSOCK&port=5432" \
        --default-artifact-root "$WORK/artifacts" \
        --host 127.0.0.1 --port "$PORT" --workers "$workers" >"$WORK/mlflow-$workers.log" 2>&1 &
    MLFLOW_PID=$!
    for i in $(seq 300); do
        if curl -sf "http://127.0.0.1:$PORT/health" >/dev/null; then
            break
        fi
        if ! kill -0 "$MLFLOW_PID" 2>/dev/null || [ "$i" = 300 ]; then
            echo "mlflow server did not come up; its log:" >&2
            tail -30 "$WORK/mlflow-$workers.log" >&2
            exit 1
        fi
        sleep 1
    done
    python3 tests/bench/mlflow_metrics.py --base-url "http://127.0.0.1:$PORT" \
        --points "$MLFLOW_POINTS" --batch "$BATCH" --writers "$WRITERS" --keys "$KEYS" \
        --rounds "$ROUNDS" --server-pid "$MLFLOW_PID" --database "$DB" \
        --postmaster-pid "$(head -1 "$PGSOCK/postmaster.pid")" \
        --label "(c) MLflow log-batch, $workers worker(s)" --out "$WORK/mlflow-$workers.txt" >&2
    stop_mlflow
    psql_admin "DROP DATABASE IF EXISTS $DB"
done

# One table: each measurement's median points/s and Trainyard ÷ it.
python3 - "$WORK" "$POINTS" "$MLFLOW_POINTS" "$MLFLOW_WORKERS" "$MLFLOW_VERSION" \
    "$WRITERS" "$BATCH" "$ROUNDS" <<'EOF'
import sys
work, points, mlflow_points, workers, mlflow_version, writers, batch, rounds = sys.argv[1:]


def values(name):
    with open(f"{work}/{name}.txt") as f:
        return dict(line.rstrip("\n").split("=", 1) for line in f if "=" in line)


rust = values("rust")
ty = float(rust["trainyard_points_per_s"])
points, mlflow_points = f"{int(points):,}", f"{int(mlflow_points):,}"
rows = [
    (f"(a) Trainyard batch API, {points} points", "trainyard", rust),
    (f"(b) PostgreSQL COPY, {writers} streams of one COPY, {points} points", "copy", rust),
    (f"(b') PostgreSQL COPY, one per batch of {batch}, {points} points", "copy_per_batch", rust),
]
for w in workers.split(","):
    rows.append((f"(c) MLflow log-batch, {w} worker(s), {mlflow_points} points", "mlflow",
                 values(f"mlflow-{w}")))
print(f"\n## Metric ingestion: {writers} writers, batches of {batch}, median of {rounds} "
      f"rounds; PostgreSQL {rust['postgres_version']}, MLflow {mlflow_version}\n")
print("| measurement | points/s | ratio to Trainyard (Trainyard ÷ this) "
      "| CPU ms / 1,000 points (server + PostgreSQL) | CPU cost ÷ Trainyard's |")
print("|---|---:|---:|---:|---:|")
ty_cost = float(rust["trainyard_cpu_ms_per_1000"])
for label, key, found in rows:
    rate = float(found[f"{key}_points_per_s"])
    cost = float(found[f"{key}_cpu_ms_per_1000"])
    print(f"| {label} | {rate:,.0f} | {ty / rate:.2f} | {cost:.2f} | {cost / ty_cost:.2f} |")
copy = float(rust["copy_points_per_s"])
print(f"\nTrainyard ÷ COPY = {ty / copy:.2f} (target ≥ 0.5: {'met' if ty / copy >= 0.5 else 'missed'})")
for w in workers.split(","):
    m = float(values(f"mlflow-{w}")["mlflow_points_per_s"])
    print(f"Trainyard ÷ MLflow ({w} worker(s)) = {ty / m:.1f} "
          f"(target ≥ 30: {'met' if ty / m >= 30 else 'missed'})")
print("\nEach round's figures: " + "; ".join(
    f"{key} {found[f'{key}_rounds']}" for _, key, found in rows[:3]) + "; " + "; ".join(
    f"MLflow {w} worker(s) {values(f'mlflow-{w}')['mlflow_rounds']}" for w in workers.split(",")))
EOF
rm -rf "$WORK"
