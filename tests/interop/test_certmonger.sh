#!/usr/bin/env bash
# shellcheck disable=SC2119
# Interop: certmonger 0.79 (getcert add-scep-ca / getcert request, helper
# /usr/lib/certmonger/scep-submit) against scepd.
#
#   tests/interop/test_certmonger.sh [BUILD_DIR]
#
# The script re-runs itself under "dbus-run-session" and starts a private
# "certmonger -s -n" (session bus, no fork) whose state lives in a temp dir
# (HOME, XDG_CONFIG_HOME and CERTMONGER_{REQUESTS,CAS,LOCAL_CA}_DIR,
# CERTMONGER_TMPDIR), so /var/lib/certmonger and ~/.config are untouched.
# HOME etc. are exported *before* dbus-run-session so that even a
# D-Bus-activated certmonger-session would use the temp dir.
#
# Variants: default endpoint ("post") and a --get-only data dir ("get").
# NB: certmonger 0.79.17's scep-submit sends PKIOperation by GET even when
# POSTPKIOperation is advertised (scepd logs method=GET for the default
# endpoint too), so both variants exercise GET; the script logs the method.
# Also a negative: wrong challenge -> CA_REJECTED and no certificate.  With
# a FAILURE CertRep that omits eContent (RFC 8894 style) certmonger cannot
# verify it (PKCS7_verify: "no content") and reports CA_UNREACHABLE instead.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SELF="$HERE/$(basename "${BASH_SOURCE[0]}")"

if [[ ${SCEPD_INTEROP_IN_DBUS:-0} != 1 ]]; then
    if ! command -v dbus-run-session >/dev/null 2>&1; then
        echo "FAIL prerequisites: dbus-run-session not found"
        exit 1
    fi
    CM_STATE=$(mktemp -d "${TMPDIR:-/tmp}/scepd-interop-cm.XXXXXX")
    mkdir -p "$CM_STATE"/{home,config,requests,cas,local,tmp}
    export SCEPD_INTEROP_IN_DBUS=1 SCEPD_INTEROP_CM_STATE="$CM_STATE"
    export HOME="$CM_STATE/home" XDG_CONFIG_HOME="$CM_STATE/config" \
        XDG_DATA_HOME="$CM_STATE/home/.local/share" \
        CERTMONGER_REQUESTS_DIR="$CM_STATE/requests" \
        CERTMONGER_CAS_DIR="$CM_STATE/cas" \
        CERTMONGER_LOCAL_CA_DIR="$CM_STATE/local" \
        CERTMONGER_TMPDIR="$CM_STATE/tmp"
    rc=0
    timeout 115 dbus-run-session -- bash "$SELF" "$@" || rc=$?
    if [[ ${KEEP_WORK:-0} == 1 ]]; then
        echo "# KEEP_WORK=1: kept $CM_STATE"
    else
        rm -rf "$CM_STATE"
    fi
    ((rc == 124)) && echo "FAIL certmonger-timeout: test exceeded 115s"
    exit "$rc"
fi

# shellcheck source=lib.sh
source "$HERE/lib.sh" "${1:-}"

require_bin "$SCEPD" "$SCEPCTL" certmonger getcert dbus-send openssl python3 timeout

CHALLENGE="interop-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
CM_LOG="$WORK/certmonger.log"
CM_PID=""

bus_has_certmonger() {
    dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
        org.freedesktop.DBus.NameHasOwner string:org.fedorahosted.certmonger 2>/dev/null |
        grep -q 'boolean true'
}

start_certmonger() {
    local i
    log "certmonger -s -n -d 2 (state in $SCEPD_INTEROP_CM_STATE)"
    certmonger -s -n -d 2 >"$CM_LOG" 2>&1 &
    CM_PID=$!
    add_cleanup "_kill_pid $CM_PID"
    for ((i = 0; i < 100; i++)); do
        if bus_has_certmonger; then
            return 0
        fi
        kill -0 "$CM_PID" 2>/dev/null || break
        sleep 0.1
    done
    fail certmonger-start "certmonger -s -n did not own org.fedorahosted.certmonger within 10s"
    show_tail "$CM_LOG"
    return 1
}

# log_request NAME CA_NICK CN: show the getcert request command line.
log_request() {
    log "getcert request -s -c $2 -I $1 -k $WORK/$1/key.pem -f $WORK/$1/cert.pem -L <challenge> -N CN=$3,O=scepd-interop -D $3.example.test"
}

# request_cert NAME CA_NICK CHALLENGE CN -> prints final status to stdout.
# Polls "getcert list -i NAME" for up to 60s.
request_cert() {
    local name=$1 ca=$2 chal=$3 cn=$4 d="$WORK/$1" i st=""
    mkdir -p "$d"
    if ! getcert request -s -c "$ca" -I "$name" -k "$d/key.pem" -f "$d/cert.pem" \
        -L "$chal" -N "CN=$cn,O=scepd-interop" -D "$cn.example.test" >"$d/request.log" 2>&1; then
        echo "getcert-request-failed: $(tr '\n' ' ' <"$d/request.log")"
        return 0
    fi
    for ((i = 0; i < 60; i++)); do
        getcert list -s -i "$name" >"$d/list.txt" 2>&1 || true
        st=$(sed -n 's/^[[:space:]]*status: //p' "$d/list.txt" | head -n 1)
        case $st in
        MONITORING | CA_REJECTED | CA_UNREACHABLE | CA_UNCONFIGURED | NEED_GUIDANCE | NEED_CA | NEED_TO_NOTIFY_REJECTION)
            break
            ;;
        esac
        sleep 1
    done
    echo "${st:-unknown}"
}

