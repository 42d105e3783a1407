/*
 * query.h - the SCEP query string: operation= and message= (RFC 8894 §4.1),
 * with the encodings real clients send (digest §6 item 3):
 *   - %XX percent escapes are decoded; '+' is kept as '+' (Apple sends raw
 *     '+' and '/'; a form decoder would turn '+' into space);
 *   - CR, LF and TAB are dropped (sscep and strongSwan wrap base64 with %0A);
 *   - a space is taken for a '+' that some proxy form-decoded;
 *   - the URL-safe alphabet ('-', '_') and missing '=' padding are accepted.
 * Anything else is SCEP_E_BAD_BASE64.
 */
#ifndef SCEPD_QUERY_H
#define SCEPD_QUERY_H

#include <stddef.h>

#include "scepd/err.h"

/*
 * Find the first "name=value" in a raw query string (no leading '?').
 * On success *val points into query (borrowed, NOT decoded) and *vlen is its
 * length.  SCEP_E_NO_ENTRY when absent.
 */
enum scep_err scep_query_find(const char *query, size_t qlen, const char *name, const char **val,
                              size_t *vlen) SCEP_WUR;

/*
 * Percent-decode a short value (e.g. operation) into dst (terminated).
 * '+' becomes ' ' here: operation names never contain either.  Fails with
 * SCEP_E_BAD_QUERY on a bad escape, an embedded NUL or when dst is too small.
 */
enum scep_err scep_query_unescape(const char *src, size_t srclen, char *dst,
                                  size_t dstlen) SCEP_WUR;

/*
 * Decode a GET message= value to DER bytes.  *out is malloc'ed (caller frees)
 * and never longer than cap bytes (SCEP_E_TOO_LARGE otherwise).
 */
enum scep_err scep_query_decode_message(const char *src, size_t srclen, size_t cap,
                                        unsigned char **out, size_t *outlen) SCEP_WUR;

/*
 * Strict standard base64 (RFC 4648 §4, also '-' '_', optional padding, no
 * whitespace).  *out malloc'ed; cap bounds the decoded size.
 */
enum scep_err scep_b64_decode(const char *src, size_t srclen, size_t cap, unsigned char **out,
                              size_t *outlen) SCEP_WUR;
/* Standard base64 with padding, no newlines; *out malloc'ed and terminated. */
enum scep_err scep_b64_encode(const unsigned char *src, size_t srclen, char **out) SCEP_WUR;

#endif
