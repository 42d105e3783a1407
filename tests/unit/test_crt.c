/*
 * test_crt.c - RSA-CRT with a helper thread (crt.h): a wrapped key gives
 * OpenSSL's results bit for bit (PKCS#1 v1.5 signatures are deterministic,
 * so they are compared, not just verified), for signing, PKCS#1 v1.5 and
 * OAEP decryption and raw inputs at the edges; a key with a wrong CRT
 * exponent still gives the right signature (the check catches the fault);
 * many threads at once; keys with nothing to gain pass through; the
 * automatic mode measures once per key size, remembers what it found, and
 * whichever it chose, the key signs as OpenSSL does.  (Which it chooses
 * depends on the machine, so no test asserts it.)
 */
#undef OPENSSL_NO_DEPRECATED
#define OPENSSL_SUPPRESS_DEPRECATED

#include "testutil.h"

#include <pthread.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include "scepd/crt.h"

static size_t
sign(EVP_PKEY *key, const unsigned char *msg, size_t len, unsigned char *sig, size_t cap)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    size_t siglen = cap;

    assert_non_null(md);
    assert_int_equal(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key), 1);
    assert_int_equal(EVP_DigestSign(md, sig, &siglen, msg, len), 1);
    EVP_MD_CTX_free(md);
    return siglen;
}

/* EVP_PKEY_decrypt with the padding given; -1 when it fails. */
static long
decrypt(EVP_PKEY *key, int padding, const unsigned char *in, size_t inlen, unsigned char *out,
        size_t cap)
{
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(key, NULL);
    size_t outlen = cap;
    long r = -1;

    assert_non_null(c);
    assert_int_equal(EVP_PKEY_decrypt_init(c), 1);
    assert_true(EVP_PKEY_CTX_set_rsa_padding(c, padding) > 0);
    if (EVP_PKEY_decrypt(c, out, &outlen, in, inlen) == 1)
        r = (long)outlen;
    EVP_PKEY_CTX_free(c);
    return r;
}

static size_t
encrypt(EVP_PKEY *key, int padding, const unsigned char *in, size_t inlen, unsigned char *out,
        size_t cap)
{
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(key, NULL);
    size_t outlen = cap;

    assert_non_null(c);
    assert_int_equal(EVP_PKEY_encrypt_init(c), 1);
    assert_true(EVP_PKEY_CTX_set_rsa_padding(c, padding) > 0);
    assert_int_equal(EVP_PKEY_encrypt(c, out, &outlen, in, inlen), 1);
    EVP_PKEY_CTX_free(c);
    return outlen;
}

static EVP_PKEY *
wrapped(struct scep_crt_pool *p, EVP_PKEY *key)
{
    EVP_PKEY *w = NULL;

    assert_int_equal(scep_crt_wrap(p, key, &w), SCEP_OK);
    assert_non_null(w);
    assert_ptr_not_equal(w, key);
    assert_int_equal(EVP_PKEY_eq(w, key), 1);
    return w;
}

static void
test_crt_sign_equal(void **state)
{
    struct scep_crt_pool *p = scep_crt_pool_new(1, SCEP_CRT_SPLIT);
    unsigned long split, alone;
    int i, m;

    (void)state;
    assert_non_null(p);
    for (i = 0; i < 3; i++) {
        EVP_PKEY *w = wrapped(p, test_key(i));
        for (m = 0; m < 8; m++) {
            unsigned char msg[64], a[512], b[512];
            size_t la, lb;
            assert_int_equal(RAND_bytes(msg, sizeof(msg)), 1);
            la = sign(test_key(i), msg, (size_t)m * 8, a, sizeof(a));
            lb = sign(w, msg, (size_t)m * 8, b, sizeof(b));
            assert_int_equal(la, lb);
            assert_memory_equal(a, b, la);
        }
        EVP_PKEY_free(w);
    }
    scep_crt_pool_counts(p, &split, &alone);
    /* one thread, one operation at a time: every one took the parallel path */
    assert_int_equal(split, 3 * 8);
    assert_int_equal(alone, 0);
    scep_crt_pool_free(p);
}

