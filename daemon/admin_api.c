/*
 * admin_api.c - the operator API of a running scepd, on a unix socket in
 * the data directory (DIR/admin.sock, mode 0600), each request carrying
 * "Authorization: Bearer <DIR/admin.token>".  docs/admin-api.md lists
 * every route with its body, answer and errors:
 *
 *   /v1/health  /v1/certs[/SERIAL/revoke]  /v1/requests[/ID/approve|reject]
 *   /v1/ca[/rollover|/switch]  /v1/profiles[/NAME]  /v1/events  /v1/audit
 *   /v1/endpoints[/NAME[/enable|/disable|/challenges|/tokens
 *                       |/accounts[/ACC/enable|disable|rotate-code]]]
 *
 * It trusts the token holder (the operator) and nothing else: every route
 * needs the token, compared in constant time and never logged.  Bodies are
 * capped, parsed with jansson and checked field by field; the changes
 * themselves are made and audited by lib/service_admin.c with the actor
 * "admin(uid=N)" (the socket peer).  It must never log a secret (static
 * challenge, access code, one-time challenge, token, HMAC key, bearer,
 * Intune key): those travel only in request and reply bodies, which are
 * wiped when freed.  It never decrypts a client-supplied message (matrix A10).
 */
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <microhttpd.h>
#include <openssl/crypto.h>
#include <openssl/x509v3.h>

#include "daemon.h"
#include "scepd/crl.h"
#include "scepd/issue.h"
#include "scepd/log.h"
#include "scepd/num.h"
#include "scepd/pki.h"
#include "scepd/policy.h"
#include "scepd/setup.h"
#include "scepd/store.h"
#include "scepd/token.h"

/* Largest request body: an endpoint with every URL and secret at its maximum fits. */
#define ADMIN_MAX_BODY 16384
/* Path segments of the longest route: v1/endpoints/NAME/accounts/ACC/OP. */
#define ADMIN_MAX_SEGS 6

struct scep_admin {
    struct MHD_Daemon *d;
    struct scep_service *svc;
    char token[128];
    size_t token_len;
    char sock_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    int fd;
};

/* One request: its body (wiped when freed), who sent it, what it was answered. */
struct admin_req {
    struct scep_admin *a;
    struct MHD_Connection *c;
    const char *method;
    char actor[48];
    unsigned status;
    size_t len;
    int overflow;
    char d[ADMIN_MAX_BODY];
};

/* Reply bodies may carry one-time secrets: wipe them when MHD is done. */
static void
free_reply_text(void *p)
{
    if (p != NULL)
        OPENSSL_cleanse(p, strlen(p));
    free(p);
}

