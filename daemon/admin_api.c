/*
 * admin_api.c - the operator API of a running scepd, on a unix socket in
 * the data directory (DIR/admin.sock, mode 0600), each request carrying
 * "Authorization: Bearer <DIR/admin.token>".
 *
 * Routes (JSON):  GET /v1/health   GET /v1/certs   GET /v1/requests[?status=S]
 *                 POST /v1/requests/ID/approve   POST /v1/requests/ID/reject {"reason":..}
 *                 POST /v1/certs/SERIAL/revoke {"reason": "keyCompromise"}
 *                 GET /v1/ca   POST /v1/ca/rollover {"endpoint", "self_signed"}
 *                 POST /v1/ca/switch {"endpoint"}
 *                 GET /v1/profiles   POST /v1/profiles {"name","template","validity_days","eku"}
 * It grows with the endpoint, request and revocation commands.  Every
 * route needs the token; the token is compared in constant time and never
 * logged.  The API never decrypts a client-supplied message (matrix A10).
 */
#include <errno.h>
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
#include "scepd/setup.h"
#include "scepd/store.h"

struct scep_admin {
    struct MHD_Daemon *d;
    struct scep_service *svc;
    char token[128];
    size_t token_len;
    char sock_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    int fd;
};

static enum MHD_Result
reply_json(struct MHD_Connection *c, unsigned status, json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT);
    struct MHD_Response *resp;
    enum MHD_Result ret;

    json_decref(body);
    if (text == NULL)
        return MHD_NO;
    resp = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    if (resp == NULL) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    ret = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result
reply_error(struct MHD_Connection *c, unsigned status, const char *msg)
{
    return reply_json(c, status, json_pack("{s:s}", "error", msg));
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
static enum MHD_Result
decide(struct scep_admin *a, struct MHD_Connection *c, const char *url, const char *body,
       size_t bodylen)
{
    const char *p = url + strlen("/v1/requests/"), *slash = strchr(p, '/');
    char idtext[24], serial[48], reason[256] = "";
    long long id;
    enum scep_err rc;
    int approve;

    if (slash == NULL || (size_t)(slash - p) >= sizeof(idtext))
        return reply_error(c, MHD_HTTP_NOT_FOUND, "no such route");
    memcpy(idtext, p, (size_t)(slash - p));
    idtext[slash - p] = '\0';
    if (scep_strtonum(idtext, 1, INT64_MAX, &id) != SCEP_OK)
        return reply_error(c, MHD_HTTP_BAD_REQUEST, "the request id must be a positive number");
    if (strcmp(slash, "/approve") == 0)
        approve = 1;
    else if (strcmp(slash, "/reject") == 0)
        approve = 0;
    else
        return reply_error(c, MHD_HTTP_NOT_FOUND, "no such route; use approve or reject");
    if (!approve && bodylen > 0) {
        json_error_t jerr;
        json_t *j = json_loadb(body, bodylen, 0, &jerr), *r;
        if (j == NULL || !json_is_object(j)) {
            json_decref(j);
            return reply_error(c, MHD_HTTP_BAD_REQUEST, "the body must be a JSON object");
        }
        r = json_object_get(j, "reason");
        if (r != NULL && !json_is_string(r)) {
            json_decref(j);
            return reply_error(c, MHD_HTTP_BAD_REQUEST, "reason must be a string");
        }
        if (r != NULL)
            snprintf(reason, sizeof(reason), "%s", json_string_value(r));
        json_decref(j);
    }
    rc = approve ? scep_service_approve(a->svc, (int64_t)id, serial, sizeof(serial))
                 : scep_service_reject(a->svc, (int64_t)id, reason);
    switch (rc) {
    case SCEP_OK:
        if (approve)
            return reply_json(c, MHD_HTTP_OK,
                              json_pack("{s:I, s:s, s:s}", "id", (json_int_t)id, "status", "issued",
                                        "serial", serial));
        return reply_json(c, MHD_HTTP_OK,
                          json_pack("{s:I, s:s, s:s}", "id", (json_int_t)id, "status", "rejected",
                                    "reason", reason));
    case SCEP_E_NO_ENTRY:
        return reply_error(c, MHD_HTTP_NOT_FOUND, "no request with this id");
    case SCEP_E_NOT_PENDING:
        return reply_error(c, MHD_HTTP_CONFLICT, "the request is not pending (already decided)");
    default:
        return reply_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, scep_strerror(rc));
    }
}

