/*
 * intune.c - the Microsoft Intune third-party CA contract (see intune.h),
 * as Microsoft's CsrValidation libraries speak it
 * (github.com/microsoft/Intune-Resource-Access, src/CsrValidation: the C#
 * IntuneScepValidator/IntuneClient/IntuneServiceLocationProvider and the
 * Java IntuneScepServiceClient/IntuneClient):
 *
 *   token      POST {login}/{tenant}/oauth2/token, form grant_type=
 *              client_credentials, client_id, client_secret, resource
 *              (the Graph URL + "/" for discovery, resource_url for Intune)
 *   discovery  GET {graph}/v1.0/servicePrincipals/appId=0000000a-0000-0000-
 *              c000-000000000000/endpoints -> {"value": [{"providerName",
 *              "uri"}, ...]} ("serviceName" in the older AAD Graph answer)
 *   actions    POST {uri}/ScepActions/validateRequest | successNotification
 *              | failureNotification with the headers Authorization:
 *              Bearer, client-request-id: <GUID>, api-version: 2018-02-20
 *              (a header, not a query parameter) and UserAgent: callerInfo;
 *              the answer {"code": "Success" | <error>, "errorDescription"}.
 *
 * Trusts the Graph answer for the service URI (over https) and the action
 * answer for its code; anything but code "Success" refuses.  Must never:
 * log or put in an error string the application key or a token; allow on
 * a time-out, an HTTP error or an answer without a code.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "scepd/httpc.h"
#include "scepd/intune.h"
#include "scepd/log.h"
#include "scepd/num.h"

#define INTUNE_APP_ID "0000000a-0000-0000-c000-000000000000"
#define SCEP_SERVICE_NAME "ScepRequestValidationFEService"
#define SCEP_SERVICE_VERSION "2018-02-20" /* DEFAULT_SERVICE_VERSION of the libraries */
#define GRAPH_VERSION "v1.0"
#define DEFAULT_LOGIN "https://login.microsoftonline.com"
#define DEFAULT_GRAPH "https://graph.microsoft.com"
#define DEFAULT_RESOURCE "https://api.manage.microsoft.com/"
#define DEFAULT_TIMEOUT_MS 10000
#define TOKEN_MAX 16384             /* an access token longer than this is refused */
#define TOKEN_MARGIN_S 60           /* a cached token is used until this long before it expires */
#define URI_MAX SCEP_INTUNE_URI_MAX /* discovered service URI */
#define DESC_MAX_CHARS 255          /* failureNotification errorDescription, per the libraries */
#define PROVIDER_DEFAULT "scepd"

struct token {
    char *tok;     /* owned, wiped when dropped; NULL when none */
    long long exp; /* monotonic seconds */
};

struct scep_intune {
    struct scep_intune_cfg cfg;
    char login[256], graph[256]; /* base URLs without a trailing '/' */
    char graph_resource[260];    /* graph + "/" */
    long timeout_ms;
    int graph_https; /* the discovered URI must be https too */
    pthread_mutex_t mu;
    /* under mu: */
    struct token graph_tok, intune_tok;
    char service[URI_MAX]; /* "" until discovered */
};

static long long
now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec;
}

static long long
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
free_wiped(char *s)
{
    if (s != NULL) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

static void
token_clear(struct token *t)
{
    free_wiped(t->tok);
    t->tok = NULL;
    t->exp = 0;
}

/* Printable ASCII only, no space: safe in a header and in a log line. */
static int
token_chars_ok(const char *s, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return 0;
    return 1;
}

/* A header value must not be able to start another header. */
static int
header_safe(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s == 0x7f)
            return 0;
    return 1;
}

/* A random (version 4) GUID, as the libraries' client-request-id. */
static enum scep_err
make_guid(char out[37])
{
    unsigned char r[16];

    if (RAND_bytes(r, sizeof(r)) != 1)
        return SCEP_E_INTERNAL;
    r[6] = (unsigned char)((r[6] & 0x0f) | 0x40);
    r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", r[0],
             r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13],
             r[14], r[15]);
    return SCEP_OK;
}

