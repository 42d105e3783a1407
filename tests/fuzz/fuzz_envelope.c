/*
 * fuzz_envelope.c - libFuzzer target for scep_pkimsg_decrypt on arbitrary
 * bytes: the input is the pkcsPKIEnvelope (the signed content of a
 * pkiMessage, a CMS EnvelopedData), handed over as scep_pkimsg_parse would
 * after the signature verified.  fuzz_pkimsg cannot get mutated envelopes
 * past the outer signature; this target can.
 *
 * Decrypts with the fixed RA and CA keys; a plaintext goes through the
 * PKCS#10 checks with keys/client.crt as the request signer.
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
    struct scep_pkimsg m;
    struct scep_decrypt_key dk[2];
    struct scep_envinfo info;
    unsigned char *inner = NULL;
    size_t innerlen = 0;

    if (size == 0)
        return 0; /* scep_pkimsg_parse never yields empty content */
    memset(&m, 0, sizeof(m));
    /* A copy of exactly size bytes, as parse would own it. */
    if ((m.content = malloc(size)) == NULL)
        return 0;
    memcpy(m.content, data, size);
    m.content_len = size;
    m.signer = keys->client_cert;
    m.msgtype = 19;

    if (scep_pkimsg_envinfo(&m, &info) == SCEP_OK &&
        memchr(info.cipher, 0, sizeof(info.cipher)) == NULL)
        abort();
    dk[0].cert = keys->ra_cert;
    dk[0].pkey = keys->ra_key;
    dk[1].cert = keys->ca_cert;
    dk[1].pkey = keys->ca_key;
    if (scep_pkimsg_decrypt(&m, dk, 2, (data[size - 1] & 1) == 0, &inner, &innerlen, &info) ==
        SCEP_OK) {
        if (inner == NULL || innerlen == 0 || innerlen > SCEP_MAX_INNER ||
            memchr(info.cipher, 0, sizeof(info.cipher)) == NULL)
            abort();
        (void)fuzz_csr_checks(inner, innerlen, m.signer);
        OPENSSL_clear_free(inner, innerlen);
    } else if (inner != NULL) {
        abort();
    }
    free(m.content);
    return 0;
}
