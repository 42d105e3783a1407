/*
 * service.c - the SCEP operations (see service.h): dispatch with default
 * deny, PKCSReq end to end, idempotent retransmissions, durable issuance.
 *
 * Order for a PKIOperation (DESIGN §3): parse + verify the outer signature
 * -> refuse any message type not implemented, before any authorization ->
 * decrypt -> CSR self-signature and proof of possession -> challenge ->
 * names -> sign -> commit durably -> reply.  Nothing is answered SUCCESS
 * before scep_store_commit_issuance() returned SCEP_OK.
 */
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/pkcs7.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>

#include "scepd/buf.h"
#include "scepd/certrep.h"
#include "scepd/challenge.h"
#include "scepd/crl.h"
#include "scepd/crt.h"
#include "scepd/csr.h"
#include "scepd/der.h"
#include "scepd/gate.h"
#include "scepd/issue.h"
#include "scepd/log.h"
#include "scepd/oids.h"
#include "scepd/pki.h"
#include "scepd/pkimsg.h"
#include "scepd/service.h"
#include "scepd/setup.h"
#include "scepd/intune.h"
#include "scepd/policy.h"
#include "scepd/token.h"
#include "scepd/webhook.h"
#include "service_int.h"

#include <jansson.h>

#define MAX_ENDPOINTS 256
#define ISSUE_ATTEMPTS 4
/* settled events and spent one-time challenges are deleted after this long */
#define SCEP_KEEP_SETTLED_SECONDS (30LL * 86400)

const struct ep_table *
svc_tbl(const struct scep_service *svc)
{
    return atomic_load(&((struct scep_service *)(uintptr_t)svc)->table);
}

static void
endpoint_clear(struct scep_endpoint *e)
{
    X509_free(e->ca_cert);
    EVP_PKEY_free(e->ca_key);
    X509_free(e->ra_cert);
    EVP_PKEY_free(e->ra_key);
    X509_free(e->next_ca_cert);
    X509_free(e->next_ra_cert);
    free(e->cacert_der);
    free(e->nextcacert_der);
    scep_intune_free(e->intune);
    OPENSSL_cleanse(e, sizeof(*e));
}

static void
table_free(struct ep_table *t)
{
    while (t != NULL) {
        struct ep_table *older = t->retired;
        size_t i;
        for (i = 0; i < t->neps; i++)
            endpoint_clear(&t->eps[i]);
        for (i = 0; i < t->ncas; i++) {
            X509_free(t->cas[i].cert);
            EVP_PKEY_free(t->cas[i].key);
        }
        free(t->eps);
        free(t->cas);
        free(t->profiles);
        free(t);
        t = older;
    }
}

const struct ca_entry *
svc_ca_by_id(const struct ep_table *t, int64_t id)
{
    size_t i;

    for (i = 0; i < t->ncas; i++)
        if (t->cas[i].id == id)
            return &t->cas[i];
    return NULL;
}

void
scep_service_free(struct scep_service *svc)
{
    if (svc == NULL)
        return;
    table_free(atomic_load(&svc->table));
    scep_crt_pool_free(svc->crt); /* after every key that uses it */
    pthread_mutex_destroy(&svc->reload_mu);
    scep_store_close(svc->store);
    free(svc->datadir);
    OPENSSL_cleanse(svc->secret, sizeof(svc->secret));
    free(svc);
}

struct load_ctx {
    struct scep_service *svc;
    struct ep_table *t;
    char *errbuf;
    size_t errlen;
    enum scep_err rc;
};

X509 *
svc_der_to_cert(const unsigned char *der, size_t len)
{
    const unsigned char *p = der;
    X509 *x = len <= LONG_MAX ? scep_der_cert(&p, (long)len) : NULL;

    if (x != NULL && p != der + len) {
        X509_free(x);
        x = NULL;
    }
    return x;
}

static void
build_caps(struct scep_endpoint *e)
{
    /* Exact RFC 8894 §3.5.2 spelling, one per line (sscep compares with strcmp). */
    snprintf(e->caps, sizeof(e->caps), "AES\nDES3\n%s%sRenewal\nSHA-1\nSHA-256\nSHA-512\n",
             e->nextcacert_der != NULL ? "GetNextCACert\n" : "",
             e->advertise_post ? "POSTPKIOperation\nSCEPStandard\n" : "");
    e->caps_len = strlen(e->caps);
}

static enum scep_err
build_cacert(struct scep_endpoint *e)
{
    STACK_OF(X509) * certs;
    enum scep_err rc;
    int n;

    if (e->getcacert_single) {
        unsigned char *der = NULL;
        n = i2d_X509(e->ca_cert, &der);
        if (n <= 0)
            return SCEP_E_INTERNAL;
        e->cacert_der = malloc((size_t)n);
        if (e->cacert_der == NULL) {
            OPENSSL_free(der);
            return SCEP_E_NOMEM;
        }
        memcpy(e->cacert_der, der, (size_t)n);
        OPENSSL_free(der);
        e->cacert_len = (size_t)n;
        e->cacert_type = "application/x-x509-ca-cert";
        return SCEP_OK;
    }
    if ((certs = sk_X509_new_null()) == NULL)
        return SCEP_E_NOMEM;
    /* RA first, then the CA (digest §2.2 item 2). */
    if (!sk_X509_push(certs, e->ra_cert) || !sk_X509_push(certs, e->ca_cert)) {
        sk_X509_free(certs);
        return SCEP_E_NOMEM;
    }
    rc = scep_certs_only_der(certs, &e->cacert_der, &e->cacert_len);
    sk_X509_free(certs);
    e->cacert_type = "application/x-x509-ca-ra-cert";
    return rc;
}

/* Keys must not be readable by others; say so loudly, but keep serving. */
static void
warn_key_mode(const char *path)
{
    struct stat st;

    if (stat(path, &st) == 0 && (st.st_mode & 077) != 0)
        scep_log(SCEP_LOG_WARN, "service",
                 "key file is readable by group or others path=%s mode=%03o fix=\"chmod 600 %s\"",
                 path, (unsigned)(st.st_mode & 0777), path);
}

/*
 * The private key of cert from DIR/ref: readable and matching, else the
 * message an operator needs (refuse to start rather than fail per request).
 */
static enum scep_err
load_key(struct load_ctx *c, X509 *cert, const char *ref, const char *what, EVP_PKEY **key)
{
    char p[PATH_MAX];

    *key = NULL;
    if (scep_path(p, sizeof(p), c->svc->datadir, ref) != SCEP_OK ||
        scep_pki_read_key(p, key) != SCEP_OK || X509_check_private_key(cert, *key) != 1) {
        snprintf(c->errbuf, c->errlen,
                 "%s key %s cannot be read or does not match the %s certificate; restore it from "
                 "your backup (mode 0600)",
                 what, p, what);
        EVP_PKEY_free(*key);
        *key = NULL;
        ERR_clear_error();
        return SCEP_E_KEY_FILE;
    }
    warn_key_mode(p);
    /* its private-key operations may use an idle core for half of their work (crt.h) */
    {
        EVP_PKEY *w = NULL;
        enum scep_err rc = scep_crt_wrap(c->svc->crt, *key, &w);
        EVP_PKEY_free(*key);
        *key = w;
        if (rc != SCEP_OK) {
            snprintf(c->errbuf, c->errlen, "%s key %s: out of memory preparing it", what, p);
            return rc;
        }
    }
    return SCEP_OK;
}

/* Every CA with its key (a CA without a readable key cannot be used: refuse to start). */
static int
load_ca(void *arg, const struct scep_ca_row *row)
{
    struct load_ctx *c = arg;
    struct ep_table *t = c->t;
    struct ca_entry *ca;

    if (t->ncas >= MAX_ENDPOINTS) {
        snprintf(c->errbuf, c->errlen, "more than %d CAs", MAX_ENDPOINTS);
        c->rc = SCEP_E_INVALID_ARG;
        return 1;
    }
    ca = &t->cas[t->ncas];
    memset(ca, 0, sizeof(*ca));
    ca->id = row->id;
    ca->next_id = row->next_ca_id;
    snprintf(ca->name, sizeof(ca->name), "%s", row->name);
    if ((ca->cert = svc_der_to_cert(row->cert_der, row->cert_len)) == NULL) {
        snprintf(c->errbuf, c->errlen, "CA %s: the stored certificate does not parse", row->name);
        c->rc = SCEP_E_STORE;
        return 1;
    }
    if ((c->rc = load_key(c, ca->cert, row->key_ref, "CA", &ca->key)) != SCEP_OK) {
        X509_free(ca->cert);
        return 1;
    }
    t->ncas++;
    ERR_clear_error();
    return 0;
}

/* GetNextCACert (RFC 8894 §4.7.1): the next CA and RA, signed by the current CA. */
static enum scep_err
build_nextcacert(struct scep_endpoint *e)
{
    STACK_OF(X509) *certs = sk_X509_new_null();
    unsigned char *inner = NULL;
    size_t innerlen = 0;
    CMS_ContentInfo *cms = NULL;
    BIO *in = NULL, *out = NULL;
    BUF_MEM *bm;
    enum scep_err rc = SCEP_E_INTERNAL;
    unsigned int flags = CMS_BINARY | CMS_NOSMIMECAP;

    if (certs == NULL || !sk_X509_push(certs, e->next_ra_cert) ||
        !sk_X509_push(certs, e->next_ca_cert))
        goto out;
    if ((rc = scep_certs_only_der(certs, &inner, &innerlen)) != SCEP_OK)
        goto out;
    rc = SCEP_E_INTERNAL;
    if ((in = BIO_new_mem_buf(inner, (int)innerlen)) == NULL ||
        (cms = CMS_sign(e->ca_cert, e->ca_key, NULL, in, flags)) == NULL)
        goto out;
    if ((out = BIO_new(BIO_s_mem())) == NULL || i2d_CMS_bio(out, cms) != 1)
        goto out;
    BIO_get_mem_ptr(out, &bm);
    if ((e->nextcacert_der = malloc(bm->length)) == NULL) {
        rc = SCEP_E_NOMEM;
        goto out;
    }
    memcpy(e->nextcacert_der, bm->data, bm->length);
    e->nextcacert_len = bm->length;
    rc = SCEP_OK;
out:
    ERR_clear_error();
    BIO_free(in);
    BIO_free(out);
    CMS_ContentInfo_free(cms);
    free(inner);
    sk_X509_free(certs);
    return rc;
}

static const char *const mode_names[] = {
    [SCEP_MODE_STATIC] = "static",    [SCEP_MODE_ACCOUNT] = "account",
    [SCEP_MODE_ONETIME] = "one-time", [SCEP_MODE_SIGNED] = "signed",
    [SCEP_MODE_WEBHOOK] = "webhook",  [SCEP_MODE_INTUNE] = "intune",
};

const char *
scep_mode_name(enum scep_mode m)
{
    return (unsigned)m < sizeof(mode_names) / sizeof(mode_names[0]) ? mode_names[m] : NULL;
}

int
scep_mode_parse(const char *name)
{
    size_t i;

    for (i = 0; i < sizeof(mode_names) / sizeof(mode_names[0]); i++)
        if (strcmp(name, mode_names[i]) == 0)
            return (int)i;
    return -1;
}

enum scep_err
svc_secret_path(const struct scep_service *svc, const char *endpoint, const char *kind, char *buf,
                size_t len)
{
    int n = snprintf(buf, len, "%s/%s/%s.%s", svc->datadir, SCEP_SECRETS_DIR, endpoint, kind);

    return n > 0 && (size_t)n < len ? SCEP_OK : SCEP_E_TOO_LARGE;
}

enum scep_err
svc_secret_read(const struct scep_service *svc, const char *endpoint, const char *kind,
                unsigned char *buf, size_t cap, size_t *len)
{
    char p[PATH_MAX];
    unsigned char *data = NULL;
    size_t n = 0;
    enum scep_err rc;

    *len = 0;
    if ((rc = svc_secret_path(svc, endpoint, kind, p, sizeof(p))) != SCEP_OK)
        return rc;
    if (access(p, F_OK) != 0)
        return SCEP_E_NO_ENTRY;
    warn_key_mode(p);
    if ((rc = scep_pki_read_file(p, cap, &data, &n)) != SCEP_OK)
        return rc;
    memcpy(buf, data, n);
    *len = n;
    OPENSSL_clear_free(data, n);
    return SCEP_OK;
}

/* A string member of a JSON object into dst ("" when absent). */
static void
json_str(json_t *o, const char *key, char *dst, size_t dlen)
{
    json_t *v = json_object_get(o, key);

    snprintf(dst, dlen, "%s", json_is_string(v) ? json_string_value(v) : "");
}

/*
 * The challenge mode's settings (mode_config JSON, no secrets) and secrets
 * (DIR/secrets/, 0600) of an endpoint.  A mode that cannot work without a
 * setting refuses to load: better no endpoint than one that fails open.
 */