# add_ca NICK URL
add_ca() {
    local nick=$1 url=$2 out
    log "getcert add-scep-ca -s -c $nick -u $url"
    if ! out=$(getcert add-scep-ca -s -c "$nick" -u "$url" 2>&1); then
        fail "$nick-add-scep-ca" "$out"
        return 1
    fi
    return 0
}

# enroll NAME DATADIR
enroll() {
    local name=$1 dir=$2 d="$WORK/$1" st before methods err
    add_ca "$name" "$SCEPD_URL" || return 0
    before=$(log_lines "$SCEPD_LOG")
    log_request "$name" "$name" "$name"
    st=$(request_cert "$name" "$name" "$CHALLENGE" "$name")
    getcert list-cas -s -c "$name" >"$d/list-cas.txt" 2>&1 || true
    if [[ $st != MONITORING ]]; then
        err=$(sed -n 's/^[[:space:]]*ca-error: //p' "$d/list.txt" | head -n 1)
        fail "$name" "getcert status $st (want MONITORING; polled up to 60s); ca-error: ${err:-none}"
        sed 's/^/#   | /' "$d/list-cas.txt" | grep -v -e BEGIN -e END -e '^#   |  [A-Za-z0-9+/=]*$' | head -n 12
        grep -iE 'scep|error|fail|helper' "$CM_LOG" | tail -n 8 | sed 's/^/#   | /'
        show_tail "$SCEPD_LOG" 8
        return 0
    fi
    check_cert "$name" "$d/cert.pem" "$d/key.pem" "$name" "$dir" || { show_tail "$SCEPD_LOG" 6; return 0; }
    if openssl x509 -in "$d/cert.pem" -noout -ext subjectAltName 2>/dev/null | grep -qF "DNS:$name.example.test"; then
        pass "$name-san"
    else
        fail "$name-san" "issued cert lacks DNS:$name.example.test"
    fi
    methods=$(scepd_pkiop_methods "$SCEPD_LOG" "$before")
    log "  scepd logged PKIOperation method(s) for certmonger: '${methods:-not shown}'"
}

start_certmonger || finish

# --- default endpoint -----------------------------------------------------
D_POST="$WORK/data-post"
if init_scepd "$D_POST" "$CHALLENGE" && start_scepd "$D_POST"; then
    enroll certmonger-post "$D_POST"

    # negative: wrong challenge
    NEG=certmonger-wrongchallenge
    log_request "$NEG" certmonger-post "$NEG"
    st=$(request_cert "$NEG" certmonger-post "not-$CHALLENGE" "$NEG")
    n=$(ctl_count_subject "$D_POST" "$NEG") || n=error
    if [[ $st == MONITORING || -s $WORK/$NEG/cert.pem ]]; then
        fail "$NEG" "certificate issued despite wrong challenge (status $st)"
    elif [[ $n != 0 ]]; then
        fail "$NEG" "scepctl certs list shows $n certificate(s) for CN=$NEG"
    elif [[ $st != CA_REJECTED ]]; then
        err=$(sed -n 's/^[[:space:]]*ca-error: //p' "$WORK/$NEG/list.txt")
        fail "$NEG" "expected CA_REJECTED, got $st; ca-error: $err"
        if [[ $err == *"no content"* ]]; then
            log "  hint: certmonger verifies CertReps with PKCS7_verify(), which fails with 'no content'"
            log "  when the FAILURE/PENDING CertRep omits eContent; an empty (zero-length) eContent"
            log "  OCTET STRING verifies. No certificate was issued (scepctl list checked)."
        fi
        log "  scepd said: $(scepd_pkiop_lines "$SCEPD_LOG" | tail -n 1)"
    else
        pass "$NEG"
        log "  ca-error: $(sed -n 's/^[[:space:]]*ca-error: //p' "$WORK/$NEG/list.txt")"
    fi
    getcert stop-tracking -s -i "$NEG" >/dev/null 2>&1 || true

    # renewal: "getcert resubmit" re-enrolls; with Renewal advertised certmonger
    # signs the new request with the certificate it holds (a renewal, no challenge)
    R=certmonger-post
    if [[ -s $WORK/$R/cert.pem ]]; then
        old_serial=$(openssl x509 -in "$WORK/$R/cert.pem" -noout -serial | cut -d= -f2)
        before=$(log_lines "$SCEPD_LOG")
        getcert resubmit -s -i "$R" >"$WORK/$R/resubmit.log" 2>&1 || true
        new_serial=$old_serial
        for ((i = 0; i < 60; i++)); do
            new_serial=$(openssl x509 -in "$WORK/$R/cert.pem" -noout -serial 2>/dev/null | cut -d= -f2)
            [[ -n $new_serial && $new_serial != "$old_serial" ]] && break
            sleep 1
        done
        if [[ $new_serial != "$old_serial" ]]; then
            check_cert "$R-renewed" "$WORK/$R/cert.pem" "$WORK/$R/key.pem" "$R" "$D_POST"
            if tail -n +"$((before + 1))" "$SCEPD_LOG" | grep -q "renewed .*old=$(tr 'A-F' 'a-f' <<<"$old_serial")"; then
                pass "$R-renewal-signed-by-old-cert"
            else
                fail "$R-renewal-signed-by-old-cert" "scepd did not log a renewal of $old_serial"
                show_tail "$SCEPD_LOG" 4
            fi
        else
            fail "$R-renewed" "certificate not replaced within 60 s after getcert resubmit"
            show_tail "$SCEPD_LOG" 4
        fi
    fi
fi

# --- --get-only endpoint ----------------------------------------------------
D_GET="$WORK/data-get"
if init_scepd "$D_GET" "$CHALLENGE" --get-only && start_scepd "$D_GET"; then
    enroll certmonger-get "$D_GET"
fi

finish
