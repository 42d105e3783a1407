/*
 * http.c - SCEP over HTTP on libmicrohttpd (RFC 8894 §4.1).
 *
 * Routes on the query string, not the path: /scep, /scep/<endpoint>, each
 * with an optional trailing /pkiclient.exe (Windows appends it), plus
 * /cgi-bin/pkiclient.exe and the NDES path /certsrv/mscep/mscep.dll.
 * The raw request-target is taken from the URI log callback so that the
 * GET message= value is decoded by our own quirk-aware decoder (query.h),
 * never by a form decoder that turns '+' into a space (digest P4).
 * Limits are explicit: body cap, per-connection memory (headers + URL),
 * connection count, per-IP connections, timeout.
 *
 * Threads: libmicrohttpd's threads (one per core) read requests and answer
 * everything cheap themselves; a PKIOperation (private-key work, a
 * durable commit) is handed to a pool of workers through one FIFO queue
 * while its connection is suspended, and the worker resumes it with the
 * result.  Binding the work to the connection's own thread instead left
 * it to chance how connections were spread over threads: measured with 8 clients and 8 threads, 3
 * threads had none and others two, whose clients then waited twice as long (p99 three times the
 * median).
 */
#include <arpa/inet.h>
#include <pthread.h>
#include <stdatomic.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "daemon.h"
#include "scepd/buf.h"
#include "scepd/gate.h"
#include "scepd/log.h"
#include "scepd/pkimsg.h"
#include "scepd/query.h"
#include "scepd/ratelimit.h"

#define MAX_URI 65536
#define STOP_GRACE_S 5 /* at stop, how long requests under way may take to be answered */

/*
 * Every open connection, so a reaper can end those whose request does not
 * arrive complete within the request deadline: libmicrohttpd's own timeout
 * only measures inactivity, and a client trickling one header byte a second
 * (slowloris) is never inactive.
 */
struct conn {
    struct MHD_Connection *c;
    int fd;
    time_t since; /* start of the current wait for a complete request */
    int busy;     /* inside our handler: our own work is not the client's delay */
    int reaped;
    struct conn *prev, *next;
};

struct req;

struct scep_http {
    struct MHD_Daemon *d;
    struct scep_service *svc;
    struct scep_ratelimit *rl;
    unsigned port;
    unsigned request_timeout;
    pthread_mutex_t cmu;
    struct conn *conns;
    pthread_t reaper;
    int reaper_running;
    int stopping;
    pthread_cond_t stop_cv;
    atomic_int closing;       /* stopping: every reply says "Connection: close" */
    unsigned active;          /* requests begun and not yet completed (cmu) */
    pthread_cond_t active_cv; /* signalled when active drops to 0 */
    /* the PKIOperation queue and its workers */
    pthread_mutex_t qmu;
    pthread_cond_t qcv, idle_cv;
    struct req *qhead, *qtail;
    unsigned inflight; /* queued or being worked on */
    int draining;      /* stopping: new work runs on the connection's thread */
    int workers_stop;
    pthread_t *workers;
    unsigned nworkers;
    struct scep_gate *gate; /* CPU slots of the workers, or NULL (no limit) */
};

struct req {
    char *uri; /* raw request-target */
    struct scep_buf *body;
    struct timespec t0;
    int started;
    int overflow;
    int http10;
    /* a PKIOperation handed to a worker */
    int queued;
    struct MHD_Connection *c;
    const struct scep_endpoint *ep;
    const unsigned char *msg; /* the body, or der below */
    size_t msglen;
    unsigned char *der; /* a GET message, decoded (owned) */
    unsigned char peer[16];
    size_t peerlen;
    char op[48];
    struct scep_result res;
    struct req *next;
};

static void *
uri_cb(void *cls, const char *uri, struct MHD_Connection *c)
{
    struct scep_http *h = cls;
    struct req *r = calloc(1, sizeof(*r));
    size_t n;

    (void)c;
    if (r == NULL)
        return NULL;
    pthread_mutex_lock(&h->cmu);
    h->active++;
    pthread_mutex_unlock(&h->cmu);
    clock_gettime(CLOCK_MONOTONIC, &r->t0);
    n = strnlen(uri, MAX_URI + 1);
    if (n <= MAX_URI)
        r->uri = strndup(uri, n);
    return r;
}

