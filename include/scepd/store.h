/*
 * store.h - persistence: CAs, endpoints, requests (transactions) and
 * certificates.  SQLite today (store_sqlite.c); the PostgreSQL back end
 * will implement the same functions.
 *
 * Durability contract: scep_store_commit_issuance() returns SCEP_OK only
 * after the certificate and its request row are durably committed
 * (SQLite synchronous=FULL); only then may the certificate leave the process.
 * Thread safety: one store may be used from many threads at once.
 */
#ifndef SCEPD_STORE_H
#define SCEPD_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "scepd/err.h"

struct scep_store;

#define SCEP_NAME_MAX 64
#define SCEP_REF_MAX 256

/*
 * Open (create=1: create a new database and its schema; it must not exist).
 * *out owned by the caller (scep_store_close).
 */
enum scep_err scep_store_open(const char *path, int create, struct scep_store **out) SCEP_WUR;
void scep_store_close(struct scep_store *s);

struct scep_ca_row {
    int64_t id;
    char name[SCEP_NAME_MAX];
    unsigned char *cert_der; /* owned by the row: scep_ca_row_clear */
    size_t cert_len;
    char key_ref[SCEP_REF_MAX]; /* key file, relative to the data dir */
    int64_t next_ca_id;         /* the CA prepared to succeed it (rollover), or 0 */
};
void scep_ca_row_clear(struct scep_ca_row *r);
enum scep_err scep_store_add_ca(struct scep_store *s, const struct scep_ca_row *r,
                                int64_t *id) SCEP_WUR;
enum scep_err scep_store_get_ca(struct scep_store *s, int64_t id, struct scep_ca_row *out) SCEP_WUR;
typedef int (*scep_ca_cb)(void *arg, const struct scep_ca_row *row);
enum scep_err scep_store_each_ca(struct scep_store *s, scep_ca_cb cb, void *arg) SCEP_WUR;
/*
 * CA rollover, step 1: store the next CA (next->name, cert, key_ref), make
 * it the successor of ca_id and give the endpoint its next RA.
 * SCEP_E_CONFLICT when a successor is already prepared.
 */
enum scep_err scep_store_prepare_rollover(struct scep_store *s, int64_t endpoint_id, int64_t ca_id,
                                          const struct scep_ca_row *next,
                                          const unsigned char *ra_der, size_t ra_len,
                                          const char *ra_key_ref, int64_t *next_id) SCEP_WUR;
/* Step 2: the endpoint issues from the successor with the next RA.  SCEP_E_NO_ENTRY: none prepared.
 */
enum scep_err scep_store_switch_ca(struct scep_store *s, int64_t endpoint_id) SCEP_WUR;

struct scep_endpoint_row {
    int64_t id;
    char name[SCEP_NAME_MAX];
    int64_t ca_id;
    unsigned char *ra_cert_der; /* owned by the row */
    size_t ra_cert_len;
    char ra_key_ref[SCEP_REF_MAX];
    char challenge_mode[16];          /* "static" */
    unsigned char challenge_hash[32]; /* HMAC-SHA256 under the data dir's secret */
    int has_challenge_hash;
    char getcacert_format[16]; /* "chain" | "single" */
    int allow_des;             /* accept single-DES requests (default 1) */
    int advertise_post;        /* list POSTPKIOperation and SCEPStandard (default 1) */
    int validity_days;
    int enabled;
    int approval_manual;             /* requests wait for an operator (PENDING) */
    int renewal_window_days;         /* renewal not earlier than this before expiry; 0 = any time */
    int renewal_grace_days;          /* an expired certificate may still renew this long */
    int revoke_on_renewal;           /* the renewed certificate is revoked (superseded) */
    int getcert_chain;               /* GetCert answers with the chain, not the certificate alone */
    unsigned char *next_ra_cert_der; /* the RA of the prepared next CA (owned), or NULL */
    size_t next_ra_cert_len;
    char next_ra_key_ref[SCEP_REF_MAX];
};
void scep_endpoint_row_clear(struct scep_endpoint_row *r);
enum scep_err scep_store_add_endpoint(struct scep_store *s, const struct scep_endpoint_row *r,
                                      int64_t *id) SCEP_WUR;