/* Appends s percent-encoded (application/x-www-form-urlencoded) at *o. */
static void
form_put(char *dst, size_t *o, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";

    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~') {
            dst[(*o)++] = (char)c;
        } else {
            dst[(*o)++] = '%';
            dst[(*o)++] = hex[c >> 4];
            dst[(*o)++] = hex[c & 15];
        }
    }
}

static void
httpc_opts(const struct scep_intune *in, struct scep_httpc_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->timeout_ms = in->timeout_ms;
    o->proxy = in->cfg.proxy;
    o->ca_file = in->cfg.ca_file;
}

/* Copies a cfg field (a fixed array) into dst without a trailing '/'. */
static enum scep_err
base_url(const char *field, size_t fieldlen, const char *dflt, char *dst, size_t dstlen)
{
    size_t n;

    if (memchr(field, '\0', fieldlen) == NULL)
        return SCEP_E_INVALID_ARG;
    if (field[0] == '\0')
        field = dflt;
    n = strlen(field);
    while (n > 0 && field[n - 1] == '/')
        n--;
    if (n == 0 || n >= dstlen)
        return SCEP_E_INVALID_ARG;
    memcpy(dst, field, n);
    dst[n] = '\0';
    return scep_httpc_url_ok(dst) && header_safe(dst) ? SCEP_OK : SCEP_E_INVALID_ARG;
}

enum scep_err
scep_intune_new(const struct scep_intune_cfg *cfg, struct scep_intune **out)
{
    enum scep_err rc = SCEP_E_INVALID_ARG;
    struct scep_intune *in = NULL;
    const char *p;
    int mu_ok = 0;

    *out = NULL;
    if (cfg == NULL)
        return SCEP_E_INVALID_ARG;
    if ((in = calloc(1, sizeof(*in))) == NULL)
        return SCEP_E_NOMEM;
    in->cfg = *cfg;
#define TERMINATED(f) (memchr(in->cfg.f, '\0', sizeof(in->cfg.f)) != NULL)
    if (!TERMINATED(tenant) || !TERMINATED(app_id) || !TERMINATED(app_key) ||
        !TERMINATED(provider) || !TERMINATED(proxy) || !TERMINATED(resource_url) ||
        !TERMINATED(ca_file))
        goto out;
#undef TERMINATED
    /* The tenant goes into a URL path: a domain name or a GUID. */
    if (in->cfg.tenant[0] == '\0')
        goto out;
    for (p = in->cfg.tenant; *p != '\0'; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '-'))
            goto out;
    if (in->cfg.app_id[0] == '\0' || in->cfg.app_key[0] == '\0')
        goto out;
    if (in->cfg.provider[0] == '\0')
        snprintf(in->cfg.provider, sizeof(in->cfg.provider), "%s", PROVIDER_DEFAULT);
    if (!header_safe(in->cfg.provider))
        goto out;
    if (in->cfg.resource_url[0] == '\0')
        snprintf(in->cfg.resource_url, sizeof(in->cfg.resource_url), "%s", DEFAULT_RESOURCE);
    if (base_url(cfg->login_url, sizeof(cfg->login_url), DEFAULT_LOGIN, in->login,
                 sizeof(in->login)) != SCEP_OK ||
        base_url(cfg->graph_url, sizeof(cfg->graph_url), DEFAULT_GRAPH, in->graph,
                 sizeof(in->graph)) != SCEP_OK)
        goto out;
    /* The Graph resource the libraries ask a token for: "https://graph.microsoft.com/". */
    snprintf(in->graph_resource, sizeof(in->graph_resource), "%s/", in->graph);
    in->graph_https = strncasecmp(in->graph, "https://", 8) == 0;
    in->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : DEFAULT_TIMEOUT_MS;
    if (pthread_mutex_init(&in->mu, NULL) != 0) {
        rc = SCEP_E_INTERNAL;
        goto out;
    }
    mu_ok = 1;
    *out = in;
    in = NULL; /* transferred */
    rc = SCEP_OK;
