#!/usr/bin/env bash
# Print the path of a cached Debian bookworm root that can boot systemd and
# take SSH; build it with debootstrap first if the cache lacks it.
# The cache key is a hash of the suite, the package list, STEPS (raise it when
# the steps below change) and the host's extra CA certificates. A lock keeps
# two test runs from building at once.
set -euo pipefail

CACHE=${SISOCK_TEST_CACHE:-/var/cache/sisock-test}
SUITE=bookworm
MIRROR=${SISOCK_TEST_MIRROR:-http://deb.debian.org/debian}
STEPS=1
PACKAGES=systemd,systemd-sysv,dbus,python3,python3-apt,openssh-server,sudo,ca-certificates,procps

key=$( { echo "$SUITE $PACKAGES $STEPS"; cat /usr/local/share/ca-certificates/*.crt 2>/dev/null || true; } \
    | sha256sum | cut -c1-16)
root="$CACHE/root-$key"
mkdir -p "$CACHE"
exec 9>"$CACHE/.build.lock"
flock 9
if [ -e "$root/.complete" ]; then
    echo "$root"
    exit 0
fi

command -v debootstrap >/dev/null || {
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >&2
}
rm -rf "$root.tmp"
debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$root.tmp" "$MIRROR" >&2
# The host's own CAs (an egress proxy's, a site's) so that pip in the guest
# reaches PyPI as the host does.
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    cp /usr/local/share/ca-certificates/*.crt "$root.tmp/usr/local/share/ca-certificates/"
    chroot "$root.tmp" update-ca-certificates >&2
    # pip trusts its own bundle, not the system's, unless told
    printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' > "$root.tmp/etc/pip.conf"
fi
chroot "$root.tmp" apt-get clean
touch "$root.tmp/.complete"
mv "$root.tmp" "$root"
# roots of older keys are of no more use
find "$CACHE" -maxdepth 1 -name 'root-*' ! -name "root-$key" -exec rm -rf {} +
echo "$root"