typedef int (*scep_endpoint_cb)(void *arg, const struct scep_endpoint_row *row);
/* Calls cb for every endpoint; cb returns non-zero to stop (SCEP_E_INTERNAL). */
enum scep_err scep_store_each_endpoint(struct scep_store *s, scep_endpoint_cb cb,
                                       void *arg) SCEP_WUR;

enum scep_req_status {
    SCEP_REQ_ISSUED = 1,
    SCEP_REQ_PENDING,
    SCEP_REQ_REJECTED,
    SCEP_REQ_FAILED,
};

struct scep_request_row {
    int64_t id;
    int64_t endpoint_id;
    unsigned char txid[256];
    size_t txid_len;
    unsigned char key_hash[32]; /* SHA-256 of the CSR's SubjectPublicKeyInfo */
    unsigned char csr_hash[32]; /* SHA-256 of the CSR DER */
    int msgtype;
    enum scep_req_status status;
    char serial[48]; /* lower-case hex, when issued */
    int64_t created_at;
    char subject[256]; /* for listings: the CSR subject (filled by each_request) */
    char reason[256];  /* rejection reason */
};

/*
 * The request of (endpoint, txid).  SCEP_E_NO_ENTRY when there is none.
 * When issued and cert_der != NULL, *cert_der (malloc'ed) receives the
 * certificate.
 */
enum scep_err scep_store_find_request(struct scep_store *s, int64_t endpoint_id,
                                      const unsigned char *txid, size_t txid_len,
                                      struct scep_request_row *out, unsigned char **cert_der,
                                      size_t *cert_len) SCEP_WUR;

struct scep_cert_row {
    char serial[48];
    int64_t ca_id;
    int64_t endpoint_id;
    const char *subject;
    const char *sans;
    char sha1[41];
    char sha256[65];
    int64_t not_before;
    int64_t not_after;
    const unsigned char *der;
    size_t der_len;
    const char *status; /* "valid" | "revoked" */
    const unsigned char *txid;
    size_t txid_len;
};

/*
 * One durable transaction: the request row (status issued) and the
 * certificate row.  SCEP_E_CONFLICT when (endpoint, txid) already exists
 * (a concurrent duplicate won: re-read with find_request);
 * SCEP_E_EXISTS when the serial exists (draw a new one);
 * SCEP_E_STORE / SCEP_E_STORE_BUSY on database faults (nothing committed).
 */
enum scep_err scep_store_commit_issuance(struct scep_store *s, const struct scep_request_row *req,
                                         const unsigned char *csr_der, size_t csr_len,
                                         const struct scep_cert_row *cert) SCEP_WUR;

/*
 * The same in two steps, so the caller can build its reply while the batch
 * containing its rows is being made durable: begin queues the rows (all
 * pointers must stay valid until wait returns), wait blocks until the
 * commit is done and returns what commit_issuance would have.  The reply
 * must not leave the process before wait returned SCEP_OK.
 */
struct scep_commit {
    const char *supersede; /* serial to revoke as superseded in the same commit, or NULL */
    const struct scep_request_row *req;
    const unsigned char *csr;
    size_t csr_len;
    const struct scep_cert_row *cert;
    enum scep_err rc;
    int done;
    struct scep_commit *next;
};
enum scep_err scep_store_commit_begin(struct scep_store *s, struct scep_commit *job,
                                      const struct scep_request_row *req,
                                      const unsigned char *csr_der, size_t csr_len,
                                      const struct scep_cert_row *cert,
                                      const char *supersede) SCEP_WUR;

/* A certificate by serial (lower-case hex). */
struct scep_cert_info {
    int64_t ca_id;
    int64_t endpoint_id;
    int revoked;
    int64_t not_before, not_after;
    unsigned char *der; /* malloc'ed: the caller frees */
    size_t der_len;
};
enum scep_err scep_store_get_cert(struct scep_store *s, const char *serial,
                                  struct scep_cert_info *out) SCEP_WUR;
enum scep_err scep_store_commit_wait(struct scep_store *s, struct scep_commit *job) SCEP_WUR;

/*
 * A request that waits for an operator: the request row alone, status
 * pending, committed durably.  SCEP_E_CONFLICT when (endpoint, txid) exists.
 */
enum scep_err scep_store_add_pending(struct scep_store *s, const struct scep_request_row *req,
                                     const unsigned char *csr_der, size_t csr_len,
                                     const char *subject, int64_t *id) SCEP_WUR;
