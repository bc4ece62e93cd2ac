#!/usr/bin/env bash
# Runs every test on a fresh Debian machine: installs and starts what the tests
# need (deploy/debian-setup.sh), builds the base images the container tests
# use and the web console the binary embeds, then runs the Rust test suite,
# the Python one (the SDK and the digits example against a live server) and
# the console's browser tests. The tests start their own private PostgreSQL
# in /tmp/trainyard-test-postgres.
set -euo pipefail
cd "$(dirname "$0")/.."

bash deploy/debian-setup.sh
if [ -x docker/build-base-images.sh ]; then
    bash docker/build-base-images.sh --distributed
fi
# Before cargo builds the binary, so the binary the browser tests start embeds it.
console_status=0
bash deploy/build-console.sh || console_status=$?
[ "$console_status" -eq 0 ] || [ "$console_status" -eq 2 ] || exit "$console_status"
cargo test --workspace --locked
bash deploy/test-python.sh
if [ "$console_status" -eq 0 ]; then
    TRAINYARD_CONSOLE_BUILT=1 bash deploy/test-console.sh
else
    echo "SKIPPED: console tests: no Node.js 20.19 or newer to build the console with"
fi
