#!/usr/bin/env bash
# shellcheck disable=SC2119
# Interop: challenge modes of an endpoint (tests/interop/test_modes.sh [BUILD_DIR]).
#
# one-time: a challenge from "scepctl challenges new" enrolls once (cert
#   checked), a second enrollment (new key) with it fails, "challenges list"
#   shows it used; 20 scepclients racing for one challenge -> exactly one cert.
# signed: a token from "challenges sign --subject CN=dev1" enrolls CN=dev1;
#   the same token for CN=dev2, a replayed token, a tampered token and a
#   strongSwan CSR that adds a SAN the token does not allow all fail.
# webhook: webhook_stub.py deny-cn:blocked: CN=allowed gets a cert, CN=blocked
#   none; the recorded request carries transactionId, certificateRequest (DER
#   CSR), endpoint, challenge and a valid X-Scepd-Signature; a timing-out and
#   a garbage-answering hook fail closed.
# events: "events list --json" shows success and failure events.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$HERE/lib.sh" "${1:-}"
# shellcheck source=ep_lib.sh
source "$HERE/ep_lib.sh"

require_bin "$SCEPD" "$SCEPCTL" scepclient pki curl openssl python3 timeout

rnd() { od -An -N6 -tx1 /dev/urandom | tr -d ' \n'; }
D="$WORK/data"
init_scepd "$D" "default-$(rnd)" || finish
start_scepd "$D" || finish

client_fail_msg() { grep -v '^$' "$WORK/$1/client.log" | tail -n 1; }

# --- one-time ----------------------------------------------------------------
if ep_ready ot "$WORK/ot-ca.pem" --mode one-time; then
    if ! chal=$(ctl challenges new --endpoint ot --ttl 60m 2>"$WORK/ot-new.err") || [[ -z $chal ]]; then
        fail onetime-new "challenges new: $(head -c 300 "$WORK/ot-new.err")"
    else
        chal=$(echo "$chal" | tail -n 1 | tr -d '[:space:]')
        rc=0
        run_scepclient ot-1 "$SCEPD_URL/ot" "$chal" ot-1 || rc=$?
        if ((rc != 0)); then
            fail onetime-first-use "scepclient exited $rc: $(client_fail_msg ot-1)"
            show_tail "$SCEPD_LOG" 6
        else
            check_cert_ca onetime-first-use "$WORK/ot-1/cert.pem" "$WORK/ot-1/key.pem" ot-1 "$WORK/ot-ca.pem" || true
        fi
        before=$(certs_count ot-2) || before=error
        rc=0
        run_scepclient ot-2 "$SCEPD_URL/ot" "$chal" ot-2 || rc=$?
        expect_no_cert onetime-second-use "$rc" "$WORK/ot-2/cert.pem" ot-2 "$before" challenge_used || true
        if ctl challenges list --endpoint ot --json >"$WORK/ot-list.json" 2>"$WORK/ot-list.err" ||
            ctl challenges list --json >"$WORK/ot-list.json" 2>"$WORK/ot-list.err"; then
            if out=$(python3 - "$WORK/ot-list.json" "$chal" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
if isinstance(d, dict):
    d = next((v for v in d.values() if isinstance(v, list)), [])
states = [str(c.get("state", c.get("status"))) for c in d if isinstance(c, dict)]
# the list may not show the secret itself: accept any entry in state "used"
if "used" in states:
    sys.exit(0)
print("states: %s" % states); sys.exit(1)
EOF
            ); then pass onetime-list-used; else fail onetime-list-used "$out"; fi
        else
            fail onetime-list-used "challenges list --json: $(head -c 300 "$WORK/ot-list.err")"
        fi
    fi
    # race: 20 clients, one challenge
    if chal=$(ctl challenges new --endpoint ot --ttl 60m 2>/dev/null) && [[ -n $chal ]]; then
        chal=$(echo "$chal" | tail -n 1 | tr -d '[:space:]')
        pids=()
        for i in $(seq 1 20); do
            run_scepclient "race-$i" "$SCEPD_URL/ot" "$chal" ot-race &
            pids+=($!)
        done
        ok=0
        for i in $(seq 1 20); do
            if wait "${pids[$((i - 1))]}" && openssl x509 -in "$WORK/race-$i/cert.pem" -noout 2>/dev/null; then
                ok=$((ok + 1))
            fi
        done
        n=$(certs_count ot-race) || n=error
        if [[ $ok == 1 && $n == 1 ]]; then
            pass onetime-race-20
        else
            fail onetime-race-20 "client successes $ok, certificates issued for CN=ot-race: $n (want 1 and 1)"
        fi
    else
        fail onetime-race-20 "challenges new failed"
    fi
