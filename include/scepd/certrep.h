/*
 * certrep.h - building SCEP replies: CertRep (RFC 8894 §3.3.2), the
 * degenerate certs-only SignedData (§3.4) for GetCACert and for the
 * envelope of a SUCCESS.
 *
 * A CertRep is signed by the RA with a PKCS#1 v1.5 SignerInfo whose
 * signatureAlgorithm is rsaEncryption (strongSwan rejects sha256WithRSA,
 * issue 2); it carries transactionID, messageType, pkiStatus, senderNonce,
 * recipientNonce and, on FAILURE, failInfo and failInfoText (digest P10).
 */
#ifndef SCEPD_CERTREP_H
#define SCEPD_CERTREP_H

#include <stddef.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "scepd/err.h"
#include "scepd/pkimsg.h"

enum scep_pkistatus { SCEP_STATUS_SUCCESS = 0, SCEP_STATUS_FAILURE = 2, SCEP_STATUS_PENDING = 3 };

struct scep_certrep {
    enum scep_pkistatus status;
    int fail_info;                 /* FAILURE only */
    const char *fail_text;         /* FAILURE only; may be NULL */
    const struct scep_pkimsg *req; /* txid, nonce and digest are echoed from it */
    X509 *ra_cert;                 /* signs the reply; borrowed */
    EVP_PKEY *ra_key;              /* borrowed */
    /* SUCCESS only: */
    STACK_OF(X509) * certs;         /* issued certificate first; borrowed */
    X509_CRL *crl;                  /* GetCRL: the CRL (RFC 8894 §3.3.2.1 Table 6); borrowed */
    X509 *recipient;                /* the request signer: the reply is encrypted to it */
    const struct scep_envinfo *env; /* cipher and key transport to mirror */
};

/* DER of the CertRep in *out (malloc'ed, caller frees). */
enum scep_err scep_certrep_build(const struct scep_certrep *r, unsigned char **out,
                                 size_t *outlen) SCEP_WUR;

/*
 * DER of a degenerate certs-only SignedData holding certs in the given order
 * (built with the PKCS7 API, which keeps insertion order; CMS sorts).
 */
enum scep_err scep_certs_only_der(STACK_OF(X509) * certs, unsigned char **out,
                                  size_t *outlen) SCEP_WUR;

/* The same with an optional CRL in the crls field (GetCRL replies). */
enum scep_err scep_degenerate_der(STACK_OF(X509) * certs, X509_CRL *crl, unsigned char **out,
                                  size_t *outlen) SCEP_WUR;

#endif