static void
conn_cb(void *cls, struct MHD_Connection *c, void **socket_context,
        enum MHD_ConnectionNotificationCode code)
{
    struct scep_http *h = cls;
    struct conn *k = *socket_context;

    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        if ((k = calloc(1, sizeof(*k))) == NULL)
            return;
        k->c = c;
        k->fd = ci != NULL ? ci->connect_fd : -1;
        k->since = time(NULL);
        pthread_mutex_lock(&h->cmu);
        k->next = h->conns;
        if (h->conns != NULL)
            h->conns->prev = k;
        h->conns = k;
        pthread_mutex_unlock(&h->cmu);
        *socket_context = k;
    } else if (code == MHD_CONNECTION_NOTIFY_CLOSED && k != NULL) {
        pthread_mutex_lock(&h->cmu);
        if (k->prev != NULL)
            k->prev->next = k->next;
        else
            h->conns = k->next;
        if (k->next != NULL)
            k->next->prev = k->prev;
        pthread_mutex_unlock(&h->cmu);
        free(k);
        *socket_context = NULL;
    }
}

static struct conn *
conn_of(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

    return ci != NULL ? ci->socket_context : NULL;
}

static void
conn_busy(struct scep_http *h, struct MHD_Connection *c, int busy)
{
    struct conn *k = conn_of(c);

    if (k == NULL)
        return;
    pthread_mutex_lock(&h->cmu);
    k->busy = busy;
    k->since = time(NULL); /* the next request's clock starts after this reply */
    pthread_mutex_unlock(&h->cmu);
}

static void *
reaper_main(void *arg)
{
    struct scep_http *h = arg;
    struct timespec ts;

    (void)pthread_setname_np(pthread_self(), "scepd-reaper");
    pthread_mutex_lock(&h->cmu);
    while (!h->stopping) {
        struct conn *k;
        time_t now = time(NULL);
        for (k = h->conns; k != NULL; k = k->next) {
            if (!k->busy && !k->reaped && k->fd >= 0 &&
                now - k->since > (time_t)h->request_timeout) {
                /* MHD sees the end of the stream and closes the connection itself. */
                shutdown(k->fd, SHUT_RDWR);
                k->reaped = 1;
                scep_log(SCEP_LOG_WARN, "http", "closed slow connection after=%lds",
                         (long)(now - k->since));
            }
        }
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&h->stop_cv, &h->cmu, &ts);
    }
    pthread_mutex_unlock(&h->cmu);
    return NULL;
}

static void
completed_cb(void *cls, struct MHD_Connection *c, void **req_cls, enum MHD_RequestTerminationCode t)
{
    struct scep_http *h = cls;
    struct req *r = *req_cls;

    (void)c;
    (void)t;
    if (r == NULL)
        return;
    pthread_mutex_lock(&h->cmu);
    if (--h->active == 0)
        pthread_cond_broadcast(&h->active_cv);
    pthread_mutex_unlock(&h->cmu);
    free(r->uri);
    scep_buf_free(r->body);
    free(r->der);
    scep_result_clear(&r->res);
    free(r);
    *req_cls = NULL;
}

static enum MHD_Result
send_reply(struct scep_http *h, struct MHD_Connection *c, int status, const char *ctype,
           const void *body, size_t len, unsigned retry_after)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)(uintptr_t)body, MHD_RESPMEM_MUST_COPY);
    enum MHD_Result ret;

    if (resp == NULL)
        return MHD_NO;
    if (ctype != NULL)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    /* Stopping: no further request on this connection (see scep_http_stop). */
    if (atomic_load(&h->closing))
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    if (status == MHD_HTTP_SERVICE_UNAVAILABLE || status == MHD_HTTP_TOO_MANY_REQUESTS) {
        char ra[16];
        snprintf(ra, sizeof(ra), "%u", retry_after ? retry_after : 5);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, ra);
    }
    ret = MHD_queue_response(c, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static void
peer_text(struct MHD_Connection *c, char *buf, size_t len)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci != NULL ? ci->client_addr : NULL;

    snprintf(buf, len, "-");
    if (sa == NULL)
        return;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, buf,
                  (socklen_t)len);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, buf,
                  (socklen_t)len);
}

/* The peer address as bytes (4 or 16), for the rate limiter. */
static size_t
peer_bytes(struct MHD_Connection *c, unsigned char out[16])
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci != NULL ? ci->client_addr : NULL;

    if (sa != NULL && sa->sa_family == AF_INET) {
        memcpy(out, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
        return 4;
    }
    if (sa != NULL && sa->sa_family == AF_INET6) {
        memcpy(out, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 16);
        return 16;
    }
    return 0;
}

