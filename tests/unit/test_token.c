/*
 * test_token.c - signed enrollment tokens (token.h): what scep_token_sign
 * mints scep_token_verify accepts, field for field; everything else is
 * refused with the exact code.  Malformed payloads are minted here with
 * a correct MAC (mint_b64), so each case reaches the check it is about.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "scepd/token.h"

#define EXP 2000000000LL
#define NONCE "AAAABBBBCCCCDDDDeeee-_"

static const unsigned char key[32] = "0123456789abcdef0123456789abcdef";
static const unsigned char key2[32] = "0123456789abcdef0123456789abcdeF";

/* A token with a correct MAC under k around payload-base64 text b64 (any bytes). */
static void
mint_b64(const unsigned char *k, const char *prefix, const char *b64, char *out, size_t outlen)
{
    unsigned char md[32];
    char mac64[45];
    unsigned int n = 0;
    int w;

    w = snprintf(out, outlen, "%s%s", prefix, b64);
    assert_true(w > 0 && (size_t)w < outlen);
    assert_non_null(HMAC(EVP_sha256(), k, 32, (const unsigned char *)out, strlen(out), md, &n));
    assert_int_equal(n, 32);
    assert_int_equal(EVP_EncodeBlock((unsigned char *)mac64, md, 32), 44);
    assert_true(strlen(out) + 1 + 44 < outlen);
    strcat(out, ".");
    strcat(out, mac64);
}

/* A token with a correct MAC whose payload is exactly json. */
static void
mint_json(const char *json, char *out, size_t outlen)
{
    char b64[4096];

    assert_true((strlen(json) + 2) / 3 * 4 < sizeof(b64));
    EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)json, (int)strlen(json));
    mint_b64(key, SCEP_TOKEN_PREFIX, b64, out, outlen);
}

static enum scep_err
verify_at(const char *tok, int64_t now)
{
    struct scep_token t;

    return scep_token_verify(key, sizeof(key), tok, strlen(tok), now, &t);
}

static enum scep_err
verify(const char *tok)
{
    return verify_at(tok, EXP - 100);
}

/* verify(mint_json(json)) */
static enum scep_err
verify_json(const char *json)
{
    char tok[8192];

    mint_json(json, tok, sizeof(tok));
    return verify(tok);
}

static void
full_token(struct scep_token *t)
{
    memset(t, 0, sizeof(*t));
    strcpy(t->endpoint, "devices");
    t->expires = EXP;
    strcpy(t->nonce, NONCE);
    strcpy(t->subject, "CN=dev1,O=Acme");
    strcpy(t->sans[0], "DNS:dev1.example.com");
    strcpy(t->sans[1], "email:dev1@example.com");
    strcpy(t->sans[2], "IP:192.0.2.1");
    strcpy(t->sans[3], "URI:urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66");
    t->nsans = 4;
    strcpy(t->eku, "clientAuth,1.3.6.1.4.1.311.20.2.2");
    strcpy(t->device, "serial-C02XYZ");
    strcpy(t->sid, "S-1-5-21-3623811015-3361044348-30300820-1013");
}

static void
minimal_token(struct scep_token *t)
{
    memset(t, 0, sizeof(*t));
    strcpy(t->endpoint, "devices");
    t->expires = EXP;
    strcpy(t->nonce, NONCE);
}

static void
sign_ok(const struct scep_token *t, char *out, size_t outlen)
{
    assert_int_equal(scep_token_sign(key, sizeof(key), t, out, outlen), SCEP_OK);
    assert_true(strlen(out) <= SCEP_TOKEN_MAX);
}

/* The payload JSON of a token (decoded; the test trusts the signer's padding). */
static void
payload_of(const char *tok, char *json, size_t jlen)
{
    const char *p = tok + strlen(SCEP_TOKEN_PREFIX), *dot = strchr(p, '.');
    size_t b = (size_t)(dot - p), pad = 0;
    int n;

    assert_non_null(dot);
    assert_true(b / 4 * 3 < jlen);
    n = EVP_DecodeBlock((unsigned char *)json, (const unsigned char *)p, (int)b);
    assert_true(n > 0);
    if (p[b - 1] == '=')
        pad = p[b - 2] == '=' ? 2 : 1;
    json[(size_t)n - pad] = '\0';
}

