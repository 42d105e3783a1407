/*
 * client.c - building SCEP requests and verifying CertReps (see client.h).
 *
 * Trusts: only a reply whose signature verifies with the RA certificate the
 * caller pinned, whose transactionID and recipientNonce match the request.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/pkcs7.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include "scepd/client.h"
#include "scepd/buf.h"
#include "scepd/der.h"
#include "scepd/oids.h"
#include "scepd/pki.h"
#include "scepd/pkimsg.h"

enum scep_err
scep_client_build(struct scep_client_req *r, unsigned char **out, size_t *outlen)
{
    const struct scep_nids *n = scep_nids();
    enum scep_err rc = SCEP_E_INTERNAL;
    CMS_ContentInfo *env = NULL, *cms = NULL;
    CMS_RecipientInfo *ri;
    CMS_SignerInfo *si;
    EVP_CIPHER *cipher = NULL;
    BIO *in = NULL, *envder = NULL, *der = NULL;
    char mt[16];
    const char *mtext;
    unsigned int flags = CMS_BINARY | CMS_PARTIAL | CMS_NOSMIMECAP;

    *out = NULL;
    *outlen = 0;
    if (r->nonce_len == 0) {
        if (RAND_bytes(r->nonce, sizeof(r->nonce)) != 1)
            return SCEP_E_INTERNAL;
        r->nonce_len = sizeof(r->nonce);
    }
    if (r->envelope != NULL) {
        if ((envder = BIO_new(BIO_s_mem())) == NULL ||
            BIO_write(envder, r->envelope, (int)r->envelope_len) != (int)r->envelope_len)
            goto out;
        goto sign;
    }
    /* Encrypt first, then sign the result (RFC 8894 §3.1). */
    if ((cipher = EVP_CIPHER_fetch(NULL, r->cipher ? r->cipher : "AES-128-CBC", NULL)) == NULL)
        goto out;
    if ((env = CMS_encrypt(NULL, NULL, cipher, CMS_BINARY | CMS_PARTIAL)) == NULL)
        goto out;
    if ((ri = CMS_add1_recipient_cert(env, r->recipient, r->oaep ? CMS_KEY_PARAM : 0)) == NULL)
        goto out;
    if (r->oaep) {
        EVP_PKEY_CTX *pctx = CMS_RecipientInfo_get0_pkey_ctx(ri);
        if (pctx == NULL || EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_OAEP_PADDING) <= 0)
            goto out;
    }
    if ((in = BIO_new_mem_buf(r->inner, (int)r->inner_len)) == NULL ||
        CMS_final(env, in, NULL, CMS_BINARY) != 1)
        goto out;
    if ((envder = BIO_new(BIO_s_mem())) == NULL || i2d_CMS_bio(envder, env) != 1)
        goto out;
sign:
    if ((cms = CMS_sign(NULL, NULL, NULL, NULL, flags)) == NULL)
        goto out;
    si = CMS_add1_signer(cms, r->signer_cert, r->signer_key, r->md ? r->md : EVP_sha256(),
                         CMS_NOSMIMECAP);
    if (si == NULL)
        goto out;
    snprintf(mt, sizeof(mt), "%d", r->msgtype);
    mtext = r->msgtype_text ? r->msgtype_text : mt;
    if (CMS_signed_add1_attr_by_NID(si, n->transaction_id, V_ASN1_PRINTABLESTRING, r->txid,
                                    (int)strlen(r->txid)) != 1 ||
        CMS_signed_add1_attr_by_NID(si, n->message_type, V_ASN1_PRINTABLESTRING, mtext,
                                    (int)strlen(mtext)) != 1 ||
        CMS_signed_add1_attr_by_NID(si, n->sender_nonce, V_ASN1_OCTET_STRING, r->nonce,
                                    (int)r->nonce_len) != 1)
        goto out;
    if (CMS_final(cms, envder, NULL, flags) != 1)
        goto out;
    if ((der = BIO_new(BIO_s_mem())) == NULL || i2d_CMS_bio(der, cms) != 1)
        goto out;
    rc = scep_bio_copy(der, out, outlen);
