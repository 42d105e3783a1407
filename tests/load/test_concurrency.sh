#!/usr/bin/env bash
# Concurrency: 504 enrollments from 8 concurrent keep-alive clients
# (scep-bench, every reply decrypted and its certificate's key compared).
# Checks: all succeed, all serials distinct, every certificate a client
# received is listed by "scepctl certs list", the database holds exactly
# that many certificates and passes PRAGMA integrity_check.
#
#   tests/load/test_concurrency.sh [BUILD_DIR]
#
# Client keys are cached in BUILD_DIR/bench-keys (generated on first run).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../interop/lib.sh
source "$HERE/../interop/lib.sh" "${1:-}"

BENCH="$BUILD_DIR/scep-bench"
require_bin "$SCEPD" "$SCEPCTL" "$BENCH" python3 sqlite3
N=${SCEPD_CONCURRENCY_N:-504}
C=${SCEPD_CONCURRENCY_C:-8}
CHALLENGE="load-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"

D="$WORK/data"
init_scepd "$D" "$CHALLENGE"
start_scepd "$D"

out=$("$BENCH" --url "$SCEPD_URL" --challenge "$CHALLENGE" -n "$N" -c "$C" \
    --key-cache "$BUILD_DIR/bench-keys" --serials "$WORK/serials.txt" 2>"$WORK/bench.err") || true
log "$out"
if grep -q "failures=0 " <<<"$out"; then pass "concurrency-all-succeed"; else
    fail "concurrency-all-succeed" "scep-bench reported failures: $out"; show_tail "$WORK/bench.err"; fi

got=$(wc -l <"$WORK/serials.txt")
uniq=$(sort -u "$WORK/serials.txt" | wc -l)
if [ "$got" -eq "$N" ] && [ "$uniq" -eq "$N" ]; then pass "concurrency-serials-distinct"; else
    fail "concurrency-serials-distinct" "received $got certificates, $uniq distinct serials, want $N"; fi

ctl_certs_json "$D" "$WORK/certs.json"
missing=$(python3 - "$WORK/certs.json" "$WORK/serials.txt" <<'PY'
import json, sys
listed = {c["serial"].lower() for c in json.load(open(sys.argv[1]))}
got = [l.strip().lower() for l in open(sys.argv[2]) if l.strip()]
print(len([s for s in got if s not in listed]), len(listed))
PY
)
read -r nmiss nlisted <<<"$missing"
if [ "$nmiss" -eq 0 ] && [ "$nlisted" -eq "$N" ]; then pass "concurrency-all-listed"; else
    fail "concurrency-all-listed" "$nmiss received certificates missing from scepctl certs list ($nlisted listed, want $N)"; fi

stop_scepd
ic=$(sqlite3 "$D/scepd.db" "PRAGMA integrity_check")
rows=$(sqlite3 "$D/scepd.db" "SELECT count(*), count(DISTINCT serial) FROM certificate")
if [ "$ic" = ok ] && [ "$rows" = "$N|$N" ]; then pass "concurrency-db-consistent"; else
    fail "concurrency-db-consistent" "integrity_check=$ic rows(count|distinct)=$rows want $N|$N"; fi
finish
