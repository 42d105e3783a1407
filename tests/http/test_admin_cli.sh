#!/usr/bin/env bash
# The admin API and scepctl end to end: endpoints, accounts, one-time
# challenges, signed tokens, profiles, events and audit against a scepd
# started here (127.0.0.1, a free port, a temporary data dir).  Checks
# usage errors (exit 2 with a message), runtime errors (exit 1 with a
# message), --json parsed by python3, that no generated secret shows in
# "show"/"list" output nor in the log, that the admin token is required,
# and that an added endpoint answers at /scep/NAME without a restart and
# 404 once disabled.  Every check is one PASS/FAIL line.
#
#   tests/http/test_admin_cli.sh [BUILD_DIR]
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../interop/lib.sh
source "$HERE/../interop/lib.sh" "${1:-}"
require_bin "$SCEPD" "$SCEPCTL" curl openssl python3 timeout

CHALLENGE="adm-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
D="$WORK/data"
init_scepd "$D" "$CHALLENGE"
start_scepd "$D"
BASE="http://127.0.0.1:$SCEPD_PORT"
SECRETS=() # every secret seen: none may appear in the log or in show/list output

# ctl NAME WANT_RC PATTERN ARGS...: scepctl --data $D ARGS...; exit code WANT_RC and
# (unless PATTERN is "") stdout or stderr matching the extended regex PATTERN.
# Output in $WORK/out and $WORK/err.
ctl() {
    local name=$1 want=$2 pat=$3 rc=0
    shift 3
    timeout 30 "$SCEPCTL" --data "$D" "$@" >"$WORK/out" 2>"$WORK/err" || rc=$?
    if [[ $rc == "$want" ]] && { [[ -z $pat ]] || grep -qE -- "$pat" "$WORK/out" "$WORK/err"; }; then
        pass "$name"
        return 0
    fi
    fail "$name" "scepctl $* -> rc=$rc (want $want${pat:+, /$pat/}); stdout: $(head -c 300 "$WORK/out" | tr '\n' ' ') stderr: $(head -c 300 "$WORK/err" | tr '\n' ' ')"
    return 1
}

