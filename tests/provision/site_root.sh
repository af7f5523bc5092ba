#!/usr/bin/env bash
# Print the path of a cached root for the multi-host test: the single-host
# test's root (build_root.sh) plus every Debian package the play installs, so
# that guests without a route to the mirrors provision from it. MariaDB comes
# disabled (the mysql role enables it on the database host only), and apt's
# lists are marked fresh at each call so that the play's apt tasks
# (cache_valid_time) need no network.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${SISOCK_TEST_CACHE:-/var/cache/sisock-test}
STEPS=1
PACKAGES="python3-venv python3-packaging rsync mariadb-server python3-pymysql lm-sensors"

base=$("$HERE/build_root.sh")
key=$(echo "$base $PACKAGES $STEPS" | sha256sum | cut -c1-16)
root="$CACHE/site-root-$key"
exec 9>"$CACHE/.site-build.lock"
flock 9
if [ ! -e "$root/.complete" ]; then
    rm -rf "$root.tmp"
    cp -a --reflink=auto "$base" "$root.tmp"
    rm -f "$root.tmp/.complete"
    cp /etc/resolv.conf "$root.tmp/etc/resolv.conf"
    # no service may start inside the chroot while packages are installed
    printf '#!/bin/sh\nexit 101\n' > "$root.tmp/usr/sbin/policy-rc.d"
    chmod +x "$root.tmp/usr/sbin/policy-rc.d"
    chroot "$root.tmp" apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive chroot "$root.tmp" apt-get install -y -qq --no-install-recommends $PACKAGES >&2
    rm "$root.tmp/usr/sbin/policy-rc.d"
    chroot "$root.tmp" systemctl disable -q mariadb.service >&2
    chroot "$root.tmp" apt-get clean
    touch "$root.tmp/.complete"
    mv "$root.tmp" "$root"
    find "$CACHE" -maxdepth 1 -name 'site-root-*' ! -name "site-root-$key" -exec rm -rf {} +
fi
mkdir -p "$root/var/lib/apt/periodic"
touch "$root/var/lib/apt/periodic/update-success-stamp" "$root/var/lib/apt/lists"
echo "$root"
