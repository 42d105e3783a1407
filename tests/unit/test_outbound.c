/*
 * test_outbound.c - the outbound HTTP of scepd (httpc, webhook, intune)
 * against the stand-ins in tests/stubs (SCEPD_TEST_STUBS): every way a
 * validator can fail must fail closed, and what reaches the wire must be
 * the contract (Intune: Microsoft's CsrValidation libraries).
 */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/ec.h>
#include <openssl/x509.h>

#include "scepd/httpc.h"
#include "scepd/intune.h"
#include "scepd/log.h"
#include "scepd/num.h"
#include "scepd/query.h"
#include "scepd/webhook.h"

#define HMAC_KEY_HEX "00112233445566778899aabbccddeeff0123456789abcdef"
#define BEARER "webhook-bearer-1"
#define APP_ID "11111111-2222-3333-4444-555555555555"
#define APP_KEY "s3cr3t~AppKey.value"
#define TENANT "contoso.onmicrosoft.com"
#define PROVIDER "scepd-test/1.0"

static char tmpdir[256];

struct stub {
    pid_t pid;
    int port;
    char record[320];
};

/* Stubs still running, killed by the group teardown when a test failed midway. */
#define MAX_LIVE 8
static pid_t live[MAX_LIVE];

/* ---- helpers ---------------------------------------------------------- */

static void
tmp_path(char *dst, size_t len, const char *name)
{
    int n = snprintf(dst, len, "%s/%s", tmpdir, name);
    assert_true(n > 0 && (size_t)n < len);
}

/*
 * Starts python3 <stubs>/<script> --port 0 --record <record> <args...>
 * and reads its "PORT <n>" line.
 */
static void
stub_start(struct stub *s, const char *script, const char *record_name, const char *const *args)
{
    const char *dir = getenv("SCEPD_TEST_STUBS");
    char path[512], line[64];
    const char *argv[40];
    int fds[2], n = 0, i;
    size_t got = 0;
    long long port = 0;
    struct pollfd pfd;

    assert_non_null(dir);
    snprintf(path, sizeof(path), "%s/%s", dir, script);
    tmp_path(s->record, sizeof(s->record), record_name);
    unlink(s->record);
    argv[n++] = "python3";
    argv[n++] = path;
    argv[n++] = "--port";
    argv[n++] = "0";
    argv[n++] = "--record";
    argv[n++] = s->record;
    for (i = 0; args != NULL && args[i] != NULL && n < 38; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    assert_int_equal(pipe(fds), 0);
    s->pid = fork();
    assert_true(s->pid >= 0);
    if (s->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM); /* no orphan when the test dies */
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execvp("python3", (char *const *)(uintptr_t)argv);
        _exit(127);
    }
    close(fds[1]);
    for (i = 0; i < MAX_LIVE; i++)
        if (live[i] == 0) {
            live[i] = s->pid;
            break;
        }
    /* one line, "PORT <n>\n", within 20 s */
    while (got + 1 < sizeof(line)) {
        ssize_t r;
        pfd.fd = fds[0];
        pfd.events = POLLIN;
        assert_true(poll(&pfd, 1, 20000) == 1);
        r = read(fds[0], line + got, 1);
        assert_true(r == 1);
        if (line[got] == '\n')
            break;
        got++;
    }
    line[got] = '\0';
    close(fds[0]);
    assert_memory_equal(line, "PORT ", 5);
    assert_int_equal(scep_strtonum(line + 5, 1, 65535, &port), SCEP_OK);
    s->port = (int)port;
}

static void
stub_stop(struct stub *s)
{
    int st;

    int i;

    if (s->pid > 0) {
        kill(s->pid, SIGTERM);
        waitpid(s->pid, &st, 0);
        for (i = 0; i < MAX_LIVE; i++)
            if (live[i] == s->pid)
                live[i] = 0;
        s->pid = 0;
    }
}

/* The stub's record file as a JSON array of its lines. */
static json_t *
records(const struct stub *s)
{
    static char line[256 * 1024];
    json_t *arr = json_array(), *j;
    FILE *f = fopen(s->record, "r");

    assert_non_null(arr);
    if (f == NULL)
        return arr;
    while (fgets(line, sizeof(line), f) != NULL) {
        j = json_loads(line, 0, NULL);
        assert_non_null(j);
        json_array_append_new(arr, j);
    }
    fclose(f);
    return arr;
}

/* Number of records whose key equals value. */
static size_t
count_where(json_t *recs, const char *key, const char *value)
{
    size_t i, n = 0;
    json_t *r;

    json_array_foreach(recs, i, r)
    {
        const char *v = json_string_value(json_object_get(r, key));
        if (v != NULL && strcmp(v, value) == 0)
            n++;
    }
    return n;
}

