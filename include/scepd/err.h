/*
 * err.h - the one error table of scepd.
 *
 * Every fallible library function returns an enum scep_err.  Each code has a
 * category, and the category alone decides what a client sees: the HTTP
 * status, or the SCEP failInfo of a CertRep FAILURE (RFC 8894 §3.2.1.4).
 * Handlers never invent replies; they map the code.
 */
#ifndef SCEPD_ERR_H
#define SCEPD_ERR_H

#include <stddef.h>

#define SCEP_WUR __attribute__((warn_unused_result))

/* What a client is told for a category. */
enum scep_errcat {
    SCEP_CAT_OK = 0,
    SCEP_CAT_HTTP400,     /* cannot build a CertRep: plain HTTP 400 */
    SCEP_CAT_HTTP404,     /* unknown endpoint or path */
    SCEP_CAT_HTTP405,     /* wrong method */
    SCEP_CAT_HTTP413,     /* body or field over its cap */
    SCEP_CAT_HTTP429,     /* too many authentication failures from this source */
    SCEP_CAT_HTTP503,     /* infrastructure fault: retry later */
    SCEP_CAT_HTTP500,     /* our bug */
    SCEP_CAT_BADALG,      /* CertRep FAILURE failInfo 0 */
    SCEP_CAT_BADMSGCHECK, /* CertRep FAILURE failInfo 1 */
    SCEP_CAT_BADREQUEST,  /* CertRep FAILURE failInfo 2 */
    SCEP_CAT_BADTIME,     /* CertRep FAILURE failInfo 3 */
    SCEP_CAT_BADCERTID,   /* CertRep FAILURE failInfo 4 */
    SCEP_CAT_LOCAL,       /* a local (operator/tool) error, never sent on the wire */
};