/* Request by id; *csr (malloc'ed) receives its CSR.  SCEP_E_NO_ENTRY when unknown. */
enum scep_err scep_store_get_request(struct scep_store *s, int64_t id, struct scep_request_row *out,
                                     unsigned char **csr, size_t *csr_len) SCEP_WUR;
/*
 * Approve: the pending request becomes issued with cert, atomically and only
 * if it is still pending (SCEP_E_CONFLICT otherwise).  Durable on return.
 */
enum scep_err scep_store_complete_pending(struct scep_store *s, int64_t req_id,
                                          const struct scep_cert_row *cert) SCEP_WUR;
/*
 * Free the transactionID of a finished request for a new transaction (a
 * renewal that reuses it, as clients deriving the ID from the key do): the
 * old row keeps everything, its txid gets the prefix "~ID~".
 */
enum scep_err scep_store_archive_request(struct scep_store *s, int64_t req_id) SCEP_WUR;

/* Reject a pending request (SCEP_E_CONFLICT when it is no longer pending). */
enum scep_err scep_store_reject_pending(struct scep_store *s, int64_t req_id,
                                        const char *reason) SCEP_WUR;
typedef int (*scep_request_cb)(void *arg, const struct scep_request_row *row);
/* Requests, newest first, optionally only with one status. */
enum scep_err scep_store_each_request(struct scep_store *s, const enum scep_req_status *status,
                                      scep_request_cb cb, void *arg) SCEP_WUR;

typedef int (*scep_cert_cb)(void *arg, const struct scep_cert_row *row);
/* Every certificate, oldest first.  Borrowed row values live during the call. */
enum scep_err scep_store_each_cert(struct scep_store *s, scep_cert_cb cb, void *arg) SCEP_WUR;

/*
 * Revoke a valid certificate (RFC 5280 reason code).  SCEP_E_NO_ENTRY for an
 * unknown serial, SCEP_E_CONFLICT when it is already revoked.  *ca_id gets
 * its CA (whose CRL must be remade).
 */
enum scep_err scep_store_revoke(struct scep_store *s, const char *serial, int reason,
                                int64_t *ca_id) SCEP_WUR;
typedef int (*scep_revoked_cb)(void *arg, const char *serial, int64_t revoked_at, int reason);
/* Every revoked certificate of a CA. */
enum scep_err scep_store_each_revoked(struct scep_store *s, int64_t ca_id, scep_revoked_cb cb,
                                      void *arg) SCEP_WUR;
/* The CA's current CRL (SCEP_E_NO_ENTRY when none yet). *der malloc'ed. */
enum scep_err scep_store_get_crl(struct scep_store *s, int64_t ca_id, int64_t *number,
                                 unsigned char **der, size_t *der_len,
                                 int64_t *next_update) SCEP_WUR;
/* Store a new CRL if number is greater than the stored one (else SCEP_E_CONFLICT). */
enum scep_err scep_store_set_crl(struct scep_store *s, int64_t ca_id, int64_t number,
                                 const unsigned char *der, size_t der_len,
                                 int64_t next_update) SCEP_WUR;

/* An issuance profile, chosen by the template name a Microsoft client asks for. */
struct scep_profile_row {
    int64_t id;
    char name[SCEP_NAME_MAX];
    char template_name[128]; /* 1.3.6.1.4.1.311.20.2 name or .21.7 OID; "" for none */
    int validity_days;
    char eku[256]; /* OpenSSL extendedKeyUsage list: "clientAuth,serverAuth,1.2.3" */
};
/* SCEP_E_CONFLICT when the name or template is taken. */
enum scep_err scep_store_add_profile(struct scep_store *s, const struct scep_profile_row *r,
                                     int64_t *id) SCEP_WUR;
typedef int (*scep_profile_cb)(void *arg, const struct scep_profile_row *row);
enum scep_err scep_store_each_profile(struct scep_store *s, scep_profile_cb cb, void *arg) SCEP_WUR;

/* Key-value settings of the installation ("schema_version", ...). */
enum scep_err scep_store_get_meta(struct scep_store *s, const char *key, char *val,
                                  size_t vlen) SCEP_WUR;
enum scep_err scep_store_set_meta(struct scep_store *s, const char *key, const char *val) SCEP_WUR;

#endif
