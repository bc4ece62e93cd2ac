#!/usr/bin/env bash
# From a fresh Debian machine to a running Trainyard with a submitted run:
# installs what is missing, builds the server, starts it on embedded defaults
# (its own PostgreSQL in the data directory, the local Docker engine), and
# submits a first run through the API.
set -euo pipefail
cd "$(dirname "$0")/.."

listen="${TRAINYARD_LISTEN:-127.0.0.1:8420}"
data_dir="${TRAINYARD_DATA_DIR:-$([ "$(id -u)" -eq 0 ] && echo /var/lib/trainyard || echo "${XDG_DATA_HOME:-$HOME/.local/share}/trainyard")}"
base="http://${listen}"

bash deploy/debian-setup.sh
if [ -x docker/build-base-images.sh ]; then
    bash docker/build-base-images.sh
fi

echo "==> building trainyard (release)"
cargo build --release --locked -p trainyard
bin="$PWD/target/release/trainyard"

if curl -fsS "${base}/readyz" >/dev/null 2>&1; then
    echo "==> a server already answers at ${base}"
else
    mkdir -p "$data_dir"
    echo "==> starting trainyard on ${base} (data in ${data_dir})"
    TRAINYARD_LISTEN="$listen" TRAINYARD_DATA_DIR="$data_dir" \
        nohup "$bin" serve >"${data_dir}/server.log" 2>&1 &
    echo $! >"${data_dir}/server.pid"
    for _ in $(seq 1 120); do
        curl -fsS "${base}/readyz" >/dev/null 2>&1 && break
        sleep 1
    done
    curl -fsS "${base}/readyz" >/dev/null || { echo "the server did not start; see ${data_dir}/server.log" >&2; exit 1; }
fi

token="${TRAINYARD_ADMIN_TOKEN:-$(cat "${data_dir}/admin-token")}"
api() {
    local method=$1 path=$2 body=${3:-}
    curl -sS -X "$method" "${base}/api/v1${path}" \
        -H "Authorization: Bearer ${token}" -H 'Content-Type: application/json' \
        ${body:+-d "$body"}
}

echo "==> workspace 'quickstart', experiment 'hello', one run"
api POST /workspaces '{"name": "quickstart"}' >/dev/null || true
api PUT /workspaces/quickstart/experiments/hello '{}' >/dev/null
run=$(api POST /workspaces/quickstart/runs '{"experiment": "hello", "display_name": "first run"}')
echo "$run"
run_id=$(printf '%s' "$run" | jq -r .id)
echo "==> its history:"
api GET "/workspaces/quickstart/runs/${run_id}/events"
echo
cat <<DONE

Trainyard is running at ${base}
  API docs:     ${base}/api/v1/docs/
  admin token:  ${data_dir}/admin-token
  server log:   ${data_dir}/server.log
  stop it with: kill \$(cat ${data_dir}/server.pid)
DONE
