/*
 * csr.c - PKCS#10 parsing and checks (see csr.h).
 *
 * Must never: accept X509_REQ_verify() == -1 as success (matrix C16), or
 * spend unbounded CPU on a hostile key (matrix C19: sizes and curves are
 * checked before any operation on the key beyond the self-signature).
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <openssl/asn1t.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/sha.h>

#include "scepd/csr.h"
#include "scepd/der.h"
#include "scepd/num.h"

enum scep_err
scep_csr_parse(const unsigned char *der, size_t len, X509_REQ **out)
{
    const unsigned char *p = der;
    X509_REQ *req;

    *out = NULL;
    if (len == 0 || len > INT_MAX)
        return SCEP_E_CSR_PARSE;
    req = scep_der_keyless(ASN1_ITEM_rptr(X509_REQ), &p, (long)len);
    if (req == NULL || p != der + len) {
        X509_REQ_free(req);
        ERR_clear_error();
        return SCEP_E_CSR_PARSE;
    }
    {
        /*
         * DER only (PKCS#10 is DER): a request OpenSSL accepts but encodes
         * differently would be stored as bytes that no longer parse (found
         * by fuzz_csr: signatureAlgorithm parameters "20 00" re-encode as
         * "00 00"; tests/fuzz/crashes/csr-without-challenge-*.der).
         */
        unsigned char *re = NULL;
        int n = i2d_X509_REQ(req, &re);
        int same = n > 0 && (size_t)n == len && memcmp(re, der, len) == 0;
        OPENSSL_free(re);
        if (!same || scep_der_req_key(&req, der, len) != SCEP_OK) {
            X509_REQ_free(req);
            ERR_clear_error();
            return SCEP_E_CSR_PARSE;
        }
    }
    *out = req;
    return SCEP_OK;
}

enum scep_err
scep_csr_check_key(X509_REQ *req)
{
    EVP_PKEY *pk = X509_REQ_get0_pubkey(req);
    enum scep_err rc = SCEP_E_KEY_POLICY;
    BIGNUM *e = NULL;
    char curve[64];
    size_t clen = 0;

    if (pk == NULL)
        return SCEP_E_CSR_PARSE;
    switch (EVP_PKEY_get_base_id(pk)) {
    case EVP_PKEY_RSA: {
        int bits = EVP_PKEY_get_bits(pk);
        if (bits < 2048 || bits > 8192)
            break;
        if (!EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_E, &e))
            break;
        if (!BN_is_odd(e) || BN_num_bits(e) < 17)
            break;
        rc = SCEP_OK;
        break;
    }
    case EVP_PKEY_EC: {
        /*
         * Named curves only (RFC 5480 §2.1.1).  OpenSSL 3 maps explicit
         * parameters equal to a named curve to that curve's name, so the
         * encoded SubjectPublicKeyInfo parameters must be an OID (found by
         * fuzz_csr: tests/fuzz/crashes/policy-csr-ec-explicit-params-p256.der).
         */
        const X509_PUBKEY *spki = X509_REQ_get_X509_PUBKEY(req);
        X509_ALGOR *alg = NULL;
        const void *pval = NULL;
        int ptype = V_ASN1_UNDEF, explicit_params = 0;

        if (spki == NULL || !X509_PUBKEY_get0_param(NULL, NULL, NULL, &alg, spki) || alg == NULL)
            break;
        X509_ALGOR_get0(NULL, &ptype, &pval, alg);
        if (ptype != V_ASN1_OBJECT)
            break;
        if (EVP_PKEY_get_int_param(pk, OSSL_PKEY_PARAM_EC_DECODED_FROM_EXPLICIT_PARAMS,
                                   &explicit_params) &&
            explicit_params != 0)
            break;
        if (!EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, curve, sizeof(curve),
                                            &clen))
            break;
        if (strcmp(curve, "prime256v1") == 0 || strcmp(curve, "secp384r1") == 0 ||
            strcmp(curve, "secp521r1") == 0 || strcmp(curve, "P-256") == 0 ||
            strcmp(curve, "P-384") == 0 || strcmp(curve, "P-521") == 0)
            rc = SCEP_OK;
        break;
    }
    default:
        break;
    }
    BN_free(e);
    ERR_clear_error();
    return rc;
}