out:
    if (in != NULL) {
        if (mu_ok)
            pthread_mutex_destroy(&in->mu);
        OPENSSL_cleanse(in, sizeof(*in));
        free(in);
    }
    return rc;
}

void
scep_intune_free(struct scep_intune *in)
{
    if (in == NULL)
        return;
    token_clear(&in->graph_tok);
    token_clear(&in->intune_tok);
    pthread_mutex_destroy(&in->mu);
    OPENSSL_cleanse(in, sizeof(*in));
    free(in);
}

enum scep_err
scep_intune_parse_token(const char *body, size_t len, long status, char **tok, long long *ttl,
                        char *why, size_t whylen)
{
    enum scep_err rc = SCEP_E_VALIDATOR;
    json_t *ans, *v;
    json_error_t jerr;
    char ecode[64];
    long long n = 0;

    *tok = NULL;
    *ttl = 0;
    ans = json_loadb(body, len, 0, &jerr);
    if (status != 200) {
        /* AAD says why in "error" (invalid_client, ...); never echo the rest. */
        v = json_is_object(ans) ? json_object_get(ans, "error") : NULL;
        if (json_is_string(v))
            scep_httpc_printable(ecode, sizeof(ecode), json_string_value(v), json_string_length(v));
        else
            ecode[0] = '\0';
        scep_errbuf(why, whylen, "token: HTTP %ld%s%s", status, ecode[0] ? " " : "", ecode);
        goto out;
    }
    if (!json_is_object(ans)) {
        scep_errbuf(why, whylen, "token: answer is not a JSON object");
        goto out;
    }
    v = json_object_get(ans, "access_token");
    if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > TOKEN_MAX ||
        !token_chars_ok(json_string_value(v), json_string_length(v))) {
        scep_errbuf(why, whylen, "token: no usable access_token in the answer");
        goto out;
    }
    if ((*tok = strdup(json_string_value(v))) == NULL) {
        scep_errbuf(why, whylen, "token: out of memory");
        goto out;
    }
    /* The v1 endpoint sends expires_in as a string ("3599"), v2 as a number. */
    v = json_object_get(ans, "expires_in");
    if (json_is_integer(v))
        n = (long long)json_integer_value(v);
    else if (!json_is_string(v) ||
             scep_strtonum(json_string_value(v), 0, 366LL * 86400, &n) != SCEP_OK)
        n = 0; /* usable now, never cached */
    *ttl = n < 0 ? 0 : n;
    rc = SCEP_OK;
out:
    json_decref(ans);
    return rc;
}

/*
 * The client-credentials grant for resource.  On SCEP_OK *tok is the
 * access token (owned, wipe it) and *ttl its lifetime in seconds.
 */
static enum scep_err
token_fetch(struct scep_intune *in, const char *resource, char **tok, long long *ttl, char *why,
            size_t whylen)
{
    enum scep_err rc = SCEP_E_VALIDATOR;
    struct scep_httpc_opts o;
    struct scep_httpc_resp resp = {0, NULL, 0};
    char url[512], reqid[37], reqhdr[64], err[128];
    const char *hdrs[4];
    char *form = NULL;
    size_t flen, fo = 0;
    int ul;

    *tok = NULL;
    *ttl = 0;
    ul = snprintf(url, sizeof(url), "%s/%s/oauth2/token", in->login, in->cfg.tenant);
    if (ul < 0 || (size_t)ul >= sizeof(url) || make_guid(reqid) != SCEP_OK) {
        scep_errbuf(why, whylen, "token: internal error");
        return SCEP_E_VALIDATOR;
    }
    flen = 3 * (strlen(in->cfg.app_id) + strlen(in->cfg.app_key) + strlen(resource)) + 128;
    if ((form = malloc(flen)) == NULL) {
        scep_errbuf(why, whylen, "token: out of memory");
        return SCEP_E_VALIDATOR;
    }
    memcpy(form, "grant_type=client_credentials&client_id=", 40);
    fo = 40;
    form_put(form, &fo, in->cfg.app_id);
    memcpy(form + fo, "&client_secret=", 15);
    fo += 15;
    form_put(form, &fo, in->cfg.app_key);
    memcpy(form + fo, "&resource=", 10);
    fo += 10;
    form_put(form, &fo, resource);
    form[fo] = '\0';

    snprintf(reqhdr, sizeof(reqhdr), "client-request-id: %s", reqid);
    hdrs[0] = "Content-Type: application/x-www-form-urlencoded";
    hdrs[1] = "Accept: application/json";
    hdrs[2] = reqhdr;
    hdrs[3] = NULL;
    httpc_opts(in, &o);
    if (scep_httpc_request(&o, "POST", url, hdrs, form, fo, &resp, err, sizeof(err)) != SCEP_OK) {
        scep_errbuf(why, whylen, "token: %s", err);
        goto out;
    }
    if (scep_intune_parse_token((const char *)resp.body, resp.len, resp.status, tok, ttl, why,
                                whylen) != SCEP_OK)
        goto out;
    scep_log(SCEP_LOG_INFO, "intune", "token acquired resource=%s expires_in=%lld request_id=%s",
             resource, *ttl, reqid);
    rc = SCEP_OK;
out:
    if (rc != SCEP_OK) {
        free_wiped(*tok);
        *tok = NULL;
    }
    scep_httpc_resp_clear(&resp);
    OPENSSL_cleanse(form, flen);
    free(form);
    return rc;
}

