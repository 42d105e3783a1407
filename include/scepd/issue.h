/*
 * issue.h - turning an authorized PKCS#10 into a signed certificate.
 *
 * Trusts: its caller to have authorized the request.  Builds every
 * extension itself; from the CSR it takes only the public key, the subject
 * and the SAN types allowed here, never CA flags, key usages, policies or
 * the Microsoft SID extension/URI (matrix P3, P4).
 */
#ifndef SCEPD_ISSUE_H
#define SCEPD_ISSUE_H

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "scepd/err.h"

/* Intune's strong-mapping SAN URI for a Windows SID (KB5014754) */
#define SCEP_SID_URI_PREFIX "tag:microsoft.com,2022-09-14:sid:"
#define SCEP_SERIAL_BYTES 16
#define SCEP_SERIAL_HEX (2 * SCEP_SERIAL_BYTES + 1)
/* notBefore is set this far in the past to absorb client clock skew. */
#define SCEP_BACKDATE_SECONDS 3600

struct scep_issue_opts {
    X509 *ca_cert;              /* borrowed */
    EVP_PKEY *ca_key;           /* borrowed */
    int validity_days;          /* 1..36500; clamped to the CA's notAfter */
    const char *cdp_url;        /* CRL distribution point URI, or NULL */
    const char *eku;            /* extendedKeyUsage list; NULL: clientAuth */
    long long validity_seconds; /* when > 0 and shorter than validity_days: this instead */
    /* Set by policy (policy.h); NULL/0 keeps the CSR's subject and SANs and default usages: */
    const X509_NAME *subject; /* the subject to issue */
    int use_sans;             /* 1: exactly sans below (NULL for none), not the CSR's */
    const GENERAL_NAMES *sans;
    const char *key_usage; /* keyUsage list; NULL: by key type */
    const char *aia_url;   /* caIssuers URL, or NULL */
    const char *sid;       /* Windows SID: SAN URI + extension 1.3.6.1.4.1.311.25.2 */
};

/*
 * Check the CSR's subject and SANs: printable, NUL-free, valid UTF-8, CN at
 * most 64 characters, at least one name; SANs only DNS, email, IP and URI
 * (not the Microsoft SID URI).  SCEP_E_NAME_POLICY otherwise.
 */
enum scep_err scep_issue_check_names(X509_REQ *req) SCEP_WUR;

/*
 * May a request carry this SAN URI?  Printable, no control characters or
 * white space (RFC 3986), at most 2048 characters, and never the Microsoft
 * SID URI (tag:microsoft.com,2022-09-14:sid:, any case): that one only an
 * authorization gives (matrix P4, ESC16).
 */
int scep_san_uri_ok(const ASN1_STRING *uri);

/*
 * Build and sign a certificate for req with a fresh random serial
 * (SCEP_SERIAL_BYTES from the CSPRNG, positive).  *out owned by the caller;
 * serial_hex receives the lower-case hex of the serial.
 * The subject key is copied as encoded (no OpenSSL key encoder/decoder
 * round trip), so X509_get0_pubkey(*out) is NULL: encode it (i2d_X509) and
 * parse it again before using its key; everything else works as is.
 */
enum scep_err scep_issue_cert(X509_REQ *req, const struct scep_issue_opts *o, X509 **out,
                              char serial_hex[SCEP_SERIAL_HEX]) SCEP_WUR;

/* Lower-case hex of a certificate's serial into buf (at most 41 chars + NUL). */
void scep_serial_hex(const X509 *x, char *buf, size_t buflen);

/* The SHA-1 and SHA-256 fingerprints of x, lower-case hex. */
void scep_cert_thumbprints(const X509 *x, char sha1[41], char sha256[65]);

/* RFC 4514-style subject of x, UTF-8, into a malloc'ed string (NULL on ENOMEM). */
char *scep_name_to_text(const X509_NAME *n);

/* The SANs of x as "DNS:a, email:b, ..." text, malloc'ed; "" when none. */
char *scep_cert_sans_text(const X509 *x);

#endif