out:
    ERR_clear_error();
    BIO_free(der);
    BIO_free(envder);
    BIO_free(in);
    CMS_ContentInfo_free(cms);
    CMS_ContentInfo_free(env);
    EVP_CIPHER_free(cipher);
    return rc;
}

enum scep_err
scep_client_make_csr(EVP_PKEY *key, const char *dn, const char *challenge, const char *san_dns,
                     X509_REQ **out)
{
    enum scep_err rc = SCEP_E_INTERNAL;
    X509_REQ *req = NULL;
    X509_NAME *name = NULL;
    STACK_OF(X509_EXTENSION) *exts = NULL;
    X509_EXTENSION *ext = NULL;

    *out = NULL;
    if ((rc = scep_pki_parse_dn(dn, &name)) != SCEP_OK)
        return rc;
    rc = SCEP_E_INTERNAL;
    if ((req = X509_REQ_new()) == NULL || !X509_REQ_set_version(req, X509_REQ_VERSION_1) ||
        !X509_REQ_set_subject_name(req, name) || !X509_REQ_set_pubkey(req, key))
        goto out;
    if (challenge != NULL) {
        int type =
            ASN1_PRINTABLE_type((const unsigned char *)challenge, -1) == V_ASN1_PRINTABLESTRING
                ? MBSTRING_ASC
                : MBSTRING_UTF8;
        if (!X509_REQ_add1_attr_by_NID(req, NID_pkcs9_challengePassword, type,
                                       (const unsigned char *)challenge, -1))
            goto out;
    }
    if (san_dns != NULL) {
        char v[300];
        snprintf(v, sizeof(v), "DNS:%s", san_dns);
        if ((exts = sk_X509_EXTENSION_new_null()) == NULL ||
            (ext = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, v)) == NULL ||
            !sk_X509_EXTENSION_push(exts, ext))
            goto out;
        ext = NULL;
        if (!X509_REQ_add_extensions(req, exts))
            goto out;
    }
    if (X509_REQ_sign(req, key, EVP_sha256()) <= 0)
        goto out;
    *out = req;
    req = NULL;
    rc = SCEP_OK;
out:
    ERR_clear_error();
    X509_EXTENSION_free(ext);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    X509_NAME_free(name);
    X509_REQ_free(req);
    return rc;
}

enum scep_err
scep_client_selfsigned(EVP_PKEY *key, const X509_NAME *name, X509 **out)
{
    X509 *x = X509_new();
    unsigned char sb[8];
    BIGNUM *bn = NULL;
    time_t now = time(NULL), nb = now - 3600, na = now + 86400;
    X509V3_CTX ctx;
    X509_EXTENSION *ext = NULL;
    int ok;

    *out = NULL;
    ok = x != NULL && RAND_bytes(sb, sizeof(sb)) == 1;
    sb[0] &= 0x7f;
    ok = ok && (bn = BN_bin2bn(sb, sizeof(sb), NULL)) != NULL &&
         BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL &&
         X509_set_version(x, X509_VERSION_3) && X509_set_subject_name(x, name) &&
         X509_set_issuer_name(x, name) && X509_set_pubkey(x, key) &&
         X509_time_adj_ex(X509_getm_notBefore(x), 0, 0, &nb) != NULL &&
         X509_time_adj_ex(X509_getm_notAfter(x), 0, 0, &na) != NULL;
    if (ok) {
        X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
        ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_key_usage,
                                  EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA
                                      ? "critical,digitalSignature,keyEncipherment"
                                      : "critical,digitalSignature,keyAgreement");
        ok = ext != NULL && X509_add_ext(x, ext, -1) && X509_sign(x, key, EVP_sha256()) > 0;
    }
    X509_EXTENSION_free(ext);
    BN_free(bn);
    ERR_clear_error();
    if (!ok) {
        X509_free(x);
        return SCEP_E_INTERNAL;
    }
    *out = x;
    return SCEP_OK;
}