/* The last record whose key equals value; borrowed from recs. */
static json_t *
last_where(json_t *recs, const char *key, const char *value)
{
    size_t i;
    json_t *r, *found = NULL;

    json_array_foreach(recs, i, r)
    {
        const char *v = json_string_value(json_object_get(r, key));
        if (v != NULL && strcmp(v, value) == 0)
            found = r;
    }
    assert_non_null(found);
    return found;
}

static const char *
str_at(json_t *o, const char *a, const char *b)
{
    json_t *x = json_object_get(o, a);
    if (b != NULL)
        x = json_object_get(x, b);
    assert_true(json_is_string(x));
    return json_string_value(x);
}

/* A DER PKCS#10 with subject CN=cn (P-256 key), malloc'ed. */
static unsigned char *
make_csr(const char *cn, size_t *len)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509_REQ *r = X509_REQ_new();
    X509_NAME *nm;
    unsigned char *der = NULL;
    int n;

    assert_non_null(k);
    assert_non_null(r);
    nm = X509_REQ_get_subject_name(r);
    assert_int_equal(
        X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0),
        1);
    assert_int_equal(X509_REQ_set_pubkey(r, k), 1);
    assert_true(X509_REQ_sign(r, k, EVP_sha256()) > 0);
    n = i2d_X509_REQ(r, &der);
    assert_true(n > 0);
    *len = (size_t)n;
    X509_REQ_free(r);
    EVP_PKEY_free(k);
    return der;
}

static char *
csr_b64(const char *cn)
{
    size_t len;
    unsigned char *der = make_csr(cn, &len);
    char *b64 = NULL;

    assert_int_equal(scep_b64_encode(der, len, &b64), SCEP_OK);
    OPENSSL_free(der);
    return b64;
}

static long long
mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int
is_guid(const char *s)
{
    size_t i;

    if (strlen(s) != 36)
        return 0;
    for (i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return 0;
        } else if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') ||
                     (s[i] >= 'A' && s[i] <= 'F'))) {
            return 0;
        }
    }
    return 1;
}

/* ---- webhook ------------------------------------------------------------ */

static unsigned char hmac_key[24];

struct wh {
    struct stub stub;
    char url[128];
    struct scep_webhook_cfg cfg;
    unsigned char *csr;
    size_t csr_len;
    struct scep_webhook_req req;
};

static void
wh_start(struct wh *w, const char *mode, const char *csr_cn, const char *const *extra)
{
    char keyfile[320];
    const char *args[16];
    int n = 0, i;

    tmp_path(keyfile, sizeof(keyfile), "hmac.key");
    args[n++] = "--key-file";
    args[n++] = keyfile;
    args[n++] = "--bearer";
    args[n++] = BEARER;
    args[n++] = "--mode";
    args[n++] = mode;
    for (i = 0; extra != NULL && extra[i] != NULL && n < 15; i++)
        args[n++] = extra[i];
    args[n] = NULL;
    memset(w, 0, sizeof(*w));
    stub_start(&w->stub, "webhook_stub.py", "webhook.jsonl", args);
    snprintf(w->url, sizeof(w->url), "http://127.0.0.1:%d/validate", w->stub.port);
    w->cfg.url = w->url;
    w->cfg.hmac_key = hmac_key;
    w->cfg.hmac_key_len = sizeof(hmac_key);
    w->cfg.bearer = BEARER;
    w->cfg.timeout_ms = 5000;
    w->csr = make_csr(csr_cn, &w->csr_len);
    w->req.transaction_id = "txid-0001";
    w->req.csr_der = w->csr;
    w->req.csr_len = w->csr_len;
    w->req.endpoint = "devices";
    w->req.challenge = "the-challenge";
}

static void
wh_stop(struct wh *w)
{
    stub_stop(&w->stub);
    OPENSSL_free(w->csr);
}

