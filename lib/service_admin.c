/*
 * service_admin.c - administrative changes of a running service (service.h,
 * "administration of endpoints, accounts, challenges"): endpoints with their
 * CA, RA, challenge mode and secrets; accounts; one-time challenges; signed
 * tokens; profiles; the audit trail; and the delivery of the event outbox.
 *
 * Trusts its caller (the admin API, scepctl) to have authenticated the
 * operator, and nothing in the values given: every field is checked here,
 * and a refusal names the field and the fix.  Must never store a secret in
 * the database in clear, log one, or hand back one it did not make: secrets
 * go to DIR/secrets/<endpoint>.<kind> (0600, replaced atomically) or are
 * stored as keyed hashes.  Changes of endpoints and profiles are made under
 * reload_mu and published with svc_reload, so a request sees the old table
 * or the new one, never half of a change.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include <jansson.h>

#include "scepd/buf.h"
#include "scepd/challenge.h"
#include "scepd/csr.h"
#include "scepd/intune.h"
#include "scepd/log.h"
#include "scepd/pki.h"
#include "scepd/policy.h"
#include "scepd/service.h"
#include "scepd/setup.h"
#include "scepd/store.h"
#include "scepd/token.h"
#include "scepd/webhook.h"
#include "service_int.h"

#define KEY_LEN 32             /* token, webhook and notify keys */
#define ACCOUNT_CODE_LEN 24    /* generated access codes */
#define OTC_LEN 32             /* one-time challenges */
#define MIN_TTL 60             /* one-time challenges and tokens, seconds */
#define MAX_TTL (30 * 86400)   /* as load_mode accepts challenge_ttl */
#define EVENT_MAX_ATTEMPTS 12  /* then the event is dead */
#define EVENT_BACKOFF_FIRST 30 /* seconds, doubling */
#define EVENT_BACKOFF_MAX 3600 /* seconds */
#define EVENT_TIMEOUT_MS 5000  /* one delivery */
#define EVENT_BATCH_MAX 1000   /* deliver_events limit ceiling */

/* A value given by an operator, made safe to echo in a message (control characters escaped). */
static const char *
esc(const char *s, char *buf, size_t len)
{
    size_t i, o = 0;

    /* for messages to people: printable text as is, anything else as \xNN */
    for (i = 0; s[i] != '\0' && o + 5 < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != 0x7f)
            buf[o++] = (char)c;
        else
            o += (size_t)snprintf(buf + o, len - o, "\\x%02x", c);
    }
    buf[o] = '\0';
    return buf;
}

static int
given(const char *s)
{
    return s != NULL && s[0] != '\0';
}

static const char *
or_empty(const char *s)
{
    return s != NULL ? s : "";
}

/* At most max bytes and no control characters (UTF-8 allowed). */
static int
text_ok(const char *s, size_t max)
{
    if (strlen(s) > max)
        return 0;
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 0;
    return 1;
}

/* Printable ASCII, spaces allowed or not, at most max bytes. */
static int
ascii_ok(const char *s, size_t max, int space)
{
    if (strlen(s) > max)
        return 0;
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < (space ? 0x20 : 0x21) || (unsigned char)*s > 0x7e)
            return 0;
    return 1;
}

/* The URL segment of an endpoint: [a-z0-9._-], 1..63, starting with a letter or digit. */
static int
endpoint_name_ok(const char *s)
{
    size_t n = strlen(s);

    if (n < 1 || n > 63 || strcmp(s, "crl") == 0)
        return 0;
    if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9')))
        return 0;
    return strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

static int
account_name_ok(const char *s)
{
    size_t n = strlen(s);

    return n >= 1 && n <= 63 &&
           strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._@-") == n;
}

/* http:// or https:// with something after it; no spaces, quotes or control characters. */
static int
url_ok(const char *s, size_t cap)
{
    size_t pre;

    if (strncmp(s, "http://", 7) == 0)
        pre = 7;
    else if (strncmp(s, "https://", 8) == 0)
        pre = 8;
    else
        return 0;
    return s[pre] != '\0' && strlen(s) < cap && ascii_ok(s, cap, 0) &&
           strpbrk(s, "\"'<>\\") == NULL;
}

/* ---- secrets: DIR/secrets/<endpoint>.<kind> ---- */

/*
 * Replace a secret atomically: a temporary file (0600) in the same
 * directory, fsync, rename.  A reader sees the old secret or the new one.
 * DIR/secrets is created (0700) when missing.
 */
static enum scep_err
secret_write(const struct scep_service *svc, const char *endpoint, const char *kind, const void *p,
             size_t len)
{
    char dir[PATH_MAX], path[PATH_MAX], tmp[PATH_MAX + 16];
    const unsigned char *b = p;
    size_t off = 0;
    int fd, dfd;
    enum scep_err rc;

    if ((rc = scep_path(dir, sizeof(dir), svc->datadir, SCEP_SECRETS_DIR)) != SCEP_OK)
        return rc;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return SCEP_E_IO;
    if ((rc = svc_secret_path(svc, endpoint, kind, path, sizeof(path))) != SCEP_OK)
        return rc;
    if (snprintf(tmp, sizeof(tmp), "%s.tmp-XXXXXX", path) >= (int)sizeof(tmp))
        return SCEP_E_TOO_LARGE;
    if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0)
        return SCEP_E_IO;
    if (fchmod(fd, 0600) != 0)
        goto fail;
    while (off < len) {
        ssize_t w = write(fd, b + off, len - off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            goto fail;
        }
        off += (size_t)w;
    }
    if (fsync(fd) != 0)
        goto fail;
    if (close(fd) != 0) {
        fd = -1;
        goto fail;
    }
    fd = -1;
    if (rename(tmp, path) != 0)
        goto fail;
    /* the rename itself survives a crash once the directory is synced */
    if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
    return SCEP_OK;
fail:
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    return SCEP_E_IO;
}

static void
secret_remove(const struct scep_service *svc, const char *endpoint, const char *kind)
{
    char path[PATH_MAX];

    if (svc_secret_path(svc, endpoint, kind, path, sizeof(path)) == SCEP_OK && unlink(path) != 0 &&
        errno != ENOENT)
        scep_log(SCEP_LOG_WARN, "admin", "cannot remove an unused secret path=%s errno=%d", path,
                 errno);
}

static int
secret_exists(const struct scep_service *svc, const char *endpoint, const char *kind)
{
    char path[PATH_MAX];

    return svc_secret_path(svc, endpoint, kind, path, sizeof(path)) == SCEP_OK &&
           access(path, F_OK) == 0;
}

/* A new 32-byte key in DIR/secrets/<endpoint>.<kind>; hex receives it for the operator. */
static enum scep_err
secret_new_key(const struct scep_service *svc, const char *endpoint, const char *kind,
               char hex[2 * KEY_LEN + 1])
{
    unsigned char key[KEY_LEN];
    enum scep_err rc = SCEP_E_INTERNAL;

    if (RAND_bytes(key, sizeof(key)) == 1 &&
        (rc = secret_write(svc, endpoint, kind, key, sizeof(key))) == SCEP_OK)
        scep_hex(key, sizeof(key), hex);
    OPENSSL_cleanse(key, sizeof(key));
    return rc;
}

/* ---- lookups ---- */

struct find_ctx {
    const char *name;
    struct scep_endpoint_row *out;
    int found;
};

static int
find_cb(void *arg, const struct scep_endpoint_row *row)
{
    struct find_ctx *c = arg;

    if (strcmp(row->name, c->name) != 0)
        return 0;
    *c->out = *row;
    /* the certificates are the store's (freed after the call) and not needed here */
    c->out->ra_cert_der = NULL;
    c->out->ra_cert_len = 0;
    c->out->next_ra_cert_der = NULL;
    c->out->next_ra_cert_len = 0;
    c->found = 1;
    return 1;
}

/* The stored row of endpoint name (without its certificates).  SCEP_E_NO_ENTRY when none. */
static enum scep_err
find_row(const struct scep_service *svc, const char *name, struct scep_endpoint_row *out)
{
    struct find_ctx c = {name, out, 0};
    enum scep_err rc;

    memset(out, 0, sizeof(*out));
    rc = scep_store_each_endpoint(svc->store, find_cb, &c);
    if (c.found)
        return SCEP_OK;
    return rc == SCEP_OK ? SCEP_E_NO_ENTRY : rc;
}

static const struct ca_entry *
ca_by_name(const struct ep_table *t, const char *name)
{
    size_t i;

    for (i = 0; i < t->ncas; i++)
        if (strcmp(t->cas[i].name, name) == 0)
            return &t->cas[i];
    return NULL;
}

static const struct scep_profile_row *
profile_by_name(const struct ep_table *t, const char *name)
{
    size_t i;

    for (i = 0; i < t->nprofiles; i++)
        if (strcmp(t->profiles[i].name, name) == 0)
            return &t->profiles[i];
    return NULL;
}

static const char *
profile_name(const struct ep_table *t, int64_t id)
{
    size_t i;

    for (i = 0; id > 0 && i < t->nprofiles; i++)
        if (t->profiles[i].id == id)
            return t->profiles[i].name;
    return "";
}

static const char *
endpoint_name_of(const struct scep_service *svc, int64_t id)
{
    const struct scep_endpoint *ep = svc_endpoint_by_id(svc, id);

    return ep != NULL ? ep->name : "";
}

/* A loaded endpoint by name (NULL or "": the default) for the account/challenge functions. */
static const struct scep_endpoint *
ep_lookup(const struct scep_service *svc, const char *name, char *errbuf, size_t errlen)
{
    const struct scep_endpoint *ep =
        scep_service_endpoint(svc, name, name != NULL ? strlen(name) : 0);
    char e[80];

    if (ep == NULL)
        scep_errbuf(errbuf, errlen, "no endpoint %s; list them with scepctl endpoints list",
                    esc(or_empty(name), e, sizeof(e)));
    return ep;
}

static void
audit(const struct scep_service *svc, const char *actor, const char *action, const char *object,
      const char *endpoint, const char *detail)
{
    enum scep_err rc = scep_store_audit(svc->store, actor != NULL ? actor : "", action, object,
                                        endpoint, "ok", detail);

    if (rc != SCEP_OK)
        scep_log(SCEP_LOG_ERROR, "admin", "audit row not written action=%s object=%s err=%s",
                 action, object, scep_errname(rc));
}

/* ---- endpoints ---- */

void
scep_endpoint_spec_init(struct scep_endpoint_spec *s)
{
    memset(s, 0, sizeof(*s));
    s->validity_days = -1;
    s->enabled = -1;
    s->webhook_timeout_ms = -1;
    s->max_outstanding = -1;
    s->challenge_ttl = -1;
}

