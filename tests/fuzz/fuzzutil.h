/*
 * fuzzutil.h - what the scepd fuzz targets share: the fixed test keys under
 * tests/fuzz/keys/ (RA, a second "CA" decryption key, and a client), loaded
 * once from LLVMFuzzerInitialize.
 *
 * Trusts: the key files, which are test material committed with the tree
 * and must never be used for anything but fuzzing and its seed corpus.
 */
#ifndef SCEPD_FUZZUTIL_H
#define SCEPD_FUZZUTIL_H

#include <stddef.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

struct fuzz_keys {
    EVP_PKEY *ra_key;     /* decrypts requests, signs CertReps */
    X509 *ra_cert;
    EVP_PKEY *ca_key;     /* the second decryption key (used_ca_key) */
    X509 *ca_cert;
    EVP_PKEY *client_key; /* signs requests, decrypts CertRep envelopes */
    X509 *client_cert;
};

/*
 * scep_lib_init() and the keys, from $SCEPD_FUZZ_KEYS or the directory
 * compiled in (SCEPD_FUZZ_KEYDIR).  Exits the process on failure: a fuzz
 * run without its keys would silently cover nothing.  Borrowed; freed at exit.
 */
const struct fuzz_keys *fuzz_init(void);

/*
 * Run a decrypted messageData through every PKCS#10 check the service makes,
 * in the service's order but without stopping at the first refusal:
 * scep_csr_parse, scep_csr_verify_self, scep_csr_check_pop (when signer is
 * given), scep_csr_check_key, scep_csr_challenge, scep_issue_check_names,
 * plus scep_csr_extensions and scep_key_hash.  Returns 1 when it parsed.
 */
int fuzz_csr_checks(const unsigned char *der, size_t len, X509 *signer);

/* The transactionID and nonce of the request every CertRep seed answers. */
#define FUZZ_TXID "scepd-fuzz-txid-0001"
#define FUZZ_NONCE "scepd-fuzz-nonc"  /* 15 characters + NUL = 16 bytes */

#endif
