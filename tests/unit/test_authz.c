/*
 * test_authz.c - who may get which certificate: every challenge mode and
 * the profile rules, through the service as a client would reach them
 * (matrix A3 A4 A5 S5 P4 P6), with the negative cases asserting the exact
 * error.  Webhook and Intune modes are covered against their stand-ins in
 * test_outbound.c and tests/interop/test_modes.sh / test_intune.sh.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/x509v3.h>
#include <sqlite3.h>

#include "scepd/challenge.h"
#include "scepd/issue.h"
#include "scepd/policy.h"
#include "scepd/store.h"
#include "scepd/token.h"
#include "testutil.h"

static struct fixture *cur; /* the running test's fixture */

static int
setup(void **state)
{
    *state = cur = fixture_new(NULL);
    return 0;
}

/* Add an endpoint with mode and make it the fixture's target. */
static void
add_endpoint(struct fixture *f, struct scep_endpoint_spec *sp, struct scep_endpoint_keys *keys)
{
    char err[512];
    enum scep_err rc = scep_service_add_endpoint(f->svc, sp, "test", keys, err, sizeof(err));

    if (rc != SCEP_OK)
        fail_msg("add endpoint %s: %s (%s)", sp->name, scep_errname(rc), err);
    f->ep = scep_service_endpoint(f->svc, sp->name, strlen(sp->name));
    assert_non_null(f->ep);
    X509_free(f->ra);
    X509_up_ref(f->ep->ra_cert);
    f->ra = f->ep->ra_cert;
}

/* A spec on the default endpoint's CA. */

static void
spec_for(struct scep_endpoint_spec *sp, const char *name, const char *mode)
{
    const struct scep_endpoint *d = scep_service_endpoint(cur->svc, NULL, 0);

    scep_endpoint_spec_init(sp);
    snprintf(sp->name, sizeof(sp->name), "%s", name);
    snprintf(sp->ca, sizeof(sp->ca), "%s", d->ca_name);
    snprintf(sp->mode, sizeof(sp->mode), "%s", mode);
}

/* Enroll key with dn/challenge (and SAN) on the fixture's endpoint; the result's error. */
static enum scep_err
enroll_tx(struct fixture *f, int key, const char *dn, const char *chal, const char *san,
          X509 **cert, const char *txid)
{
    struct test_req t;
    struct scep_result r;
    enum scep_err e;

    test_req_make(&t, f, test_key(key), test_key(key), dn, chal);
    if (txid != NULL) {
        /* a transaction of its own (the default ID is derived from the key) */
        snprintf(t.txid, sizeof(t.txid), "%s", txid);
        test_req_build(&t);
    }
    if (san != NULL) {
        X509_REQ *csr = NULL;
        unsigned char *der = NULL;
        int n;
        assert_int_equal(scep_client_make_csr(test_key(key), dn, chal, san, &csr), SCEP_OK);
        n = i2d_X509_REQ(csr, &der);
        assert_true(n > 0);
        free(t.csr);
        t.csr = malloc((size_t)n);
        memcpy(t.csr, der, (size_t)n);
        t.csr_len = (size_t)n;
        t.req.inner = t.csr;
        t.req.inner_len = t.csr_len;
        OPENSSL_free(der);
        X509_REQ_free(csr);
        test_req_build(&t);
    }
    test_run(f, t.der, t.der_len, &r);
    e = r.err;
    if (cert != NULL) {
        *cert = NULL;
        if (e == SCEP_OK) {
            struct scep_client_reply rep;
            test_reply(f, &r, &t, test_key(key), &rep);
            assert_int_equal(rep.status, 0);
            *cert = rep.cert;
            rep.cert = NULL;
            scep_client_reply_clear(&rep);
        }
    }
    scep_result_clear(&r);
    test_req_clear(&t);
    return e;
}

static enum scep_err
enroll(struct fixture *f, int key, const char *dn, const char *chal, const char *san, X509 **cert)
{
    return enroll_tx(f, key, dn, chal, san, cert, NULL);
}

static char *
subject_of(X509 *c)
{
    static char buf[512];
    X509_NAME_oneline(X509_get_subject_name(c), buf, sizeof(buf));
    return buf;
}

