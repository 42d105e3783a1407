/*
 * test_csr.c - PKCS#10 checks: key policy, challengePassword encodings,
 * self-signature, proof of possession, names; scep_csr_parse (der.h's
 * keyless parse + key) against the rule it replaced, and the signer key
 * scep_pkimsg_parse gives.
 */
#include "testutil.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/cms.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "scepd/csr.h"
#include "scepd/der.h"
#include "scepd/issue.h"
#include "scepd/oids.h"
#include "scepd/pki.h"
#include "scepd/pkimsg.h"

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

/*
 * The rule scep_csr_parse replaced: d2i_X509_REQ consuming every byte and
 * re-encoding to exactly them.  The key is whatever OpenSSL's ordinary
 * decoder made of the SubjectPublicKeyInfo.
 */
static enum scep_err
old_csr_parse(const unsigned char *der, size_t len, X509_REQ **out)
{
    const unsigned char *p = der;
    unsigned char *re = NULL;
    X509_REQ *r;
    int n;

    *out = NULL;
    if (len == 0 || len > INT_MAX)
        return SCEP_E_CSR_PARSE;
    r = d2i_X509_REQ(NULL, &p, (long)len);
    if (r == NULL || p != der + len) {
        X509_REQ_free(r);
        ERR_clear_error();
        return SCEP_E_CSR_PARSE;
    }
    n = i2d_X509_REQ(r, &re);
    if (n <= 0 || (size_t)n != len || memcmp(re, der, len) != 0) {
        OPENSSL_free(re);
        X509_REQ_free(r);
        return SCEP_E_CSR_PARSE;
    }
    OPENSSL_free(re);
    *out = r;
    return SCEP_OK;
}

static unsigned char *
req_der(X509_REQ *r, size_t *len)
{
    unsigned char *der = NULL;
    int n = i2d_X509_REQ(r, &der);

    assert_true(n > 0);
    *len = (size_t)n;
    return der;
}

/*
 * scep_csr_parse(der) against the old rule: the same code (*out NULL when
 * refused), and when accepted the same DER, keys both absent or
 * EVP_PKEY_eq, the same X509_REQ_verify outcome.  want_key (may be NULL)
 * must then equal the key read.  Returns the common code; *verified says
 * whether scep_csr_verify_self succeeded.
 */
static enum scep_err
parse_both(const unsigned char *der, size_t len, EVP_PKEY *want_key, int *verified)
{
    X509_REQ *o = NULL, *n = (X509_REQ *)&o;
    enum scep_err orc = old_csr_parse(der, len, &o);
    enum scep_err nrc = scep_csr_parse(der, len, &n);
    EVP_PKEY *ko, *kn;
    unsigned char *dn;
    size_t dlen;

    *verified = 0;
    assert_int_equal(nrc, orc);
    if (orc != SCEP_OK) {
        assert_null(n);
        return nrc;
    }
    dn = req_der(n, &dlen);
    assert_int_equal(dlen, len);
    assert_memory_equal(dn, der, len);
    OPENSSL_free(dn);
    ko = X509_REQ_get0_pubkey(o);
    kn = X509_REQ_get0_pubkey(n);
    assert_int_equal(ko == NULL, kn == NULL);
    if (kn != NULL) {
        assert_int_equal(EVP_PKEY_eq(ko, kn), 1);
        assert_int_equal(X509_REQ_verify(o, ko) == 1, X509_REQ_verify(n, kn) == 1);
        *verified = scep_csr_verify_self(n) == SCEP_OK;
        assert_int_equal(*verified, X509_REQ_verify(o, ko) == 1);
    } else {
        assert_int_equal(scep_csr_verify_self(n), SCEP_E_CSR_SIGNATURE);
    }
    if (want_key != NULL) {
        assert_non_null(kn);
        assert_int_equal(EVP_PKEY_eq(kn, want_key), 1);
    }
    ERR_clear_error();
    X509_REQ_free(o);
    X509_REQ_free(n);
    return nrc;
}

