/*
 * test_admin.c - administration of endpoints, accounts, challenges, tokens,
 * profiles and events (lib/service_admin.c) on a fresh data directory:
 * endpoints with a new CA and with the default one, refusals with their
 * messages, fixed fields, secret files (0600) that never appear in a
 * description, accounts, the challenge cap, tokens that verify with the
 * key handed out, audit rows for every change, and a failed delivery.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "scepd/challenge.h"
#include "scepd/pki.h"
#include "scepd/policy.h"
#include "scepd/store.h"
#include "scepd/token.h"
#include "../../lib/service_int.h"

/* A spec for a new endpoint name on the default CA, mode given. */
static void
spec_for(struct scep_endpoint_spec *s, const char *name, const char *mode)
{
    scep_endpoint_spec_init(s);
    snprintf(s->name, sizeof(s->name), "%s", name);
    snprintf(s->ca, sizeof(s->ca), "default");
    if (mode != NULL)
        snprintf(s->mode, sizeof(s->mode), "%s", mode);
}

static enum scep_err
add(struct fixture *f, const struct scep_endpoint_spec *s, struct scep_endpoint_keys *k, char *err,
    size_t errlen)
{
    return scep_service_add_endpoint(f->svc, s, "test", k, err, errlen);
}

/* Mode of a file in the data dir (-1 when missing). */
static int
file_mode(struct fixture *f, const char *rel)
{
    char p[600];
    struct stat st;

    snprintf(p, sizeof(p), "%s/%s", f->dir, rel);
    if (stat(p, &st) != 0)
        return -1;
    return (int)(st.st_mode & 0777);
}

static int
nibble(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    fail_msg("not lower-case hex: %c", c);
    return 0;
}

static void
unhex(const char *hex, unsigned char *out, size_t n)
{
    size_t i;

    assert_int_equal(strlen(hex), 2 * n);
    for (i = 0; i < n; i++)
        out[i] = (unsigned char)(nibble(hex[2 * i]) << 4 | nibble(hex[2 * i + 1]));
}

static char *
describe(struct fixture *f, const char *name)
{
    char *json = NULL;

    assert_int_equal(scep_service_describe_endpoints(f->svc, name, &json), SCEP_OK);
    assert_non_null(json);
    return json;
}

static void
test_admin_add_endpoint_new_ca(void **state)
{
    struct fixture *f = *state;
    struct scep_endpoint_spec s;
    struct scep_endpoint_keys k;
    const struct scep_endpoint *ep, *dflt;
    unsigned char *secret;
    size_t slen = 0;
    char err[512], p[600], *json;

    scep_endpoint_spec_init(&s);
    snprintf(s.name, sizeof(s.name), "lab");
    snprintf(s.new_ca_subject, sizeof(s.new_ca_subject), "CN=Lab CA,O=Test");
    snprintf(s.new_ca_key, sizeof(s.new_ca_key), "ec:p256");
    snprintf(s.organization, sizeof(s.organization), "Test Org");
    s.validity_days = 90;
    assert_int_equal(add(f, &s, &k, err, sizeof(err)), SCEP_OK);
    assert_int_equal(strlen(k.challenge), SCEP_GENERATED_CHALLENGE_LEN);
    assert_string_equal(k.token_key, "");

    ep = scep_service_endpoint(f->svc, "lab", 3);
    dflt = scep_service_endpoint(f->svc, NULL, 0);
    assert_non_null(ep);
    assert_int_equal(ep->mode, SCEP_MODE_STATIC);
    assert_int_equal(ep->validity_days, 90);
    assert_int_equal(ep->enabled, 1);
    assert_int_equal(ep->max_outstanding, 10000);
    assert_int_equal(ep->challenge_ttl, 3600);
    assert_string_equal(ep->organization, "Test Org");
    assert_string_equal(ep->ca_name, "lab");
    assert_true(ep->ca_id != dflt->ca_id);
    /* the RA is the endpoint's own, issued by the new CA */
    assert_int_equal(X509_check_issued(ep->ca_cert, ep->ra_cert), X509_V_OK);
    assert_int_equal(X509_check_issued(dflt->ca_cert, ep->ra_cert) == X509_V_OK, 0);
    assert_int_equal(file_mode(f, "ca-lab.key"), 0600);
    assert_int_equal(file_mode(f, "ra-lab.key"), 0600);
    assert_true(file_mode(f, "ca-lab.crt") >= 0);
    assert_true(file_mode(f, "ra-lab.crt") >= 0);

    /* the challenge handed out is the one stored (as its HMAC) */
    snprintf(p, sizeof(p), "%s/%s", f->dir, SCEP_SECRET_FILE);
    secret = test_read_file(p, &slen);
    assert_true(ep->has_challenge_hash);
    assert_int_equal(
        scep_challenge_check(secret, slen, k.challenge, strlen(k.challenge), ep->challenge_hash),
        SCEP_OK);
    OPENSSL_clear_free(secret, slen);

    json = describe(f, "lab");
    assert_non_null(strstr(json, "\"url_path\":\"/scep/lab\""));
    assert_non_null(strstr(json, "\"ca\":\"lab\""));
    assert_non_null(strstr(json, "\"organization\":\"Test Org\""));
    assert_null(strstr(json, k.challenge));
    free(json);

    /* an endpoint named like an existing CA (a rollover's) gets another CA row name */
    assert_int_equal(scep_service_rollover(f->svc, NULL, 0, err, sizeof(err)), SCEP_OK);
    assert_true(scep_service_ca_by_name(f->svc, "default-g3", 10) != 0);
    scep_endpoint_spec_init(&s);
    snprintf(s.name, sizeof(s.name), "default-g3");
    snprintf(s.new_ca_subject, sizeof(s.new_ca_subject), "CN=Third CA");
    snprintf(s.new_ca_key, sizeof(s.new_ca_key), "ec:p256");
    assert_int_equal(add(f, &s, &k, err, sizeof(err)), SCEP_OK);
    ep = scep_service_endpoint(f->svc, "default-g3", 10);
    assert_non_null(ep);
    assert_string_equal(ep->ca_name, "default-g3-ca");
}

