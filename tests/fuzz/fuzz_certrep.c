/*
 * fuzz_certrep.c - libFuzzer target for the client side: the device agent
 * and scep-bench parse CertRep replies from a server they do not control
 * (scep_client_parse_reply, client.h).
 *
 * The reply is checked against the fixed fuzz RA certificate and a fixed
 * request (FUZZ_TXID, FUZZ_NONCE, signed by keys/client.*), once asking for
 * the issued certificate (cert_key = the client key, so SUCCESS envelopes in
 * the corpus decrypt and find_cert runs) and once without (load-generator
 * mode).  Everything past the RA signature is reached only from the seeds,
 * which make_corpus builds with scep_certrep_build and keys/ra.key.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzzutil.h"
#include "scepd/client.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct fuzz_keys *keys;
static struct scep_client_req req;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    keys = fuzz_init();
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
one(const uint8_t *data, size_t size, EVP_PKEY *cert_key)
{
    struct scep_client_reply r;
    enum scep_err rc;

    rc = scep_client_parse_reply(data, size, keys->ra_cert, &req, cert_key, &r);
    if (rc == SCEP_OK) {
        if (r.status != 0 && r.status != 2 && r.status != 3)
            abort(); /* client.h: 0, 2 or 3 only */
        if (r.status == 0 && cert_key != NULL && r.cert == NULL)
            abort(); /* SUCCESS with cert_key must hand back the certificate */
        if (memchr(r.fail_text, 0, sizeof(r.fail_text)) == NULL)
            abort(); /* failText terminated */
    }
    /* Failures may leave a certificate behind too: clear frees it. */
    scep_client_reply_clear(&r);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    one(data, size, keys->client_key);
    one(data, size, NULL);
    return 0;
}