static void
test_outbound_webhook_validate_allow(void **state)
{
    struct wh w;
    char reason[256], sig[128];
    json_t *recs, *r;
    const char *hdr, *raw;
    long long t = 0;
    char *b64 = NULL;

    (void)state;
    wh_start(&w, "allow", "device1.example", NULL);
    assert_int_equal(scep_webhook_validate(&w.cfg, &w.req, reason, sizeof(reason)), SCEP_OK);

    recs = records(&w.stub);
    assert_int_equal(json_array_size(recs), 1);
    r = json_array_get(recs, 0);
    assert_true(json_is_true(json_object_get(r, "sig_ok")));
    assert_true(json_is_true(json_object_get(r, "bearer_ok")));
    assert_string_equal(str_at(r, "body", "transactionId"), "txid-0001");
    assert_string_equal(str_at(r, "body", "endpoint"), "devices");
    assert_string_equal(str_at(r, "body", "challenge"), "the-challenge");
    assert_int_equal(scep_b64_encode(w.csr, w.csr_len, &b64), SCEP_OK);
    assert_string_equal(str_at(r, "body", "certificateRequest"), b64);
    assert_string_equal(str_at(r, "headers", "content-type"), "application/json");
    /* The signature the stub saw verifies under our own computation too. */
    hdr = str_at(r, "headers", "x-scepd-signature");
    raw = str_at(r, "raw_body", NULL);
    assert_memory_equal(hdr, "t=", 2);
    {
        char tbuf[32];
        const char *comma = strchr(hdr, ',');
        assert_non_null(comma);
        assert_true((size_t)(comma - hdr - 2) < sizeof(tbuf));
        memcpy(tbuf, hdr + 2, (size_t)(comma - hdr - 2));
        tbuf[comma - hdr - 2] = '\0';
        assert_int_equal(scep_strtonum(tbuf, 1, 1LL << 40, &t), SCEP_OK);
    }
    assert_true(llabs((long long)time(NULL) - t) < 60);
    scep_webhook_signature(hmac_key, sizeof(hmac_key), t, raw, strlen(raw), sig, sizeof(sig));
    assert_string_equal(sig, hdr);
    assert_int_equal(strlen(strchr(sig, ',') + 4), 64);
    free(b64);
    json_decref(recs);
    wh_stop(&w);
}

static void
test_outbound_webhook_validate_deny_reason(void **state)
{
    struct wh w;
    char reason[256];

    (void)state;
    wh_start(&w, "deny", "device1.example", NULL);
    assert_int_equal(scep_webhook_validate(&w.cfg, &w.req, reason, sizeof(reason)), SCEP_E_DENIED);
    assert_string_equal(reason, "denied by stub");
    wh_stop(&w);
}

static void
test_outbound_webhook_validate_deny_cn(void **state)
{
    struct wh w;
    char reason[256];
    size_t len;
    unsigned char *other;

    (void)state;
    wh_start(&w, "deny-cn:blocked.example", "blocked.example", NULL);
    assert_int_equal(scep_webhook_validate(&w.cfg, &w.req, reason, sizeof(reason)), SCEP_E_DENIED);
    assert_non_null(strstr(reason, "blocked.example"));
    other = make_csr("fine.example", &len);
    w.req.csr_der = other;
    w.req.csr_len = len;
    assert_int_equal(scep_webhook_validate(&w.cfg, &w.req, reason, sizeof(reason)), SCEP_OK);
    OPENSSL_free(other);
    wh_stop(&w);
}

static void
test_outbound_webhook_validate_timeout(void **state)
{
    const char *extra[] = {"--sleep", "6", NULL};
    struct wh w;
    char reason[256];
    long long t0, ms;

    (void)state;
    wh_start(&w, "timeout", "device1.example", extra);
    w.cfg.timeout_ms = 1000;
    t0 = mono_ms();
    assert_int_equal(scep_webhook_validate(&w.cfg, &w.req, reason, sizeof(reason)),
                     SCEP_E_VALIDATOR);
    ms = mono_ms() - t0;
    assert_true(ms >= 900 && ms < 2500);
    assert_string_equal(reason, "timeout");
    wh_stop(&w);
}

static void
webhook_fails_closed(const char *mode, const char *want_reason)
{
    struct wh w;
    char reason[256];

    wh_start(&w, mode, "device1.example", NULL);
    assert_int_equal(scep_webhook_validate(&w.cfg, &w.req, reason, sizeof(reason)),
                     SCEP_E_VALIDATOR);
    if (want_reason != NULL && strstr(reason, want_reason) == NULL)
        fail_msg("mode %s: reason \"%s\" lacks \"%s\"", mode, reason, want_reason);
    wh_stop(&w);
}

static void
test_outbound_webhook_validate_garbage(void **state)
{
    (void)state;
    webhook_fails_closed("garbage", "not JSON");
}

static void
test_outbound_webhook_validate_status500(void **state)
{
    (void)state;
    webhook_fails_closed("status500", "HTTP 500");
}

static void
test_outbound_webhook_validate_allow_string(void **state)
{
    (void)state;
    webhook_fails_closed("allow-string", "boolean");
}

static void
test_outbound_webhook_validate_redirect(void **state)
{
    (void)state;
    webhook_fails_closed("redirect", "HTTP 302");
}

static void
test_outbound_webhook_validate_huge(void **state)
{
    (void)state;
    webhook_fails_closed("huge", "64 KiB");
}