fi

# --- signed --------------------------------------------------------------------
sign() { ctl challenges sign --endpoint sg "$@" 2>>"$WORK/sign.err" | tail -n 1 | tr -d '[:space:]'; }
if ep_ready sg "$WORK/sg-ca.pem" --mode signed; then
    tok=$(sign --subject CN=dev1 --ttl 60m) || tok=""
    if [[ -z $tok ]]; then
        fail signed-token "challenges sign: $(head -c 300 "$WORK/sign.err")"
    else
        rc=0
        run_scepclient sg-dev1 "$SCEPD_URL/sg" "$tok" dev1 || rc=$?
        if ((rc != 0)); then
            fail signed-dev1 "scepclient exited $rc: $(client_fail_msg sg-dev1)"
            show_tail "$SCEPD_LOG" 6
        else
            check_cert_ca signed-dev1 "$WORK/sg-dev1/cert.pem" "$WORK/sg-dev1/key.pem" dev1 "$WORK/sg-ca.pem" || true
        fi
        # replay of the same token (new key)
        before=$(certs_count dev1) || before=error
        rc=0
        run_scepclient sg-replay "$SCEPD_URL/sg" "$tok" dev1 || rc=$?
        expect_no_cert signed-replay "$rc" "$WORK/sg-replay/cert.pem" dev1 "$before" challenge_used || true
    fi
    # token for CN=dev1 used for CN=dev2
    tok=$(sign --subject CN=dev1 --ttl 60m) || tok=""
    before=$(certs_count dev2) || before=error
    rc=0
    run_scepclient sg-dev2 "$SCEPD_URL/sg" "$tok" dev2 || rc=$?
    expect_no_cert signed-wrong-subject "$rc" "$WORK/sg-dev2/cert.pem" dev2 "$before" challenge_identity || true
    # tampered token: flip one character of the payload (first dot-separated part)
    tok=$(sign --subject CN=dev1 --ttl 60m) || tok=""
    bad=$(python3 - "$tok" <<'EOF'
import sys
t = sys.argv[1]
parts = t.split(".")
i = 0 if len(parts) > 1 else None
p = parts[0] if i is not None else t
k = len(p) // 2
c = p[k]
alt = "B" if c != "B" else "C"
p = p[:k] + alt + p[k + 1:]
print(p + t[len(parts[0]):] if i is not None else p)
EOF
    )
    before=$(certs_count dev1) || before=error
    rc=0
    run_scepclient sg-tamper "$SCEPD_URL/sg" "$bad" dev1 || rc=$?
    expect_no_cert signed-tampered "$rc" "$WORK/sg-tamper/cert.pem" dev1 "$before" token || true
    # strongSwan: CSR adds a SAN the token (CN=dev1 only) does not allow
    tok=$(sign --subject CN=dev1 --ttl 60m) || tok=""
    before=$(certs_count dev1) || before=error
    rc=0
    run_pki sg-pki-san "$SCEPD_URL/sg" "$tok" "CN=dev1" dev1.example.com || rc=$?
    if ((rc == 90 || rc == 91)); then
        fail signed-extra-san "pki --scepca failed (rc=$rc)"
    else
        expect_no_cert signed-extra-san "$rc" "$WORK/sg-pki-san/cert.pem" dev1 "$before" challenge_identity || true
    fi
fi

# --- webhook ---------------------------------------------------------------------
REC="$WORK/webhook.rec"
start_stub "$WORK/webhook-stub.log" "$HERE/../stubs/webhook_stub.py" --port 0 --mode deny-cn:blocked --record "$REC" ||
    fail webhook-stub "could not start webhook_stub.py"