/*
 * A copy of the token for resource in *out (owned, wipe it), from the cache
 * when it has more than TOKEN_MARGIN_S to live.  Caller holds in->mu: one
 * fetch at a time, so a burst of requests after expiry costs one token
 * request, not one per thread.
 */
static enum scep_err
token_get_locked(struct scep_intune *in, struct token *slot, const char *resource, char **out,
                 char *why, size_t whylen)
{
    enum scep_err rc;
    char *tok = NULL;
    long long ttl = 0;

    *out = NULL;
    if (slot->tok != NULL && now_s() + TOKEN_MARGIN_S < slot->exp) {
        if ((*out = strdup(slot->tok)) == NULL) {
            scep_errbuf(why, whylen, "token: out of memory");
            return SCEP_E_VALIDATOR;
        }
        return SCEP_OK;
    }
    token_clear(slot);
    if ((rc = token_fetch(in, resource, &tok, &ttl, why, whylen)) != SCEP_OK)
        return rc;
    if ((*out = strdup(tok)) == NULL) {
        free_wiped(tok);
        scep_errbuf(why, whylen, "token: out of memory");
        return SCEP_E_VALIDATOR;
    }
    slot->tok = tok; /* transferred */
    slot->exp = now_s() + ttl;
    return SCEP_OK;
}

/* Drops the cached token of slot if it is still tok (another thread may have renewed it). */
static void
token_drop(struct scep_intune *in, struct token *slot, const char *tok)
{
    pthread_mutex_lock(&in->mu);
    if (slot->tok != NULL && tok != NULL && strcmp(slot->tok, tok) == 0)
        token_clear(slot);
    pthread_mutex_unlock(&in->mu);
}

static void
service_forget(struct scep_intune *in)
{
    pthread_mutex_lock(&in->mu);
    in->service[0] = '\0';
    pthread_mutex_unlock(&in->mu);
}

