/*
 * pkimsg.c - parse, verify and decrypt a SCEP pkiMessage (RFC 8894 §3).
 *
 * Trusts: nothing in the message.  The outer signature is checked with the
 * signer certificate carried in the message, without a chain (digest §1.8):
 * whether that signer is trusted is decided later (challenge or renewal).
 * Must never: decrypt before the signature verified; tell the client which
 * step of decryption failed (one SCEP_E_DECRYPT for all, matrix C12); turn
 * on CMS_DEBUG_DECRYPT (it disables OpenSSL's MMA defence).
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/pkcs7.h>
#include <openssl/rsa.h>

#include "scepd/der.h"
#include "scepd/oids.h"
#include "scepd/pkimsg.h"

const char *
scep_msgtype_name(int t)
{
    switch (t) {
    case SCEP_MSG_CERTREP:
        return "CertRep";
    case SCEP_MSG_RENEWALREQ:
        return "RenewalReq";
    case SCEP_MSG_UPDATEREQ:
        return "UpdateReq";
    case SCEP_MSG_PKCSREQ:
        return "PKCSReq";
    case SCEP_MSG_CERTPOLL:
        return "CertPoll";
    case SCEP_MSG_GETCERT:
        return "GetCert";
    case SCEP_MSG_GETCRL:
        return "GetCRL";
    default:
        return "unknown";
    }
}

void
scep_pkimsg_free(struct scep_pkimsg *m)
{
    if (m == NULL)
        return;
    X509_free(m->signer);
    OPENSSL_clear_free(m->content, m->content_len);
    OPENSSL_cleanse(m, sizeof(*m));
    free(m);
}

int
scep_signed_attr_one(CMS_SignerInfo *si, int nid, ASN1_TYPE **val)
{
    int loc = CMS_signed_get_attr_by_NID(si, nid, -1);
    X509_ATTRIBUTE *a;

    *val = NULL;
    if (loc < 0)
        return 0;
    if (CMS_signed_get_attr_by_NID(si, nid, loc) >= 0)
        return -1;
    a = CMS_signed_get_attr(si, loc);
    if (a == NULL || X509_ATTRIBUTE_count(a) != 1)
        return -1;
    *val = X509_ATTRIBUTE_get0_type(a, 0);
    return *val != NULL ? 1 : -1;
}

static int
is_text_type(int t)
{
    return t == V_ASN1_PRINTABLESTRING || t == V_ASN1_UTF8STRING || t == V_ASN1_IA5STRING;
}

/* Reads transactionID, senderNonce and messageType into m. */
static enum scep_err
read_attrs(CMS_SignerInfo *si, struct scep_pkimsg *m)
{
    const struct scep_nids *n = scep_nids();
    ASN1_TYPE *v;
    const unsigned char *d;
    int len, i, val;

    if (scep_signed_attr_one(si, n->transaction_id, &v) != 1 || !is_text_type(v->type))
        return SCEP_E_ATTR;
    len = ASN1_STRING_length(v->value.asn1_string);
    if (len < 1 || len > SCEP_MAX_TXID)
        return SCEP_E_ATTR;
    memcpy(m->txid, ASN1_STRING_get0_data(v->value.asn1_string), (size_t)len);
    m->txid_len = (size_t)len;
    m->txid_type = v->type;

    if (scep_signed_attr_one(si, n->sender_nonce, &v) != 1 || v->type != V_ASN1_OCTET_STRING)
        return SCEP_E_ATTR;
    len = ASN1_STRING_length(v->value.octet_string);
    /* Echoed at whatever length arrived: old iOS sends 8 bytes (digest P13). */
    if (len < SCEP_MIN_NONCE || len > SCEP_MAX_NONCE)
        return SCEP_E_ATTR;
    memcpy(m->nonce, ASN1_STRING_get0_data(v->value.octet_string), (size_t)len);
    m->nonce_len = (size_t)len;

    /* A missing or non-numeric messageType is answered FAILURE, not 400. */
    m->msgtype = -1;
    if (scep_signed_attr_one(si, n->message_type, &v) == 1 && is_text_type(v->type)) {
        len = ASN1_STRING_length(v->value.asn1_string);
        d = ASN1_STRING_get0_data(v->value.asn1_string);
        if (len >= 1 && len <= 3) {
            val = 0;
            for (i = 0; i < len; i++) {
                if (d[i] < '0' || d[i] > '9')
                    break;
                val = val * 10 + (d[i] - '0');
            }
            if (i == len)
                m->msgtype = val;
        }
    }
    return SCEP_OK;
}