/* Every string of the spec is terminated (it may come from a decoder that filled it to the end). */
static int
spec_terminated(const struct scep_endpoint_spec *s)
{
#define T(f) (memchr(s->f, '\0', sizeof(s->f)) != NULL)
    return T(name) && T(ca) && T(new_ca_subject) && T(new_ca_key) && T(profile) &&
           T(organization) && T(department) && T(getcacert_format) && T(getcert_format) &&
           T(mode) && T(challenge) && T(approval) && T(webhook_url) && T(webhook_bearer) &&
           T(intune_tenant) && T(intune_app_id) && T(intune_app_key) && T(intune_provider) &&
           T(intune_proxy) && T(intune_login_url) && T(intune_graph_url) &&
           T(intune_resource_url) && T(notify_url);
#undef T
}

/* What an add or update must do besides the row: the secrets to (re)make. */
struct plan {
    enum scep_mode mode;
    int old_mode;          /* -1 when adding */
    int gen_challenge;     /* static: generate the challenge */
    const char *challenge; /* static: the one given */
    int new_token, new_webhook, new_notify;
    int write_bearer, drop_bearer, write_intune;
};

static enum scep_err
bad(char *errbuf, size_t errlen, const char *field, const char *value, const char *fix)
{
    char e[160];

    scep_errbuf(errbuf, errlen, "%s %s: %s", field, esc(value, e, sizeof(e)), fix);
    return SCEP_E_INVALID_ARG;
}

static enum scep_err
bad_int(char *errbuf, size_t errlen, const char *field, long long value, const char *fix)
{
    scep_errbuf(errbuf, errlen, "%s %lld: %s", field, value, fix);
    return SCEP_E_INVALID_ARG;
}

