#!/usr/bin/env bash
# scepd serve --rsa-path (daemon/rsapath.c): the start-up choice of
# OpenSSL's RSA code path is made once, logged, applied to the running
# process (OPENSSL_ia32cap in its environment after it executed itself
# again, same pid), never overrides an operator's OPENSSL_ia32cap, and the
# server enrolls afterwards.  Bad values are usage errors.
#
#   tests/http/test_rsapath.sh [BUILD_DIR]
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../interop/lib.sh
source "$HERE/../interop/lib.sh" "${1:-}"
BENCH="$BUILD_DIR/scep-bench"
require_bin "$SCEPD" "$BENCH" curl

CHALLENGE="rsapath-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
D="$WORK/data"
init_scepd "$D" "$CHALLENGE"

# CPUs with both paths (AVX2, BMI2, ADX) are the ones where a choice is made,
# unless they have AVX-512 IFMA, which OpenSSL signs RSA-2048 with on either
# (the test's RA key is RSA-2048): then OpenSSL's is kept without measuring.
both=0
if grep -qw avx2 /proc/cpuinfo && grep -qw bmi2 /proc/cpuinfo && grep -qw adx /proc/cpuinfo; then
    both=1
fi
ifma=0
if grep -qw avx512f /proc/cpuinfo && grep -qw avx512dq /proc/cpuinfo &&
    grep -qw avx512ifma /proc/cpuinfo && grep -qw avx512vl /proc/cpuinfo; then
    ifma=1
fi

rc=0
out=$("$SCEPD" serve --data "$D" --rsa-path fastest 2>&1) || rc=$?
if [[ $rc == 2 && $out == *"--rsa-path fastest: use auto"* ]]; then pass bad-value-usage; else
    fail bad-value-usage "rc=$rc: $out"; fi

v=$("$SCEPD" rsa-speed "$D/ra.key" 100 || true)
if python3 -c "import sys; sys.exit(0 if float('$v') > 0 else 1)" 2>/dev/null; then
    pass rsa-speed-measures
else fail rsa-speed-measures "printed '$v'"; fi
rc=0
rc2=0
"$SCEPD" rsa-speed "$WORK/no-such.key" 100 >/dev/null 2>&1 || rc=$?
"$SCEPD" rsa-speed >/dev/null 2>&1 || rc2=$?
if [[ $rc == 1 && $rc2 == 2 ]]; then pass rsa-speed-errors; else fail rsa-speed-errors "rc=$rc/$rc2"; fi

environ_cap() { tr '\0' '\n' <"/proc/$1/environ" | sed -n 's/^OPENSSL_ia32cap=//p'; }

# serve_with NAME [ENV=VALUE] -- [serve args]: start, check one "rsa path" line; sets LINE and CAP
serve_with() {
    local name=$1 envset=$2
    shift 2
    if [[ -n $envset ]]; then export "${envset?}"; fi
    SCEPD_SERVE_ARGS="$*" start_scepd "$D"
    if [[ -n $envset ]]; then unset "${envset%%=*}"; fi
    LINE=$(grep -o 'rsa path=.*' "$SCEPD_LOG" || true)
    CAP=$(environ_cap "$SCEPD_PID")
    if [[ $(grep -c 'rsa path=' "$SCEPD_LOG") == 1 ]]; then pass "$name-logged-once"; else
        fail "$name-logged-once" "$(grep 'rsa path=' "$SCEPD_LOG" | tr '\n' '|')"; fi
}

enrolls() {
    if "$BENCH" --url "$SCEPD_URL" --challenge "$CHALLENGE" -n 3 -c 1 --key-cache "$WORK/keys" \
        >"$WORK/bench.out" 2>&1 && grep -q 'failures=0' "$WORK/bench.out"; then
        pass "$1-enrolls"
    else fail "$1-enrolls" "$(tail -3 "$WORK/bench.out")"; fi
}

# auto: a measured choice; when it is AVX2 the process runs with the variable set
serve_with auto ""
if [[ $both == 0 && $LINE == *'path=openssl reason="one path on this CPU"'* && -z $CAP ]]; then
    pass auto-choice
elif [[ $both == 1 && $ifma == 1 && $LINE == *'path=openssl reason="AVX-512 IFMA:'* && -z $CAP ]]; then
    pass auto-choice
elif [[ $both == 1 && $ifma == 0 && $LINE == *"path=avx2 chosen_by=measurement"* &&
    $CAP == ":~0x80100" ]]; then
    pass auto-choice
elif [[ $both == 1 && $ifma == 0 && $LINE == *"path=openssl chosen_by=measurement"* && -z $CAP ]]; then
    pass auto-choice
else fail auto-choice "line '$LINE', OPENSSL_ia32cap '$CAP'"; fi
log "auto: $LINE"
enrolls auto
stop_scepd

serve_with openssl "" --rsa-path openssl
if [[ $LINE == *"path=openssl"* && -z $CAP ]]; then pass openssl-kept; else
    fail openssl-kept "line '$LINE', OPENSSL_ia32cap '$CAP'"; fi
stop_scepd

if [[ $both == 1 ]]; then
    serve_with avx2 "" --rsa-path avx2
    if [[ $LINE == *"path=avx2 chosen_by=--rsa-path"* && $CAP == ":~0x80100" ]]; then
        pass avx2-forced
    else fail avx2-forced "line '$LINE', OPENSSL_ia32cap '$CAP'"; fi
    # executed again as /proc/self/exe, it keeps its name for ps, top and pidof
    name=$(cat "/proc/$SCEPD_PID/comm")
    others=$(cat /proc/"$SCEPD_PID"/task/*/comm | grep -c '^exe$' || true)
    if [[ $name == "$(basename "$SCEPD")" && $others == 0 ]]; then pass avx2-keeps-name; else
        fail avx2-keeps-name "comm '$name', $others threads named exe"; fi
    enrolls avx2
    stop_scepd
fi

# an operator's own setting wins, whatever --rsa-path says
serve_with operator "OPENSSL_ia32cap=:~0x0" --rsa-path avx2
if [[ $LINE == *"path=environment OPENSSL_ia32cap=:~0x0"* && $CAP == ":~0x0" ]]; then
    pass operator-obeyed
else fail operator-obeyed "line '$LINE', OPENSSL_ia32cap '$CAP'"; fi
stop_scepd

finish