enum scep_err
scep_csr_verify_self(X509_REQ *req)
{
    EVP_PKEY *pk = X509_REQ_get0_pubkey(req);
    int r;

    if (pk == NULL)
        return SCEP_E_CSR_SIGNATURE;
    r = X509_REQ_verify(req, pk);
    ERR_clear_error();
    return r == 1 ? SCEP_OK : SCEP_E_CSR_SIGNATURE;
}

enum scep_err
scep_csr_check_pop(X509_REQ *req, X509 *signer)
{
    const X509_PUBKEY *a = X509_REQ_get_X509_PUBKEY(req), *b = X509_get_X509_PUBKEY(signer);
    const unsigned char *ka = NULL, *kb = NULL;
    X509_ALGOR *pa = NULL, *pb = NULL;
    int la = 0, lb = 0;

    /*
     * The same key is the same SubjectPublicKeyInfo: algorithm with its
     * parameters (an EC key's curve) and key bits, compared as encoded
     * (OpenSSL 3.0 would otherwise go through its slow key encoders).
     */
    if (a == NULL || b == NULL || !X509_PUBKEY_get0_param(NULL, &ka, &la, &pa, a) ||
        !X509_PUBKEY_get0_param(NULL, &kb, &lb, &pb, b) || pa == NULL || pb == NULL)
        return SCEP_E_POP;
    if (X509_ALGOR_cmp(pa, pb) != 0 || la != lb || la <= 0 ||
        CRYPTO_memcmp(ka, kb, (size_t)la) != 0)
        return SCEP_E_POP;
    return SCEP_OK;
}

enum scep_err
scep_csr_challenge(X509_REQ *req, char *buf, size_t buflen, size_t *len)
{
    int loc = X509_REQ_get_attr_by_NID(req, NID_pkcs9_challengePassword, -1);
    X509_ATTRIBUTE *a;
    ASN1_TYPE *v;
    unsigned char *utf8 = NULL;
    int n;

    *len = 0;
    if (buflen > 0)
        buf[0] = '\0';
    if (loc < 0)
        return SCEP_E_NO_ENTRY;
    if (X509_REQ_get_attr_by_NID(req, NID_pkcs9_challengePassword, loc) >= 0)
        return SCEP_E_CSR_PARSE;
    a = X509_REQ_get_attr(req, loc);
    if (a == NULL || X509_ATTRIBUTE_count(a) != 1)
        return SCEP_E_CSR_PARSE;
    v = X509_ATTRIBUTE_get0_type(a, 0);
    if (v == NULL)
        return SCEP_E_CSR_PARSE;
    switch (v->type) {
    case V_ASN1_PRINTABLESTRING:
    case V_ASN1_UTF8STRING:
    case V_ASN1_IA5STRING:
    case V_ASN1_T61STRING:
    case V_ASN1_BMPSTRING:
    case V_ASN1_UNIVERSALSTRING:
        break;
    default:
        return SCEP_E_CSR_PARSE;
    }
    n = ASN1_STRING_to_UTF8(&utf8, v->value.asn1_string);
    if (n < 0) {
        ERR_clear_error();
        return SCEP_E_CSR_PARSE;
    }
    if ((size_t)n >= buflen || memchr(utf8, 0, (size_t)n) != NULL) {
        OPENSSL_clear_free(utf8, (size_t)n);
        return SCEP_E_CSR_PARSE;
    }
    memcpy(buf, utf8, (size_t)n);
    buf[n] = '\0';
    *len = (size_t)n;
    OPENSSL_clear_free(utf8, (size_t)n);
    return SCEP_OK;
}

enum scep_err
scep_spki_hash(const X509_PUBKEY *spki, unsigned char out[32])
{
    unsigned char *der = NULL;
    int len = i2d_X509_PUBKEY(spki, &der);

    if (len <= 0) {
        ERR_clear_error();
        return SCEP_E_INTERNAL;
    }
    SHA256(der, (size_t)len, out);
    OPENSSL_free(der);
    return SCEP_OK;
}

enum scep_err
scep_key_hash(EVP_PKEY *pkey, unsigned char out[32])
{
    unsigned char *der = NULL;
    int len = i2d_PUBKEY(pkey, &der);

    if (len <= 0) {
        ERR_clear_error();
        return SCEP_E_INTERNAL;
    }
    SHA256(der, (size_t)len, out);
    OPENSSL_free(der);
    return SCEP_OK;
}