static const EVP_MD *
allowed_digest(CMS_SignerInfo *si)
{
    X509_ALGOR *dig = NULL;

    CMS_SignerInfo_get0_algs(si, NULL, NULL, &dig, NULL);
    if (dig == NULL)
        return NULL;
    switch (OBJ_obj2nid(dig->algorithm)) {
    case NID_sha1:
        return EVP_sha1();
    case NID_sha224:
        return EVP_sha224();
    case NID_sha256:
        return EVP_sha256();
    case NID_sha384:
        return EVP_sha384();
    case NID_sha512:
        return EVP_sha512();
    default:
        return NULL; /* MD5 and the unknown: RFC 8894 §2.9 */
    }
}

/*
 * The outer SignedData and its signer certificate (with its key), read the
 * fast way (der.h) or, with ordinary set, by OpenSSL's own d2i.  *retry is
 * set when the fast way cannot give the signer its key: the caller then
 * reads the message again the ordinary way.
 */
static enum scep_err
read_signed(const unsigned char *der, size_t len, int ordinary, CMS_ContentInfo **cmsp,
            X509 **signer, int *retry)
{
    enum scep_err rc = SCEP_E_INTERNAL;
    const unsigned char *p = der;
    CMS_ContentInfo *cms;
    STACK_OF(CMS_SignerInfo) * sis;
    STACK_OF(X509) *certs = NULL;
    CMS_SignerInfo *si;
    X509 *x = NULL;
    int i;

    *cmsp = NULL;
    *signer = NULL;
    *retry = 0;
    cms = ordinary ? d2i_CMS_ContentInfo(NULL, &p, (long)len)
                   : scep_der_keyless(ASN1_ITEM_rptr(CMS_ContentInfo), &p, (long)len);
    if (cms == NULL) {
        rc = SCEP_E_DER;
        goto out;
    }
    /* d2i stops at the end of the outer TLV; anything after it is refused. */
    if (p != der + len) {
        rc = SCEP_E_DER_TRAILING;
        goto out;
    }
    if (OBJ_obj2nid(CMS_get0_type(cms)) != NID_pkcs7_signed) {
        rc = SCEP_E_NOT_SIGNED;
        goto out;
    }
    sis = CMS_get0_SignerInfos(cms);
    if (sis == NULL || sk_CMS_SignerInfo_num(sis) != 1) {
        rc = SCEP_E_SIGNER_COUNT;
        goto out;
    }
    si = sk_CMS_SignerInfo_value(sis, 0);
    if (CMS_signed_get_attr_count(si) <= 0) {
        rc = SCEP_E_ATTR;
        goto out;
    }
    certs = CMS_get1_certs(cms);
    /*
     * Keys first: matching a signer named by subjectKeyIdentifier caches
     * the certificate's extension flags, and "self-signed" is decided with
     * its key (set after, the flag would stay as without one).
     */
    for (i = 0; !ordinary && certs != NULL && i < sk_X509_num(certs); i++) {
        if (!scep_der_cert_key(sk_X509_value(certs, i))) {
            *retry = 1;
            goto out;
        }
    }
    for (i = 0; certs != NULL && i < sk_X509_num(certs); i++) {
        X509 *c = sk_X509_value(certs, i);
        if (CMS_SignerInfo_cert_cmp(si, c) == 0) {
            if (!X509_up_ref(c))
                goto out;
            x = c;
            break;
        }
    }
    if (x == NULL) {
        rc = SCEP_E_NO_SIGNER_CERT;
        goto out;
    }
    /* CMS_verify takes the signer's key from here (the certificate as read above). */
    CMS_SignerInfo_set1_signer_cert(si, x);
    *cmsp = cms;
    cms = NULL; /* transferred */
    *signer = x;
    x = NULL; /* transferred */
    rc = SCEP_OK;
out:
    sk_X509_pop_free(certs, X509_free);
    X509_free(x);
    CMS_ContentInfo_free(cms);
    return rc;
}

