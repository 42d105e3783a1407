/*
 * csr.h - reading the PKCS#10 inside a PKCSReq/RenewalReq (RFC 8894 §3.3.1).
 *
 * Trusts: nothing; the CSR comes from the client.  Its values are only
 * proposals for policy: nothing here decides what gets issued.
 */
#ifndef SCEPD_CSR_H
#define SCEPD_CSR_H

#include <stddef.h>

#include <openssl/x509.h>

#include "scepd/err.h"

#define SCEP_MAX_CHALLENGE 1024

/*
 * Parse DER; every byte must be consumed and the encoding must be DER (the
 * request re-encodes to the same bytes).  *out owned by the caller.
 */
enum scep_err scep_csr_parse(const unsigned char *der, size_t len, X509_REQ **out) SCEP_WUR;

/* The self-signature verifies (X509_REQ_verify(...) == 1, never "!= 0"). */
enum scep_err scep_csr_verify_self(X509_REQ *req) SCEP_WUR;

/* Proof of possession for PKCSReq: the signer certificate's key is the CSR key. */
enum scep_err scep_csr_check_pop(X509_REQ *req, X509 *signer) SCEP_WUR;

/*
 * Key policy: RSA 2048..8192 bits with an odd public exponent >= 65537, or
 * EC on P-256 / P-384 / P-521 (named curves only).
 */
enum scep_err scep_csr_check_key(X509_REQ *req) SCEP_WUR;

/*
 * The challengePassword attribute (PKCS#9, any DirectoryString; Windows
 * sends PrintableString), as UTF-8 in buf (terminated).  SCEP_E_NO_ENTRY
 * when absent, SCEP_E_CSR_PARSE when malformed or repeated.  The caller
 * wipes buf.
 */
enum scep_err scep_csr_challenge(X509_REQ *req, char *buf, size_t buflen, size_t *len) SCEP_WUR;

/*
 * SHA-256 of the CSR public key (SubjectPublicKeyInfo DER): the identity of
 * a request's key in the store.
 */
enum scep_err scep_key_hash(EVP_PKEY *pkey, unsigned char out[32]) SCEP_WUR;
/* The same from the encoded SubjectPublicKeyInfo (no key encoder involved). */
enum scep_err scep_spki_hash(const X509_PUBKEY *spki, unsigned char out[32]) SCEP_WUR;

/*
 * The validity a Windows client asks for: the Microsoft enrollment
 * name-value pairs (1.3.6.1.4.1.311.13.2.1, MS-WCCE §2.2.2.7.10)
 * ValidityPeriod (Seconds|Minutes|Hours|Days|Weeks|Months|Years) and
 * ValidityPeriodUnits (a count), as seconds (months 30 days, years 365).
 * SCEP_E_NO_ENTRY when not asked; SCEP_E_CSR_PARSE when malformed.
 */
enum scep_err scep_csr_requested_validity(X509_REQ *req, long long *seconds) SCEP_WUR;

/*
 * The CSR's DER without its challengePassword attribute(s), for storage:
 * the challenge is never kept (its self-signature then no longer verifies;
 * the stored copy is a record, checked when it arrived).  *out
 * OPENSSL_malloc'ed.  req keeps its attributes (their order may change).
 */
enum scep_err scep_csr_without_challenge(X509_REQ *req, unsigned char **out,
                                         size_t *outlen) SCEP_WUR;

/*
 * The certificate template a Microsoft client names in its request: the
 * extension 1.3.6.1.4.1.311.20.2 (a name, BMPString) or 1.3.6.1.4.1.311.21.7
 * (a template OID, given as dotted text).  SCEP_E_NO_ENTRY when absent.
 */
enum scep_err scep_csr_template(X509_REQ *req, char *buf, size_t buflen) SCEP_WUR;

/* The requested extensions, or NULL; owned by the caller. */
STACK_OF(X509_EXTENSION) * scep_csr_extensions(X509_REQ *req);

#endif
