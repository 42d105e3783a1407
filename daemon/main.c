/*
 * main.c - scepd: "init" creates a data directory, "serve" runs the SCEP
 * server and the admin API over it.  Wiring only: everything else is in
 * lib/ (service, setup) and daemon/http.c, daemon/admin_api.c.
 */
#include <getopt.h>
#include <pthread.h>
#include <limits.h>
#include <signal.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "daemon.h"
#include "scepd/log.h"
#include "scepd/num.h"
#include "scepd/oids.h"
#include "scepd/service.h"
#include "scepd/setup.h"

#define DEFAULT_LISTEN "127.0.0.1:8080"

static void
usage(FILE *f)
{
    fprintf(
        f,
        "scepd - SCEP (RFC 8894) certificate enrollment server\n"
        "\n"
        "Usage:\n"
        "  scepd init  --data DIR [options]   create a new CA, RA and database in DIR\n"
        "  scepd serve --data DIR [options]   serve SCEP (runs init first on an empty DIR)\n"
        "  scepd --help | --version\n"
        "\n"
        "init options:\n"
        "  --challenge S        static challenge password of the default endpoint\n"
        "                       (8-255 characters; default: 32 random [A-Za-z0-9],\n"
        "                       printed once). Only a keyed hash is stored.\n"
        "  --ca-key SPEC        key of a new CA: rsa:2048 (default), rsa:3072, rsa:4096,\n"
        "                       ec:p256, ec:p384\n"
        "  --ca-subject DN      subject of a new CA (default \"CN=scepd CA,O=scepd\")\n"
        "  --ca-cert FILE       import an existing CA certificate (PEM) ...\n"
        "  --ca-key-file FILE   ... with its unencrypted PEM private key\n"
        "  --validity-days N    validity of issued certificates (default 365)\n"
        "  --refuse-des         refuse requests encrypted with single DES (default: accept,\n"
        "                       since micromdm's scepclient and the Go SCEP library use it)\n"
        "  --approval MODE      auto (default): issue at once; manual: answer PENDING\n"
        "                       until an operator runs scepctl requests approve|reject\n"
        "  --renewal-window-days N  renewals (a request signed by a certificate this CA\n"
        "                       issued) only in the last N days of its validity (0 = any time)\n"
        "  --renewal-grace-days N   an expired certificate may still renew for N days (0)\n"
        "  --revoke-on-renewal  revoke the renewed certificate as superseded\n"
        "  --public-url URL     base URL clients reach scepd at (e.g. http://scep.example.com);\n"
        "                       issued certificates then name URL/crl/default.crl as their\n"
        "                       CRL distribution point\n"
        "  --getcacert FORM     chain (default): GetCACert returns RA + CA as PKCS#7;\n"
        "                       single: the CA certificate alone (RSA CA only; the CA key\n"
        "                       then decrypts requests and signs replies)\n"
        "  --get-only           do not advertise POSTPKIOperation/SCEPStandard, so clients\n"
        "                       send PKIOperation by GET (for old or test clients)\n"
        "\n"
        "serve options:\n"
        "  --listen ADDR:PORT   address to serve SCEP on (default " DEFAULT_LISTEN
        "; port 0 picks one)\n"
        "  --threads N          PKIOperation workers (default: four per core)\n"
        "  --cpu-slots N        of those, how many do CPU work at once, taken in arrival\n"
        "                       order (default: one per core; 0 = no limit, the kernel\n"
        "                       shares the cores among all workers)\n"
        "  --rsa-path P         auto (default): at start, time OpenSSL's RSA code path\n"
        "                       against its AVX2 one (signing and verifying with the RA\n"
        "                       key) and serve with the faster (on some virtual machines\n"
        "                       AVX2 signs 1.5x as fast); openssl: OpenSSL's choice;\n"
        "                       avx2: force AVX2.\n"
        "                       An OPENSSL_ia32cap in the environment is always obeyed\n"
        "  --max-connections N  open connections in all (default 1024)\n"
        "  --timeout S          close connections idle for S seconds (default 30)\n"
        "  --request-timeout S  close a connection whose request has not arrived whole\n"
        "                       S seconds after it started (slow clients; default 20)\n"
        "  --max-connections-per-ip N  open connections per source address (default 128,\n"
        "                       0 = no limit)\n"
        "  --auth-fail-limit N  refuse a source (HTTP 429) after N failed challenges within\n"
        "                       --auth-fail-window S seconds (defaults 20 and 300; 0 = off)\n"
        "  --challenge S, --ca-key, --ca-subject: used when serve has to run init\n"
        "  --verbose            debug logging\n"
        "\n"
        "SCEP URL: http://ADDR:PORT/scep (also /scep/pkiclient.exe, /cgi-bin/pkiclient.exe,\n"
        "/certsrv/mscep/mscep.dll). The admin API listens on DIR/admin.sock; use scepctl.\n"
        "Exit codes: 0 ok, 1 runtime failure, 2 usage error.\n");
}

