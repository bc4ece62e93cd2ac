#!/usr/bin/env bash
# MLflow tracking-API benchmark: /work/shared/bench/tracking_api_bench.py (or $BENCH) against
# Trainyard's MLflow API and against MLflow's own tracking server, on this machine and the
# same PostgreSQL cluster (the tests' private one), one after the other.
#
#   bash tests/bench/mlflow-api-bench.sh [--only a,b,c,d,e] [--out DIR] [--trainyard-only] [extra bench flags...]
#
# --trainyard-only measures Trainyard alone (no ratios), for quick looks while tuning.
#
# Environment: BENCH (the harness, default /work/shared/bench/tracking_api_bench.py),
# MLFLOW_VENV (default /tmp/mlflow-bench-venv), MLFLOW_VERSION (default 3.17.2),
# MLFLOW_WORKERS (default 4, MLflow's own default), TRAINYARD_TEST_POSTGRES_DIR (default
# /tmp/trainyard-test-postgres; any test run starts that cluster, e.g.
# `cargo test -p trainyard-tests --test api health`).
#
# 1. creates the virtualenv and installs mlflow + psycopg2-binary when missing;
# 2. builds target/release/trainyard;
# 3. Trainyard: a fresh database, `trainyard serve` (API only) on it, a workspace and a
#    contributor token, the harness with `Authorization: Bearer <token>`, then stops it;
# 4. MLflow: a fresh database, `mlflow server` with its defaults, the harness, then stops it;
# 5. prints both sets of figures and their ratios as one Markdown table; the JSON results
#    stay in --out (default a temporary folder, printed).
set -euo pipefail

ONLY=a,b,c,d,e OUT= EXTRA=() TRAINYARD_ONLY=0
while [ $# -gt 0 ]; do
    case "$1" in
        --only) ONLY=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        --trainyard-only) TRAINYARD_ONLY=1; shift ;;
        *) EXTRA+=("$1"); shift ;;
    esac
done

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
BENCH=${BENCH:-/work/shared/bench/tracking_api_bench.py}
VENV=${MLFLOW_VENV:-/tmp/mlflow-bench-venv}
MLFLOW_VERSION=${MLFLOW_VERSION:-3.17.2}
MLFLOW_WORKERS=${MLFLOW_WORKERS:-4}
PGDIR=${TRAINYARD_TEST_POSTGRES_DIR:-/tmp/trainyard-test-postgres}
PGSOCK=$PGDIR/postgres
WORK=$(mktemp -d /tmp/mlflow-api-bench.XXXXXX)
OUT=${OUT:-$WORK}
mkdir -p "$OUT"
SERVER_PID=

stop_server() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        # Started with setsid: its process group holds the server and its children.
        kill -TERM -- "-$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.2; done
        kill -KILL -- "-$SERVER_PID" 2>/dev/null || true
    fi
    SERVER_PID=
}
trap stop_server EXIT

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_for() { # URL PID LOG
    for i in $(seq 300); do
        curl -sf "$1" >/dev/null && return 0
        if ! kill -0 "$2" 2>/dev/null || [ "$i" = 300 ]; then
            echo "the server did not come up; its log:" >&2
            tail -30 "$3" >&2
            exit 1
        fi
        sleep 1
    done
}

psql_admin() { psql -q -h "$PGSOCK" -U trainyard -d postgres -c "$1" >&2; }

if ! psql -h "$PGSOCK" -U trainyard -d postgres -Atc 'SELECT 1' >/dev/null 2>&1; then
    echo "the tests' PostgreSQL in $PGDIR does not answer; run any test once to start it" \
        "(cargo test -p trainyard-tests --test api health)" >&2
    exit 1
fi
POSTMASTER=$(head -1 "$PGSOCK/postmaster.pid")

if [ "$TRAINYARD_ONLY" = 0 ] && ! "$VENV/bin/mlflow" --version >/dev/null 2>&1; then
    echo "== installing mlflow==$MLFLOW_VERSION into $VENV" >&2
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q "mlflow==$MLFLOW_VERSION" psycopg2-binary >&2
fi

echo "== building trainyard (release)" >&2
cargo build --release -q -p trainyard >&2

bench() { # LABEL PID EXTRA-ARGS...
    local label=$1 pid=$2
    shift 2
    python3 "$BENCH" --only "$ONLY" --label "$label" --monitor "server=$pid" \
        --monitor "db=$POSTMASTER" --out "$OUT/results-$label.json" "$@" "${EXTRA[@]}" \
        >"$OUT/bench-$label.log"
    tail -8 "$OUT/bench-$label.log" >&2
}

