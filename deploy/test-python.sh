#!/usr/bin/env bash
# The Python side of the test suite, against a live server: the SDK's tests
# (unit and integration), the real MLflow client against the server's MLflow
# API (tests/mlflow), and the digits example end to end (its final
# accuracy must be above 0.9). Expects the debug binary (cargo test builds
# it), the Docker engine and the base images; deploy/test.sh runs it last.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=target/python-venv
if ! "$venv/bin/python" -c 'import pytest, numpy, moto, mlflow, sklearn' 2>/dev/null; then
    python3 -m venv "$venv"
    # numpy: the digits example loads its registered model back to predict;
    # moto: an S3-compatible server for the s3:// datastore test;
    # mlflow and scikit-learn: the MLflow-client tests log and load a model.
    "$venv/bin/pip" install -q pytest numpy "moto[server]" "mlflow==3.17.2" scikit-learn
fi
"$venv/bin/pip" install -q --force-reinstall --no-deps ./sdk/python
rm -rf sdk/python/build sdk/python/*.egg-info

# An S3-compatible server (moto) with one bucket, for the s3:// datastore
# test; the Trainyard server reads its keys from its environment.
s3_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$venv/bin/moto_server" -H 127.0.0.1 -p "$s3_port" >/tmp/trainyard-pytest-moto.log 2>&1 &
moto=$!
for _ in $(seq 1 60); do
    curl -fsS "http://127.0.0.1:${s3_port}/" >/dev/null 2>&1 && break
    sleep 0.5
done
curl -fsS -X PUT "http://127.0.0.1:${s3_port}/trainyard-test" >/dev/null
export TRAINYARD_TEST_S3_ENDPOINT="http://127.0.0.1:${s3_port}" TRAINYARD_TEST_S3_BUCKET=trainyard-test
export TRAINYARD_TEST_S3_KEY_ID=testing TRAINYARD_TEST_S3_SECRET=testing

# A private server: its own data directory (and PostgreSQL) under /tmp, which
# the postgres account can reach when this runs as root.
data_dir=$(mktemp -d /tmp/trainyard-pytest.XXXXXX)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
extra_ca=()
[ -f /etc/ssl/certs/ca-certificates.crt ] && extra_ca=(--extra-ca-certificate /etc/ssl/certs/ca-certificates.crt)
target/debug/trainyard serve --listen "127.0.0.1:${port}" --data-dir "$data_dir" \
    --replica-name "pytest-$$" "${extra_ca[@]}" >"$data_dir/server.log" 2>&1 &
server=$!
stop_server() {
    kill -TERM "$server" 2>/dev/null && wait "$server" || true
    kill -TERM "$moto" 2>/dev/null || true
    rm -rf "$data_dir"
}
trap stop_server EXIT
for _ in $(seq 1 120); do
    curl -fsS "http://127.0.0.1:${port}/readyz" >/dev/null 2>&1 && break
    sleep 0.5
done
curl -fsS "http://127.0.0.1:${port}/readyz" >/dev/null || { cat "$data_dir/server.log"; exit 1; }

export TRAINYARD_TEST_URL="http://127.0.0.1:${port}"
export TRAINYARD_TEST_TOKEN
TRAINYARD_TEST_TOKEN=$(cat "$data_dir/admin-token")

echo "==> SDK tests (sdk/python)"
(cd sdk/python && "../../$venv/bin/python" -m pytest -q -rs)

echo "==> MLflow client against the server's MLflow API (tests/mlflow)"
"$venv/bin/python" -m pytest -q -rs tests/mlflow

echo "==> examples/digits end to end"
curl -fsS -o /dev/null -X POST "${TRAINYARD_TEST_URL}/api/v1/workspaces" \
    -H "Authorization: Bearer ${TRAINYARD_TEST_TOKEN}" -H 'Content-Type: application/json' \
    -d '{"name": "examples"}'
TRAINYARD_URL="$TRAINYARD_TEST_URL" TRAINYARD_TOKEN="$TRAINYARD_TEST_TOKEN" TRAINYARD_WORKSPACE=examples \
    "$venv/bin/python" examples/digits/submit.py --min-accuracy 0.9
echo "examples: 1 passed, 0 failed"