/* Queue body (consumed) as the JSON answer. */
static enum MHD_Result
reply_json(struct admin_req *r, unsigned status, json_t *body)
{
    char *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    struct MHD_Response *resp;
    enum MHD_Result ret;

    json_decref(body);
    if (text == NULL)
        return MHD_NO;
    resp = MHD_create_response_from_buffer_with_free_callback(strlen(text), text, free_reply_text);
    if (resp == NULL) {
        free_reply_text(text);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    r->status = status;
    ret = MHD_queue_response(r->c, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result
reply_error(struct admin_req *r, unsigned status, const char *msg)
{
    return reply_json(r, status, json_pack("{s:s}", "error", msg));
}

static enum MHD_Result
reply_405(struct admin_req *r, const char *allowed)
{
    char msg[96];

    snprintf(msg, sizeof(msg), "method %s not allowed here; use %s", r->method, allowed);
    return reply_error(r, MHD_HTTP_METHOD_NOT_ALLOWED, msg);
}

/* The HTTP status of a failed service call (docs/admin-api.md, "Errors"). */
static unsigned
service_status(enum scep_err rc)
{
    switch (rc) {
    case SCEP_E_INVALID_ARG:
        return MHD_HTTP_BAD_REQUEST;
    case SCEP_E_NO_ENTRY:
        return MHD_HTTP_NOT_FOUND;
    case SCEP_E_CONFLICT:
    case SCEP_E_EXISTS:
        return MHD_HTTP_CONFLICT;
    case SCEP_E_CHALLENGE_CAP:
        return MHD_HTTP_TOO_MANY_REQUESTS;
    case SCEP_E_TOO_LARGE:
        return MHD_HTTP_CONTENT_TOO_LARGE;
    default:
        return scep_errcat(rc) == SCEP_CAT_HTTP503 ? MHD_HTTP_SERVICE_UNAVAILABLE
                                                   : MHD_HTTP_INTERNAL_SERVER_ERROR;
    }
}

static enum MHD_Result
reply_service_error(struct admin_req *r, enum scep_err rc, const char *err)
{
    return reply_error(r, service_status(rc), err != NULL && err[0] ? err : scep_strerror(rc));
}

static int
authorized(const struct scep_admin *a, struct MHD_Connection *c)
{
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    size_t n;

    if (h == NULL || strncmp(h, "Bearer ", 7) != 0)
        return 0;
    h += 7;
    n = strlen(h);
    return n == a->token_len && CRYPTO_memcmp(h, a->token, n) == 0;
}

/* "admin(uid=N)" from the socket peer's credentials, "admin" when unknown. */
static void
peer_actor(struct MHD_Connection *c, char *out, size_t len)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    struct ucred uc;
    socklen_t sl = sizeof(uc);

    if (ci != NULL && getsockopt(ci->connect_fd, SOL_SOCKET, SO_PEERCRED, &uc, &sl) == 0 &&
        sl == sizeof(uc))
        snprintf(out, len, "admin(uid=%u)", (unsigned)uc.uid);
    else
        snprintf(out, len, "admin");
}

/*
 * The body as a JSON object (an empty body is {}).  NULL after replying
 * 400 (*ret holds the reply).
 */
static json_t *
body_object(struct admin_req *r, enum MHD_Result *ret)
{
    json_error_t jerr;
    json_t *j;
    char msg[256];

    if (r->len == 0)
        return json_object();
    j = json_loadb(r->d, r->len, JSON_REJECT_DUPLICATES, &jerr);
    if (j != NULL && json_is_object(j))
        return j;
    if (j == NULL)
        snprintf(msg, sizeof(msg), "the body is not JSON (%s at line %d column %d)", jerr.text,
                 jerr.line, jerr.column);
    else
        snprintf(msg, sizeof(msg), "the body must be a JSON object");
    json_decref(j);
    *ret = reply_error(r, MHD_HTTP_BAD_REQUEST, msg);
    return NULL;
}

/* ---- typed fields of a body (table-driven, so every error names its field) ---- */

enum ftype { F_STR, F_INT, F_LONG, F_BOOL, F_LIST };

struct field {
    const char *key;
    enum ftype type;
    size_t off;  /* in the struct being filled */
    size_t size; /* F_STR, F_LIST: the buffer */
    long long min, max;
};

#define FSTR(st, k, m)                                                                             \
    {                                                                                              \
        k, F_STR, offsetof(st, m), sizeof(((st *)0)->m), 0, 0                                      \
    }
#define FLIST(st, k, m)                                                                            \
    {                                                                                              \
        k, F_LIST, offsetof(st, m), sizeof(((st *)0)->m), 0, 0                                     \
    }
#define FINT(st, k, m, lo, hi)                                                                     \
    {                                                                                              \
        k, F_INT, offsetof(st, m), 0, lo, hi                                                       \
    }
#define FLONG(st, k, m, lo, hi)                                                                    \
    {                                                                                              \
        k, F_LONG, offsetof(st, m), 0, lo, hi                                                      \
    }
#define FBOOL(st, k, m)                                                                            \
    {                                                                                              \
        k, F_BOOL, offsetof(st, m), 0, 0, 1                                                        \
    }

/*
 * Copy each field of tbl present (and not null) in obj into base.  Keys
 * neither in tbl nor in extra are refused, so a misspelt field is not
 * silently ignored.  prefix names a nested object in messages ("intune.").
 * 0 ok; -1 with err naming the field.
 */
static int
fill_fields(const json_t *obj, const struct field *tbl, size_t n, void *base,
            const char *const *extra, const char *prefix, char *err, size_t errlen)
{
    const char *key;
    json_t *v;
    size_t i;

    json_object_foreach((json_t *)(uintptr_t)obj, key, v)
    {
        const char *const *x;
        int known = 0;
        for (i = 0; i < n && !known; i++)
            known = strcmp(tbl[i].key, key) == 0;
        for (x = extra; x != NULL && *x != NULL && !known; x++)
            known = strcmp(*x, key) == 0;
        if (!known) {
            char k[80];
            scep_log_escape(k, sizeof(k), key, strlen(key));
            snprintf(err, errlen, "unknown field \"%s%s\"; docs/admin-api.md lists the fields",
                     prefix, k);
            return -1;
        }
    }
    for (i = 0; i < n; i++) {
        const struct field *f = &tbl[i];
        char *dst = (char *)base + f->off;
        json_int_t iv;

        v = json_object_get(obj, f->key);
        if (v == NULL || json_is_null(v))
            continue;
        switch (f->type) {
        case F_STR:
            if (!json_is_string(v)) {
                snprintf(err, errlen, "%s%s must be a string", prefix, f->key);
                return -1;
            }
            if (json_string_length(v) >= f->size) {
                snprintf(err, errlen, "%s%s: at most %zu characters", prefix, f->key, f->size - 1);
                return -1;
            }
            memcpy(dst, json_string_value(v), json_string_length(v) + 1);
            break;
        case F_LIST: {
            /* "a,b" or ["a", "b"]: stored comma-separated */
            size_t j, used = 0;
            json_t *it;
            if (json_is_string(v)) {
                if (json_string_length(v) >= f->size) {
                    snprintf(err, errlen, "%s%s: at most %zu characters", prefix, f->key,
                             f->size - 1);
                    return -1;
                }
                memcpy(dst, json_string_value(v), json_string_length(v) + 1);
                break;
            }
            if (!json_is_array(v)) {
                snprintf(err, errlen, "%s%s must be a string (comma-separated) or a list", prefix,
                         f->key);
                return -1;
            }
            dst[0] = '\0';
            json_array_foreach(v, j, it)
            {
                size_t l = json_is_string(it) ? json_string_length(it) : 0;
                if (!json_is_string(it) || strchr(json_string_value(it), ',') != NULL) {
                    snprintf(err, errlen, "%s%s: every item must be a string without commas",
                             prefix, f->key);
                    return -1;
                }
                if (used + (j > 0) + l >= f->size) {
                    snprintf(err, errlen, "%s%s: at most %zu characters in all", prefix, f->key,
                             f->size - 1);
                    return -1;
                }
                if (j > 0)
                    dst[used++] = ',';
                memcpy(dst + used, json_string_value(it), l + 1);
                used += l;
            }
            break;
        }
        case F_INT:
        case F_LONG:
            iv = json_is_integer(v) ? json_integer_value(v) : 0;
            if (!json_is_integer(v) || iv < f->min || iv > f->max) {
                snprintf(err, errlen, "%s%s must be a whole number from %lld to %lld", prefix,
                         f->key, f->min, f->max);
                return -1;
            }
            if (f->type == F_INT)
                *(int *)(void *)dst = (int)iv;
            else
                *(long *)(void *)dst = (long)iv;
            break;
        case F_BOOL:
            if (!json_is_boolean(v)) {
                snprintf(err, errlen, "%s%s must be true or false", prefix, f->key);
                return -1;
            }
            *(int *)(void *)dst = json_is_true(v);
            break;
        }
    }
    return 0;
}

/* ---- certificates, requests, CAs (routes of the first release) ---- */

static int
cert_to_json(void *arg, const struct scep_cert_row *row)
{
    json_t *arr = arg, *sans = json_array(), *o;
    const char *p = row->sans ? row->sans : "";

    /* The store keeps SANs as "DNS:a, email:b"; the API gives a list. */
    while (*p != '\0') {
        const char *e = strstr(p, ", ");
        size_t n = e ? (size_t)(e - p) : strlen(p);
        json_array_append_new(sans, json_stringn(p, n));
        p += n;
        if (e)
            p += 2;
    }
    o = json_pack("{s:s, s:s, s:o, s:I, s:I, s:s, s:s, s:s, s:I}", "serial", row->serial, "subject",
                  row->subject ? row->subject : "", "sans", sans, "not_before",
                  (json_int_t)row->not_before, "not_after", (json_int_t)row->not_after, "sha1",
                  row->sha1, "sha256", row->sha256, "status", row->status ? row->status : "",
                  "endpoint_id", (json_int_t)row->endpoint_id);
    if (o == NULL)
        return 1;
    return json_array_append_new(arr, o) != 0;
}

static const char *
req_status_text(enum scep_req_status st)
{
    switch (st) {
    case SCEP_REQ_ISSUED:
        return "issued";
    case SCEP_REQ_PENDING:
        return "pending";
    case SCEP_REQ_REJECTED:
        return "rejected";
    case SCEP_REQ_FAILED:
        return "failed";
    }
    return "failed";
}

static int
request_to_json(void *arg, const struct scep_request_row *row)
{
    json_t *arr = arg, *o;
    char txid[600];

    scep_log_escape(txid, sizeof(txid), row->txid, row->txid_len);
    o = json_pack("{s:I, s:I, s:s, s:s, s:s, s:s, s:I, s:s, s:i}", "id", (json_int_t)row->id,
                  "endpoint_id", (json_int_t)row->endpoint_id, "transaction_id", txid, "status",
                  req_status_text(row->status), "subject", row->subject, "serial", row->serial,
                  "created_at", (json_int_t)row->created_at, "reason", row->reason, "message_type",
                  row->msgtype);
    if (o == NULL)
        return 1;
    return json_array_append_new(arr, o) != 0;
}

/* POST /v1/requests/ID/(approve|reject) */
/*
 * The audit row of an operator decision made here (approve, reject,
 * revoke, rollover, switch); the service records the other changes itself.
 */
static void
audit_op(const struct admin_req *r, const char *action, const char *object, const char *endpoint,
         enum scep_err rc, const char *detail)
{
    char why[200];

    snprintf(why, sizeof(why), "%s%s%s", rc == SCEP_OK ? "" : scep_errname(rc),
             rc != SCEP_OK && detail[0] ? ": " : "", detail);
    if (scep_store_audit(scep_service_store(r->a->svc), r->actor, action, object,
                         endpoint ? endpoint : "", rc == SCEP_OK ? "ok" : "failed", why) != SCEP_OK)
        scep_log(SCEP_LOG_ERROR, "admin", "audit row not written action=%s", action);
}

static enum MHD_Result
decide(struct admin_req *r, const char *url)
{
    const char *p = url + strlen("/v1/requests/"), *slash = strchr(p, '/');
    char idtext[24], serial[48], reason[256] = "";
    long long id;
    enum scep_err rc;
    int approve;

    if (slash == NULL || (size_t)(slash - p) >= sizeof(idtext))
        return reply_error(r, MHD_HTTP_NOT_FOUND, "no such route");
    memcpy(idtext, p, (size_t)(slash - p));
    idtext[slash - p] = '\0';
    if (scep_strtonum(idtext, 1, INT64_MAX, &id) != SCEP_OK)
        return reply_error(r, MHD_HTTP_BAD_REQUEST, "the request id must be a positive number");
    if (strcmp(slash, "/approve") == 0)
        approve = 1;
    else if (strcmp(slash, "/reject") == 0)
        approve = 0;
    else
        return reply_error(r, MHD_HTTP_NOT_FOUND, "no such route; use approve or reject");
    if (!approve && r->len > 0) {
        enum MHD_Result ret = MHD_NO;
        json_t *j = body_object(r, &ret), *rs;
        if (j == NULL)
            return ret;
        rs = json_object_get(j, "reason");
        if (rs != NULL && !json_is_string(rs)) {
            json_decref(j);
            return reply_error(r, MHD_HTTP_BAD_REQUEST, "reason must be a string");
        }
        if (rs != NULL)
            snprintf(reason, sizeof(reason), "%s", json_string_value(rs));
        json_decref(j);
    }
    rc = approve ? scep_service_approve(r->a->svc, (int64_t)id, serial, sizeof(serial))
                 : scep_service_reject(r->a->svc, (int64_t)id, reason);
    {
        char obj[32];
        snprintf(obj, sizeof(obj), "request:%llu", (unsigned long long)id);
        audit_op(r, approve ? "request.approve" : "request.reject", obj, NULL, rc,
                 approve ? serial : reason);
    }
    switch (rc) {
    case SCEP_OK:
        if (approve)
            return reply_json(r, MHD_HTTP_OK,
                              json_pack("{s:I, s:s, s:s}", "id", (json_int_t)id, "status", "issued",
                                        "serial", serial));
        return reply_json(r, MHD_HTTP_OK,
                          json_pack("{s:I, s:s, s:s}", "id", (json_int_t)id, "status", "rejected",
                                    "reason", reason));
    case SCEP_E_NO_ENTRY:
        return reply_error(r, MHD_HTTP_NOT_FOUND, "no request with this id");
    case SCEP_E_NOT_PENDING:
        return reply_error(r, MHD_HTTP_CONFLICT, "the request is not pending (already decided)");
    default:
        return reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, scep_strerror(rc));
    }
}

/* POST /v1/certs/SERIAL/revoke */
static enum MHD_Result
revoke_cert(struct admin_req *r, const char *url)
{
    const char *p = url + strlen("/v1/certs/"), *slash = strchr(p, '/');
    char serial[48];
    int reason = 0;
    size_t i, n;
    enum scep_err rc;

    if (slash == NULL || strcmp(slash, "/revoke") != 0)
        return reply_error(r, MHD_HTTP_NOT_FOUND, "no such route; use /v1/certs/SERIAL/revoke");
    n = (size_t)(slash - p);
    if (n == 0 || n >= sizeof(serial))
        return reply_error(r, MHD_HTTP_BAD_REQUEST,
                           "the serial must be hex, as certs list shows it");
    for (i = 0; i < n; i++) {
        char ch = p[i];
        if (ch >= 'A' && ch <= 'F')
            ch = (char)(ch - 'A' + 'a');
        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f')))
            return reply_error(r, MHD_HTTP_BAD_REQUEST,
                               "the serial must be hex, as certs list shows it");
        serial[i] = ch;
    }
    serial[n] = '\0';
    if (r->len > 0) {
        enum MHD_Result ret = MHD_NO;
        json_t *j = body_object(r, &ret), *rs;
        if (j == NULL)
            return ret;
        rs = json_object_get(j, "reason");
        if (rs != NULL &&
            (!json_is_string(rs) || (reason = scep_crl_reason_code(json_string_value(rs))) < 0)) {
            json_decref(j);
            return reply_error(r, MHD_HTTP_BAD_REQUEST,
                               "reason must be one of unspecified, keyCompromise, cACompromise, "
                               "affiliationChanged, superseded, cessationOfOperation, "
                               "privilegeWithdrawn, aACompromise");
        }
        json_decref(j);
    }
    rc = scep_service_revoke(r->a->svc, serial, reason);
    audit_op(r, "cert.revoke", serial, NULL, rc, scep_crl_reason_name(reason));
    switch (rc) {
    case SCEP_OK:
        return reply_json(r, MHD_HTTP_OK,
                          json_pack("{s:s, s:s, s:s}", "serial", serial, "status", "revoked",
                                    "reason", scep_crl_reason_name(reason)));
    case SCEP_E_NO_ENTRY:
        return reply_error(r, MHD_HTTP_NOT_FOUND, "no certificate with this serial");
    case SCEP_E_CONFLICT:
        return reply_error(r, MHD_HTTP_CONFLICT, "the certificate is already revoked");
    default:
        return reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, scep_strerror(rc));
    }
}

