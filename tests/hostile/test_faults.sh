#!/usr/bin/env bash
# Infrastructure faults and durability (matrix F1, F5):
#  - kill -9 at random moments under concurrent enrollment, many times;
#    afterwards every certificate a client received is in the database, no
#    serial appears twice, no request is half-done, integrity_check is ok;
#  - SIGTERM under concurrent enrollment: a clean stop (status 0, within
#    10 s) that loses no certificate a client received;
#  - the final certificate insert fails (a trigger): HTTP 503, nothing
#    written, and the same enrollment succeeds once the fault is gone.
#
#   tests/hostile/test_faults.sh [BUILD_DIR]     (KILLS=N, default 25)
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../interop/lib.sh
source "$HERE/../interop/lib.sh" "${1:-}"
BENCH="$BUILD_DIR/scep-bench"
require_bin "$SCEPD" "$SCEPCTL" "$BENCH" sqlite3 python3
KILLS=${KILLS:-25}
CHALLENGE="fault-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"

D="$WORK/kill9"
init_scepd "$D" "$CHALLENGE"
: >"$WORK/received"
completed=0
for ((k = 1; k <= KILLS; k++)); do
    start_scepd "$D" >/dev/null
    "$BENCH" --url "$SCEPD_URL" --challenge "$CHALLENGE" -n 150 -c 8 \
        --key-cache "$BUILD_DIR/bench-keys" --serials "$WORK/s.$k" >"$WORK/b.$k" 2>/dev/null &
    bpid=$!
    # kill -9 somewhere between 0.1 s and 1.2 s into the run (requests are then in flight:
    # the client prepares its 150 messages in well under 0.1 s from its key cache)
    sleep "$(python3 -c 'import random; print(round(random.uniform(0.1, 1.2), 3))')"
    kill -KILL "$SCEPD_PID" 2>/dev/null || true
    wait "$SCEPD_PID" 2>/dev/null || true
    wait "$bpid" 2>/dev/null || true
    cat "$WORK/s.$k" >>"$WORK/received"
done
completed=$(wc -l <"$WORK/received")
dup=$(sort "$WORK/received" | uniq -d | wc -l)
python3 - "$D/scepd.db" "$WORK/received" >"$WORK/check" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
have = {r[0] for r in db.execute("SELECT serial FROM certificate")}
got = [l.strip() for l in open(sys.argv[2]) if l.strip()]
lost = [s for s in got if s not in have]
dup = db.execute("SELECT count(*) - count(DISTINCT serial) FROM certificate").fetchone()[0]
half = db.execute("SELECT count(*) FROM request r LEFT JOIN certificate c ON c.serial = r.serial"
                  " WHERE r.status = 'issued' AND c.serial IS NULL").fetchone()[0]
orphan = db.execute("SELECT count(*) FROM certificate c LEFT JOIN request r ON r.id = c.request_id"
                    " WHERE r.id IS NULL").fetchone()[0]
ic = db.execute("PRAGMA integrity_check").fetchone()[0]
rows = db.execute("SELECT count(*) FROM certificate").fetchone()[0]
print(len(lost), dup, half, orphan, ic, rows)
PY
read -r lost dbdup half orphan ic rows <"$WORK/check"
log "kill -9: kills=$KILLS enrollments-completed=$completed certificates-in-db=$rows lost=$lost duplicate-serials=$((dup + dbdup)) half-done=$((half + orphan)) integrity=$ic"
if ((completed > 0)); then pass kill9-some-completed; else fail kill9-some-completed "no enrollment completed"; fi
if [[ $lost == 0 ]]; then pass kill9-no-certificate-lost; else fail kill9-no-certificate-lost "$lost received certificates missing from the database"; fi
if [[ $dup == 0 && $dbdup == 0 ]]; then pass kill9-no-duplicate-serial; else fail kill9-no-duplicate-serial "client dup=$dup db dup=$dbdup"; fi
if [[ $half == 0 && $orphan == 0 ]]; then pass kill9-nothing-half-done; else fail kill9-nothing-half-done "issued requests without certificate=$half, certificates without request=$orphan"; fi
if [[ $ic == ok ]]; then pass kill9-integrity-check; else fail kill9-integrity-check "$ic"; fi
# and it still serves after all that
start_scepd "$D" >/dev/null
if "$BENCH" --url "$SCEPD_URL" --challenge "$CHALLENGE" -n 20 -c 4 --key-cache "$BUILD_DIR/bench-keys" \
    --verify all >"$WORK/after" 2>&1; then pass kill9-serves-after; else fail kill9-serves-after "$(cat "$WORK/after")"; fi
