#!/usr/bin/env bash
# shellcheck disable=SC2119
# Interop: several endpoints in one scepd (tests/interop/test_endpoints.sh [BUILD_DIR]).
#
# 1. Two endpoints, each with its own new CA and its own profile
#    ("wifi": CN=Wifi CA, 30 days, clientAuth; "vpn": CN=VPN CA, 90 days,
#    clientAuth+serverAuth), served *at the same time* to micromdm scepclient
#    (wifi) and strongSwan pki --scep (vpn): each certificate chains to its
#    endpoint's CA and not to the other one, validity and EKU follow the profile.
# 2. Account mode: endpoint "acct" --mode account --org Acme --dept IT, an
#    account with --validity 10: scepclient (CSR O=scep-client, OU=MDM) with the
#    access code as challenge gets O=Acme, OU=IT and ~10 days; a wrong code and
#    a disabled account's code get nothing (certs list unchanged).
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

# --- 1. two endpoints, two CAs, two profiles, concurrently -----------------
CH_WIFI="wifi-$(rnd)"
CH_VPN="vpn-$(rnd)"
ok=1
ctl profiles add wifi-prof --validity 30 --eku clientAuth >"$WORK/prof1.log" 2>&1 ||
    { fail profiles-add "profiles add wifi-prof: $(tail -n 2 "$WORK/prof1.log" | tr '\n' ' ')"; ok=0; }
ctl profiles add vpn-prof --validity 90 --eku clientAuth,serverAuth >"$WORK/prof2.log" 2>&1 ||
    { fail profiles-add "profiles add vpn-prof: $(tail -n 2 "$WORK/prof2.log" | tr '\n' ' ')"; ok=0; }
ep_add wifi --new-ca "CN=Wifi CA" --profile wifi-prof --mode static --challenge "$CH_WIFI" || ok=0
ep_add vpn --new-ca "CN=VPN CA" --profile vpn-prof --mode static --challenge "$CH_VPN" || ok=0
if ((ok)); then
    out=$(ep_cacert wifi "$WORK/wifi-ca.pem") || { fail endpoints-getcacert "$out"; ok=0; }
    out=$(ep_cacert vpn "$WORK/vpn-ca.pem") || { fail endpoints-getcacert "$out"; ok=0; }
fi
if ((ok)); then
    ws=$(openssl x509 -in "$WORK/wifi-ca.pem" -noout -subject -nameopt RFC2253 | sed 's/^subject=//')
    vs=$(openssl x509 -in "$WORK/vpn-ca.pem" -noout -subject -nameopt RFC2253 | sed 's/^subject=//')
    if [[ $ws == "CN=Wifi CA" && $vs == "CN=VPN CA" ]]; then
        pass endpoints-distinct-cas
    else
        fail endpoints-distinct-cas "GetCACert subjects: wifi '$ws', vpn '$vs'"
    fi
    log "enrolling concurrently: scepclient -> /scep/wifi, pki --scep -> /scep/vpn"
    rc_w=0
    rc_v=0
    run_scepclient wifi-client "$SCEPD_URL/wifi" "$CH_WIFI" wifi-dev1 &
    pid_w=$!
    run_pki vpn-client "$SCEPD_URL/vpn" "$CH_VPN" "CN=vpn-dev1,O=scepd-interop" vpn-dev1.example.test &
    pid_v=$!
    wait "$pid_w" || rc_w=$?
    wait "$pid_v" || rc_v=$?
    # name cert key cn own_ca other_ca days eku
    for spec in "wifi-client|wifi-dev1|$WORK/wifi-ca.pem|$WORK/vpn-ca.pem|30|TLS Web Client Authentication|$rc_w" \
        "vpn-client|vpn-dev1|$WORK/vpn-ca.pem|$WORK/wifi-ca.pem|90|TLS Web Client Authentication,TLS Web Server Authentication|$rc_v"; do
        IFS='|' read -r n cn own other days eku rc <<<"$spec"
        if ((rc != 0)); then
            fail "$n" "client exited $rc"
            show_tail "$WORK/$n/client.log" 6
            show_tail "$WORK/$n/scep.log" 6
            show_tail "$SCEPD_LOG" 6
            continue
        fi
        check_cert_ca "$n" "$WORK/$n/cert.pem" "$WORK/$n/key.pem" "$cn" "$own" || continue
        pem="$WORK/$n.check.pem"
        if openssl verify -CAfile "$other" "$pem" >/dev/null 2>&1; then
            fail "$n-not-other-ca" "certificate also verifies against $(basename "$other")"
        else
            pass "$n-not-other-ca"
        fi
        got=$(cert_days "$pem")
        if ((got >= days - 1 && got <= days + 1)); then pass "$n-validity-${days}d"; else fail "$n-validity-${days}d" "validity $got days"; fi
        got=$(cert_eku "$pem")
        want=$(echo "$eku" | tr ',' '\n' | sort | tr '\n' ',' | sed 's/,$//')
        if [[ $got == "$want" ]]; then pass "$n-eku"; else fail "$n-eku" "EKU '$got', want '$want'"; fi
    done