STACK_OF(X509_EXTENSION) * scep_csr_extensions(X509_REQ *req)
{
    STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);

    ERR_clear_error();
    return exts;
}

/*
 * EnrollmentNameValuePair ::= SEQUENCE { name BMPString, value BMPString }
 * (OpenSSL's ASN.1 template macros need the typedef.)
 */
typedef struct scep_nvp_st {
    ASN1_BMPSTRING *name;
    ASN1_BMPSTRING *value;
} SCEP_NVP;

ASN1_SEQUENCE(SCEP_NVP) =
    {
        ASN1_SIMPLE(SCEP_NVP, name, ASN1_BMPSTRING),
        ASN1_SIMPLE(SCEP_NVP, value, ASN1_BMPSTRING),
} static_ASN1_SEQUENCE_END(SCEP_NVP)

    /* UTF-8 of a BMPString into buf; 0 on failure or when too long. */
    static int bmp_text(const ASN1_BMPSTRING *s, char *buf, size_t len)
{
    unsigned char *u = NULL;
    int n = ASN1_STRING_to_UTF8(&u, s);
    int ok = n >= 0 && (size_t)n < len && memchr(u, 0, (size_t)n) == NULL;

    if (ok) {
        memcpy(buf, u, (size_t)n);
        buf[n] = '\0';
    }
    OPENSSL_free(u);
    return ok;
}

enum scep_err
scep_csr_requested_validity(X509_REQ *req, long long *seconds)
{
    int nid = OBJ_txt2nid("1.3.6.1.4.1.311.13.2.1"), loc = -1, i;
    char period[64] = "", units[64] = "";
    long long count = 0, mult;

    *seconds = 0;
    if (nid == NID_undef)
        return SCEP_E_NO_ENTRY;
    while ((loc = X509_REQ_get_attr_by_NID(req, nid, loc)) >= 0) {
        X509_ATTRIBUTE *a = X509_REQ_get_attr(req, loc);
        for (i = 0; a != NULL && i < X509_ATTRIBUTE_count(a); i++) {
            ASN1_TYPE *v = X509_ATTRIBUTE_get0_type(a, i);
            const unsigned char *p;
            SCEP_NVP *nvp;
            char name[64], value[64];
            if (v == NULL || v->type != V_ASN1_SEQUENCE)
                return SCEP_E_CSR_PARSE;
            p = ASN1_STRING_get0_data(v->value.sequence);
            nvp = (SCEP_NVP *)ASN1_item_d2i(NULL, &p, ASN1_STRING_length(v->value.sequence),
                                            ASN1_ITEM_rptr(SCEP_NVP));
            if (nvp == NULL)
                return SCEP_E_CSR_PARSE;
            if (bmp_text(nvp->name, name, sizeof(name)) &&
                bmp_text(nvp->value, value, sizeof(value))) {
                if (strcmp(name, "ValidityPeriod") == 0)
                    snprintf(period, sizeof(period), "%s", value);
                else if (strcmp(name, "ValidityPeriodUnits") == 0)
                    snprintf(units, sizeof(units), "%s", value);
            }
            ASN1_item_free((ASN1_VALUE *)nvp, ASN1_ITEM_rptr(SCEP_NVP));
        }
    }
    ERR_clear_error();
    if (period[0] == '\0' && units[0] == '\0')
        return SCEP_E_NO_ENTRY;
    if (period[0] == '\0')
        snprintf(period, sizeof(period), "Days"); /* the CSP's default unit */
    if (scep_strtonum(units, 1, 100000, &count) != SCEP_OK)
        return SCEP_E_CSR_PARSE;
    if (strcmp(period, "Seconds") == 0)
        mult = 1;
    else if (strcmp(period, "Minutes") == 0)
        mult = 60;
    else if (strcmp(period, "Hours") == 0)
        mult = 3600;
    else if (strcmp(period, "Days") == 0)
        mult = 86400;
    else if (strcmp(period, "Weeks") == 0)
        mult = 7 * 86400;
    else if (strcmp(period, "Months") == 0)
        mult = 30 * 86400;
    else if (strcmp(period, "Years") == 0)
        mult = 365 * 86400;
    else
        return SCEP_E_CSR_PARSE;
    *seconds = count * mult;
    return SCEP_OK;
}

