/*
 * crt.c - RSA-CRT with the modulo-q exponentiation on an idle core (see
 * crt.h for what is replaced and what stays OpenSSL's).
 * Trusts: OpenSSL's BN arithmetic and its RSA padding and blinding; the
 * input it is given is already blinded (rsa_ossl_private_encrypt/decrypt
 * blind before they call rsa_mod_exp).
 * Must never: return a result it has not checked against the public key,
 * or leave a secret-derived intermediate unwiped.
 *
 * RSA_METHOD is deprecated in OpenSSL 3.0 but is the only hook between
 * the padding and the exponentiation; a key with its own method is
 * "foreign" to the providers and takes OpenSSL's legacy code path, which
 * performs the same operations (engine keys use it).
 */
#undef OPENSSL_NO_DEPRECATED
#define OPENSSL_SUPPRESS_DEPRECATED

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/rsa.h>

#include "scepd/crt.h"
#include "scepd/log.h"

/*
 * The measurement of SCEP_CRT_AUTO: ROUNDS alternating rounds of OPS
 * operations each way, the fastest round of each compared (the least
 * disturbed by whatever else the machine does); split must win by MARGIN.
 * About 25 ms for an RSA-2048 key, once per key size.
 */
#define MEASURE_ROUNDS 5
#define MEASURE_OPS 4
#define MEASURE_MARGIN 1.10
#define MAX_SIZES 8

enum { JOB_QUEUED, JOB_RUNNING, JOB_DONE };

/* The modulo-q half of one operation, lent to a helper. */
struct job {
    const BIGNUM *in; /* the blinded input (read only, shared) */
    const BIGNUM *q, *dmq1;
    BN_MONT_CTX *mont_q;
    BIGNUM *out; /* in^dmq1 mod q, written by whoever runs the job */
    int state;   /* pool mutex */
    int ok;
    pthread_cond_t done;
    struct job *next;
};

struct scep_crt_pool {
    pthread_mutex_t mu;
    pthread_cond_t work;
    struct job *head, *tail;
    pthread_t *threads;
    unsigned nthreads;
    unsigned cores; /* helpers + the caller */
    int stop;
    atomic_uint halves; /* exponentiations running now in private operations of our keys */
    atomic_ulong split, alone;
    RSA_METHOD *meth;
    enum scep_crt_mode mode;
    pthread_mutex_t choice_mu; /* sizes, nsizes */
    struct scep_crt_choice sizes[MAX_SIZES];
    unsigned nsizes;
};

/* Per wrapped key: its pool and Montgomery contexts (read only once made). */
struct keyctx {
    struct scep_crt_pool *pool;
    BN_MONT_CTX *mont_p, *mont_q, *mont_n;
};

/* out = (in mod m)^e mod m, in constant time in e; ctx is the caller's. */
static int
half(BIGNUM *out, const BIGNUM *in, const BIGNUM *m, const BIGNUM *e, BN_MONT_CTX *mont,
     BN_CTX *ctx)
{
    BIGNUM *c = BN_new(), *r;
    int ok = 0;

    if (c == NULL)
        return 0;
    BN_CTX_start(ctx);
    if ((r = BN_CTX_get(ctx)) != NULL) {
        BN_with_flags(c, in, BN_FLG_CONSTTIME);
        ok = BN_mod(r, c, m, ctx) && BN_mod_exp_mont_consttime(out, r, e, m, ctx, mont);
        BN_clear(r);
    }
    BN_CTX_end(ctx);
    BN_free(c); /* a flagged alias of in: frees nothing of in */
    return ok;
}

static void
run_job(struct job *j, BN_CTX *ctx)
{
    j->ok = half(j->out, j->in, j->q, j->dmq1, j->mont_q, ctx);
}