static void
test_crt_decrypt_equal(void **state)
{
    struct scep_crt_pool *p = scep_crt_pool_new(1, SCEP_CRT_SPLIT);
    EVP_PKEY *w;
    static const int pads[] = {RSA_PKCS1_PADDING, RSA_PKCS1_OAEP_PADDING};
    size_t i;

    (void)state;
    assert_non_null(p);
    w = wrapped(p, test_key(3));
    for (i = 0; i < 2; i++) {
        unsigned char key[32], ct[512], a[512], b[512];
        size_t ctlen;
        long la, lb;
        int n;
        for (n = 0; n < 4; n++) {
            assert_int_equal(RAND_bytes(key, sizeof(key)), 1);
            ctlen = encrypt(test_key(3), pads[i], key, sizeof(key), ct, sizeof(ct));
            la = decrypt(test_key(3), pads[i], ct, ctlen, a, sizeof(a));
            lb = decrypt(w, pads[i], ct, ctlen, b, sizeof(b));
            assert_int_equal(la, (long)sizeof(key));
            assert_int_equal(lb, la);
            assert_memory_equal(b, key, sizeof(key));
            /* a corrupted ciphertext fails the padding check with either key */
            ct[ctlen / 2] ^= 0x5a;
            la = decrypt(test_key(3), pads[i], ct, ctlen, a, sizeof(a));
            lb = decrypt(w, pads[i], ct, ctlen, b, sizeof(b));
            assert_int_equal(la, -1);
            assert_int_equal(lb, -1);
        }
    }
    EVP_PKEY_free(w);
    scep_crt_pool_free(p);
}

/* Raw private operations (no padding) on inputs at the edges: 0, 1, 2, n-1, random. */
static void
test_crt_raw_edge_inputs(void **state)
{
    struct scep_crt_pool *p = scep_crt_pool_new(1, SCEP_CRT_SPLIT);
    EVP_PKEY *w;
    const RSA *rsa = EVP_PKEY_get0_RSA(test_key(4));
    const BIGNUM *n = NULL;
    BIGNUM *x = BN_new();
    int i;

    (void)state;
    assert_non_null(p);
    assert_non_null(x);
    RSA_get0_key(rsa, &n, NULL, NULL);
    w = wrapped(p, test_key(4));
    for (i = 0; i < 12; i++) {
        unsigned char in[256], a[512], b[512];
        long la, lb;
        if (i < 3)
            assert_int_equal(BN_set_word(x, (BN_ULONG)i), 1);
        else if (i == 3) {
            assert_non_null(BN_copy(x, n));
            assert_int_equal(BN_sub_word(x, 1), 1);
        } else
            assert_int_equal(BN_rand_range(x, n), 1);
        assert_int_equal(BN_bn2binpad(x, in, sizeof(in)), (int)sizeof(in));
        la = decrypt(test_key(4), RSA_NO_PADDING, in, sizeof(in), a, sizeof(a));
        lb = decrypt(w, RSA_NO_PADDING, in, sizeof(in), b, sizeof(b));
        assert_int_equal(la, 256);
        assert_int_equal(lb, la);
        assert_memory_equal(a, b, 256);
    }
    /* n itself is out of range for both */
    {
        unsigned char in[256], a[512], b[512];
        assert_int_equal(BN_bn2binpad(n, in, sizeof(in)), (int)sizeof(in));
        assert_int_equal(decrypt(test_key(4), RSA_NO_PADDING, in, sizeof(in), a, sizeof(a)), -1);
        assert_int_equal(decrypt(w, RSA_NO_PADDING, in, sizeof(in), b, sizeof(b)), -1);
    }
    BN_free(x);
    EVP_PKEY_free(w);
    scep_crt_pool_free(p);
}

/*
 * A key whose dmq1 is wrong (a fault in memory, or a bad key file): the
 * parallel result fails the check against the public key and is not
 * used; OpenSSL's own code then finds its CRT result wrong too and
 * computes without CRT.  The signature is the right one.
 */
static void
test_crt_fault_is_checked(void **state)
{
    struct scep_crt_pool *p = scep_crt_pool_new(1, SCEP_CRT_SPLIT);
    RSA *bad = RSAPrivateKey_dup(EVP_PKEY_get0_RSA(test_key(5)));
    const BIGNUM *dmp1, *dmq1, *iqmp;
    BIGNUM *d1, *d2, *ip;
    EVP_PKEY *badkey = EVP_PKEY_new(), *w;
    unsigned char msg[32] = "fault", a[512], b[512];
    unsigned long split, alone;
    size_t la, lb;

    (void)state;
    assert_non_null(p);
    assert_non_null(bad);
    assert_non_null(badkey);
    RSA_get0_crt_params(bad, &dmp1, &dmq1, &iqmp);
    d1 = BN_dup(dmp1);
    d2 = BN_dup(dmq1);
    ip = BN_dup(iqmp);
    assert_int_equal(BN_add_word(d2, 2), 1); /* the fault */
    assert_int_equal(RSA_set0_crt_params(bad, d1, d2, ip), 1);
    assert_int_equal(EVP_PKEY_assign_RSA(badkey, bad), 1);
    w = wrapped(p, badkey);
    la = sign(test_key(5), msg, sizeof(msg), a, sizeof(a));
    lb = sign(w, msg, sizeof(msg), b, sizeof(b));
    assert_int_equal(la, lb);
    assert_memory_equal(a, b, la);
    scep_crt_pool_counts(p, &split, &alone);
    assert_int_equal(split, 0);
    assert_int_equal(alone, 1); /* the parallel result was refused and recomputed */
    EVP_PKEY_free(w);
    EVP_PKEY_free(badkey);
    scep_crt_pool_free(p);
}

