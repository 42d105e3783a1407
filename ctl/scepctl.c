/*
 * scepctl - the operator's command line over the admin API of a running
 * scepd (DIR/admin.sock, bearer token from DIR/admin.token).
 *
 *   scepctl --data DIR certs list [--json]
 *   scepctl --data DIR certs revoke SERIAL [--reason R]
 *   scepctl --data DIR ca list [--json] | ca rollover [--endpoint E] [--self-signed]
 *                      | ca switch [--endpoint E]
 *   scepctl --data DIR requests list [--status S] [--json]
 *   scepctl --data DIR requests approve ID
 *   scepctl --data DIR requests reject ID [--reason TEXT]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/crypto.h>

#include "scepd/num.h"
#include "scepd/pki.h"
#include "scepd/setup.h"

#define MAX_REPLY (64 * 1024 * 1024)

static void
usage(FILE *f)
{
    fprintf(
        f,
        "scepctl - manage a running scepd\n"
        "\n"
        "Usage:\n"
        "  scepctl --data DIR certs list [--json]      issued certificates\n"
        "  scepctl --data DIR certs revoke SERIAL [--reason R]\n"
        "                                              revoke (R: keyCompromise, superseded,\n"
        "                                              cessationOfOperation, affiliationChanged,\n"
        "                                              cACompromise, privilegeWithdrawn,\n"
        "                                              unspecified); the CRL is remade at once\n"
        "  scepctl --data DIR ca list [--json]         the CAs, which endpoint uses each\n"
        "  scepctl --data DIR ca rollover [--endpoint E] [--self-signed]\n"
        "                                              prepare the next CA and RA (served by\n"
        "                                              GetNextCACert; cross-signed by the\n"
        "                                              current CA unless --self-signed)\n"
        "  scepctl --data DIR ca switch [--endpoint E] issue from the prepared CA from now on\n"
        "  scepctl --data DIR requests list [--status pending|issued|rejected|failed] [--json]\n"
        "                                              enrollment requests, newest first\n"
        "  scepctl --data DIR requests approve ID      issue the certificate of a pending\n"
        "                                              request (the client gets it at its\n"
        "                                              next poll)\n"
        "  scepctl --data DIR requests reject ID [--reason TEXT]\n"
        "                                              refuse it (the client gets FAILURE)\n"
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

/*
 * One admin API call: GET path (body NULL) or POST path with a JSON body;
 * the parsed JSON reply in *out.  0 ok, 1 failure (said on stderr).
 */
static int
api_call(const char *dir, const char *path, const char *body, json_t **out)
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
    if (body != NULL) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
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

