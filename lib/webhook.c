/*
 * webhook.c - the "webhook" challenge mode and event delivery (see
 * webhook.h).
 *
 * Trusts the webhook only for one answer: HTTP 200 with a JSON object
 * whose "allow" member is JSON true.  Everything else fails closed.  Must
 * never: log or keep the challenge, the bearer token or the HMAC key; take
 * a JSON string "true" or a 3xx for an allow.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/params.h>

#include "scepd/buf.h"
#include "scepd/httpc.h"
#include "scepd/log.h"
#include "scepd/query.h"
#include "scepd/webhook.h"

#define WEBHOOK_DEFAULT_TIMEOUT_MS 5000
/* "t=" + 20 digits + ",v1=" + 64 hex + NUL */
#define SIG_MAX 96

void
scep_webhook_signature(const unsigned char *key, size_t keylen, long long t, const char *body,
                       size_t bodylen, char *out, size_t outlen)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    char prefix[32], hex[2 * EVP_MAX_MD_SIZE + 1];
    int plen;
    EVP_MAC *m = NULL;
    EVP_MAC_CTX *ctx = NULL;
    OSSL_PARAM params[2];
    size_t macsz = 0;
    char sha256[] = "SHA256";

    if (outlen == 0)
        return;
    out[0] = '\0';
    plen = snprintf(prefix, sizeof(prefix), "%lld.", t);
    if (plen < 0 || (size_t)plen >= sizeof(prefix))
        return;
    /* HMAC-SHA256 over "<t>." || body, streamed so the body is not copied. */
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, sha256, 0);
    params[1] = OSSL_PARAM_construct_end();
    if ((m = EVP_MAC_fetch(NULL, "HMAC", NULL)) == NULL || (ctx = EVP_MAC_CTX_new(m)) == NULL ||
        !EVP_MAC_init(ctx, key, keylen, params) ||
        !EVP_MAC_update(ctx, (const unsigned char *)prefix, (size_t)plen) ||
        !EVP_MAC_update(ctx, (const unsigned char *)body, bodylen) ||
        !EVP_MAC_final(ctx, mac, &macsz, sizeof(mac)))
        goto out;
    maclen = (unsigned int)macsz;
    scep_hex(mac, maclen, hex);
    snprintf(out, outlen, "t=%lld,v1=%s", t, hex);
out:
    OPENSSL_cleanse(mac, sizeof(mac));
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(m);
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

/*
 * POST body to cfg->url with the signature and bearer headers.  On SCEP_OK
 * *resp holds the answer (any status).  err says what failed otherwise.
 */
static enum scep_err
webhook_post(const struct scep_webhook_cfg *cfg, const char *body, size_t bodylen,
             struct scep_httpc_resp *resp, char *err, size_t errlen)
{
    enum scep_err rc = SCEP_E_INTERNAL;
    struct scep_httpc_opts o;
    char sighdr[sizeof("X-Scepd-Signature: ") + SIG_MAX], sig[SIG_MAX];
    char *auth = NULL;
    const char *hdrs[4];
    size_t n = 0, alen = 0;

    memset(resp, 0, sizeof(*resp));
    if (!scep_httpc_url_ok(cfg->url)) {
        scep_errbuf(err, errlen, "webhook URL must start with http:// or https://");
        return SCEP_E_INVALID_ARG;
    }
    hdrs[n++] = "Content-Type: application/json";
    if (cfg->hmac_key != NULL) {
        scep_webhook_signature(cfg->hmac_key, cfg->hmac_key_len, (long long)time(NULL), body,
                               bodylen, sig, sizeof(sig));
        if (sig[0] == '\0') {
            scep_errbuf(err, errlen, "cannot compute the signature");
            return SCEP_E_INTERNAL;
        }
        snprintf(sighdr, sizeof(sighdr), "X-Scepd-Signature: %s", sig);
        hdrs[n++] = sighdr;
    }
    if (cfg->bearer != NULL && cfg->bearer[0] != '\0') {
        if (!header_safe(cfg->bearer)) {
            scep_errbuf(err, errlen, "bearer token contains control characters");
            return SCEP_E_INVALID_ARG;
        }
        alen = strlen(cfg->bearer) + sizeof("Authorization: Bearer ");
        if ((auth = malloc(alen)) == NULL)
            return SCEP_E_NOMEM;
        snprintf(auth, alen, "Authorization: Bearer %s", cfg->bearer);
        hdrs[n++] = auth;
    }
    hdrs[n] = NULL;

    memset(&o, 0, sizeof(o));
    o.timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : WEBHOOK_DEFAULT_TIMEOUT_MS;
    o.ca_file = cfg->ca_file;
    rc = scep_httpc_request(&o, "POST", cfg->url, hdrs, body, bodylen, resp, err, errlen);
    if (auth != NULL) {
        OPENSSL_cleanse(auth, alen);
        free(auth);
    }
    return rc;
}

