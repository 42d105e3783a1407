/*
 * hostile_util.c - builders and shared expectations of the hostile-input
 * suite (see hostile_util.h).  Trusts the service under test with nothing:
 * every reply is verified as a client would, every negative case recounts
 * the certificate rows.
 */
#include "hostile_util.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include "scepd/log.h"
#include "scepd/oids.h"
#include "scepd/pki.h"
#include "scepd/pkimsg.h"

struct hu_stats hu_stats;

static int log_fd = -1;
static char log_path[64];

double
hu_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void
bio_take(BIO *b, unsigned char **out, size_t *outlen)
{
    BUF_MEM *bm = NULL;

    BIO_get_mem_ptr(b, &bm);
    assert_non_null(bm);
    *out = malloc(bm->length ? bm->length : 1);
    assert_non_null(*out);
    memcpy(*out, bm->data, bm->length);
    *outlen = bm->length;
}

static void
add_attrs(struct hu_msg *m, CMS_SignerInfo *si)
{
    const struct scep_nids *n = scep_nids();
    char mt[16];
    const unsigned char *txid = m->txid_raw ? m->txid_raw : (const unsigned char *)m->req.txid;
    int txlen = m->txid_raw ? (int)m->txid_raw_len : (int)strlen(m->req.txid);
    int txtype = m->txid_type ? m->txid_type : V_ASN1_PRINTABLESTRING;
    const char *mtext;

    if (!(m->hacks & HU_NO_TXID)) {
        assert_int_equal(CMS_signed_add1_attr_by_NID(si, n->transaction_id, txtype, txid, txlen),
                         1);
        if (m->hacks & HU_TXID_TWICE)
            assert_int_equal(
                CMS_signed_add1_attr_by_NID(si, n->transaction_id, txtype, txid, txlen), 1);
    }
    snprintf(mt, sizeof(mt), "%d", m->req.msgtype);
    mtext = m->req.msgtype_text ? m->req.msgtype_text : mt;
    if (!(m->hacks & HU_NO_MSGTYPE))
        assert_int_equal(CMS_signed_add1_attr_by_NID(si, n->message_type, V_ASN1_PRINTABLESTRING,
                                                     mtext, (int)strlen(mtext)),
                         1);
    if (!(m->hacks & HU_NO_NONCE))
        assert_int_equal(CMS_signed_add1_attr_by_NID(si, n->sender_nonce, V_ASN1_OCTET_STRING,
                                                     m->req.nonce, (int)m->req.nonce_len),
                         1);
    if (m->signing_time != NULL)
        assert_int_equal(CMS_signed_add1_attr_by_NID(si, NID_pkcs9_signingTime,
                                                     m->signing_time->type, m->signing_time, -1),
                         1);
}

/* One definite-length TLV at p: its tag, header length and body length. */
static void
der_tlv(const unsigned char *p, size_t len, size_t *hdr, size_t *body)
{
    size_t i, n;

    assert_true(len >= 2);
    if (p[1] < 0x80) {
        *hdr = 2;
        *body = p[1];
    } else {
        n = p[1] & 0x7f;
        assert_true(n >= 1 && n <= 4 && len >= 2 + n);
        *body = 0;
        for (i = 0; i < n; i++)
            *body = (*body << 8) | p[2 + i];
        *hdr = 2 + n;
    }
    assert_true(*hdr + *body <= len);
}

/* A DER header (tag, minimal length) for body bytes; returns its size. */
static size_t
der_put(unsigned char *o, unsigned char tag, size_t body)
{
    size_t n = 0, i;

    o[0] = tag;
    if (body < 0x80) {
        o[1] = (unsigned char)body;
        return 2;
    }
    for (i = body; i > 0; i >>= 8)
        n++;
    o[1] = (unsigned char)(0x80 | n);
    for (i = 0; i < n; i++)
        o[2 + i] = (unsigned char)(body >> (8 * (n - 1 - i)));
    return 2 + n;
}

