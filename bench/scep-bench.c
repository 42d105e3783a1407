/*
 * scep-bench - load generator and checker for any SCEP server.
 *
 *   scep-bench --url URL [--op enroll|getcacert|getcacaps] [-n N] [-c C]
 *              [--challenge S] [--method post|get] [--cipher NAME]
 *              [--key-cache DIR] [--verify sample|all] [--serials FILE]
 *
 * enroll: builds N distinct PKCSReq messages first (distinct RSA-2048 keys,
 * cached in --key-cache so repeated runs skip key generation), then sends
 * them over C keep-alive connections and checks every reply (signed by the
 * RA, SUCCESS, transactionID and recipientNonce match); decrypts a sample
 * (or all) and compares the certificate's key with the request's.
 * Prints one line: n, concurrency, failures, seconds, rate, p50/p90/p99 and
 * the CPU this program used per request while sending.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/x509v3.h>

#include "scepd/client.h"
#include "scepd/issue.h"
#include "scepd/num.h"
#include "scepd/oids.h"
#include "scepd/pki.h"
#include "scepd/query.h"

#define MAX_BODY (4 * 1024 * 1024)

enum op { OP_ENROLL, OP_GETCACERT, OP_GETCACAPS };

struct cfg {
    const char *url;
    const char *challenge;
    const char *cipher;
    const char *key_cache;
    const char *serials_path;
    enum op op;
    long long n, c;
    int use_get;
    int get_apple; /* GET message with only '=' escaped, '+' and '/' raw (Apple) */
    int http10;
    int verify_all;
};

struct item {
    EVP_PKEY *key;
    X509 *signer;
    char txid[48];
    struct scep_client_req req;
    unsigned char *der;
    size_t der_len;
    char *get_url; /* GET form */
    double ms;
    int ok;
    char serial[48];
};

struct run {
    const struct cfg *cfg;
    struct item *items;
    X509 *ra;
    atomic_long next;
    atomic_long done;
    atomic_long failures;
    pthread_mutex_t err_mu;
    int errors_shown;
};

static void
usage(FILE *f)
{
    fprintf(
        f, "scep-bench - load generator and checker for a SCEP server\n\n"
           "  scep-bench --url URL [options]\n\n"
           "  --url URL            SCEP URL, e.g. http://127.0.0.1:8080/scep\n"
           "  --op OP              enroll (default), getcacert, getcacaps\n"
           "  -n N                 number of requests (default 1000)\n"
           "  -c C                 concurrent keep-alive connections (default 8)\n"
           "  --challenge S        challenge password (enroll)\n"
           "  --method post|get|get-apple  PKIOperation transport (default post); get-apple\n"
           "                       leaves '+' and '/' unescaped in message= as iOS/macOS do\n"
           "  --http1.0            speak HTTP/1.0 (as Cisco IOS does), one connection per request\n"
           "  --cipher NAME        AES-128-CBC (default), AES-256-CBC, DES-EDE3-CBC, DES-CBC\n"
           "  --key-cache DIR      where RSA-2048 client keys are kept between runs\n"
           "                       (default $HOME/.cache/scep-bench)\n"
           "  --verify sample|all  decrypt and check one in 50 replies (default) or all\n"
           "  --serials FILE       write the serial of every certificate received (implies\n"
           "                       --verify all)\n\n"
           "Prints: op n concurrency failures seconds rate (successful requests/s)\n"
           "p50 p90 p99 max (latency of the successful requests, ms; max is the slowest one:\n"
           "a stall of the whole server hides under the p99) client_cpu (this program's CPU\n"
           "per request while sending and checking, ms: what it took from a server on the\n"
           "same machine).\n"
           "Exit codes: 0 no failures, 1 failures or errors, 2 usage error.\n");
}

/* CPU time of this process (all threads), ms. */
static double
cpu_ms(void)
{
    struct rusage ru;

    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

static double
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

struct body {
    unsigned char *d;
    size_t len;
};

static size_t
on_body(char *p, size_t size, size_t n, void *arg)
{
    struct body *b = arg;
    size_t add = size * n;
    unsigned char *nd;

    if (b->len + add > MAX_BODY)
        return 0;
    if ((nd = realloc(b->d, b->len + add)) == NULL)
        return 0;
    b->d = nd;
    memcpy(b->d + b->len, p, add);
    b->len += add;
    return add;
}

/* The transfer error of this thread's last http() call, for messages. */
static _Thread_local CURLcode last_cc;

/* One HTTP exchange on handle c; 0 ok (status 200), -1 otherwise. */
static int
http(CURL *c, const char *url, const unsigned char *post, size_t postlen, struct body *b,
     long *status)
{
    CURLcode cc;

    b->len = 0;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, b);
    if (post != NULL) {
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, post);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)postlen);
    } else {
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    }
    cc = curl_easy_perform(c);
    last_cc = cc;
    *status = 0;
    if (cc != CURLE_OK)
        return -1;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    return *status == 200 ? 0 : -1;
}