/* X(code, name, category, message) */
#define SCEP_ERR_TABLE(X)                                                                          \
    X(SCEP_OK, "ok", SCEP_CAT_OK, "success")                                                       \
    X(SCEP_E_INTERNAL, "internal", SCEP_CAT_HTTP500, "internal error")                             \
    X(SCEP_E_NOMEM, "nomem", SCEP_CAT_HTTP503, "out of memory")                                    \
    X(SCEP_E_TOO_LARGE, "too_large", SCEP_CAT_HTTP413, "input exceeds its size limit")             \
    X(SCEP_E_BAD_QUERY, "bad_query", SCEP_CAT_HTTP400, "malformed query string")                   \
    X(SCEP_E_BAD_BASE64, "bad_base64", SCEP_CAT_HTTP400, "message= is not valid base64")           \
    X(SCEP_E_NO_OPERATION, "no_operation", SCEP_CAT_HTTP400, "operation= is missing")              \
    X(SCEP_E_UNKNOWN_OPERATION, "unknown_operation", SCEP_CAT_HTTP400, "unknown operation")        \
    X(SCEP_E_NO_MESSAGE, "no_message", SCEP_CAT_HTTP400, "PKIOperation without a message")         \
    X(SCEP_E_NOT_FOUND, "not_found", SCEP_CAT_HTTP404, "no SCEP endpoint at this path")            \
    X(SCEP_E_METHOD, "method", SCEP_CAT_HTTP405, "method not allowed for this operation")          \
    X(SCEP_E_DER, "der", SCEP_CAT_HTTP400, "message is not a CMS ContentInfo")                     \
    X(SCEP_E_DER_TRAILING, "der_trailing", SCEP_CAT_HTTP400, "trailing bytes after the message")   \
    X(SCEP_E_NOT_SIGNED, "not_signed", SCEP_CAT_HTTP400, "message is not a CMS SignedData")        \
    X(SCEP_E_SIGNER_COUNT, "signer_count", SCEP_CAT_HTTP400,                                       \
      "message must have exactly one signer")                                                      \
    X(SCEP_E_NO_SIGNER_CERT, "no_signer_cert", SCEP_CAT_HTTP400,                                   \
      "the signer certificate is not in the message")                                              \
    X(SCEP_E_BAD_SIGNATURE, "bad_signature", SCEP_CAT_HTTP400,                                     \
      "the message signature does not verify")                                                     \
    X(SCEP_E_NO_CONTENT, "no_content", SCEP_CAT_HTTP400, "the signed message has no content")      \
    X(SCEP_E_ATTR, "attr", SCEP_CAT_HTTP400,                                                       \
      "transactionID, messageType or senderNonce missing, repeated or malformed")                  \
    X(SCEP_E_ECONTENT_TYPE, "econtent_type", SCEP_CAT_BADREQUEST,                                  \
      "the signed content type is not id-data")                                                    \
    X(SCEP_E_MSGTYPE, "msgtype", SCEP_CAT_BADREQUEST, "message type not supported")                \
    X(SCEP_E_BAD_DIGEST, "bad_digest", SCEP_CAT_BADALG, "digest algorithm not allowed")            \
    X(SCEP_E_DECRYPT, "decrypt", SCEP_CAT_BADMSGCHECK, "the message could not be decrypted")       \
    X(SCEP_E_CIPHER_REFUSED, "cipher_refused", SCEP_CAT_BADALG,                                    \
      "content encryption algorithm refused by this endpoint")                                     \
    X(SCEP_E_CSR_PARSE, "csr_parse", SCEP_CAT_BADREQUEST,                                          \
      "the decrypted content is not a PKCS#10 request")                                            \
    X(SCEP_E_CSR_SIGNATURE, "csr_signature", SCEP_CAT_BADMSGCHECK,                                 \
      "the PKCS#10 self-signature does not verify")                                                \
    X(SCEP_E_POP, "pop", SCEP_CAT_BADREQUEST,                                                      \
      "the request signer key is not the key in the PKCS#10")                                      \
    X(SCEP_E_KEY_POLICY, "key_policy", SCEP_CAT_BADREQUEST, "key type or size not allowed")        \
    X(SCEP_E_NAME_POLICY, "name_policy", SCEP_CAT_BADREQUEST, "subject or SAN not allowed")        \
    X(SCEP_E_CHALLENGE_MISSING, "challenge_missing", SCEP_CAT_BADREQUEST,                          \
      "the request has no challenge password")                                                     \
    X(SCEP_E_CHALLENGE, "challenge", SCEP_CAT_BADREQUEST, "challenge password rejected")           \
    X(SCEP_E_TXID_KEY, "txid_key", SCEP_CAT_BADREQUEST,                                            \
      "this transactionID belongs to another key or request")                                      \
    X(SCEP_E_RENEWAL_SIGNER, "renewal_signer", SCEP_CAT_BADREQUEST,                                \
      "a RenewalReq must be signed by a certificate this CA issued")                               \
    X(SCEP_E_RENEWAL_REVOKED, "renewal_revoked", SCEP_CAT_BADREQUEST,                              \
      "the certificate to renew is revoked")                                                       \
    X(SCEP_E_RENEWAL_EXPIRED, "renewal_expired", SCEP_CAT_BADREQUEST,                              \
      "the certificate to renew is expired (past the grace period) or not yet valid")              \
    X(SCEP_E_RENEWAL_EARLY, "renewal_early", SCEP_CAT_BADREQUEST,                                  \
      "too early to renew: outside this endpoint's renewal window")                                \
    X(SCEP_E_RENEWAL_IDENTITY, "renewal_identity", SCEP_CAT_BADREQUEST,                            \
      "a renewal must ask for the same subject and names as the certificate it renews")            \
    X(SCEP_E_BAD_IAS, "bad_ias", SCEP_CAT_BADREQUEST,                                              \
      "the message content is not an IssuerAndSerialNumber")                                       \
    X(SCEP_E_UNKNOWN_CERT, "unknown_cert", SCEP_CAT_BADCERTID,                                     \
      "no certificate of this CA with this serial for this requester")                             \
    X(SCEP_E_NO_NEXT_CA, "no_next_ca", SCEP_CAT_HTTP404,                                           \
      "no CA rollover is prepared for this endpoint")                                              \
    X(SCEP_E_REJECTED, "rejected", SCEP_CAT_BADREQUEST, "the request was rejected by an operator") \
    X(SCEP_E_UNKNOWN_TXID, "unknown_txid", SCEP_CAT_BADCERTID,                                     \
      "no request with this transactionID for this key")                                           \
    X(SCEP_E_CHALLENGE_USED, "challenge_used", SCEP_CAT_BADREQUEST,                                \
      "this one-time challenge or token was already used")                                         \
    X(SCEP_E_CHALLENGE_EXPIRED, "challenge_expired", SCEP_CAT_BADREQUEST,                          \
      "the challenge or token has expired")                                                        \
    X(SCEP_E_CHALLENGE_IDENTITY, "challenge_identity", SCEP_CAT_BADREQUEST,                        \
      "the request asks for a subject, name or usage its authorization does not allow")            \
    X(SCEP_E_CHALLENGE_CAP, "challenge_cap", SCEP_CAT_LOCAL,                                       \
      "too many outstanding one-time challenges for this endpoint")                                \
    X(SCEP_E_TOKEN, "token", SCEP_CAT_BADREQUEST,                                                  \
      "the signed token is malformed, for another endpoint, or its signature does not verify")     \
    X(SCEP_E_ACCOUNT_DISABLED, "account_disabled", SCEP_CAT_BADREQUEST,                            \
      "the account of this access code is disabled")                                               \
    X(SCEP_E_DENIED, "denied", SCEP_CAT_BADREQUEST,                                                \
      "the request was denied by the validation service")                                          \
    X(SCEP_E_VALIDATOR, "validator", SCEP_CAT_HTTP503,                                             \
      "the validation service failed or did not answer; retry later")                              \
    X(SCEP_E_NOTIFY, "notify", SCEP_CAT_HTTP503,                                                   \
      "the issuance notification was not accepted; no certificate was issued")                     \
    X(SCEP_E_DUPLICATE_SUBJECT, "duplicate_subject", SCEP_CAT_BADREQUEST,                          \
      "a valid certificate with this subject exists and the profile refuses duplicates")           \
    X(SCEP_E_EKU_POLICY, "eku_policy", SCEP_CAT_BADREQUEST,                                        \
      "the request asks for a key usage or extended key usage the profile does not allow")         \
    X(SCEP_E_NOT_PENDING, "not_pending", SCEP_CAT_LOCAL, "the request is not pending")             \
    X(SCEP_E_ENDPOINT_DISABLED, "endpoint_disabled", SCEP_CAT_HTTP404, "endpoint is disabled")     \
    X(SCEP_E_RATE_LIMITED, "rate_limited", SCEP_CAT_HTTP429,                                       \
      "too many failed authentications from this address; retry later")                            \
    X(SCEP_E_STORE, "store", SCEP_CAT_HTTP503, "the database is unavailable")                      \
    X(SCEP_E_STORE_BUSY, "store_busy", SCEP_CAT_HTTP503, "the database is busy")                   \
    X(SCEP_E_CONFLICT, "conflict", SCEP_CAT_LOCAL, "a concurrent writer won; retry")               \
    X(SCEP_E_SIGN, "sign", SCEP_CAT_HTTP503, "signing failed")                                     \
    X(SCEP_E_IO, "io", SCEP_CAT_LOCAL, "file input/output failed")                                 \
    X(SCEP_E_EXISTS, "exists", SCEP_CAT_LOCAL, "already exists")                                   \
    X(SCEP_E_INVALID_ARG, "invalid_arg", SCEP_CAT_LOCAL, "invalid argument")                       \
    X(SCEP_E_KEY_FILE, "key_file", SCEP_CAT_LOCAL, "cannot load key or certificate")               \
    X(SCEP_E_NO_ENTRY, "no_entry", SCEP_CAT_LOCAL, "no such entry")

enum scep_err {
#define SCEP_X_ENUM(code, name, cat, msg) code,
    SCEP_ERR_TABLE(SCEP_X_ENUM)
#undef SCEP_X_ENUM
        SCEP_E__COUNT
};

/* Write a message for people into errbuf (NUL-terminated, cut to errlen); NULL/0 ignored. */
void scep_errbuf(char *errbuf, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Human message for a code; never NULL, static storage. */
const char *scep_strerror(enum scep_err e);
/* Short stable name for logs ("bad_signature"); static storage. */
const char *scep_errname(enum scep_err e);
enum scep_errcat scep_errcat(enum scep_err e);
/* HTTP status for a category (200 for the CertRep categories). */
int scep_errcat_http_status(enum scep_errcat c);
/* SCEP failInfo for a category, or -1 when the category is not a CertRep. */
int scep_errcat_failinfo(enum scep_errcat c);

#endif
