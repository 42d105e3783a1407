/*
 * fuzz_der.c - libFuzzer target checking der.h's promise: an object read
 * with scep_der_cert / scep_csr_parse (der.h's keyless parse and fast
 * key) is what OpenSSL's ordinary d2i makes of the same bytes.
 *
 * Every input is read twice, and abort() (a crash for libFuzzer) on any
 * divergence:
 *
 *   as a certificate: scep_der_cert (keyless parse + scep_der_cert_key, or
 *     the ordinary d2i of the same bytes when the fast key does not apply)
 *     against d2i_X509.  Both accept or refuse alike and consume the same
 *     bytes; both objects encode (i2d) to identical bytes; keys on both
 *     sides or neither, EVP_PKEY_eq, and X509_verify with that key (the
 *     self-signature) gives the same answer (== 1 or not) on both.
 *
 *   as a request: scep_csr_parse against the rule it replaced, d2i_X509_REQ
 *     consuming every byte and re-encoding (i2d) to exactly the input.
 *     Same acceptance (and *out NULL on refusal); when both accept, the
 *     same DER, keys both absent or EVP_PKEY_eq, and X509_REQ_verify with
 *     the key (== 1 or not) and scep_csr_verify_self agreeing.
 *
 * Seeds (corpus/fuzz_der/) are certificates and requests made with the
 * openssl command: RSA (the fast path), EC, RSA-PSS and Ed25519 (the
 * ordinary decoder).  No keys from tests/fuzz/keys are needed.
 */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "fuzzutil.h"
#include "scepd/csr.h"
#include "scepd/der.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
diverged(const char *what)
{
    fprintf(stderr, "fuzz_der: divergence from the ordinary d2i: %s\n", what);
    abort();
}

/* 1 when a and b encode to the same non-empty DER. */
static int
same_i2d(const void *a, const void *b, const ASN1_ITEM *it)
{
    unsigned char *da = NULL, *db = NULL;
    int na = ASN1_item_i2d((const ASN1_VALUE *)a, &da, it);
    int nb = ASN1_item_i2d((const ASN1_VALUE *)b, &db, it);
    int same = na > 0 && na == nb && memcmp(da, db, (size_t)na) == 0;

    OPENSSL_free(da);
    OPENSSL_free(db);
    return same;
}

static void
check_cert(const unsigned char *data, size_t size)
{
    const unsigned char *pf = data, *pp = data;
    X509 *fast, *plain;
    EVP_PKEY *kf, *kp;

    fast = scep_der_cert(&pf, (long)size);
    plain = d2i_X509(NULL, &pp, (long)size);
    ERR_clear_error();
    if ((fast == NULL) != (plain == NULL))
        diverged("certificate: one parse accepts, the other refuses");
    if (fast == NULL)
        return;
    if (pf != pp)
        diverged("certificate: the parses consumed different lengths");
    if (!same_i2d(fast, plain, ASN1_ITEM_rptr(X509)))
        diverged("certificate: DER differs");
    kf = X509_get0_pubkey(fast);
    kp = X509_get0_pubkey(plain);
    if ((kf == NULL) != (kp == NULL))
        diverged("certificate: a key on one side only");
    if (kf != NULL && EVP_PKEY_eq(kf, kp) != 1)
        diverged("certificate: keys differ");
    if (kf != NULL && (X509_verify(fast, kf) == 1) != (X509_verify(plain, kp) == 1))
        diverged("certificate: self-signature verifies on one only");
    ERR_clear_error();
    X509_free(fast);
    X509_free(plain);
}

/* The rule scep_csr_parse replaced: d2i_X509_REQ of every byte, DER only. */
static X509_REQ *
old_csr_parse(const unsigned char *der, size_t len)
{
    const unsigned char *p = der;
    unsigned char *re = NULL;
    X509_REQ *r;
    int n;

    if (len == 0 || len > INT_MAX)
        return NULL;
    r = d2i_X509_REQ(NULL, &p, (long)len);
    if (r == NULL || p != der + len) {
        X509_REQ_free(r);
        return NULL;
    }
    n = i2d_X509_REQ(r, &re);
    if (n <= 0 || (size_t)n != len || memcmp(re, der, len) != 0) {
        X509_REQ_free(r);
        r = NULL;
    }
    OPENSSL_free(re);
    return r;
}

static void
check_req(const unsigned char *data, size_t size)
{
    X509_REQ *old = old_csr_parse(data, size), *neu = (X509_REQ *)1;
    enum scep_err rc = scep_csr_parse(data, size, &neu);
    EVP_PKEY *ko, *kn;
    int vo, vn;

    ERR_clear_error();
    if (rc != SCEP_OK && neu != NULL)
        diverged("request: *out not NULL on refusal");
    if ((rc == SCEP_OK) != (old != NULL))
        diverged("request: acceptance differs from d2i_X509_REQ + DER re-encoding");
    if (old == NULL)
        return;
    if (!same_i2d(old, neu, ASN1_ITEM_rptr(X509_REQ)))
        diverged("request: DER differs");
    ko = X509_REQ_get0_pubkey(old);
    kn = X509_REQ_get0_pubkey(neu);
    if ((ko == NULL) != (kn == NULL))
        diverged("request: key present in one only");
    if (ko != NULL) {
        if (EVP_PKEY_eq(ko, kn) != 1)
            diverged("request: keys differ");
        vo = X509_REQ_verify(old, ko) == 1;
        vn = X509_REQ_verify(neu, kn) == 1;
        if (vo != vn)
            diverged("request: self-signature verifies on one only");
        if ((scep_csr_verify_self(neu) == SCEP_OK) != vo)
            diverged("request: scep_csr_verify_self disagrees with X509_REQ_verify");
    } else if (scep_csr_verify_self(neu) == SCEP_OK) {
        diverged("request: scep_csr_verify_self accepted a request without a key");
    }
    ERR_clear_error();
    X509_REQ_free(old);
    X509_REQ_free(neu);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    (void)fuzz_init(); /* scep_lib_init; the keys are not used */
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0 || size > INT_MAX)
        return 0;
    check_cert(data, size);
    check_req(data, size);
    return 0;
}
