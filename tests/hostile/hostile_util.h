/*
 * hostile_util.h - builders and expectations for the hostile-input suite
 * (matrix §3 of docs/hostile-input-matrix.md): pkiMessages that are wrong in
 * one precise way, CSRs with chosen names, extensions and keys, and the
 * checks every negative case shares (exact outcome, no certificate row, the
 * suite-wide counters, a log line per request like the daemon writes).
 *
 * Everything here asserts with cmocka on failure to build: a builder that
 * silently produced a different message would make a negative test pass
 * for the wrong reason.
 */
#ifndef SCEPD_HOSTILE_UTIL_H
#define SCEPD_HOSTILE_UTIL_H

#include "../unit/testutil.h"

#include <openssl/cms.h>
#include <openssl/x509v3.h>

/* Ways to build a pkiMessage wrong (struct hu_msg.hacks). */
#define HU_NO_TXID (1u << 0)     /* no transactionID attribute */
#define HU_NO_NONCE (1u << 1)    /* no senderNonce attribute */
#define HU_NO_MSGTYPE (1u << 2)  /* no messageType attribute */
#define HU_NO_SIGNERS (1u << 3)  /* certs-only: zero SignerInfos */
#define HU_TWO_SIGNERS (1u << 4) /* a second SignerInfo (signer2/key2) */
#define HU_NOCERTS (1u << 5)     /* the signer certificate is left out */
#define HU_DETACHED (1u << 6)    /* eContent absent */
#define HU_TXID_TWICE (1u << 7)  /* two transactionID attributes */

/*
 * One pkiMessage.  req holds what a client keeps to check the reply
 * (txid, nonce, signer) and what scep_client_parse_reply reads; the rest
 * says how to break the SignedData around the envelope.
 */
struct hu_msg {
    struct scep_client_req req;
    unsigned hacks;
    X509 *signer2; /* HU_TWO_SIGNERS; borrowed */
    EVP_PKEY *key2;
    X509 *extra_cert;              /* added to certificates as well; borrowed */
    const unsigned char *txid_raw; /* transactionID bytes instead of req.txid */
    size_t txid_raw_len;
    int txid_type;                 /* ASN.1 type of the transactionID; 0: PrintableString */
    const ASN1_TIME *signing_time; /* a signingTime attribute of our choice */
};

/* DER SignedData around content (content_len may be 0); *out malloc'ed. */
void hu_sign(struct hu_msg *m, const unsigned char *content, size_t content_len,
             unsigned char **out, size_t *outlen);

/* DER EnvelopedData (or AuthEnvelopedData for an AEAD cipher) of in to recipient. */
void hu_envelope(X509 *recipient, const char *cipher, const unsigned char *in, size_t inlen,
                 unsigned char **out, size_t *outlen);
/* The same with a password (PWRI) or a pre-shared key (KEK) recipient only. */
void hu_envelope_pwri(const unsigned char *in, size_t inlen, unsigned char **out, size_t *outlen);
void hu_envelope_kek(const unsigned char *in, size_t inlen, unsigned char **out, size_t *outlen);

/* Self-signed signer certificate "CN=hostile-signer" for key; owned. */
X509 *hu_selfsigned(EVP_PKEY *key);

/*
 * A PKCS#10 with public key pub, signed with sign_key (NULL: pub, which
 * must then hold the private key), subject name (NULL: empty subject),
 * challenge (NULL: none) and exts (NULL: no extensionRequest).
 * *out malloc'ed.
 */
void hu_csr(EVP_PKEY *pub, EVP_PKEY *sign_key, const X509_NAME *name, const char *challenge,
            STACK_OF(X509_EXTENSION) * exts, unsigned char **out, size_t *outlen);
/*
 * Replace the n bytes from (inside the CertificationRequestInfo) with to
 * and re-sign with key (RSA, SHA-256): for contents OpenSSL refuses to
 * encode, like invalid UTF-8 in a UTF8String.
 */
void hu_csr_patch(unsigned char *csr, size_t len, const void *from, const void *to, size_t n,
                  EVP_PKEY *key);
/* X509_NAME from "CN=a,O=b"; owned. */
X509_NAME *hu_name(const char *dn);

