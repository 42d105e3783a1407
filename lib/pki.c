/*
 * pki.c - CA/RA generation and key/certificate files (see pki.h).
 *
 * Must never: write a private key with a mode other than 0600, overwrite
 * an existing file, or leave key material in freed memory.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "scepd/pki.h"

enum scep_err
scep_pki_genkey(const char *spec, EVP_PKEY **out)
{
    *out = NULL;
    if (strcmp(spec, "rsa:2048") == 0)
        *out = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    else if (strcmp(spec, "rsa:3072") == 0)
        *out = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)3072);
    else if (strcmp(spec, "rsa:4096") == 0)
        *out = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)4096);
    else if (strcmp(spec, "ec:p256") == 0)
        *out = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    else if (strcmp(spec, "ec:p384") == 0)
        *out = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    else
        return SCEP_E_INVALID_ARG;
    ERR_clear_error();
    return *out != NULL ? SCEP_OK : SCEP_E_INTERNAL;
}

/* Split at unescaped sep; unescape '\x' pairs in place. Returns next or NULL. */
static char *
next_part(char *s, char sep)
{
    char *r = s, *w = s;

    while (*r != '\0' && *r != sep) {
        if (*r == '\\' && r[1] != '\0')
            r++;
        *w++ = *r++;
    }
    if (*r == sep) {
        *w = '\0';
        return r + 1;
    }
    *w = '\0';
    return NULL;
}

enum scep_err
scep_pki_parse_dn(const char *text, X509_NAME **out)
{
    enum scep_err rc = SCEP_E_INVALID_ARG;
    X509_NAME *n = NULL;
    char *copy = NULL, *part, *next;
    char sep = ',';

    *out = NULL;
    if (text == NULL || *text == '\0' || strlen(text) > 1024)
        return SCEP_E_INVALID_ARG;
    if ((copy = strdup(text)) == NULL || (n = X509_NAME_new()) == NULL) {
        rc = SCEP_E_NOMEM;
        goto out;
    }
    part = copy;
    if (*part == '/') {
        sep = '/';
        part++;
    }
    while (part != NULL) {
        char *eq, *key, *val;
        next = next_part(part, sep);
        while (*part == ' ')
            part++;
        if (*part == '\0' && next == NULL)
            break;
        if ((eq = strchr(part, '=')) == NULL || eq == part || eq[1] == '\0')
            goto out;
        *eq = '\0';
        key = part;
        val = eq + 1;
        if (!X509_NAME_add_entry_by_txt(n, key, MBSTRING_UTF8, (const unsigned char *)val, -1, -1,
                                        0))
            goto out;
        part = next;
    }
    if (X509_NAME_entry_count(n) == 0)
        goto out;
    *out = n;
    n = NULL; /* transferred */
    rc = SCEP_OK;
out:
    ERR_clear_error();
    X509_NAME_free(n);
    free(copy);
    return rc;
}

static int
add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
    int ok = ext != NULL && X509_add_ext(x, ext, -1);

    X509_EXTENSION_free(ext);
    return ok;
}

static int
random_serial(X509 *x)
{
    unsigned char b[16];
    BIGNUM *bn;
    int ok;

    if (RAND_bytes(b, sizeof(b)) != 1)
        return 0;
    b[0] = (unsigned char)((b[0] & 0x7f) | 0x40);
    bn = BN_bin2bn(b, sizeof(b), NULL);
    ok = bn != NULL && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
    BN_free(bn);
    return ok;
}

static const EVP_MD *
md_for(EVP_PKEY *k)
{
    if (EVP_PKEY_get_base_id(k) == EVP_PKEY_EC && EVP_PKEY_get_bits(k) > 256)
        return EVP_sha384();
    return EVP_sha256();
}

static X509 *
new_cert(EVP_PKEY *pub, X509_NAME *subject, X509_NAME *issuer, int days, const X509 *clamp)
{
    X509 *x = X509_new();
    time_t now = time(NULL), nb = now - 3600, na = now + (time_t)days * 86400;

    if (x == NULL)
        return NULL;
    if (clamp != NULL) {
        struct tm tm;
        if (ASN1_TIME_to_tm(X509_get0_notAfter(clamp), &tm) == 1 && timegm(&tm) < na)
            na = timegm(&tm);
    }
    if (!X509_set_version(x, X509_VERSION_3) || !random_serial(x) ||
        !X509_set_subject_name(x, subject) || !X509_set_issuer_name(x, issuer) ||
        !X509_set_pubkey(x, pub) || X509_time_adj_ex(X509_getm_notBefore(x), 0, 0, &nb) == NULL ||
        X509_time_adj_ex(X509_getm_notAfter(x), 0, 0, &na) == NULL) {
        X509_free(x);
        return NULL;
    }
    return x;
}

/* A CA certificate for key, issued by issuer/issuer_key (itself when self-signed). */
static enum scep_err
make_ca(EVP_PKEY *key, X509_NAME *subject, X509 *issuer, EVP_PKEY *issuer_key, int days, X509 **out)
{
    X509 *x = new_cert(key, subject, issuer != NULL ? X509_get_subject_name(issuer) : subject, days,
                       NULL);
    X509V3_CTX ctx;

    *out = NULL;
    if (x == NULL)
        goto fail;
    X509V3_set_ctx(&ctx, issuer != NULL ? issuer : x, x, NULL, NULL, 0);
    /* digitalSignature too: RFC 8894 §2.1.2, micromdm/scep #81 (digest §2.2). */
    if (!add_ext(x, &ctx, NID_basic_constraints, "critical,CA:TRUE") ||
        !add_ext(x, &ctx, NID_key_usage, "critical,digitalSignature,keyCertSign,cRLSign") ||
        !add_ext(x, &ctx, NID_subject_key_identifier, "hash") ||
        !add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always") ||
        X509_sign(x, issuer_key, md_for(issuer_key)) <= 0)
        goto fail;
    *out = x;
    return SCEP_OK;
fail:
    ERR_clear_error();
    X509_free(x);
    return SCEP_E_INTERNAL;
}

