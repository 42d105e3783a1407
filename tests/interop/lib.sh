# shellcheck shell=bash disable=SC2034,SC2120
# Shared helpers for the scepd interop tests (tests/interop/test_*.sh).
#
# Usage from a test script:
#     source "$(dirname "$0")/lib.sh" "${1:-}"
#
# $1 (optional) is the build directory holding scepd and scepctl
# (default /work/main/build).  Set KEEP_WORK=1 to keep the temporary
# directory (data dirs, client output, scepd logs) for inspection.
#
# Every check prints exactly one "PASS name" or "FAIL name: reason" line;
# finish() prints a summary and exits non-zero if any check failed.

set -Eeuo pipefail

BUILD_DIR=${1:-/work/main/build}
BUILD_DIR=${BUILD_DIR%/}
SCEPD="$BUILD_DIR/scepd"
SCEPCTL="$BUILD_DIR/scepctl"

PASS_COUNT=0
FAIL_COUNT=0
SCEPD_PIDS=()
CLEANUP_CMDS=()

WORK=$(mktemp -d "${TMPDIR:-/tmp}/scepd-interop.XXXXXX")

# Last server started by start_scepd (used by the test scripts).
# shellcheck disable=SC2034
SCEPD_PID=""
SCEPD_PORT=""
SCEPD_URL=""
SCEPD_LOG=""

log() { echo "# $*"; }

pass() {
    PASS_COUNT=$((PASS_COUNT + 1))
    echo "PASS $1"
}

fail() {
    FAIL_COUNT=$((FAIL_COUNT + 1))
    echo "FAIL $1: $2"
}

# Indent a file's last N lines (default 15) for diagnostics.
show_tail() {
    local f=$1 n=${2:-15}
    [[ -f $f ]] || return 0
    echo "#   --- tail of $(basename "$f") ---"
    tail -n "$n" "$f" | sed 's/^/#   | /'
}

add_cleanup() { CLEANUP_CMDS+=("$1"); }

