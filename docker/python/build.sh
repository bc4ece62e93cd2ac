#!/usr/bin/env bash
# Builds trainyard/python:3.11-bookworm offline from Debian bookworm's own
# packages (python3 is 3.11 there): debootstrap a minimal root file system
# with python3, pip, numpy, venv and ca-certificates from the Debian mirror
# this machine's apt uses, strip caches and docs, and `docker import` it.
# No registry is needed. Skips the build when the image exists, unless
# --force is given.
#
# Environment: TRAINYARD_DEBIAN_MIRROR overrides the mirror (default: the
# bookworm mirror in /etc/apt/sources.list{,.d/*}, else deb.debian.org);
# TRAINYARD_DEBIAN_SECURITY_MIRROR the one for bookworm-security written into
# the image's apt sources; TMPDIR where the root file system is made.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../common.sh
. "$here/../common.sh"

suite="bookworm"
python_version="3.11"
image="trainyard/python:${python_version}-${suite}"
packages="python3,python3-pip,python3-numpy,python3-venv,ca-certificates"

force=0
for arg in "$@"; do
    case "$arg" in
        --force) force=1 ;;
        -h|--help) echo "usage: $0 [--force]"; exit 0 ;;
        *) die "unknown argument: $arg (usage: $0 [--force])" ;;
    esac
done

require_docker
if [ "$force" -eq 0 ] && docker image inspect "$image" >/dev/null 2>&1; then
    log "$image already exists; skipping (--force rebuilds it)"
    exit 0
fi
require_debootstrap

