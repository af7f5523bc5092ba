#!/usr/bin/env bash
# Boot systemd in ROOT; run as root inside `unshare -fpmu --mount-proc`.
# Optional CACHE_DIR: its apt/ and pip/ folders are bind-mounted on the
# guest's apt archive and root's pip cache, so a second run downloads nothing.
# Optional BIND_RO: colon-separated host folders bind-mounted read-only at the
# same paths in the guest (a test runs the host's checkout and venv there).
set -euo pipefail
ROOT=$1
mount --make-rprivate /
mount --bind "$ROOT" "$ROOT"
mount -t proc proc "$ROOT/proc"
mount -t sysfs sysfs "$ROOT/sys"
mount -t tmpfs tmpfs "$ROOT/sys/fs/cgroup"
mkdir -p "$ROOT/sys/fs/cgroup/systemd"
mount -t cgroup -o none,name=systemd cgroup "$ROOT/sys/fs/cgroup/systemd"
if [ -n "${CACHE_DIR:-}" ]; then
    mkdir -p "$CACHE_DIR/apt" "$CACHE_DIR/pip" "$ROOT/var/cache/apt/archives" "$ROOT/root/.cache/pip"
    mount --bind "$CACHE_DIR/apt" "$ROOT/var/cache/apt/archives"
    mount --bind "$CACHE_DIR/pip" "$ROOT/root/.cache/pip"
fi
IFS=: read -r -a binds <<< "${BIND_RO:-}"
for dir in "${binds[@]}"; do
    mkdir -p "$ROOT$dir"
    mount --bind "$dir" "$ROOT$dir"
    mount -o remount,bind,ro "$ROOT$dir"
done
exec chroot "$ROOT" /lib/systemd/systemd --system
