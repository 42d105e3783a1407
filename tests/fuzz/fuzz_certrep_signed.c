/*
 * fuzz_certrep_signed.c - libFuzzer target for what fuzz_certrep cannot
 * reach by mutation: scep_client_parse_reply after the RA signature
 * verified (messageType, transactionID and nonce matching, pkiStatus and
 * failInfo, the SUCCESS envelope, find_cert).  A compromised or buggy
 * server (the RA key holder) controls all of it.
 *
 * The input describes the signed content (format in fuzzutil.h); this
 * harness signs it with an EC P-256 "RA" made at start-up and passes that
 * certificate as the pinned RA.  The request is fixed: FUZZ_TXID,
 * FUZZ_NONCE, signed by keys/client.*, whose key decrypts SUCCESS envelopes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzzutil.h"
#include "scepd/client.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct fuzz_keys *keys;
static EVP_PKEY *ra_key;
static X509 *ra_cert;
static struct scep_client_req req;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    keys = fuzz_init();
    fuzz_ec_signer(&ra_key, &ra_cert);
    req.msgtype = 19;
    req.txid = FUZZ_TXID;
    memcpy(req.nonce, FUZZ_NONCE, sizeof(req.nonce));
    req.nonce_len = sizeof(req.nonce);
    req.signer_cert = keys->client_cert;
    req.signer_key = keys->client_key;
    req.recipient = keys->ra_cert;
    return 0;
}

static void
one(const unsigned char *der, size_t len, EVP_PKEY *cert_key)
{
    struct scep_client_reply r;

    if (scep_client_parse_reply(der, len, ra_cert, &req, cert_key, &r) == SCEP_OK) {
        if (r.status != 0 && r.status != 2 && r.status != 3)
            abort();
        if (r.status == 0 && cert_key != NULL && r.cert == NULL)
            abort();
        if (r.status != 2 && r.fail_info != -1)
            abort(); /* failInfo only with FAILURE */
        if (memchr(r.fail_text, 0, sizeof(r.fail_text)) == NULL)
            abort();
    }
    scep_client_reply_clear(&r);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned char *der = NULL;
    size_t len = 0;

    if (!fuzz_signed_build(data, size, ra_cert, ra_key, &der, &len))
        return 0;
    one(der, len, keys->client_key);
    one(der, len, NULL);
    free(der);
    return 0;
}