static void
test_admin_add_endpoint_default_ca(void **state)
{
    struct fixture *f = *state;
    struct scep_endpoint_spec s;
    struct scep_endpoint_keys k;
    const struct scep_endpoint *ep, *dflt;
    char err[512];

    spec_for(&s, "mdm", "signed");
    s.challenge_ttl = 600;
    snprintf(s.getcert_format, sizeof(s.getcert_format), "chain");
    assert_int_equal(add(f, &s, &k, err, sizeof(err)), SCEP_OK);
    assert_int_equal(strlen(k.token_key), 64);
    assert_string_equal(k.challenge, "");
    ep = scep_service_endpoint(f->svc, "mdm", 3);
    dflt = scep_service_endpoint(f->svc, NULL, 0);
    assert_non_null(ep);
    assert_int_equal(ep->ca_id, dflt->ca_id);
    assert_int_equal(ep->mode, SCEP_MODE_SIGNED);
    assert_int_equal(ep->challenge_ttl, 600);
    assert_int_equal(ep->getcert_chain, 1);
    assert_true(ep->has_mode_key);
    assert_int_equal(X509_check_issued(dflt->ca_cert, ep->ra_cert), X509_V_OK);
    assert_int_equal(file_mode(f, "secrets"), 0700);
    assert_int_equal(file_mode(f, "secrets/mdm.token"), 0600);
    assert_int_equal(file_mode(f, "ra-mdm.key"), 0600);
}

static void
expect_refusal(struct fixture *f, const struct scep_endpoint_spec *s, enum scep_err want,
               const char *in_message)
{
    struct scep_endpoint_keys k;
    char err[512];

    err[0] = '\0';
    assert_int_equal(add(f, s, &k, err, sizeof(err)), want);
    if (in_message != NULL && strstr(err, in_message) == NULL)
        fail_msg("message \"%s\" lacks \"%s\"", err, in_message);
    assert_true(err[0] != '\0');
    assert_string_equal(k.challenge, "");
    assert_string_equal(k.token_key, "");
}