enum scep_err
scep_intune_parse_discovery(const char *body, size_t len, int https_only, char *uri, size_t urilen,
                            char *why, size_t whylen)
{
    enum scep_err rc = SCEP_E_VALIDATOR;
    json_t *ans, *list, *e, *name, *u;
    json_error_t jerr;
    size_t i, n;

    if (urilen > 0)
        uri[0] = '\0';
    ans = json_loadb(body, len, 0, &jerr);
    list = json_is_object(ans) ? json_object_get(ans, "value") : NULL;
    if (!json_is_array(list)) {
        scep_errbuf(why, whylen, "discovery: answer has no \"value\" array");
        goto out;
    }
    json_array_foreach(list, i, e)
    {
        /* Microsoft Graph names the service providerName, AAD Graph serviceName. */
        name = json_object_get(e, "providerName");
        if (!json_is_string(name))
            name = json_object_get(e, "serviceName");
        if (!json_is_string(name) || strcasecmp(json_string_value(name), SCEP_SERVICE_NAME) != 0)
            continue;
        u = json_object_get(e, "uri");
        if (!json_is_string(u))
            continue;
        n = json_string_length(u);
        while (n > 0 && json_string_value(u)[n - 1] == '/')
            n--;
        if (n == 0 || n >= urilen || !token_chars_ok(json_string_value(u), n)) {
            scep_errbuf(why, whylen, "discovery: unusable URI for %s", SCEP_SERVICE_NAME);
            goto out;
        }
        memcpy(uri, json_string_value(u), n);
        uri[n] = '\0';
        /*
         * The scheme is checked on what is kept, not on the answer:
         * "https:///" is "https:" once its trailing '/'s are gone (found by
         * fuzz_answers).
         */
        if (!scep_httpc_url_ok(uri) || (https_only && strncasecmp(uri, "https://", 8) != 0)) {
            uri[0] = '\0';
            scep_errbuf(why, whylen, "discovery: unusable URI for %s", SCEP_SERVICE_NAME);
            goto out;
        }
        rc = SCEP_OK;
        goto out;
    }
    scep_errbuf(why, whylen, "discovery: %s is not among the Intune endpoints", SCEP_SERVICE_NAME);
out:
    json_decref(ans);
    return rc;
}

/* The service URI into uri (URI_MAX), discovered once and cached. */
static enum scep_err
service_get(struct scep_intune *in, char *uri, char *why, size_t whylen)
{
    enum scep_err rc = SCEP_E_VALIDATOR;
    struct scep_httpc_opts o;
    struct scep_httpc_resp resp = {0, NULL, 0};
    char url[512], reqid[37], reqhdr[64], err[128], esc[URI_MAX];
    char *tok = NULL, *auth = NULL;
    const char *hdrs[4];
    size_t alen = 0;
    int attempt, ul;

    pthread_mutex_lock(&in->mu);
    if (in->service[0] != '\0') {
        memcpy(uri, in->service, URI_MAX);
        rc = SCEP_OK;
        goto out;
    }
    ul = snprintf(url, sizeof(url), "%s/%s/servicePrincipals/appId=%s/endpoints", in->graph,
                  GRAPH_VERSION, INTUNE_APP_ID);
    if (ul < 0 || (size_t)ul >= sizeof(url)) {
        scep_errbuf(why, whylen, "discovery: Graph URL too long");
        goto out;
    }
    httpc_opts(in, &o);
    for (attempt = 0; attempt < 2; attempt++) {
        if (token_get_locked(in, &in->graph_tok, in->graph_resource, &tok, why, whylen) !=
                SCEP_OK ||
            make_guid(reqid) != SCEP_OK)
            goto out;
        alen = strlen(tok) + sizeof("Authorization: Bearer ");
        if ((auth = malloc(alen)) == NULL) {
            scep_errbuf(why, whylen, "discovery: out of memory");
            goto out;
        }
        snprintf(auth, alen, "Authorization: Bearer %s", tok);
        snprintf(reqhdr, sizeof(reqhdr), "client-request-id: %s", reqid);
        hdrs[0] = auth;
        hdrs[1] = reqhdr;
        hdrs[2] = "Accept: application/json";
        hdrs[3] = NULL;
        if (scep_httpc_request(&o, "GET", url, hdrs, NULL, 0, &resp, err, sizeof(err)) != SCEP_OK) {
            scep_errbuf(why, whylen, "discovery: %s", err);
            goto out;
        }
        if (resp.status == 401 && attempt == 0) {
            /* The cached Graph token was refused: drop it and ask for a new one once. */
            token_clear(&in->graph_tok);
            scep_httpc_resp_clear(&resp);
            free_wiped(tok);
            tok = NULL;
            OPENSSL_cleanse(auth, alen);
            free(auth);
            auth = NULL;
            continue;
        }
        break;
    }
    if (resp.status != 200) {
        scep_errbuf(why, whylen, "discovery: HTTP %ld", resp.status);
        goto out;
    }
    if (scep_intune_parse_discovery((const char *)resp.body, resp.len, in->graph_https, in->service,
                                    sizeof(in->service), why, whylen) != SCEP_OK)
        goto out;
    memcpy(uri, in->service, URI_MAX);
    scep_log_escape(esc, sizeof(esc), uri, strlen(uri));
    scep_log(SCEP_LOG_INFO, "intune", "discovered service=%s uri=%s request_id=%s",
             SCEP_SERVICE_NAME, esc, reqid);
    rc = SCEP_OK;
out:
    pthread_mutex_unlock(&in->mu);
    scep_httpc_resp_clear(&resp);
    free_wiped(tok);
    if (auth != NULL) {
        OPENSSL_cleanse(auth, alen);
        free(auth);
    }
    return rc;
}

