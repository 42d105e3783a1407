/*
 * test_service.c - PKIOperation end to end through scep_service_*, with
 * requests built like real clients build them, and the negative cases of
 * issue 2 asserting the exact error: wrong challenge, CSR key != signer key,
 * bad CSR signature, trailing bytes, unknown message types, wrong recipient.
 * Every negative case also asserts that no certificate row was written.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "scepd/certrep.h"
#include "scepd/csr.h"
#include "scepd/issue.h"
#include "scepd/pki.h"
#include "scepd/pkimsg.h"

#include <openssl/cms.h>
#include <openssl/pkcs7.h>

/* A SUCCESS reply for t: verifies, decrypts, chains to the CA, subject and key match. */
static X509 *
expect_success(struct fixture *f, struct test_req *t, EVP_PKEY *key, const char *cn)
{
    struct scep_result r;
    struct scep_client_reply rep;
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    X509 *cert;
    char buf[256];

    test_run(f, t->der, t->der_len, &r);
    assert_int_equal(r.err, SCEP_OK);
    test_reply(f, &r, t, key, &rep);
    assert_int_equal(rep.status, 0);
    assert_non_null(rep.cert);
    assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(rep.cert), key), 1);
    X509_NAME_get_text_by_NID(X509_get_subject_name(rep.cert), NID_commonName, buf, sizeof(buf));
    assert_string_equal(buf, cn);
    X509_STORE_add_cert(store, f->ca);
    X509_STORE_CTX_init(ctx, store, rep.cert, NULL);
    assert_int_equal(X509_verify_cert(ctx), 1);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    cert = rep.cert;
    rep.cert = NULL;
    scep_client_reply_clear(&rep);
    scep_result_clear(&r);
    return cert;
}

/* SUCCESS whose certificate was issued by ca (after a rollover). */
static X509 *
expect_success_ca(struct fixture *f, struct test_req *t, EVP_PKEY *key, const char *cn, X509 *ca)
{
    struct scep_result r;
    struct scep_client_reply rep;
    char buf[256];
    X509 *cert;

    test_run(f, t->der, t->der_len, &r);
    assert_int_equal(r.err, SCEP_OK);
    test_reply(f, &r, t, key, &rep);
    assert_int_equal(rep.status, 0);
    assert_non_null(rep.cert);
    X509_NAME_get_text_by_NID(X509_get_subject_name(rep.cert), NID_commonName, buf, sizeof(buf));
    assert_string_equal(buf, cn);
    assert_int_equal(X509_check_issued(ca, rep.cert), X509_V_OK);
    assert_int_equal(X509_verify(rep.cert, X509_get0_pubkey(ca)), 1);
    cert = rep.cert;
    rep.cert = NULL;
    scep_client_reply_clear(&rep);
    scep_result_clear(&r);
    return cert;
}

/* A FAILURE CertRep with failInfo fi and failInfoText text; no certificate written. */
static void
expect_failure(struct fixture *f, struct test_req *t, EVP_PKEY *key, int fi, enum scep_err err)
{
    struct scep_result r;
    struct scep_client_reply rep;
    int before = test_cert_count(f);

    test_run(f, t->der, t->der_len, &r);
    assert_int_equal(r.err, err);
    test_reply(f, &r, t, key, &rep);
    assert_int_equal(rep.status, 2);
    assert_int_equal(rep.fail_info, fi);
    assert_string_equal(rep.fail_text, scep_strerror(err));
    assert_null(rep.cert);
    scep_client_reply_clear(&rep);
    scep_result_clear(&r);
    assert_int_equal(test_cert_count(f), before);
}

static void
test_service_pkcsreq_success(void **state)
{
    struct fixture *f = *state;
    struct test_req t;
    X509 *c;

    test_req_make(&t, f, test_key(0), test_key(0), "CN=device-1,O=Example", TEST_CHALLENGE);
    c = expect_success(f, &t, test_key(0), "device-1");
    assert_int_equal(test_cert_count(f), 1);
    /* serial: 16 octets, positive */
    assert_int_equal(ASN1_STRING_length(X509_get0_serialNumber(c)), 16);
    assert_true((ASN1_STRING_get0_data(X509_get0_serialNumber(c))[0] & 0x80) == 0);
    assert_int_equal(X509_check_ca(c), 0);
    X509_free(c);
    test_req_clear(&t);
}

static void
test_service_pkcsreq_ciphers(void **state)
{
    struct fixture *f = *state;
    static const char *ciphers[] = {"AES-128-CBC", "AES-192-CBC", "AES-256-CBC", "DES-EDE3-CBC",
                                    "DES-CBC"};
    size_t i;

    for (i = 0; i < sizeof(ciphers) / sizeof(ciphers[0]); i++) {
        struct test_req t;
        char dn[64];
        X509 *c;
        snprintf(dn, sizeof(dn), "CN=cipher-%zu", i);
        test_req_make(&t, f, test_key(1 + (int)i % 3), test_key(1 + (int)i % 3), dn,
                      TEST_CHALLENGE);
        snprintf(t.txid, sizeof(t.txid), "cipher-%zu", i);
        t.req.cipher = ciphers[i];
        t.req.oaep = i % 2; /* OAEP key transport as Windows sends it */
        test_req_build(&t);
        c = expect_success(f, &t, t.req.signer_key, dn + 3);
        X509_free(c);
        test_req_clear(&t);
    }
    assert_int_equal(test_cert_count(f), 5);
}

static void
test_service_pkcsreq_wrong_challenge(void **state)
{
    struct fixture *f = *state;
    struct test_req t;

    test_req_make(&t, f, test_key(0), test_key(0), "CN=x", "not-the-challenge");
    expect_failure(f, &t, test_key(0), 2, SCEP_E_CHALLENGE);
    test_req_clear(&t);
    test_req_make(&t, f, test_key(0), test_key(0), "CN=x", NULL);
    expect_failure(f, &t, test_key(0), 2, SCEP_E_CHALLENGE_MISSING);
    test_req_clear(&t);
}

static void
test_service_pkcsreq_pop_key_mismatch(void **state)
{
    struct fixture *f = *state;
    struct test_req t;

    /* CSR for key 1, CMS signed (and reply encrypted) with key 2. */
    test_req_make(&t, f, test_key(1), test_key(2), "CN=x", TEST_CHALLENGE);
    expect_failure(f, &t, test_key(2), 2, SCEP_E_POP);
    test_req_clear(&t);
}

static void
test_service_pkcsreq_bad_csr_signature(void **state)
{
    struct fixture *f = *state;
    struct test_req t;

    test_req_make(&t, f, test_key(0), test_key(0), "CN=x", TEST_CHALLENGE);
    t.csr[t.csr_len - 5] ^= 0x01; /* inside the signature BIT STRING */
    test_req_build(&t);
    expect_failure(f, &t, test_key(0), 1, SCEP_E_CSR_SIGNATURE);
    test_req_clear(&t);
}

static void
test_service_pkcsreq_trailing_bytes(void **state)
{
    struct fixture *f = *state;
    struct test_req t;
    struct scep_result r;
    unsigned char *d;

    test_req_make(&t, f, test_key(0), test_key(0), "CN=x", TEST_CHALLENGE);
    d = malloc(t.der_len + 1);
    memcpy(d, t.der, t.der_len);
    d[t.der_len] = 0;
    test_run(f, d, t.der_len + 1, &r);
    assert_int_equal(r.err, SCEP_E_DER_TRAILING);
    assert_int_equal(r.http_status, 400);
    scep_result_clear(&r);
    free(d);
    assert_int_equal(test_cert_count(f), 0);
    test_req_clear(&t);
}

static void
test_service_pkcsreq_trailing_bytes_in_csr(void **state)
{
    struct fixture *f = *state;
    struct test_req t;
    unsigned char *csr;

    test_req_make(&t, f, test_key(0), test_key(0), "CN=x", TEST_CHALLENGE);
    csr = malloc(t.csr_len + 2);
    memcpy(csr, t.csr, t.csr_len);
    csr[t.csr_len] = 0;
    csr[t.csr_len + 1] = 0;
    free(t.csr);
    t.csr = csr;
    t.csr_len += 2;
    t.req.inner = t.csr;
    t.req.inner_len = t.csr_len;
    test_req_build(&t);
    expect_failure(f, &t, test_key(0), 2, SCEP_E_CSR_PARSE);
    test_req_clear(&t);
}

