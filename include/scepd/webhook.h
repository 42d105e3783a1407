/*
 * webhook.h - outbound HTTP of the "webhook" challenge mode and of event
 * delivery (the notification outbox).
 *
 * Validation: scepd POSTs
 *   {"transactionId": "...", "certificateRequest": "<base64 DER PKCS#10>",
 *    "endpoint": "name", "challenge": "..."}
 * with Content-Type application/json, the header
 *   X-Scepd-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(key, "<t>." + body)>
 * and, when configured, Authorization: Bearer <token>.  Only HTTP 200 with
 * a JSON object whose "allow" member is JSON true allows the request: a
 * denial, any other status, a time-out, a redirect, a body over 64 KiB or
 * anything that is not such an object fails closed.
 *
 * Delivery: POST of a JSON event with the same signature header; any 2xx
 * is delivered.
 *
 * Never logs the challenge, the bearer token or the key.
 */
#ifndef SCEPD_WEBHOOK_H
#define SCEPD_WEBHOOK_H

#include <stddef.h>

#include "scepd/err.h"

struct scep_webhook_cfg {
    const char *url;               /* http:// or https:// */
    const unsigned char *hmac_key; /* signs every body; may be NULL (no signature header) */
    size_t hmac_key_len;
    const char *bearer;  /* Authorization: Bearer, or NULL */
    long timeout_ms;     /* whole request; <= 0 means 5000 */
    const char *ca_file; /* extra trust anchors for https, or NULL for the system store */
};

struct scep_webhook_req {
    const char *transaction_id; /* as printable text */
    const unsigned char *csr_der;
    size_t csr_len;
    const char *endpoint;
    const char *challenge; /* may be "" */
};

/*
 * SCEP_OK: explicitly allowed.  SCEP_E_DENIED: HTTP 200 with "allow":
 * false (reason gets the answer's "reason" string when present).
 * SCEP_E_VALIDATOR: anything else (reason says what: "timeout", "HTTP 500",
 * "not JSON", ...).
 */
enum scep_err scep_webhook_validate(const struct scep_webhook_cfg *cfg,
                                    const struct scep_webhook_req *req, char *reason,
                                    size_t reason_len) SCEP_WUR;

/*
 * The decision in an HTTP 200 answer body (len bytes, not NUL-terminated,
 * untrusted): SCEP_OK only for a JSON object whose "allow" is JSON true;
 * SCEP_E_DENIED for "allow": false (reason gets "reason" made printable, or
 * "denied"); SCEP_E_VALIDATOR for anything else (reason says what).  reason
 * is always terminated when reason_len > 0.  Used by scep_webhook_validate;
 * exposed for the unit tests and tests/fuzz/fuzz_answers.c.
 */
enum scep_err scep_webhook_parse_answer(const char *body, size_t len, char *reason,
                                        size_t reason_len) SCEP_WUR;

/* POST json (an event) to cfg->url.  SCEP_OK on 2xx, else SCEP_E_VALIDATOR with err set. */
enum scep_err scep_webhook_deliver(const struct scep_webhook_cfg *cfg, const char *json, char *err,
                                   size_t errlen) SCEP_WUR;

/* The signature header value for body at time t into out ("t=...,v1=..."). */
void scep_webhook_signature(const unsigned char *key, size_t keylen, long long t, const char *body,
                            size_t bodylen, char *out, size_t outlen);

#endif
