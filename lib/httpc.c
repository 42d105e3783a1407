/*
 * httpc.c - outbound HTTP over libcurl (see httpc.h).
 *
 * Trusts nothing in an answer beyond its status and at most
 * SCEP_HTTPC_MAX_BODY bytes of body.  Must never: follow a redirect, use a
 * proxy nobody configured, log or keep a header or a body, or leave a copy
 * of a header (bearer tokens) or request body (client secrets) in freed
 * memory it controls.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#include "scepd/buf.h"
#include "scepd/httpc.h"

static pthread_once_t httpc_once = PTHREAD_ONCE_INIT;
static CURLcode httpc_init_rc = CURLE_FAILED_INIT;

static void
httpc_global_init(void)
{
    /* curl_global_init is not thread safe by itself: run it exactly once. */
    httpc_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int
scep_httpc_url_ok(const char *url)
{
    if (url == NULL)
        return 0;
    return strncasecmp(url, "http://", 7) == 0 || strncasecmp(url, "https://", 8) == 0;
}

void
scep_httpc_printable(char *dst, size_t dstlen, const char *src, size_t srclen)
{
    size_t i, o = 0;

    if (dstlen == 0)
        return;
    for (i = 0; src != NULL && i < srclen && o + 1 < dstlen; i++) {
        unsigned char c = (unsigned char)src[i];
        dst[o++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    dst[o] = '\0';
}

void
scep_httpc_resp_clear(struct scep_httpc_resp *resp)
{
    if (resp == NULL)
        return;
    if (resp->body != NULL) {
        OPENSSL_cleanse(resp->body, resp->len + 1);
        free(resp->body);
    }
    resp->body = NULL;
    resp->len = 0;
    resp->status = 0;
}

struct sink {
    struct scep_buf *b;
    int over; /* the answer passed the cap */
};

static size_t
httpc_write(char *p, size_t size, size_t n, void *arg)
{
    struct sink *s = arg;
    size_t len = size * n;

    if (scep_buf_put(s->b, p, len) != SCEP_OK) {
        s->over = 1;
        return 0; /* makes curl stop with CURLE_WRITE_ERROR */
    }
    return len;
}

static void
set_err(char *err, size_t errlen, const char *msg)
{
    if (err != NULL && errlen > 0) {
        strncpy(err, msg, errlen - 1);
        err[errlen - 1] = '\0';
    }
}

/* Frees a header list after wiping it: it may hold a bearer token. */
static void
slist_wipe_free(struct curl_slist *l)
{
    struct curl_slist *p;

    for (p = l; p != NULL; p = p->next)
        if (p->data != NULL)
            OPENSSL_cleanse(p->data, strlen(p->data));
    curl_slist_free_all(l);
}

/* A transport failure in a few words that carry no data of the request. */
static enum scep_err
map_curl_error(CURLcode c, const struct sink *s, char *err, size_t errlen)
{
    if (s->over || c == CURLE_FILESIZE_EXCEEDED) {
        set_err(err, errlen, "answer over 64 KiB");
        return SCEP_E_TOO_LARGE;
    }
    switch (c) {
    case CURLE_OPERATION_TIMEDOUT:
        set_err(err, errlen, "timeout");
        break;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        set_err(err, errlen, "cannot resolve host");
        break;
    case CURLE_COULDNT_CONNECT:
        set_err(err, errlen, "connect failed");
        break;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CACERT_BADFILE:
        set_err(err, errlen, "TLS failed");
        break;
    case CURLE_OUT_OF_MEMORY:
        set_err(err, errlen, "out of memory");
        return SCEP_E_NOMEM;
    default:
        set_err(err, errlen, curl_easy_strerror(c));
        break;
    }
    return SCEP_E_IO;
}

enum scep_err
scep_httpc_request(const struct scep_httpc_opts *opts, const char *method, const char *url,
                   const char *const *headers, const void *body, size_t bodylen,
                   struct scep_httpc_resp *resp, char *err, size_t errlen)
{
    enum scep_err rc = SCEP_E_INTERNAL;
    CURL *h = NULL;
    struct curl_slist *hl = NULL, *t;
    struct sink s = {NULL, 0};
    CURLcode c;
    long status = 0;
    int post;
    size_t i;

    memset(resp, 0, sizeof(*resp));
    set_err(err, errlen, "");
    if (opts == NULL || opts->timeout_ms <= 0 || method == NULL || !scep_httpc_url_ok(url)) {
        set_err(err, errlen, "bad request arguments");
        return SCEP_E_INVALID_ARG;
    }
    if (strcmp(method, "POST") == 0)
        post = 1;
    else if (strcmp(method, "GET") == 0)
        post = 0;
    else {
        set_err(err, errlen, "bad method");
        return SCEP_E_INVALID_ARG;
    }
    if (pthread_once(&httpc_once, httpc_global_init) != 0 || httpc_init_rc != CURLE_OK) {
        set_err(err, errlen, "libcurl init failed");
        return SCEP_E_INTERNAL;
    }
    if ((s.b = scep_buf_new(SCEP_HTTPC_MAX_BODY)) == NULL || (h = curl_easy_init()) == NULL) {
        rc = SCEP_E_NOMEM;
        set_err(err, errlen, "out of memory");
        goto out;
    }
    for (i = 0; headers != NULL && headers[i] != NULL; i++) {
        if ((t = curl_slist_append(hl, headers[i])) == NULL) {
            rc = SCEP_E_NOMEM;
            goto out;
        }
        hl = t;
    }
    /* No "Expect: 100-continue" round trip: it only adds a second of delay. */
    if ((t = curl_slist_append(hl, "Expect:")) == NULL) {
        rc = SCEP_E_NOMEM;
        goto out;
    }
    hl = t;

    if (curl_easy_setopt(h, CURLOPT_URL, url) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, opts->timeout_ms) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, opts->timeout_ms) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)SCEP_HTTPC_MAX_BODY) !=
            CURLE_OK ||
        /* "" disables the *_proxy environment variables too. */
        curl_easy_setopt(h, CURLOPT_PROXY, opts->proxy != NULL ? opts->proxy : "") != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_USERAGENT, "scepd") != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, httpc_write) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &s) != CURLE_OK) {
        set_err(err, errlen, "libcurl option refused");
        goto out;
    }
    if (opts->ca_file != NULL && opts->ca_file[0] != '\0' &&
        curl_easy_setopt(h, CURLOPT_CAINFO, opts->ca_file) != CURLE_OK) {
        set_err(err, errlen, "libcurl option refused");
        goto out;
    }
    if (post) {
        if (curl_easy_setopt(h, CURLOPT_POST, 1L) != CURLE_OK ||
            curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)bodylen) != CURLE_OK ||
            curl_easy_setopt(h, CURLOPT_POSTFIELDS, bodylen > 0 ? body : "") != CURLE_OK) {
            set_err(err, errlen, "libcurl option refused");
            goto out;
        }
    } else if (curl_easy_setopt(h, CURLOPT_HTTPGET, 1L) != CURLE_OK) {
        set_err(err, errlen, "libcurl option refused");
        goto out;
    }

    if ((c = curl_easy_perform(h)) != CURLE_OK) {
        rc = map_curl_error(c, &s, err, errlen);
        goto out;
    }
    if (curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK || status < 100 ||
        status > 599) {
        rc = SCEP_E_IO;
        set_err(err, errlen, "no HTTP status");
        goto out;
    }
    if ((resp->body = malloc(scep_buf_len(s.b) + 1)) == NULL) {
        rc = SCEP_E_NOMEM;
        set_err(err, errlen, "out of memory");
        goto out;
    }
    if (scep_buf_len(s.b) > 0)
        memcpy(resp->body, scep_buf_ptr(s.b), scep_buf_len(s.b));
    resp->body[scep_buf_len(s.b)] = '\0';
    resp->len = scep_buf_len(s.b);
    resp->status = status;
    rc = SCEP_OK;
out:
    if (h != NULL)
        curl_easy_cleanup(h);
    slist_wipe_free(hl);
    scep_buf_free(s.b);
    return rc;
}