struct opts {
    const char *data;
    const char *listen;
    struct scep_init_opts init;
    long long threads;
    long long cpu_slots; /* as scep_http_opts has it: 0 one per core, -1 no limit */
    const char *rsa_path;
    char **argv; /* serve's own, to execute again with (rsapath.c) */
    long long max_conn;
    long long timeout;
    long long auth_fail_limit;
    long long per_ip;
    long long request_timeout;
    long long auth_fail_window;
    int verbose;
};

enum {
    OPT_DATA = 1,
    OPT_CHALLENGE,
    OPT_CA_KEY,
    OPT_CA_SUBJECT,
    OPT_CA_CERT,
    OPT_CA_KEY_FILE,
    OPT_VALIDITY,
    OPT_REFUSE_DES,
    OPT_GET_ONLY,
    OPT_GETCACERT,
    OPT_APPROVAL,
    OPT_RENEW_WINDOW,
    OPT_PUBLIC_URL,
    OPT_RENEW_GRACE,
    OPT_REVOKE_RENEW,
    OPT_LISTEN,
    OPT_THREADS,
    OPT_CPU_SLOTS,
    OPT_RSA_PATH,
    OPT_MAX_CONN,
    OPT_TIMEOUT,
    OPT_VERBOSE,
    OPT_AUTH_LIMIT,
    OPT_PER_IP,
    OPT_REQ_TIMEOUT,
    OPT_AUTH_WINDOW,
    OPT_HELP,
};

static const struct option longopts[] = {
    {"data", required_argument, NULL, OPT_DATA},
    {"challenge", required_argument, NULL, OPT_CHALLENGE},
    {"ca-key", required_argument, NULL, OPT_CA_KEY},
    {"ca-subject", required_argument, NULL, OPT_CA_SUBJECT},
    {"ca-cert", required_argument, NULL, OPT_CA_CERT},
    {"ca-key-file", required_argument, NULL, OPT_CA_KEY_FILE},
    {"validity-days", required_argument, NULL, OPT_VALIDITY},
    {"refuse-des", no_argument, NULL, OPT_REFUSE_DES},
    {"get-only", no_argument, NULL, OPT_GET_ONLY},
    {"getcacert", required_argument, NULL, OPT_GETCACERT},
    {"approval", required_argument, NULL, OPT_APPROVAL},
    {"renewal-window-days", required_argument, NULL, OPT_RENEW_WINDOW},
    {"public-url", required_argument, NULL, OPT_PUBLIC_URL},
    {"renewal-grace-days", required_argument, NULL, OPT_RENEW_GRACE},
    {"revoke-on-renewal", no_argument, NULL, OPT_REVOKE_RENEW},
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"cpu-slots", required_argument, NULL, OPT_CPU_SLOTS},
    {"rsa-path", required_argument, NULL, OPT_RSA_PATH},
    {"max-connections", required_argument, NULL, OPT_MAX_CONN},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"verbose", no_argument, NULL, OPT_VERBOSE},
    {"auth-fail-limit", required_argument, NULL, OPT_AUTH_LIMIT},
    {"max-connections-per-ip", required_argument, NULL, OPT_PER_IP},
    {"request-timeout", required_argument, NULL, OPT_REQ_TIMEOUT},
    {"auth-fail-window", required_argument, NULL, OPT_AUTH_WINDOW},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