# jcheck NAME FILE EXPR [ARGS...]: the python expression EXPR is true, with d the JSON in FILE
# and a the ARGS.
jcheck() {
    local name=$1 file=$2 expr=$3 out
    shift 3
    if out=$(python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
a = sys.argv[3:]
sys.exit(0 if eval("(" + sys.argv[2] + "\n)") else 1)' "$file" "$expr" "$@" 2>&1); then
        pass "$name"
    else
        fail "$name" "not true: $expr ${out:+($out) }in $(head -c 400 "$file" | tr '\n' ' ')"
    fi
}

# jget FILE EXPR: print the python expression EXPR of the JSON d in FILE ("" on error).
jget() {
    python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
v = eval(sys.argv[2])
print("" if v is None else v)' "$1" "$2" 2>/dev/null || true
}

# http NAME WANT_STATUS PATH [curl args]: GET (or as the args say) $BASE/PATH
http() {
    local name=$1 want=$2 path=$3 st
    shift 3
    st=$(curl -s -o "$WORK/body" -w '%{http_code}' "$@" "$BASE$path" || true)
    if [[ $st == "$want" ]]; then pass "$name"; else
        fail "$name" "GET $path: HTTP $st, want $want ($(head -c 200 "$WORK/body" | tr -d '\0'))"; fi
}

# api NAME WANT_STATUS PATTERN curl-args...: the admin API with the token
api() {
    local name=$1 want=$2 pat=$3 st
    shift 3
    st=$(curl -s --unix-socket "$D/admin.sock" -H "Authorization: Bearer $(cat "$D/admin.token")" \
        -o "$WORK/body" -w '%{http_code}' "$@" || true)
    if [[ $st == "$want" ]] && grep -qE -- "$pat" "$WORK/body"; then pass "$name"; else
        fail "$name" "curl $*: HTTP $st, want $want /$pat/ ($(head -c 300 "$WORK/body"))"; fi
}

printf 'bearer-%s\n' "$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')" >"$WORK/bearer"
printf 'intune-key-%s\n' "$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')" >"$WORK/appkey"
printf 'code-%s\n' "$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')" >"$WORK/code"
printf 'static-%s\n' "$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')" >"$WORK/static"
SECRETS+=("$(cat "$WORK/bearer")" "$(cat "$WORK/appkey")" "$(cat "$WORK/code")" "$(cat "$WORK/static")")

# --- usage errors: exit 2 and a message naming the problem -----------------------
ctl usage-no-verb 2 'endpoints needs a command: .*add' endpoints
ctl usage-unknown-verb 2 'unknown command' endpoints frob
ctl usage-unknown-noun 2 'unknown command frob' frob list
ctl usage-missing-name 2 'needs NAME' endpoints add
ctl usage-unknown-option 2 'unknown option --bogus' endpoints add x --bogus 1
ctl usage-option-not-taken 2 'does not take the option --ca' endpoints list --ca default
ctl usage-update-no-ca 2 'does not take the option --org' endpoints update default --org X
ctl usage-missing-value 2 '--mode needs a value' endpoints add x --mode
ctl usage-bad-validity 2 '--validity 0: .*1 to 36500' endpoints add x --validity 0
ctl usage-bad-mode 2 '--mode nope: use one of static\|account' endpoints add x --mode nope
ctl usage-ca-and-new-ca 2 'not both' endpoints add x --ca default --new-ca CN=x
ctl usage-ca-key-alone 2 '--ca-key applies only with --new-ca' endpoints add x --ca-key ec:p256
ctl usage-twice 2 '--mode given twice' endpoints add x --mode static --mode signed
ctl usage-update-nothing 2 'nothing to change' endpoints update default
ctl usage-need-endpoint 2 '--endpoint is required' challenges new
ctl usage-bad-duration 2 '--ttl 5x: give a duration' challenges new --endpoint x --ttl 5x
ctl usage-short-duration 2 '--ttl 10s: give a duration' challenges new --endpoint x --ttl 10s
ctl usage-bad-san 2 '--san nope: give TYPE:VALUE' challenges new --endpoint x --san nope
ctl usage-bad-status 2 '--status nope: use one of pending' events list --status nope
ctl usage-bad-limit 2 '--limit 0: give a whole number from 1 to 1000' audit list --limit 0
ctl usage-bad-duplicate 2 'allow\|refuse\|revoke' profiles add p --duplicate-subject maybe
ctl usage-extra-arg 2 'unexpected argument b' endpoints show a b
ctl usage-bad-secret-file 1 '--webhook-bearer-file .*cannot read' endpoints add x --mode webhook \
    --webhook-url http://127.0.0.1:9/ --webhook-bearer-file "$WORK/nonexistent"
rc=0
msg=$("$SCEPCTL" endpoints list 2>&1) || rc=$?
if [[ $rc == 2 && $msg == *"--data DIR is required"* ]]; then pass usage-no-data; else
    fail usage-no-data "rc=$rc: $msg"; fi

# every command explains itself (no --data needed)
for cmd in "certs list" "certs revoke" "ca list" "ca rollover" "ca switch" "requests list" \
    "requests approve" "requests reject" "profiles list" "profiles show" "profiles add" \
    "profiles update" "endpoints list" "endpoints show" "endpoints add" "endpoints update" \
    "endpoints disable" "endpoints enable" "accounts list" "accounts add" "accounts disable" \
    "accounts enable" "accounts rotate-code" "challenges list" "challenges new" "challenges sign" \
    "events list" "audit list"; do
    # shellcheck disable=SC2086 # word-split on purpose
    if out=$("$SCEPCTL" $cmd --help 2>&1) && [[ $out == "Usage: scepctl --data DIR $cmd"* ]]; then
        case $cmd in
        "endpoints add" | "endpoints update" | "accounts add" | "challenges new" | "challenges sign" | \
            "profiles add" | "profiles update" | "certs revoke")
            if [[ $out == *"Example:"* ]]; then pass "help-${cmd// /-}"; else fail "help-${cmd// /-}" "no example"; fi
            ;;
        *) pass "help-${cmd// /-}" ;;
        esac
    else
        fail "help-${cmd// /-}" "$out"
    fi
