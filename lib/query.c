/*
 * query.c - query-string lookup, percent decoding and base64 for GET
 * PKIOperation (see query.h for the accepted encodings and why).
 *
 * Trusts nothing: every input is attacker-controlled.  Output sizes are
 * bounded by the caller's cap before anything is allocated.
 */
#include <stdlib.h>
#include <string.h>

#include "scepd/query.h"

enum scep_err
scep_query_find(const char *query, size_t qlen, const char *name, const char **val, size_t *vlen)
{
    size_t nlen = strlen(name), i = 0;

    *val = NULL;
    *vlen = 0;
    while (i < qlen) {
        size_t start = i, end;
        while (i < qlen && query[i] != '&' && query[i] != ';')
            i++;
        end = i;
        if (end - start > nlen && memcmp(query + start, name, nlen) == 0 &&
            query[start + nlen] == '=') {
            *val = query + start + nlen + 1;
            *vlen = end - start - nlen - 1;
            return SCEP_OK;
        }
        if (end - start == nlen && memcmp(query + start, name, nlen) == 0) {
            *val = query + end;
            *vlen = 0;
            return SCEP_OK;
        }
        i++; /* skip the separator */
    }
    return SCEP_E_NO_ENTRY;
}

static int
hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

enum scep_err
scep_query_unescape(const char *src, size_t srclen, char *dst, size_t dstlen)
{
    size_t i, o = 0;

    if (dstlen == 0)
        return SCEP_E_BAD_QUERY;
    for (i = 0; i < srclen; i++) {
        int c = (unsigned char)src[i];
        if (c == '%') {
            int h, l;
            if (srclen - i < 3)
                return SCEP_E_BAD_QUERY;
            h = hexval((unsigned char)src[i + 1]);
            l = hexval((unsigned char)src[i + 2]);
            if (h < 0 || l < 0)
                return SCEP_E_BAD_QUERY;
            c = h * 16 + l;
            i += 2;
        } else if (c == '+') {
            c = ' ';
        }
        if (c == 0 || o + 1 >= dstlen)
            return SCEP_E_BAD_QUERY;
        dst[o++] = (char)c;
    }
    dst[o] = '\0';
    return SCEP_OK;
}

/* 0..63 for alphabet characters (both alphabets), -1 otherwise. */
static int
b64val(int c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

enum scep_err
scep_b64_decode(const char *src, size_t srclen, size_t cap, unsigned char **out, size_t *outlen)
{
    size_t n = srclen, i, o = 0, maxout;
    unsigned char *d;
    unsigned acc = 0;
    int bits = 0;

    *out = NULL;
    *outlen = 0;
    /* Up to two '=' at the end only. */
    if (n > 0 && src[n - 1] == '=')
        n--;
    if (n > 0 && src[n - 1] == '=')
        n--;
    if (n % 4 == 1)
        return SCEP_E_BAD_BASE64;
    if (n < srclen && srclen % 4 != 0)
        return SCEP_E_BAD_BASE64; /* padding present but wrong */
    maxout = n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0);
    if (maxout > cap)
        return SCEP_E_TOO_LARGE;
    if (maxout == 0)
        return SCEP_E_BAD_BASE64;
    d = malloc(maxout);
    if (d == NULL)
        return SCEP_E_NOMEM;
    for (i = 0; i < n; i++) {
        int v = b64val((unsigned char)src[i]);
        if (v < 0) {
            free(d);
            return SCEP_E_BAD_BASE64;
        }
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            d[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    *out = d;
    *outlen = o;
    return SCEP_OK;
}

enum scep_err
scep_query_decode_message(const char *src, size_t srclen, size_t cap, unsigned char **out,
                          size_t *outlen)
{
    char *clean;
    size_t i, o = 0;
    enum scep_err rc;

    *out = NULL;
    *outlen = 0;
    /* Base64 is 4/3 of the DER: refuse before allocating anything large. */
    if (cap > ((size_t)-1) / 8 || srclen > 4 * cap + 64)
        return SCEP_E_TOO_LARGE;
    clean = malloc(srclen + 1);
    if (clean == NULL)
        return SCEP_E_NOMEM;
    for (i = 0; i < srclen; i++) {
        int c = (unsigned char)src[i];
        if (c == '%') {
            int h, l;
            if (srclen - i < 3) {
                free(clean);
                return SCEP_E_BAD_BASE64;
            }
            h = hexval((unsigned char)src[i + 1]);
            l = hexval((unsigned char)src[i + 2]);
            if (h < 0 || l < 0) {
                free(clean);
                return SCEP_E_BAD_BASE64;
            }
            c = h * 16 + l;
            i += 2;
        }
        if (c == '\r' || c == '\n' || c == '\t')
            continue;
        if (c == ' ')
            c = '+'; /* a '+' some hop form-decoded */
        clean[o++] = (char)c;
    }
    rc = scep_b64_decode(clean, o, cap, out, outlen);
    free(clean);
    return rc;
}

enum scep_err
scep_b64_encode(const unsigned char *src, size_t srclen, char **out)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t i, o = 0;
    char *d;

    *out = NULL;
    if (srclen > ((size_t)-1) / 2)
        return SCEP_E_TOO_LARGE;
    d = malloc((srclen + 2) / 3 * 4 + 1);
    if (d == NULL)
        return SCEP_E_NOMEM;
    for (i = 0; i + 2 < srclen; i += 3) {
        unsigned v = (unsigned)src[i] << 16 | (unsigned)src[i + 1] << 8 | src[i + 2];
        d[o++] = tbl[v >> 18];
        d[o++] = tbl[(v >> 12) & 63];
        d[o++] = tbl[(v >> 6) & 63];
        d[o++] = tbl[v & 63];
    }
    if (i < srclen) {
        unsigned v = (unsigned)src[i] << 16 | (i + 1 < srclen ? (unsigned)src[i + 1] << 8 : 0);
        d[o++] = tbl[v >> 18];
        d[o++] = tbl[(v >> 12) & 63];
        d[o++] = i + 1 < srclen ? tbl[(v >> 6) & 63] : '=';
        d[o++] = '=';
    }
    d[o] = '\0';
    *out = d;
    return SCEP_OK;
}
