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

/* failureNotification: hresult (Win32/HRESULT), description cut to 255 characters. */
enum scep_err scep_intune_failure(struct scep_intune *in, const char *txid, const char *csr_b64,
                                  long hresult, const char *description, char *why,
                                  size_t whylen) SCEP_WUR;

#endif