/* (i) an ordinary RSA request: the fast key of der.c. */
static void
test_csr_parse_rsa_same_as_d2i(void **state)
{
    X509_REQ *r = csr_for(test_key(0), "CN=rsa", "chal");
    size_t len;
    unsigned char *der = req_der(r, &len);
    int ok;

    (void)state;
    assert_int_equal(parse_both(der, len, test_key(0), &ok), SCEP_OK);
    assert_true(ok);
    OPENSSL_free(der);
    X509_REQ_free(r);
}

/* (ii) EC P-256: OpenSSL's ordinary decoder (der.c's fallback). */
static void
test_csr_parse_ec_same_as_d2i(void **state)
{
    EVP_PKEY *k = NULL;
    X509_REQ *r;
    unsigned char *der;
    size_t len;
    int ok;

    (void)state;
    assert_int_equal(scep_pki_genkey("ec:p256", &k), SCEP_OK);
    r = csr_for(k, "CN=ec", "chal");
    der = req_der(r, &len);
    assert_int_equal(parse_both(der, len, k, &ok), SCEP_OK);
    assert_true(ok);
    OPENSSL_free(der);
    X509_REQ_free(r);
    EVP_PKEY_free(k);
}

/*
 * A request for test_key(0) whose SubjectPublicKeyInfo is rsaEncryption
 * with parameters ptype (V_ASN1_NULL or V_ASN1_UNDEF: absent) over the
 * key bits bits/nbits, properly signed over that encoding.  DER returned.
 */
static unsigned char *
csr_with_spki(int ptype, const unsigned char *bits, size_t nbits, size_t *len)
{
    X509_REQ *r = csr_for(test_key(0), "CN=spki", NULL);
    unsigned char *penc = OPENSSL_memdup(bits, nbits), *der;

    assert_non_null(penc);
    assert_true(X509_PUBKEY_set0_param(X509_REQ_get_X509_PUBKEY(r), OBJ_nid2obj(NID_rsaEncryption),
                                       ptype, NULL, penc, (int)nbits));
    assert_true(X509_REQ_sign(r, test_key(0), EVP_sha256()) > 0);
    der = req_der(r, len);
    X509_REQ_free(r);
    return der;
}

/* The RSAPublicKey of test_key(0) as DER, in buf; its length. */
static size_t
rsa_public_key(unsigned char *buf, size_t buflen)
{
    X509_REQ *r = csr_for(test_key(0), "CN=k", NULL);
    const unsigned char *k = NULL;
    int klen = 0;

    assert_true(X509_PUBKEY_get0_param(NULL, &k, &klen, NULL, X509_REQ_get_X509_PUBKEY(r)));
    assert_true(klen > 4 && (size_t)klen <= buflen);
    memcpy(buf, k, (size_t)klen);
    X509_REQ_free(r);
    return (size_t)klen;
}

/*
 * (iii) the RSAPublicKey with a non-minimal (long-form) length: the fast
 * key re-encodes differently, so der.c must give what d2i gives.
 */
static void
test_csr_parse_rsa_long_form_length(void **state)
{
    unsigned char k[600], bits[610], *der;
    size_t klen = rsa_public_key(k, sizeof(k)), len;
    int ok;

    (void)state;
    /* 30 82 hi lo ... -> 30 83 00 hi lo ... */
    assert_int_equal(k[0], 0x30);
    assert_int_equal(k[1], 0x82);
    bits[0] = 0x30;
    bits[1] = 0x83;
    bits[2] = 0x00;
    memcpy(bits + 3, k + 2, klen - 2);
    der = csr_with_spki(V_ASN1_NULL, bits, klen + 1, &len);
    if (parse_both(der, len, NULL, &ok) == SCEP_OK) {
        X509_REQ *r = NULL;
        assert_true(ok);
        assert_int_equal(scep_csr_parse(der, len, &r), SCEP_OK);
        assert_int_equal(EVP_PKEY_eq(X509_REQ_get0_pubkey(r), test_key(0)), 1);
        assert_int_equal(scep_csr_verify_self(r), SCEP_OK);
        X509_REQ_free(r);
    }
    OPENSSL_free(der);
    /* The same in the modulus: 02 82 01 01 -> 02 83 00 01 01. */
    memcpy(bits, k, 4);
    assert_int_equal(k[4], 0x02);
    assert_int_equal(k[5], 0x82);
    bits[3] = (unsigned char)(k[3] + 1); /* the sequence grows by one byte */
    bits[4] = 0x02;
    bits[5] = 0x83;
    bits[6] = 0x00;
    memcpy(bits + 7, k + 6, klen - 6);
    der = csr_with_spki(V_ASN1_NULL, bits, klen + 1, &len);
    if (parse_both(der, len, NULL, &ok) == SCEP_OK)
        assert_true(ok);
    OPENSSL_free(der);
}