static int
ca_to_json(void *arg, int64_t id, const char *name, X509 *cert, int64_t next_id,
           const char *used_by)
{
    json_t *arr = arg, *o;
    char *subject = scep_name_to_text(X509_get_subject_name(cert));
    char sha1[41], sha256[65];
    struct tm tm;
    char na[32] = "";

    scep_cert_thumbprints(cert, sha1, sha256);
    if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) == 1)
        strftime(na, sizeof(na), "%Y-%m-%dT%H:%M:%SZ", &tm);
    o = json_pack("{s:I, s:s, s:s, s:s, s:s, s:I, s:s?, s:b}", "id", (json_int_t)id, "name", name,
                  "subject", subject ? subject : "", "not_after", na, "sha256", sha256, "next_id",
                  (json_int_t)next_id, "used_by", used_by, "self_signed",
                  X509_check_issued(cert, cert) == X509_V_OK);
    free(subject);
    if (o == NULL)
        return 1;
    return json_array_append_new(arr, o) != 0;
}

static enum MHD_Result
cas_reply(struct admin_req *r)
{
    json_t *arr = json_array();

    if (arr == NULL || scep_service_each_ca(r->a->svc, ca_to_json, arr) != SCEP_OK) {
        json_decref(arr);
        return reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot list the CAs");
    }
    return reply_json(r, MHD_HTTP_OK, json_pack("{s:o}", "cas", arr));
}

/* POST /v1/ca/rollover and /v1/ca/switch */
static enum MHD_Result
ca_change(struct admin_req *r, const char *url)
{
    const char *endpoint = NULL;
    int self_signed = 0;
    char err[512] = "";
    enum MHD_Result ret = MHD_NO;
    json_t *j, *e, *ss;
    enum scep_err rc;

    if ((j = body_object(r, &ret)) == NULL)
        return ret;
    e = json_object_get(j, "endpoint");
    ss = json_object_get(j, "self_signed");
    if ((e != NULL && !json_is_string(e)) || (ss != NULL && !json_is_boolean(ss))) {
        json_decref(j);
        return reply_error(r, MHD_HTTP_BAD_REQUEST,
                           "endpoint must be a string and self_signed a boolean");
    }
    endpoint = e != NULL ? json_string_value(e) : NULL;
    self_signed = ss != NULL && json_is_true(ss);
    if (strcmp(url, "/v1/ca/rollover") == 0)
        rc = scep_service_rollover(r->a->svc, endpoint, self_signed, err, sizeof(err));
    else if (strcmp(url, "/v1/ca/switch") == 0)
        rc = scep_service_switch_ca(r->a->svc, endpoint, err, sizeof(err));
    else {
        json_decref(j);
        return reply_error(r, MHD_HTTP_NOT_FOUND, "no such route; use rollover or switch");
    }
    audit_op(r, strcmp(url, "/v1/ca/rollover") == 0 ? "ca.rollover" : "ca.switch",
             endpoint ? endpoint : "default", endpoint, rc,
             rc == SCEP_OK ? (self_signed ? "self-signed" : "") : err);
    json_decref(j);
    switch (rc) {
    case SCEP_OK:
        return cas_reply(r);
    case SCEP_E_NO_ENTRY:
        return reply_error(r, MHD_HTTP_NOT_FOUND, err[0] ? err : scep_strerror(rc));
    case SCEP_E_CONFLICT:
        return reply_error(r, MHD_HTTP_CONFLICT, err[0] ? err : scep_strerror(rc));
    default:
        return reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, err[0] ? err : scep_strerror(rc));
    }
}

