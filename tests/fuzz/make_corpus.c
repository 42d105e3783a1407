/*
 * make_corpus.c - writes the generated part of the fuzz seed corpus:
 *
 *   corpus/fuzz_csr/       PKCS#10 variants (keys, challenge encodings, SANs)
 *   corpus/fuzz_pkimsg/    PKCSReq/RenewalReq/... pkiMessages encrypted to
 *                          keys/ra.crt (some to keys/ca.crt) with every
 *                          cipher and key transport scepd accepts
 *   corpus/fuzz_envelope/  the pkcsPKIEnvelope of each of those
 *   corpus/fuzz_certrep/   CertReps signed by keys/ra.key answering the
 *                          fixed request of fuzz_certrep.c
 *   corpus/fuzz_pkimsg_signed/, corpus/fuzz_certrep_signed/
 *                          the same requests and replies in the "signed"
 *                          input format of fuzzutil.h (attributes + eContent)
 *   corpus/fuzz_policy/    CSRs with the subjects, SANs (SID URIs too), EKU,
 *                          key usage, CA and SID extensions policy decides
 *                          on, behind the two selector bytes of
 *                          fuzz_policy.c, plus the real-* CSRs of fuzz_csr
 *
 * Usage: make_corpus OUTDIR [ms|policy] (the corpus root; "ms": only the
 * Windows-style CSRs of make_ms_csrs; "policy": only corpus/fuzz_policy/).  Run by hand when the
 * message formats change; the output is committed, so the run need not be reproducible (encryption
 * is randomized).  Real client messages are captured separately (capture_seeds.sh).  Keys come from
 * $SCEPD_FUZZ_KEYS.
 *
 * Trusts everything: it is a test tool, never linked into scepd.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include "fuzzutil.h"
#include "scepd/certrep.h"
#include "scepd/client.h"
#include "scepd/oids.h"
#include "scepd/pki.h"
#include "scepd/pkimsg.h"

static const char *outdir;
static const struct fuzz_keys *keys;

static void
die(const char *what)
{
    fprintf(stderr, "make_corpus: %s\n", what);
    ERR_print_errors_fp(stderr);
    exit(1);
}

static void
mkdir_p(const char *sub)
{
    char path[4096];

    snprintf(path, sizeof(path), "%s/%s", outdir, sub);
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        die(path);
}

static void
write_file(const char *sub, const char *name, const unsigned char *p, size_t len)
{
    char path[4096];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s/%s", outdir, sub, name);
    if ((f = fopen(path, "wb")) == NULL || fwrite(p, 1, len, f) != len || fclose(f) != 0)
        die(path);
}

/* A seed in the "signed" format of fuzzutil.h. */
struct enc {
    unsigned char *p;
    size_t n;
};

static void
enc_put(struct enc *e, const void *p, size_t len)
{
    if ((e->p = realloc(e->p, e->n + len + 1)) == NULL)
        die("realloc");
    memcpy(e->p + e->n, p, len);
    e->n += len;
}

static void
enc_byte(struct enc *e, unsigned v)
{
    unsigned char b = (unsigned char)v;

    enc_put(e, &b, 1);
}

/* One attribute slot with one value (absent when p is NULL). */
static void
enc_attr(struct enc *e, int type, const void *p, size_t len)
{
    if (p == NULL) {
        enc_byte(e, 0);
        return;
    }
    if (len > 255)
        die("enc_attr: value too long");
    enc_byte(e, 1);
    enc_byte(e, (unsigned)type);
    enc_byte(e, (unsigned)len);
    enc_put(e, p, len);
}

struct signed_seed {
    unsigned md;         /* 0 SHA-256, 1 SHA-1, ... (fuzzutil.h) */
    unsigned content;    /* 0 rest, 1 empty, 2 absent, 3 rest as envelopedData */
    const char *msgtype; /* PrintableString values; NULL: absent */
    const char *status;
    const char *fail_info;
    const unsigned char *sender_nonce;
    size_t sender_nonce_len;
    const unsigned char *recipient_nonce;
    size_t recipient_nonce_len;
    int txid_type;
    const char *txid;
    const char *fail_text;
};

static void
write_signed(const char *sub, const char *name, const struct signed_seed *s,
             const unsigned char *content, size_t clen)
{
    struct enc e = {NULL, 0};

    enc_byte(&e, s->md);
    enc_byte(&e, s->content);
    enc_attr(&e, FUZZ_TYPE_PRINTABLE, s->msgtype, s->msgtype ? strlen(s->msgtype) : 0);
    enc_attr(&e, FUZZ_TYPE_PRINTABLE, s->status, s->status ? strlen(s->status) : 0);
    enc_attr(&e, FUZZ_TYPE_PRINTABLE, s->fail_info, s->fail_info ? strlen(s->fail_info) : 0);
    enc_attr(&e, FUZZ_TYPE_OCTET, s->sender_nonce, s->sender_nonce_len);
    enc_attr(&e, FUZZ_TYPE_OCTET, s->recipient_nonce, s->recipient_nonce_len);
    enc_attr(&e, s->txid_type, s->txid, s->txid ? strlen(s->txid) : 0);
    enc_attr(&e, FUZZ_TYPE_UTF8, s->fail_text, s->fail_text ? strlen(s->fail_text) : 0);
    if (content != NULL)
        enc_put(&e, content, clen);
    write_file(sub, name, e.p, e.n);
    free(e.p);
}

static const unsigned char nonce16[16] = "0123456789abcdef";

static void
write_req(const char *name, X509_REQ *req, unsigned char **der, size_t *len)
{
    unsigned char *p = NULL;
    int n = i2d_X509_REQ(req, &p);

    if (n <= 0)
        die("i2d_X509_REQ");
    write_file("fuzz_csr", name, p, (size_t)n);
    if (der != NULL) {
        *der = p;
        *len = (size_t)n;
    } else {
        OPENSSL_free(p);
    }
}

/* A subjectAltName with one URI, taken as is. */
static X509_EXTENSION *
uri_san(const char *uri)
{
    GENERAL_NAMES *gns = GENERAL_NAMES_new();
    GENERAL_NAME *g = GENERAL_NAME_new();
    ASN1_IA5STRING *s = ASN1_IA5STRING_new();
    X509_EXTENSION *ext;

    if (gns == NULL || g == NULL || s == NULL || !ASN1_STRING_set(s, uri, -1))
        die("uri_san");
    GENERAL_NAME_set0_value(g, GEN_URI, s);
    if (!sk_GENERAL_NAME_push(gns, g))
        die("uri_san push");
    ext = X509V3_EXT_i2d(NID_subject_alt_name, 0, gns);
    GENERAL_NAMES_free(gns);
    return ext;
}

