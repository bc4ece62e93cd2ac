#!/usr/bin/env bash
# Builds Trainyard's base images offline, without any registry:
#   trainyard/busybox:latest        (docker/busybox/build.sh; seconds)
#   trainyard/python:3.11-bookworm  (docker/python/build.sh; a few minutes,
#                                    skipped when the image already exists)
# and with --distributed the images of distributed training, built from the
# python one with Debian's packages (about a minute each):
#   trainyard/pytorch:bookworm      (docker/pytorch/Dockerfile: python3-torch)
#   trainyard/mpi:bookworm          (docker/mpi/Dockerfile: Open MPI, OpenSSH,
#                                    mpi4py)
# Usage: build-base-images.sh [--force] [--distributed] [--only NAME]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=common.sh
. "$here/common.sh"

usage() {
    echo "usage: $0 [--force] [--distributed] [--only busybox|python|pytorch|mpi]"
    echo "  --force        rebuild images that already exist"
    echo "  --distributed  also build trainyard/pytorch and trainyard/mpi"
    echo "  --only NAME    build only that image"
}

force=()
only=""
distributed=0
while [ $# -gt 0 ]; do
    case "$1" in
        --force) force=(--force) ;;
        --distributed) distributed=1 ;;
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
    ""|busybox|python|pytorch|mpi) ;;
    *) usage >&2; die "--only takes busybox, python, pytorch or mpi, not '$only'" ;;
esac

images=(busybox python)
[ "$distributed" -eq 1 ] && images+=(pytorch mpi)
[ -n "$only" ] && images=("$only")

# Check everything up front, so that nothing fails half-way.
require_docker
for name in "${images[@]}"; do
    case "$name" in
        busybox) static_busybox >/dev/null ;;
        python) require_debootstrap ;;
    esac
done

# An image built from a Dockerfile in docker/NAME on top of the python one.
build_from_dockerfile() {
    local name="$1" image="trainyard/$1:bookworm"
    if [ ${#force[@]} -eq 0 ] && docker image inspect "$image" >/dev/null 2>&1; then
        log "$image already exists; skipping (--force rebuilds it)"
        return
    fi
    docker image inspect trainyard/python:3.11-bookworm >/dev/null 2>&1 \
        || die "$image is built on trainyard/python:3.11-bookworm; build that first ($0 --only python)"
    docker build -q -t "$image" "$here/$name"
}

for name in "${images[@]}"; do
    start=$SECONDS
    case "$name" in
        busybox|python)
            log "building the $name base image: $here/$name/build.sh${force[*]:+ ${force[*]}}"
            "$here/$name/build.sh" "${force[@]}" ;;
        *)
            log "building the $name image from $here/$name/Dockerfile"
            build_from_dockerfile "$name" ;;
    esac
    log "$name done in $((SECONDS - start))s"
done
docker images --filter=reference='trainyard/*'
