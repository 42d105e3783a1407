#!/usr/bin/env bash
# Issuance with a large database: two scepd, one on an empty database and
# one seeded with SEED (default 1,000,000) certificates, measured with the
# same scep-bench workload in alternation (A B A B ...).  Prints the median
# rate and p99 of each, the ratio, and each scepd's peak resident memory.
#
#   bench/scale.sh [-s SEED] [-n REQUESTS] [-c CLIENTS] [-r ROUNDS] [-b BUILD_DIR]
set -euo pipefail
SEED=1000000
N=2000
C=8
ROUNDS=3
BUILD=build
while getopts "s:n:c:r:b:h" o; do
    case $o in
    s) SEED=$OPTARG ;; n) N=$OPTARG ;; c) C=$OPTARG ;; r) ROUNDS=$OPTARG ;; b) BUILD=$OPTARG ;;
    *) sed -n '2,9p' "$0"; exit 2 ;;
    esac
done
TOP=$(cd "$(dirname "$0")/.." && pwd)
cd "$TOP"
W=$(mktemp -d /tmp/scepd-scale.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT
port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
CHAL=scale-challenge-$$
for d in empty full; do "$BUILD/scepd" init --data "$W/$d" --challenge "$CHAL" >/dev/null 2>&1; done
python3 bench/seed_db.py "$W/full" "$SEED"
echo "# seeded: $(du -sh "$W/full/scepd.db" | cut -f1) database with $SEED certificates"
# The seeding leaves gigabytes of the database file dirty in the page cache;
# the first checkpoint's fsync would write them all while every issuance
# waits (0.46-0.87 s seen in round 1), which a database that grew by
# issuance does not have.  Written out here, before anything is measured.
sync
declare -A P
for d in empty full; do
    P[$d]=$(port)
    "$BUILD/scepd" serve --data "$W/$d" --listen "127.0.0.1:${P[$d]}" 2>"$W/$d.log" &
    PIDS+=($!)
done
sleep 1
: >"$W/results"
for r in $(seq "$ROUNDS"); do
    for d in empty full; do
        line=$("$BUILD/scep-bench" --url "http://127.0.0.1:${P[$d]}/scep" --challenge "$CHAL" -n "$N" \
            -c "$C" --key-cache "$TOP/$BUILD/bench-keys" 2>>"$W/bench.err" || true)
        echo "$d round=$r $line"
        echo "$d $line" >>"$W/results"
    done
done
RSS_E=$(awk '/VmHWM/ {print $2}' /proc/"${PIDS[0]}"/status)
RSS_F=$(awk '/VmHWM/ {print $2}' /proc/"${PIDS[1]}"/status)
python3 - "$W/results" "$RSS_E" "$RSS_F" "$SEED" <<'PY'
import re, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    d, rest = line.split(" ", 1)
    rows.setdefault(d, []).append(dict(re.findall(r"(\w+)=([\d.]+)", rest)))
med = lambda d, k: statistics.median(float(r[k]) for r in rows[d])
e, f = med("empty", "rate"), med("full", "rate")
worst = lambda d: max(float(r.get("max", "nan")) for r in rows[d])  # slowest request of all rounds
print("empty: %.0f/s p99 %.2f ms, slowest %.0f ms, peak RSS %s kB" % (e, med("empty", "p99"), worst("empty"), sys.argv[2]))
print("%s certificates: %.0f/s p99 %.2f ms, slowest %.0f ms, peak RSS %s kB" % (sys.argv[4], f, med("full", "p99"), worst("full"), sys.argv[3]))
print("seeded/empty = %.1f%%" % (100 * f / e))
PY