/* Every messageType other than PKCSReq is refused before authorization (CVE-2026-30836). */
static void
test_service_msgtype_default_deny(void **state)
{
    struct fixture *f = *state;
    struct test_req t;
    char txt[8];
    int v;

    test_req_make(&t, f, test_key(0), test_key(0), "CN=x", TEST_CHALLENGE);
    for (v = 0; v <= 255; v++) {
        snprintf(txt, sizeof(txt), "%d", v);
        t.req.msgtype_text = txt;
        t.req.nonce_len = 0;
        test_req_build(&t);
        if (v == 19)
            continue;
        if (v == 20) /* CertPoll is implemented: an unknown transaction is badCertId */
            expect_failure(f, &t, test_key(0), 4, SCEP_E_UNKNOWN_TXID);
        else if (v == 17) /* RenewalReq is implemented: a self-signed signer is refused */
            expect_failure(f, &t, test_key(0), 2, SCEP_E_RENEWAL_SIGNER);
        else if (v == 21 || v == 22) /* GetCert/GetCRL: a CSR is not an IssuerAndSerialNumber */
            expect_failure(f, &t, test_key(0), 2, SCEP_E_BAD_IAS);
        else
            expect_failure(f, &t, test_key(0), 2, SCEP_E_MSGTYPE);
    }
    t.req.msgtype_text = "abc";
    test_req_build(&t);
    expect_failure(f, &t, test_key(0), 2, SCEP_E_MSGTYPE);
    t.req.msgtype_text = "";
    test_req_build(&t);
    expect_failure(f, &t, test_key(0), 2, SCEP_E_MSGTYPE);
    test_req_clear(&t);
}

static void
test_service_wrong_recipient(void **state)
{
    struct fixture *f = *state;
    struct test_req t;
    X509 *other = NULL;
    X509_NAME *n = NULL;

    assert_int_equal(scep_pki_parse_dn("CN=someone else", &n), SCEP_OK);
    assert_int_equal(scep_client_selfsigned(test_key(3), n, &other), SCEP_OK);
    test_req_make(&t, f, test_key(0), test_key(0), "CN=x", TEST_CHALLENGE);
    t.req.recipient = other;
    test_req_build(&t);
    expect_failure(f, &t, test_key(0), 1, SCEP_E_DECRYPT);
    test_req_clear(&t);
    X509_free(other);
    X509_NAME_free(n);
}

/* A retransmission gets the same certificate; another key with the txid gets badRequest. */
static void
test_service_retransmission_idempotent(void **state)
{
    struct fixture *f = *state;
    struct test_req t, u;
    X509 *a, *b;

    test_req_make(&t, f, test_key(0), test_key(0), "CN=dev", TEST_CHALLENGE);
    a = expect_success(f, &t, test_key(0), "dev");
    t.req.nonce_len = 0; /* a resend with a fresh nonce */
    test_req_build(&t);
    b = expect_success(f, &t, test_key(0), "dev");
    assert_int_equal(X509_cmp(a, b), 0);
    assert_int_equal(test_cert_count(f), 1);

    test_req_make(&u, f, test_key(1), test_key(1), "CN=dev", TEST_CHALLENGE);
    snprintf(u.txid, sizeof(u.txid), "%s", t.txid);
    test_req_build(&u);
    expect_failure(f, &u, test_key(1), 2, SCEP_E_TXID_KEY);

    /* same key, same txid, another CSR (subject changed) */
    test_req_clear(&u);
    test_req_make(&u, f, test_key(0), test_key(0), "CN=other", TEST_CHALLENGE);
    snprintf(u.txid, sizeof(u.txid), "%s", t.txid);
    test_req_build(&u);
    expect_failure(f, &u, test_key(0), 2, SCEP_E_TXID_KEY);
    assert_int_equal(test_cert_count(f), 1);
    X509_free(a);
    X509_free(b);
    test_req_clear(&t);
    test_req_clear(&u);
}

/* Old iOS sends 8-byte nonces and wants them back at that length (digest P13). */
static void
test_service_short_nonce_echoed(void **state)
{
    struct fixture *f = *state;
    struct test_req t;
    X509 *c;

    test_req_make(&t, f, test_key(0), test_key(0), "CN=ios", TEST_CHALLENGE);
    memcpy(t.req.nonce, "12345678", 8);
    t.req.nonce_len = 8;
    test_req_build(&t);
    c = expect_success(f, &t, test_key(0), "ios"); /* parse_reply compares at 8 bytes */
    X509_free(c);
    test_req_clear(&t);
}

/* Offset of the RSA-encrypted key (the 256-byte OCTET STRING) in an envelope. */
static size_t
rsa_block_offset(const unsigned char *d, size_t n)
{
    size_t i;

    for (i = 0; i + 4 + 256 <= n; i++)
        if (d[i] == 0x04 && d[i + 1] == 0x82 && d[i + 2] == 0x01 && d[i + 3] == 0x00)
            return i + 4;
    fail_msg("no RSA key block in the envelope");
    return 0;
}

/*
 * A bad RSA key block, a bad last CBC block (padding) and a bad middle block
 * give the client the same FAILURE: failInfo, text and size (matrix C12).
 */
static void
test_service_decrypt_failures_indistinguishable(void **state)
{
    struct fixture *f = *state;
    struct test_req t;
    struct scep_pkimsg *m = NULL;
    size_t sizes[3], variant;
    unsigned char *env;
    size_t envlen;

    test_req_make(&t, f, test_key(0), test_key(0), "CN=x", TEST_CHALLENGE);
    t.req.inner_len = t.csr_len; /* the CSR is ~600 bytes: many CBC blocks */
    assert_int_equal(scep_pkimsg_parse(t.der, t.der_len, &m), SCEP_OK);
    envlen = m->content_len;
    for (variant = 0; variant < 3; variant++) {
        struct scep_result r;
        struct scep_client_reply rep;
        env = malloc(envlen);
        memcpy(env, m->content, envlen);
        if (variant == 0)
            env[rsa_block_offset(env, envlen) + 17] ^= 0xff;
        else if (variant == 1)
            env[envlen - 1] ^= 0x5a; /* padding block */
        else
            env[envlen - 100] ^= 0x5a; /* a middle block: garbage CSR */
        t.req.envelope = env;
        t.req.envelope_len = envlen;
        t.req.nonce_len = 0;
        test_req_build(&t);
        test_run(f, t.der, t.der_len, &r);
        test_reply(f, &r, &t, test_key(0), &rep);
        assert_int_equal(rep.status, 2);
        sizes[variant] = r.body_len;
        if (variant < 2) {
            assert_int_equal(r.err, SCEP_E_DECRYPT);
            assert_int_equal(rep.fail_info, 1);
            assert_string_equal(rep.fail_text, scep_strerror(SCEP_E_DECRYPT));
        }
        scep_client_reply_clear(&rep);
        scep_result_clear(&r);
        free(env);
    }
    assert_int_equal(sizes[0], sizes[1]);
    assert_int_equal(test_cert_count(f), 0);
    scep_pkimsg_free(m);
    test_req_clear(&t);
}

static void
test_service_des_refused_when_configured(void **state)
{
    struct scep_init_opts o;
    struct fixture *f;
    struct test_req t;

    (void)state;
    memset(&o, 0, sizeof(o));
    o.refuse_des = 1;
    f = fixture_new(&o);
    test_req_make(&t, f, test_key(0), test_key(0), "CN=x", TEST_CHALLENGE);
    t.req.cipher = "DES-CBC";
    test_req_build(&t);
    expect_failure(f, &t, test_key(0), 0, SCEP_E_CIPHER_REFUSED);
    test_req_clear(&t);
    fixture_free(f);
}

