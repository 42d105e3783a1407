#!/usr/bin/env bash
# shellcheck disable=SC2119
# Interop: an endpoint in "intune" mode against intune_stub.py (a stand-in
# for AAD, Graph discovery and the Intune ScepActions service).
#
#   tests/interop/test_intune.sh [BUILD_DIR]
#
# - scepclient -cn device1 gets a certificate (checked); the stub's record shows
#   token request(s), discovery, validateRequest, successNotification in that
#   order, with the same transactionId and CSR, and a notification whose
#   thumbprint/serial/expiration/issuer match the issued certificate.
# - scepclient -cn denied-device gets nothing; validateRequest recorded, no
#   successNotification for it.
# - a stub restarted with --fail-success: no certificate reaches the client and
#   certs list shows no valid certificate for it.
# - the app key never appears in scepd's log.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$HERE/lib.sh" "${1:-}"
# shellcheck source=ep_lib.sh
source "$HERE/ep_lib.sh"

require_bin "$SCEPD" "$SCEPCTL" scepclient curl openssl python3 timeout

rnd() { od -An -N6 -tx1 /dev/urandom | tr -d ' \n'; }
STUB="$HERE/../stubs/intune_stub.py"
APP_ID="11111111-2222-3333-4444-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
APP_KEY="AppKey~$(rnd)$(rnd)"
TENANT="contoso.onmicrosoft.com"
REC="$WORK/intune.rec"
KEYF="$WORK/intune-app.key"
(umask 077 && printf '%s' "$APP_KEY" >"$KEYF")
chmod 600 "$KEYF"

D="$WORK/data"
init_scepd "$D" "default-$(rnd)" || finish
start_scepd "$D" || finish

start_stub "$WORK/intune-stub.log" "$STUB" --port 0 --app-id "$APP_ID" --app-key "$APP_KEY" \
    --tenant "$TENANT" --deny-cn denied-device --record "$REC" || { fail intune-stub "stub did not start"; finish; }
IP=$STUB_PORT
CHAL="intune-challenge-$(rnd)"

ep_ready intune "$WORK/intune-ca.pem" --mode intune --intune-tenant "$TENANT" --intune-app-id "$APP_ID" \
    --intune-app-key-file "$KEYF" --intune-login-url "http://127.0.0.1:$IP" \
    --intune-graph-url "http://127.0.0.1:$IP" || finish
URL="$SCEPD_URL/intune"

