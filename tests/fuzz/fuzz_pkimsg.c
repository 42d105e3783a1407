/*
 * fuzz_pkimsg.c - libFuzzer target for a whole PKIOperation request as the
 * service reads it: scep_pkimsg_parse (outer SignedData, signature, SCEP
 * attributes), then scep_pkimsg_decrypt with the fixed fuzz RA and CA keys
 * (tests/fuzz/keys/), then the PKCS#10 checks on the plaintext.
 *
 * The seed corpus is encrypted to keys/ra.crt (and some to keys/ca.crt), so
 * its envelopes really decrypt and the CSR stage is reached.  Mutations of
 * the signed part fail the signature (the fuzzer cannot re-sign): for the
 * envelope parser with arbitrary bytes see fuzz_envelope.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "fuzzutil.h"
#include "scepd/pkimsg.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct fuzz_keys *keys;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    keys = fuzz_init();
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct scep_pkimsg *m = NULL;
    struct scep_decrypt_key dk[2];
    struct scep_envinfo info;
    unsigned char *inner = NULL;
    size_t innerlen = 0;
    enum scep_err rc;

    rc = scep_pkimsg_parse(data, size, &m);
    if (rc != SCEP_OK || m == NULL) {
        /* pkimsg.h allows *out on some failures; it must then be freed. */
        scep_pkimsg_free(m);
        return 0;
    }
    if (m->txid_len == 0 || m->txid_len > SCEP_MAX_TXID || m->nonce_len < SCEP_MIN_NONCE ||
        m->nonce_len > SCEP_MAX_NONCE || m->signer == NULL || m->content == NULL)
        abort(); /* parse promised these */
    (void)scep_msgtype_name(m->msgtype);
    /* What a CertPoll reply mirrors, read without decrypting. */
    if (scep_pkimsg_envinfo(m, &info) == SCEP_OK &&
        memchr(info.cipher, 0, sizeof(info.cipher)) == NULL)
        abort();

    dk[0].cert = keys->ra_cert;
    dk[0].pkey = keys->ra_key;
    dk[1].cert = keys->ca_cert;
    dk[1].pkey = keys->ca_key;
    if (scep_pkimsg_decrypt(m, dk, 2, 1, &inner, &innerlen, &info) == SCEP_OK) {
        if (inner == NULL || innerlen == 0 || innerlen > SCEP_MAX_INNER)
            abort();
        (void)fuzz_csr_checks(inner, innerlen, m->signer);
        OPENSSL_clear_free(inner, innerlen);
    } else if (inner != NULL) {
        abort(); /* no plaintext may escape a failed decryption */
    }
    scep_pkimsg_free(m);
    return 0;
}