static void
test_service_getcacaps_and_getcacert(void **state)
{
    struct fixture *f = *state;
    struct scep_result r;
    const unsigned char *p;
    PKCS7 *p7;
    STACK_OF(X509) * certs;

    scep_service_getcacaps(f->svc, f->ep, &r);
    assert_string_equal(r.content_type, "text/plain");
    assert_int_equal(
        r.body_len,
        strlen("AES\nDES3\nPOSTPKIOperation\nSCEPStandard\nRenewal\nSHA-1\nSHA-256\nSHA-512\n"));
    assert_memory_equal(
        r.body, "AES\nDES3\nPOSTPKIOperation\nSCEPStandard\nRenewal\nSHA-1\nSHA-256\nSHA-512\n",
        r.body_len);
    scep_result_clear(&r);
    scep_service_getcacert(f->svc, f->ep, &r);
    assert_string_equal(r.content_type, "application/x-x509-ca-ra-cert");
    p = r.body;
    p7 = d2i_PKCS7(NULL, &p, (long)r.body_len);
    assert_non_null(p7);
    assert_ptr_equal(p, r.body + r.body_len);
    certs = p7->d.sign->cert;
    assert_int_equal(sk_X509_num(certs), 2);
    assert_int_equal(X509_cmp(sk_X509_value(certs, 0), f->ra), 0); /* RA first */
    assert_int_equal(X509_cmp(sk_X509_value(certs, 1), f->ca), 0);
    assert_int_equal(sk_PKCS7_SIGNER_INFO_num(p7->d.sign->signer_info), 0);
    assert_null(p7->d.sign->contents->d.data); /* eContent absent (RFC 8894 §3.4) */
    PKCS7_free(p7);
    scep_result_clear(&r);
}

/* The RA certificate: keyUsage digitalSignature + keyEncipherment, issued by the CA. */
static void
test_service_ra_certificate(void **state)
{
    struct fixture *f = *state;
    uint32_t ku = X509_get_key_usage(f->ra);

    assert_true(ku & KU_DIGITAL_SIGNATURE);
    assert_true(ku & KU_KEY_ENCIPHERMENT);
    assert_int_equal(X509_check_issued(f->ca, f->ra), X509_V_OK);
    assert_int_equal(EVP_PKEY_get_base_id(X509_get0_pubkey(f->ra)), EVP_PKEY_RSA);
    assert_true(X509_get_key_usage(f->ca) & KU_DIGITAL_SIGNATURE);
}

/* The CertRep SignerInfo uses rsaEncryption (strongSwan rejects sha256WithRSA). */
static void
test_service_certrep_signature_algorithm(void **state)
{
    struct fixture *f = *state;
    struct test_req t;
    struct scep_result r;
    const unsigned char *p;
    CMS_ContentInfo *cms;
    X509_ALGOR *sig = NULL;

    test_req_make(&t, f, test_key(0), test_key(0), "CN=x", "wrong-challenge");
    test_run(f, t.der, t.der_len, &r);
    p = r.body;
    cms = d2i_CMS_ContentInfo(NULL, &p, (long)r.body_len);
    assert_non_null(cms);
    CMS_SignerInfo_get0_algs(sk_CMS_SignerInfo_value(CMS_get0_SignerInfos(cms), 0), NULL, NULL,
                             NULL, &sig);
    assert_int_equal(OBJ_obj2nid(sig->algorithm), NID_rsaEncryption);
    /* FAILURE carries no pkcsPKIEnvelope: an empty eContent (certmonger needs it present) */
    assert_non_null(CMS_get0_content(cms));
    assert_non_null(*CMS_get0_content(cms));
    assert_int_equal(ASN1_STRING_length(*CMS_get0_content(cms)), 0);
    CMS_ContentInfo_free(cms);
    scep_result_clear(&r);
    test_req_clear(&t);
}

/* An EC P-256 CA signs certificates; the RA stays RSA for key transport. */
static void
test_service_ec_ca(void **state)
{
    struct scep_init_opts o;
    struct fixture *f;
    struct test_req t;
    X509 *c;

    (void)state;
    memset(&o, 0, sizeof(o));
    o.ca_key_spec = "ec:p256";
    f = fixture_new(&o);
    assert_int_equal(EVP_PKEY_get_base_id(X509_get0_pubkey(f->ca)), EVP_PKEY_EC);
    test_req_make(&t, f, test_key(0), test_key(0), "CN=ecca", TEST_CHALLENGE);
    c = expect_success(f, &t, test_key(0), "ecca");
    assert_int_equal(X509_get_signature_nid(c), NID_ecdsa_with_SHA256);
    X509_free(c);
    test_req_clear(&t);
    fixture_free(f);
}

/* The single-certificate form: the CA alone, which decrypts and signs replies. */
static void
test_service_getcacert_single(void **state)
{
    struct scep_init_opts o;
    struct fixture *f;
    struct test_req t;
    struct scep_result r;
    struct scep_client_reply rep;
    const unsigned char *p;
    X509 *x;

    (void)state;
    memset(&o, 0, sizeof(o));
    o.getcacert_single = 1;
    f = fixture_new(&o);
    scep_service_getcacert(f->svc, f->ep, &r);
    assert_string_equal(r.content_type, "application/x-x509-ca-cert");
    p = r.body;
    x = d2i_X509(NULL, &p, (long)r.body_len);
    assert_non_null(x);
    assert_int_equal(X509_cmp(x, f->ca), 0);
    X509_free(x);
    scep_result_clear(&r);
    test_req_make(&t, f, test_key(0), test_key(0), "CN=single", TEST_CHALLENGE);
    t.req.recipient = f->ca;
    test_req_build(&t);
    test_run(f, t.der, t.der_len, &r);
    assert_int_equal(r.err, SCEP_OK);
    assert_int_equal(scep_client_parse_reply(r.body, r.body_len, f->ca, &t.req, test_key(0), &rep),
                     SCEP_OK);
    assert_int_equal(rep.status, 0);
    assert_non_null(rep.cert);
    scep_client_reply_clear(&rep);
    scep_result_clear(&r);
    test_req_clear(&t);
    fixture_free(f);
}

/* An imported CA (certificate + key files) issues; a mismatched pair is refused. */
static void
test_service_imported_ca(void **state)
{
    char base[] = "/tmp/scepd-import-XXXXXX", cf[600], kf[600], other[600], dir[600], err[512];
    char chal[300];
    struct scep_init_opts o;
    EVP_PKEY *k = NULL, *k2 = NULL;
    X509_NAME *n = NULL;
    X509 *ca = NULL;
    struct fixture *f;
    struct test_req t;
    X509 *c;

    (void)state;
    assert_non_null(mkdtemp(base));
    snprintf(cf, sizeof(cf), "%s/ca.pem", base);
    snprintf(kf, sizeof(kf), "%s/ca.key", base);
    snprintf(other, sizeof(other), "%s/other.key", base);
    assert_int_equal(scep_pki_genkey("rsa:2048", &k), SCEP_OK);
    assert_int_equal(scep_pki_genkey("ec:p256", &k2), SCEP_OK);
    assert_int_equal(scep_pki_parse_dn("CN=Imported Root,O=Example", &n), SCEP_OK);
    assert_int_equal(scep_pki_make_root(k, n, 365, &ca), SCEP_OK);
    assert_int_equal(scep_pki_write_cert(cf, ca), SCEP_OK);
    assert_int_equal(scep_pki_write_key(kf, k), SCEP_OK);
    assert_int_equal(scep_pki_write_key(other, k2), SCEP_OK);

    memset(&o, 0, sizeof(o));
    snprintf(dir, sizeof(dir), "%s/bad", base);
    o.datadir = dir;
    o.ca_cert_file = cf;
    o.ca_key_file = other;
    assert_int_equal(scep_setup_init(&o, chal, sizeof(chal), err, sizeof(err)), SCEP_E_KEY_FILE);
    assert_non_null(strstr(err, "does not match"));

    memset(&o, 0, sizeof(o));
    o.ca_cert_file = cf;
    o.ca_key_file = kf;
    f = fixture_new(&o);
    assert_int_equal(X509_cmp(f->ca, ca), 0);
    test_req_make(&t, f, test_key(0), test_key(0), "CN=imp", TEST_CHALLENGE);
    c = expect_success(f, &t, test_key(0), "imp");
    X509_free(c);
    test_req_clear(&t);
    fixture_free(f);
    X509_free(ca);
    X509_NAME_free(n);
    EVP_PKEY_free(k);
    EVP_PKEY_free(k2);
    snprintf(dir, sizeof(dir), "rm -rf '%s'", base);
    assert_int_equal(system(dir), 0);
}