WH_PORT=$STUB_PORT
WH_CHAL="wh-$(rnd)"
if [[ -n $WH_PORT ]] && ep_ready wh "$WORK/wh-ca.pem" --mode webhook --webhook-url "http://127.0.0.1:$WH_PORT/validate" --webhook-timeout 2000; then
    WH_KEY=$(json_get "$WORK/ep-wh.json" webhook_key)
    rc=0
    run_scepclient wh-allowed "$SCEPD_URL/wh" "$WH_CHAL" allowed || rc=$?
    if ((rc != 0)); then
        fail webhook-allowed "scepclient exited $rc: $(client_fail_msg wh-allowed)"
        show_tail "$SCEPD_LOG" 6
    else
        check_cert_ca webhook-allowed "$WORK/wh-allowed/cert.pem" "$WORK/wh-allowed/key.pem" allowed "$WORK/wh-ca.pem" || true
    fi
    before=$(certs_count blocked) || before=error
    rc=0
    run_scepclient wh-blocked "$SCEPD_URL/wh" "$WH_CHAL" blocked || rc=$?
    expect_no_cert webhook-denied "$rc" "$WORK/wh-blocked/cert.pem" blocked "$before" denied || true
    # the recorded validation request
    if out=$(python3 - "$REC" "$WH_KEY" "$WH_CHAL" "$WORK/wh-csr.der" <<'EOF'
import base64, binascii, hashlib, hmac, json, sys
recs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
recs = [r for r in recs if r.get("path") != "/events"]
if not recs:
    print("no validation request recorded"); sys.exit(1)
r = recs[0]
b = r.get("body") or {}
miss = [k for k in ("transactionId", "certificateRequest", "endpoint", "challenge") if not b.get(k)]
if miss:
    print("missing %s in %s" % (miss, r.get("raw_body", "")[:200])); sys.exit(1)
if b["endpoint"] != "wh":
    print("endpoint=%r" % b["endpoint"]); sys.exit(1)
if b["challenge"] != sys.argv[3]:
    print("challenge differs"); sys.exit(1)
open(sys.argv[4], "wb").write(base64.b64decode(b["certificateRequest"], validate=True))
sig = r["headers"].get("x-scepd-signature") or ""
parts = dict(p.split("=", 1) for p in sig.split(",") if "=" in p)
key = sys.argv[2]
keys = [key.encode()]
try:
    keys.insert(0, binascii.unhexlify(key))
except Exception:
    pass
try:
    keys.append(base64.b64decode(key))
except Exception:
    pass
raw = r["raw_body"].encode()
if not key:
    print("no webhook_key in endpoints add --json"); sys.exit(1)
if not any(hmac.compare_digest(hmac.new(k, parts.get("t", "").encode() + b"." + raw, hashlib.sha256).hexdigest(), parts.get("v1", "")) for k in keys):
    print("X-Scepd-Signature %r does not verify with webhook_key" % sig); sys.exit(1)
print("txid %s" % b["transactionId"])
EOF
    ); then
        if openssl req -inform DER -in "$WORK/wh-csr.der" -noout -subject >/dev/null 2>&1; then
            pass webhook-request-signed
            log "  $out"
        else
            fail webhook-request-signed "certificateRequest is not a DER CSR"
        fi
    else
        fail webhook-request-signed "$out"
    fi
    # fail closed: timeout and garbage
    for mode in timeout garbage; do
        stop_stub
        start_stub "$WORK/webhook-stub-$mode.log" "$HERE/../stubs/webhook_stub.py" --port "$WH_PORT" --mode "$mode" --sleep 5 ||
            { fail "webhook-$mode" "stub restart failed"; continue; }
        before=$(certs_count "wh-$mode") || before=error
        rc=0
        run_scepclient "wh-$mode" "$SCEPD_URL/wh" "$WH_CHAL" "wh-$mode" || rc=$?
        expect_no_cert "webhook-$mode-fails-closed" "$rc" "$WORK/wh-$mode/cert.pem" "wh-$mode" "$before" validator || true
    done
    stop_stub
fi

# --- events ---------------------------------------------------------------------
if ctl events list --json >"$WORK/events.json" 2>"$WORK/events.err"; then
    if out=$(python3 - "$WORK/events.json" <<'EOF'
import json, re, sys
d = json.load(open(sys.argv[1]))
if isinstance(d, dict):
    d = next((v for v in d.values() if isinstance(v, list)), [])
ok = [e for e in d if e.get("kind") == "success" and e["payload"].get("event") == "success"
      and e["payload"].get("certificateSerialNumber")]
bad = [e for e in d if e.get("kind") == "failure" and e["payload"].get("event") == "failure"
       and e["payload"].get("errorCode") and isinstance(e["payload"].get("hResult"), int)]
print("%d events, %d success, %d failure" % (len(d), len(ok), len(bad)))
sys.exit(0 if ok and bad else 1)
EOF
    ); then pass events-success-and-failure; log "  $out"; else fail events-success-and-failure "$out"; fi
else
    fail events-success-and-failure "events list --json: $(head -c 300 "$WORK/events.err")"
fi

# --- event delivery ---------------------------------------------------------------
# A receiver that accepts: the success event arrives, signed with the notify key,
# with the certificate's serial and the request without its challenge.
EV_REC="$WORK/events.rec"
NT_CHAL="nt-$(rnd)"
start_stub "$WORK/events-stub.log" "$HERE/../stubs/webhook_stub.py" --port 0 --mode allow --record "$EV_REC" ||
    fail events-stub "could not start webhook_stub.py"