static void
test_token_sign_verify_roundtrip_all_fields(void **state)
{
    struct scep_token in, out;
    char tok[SCEP_TOKEN_MAX + 1], json[SCEP_TOKEN_MAX];
    size_t i;

    (void)state;
    full_token(&in);
    sign_ok(&in, tok, sizeof(tok));
    assert_true(scep_token_is(tok, strlen(tok)));
    memset(&out, 0xAA, sizeof(out));
    assert_int_equal(scep_token_verify(key, sizeof(key), tok, strlen(tok), EXP - 1, &out), SCEP_OK);
    assert_string_equal(out.endpoint, in.endpoint);
    assert_int_equal(out.expires, in.expires);
    assert_string_equal(out.nonce, in.nonce);
    assert_string_equal(out.subject, in.subject);
    assert_int_equal(out.nsans, in.nsans);
    for (i = 0; i < in.nsans; i++)
        assert_string_equal(out.sans[i], in.sans[i]);
    assert_string_equal(out.eku, in.eku);
    assert_string_equal(out.device, in.device);
    assert_string_equal(out.sid, in.sid);

    /* Canonical: compact, keys sorted. */
    payload_of(tok, json, sizeof(json));
    assert_string_equal(json,
                        "{\"dev\":\"serial-C02XYZ\",\"eku\":\"clientAuth,1.3.6.1.4.1.311.20.2.2\","
                        "\"ep\":\"devices\",\"exp\":2000000000,\"nonce\":\"" NONCE "\","
                        "\"san\":[\"DNS:dev1.example.com\",\"email:dev1@example.com\","
                        "\"IP:192.0.2.1\","
                        "\"URI:urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66\"],"
                        "\"sid\":\"S-1-5-21-3623811015-3361044348-30300820-1013\","
                        "\"sub\":\"CN=dev1,O=Acme\"}");
    /* Signing is deterministic. */
    {
        char again[SCEP_TOKEN_MAX + 1];
        sign_ok(&in, again, sizeof(again));
        assert_string_equal(again, tok);
    }
}

static void
test_token_sign_verify_roundtrip_minimal(void **state)
{
    struct scep_token in, out;
    char tok[SCEP_TOKEN_MAX + 1], json[SCEP_TOKEN_MAX];

    (void)state;
    minimal_token(&in);
    sign_ok(&in, tok, sizeof(tok));
    payload_of(tok, json, sizeof(json));
    /* Empty optional members are omitted. */
    assert_string_equal(json, "{\"ep\":\"devices\",\"exp\":2000000000,\"nonce\":\"" NONCE "\"}");
    memset(&out, 0xAA, sizeof(out));
    assert_int_equal(scep_token_verify(key, sizeof(key), tok, strlen(tok), 0, &out), SCEP_OK);
    assert_string_equal(out.endpoint, "devices");
    assert_string_equal(out.subject, "");
    assert_int_equal(out.nsans, 0);
    assert_string_equal(out.eku, "");
    assert_string_equal(out.device, "");
    assert_string_equal(out.sid, "");
}

static void
test_token_verify_noncanonical_json_accepted(void **state)
{
    (void)state;
    /* Another minter may order members and space differently; the MAC covers its bytes. */
    assert_int_equal(verify_json(" { \"nonce\" : \"" NONCE "\", \"exp\": 2000000000,\n"
                                 "\"ep\": \"devices\", \"sub\": \"CN=M\\u00fcller\" } "),
                     SCEP_OK);
}

static void
test_token_verify_tampered(void **state)
{
    struct scep_token in;
    char tok[SCEP_TOKEN_MAX + 1], bad[SCEP_TOKEN_MAX + 1];
    const char *dot;
    size_t len, i, mac_at;

    (void)state;
    full_token(&in);
    sign_ok(&in, tok, sizeof(tok));
    len = strlen(tok);
    dot = strchr(tok + strlen(SCEP_TOKEN_PREFIX), '.');
    assert_non_null(dot);
    mac_at = (size_t)(dot - tok) + 1;
    assert_int_equal(verify(tok), SCEP_OK);

    /* Every payload character, changed to another base64 character. */
    for (i = strlen(SCEP_TOKEN_PREFIX); i < mac_at - 1; i++) {
        memcpy(bad, tok, len + 1);
        bad[i] = bad[i] == 'A' ? 'B' : 'A';
        assert_int_equal(verify(bad), SCEP_E_TOKEN);
    }
    /* Every MAC character but the padding. */
    for (i = mac_at; i < len - 1; i++) {
        memcpy(bad, tok, len + 1);
        bad[i] = bad[i] == 'A' ? 'B' : 'A';
        assert_int_equal(verify(bad), SCEP_E_TOKEN);
    }
}

static void
test_token_verify_other_key(void **state)
{
    struct scep_token in, out;
    char tok[SCEP_TOKEN_MAX + 1];

    (void)state;
    full_token(&in);
    assert_int_equal(scep_token_sign(key2, sizeof(key2), &in, tok, sizeof(tok)), SCEP_OK);
    assert_int_equal(verify(tok), SCEP_E_TOKEN);
    assert_int_equal(scep_token_verify(key2, sizeof(key2), tok, strlen(tok), EXP - 1, &out),
                     SCEP_OK);
    /* The same key, shorter: another key. */
    assert_int_equal(scep_token_verify(key2, 31, tok, strlen(tok), EXP - 1, &out), SCEP_E_TOKEN);
}

static void
test_token_verify_truncated(void **state)
{
    struct scep_token in, out;
    char tok[SCEP_TOKEN_MAX + 1];
    size_t len, n;

    (void)state;
    minimal_token(&in);
    sign_ok(&in, tok, sizeof(tok));
    len = strlen(tok);
    /* Not NUL-terminated: len is what counts. */
    for (n = 0; n < len; n++)
        assert_int_equal(scep_token_verify(key, sizeof(key), tok, n, 0, &out), SCEP_E_TOKEN);
    assert_int_equal(scep_token_verify(key, sizeof(key), tok, len, 0, &out), SCEP_OK);
    assert_int_equal(scep_token_verify(key, sizeof(key), NULL, 0, 0, &out), SCEP_E_TOKEN);
}

