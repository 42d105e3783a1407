#!/bin/sh
# Installs the Debian 12 packages scepd builds with and its tests use.
# Runs apt-get only when something is missing, so repeated runs are quick.
set -eu
PKGS="build-essential cmake pkg-config libssl-dev libmicrohttpd-dev libsqlite3-dev
libjansson-dev libcurl4-openssl-dev libcmocka-dev libjemalloc-dev sqlite3 openssl python3 python3-cryptography curl
scep strongswan-pki libstrongswan-extra-plugins certmonger dbus clang-format
clang-14 libclang-rt-14-dev"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "scripts/deps.sh: missing packages:$missing; run as root or: sudo apt-get install$missing" >&2
    exit 1
fi
echo "installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# certmonger's postinst wants a running system bus; the tests start their own.
apt-get install -y -qq --no-install-recommends $missing >/dev/null