static int
number(const char *flag, const char *s, long long min, long long max, long long *out)
{
    if (scep_strtonum(s, min, max, out) != SCEP_OK) {
        fprintf(stderr, "scepd: %s %s: expected a whole number from %lld to %lld\n", flag, s, min,
                max);
        return -1;
    }
    return 0;
}

static int
parse(int argc, char **argv, int serve, struct opts *o)
{
    int c;
    long long v;

    memset(o, 0, sizeof(*o));
    o->listen = DEFAULT_LISTEN;
    o->rsa_path = "auto";
    o->max_conn = 1024;
    o->timeout = 30;
    o->auth_fail_limit = 20;
    o->per_ip = 128;
    o->request_timeout = 20;
    o->auth_fail_window = 300;
    optind = 2;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_DATA:
            o->data = optarg;
            break;
        case OPT_CHALLENGE:
            o->init.challenge = optarg;
            break;
        case OPT_CA_KEY:
            o->init.ca_key_spec = optarg;
            break;
        case OPT_CA_SUBJECT:
            o->init.ca_subject = optarg;
            break;
        case OPT_CA_CERT:
            o->init.ca_cert_file = optarg;
            break;
        case OPT_CA_KEY_FILE:
            o->init.ca_key_file = optarg;
            break;
        case OPT_VALIDITY:
            if (number("--validity-days", optarg, 1, 3650, &v) != 0)
                return -1;
            o->init.validity_days = (int)v;
            break;
        case OPT_REFUSE_DES:
            o->init.refuse_des = 1;
            break;
        case OPT_GET_ONLY:
            o->init.get_only = 1;
            break;
        case OPT_PUBLIC_URL:
            o->init.public_url = optarg;
            break;
        case OPT_RENEW_WINDOW:
            if (number("--renewal-window-days", optarg, 0, 3650, &v) != 0)
                return -1;
            o->init.renewal_window_days = (int)v;
            break;
        case OPT_RENEW_GRACE:
            if (number("--renewal-grace-days", optarg, 0, 3650, &v) != 0)
                return -1;
            o->init.renewal_grace_days = (int)v;
            break;
        case OPT_REVOKE_RENEW:
            o->init.revoke_on_renewal = 1;
            break;
        case OPT_APPROVAL:
            if (strcmp(optarg, "auto") != 0 && strcmp(optarg, "manual") != 0) {
                fprintf(stderr, "scepd: --approval %s: use auto or manual\n", optarg);
                return -1;
            }
            o->init.approval_manual = strcmp(optarg, "manual") == 0;
            break;
        case OPT_GETCACERT:
            if (strcmp(optarg, "single") != 0 && strcmp(optarg, "chain") != 0) {
                fprintf(stderr, "scepd: --getcacert %s: use chain or single\n", optarg);
                return -1;
            }
            o->init.getcacert_single = strcmp(optarg, "single") == 0;
            break;
        case OPT_LISTEN:
        case OPT_THREADS:
        case OPT_CPU_SLOTS:
        case OPT_RSA_PATH:
        case OPT_MAX_CONN:
        case OPT_TIMEOUT:
        case OPT_VERBOSE:
        case OPT_AUTH_LIMIT:
        case OPT_AUTH_WINDOW:
        case OPT_PER_IP:
        case OPT_REQ_TIMEOUT:
            if (!serve) {
                fprintf(stderr, "scepd: %s is an option of scepd serve\n", argv[optind - 1]);
                return -1;
            }
            if (c == OPT_LISTEN)
                o->listen = optarg;
            else if (c == OPT_THREADS && number("--threads", optarg, 1, 256, &o->threads) != 0)
                return -1;
            else if (c == OPT_RSA_PATH) {
                if (strcmp(optarg, "auto") != 0 && strcmp(optarg, "openssl") != 0 &&
                    strcmp(optarg, "avx2") != 0) {
                    fprintf(stderr,
                            "scepd: --rsa-path %s: use auto (measure and choose), openssl "
                            "(OpenSSL's choice) or avx2\n",
                            optarg);
                    return -1;
                }
                o->rsa_path = optarg;
            } else if (c == OPT_CPU_SLOTS) {
                if (number("--cpu-slots", optarg, 0, 256, &o->cpu_slots) != 0)
                    return -1;
                if (o->cpu_slots == 0)
                    o->cpu_slots = -1; /* 0 on the command line: no limit (scep_http_opts) */
            } else if (c == OPT_MAX_CONN &&
                       number("--max-connections", optarg, 1, 65536, &o->max_conn) != 0)
                return -1;
            else if (c == OPT_TIMEOUT && number("--timeout", optarg, 1, 3600, &o->timeout) != 0)
                return -1;
            else if (c == OPT_VERBOSE)
                o->verbose = 1;
            else if (c == OPT_AUTH_LIMIT &&
                     number("--auth-fail-limit", optarg, 0, 1000000, &o->auth_fail_limit) != 0)
                return -1;
            else if (c == OPT_PER_IP &&
                     number("--max-connections-per-ip", optarg, 0, 65536, &o->per_ip) != 0)
                return -1;
            else if (c == OPT_REQ_TIMEOUT &&
                     number("--request-timeout", optarg, 1, 3600, &o->request_timeout) != 0)
                return -1;
            else if (c == OPT_AUTH_WINDOW &&
                     number("--auth-fail-window", optarg, 1, 86400, &o->auth_fail_window) != 0)
                return -1;
            break;
        case OPT_HELP:
            usage(stdout);
            exit(0);
        default:
            fprintf(stderr, "scepd: see scepd --help\n");
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "scepd: unexpected argument %s; see scepd --help\n", argv[optind]);
        return -1;
    }
    if (o->data == NULL) {
        fprintf(stderr, "scepd: --data DIR is required (where the CA, keys and database live)\n");
        return -1;
    }
    return 0;
}

