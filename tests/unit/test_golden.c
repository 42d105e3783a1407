/*
 * test_golden.c - PKIOperation messages captured from real clients
 * (tests/data/golden, made by tests/data/make_golden.sh): micromdm
 * scepclient 2.1 and strongSwan pki 5.9.8.  Each must parse, decrypt with
 * the fixture's RA key using the cipher that client is known to send, carry
 * a CSR that verifies and matches the signer key, and enroll (or be refused,
 * for the wrong-challenge capture) when replayed against a copy of the
 * fixture data directory.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scepd/csr.h"
#include "scepd/oids.h"
#include "scepd/pki.h"
#include "scepd/pkimsg.h"

#define GOLDEN_CHALLENGE "golden-challenge-2026"

struct golden {
    const char *file;
    const char *cipher;    /* what the client encrypts with */
    const char *challenge; /* what its CSR carries */
    enum scep_err expect;  /* replay result */
};

static const struct golden goldens[] = {
    {"scepclient-1-post.der", "DES-CBC", GOLDEN_CHALLENGE, SCEP_OK},
    {"scepclient-badchal-1-post.der", "DES-CBC", "wrong-challenge", SCEP_E_CHALLENGE},
    {"strongswan-1-post.der", "DES-EDE3-CBC", GOLDEN_CHALLENGE, SCEP_OK},
};

static char golden_dir[512];

static unsigned char *
load(const char *name, size_t *len)
{
    char p[1024];

    snprintf(p, sizeof(p), "%s/%s", golden_dir, name);
    return test_read_file(p, len);
}

static void
fixture_keys(X509 **ra, EVP_PKEY **rakey)
{
    char p[1024];

    snprintf(p, sizeof(p), "%s/datadir/%s", golden_dir, SCEP_RA_CERT_FILE);
    assert_int_equal(scep_pki_read_cert(p, ra), SCEP_OK);
    snprintf(p, sizeof(p), "%s/datadir/%s", golden_dir, SCEP_RA_KEY_FILE);
    assert_int_equal(scep_pki_read_key(p, rakey), SCEP_OK);
}

static void
test_golden_parse_decrypt_csr(void **state)
{
    X509 *ra = NULL;
    EVP_PKEY *rakey = NULL;
    size_t i;

    (void)state;
    assert_int_equal(scep_lib_init(), SCEP_OK);
    fixture_keys(&ra, &rakey);
    for (i = 0; i < sizeof(goldens) / sizeof(goldens[0]); i++) {
        const struct golden *g = &goldens[i];
        struct scep_decrypt_key k = {ra, rakey};
        struct scep_pkimsg *m = NULL;
        struct scep_envinfo env;
        unsigned char *der, *inner = NULL;
        size_t len, innerlen = 0, chlen = 0;
        X509_REQ *csr = NULL;
        char chal[256];

        der = load(g->file, &len);
        assert_int_equal(scep_pkimsg_parse(der, len, &m), SCEP_OK);
        assert_int_equal(m->msgtype, 19);
        assert_true(m->txid_len > 0);
        assert_int_equal(m->nonce_len, 16);
        assert_non_null(m->md);
        assert_true(m->econtent_is_data);
        assert_int_equal(scep_pkimsg_decrypt(m, &k, 1, 1, &inner, &innerlen, &env), SCEP_OK);
        assert_string_equal(env.cipher, g->cipher);
        assert_int_equal(scep_csr_parse(inner, innerlen, &csr), SCEP_OK);
        assert_int_equal(scep_csr_verify_self(csr), SCEP_OK);
        assert_int_equal(scep_csr_check_pop(csr, m->signer), SCEP_OK);
        assert_int_equal(scep_csr_check_key(csr), SCEP_OK);
        assert_int_equal(scep_csr_challenge(csr, chal, sizeof(chal), &chlen), SCEP_OK);
        assert_string_equal(chal, g->challenge);
        /* DES refused by the endpoint setting gives badAlg, never a decrypt */
        if (strcmp(g->cipher, "DES-CBC") == 0) {
            unsigned char *x = NULL;
            size_t xl = 0;
            assert_int_equal(scep_pkimsg_decrypt(m, &k, 1, 0, &x, &xl, &env),
                             SCEP_E_CIPHER_REFUSED);
            assert_null(x);
        }
        X509_REQ_free(csr);
        OPENSSL_clear_free(inner, innerlen);
        scep_pkimsg_free(m);
        free(der);
    }
    X509_free(ra);
    EVP_PKEY_free(rakey);
}