static void
test_outbound_webhook_validate_wrong_bearer(void **state)
{
    struct wh w;
    char reason[256];
    json_t *recs;

    (void)state;
    wh_start(&w, "allow", "device1.example", NULL);
    w.cfg.bearer = "not-the-bearer";
    assert_int_equal(scep_webhook_validate(&w.cfg, &w.req, reason, sizeof(reason)),
                     SCEP_E_VALIDATOR);
    assert_string_equal(reason, "HTTP 401");
    assert_null(strstr(reason, "not-the-bearer"));
    recs = records(&w.stub);
    assert_true(json_is_false(json_object_get(json_array_get(recs, 0), "bearer_ok")));
    json_decref(recs);
    wh_stop(&w);
}

static void
test_outbound_webhook_validate_wrong_key(void **state)
{
    static const unsigned char other[] = "another key";
    struct wh w;
    char reason[256];

    (void)state;
    wh_start(&w, "allow", "device1.example", NULL);
    w.cfg.hmac_key = other;
    w.cfg.hmac_key_len = sizeof(other) - 1;
    assert_int_equal(scep_webhook_validate(&w.cfg, &w.req, reason, sizeof(reason)),
                     SCEP_E_VALIDATOR);
    wh_stop(&w);
}

static void
test_outbound_webhook_deliver_retry(void **state)
{
    const char *extra[] = {"--fail-events", "2", NULL};
    struct wh w;
    char err[128], url[128];
    json_t *recs;

    (void)state;
    wh_start(&w, "allow", "device1.example", extra);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/events", w.stub.port);
    w.cfg.url = url;
    assert_int_equal(scep_webhook_deliver(&w.cfg, "{\"event\":\"issued\"}", err, sizeof(err)),
                     SCEP_E_VALIDATOR);
    assert_string_equal(err, "HTTP 500");
    assert_int_equal(scep_webhook_deliver(&w.cfg, "{\"event\":\"issued\"}", err, sizeof(err)),
                     SCEP_E_VALIDATOR);
    assert_int_equal(scep_webhook_deliver(&w.cfg, "{\"event\":\"issued\"}", err, sizeof(err)),
                     SCEP_OK);
    recs = records(&w.stub);
    assert_int_equal(json_array_size(recs), 3);
    assert_true(json_is_true(json_object_get(json_array_get(recs, 2), "sig_ok")));
    json_decref(recs);
    wh_stop(&w);
}

static void
test_outbound_httpc_request_refuses_scheme(void **state)
{
    struct scep_httpc_opts o = {1000, NULL, NULL};
    struct scep_httpc_resp r;
    char err[64];

    (void)state;
    assert_int_equal(
        scep_httpc_request(&o, "GET", "file:///etc/passwd", NULL, NULL, 0, &r, err, sizeof(err)),
        SCEP_E_INVALID_ARG);
    assert_null(r.body);
    assert_int_equal(
        scep_httpc_request(&o, "PUT", "http://127.0.0.1:1/", NULL, NULL, 0, &r, err, sizeof(err)),
        SCEP_E_INVALID_ARG);
    assert_int_equal(
        scep_httpc_request(&o, "GET", "http://127.0.0.1:1/", NULL, NULL, 0, &r, err, sizeof(err)),
        SCEP_E_IO);
    assert_string_equal(err, "connect failed");
}

/* ---- intune ------------------------------------------------------------- */

struct it {
    struct stub stub;
    struct scep_intune_cfg cfg;
    struct scep_intune *in;
};

static void
it_start(struct it *t, const char *key, const char *const *extra)
{
    const char *args[24];
    int n = 0, i;

    args[n++] = "--app-id";
    args[n++] = APP_ID;
    args[n++] = "--app-key";
    args[n++] = APP_KEY;
    args[n++] = "--tenant";
    args[n++] = TENANT;
    args[n++] = "--deny-cn";
    args[n++] = "denied.example";
    for (i = 0; extra != NULL && extra[i] != NULL && n < 23; i++)
        args[n++] = extra[i];
    args[n] = NULL;
    memset(t, 0, sizeof(*t));
    stub_start(&t->stub, "intune_stub.py", "intune.jsonl", args);
    snprintf(t->cfg.tenant, sizeof(t->cfg.tenant), "%s", TENANT);
    snprintf(t->cfg.app_id, sizeof(t->cfg.app_id), "%s", APP_ID);
    snprintf(t->cfg.app_key, sizeof(t->cfg.app_key), "%s", key);
    snprintf(t->cfg.provider, sizeof(t->cfg.provider), "%s", PROVIDER);
    snprintf(t->cfg.login_url, sizeof(t->cfg.login_url), "http://127.0.0.1:%d/", t->stub.port);
    snprintf(t->cfg.graph_url, sizeof(t->cfg.graph_url), "http://127.0.0.1:%d", t->stub.port);
    t->cfg.timeout_ms = 5000;
    assert_int_equal(scep_intune_new(&t->cfg, &t->in), SCEP_OK);
}

