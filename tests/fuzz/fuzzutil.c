/*
 * fuzzutil.c - loading the fixed fuzz keys, the shared PKCS#10 checks (with
 * an independent oracle for the key policy) and the signed-input builder
 * (see fuzzutil.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/cms.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "fuzzutil.h"
#include "scepd/client.h"
#include "scepd/csr.h"
#include "scepd/issue.h"
#include "scepd/oids.h"
#include "scepd/pki.h"

#ifndef SCEPD_FUZZ_KEYDIR
#define SCEPD_FUZZ_KEYDIR "tests/fuzz/keys"
#endif

static struct fuzz_keys keys;
static int loaded;
static EVP_PKEY *ec_key;
static X509 *ec_cert;

static void
free_keys(void)
{
    EVP_PKEY_free(keys.ra_key);
    X509_free(keys.ra_cert);
    EVP_PKEY_free(keys.ca_key);
    X509_free(keys.ca_cert);
    EVP_PKEY_free(keys.client_key);
    X509_free(keys.client_cert);
    EVP_PKEY_free(ec_key);
    X509_free(ec_cert);
}

static void
load(const char *dir, const char *name, EVP_PKEY **key, X509 **cert)
{
    char path[4096];

    snprintf(path, sizeof(path), "%s/%s.key", dir, name);
    if (scep_pki_read_key(path, key) != SCEP_OK) {
        fprintf(stderr, "fuzz: %s: cannot read key; set SCEPD_FUZZ_KEYS to tests/fuzz/keys\n",
                path);
        exit(1);
    }
    snprintf(path, sizeof(path), "%s/%s.crt", dir, name);
    if (scep_pki_read_cert(path, cert) != SCEP_OK) {
        fprintf(stderr,
                "fuzz: %s: cannot read certificate; set SCEPD_FUZZ_KEYS to "
                "tests/fuzz/keys\n",
                path);
        exit(1);
    }
}

const struct fuzz_keys *
fuzz_init(void)
{
    const char *dir = getenv("SCEPD_FUZZ_KEYS");

    if (loaded)
        return &keys;
    if (scep_lib_init() != SCEP_OK) {
        fprintf(stderr, "fuzz: scep_lib_init failed\n");
        exit(1);
    }
    if (dir == NULL || *dir == '\0')
        dir = SCEPD_FUZZ_KEYDIR;
    load(dir, "ra", &keys.ra_key, &keys.ra_cert);
    load(dir, "ca", &keys.ca_key, &keys.ca_cert);
    load(dir, "client", &keys.client_key, &keys.client_cert);
    atexit(free_keys);
    loaded = 1;
    return &keys;
}

/*
 * The contract of scep_csr_check_key (csr.h), checked independently: RSA
 * 2048..8192 bits with an odd exponent >= 65537, or EC on P-256/P-384/P-521
 * as a named curve (RFC 5480 §2.1.1: specifiedCurve MUST NOT be used).
 */
static int
key_policy_holds(X509_REQ *req)
{
    EVP_PKEY *pk = X509_REQ_get0_pubkey(req);
    BIGNUM *e = NULL;
    char enc[32] = "", curve[64] = "";
    size_t len;
    int bits, ok = 0;

    if (pk == NULL)
        return 0;
    if (EVP_PKEY_is_a(pk, "RSA")) {
        bits = EVP_PKEY_get_bits(pk);
        ok = bits >= 2048 && bits <= 8192 && EVP_PKEY_get_bn_param(pk, "e", &e) && BN_is_odd(e) &&
             BN_num_bits(e) >= 17;
        BN_free(e);
    } else if (EVP_PKEY_is_a(pk, "EC")) {
        ok = EVP_PKEY_get_utf8_string_param(pk, "group", curve, sizeof(curve), &len) &&
             (strcmp(curve, "prime256v1") == 0 || strcmp(curve, "secp384r1") == 0 ||
              strcmp(curve, "secp521r1") == 0) &&
             EVP_PKEY_get_utf8_string_param(pk, "encoding", enc, sizeof(enc), &len) &&
             strcmp(enc, "named_curve") == 0;
    }
    ERR_clear_error();
    return ok;
}