_kill_pid() {
    local pid=$1 i
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "# pid $pid did not stop on SIGTERM within 5s, sending SIGKILL" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

_cleanup() {
    local c pid
    trap - ERR
    set +e
    for c in "${CLEANUP_CMDS[@]+"${CLEANUP_CMDS[@]}"}"; do
        eval "$c" >/dev/null 2>&1
    done
    for pid in "${SCEPD_PIDS[@]+"${SCEPD_PIDS[@]}"}"; do
        _kill_pid "$pid"
    done
    if [[ ${KEEP_WORK:-0} == 1 ]]; then
        echo "# KEEP_WORK=1: kept $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap _cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'echo "FAIL script-error: line $LINENO: $BASH_COMMAND (rc=$?)"' ERR

finish() {
    local pid f
    # Every scepd stops cleanly, and (in sanitizer builds) without a report.
    for pid in "${SCEPD_PIDS[@]+"${SCEPD_PIDS[@]}"}"; do
        _kill_pid "$pid"
    done
    for f in "$WORK"/scepd-*.log; do
        [[ -e $f ]] || continue
        if grep -qE 'ERROR: (Address|Leak|Thread)Sanitizer|runtime error:' "$f"; then
            fail "sanitizer-$(basename "$f" .log)" "sanitizer report in $f"
            grep -m1 -A12 -E 'ERROR: .*Sanitizer|runtime error:' "$f" | sed 's/^/#   /'
        fi
    done
    echo "# summary: $PASS_COUNT passed, $FAIL_COUNT failed"
    if ((FAIL_COUNT > 0)); then
        exit 1
    fi
    exit 0
}

# require_bin NAME PATH...: fail and exit if a binary is missing.
require_bin() {
    local b
    for b in "$@"; do
        if [[ $b == */* ]]; then
            [[ -x $b ]] && continue
        else
            command -v "$b" >/dev/null 2>&1 && continue
        fi
        fail "prerequisites" "missing executable $b"
        finish
    done
}

free_port() {
    python3 -c 'import socket
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

# init_scepd DIR CHALLENGE [extra scepd init args...]
init_scepd() {
    local dir=$1 chal=$2
    shift 2
    local out
    out="$WORK/init-$(basename "$dir").log"
    if ! timeout 60 "$SCEPD" init --data "$dir" --challenge "$chal" "$@" >"$out" 2>&1; then
        fail "scepd-init-$(basename "$dir")" "scepd init --data $dir $* failed (rc=$?)"
        show_tail "$out"
        return 1
    fi
    if [[ ! -s $dir/ca.crt || ! -s $dir/ra.crt ]]; then
        fail "scepd-init-$(basename "$dir")" "ca.crt or ra.crt missing in $dir"
        return 1
    fi
    return 0
}

# start_scepd DIR: run "scepd serve" in the background on a free loopback
# port and wait (max 10s) for its "listening on" line.  Sets SCEPD_PID,
# SCEPD_PORT, SCEPD_URL (http://127.0.0.1:PORT/scep) and SCEPD_LOG.
start_scepd() {
    local dir=$1 name attempt port logf pid i
    name=$(basename "$dir")
    for attempt in 1 2 3; do
        port=$(free_port)
        logf="$WORK/scepd-$name.log"
        : >"$logf"
        # shellcheck disable=SC2086 # SCEPD_SERVE_ARGS: extra serve options, word-split on purpose
        "$SCEPD" serve --data "$dir" --listen "127.0.0.1:$port" ${SCEPD_SERVE_ARGS:-} >>"$logf" 2>&1 &
        pid=$!
        SCEPD_PIDS+=("$pid")
        for ((i = 0; i < 100; i++)); do
            if grep -qF "listening on http://127.0.0.1:$port/scep" "$logf"; then
                SCEPD_PID=$pid
                SCEPD_PORT=$port
                SCEPD_URL="http://127.0.0.1:$port/scep"
                SCEPD_LOG=$logf
                log "scepd ($name) pid $pid listening on $SCEPD_URL, log $logf"
                return 0
            fi
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            _kill_pid "$pid"
            fail "scepd-start-$name" "no 'listening on http://127.0.0.1:$port/scep' line within 10s"
            show_tail "$logf"
            return 1
        fi
        # Exited early: maybe the port got taken between probe and bind.
        wait "$pid" 2>/dev/null || true
        log "scepd serve exited early (attempt $attempt), retrying on a new port"
        show_tail "$logf" 5
    done
    fail "scepd-start-$name" "scepd serve exited before listening (3 attempts)"
    return 1
}

# stop_scepd [PID]: SIGTERM the given (default: last started) scepd, wait.
stop_scepd() {
    local pid=${1:-$SCEPD_PID}
    [[ -n $pid ]] || return 0
    _kill_pid "$pid"
}

# scepd_ops LOG: the request log lines for PKIOperation (for diagnostics).
scepd_pkiop_lines() {
    grep -i 'op=PKIOperation' "$1" 2>/dev/null || true
}

# Print the HTTP method scepd logged for PKIOperation requests since line
# $2 of log $1: "GET", "POST", "GET POST" or "" if the log does not say.
scepd_pkiop_methods() {
    local logf=$1 from=${2:-0}
    tail -n +"$((from + 1))" "$logf" | grep -i 'op=PKIOperation' |
        grep -oE '(^|[^A-Za-z])(GET|POST)([^A-Za-z]|$)' | grep -oE 'GET|POST' | sort -u | tr '\n' ' ' | sed 's/ $//' || true
}

log_lines() { wc -l <"$1" | tr -d ' '; }

# ctl_certs_json DIR OUTFILE: scepctl certs list --json into OUTFILE.
ctl_certs_json() {
    local dir=$1 out=$2
    if ! timeout 30 "$SCEPCTL" --data "$dir" certs list --json >"$out" 2>"$out.err"; then
        echo "scepctl --data $dir certs list --json failed: $(head -c 300 "$out.err")"
        return 1
    fi
    if ! python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert isinstance(d, list)' "$out" 2>"$out.err"; then
        echo "scepctl certs list --json did not print a JSON array: $(head -c 200 "$out")"
        return 1
    fi
    return 0
}

# ctl_count_subject DIR CN: number of certificates whose subject contains CN=<CN>.
ctl_count_subject() {
    local dir=$1 cn=$2 out="$WORK/ctl-count.json"
    ctl_certs_json "$dir" "$out" >/dev/null || { echo "error"; return 1; }
    python3 - "$out" "$cn" <<'EOF'
import json, sys
certs = json.load(open(sys.argv[1]))
cn = "CN=" + sys.argv[2]
print(sum(1 for c in certs if cn in str(c.get("subject", ""))))
EOF
}

# to_pem IN OUT: accept a PEM or DER certificate, write PEM.
to_pem() {
    openssl x509 -in "$1" -out "$2" 2>/dev/null ||
        openssl x509 -inform DER -in "$1" -out "$2" 2>/dev/null
}

# check_cert NAME CERT KEY EXPECTED_CN DIR
#   One PASS/FAIL line for NAME.  Asserts that CERT (PEM or DER)
#   - verifies against DIR/ca.crt (openssl verify -CAfile),
#   - carries the public key of private key KEY,
#   - has a subject containing CN=EXPECTED_CN,
#   - has a serial listed by "scepctl --data DIR certs list --json",
#     with status "valid" and the cert's SHA-1 thumbprint.
check_cert() {
    local name=$1 cert=$2 key=$3 cn=$4 dir=$5
    local pem="$WORK/$name.check.pem" json="$WORK/$name.ctl.json" out
    if [[ ! -s $cert ]]; then
        fail "$name" "certificate file $cert missing or empty"
        return 1
    fi
    if ! to_pem "$cert" "$pem"; then
        fail "$name" "$cert is not a parseable X.509 certificate"
        return 1
    fi
    if ! out=$(openssl verify -CAfile "$dir/ca.crt" "$pem" 2>&1); then
        fail "$name" "openssl verify -CAfile $dir/ca.crt: $(echo "$out" | tr '\n' ' ')"
        return 1
    fi
    local kpub cpub
    if ! kpub=$(openssl pkey -in "$key" -pubout -outform DER 2>/dev/null | sha256sum | cut -d' ' -f1); then
        fail "$name" "cannot read private key $key"
        return 1
    fi
    cpub=$(openssl x509 -in "$pem" -noout -pubkey | openssl pkey -pubin -outform DER | sha256sum | cut -d' ' -f1)
    if [[ $kpub != "$cpub" ]]; then
        fail "$name" "certificate public key does not match private key $key"
        return 1
    fi
    local subj
    subj=$(openssl x509 -in "$pem" -noout -subject -nameopt RFC2253 | sed 's/^subject=//')
    if [[ ",$subj," != *",CN=$cn,"* ]]; then
        fail "$name" "subject '$subj' lacks CN=$cn"
        return 1
    fi
    local serial sha1
    serial=$(openssl x509 -in "$pem" -noout -serial | sed 's/^serial=//')
    sha1=$(openssl x509 -in "$pem" -noout -fingerprint -sha1 | sed 's/^.*=//; s/://g' | tr 'A-F' 'a-f')
    if ! out=$(ctl_certs_json "$dir" "$json"); then
        fail "$name" "$out"
        return 1
    fi
    if ! out=$(python3 - "$json" "$serial" "$sha1" <<'EOF'
import json, sys
certs = json.load(open(sys.argv[1]))
def norm(s):
    s = str(s).lower().replace(":", "").strip()
    if s.startswith("0x"):
        s = s[2:]
    return s.lstrip("0") or "0"
want = norm(sys.argv[2])
hits = [c for c in certs if norm(c.get("serial", "")) == want]
if not hits:
    print("serial %s not in scepctl certs list (%d entries: %s)" % (
        sys.argv[2], len(certs), ", ".join(str(c.get("serial")) for c in certs[:10])))
    sys.exit(1)
c = hits[0]
problems = []
if c.get("status") != "valid":
    problems.append("status=%r (want 'valid')" % c.get("status"))
if str(c.get("sha1", "")).lower().replace(":", "") != sys.argv[3]:
    problems.append("sha1=%r (cert has %s)" % (c.get("sha1"), sys.argv[3]))
if problems:
    print("scepctl entry for serial %s: %s" % (sys.argv[2], "; ".join(problems)))
    sys.exit(1)
print("serial %s subject %s" % (sys.argv[2], c.get("subject")))
EOF
    ); then
        fail "$name" "$out"
        return 1
    fi
    pass "$name"
    log "  $name: $out"
    return 0
}