static void
test_admin_add_endpoint_refusals(void **state)
{
    struct fixture *f = *state;
    struct scep_endpoint_spec s;
    struct scep_endpoint_keys k;
    const char *bad_names[] = {"", "Lab", "crl", "a/b", "../x", ".hidden", "a b", "-x"};
    const char *longest = "abcdefghij0123456789abcdefghij0123456789abcdefghij0123456789xyz";
    char err[512];
    size_t i;

    for (i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
        spec_for(&s, bad_names[i], NULL);
        expect_refusal(f, &s, SCEP_E_INVALID_ARG, "endpoint name");
    }
    /* 64 characters do not fit; 63 do (and make a valid RA subject) */
    spec_for(&s, "x", NULL);
    memset(s.name, 'a', sizeof(s.name));
    expect_refusal(f, &s, SCEP_E_INVALID_ARG, "over its size");
    assert_int_equal(strlen(longest), 63);
    spec_for(&s, longest, NULL);
    assert_int_equal(add(f, &s, &k, err, sizeof(err)), SCEP_OK);
    assert_non_null(scep_service_endpoint(f->svc, longest, 63));
    spec_for(&s, "default", NULL);
    expect_refusal(f, &s, SCEP_E_EXISTS, "exists");

    spec_for(&s, "x1", "foo");
    expect_refusal(f, &s, SCEP_E_INVALID_ARG,
                   "--mode foo: use static, account, one-time, signed, webhook or intune");
    spec_for(&s, "x1", "intune");
    snprintf(s.approval, sizeof(s.approval), "manual");
    snprintf(s.intune_tenant, sizeof(s.intune_tenant), "contoso.onmicrosoft.com");
    snprintf(s.intune_app_id, sizeof(s.intune_app_id), "app");
    snprintf(s.intune_app_key, sizeof(s.intune_app_key), "key");
    expect_refusal(f, &s, SCEP_E_INVALID_ARG, "does not go with mode intune");
    spec_for(&s, "x1", "webhook");
    expect_refusal(f, &s, SCEP_E_INVALID_ARG, "--webhook-url");
    spec_for(&s, "x1", "webhook");
    snprintf(s.webhook_url, sizeof(s.webhook_url), "ftp://example.com/");
    expect_refusal(f, &s, SCEP_E_INVALID_ARG, "--webhook-url");
    spec_for(&s, "x1", "intune");
    snprintf(s.intune_tenant, sizeof(s.intune_tenant), "contoso.onmicrosoft.com");
    expect_refusal(f, &s, SCEP_E_INVALID_ARG, "--intune-app-key");
    spec_for(&s, "x1", "static");
    snprintf(s.webhook_url, sizeof(s.webhook_url), "https://example.com/");
    expect_refusal(f, &s, SCEP_E_INVALID_ARG, "mode webhook");
    spec_for(&s, "x1", NULL);
    s.validity_days = 0;
    expect_refusal(f, &s, SCEP_E_INVALID_ARG, "--validity 0");
    spec_for(&s, "x1", NULL);
    s.challenge_ttl = 5;
    expect_refusal(f, &s, SCEP_E_INVALID_ARG, "--challenge-ttl");
    spec_for(&s, "x1", NULL);
    snprintf(s.challenge, sizeof(s.challenge), "short");
    expect_refusal(f, &s, SCEP_E_INVALID_ARG, "--challenge");
    spec_for(&s, "x1", NULL);
    snprintf(s.getcacert_format, sizeof(s.getcacert_format), "both");
    expect_refusal(f, &s, SCEP_E_INVALID_ARG, "--getcacert both");
    spec_for(&s, "x1", NULL);
    snprintf(s.profile, sizeof(s.profile), "nosuch");
    expect_refusal(f, &s, SCEP_E_INVALID_ARG, "--profile nosuch");
    spec_for(&s, "x1", NULL);
    snprintf(s.notify_url, sizeof(s.notify_url), "mailto:ops@example.com");
    expect_refusal(f, &s, SCEP_E_INVALID_ARG, "--notify-url");
    spec_for(&s, "x1", NULL);
    snprintf(s.ca, sizeof(s.ca), "nosuch");
    expect_refusal(f, &s, SCEP_E_INVALID_ARG, "--ca nosuch");
    spec_for(&s, "x1", NULL);
    s.ca[0] = '\0';
    snprintf(s.new_ca_subject, sizeof(s.new_ca_subject), "CN=x");
    snprintf(s.new_ca_key, sizeof(s.new_ca_key), "dsa:1024");
    expect_refusal(f, &s, SCEP_E_INVALID_ARG, "--ca-key dsa:1024");
    /* nothing of the refused endpoints was left behind */
    assert_null(scep_service_endpoint(f->svc, "x1", 2));
    assert_int_equal(file_mode(f, "ra-x1.key"), -1);
    assert_int_equal(file_mode(f, "ca-x1.key"), -1);
}

static void
test_admin_update_endpoint_fixed_fields(void **state)
{
    struct fixture *f = *state;
    struct scep_endpoint_spec s;
    struct scep_endpoint_keys k;
    const struct scep_endpoint *ep;
    char err[512];

    scep_endpoint_spec_init(&s);
    snprintf(s.name, sizeof(s.name), "default");
    snprintf(s.organization, sizeof(s.organization), "Other");
    assert_int_equal(scep_service_update_endpoint(f->svc, &s, "test", &k, err, sizeof(err)),
                     SCEP_E_INVALID_ARG);
    assert_non_null(strstr(err, "fixed once created"));
    scep_endpoint_spec_init(&s);
    snprintf(s.name, sizeof(s.name), "default");
    snprintf(s.department, sizeof(s.department), "IT");
    assert_int_equal(scep_service_update_endpoint(f->svc, &s, "test", &k, err, sizeof(err)),
                     SCEP_E_INVALID_ARG);
    assert_non_null(strstr(err, "fixed once created"));
    scep_endpoint_spec_init(&s);
    snprintf(s.name, sizeof(s.name), "default");
    snprintf(s.new_ca_subject, sizeof(s.new_ca_subject), "CN=new");
    assert_int_equal(scep_service_update_endpoint(f->svc, &s, "test", &k, err, sizeof(err)),
                     SCEP_E_INVALID_ARG);
    assert_non_null(strstr(err, "CA cannot be changed"));
    scep_endpoint_spec_init(&s);
    snprintf(s.name, sizeof(s.name), "nosuch");
    assert_int_equal(scep_service_update_endpoint(f->svc, &s, "test", &k, err, sizeof(err)),
                     SCEP_E_NO_ENTRY);

    /* given fields change, the others stay (the challenge too) */
    ep = scep_service_endpoint(f->svc, NULL, 0);
    assert_true(ep->has_challenge_hash);
    scep_endpoint_spec_init(&s);
    snprintf(s.name, sizeof(s.name), "default");
    s.validity_days = 30;
    snprintf(s.ca, sizeof(s.ca), "default"); /* the same CA is no change */
    assert_int_equal(scep_service_update_endpoint(f->svc, &s, "test", &k, err, sizeof(err)),
                     SCEP_OK);
    assert_string_equal(k.challenge, "");
    f->ep = scep_service_endpoint(f->svc, NULL, 0);
    assert_int_equal(f->ep->validity_days, 30);
    assert_int_equal(f->ep->mode, SCEP_MODE_STATIC);
    assert_true(f->ep->has_challenge_hash);
    assert_memory_equal(f->ep->challenge_hash, ep->challenge_hash, 32);

    /* disable and enable */
    assert_int_equal(scep_service_enable_endpoint(f->svc, "default", 0, "test", err, sizeof(err)),
                     SCEP_OK);
    assert_int_equal(scep_service_endpoint(f->svc, NULL, 0)->enabled, 0);
    assert_int_equal(scep_service_enable_endpoint(f->svc, "default", 1, "test", err, sizeof(err)),
                     SCEP_OK);
    assert_int_equal(scep_service_endpoint(f->svc, NULL, 0)->enabled, 1);
    assert_int_equal(scep_service_enable_endpoint(f->svc, "nosuch", 0, "test", err, sizeof(err)),
                     SCEP_E_NO_ENTRY);
    f->ep = scep_service_endpoint(f->svc, NULL, 0);
}

