#!/usr/bin/env bash
# Builds trainyard/busybox:latest FROM scratch with Debian's static busybox
# (package busybox-static). Takes seconds; safe to run again (the layer
# cache makes a rerun a no-op). --force rebuilds without the cache.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../common.sh
. "$here/../common.sh"

image="trainyard/busybox:latest"
no_cache=()
for arg in "$@"; do
    case "$arg" in
        --force) no_cache=(--no-cache) ;;
        -h|--help) echo "usage: $0 [--force]"; exit 0 ;;
        *) die "unknown argument: $arg (usage: $0 [--force])" ;;
    esac
done

require_docker
busybox="$(static_busybox)"

context="$(mktemp -d "${TMPDIR:-/tmp}/trainyard-busybox.XXXXXX")"
trap 'rm -rf "$context"' EXIT

rootfs="$context/rootfs"
mkdir -p "$rootfs/bin" "$rootfs/etc" "$rootfs/root" "$rootfs/tmp"
chmod 1777 "$rootfs/tmp"
chmod 0700 "$rootfs/root"
cp "$busybox" "$rootfs/bin/busybox"
chmod 0755 "$rootfs/bin/busybox"
# One symlink per applet, at the place busybox itself would install it
# (bin/sh, usr/bin/env, sbin/...), all pointing at /bin/busybox.
while IFS= read -r applet; do
    [ "$(basename "$applet")" = busybox ] && continue
    mkdir -p "$rootfs/$(dirname "$applet")"
    ln -sf /bin/busybox "$rootfs/$applet"
done < <("$busybox" --list-full)
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$rootfs/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$rootfs/etc/group"
cp "$here/Dockerfile" "$context/Dockerfile"
# Fixed timestamps: the same inputs give the same context.
find "$context" -exec touch -h -d @0 {} +

old_id="$(docker image inspect -f '{{.Id}}' "$image" 2>/dev/null || true)"
log "building $image in $context"
docker build "${no_cache[@]}" -q -t "$image" "$context"
new_id="$(docker image inspect -f '{{.Id}}' "$image")"
if [ -n "$old_id" ] && [ "$old_id" != "$new_id" ]; then
    # The rebuilt image replaces the tag; drop the old one unless in use.
    docker image rm "$old_id" >/dev/null 2>&1 || true
fi
docker run --rm "$image" sh -c 'seq 1 >/dev/null && echo ok >/dev/null' \
    || die "$image was built but 'sh -c seq' does not run in it"
log "$image: $(docker image inspect -f '{{.Size}}' "$image" | awk '{printf "%.1f MB", $1/1e6}')"
