/*
 * fuzz_csr.c - libFuzzer target for the PKCS#10 layer alone (csr.h and
 * scep_issue_check_names): the input is the DER a PKCSReq would carry once
 * decrypted.  See fuzz_csr_checks() in fuzzutil.c for what is called.
 *
 * Client certificate as the "signer" so scep_csr_check_pop runs too.
 */
#include <stdint.h>

#include "fuzzutil.h"

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
    (void)fuzz_csr_checks(data, size, keys->client_cert);
    return 0;
}