/* ---- profiles ---- */

static json_t *
profile_json(const struct scep_profile_row *p)
{
    return json_pack("{s:I, s:s, s:s, s:i, s:i, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}",
                     "id", (json_int_t)p->id, "name", p->name, "template", p->template_name,
                     "validity_days", p->validity_days, "max_validity_days", p->max_validity_days,
                     "eku", p->eku, "key_types", p->key_types, "subject_allow", p->subject_allow,
                     "subject_forbid", p->subject_forbid, "san_types", p->san_types, "san_patterns",
                     p->san_patterns, "key_usage", p->key_usage, "cdp_url", p->cdp_url, "aia_url",
                     p->aia_url, "duplicate_subject", p->duplicate_subject);
}

static int
profile_to_json(void *arg, const struct scep_profile_row *p)
{
    json_t *o = profile_json(p);

    return o == NULL || json_array_append_new(arg, o) != 0;
}

struct profile_find {
    const char *name;
    struct scep_profile_row *out;
    int found;
};

static int
profile_find_cb(void *arg, const struct scep_profile_row *p)
{
    struct profile_find *pf = arg;

    if (strcmp(p->name, pf->name) != 0)
        return 0;
    *pf->out = *p;
    pf->found = 1;
    return 0;
}

/* The profile called name into *out: 1 found, 0 not, -1 failure. */
static int
profile_find(const struct scep_admin *a, const char *name, struct scep_profile_row *out)
{
    struct profile_find pf = {name, out, 0};

    if (scep_service_each_profile(a->svc, profile_find_cb, &pf) != SCEP_OK)
        return -1;
    return pf.found;
}

static enum MHD_Result
profiles_reply(struct admin_req *r)
{
    json_t *arr = json_array();

    if (arr == NULL || scep_service_each_profile(r->a->svc, profile_to_json, arr) != SCEP_OK) {
        json_decref(arr);
        return reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot list the profiles");
    }
    return reply_json(r, MHD_HTTP_OK, json_pack("{s:o}", "profiles", arr));
}

#define PF(k, m) FSTR(struct scep_profile_row, k, m)
#define PL(k, m) FLIST(struct scep_profile_row, k, m)
static const struct field profile_fields[] = {
    PF("name", name),
    PF("template", template_name),
    FINT(struct scep_profile_row, "validity_days", validity_days, 0, 36500),
    FINT(struct scep_profile_row, "max_validity_days", max_validity_days, 0, 36500),
    PL("eku", eku),
    PL("key_types", key_types),
    PL("subject_allow", subject_allow),
    PL("subject_forbid", subject_forbid),
    PL("san_types", san_types),
    PL("san_patterns", san_patterns),
    PL("key_usage", key_usage),
    PF("cdp_url", cdp_url),
    PF("aia_url", aia_url),
    PF("duplicate_subject", duplicate_subject),
};
#undef PF
#undef PL

/*
 * POST /v1/profiles (name NULL: a new profile from the built-in defaults;
 * 409 when the name is taken) and POST|PATCH /v1/profiles/NAME (the fields
 * given replace those of the existing profile; 404 when unknown).  Either
 * way scep_service_update_profile stores every setting, checked by
 * scep_policy_check_profile.
 */
static enum MHD_Result
profile_put(struct admin_req *r, const char *name)
{
    static const char *const extra[] = {"id", NULL};
    struct scep_profile_row p, after;
    enum MHD_Result ret = MHD_NO;
    char err[512] = "", given[SCEP_NAME_MAX] = "";
    json_t *j, *jn, *o, *arr;
    int found;
    enum scep_err rc;

    if ((j = body_object(r, &ret)) == NULL)
        return ret;
    jn = json_object_get(j, "name");
    if (jn != NULL && (!json_is_string(jn) || json_string_length(jn) >= sizeof(given))) {
        json_decref(j);
        return reply_error(r, MHD_HTTP_BAD_REQUEST, "name must be a string of 1 to 63 characters");
    }
    if (jn != NULL)
        memcpy(given, json_string_value(jn), json_string_length(jn) + 1);
    if (name == NULL && given[0] == '\0') {
        json_decref(j);
        return reply_error(r, MHD_HTTP_BAD_REQUEST, "name: required (the profile's name)");
    }
    if (name != NULL && jn != NULL && strcmp(given, name) != 0) {
        json_decref(j);
        return reply_error(r, MHD_HTTP_BAD_REQUEST,
                           "name: a profile cannot be renamed; leave name out of the body");
    }
    if (name == NULL)
        name = given;
    if ((found = profile_find(r->a, name, &p)) < 0) {
        json_decref(j);
        return reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "cannot read the profiles");
    }
    if (name == given && found) {
        json_decref(j);
        snprintf(err, sizeof(err),
                 "a profile named %s exists; change it with POST /v1/profiles/%s "
                 "(scepctl profiles update %s)",
                 name, name, name);
        return reply_error(r, MHD_HTTP_CONFLICT, err);
    }
    if (name != given && !found) {
        json_decref(j);
        snprintf(err, sizeof(err), "no profile named %s; scepctl profiles list shows them", name);
        return reply_error(r, MHD_HTTP_NOT_FOUND, err);
    }
    if (!found) {
        scep_policy_default_profile(&p);
        memcpy(p.name, given, sizeof(p.name));
    }
    if (fill_fields(j, profile_fields, sizeof(profile_fields) / sizeof(profile_fields[0]), &p,
                    extra, "", err, sizeof(err)) != 0) {
        json_decref(j);
        return reply_error(r, MHD_HTTP_BAD_REQUEST, err);
    }
    json_decref(j);
    rc = scep_service_update_profile(r->a->svc, &p, r->actor, err, sizeof(err));
    if (rc != SCEP_OK)
        return reply_service_error(r, rc, err);
    if (profile_find(r->a, p.name, &after) != 1)
        after = p;
    arr = json_array();
    if (arr == NULL || scep_service_each_profile(r->a->svc, profile_to_json, arr) != SCEP_OK) {
        json_decref(arr);
        arr = NULL;
    }
    o = json_pack("{s:o, s:o*}", "profile", profile_json(&after), "profiles", arr);
    return reply_json(r, MHD_HTTP_OK, o);
}

/* ---- endpoints ---- */

#define EF(k, m) FSTR(struct scep_endpoint_spec, k, m)
#define EI(k, m, lo, hi) FINT(struct scep_endpoint_spec, k, m, lo, hi)
static const struct field endpoint_fields[] = {
    EF("name", name),
    EF("ca", ca),
    EF("new_ca_subject", new_ca_subject),
    EF("new_ca_key", new_ca_key),
    EF("profile", profile),
    EF("organization", organization),
    EF("department", department),
    EI("validity_days", validity_days, 1, 36500),
    EF("getcacert_format", getcacert_format),
    EF("getcert_format", getcert_format),
    EF("mode", mode),
    EF("challenge", challenge),
    EF("approval", approval),
    FBOOL(struct scep_endpoint_spec, "enabled", enabled),
    EF("webhook_url", webhook_url),
    FLONG(struct scep_endpoint_spec, "webhook_timeout_ms", webhook_timeout_ms, 100, 120000),
    EF("webhook_bearer", webhook_bearer),
    EF("notify_url", notify_url),
    EI("max_outstanding", max_outstanding, 1, 1000000),
    EI("challenge_ttl", challenge_ttl, 60, 2592000),
    FBOOL(struct scep_endpoint_spec, "rotate_key", rotate_key),
};
static const struct field intune_fields[] = {
    EF("tenant", intune_tenant),       EF("app_id", intune_app_id),
    EF("app_key", intune_app_key),     EF("provider", intune_provider),
    EF("proxy", intune_proxy),         EF("login_url", intune_login_url),
    EF("graph_url", intune_graph_url), EF("resource_url", intune_resource_url),
};
#undef EF
#undef EI