static void
it_stop(struct it *t)
{
    scep_intune_free(t->in);
    stub_stop(&t->stub);
}

static void
test_outbound_intune_validate_success(void **state)
{
    struct it t;
    char why[256];
    char *b64 = csr_b64("device1.example");
    json_t *recs, *r, *tok;

    (void)state;
    it_start(&t, APP_KEY, NULL);
    assert_int_equal(scep_intune_validate(t.in, "txid-1", b64, why, sizeof(why)), SCEP_OK);
    recs = records(&t.stub);
    r = last_where(recs, "op", "validateRequest");
    assert_string_equal(str_at(r, "path", NULL),
                        "/TrafficGateway/TrafficRoutingService/ScepRequestValidationFEService/"
                        "StatelessScepRequestValidationService/ScepActions/validateRequest");
    assert_string_equal(str_at(r, "headers", "authorization"), "intune");
    assert_string_equal(str_at(r, "headers", "api-version"), "2018-02-20");
    assert_true(is_guid(str_at(r, "headers", "client-request-id")));
    assert_string_equal(str_at(r, "headers", "content-type"), "application/json");
    assert_string_equal(str_at(r, "headers", "useragent"), PROVIDER);
    r = json_object_get(r, "body");
    assert_int_equal(json_object_size(r), 1);
    assert_int_equal(json_object_size(json_object_get(r, "request")), 3);
    assert_string_equal(str_at(r, "request", "transactionId"), "txid-1");
    assert_string_equal(str_at(r, "request", "certificateRequest"), b64);
    assert_string_equal(str_at(r, "request", "callerInfo"), PROVIDER);
    /* the grants: one per resource, with the documented resources */
    tok = last_where(recs, "kind", "discovery");
    assert_string_equal(str_at(tok, "headers", "authorization"), "graph");
    assert_int_equal(count_where(recs, "kind", "token"), 2);
    tok = json_array_get(recs, 0);
    assert_string_equal(str_at(tok, "path", NULL), "/" TENANT "/oauth2/token");
    assert_string_equal(str_at(tok, "body", "grant_type"), "client_credentials");
    assert_string_equal(str_at(tok, "body", "client_id"), APP_ID);
    assert_true(json_is_true(json_object_get(json_object_get(tok, "body"), "client_secret_ok")));
    tok = json_array_get(recs, 2);
    assert_string_equal(str_at(tok, "body", "resource"), "https://api.manage.microsoft.com/");
    json_decref(recs);
    free(b64);
    it_stop(&t);
}

static void
test_outbound_intune_validate_denied(void **state)
{
    struct it t;
    char why[256];
    char *b64 = csr_b64("denied.example");

    (void)state;
    it_start(&t, APP_KEY, NULL);
    assert_int_equal(scep_intune_validate(t.in, "txid-2", b64, why, sizeof(why)), SCEP_E_DENIED);
    assert_memory_equal(why, "SubjectNameMismatch: ", 21);
    free(b64);
    it_stop(&t);
}