done
if "$SCEPCTL" --help | grep -q "endpoints add NAME"; then pass help-lists-commands; else
    fail help-lists-commands "scepctl --help lacks endpoints add"; fi

# --- the admin token is required ---------------------------------------------------
st=$(curl -s --unix-socket "$D/admin.sock" -o "$WORK/body" -w '%{http_code}' http://x/v1/endpoints || true)
if [[ $st == 401 ]] && grep -q 'bearer token' "$WORK/body"; then pass admin-needs-token; else
    fail admin-needs-token "HTTP $st $(cat "$WORK/body")"; fi
st=$(curl -s --unix-socket "$D/admin.sock" -H "Authorization: Bearer wrong" -o /dev/null -w '%{http_code}' \
    -X POST -d '{"name":"evil","ca":"default"}' http://x/v1/endpoints || true)
if [[ $st == 401 ]]; then pass admin-wrong-token-refused; else fail admin-wrong-token-refused "HTTP $st"; fi

# --- profiles ------------------------------------------------------------------------
ctl profile-add-first-release-form 0 'profile wifi-prof added' profiles add wifi-prof \
    --template WiFiMachine --validity-days 90 --eku clientAuth,serverAuth
ctl profile-add-every-field 0 '' profiles add strict --validity 30 --max-validity 60 \
    --key-types rsa:2048,ec:p256 --subject-allow CN,O --subject-forbid OU --san-types dns \
    --san-patterns 'dns:*.example.com' --key-usage digitalSignature --eku clientAuth \
    --cdp-url http://crl.example.com/strict.crl --aia-url http://ca.example.com/ca.crt \
    --duplicate-subject refuse --json && cp "$WORK/out" "$WORK/prof.json"
jcheck profile-add-json "$WORK/prof.json" 'd["name"] == "strict" and d["validity_days"] == 30 and
    d["max_validity_days"] == 60 and d["key_types"] == "rsa:2048,ec:p256" and
    d["subject_allow"] == "CN,O" and d["subject_forbid"] == "OU" and d["san_types"] == "dns" and
    d["san_patterns"] == "dns:*.example.com" and d["key_usage"] == "digitalSignature" and
    d["cdp_url"] == "http://crl.example.com/strict.crl" and
    d["aia_url"] == "http://ca.example.com/ca.crt" and d["duplicate_subject"] == "refuse"'
ctl profile-add-exists 1 'HTTP 409: .*strict exists' profiles add strict --validity 5
ctl profile-update 0 'profile strict updated' profiles update strict --validity 45
ctl profile-list-json 0 '' profiles list --json && cp "$WORK/out" "$WORK/profs.json"
jcheck profile-update-keeps-others "$WORK/profs.json" '[(p["validity_days"], p["key_types"], p["eku"])
    for p in d if p["name"] == "strict"] == [(45, "rsa:2048,ec:p256", "clientAuth")] and
    any(p["name"] == "wifi-prof" and p["template"] == "WiFiMachine" and p["validity_days"] == 90 for p in d)'
ctl profile-update-checked 1 'HTTP 400: .*validity' profiles update strict --max-validity 10
ctl profile-update-unknown 1 'HTTP 404: no profile named nope' profiles update nope --validity 5
ctl profile-list-table 0 '^ID +NAME +TEMPLATE' profiles list
ctl profile-show 0 'key_types: +rsa:2048,ec:p256' profiles show strict

# --- endpoints -------------------------------------------------------------------------
ctl ca-list 0 '' ca list --json && cp "$WORK/out" "$WORK/cas.json"
CA=$(jget "$WORK/cas.json" '[c["name"] for c in d if c.get("used_by") == "default"][0]')
[[ -n $CA ]] || CA=default
ctl endpoint-add-static-json 0 '' endpoints add st --new-ca "CN=Static Test CA,O=Example" \
    --profile strict --org Acme --dept IT --validity 30 --getcacert chain --getcert single \
    --mode static --approval manual --notify-url http://127.0.0.1:9/notify --json &&
    cp "$WORK/out" "$WORK/st.json"
jcheck endpoint-add-answer "$WORK/st.json" 'd["path"] == "/scep/st" and len(d["challenge"]) >= 8 and
    len(d["notify_key"]) == 64 and d["endpoint"]["mode"] == "static" and
    d["endpoint"]["organization"] == "Acme"'
SECRETS+=("$(jget "$WORK/st.json" 'd["challenge"]')" "$(jget "$WORK/st.json" 'd["notify_key"]')")
http endpoint-serves-without-restart 200 "/scep/st?operation=GetCACaps"
http endpoint-getcacert 200 "/scep/st?operation=GetCACert"

ctl endpoint-add-one-time 0 '^endpoint ot added; SCEP URL path: /scep/ot$' endpoints add ot \
    --ca "$CA" --mode one-time --max-outstanding 2 --challenge-ttl 2h
ctl endpoint-add-signed 0 '^token key: +[0-9a-f]{64}$' endpoints add sg --new-ca CN=SG \
    --ca-key ec:p256 --mode signed --validity 7
if grep -q 'shown only now' "$WORK/err"; then pass endpoint-add-key-note; else
    fail endpoint-add-key-note "$(cat "$WORK/err")"; fi
SG_KEY=$(sed -n 's/^token key: *//p' "$WORK/out")
SECRETS+=("$SG_KEY")
ctl endpoint-add-webhook 0 '' endpoints add wh --ca "$CA" --mode webhook \
    --webhook-url http://127.0.0.1:9/hook --webhook-timeout 2000 \
    --webhook-bearer-file "$WORK/bearer" --json && cp "$WORK/out" "$WORK/wh.json"
jcheck endpoint-add-webhook-key "$WORK/wh.json" 'len(d["webhook_key"]) == 64 and
    d["endpoint"]["webhook_url"] == "http://127.0.0.1:9/hook"'
SECRETS+=("$(jget "$WORK/wh.json" 'd["webhook_key"]')")
ctl endpoint-add-account 0 '/scep/ac' endpoints add ac --ca "$CA" --mode account --org Acme
ctl endpoint-add-intune 0 '' endpoints add it --ca "$CA" --mode intune \
    --intune-tenant contoso.onmicrosoft.com --intune-app-id 00000000-1111-2222-3333-444444444444 \
    --intune-app-key-file - --intune-provider scepd-test/1.0 \
    --intune-login-url https://login.example.com --intune-graph-url https://graph.example.com \
    --intune-resource-url https://api.example.com --intune-proxy http://127.0.0.1:9 \
    --json <"$WORK/appkey" && cp "$WORK/out" "$WORK/it.json"
jcheck endpoint-add-intune-settings "$WORK/it.json" 'd["endpoint"]["intune"]["tenant"] ==
    "contoso.onmicrosoft.com" and d["endpoint"]["mode"] == "intune"'
ctl endpoint-add-static-file 0 '/scep/st2' endpoints add st2 --ca "$CA" --challenge-file "$WORK/static"
ctl endpoint-add-taken 1 'HTTP 409' endpoints add st --ca "$CA"
ctl endpoint-add-bad-ca 1 'HTTP (400|404)' endpoints add nca --ca no-such-ca
ctl endpoint-add-bad-name 1 'HTTP 400' endpoints add Bad/Name --ca "$CA"

ctl endpoint-list-table 0 '^NAME +ENABLED +PATH +MODE' endpoints list
for e in st ot sg wh ac it st2; do
    if grep -qE "^$e +yes +/scep/$e " "$WORK/out"; then pass "endpoint-list-row-$e"; else
        fail "endpoint-list-row-$e" "$(cat "$WORK/out")"; fi
done
ctl endpoint-list-json 0 '' endpoints list --json && cp "$WORK/out" "$WORK/eps.json"
jcheck endpoint-list-json-names "$WORK/eps.json" \
    'set(["default", "st", "ot", "sg", "wh", "ac", "it", "st2"]) <= set(e["name"] for e in d)'
ctl endpoint-show 0 '^mode: +static$' endpoints show st
ctl endpoint-show-json 0 '' endpoints show wh --json && cp "$WORK/out" "$WORK/wh-show.json"
jcheck endpoint-show-json-fields "$WORK/wh-show.json" 'd["name"] == "wh" and d["mode"] == "webhook"'
: >"$WORK/shows"
for e in st ot sg wh ac it st2; do
    timeout 30 "$SCEPCTL" --data "$D" endpoints show "$e" >>"$WORK/shows" 2>&1 || true
    timeout 30 "$SCEPCTL" --data "$D" endpoints show "$e" --json >>"$WORK/shows" 2>&1 || true
done
cat "$WORK/out" >>"$WORK/shows"
leak=""
for s in "${SECRETS[@]}"; do
    [[ -n $s ]] && grep -qF -- "$s" "$WORK/shows" "$WORK/eps.json" && leak="$leak ${s:0:6}..."
done
if [[ -z $leak ]]; then pass endpoint-show-no-secret; else fail endpoint-show-no-secret "found:$leak"; fi
ctl endpoint-show-unknown 1 'HTTP 404: no endpoint named nope' endpoints show nope

ctl endpoint-update 0 'endpoint st updated' endpoints update st --validity 60 --approval auto
ctl endpoint-update-check 0 '' endpoints show st --json && cp "$WORK/out" "$WORK/st2.json"
jcheck endpoint-update-applied "$WORK/st2.json" 'd["validity_days"] == 60 and d["approval"] == "auto"
    and d["organization"] == "Acme" and d["profile"] == "strict"'
ctl endpoint-update-unknown 1 'HTTP 404' endpoints update nope --validity 5
ctl endpoint-rotate-key 0 '' endpoints update sg --rotate-key --json && cp "$WORK/out" "$WORK/sg2.json"
jcheck endpoint-rotate-new-key "$WORK/sg2.json" 'len(d["token_key"]) == 64 and d["token_key"] != a[0]' "$SG_KEY"
SECRETS+=("$(jget "$WORK/sg2.json" 'd["token_key"]')")

ctl endpoint-disable 0 'answers 404' endpoints disable st
http endpoint-disabled-404 404 "/scep/st?operation=GetCACaps"
ctl endpoint-disabled-listed 0 '' endpoints show st --json
jcheck endpoint-disabled-shown "$WORK/out" 'd["enabled"] is False'
ctl endpoint-enable 0 'enabled' endpoints enable st
http endpoint-enabled-again 200 "/scep/st?operation=GetCACaps"
ctl endpoint-disable-unknown 1 'HTTP 404' endpoints disable nope

# --- accounts -------------------------------------------------------------------------
ctl account-add-json 0 '' accounts add --endpoint ac alice --org Acme --dept IT --validity 10 --json &&
    cp "$WORK/out" "$WORK/alice.json"
jcheck account-add-code "$WORK/alice.json" 'd["name"] == "alice" and len(d["access_code"]) >= 8'
ALICE=$(jget "$WORK/alice.json" 'd["access_code"]')
SECRETS+=("$ALICE")
ctl account-add-code-file 0 '^access code: ' accounts add bob --endpoint ac --org Acme --code-file "$WORK/code"
if grep -q 'shown only now' "$WORK/err"; then pass account-add-note; else fail account-add-note "$(cat "$WORK/err")"; fi
ctl account-add-taken 1 'HTTP 409' accounts add --endpoint ac alice --org Acme
ctl account-add-unknown-endpoint 1 'HTTP 404' accounts add --endpoint nope carol
ctl account-list-json 0 '' accounts list --endpoint ac --json && cp "$WORK/out" "$WORK/accts.json"
jcheck account-list "$WORK/accts.json" 'sorted(x["name"] for x in d) == ["alice", "bob"] and
    all(x["enabled"] for x in d) and not any("access_code" in x for x in d)'
if grep -qF -- "$ALICE" "$WORK/accts.json"; then fail account-list-no-code "alice's code listed"; else
    pass account-list-no-code; fi
ctl account-disable 0 'disabled' accounts disable --endpoint ac bob
ctl account-disabled-listed 0 '' accounts list --endpoint ac --json
jcheck account-disabled-state "$WORK/out" '[x["enabled"] for x in d if x["name"] == "bob"] == [False]'
ctl account-enable 0 'enabled' accounts enable --endpoint ac bob
ctl account-rotate 0 '' accounts rotate-code --endpoint ac alice --json && cp "$WORK/out" "$WORK/alice2.json"
jcheck account-rotate-new-code "$WORK/alice2.json" 'len(d["access_code"]) >= 8 and d["access_code"] != a[0]' "$ALICE"
SECRETS+=("$(jget "$WORK/alice2.json" 'd["access_code"]')")
ctl account-op-unknown 1 'HTTP 404' accounts disable --endpoint ac nobody
ctl account-list-unknown-endpoint 1 'HTTP 404: no endpoint named nope' accounts list --endpoint nope
ctl account-list-table 0 '^NAME +ENABLED' accounts list --endpoint ac

# --- one-time challenges and signed tokens ------------------------------------------------
ctl challenge-new 0 '' challenges new --endpoint ot --ttl 60m --subject CN=dev1 \
    --san DNS:dev1.example.com --san DNS:dev1b.example.com,IP:192.0.2.7 --device dev-1 \
    --sid S-1-5-21-1-2-3-1001
C1=$(cat "$WORK/out")
if [[ $(wc -l <"$WORK/out") == 1 && ${#C1} -ge 16 && $C1 != *" "* ]]; then pass challenge-new-alone-on-stdout; else
    fail challenge-new-alone-on-stdout "stdout: $C1"; fi
SECRETS+=("$C1")
ctl challenge-new-json 0 '' challenges new --endpoint ot --json && cp "$WORK/out" "$WORK/c2.json"
jcheck challenge-new-json-fields "$WORK/c2.json" 'len(d["challenge"]) >= 16 and d["expires_at"] > 0'
SECRETS+=("$(jget "$WORK/c2.json" 'd["challenge"]')")
ctl challenge-cap 1 'HTTP 429' challenges new --endpoint ot
ctl challenge-wrong-mode 1 'HTTP 400: .*one-time' challenges new --endpoint st
ctl challenge-unknown-endpoint 1 'HTTP 404' challenges new --endpoint nope
ctl challenge-list-json 0 '' challenges list --endpoint ot --json && cp "$WORK/out" "$WORK/chals.json"
jcheck challenge-list "$WORK/chals.json" 'len(d) == 2 and all(c["state"] == "open" for c in d) and
    any(c["subject"] == "CN=dev1" and c["device_id"] == "dev-1" and "IP:192.0.2.7" in c["sans"] for c in d)'
leak=""
for s in "$C1" "$(jget "$WORK/c2.json" 'd["challenge"]')"; do grep -qF -- "$s" "$WORK/chals.json" && leak=1; done
if [[ -z $leak ]]; then pass challenge-list-no-secret; else fail challenge-list-no-secret "challenge listed"; fi
ctl challenge-list-table 0 '^ID +STATE +CREATED +EXPIRES' challenges list --endpoint ot
ctl token-sign 0 '^scep1\.' challenges sign --endpoint sg --ttl 1d --subject CN=phone \
    --san DNS:phone.example.com --eku clientAuth --device d1
TOK=$(cat "$WORK/out")
if [[ $(wc -l <"$WORK/out") == 1 ]]; then pass token-alone-on-stdout; else fail token-alone-on-stdout "$TOK"; fi
SECRETS+=("$TOK")
ctl token-sign-json 0 '' challenges sign --endpoint sg --json
jcheck token-sign-json-field "$WORK/out" 'd["token"].startswith("scep1.")'
ctl token-wrong-mode 1 'HTTP 400' challenges sign --endpoint ot

# --- events and audit ---------------------------------------------------------------------
ctl events-list-json 0 '' events list --json
jcheck events-list-is-list "$WORK/out" 'isinstance(d, list)'
ctl events-list-filtered 0 '' events list --status pending --limit 5 --json
jcheck events-list-limit "$WORK/out" 'isinstance(d, list) and len(d) <= 5 and all(e["status"] == "pending" for e in d)'
ctl events-list-table 0 '' events list
ctl audit-list-json 0 '' audit list --json && cp "$WORK/out" "$WORK/audit.json"
jcheck audit-actor-uid "$WORK/audit.json" 'any(r["actor"] == "admin(uid=%s)" % a[0] and r["endpoint"] == "st"
    for r in d)' "$(id -u)"
ctl audit-list-limit 0 '' audit list --limit 3 --json
jcheck audit-limit-3 "$WORK/out" 'len(d) == 3'
ctl audit-list-table 0 '^ID +AT +ACTOR +ACTION' audit list --limit 5

# --- the API directly: field errors name the field -------------------------------------------
api api-type-error 400 '"name must be a string' -X POST -d '{"name": 5}' http://x/v1/endpoints
api api-unknown-field 400 'unknown field \\"colour\\"' -X POST -d '{"name": "q", "colour": "red"}' http://x/v1/endpoints
api api-patch-type 400 'validity_days must be a whole number' -X PATCH -d '{"validity_days": "x"}' http://x/v1/endpoints/st
api api-patch 200 '"validity_days":61' -X PATCH -d '{"validity_days": 61}' http://x/v1/endpoints/st
api api-intune-type 400 'intune.tenant must be a string' -X PATCH -d '{"intune": {"tenant": 1}}' http://x/v1/endpoints/it
api api-not-json 400 'not JSON' -X POST -d '{nope' http://x/v1/endpoints
api api-unknown-endpoint 404 'no endpoint named nope' http://x/v1/endpoints/nope
api api-method 405 'use GET or POST' -X DELETE http://x/v1/endpoints
api api-unknown-route 404 'no such route' http://x/v1/nothing
api api-profile-list-fields 200 '"duplicate_subject":"refuse"' http://x/v1/profiles
api api-token-san-list 200 '"token"' -X POST -d '{"san": ["DNS:z.example.com"], "ttl": 120}' \
    http://x/v1/endpoints/sg/tokens
head -c 20000 /dev/zero | tr '\0' 'a' >"$WORK/big"
api api-body-cap 413 'body over' -X POST --data-binary @"$WORK/big" http://x/v1/endpoints

# --- no secret in the log -------------------------------------------------------------------
leak=""
for s in "${SECRETS[@]}"; do
    [[ -n $s ]] && grep -qF -- "$s" "$SCEPD_LOG" && leak="$leak ${s:0:6}..."
done
if [[ -z $leak ]]; then pass log-no-secret; else fail log-no-secret "found:$leak"; fi
if grep -q 'admin request method=POST path=/v1/endpoints status=200 actor=admin(uid=' "$SCEPD_LOG"; then
    pass log-admin-request-line; else fail log-admin-request-line "$(grep admin "$SCEPD_LOG" | tail -3)"; fi

stop_scepd
ctl scepctl-no-server 1 'scepd serve --data' endpoints list
finish