static enum scep_err
load_mode(struct load_ctx *c, struct scep_endpoint *e, const struct scep_endpoint_row *row)
{
    json_error_t jerr;
    json_t *cfg = json_loads(row->mode_config[0] ? row->mode_config : "{}", 0, &jerr);
    enum scep_err rc = SCEP_E_INVALID_ARG;
    int m = scep_mode_parse(row->challenge_mode);
    size_t n = 0;
    json_t *v;

    if (cfg == NULL || !json_is_object(cfg) || m < 0) {
        snprintf(c->errbuf, c->errlen,
                 "endpoint %s: challenge mode \"%s\" or its settings are "
                 "not valid; fix it with scepctl endpoints update",
                 row->name, row->challenge_mode);
        goto out;
    }
    e->mode = (enum scep_mode)m;
    e->max_outstanding = row->max_outstanding > 0 ? row->max_outstanding : 10000;
    v = json_object_get(cfg, "challenge_ttl");
    e->challenge_ttl =
        json_is_integer(v) && json_integer_value(v) > 0 && json_integer_value(v) <= 30 * 86400
            ? (int)json_integer_value(v)
            : 3600;
    snprintf(e->notify_url, sizeof(e->notify_url), "%s", row->notify_url);
    if (e->notify_url[0] != '\0') {
        rc = svc_secret_read(c->svc, e->name, "notify", e->notify_key, sizeof(e->notify_key), &n);
        e->has_notify_key = rc == SCEP_OK && n == sizeof(e->notify_key);
    }
    switch (e->mode) {
    case SCEP_MODE_SIGNED:
        rc = svc_secret_read(c->svc, e->name, "token", e->mode_key, sizeof(e->mode_key), &n);
        if (rc != SCEP_OK || n != sizeof(e->mode_key)) {
            snprintf(c->errbuf, c->errlen,
                     "endpoint %s: its token key %s/%s.token is missing "
                     "or not 32 bytes; make a new one with scepctl endpoints update %s "
                     "--rotate-key",
                     row->name, SCEP_SECRETS_DIR, row->name, row->name);
            rc = SCEP_E_KEY_FILE;
            goto out;
        }
        e->has_mode_key = 1;
        break;
    case SCEP_MODE_WEBHOOK:
        json_str(cfg, "webhook_url", e->webhook_url, sizeof(e->webhook_url));
        v = json_object_get(cfg, "webhook_timeout_ms");
        e->webhook_timeout_ms = json_is_integer(v) ? (long)json_integer_value(v) : 5000;
        if (e->webhook_url[0] == '\0') {
            snprintf(c->errbuf, c->errlen,
                     "endpoint %s: webhook mode without a URL; set "
                     "--webhook-url",
                     row->name);
            goto out;
        }
        rc = svc_secret_read(c->svc, e->name, "webhook", e->mode_key, sizeof(e->mode_key), &n);
        e->has_mode_key = rc == SCEP_OK && n == sizeof(e->mode_key);
        rc = svc_secret_read(c->svc, e->name, "bearer", (unsigned char *)e->webhook_bearer,
                             sizeof(e->webhook_bearer) - 1, &n);
        if (rc == SCEP_OK)
            e->webhook_bearer[n] = '\0';
        else
            e->webhook_bearer[0] = '\0';
        break;
    case SCEP_MODE_INTUNE: {
        struct scep_intune_cfg ic;
        json_t *it = json_object_get(cfg, "intune");
        memset(&ic, 0, sizeof(ic));
        json_str(it, "tenant", ic.tenant, sizeof(ic.tenant));
        json_str(it, "app_id", ic.app_id, sizeof(ic.app_id));
        json_str(it, "provider", ic.provider, sizeof(ic.provider));
        json_str(it, "proxy", ic.proxy, sizeof(ic.proxy));
        json_str(it, "login_url", ic.login_url, sizeof(ic.login_url));
        json_str(it, "graph_url", ic.graph_url, sizeof(ic.graph_url));
        json_str(it, "resource_url", ic.resource_url, sizeof(ic.resource_url));
        json_str(it, "ca_file", ic.ca_file, sizeof(ic.ca_file));
        v = json_object_get(it, "timeout_ms");
        ic.timeout_ms = json_is_integer(v) ? (long)json_integer_value(v) : 0;
        rc = svc_secret_read(c->svc, e->name, "intune", (unsigned char *)ic.app_key,
                             sizeof(ic.app_key) - 1, &n);
        if (rc != SCEP_OK || ic.tenant[0] == '\0' || ic.app_id[0] == '\0') {
            snprintf(c->errbuf, c->errlen,
                     "endpoint %s: Intune mode needs a tenant, an "
                     "application id and key (%s/%s.intune); set them with scepctl endpoints "
                     "update",
                     row->name, SCEP_SECRETS_DIR, row->name);
            OPENSSL_cleanse(&ic, sizeof(ic));
            rc = SCEP_E_INVALID_ARG;
            goto out;
        }
        ic.app_key[n] = '\0';
        rc = scep_intune_new(&ic, &e->intune);
        OPENSSL_cleanse(&ic, sizeof(ic));
        if (rc != SCEP_OK) {
            snprintf(c->errbuf, c->errlen, "endpoint %s: the Intune client cannot start: %s",
                     row->name, scep_strerror(rc));
            goto out;
        }
        break;
    }
    default:
        break;
    }
    rc = SCEP_OK;
out:
    json_decref(cfg);
    return rc;
}

static int
load_endpoint(void *arg, const struct scep_endpoint_row *row)
{
    struct load_ctx *c = arg;
    struct scep_service *svc = c->svc;
    struct ep_table *t = c->t;
    struct scep_endpoint *e;
    const struct ca_entry *ca, *next;

    if (t->neps >= MAX_ENDPOINTS) {
        snprintf(c->errbuf, c->errlen, "more than %d endpoints", MAX_ENDPOINTS);
        c->rc = SCEP_E_INVALID_ARG;
        return 1;
    }
    e = &t->eps[t->neps];
    memset(e, 0, sizeof(*e));
    e->id = row->id;
    snprintf(e->name, sizeof(e->name), "%s", row->name);
    e->ca_id = row->ca_id;
    memcpy(e->challenge_hash, row->challenge_hash, sizeof(e->challenge_hash));
    e->has_challenge_hash = row->has_challenge_hash;
    e->allow_des = row->allow_des;
    e->advertise_post = row->advertise_post;
    e->validity_days = row->validity_days;
    e->enabled = row->enabled;
    e->getcacert_single = strcmp(row->getcacert_format, "single") == 0;
    e->approval_manual = row->approval_manual;
    e->renewal_window_days = row->renewal_window_days;
    e->renewal_grace_days = row->renewal_grace_days;
    e->revoke_on_renewal = row->revoke_on_renewal;
    e->getcert_chain = row->getcert_chain;
    snprintf(e->organization, sizeof(e->organization), "%s", row->organization);
    snprintf(e->department, sizeof(e->department), "%s", row->department);
    e->profile_id = row->profile_id;
    if ((c->rc = load_mode(c, e, row)) != SCEP_OK)
        goto fail;
    if ((ca = svc_ca_by_id(t, row->ca_id)) == NULL) {
        snprintf(c->errbuf, c->errlen, "endpoint %s: its CA %lld is missing from the database",
                 row->name, (long long)row->ca_id);
        c->rc = SCEP_E_STORE;
        goto fail; /* load_mode may have started an Intune client */
    }
    snprintf(e->ca_name, sizeof(e->ca_name), "%s", ca->name);
    {
        char *subj = scep_name_to_text(X509_get_subject_name(ca->cert));
        if (subj == NULL) {
            c->rc = SCEP_E_NOMEM;
            goto fail;
        }
        snprintf(e->ca_subject, sizeof(e->ca_subject), "%s", subj);
        free(subj);
    }
    if (svc->public_url[0] != '\0')
        snprintf(e->cdp_url, sizeof(e->cdp_url), "%s/crl/%s.crl", svc->public_url, ca->name);
    X509_up_ref(ca->cert);
    e->ca_cert = ca->cert;
    EVP_PKEY_up_ref(ca->key);
    e->ca_key = ca->key;
    e->ra_cert = svc_der_to_cert(row->ra_cert_der, row->ra_cert_len);
    if (e->ra_cert == NULL) {
        snprintf(c->errbuf, c->errlen, "endpoint %s: stored certificates do not parse", row->name);
        c->rc = SCEP_E_STORE;
        goto fail;
    }
    if ((c->rc = load_key(c, e->ra_cert, row->ra_key_ref, "RA", &e->ra_key)) != SCEP_OK)
        goto fail;
    if (e->getcacert_single) {
        e->reply_cert = e->ca_cert;
        e->reply_key = e->ca_key;
    } else {
        e->reply_cert = e->ra_cert;
        e->reply_key = e->ra_key;
    }
    /* a prepared rollover: GetNextCACert serves it */
    if (ca->next_id != 0 && (next = svc_ca_by_id(t, ca->next_id)) != NULL &&
        row->next_ra_cert_der != NULL) {
        X509_up_ref(next->cert);
        e->next_ca_cert = next->cert;
        e->next_ra_cert = svc_der_to_cert(row->next_ra_cert_der, row->next_ra_cert_len);
        if (e->next_ra_cert == NULL || (c->rc = build_nextcacert(e)) != SCEP_OK) {
            snprintf(c->errbuf, c->errlen, "endpoint %s: the prepared rollover does not load",
                     row->name);
            c->rc = c->rc == SCEP_OK ? SCEP_E_STORE : c->rc;
            goto fail;
        }
    }
    build_caps(e);
    if ((c->rc = build_cacert(e)) != SCEP_OK)
        goto fail;
    t->neps++;
    ERR_clear_error();
    return 0;
fail:
    ERR_clear_error();
    endpoint_clear(e);
    return 1;
}

static int
load_profile(void *arg, const struct scep_profile_row *row)
{
    struct ep_table *t = ((struct load_ctx *)arg)->t;

    if (t->nprofiles == t->profiles_cap) {
        size_t nc = t->profiles_cap ? 2 * t->profiles_cap : 16;
        struct scep_profile_row *np = realloc(t->profiles, nc * sizeof(*np));
        if (np == NULL)
            return 1;
        t->profiles = np;
        t->profiles_cap = nc;
    }
    t->profiles[t->nprofiles++] = *row;
    return 0;
}

/* Read CAs and endpoints into a new table. */
static enum scep_err
load_table(struct scep_service *svc, struct ep_table **out, char *errbuf, size_t errlen)
{
    struct ep_table *t = calloc(1, sizeof(*t));
    struct load_ctx lc;
    enum scep_err rc;

    *out = NULL;
    if (t == NULL || (t->eps = calloc(MAX_ENDPOINTS, sizeof(*t->eps))) == NULL ||
        (t->cas = calloc(MAX_ENDPOINTS, sizeof(*t->cas))) == NULL) {
        table_free(t);
        return SCEP_E_NOMEM;
    }
    memset(&lc, 0, sizeof(lc));
    lc.svc = svc;
    lc.t = t;
    lc.errbuf = errbuf;
    lc.errlen = errlen;
    rc = scep_store_each_ca(svc->store, load_ca, &lc);
    if (rc == SCEP_OK)
        rc = scep_store_each_profile(svc->store, load_profile, &lc);
    if (rc == SCEP_OK)
        rc = scep_store_each_endpoint(svc->store, load_endpoint, &lc);
    if (rc != SCEP_OK) {
        if (lc.rc != SCEP_OK)
            rc = lc.rc;
        table_free(t);
        return rc;
    }
    if (t->neps == 0) {
        snprintf(errbuf, errlen, "%s has no endpoint; re-create it with scepd init", svc->datadir);
        table_free(t);
        return SCEP_E_INVALID_ARG;
    }
    *out = t;
    return SCEP_OK;
}

/* Publish a freshly loaded table; the old one is retired (see struct ep_table). */
enum scep_err
svc_reload(struct scep_service *svc, char *errbuf, size_t errlen)
{
    struct ep_table *t = NULL;
    enum scep_err rc = load_table(svc, &t, errbuf, errlen);

    if (rc != SCEP_OK)
        return rc;
    t->retired = atomic_load(&svc->table);
    atomic_store(&svc->table, t);
    scep_log(SCEP_LOG_INFO, "service", "reloaded endpoints=%zu cas=%zu", t->neps, t->ncas);
    return SCEP_OK;
}

enum scep_err
scep_service_open(const char *datadir, struct scep_service **out, char *errbuf, size_t errlen)
{
    struct scep_service *svc = NULL;
    unsigned char *sec = NULL;
    size_t seclen = 0;
    char p[PATH_MAX];
    enum scep_err rc;

    *out = NULL;
    errbuf[0] = '\0';
    if ((rc = scep_lib_init()) != SCEP_OK)
        return rc;
    if ((svc = calloc(1, sizeof(*svc))) == NULL || (svc->datadir = strdup(datadir)) == NULL) {
        rc = SCEP_E_NOMEM;
        goto out;
    }
    pthread_mutex_init(&svc->reload_mu, NULL);
    {
        /* a helper per core beyond the first, for the CRT halves (crt.h) */
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        if ((svc->crt = scep_crt_pool_new(cores > 1 ? (unsigned)cores - 1 : 0, SCEP_CRT_AUTO)) ==
            NULL) {
            rc = SCEP_E_NOMEM;
            goto out;
        }
    }
    if ((rc = scep_path(p, sizeof(p), datadir, SCEP_SECRET_FILE)) != SCEP_OK ||
        (rc = scep_pki_read_file(p, 4096, &sec, &seclen)) != SCEP_OK || seclen != SCEP_SECRET_LEN) {
        snprintf(errbuf, errlen, "%s is missing or damaged; restore it from your backup", p);
        rc = SCEP_E_KEY_FILE;
        goto out;
    }
    memcpy(svc->secret, sec, SCEP_SECRET_LEN);
    if ((rc = scep_path(p, sizeof(p), datadir, SCEP_DB_FILE)) != SCEP_OK ||
        (rc = scep_store_open(p, 0, &svc->store)) != SCEP_OK) {
        snprintf(errbuf, errlen, "cannot open the database %s; is it a scepd data directory?", p);
        goto out;
    }
    if ((rc = scep_store_get_meta(svc->store, "public_url", svc->public_url,
                                  sizeof(svc->public_url))) != SCEP_OK) {
        svc->public_url[0] = '\0';
        if (rc != SCEP_E_NO_ENTRY)
            goto out;
    }
    if ((rc = svc_reload(svc, errbuf, errlen)) != SCEP_OK)
        goto out;
    *out = svc;
    svc = NULL; /* transferred */
    rc = SCEP_OK;
out:
    if (sec != NULL) {
        OPENSSL_cleanse(sec, seclen);
        free(sec);
    }
    scep_service_free(svc);
    return rc;
}