static void *
helper_main(void *arg)
{
    struct scep_crt_pool *p = arg;
    BN_CTX *ctx = BN_CTX_secure_new();

    (void)pthread_setname_np(pthread_self(), "scepd-crt"); /* top -H, perf, gdb */

    pthread_mutex_lock(&p->mu);
    for (;;) {
        struct job *j;
        while (p->head == NULL && !p->stop)
            pthread_cond_wait(&p->work, &p->mu);
        if (p->head == NULL)
            break;
        j = p->head;
        if ((p->head = j->next) == NULL)
            p->tail = NULL;
        j->state = JOB_RUNNING;
        pthread_mutex_unlock(&p->mu);
        if (ctx != NULL)
            run_job(j, ctx);
        else
            j->ok = 0;
        pthread_mutex_lock(&p->mu);
        j->state = JOB_DONE;
        pthread_cond_signal(&j->done);
    }
    pthread_mutex_unlock(&p->mu);
    BN_CTX_free(ctx);
    return NULL;
}

static void
submit(struct scep_crt_pool *p, struct job *j)
{
    pthread_mutex_lock(&p->mu);
    j->state = JOB_QUEUED;
    j->next = NULL;
    if (p->tail != NULL)
        p->tail->next = j;
    else
        p->head = j;
    p->tail = j;
    pthread_cond_signal(&p->work);
    pthread_mutex_unlock(&p->mu);
}

/*
 * Wait for j, or take it back and run it here if no helper has started it:
 * never slower than doing both halves in sequence.
 */
