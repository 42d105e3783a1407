/*
 * testutil.c - fixtures for the unit tests (see testutil.h).
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/sha.h>

#include "scepd/log.h"
#include "scepd/oids.h"
#include "scepd/csr.h"
#include "scepd/pki.h"

static EVP_PKEY *keys[8];

EVP_PKEY *
test_key(int idx)
{
    assert_true(idx >= 0 && idx < 8);
    if (keys[idx] == NULL) {
        assert_int_equal(scep_pki_genkey("rsa:2048", &keys[idx]), SCEP_OK);
    }
    return keys[idx];
}

static X509 *
read_pem(const char *dir, const char *name)
{
    char p[512];
    X509 *x = NULL;

    assert_int_equal(scep_path(p, sizeof(p), dir, name), SCEP_OK);
    assert_int_equal(scep_pki_read_cert(p, &x), SCEP_OK);
    return x;
}

struct fixture *
fixture_new(const struct scep_init_opts *opts)
{
    struct fixture *f = calloc(1, sizeof(*f));
    struct scep_init_opts o;
    char chal[300], err[512];
    char base[] = "/tmp/scepd-unit-XXXXXX";

    assert_non_null(f);
    assert_int_equal(scep_lib_init(), SCEP_OK);
    scep_log_set_level(SCEP_LOG_WARN);
    assert_non_null(mkdtemp(base));
    snprintf(f->dir, sizeof(f->dir), "%s/data", base);
    memset(&o, 0, sizeof(o));
    if (opts != NULL)
        o = *opts;
    o.datadir = f->dir;
    if (o.challenge == NULL)
        o.challenge = TEST_CHALLENGE;
    assert_int_equal(scep_setup_init(&o, chal, sizeof(chal), err, sizeof(err)), SCEP_OK);
    assert_int_equal(scep_service_open(f->dir, &f->svc, err, sizeof(err)), SCEP_OK);
    f->ep = scep_service_endpoint(f->svc, NULL, 0);
    assert_non_null(f->ep);
    f->ra = read_pem(f->dir, SCEP_RA_CERT_FILE);
    f->ca = read_pem(f->dir, SCEP_CA_CERT_FILE);
    return f;
}

void
fixture_free(struct fixture *f)
{
    char cmd[600];

    if (f == NULL)
        return;
    scep_service_free(f->svc);
    X509_free(f->ra);
    X509_free(f->ca);
    /* the fixture dir is ours alone: /tmp/scepd-unit-XXXXXX */
    snprintf(cmd, sizeof(cmd), "rm -rf '%.*s'", (int)(strlen(f->dir) - 5), f->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", f->dir);
    free(f);
}

void
test_req_make(struct test_req *t, struct fixture *f, EVP_PKEY *csr_key, EVP_PKEY *signer_key,
              const char *dn, const char *challenge)
{
    X509_REQ *csr = NULL;
    unsigned char *der = NULL, md[32];
    int n;
    size_t i;

    memset(t, 0, sizeof(*t));
    assert_int_equal(scep_client_make_csr(csr_key, dn, challenge, NULL, &csr), SCEP_OK);
    n = i2d_X509_REQ(csr, &der);
    assert_true(n > 0);
    t->csr = malloc((size_t)n);
    memcpy(t->csr, der, (size_t)n);
    t->csr_len = (size_t)n;
    OPENSSL_free(der);
    assert_int_equal(scep_client_selfsigned(signer_key, X509_REQ_get_subject_name(csr), &t->signer),
                     SCEP_OK);
    X509_REQ_free(csr);
    /* transactionID like strongSwan: hex of a hash of the key */
    assert_int_equal(scep_key_hash(signer_key, md), SCEP_OK);
    for (i = 0; i < 20; i++)
        snprintf(t->txid + 2 * i, 3, "%02X", md[i]);
    t->req.msgtype = 19;
    t->req.txid = t->txid;
    t->req.signer_cert = t->signer;
    t->req.signer_key = signer_key;
    t->req.inner = t->csr;
    t->req.inner_len = t->csr_len;
    t->req.recipient = f->ra;
    test_req_build(t);
}

void
test_req_build(struct test_req *t)
{
    free(t->der);
    t->der = NULL;
    assert_int_equal(scep_client_build(&t->req, &t->der, &t->der_len), SCEP_OK);
}

void
test_req_clear(struct test_req *t)
{
    X509_free(t->signer);
    free(t->csr);
    free(t->der);
    memset(t, 0, sizeof(*t));
}

void
test_run(struct fixture *f, const unsigned char *der, size_t len, struct scep_result *r)
{
    scep_service_pkioperation(f->svc, f->ep, der, len, r);
}

void
test_reply(struct fixture *f, const struct scep_result *r, struct test_req *t, EVP_PKEY *key,
           struct scep_client_reply *out)
{
    assert_int_equal(r->http_status, 200);
    assert_string_equal(r->content_type, "application/x-pki-message");
    assert_int_equal(scep_client_parse_reply(r->body, r->body_len, f->ra, &t->req, key, out),
                     SCEP_OK);
}

static int
count_cb(void *arg, const struct scep_cert_row *row)
{
    (void)row;
    (*(int *)arg)++;
    return 0;
}

int
test_cert_count(struct fixture *f)
{
    int n = 0;

    assert_int_equal(scep_store_each_cert(scep_service_store(f->svc), count_cb, &n), SCEP_OK);
    return n;
}

unsigned char *
test_read_file(const char *path, size_t *len)
{
    unsigned char *d = NULL;

    assert_int_equal(scep_pki_read_file(path, 1 << 20, &d, len), SCEP_OK);
    return d;
}

int
fixture_setup(void **state)
{
    *state = fixture_new(NULL);
    return 0;
}

int
fixture_teardown(void **state)
{
    fixture_free(*state);
    return 0;
}