const struct scep_endpoint *
scep_service_endpoint(const struct scep_service *svc, const char *name, size_t len)
{
    size_t i;

    if (name == NULL || len == 0) {
        name = SCEP_DEFAULT_ENDPOINT;
        len = strlen(name);
    }
    const struct ep_table *t = svc_tbl(svc);

    for (i = 0; i < t->neps; i++)
        if (strlen(t->eps[i].name) == len && memcmp(t->eps[i].name, name, len) == 0)
            return &t->eps[i];
    return NULL;
}

void
scep_service_set_gate(struct scep_service *svc, struct scep_gate *g)
{
    svc->gate = g;
}

struct scep_store *
scep_service_store(const struct scep_service *svc)
{
    return svc->store;
}

void
scep_result_clear(struct scep_result *r)
{
    free(r->owned);
    memset(r, 0, sizeof(*r));
    r->msgtype = -1;
    r->fail_info = -1;
    r->pki_status = "-";
}

static void
result_init(struct scep_result *r)
{
    memset(r, 0, sizeof(*r));
    r->msgtype = -1;
    r->fail_info = -1;
    r->pki_status = "-";
    r->txid[0] = '\0';
}

void
scep_service_http_error(enum scep_err err, struct scep_result *r)
{
    char text[160];
    int n;

    r->err = err;
    r->http_status = scep_errcat_http_status(scep_errcat(err));
    if (r->http_status == 200)
        r->http_status = 500;
    n = snprintf(text, sizeof(text), "scepd: %s\n", scep_strerror(err));
    r->content_type = "text/plain";
    free(r->owned);
    r->owned = malloc((size_t)n);
    r->body = r->owned;
    r->body_len = 0;
    if (r->owned != NULL) {
        memcpy(r->owned, text, (size_t)n);
        r->body_len = (size_t)n;
    }
}

void
scep_service_getcacaps(const struct scep_service *svc, const struct scep_endpoint *ep,
                       struct scep_result *r)
{
    (void)svc;
    result_init(r);
    r->http_status = 200;
    r->content_type = "text/plain";
    r->body = (const unsigned char *)ep->caps;
    r->body_len = ep->caps_len;
}

void
scep_service_getcacert(const struct scep_service *svc, const struct scep_endpoint *ep,
                       struct scep_result *r)
{
    (void)svc;
    result_init(r);
    r->http_status = 200;
    r->content_type = ep->cacert_type;
    r->body = ep->cacert_der;
    r->body_len = ep->cacert_len;
}

/* Reply with a CertRep for a non-success status, or an HTTP error when the
 * error's category has no failInfo (e.g. the database is down: 503). */
static void
reply_status(const struct scep_endpoint *ep, const struct scep_pkimsg *m, enum scep_err err,
             enum scep_pkistatus status, struct scep_result *r)
{
    struct scep_certrep cr;
    enum scep_errcat cat = scep_errcat(err);
    enum scep_err brc;

    r->err = err;
    if (status == SCEP_STATUS_FAILURE && scep_errcat_failinfo(cat) < 0) {
        scep_service_http_error(err, r);
        return;
    }
    memset(&cr, 0, sizeof(cr));
    cr.status = status;
    cr.req = m;
    cr.ra_cert = ep->reply_cert;
    cr.ra_key = ep->reply_key;
    if (status == SCEP_STATUS_FAILURE) {
        cr.fail_info = scep_errcat_failinfo(cat);
        cr.fail_text = scep_strerror(err);
        r->fail_info = cr.fail_info;
        r->pki_status = "FAILURE";
    } else {
        r->pki_status = "PENDING";
    }
    brc = scep_certrep_build(&cr, &r->owned, &r->body_len);
    if (brc != SCEP_OK) {
        scep_service_http_error(brc, r);
        return;
    }
    r->body = r->owned;
    r->http_status = 200;
    r->content_type = "application/x-pki-message";
}

/* SUCCESS carrying certs (the first is the one the client asked for) and/or a CRL. */
static void
reply_success_bundle(const struct scep_endpoint *ep, const struct scep_pkimsg *m,
                     STACK_OF(X509) * certs, X509_CRL *crl, const struct scep_envinfo *env,
                     struct scep_result *r)
{
    struct scep_certrep cr;
    enum scep_err brc;

    memset(&cr, 0, sizeof(cr));
    cr.status = SCEP_STATUS_SUCCESS;
    cr.req = m;
    cr.ra_cert = ep->reply_cert;
    cr.ra_key = ep->reply_key;
    cr.certs = certs;
    cr.crl = crl;
    cr.recipient = m->signer;
    cr.env = env;
    brc = scep_certrep_build(&cr, &r->owned, &r->body_len);
    if (brc != SCEP_OK) {
        scep_service_http_error(brc, r);
        return;
    }
    r->body = r->owned;
    r->http_status = 200;
    r->content_type = "application/x-pki-message";
    r->pki_status = "SUCCESS";
    if (certs != NULL && sk_X509_num(certs) > 0)
        scep_serial_hex(sk_X509_value(certs, 0), r->serial, sizeof(r->serial));
}

static void
reply_success(const struct scep_endpoint *ep, const struct scep_pkimsg *m, X509 *cert,
              const struct scep_envinfo *env, struct scep_result *r)
{
    STACK_OF(X509) *certs = sk_X509_new_null();

    if (certs == NULL || !sk_X509_push(certs, cert)) {
        sk_X509_free(certs);
        scep_service_http_error(SCEP_E_NOMEM, r);
        return;
    }
    reply_success_bundle(ep, m, certs, NULL, env, r);
    sk_X509_free(certs);
}

static time_t
asn1_to_time(const ASN1_TIME *t)
{
    struct tm tm;

    if (ASN1_TIME_to_tm(t, &tm) != 1)
        return 0;
    return timegm(&tm);
}

/*
 * The answer for a transaction in the state the store holds: the
 * certificate (SUCCESS), PENDING while it waits for an operator, FAILURE
 * badRequest once rejected (RFC 8894 §4.4.1, §5.2).
 */
static void
answer_state(const struct scep_endpoint *ep, const struct scep_pkimsg *m,
             const struct scep_request_row *row, const unsigned char *cert_der, size_t cert_len,
             const struct scep_envinfo *env, struct scep_result *r)
{
    X509 *cert;

    switch (row->status) {
    case SCEP_REQ_PENDING:
        reply_status(ep, m, SCEP_OK, SCEP_STATUS_PENDING, r);
        return;
    case SCEP_REQ_REJECTED:
        reply_status(ep, m, SCEP_E_REJECTED, SCEP_STATUS_FAILURE, r);
        return;
    case SCEP_REQ_ISSUED:
        break;
    case SCEP_REQ_FAILED:
    default:
        reply_status(ep, m, SCEP_E_TXID_KEY, SCEP_STATUS_FAILURE, r);
        return;
    }
    if (cert_der == NULL || (cert = svc_der_to_cert(cert_der, cert_len)) == NULL) {
        scep_service_http_error(SCEP_E_STORE, r);
        return;
    }
    reply_success(ep, m, cert, env, r);
    X509_free(cert);
}

/*
 * The answer for a transaction that already exists: the same certificate to
 * the same key and CSR (a retransmission, matrix S1), FAILURE otherwise
 * (S2, S3) without changing anything.
 */
static void
replay(const struct scep_endpoint *ep, const struct scep_pkimsg *m,
       const struct scep_request_row *row, const unsigned char *cert_der, size_t cert_len,
       const unsigned char key_hash[32], const unsigned char csr_hash[32],
       const struct scep_envinfo *env, struct scep_result *r)
{
    if (CRYPTO_memcmp(row->key_hash, key_hash, 32) != 0 ||
        (csr_hash != NULL && CRYPTO_memcmp(row->csr_hash, csr_hash, 32) != 0)) {
        reply_status(ep, m, SCEP_E_TXID_KEY, SCEP_STATUS_FAILURE, r);
        return;
    }
    answer_state(ep, m, row, cert_der, cert_len, env, r);
}

/*
 * Sign a certificate for req with the endpoint's CA and fill the store row
 * for it.  *cert, *der (OPENSSL_free), *subject and *sans (free) are the
 * caller's; the row borrows them and txid.
 */
/* The profile a Microsoft client's template name selects, or NULL. */
static const struct scep_profile_row *
profile_for(const struct scep_service *svc, X509_REQ *req)
{
    const struct ep_table *t = svc_tbl(svc);
    char tmpl[128];
    size_t i;

    if (t->nprofiles == 0 || scep_csr_template(req, tmpl, sizeof(tmpl)) != SCEP_OK)
        return NULL;
    for (i = 0; i < t->nprofiles; i++)
        if (t->profiles[i].template_name[0] != '\0' &&
            strcmp(t->profiles[i].template_name, tmpl) == 0)
            return &t->profiles[i];
    return NULL;
}

/*
 * The keys a request may be encrypted to: the RA, and an RSA CA (some
 * clients envelope to the CA too, digest §2.2 item 4).  Returns the count.
 */
static size_t
decrypt_keys(const struct scep_endpoint *ep, struct scep_decrypt_key keys[2])
{
    size_t n = 0;

    keys[n].cert = ep->ra_cert;
    keys[n++].pkey = ep->ra_key;
    if (EVP_PKEY_get_base_id(ep->ca_key) == EVP_PKEY_RSA) {
        keys[n].cert = ep->ca_cert;
        keys[n++].pkey = ep->ca_key;
    }
    return n;
}

static const struct scep_profile_row *
profile_by_id(const struct ep_table *t, int64_t id)
{
    size_t i;

    for (i = 0; id > 0 && i < t->nprofiles; i++)
        if (t->profiles[i].id == id)
            return &t->profiles[i];
    return NULL;
}

/* The account's profile, else the endpoint's, else the one a template names, else none. */
static const struct scep_profile_row *
choose_profile(const struct scep_service *svc, const struct scep_endpoint *ep,
               const struct scep_authz *az, X509_REQ *req)
{
    const struct ep_table *t = svc_tbl(svc);
    const struct scep_profile_row *p = NULL;

    if (az != NULL && az->profile_id > 0)
        p = profile_by_id(t, az->profile_id);
    if (p == NULL && ep->profile_id > 0)
        p = profile_by_id(t, ep->profile_id);
    if (p == NULL && ep->profile_id == 0)
        p = profile_for(svc, req);
    return p;
}

/*
 * Sign the certificate policy decided for req (profile + authorization)
 * and fill the store row for it.  *cert, *der (OPENSSL_free), *subject and
 * *sans (free) are the caller's; the row borrows them and txid.
 */
static enum scep_err
issue_for(const struct scep_service *svc, const struct scep_endpoint *ep, X509_REQ *req,
          const struct scep_authz *az, const unsigned char *txid, size_t txid_len, X509 **cert,
          unsigned char **der, struct scep_cert_row *cr, char **subject, char **sans,
          const struct scep_profile_row **profile)
{
    const struct scep_profile_row *prof = choose_profile(svc, ep, az, req);
    struct scep_authz none;
    struct scep_policy_out po;
    struct scep_issue_opts io;
    char serial[SCEP_SERIAL_HEX];
    enum scep_err rc;
    int n;

    *der = NULL;
    *subject = *sans = NULL;
    if (profile != NULL)
        *profile = prof;
    if (az == NULL) {
        memset(&none, 0, sizeof(none));
        az = &none;
    }
    memset(&po, 0, sizeof(po));
    if ((rc = scep_policy_apply(req, prof, az, ep->organization, ep->department, ep->validity_days,
                                &po)) != SCEP_OK)
        return rc;
    scep_policy_issue_opts(req, &po, &io);
    io.ca_cert = ep->ca_cert;
    io.ca_key = ep->ca_key;
    io.cdp_url = prof != NULL && prof->cdp_url[0] ? prof->cdp_url
                 : ep->cdp_url[0]                 ? ep->cdp_url
                                                  : NULL;
    io.aia_url = prof != NULL && prof->aia_url[0] ? prof->aia_url : NULL;
    rc = scep_issue_cert(req, &io, cert, serial);
    scep_policy_out_clear(&po);
    if (rc != SCEP_OK)
        return rc;
    n = i2d_X509(*cert, der);
    *subject = scep_name_to_text(X509_get_subject_name(*cert));
    *sans = scep_cert_sans_text(*cert);
    if (n <= 0 || *subject == NULL || *sans == NULL)
        return SCEP_E_NOMEM;
    memset(cr, 0, sizeof(*cr));
    snprintf(cr->serial, sizeof(cr->serial), "%s", serial);
    cr->ca_id = ep->ca_id;
    cr->endpoint_id = ep->id;
    cr->subject = *subject;
    cr->sans = *sans;
    scep_cert_thumbprints(*cert, cr->sha1, cr->sha256);
    cr->not_before = asn1_to_time(X509_get0_notBefore(*cert));
    cr->not_after = asn1_to_time(X509_get0_notAfter(*cert));
    cr->der = *der;
    cr->der_len = (size_t)n;
    cr->status = "valid";
    cr->txid = txid;
    cr->txid_len = txid_len;
    return SCEP_OK;
}