# check_record CN CERT MODE: MODE ok|denied|failsuccess
check_record() {
    python3 - "$REC" "$1" "${2:-}" "$3" "$WORK/intune-ca.pem" <<'EOF'
import base64, datetime, json, re, subprocess, sys
rec, cn, cert, mode, ca = sys.argv[1:6]
recs = [json.loads(l) for l in open(rec) if l.strip()]
def csr_cn(b64):
    out = subprocess.run(["openssl", "req", "-inform", "DER", "-noout", "-subject", "-nameopt", "RFC2253"],
                         input=base64.b64decode(b64), capture_output=True).stdout.decode()
    m = re.search(r"CN=([^,\n]+)", out)
    return m.group(1) if m else None
val = [(i, r) for i, r in enumerate(recs) if r.get("op") == "validateRequest"
       and csr_cn(((r.get("body") or {}).get("request") or {}).get("certificateRequest", "")) == cn]
if not val:
    print("no validateRequest for CN=%s (record kinds: %s)" % (cn, [r.get("op") or r.get("kind") for r in recs])); sys.exit(1)
vi, v = val[-1]
vreq = v["body"]["request"]
txid = vreq["transactionId"]
succ = [(i, r) for i, r in enumerate(recs) if r.get("op") == "successNotification"
        and ((r.get("body") or {}).get("notification") or {}).get("transactionId") == txid]
fails = [(i, r) for i, r in enumerate(recs) if r.get("op") == "failureNotification"
         and ((r.get("body") or {}).get("notification") or {}).get("transactionId") == txid]
if mode == "denied":
    if succ:
        print("successNotification sent for denied CN=%s" % cn); sys.exit(1)
    # a denial is reported back: a failureNotification after the validateRequest
    fl = [(i, r) for i, r in fails if i > vi]
    if not fl:
        print("no failureNotification after the denied validateRequest #%d" % vi); sys.exit(1)
    fn = fl[-1][1]["body"]["notification"]
    if fn.get("certificateRequest") != vreq["certificateRequest"]:
        print("failureNotification certificateRequest differs from the validated CSR"); sys.exit(1)
    if not isinstance(fn.get("hResult"), int) or not fn.get("errorDescription") or len(fn["errorDescription"]) > 255:
        print("failureNotification hResult/errorDescription malformed: %r" % fn); sys.exit(1)
    print("validateRequest at #%d, failureNotification at #%d (hResult %#x), no successNotification" % (vi, fl[-1][0], fn["hResult"] & 0xffffffff)); sys.exit(0)
toks = [i for i, r in enumerate(recs) if r.get("kind") == "token"]
disc = [i for i, r in enumerate(recs) if r.get("kind") == "discovery"]
if not toks or not disc or not (toks[0] < disc[0] < vi):
    print("order token(%s) < discovery(%s) < validateRequest(%d) violated" % (toks[:3], disc[:3], vi)); sys.exit(1)
bad_tok = [recs[i]["body"] for i in toks if not recs[i]["body"].get("client_secret_ok")]
if bad_tok:
    print("token request with a wrong client secret: %s" % bad_tok[0]); sys.exit(1)
if not succ:
    print("no successNotification for transactionId %s" % txid); sys.exit(1)
si, s = succ[-1]
if si < vi:
    print("successNotification before validateRequest"); sys.exit(1)
n = s["body"]["notification"]
probs = []
if n.get("certificateRequest") != vreq["certificateRequest"]:
    probs.append("certificateRequest differs from the validated CSR")
def x(*a):
    return subprocess.run(["openssl", "x509", "-in", cert, "-noout"] + list(a), capture_output=True, text=True).stdout.strip()
if mode == "ok":
    sha1 = x("-fingerprint", "-sha1").split("=", 1)[1].replace(":", "").lower()
    if str(n.get("certificateThumbprint", "")).replace(":", "").lower() != sha1:
        probs.append("thumbprint %r != %s" % (n.get("certificateThumbprint"), sha1))
    norm = lambda s: s.lower().replace(":", "").lstrip("0") or "0"
    serial = x("-serial").split("=", 1)[1]
    if norm(str(n.get("certificateSerialNumber", ""))) != norm(serial):
        probs.append("serial %r != %s" % (n.get("certificateSerialNumber"), serial))
    na = datetime.datetime.strptime(x("-enddate").split("=", 1)[1].replace(" GMT", ""), "%b %d %H:%M:%S %Y")
    exp = str(n.get("certificateExpirationDateUtc", ""))
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|\+00:00)", exp)
    if not m:
        probs.append("expiration %r is not ISO 8601 UTC" % exp)
    elif abs((datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S") - na).total_seconds()) > 1:
        probs.append("expiration %r != notAfter %s" % (exp, na))
    def rdns(s):
        s = s.split("=", 1)[1] if s.startswith(("subject=", "issuer=")) else s
        return sorted(p.strip().replace(" = ", "=").lower() for p in re.split(r"[,/]", s) if p.strip())
    casub = subprocess.run(["openssl", "x509", "-in", ca, "-noout", "-subject", "-nameopt", "RFC2253"],
                           capture_output=True, text=True).stdout.strip()
    if rdns(str(n.get("issuingCertificateAuthority", ""))) != rdns(casub):
        probs.append("issuingCertificateAuthority %r != CA %s" % (n.get("issuingCertificateAuthority"), casub))
if probs:
    print("; ".join(probs)); sys.exit(1)
print("txid %s: validate #%d, success #%d" % (txid, vi, si))
EOF
}

# --- allowed device ----------------------------------------------------------
rc=0
run_scepclient intune-device1 "$URL" "$CHAL" device1 || rc=$?
if ((rc != 0)); then
    fail intune-device1 "scepclient exited $rc: $(grep -v '^$' "$WORK/intune-device1/client.log" | tail -n 1)"
    show_tail "$SCEPD_LOG" 8
elif check_cert_ca intune-device1 "$WORK/intune-device1/cert.pem" "$WORK/intune-device1/key.pem" device1 "$WORK/intune-ca.pem"; then
    if out=$(check_record device1 "$WORK/intune-device1.check.pem" ok); then
        pass intune-record-device1
        log "  $out"
    else
        fail intune-record-device1 "$out"
    fi
fi

# --- denied device -------------------------------------------------------------
before=$(certs_count denied-device) || before=error
rc=0
run_scepclient intune-denied "$URL" "$CHAL" denied-device || rc=$?
expect_no_cert intune-denied "$rc" "$WORK/intune-denied/cert.pem" denied-device "$before" denied || true
if out=$(check_record denied-device "" denied); then pass intune-record-denied; log "  $out"; else fail intune-record-denied "$out"; fi

# --- successNotification fails -------------------------------------------------
stop_stub
rec_before=$(wc -l <"$REC")
start_stub "$WORK/intune-stub2.log" "$STUB" --port "$IP" --app-id "$APP_ID" --app-key "$APP_KEY" \
    --tenant "$TENANT" --fail-success --record "$REC" || fail intune-fail-success "stub restart failed"
rc=0
run_scepclient intune-failsucc "$URL" "$CHAL" device2 || rc=$?
if ((rc == 0)) || { [[ -s $WORK/intune-failsucc/cert.pem ]] && openssl x509 -in "$WORK/intune-failsucc/cert.pem" -noout 2>/dev/null; }; then
    fail intune-fail-success "client got a certificate (rc=$rc) although successNotification failed"
else
    ctl_certs_json "$D" "$WORK/fs.json" >/dev/null || true
    nvalid=$(python3 -c 'import json,sys; print(sum(1 for c in json.load(open(sys.argv[1])) if "CN=device2" in str(c.get("subject")) and c.get("status") == "valid"))' "$WORK/fs.json" 2>/dev/null || echo error)
    if [[ $nvalid != 0 ]]; then
        fail intune-fail-success "certs list shows $nvalid valid certificate(s) for CN=device2"
    elif ! tail -n +"$((rec_before + 1))" "$REC" | grep -q '"op": "successNotification"'; then
        fail intune-fail-success "no successNotification reached the restarted stub (refused earlier?)"
    else
        pass intune-fail-success
    fi
fi

# --- the app key never in the log ---------------------------------------------------
if grep -rqF -- "$APP_KEY" "$SCEPD_LOG"; then
    fail intune-key-not-logged "the app key appears in $SCEPD_LOG"
else
    pass intune-key-not-logged
fi

stop_stub
stop_scepd
finish
