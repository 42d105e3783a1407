#!/usr/bin/env bash
# HTTP front end of scepd: paths, methods, content types, limits, the
# operations' plain-HTTP errors, HTTP/1.0, and scepctl without a server.
# Every check is one PASS/FAIL line; the server must stay up throughout and
# its log must never contain the challenge.
#
#   tests/http/test_http.sh [BUILD_DIR]
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../interop/lib.sh
source "$HERE/../interop/lib.sh" "${1:-}"
require_bin "$SCEPD" "$SCEPCTL" curl openssl python3

CHALLENGE="http-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
D="$WORK/data"
init_scepd "$D" "$CHALLENGE"
start_scepd "$D"
BASE="http://127.0.0.1:$SCEPD_PORT"

# expect NAME WANT_STATUS WANT_CTYPE_PREFIX curl-args...
expect() {
    local name=$1 want=$2 ctype=$3 out st ct
    shift 3
    out=$(curl -s -o "$WORK/body" -w '%{http_code} %{content_type}' "$@" || true)
    st=${out%% *}
    ct=${out#* }
    if [[ $st == "$want" && $ct == "$ctype"* ]]; then pass "$name"; else
        fail "$name" "got HTTP $st '$ct', want $want '$ctype' ($(head -c 200 "$WORK/body" | tr -d '\0'))"; fi
}

expect caps-text-plain 200 text/plain "$BASE/scep?operation=GetCACaps"
if grep -qx POSTPKIOperation "$WORK/body" && grep -qx SCEPStandard "$WORK/body" &&
    grep -qx AES "$WORK/body" && grep -qx DES3 "$WORK/body" && grep -qx SHA-256 "$WORK/body" &&
    grep -qx SHA-1 "$WORK/body" && grep -qx SHA-512 "$WORK/body" && grep -qx Renewal "$WORK/body" &&
    ! grep -q GetNextCACert "$WORK/body"; then
    pass caps-keywords
else fail caps-keywords "$(tr '\n' ' ' <"$WORK/body")"; fi
expect cacert-ra-cert 200 application/x-x509-ca-ra-cert "$BASE/scep?operation=GetCACert"
first=$(openssl pkcs7 -inform DER -in "$WORK/body" -print_certs 2>/dev/null | grep -m1 subject= || true)
if [[ $first == *"scepd RA"* ]]; then pass cacert-ra-first; else fail cacert-ra-first "first: $first"; fi
expect cacert-windows-message-default 200 application/x-x509-ca-ra-cert \
    "$BASE/scep/pkiclient.exe?operation=GetCACert&message=default"
expect cacert-cgi-bin 200 application/x-x509-ca-ra-cert "$BASE/cgi-bin/pkiclient.exe?operation=GetCACert"
expect cacert-ndes-path 200 application/x-x509-ca-ra-cert "$BASE/certsrv/mscep/mscep.dll?operation=GetCACert"
expect caps-named-endpoint 200 text/plain "$BASE/scep/default?operation=GetCACaps&message=ca"
expect caps-http10 200 text/plain --http1.0 "$BASE/scep?operation=GetCACaps"
expect unknown-endpoint-404 404 text/plain "$BASE/scep/nosuch?operation=GetCACaps"
expect unknown-path-404 404 text/plain "$BASE/other?operation=GetCACaps"
expect no-operation-400 400 text/plain "$BASE/scep"
expect unknown-operation-400 400 text/plain "$BASE/scep?operation=GetCRLs"
expect put-405 405 text/plain -X PUT --data x "$BASE/scep?operation=PKIOperation"
expect post-getcacert-405 405 text/plain -X POST --data x "$BASE/scep?operation=GetCACert"
expect post-empty-400 400 text/plain -X POST --data-binary @/dev/null "$BASE/scep?operation=PKIOperation"
expect post-garbage-400 400 text/plain -X POST --data-binary "not der" "$BASE/scep?operation=PKIOperation"
expect get-bad-base64-400 400 text/plain "$BASE/scep?operation=PKIOperation&message=%25%25%25"
expect get-no-message-400 400 text/plain "$BASE/scep?operation=PKIOperation"
head -c 300000 /dev/zero >"$WORK/big"
expect post-oversize-413 413 text/plain -X POST --data-binary @"$WORK/big" "$BASE/scep?operation=PKIOperation"
expect post-oversize-chunked-413 413 text/plain -X POST -H "Transfer-Encoding: chunked" \
    --data-binary @"$WORK/big" "$BASE/scep?operation=PKIOperation"
expect still-alive 200 text/plain "$BASE/scep?operation=GetCACaps"

# Cisco IOS style: PKIOperation by GET over HTTP/1.0 (enrolls, certificate checked by scep-bench)
out=$("$BUILD_DIR/scep-bench" --url "$SCEPD_URL" --challenge "$CHALLENGE" -n 3 -c 1 --method get --http1.0 \
    --verify all --key-cache "$BUILD_DIR/bench-keys" 2>&1 || true)
if grep -q "failures=0 " <<<"$out" && [[ $(grep -c 'method=GET http=1.0 msgtype=19(PKCSReq).*pki=SUCCESS' "$SCEPD_LOG") == 3 ]]; then
    pass pkioperation-get-http10; else fail pkioperation-get-http10 "$out"; fi

# Apple style: GET with '+' and '/' left raw in message= (only '=' escaped)
before=$(grep -c 'pki=SUCCESS' "$SCEPD_LOG" || true)
out=$("$BUILD_DIR/scep-bench" --url "$SCEPD_URL" --challenge "$CHALLENGE" -n 6 -c 2 --method get-apple \
    --verify all --key-cache "$BUILD_DIR/bench-keys" 2>&1 || true)
after=$(grep -c 'pki=SUCCESS' "$SCEPD_LOG" || true)
if grep -q "failures=0 " <<<"$out" && ((after - before == 6)); then pass pkioperation-get-apple-raw-plus-slash; else
    fail pkioperation-get-apple-raw-plus-slash "$out"; fi

# The admin API needs the token.
if curl -s --unix-socket "$D/admin.sock" -o "$WORK/body" -w '%{http_code}' http://x/v1/certs | grep -q 401; then
    pass admin-needs-token
else fail admin-needs-token "$(cat "$WORK/body")"; fi
if curl -s --unix-socket "$D/admin.sock" -H "Authorization: Bearer wrong" -o /dev/null -w '%{http_code}' \
    http://x/v1/certs | grep -q 401; then pass admin-wrong-token; else fail admin-wrong-token "accepted"; fi
if [[ $(stat -c %a "$D/admin.sock") == 600 && $(stat -c %a "$D/ca.key") == 600 &&
    $(stat -c %a "$D/ra.key") == 600 && $(stat -c %a "$D/secret.key") == 600 &&
    $(stat -c %a "$D/admin.token") == 600 ]]; then pass secret-file-modes; else
    fail secret-file-modes "$(stat -c '%n %a' "$D"/*)"; fi

if grep -qa "$CHALLENGE" "$SCEPD_LOG" "$D"/scepd.db*; then fail no-challenge-at-rest "challenge found in log or db"; else
    pass no-challenge-at-rest; fi

# Its threads are named for what they do (top -H, perf, gdb)
names=$(cat /proc/"$SCEPD_PID"/task/*/comm | sort -u | tr '\n' ' ')
if [[ $names == *scepd-worker* && $names == *scepd-writer* && $names == *scepd-ckpt* &&
    $names == *scepd-reaper* ]]; then pass thread-names; else fail thread-names "$names"; fi

# One scepd per data directory, and one per address: a second is refused
# and the first goes on serving (SO_REUSEPORT once let two share the port).
rc=0
msg=$(timeout 30 "$SCEPD" serve --data "$D" --listen "127.0.0.1:$(free_port)" 2>&1) || rc=$?
if [[ $rc == 1 && $msg == *"another scepd (pid $SCEPD_PID) is serving $D"* ]]; then
    pass second-serve-same-data-refused
else fail second-serve-same-data-refused "rc=$rc: $(tail -2 <<<"$msg")"; fi
rc=0
msg=$(timeout 30 "$SCEPD" serve --data "$WORK/other" --challenge "$CHALLENGE" \
    --listen "127.0.0.1:$SCEPD_PORT" 2>&1) || rc=$?
if [[ $rc == 1 && $msg == *"--listen 127.0.0.1:$SCEPD_PORT: cannot listen"* ]]; then
    pass second-serve-same-port-refused
else fail second-serve-same-port-refused "rc=$rc: $(tail -2 <<<"$msg")"; fi
code=$(curl -s -o /dev/null -w '%{http_code}' "$SCEPD_URL?operation=GetCACaps" || true)
if [[ $code == 200 ]] && kill -0 "$SCEPD_PID"; then pass first-serve-unaffected; else
    fail first-serve-unaffected "GetCACaps HTTP $code"; fi

stop_scepd
start_scepd "$D" && pass lock-released-on-stop
stop_scepd
rc=0
msg=$("$SCEPCTL" --data "$D" certs list 2>&1) || rc=$?
if [[ $rc == 1 && $msg == *"scepd serve --data"* ]]; then pass scepctl-no-server; else
    fail scepctl-no-server "rc=$rc: $msg"; fi
rc=0
msg=$("$SCEPD" init --data "$D" 2>&1) || rc=$?
if [[ $rc == 2 && $msg == *"not empty"* ]]; then pass init-refuses-existing; else
    fail init-refuses-existing "rc=$rc: $msg"; fi
rc=0
msg=$("$SCEPD" init --data "$WORK/x" --ca-key rsa:1024 2>&1) || rc=$?
if [[ $rc == 2 && $msg == *"rsa:2048"* && ! -e $WORK/x ]]; then pass init-bad-key-spec; else
    fail init-bad-key-spec "rc=$rc: $msg"; fi
finish