/*
 * Endpoint name from the path, or -1 when the path is not a SCEP path.
 * *name points into path (not terminated), *nlen 0 means the default.
 */
static int
route(const char *path, size_t plen, const char **name, size_t *nlen)
{
    static const char suffix[] = "/pkiclient.exe";
    size_t slen = sizeof(suffix) - 1;

    *name = NULL;
    *nlen = 0;
    while (plen > 1 && path[plen - 1] == '/')
        plen--;
    if (plen >= slen && memcmp(path + plen - slen, suffix, slen) == 0)
        plen -= slen;
    if ((plen == 5 && memcmp(path, "/scep", 5) == 0) ||
        (plen == 8 && memcmp(path, "/cgi-bin", 8) == 0) || plen == 0 ||
        (plen == 24 && memcmp(path, "/certsrv/mscep/mscep.dll", 24) == 0) ||
        (plen == 14 && memcmp(path, "/certsrv/mscep", 14) == 0))
        return 0;
    if (plen > 6 && memcmp(path, "/scep/", 6) == 0) {
        size_t i;
        for (i = 6; i < plen; i++) {
            char ch = path[i];
            if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' || ch == '.'))
                return -1;
        }
        *name = path + 6;
        *nlen = plen - 6;
        return 0;
    }
    return -1;
}

static void
log_request(struct MHD_Connection *c, const struct req *r, const char *method,
            const struct scep_endpoint *ep, const char *op, const struct scep_result *res)
{
    const char *version = r->http10 ? "1.0" : "1.1";
    struct timespec t1;
    char peer[64], fi[16];
    double ms;

    clock_gettime(CLOCK_MONOTONIC, &t1);
    ms = (double)(t1.tv_sec - r->t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - r->t0.tv_nsec) / 1e6;
    peer_text(c, peer, sizeof(peer));
    if (res->fail_info >= 0)
        snprintf(fi, sizeof(fi), "%d", res->fail_info);
    else
        snprintf(fi, sizeof(fi), "-");
    scep_log(res->http_status >= 500 ? SCEP_LOG_ERROR : SCEP_LOG_INFO, "http",
             "request endpoint=%s op=%s method=%s http=%s msgtype=%d(%s) txid=%s status=%d pki=%s "
             "failinfo=%s err=%s serial=%s peer=%s ms=%.2f",
             ep != NULL ? ep->name : "-", op, method, version, res->msgtype,
             res->msgtype >= 0 ? scep_msgtype_name(res->msgtype) : "-",
             res->txid[0] ? res->txid : "-", res->http_status, res->pki_status, fi,
             res->err != SCEP_OK ? scep_errname(res->err) : "-", res->serial[0] ? res->serial : "-",
             peer, ms);
}

static void *
worker_main(void *arg)
{
    struct scep_http *h = arg;

    (void)pthread_setname_np(pthread_self(), "scepd-worker");
    pthread_mutex_lock(&h->qmu);
    for (;;) {
        struct req *r;
        struct MHD_Connection *c;

        while (h->qhead == NULL && !h->workers_stop)
            pthread_cond_wait(&h->qcv, &h->qmu);
        if (h->qhead == NULL)
            break;
        r = h->qhead;
        if ((h->qhead = r->next) == NULL)
            h->qtail = NULL;
        r->next = NULL;
        pthread_mutex_unlock(&h->qmu);
        /* the service leaves the slot itself while it waits for its commit */
        scep_gate_enter(h->gate);
        scep_service_pkioperation(h->svc, r->ep, r->msg, r->msglen, &r->res);
        scep_gate_leave(h->gate);
        /* From the resume on, the connection's thread owns r again (and may free it). */
        c = r->c;
        MHD_resume_connection(c);
        pthread_mutex_lock(&h->qmu);
        if (--h->inflight == 0)
            pthread_cond_broadcast(&h->idle_cv);
    }
    pthread_mutex_unlock(&h->qmu);
    return NULL;
}

/*
 * Hand r's PKIOperation to a worker: 1 when queued (the connection is
 * suspended until the worker resumes it; the handler is then called again
 * and finds r->queued), 0 when the caller must do it itself (no workers,
 * or the server is stopping).  Never on this thread to save the hand-off
 * (0.3-0.5 ms at one client): meanwhile it would answer none of its other
 * connections, for as long as a busy database or a validation service
 * makes the operation wait.
 */
