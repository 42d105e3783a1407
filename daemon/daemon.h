/*
 * daemon.h - wiring between scepd's main.c, the SCEP HTTP front end
 * (http.c) and the admin API (admin_api.c).
 */
#ifndef SCEPD_DAEMON_H
#define SCEPD_DAEMON_H

#include <stddef.h>

#include "scepd/err.h"
#include "scepd/service.h"

struct scep_http;
struct scep_admin;

struct scep_http_opts {
    const char *listen;  /* "ADDR:PORT", "[v6]:PORT" */
    unsigned threads;    /* PKIOperation workers; 0: four per core */
    int cpu_slots;       /* PKIOperations doing CPU work at once; 0: one per core, -1: no limit */
    unsigned conn_limit; /* open connections in all */
    unsigned per_ip_limit;
    unsigned timeout_s;         /* idle connection timeout */
    unsigned request_timeout_s; /* a request must arrive whole within this (slowloris) */
    size_t mem_limit;           /* per-connection memory: headers and URL */
    unsigned auth_fail_limit;   /* failed challenges per source and window; 0 = no limit */
    unsigned auth_fail_window;  /* seconds */
};

/* Start serving SCEP for svc (borrowed, must outlive the server). */
enum scep_err scep_http_start(struct scep_service *svc, const struct scep_http_opts *o,
                              struct scep_http **out, char *errbuf, size_t errlen) SCEP_WUR;
/* The port actually bound (useful with port 0). */
unsigned scep_http_port(const struct scep_http *h);
void scep_http_stop(struct scep_http *h);

/* The admin API on DIR/admin.sock, authenticated by DIR/admin.token. */
enum scep_err scep_admin_start(struct scep_service *svc, const char *datadir,
                               struct scep_admin **out, char *errbuf, size_t errlen) SCEP_WUR;
void scep_admin_stop(struct scep_admin *a);

/*
 * The RSA code path (rsapath.c): mode "auto" measures OpenSSL's choice
 * against its AVX2 path with datadir's RA key and executes scepd again
 * (argv) with the faster one; "openssl" keeps OpenSSL's; "avx2" forces
 * AVX2.  Returns 0 to go on serving in this image.
 */
int scepd_rsa_path_apply(const char *mode, const char *datadir, char **argv);
/* `scepd rsa-speed KEYFILE MS`: signs per second with KEYFILE, printed. */
int scepd_rsa_speed_main(int argc, char **argv);

#endif
