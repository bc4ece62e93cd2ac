#!/usr/bin/env bash
# Runs every test on a fresh Debian machine: installs and starts what the tests
# need (deploy/debian-setup.sh), builds the base images the container tests
# use, then runs the Rust test suite and the Python one (the SDK and the
# digits example against a live server). The tests start their own private
# PostgreSQL in /tmp/trainyard-test-postgres.
set -euo pipefail
cd "$(dirname "$0")/.."

bash deploy/debian-setup.sh
if [ -x docker/build-base-images.sh ]; then
    bash docker/build-base-images.sh
fi
cargo test --workspace --locked
bash deploy/test-python.sh