/* ContentInfo{signedData} with the signerInfos SET replaced by an empty one. */
static void
drop_signers(const unsigned char *d, size_t len, unsigned char **out, size_t *outlen)
{
    size_t h, b, oid_len, h0, b0, hsd, bsd, off, last = 0, sd_body, x_body, ci_body, o = 0;
    const unsigned char *ci, *oid, *x, *sd, *e;
    unsigned char *r;

    der_tlv(d, len, &h, &b);
    ci = d + h;
    der_tlv(ci, b, &h0, &b0); /* contentType OID */
    oid = ci;
    oid_len = h0 + b0;
    x = ci + oid_len; /* [0] EXPLICIT */
    der_tlv(x, b - oid_len, &h0, &b0);
    sd = x + h0;
    der_tlv(sd, b0, &hsd, &bsd);
    e = sd + hsd;
    for (off = 0; off < bsd;) { /* find the last element: signerInfos */
        size_t eh, eb;
        der_tlv(e + off, bsd - off, &eh, &eb);
        last = off;
        off += eh + eb;
    }
    assert_int_equal(e[last], 0x31);
    sd_body = last + 2;
    r = malloc(len + 16);
    assert_non_null(r);
    /* sizes inside out: SignedData, [0], ContentInfo */
    x_body = der_put(r, 0x30, sd_body) + sd_body;
    ci_body = oid_len + der_put(r, 0xa0, x_body) + x_body;
    o += der_put(r + o, 0x30, ci_body);
    memcpy(r + o, oid, oid_len);
    o += oid_len;
    o += der_put(r + o, 0xa0, x_body);
    o += der_put(r + o, 0x30, sd_body);
    memcpy(r + o, e, last);
    o += last;
    r[o++] = 0x31;
    r[o++] = 0x00;
    *out = r;
    *outlen = o;
}

void
hu_sign(struct hu_msg *m, const unsigned char *content, size_t content_len, unsigned char **out,
        size_t *outlen)
{
    unsigned flags = CMS_BINARY | CMS_PARTIAL | CMS_NOSMIMECAP;
    const EVP_MD *md = m->req.md ? m->req.md : EVP_sha256();
    CMS_ContentInfo *cms;
    CMS_SignerInfo *si;
    BIO *in, *der;

    if (m->req.nonce_len == 0) {
        assert_int_equal(RAND_bytes(m->req.nonce, 16), 1);
        m->req.nonce_len = 16;
    }
    if (m->hacks & HU_NOCERTS)
        flags |= CMS_NOCERTS;
    if (m->hacks & HU_DETACHED)
        flags |= CMS_DETACHED;
    cms = CMS_sign(NULL, NULL, NULL, NULL, flags);
    assert_non_null(cms);
    si = CMS_add1_signer(cms, m->req.signer_cert, m->req.signer_key, md,
                         CMS_NOSMIMECAP | (flags & CMS_NOCERTS));
    assert_non_null(si);
    add_attrs(m, si);
    if (m->hacks & HU_TWO_SIGNERS) {
        si = CMS_add1_signer(cms, m->signer2, m->key2, md, CMS_NOSMIMECAP);
        assert_non_null(si);
        add_attrs(m, si);
    }
    if (m->extra_cert != NULL)
        assert_int_equal(CMS_add1_cert(cms, m->extra_cert), 1);
    in = content_len ? BIO_new_mem_buf(content, (int)content_len) : BIO_new(BIO_s_mem());
    assert_non_null(in);
    assert_int_equal(CMS_final(cms, in, NULL, flags), 1);
    der = BIO_new(BIO_s_mem());
    assert_int_equal(i2d_CMS_bio(der, cms), 1);
    bio_take(der, out, outlen);
    if (m->hacks & HU_NO_SIGNERS) {
        /*
         * OpenSSL will not finalise a SignedData without signers around
         * content: sign, then empty the signerInfos SET in the DER.
         */
        unsigned char *d = *out;
        drop_signers(d, *outlen, out, outlen);
        free(d);
    }
    BIO_free(der);
    BIO_free(in);
    CMS_ContentInfo_free(cms);
    ERR_clear_error();
}

static void
env_finish(CMS_ContentInfo *env, const unsigned char *in, size_t inlen, unsigned char **out,
           size_t *outlen)
{
    BIO *b = BIO_new_mem_buf(in, (int)inlen), *der = BIO_new(BIO_s_mem());

    assert_non_null(b);
    assert_int_equal(CMS_final(env, b, NULL, CMS_BINARY), 1);
    assert_int_equal(i2d_CMS_bio(der, env), 1);
    bio_take(der, out, outlen);
    BIO_free(der);
    BIO_free(b);
    CMS_ContentInfo_free(env);
    ERR_clear_error();
}