/* (iv) bytes after the RSAPublicKey inside the BIT STRING. */
static void
test_csr_parse_rsa_trailing_in_key(void **state)
{
    unsigned char bits[610], *der;
    size_t klen = rsa_public_key(bits, sizeof(bits) - 4), len;
    int ok;

    (void)state;
    memcpy(bits + klen, "\xde\xad\xbe\xef", 4);
    der = csr_with_spki(V_ASN1_NULL, bits, klen + 4, &len);
    if (parse_both(der, len, NULL, &ok) == SCEP_OK) {
        X509_REQ *r = NULL;
        assert_int_equal(scep_csr_parse(der, len, &r), SCEP_OK);
        /* Whatever key d2i reads (parse_both compared them): never another one. */
        if (X509_REQ_get0_pubkey(r) != NULL)
            assert_int_equal(EVP_PKEY_eq(X509_REQ_get0_pubkey(r), test_key(0)), 1);
        X509_REQ_free(r);
    }
    OPENSSL_free(der);
}

/* (v) rsaEncryption with its parameters absent rather than NULL. */
static void
test_csr_parse_rsa_absent_params(void **state)
{
    unsigned char bits[600], *der;
    size_t klen = rsa_public_key(bits, sizeof(bits)), len;
    int ok;

    (void)state;
    der = csr_with_spki(V_ASN1_UNDEF, bits, klen, &len);
    if (parse_both(der, len, NULL, &ok) == SCEP_OK) {
        X509_REQ *r = NULL;
        assert_int_equal(scep_csr_parse(der, len, &r), SCEP_OK);
        if (X509_REQ_get0_pubkey(r) != NULL) {
            assert_int_equal(EVP_PKEY_eq(X509_REQ_get0_pubkey(r), test_key(0)), 1);
            assert_true(ok);
        }
        X509_REQ_free(r);
    }
    OPENSSL_free(der);
}

/* RSA keys d2i_PublicKey reads but that are not DER, or not RSAPublicKeys at all. */
static void
test_csr_parse_rsa_odd_keys(void **state)
{
    unsigned char k[600], bits[610], *der;
    size_t klen = rsa_public_key(k, sizeof(k)), len;
    int ok;

    (void)state;
    /* The modulus without its 00 sign byte (a negative INTEGER in DER). */
    assert_int_equal(k[6], 0x01);
    assert_int_equal(k[7], 0x01);
    assert_int_equal(k[8], 0x00);
    memcpy(bits, k, 6);
    bits[3] = (unsigned char)(k[3] - 1);
    bits[6] = 0x01; /* 02 82 01 01 00 n -> 02 82 01 00 n */
    bits[7] = 0x00;
    memcpy(bits + 8, k + 9, klen - 9);
    der = csr_with_spki(V_ASN1_NULL, bits, klen - 1, &len);
    (void)parse_both(der, len, NULL, &ok);
    OPENSSL_free(der);
    /* A SEQUENCE of one INTEGER: no RSA key at all. */
    der = csr_with_spki(V_ASN1_NULL, (const unsigned char *)"\x30\x03\x02\x01\x01", 5, &len);
    (void)parse_both(der, len, NULL, &ok);
    assert_false(ok);
    OPENSSL_free(der);
    /* Not even DER inside. */
    der = csr_with_spki(V_ASN1_NULL, (const unsigned char *)"\xff\xff\xff", 3, &len);
    (void)parse_both(der, len, NULL, &ok);
    assert_false(ok);
    OPENSSL_free(der);
}