/* POST the JSON object req (consumed) to path; as api_call. */
static int
api_post(const char *dir, const char *path, json_t *req, json_t **out)
{
    char *text = req != NULL ? json_dumps(req, JSON_COMPACT) : NULL;
    int rc;

    json_decref(req);
    *out = NULL;
    if (text == NULL) {
        fprintf(stderr, "scepctl: out of memory\n");
        return 1;
    }
    rc = api_call(dir, path, text, out);
    free(text);
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

    if (api_call(dir, "/v1/certs", NULL, &body) != 0)
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

static int
certs_revoke(const char *dir, const char *serial, const char *reason)
{
    char path[160];
    json_t *body = NULL, *req;
    int rc;

    if (strlen(serial) > 64 || strspn(serial, "0123456789abcdefABCDEF:") != strlen(serial)) {
        fprintf(stderr, "scepctl: serial %s: give it in hex, as certs list shows it\n", serial);
        return 2;
    }
    {
        /* accept "AB:CD:..." as openssl prints serials */
        char clean[65];
        size_t i, o = 0;
        for (i = 0; serial[i] != '\0' && o < sizeof(clean) - 1; i++)
            if (serial[i] != ':')
                clean[o++] = serial[i];
        clean[o] = '\0';
        snprintf(path, sizeof(path), "/v1/certs/%s/revoke", clean);
    }
    req = reason != NULL ? json_pack("{s:s}", "reason", reason) : json_object();
    rc = api_post(dir, path, req, &body);
    if (rc != 0)
        return 1;
    printf("certificate %s revoked (%s); the CRL was remade\n",
           json_string_value(json_object_get(body, "serial")),
           json_string_value(json_object_get(body, "reason")));
    json_decref(body);
    return 0;
}

static int
ca_print(json_t *body, int as_json)
{
    json_t *arr = json_object_get(body, "cas"), *o;
    size_t i;

    if (!json_is_array(arr)) {
        fprintf(stderr, "scepctl: unexpected reply from scepd (no CA list)\n");
        return 1;
    }
    if (as_json) {
        json_dumpf(arr, stdout, JSON_INDENT(2));
        printf("\n");
        return 0;
    }
    printf("%-4s %-16s %-10s %-21s %-6s %s\n", "ID", "NAME", "USED BY", "NOT_AFTER", "NEXT",
           "SUBJECT");
    json_array_foreach(arr, i, o)
    {
        json_t *u = json_object_get(o, "used_by");
        printf("%-4lld %-16s %-10s %-21s %-6lld %s\n",
               (long long)json_integer_value(json_object_get(o, "id")),
               json_string_value(json_object_get(o, "name")),
               json_is_string(u) ? json_string_value(u) : "-",
               json_string_value(json_object_get(o, "not_after")),
               (long long)json_integer_value(json_object_get(o, "next_id")),
               json_string_value(json_object_get(o, "subject")));
    }
    return 0;
}

static int
ca_command(const char *dir, const char *verb, const char *endpoint, int self_signed, int as_json)
{
    json_t *body = NULL, *req;
    int rc;

    if (strcmp(verb, "list") == 0) {
        if (api_call(dir, "/v1/ca", NULL, &body) != 0)
            return 1;
    } else {
        char path[64];
        snprintf(path, sizeof(path), "/v1/ca/%s", verb);
        req = json_object();
        if (endpoint != NULL)
            json_object_set_new(req, "endpoint", json_string(endpoint));
        if (self_signed)
            json_object_set_new(req, "self_signed", json_true());
        rc = api_post(dir, path, req, &body);
        if (rc != 0)
            return 1;
        if (!as_json)
            printf("%s\n", strcmp(verb, "rollover") == 0
                               ? "next CA prepared; clients see it with GetNextCACert. When they "
                                 "have it, run: scepctl ca switch"
                               : "the endpoint now issues from its next CA; certificates of the "
                                 "old one still renew");
    }
    rc = ca_print(body, as_json);
    json_decref(body);
    return rc;
}

static int
profiles_command(const char *dir, const char *verb, const char *name, const char *tmpl,
                 const char *days, const char *eku, int as_json)
{
    json_t *body = NULL, *arr, *o, *req;
    long long n = 365;
    size_t i;
    int rc;

    if (strcmp(verb, "list") == 0) {
        rc = api_call(dir, "/v1/profiles", NULL, &body);
    } else {
        if (days != NULL && scep_strtonum(days, 1, 3650, &n) != SCEP_OK) {
            fprintf(stderr, "scepctl: --validity-days %s: a number from 1 to 3650\n", days);
            return 2;
        }
        req = json_pack("{s:s, s:s, s:I, s:s}", "name", name, "template", tmpl, "validity_days",
                        (json_int_t)n, "eku", eku != NULL ? eku : "clientAuth");
        rc = api_post(dir, "/v1/profiles", req, &body);
    }
    if (rc != 0)
        return 1;
    arr = json_object_get(body, "profiles");
    if (as_json) {
        json_dumpf(arr, stdout, JSON_INDENT(2));
        printf("\n");
    } else {
        printf("%-4s %-20s %-30s %-6s %s\n", "ID", "NAME", "TEMPLATE", "DAYS", "EKU");
        json_array_foreach(arr, i, o)
            printf("%-4lld %-20s %-30s %-6lld %s\n",
                   (long long)json_integer_value(json_object_get(o, "id")),
                   json_string_value(json_object_get(o, "name")),
                   json_string_value(json_object_get(o, "template")),
                   (long long)json_integer_value(json_object_get(o, "validity_days")),
                   json_string_value(json_object_get(o, "eku")));
    }
    json_decref(body);
    return 0;
}

static int
requests_list(const char *dir, const char *status, int as_json)
{
    json_t *body, *arr, *o;
    char path[128];
    size_t i;

    if (status != NULL)
        snprintf(path, sizeof(path), "/v1/requests?status=%s", status);
    else
        snprintf(path, sizeof(path), "/v1/requests");
    if (api_call(dir, path, NULL, &body) != 0)
        return 1;
    arr = json_object_get(body, "requests");
    if (!json_is_array(arr)) {
        fprintf(stderr, "scepctl: unexpected reply from scepd (no requests list)\n");
        json_decref(body);
        return 1;
    }
    if (as_json) {
        json_array_foreach(arr, i, o)
        {
            char t[32];
            fmt_time(json_integer_value(json_object_get(o, "created_at")), t, sizeof(t));
            json_object_set_new(o, "created_at", json_string(t));
        }
        json_dumpf(arr, stdout, JSON_INDENT(2));
        printf("\n");
    } else {
        printf("%-8s %-9s %-20s %-34s %-30s %s\n", "ID", "STATUS", "CREATED", "SERIAL",
               "TRANSACTION", "SUBJECT");
        json_array_foreach(arr, i, o)
        {
            char t[32];
            fmt_time(json_integer_value(json_object_get(o, "created_at")), t, sizeof(t));
            printf("%-8lld %-9s %-20s %-34s %-30.30s %s\n",
                   (long long)json_integer_value(json_object_get(o, "id")),
                   json_string_value(json_object_get(o, "status")), t,
                   json_string_value(json_object_get(o, "serial")),
                   json_string_value(json_object_get(o, "transaction_id")),
                   json_string_value(json_object_get(o, "subject")));
        }
        fprintf(stderr, "%zu request(s)\n", json_array_size(arr));
    }
    json_decref(body);
    return 0;
}

static int
requests_decide(const char *dir, const char *id, int approve, const char *reason)
{
    char path[128];
    json_t *body = NULL, *req = NULL;
    long long n;
    int rc;

    if (scep_strtonum(id, 1, INT64_MAX, &n) != SCEP_OK) {
        fprintf(stderr, "scepctl: request id %s: a positive number from requests list\n", id);
        return 2;
    }
    snprintf(path, sizeof(path), "/v1/requests/%lld/%s", n, approve ? "approve" : "reject");
    req = approve ? json_object() : json_pack("{s:s}", "reason", reason ? reason : "");
    rc = api_post(dir, path, req, &body);
    if (rc != 0)
        return 1;
    if (approve)
        printf("request %lld approved: certificate %s issued\n", n,
               json_string_value(json_object_get(body, "serial")));
    else
        printf("request %lld rejected\n", n);
    json_decref(body);
    return 0;
}

int
main(int argc, char **argv)
{
    const char *dir = NULL, *status = NULL, *reason = NULL, *id = NULL, *endpoint = NULL;
    const char *tmpl = NULL, *days = NULL, *eku = NULL;
    int i = 1, as_json = 0, rc, self_signed = 0;
    const char *noun, *verb;

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
    if (i + 1 >= argc) {
        fprintf(stderr, "scepctl: a command is required; see scepctl --help\n");
        return 2;
    }
    noun = argv[i];
    verb = argv[i + 1];
    for (i += 2; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            as_json = 1;
        } else if (strcmp(argv[i], "--status") == 0 && i + 1 < argc) {
            status = argv[++i];
        } else if (strcmp(argv[i], "--reason") == 0 && i + 1 < argc) {
            reason = argv[++i];
        } else if (strcmp(argv[i], "--endpoint") == 0 && i + 1 < argc) {
            endpoint = argv[++i];
        } else if (strcmp(argv[i], "--self-signed") == 0) {
            self_signed = 1;
        } else if (strcmp(argv[i], "--template") == 0 && i + 1 < argc) {
            tmpl = argv[++i];
        } else if (strcmp(argv[i], "--validity-days") == 0 && i + 1 < argc) {
            days = argv[++i];
        } else if (strcmp(argv[i], "--eku") == 0 && i + 1 < argc) {
            eku = argv[++i];
        } else if (argv[i][0] != '-' && id == NULL) {
            id = argv[i];
        } else {
            fprintf(stderr, "scepctl: %s %s: unexpected argument %s; see scepctl --help\n", noun,
                    verb, argv[i]);
            return 2;
        }
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (strcmp(noun, "certs") == 0 && strcmp(verb, "list") == 0 && id == NULL && status == NULL &&
        reason == NULL) {
        rc = certs_list(dir, as_json);
    } else if (strcmp(noun, "profiles") == 0 && strcmp(verb, "list") == 0 && id == NULL &&
               tmpl == NULL && days == NULL && eku == NULL) {
        rc = profiles_command(dir, verb, NULL, NULL, NULL, NULL, as_json);
    } else if (strcmp(noun, "profiles") == 0 && strcmp(verb, "add") == 0 && id != NULL &&
               tmpl != NULL) {
        rc = profiles_command(dir, verb, id, tmpl, days, eku, as_json);
    } else if (strcmp(noun, "ca") == 0 &&
               (strcmp(verb, "list") == 0 || strcmp(verb, "rollover") == 0 ||
                strcmp(verb, "switch") == 0) &&
               id == NULL && status == NULL && reason == NULL &&
               (endpoint == NULL || strcmp(verb, "list") != 0) &&
               (!self_signed || strcmp(verb, "rollover") == 0)) {
        rc = ca_command(dir, verb, endpoint, self_signed, as_json);
    } else if (strcmp(noun, "certs") == 0 && strcmp(verb, "revoke") == 0 && id != NULL &&
               !as_json && status == NULL) {
        rc = certs_revoke(dir, id, reason);
    } else if (strcmp(noun, "requests") == 0 && strcmp(verb, "list") == 0 && id == NULL &&
               reason == NULL) {
        if (status != NULL && strcmp(status, "pending") != 0 && strcmp(status, "issued") != 0 &&
            strcmp(status, "rejected") != 0 && strcmp(status, "failed") != 0) {
            fprintf(stderr, "scepctl: --status %s: use pending, issued, rejected or failed\n",
                    status);
            rc = 2;
        } else {
            rc = requests_list(dir, status, as_json);
        }
    } else if (strcmp(noun, "requests") == 0 &&
               (strcmp(verb, "approve") == 0 || strcmp(verb, "reject") == 0) && id != NULL &&
               !as_json && status == NULL && (reason == NULL || verb[0] == 'r')) {
        rc = requests_decide(dir, id, verb[0] == 'a', reason);
    } else {
        fprintf(stderr, "scepctl: unknown command or options: %s %s; see scepctl --help\n", noun,
                verb);
        rc = 2;
    }
    curl_global_cleanup();
    return rc;
}