/* "account:NAME device:ID" of a stored certificate, read from the database. */
static const char *
cert_owner(struct fixture *f, X509 *c)
{
    static char out[256];
    char path[512], serial[48];
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;

    scep_serial_hex(c, serial, sizeof(serial));
    snprintf(path, sizeof(path), "%s/%s", f->dir, SCEP_DB_FILE);
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT coalesce('account:' || a.name, ''),"
                                        " coalesce(' device:' || c.device_id, '')"
                                        " FROM certificate c LEFT JOIN account a"
                                        " ON a.id = c.account_id WHERE c.serial = ?",
                                        -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(st, 1, serial, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    snprintf(out, sizeof(out), "%s%s", (const char *)sqlite3_column_text(st, 0),
             (const char *)sqlite3_column_text(st, 1));
    sqlite3_finalize(st);
    sqlite3_close(db);
    return out;
}

static int
count_audit(struct fixture *f, const char *action)
{
    char *json = NULL;
    int n = 0;
    const char *p;
    char needle[64];

    assert_int_equal(scep_service_describe_audit(f->svc, 1000, &json), SCEP_OK);
    snprintf(needle, sizeof(needle), "\"action\":\"%s\"", action);
    for (p = json; (p = strstr(p, needle)) != NULL; p++)
        n++;
    free(json);
    return n;
}

/* ---- static ---- */

static void
test_authz_static_issues_and_audits(void **state)
{
    struct fixture *f = *state;
    X509 *c = NULL;

    assert_int_equal(enroll(f, 0, "CN=static-1", TEST_CHALLENGE, NULL, &c), SCEP_OK);
    assert_non_null(c);
    X509_free(c);
    assert_int_equal(enroll(f, 1, "CN=static-2", "wrong", NULL, NULL), SCEP_E_CHALLENGE);
    assert_int_equal(enroll(f, 1, "CN=static-2", NULL, NULL, NULL), SCEP_E_CHALLENGE_MISSING);
    /* refusals ride the next group commit: one more issuance flushes them */
    assert_int_equal(enroll(f, 2, "CN=static-3", TEST_CHALLENGE, NULL, NULL), SCEP_OK);
    assert_int_equal(count_audit(f, "issue"), 2);
    assert_int_equal(count_audit(f, "refuse"), 2);
}

/* ---- account ---- */

static void
test_authz_account_shapes_certificate(void **state)
{
    struct fixture *f = *state;
    struct scep_endpoint_spec sp;
    struct scep_endpoint_keys keys;
    char code[128], err[256];
    X509 *c = NULL;
    time_t na;
    struct tm tm;

    spec_for(&sp, "acct", "account");
    add_endpoint(f, &sp, &keys);
    assert_int_equal(scep_service_add_account(f->svc, "acct", "it-dept", "Acme", "IT", "", 10, "",
                                              "test", code, sizeof(code), err, sizeof(err)),
                     SCEP_OK);
    assert_true(strlen(code) >= 12);
    /* the CSR asks for other O/OU: the account's are issued */
    assert_int_equal(enroll(f, 0, "CN=laptop,O=Evil,OU=Root", code, NULL, &c), SCEP_OK);
    assert_non_null(strstr(subject_of(c), "/O=Acme/OU=IT/CN=laptop"));
    assert_null(strstr(subject_of(c), "Evil"));
    assert_string_equal(cert_owner(f, c), "account:it-dept");
    ASN1_TIME_to_tm(X509_get0_notAfter(c), &tm);
    na = timegm(&tm);
    assert_true(na > time(NULL) + 9 * 86400 && na <= time(NULL) + 10 * 86400 + 60);
    X509_free(c);
    /* the static challenge means nothing here; nor a code of another endpoint */
    assert_int_equal(enroll(f, 1, "CN=x", TEST_CHALLENGE, NULL, NULL), SCEP_E_CHALLENGE);
    /* disabled account */
    assert_int_equal(scep_service_account_op(f->svc, "acct", "it-dept", "disable", "test", NULL, 0,
                                             err, sizeof(err)),
                     SCEP_OK);
    assert_int_equal(enroll(f, 2, "CN=laptop2", code, NULL, NULL), SCEP_E_ACCOUNT_DISABLED);
}

/* ---- one-time ---- */

static void
new_challenge(struct fixture *f, const char *ep, int ttl, const char *subject, const char *sans,
              char *out, size_t outlen)
{
    char err[256];
    enum scep_err rc = scep_service_new_challenge(f->svc, ep, ttl, subject, sans, "", "", "test",
                                                  out, outlen, err, sizeof(err));
    if (rc != SCEP_OK)
        fail_msg("new challenge: %s (%s)", scep_errname(rc), err);
}

static void
test_authz_onetime_once(void **state)
{
    struct fixture *f = *state;
    struct scep_endpoint_spec sp;
    struct scep_endpoint_keys keys;
    char chal[128];

    spec_for(&sp, "otc", "one-time");
    add_endpoint(f, &sp, &keys);
    new_challenge(f, "otc", 600, "", "", chal, sizeof(chal));
    assert_int_equal(enroll(f, 0, "CN=once", chal, NULL, NULL), SCEP_OK);
    /* A4: consumed; a new transaction with a new key fails */
    assert_int_equal(enroll(f, 1, "CN=once", chal, NULL, NULL), SCEP_E_CHALLENGE_USED);
    assert_int_equal(enroll(f, 2, "CN=other", "not-a-challenge", NULL, NULL), SCEP_E_CHALLENGE);
    assert_int_equal(test_cert_count(f), 1);
}

/* A5: bound to identity X, CSR for Y: refused and the challenge is not consumed. */
static void
test_authz_onetime_bound_identity(void **state)
{
    struct fixture *f = *state;
    struct scep_endpoint_spec sp;
    struct scep_endpoint_keys keys;
    char chal[128];
    X509 *c = NULL;

    spec_for(&sp, "otc", "one-time");
    add_endpoint(f, &sp, &keys);
    new_challenge(f, "otc", 600, "CN=dev1", "DNS:dev1.example.com", chal, sizeof(chal));
    assert_int_equal(enroll(f, 0, "CN=dev2", chal, NULL, NULL), SCEP_E_CHALLENGE_IDENTITY);
    assert_int_equal(enroll(f, 0, "CN=dev1", chal, "evil.example.com", NULL),
                     SCEP_E_CHALLENGE_IDENTITY);
    /* not consumed by the refusals: the right request still works */
    assert_int_equal(enroll(f, 1, "CN=dev1", chal, "dev1.example.com", &c), SCEP_OK);
    assert_non_null(strstr(subject_of(c), "CN=dev1"));
    X509_free(c);
}

/* A3: an expired challenge fails (made expired through the store). */
static void
test_authz_onetime_expired(void **state)
{
    struct fixture *f = *state;
    struct scep_endpoint_spec sp;
    struct scep_endpoint_keys keys;
    struct scep_challenge_row row;
    unsigned char h[32];
    int64_t id = 0;
    const char *chal = "expired-challenge-0123456789";
    char key[64];
    size_t i;

    spec_for(&sp, "otc", "one-time");
    add_endpoint(f, &sp, &keys);
    memset(&row, 0, sizeof(row));
    row.endpoint_id = f->ep->id;
    /* the stored hash is HMAC(secret, "otc:" + challenge); recompute it from secret.key */
    {
        char path[512];
        size_t len;
        unsigned char *secret;
        snprintf(path, sizeof(path), "%s/%s", f->dir, SCEP_SECRET_FILE);
        secret = test_read_file(path, &len);
        snprintf(key, sizeof(key), "otc:%s", chal);
        assert_int_equal(scep_challenge_hash(secret, len, key, strlen(key), h), SCEP_OK);
        free(secret);
    }
    memcpy(row.hash, h, 32);
    row.created_at = time(NULL) - 7200;
    row.expires_at = time(NULL) - 3600;
    assert_int_equal(scep_store_add_challenge(scep_service_store(f->svc), &row, 100, &id), SCEP_OK);
    assert_int_equal(enroll(f, 0, "CN=late", chal, NULL, NULL), SCEP_E_CHALLENGE_EXPIRED);
    assert_int_equal(test_cert_count(f), 0);
    for (i = 0; i < sizeof(key); i++)
        key[i] = 0;
}

struct racer {
    struct fixture *f;
    int key;
    const char *chal;
    char txid[32];
    enum scep_err rc;
};

static void *
race_one(void *arg)
{
    struct racer *r = arg;
    r->rc = enroll_tx(r->f, r->key, "CN=racer", r->chal, NULL, NULL, r->txid);
    return NULL;
}

/* S5: 20 concurrent transactions share one challenge: exactly one certificate. */
static void
test_authz_onetime_race(void **state)
{
    struct fixture *f = *state;
    struct scep_endpoint_spec sp;
    struct scep_endpoint_keys keys;
    char chal[128];
    pthread_t th[20];
    struct racer rs[20];
    int i, ok = 0;

    spec_for(&sp, "otc", "one-time");
    add_endpoint(f, &sp, &keys);
    new_challenge(f, "otc", 600, "", "", chal, sizeof(chal));
    /* the test keys are made on first use, which is not thread safe: make them now */
    for (i = 0; i < 8; i++)
        assert_non_null(test_key(i));
    for (i = 0; i < 20; i++) {
        rs[i].f = f;
        rs[i].key = i % 8; /* keys repeat, transactions do not (fresh txid per request) */
        rs[i].chal = chal;
        snprintf(rs[i].txid, sizeof(rs[i].txid), "race-%02d", i);
        assert_int_equal(pthread_create(&th[i], NULL, race_one, &rs[i]), 0);
    }
    for (i = 0; i < 20; i++) {
        pthread_join(th[i], NULL);
        if (rs[i].rc == SCEP_OK)
            ok++;
        else
            assert_int_equal(rs[i].rc, SCEP_E_CHALLENGE_USED);
    }
    assert_int_equal(ok, 1);
    assert_int_equal(test_cert_count(f), 1);
}

static void
test_authz_onetime_cap(void **state)
{
    struct fixture *f = *state;
    struct scep_endpoint_spec sp;
    struct scep_endpoint_keys keys;
    char chal[128], extra[128], err[256];

    spec_for(&sp, "otc", "one-time");
    sp.max_outstanding = 2;
    add_endpoint(f, &sp, &keys);
    new_challenge(f, "otc", 600, "", "", chal, sizeof(chal));
    new_challenge(f, "otc", 600, "", "", chal, sizeof(chal));
    assert_int_equal(scep_service_new_challenge(f->svc, "otc", 600, "", "", "", "", "test", extra,
                                                sizeof(extra), err, sizeof(err)),
                     SCEP_E_CHALLENGE_CAP);
    /* using one frees a place */
    assert_int_equal(enroll(f, 0, "CN=cap", chal, NULL, NULL), SCEP_OK);
    new_challenge(f, "otc", 600, "", "", chal, sizeof(chal));
}

/* ---- signed tokens ---- */

static void
test_authz_signed_token(void **state)
{
    struct fixture *f = *state;
    struct scep_endpoint_spec sp;
    struct scep_endpoint_keys keys;
    char tok[SCEP_TOKEN_MAX + 1], tampered[SCEP_TOKEN_MAX + 1], err[256];
    X509 *c = NULL;
    size_t dot;

    spec_for(&sp, "mdm", "signed");
    add_endpoint(f, &sp, &keys);
    assert_int_equal(strlen(keys.token_key), 64);
    assert_int_equal(scep_service_sign_token(f->svc, "mdm", 600, "CN=dev1", "", "", "D-42", "",
                                             "test", tok, sizeof(tok), err, sizeof(err)),
                     SCEP_OK);
    /* a token for CN=dev1 refuses CN=dev2 and a CSR adding a SAN; neither uses it up */
    assert_int_equal(enroll(f, 0, "CN=dev2", tok, NULL, NULL), SCEP_E_CHALLENGE_IDENTITY);
    assert_int_equal(enroll(f, 0, "CN=dev1", tok, "dev1.example.com", NULL),
                     SCEP_E_CHALLENGE_IDENTITY);
    /* tampered: one payload character changed */
    snprintf(tampered, sizeof(tampered), "%s", tok);
    dot = strlen(SCEP_TOKEN_PREFIX) + 3;
    tampered[dot] = tampered[dot] == 'A' ? 'B' : 'A';
    assert_int_equal(enroll(f, 0, "CN=dev1", tampered, NULL, NULL), SCEP_E_TOKEN);
    assert_int_equal(enroll(f, 0, "CN=dev1", tok, NULL, &c), SCEP_OK);
    assert_non_null(strstr(subject_of(c), "CN=dev1"));
    assert_string_equal(cert_owner(f, c), " device:D-42");
    X509_free(c);
    /* replayed: the nonce is recorded */
    assert_int_equal(enroll(f, 1, "CN=dev1", tok, NULL, NULL), SCEP_E_CHALLENGE_USED);
    /* a token for another endpoint does not work here */
    spec_for(&sp, "mdm2", "signed");
    add_endpoint(f, &sp, &keys);
    assert_int_equal(enroll(f, 2, "CN=dev1", tok, NULL, NULL), SCEP_E_TOKEN);
}

/* ---- SID: only from an authorization (P4, ESC16) ---- */

static void
test_authz_sid_only_from_authorization(void **state)
{
    struct fixture *f = *state;
    struct scep_endpoint_spec sp;
    struct scep_endpoint_keys keys;
    char chal[128], err[256];
    X509 *c = NULL;
    ASN1_OBJECT *sidext = OBJ_txt2obj("1.3.6.1.4.1.311.25.2", 1);
    GENERAL_NAMES *gns;
    int i, found = 0;

    /* a CSR carrying a SID URI is refused, whatever the mode */
    assert_int_equal(enroll(f, 0, "CN=spoof", TEST_CHALLENGE, NULL, NULL), SCEP_OK);
    {
        struct test_req t;
        struct scep_result r;
        X509_REQ *csr = X509_REQ_new();
        X509_NAME *n = X509_NAME_new();
        STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
        X509_EXTENSION *e;
        unsigned char *der = NULL;
        int len;
        X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"spoof2", -1, -1,
                                   0);
        X509_REQ_set_subject_name(csr, n);
        X509_REQ_set_pubkey(csr, test_key(1));
        X509_REQ_add1_attr_by_NID(csr, NID_pkcs9_challengePassword, MBSTRING_ASC,
                                  (const unsigned char *)TEST_CHALLENGE, -1);
        {
            /* built by hand: the URI has a comma, which the config syntax would split */
            GENERAL_NAMES *sid_gns = GENERAL_NAMES_new();
            GENERAL_NAME *g = GENERAL_NAME_new();
            ASN1_IA5STRING *u = ASN1_IA5STRING_new();
            ASN1_STRING_set(u, "tag:microsoft.com,2022-09-14:sid:S-1-5-21-1-2-3-500", -1);
            GENERAL_NAME_set0_value(g, GEN_URI, u);
            sk_GENERAL_NAME_push(sid_gns, g);
            e = X509V3_EXT_i2d(NID_subject_alt_name, 0, sid_gns);
            GENERAL_NAMES_free(sid_gns);
        }
        assert_non_null(e);
        sk_X509_EXTENSION_push(exts, e);
        X509_REQ_add_extensions(csr, exts);
        X509_REQ_sign(csr, test_key(1), EVP_sha256());
        len = i2d_X509_REQ(csr, &der);
        test_req_make(&t, f, test_key(1), test_key(1), "CN=spoof2", TEST_CHALLENGE);
        free(t.csr);
        t.csr = malloc((size_t)len);
        memcpy(t.csr, der, (size_t)len);
        t.csr_len = (size_t)len;
        t.req.inner = t.csr;
        t.req.inner_len = t.csr_len;
        test_req_build(&t);
        test_run(f, t.der, t.der_len, &r);
        assert_int_equal(r.err, SCEP_E_NAME_POLICY);
        scep_result_clear(&r);
        test_req_clear(&t);
        OPENSSL_free(der);
        sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
        X509_NAME_free(n);
        X509_REQ_free(csr);
    }
    /* a one-time challenge carrying a SID puts it in: SAN URI and extension */
    spec_for(&sp, "otc", "one-time");
    add_endpoint(f, &sp, &keys);
    assert_int_equal(scep_service_new_challenge(f->svc, "otc", 600, "CN=user1", "", "",
                                                "S-1-5-21-1004336348-1177238915-682003330-512",
                                                "test", chal, sizeof(chal), err, sizeof(err)),
                     SCEP_OK);
    assert_int_equal(enroll(f, 2, "CN=user1", chal, NULL, &c), SCEP_OK);
    assert_true(X509_get_ext_by_OBJ(c, sidext, -1) >= 0);
    gns = X509_get_ext_d2i(c, NID_subject_alt_name, NULL, NULL);
    assert_non_null(gns);
    for (i = 0; i < sk_GENERAL_NAME_num(gns); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gns, i);
        if (g->type == GEN_URI &&
            strcmp((const char *)ASN1_STRING_get0_data(g->d.uniformResourceIdentifier),
                   "tag:microsoft.com,2022-09-14:sid:S-1-5-21-1004336348-1177238915-682003330-"
                   "512") == 0)
            found = 1;
    }
    assert_true(found);
    GENERAL_NAMES_free(gns);
    X509_free(c);
    ASN1_OBJECT_free(sidext);
    /* a malformed SID is refused when the challenge is made */
    assert_int_equal(scep_service_new_challenge(f->svc, "otc", 600, "CN=user1", "", "", "S-1-x",
                                                "test", chal, sizeof(chal), err, sizeof(err)),
                     SCEP_E_INVALID_ARG);
}

