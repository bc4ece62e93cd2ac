#!/usr/bin/env bash
# Builds the web console (console/) into console/dist, which the trainyard
# binary embeds: run it before cargo build. Installs Debian's Node.js and npm
# when they are missing. Exits 2, saying why, when no Node.js 20.19 or newer
# (what vite needs) is at hand, so callers can go on without the console.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "==> installing Node.js and npm (Debian packages)"
    as_root apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends nodejs npm || true
fi
node_ok='const [major, minor] = process.versions.node.split(".").map(Number); process.exit(major > 20 || (major === 20 && minor >= 19) ? 0 : 1)'
if ! node -e "$node_ok" 2>/dev/null; then
    echo "the web console needs Node.js 20.19 or newer to build (found $(node --version 2>/dev/null || echo none));" \
        "Debian 13 ships it, Debian 12 can take it from NodeSource" >&2
    exit 2
fi

echo "==> building the web console (console/dist)"
cd console
npm ci --no-audit --no-fund --loglevel=error
npm run build --silent