/* Outside the request information OpenSSL re-encodes: the old rule refuses, so must the new. */
static void
test_csr_parse_refuses_outer_long_form(void **state)
{
    X509_REQ *r = csr_for(test_key(0), "CN=outer", NULL), *back = (X509_REQ *)&r;
    size_t len;
    unsigned char *der = req_der(r, &len), *bad = malloc(len + 1);
    int ok;

    (void)state;
    assert_non_null(bad);
    /* 30 82 hi lo -> 30 83 00 hi lo */
    assert_int_equal(der[1], 0x82);
    bad[0] = 0x30;
    bad[1] = 0x83;
    bad[2] = 0x00;
    memcpy(bad + 3, der + 2, len - 2);
    assert_int_equal(parse_both(bad, len + 1, NULL, &ok), SCEP_E_CSR_PARSE);
    assert_int_equal(scep_csr_parse(bad, len + 1, &back), SCEP_E_CSR_PARSE);
    assert_null(back);
    free(bad);
    OPENSSL_free(der);
    X509_REQ_free(r);
}

/* (vi) a changed signature still fails, on the fast (RSA) and the ordinary (EC) key. */
static void
test_csr_parse_tampered_signature(void **state)
{
    EVP_PKEY *ec = NULL, *keys[2];
    int i, ok;

    (void)state;
    assert_int_equal(scep_pki_genkey("ec:p256", &ec), SCEP_OK);
    keys[0] = test_key(0);
    keys[1] = ec;
    for (i = 0; i < 2; i++) {
        X509_REQ *r = csr_for(keys[i], "CN=tampered", "chal"), *back = NULL;
        size_t len;
        unsigned char *der = req_der(r, &len);

        assert_int_equal(parse_both(der, len, keys[i], &ok), SCEP_OK);
        assert_true(ok);
        der[len - 1] ^= 0x01; /* the signature's last byte */
        assert_int_equal(parse_both(der, len, keys[i], &ok), SCEP_OK);
        assert_false(ok);
        assert_int_equal(scep_csr_parse(der, len, &back), SCEP_OK);
        assert_int_equal(scep_csr_verify_self(back), SCEP_E_CSR_SIGNATURE);
        X509_REQ_free(back);
        OPENSSL_free(der);
        X509_REQ_free(r);
    }
    EVP_PKEY_free(ec);
}

/* scep_pkimsg_parse gives a signer certificate with its key (RSA: der.c's fast key; EC). */
static void
test_pkimsg_signer_key(void **state)
{
    EVP_PKEY *ec = NULL, *keys[2];
    X509_NAME *name = NULL;
    X509 *ra = NULL;
    X509_REQ *csr = csr_for(test_key(0), "CN=pkimsg", TEST_CHALLENGE);
    size_t csrlen;
    unsigned char *csrder = req_der(csr, &csrlen);
    int i;

    (void)state;
    assert_int_equal(scep_pki_genkey("ec:p256", &ec), SCEP_OK);
    assert_int_equal(scep_pki_parse_dn("CN=test RA", &name), SCEP_OK);
    assert_int_equal(scep_client_selfsigned(test_key(2), name, &ra), SCEP_OK);
    keys[0] = test_key(1);
    keys[1] = ec;
    for (i = 0; i < 2; i++) {
        struct scep_client_req req;
        struct scep_pkimsg *m = NULL;
        X509 *signer = NULL;
        unsigned char *der = NULL;
        size_t len = 0;
        EVP_PKEY *k;

        assert_int_equal(scep_client_selfsigned(keys[i], X509_REQ_get_subject_name(csr), &signer),
                         SCEP_OK);
        memset(&req, 0, sizeof(req));
        req.msgtype = SCEP_MSG_PKCSREQ;
        req.txid = "test-pkimsg-signer-key";
        req.signer_cert = signer;
        req.signer_key = keys[i];
        req.inner = csrder;
        req.inner_len = csrlen;
        req.recipient = ra;
        assert_int_equal(scep_client_build(&req, &der, &len), SCEP_OK);
        assert_int_equal(scep_pkimsg_parse(der, len, &m), SCEP_OK);
        assert_non_null(m);
        assert_non_null(m->signer);
        assert_int_equal(X509_cmp(m->signer, signer), 0);
        k = X509_get0_pubkey(m->signer);
        assert_non_null(k);
        assert_int_equal(EVP_PKEY_eq(k, keys[i]), 1);
        assert_int_equal(X509_verify(m->signer, k), 1);
        scep_pkimsg_free(m);
        free(der);
        X509_free(signer);
    }
    X509_free(ra);
    X509_NAME_free(name);
    EVP_PKEY_free(ec);
    OPENSSL_free(csrder);
    X509_REQ_free(csr);
}