/* The transactionID as text: as sent when printable (it nearly always is), else hex. */
static void
txid_text(const unsigned char *txid, size_t len, char *out, size_t outlen)
{
    size_t i;
    int printable = len > 0;

    for (i = 0; i < len; i++)
        if (txid[i] < 0x20 || txid[i] > 0x7e || txid[i] == '"' || txid[i] == '\\')
            printable = 0;
    if (printable) {
        snprintf(out, outlen, "%.*s", (int)len, (const char *)txid);
        return;
    }
    scep_hex(txid, len < (outlen - 1) / 2 ? len : (outlen - 1) / 2, out);
}

/* Standard base64 of der, malloc'ed (NULL on ENOMEM). */
static char *
b64_of(const unsigned char *der, size_t len)
{
    char *out;

    if (len > INT_MAX / 2 || (out = malloc(4 * ((len + 2) / 3) + 1)) == NULL)
        return NULL;
    EVP_EncodeBlock((unsigned char *)out, der, (int)len);
    return out;
}

enum scep_err
svc_code_hash(const struct scep_service *svc, const char *kind, const char *code, size_t len,
              unsigned char out[32])
{
    char buf[SCEP_MAX_CHALLENGE + 32];
    int n;
    enum scep_err rc;

    /* domain-separated: an access code never matches a one-time challenge or the static one */
    if (len > SCEP_MAX_CHALLENGE)
        return SCEP_E_TOO_LARGE;
    n = snprintf(buf, sizeof(buf), "%s:", kind);
    memcpy(buf + n, code, len);
    rc = scep_challenge_hash(svc->secret, sizeof(svc->secret), buf, (size_t)n + len, out);
    OPENSSL_cleanse(buf, sizeof(buf));
    return rc;
}

/*
 * Who is asking, by the endpoint's challenge mode (DESIGN §3 step 5).
 * Fills az; every error is a refusal (fail closed).  csr_der is the
 * request as the client sent it (with its challenge: Intune and webhooks
 * need it), csr_b64 its base64 (made for the webhook and Intune modes only).
 * why gets what a validation service said.
 */
static enum scep_err
authorize(const struct scep_service *svc, const struct scep_endpoint *ep,
          const struct scep_pkimsg *m, const unsigned char *csr_der, size_t csr_len,
          const char *csr_b64, const char *chal, size_t chlen, struct scep_authz *az, char *why,
          size_t whylen)
{
    unsigned char h[32];
    enum scep_err rc;
    char txid[200];
    int paused;

    memset(az, 0, sizeof(*az));
    why[0] = '\0';
    az->mode = scep_mode_name(ep->mode);
    txid_text(m->txid, m->txid_len, txid, sizeof(txid));
    switch (ep->mode) {
    case SCEP_MODE_STATIC:
        if (!ep->has_challenge_hash)
            return SCEP_E_CHALLENGE;
        if ((rc = scep_challenge_check(svc->secret, sizeof(svc->secret), chal, chlen,
                                       ep->challenge_hash)) != SCEP_OK)
            return rc;
        snprintf(az->actor, sizeof(az->actor), "static");
        return SCEP_OK;
    case SCEP_MODE_ACCOUNT: {
        struct scep_account_row a;
        if ((rc = svc_code_hash(svc, "account", chal, chlen, h)) != SCEP_OK)
            return rc;
        rc = scep_store_find_account(svc->store, h, &a);
        if (rc == SCEP_E_NO_ENTRY || (rc == SCEP_OK && a.endpoint_id != ep->id))
            return SCEP_E_CHALLENGE;
        if (rc != SCEP_OK)
            return rc;
        if (!a.enabled)
            return SCEP_E_ACCOUNT_DISABLED;
        az->account_id = a.id;
        snprintf(az->organization, sizeof(az->organization), "%s", a.organization);
        snprintf(az->department, sizeof(az->department), "%s", a.department);
        az->profile_id = a.profile_id;
        az->validity_days = a.validity_days;
        snprintf(az->actor, sizeof(az->actor), "account:%s", a.name);
        return SCEP_OK;
    }
    case SCEP_MODE_ONETIME: {
        struct scep_challenge_row c;
        if ((rc = svc_code_hash(svc, "otc", chal, chlen, h)) != SCEP_OK)
            return rc;
        rc = scep_store_find_challenge(svc->store, ep->id, h, &c);
        if (rc == SCEP_E_NO_ENTRY)
            return SCEP_E_CHALLENGE;
        if (rc != SCEP_OK)
            return rc;
        if (c.used_at != 0)
            return SCEP_E_CHALLENGE_USED;
        if (time(NULL) >= c.expires_at)
            return SCEP_E_CHALLENGE_EXPIRED;
        az->challenge_id = c.id;
        az->bound = c.subject[0] != '\0' || c.sans[0] != '\0';
        snprintf(az->subject, sizeof(az->subject), "%s", c.subject);
        if (scep_policy_parse_sans(c.sans, az) != SCEP_OK)
            return SCEP_E_INTERNAL; /* checked when it was made */
        snprintf(az->device, sizeof(az->device), "%s", c.device_id);
        snprintf(az->sid, sizeof(az->sid), "%s", c.sid);
        snprintf(az->actor, sizeof(az->actor), "challenge:%lld", (long long)c.id);
        return SCEP_OK;
    }
    case SCEP_MODE_SIGNED: {
        struct scep_token tok;
        int used = 0;
        size_t i;
        if (!ep->has_mode_key)
            return SCEP_E_CHALLENGE;
        rc = scep_token_verify(ep->mode_key, sizeof(ep->mode_key), chal, chlen, (int64_t)time(NULL),
                               &tok);
        if (rc != SCEP_OK)
            return rc;
        if (strcmp(tok.endpoint, ep->name) != 0)
            return SCEP_E_TOKEN; /* minted for another endpoint */
        if ((rc = scep_store_nonce_used(svc->store, ep->id, tok.nonce, &used)) != SCEP_OK)
            return rc;
        if (used)
            return SCEP_E_CHALLENGE_USED;
        /* the token binds exactly: its subject, its SANs (or none), its usages */
        az->bound = 1;
        snprintf(az->subject, sizeof(az->subject), "%s", tok.subject);
        for (i = 0; i < tok.nsans && i < SCEP_AUTHZ_MAX_SANS; i++)
            snprintf(az->sans[i], sizeof(az->sans[i]), "%s", tok.sans[i]);
        az->nsans = i;
        snprintf(az->eku, sizeof(az->eku), "%s", tok.eku);
        snprintf(az->device, sizeof(az->device), "%s", tok.device);
        snprintf(az->sid, sizeof(az->sid), "%s", tok.sid);
        snprintf(az->nonce, sizeof(az->nonce), "%s", tok.nonce);
        az->nonce_expires = tok.expires;
        snprintf(az->actor, sizeof(az->actor), "token:%s", tok.nonce);
        return SCEP_OK;
    }
    case SCEP_MODE_WEBHOOK: {
        struct scep_webhook_cfg cfg;
        struct scep_webhook_req wr;
        char challenge[SCEP_MAX_CHALLENGE + 1];
        memset(&cfg, 0, sizeof(cfg));
        cfg.url = ep->webhook_url;
        cfg.hmac_key = ep->has_mode_key ? ep->mode_key : NULL;
        cfg.hmac_key_len = ep->has_mode_key ? sizeof(ep->mode_key) : 0;
        cfg.bearer = ep->webhook_bearer[0] ? ep->webhook_bearer : NULL;
        cfg.timeout_ms = ep->webhook_timeout_ms;
        snprintf(challenge, sizeof(challenge), "%.*s", (int)chlen, chal);
        memset(&wr, 0, sizeof(wr));
        wr.transaction_id = txid;
        wr.csr_der = csr_der;
        wr.csr_len = csr_len;
        wr.endpoint = ep->name;
        wr.challenge = challenge;
        paused = scep_gate_pause(svc->gate); /* a network wait, not CPU work */
        rc = scep_webhook_validate(&cfg, &wr, why, whylen);
        scep_gate_resume(svc->gate, paused);
        OPENSSL_cleanse(challenge, sizeof(challenge));
        snprintf(az->actor, sizeof(az->actor), "webhook");
        return rc;
    }
    case SCEP_MODE_INTUNE:
        paused = scep_gate_pause(svc->gate);
        rc = scep_intune_validate(ep->intune, txid, csr_b64, why, whylen);
        scep_gate_resume(svc->gate, paused);
        snprintf(az->actor, sizeof(az->actor), "intune");
        return rc;
    }
    return SCEP_E_CHALLENGE;
}

/* ISO 8601 UTC with milliseconds, as Intune wants expiration dates. */
static void
iso8601(time_t t, char *out, size_t outlen)
{
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(out, outlen, "%Y-%m-%dT%H:%M:%S.000Z", &tm);
}

/*
 * The HRESULT a failure is reported with (Intune failureNotification and
 * our failure events): access denied for authorization, the Certificate
 * Services codes for what the request asked, E_FAIL for the rest.
 */
static long
hresult_of(enum scep_err e)
{
    switch (e) {
    case SCEP_E_CHALLENGE:
    case SCEP_E_CHALLENGE_MISSING:
    case SCEP_E_CHALLENGE_USED:
    case SCEP_E_CHALLENGE_EXPIRED:
    case SCEP_E_TOKEN:
    case SCEP_E_ACCOUNT_DISABLED:
    case SCEP_E_DENIED:
        return (long)0x80070005L; /* E_ACCESSDENIED */
    case SCEP_E_NAME_POLICY:
    case SCEP_E_CHALLENGE_IDENTITY:
    case SCEP_E_DUPLICATE_SUBJECT:
        return (long)0x80094001L; /* CERTSRV_E_BAD_REQUESTSUBJECT */
    case SCEP_E_KEY_POLICY:
        return (long)0x80094811L; /* CERTSRV_E_KEY_LENGTH */
    case SCEP_E_EKU_POLICY:
        return (long)0x80094800L; /* CERTSRV_E_UNSUPPORTED_CERT_TYPE */
    case SCEP_E_CSR_PARSE:
    case SCEP_E_CSR_SIGNATURE:
    case SCEP_E_POP:
        return (long)0x80094004L; /* CERTSRV_E_BAD_REQUEST... (malformed request) */
    default:
        return (long)0x80004005L; /* E_FAIL */
    }
}

/* The event of an issuance (success) or refusal (failure): the Intune fields and ours. */
static char *
event_json(const struct scep_endpoint *ep, const struct scep_authz *az, const char *txid,
           const char *csr_b64, X509 *cert, const char *serial, const char *sha1, enum scep_err e,
           const char *why)
{
    json_t *o = json_object();
    char *out = NULL;

    if (o == NULL)
        return NULL;
    json_object_set_new(o, "endpoint", json_string(ep->name));
    json_object_set_new(o, "transactionId", json_string(txid));
    json_object_set_new(o, "mode", json_string(scep_mode_name(ep->mode)));
    json_object_set_new(o, "time", json_integer((json_int_t)time(NULL)));
    if (csr_b64 != NULL)
        json_object_set_new(o, "certificateRequest", json_string(csr_b64));
    if (az != NULL && az->actor[0] != '\0')
        json_object_set_new(o, "actor", json_string(az->actor));
    if (az != NULL && az->device[0] != '\0')
        json_object_set_new(o, "deviceId", json_string(az->device));
    if (cert != NULL) {
        char exp[40];
        iso8601(asn1_to_time(X509_get0_notAfter(cert)), exp, sizeof(exp));
        json_object_set_new(o, "event", json_string("success"));
        json_object_set_new(o, "certificateThumbprint", json_string(sha1));
        json_object_set_new(o, "certificateSerialNumber", json_string(serial));
        json_object_set_new(o, "certificateExpirationDate", json_string(exp));
        json_object_set_new(o, "issuingCertificateAuthority", json_string(ep->ca_subject));
    } else {
        char desc[256];
        snprintf(desc, sizeof(desc), "%s%s%s", scep_strerror(e), why && why[0] ? ": " : "",
                 why ? why : "");
        json_object_set_new(o, "event", json_string("failure"));
        json_object_set_new(o, "hResult", json_integer((json_int_t)hresult_of(e)));
        json_object_set_new(o, "errorCode", json_string(scep_errname(e)));
        json_object_set_new(o, "errorDescription", json_string(desc));
    }
    out = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    return out;
}

/* ca is the endpoint's current CA or one it rolled over from (follows next_id). */
static int
in_lineage(const struct ep_table *t, const struct ca_entry *ca, int64_t current)
{
    int steps;

    for (steps = 0; ca != NULL && steps < 64; steps++) {
        if (ca->id == current)
            return 1;
        ca = ca->next_id != 0 ? svc_ca_by_id(t, ca->next_id) : NULL;
    }
    return 0;
}