static int http10_mode;
static struct curl_slist *req_headers; /* set in main before any thread starts */

static CURL *
new_handle(void)
{
    CURL *c = curl_easy_init();

    if (c == NULL)
        return NULL;
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, req_headers);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
    if (http10_mode)
        curl_easy_setopt(c, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_0);
    return c;
}

static void
report_error(struct run *r, const char *txid, const char *what)
{
    pthread_mutex_lock(&r->err_mu);
    if (r->errors_shown++ < 5)
        fprintf(stderr, "scep-bench: request %s: %s\n", txid, what);
    pthread_mutex_unlock(&r->err_mu);
}

/* The RA (non-CA cert with keyEncipherment) from a GetCACert reply. */
static X509 *
fetch_ra(const char *url)
{
    CURL *c = new_handle();
    struct body b = {NULL, 0};
    char u[2048];
    long status = 0;
    const unsigned char *p;
    PKCS7 *p7 = NULL;
    X509 *ra = NULL;
    int i;

    snprintf(u, sizeof(u), "%s?operation=GetCACert", url);
    if (c == NULL || http(c, u, NULL, 0, &b, &status) != 0) {
        if (status != 0)
            fprintf(stderr,
                    "scep-bench: GetCACert from %s failed (HTTP status %ld); is the URL right?\n",
                    url, status);
        else
            fprintf(stderr,
                    "scep-bench: GetCACert from %s failed (%s); is the server running there?\n",
                    url, c == NULL ? "no curl handle" : curl_easy_strerror(last_cc));
        goto out;
    }
    p = b.d;
    p7 = d2i_PKCS7(NULL, &p, (long)b.len);
    if (p7 == NULL || !PKCS7_type_is_signed(p7)) {
        /* a single CA certificate: it is the RA too */
        p = b.d;
        ra = d2i_X509(NULL, &p, (long)b.len);
        goto out;
    }
    for (i = 0; i < sk_X509_num(p7->d.sign->cert); i++) {
        X509 *x = sk_X509_value(p7->d.sign->cert, i);
        if (X509_check_ca(x) == 0 && (X509_get_key_usage(x) & KU_KEY_ENCIPHERMENT)) {
            X509_up_ref(x);
            ra = x;
            break;
        }
    }
out:
    if (ra == NULL && b.d != NULL)
        fprintf(stderr, "scep-bench: no RA encryption certificate in the GetCACert reply\n");
    PKCS7_free(p7);
    free(b.d);
    curl_easy_cleanup(c);
    return ra;
}

/* Key i from the cache directory, generating and storing it when missing. */
static EVP_PKEY *
cached_key(const char *dir, long long i)
{
    char p[4096];
    EVP_PKEY *k = NULL;

    snprintf(p, sizeof(p), "%s/rsa2048-%06lld.pem", dir, i);
    if (scep_pki_read_key(p, &k) == SCEP_OK)
        return k;
    if (scep_pki_genkey("rsa:2048", &k) != SCEP_OK)
        return NULL;
    if (scep_pki_write_key(p, k) != SCEP_OK && errno != EEXIST)
        fprintf(stderr, "scep-bench: cannot cache key in %s (continuing)\n", p);
    return k;
}

