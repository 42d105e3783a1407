/*
 * token.c - signed enrollment tokens (see token.h for the format).
 *
 * Trusts nothing in a token until its MAC verifies: the MAC is checked over
 * the exact bytes "scep1." + payload-base64 before the payload is decoded
 * or parsed, and compared with CRYPTO_memcmp.  After that the payload is
 * still read like untrusted input (a minter may have a bug): every member
 * is typed, bounded and known, or the token is refused.
 *
 * Must never: log a token or a key; accept a token this file's signer would
 * not produce the same fields for (sign and verify share one validator).
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "scepd/token.h"

#define PREFIX_LEN (sizeof(SCEP_TOKEN_PREFIX) - 1)
#define MAC_LEN 32
#define MAC_B64_LEN 44 /* 4 * ceil(32 / 3), one '=' */
#define KEY_MIN 16
#define NONCE_MIN 16
#define NONCE_MAX 64
#define NONCE_RAW 16 /* 128 bits -> 22 base64 characters */
/* Largest payload a token within SCEP_TOKEN_MAX can carry, decoded. */
#define PAYLOAD_MAX ((SCEP_TOKEN_MAX - PREFIX_LEN - 1 - MAC_B64_LEN) / 4 * 3)

/* The SAN types a token may allow, as scep_issue_check_names spells them. */
static const char *const san_types[] = {"DNS:", "email:", "IP:", "URI:"};

/* ---- field rules, shared by sign and verify ---- */

/* s is NUL-terminated within size bytes; its length in *len. */
static int
str_in(const char *s, size_t size, size_t *len)
{
    const char *nul = memchr(s, '\0', size);

    if (nul == NULL)
        return 0;
    *len = (size_t)(nul - s);
    return 1;
}

/*
 * Well-formed UTF-8 (no overlong forms, surrogates or code points past
 * U+10FFFF, the rules jansson applies) without control characters: no
 * field has a use for them, and a subject or SAN with a newline would
 * reach logs and DNs.
 */
static int
text_ok(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;

    while (i < len) {
        unsigned c = p[i], cp, n, k;

        if (c < 0x20 || c == 0x7f)
            return 0;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return 0;
        }
        if (len - i <= n)
            return 0;
        for (k = 1; k <= n; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return 0;
            cp = cp << 6 | (p[i + k] & 0x3f);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        if (cp >= 0x80 && cp < 0xa0)
            return 0; /* C1 controls */
        i += n + 1;
    }
    return 1;
}

static int
nonce_ok(const char *s, size_t len)
{
    size_t i;

    if (len < NONCE_MIN || len > NONCE_MAX)
        return 0;
    for (i = 0; i < len; i++) {
        int c = (unsigned char)s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '+' || c == '/' || c == '=' || c == '-' || c == '_'))
            return 0;
    }
    return 1;
}

/* S-1-<digits>(-<digits>)+ : revision 1, an authority, one or more sub-authorities. */
static int
sid_ok(const char *s, size_t len)
{
    size_t i, groups = 0, digits = 0;

    if (len < 4 || memcmp(s, "S-1", 3) != 0)
        return 0;
    for (i = 3; i < len; i++) {
        if (s[i] == '-') {
            if (i > 3 && digits == 0)
                return 0;
            groups++;
            digits = 0;
        } else if (s[i] >= '0' && s[i] <= '9') {
            if (i == 3)
                return 0;
            digits++;
        } else {
            return 0;
        }
    }
    return groups >= 2 && digits > 0;
}

static int
san_ok(const char *s, size_t len)
{
    size_t i, tl;

    for (i = 0; i < sizeof(san_types) / sizeof(san_types[0]); i++) {
        tl = strlen(san_types[i]);
        if (len > tl && memcmp(s, san_types[i], tl) == 0)
            return text_ok(s, len);
    }
    return 0;
}

/* An optional text member: "" (absent) or well-formed text. */
static int
opt_ok(const char *s, size_t size)
{
    size_t len;

    return str_in(s, size, &len) && text_ok(s, len);
}

