/*
 * pki.h - key and certificate files: generating the CA and the RA at
 * init, loading them at start-up, and writing secrets with mode 0600.
 * This and signer-side use in certrep/issue are the only code that
 * touches private keys.
 */
#ifndef SCEPD_PKI_H
#define SCEPD_PKI_H

#include <stddef.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "scepd/err.h"

/* "rsa:2048" "rsa:3072" "rsa:4096" "ec:p256" "ec:p384"; *out owned by the caller. */
enum scep_err scep_pki_genkey(const char *spec, EVP_PKEY **out) SCEP_WUR;

/*
 * Parse "CN=a,O=b" (RFC 4514 order as written, '\' escapes) or
 * "/CN=a/O=b" into a name; *out owned by the caller.
 */
enum scep_err scep_pki_parse_dn(const char *text, X509_NAME **out) SCEP_WUR;

/* Self-signed CA certificate valid for days. */
enum scep_err scep_pki_make_root(EVP_PKEY *key, X509_NAME *subject, int days, X509 **out) SCEP_WUR;

/* A CA certificate for key issued by another CA (a rollover successor cross-signed by its
 * predecessor). */
enum scep_err scep_pki_make_ca_signed(EVP_PKEY *key, X509_NAME *subject, X509 *issuer,
                                      EVP_PKEY *issuer_key, int days, X509 **out) SCEP_WUR;

/*
 * RA certificate for ra_key, issued by the CA: keyUsage digitalSignature and
 * keyEncipherment (it signs replies and receives encrypted requests).
 */
enum scep_err scep_pki_make_ra(EVP_PKEY *ra_key, X509_NAME *subject, X509 *ca_cert,
                               EVP_PKEY *ca_key, int days, X509 **out) SCEP_WUR;

/* PEM files.  Writers create the file exclusively (O_EXCL) with the given mode. */
enum scep_err scep_pki_write_key(const char *path, EVP_PKEY *key) SCEP_WUR;
enum scep_err scep_pki_write_cert(const char *path, X509 *x) SCEP_WUR;
enum scep_err scep_pki_read_key(const char *path, EVP_PKEY **out) SCEP_WUR;
enum scep_err scep_pki_read_cert(const char *path, X509 **out) SCEP_WUR;
/* Write len bytes to a new file with mode 0600 and fsync it. */
enum scep_err scep_pki_write_secret(const char *path, const void *p, size_t len) SCEP_WUR;
/* Read a whole small file (at most cap bytes); *out malloc'ed, wiped by the caller. */
enum scep_err scep_pki_read_file(const char *path, size_t cap, unsigned char **out,
                                 size_t *outlen) SCEP_WUR;

/* Random string of [A-Za-z0-9] (no bias), n chars + NUL in out. */
enum scep_err scep_pki_random_text(char *out, size_t n) SCEP_WUR;

#endif