/* A CSR with a free-form SAN value (X509V3 config syntax) and attributes. */
static X509_REQ *
csr_custom(EVP_PKEY *key, const char *dn, const char *san, int chal_type, const void *chal,
           int chal_len, int chal_twice)
{
    X509_REQ *req = NULL;
    X509_NAME *name = NULL;
    STACK_OF(X509_EXTENSION) *exts = NULL;
    X509_EXTENSION *ext;

    if (strncmp(dn, "RAWCN:", 6) == 0) {
        /* A UTF8String CN as is: no upper bound, control characters kept. */
        if ((name = X509_NAME_new()) == NULL ||
            !X509_NAME_add_entry_by_NID(name, NID_commonName, V_ASN1_UTF8STRING,
                                        (const unsigned char *)dn + 6, -1, -1, 0))
            die(dn);
    } else if (*dn == '\0' ? (name = X509_NAME_new()) == NULL
                           : scep_pki_parse_dn(dn, &name) != SCEP_OK) {
        die(dn);
    }
    if ((req = X509_REQ_new()) == NULL || !X509_REQ_set_version(req, X509_REQ_VERSION_1) ||
        !X509_REQ_set_subject_name(req, name) || !X509_REQ_set_pubkey(req, key))
        die("X509_REQ");
    if (chal != NULL && chal_twice) {
        /*
         * OpenSSL 3 refuses a repeated attribute, so make a duplicate-sized
         * unstructuredName (1.2.840.113549.1.9.2) that the caller patches
         * into a second challengePassword (…9.7) after signing.
         */
        if (!X509_REQ_add1_attr_by_NID(req, NID_pkcs9_unstructuredName, chal_type, chal, chal_len))
            die("unstructuredName");
    }
    if (chal != NULL) {
        X509_ATTRIBUTE *a = X509_ATTRIBUTE_create_by_NID(NULL, NID_pkcs9_challengePassword,
                                                         chal_type, chal, chal_len);
        /* chal_twice also makes the attribute two-valued (a SET of 2). */
        if (a == NULL || (chal_twice && !X509_ATTRIBUTE_set1_data(a, chal_type, chal, chal_len)) ||
            !X509_REQ_add1_attr(req, a))
            die("challengePassword");
        X509_ATTRIBUTE_free(a);
    }
    if (san != NULL) {
        X509V3_CTX ctx;
        X509V3_set_ctx(&ctx, NULL, NULL, req, NULL, 0);
        if (strncmp(san, "RAWURI:", 7) == 0)
            ext = uri_san(san + 7); /* the config syntax splits at ',' */
        else
            ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_alt_name, san);
        if ((exts = sk_X509_EXTENSION_new_null()) == NULL || ext == NULL ||
            !sk_X509_EXTENSION_push(exts, ext) || !X509_REQ_add_extensions(req, exts))
            die(san);
    }
    if (X509_REQ_sign(req, key, EVP_sha256()) <= 0)
        die("X509_REQ_sign");
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    X509_NAME_free(name);
    return req;
}

static EVP_PKEY *
rsa_key(unsigned bits, unsigned long e)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    EVP_PKEY *k = NULL;
    BIGNUM *bn = BN_new();

    if (ctx == NULL || bn == NULL || !BN_set_word(bn, e) || EVP_PKEY_keygen_init(ctx) <= 0 ||
        EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, (int)bits) <= 0 ||
        EVP_PKEY_CTX_set1_rsa_keygen_pubexp(ctx, bn) <= 0 || EVP_PKEY_keygen(ctx, &k) <= 0)
        die("RSA keygen");
    BN_free(bn);
    EVP_PKEY_CTX_free(ctx);
    return k;
}

