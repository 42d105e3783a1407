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
    EVP_PKEY *ra_key; /* decrypts requests, signs CertReps */
    X509 *ra_cert;
    EVP_PKEY *ca_key; /* the second decryption key (used_ca_key) */
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
 * plus scep_csr_requested_validity, scep_csr_template,
 * scep_csr_without_challenge, scep_csr_extensions, scep_key_hash and
 * scep_spki_hash.  abort()s when
 * scep_csr_check_key accepts a key outside the policy csr.h states.
 * Returns 1 when it parsed.
 */
int fuzz_csr_checks(const unsigned char *der, size_t len, X509 *signer);

/*
 * The "signed" input format of fuzz_pkimsg_signed and fuzz_certrep_signed:
 * the fuzzer controls what is signed and the harness signs it, so mutated
 * attributes and envelopes get past the signature check (which a fuzzer
 * cannot forge).  Layout, every field optional (input may end anywhere):
 *
 *   byte  digest    0 SHA-256, 1 SHA-1, 2 SHA-512, 3 SHA-384, 4 SHA-224, 5 MD5
 *   byte  content   0 eContent = the rest, 1 empty eContent, 2 absent
 *                   (detached), 3 the rest with eContentType envelopedData
 *   7 attribute slots, in FUZZ_ATTR_* order, each:
 *     byte  count   values in the attribute's SET: 0 (attribute absent), 1, 2
 *     count times:  byte type (FUZZ_TYPE_*), byte len, len bytes
 *   rest  eContent
 */
enum {
    FUZZ_ATTR_MESSAGE_TYPE,
    FUZZ_ATTR_PKI_STATUS,
    FUZZ_ATTR_FAIL_INFO,
    FUZZ_ATTR_SENDER_NONCE,
    FUZZ_ATTR_RECIPIENT_NONCE,
    FUZZ_ATTR_TRANSACTION_ID,
    FUZZ_ATTR_FAIL_INFO_TEXT,
    FUZZ_ATTR_COUNT
};
enum {
    FUZZ_TYPE_PRINTABLE,
    FUZZ_TYPE_UTF8,
    FUZZ_TYPE_IA5,
    FUZZ_TYPE_OCTET,
    FUZZ_TYPE_BMP,
    FUZZ_TYPE_T61,
    FUZZ_TYPE_INTEGER,
    FUZZ_TYPE_COUNT
};

/*
 * Build the SignedData an input in the format above describes, signed by
 * signer/key (which goes into the certificates).  *der malloc'ed.
 * Returns 0 when OpenSSL refuses to build it (the input is then skipped).
 */
int fuzz_signed_build(const unsigned char *in, size_t inlen, X509 *signer, EVP_PKEY *key,
                      unsigned char **der, size_t *derlen);

/* An EC P-256 key with a self-signed certificate, made once (fast signing). */
void fuzz_ec_signer(EVP_PKEY **key, X509 **cert);

/* The transactionID and nonce of the request every CertRep seed answers. */
#define FUZZ_TXID "scepd-fuzz-txid-0001"
#define FUZZ_NONCE "scepd-fuzz-nonc" /* 15 characters + NUL = 16 bytes */

#endif