static void
test_outbound_intune_validate_wrong_key(void **state)
{
    struct it t;
    char why[256], logpath[320], logbuf[8192];
    char *b64 = csr_b64("device1.example");
    int fd;
    ssize_t n;

    (void)state;
    it_start(&t, "wrong-key-value", NULL);
    tmp_path(logpath, sizeof(logpath), "wrongkey.log");
    fd = open(logpath, O_RDWR | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    scep_log_set_fd(fd);
    assert_int_equal(scep_intune_validate(t.in, "txid-3", b64, why, sizeof(why)), SCEP_E_VALIDATOR);
    scep_log_set_fd(2);
    assert_non_null(strstr(why, "HTTP 401"));
    assert_non_null(strstr(why, "invalid_client"));
    assert_null(strstr(why, "wrong-key-value"));
    n = pread(fd, logbuf, sizeof(logbuf) - 1, 0);
    assert_true(n >= 0);
    logbuf[n] = '\0';
    assert_null(strstr(logbuf, "wrong-key-value"));
    close(fd);
    free(b64);
    it_stop(&t);
}

static void
test_outbound_intune_success_fields(void **state)
{
    struct it t;
    char why[256];
    char *b64 = csr_b64("device1.example");
    json_t *recs, *r;
    const char *exp;
    size_t i;

    (void)state;
    it_start(&t, APP_KEY, NULL);
    assert_int_equal(scep_intune_success(t.in, "txid-4", b64,
                                         "0A1B2C3D4E5F60718293A4B5C6D7E8F901234567", "01AB23CD",
                                         "2027-01-02T03:04:05.000Z", "CN=scepd Test CA,O=Example",
                                         why, sizeof(why)),
                     SCEP_OK);
    recs = records(&t.stub);
    r = last_where(recs, "op", "successNotification");
    assert_string_equal(str_at(r, "headers", "api-version"), "2018-02-20");
    r = json_object_get(json_object_get(r, "body"), "notification");
    assert_int_equal(json_object_size(r), 7);
    assert_string_equal(str_at(r, "transactionId", NULL), "txid-4");
    assert_string_equal(str_at(r, "certificateRequest", NULL), b64);
    assert_string_equal(str_at(r, "certificateThumbprint", NULL),
                        "0A1B2C3D4E5F60718293A4B5C6D7E8F901234567");
    assert_string_equal(str_at(r, "certificateSerialNumber", NULL), "01AB23CD");
    assert_string_equal(str_at(r, "issuingCertificateAuthority", NULL),
                        "CN=scepd Test CA,O=Example");
    assert_string_equal(str_at(r, "callerInfo", NULL), PROVIDER);
    /* ISO 8601 UTC with milliseconds: YYYY-MM-DDThh:mm:ss.sssZ */
    exp = str_at(r, "certificateExpirationDateUtc", NULL);
    assert_int_equal(strlen(exp), 24);
    for (i = 0; i < 24; i++) {
        const char *shape = "dddd-dd-ddTdd:dd:dd.dddZ";
        if (shape[i] == 'd')
            assert_true(exp[i] >= '0' && exp[i] <= '9');
        else
            assert_int_equal(exp[i], shape[i]);
    }
    json_decref(recs);
    free(b64);
    it_stop(&t);
}

static void
test_outbound_intune_success_refused(void **state)
{
    const char *extra[] = {"--fail-success", NULL};
    struct it t;
    char why[256];
    char *b64 = csr_b64("device1.example");

    (void)state;
    it_start(&t, APP_KEY, extra);
    assert_int_equal(scep_intune_success(t.in, "txid-5", b64, "AB", "01",
                                         "2027-01-02T03:04:05.000Z", "CN=CA", why, sizeof(why)),
                     SCEP_E_NOTIFY);
    assert_non_null(strstr(why, "ScepProfileNoLongerTargetedToTheClient"));
    free(b64);
    it_stop(&t);
}

static void
test_outbound_intune_failure_description_cut(void **state)
{
    struct it t;
    char why[256], desc[301];
    char *b64 = csr_b64("device1.example");
    json_t *recs, *r;

    (void)state;
    memset(desc, 'x', 300);
    desc[0] = 'A';
    desc[300] = '\0';
    it_start(&t, APP_KEY, NULL);
    assert_int_equal(scep_intune_failure(t.in, "txid-6", b64, 0x80094001L, desc, why, sizeof(why)),
                     SCEP_OK);
    recs = records(&t.stub);
    r = last_where(recs, "op", "failureNotification");
    r = json_object_get(json_object_get(r, "body"), "notification");
    assert_int_equal(json_object_size(r), 5);
    assert_int_equal(strlen(str_at(r, "errorDescription", NULL)), 255);
    assert_memory_equal(str_at(r, "errorDescription", NULL), desc, 255);
    assert_int_equal(json_integer_value(json_object_get(r, "hResult")), 0x80094001L);
    assert_string_equal(str_at(r, "transactionId", NULL), "txid-6");
    assert_string_equal(str_at(r, "callerInfo", NULL), PROVIDER);
    json_decref(recs);
    free(b64);
    it_stop(&t);
}

static void
test_outbound_intune_token_cached(void **state)
{
    struct it t;
    char why[256];
    char *b64 = csr_b64("device1.example");
    json_t *recs;
    int i;

    (void)state;
    it_start(&t, APP_KEY, NULL);
    for (i = 0; i < 3; i++)
        assert_int_equal(scep_intune_validate(t.in, "txid-7", b64, why, sizeof(why)), SCEP_OK);
    assert_int_equal(scep_intune_success(t.in, "txid-7", b64, "AB", "01",
                                         "2027-01-02T03:04:05.000Z", "CN=CA", why, sizeof(why)),
                     SCEP_OK);
    assert_int_equal(scep_intune_failure(t.in, "txid-8", b64, 1, "no", why, sizeof(why)), SCEP_OK);
    recs = records(&t.stub);
    /* one grant per resource (Graph, Intune) and one discovery for five calls */
    assert_int_equal(count_where(recs, "kind", "token"), 2);
    assert_int_equal(count_where(recs, "kind", "discovery"), 1);
    assert_int_equal(count_where(recs, "kind", "action"), 5);
    json_decref(recs);
    free(b64);
    it_stop(&t);
}

struct worker {
    struct scep_intune *in;
    const char *b64;
    int ok;
};

static void *
worker_run(void *arg)
{
    struct worker *w = arg;
    char why[256];
    int i;

    for (i = 0; i < 5; i++)
        if (scep_intune_validate(w->in, "txid-t", w->b64, why, sizeof(why)) == SCEP_OK)
            w->ok++;
    return NULL;
}

static void
test_outbound_intune_validate_threads(void **state)
{
    struct it t;
    struct worker w[6];
    pthread_t th[6];
    char *b64 = csr_b64("device1.example");
    json_t *recs;
    size_t i;

    (void)state;
    it_start(&t, APP_KEY, NULL);
    for (i = 0; i < 6; i++) {
        w[i].in = t.in;
        w[i].b64 = b64;
        w[i].ok = 0;
        assert_int_equal(pthread_create(&th[i], NULL, worker_run, &w[i]), 0);
    }
    for (i = 0; i < 6; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(w[i].ok, 5);
    }
    recs = records(&t.stub);
    /* the mutex makes the first callers wait for one grant and one discovery */
    assert_int_equal(count_where(recs, "kind", "token"), 2);
    assert_int_equal(count_where(recs, "kind", "discovery"), 1);
    assert_int_equal(count_where(recs, "op", "validateRequest"), 30);
    json_decref(recs);
    free(b64);
    it_stop(&t);
}

static void
test_outbound_intune_token_refused_retried(void **state)
{
    const char *extra[] = {"--reject-first-token", NULL};
    struct it t;
    char why[256];
    char *b64 = csr_b64("device1.example");
    json_t *recs;

    (void)state;
    it_start(&t, APP_KEY, extra);
    assert_int_equal(scep_intune_validate(t.in, "txid-9", b64, why, sizeof(why)), SCEP_OK);
    recs = records(&t.stub);
    assert_int_equal(count_where(recs, "kind", "token"), 3); /* Graph, Intune, Intune again */
    assert_int_equal(count_where(recs, "op", "validateRequest"), 2);
    json_decref(recs);
    free(b64);
    it_stop(&t);
}

static void
test_outbound_intune_validate_timeout(void **state)
{
    const char *extra[] = {"--slow", "5", NULL};
    struct it t;
    char why[256];
    char *b64 = csr_b64("device1.example");
    long long t0, ms;

    (void)state;
    it_start(&t, APP_KEY, extra);
    scep_intune_free(t.in);
    t.cfg.timeout_ms = 1000;
    assert_int_equal(scep_intune_new(&t.cfg, &t.in), SCEP_OK);
    t0 = mono_ms();
    assert_int_equal(scep_intune_validate(t.in, "txid-10", b64, why, sizeof(why)),
                     SCEP_E_VALIDATOR);
    ms = mono_ms() - t0;
    assert_true(ms < 3000);
    assert_string_equal(why, "validateRequest: timeout");
    free(b64);
    it_stop(&t);
}

static void
test_outbound_intune_new_refuses_bad_tenant(void **state)
{
    struct scep_intune_cfg c;
    struct scep_intune *in = NULL;

    (void)state;
    memset(&c, 0, sizeof(c));
    snprintf(c.tenant, sizeof(c.tenant), "%s", "contoso/../x");
    snprintf(c.app_id, sizeof(c.app_id), "%s", APP_ID);
    snprintf(c.app_key, sizeof(c.app_key), "%s", APP_KEY);
    assert_int_equal(scep_intune_new(&c, &in), SCEP_E_INVALID_ARG);
    assert_null(in);
    snprintf(c.tenant, sizeof(c.tenant), "%s", TENANT);
    assert_int_equal(scep_intune_new(&c, &in), SCEP_OK);
    scep_intune_free(in);
}

/* ---- setup ----------------------------------------------------------------- */

static int
hexval(char c)
{
    return c >= 'a' ? c - 'a' + 10 : c - '0';
}

static int
group_setup(void **state)
{
    char keyfile[320];
    FILE *f;
    size_t i;

    (void)state;
    signal(SIGPIPE, SIG_IGN);
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/scepd-outbound-XXXXXX");
    if (mkdtemp(tmpdir) == NULL)
        return -1;
    for (i = 0; i < sizeof(hmac_key); i++)
        hmac_key[i] =
            (unsigned char)(hexval(HMAC_KEY_HEX[2 * i]) << 4 | hexval(HMAC_KEY_HEX[2 * i + 1]));
    snprintf(keyfile, sizeof(keyfile), "%s/hmac.key", tmpdir);
    if ((f = fopen(keyfile, "w")) == NULL)
        return -1;
    fputs(HMAC_KEY_HEX "\n", f);
    fclose(f);
    return 0;
}

static int
group_teardown(void **state)
{
    static const char *const files[] = {"hmac.key", "webhook.jsonl", "intune.jsonl",
                                        "wrongkey.log"};
    char path[320];
    size_t i;
    int st;

    (void)state;
    for (i = 0; i < MAX_LIVE; i++)
        if (live[i] > 0) {
            kill(live[i], SIGTERM);
            waitpid(live[i], &st, 0);
            live[i] = 0;
        }
    for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        tmp_path(path, sizeof(path), files[i]);
        unlink(path);
    }
    return rmdir(tmpdir) == 0 ? 0 : -1;
}