/*
 * scep_policy_apply on its own (the service also runs
 * scep_issue_check_names first, policy must not need it): a SID URI behind
 * white space or a control is still a request's SID URI and refused; a
 * plain URI passes.  Regression of a fuzz_policy finding.
 */
static void
test_authz_policy_apply_sid_uri_whitespace(void **state)
{
    static const char *const uris[] = {
        " tag:microsoft.com,2022-09-14:sid:S-1-5-21-1-2-3-500",
        "\ttag:microsoft.com,2022-09-14:sid:S-1-5-21-1-2-3-500",
        "\ntag:Microsoft.com,2022-09-14:SID:S-1-5-21-1-2-3-500",
        "https://device.example/a b",
        "https://device.example/id",
    };
    struct scep_authz az;
    size_t i;

    (void)state;
    memset(&az, 0, sizeof(az));
    az.mode = "static";
    for (i = 0; i < sizeof(uris) / sizeof(uris[0]); i++) {
        X509_REQ *csr = X509_REQ_new();
        X509_NAME *n = X509_NAME_new();
        STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
        GENERAL_NAMES *gns = GENERAL_NAMES_new();
        GENERAL_NAME *g = GENERAL_NAME_new();
        ASN1_IA5STRING *u = ASN1_IA5STRING_new();
        struct scep_policy_out po;
        enum scep_err want = i + 1 == sizeof(uris) / sizeof(uris[0]) ? SCEP_OK : SCEP_E_NAME_POLICY;

        assert_true(csr != NULL && n != NULL && exts != NULL && gns != NULL && g != NULL &&
                    u != NULL);
        assert_int_equal(X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
                                                    (const unsigned char *)"dev1", -1, -1, 0),
                         1);
        assert_int_equal(X509_REQ_set_subject_name(csr, n), 1);
        assert_int_equal(X509_REQ_set_pubkey(csr, test_key(1)), 1);
        assert_int_equal(ASN1_STRING_set(u, uris[i], -1), 1);
        GENERAL_NAME_set0_value(g, GEN_URI, u);
        assert_true(sk_GENERAL_NAME_push(gns, g) > 0);
        assert_true(sk_X509_EXTENSION_push(exts, X509V3_EXT_i2d(NID_subject_alt_name, 0, gns)) > 0);
        assert_int_equal(X509_REQ_add_extensions(csr, exts), 1);
        memset(&po, 0, sizeof(po));
        assert_int_equal(scep_policy_apply(csr, NULL, &az, "", "", 365, &po), want);
        if (want == SCEP_OK)
            assert_int_equal(sk_GENERAL_NAME_num(po.sans), 1);
        scep_policy_out_clear(&po);
        GENERAL_NAMES_free(gns);
        sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
        X509_NAME_free(n);
        X509_REQ_free(csr);
    }
}