int
fuzz_csr_checks(const unsigned char *der, size_t len, X509 *signer)
{
    X509_REQ *req = NULL;
    STACK_OF(X509_EXTENSION) *exts = NULL;
    EVP_PKEY *pk;
    unsigned char hash[32];
    char chal[SCEP_MAX_CHALLENGE];
    size_t chlen = 0, strippedlen = 0;
    unsigned char *stripped = NULL;
    char *tmpl;
    long long secs = 0;
    enum scep_err rc;

    if (scep_csr_parse(der, len, &req) != SCEP_OK) {
        if (req != NULL)
            abort(); /* out-parameter must stay NULL on failure */
        return 0;
    }
    (void)scep_csr_verify_self(req);
    if (signer != NULL)
        (void)scep_csr_check_pop(req, signer);
    if (scep_csr_check_key(req) == SCEP_OK && !key_policy_holds(req)) {
        fprintf(stderr, "fuzz: scep_csr_check_key accepted a key outside its policy\n");
        abort();
    }
    rc = scep_csr_challenge(req, chal, sizeof(chal), &chlen);
    if (rc == SCEP_OK && (chlen >= sizeof(chal) || strlen(chal) != chlen))
        abort(); /* the challenge is terminated, NUL-free and fits */
    OPENSSL_cleanse(chal, sizeof(chal));
    /* A one-byte buffer: only "" fits. */
    if (scep_csr_challenge(req, chal, 1, &chlen) == SCEP_OK && chlen != 0)
        abort();
    (void)scep_issue_check_names(req);
    if (scep_csr_requested_validity(req, &secs) == SCEP_OK &&
        (secs < 1 || secs > 100000LL * 365 * 86400))
        abort(); /* csr.h: a count of 1..100000 units of at most a year */
    /* Exactly sized heap buffers: ASan sees any write past them. */
    if ((tmpl = malloc(64)) != NULL) {
        if (scep_csr_template(req, tmpl, 64) == SCEP_OK && memchr(tmpl, 0, 64) == NULL)
            abort();
        free(tmpl);
    }
    if ((tmpl = malloc(1)) != NULL) {
        (void)scep_csr_template(req, tmpl, 1);
        free(tmpl);
    }
    if (scep_csr_without_challenge(req, &stripped, &strippedlen) == SCEP_OK) {
        X509_REQ *again = NULL;
        /* The stored copy parses and has no challengePassword left. */
        if (scep_csr_parse(stripped, strippedlen, &again) != SCEP_OK ||
            X509_REQ_get_attr_by_NID(again, NID_pkcs9_challengePassword, -1) >= 0)
            abort();
        X509_REQ_free(again);
        OPENSSL_free(stripped);
    }
    exts = scep_csr_extensions(req);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    pk = X509_REQ_get0_pubkey(req);
    if (pk != NULL)
        (void)scep_key_hash(pk, hash);
    if (X509_REQ_get_X509_PUBKEY(req) != NULL)
        (void)scep_spki_hash(X509_REQ_get_X509_PUBKEY(req), hash);
    X509_REQ_free(req);
    return 1;
}

void
fuzz_ec_signer(EVP_PKEY **key, X509 **cert)
{
    X509_NAME *name = NULL;

    if (ec_key == NULL) {
        if (scep_pki_genkey("ec:p256", &ec_key) != SCEP_OK ||
            scep_pki_parse_dn("CN=scepd fuzz EC signer", &name) != SCEP_OK ||
            scep_client_selfsigned(ec_key, name, &ec_cert) != SCEP_OK) {
            fprintf(stderr, "fuzz: cannot make the EC signer\n");
            exit(1);
        }
        X509_NAME_free(name);
    }
    *key = ec_key;
    *cert = ec_cert;
}

struct reader {
    const unsigned char *p;
    size_t n;
};

static int
rd_byte(struct reader *r, unsigned *v)
{
    if (r->n == 0)
        return 0;
    *v = *r->p++;
    r->n--;
    return 1;
}

