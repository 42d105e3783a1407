/*
 * oids.h - the SCEP attribute OIDs (RFC 8894 §3.2.1) and Microsoft request
 * attributes, registered with OpenSSL once at start-up (OpenSSL 3.0 knows
 * none of them: digest §7).
 */
#ifndef SCEPD_OIDS_H
#define SCEPD_OIDS_H

#include <openssl/evp.h>

#include "scepd/err.h"

struct scep_nids {
    int message_type;    /* 2.16.840.1.113733.1.9.2 */
    int pki_status;      /* .3 */
    int fail_info;       /* .4 */
    int sender_nonce;    /* .5 */
    int recipient_nonce; /* .6 */
    int transaction_id;  /* .7 */
    int fail_info_text;  /* 1.3.6.1.5.5.7.24.1 */
    int ms_name_value;   /* 1.3.6.1.4.1.311.13.2.1 */
    int ms_cert_type;    /* 1.3.6.1.4.1.311.20.2 */
    int ms_template;     /* 1.3.6.1.4.1.311.21.7 */
    int ms_sid;          /* 1.3.6.1.4.1.311.25.2 */
};

/*
 * Register the OIDs and load the OpenSSL providers scepd uses (default, and
 * legacy for single DES, digest §7).  Call once, before any thread starts.
 * legacy_loaded tells whether DES is available.
 */
enum scep_err scep_lib_init(void) SCEP_WUR;
/* The NIDs; valid after scep_lib_init(). */
const struct scep_nids *scep_nids(void);
/*
 * A content cipher by OpenSSL name ("AES-128-CBC", "DES-EDE3-CBC", ...),
 * fetched once at scep_lib_init (each fetch takes OpenSSL 3's global
 * locks).  NULL when not available.  Static; never freed by the caller.
 */
const EVP_CIPHER *scep_cipher(const char *name);

/* 1 when OpenSSL's legacy provider (single DES) loaded. */
int scep_lib_have_des(void);

#endif
