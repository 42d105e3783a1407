/*
 * crt.h - RSA private-key operations that use an idle core for half of
 * the Chinese-remainder computation.
 *
 * An enrollment needs three RSA private-key operations, one after the
 * other (decrypt the request, sign the certificate, sign the reply), and
 * each is two independent exponentiations, modulo p and modulo q, that
 * OpenSSL runs in sequence.  When a core is idle, a wrapped key has the
 * modulo-q half computed on a helper thread meanwhile: the operation
 * takes about half as long for a lone request.  When every core is busy
 * (or the helper has not started the half by the time the caller's own is
 * done) the caller does it itself, and a busy server pays nothing for it.
 *
 * Only the exponentiation step is replaced (RSA_METHOD's rsa_mod_exp):
 * padding and its checks, blinding, and the decision to use CRT stay
 * OpenSSL's own.  Both halves use BN_mod_exp_mont_consttime, the
 * recombination is OpenSSL's own sequence of public BN calls, and every
 * result is checked (r^e == input mod n) before it leaves; a result that
 * does not check (a fault) is computed again by OpenSSL's own code, which
 * then checks and falls back to the non-CRT form itself.  The outputs are
 * those of OpenSSL bit for bit (test_crt, fuzz_crt).
 *
 * Splitting is not always faster.  Where the CPU has AVX-512 IFMA,
 * OpenSSL 3 computes the two halves of an RSA-2048 operation together in
 * one vector pass (four times the work per instruction), and that beats
 * two halves on two cores: measured on one such 2-core machine, 4040
 * signs/s with OpenSSL's own against 2720 split.  So by default
 * (SCEP_CRT_AUTO) a pool measures both on the first key of each size it is
 * given, logs what it found, and wraps keys of that size only when
 * splitting won.
 */
#ifndef SCEPD_CRT_H
#define SCEPD_CRT_H

#include <openssl/evp.h>

#include "scepd/err.h"

struct scep_crt_pool;

enum scep_crt_mode {
    SCEP_CRT_AUTO,  /* split keys of a size where it measured faster (serve) */
    SCEP_CRT_SPLIT, /* split every key it can (tests, fuzzing) */
    SCEP_CRT_OFF,   /* wrap nothing: OpenSSL's own code for every key */
};

/* What a pool found for one key size (SCEP_CRT_AUTO). */
struct scep_crt_choice {
    int bits;          /* modulus size */
    int split;         /* 1: keys of this size are wrapped */
    double openssl_ms; /* one exponentiation, OpenSSL's own (fastest round) */
    double split_ms;   /* the same, split (0 when it could not be measured) */
    unsigned keys;     /* keys of this size given to scep_crt_wrap so far */
};

/*
 * helpers threads (normally cores - 1); 0 gives a pool that wraps
 * nothing.  NULL on ENOMEM or when a thread cannot be started.
 */
struct scep_crt_pool *scep_crt_pool_new(unsigned helpers, enum scep_crt_mode mode);
/* Every key wrapped by p must have been freed first.  NULL-safe. */
void scep_crt_pool_free(struct scep_crt_pool *p);

/*
 * *out: a key equal to key whose private operations use p (a new
 * EVP_PKEY, or key itself with a new reference when there is nothing to
 * gain: not RSA, no CRT parameters, more than two primes, a pool without
 * helpers, SCEP_CRT_OFF, or SCEP_CRT_AUTO where splitting measured no
 * faster for its size).  The caller frees *out; key is not changed and may
 * be freed.  In SCEP_CRT_AUTO the first key of a size takes about 25 ms
 * longer (the measurement, with the helpers idle).
 */
enum scep_err scep_crt_wrap(struct scep_crt_pool *p, EVP_PKEY *key, EVP_PKEY **out) SCEP_WUR;

/*
 * Private-key operations so far: split (the mod-q half lent to a helper,
 * whoever then ran it) and alone (OpenSSL's own code: the cores were busy,
 * or a split result did not check and was computed again).
 */
void scep_crt_pool_counts(struct scep_crt_pool *p, unsigned long *split, unsigned long *alone);

/* 1 and *out when keys of bits have been measured (SCEP_CRT_AUTO), else 0. */
int scep_crt_pool_choice(struct scep_crt_pool *p, int bits, struct scep_crt_choice *out);

#endif
