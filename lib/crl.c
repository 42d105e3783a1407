/*
 * crl.c - build and sign CRLs (see crl.h).
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "scepd/crl.h"

static const char *const reasons[] = {
    "unspecified",   "keyCompromise",        "cACompromise",    "affiliationChanged",
    "superseded",    "cessationOfOperation", "certificateHold", NULL,
    "removeFromCRL", "privilegeWithdrawn",   "aACompromise",
};

int
scep_crl_reason_code(const char *name)
{
    size_t i;

    for (i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
        if (reasons[i] != NULL && strcmp(reasons[i], name) == 0 && i != 6 && i != 8)
            return (int)i; /* certificateHold and removeFromCRL are not offered */
    return -1;
}

const char *
scep_crl_reason_name(int code)
{
    if (code < 0 || (size_t)code >= sizeof(reasons) / sizeof(reasons[0]) || reasons[code] == NULL)
        return "unspecified";
    return reasons[code];
}

static int
add_revoked(X509_CRL *crl, const struct scep_revoked *r)
{
    X509_REVOKED *rev = X509_REVOKED_new();
    BIGNUM *bn = NULL;
    ASN1_INTEGER *serial = NULL;
    ASN1_TIME *when = NULL;
    ASN1_ENUMERATED *reason = NULL;
    time_t t = (time_t)r->revoked_at;
    int ok = 0;

    if (rev == NULL || BN_hex2bn(&bn, r->serial) == 0 ||
        (serial = BN_to_ASN1_INTEGER(bn, NULL)) == NULL ||
        !X509_REVOKED_set_serialNumber(rev, serial) || (when = ASN1_TIME_set(NULL, t)) == NULL ||
        !X509_REVOKED_set_revocationDate(rev, when))
        goto out;
    if (r->reason > 0) {
        if ((reason = ASN1_ENUMERATED_new()) == NULL || !ASN1_ENUMERATED_set(reason, r->reason) ||
            !X509_REVOKED_add1_ext_i2d(rev, NID_crl_reason, reason, 0, 0))
            goto out;
    }
    if (!X509_CRL_add0_revoked(crl, rev))
        goto out;
    rev = NULL; /* transferred */
    ok = 1;
out:
    ASN1_ENUMERATED_free(reason);
    ASN1_TIME_free(when);
    ASN1_INTEGER_free(serial);
    BN_free(bn);
    X509_REVOKED_free(rev);
    return ok;
}

enum scep_err
scep_crl_build(X509 *ca_cert, EVP_PKEY *ca_key, int64_t number, const struct scep_revoked *revoked,
               size_t n, time_t now, unsigned char **der, size_t *der_len)
{
    enum scep_err rc = SCEP_E_INTERNAL;
    X509_CRL *crl = NULL;
    ASN1_TIME *t1 = NULL, *t2 = NULL;
    ASN1_INTEGER *num = NULL;
    AUTHORITY_KEYID *akid = NULL;
    X509V3_CTX ctx;
    X509_EXTENSION *ext = NULL;
    unsigned char *out = NULL;
    int len;
    size_t i;

    *der = NULL;
    *der_len = 0;
    if ((crl = X509_CRL_new()) == NULL || !X509_CRL_set_version(crl, X509_CRL_VERSION_2) ||
        !X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca_cert)) ||
        (t1 = ASN1_TIME_set(NULL, now)) == NULL ||
        (t2 = ASN1_TIME_set(NULL, now + SCEP_CRL_VALIDITY_SECONDS)) == NULL ||
        !X509_CRL_set1_lastUpdate(crl, t1) || !X509_CRL_set1_nextUpdate(crl, t2))
        goto out;
    for (i = 0; i < n; i++)
        if (!add_revoked(crl, &revoked[i]))
            goto out;
    if (!X509_CRL_sort(crl))
        goto out;
    if ((num = ASN1_INTEGER_new()) == NULL || !ASN1_INTEGER_set_int64(num, number) ||
        !X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0, 0))
        goto out;
    X509V3_set_ctx(&ctx, ca_cert, NULL, NULL, crl, 0);
    if ((ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_authority_key_identifier, "keyid:always")) ==
            NULL ||
        !X509_CRL_add_ext(crl, ext, -1))
        goto out;
    if (X509_CRL_sign(crl, ca_key,
                      EVP_PKEY_get_base_id(ca_key) == EVP_PKEY_EC && EVP_PKEY_get_bits(ca_key) > 256
                          ? EVP_sha384()
                          : EVP_sha256()) <= 0) {
        rc = SCEP_E_SIGN;
        goto out;
    }
    if ((len = i2d_X509_CRL(crl, &out)) <= 0)
        goto out;
    if ((*der = malloc((size_t)len)) == NULL) {
        rc = SCEP_E_NOMEM;
        goto out;
    }
    memcpy(*der, out, (size_t)len);
    *der_len = (size_t)len;
    rc = SCEP_OK;
out:
    ERR_clear_error();
    OPENSSL_free(out);
    X509_EXTENSION_free(ext);
    AUTHORITY_KEYID_free(akid);
    ASN1_INTEGER_free(num);
    ASN1_TIME_free(t1);
    ASN1_TIME_free(t2);
    X509_CRL_free(crl);
    return rc;
}