static int
do_init(const struct opts *o, int from_serve)
{
    struct scep_init_opts io = o->init;
    char challenge[300], err[512];
    enum scep_err rc;

    io.datadir = o->data;
    if (scep_lib_init() != SCEP_OK) {
        fprintf(stderr, "scepd: OpenSSL initialisation failed\n");
        return 1;
    }
    rc = scep_setup_init(&io, challenge, sizeof(challenge), err, sizeof(err));
    if (rc != SCEP_OK) {
        fprintf(stderr, "scepd: init %s: %s\n", o->data, err[0] ? err : scep_strerror(rc));
        return rc == SCEP_E_INVALID_ARG || rc == SCEP_E_EXISTS ? 2 : 1;
    }
    fprintf(stderr, "scepd: initialised %s (CA %s, RA, database, endpoint \"default\")\n", o->data,
            o->init.ca_cert_file ? o->init.ca_cert_file
                                 : (o->init.ca_key_spec ? o->init.ca_key_spec : "rsa:2048"));
    if (o->init.challenge == NULL)
        printf("challenge: %s\n(shown once: only a keyed hash is stored)\n", challenge);
    else if (from_serve)
        fprintf(stderr, "scepd: challenge set from --challenge\n");
    fflush(stdout);
    OPENSSL_cleanse(challenge, sizeof(challenge));
    return 0;
}

