/*
 * crl.h - certificate revocation lists (RFC 5280 §5) for a CA.
 * Trusts its caller for the list of revoked certificates.
 */
#ifndef SCEPD_CRL_H
#define SCEPD_CRL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "scepd/err.h"

/* How long a CRL is valid (nextUpdate - thisUpdate), and when to remake it. */
#define SCEP_CRL_VALIDITY_SECONDS (7 * 86400)
#define SCEP_CRL_REFRESH_SECONDS (1 * 86400)

struct scep_revoked {
    const char *serial; /* lower-case hex */
    int64_t revoked_at;
    int reason; /* RFC 5280 CRLReason; -1 for none */
};

/*
 * A signed CRL with the given number listing revoked[] (may be empty), valid
 * from now for SCEP_CRL_VALIDITY_SECONDS.  *der malloc'ed.
 */
enum scep_err scep_crl_build(X509 *ca_cert, EVP_PKEY *ca_key, int64_t number,
                             const struct scep_revoked *revoked, size_t n, time_t now,
                             unsigned char **der, size_t *der_len) SCEP_WUR;

/* "keyCompromise" -> 1 ... ; -1 when unknown.  scep_crl_reason_name is the reverse. */
int scep_crl_reason_code(const char *name);
const char *scep_crl_reason_name(int code);

#endif