/* The body of an endpoint add or update into spec (after scep_endpoint_spec_init). */
static int
endpoint_spec_from(const json_t *j, struct scep_endpoint_spec *spec, char *err, size_t errlen)
{
    static const char *const extra[] = {"intune", NULL};
    const json_t *in = json_object_get(j, "intune");

    if (fill_fields(j, endpoint_fields, sizeof(endpoint_fields) / sizeof(endpoint_fields[0]), spec,
                    extra, "", err, errlen) != 0)
        return -1;
    if (in == NULL || json_is_null(in))
        return 0;
    if (!json_is_object(in)) {
        snprintf(err, errlen,
                 "intune must be an object {\"tenant\", \"app_id\", \"app_key\", ...}");
        return -1;
    }
    return fill_fields(in, intune_fields, sizeof(intune_fields) / sizeof(intune_fields[0]), spec,
                       NULL, "intune.", err, errlen);
}

/* The service's description of one endpoint (name) or all (NULL) as JSON. */
static enum scep_err
describe_endpoints(const struct scep_admin *a, const char *name, json_t **out)
{
    char *text = NULL;
    json_error_t jerr;
    enum scep_err rc;

    *out = NULL;
    if ((rc = scep_service_describe_endpoints(a->svc, name, &text)) != SCEP_OK)
        return rc;
    *out = json_loads(text, 0, &jerr);
    free(text);
    return *out != NULL ? SCEP_OK : SCEP_E_INTERNAL;
}

/* One endpoint's description, whatever the service wraps it in; NULL if none. */
static json_t *
one_endpoint(json_t *d)
{
    json_t *e;

    if (json_is_array(d) && json_array_size(d) == 1)
        return json_incref(json_array_get(d, 0));
    if (json_is_object(d) && json_is_object(e = json_object_get(d, "endpoint")))
        return json_incref(e);
    if (json_is_object(d))
        return json_incref(d);
    return NULL;
}

/* GET /v1/endpoints and GET /v1/endpoints/NAME */
static enum MHD_Result
endpoints_get(struct admin_req *r, const char *name)
{
    json_t *d = NULL, *e;
    char msg[160];
    enum scep_err rc = describe_endpoints(r->a, name, &d);

    if (rc == SCEP_E_NO_ENTRY) {
        snprintf(msg, sizeof(msg), "no endpoint named %s; scepctl endpoints list shows them",
                 name != NULL ? name : "");
        return reply_error(r, MHD_HTTP_NOT_FOUND, msg);
    }
    if (rc != SCEP_OK)
        return reply_service_error(r, rc, NULL);
    if (name == NULL) {
        if (json_is_object(d) && json_is_array(json_object_get(d, "endpoints")))
            return reply_json(r, MHD_HTTP_OK, d);
        if (json_is_array(d))
            return reply_json(r, MHD_HTTP_OK, json_pack("{s:o}", "endpoints", d));
        json_decref(d);
        return reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot list the endpoints");
    }
    e = one_endpoint(d);
    json_decref(d);
    if (e == NULL)
        return reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot describe the endpoint");
    return reply_json(r, MHD_HTTP_OK, json_pack("{s:o}", "endpoint", e));
}

/* The answer to an add or update: the endpoint, its URL path, the keys shown once. */
static enum MHD_Result
endpoint_saved(struct admin_req *r, const char *name, struct scep_endpoint_keys *k)
{
    json_t *o = json_object(), *d = NULL, *e = NULL;
    char path[SCEP_NAME_MAX + 8];

    snprintf(path, sizeof(path), "/scep/%s", name);
    if (describe_endpoints(r->a, name, &d) == SCEP_OK)
        e = one_endpoint(d);
    json_decref(d);
    if (o == NULL)
        json_decref(e);
    if (o == NULL || json_object_set_new(o, "name", json_string(name)) != 0 ||
        json_object_set_new(o, "path", json_string(path)) != 0 ||
        (e != NULL && json_object_set_new(o, "endpoint", e) != 0) ||
        (k->token_key[0] && json_object_set_new(o, "token_key", json_string(k->token_key)) != 0) ||
        (k->webhook_key[0] &&
         json_object_set_new(o, "webhook_key", json_string(k->webhook_key)) != 0) ||
        (k->notify_key[0] &&
         json_object_set_new(o, "notify_key", json_string(k->notify_key)) != 0) ||
        (k->challenge[0] && json_object_set_new(o, "challenge", json_string(k->challenge)) != 0)) {
        OPENSSL_cleanse(k, sizeof(*k));
        json_decref(o);
        return reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
    }
    OPENSSL_cleanse(k, sizeof(*k));
    return reply_json(r, MHD_HTTP_OK, o);
}

/* POST /v1/endpoints (name NULL) and PATCH|POST /v1/endpoints/NAME */
static enum MHD_Result
endpoint_put(struct admin_req *r, const char *name)
{
    struct scep_endpoint_spec spec;
    struct scep_endpoint_keys keys;
    enum MHD_Result ret = MHD_NO;
    char err[512] = "", saved[SCEP_NAME_MAX];
    json_t *j;
    enum scep_err rc;

    if ((j = body_object(r, &ret)) == NULL)
        return ret;
    scep_endpoint_spec_init(&spec);
    memset(&keys, 0, sizeof(keys));
    if (endpoint_spec_from(j, &spec, err, sizeof(err)) != 0) {
        json_decref(j);
        OPENSSL_cleanse(&spec, sizeof(spec));
        return reply_error(r, MHD_HTTP_BAD_REQUEST, err);
    }
    json_decref(j);
    if (name == NULL && spec.name[0] == '\0') {
        OPENSSL_cleanse(&spec, sizeof(spec));
        return reply_error(r, MHD_HTTP_BAD_REQUEST,
                           "name: required (the URL segment of the endpoint: /scep/NAME)");
    }
    if (name != NULL && spec.name[0] != '\0' && strcmp(spec.name, name) != 0) {
        OPENSSL_cleanse(&spec, sizeof(spec));
        return reply_error(r, MHD_HTTP_BAD_REQUEST,
                           "name: an endpoint cannot be renamed; leave name out of the body");
    }
    if (name != NULL)
        snprintf(spec.name, sizeof(spec.name), "%s", name);
    memcpy(saved, spec.name, sizeof(saved));
    rc = name == NULL
             ? scep_service_add_endpoint(r->a->svc, &spec, r->actor, &keys, err, sizeof(err))
             : scep_service_update_endpoint(r->a->svc, &spec, r->actor, &keys, err, sizeof(err));
    OPENSSL_cleanse(&spec, sizeof(spec));
    if (rc != SCEP_OK) {
        OPENSSL_cleanse(&keys, sizeof(keys));
        return reply_service_error(r, rc, err);
    }
    return endpoint_saved(r, saved, &keys);
}

/* POST /v1/endpoints/NAME/enable and /disable */
static enum MHD_Result
endpoint_enable(struct admin_req *r, const char *name, int enabled)
{
    char err[512] = "";
    enum scep_err rc =
        scep_service_enable_endpoint(r->a->svc, name, enabled, r->actor, err, sizeof(err));

    if (rc != SCEP_OK)
        return reply_service_error(r, rc, err);
    return reply_json(r, MHD_HTTP_OK, json_pack("{s:s, s:b}", "name", name, "enabled", enabled));
}

/*
 * A JSON list from a describe_* function, as {"key": [...]}.  endpoint:
 * the one it was asked about (for a 404), or NULL.
 */
