/*
 * client.h - the requesting side of SCEP: build a pkiMessage and check a
 * CertRep.  Used by the device agent, scep-bench and the tests; it never
 * trusts a reply it did not verify (RFC 8894 §3.2.1.5: signature by the
 * RA, transactionID and recipientNonce must match).
 */
#ifndef SCEPD_CLIENT_H
#define SCEPD_CLIENT_H

#include <stddef.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "scepd/err.h"

struct scep_client_req {
    int msgtype;              /* 19 PKCSReq, 17 RenewalReq, ... */
    const char *msgtype_text; /* overrides msgtype when set (tests of odd values) */
    const char *txid;         /* printable */
    unsigned char nonce[16];  /* filled by scep_client_build when nonce_len == 0 */
    size_t nonce_len;
    X509 *signer_cert;          /* borrowed */
    EVP_PKEY *signer_key;       /* borrowed */
    const unsigned char *inner; /* messageData (e.g. CSR DER) */
    size_t inner_len;
    X509 *recipient;    /* the RA encryption certificate; borrowed */
    const char *cipher; /* NULL: "AES-128-CBC" */
    const EVP_MD *md;   /* NULL: SHA-256 */
    int oaep;           /* RSAES-OAEP key transport */
    /* When set, signed as the pkcsPKIEnvelope as is, instead of encrypting inner. */
    const unsigned char *envelope;
    size_t envelope_len;
};

/* DER of the pkiMessage in *out (malloc'ed).  Fills the nonce if empty. */
enum scep_err scep_client_build(struct scep_client_req *r, unsigned char **out,
                                size_t *outlen) SCEP_WUR;

/*
 * A PKCS#10 for key with the subject DN ("CN=x,O=y"), an optional
 * challengePassword (PrintableString when it fits, else UTF8String) and an
 * optional dNSName SAN.  *out owned by the caller.
 */
enum scep_err scep_client_make_csr(EVP_PKEY *key, const char *dn, const char *challenge,
                                   const char *san_dns, X509_REQ **out) SCEP_WUR;

/* The self-signed signer certificate of an initial request (RFC 8894 §2.3). */
enum scep_err scep_client_selfsigned(EVP_PKEY *key, const X509_NAME *name, X509 **out) SCEP_WUR;

struct scep_client_reply {
    int status;    /* 0 SUCCESS, 2 FAILURE, 3 PENDING */
    int fail_info; /* -1 when absent */
    char fail_text[256];
    X509 *cert;             /* SUCCESS: the certificate for key; owned (X509_free) */
    X509_CRL *crl;          /* SUCCESS to GetCRL: the CRL; owned */
    STACK_OF(X509) * certs; /* SUCCESS: every certificate of the reply, in order; owned */
};

/*
 * Verify a CertRep: signed by ra_cert, messageType 3, transactionID and
 * recipientNonce equal to req's, pkiStatus present, failInfo iff FAILURE;
 * on SUCCESS decrypt with req->signer_key and find the certificate whose
 * public key is cert_key (the CSR's key); a GetCRL reply's CRL goes to
 * out->crl (then no certificate is needed).  cert_key NULL: check the
 * signature and attributes only, leave out->cert NULL (load generators).  SCEP_E_BAD_SIGNATURE /
 * SCEP_E_ATTR / SCEP_E_DECRYPT / SCEP_E_NO_ENTRY (no matching certificate).
 */
enum scep_err scep_client_parse_reply(const unsigned char *der, size_t len, X509 *ra_cert,
                                      const struct scep_client_req *req, EVP_PKEY *cert_key,
                                      struct scep_client_reply *out) SCEP_WUR;
void scep_client_reply_clear(struct scep_client_reply *r);

#endif