/* POST /v1/certs/SERIAL/revoke */
static enum MHD_Result
revoke_cert(struct scep_admin *a, struct MHD_Connection *c, const char *url, const char *body,
            size_t bodylen)
{
    const char *p = url + strlen("/v1/certs/"), *slash = strchr(p, '/');
    char serial[48];
    int reason = 0;
    size_t i, n;
    enum scep_err rc;

    if (slash == NULL || strcmp(slash, "/revoke") != 0)
        return reply_error(c, MHD_HTTP_NOT_FOUND, "no such route; use /v1/certs/SERIAL/revoke");
    n = (size_t)(slash - p);
    if (n == 0 || n >= sizeof(serial))
        return reply_error(c, MHD_HTTP_BAD_REQUEST,
                           "the serial must be hex, as certs list shows it");
    for (i = 0; i < n; i++) {
        char ch = p[i];
        if (ch >= 'A' && ch <= 'F')
            ch = (char)(ch - 'A' + 'a');
        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f')))
            return reply_error(c, MHD_HTTP_BAD_REQUEST,
                               "the serial must be hex, as certs list shows it");
        serial[i] = ch;
    }
    serial[n] = '\0';
    if (bodylen > 0) {
        json_error_t jerr;
        json_t *j = json_loadb(body, bodylen, 0, &jerr), *r;
        if (j == NULL || !json_is_object(j)) {
            json_decref(j);
            return reply_error(c, MHD_HTTP_BAD_REQUEST, "the body must be a JSON object");
        }
        r = json_object_get(j, "reason");
        if (r != NULL &&
            (!json_is_string(r) || (reason = scep_crl_reason_code(json_string_value(r))) < 0)) {
            json_decref(j);
            return reply_error(c, MHD_HTTP_BAD_REQUEST,
                               "reason must be one of unspecified, keyCompromise, cACompromise, "
                               "affiliationChanged, superseded, cessationOfOperation, "
                               "privilegeWithdrawn, aACompromise");
        }
        json_decref(j);
    }
    rc = scep_service_revoke(a->svc, serial, reason);
    switch (rc) {
    case SCEP_OK:
        return reply_json(c, MHD_HTTP_OK,
                          json_pack("{s:s, s:s, s:s}", "serial", serial, "status", "revoked",
                                    "reason", scep_crl_reason_name(reason)));
    case SCEP_E_NO_ENTRY:
        return reply_error(c, MHD_HTTP_NOT_FOUND, "no certificate with this serial");
    case SCEP_E_CONFLICT:
        return reply_error(c, MHD_HTTP_CONFLICT, "the certificate is already revoked");
    default:
        return reply_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, scep_strerror(rc));
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

/* POST /v1/ca/rollover and /v1/ca/switch */
static enum MHD_Result
ca_change(struct scep_admin *a, struct MHD_Connection *c, const char *url, const char *body,
          size_t bodylen)
{
    const char *endpoint = NULL;
    int self_signed = 0;
    char err[512];
    json_t *j = NULL;
    json_error_t jerr;
    enum scep_err rc;

    if (bodylen > 0) {
        json_t *e, *ss;
        j = json_loadb(body, bodylen, 0, &jerr);
        if (j == NULL || !json_is_object(j)) {
            json_decref(j);
            return reply_error(c, MHD_HTTP_BAD_REQUEST, "the body must be a JSON object");
        }
        e = json_object_get(j, "endpoint");
        ss = json_object_get(j, "self_signed");
        if ((e != NULL && !json_is_string(e)) || (ss != NULL && !json_is_boolean(ss))) {
            json_decref(j);
            return reply_error(c, MHD_HTTP_BAD_REQUEST,
                               "endpoint must be a string and self_signed a boolean");
        }
        endpoint = e != NULL ? json_string_value(e) : NULL;
        self_signed = ss != NULL && json_is_true(ss);
    }
    if (strcmp(url, "/v1/ca/rollover") == 0)
        rc = scep_service_rollover(a->svc, endpoint, self_signed, err, sizeof(err));
    else if (strcmp(url, "/v1/ca/switch") == 0)
        rc = scep_service_switch_ca(a->svc, endpoint, err, sizeof(err));
    else {
        json_decref(j);
        return reply_error(c, MHD_HTTP_NOT_FOUND, "no such route; use rollover or switch");
    }
    json_decref(j);
    switch (rc) {
    case SCEP_OK: {
        json_t *arr = json_array();
        if (arr == NULL || scep_service_each_ca(a->svc, ca_to_json, arr) != SCEP_OK) {
            json_decref(arr);
            return reply_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot list the CAs");
        }
        return reply_json(c, MHD_HTTP_OK, json_pack("{s:o}", "cas", arr));
    }
    case SCEP_E_NO_ENTRY:
        return reply_error(c, MHD_HTTP_NOT_FOUND, err[0] ? err : scep_strerror(rc));
    case SCEP_E_CONFLICT:
        return reply_error(c, MHD_HTTP_CONFLICT, err[0] ? err : scep_strerror(rc));
    default:
        return reply_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, err[0] ? err : scep_strerror(rc));
    }
}

