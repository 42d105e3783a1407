/*
 * httpc.h - the one outbound HTTP client of scepd (a thin libcurl wrapper),
 * used by the webhook and Intune modules.
 *
 * Every request has a whole-request time-out, follows no redirect (a 3xx is
 * returned as a status like any other), speaks only http and https, uses a
 * proxy only when one is given (the *_proxy environment variables are
 * ignored) and keeps at most SCEP_HTTPC_MAX_BODY bytes of the answer: a
 * longer answer fails.  Thread safe; libcurl's global initialisation runs
 * once, on first use.
 *
 * Never logs: headers and bodies carry bearer tokens and secrets.
 */
#ifndef SCEPD_HTTPC_H
#define SCEPD_HTTPC_H

#include <stddef.h>

#include "scepd/err.h"

/* Largest answer body kept; a longer one fails with SCEP_E_TOO_LARGE. */
#define SCEP_HTTPC_MAX_BODY (64 * 1024)

struct scep_httpc_opts {
    long timeout_ms;     /* whole request, connect included; must be > 0 */
    const char *proxy;   /* "http://host:port", or NULL/"" for a direct connection */
    const char *ca_file; /* extra trust anchors (PEM) for https, or NULL/"" for the system store */
};

struct scep_httpc_resp {
    long status;         /* HTTP status of the answer */
    unsigned char *body; /* owned; NUL-terminated (not counted in len); wiped by _clear */
    size_t len;
};

/*
 * One request.  method is "GET" or "POST"; headers is a NULL-terminated
 * list of "Name: value" lines (borrowed, may be NULL); body/bodylen is sent
 * with POST.  On SCEP_OK *resp holds the status and the body, whatever the
 * status: judging it is the caller's job.  Errors: SCEP_E_INVALID_ARG (bad
 * method or URL scheme), SCEP_E_TOO_LARGE (answer over the cap), SCEP_E_IO
 * (connect, TLS, time-out, malformed answer), SCEP_E_NOMEM.  On error,
 * *resp is empty and err (may be NULL) says what failed in a few words
 * ("timeout", "connect failed", ...); it never contains a header or a body.
 */
enum scep_err scep_httpc_request(const struct scep_httpc_opts *opts, const char *method,
                                 const char *url, const char *const *headers, const void *body,
                                 size_t bodylen, struct scep_httpc_resp *resp, char *err,
                                 size_t errlen) SCEP_WUR;

/* Wipes and frees resp->body; resp itself is reset.  NULL is fine. */
void scep_httpc_resp_clear(struct scep_httpc_resp *resp);

/* 1 when url starts with http:// or https:// (any case), else 0. */
int scep_httpc_url_ok(const char *url);

/*
 * Copy untrusted text (an error description from a remote service) into
 * dst for people and logs: printable ASCII and space are kept, anything
 * else becomes '?'.  Truncated to fit; dst is always terminated.
 */
void scep_httpc_printable(char *dst, size_t dstlen, const char *src, size_t srclen);

#endif
