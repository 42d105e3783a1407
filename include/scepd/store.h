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

#include <pthread.h>
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
    char organization[128]; /* fixed O of every certificate (set once at creation), or "" */
    char department[128];   /* fixed OU (set once at creation), or "" */
    int64_t profile_id;     /* the endpoint's profile, or 0 */
    char mode_config[2048]; /* JSON: settings of the challenge mode (no secrets) */
    char notify_url[512];   /* events are delivered here, or "" */
    int max_outstanding;    /* cap on unused, unexpired one-time challenges */
};
void scep_endpoint_row_clear(struct scep_endpoint_row *r);
enum scep_err scep_store_add_endpoint(struct scep_store *s, const struct scep_endpoint_row *r,
                                      int64_t *id) SCEP_WUR;
/*
 * Change the mutable settings of endpoint r->id (everything but name, CA,
 * RA, organization and department).  SCEP_E_NO_ENTRY when unknown.
 */
enum scep_err scep_store_update_endpoint(struct scep_store *s,
                                         const struct scep_endpoint_row *r) SCEP_WUR;
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
    char authz[2048];  /* a pending request's authorization (JSON, policy.h), or "" */
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
/*
 * What else an issuance changes in its own commit (all optional, zero =
 * nothing): the one-time challenge it consumes (only while unused and
 * unexpired, else the whole job fails with SCEP_E_CHALLENGE_USED or
 * SCEP_E_CHALLENGE_EXPIRED), the token nonce it records (a replay fails
 * with SCEP_E_CHALLENGE_USED), the valid certificates of the same subject
 * and CA it revokes as superseded (duplicate-subject rule "revoke") or
 * whose existence fails it (rule "refuse"), the
 * outbox event and the audit row it writes.
 */
struct scep_commit_extra {
    int64_t consume_challenge;
    const char *nonce;
    int64_t nonce_expires;
    int revoke_same_subject;
    int refuse_same_subject; /* fail (SCEP_E_DUPLICATE_SUBJECT) if one is valid at commit */
    int64_t account_id;
    const char *device_id;
    const char *event_kind; /* "success" | "failure" */
    const char *event_json;
    int event_pending; /* a receiver is configured: deliver it (else kept as "local") */
    const char *audit_actor;
    const char *audit_action;  /* "issue" when NULL */
    const char *audit_outcome; /* "ok" when NULL */
    const char *audit_reason;
    const char *endpoint_name;
    const char *object; /* audit object of a refusal (transaction id) */
};

struct scep_commit {
    const struct scep_commit_extra *extra;
    const char *supersede; /* serial to revoke as superseded in the same commit, or NULL */
    const struct scep_request_row *req;
    const unsigned char *csr;
    size_t csr_len;
    const struct scep_cert_row *cert;
    enum scep_err rc;
    int done;
    pthread_cond_t *waiter; /* scep_store_commit_wait's, signalled alone when done */
    int detached;           /* nobody waits: the writer frees it (refusal records) */
    int64_t endpoint_id;    /* of a refusal (req == NULL) */
    struct scep_commit *next;
};
enum scep_err scep_store_commit_begin(struct scep_store *s, struct scep_commit *job,
                                      const struct scep_request_row *req,
                                      const unsigned char *csr_der, size_t csr_len,
                                      const struct scep_cert_row *cert, const char *supersede,
                                      const struct scep_commit_extra *extra) SCEP_WUR;

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
 * A request that waits for an operator: the request row, status pending,
 * with the authorization it was made under (authz JSON, or NULL), committed
 * durably; x's one-time challenge and token nonce (if any) are used up in
 * the same transaction (SCEP_E_CHALLENGE_USED when they no longer can be).
 * SCEP_E_CONFLICT when (endpoint, txid) exists.
 */
enum scep_err scep_store_add_pending(struct scep_store *s, const struct scep_request_row *req,
                                     const unsigned char *csr_der, size_t csr_len,
                                     const char *authz, const struct scep_commit_extra *x,
                                     int64_t *id) SCEP_WUR;
/* Request by id; *csr (malloc'ed) receives its CSR.  SCEP_E_NO_ENTRY when unknown. */
enum scep_err scep_store_get_request(struct scep_store *s, int64_t id, struct scep_request_row *out,
                                     unsigned char **csr, size_t *csr_len) SCEP_WUR;
/*
 * Approve: the pending request becomes issued with cert, atomically and only
 * if it is still pending (SCEP_E_CONFLICT otherwise).  Durable on return.
 */
