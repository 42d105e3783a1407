/*
 * service.h - the SCEP operations of one installation, independent of HTTP:
 * GetCACaps, GetCACert and PKIOperation turn request bytes into a reply
 * (status, content type, body) plus the fields of the request's log line.
 *
 * The daemon wires these to libmicrohttpd; tests call them directly.
 * Thread safety: after scep_service_open, every function may be called
 * from many threads at once (endpoints are read-only; the store is safe).
 */
#ifndef SCEPD_SERVICE_H
#define SCEPD_SERVICE_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "scepd/challenge.h"
#include "scepd/err.h"
#include "scepd/store.h"

/* Largest PKIOperation body accepted (POST body or decoded GET message). */
#define SCEP_MAX_MESSAGE (256 * 1024)

/* How an endpoint authorizes a new enrollment (docs/challenge-modes.md). */
enum scep_mode {
    SCEP_MODE_STATIC = 0, /* one secret per endpoint */
    SCEP_MODE_ACCOUNT,    /* per-account access codes */
    SCEP_MODE_ONETIME,    /* single-use challenges minted by the admin API */
    SCEP_MODE_SIGNED,     /* stateless tokens signed with the endpoint key (token.h) */
    SCEP_MODE_WEBHOOK,    /* an external service decides (webhook.h) */
    SCEP_MODE_INTUNE,     /* Microsoft Intune validates (intune.h) */
};
/* "static" ... for a mode; NULL for none.  Parse: -1 when unknown. */
const char *scep_mode_name(enum scep_mode m);
int scep_mode_parse(const char *name);

struct scep_intune;

struct scep_endpoint {
    int64_t id;
    char name[SCEP_NAME_MAX];
    int64_t ca_id;
    char ca_name[SCEP_NAME_MAX];
    char ca_subject[512]; /* the CA's subject as text: the issuer named in events and to Intune */
    char cdp_url[600];    /* CRL distribution point put in issued certificates, or "" */
    X509 *ca_cert;
    EVP_PKEY *ca_key;
    X509 *ra_cert;
    EVP_PKEY *ra_key;
    X509 *reply_cert; /* signs CertReps: the RA, or the CA in the single-certificate form */
    EVP_PKEY *reply_key;
    unsigned char challenge_hash[32];
    int has_challenge_hash;
    int allow_des;
    int advertise_post;
    int validity_days;
    int enabled;
    int getcacert_single;
    int approval_manual;
    int renewal_window_days;
    int renewal_grace_days;
    int revoke_on_renewal;
    int getcert_chain;
    X509 *next_ca_cert; /* a prepared rollover (GetNextCACert), or NULL */
    X509 *next_ra_cert;
    unsigned char *nextcacert_der; /* cached GetNextCACert body */
    size_t nextcacert_len;
    unsigned char *cacert_der; /* cached GetCACert body */
    size_t cacert_len;
    const char *cacert_type;
    char caps[160]; /* cached GetCACaps body */
    size_t caps_len;
    /* who may enroll (issue 6): */
    char organization[128]; /* fixed O of every certificate, or "" */
    char department[128];   /* fixed OU, or "" */
    int64_t profile_id;     /* 0: template-selected or built-in default */
    enum scep_mode mode;
    unsigned char mode_key[32]; /* signed: token key; webhook: body HMAC key */
    int has_mode_key;
    char webhook_url[512];
    long webhook_timeout_ms;
    char webhook_bearer[256];
    struct scep_intune *intune; /* mode intune: the client (owned) */
    char notify_url[512];       /* events delivered here, or "" */
    unsigned char notify_key[32];
    int has_notify_key;
    int max_outstanding; /* one-time challenges not yet used nor expired */
    int challenge_ttl;   /* default lifetime of a one-time challenge, seconds */
};

struct scep_service;
struct scep_gate;

/*
 * Load datadir: database, secret, every endpoint with its CA and RA.
 * On failure errbuf says what and how to fix it.
 */