/* ---- profiles ---- */

static void
test_authz_profile_rules(void **state)
{
    struct fixture *f = *state;
    struct scep_profile_row p;
    struct scep_endpoint_spec sp;
    struct scep_endpoint_keys keys;
    char err[256];
    X509 *c = NULL, *c2 = NULL;
    EXTENDED_KEY_USAGE *eku;

    scep_policy_default_profile(&p);
    snprintf(p.name, sizeof(p.name), "wifi");
    p.validity_days = 30;
    p.max_validity_days = 60;
    snprintf(p.eku, sizeof(p.eku), "clientAuth,serverAuth");
    snprintf(p.subject_allow, sizeof(p.subject_allow), "CN");
    snprintf(p.subject_forbid, sizeof(p.subject_forbid), "street");
    snprintf(p.san_types, sizeof(p.san_types), "dns");
    snprintf(p.san_patterns, sizeof(p.san_patterns), "dns:*.corp.example.com");
    snprintf(p.duplicate_subject, sizeof(p.duplicate_subject), "refuse");
    assert_int_equal(scep_service_update_profile(f->svc, &p, "test", err, sizeof(err)), SCEP_OK);
    /* a profile that would let a leaf sign certificates is refused */
    snprintf(p.key_usage, sizeof(p.key_usage), "digitalSignature,keyCertSign");
    assert_int_equal(scep_service_update_profile(f->svc, &p, "test", err, sizeof(err)),
                     SCEP_E_INVALID_ARG);
    p.key_usage[0] = '\0';

    spec_for(&sp, "wifi", "static");
    snprintf(sp.profile, sizeof(sp.profile), "wifi");
    snprintf(sp.challenge, sizeof(sp.challenge), "%s", TEST_CHALLENGE);
    snprintf(sp.organization, sizeof(sp.organization), "Acme");
    add_endpoint(f, &sp, &keys);

    /* O from the endpoint, C dropped (not allowed), SAN within the pattern */
    assert_int_equal(enroll(f, 0, "CN=ap1,C=US", TEST_CHALLENGE, "ap1.corp.example.com", &c),
                     SCEP_OK);
    assert_string_equal(subject_of(c), "/O=Acme/CN=ap1");
    eku = X509_get_ext_d2i(c, NID_ext_key_usage, NULL, NULL);
    assert_int_equal(sk_ASN1_OBJECT_num(eku), 2);
    sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
    X509_free(c);
    /* P6: duplicate subject refused while the first is valid */
    assert_int_equal(enroll(f, 1, "CN=ap1", TEST_CHALLENGE, NULL, NULL), SCEP_E_DUPLICATE_SUBJECT);
    /* forbidden RDN, SAN outside the pattern */
    assert_int_equal(enroll(f, 2, "CN=ap2,street=Main", TEST_CHALLENGE, NULL, NULL),
                     SCEP_E_NAME_POLICY);
    assert_int_equal(enroll(f, 2, "CN=ap2", TEST_CHALLENGE, "ap2.evil.example.com", NULL),
                     SCEP_E_NAME_POLICY);
    /* duplicate rule "revoke": the old one is revoked in the same commit */
    snprintf(p.duplicate_subject, sizeof(p.duplicate_subject), "revoke");
    assert_int_equal(scep_service_update_profile(f->svc, &p, "test", err, sizeof(err)), SCEP_OK);
    f->ep = scep_service_endpoint(f->svc, "wifi", 4);
    assert_int_equal(enroll(f, 3, "CN=ap1", TEST_CHALLENGE, NULL, &c2), SCEP_OK);
    X509_free(c2);
    {
        struct scep_store *st = scep_service_store(f->svc);
        int64_t n = -1;
        char *subj = NULL;
        X509 *c3 = NULL;
        assert_int_equal(enroll(f, 4, "CN=ap9", TEST_CHALLENGE, NULL, &c3), SCEP_OK);
        subj = scep_name_to_text(X509_get_subject_name(c3));
        X509_free(c3);
        /* the same text form, for CN=ap1: one valid certificate left */
        {
            char *at = strstr(subj, "ap9");
            assert_non_null(at);
            at[2] = '1';
        }
        assert_int_equal(scep_store_count_valid_subject(st, f->ep->ca_id, subj, time(NULL), &n),
                         SCEP_OK);
        assert_int_equal(n, 1);
        free(subj);
    }
}