/* A PKIOperation answered PENDING (no envelope, no certificate). */
static void
expect_pending(struct fixture *f, struct test_req *t, EVP_PKEY *key)
{
    struct scep_result r;
    struct scep_client_reply rep;

    test_run(f, t->der, t->der_len, &r);
    assert_int_equal(r.err, SCEP_OK);
    test_reply(f, &r, t, key, &rep);
    assert_int_equal(rep.status, 3);
    assert_null(rep.cert);
    scep_client_reply_clear(&rep);
    scep_result_clear(&r);
}

static int
first_pending(void *arg, const struct scep_request_row *row)
{
    *(int64_t *)arg = row->id;
    return 0;
}

static int64_t
pending_id_or_zero(struct fixture *f)
{
    enum scep_req_status st = SCEP_REQ_PENDING;
    int64_t id = 0;

    assert_int_equal(scep_store_each_request(scep_service_store(f->svc), &st, first_pending, &id),
                     SCEP_OK);
    return id;
}

static int64_t
pending_id(struct fixture *f)
{
    enum scep_req_status st = SCEP_REQ_PENDING;
    int64_t id = 0;

    assert_int_equal(scep_store_each_request(scep_service_store(f->svc), &st, first_pending, &id),
                     SCEP_OK);
    assert_true(id > 0);
    return id;
}

/* Manual approval: PENDING, resend and CertPoll stay PENDING, approve -> SUCCESS. */
static void
test_service_pending_approve_then_poll(void **state)
{
    struct scep_init_opts o;
    struct fixture *f;
    struct test_req t, poll, other;
    char serial[48];
    X509 *c;

    (void)state;
    memset(&o, 0, sizeof(o));
    o.approval_manual = 1;
    f = fixture_new(&o);
    test_req_make(&t, f, test_key(0), test_key(0), "CN=waiting", TEST_CHALLENGE);
    expect_pending(f, &t, test_key(0));
    assert_int_equal(test_cert_count(f), 0);
    /* micromdm's scepclient resends the byte-identical PKCSReq */
    expect_pending(f, &t, test_key(0));
    /* CertPoll with the same transactionID and key */
    test_req_make(&poll, f, test_key(0), test_key(0), "CN=waiting", NULL);
    snprintf(poll.txid, sizeof(poll.txid), "%s", t.txid);
    poll.req.msgtype = 20;
    test_req_build(&poll);
    expect_pending(f, &poll, test_key(0));
    /* a CertPoll for this transaction signed by another key: badCertId */
    test_req_make(&other, f, test_key(1), test_key(1), "CN=waiting", NULL);
    snprintf(other.txid, sizeof(other.txid), "%s", t.txid);
    other.req.msgtype = 20;
    test_req_build(&other);
    expect_failure(f, &other, test_key(1), 4, SCEP_E_UNKNOWN_TXID);

    {
        /* the stored request keeps no challenge (only a keyed hash of the whole CSR) */
        struct scep_request_row row;
        unsigned char *csr = NULL;
        size_t csrlen = 0, n = 0;
        X509_REQ *req = NULL;
        char chal[64];
        assert_int_equal(
            scep_store_get_request(scep_service_store(f->svc), pending_id(f), &row, &csr, &csrlen),
            SCEP_OK);
        assert_null(memmem(csr, csrlen, TEST_CHALLENGE, strlen(TEST_CHALLENGE)));
        assert_int_equal(scep_csr_parse(csr, csrlen, &req), SCEP_OK);
        assert_int_equal(scep_csr_challenge(req, chal, sizeof(chal), &n), SCEP_E_NO_ENTRY);
        X509_REQ_free(req);
        free(csr);
    }
    assert_int_equal(scep_service_approve(f->svc, pending_id(f), serial, sizeof(serial)), SCEP_OK);
    assert_int_equal(strlen(serial), 32);
    assert_int_equal(scep_service_approve(f->svc, pending_id_or_zero(f), serial, sizeof(serial)),
                     SCEP_E_NO_ENTRY);
    poll.req.nonce_len = 0;
    test_req_build(&poll);
    c = expect_success(f, &poll, test_key(0), "waiting");
    X509_free(c);
    assert_int_equal(test_cert_count(f), 1);
    /* the resent PKCSReq now gets the same certificate */
    t.req.nonce_len = 0;
    test_req_build(&t);
    c = expect_success(f, &t, test_key(0), "waiting");
    X509_free(c);
    assert_int_equal(test_cert_count(f), 1);
    test_req_clear(&t);
    test_req_clear(&poll);
    test_req_clear(&other);
    fixture_free(f);
}

/* Rejected by the operator: every later poll is FAILURE badRequest; nothing issued. */
static void
test_service_pending_reject(void **state)
{
    struct scep_init_opts o;
    struct fixture *f;
    struct test_req t;
    char serial[48];
    int64_t id;

    (void)state;
    memset(&o, 0, sizeof(o));
    o.approval_manual = 1;
    f = fixture_new(&o);
    test_req_make(&t, f, test_key(0), test_key(0), "CN=refused", TEST_CHALLENGE);
    expect_pending(f, &t, test_key(0));
    id = pending_id(f);
    assert_int_equal(scep_service_reject(f->svc, id, "not one of ours"), SCEP_OK);
    assert_int_equal(scep_service_reject(f->svc, id, "again"), SCEP_E_NOT_PENDING);
    assert_int_equal(scep_service_approve(f->svc, id, serial, sizeof(serial)), SCEP_E_NOT_PENDING);
    t.req.msgtype = 20;
    test_req_build(&t);
    expect_failure(f, &t, test_key(0), 2, SCEP_E_REJECTED);
    assert_int_equal(test_cert_count(f), 0);
    assert_int_equal(scep_service_reject(f->svc, 999999, NULL), SCEP_E_NO_ENTRY);
    test_req_clear(&t);
    fixture_free(f);
}

/* Finish t (its messageData already in t->csr): signed by signer/key, messageType type. */
static void
signed_req(struct test_req *t, struct fixture *f, X509 *signer, EVP_PKEY *key, int type,
           const char *txid)
{
    X509_up_ref(signer);
    t->signer = signer;
    snprintf(t->txid, sizeof(t->txid), "%s", txid);
    t->req.msgtype = type;
    t->req.txid = t->txid;
    t->req.signer_cert = signer;
    t->req.signer_key = key;
    t->req.inner = t->csr;
    t->req.inner_len = t->csr_len;
    t->req.recipient = f->ra;
    test_req_build(t);
}

/*
 * A renewal request: CSR for new_key (dn), signed with the old certificate
 * and its key, messageType msgtype (17 RenewalReq or 19 PKCSReq).
 */
static void
renewal_req(struct test_req *t, struct fixture *f, X509 *old, EVP_PKEY *old_key, EVP_PKEY *new_key,
            const char *dn, int msgtype, const char *txid)
{
    X509_REQ *csr = NULL;
    unsigned char *der = NULL;
    int n;

    memset(t, 0, sizeof(*t));
    assert_int_equal(scep_client_make_csr(new_key, dn, NULL, NULL, &csr), SCEP_OK);
    n = i2d_X509_REQ(csr, &der);
    t->csr = malloc((size_t)n);
    memcpy(t->csr, der, (size_t)n);
    t->csr_len = (size_t)n;
    OPENSSL_free(der);
    X509_REQ_free(csr);
    signed_req(t, f, old, old_key, msgtype, txid);
}

