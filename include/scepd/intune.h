/*
 * intune.h - the Microsoft Intune third-party CA contract (seed 003, the
 * Intune-Resource-Access CsrValidation libraries), spoken on the wire:
 *
 *   1. OAuth2 client credentials: POST {login_url}/{tenant}/oauth2/token
 *      (client_id, client_secret, resource) -> access_token, cached until
 *      shortly before it expires; one token for the Graph (discovery) and
 *      one for the Intune resource.
 *   2. Service discovery on the Graph: the endpoints of the Intune service
 *      principal; the URI of "ScepRequestValidationFEService", cached.
 *   3. POST {service}/ScepActions/validateRequest, successNotification or
 *      failureNotification with api-version, client-request-id and the
 *      bearer token; the answer's "code" must be "Success".
 *
 * Base URLs are configurable so that tests (tests/stubs/intune_stub.py) and
 * national clouds work.  Thread safe: one scep_intune per endpoint, shared
 * by all request threads.  Never logs the application key or tokens.
 */
#ifndef SCEPD_INTUNE_H
#define SCEPD_INTUNE_H

#include <stddef.h>

#include "scepd/err.h"

struct scep_intune_cfg {
    char tenant[128];       /* contoso.onmicrosoft.com or the tenant GUID */
    char app_id[128];       /* Azure application (client) id */
    char app_key[512];      /* application secret: never logged */
    char provider[128];     /* PROVIDER_NAME_AND_VERSION, sent as callerInfo */
    char proxy[256];        /* "" or http://host:port */
    char login_url[256];    /* default https://login.microsoftonline.com */
    char graph_url[256];    /* default https://graph.microsoft.com */
    char resource_url[256]; /* default https://api.manage.microsoft.com/ */
    char ca_file[256];      /* extra trust anchors for https, "" for the system store */
    long timeout_ms;        /* per HTTP request; <= 0 means 10000 */
};

struct scep_intune;

/* *out owned by the caller (scep_intune_free, which wipes the key). */
enum scep_err scep_intune_new(const struct scep_intune_cfg *cfg, struct scep_intune **out) SCEP_WUR;
void scep_intune_free(struct scep_intune *in);

/*
 * validateRequest.  SCEP_OK only when the service answers code "Success".
 * SCEP_E_DENIED when it answers another code (why gets "code: description");
 * SCEP_E_VALIDATOR when it cannot be asked (token, discovery, network,
 * HTTP status, garbage; why says which).
 */
enum scep_err scep_intune_validate(struct scep_intune *in, const char *txid, const char *csr_b64,
                                   char *why, size_t whylen) SCEP_WUR;

/*
 * successNotification: thumbprint (SHA-1 hex), serial (hex), expiration
 * as ISO 8601 UTC "YYYY-MM-DDThh:mm:ss.000Z", issuing authority (the CA's
 * subject).  SCEP_OK only on code "Success"; otherwise SCEP_E_NOTIFY and
 * the certificate must not be returned.
 */
enum scep_err scep_intune_success(struct scep_intune *in, const char *txid, const char *csr_b64,
                                  const char *thumbprint, const char *serial,
                                  const char *expiration, const char *issuer, char *why,
                                  size_t whylen) SCEP_WUR;

/*
 * The parsers of the untrusted answers above, used by the calls above and
 * exposed for the unit tests and tests/fuzz/fuzz_answers.c.  body is len
 * bytes, not NUL-terminated.  Every string they return is terminated
 * within its buffer.
 */

/* The discovered service URI's size, NUL included. */
#define SCEP_INTUNE_URI_MAX 1024

/*
 * A token endpoint answer with HTTP status.  SCEP_OK only for status 200
 * and a JSON object with a non-empty "access_token" of printable ASCII
 * without spaces (at most 16384 characters): *tok gets it (malloc'ed, the
 * caller wipes and frees it), *ttl "expires_in" in seconds (0 when missing
 * or unusable).  SCEP_E_VALIDATOR otherwise, *tok NULL, why says what (for
 * another status, with the answer's "error" code made printable).
 */
enum scep_err scep_intune_parse_token(const char *body, size_t len, long status, char **tok,
                                      long long *ttl, char *why, size_t whylen) SCEP_WUR;

/*
 * A Graph service discovery answer: the "uri" (trailing '/' removed) of the
 * first "value" entry whose providerName (or serviceName) is
 * ScepRequestValidationFEService, into uri (urilen bytes, normally
 * SCEP_INTUNE_URI_MAX).  It must be printable ASCII without spaces, an
 * http(s) URL, https when https_only.  SCEP_E_VALIDATOR with why otherwise.
 */
enum scep_err scep_intune_parse_discovery(const char *body, size_t len, int https_only, char *uri,
                                          size_t urilen, char *why, size_t whylen) SCEP_WUR;

/*
 * A ScepActions answer: SCEP_OK for a JSON object with a non-empty string
 * "code" (into code, made printable), "errorDescription" into desc (""
 * when absent).  SCEP_E_VALIDATOR otherwise.  The caller decides what a
 * code means: only "Success" is a success.  codelen, desclen > 0.
 */
enum scep_err scep_intune_parse_action(const char *body, size_t len, char *code, size_t codelen,
                                       char *desc, size_t desclen) SCEP_WUR;

/* failureNotification: hresult (Win32/HRESULT), description cut to 255 characters. */
enum scep_err scep_intune_failure(struct scep_intune *in, const char *txid, const char *csr_b64,
                                  long hresult, const char *description, char *why,
                                  size_t whylen) SCEP_WUR;

#endif
