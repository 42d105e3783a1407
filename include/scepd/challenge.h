/*
 * challenge.h - challenge passwords at rest and at check time.
 *
 * A challenge is never stored: only HMAC-SHA256 under the installation's
 * secret (DIR/secret.key), so a copy of the database alone does not reveal
 * it (RFC 8894 §7.3).  Checks compare in constant time.
 */
#ifndef SCEPD_CHALLENGE_H
#define SCEPD_CHALLENGE_H

#include <stddef.h>

#include "scepd/err.h"

#define SCEP_SECRET_LEN 32

enum scep_err scep_challenge_hash(const unsigned char *secret, size_t secret_len, const char *chal,
                                  size_t chal_len, unsigned char out[32]) SCEP_WUR;

/* SCEP_OK when chal hashes to expected, SCEP_E_CHALLENGE otherwise. */
enum scep_err scep_challenge_check(const unsigned char *secret, size_t secret_len, const char *chal,
                                   size_t chal_len, const unsigned char expected[32]) SCEP_WUR;

#endif