struct dup_racer {
    struct fixture *f;
    int key;
    char txid[32];
    enum scep_err rc;
};

static void *
dup_one(void *arg)
{
    struct dup_racer *r = arg;
    r->rc = enroll_tx(r->f, r->key, "CN=same-ap", TEST_CHALLENGE, NULL, NULL, r->txid);
    return NULL;
}

/* P6 under concurrency: "refuse" is decided in the commit, so 12 racers get one certificate. */
static void
test_authz_duplicate_subject_race(void **state)
{
    struct fixture *f = *state;
    struct scep_profile_row p;
    struct scep_endpoint_spec sp;
    struct scep_endpoint_keys keys;
    struct dup_racer rs[12];
    pthread_t th[12];
    char err[256];
    int i, ok = 0;

    scep_policy_default_profile(&p);
    snprintf(p.name, sizeof(p.name), "unique");
    snprintf(p.duplicate_subject, sizeof(p.duplicate_subject), "refuse");
    assert_int_equal(scep_service_update_profile(f->svc, &p, "test", err, sizeof(err)), SCEP_OK);
    spec_for(&sp, "uniq", "static");
    snprintf(sp.profile, sizeof(sp.profile), "unique");
    snprintf(sp.challenge, sizeof(sp.challenge), "%s", TEST_CHALLENGE);
    add_endpoint(f, &sp, &keys);
    for (i = 0; i < 8; i++)
        assert_non_null(test_key(i));
    for (i = 0; i < 12; i++) {
        rs[i].f = f;
        rs[i].key = i % 8;
        snprintf(rs[i].txid, sizeof(rs[i].txid), "dup-%02d", i);
        assert_int_equal(pthread_create(&th[i], NULL, dup_one, &rs[i]), 0);
    }
    for (i = 0; i < 12; i++) {
        pthread_join(th[i], NULL);
        if (rs[i].rc == SCEP_OK)
            ok++;
        else
            assert_int_equal(rs[i].rc, SCEP_E_DUPLICATE_SUBJECT);
    }
    assert_int_equal(ok, 1);
    assert_int_equal(test_cert_count(f), 1);
}

