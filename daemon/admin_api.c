/*
 * admin_api.c - the operator API of a running scepd, on a unix socket in
 * the data directory (DIR/admin.sock, mode 0600), each request carrying
 * "Authorization: Bearer <DIR/admin.token>".
 *
 * Routes (JSON):  GET /v1/health   GET /v1/certs
 * It grows with the endpoint, request and revocation commands.  Every
 * route needs the token; the token is compared in constant time and never
 * logged.  The API never decrypts a client-supplied message (matrix A10).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <jansson.h>
#include <microhttpd.h>
#include <openssl/crypto.h>

#include "daemon.h"
#include "scepd/log.h"
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

static enum MHD_Result
handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
        const char *version, const char *upload_data, size_t *upload_size, void **req_cls)
{
    struct scep_admin *a = cls;
    json_t *arr;
    enum scep_err rc;

    (void)version;
    (void)upload_data;
    if (*req_cls == NULL) {
        *req_cls = a; /* first call: headers only */
        return MHD_YES;
    }
    if (*upload_size != 0) {
        *upload_size = 0; /* no route takes a body yet */
        return MHD_YES;
    }
    if (!authorized(a, c)) {
        scep_log(SCEP_LOG_WARN, "admin", "unauthorized method=%s", method);
        return reply_error(c, MHD_HTTP_UNAUTHORIZED,
                           "missing or wrong bearer token; scepctl reads it from DIR/admin.token");
    }
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0)
        return reply_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed");
    if (strcmp(url, "/v1/health") == 0)
        return reply_json(c, MHD_HTTP_OK, json_pack("{s:s}", "status", "ok"));
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
    a->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, handler, a,
                            MHD_OPTION_LISTEN_SOCKET, a->fd, MHD_OPTION_CONNECTION_LIMIT, 32,
                            MHD_OPTION_CONNECTION_TIMEOUT, 30, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                            (size_t)32768, MHD_OPTION_END);
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
