#!/usr/bin/env bash
# Interop: strongSwan pki --scep renews a certificate scepd issued
# (--cert/--key of the old certificate: RenewalReq, messageType 17, no
# challenge).  The new certificate has the new key, the same subject and
# SAN, chains to the CA; scepd logged a renewal of the old serial; with
# --revoke-on-renewal the old one is listed as revoked.  A renewal signed by
# a certificate from another CA is refused and issues nothing.
#
#   tests/interop/test_renewal.sh [BUILD_DIR]
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$HERE/lib.sh" "${1:-}"
require_bin "$SCEPD" "$SCEPCTL" pki openssl python3 timeout curl
CHALLENGE="renew-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
pki_q() { pki "$@" 2> >(grep -v -e 'libtss2-tcti' -e "plugin 'tpm'" >&2); }

D="$WORK/data"
init_scepd "$D" "$CHALLENGE" --revoke-on-renewal
start_scepd "$D"
pki_q --scepca --url "$SCEPD_URL" --caout "$WORK/ca.pem" --raout "$WORK/ra.pem" --outform pem --force >/dev/null
scep() { # KEY OUT [extra...]
    local key=$1 out=$2
    shift 2
    timeout 60 pki --scep --url "$SCEPD_URL" --in "$key" --dn "CN=vpn-gw,O=scepd-interop" \
        --san vpn-gw.example.test --cacert-enc "$WORK/ra.pem" --cacert-sig "$WORK/ra.pem" \
        --cacert "$WORK/ca.pem" --cipher des3 --outform pem "$@" >"$out" 2>"$out.log"
}
pki_q --gen --type rsa --size 2048 --outform pem >"$WORK/old.key"
pki_q --gen --type rsa --size 2048 --outform pem >"$WORK/new.key"
if scep "$WORK/old.key" "$WORK/old.crt" --password "$CHALLENGE"; then
    check_cert renewal-initial "$WORK/old.crt" "$WORK/old.key" vpn-gw "$D"
else fail renewal-initial "$(tail -2 "$WORK/old.crt.log")"; fi
old_serial=$(openssl x509 -in "$WORK/old.crt" -noout -serial | cut -d= -f2 | tr 'A-F' 'a-f')

before=$(log_lines "$SCEPD_LOG")
if scep "$WORK/new.key" "$WORK/new.crt" --cert "$WORK/old.crt" --key "$WORK/old.key"; then
    check_cert renewal-renewed "$WORK/new.crt" "$WORK/new.key" vpn-gw "$D"
else fail renewal-renewed "$(grep -v tpm "$WORK/new.crt.log" | tail -3)"; fi
if tail -n +"$((before + 1))" "$SCEPD_LOG" | grep -q 'msgtype=17(RenewalReq).*pki=SUCCESS' &&
    tail -n +"$((before + 1))" "$SCEPD_LOG" | grep -q "renewed .*old=$old_serial"; then
    pass renewal-renewalreq-logged
else fail renewal-renewalreq-logged "$(tail -n +"$((before + 1))" "$SCEPD_LOG" | tail -2)"; fi
if openssl x509 -in "$WORK/new.crt" -noout -ext subjectAltName 2>/dev/null | grep -q 'DNS:vpn-gw.example.test'; then
    pass renewal-same-san; else fail renewal-same-san "SAN missing in the renewed certificate"; fi
ctl_certs_json "$D" "$WORK/certs.json"
st=$(python3 -c 'import json,sys; print({c["serial"]: c["status"] for c in json.load(open(sys.argv[1]))}.get(sys.argv[2], "missing"))' "$WORK/certs.json" "$old_serial")
if [[ $st == revoked ]]; then pass renewal-old-superseded; else fail renewal-old-superseded "old certificate status: $st"; fi

# revocation through scepctl; the CRL at /crl/default.crl lists it and verifies
new_serial=$(openssl x509 -in "$WORK/new.crt" -noout -serial | cut -d= -f2)
if "$SCEPCTL" --data "$D" certs revoke "$new_serial" --reason keyCompromise >"$WORK/revoke.out" 2>&1; then
    pass revoke-scepctl; else fail revoke-scepctl "$(cat "$WORK/revoke.out")"; fi
curl -fs -o "$WORK/crl.der" "${SCEPD_URL%/scep}/crl/default.crl" || true
if openssl crl -inform DER -in "$WORK/crl.der" -CAfile "$D/ca.crt" -noout 2>&1 | grep -q 'verify OK' &&
    openssl crl -inform DER -in "$WORK/crl.der" -noout -text | grep -qi "Serial Number: $new_serial" &&
    openssl crl -inform DER -in "$WORK/crl.der" -noout -text | grep -qi "Serial Number: $old_serial" &&
    openssl crl -inform DER -in "$WORK/crl.der" -noout -text | grep -q "Key Compromise"; then
    pass crl-lists-revoked
else fail crl-lists-revoked "$(openssl crl -inform DER -in "$WORK/crl.der" -noout -text 2>&1 | head -20)"; fi
if openssl verify -crl_check -CAfile "$D/ca.crt" -CRLfile <(openssl crl -inform DER -in "$WORK/crl.der") \
    "$WORK/new.crt" >/dev/null 2>&1; then fail crl-check-refuses "openssl verify -crl_check accepted a revoked certificate"
else pass crl-check-refuses; fi
rc=0
"$SCEPCTL" --data "$D" certs revoke "$new_serial" >"$WORK/revoke2.out" 2>&1 || rc=$?
if [[ $rc == 1 ]] && grep -q "already revoked" "$WORK/revoke2.out"; then pass revoke-twice-refused; else
    fail revoke-twice-refused "rc=$rc $(cat "$WORK/revoke2.out")"; fi

# a certificate from another CA cannot renew (micromdm/scep #117)
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$WORK/other-ca.key" -out "$WORK/other-ca.crt" \
    -subj "/CN=Other CA" -days 2 2>/dev/null
openssl req -new -key "$WORK/old.key" -subj "/O=scepd-interop/CN=vpn-gw" -out "$WORK/f.csr" 2>/dev/null
openssl x509 -req -in "$WORK/f.csr" -CA "$WORK/other-ca.crt" -CAkey "$WORK/other-ca.key" -days 2 \
    -set_serial 7 -out "$WORK/foreign.crt" 2>/dev/null
n_before=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$WORK/certs.json")
if scep "$WORK/new.key" "$WORK/x.crt" --cert "$WORK/foreign.crt" --key "$WORK/old.key"; then
    fail renewal-foreign-refused "a certificate from another CA renewed"
else pass renewal-foreign-refused; fi
ctl_certs_json "$D" "$WORK/certs2.json"
n_after=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$WORK/certs2.json")
if [[ $n_after == "$n_before" ]] && grep -q 'err=renewal_signer' "$SCEPD_LOG"; then pass renewal-foreign-nothing-issued; else
    fail renewal-foreign-nothing-issued "certificates $n_before -> $n_after; $(grep op=PKIOperation "$SCEPD_LOG" | tail -1)"; fi
finish