enum scep_err
scep_intune_parse_action(const char *body, size_t len, char *code, size_t codelen, char *desc,
                         size_t desclen)
{
    enum scep_err rc = SCEP_E_VALIDATOR;
    json_t *ans, *c, *d;
    json_error_t jerr;

    code[0] = desc[0] = '\0';
    ans = json_loadb(body, len, 0, &jerr);
    c = json_is_object(ans) ? json_object_get(ans, "code") : NULL;
    if (!json_is_string(c) || json_string_length(c) == 0)
        goto out;
    scep_httpc_printable(code, codelen, json_string_value(c), json_string_length(c));
    d = json_object_get(ans, "errorDescription");
    if (json_is_string(d))
        scep_httpc_printable(desc, desclen, json_string_value(d), json_string_length(d));
    rc = SCEP_OK;
out:
    json_decref(ans);
    return rc;
}

/*
 * POST body to {service}/ScepActions/{op}.  SCEP_OK when the service
 * answered 2xx with a JSON object holding a string "code" (copied into
 * code, errorDescription into desc, both made printable); SCEP_E_VALIDATOR
 * with why otherwise.  An HTTP 401 drops the cached Intune token and
 * retries once with a new one.
 */
static enum scep_err
action(struct scep_intune *in, const char *op, const char *txid, json_t *body, char *code,
       size_t codelen, char *desc, size_t desclen, char *why, size_t whylen)
{
    enum scep_err rc = SCEP_E_VALIDATOR;
    struct scep_httpc_opts o;
    struct scep_httpc_resp resp = {0, NULL, 0};
    char uri[URI_MAX], url[URI_MAX + 64], reqid[37], reqhdr[64], err[128], etx[80];
    char uahdr[sizeof(in->cfg.provider) + 16];
    char *tok = NULL, *auth = NULL, *js = NULL;
    const char *hdrs[7];
    size_t alen = 0;
    long long t0 = now_ms();
    int attempt;

    code[0] = desc[0] = '\0';
    reqid[0] = '\0';
    if ((js = json_dumps(body, JSON_COMPACT)) == NULL) {
        scep_errbuf(why, whylen, "%s: cannot encode the request as JSON", op);
        goto out;
    }
    httpc_opts(in, &o);
    snprintf(uahdr, sizeof(uahdr), "UserAgent: %s", in->cfg.provider);
    for (attempt = 0; attempt < 2; attempt++) {
        if (service_get(in, uri, why, whylen) != SCEP_OK)
            goto out;
        pthread_mutex_lock(&in->mu);
        rc = token_get_locked(in, &in->intune_tok, in->cfg.resource_url, &tok, why, whylen);
        pthread_mutex_unlock(&in->mu);
        if (rc != SCEP_OK) {
            rc = SCEP_E_VALIDATOR;
            goto out;
        }
        rc = SCEP_E_VALIDATOR;
        if (make_guid(reqid) != SCEP_OK) {
            scep_errbuf(why, whylen, "%s: internal error", op);
            goto out;
        }
        snprintf(url, sizeof(url), "%s/ScepActions/%s", uri, op);
        alen = strlen(tok) + sizeof("Authorization: Bearer ");
        if ((auth = malloc(alen)) == NULL) {
            scep_errbuf(why, whylen, "%s: out of memory", op);
            goto out;
        }
        snprintf(auth, alen, "Authorization: Bearer %s", tok);
        snprintf(reqhdr, sizeof(reqhdr), "client-request-id: %s", reqid);
        hdrs[0] = auth;
        hdrs[1] = "Content-Type: application/json";
        hdrs[2] = reqhdr;
        hdrs[3] = "api-version: " SCEP_SERVICE_VERSION;
        hdrs[4] = uahdr; /* the Java library's callerInfo header */
        hdrs[5] = "Accept: application/json";
        hdrs[6] = NULL;
        if (scep_httpc_request(&o, "POST", url, hdrs, js, strlen(js), &resp, err, sizeof(err)) !=
            SCEP_OK) {
            /* The libraries forget the service location when it cannot be reached. */
            service_forget(in);
            scep_errbuf(why, whylen, "%s: %s", op, err);
            goto out;
        }
        OPENSSL_cleanse(auth, alen);
        free(auth);
        auth = NULL;
        if (resp.status == 401 && attempt == 0) {
            scep_log(SCEP_LOG_WARN, "intune",
                     "op=%s token refused (HTTP 401), renewing request_id=%s", op, reqid);
            token_drop(in, &in->intune_tok, tok);
            free_wiped(tok);
            tok = NULL;
            scep_httpc_resp_clear(&resp);
            continue;
        }
        break;
    }
    if (resp.status < 200 || resp.status > 299) {
        if (resp.status != 401)
            service_forget(in);
        scep_errbuf(why, whylen, "%s: HTTP %ld", op, resp.status);
        goto out;
    }
    if (scep_intune_parse_action((const char *)resp.body, resp.len, code, codelen, desc, desclen) !=
        SCEP_OK) {
        scep_errbuf(why, whylen, "%s: the answer is not a JSON object with a \"code\"", op);
        goto out;
    }
    rc = SCEP_OK;
out:
    scep_log_escape(etx, sizeof(etx), txid, strlen(txid));
    if (rc == SCEP_OK)
        scep_log(strcmp(code, "Success") == 0 ? SCEP_LOG_INFO : SCEP_LOG_WARN, "intune",
                 "op=%s txid=%s code=%s request_id=%s ms=%lld", op, etx, code, reqid,
                 now_ms() - t0);
    else
        scep_log(SCEP_LOG_WARN, "intune", "op=%s txid=%s failed why=\"%s\" request_id=%s ms=%lld",
                 op, etx, why != NULL && whylen > 0 ? why : "", reqid, now_ms() - t0);
    scep_httpc_resp_clear(&resp);
    free_wiped(tok);
    if (auth != NULL) {
        OPENSSL_cleanse(auth, alen);
        free(auth);
    }
    free(js);
    return rc;
}

