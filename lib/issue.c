/*
 * issue.c - build and sign end-entity certificates (see issue.h).
 *
 * Must never: copy an extension from the CSR wholesale, issue a serial that
 * is not fresh CSPRNG output, or let notAfter pass the CA's notAfter.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "scepd/buf.h"
#include "scepd/csr.h"
#include "scepd/issue.h"

static int
string_ok(const ASN1_STRING *s, size_t maxchars)
{
    unsigned char *u = NULL;
    int n = ASN1_STRING_to_UTF8(&u, s);
    int ok = n > 0 && memchr(u, 0, (size_t)n) == NULL;
    size_t chars = 0;
    int i;

    for (i = 0; ok && i < n; i++) {
        if ((u[i] & 0xc0) != 0x80)
            chars++;
        if (u[i] < 0x20 || u[i] == 0x7f)
            ok = 0; /* control characters have no place in a name */
        /* nor C1 controls, U+0080..U+009F (UTF-8 C2 80..C2 9F; found by fuzz_csr review) */
        if (u[i] == 0xc2 && i + 1 < n && u[i + 1] >= 0x80 && u[i + 1] <= 0x9f)
            ok = 0;
    }
    if (maxchars && chars > maxchars)
        ok = 0;
    OPENSSL_free(u);
    ERR_clear_error();
    return ok;
}

static GENERAL_NAMES *
csr_sans(X509_REQ *req, int *err)
{
    STACK_OF(X509_EXTENSION) *exts = scep_csr_extensions(req);
    GENERAL_NAMES *gns = NULL;
    int crit = -1, idx = -1;

    *err = 0;
    if (exts == NULL)
        return NULL;
    gns = X509V3_get_d2i(exts, NID_subject_alt_name, &crit, &idx);
    if (gns == NULL && crit != -1)
        *err = 1; /* present but unparseable, or repeated */
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    ERR_clear_error();
    return gns;
}

int
scep_san_uri_ok(const ASN1_STRING *s)
{
    size_t plen = strlen(SCEP_SID_URI_PREFIX);

    if (!string_ok(s, 2048))
        return 0;
    /* a URI has no whitespace: " tag:microsoft.com,..." must not slip past the check below */
    if (memchr(ASN1_STRING_get0_data(s), ' ', (size_t)ASN1_STRING_length(s)) != NULL)
        return 0;
    /* A SID URI is a strong AD mapping: only an authorization may add it. */
    if ((size_t)ASN1_STRING_length(s) >= plen &&
        strncasecmp((const char *)ASN1_STRING_get0_data(s), SCEP_SID_URI_PREFIX, plen) == 0)
        return 0;
    return 1;
}

static int
san_ok(const GENERAL_NAME *g)
{
    switch (g->type) {
    case GEN_DNS:
    case GEN_EMAIL:
        return string_ok(g->d.ia5, 253);
    case GEN_URI:
        return scep_san_uri_ok(g->d.uniformResourceIdentifier);
    case GEN_IPADD:
        return ASN1_STRING_length(g->d.iPAddress) == 4 || ASN1_STRING_length(g->d.iPAddress) == 16;
    default:
        return 0; /* otherName (UPN), directoryName, ... come from policy only */
    }
}

enum scep_err
scep_issue_check_names(X509_REQ *req)
{
    const X509_NAME *subj = X509_REQ_get_subject_name(req);
    GENERAL_NAMES *gns;
    int i, err, nsan = 0;
    enum scep_err rc = SCEP_E_NAME_POLICY;

    for (i = 0; subj != NULL && i < X509_NAME_entry_count(subj); i++) {
        const X509_NAME_ENTRY *e = X509_NAME_get_entry(subj, i);
        int nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(e));
        if (!string_ok(X509_NAME_ENTRY_get_data(e), nid == NID_commonName ? 64 : 256))
            return SCEP_E_NAME_POLICY;
    }
    gns = csr_sans(req, &err);
    if (err)
        goto out;
    for (i = 0; gns != NULL && i < sk_GENERAL_NAME_num(gns); i++) {
        if (!san_ok(sk_GENERAL_NAME_value(gns, i)))
            goto out;
        nsan++;
    }
    if ((subj == NULL || X509_NAME_entry_count(subj) == 0) && nsan == 0)
        goto out;
    rc = SCEP_OK;
out:
    GENERAL_NAMES_free(gns);
    return rc;
}

static int
add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
    int ok = ext != NULL && X509_add_ext(x, ext, -1);

    X509_EXTENSION_free(ext);
    return ok;
}