void
hu_envelope(X509 *recipient, const char *cipher, const unsigned char *in, size_t inlen,
            unsigned char **out, size_t *outlen)
{
    EVP_CIPHER *c = EVP_CIPHER_fetch(NULL, cipher, NULL);
    CMS_ContentInfo *env;

    assert_non_null(c);
    env = CMS_encrypt(NULL, NULL, c, CMS_BINARY | CMS_PARTIAL);
    assert_non_null(env);
    assert_non_null(CMS_add1_recipient_cert(env, recipient, 0));
    env_finish(env, in, inlen, out, outlen);
    EVP_CIPHER_free(c);
}

void
hu_envelope_pwri(const unsigned char *in, size_t inlen, unsigned char **out, size_t *outlen)
{
    CMS_ContentInfo *env = CMS_encrypt(NULL, NULL, EVP_aes_128_cbc(), CMS_BINARY | CMS_PARTIAL);
    /* add0: the RecipientInfo frees pass with the structure (env_finish) */
    unsigned char *pass = (unsigned char *)OPENSSL_strdup("hostile-password");

    assert_non_null(env);
    assert_non_null(pass);
    assert_non_null(CMS_add0_recipient_password(env, -1, NID_undef, NID_undef, pass,
                                                (ossl_ssize_t)strlen((char *)pass), NULL));
    env_finish(env, in, inlen, out, outlen);
}

void
hu_envelope_kek(const unsigned char *in, size_t inlen, unsigned char **out, size_t *outlen)
{
    CMS_ContentInfo *env = CMS_encrypt(NULL, NULL, EVP_aes_128_cbc(), CMS_BINARY | CMS_PARTIAL);
    unsigned char *key = OPENSSL_malloc(16), *id = OPENSSL_malloc(8);

    assert_non_null(env);
    assert_non_null(key);
    assert_non_null(id);
    assert_int_equal(RAND_bytes(key, 16), 1);
    memcpy(id, "kek-id-1", 8);
    /* add0: key and id now belong to the RecipientInfo */
    assert_non_null(CMS_add0_recipient_key(env, NID_undef, key, 16, id, 8, NULL, NULL, NULL));
    env_finish(env, in, inlen, out, outlen);
}

X509_NAME *
hu_name(const char *dn)
{
    X509_NAME *n = NULL;

    assert_int_equal(scep_pki_parse_dn(dn, &n), SCEP_OK);
    return n;
}

X509 *
hu_selfsigned(EVP_PKEY *key)
{
    X509_NAME *n = hu_name("CN=hostile-signer");
    X509 *x = NULL;

    assert_int_equal(scep_client_selfsigned(key, n, &x), SCEP_OK);
    X509_NAME_free(n);
    return x;
}

void
hu_csr(EVP_PKEY *pub, EVP_PKEY *sign_key, const X509_NAME *name, const char *challenge,
       STACK_OF(X509_EXTENSION) * exts, unsigned char **out, size_t *outlen)
{
    X509_REQ *req = X509_REQ_new();
    X509_NAME *empty = X509_NAME_new();
    unsigned char *der = NULL;
    int n;

    assert_non_null(req);
    assert_int_equal(X509_REQ_set_version(req, X509_REQ_VERSION_1), 1);
    assert_int_equal(X509_REQ_set_subject_name(req, name ? name : empty), 1);
    assert_int_equal(X509_REQ_set_pubkey(req, pub), 1);
    /* an empty challenge is below the PKCS#9 minimum: set it raw */
    if (challenge != NULL)
        assert_int_equal(
            X509_REQ_add1_attr_by_NID(req, NID_pkcs9_challengePassword,
                                      challenge[0] ? MBSTRING_ASC : V_ASN1_PRINTABLESTRING,
                                      (const unsigned char *)challenge, (int)strlen(challenge)),
            1);
    if (exts != NULL)
        assert_int_equal(X509_REQ_add_extensions(req, exts), 1);
    {
        EVP_PKEY *sk = sign_key ? sign_key : pub;
        /* EdDSA takes no separate digest */
        const EVP_MD *md = EVP_PKEY_get_base_id(sk) == EVP_PKEY_ED25519 ? NULL : EVP_sha256();
        assert_true(X509_REQ_sign(req, sk, md) > 0);
    }
    n = i2d_X509_REQ(req, &der);
    assert_true(n > 0);
    *out = malloc((size_t)n);
    assert_non_null(*out);
    memcpy(*out, der, (size_t)n);
    *outlen = (size_t)n;
    OPENSSL_free(der);
    X509_NAME_free(empty);
    X509_REQ_free(req);
    ERR_clear_error();
}