/*
 * The discovery parser on its own: the scheme is judged on the URI as kept
 * (trailing '/' removed), so "https:///" is not "https:".  Regression of a
 * fuzz_answers finding.
 */
static void
test_outbound_intune_parse_discovery_slashes(void **state)
{
#define DISCOVERY_FMT                                                                              \
    "{\"value\":[{\"providerName\":\"ScepRequestValidationFEService\",\"uri\":\"%s\"}]}"
    static const char *const bad[] = {"https:///", "https://///", "http:///", "https:", "ftp://a"};
    char body[256], uri[SCEP_INTUNE_URI_MAX], why[128];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(body, sizeof(body), DISCOVERY_FMT, bad[i]);
        assert_int_equal(
            scep_intune_parse_discovery(body, strlen(body), 0, uri, sizeof(uri), why, sizeof(why)),
            SCEP_E_VALIDATOR);
        assert_string_equal(uri, "");
        assert_non_null(strstr(why, "unusable URI"));
    }
    snprintf(body, sizeof(body), DISCOVERY_FMT, "https://fef.example/Scep//");
    assert_int_equal(
        scep_intune_parse_discovery(body, strlen(body), 1, uri, sizeof(uri), why, sizeof(why)),
        SCEP_OK);
    assert_string_equal(uri, "https://fef.example/Scep");
    snprintf(body, sizeof(body), DISCOVERY_FMT, "http://127.0.0.1:8080/scep");
    assert_int_equal(
        scep_intune_parse_discovery(body, strlen(body), 1, uri, sizeof(uri), why, sizeof(why)),
        SCEP_E_VALIDATOR);
    assert_int_equal(
        scep_intune_parse_discovery(body, strlen(body), 0, uri, sizeof(uri), why, sizeof(why)),
        SCEP_OK);
