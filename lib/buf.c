/*
 * buf.c - capped byte buffer (see buf.h).
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/buffer.h>
#include <openssl/crypto.h>

#include "scepd/buf.h"

struct scep_buf {
    unsigned char *d;
    size_t len, alloc, cap;
};

struct scep_buf *
scep_buf_new(size_t cap)
{
    struct scep_buf *b = calloc(1, sizeof(*b));

    if (b != NULL)
        b->cap = cap;
    return b;
}

void
scep_buf_free(struct scep_buf *b)
{
    if (b == NULL)
        return;
    if (b->d != NULL) {
        OPENSSL_cleanse(b->d, b->alloc);
        free(b->d);
    }
    free(b);
}

enum scep_err
scep_buf_put(struct scep_buf *b, const void *p, size_t n)
{
    size_t want;
    unsigned char *nd;

    if (n == 0)
        return SCEP_OK;
    if (n > b->cap || b->len > b->cap - n)
        return SCEP_E_TOO_LARGE;
    want = b->len + n;
    if (want > b->alloc) {
        size_t na = b->alloc ? b->alloc : 256;
        while (na < want)
            na = na > b->cap / 2 ? b->cap : na * 2;
        /* Grow by copying so the old contents can be wiped. */
        nd = malloc(na);
        if (nd == NULL)
            return SCEP_E_NOMEM;
        if (b->d != NULL) {
            memcpy(nd, b->d, b->len);
            OPENSSL_cleanse(b->d, b->alloc);
            free(b->d);
        }
        b->d = nd;
        b->alloc = na;
    }
    memcpy(b->d + b->len, p, n);
    b->len += n;
    return SCEP_OK;
}

const unsigned char *
scep_buf_ptr(const struct scep_buf *b)
{
    return b->d;
}

size_t
scep_buf_len(const struct scep_buf *b)
{
    return b->len;
}

void
scep_buf_reset(struct scep_buf *b)
{
    if (b->d != NULL)
        OPENSSL_cleanse(b->d, b->alloc);
    b->len = 0;
}

enum scep_err
scep_bio_copy(BIO *b, unsigned char **out, size_t *outlen)
{
    BUF_MEM *bm = NULL;

    *out = NULL;
    *outlen = 0;
    BIO_get_mem_ptr(b, &bm);
    if (bm == NULL || bm->length == 0)
        return SCEP_E_INTERNAL;
    if ((*out = malloc(bm->length)) == NULL)
        return SCEP_E_NOMEM;
    memcpy(*out, bm->data, bm->length);
    *outlen = bm->length;
    return SCEP_OK;
}

void
scep_hex(const unsigned char *d, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    size_t i;

    for (i = 0; i < n; i++) {
        out[2 * i] = digits[d[i] >> 4];
        out[2 * i + 1] = digits[d[i] & 15];
    }
    out[2 * n] = '\0';
}