static void
test_admin_describe_no_secrets(void **state)
{
    struct fixture *f = *state;
    struct scep_endpoint_spec s;
    struct scep_endpoint_keys hook, tune, stat;
    char err[512], *json;

    spec_for(&s, "hook", "webhook");
    snprintf(s.webhook_url, sizeof(s.webhook_url), "https://validator.example.com/scep");
    snprintf(s.webhook_bearer, sizeof(s.webhook_bearer), "bearer-secret-xyz-123");
    snprintf(s.approval, sizeof(s.approval), "manual");
    snprintf(s.notify_url, sizeof(s.notify_url), "https://events.example.com/in");
    assert_int_equal(add(f, &s, &hook, err, sizeof(err)), SCEP_OK);
    assert_int_equal(strlen(hook.webhook_key), 64);
    assert_int_equal(strlen(hook.notify_key), 64);

    spec_for(&s, "tune", "intune");
    snprintf(s.intune_tenant, sizeof(s.intune_tenant), "contoso.onmicrosoft.com");
    snprintf(s.intune_app_id, sizeof(s.intune_app_id), "11111111-2222-3333-4444-555555555555");
    snprintf(s.intune_app_key, sizeof(s.intune_app_key), "intune-app-secret-abc-987");
    assert_int_equal(add(f, &s, &tune, err, sizeof(err)), SCEP_OK);

    spec_for(&s, "stat", "static");
    assert_int_equal(add(f, &s, &stat, err, sizeof(err)), SCEP_OK);
    assert_int_equal(strlen(stat.challenge), SCEP_GENERATED_CHALLENGE_LEN);

    assert_int_equal(file_mode(f, "secrets/hook.webhook"), 0600);
    assert_int_equal(file_mode(f, "secrets/hook.bearer"), 0600);
    assert_int_equal(file_mode(f, "secrets/hook.notify"), 0600);
    assert_int_equal(file_mode(f, "secrets/tune.intune"), 0600);
    assert_non_null(scep_service_endpoint(f->svc, "tune", 4));
    assert_non_null(scep_service_endpoint(f->svc, "tune", 4)->intune);

    json = describe(f, NULL);
    assert_non_null(strstr(json, "\"webhook_url\":\"https://validator.example.com/scep\""));
    assert_non_null(strstr(json, "\"tenant\":\"contoso.onmicrosoft.com\""));
    assert_non_null(strstr(json, "\"approval\":\"manual\""));
    assert_null(strstr(json, "bearer-secret-xyz-123"));
    assert_null(strstr(json, "intune-app-secret-abc-987"));
    assert_null(strstr(json, hook.webhook_key));
    assert_null(strstr(json, hook.notify_key));
    assert_null(strstr(json, stat.challenge));
    assert_null(strstr(json, TEST_CHALLENGE));
    free(json);
    /* nor the audit trail */
    assert_int_equal(scep_service_describe_audit(f->svc, 0, &json), SCEP_OK);
    assert_null(strstr(json, "bearer-secret-xyz-123"));
    assert_null(strstr(json, "intune-app-secret-abc-987"));
    assert_null(strstr(json, stat.challenge));
    free(json);

    /* rotate: new keys, the files stay 0600 */
    scep_endpoint_spec_init(&s);
    snprintf(s.name, sizeof(s.name), "hook");
    s.rotate_key = 1;
    assert_int_equal(scep_service_update_endpoint(f->svc, &s, "test", &tune, err, sizeof(err)),
                     SCEP_OK);
    assert_int_equal(strlen(tune.webhook_key), 64);
    assert_string_not_equal(tune.webhook_key, hook.webhook_key);
    assert_string_not_equal(tune.notify_key, hook.notify_key);
    assert_int_equal(file_mode(f, "secrets/hook.webhook"), 0600);

    /* to static: a challenge is made, the webhook's secrets go; manual approval stays allowed */
    scep_endpoint_spec_init(&s);
    snprintf(s.name, sizeof(s.name), "hook");
    snprintf(s.mode, sizeof(s.mode), "static");
    assert_int_equal(scep_service_update_endpoint(f->svc, &s, "test", &hook, err, sizeof(err)),
                     SCEP_OK);
    assert_int_equal(strlen(hook.challenge), SCEP_GENERATED_CHALLENGE_LEN);
    assert_int_equal(file_mode(f, "secrets/hook.webhook"), -1);
    assert_int_equal(file_mode(f, "secrets/hook.bearer"), -1);
    assert_int_equal(file_mode(f, "secrets/hook.notify"), 0600);
    /* to account with manual approval: allowed (a parked request keeps its account) */
    snprintf(s.mode, sizeof(s.mode), "account");
    assert_int_equal(scep_service_update_endpoint(f->svc, &s, "test", &hook, err, sizeof(err)),
                     SCEP_OK);
}