static int
queue_pkioperation(struct scep_http *h, struct MHD_Connection *c, struct req *r)
{
    pthread_mutex_lock(&h->qmu);
    if (h->nworkers == 0 || h->draining) {
        pthread_mutex_unlock(&h->qmu);
        return 0;
    }
    /* Suspended before it is queued: a worker must never resume a running connection. */
    MHD_suspend_connection(c);
    r->queued = 1;
    r->c = c;
    r->next = NULL;
    if (h->qtail != NULL)
        h->qtail->next = r;
    else
        h->qhead = r;
    h->qtail = r;
    h->inflight++;
    pthread_cond_signal(&h->qcv);
    pthread_mutex_unlock(&h->qmu);
    return 1;
}

static enum MHD_Result
handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
        const char *version, const char *upload_data, size_t *upload_size, void **req_cls)
{
    struct scep_http *h = cls;
    struct req *r = *req_cls;
    struct scep_result res;
    const struct scep_endpoint *ep = NULL;
    const char *uri, *q, *name, *opv = NULL, *msgv = NULL;
    char opname[32], esc[48];
    unsigned char peer[16];
    size_t plen_peer = 0;
    unsigned retry_after = 0;
    size_t plen, qlen = 0, nlen, oplen = 0, msglen = 0;
    int is_get = strcmp(method, MHD_HTTP_METHOD_GET) == 0;
    int is_post = strcmp(method, MHD_HTTP_METHOD_POST) == 0;
    int is_head = strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
    enum MHD_Result ret;

    (void)url;
    memset(&res, 0, sizeof(res));
    res.msgtype = -1;
    res.fail_info = -1;
    res.pki_status = "-";
    if (r == NULL || r->uri == NULL)
        return send_reply(h, c, MHD_HTTP_URI_TOO_LONG, "text/plain", "scepd: URI too long\n", 20,
                          0);
    if (!r->started) {
        r->http10 = version != NULL && strcmp(version, MHD_HTTP_VERSION_1_0) == 0;
        const char *cl =
            MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        r->started = 1;
        /* Refuse an announced oversize body before reading any of it (matrix T4). */
        if (cl != NULL && strlen(cl) > 9) {
            r->overflow = 1;
        } else if (cl != NULL && (size_t)strtoul(cl, NULL, 10) > SCEP_MAX_MESSAGE) {
            r->overflow = 1;
        }
        if (r->overflow) {
            scep_service_http_error(SCEP_E_TOO_LARGE, &res);
            log_request(c, r, method, NULL, "-", &res);
            ret = send_reply(h, c, res.http_status, res.content_type, res.body, res.body_len, 0);
            scep_result_clear(&res);
            return ret;
        }
        return MHD_YES;
    }
    if (*upload_size != 0) {
        if (r->overflow) {
            *upload_size = 0;
            return MHD_YES;
        }
        if (r->body == NULL && (r->body = scep_buf_new(SCEP_MAX_MESSAGE)) == NULL)
            return MHD_NO;
        if (scep_buf_put(r->body, upload_data, *upload_size) != SCEP_OK)
            r->overflow = 1; /* chunked past the cap: drain, then answer 413 */
        *upload_size = 0;
        return MHD_YES;
    }

    if (r->queued) {
        /* Back from a worker with the PKIOperation's result. */
        res = r->res;
        memset(&r->res, 0, sizeof(r->res));
        if (res.err == SCEP_E_CHALLENGE || res.err == SCEP_E_CHALLENGE_MISSING)
            scep_ratelimit_fail(h->rl, r->peer, r->peerlen, time(NULL));
        log_request(c, r, method, r->ep, r->op, &res);
        ret = send_reply(h, c, res.http_status, res.content_type, res.body, res.body_len, 0);
        scep_result_clear(&res);
        conn_busy(h, c, 0);
        return ret;
    }
    conn_busy(h, c, 1);
    uri = r->uri;
    q = strchr(uri, '?');
    plen = q != NULL ? (size_t)(q - uri) : strlen(uri);
    if (q != NULL) {
        q++;
        qlen = strlen(q);
    }
    if (r->overflow) {
        scep_service_http_error(SCEP_E_TOO_LARGE, &res);
        goto reply;
    }
    /* /crl/<ca>.crl: the CA's CRL (RFC 5280 §5), DER */
    if (plen > 9 && memcmp(uri, "/crl/", 5) == 0 && memcmp(uri + plen - 4, ".crl", 4) == 0) {
        int64_t ca_id = scep_service_ca_by_name(h->svc, uri + 5, plen - 9);
        unsigned char *crl = NULL;
        size_t crllen = 0;
        enum scep_err rc;
        if (!is_get && !is_head) {
            scep_service_http_error(SCEP_E_METHOD, &res);
        } else if (ca_id == 0) {
            scep_service_http_error(SCEP_E_NOT_FOUND, &res);
        } else if ((rc = scep_service_crl(h->svc, ca_id, &crl, &crllen)) != SCEP_OK) {
            scep_service_http_error(rc, &res);
        } else {
            res.http_status = 200;
            res.content_type = "application/pkix-crl";
            res.owned = crl;
            res.body = crl;
            res.body_len = crllen;
        }
        snprintf(esc, sizeof(esc), "GetCRL-http");
        log_request(c, r, method, NULL, esc, &res);
        ret = send_reply(h, c, res.http_status, res.content_type, res.body, res.body_len, 0);
        scep_result_clear(&res);
        conn_busy(h, c, 0);
        return ret;
    }
    if (route(uri, plen, &name, &nlen) != 0 ||
        (ep = scep_service_endpoint(h->svc, name, nlen)) == NULL || !ep->enabled) {
        ep = NULL;
        scep_service_http_error(SCEP_E_NOT_FOUND, &res);
        goto reply;
    }
    if (q == NULL || scep_query_find(q, qlen, "operation", &opv, &oplen) != SCEP_OK) {
        scep_service_http_error(SCEP_E_NO_OPERATION, &res);
        goto reply;
    }
    if (scep_query_unescape(opv, oplen, opname, sizeof(opname)) != SCEP_OK) {
        scep_service_http_error(SCEP_E_UNKNOWN_OPERATION, &res);
        goto reply;
    }
    if (strcmp(opname, "GetCACaps") == 0 || strcmp(opname, "GetCACert") == 0 ||
        strcmp(opname, "GetNextCACert") == 0) {
        /* message= (a CA identifier; Windows sends "default") is accepted and ignored. */
        if (!is_get && !is_head) {
            scep_service_http_error(SCEP_E_METHOD, &res);
            goto reply;
        }
        if (strcmp(opname, "GetCACaps") == 0)
            scep_service_getcacaps(h->svc, ep, &res);
        else if (strcmp(opname, "GetCACert") == 0)
            scep_service_getcacert(h->svc, ep, &res);
        else
            scep_service_getnextcacert(h->svc, ep, &res);
    } else if (strcmp(opname, "PKIOperation") == 0) {
        /* A source that keeps failing authentication gets no more private-key work. */
        plen_peer = peer_bytes(c, peer);
        if (scep_ratelimit_blocked(h->rl, peer, plen_peer, time(NULL), &retry_after)) {
            scep_service_http_error(SCEP_E_RATE_LIMITED, &res);
            goto reply;
        }
        if (is_post) {
            if (r->body == NULL || scep_buf_len(r->body) == 0) {
                scep_service_http_error(SCEP_E_NO_MESSAGE, &res);
                goto reply;
            }
            r->msg = scep_buf_ptr(r->body);
            r->msglen = scep_buf_len(r->body);
        } else if (is_get) {
            size_t derlen = 0;
            enum scep_err rc;
            if (scep_query_find(q, qlen, "message", &msgv, &msglen) != SCEP_OK || msglen == 0) {
                scep_service_http_error(SCEP_E_NO_MESSAGE, &res);
                goto reply;
            }
            rc = scep_query_decode_message(msgv, msglen, SCEP_MAX_MESSAGE, &r->der, &derlen);
            if (rc != SCEP_OK) {
                scep_service_http_error(rc, &res);
                goto reply;
            }
            r->msg = r->der;
            r->msglen = derlen;
        } else {
            scep_service_http_error(SCEP_E_METHOD, &res);
            goto reply;
        }
        r->ep = ep;
        memcpy(r->peer, peer, sizeof(peer));
        r->peerlen = plen_peer;
        scep_log_escape(r->op, sizeof(r->op), opv, oplen);
        if (queue_pkioperation(h, c, r))
            return MHD_YES; /* answered when the worker resumes the connection */
        scep_service_pkioperation(h->svc, ep, r->msg, r->msglen, &res);
        if (res.err == SCEP_E_CHALLENGE || res.err == SCEP_E_CHALLENGE_MISSING)
            scep_ratelimit_fail(h->rl, peer, plen_peer, time(NULL));
    } else {
        scep_service_http_error(SCEP_E_UNKNOWN_OPERATION, &res);
    }
reply:
    if (opv != NULL && oplen > 0)
        scep_log_escape(esc, sizeof(esc), opv, oplen);
    else
        snprintf(esc, sizeof(esc), "-");
    log_request(c, r, method, ep, esc, &res);
    ret = send_reply(h, c, res.http_status, res.content_type, res.body, res.body_len, retry_after);
    scep_result_clear(&res);
    conn_busy(h, c, 0);
    return ret;
}

