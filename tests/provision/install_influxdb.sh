#!/bin/sh
# Debian's InfluxDB 1.x (influxd 1.6.7), the oracle of the InfluxQL conformance tests; installed
# without starting its service (the tests start their own influxd on free ports). Needs root.
set -eu
command -v influxd >/dev/null && exit 0
[ "$(id -u)" = 0 ] || { echo "install_influxdb.sh: run as root to apt-get install influxdb" >&2; exit 1; }
policy=/usr/sbin/policy-rc.d
made=
if [ ! -e "$policy" ]; then  # keep the package's postinst from starting a system service
    printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod 755 "$policy" && made=1
fi
apt-get update -qq >&2
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends influxdb >&2 || status=$?
[ -z "$made" ] || rm -f "$policy"
exit "${status:-0}"