/* The CSR seeds; returns the main RSA CSR (client key) and an EC one. */
static void
make_csrs(unsigned char **main_der, size_t *main_len, unsigned char **ec_der, size_t *ec_len,
          EVP_PKEY *ec)
{
    static const unsigned char bmp[] = {0, 'p', 0, 0xe4, 0, 's', 0, 's'};
    static const unsigned char univ[] = {0, 0, 0, 'p', 0, 0, 0x20, 0xac};
    static const unsigned char nul[] = {'a', 0, 'b'};
    const char *utf8 = "p\xc3\xa4ssw\xc3\xb6rd";
    EVP_PKEY *k;
    X509_REQ *r;

    mkdir_p("fuzz_csr");
    if (scep_client_make_csr(keys->client_key, "CN=fuzz-device,O=scepd tests", "secret-123",
                             "device.example.com", &r) != SCEP_OK)
        die("make_csr main");
    write_req("rsa2048-challenge-san.der", r, main_der, main_len);
    X509_REQ_free(r);

    if (scep_client_make_csr(ec, "CN=ec-device", "secret-123", NULL, &r) != SCEP_OK)
        die("make_csr ec");
    write_req("ec-p256-challenge.der", r, ec_der, ec_len);
    X509_REQ_free(r);

    if (scep_client_make_csr(keys->client_key, "/CN=slash-form/OU=unit/C=DE", NULL, NULL, &r) !=
        SCEP_OK)
        die("make_csr plain");
    write_req("rsa-no-challenge.der", r, NULL, NULL);
    X509_REQ_free(r);

    r = csr_custom(keys->client_key, "CN=utf8", NULL, MBSTRING_UTF8, utf8, -1, 0);
    write_req("challenge-utf8.der", r, NULL, NULL);
    X509_REQ_free(r);
    r = csr_custom(keys->client_key, "CN=bmp", NULL, V_ASN1_BMPSTRING, bmp, sizeof(bmp), 0);
    write_req("challenge-bmp.der", r, NULL, NULL);
    X509_REQ_free(r);
    r = csr_custom(keys->client_key, "CN=univ", NULL, V_ASN1_UNIVERSALSTRING, univ, sizeof(univ),
                   0);
    write_req("challenge-universal.der", r, NULL, NULL);
    X509_REQ_free(r);
    r = csr_custom(keys->client_key, "CN=t61", NULL, V_ASN1_T61STRING, "t61pass", 7, 0);
    write_req("challenge-t61.der", r, NULL, NULL);
    X509_REQ_free(r);
    r = csr_custom(keys->client_key, "CN=nul", NULL, V_ASN1_UTF8STRING, nul, sizeof(nul), 0);
    write_req("challenge-embedded-nul.der", r, NULL, NULL);
    X509_REQ_free(r);
    r = csr_custom(keys->client_key, "CN=twice", NULL, MBSTRING_ASC, "one", -1, 1);
    write_req("challenge-two-values.der", r, NULL, NULL);
    {
        /* ...9.2 -> ...9.7: two challengePassword attributes (signature now bad). */
        static const unsigned char oid92[] = {0x06, 0x09, 0x2a, 0x86, 0x48, 0x86,
                                              0xf7, 0x0d, 0x01, 0x09, 0x02};
        unsigned char *der = NULL;
        int n = i2d_X509_REQ(r, &der), i;
        for (i = 0; i + (int)sizeof(oid92) <= n; i++)
            if (memcmp(der + i, oid92, sizeof(oid92)) == 0)
                der[i + sizeof(oid92) - 1] = 0x07;
        write_file("fuzz_csr", "challenge-repeated.der", der, (size_t)n);
        OPENSSL_free(der);
    }
    X509_REQ_free(r);
    r = csr_custom(keys->client_key, "CN=octets", NULL, V_ASN1_OCTET_STRING, "octets", 6, 0);
    write_req("challenge-octetstring.der", r, NULL, NULL);
    X509_REQ_free(r);

    r = csr_custom(keys->client_key, "CN=sans",
                   "DNS:a.example,email:user@example.com,IP:192.0.2.1,IP:2001:db8::1,"
                   "URI:https://device.example/id",
                   MBSTRING_ASC, "x", -1, 0);
    write_req("san-all-allowed.der", r, NULL, NULL);
    X509_REQ_free(r);
    r = csr_custom(keys->client_key, "CN=sid",
                   "RAWURI:tag:microsoft.com,2022-09-14:sid:S-1-5-21-1-2-3-500", MBSTRING_ASC, "x",
                   -1, 0);
    write_req("san-ms-sid-uri.der", r, NULL, NULL);
    X509_REQ_free(r);
    r = csr_custom(keys->client_key, "CN=upn", "otherName:1.3.6.1.4.1.311.20.2.3;UTF8:user@corp",
                   MBSTRING_ASC, "x", -1, 0);
    write_req("san-upn-othername.der", r, NULL, NULL);
    X509_REQ_free(r);
    r = csr_custom(keys->client_key, "CN=rid", "RID:1.2.3.4.5", MBSTRING_ASC, "x", -1, 0);
    write_req("san-registered-id.der", r, NULL, NULL);
    X509_REQ_free(r);
    r = csr_custom(keys->client_key, "", "DNS:only-san.example", MBSTRING_ASC, "x", -1, 0);
    write_req("empty-subject-san.der", r, NULL, NULL);
    X509_REQ_free(r);
    r = csr_custom(keys->client_key, "", NULL, MBSTRING_ASC, "x", -1, 0);
    write_req("empty-subject-no-san.der", r, NULL, NULL);
    X509_REQ_free(r);
    r = csr_custom(keys->client_key,
                   "RAWCN:a-common-name-that-is-longer-than-sixty-four-characters-which-is-"
                   "refused",
                   NULL, MBSTRING_ASC, "x", -1, 0);
    write_req("cn-too-long.der", r, NULL, NULL);
    X509_REQ_free(r);
    r = csr_custom(keys->client_key, "RAWCN:ctl\x01char", NULL, MBSTRING_ASC, "x", -1, 0);
    write_req("cn-control-char.der", r, NULL, NULL);
    X509_REQ_free(r);
    r = csr_custom(keys->client_key, "CN=multi,OU=a,OU=b,O=c,L=d,ST=e,C=FR,emailAddress=f@g", NULL,
                   MBSTRING_ASC, "x", -1, 0);
    write_req("subject-many-rdns.der", r, NULL, NULL);
    X509_REQ_free(r);

    k = rsa_key(1024, 65537);
    r = csr_custom(k, "CN=rsa1024", NULL, MBSTRING_ASC, "x", -1, 0);
    write_req("rsa1024-weak.der", r, NULL, NULL);
    X509_REQ_free(r);
    EVP_PKEY_free(k);
    k = rsa_key(2048, 3);
    r = csr_custom(k, "CN=rsa-e3", NULL, MBSTRING_ASC, "x", -1, 0);
    write_req("rsa2048-e3.der", r, NULL, NULL);
    X509_REQ_free(r);
    EVP_PKEY_free(k);
    k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "secp256k1");
    r = csr_custom(k, "CN=k1", NULL, MBSTRING_ASC, "x", -1, 0);
    write_req("ec-secp256k1.der", r, NULL, NULL);
    X509_REQ_free(r);
    EVP_PKEY_free(k);
    if (scep_pki_genkey("ec:p384", &k) != SCEP_OK)
        die("p384");
    r = csr_custom(k, "CN=p384", "DNS:p384.example", MBSTRING_ASC, "x", -1, 0);
    write_req("ec-p384.der", r, NULL, NULL);
    X509_REQ_free(r);
    EVP_PKEY_free(k);
    k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    if (k != NULL) {
        r = X509_REQ_new();
        if (r == NULL || !X509_REQ_set_pubkey(r, k) || X509_REQ_sign(r, k, NULL) <= 0)
            die("ed25519");
        write_req("ed25519.der", r, NULL, NULL);
        X509_REQ_free(r);
        EVP_PKEY_free(k);
    }
}

/* DER of SEQUENCE { BMPString name, BMPString value } (ASCII in, short only). */
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

/*
 * Windows-style requests: enrollment name-value pairs (ValidityPeriod,
 * ValidityPeriodUnits) as one attribute with several values, and the
 * certificate template extensions (a name, or an OID with versions).
 */
