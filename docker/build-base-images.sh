#!/usr/bin/env bash
# Builds Trainyard's base images offline, without any registry:
#   trainyard/busybox:latest        (docker/busybox/build.sh; seconds)
#   trainyard/python:3.11-bookworm  (docker/python/build.sh; a few minutes,
#                                    skipped when the image already exists)
# Usage: build-base-images.sh [--force] [--only busybox|python]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=common.sh
. "$here/common.sh"

usage() {
    echo "usage: $0 [--force] [--only busybox|python]"
    echo "  --force        rebuild images that already exist"
    echo "  --only NAME    build only that image (busybox or python)"
}

force=()
only=""
while [ $# -gt 0 ]; do
    case "$1" in
        --force) force=(--force) ;;
        --only)
            [ $# -ge 2 ] || { usage >&2; die "--only needs busybox or python"; }
            only="$2"; shift ;;
        --only=*) only="${1#--only=}" ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
    shift
done
case "$only" in
    ""|busybox|python) ;;
    *) usage >&2; die "--only takes busybox or python, not '$only'" ;;
esac

images=(busybox python)
[ -n "$only" ] && images=("$only")

# Check everything up front, so that nothing fails half-way.
require_docker
for name in "${images[@]}"; do
    case "$name" in
        busybox) static_busybox >/dev/null ;;
        python) require_debootstrap ;;
    esac
done

for name in "${images[@]}"; do
    log "building the $name base image: $here/$name/build.sh${force[*]:+ ${force[*]}}"
    start=$SECONDS
    "$here/$name/build.sh" "${force[@]}"
    log "$name done in $((SECONDS - start))s"
done
docker images --filter=reference='trainyard/*'