# Prints the first URI that apt's sources on this machine use for suite $1
# (one-line *.list and deb822 *.sources formats), or nothing.
apt_mirror_for() {
    local want="$1" files=()
    [ -f /etc/apt/sources.list ] && files+=(/etc/apt/sources.list)
    for f in /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] && files+=("$f")
    done
    [ ${#files[@]} -gt 0 ] || return 0
    awk -v want="$want" '
        function has(list, word,   n, i, a) {
            n = split(list, a, /[ \t]+/)
            for (i = 1; i <= n; i++) if (a[i] == word) return 1
            return 0
        }
        function flush() {
            if (uris != "" && has(types, "deb") && has(suites, want) && tolower(enabled) != "no") {
                split(uris, u, /[ \t]+/); print u[1]; found = 1; exit
            }
            types = uris = suites = enabled = ""
        }
        FNR == 1 { flush() }
        /^[ \t]*#/ { next }
        FILENAME ~ /\.sources$/ {
            if ($0 ~ /^[ \t]*$/) { flush(); next }
            line = $0; key = tolower(line); sub(/:.*/, "", key)
            val = line; sub(/^[^:]*:[ \t]*/, "", val)
            if (key == "types") types = val
            else if (key == "uris") uris = val
            else if (key == "suites") suites = val
            else if (key == "enabled") enabled = val
            next
        }
        $1 == "deb" {
            line = $0; sub(/^[ \t]*deb[ \t]+/, "", line)
            if (line ~ /^\[/) sub(/^\[[^]]*\][ \t]*/, "", line)
            split(line, f, /[ \t]+/)
            if (f[2] == want) { print f[1]; found = 1; exit }
        }
        END { if (!found) flush() }
    ' "${files[@]}"
}

mirror="${TRAINYARD_DEBIAN_MIRROR:-$(apt_mirror_for "$suite")}"
if [ -z "$mirror" ]; then
    mirror="http://deb.debian.org/debian"
    log "no $suite mirror in /etc/apt/sources.list*; using $mirror"
fi
security_mirror="${TRAINYARD_DEBIAN_SECURITY_MIRROR:-$(apt_mirror_for "$suite-security")}"
security_mirror="${security_mirror:-http://deb.debian.org/debian-security}"

keyring=()
[ -f /usr/share/keyrings/debian-archive-keyring.gpg ] \
    && keyring=(--keyring=/usr/share/keyrings/debian-archive-keyring.gpg)

work="$(mktemp -d "${TMPDIR:-/var/tmp}/trainyard-python.XXXXXX")"
rootfs="$work/rootfs"
cleanup() {
    # debootstrap mounts /proc and /sys in the target; never rm -rf through
    # a mount that a failed run left behind.
    local m
    awk -v d="$work/" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r \
        | while IFS= read -r m; do umount -l "$m" 2>/dev/null || true; done
    rm -rf --one-file-system "$work"
}
trap cleanup EXIT

log "debootstrap $suite from $mirror into $rootfs (packages: $packages); takes a few minutes"
if ! debootstrap --variant=minbase --include="$packages" "${keyring[@]}" \
        "$suite" "$rootfs" "$mirror" > "$work/debootstrap.log" 2>&1; then
    tail -n 30 "$work/debootstrap.log" >&2
    [ -f "$rootfs/debootstrap/debootstrap.log" ] && tail -n 30 "$rootfs/debootstrap/debootstrap.log" >&2
    die "debootstrap failed (mirror $mirror; set TRAINYARD_DEBIAN_MIRROR to use another)"
fi

actual="$(chroot "$rootfs" python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
[ "$actual" = "$python_version" ] \
    || die "$suite's python3 is $actual, not $python_version; fix the image name in $0"
chroot "$rootfs" python3 -c 'import numpy, pip, venv, ensurepip' \
    || die "numpy, pip or venv does not import in the new root file system"

log "configuring apt and stripping caches and docs"
cat > "$rootfs/etc/apt/sources.list" <<SOURCES
deb $mirror $suite main
deb $mirror $suite-updates main
deb $security_mirror $suite-security main
SOURCES
# Like Debian's official images: keep no .deb files or package caches, and
# install no docs in images built on top of this one.
cat > "$rootfs/etc/apt/apt.conf.d/docker-clean" <<'APTCONF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
APTCONF
cat > "$rootfs/etc/dpkg/dpkg.cfg.d/docker" <<'DPKGCFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
DPKGCFG
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin \
    "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/archives/partial/* \
    "$rootfs"/usr/share/man/* "$rootfs"/usr/share/groff/* "$rootfs"/usr/share/info/* \
    "$rootfs"/usr/share/lintian/* "$rootfs"/usr/share/linda/* \
    "$rootfs"/var/cache/debconf/*-old "$rootfs"/var/lib/dpkg/*-old \
    "$rootfs"/debootstrap
# Keep only the copyright files under /usr/share/doc.
find "$rootfs/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
find "$rootfs/var/log" -type f -delete
# Translations of programs' messages (~30 MB); the C.UTF-8 image needs none.
find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
# The engine bind-mounts these at run time; do not ship the build host's.
: > "$rootfs/etc/resolv.conf"
echo localhost > "$rootfs/etc/hostname"
rm -f "$rootfs/etc/machine-id"

old_id="$(docker image inspect -f '{{.Id}}' "$image" 2>/dev/null || true)"
log "importing $rootfs as $image"
tar --numeric-owner -C "$rootfs" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV PIP_BREAK_SYSTEM_PACKAGES=1' \
    --change 'CMD ["python3"]' \
    --message "debootstrap $suite ($packages) from $mirror" \
    - "$image" >/dev/null
new_id="$(docker image inspect -f '{{.Id}}' "$image")"
if [ -n "$old_id" ] && [ "$old_id" != "$new_id" ]; then
    # The rebuilt image replaces the tag; drop the old one unless in use.
    docker image rm "$old_id" >/dev/null 2>&1 || true
fi
docker run --rm "$image" python3 -c 'import numpy, pip' \
    || die "$image was imported but numpy or pip does not import in it"
log "$image: $(docker image inspect -f '{{.Size}}' "$image" | awk '{printf "%.0f MB", $1/1e6}')"