void
scep_client_reply_clear(struct scep_client_reply *r)
{
    X509_free(r->cert);
    X509_CRL_free(r->crl);
    sk_X509_pop_free(r->certs, X509_free);
    memset(r, 0, sizeof(*r));
    r->fail_info = -1;
}

static int
attr_text(CMS_SignerInfo *si, int nid, char *buf, size_t len)
{
    ASN1_TYPE *v;
    int n;

    if (scep_signed_attr_one(si, nid, &v) != 1)
        return -1;
    if (v->type != V_ASN1_PRINTABLESTRING && v->type != V_ASN1_UTF8STRING)
        return -1;
    n = ASN1_STRING_length(v->value.asn1_string);
    if (n < 0 || (size_t)n >= len)
        return -1;
    memcpy(buf, ASN1_STRING_get0_data(v->value.asn1_string), (size_t)n);
    buf[n] = '\0';
    return n;
}

/* The certificates and CRL of a DER degenerate SignedData; the one for key in out->cert. */
static int
read_bundle(const unsigned char *der, size_t len, EVP_PKEY *key, struct scep_client_reply *out)
{
    const unsigned char *p = der;
    PKCS7 *p7 = d2i_PKCS7(NULL, &p, (long)len);
    STACK_OF(X509) * certs;
    int i, ok = 0;

    if (p7 == NULL || p != der + len || !PKCS7_type_is_signed(p7) || p7->d.sign == NULL)
        goto out;
    certs = p7->d.sign->cert;
    if ((out->certs = sk_X509_new_null()) == NULL)
        goto out;
    for (i = 0; certs != NULL && i < sk_X509_num(certs); i++) {
        X509 *c = sk_X509_value(certs, i);
        if (!X509_up_ref(c) || !sk_X509_push(out->certs, c))
            goto out;
        if (out->cert == NULL && EVP_PKEY_eq(X509_get0_pubkey(c), key) == 1 && X509_up_ref(c))
            out->cert = c;
    }
    if (p7->d.sign->crl != NULL && sk_X509_CRL_num(p7->d.sign->crl) > 0) {
        out->crl = sk_X509_CRL_value(p7->d.sign->crl, 0);
        if (!X509_CRL_up_ref(out->crl))
            out->crl = NULL;
    }
    ok = out->cert != NULL || out->crl != NULL;
out:
    PKCS7_free(p7);
    ERR_clear_error();
    return ok;
}

enum scep_err
scep_client_parse_reply(const unsigned char *der, size_t len, X509 *ra_cert,
                        const struct scep_client_req *req, EVP_PKEY *cert_key,
                        struct scep_client_reply *out)
{
    const struct scep_nids *n = scep_nids();
    enum scep_err rc = SCEP_E_DER;
    const unsigned char *p = der;
    CMS_ContentInfo *cms = NULL, *env = NULL;
    STACK_OF(CMS_SignerInfo) * sis;
    STACK_OF(X509) *extra = NULL;
    CMS_SignerInfo *si;
    ASN1_OCTET_STRING **pos;
    ASN1_TYPE *v;
    BIO *content = NULL, *dcont = NULL, *plain = NULL;
    BUF_MEM *bm;
    char buf[300];
    int detached, empty;