enum scep_err scep_store_complete_pending(struct scep_store *s, int64_t req_id,
                                          const struct scep_cert_row *cert,
                                          const struct scep_commit_extra *x) SCEP_WUR;
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

/*
 * An issuance profile: what a certificate may contain (policy.h applies
 * it).  Chosen by the account, else the endpoint, else by the template name
 * a Microsoft client asks for.  Lists are comma-separated.
 */
struct scep_profile_row {
    int64_t id;
    char name[SCEP_NAME_MAX];
    char template_name[128]; /* 1.3.6.1.4.1.311.20.2 name or .21.7 OID; "" for none */
    int validity_days;       /* default validity */
    char eku[256];       /* extendedKeyUsage allowed and issued: "clientAuth,serverAuth,1.2.3" */
    char key_types[128]; /* "rsa:2048,ec:p256,ec:p384": RSA of at least 2048 bits, these curves */
    char subject_allow[256];    /* RDNs copied from the CSR: "CN,C,ST,L,O,OU,emailAddress" */
    char subject_forbid[256];   /* RDNs that make the request fail: "" */
    char san_types[64];         /* SAN types copied from the CSR: "dns,email,ip,uri" ("" none) */
    char san_patterns[512];     /* "dns:*.corp.example.com,email:*@example.com" ("" any) */
    char key_usage[256];        /* keyUsage allowed and issued; "" by key type */
    int max_validity_days;      /* ceiling for every source of validity; 0 = none */
    char cdp_url[512];          /* CRL distribution point; "" the endpoint's */
    char aia_url[512];          /* caIssuers URL; "" none */
    char duplicate_subject[16]; /* "allow" | "refuse" | "revoke" */
};
/* SCEP_E_CONFLICT when the name or template is taken. */
enum scep_err scep_store_add_profile(struct scep_store *s, const struct scep_profile_row *r,
                                     int64_t *id) SCEP_WUR;
typedef int (*scep_profile_cb)(void *arg, const struct scep_profile_row *row);
enum scep_err scep_store_each_profile(struct scep_store *s, scep_profile_cb cb, void *arg) SCEP_WUR;
/* Replace every setting of profile r->id but its name.  SCEP_E_NO_ENTRY when unknown. */
enum scep_err scep_store_update_profile(struct scep_store *s,
                                        const struct scep_profile_row *r) SCEP_WUR;

/* Valid (unrevoked, unexpired at now) certificates of a CA with this subject text. */
enum scep_err scep_store_count_valid_subject(struct scep_store *s, int64_t ca_id,
                                             const char *subject, int64_t now,
                                             int64_t *count) SCEP_WUR;

/* Accounts of the "account" challenge mode (Sectigo): the access code selects one. */
struct scep_account_row {
    int64_t id;
    int64_t endpoint_id;
    char name[SCEP_NAME_MAX];
    char organization[128];      /* fixed once created */
    char department[128];        /* fixed once created */
    int64_t profile_id;          /* 0: the endpoint's */
    int validity_days;           /* 0: the profile's or endpoint's */
    unsigned char code_hash[32]; /* keyed hash of the access code */
    int enabled;
    int64_t created_at;
};
/* SCEP_E_CONFLICT when the name is taken on the endpoint (or the code hash exists). */
enum scep_err scep_store_add_account(struct scep_store *s, const struct scep_account_row *r,
                                     int64_t *id) SCEP_WUR;
/* The account whose code hash this is.  SCEP_E_NO_ENTRY when none. */
enum scep_err scep_store_find_account(struct scep_store *s, const unsigned char code_hash[32],
                                      struct scep_account_row *out) SCEP_WUR;
/* By endpoint and name.  SCEP_E_NO_ENTRY when none. */
enum scep_err scep_store_get_account(struct scep_store *s, int64_t endpoint_id, const char *name,
                                     struct scep_account_row *out) SCEP_WUR;
/* enabled: 0/1; code_hash: a new one (or NULL to keep). SCEP_E_NO_ENTRY when unknown. */
enum scep_err scep_store_set_account(struct scep_store *s, int64_t id, int enabled,
                                     const unsigned char *code_hash) SCEP_WUR;
typedef int (*scep_account_cb)(void *arg, const struct scep_account_row *row);
/* endpoint_id 0: every endpoint. */
enum scep_err scep_store_each_account(struct scep_store *s, int64_t endpoint_id, scep_account_cb cb,
                                      void *arg) SCEP_WUR;