enum scep_err
scep_pki_make_root(EVP_PKEY *key, X509_NAME *subject, int days, X509 **out)
{
    return make_ca(key, subject, NULL, key, days, out);
}

enum scep_err
scep_pki_make_ca_signed(EVP_PKEY *key, X509_NAME *subject, X509 *issuer, EVP_PKEY *issuer_key,
                        int days, X509 **out)
{
    return make_ca(key, subject, issuer, issuer_key, days, out);
}

enum scep_err
scep_pki_make_ra(EVP_PKEY *ra_key, X509_NAME *subject, X509 *ca_cert, EVP_PKEY *ca_key, int days,
                 X509 **out)
{
    X509 *x = new_cert(ra_key, subject, X509_get_subject_name(ca_cert), days, ca_cert);
    X509V3_CTX ctx;

    *out = NULL;
    if (x == NULL)
        goto fail;
    X509V3_set_ctx(&ctx, ca_cert, x, NULL, NULL, 0);
    if (!add_ext(x, &ctx, NID_basic_constraints, "critical,CA:FALSE") ||
        !add_ext(x, &ctx, NID_key_usage, "critical,digitalSignature,keyEncipherment") ||
        !add_ext(x, &ctx, NID_subject_key_identifier, "hash") ||
        !add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always") ||
        X509_sign(x, ca_key, md_for(ca_key)) <= 0)
        goto fail;
    *out = x;
    return SCEP_OK;
fail:
    ERR_clear_error();
    X509_free(x);
    return SCEP_E_INTERNAL;
}

static FILE *
create_file(const char *path, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
    FILE *f;

    if (fd < 0)
        return NULL;
    if (fchmod(fd, mode) != 0 || (f = fdopen(fd, "w")) == NULL) {
        close(fd);
        unlink(path);
        return NULL;
    }
    return f;
}

static enum scep_err
finish_file(FILE *f, const char *path, int ok)
{
    if (ok && fflush(f) == 0 && fsync(fileno(f)) == 0 && fclose(f) == 0)
        return SCEP_OK;
    if (f != NULL)
        fclose(f);
    unlink(path);
    return SCEP_E_IO;
}

enum scep_err
scep_pki_write_key(const char *path, EVP_PKEY *key)
{
    FILE *f = create_file(path, 0600);

    if (f == NULL)
        return errno == EEXIST ? SCEP_E_EXISTS : SCEP_E_IO;
    return finish_file(f, path, PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) == 1);
}

enum scep_err
scep_pki_write_cert(const char *path, X509 *x)
{
    FILE *f = create_file(path, 0644);

    if (f == NULL)
        return errno == EEXIST ? SCEP_E_EXISTS : SCEP_E_IO;
    return finish_file(f, path, PEM_write_X509(f, x) == 1);
}

enum scep_err
scep_pki_write_secret(const char *path, const void *p, size_t len)
{
    FILE *f = create_file(path, 0600);

    if (f == NULL)
        return errno == EEXIST ? SCEP_E_EXISTS : SCEP_E_IO;
    return finish_file(f, path, fwrite(p, 1, len, f) == len);
}

enum scep_err
scep_pki_read_key(const char *path, EVP_PKEY **out)
{
    FILE *f = fopen(path, "re");

    *out = NULL;
    if (f == NULL)
        return SCEP_E_KEY_FILE;
    *out = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    ERR_clear_error();
    return *out != NULL ? SCEP_OK : SCEP_E_KEY_FILE;
}

enum scep_err
scep_pki_read_cert(const char *path, X509 **out)
{
    FILE *f = fopen(path, "re");

    *out = NULL;
    if (f == NULL)
        return SCEP_E_KEY_FILE;
    *out = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    ERR_clear_error();
    return *out != NULL ? SCEP_OK : SCEP_E_KEY_FILE;
}

enum scep_err
scep_pki_read_file(const char *path, size_t cap, unsigned char **out, size_t *outlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    unsigned char *d = NULL;
    size_t n = 0;
    ssize_t r;

    *out = NULL;
    *outlen = 0;
    if (fd < 0)
        return SCEP_E_IO;
    if ((d = malloc(cap + 1)) == NULL) {
        close(fd);
        return SCEP_E_NOMEM;
    }
    while ((r = read(fd, d + n, cap + 1 - n)) > 0) {
        n += (size_t)r;
        if (n > cap)
            break;
    }
    close(fd);
    if (r < 0 || n > cap) {
        OPENSSL_cleanse(d, cap + 1);
        free(d);
        return r < 0 ? SCEP_E_IO : SCEP_E_TOO_LARGE;
    }
    *out = d;
    *outlen = n;
    return SCEP_OK;
}

enum scep_err
scep_pki_random_text(char *out, size_t n)
{
    static const char alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    size_t i = 0;
    unsigned char b[64];

    while (i < n) {
        size_t j;
        if (RAND_bytes(b, sizeof(b)) != 1)
            return SCEP_E_INTERNAL;
        /* 62 * 4 = 248: reject 248..255 so every character is equally likely. */
        for (j = 0; j < sizeof(b) && i < n; j++)
            if (b[j] < 248)
                out[i++] = alpha[b[j] % 62];
    }
    out[n] = '\0';
    OPENSSL_cleanse(b, sizeof(b));
    return SCEP_OK;
}