static int
parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *sl)
{
    char host[128];
    const char *colon;
    unsigned long port;
    char *end;
    size_t hl;

    memset(ss, 0, sizeof(*ss));
    if (s[0] == '[') {
        const char *rb = strchr(s, ']');
        if (rb == NULL || rb[1] != ':')
            return -1;
        hl = (size_t)(rb - s - 1);
        colon = rb + 1;
        if (hl >= sizeof(host))
            return -1;
        memcpy(host, s + 1, hl);
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL)
            return -1;
        hl = (size_t)(colon - s);
        if (hl >= sizeof(host))
            return -1;
        memcpy(host, s, hl);
    }
    host[hl] = '\0';
    port = strtoul(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || port > 65535)
        return -1;
    if (hl == 0)
        snprintf(host, sizeof(host), "0.0.0.0");
    {
        struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
        if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
            a4->sin_family = AF_INET;
            a4->sin_port = htons((uint16_t)port);
            *sl = sizeof(*a4);
            return 0;
        }
        if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
            a6->sin6_family = AF_INET6;
            a6->sin6_port = htons((uint16_t)port);
            *sl = sizeof(*a6);
            return 0;
        }
    }
    return -1;
}

static void
stop_workers(struct scep_http *h)
{
    unsigned i;

    pthread_mutex_lock(&h->qmu);
    h->workers_stop = 1;
    pthread_cond_broadcast(&h->qcv);
    pthread_mutex_unlock(&h->qmu);
    for (i = 0; i < h->nworkers; i++)
        pthread_join(h->workers[i], NULL);
    free(h->workers);
    h->workers = NULL;
    h->nworkers = 0;
    pthread_mutex_destroy(&h->qmu);
    pthread_cond_destroy(&h->qcv);
    pthread_cond_destroy(&h->idle_cv);
}