/* The reply to a renewal is encrypted to the old certificate: decrypt with the old key. */
static X509 *
expect_renewed(struct fixture *f, struct test_req *t, EVP_PKEY *new_key, const char *cn)
{
    struct scep_result r;
    struct scep_client_reply rep;
    char buf[128];
    X509 *c;

    test_run(f, t->der, t->der_len, &r);
    assert_int_equal(r.err, SCEP_OK);
    assert_int_equal(scep_client_parse_reply(r.body, r.body_len, f->ra, &t->req, new_key, &rep),
                     SCEP_OK);
    assert_int_equal(rep.status, 0);
    assert_non_null(rep.cert);
    X509_NAME_get_text_by_NID(X509_get_subject_name(rep.cert), NID_commonName, buf, sizeof(buf));
    assert_string_equal(buf, cn);
    assert_int_equal(X509_check_issued(f->ca, rep.cert), X509_V_OK);
    c = rep.cert;
    rep.cert = NULL;
    scep_client_reply_clear(&rep);
    scep_result_clear(&r);
    return c;
}

static void
test_service_renewal(void **state)
{
    struct fixture *f = *state;
    struct test_req t, u;
    X509 *a, *b, *c;

    test_req_make(&t, f, test_key(0), test_key(0), "CN=laptop-7,O=Example", TEST_CHALLENGE);
    a = expect_success(f, &t, test_key(0), "laptop-7");
    /* RenewalReq with a new key, signed by the old certificate, no challenge */
    renewal_req(&u, f, a, test_key(0), test_key(1), "CN=laptop-7,O=Example", 17, "renew-1");
    b = expect_renewed(f, &u, test_key(1), "laptop-7");
    assert_int_not_equal(ASN1_INTEGER_cmp(X509_get0_serialNumber(a), X509_get0_serialNumber(b)), 0);
    test_req_clear(&u);
    /* the same as PKCSReq (macOS, certmonger), key reused */
    renewal_req(&u, f, b, test_key(1), test_key(1), "CN=laptop-7,O=Example", 19, "renew-2");
    c = expect_renewed(f, &u, test_key(1), "laptop-7");
    test_req_clear(&u);
    /* the transactionID of the enrollment it renews (certmonger, sscep) */
    renewal_req(&u, f, c, test_key(1), test_key(2), "CN=laptop-7,O=Example", 19, "renew-2");
    X509_free(c);
    c = expect_renewed(f, &u, test_key(2), "laptop-7");
    test_req_clear(&u);
    /* but not someone else's transactionID */
    renewal_req(&u, f, c, test_key(2), test_key(3), "CN=laptop-7,O=Example", 19, t.txid);
    expect_failure(f, &u, test_key(2), 2, SCEP_E_TXID_KEY);
    test_req_clear(&u);
    /* another identity is refused */
    renewal_req(&u, f, c, test_key(2), test_key(3), "CN=server-1,O=Example", 17, "renew-3");
    expect_failure(f, &u, test_key(2), 2, SCEP_E_RENEWAL_IDENTITY);
    test_req_clear(&u);
    assert_int_equal(test_cert_count(f), 4);
    X509_free(a);
    X509_free(b);
    X509_free(c);
    test_req_clear(&t);
}

static void
test_service_renewal_superseded_then_refused(void **state)
{
    struct scep_init_opts o;
    struct fixture *f;
    struct test_req t, u;
    X509 *a, *b;

    (void)state;
    memset(&o, 0, sizeof(o));
    o.revoke_on_renewal = 1;
    f = fixture_new(&o);
    test_req_make(&t, f, test_key(0), test_key(0), "CN=phone", TEST_CHALLENGE);
    a = expect_success(f, &t, test_key(0), "phone");
    renewal_req(&u, f, a, test_key(0), test_key(1), "CN=phone", 17, "sup-1");
    b = expect_renewed(f, &u, test_key(1), "phone");
    test_req_clear(&u);
    /* the old certificate is revoked now: it cannot renew again */
    renewal_req(&u, f, a, test_key(0), test_key(2), "CN=phone", 17, "sup-2");
    expect_failure(f, &u, test_key(0), 2, SCEP_E_RENEWAL_REVOKED);
    test_req_clear(&u);
    X509_free(a);
    X509_free(b);
    test_req_clear(&t);
    fixture_free(f);
}

static void
test_service_renewal_window(void **state)
{
    struct scep_init_opts o;
    struct fixture *f;
    struct test_req t, u;
    X509 *a;

    (void)state;
    memset(&o, 0, sizeof(o));
    o.renewal_window_days = 30; /* a 365-day certificate is 335 days early */
    f = fixture_new(&o);
    test_req_make(&t, f, test_key(0), test_key(0), "CN=early", TEST_CHALLENGE);
    a = expect_success(f, &t, test_key(0), "early");
    renewal_req(&u, f, a, test_key(0), test_key(1), "CN=early", 17, "early-1");
    expect_failure(f, &u, test_key(0), 2, SCEP_E_RENEWAL_EARLY);
    test_req_clear(&u);
    X509_free(a);
    test_req_clear(&t);
    fixture_free(f);
}

/* A certificate from another CA (micromdm/scep #117) cannot renew. */
static void
test_service_renewal_foreign_signer(void **state)
{
    struct fixture *f = *state;
    struct test_req u;
    X509_NAME *n = NULL;
    X509 *foreign_ca = NULL, *foreign = NULL;
    X509_REQ *csr = NULL;
    struct scep_issue_opts io;
    char serial[SCEP_SERIAL_HEX];

    assert_int_equal(scep_pki_parse_dn("CN=Other CA", &n), SCEP_OK);
    assert_int_equal(scep_pki_make_root(test_key(3), n, 30, &foreign_ca), SCEP_OK);
    assert_int_equal(scep_client_make_csr(test_key(0), "CN=intruder", NULL, NULL, &csr), SCEP_OK);
    memset(&io, 0, sizeof(io));
    io.ca_cert = foreign_ca;
    io.ca_key = test_key(3);
    io.validity_days = 30;
    assert_int_equal(scep_issue_cert(csr, &io, &foreign, serial), SCEP_OK);
    {
        /* the issued object has no decoded key (issue.h): use it as a client would, parsed */
        unsigned char *der = NULL;
        const unsigned char *p;
        int len = i2d_X509(foreign, &der);
        X509_free(foreign);
        p = der;
        foreign = d2i_X509(NULL, &p, len);
        OPENSSL_free(der);
        assert_non_null(X509_get0_pubkey(foreign));
    }
    renewal_req(&u, f, foreign, test_key(0), test_key(1), "CN=intruder", 17, "foreign-1");
    expect_failure(f, &u, test_key(0), 2, SCEP_E_RENEWAL_SIGNER);
    test_req_clear(&u);
    /* as PKCSReq it is an initial request: its key is not the CSR's */
    renewal_req(&u, f, foreign, test_key(0), test_key(1), "CN=intruder", 19, "foreign-2");
    expect_failure(f, &u, test_key(0), 2, SCEP_E_POP);
    test_req_clear(&u);
    assert_int_equal(test_cert_count(f), 0);
    X509_free(foreign);
    X509_free(foreign_ca);
    X509_REQ_free(csr);
    X509_NAME_free(n);
}

/* An IssuerAndSerialNumber request (GetCert 21 / GetCRL 22) signed with owner/key. */
static void
ias_req(struct test_req *t, struct fixture *f, X509 *owner, EVP_PKEY *key, X509 *about, int type,
        const char *txid)
{
    PKCS7_ISSUER_AND_SERIAL *ias = PKCS7_ISSUER_AND_SERIAL_new();
    unsigned char *der = NULL;
    int n;

    memset(t, 0, sizeof(*t));
    assert_non_null(ias);
    X509_NAME_free(ias->issuer);
    ias->issuer = X509_NAME_dup(X509_get_issuer_name(about));
    ASN1_INTEGER_free(ias->serial);
    ias->serial = ASN1_INTEGER_dup(X509_get0_serialNumber(about));
    n = i2d_PKCS7_ISSUER_AND_SERIAL(ias, &der);
    assert_true(n > 0);
    t->csr = malloc((size_t)n);
    memcpy(t->csr, der, (size_t)n);
    t->csr_len = (size_t)n;
    OPENSSL_free(der);
    PKCS7_ISSUER_AND_SERIAL_free(ias);
    signed_req(t, f, owner, key, type, txid);
}