static void
test_admin_accounts(void **state)
{
    struct fixture *f = *state;
    struct scep_endpoint_spec s;
    struct scep_endpoint_keys k;
    struct scep_account_row a;
    struct scep_store *st = scep_service_store(f->svc);
    const struct scep_endpoint *ep;
    unsigned char h[32];
    char err[512], code[128], code2[128], *json;

    /* not on a static endpoint */
    assert_int_equal(scep_service_add_account(f->svc, "default", "alice", "", "", NULL, 0, NULL,
                                              "test", code, sizeof(code), err, sizeof(err)),
                     SCEP_E_INVALID_ARG);
    assert_non_null(strstr(err, "mode account"));

    spec_for(&s, "acct", "account");
    assert_int_equal(add(f, &s, &k, err, sizeof(err)), SCEP_OK);
    ep = scep_service_endpoint(f->svc, "acct", 4);
    assert_non_null(ep);

    assert_int_equal(scep_service_add_account(f->svc, "acct", "alice", "Acme", "IT", NULL, 30, NULL,
                                              "test", code, sizeof(code), err, sizeof(err)),
                     SCEP_OK);
    assert_int_equal(strlen(code), 24);
    assert_int_equal(svc_code_hash(f->svc, "account", code, strlen(code), h), SCEP_OK);
    assert_int_equal(scep_store_find_account(st, h, &a), SCEP_OK);
    assert_string_equal(a.name, "alice");
    assert_string_equal(a.organization, "Acme");
    assert_int_equal(a.validity_days, 30);
    assert_int_equal(a.enabled, 1);

    /* duplicate name; a code already in use */
    assert_int_equal(scep_service_add_account(f->svc, "acct", "alice", "", "", NULL, 0, NULL,
                                              "test", code2, sizeof(code2), err, sizeof(err)),
                     SCEP_E_CONFLICT);
    assert_non_null(strstr(err, "name taken or code already in use"));
    assert_string_equal(code2, "");
    assert_int_equal(scep_service_add_account(f->svc, "acct", "bob", "", "", NULL, 0, code, "test",
                                              code2, sizeof(code2), err, sizeof(err)),
                     SCEP_E_CONFLICT);
    /* bad values */
    assert_int_equal(scep_service_add_account(f->svc, "acct", "bob", "", "", NULL, 0, "short",
                                              "test", code2, sizeof(code2), err, sizeof(err)),
                     SCEP_E_INVALID_ARG);
    assert_non_null(strstr(err, "--code"));
    assert_int_equal(scep_service_add_account(f->svc, "acct", "bad name", "", "", NULL, 0, NULL,
                                              "test", code2, sizeof(code2), err, sizeof(err)),
                     SCEP_E_INVALID_ARG);
    assert_int_equal(scep_service_add_account(f->svc, "acct", "bob", "", "", "nosuch", 0, NULL,
                                              "test", code2, sizeof(code2), err, sizeof(err)),
                     SCEP_E_INVALID_ARG);
    assert_non_null(strstr(err, "--profile nosuch"));
    assert_int_equal(scep_service_add_account(f->svc, "acct", "bob", "", "", NULL, 40000, NULL,
                                              "test", code2, sizeof(code2), err, sizeof(err)),
                     SCEP_E_INVALID_ARG);
    /* a code given */
    assert_int_equal(scep_service_add_account(f->svc, "acct", "bob@example.com", "", "", NULL, 0,
                                              "bobs-own-code-0001", "test", code2, sizeof(code2),
                                              err, sizeof(err)),
                     SCEP_OK);
    assert_string_equal(code2, "bobs-own-code-0001");

    /* rotate: the old code no longer finds it, the new one does */
    assert_int_equal(scep_service_account_op(f->svc, "acct", "alice", "rotate-code", "test", code2,
                                             sizeof(code2), err, sizeof(err)),
                     SCEP_OK);
    assert_int_equal(strlen(code2), 24);
    assert_string_not_equal(code, code2);
    assert_int_equal(scep_store_find_account(st, h, &a), SCEP_E_NO_ENTRY);
    assert_int_equal(svc_code_hash(f->svc, "account", code2, strlen(code2), h), SCEP_OK);
    assert_int_equal(scep_store_find_account(st, h, &a), SCEP_OK);
    assert_string_equal(a.name, "alice");

    /* disable */
    assert_int_equal(scep_service_account_op(f->svc, "acct", "alice", "disable", "test", NULL, 0,
                                             err, sizeof(err)),
                     SCEP_OK);
    assert_int_equal(scep_store_find_account(st, h, &a), SCEP_OK);
    assert_int_equal(a.enabled, 0);
    assert_int_equal(scep_service_account_op(f->svc, "acct", "alice", "explode", "test", NULL, 0,
                                             err, sizeof(err)),
                     SCEP_E_INVALID_ARG);
    assert_non_null(strstr(err, "disable, enable or rotate-code"));
    assert_int_equal(scep_service_account_op(f->svc, "acct", "carol", "disable", "test", NULL, 0,
                                             err, sizeof(err)),
                     SCEP_E_NO_ENTRY);

    assert_int_equal(scep_service_describe_accounts(f->svc, "acct", &json), SCEP_OK);
    assert_non_null(strstr(json, "\"name\":\"alice\""));
    assert_non_null(strstr(json, "\"enabled\":false"));
    assert_non_null(strstr(json, "\"name\":\"bob@example.com\""));
    assert_null(strstr(json, code2));
    assert_null(strstr(json, "bobs-own-code-0001"));
    free(json);
}