    memset(out, 0, sizeof(*out));
    out->fail_info = -1;
    if (len == 0 || len > INT_MAX ||
        (cms = scep_der_keyless(ASN1_ITEM_rptr(CMS_ContentInfo), &p, (long)len)) == NULL ||
        p != der + len || OBJ_obj2nid(CMS_get0_type(cms)) != NID_pkcs7_signed)
        goto out;
    sis = CMS_get0_SignerInfos(cms);
    if (sis == NULL || sk_CMS_SignerInfo_num(sis) != 1)
        goto out;
    si = sk_CMS_SignerInfo_value(sis, 0);
    rc = SCEP_E_BAD_SIGNATURE;
    if (CMS_SignerInfo_cert_cmp(si, ra_cert) != 0)
        goto out;
    if ((extra = sk_X509_new_null()) == NULL || !sk_X509_push(extra, ra_cert))
        goto out;
    pos = CMS_get0_content(cms);
    /* FAILURE/PENDING: eContent absent (RFC 8894) or empty (Go SCEP, scepd). */
    detached = pos == NULL || *pos == NULL;
    empty = detached || ASN1_STRING_length(*pos) == 0;
    if ((content = BIO_new(BIO_s_mem())) == NULL)
        goto out;
    if (detached && (dcont = BIO_new_mem_buf("", 0)) == NULL)
        goto out;
    if (CMS_verify(cms, extra, NULL, dcont, content,
                   CMS_NO_SIGNER_CERT_VERIFY | CMS_BINARY | CMS_NOINTERN) != 1)
        goto out;
    rc = SCEP_E_ATTR;
    if (attr_text(si, n->message_type, buf, sizeof(buf)) < 0 || strcmp(buf, "3") != 0)
        goto out;
    if (attr_text(si, n->transaction_id, buf, sizeof(buf)) < 0 || strcmp(buf, req->txid) != 0)
        goto out;
    if (scep_signed_attr_one(si, n->recipient_nonce, &v) != 1 || v->type != V_ASN1_OCTET_STRING ||
        (size_t)ASN1_STRING_length(v->value.octet_string) != req->nonce_len ||
        memcmp(ASN1_STRING_get0_data(v->value.octet_string), req->nonce, req->nonce_len) != 0)
        goto out;
    if (scep_signed_attr_one(si, n->sender_nonce, &v) != 1 || v->type != V_ASN1_OCTET_STRING)
        goto out;
    if (attr_text(si, n->pki_status, buf, sizeof(buf)) != 1)
        goto out;
    out->status = buf[0] - '0';
    if (out->status != 0 && out->status != 2 && out->status != 3)
        goto out;
    if (out->status == 2) {
        if (attr_text(si, n->fail_info, buf, sizeof(buf)) != 1)
            goto out;
        out->fail_info = buf[0] - '0';
        if (attr_text(si, n->fail_info_text, out->fail_text, sizeof(out->fail_text)) < 0)
            out->fail_text[0] = '\0';
    } else if (scep_signed_attr_one(si, n->fail_info, &v) != 0) {
        goto out; /* failInfo only with FAILURE */
    }
    if (out->status != 0) {
        rc = empty ? SCEP_OK : SCEP_E_ATTR; /* no envelope in FAILURE/PENDING */
        goto out;
    }
    if (cert_key == NULL) {
        rc = SCEP_OK; /* the caller did not ask for the certificate */
        goto out;
    }
    rc = SCEP_E_DECRYPT;
    BIO_get_mem_ptr(content, &bm);
    if (bm == NULL || bm->length == 0)
        goto out;
    p = (const unsigned char *)bm->data;
    if ((env = d2i_CMS_ContentInfo(NULL, &p, (long)bm->length)) == NULL)
        goto out;
    if ((plain = BIO_new(BIO_s_mem())) == NULL ||
        CMS_decrypt(env, req->signer_key, req->signer_cert, NULL, plain, CMS_BINARY) != 1)
        goto out;
    BIO_get_mem_ptr(plain, &bm);
    if (bm == NULL || bm->length == 0)
        goto out;
    rc = SCEP_E_NO_ENTRY;
    if (!read_bundle((const unsigned char *)bm->data, bm->length, cert_key, out))
        goto out;
    rc = SCEP_OK;
out:
    ERR_clear_error();
    sk_X509_free(extra);
    BIO_free(plain);
    BIO_free(dcont);
    BIO_free(content);
    CMS_ContentInfo_free(env);
    CMS_ContentInfo_free(cms);
    return rc;
}