static int
nonempty(const char *s)
{
    return s != NULL && s[0] != '\0';
}

/*
 * One ScepActions call with body (consumed): on_fail when it cannot be
 * made or answered, on_code when the answer's code is not "Success".
 */
static enum scep_err
ask(struct scep_intune *in, const char *name, const char *txid, json_t *body, enum scep_err on_fail,
    enum scep_err on_code, char *why, size_t whylen)
{
    char code[64], desc[256];
    enum scep_err rc;

    if (body == NULL) {
        scep_errbuf(why, whylen, "%s: cannot encode the request as JSON", name);
        return on_fail;
    }
    rc = action(in, name, txid, body, code, sizeof(code), desc, sizeof(desc), why, whylen);
    json_decref(body);
    if (rc != SCEP_OK)
        return on_fail;
    if (strcmp(code, "Success") == 0)
        return SCEP_OK;
    scep_errbuf(why, whylen, "%s: %s", code, desc);
    return on_code;
}

enum scep_err
scep_intune_validate(struct scep_intune *in, const char *txid, const char *csr_b64, char *why,
                     size_t whylen)
{
    json_t *body;

    scep_errbuf(why, whylen, "%s", "");
    if (in == NULL || !nonempty(txid) || !nonempty(csr_b64))
        return SCEP_E_INVALID_ARG;
    body = json_pack("{s:{s:s, s:s, s:s}}", "request", "transactionId", txid, "certificateRequest",
                     csr_b64, "callerInfo", in->cfg.provider);
    return ask(in, "validateRequest", txid, body, SCEP_E_VALIDATOR, SCEP_E_DENIED, why, whylen);
}

