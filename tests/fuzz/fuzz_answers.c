/*
 * fuzz_answers.c - libFuzzer target for the parsers of answers from the
 * validation services, bodies an attacker on the network path (or a
 * compromised service) controls: scep_webhook_parse_answer (webhook.h),
 * scep_intune_parse_token, scep_intune_parse_discovery and
 * scep_intune_parse_action (intune.h).
 *
 * Input: one selector byte, then the HTTP body (exactly the rest: not
 * NUL-terminated, so a parser reading past it trips AddressSanitizer).
 *   selector % 4        0 webhook, 1 token, 2 discovery, 3 action
 *   selector / 4 % 4    output buffer size: 0 the size the library uses,
 *                       1 one byte, 2 seven bytes, 3 33 bytes
 *   selector / 16 % 2   1: token HTTP status 200 / discovery https only;
 *                       0: token status 400 / discovery http allowed
 * The seeds use ASCII selectors: '0'..'3' are the parsers with the normal
 * sizes and flag 1, '@' 'A' 'B' 'C' the same with flag 0.
 *
 * Output buffers are malloc'ed to their exact size (overflow = ASan
 * report).  Properties (abort() on failure):
 *   - webhook: SCEP_OK exactly when the body is a JSON object (no
 *     duplicate keys) whose "allow" is JSON true, SCEP_E_DENIED exactly when
 *     it is false; nothing else returned;
 *   - every string returned is NUL-terminated within its buffer and
 *     printable ASCII where the header says it is made printable;
 *   - token: a token only with status 200, non-empty, printable without
 *     space, at most 16384 characters, ttl >= 0; NULL on failure;
 *   - discovery: an http(s) URL (https when asked), printable, without a
 *     trailing '/';
 *   - action: a non-empty code on success, both strings empty on failure.
 * Leaks are LeakSanitizer's.
 *
 * Seeds: corpus/fuzz_answers/ (hand-written answers, valid and not).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "scepd/intune.h"
#include "scepd/webhook.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_IN (256 * 1024)

static void
check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_answers: property violated: %s\n", what);
        abort();
    }
}

/* A buffer of exactly len bytes, filled with garbage so a missing NUL shows. */
static char *
outbuf(size_t len)
{
    char *b = malloc(len);

    if (b == NULL)
        abort();
    memset(b, 0xA5, len);
    return b;
}

static void
check_terminated(const char *s, size_t len, const char *what)
{
    check(memchr(s, '\0', len) != NULL, what);
}

/* Printable ASCII (space included) up to the NUL. */
static int
printable(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
            return 0;
    return 1;
}

/* Printable ASCII without space, n bytes. */
static int
token_chars(const char *s, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return 0;
    return 1;
}

/* The oracle: 1 allow, 0 deny, -1 neither; from jansson directly. */
static int
webhook_expect(const char *body, size_t len)
{
    json_error_t jerr;
    json_t *j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr), *a;
    int r = -1;

    if (json_is_object(j)) {
        a = json_object_get(j, "allow");
        r = json_is_true(a) ? 1 : json_is_false(a) ? 0 : -1;
    }
    json_decref(j);
    return r;
}

static void
fuzz_webhook(const char *body, size_t len, size_t outlen)
{
    char *reason = outbuf(outlen);
    enum scep_err rc = scep_webhook_parse_answer(body, len, reason, outlen);
    int want = webhook_expect(body, len);

    check(rc == SCEP_OK || rc == SCEP_E_DENIED || rc == SCEP_E_VALIDATOR,
          "webhook: OK, DENIED or VALIDATOR");
    check((rc == SCEP_OK) == (want == 1), "webhook: allow exactly for \"allow\": true");
    check((rc == SCEP_E_DENIED) == (want == 0), "webhook: deny exactly for \"allow\": false");
    if (rc == SCEP_OK)
        check(memmem(body, len, "true", 4) != NULL, "webhook: an allow says true");
    check_terminated(reason, outlen, "webhook: reason terminated");
    check(printable(reason), "webhook: reason printable");
    free(reason);
}