static void *
prepare_worker(void *arg)
{
    struct run *r = arg;
    const struct cfg *cfg = r->cfg;
    long long i;

    while ((i = atomic_fetch_add(&r->next, 1)) < cfg->n) {
        struct item *it = &r->items[i];
        X509_REQ *csr = NULL;
        unsigned char *der = NULL;
        char dn[64];
        int len;

        if ((it->key = cached_key(cfg->key_cache, i)) == NULL)
            goto fail;
        snprintf(dn, sizeof(dn), "CN=bench-%lld-%08lx", i, (unsigned long)random());
        if (scep_client_make_csr(it->key, dn, cfg->challenge, NULL, &csr) != SCEP_OK ||
            scep_client_selfsigned(it->key, X509_REQ_get_subject_name(csr), &it->signer) != SCEP_OK)
            goto fail;
        len = i2d_X509_REQ(csr, &der);
        X509_REQ_free(csr);
        if (len <= 0)
            goto fail;
        snprintf(it->txid, sizeof(it->txid), "bench-%lld-%08lx%08lx", i, (unsigned long)random(),
                 (unsigned long)random());
        it->req.msgtype = 19;
        it->req.txid = it->txid;
        it->req.signer_cert = it->signer;
        it->req.signer_key = it->key;
        it->req.inner = der;
        it->req.inner_len = (size_t)len;
        it->req.recipient = r->ra;
        it->req.cipher = cfg->cipher;
        if (scep_client_build(&it->req, &it->der, &it->der_len) != SCEP_OK) {
            OPENSSL_free(der);
            goto fail;
        }
        OPENSSL_free(der);
        it->req.inner = NULL;
        if (cfg->use_get) {
            char *b64 = NULL;
            size_t j, o = 0, ulen;
            if (scep_b64_encode(it->der, it->der_len, &b64) != SCEP_OK)
                goto fail;
            ulen = strlen(cfg->url) + 64 + 3 * strlen(b64);
            if ((it->get_url = malloc(ulen)) == NULL) {
                free(b64);
                goto fail;
            }
            o = (size_t)snprintf(it->get_url, ulen, "%s?operation=PKIOperation&message=", cfg->url);
            for (j = 0; b64[j]; j++) {
                if (b64[j] == '=' || (!cfg->get_apple && (b64[j] == '+' || b64[j] == '/')))
                    o += (size_t)snprintf(it->get_url + o, ulen - o, "%%%02X", b64[j]);
                else
                    it->get_url[o++] = b64[j];
            }
            it->get_url[o] = '\0';
            free(b64);
        }
        continue;
    fail:
        fprintf(stderr, "scep-bench: preparing request %lld failed\n", i);
        exit(1);
    }
    return NULL;
}