void
scep_serial_hex(const X509 *x, char *buf, size_t buflen)
{
    const ASN1_INTEGER *s = X509_get0_serialNumber(x);
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    int i, n = ASN1_STRING_length(s);
    const unsigned char *d = ASN1_STRING_get0_data(s);

    for (i = 0; i < n && o + 3 <= buflen; i++) {
        buf[o++] = hex[d[i] >> 4];
        buf[o++] = hex[d[i] & 15];
    }
    if (buflen > 0)
        buf[o < buflen ? o : buflen - 1] = '\0';
}

void
scep_cert_thumbprints(const X509 *x, char sha1[41], char sha256[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;

    if (X509_digest(x, EVP_sha1(), md, &n) == 1)
        scep_hex(md, n, sha1);
    else
        sha1[0] = '\0';
    if (X509_digest(x, EVP_sha256(), md, &n) == 1)
        scep_hex(md, n, sha256);
    else
        sha256[0] = '\0';
}

static char *
bio_string(BIO *b)
{
    char *data = NULL, *s;
    long n = BIO_get_mem_data(b, &data);

    if (n < 0)
        return NULL;
    if ((s = malloc((size_t)n + 1)) == NULL)
        return NULL;
    if (n > 0)
        memcpy(s, data, (size_t)n);
    s[n] = '\0';
    return s;
}

char *
scep_name_to_text(const X509_NAME *n)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *s = NULL;

    if (b == NULL)
        return NULL;
    if (X509_NAME_print_ex(b, n, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0)
        s = bio_string(b);
    BIO_free(b);
    return s;
}

char *
scep_cert_sans_text(const X509 *x)
{
    GENERAL_NAMES *gns = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    BIO *b = BIO_new(BIO_s_mem());
    char *s = NULL;
    int i;

    if (b == NULL)
        goto out;
    for (i = 0; gns != NULL && i < sk_GENERAL_NAME_num(gns); i++) {
        if (i > 0)
            BIO_puts(b, ", ");
        GENERAL_NAME_print(b, sk_GENERAL_NAME_value(gns, i));
    }
    s = bio_string(b);
out:
    BIO_free(b);
    GENERAL_NAMES_free(gns);
    ERR_clear_error();
    return s;
}

/*
 * The certificate's SubjectPublicKeyInfo is the CSR's, copied as encoded:
 * X509_set_pubkey() would re-encode and re-decode the key through OpenSSL
 * 3.0's provider encoders and decoders, the costliest step of an issuance
 * after the RSA operations themselves (measured with perf; issue 3).
 */
static int
copy_spki(X509 *x, X509_REQ *req)
{
    const X509_PUBKEY *src = X509_REQ_get_X509_PUBKEY(req);
    X509_PUBKEY *dst = X509_get_X509_PUBKEY(x);
    ASN1_OBJECT *alg = NULL, *algcopy = NULL;
    const unsigned char *key = NULL;
    unsigned char *keycopy = NULL;
    X509_ALGOR *pa = NULL;
    const ASN1_OBJECT *pobj = NULL;
    const void *pval = NULL;
    void *pvalcopy = NULL;
    int keylen = 0, ptype = V_ASN1_UNDEF;

    if (src == NULL || dst == NULL || !X509_PUBKEY_get0_param(&alg, &key, &keylen, &pa, src) ||
        keylen <= 0)
        return 0;
    X509_ALGOR_get0(&pobj, &ptype, &pval, pa);
    if (ptype == V_ASN1_OBJECT)
        pvalcopy = OBJ_dup(pval);
    else if (ptype == V_ASN1_SEQUENCE || ptype == V_ASN1_OCTET_STRING)
        pvalcopy = ASN1_STRING_dup(pval);
    else if (ptype != V_ASN1_NULL && ptype != V_ASN1_UNDEF)
        return 0;
    if ((ptype == V_ASN1_OBJECT || ptype == V_ASN1_SEQUENCE || ptype == V_ASN1_OCTET_STRING) &&
        pvalcopy == NULL)
        return 0;
    algcopy = OBJ_dup(alg);
    keycopy = OPENSSL_memdup(key, (size_t)keylen);
    if (algcopy == NULL || keycopy == NULL ||
        !X509_PUBKEY_set0_param(dst, algcopy, ptype, pvalcopy, keycopy, keylen)) {
        ASN1_OBJECT_free(algcopy);
        OPENSSL_free(keycopy);
        if (ptype == V_ASN1_OBJECT)
            ASN1_OBJECT_free(pvalcopy);
        else
            ASN1_STRING_free(pvalcopy);
        return 0;
    }
    return 1;
}

/*
 * The Windows SID, from an authorization only: a SAN URI
 * tag:microsoft.com,2022-09-14:sid:<SID> (Intune's strong mapping for
 * offline templates) and the szOID_NTDS_CA_SECURITY_EXT extension
 * 1.3.6.1.4.1.311.25.2, a GeneralNames with one otherName of type
 * 1.3.6.1.4.1.311.25.2.1 carrying the SID as an OCTET STRING (KB5014754).
 */
static int
add_sid(X509 *x, GENERAL_NAMES **sans, const char *sid)
{
    char uri[160];
    GENERAL_NAME *g = NULL, *on = NULL;
    GENERAL_NAMES *ext = NULL;
    ASN1_IA5STRING *ia5 = NULL;
    ASN1_OCTET_STRING *os = NULL;
    ASN1_TYPE *val = NULL;
    ASN1_OBJECT *type = NULL;
    unsigned char *der = NULL;
    ASN1_OCTET_STRING *extval = NULL;
    X509_EXTENSION *e = NULL;
    int n, ok = 0;

    snprintf(uri, sizeof(uri), "%s%s", SCEP_SID_URI_PREFIX, sid);
    if (*sans == NULL && (*sans = GENERAL_NAMES_new()) == NULL)
        goto out;
    if ((g = GENERAL_NAME_new()) == NULL || (ia5 = ASN1_IA5STRING_new()) == NULL ||
        !ASN1_STRING_set(ia5, uri, -1))
        goto out;
    GENERAL_NAME_set0_value(g, GEN_URI, ia5);
    ia5 = NULL;
    if (!sk_GENERAL_NAME_push(*sans, g))
        goto out;
    g = NULL;
    /* the SID extension */
    if ((ext = GENERAL_NAMES_new()) == NULL || (on = GENERAL_NAME_new()) == NULL ||
        (os = ASN1_OCTET_STRING_new()) == NULL ||
        !ASN1_OCTET_STRING_set(os, (const unsigned char *)sid, (int)strlen(sid)) ||
        (val = ASN1_TYPE_new()) == NULL ||
        (type = OBJ_txt2obj("1.3.6.1.4.1.311.25.2.1", 1)) == NULL)
        goto out;
    ASN1_TYPE_set(val, V_ASN1_OCTET_STRING, os);
    os = NULL;
    if (!GENERAL_NAME_set0_othername(on, type, val))
        goto out;
    type = NULL;
    val = NULL;
    if (!sk_GENERAL_NAME_push(ext, on))
        goto out;
    on = NULL;
    if ((n = i2d_GENERAL_NAMES(ext, &der)) <= 0 || (extval = ASN1_OCTET_STRING_new()) == NULL ||
        !ASN1_OCTET_STRING_set(extval, der, n))
        goto out;
    {
        ASN1_OBJECT *eobj = OBJ_txt2obj("1.3.6.1.4.1.311.25.2", 1);
        e = eobj != NULL ? X509_EXTENSION_create_by_OBJ(NULL, eobj, 0, extval) : NULL;
        ASN1_OBJECT_free(eobj);
    }
    ok = e != NULL && X509_add_ext(x, e, -1) == 1;
out:
    X509_EXTENSION_free(e);
    ASN1_OCTET_STRING_free(extval);
    OPENSSL_free(der);
    ASN1_OBJECT_free(type);
    ASN1_TYPE_free(val);
    ASN1_OCTET_STRING_free(os);
    GENERAL_NAME_free(on);
    GENERAL_NAMES_free(ext);
    ASN1_IA5STRING_free(ia5);
    GENERAL_NAME_free(g);
    return ok;
}

static const EVP_MD *
sign_md(EVP_PKEY *ca_key)
{
    if (EVP_PKEY_get_base_id(ca_key) == EVP_PKEY_EC && EVP_PKEY_get_bits(ca_key) > 256)
        return EVP_sha384();
    return EVP_sha256();
}

enum scep_err
scep_issue_cert(X509_REQ *req, const struct scep_issue_opts *o, X509 **out,
                char serial_hex[SCEP_SERIAL_HEX])
{
    enum scep_err rc = SCEP_E_INTERNAL;
    unsigned char sb[SCEP_SERIAL_BYTES];
    X509 *x = NULL;
    BIGNUM *bn = NULL;
    ASN1_INTEGER *serial = NULL;
    GENERAL_NAMES *gns = NULL;
    X509V3_CTX ctx;
    EVP_PKEY *pub = X509_REQ_get0_pubkey(req);
    time_t now = time(NULL), nb, na, ca_na;
    int err;
    const char *ku;
    char kubuf[300];

    *out = NULL;
    serial_hex[0] = '\0';
    if (pub == NULL || o->validity_days < 1 || o->validity_days > 36500)
        return SCEP_E_INVALID_ARG;
    if (RAND_bytes(sb, sizeof(sb)) != 1)
        goto out;
    /* Positive and always 16 octets: top bit clear, next bit set. */
    sb[0] = (unsigned char)((sb[0] & 0x7f) | 0x40);
    if ((bn = BN_bin2bn(sb, sizeof(sb), NULL)) == NULL ||
        (serial = BN_to_ASN1_INTEGER(bn, NULL)) == NULL)
        goto out;
    if ((x = X509_new()) == NULL || !X509_set_version(x, X509_VERSION_3) ||
        !X509_set_serialNumber(x, serial) ||
        !X509_set_issuer_name(x, X509_get_subject_name(o->ca_cert)) ||
        !X509_set_subject_name(x,
                               o->subject != NULL ? o->subject : X509_REQ_get_subject_name(req)) ||
        !copy_spki(x, req))
        goto out;
    nb = now - SCEP_BACKDATE_SECONDS;
    na = now + (time_t)o->validity_days * 86400;
    /* a shorter validity the client asked for (Windows ValidPeriod) is honoured */
    if (o->validity_seconds > 0 && o->validity_seconds < (long long)o->validity_days * 86400)
        na = now + (time_t)o->validity_seconds;
    {
        /* Never outlive the issuer (matrix P8). */
        const ASN1_TIME *cna = X509_get0_notAfter(o->ca_cert);
        struct tm tm;
        if (ASN1_TIME_to_tm(cna, &tm) != 1)
            goto out;
        ca_na = timegm(&tm);
        if (na > ca_na)
            na = ca_na;
        if (na <= now) {
            rc = SCEP_E_SIGN; /* the CA has expired: nothing can be issued */
            goto out;
        }
    }
    if (X509_time_adj_ex(X509_getm_notBefore(x), 0, 0, &nb) == NULL ||
        X509_time_adj_ex(X509_getm_notAfter(x), 0, 0, &na) == NULL)
        goto out;
    X509V3_set_ctx(&ctx, o->ca_cert, x, NULL, NULL, 0);
    if (o->key_usage != NULL && o->key_usage[0] != '\0') {
        snprintf(kubuf, sizeof(kubuf), "critical,%s", o->key_usage);
        ku = kubuf;
    } else
        ku = EVP_PKEY_get_base_id(pub) == EVP_PKEY_RSA ? "critical,digitalSignature,keyEncipherment"
                                                       : "critical,digitalSignature,keyAgreement";
    if (!add_ext(x, &ctx, NID_basic_constraints, "critical,CA:FALSE") ||
        !add_ext(x, &ctx, NID_key_usage, ku) ||
        !add_ext(x, &ctx, NID_ext_key_usage, o->eku != NULL ? o->eku : "clientAuth") ||
        !add_ext(x, &ctx, NID_subject_key_identifier, "hash") ||
        !add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always"))
        goto out;
    if (o->cdp_url != NULL) {
        char v[700];
        snprintf(v, sizeof(v), "URI:%s", o->cdp_url);
        if (!add_ext(x, &ctx, NID_crl_distribution_points, v))
            goto out;
    }
    if (o->aia_url != NULL && o->aia_url[0] != '\0') {
        char v[700];
        snprintf(v, sizeof(v), "caIssuers;URI:%s", o->aia_url);
        if (!add_ext(x, &ctx, NID_info_access, v))
            goto out;
    }
    if (o->use_sans) {
        int i;
        if ((gns = GENERAL_NAMES_new()) == NULL)
            goto out;
        for (i = 0; o->sans != NULL && i < sk_GENERAL_NAME_num(o->sans); i++) {
            GENERAL_NAME *d = GENERAL_NAME_dup(sk_GENERAL_NAME_value(o->sans, i));
            if (d == NULL || !sk_GENERAL_NAME_push(gns, d)) {
                GENERAL_NAME_free(d);
                goto out;
            }
        }
    } else {
        gns = csr_sans(req, &err);
        if (err) {
            rc = SCEP_E_NAME_POLICY;
            goto out;
        }
    }
    if (o->sid != NULL && o->sid[0] != '\0' && !add_sid(x, &gns, o->sid))
        goto out;
    if (gns != NULL && sk_GENERAL_NAME_num(gns) > 0 &&
        X509_add1_ext_i2d(x, NID_subject_alt_name, gns, 0, X509V3_ADD_DEFAULT) != 1)
        goto out;
    if (X509_sign(x, o->ca_key, sign_md(o->ca_key)) <= 0) {
        rc = SCEP_E_SIGN;
        goto out;
    }
    scep_serial_hex(x, serial_hex, SCEP_SERIAL_HEX);
    *out = x;
    x = NULL; /* transferred */
    rc = SCEP_OK;
out:
    ERR_clear_error();
    GENERAL_NAMES_free(gns);
    ASN1_INTEGER_free(serial);
    BN_free(bn);
    X509_free(x);
    OPENSSL_cleanse(sb, sizeof(sb));
    return rc;
}