EVP_PKEY *
hu_key_rsa(unsigned bits, unsigned long e)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    EVP_PKEY *k = NULL;
    BIGNUM *bn = BN_new();

    assert_non_null(ctx);
    assert_non_null(bn);
    assert_int_equal(BN_set_word(bn, e), 1);
    assert_int_equal(EVP_PKEY_keygen_init(ctx), 1);
    assert_true(EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, (int)bits) > 0);
    assert_true(EVP_PKEY_CTX_set1_rsa_keygen_pubexp(ctx, bn) > 0);
    assert_int_equal(EVP_PKEY_generate(ctx, &k), 1);
    BN_free(bn);
    EVP_PKEY_CTX_free(ctx);
    return k;
}

EVP_PKEY *
hu_key_ec(const char *curve, int explicit_params)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    EVP_PKEY *k = NULL;
    OSSL_PARAM p[3];
    size_t i = 0;

    assert_non_null(ctx);
    assert_int_equal(EVP_PKEY_keygen_init(ctx), 1);
    p[i++] =
        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)(uintptr_t)curve, 0);
    if (explicit_params)
        p[i++] = OSSL_PARAM_construct_utf8_string(
            OSSL_PKEY_PARAM_EC_ENCODING, (char *)(uintptr_t)OSSL_PKEY_EC_ENCODING_EXPLICIT, 0);
    p[i] = OSSL_PARAM_construct_end();
    assert_int_equal(EVP_PKEY_CTX_set_params(ctx, p), 1);
    assert_int_equal(EVP_PKEY_generate(ctx, &k), 1);
    EVP_PKEY_CTX_free(ctx);
    return k;
}

EVP_PKEY *
hu_fake_rsa_pub(unsigned bits, unsigned long e)
{
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    BIGNUM *n = BN_new(), *be = BN_new();
    OSSL_PARAM *params;
    EVP_PKEY *k = NULL;

    assert_non_null(bld);
    assert_non_null(ctx);
    assert_int_equal(BN_rand(n, (int)bits, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ODD), 1);
    assert_int_equal(BN_set_word(be, e), 1);
    assert_int_equal(OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n), 1);
    assert_int_equal(OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be), 1);
    params = OSSL_PARAM_BLD_to_param(bld);
    assert_non_null(params);
    assert_int_equal(EVP_PKEY_fromdata_init(ctx), 1);
    assert_int_equal(EVP_PKEY_fromdata(ctx, &k, EVP_PKEY_PUBLIC_KEY, params), 1);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    EVP_PKEY_CTX_free(ctx);
    BN_free(n);
    BN_free(be);
    return k;
}

X509_EXTENSION *
hu_ext_conf(int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *e;

    X509V3_set_ctx(&ctx, NULL, NULL, NULL, NULL, X509V3_CTX_TEST);
    e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    assert_non_null(e);
    ERR_clear_error();
    return e;
}

X509_EXTENSION *
hu_ext_raw(const char *oid, int critical, const unsigned char *der, size_t len)
{
    ASN1_OBJECT *o = OBJ_txt2obj(oid, 1);
    ASN1_OCTET_STRING *v = ASN1_OCTET_STRING_new();
    X509_EXTENSION *e;

    assert_non_null(o);
    assert_non_null(v);
    assert_int_equal(ASN1_OCTET_STRING_set(v, der, (int)len), 1);
    e = X509_EXTENSION_create_by_OBJ(NULL, o, critical, v);
    assert_non_null(e);
    ASN1_OBJECT_free(o);
    ASN1_OCTET_STRING_free(v);
    return e;
}

void
hu_req_init(struct hu_req *q, struct fixture *f, EVP_PKEY *signer_key, unsigned char *csr,
            size_t csr_len)
{
    unsigned char rnd[12];
    size_t i;

    memset(q, 0, sizeof(*q));
    q->csr = csr;
    q->csr_len = csr_len;
    q->signer = hu_selfsigned(signer_key);
    assert_int_equal(RAND_bytes(rnd, sizeof(rnd)), 1);
    for (i = 0; i < sizeof(rnd); i++)
        snprintf(q->txid + 2 * i, 3, "%02X", rnd[i]);
    q->msg.req.msgtype = 19;
    q->msg.req.txid = q->txid;
    q->msg.req.signer_cert = q->signer;
    q->msg.req.signer_key = signer_key;
    q->msg.req.inner = csr;
    q->msg.req.inner_len = csr_len;
    q->msg.req.recipient = f->ra;
    hu_envelope(f->ra, "AES-128-CBC", csr, csr_len, &q->env, &q->env_len);
    hu_req_build(q);
}

