#!/usr/bin/env bash
# Installs and starts what Trainyard needs on a Debian or Ubuntu machine:
# PostgreSQL's server binaries (Trainyard runs its own private cluster with
# them), the Docker engine, and the tools that build the base images offline.
# Safe to run again: it installs only what is missing and starts the engine
# only when it does not answer.
set -euo pipefail

packages=(postgresql docker.io busybox-static debootstrap ca-certificates curl jq)

missing=()
for package in "${packages[@]}"; do
    # Read whole before matching: under pipefail, `| grep -q` can fail a
    # match when grep exits before the writer is done.
    status=$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)
    [[ "$status" == *"install ok installed"* ]] || missing+=("$package")
done

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

if [ ${#missing[@]} -gt 0 ]; then
    echo "==> installing ${missing[*]}"
    as_root apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if ! as_root docker info >/dev/null 2>&1; then
    echo "==> starting the Docker engine"
    if [ -d /run/systemd/system ]; then
        as_root systemctl start docker
    else
        # No systemd (a container or a minimal VM): run dockerd in the background.
        as_root sh -c 'nohup dockerd > /var/log/trainyard-dockerd.log 2>&1 &'
    fi
    for _ in $(seq 1 60); do
        as_root docker info >/dev/null 2>&1 && break
        sleep 1
    done
    if ! as_root docker info >/dev/null 2>&1; then
        echo "the Docker engine did not start; see /var/log/trainyard-dockerd.log" >&2
        exit 1
    fi
fi
echo "==> PostgreSQL binaries and the Docker engine are ready"