static void
make_ms_csrs(void)
{
    static const char *pairs[][4] = {
        {"ValidityPeriod", "Days", "ValidityPeriodUnits", "30"},
        {"ValidityPeriod", "Years", "ValidityPeriodUnits", "100000"},
        {"ValidityPeriod", "Fortnights", "ValidityPeriodUnits", "2"},
        {"ValidityPeriodUnits", "7", "CertificateTemplate", "User"},
        {"ValidityPeriod", "Seconds", "ValidityPeriodUnits", "-1"},
    };
    /* CertificateTemplate: SEQUENCE { OID 1.3.6.1.4.1.311.21.8.1.2.3, INTEGER 100, INTEGER 5 } */
    static const unsigned char tmpl_oid[] = {0x30, 0x14, 0x06, 0x0c, 0x2b, 0x06, 0x01, 0x04,
                                             0x01, 0x82, 0x37, 0x15, 0x08, 0x01, 0x02, 0x03,
                                             0x02, 0x01, 0x64, 0x02, 0x01, 0x05};
    static const unsigned char tmpl_name[] = {0x1e, 0x08, 0, 'U', 0, 's', 0, 'e', 0, 'r'};
    const struct scep_nids *n = scep_nids();
    unsigned char a[256], b[256];
    size_t i, la, lb;
    char name[64];

    mkdir_p("fuzz_csr");
    for (i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
        X509_REQ *r = csr_custom(keys->client_key, "CN=windows", NULL, MBSTRING_ASC, "x", -1, 0);
        X509_ATTRIBUTE *at;
        la = nvp_der(pairs[i][0], pairs[i][1], a);
        lb = nvp_der(pairs[i][2], pairs[i][3], b);
        at = X509_ATTRIBUTE_create_by_NID(NULL, n->ms_name_value, V_ASN1_SEQUENCE, a, (int)la);
        if (at == NULL || !X509_ATTRIBUTE_set1_data(at, V_ASN1_SEQUENCE, b, (int)lb) ||
            !X509_REQ_add1_attr(r, at) || X509_REQ_sign(r, keys->client_key, EVP_sha256()) <= 0)
            die("name-value pairs");
        X509_ATTRIBUTE_free(at);
        snprintf(name, sizeof(name), "ms-validity-%s-%s.der", pairs[i][1], pairs[i][3]);
        write_req(name, r, NULL, NULL);
        X509_REQ_free(r);
    }
    for (i = 0; i < 2; i++) {
        X509_REQ *r = csr_custom(keys->client_key, "CN=template", NULL, MBSTRING_ASC, "x", -1, 0);
        STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
        ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
        X509_EXTENSION *e;
        const unsigned char *d = i == 0 ? tmpl_name : tmpl_oid;
        int len = i == 0 ? (int)sizeof(tmpl_name) : (int)sizeof(tmpl_oid);
        if (exts == NULL || os == NULL || !ASN1_OCTET_STRING_set(os, d, len) ||
            (e = X509_EXTENSION_create_by_NID(NULL, i == 0 ? n->ms_cert_type : n->ms_template, 0,
                                              os)) == NULL ||
            !sk_X509_EXTENSION_push(exts, e))
            die("template");
        /* csr_custom added no extensions: these are the only ones. */
        if (!X509_REQ_add_extensions(r, exts) ||
            X509_REQ_sign(r, keys->client_key, EVP_sha256()) <= 0)
            die("template sign");
        write_req(i == 0 ? "ms-template-name.der" : "ms-template-oid.der", r, NULL, NULL);
        sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
        ASN1_OCTET_STRING_free(os);
        X509_REQ_free(r);
    }
}

/* An EnvelopedData with OAEP-SHA256 (the builder only makes OAEP-SHA1). */
static unsigned char *
oaep256_envelope(const unsigned char *inner, size_t innerlen, X509 *to, size_t *len)
{
    EVP_CIPHER *c = EVP_CIPHER_fetch(NULL, "AES-256-CBC", NULL);
    CMS_ContentInfo *env = CMS_encrypt(NULL, NULL, c, CMS_BINARY | CMS_PARTIAL);
    CMS_RecipientInfo *ri;
    EVP_PKEY_CTX *pctx;
    BIO *in, *der;
    BUF_MEM *bm;
    unsigned char *out;

    if (env == NULL || (ri = CMS_add1_recipient_cert(env, to, CMS_KEY_PARAM)) == NULL ||
        (pctx = CMS_RecipientInfo_get0_pkey_ctx(ri)) == NULL ||
        EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_OAEP_PADDING) <= 0 ||
        EVP_PKEY_CTX_set_rsa_oaep_md(pctx, EVP_sha256()) <= 0 ||
        EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) <= 0)
        die("oaep256");
    in = BIO_new_mem_buf(inner, (int)innerlen);
    der = BIO_new(BIO_s_mem());
    if (in == NULL || der == NULL || CMS_final(env, in, NULL, CMS_BINARY) != 1 ||
        i2d_CMS_bio(der, env) != 1)
        die("oaep256 final");
    BIO_get_mem_ptr(der, &bm);
    if ((out = malloc(bm->length)) == NULL)
        die("malloc");
    memcpy(out, bm->data, bm->length);
    *len = bm->length;
    BIO_free(in);
    BIO_free(der);
    CMS_ContentInfo_free(env);
    EVP_CIPHER_free(c);
    return out;
}

struct msg_spec {
    const char *name;
    int msgtype;
    const char *msgtype_text;
    const char *cipher;
    int oaep;
    int to_ca;
    const EVP_MD *(*md)(void);
};

/* Build one pkiMessage; also writes its envelope as an fuzz_envelope seed. */
static void
make_msg(const struct msg_spec *s, X509 *signer, EVP_PKEY *signer_key, const unsigned char *inner,
         size_t innerlen, const unsigned char *envelope, size_t envlen)
{
    struct scep_client_req r;
    struct scep_pkimsg *m = NULL;
    unsigned char *der = NULL;
    size_t len = 0;
    char name[256];
    enum scep_err rc;

    memset(&r, 0, sizeof(r));
    r.msgtype = s->msgtype;
    r.msgtype_text = s->msgtype_text;
    r.txid = "9f2c1e4b7a6d5c3b2a190817f6e5d4c3b2a19081";
    r.signer_cert = signer;
    r.signer_key = signer_key;
    r.inner = inner;
    r.inner_len = innerlen;
    r.recipient = s->to_ca ? keys->ca_cert : keys->ra_cert;
    r.cipher = s->cipher;
    r.md = s->md != NULL ? s->md() : NULL;
    r.oaep = s->oaep;
    r.envelope = envelope;
    r.envelope_len = envlen;
    if (scep_client_build(&r, &der, &len) != SCEP_OK)
        die(s->name);
    snprintf(name, sizeof(name), "%s.der", s->name);
    write_file("fuzz_pkimsg", name, der, len);
    rc = scep_pkimsg_parse(der, len, &m);
    if (rc != SCEP_OK)
        die("own message does not parse");
    write_file("fuzz_envelope", name, m->content, m->content_len);
    {
        struct signed_seed ss = {0};
        char mt[16];
        snprintf(mt, sizeof(mt), "%d", s->msgtype);
        ss.msgtype = s->msgtype_text ? s->msgtype_text : mt;
        ss.sender_nonce = nonce16;
        ss.sender_nonce_len = sizeof(nonce16);
        ss.txid_type = FUZZ_TYPE_PRINTABLE;
        ss.txid = r.txid;
        write_signed("fuzz_pkimsg_signed", name, &ss, m->content, m->content_len);
    }
    scep_pkimsg_free(m);
    free(der);
}