/* GetCert to the owner; GetCRL lists a revoked serial and verifies with the CA key. */
static void
test_service_getcert_getcrl_revoke(void **state)
{
    struct fixture *f = *state;
    struct test_req t, u, v;
    struct scep_result r;
    struct scep_client_reply rep;
    X509 *a, *b;
    char serial[48];
    unsigned char *der = NULL;
    size_t len = 0;
    const unsigned char *p;
    X509_CRL *crl;
    X509_REVOKED *rev = NULL;

    test_req_make(&t, f, test_key(0), test_key(0), "CN=owner", TEST_CHALLENGE);
    a = expect_success(f, &t, test_key(0), "owner");
    test_req_make(&u, f, test_key(1), test_key(1), "CN=other", TEST_CHALLENGE);
    b = expect_success(f, &u, test_key(1), "other");
    /* GetCert by its owner: the certificate comes back */
    ias_req(&v, f, a, test_key(0), a, 21, "getcert-1");
    test_run(f, v.der, v.der_len, &r);
    test_reply(f, &r, &v, test_key(0), &rep);
    assert_int_equal(rep.status, 0);
    assert_int_equal(X509_cmp(rep.cert, a), 0);
    assert_int_equal(sk_X509_num(rep.certs), 1); /* single form by default */
    scep_client_reply_clear(&rep);
    scep_result_clear(&r);
    test_req_clear(&v);
    /* someone else's certificate: badCertId */
    ias_req(&v, f, a, test_key(0), b, 21, "getcert-2");
    expect_failure(f, &v, test_key(0), 4, SCEP_E_UNKNOWN_CERT);
    test_req_clear(&v);

    /* revoke b; the CRL is remade and lists it */
    scep_serial_hex(b, serial, sizeof(serial));
    assert_int_equal(scep_service_revoke(f->svc, serial, 1), SCEP_OK);
    assert_int_equal(scep_service_revoke(f->svc, serial, 1), SCEP_E_CONFLICT);
    assert_int_equal(scep_service_revoke(f->svc, "00ff", 1), SCEP_E_NO_ENTRY);
    ias_req(&v, f, a, test_key(0), a, 22, "getcrl-1");
    test_run(f, v.der, v.der_len, &r);
    test_reply(f, &r, &v, test_key(0), &rep);
    assert_int_equal(rep.status, 0);
    assert_non_null(rep.crl);
    assert_int_equal(X509_CRL_verify(rep.crl, X509_get0_pubkey(f->ca)), 1);
    assert_int_equal(X509_CRL_get0_by_serial(rep.crl, &rev, X509_get0_serialNumber(b)), 1);
    assert_int_equal(X509_CRL_get0_by_serial(rep.crl, &rev, X509_get0_serialNumber(a)), 0);
    scep_client_reply_clear(&rep);
    scep_result_clear(&r);
    test_req_clear(&v);
    /* the same CRL as the HTTP route serves */
    assert_int_equal(scep_service_crl(f->svc, f->ep->ca_id, &der, &len), SCEP_OK);
    p = der;
    crl = d2i_X509_CRL(NULL, &p, (long)len);
    assert_non_null(crl);
    assert_int_equal(X509_CRL_get0_by_serial(crl, &rev, X509_get0_serialNumber(b)), 1);
    X509_CRL_free(crl);
    free(der);
    /* a revoked certificate is refused for renewal */
    renewal_req(&v, f, b, test_key(1), test_key(2), "CN=other", 17, "renew-revoked");
    expect_failure(f, &v, test_key(1), 2, SCEP_E_RENEWAL_REVOKED);
    test_req_clear(&v);
    X509_free(a);
    X509_free(b);
    test_req_clear(&t);
    test_req_clear(&u);
}

/* With a public URL, issued certificates name the CRL distribution point. */
static void
test_service_cdp_with_public_url(void **state)
{
    struct scep_init_opts o;
    struct fixture *f;
    struct test_req t;
    X509 *c;
    STACK_OF(DIST_POINT) * cdp;
    GENERAL_NAME *gn;

    (void)state;
    memset(&o, 0, sizeof(o));
    o.public_url = "http://scep.example.com/";
    f = fixture_new(&o);
    test_req_make(&t, f, test_key(0), test_key(0), "CN=cdp", TEST_CHALLENGE);
    c = expect_success(f, &t, test_key(0), "cdp");
    cdp = X509_get_ext_d2i(c, NID_crl_distribution_points, NULL, NULL);
    assert_non_null(cdp);
    gn = sk_GENERAL_NAME_value(sk_DIST_POINT_value(cdp, 0)->distpoint->name.fullname, 0);
    assert_int_equal(gn->type, GEN_URI);
    assert_string_equal((const char *)ASN1_STRING_get0_data(gn->d.uniformResourceIdentifier),
                        "http://scep.example.com/crl/default.crl");
    CRL_DIST_POINTS_free(cdp);
    X509_free(c);
    test_req_clear(&t);
    fixture_free(f);
}

/* EC client keys: the CSR and signer are ECDSA; the reply is encrypted with ECDH (KARI). */
static void
test_service_ec_client_keys(void **state)
{
    struct fixture *f = *state;
    static const char *specs[] = {"ec:p256", "ec:p384"};
    size_t i;

    for (i = 0; i < 2; i++) {
        EVP_PKEY *k = NULL;
        struct test_req t;
        struct scep_result r;
        struct scep_client_reply rep;
        const unsigned char *p;
        CMS_ContentInfo *cms, *env;
        BIO *content = BIO_new(BIO_s_mem());
        BUF_MEM *bm;
        STACK_OF(CMS_RecipientInfo) * ris;
        X509 *c;

        assert_int_equal(scep_pki_genkey(specs[i], &k), SCEP_OK);
        test_req_make(&t, f, k, k, i == 0 ? "CN=ec-256" : "CN=ec-384", TEST_CHALLENGE);
        t.req.cipher = i == 0 ? "AES-128-CBC" : "AES-256-CBC";
        test_req_build(&t);
        c = expect_success(f, &t, k, i == 0 ? "ec-256" : "ec-384");
        assert_int_equal(EVP_PKEY_get_base_id(X509_get0_pubkey(c)), EVP_PKEY_EC);
        assert_true(X509_get_key_usage(c) & KU_KEY_AGREEMENT);
        assert_false(X509_get_key_usage(c) & KU_KEY_ENCIPHERMENT);
        X509_free(c);
        /* the reply's envelope is key agreement, not key transport */
        t.req.nonce_len = 0;
        test_req_build(&t);
        test_run(f, t.der, t.der_len, &r);
        p = r.body;
        cms = d2i_CMS_ContentInfo(NULL, &p, (long)r.body_len);
        assert_non_null(cms);
        assert_int_equal(
            CMS_verify(cms, NULL, NULL, NULL, content, CMS_NO_SIGNER_CERT_VERIFY | CMS_BINARY), 1);
        BIO_get_mem_ptr(content, &bm);
        p = (const unsigned char *)bm->data;
        env = d2i_CMS_ContentInfo(NULL, &p, (long)bm->length);
        assert_non_null(env);
        ris = CMS_get0_RecipientInfos(env);
        assert_int_equal(CMS_RecipientInfo_type(sk_CMS_RecipientInfo_value(ris, 0)),
                         CMS_RECIPINFO_AGREE);
        test_reply(f, &r, &t, k, &rep);
        assert_non_null(rep.cert);
        scep_client_reply_clear(&rep);
        CMS_ContentInfo_free(env);
        CMS_ContentInfo_free(cms);
        BIO_free(content);
        scep_result_clear(&r);
        test_req_clear(&t);
        EVP_PKEY_free(k);
    }
}

/* DER of SEQUENCE { BMPString name, BMPString value } for ASCII name/value. */
static size_t
nvp_der(const char *name, const char *value, unsigned char *out)
{
    size_t o = 2, i, nl = strlen(name), vl = strlen(value);

    out[o++] = 0x1e;
    out[o++] = (unsigned char)(2 * nl);
    for (i = 0; i < nl; i++) {
        out[o++] = 0;
        out[o++] = (unsigned char)name[i];
    }
    out[o++] = 0x1e;
    out[o++] = (unsigned char)(2 * vl);
    for (i = 0; i < vl; i++) {
        out[o++] = 0;
        out[o++] = (unsigned char)value[i];
    }
    out[0] = 0x30;
    out[1] = (unsigned char)(o - 2);
    return o;
}