/* One-time challenges: stored as a keyed hash, bound to an identity. */
struct scep_challenge_row {
    int64_t id;
    int64_t endpoint_id;
    unsigned char hash[32];
    char subject[256]; /* bound subject DN, or "" */
    char sans[1024];   /* bound SANs "DNS:a,email:b", or "" */
    char device_id[128];
    char sid[96];
    int64_t created_at, expires_at, used_at; /* used_at 0: unused */
    char serial[48];                         /* the certificate it was used for */
};
/*
 * Add a challenge unless the endpoint already has max_outstanding unused,
 * unexpired ones (SCEP_E_CHALLENGE_CAP), in one transaction.
 */
enum scep_err scep_store_add_challenge(struct scep_store *s, const struct scep_challenge_row *r,
                                       int max_outstanding, int64_t *id) SCEP_WUR;
enum scep_err scep_store_find_challenge(struct scep_store *s, int64_t endpoint_id,
                                        const unsigned char hash[32],
                                        struct scep_challenge_row *out) SCEP_WUR;
typedef int (*scep_challenge_cb)(void *arg, const struct scep_challenge_row *row);
enum scep_err scep_store_each_challenge(struct scep_store *s, int64_t endpoint_id,
                                        scep_challenge_cb cb, void *arg) SCEP_WUR;
/* Was this token nonce already used on the endpoint?  *used 0/1. */
enum scep_err scep_store_nonce_used(struct scep_store *s, int64_t endpoint_id, const char *nonce,
                                    int *used) SCEP_WUR;

/*
 * The outbox (notification events) and the audit trail.  A refusal writes
 * both without waiting for durability (they ride on the next group commit);
 * administrative changes write audit rows durably.
 */
enum scep_err scep_store_record_refusal(struct scep_store *s, int64_t endpoint_id,
                                        const char *endpoint, const char *object, const char *actor,
                                        const char *reason, const char *event_json,
                                        int event_pending) SCEP_WUR;
enum scep_err scep_store_audit(struct scep_store *s, const char *actor, const char *action,
                               const char *object, const char *endpoint, const char *outcome,
                               const char *reason) SCEP_WUR;
struct scep_audit_row {
    int64_t id;
    int64_t at;
    const char *actor, *action, *object, *endpoint, *outcome, *reason;
};
typedef int (*scep_audit_cb)(void *arg, const struct scep_audit_row *row);
/* Newest first, at most limit rows (0: 1000). */
enum scep_err scep_store_each_audit(struct scep_store *s, int limit, scep_audit_cb cb,
                                    void *arg) SCEP_WUR;

struct scep_event_row {
    int64_t id;
    int64_t created_at;
    int64_t endpoint_id;
    const char *kind;    /* "success" | "failure" */
    const char *payload; /* JSON */
    const char *status;  /* "pending" | "delivered" | "dead" */
    int attempts;
    int64_t next_attempt_at;
    int64_t delivered_at;
    const char *last_error;
};
typedef int (*scep_event_cb)(void *arg, const struct scep_event_row *row);
/* Newest first (limit 0: 1000); status NULL for all. */
enum scep_err scep_store_each_event(struct scep_store *s, const char *status, int limit,
                                    scep_event_cb cb, void *arg) SCEP_WUR;
/* Pending events due at now, oldest first, at most limit. */
enum scep_err scep_store_due_events(struct scep_store *s, int64_t now, int limit, scep_event_cb cb,
                                    void *arg) SCEP_WUR;
/*
 * Housekeeping: delete events that are settled (delivered, dead, local)
 * and one-time challenges that are used or expired, when older than
 * keep_seconds, and token nonces past their token's expiry (a replay of
 * an expired token fails on its expiry anyway).  The audit trail is kept.
 * At most 500 rows per write transaction (the group commit waits for
 * none longer than that takes) and 100,000 per call; what is left goes at
 * the next call.  *deleted (may be NULL) gets the number of rows removed.
 */
enum scep_err scep_store_prune(struct scep_store *s, int64_t now, int64_t keep_seconds,
                               int64_t *deleted) SCEP_WUR;
/* The i-th statement prune runs, or NULL past the last (for its query-plan test). */
const char *scep_store_prune_sql(size_t i);
/*
 * Delivery outcome: ok -> delivered; else attempts+1 and the next attempt
 * at next_at, or dead when next_at is 0.
 */
enum scep_err scep_store_event_result(struct scep_store *s, int64_t id, int ok, int64_t next_at,
                                      const char *error) SCEP_WUR;

/* Key-value settings of the installation ("schema_version", ...). */
enum scep_err scep_store_get_meta(struct scep_store *s, const char *key, char *val,
                                  size_t vlen) SCEP_WUR;
enum scep_err scep_store_set_meta(struct scep_store *s, const char *key, const char *val) SCEP_WUR;

#endif
