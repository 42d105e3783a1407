/*
 * challenge.c - keyed hashes of challenge passwords (see challenge.h).
 * Must never: log or keep a challenge; compare with memcmp.
 */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "scepd/challenge.h"

enum scep_err
scep_challenge_hash(const unsigned char *secret, size_t secret_len, const char *chal,
                    size_t chal_len, unsigned char out[32])
{
    unsigned int n = 0;

    if (HMAC(EVP_sha256(), secret, (int)secret_len, (const unsigned char *)chal, chal_len, out,
             &n) == NULL ||
        n != 32)
        return SCEP_E_INTERNAL;
    return SCEP_OK;
}

enum scep_err
scep_challenge_check(const unsigned char *secret, size_t secret_len, const char *chal,
                     size_t chal_len, const unsigned char expected[32])
{
    unsigned char got[32];
    enum scep_err rc;

    if ((rc = scep_challenge_hash(secret, secret_len, chal, chal_len, got)) != SCEP_OK)
        return rc;
    rc = CRYPTO_memcmp(got, expected, sizeof(got)) == 0 ? SCEP_OK : SCEP_E_CHALLENGE;
    OPENSSL_cleanse(got, sizeof(got));
    return rc;
}