static void
make_msgs(const unsigned char *csr, size_t csrlen, const unsigned char *eccsr, size_t eccsrlen,
          EVP_PKEY *ec)
{
    static const struct msg_spec specs[] = {
        {"pkcsreq-aes128-pkcs1", 19, NULL, "AES-128-CBC", 0, 0, NULL},
        {"pkcsreq-aes128-oaep", 19, NULL, "AES-128-CBC", 1, 0, NULL},
        {"pkcsreq-aes192-pkcs1", 19, NULL, "AES-192-CBC", 0, 0, NULL},
        {"pkcsreq-aes256-pkcs1", 19, NULL, "AES-256-CBC", 0, 0, NULL},
        {"pkcsreq-aes256-oaep", 19, NULL, "AES-256-CBC", 1, 0, NULL},
        {"pkcsreq-des3-pkcs1", 19, NULL, "DES-EDE3-CBC", 0, 0, NULL},
        {"pkcsreq-des3-oaep", 19, NULL, "DES-EDE3-CBC", 1, 0, NULL},
        {"pkcsreq-des-pkcs1", 19, NULL, "DES-CBC", 0, 0, NULL},
        {"pkcsreq-des-oaep", 19, NULL, "DES-CBC", 1, 0, NULL},
        {"pkcsreq-aes128-to-ca", 19, NULL, "AES-128-CBC", 0, 1, NULL},
        {"pkcsreq-sha1", 19, NULL, "AES-128-CBC", 0, 0, EVP_sha1},
        {"pkcsreq-sha512", 19, NULL, "AES-256-CBC", 0, 0, EVP_sha512},
        {"pkcsreq-camellia", 19, NULL, "CAMELLIA-128-CBC", 0, 0, NULL},
        {"renewalreq-aes128", 17, NULL, "AES-128-CBC", 0, 0, NULL},
        {"msgtype-text-abc", 0, "abc", "AES-128-CBC", 0, 0, NULL},
        {"msgtype-text-empty", 0, "", "AES-128-CBC", 0, 0, NULL},
    };
    struct msg_spec s;
    X509_NAME *name = NULL;
    X509 *ecself = NULL;
    unsigned char *env;
    size_t i, envlen;

    mkdir_p("fuzz_pkimsg");
    mkdir_p("fuzz_envelope");
    mkdir_p("fuzz_pkimsg_signed");
    for (i = 0; i < sizeof(specs) / sizeof(specs[0]); i++)
        make_msg(&specs[i], keys->client_cert, keys->client_key, csr, csrlen, NULL, 0);

    /* EC signer (self-signed, as an initial PKCSReq) with an EC CSR. */
    if (scep_pki_parse_dn("CN=ec-device", &name) != SCEP_OK ||
        scep_client_selfsigned(ec, name, &ecself) != SCEP_OK)
        die("ec selfsigned");
    s = specs[0];
    s.name = "pkcsreq-ec-signer";
    make_msg(&s, ecself, ec, eccsr, eccsrlen, NULL, 0);

    /* OAEP with SHA-256. */
    env = oaep256_envelope(csr, csrlen, keys->ra_cert, &envlen);
    s.name = "pkcsreq-aes256-oaep-sha256";
    make_msg(&s, keys->client_cert, keys->client_key, NULL, 0, env, envlen);
    free(env);

    /* Encrypted to somebody else: no RecipientInfo matches. */
    s.name = "pkcsreq-wrong-recipient";
    s.to_ca = 0;
    {
        struct scep_client_req r;
        unsigned char *der = NULL;
        size_t len = 0;
        struct scep_pkimsg *m = NULL;
        memset(&r, 0, sizeof(r));
        r.msgtype = 19;
        r.txid = "wrong-recipient";
        r.signer_cert = keys->client_cert;
        r.signer_key = keys->client_key;
        r.inner = csr;
        r.inner_len = csrlen;
        r.recipient = keys->client_cert;
        if (scep_client_build(&r, &der, &len) != SCEP_OK ||
            scep_pkimsg_parse(der, len, &m) != SCEP_OK)
            die("wrong recipient");
        make_msg(&s, keys->client_cert, keys->client_key, NULL, 0, m->content, m->content_len);
        scep_pkimsg_free(m);
        free(der);
    }

    /* Not an envelope at all: the CSR itself as the signed content. */
    s.name = "content-not-enveloped";
    make_msg(&s, keys->client_cert, keys->client_key, NULL, 0, csr, csrlen);

    /* A GetCert-like inner that is not a CSR. */
    {
        static const unsigned char ias[] = {0x30, 0x0a, 0x30, 0x03, 0x02, 0x01,
                                            0x01, 0x02, 0x03, 0x01, 0x00, 0x01};
        s = specs[0];
        s.name = "getcert-not-a-csr";
        s.msgtype = 21;
        make_msg(&s, keys->client_cert, keys->client_key, ias, sizeof(ias), NULL, 0);
    }
    X509_free(ecself);
    X509_NAME_free(name);

    /* Attribute edge cases around one good envelope. */
    {
        static const unsigned char nonce8[8] = "12345678";
        static unsigned char nonce65[65];
        struct signed_seed ss = {0};
        struct scep_client_req r;
        struct scep_pkimsg *m = NULL;
        unsigned char *der = NULL;
        size_t len = 0;

        memset(&r, 0, sizeof(r));
        r.msgtype = 19;
        r.txid = "edge";
        r.signer_cert = keys->client_cert;
        r.signer_key = keys->client_key;
        r.inner = csr;
        r.inner_len = csrlen;
        r.recipient = keys->ra_cert;
        if (scep_client_build(&r, &der, &len) != SCEP_OK ||
            scep_pkimsg_parse(der, len, &m) != SCEP_OK)
            die("edge envelope");
        memset(nonce65, 'n', sizeof(nonce65));
        ss.msgtype = "19";
        ss.sender_nonce = nonce8;
        ss.sender_nonce_len = sizeof(nonce8);
        ss.txid_type = FUZZ_TYPE_UTF8;
        ss.txid = "utf8-txid-\xc3\xa4";
        write_signed("fuzz_pkimsg_signed", "nonce8-utf8-txid.der", &ss, m->content, m->content_len);
        ss.sender_nonce = nonce65;
        ss.sender_nonce_len = sizeof(nonce65);
        ss.txid_type = FUZZ_TYPE_IA5;
        ss.md = 1;
        write_signed("fuzz_pkimsg_signed", "nonce65-ia5-sha1.der", &ss, m->content, m->content_len);
        ss.sender_nonce = nonce16;
        ss.sender_nonce_len = sizeof(nonce16);
        ss.txid_type = FUZZ_TYPE_OCTET;
        ss.md = 5;
        write_signed("fuzz_pkimsg_signed", "txid-octets-md5.der", &ss, m->content, m->content_len);
        ss.txid_type = FUZZ_TYPE_PRINTABLE;
        ss.md = 0;
        ss.msgtype = "1234";
        ss.content = 3;
        write_signed("fuzz_pkimsg_signed", "msgtype-4-digits-envtype.der", &ss, m->content,
                     m->content_len);
        ss.msgtype = NULL;
        ss.content = 1;
        write_signed("fuzz_pkimsg_signed", "no-msgtype-empty.der", &ss, NULL, 0);
        ss.content = 2;
        write_signed("fuzz_pkimsg_signed", "detached.der", &ss, m->content, m->content_len);
        scep_pkimsg_free(m);
        free(der);
    }
}