/*
 * A signer certificate (EC key, so not der.c's fast RSA path) whose outer
 * signatureAlgorithm parameters are 20 00: d2i_X509 reads it, but its
 * re-encoding (00 00) does not read again.  scep_pkimsg_parse must accept
 * it as the ordinary d2i does (it re-reads the original message), and
 * scep_der_cert must read the certificate as d2i_X509 does
 * (tests/fuzz/crashes/der-cert-ec-outer-sigalg-params-2000.der).
 */
static void
test_pkimsg_signer_nonder_sigalg(void **state)
{
    const char *d = getenv("SCEPD_TEST_DATA");
    char path[512];
    size_t len = 0;
    unsigned char *der;
    const unsigned char *p1, *p2;
    const unsigned char *cd;
    struct scep_pkimsg *m = NULL;
    unsigned char *cert = NULL;
    int clen;
    X509 *fast, *plain;

    (void)state;
    snprintf(path, sizeof(path), "%s/pkcsreq-signer-sigalg-params-2000.der", d ? d : "tests/data");
    der = test_read_file(path, &len);
    assert_non_null(der);
    assert_int_equal(scep_pkimsg_parse(der, len, &m), SCEP_OK);
    assert_non_null(m->signer);
    assert_non_null(X509_get0_pubkey(m->signer));
    assert_int_equal(EVP_PKEY_get_base_id(X509_get0_pubkey(m->signer)), EVP_PKEY_EC);
    /* The certificate alone: scep_der_cert as d2i_X509. */
    clen = i2d_X509(m->signer, &cert);
    assert_true(clen > 0);
    cd = cert;
    {
        /* Its original bytes: the re-encoding has 00 00, so look for the cert in the message. */
        X509 *back = d2i_X509(NULL, &cd, clen);
        assert_null(back); /* OpenSSL cannot read its own re-encoding of it */
    }
    scep_pkimsg_free(m);
    free(der);
    OPENSSL_free(cert);
    snprintf(path, sizeof(path), "%s/../fuzz/crashes/der-cert-ec-outer-sigalg-params-2000.der",
             d ? d : "tests/data");
    der = test_read_file(path, &len);
    assert_non_null(der);
    p1 = der;
    p2 = der;
    fast = scep_der_cert(&p1, (long)len);
    plain = d2i_X509(NULL, &p2, (long)len);
    assert_non_null(plain);
    assert_non_null(fast);
    assert_ptr_equal(p1, p2);
    assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(fast), X509_get0_pubkey(plain)), 1);
    X509_free(fast);
    X509_free(plain);
    free(der);
}

/*
 * A signer named by subjectKeyIdentifier (CMS_USE_KEYID): matching it
 * caches the certificate's extension flags, and "self-signed" is decided
 * with its key; scep_pkimsg_parse must have attached the key first, so the
 * signer is self-signed exactly as d2i_X509 reads it (review of der.c).
 */