static void
test_admin_new_challenge_cap(void **state)
{
    struct fixture *f = *state;
    struct scep_endpoint_spec s;
    struct scep_endpoint_keys k;
    char err[512], c1[64], c2[64], c3[64], *json;

    assert_int_equal(scep_service_new_challenge(f->svc, "default", 0, NULL, NULL, NULL, NULL,
                                                "test", c1, sizeof(c1), err, sizeof(err)),
                     SCEP_E_INVALID_ARG);
    assert_non_null(strstr(err, "one-time"));

    spec_for(&s, "otc", "one-time");
    s.max_outstanding = 2;
    assert_int_equal(add(f, &s, &k, err, sizeof(err)), SCEP_OK);
    assert_int_equal(scep_service_new_challenge(f->svc, "otc", 0, "CN=dev1,O=Acme",
                                                "DNS:dev1.example.com,IP:10.0.0.1", "device-1",
                                                "S-1-5-21-1-2-3-1001", "test", c1, sizeof(c1), err,
                                                sizeof(err)),
                     SCEP_OK);
    assert_int_equal(strlen(c1), 32);
    /* refusals name the field */
    assert_int_equal(scep_service_new_challenge(f->svc, "otc", 10, NULL, NULL, NULL, NULL, "test",
                                                c2, sizeof(c2), err, sizeof(err)),
                     SCEP_E_INVALID_ARG);
    assert_non_null(strstr(err, "--ttl 10"));
    assert_int_equal(scep_service_new_challenge(f->svc, "otc", 0, NULL, "FOO:x", NULL, NULL, "test",
                                                c2, sizeof(c2), err, sizeof(err)),
                     SCEP_E_INVALID_ARG);
    assert_non_null(strstr(err, "--san"));
    assert_int_equal(scep_service_new_challenge(f->svc, "otc", 0, NULL, NULL, NULL, "S-1-x", "test",
                                                c2, sizeof(c2), err, sizeof(err)),
                     SCEP_E_INVALID_ARG);
    assert_non_null(strstr(err, "--sid"));
    assert_int_equal(scep_service_new_challenge(f->svc, "otc", 0, "not a dn", NULL, NULL, NULL,
                                                "test", c2, sizeof(c2), err, sizeof(err)),
                     SCEP_E_INVALID_ARG);
    assert_non_null(strstr(err, "--subject"));

    assert_int_equal(scep_service_new_challenge(f->svc, "otc", 120, NULL, NULL, NULL, NULL, "test",
                                                c2, sizeof(c2), err, sizeof(err)),
                     SCEP_OK);
    assert_int_equal(scep_service_new_challenge(f->svc, "otc", 0, NULL, NULL, NULL, NULL, "test",
                                                c3, sizeof(c3), err, sizeof(err)),
                     SCEP_E_CHALLENGE_CAP);
    assert_non_null(
        strstr(err, "endpoint otc has 2 outstanding one-time challenges (its cap); use some, let "
                    "them expire or raise --max-outstanding"));
    assert_string_equal(c3, "");

    assert_int_equal(scep_service_describe_challenges(f->svc, "otc", &json), SCEP_OK);
    assert_non_null(strstr(json, "\"state\":\"open\""));
    assert_non_null(strstr(json, "\"subject\":\"CN=dev1,O=Acme\""));
    assert_non_null(strstr(json, "\"sid\":\"S-1-5-21-1-2-3-1001\""));
    assert_null(strstr(json, c1));
    assert_null(strstr(json, c2));
    free(json);
    assert_int_equal(scep_service_describe_challenges(f->svc, "nosuch", &json), SCEP_E_NO_ENTRY);
}