struct conc {
    EVP_PKEY *key;
    const unsigned char *expect;
    size_t explen;
    int bad;
};

static void *
conc_thread(void *arg)
{
    struct conc *c = arg;
    unsigned char msg[16] = "concurrent", sig[512];
    int i;

    for (i = 0; i < 40; i++) {
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        size_t len = sizeof(sig);
        if (md == NULL || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, c->key) != 1 ||
            EVP_DigestSign(md, sig, &len, msg, sizeof(msg)) != 1 || len != c->explen ||
            memcmp(sig, c->expect, len) != 0)
            c->bad++;
        EVP_MD_CTX_free(md);
    }
    return NULL;
}

/* Four threads on one key with one helper: some operations split, others run alone. */
static void
test_crt_concurrent(void **state)
{
    struct scep_crt_pool *p = scep_crt_pool_new(1, SCEP_CRT_SPLIT);
    struct conc c[4];
    pthread_t t[4];
    unsigned char msg[16] = "concurrent", expect[512];
    unsigned long split, alone;
    size_t explen;
    EVP_PKEY *w;
    int i;

    (void)state;
    assert_non_null(p);
    w = wrapped(p, test_key(6));
    explen = sign(test_key(6), msg, sizeof(msg), expect, sizeof(expect));
    for (i = 0; i < 4; i++) {
        c[i].key = w;
        c[i].expect = expect;
        c[i].explen = explen;
        c[i].bad = 0;
        assert_int_equal(pthread_create(&t[i], NULL, conc_thread, &c[i]), 0);
    }
    for (i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(c[i].bad, 0);
    }
    scep_crt_pool_counts(p, &split, &alone);
    assert_int_equal(split + alone, 4 * 40);
    assert_true(alone > 0); /* two cores' worth at most: the others ran alone */
    EVP_PKEY_free(w);
    scep_crt_pool_free(p);
}

/* Nothing to gain: the same key back, with a reference of its own. */
static void
test_crt_wrap_passthrough(void **state)
{
    struct scep_crt_pool *p = scep_crt_pool_new(1, SCEP_CRT_SPLIT),
                         *none = scep_crt_pool_new(0, SCEP_CRT_SPLIT);
    EVP_PKEY *ec = EVP_EC_gen("P-256"), *out = NULL;

    (void)state;
    assert_non_null(p);
    assert_non_null(none);
    assert_non_null(ec);
    assert_int_equal(scep_crt_wrap(p, ec, &out), SCEP_OK);
    assert_ptr_equal(out, ec);
    EVP_PKEY_free(out);
    assert_int_equal(scep_crt_wrap(none, test_key(0), &out), SCEP_OK);
    assert_ptr_equal(out, test_key(0));
    EVP_PKEY_free(out);
    assert_int_equal(scep_crt_wrap(NULL, test_key(0), &out), SCEP_OK);
    assert_ptr_equal(out, test_key(0));
    EVP_PKEY_free(out);
    assert_int_equal(scep_crt_wrap(p, NULL, &out), SCEP_E_INVALID_ARG);
    assert_null(out);
    EVP_PKEY_free(ec);
    scep_crt_pool_free(none);
    scep_crt_pool_free(p);
}

/* The wrapped key outlives the original: it holds its own copy. */
static void
test_crt_wrap_outlives_original(void **state)
{
    struct scep_crt_pool *p = scep_crt_pool_new(1, SCEP_CRT_SPLIT);
    EVP_PKEY *orig = EVP_PKEY_dup(test_key(7)), *w;
    unsigned char msg[8] = "own", a[512], b[512];
    size_t la, lb;

    (void)state;
    assert_non_null(p);
    assert_non_null(orig);
    w = wrapped(p, orig);
    EVP_PKEY_free(orig);
    la = sign(test_key(7), msg, sizeof(msg), a, sizeof(a));
    lb = sign(w, msg, sizeof(msg), b, sizeof(b));
    assert_int_equal(la, lb);
    assert_memory_equal(a, b, la);
    EVP_PKEY_free(w);
    scep_crt_pool_free(p);
}

/* The key a wrap gave for key signs exactly as key does. */
static void
assert_signs_like(EVP_PKEY *w, EVP_PKEY *key)
{
    unsigned char msg[32] = "same", a[1024], b[1024];
    size_t la = sign(key, msg, sizeof(msg), a, sizeof(a));
    size_t lb = sign(w, msg, sizeof(msg), b, sizeof(b));

    assert_int_equal(la, lb);
    assert_memory_equal(a, b, la);
}

