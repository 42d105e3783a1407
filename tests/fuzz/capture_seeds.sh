#!/usr/bin/env bash
# capture_seeds.sh - record requests of real SCEP clients (micromdm scepclient
# from Debian package "scep", strongSwan "pki --scep") as fuzz seeds.
#
#   tests/fuzz/capture_seeds.sh [CORPUS_DIR]     (default: tests/fuzz/corpus)
#
# Each client is pointed at capture_server.py, which hands out keys/ra.crt as
# the CA/RA certificate, so every captured request is encrypted to the fuzz
# RA key and decrypts in fuzz_pkimsg.  Writes, per capture NAME:
#   fuzz_pkimsg/real-NAME.der     the pkiMessage as sent
#   fuzz_envelope/real-NAME.der   its pkcsPKIEnvelope (openssl cms -verify)
#   fuzz_csr/real-NAME.der        the decrypted PKCS#10 (openssl cms -decrypt)
#   fuzz_query/real-NAME.txt      the raw query string, for GET captures
# (scepclient only: strongSwan pki 5.9.8 always POSTs, see capture_server.py)
# The clients fail after sending (the server answers 500); that is expected.
# Run by hand when adding clients; the results are committed.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CORPUS=${1:-$HERE/corpus}
KEYS=$HERE/keys
WORK=$(mktemp -d "${TMPDIR:-/tmp}/scepd-capture.XXXXXX")
SERVER_PID=""

cleanup() {
    if [[ -n $SERVER_PID ]]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start_server OUTDIR [--get-only]
start_server() {
    local out=$1
    shift
    if [[ -n $SERVER_PID ]]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    mkdir -p "$out"
    PORT=$(free_port)
    python3 "$HERE/capture_server.py" "$PORT" "$KEYS/ra.crt" "$out" "$@" 2>"$out/server.log" &
    SERVER_PID=$!
    for _ in $(seq 50); do
        curl -sf "http://127.0.0.1:$PORT/scep?operation=GetCACaps" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "capture_server did not start" >&2
    exit 1
}

# save NAME DIR: the first message captured in DIR becomes the seeds NAME.
save() {
    local name=$1 dir=$2 msg q
    msg=$(find "$dir" -maxdepth 1 -name "msg-*.der" | sort | head -n 1)
    if [[ -z $msg ]]; then
        echo "  $name: nothing captured (see $dir/client.log)" >&2
        return 0
    fi
    cp "$msg" "$CORPUS/fuzz_pkimsg/real-$name.der"
    q=${msg%.der}
    q=${q/msg-/query-}.txt
    if [[ -f $q ]]; then
        cp "$q" "$CORPUS/fuzz_query/real-$name.txt"
    fi
    openssl cms -verify -noverify -binary -inform DER -in "$msg" -out "$dir/env.der" 2>/dev/null &&
        cp "$dir/env.der" "$CORPUS/fuzz_envelope/real-$name.der"
    openssl cms -decrypt -provider default -provider legacy -binary -inform DER \
        -in "$dir/env.der" -inkey "$KEYS/ra.key" -recip "$KEYS/ra.crt" \
        -out "$dir/csr.der" 2>/dev/null && cp "$dir/csr.der" "$CORPUS/fuzz_csr/real-$name.der"
    echo "  $name: $(wc -c <"$msg") bytes" >&2
}

mkdir -p "$CORPUS"/{fuzz_pkimsg,fuzz_envelope,fuzz_csr,fuzz_query}

if command -v scepclient >/dev/null; then
    for mode in post get; do
        d=$WORK/scepclient-$mode
        if [[ $mode == get ]]; then start_server "$d" --get-only; else start_server "$d"; fi
        (cd "$d" && timeout 20 scepclient -server-url "http://127.0.0.1:$PORT/scep" \
            -challenge "fuzz-challenge" -cn "scepclient-$mode" \
            -private-key "$d/key.pem" -certificate "$d/cert.pem" >"$d/client.log" 2>&1) || true
        save "scepclient-$mode" "$d"
    done
else
    echo "scepclient not installed (apt-get install scep): skipped" >&2
fi

if command -v pki >/dev/null; then
    pki --gen --type rsa --size 2048 --outform pem >"$WORK/sw.key" 2>/dev/null
    # name mode extra-args...
    sw() {
        local name=$1 mode=$2 d=$WORK/strongswan-$1
        shift 2
        if [[ $mode == get ]]; then start_server "$d" --get-only; else start_server "$d"; fi
        timeout 20 pki --scep --url "http://127.0.0.1:$PORT/scep" --in "$WORK/sw.key" \
            --dn "C=CH, O=strongSwan, CN=sw-$name" --password "fuzz-challenge" \
            --cacert-enc "$KEYS/ra.crt" --cacert-sig "$KEYS/ra.crt" --maxpolltime 1 --interval 1 \
            "$@" >"$d/client.log" 2>&1 || true
        save "strongswan-$name" "$d"
    }
    sw aes-sha256-san post --san "sw.example.org" --san "ops@example.org"
    sw des3-sha1 post --cipher des3 --digest sha1
    sw aes-pss-sha512 post --rsa-padding pss --digest sha512
    # No GET capture: pki 5.9.8 always POSTs while AES is advertised.
    sw renewal post --cert "$KEYS/client.crt" --key "$KEYS/client.key"
else
    echo "pki (strongswan-pki) not installed: skipped" >&2
fi