static void
finish(struct scep_crt_pool *p, struct job *j, BN_CTX *ctx)
{
    pthread_mutex_lock(&p->mu);
    if (j->state == JOB_QUEUED) {
        struct job **pp = &p->head, *prev = NULL;
        while (*pp != j) {
            prev = *pp;
            pp = &(*pp)->next;
        }
        *pp = j->next;
        if (p->tail == j)
            p->tail = prev;
        j->state = JOB_RUNNING;
        pthread_mutex_unlock(&p->mu);
        run_job(j, ctx);
        return;
    }
    while (j->state != JOB_DONE)
        pthread_cond_wait(&j->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

/* Two exponentiations may start now if they fit on the cores. */
static int
claim_two(struct scep_crt_pool *p)
{
    unsigned h = atomic_load(&p->halves);

    while (h + 2 <= p->cores)
        if (atomic_compare_exchange_weak(&p->halves, &h, h + 2))
            return 1;
    return 0;
}

/* r0 = I^d mod n by CRT, the two halves in parallel; 0 on any failure. */
static int
split_mod_exp(BIGNUM *r0, const BIGNUM *I, RSA *rsa, struct keyctx *k, BN_CTX *ctx)
{
    const BIGNUM *n, *e, *p, *q, *dmp1, *dmq1, *iqmp;
    struct job j;
    BIGNUM *m2, *r1, *vrfy, *pr1 = BN_new();
    int ok = 0;

    RSA_get0_key(rsa, &n, &e, NULL);
    RSA_get0_factors(rsa, &p, &q);
    RSA_get0_crt_params(rsa, &dmp1, &dmq1, &iqmp);
    if (pr1 == NULL)
        return 0;
    memset(&j, 0, sizeof(j));
    if ((j.out = BN_new()) == NULL) {
        BN_free(pr1);
        return 0;
    }
    pthread_cond_init(&j.done, NULL);
    BN_CTX_start(ctx);
    m2 = BN_CTX_get(ctx);
    r1 = BN_CTX_get(ctx);
    vrfy = BN_CTX_get(ctx);
    if (vrfy == NULL)
        goto out;
    j.in = I;
    j.q = q;
    j.dmq1 = dmq1;
    j.mont_q = k->mont_q;
    submit(k->pool, &j);
    /* our half meanwhile; the job is always finished before j goes out of scope */
    ok = half(m2, I, p, dmp1, k->mont_p, ctx);
    finish(k->pool, &j, ctx);
    if (!ok || !j.ok) {
        ok = 0;
        goto out;
    }
    /*
     * r0 = ((m2 - m1) * iqmp mod p) * q + m1, with the calls (and the
     * constant-time flag on the one division by p) of OpenSSL's own
     * recombination for keys it does not take its fixed-top path for.
     */
    ok = BN_sub(r0, m2, j.out) && (!BN_is_negative(r0) || BN_add(r0, r0, p)) &&
         BN_mul(r1, r0, iqmp, ctx);
    if (ok) {
        BN_with_flags(pr1, r1, BN_FLG_CONSTTIME);
        ok = BN_mod(r0, pr1, p, ctx) && (!BN_is_negative(r0) || BN_add(r0, r0, p)) &&
             BN_mul(r1, r0, q, ctx) && BN_add(r0, r1, j.out);
    }
    /* the check against the public key: a faulty result never leaves (Boneh-DeMillo-Lipton) */
    ok = ok && BN_mod_exp_mont(vrfy, r0, e, n, ctx, k->mont_n) && BN_sub(vrfy, vrfy, I) &&
         BN_is_zero(vrfy);
out:
    if (m2 != NULL)
        BN_clear(m2);
    if (r1 != NULL)
        BN_clear(r1);
    BN_CTX_end(ctx);
    BN_free(pr1);
    BN_clear_free(j.out);
    pthread_cond_destroy(&j.done);
    return ok;
}

static int
crt_mod_exp(BIGNUM *r0, const BIGNUM *I, RSA *rsa, BN_CTX *ctx)
{
    int (*openssl)(BIGNUM *, const BIGNUM *, RSA *, BN_CTX *) =
        RSA_meth_get_mod_exp(RSA_PKCS1_OpenSSL());
    struct keyctx *k = RSA_get_app_data(rsa);
    int ok;

    if (k == NULL || !claim_two(k->pool)) {
        if (k != NULL) {
            atomic_fetch_add(&k->pool->halves, 1);
            atomic_fetch_add(&k->pool->alone, 1);
        }
        ok = openssl(r0, I, rsa, ctx);
        if (k != NULL)
            atomic_fetch_sub(&k->pool->halves, 1);
        return ok;
    }
    ok = split_mod_exp(r0, I, rsa, k, ctx);
    atomic_fetch_sub(&k->pool->halves, 2);
    if (ok) {
        atomic_fetch_add(&k->pool->split, 1);
        return 1;
    }
    /* a failure or a result that did not check: OpenSSL's own code, with its own check */
    atomic_fetch_add(&k->pool->alone, 1);
    return openssl(r0, I, rsa, ctx);
}

static double
now_ms(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/*
 * c: one exponentiation of rsa (wrapped, k its context), OpenSSL's own and
 * split, on a random input below n.  0 when an operation failed or the
 * cores were taken (split_ms stays 0 then).
 */
static int
measure(RSA *rsa, struct keyctx *k, struct scep_crt_choice *c)
{
    int (*openssl)(BIGNUM *, const BIGNUM *, RSA *, BN_CTX *) =
        RSA_meth_get_mod_exp(RSA_PKCS1_OpenSSL());
    const BIGNUM *n;
    BN_CTX *ctx = BN_CTX_secure_new();
    BIGNUM *in = BN_new(), *r = BN_new();
    double best_o = 0, best_s = 0, t;
    int round, i, ok = ctx != NULL && in != NULL && r != NULL;

    RSA_get0_key(rsa, &n, NULL, NULL);
    ok = ok && BN_rand_range(in, n);
    for (round = 0; ok && round < MEASURE_ROUNDS; round++) {
        t = now_ms();
        for (i = 0; ok && i < MEASURE_OPS; i++)
            ok = openssl(r, in, rsa, ctx);
        t = (now_ms() - t) / MEASURE_OPS;
        if (best_o == 0 || t < best_o)
            best_o = t;
        if (!ok || !claim_two(k->pool)) {
            ok = 0;
            break;
        }
        t = now_ms();
        for (i = 0; ok && i < MEASURE_OPS; i++)
            ok = split_mod_exp(r, in, rsa, k, ctx);
        t = (now_ms() - t) / MEASURE_OPS;
        atomic_fetch_sub(&k->pool->halves, 2);
        if (best_s == 0 || t < best_s)
            best_s = t;
    }
    BN_CTX_free(ctx);
    BN_clear_free(in);
    BN_clear_free(r);
    c->openssl_ms = best_o;
    c->split_ms = ok ? best_s : 0;
    return ok;
}

/*
 * Whether keys of rsa's size are to be split: measured on the first (rsa,
 * wrapped, with k), remembered for the others.  The mutex also keeps two
 * measurements from sharing the helpers.
 */
static int
split_pays(struct scep_crt_pool *p, RSA *rsa, struct keyctx *k)
{
    struct scep_crt_choice c;
    int bits = RSA_bits(rsa), measured;
    unsigned i;

    if (p->mode != SCEP_CRT_AUTO)
        return p->mode == SCEP_CRT_SPLIT;
    pthread_mutex_lock(&p->choice_mu);
    for (i = 0; i < p->nsizes; i++)
        if (p->sizes[i].bits == bits) {
            int split = p->sizes[i].split;
            p->sizes[i].keys++;
            pthread_mutex_unlock(&p->choice_mu);
            return split;
        }
    memset(&c, 0, sizeof(c));
    c.bits = bits;
    c.keys = 1;
    measured = measure(rsa, k, &c);
    c.split = measured && c.split_ms * MEASURE_MARGIN < c.openssl_ms;
    if (p->nsizes < MAX_SIZES)
        p->sizes[p->nsizes++] = c;
    pthread_mutex_unlock(&p->choice_mu);
    if (measured)
        scep_log(SCEP_LOG_INFO, "crt",
                 "rsa-%d split=%s openssl_ms=%.3f split_ms=%.3f (one exponentiation, fastest of "
                 "%d rounds)",
                 bits, c.split ? "yes" : "no", c.openssl_ms, c.split_ms, MEASURE_ROUNDS);
    else
        scep_log(SCEP_LOG_WARN, "crt",
                 "rsa-%d split=no reason=\"not measurable: an operation failed or the cores were "
                 "busy\"",
                 bits);
    return c.split;
}

static void
keyctx_free(struct keyctx *k)
{
    if (k == NULL)
        return;
    BN_MONT_CTX_free(k->mont_p);
    BN_MONT_CTX_free(k->mont_q);
    BN_MONT_CTX_free(k->mont_n);
    free(k);
}

static int
crt_finish(RSA *rsa)
{
    int (*openssl)(RSA *) = RSA_meth_get_finish(RSA_PKCS1_OpenSSL());

    keyctx_free(RSA_get_app_data(rsa));
    RSA_set_app_data(rsa, NULL);
    return openssl != NULL ? openssl(rsa) : 1;
}

struct scep_crt_pool *
scep_crt_pool_new(unsigned helpers, enum scep_crt_mode mode)
{
    struct scep_crt_pool *p = calloc(1, sizeof(*p));
    unsigned i;

    if (p == NULL)
        return NULL;
    pthread_mutex_init(&p->mu, NULL);
    pthread_mutex_init(&p->choice_mu, NULL);
    pthread_cond_init(&p->work, NULL);
    p->mode = mode;
    p->cores = helpers + 1;
    if (helpers > 0) {
        if ((p->meth = RSA_meth_dup(RSA_PKCS1_OpenSSL())) == NULL ||
            !RSA_meth_set1_name(p->meth, "scepd parallel CRT") ||
            !RSA_meth_set_mod_exp(p->meth, crt_mod_exp) ||
            !RSA_meth_set_finish(p->meth, crt_finish) ||
            (p->threads = calloc(helpers, sizeof(*p->threads))) == NULL) {
            scep_crt_pool_free(p);
            return NULL;
        }
        for (i = 0; i < helpers; i++) {
            if (pthread_create(&p->threads[i], NULL, helper_main, p) != 0) {
                scep_crt_pool_free(p);
                return NULL;
            }
            p->nthreads++;
        }
    }
    return p;
}

void
scep_crt_pool_free(struct scep_crt_pool *p)
{
    unsigned i;

    if (p == NULL)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->mu);
    for (i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    free(p->threads);
    RSA_meth_free(p->meth);
    pthread_cond_destroy(&p->work);
    pthread_mutex_destroy(&p->choice_mu);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

static BN_MONT_CTX *
mont_of(const BIGNUM *m, int secret, BN_CTX *ctx)
{
    BN_MONT_CTX *mont = BN_MONT_CTX_new();
    BIGNUM *f = BN_new();

    if (mont == NULL || f == NULL) {
        BN_MONT_CTX_free(mont);
        BN_free(f);
        return NULL;
    }
    /* a prime's inverse is computed in constant time, as OpenSSL does for its own */
    BN_with_flags(f, m, secret ? BN_FLG_CONSTTIME : 0);
    if (!BN_MONT_CTX_set(mont, f, ctx)) {
        BN_MONT_CTX_free(mont);
        mont = NULL;
    }
    BN_free(f);
    return mont;
}

enum scep_err
scep_crt_wrap(struct scep_crt_pool *p, EVP_PKEY *key, EVP_PKEY **out)
{
    const RSA *src;
    const BIGNUM *n, *e, *d, *fp, *fq, *dmp1, *dmq1, *iqmp;
    struct keyctx *k = NULL;
    RSA *rsa = NULL;
    EVP_PKEY *pk = NULL;
    BN_CTX *ctx = NULL;
    enum scep_err rc = SCEP_E_NOMEM;

    *out = NULL;
    if (key == NULL)
        return SCEP_E_INVALID_ARG;
    src = EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA ? EVP_PKEY_get0_RSA(key) : NULL;
    if (src != NULL) {
        RSA_get0_key(src, &n, &e, &d);
        RSA_get0_factors(src, &fp, &fq);
        RSA_get0_crt_params(src, &dmp1, &dmq1, &iqmp);
    }
    if (p == NULL || p->nthreads == 0 || p->mode == SCEP_CRT_OFF || src == NULL || e == NULL ||
        d == NULL || fp == NULL || fq == NULL || dmp1 == NULL || dmq1 == NULL || iqmp == NULL ||
        RSA_get_multi_prime_extra_count(src) != 0)
        goto as_it_is;
    if ((ctx = BN_CTX_new()) == NULL || (k = calloc(1, sizeof(*k))) == NULL)
        goto out;
    k->pool = p;
    if ((k->mont_p = mont_of(fp, 1, ctx)) == NULL || (k->mont_q = mont_of(fq, 1, ctx)) == NULL ||
        (k->mont_n = mont_of(n, 0, ctx)) == NULL)
        goto out;
    if ((rsa = RSAPrivateKey_dup(src)) == NULL || !RSA_set_method(rsa, p->meth))
        goto out;
    if (!RSA_set_app_data(rsa, k))
        goto out;
    k = NULL; /* the key's now: crt_finish frees it */
    if (!split_pays(p, rsa, RSA_get_app_data(rsa))) {
        RSA_free(rsa);
        BN_CTX_free(ctx);
        goto as_it_is;
    }
    if ((pk = EVP_PKEY_new()) == NULL || !EVP_PKEY_assign_RSA(pk, rsa))
        goto out;
    rsa = NULL; /* pk's now */
    *out = pk;
    pk = NULL;
    rc = SCEP_OK;
out:
    EVP_PKEY_free(pk);
    RSA_free(rsa);
    keyctx_free(k);
    BN_CTX_free(ctx);
    return rc;
as_it_is:
    /* nothing to gain: the key as it is */
    if (!EVP_PKEY_up_ref(key))
        return SCEP_E_INTERNAL;
    *out = key;
    return SCEP_OK;
}

void
scep_crt_pool_counts(struct scep_crt_pool *p, unsigned long *split, unsigned long *alone)
{
    *split = atomic_load(&p->split);
    *alone = atomic_load(&p->alone);
}

int
scep_crt_pool_choice(struct scep_crt_pool *p, int bits, struct scep_crt_choice *out)
{
    unsigned i;
    int found = 0;

    pthread_mutex_lock(&p->choice_mu);
    for (i = 0; i < p->nsizes && !found; i++)
        if (p->sizes[i].bits == bits) {
            *out = p->sizes[i];
            found = 1;
        }
    pthread_mutex_unlock(&p->choice_mu);
    return found;
}