/* Everything a token may carry, whether about to be signed or just parsed. */
static int
fields_ok(const struct scep_token *t)
{
    size_t len, i;

    if (!str_in(t->endpoint, sizeof(t->endpoint), &len) || len == 0 || !text_ok(t->endpoint, len))
        return 0;
    if (t->expires <= 0)
        return 0;
    if (!str_in(t->nonce, sizeof(t->nonce), &len) || !nonce_ok(t->nonce, len))
        return 0;
    if (!opt_ok(t->subject, sizeof(t->subject)) || !opt_ok(t->eku, sizeof(t->eku)) ||
        !opt_ok(t->device, sizeof(t->device)))
        return 0;
    if (!str_in(t->sid, sizeof(t->sid), &len) || (len > 0 && !sid_ok(t->sid, len)))
        return 0;
    if (t->nsans > SCEP_TOKEN_MAX_SANS)
        return 0;
    for (i = 0; i < t->nsans; i++)
        if (!str_in(t->sans[i], sizeof(t->sans[i]), &len) || !san_ok(t->sans[i], len))
            return 0;
    return 1;
}

/* ---- base64 and the MAC ---- */

/*
 * Strict standard base64 with padding into out (outsize bytes):
 * only the alphabet, '=' only as the last one or two characters, and the
 * one canonical spelling (zero padding bits), checked by encoding the
 * result again.  EVP_DecodeBlock alone would skip whitespace, accept
 * non-zero padding bits and count the padding as zero bytes.
 */
static int
b64_decode(const char *src, size_t len, unsigned char *out, size_t outsize, size_t *outlen)
{
    char again[SCEP_TOKEN_MAX + 1];
    size_t i, pad = 0;
    int n, ok;

    if (len == 0 || len % 4 != 0 || len > SCEP_TOKEN_MAX || len / 4 * 3 > outsize)
        return 0;
    if (src[len - 1] == '=')
        pad = src[len - 2] == '=' ? 2 : 1;
    for (i = 0; i < len - pad; i++) {
        int c = (unsigned char)src[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '+' || c == '/'))
            return 0;
    }
    n = EVP_DecodeBlock(out, (const unsigned char *)src, (int)len);
    if (n < 0 || (size_t)n != len / 4 * 3)
        return 0;
    *outlen = (size_t)n - pad;
    ok = EVP_EncodeBlock((unsigned char *)again, out, (int)*outlen) == (int)len &&
         memcmp(again, src, len) == 0;
    OPENSSL_cleanse(again, sizeof(again));
    return ok;
}

static int
mac(const unsigned char *key, size_t keylen, const char *msg, size_t len, unsigned char md[MAC_LEN])
{
    unsigned int n = 0;

    return HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)msg, len, md, &n) != NULL &&
           n == MAC_LEN;
}

static int
key_ok(const unsigned char *key, size_t keylen)
{
    return key != NULL && keylen >= KEY_MIN && keylen <= INT_MAX;
}

/* ---- the payload ---- */

/* A JSON string that fits dst (with its NUL) and has no NUL of its own. */
static int
get_str(const json_t *v, char *dst, size_t size)
{
    size_t len;

    if (!json_is_string(v))
        return 0;
    len = json_string_length(v);
    if (len >= size || memchr(json_string_value(v), '\0', len) != NULL)
        return 0;
    memcpy(dst, json_string_value(v), len);
    dst[len] = '\0';
    return 1;
}

/*
 * Optional members are omitted when empty; a present but empty one is
 * refused rather than read as "unrestricted" (a minter who wrote "san": []
 * may have meant "no names at all").
 */
static int
get_opt(const json_t *v, char *dst, size_t size)
{
    return get_str(v, dst, size) && dst[0] != '\0';
}

static int
get_sans(const json_t *v, struct scep_token *t)
{
    size_t i, n;

    if (!json_is_array(v))
        return 0;
    n = json_array_size(v);
    if (n == 0 || n > SCEP_TOKEN_MAX_SANS)
        return 0;
    for (i = 0; i < n; i++)
        if (!get_str(json_array_get(v, i), t->sans[i], sizeof(t->sans[i])))
            return 0;
    t->nsans = n;
    return 1;
}

