/*
 * token.h - signed enrollment tokens, the challenge of the "signed" mode.
 *
 * An MDM (or `scepctl challenges sign`) mints a token with the endpoint's
 * key; scepd checks it offline: signature, endpoint, expiry, and then (in
 * the service) single use by its nonce and that the CSR asks for exactly
 * what the token allows.  Format (docs/challenge-modes.md):
 *
 *   scep1.<base64(payload JSON)>.<base64(HMAC-SHA256(key, "scep1." + base64(payload)))>
 *
 * standard base64 with padding (every character is PrintableString-safe,
 * so any client can carry it as challengePassword).  Payload members:
 *   "ep"    endpoint name (required)       "exp"  expiry, Unix seconds (required)
 *   "nonce" 16..64 chars [A-Za-z0-9+/=_-] (required, recorded on use)
 *   "sub"   subject DN text "CN=dev1,O=Acme" (optional: bound subject)
 *   "san"   array of "DNS:x" "email:x" "IP:x" "URI:x" (optional: allowed SANs)
 *   "eku"   "clientAuth,serverAuth,1.2.3" (optional: allowed EKUs)
 *   "dev"   device id (optional)            "sid"  Windows SID S-1-5-... (optional)
 * Unknown members make the token invalid (a verifier must not ignore a
 * restriction it does not understand).  Optional members are omitted when
 * empty; a present but empty one ("san": [], "sub": "") is refused, not read
 * as "unrestricted".  Text is UTF-8 without control characters; each SAN
 * has a value after its type; "sid" is S-1-<digits>(-<digits>)+.  The key is
 * at least 16 bytes (SCEP_E_INVALID_ARG otherwise, at sign and verify).
 *
 * Trusts nothing in the token before the MAC is checked; compares MACs in
 * constant time; never logs the token.
 */
#ifndef SCEPD_TOKEN_H
#define SCEPD_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#include "scepd/err.h"

#define SCEP_TOKEN_PREFIX "scep1."
#define SCEP_TOKEN_MAX 1024 /* fits SCEP_MAX_CHALLENGE */
#define SCEP_TOKEN_MAX_SANS 8
#define SCEP_TOKEN_KEY_LEN 32

struct scep_token {
    char endpoint[64];
    int64_t expires; /* Unix seconds */
    char nonce[65];
    char subject[256];                   /* "" when not bound */
    char sans[SCEP_TOKEN_MAX_SANS][256]; /* "DNS:dev1.example.com" ... */
    size_t nsans;
    char eku[256];    /* "" when not restricted */
    char device[128]; /* "" when none */
    char sid[96];     /* "" when none; "S-1-5-21-..." */
};

/*
 * Mint a token for t (nonce must be set; see scep_token_nonce) into out
 * (NUL-terminated).  SCEP_E_INVALID_ARG when a field is malformed or the
 * result does not fit outlen or SCEP_TOKEN_MAX.
 */
enum scep_err scep_token_sign(const unsigned char *key, size_t keylen, const struct scep_token *t,
                              char *out, size_t outlen) SCEP_WUR;

/* A fresh random nonce (CSPRNG, 22 base64 characters) into t->nonce. */
enum scep_err scep_token_nonce(struct scep_token *t) SCEP_WUR;

/*
 * Check tok (len bytes, not necessarily NUL-terminated): format, MAC under
 * key, and expiry against now.  SCEP_E_TOKEN for anything malformed or a
 * MAC that does not verify (checked before anything of the payload is
 * used), SCEP_E_CHALLENGE_EXPIRED when now >= expires.  *out is filled only
 * on SCEP_OK; the caller checks endpoint, nonce reuse and identity.
 */
enum scep_err scep_token_verify(const unsigned char *key, size_t keylen, const char *tok,
                                size_t len, int64_t now, struct scep_token *out) SCEP_WUR;

/* Does this challenge look like a token (starts with SCEP_TOKEN_PREFIX)? */
int scep_token_is(const char *chal, size_t len);

#endif