stop_scepd

# SIGTERM under load: scepd drains its PKIOperation queue (the workers finish
# and resume every suspended connection), stops within 10 s with status 0,
# and every certificate a client received is in the database.
T="$WORK/term"
init_scepd "$T" "$CHALLENGE"
: >"$WORK/term-received"
term_bad=""
for ((k = 1; k <= 5; k++)); do
    start_scepd "$T" >/dev/null
    "$BENCH" --url "$SCEPD_URL" --challenge "$CHALLENGE" -n 150 -c 8 \
        --key-cache "$BUILD_DIR/bench-keys" --serials "$WORK/t.$k" >"$WORK/tb.$k" 2>/dev/null &
    bpid=$!
    sleep "$(python3 -c 'import random; print(round(random.uniform(0.1, 0.6), 3))')"
    kill -TERM "$SCEPD_PID"
    for ((i = 0; i < 100; i++)); do kill -0 "$SCEPD_PID" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$SCEPD_PID" 2>/dev/null; then
        term_bad+=" run $k: still running 10 s after SIGTERM;"
        kill -KILL "$SCEPD_PID" 2>/dev/null || true
    fi
    rc=0
    wait "$SCEPD_PID" 2>/dev/null || rc=$?
    [[ $rc == 0 ]] || term_bad+=" run $k: exit status $rc;"
    wait "$bpid" 2>/dev/null || true
    cat "$WORK/t.$k" >>"$WORK/term-received"
done
read -r tlost tic tissued <<<"$(python3 - "$T/scepd.db" "$WORK/term-received" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
have = {r[0] for r in db.execute("SELECT serial FROM certificate")}
got = [l.strip() for l in open(sys.argv[2]) if l.strip()]
print(len([s for s in got if s not in have]), db.execute("PRAGMA integrity_check").fetchone()[0],
      len(have))
PY
)"
log "SIGTERM: runs=5 issued=$tissued received=$(wc -l <"$WORK/term-received") lost=$tlost integrity=$tic${term_bad:+ problems:$term_bad}"
if [[ -z $term_bad ]]; then pass term-stops-cleanly; else fail term-stops-cleanly "$term_bad"; fi
if [[ $tlost == 0 && $tic == ok ]]; then pass term-nothing-lost; else
    fail term-nothing-lost "$tlost received certificates missing from the database, integrity=$tic"; fi

# F5: the final certificate insert fails.
F="$WORK/f5"
init_scepd "$F" "$CHALLENGE"
sqlite3 "$F/scepd.db" "CREATE TRIGGER inject_fault BEFORE INSERT ON certificate BEGIN SELECT RAISE(ABORT, 'injected fault'); END;"
start_scepd "$F" >/dev/null
out=$("$BENCH" --url "$SCEPD_URL" --challenge "$CHALLENGE" -n 4 -c 2 --key-cache "$BUILD_DIR/bench-keys" 2>&1 || true)
if grep -q "HTTP status 503" <<<"$out" && grep -q "failures=4 " <<<"$out"; then pass f5-insert-fault-503; else
    fail f5-insert-fault-503 "$out"; fi
n=$(sqlite3 "$F/scepd.db" "SELECT (SELECT count(*) FROM certificate) + (SELECT count(*) FROM request)")
if [[ $n == 0 ]]; then pass f5-nothing-written; else fail f5-nothing-written "$n rows written"; fi
if grep -q 'status=503' "$SCEPD_LOG" && ! grep -q 'pki=SUCCESS' "$SCEPD_LOG"; then pass f5-logged-503; else
    fail f5-logged-503 "$(grep op=PKIOperation "$SCEPD_LOG" | tail -2)"; fi
stop_scepd
sqlite3 "$F/scepd.db" "DROP TRIGGER inject_fault"
start_scepd "$F" >/dev/null
if "$BENCH" --url "$SCEPD_URL" --challenge "$CHALLENGE" -n 4 -c 2 --key-cache "$BUILD_DIR/bench-keys" \
    --verify all >"$WORK/f5b" 2>&1; then pass f5-challenge-still-works; else fail f5-challenge-still-works "$(cat "$WORK/f5b")"; fi
finish
