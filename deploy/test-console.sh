#!/usr/bin/env bash
# The web console's end-to-end tests (console/tests): Debian's Chromium,
# headless, driven by playwright-core against a live server (the debug binary
# with its embedded PostgreSQL and the local Docker engine). Installs
# Chromium and the npm packages when missing; deploy/test.sh runs it last.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# deploy/test.sh has built the console (and the binary after it) already.
if [ "${TRAINYARD_CONSOLE_BUILT:-}" != 1 ]; then
    status=0
    bash deploy/build-console.sh || status=$?
    if [ "$status" -eq 2 ]; then
        echo "SKIPPED: console tests: no Node.js 20.19 or newer to build the console with"
        exit 0
    fi
    [ "$status" -eq 0 ] || exit "$status"
    cargo build --locked -p trainyard
fi

# Whether the package index offers chromium. The output is read whole before
# matching: under pipefail, `apt-cache … | grep -q` fails now and then when
# grep exits before apt-cache has written everything.
chromium_offered() {
    local policy
    policy=$(apt-cache policy chromium 2>/dev/null || true)
    [[ "$policy" =~ Candidate:\ [0-9] ]]
}

if ! command -v chromium >/dev/null; then
    if ! chromium_offered; then
        as_root apt-get update -q
    fi
    if ! chromium_offered; then
        echo "SKIPPED: console tests: this system's packages have no chromium"
        exit 0
    fi
    echo "==> installing chromium (Debian package)"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium
fi

echo "==> console tests (console/tests, headless Chromium)"
cd console
CHROMIUM="$(command -v chromium)" npm test --silent