/*
 * Is the request signer a certificate this endpoint's CA issued (a
 * renewal, RFC 8894 §2.3 case 2, whatever the messageType says: macOS,
 * certmonger and sscep renew with PKCSReq, digest P16)?  SCEP_OK and the
 * stored record when it is; SCEP_E_NO_ENTRY when it is not ours.
 */
static enum scep_err
our_certificate(const struct scep_service *svc, const struct scep_endpoint *ep, X509 *signer,
                struct scep_cert_info *old, char serial[48])
{
    unsigned char *der = NULL;
    int n, same;
    enum scep_err rc;

    const struct ep_table *t = svc_tbl(svc);
    const struct ca_entry *issuer = NULL;
    size_t i;

    memset(old, 0, sizeof(*old));
    serial[0] = '\0';
    /* the endpoint's CA, or one it rolled over from: its certificates still renew */
    for (i = 0; i < t->ncas && issuer == NULL; i++)
        if (in_lineage(t, &t->cas[i], ep->ca_id) &&
            X509_check_issued(t->cas[i].cert, signer) == X509_V_OK &&
            X509_verify(signer, X509_get0_pubkey(t->cas[i].cert)) == 1)
            issuer = &t->cas[i];
    ERR_clear_error();
    if (issuer == NULL)
        return SCEP_E_NO_ENTRY;
    scep_serial_hex(signer, serial, 48);
    if ((rc = scep_store_get_cert(svc->store, serial, old)) != SCEP_OK)
        return rc == SCEP_E_NO_ENTRY ? SCEP_E_RENEWAL_SIGNER : rc;
    if (old->ca_id != issuer->id)
        return SCEP_E_RENEWAL_SIGNER;
    /* the very certificate we stored, byte for byte */
    n = i2d_X509(signer, &der);
    same = n > 0 && (size_t)n == old->der_len && memcmp(der, old->der, old->der_len) == 0;
    OPENSSL_free(der);
    return same ? SCEP_OK : SCEP_E_RENEWAL_SIGNER;
}

/* The DER encodings of a GENERAL_NAMES, sorted, for a set comparison. */
static int
same_names(const GENERAL_NAMES *a, const GENERAL_NAMES *b)
{
    int na = a ? sk_GENERAL_NAME_num(a) : 0, nb = b ? sk_GENERAL_NAME_num(b) : 0, i, j;

    if (na != nb)
        return 0;
    /* every name of a is in b (both come from validated, small lists) */
    for (i = 0; i < na; i++) {
        for (j = 0; j < nb; j++)
            if (GENERAL_NAME_cmp(sk_GENERAL_NAME_value(a, i), sk_GENERAL_NAME_value(b, j)) == 0)
                break;
        if (j == nb)
            return 0;
    }
    return 1;
}

/*
 * Take the SID URI out of names (the renewed certificate's SANs) into sid:
 * a SID came from an authorization, a renewal CSR cannot carry it (it
 * would be refused as spoofing), and the renewal keeps it.
 */
static void
take_sid(GENERAL_NAMES *names, char sid[96])
{
    int i;
    size_t plen = strlen(SCEP_SID_URI_PREFIX);

    sid[0] = '\0';
    for (i = 0; names != NULL && i < sk_GENERAL_NAME_num(names); i++) {
        GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);
        const ASN1_STRING *u;
        if (g->type != GEN_URI)
            continue;
        u = g->d.uniformResourceIdentifier;
        if ((size_t)ASN1_STRING_length(u) > plen && (size_t)ASN1_STRING_length(u) < plen + 96 &&
            strncasecmp((const char *)ASN1_STRING_get0_data(u), SCEP_SID_URI_PREFIX, plen) == 0) {
            snprintf(sid, 96, "%.*s", ASN1_STRING_length(u) - (int)plen,
                     (const char *)ASN1_STRING_get0_data(u) + plen);
            if (!scep_policy_sid_ok(sid))
                sid[0] = '\0';
            GENERAL_NAME_free(sk_GENERAL_NAME_delete(names, i));
            i--;
        }
    }
}

/*
 * Renewal policy: state, validity, window, same identity (subject and
 * SANs; the SID of the renewed certificate, if any, goes to sid).
 */
static enum scep_err
check_renewal(const struct scep_endpoint *ep, const struct scep_cert_info *old, X509 *signer,
              X509_REQ *req, char sid[96])
{
    time_t now = time(NULL);
    STACK_OF(X509_EXTENSION) * exts;
    GENERAL_NAMES *want = NULL, *have;
    int ok;

    if (old->revoked)
        return SCEP_E_RENEWAL_REVOKED;
    if (now < old->not_before || now > old->not_after + (time_t)ep->renewal_grace_days * 86400)
        return SCEP_E_RENEWAL_EXPIRED;
    if (ep->renewal_window_days > 0 &&
        now < old->not_after - (time_t)ep->renewal_window_days * 86400)
        return SCEP_E_RENEWAL_EARLY;
    if (X509_NAME_cmp(X509_REQ_get_subject_name(req), X509_get_subject_name(signer)) != 0)
        return SCEP_E_RENEWAL_IDENTITY;
    exts = scep_csr_extensions(req);
    if (exts != NULL)
        want = X509V3_get_d2i(exts, NID_subject_alt_name, NULL, NULL);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    have = X509_get_ext_d2i(signer, NID_subject_alt_name, NULL, NULL);
    take_sid(have, sid);
    ok = same_names(want, have);
    GENERAL_NAMES_free(want);
    GENERAL_NAMES_free(have);
    ERR_clear_error();
    return ok ? SCEP_OK : SCEP_E_RENEWAL_IDENTITY;
}

/* The profile's duplicate-subject rule for the certificate about to be stored. */
static enum scep_err
duplicate_rule(const struct scep_service *svc, const struct scep_endpoint *ep,
               const struct scep_profile_row *p, const struct scep_cert_row *cr, int renewal,
               struct scep_commit_extra *x)
{
    int64_t n = 0;
    enum scep_err rc;

    x->revoke_same_subject = 0;
    x->refuse_same_subject = 0;
    if (p == NULL || strcmp(p->duplicate_subject, "allow") == 0 || p->duplicate_subject[0] == '\0')
        return SCEP_OK;
    if (strcmp(p->duplicate_subject, "revoke") == 0) {
        x->revoke_same_subject = 1; /* in the issuance's own commit */
        return SCEP_OK;
    }
    if (renewal)
        return SCEP_OK; /* a renewal replaces its own certificate */
    /* refused early here (before the reply is built); checked again in the commit */
    if ((rc = scep_store_count_valid_subject(svc->store, ep->ca_id, cr->subject,
                                             (int64_t)time(NULL), &n)) != SCEP_OK)
        return rc;
    x->refuse_same_subject = 1;
    return n > 0 ? SCEP_E_DUPLICATE_SUBJECT : SCEP_OK;
}

/*
 * A refused enrollment: audit row and failure event (riding the next group
 * commit), and for Intune a failureNotification when the request had been
 * validated (not for the service's own errors, seed 003).
 */
static void
refused(const struct scep_service *svc, const struct scep_endpoint *ep, const struct scep_authz *az,
        const char *txid, const char *csr_b64, const char *kept_b64, enum scep_err e,
        const char *why, int validated)
{
    char *ev = event_json(ep, az, txid, kept_b64, NULL, NULL, NULL, e, why);
    char reason[300];
    enum scep_err rc;

    snprintf(reason, sizeof(reason), "%s%s%s", scep_errname(e), why && why[0] ? ": " : "",
             why ? why : "");
    rc = scep_store_record_refusal(svc->store, ep->id, ep->name, txid,
                                   az->actor[0] ? az->actor : "unauthenticated", reason, ev,
                                   ep->notify_url[0] != '\0' && ev != NULL);
    if (rc != SCEP_OK)
        scep_log(SCEP_LOG_WARN, "audit", "refusal not recorded endpoint=%s err=%s", ep->name,
                 scep_errname(rc));
    if (validated && ep->intune != NULL && csr_b64 != NULL) {
        char desc[256], ewhy[256];
        snprintf(desc, sizeof(desc), "%s", scep_strerror(e));
        if (scep_intune_failure(ep->intune, txid, csr_b64, hresult_of(e), desc, ewhy,
                                sizeof(ewhy)) != SCEP_OK)
            scep_log(SCEP_LOG_WARN, "intune",
                     "failureNotification not accepted endpoint=%s "
                     "why=\"%s\"",
                     ep->name, ewhy);
    }
    free(ev);
}

static void
pkcsreq(const struct scep_service *svc, const struct scep_endpoint *ep, const struct scep_pkimsg *m,
        struct scep_result *r)
{
    struct scep_decrypt_key keys[2];
    size_t nkeys = 0;
    unsigned char *inner = NULL, key_hash[32], csr_hash[32];
    size_t innerlen = 0, chlen = 0;
    struct scep_envinfo env;
    struct scep_request_row row;
    X509_REQ *req = NULL;
    X509 *cert = NULL;
    unsigned char *cert_der = NULL, *stored = NULL;
    size_t stored_len = 0;
    char chal[SCEP_MAX_CHALLENGE], old_serial[48];
    unsigned char *kept = NULL;
    size_t kept_len = 0;
    struct scep_cert_info old;
    struct scep_authz az;
    struct scep_commit_extra x;
    char txid[200], why[256], *csr_b64 = NULL, *kept_b64 = NULL, *event = NULL;
    enum scep_err rc;
    int attempt, renewal, validated = 0;

    chal[0] = '\0';
    why[0] = '\0';
    memset(&old, 0, sizeof(old));
    memset(&az, 0, sizeof(az));
    memset(&x, 0, sizeof(x));
    txid_text(m->txid, m->txid_len, txid, sizeof(txid));
    /* Signed by a certificate we issued: a renewal, whatever the message type. */
    rc = our_certificate(svc, ep, m->signer, &old, old_serial);
    renewal = rc == SCEP_OK;
    if (!renewal && (rc != SCEP_E_NO_ENTRY || m->msgtype == SCEP_MSG_RENEWALREQ)) {
        /* a RenewalReq from anyone else, or a certificate of ours we have no record of */
        rc = rc == SCEP_E_NO_ENTRY || rc == SCEP_E_RENEWAL_SIGNER ? SCEP_E_RENEWAL_SIGNER : rc;
        goto fail;
    }
    nkeys = decrypt_keys(ep, keys);
    if ((rc = scep_pkimsg_decrypt(m, keys, nkeys, ep->allow_des, &inner, &innerlen, &env)) !=
        SCEP_OK)
        goto fail;
    /* Key policy first: no work is spent on a 16384-bit or odd key (matrix C19). */
    if ((rc = scep_csr_parse(inner, innerlen, &req)) != SCEP_OK ||
        (rc = scep_csr_check_key(req)) != SCEP_OK || (rc = scep_csr_verify_self(req)) != SCEP_OK)
        goto fail;
    /*
     * Proof of possession: an initial request is signed with the CSR's own
     * key.  A renewal is signed with the old certificate and may carry a new
     * key; the CSR's self-signature is then its only proof (RFC 8894 §7.6).
     */
    if (!renewal && (rc = scep_csr_check_pop(req, m->signer)) != SCEP_OK)
        goto fail;
    if ((rc = scep_spki_hash(X509_REQ_get_X509_PUBKEY(req), key_hash)) != SCEP_OK)
        goto fail;
    /* the request as sent, for the validation services that read its challenge */
    if ((ep->mode == SCEP_MODE_WEBHOOK || ep->mode == SCEP_MODE_INTUNE) &&
        (csr_b64 = b64_of(inner, innerlen)) == NULL) {
        rc = SCEP_E_NOMEM;
        goto fail;
    }
    /*
     * The CSR carries the challenge in clear: what is kept is a keyed hash
     * of the whole request (for retransmissions) and the CSR without its
     * challengePassword (for the record and for approval).
     */
    if ((rc = scep_challenge_hash(svc->secret, sizeof(svc->secret), (const char *)inner, innerlen,
                                  csr_hash)) != SCEP_OK ||
        (rc = scep_csr_without_challenge(req, &kept, &kept_len)) != SCEP_OK)
        goto fail;
    /* events carry the request without its challenge: readers of events are not its holders */
    if ((kept_b64 = b64_of(kept, kept_len)) == NULL) {
        rc = SCEP_E_NOMEM;
        goto fail;
    }

    /* A transaction we already know: answer from the store, change nothing. */
    rc = scep_store_find_request(svc->store, ep->id, m->txid, m->txid_len, &row, &stored,
                                 &stored_len);
    if (rc == SCEP_OK && renewal && row.status == SCEP_REQ_ISSUED &&
        CRYPTO_memcmp(row.csr_hash, csr_hash, 32) != 0) {
        /*
         * A renewal reusing the transactionID of the enrollment it renews
         * (certmonger and sscep derive it from the key): allowed when the
         * old transaction belongs to the key that signed this renewal.
         */
        unsigned char signer_hash[32];
        if ((rc = scep_spki_hash(X509_get_X509_PUBKEY(m->signer), signer_hash)) != SCEP_OK)
            goto fail;
        if (CRYPTO_memcmp(row.key_hash, signer_hash, 32) != 0) {
            rc = SCEP_E_TXID_KEY;
            goto fail;
        }
        if ((rc = scep_store_archive_request(svc->store, row.id)) != SCEP_OK &&
            rc != SCEP_E_CONFLICT)
            goto fail;
        rc = SCEP_E_NO_ENTRY;
    }
    if (rc == SCEP_OK) {
        replay(ep, m, &row, stored, stored_len, key_hash, csr_hash, &env, r);
        goto out;
    }
    if (rc != SCEP_E_NO_ENTRY)
        goto fail;

