/*
 * fuzzutil.c - loading the fixed fuzz keys and the shared PKCS#10 checks
 * (see fuzzutil.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/x509v3.h>

#include "fuzzutil.h"
#include "scepd/csr.h"
#include "scepd/issue.h"
#include "scepd/oids.h"
#include "scepd/pki.h"

#ifndef SCEPD_FUZZ_KEYDIR
#define SCEPD_FUZZ_KEYDIR "tests/fuzz/keys"
#endif

static struct fuzz_keys keys;
static int loaded;

static void
free_keys(void)
{
    EVP_PKEY_free(keys.ra_key);
    X509_free(keys.ra_cert);
    EVP_PKEY_free(keys.ca_key);
    X509_free(keys.ca_cert);
    EVP_PKEY_free(keys.client_key);
    X509_free(keys.client_cert);
}

static void
load(const char *dir, const char *name, EVP_PKEY **key, X509 **cert)
{
    char path[4096];

    snprintf(path, sizeof(path), "%s/%s.key", dir, name);
    if (scep_pki_read_key(path, key) != SCEP_OK) {
        fprintf(stderr, "fuzz: %s: cannot read key; set SCEPD_FUZZ_KEYS to tests/fuzz/keys\n",
                path);
        exit(1);
    }
    snprintf(path, sizeof(path), "%s/%s.crt", dir, name);
    if (scep_pki_read_cert(path, cert) != SCEP_OK) {
        fprintf(stderr, "fuzz: %s: cannot read certificate; set SCEPD_FUZZ_KEYS to "
                        "tests/fuzz/keys\n",
                path);
        exit(1);
    }
}

const struct fuzz_keys *
fuzz_init(void)
{
    const char *dir = getenv("SCEPD_FUZZ_KEYS");

    if (loaded)
        return &keys;
    if (scep_lib_init() != SCEP_OK) {
        fprintf(stderr, "fuzz: scep_lib_init failed\n");
        exit(1);
    }
    if (dir == NULL || *dir == '\0')
        dir = SCEPD_FUZZ_KEYDIR;
    load(dir, "ra", &keys.ra_key, &keys.ra_cert);
    load(dir, "ca", &keys.ca_key, &keys.ca_cert);
    load(dir, "client", &keys.client_key, &keys.client_cert);
    atexit(free_keys);
    loaded = 1;
    return &keys;
}

int
fuzz_csr_checks(const unsigned char *der, size_t len, X509 *signer)
{
    X509_REQ *req = NULL;
    STACK_OF(X509_EXTENSION) *exts;
    EVP_PKEY *pk;
    unsigned char hash[32];
    char chal[SCEP_MAX_CHALLENGE];
    size_t chlen = 0;
    enum scep_err rc;

    if (scep_csr_parse(der, len, &req) != SCEP_OK) {
        if (req != NULL)
            abort(); /* out-parameter must stay NULL on failure */
        return 0;
    }
    (void)scep_csr_verify_self(req);
    if (signer != NULL)
        (void)scep_csr_check_pop(req, signer);
    (void)scep_csr_check_key(req);
    rc = scep_csr_challenge(req, chal, sizeof(chal), &chlen);
    if (rc == SCEP_OK && (chlen >= sizeof(chal) || strlen(chal) != chlen))
        abort(); /* the challenge is terminated, NUL-free and fits */
    OPENSSL_cleanse(chal, sizeof(chal));
    /* A one-byte buffer: only "" fits. */
    if (scep_csr_challenge(req, chal, 1, &chlen) == SCEP_OK && chlen != 0)
        abort();
    (void)scep_issue_check_names(req);
    exts = scep_csr_extensions(req);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    pk = X509_REQ_get0_pubkey(req);
    if (pk != NULL)
        (void)scep_key_hash(pk, hash);
    X509_REQ_free(req);
    return 1;
}