static void
test_admin_sign_token_verifies(void **state)
{
    struct fixture *f = *state;
    struct scep_endpoint_spec s;
    struct scep_endpoint_keys k;
    struct scep_token tok;
    unsigned char key[32];
    char err[512], out[SCEP_TOKEN_MAX + 1];
    int64_t now = (int64_t)time(NULL);

    assert_int_equal(scep_service_sign_token(f->svc, "default", 0, NULL, NULL, NULL, NULL, NULL,
                                             "test", out, sizeof(out), err, sizeof(err)),
                     SCEP_E_INVALID_ARG);
    spec_for(&s, "tok", "signed");
    assert_int_equal(add(f, &s, &k, err, sizeof(err)), SCEP_OK);
    unhex(k.token_key, key, sizeof(key));

    assert_int_equal(scep_service_sign_token(f->svc, "tok", 0, "CN=dev1",
                                             "DNS:dev1.example.com, DNS:dev1", "clientAuth",
                                             "device-9", "S-1-5-21-9-9-9-500", "test", out,
                                             sizeof(out), err, sizeof(err)),
                     SCEP_OK);
    assert_true(scep_token_is(out, strlen(out)));
    assert_int_equal(scep_token_verify(key, sizeof(key), out, strlen(out), now, &tok), SCEP_OK);
    assert_string_equal(tok.endpoint, "tok");
    assert_string_equal(tok.subject, "CN=dev1");
    assert_int_equal(tok.nsans, 2);
    assert_string_equal(tok.sans[0], "DNS:dev1.example.com");
    assert_string_equal(tok.sans[1], "DNS:dev1");
    assert_string_equal(tok.eku, "clientAuth");
    assert_string_equal(tok.device, "device-9");
    assert_string_equal(tok.sid, "S-1-5-21-9-9-9-500");
    assert_true(tok.expires >= now + 3600 && tok.expires <= now + 3610);
    /* after a rotation the old key no longer verifies new tokens */
    scep_endpoint_spec_init(&s);
    snprintf(s.name, sizeof(s.name), "tok");
    s.rotate_key = 1;
    assert_int_equal(scep_service_update_endpoint(f->svc, &s, "test", &k, err, sizeof(err)),
                     SCEP_OK);
    assert_int_equal(scep_service_sign_token(f->svc, "tok", 300, NULL, NULL, NULL, NULL, NULL,
                                             "test", out, sizeof(out), err, sizeof(err)),
                     SCEP_OK);
    assert_int_equal(scep_token_verify(key, sizeof(key), out, strlen(out), now, &tok),
                     SCEP_E_TOKEN);
    unhex(k.token_key, key, sizeof(key));
    assert_int_equal(scep_token_verify(key, sizeof(key), out, strlen(out), now, &tok), SCEP_OK);
    OPENSSL_cleanse(key, sizeof(key));
}

static int
profile_cb(void *arg, const struct scep_profile_row *p)
{
    if (strcmp(p->name, "vpn") == 0)
        *(struct scep_profile_row *)arg = *p;
    return 0;
}

static void
test_admin_update_profile(void **state)
{
    struct fixture *f = *state;
    struct scep_profile_row p, got;
    int64_t id;
    char err[512];

    scep_policy_default_profile(&p);
    snprintf(p.name, sizeof(p.name), "vpn");
    p.validity_days = 100;
    assert_int_equal(scep_service_update_profile(f->svc, &p, "test", err, sizeof(err)), SCEP_OK);
    memset(&got, 0, sizeof(got));
    assert_int_equal(scep_service_each_profile(f->svc, profile_cb, &got), SCEP_OK);
    assert_int_equal(got.validity_days, 100);
    id = got.id;
    p.validity_days = 200;
    assert_int_equal(scep_service_update_profile(f->svc, &p, "test", err, sizeof(err)), SCEP_OK);
    assert_int_equal(scep_service_each_profile(f->svc, profile_cb, &got), SCEP_OK);
    assert_int_equal(got.validity_days, 200);
    assert_int_equal(got.id, id);
    snprintf(p.key_types, sizeof(p.key_types), "dsa:1024");
    assert_int_equal(scep_service_update_profile(f->svc, &p, "test", err, sizeof(err)),
                     SCEP_E_INVALID_ARG);
    assert_non_null(strstr(err, "key-types"));
}

