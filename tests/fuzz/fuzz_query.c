/*
 * fuzz_query.c - libFuzzer target for the GET query layer (query.h): the
 * raw query string of a PKIOperation request is the whole input.
 *
 * Exercises scep_query_find, scep_query_unescape, scep_query_decode_message
 * and scep_b64_decode on attacker bytes, with output buffers sized exactly so
 * that AddressSanitizer sees any overrun, and checks two properties (abort()
 * on failure, which libFuzzer reports as a crash):
 *   - base64 round trip: scep_b64_decode(scep_b64_encode(x)) == x, and the
 *     same through scep_query_decode_message, for every non-empty x (an empty
 *     message= is refused by design: SCEP_E_BAD_BASE64);
 *   - decoders never return more than their cap, and unescape always
 *     terminates within dstlen.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scepd/query.h"

#define MSG_CAP (64 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_query: property violated: %s\n", what);
        abort();
    }
}

/* Unescape into a heap buffer of exactly dstlen bytes (ASan sees overruns). */
static void
unescape_into(const char *src, size_t srclen, size_t dstlen)
{
    char *dst = malloc(dstlen);

    if (dst == NULL)
        return;
    if (scep_query_unescape(src, srclen, dst, dstlen) == SCEP_OK)
        check(strlen(dst) < dstlen && strlen(dst) <= srclen, "unescape output bounded");
    free(dst);
}

static void
decode_b64(const char *src, size_t srclen, size_t cap)
{
    unsigned char *out = NULL;
    size_t outlen = 0;

    if (scep_b64_decode(src, srclen, cap, &out, &outlen) == SCEP_OK) {
        check(out != NULL && outlen <= cap && outlen > 0, "b64_decode within cap");
        check(outlen <= srclen / 4 * 3 + 2, "b64_decode no longer than 3/4 of input");
    } else {
        check(out == NULL && outlen == 0, "b64_decode clears outputs on failure");
    }
    free(out);
}

static void
decode_message(const char *src, size_t srclen, size_t cap)
{
    unsigned char *out = NULL;
    size_t outlen = 0;

    if (scep_query_decode_message(src, srclen, cap, &out, &outlen) == SCEP_OK)
        check(out != NULL && outlen <= cap && outlen > 0, "decode_message within cap");
    else
        check(out == NULL && outlen == 0, "decode_message clears outputs on failure");
    free(out);
}

static void
round_trip(const uint8_t *data, size_t size)
{
    char *enc = NULL;
    unsigned char *dec = NULL;
    size_t declen = 0, enclen;

    if (size == 0)
        return;
    check(scep_b64_encode(data, size, &enc) == SCEP_OK, "b64_encode succeeds");
    enclen = strlen(enc);
    check(enclen == (size + 2) / 3 * 4, "b64_encode length is 4*ceil(n/3)");

    check(scep_b64_decode(enc, enclen, size, &dec, &declen) == SCEP_OK,
          "b64_decode accepts b64_encode output");
    check(declen == size && memcmp(dec, data, size) == 0, "b64 round trip gives the input");
    free(dec);
    dec = NULL;

    check(scep_query_decode_message(enc, enclen, size, &dec, &declen) == SCEP_OK,
          "decode_message accepts b64_encode output");
    check(declen == size && memcmp(dec, data, size) == 0,
          "decode_message round trip gives the input");
    free(dec);
    free(enc);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *q = (const char *)data;
    const char *val;
    size_t vlen;

    /* As the daemon sees it: find operation= and message= in the query. */
    if (scep_query_find(q, size, "operation", &val, &vlen) == SCEP_OK) {
        check(val >= q && val + vlen <= q + size, "find: value inside the query");
        unescape_into(val, vlen, 64);
        unescape_into(val, vlen, 1);
    } else {
        check(val == NULL && vlen == 0, "find clears outputs when absent");
    }
    if (scep_query_find(q, size, "message", &val, &vlen) == SCEP_OK) {
        check(val >= q && val + vlen <= q + size, "find: value inside the query");
        decode_message(val, vlen, MSG_CAP);
        decode_message(val, vlen, vlen / 2);
    }

    /* The whole input as one value. */
    unescape_into(q, size, size + 1);
    unescape_into(q, size, size / 2 + 1);
    decode_message(q, size, MSG_CAP);
    decode_b64(q, size, size);
    decode_b64(q, size, size / 2);

    round_trip(data, size);
    return 0;
}