static void
test_token_verify_parts(void **state)
{
    struct scep_token in;
    char tok[SCEP_TOKEN_MAX + 1], bad[SCEP_TOKEN_MAX + 64];
    char *dot;

    (void)state;
    minimal_token(&in);
    sign_ok(&in, tok, sizeof(tok));
    dot = strchr(tok + strlen(SCEP_TOKEN_PREFIX), '.');
    assert_non_null(dot);

    assert_int_equal(verify("scep1."), SCEP_E_TOKEN);
    assert_int_equal(verify("scep1.."), SCEP_E_TOKEN);
    assert_int_equal(verify("scep1..."), SCEP_E_TOKEN);
    /* No MAC part. */
    snprintf(bad, sizeof(bad), "%.*s", (int)(dot - tok), tok);
    assert_int_equal(verify(bad), SCEP_E_TOKEN);
    snprintf(bad, sizeof(bad), "%.*s", (int)(dot - tok + 1), tok);
    assert_int_equal(verify(bad), SCEP_E_TOKEN);
    /* No payload part. */
    snprintf(bad, sizeof(bad), "scep1.%s", dot);
    assert_int_equal(verify(bad), SCEP_E_TOKEN);
    /* Extra dots: after, inside, doubled. */
    snprintf(bad, sizeof(bad), "%s.", tok);
    assert_int_equal(verify(bad), SCEP_E_TOKEN);
    snprintf(bad, sizeof(bad), "%s.AAAA", tok);
    assert_int_equal(verify(bad), SCEP_E_TOKEN);
    snprintf(bad, sizeof(bad), "%.*s.%s", (int)(dot - tok), tok, dot);
    assert_int_equal(verify(bad), SCEP_E_TOKEN);
    snprintf(bad, sizeof(bad), "scep1..%s", tok + strlen(SCEP_TOKEN_PREFIX));
    assert_int_equal(verify(bad), SCEP_E_TOKEN);
    /* A MAC part with an extra padding character in place of a dot. */
    snprintf(bad, sizeof(bad), "%s=", tok);
    assert_int_equal(verify(bad), SCEP_E_TOKEN);
    /* A NUL inside. */
    memcpy(bad, tok, strlen(tok) + 1);
    bad[8] = '\0';
    assert_int_equal(scep_token_verify(key, sizeof(key), bad, strlen(tok), 0, &in), SCEP_E_TOKEN);
}

static void
test_token_verify_wrong_prefix(void **state)
{
    char b64[256], tok[512];
    const char *json = "{\"ep\":\"devices\",\"exp\":2000000000,\"nonce\":\"" NONCE "\"}";

    (void)state;
    EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)json, (int)strlen(json));
    mint_b64(key, SCEP_TOKEN_PREFIX, b64, tok, sizeof(tok));
    assert_int_equal(verify(tok), SCEP_OK);
    /* Each with a MAC over its own prefix, so only the prefix is wrong. */
    mint_b64(key, "scep2.", b64, tok, sizeof(tok));
    assert_int_equal(verify(tok), SCEP_E_TOKEN);
    mint_b64(key, "SCEP1.", b64, tok, sizeof(tok));
    assert_int_equal(verify(tok), SCEP_E_TOKEN);
    mint_b64(key, " scep1.", b64, tok, sizeof(tok));
    assert_int_equal(verify(tok), SCEP_E_TOKEN);
    mint_b64(key, "scep1:", b64, tok, sizeof(tok));
    assert_int_equal(verify(tok), SCEP_E_TOKEN);
    mint_b64(key, "", b64, tok, sizeof(tok));
    assert_int_equal(verify(tok), SCEP_E_TOKEN);
}