static void
test_golden_truncated_and_trailing(void **state)
{
    struct scep_pkimsg *m = NULL;
    unsigned char *der, *big;
    size_t len, cut;

    (void)state;
    der = load("strongswan-1-post.der", &len);
    big = malloc(len + 1);
    memcpy(big, der, len);
    big[len] = 0x00;
    assert_int_equal(scep_pkimsg_parse(big, len + 1, &m), SCEP_E_DER_TRAILING);
    assert_null(m);
    for (cut = 1; cut < len; cut += 97) {
        assert_int_not_equal(scep_pkimsg_parse(der, cut, &m), SCEP_OK);
        assert_null(m);
    }
    /* a flipped bit in the signature: refused before any decryption */
    memcpy(big, der, len);
    big[len - 20] ^= 0x01;
    assert_int_equal(scep_pkimsg_parse(big, len, &m), SCEP_E_BAD_SIGNATURE);
    assert_null(m);
    free(big);
    free(der);
}

/* Replayed against a copy of the fixture: enroll, or refuse the wrong challenge. */
static void
test_golden_replay_service(void **state)
{
    char base[] = "/tmp/scepd-golden-XXXXXX", dir[600], cmd[1400], err[512];
    struct scep_service *svc = NULL;
    const struct scep_endpoint *ep;
    X509 *ra = NULL;
    EVP_PKEY *rakey = NULL;
    size_t i;

    (void)state;
    assert_non_null(mkdtemp(base));
    snprintf(dir, sizeof(dir), "%s/data", base);
    snprintf(cmd, sizeof(cmd), "cp -a '%s/datadir' '%s'", golden_dir, dir);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(scep_service_open(dir, &svc, err, sizeof(err)), SCEP_OK);
    ep = scep_service_endpoint(svc, NULL, 0);
    fixture_keys(&ra, &rakey);
    for (i = 0; i < sizeof(goldens) / sizeof(goldens[0]); i++) {
        const struct golden *g = &goldens[i];
        struct scep_pkimsg *m = NULL;
        struct scep_client_req req;
        struct scep_client_reply rep;
        struct scep_result r;
        char txid[300];
        unsigned char *der;
        size_t len;

        der = load(g->file, &len);
        scep_service_pkioperation(svc, ep, der, len, &r);
        assert_int_equal(r.err, g->expect);
        assert_int_equal(r.http_status, 200);
        /* The reply verifies as the client would check it (RA signature, txid, nonce). */
        assert_int_equal(scep_pkimsg_parse(der, len, &m), SCEP_OK);
        memset(&req, 0, sizeof(req));
        memcpy(txid, m->txid, m->txid_len);
        txid[m->txid_len] = '\0';
        req.txid = txid;
        memcpy(req.nonce, m->nonce, m->nonce_len);
        req.nonce_len = m->nonce_len;
        assert_int_equal(scep_client_parse_reply(r.body, r.body_len, ra, &req, NULL, &rep),
                         SCEP_OK);
        assert_int_equal(rep.status, g->expect == SCEP_OK ? 0 : 2);
        if (g->expect == SCEP_OK)
            assert_true(r.serial[0] != '\0');
        else
            assert_int_equal(rep.fail_info, 2);
        scep_client_reply_clear(&rep);
        scep_pkimsg_free(m);
        scep_result_clear(&r);
        free(der);
    }
    X509_free(ra);
    EVP_PKEY_free(rakey);
    scep_service_free(svc);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
    assert_int_equal(system(cmd), 0);
}

int
main(void)
{
    const char *d = getenv("SCEPD_TEST_DATA");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_parse_decrypt_csr),
        cmocka_unit_test(test_golden_truncated_and_trailing),
        cmocka_unit_test(test_golden_replay_service),
    };

    snprintf(golden_dir, sizeof(golden_dir), "%s/golden", d ? d : "tests/data");
    return cmocka_run_group_tests(tests, NULL, NULL);
}