static int
first_id(void *arg, const struct scep_request_row *row)
{
    *(int64_t *)arg = row->id;
    return 1; /* newest first: the first is the one */
}

static int64_t
newest_pending(struct fixture *f)
{
    enum scep_req_status want = SCEP_REQ_PENDING;
    int64_t id = 0;

    enum scep_err rc = scep_store_each_request(scep_service_store(f->svc), &want, first_id, &id);

    /* the callback stops the walk at the first row, which each_request reports as INTERNAL */
    assert_true(rc == SCEP_OK || rc == SCEP_E_INTERNAL);
    assert_true(id > 0);
    return id;
}

/* Fetch the certificate of serial from the store, parsed. */
static X509 *
stored_cert(struct fixture *f, const char *serial)
{
    struct scep_cert_info ci;
    const unsigned char *p;
    X509 *x;

    assert_int_equal(scep_store_get_cert(scep_service_store(f->svc), serial, &ci), SCEP_OK);
    p = ci.der;
    x = d2i_X509(NULL, &p, (long)ci.der_len);
    free(ci.der);
    assert_non_null(x);
    return x;
}

/* A parked request keeps its authorization: the approval issues what it allowed. */
static void
test_authz_approval_keeps_authorization(void **state)
{
    struct fixture *f = *state;
    struct scep_endpoint_spec sp;
    struct scep_endpoint_keys keys;
    char chal[128], code[128], err[256], serial[48];
    X509 *c;

    /* one-time, bound to CN=kiosk1: parked, the challenge used up at once */
    spec_for(&sp, "otc", "one-time");
    snprintf(sp.approval, sizeof(sp.approval), "manual");
    add_endpoint(f, &sp, &keys);
    new_challenge(f, "otc", 600, "CN=kiosk1", "", chal, sizeof(chal));
    assert_int_equal(enroll(f, 0, "CN=kiosk1", chal, NULL, NULL), SCEP_OK); /* PENDING */
    assert_int_equal(test_cert_count(f), 0);
    assert_int_equal(enroll(f, 1, "CN=kiosk1", chal, NULL, NULL), SCEP_E_CHALLENGE_USED);
    assert_int_equal(scep_service_approve(f->svc, newest_pending(f), serial, sizeof(serial)),
                     SCEP_OK);
    c = stored_cert(f, serial);
    assert_string_equal(subject_of(c), "/CN=kiosk1");
    X509_free(c);

    /* account with fixed O/OU and validity: the approval issues the account's values */
    spec_for(&sp, "acct", "account");
    snprintf(sp.approval, sizeof(sp.approval), "manual");
    add_endpoint(f, &sp, &keys);
    assert_int_equal(scep_service_add_account(f->svc, "acct", "ops", "Acme", "Ops", "", 7, "",
                                              "test", code, sizeof(code), err, sizeof(err)),
                     SCEP_OK);
    assert_int_equal(enroll(f, 2, "CN=printer,O=Other", code, NULL, NULL), SCEP_OK); /* PENDING */
    assert_int_equal(scep_service_approve(f->svc, newest_pending(f), serial, sizeof(serial)),
                     SCEP_OK);
    c = stored_cert(f, serial);
    assert_string_equal(subject_of(c), "/O=Acme/OU=Ops/CN=printer");
    assert_string_equal(cert_owner(f, c), "account:ops");
    {
        struct tm tm;
        time_t na;
        ASN1_TIME_to_tm(X509_get0_notAfter(c), &tm);
        na = timegm(&tm);
        assert_true(na <= time(NULL) + 7 * 86400 + 60 && na > time(NULL) + 6 * 86400);
    }
    X509_free(c);

    /* Intune cannot wait for an operator */
    spec_for(&sp, "in", "intune");
    snprintf(sp.approval, sizeof(sp.approval), "manual");
    snprintf(sp.intune_tenant, sizeof(sp.intune_tenant), "contoso.onmicrosoft.com");
    snprintf(sp.intune_app_id, sizeof(sp.intune_app_id), "app");
    snprintf(sp.intune_app_key, sizeof(sp.intune_app_key), "key");
    assert_int_equal(scep_service_add_endpoint(f->svc, &sp, "test", &keys, err, sizeof(err)),
                     SCEP_E_INVALID_ARG);
    assert_non_null(strstr(err, "intune"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_authz_static_issues_and_audits, setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_authz_account_shapes_certificate, setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_authz_onetime_once, setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_authz_onetime_bound_identity, setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_authz_onetime_expired, setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_authz_onetime_race, setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_authz_onetime_cap, setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_authz_signed_token, setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_authz_sid_only_from_authorization, setup,
                                        fixture_teardown),
        cmocka_unit_test(test_authz_policy_apply_sid_uri_whitespace),
        cmocka_unit_test_setup_teardown(test_authz_profile_rules, setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_authz_duplicate_subject_race, setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_authz_approval_keeps_authorization, setup,
                                        fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
