/*
 * test_csr.c - PKCS#10 checks: key policy, challengePassword encodings,
 * self-signature, proof of possession, names.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509v3.h>

#include "scepd/csr.h"
#include "scepd/issue.h"
#include "scepd/oids.h"
#include "scepd/pki.h"

static X509_REQ *
csr_for(EVP_PKEY *k, const char *dn, const char *chal)
{
    X509_REQ *r = NULL;

    assert_int_equal(scep_client_make_csr(k, dn, chal, NULL, &r), SCEP_OK);
    return r;
}

static void
test_csr_check_key_policy(void **state)
{
    EVP_PKEY *k;
    X509_REQ *r;

    (void)state;
    assert_int_equal(scep_lib_init(), SCEP_OK);
    k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    r = csr_for(k, "CN=weak", NULL);
    assert_int_equal(scep_csr_check_key(r), SCEP_E_KEY_POLICY);
    X509_REQ_free(r);
    EVP_PKEY_free(k);
    assert_int_equal(scep_pki_genkey("ec:p256", &k), SCEP_OK);
    r = csr_for(k, "CN=ec", NULL);
    assert_int_equal(scep_csr_check_key(r), SCEP_OK);
    X509_REQ_free(r);
    EVP_PKEY_free(k);
    k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "secp256k1");
    r = csr_for(k, "CN=ec", NULL);
    assert_int_equal(scep_csr_check_key(r), SCEP_E_KEY_POLICY);
    X509_REQ_free(r);
    EVP_PKEY_free(k);
    r = csr_for(test_key(0), "CN=ok", NULL);
    assert_int_equal(scep_csr_check_key(r), SCEP_OK);
    X509_REQ_free(r);
}

static void
test_csr_challenge_encodings(void **state)
{
    X509_REQ *r;
    char buf[64];
    size_t n;

    (void)state;
    r = csr_for(test_key(0), "CN=x", "Abc123");
    assert_int_equal(scep_csr_challenge(r, buf, sizeof(buf), &n), SCEP_OK);
    assert_string_equal(buf, "Abc123");
    X509_REQ_free(r);
    /* UTF8String (characters outside PrintableString) */
    r = csr_for(test_key(0), "CN=x", "p@ss_w\xc3\xb6rd");
    assert_int_equal(scep_csr_challenge(r, buf, sizeof(buf), &n), SCEP_OK);
    assert_string_equal(buf, "p@ss_w\xc3\xb6rd");
    X509_REQ_free(r);
    /* BMPString is a DirectoryString too */
    r = csr_for(test_key(0), "CN=x", NULL);
    assert_true(X509_REQ_add1_attr_by_NID(r, NID_pkcs9_challengePassword, MBSTRING_BMP,
                                          (const unsigned char *)"\0b\0m\0p", 6));
    assert_int_equal(scep_csr_challenge(r, buf, sizeof(buf), &n), SCEP_OK);
    assert_string_equal(buf, "bmp");
    /* a challengePassword with two values: malformed */
    assert_true(X509_ATTRIBUTE_set1_data(
        X509_REQ_get_attr(r, X509_REQ_get_attr_by_NID(r, NID_pkcs9_challengePassword, -1)),
        MBSTRING_ASC, "two", 3));
    assert_int_equal(scep_csr_challenge(r, buf, sizeof(buf), &n), SCEP_E_CSR_PARSE);
    X509_REQ_free(r);
    r = csr_for(test_key(0), "CN=x", NULL);
    assert_int_equal(scep_csr_challenge(r, buf, sizeof(buf), &n), SCEP_E_NO_ENTRY);
    X509_REQ_free(r);
    /* too long for the buffer */
    r = csr_for(test_key(0), "CN=x", "0123456789");
    assert_int_equal(scep_csr_challenge(r, buf, 5, &n), SCEP_E_CSR_PARSE);
    X509_REQ_free(r);
}

static void
test_csr_verify_and_pop(void **state)
{
    X509_REQ *r = csr_for(test_key(0), "CN=x", NULL);
    X509 *self = NULL, *other = NULL;

    (void)state;
    assert_int_equal(scep_csr_verify_self(r), SCEP_OK);
    assert_int_equal(scep_client_selfsigned(test_key(0), X509_REQ_get_subject_name(r), &self),
                     SCEP_OK);
    assert_int_equal(scep_client_selfsigned(test_key(1), X509_REQ_get_subject_name(r), &other),
                     SCEP_OK);
    assert_int_equal(scep_csr_check_pop(r, self), SCEP_OK);
    assert_int_equal(scep_csr_check_pop(r, other), SCEP_E_POP);
    /* a CSR whose self-signature was made by another key */
    assert_true(X509_REQ_sign(r, test_key(1), EVP_sha256()) > 0);
    assert_int_equal(scep_csr_verify_self(r), SCEP_E_CSR_SIGNATURE);
    X509_free(self);
    X509_free(other);
    X509_REQ_free(r);
}

static void
test_csr_parse_rejects_trailing(void **state)
{
    X509_REQ *r = csr_for(test_key(0), "CN=x", NULL), *back = NULL;
    unsigned char *der = NULL, buf[4096];
    int n = i2d_X509_REQ(r, &der);

    (void)state;
    memcpy(buf, der, (size_t)n);
    buf[n] = 0;
    assert_int_equal(scep_csr_parse(buf, (size_t)n, &back), SCEP_OK);
    X509_REQ_free(back);
    assert_int_equal(scep_csr_parse(buf, (size_t)n + 1, &back), SCEP_E_CSR_PARSE);
    assert_null(back);
    assert_int_equal(scep_csr_parse(buf, (size_t)n - 1, &back), SCEP_E_CSR_PARSE);
    assert_int_equal(scep_csr_parse(buf, 0, &back), SCEP_E_CSR_PARSE);
    OPENSSL_free(der);
    X509_REQ_free(r);
}