static void
test_admin_audit_rows(void **state)
{
    struct fixture *f = *state;
    struct scep_endpoint_spec s;
    struct scep_endpoint_keys k;
    struct scep_profile_row p;
    char err[512], out[SCEP_TOKEN_MAX + 1], *json;
    static const char *const actions[] = {
        "\"action\":\"endpoint.add\"",        "\"action\":\"endpoint.update\"",
        "\"action\":\"endpoint.disable\"",    "\"action\":\"endpoint.enable\"",
        "\"action\":\"account.add\"",         "\"action\":\"account.disable\"",
        "\"action\":\"account.rotate-code\"", "\"action\":\"challenge.new\"",
        "\"action\":\"token.sign\"",          "\"action\":\"profile.add\"",
    };
    size_t i;

    spec_for(&s, "a", "account");
    assert_int_equal(add(f, &s, &k, err, sizeof(err)), SCEP_OK);
    spec_for(&s, "o", "one-time");
    assert_int_equal(add(f, &s, &k, err, sizeof(err)), SCEP_OK);
    spec_for(&s, "t", "signed");
    assert_int_equal(add(f, &s, &k, err, sizeof(err)), SCEP_OK);
    scep_endpoint_spec_init(&s);
    snprintf(s.name, sizeof(s.name), "t");
    s.challenge_ttl = 900;
    assert_int_equal(scep_service_update_endpoint(f->svc, &s, "alice", &k, err, sizeof(err)),
                     SCEP_OK);
    assert_int_equal(scep_service_enable_endpoint(f->svc, "t", 0, "test", err, sizeof(err)),
                     SCEP_OK);
    assert_int_equal(scep_service_enable_endpoint(f->svc, "t", 1, "test", err, sizeof(err)),
                     SCEP_OK);
    assert_int_equal(scep_service_add_account(f->svc, "a", "u1", "", "", NULL, 0, NULL, "test", out,
                                              sizeof(out), err, sizeof(err)),
                     SCEP_OK);
    assert_int_equal(
        scep_service_account_op(f->svc, "a", "u1", "disable", "test", NULL, 0, err, sizeof(err)),
        SCEP_OK);
    assert_int_equal(scep_service_account_op(f->svc, "a", "u1", "rotate-code", "test", out,
                                             sizeof(out), err, sizeof(err)),
                     SCEP_OK);
    assert_int_equal(scep_service_new_challenge(f->svc, "o", 0, NULL, NULL, NULL, NULL, "test", out,
                                                sizeof(out), err, sizeof(err)),
                     SCEP_OK);
    assert_int_equal(scep_service_sign_token(f->svc, "t", 0, NULL, NULL, NULL, NULL, NULL, "test",
                                             out, sizeof(out), err, sizeof(err)),
                     SCEP_OK);
    scep_policy_default_profile(&p);
    snprintf(p.name, sizeof(p.name), "p1");
    p.validity_days = 10;
    assert_int_equal(scep_service_update_profile(f->svc, &p, "test", err, sizeof(err)), SCEP_OK);

    assert_int_equal(scep_service_describe_audit(f->svc, 100, &json), SCEP_OK);
    for (i = 0; i < sizeof(actions) / sizeof(actions[0]); i++)
        if (strstr(json, actions[i]) == NULL)
            fail_msg("audit lacks %s: %s", actions[i], json);
    assert_non_null(strstr(json, "\"actor\":\"alice\""));
    assert_non_null(strstr(json, "\"outcome\":\"ok\""));
    free(json);
}

static void
test_admin_deliver_events_failure_backs_off(void **state)
{
    struct fixture *f = *state;
    struct scep_endpoint_spec s;
    struct scep_endpoint_keys k;
    struct test_req t;
    struct scep_result r;
    char err[512], *json;

    /* events go to a port nobody listens on */
    scep_endpoint_spec_init(&s);
    snprintf(s.name, sizeof(s.name), "default");
    snprintf(s.notify_url, sizeof(s.notify_url), "http://127.0.0.1:9/events");
    assert_int_equal(scep_service_update_endpoint(f->svc, &s, "test", &k, err, sizeof(err)),
                     SCEP_OK);
    assert_int_equal(strlen(k.notify_key), 64);
    f->ep = scep_service_endpoint(f->svc, NULL, 0);
    assert_true(f->ep->has_notify_key);

    test_req_make(&t, f, test_key(0), test_key(0), "CN=evented", TEST_CHALLENGE);
    test_run(f, t.der, t.der_len, &r);
    assert_int_equal(r.err, SCEP_OK);
    scep_result_clear(&r);
    test_req_clear(&t);

    assert_int_equal(scep_service_describe_events(f->svc, "pending", 10, &json), SCEP_OK);
    assert_non_null(strstr(json, "\"kind\":\"success\""));
    assert_non_null(strstr(json, "\"attempts\":0"));
    free(json);
    assert_int_equal(scep_service_deliver_events(f->svc, 10), 0);
    assert_int_equal(scep_service_describe_events(f->svc, NULL, 10, &json), SCEP_OK);
    assert_non_null(strstr(json, "\"status\":\"pending\""));
    assert_non_null(strstr(json, "\"attempts\":1"));
    assert_null(strstr(json, "\"last_error\":\"\""));
    assert_non_null(strstr(json, "\"payload\":{"));
    free(json);
    /* not due again before its backoff (30 s) */
    assert_int_equal(scep_service_deliver_events(f->svc, 10), 0);
    assert_int_equal(scep_service_describe_events(f->svc, NULL, 10, &json), SCEP_OK);
    assert_non_null(strstr(json, "\"attempts\":1"));
    free(json);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_admin_add_endpoint_new_ca, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_admin_add_endpoint_default_ca, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_admin_add_endpoint_refusals, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_admin_update_endpoint_fixed_fields, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_admin_describe_no_secrets, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_admin_accounts, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_admin_new_challenge_cap, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_admin_sign_token_verifies, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_admin_update_profile, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_admin_audit_rows, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_admin_deliver_events_failure_backs_off, fixture_setup,
                                        fixture_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