EV_PORT=$STUB_PORT
if [[ -n $EV_PORT ]] && ep_ready nt "$WORK/nt-ca.pem" --challenge "$NT_CHAL" --notify-url "http://127.0.0.1:$EV_PORT/events"; then
    rc=0
    run_scepclient nt-client "$SCEPD_URL/nt" "$NT_CHAL" notified-device || rc=$?
    if ((rc != 0)); then
        fail events-delivered "scepclient exited $rc"
    else
        delivered=""
        for ((i = 0; i < 30; i++)); do
            if [[ -s $EV_REC ]] && grep -q '"/events"' "$EV_REC"; then delivered=yes; break; fi
            sleep 0.5
        done
        if [[ -z $delivered ]]; then
            fail events-delivered "no event reached the receiver within 15 s"
        elif out=$(python3 - "$EV_REC" "$WORK/ep-nt.json" "$WORK/nt-client/cert.pem" "$NT_CHAL" <<'EOF'
import base64, hashlib, hmac, json, subprocess, sys
recs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
ev = [r for r in recs if r.get("path") == "/events"]
key = bytes.fromhex(json.load(open(sys.argv[2]))["notify_key"])
serial = subprocess.run(["openssl", "x509", "-in", sys.argv[3], "-noout", "-serial"],
                        capture_output=True, text=True).stdout.strip().split("=", 1)[1].lower()
r = ev[-1]
b = r["body"]
sig = dict(p.split("=", 1) for p in (r["headers"]["x-scepd-signature"] or "").split(","))
want = hmac.new(key, sig.get("t", "").encode() + b"." + r["raw_body"].encode(), hashlib.sha256).hexdigest()
probs = []
if not hmac.compare_digest(want, sig.get("v1", "")):
    probs.append("signature does not verify with notify_key")
if b.get("event") != "success" or b.get("endpoint") != "nt":
    probs.append("not the success event of endpoint nt: %r" % b.get("event"))
if str(b.get("certificateSerialNumber", "")).lower().lstrip("0") != serial.lstrip("0"):
    probs.append("serial %r != %s" % (b.get("certificateSerialNumber"), serial))
if sys.argv[4].encode() in base64.b64decode(b.get("certificateRequest", "")):
    probs.append("the event's certificateRequest still carries the challenge")
if probs:
    print("; ".join(probs)); sys.exit(1)
print("event %s delivered, serial %s" % (b.get("transactionId"), serial))
EOF
        ); then
            pass events-delivered
            log "  $out"
        else
            fail events-delivered "$out"
        fi
        ok=""
        for ((i = 0; i < 10; i++)); do
            if ctl events list --status delivered --json 2>/dev/null |
                python3 -c 'import json,sys; sys.exit(0 if any(e.get("endpoint") == "nt" and e.get("delivered_at") for e in json.load(sys.stdin)) else 1)'; then
                ok=yes
                break
            fi
            sleep 0.5
        done
        if [[ -n $ok ]]; then pass events-status-delivered; else fail events-status-delivered "events list --status delivered shows none for nt"; fi
    fi
fi
stop_stub
# A receiver that fails: the event stays pending, its attempt and error recorded.
start_stub "$WORK/events-fail.log" "$HERE/../stubs/webhook_stub.py" --port 0 --mode allow --fail-events 1000 ||
    fail events-fail-stub "could not start webhook_stub.py"
EF_PORT=$STUB_PORT
NF_CHAL="nf-$(rnd)"
if [[ -n $EF_PORT ]] && ep_ready nf "$WORK/nf-ca.pem" --challenge "$NF_CHAL" --notify-url "http://127.0.0.1:$EF_PORT/events"; then
    rc=0
    run_scepclient nf-client "$SCEPD_URL/nf" "$NF_CHAL" unnotified-device || rc=$?
    ok=""
    for ((i = 0; i < 20; i++)); do
        if ctl events list --status pending --json 2>/dev/null | python3 -c '
import json, sys
d = json.load(sys.stdin)
sys.exit(0 if any(e.get("endpoint") == "nf" and e.get("attempts", 0) >= 1 and "500" in (e.get("last_error") or "") for e in d) else 1)'; then
            ok=yes
            break
        fi
        sleep 0.5
    done
    if ((rc == 0)) && [[ -n $ok ]]; then
        pass events-retry-pending
    else
        fail events-retry-pending "client rc $rc; no pending event of nf with an attempt and an HTTP 500 error"
    fi
fi
stop_stub

stop_scepd
finish