    if (renewal) {
        /* Authorization by the certificate being renewed; no challenge. */
        if ((rc = check_renewal(ep, &old, m->signer, req, az.sid)) != SCEP_OK)
            goto fail;
        /* the same identity: the subject as it was (checked equal above), not re-shaped */
        az.mode = "renewal";
        az.keep_subject = 1;
        snprintf(az.actor, sizeof(az.actor), "renewal:%s", old_serial);
        goto authorized;
    }
    /* Authorization: the challenge, as the endpoint's mode reads it. */
    rc = scep_csr_challenge(req, chal, sizeof(chal), &chlen);
    if (rc == SCEP_E_NO_ENTRY && ep->mode != SCEP_MODE_WEBHOOK) {
        rc = SCEP_E_CHALLENGE_MISSING;
        goto fail;
    }
    if (rc != SCEP_OK && rc != SCEP_E_NO_ENTRY)
        goto fail;
    rc = authorize(svc, ep, m, inner, innerlen, csr_b64, chal, chlen, &az, why, sizeof(why));
    /*
     * Intune hears how every request it was asked about ended: a denial too
     * gets a failureNotification (not a request it could not be asked about).
     */
    validated = ep->mode == SCEP_MODE_INTUNE && (rc == SCEP_OK || rc == SCEP_E_DENIED);
    if (rc != SCEP_OK)
        goto fail;
authorized:
    if ((rc = scep_issue_check_names(req)) != SCEP_OK)
        goto fail;

    /* An operator approves new identities; a renewal keeps an approved one. */
    if (ep->approval_manual && !renewal) {
        /* Stored durably, answered PENDING; an operator approves or rejects. */
        int64_t id = 0;
        memset(&row, 0, sizeof(row));
        row.endpoint_id = ep->id;
        memcpy(row.txid, m->txid, m->txid_len);
        row.txid_len = m->txid_len;
        memcpy(row.key_hash, key_hash, 32);
        memcpy(row.csr_hash, csr_hash, 32);
        row.msgtype = m->msgtype;
        {
            /* the authorization goes with it; its challenge or token is used up now */
            struct scep_commit_extra px;
            char *authz = scep_policy_authz_to_json(&az);
            memset(&px, 0, sizeof(px));
            px.consume_challenge = az.challenge_id;
            px.nonce = az.nonce[0] ? az.nonce : NULL;
            px.nonce_expires = az.nonce_expires;
            rc = authz == NULL
                     ? SCEP_E_NOMEM
                     : scep_store_add_pending(svc->store, &row, kept, kept_len, authz, &px, &id);
            free(authz);
        }
        if (rc == SCEP_E_CONFLICT) {
            rc = scep_store_find_request(svc->store, ep->id, m->txid, m->txid_len, &row, &stored,
                                         &stored_len);
            if (rc != SCEP_OK)
                goto fail;
            replay(ep, m, &row, stored, stored_len, key_hash, csr_hash, &env, r);
            goto out;
        }
        if (rc != SCEP_OK)
            goto fail;
        scep_log(SCEP_LOG_INFO, "issue", "pending endpoint=%s request=%lld", ep->name,
                 (long long)id);
        reply_status(ep, m, SCEP_OK, SCEP_STATUS_PENDING, r);
        goto out;
    }

    x.consume_challenge = az.challenge_id;
    x.nonce = az.nonce[0] ? az.nonce : NULL;
    x.nonce_expires = az.nonce_expires;
    x.account_id = az.account_id;
    x.device_id = az.device;
    x.event_kind = "success";
    x.event_pending = ep->notify_url[0] != '\0';
    x.audit_actor = az.actor;
    x.audit_action = renewal ? "renew" : "issue";
    x.endpoint_name = ep->name;
    for (attempt = 0; attempt < ISSUE_ATTEMPTS; attempt++) {
        const struct scep_profile_row *prof = NULL;
        struct scep_cert_row cr;
        struct scep_commit job;
        char serial[sizeof(cr.serial)];
        char *subject = NULL, *sans = NULL;

        X509_free(cert);
        cert = NULL;
        OPENSSL_free(cert_der);
        cert_der = NULL;
        if ((rc = issue_for(svc, ep, req, &az, m->txid, m->txid_len, &cert, &cert_der, &cr,
                            &subject, &sans, &prof)) != SCEP_OK)
            goto fail;
        if ((rc = duplicate_rule(svc, ep, prof, &cr, renewal, &x)) != SCEP_OK) {
            free(subject);
            free(sans);
            goto fail;
        }
        free(event);
        event = event_json(ep, &az, txid, kept_b64, cert, cr.serial, cr.sha1, SCEP_OK, NULL);
        if (event == NULL) {
            free(subject);
            free(sans);
            rc = SCEP_E_NOMEM;
            goto fail;
        }
        x.event_json = event;
        if (ep->mode == SCEP_MODE_INTUNE) {
            /*
             * Intune is told before the certificate can leave (seed 003):
             * if it does not accept the notification, nothing is returned.
             */
            char exp[40];
            iso8601((time_t)cr.not_after, exp, sizeof(exp));
            int paused = scep_gate_pause(svc->gate);
            rc = scep_intune_success(ep->intune, txid, csr_b64, cr.sha1, cr.serial, exp,
                                     ep->ca_subject, why, sizeof(why));
            scep_gate_resume(svc->gate, paused);
            if (rc != SCEP_OK) {
                free(subject);
                free(sans);
                rc = rc == SCEP_E_NOMEM ? rc : SCEP_E_NOTIFY;
                validated = 0; /* no failureNotification after a failed success one */
                goto fail;
            }
        }
        snprintf(serial, sizeof(serial), "%s", cr.serial);
        memset(&row, 0, sizeof(row));
        row.endpoint_id = ep->id;
        memcpy(row.txid, m->txid, m->txid_len);
        row.txid_len = m->txid_len;
        memcpy(row.key_hash, key_hash, 32);
        memcpy(row.csr_hash, csr_hash, 32);
        row.msgtype = m->msgtype;
        row.status = SCEP_REQ_ISSUED;
        /*
         * Queue the rows for the group commit, build the CertRep while the
         * batch is made durable, and release the reply only after that.
         */
        rc = scep_store_commit_begin(svc->store, &job, &row, kept, kept_len, &cr,
                                     renewal && ep->revoke_on_renewal ? old_serial : NULL, &x);
        if (rc == SCEP_OK) {
            int paused;
            reply_success(ep, m, cert, &env, r);
            /*
             * The CPU slot is left for the commit's wait and not taken
             * again: what remains (logging, freeing) is small, and queueing
             * behind the requests that arrived meanwhile would hold back a
             * reply that is ready.  Only a serial collision, which issues
             * again, takes one.
             */
            paused = scep_gate_pause(svc->gate);
            rc = scep_store_commit_wait(svc->store, &job);
            if (rc == SCEP_E_EXISTS)
                scep_gate_resume(svc->gate, paused);
            if (rc != SCEP_OK) {
                /* not durable: this reply must never be sent */
                free(r->owned);
                r->owned = NULL;
                r->body = NULL;
                r->body_len = 0;
                r->pki_status = "-";
                r->serial[0] = '\0';
            }
        }
        free(subject);
        free(sans);
        if (rc == SCEP_E_EXISTS)
            continue; /* serial collision: draw again */
        if (rc == SCEP_E_CONFLICT) {
            /* A concurrent duplicate of this transaction committed first. */
            free(stored);
            stored = NULL;
            rc = scep_store_find_request(svc->store, ep->id, m->txid, m->txid_len, &row, &stored,
                                         &stored_len);
            if (rc != SCEP_OK)
                goto fail;
            replay(ep, m, &row, stored, stored_len, key_hash, csr_hash, &env, r);
            goto out;
        }
        if (rc != SCEP_OK)
            goto fail;
        if (renewal)
            scep_log(SCEP_LOG_INFO, "issue", "renewed endpoint=%s serial=%s old=%s%s", ep->name,
                     serial, old_serial, ep->revoke_on_renewal ? " superseded=yes" : "");
        else
            scep_log(SCEP_LOG_INFO, "issue", "issued endpoint=%s serial=%s", ep->name, serial);
        goto out;
    }
    rc = SCEP_E_STORE;
fail:
    reply_status(ep, m, rc, SCEP_STATUS_FAILURE, r);
    refused(svc, ep, &az, txid, csr_b64, kept_b64, rc, why, validated);
out:
    free(event);
    if (csr_b64 != NULL) /* the request with its challenge (malloc'ed by b64_of) */
        OPENSSL_cleanse(csr_b64, strlen(csr_b64));
    free(csr_b64);
    free(kept_b64);
    OPENSSL_free(kept);
    free(old.der);
    OPENSSL_cleanse(chal, sizeof(chal));
    OPENSSL_clear_free(inner, innerlen);
    OPENSSL_free(cert_der);
    free(stored);
    X509_free(cert);
    X509_REQ_free(req);
    ERR_clear_error();
}

/*
 * CertPoll (RFC 8894 §3.3.3, §4.4): the transaction is identified by its
 * transactionID and the key that signed it, not by decrypting the
 * IssuerAndSubject (the RFC's own advice).  Unknown to us, or another key's
 * transaction: FAILURE badCertId.
 */
static void
certpoll(const struct scep_service *svc, const struct scep_endpoint *ep,
         const struct scep_pkimsg *m, struct scep_result *r)
{
    struct scep_request_row row;
    struct scep_envinfo env;
    unsigned char key_hash[32], *stored = NULL;
    size_t stored_len = 0;
    enum scep_err rc;

    if ((rc = scep_pkimsg_envinfo(m, &env)) != SCEP_OK ||
        (rc = scep_spki_hash(X509_get_X509_PUBKEY(m->signer), key_hash)) != SCEP_OK) {
        reply_status(ep, m, rc, SCEP_STATUS_FAILURE, r);
        return;
    }
    rc = scep_store_find_request(svc->store, ep->id, m->txid, m->txid_len, &row, &stored,
                                 &stored_len);
    if (rc == SCEP_E_NO_ENTRY ||
        (rc == SCEP_OK && CRYPTO_memcmp(row.key_hash, key_hash, 32) != 0)) {
        reply_status(ep, m, SCEP_E_UNKNOWN_TXID, SCEP_STATUS_FAILURE, r);
    } else if (rc != SCEP_OK) {
        reply_status(ep, m, rc, SCEP_STATUS_FAILURE, r);
    } else {
        answer_state(ep, m, &row, stored, stored_len, &env, r);
    }
    free(stored);
}

struct revoked_list {
    struct scep_revoked *v;
    char (*serials)[48];
    size_t n, cap;
};

static int
collect_revoked(void *arg, const char *serial, int64_t at, int reason)
{
    struct revoked_list *l = arg;

    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 64;
        struct scep_revoked *v = realloc(l->v, nc * sizeof(*v));
        char(*sv)[48];
        if (v == NULL)
            return 1;
        l->v = v;
        if ((sv = realloc(l->serials, nc * sizeof(*sv))) == NULL)
            return 1;
        l->serials = sv;
        l->cap = nc;
    }
    snprintf(l->serials[l->n], sizeof(l->serials[l->n]), "%s", serial ? serial : "");
    l->v[l->n].revoked_at = at;
    l->v[l->n].reason = reason;
    l->n++;
    return 0;
}

/* A new CRL for the CA (number one past the stored one), stored if still newest. */
static enum scep_err
make_crl(const struct scep_service *svc, int64_t ca_id)
{
    const struct ca_entry *ca = svc_ca_by_id(svc_tbl(svc), ca_id);
    struct revoked_list l;
    unsigned char *der = NULL, *old = NULL;
    size_t len = 0, oldlen = 0, i;
    int64_t number = 0, next = 0;
    time_t now = time(NULL);
    enum scep_err rc;

    if (ca == NULL)
        return SCEP_E_NO_ENTRY;
    memset(&l, 0, sizeof(l));
    rc = scep_store_get_crl(svc->store, ca_id, &number, &old, &oldlen, &next);
    free(old);
    if (rc != SCEP_OK && rc != SCEP_E_NO_ENTRY)
        return rc;
    if ((rc = scep_store_each_revoked(svc->store, ca_id, collect_revoked, &l)) != SCEP_OK)
        goto out;
    for (i = 0; i < l.n; i++)
        l.v[i].serial = l.serials[i];
    if ((rc = scep_crl_build(ca->cert, ca->key, number + 1, l.v, l.n, now, &der, &len)) != SCEP_OK)
        goto out;
    rc = scep_store_set_crl(svc->store, ca_id, number + 1, der, len,
                            (int64_t)now + SCEP_CRL_VALIDITY_SECONDS);
    if (rc == SCEP_E_CONFLICT)
        rc = SCEP_OK; /* a concurrent maker stored a newer one */
    if (rc == SCEP_OK)
        scep_log(SCEP_LOG_INFO, "crl", "made ca=%s number=%lld revoked=%zu", ca->name,
                 (long long)(number + 1), l.n);
out:
    free(der);
    free(l.v);
    free(l.serials);
    return rc;
}