static void
make_certrep(const char *name, enum scep_pkistatus status, int fail_info, const char *fail_text,
             const char *cipher, int oaep, const EVP_MD *md, const char *txid)
{
    struct scep_pkimsg req;
    struct scep_envinfo env;
    struct scep_certrep r;
    STACK_OF(X509) *certs = sk_X509_new_null();
    unsigned char *der = NULL;
    size_t len = 0;
    char file[256];

    memset(&req, 0, sizeof(req));
    req.msgtype = SCEP_MSG_PKCSREQ;
    req.txid_len = strlen(txid);
    memcpy(req.txid, txid, req.txid_len);
    req.txid_type = V_ASN1_PRINTABLESTRING;
    memcpy(req.nonce, FUZZ_NONCE, 16);
    req.nonce_len = 16;
    req.md = md;
    memset(&env, 0, sizeof(env));
    snprintf(env.cipher, sizeof(env.cipher), "%s", cipher);
    env.oaep = oaep;
    env.oaep_md_nid = oaep ? NID_sha1 : 0;
    /* The issued certificate first, then the CA (what scepd sends). */
    if (certs == NULL || !sk_X509_push(certs, keys->client_cert) ||
        !sk_X509_push(certs, keys->ca_cert))
        die("certs");
    memset(&r, 0, sizeof(r));
    r.status = status;
    r.fail_info = fail_info;
    r.fail_text = fail_text;
    r.req = &req;
    r.ra_cert = keys->ra_cert;
    r.ra_key = keys->ra_key;
    r.certs = certs;
    r.recipient = keys->client_cert;
    r.env = &env;
    if (scep_certrep_build(&r, &der, &len) != SCEP_OK)
        die(name);
    snprintf(file, sizeof(file), "%s.der", name);
    write_file("fuzz_certrep", file, der, len);
    {
        /* The same reply in the "signed" format, with its own envelope. */
        const unsigned char *p = der;
        CMS_ContentInfo *cms = d2i_CMS_ContentInfo(NULL, &p, (long)len);
        ASN1_OCTET_STRING **pos = cms != NULL ? CMS_get0_content(cms) : NULL;
        struct signed_seed ss = {0};
        char stext[16], fi[16];

        if (pos == NULL || *pos == NULL)
            die("certrep content");
        snprintf(stext, sizeof(stext), "%d", (int)status);
        snprintf(fi, sizeof(fi), "%d", fail_info);
        ss.md = md == EVP_sha1() ? 1 : md == EVP_sha512() ? 2 : 0;
        ss.content = ASN1_STRING_length(*pos) == 0 ? 1 : 0;
        ss.msgtype = "3";
        ss.status = stext;
        ss.fail_info = status == SCEP_STATUS_FAILURE ? fi : NULL;
        ss.sender_nonce = nonce16;
        ss.sender_nonce_len = sizeof(nonce16);
        ss.recipient_nonce = (const unsigned char *)FUZZ_NONCE;
        ss.recipient_nonce_len = 16;
        ss.txid_type = FUZZ_TYPE_PRINTABLE;
        ss.txid = txid;
        ss.fail_text = fail_text;
        write_signed("fuzz_certrep_signed", file, &ss, ASN1_STRING_get0_data(*pos),
                     (size_t)ASN1_STRING_length(*pos));
        if (status != SCEP_STATUS_SUCCESS) {
            ss.content = 2; /* eContent absent (RFC 8894 form) */
            snprintf(file, sizeof(file), "%s-detached.der", name);
            write_signed("fuzz_certrep_signed", file, &ss, NULL, 0);
        }
        CMS_ContentInfo_free(cms);
    }
    free(der);
    sk_X509_free(certs);
}

static void
make_certreps(void)
{
    mkdir_p("fuzz_certrep");
    mkdir_p("fuzz_certrep_signed");
    make_certrep("success-aes128", SCEP_STATUS_SUCCESS, 0, NULL, "AES-128-CBC", 0, NULL, FUZZ_TXID);
    make_certrep("success-aes256-oaep", SCEP_STATUS_SUCCESS, 0, NULL, "AES-256-CBC", 1,
                 EVP_sha512(), FUZZ_TXID);
    make_certrep("success-des3-sha1", SCEP_STATUS_SUCCESS, 0, NULL, "DES-EDE3-CBC", 0, EVP_sha1(),
                 FUZZ_TXID);
    make_certrep("success-des", SCEP_STATUS_SUCCESS, 0, NULL, "DES-CBC", 0, NULL, FUZZ_TXID);
    make_certrep("pending", SCEP_STATUS_PENDING, 0, NULL, "", 0, NULL, FUZZ_TXID);
    make_certrep("failure-badalg", SCEP_STATUS_FAILURE, 0, "digest algorithm not allowed", "", 0,
                 NULL, FUZZ_TXID);
    make_certrep("failure-badrequest-notext", SCEP_STATUS_FAILURE, 2, NULL, "", 0, NULL, FUZZ_TXID);
    make_certrep("failure-badcertid", SCEP_STATUS_FAILURE, 4, "no such certificate", "", 0, NULL,
                 FUZZ_TXID);
    make_certrep("success-other-txid", SCEP_STATUS_SUCCESS, 0, NULL, "AES-128-CBC", 0, NULL,
                 "another-transaction");
}

