#!/usr/bin/env bash
# Interop: manual approval with strongSwan pki --scep polling (CertPoll).
#  1. an endpoint made with --approval manual answers PENDING; strongSwan
#     polls; the test approves through scepctl; the client gets a
#     certificate that chains to the CA and carries its key and subject;
#  2. a request the operator rejects ends in FAILURE at the client and no
#     certificate is issued.
#
#   tests/interop/test_approval.sh [BUILD_DIR]
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$HERE/lib.sh" "${1:-}"
require_bin "$SCEPD" "$SCEPCTL" pki openssl python3 timeout
CHALLENGE="approve-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
pki_q() { pki "$@" 2> >(grep -v -e 'libtss2-tcti' -e "plugin 'tpm'" >&2); }

D="$WORK/data"
init_scepd "$D" "$CHALLENGE" --approval manual
start_scepd "$D"
pki_q --scepca --url "$SCEPD_URL" --caout "$WORK/ca.pem" --raout "$WORK/ra.pem" --outform pem --force >/dev/null

# pending_id: wait (max 15 s) for one pending request, print its id
pending_id() {
    local i id
    for ((i = 0; i < 150; i++)); do
        id=$("$SCEPCTL" --data "$D" requests list --status pending --json 2>/dev/null |
            python3 -c 'import json,sys; r=json.load(sys.stdin); print(r[0]["id"] if r else "")')
        if [[ -n $id ]]; then echo "$id"; return 0; fi
        sleep 0.1
    done
    return 1
}

enroll_bg() { # NAME CN -> starts pki --scep in the background, pid in PKI_PID
    pki_q --gen --type rsa --size 2048 --outform pem >"$WORK/$1.key"
    pki_q --scep --url "$SCEPD_URL" --in "$WORK/$1.key" --dn "CN=$2,O=scepd-interop" \
        --password "$CHALLENGE" --cacert-enc "$WORK/ra.pem" --cacert-sig "$WORK/ra.pem" \
        --cacert "$WORK/ca.pem" --cipher des3 --interval 1 --maxpolltime 40 --outform pem \
        >"$WORK/$1.crt" 2>"$WORK/$1.log" &
    PKI_PID=$!
}

# 1. approve
enroll_bg approved approved-device
if id=$(pending_id); then pass approval-pending-listed; else fail approval-pending-listed "no pending request"; fi
if "$SCEPCTL" --data "$D" requests approve "$id" >"$WORK/approve.out"; then pass approval-scepctl-approve; else
    fail approval-scepctl-approve "$(cat "$WORK/approve.out")"; fi
rc=0
wait "$PKI_PID" || rc=$?
if [[ $rc == 0 ]]; then
    check_cert approval-issued-after-poll "$WORK/approved.crt" "$WORK/approved.key" approved-device "$D"
else fail approval-issued-after-poll "pki exited $rc: $(tail -3 "$WORK/approved.log")"; fi
npend=$(grep -c 'pki=PENDING' "$SCEPD_LOG" || true)
if [[ $npend -ge 1 ]] && grep -q 'msgtype=20(CertPoll).*pki=SUCCESS' "$SCEPD_LOG"; then pass approval-polled-certpoll; else
    fail approval-polled-certpoll "PENDING replies=$npend; $(grep op=PKIOperation "$SCEPD_LOG" | tail -2)"; fi

# 2. reject
enroll_bg rejected rejected-device
id=$(pending_id) || true
"$SCEPCTL" --data "$D" requests reject "$id" --reason "not an inventory device" >/dev/null || true
rc=0
wait "$PKI_PID" || rc=$?
# pki's stderr reaches the log through pki_q's filtering process, which may
# still be writing when pki has exited: give it a moment
for ((i = 0; i < 30; i++)); do
    grep -qiE 'fail|reject|badRequest' "$WORK/rejected.log" && break
    sleep 0.1
done
if [[ $rc != 0 ]] && grep -qiE 'fail|reject|badRequest' "$WORK/rejected.log"; then pass approval-reject-client-fails; else
    fail approval-reject-client-fails "pki exited $rc: $(tail -3 "$WORK/rejected.log")"; fi
if [[ $(ctl_count_subject "$D" rejected-device) == 0 ]]; then pass approval-reject-nothing-issued; else
    fail approval-reject-nothing-issued "a certificate for rejected-device exists"; fi
if "$SCEPCTL" --data "$D" requests list --status rejected --json | grep -q 'not an inventory device'; then
    pass approval-reject-reason-kept; else fail approval-reject-reason-kept "reason missing"; fi
# 3. the operator's decisions are in the audit trail, with who made them
if "$SCEPCTL" --data "$D" audit list --json >"$WORK/audit.json" && python3 - "$WORK/audit.json" <<'EOF'
import json, sys
rows = json.load(open(sys.argv[1]))
acts = {r["action"]: r for r in rows}
ok = ("request.approve" in acts and "request.reject" in acts
      and acts["request.reject"]["reason"] == "not an inventory device"
      and acts["request.approve"]["actor"].startswith("admin")
      and any(r["action"] == "issue" for r in rows))
sys.exit(0 if ok else 1)
EOF
then pass approval-audited; else fail approval-audited "audit list lacks request.approve/reject or the issuance: $(head -c 400 "$WORK/audit.json")"; fi
finish
