/*
 * pkimsg.h - reading a SCEP pkiMessage (RFC 8894 §3): the outer SignedData,
 * its signed attributes, and the inner EnvelopedData.
 *
 * What it trusts: nothing.  The signer certificate is only used to check the
 * signature (no chain; PKCSReq signers are self-signed, digest §1.8).
 * What it must never do: decrypt before the outer signature verified, or let
 * the client tell a bad RSA block from bad CBC padding (matrix C12).
 */
#ifndef SCEPD_PKIMSG_H
#define SCEPD_PKIMSG_H

#include <stddef.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "scepd/err.h"

#define SCEP_MAX_TXID 255
#define SCEP_MAX_NONCE 64
#define SCEP_MIN_NONCE 8
/* A decrypted messageData (a CSR) is never larger than this. */
#define SCEP_MAX_INNER (64 * 1024)

enum scep_msgtype {
    SCEP_MSG_CERTREP = 3,
    SCEP_MSG_RENEWALREQ = 17,
    SCEP_MSG_UPDATEREQ = 18,
    SCEP_MSG_PKCSREQ = 19,
    SCEP_MSG_CERTPOLL = 20,
    SCEP_MSG_GETCERT = 21,
    SCEP_MSG_GETCRL = 22,
};

struct scep_pkimsg {
    int msgtype; /* -1 when not a decimal number */
    unsigned char txid[SCEP_MAX_TXID];
    size_t txid_len;
    int txid_type; /* ASN.1 string type it arrived as, echoed */
    unsigned char nonce[SCEP_MAX_NONCE];
    size_t nonce_len;
    int econtent_is_data;   /* eContentType == id-data */
    const EVP_MD *md;       /* signer digest; static, not owned */
    X509 *signer;           /* owned */
    unsigned char *content; /* owned: the signed eContent (pkcsPKIEnvelope) */
    size_t content_len;
};

/*
 * Parse and verify a pkiMessage.  Every byte of der must be consumed.
 * On success *out is owned by the caller (scep_pkimsg_free).  On failure
 * *out may still be set when the message was authentic enough to answer
 * with a CertRep (signature verified, txid and nonce read): check
 * scep_errcat() of the code and whether *out != NULL.
 */
enum scep_err scep_pkimsg_parse(const unsigned char *der, size_t len,
                                struct scep_pkimsg **out) SCEP_WUR;
void scep_pkimsg_free(struct scep_pkimsg *m);

/* How the request was encrypted, so the reply can mirror it (digest §1.7). */
struct scep_envinfo {
    char cipher[32]; /* OpenSSL cipher name: "AES-128-CBC", "DES-EDE3-CBC", "DES-CBC" */
    int oaep;        /* key transport was RSAES-OAEP */
    int oaep_md_nid; /* OAEP hash (NID_sha1 default) */
    int used_ca_key; /* decrypted with the CA key rather than the RA key */
};

/* One key that may decrypt requests: the RA, or an RSA CA. Borrowed. */
struct scep_decrypt_key {
    X509 *cert;
    EVP_PKEY *pkey;
};

/*
 * Decrypt the pkcsPKIEnvelope in m->content with whichever of keys[] it was
 * encrypted to.  allow_des=0 refuses single DES (SCEP_E_CIPHER_REFUSED).
 * On success *out (malloc'ed, caller wipes+frees via OPENSSL_clear_free) holds
 * the messageData.  Every decryption failure is SCEP_E_DECRYPT.
 */
enum scep_err scep_pkimsg_decrypt(const struct scep_pkimsg *m, const struct scep_decrypt_key *keys,
                                  size_t nkeys, int allow_des, unsigned char **out, size_t *outlen,
                                  struct scep_envinfo *info) SCEP_WUR;

/*
 * The algorithms of the pkcsPKIEnvelope (content cipher, key transport)
 * without decrypting it: for replies to messages whose content scepd does
 * not need (CertPoll).  SCEP_E_DECRYPT when it is not a usable envelope.
 */
enum scep_err scep_pkimsg_envinfo(const struct scep_pkimsg *m, struct scep_envinfo *info) SCEP_WUR;

/* "PKCSReq", "CertPoll", ... or "unknown". */
const char *scep_msgtype_name(int t);

#include <openssl/cms.h>
/*
 * The single value of a signed attribute: 1 found, 0 absent, -1 repeated or
 * with other than one value.  *val borrowed from si.
 */
int scep_signed_attr_one(CMS_SignerInfo *si, int nid, ASN1_TYPE **val);

#endif