/* ---- fuzz_policy ---- */

/*
 * A CSR for key with subject dn and extensions in X509V3 config syntax:
 * exts[i] is "NID=value" by short name ("subjectAltName=DNS:a"); "sanuri="
 * is one raw URI SAN, "sidext=" the SID extension 1.3.6.1.4.1.311.25.2
 * with the value as its (not DER) content.
 */
static X509_REQ *
csr_exts(EVP_PKEY *key, const char *dn, const char *const *exts, size_t nexts)
{
    X509_REQ *req = NULL;
    X509_NAME *name = NULL;
    STACK_OF(X509_EXTENSION) *sk = sk_X509_EXTENSION_new_null();
    X509V3_CTX ctx;
    size_t i;

    if (*dn == '\0' ? (name = X509_NAME_new()) == NULL : scep_pki_parse_dn(dn, &name) != SCEP_OK)
        die(dn);
    if (sk == NULL || (req = X509_REQ_new()) == NULL ||
        !X509_REQ_set_version(req, X509_REQ_VERSION_1) || !X509_REQ_set_subject_name(req, name) ||
        !X509_REQ_set_pubkey(req, key))
        die("X509_REQ");
    X509V3_set_ctx(&ctx, NULL, NULL, req, NULL, 0);
    for (i = 0; i < nexts; i++) {
        const char *eq = strchr(exts[i], '=');
        char sn[64];
        X509_EXTENSION *e = NULL;
        if (eq == NULL || (size_t)(eq - exts[i]) >= sizeof(sn))
            die(exts[i]);
        memcpy(sn, exts[i], (size_t)(eq - exts[i]));
        sn[eq - exts[i]] = '\0';
        if (strcmp(sn, "sanuri") == 0) {
            e = uri_san(eq + 1);
        } else if (strcmp(sn, "sidext") == 0) {
            ASN1_OBJECT *o = OBJ_txt2obj("1.3.6.1.4.1.311.25.2", 1);
            ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
            if (o == NULL || os == NULL ||
                !ASN1_OCTET_STRING_set(os, (const unsigned char *)eq + 1, (int)strlen(eq + 1)))
                die("sidext");
            e = X509_EXTENSION_create_by_OBJ(NULL, o, 0, os);
            ASN1_OBJECT_free(o);
            ASN1_OCTET_STRING_free(os);
        } else {
            e = X509V3_EXT_conf_nid(NULL, &ctx, OBJ_sn2nid(sn), eq + 1);
        }
        if (e == NULL || !sk_X509_EXTENSION_push(sk, e))
            die(exts[i]);
    }
    if ((nexts > 0 && !X509_REQ_add_extensions(req, sk)) ||
        X509_REQ_sign(req, key, EVP_sha256()) <= 0)
        die("csr_exts sign");
    sk_X509_EXTENSION_pop_free(sk, X509_EXTENSION_free);
    X509_NAME_free(name);
    return req;
}

/*
 * One seed per profile x authorization variant of fuzz_policy.c (bytes
 * 0..2 x 0..3), plus the endpoint's fixed O/OU (byte 0 = 3..5) without an
 * authorization: 15 files per CSR, name-PA.
 */
static void
write_policy(const char *name, const unsigned char *der, size_t len)
{
    unsigned char *buf = malloc(len + 2);
    char fname[256];
    unsigned p, a;

    if (buf == NULL)
        die("malloc");
    memcpy(buf + 2, der, len);
    for (p = 0; p < 6; p++)
        for (a = 0; a < 4; a++) {
            if (p >= 3 && a != 0)
                continue;
            buf[0] = (unsigned char)p;
            buf[1] = (unsigned char)a;
            snprintf(fname, sizeof(fname), "%s-%u%u", name, p, a);
            write_file("fuzz_policy", fname, buf, len + 2);
        }
    free(buf);
}

static void
write_policy_req(const char *name, X509_REQ *r)
{
    unsigned char *der = NULL;
    int n = i2d_X509_REQ(r, &der);

    if (n <= 0)
        die("i2d_X509_REQ");
    write_policy(name, der, (size_t)n);
    OPENSSL_free(der);
    X509_REQ_free(r);
}