fi

# --- 2. account mode --------------------------------------------------------
if ep_add acct --mode account --org Acme --dept IT; then
    code=""
    if ctl accounts add --endpoint acct alice --org Acme --dept IT --validity 10 --json >"$WORK/acct-alice.json" 2>"$WORK/acct-alice.err"; then
        code=$(json_get "$WORK/acct-alice.json" access_code)
    fi
    if [[ -z $code ]]; then
        fail account-add "accounts add alice: $(head -c 300 "$WORK/acct-alice.err" "$WORK/acct-alice.json" | tr '\n' ' ')"
    else
        out=$(ep_cacert acct "$WORK/acct-ca.pem") || fail account-getcacert "$out"
        rc=0
        run_scepclient acct-alice "$SCEPD_URL/acct" "$code" alice || rc=$?
        if ((rc != 0)); then
            fail account-enroll "scepclient exited $rc: $(grep -v '^$' "$WORK/acct-alice/client.log" | tail -n 1)"
            show_tail "$SCEPD_LOG" 6
        elif check_cert_ca account-enroll "$WORK/acct-alice/cert.pem" "$WORK/acct-alice/key.pem" alice "$WORK/acct-ca.pem"; then
            pem="$WORK/account-enroll.check.pem"
            subj=$(openssl x509 -in "$pem" -noout -subject -nameopt RFC2253 | sed 's/^subject=//')
            if [[ ",$subj," == *",O=Acme,"* && ",$subj," == *",OU=IT,"* && $subj != *scep-client* && $subj != *MDM* ]]; then
                pass account-subject-org-dept
            else
                fail account-subject-org-dept "subject '$subj' (want O=Acme, OU=IT, no scep-client/MDM)"
            fi
            got=$(cert_days "$pem")
            if ((got >= 9 && got <= 11)); then pass account-validity-10d; else fail account-validity-10d "validity $got days"; fi
        fi
    fi
    # wrong access code
    before=$(certs_count acct-wrong) || before=error
    rc=0
    run_scepclient acct-wrong "$SCEPD_URL/acct" "wrong-$(rnd)" acct-wrong || rc=$?
    expect_no_cert account-wrong-code "$rc" "$WORK/acct-wrong/cert.pem" acct-wrong "$before" challenge || true
    # disabled account
    if ctl accounts add --endpoint acct bob --org Acme --dept IT --json >"$WORK/acct-bob.json" 2>"$WORK/acct-bob.err"; then
        code_b=$(json_get "$WORK/acct-bob.json" access_code)
        if ctl accounts disable --endpoint acct bob >"$WORK/acct-dis.log" 2>&1 ||
            ctl accounts disable bob --endpoint acct >>"$WORK/acct-dis.log" 2>&1; then
            before=$(certs_count bob) || before=error
            rc=0
            run_scepclient acct-bob "$SCEPD_URL/acct" "$code_b" bob || rc=$?
            expect_no_cert account-disabled "$rc" "$WORK/acct-bob/cert.pem" bob "$before" account_disabled || true
        else
            fail account-disabled "accounts disable bob: $(tail -n 2 "$WORK/acct-dis.log" | tr '\n' ' ')"
        fi
    else
        fail account-disabled "accounts add bob: $(head -c 300 "$WORK/acct-bob.err")"
    fi
fi

stop_scepd
finish
