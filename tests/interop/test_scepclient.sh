#!/usr/bin/env bash
# shellcheck disable=SC2119
# Interop: micromdm scepclient (Debian package "scep") against scepd.
#
#   tests/interop/test_scepclient.sh [BUILD_DIR]
#
# 1. POST: default endpoint (GetCACaps advertises POSTPKIOperation).
# 2. GET:  data dir made with "scepd init --get-only"; the client falls
#          back to GET for PKIOperation.  NB: scepclient 2.1.0 sends the
#          GET message in base64url ("-", "_"), not RFC 4648 base64
#          (micromdm/scep issue #249); scepd must accept both.
# 3. Negative: wrong challenge -> scepclient exits non-zero and no
#    certificate for that CN appears in "scepctl certs list".
#
# scepclient has no cipher option: it encrypts with DES-CBC (1.3.14.3.2.7).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$HERE/lib.sh" "${1:-}"

require_bin "$SCEPD" "$SCEPCTL" scepclient curl openssl python3 timeout

CHALLENGE="interop-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"

# run_scepclient NAME URL CHALLENGE CN -> rc; files in $WORK/NAME/{key.pem,cert.pem,client.log}
# Each run gets its own directory: scepclient writes (and re-uses!) csr.pem
# and self.pem next to the -private-key file.
run_scepclient() {
    local name=$1 url=$2 chal=$3 cn=$4 d="$WORK/$1" rc=0
    rm -rf "$d"
    mkdir -p "$d"
    log "scepclient -server-url $url -challenge <challenge> -cn $cn -private-key $d/key.pem -certificate $d/cert.pem -debug"
    timeout 60 scepclient \
        -server-url "$url" \
        -challenge "$chal" \
        -cn "$cn" \
        -private-key "$d/key.pem" \
        -certificate "$d/cert.pem" \
        -debug >"$d/client.log" 2>&1 || rc=$?
    return "$rc"
}

# enroll NAME DATADIR EXPECTED_METHOD
enroll() {
    local name=$1 dir=$2 want_method=$3 cn=$1 rc=0 before methods
    before=$(log_lines "$SCEPD_LOG")
    run_scepclient "$name" "$SCEPD_URL" "$CHALLENGE" "$cn" || rc=$?
    if ((rc != 0)); then
        fail "$name" "scepclient exited $rc: $(grep -v '^$' "$WORK/$name/client.log" | tail -n 1)"
        show_tail "$WORK/$name/client.log" 8
        show_tail "$SCEPD_LOG" 8
        return 0
    fi
    check_cert "$name" "$WORK/$name/cert.pem" "$WORK/$name/key.pem" "$cn" "$dir" || {
        show_tail "$SCEPD_LOG" 8
        return 0
    }
    methods=$(scepd_pkiop_methods "$SCEPD_LOG" "$before")
    if [[ -z $methods ]]; then
        log "  (scepd log does not show the HTTP method of PKIOperation; expected $want_method)"
    elif [[ $methods == "$want_method" ]]; then
        pass "$name-transport-$want_method"
    else
        fail "$name-transport-$want_method" "scepd logged PKIOperation via '$methods'"
    fi
}

# --- 1. POST -------------------------------------------------------------
D_POST="$WORK/data-post"
if init_scepd "$D_POST" "$CHALLENGE" && start_scepd "$D_POST"; then
    caps=$(curl -fsS --max-time 10 "$SCEPD_URL?operation=GetCACaps" 2>&1 | tr -d '\r' | tr '\n' ' ' || true)
    log "GetCACaps (default): $caps"
    enroll scepclient-post "$D_POST" POST

    # --- 3. negative: wrong challenge ------------------------------------
    NEG_CN="scepclient-wrongchallenge"
    rc=0
    run_scepclient scepclient-negative "$SCEPD_URL" "not-$CHALLENGE" "$NEG_CN" || rc=$?
    if ((rc == 0)); then
        fail scepclient-wrong-challenge "scepclient exited 0 with a wrong challenge"
    elif [[ -s $WORK/scepclient-negative/cert.pem ]]; then
        fail scepclient-wrong-challenge "scepclient exited $rc but wrote a certificate"
    else
        n=$(ctl_count_subject "$D_POST" "$NEG_CN") || n=error
        if [[ $n == 0 ]]; then
            pass scepclient-wrong-challenge
            log "  client said: $(grep -v '^$' "$WORK/scepclient-negative/client.log" | tail -n 1)"
            log "  scepd said: $(scepd_pkiop_lines "$SCEPD_LOG" | tail -n 1)"
        else
            fail scepclient-wrong-challenge "scepctl certs list shows $n certificate(s) for CN=$NEG_CN"
        fi
    fi
    stop_scepd
fi

# --- 2. GET (--get-only) -------------------------------------------------
D_GET="$WORK/data-get"
if init_scepd "$D_GET" "$CHALLENGE" --get-only && start_scepd "$D_GET"; then
    caps=$(curl -fsS --max-time 10 "$SCEPD_URL?operation=GetCACaps" 2>&1 | tr -d '\r' | tr '\n' ' ' || true)
    log "GetCACaps (--get-only): $caps"
    if [[ " $caps " == *" POSTPKIOperation "* || " $caps " == *" SCEPStandard "* ]]; then
        fail scepd-get-only-caps "--get-only endpoint still advertises POSTPKIOperation/SCEPStandard: $caps"
    fi
    enroll scepclient-get "$D_GET" GET
    stop_scepd
fi

finish