enum scep_err
scep_intune_success(struct scep_intune *in, const char *txid, const char *csr_b64,
                    const char *thumbprint, const char *serial, const char *expiration,
                    const char *issuer, char *why, size_t whylen)
{
    json_t *body;

    scep_errbuf(why, whylen, "%s", "");
    if (in == NULL || !nonempty(txid) || !nonempty(csr_b64) || !nonempty(thumbprint) ||
        !nonempty(serial) || !nonempty(expiration) || !nonempty(issuer))
        return SCEP_E_INVALID_ARG;
    /* The libraries name the expiration "certificateExpirationDateUtc". */
    body = json_pack("{s:{s:s, s:s, s:s, s:s, s:s, s:s, s:s}}", "notification", "transactionId",
                     txid, "certificateRequest", csr_b64, "certificateThumbprint", thumbprint,
                     "certificateSerialNumber", serial, "certificateExpirationDateUtc", expiration,
                     "issuingCertificateAuthority", issuer, "callerInfo", in->cfg.provider);
    return ask(in, "successNotification", txid, body, SCEP_E_NOTIFY, SCEP_E_NOTIFY, why, whylen);
}

/*
 * The first max characters of s as valid UTF-8 into dst (4 * max + 1
 * bytes): a byte that does not start a well-formed sequence becomes '?'.
 */
static void
utf8_cut(const char *s, size_t max, char *dst)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t chars = 0, o = 0, len, k;
    unsigned int cp;

    while (*p != '\0' && chars < max) {
        if (*p < 0x80) {
            dst[o++] = (char)*p++;
            chars++;
            continue;
        }
        if (*p >= 0xc2 && *p <= 0xdf)
            len = 2, cp = *p & 0x1f;
        else if (*p >= 0xe0 && *p <= 0xef)
            len = 3, cp = *p & 0x0f;
        else if (*p >= 0xf0 && *p <= 0xf4)
            len = 4, cp = *p & 0x07;
        else
            len = 0, cp = 0;
        for (k = 1; k < len; k++) {
            if ((p[k] & 0xc0) != 0x80)
                break;
            cp = (cp << 6) | (p[k] & 0x3f);
        }
        /* reject truncated, overlong, surrogate and out-of-range sequences */
        if (len == 0 || k < len || (len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
            (len == 4 && (cp < 0x10000 || cp > 0x10ffff))) {
            dst[o++] = '?';
            p++;
        } else {
            memcpy(dst + o, p, len);
            o += len;
            p += len;
        }
        chars++;
    }
    dst[o] = '\0';
}

enum scep_err
scep_intune_failure(struct scep_intune *in, const char *txid, const char *csr_b64, long hresult,
                    const char *description, char *why, size_t whylen)
{
    json_t *body;
    char cut[4 * DESC_MAX_CHARS + 1];

    scep_errbuf(why, whylen, "%s", "");
    if (in == NULL || !nonempty(txid) || !nonempty(csr_b64))
        return SCEP_E_INVALID_ARG;
    /* The libraries refuse an empty description; Intune shows at most 255 characters. */
    utf8_cut(nonempty(description) ? description : "failed", DESC_MAX_CHARS, cut);
    body = json_pack("{s:{s:s, s:s, s:I, s:s, s:s}}", "notification", "transactionId", txid,
                     "certificateRequest", csr_b64, "hResult", (json_int_t)hresult,
                     "errorDescription", cut, "callerInfo", in->cfg.provider);
    return ask(in, "failureNotification", txid, body, SCEP_E_NOTIFY, SCEP_E_NOTIFY, why, whylen);
}