static void
test_token_verify_noncanonical_base64(void **state)
{
    /* {"ep":"devices2","exp":2000000000,"nonce":"AAAABBBBCCCCDDDDeeee-_"} is 67 bytes: "==" */
    const char *json = "{\"ep\":\"devices2\",\"exp\":2000000000,\"nonce\":\"" NONCE "\"}";
    char b64[256], alt[300], tok[512];
    size_t n;
    char *p;

    (void)state;
    assert_int_equal(strlen(json) % 3, 1);
    n = (size_t)EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)json,
                                (int)strlen(json));
    assert_memory_equal(b64 + n - 2, "==", 2);
    mint_b64(key, SCEP_TOKEN_PREFIX, b64, tok, sizeof(tok));
    assert_int_equal(verify(tok), SCEP_OK);

    /* Padding bits set: "fQ==" and "fR==" both decode to "}". */
    strcpy(alt, b64);
    assert_int_equal(alt[n - 3], 'Q');
    alt[n - 3] = 'R';
    mint_b64(key, SCEP_TOKEN_PREFIX, alt, tok, sizeof(tok));
    assert_int_equal(verify(tok), SCEP_E_TOKEN);
    /* Padding dropped, one '=' of two, a third '='. */
    strcpy(alt, b64);
    alt[n - 2] = '\0';
    mint_b64(key, SCEP_TOKEN_PREFIX, alt, tok, sizeof(tok));
    assert_int_equal(verify(tok), SCEP_E_TOKEN);
    alt[n - 2] = '=';
    alt[n - 1] = '\0';
    mint_b64(key, SCEP_TOKEN_PREFIX, alt, tok, sizeof(tok));
    assert_int_equal(verify(tok), SCEP_E_TOKEN);
    snprintf(alt, sizeof(alt), "%s=", b64);
    mint_b64(key, SCEP_TOKEN_PREFIX, alt, tok, sizeof(tok));
    assert_int_equal(verify(tok), SCEP_E_TOKEN);
    /* URL-safe alphabet: "~~~" on a 3-byte boundary encodes to "fn5+". */
    {
        const char *tilde =
            "{"
            "\"ep\":\"devices\",\"exp\":2000000000,\"nonce\":\"" NONCE "\",\"sub\":\"CN=~~~~~\"}";
        EVP_EncodeBlock((unsigned char *)alt, (const unsigned char *)tilde, (int)strlen(tilde));
        mint_b64(key, SCEP_TOKEN_PREFIX, alt, tok, sizeof(tok));
        assert_int_equal(verify(tok), SCEP_OK);
        p = strchr(alt, '+');
        assert_non_null(p);
        *p = '-';
        mint_b64(key, SCEP_TOKEN_PREFIX, alt, tok, sizeof(tok));
        assert_int_equal(verify(tok), SCEP_E_TOKEN);
    }
    /* Whitespace, a line break, '=' in the middle. */
    mint_b64(key, SCEP_TOKEN_PREFIX, "eyJl IjoxfQ==", tok, sizeof(tok));
    assert_int_equal(verify(tok), SCEP_E_TOKEN);
    snprintf(alt, sizeof(alt), "    %s", b64); /* EVP_DecodeBlock would skip these */
    mint_b64(key, SCEP_TOKEN_PREFIX, alt, tok, sizeof(tok));
    assert_int_equal(verify(tok), SCEP_E_TOKEN);
    snprintf(alt, sizeof(alt), "%.4s\n%s", b64, b64 + 4);
    mint_b64(key, SCEP_TOKEN_PREFIX, alt, tok, sizeof(tok));
    assert_int_equal(verify(tok), SCEP_E_TOKEN);
    snprintf(alt, sizeof(alt), "%.4s====%s", b64, b64 + 4);
    mint_b64(key, SCEP_TOKEN_PREFIX, alt, tok, sizeof(tok));
    assert_int_equal(verify(tok), SCEP_E_TOKEN);

    /* The MAC part with its padding bits set decodes to the same MAC: refused too. */
    mint_b64(key, SCEP_TOKEN_PREFIX, b64, tok, sizeof(tok));
    n = strlen(tok);
    assert_int_equal(tok[n - 1], '=');
    {
        static const char tbl[] =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        const char *c = strchr(tbl, tok[n - 2]);
        assert_non_null(c);
        assert_int_equal((c - tbl) & 3, 0); /* 32 bytes: the last character has 2 spare bits */
        tok[n - 2] = c[1];
        assert_int_equal(verify(tok), SCEP_E_TOKEN);
    }
}

static void
test_token_verify_not_json(void **state)
{
    (void)state;
    assert_int_equal(verify_json("not json at all"), SCEP_E_TOKEN);
    assert_int_equal(verify_json("[\"devices\",2000000000,\"" NONCE "\"]"), SCEP_E_TOKEN);
    assert_int_equal(verify_json("\"devices\""), SCEP_E_TOKEN);
    assert_int_equal(verify_json("42"), SCEP_E_TOKEN);
    assert_int_equal(verify_json("null"), SCEP_E_TOKEN);
    assert_int_equal(verify_json("{}"), SCEP_E_TOKEN);
    /* Trailing bytes after the object. */
    assert_int_equal(
        verify_json("{\"ep\":\"devices\",\"exp\":2000000000,\"nonce\":\"" NONCE "\"}x"),
        SCEP_E_TOKEN);
    assert_int_equal(
        verify_json("{\"ep\":\"devices\",\"exp\":2000000000,\"nonce\":\"" NONCE "\"}{}"),
        SCEP_E_TOKEN);
    /* Truncated object. */
    assert_int_equal(verify_json("{\"ep\":\"devices\",\"exp\":2000000000,\"nonce\":\"" NONCE "\""),
                     SCEP_E_TOKEN);
    /* Invalid UTF-8. */
    assert_int_equal(verify_json("{\"ep\":\"dev\xc3\",\"exp\":2000000000,\"nonce\":\"" NONCE "\"}"),
                     SCEP_E_TOKEN);
}

#define REQ "\"ep\":\"devices\",\"exp\":2000000000,\"nonce\":\"" NONCE "\""

static void
test_token_verify_members(void **state)
{
    (void)state;
    assert_int_equal(verify_json("{" REQ "}"), SCEP_OK);
    /* Duplicates, unknown members, missing required ones. */
    assert_int_equal(verify_json("{" REQ ",\"ep\":\"other\"}"), SCEP_E_TOKEN);
    assert_int_equal(verify_json("{" REQ ",\"sub\":\"CN=a\",\"sub\":\"CN=a\"}"), SCEP_E_TOKEN);
    assert_int_equal(verify_json("{" REQ ",\"foo\":1}"), SCEP_E_TOKEN);
    assert_int_equal(verify_json("{" REQ ",\"Sub\":\"CN=a\"}"), SCEP_E_TOKEN);
    assert_int_equal(verify_json("{" REQ ",\"\":\"\"}"), SCEP_E_TOKEN);
    assert_int_equal(verify_json("{" REQ ",\"ep\\u0000x\":\"a\"}"), SCEP_E_TOKEN);
    assert_int_equal(verify_json("{\"exp\":2000000000,\"nonce\":\"" NONCE "\"}"), SCEP_E_TOKEN);
    assert_int_equal(verify_json("{\"ep\":\"devices\",\"nonce\":\"" NONCE "\"}"), SCEP_E_TOKEN);
    assert_int_equal(verify_json("{\"ep\":\"devices\",\"exp\":2000000000}"), SCEP_E_TOKEN);
}