/* Fill t from the payload; 0 on anything but exactly the members token.h names. */
static int
payload_read(const unsigned char *buf, size_t len, struct scep_token *t)
{
    json_error_t jerr;
    json_t *root, *v;
    const char *k;
    int ok = 0, have_ep = 0, have_exp = 0, have_nonce = 0;

    root = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL)
        return 0;
    if (!json_is_object(root))
        goto out;
    /* jansson refuses a NUL in a key ("ep\u0000x"), so strcmp sees whole keys. */
    json_object_foreach(root, k, v)
    {
        if (strcmp(k, "ep") == 0) {
            if (!get_str(v, t->endpoint, sizeof(t->endpoint)))
                goto out;
            have_ep = 1;
        } else if (strcmp(k, "exp") == 0) {
            if (!json_is_integer(v))
                goto out;
            t->expires = (int64_t)json_integer_value(v);
            have_exp = 1;
        } else if (strcmp(k, "nonce") == 0) {
            if (!get_str(v, t->nonce, sizeof(t->nonce)))
                goto out;
            have_nonce = 1;
        } else if (strcmp(k, "sub") == 0) {
            if (!get_opt(v, t->subject, sizeof(t->subject)))
                goto out;
        } else if (strcmp(k, "san") == 0) {
            if (!get_sans(v, t))
                goto out;
        } else if (strcmp(k, "eku") == 0) {
            if (!get_opt(v, t->eku, sizeof(t->eku)))
                goto out;
        } else if (strcmp(k, "dev") == 0) {
            if (!get_opt(v, t->device, sizeof(t->device)))
                goto out;
        } else if (strcmp(k, "sid") == 0) {
            if (!get_opt(v, t->sid, sizeof(t->sid)))
                goto out;
        } else {
            goto out; /* a restriction we do not understand */
        }
    }
    ok = have_ep && have_exp && have_nonce && fields_ok(t);
out:
    json_decref(root);
    return ok;
}

/* The canonical payload of t: compact, sorted keys, empty members omitted. */
static enum scep_err
payload_build(const struct scep_token *t, char **out)
{
    json_t *root = NULL, *sans = NULL;
    size_t i;
    enum scep_err rc = SCEP_E_NOMEM;

    *out = NULL;
    if ((root = json_object()) == NULL)
        goto out;
    if (json_object_set_new(root, "ep", json_string(t->endpoint)) != 0 ||
        json_object_set_new(root, "exp", json_integer((json_int_t)t->expires)) != 0 ||
        json_object_set_new(root, "nonce", json_string(t->nonce)) != 0)
        goto out;
    if (t->subject[0] != '\0' && json_object_set_new(root, "sub", json_string(t->subject)) != 0)
        goto out;
    if (t->eku[0] != '\0' && json_object_set_new(root, "eku", json_string(t->eku)) != 0)
        goto out;
    if (t->device[0] != '\0' && json_object_set_new(root, "dev", json_string(t->device)) != 0)
        goto out;
    if (t->sid[0] != '\0' && json_object_set_new(root, "sid", json_string(t->sid)) != 0)
        goto out;
    if (t->nsans > 0) {
        if ((sans = json_array()) == NULL)
            goto out;
        for (i = 0; i < t->nsans; i++)
            if (json_array_append_new(sans, json_string(t->sans[i])) != 0)
                goto out;
        if (json_object_set(root, "san", sans) != 0)
            goto out;
    }
    if ((*out = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS)) == NULL)
        goto out;
    rc = SCEP_OK;
out:
    json_decref(sans);
    json_decref(root);
    return rc;
}

/* ---- the interface ---- */

enum scep_err
scep_token_sign(const unsigned char *key, size_t keylen, const struct scep_token *t, char *out,
                size_t outlen)
{
    unsigned char md[MAC_LEN];
    char tok[SCEP_TOKEN_MAX + 1], *json = NULL;
    size_t jlen = 0, n, need;
    enum scep_err rc = SCEP_E_INVALID_ARG;

    if (out != NULL && outlen > 0)
        out[0] = '\0';
    if (!key_ok(key, keylen) || t == NULL || out == NULL || !fields_ok(t))
        return SCEP_E_INVALID_ARG;
    if ((rc = payload_build(t, &json)) != SCEP_OK)
        goto out;
    rc = SCEP_E_INVALID_ARG;
    jlen = strlen(json);
    if (jlen > PAYLOAD_MAX)
        goto out; /* too much for SCEP_TOKEN_MAX */
    n = PREFIX_LEN + (jlen + 2) / 3 * 4;
    need = n + 1 + MAC_B64_LEN;
    if (need > SCEP_TOKEN_MAX || need >= outlen)
        goto out;
    memcpy(tok, SCEP_TOKEN_PREFIX, PREFIX_LEN);
    if (EVP_EncodeBlock((unsigned char *)tok + PREFIX_LEN, (const unsigned char *)json,
                        (int)jlen) != (int)(n - PREFIX_LEN)) {
        rc = SCEP_E_INTERNAL;
        goto out;
    }
    if (!mac(key, keylen, tok, n, md)) {
        rc = SCEP_E_INTERNAL;
        goto out;
    }
    tok[n] = '.';
    if (EVP_EncodeBlock((unsigned char *)tok + n + 1, md, MAC_LEN) != MAC_B64_LEN) {
        rc = SCEP_E_INTERNAL;
        goto out;
    }
    memcpy(out, tok, need);
    out[need] = '\0';
    rc = SCEP_OK;
out:
    OPENSSL_cleanse(md, sizeof(md));
    OPENSSL_cleanse(tok, sizeof(tok));
    if (json != NULL) {
        OPENSSL_cleanse(json, jlen);
        free(json);
    }
    return rc;
}

