#!/usr/bin/env bash
# Side-by-side enrollment benchmark: scepd against micromdm/scep's scepserver
# (Debian package "scep", installed if missing) on this machine, same
# RSA-2048 CA key type, same challenge, same scep-bench workload, run in
# alternation (A B A B ...) so both see the same machine noise.  Prints the
# median rate, p50 and p99 per concurrency level and the ratio, and writes
# docs/performance.md.
#
#   bench/compare.sh [-n REQUESTS] [-r ROUNDS] [-l "1 8 32"] [-b BUILD_DIR]
set -euo pipefail
N=1000
ROUNDS=3
LEVELS="1 8 32"
BUILD=build
while getopts "n:r:l:b:h" o; do
    case $o in
    n) N=$OPTARG ;;
    r) ROUNDS=$OPTARG ;;
    l) LEVELS=$OPTARG ;;
    b) BUILD=$OPTARG ;;
    *) sed -n '2,11p' "$0"; exit 2 ;;
    esac
done
TOP=$(cd "$(dirname "$0")/.." && pwd)
cd "$TOP"
[ -x "$BUILD/scepd" ] && [ -x "$BUILD/scep-bench" ] || { echo "compare.sh: build first (make build)" >&2; exit 1; }
if ! command -v scepserver >/dev/null; then
    echo "compare.sh: installing micromdm/scep (Debian package scep)" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq scep >/dev/null
fi
W=$(mktemp -d /tmp/scepd-compare.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT
port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do curl -fs -o /dev/null "http://127.0.0.1:$1/scep?operation=GetCACaps" && return 0; sleep 0.1; done; return 1; }
CHAL=compare-challenge-$$

# scepd, RSA-2048 CA
"$BUILD/scepd" init --data "$W/scepd" --challenge "$CHAL" --ca-key rsa:2048 >/dev/null 2>&1
PA=$(port)
"$BUILD/scepd" serve --data "$W/scepd" --listen "127.0.0.1:$PA" 2>"$W/scepd.log" &
PIDS+=($!)
# micromdm/scep, RSA-2048 CA
(cd "$W" && scepserver ca -init -keySize 2048 -depot "$W/depot" >/dev/null 2>&1)
PB=$(port)
scepserver -depot "$W/depot" -port "$PB" -challenge "$CHAL" >"$W/micromdm.log" 2>&1 &
PIDS+=($!)
wait_port "$PA" && wait_port "$PB" || { echo "compare.sh: a server did not start" >&2; tail "$W"/*.log >&2; exit 1; }

CPU=$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1)
CORES=$(nproc)
SIGNS=$(openssl speed -seconds 3 rsa2048 2>/dev/null | awk '/^rsa 2048/ {print $6}')
FLOOR=$(python3 -c "print(round($SIGNS * $CORES / 3))")
echo "# $CPU, $CORES cores; openssl speed rsa2048: $SIGNS signs/s per core -> crypto floor $FLOOR enrollments/s"

run() { # NAME PORT C -> prints the scep-bench line
    "$BUILD/scep-bench" --url "http://127.0.0.1:$2/scep" --challenge "$CHAL" -n "$N" -c "$3" \
        --key-cache "$TOP/$BUILD/bench-keys" 2>>"$W/bench-$1.err" || true
}
: >"$W/results"
for c in $LEVELS; do
    for r in $(seq "$ROUNDS"); do
        for s in scepd micromdm; do
            p=$PA; [ $s = micromdm ] && p=$PB
            line=$(run $s $p "$c")
            echo "$s c=$c round=$r $line"
            echo "$s $c $line" >>"$W/results"
        done
    done
done
RSS=$(awk '/VmHWM/ {print $2}' /proc/"${PIDS[0]}"/status)

python3 - "$W/results" "$FLOOR" "$CPU" "$CORES" "$SIGNS" "$N" "$ROUNDS" "$RSS" <<'PY'
import re, statistics, sys
path, floor, cpu, cores, signs, n, rounds, rss = sys.argv[1:]
rows = {}
for line in open(path):
    srv, c, rest = line.split(" ", 2)
    kv = dict(re.findall(r"(\w+)=([\d.]+)", rest))
    rows.setdefault((srv, int(c)), []).append(kv)
def med(srv, c, k):
    v = [float(r[k]) for r in rows.get((srv, c), []) if k in r]
    return statistics.median(v) if v else float("nan")
out = []
out.append("| clients | scepd enroll/s | micromdm enroll/s | ratio | scepd p50 / p99 ms | micromdm p50 / p99 ms | failures scepd / micromdm |")
out.append("| --- | --- | --- | --- | --- | --- | --- |")
for c in sorted({c for _, c in rows}):
    a, b = med("scepd", c, "rate"), med("micromdm", c, "rate")
    fa = sum(int(float(r.get("failures", 0))) for r in rows[("scepd", c)])
    fb = sum(int(float(r.get("failures", 0))) for r in rows[("micromdm", c)])
    out.append("| %d | %.0f | %.0f | %.2fx | %.2f / %.2f | %.2f / %.2f | %d / %d |" % (
        c, a, b, a / b if b else float("nan"), med("scepd", c, "p50"), med("scepd", c, "p99"),
        med("micromdm", c, "p50"), med("micromdm", c, "p99"), fa, fb))
best = max(med("scepd", c, "rate") for _, c in rows)
table = "\n".join(out)
print(table)
print("scepd best median %.0f/s = %.0f%% of the crypto floor %s/s; scepd peak RSS %s kB" % (best, 100 * best / float(floor), floor, rss))
with open("docs/performance.md", "w") as f:
    f.write("# Performance\n\n")
    f.write("Measured by `bench/compare.sh -n %s -r %s` on %s (%s cores): scepd and micromdm/scep 2.1 "
            "(`scepserver`, Debian package `scep`) side by side, RSA-2048 CA and client keys, enrollment "
            "by POST, medians of %s alternating rounds of %s enrollments each.\n\n" % (n, rounds, cpu, cores, rounds, n))
    f.write(table + "\n\n")
    f.write("Crypto floor: `openssl speed rsa2048` gives %s signs/s per core; an enrollment costs three "
            "RSA-2048 private-key operations (decrypt the request, sign the certificate, sign the reply), so "
            "%s cores give %s enrollments/s. scepd's best median is %.0f/s, %.0f%% of it. Peak resident "
            "memory of scepd during the run: %s kB.\n\n" % (signs, cores, floor, best, 100 * best / float(floor), rss))
    f.write("Failures are requests that did not end in a verified SUCCESS (micromdm/scep fails requests "
            "under concurrency: \"open depot/serial: file exists\"). Every scepd reply is checked: RA "
            "signature, status, transactionID, recipientNonce; one in 50 is decrypted and its certificate's "
            "key compared.\n")
PY
