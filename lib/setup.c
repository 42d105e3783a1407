/*
 * setup.c - "scepd init": a new data directory with CA, RA, secrets,
 * database and the default endpoint (see setup.h for the layout).
 *
 * Must never: overwrite anything that exists, leave a key readable by
 * others, or keep the challenge anywhere but in the caller's buffer.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "scepd/buf.h"
#include "scepd/challenge.h"
#include "scepd/pki.h"
#include "scepd/setup.h"
#include "scepd/store.h"

enum scep_err
scep_path(char *buf, size_t len, const char *dir, const char *name)
{
    int n = snprintf(buf, len, "%s/%s", dir, name);

    return n < 0 || (size_t)n >= len ? SCEP_E_TOO_LARGE : SCEP_OK;
}

int
scep_setup_is_initialised(const char *datadir)
{
    char p[PATH_MAX];
    struct stat st;

    return scep_path(p, sizeof(p), datadir, SCEP_DB_FILE) == SCEP_OK && stat(p, &st) == 0;
}

enum scep_err
scep_setup_lock(const char *datadir, int *fd_out, long *holder, char *errbuf, size_t errlen)
{
    char p[PATH_MAX], pid[32];
    enum scep_err rc;
    ssize_t n;
    int fd;

    *fd_out = -1;
    *holder = 0;
    if ((rc = scep_path(p, sizeof(p), datadir, SCEP_LOCK_FILE)) != SCEP_OK) {
        snprintf(errbuf, errlen, "the data directory's path is too long");
        return rc;
    }
    if ((fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0) {
        snprintf(errbuf, errlen, "cannot open %s: %s; scepd needs to write in its data directory",
                 p, strerror(errno));
        return SCEP_E_IO;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int err = errno;
        if (err == EWOULDBLOCK) {
            n = pread(fd, pid, sizeof(pid) - 1, 0);
            pid[n > 0 ? n : 0] = '\0';
            *holder = strtol(pid, NULL, 10);
            if (*holder > 0)
                snprintf(errbuf, errlen,
                         "another scepd (pid %ld) is serving %s; stop it first, or give each "
                         "scepd its own data directory",
                         *holder, datadir);
            else
                snprintf(errbuf, errlen,
                         "another scepd is serving %s; stop it first, or give each scepd its own "
                         "data directory",
                         datadir);
            close(fd);
            return SCEP_E_EXISTS;
        }
        snprintf(errbuf, errlen, "cannot lock %s: %s", p, strerror(err));
        close(fd);
        return SCEP_E_IO;
    }
    n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
        snprintf(errbuf, errlen, "cannot write %s: %s", p, strerror(errno));
        close(fd);
        return SCEP_E_IO;
    }
    *fd_out = fd;
    return SCEP_OK;
}

int
scep_setup_is_empty(const char *datadir)
{
    DIR *d = opendir(datadir);
    struct dirent *e;
    int empty = 1;

    if (d == NULL)
        return errno == ENOENT;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            empty = 0;
            break;
        }
    }
    closedir(d);
    return empty;
}

static void
remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char p[PATH_MAX];

    if (d == NULL)
        return;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (scep_path(p, sizeof(p), dir, e->d_name) == SCEP_OK)
            unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

static enum scep_err
cert_der(X509 *x, unsigned char **der, size_t *len)
{
    int n;

    *der = NULL;
    n = i2d_X509(x, der);
    if (n <= 0)
        return SCEP_E_INTERNAL;
    *len = (size_t)n;
    return SCEP_OK;
}

enum scep_err
scep_setup_init(const struct scep_init_opts *o, char *challenge_out, size_t challenge_len,
                char *errbuf, size_t errlen)
{
    enum scep_err rc = SCEP_E_INTERNAL;
    char tmp[PATH_MAX], p[PATH_MAX], token[65];
    unsigned char secret[SCEP_SECRET_LEN], tokbytes[32];
    EVP_PKEY *ca_key = NULL, *ra_key = NULL;
    X509 *ca = NULL, *ra = NULL;
    X509_NAME *ca_name = NULL, *ra_name = NULL;
    struct scep_store *store = NULL;
    struct scep_ca_row carow;
    struct scep_endpoint_row ep;
    int64_t ca_id = 0, ep_id = 0;
    int made_tmp = 0;

    memset(&carow, 0, sizeof(carow));
    memset(&ep, 0, sizeof(ep));
    if (errlen > 0)
        errbuf[0] = '\0';
    if (challenge_len > 0)
        challenge_out[0] = '\0';
    if (!scep_setup_is_empty(o->datadir)) {
        scep_errbuf(errbuf, errlen, "%s exists and is not empty; choose a new directory",
                    o->datadir);
        return SCEP_E_EXISTS;
    }
    /* The challenge: given (checked) or generated from [A-Za-z0-9] (digest P9). */
    if (o->challenge != NULL) {
        size_t n = strlen(o->challenge);
        if (n < 8 || n >= challenge_len || n > 255) {
            scep_errbuf(errbuf, errlen, "--challenge must be 8 to 255 characters");
            return SCEP_E_INVALID_ARG;
        }
        memcpy(challenge_out, o->challenge, n + 1);
    } else {
        if (challenge_len <= SCEP_GENERATED_CHALLENGE_LEN)
            return SCEP_E_INVALID_ARG;
        if ((rc = scep_pki_random_text(challenge_out, SCEP_GENERATED_CHALLENGE_LEN)) != SCEP_OK)
            return rc;
    }
    if (snprintf(tmp, sizeof(tmp), "%s.init-XXXXXX", o->datadir) >= (int)sizeof(tmp))
        return SCEP_E_TOO_LARGE;
    if (mkdtemp(tmp) == NULL) {
        scep_errbuf(errbuf, errlen,
                    "cannot create a directory next to %s: %s; check that the parent exists and is "
                    "writable",
                    o->datadir, strerror(errno));
        return SCEP_E_IO;
    }
    made_tmp = 1;
    if (chmod(tmp, 0700) != 0)
        goto io;

    /* Secrets. */
    if (RAND_bytes(secret, sizeof(secret)) != 1 || RAND_bytes(tokbytes, sizeof(tokbytes)) != 1)
        goto out;
    scep_hex(tokbytes, sizeof(tokbytes), token);
    if ((rc = scep_path(p, sizeof(p), tmp, SCEP_SECRET_FILE)) != SCEP_OK ||
        (rc = scep_pki_write_secret(p, secret, sizeof(secret))) != SCEP_OK)
        goto io;
    if ((rc = scep_path(p, sizeof(p), tmp, SCEP_TOKEN_FILE)) != SCEP_OK ||
        (rc = scep_pki_write_secret(p, token, strlen(token))) != SCEP_OK)
        goto io;

    /* The CA: imported or a new self-signed root. */
    if (o->ca_cert_file != NULL || o->ca_key_file != NULL) {
        if (o->ca_cert_file == NULL || o->ca_key_file == NULL) {
            scep_errbuf(errbuf, errlen, "--ca-cert and --ca-key-file go together");
            rc = SCEP_E_INVALID_ARG;
            goto out;
        }
        if (scep_pki_read_cert(o->ca_cert_file, &ca) != SCEP_OK) {
            scep_errbuf(errbuf, errlen, "%s: not a PEM certificate", o->ca_cert_file);
            rc = SCEP_E_KEY_FILE;
            goto out;
        }
        if (scep_pki_read_key(o->ca_key_file, &ca_key) != SCEP_OK) {
            scep_errbuf(errbuf, errlen, "%s: not an unencrypted PEM private key", o->ca_key_file);
            rc = SCEP_E_KEY_FILE;
            goto out;
        }
        if (X509_check_private_key(ca, ca_key) != 1) {
            scep_errbuf(errbuf, errlen, "%s does not match the key of %s", o->ca_key_file,
                        o->ca_cert_file);
            rc = SCEP_E_KEY_FILE;
            goto out;
        }
        if (X509_check_ca(ca) == 0) {
            scep_errbuf(errbuf, errlen,
                        "%s is not a CA certificate (basicConstraints CA:TRUE needed)",
                        o->ca_cert_file);
            rc = SCEP_E_KEY_FILE;
            goto out;
        }
    } else {
        const char *spec = o->ca_key_spec ? o->ca_key_spec : "rsa:2048";
        if (scep_pki_genkey(spec, &ca_key) != SCEP_OK) {
            scep_errbuf(errbuf, errlen,
                        "--ca-key %s: use rsa:2048, rsa:3072, rsa:4096, ec:p256 or ec:p384", spec);
            rc = SCEP_E_INVALID_ARG;
            goto out;
        }
        if (scep_pki_parse_dn(o->ca_subject ? o->ca_subject : "CN=scepd CA,O=scepd", &ca_name) !=
            SCEP_OK) {
            scep_errbuf(errbuf, errlen, "--ca-subject %s: write it as CN=name,O=org",
                        o->ca_subject);
            rc = SCEP_E_INVALID_ARG;
            goto out;
        }
        if ((rc = scep_pki_make_root(ca_key, ca_name, 3650, &ca)) != SCEP_OK)
            goto out;
    }
    if (o->getcacert_single && EVP_PKEY_get_base_id(ca_key) != EVP_PKEY_RSA) {
        scep_errbuf(
            errbuf, errlen,
            "--getcacert single needs an RSA CA (clients encrypt to it); use --ca-key rsa:2048 "
            "or --getcacert chain");
        rc = SCEP_E_INVALID_ARG;
        goto out;
    }
    if ((rc = scep_path(p, sizeof(p), tmp, SCEP_CA_KEY_FILE)) != SCEP_OK ||
        (rc = scep_pki_write_key(p, ca_key)) != SCEP_OK)
        goto io;
    if ((rc = scep_path(p, sizeof(p), tmp, SCEP_CA_CERT_FILE)) != SCEP_OK ||
        (rc = scep_pki_write_cert(p, ca)) != SCEP_OK)
        goto io;

    /* The RA: always RSA, because it must decrypt key-transport envelopes. */
    if ((rc = scep_pki_genkey("rsa:2048", &ra_key)) != SCEP_OK)
        goto out;
    if ((rc = scep_pki_parse_dn("CN=scepd RA,O=scepd", &ra_name)) != SCEP_OK)
        goto out;
    if ((rc = scep_pki_make_ra(ra_key, ra_name, ca, ca_key, 1825, &ra)) != SCEP_OK)
        goto out;
    if ((rc = scep_path(p, sizeof(p), tmp, SCEP_RA_KEY_FILE)) != SCEP_OK ||
        (rc = scep_pki_write_key(p, ra_key)) != SCEP_OK)
        goto io;
    if ((rc = scep_path(p, sizeof(p), tmp, SCEP_RA_CERT_FILE)) != SCEP_OK ||
        (rc = scep_pki_write_cert(p, ra)) != SCEP_OK)
        goto io;

    /* The database and the default endpoint. */
    if ((rc = scep_path(p, sizeof(p), tmp, SCEP_DB_FILE)) != SCEP_OK ||
        (rc = scep_store_open(p, 1, &store)) != SCEP_OK) {
        scep_errbuf(errbuf, errlen, "cannot create the database %s", p);
        goto out;
    }
    snprintf(carow.name, sizeof(carow.name), "default");
    snprintf(carow.key_ref, sizeof(carow.key_ref), "%s", SCEP_CA_KEY_FILE);
    if ((rc = cert_der(ca, &carow.cert_der, &carow.cert_len)) != SCEP_OK ||
        (rc = scep_store_add_ca(store, &carow, &ca_id)) != SCEP_OK)
        goto out;
    snprintf(ep.name, sizeof(ep.name), "%s", SCEP_DEFAULT_ENDPOINT);
    ep.ca_id = ca_id;
    snprintf(ep.ra_key_ref, sizeof(ep.ra_key_ref), "%s", SCEP_RA_KEY_FILE);
    snprintf(ep.challenge_mode, sizeof(ep.challenge_mode), "static");
    snprintf(ep.getcacert_format, sizeof(ep.getcacert_format), "%s",
             o->getcacert_single ? "single" : "chain");
    ep.allow_des = !o->refuse_des;
    ep.advertise_post = !o->get_only;
    ep.validity_days = o->validity_days > 0 ? o->validity_days : 365;
    ep.enabled = 1;
    ep.approval_manual = o->approval_manual;
    ep.renewal_window_days = o->renewal_window_days;
    ep.renewal_grace_days = o->renewal_grace_days;
    ep.revoke_on_renewal = o->revoke_on_renewal;
    if ((rc = scep_challenge_hash(secret, sizeof(secret), challenge_out, strlen(challenge_out),
                                  ep.challenge_hash)) != SCEP_OK)
        goto out;
    ep.has_challenge_hash = 1;
    if ((rc = cert_der(ra, &ep.ra_cert_der, &ep.ra_cert_len)) != SCEP_OK ||
        (rc = scep_store_add_endpoint(store, &ep, &ep_id)) != SCEP_OK)
        goto out;
    if (o->public_url != NULL) {
        char url[512];
        size_t n = strlen(o->public_url);
        if ((strncmp(o->public_url, "http://", 7) != 0 &&
             strncmp(o->public_url, "https://", 8) != 0) ||
            n >= sizeof(url) || strpbrk(o->public_url, " \t\r\n\"<>") != NULL) {
            scep_errbuf(errbuf, errlen,
                        "--public-url %s: give the http(s) base URL clients reach scepd at, e.g. "
                        "http://scep.example.com",
                        o->public_url);
            rc = SCEP_E_INVALID_ARG;
            goto out;
        }
        memcpy(url, o->public_url, n + 1);
        while (n > 0 && url[n - 1] == '/')
            url[--n] = '\0';
        if ((rc = scep_store_set_meta(store, "public_url", url)) != SCEP_OK)
            goto out;
    }
    scep_store_close(store);
    store = NULL;

    /* Into place: an empty DIR is replaced, a missing one created. */
    if (rmdir(o->datadir) != 0 && errno != ENOENT)
        goto io;
    if (rename(tmp, o->datadir) != 0)
        goto io;
    made_tmp = 0;
    rc = SCEP_OK;
    goto out;
io:
    if (errbuf != NULL && errlen > 0 && errbuf[0] == '\0')
        scep_errbuf(errbuf, errlen, "writing %s failed: %s", o->datadir, strerror(errno));
    if (rc == SCEP_OK || rc == SCEP_E_INTERNAL)
        rc = SCEP_E_IO;
out:
    scep_store_close(store);
    if (made_tmp)
        remove_tree(tmp);
    if (rc != SCEP_OK && challenge_len > 0)
        OPENSSL_cleanse(challenge_out, challenge_len);
    OPENSSL_cleanse(secret, sizeof(secret));
    OPENSSL_cleanse(tokbytes, sizeof(tokbytes));
    OPENSSL_cleanse(token, sizeof(token));
    OPENSSL_free(carow.cert_der);
    carow.cert_der = NULL;
    OPENSSL_free(ep.ra_cert_der);
    ep.ra_cert_der = NULL;
    X509_NAME_free(ca_name);
    X509_NAME_free(ra_name);
    X509_free(ca);
    X509_free(ra);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(ra_key);
    return rc;
}