enum scep_err scep_service_open(const char *datadir, struct scep_service **out, char *errbuf,
                                size_t errlen) SCEP_WUR;
void scep_service_free(struct scep_service *svc);
/*
 * The gate that limits how many PKIOperations use the CPU at once
 * (gate.h; borrowed, must outlive the service's use, NULL for none).  The
 * service leaves the caller's slot while it waits for a durable commit or
 * a validation service.  Set before requests are served.
 */
void scep_service_set_gate(struct scep_service *svc, struct scep_gate *g);

/* Endpoint by URL name; NULL/empty name is the default endpoint.  Borrowed. */
const struct scep_endpoint *scep_service_endpoint(const struct scep_service *svc, const char *name,
                                                  size_t len);
struct scep_store *scep_service_store(const struct scep_service *svc);

struct scep_result {
    int http_status;
    const char *content_type;
    const unsigned char *body; /* owned (== owned) or borrowed from the endpoint */
    size_t body_len;
    unsigned char *owned;
    /* For the log line: */
    int msgtype;            /* -1 unknown / not a PKIOperation */
    char txid[96];          /* escaped for logging */
    const char *pki_status; /* "SUCCESS" "FAILURE" "PENDING" or "-" */
    int fail_info;          /* -1 when none */
    enum scep_err err;      /* why it failed, SCEP_OK otherwise */
    char serial[48];        /* issued serial, or "" */
};

void scep_result_clear(struct scep_result *r);

void scep_service_getcacaps(const struct scep_service *svc, const struct scep_endpoint *ep,
                            struct scep_result *r);
void scep_service_getcacert(const struct scep_service *svc, const struct scep_endpoint *ep,
                            struct scep_result *r);
void scep_service_pkioperation(const struct scep_service *svc, const struct scep_endpoint *ep,
                               const unsigned char *der, size_t len, struct scep_result *r);
/*
 * Operator decisions on a pending request: approve issues the certificate
 * (durably; the next poll of the client gets it), reject makes every later
 * poll a FAILURE badRequest.  SCEP_E_NO_ENTRY for an unknown id,
 * SCEP_E_NOT_PENDING when it was already decided.
 */
enum scep_err scep_service_approve(const struct scep_service *svc, int64_t req_id, char *serial_out,
                                   size_t serial_len) SCEP_WUR;
enum scep_err scep_service_reject(const struct scep_service *svc, int64_t req_id,
                                  const char *reason) SCEP_WUR;

/*
 * Revocation: mark the certificate revoked (RFC 5280 reason code) and remake
 * its CA's CRL.  SCEP_E_NO_ENTRY unknown serial, SCEP_E_CONFLICT already revoked.
 */
enum scep_err scep_service_revoke(const struct scep_service *svc, const char *serial,
                                  int reason) SCEP_WUR;
/* The CA's current CRL (DER, malloc'ed), made or remade when needed. */
enum scep_err scep_service_crl(const struct scep_service *svc, int64_t ca_id, unsigned char **der,
                               size_t *len) SCEP_WUR;
/* The id of the CA with this name (for /crl/NAME.crl), or 0. */
int64_t scep_service_ca_by_name(const struct scep_service *svc, const char *name, size_t len);
/* Periodic work (call every minute or so): CRLs remade before their nextUpdate. */
void scep_service_maintain(const struct scep_service *svc);

/* GetNextCACert (RFC 8894 §4.7): 404 (SCEP_E_NO_NEXT_CA) when no rollover is prepared. */
void scep_service_getnextcacert(const struct scep_service *svc, const struct scep_endpoint *ep,
                                struct scep_result *r);

/*
 * CA rollover.  rollover: a new CA (same key type; cross-signed by the
 * current CA, or self-signed) and a new RA are made, stored and served by
 * GetNextCACert; the endpoint still issues from the current CA.  switch:
 * the endpoint issues from the new CA with the new RA; certificates of the
 * old CA still renew and stay revocable.  Both apply without a restart.
 * endpoint NULL: the default.  errbuf says what went wrong.
 */