static void
test_token_verify_types(void **state)
{
    (void)state;
    /* exp: an integer > 0 */
    assert_int_equal(verify_json("{\"ep\":\"d\",\"exp\":\"2000000000\",\"nonce\":\"" NONCE "\"}"),
                     SCEP_E_TOKEN);
    assert_int_equal(verify_json("{\"ep\":\"d\",\"exp\":2000000000.0,\"nonce\":\"" NONCE "\"}"),
                     SCEP_E_TOKEN);
    assert_int_equal(verify_json("{\"ep\":\"d\",\"exp\":2e9,\"nonce\":\"" NONCE "\"}"),
                     SCEP_E_TOKEN);
    assert_int_equal(verify_json("{\"ep\":\"d\",\"exp\":0,\"nonce\":\"" NONCE "\"}"), SCEP_E_TOKEN);
    assert_int_equal(verify_json("{\"ep\":\"d\",\"exp\":-1,\"nonce\":\"" NONCE "\"}"),
                     SCEP_E_TOKEN);
    assert_int_equal(verify_json("{\"ep\":\"d\",\"exp\":true,\"nonce\":\"" NONCE "\"}"),
                     SCEP_E_TOKEN);
    assert_int_equal(
        verify_json("{\"ep\":\"d\",\"exp\":99999999999999999999,\"nonce\":\"" NONCE "\"}"),
        SCEP_E_TOKEN);
    /* ep: a non-empty string that fits */
    assert_int_equal(verify_json("{\"ep\":1,\"exp\":2000000000,\"nonce\":\"" NONCE "\"}"),
                     SCEP_E_TOKEN);
    assert_int_equal(verify_json("{\"ep\":\"\",\"exp\":2000000000,\"nonce\":\"" NONCE "\"}"),
                     SCEP_E_TOKEN);
    assert_int_equal(verify_json("{\"ep\":null,\"exp\":2000000000,\"nonce\":\"" NONCE "\"}"),
                     SCEP_E_TOKEN);
    assert_int_equal(verify_json("{\"ep\":\"0123456789012345678901234567890123456789012345678901"
                                 "23456789012\",\"exp\":2000000000,\"nonce\":\"" NONCE "\"}"),
                     SCEP_OK); /* 63 characters */
    assert_int_equal(verify_json("{\"ep\":\"0123456789012345678901234567890123456789012345678901"
                                 "234567890123\",\"exp\":2000000000,\"nonce\":\"" NONCE "\"}"),
                     SCEP_E_TOKEN); /* 64 */
    /* optional strings: strings, not empty, no NUL or control characters */
    assert_int_equal(verify_json("{" REQ ",\"sub\":[\"CN=a\"]}"), SCEP_E_TOKEN);
    assert_int_equal(verify_json("{" REQ ",\"sub\":\"\"}"), SCEP_E_TOKEN);
    assert_int_equal(verify_json("{" REQ ",\"eku\":\"\"}"), SCEP_E_TOKEN);
    assert_int_equal(verify_json("{" REQ ",\"dev\":\"\"}"), SCEP_E_TOKEN);
    assert_int_equal(verify_json("{" REQ ",\"sid\":\"\"}"), SCEP_E_TOKEN);
    assert_int_equal(verify_json("{" REQ ",\"dev\":42}"), SCEP_E_TOKEN);
    assert_int_equal(verify_json("{" REQ ",\"sub\":\"CN=a\\nCN=b\"}"), SCEP_E_TOKEN);
    assert_int_equal(verify_json("{" REQ ",\"sub\":\"CN=a\\u0000b\"}"), SCEP_E_TOKEN);
    assert_int_equal(verify_json("{" REQ ",\"sub\":\"CN=a\\u0085b\"}"), SCEP_E_TOKEN);
    assert_int_equal(verify_json("{" REQ ",\"sub\":\"CN=a\\u007fb\"}"), SCEP_E_TOKEN);
    /* san: a non-empty array of at most 8 typed strings */
    assert_int_equal(verify_json("{" REQ ",\"san\":\"DNS:a\"}"), SCEP_E_TOKEN);
    assert_int_equal(verify_json("{" REQ ",\"san\":{\"DNS\":\"a\"}}"), SCEP_E_TOKEN);
    assert_int_equal(verify_json("{" REQ ",\"san\":[]}"), SCEP_E_TOKEN);
    assert_int_equal(verify_json("{" REQ ",\"san\":[1]}"), SCEP_E_TOKEN);
    assert_int_equal(verify_json("{" REQ ",\"san\":[[\"DNS:a\"]]}"), SCEP_E_TOKEN);
    assert_int_equal(verify_json("{" REQ ",\"san\":[\"otherName:1.2.3;UTF8:x\"]}"), SCEP_E_TOKEN);
    assert_int_equal(verify_json("{" REQ ",\"san\":[\"dns:a\"]}"), SCEP_E_TOKEN);
    assert_int_equal(verify_json("{" REQ ",\"san\":[\"DNS:\"]}"), SCEP_E_TOKEN);
    assert_int_equal(verify_json("{" REQ ",\"san\":[\"DNS\"]}"), SCEP_E_TOKEN);
    assert_int_equal(verify_json("{" REQ ",\"san\":[\"DNS:a\",\"RID:1.2\"]}"), SCEP_E_TOKEN);
    assert_int_equal(verify_json("{" REQ ",\"san\":[\"DNS:a\",\"IP:::1\",\"email:b@c\","
                                 "\"URI:http://x/\"]}"),
                     SCEP_OK);
    assert_int_equal(verify_json("{" REQ ",\"san\":[\"DNS:1\",\"DNS:2\",\"DNS:3\",\"DNS:4\","
                                 "\"DNS:5\",\"DNS:6\",\"DNS:7\",\"DNS:8\"]}"),
                     SCEP_OK);
    assert_int_equal(verify_json("{" REQ ",\"san\":[\"DNS:1\",\"DNS:2\",\"DNS:3\",\"DNS:4\","
                                 "\"DNS:5\",\"DNS:6\",\"DNS:7\",\"DNS:8\",\"DNS:9\"]}"),
                     SCEP_E_TOKEN);
}