static enum MHD_Result
reply_described(struct admin_req *r, enum scep_err rc, char *text, const char *key,
                const char *endpoint)
{
    json_error_t jerr;
    json_t *d;

    if (rc != SCEP_OK) {
        char msg[160] = "";
        free(text);
        if (rc == SCEP_E_NO_ENTRY && endpoint != NULL)
            snprintf(msg, sizeof(msg), "no endpoint named %s; scepctl endpoints list shows them",
                     endpoint);
        return reply_service_error(r, rc, msg);
    }
    d = json_loads(text, 0, &jerr);
    free(text);
    if (json_is_object(d) && json_is_array(json_object_get(d, key)))
        return reply_json(r, MHD_HTTP_OK, d);
    if (!json_is_array(d)) {
        json_decref(d);
        return reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot describe them");
    }
    return reply_json(r, MHD_HTTP_OK, json_pack("{s:o}", key, d));
}

/* ---- accounts ---- */

struct account_body {
    char name[SCEP_NAME_MAX];
    char organization[128];
    char department[128];
    char profile[SCEP_NAME_MAX];
    int validity_days;
    char code[256];
};

static const struct field account_fields[] = {
    FSTR(struct account_body, "name", name),
    FSTR(struct account_body, "organization", organization),
    FSTR(struct account_body, "department", department),
    FSTR(struct account_body, "profile", profile),
    FINT(struct account_body, "validity_days", validity_days, 1, 36500),
    FSTR(struct account_body, "code", code),
};

/* POST /v1/endpoints/NAME/accounts */
static enum MHD_Result
account_add(struct admin_req *r, const char *endpoint)
{
    struct account_body b;
    enum MHD_Result ret = MHD_NO;
    char err[512] = "", code[256] = "";
    json_t *j;
    enum scep_err rc;

    if ((j = body_object(r, &ret)) == NULL)
        return ret;
    memset(&b, 0, sizeof(b));
    if (fill_fields(j, account_fields, sizeof(account_fields) / sizeof(account_fields[0]), &b, NULL,
                    "", err, sizeof(err)) != 0) {
        json_decref(j);
        OPENSSL_cleanse(&b, sizeof(b));
        return reply_error(r, MHD_HTTP_BAD_REQUEST, err);
    }
    json_decref(j);
    if (b.name[0] == '\0') {
        OPENSSL_cleanse(&b, sizeof(b));
        return reply_error(r, MHD_HTTP_BAD_REQUEST, "name: required (the account's name)");
    }
    rc = scep_service_add_account(r->a->svc, endpoint, b.name, b.organization, b.department,
                                  b.profile, b.validity_days, b.code, r->actor, code, sizeof(code),
                                  err, sizeof(err));
    OPENSSL_cleanse(b.code, sizeof(b.code));
    if (rc != SCEP_OK) {
        OPENSSL_cleanse(code, sizeof(code));
        return reply_service_error(r, rc, err);
    }
    j = json_pack("{s:s, s:s, s:s}", "endpoint", endpoint, "name", b.name, "access_code", code);
    OPENSSL_cleanse(code, sizeof(code));
    return reply_json(r, MHD_HTTP_OK, j);
}

/* POST /v1/endpoints/NAME/accounts/ACC/(disable|enable|rotate-code) */
static enum MHD_Result
account_op(struct admin_req *r, const char *endpoint, const char *name, const char *op)
{
    char err[512] = "", code[256] = "";
    json_t *o;
    enum scep_err rc;

    if (strcmp(op, "disable") != 0 && strcmp(op, "enable") != 0 && strcmp(op, "rotate-code") != 0)
        return reply_error(r, MHD_HTTP_NOT_FOUND,
                           "no such route; use .../accounts/NAME/disable, enable or rotate-code");
    rc = scep_service_account_op(r->a->svc, endpoint, name, op, r->actor, code, sizeof(code), err,
                                 sizeof(err));
    if (rc != SCEP_OK) {
        OPENSSL_cleanse(code, sizeof(code));
        return reply_service_error(r, rc, err);
    }
    if (strcmp(op, "rotate-code") == 0)
        o = json_pack("{s:s, s:s, s:s}", "endpoint", endpoint, "name", name, "access_code", code);
    else
        o = json_pack("{s:s, s:s, s:b}", "endpoint", endpoint, "name", name, "enabled",
                      strcmp(op, "enable") == 0);
    OPENSSL_cleanse(code, sizeof(code));
    return reply_json(r, MHD_HTTP_OK, o);
}

/* ---- one-time challenges and signed tokens ---- */

struct authz_body {
    int ttl;
    char subject[256];
    char san[1024];
    char eku[256];
    char device[128];
    char sid[96];
};

#define AUTHZ_COMMON                                                                               \
    FINT(struct authz_body, "ttl", ttl, 0, 2592000), FSTR(struct authz_body, "subject", subject),  \
        FLIST(struct authz_body, "san", san), FSTR(struct authz_body, "device", device),           \
        FSTR(struct authz_body, "sid", sid)
static const struct field challenge_fields[] = {AUTHZ_COMMON};
static const struct field token_fields[] = {AUTHZ_COMMON, FLIST(struct authz_body, "eku", eku)};
#undef AUTHZ_COMMON

/* POST /v1/endpoints/NAME/challenges (token 0) and /tokens (token 1) */
static enum MHD_Result
authz_new(struct admin_req *r, const char *endpoint, int token)
{
    const struct field *tbl = token ? token_fields : challenge_fields;
    size_t n = token ? sizeof(token_fields) / sizeof(token_fields[0])
                     : sizeof(challenge_fields) / sizeof(challenge_fields[0]);
    struct authz_body b;
    enum MHD_Result ret = MHD_NO;
    char err[512] = "", out[SCEP_TOKEN_MAX + 1] = "";
    json_t *j;
    enum scep_err rc;
    time_t now = time(NULL);

    if ((j = body_object(r, &ret)) == NULL)
        return ret;
    memset(&b, 0, sizeof(b));
    if (fill_fields(j, tbl, n, &b, NULL, "", err, sizeof(err)) != 0) {
        json_decref(j);
        return reply_error(r, MHD_HTTP_BAD_REQUEST, err);
    }
    json_decref(j);
    if (token)
        rc = scep_service_sign_token(r->a->svc, endpoint, b.ttl, b.subject, b.san, b.eku, b.device,
                                     b.sid, r->actor, out, sizeof(out), err, sizeof(err));
    else
        rc = scep_service_new_challenge(r->a->svc, endpoint, b.ttl, b.subject, b.san, b.device,
                                        b.sid, r->actor, out, sizeof(out), err, sizeof(err));
    if (rc != SCEP_OK) {
        OPENSSL_cleanse(out, sizeof(out));
        return reply_service_error(r, rc, err);
    }
    if (token) {
        j = json_pack("{s:s}", "token", out);
    } else {
        const struct scep_endpoint *ep =
            scep_service_endpoint(r->a->svc, endpoint, strlen(endpoint));
        /* as the service chose it: the endpoint's default, else an hour */
        int ttl = b.ttl > 0                             ? b.ttl
                  : ep != NULL && ep->challenge_ttl > 0 ? ep->challenge_ttl
                                                        : 3600;
        j = json_pack("{s:s}", "challenge", out);
        if (j != NULL && ttl > 0)
            json_object_set_new(j, "expires_at", json_integer((json_int_t)now + ttl));
    }
    OPENSSL_cleanse(out, sizeof(out));
    return reply_json(r, MHD_HTTP_OK, j);
}

/* ---- /v1/endpoints/... ---- */

