/*
 * testutil.h - shared fixtures for the unit tests: a fresh data directory
 * with a running service, client keys, and request builders.
 */
#ifndef SCEPD_TESTUTIL_H
#define SCEPD_TESTUTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "scepd/client.h"
#include "scepd/service.h"
#include "scepd/setup.h"

#define TEST_CHALLENGE "test-challenge-123"

struct fixture {
    char dir[256];
    struct scep_service *svc;
    const struct scep_endpoint *ep;
    X509 *ra;
    X509 *ca;
};

/* New data dir (init with opts, challenge TEST_CHALLENGE) and service. */
struct fixture *fixture_new(const struct scep_init_opts *opts);
void fixture_free(struct fixture *f);
/* cmocka setup/teardown: a fresh default fixture in *state, and its end. */
int fixture_setup(void **state);
int fixture_teardown(void **state);

/* A cached RSA-2048 test key by index (0..7), generated once per process. */
EVP_PKEY *test_key(int idx);

/* A client request: CSR for key (dn, challenge) signed by a self-signed cert of signer_key. */
struct test_req {
    struct scep_client_req req;
    X509 *signer;
    unsigned char *csr;
    size_t csr_len;
    unsigned char *der;
    size_t der_len;
    char txid[64];
};
void test_req_make(struct test_req *t, struct fixture *f, EVP_PKEY *csr_key, EVP_PKEY *signer_key,
                   const char *dn, const char *challenge);
/* Re-encode t->req (after changing fields) into t->der. */
void test_req_build(struct test_req *t);
void test_req_clear(struct test_req *t);

/* Run a PKIOperation; returns the scep_result (caller clears). */
void test_run(struct fixture *f, const unsigned char *der, size_t len, struct scep_result *r);
/* Parse the reply as a client would; asserts it verifies. */
void test_reply(struct fixture *f, const struct scep_result *r, struct test_req *t, EVP_PKEY *key,
                struct scep_client_reply *out);
/* Number of certificate rows in the store. */
int test_cert_count(struct fixture *f);

/* Read a file into memory; asserts success. */
unsigned char *test_read_file(const char *path, size_t *len);

#endif