static void
test_token_verify_oversized(void **state)
{
    char *big, tok[8192], json[4096];
    struct scep_token out;
    size_t n, last;

    (void)state;
    big = malloc(SCEP_TOKEN_MAX + 2);
    assert_non_null(big);
    memset(big, 'A', SCEP_TOKEN_MAX + 1);
    memcpy(big, SCEP_TOKEN_PREFIX, strlen(SCEP_TOKEN_PREFIX));
    big[SCEP_TOKEN_MAX + 1] = '\0';
    assert_int_equal(scep_token_verify(key, sizeof(key), big, SCEP_TOKEN_MAX + 1, 0, &out),
                     SCEP_E_TOKEN);
    free(big);

    /* Correctly MAC'd tokens up to SCEP_TOKEN_MAX bytes pass; the next longer one does not. */
    for (n = 0, last = 0; n < 8 * 200; n++) {
        char sans[8][256];
        size_t i, w;
        for (i = 0; i < 8; i++) {
            w = 1 + n / 8 + (i < n % 8);
            memset(sans[i], 'a', w);
            sans[i][w] = '\0';
        }
        snprintf(json, sizeof(json),
                 "{" REQ ",\"san\":[\"DNS:%s\",\"DNS:%s\",\"DNS:%s\",\"DNS:%s\",\"DNS:%s\","
                 "\"DNS:%s\",\"DNS:%s\",\"DNS:%s\"]}",
                 sans[0], sans[1], sans[2], sans[3], sans[4], sans[5], sans[6], sans[7]);
        mint_json(json, tok, sizeof(tok));
        if (strlen(tok) > SCEP_TOKEN_MAX)
            break;
        assert_int_equal(verify(tok), SCEP_OK);
        last = strlen(tok);
    }
    assert_true(last > SCEP_TOKEN_MAX - 4);
    assert_true(strlen(tok) > SCEP_TOKEN_MAX);
    assert_true(strlen(tok) <= SCEP_TOKEN_MAX + 4);
    assert_int_equal(verify(tok), SCEP_E_TOKEN);
}

static void
test_token_verify_nonce(void **state)
{
    (void)state;
    assert_int_equal(
        verify_json("{\"ep\":\"d\",\"exp\":2000000000,\"nonce\":\"0123456789abcdef\"}"),
        SCEP_OK); /* 16 */
    assert_int_equal(verify_json("{\"ep\":\"d\",\"exp\":2000000000,\"nonce\":\"0123456789abcde\"}"),
                     SCEP_E_TOKEN); /* 15 */
    assert_int_equal(verify_json("{\"ep\":\"d\",\"exp\":2000000000,\"nonce\":\"0123456789abcdef"
                                 "0123456789abcdef0123456789abcdef0123456789+/=-_x\"}"),
                     SCEP_OK); /* 64 */
    assert_int_equal(verify_json("{\"ep\":\"d\",\"exp\":2000000000,\"nonce\":\"0123456789abcdef"
                                 "0123456789abcdef0123456789abcdef0123456789+/=-_xy\"}"),
                     SCEP_E_TOKEN); /* 65 */
    assert_int_equal(verify_json("{\"ep\":\"d\",\"exp\":2000000000,\"nonce\":\"\"}"), SCEP_E_TOKEN);
    assert_int_equal(
        verify_json("{\"ep\":\"d\",\"exp\":2000000000,\"nonce\":\"0123456789 abcdef\"}"),
        SCEP_E_TOKEN);
    assert_int_equal(
        verify_json("{\"ep\":\"d\",\"exp\":2000000000,\"nonce\":\"0123456789.abcdef\"}"),
        SCEP_E_TOKEN);
    /* '@' and '[' lie between '=' and '_': the set is literal, not a range. */
    assert_int_equal(
        verify_json("{\"ep\":\"d\",\"exp\":2000000000,\"nonce\":\"0123456789@abcdef\"}"),
        SCEP_E_TOKEN);
    assert_int_equal(
        verify_json("{\"ep\":\"d\",\"exp\":2000000000,\"nonce\":\"0123456789[abcdef\"}"),
        SCEP_E_TOKEN);
    assert_int_equal(
        verify_json("{\"ep\":\"d\",\"exp\":2000000000,\"nonce\":\"0123456789\\u00e9abcdef\"}"),
        SCEP_E_TOKEN);
    assert_int_equal(verify_json("{\"ep\":\"d\",\"exp\":2000000000,\"nonce\":1234567890123456789}"),
                     SCEP_E_TOKEN);
}