static void
make_policy_seeds(void)
{
    static const char *const bound[] = {"subjectAltName=DNS:dev1.example.com"};
    static const char *const bound_upper[] = {"subjectAltName=DNS:DEV1.Example.COM"};
    static const char *const bound_extra[] = {
        "subjectAltName=DNS:dev1.example.com,DNS:other.example.com"};
    static const char *const corp[] = {
        "subjectAltName=DNS:host.corp.example.com,DNS:www.example.com"};
    static const char *const corp_only[] = {"subjectAltName=DNS:a.corp.example.com"};
    static const char *const all_sans[] = {"subjectAltName=DNS:a.corp.example.com,"
                                           "email:user@example.com,IP:192.0.2.7,IP:2001:db8::7,"
                                           "URI:https://device.example/id"};
    static const char *const sid_uri[] = {"sanuri=tag:microsoft.com,2022-09-14:sid:"
                                          "S-1-5-21-1-2-3-500"};
    static const char *const sid_upper[] = {"sanuri=TAG:Microsoft.COM,2022-09-14:SID:"
                                            "S-1-5-21-9-9-9-1"};
    static const char *const sid_space[] = {"sanuri= tag:microsoft.com,2022-09-14:sid:"
                                            "S-1-5-21-1-2-3-500"};
    static const char *const sid_ext[] = {"sidext=S-1-5-21-1-2-3-500"};
    static const char *const eku_wide[] = {
        "extendedKeyUsage=serverAuth,clientAuth,codeSigning,anyExtendedKeyUsage"};
    static const char *const eku_server[] = {"extendedKeyUsage=serverAuth"};
    static const char *const eku_oid[] = {
        "extendedKeyUsage=1.3.6.1.4.1.311.20.2.2,emailProtection"};
    static const char *const ku_ca[] = {"keyUsage=critical,keyCertSign,cRLSign,digitalSignature"};
    static const char *const ku_only_ca[] = {"keyUsage=keyCertSign,cRLSign"};
    static const char *const ku_narrow[] = {"keyUsage=digitalSignature"};
    static const char *const ca_true[] = {"basicConstraints=critical,CA:TRUE",
                                          "keyUsage=keyCertSign"};
    static const char *const everything[] = {
        "subjectAltName=DNS:dev1.example.com,URI:tag:microsoft.com:other",
        "extendedKeyUsage=clientAuth,serverAuth", "keyUsage=digitalSignature,keyAgreement",
        "basicConstraints=CA:FALSE"};
    static const char *const upn[] = {
        "subjectAltName=otherName:1.3.6.1.4.1.311.20.2.3;UTF8:admin@corp.example.com"};
    EVP_PKEY *ec = NULL, *p384 = NULL;
    DIR *d;
    struct dirent *de;
    char path[4096];

    mkdir_p("fuzz_policy");
    if (scep_pki_genkey("ec:p256", &ec) != SCEP_OK || scep_pki_genkey("ec:p384", &p384) != SCEP_OK)
        die("ec keys");
#define N(a) (sizeof(a) / sizeof(a[0]))
    write_policy_req("bound-dev1", csr_exts(ec, "CN=dev1", bound, N(bound)));
    write_policy_req("bound-dev1-upper-san", csr_exts(ec, "CN=dev1", bound_upper, N(bound_upper)));
    write_policy_req("bound-dev1-extra-san", csr_exts(ec, "CN=dev1", bound_extra, N(bound_extra)));
    write_policy_req("bound-dev1-with-o-ou",
                     csr_exts(ec, "CN=dev1,O=Evil Corp,OU=Admins", bound, N(bound)));
    write_policy_req("bound-dev2", csr_exts(ec, "CN=dev2", bound, N(bound)));
    write_policy_req("bound-dev1-twice", csr_exts(ec, "CN=dev1,CN=dev1", bound, N(bound)));
    write_policy_req("rsa-bound-dev1", csr_exts(keys->client_key, "CN=dev1", bound, N(bound)));
    write_policy_req("corp-pattern", csr_exts(ec, "CN=host.corp.example.com", corp, N(corp)));
    write_policy_req("corp-only", csr_exts(p384, "CN=a", corp_only, N(corp_only)));
    write_policy_req("all-san-types",
                     csr_exts(ec, "CN=x,O=Evil,OU=Evil,street=Main St,C=DE,L=Town,ST=State",
                              all_sans, N(all_sans)));
    write_policy_req("forbidden-street", csr_exts(ec, "CN=y,street=Main St", NULL, 0));
    write_policy_req(
        "subject-uid-dc-serial",
        csr_exts(ec, "CN=z,UID=u1,DC=example,DC=com,serialNumber=42,title=boss", NULL, 0));
    write_policy_req("empty-subject-san", csr_exts(ec, "", corp_only, N(corp_only)));
    write_policy_req("empty-subject", csr_exts(ec, "", NULL, 0));
    write_policy_req("sid-uri", csr_exts(ec, "CN=dev1", sid_uri, N(sid_uri)));
    write_policy_req("sid-uri-upper", csr_exts(ec, "CN=dev1", sid_upper, N(sid_upper)));
    write_policy_req("sid-uri-space", csr_exts(ec, "CN=dev1", sid_space, N(sid_space)));
    write_policy_req("sid-extension", csr_exts(ec, "CN=dev1", sid_ext, N(sid_ext)));
    write_policy_req("eku-wide", csr_exts(ec, "CN=e", eku_wide, N(eku_wide)));
    write_policy_req("eku-server", csr_exts(ec, "CN=e", eku_server, N(eku_server)));
    write_policy_req("eku-oid", csr_exts(ec, "CN=e", eku_oid, N(eku_oid)));
    write_policy_req("ku-ca-bits", csr_exts(ec, "CN=k", ku_ca, N(ku_ca)));
    write_policy_req("ku-only-ca-bits", csr_exts(ec, "CN=k", ku_only_ca, N(ku_only_ca)));
    write_policy_req("ku-narrow", csr_exts(keys->client_key, "CN=k", ku_narrow, N(ku_narrow)));
    write_policy_req("ca-true", csr_exts(ec, "CN=ca", ca_true, N(ca_true)));
    write_policy_req("everything", csr_exts(ec, "CN=dev1", everything, N(everything)));
    write_policy_req("san-upn", csr_exts(ec, "CN=u", upn, N(upn)));
#undef N
    EVP_PKEY_free(ec);
    EVP_PKEY_free(p384);

    /* The CSRs real clients sent (capture_seeds.sh), without an authorization. */
    snprintf(path, sizeof(path), "%s/fuzz_csr", outdir);
    if ((d = opendir(path)) == NULL)
        die(path);
    while ((de = readdir(d)) != NULL) {
        unsigned char buf[16384];
        size_t n;
        FILE *f;
        if (strncmp(de->d_name, "real-", 5) != 0)
            continue;
        snprintf(path, sizeof(path), "%s/fuzz_csr/%s", outdir, de->d_name);
        /* the two selector bytes (default profile, no authorization), then the DER */
        buf[0] = buf[1] = 0;
        if ((f = fopen(path, "rb")) == NULL)
            die(path);
        n = fread(buf + 2, 1, sizeof(buf) - 2, f);
        fclose(f);
        snprintf(path, sizeof(path), "%s-00", de->d_name);
        write_file("fuzz_policy", path, buf, n + 2);
    }
    closedir(d);
}

int
main(int argc, char **argv)
{
    unsigned char *csr = NULL, *eccsr = NULL;
    size_t csrlen = 0, eccsrlen = 0;
    EVP_PKEY *ec = NULL;

    if (argc != 2 &&
        !(argc == 3 && (strcmp(argv[2], "ms") == 0 || strcmp(argv[2], "policy") == 0))) {
        fprintf(stderr, "usage: make_corpus OUTDIR [ms|policy]\n");
        return 2;
    }
    outdir = argv[1];
    keys = fuzz_init();
    if (mkdir(outdir, 0755) != 0 && errno != EEXIST)
        die(outdir);
    if (argc == 3 && strcmp(argv[2], "policy") == 0) {
        make_policy_seeds(); /* only corpus/fuzz_policy/ */
        return 0;
    }
    make_ms_csrs();
    if (argc == 3)
        return 0; /* "ms": only the Windows-style CSRs (no churn in the rest) */
    if (scep_pki_genkey("ec:p256", &ec) != SCEP_OK)
        die("ec key");
    make_csrs(&csr, &csrlen, &eccsr, &eccsrlen, ec);
    make_msgs(csr, csrlen, eccsr, eccsrlen, ec);
    make_certreps();
    make_policy_seeds();
    OPENSSL_free(csr);
    OPENSSL_free(eccsr);
    EVP_PKEY_free(ec);
    return 0;
}