/*
 * SCEP_CRT_AUTO: the first RSA-2048 key is measured, and the choice is
 * recorded with both figures; a second key of the size is wrapped (or not)
 * the same way without a new entry; another size is measured on its own;
 * an EC key is never measured.  Every key signs as OpenSSL does.
 */
static void
test_crt_auto_measures_once_per_size(void **state)
{
    struct scep_crt_pool *p = scep_crt_pool_new(1, SCEP_CRT_AUTO);
    struct scep_crt_choice c, c2, c3;
    EVP_PKEY *w1 = NULL, *w2 = NULL, *w3 = NULL, *k3 = NULL, *ec = EVP_EC_gen("P-256"), *we = NULL;
    unsigned long split, alone;

    (void)state;
    assert_non_null(p);
    assert_non_null(ec);
    assert_int_equal(scep_crt_pool_choice(p, 2048, &c), 0); /* nothing measured yet */
    assert_int_equal(scep_crt_wrap(p, test_key(0), &w1), SCEP_OK);
    assert_int_equal(scep_crt_pool_choice(p, 2048, &c), 1);
    assert_int_equal(c.bits, 2048);
    assert_int_equal(c.keys, 1);
    assert_true(c.openssl_ms > 0);
    assert_true(c.split_ms > 0); /* the helper was idle: both were measured */
    assert_int_equal(c.split, c.split_ms * 1.10 < c.openssl_ms);
    assert_int_equal(c.split, w1 != test_key(0)); /* wrapped exactly when split won */
    assert_int_equal(EVP_PKEY_eq(w1, test_key(0)), 1);
    assert_signs_like(w1, test_key(0));

    assert_int_equal(scep_crt_wrap(p, test_key(1), &w2), SCEP_OK);
    assert_int_equal(c.split, w2 != test_key(1)); /* the same choice, not measured again */
    assert_int_equal(scep_crt_pool_choice(p, 2048, &c2), 1);
    assert_int_equal(c2.keys, 2);
    c2.keys = 1;
    assert_memory_equal(&c, &c2, sizeof(c)); /* the first measurement's figures */
    assert_signs_like(w2, test_key(1));

    assert_non_null(k3 = EVP_RSA_gen(1024)); /* another size (scepd itself refuses 1024) */
    assert_int_equal(scep_crt_pool_choice(p, 1024, &c3), 0);
    assert_int_equal(scep_crt_wrap(p, k3, &w3), SCEP_OK);
    assert_int_equal(scep_crt_pool_choice(p, 1024, &c3), 1);
    assert_int_equal(c3.bits, 1024);
    assert_int_equal(c3.split, w3 != k3);
    assert_signs_like(w3, k3);

    assert_int_equal(scep_crt_wrap(p, ec, &we), SCEP_OK);
    assert_ptr_equal(we, ec);
    assert_int_equal(scep_crt_pool_choice(p, 256, &c3), 0);

    /* the measurements are not counted as the keys' operations */
    scep_crt_pool_counts(p, &split, &alone);
    assert_int_equal(split + alone, (unsigned long)(c.split ? 2 : 0) + (c3.split ? 1 : 0));
    EVP_PKEY_free(w1);
    EVP_PKEY_free(w2);
    EVP_PKEY_free(w3);
    EVP_PKEY_free(k3);
    EVP_PKEY_free(we);
    EVP_PKEY_free(ec);
    scep_crt_pool_free(p);
}

/* SCEP_CRT_OFF wraps nothing and measures nothing. */
static void
test_crt_off_wraps_nothing(void **state)
{
    struct scep_crt_pool *p = scep_crt_pool_new(1, SCEP_CRT_OFF);
    struct scep_crt_choice c;
    EVP_PKEY *out = NULL;

    (void)state;
    assert_non_null(p);
    assert_int_equal(scep_crt_wrap(p, test_key(2), &out), SCEP_OK);
    assert_ptr_equal(out, test_key(2));
    assert_int_equal(scep_crt_pool_choice(p, 2048, &c), 0);
    EVP_PKEY_free(out);
    scep_crt_pool_free(p);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crt_sign_equal),
        cmocka_unit_test(test_crt_decrypt_equal),
        cmocka_unit_test(test_crt_raw_edge_inputs),
        cmocka_unit_test(test_crt_fault_is_checked),
        cmocka_unit_test(test_crt_concurrent),
        cmocka_unit_test(test_crt_wrap_passthrough),
        cmocka_unit_test(test_crt_wrap_outlives_original),
        cmocka_unit_test(test_crt_auto_measures_once_per_size),
        cmocka_unit_test(test_crt_off_wraps_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