static void
test_pkimsg_signer_by_keyid(void **state)
{
    const struct scep_nids *n = scep_nids();
    X509_NAME *name = NULL;
    X509 *signer = NULL, *plain;
    CMS_ContentInfo *cms;
    CMS_SignerInfo *si;
    BIO *content, *out;
    BUF_MEM *bm;
    struct scep_pkimsg *m = NULL;
    unsigned char nonce[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    unsigned char *der = NULL;
    const unsigned char *p;
    int len;
    unsigned int flags = CMS_BINARY | CMS_PARTIAL | CMS_NOSMIMECAP;

    (void)state;
    assert_int_equal(scep_pki_parse_dn("CN=keyid signer", &name), SCEP_OK);
    /* A self-signed certificate with a subjectKeyIdentifier (RSA: der.c's fast key). */
    assert_int_equal(scep_pki_make_root(test_key(1), name, 30, &signer), SCEP_OK);
    assert_non_null(X509_get0_subject_key_id(signer));
    cms = CMS_sign(NULL, NULL, NULL, NULL, flags);
    assert_non_null(cms);
    si = CMS_add1_signer(cms, signer, test_key(1), EVP_sha256(), CMS_USE_KEYID | CMS_NOSMIMECAP);
    assert_non_null(si);
    assert_int_equal(
        CMS_signed_add1_attr_by_NID(si, n->transaction_id, V_ASN1_PRINTABLESTRING, "keyid-1", 7),
        1);
    assert_int_equal(
        CMS_signed_add1_attr_by_NID(si, n->message_type, V_ASN1_PRINTABLESTRING, "19", 2), 1);
    assert_int_equal(CMS_signed_add1_attr_by_NID(si, n->sender_nonce, V_ASN1_OCTET_STRING, nonce,
                                                 (int)sizeof(nonce)),
                     1);
    content = BIO_new_mem_buf("not an envelope", 15);
    assert_int_equal(CMS_final(cms, content, NULL, flags), 1);
    out = BIO_new(BIO_s_mem());
    assert_int_equal(i2d_CMS_bio(out, cms), 1);
    BIO_get_mem_ptr(out, &bm);
    assert_int_equal(scep_pkimsg_parse((const unsigned char *)bm->data, bm->length, &m), SCEP_OK);
    assert_non_null(X509_get0_pubkey(m->signer));
    /* As d2i_X509 reads the same certificate: self-signed, same flags. */
    len = i2d_X509(signer, &der);
    p = der;
    plain = d2i_X509(NULL, &p, len);
    assert_non_null(plain);
    assert_int_equal(X509_self_signed(plain, 0), 1);
    assert_int_equal(X509_self_signed(m->signer, 0), 1);
    assert_int_equal(X509_get_extension_flags(m->signer) & EXFLAG_SS,
                     X509_get_extension_flags(plain) & EXFLAG_SS);
    X509_free(plain);
    OPENSSL_free(der);
    scep_pkimsg_free(m);
    BIO_free(out);
    BIO_free(content);
    CMS_ContentInfo_free(cms);
    X509_free(signer);
    X509_NAME_free(name);
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
        cmocka_unit_test(test_csr_parse_rsa_same_as_d2i),
        cmocka_unit_test(test_csr_parse_ec_same_as_d2i),
        cmocka_unit_test(test_csr_parse_rsa_long_form_length),
        cmocka_unit_test(test_csr_parse_rsa_trailing_in_key),
        cmocka_unit_test(test_csr_parse_rsa_absent_params),
        cmocka_unit_test(test_csr_parse_rsa_odd_keys),
        cmocka_unit_test(test_csr_parse_refuses_outer_long_form),
        cmocka_unit_test(test_csr_parse_tampered_signature),
        cmocka_unit_test(test_pkimsg_signer_key),
        cmocka_unit_test(test_pkimsg_signer_nonder_sigalg),
        cmocka_unit_test(test_pkimsg_signer_by_keyid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