static void
fuzz_token(const char *body, size_t len, size_t outlen, int flag)
{
    char *why = outbuf(outlen), *tok = (char *)1;
    long long ttl = -1;
    long status = flag ? 200 : 400;
    enum scep_err rc = scep_intune_parse_token(body, len, status, &tok, &ttl, why, outlen);

    check(rc == SCEP_OK || rc == SCEP_E_VALIDATOR, "token: OK or VALIDATOR");
    if (rc == SCEP_OK) {
        size_t n;
        check(status == 200, "token: only from HTTP 200");
        check(tok != NULL, "token: a token on success");
        n = strlen(tok);
        check(n > 0 && n <= 16384 && token_chars(tok, n),
              "token: non-empty, at most 16384, printable without space");
        check(ttl >= 0, "token: ttl >= 0");
        free(tok);
    } else {
        check(tok == NULL, "token: NULL on failure");
        check(ttl == 0, "token: ttl 0 on failure");
        check_terminated(why, outlen, "token: why terminated");
        check(printable(why), "token: why printable");
    }
    free(why);
}

static void
fuzz_discovery(const char *body, size_t len, size_t outlen, int https_only)
{
    size_t urilen = outlen == 256 ? SCEP_INTUNE_URI_MAX : outlen;
    char *uri = outbuf(urilen), *why = outbuf(outlen);
    enum scep_err rc = scep_intune_parse_discovery(body, len, https_only, uri, urilen, why, outlen);

    check(rc == SCEP_OK || rc == SCEP_E_VALIDATOR, "discovery: OK or VALIDATOR");
    check_terminated(uri, urilen, "discovery: uri terminated");
    if (rc == SCEP_OK) {
        size_t n = strlen(uri);
        check(n > 0 && token_chars(uri, n), "discovery: uri printable without space");
        check(uri[n - 1] != '/', "discovery: no trailing '/'");
        check(strncasecmp(uri, "https://", 8) == 0 ||
                  (!https_only && strncasecmp(uri, "http://", 7) == 0),
              "discovery: an http(s) URL, https when asked");
    } else {
        check(uri[0] == '\0', "discovery: uri empty on failure");
        check_terminated(why, outlen, "discovery: why terminated");
        check(printable(why), "discovery: why printable");
    }
    free(why);
    free(uri);
}

static void
fuzz_action(const char *body, size_t len, size_t outlen)
{
    size_t codelen = outlen == 256 ? 64 : outlen;
    char *code = outbuf(codelen), *desc = outbuf(outlen);
    enum scep_err rc = scep_intune_parse_action(body, len, code, codelen, desc, outlen);

    check(rc == SCEP_OK || rc == SCEP_E_VALIDATOR, "action: OK or VALIDATOR");
    check_terminated(code, codelen, "action: code terminated");
    check_terminated(desc, outlen, "action: errorDescription terminated");
    check(printable(code) && printable(desc), "action: code and description printable");
    if (rc == SCEP_OK)
        check(codelen == 1 || code[0] != '\0', "action: a non-empty code on success");
    else
        check(code[0] == '\0' && desc[0] == '\0', "action: empty strings on failure");
    free(desc);
    free(code);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t sizes[4] = {256, 1, 7, 33};
    const char *body;
    size_t len, outlen;
    int flag;

    if (size < 1 || size > MAX_IN)
        return 0;
    body = (const char *)data + 1;
    len = size - 1;
    outlen = sizes[data[0] / 4 % 4];
    flag = data[0] / 16 % 2;
    switch (data[0] % 4) {
    case 0:
        fuzz_webhook(body, len, outlen);
        break;
    case 1:
        fuzz_token(body, len, outlen, flag);
        break;
    case 2:
        fuzz_discovery(body, len, outlen, flag);
        break;
    default:
        fuzz_action(body, len, outlen);
        break;
    }
    return 0;
}