static int
profile_to_json(void *arg, const struct scep_profile_row *p)
{
    json_t *o =
        json_pack("{s:I, s:s, s:s, s:i, s:s}", "id", (json_int_t)p->id, "name", p->name, "template",
                  p->template_name, "validity_days", p->validity_days, "eku", p->eku);

    return o == NULL || json_array_append_new(arg, o) != 0;
}

static enum MHD_Result
profiles_reply(struct scep_admin *a, struct MHD_Connection *c)
{
    json_t *arr = json_array();

    if (arr == NULL || scep_service_each_profile(a->svc, profile_to_json, arr) != SCEP_OK) {
        json_decref(arr);
        return reply_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot list the profiles");
    }
    return reply_json(c, MHD_HTTP_OK, json_pack("{s:o}", "profiles", arr));
}

/* POST /v1/profiles */
static enum MHD_Result
add_profile(struct scep_admin *a, struct MHD_Connection *c, const char *body, size_t bodylen)
{
    struct scep_profile_row p;
    json_error_t jerr;
    json_t *j = json_loadb(body, bodylen, 0, &jerr), *name, *tmpl, *days, *eku;
    char err[512];
    enum scep_err rc;

    memset(&p, 0, sizeof(p));
    if (j == NULL || !json_is_object(j)) {
        json_decref(j);
        return reply_error(c, MHD_HTTP_BAD_REQUEST, "the body must be a JSON object");
    }
    name = json_object_get(j, "name");
    tmpl = json_object_get(j, "template");
    days = json_object_get(j, "validity_days");
    eku = json_object_get(j, "eku");
    if (!json_is_string(name) || (tmpl != NULL && !json_is_string(tmpl)) ||
        (days != NULL && !json_is_integer(days)) || (eku != NULL && !json_is_string(eku)) ||
        strlen(json_string_value(name)) >= sizeof(p.name) ||
        (tmpl != NULL && strlen(json_string_value(tmpl)) >= sizeof(p.template_name)) ||
        (eku != NULL && strlen(json_string_value(eku)) >= sizeof(p.eku))) {
        json_decref(j);
        return reply_error(c, MHD_HTTP_BAD_REQUEST,
                           "give name (string), template (string), validity_days (number), eku "
                           "(string like clientAuth,serverAuth)");
    }
    snprintf(p.name, sizeof(p.name), "%s", json_string_value(name));
    if (tmpl != NULL)
        snprintf(p.template_name, sizeof(p.template_name), "%s", json_string_value(tmpl));
    p.validity_days = days != NULL ? (int)json_integer_value(days) : 365;
    snprintf(p.eku, sizeof(p.eku), "%s", eku != NULL ? json_string_value(eku) : "clientAuth");
    json_decref(j);
    rc = scep_service_add_profile(a->svc, &p, err, sizeof(err));
    if (rc == SCEP_OK)
        return profiles_reply(a, c);
    return reply_error(c,
                       rc == SCEP_E_CONFLICT      ? MHD_HTTP_CONFLICT
                       : rc == SCEP_E_INVALID_ARG ? MHD_HTTP_BAD_REQUEST
                                                  : MHD_HTTP_SERVICE_UNAVAILABLE,
                       err[0] ? err : scep_strerror(rc));
}

struct body {
    char d[4096];
    size_t len;
    int overflow;
};

