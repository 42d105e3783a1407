/*
 * fuzz_pkimsg_signed.c - libFuzzer target for what fuzz_pkimsg cannot reach
 * by mutation: everything scep_pkimsg_parse reads AFTER the signature
 * verified (the SCEP attributes: transactionID, senderNonce, messageType;
 * the digest; the eContent), and scep_pkimsg_decrypt on whatever was signed.
 *
 * A real attacker can sign anything (PKCSReq signers are self-signed), so
 * the input describes the signed content (format in fuzzutil.h) and this
 * harness signs it with an EC P-256 key before parsing.  Decryption uses the
 * fixed RA and CA keys; a plaintext goes through the PKCS#10 checks.
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
static EVP_PKEY *signer_key;
static X509 *signer_cert;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    keys = fuzz_init();
    fuzz_ec_signer(&signer_key, &signer_cert);
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct scep_pkimsg *m = NULL;
    struct scep_decrypt_key dk[2];
    struct scep_envinfo info;
    unsigned char *der = NULL, *inner = NULL;
    size_t derlen = 0, innerlen = 0;

    if (!fuzz_signed_build(data, size, signer_cert, signer_key, &der, &derlen))
        return 0;
    if (scep_pkimsg_parse(der, derlen, &m) != SCEP_OK || m == NULL) {
        scep_pkimsg_free(m);
        free(der);
        return 0;
    }
    if (m->txid_len == 0 || m->txid_len > SCEP_MAX_TXID || m->nonce_len < SCEP_MIN_NONCE ||
        m->nonce_len > SCEP_MAX_NONCE || m->signer == NULL || m->content == NULL ||
        m->content_len == 0 || m->msgtype < -1 || m->msgtype > 999)
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
    if (scep_pkimsg_decrypt(m, dk, 2, size > 0 && (data[size - 1] & 1), &inner, &innerlen, &info) ==
        SCEP_OK) {
        if (inner == NULL || innerlen == 0 || innerlen > SCEP_MAX_INNER)
            abort();
        (void)fuzz_csr_checks(inner, innerlen, m->signer);
        OPENSSL_clear_free(inner, innerlen);
    } else if (inner != NULL) {
        abort();
    }
    scep_pkimsg_free(m);
    free(der);
    return 0;
}