static enum MHD_Result
endpoints_route(struct admin_req *r, char seg[][SCEP_NAME_MAX], size_t n)
{
    int get = strcmp(r->method, MHD_HTTP_METHOD_GET) == 0;
    int post = strcmp(r->method, MHD_HTTP_METHOD_POST) == 0;
    int patch = strcmp(r->method, MHD_HTTP_METHOD_PATCH) == 0;
    const char *name = n > 2 ? seg[2] : NULL, *sub = n > 3 ? seg[3] : "";
    char *text = NULL;
    enum scep_err rc;

    if (n == 2)
        return get    ? endpoints_get(r, NULL)
               : post ? endpoint_put(r, NULL)
                      : reply_405(r, "GET or POST");
    if (n == 3)
        return get             ? endpoints_get(r, name)
               : post || patch ? endpoint_put(r, name)
                               : reply_405(r, "GET, POST or PATCH");
    if (n == 4 && (strcmp(sub, "disable") == 0 || strcmp(sub, "enable") == 0))
        return post ? endpoint_enable(r, name, sub[0] == 'e') : reply_405(r, "POST");
    if (n == 4 && strcmp(sub, "accounts") == 0) {
        if (post)
            return account_add(r, name);
        if (!get)
            return reply_405(r, "GET or POST");
        rc = scep_service_describe_accounts(r->a->svc, name, &text);
        return reply_described(r, rc, text, "accounts", name);
    }
    if (n == 4 && strcmp(sub, "challenges") == 0) {
        if (post)
            return authz_new(r, name, 0);
        if (!get)
            return reply_405(r, "GET or POST");
        rc = scep_service_describe_challenges(r->a->svc, name, &text);
        return reply_described(r, rc, text, "challenges", name);
    }
    if (n == 4 && strcmp(sub, "tokens") == 0)
        return post ? authz_new(r, name, 1) : reply_405(r, "POST");
    if (n == 6 && strcmp(sub, "accounts") == 0)
        return post ? account_op(r, name, seg[4], seg[5]) : reply_405(r, "POST");
    return reply_error(r, MHD_HTTP_NOT_FOUND, "no such route; docs/admin-api.md lists them");
}

/* ---- events and audit ---- */

/* ?limit=N (1..1000), 0 when absent; -1 after replying 400. */
static int
limit_arg(struct admin_req *r, enum MHD_Result *ret)
{
    const char *l = MHD_lookup_connection_value(r->c, MHD_GET_ARGUMENT_KIND, "limit");
    long long n = 0;

    if (l != NULL && scep_strtonum(l, 1, 1000, &n) != SCEP_OK) {
        *ret = reply_error(r, MHD_HTTP_BAD_REQUEST, "limit must be a number from 1 to 1000");
        return -1;
    }
    return (int)n;
}

static enum MHD_Result
events_get(struct admin_req *r)
{
    const char *st = MHD_lookup_connection_value(r->c, MHD_GET_ARGUMENT_KIND, "status");
    enum MHD_Result ret = MHD_NO;
    char *text = NULL;
    int limit = limit_arg(r, &ret);
    enum scep_err rc;

    if (limit < 0)
        return ret;
    if (st != NULL && strcmp(st, "pending") != 0 && strcmp(st, "delivered") != 0 &&
        strcmp(st, "dead") != 0 && strcmp(st, "local") != 0)
        return reply_error(r, MHD_HTTP_BAD_REQUEST,
                           "status must be pending, delivered, dead or local");
    rc = scep_service_describe_events(r->a->svc, st, limit, &text);
    return reply_described(r, rc, text, "events", NULL);
}

static enum MHD_Result
audit_get(struct admin_req *r)
{
    enum MHD_Result ret = MHD_NO;
    char *text = NULL;
    int limit = limit_arg(r, &ret);
    enum scep_err rc;

    if (limit < 0)
        return ret;
    rc = scep_service_describe_audit(r->a->svc, limit, &text);
    return reply_described(r, rc, text, "audit", NULL);
}

static enum MHD_Result
requests_get(struct admin_req *r)
{
    const char *st = MHD_lookup_connection_value(r->c, MHD_GET_ARGUMENT_KIND, "status");
    enum scep_req_status want = SCEP_REQ_PENDING;
    json_t *arr;
    enum scep_err rc;

    if (st != NULL) {
        if (strcmp(st, "pending") == 0)
            want = SCEP_REQ_PENDING;
        else if (strcmp(st, "issued") == 0)
            want = SCEP_REQ_ISSUED;
        else if (strcmp(st, "rejected") == 0)
            want = SCEP_REQ_REJECTED;
        else if (strcmp(st, "failed") == 0)
            want = SCEP_REQ_FAILED;
        else
            return reply_error(r, MHD_HTTP_BAD_REQUEST,
                               "status must be pending, issued, rejected or failed");
    }
    if ((arr = json_array()) == NULL)
        return MHD_NO;
    rc = scep_store_each_request(scep_service_store(r->a->svc), st != NULL ? &want : NULL,
                                 request_to_json, arr);
    if (rc != SCEP_OK) {
        json_decref(arr);
        return reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, scep_strerror(rc));
    }
    return reply_json(r, MHD_HTTP_OK, json_pack("{s:o}", "requests", arr));
}

static enum MHD_Result
certs_get(struct admin_req *r)
{
    json_t *arr = json_array();
    enum scep_err rc;

    if (arr == NULL)
        return MHD_NO;
    rc = scep_store_each_cert(scep_service_store(r->a->svc), cert_to_json, arr);
    if (rc != SCEP_OK) {
        json_decref(arr);
        return reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, scep_strerror(rc));
    }
    return reply_json(r, MHD_HTTP_OK, json_pack("{s:o}", "certificates", arr));
}

/*
 * Split "/v1/a/b" into its segments ("v1", "a", "b"); a trailing slash is
 * ignored.  0 ok; -1 an empty segment or too many (404); -2 a segment too
 * long to be a name (400).
 */
static int
split_path(const char *url, char seg[][SCEP_NAME_MAX], size_t *n)
{
    const char *p = url;

    *n = 0;
    if (*p != '/')
        return -1;
    p++;
    while (*p != '\0') {
        const char *e = strchr(p, '/');
        size_t l = e != NULL ? (size_t)(e - p) : strlen(p);
        if (l == 0 || *n == ADMIN_MAX_SEGS)
            return -1;
        if (l >= SCEP_NAME_MAX)
            return -2;
        memcpy(seg[*n], p, l);
        seg[*n][l] = '\0';
        (*n)++;
        p += l;
        if (*p == '/')
            p++;
    }
    return 0;
}