enum scep_err scep_service_rollover(struct scep_service *svc, const char *endpoint, int self_signed,
                                    char *errbuf, size_t errlen) SCEP_WUR;
enum scep_err scep_service_switch_ca(struct scep_service *svc, const char *endpoint, char *errbuf,
                                     size_t errlen) SCEP_WUR;
typedef int (*scep_service_ca_cb)(void *arg, int64_t id, const char *name, X509 *cert,
                                  int64_t next_id, const char *used_by);
enum scep_err scep_service_each_ca(const struct scep_service *svc, scep_service_ca_cb cb,
                                   void *arg) SCEP_WUR;

/*
 * Issuance profiles: a request whose CSR names a Microsoft certificate
 * template (extension 1.3.6.1.4.1.311.20.2 or .21.7) matching a profile's
 * template gets that profile's validity and extended key usage.
 */
enum scep_err scep_service_add_profile(struct scep_service *svc, const struct scep_profile_row *p,
                                       char *errbuf, size_t errlen) SCEP_WUR;
enum scep_err scep_service_each_profile(const struct scep_service *svc, scep_profile_cb cb,
                                        void *arg) SCEP_WUR;

/* A plain-text HTTP error reply for err (no CertRep possible). */
void scep_service_http_error(enum scep_err err, struct scep_result *r);

/* ---- administration of endpoints, accounts, challenges (lib/service_admin.c) ---- */

/*
 * An endpoint to add or change.  Strings "" and numbers -1 mean "not
 * given" (keep the current value on update; the default on add).
 * organization and department are fixed once created: an update that gives
 * them fails.  Secrets (static challenge, webhook bearer, Intune key) are
 * written to DIR/secrets/<name>.<kind> (0600) or hashed, never stored in
 * the database in clear nor logged.
 */
struct scep_endpoint_spec {
    char name[SCEP_NAME_MAX];    /* URL segment: [a-z0-9._-], 1..63 */
    char ca[SCEP_NAME_MAX];      /* add: an existing CA by name; "" with new_ca_subject: a new CA */
    char new_ca_subject[256];    /* add: make a new self-signed CA with this subject */
    char new_ca_key[16];         /* "rsa:2048" (default) ... "ec:p384" */
    char profile[SCEP_NAME_MAX]; /* profile name; "-" to clear */
    char organization[128];
    char department[128];
    int validity_days;         /* 1..36500 */
    char getcacert_format[16]; /* "chain" | "single" */
    char getcert_format[16];   /* "single" | "chain" */
    char mode[16];             /* scep_mode_name() */
    char challenge[256];       /* mode static: the shared challenge */
    char approval[16];         /* "auto" | "manual" (manual only with static or webhook) */
    int enabled;               /* 0/1 */
    char webhook_url[512];
    long webhook_timeout_ms;
    char webhook_bearer[256];
    char intune_tenant[128];
    char intune_app_id[128];
    char intune_app_key[512];
    char intune_provider[128];
    char intune_proxy[256];
    char intune_login_url[256];
    char intune_graph_url[256];
    char intune_resource_url[256];
    char notify_url[512]; /* "-" to clear */
    int max_outstanding;
    int challenge_ttl; /* seconds */
    int rotate_key;    /* update: new token / webhook HMAC / notify keys */
};
/* A spec with every field "not given". */
void scep_endpoint_spec_init(struct scep_endpoint_spec *s);

/*
 * Keys an administrator must hand to others, shown once: the signed-token
 * key (for an MDM that mints tokens), the webhook HMAC key (for the webhook
 * to check scepd's signature), the notify HMAC key (for the event
 * receiver), the generated static challenge.  Hex or text; "" when none.
 */
struct scep_endpoint_keys {
    char token_key[65];
    char webhook_key[65];
    char notify_key[65];
    char challenge[128];
};

