#!/usr/bin/env bash
# Resource limits (matrix T8, A8): a per-source limit on failed challenges
# (HTTP 429 before any private-key work), and slow clients that neither
# starve others nor stay connected past the timeout.
#
#   tests/hostile/test_limits.sh [BUILD_DIR]
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../interop/lib.sh
source "$HERE/../interop/lib.sh" "${1:-}"
BENCH="$BUILD_DIR/scep-bench"
require_bin "$SCEPD" "$BENCH" curl python3
CHALLENGE="limit-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"

D="$WORK/data"
init_scepd "$D" "$CHALLENGE"
SCEPD_SERVE_ARGS="--auth-fail-limit 5 --auth-fail-window 60 --request-timeout 3" start_scepd "$D"

# A8: 25 wrong challenges from one source: 5 answered FAILURE, 20 refused with 429.
"$BENCH" --url "$SCEPD_URL" --challenge wrong-challenge -n 25 -c 1 \
    --key-cache "$BUILD_DIR/bench-keys" >/dev/null 2>&1 || true
nfail=$(grep -c 'err=challenge ' "$SCEPD_LOG" || true)
n429=$(grep -c 'status=429 ' "$SCEPD_LOG" || true)
if [[ $nfail == 5 && $n429 == 20 ]]; then pass ratelimit-after-5-failures; else
    fail ratelimit-after-5-failures "challenge failures=$nfail 429s=$n429, want 5 and 20"; fi
# the refused requests cost no decryption: nothing past the limit reached the service
if [[ $(grep -c 'op=PKIOperation' "$SCEPD_LOG") == 25 ]]; then pass ratelimit-all-logged; else
    fail ratelimit-all-logged "$(grep -c 'op=PKIOperation' "$SCEPD_LOG") PKIOperation lines"; fi
hdr=$(curl -s -D - -o /dev/null -X POST --data-binary "x" "$SCEPD_URL?operation=PKIOperation")
if grep -qi '^HTTP/1.1 429' <<<"$hdr" && grep -qi '^Retry-After: [1-9]' <<<"$hdr"; then pass ratelimit-retry-after; else
    fail ratelimit-retry-after "$(head -3 <<<"$hdr")"; fi
# GetCACaps/GetCACert are not limited
if curl -fs -o /dev/null "$SCEPD_URL?operation=GetCACaps"; then pass ratelimit-caps-still-served; else
    fail ratelimit-caps-still-served "GetCACaps refused"; fi

# T8: 100 slowloris connections (one header byte per second) while a client is served.
python3 - "$SCEPD_PORT" >"$WORK/slow.out" 2>&1 <<'PY' &
import socket, sys, time
port = int(sys.argv[1])
socks = []
for i in range(100):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET /scep?operation=GetCACaps HTTP/1.1\r\n")
    socks.append(s)
closed = 0
start = time.time()
while time.time() - start < 8 and closed < len(socks):
    for s in list(socks):
        try:
            s.sendall(b"X-a: b\r\n")
        except OSError:
            socks.remove(s)
            closed += 1
    time.sleep(1)
for s in list(socks):
    s.settimeout(0.2)
    try:
        if s.recv(1) == b"":
            closed += 1  # the server closed it
    except socket.timeout:
        pass  # still open
    except OSError:
        closed += 1  # reset by the server
print("closed", closed)
PY
slowpid=$!
sleep 1
ok=1
for i in 1 2 3 4 5; do
    if ! curl -fs -m 2 -o /dev/null "$SCEPD_URL?operation=GetCACert"; then ok=0; fi
    sleep 0.3
done
if ((ok)); then pass slowloris-others-served; else fail slowloris-others-served "a GetCACert took over 2 s or failed"; fi
wait "$slowpid" || true
closed=$(awk '/closed/ {print $2}' "$WORK/slow.out")
if [[ ${closed:-0} -ge 95 ]]; then pass slowloris-closed-by-timeout; else
    fail slowloris-closed-by-timeout "only ${closed:-0}/100 slow connections closed within 8 s (--request-timeout 3)"; fi
finish