echo "== Trainyard ($(git rev-parse --short HEAD))" >&2
DB=ty_mlflow_api_bench
psql_admin "DROP DATABASE IF EXISTS $DB"
psql_admin "CREATE DATABASE $DB"
PORT=$(free_port)
ADMIN="tyd_bench_$(python3 -c 'import secrets; print(secrets.token_hex(24))')"
setsid target/release/trainyard serve --listen "127.0.0.1:$PORT" --data-dir "$WORK/trainyard" \
    --database-url "postgres://trainyard@localhost/$DB?host=$PGSOCK&port=5432" \
    --executor false --admin-token "$ADMIN" >"$OUT/trainyard.log" 2>&1 &
SERVER_PID=$!
wait_for "http://127.0.0.1:$PORT/readyz" "$SERVER_PID" "$OUT/trainyard.log"
curl -sf -X POST "http://127.0.0.1:$PORT/api/v1/workspaces" -H "Authorization: Bearer $ADMIN" \
    -H 'Content-Type: application/json' -d '{"name": "bench"}' >/dev/null
TOKEN=$(curl -sf -X POST "http://127.0.0.1:$PORT/api/v1/workspaces/bench/tokens" \
    -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/json' \
    -d '{"name": "bench", "role": "contributor"}' | python3 -c 'import json, sys; print(json.load(sys.stdin)["secret"])')
bench trainyard "$SERVER_PID" --base-url "http://127.0.0.1:$PORT" \
    --header "Authorization: Bearer $TOKEN"
stop_server
psql_admin "DROP DATABASE IF EXISTS $DB"

if [ "$TRAINYARD_ONLY" = 1 ]; then
    echo "JSON results and logs: $OUT" >&2
    exit 0
fi

echo "== MLflow $MLFLOW_VERSION ($MLFLOW_WORKERS workers, its defaults otherwise)" >&2
DB=mlflow_api_bench
psql_admin "DROP DATABASE IF EXISTS $DB"
psql_admin "CREATE DATABASE $DB"
PORT=$(free_port)
setsid "$VENV/bin/mlflow" server \
    --backend-store-uri "postgresql+psycopg2://trainyard@/$DB?host=$PGSOCK&port=5432" \
    --default-artifact-root "$WORK/mlflow-artifacts" \
    --host 127.0.0.1 --port "$PORT" --workers "$MLFLOW_WORKERS" >"$OUT/mlflow.log" 2>&1 &
SERVER_PID=$!
wait_for "http://127.0.0.1:$PORT/health" "$SERVER_PID" "$OUT/mlflow.log"
bench mlflow "$SERVER_PID" --base-url "http://127.0.0.1:$PORT"
stop_server
psql_admin "DROP DATABASE IF EXISTS $DB"

python3 - "$OUT" <<'EOF'
import json
import sys

out = sys.argv[1]
ty = json.load(open(f"{out}/results-trainyard.json"))
ml = json.load(open(f"{out}/results-mlflow.json"))


def row(key):
    return ty["results"].get(key), ml["results"].get(key)


print("\n| # | measurement | Trainyard | MLflow | Trainyard ÷ MLflow (× better) |")
print("|---|---|---:|---:|---:|")
for key, unit, field in (("a", "runs/s", "ops_per_s"), ("b", "req/s", "ops_per_s"),
                         ("c", "points/s", "items_per_s")):
    t, m = row(key)
    if t and m and t.get(field) and m.get(field):
        print(f"| {key} | {t['name']}, {t['clients']} clients | {t[field]:,.0f} {unit} "
              f"(p50 {t['latency']['p50_ms']} ms, p99 {t['latency']['p99_ms']} ms) | "
              f"{m[field]:,.0f} {unit} (p50 {m['latency']['p50_ms']} ms, p99 {m['latency']['p99_ms']} ms) "
              f"| {t[field] / m[field]:.1f} |")
for key in ("d", "e"):
    t, m = row(key)
    if t and m and t.get("latency", {}).get("p50_ms") and m.get("latency", {}).get("p50_ms"):
        tl, mlat = t["latency"]["p50_ms"], m["latency"]["p50_ms"]
        check = (f"complete={t.get('complete')}" if key == "d"
                 else f"correct={(t.get('check') or {}).get('ok')}")
        print(f"| {key} | {t['name']}, p50 latency | {tl:,.1f} ms ({check}) | {mlat:,.1f} ms | {mlat / tl:.1f} |")
tm, mm = ty.get("monitor", {}).get("server", {}), ml.get("monitor", {}).get("server", {})
if tm and mm:
    print(f"| – | server memory, peak RSS of all its processes | {tm['peak_rss_sum_mb']:,.0f} MB "
          f"| {mm['peak_rss_sum_mb']:,.0f} MB | {mm['peak_rss_sum_mb'] / tm['peak_rss_sum_mb']:.1f} |")
for label, res in (("Trainyard", ty), ("MLflow", ml)):
    cpu = res.get("phase_cpu", {})
    print(f"\n{label} CPU-s by phase (client / server / db / other): " + "; ".join(
        f"{k} {v.get('client_s')}/{v.get('server_s')}/{v.get('db_s')}/{v.get('other_s')}"
        for k, v in cpu.items()))
print(f"\nJSON results and logs: {out}")
EOF