static enum MHD_Result
route(struct admin_req *r, const char *url)
{
    int get = strcmp(r->method, MHD_HTTP_METHOD_GET) == 0;
    int post = strcmp(r->method, MHD_HTTP_METHOD_POST) == 0;
    int patch = strcmp(r->method, MHD_HTTP_METHOD_PATCH) == 0;
    char seg[ADMIN_MAX_SEGS][SCEP_NAME_MAX];
    size_t n = 0;
    int sp;

    /* each route names the methods it allows (405) */
    /* the routes of the first release, by prefix */
    if (strncmp(url, "/v1/requests/", 13) == 0)
        return post ? decide(r, url) : reply_405(r, "POST");
    if (strncmp(url, "/v1/certs/", 10) == 0)
        return post ? revoke_cert(r, url) : reply_405(r, "POST");
    if (strncmp(url, "/v1/ca/", 7) == 0)
        return post ? ca_change(r, url) : reply_405(r, "POST");
    if ((sp = split_path(url, seg, &n)) == -2)
        return reply_error(r, MHD_HTTP_BAD_REQUEST,
                           "a name in the path is too long (at most 63 characters)");
    if (sp != 0 || n < 2 || strcmp(seg[0], "v1") != 0)
        return reply_error(r, MHD_HTTP_NOT_FOUND, "no such route; docs/admin-api.md lists them");
    if (n == 2) {
        const char *what = seg[1];
        if (strcmp(what, "endpoints") == 0)
            return endpoints_route(r, seg, n);
        if (strcmp(what, "profiles") == 0)
            return get    ? profiles_reply(r)
                   : post ? profile_put(r, NULL)
                          : reply_405(r, "GET or POST");
        if (!get && (strcmp(what, "health") == 0 || strcmp(what, "requests") == 0 ||
                     strcmp(what, "certs") == 0 || strcmp(what, "ca") == 0 ||
                     strcmp(what, "events") == 0 || strcmp(what, "audit") == 0))
            return reply_405(r, "GET");
        if (strcmp(what, "health") == 0)
            return reply_json(r, MHD_HTTP_OK, json_pack("{s:s}", "status", "ok"));
        if (strcmp(what, "requests") == 0)
            return requests_get(r);
        if (strcmp(what, "certs") == 0)
            return certs_get(r);
        if (strcmp(what, "ca") == 0)
            return cas_reply(r);
        if (strcmp(what, "events") == 0)
            return events_get(r);
        if (strcmp(what, "audit") == 0)
            return audit_get(r);
    }
    if (strcmp(seg[1], "endpoints") == 0)
        return endpoints_route(r, seg, n);
    if (n == 3 && strcmp(seg[1], "profiles") == 0) {
        struct scep_profile_row p;
        char msg[160];
        int found;
        if (post || patch)
            return profile_put(r, seg[2]);
        if (!get)
            return reply_405(r, "GET, POST or PATCH");
        if ((found = profile_find(r->a, seg[2], &p)) < 0)
            return reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "cannot read the profiles");
        if (!found) {
            snprintf(msg, sizeof(msg), "no profile named %s; scepctl profiles list shows them",
                     seg[2]);
            return reply_error(r, MHD_HTTP_NOT_FOUND, msg);
        }
        return reply_json(r, MHD_HTTP_OK, json_pack("{s:o}", "profile", profile_json(&p)));
    }
    return reply_error(r, MHD_HTTP_NOT_FOUND, "no such route; docs/admin-api.md lists them");
}

/* ---- the request loop ---- */

static void
completed(void *cls, struct MHD_Connection *c, void **req_cls, enum MHD_RequestTerminationCode t)
{
    struct admin_req *r = *req_cls;

    (void)cls;
    (void)c;
    (void)t;
    if (r != NULL) {
        OPENSSL_cleanse(r->d, r->len);
        free(r);
    }
    *req_cls = NULL;
}

static enum MHD_Result
handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
        const char *version, const char *upload_data, size_t *upload_size, void **req_cls)
{
    struct admin_req *r = *req_cls;
    enum MHD_Result ret;
    char path[128];

    (void)version;
    if (r == NULL) {
        /* first call: headers only */
        if ((r = calloc(1, sizeof(*r))) == NULL)
            return MHD_NO;
        r->a = cls;
        r->c = c;
        *req_cls = r;
        return MHD_YES;
    }
    r->method = method;
    if (*upload_size != 0) {
        if (r->len + *upload_size > sizeof(r->d))
            r->overflow = 1;
        else {
            memcpy(r->d + r->len, upload_data, *upload_size);
            r->len += *upload_size;
        }
        *upload_size = 0;
        return MHD_YES;
    }
    peer_actor(c, r->actor, sizeof(r->actor));
    /* the path names endpoints, accounts, profiles: never a secret (those are in bodies) */
    scep_log_escape(path, sizeof(path), url, strlen(url));
    if (!authorized(r->a, c)) {
        scep_log(SCEP_LOG_WARN, "admin", "unauthorized method=%s path=%s peer=%s", method, path,
                 r->actor);
        return reply_error(r, MHD_HTTP_UNAUTHORIZED,
                           "missing or wrong bearer token; scepctl reads it from DIR/admin.token");
    }
    if (r->overflow) {
        char msg[64];
        snprintf(msg, sizeof(msg), "body over %d bytes", ADMIN_MAX_BODY);
        ret = reply_error(r, MHD_HTTP_CONTENT_TOO_LARGE, msg);
    } else {
        ret = route(r, url);
    }
    scep_log(strcmp(method, MHD_HTTP_METHOD_GET) == 0 ? SCEP_LOG_DEBUG : SCEP_LOG_INFO, "admin",
             "request method=%s path=%s status=%u actor=%s", method, path, r->status, r->actor);
    return ret;
}

static int
listen_unix(const char *path, char *errbuf, size_t errlen)
{
    struct sockaddr_un sa;
    struct stat st;
    int fd;

    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sa.sun_path)) {
        snprintf(errbuf, errlen, "%s: path too long for a unix socket; use a shorter --data path",
                 path);
        return -1;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    /* A socket left by a killed scepd is replaced; anything else is not touched. */
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            snprintf(errbuf, errlen, "%s exists and is not a socket; move it away", path);
            return -1;
        }
        unlink(path);
    }
    if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
        return -1;
    {
        mode_t old = umask(0177);
        int r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
        umask(old);
        if (r != 0 || chmod(path, 0600) != 0 || listen(fd, 16) != 0) {
            snprintf(errbuf, errlen, "%s: cannot listen: %s", path, strerror(errno));
            close(fd);
            return -1;
        }
    }
    return fd;
}

enum scep_err
scep_admin_start(struct scep_service *svc, const char *datadir, struct scep_admin **out,
                 char *errbuf, size_t errlen)
{
    struct scep_admin *a;
    unsigned char *tok = NULL;
    size_t toklen = 0;
    char p[4096];

    *out = NULL;
    if ((a = calloc(1, sizeof(*a))) == NULL)
        return SCEP_E_NOMEM;
    a->svc = svc;
    a->fd = -1;
    if (scep_path(p, sizeof(p), datadir, SCEP_TOKEN_FILE) != SCEP_OK ||
        scep_pki_read_file(p, sizeof(a->token) - 1, &tok, &toklen) != SCEP_OK || toklen < 32) {
        snprintf(
            errbuf, errlen,
            "%s is missing or damaged; restore it or write 64 hex characters to it (mode 0600)", p);
        free(tok);
        free(a);
        return SCEP_E_KEY_FILE;
    }
    while (toklen > 0 && (tok[toklen - 1] == '\n' || tok[toklen - 1] == '\r'))
        toklen--;
    memcpy(a->token, tok, toklen);
    a->token_len = toklen;
    OPENSSL_cleanse(tok, toklen);
    free(tok);
    if (scep_path(a->sock_path, sizeof(a->sock_path), datadir, SCEP_SOCK_FILE) != SCEP_OK) {
        snprintf(errbuf, errlen, "%s: path too long for a unix socket; use a shorter --data path",
                 datadir);
        scep_admin_stop(a);
        return SCEP_E_TOO_LARGE;
    }
    if ((a->fd = listen_unix(a->sock_path, errbuf, errlen)) < 0) {
        a->sock_path[0] = '\0';
        scep_admin_stop(a);
        return SCEP_E_IO;
    }
    a->d =
        MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, handler, a,
                         MHD_OPTION_LISTEN_SOCKET, a->fd, MHD_OPTION_CONNECTION_LIMIT, 32,
                         MHD_OPTION_CONNECTION_TIMEOUT, 30, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                         (size_t)32768, MHD_OPTION_NOTIFY_COMPLETED, completed, a, MHD_OPTION_END);
    if (a->d == NULL) {
        snprintf(errbuf, errlen, "%s: cannot start the admin API", a->sock_path);
        scep_admin_stop(a);
        return SCEP_E_IO;
    }
    *out = a;
    return SCEP_OK;
}

void
scep_admin_stop(struct scep_admin *a)
{
    if (a == NULL)
        return;
    if (a->d != NULL)
        MHD_stop_daemon(a->d); /* closes the listen socket */
    else if (a->fd >= 0)
        close(a->fd);
    if (a->sock_path[0] != '\0')
        unlink(a->sock_path);
    OPENSSL_cleanse(a->token, sizeof(a->token));
    free(a);
}