void
hu_req_simple(struct hu_req *q, struct fixture *f, EVP_PKEY *key, const char *dn,
              const char *challenge)
{
    X509_NAME *n = hu_name(dn);
    unsigned char *csr;
    size_t len;

    hu_csr(key, NULL, n, challenge, NULL, &csr, &len);
    X509_NAME_free(n);
    hu_req_init(q, f, key, csr, len);
}

void
hu_req_set_env(struct hu_req *q, unsigned char *env, size_t env_len)
{
    free(q->env);
    q->env = env;
    q->env_len = env_len;
    hu_req_build(q);
}

void
hu_req_build(struct hu_req *q)
{
    free(q->der);
    q->der = NULL;
    q->msg.req.envelope = q->env;
    q->msg.req.envelope_len = q->env_len;
    hu_sign(&q->msg, q->env, q->env_len, &q->der, &q->der_len);
}

void
hu_req_clear(struct hu_req *q)
{
    X509_free(q->signer);
    free(q->csr);
    free(q->env);
    free(q->der);
    memset(q, 0, sizeof(*q));
}

void
hu_log_open(void)
{
    snprintf(log_path, sizeof(log_path), "/tmp/scepd-hostile-log-XXXXXX");
    log_fd = mkstemp(log_path);
    assert_true(log_fd >= 0);
    scep_log_set_fd(log_fd);
}

char *
hu_log_read(size_t *len)
{
    FILE *fp = fopen(log_path, "rb");
    char *buf;
    long n;

    assert_non_null(fp);
    assert_int_equal(fseek(fp, 0, SEEK_END), 0);
    n = ftell(fp);
    assert_true(n >= 0);
    rewind(fp);
    buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
    buf[n] = '\0';
    fclose(fp);
    *len = (size_t)n;
    return buf;
}

void
hu_log_close(void)
{
    scep_log_set_fd(2);
    if (log_fd >= 0) {
        close(log_fd);
        unlink(log_path);
    }
    log_fd = -1;
}

void
hu_run(struct fixture *f, const unsigned char *der, size_t len, struct scep_result *r)
{
    char fi[16];

    test_run(f, der, len, r);
    hu_stats.requests++;
    if (r->fail_info >= 0)
        snprintf(fi, sizeof(fi), "%d", r->fail_info);
    else
        snprintf(fi, sizeof(fi), "-");
    /* The daemon's request line (daemon/http.c log_request), peer and timing aside. */
    scep_log(r->http_status >= 500 ? SCEP_LOG_ERROR : SCEP_LOG_INFO, "http",
             "request endpoint=%s op=PKIOperation method=TEST msgtype=%d(%s) txid=%s status=%d "
             "pki=%s failinfo=%s err=%s serial=%s peer=hostile",
             f->ep->name, r->msgtype, r->msgtype >= 0 ? scep_msgtype_name(r->msgtype) : "-",
             r->txid[0] ? r->txid : "-", r->http_status, r->pki_status, fi,
             r->err != SCEP_OK ? scep_errname(r->err) : "-", r->serial[0] ? r->serial : "-");
}

void
hu_expect_http(struct fixture *f, const unsigned char *der, size_t len, int status,
               enum scep_err err)
{
    struct scep_result r;
    int before = test_cert_count(f), after;

    hu_run(f, der, len, &r);
    after = test_cert_count(f);
    hu_stats.negatives++;
    hu_stats.neg_issued += after - before;
    if (r.err != err)
        print_error("want %s, got %s (HTTP %d)\n", scep_errname(err), scep_errname(r.err),
                    r.http_status);
    assert_int_equal(r.err, err);
    assert_int_equal(r.http_status, status);
    assert_string_equal(r.content_type, "text/plain");
    assert_string_equal(r.pki_status, "-");
    assert_string_equal(r.serial, "");
    assert_int_equal(after, before);
    scep_result_clear(&r);
}

