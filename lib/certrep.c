/*
 * certrep.c - build CertRep replies and certs-only bundles (see certrep.h).
 *
 * Trusts: its caller for which status to send.  Must never: put a
 * pkcsPKIEnvelope in a FAILURE or PENDING reply (RFC 8894 §3.3.2.2-3; the
 * eContent is present but empty, see scep_certrep_build),
 * alter the transactionID or shorten/lengthen the recipientNonce.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/pkcs7.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include "scepd/certrep.h"
#include "scepd/buf.h"
#include "scepd/oids.h"

enum scep_err
scep_certs_only_der(STACK_OF(X509) * certs, unsigned char **out, size_t *outlen)
{
    return scep_degenerate_der(certs, NULL, out, outlen);
}

enum scep_err
scep_degenerate_der(STACK_OF(X509) * certs, X509_CRL *crl, unsigned char **out, size_t *outlen)
{
    enum scep_err rc = SCEP_E_INTERNAL;
    PKCS7 *p7 = NULL, *inner = NULL;
    unsigned char *der = NULL;
    int i, len;

    *out = NULL;
    *outlen = 0;
    if ((p7 = PKCS7_new()) == NULL || !PKCS7_set_type(p7, NID_pkcs7_signed))
        goto out;
    /* encapContentInfo {id-data} with the eContent absent (RFC 8894 §3.4). */
    if ((inner = PKCS7_new()) == NULL)
        goto out;
    inner->type = OBJ_nid2obj(NID_pkcs7_data);
    if (!PKCS7_set_content(p7, inner))
        goto out;
    inner = NULL; /* transferred */
    for (i = 0; certs != NULL && i < sk_X509_num(certs); i++)
        if (!PKCS7_add_certificate(p7, sk_X509_value(certs, i)))
            goto out;
    if (crl != NULL && !PKCS7_add_crl(p7, crl))
        goto out;
    if ((len = i2d_PKCS7(p7, &der)) <= 0)
        goto out;
    *out = malloc((size_t)len);
    if (*out == NULL) {
        rc = SCEP_E_NOMEM;
        goto out;
    }
    memcpy(*out, der, (size_t)len);
    *outlen = (size_t)len;
    rc = SCEP_OK;
out:
    OPENSSL_free(der);
    PKCS7_free(inner);
    PKCS7_free(p7);
    ERR_clear_error();
    return rc;
}

/* The EnvelopedData around the certs-only bundle, mirroring the request. */
static enum scep_err
envelope(const struct scep_certrep *r, BIO **out)
{
    enum scep_err rc = SCEP_E_INTERNAL;
    unsigned char *inner = NULL;
    size_t innerlen = 0;
    const EVP_CIPHER *cipher = NULL;
    CMS_ContentInfo *env = NULL;
    CMS_RecipientInfo *ri;
    BIO *in = NULL, *der = NULL;
    int oaep = r->env != NULL && r->env->oaep;
    unsigned int flags = CMS_BINARY | CMS_PARTIAL;

    *out = NULL;
    if ((rc = scep_degenerate_der(r->certs, r->crl, &inner, &innerlen)) != SCEP_OK)
        goto out;
    rc = SCEP_E_INTERNAL;
    cipher = scep_cipher(r->env != NULL && r->env->cipher[0] ? r->env->cipher : "AES-128-CBC");
    if (cipher == NULL)
        goto out;
    if ((env = CMS_encrypt(NULL, NULL, cipher, flags)) == NULL)
        goto out;
    ri = CMS_add1_recipient_cert(env, r->recipient, oaep ? CMS_KEY_PARAM : 0);
    if (ri == NULL)
        goto out;
    if (oaep) {
        EVP_PKEY_CTX *pctx = CMS_RecipientInfo_get0_pkey_ctx(ri);
        const EVP_MD *md =
            EVP_get_digestbynid(r->env->oaep_md_nid ? r->env->oaep_md_nid : NID_sha1);
        if (pctx == NULL || md == NULL ||
            EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_OAEP_PADDING) <= 0 ||
            EVP_PKEY_CTX_set_rsa_oaep_md(pctx, md) <= 0 ||
            EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, md) <= 0)
            goto out;
    }
    if ((in = BIO_new_mem_buf(inner, (int)innerlen)) == NULL)
        goto out;
    if (CMS_final(env, in, NULL, CMS_BINARY) != 1)
        goto out;
    if ((der = BIO_new(BIO_s_mem())) == NULL || i2d_CMS_bio(der, env) != 1)
        goto out;
    *out = der;
    der = NULL; /* transferred */
    rc = SCEP_OK;