static const EVP_MD *
pick_md(unsigned v)
{
    switch (v % 6) {
    case 1:
        return EVP_sha1();
    case 2:
        return EVP_sha512();
    case 3:
        return EVP_sha384();
    case 4:
        return EVP_sha224();
    case 5:
        return EVP_md5();
    default:
        return EVP_sha256();
    }
}

static int
pick_type(unsigned v)
{
    static const int types[FUZZ_TYPE_COUNT] = {
        V_ASN1_PRINTABLESTRING, V_ASN1_UTF8STRING, V_ASN1_IA5STRING, V_ASN1_OCTET_STRING,
        V_ASN1_BMPSTRING,       V_ASN1_T61STRING,  V_ASN1_INTEGER,
    };
    return types[v % FUZZ_TYPE_COUNT];
}

/* One attribute slot; 0 when the input is malformed for OpenSSL. */
static int
add_attr(CMS_SignerInfo *si, int nid, struct reader *r)
{
    X509_ATTRIBUTE *a = NULL;
    unsigned count, i, t, len;
    int ok = 1;

    if (!rd_byte(r, &count) || (count %= 3) == 0)
        return 1;
    for (i = 0; i < count && ok; i++) {
        const unsigned char *v;
        if (!rd_byte(r, &t) || !rd_byte(r, &len))
            break;
        if (len > r->n)
            len = (unsigned)r->n;
        v = r->p;
        r->p += len;
        r->n -= len;
        if (a == NULL)
            ok = (a = X509_ATTRIBUTE_create_by_NID(NULL, nid, pick_type(t), v, (int)len)) != NULL;
        else
            ok = X509_ATTRIBUTE_set1_data(a, pick_type(t), v, (int)len);
    }
    if (ok && a != NULL)
        ok = CMS_signed_add1_attr(si, a);
    X509_ATTRIBUTE_free(a);
    return ok;
}

int
fuzz_signed_build(const unsigned char *in, size_t inlen, X509 *signer, EVP_PKEY *key,
                  unsigned char **der, size_t *derlen)
{
    const struct scep_nids *n = scep_nids();
    const int nids[FUZZ_ATTR_COUNT] = {n->message_type,  n->pki_status,      n->fail_info,
                                       n->sender_nonce,  n->recipient_nonce, n->transaction_id,
                                       n->fail_info_text};
    struct reader r = {in, inlen};
    unsigned mdsel = 0, csel = 0, flags = CMS_BINARY | CMS_PARTIAL | CMS_NOSMIMECAP;
    CMS_ContentInfo *cms = NULL;
    CMS_SignerInfo *si;
    BIO *content = NULL;
    unsigned char *p = NULL;
    int i, len, ok = 0;

    *der = NULL;
    *derlen = 0;
    (void)rd_byte(&r, &mdsel);
    (void)rd_byte(&r, &csel);
    csel %= 4;
    if (csel == 2)
        flags |= CMS_DETACHED;
    if ((cms = CMS_sign(NULL, NULL, NULL, NULL, flags)) == NULL)
        goto out;
    if ((si = CMS_add1_signer(cms, signer, key, pick_md(mdsel), CMS_NOSMIMECAP)) == NULL)
        goto out;
    for (i = 0; i < FUZZ_ATTR_COUNT; i++)
        if (!add_attr(si, nids[i], &r))
            goto out;
    if (csel == 3 && !CMS_set1_eContentType(cms, OBJ_nid2obj(NID_pkcs7_enveloped)))
        goto out;
    /* The rest is the eContent (none for "empty"; signed but not carried when detached). */
    if ((content = BIO_new_mem_buf(csel == 1 || r.n == 0 ? "" : (const char *)r.p,
                                   csel == 1 ? 0 : (int)r.n)) == NULL)
        goto out;
    if (CMS_final(cms, content, NULL, flags) != 1)
        goto out;
    if ((len = i2d_CMS_ContentInfo(cms, &p)) <= 0)
        goto out;
    if ((*der = malloc((size_t)len)) == NULL)
        goto out;
    memcpy(*der, p, (size_t)len);
    *derlen = (size_t)len;
    ok = 1;
out:
    OPENSSL_free(p);
    BIO_free(content);
    CMS_ContentInfo_free(cms);
    ERR_clear_error();
    return ok;
}