enum scep_err
scep_service_crl(const struct scep_service *svc, int64_t ca_id, unsigned char **der, size_t *len)
{
    int64_t number = 0, next = 0;
    enum scep_err rc;

    rc = scep_store_get_crl(svc->store, ca_id, &number, der, len, &next);
    if (rc == SCEP_OK && (int64_t)time(NULL) < next - SCEP_CRL_REFRESH_SECONDS)
        return SCEP_OK;
    free(*der);
    *der = NULL;
    if (rc != SCEP_OK && rc != SCEP_E_NO_ENTRY)
        return rc;
    if ((rc = make_crl(svc, ca_id)) != SCEP_OK)
        return rc;
    return scep_store_get_crl(svc->store, ca_id, &number, der, len, &next);
}

int64_t
scep_service_ca_by_name(const struct scep_service *svc, const char *name, size_t len)
{
    const struct ep_table *t = svc_tbl(svc);
    size_t i;

    for (i = 0; i < t->ncas; i++)
        if (strlen(t->cas[i].name) == len && memcmp(t->cas[i].name, name, len) == 0)
            return t->cas[i].id;
    return 0;
}

enum scep_err
scep_service_revoke(const struct scep_service *svc, const char *serial, int reason)
{
    int64_t ca_id = 0;
    enum scep_err rc = scep_store_revoke(svc->store, serial, reason, &ca_id);

    if (rc != SCEP_OK)
        return rc;
    scep_log(SCEP_LOG_INFO, "crl", "revoked serial=%s reason=%s", serial,
             scep_crl_reason_name(reason));
    /* the CRL is remade now, not at its next refresh */
    return make_crl(svc, ca_id);
}

void
scep_service_maintain(const struct scep_service *svc)
{
    const struct ep_table *t = svc_tbl(svc);
    size_t i;

    /* every CA, also those rolled over: their certificates are still revocable */
    for (i = 0; i < t->ncas; i++) {
        unsigned char *der = NULL;
        size_t len = 0;
        if (scep_service_crl(svc, t->cas[i].id, &der, &len) != SCEP_OK)
            scep_log(SCEP_LOG_ERROR, "crl", "cannot refresh ca=%s", t->cas[i].name);
        free(der);
    }
    {
        /*
         * Settled events and spent challenges are kept 30 days (the audit
         * trail for ever): at ~2.5 KB an issuance, an unpruned outbox would
         * outgrow the certificates.
         */
        int64_t n = 0;
        if (scep_store_prune(svc->store, (int64_t)time(NULL), SCEP_KEEP_SETTLED_SECONDS, &n) !=
            SCEP_OK)
            scep_log(SCEP_LOG_ERROR, "store", "pruning settled events failed");
        else if (n > 0)
            scep_log(SCEP_LOG_INFO, "store", "pruned rows=%lld", (long long)n);
    }
}

/*
 * GetCert (21) and GetCRL (22): messageData is an IssuerAndSerialNumber
 * (RFC 8894 §3.3.4).  GetCRL returns the CA's current CRL to anyone;
 * GetCert returns a certificate only to its owner (the request is signed
 * with that certificate's key).  Anything else: FAILURE badCertId.
 */
static void
getcert_getcrl(const struct scep_service *svc, const struct scep_endpoint *ep,
               const struct scep_pkimsg *m, struct scep_result *r)
{
    struct scep_decrypt_key keys[2];
    size_t nkeys = 0, innerlen = 0;
    unsigned char *inner = NULL, *der = NULL;
    size_t derlen = 0;
    const unsigned char *p;
    struct scep_envinfo env;
    PKCS7_ISSUER_AND_SERIAL *ias = NULL;
    struct scep_cert_info info;
    X509 *cert = NULL;
    X509_CRL *crl = NULL;
    STACK_OF(X509) *certs = NULL;
    char serial[48];
    enum scep_err rc;

    memset(&info, 0, sizeof(info));
    nkeys = decrypt_keys(ep, keys);
    if ((rc = scep_pkimsg_decrypt(m, keys, nkeys, ep->allow_des, &inner, &innerlen, &env)) !=
        SCEP_OK)
        goto fail;
    p = inner;
    ias = d2i_PKCS7_ISSUER_AND_SERIAL(NULL, &p, (long)innerlen);
    if (ias == NULL || p != inner + innerlen) {
        rc = SCEP_E_BAD_IAS;
        goto fail;
    }
    if (X509_NAME_cmp(ias->issuer, X509_get_subject_name(ep->ca_cert)) != 0) {
        rc = SCEP_E_UNKNOWN_CERT;
        goto fail;
    }
    if (m->msgtype == SCEP_MSG_GETCRL) {
        if ((rc = scep_service_crl(svc, ep->ca_id, &der, &derlen)) != SCEP_OK)
            goto fail;
        p = der;
        if ((crl = d2i_X509_CRL(NULL, &p, (long)derlen)) == NULL) {
            rc = SCEP_E_STORE;
            goto fail;
        }
        reply_success_bundle(ep, m, NULL, crl, &env, r);
        goto out;
    }
    {
        /* serial as lower-case hex, as the store keeps it */
        const unsigned char *d = ASN1_STRING_get0_data(ias->serial);
        int n = ASN1_STRING_length(ias->serial);
        if (n <= 0 || n > 20) {
            rc = SCEP_E_UNKNOWN_CERT;
            goto fail;
        }
        scep_hex(d, (size_t)n, serial);
    }
    rc = scep_store_get_cert(svc->store, serial, &info);
    if (rc == SCEP_E_NO_ENTRY || (rc == SCEP_OK && info.ca_id != ep->ca_id)) {
        rc = SCEP_E_UNKNOWN_CERT;
        goto fail;
    }
    if (rc != SCEP_OK)
        goto fail;
    if ((cert = svc_der_to_cert(info.der, info.der_len)) == NULL) {
        rc = SCEP_E_STORE;
        goto fail;
    }
    /* to its owner only: the request is signed with the certificate's key */
    if (X509_PUBKEY_eq(X509_get_X509_PUBKEY(cert), X509_get_X509_PUBKEY(m->signer)) != 1) {
        rc = SCEP_E_UNKNOWN_CERT;
        goto fail;
    }
    if ((certs = sk_X509_new_null()) == NULL || !sk_X509_push(certs, cert) ||
        (ep->getcert_chain && !sk_X509_push(certs, ep->ca_cert))) {
        rc = SCEP_E_NOMEM;
        goto fail;
    }
    reply_success_bundle(ep, m, certs, NULL, &env, r);
    goto out;
fail:
    reply_status(ep, m, rc, SCEP_STATUS_FAILURE, r);
out:
    ERR_clear_error();
    sk_X509_free(certs);
    X509_free(cert);
    X509_CRL_free(crl);
    free(der);
    free(info.der);
    PKCS7_ISSUER_AND_SERIAL_free(ias);
    OPENSSL_clear_free(inner, innerlen);
}

void
scep_service_pkioperation(const struct scep_service *svc, const struct scep_endpoint *ep,
                          const unsigned char *der, size_t len, struct scep_result *r)
{
    struct scep_pkimsg *m = NULL;
    enum scep_err rc;

    result_init(r);
    rc = scep_pkimsg_parse(der, len, &m);
    if (rc != SCEP_OK) {
        scep_service_http_error(rc, r);
        goto out;
    }
    r->msgtype = m->msgtype;
    scep_log_escape(r->txid, sizeof(r->txid), m->txid, m->txid_len);
    /* Default deny: only what is implemented reaches authorization. */
    if (!m->econtent_is_data) {
        reply_status(ep, m, SCEP_E_ECONTENT_TYPE, SCEP_STATUS_FAILURE, r);
        goto out;
    }
    if (m->md == NULL) {
        reply_status(ep, m, SCEP_E_BAD_DIGEST, SCEP_STATUS_FAILURE, r);
        goto out;
    }
    switch (m->msgtype) {
    case SCEP_MSG_PKCSREQ:
    case SCEP_MSG_RENEWALREQ:
        pkcsreq(svc, ep, m, r);
        break;
    case SCEP_MSG_CERTPOLL:
        certpoll(svc, ep, m, r);
        break;
    case SCEP_MSG_GETCERT:
    case SCEP_MSG_GETCRL:
        getcert_getcrl(svc, ep, m, r);
        break;
    default:
        reply_status(ep, m, SCEP_E_MSGTYPE, SCEP_STATUS_FAILURE, r);
        break;
    }
out:
    scep_pkimsg_free(m);
    ERR_clear_error();
}

const struct scep_endpoint *
svc_endpoint_by_id(const struct scep_service *svc, int64_t id)
{
    size_t i;

    const struct ep_table *t = svc_tbl(svc);

    for (i = 0; i < t->neps; i++)
        if (t->eps[i].id == id)
            return &t->eps[i];
    return NULL;
}

enum scep_err
scep_service_approve(const struct scep_service *svc, int64_t req_id, char *serial_out,
                     size_t serial_len)
{
    struct scep_request_row row;
    const struct scep_endpoint *ep;
    unsigned char *csr = NULL;
    size_t csr_len = 0;
    X509_REQ *req = NULL;
    struct scep_authz az;
    enum scep_err rc;
    int attempt;

    memset(&az, 0, sizeof(az));
    if (serial_len > 0)
        serial_out[0] = '\0';
    if ((rc = scep_store_get_request(svc->store, req_id, &row, &csr, &csr_len)) != SCEP_OK)
        return rc;
    if (row.status != SCEP_REQ_PENDING) {
        rc = SCEP_E_NOT_PENDING;
        goto out;
    }
    if ((ep = svc_endpoint_by_id(svc, row.endpoint_id)) == NULL) {
        rc = SCEP_E_NO_ENTRY;
        goto out;
    }
    /* The stored CSR passed every check when it arrived; parse it again. */
    if ((rc = scep_csr_parse(csr, csr_len, &req)) != SCEP_OK)
        goto out;
    /* and what it was authorized for (requests of before schema 6 have none) */
    if (row.authz[0] != '\0' && (rc = scep_policy_authz_from_json(row.authz, &az)) != SCEP_OK) {
        scep_log(SCEP_LOG_ERROR, "issue",
                 "pending request=%lld: its stored authorization does not parse",
                 (long long)req_id);
        rc = SCEP_E_STORE;
        goto out;
    }
    {
        /* the audit trail says who approved what who had authorized */
        char actor[sizeof(az.actor)];
        snprintf(actor, sizeof(actor), "%s", az.actor);
        snprintf(az.actor, sizeof(az.actor), "approval:request:%lld%s%.100s", (long long)req_id,
                 actor[0] ? ":" : "", actor);
    }
    for (attempt = 0; attempt < ISSUE_ATTEMPTS; attempt++) {
        struct scep_cert_row cr;
        X509 *cert = NULL;
        unsigned char *der = NULL;
        char *subject = NULL, *sans = NULL;

        rc = issue_for(svc, ep, req, &az, row.txid, row.txid_len, &cert, &der, &cr, &subject, &sans,
                       NULL);
        if (rc == SCEP_OK) {
            /* the issuance's event and audit row, in its own transaction */
            struct scep_commit_extra x;
            char txid[200], *csr_b64 = b64_of(csr, csr_len), *ev;
            txid_text(row.txid, row.txid_len, txid, sizeof(txid));
            ev = event_json(ep, &az, txid, csr_b64, cert, cr.serial, cr.sha1, SCEP_OK, NULL);
            memset(&x, 0, sizeof(x));
            x.event_kind = "success";
            x.event_json = ev;
            x.event_pending = ep->notify_url[0] != '\0';
            x.audit_actor = az.actor;
            x.audit_action = "issue";
            x.endpoint_name = ep->name;
            x.account_id = az.account_id;
            x.device_id = az.device;
            rc = ev == NULL ? SCEP_E_NOMEM
                            : scep_store_complete_pending(svc->store, req_id, &cr, &x);
            free(ev);
            free(csr_b64);
        }
        if (rc == SCEP_OK) {
            snprintf(serial_out, serial_len, "%s", cr.serial);
            scep_log(SCEP_LOG_INFO, "issue", "approved endpoint=%s request=%lld serial=%s",
                     ep->name, (long long)req_id, cr.serial);
        }
        X509_free(cert);
        OPENSSL_free(der);
        free(subject);
        free(sans);
        if (rc != SCEP_E_EXISTS)
            break;
    }
    if (rc == SCEP_E_CONFLICT)
        rc = SCEP_E_NOT_PENDING; /* decided by someone else meanwhile */
out:
    X509_REQ_free(req);
    free(csr);
    return rc;
}