enum scep_err
scep_token_nonce(struct scep_token *t)
{
    unsigned char raw[NONCE_RAW], enc[(NONCE_RAW + 2) / 3 * 4 + 1];
    enum scep_err rc = SCEP_E_INTERNAL;

    if (t == NULL)
        return SCEP_E_INVALID_ARG;
    if (RAND_bytes(raw, sizeof(raw)) != 1)
        goto out;
    if (EVP_EncodeBlock(enc, raw, sizeof(raw)) != (int)sizeof(enc) - 1)
        goto out;
    /* 16 bytes encode to 22 characters and "==", which say nothing. */
    memcpy(t->nonce, enc, 22);
    t->nonce[22] = '\0';
    rc = SCEP_OK;
out:
    OPENSSL_cleanse(raw, sizeof(raw));
    OPENSSL_cleanse(enc, sizeof(enc));
    return rc;
}

enum scep_err
scep_token_verify(const unsigned char *key, size_t keylen, const char *tok, size_t len, int64_t now,
                  struct scep_token *out)
{
    unsigned char got[MAC_B64_LEN / 4 * 3], want[MAC_LEN], payload[PAYLOAD_MAX];
    struct scep_token t;
    const char *dot;
    size_t plen = 0, glen = 0, bodylen;
    enum scep_err rc = SCEP_E_TOKEN;

    if (!key_ok(key, keylen) || out == NULL || (tok == NULL && len > 0))
        return SCEP_E_INVALID_ARG;
    memset(&t, 0, sizeof(t));
    /* Shape: prefix, one dot, a 44-character MAC; before any arithmetic on the parts. */
    if (len > SCEP_TOKEN_MAX || !scep_token_is(tok, len))
        return SCEP_E_TOKEN;
    dot = memchr(tok + PREFIX_LEN, '.', len - PREFIX_LEN);
    if (dot == NULL)
        return SCEP_E_TOKEN;
    bodylen = (size_t)(dot - tok);
    if (bodylen == PREFIX_LEN || len - bodylen - 1 != MAC_B64_LEN)
        return SCEP_E_TOKEN;

    /* The MAC over the exact bytes received, before the payload is touched. */
    if (!b64_decode(dot + 1, MAC_B64_LEN, got, sizeof(got), &glen) || glen != MAC_LEN)
        goto out;
    if (!mac(key, keylen, tok, bodylen, want)) {
        rc = SCEP_E_INTERNAL;
        goto out;
    }
    if (CRYPTO_memcmp(got, want, MAC_LEN) != 0)
        goto out;

    /* Authentic: now read what it says, still strictly. */
    if (!b64_decode(tok + PREFIX_LEN, bodylen - PREFIX_LEN, payload, sizeof(payload), &plen))
        goto out;
    if (!payload_read(payload, plen, &t))
        goto out;
    if (now >= t.expires) {
        rc = SCEP_E_CHALLENGE_EXPIRED;
        goto out;
    }
    *out = t;
    rc = SCEP_OK;
out:
    OPENSSL_cleanse(got, sizeof(got));
    OPENSSL_cleanse(want, sizeof(want));
    OPENSSL_cleanse(payload, sizeof(payload));
    OPENSSL_cleanse(&t, sizeof(t));
    return rc;
}

int
scep_token_is(const char *chal, size_t len)
{
    return chal != NULL && len >= PREFIX_LEN && memcmp(chal, SCEP_TOKEN_PREFIX, PREFIX_LEN) == 0;
}