static void
test_token_verify_sid(void **state)
{
    static const char *const good[] = {"S-1-5-18", "S-1-5-21-3623811015-3361044348-30300820-1013",
                                       "S-1-0-0"};
    static const char *const bad[] = {"S-1-5",     "S-1-5-",    "S-1--5-21", "S-2-5-21",
                                      "s-1-5-21",  "S-1-5-21a", "S-1-5-+1",  "S-1",
                                      "S-1-5--21", "-1-5-21",   "S-15-21",   " S-1-5-18"};
    char json[512];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        snprintf(json, sizeof(json), "{" REQ ",\"sid\":\"%s\"}", good[i]);
        assert_int_equal(verify_json(json), SCEP_OK);
    }
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(json, sizeof(json), "{" REQ ",\"sid\":\"%s\"}", bad[i]);
        assert_int_equal(verify_json(json), SCEP_E_TOKEN);
    }
}

static void
test_token_verify_expiry(void **state)
{
    struct scep_token in, out, untouched;
    char tok[SCEP_TOKEN_MAX + 1];
    size_t len;

    (void)state;
    minimal_token(&in);
    sign_ok(&in, tok, sizeof(tok));
    len = strlen(tok);
    assert_int_equal(scep_token_verify(key, sizeof(key), tok, len, EXP - 1, &out), SCEP_OK);
    assert_int_equal(out.expires, EXP);
    /* *out is left alone on failure. */
    memset(&out, 0x5A, sizeof(out));
    memcpy(&untouched, &out, sizeof(out));
    assert_int_equal(scep_token_verify(key, sizeof(key), tok, len, EXP, &out),
                     SCEP_E_CHALLENGE_EXPIRED);
    assert_int_equal(scep_token_verify(key, sizeof(key), tok, len, EXP + 1, &out),
                     SCEP_E_CHALLENGE_EXPIRED);
    assert_int_equal(scep_token_verify(key, sizeof(key), tok, len, INT64_MAX, &out),
                     SCEP_E_CHALLENGE_EXPIRED);
    assert_memory_equal(&out, &untouched, sizeof(out));
    /* An expired token under another key is a bad token, not an expired one. */
    assert_int_equal(scep_token_verify(key2, sizeof(key2), tok, len, EXP + 1, &out), SCEP_E_TOKEN);
    assert_memory_equal(&out, &untouched, sizeof(out));
}

static void
test_token_key_length(void **state)
{
    struct scep_token in, out;
    char tok[SCEP_TOKEN_MAX + 1];

    (void)state;
    minimal_token(&in);
    strcpy(tok, "unchanged");
    assert_int_equal(scep_token_sign(key, 15, &in, tok, sizeof(tok)), SCEP_E_INVALID_ARG);
    assert_string_equal(tok, "");
    assert_int_equal(scep_token_sign(key, 0, &in, tok, sizeof(tok)), SCEP_E_INVALID_ARG);
    assert_int_equal(scep_token_sign(NULL, 32, &in, tok, sizeof(tok)), SCEP_E_INVALID_ARG);
    assert_int_equal(scep_token_sign(key, 16, &in, tok, sizeof(tok)), SCEP_OK);
    assert_int_equal(scep_token_verify(key, 16, tok, strlen(tok), 0, &out), SCEP_OK);
    assert_int_equal(scep_token_verify(key, 15, tok, strlen(tok), 0, &out), SCEP_E_INVALID_ARG);
}