static X509_REQ *
csr_with_gn(GENERAL_NAME *gn)
{
    X509_REQ *r = csr_for(test_key(0), "CN=x", NULL);
    STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
    GENERAL_NAMES *gns = sk_GENERAL_NAME_new_null();
    X509_EXTENSION *e;

    sk_GENERAL_NAME_push(gns, gn);
    e = X509V3_EXT_i2d(NID_subject_alt_name, 0, gns);
    GENERAL_NAMES_free(gns);
    assert_non_null(e);
    sk_X509_EXTENSION_push(exts, e);
    assert_true(X509_REQ_add_extensions(r, exts));
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    return r;
}

static X509_REQ *
csr_with_san(const char *san)
{
    X509_REQ *r = csr_for(test_key(0), "CN=x", NULL);
    STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, san);

    assert_non_null(e);
    sk_X509_EXTENSION_push(exts, e);
    assert_true(X509_REQ_add_extensions(r, exts));
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    return r;
}

static void
test_csr_names_policy(void **state)
{
    X509_REQ *r;
    char longcn[80];

    (void)state;
    r = csr_with_san("DNS:host.example.com, email:a@example.com, IP:10.0.0.1");
    assert_int_equal(scep_issue_check_names(r), SCEP_OK);
    X509_REQ_free(r);
    /* a SID URI may only come from an authorization (matrix P4) */
    {
        GENERAL_NAME *gn = GENERAL_NAME_new();
        ASN1_IA5STRING *uri = ASN1_IA5STRING_new();
        const char *sid = "tag:microsoft.com,2022-09-14:sid:S-1-5-21-1-2-3-500";
        ASN1_STRING_set(uri, sid, (int)strlen(sid));
        GENERAL_NAME_set0_value(gn, GEN_URI, uri);
        r = csr_with_gn(gn);
        assert_int_equal(scep_issue_check_names(r), SCEP_E_NAME_POLICY);
        X509_REQ_free(r);
    }
    r = csr_with_san("otherName:1.3.6.1.4.1.311.20.2.3;UTF8:admin@corp");
    assert_int_equal(scep_issue_check_names(r), SCEP_E_NAME_POLICY);
    X509_REQ_free(r);
    memset(longcn, 'a', sizeof(longcn));
    memcpy(longcn, "CN=", 3);
    longcn[3 + 65] = '\0';
    {
        /* OpenSSL's own builders refuse a 65-character CN; a client's bytes need not. */
        X509_NAME *n = X509_NAME_new();
        assert_true(X509_NAME_add_entry_by_NID(n, NID_commonName, V_ASN1_UTF8STRING,
                                               (const unsigned char *)longcn + 3, -1, -1, 0));
        r = csr_for(test_key(0), "CN=x", NULL);
        assert_true(X509_REQ_set_subject_name(r, n));
        assert_int_equal(scep_issue_check_names(r), SCEP_E_NAME_POLICY);
        X509_REQ_free(r);
        /* an embedded NUL (good.example\0evil, matrix P7) */
        X509_NAME_free(n);
        n = X509_NAME_new();
        assert_true(X509_NAME_add_entry_by_NID(n, NID_commonName, V_ASN1_UTF8STRING,
                                               (const unsigned char *)"good\0evil", 9, -1, 0));
        r = csr_for(test_key(0), "CN=x", NULL);
        assert_true(X509_REQ_set_subject_name(r, n));
        assert_int_equal(scep_issue_check_names(r), SCEP_E_NAME_POLICY);
        X509_REQ_free(r);
        X509_NAME_free(n);
    }
}

/* Explicit EC parameters equal to P-256 (found by fuzz_csr): refused, RFC 5480 §2.1.1. */
static void
test_csr_check_key_ec_explicit_params(void **state)
{
    const char *d = getenv("SCEPD_TEST_DATA");
    char path[512];
    unsigned char *der;
    size_t len;
    X509_REQ *r = NULL;

    (void)state;
    snprintf(path, sizeof(path), "%s/csr-ec-explicit-params-p256.der", d ? d : "tests/data");
    der = test_read_file(path, &len);
    assert_int_equal(scep_csr_parse(der, len, &r), SCEP_OK);
    assert_int_equal(scep_csr_check_key(r), SCEP_E_KEY_POLICY);
    X509_REQ_free(r);
    free(der);
}

/* A CSR OpenSSL accepts but re-encodes differently (found by fuzz_csr) is refused: DER only. */
static void
test_csr_parse_refuses_non_der(void **state)
{
    const char *d = getenv("SCEPD_TEST_DATA");
    char path[512];
    unsigned char *der;
    size_t len;
    X509_REQ *r = NULL;

    (void)state;
    snprintf(path, sizeof(path), "%s/csr-nonder-sigalg-params.der", d ? d : "tests/data");
    der = test_read_file(path, &len);
    assert_int_equal(scep_csr_parse(der, len, &r), SCEP_E_CSR_PARSE);
    assert_null(r);
    free(der);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_csr_check_key_policy),
        cmocka_unit_test(test_csr_check_key_ec_explicit_params),
        cmocka_unit_test(test_csr_parse_refuses_non_der),
        cmocka_unit_test(test_csr_challenge_encodings),
        cmocka_unit_test(test_csr_verify_and_pop),
        cmocka_unit_test(test_csr_parse_rejects_trailing),
        cmocka_unit_test(test_csr_names_policy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
