/*
 * setup.h - creating a data directory ("scepd init") and its layout.
 *
 * DIR/scepd.db        SQLite database (CAs, endpoints, requests, certificates)
 * DIR/ca.crt ca.key   issuing CA (key 0600)
 * DIR/ra.crt ra.key   RA certificate that signs replies and decrypts requests
 * DIR/secret.key      32 random bytes: the HMAC key for challenges (0600)
 * DIR/admin.token     bearer token of the admin API (0600)
 * DIR/admin.sock      the admin API's unix socket while scepd serves
 * DIR/scepd.lock      locked (flock) by the one scepd serving DIR; its pid
 *
 * Everything is built in a sibling temporary directory and renamed into
 * place at the end, so a crash never leaves a half-made DIR behind.
 */
#ifndef SCEPD_SETUP_H
#define SCEPD_SETUP_H

#include <stddef.h>

#include "scepd/err.h"

#define SCEP_DB_FILE "scepd.db"
#define SCEP_CA_CERT_FILE "ca.crt"
#define SCEP_CA_KEY_FILE "ca.key"
#define SCEP_RA_CERT_FILE "ra.crt"
#define SCEP_RA_KEY_FILE "ra.key"
#define SCEP_SECRET_FILE "secret.key"
#define SCEP_TOKEN_FILE "admin.token"
#define SCEP_SOCK_FILE "admin.sock"
#define SCEP_LOCK_FILE "scepd.lock"
#define SCEP_DEFAULT_ENDPOINT "default"
#define SCEP_GENERATED_CHALLENGE_LEN 32

struct scep_init_opts {
    const char *datadir;
    const char *challenge;    /* NULL: generate SCEP_GENERATED_CHALLENGE_LEN chars */
    const char *ca_key_spec;  /* NULL: "rsa:2048" */
    const char *ca_subject;   /* NULL: "CN=scepd CA,O=scepd" */
    const char *ca_cert_file; /* import an existing CA (with ca_key_file) */
    const char *ca_key_file;
    int get_only;            /* default endpoint does not advertise POST */
    int refuse_des;          /* default endpoint refuses single-DES requests */
    int validity_days;       /* 0: 365 */
    int approval_manual;     /* requests wait for an operator (PENDING) */
    const char *public_url;  /* base URL clients reach scepd at (CRL distribution points) */
    int renewal_window_days; /* renew not earlier than this before expiry; 0 = any time */
    int renewal_grace_days;  /* an expired certificate may still renew this long */
    int revoke_on_renewal;   /* revoke the renewed certificate (superseded) */
    int getcacert_single;    /* GetCACert answers the CA certificate alone (the CA key then
                                also decrypts requests and signs replies; it must be RSA) */
};

/*
 * Create opts->datadir.  It must not exist, or be an empty directory.
 * challenge_out receives the challenge (given or generated) for the caller to
 * show once; the caller wipes it.  On failure errbuf says what and why.
 */
enum scep_err scep_setup_init(const struct scep_init_opts *opts, char *challenge_out,
                              size_t challenge_len, char *errbuf, size_t errlen) SCEP_WUR;

/* 1 when datadir holds an initialised installation (scepd.db exists). */
int scep_setup_is_initialised(const char *datadir);
/* 1 when datadir does not exist or is an empty directory. */
int scep_setup_is_empty(const char *datadir);

/*
 * Take DIR/scepd.lock for this process: one scepd serves a data directory
 * (two would each keep their own caches, rate limits and admin socket over
 * one database).  *fd_out stays open for the process's life (close-on-exec;
 * the lock goes with the process).  SCEP_E_EXISTS when another process
 * holds it, with its pid in *holder (0 if unknown); errbuf says what to do.
 */
enum scep_err scep_setup_lock(const char *datadir, int *fd_out, long *holder, char *errbuf,
                              size_t errlen) SCEP_WUR;

/* dir + "/" + name into buf; SCEP_E_TOO_LARGE when it does not fit. */
enum scep_err scep_path(char *buf, size_t len, const char *dir, const char *name) SCEP_WUR;

#endif