enum scep_err
scep_pkimsg_parse(const unsigned char *der, size_t len, struct scep_pkimsg **out)
{
    enum scep_err rc = SCEP_E_INTERNAL;
    CMS_ContentInfo *cms = NULL;
    STACK_OF(CMS_SignerInfo) * sis;
    CMS_SignerInfo *si;
    ASN1_OCTET_STRING **pos;
    struct scep_pkimsg *m = NULL;
    BIO *cont = NULL;
    BUF_MEM *bm;
    int retry;

    *out = NULL;
    if (len == 0 || len > INT_MAX) {
        rc = SCEP_E_DER;
        goto out;
    }
    if ((m = calloc(1, sizeof(*m))) == NULL) {
        rc = SCEP_E_NOMEM;
        goto out;
    }
    rc = read_signed(der, len, 0, &cms, &m->signer, &retry);
    if (retry)
        rc = read_signed(der, len, 1, &cms, &m->signer, &retry);
    if (rc != SCEP_OK)
        goto out;
    sis = CMS_get0_SignerInfos(cms);
    si = sk_CMS_SignerInfo_value(sis, 0);
    pos = CMS_get0_content(cms);
    if (pos == NULL || *pos == NULL || ASN1_STRING_length(*pos) <= 0) {
        rc = SCEP_E_NO_CONTENT;
        goto out;
    }
    m->econtent_is_data = OBJ_obj2nid(CMS_get0_eContentType(cms)) == NID_pkcs7_data;
    if ((cont = BIO_new(BIO_s_mem())) == NULL) {
        rc = SCEP_E_NOMEM;
        goto out;
    }
    /* The signer is self-signed for PKCSReq: check the signature only. */
    if (CMS_verify(cms, NULL, NULL, NULL, cont, CMS_NO_SIGNER_CERT_VERIFY | CMS_BINARY) != 1) {
        rc = SCEP_E_BAD_SIGNATURE;
        goto out;
    }
    if ((rc = read_attrs(si, m)) != SCEP_OK)
        goto out;
    m->md = allowed_digest(si);
    BIO_get_mem_ptr(cont, &bm);
    if (bm == NULL || bm->length == 0) {
        rc = SCEP_E_NO_CONTENT;
        goto out;
    }
    if ((m->content = malloc(bm->length)) == NULL) {
        rc = SCEP_E_NOMEM;
        goto out;
    }
    memcpy(m->content, bm->data, bm->length);
    m->content_len = bm->length;
    *out = m;
    m = NULL; /* transferred */
    rc = SCEP_OK;
out:
    ERR_clear_error();
    BIO_free(cont);
    CMS_ContentInfo_free(cms);
    scep_pkimsg_free(m);
    return rc;
}

/* Content-encryption algorithm of a DER EnvelopedData ContentInfo. */
static int
content_cipher_nid(const unsigned char *der, size_t len)
{
    const unsigned char *p = der;
    PKCS7 *p7 = d2i_PKCS7(NULL, &p, (long)len);
    int nid = NID_undef;

    if (p7 != NULL && PKCS7_type_is_enveloped(p7) && p7->d.enveloped != NULL &&
        p7->d.enveloped->enc_data != NULL && p7->d.enveloped->enc_data->algorithm != NULL)
        nid = OBJ_obj2nid(p7->d.enveloped->enc_data->algorithm->algorithm);
    PKCS7_free(p7);
    return nid;
}

static int
oaep_md_nid(const X509_ALGOR *alg)
{
    RSA_OAEP_PARAMS *op;
    int nid = NID_sha1;

    if (alg->parameter == NULL || alg->parameter->type != V_ASN1_SEQUENCE)
        return nid;
    op = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(RSA_OAEP_PARAMS), alg->parameter);
    if (op == NULL)
        return NID_undef;
    if (op->hashFunc != NULL)
        nid = OBJ_obj2nid(op->hashFunc->algorithm);
    RSA_OAEP_PARAMS_free(op);
    return nid;
}

enum scep_err
scep_pkimsg_envinfo(const struct scep_pkimsg *m, struct scep_envinfo *info)
{
    const unsigned char *p = m->content;
    CMS_ContentInfo *env = NULL;
    STACK_OF(CMS_RecipientInfo) * ris;
    X509_ALGOR *kalg = NULL;
    enum scep_err rc = SCEP_E_DECRYPT;
    int cnid, i;

    memset(info, 0, sizeof(*info));
    if (m->content_len > INT_MAX)
        return rc;
    env = d2i_CMS_ContentInfo(NULL, &p, (long)m->content_len);
    if (env == NULL || p != m->content + m->content_len ||
        OBJ_obj2nid(CMS_get0_type(env)) != NID_pkcs7_enveloped)
        goto out;
    ris = CMS_get0_RecipientInfos(env);
    for (i = 0; ris != NULL && i < sk_CMS_RecipientInfo_num(ris); i++) {
        CMS_RecipientInfo *r = sk_CMS_RecipientInfo_value(ris, i);
        if (CMS_RecipientInfo_type(r) == CMS_RECIPINFO_TRANS &&
            CMS_RecipientInfo_ktri_get0_algs(r, NULL, NULL, &kalg) == 1 && kalg != NULL) {
            if (OBJ_obj2nid(kalg->algorithm) == NID_rsaesOaep) {
                info->oaep = 1;
                info->oaep_md_nid = oaep_md_nid(kalg);
            }
            break;
        }
    }
    cnid = content_cipher_nid(m->content, m->content_len);
    if (cnid == NID_aes_128_cbc || cnid == NID_aes_192_cbc || cnid == NID_aes_256_cbc ||
        cnid == NID_des_ede3_cbc || cnid == NID_des_cbc) {
        snprintf(info->cipher, sizeof(info->cipher), "%s", OBJ_nid2sn(cnid));
        rc = SCEP_OK;
    }
out:
    ERR_clear_error();
    CMS_ContentInfo_free(env);
    return rc;
}