/* Keys.  All owned by the caller. */
EVP_PKEY *hu_key_rsa(unsigned bits, unsigned long e);
EVP_PKEY *hu_key_ec(const char *curve, int explicit_params);
/* An RSA public key with a random odd modulus of bits bits: no private half exists. */
EVP_PKEY *hu_fake_rsa_pub(unsigned bits, unsigned long e);

/* An extension from OpenSSL config text ("critical,CA:TRUE"), or raw DER value by OID. */
X509_EXTENSION *hu_ext_conf(int nid, const char *value);
/* subjectAltName with one URI, any characters (config text cannot hold a comma). */
X509_EXTENSION *hu_ext_san_uri(const char *uri);
X509_EXTENSION *hu_ext_raw(const char *oid, int critical, const unsigned char *der, size_t len);

/*
 * A whole request: CSR (given) enveloped to the fixture's RA with
 * AES-128-CBC, signed by a self-signed certificate of signer_key, a fresh
 * random transactionID.  Change q->msg or q->env and call hu_req_build.
 */
struct hu_req {
    struct hu_msg msg;
    X509 *signer;
    unsigned char *csr;
    size_t csr_len;
    unsigned char *env;
    size_t env_len;
    unsigned char *der;
    size_t der_len;
    char txid[64];
};
/* Takes ownership of csr (malloc'ed). */
void hu_req_init(struct hu_req *q, struct fixture *f, EVP_PKEY *signer_key, unsigned char *csr,
                 size_t csr_len);
/* The usual device request: key signs and is certified, CN=dn, the right challenge. */
void hu_req_simple(struct hu_req *q, struct fixture *f, EVP_PKEY *key, const char *dn,
                   const char *challenge);
/* Replace the envelope (takes ownership of env, malloc'ed) and rebuild. */
void hu_req_set_env(struct hu_req *q, unsigned char *env, size_t env_len);
void hu_req_build(struct hu_req *q);
void hu_req_clear(struct hu_req *q);

/* Suite-wide bookkeeping. */
struct hu_stats {
    unsigned long requests;  /* PKIOperations run */
    unsigned long negatives; /* negative expectations checked */
    long neg_issued;         /* certificate rows written by negative cases: must stay 0 */
};
extern struct hu_stats hu_stats;

/* Send the library log (and our per-request lines) to a fresh temp file. */
void hu_log_open(void);
/* The log file contents (malloc'ed, NUL-terminated). */
char *hu_log_read(size_t *len);
void hu_log_close(void);

/* Run a PKIOperation and log it like the daemon's request line. */
void hu_run(struct fixture *f, const unsigned char *der, size_t len, struct scep_result *r);

/* Plain HTTP error: status and exact code; no certificate row. */
void hu_expect_http(struct fixture *f, const unsigned char *der, size_t len, int status,
                    enum scep_err err);
/*
 * CertRep FAILURE for q: exact code, failInfo and failInfoText, verified as
 * a client would (RA signature, txid, recipientNonce); no certificate row.
 */
void hu_expect_failure(struct fixture *f, struct hu_req *q, int fail_info, enum scep_err err);
/*
 * SUCCESS for q: the certificate for cert_key, chaining to the CA, passing
 * hu_lint_issued; returned (owned).
 */
X509 *hu_expect_success(struct fixture *f, struct hu_req *q, EVP_PKEY *cert_key);

/*
 * The profile every issued certificate must have whatever the CSR asked:
 * CA:FALSE (critical), keyUsage exactly digitalSignature+keyEncipherment
 * (RSA) or digitalSignature+keyAgreement (EC), EKU exactly clientAuth, no
 * extension outside BC/KU/EKU/SKI/AKI/SAN, each at most once, serial of 16
 * positive octets, notAfter <= the CA's notAfter.
 */
void hu_lint_issued(struct fixture *f, X509 *cert);

/* Milliseconds since an arbitrary origin (CLOCK_MONOTONIC). */
double hu_now_ms(void);

/* 1 when needle occurs in the file at path (missing file: 0). */
int hu_file_contains(const char *path, const void *needle, size_t nlen);

#endif
