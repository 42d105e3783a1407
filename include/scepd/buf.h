/*
 * buf.h - a growable byte buffer with a hard cap fixed at creation.
 *
 * An append that would pass the cap fails with SCEP_E_TOO_LARGE and leaves
 * the buffer as it was.  Freeing wipes the contents (bodies can carry
 * encrypted challenges; decrypted ones certainly do).
 */
#ifndef SCEPD_BUF_H
#define SCEPD_BUF_H

#include <stddef.h>

#include "scepd/err.h"

struct scep_buf;

/* New empty buffer that will never hold more than cap bytes; NULL on ENOMEM. */
struct scep_buf *scep_buf_new(size_t cap);
/* Wipes and frees; NULL is fine. */
void scep_buf_free(struct scep_buf *b);
enum scep_err scep_buf_put(struct scep_buf *b, const void *p, size_t n) SCEP_WUR;
/* Borrowed pointer to the contents; valid until the next put or free. */
const unsigned char *scep_buf_ptr(const struct scep_buf *b);
size_t scep_buf_len(const struct scep_buf *b);
void scep_buf_reset(struct scep_buf *b);

/* Lower-case hex of n bytes into out (2n + 1 bytes, NUL-terminated). */
void scep_hex(const unsigned char *d, size_t n, char *out);

#include <openssl/bio.h>
/* The contents of a memory BIO in *out (malloc'ed); SCEP_E_INTERNAL when empty. */
enum scep_err scep_bio_copy(BIO *b, unsigned char **out, size_t *outlen) SCEP_WUR;

#endif