enum scep_err
scep_http_start(struct scep_service *svc, const struct scep_http_opts *o, struct scep_http **out,
                char *errbuf, size_t errlen)
{
    struct scep_http *h;
    struct sockaddr_storage ss;
    socklen_t sl = 0;
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME;
    const union MHD_DaemonInfo *di;
    long ncores = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned cores = ncores > 0 ? (unsigned)ncores : 1, i;
    /*
     * A worker blocks while its issuance waits for the group commit (one
     * fsync per batch), so there are more workers than cores: 4 per core;
     * the gate lets one per core do CPU work at a time, in arrival order.
     */
    unsigned workers = o->threads ? o->threads : 4 * cores;
    unsigned slots = o->cpu_slots > 0 ? (unsigned)o->cpu_slots : cores;

    *out = NULL;
    if (parse_listen(o->listen, &ss, &sl) != 0) {
        snprintf(errbuf, errlen,
                 "--listen %s: write it as ADDR:PORT, e.g. 127.0.0.1:8080 or [::1]:8080",
                 o->listen);
        return SCEP_E_INVALID_ARG;
    }
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    if ((h = calloc(1, sizeof(*h))) == NULL)
        return SCEP_E_NOMEM;
    h->svc = svc;
    if ((h->rl = scep_ratelimit_new(o->auth_fail_limit, o->auth_fail_window, 4096)) == NULL) {
        free(h);
        return SCEP_E_NOMEM;
    }
    h->request_timeout = o->request_timeout_s ? o->request_timeout_s : 20;
    if (o->cpu_slots >= 0 && (h->gate = scep_gate_new(slots)) == NULL) {
        scep_ratelimit_free(h->rl);
        free(h);
        return SCEP_E_NOMEM;
    }
    scep_service_set_gate(svc, h->gate);
    pthread_mutex_init(&h->cmu, NULL);
    pthread_cond_init(&h->stop_cv, NULL);
    pthread_cond_init(&h->active_cv, NULL);
    pthread_mutex_init(&h->qmu, NULL);
    pthread_cond_init(&h->qcv, NULL);
    pthread_cond_init(&h->idle_cv, NULL);
    if ((h->workers = calloc(workers, sizeof(*h->workers))) == NULL) {
        scep_service_set_gate(svc, NULL);
        scep_gate_free(h->gate);
        scep_ratelimit_free(h->rl);
        free(h);
        return SCEP_E_NOMEM;
    }
    for (i = 0; i < workers; i++) {
        if (pthread_create(&h->workers[i], NULL, worker_main, h) != 0)
            break; /* fewer workers; with none, connections' threads do the work */
        h->nworkers++;
    }
    /*
     * No MHD_OPTION_LISTENING_ADDRESS_REUSE: MHD's default SO_REUSEADDR lets
     * a restart bind at once, and without SO_REUSEPORT a second server on
     * the same address fails here instead of silently sharing connections.
     */
    h->d = MHD_start_daemon(
        flags, 0, NULL, NULL, handler, h, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_THREAD_POOL_SIZE, cores, MHD_OPTION_CONNECTION_LIMIT, o->conn_limit,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, o->per_ip_limit, MHD_OPTION_CONNECTION_TIMEOUT,
        o->timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT, o->mem_limit, MHD_OPTION_URI_LOG_CALLBACK,
        uri_cb, h, MHD_OPTION_NOTIFY_COMPLETED, completed_cb, h, MHD_OPTION_NOTIFY_CONNECTION,
        conn_cb, h, MHD_OPTION_END);
    if (h->d == NULL) {
        snprintf(errbuf, errlen,
                 "--listen %s: cannot listen (address in use, not local, or a port below 1024 "
                 "without root); choose another address or port",
                 o->listen);
        stop_workers(h);
        scep_service_set_gate(svc, NULL);
        scep_gate_free(h->gate);
        scep_ratelimit_free(h->rl);
        free(h);
        return SCEP_E_IO;
    }
    if (pthread_create(&h->reaper, NULL, reaper_main, h) == 0)
        h->reaper_running = 1;
    di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = di != NULL ? di->port : 0;
    (void)sl;
    *out = h;
    return SCEP_OK;
}

