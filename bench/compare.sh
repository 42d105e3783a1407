#!/usr/bin/env bash
# Side-by-side enrollment benchmark: scepd against micromdm/scep's scepserver
# (Debian package "scep", installed if missing) on this machine, same
# RSA-2048 CA key type, same challenge, same scep-bench workload, run in
# alternation (A B A B ...) so both see the same machine noise.  Prints the
# median rate, p50 and p99 per concurrency level, the ratio, and each
# server's CPU time per enrollment (read from /proc around every round), and
# rewrites its own section of docs/performance.md (between the
# "compare.sh: begin/end" markers; the rest of the file is left alone).
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
# The floor is the fastest RSA-2048 signing OpenSSL offers here: its own choice of
# code path, or its AVX2 path (OPENSSL_ia32cap=:~0x80100), which scepd serves with
# when it measures faster at start (daemon/rsapath.c).
speed() { # [OPENSSL_ia32cap]: signs/s per core, the variable unset when not given
    env -u OPENSSL_ia32cap ${1:+OPENSSL_ia32cap=$1} openssl speed -seconds 3 rsa2048 2>/dev/null |
        awk '/^rsa 2048/ {print $6}'
}
SIGNS_OPENSSL=$(speed)
SIGNS_AVX2=$(speed ":~0x80100")
SIGNS=$(python3 -c "print(max($SIGNS_OPENSSL, $SIGNS_AVX2))")
FLOOR=$(python3 -c "print(round($SIGNS * $CORES / 3))")
echo "# $CPU, $CORES cores; openssl speed rsa2048: $SIGNS_OPENSSL signs/s per core (OpenSSL's code path), $SIGNS_AVX2 (AVX2 path) -> crypto floor $FLOOR enrollments/s from the faster"

run() { # NAME PORT C -> prints the scep-bench line
    "$BUILD/scep-bench" --url "http://127.0.0.1:$2/scep" --challenge "$CHAL" -n "$N" -c "$3" \
        --key-cache "$TOP/$BUILD/bench-keys" 2>>"$W/bench-$1.err" || true
}
: >"$W/results"
ticks() { awk '{print $14 + $15}' /proc/"$1"/stat; } # user + system, in clock ticks
HZ=$(getconf CLK_TCK)
for c in $LEVELS; do
    for r in $(seq "$ROUNDS"); do
        for s in scepd micromdm; do
            p=$PA
            pid=${PIDS[0]}
            if [ $s = micromdm ]; then p=$PB; pid=${PIDS[1]}; fi
            t0=$(ticks "$pid")
            line=$(run $s $p "$c")
            t1=$(ticks "$pid")
            # the server's own CPU per successful enrollment in this round (ms)
            fails=$(sed -n 's/.*failures=\([0-9]*\).*/\1/p' <<<"$line")
            srv_cpu=$(python3 -c "ok = $N - ${fails:-$N}; print('%.3f' % (($t1 - $t0) * 1000.0 / $HZ / ok) if ok > 0 else 'nan')")
            echo "$s c=$c round=$r $line server_cpu=${srv_cpu}ms"
            echo "$s $c $line server_cpu=${srv_cpu}ms" >>"$W/results"
        done
    done
done
RSS=$(awk '/VmHWM/ {print $2}' /proc/"${PIDS[0]}"/status)
CMD="bench/compare.sh -n $N -r $ROUNDS -l \"$LEVELS\"$([ "$BUILD" = build ] || echo " -b $BUILD")"

RSAPATH=$(grep -m1 -o "rsa path=.*" "$W/scepd.log" || echo "rsa path=?")
python3 - "$W/results" "$FLOOR" "$CPU" "$CORES" "$SIGNS" "$N" "$ROUNDS" "$RSS" "$CMD" "$SIGNS_OPENSSL" "$SIGNS_AVX2" "$RSAPATH" <<'PY'
import datetime, re, statistics, sys
path, floor, cpu, cores, signs, n, rounds, rss, cmd, signs_openssl, signs_avx2, rsapath = sys.argv[1:]
rows = {}
for line in open(path):
    srv, c, rest = line.split(" ", 2)
    kv = dict(re.findall(r"(\w+)=([\d.]+)", rest))
    rows.setdefault((srv, int(c)), []).append(kv)
def med(srv, c, k):
    v = [float(r[k]) for r in rows.get((srv, c), []) if k in r]
    return statistics.median(v) if v else float("nan")
rsa_ms = 3 * 1000.0 / float(signs)  # three private-key operations per enrollment, one core
out = []
def worst(srv, c, k):  # the slowest request of all rounds: a stall hides under the p99
    v = [float(r[k]) for r in rows.get((srv, c), []) if k in r]
    return max(v) if v else float("nan")
