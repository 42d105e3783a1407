# shellcheck shell=bash disable=SC2034
# Helpers shared by test_endpoints.sh, test_modes.sh and test_intune.sh
# (multi-endpoint / challenge-mode interop tests).  Source after lib.sh.

# ctl ARGS...: scepctl against the data dir $D (the running scepd).
ctl() { timeout 30 "$SCEPCTL" --data "$D" "$@"; }

# json_get FILE KEY: print top-level KEY of the JSON object in FILE ("" if absent).
json_get() {
    python3 - "$1" "$2" <<'EOF'
import json, sys
try:
    d = json.load(open(sys.argv[1]))
except Exception:
    sys.exit(0)
v = d.get(sys.argv[2]) if isinstance(d, dict) else None
print("" if v is None else v)
EOF
}

# ep_add NAME ARGS...: scepctl endpoints add NAME ARGS... --json into
# $WORK/ep-NAME.json.  Returns non-zero (and prints a FAIL) on error.
ep_add() {
    local name=$1
    shift
    if ! ctl endpoints add "$name" "$@" --json >"$WORK/ep-$name.json" 2>"$WORK/ep-$name.err"; then
        fail "endpoint-add-$name" "scepctl endpoints add $name $* failed: $(head -c 300 "$WORK/ep-$name.err" | tr '\n' ' ')"
        return 1
    fi
    return 0
}

