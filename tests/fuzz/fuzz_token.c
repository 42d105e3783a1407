/*
 * fuzz_token.c - libFuzzer target for signed enrollment tokens (token.h).
 *
 * The first input byte picks a mode (byte % 3), the rest is the data:
 *   0  a whole token, verified under FUZZ_TOKEN_KEY: the shape checks and
 *      the MAC (mutations of a seed stop there: a fuzzer cannot forge it);
 *   1  the payload JSON: the harness base64-encodes it, MACs it with the
 *      key and verifies the token, so the JSON reader is reached;
 *   2  the payload-base64 text as is, MAC'd by the harness: the strict
 *      base64 decoder with a valid MAC.
 * Properties (abort() on failure, which libFuzzer reports as a crash):
 *   - verify returns SCEP_OK, SCEP_E_TOKEN or SCEP_E_CHALLENGE_EXPIRED only,
 *     and leaves *out untouched unless SCEP_OK;
 *   - an accepted token has bounded, NUL-terminated fields and has not
 *     expired at FUZZ_TOKEN_NOW;
 *   - what verify accepts, sign accepts: re-signing the fields gives a
 *     token that verifies to the same fields.
 *
 * Seeds (corpus/fuzz_token/): a mode byte then a token or payload minted
 * with FUZZ_TOKEN_KEY and exp 4102444800 (2100-01-01).  Test material only.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "scepd/token.h"

#define FUZZ_TOKEN_KEY "scepd-fuzz-token-key-0123456789!"
#define FUZZ_TOKEN_NOW 1700000000LL
#define MAX_IN (4 * SCEP_TOKEN_MAX)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const unsigned char *const key = (const unsigned char *)FUZZ_TOKEN_KEY;
static const size_t keylen = sizeof(FUZZ_TOKEN_KEY) - 1;

static void
check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_token: property violated: %s\n", what);
        abort();
    }
}

static int
terminated(const char *s, size_t size)
{
    return memchr(s, '\0', size) != NULL;
}

static void
check_fields(const struct scep_token *t)
{
    size_t i;

    check(terminated(t->endpoint, sizeof(t->endpoint)) && t->endpoint[0] != '\0',
          "endpoint non-empty and terminated");
    check(terminated(t->nonce, sizeof(t->nonce)) && strlen(t->nonce) >= 16 &&
              strlen(t->nonce) <= 64,
          "nonce 16..64 and terminated");
    check(t->expires > FUZZ_TOKEN_NOW, "accepted token not expired");
    check(terminated(t->subject, sizeof(t->subject)) && terminated(t->eku, sizeof(t->eku)) &&
              terminated(t->device, sizeof(t->device)) && terminated(t->sid, sizeof(t->sid)),
          "optional fields terminated");
    check(t->nsans <= SCEP_TOKEN_MAX_SANS, "nsans within SCEP_TOKEN_MAX_SANS");
    for (i = 0; i < t->nsans; i++)
        check(terminated(t->sans[i], sizeof(t->sans[i])) && t->sans[i][0] != '\0',
              "san non-empty and terminated");
}

static int
same_fields(const struct scep_token *a, const struct scep_token *b)
{
    size_t i;

    if (strcmp(a->endpoint, b->endpoint) != 0 || a->expires != b->expires ||
        strcmp(a->nonce, b->nonce) != 0 || strcmp(a->subject, b->subject) != 0 ||
        strcmp(a->eku, b->eku) != 0 || strcmp(a->device, b->device) != 0 ||
        strcmp(a->sid, b->sid) != 0 || a->nsans != b->nsans)
        return 0;
    for (i = 0; i < a->nsans; i++)
        if (strcmp(a->sans[i], b->sans[i]) != 0)
            return 0;
    return 1;
}

static void
verify_and_check(const char *tok, size_t len)
{
    struct scep_token out, before, again;
    char resigned[SCEP_TOKEN_MAX + 1];
    enum scep_err rc;

    check(scep_token_is(tok, len) == (len >= 6 && memcmp(tok, "scep1.", 6) == 0),
          "scep_token_is is the prefix test");
    memset(&out, 0xA5, sizeof(out));
    memcpy(&before, &out, sizeof(out));
    rc = scep_token_verify(key, keylen, tok, len, FUZZ_TOKEN_NOW, &out);
    check(rc == SCEP_OK || rc == SCEP_E_TOKEN || rc == SCEP_E_CHALLENGE_EXPIRED,
          "verify returns OK, TOKEN or CHALLENGE_EXPIRED");
    if (rc != SCEP_OK) {
        check(memcmp(&out, &before, sizeof(out)) == 0, "verify leaves *out alone on failure");
        return;
    }
    check(len <= SCEP_TOKEN_MAX, "accepted token within SCEP_TOKEN_MAX");
    check_fields(&out);

    /* Sign accepts what verify accepted, and the canonical token verifies the same. */
    check(scep_token_sign(key, keylen, &out, resigned, sizeof(resigned)) == SCEP_OK,
          "sign accepts the fields verify accepted");
    check(strlen(resigned) <= SCEP_TOKEN_MAX, "signed token within SCEP_TOKEN_MAX");
    check(scep_token_verify(key, keylen, resigned, strlen(resigned), FUZZ_TOKEN_NOW, &again) ==
              SCEP_OK,
          "re-signed token verifies");
    check(same_fields(&out, &again), "re-signed token has the same fields");
}

/* tok = "scep1." + b64 + "." + base64(HMAC(key, "scep1." + b64)); NULL on failure. */
static char *
mint(const char *b64, size_t b64len, size_t *toklen)
{
    unsigned char md[32];
    unsigned int n = 0;
    size_t body = 6 + b64len;
    char *tok = malloc(body + 1 + 44 + 1);

    if (tok == NULL)
        return NULL;
    memcpy(tok, "scep1.", 6);
    memcpy(tok + 6, b64, b64len);
    if (HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)tok, body, md, &n) == NULL ||
        n != 32) {
        free(tok);
        return NULL;
    }
    tok[body] = '.';
    EVP_EncodeBlock((unsigned char *)tok + body + 1, md, 32);
    *toklen = body + 1 + 44;
    return tok;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *b64 = NULL, *tok = NULL;
    size_t toklen = 0;

    if (size < 1 || size > MAX_IN)
        return 0;
    switch (data[0] % 3) {
    case 0:
        verify_and_check((const char *)data + 1, size - 1);
        break;
    case 1:
        b64 = malloc((size - 1 + 2) / 3 * 4 + 1);
        if (b64 == NULL)
            break;
        EVP_EncodeBlock((unsigned char *)b64, data + 1, (int)(size - 1));
        tok = mint(b64, strlen(b64), &toklen);
        break;
    default:
        tok = mint((const char *)data + 1, size - 1, &toklen);
        break;
    }
    if (tok != NULL)
        verify_and_check(tok, toklen);
    free(tok);
    free(b64);
    return 0;
}