unsigned
scep_http_port(const struct scep_http *h)
{
    return h->port;
}

void
scep_http_stop(struct scep_http *h)
{
    if (h == NULL)
        return;
    if (h->reaper_running) {
        pthread_mutex_lock(&h->cmu);
        h->stopping = 1;
        pthread_cond_signal(&h->stop_cv);
        pthread_mutex_unlock(&h->cmu);
        pthread_join(h->reaper, NULL);
    }
    /*
     * No new connections, and every reply from now on closes its
     * connection; the workers finish and resume every suspended connection
     * (new work runs on the connections' threads); then up to STOP_GRACE_S
     * for the requests under way to be answered (an issued certificate's
     * reply is sent, not cut off by the stop); then stop.
     */
    {
        MHD_socket ls = MHD_quiesce_daemon(h->d);
        struct timespec until;

        atomic_store(&h->closing, 1);
        if (ls != MHD_INVALID_SOCKET)
            close(ls);
        pthread_mutex_lock(&h->qmu);
        h->draining = 1;
        while (h->inflight > 0)
            pthread_cond_wait(&h->idle_cv, &h->qmu);
        pthread_mutex_unlock(&h->qmu);
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += STOP_GRACE_S;
        pthread_mutex_lock(&h->cmu);
        while (h->active > 0 && pthread_cond_timedwait(&h->active_cv, &h->cmu, &until) == 0)
            ;
        pthread_mutex_unlock(&h->cmu);
    }
    MHD_stop_daemon(h->d);
    stop_workers(h);
    scep_service_set_gate(h->svc, NULL);
    scep_gate_free(h->gate);
    scep_ratelimit_free(h->rl);
    pthread_mutex_destroy(&h->cmu);
    pthread_cond_destroy(&h->stop_cv);
    pthread_cond_destroy(&h->active_cv);
    free(h);
}