/* A PKCSReq whose CSR carries Windows' ValidityPeriod name-value pairs. */
static X509 *
enroll_with_validity(struct fixture *f, const char *period, const char *units)
{
    int nid = OBJ_txt2nid("1.3.6.1.4.1.311.13.2.1");
    X509_REQ *csr = NULL;
    X509_ATTRIBUTE *a;
    unsigned char v1[128], v2[128], *der = NULL;
    size_t l1 = nvp_der("ValidityPeriod", period, v1),
           l2 = nvp_der("ValidityPeriodUnits", units, v2);
    struct test_req t;
    X509 *c;
    int n;

    assert_int_equal(scep_client_make_csr(test_key(0), "CN=win", TEST_CHALLENGE, NULL, &csr),
                     SCEP_OK);
    assert_true(X509_REQ_add1_attr_by_NID(csr, nid, V_ASN1_SEQUENCE, v1, (int)l1));
    a = X509_REQ_get_attr(csr, X509_REQ_get_attr_by_NID(csr, nid, -1));
    assert_true(X509_ATTRIBUTE_set1_data(a, V_ASN1_SEQUENCE, v2, (int)l2));
    assert_true(X509_REQ_sign(csr, test_key(0), EVP_sha256()) > 0);
    test_req_make(&t, f, test_key(0), test_key(0), "CN=win", TEST_CHALLENGE);
    n = i2d_X509_REQ(csr, &der);
    free(t.csr);
    t.csr = malloc((size_t)n);
    memcpy(t.csr, der, (size_t)n);
    t.csr_len = (size_t)n;
    t.req.inner = t.csr;
    t.req.inner_len = t.csr_len;
    snprintf(t.txid, sizeof(t.txid), "win-%s-%s", period, units);
    test_req_build(&t);
    c = expect_success(f, &t, test_key(0), "win");
    OPENSSL_free(der);
    X509_REQ_free(csr);
    test_req_clear(&t);
    return c;
}

static long
validity_days(X509 *c)
{
    int days = 0, secs = 0;

    assert_int_equal(ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(c), X509_get0_notAfter(c)),
                     1);
    return days - (secs < 0 ? 1 : 0);
}

/* Windows ValidPeriod: a shorter validity is honoured, a longer one clamped to the endpoint's. */
static void
test_service_windows_validity_period(void **state)
{
    struct fixture *f = *state;
    X509 *c;

    c = enroll_with_validity(f, "Days", "30");
    /* notBefore is backdated by an hour: 30 days + 1 hour */
    assert_int_equal(validity_days(c), 30);
    X509_free(c);
    c = enroll_with_validity(f, "Weeks", "2");
    assert_int_equal(validity_days(c), 14);
    X509_free(c);
    c = enroll_with_validity(f, "Years", "5");
    assert_int_equal(validity_days(c), 365);
    X509_free(c);
}

/* Windows' self-signed signer carries a critical AuthorityKeyIdentifier (step-ca PR #1994). */
static void
test_service_windows_signer_critical_aki(void **state)
{
    struct fixture *f = *state;
    struct test_req t;
    X509_EXTENSION *ext;
    X509V3_CTX ctx;
    X509 *c;

    test_req_make(&t, f, test_key(0), test_key(0), "CN=windows-pc", TEST_CHALLENGE);
    X509V3_set_ctx(&ctx, t.signer, t.signer, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_key_identifier, "hash");
    assert_non_null(ext);
    assert_true(X509_add_ext(t.signer, ext, -1));
    X509_EXTENSION_free(ext);
    ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_authority_key_identifier, "critical,keyid:always");
    assert_non_null(ext);
    assert_true(X509_add_ext(t.signer, ext, -1));
    X509_EXTENSION_free(ext);
    assert_true(X509_sign(t.signer, test_key(0), EVP_sha256()) > 0);
    t.req.oaep = 1; /* and OAEP key transport, as Windows sends it */
    test_req_build(&t);
    c = expect_success(f, &t, test_key(0), "windows-pc");
    X509_free(c);
    test_req_clear(&t);
}

/* RFC 8894 §4.7: rollover, GetNextCACert signed by the current CA, switch, old certificates renew.
 */
static void
test_service_ca_rollover(void **state)
{
    struct fixture *f = *state;
    struct scep_result r;
    struct test_req t, u;
    char err[512];
    const unsigned char *p;
    CMS_ContentInfo *cms;
    STACK_OF(X509) *trust = sk_X509_new_null();
    BIO *inner = BIO_new(BIO_s_mem());
    BUF_MEM *bm;
    PKCS7 *p7;
    X509 *next_ra, *next_ca, *old_cert, *new_cert, *renewed;

    /* nothing prepared yet */
    scep_service_getnextcacert(f->svc, f->ep, &r);
    assert_int_equal(r.http_status, 404);
    scep_result_clear(&r);
    test_req_make(&t, f, test_key(0), test_key(0), "CN=before", TEST_CHALLENGE);
    old_cert = expect_success(f, &t, test_key(0), "before");

    assert_int_equal(scep_service_rollover(f->svc, NULL, 0, err, sizeof(err)), SCEP_OK);
    assert_int_equal(scep_service_rollover(f->svc, NULL, 0, err, sizeof(err)), SCEP_E_CONFLICT);
    f->ep = scep_service_endpoint(f->svc, NULL, 0);
    scep_service_getcacaps(f->svc, f->ep, &r);
    assert_non_null(memmem(r.body, r.body_len, "GetNextCACert\n", 14));
    scep_result_clear(&r);
    scep_service_getnextcacert(f->svc, f->ep, &r);
    assert_int_equal(r.http_status, 200);
    assert_string_equal(r.content_type, "application/x-x509-next-ca-cert");
    /* SignedData signed by the current CA, content a certs-only bundle: RA, then CA */
    p = r.body;
    cms = d2i_CMS_ContentInfo(NULL, &p, (long)r.body_len);
    assert_non_null(cms);
    sk_X509_push(trust, f->ca);
    assert_int_equal(CMS_verify(cms, trust, NULL, NULL, inner,
                                CMS_NO_SIGNER_CERT_VERIFY | CMS_BINARY | CMS_NOINTERN),
                     1);
    BIO_get_mem_ptr(inner, &bm);
    p = (const unsigned char *)bm->data;
    p7 = d2i_PKCS7(NULL, &p, (long)bm->length);
    assert_non_null(p7);
    assert_int_equal(sk_X509_num(p7->d.sign->cert), 2);
    next_ra = X509_dup(sk_X509_value(p7->d.sign->cert, 0));
    next_ca = X509_dup(sk_X509_value(p7->d.sign->cert, 1));
    assert_int_equal(X509_check_issued(f->ca, next_ca), X509_V_OK); /* cross-signed */
    assert_int_equal(X509_check_issued(next_ca, next_ra), X509_V_OK);
    assert_int_equal(X509_check_ca(next_ca), 1);
    PKCS7_free(p7);
    CMS_ContentInfo_free(cms);
    scep_result_clear(&r);

    /* still issuing from the current CA until the switch */
    test_req_make(&u, f, test_key(1), test_key(1), "CN=between", TEST_CHALLENGE);
    new_cert = expect_success(f, &u, test_key(1), "between");
    assert_int_equal(X509_check_issued(f->ca, new_cert), X509_V_OK);
    X509_free(new_cert);
    test_req_clear(&u);

    assert_int_equal(scep_service_switch_ca(f->svc, NULL, err, sizeof(err)), SCEP_OK);
    assert_int_equal(scep_service_switch_ca(f->svc, NULL, err, sizeof(err)), SCEP_E_NO_ENTRY);
    f->ep = scep_service_endpoint(f->svc, NULL, 0);
    X509_free(f->ra);
    f->ra = X509_dup(next_ra); /* clients now encrypt to the new RA */
    assert_int_equal(X509_check_issued(f->ca, next_ca), X509_V_OK);
    X509_free(f->ca);
    f->ca = X509_dup(next_ca);
    test_req_make(&u, f, test_key(2), test_key(2), "CN=after", TEST_CHALLENGE);
    new_cert = expect_success_ca(f, &u, test_key(2), "after", next_ca);
    test_req_clear(&u);
    /* a certificate of the old CA renews, from the new CA */
    renewal_req(&u, f, old_cert, test_key(0), test_key(3), "CN=before", 17, "after-switch");
    renewed = expect_renewed(f, &u, test_key(3), "before");
    assert_int_equal(X509_check_issued(next_ca, renewed), X509_V_OK);
    test_req_clear(&u);
    X509_free(renewed);
    X509_free(new_cert);
    X509_free(old_cert);
    X509_free(next_ra);
    X509_free(next_ca);
    sk_X509_free(trust);
    BIO_free(inner);
    test_req_clear(&t);
}