enum scep_err
scep_csr_without_challenge(X509_REQ *req, unsigned char **out, size_t *outlen)
{
    X509_ATTRIBUTE *removed[8];
    int loc, n = 0, i, len;

    *out = NULL;
    *outlen = 0;
    /*
     * Taken out, encoded, put back: X509_REQ_dup() would decode the key
     * again through OpenSSL 3.0's provider decoders (13% of an enrollment,
     * callgrind).  Only the attribute order of req changes.
     */
    while (n < 8 && (loc = X509_REQ_get_attr_by_NID(req, NID_pkcs9_challengePassword, -1)) >= 0)
        removed[n++] = X509_REQ_delete_attr(req, loc);
    if (X509_REQ_get_attr_by_NID(req, NID_pkcs9_challengePassword, -1) >= 0)
        len = -1; /* more than 8: refuse rather than keep one */
    else
        len = i2d_X509_REQ(req, out);
    for (i = 0; i < n; i++) {
        if (removed[i] != NULL && !X509_REQ_add1_attr(req, removed[i]))
            len = -1;
        X509_ATTRIBUTE_free(removed[i]);
    }
    ERR_clear_error();
    if (len <= 0) {
        OPENSSL_free(*out);
        *out = NULL;
        return SCEP_E_INTERNAL;
    }
    *outlen = (size_t)len;
    return SCEP_OK;
}

/* CertificateTemplate ::= SEQUENCE { templateID OID, major INTEGER, minor INTEGER OPTIONAL } */
typedef struct scep_tmpl_st {
    ASN1_OBJECT *id;
    ASN1_INTEGER *major;
    ASN1_INTEGER *minor;
} SCEP_TMPL;

ASN1_SEQUENCE(SCEP_TMPL) =
    {
        ASN1_SIMPLE(SCEP_TMPL, id, ASN1_OBJECT),
        ASN1_SIMPLE(SCEP_TMPL, major, ASN1_INTEGER),
        ASN1_OPT(SCEP_TMPL, minor, ASN1_INTEGER),
} static_ASN1_SEQUENCE_END(SCEP_TMPL)

        enum scep_err scep_csr_template(X509_REQ * req, char *buf, size_t buflen)
{
    STACK_OF(X509_EXTENSION) *exts = scep_csr_extensions(req);
    int name_nid = OBJ_txt2nid("1.3.6.1.4.1.311.20.2"),
        tmpl_nid = OBJ_txt2nid("1.3.6.1.4.1.311.21.7");
    enum scep_err rc = SCEP_E_NO_ENTRY;
    int i;

    if (buflen > 0)
        buf[0] = '\0';
    for (i = 0; exts != NULL && i < sk_X509_EXTENSION_num(exts) && rc == SCEP_E_NO_ENTRY; i++) {
        X509_EXTENSION *e = sk_X509_EXTENSION_value(exts, i);
        int nid = OBJ_obj2nid(X509_EXTENSION_get_object(e));
        const ASN1_OCTET_STRING *v = X509_EXTENSION_get_data(e);
        const unsigned char *p = ASN1_STRING_get0_data(v);
        long len = ASN1_STRING_length(v);

        if (nid != NID_undef && nid == name_nid) {
            ASN1_STRING *str = d2i_ASN1_PRINTABLE(NULL, &p, len);
            unsigned char *u = NULL;
            int n = str != NULL ? ASN1_STRING_to_UTF8(&u, str) : -1;
            rc = n > 0 && (size_t)n < buflen && memchr(u, 0, (size_t)n) == NULL ? SCEP_OK
                                                                                : SCEP_E_CSR_PARSE;
            if (rc == SCEP_OK) {
                memcpy(buf, u, (size_t)n);
                buf[n] = '\0';
            }
            OPENSSL_free(u);
            ASN1_STRING_free(str);
        } else if (nid != NID_undef && nid == tmpl_nid) {
            SCEP_TMPL *t = (SCEP_TMPL *)ASN1_item_d2i(NULL, &p, len, ASN1_ITEM_rptr(SCEP_TMPL));
            int n = t != NULL ? OBJ_obj2txt(buf, (int)buflen, t->id, 1) : -1;
            rc = n > 0 && (size_t)n < buflen ? SCEP_OK : SCEP_E_CSR_PARSE; /* not truncated */
            ASN1_item_free((ASN1_VALUE *)t, ASN1_ITEM_rptr(SCEP_TMPL));
        }
    }
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    ERR_clear_error();
    return rc;
}