#undef DISCOVERY_FMT
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_outbound_httpc_request_refuses_scheme),
        cmocka_unit_test(test_outbound_webhook_validate_allow),
        cmocka_unit_test(test_outbound_webhook_validate_deny_reason),
        cmocka_unit_test(test_outbound_webhook_validate_deny_cn),
        cmocka_unit_test(test_outbound_webhook_validate_timeout),
        cmocka_unit_test(test_outbound_webhook_validate_garbage),
        cmocka_unit_test(test_outbound_webhook_validate_status500),
        cmocka_unit_test(test_outbound_webhook_validate_allow_string),
        cmocka_unit_test(test_outbound_webhook_validate_redirect),
        cmocka_unit_test(test_outbound_webhook_validate_huge),
        cmocka_unit_test(test_outbound_webhook_validate_wrong_bearer),
        cmocka_unit_test(test_outbound_webhook_validate_wrong_key),
        cmocka_unit_test(test_outbound_webhook_deliver_retry),
        cmocka_unit_test(test_outbound_intune_new_refuses_bad_tenant),
        cmocka_unit_test(test_outbound_intune_parse_discovery_slashes),
        cmocka_unit_test(test_outbound_intune_validate_success),
        cmocka_unit_test(test_outbound_intune_validate_denied),
        cmocka_unit_test(test_outbound_intune_validate_wrong_key),
        cmocka_unit_test(test_outbound_intune_success_fields),
        cmocka_unit_test(test_outbound_intune_success_refused),
        cmocka_unit_test(test_outbound_intune_failure_description_cut),
        cmocka_unit_test(test_outbound_intune_token_cached),
        cmocka_unit_test(test_outbound_intune_validate_threads),
        cmocka_unit_test(test_outbound_intune_token_refused_retried),
        cmocka_unit_test(test_outbound_intune_validate_timeout),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
