#!/usr/bin/env bash
# From a fresh Debian machine to a running Trainyard and a finished run:
# installs what is missing, builds the base images, the web console and the
# server, starts it on embedded defaults (its own PostgreSQL in the data
# directory, the local Docker engine), and runs examples/hello/train.py in a
# container.
set -euo pipefail
cd "$(dirname "$0")/.."

listen="${TRAINYARD_LISTEN:-127.0.0.1:8420}"
data_dir="${TRAINYARD_DATA_DIR:-$([ "$(id -u)" -eq 0 ] && echo /var/lib/trainyard || echo "${XDG_DATA_HOME:-$HOME/.local/share}/trainyard")}"
base="http://${listen}"

bash deploy/debian-setup.sh
if [ -x docker/build-base-images.sh ]; then
    bash docker/build-base-images.sh
fi

# The binary embeds the console, so it is built first; without a recent
# enough Node.js the server still builds, and / says how to add the console.
console_status=0
bash deploy/build-console.sh || console_status=$?
[ "$console_status" -eq 0 ] || [ "$console_status" -eq 2 ] || exit "$console_status"
[ "$console_status" -eq 0 ] || echo "==> going on without the web console"

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

export TRAINYARD_URL="$base"
export TRAINYARD_TOKEN="${TRAINYARD_ADMIN_TOKEN:-$(cat "${data_dir}/admin-token")}"
export TRAINYARD_WORKSPACE=quickstart

echo "==> workspace 'quickstart'"
curl -sS -o /dev/null -X POST "${base}/api/v1/workspaces" \
    -H "Authorization: Bearer ${TRAINYARD_TOKEN}" -H 'Content-Type: application/json' \
    -d '{"name": "quickstart"}' || true

echo "==> running examples/hello/train.py in the default Python image"
run_id=$("$bin" run submit --source examples/hello --script train.py --experiment hello)
"$bin" run wait "$run_id"
echo "==> its files:"
"$bin" run files "$run_id"

cat <<DONE

Trainyard is running at ${base}
  web console:  ${base}/ (sign in with the admin token)
  API docs:     ${base}/api/v1/docs/
  admin token:  ${data_dir}/admin-token
  server log:   ${data_dir}/server.log
  the run:      $bin run show ${run_id}
  stop it with: kill \$(cat ${data_dir}/server.pid)
DONE