void
hu_expect_failure(struct fixture *f, struct hu_req *q, int fail_info, enum scep_err err)
{
    struct scep_result r;
    struct scep_client_reply rep;
    int before = test_cert_count(f), after;

    hu_run(f, q->der, q->der_len, &r);
    after = test_cert_count(f);
    hu_stats.negatives++;
    hu_stats.neg_issued += after - before;
    if (r.err != err)
        print_error("want %s, got %s (HTTP %d)\n", scep_errname(err), scep_errname(r.err),
                    r.http_status);
    assert_int_equal(r.err, err);
    assert_int_equal(r.http_status, 200);
    assert_string_equal(r.content_type, "application/x-pki-message");
    assert_int_equal(scep_client_parse_reply(r.body, r.body_len, f->ra, &q->msg.req,
                                             q->msg.req.signer_key, &rep),
                     SCEP_OK);
    assert_int_equal(rep.status, 2);
    assert_int_equal(rep.fail_info, fail_info);
    assert_int_equal(r.fail_info, fail_info);
    assert_string_equal(rep.fail_text, scep_strerror(err));
    assert_null(rep.cert);
    assert_string_equal(r.serial, "");
    scep_client_reply_clear(&rep);
    scep_result_clear(&r);
    assert_int_equal(after, before);
}

static void
time_le(const ASN1_TIME *a, const ASN1_TIME *b)
{
    int day = 0, sec = 0;

    assert_int_equal(ASN1_TIME_diff(&day, &sec, a, b), 1);
    assert_true(day > 0 || (day == 0 && sec >= 0));
}

void
hu_lint_issued(struct fixture *f, X509 *cert)
{
    static const int allowed[] = {NID_basic_constraints,
                                  NID_key_usage,
                                  NID_ext_key_usage,
                                  NID_subject_key_identifier,
                                  NID_authority_key_identifier,
                                  NID_subject_alt_name};
    EVP_PKEY *pub = X509_get0_pubkey(cert);
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    BASIC_CONSTRAINTS *bc;
    EXTENDED_KEY_USAGE *eku;
    const ASN1_INTEGER *serial = X509_get0_serialNumber(cert);
    uint32_t want_ku;
    int i, j, crit = -1;

    assert_non_null(pub);
    /* chains to the CA, signed by it */
    assert_int_equal(X509_STORE_add_cert(store, f->ca), 1);
    assert_int_equal(X509_STORE_CTX_init(ctx, store, cert, NULL), 1);
    assert_int_equal(X509_verify_cert(ctx), 1);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    assert_int_equal(X509_NAME_cmp(X509_get_issuer_name(cert), X509_get_subject_name(f->ca)), 0);
    /* only the profile's extensions, each once */
    for (i = 0; i < X509_get_ext_count(cert); i++) {
        int nid = OBJ_obj2nid(X509_EXTENSION_get_object(X509_get_ext(cert, i)));
        int ok = 0;
        for (j = 0; j < (int)(sizeof(allowed) / sizeof(allowed[0])); j++)
            ok |= nid == allowed[j];
        if (!ok) {
            char txt[128];
            OBJ_obj2txt(txt, sizeof(txt), X509_EXTENSION_get_object(X509_get_ext(cert, i)), 1);
            print_error("unexpected extension %s in an issued certificate\n", txt);
        }
        assert_true(ok);
        assert_int_equal(X509_get_ext_by_NID(cert, nid, i), -1);
    }
    bc = X509_get_ext_d2i(cert, NID_basic_constraints, &crit, NULL);
    assert_non_null(bc);
    assert_int_equal(crit, 1);
    assert_int_equal(bc->ca, 0);
    assert_null(bc->pathlen);
    BASIC_CONSTRAINTS_free(bc);
    assert_int_equal(X509_check_ca(cert), 0);
    want_ku = EVP_PKEY_get_base_id(pub) == EVP_PKEY_RSA ? KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT
                                                        : KU_DIGITAL_SIGNATURE | KU_KEY_AGREEMENT;
    /* the default profile's usages, or fewer when the request narrowed them */
    assert_true(X509_get_key_usage(cert) != 0);
    assert_int_equal(X509_get_key_usage(cert) & ~want_ku, 0);
    assert_int_equal(X509_get_ext_by_critical(cert, 1, -1) >= 0, 1);
    eku = X509_get_ext_d2i(cert, NID_ext_key_usage, NULL, NULL);
    assert_non_null(eku);
    assert_int_equal(sk_ASN1_OBJECT_num(eku), 1);
    assert_int_equal(OBJ_obj2nid(sk_ASN1_OBJECT_value(eku, 0)), NID_client_auth);
    sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
    /* serial: 16 octets, positive */
    assert_int_equal(ASN1_STRING_type(serial), V_ASN1_INTEGER);
    assert_int_equal(ASN1_STRING_length(serial), 16);
    assert_int_equal(ASN1_STRING_get0_data(serial)[0] & 0x80, 0);
    /* never outlives the CA (matrix P8) */
    time_le(X509_get0_notAfter(cert), X509_get0_notAfter(f->ca));
    time_le(X509_get0_notBefore(cert), X509_get0_notAfter(cert));
    ERR_clear_error();
}

