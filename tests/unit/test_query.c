/*
 * test_query.c - the query string and the GET message= decoder with the
 * encodings real clients send (digest §6 item 3, matrix T1/T2).
 */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#include "scepd/query.h"

static void
test_query_find_present_absent(void **state)
{
    const char *q = "operation=PKIOperation&message=AB%2BC";
    const char *v;
    size_t n;

    (void)state;
    assert_int_equal(scep_query_find(q, strlen(q), "operation", &v, &n), SCEP_OK);
    assert_int_equal(n, 12);
    assert_memory_equal(v, "PKIOperation", 12);
    assert_int_equal(scep_query_find(q, strlen(q), "message", &v, &n), SCEP_OK);
    assert_int_equal(n, 6);
    assert_int_equal(scep_query_find(q, strlen(q), "messag", &v, &n), SCEP_E_NO_ENTRY);
    assert_int_equal(scep_query_find(q, strlen(q), "nosuch", &v, &n), SCEP_E_NO_ENTRY);
    assert_int_equal(scep_query_find("operation", 9, "operation", &v, &n), SCEP_OK);
    assert_int_equal(n, 0);
}

static void
test_query_unescape_errors(void **state)
{
    char buf[16];

    (void)state;
    assert_int_equal(scep_query_unescape("Get%43ACaps", 11, buf, sizeof(buf)), SCEP_OK);
    assert_string_equal(buf, "GetCACaps");
    assert_int_equal(scep_query_unescape("a%4", 3, buf, sizeof(buf)), SCEP_E_BAD_QUERY);
    assert_int_equal(scep_query_unescape("a%zz", 4, buf, sizeof(buf)), SCEP_E_BAD_QUERY);
    assert_int_equal(scep_query_unescape("a%00b", 5, buf, sizeof(buf)), SCEP_E_BAD_QUERY);
    assert_int_equal(scep_query_unescape("0123456789abcdefg", 17, buf, sizeof(buf)),
                     SCEP_E_BAD_QUERY);
}

static void
decode_ok(const char *in, const char *expect, size_t elen)
{
    unsigned char *out = NULL;
    size_t n = 0;

    assert_int_equal(scep_query_decode_message(in, strlen(in), 1024, &out, &n), SCEP_OK);
    assert_int_equal(n, elen);
    assert_memory_equal(out, expect, elen);
    free(out);
}

static void
test_query_decode_message_client_quirks(void **state)
{
    (void)state;
    /* "\xfb\xff\xbf" encodes to "+/+/" : every quirky character at once */
    decode_ok("+/+/", "\xfb\xff\xbf", 3);         /* Apple: raw + and / */
    decode_ok("%2B%2F%2B%2F", "\xfb\xff\xbf", 3); /* fully escaped */
    decode_ok("%2b/%2B/", "\xfb\xff\xbf", 3);     /* lower-case escapes */
    decode_ok(" / /", "\xfb\xff\xbf", 3);         /* + form-decoded to space by a hop */
    decode_ok("-_-_", "\xfb\xff\xbf", 3);         /* URL-safe alphabet */
    decode_ok("TWFu", "Man", 3);
    decode_ok("TWE%3D", "Ma", 2);         /* escaped padding */
    decode_ok("TWE", "Ma", 2);            /* missing padding */
    decode_ok("TW%0AFu%0D%0A", "Man", 3); /* sscep / strongSwan line breaks */
}

static void
test_query_decode_message_rejects(void **state)
{
    unsigned char *out = NULL;
    size_t n = 0;

    (void)state;
    assert_int_equal(scep_query_decode_message("%%%", 3, 1024, &out, &n), SCEP_E_BAD_BASE64);
    assert_int_equal(scep_query_decode_message("TW!u", 4, 1024, &out, &n), SCEP_E_BAD_BASE64);
    assert_int_equal(scep_query_decode_message("T", 1, 1024, &out, &n), SCEP_E_BAD_BASE64);
    assert_int_equal(scep_query_decode_message("TW=u", 4, 1024, &out, &n), SCEP_E_BAD_BASE64);
    assert_int_equal(scep_query_decode_message("TWE==", 5, 1024, &out, &n), SCEP_E_BAD_BASE64);
    assert_int_equal(scep_query_decode_message("", 0, 1024, &out, &n), SCEP_E_BAD_BASE64);
    assert_int_equal(scep_query_decode_message("TWFuTWFu", 8, 5, &out, &n), SCEP_E_TOO_LARGE);
    assert_null(out);
}

static void
test_query_b64_roundtrip(void **state)
{
    unsigned char in[300], *back = NULL;
    char *enc = NULL;
    size_t i, n, len;

    (void)state;
    for (i = 0; i < sizeof(in); i++)
        in[i] = (unsigned char)(i * 7 + 3);
    for (len = 1; len < sizeof(in); len += 37) {
        assert_int_equal(scep_b64_encode(in, len, &enc), SCEP_OK);
        assert_int_equal(strlen(enc) % 4, 0);
        assert_int_equal(scep_b64_decode(enc, strlen(enc), sizeof(in), &back, &n), SCEP_OK);
        assert_int_equal(n, len);
        assert_memory_equal(back, in, len);
        free(enc);
        free(back);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_query_find_present_absent),
        cmocka_unit_test(test_query_unescape_errors),
        cmocka_unit_test(test_query_decode_message_client_quirks),
        cmocka_unit_test(test_query_decode_message_rejects),
        cmocka_unit_test(test_query_b64_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