/* A CSR naming a Microsoft template (1.3.6.1.4.1.311.20.2) gets that profile's validity and EKU. */
static void
test_service_template_profile(void **state)
{
    struct fixture *f = *state;
    struct scep_profile_row p;
    char err[256];
    X509_REQ *csr = NULL;
    STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
    ASN1_BMPSTRING *bmp = ASN1_BMPSTRING_new();
    unsigned char *der = NULL, *ext_der = NULL;
    ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
    X509_EXTENSION *ext;
    struct test_req t;
    EXTENDED_KEY_USAGE *eku;
    X509 *c;
    int n;

    memset(&p, 0, sizeof(p));
    snprintf(p.name, sizeof(p.name), "wifi");
    snprintf(p.template_name, sizeof(p.template_name), "WiFiMachine");
    p.validity_days = 90;
    snprintf(p.eku, sizeof(p.eku), "clientAuth,serverAuth");
    assert_int_equal(scep_service_add_profile(f->svc, &p, err, sizeof(err)), SCEP_OK);
    assert_int_equal(scep_service_add_profile(f->svc, &p, err, sizeof(err)), SCEP_E_CONFLICT);
    snprintf(p.name, sizeof(p.name), "bad");
    snprintf(p.template_name, sizeof(p.template_name), "Bad");
    snprintf(p.eku, sizeof(p.eku), "notAnEku");
    assert_int_equal(scep_service_add_profile(f->svc, &p, err, sizeof(err)), SCEP_E_INVALID_ARG);
    f->ep = scep_service_endpoint(f->svc, NULL, 0);

    /* the template-name extension, as Windows puts it in the request */
    assert_int_equal(scep_client_make_csr(test_key(0), "CN=laptop", TEST_CHALLENGE, NULL, &csr),
                     SCEP_OK);
    ASN1_STRING_set(bmp, "\0W\0i\0F\0i\0M\0a\0c\0h\0i\0n\0e", 22);
    n = i2d_ASN1_BMPSTRING(bmp, &ext_der);
    ASN1_OCTET_STRING_set(os, ext_der, n);
    {
        ASN1_OBJECT *oid = OBJ_txt2obj("1.3.6.1.4.1.311.20.2", 1);
        ext = X509_EXTENSION_create_by_OBJ(NULL, oid, 0, os);
        ASN1_OBJECT_free(oid);
    }
    assert_non_null(ext);
    sk_X509_EXTENSION_push(exts, ext);
    assert_true(X509_REQ_add_extensions(csr, exts));
    assert_true(X509_REQ_sign(csr, test_key(0), EVP_sha256()) > 0);
    test_req_make(&t, f, test_key(0), test_key(0), "CN=laptop", TEST_CHALLENGE);
    n = i2d_X509_REQ(csr, &der);
    free(t.csr);
    t.csr = malloc((size_t)n);
    memcpy(t.csr, der, (size_t)n);
    t.csr_len = (size_t)n;
    t.req.inner = t.csr;
    t.req.inner_len = t.csr_len;
    test_req_build(&t);
    c = expect_success(f, &t, test_key(0), "laptop");
    assert_int_equal(validity_days(c), 90);
    eku = X509_get_ext_d2i(c, NID_ext_key_usage, NULL, NULL);
    assert_non_null(eku);
    assert_int_equal(sk_ASN1_OBJECT_num(eku), 2);
    EXTENDED_KEY_USAGE_free(eku);
    X509_free(c);
    /* without the template: the endpoint's defaults */
    test_req_clear(&t);
    test_req_make(&t, f, test_key(1), test_key(1), "CN=plain", TEST_CHALLENGE);
    c = expect_success(f, &t, test_key(1), "plain");
    assert_int_equal(validity_days(c), 365);
    X509_free(c);
    test_req_clear(&t);
    OPENSSL_free(der);
    OPENSSL_free(ext_der);
    ASN1_OCTET_STRING_free(os);
    ASN1_BMPSTRING_free(bmp);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    X509_REQ_free(csr);
}

/* One scepd per data directory: a second lock is refused with the holder's pid, then free. */
static void
test_setup_lock_one_holder(void **state)
{
    struct fixture *f = *state;
    char err[512], p[512], missing[300];
    int fd = -1, fd2 = -1;
    long holder = -1;
    FILE *fp;
    long written = 0;

    assert_int_equal(scep_setup_lock(f->dir, &fd, &holder, err, sizeof(err)), SCEP_OK);
    assert_true(fd >= 0);
    snprintf(p, sizeof(p), "%s/%s", f->dir, SCEP_LOCK_FILE);
    fp = fopen(p, "r");
    assert_non_null(fp);
    assert_int_equal(fscanf(fp, "%ld", &written), 1);
    fclose(fp);
    assert_int_equal(written, (long)getpid());
    /* flock is per open file: a second open in this same process is refused too */
    assert_int_equal(scep_setup_lock(f->dir, &fd2, &holder, err, sizeof(err)), SCEP_E_EXISTS);
    assert_int_equal(fd2, -1);
    assert_int_equal(holder, (long)getpid());
    assert_non_null(strstr(err, "another scepd (pid"));
    assert_non_null(strstr(err, f->dir));
    close(fd);
    assert_int_equal(scep_setup_lock(f->dir, &fd2, &holder, err, sizeof(err)), SCEP_OK);
    close(fd2);

    snprintf(missing, sizeof(missing), "%s/no-such-dir", f->dir);
    assert_int_equal(scep_setup_lock(missing, &fd, &holder, err, sizeof(err)), SCEP_E_IO);
    assert_int_equal(fd, -1);
    assert_non_null(strstr(err, "cannot open"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_service_pkcsreq_success, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_setup_lock_one_holder, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_service_pkcsreq_ciphers, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_service_pkcsreq_wrong_challenge, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_service_pkcsreq_pop_key_mismatch, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_service_pkcsreq_bad_csr_signature, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_service_pkcsreq_trailing_bytes, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_service_pkcsreq_trailing_bytes_in_csr, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_service_msgtype_default_deny, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_service_wrong_recipient, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_service_retransmission_idempotent, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_service_short_nonce_echoed, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_service_decrypt_failures_indistinguishable,
                                        fixture_setup, fixture_teardown),
        cmocka_unit_test(test_service_des_refused_when_configured),
        cmocka_unit_test(test_service_ec_ca),
        cmocka_unit_test(test_service_getcacert_single),
        cmocka_unit_test(test_service_imported_ca),
        cmocka_unit_test(test_service_pending_approve_then_poll),
        cmocka_unit_test(test_service_pending_reject),
        cmocka_unit_test_setup_teardown(test_service_renewal, fixture_setup, fixture_teardown),
        cmocka_unit_test(test_service_renewal_superseded_then_refused),
        cmocka_unit_test(test_service_renewal_window),
        cmocka_unit_test_setup_teardown(test_service_renewal_foreign_signer, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_service_getcert_getcrl_revoke, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test(test_service_cdp_with_public_url),
        cmocka_unit_test_setup_teardown(test_service_ec_client_keys, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_service_windows_validity_period, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_service_windows_signer_critical_aki, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_service_ca_rollover, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_service_template_profile, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_service_getcacaps_and_getcacert, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_service_ra_certificate, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_service_certrep_signature_algorithm, fixture_setup,
                                        fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
