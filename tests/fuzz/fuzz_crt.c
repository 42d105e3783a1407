/*
 * fuzz_crt.c - libFuzzer target for the parallel RSA-CRT (crt.h): a key
 * wrapped by scep_crt_wrap must give exactly what OpenSSL gives with the
 * key as it is, for whatever it is asked.
 *
 * The first input byte picks the key (RA or "CA" test key, bit 0) and the
 * operation (byte >> 1 % 3), the rest is the data:
 *   0  raw private operation (no padding) on the data as a number, left-
 *      padded to the modulus size (inputs >= n must fail for both);
 *   1  PKCS#1 v1.5 decryption of the data as a ciphertext;
 *   2  OAEP decryption of the data as a ciphertext;
 * and, every time, a SHA-256 PKCS#1 v1.5 signature over the data (which
 * is deterministic, so the two signatures are compared byte for byte).
 * Properties (abort() on failure): same success or failure, same output
 * length, same bytes.  Every other call runs with a second thread
 * signing on the same wrapped key, so the helper is sometimes busy and
 * the operation runs alone or takes its half back.
 *
 * Seeds (corpus/fuzz_crt/): one per operation, with data below, at and
 * above the modulus.  Test keys only.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "fuzzutil.h"
#include "scepd/crt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct scep_crt_pool *pool;
static EVP_PKEY *plain[2], *wrapped[2];

static void
check(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz_crt: %s\n", what);
        abort();
    }
}

static void
setup(void)
{
    const struct fuzz_keys *k = fuzz_init();
    int i;

    plain[0] = k->ra_key;
    plain[1] = k->ca_key;
    check((pool = scep_crt_pool_new(1, SCEP_CRT_SPLIT)) != NULL, "pool");
    for (i = 0; i < 2; i++) {
        check(scep_crt_wrap(pool, plain[i], &wrapped[i]) == SCEP_OK, "wrap");
        check(wrapped[i] != plain[i], "the test keys are RSA with CRT parameters");
    }
}

/* EVP_PKEY_decrypt with padding; -1 on failure. */
static long
decrypt(EVP_PKEY *key, int padding, const unsigned char *in, size_t inlen, unsigned char *out,
        size_t cap)
{
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(key, NULL);
    size_t outlen = cap;
    long r = -1;

    check(c != NULL, "ctx");
    if (EVP_PKEY_decrypt_init(c) == 1 && EVP_PKEY_CTX_set_rsa_padding(c, padding) > 0 &&
        EVP_PKEY_decrypt(c, out, &outlen, in, inlen) == 1)
        r = (long)outlen;
    EVP_PKEY_CTX_free(c);
    return r;
}

static long
sign(EVP_PKEY *key, const unsigned char *msg, size_t len, unsigned char *sig, size_t cap)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    size_t siglen = cap;
    long r = -1;

    check(md != NULL, "md");
    if (EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) == 1 &&
        EVP_DigestSign(md, sig, &siglen, msg, len) == 1)
        r = (long)siglen;
    EVP_MD_CTX_free(md);
    return r;
}

struct other {
    EVP_PKEY *key;
    int ok;
};

static void *
other_main(void *arg)
{
    struct other *o = arg;
    unsigned char sig[1024];
    int i;

    for (i = 0; i < 2; i++)
        o->ok &= sign(o->key, (const unsigned char *)"other", 5, sig, sizeof(sig)) > 0;
    return NULL;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static unsigned long calls;
    unsigned char in[1024], a[1024], b[1024];
    EVP_PKEY *pk, *wk;
    size_t nlen, len;
    long la, lb;
    int op, which;
    struct other o;
    pthread_t t;
    int busy;

    if (pool == NULL)
        setup();
    if (size < 1)
        return 0;
    which = data[0] & 1;
    op = (data[0] >> 1) % 3;
    data++;
    size--;
    pk = plain[which];
    wk = wrapped[which];
    nlen = (size_t)EVP_PKEY_get_size(pk);
    len = size > nlen ? nlen : size;

    busy = (calls++ & 1) != 0;
    o.key = wk;
    o.ok = 1;
    if (busy)
        check(pthread_create(&t, NULL, other_main, &o) == 0, "thread");

    if (op == 0) {
        memset(in, 0, nlen);
        memcpy(in + nlen - len, data, len);
        la = decrypt(pk, RSA_NO_PADDING, in, nlen, a, sizeof(a));
        lb = decrypt(wk, RSA_NO_PADDING, in, nlen, b, sizeof(b));
    } else {
        int pad = op == 1 ? RSA_PKCS1_PADDING : RSA_PKCS1_OAEP_PADDING;
        la = decrypt(pk, pad, data, size, a, sizeof(a));
        lb = decrypt(wk, pad, data, size, b, sizeof(b));
    }
    check(la == lb, "decrypt: success or length differs");
    check(la <= 0 || memcmp(a, b, (size_t)la) == 0, "decrypt: output differs");

    la = sign(pk, data, size, a, sizeof(a));
    lb = sign(wk, data, size, b, sizeof(b));
    check(la > 0 && la == lb, "sign: failed or length differs");
    check(memcmp(a, b, (size_t)la) == 0, "sign: signature differs");

    if (busy) {
        pthread_join(t, NULL);
        check(o.ok, "the concurrent signer failed");
    }
    return 0;
}