/* The Intune settings given: checked one by one and written into it ("intune" of mode_config). */
static enum scep_err
apply_intune(const struct scep_endpoint_spec *s, json_t *it, char *errbuf, size_t errlen)
{
    static const char tenant_chars[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-";
    const struct {
        const char *value, *key, *field;
        int url;
    } f[] = {
        {s->intune_tenant, "tenant", "--intune-tenant", 0},
        {s->intune_app_id, "app_id", "--intune-app-id", 0},
        {s->intune_provider, "provider", "--intune-provider", 0},
        {s->intune_proxy, "proxy", "--intune-proxy", 1},
        {s->intune_login_url, "login_url", "--intune-login-url", 1},
        {s->intune_graph_url, "graph_url", "--intune-graph-url", 1},
        {s->intune_resource_url, "resource_url", "--intune-resource-url", 1},
    };
    size_t i;

    if (given(s->intune_tenant) &&
        strspn(s->intune_tenant, tenant_chars) != strlen(s->intune_tenant))
        return bad(errbuf, errlen, "--intune-tenant", s->intune_tenant,
                   "give the tenant domain (contoso.onmicrosoft.com) or its GUID");
    if (given(s->intune_app_id) && !ascii_ok(s->intune_app_id, 127, 0))
        return bad(errbuf, errlen, "--intune-app-id", s->intune_app_id,
                   "give the application (client) id of the Azure app registration");
    if (given(s->intune_provider) && !ascii_ok(s->intune_provider, 127, 1))
        return bad(errbuf, errlen, "--intune-provider", s->intune_provider,
                   "printable ASCII, at most 127 characters, e.g. scepd/1.0");
    for (i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
        if (!given(f[i].value))
            continue;
        if (f[i].url && !url_ok(f[i].value, 256))
            return bad(errbuf, errlen, f[i].field, f[i].value,
                       "give an http:// or https:// URL of at most 255 characters");
        json_object_set_new(it, f[i].key, json_string(f[i].value));
    }
    return SCEP_OK;
}

/*
 * Is the Intune configuration in it (with the key given or already on
 * disk) one the client accepts?  Checked before anything is stored: an
 * endpoint that does not load would stop the service from reloading.
 */
static enum scep_err
check_intune(const struct scep_service *svc, const char *name, json_t *it, const char *key_given,
             char *errbuf, size_t errlen)
{
    struct scep_intune_cfg ic;
    struct scep_intune *in = NULL;
    size_t n = 0;
    json_t *v;
    enum scep_err rc;
    const struct {
        const char *key;
        char *dst;
        size_t len;
    } f[] = {
        {"tenant", ic.tenant, sizeof(ic.tenant)},
        {"app_id", ic.app_id, sizeof(ic.app_id)},
        {"provider", ic.provider, sizeof(ic.provider)},
        {"proxy", ic.proxy, sizeof(ic.proxy)},
        {"login_url", ic.login_url, sizeof(ic.login_url)},
        {"graph_url", ic.graph_url, sizeof(ic.graph_url)},
        {"resource_url", ic.resource_url, sizeof(ic.resource_url)},
        {"ca_file", ic.ca_file, sizeof(ic.ca_file)},
    };
    size_t i;

    memset(&ic, 0, sizeof(ic));
    for (i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
        v = json_object_get(it, f[i].key);
        snprintf(f[i].dst, f[i].len, "%s", json_is_string(v) ? json_string_value(v) : "");
    }
    v = json_object_get(it, "timeout_ms");
    ic.timeout_ms = json_is_integer(v) ? (long)json_integer_value(v) : 0;
    if (given(key_given)) {
        snprintf(ic.app_key, sizeof(ic.app_key), "%s", key_given);
        rc = SCEP_OK;
    } else {
        rc = svc_secret_read(svc, name, "intune", (unsigned char *)ic.app_key,
                             sizeof(ic.app_key) - 1, &n);
        ic.app_key[n] = '\0';
    }
    if (ic.tenant[0] == '\0' || ic.app_id[0] == '\0' || rc != SCEP_OK || ic.app_key[0] == '\0') {
        scep_errbuf(errbuf, errlen,
                    "endpoint %s: mode intune needs --intune-tenant, --intune-app-id and "
                    "--intune-app-key (the application secret; kept in %s/%s.intune)",
                    name, SCEP_SECRETS_DIR, name);
        rc = SCEP_E_INVALID_ARG;
        goto out;
    }
    if ((rc = scep_intune_new(&ic, &in)) != SCEP_OK) {
        scep_errbuf(errbuf, errlen,
                    "endpoint %s: the Intune settings are not usable (%s); check the tenant and "
                    "the URLs",
                    name, scep_strerror(rc));
        rc = SCEP_E_INVALID_ARG;
        goto out;
    }
    rc = SCEP_OK;
out:
    scep_intune_free(in);
    OPENSSL_cleanse(&ic, sizeof(ic));
    return rc;
}

/*
 * Apply the given fields of s to row and cfg (its mode_config), checking
 * each, and decide which secrets to make (pl).  row holds the defaults
 * (add) or the stored endpoint (update).  Nothing is written here.
 */
static enum scep_err
apply_spec(const struct scep_service *svc, const struct scep_endpoint_spec *s, int adding,
           struct scep_endpoint_row *row, json_t *cfg, struct plan *pl, char *errbuf, size_t errlen)
{
    const struct ep_table *t = svc_tbl(svc);
    const char *name = row->name;
    int mode, changed;
    enum scep_err rc;
    json_t *it;

    memset(pl, 0, sizeof(*pl));
    pl->old_mode = adding ? -1 : scep_mode_parse(row->challenge_mode);
    if (!adding && (given(s->organization) || given(s->department))) {
        scep_errbuf(errbuf, errlen,
                    "endpoint %s: organization and department are fixed once created (they are "
                    "in every certificate it issued); add a new endpoint for another O or OU",
                    name);
        return SCEP_E_INVALID_ARG;
    }
    if (adding) {
        if (!text_ok(s->organization, sizeof(row->organization) - 1))
            return bad(errbuf, errlen, "--org", s->organization,
                       "at most 127 characters, no control characters");
        if (!text_ok(s->department, sizeof(row->department) - 1))
            return bad(errbuf, errlen, "--department", s->department,
                       "at most 127 characters, no control characters");
        snprintf(row->organization, sizeof(row->organization), "%s", s->organization);
        snprintf(row->department, sizeof(row->department), "%s", s->department);
    }
    if (s->validity_days != -1) {
        if (s->validity_days < 1 || s->validity_days > 36500)
            return bad_int(errbuf, errlen, "--validity", s->validity_days, "use 1 to 36500 days");
        row->validity_days = s->validity_days;
    }
    if (given(s->getcacert_format)) {
        if (strcmp(s->getcacert_format, "chain") != 0 && strcmp(s->getcacert_format, "single") != 0)
            return bad(errbuf, errlen, "--getcacert", s->getcacert_format, "use chain or single");
        snprintf(row->getcacert_format, sizeof(row->getcacert_format), "%s", s->getcacert_format);
    }
    if (given(s->getcert_format)) {
        if (strcmp(s->getcert_format, "chain") != 0 && strcmp(s->getcert_format, "single") != 0)
            return bad(errbuf, errlen, "--getcert", s->getcert_format, "use single or chain");
        row->getcert_chain = strcmp(s->getcert_format, "chain") == 0;
    }
    if (given(s->approval)) {
        if (strcmp(s->approval, "auto") != 0 && strcmp(s->approval, "manual") != 0)
            return bad(errbuf, errlen, "--approval", s->approval, "use auto or manual");
        row->approval_manual = strcmp(s->approval, "manual") == 0;
    }
    if (s->enabled != -1) {
        if (s->enabled != 0 && s->enabled != 1)
            return bad_int(errbuf, errlen, "--enabled", s->enabled, "use 0 or 1");
        row->enabled = s->enabled;
    }
    if (given(s->profile)) {
        const struct scep_profile_row *p;
        if (strcmp(s->profile, "-") == 0)
            row->profile_id = 0;
        else if ((p = profile_by_name(t, s->profile)) == NULL)
            return bad(errbuf, errlen, "--profile", s->profile,
                       "no such profile; list them with scepctl profiles list, or give - for none");
        else
            row->profile_id = p->id;
    }
    if (given(s->notify_url)) {
        if (strcmp(s->notify_url, "-") == 0)
            row->notify_url[0] = '\0';
        else if (!url_ok(s->notify_url, sizeof(row->notify_url)))
            return bad(errbuf, errlen, "--notify-url", s->notify_url,
                       "give an http:// or https:// URL (511 characters at most), or - for none");
        else
            snprintf(row->notify_url, sizeof(row->notify_url), "%s", s->notify_url);
    }
    if (s->max_outstanding != -1) {
        if (s->max_outstanding < 1 || s->max_outstanding > 1000000)
            return bad_int(errbuf, errlen, "--max-outstanding", s->max_outstanding,
                           "use 1 to 1000000 open one-time challenges");
        row->max_outstanding = s->max_outstanding;
    }
    if (s->challenge_ttl != -1) {
        if (s->challenge_ttl < MIN_TTL || s->challenge_ttl > MAX_TTL)
            return bad_int(errbuf, errlen, "--challenge-ttl", s->challenge_ttl,
                           "use 60 to 2592000 seconds (30 days)");
        json_object_set_new(cfg, "challenge_ttl", json_integer(s->challenge_ttl));
    }

    /* the challenge mode and its settings */
    if (given(s->mode)) {
        if ((mode = scep_mode_parse(s->mode)) < 0)
            return bad(errbuf, errlen, "--mode", s->mode,
                       "use static, account, one-time, signed, webhook or intune");
    } else {
        mode = pl->old_mode >= 0 ? pl->old_mode : SCEP_MODE_STATIC;
    }
    pl->mode = (enum scep_mode)mode;
    changed = mode != pl->old_mode;
    snprintf(row->challenge_mode, sizeof(row->challenge_mode), "%s", scep_mode_name(pl->mode));
    if (row->approval_manual && mode == SCEP_MODE_INTUNE) {
        scep_errbuf(errbuf, errlen,
                    "endpoint %s: --approval manual does not go with mode intune: Intune must "
                    "be told of the certificate before it is returned, which an approval hours "
                    "later cannot do; use --approval auto",
                    name);
        return SCEP_E_INVALID_ARG;
    }

    if (given(s->challenge)) {
        if (mode != SCEP_MODE_STATIC)
            goto not_of_mode;
        if (strlen(s->challenge) < 8 || !text_ok(s->challenge, 255)) {
            scep_errbuf(errbuf, errlen,
                        "--challenge: use 8 to 255 characters, no control characters");
            return SCEP_E_INVALID_ARG;
        }
        pl->challenge = s->challenge;
    } else if (mode == SCEP_MODE_STATIC && (changed || !row->has_challenge_hash)) {
        pl->gen_challenge = 1;
    }
    if (mode != SCEP_MODE_STATIC) {
        /* no shared challenge outside static mode: none left to guess */
        row->has_challenge_hash = 0;
        OPENSSL_cleanse(row->challenge_hash, sizeof(row->challenge_hash));
    }

    if (s->webhook_timeout_ms != -1 &&
        (s->webhook_timeout_ms < 100 || s->webhook_timeout_ms > 120000))
        return bad_int(errbuf, errlen, "--webhook-timeout", s->webhook_timeout_ms,
                       "use 100 to 120000 milliseconds");
    if (mode == SCEP_MODE_WEBHOOK) {
        json_t *v;
        if (given(s->webhook_url)) {
            if (!url_ok(s->webhook_url, sizeof(s->webhook_url)))
                return bad(errbuf, errlen, "--webhook-url", s->webhook_url,
                           "give the http:// or https:// URL of the validation service");
            json_object_set_new(cfg, "webhook_url", json_string(s->webhook_url));
        }
        if (s->webhook_timeout_ms != -1)
            json_object_set_new(cfg, "webhook_timeout_ms", json_integer(s->webhook_timeout_ms));
        v = json_object_get(cfg, "webhook_url");
        if (!json_is_string(v) || json_string_value(v)[0] == '\0') {
            scep_errbuf(errbuf, errlen,
                        "endpoint %s: mode webhook needs --webhook-url (http:// or https://)",
                        name);
            return SCEP_E_INVALID_ARG;
        }
        if (given(s->webhook_bearer)) {
            if (strcmp(s->webhook_bearer, "-") == 0)
                pl->drop_bearer = 1;
            else if (!ascii_ok(s->webhook_bearer, sizeof(s->webhook_bearer) - 1, 0)) {
                scep_errbuf(errbuf, errlen,
                            "--webhook-bearer: printable ASCII without spaces, at most 255 "
                            "characters (or - for none)");
                return SCEP_E_INVALID_ARG;
            } else
                pl->write_bearer = 1;
        }
        pl->new_webhook = changed || s->rotate_key || !secret_exists(svc, name, "webhook");
    } else {
        if (given(s->webhook_url) || given(s->webhook_bearer) ||
            (s->webhook_timeout_ms != -1 && mode != SCEP_MODE_INTUNE))
            goto not_of_mode;
        json_object_del(cfg, "webhook_url");
        json_object_del(cfg, "webhook_timeout_ms");
    }

    if (mode == SCEP_MODE_INTUNE) {
        it = json_object_get(cfg, "intune");
        if (!json_is_object(it)) {
            it = json_object();
            json_object_set_new(cfg, "intune", it);
        }
        if ((rc = apply_intune(s, it, errbuf, errlen)) != SCEP_OK)
            return rc;
        /* the one outbound timeout of the spec: per Intune request in this mode */
        if (s->webhook_timeout_ms != -1)
            json_object_set_new(it, "timeout_ms", json_integer(s->webhook_timeout_ms));
        if (given(s->intune_app_key)) {
            if (!text_ok(s->intune_app_key, sizeof(s->intune_app_key) - 1)) {
                scep_errbuf(errbuf, errlen, "--intune-app-key: no control characters");
                return SCEP_E_INVALID_ARG;
            }
            pl->write_intune = 1;
        }
        if ((rc = check_intune(svc, name, it, s->intune_app_key, errbuf, errlen)) != SCEP_OK)
            return rc;
    } else {
        if (given(s->intune_tenant) || given(s->intune_app_id) || given(s->intune_app_key) ||
            given(s->intune_provider) || given(s->intune_proxy) || given(s->intune_login_url) ||
            given(s->intune_graph_url) || given(s->intune_resource_url))
            goto not_of_mode;
        json_object_del(cfg, "intune");
    }

    if (mode == SCEP_MODE_SIGNED)
        pl->new_token = changed || s->rotate_key || !secret_exists(svc, name, "token");
    if (row->notify_url[0] != '\0')
        pl->new_notify = adding || s->rotate_key || !secret_exists(svc, name, "notify");
    if (s->rotate_key && !adding && mode != SCEP_MODE_SIGNED && mode != SCEP_MODE_WEBHOOK &&
        row->notify_url[0] == '\0') {
        scep_errbuf(
            errbuf, errlen,
            "endpoint %s: --rotate-key: mode %s has no key and no notify URL is set; nothing "
            "to rotate (a static challenge is changed with --challenge)",
            name, scep_mode_name(pl->mode));
        return SCEP_E_INVALID_ARG;
    }
    return SCEP_OK;
not_of_mode:
    scep_errbuf(
        errbuf, errlen,
        "endpoint %s has mode %s: --challenge belongs to mode static, --webhook-url, "
        "--webhook-bearer and --webhook-timeout to mode webhook, --intune-* to mode intune; "
        "give --mode with them or leave them out",
        name, scep_mode_name(pl->mode));
    return SCEP_E_INVALID_ARG;
}

/* Make the secrets pl asks for; keys gets those to show once. */
static enum scep_err
write_secrets(const struct scep_service *svc, const struct scep_endpoint_spec *s,
              const struct plan *pl, struct scep_endpoint_row *row, struct scep_endpoint_keys *keys,
              char *errbuf, size_t errlen)
{
    const char *name = row->name;
    const char *kind = "";
    enum scep_err rc = SCEP_OK;

    if (pl->gen_challenge || pl->challenge != NULL) {
        char chal[256];
        if (pl->gen_challenge)
            rc = scep_pki_random_text(chal, SCEP_GENERATED_CHALLENGE_LEN);
        else
            snprintf(chal, sizeof(chal), "%s", pl->challenge);
        if (rc == SCEP_OK)
            rc = scep_challenge_hash(svc->secret, sizeof(svc->secret), chal, strlen(chal),
                                     row->challenge_hash);
        if (rc == SCEP_OK) {
            row->has_challenge_hash = 1;
            if (pl->gen_challenge)
                snprintf(keys->challenge, sizeof(keys->challenge), "%.127s", chal);
        }
        OPENSSL_cleanse(chal, sizeof(chal));
        if (rc != SCEP_OK) {
            scep_errbuf(errbuf, errlen, "endpoint %s: cannot make the challenge: %s", name,
                        scep_strerror(rc));
            return rc;
        }
    }
    if (pl->new_token &&
        (rc = secret_new_key(svc, name, kind = "token", keys->token_key)) != SCEP_OK)
        goto fail;
    if (pl->new_webhook &&
        (rc = secret_new_key(svc, name, kind = "webhook", keys->webhook_key)) != SCEP_OK)
        goto fail;
    if (pl->write_bearer && (rc = secret_write(svc, name, kind = "bearer", s->webhook_bearer,
                                               strlen(s->webhook_bearer))) != SCEP_OK)
        goto fail;
    if (pl->drop_bearer)
        secret_remove(svc, name, "bearer");
    if (pl->write_intune && (rc = secret_write(svc, name, kind = "intune", s->intune_app_key,
                                               strlen(s->intune_app_key))) != SCEP_OK)
        goto fail;
    if (pl->new_notify &&
        (rc = secret_new_key(svc, name, kind = "notify", keys->notify_key)) != SCEP_OK)
        goto fail;
    return SCEP_OK;
fail:
    scep_errbuf(errbuf, errlen,
                "cannot write %s/%s/%s.%s: %s; check that the data directory is writable",
                svc->datadir, SCEP_SECRETS_DIR, name, kind, scep_strerror(rc));
    return rc;
}

/* Remove the secrets of a mode the endpoint no longer has (after the change is stored). */
static void
drop_unused_secrets(const struct scep_service *svc, const struct scep_endpoint_row *row,
                    enum scep_mode mode)
{
    if (mode != SCEP_MODE_SIGNED)
        secret_remove(svc, row->name, "token");
    if (mode != SCEP_MODE_WEBHOOK) {
        secret_remove(svc, row->name, "webhook");
        secret_remove(svc, row->name, "bearer");
    }
    if (mode != SCEP_MODE_INTUNE)
        secret_remove(svc, row->name, "intune");
    if (row->notify_url[0] == '\0')
        secret_remove(svc, row->name, "notify");
}

/* Every secret of an endpoint that was not stored after all. */
static void
remove_secrets(const struct scep_service *svc, const char *name)
{
    static const char *const kinds[] = {"token", "webhook", "bearer", "intune", "notify"};
    size_t i;

    for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        secret_remove(svc, name, kinds[i]);
}

/* cfg as the row's mode_config text. */
static enum scep_err
store_config(json_t *cfg, struct scep_endpoint_row *row, char *errbuf, size_t errlen)
{
    char *text = json_dumps(cfg, JSON_COMPACT);
    enum scep_err rc = SCEP_OK;

    if (text == NULL)
        return SCEP_E_NOMEM;
    if (strlen(text) >= sizeof(row->mode_config)) {
        scep_errbuf(errbuf, errlen,
                    "endpoint %s: the mode settings are over %zu bytes; shorten the URLs",
                    row->name, sizeof(row->mode_config) - 1);
        rc = SCEP_E_TOO_LARGE;
    } else {
        snprintf(row->mode_config, sizeof(row->mode_config), "%s", text);
    }
    free(text);
    return rc;
}

/* Does a GetCACert "single" endpoint have an RSA CA (clients encrypt to it)? */
static enum scep_err
check_single(const struct scep_endpoint_row *row, EVP_PKEY *ca_key, char *errbuf, size_t errlen)
{
    if (strcmp(row->getcacert_format, "single") == 0 &&
        EVP_PKEY_get_base_id(ca_key) != EVP_PKEY_RSA) {
        scep_errbuf(errbuf, errlen,
                    "endpoint %s: --getcacert single needs an RSA CA (clients encrypt to it and it "
                    "signs the replies); use --getcacert chain",
                    row->name);
        return SCEP_E_INVALID_ARG;
    }
    return SCEP_OK;
}

/* DIR/<file> into p, created exclusively with the key or certificate. */
static enum scep_err
write_pki_file(const struct scep_service *svc, const char *file, EVP_PKEY *key, X509 *cert,
               char *errbuf, size_t errlen)
{
    char p[PATH_MAX];
    enum scep_err rc;

    if ((rc = scep_path(p, sizeof(p), svc->datadir, file)) != SCEP_OK)
        return rc;
    rc = key != NULL ? scep_pki_write_key(p, key) : scep_pki_write_cert(p, cert);
    if (rc == SCEP_E_EXISTS)
        scep_errbuf(errbuf, errlen,
                    "%s exists (left by an earlier attempt?); move it away or choose another "
                    "endpoint name",
                    p);
    else if (rc != SCEP_OK)
        scep_errbuf(errbuf, errlen, "cannot write %s: %s", p, scep_strerror(rc));
    return rc;
}

static void
unlink_pki_file(const struct scep_service *svc, const char *file)
{
    char p[PATH_MAX];

    if (scep_path(p, sizeof(p), svc->datadir, file) == SCEP_OK)
        (void)unlink(p);
}

/* A name for a new CA row: the endpoint's, else "<name>-ca", "<name>-ca2", ... */
static void
ca_row_name(const struct ep_table *t, const char *base, int attempt, char *out, size_t len)
{
    int i;

    /* at most 9999 tries: the name (<= 63) stays within SCEP_NAME_MAX */
    for (i = attempt; i < 10000; i++) {
        if (i == 0)
            snprintf(out, len, "%s", base);
        else if (i == 1)
            snprintf(out, len, "%.55s-ca", base);
        else
            snprintf(out, len, "%.55s-ca%d", base, i % 10000);
        if (ca_by_name(t, out) == NULL)
            return;
    }
}

enum scep_err
scep_service_add_endpoint(struct scep_service *svc, const struct scep_endpoint_spec *spec,
                          const char *actor, struct scep_endpoint_keys *keys, char *errbuf,
                          size_t errlen)
{
    char ab[96]; /* the actor, escaped for the log */
    const struct ep_table *t;
    const struct ca_entry *ca = NULL;
    struct scep_endpoint_row row, cur;
    struct scep_ca_row carow;
    struct plan pl;
    json_t *cfg = NULL;
    EVP_PKEY *new_key = NULL, *ra_key = NULL, *ca_key;
    X509 *new_cert = NULL, *ra = NULL, *ca_cert;
    X509_NAME *dn = NULL;
    char f_cakey[96], f_cacrt[96], f_rakey[96], f_racrt[96], ra_dn[128], detail[200], e[300];
    char spec_ca[SCEP_NAME_MAX];
    int made_ca = 0, made_ra = 0, made_secrets = 0, stored = 0, attempt;
    int64_t ca_id = 0, ep_id = 0;
    enum scep_err rc = SCEP_E_INTERNAL;

    memset(&row, 0, sizeof(row));
    memset(&carow, 0, sizeof(carow));
    memset(keys, 0, sizeof(*keys));
    scep_errbuf(errbuf, errlen, "%s", "");
    if (!spec_terminated(spec)) {
        scep_errbuf(errbuf, errlen, "a field of the endpoint is over its size; shorten it");
        return SCEP_E_INVALID_ARG;
    }
    if (!endpoint_name_ok(spec->name)) {
        scep_errbuf(errbuf, errlen,
                    "endpoint name \"%s\": use 1 to 63 of a-z 0-9 . _ -, starting with a letter or "
                    "digit (not \"crl\")",
                    esc(spec->name, e, sizeof(e)));
        return SCEP_E_INVALID_ARG;
    }
    /* the defaults of a new endpoint */
    snprintf(row.name, sizeof(row.name), "%s", spec->name);
    snprintf(row.getcacert_format, sizeof(row.getcacert_format), "chain");
    row.getcert_chain = 0;
    row.allow_des = 1;
    row.advertise_post = 1;
    row.validity_days = 365;
    row.enabled = 1;
    row.max_outstanding = 10000;
    if ((cfg = json_object()) == NULL)
        return SCEP_E_NOMEM;
    json_object_set_new(cfg, "challenge_ttl", json_integer(3600));

    spec_ca[0] = '\0';
    pthread_mutex_lock(&svc->reload_mu);
    t = svc_tbl(svc);
    if ((rc = find_row(svc, spec->name, &cur)) == SCEP_OK) {
        scep_errbuf(errbuf, errlen,
                    "endpoint %s exists; change it with scepctl endpoints update %s", spec->name,
                    spec->name);
        rc = SCEP_E_EXISTS;
        goto out;
    } else if (rc != SCEP_E_NO_ENTRY) {
        scep_errbuf(errbuf, errlen, "cannot read the endpoints: %s", scep_strerror(rc));
        goto out;
    }
    if ((rc = apply_spec(svc, spec, 1, &row, cfg, &pl, errbuf, errlen)) != SCEP_OK)
        goto out;

    /* its CA: an existing one or a new self-signed one */
    rc = SCEP_E_INVALID_ARG;
    if (given(spec->ca) && (given(spec->new_ca_subject) || given(spec->new_ca_key))) {
        scep_errbuf(errbuf, errlen,
                    "endpoint %s: give --ca (an existing CA) or --new-ca (a new one), not both",
                    spec->name);
        goto out;
    }
    if (!given(spec->ca) && !given(spec->new_ca_subject)) {
        /* neither: the CA of the default endpoint, as `scepd init` made it */
        const struct scep_endpoint *d = scep_service_endpoint(svc, NULL, 0);
        if (d != NULL)
            snprintf(spec_ca, sizeof(spec_ca), "%s", d->ca_name);
    } else if (given(spec->ca))
        snprintf(spec_ca, sizeof(spec_ca), "%s", spec->ca);
    if (spec_ca[0] != '\0') {
        if ((ca = ca_by_name(t, spec_ca)) == NULL) {
            bad(errbuf, errlen, "--ca", spec_ca,
                "no such CA; list them with scepctl ca list, or make one with --new-ca");
            goto out;
        }
        ca_cert = ca->cert;
        ca_key = ca->key;
    } else if (given(spec->new_ca_subject)) {
        const char *kspec = given(spec->new_ca_key) ? spec->new_ca_key : "rsa:2048";
        if (scep_pki_parse_dn(spec->new_ca_subject, &dn) != SCEP_OK) {
            bad(errbuf, errlen, "--new-ca", spec->new_ca_subject, "write it as CN=name,O=org");
            goto out;
        }
        if (scep_pki_genkey(kspec, &new_key) != SCEP_OK) {
            bad(errbuf, errlen, "--ca-key", kspec,
                "use rsa:2048, rsa:3072, rsa:4096, ec:p256 or ec:p384");
            goto out;
        }
        if ((rc = scep_pki_make_root(new_key, dn, 3650, &new_cert)) != SCEP_OK) {
            scep_errbuf(errbuf, errlen, "endpoint %s: cannot make the CA: %s", spec->name,
                        scep_strerror(rc));
            goto out;
        }
        ca_cert = new_cert;
        ca_key = new_key;
    } else {
        scep_errbuf(errbuf, errlen,
                    "endpoint %s: give --ca NAME (an existing CA, see scepctl ca list) or "
                    "--new-ca DN (a new self-signed CA)",
                    spec->name);
        goto out;
    }
    if ((rc = check_single(&row, ca_key, errbuf, errlen)) != SCEP_OK)
        goto out;

    /* its own RA, issued by the CA (always RSA: it decrypts key-transport envelopes) */
    /* a commonName has at most 64 characters (RFC 5280 ub-common-name) */
    snprintf(ra_dn, sizeof(ra_dn), "CN=%.61s RA,O=scepd", spec->name);
    X509_NAME_free(dn);
    dn = NULL;
    if ((rc = scep_pki_genkey("rsa:2048", &ra_key)) != SCEP_OK ||
        (rc = scep_pki_parse_dn(ra_dn, &dn)) != SCEP_OK ||
        (rc = scep_pki_make_ra(ra_key, dn, ca_cert, ca_key, 1825, &ra)) != SCEP_OK) {
        scep_errbuf(errbuf, errlen, "endpoint %s: cannot make the RA: %s", spec->name,
                    scep_strerror(rc));
        goto out;
    }

    /* files first (O_EXCL), then the CA row, the secrets, the endpoint row */
    if (new_cert != NULL) {
        snprintf(f_cakey, sizeof(f_cakey), "ca-%s.key", spec->name);
        snprintf(f_cacrt, sizeof(f_cacrt), "ca-%s.crt", spec->name);
        if ((rc = write_pki_file(svc, f_cakey, new_key, NULL, errbuf, errlen)) != SCEP_OK)
            goto out;
        if ((rc = write_pki_file(svc, f_cacrt, NULL, new_cert, errbuf, errlen)) != SCEP_OK) {
            unlink_pki_file(svc, f_cakey);
            goto out;
        }
        made_ca = 1;
    }
    snprintf(f_rakey, sizeof(f_rakey), "ra-%s.key", spec->name);
    snprintf(f_racrt, sizeof(f_racrt), "ra-%s.crt", spec->name);
    if ((rc = write_pki_file(svc, f_rakey, ra_key, NULL, errbuf, errlen)) != SCEP_OK)
        goto out;
    if ((rc = write_pki_file(svc, f_racrt, NULL, ra, errbuf, errlen)) != SCEP_OK) {
        unlink_pki_file(svc, f_rakey);
        goto out;
    }
    made_ra = 1;
    if (new_cert != NULL) {
        snprintf(carow.key_ref, sizeof(carow.key_ref), "%s", f_cakey);
        if ((rc = svc_cert_der_of(new_cert, &carow.cert_der, &carow.cert_len)) != SCEP_OK)
            goto out;
        for (attempt = 0; attempt < 10; attempt++) {
            ca_row_name(t, spec->name, attempt, carow.name, sizeof(carow.name));
            if ((rc = scep_store_add_ca(svc->store, &carow, &ca_id)) != SCEP_E_CONFLICT)
                break;
        }
        if (rc != SCEP_OK) {
            scep_errbuf(errbuf, errlen, "endpoint %s: cannot record its CA: %s", spec->name,
                        scep_strerror(rc));
            goto out;
        }
        made_ca = 0; /* the CA row refers to its files now: they stay */
        scep_log(SCEP_LOG_INFO, "ca", "CA created name=%s for_endpoint=%s", carow.name, spec->name);
    } else {
        ca_id = ca->id;
    }
    row.ca_id = ca_id;
    snprintf(row.ra_key_ref, sizeof(row.ra_key_ref), "%s", f_rakey);
    if ((rc = svc_cert_der_of(ra, &row.ra_cert_der, &row.ra_cert_len)) != SCEP_OK)
        goto out;
    made_secrets = 1;
    if ((rc = write_secrets(svc, spec, &pl, &row, keys, errbuf, errlen)) != SCEP_OK)
        goto out;
    if ((rc = store_config(cfg, &row, errbuf, errlen)) != SCEP_OK)
        goto out;
    if ((rc = scep_store_add_endpoint(svc->store, &row, &ep_id)) != SCEP_OK) {
        if (rc == SCEP_E_CONFLICT)
            scep_errbuf(errbuf, errlen, "endpoint %s exists", spec->name);
        else
            scep_errbuf(errbuf, errlen, "endpoint %s: cannot store it: %s", spec->name,
                        scep_strerror(rc));
        goto out;
    }
    stored = 1;
    snprintf(detail, sizeof(detail), "ca=%s mode=%s approval=%s",
             new_cert != NULL ? carow.name : ca->name, row.challenge_mode,
             row.approval_manual ? "manual" : "auto");
    audit(svc, actor, "endpoint.add", spec->name, spec->name, detail);
    scep_log(SCEP_LOG_INFO, "admin", "endpoint added name=%s %s actor=%s", spec->name, detail,
             esc(or_empty(actor), ab, sizeof(ab)));
    rc = svc_reload(svc, errbuf, errlen);
out:
    pthread_mutex_unlock(&svc->reload_mu);
    if (rc != SCEP_OK && !stored) {
        /* nothing refers to what was made: take it back */
        if (made_secrets)
            remove_secrets(svc, spec->name);
        if (made_ra) {
            unlink_pki_file(svc, f_rakey);
            unlink_pki_file(svc, f_racrt);
        }
        if (made_ca) {
            unlink_pki_file(svc, f_cakey);
            unlink_pki_file(svc, f_cacrt);
        }
        OPENSSL_cleanse(keys, sizeof(*keys));
    }
    json_decref(cfg);
    OPENSSL_free(carow.cert_der);
    OPENSSL_free(row.ra_cert_der);
    X509_NAME_free(dn);
    X509_free(new_cert);
    X509_free(ra);
    EVP_PKEY_free(new_key);
    EVP_PKEY_free(ra_key);
    return rc;
}

/* The fields an update gives, for the audit trail (names only: no values, no secrets). */
static void
given_fields(const struct scep_endpoint_spec *s, char *out, size_t len)
{
    const struct {
        int on;
        const char *name;
    } f[] = {
        {s->validity_days != -1, "validity_days"},
        {given(s->getcacert_format), "getcacert"},
        {given(s->getcert_format), "getcert"},
        {given(s->mode), "mode"},
        {given(s->challenge), "challenge"},
        {given(s->approval), "approval"},
        {s->enabled != -1, "enabled"},
        {given(s->profile), "profile"},
        {given(s->notify_url), "notify_url"},
        {given(s->webhook_url), "webhook_url"},
        {given(s->webhook_bearer), "webhook_bearer"},
        {s->webhook_timeout_ms != -1, "webhook_timeout_ms"},
        {given(s->intune_tenant) || given(s->intune_app_id) || given(s->intune_app_key) ||
             given(s->intune_provider) || given(s->intune_proxy) || given(s->intune_login_url) ||
             given(s->intune_graph_url) || given(s->intune_resource_url),
         "intune"},
        {s->max_outstanding != -1, "max_outstanding"},
        {s->challenge_ttl != -1, "challenge_ttl"},
        {s->rotate_key != 0, "rotate_key"},
    };
    size_t i, n = 0;

    out[0] = '\0';
    for (i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
        if (!f[i].on)
            continue;
        snprintf(out + n, len - n, "%s%s", n > 0 ? "," : "", f[i].name);
        n = strlen(out);
    }
}

enum scep_err
scep_service_update_endpoint(struct scep_service *svc, const struct scep_endpoint_spec *spec,
                             const char *actor, struct scep_endpoint_keys *keys, char *errbuf,
                             size_t errlen)
{
    char ab[96]; /* the actor, escaped for the log */
    struct scep_endpoint_row row;
    const struct ca_entry *ca;
    struct plan pl;
    json_t *cfg = NULL;
    char fields[300], detail[400], e[100];
    enum scep_err rc;

    memset(keys, 0, sizeof(*keys));
    scep_errbuf(errbuf, errlen, "%s", "");
    if (!spec_terminated(spec)) {
        scep_errbuf(errbuf, errlen, "a field of the endpoint is over its size; shorten it");
        return SCEP_E_INVALID_ARG;
    }
    pthread_mutex_lock(&svc->reload_mu);
    if ((rc = find_row(svc, spec->name, &row)) != SCEP_OK) {
        if (rc == SCEP_E_NO_ENTRY)
            scep_errbuf(errbuf, errlen, "no endpoint %s; list them with scepctl endpoints list",
                        esc(spec->name, e, sizeof(e)));
        else
            scep_errbuf(errbuf, errlen, "cannot read the endpoints: %s", scep_strerror(rc));
        goto out;
    }
    ca = svc_ca_by_id(svc_tbl(svc), row.ca_id);
    if ((given(spec->ca) && (ca == NULL || strcmp(spec->ca, ca->name) != 0)) ||
        given(spec->new_ca_subject) || given(spec->new_ca_key)) {
        scep_errbuf(errbuf, errlen,
                    "endpoint %s: its CA cannot be changed here; use scepctl ca rollover and ca "
                    "switch, or add a new endpoint with the other CA",
                    spec->name);
        rc = SCEP_E_INVALID_ARG;
        goto out;
    }
    cfg = json_loads(row.mode_config[0] ? row.mode_config : "{}", 0, NULL);
    if (!json_is_object(cfg)) {
        /* unreadable settings: start afresh (the mode's checks below ask for what is missing) */
        json_decref(cfg);
        if ((cfg = json_object()) == NULL) {
            rc = SCEP_E_NOMEM;
            goto out;
        }
    }
    if ((rc = apply_spec(svc, spec, 0, &row, cfg, &pl, errbuf, errlen)) != SCEP_OK)
        goto out;
    if (ca != NULL && (rc = check_single(&row, ca->key, errbuf, errlen)) != SCEP_OK)
        goto out;
    if ((rc = write_secrets(svc, spec, &pl, &row, keys, errbuf, errlen)) != SCEP_OK)
        goto out;
    if ((rc = store_config(cfg, &row, errbuf, errlen)) != SCEP_OK)
        goto out;
    if ((rc = scep_store_update_endpoint(svc->store, &row)) != SCEP_OK) {
        scep_errbuf(errbuf, errlen, "endpoint %s: cannot store the change: %s", spec->name,
                    scep_strerror(rc));
        goto out;
    }
    given_fields(spec, fields, sizeof(fields));
    snprintf(detail, sizeof(detail), "mode=%s fields=%s", row.challenge_mode, fields);
    audit(svc, actor, "endpoint.update", spec->name, spec->name, detail);
    scep_log(SCEP_LOG_INFO, "admin", "endpoint updated name=%s %s actor=%s", spec->name, detail,
             esc(or_empty(actor), ab, sizeof(ab)));
    if ((rc = svc_reload(svc, errbuf, errlen)) == SCEP_OK)
        drop_unused_secrets(svc, &row, pl.mode);
out:
    pthread_mutex_unlock(&svc->reload_mu);
    if (rc != SCEP_OK)
        OPENSSL_cleanse(keys, sizeof(*keys));
    OPENSSL_cleanse(row.challenge_hash, sizeof(row.challenge_hash));
    json_decref(cfg);
    return rc;
}

enum scep_err
scep_service_enable_endpoint(struct scep_service *svc, const char *name, int enabled,
                             const char *actor, char *errbuf, size_t errlen)
{
    char ab[96]; /* the actor, escaped for the log */
    struct scep_endpoint_row row;
    const char *action = enabled ? "endpoint.enable" : "endpoint.disable";
    char e[100];
    enum scep_err rc;

    scep_errbuf(errbuf, errlen, "%s", "");
    if (!given(name)) {
        scep_errbuf(errbuf, errlen, "give the name of the endpoint to %s",
                    enabled ? "enable" : "disable");
        return SCEP_E_INVALID_ARG;
    }
    pthread_mutex_lock(&svc->reload_mu);
    if ((rc = find_row(svc, name, &row)) != SCEP_OK) {
        if (rc == SCEP_E_NO_ENTRY)
            scep_errbuf(errbuf, errlen, "no endpoint %s; list them with scepctl endpoints list",
                        esc(name, e, sizeof(e)));
        else
            scep_errbuf(errbuf, errlen, "cannot read the endpoints: %s", scep_strerror(rc));
        goto out;
    }
    row.enabled = enabled ? 1 : 0;
    if ((rc = scep_store_update_endpoint(svc->store, &row)) != SCEP_OK) {
        scep_errbuf(errbuf, errlen, "endpoint %s: cannot store the change: %s", name,
                    scep_strerror(rc));
        goto out;
    }
    audit(svc, actor, action, name, name, "");
    scep_log(SCEP_LOG_INFO, "admin", "endpoint %s name=%s actor=%s",
             enabled ? "enabled" : "disabled", name, esc(or_empty(actor), ab, sizeof(ab)));
    rc = svc_reload(svc, errbuf, errlen);
out:
    pthread_mutex_unlock(&svc->reload_mu);
    OPENSSL_cleanse(row.challenge_hash, sizeof(row.challenge_hash));
    return rc;
}

/* ---- descriptions (JSON, never a secret) ---- */

static void
jstr(json_t *o, const char *k, const char *v)
{
    json_object_set_new(o, k, json_string(or_empty(v)));
}

static void
jint(json_t *o, const char *k, long long v)
{
    json_object_set_new(o, k, json_integer(v));
}

/* The malloc'ed text of v (consumed). */
static enum scep_err
dump(json_t *v, char **json)
{
    *json = v != NULL ? json_dumps(v, JSON_COMPACT) : NULL;
    json_decref(v);
    return *json != NULL ? SCEP_OK : SCEP_E_NOMEM;
}

static json_t *
endpoint_json(const struct scep_service *svc, const struct scep_endpoint_row *r)
{
    const struct ep_table *t = svc_tbl(svc);
    const struct ca_entry *ca = svc_ca_by_id(t, r->ca_id);
    json_t *o = json_object(), *cfg, *v, *it;
    char path[80];

    if (o == NULL)
        return NULL;
    cfg = json_loads(r->mode_config[0] ? r->mode_config : "{}", 0, NULL);
    snprintf(path, sizeof(path), "/scep/%s", r->name);
    jstr(o, "name", r->name);
    jstr(o, "url_path", path);
    jstr(o, "ca", ca != NULL ? ca->name : "");
    jstr(o, "profile", profile_name(t, r->profile_id));
    jstr(o, "organization", r->organization);
    jstr(o, "department", r->department);
    jint(o, "validity_days", r->validity_days);
    jstr(o, "getcacert_format", r->getcacert_format);
    jstr(o, "getcert_format", r->getcert_chain ? "chain" : "single");
    jstr(o, "mode", r->challenge_mode);
    jstr(o, "approval", r->approval_manual ? "manual" : "auto");
    json_object_set_new(o, "enabled", json_boolean(r->enabled));
    jstr(o, "notify_url", r->notify_url);
    jint(o, "max_outstanding", r->max_outstanding > 0 ? r->max_outstanding : 10000);
    v = json_object_get(cfg, "challenge_ttl");
    jint(o, "challenge_ttl", json_is_integer(v) ? json_integer_value(v) : 3600);
    v = json_object_get(cfg, "webhook_url");
    jstr(o, "webhook_url", json_is_string(v) ? json_string_value(v) : "");
    it = json_object_get(cfg, "intune");
    if (strcmp(r->challenge_mode, "intune") == 0 && json_is_object(it)) {
        json_t *io = json_object();
        static const char *const keys[] = {"tenant", "app_id", "provider"};
        size_t i;
        for (i = 0; io != NULL && i < sizeof(keys) / sizeof(keys[0]); i++) {
            v = json_object_get(it, keys[i]);
            jstr(io, keys[i], json_is_string(v) ? json_string_value(v) : "");
        }
        json_object_set_new(o, "intune", io != NULL ? io : json_null());
    } else {
        json_object_set_new(o, "intune", json_null());
    }
    json_decref(cfg);
    return o;
}

struct describe_ctx {
    const struct scep_service *svc;
    const char *name; /* one endpoint, or NULL: all */
    json_t *out;      /* array (all) or the object */
    int nomem;
};

static int
describe_ep_cb(void *arg, const struct scep_endpoint_row *row)
{
    struct describe_ctx *c = arg;
    json_t *o;

    if (c->name != NULL && strcmp(c->name, row->name) != 0)
        return 0;
    if ((o = endpoint_json(c->svc, row)) == NULL) {
        c->nomem = 1;
        return 1;
    }
    if (c->name != NULL) {
        c->out = o;
        return 1;
    }
    json_array_append_new(c->out, o);
    return 0;
}

enum scep_err
scep_service_describe_endpoints(const struct scep_service *svc, const char *name, char **json)
{
    struct describe_ctx c = {svc, name, NULL, 0};
    enum scep_err rc;

    *json = NULL;
    if (name == NULL && (c.out = json_array()) == NULL)
        return SCEP_E_NOMEM;
    rc = scep_store_each_endpoint(svc->store, describe_ep_cb, &c);
    if (c.nomem) {
        json_decref(c.out);
        return SCEP_E_NOMEM;
    }
    if (c.out == NULL)
        return rc == SCEP_OK ? SCEP_E_NO_ENTRY : rc;
    if (name == NULL && rc != SCEP_OK) {
        json_decref(c.out);
        return rc;
    }
    return dump(c.out, json);
}

/* ---- accounts (mode "account") ---- */

/* The loaded endpoint of mode account named endpoint; NULL with *rc and errbuf set otherwise. */
static const struct scep_endpoint *
account_endpoint(const struct scep_service *svc, const char *endpoint, enum scep_err *rc,
                 char *errbuf, size_t errlen)
{
    const struct scep_endpoint *ep = ep_lookup(svc, endpoint, errbuf, errlen);

    *rc = SCEP_E_NO_ENTRY;
    if (ep != NULL && ep->mode != SCEP_MODE_ACCOUNT) {
        scep_errbuf(
            errbuf, errlen,
            "endpoint %s has mode %s: accounts belong to mode account endpoints; use one, or "
            "change it with scepctl endpoints update %s --mode account",
            ep->name, scep_mode_name(ep->mode), ep->name);
        *rc = SCEP_E_INVALID_ARG;
        return NULL;
    }
    if (ep != NULL)
        *rc = SCEP_OK;
    return ep;
}

/* A new access code (given or generated) into code_out, its keyed hash into h. */
static enum scep_err
account_code(const struct scep_service *svc, const char *code, char *code_out, size_t code_len,
             unsigned char h[32], char *errbuf, size_t errlen)
{
    char gen[ACCOUNT_CODE_LEN + 1];
    enum scep_err rc;

    if (given(code)) {
        if (strlen(code) < 12 || !ascii_ok(code, 255, 0)) {
            scep_errbuf(
                errbuf, errlen,
                "--code: use 12 to 255 printable characters without spaces, or leave it out "
                "to have one generated");
            return SCEP_E_INVALID_ARG;
        }
    } else {
        if ((rc = scep_pki_random_text(gen, ACCOUNT_CODE_LEN)) != SCEP_OK)
            return rc;
        code = gen;
    }
    if (code_len <= strlen(code)) {
        OPENSSL_cleanse(gen, sizeof(gen));
        scep_errbuf(errbuf, errlen, "no room for the access code (%zu bytes needed)",
                    strlen(code) + 1);
        return SCEP_E_TOO_LARGE;
    }
    rc = svc_code_hash(svc, "account", code, strlen(code), h);
    if (rc == SCEP_OK)
        snprintf(code_out, code_len, "%s", code);
    OPENSSL_cleanse(gen, sizeof(gen));
    return rc;
}

enum scep_err
scep_service_add_account(struct scep_service *svc, const char *endpoint, const char *name,
                         const char *organization, const char *department, const char *profile,
                         int validity_days, const char *code, const char *actor, char *code_out,
                         size_t code_len, char *errbuf, size_t errlen)
{
    char ab[96]; /* the actor, escaped for the log */
    const struct scep_endpoint *ep;
    const struct scep_profile_row *p;
    struct scep_account_row a;
    char e[100], detail[200];
    int64_t id = 0;
    enum scep_err rc;

    if (code_len > 0)
        code_out[0] = '\0';
    scep_errbuf(errbuf, errlen, "%s", "");
    memset(&a, 0, sizeof(a));
    if ((ep = account_endpoint(svc, endpoint, &rc, errbuf, errlen)) == NULL)
        return rc;
    if (name == NULL || !account_name_ok(name))
        return bad(errbuf, errlen, "account name", or_empty(name),
                   "use 1 to 63 of A-Z a-z 0-9 . _ @ -");
    organization = or_empty(organization);
    department = or_empty(department);
    if (!text_ok(organization, sizeof(a.organization) - 1))
        return bad(errbuf, errlen, "--org", organization,
                   "at most 127 characters, no control characters");
    if (!text_ok(department, sizeof(a.department) - 1))
        return bad(errbuf, errlen, "--department", department,
                   "at most 127 characters, no control characters");
    if (given(profile)) {
        if ((p = profile_by_name(svc_tbl(svc), profile)) == NULL)
            return bad(errbuf, errlen, "--profile", profile,
                       "no such profile; list them with scepctl profiles list");
        a.profile_id = p->id;
    }
    if (validity_days < 0 || validity_days > 36500)
        return bad_int(errbuf, errlen, "--validity", validity_days,
                       "use 1 to 36500 days, or 0 for the profile's or endpoint's");
    a.endpoint_id = ep->id;
    snprintf(a.name, sizeof(a.name), "%s", name);
    snprintf(a.organization, sizeof(a.organization), "%s", organization);
    snprintf(a.department, sizeof(a.department), "%s", department);
    a.validity_days = validity_days;
    a.enabled = 1;
    if ((rc = account_code(svc, code, code_out, code_len, a.code_hash, errbuf, errlen)) != SCEP_OK)
        goto out;
    if ((rc = scep_store_add_account(svc->store, &a, &id)) != SCEP_OK) {
        if (rc == SCEP_E_CONFLICT)
            scep_errbuf(errbuf, errlen,
                        "account %s on endpoint %s: name taken or code already in use; choose "
                        "another name, or leave --code out to have one generated",
                        esc(name, e, sizeof(e)), ep->name);
        else
            scep_errbuf(errbuf, errlen, "cannot store the account: %s", scep_strerror(rc));
        goto out;
    }
    snprintf(detail, sizeof(detail), "id=%lld profile=%s validity_days=%d", (long long)id,
             profile_name(svc_tbl(svc), a.profile_id), validity_days);
    audit(svc, actor, "account.add", name, ep->name, detail);
    scep_log(SCEP_LOG_INFO, "admin", "account added endpoint=%s name=%s actor=%s", ep->name, name,
             esc(or_empty(actor), ab, sizeof(ab)));
out:
    if (rc != SCEP_OK && code_len > 0)
        OPENSSL_cleanse(code_out, code_len);
    OPENSSL_cleanse(a.code_hash, sizeof(a.code_hash));
    return rc;
}

enum scep_err
scep_service_account_op(struct scep_service *svc, const char *endpoint, const char *name,
                        const char *op, const char *actor, char *code_out, size_t code_len,
                        char *errbuf, size_t errlen)
{
    char ab[96]; /* the actor, escaped for the log */
    const struct scep_endpoint *ep;
    struct scep_account_row a;
    unsigned char h[32];
    char e[100], action[48];
    enum scep_err rc;

    if (code_len > 0)
        code_out[0] = '\0';
    scep_errbuf(errbuf, errlen, "%s", "");
    if ((ep = account_endpoint(svc, endpoint, &rc, errbuf, errlen)) == NULL)
        return rc;
    op = or_empty(op);
    if (strcmp(op, "disable") != 0 && strcmp(op, "enable") != 0 && strcmp(op, "rotate-code") != 0)
        return bad(errbuf, errlen, "account operation", op, "use disable, enable or rotate-code");
    if (name == NULL || !account_name_ok(name))
        return bad(errbuf, errlen, "account name", or_empty(name),
                   "use 1 to 63 of A-Z a-z 0-9 . _ @ -");
    if ((rc = scep_store_get_account(svc->store, ep->id, name, &a)) != SCEP_OK) {
        if (rc == SCEP_E_NO_ENTRY)
            scep_errbuf(errbuf, errlen,
                        "no account %s on endpoint %s; list them with scepctl accounts list",
                        esc(name, e, sizeof(e)), ep->name);
        else
            scep_errbuf(errbuf, errlen, "cannot read the account: %s", scep_strerror(rc));
        return rc;
    }
    if (strcmp(op, "rotate-code") == 0) {
        if ((rc = account_code(svc, NULL, code_out, code_len, h, errbuf, errlen)) == SCEP_OK)
            rc = scep_store_set_account(svc->store, a.id, a.enabled, h);
        OPENSSL_cleanse(h, sizeof(h));
    } else {
        rc = scep_store_set_account(svc->store, a.id, strcmp(op, "enable") == 0, NULL);
    }
    if (rc != SCEP_OK) {
        if (errbuf != NULL && errlen > 0 && errbuf[0] == '\0')
            scep_errbuf(errbuf, errlen, "account %s: cannot store the change: %s", a.name,
                        scep_strerror(rc));
        if (code_len > 0)
            OPENSSL_cleanse(code_out, code_len);
        return rc;
    }
    snprintf(action, sizeof(action), "account.%s", op);
    audit(svc, actor, action, a.name, ep->name, "");
    scep_log(SCEP_LOG_INFO, "admin", "account %s endpoint=%s name=%s actor=%s", op, ep->name,
             a.name, esc(or_empty(actor), ab, sizeof(ab)));
    return SCEP_OK;
}

struct list_ctx {
    const struct scep_service *svc;
    json_t *arr;
    int nomem;
};

/* The end of a listing: the array as JSON text, or what went wrong (the array freed). */
static enum scep_err
list_finish(struct list_ctx *c, enum scep_err rc, char **json)
{
    if (c->nomem || rc != SCEP_OK) {
        json_decref(c->arr);
        return c->nomem ? SCEP_E_NOMEM : rc;
    }
    return dump(c->arr, json);
}

static int
account_cb(void *arg, const struct scep_account_row *r)
{
    struct list_ctx *c = arg;
    const struct ep_table *t = svc_tbl(c->svc);
    json_t *o = json_object();

    if (o == NULL) {
        c->nomem = 1;
        return 1;
    }
    jstr(o, "name", r->name);
    jstr(o, "endpoint", endpoint_name_of(c->svc, r->endpoint_id));
    jstr(o, "organization", r->organization);
    jstr(o, "department", r->department);
    jstr(o, "profile", profile_name(t, r->profile_id));
    jint(o, "validity_days", r->validity_days);
    json_object_set_new(o, "enabled", json_boolean(r->enabled));
    jint(o, "created_at", r->created_at);
    json_array_append_new(c->arr, o);
    return 0;
}

/* endpoint NULL or "": every endpoint; otherwise its id (0 with SCEP_E_NO_ENTRY when unknown). */
static enum scep_err
endpoint_filter(const struct scep_service *svc, const char *endpoint, int64_t *id)
{
    const struct scep_endpoint *ep;

    *id = 0;
    if (!given(endpoint))
        return SCEP_OK;
    if ((ep = scep_service_endpoint(svc, endpoint, strlen(endpoint))) == NULL)
        return SCEP_E_NO_ENTRY;
    *id = ep->id;
    return SCEP_OK;
}

enum scep_err
scep_service_describe_accounts(const struct scep_service *svc, const char *endpoint, char **json)
{
    struct list_ctx c = {svc, NULL, 0};
    int64_t id;
    enum scep_err rc;

    *json = NULL;
    if ((rc = endpoint_filter(svc, endpoint, &id)) != SCEP_OK)
        return rc;
    if ((c.arr = json_array()) == NULL)
        return SCEP_E_NOMEM;
    return list_finish(&c, scep_store_each_account(svc->store, id, account_cb, &c), json);
}

/* ---- one-time challenges and signed tokens ---- */

/* The endpoint named, which must be of mode (what: what only that mode has, for the message). */
static enum scep_err
endpoint_in_mode(const struct scep_service *svc, const char *endpoint, enum scep_mode mode,
                 const char *what, const struct scep_endpoint **out, char *errbuf, size_t errlen)
{
    if ((*out = ep_lookup(svc, endpoint, errbuf, errlen)) == NULL)
        return SCEP_E_NO_ENTRY;
    if ((*out)->mode != mode) {
        scep_errbuf(errbuf, errlen, "endpoint %s has mode %s: %s are for mode %s endpoints",
                    (*out)->name, scep_mode_name((*out)->mode), what, scep_mode_name(mode));
        return SCEP_E_INVALID_ARG;
    }
    return SCEP_OK;
}

/* The identity a challenge or token binds: each part checked (az: scratch for the SANs). */
static enum scep_err
check_identity(const char *subject, const char *sans, const char *device, const char *sid,
               struct scep_authz *az, char *errbuf, size_t errlen)
{
    X509_NAME *dn = NULL;

    memset(az, 0, sizeof(*az));
    if (given(subject)) {
        if (strlen(subject) > 255 || !text_ok(subject, 255) ||
            scep_pki_parse_dn(subject, &dn) != SCEP_OK)
            return bad(errbuf, errlen, "--subject", subject,
                       "write it as CN=name,O=org (at most 255 characters)");
        X509_NAME_free(dn);
    }
    if (given(sans) && (strlen(sans) > 1023 || scep_policy_parse_sans(sans, az) != SCEP_OK))
        return bad(errbuf, errlen, "--san", sans,
                   "a comma-separated list of at most 8 DNS:name, email:addr, IP:addr or "
                   "URI:uri (a SID goes in --sid)");
    if (given(device) && !ascii_ok(device, 127, 1))
        return bad(errbuf, errlen, "--device", device, "printable ASCII, at most 127 characters");
    if (given(sid) && (strlen(sid) > 95 || !scep_policy_sid_ok(sid)))
        return bad(errbuf, errlen, "--sid", sid, "give a Windows SID such as S-1-5-21-1-2-3-1001");
    return SCEP_OK;
}

static enum scep_err
check_ttl(const struct scep_endpoint *ep, int ttl, int *out, char *errbuf, size_t errlen)
{
    if (ttl == 0)
        ttl = ep->challenge_ttl > 0 ? ep->challenge_ttl : 3600;
    if (ttl < MIN_TTL || ttl > MAX_TTL)
        return bad_int(errbuf, errlen, "--ttl", ttl,
                       "use 60 to 2592000 seconds (30 days), or 0 for the endpoint's default");
    *out = ttl;
    return SCEP_OK;
}

enum scep_err
scep_service_new_challenge(struct scep_service *svc, const char *endpoint, int ttl,
                           const char *subject, const char *sans, const char *device,
                           const char *sid, const char *actor, char *out, size_t outlen,
                           char *errbuf, size_t errlen)
{
    char ab[96]; /* the actor, escaped for the log */
    const struct scep_endpoint *ep;
    struct scep_challenge_row c;
    struct scep_authz az;
    char chal[OTC_LEN + 1], obj[32], detail[160];
    int64_t id = 0;
    enum scep_err rc;

    if (outlen > 0)
        out[0] = '\0';
    scep_errbuf(errbuf, errlen, "%s", "");
    memset(&c, 0, sizeof(c));
    if ((rc = endpoint_in_mode(svc, endpoint, SCEP_MODE_ONETIME, "one-time challenges", &ep, errbuf,
                               errlen)) != SCEP_OK ||
        (rc = check_ttl(ep, ttl, &ttl, errbuf, errlen)) != SCEP_OK ||
        (rc = check_identity(subject, sans, device, sid, &az, errbuf, errlen)) != SCEP_OK)
        return rc;
    if (outlen <= OTC_LEN) {
        scep_errbuf(errbuf, errlen, "no room for the challenge (%d bytes needed)", OTC_LEN + 1);
        return SCEP_E_TOO_LARGE;
    }
    if ((rc = scep_pki_random_text(chal, OTC_LEN)) != SCEP_OK ||
        (rc = svc_code_hash(svc, "otc", chal, OTC_LEN, c.hash)) != SCEP_OK)
        goto out;
    c.endpoint_id = ep->id;
    snprintf(c.subject, sizeof(c.subject), "%s", or_empty(subject));
    snprintf(c.sans, sizeof(c.sans), "%s", or_empty(sans));
    snprintf(c.device_id, sizeof(c.device_id), "%s", or_empty(device));
    snprintf(c.sid, sizeof(c.sid), "%s", or_empty(sid));
    c.created_at = (int64_t)time(NULL);
    c.expires_at = c.created_at + ttl;
    rc = scep_store_add_challenge(svc->store, &c, ep->max_outstanding, &id);
    if (rc == SCEP_E_CHALLENGE_CAP) {
        scep_errbuf(errbuf, errlen,
                    "endpoint %s has %d outstanding one-time challenges (its cap); use some, let "
                    "them expire or raise --max-outstanding",
                    ep->name, ep->max_outstanding);
        goto out;
    }
    if (rc != SCEP_OK) {
        scep_errbuf(errbuf, errlen, "cannot store the challenge: %s", scep_strerror(rc));
        goto out;
    }
    snprintf(out, outlen, "%s", chal);
    snprintf(obj, sizeof(obj), "%lld", (long long)id);
    snprintf(detail, sizeof(detail), "ttl=%d bound=%s", ttl,
             given(subject) || given(sans) ? "yes" : "no");
    audit(svc, actor, "challenge.new", obj, ep->name, detail);
    scep_log(SCEP_LOG_INFO, "admin", "one-time challenge made endpoint=%s id=%lld ttl=%d actor=%s",
             ep->name, (long long)id, ttl, esc(or_empty(actor), ab, sizeof(ab)));
out:
    OPENSSL_cleanse(chal, sizeof(chal));
    OPENSSL_cleanse(c.hash, sizeof(c.hash));
    return rc;
}

static int
challenge_cb(void *arg, const struct scep_challenge_row *r)
{
    struct list_ctx *c = arg;
    json_t *o = json_object();
    int64_t now = (int64_t)time(NULL);

    if (o == NULL) {
        c->nomem = 1;
        return 1;
    }
    jint(o, "id", r->id);
    jstr(o, "endpoint", endpoint_name_of(c->svc, r->endpoint_id));
    jstr(o, "subject", r->subject);
    jstr(o, "sans", r->sans);
    jstr(o, "device_id", r->device_id);
    jstr(o, "sid", r->sid);
    jint(o, "created_at", r->created_at);
    jint(o, "expires_at", r->expires_at);
    jstr(o, "state", r->used_at != 0 ? "used" : now >= r->expires_at ? "expired" : "open");
    jstr(o, "serial", r->serial);
    json_array_append_new(c->arr, o);
    return 0;
}

enum scep_err
scep_service_describe_challenges(const struct scep_service *svc, const char *endpoint, char **json)
{
    struct list_ctx c = {svc, NULL, 0};
    int64_t id;
    enum scep_err rc;

    *json = NULL;
    if ((rc = endpoint_filter(svc, endpoint, &id)) != SCEP_OK)
        return rc;
    if ((c.arr = json_array()) == NULL)
        return SCEP_E_NOMEM;
    return list_finish(&c, scep_store_each_challenge(svc->store, id, challenge_cb, &c), json);
}

enum scep_err
scep_service_sign_token(struct scep_service *svc, const char *endpoint, int ttl,
                        const char *subject, const char *sans, const char *eku, const char *device,
                        const char *sid, const char *actor, char *out, size_t outlen, char *errbuf,
                        size_t errlen)
{
    char ab[96]; /* the actor, escaped for the log */
    const struct scep_endpoint *ep;
    struct scep_token tok;
    struct scep_authz az;
    unsigned char key[KEY_LEN];
    size_t i, klen = 0;
    char detail[160];
    enum scep_err rc;

    if (outlen > 0)
        out[0] = '\0';
    scep_errbuf(errbuf, errlen, "%s", "");
    memset(&tok, 0, sizeof(tok));
    if ((rc = endpoint_in_mode(svc, endpoint, SCEP_MODE_SIGNED, "signed tokens", &ep, errbuf,
                               errlen)) != SCEP_OK ||
        (rc = check_ttl(ep, ttl, &ttl, errbuf, errlen)) != SCEP_OK ||
        (rc = check_identity(subject, sans, device, sid, &az, errbuf, errlen)) != SCEP_OK)
        return rc;
    if (given(eku) && !ascii_ok(eku, sizeof(tok.eku) - 1, 0))
        return bad(errbuf, errlen, "--eku", eku,
                   "a comma-separated list such as clientAuth,serverAuth or OIDs");
    snprintf(tok.endpoint, sizeof(tok.endpoint), "%s", ep->name);
    tok.expires = (int64_t)time(NULL) + ttl;
    if ((rc = scep_token_nonce(&tok)) != SCEP_OK)
        goto out;
    snprintf(tok.subject, sizeof(tok.subject), "%s", or_empty(subject));
    for (i = 0; i < az.nsans && i < SCEP_TOKEN_MAX_SANS; i++)
        snprintf(tok.sans[i], sizeof(tok.sans[i]), "%s", az.sans[i]);
    tok.nsans = i;
    snprintf(tok.eku, sizeof(tok.eku), "%s", or_empty(eku));
    snprintf(tok.device, sizeof(tok.device), "%s", or_empty(device));
    snprintf(tok.sid, sizeof(tok.sid), "%s", or_empty(sid));
    rc = svc_secret_read(svc, ep->name, "token", key, sizeof(key), &klen);
    if (rc != SCEP_OK || klen != sizeof(key)) {
        scep_errbuf(errbuf, errlen,
                    "endpoint %s: its token key %s/%s.token is missing or not 32 bytes; make a new "
                    "one with scepctl endpoints update %s --rotate-key",
                    ep->name, SCEP_SECRETS_DIR, ep->name, ep->name);
        rc = SCEP_E_KEY_FILE;
        goto out;
    }
    if ((rc = scep_token_sign(key, klen, &tok, out, outlen)) != SCEP_OK) {
        scep_errbuf(errbuf, errlen,
                    "the token cannot be made: a field is malformed (text without control "
                    "characters, EKU names or OIDs) or the token is over %d bytes",
                    SCEP_TOKEN_MAX);
        goto out;
    }
    snprintf(detail, sizeof(detail), "nonce=%s expires=%lld", tok.nonce, (long long)tok.expires);
    audit(svc, actor, "token.sign", tok.nonce, ep->name, detail);
    scep_log(SCEP_LOG_INFO, "admin", "token signed endpoint=%s nonce=%s ttl=%d actor=%s", ep->name,
             tok.nonce, ttl, esc(or_empty(actor), ab, sizeof(ab)));
out:
    OPENSSL_cleanse(key, sizeof(key));
    if (rc != SCEP_OK && outlen > 0)
        OPENSSL_cleanse(out, outlen);
    return rc;
}

/* ---- profiles ---- */

enum scep_err
scep_service_update_profile(struct scep_service *svc, const struct scep_profile_row *p,
                            const char *actor, char *errbuf, size_t errlen)
{
    char ab[96]; /* the actor, escaped for the log */
    const struct scep_profile_row *cur;
    struct scep_profile_row row;
    const char *action;
    char e[100];
    int64_t id = 0;
    enum scep_err rc;

    scep_errbuf(errbuf, errlen, "%s", "");
    if (memchr(p->name, '\0', sizeof(p->name)) == NULL || p->name[0] == '\0' ||
        !ascii_ok(p->name, sizeof(p->name) - 1, 0)) {
        scep_errbuf(errbuf, errlen,
                    "a profile needs a name: 1 to 63 printable characters, no spaces");
        return SCEP_E_INVALID_ARG;
    }
    if ((rc = scep_policy_check_profile(p, errbuf, errlen)) != SCEP_OK)
        return rc;
    row = *p;
    pthread_mutex_lock(&svc->reload_mu);
    if ((cur = profile_by_name(svc_tbl(svc), p->name)) != NULL) {
        action = "profile.update";
        row.id = cur->id;
        rc = scep_store_update_profile(svc->store, &row);
    } else {
        action = "profile.add";
        rc = scep_store_add_profile(svc->store, &row, &id);
        row.id = id;
    }
    if (rc == SCEP_E_CONFLICT)
        scep_errbuf(errbuf, errlen,
                    "profile %s: template %s is another profile's; choose another one", p->name,
                    esc(p->template_name, e, sizeof(e)));
    else if (rc != SCEP_OK)
        scep_errbuf(errbuf, errlen, "profile %s: cannot store it: %s", p->name, scep_strerror(rc));
    if (rc == SCEP_OK) {
        audit(svc, actor, action, p->name, "", "");
        scep_log(SCEP_LOG_INFO, "admin", "%s name=%s id=%lld actor=%s", action, p->name,
                 (long long)row.id, esc(or_empty(actor), ab, sizeof(ab)));
        rc = svc_reload(svc, errbuf, errlen);
    }
    pthread_mutex_unlock(&svc->reload_mu);
    return rc;
}

/* ---- events and audit ---- */

static int
event_cb(void *arg, const struct scep_event_row *r)
{
    struct list_ctx *c = arg;
    json_t *o = json_object(), *payload;

    if (o == NULL) {
        c->nomem = 1;
        return 1;
    }
    jint(o, "id", r->id);
    jint(o, "created_at", r->created_at);
    jstr(o, "endpoint", endpoint_name_of(c->svc, r->endpoint_id));
    jstr(o, "kind", r->kind);
    jstr(o, "status", r->status);
    jint(o, "attempts", r->attempts);
    jint(o, "next_attempt_at", r->next_attempt_at);
    jint(o, "delivered_at", r->delivered_at);
    jstr(o, "last_error", r->last_error);
    payload = r->payload != NULL ? json_loads(r->payload, 0, NULL) : NULL;
    json_object_set_new(o, "payload",
                        payload != NULL ? payload : json_string(or_empty(r->payload)));
    json_array_append_new(c->arr, o);
    return 0;
}

enum scep_err
scep_service_describe_events(const struct scep_service *svc, const char *status, int limit,
                             char **json)
{
    struct list_ctx c = {svc, NULL, 0};

    *json = NULL;
    if ((c.arr = json_array()) == NULL)
        return SCEP_E_NOMEM;
    return list_finish(
        &c, scep_store_each_event(svc->store, given(status) ? status : NULL, limit, event_cb, &c),
        json);
}

static int
audit_cb(void *arg, const struct scep_audit_row *r)
{
    struct list_ctx *c = arg;
    json_t *o = json_object();

    if (o == NULL) {
        c->nomem = 1;
        return 1;
    }
    jint(o, "id", r->id);
    jint(o, "at", r->at);
    jstr(o, "actor", r->actor);
    jstr(o, "action", r->action);
    jstr(o, "object", r->object);
    jstr(o, "endpoint", r->endpoint);
    jstr(o, "outcome", r->outcome);
    jstr(o, "reason", r->reason);
    json_array_append_new(c->arr, o);
    return 0;
}

enum scep_err
scep_service_describe_audit(const struct scep_service *svc, int limit, char **json)
{
    struct list_ctx c = {svc, NULL, 0};

    *json = NULL;
    if ((c.arr = json_array()) == NULL)
        return SCEP_E_NOMEM;
    return list_finish(&c, scep_store_each_audit(svc->store, limit, audit_cb, &c), json);
}

/* ---- event delivery (the outbox) ---- */

struct due_event {
    int64_t id;
    int64_t endpoint_id;
    int attempts;
    char *payload;
};

struct due_ctx {
    struct due_event *v;
    size_t n, cap;
};

/* Copy the due rows: the network is only used after the store's iteration ended. */
static int
due_cb(void *arg, const struct scep_event_row *r)
{
    struct due_ctx *c = arg;
    struct due_event *d;

    if (c->n == c->cap)
        return 1;
    d = &c->v[c->n];
    if ((d->payload = strdup(r->payload != NULL ? r->payload : "{}")) == NULL)
        return 1;
    d->id = r->id;
    d->endpoint_id = r->endpoint_id;
    d->attempts = r->attempts;
    c->n++;
    return 0;
}

/* When to try again after a failed attempt number attempts+1; 0: never (dead). */
static int64_t
next_attempt(int attempts, int64_t now)
{
    int64_t wait = EVENT_BACKOFF_FIRST;
    int i;

    if (attempts + 1 >= EVENT_MAX_ATTEMPTS)
        return 0;
    for (i = 0; i < attempts && wait < EVENT_BACKOFF_MAX; i++)
        wait *= 2;
    return now + (wait < EVENT_BACKOFF_MAX ? wait : EVENT_BACKOFF_MAX);
}

int
scep_service_deliver_events(const struct scep_service *svc, int limit)
{
    struct due_ctx c;
    size_t i;
    int delivered = 0;
    enum scep_err rc;

    if (limit <= 0 || limit > EVENT_BATCH_MAX)
        limit = EVENT_BATCH_MAX;
    memset(&c, 0, sizeof(c));
    if ((c.v = calloc((size_t)limit, sizeof(*c.v))) == NULL)
        return 0;
    c.cap = (size_t)limit;
    rc = scep_store_due_events(svc->store, (int64_t)time(NULL), limit, due_cb, &c);
    if (rc != SCEP_OK && c.n < c.cap)
        scep_log(SCEP_LOG_WARN, "events", "reading due events failed err=%s collected=%zu",
                 scep_errname(rc), c.n);
    for (i = 0; i < c.n; i++) {
        struct due_event *d = &c.v[i];
        const struct scep_endpoint *ep = svc_endpoint_by_id(svc, d->endpoint_id);
        const char *name = ep != NULL ? ep->name : "?";
        char err[256], safe[300];
        int64_t next;
        int ok = 0;

        err[0] = '\0';
        if (ep == NULL || ep->notify_url[0] == '\0') {
            snprintf(err, sizeof(err), "the endpoint has no notify URL");
        } else if (!ep->has_notify_key) {
            snprintf(err, sizeof(err), "the endpoint's notify key %s/%s.notify is missing",
                     SCEP_SECRETS_DIR, ep->name);
        } else {
            struct scep_webhook_cfg cfg;
            memset(&cfg, 0, sizeof(cfg));
            cfg.url = ep->notify_url;
            cfg.hmac_key = ep->notify_key;
            cfg.hmac_key_len = sizeof(ep->notify_key);
            cfg.timeout_ms = EVENT_TIMEOUT_MS;
            ok = scep_webhook_deliver(&cfg, d->payload, err, sizeof(err)) == SCEP_OK;
        }
        next = ok ? 0 : next_attempt(d->attempts, (int64_t)time(NULL));
        rc = scep_store_event_result(svc->store, d->id, ok, next, ok ? NULL : err);
        scep_log_escape(safe, sizeof(safe), err, strlen(err));
        if (ok) {
            delivered++;
            scep_log(SCEP_LOG_INFO, "events", "event delivered id=%lld endpoint=%s attempt=%d",
                     (long long)d->id, name, d->attempts + 1);
        } else if (next == 0) {
            scep_log(SCEP_LOG_ERROR, "events",
                     "event given up (dead) id=%lld endpoint=%s attempts=%d error=%s",
                     (long long)d->id, name, d->attempts + 1, safe);
        } else {
            scep_log(SCEP_LOG_WARN, "events",
                     "event delivery failed id=%lld endpoint=%s attempt=%d retry_in=%llds "
                     "error=%s",
                     (long long)d->id, name, d->attempts + 1,
                     (long long)(next - (int64_t)time(NULL)), safe);
        }
        if (rc != SCEP_OK)
            scep_log(SCEP_LOG_ERROR, "events", "recording the outcome failed id=%lld err=%s",
                     (long long)d->id, scep_errname(rc));
        free(d->payload);
    }
    free(c.v);
    return delivered;
}
