/*
 * der.c - parsing without OpenSSL 3.0's per-key decoder (see der.h).
 *
 * Why a library context without providers works: d2i of a
 * SubjectPublicKeyInfo asks the parse's library context for a key decoder;
 * where there is none the key is simply left undecoded (as for an unknown
 * key type) and the rest of the structure is parsed as usual.  The "null"
 * provider is loaded into it so that no fetch ever loads the default one.
 *
 * The fast key: for rsaEncryption with NULL parameters, d2i_PublicKey
 * reads the RSAPublicKey directly (a few microseconds).  The key is
 * attached with X509_set_pubkey/X509_REQ_set_pubkey, which re-encodes the
 * SubjectPublicKeyInfo; the object's DER is compared with what was parsed
 * and anything that differs (a non-canonical key encoding, any other key
 * type) is read again from the original bytes by the ordinary d2i, so the
 * result is always what d2i would have produced.
 */
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/provider.h>
#include <openssl/x509.h>

#include "scepd/der.h"

static pthread_once_t once = PTHREAD_ONCE_INIT;
static OSSL_LIB_CTX *keyless_ctx;
static OSSL_PROVIDER *null_prov;

static void
keyless_free(void)
{
    OSSL_PROVIDER_unload(null_prov);
    OSSL_LIB_CTX_free(keyless_ctx);
    null_prov = NULL;
    keyless_ctx = NULL;
}

static void
keyless_init(void)
{
    OSSL_LIB_CTX *ctx = OSSL_LIB_CTX_new();

    if (ctx == NULL)
        return;
    if ((null_prov = OSSL_PROVIDER_load(ctx, "null")) == NULL) {
        OSSL_LIB_CTX_free(ctx);
        return;
    }
    keyless_ctx = ctx;
    atexit(keyless_free);
}

void *
scep_der_keyless(const ASN1_ITEM *it, const unsigned char **pp, long len)
{
    void *v;

    if (pthread_once(&once, keyless_init) != 0 || keyless_ctx == NULL)
        return ASN1_item_d2i(NULL, pp, len, it); /* no context: the ordinary d2i */
    v = ASN1_item_d2i_ex(NULL, pp, len, it, keyless_ctx, NULL);
    /* The skipped decode leaves "unsupported" on the error queue. */
    ERR_clear_error();
    return v;
}

/* A key straight from a plain RSA SubjectPublicKeyInfo; NULL for anything else. */
static EVP_PKEY *
rsa_key(const X509_PUBKEY *spki)
{
    const unsigned char *k, *p;
    const ASN1_OBJECT *obj;
    const void *pval;
    X509_ALGOR *alg;
    EVP_PKEY *pkey;
    int klen, ptype;

    if (spki == NULL || !X509_PUBKEY_get0_param(NULL, &k, &klen, &alg, spki) || alg == NULL ||
        klen <= 0)
        return NULL;
    X509_ALGOR_get0(&obj, &ptype, &pval, alg);
    if (OBJ_obj2nid(obj) != NID_rsaEncryption || ptype != V_ASN1_NULL)
        return NULL;
    p = k;
    pkey = d2i_PublicKey(EVP_PKEY_RSA, NULL, &p, klen);
    if (pkey != NULL && p != k + klen) {
        EVP_PKEY_free(pkey); /* trailing bytes: leave it to the ordinary decoder */
        pkey = NULL;
    }
    ERR_clear_error();
    return pkey;
}

static int
same_der(const unsigned char *a, int alen, const unsigned char *b, size_t blen)
{
    return alen > 0 && (size_t)alen == blen && memcmp(a, b, blen) == 0;
}

int
scep_der_cert_key(X509 *x)
{
    int rc = 0;
    unsigned char *before = NULL, *after = NULL;
    EVP_PKEY *k = NULL;
    int nb, na;

    if (x == NULL || (nb = i2d_X509(x, &before)) <= 0)
        goto out;
    if ((k = rsa_key(X509_get_X509_PUBKEY(x))) != NULL && X509_set_pubkey(x, k) == 1 &&
        (na = i2d_X509(x, &after)) > 0 && same_der(after, na, before, (size_t)nb))
        rc = 1;
out:
    ERR_clear_error();
    EVP_PKEY_free(k);
    OPENSSL_free(before);
    OPENSSL_free(after);
    return rc;
}

X509 *
scep_der_cert(const unsigned char **pp, long len)
{
    const unsigned char *start = *pp, *p = *pp;
    X509 *x = scep_der_keyless(ASN1_ITEM_rptr(X509), &p, len);

    if (x != NULL && scep_der_cert_key(x)) {
        *pp = p;
        return x;
    }
    X509_free(x);
    p = start;
    x = d2i_X509(NULL, &p, len);
    if (x != NULL)
        *pp = p;
    return x;
}

enum scep_err
scep_der_req_key(X509_REQ **r, const unsigned char *der, size_t len)
{
    enum scep_err rc = SCEP_E_DER;
    unsigned char *after = NULL;
    const unsigned char *p = der;
    EVP_PKEY *k = NULL;
    X509_REQ *y = NULL;
    int na;

    if (*r == NULL || len == 0 || len > INT_MAX)
        goto out;
    if ((k = rsa_key(X509_REQ_get_X509_PUBKEY(*r))) != NULL && X509_REQ_set_pubkey(*r, k) == 1 &&
        (na = i2d_X509_REQ(*r, &after)) > 0 && same_der(after, na, der, len)) {
        rc = SCEP_OK;
        goto out;
    }
    if ((y = d2i_X509_REQ(NULL, &p, (long)len)) == NULL || p != der + len)
        goto out;
    X509_REQ_free(*r);
    *r = y;
    y = NULL; /* transferred */
    rc = SCEP_OK;
out:
    ERR_clear_error();
    X509_REQ_free(y);
    EVP_PKEY_free(k);
    OPENSSL_free(after);
    return rc;
}