# ep_cacert NAME OUT: fetch GetCACert of endpoint NAME (polls up to 10 s),
# write its CA (self-signed, or the issuer of the others) as PEM to OUT.
ep_cacert() {
    local name=$1 out=$2 raw="$WORK/getcacert-$1.der" i
    for ((i = 0; i < 50; i++)); do
        if curl -fsS --max-time 5 -o "$raw" "$SCEPD_URL/$name?operation=GetCACert" 2>/dev/null && [[ -s $raw ]]; then
            break
        fi
        sleep 0.2
    done
    [[ -s $raw ]] || { echo "GetCACert for /scep/$name failed"; return 1; }
    if openssl x509 -inform DER -in "$raw" -out "$out" 2>/dev/null; then
        return 0
    fi
    openssl pkcs7 -inform DER -in "$raw" -print_certs >"$WORK/getcacert-$name.all.pem" 2>/dev/null ||
        { echo "GetCACert answer of /scep/$name is neither a cert nor PKCS#7"; return 1; }
    python3 - "$WORK/getcacert-$name.all.pem" "$out" <<'EOF'
import re, subprocess, sys
pems = re.findall(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", open(sys.argv[1]).read(), re.S)
def name(p, what):
    return subprocess.run(["openssl", "x509", "-noout", "-" + what, "-nameopt", "RFC2253"],
                          input=p.encode(), capture_output=True).stdout.decode().split("=", 1)[-1].strip()
for p in pems:
    if name(p, "subject") == name(p, "issuer"):
        open(sys.argv[2], "w").write(p + "\n")
        sys.exit(0)
sys.exit(1)
EOF
}

# run_scepclient NAME URL CHALLENGE CN [extra scepclient args] -> rc
# files in $WORK/NAME/{key.pem,cert.pem,client.log}
run_scepclient() {
    local name=$1 url=$2 chal=$3 cn=$4 d="$WORK/$1" rc=0
    shift 4
    rm -rf "$d"
    mkdir -p "$d"
    timeout 60 scepclient -server-url "$url" -challenge "$chal" -cn "$cn" \
        -private-key "$d/key.pem" -certificate "$d/cert.pem" -debug "$@" >"$d/client.log" 2>&1 || rc=$?
    return "$rc"
}

pki_q() { pki "$@" 2> >(grep -v -e 'libtss2-tcti' -e "plugin 'tpm'" >&2); }

# run_pki NAME URL CHALLENGE DN [SAN] -> rc; files in $WORK/NAME/{key.pem,cert.pem,scep.log}
run_pki() {
    local name=$1 url=$2 chal=$3 dn=$4 san=${5:-} d="$WORK/$1" rc=0 ca ra f
    rm -rf "$d"
    mkdir -p "$d"
    (cd "$d" && timeout 30 pki --scepca --url "$url" --caout ca.pem --raout ra.pem --outform pem --force) \
        >"$d/scepca.log" 2>&1 || return 90
    ca=""
    ra=""
    for f in "$d"/ca.pem "$d"/ca-*.pem; do [[ -s $f ]] && { ca=$f; break; }; done
    for f in "$d"/ra.pem "$d"/ra-*.pem; do [[ -s $f ]] && { ra=$f; break; }; done
    [[ -n $ca ]] || return 91
    [[ -n $ra ]] || ra=$ca
    pki_q --gen --type rsa --size 2048 --outform pem >"$d/key.pem"
    local sanargs=()
    [[ -n $san ]] && sanargs=(--san "$san")
    timeout 60 pki --scep --url "$url" --in "$d/key.pem" --dn "$dn" "${sanargs[@]+"${sanargs[@]}"}" \
        --password "$chal" --cacert-enc "$ra" --cacert-sig "$ra" --cacert "$ca" \
        --cipher des3 --digest sha256 --outform pem --interval 2 --maxpolltime 10 --debug 2 \
        >"$d/cert.pem" 2>"$d/scep.log" || rc=$?
    return "$rc"
}

# certs_json OUT: scepctl certs list --json (lib.sh: ctl_certs_json).
certs_count() {
    # certs_count [CN]: number of certificates (with subject CN=<CN> if given).
    local out="$WORK/certs-count.json"
    ctl_certs_json "$D" "$out" >/dev/null || { echo error; return 1; }
    python3 - "$out" "${1:-}" <<'EOF'
import json, sys
certs = json.load(open(sys.argv[1]))
cn = sys.argv[2]
if cn:
    import re
    certs = [c for c in certs if re.search(r"(^|[,/ ])CN=" + re.escape(cn) + r"($|[,/])", str(c.get("subject", "")))]
print(len(certs))
EOF
}

# check_cert_ca NAME CERT KEY CN CAFILE: like lib.sh check_cert, but
# verifies against CAFILE and looks the serial up in $D.
check_cert_ca() {
    local name=$1 cert=$2 key=$3 cn=$4 cafile=$5 pem="$WORK/$1.check.pem" out
    if [[ ! -s $cert ]]; then
        fail "$name" "certificate file $cert missing or empty"
        return 1
    fi
    to_pem "$cert" "$pem" || { fail "$name" "$cert is not a parseable X.509 certificate"; return 1; }
    if ! out=$(openssl verify -CAfile "$cafile" "$pem" 2>&1); then
        fail "$name" "openssl verify -CAfile $cafile: $(echo "$out" | tr '\n' ' ')"
        return 1
    fi
    local kpub cpub subj serial sha1
    kpub=$(openssl pkey -in "$key" -pubout -outform DER 2>/dev/null | sha256sum | cut -d' ' -f1)
    cpub=$(openssl x509 -in "$pem" -noout -pubkey | openssl pkey -pubin -outform DER | sha256sum | cut -d' ' -f1)
    if [[ $kpub != "$cpub" ]]; then
        fail "$name" "certificate public key does not match private key $key"
        return 1
    fi
    subj=$(openssl x509 -in "$pem" -noout -subject -nameopt RFC2253 | sed 's/^subject=//')
    if [[ ",$subj," != *",CN=$cn,"* ]]; then
        fail "$name" "subject '$subj' lacks CN=$cn"
        return 1
    fi
    serial=$(openssl x509 -in "$pem" -noout -serial | sed 's/^serial=//')
    sha1=$(openssl x509 -in "$pem" -noout -fingerprint -sha1 | sed 's/^.*=//; s/://g' | tr 'A-F' 'a-f')
    if ! out=$(ctl_certs_json "$D" "$WORK/$name.ctl.json"); then
        fail "$name" "$out"
        return 1
    fi
    if ! out=$(python3 - "$WORK/$name.ctl.json" "$serial" "$sha1" <<'EOF'
import json, sys
certs = json.load(open(sys.argv[1]))
norm = lambda s: (str(s).lower().replace(":", "").strip().removeprefix("0x").lstrip("0") or "0")
hits = [c for c in certs if norm(c.get("serial", "")) == norm(sys.argv[2])]
if not hits:
    print("serial %s not in scepctl certs list" % sys.argv[2]); sys.exit(1)
c = hits[0]
if c.get("status") != "valid" or str(c.get("sha1", "")).lower().replace(":", "") != sys.argv[3]:
    print("scepctl entry: status=%r sha1=%r (cert %s)" % (c.get("status"), c.get("sha1"), sys.argv[3])); sys.exit(1)
EOF
    ); then
        fail "$name" "$out"
        return 1
    fi
    pass "$name"
    return 0
}

# cert_days PEM: validity (notAfter - notBefore) in days, rounded.
cert_days() {
    python3 - "$1" <<'EOF'
import subprocess, sys, datetime
def d(what):
    s = subprocess.run(["openssl", "x509", "-in", sys.argv[1], "-noout", "-" + what],
                       capture_output=True, text=True).stdout.strip().split("=", 1)[1]
    return datetime.datetime.strptime(s.replace(" GMT", ""), "%b %d %H:%M:%S %Y")
print(round((d("enddate") - d("startdate")).total_seconds() / 86400))
EOF
}

# cert_eku PEM: the EKU names, sorted, comma-separated ("" if none).
cert_eku() {
    openssl x509 -in "$1" -noout -ext extendedKeyUsage 2>/dev/null | tail -n +2 |
        tr ',' '\n' | sed 's/^ *//; s/ *$//' | grep -v '^$' | sort | tr '\n' ',' | sed 's/,$//' || true
}

# expect_no_cert NAME RC CERTFILE CN COUNT_BEFORE ERR: a refused enrollment,
# refused for the reason ERR (the err= of scepd's last PKIOperation line):
# a refusal for any other reason is a failure of the test.
expect_no_cert() {
    local name=$1 rc=$2 cert=$3 cn=$4 before=$5 want=$6 n last
    if ((rc == 0)); then
        fail "$name" "client exited 0"
        return 1
    fi
    if [[ -s $cert ]] && openssl x509 -in "$cert" -noout 2>/dev/null; then
        fail "$name" "client exited $rc but wrote a certificate"
        return 1
    fi
    n=$(certs_count "$cn") || n=error
    if [[ $n != "$before" ]]; then
        fail "$name" "certs list for CN=$cn: $n certificate(s), was $before"
        return 1
    fi
    last=$(grep 'op=PKIOperation' "$SCEPD_LOG" | tail -n 1)
    if [[ $last != *" err=$want "* ]]; then
        fail "$name" "refused, but not for $want: ${last:-no PKIOperation logged}"
        return 1
    fi
    pass "$name"
}

# start_stub VAR_PID VAR_PORT LOG CMD...: start a python stub (it prints
# "PORT n"), wait up to 10 s, register its cleanup.
STUB_PID=""
STUB_PORT=""
start_stub() {
    local logf=$1 i
    shift
    : >"$logf"
    python3 "$@" >"$logf" 2>&1 &
    STUB_PID=$!
    add_cleanup "kill $STUB_PID"
    for ((i = 0; i < 100; i++)); do
        STUB_PORT=$(sed -n 's/^PORT \([0-9]*\)$/\1/p' "$logf" | head -n 1)
        [[ -n $STUB_PORT ]] && return 0
        kill -0 "$STUB_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "stub $* did not print PORT: $(tail -n 3 "$logf" | tr '\n' ' ')"
    return 1
}
stop_stub() {
    [[ -n $STUB_PID ]] || return 0
    kill "$STUB_PID" 2>/dev/null || true
    wait "$STUB_PID" 2>/dev/null || true
    STUB_PID=""
}

# ep_ready NAME CAOUT ARGS...: endpoints add NAME ARGS..., then its CA into CAOUT.
ep_ready() {
    local name=$1 caout=$2 out
    shift 2
    ep_add "$name" "$@" || return 1
    if ! out=$(ep_cacert "$name" "$caout"); then
        fail "endpoint-$name-getcacert" "$out"
        return 1
    fi
}