/* Wipes and frees a string that held a challenge. */
static void
free_wiped(char *s)
{
    if (s != NULL) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

enum scep_err
scep_webhook_parse_answer(const char *body, size_t len, char *reason, size_t reason_len)
{
    enum scep_err rc = SCEP_E_VALIDATOR;
    json_t *ans, *allow, *why;
    json_error_t jerr;

    scep_errbuf(reason, reason_len, "%s", "");
    ans = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (ans == NULL || !json_is_object(ans)) {
        scep_errbuf(reason, reason_len, ans == NULL ? "not JSON" : "not a JSON object");
        goto out;
    }
    allow = json_object_get(ans, "allow");
    if (json_is_true(allow)) {
        rc = SCEP_OK;
    } else if (json_is_false(allow)) {
        rc = SCEP_E_DENIED;
        why = json_object_get(ans, "reason");
        if (json_is_string(why))
            scep_httpc_printable(reason, reason_len, json_string_value(why),
                                 json_string_length(why));
        else
            scep_errbuf(reason, reason_len, "denied");
    } else {
        scep_errbuf(reason, reason_len, "\"allow\" is missing or not a JSON boolean");
    }
out:
    json_decref(ans);
    return rc;
}

enum scep_err
scep_webhook_validate(const struct scep_webhook_cfg *cfg, const struct scep_webhook_req *req,
                      char *reason, size_t reason_len)
{
    enum scep_err rc = SCEP_E_VALIDATOR;
    struct scep_httpc_resp resp = {0, NULL, 0};
    json_t *root = NULL;
    char *b64 = NULL, *body = NULL;
    char err[128], ep[64];

    scep_errbuf(reason, reason_len, "%s", "");
    if (cfg == NULL || req == NULL || req->transaction_id == NULL || req->endpoint == NULL ||
        (req->csr_der == NULL && req->csr_len > 0)) {
        scep_errbuf(reason, reason_len, "bad arguments");
        return SCEP_E_VALIDATOR;
    }
    if (scep_b64_encode(req->csr_der, req->csr_len, &b64) != SCEP_OK) {
        scep_errbuf(reason, reason_len, "cannot encode the CSR");
        goto out;
    }
    /* Any string that is not UTF-8 makes json_pack fail: refused, not mangled. */
    root = json_pack("{s:s, s:s, s:s, s:s}", "transactionId", req->transaction_id,
                     "certificateRequest", b64, "endpoint", req->endpoint, "challenge",
                     req->challenge != NULL ? req->challenge : "");
    if (root == NULL || (body = json_dumps(root, JSON_COMPACT)) == NULL) {
        scep_errbuf(reason, reason_len, "cannot encode the request as JSON");
        goto out;
    }
    if (webhook_post(cfg, body, strlen(body), &resp, err, sizeof(err)) != SCEP_OK) {
        scep_errbuf(reason, reason_len, "%s", err);
        goto out;
    }
    if (resp.status != 200) {
        scep_errbuf(reason, reason_len, "HTTP %ld%s", resp.status,
                    resp.status >= 300 && resp.status < 400 ? " (redirects are not followed)" : "");
        goto out;
    }
    rc = scep_webhook_parse_answer((const char *)resp.body, resp.len, reason, reason_len);
out:
    if (rc == SCEP_E_VALIDATOR) {
        scep_log_escape(ep, sizeof(ep), req != NULL && req->endpoint != NULL ? req->endpoint : "",
                        req != NULL && req->endpoint != NULL ? strlen(req->endpoint) : 0);
        scep_log(SCEP_LOG_WARN, "webhook", "validation failed endpoint=%s why=\"%s\"", ep,
                 reason != NULL && reason_len > 0 ? reason : "");
    }
    scep_httpc_resp_clear(&resp);
    json_decref(root);
    free_wiped(body);
    free(b64);
    return rc;
}

enum scep_err
scep_webhook_deliver(const struct scep_webhook_cfg *cfg, const char *json, char *err, size_t errlen)
{
    enum scep_err rc = SCEP_E_VALIDATOR;
    struct scep_httpc_resp resp = {0, NULL, 0};
    char e[128];

    scep_errbuf(err, errlen, "%s", "");
    if (cfg == NULL || json == NULL) {
        scep_errbuf(err, errlen, "bad arguments");
        return SCEP_E_VALIDATOR;
    }
    if (webhook_post(cfg, json, strlen(json), &resp, e, sizeof(e)) != SCEP_OK) {
        scep_errbuf(err, errlen, "%s", e);
        goto out;
    }
    if (resp.status < 200 || resp.status > 299) {
        scep_errbuf(err, errlen, "HTTP %ld", resp.status);
        goto out;
    }
    rc = SCEP_OK;
out:
    scep_httpc_resp_clear(&resp);
    return rc;
}
