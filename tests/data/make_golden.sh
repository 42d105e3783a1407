#!/usr/bin/env bash
# Regenerates tests/data/golden/: a fixture data directory (TEST KEYS ONLY,
# never use them for anything else) and PKIOperation messages captured from
# real clients enrolling against it through capture_proxy.py:
#   scepclient-*.der   micromdm scepclient 2.1 (DES-CBC, base64url GET)
#   strongswan-*.der   strongSwan pki --scep 5.9.8 (3DES, POST)
#   certmonger-*.der   certmonger 0.79.17 (GET)
#   *-badchal-*.der    the same client with a wrong challenge
# Usage: tests/data/make_golden.sh [BUILD_DIR]   (run from the repository root)
set -euo pipefail
BUILD=${1:-build}
OUT=tests/data/golden
CHAL=golden-challenge-2026
W=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$W"' EXIT
rm -rf "$OUT" && mkdir -p "$OUT"
"$BUILD/scepd" init --data "$OUT/datadir" --challenge "$CHAL" --ca-subject "CN=golden CA,O=scepd tests"
cp -a "$OUT/datadir" "$W/live"
port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
P1=$(port); P2=$(port)
"$BUILD/scepd" serve --data "$W/live" --listen "127.0.0.1:$P1" 2>"$W/scepd.log" &
sleep 1
python3 tests/data/capture_proxy.py "$P2" "http://127.0.0.1:$P1/scep" "$W" cap &
sleep 1
URL="http://127.0.0.1:$P2/scep"
cap() { # NAME: move the captures made so far to OUT/NAME-*.der
    local i=0 f
    for f in "$W"/cap-*.der; do [ -e "$f" ] || continue; i=$((i + 1)); mv "$f" "$OUT/$1-$i-${f##*-}"; done
}
mkdir -p "$W/sc" "$W/sc2"
timeout 30 scepclient -server-url "$URL" -private-key "$W/sc/key.pem" -certificate "$W/sc/cert.pem" \
    -challenge "$CHAL" -cn golden-scepclient >/dev/null 2>&1
cap scepclient
timeout 30 scepclient -server-url "$URL" -private-key "$W/sc2/key.pem" -certificate "$W/sc2/cert.pem" \
    -challenge wrong-challenge -cn golden-badchal >/dev/null 2>&1 || true
cap scepclient-badchal
pki --scepca --url "$URL" --caout "$W/ca.pem" --raout "$W/ra.pem" --outform pem --force >/dev/null 2>&1
pki --gen --type rsa --size 2048 --outform pem >"$W/ss.key" 2>/dev/null
timeout 30 pki --scep --url "$URL" --in "$W/ss.key" --dn "CN=golden-strongswan,O=scepd tests" \
    --san golden.example.test --password "$CHAL" --cacert-enc "$W/ra.pem" --cacert-sig "$W/ra.pem" \
    --cacert "$W/ca.pem" --cipher des3 --outform pem >"$W/ss.crt" 2>/dev/null
cap strongswan
ls -l "$OUT"
grep -c 'pki=SUCCESS' "$W/scepd.log"
