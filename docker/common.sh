# Shared helpers for the base-image build scripts; sourced, not run.
# shellcheck shell=bash

log() { printf '==> %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Fails unless the docker CLI is installed and the engine answers.
require_docker() {
    command -v docker >/dev/null 2>&1 \
        || die "the docker command is missing: apt-get install -y docker.io"
    if ! docker info >/dev/null 2>&1; then
        die "the Docker engine does not answer ('docker info' failed); start the Docker engine first:
    systemctl start docker                         # with systemd
    nohup dockerd > /var/log/dockerd.log 2>&1 &    # without systemd (as root)
  (deploy/debian-setup.sh does this), or run as a user in the 'docker' group"
    fi
}

# Path of Debian's static busybox (package busybox-static); dies if it is
# missing or is the dynamically linked one from package 'busybox'.
static_busybox() {
    local bb="${BUSYBOX:-/bin/busybox}"
    [ -x "$bb" ] || die "$bb is missing: apt-get install -y debootstrap busybox-static"
    # ldd fails on a static binary ("not a dynamic executable").
    if ldd "$bb" >/dev/null 2>&1; then
        die "$bb is dynamically linked (package 'busybox'); it cannot run in a scratch image: apt-get install -y debootstrap busybox-static"
    fi
    printf '%s\n' "$bb"
}

require_debootstrap() {
    command -v debootstrap >/dev/null 2>&1 \
        || die "debootstrap is missing: apt-get install -y debootstrap busybox-static"
    [ "$(id -u)" -eq 0 ] || die "debootstrap needs root; run this script as root (e.g. with sudo)"
}
