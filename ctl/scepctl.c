/*
 * scepctl - the operator's command line over the admin API of a running
 * scepd (DIR/admin.sock, bearer token from DIR/admin.token).
 *
 *   scepctl --data DIR certs list [--json]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/crypto.h>

#include "scepd/pki.h"
#include "scepd/setup.h"

#define MAX_REPLY (64 * 1024 * 1024)

static void
usage(FILE *f)
{
    fprintf(f, "scepctl - manage a running scepd\n"
               "\n"
               "Usage:\n"
               "  scepctl --data DIR certs list [--json]   issued certificates\n"
               "  scepctl --help\n"
               "\n"
               "DIR is the data directory scepd serves; scepctl talks to it through\n"
               "DIR/admin.sock with the token in DIR/admin.token (so it needs read access\n"
               "to that file: run it as the user scepd runs as).\n"
               "Exit codes: 0 ok, 1 runtime failure, 2 usage error.\n");
}

struct reply {
    char *data;
    size_t len;
};

static size_t
on_data(char *p, size_t size, size_t n, void *arg)
{
    struct reply *r = arg;
    size_t add = size * n;
    char *nd;

    if (add > MAX_REPLY || r->len + add > MAX_REPLY)
        return 0;
    if ((nd = realloc(r->data, r->len + add + 1)) == NULL)
        return 0;
    r->data = nd;
    memcpy(r->data + r->len, p, add);
    r->len += add;
    r->data[r->len] = '\0';
    return add;
}

/* GET path from the admin API; the parsed JSON body in *out. 0 ok, 1 failure. */
static int
api_get(const char *dir, const char *path, json_t **out)
{
    char sock[4096], tokpath[4096], auth[256], url[256];
    unsigned char *tok = NULL;
    size_t toklen = 0;
    struct curl_slist *hdrs = NULL;
    struct reply r = {NULL, 0};
    CURL *c = NULL;
    CURLcode cc;
    long status = 0;
    json_error_t jerr;
    int rc = 1;

    *out = NULL;
    if (scep_path(sock, sizeof(sock), dir, SCEP_SOCK_FILE) != SCEP_OK ||
        scep_path(tokpath, sizeof(tokpath), dir, SCEP_TOKEN_FILE) != SCEP_OK) {
        fprintf(stderr, "scepctl: --data %s: path too long\n", dir);
        return 1;
    }
    if (scep_pki_read_file(tokpath, 200, &tok, &toklen) != SCEP_OK) {
        fprintf(stderr,
                "scepctl: cannot read %s; is %s a scepd data directory, and are you the user "
                "scepd runs as?\n",
                tokpath, dir);
        return 1;
    }
    while (toklen > 0 && (tok[toklen - 1] == '\n' || tok[toklen - 1] == '\r'))
        toklen--;
    snprintf(auth, sizeof(auth), "Authorization: Bearer %.*s", (int)toklen, (const char *)tok);
    OPENSSL_cleanse(tok, toklen);
    free(tok);
    snprintf(url, sizeof(url), "http://scepd%s", path);
    if ((c = curl_easy_init()) == NULL || (hdrs = curl_slist_append(NULL, auth)) == NULL)
        goto out;
    curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, sock);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    cc = curl_easy_perform(c);
    if (cc != CURLE_OK) {
        fprintf(stderr,
                "scepctl: cannot reach scepd at %s (%s); start it with: scepd serve --data %s\n",
                sock, curl_easy_strerror(cc), dir);
        goto out;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    *out = json_loadb(r.data ? r.data : "", r.len, 0, &jerr);
    if (*out == NULL) {
        fprintf(stderr, "scepctl: scepd answered HTTP %ld with a body that is not JSON\n", status);
        goto out;
    }
    if (status != 200) {
        json_t *e = json_object_get(*out, "error");
        fprintf(stderr, "scepctl: scepd answered HTTP %ld: %s\n", status,
                json_is_string(e) ? json_string_value(e) : "error");
        json_decref(*out);
        *out = NULL;
        goto out;
    }
    rc = 0;
out:
    OPENSSL_cleanse(auth, sizeof(auth));
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c);
    free(r.data);
    return rc;
}

static void
fmt_time(json_int_t t, char *buf, size_t len)
{
    time_t tt = (time_t)t;
    struct tm tm;

    if (gmtime_r(&tt, &tm) == NULL || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, len, "%lld", (long long)t);
}

static int
certs_list(const char *dir, int as_json)
{
    json_t *body, *arr, *o;
    size_t i;

    if (api_get(dir, "/v1/certs", &body) != 0)
        return 1;
    arr = json_object_get(body, "certificates");
    if (!json_is_array(arr)) {
        fprintf(stderr, "scepctl: unexpected reply from scepd (no certificates list)\n");
        json_decref(body);
        return 1;
    }
    if (as_json) {
        json_array_foreach(arr, i, o)
        {
            char nb[32], na[32];
            fmt_time(json_integer_value(json_object_get(o, "not_before")), nb, sizeof(nb));
            fmt_time(json_integer_value(json_object_get(o, "not_after")), na, sizeof(na));
            json_object_set_new(o, "not_before", json_string(nb));
            json_object_set_new(o, "not_after", json_string(na));
        }
        if (json_dumpf(arr, stdout, JSON_INDENT(2)) != 0) {
            json_decref(body);
            return 1;
        }
        printf("\n");
        json_decref(body);
        return 0;
    }
    printf("%-34s %-8s %-20s %-20s %-40s %s\n", "SERIAL", "STATUS", "NOT_BEFORE", "NOT_AFTER",
           "SHA1", "SUBJECT / SANS");
    json_array_foreach(arr, i, o)
    {
        char nb[32], na[32];
        json_t *sans = json_object_get(o, "sans"), *s;
        size_t j;

        fmt_time(json_integer_value(json_object_get(o, "not_before")), nb, sizeof(nb));
        fmt_time(json_integer_value(json_object_get(o, "not_after")), na, sizeof(na));
        printf("%-34s %-8s %-20s %-20s %-40s %s", json_string_value(json_object_get(o, "serial")),
               json_string_value(json_object_get(o, "status")), nb, na,
               json_string_value(json_object_get(o, "sha1")),
               json_string_value(json_object_get(o, "subject")));
        json_array_foreach(sans, j, s) printf("%s%s", j == 0 ? " / " : ", ", json_string_value(s));
        printf("\n");
    }
    fprintf(stderr, "%zu certificate(s)\n", json_array_size(arr));
    json_decref(body);
    return 0;
}

int
main(int argc, char **argv)
{
    const char *dir = NULL;
    int i = 1, as_json = 0, rc;

    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    for (; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--data") == 0 && i + 1 < argc) {
            dir = argv[++i];
        } else if (strncmp(argv[i], "--data=", 7) == 0) {
            dir = argv[i] + 7;
        } else {
            break;
        }
    }
    if (dir == NULL) {
        fprintf(stderr, "scepctl: --data DIR is required (the directory scepd serves)\n");
        return 2;
    }
    if (i + 1 >= argc || strcmp(argv[i], "certs") != 0 || strcmp(argv[i + 1], "list") != 0) {
        fprintf(stderr, "scepctl: unknown command%s%s; see scepctl --help\n", i < argc ? " " : "",
                i < argc ? argv[i] : "");
        return 2;
    }
    for (i += 2; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            as_json = 1;
        } else {
            fprintf(stderr, "scepctl: certs list: unknown option %s (only --json)\n", argv[i]);
            return 2;
        }
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    rc = certs_list(dir, as_json);
    curl_global_cleanup();
    return rc;
}