static void *
send_worker(void *arg)
{
    struct run *r = arg;
    const struct cfg *cfg = r->cfg;
    CURL *c = new_handle();
    struct body b = {NULL, 0};
    char url[2048];
    long long i;

    if (c == NULL)
        return NULL;
    snprintf(url, sizeof(url), "%s?operation=%s", cfg->url,
             cfg->op == OP_ENROLL      ? "PKIOperation"
             : cfg->op == OP_GETCACERT ? "GetCACert"
                                       : "GetCACaps");
    while ((i = atomic_fetch_add(&r->next, 1)) < cfg->n) {
        struct item *it = &r->items[i];
        double t0 = now_ms();
        long status = 0;
        int rc;

        if (cfg->op != OP_ENROLL) {
            rc = http(c, url, NULL, 0, &b, &status);
            it->ms = now_ms() - t0;
            it->ok = rc == 0 && b.len > 0;
        } else {
            struct scep_client_reply rep;
            int check = cfg->verify_all || i % 50 == 0;
            if (cfg->use_get)
                rc = http(c, it->get_url, NULL, 0, &b, &status);
            else
                rc = http(c, url, it->der, it->der_len, &b, &status);
            it->ms = now_ms() - t0;
            if (rc != 0) {
                char st[160];
                if (status == 0)
                    snprintf(st, sizeof(st), "no HTTP reply: %s", curl_easy_strerror(last_cc));
                else
                    snprintf(st, sizeof(st), "HTTP status %ld", status);
                report_error(r, it->txid, st);
            } else {
                /*
                 * Every reply: signature by the RA, txid, nonce, status.  The
                 * decryption is the costly part: a sample unless --verify all.
                 */
                enum scep_err e = scep_client_parse_reply(b.d, b.len, r->ra, &it->req,
                                                          check ? it->key : NULL, &rep);
                if (e != SCEP_OK || rep.status != 0) {
                    char why[320];
                    snprintf(why, sizeof(why), "reply refused or not SUCCESS: %s",
                             e != SCEP_OK ? scep_strerror(e) : rep.fail_text);
                    report_error(r, it->txid, why);
                } else {
                    it->ok = 1;
                    if (rep.cert != NULL)
                        scep_serial_hex(rep.cert, it->serial, sizeof(it->serial));
                    if (check && rep.cert == NULL) {
                        it->ok = 0;
                        report_error(r, it->txid, "no certificate for our key");
                    }
                }
                scep_client_reply_clear(&rep);
            }
        }
        if (!it->ok)
            atomic_fetch_add(&r->failures, 1);
        atomic_fetch_add(&r->done, 1);
    }
    free(b.d);
    curl_easy_cleanup(c);
    return NULL;
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static void
progress(struct run *r, double t0, int final)
{
    long done = atomic_load(&r->done);
    double s = (now_ms() - t0) / 1e3;
    int width = 30, filled = (int)(width * done / (r->cfg->n ? r->cfg->n : 1));

    fprintf(stderr, "\r[%.*s%*s] %ld/%lld %.0f/s failures=%ld%s", filled,
            "##############################", width - filled, "", done, r->cfg->n,
            s > 0 ? (double)done / s : 0.0, atomic_load(&r->failures), final ? "\n" : "");
}

int
main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"url", required_argument, NULL, 'u'},
        {"op", required_argument, NULL, 'o'},
        {"challenge", required_argument, NULL, 'C'},
        {"method", required_argument, NULL, 'm'},
        {"cipher", required_argument, NULL, 'x'},
        {"key-cache", required_argument, NULL, 'k'},
        {"verify", required_argument, NULL, 'v'},
        {"http1.0", no_argument, NULL, '0'},
        {"serials", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct cfg cfg;
    struct run r;
    pthread_t *th;
    double t0, secs, cpu0, cpu, *lat;
    char cache[4096];
    long long i, nok = 0;
    int ch, tty = isatty(2), rc;

    memset(&cfg, 0, sizeof(cfg));
    cfg.n = 1000;
    cfg.c = 8;
    cfg.cipher = "AES-128-CBC";
    while ((ch = getopt_long(argc, argv, "n:c:h", lo, NULL)) != -1) {
        switch (ch) {
        case 'u':
            cfg.url = optarg;
            break;
        case 'o':
            if (strcmp(optarg, "enroll") == 0)
                cfg.op = OP_ENROLL;
            else if (strcmp(optarg, "getcacert") == 0)
                cfg.op = OP_GETCACERT;
            else if (strcmp(optarg, "getcacaps") == 0)
                cfg.op = OP_GETCACAPS;
            else {
                fprintf(stderr, "scep-bench: --op %s: use enroll, getcacert or getcacaps\n",
                        optarg);
                return 2;
            }
            break;
        case 'n':
            if (scep_strtonum(optarg, 1, 10000000, &cfg.n) != SCEP_OK) {
                fprintf(stderr, "scep-bench: -n %s: a number from 1 to 10000000\n", optarg);
                return 2;
            }
            break;
        case 'c':
            if (scep_strtonum(optarg, 1, 1024, &cfg.c) != SCEP_OK) {
                fprintf(stderr, "scep-bench: -c %s: a number from 1 to 1024\n", optarg);
                return 2;
            }
            break;
        case 'C':
            cfg.challenge = optarg;
            break;
        case 'm':
            if (strcmp(optarg, "get") != 0 && strcmp(optarg, "post") != 0 &&
                strcmp(optarg, "get-apple") != 0) {
                fprintf(stderr, "scep-bench: --method %s: use post, get or get-apple\n", optarg);
                return 2;
            }
            cfg.use_get = strcmp(optarg, "post") != 0;
            cfg.get_apple = strcmp(optarg, "get-apple") == 0;
            break;
        case 'x':
            cfg.cipher = optarg;
            break;
        case 'k':
            cfg.key_cache = optarg;
            break;
        case 'v':
            if (strcmp(optarg, "all") != 0 && strcmp(optarg, "sample") != 0) {
                fprintf(stderr, "scep-bench: --verify %s: use sample or all\n", optarg);
                return 2;
            }
            cfg.verify_all = strcmp(optarg, "all") == 0;
            break;
        case 's':
            cfg.serials_path = optarg;
            cfg.verify_all = 1;
            break;
        case '0':
            cfg.http10 = 1;
            http10_mode = 1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (cfg.url == NULL || optind != argc) {
        fprintf(stderr, "scep-bench: --url URL is required (see --help)\n");
        return 2;
    }
    if (cfg.op == OP_ENROLL && cfg.challenge == NULL)
        fprintf(stderr, "scep-bench: no --challenge given; requests carry none\n");
    if (cfg.key_cache == NULL) {
        const char *home = getenv("HOME");
        snprintf(cache, sizeof(cache), "%s/.cache/scep-bench", home ? home : "/tmp");
        cfg.key_cache = cache;
    }
    if (cfg.op == OP_ENROLL) {
        char mk[4200];
        snprintf(mk, sizeof(mk), "%s", cfg.key_cache);
        for (char *p = mk + 1; *p; p++)
            if (*p == '/') {
                *p = '\0';
                mkdir(mk, 0700);
                *p = '/';
            }
        if (mkdir(mk, 0700) != 0 && errno != EEXIST) {
            fprintf(stderr, "scep-bench: --key-cache %s: %s\n", cfg.key_cache, strerror(errno));
            return 1;
        }
    }
    if (scep_lib_init() != SCEP_OK || curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
        return 1;
    req_headers = curl_slist_append(NULL, "Content-Type: application/x-pki-message");
    req_headers = curl_slist_append(req_headers, "Expect:");
    srandom((unsigned)time(NULL) ^ (unsigned)getpid());
    memset(&r, 0, sizeof(r));
    r.cfg = &cfg;
    pthread_mutex_init(&r.err_mu, NULL);
    r.items = calloc((size_t)cfg.n, sizeof(*r.items));
    th = calloc((size_t)cfg.c, sizeof(*th));
    lat = calloc((size_t)cfg.n, sizeof(*lat));
    if (r.items == NULL || th == NULL || lat == NULL)
        return 1;
    if (cfg.op == OP_ENROLL) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        int np = cores > 0 ? (int)cores : 2;
        if ((r.ra = fetch_ra(cfg.url)) == NULL)
            return 1;
        if (tty)
            fprintf(stderr, "preparing %lld requests (keys cached in %s)\n", cfg.n, cfg.key_cache);
        pthread_t *pt = calloc((size_t)np, sizeof(*pt));
        if (pt == NULL)
            return 1;
        for (i = 0; i < np; i++)
            pthread_create(&pt[i], NULL, prepare_worker, &r);
        for (i = 0; i < np; i++)
            pthread_join(pt[i], NULL);
        free(pt);
        atomic_store(&r.next, 0);
    }
    cpu0 = cpu_ms();
    t0 = now_ms();
    for (i = 0; i < cfg.c; i++)
        pthread_create(&th[i], NULL, send_worker, &r);
    if (tty) {
        while (atomic_load(&r.done) < cfg.n) {
            progress(&r, t0, 0);
            usleep(200000);
        }
        progress(&r, t0, 1);
    }
    for (i = 0; i < cfg.c; i++)
        pthread_join(th[i], NULL);
    secs = (now_ms() - t0) / 1e3;
    cpu = cpu_ms() - cpu0;
    for (i = 0; i < cfg.n; i++)
        if (r.items[i].ok)
            lat[nok++] = r.items[i].ms;
    qsort(lat, (size_t)nok, sizeof(*lat), cmp_double);
#define PCT(p) (nok ? lat[(long long)((double)(nok - 1) * (p))] : 0.0)
    /* max: a stall of the whole server (all clients at once) is under 1% of the requests */
    printf("op=%s n=%lld concurrency=%lld failures=%ld seconds=%.3f rate=%.1f/s p50=%.2fms "
           "p90=%.2fms p99=%.2fms max=%.2fms client_cpu=%.3fms\n",
           cfg.op == OP_ENROLL      ? (cfg.use_get ? "enroll-get" : "enroll-post")
           : cfg.op == OP_GETCACERT ? "getcacert"
                                    : "getcacaps",
           cfg.n, cfg.c, atomic_load(&r.failures), secs, (double)nok / secs, PCT(0.50), PCT(0.90),
           PCT(0.99), nok ? lat[nok - 1] : 0.0, cpu / (double)cfg.n);
    if (cfg.serials_path != NULL) {
        FILE *f = fopen(cfg.serials_path, "w");
        if (f == NULL) {
            fprintf(stderr, "scep-bench: --serials %s: %s\n", cfg.serials_path, strerror(errno));
            return 1;
        }
        for (i = 0; i < cfg.n; i++)
            if (r.items[i].ok && r.items[i].serial[0])
                fprintf(f, "%s\n", r.items[i].serial);
        fclose(f);
    }
    rc = atomic_load(&r.failures) == 0 ? 0 : 1;
    for (i = 0; i < cfg.n; i++) {
        EVP_PKEY_free(r.items[i].key);
        X509_free(r.items[i].signer);
        free(r.items[i].der);
        free(r.items[i].get_url);
    }
    free(r.items);
    free(th);
    free(lat);
    X509_free(r.ra);
    pthread_mutex_destroy(&r.err_mu);
    curl_slist_free_all(req_headers);
    curl_global_cleanup();
    return rc;
}