out.append("| clients | scepd enroll/s | micromdm enroll/s | ratio | scepd p50 / p99 / max ms "
           "| micromdm p50 / p99 / max ms | failures scepd / micromdm "
           "| CPU ms per enrollment: scepd / micromdm / scep-bench |")
out.append("| --- | --- | --- | --- | --- | --- | --- | --- |")
for c in sorted({c for _, c in rows}):
    a, b = med("scepd", c, "rate"), med("micromdm", c, "rate")
    fa = sum(int(float(r.get("failures", 0))) for r in rows[("scepd", c)])
    fb = sum(int(float(r.get("failures", 0))) for r in rows[("micromdm", c)])
    out.append("| %d | %.0f | %.0f | %.2fx | %.2f / %.2f / %.0f | %.2f / %.2f / %.0f | %d / %d | %.2f / %.2f / %.2f |" % (
        c, a, b, a / b if b else float("nan"), med("scepd", c, "p50"), med("scepd", c, "p99"),
        worst("scepd", c, "max"), med("micromdm", c, "p50"), med("micromdm", c, "p99"),
        worst("micromdm", c, "max"), fa, fb,
        med("scepd", c, "server_cpu"), med("micromdm", c, "server_cpu"),
        med("scepd", c, "client_cpu")))
best = max(med("scepd", c, "rate") for _, c in rows)
cpu_ms = min(med("scepd", c, "server_cpu") for _, c in rows)
if not cpu_ms > 0:
    sys.exit("compare.sh: no CPU time measured for scepd (rounds too short for the clock tick?); use a larger -n")
table = "\n".join(out)
print(table)
print("scepd best median %.0f/s = %.0f%% of the crypto floor %s/s; the RSA operations are %.0f%% of "
      "scepd's CPU per enrollment (%.2f of %.2f ms); scepd peak RSS %s kB" % (
          best, 100 * best / float(floor), floor, 100 * rsa_ms / cpu_ms, rsa_ms, cpu_ms, rss))
section = []
section.append("Measured by `%s` on %s (%s cores), %s: scepd and micromdm/scep 2.1 "
               "(`scepserver`, Debian package `scep`) side by side, RSA-2048 CA and client keys, "
               "enrollment by POST, medians of %s alternating rounds of %s enrollments each.\n" % (
                   cmd, cpu, cores, datetime.date.today().isoformat(), rounds, n))
section.append(table + "\n")
section.append("Crypto floor: `openssl speed rsa2048` gives %s signs/s per core with OpenSSL's own "
               "choice of code path and %s with its AVX2 path (`OPENSSL_ia32cap=:~0x80100`); the "
               "faster, %s, is the floor: an enrollment costs "
               "three RSA-2048 private-key operations (decrypt the request, sign the certificate, sign "
               "the reply), %.2f ms of one core, so %s cores give %s enrollments/s. scepd's best median "
               "is %.0f/s, %.0f%% of it, with scep-bench on the same cores. On scepd alone: its CPU "
               "per enrollment (/proc, user + system, all threads) is %.2f ms at best, of which the "
               "three RSA operations (at the floor's rate) are %.0f%%. scepd's start-up choice: `%s`. "
               "Peak resident memory of scepd during the run: %s "
               "kB.\n" % (signs_openssl, signs_avx2, signs, rsa_ms, cores, floor, best,
                          100 * best / float(floor), cpu_ms, 100 * rsa_ms / cpu_ms, rsapath, rss))
section.append("Failures are requests that did not end in a verified SUCCESS (micromdm/scep fails "
               "requests under concurrency: \"open depot/serial: file exists\"); rates count "
               "successful enrollments only. Every scepd reply is checked: RA signature, status, "
               "transactionID, recipientNonce; one in 50 is decrypted and its certificate's key "
               "compared. CPU columns: each server's CPU time over a round divided by its "
               "successful enrollments, and scep-bench's own CPU per request while sending and checking.\n")
begin, end = "<!-- compare.sh: begin -->", "<!-- compare.sh: end -->"
block = begin + "\n" + "\n".join(section) + end
try:
    doc = open("docs/performance.md").read()
except FileNotFoundError:
    doc = "# Performance\n\n"
if begin in doc and end in doc:
    doc = doc[:doc.index(begin)] + block + doc[doc.index(end) + len(end):]
else:
    doc = doc.rstrip("\n") + "\n\n" + block + "\n"
with open("docs/performance.md", "w") as f:
    f.write(doc)
print("docs/performance.md: the section between the compare.sh markers is rewritten")
PY