enum scep_err
scep_service_reject(const struct scep_service *svc, int64_t req_id, const char *reason)
{
    enum scep_err rc = scep_store_reject_pending(svc->store, req_id, reason);

    if (rc == SCEP_E_CONFLICT) {
        struct scep_request_row row;
        unsigned char *csr = NULL;
        size_t len = 0;
        rc = scep_store_get_request(svc->store, req_id, &row, &csr, &len);
        free(csr);
        if (rc == SCEP_OK)
            rc = SCEP_E_NOT_PENDING;
    }
    if (rc == SCEP_OK) {
        /* the failure event of the rejected request (the audit row is the operator's) */
        struct scep_request_row row;
        unsigned char *csr = NULL;
        size_t len = 0;
        const struct scep_endpoint *ep;
        scep_log(SCEP_LOG_INFO, "issue", "rejected request=%lld", (long long)req_id);
        if (scep_store_get_request(svc->store, req_id, &row, &csr, &len) == SCEP_OK &&
            (ep = svc_endpoint_by_id(svc, row.endpoint_id)) != NULL) {
            struct scep_authz az;
            char txid[200], *b64 = b64_of(csr, len);
            memset(&az, 0, sizeof(az));
            snprintf(az.actor, sizeof(az.actor), "approval:request:%lld", (long long)req_id);
            txid_text(row.txid, row.txid_len, txid, sizeof(txid));
            refused(svc, ep, &az, txid, NULL, b64, SCEP_E_REJECTED, reason, 0);
            free(b64);
        }
        free(csr);
    }
    return rc;
}

void
scep_service_getnextcacert(const struct scep_service *svc, const struct scep_endpoint *ep,
                           struct scep_result *r)
{
    (void)svc;
    result_init(r);
    if (ep->nextcacert_der == NULL) {
        scep_service_http_error(SCEP_E_NO_NEXT_CA, r);
        return;
    }
    r->http_status = 200;
    r->content_type = "application/x-x509-next-ca-cert";
    r->body = ep->nextcacert_der;
    r->body_len = ep->nextcacert_len;
}

/* "rsa:2048" ... for a new key of the same kind as k. */
static const char *
same_kind(EVP_PKEY *k)
{
    int bits = EVP_PKEY_get_bits(k);

    if (EVP_PKEY_get_base_id(k) == EVP_PKEY_EC)
        return bits > 256 ? "ec:p384" : "ec:p256";
    return bits >= 4096 ? "rsa:4096" : bits >= 3072 ? "rsa:3072" : "rsa:2048";
}

/* The successor's subject: the CN gets " G<gen>" (an older " G<n>" replaced). */
static X509_NAME *
successor_name(const X509_NAME *cur, int gen)
{
    X509_NAME *n = X509_NAME_dup(cur);
    int loc = n != NULL ? X509_NAME_get_index_by_NID(n, NID_commonName, -1) : -1;
    char cn[200], *g;
    X509_NAME_ENTRY *e;

    if (n == NULL)
        return NULL;
    if (loc < 0) {
        snprintf(cn, sizeof(cn), "scepd CA G%d", gen);
        if (!X509_NAME_add_entry_by_NID(n, NID_commonName, MBSTRING_UTF8, (const unsigned char *)cn,
                                        -1, -1, 0)) {
            X509_NAME_free(n);
            return NULL;
        }
        return n;
    }
    if (X509_NAME_get_text_by_NID(n, NID_commonName, cn, 160) < 0) {
        X509_NAME_free(n);
        return NULL;
    }
    if ((g = strrchr(cn, ' ')) != NULL && g[1] == 'G' &&
        strspn(g + 2, "0123456789") == strlen(g + 2))
        *g = '\0';
    snprintf(cn + strlen(cn), sizeof(cn) - strlen(cn), " G%d", gen);
    e = X509_NAME_delete_entry(n, loc);
    X509_NAME_ENTRY_free(e);
    if (!X509_NAME_add_entry_by_NID(n, NID_commonName, MBSTRING_UTF8, (const unsigned char *)cn, -1,
                                    loc, 0)) {
        X509_NAME_free(n);
        return NULL;
    }
    return n;
}

enum scep_err
svc_cert_der_of(X509 *x, unsigned char **der, size_t *len)
{
    int n;

    *der = NULL;
    n = i2d_X509(x, der);
    if (n <= 0)
        return SCEP_E_INTERNAL;
    *len = (size_t)n;
    return SCEP_OK;
}

enum scep_err
scep_service_rollover(struct scep_service *svc, const char *endpoint, int self_signed, char *errbuf,
                      size_t errlen)
{
    const struct scep_endpoint *ep;
    const struct ca_entry *cur;
    const struct ep_table *t;
    EVP_PKEY *key = NULL, *ra_key = NULL;
    X509 *ca = NULL, *ra = NULL;
    X509_NAME *name = NULL, *ra_name = NULL;
    struct scep_ca_row next;
    unsigned char *ra_der = NULL;
    size_t ra_len = 0;
    char p[PATH_MAX], f_cakey[64], f_cacrt[64], f_rakey[64], f_racrt[64], ra_dn[64];
    int64_t next_id = 0;
    int gen;
    enum scep_err rc;

    memset(&next, 0, sizeof(next));
    errbuf[0] = '\0';
    pthread_mutex_lock(&svc->reload_mu);
    t = svc_tbl(svc);
    ep = scep_service_endpoint(svc, endpoint, endpoint != NULL ? strlen(endpoint) : 0);
    if (ep == NULL) {
        snprintf(errbuf, errlen, "no endpoint %s", endpoint ? endpoint : SCEP_DEFAULT_ENDPOINT);
        rc = SCEP_E_NO_ENTRY;
        goto out;
    }
    if (ep->next_ca_cert != NULL || (cur = svc_ca_by_id(t, ep->ca_id)) == NULL ||
        cur->next_id != 0) {
        snprintf(errbuf, errlen, "a rollover is already prepared for %s; switch to it first",
                 ep->name);
        rc = SCEP_E_CONFLICT;
        goto out;
    }
    gen = (int)t->ncas + 1;
    snprintf(f_cakey, sizeof(f_cakey), "ca-g%d.key", gen);
    snprintf(f_cacrt, sizeof(f_cacrt), "ca-g%d.crt", gen);
    snprintf(f_rakey, sizeof(f_rakey), "ra-g%d.key", gen);
    snprintf(f_racrt, sizeof(f_racrt), "ra-g%d.crt", gen);
    snprintf(ra_dn, sizeof(ra_dn), "CN=scepd RA G%d,O=scepd", gen);
    rc = SCEP_E_INTERNAL;
    if ((rc = scep_pki_genkey(same_kind(cur->key), &key)) != SCEP_OK ||
        (name = successor_name(X509_get_subject_name(cur->cert), gen)) == NULL ||
        (rc = self_signed ? scep_pki_make_root(key, name, 3650, &ca)
                          : scep_pki_make_ca_signed(key, name, cur->cert, cur->key, 3650, &ca)) !=
            SCEP_OK ||
        (rc = scep_pki_genkey("rsa:2048", &ra_key)) != SCEP_OK ||
        (rc = scep_pki_parse_dn(ra_dn, &ra_name)) != SCEP_OK ||
        (rc = scep_pki_make_ra(ra_key, ra_name, ca, key, 1825, &ra)) != SCEP_OK) {
        rc = rc == SCEP_OK ? SCEP_E_INTERNAL : rc;
        snprintf(errbuf, errlen, "cannot make the next CA: %s", scep_strerror(rc));
        goto out;
    }
    /* key and certificate files first (O_EXCL, 0600), the database last */
    if ((rc = scep_path(p, sizeof(p), svc->datadir, f_cakey)) != SCEP_OK ||
        (rc = scep_pki_write_key(p, key)) != SCEP_OK ||
        (rc = scep_path(p, sizeof(p), svc->datadir, f_cacrt)) != SCEP_OK ||
        (rc = scep_pki_write_cert(p, ca)) != SCEP_OK ||
        (rc = scep_path(p, sizeof(p), svc->datadir, f_rakey)) != SCEP_OK ||
        (rc = scep_pki_write_key(p, ra_key)) != SCEP_OK ||
        (rc = scep_path(p, sizeof(p), svc->datadir, f_racrt)) != SCEP_OK ||
        (rc = scep_pki_write_cert(p, ra)) != SCEP_OK) {
        snprintf(errbuf, errlen, "cannot write %s: %s", p, scep_strerror(rc));
        goto out;
    }
    {
        /* "default" -> "default-g2"; "default-g2" -> "default-g3" */
        char base[SCEP_NAME_MAX], *dash;
        snprintf(base, sizeof(base), "%s", cur->name);
        if ((dash = strrchr(base, '-')) != NULL && dash[1] == 'g' && dash[2] != '\0' &&
            strspn(dash + 2, "0123456789") == strlen(dash + 2))
            *dash = '\0';
        if (strlen(base) > sizeof(next.name) - 16)
            base[sizeof(next.name) - 16] = '\0';
        snprintf(next.name, sizeof(next.name), "%.40s-g%d", base, gen);
    }
    snprintf(next.key_ref, sizeof(next.key_ref), "%s", f_cakey);
    if ((rc = svc_cert_der_of(ca, &next.cert_der, &next.cert_len)) != SCEP_OK ||
        (rc = svc_cert_der_of(ra, &ra_der, &ra_len)) != SCEP_OK)
        goto out;
    rc = scep_store_prepare_rollover(svc->store, ep->id, cur->id, &next, ra_der, ra_len, f_rakey,
                                     &next_id);
    if (rc != SCEP_OK) {
        snprintf(errbuf, errlen, "cannot record the next CA: %s", scep_strerror(rc));
        goto out;
    }
    scep_log(SCEP_LOG_INFO, "ca", "rollover prepared endpoint=%s next_ca=%s signed_by=%s", ep->name,
             next.name, self_signed ? "itself" : cur->name);
    rc = svc_reload(svc, errbuf, errlen);
out:
    pthread_mutex_unlock(&svc->reload_mu);
    OPENSSL_free(next.cert_der);
    OPENSSL_free(ra_der);
    X509_NAME_free(name);
    X509_NAME_free(ra_name);
    X509_free(ca);
    X509_free(ra);
    EVP_PKEY_free(key);
    EVP_PKEY_free(ra_key);
    return rc;
}

enum scep_err
scep_service_switch_ca(struct scep_service *svc, const char *endpoint, char *errbuf, size_t errlen)
{
    const struct scep_endpoint *ep;
    enum scep_err rc;

    errbuf[0] = '\0';
    pthread_mutex_lock(&svc->reload_mu);
    ep = scep_service_endpoint(svc, endpoint, endpoint != NULL ? strlen(endpoint) : 0);
    if (ep == NULL) {
        snprintf(errbuf, errlen, "no endpoint %s", endpoint ? endpoint : SCEP_DEFAULT_ENDPOINT);
        rc = SCEP_E_NO_ENTRY;
    } else if ((rc = scep_store_switch_ca(svc->store, ep->id)) != SCEP_OK) {
        snprintf(errbuf, errlen, "%s",
                 rc == SCEP_E_NO_ENTRY ? "no rollover is prepared; run ca rollover first"
                                       : scep_strerror(rc));
    } else {
        scep_log(SCEP_LOG_INFO, "ca", "switched endpoint=%s to its next CA", ep->name);
        rc = svc_reload(svc, errbuf, errlen);
    }
    pthread_mutex_unlock(&svc->reload_mu);
    return rc;
}

enum scep_err
scep_service_each_ca(const struct scep_service *svc, scep_service_ca_cb cb, void *arg)
{
    const struct ep_table *t = svc_tbl(svc);
    size_t i, j;

    for (i = 0; i < t->ncas; i++) {
        const char *used_by = NULL;
        for (j = 0; j < t->neps; j++)
            if (t->eps[j].ca_id == t->cas[i].id)
                used_by = t->eps[j].name;
        if (cb(arg, t->cas[i].id, t->cas[i].name, t->cas[i].cert, t->cas[i].next_id, used_by))
            return SCEP_E_INTERNAL;
    }
    return SCEP_OK;
}

enum scep_err
scep_service_add_profile(struct scep_service *svc, const struct scep_profile_row *p, char *errbuf,
                         size_t errlen)
{
    X509_EXTENSION *ext;
    int64_t id = 0;
    enum scep_err rc;

    errbuf[0] = '\0';
    if (p->name[0] == '\0' || p->validity_days < 1 || p->validity_days > 3650) {
        snprintf(errbuf, errlen, "a profile needs a name and a validity of 1 to 3650 days");
        return SCEP_E_INVALID_ARG;
    }
    ext = X509V3_EXT_conf_nid(NULL, NULL, NID_ext_key_usage, p->eku);
    X509_EXTENSION_free(ext);
    ERR_clear_error();
    if (ext == NULL) {
        snprintf(errbuf, errlen,
                 "eku %s: give a comma-separated list such as clientAuth,serverAuth or OIDs",
                 p->eku);
        return SCEP_E_INVALID_ARG;
    }
    pthread_mutex_lock(&svc->reload_mu);
    rc = scep_store_add_profile(svc->store, p, &id);
    if (rc == SCEP_E_CONFLICT)
        snprintf(errbuf, errlen, "a profile with this name or template exists");
    else if (rc == SCEP_OK)
        rc = svc_reload(svc, errbuf, errlen);
    pthread_mutex_unlock(&svc->reload_mu);
    if (rc == SCEP_OK)
        scep_log(SCEP_LOG_INFO, "service", "profile added name=%s", p->name);
    return rc;
}

enum scep_err
scep_service_each_profile(const struct scep_service *svc, scep_profile_cb cb, void *arg)
{
    const struct ep_table *t = svc_tbl(svc);
    size_t i;

    for (i = 0; i < t->nprofiles; i++)
        if (cb(arg, &t->profiles[i]))
            return SCEP_E_INTERNAL;
    return SCEP_OK;
}