enum scep_err scep_service_add_endpoint(struct scep_service *svc,
                                        const struct scep_endpoint_spec *spec, const char *actor,
                                        struct scep_endpoint_keys *keys, char *errbuf,
                                        size_t errlen) SCEP_WUR;
enum scep_err scep_service_update_endpoint(struct scep_service *svc,
                                           const struct scep_endpoint_spec *spec, const char *actor,
                                           struct scep_endpoint_keys *keys, char *errbuf,
                                           size_t errlen) SCEP_WUR;
/* enabled 0: the endpoint answers 404 until enabled again. */
enum scep_err scep_service_enable_endpoint(struct scep_service *svc, const char *name, int enabled,
                                           const char *actor, char *errbuf, size_t errlen) SCEP_WUR;
/* JSON description of one endpoint (malloc'ed, no secrets) or of all (name NULL). */
enum scep_err scep_service_describe_endpoints(const struct scep_service *svc, const char *name,
                                              char **json) SCEP_WUR;

/* Accounts (mode "account"): code_out receives the access code, shown once. */
enum scep_err scep_service_add_account(struct scep_service *svc, const char *endpoint,
                                       const char *name, const char *organization,
                                       const char *department, const char *profile,
                                       int validity_days, const char *code, const char *actor,
                                       char *code_out, size_t code_len, char *errbuf,
                                       size_t errlen) SCEP_WUR;
/* op: "disable" | "enable" | "rotate-code" (code_out gets the new code). */
enum scep_err scep_service_account_op(struct scep_service *svc, const char *endpoint,
                                      const char *name, const char *op, const char *actor,
                                      char *code_out, size_t code_len, char *errbuf,
                                      size_t errlen) SCEP_WUR;
enum scep_err scep_service_describe_accounts(const struct scep_service *svc, const char *endpoint,
                                             char **json) SCEP_WUR;

/*
 * A one-time challenge for endpoint (mode "one-time"): ttl seconds (0: the
 * endpoint's default), bound to subject ("" none), sans ("DNS:a,IP:b"),
 * device and sid.  SCEP_E_CHALLENGE_CAP when the endpoint has too many
 * outstanding.  out receives the challenge (shown once).
 */
enum scep_err scep_service_new_challenge(struct scep_service *svc, const char *endpoint, int ttl,
                                         const char *subject, const char *sans, const char *device,
                                         const char *sid, const char *actor, char *out,
                                         size_t outlen, char *errbuf, size_t errlen) SCEP_WUR;
enum scep_err scep_service_describe_challenges(const struct scep_service *svc, const char *endpoint,
                                               char **json) SCEP_WUR;
/* A signed token (mode "signed") minted with the endpoint's key: see token.h. */
enum scep_err scep_service_sign_token(struct scep_service *svc, const char *endpoint, int ttl,
                                      const char *subject, const char *sans, const char *eku,
                                      const char *device, const char *sid, const char *actor,
                                      char *out, size_t outlen, char *errbuf,
                                      size_t errlen) SCEP_WUR;

/* Profiles: add or replace every setting (checked by scep_policy_check_profile). */
enum scep_err scep_service_update_profile(struct scep_service *svc,
                                          const struct scep_profile_row *p, const char *actor,
                                          char *errbuf, size_t errlen) SCEP_WUR;

/* Events (outbox) and the audit trail, newest first, as JSON arrays (malloc'ed). */
enum scep_err scep_service_describe_events(const struct scep_service *svc, const char *status,
                                           int limit, char **json) SCEP_WUR;
enum scep_err scep_service_describe_audit(const struct scep_service *svc, int limit,
                                          char **json) SCEP_WUR;

/*
 * Deliver due events (outbox) to their endpoint's notify URL, at most
 * limit; failures are retried with exponential backoff (30 s doubling to
 * 1 h) and given up ("dead") after 12 attempts.  Returns how many were
 * delivered.  The daemon calls it every few seconds from one thread.
 */
int scep_service_deliver_events(const struct scep_service *svc, int limit);

#endif