enum scep_err
scep_pkimsg_decrypt(const struct scep_pkimsg *m, const struct scep_decrypt_key *keys, size_t nkeys,
                    int allow_des, unsigned char **out, size_t *outlen, struct scep_envinfo *info)
{
    enum scep_err rc = SCEP_E_DECRYPT;
    const unsigned char *p = m->content;
    CMS_ContentInfo *env = NULL;
    STACK_OF(CMS_RecipientInfo) * ris;
    CMS_RecipientInfo *ri = NULL;
    const struct scep_decrypt_key *key = NULL;
    X509_ALGOR *kalg = NULL;
    BIO *plain = NULL;
    BUF_MEM *bm;
    size_t k;
    int i, cnid;

    *out = NULL;
    *outlen = 0;
    memset(info, 0, sizeof(*info));
    if (m->content_len > INT_MAX)
        goto out;
    env = d2i_CMS_ContentInfo(NULL, &p, (long)m->content_len);
    if (env == NULL || p != m->content + m->content_len ||
        OBJ_obj2nid(CMS_get0_type(env)) != NID_pkcs7_enveloped)
        goto out;
    ris = CMS_get0_RecipientInfos(env);
    /*
     * Only key transport to one of our certificates: the recipient type is
     * checked before CMS_decrypt ever runs (matrix C10).
     */
    for (k = 0; k < nkeys && key == NULL; k++) {
        for (i = 0; ris != NULL && i < sk_CMS_RecipientInfo_num(ris); i++) {
            CMS_RecipientInfo *r = sk_CMS_RecipientInfo_value(ris, i);
            if (CMS_RecipientInfo_type(r) == CMS_RECIPINFO_TRANS &&
                CMS_RecipientInfo_ktri_cert_cmp(r, keys[k].cert) == 0) {
                ri = r;
                key = &keys[k];
                info->used_ca_key = k > 0;
                break;
            }
        }
    }
    if (key == NULL)
        goto out;
    if (CMS_RecipientInfo_ktri_get0_algs(ri, NULL, NULL, &kalg) != 1 || kalg == NULL)
        goto out;
    switch (OBJ_obj2nid(kalg->algorithm)) {
    case NID_rsaEncryption:
        break;
    case NID_rsaesOaep:
        info->oaep = 1;
        info->oaep_md_nid = oaep_md_nid(kalg);
        if (info->oaep_md_nid == NID_undef)
            goto out;
        break;
    default:
        goto out;
    }
    cnid = content_cipher_nid(m->content, m->content_len);
    switch (cnid) {
    case NID_aes_128_cbc:
    case NID_aes_192_cbc:
    case NID_aes_256_cbc:
    case NID_des_ede3_cbc:
        break;
    case NID_des_cbc:
        if (!allow_des || !scep_lib_have_des()) {
            rc = SCEP_E_CIPHER_REFUSED;
            goto out;
        }
        break;
    default:
        rc = SCEP_E_CIPHER_REFUSED;
        goto out;
    }
    snprintf(info->cipher, sizeof(info->cipher), "%s", OBJ_nid2sn(cnid));
    if ((plain = BIO_new(BIO_s_secmem())) == NULL) {
        rc = SCEP_E_NOMEM;
        goto out;
    }
    /*
     * With the certificate given, OpenSSL decrypts only that RecipientInfo
     * and, on an RSA failure, goes on with a random content key (the MMA
     * defence), so a bad key block and bad CBC padding fail the same way.
     */
    if (CMS_decrypt(env, key->pkey, key->cert, NULL, plain, CMS_BINARY) != 1)
        goto out;
    BIO_get_mem_ptr(plain, &bm);
    if (bm == NULL || bm->length == 0 || bm->length > SCEP_MAX_INNER)
        goto out;
    if ((*out = OPENSSL_malloc(bm->length)) == NULL) {
        rc = SCEP_E_NOMEM;
        goto out;
    }
    memcpy(*out, bm->data, bm->length);
    *outlen = bm->length;
    rc = SCEP_OK;
out:
    ERR_clear_error();
    BIO_free(plain);
    CMS_ContentInfo_free(env);
    return rc;
}
