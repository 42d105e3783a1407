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
 */
#ifndef SCEPD_CRT_H
#define SCEPD_CRT_H

#include <openssl/evp.h>

#include "scepd/err.h"

struct scep_crt_pool;

/*
 * helpers threads (normally cores - 1); 0 gives a pool that wraps
 * nothing.  NULL on ENOMEM or when a thread cannot be started.
 */
struct scep_crt_pool *scep_crt_pool_new(unsigned helpers);
/* Every key wrapped by p must have been freed first.  NULL-safe. */
void scep_crt_pool_free(struct scep_crt_pool *p);

/*
 * *out: a key equal to key whose private operations use p (a new
 * EVP_PKEY, or key itself with a new reference when there is nothing to
 * gain: not RSA, no CRT parameters, more than two primes, a pool without
 * helpers).  The caller frees *out; key is not changed and may be freed.
 */
enum scep_err scep_crt_wrap(struct scep_crt_pool *p, EVP_PKEY *key, EVP_PKEY **out) SCEP_WUR;

/*
 * Private-key operations so far: split (the mod-q half lent to a helper,
 * whoever then ran it) and alone (OpenSSL's own code: the cores were busy,
 * or a split result did not check and was computed again).
 */
void scep_crt_pool_counts(struct scep_crt_pool *p, unsigned long *split, unsigned long *alone);

#endif