static int
do_serve(const struct opts *o)
{
    struct scep_service *svc = NULL;
    struct scep_http *http = NULL;
    struct scep_admin *admin = NULL;
    struct scep_http_opts ho;
    char err[512];
    sigset_t set;
    int sig, rc = 1, lock_fd = -1;
    enum scep_err e;

    if (o->verbose)
        scep_log_set_level(SCEP_LOG_DEBUG);
    if (!scep_setup_is_initialised(o->data)) {
        if (!scep_setup_is_empty(o->data)) {
            fprintf(stderr,
                    "scepd: %s is not empty and holds no scepd.db; give an empty or new "
                    "directory, or the one scepd init created\n",
                    o->data);
            return 2;
        }
        if ((rc = do_init(o, 1)) != 0)
            return rc;
        rc = 1;
    }
    /* before any thread: this may execute scepd again with the faster RSA code path */
    (void)scepd_rsa_path_apply(o->rsa_path, o->data, o->argv);
    /* after it (a lock taken before would be held twice by the one process), before the database */
    {
        long holder;
        if ((e = scep_setup_lock(o->data, &lock_fd, &holder, err, sizeof(err))) != SCEP_OK) {
            fprintf(stderr, "scepd: %s\n", err);
            return 1;
        }
    }
    /* Signals are taken by sigwait below; worker threads never see them. */
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    if ((e = scep_service_open(o->data, &svc, err, sizeof(err))) != SCEP_OK) {
        fprintf(stderr, "scepd: %s: %s\n", o->data, err[0] ? err : scep_strerror(e));
        goto out;
    }
    memset(&ho, 0, sizeof(ho));
    ho.listen = o->listen;
    ho.threads = (unsigned)o->threads;
    ho.cpu_slots = (int)o->cpu_slots;
    ho.conn_limit = (unsigned)o->max_conn;
    ho.per_ip_limit = (unsigned)o->per_ip;
    ho.request_timeout_s = (unsigned)o->request_timeout;
    ho.timeout_s = (unsigned)o->timeout;
    ho.mem_limit = 128 * 1024;
    ho.auth_fail_limit = (unsigned)o->auth_fail_limit;
    ho.auth_fail_window = (unsigned)o->auth_fail_window;
    if ((e = scep_http_start(svc, &ho, &http, err, sizeof(err))) != SCEP_OK) {
        fprintf(stderr, "scepd: %s\n", err[0] ? err : scep_strerror(e));
        goto out;
    }
    if ((e = scep_admin_start(svc, o->data, &admin, err, sizeof(err))) != SCEP_OK) {
        fprintf(stderr, "scepd: admin API: %s\n", err[0] ? err : scep_strerror(e));
        goto out;
    }
    {
        char host[128];
        const char *colon = strrchr(o->listen, ':');
        size_t hl = colon ? (size_t)(colon - o->listen) : 0;
        if (hl >= sizeof(host))
            hl = sizeof(host) - 1;
        memcpy(host, o->listen, hl);
        host[hl] = '\0';
        if (hl == 0 || strcmp(host, "0.0.0.0") == 0)
            snprintf(host, sizeof(host), "127.0.0.1");
        fprintf(stderr, "scepd: listening on http://%s:%u/scep (admin API: %s/admin.sock)\n", host,
                scep_http_port(http), o->data);
    }
    scep_log(SCEP_LOG_INFO, "main", "serving data=%s", o->data);
    /*
     * The main thread waits for a signal and does the periodic work: event
     * delivery (the outbox, every 2 s, a bounded batch so a slow receiver
     * cannot hold shutdown long) and CRLs (every minute).
     */
    scep_service_maintain(svc);
    {
        time_t last_maintain = time(NULL);
        for (;;) {
            struct timespec ts = {2, 0};
            sig = sigtimedwait(&set, NULL, &ts);
            if (sig == SIGINT || sig == SIGTERM)
                break;
            (void)scep_service_deliver_events(svc, 16);
            if (time(NULL) - last_maintain >= 60) {
                scep_service_maintain(svc);
                last_maintain = time(NULL);
            }
        }
    }
    scep_log(SCEP_LOG_INFO, "main", "stopping signal=%d", sig);
    rc = 0;
out:
    scep_admin_stop(admin);
    scep_http_stop(http);
    scep_service_free(svc);
    close(lock_fd); /* last: nothing of ours uses DIR any more */
    return rc;
}

int
main(int argc, char **argv)
{
    struct opts o;

    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("scepd 0.1.0\n");
        return 0;
    }
    if (strcmp(argv[1], "init") == 0) {
        if (parse(argc, argv, 0, &o) != 0)
            return 2;
        return do_init(&o, 0);
    }
    if (strcmp(argv[1], "serve") == 0) {
        if (parse(argc, argv, 1, &o) != 0)
            return 2;
        o.argv = argv;
        return do_serve(&o);
    }
    if (strcmp(argv[1], "rsa-speed") == 0) /* internal: serve's --rsa-path auto */
        return scepd_rsa_speed_main(argc, argv);
    fprintf(stderr, "scepd: unknown command %s; use init or serve (see scepd --help)\n", argv[1]);
    return 2;
}
