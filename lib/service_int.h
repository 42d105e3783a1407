/*
 * service_int.h - what the service's modules share inside lib/ (service.c:
 * the SCEP operations; service_admin.c: endpoints, accounts, challenges and
 * the other administrative changes).  Not an interface for programs.
 */
#ifndef SCEPD_SERVICE_INT_H
#define SCEPD_SERVICE_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "scepd/challenge.h"
#include "scepd/service.h"
#include "scepd/setup.h"

/* A CA of this installation (current ones and those rolled over), with its key. */
struct ca_entry {
    int64_t id;
    char name[SCEP_NAME_MAX];
    X509 *cert;
    EVP_PKEY *key;
    int64_t next_id;
};

/*
 * What requests read: endpoints and CAs.  A reload (after a rollover or a
 * switch) builds a new table and publishes it with one atomic store; a
 * request keeps the table it started with, so old tables are retired, not
 * freed, until the service is (admin changes are rare; a few KB each).
 */
struct ep_table {
    struct scep_endpoint *eps;
    size_t neps;
    struct scep_profile_row *profiles;
    size_t nprofiles, profiles_cap;
    struct ca_entry *cas;
    size_t ncas;
    struct ep_table *retired;
};

struct scep_crt_pool;
struct scep_gate;

struct scep_service {
    char *datadir;
    struct scep_store *store;
    unsigned char secret[SCEP_SECRET_LEN];
    _Atomic(struct ep_table *) table;
    pthread_mutex_t reload_mu;
    char public_url[512];      /* base URL for CRL distribution points, or "" */
    struct scep_gate *gate;    /* CPU slots of PKIOperations (borrowed), or NULL */
    struct scep_crt_pool *crt; /* helpers of the CA and RA keys' private operations (owned) */
};

const struct ep_table *svc_tbl(const struct scep_service *svc);
const struct ca_entry *svc_ca_by_id(const struct ep_table *t, int64_t id);
X509 *svc_der_to_cert(const unsigned char *der, size_t len);
/* Reload endpoints, CAs and profiles from the store; call with reload_mu held. */
enum scep_err svc_reload(struct scep_service *svc, char *errbuf, size_t errlen);
const struct scep_endpoint *svc_endpoint_by_id(const struct scep_service *svc, int64_t id);
enum scep_err svc_cert_der_of(X509 *x, unsigned char **der, size_t *len);

/*
 * Per-endpoint secrets live in DIR/secrets/<endpoint>.<kind> (0600):
 * kind "token" (32-byte key of signed tokens), "webhook" (32-byte HMAC key
 * of webhook bodies), "bearer" (webhook bearer token, text), "intune"
 * (Intune application key, text), "notify" (32-byte HMAC key of event
 * deliveries).
 */
#define SCEP_SECRETS_DIR "secrets"
enum scep_err svc_secret_path(const struct scep_service *svc, const char *endpoint,
                              const char *kind, char *buf, size_t len) SCEP_WUR;
/* Read a secret into buf (at most cap bytes); SCEP_E_NO_ENTRY when there is none. */
enum scep_err svc_secret_read(const struct scep_service *svc, const char *endpoint,
                              const char *kind, unsigned char *buf, size_t cap,
                              size_t *len) SCEP_WUR;

/*
 * The keyed hash an access code ("account") or one-time challenge ("otc")
 * is stored and found by: HMAC-SHA256 under DIR/secret.key of "kind:code".
 */
enum scep_err svc_code_hash(const struct scep_service *svc, const char *kind, const char *code,
                            size_t len, unsigned char out[32]) SCEP_WUR;

#endif