out:
    BIO_free(der);
    BIO_free(in);
    CMS_ContentInfo_free(env);
    free(inner);
    return rc;
}

static int
add_str(CMS_SignerInfo *si, int nid, int type, const void *p, size_t len)
{
    return CMS_signed_add1_attr_by_NID(si, nid, type, p, (int)len) == 1;
}

enum scep_err
scep_certrep_build(const struct scep_certrep *r, unsigned char **out, size_t *outlen)
{
    const struct scep_nids *n = scep_nids();
    enum scep_err rc = SCEP_E_INTERNAL;
    CMS_ContentInfo *cms = NULL;
    CMS_SignerInfo *si;
    BIO *content = NULL, *der = NULL;
    unsigned char nonce[16];
    char num[16];
    const EVP_MD *md = r->req->md != NULL ? r->req->md : EVP_sha256();
    unsigned int flags = CMS_PARTIAL | CMS_BINARY | CMS_NOSMIMECAP;
    int success = r->status == SCEP_STATUS_SUCCESS;

    *out = NULL;
    *outlen = 0;
    /*
     * FAILURE and PENDING carry no pkcsPKIEnvelope: the eContent is an empty
     * OCTET STRING rather than absent.  certmonger (and anything verifying
     * with OpenSSL's PKCS7_verify) rejects an absent eContent with "no
     * content"; the Go SCEP library behind micromdm and step-ca sends the
     * empty form too, which Apple and Windows clients accept.
     */
    if (success) {
        if ((rc = envelope(r, &content)) != SCEP_OK)
            goto out;
        rc = SCEP_E_INTERNAL;
    } else if ((content = BIO_new(BIO_s_mem())) == NULL) {
        goto out;
    }
    if ((cms = CMS_sign(NULL, NULL, NULL, NULL, flags)) == NULL)
        goto out;
    if ((si = CMS_add1_signer(cms, r->ra_cert, r->ra_key, md, CMS_NOSMIMECAP)) == NULL)
        goto out;
    if (RAND_bytes(nonce, sizeof(nonce)) != 1)
        goto out;
    snprintf(num, sizeof(num), "%d", (int)r->status);
    if (!add_str(si, n->transaction_id, r->req->txid_type, r->req->txid, r->req->txid_len) ||
        !add_str(si, n->message_type, V_ASN1_PRINTABLESTRING, "3", 1) ||
        !add_str(si, n->pki_status, V_ASN1_PRINTABLESTRING, num, strlen(num)) ||
        !add_str(si, n->sender_nonce, V_ASN1_OCTET_STRING, nonce, sizeof(nonce)) ||
        !add_str(si, n->recipient_nonce, V_ASN1_OCTET_STRING, r->req->nonce, r->req->nonce_len))
        goto out;
    if (r->status == SCEP_STATUS_FAILURE) {
        snprintf(num, sizeof(num), "%d", r->fail_info);
        if (!add_str(si, n->fail_info, V_ASN1_PRINTABLESTRING, num, strlen(num)))
            goto out;
        if (r->fail_text != NULL &&
            !add_str(si, n->fail_info_text, V_ASN1_UTF8STRING, r->fail_text, strlen(r->fail_text)))
            goto out;
    }
    if (CMS_final(cms, content, NULL, flags) != 1)
        goto out;
    if ((der = BIO_new(BIO_s_mem())) == NULL || i2d_CMS_bio(der, cms) != 1)
        goto out;
    rc = scep_bio_copy(der, out, outlen);
out:
    ERR_clear_error();
    BIO_free(der);
    BIO_free(content);
    CMS_ContentInfo_free(cms);
    return rc;
}