static void
completed(void *cls, struct MHD_Connection *c, void **req_cls, enum MHD_RequestTerminationCode t)
{
    (void)cls;
    (void)c;
    (void)t;
    free(*req_cls);
    *req_cls = NULL;
}

static enum MHD_Result
handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
        const char *version, const char *upload_data, size_t *upload_size, void **req_cls)
{
    struct scep_admin *a = cls;
    json_t *arr;
    enum scep_err rc;

    struct body *b = *req_cls;

    (void)version;
    if (b == NULL) {
        /* first call: headers only */
        if ((b = calloc(1, sizeof(*b))) == NULL)
            return MHD_NO;
        *req_cls = b;
        return MHD_YES;
    }
    if (*upload_size != 0) {
        if (b->len + *upload_size > sizeof(b->d))
            b->overflow = 1;
        else {
            memcpy(b->d + b->len, upload_data, *upload_size);
            b->len += *upload_size;
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (!authorized(a, c)) {
        scep_log(SCEP_LOG_WARN, "admin", "unauthorized method=%s", method);
        return reply_error(c, MHD_HTTP_UNAUTHORIZED,
                           "missing or wrong bearer token; scepctl reads it from DIR/admin.token");
    }
    if (b->overflow)
        return reply_error(c, MHD_HTTP_CONTENT_TOO_LARGE, "body over 4096 bytes");
    if (strcmp(method, MHD_HTTP_METHOD_POST) == 0) {
        if (strncmp(url, "/v1/requests/", 13) == 0)
            return decide(a, c, url, b->d, b->len);
        if (strncmp(url, "/v1/certs/", 10) == 0)
            return revoke_cert(a, c, url, b->d, b->len);
        if (strncmp(url, "/v1/ca/", 7) == 0)
            return ca_change(a, c, url, b->d, b->len);
        if (strcmp(url, "/v1/profiles") == 0)
            return add_profile(a, c, b->d, b->len);
        return reply_error(c, MHD_HTTP_NOT_FOUND, "no such route");
    }
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0)
        return reply_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed");
    if (strcmp(url, "/v1/health") == 0)
        return reply_json(c, MHD_HTTP_OK, json_pack("{s:s}", "status", "ok"));
    if (strcmp(url, "/v1/requests") == 0) {
        const char *st = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "status");
        enum scep_req_status want;
        int filter = st != NULL;
        if (filter) {
            if (strcmp(st, "pending") == 0)
                want = SCEP_REQ_PENDING;
            else if (strcmp(st, "issued") == 0)
                want = SCEP_REQ_ISSUED;
            else if (strcmp(st, "rejected") == 0)
                want = SCEP_REQ_REJECTED;
            else if (strcmp(st, "failed") == 0)
                want = SCEP_REQ_FAILED;
            else
                return reply_error(c, MHD_HTTP_BAD_REQUEST,
                                   "status must be pending, issued, rejected or failed");
        }
        if ((arr = json_array()) == NULL)
            return MHD_NO;
        rc = scep_store_each_request(scep_service_store(a->svc), filter ? &want : NULL,
                                     request_to_json, arr);
        if (rc != SCEP_OK) {
            json_decref(arr);
            return reply_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, scep_strerror(rc));
        }
        return reply_json(c, MHD_HTTP_OK, json_pack("{s:o}", "requests", arr));
    }
    if (strcmp(url, "/v1/profiles") == 0)
        return profiles_reply(a, c);
    if (strcmp(url, "/v1/ca") == 0) {
        if ((arr = json_array()) == NULL ||
            scep_service_each_ca(a->svc, ca_to_json, arr) != SCEP_OK) {
            json_decref(arr);
            return reply_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot list the CAs");
        }
        return reply_json(c, MHD_HTTP_OK, json_pack("{s:o}", "cas", arr));
    }
    if (strcmp(url, "/v1/certs") == 0) {
        if ((arr = json_array()) == NULL)
            return MHD_NO;
        rc = scep_store_each_cert(scep_service_store(a->svc), cert_to_json, arr);
        if (rc != SCEP_OK) {
            json_decref(arr);
            return reply_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, scep_strerror(rc));
        }
        return reply_json(c, MHD_HTTP_OK, json_pack("{s:o}", "certificates", arr));
    }
    return reply_error(c, MHD_HTTP_NOT_FOUND, "no such route");
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
