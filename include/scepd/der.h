/*
 * der.h - reading certificates, requests and CMS messages without OpenSSL
 * 3.0's per-key decoder.
 *
 * OpenSSL 3.0 turns every SubjectPublicKeyInfo it parses into a key through
 * a decoder context built afresh each time (OSSL_DECODER_CTX_new_for_pkey:
 * about 100 us and many global lock round trips per key on our machines;
 * OpenSSL 3.1 caches it).  A PKCSReq carries two keys (the signer
 * certificate's and the CSR's), a CertRep one (the RA certificate's): a
 * tenth of an enrollment's CPU.  Here the DER is parsed in a library
 * context without providers, where that decode is skipped, and the objects
 * that need their key get it made directly from the SubjectPublicKeyInfo
 * (plain RSA) or, for every other key type, by OpenSSL's ordinary decoder.
 * Either way the object ends up as d2i would have made it: same DER, same
 * key (fuzz_der compares the two on every input, unit_csr on crafted ones).
 *
 * Trusts: nothing; the input is the client's.
 */
#ifndef SCEPD_DER_H
#define SCEPD_DER_H

#include <openssl/asn1.h>
#include <openssl/x509.h>

#include "scepd/err.h"

/*
 * d2i of item it (*pp advanced as d2i does) in which no public key is
 * decoded: certificates and requests inside have no key until given one
 * below.  NULL on bad DER.
 */
void *scep_der_keyless(const ASN1_ITEM *it, const unsigned char **pp, long len);

/*
 * Give a certificate parsed by scep_der_keyless its public key, the fast
 * way: 1 for plain RSA whose DER stays exactly the same.  Otherwise 0,
 * and x may have been changed: discard it and read the
 * original bytes with the ordinary d2i (the caller has them; OpenSSL does
 * not keep every certificate's original encoding, and a re-encoding is not
 * always readable again).
 */
int scep_der_cert_key(X509 *x) SCEP_WUR;

/* d2i_X509 (same result, same *pp advance), with the key read the fast way when it can be. */
X509 *scep_der_cert(const unsigned char **pp, long len);

/*
 * Same for a request; der/len are the bytes it was parsed from (re-read by
 * the ordinary d2i when the fast path does not apply).
 */
enum scep_err scep_der_req_key(X509_REQ **r, const unsigned char *der, size_t len) SCEP_WUR;

#endif