X509 *
hu_expect_success(struct fixture *f, struct hu_req *q, EVP_PKEY *cert_key)
{
    struct scep_result r;
    struct scep_client_reply rep;
    X509 *cert;

    hu_run(f, q->der, q->der_len, &r);
    if (r.err != SCEP_OK)
        print_error("want success, got %s (HTTP %d)\n", scep_errname(r.err), r.http_status);
    assert_int_equal(r.err, SCEP_OK);
    assert_int_equal(r.http_status, 200);
    assert_string_equal(r.pki_status, "SUCCESS");
    assert_int_equal(
        scep_client_parse_reply(r.body, r.body_len, f->ra, &q->msg.req, cert_key, &rep), SCEP_OK);
    assert_int_equal(rep.status, 0);
    assert_non_null(rep.cert);
    assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(rep.cert), cert_key), 1);
    hu_lint_issued(f, rep.cert);
    cert = rep.cert;
    rep.cert = NULL;
    scep_client_reply_clear(&rep);
    scep_result_clear(&r);
    return cert;
}

int
hu_file_contains(const char *path, const void *needle, size_t nlen)
{
    unsigned char *d = NULL;
    size_t len = 0;
    int found;

    if (access(path, R_OK) != 0)
        return 0;
    assert_int_equal(scep_pki_read_file(path, 64u << 20, &d, &len), SCEP_OK);
    found = memmem(d, len, needle, nlen) != NULL;
    free(d);
    return found;
}

void
hu_csr_patch(unsigned char *csr, size_t len, const void *from, const void *to, size_t n,
             EVP_PKEY *key)
{
    size_t h, b, ch, cb, ah, ab, bh, bb, siglen = 0;
    unsigned char *cri, *alg, *bits, *p, *sig;
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();

    assert_non_null(mctx);
    der_tlv(csr, len, &h, &b);
    cri = csr + h;
    der_tlv(cri, b, &ch, &cb);
    p = memmem(cri, ch + cb, from, n);
    assert_non_null(p);
    memcpy(p, to, n);
    alg = cri + ch + cb;
    der_tlv(alg, b - ch - cb, &ah, &ab);
    bits = alg + ah + ab;
    der_tlv(bits, b - ch - cb - ah - ab, &bh, &bb);
    assert_int_equal(bits[0], 0x03);
    assert_int_equal(bits[bh], 0x00); /* no unused bits */
    assert_int_equal(EVP_DigestSignInit(mctx, NULL, EVP_sha256(), NULL, key), 1);
    assert_int_equal(EVP_DigestSign(mctx, NULL, &siglen, cri, ch + cb), 1);
    sig = malloc(siglen);
    assert_non_null(sig);
    assert_int_equal(EVP_DigestSign(mctx, sig, &siglen, cri, ch + cb), 1);
    assert_int_equal(siglen, bb - 1); /* RSA: the same size as before */
    memcpy(bits + bh + 1, sig, siglen);
    free(sig);
    EVP_MD_CTX_free(mctx);
}

X509_EXTENSION *
hu_ext_san_uri(const char *uri)
{
    GENERAL_NAMES *gns = GENERAL_NAMES_new();
    GENERAL_NAME *g = GENERAL_NAME_new();
    ASN1_IA5STRING *s = ASN1_IA5STRING_new();
    X509_EXTENSION *e;

    assert_non_null(gns);
    assert_non_null(g);
    assert_non_null(s);
    assert_int_equal(ASN1_STRING_set(s, uri, (int)strlen(uri)), 1);
    GENERAL_NAME_set0_value(g, GEN_URI, s);
    assert_true(sk_GENERAL_NAME_push(gns, g) > 0);
    e = X509V3_EXT_i2d(NID_subject_alt_name, 0, gns);
    assert_non_null(e);
    GENERAL_NAMES_free(gns);
    return e;
}