static void
test_token_sign_rejects(void **state)
{
    struct scep_token t;
    char tok[SCEP_TOKEN_MAX + 1], small[64];
    size_t i;

    (void)state;
    minimal_token(&t);
    t.nonce[0] = '\0';
    assert_int_equal(scep_token_sign(key, sizeof(key), &t, tok, sizeof(tok)), SCEP_E_INVALID_ARG);
    minimal_token(&t);
    strcpy(t.nonce, "short");
    assert_int_equal(scep_token_sign(key, sizeof(key), &t, tok, sizeof(tok)), SCEP_E_INVALID_ARG);
    minimal_token(&t);
    t.endpoint[0] = '\0';
    assert_int_equal(scep_token_sign(key, sizeof(key), &t, tok, sizeof(tok)), SCEP_E_INVALID_ARG);
    minimal_token(&t);
    memset(t.endpoint, 'e', sizeof(t.endpoint)); /* not NUL-terminated */
    assert_int_equal(scep_token_sign(key, sizeof(key), &t, tok, sizeof(tok)), SCEP_E_INVALID_ARG);
    minimal_token(&t);
    t.expires = 0;
    assert_int_equal(scep_token_sign(key, sizeof(key), &t, tok, sizeof(tok)), SCEP_E_INVALID_ARG);
    minimal_token(&t);
    t.nsans = SCEP_TOKEN_MAX_SANS + 1;
    assert_int_equal(scep_token_sign(key, sizeof(key), &t, tok, sizeof(tok)), SCEP_E_INVALID_ARG);
    minimal_token(&t);
    strcpy(t.sans[0], "otherName:x");
    t.nsans = 1;
    assert_int_equal(scep_token_sign(key, sizeof(key), &t, tok, sizeof(tok)), SCEP_E_INVALID_ARG);
    minimal_token(&t);
    strcpy(t.sid, "S-1-5");
    assert_int_equal(scep_token_sign(key, sizeof(key), &t, tok, sizeof(tok)), SCEP_E_INVALID_ARG);
    minimal_token(&t);
    strcpy(t.subject, "CN=\xff");
    assert_int_equal(scep_token_sign(key, sizeof(key), &t, tok, sizeof(tok)), SCEP_E_INVALID_ARG);
    minimal_token(&t);
    strcpy(t.device, "a\tb");
    assert_int_equal(scep_token_sign(key, sizeof(key), &t, tok, sizeof(tok)), SCEP_E_INVALID_ARG);

    /* Does not fit the caller's buffer, or SCEP_TOKEN_MAX. */
    minimal_token(&t);
    assert_int_equal(scep_token_sign(key, sizeof(key), &t, small, sizeof(small)),
                     SCEP_E_INVALID_ARG);
    assert_string_equal(small, "");
    assert_int_equal(scep_token_sign(key, sizeof(key), &t, tok, 0), SCEP_E_INVALID_ARG);
    assert_int_equal(scep_token_sign(key, sizeof(key), &t, NULL, 100), SCEP_E_INVALID_ARG);
    full_token(&t);
    for (i = 0; i < SCEP_TOKEN_MAX_SANS; i++)
        snprintf(t.sans[i], sizeof(t.sans[i]), "DNS:%0200zu", i);
    t.nsans = SCEP_TOKEN_MAX_SANS;
    assert_int_equal(scep_token_sign(key, sizeof(key), &t, tok, sizeof(tok)), SCEP_E_INVALID_ARG);
    {
        /* Exactly as long as fits: the buffer may be strlen + 1. */
        char exact[SCEP_TOKEN_MAX + 1];
        size_t n;
        minimal_token(&t);
        sign_ok(&t, exact, sizeof(exact));
        n = strlen(exact);
        assert_int_equal(scep_token_sign(key, sizeof(key), &t, tok, n + 1), SCEP_OK);
        assert_string_equal(tok, exact);
        assert_int_equal(scep_token_sign(key, sizeof(key), &t, tok, n), SCEP_E_INVALID_ARG);
    }
}

static void
test_token_nonce_fresh(void **state)
{
    struct scep_token a, b;
    char tok[SCEP_TOKEN_MAX + 1];

    (void)state;
    minimal_token(&a);
    minimal_token(&b);
    assert_int_equal(scep_token_nonce(&a), SCEP_OK);
    assert_int_equal(scep_token_nonce(&b), SCEP_OK);
    assert_int_equal(strlen(a.nonce), 22);
    assert_string_not_equal(a.nonce, b.nonce);
    sign_ok(&a, tok, sizeof(tok));
    assert_int_equal(verify(tok), SCEP_OK);
}

static void
test_token_is(void **state)
{
    (void)state;
    assert_true(scep_token_is("scep1.", 6));
    assert_true(scep_token_is("scep1.abc.def", 13));
    assert_false(scep_token_is("scep1.", 5));
    assert_false(scep_token_is("scep1", 5));
    assert_false(scep_token_is("scep2.abc", 9));
    assert_false(scep_token_is("SCEP1.abc", 9));
    assert_false(scep_token_is(TEST_CHALLENGE, strlen(TEST_CHALLENGE)));
    assert_false(scep_token_is("", 0));
    assert_false(scep_token_is(NULL, 0));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_token_sign_verify_roundtrip_all_fields),
        cmocka_unit_test(test_token_sign_verify_roundtrip_minimal),
        cmocka_unit_test(test_token_verify_noncanonical_json_accepted),
        cmocka_unit_test(test_token_verify_tampered),
        cmocka_unit_test(test_token_verify_other_key),
        cmocka_unit_test(test_token_verify_truncated),
        cmocka_unit_test(test_token_verify_parts),
        cmocka_unit_test(test_token_verify_wrong_prefix),
        cmocka_unit_test(test_token_verify_noncanonical_base64),
        cmocka_unit_test(test_token_verify_not_json),
        cmocka_unit_test(test_token_verify_members),
        cmocka_unit_test(test_token_verify_types),
        cmocka_unit_test(test_token_verify_oversized),
        cmocka_unit_test(test_token_verify_nonce),
        cmocka_unit_test(test_token_verify_sid),
        cmocka_unit_test(test_token_verify_expiry),
        cmocka_unit_test(test_token_key_length),
        cmocka_unit_test(test_token_sign_rejects),
        cmocka_unit_test(test_token_nonce_fresh),
        cmocka_unit_test(test_token_is),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
