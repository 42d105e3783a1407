/*
 * scepctl - the operator's command line over the admin API of a running
 * scepd (DIR/admin.sock, bearer token from DIR/admin.token).
 *
 *   scepctl --data DIR NOUN VERB [ARG] [--options] [--json]
 *
 * Nouns: certs, requests, ca, profiles, endpoints, accounts, challenges,
 * events, audit; `scepctl NOUN VERB --help` explains each command.  Every
 * command is one row of the table `cmds` below: its options, its argument,
 * its help and the function that runs it.
 *
 * It trusts scepd's answers only as far as printing them.  Secrets it sends
 * (static challenge, access codes, webhook bearer, Intune key) are read
 * from files so they never sit in shell history or ps output; secrets it
 * receives are printed once and wiped.  Exit codes: 0 ok, 1 runtime
 * failure, 2 usage error; every message says what failed and what to do.
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
#define MIN_DURATION 60LL           /* the shortest --ttl / --challenge-ttl */
#define MAX_DURATION (30LL * 86400) /* the longest */

/* ---- options ---- */

enum opt_id {
    O_JSON,
    O_STATUS,
    O_REASON,
    O_ENDPOINT,
    O_SELF_SIGNED,
    O_TEMPLATE,
    O_VALIDITY,
    O_VALIDITY_DAYS, /* the first release's spelling of --validity (profiles add) */
    O_MAX_VALIDITY,
    O_EKU,
    O_KEY_TYPES,
    O_SUBJECT_ALLOW,
    O_SUBJECT_FORBID,
    O_SAN_TYPES,
    O_SAN_PATTERNS,
    O_KEY_USAGE,
    O_CDP_URL,
    O_AIA_URL,
    O_DUPLICATE_SUBJECT,
    O_CA,
    O_NEW_CA,
    O_CA_KEY,
    O_PROFILE,
    O_ORG,
    O_DEPT,
    O_GETCACERT,
    O_GETCERT,
    O_MODE,
    O_CHALLENGE,
    O_CHALLENGE_FILE,
    O_APPROVAL,
    O_WEBHOOK_URL,
    O_WEBHOOK_TIMEOUT,
    O_WEBHOOK_BEARER_FILE,
    O_INTUNE_TENANT,
    O_INTUNE_APP_ID,
    O_INTUNE_APP_KEY_FILE,
    O_INTUNE_PROVIDER,
    O_INTUNE_PROXY,
    O_INTUNE_LOGIN_URL,
    O_INTUNE_GRAPH_URL,
    O_INTUNE_RESOURCE_URL,
    O_NOTIFY_URL,
    O_MAX_OUTSTANDING,
    O_CHALLENGE_TTL,
    O_ROTATE_KEY,
    O_CODE_FILE,
    O_TTL,
    O_SUBJECT,
    O_SAN,
    O_DEVICE,
    O_SID,
    O_LIMIT,
    O__COUNT
};

static const struct optdef {
    const char *name;
    int arg;    /* takes a value */
    int repeat; /* may be given more than once (values joined with ",") */
} optdefs[O__COUNT] = {
    [O_JSON] = {"--json", 0, 0},
    [O_STATUS] = {"--status", 1, 0},
    [O_REASON] = {"--reason", 1, 0},
    [O_ENDPOINT] = {"--endpoint", 1, 0},
    [O_SELF_SIGNED] = {"--self-signed", 0, 0},
    [O_TEMPLATE] = {"--template", 1, 0},
    [O_VALIDITY] = {"--validity", 1, 0},
    [O_VALIDITY_DAYS] = {"--validity-days", 1, 0},
    [O_MAX_VALIDITY] = {"--max-validity", 1, 0},
    [O_EKU] = {"--eku", 1, 0},
    [O_KEY_TYPES] = {"--key-types", 1, 0},
    [O_SUBJECT_ALLOW] = {"--subject-allow", 1, 0},
    [O_SUBJECT_FORBID] = {"--subject-forbid", 1, 0},
    [O_SAN_TYPES] = {"--san-types", 1, 0},
    [O_SAN_PATTERNS] = {"--san-patterns", 1, 0},
    [O_KEY_USAGE] = {"--key-usage", 1, 0},
    [O_CDP_URL] = {"--cdp-url", 1, 0},
    [O_AIA_URL] = {"--aia-url", 1, 0},
    [O_DUPLICATE_SUBJECT] = {"--duplicate-subject", 1, 0},
    [O_CA] = {"--ca", 1, 0},
    [O_NEW_CA] = {"--new-ca", 1, 0},
    [O_CA_KEY] = {"--ca-key", 1, 0},
    [O_PROFILE] = {"--profile", 1, 0},
    [O_ORG] = {"--org", 1, 0},
    [O_DEPT] = {"--dept", 1, 0},
    [O_GETCACERT] = {"--getcacert", 1, 0},
    [O_GETCERT] = {"--getcert", 1, 0},
    [O_MODE] = {"--mode", 1, 0},
    [O_CHALLENGE] = {"--challenge", 1, 0},
    [O_CHALLENGE_FILE] = {"--challenge-file", 1, 0},
    [O_APPROVAL] = {"--approval", 1, 0},
    [O_WEBHOOK_URL] = {"--webhook-url", 1, 0},
    [O_WEBHOOK_TIMEOUT] = {"--webhook-timeout", 1, 0},
    [O_WEBHOOK_BEARER_FILE] = {"--webhook-bearer-file", 1, 0},
    [O_INTUNE_TENANT] = {"--intune-tenant", 1, 0},
    [O_INTUNE_APP_ID] = {"--intune-app-id", 1, 0},
    [O_INTUNE_APP_KEY_FILE] = {"--intune-app-key-file", 1, 0},
    [O_INTUNE_PROVIDER] = {"--intune-provider", 1, 0},
    [O_INTUNE_PROXY] = {"--intune-proxy", 1, 0},
    [O_INTUNE_LOGIN_URL] = {"--intune-login-url", 1, 0},
    [O_INTUNE_GRAPH_URL] = {"--intune-graph-url", 1, 0},
    [O_INTUNE_RESOURCE_URL] = {"--intune-resource-url", 1, 0},
    [O_NOTIFY_URL] = {"--notify-url", 1, 0},
    [O_MAX_OUTSTANDING] = {"--max-outstanding", 1, 0},
    [O_CHALLENGE_TTL] = {"--challenge-ttl", 1, 0},
    [O_ROTATE_KEY] = {"--rotate-key", 0, 0},
    [O_CODE_FILE] = {"--code-file", 1, 0},
    [O_TTL] = {"--ttl", 1, 0},
    [O_SUBJECT] = {"--subject", 1, 0},
    [O_SAN] = {"--san", 1, 1},
    [O_DEVICE] = {"--device", 1, 0},
    [O_SID] = {"--sid", 1, 0},
    [O_LIMIT] = {"--limit", 1, 0},
};

#define B(o) (1ULL << (o))

/* A parsed command line. */
struct ctx {
    const char *dir;
    const char *arg; /* NAME, ID or SERIAL */
    const char *v[O__COUNT];
    int given[O__COUNT];
    char san[1024]; /* every --san, joined with "," */
    int as_json;
};

static const char *
opt(const struct ctx *x, enum opt_id o)
{
    return x->v[o];
}

/* ---- the admin API over the unix socket ---- */

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
 * the parsed JSON reply in *out.  0 ok, 1 failure (said on stderr).  The
 * reply text is wiped: it may carry a key shown once.
 */
static int
api_call(const char *dir, const char *path, const char *body, json_t **out)
{
    char sock[4096], tokpath[4096], auth[256], url[1024];
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
    if ((c = curl_easy_init()) == NULL || (hdrs = curl_slist_append(NULL, auth)) == NULL ||
        (body != NULL &&
         (hdrs = curl_slist_append(hdrs, "Content-Type: application/json")) == NULL))
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
    if (r.data != NULL)
        OPENSSL_cleanse(r.data, r.len);
    free(r.data);
    return rc;
}

/* POST the JSON object req (consumed) to path; as api_call.  The body text is wiped. */
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
    OPENSSL_cleanse(text, strlen(text));
    free(text);
    return rc;
}

static int
api_get(const char *dir, const char *path, json_t **out)
{
    return api_call(dir, path, NULL, out);
}

/*
 * path = fmt with each %s replaced by the next name, percent-encoded (names
 * come from the command line).  0 ok, 2 (said) when too long.
 */
static int
make_path(char *path, size_t len, const char *fmt, const char *a, const char *b)
{
    const char *names[2] = {a, b}, *f;
    size_t o = 0, k = 0;

    for (f = fmt; *f != '\0'; f++) {
        if (f[0] == '%' && f[1] == 's' && k < 2) {
            char *esc = curl_easy_escape(NULL, names[k++], 0);
            size_t l = esc != NULL ? strlen(esc) : 0;
            if (esc == NULL || o + l >= len) {
                curl_free(esc);
                fprintf(stderr, "scepctl: the name %s is too long\n", names[k - 1]);
                return 2;
            }
            memcpy(path + o, esc, l);
            o += l;
            curl_free(esc);
            f++;
        } else {
            if (o + 1 >= len)
                return 2;
            path[o++] = *f;
        }
    }
    path[o] = '\0';
    return 0;
}

/* ---- parsing values ---- */

/* A number within lo..hi.  0 ok, 2 (said) when not. */
static int
parse_num(const char *flag, const char *s, long long lo, long long hi, long long *out)
{
    if (scep_strtonum(s, lo, hi, out) == SCEP_OK)
        return 0;
    fprintf(stderr, "scepctl: %s %s: give a whole number from %lld to %lld\n", flag, s, lo, hi);
    return 2;
}

/*
 * A duration: plain seconds or a number with a unit s, m, h or d ("60m",
 * "2h", "1d", "3600s", "3600"), from MIN_DURATION to MAX_DURATION (what
 * scepd accepts for one-time challenges and tokens).  0 ok, 2 (said) when not.
 */
static int
parse_duration(const char *flag, const char *s, long long *out)
{
    char num[24];
    size_t n = strlen(s);
    long long mult = 1, v;

    if (n > 0 && strchr("smhd", s[n - 1]) != NULL) {
        mult = s[n - 1] == 's' ? 1 : s[n - 1] == 'm' ? 60 : s[n - 1] == 'h' ? 3600 : 86400;
        n--;
    }
    if (n > 0 && n < sizeof(num)) {
        memcpy(num, s, n);
        num[n] = '\0';
        if (scep_strtonum(num, 1, MAX_DURATION / mult, &v) == SCEP_OK && v * mult >= MIN_DURATION) {
            *out = v * mult;
            return 0;
        }
    }
    fprintf(stderr,
            "scepctl: %s %s: give a duration such as 3600 (seconds), 90s, 60m, 2h or 1d, "
            "from 60s to 30d\n",
            flag, s);
    return 2;
}

/* One of the words in list ("a|b|c").  0 ok, 2 (said) when not. */
static int
check_word(const char *flag, const char *s, const char *list)
{
    const char *p = list;
    size_t n = strlen(s);

    while (*p != '\0') {
        const char *e = strchr(p, '|');
        size_t l = e != NULL ? (size_t)(e - p) : strlen(p);
        if (l == n && strncmp(p, s, n) == 0)
            return 0;
        p += l;
        if (*p == '|')
            p++;
    }
    fprintf(stderr, "scepctl: %s %s: use one of %s\n", flag, s, list);
    return 2;
}

/*
 * A secret from a file ("-": standard input), without its trailing newline.
 * 0 ok; 1 unreadable; 2 empty, too long or spanning lines (all said).
 */
static int
read_secret(const char *flag, const char *path, char *out, size_t outlen)
{
    unsigned char *d = NULL;
    size_t n = 0;
    enum scep_err rc;

    rc = scep_pki_read_file(strcmp(path, "-") == 0 ? "/dev/stdin" : path, outlen, &d, &n);
    if (rc == SCEP_E_TOO_LARGE) {
        fprintf(stderr, "scepctl: %s %s: the secret is over %zu bytes; use a shorter one\n", flag,
                path, outlen - 1);
        return 2;
    }
    if (rc != SCEP_OK) {
        fprintf(stderr, "scepctl: %s %s: cannot read the file; check its path and permissions\n",
                flag, path);
        return 1;
    }
    while (n > 0 && (d[n - 1] == '\n' || d[n - 1] == '\r'))
        n--;
    if (n == 0 || n >= outlen || memchr(d, '\n', n) != NULL || memchr(d, '\0', n) != NULL) {
        OPENSSL_cleanse(d, n);
        free(d);
        fprintf(stderr,
                "scepctl: %s %s: the file must hold the secret on one line (not empty, at most "
                "%zu bytes)\n",
                flag, path, outlen - 1);
        return 2;
    }
    memcpy(out, d, n);
    out[n] = '\0';
    OPENSSL_cleanse(d, n);
    free(d);
    return 0;
}

/* ---- printing ---- */

static void
fmt_time(json_int_t t, char *buf, size_t len)
{
    time_t tt = (time_t)t;
    struct tm tm;

    if (gmtime_r(&tt, &tm) == NULL || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, len, "%lld", (long long)t);
}

static int
is_time_key(const char *k)
{
    size_t n = strlen(k);

    return strcmp(k, "at") == 0 || (n > 3 && strcmp(k + n - 3, "_at") == 0) ||
           strcmp(k, "not_before") == 0 || strcmp(k, "not_after") == 0;
}

/* The text of one JSON value for a table cell or a "key: value" line. */
static void
cell_text(const char *key, const json_t *v, char *buf, size_t len)
{
    if (v == NULL || json_is_null(v)) {
        snprintf(buf, len, "-");
    } else if (json_is_string(v)) {
        snprintf(buf, len, "%s", json_string_length(v) > 0 ? json_string_value(v) : "-");
    } else if (json_is_integer(v)) {
        if (is_time_key(key) && json_integer_value(v) == 0)
            snprintf(buf, len, "-");
        else if (is_time_key(key))
            fmt_time(json_integer_value(v), buf, len);
        else
            snprintf(buf, len, "%lld", (long long)json_integer_value(v));
    } else if (json_is_boolean(v)) {
        snprintf(buf, len, "%s", json_is_true(v) ? "yes" : "no");
    } else if (json_is_array(v)) {
        size_t i, o = 0;
        const json_t *it;
        buf[0] = '\0';
        json_array_foreach(v, i, it)
        {
            char one[256];
            cell_text("", it, one, sizeof(one));
            o += (size_t)snprintf(buf + o, o < len ? len - o : 0, "%s%s", i ? "," : "", one);
            if (o >= len)
                break;
        }
        if (json_array_size(v) == 0)
            snprintf(buf, len, "-");
    } else {
        char *t = json_dumps(v, JSON_COMPACT);
        snprintf(buf, len, "%s", t != NULL ? t : "?");
        free(t);
    }
}

struct col {
    const char *key;
    const char *head;
};

/*
 * arr (objects) as aligned columns; a column none of the rows has is left
 * out, and when none of cols is present every key of the first row is a
 * column (so a newer scepd's fields still show).
 */
static void
print_table(const json_t *arr, const struct col *cols, size_t ncols)
{
    struct col own[32];
    size_t w[32], idx[32], n = 0, i, j;
    const json_t *row;
    char cell[512];

    if (ncols > 32)
        ncols = 32;
    for (j = 0; j < ncols; j++) {
        int present = 0;
        json_array_foreach(arr, i, row) present |= json_object_get(row, cols[j].key) != NULL;
        if (present)
            idx[n++] = j;
    }
    if (n == 0 && json_array_size(arr) > 0) {
        const char *k;
        const json_t *v;
        json_object_foreach((json_t *)(uintptr_t)json_array_get(arr, 0), k, v)
        {
            if (n == 32)
                break;
            own[n].key = k;
            own[n].head = k;
            idx[n] = n;
            n++;
        }
        cols = own;
    }
    for (j = 0; j < n; j++) {
        const struct col *cl = &cols[idx[j]];
        w[j] = strlen(cl->head);
        json_array_foreach(arr, i, row)
        {
            cell_text(cl->key, json_object_get(row, cl->key), cell, sizeof(cell));
            if (strlen(cell) > w[j])
                w[j] = strlen(cell);
        }
    }
    for (j = 0; j < n; j++)
        printf("%-*s%s", j + 1 < n ? (int)w[j] : 0, cols[idx[j]].head, j + 1 < n ? "  " : "\n");
    json_array_foreach(arr, i, row)
    {
        for (j = 0; j < n; j++) {
            const struct col *cl = &cols[idx[j]];
            cell_text(cl->key, json_object_get(row, cl->key), cell, sizeof(cell));
            printf("%-*s%s", j + 1 < n ? (int)w[j] : 0, cell, j + 1 < n ? "  " : "\n");
        }
    }
}

static size_t
widest_key(const json_t *o, size_t prefix)
{
    const char *k;
    const json_t *v;
    size_t w = 0, n;

    json_object_foreach((json_t *)(uintptr_t)o, k, v)
    {
        n = json_is_object(v) ? widest_key(v, prefix + strlen(k) + 1) : prefix + strlen(k);
        if (n > w)
            w = n;
    }
    return w;
}

/* An object as "key: value" lines; nested objects as "outer.inner: value". */
static void
print_object(const json_t *o, const char *prefix, int width)
{
    const char *k;
    const json_t *v;
    char cell[2048], key[256], label[260];

    json_object_foreach((json_t *)(uintptr_t)o, k, v)
    {
        snprintf(key, sizeof(key), "%s%s", prefix, k);
        if (json_is_object(v)) {
            char p[260];
            snprintf(p, sizeof(p), "%s.", key);
            print_object(v, p, width);
            continue;
        }
        cell_text(k, v, cell, sizeof(cell));
        snprintf(label, sizeof(label), "%s:", key);
        printf("%-*s  %s\n", width + 1, label, cell);
    }
}

static void
print_json(const json_t *v)
{
    json_dumpf(v, stdout, JSON_INDENT(2));
    printf("\n");
}

/* The list under key in body, or NULL after saying so. */
static json_t *
list_of(json_t *body, const char *key)
{
    json_t *arr = json_object_get(body, key);

    if (!json_is_array(arr))
        fprintf(stderr, "scepctl: unexpected reply from scepd (no %s list)\n", key);
    return json_is_array(arr) ? arr : NULL;
}

/* GET path and print the list under key: JSON, or a table of cols. */
static int
list_command(const struct ctx *x, const char *path, const char *key, const struct col *cols,
             size_t ncols, const char *what)
{
    json_t *body, *arr;

    if (api_get(x->dir, path, &body) != 0)
        return 1;
    if ((arr = list_of(body, key)) == NULL) {
        json_decref(body);
        return 1;
    }
    if (x->as_json) {
        print_json(arr);
    } else {
        print_table(arr, cols, ncols);
        fprintf(stderr, "%zu %s\n", json_array_size(arr), what);
    }
    json_decref(body);
    return 0;
}

/* ---- certs, requests, ca (the first release) ---- */

static int
certs_list(const struct ctx *x)
{
    json_t *body, *arr, *o;
    size_t i;

    if (api_get(x->dir, "/v1/certs", &body) != 0)
        return 1;
    if ((arr = list_of(body, "certificates")) == NULL) {
        json_decref(body);
        return 1;
    }
    if (x->as_json) {
        json_array_foreach(arr, i, o)
        {
            char nb[32], na[32];
            fmt_time(json_integer_value(json_object_get(o, "not_before")), nb, sizeof(nb));
            fmt_time(json_integer_value(json_object_get(o, "not_after")), na, sizeof(na));
            json_object_set_new(o, "not_before", json_string(nb));
            json_object_set_new(o, "not_after", json_string(na));
        }
        print_json(arr);
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
certs_revoke(const struct ctx *x)
{
    const char *serial = x->arg, *reason = opt(x, O_REASON);
    char path[160], clean[65];
    json_t *body = NULL, *req;
    size_t i, o = 0;

    if (strlen(serial) > 64 || strspn(serial, "0123456789abcdefABCDEF:") != strlen(serial)) {
        fprintf(stderr, "scepctl: serial %s: give it in hex, as certs list shows it\n", serial);
        return 2;
    }
    /* accept "AB:CD:..." as openssl prints serials */
    for (i = 0; serial[i] != '\0' && o < sizeof(clean) - 1; i++)
        if (serial[i] != ':')
            clean[o++] = serial[i];
    clean[o] = '\0';
    snprintf(path, sizeof(path), "/v1/certs/%s/revoke", clean);
    req = reason != NULL ? json_pack("{s:s}", "reason", reason) : json_object();
    if (api_post(x->dir, path, req, &body) != 0)
        return 1;
    if (x->as_json)
        print_json(body);
    else
        printf("certificate %s revoked (%s); the CRL was remade\n",
               json_string_value(json_object_get(body, "serial")),
               json_string_value(json_object_get(body, "reason")));
    json_decref(body);
    return 0;
}

static int
ca_print(json_t *body, int as_json)
{
    json_t *arr = list_of(body, "cas"), *o;
    size_t i;

    if (arr == NULL)
        return 1;
    if (as_json) {
        print_json(arr);
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
ca_list(const struct ctx *x)
{
    json_t *body = NULL;
    int rc;

    if (api_get(x->dir, "/v1/ca", &body) != 0)
        return 1;
    rc = ca_print(body, x->as_json);
    json_decref(body);
    return rc;
}

static int
ca_change(const struct ctx *x, const char *verb)
{
    json_t *body = NULL, *req = json_object();
    char path[64];
    int rc;

    snprintf(path, sizeof(path), "/v1/ca/%s", verb);
    if (opt(x, O_ENDPOINT) != NULL)
        json_object_set_new(req, "endpoint", json_string(opt(x, O_ENDPOINT)));
    if (x->given[O_SELF_SIGNED])
        json_object_set_new(req, "self_signed", json_true());
    if (api_post(x->dir, path, req, &body) != 0)
        return 1;
    if (!x->as_json) {
        if (strcmp(verb, "rollover") == 0)
            printf("next CA prepared; clients see it with GetNextCACert. When they have it, "
                   "run: scepctl ca switch%s%s\n",
                   x->given[O_ENDPOINT] ? " --endpoint " : "",
                   x->given[O_ENDPOINT] ? opt(x, O_ENDPOINT) : "");
        else
            printf("the endpoint now issues from its next CA; certificates of the old one still "
                   "renew\n");
    }
    rc = ca_print(body, x->as_json);
    json_decref(body);
    return rc;
}

static int
ca_rollover(const struct ctx *x)
{
    return ca_change(x, "rollover");
}

static int
ca_switch(const struct ctx *x)
{
    return ca_change(x, "switch");
}

static int
requests_list(const struct ctx *x)
{
    const char *status = opt(x, O_STATUS);
    json_t *body, *arr, *o;
    char path[128];
    size_t i;

    if (status != NULL && check_word("--status", status, "pending|issued|rejected|failed") != 0)
        return 2;
    if (status != NULL)
        snprintf(path, sizeof(path), "/v1/requests?status=%s", status);
    else
        snprintf(path, sizeof(path), "/v1/requests");
    if (api_get(x->dir, path, &body) != 0)
        return 1;
    if ((arr = list_of(body, "requests")) == NULL) {
        json_decref(body);
        return 1;
    }
    if (x->as_json) {
        json_array_foreach(arr, i, o)
        {
            char t[32];
            fmt_time(json_integer_value(json_object_get(o, "created_at")), t, sizeof(t));
            json_object_set_new(o, "created_at", json_string(t));
        }
        print_json(arr);
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
requests_decide(const struct ctx *x, int approve)
{
    const char *reason = opt(x, O_REASON);
    char path[128];
    json_t *body = NULL, *req;
    long long n;

    if (scep_strtonum(x->arg, 1, INT64_MAX, &n) != SCEP_OK) {
        fprintf(stderr, "scepctl: request id %s: a positive number from requests list\n", x->arg);
        return 2;
    }
    snprintf(path, sizeof(path), "/v1/requests/%lld/%s", n, approve ? "approve" : "reject");
    req = approve ? json_object() : json_pack("{s:s}", "reason", reason ? reason : "");
    if (api_post(x->dir, path, req, &body) != 0)
        return 1;
    if (x->as_json)
        print_json(body);
    else if (approve)
        printf("request %lld approved: certificate %s issued\n", n,
               json_string_value(json_object_get(body, "serial")));
    else
        printf("request %lld rejected\n", n);
    json_decref(body);
    return 0;
}

static int
requests_approve(const struct ctx *x)
{
    return requests_decide(x, 1);
}

static int
requests_reject(const struct ctx *x)
{
    return requests_decide(x, 0);
}

/* ---- profiles ---- */

static const struct col profile_cols[] = {
    {"id", "ID"},
    {"name", "NAME"},
    {"template", "TEMPLATE"},
    {"validity_days", "DAYS"},
    {"max_validity_days", "MAX_DAYS"},
    {"eku", "EKU"},
    {"key_types", "KEY_TYPES"},
    {"san_types", "SAN_TYPES"},
    {"duplicate_subject", "DUPLICATE"},
};

static int
profiles_list(const struct ctx *x)
{
    return list_command(x, "/v1/profiles", "profiles", profile_cols,
                        sizeof(profile_cols) / sizeof(profile_cols[0]), "profile(s)");
}

static void
show_object(const json_t *o)
{
    print_object(o, "", (int)widest_key(o, 0));
}

static int
profiles_show(const struct ctx *x)
{
    char path[256];
    json_t *body;

    if (make_path(path, sizeof(path), "/v1/profiles/%s", x->arg, NULL) != 0)
        return 2;
    if (api_get(x->dir, path, &body) != 0)
        return 1;
    if (x->as_json)
        print_json(json_object_get(body, "profile"));
    else
        show_object(json_object_get(body, "profile"));
    json_decref(body);
    return 0;
}

/* add: POST /v1/profiles; update: POST /v1/profiles/NAME.  Only the options given are sent. */
static int
profiles_put(const struct ctx *x, int add)
{
    static const struct {
        enum opt_id o;
        const char *key;
    } strs[] = {
        {O_TEMPLATE, "template"},
        {O_EKU, "eku"},
        {O_KEY_TYPES, "key_types"},
        {O_SUBJECT_ALLOW, "subject_allow"},
        {O_SUBJECT_FORBID, "subject_forbid"},
        {O_SAN_TYPES, "san_types"},
        {O_SAN_PATTERNS, "san_patterns"},
        {O_KEY_USAGE, "key_usage"},
        {O_CDP_URL, "cdp_url"},
        {O_AIA_URL, "aia_url"},
    };
    const char *days = opt(x, O_VALIDITY) ? opt(x, O_VALIDITY) : opt(x, O_VALIDITY_DAYS);
    char path[256];
    json_t *req, *body = NULL;
    long long n;
    size_t i;

    if (x->given[O_VALIDITY] && x->given[O_VALIDITY_DAYS]) {
        fprintf(stderr, "scepctl: give --validity or --validity-days, not both\n");
        return 2;
    }
    if ((req = json_object()) == NULL)
        return 1;
    if (add)
        json_object_set_new(req, "name", json_string(x->arg));
    for (i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
        if (opt(x, strs[i].o) != NULL)
            json_object_set_new(req, strs[i].key, json_string(opt(x, strs[i].o)));
    if (days != NULL) {
        if (parse_num(x->given[O_VALIDITY] ? "--validity" : "--validity-days", days, 1, 36500,
                      &n) != 0)
            goto usage;
        json_object_set_new(req, "validity_days", json_integer(n));
    }
    if (opt(x, O_MAX_VALIDITY) != NULL) {
        if (parse_num("--max-validity", opt(x, O_MAX_VALIDITY), 0, 36500, &n) != 0)
            goto usage;
        json_object_set_new(req, "max_validity_days", json_integer(n));
    }
    if (opt(x, O_DUPLICATE_SUBJECT) != NULL) {
        if (check_word("--duplicate-subject", opt(x, O_DUPLICATE_SUBJECT), "allow|refuse|revoke") !=
            0)
            goto usage;
        json_object_set_new(req, "duplicate_subject", json_string(opt(x, O_DUPLICATE_SUBJECT)));
    }
    if (!add && json_object_size(req) == 0) {
        json_decref(req);
        fprintf(stderr,
                "scepctl: profiles update %s: nothing to change; give at least one option "
                "(see scepctl profiles update --help)\n",
                x->arg);
        return 2;
    }
    if (add)
        snprintf(path, sizeof(path), "/v1/profiles");
    else if (make_path(path, sizeof(path), "/v1/profiles/%s", x->arg, NULL) != 0)
        goto usage;
    if (api_post(x->dir, path, req, &body) != 0)
        return 1;
    if (x->as_json) {
        print_json(json_object_get(body, "profile"));
    } else {
        printf("profile %s %s; it applies to the next request\n", x->arg,
               add ? "added" : "updated");
        show_object(json_object_get(body, "profile"));
    }
    json_decref(body);
    return 0;
usage:
    json_decref(req);
    return 2;
}

static int
profiles_add(const struct ctx *x)
{
    return profiles_put(x, 1);
}

static int
profiles_update(const struct ctx *x)
{
    return profiles_put(x, 0);
}

/* ---- endpoints ---- */

static const struct col endpoint_cols[] = {
    {"name", "NAME"},
    {"enabled", "ENABLED"},
    {"url_path", "PATH"},
    {"mode", "MODE"},
    {"ca", "CA"},
    {"profile", "PROFILE"},
    {"validity_days", "DAYS"},
    {"approval", "APPROVAL"},
    {"organization", "O"},
    {"department", "OU"},
    {"notify_url", "NOTIFY"},
};

static int
endpoints_list(const struct ctx *x)
{
    return list_command(x, "/v1/endpoints", "endpoints", endpoint_cols,
                        sizeof(endpoint_cols) / sizeof(endpoint_cols[0]), "endpoint(s)");
}

static int
endpoints_show(const struct ctx *x)
{
    char path[256];
    json_t *body, *e;

    if (make_path(path, sizeof(path), "/v1/endpoints/%s", x->arg, NULL) != 0)
        return 2;
    if (api_get(x->dir, path, &body) != 0)
        return 1;
    e = json_object_get(body, "endpoint");
    if (!json_is_object(e)) {
        fprintf(stderr, "scepctl: unexpected reply from scepd (no endpoint)\n");
        json_decref(body);
        return 1;
    }
    if (x->as_json)
        print_json(e);
    else
        show_object(e);
    json_decref(body);
    return 0;
}

/* Put the option's text (if given) into o under key. */
static void
set_str(json_t *o, const struct ctx *x, enum opt_id id, const char *key)
{
    if (opt(x, id) != NULL)
        json_object_set_new(o, key, json_string(opt(x, id)));
}

/* Put a secret read from the option's file (if given) into o under key.  0 ok, else exit code. */
static int
set_secret(json_t *o, const struct ctx *x, enum opt_id id, const char *key, size_t max)
{
    char buf[1024];
    int rc;

    if (opt(x, id) == NULL)
        return 0;
    if (max > sizeof(buf))
        max = sizeof(buf);
    if ((rc = read_secret(optdefs[id].name, opt(x, id), buf, max)) != 0)
        return rc;
    json_object_set_new(o, key, json_string(buf));
    OPENSSL_cleanse(buf, sizeof(buf));
    return 0;
}

/* The body of endpoints add / update from the options.  0 ok, else the exit code (said). */
static int
endpoint_body(const struct ctx *x, int add, json_t *req)
{
    json_t *in = json_object();
    long long n;
    int rc;

    if (in == NULL)
        return 1;
    if (add && x->given[O_CA] && x->given[O_NEW_CA]) {
        fprintf(stderr, "scepctl: give --ca (an existing CA) or --new-ca SUBJECT, not both\n");
        goto usage;
    }
    if (x->given[O_CA_KEY] && !x->given[O_NEW_CA]) {
        fprintf(stderr, "scepctl: --ca-key applies only with --new-ca SUBJECT\n");
        goto usage;
    }
    if (x->given[O_CHALLENGE] && x->given[O_CHALLENGE_FILE]) {
        fprintf(stderr, "scepctl: give --challenge or --challenge-file, not both\n");
        goto usage;
    }
    if (add)
        json_object_set_new(req, "name", json_string(x->arg));
    set_str(req, x, O_CA, "ca");
    set_str(req, x, O_NEW_CA, "new_ca_subject");
    if (opt(x, O_CA_KEY) != NULL &&
        check_word("--ca-key", opt(x, O_CA_KEY), "rsa:2048|rsa:3072|rsa:4096|ec:p256|ec:p384") != 0)
        goto usage;
    set_str(req, x, O_CA_KEY, "new_ca_key");
    set_str(req, x, O_PROFILE, "profile");
    set_str(req, x, O_ORG, "organization");
    set_str(req, x, O_DEPT, "department");
    if (opt(x, O_VALIDITY) != NULL) {
        if (parse_num("--validity", opt(x, O_VALIDITY), 1, 36500, &n) != 0)
            goto usage;
        json_object_set_new(req, "validity_days", json_integer(n));
    }
    if (opt(x, O_GETCACERT) != NULL &&
        check_word("--getcacert", opt(x, O_GETCACERT), "single|chain"))
        goto usage;
    set_str(req, x, O_GETCACERT, "getcacert_format");
    if (opt(x, O_GETCERT) != NULL && check_word("--getcert", opt(x, O_GETCERT), "single|chain"))
        goto usage;
    set_str(req, x, O_GETCERT, "getcert_format");
    if (opt(x, O_MODE) != NULL &&
        check_word("--mode", opt(x, O_MODE), "static|account|one-time|signed|webhook|intune"))
        goto usage;
    set_str(req, x, O_MODE, "mode");
    if (opt(x, O_APPROVAL) != NULL && check_word("--approval", opt(x, O_APPROVAL), "auto|manual"))
        goto usage;
    set_str(req, x, O_APPROVAL, "approval");
    set_str(req, x, O_WEBHOOK_URL, "webhook_url");
    if (opt(x, O_WEBHOOK_TIMEOUT) != NULL) {
        if (parse_num("--webhook-timeout", opt(x, O_WEBHOOK_TIMEOUT), 100, 120000, &n) != 0)
            goto usage;
        json_object_set_new(req, "webhook_timeout_ms", json_integer(n));
    }
    set_str(req, x, O_NOTIFY_URL, "notify_url");
    if (opt(x, O_MAX_OUTSTANDING) != NULL) {
        if (parse_num("--max-outstanding", opt(x, O_MAX_OUTSTANDING), 1, 1000000, &n) != 0)
            goto usage;
        json_object_set_new(req, "max_outstanding", json_integer(n));
    }
    if (opt(x, O_CHALLENGE_TTL) != NULL) {
        if (parse_duration("--challenge-ttl", opt(x, O_CHALLENGE_TTL), &n) != 0)
            goto usage;
        json_object_set_new(req, "challenge_ttl", json_integer(n));
    }
    if (x->given[O_ROTATE_KEY])
        json_object_set_new(req, "rotate_key", json_true());
    set_str(req, x, O_CHALLENGE, "challenge");
    set_str(in, x, O_INTUNE_TENANT, "tenant");
    set_str(in, x, O_INTUNE_APP_ID, "app_id");
    set_str(in, x, O_INTUNE_PROVIDER, "provider");
    set_str(in, x, O_INTUNE_PROXY, "proxy");
    set_str(in, x, O_INTUNE_LOGIN_URL, "login_url");
    set_str(in, x, O_INTUNE_GRAPH_URL, "graph_url");
    set_str(in, x, O_INTUNE_RESOURCE_URL, "resource_url");
    if ((rc = set_secret(req, x, O_CHALLENGE_FILE, "challenge", 256)) != 0 ||
        (rc = set_secret(req, x, O_WEBHOOK_BEARER_FILE, "webhook_bearer", 256)) != 0 ||
        (rc = set_secret(in, x, O_INTUNE_APP_KEY_FILE, "app_key", 512)) != 0) {
        json_decref(in);
        return rc;
    }
    if (json_object_size(in) > 0)
        json_object_set_new(req, "intune", in);
    else
        json_decref(in);
    return 0;
usage:
    json_decref(in);
    return 2;
}

/* Print the keys an add or update generated, once, with what each is for. */
static void
print_keys(const json_t *body, const char *name)
{
    static const struct {
        const char *key, *label, *use;
    } keys[] = {
        {"challenge", "challenge:", "the static challenge password clients send"},
        {"token_key", "token key:", "give it to the MDM that mints enrollment tokens"},
        {"webhook_key", "webhook key:", "the webhook checks scepd's signature with it"},
        {"notify_key", "notify key:", "the event receiver checks scepd's signature with it"},
    };
    size_t i;
    int any = 0, key = 0;

    for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        const json_t *v = json_object_get(body, keys[i].key);
        if (!json_is_string(v) || json_string_length(v) == 0)
            continue;
        fflush(stdout); /* each secret next to what it is for, also when both go to a terminal */
        printf("%-13s %s\n", keys[i].label, json_string_value(v));
        fflush(stdout);
        fprintf(stderr, "  (%s)\n", keys[i].use);
        any = 1;
        key |= i > 0;
    }
    if (!any)
        return;
    fprintf(stderr, "note: shown only now and never again; store it safely.\n");
    if (key)
        fprintf(stderr, "      New keys: scepctl endpoints update %s --rotate-key\n", name);
    if (json_is_string(json_object_get(body, "challenge")))
        fprintf(stderr, "      Another challenge: scepctl endpoints update %s --challenge-file F\n",
                name);
}

static int
endpoints_put(const struct ctx *x, int add)
{
    json_t *req = json_object(), *body = NULL;
    char path[256];
    int rc;

    if (req == NULL)
        return 1;
    if ((rc = endpoint_body(x, add, req)) != 0) {
        json_decref(req);
        return rc;
    }
    if (!add && json_object_size(req) == 0) {
        json_decref(req);
        fprintf(stderr,
                "scepctl: endpoints update %s: nothing to change; give at least one option "
                "(see scepctl endpoints update --help)\n",
                x->arg);
        return 2;
    }
    if (add)
        snprintf(path, sizeof(path), "/v1/endpoints");
    else if (make_path(path, sizeof(path), "/v1/endpoints/%s", x->arg, NULL) != 0) {
        json_decref(req);
        return 2;
    }
    if (api_post(x->dir, path, req, &body) != 0)
        return 1;
    if (x->as_json) {
        print_json(body);
    } else {
        const json_t *p = json_object_get(body, "path");
        printf("endpoint %s %s; SCEP URL path: %s\n", x->arg, add ? "added" : "updated",
               json_is_string(p) ? json_string_value(p) : "-");
        print_keys(body, x->arg);
    }
    json_decref(body);
    return 0;
}

static int
endpoints_add(const struct ctx *x)
{
    return endpoints_put(x, 1);
}

static int
endpoints_update(const struct ctx *x)
{
    return endpoints_put(x, 0);
}

static int
endpoints_enable(const struct ctx *x, int enable)
{
    char path[256];
    json_t *body;

    if (make_path(path, sizeof(path),
                  enable ? "/v1/endpoints/%s/enable" : "/v1/endpoints/%s/disable", x->arg,
                  NULL) != 0)
        return 2;
    if (api_post(x->dir, path, json_object(), &body) != 0)
        return 1;
    if (x->as_json)
        print_json(body);
    else if (enable)
        printf("endpoint %s enabled; /scep/%s answers again\n", x->arg, x->arg);
    else
        printf("endpoint %s disabled; /scep/%s answers 404 until: scepctl endpoints enable %s\n",
               x->arg, x->arg, x->arg);
    json_decref(body);
    return 0;
}

static int
endpoints_disable_cmd(const struct ctx *x)
{
    return endpoints_enable(x, 0);
}

static int
endpoints_enable_cmd(const struct ctx *x)
{
    return endpoints_enable(x, 1);
}

/* ---- accounts ---- */

static const struct col account_cols[] = {
    {"name", "NAME"},          {"enabled", "ENABLED"}, {"organization", "O"},
    {"department", "OU"},      {"profile", "PROFILE"}, {"validity_days", "DAYS"},
    {"created_at", "CREATED"},
};

static int
accounts_list(const struct ctx *x)
{
    char path[256];

    if (make_path(path, sizeof(path), "/v1/endpoints/%s/accounts", opt(x, O_ENDPOINT), NULL) != 0)
        return 2;
    return list_command(x, path, "accounts", account_cols,
                        sizeof(account_cols) / sizeof(account_cols[0]), "account(s)");
}

static void
print_code(const json_t *body, const char *what)
{
    const json_t *c = json_object_get(body, "access_code");

    printf("%s\naccess code: %s\n", what, json_is_string(c) ? json_string_value(c) : "-");
    fprintf(stderr, "note: the access code is shown only now and cannot be shown again; hand it "
                    "to the account's owner (a new one: scepctl accounts rotate-code)\n");
}

static int
accounts_add(const struct ctx *x)
{
    json_t *req = json_object(), *body = NULL;
    char path[256], what[256];
    long long n;
    int rc;

    if (req == NULL)
        return 1;
    json_object_set_new(req, "name", json_string(x->arg));
    set_str(req, x, O_ORG, "organization");
    set_str(req, x, O_DEPT, "department");
    set_str(req, x, O_PROFILE, "profile");
    if (opt(x, O_VALIDITY) != NULL) {
        if (parse_num("--validity", opt(x, O_VALIDITY), 1, 36500, &n) != 0) {
            json_decref(req);
            return 2;
        }
        json_object_set_new(req, "validity_days", json_integer(n));
    }
    if ((rc = set_secret(req, x, O_CODE_FILE, "code", 256)) != 0 ||
        (rc = make_path(path, sizeof(path), "/v1/endpoints/%s/accounts", opt(x, O_ENDPOINT),
                        NULL)) != 0) {
        json_decref(req);
        return rc;
    }
    if (api_post(x->dir, path, req, &body) != 0)
        return 1;
    if (x->as_json) {
        print_json(body);
    } else {
        snprintf(what, sizeof(what), "account %s added to endpoint %s", x->arg, opt(x, O_ENDPOINT));
        print_code(body, what);
    }
    json_decref(body);
    return 0;
}

static int
accounts_op(const struct ctx *x, const char *op)
{
    char path[384], what[256];
    json_t *body = NULL;

    if (make_path(path, sizeof(path), "/v1/endpoints/%s/accounts/%s/", opt(x, O_ENDPOINT),
                  x->arg) != 0 ||
        strlen(path) + strlen(op) >= sizeof(path))
        return 2;
    strcat(path, op);
    if (api_post(x->dir, path, json_object(), &body) != 0)
        return 1;
    if (x->as_json) {
        print_json(body);
    } else if (strcmp(op, "rotate-code") == 0) {
        snprintf(what, sizeof(what),
                 "account %s of endpoint %s has a new access code; the old "
                 "one no longer works",
                 x->arg, opt(x, O_ENDPOINT));
        print_code(body, what);
    } else {
        printf("account %s of endpoint %s %s\n", x->arg, opt(x, O_ENDPOINT),
               strcmp(op, "enable") == 0 ? "enabled" : "disabled; its access code is refused");
    }
    json_decref(body);
    return 0;
}

static int
accounts_disable(const struct ctx *x)
{
    return accounts_op(x, "disable");
}

static int
accounts_enable(const struct ctx *x)
{
    return accounts_op(x, "enable");
}

static int
accounts_rotate(const struct ctx *x)
{
    return accounts_op(x, "rotate-code");
}

/* ---- challenges and tokens ---- */

static const struct col challenge_cols[] = {
    {"id", "ID"},
    {"state", "STATE"},
    {"created_at", "CREATED"},
    {"expires_at", "EXPIRES"},
    {"subject", "SUBJECT"},
    {"sans", "SANS"},
    {"device_id", "DEVICE"},
    {"sid", "SID"},
    {"serial", "SERIAL"},
};

static int
challenges_list(const struct ctx *x)
{
    char path[256];

    if (make_path(path, sizeof(path), "/v1/endpoints/%s/challenges", opt(x, O_ENDPOINT), NULL) != 0)
        return 2;
    return list_command(x, path, "challenges", challenge_cols,
                        sizeof(challenge_cols) / sizeof(challenge_cols[0]), "challenge(s)");
}

/* challenges new (token 0) and challenges sign (token 1): the secret alone on stdout. */
static int
authz_new(const struct ctx *x, int token)
{
    json_t *req = json_object(), *body = NULL, *v;
    char path[256];
    long long n;

    if (req == NULL)
        return 1;
    if (opt(x, O_TTL) != NULL) {
        if (parse_duration("--ttl", opt(x, O_TTL), &n) != 0) {
            json_decref(req);
            return 2;
        }
        json_object_set_new(req, "ttl", json_integer(n));
    }
    set_str(req, x, O_SUBJECT, "subject");
    if (x->given[O_SAN])
        json_object_set_new(req, "san", json_string(x->san));
    set_str(req, x, O_EKU, "eku");
    set_str(req, x, O_DEVICE, "device");
    set_str(req, x, O_SID, "sid");
    if (make_path(path, sizeof(path),
                  token ? "/v1/endpoints/%s/tokens" : "/v1/endpoints/%s/challenges",
                  opt(x, O_ENDPOINT), NULL) != 0) {
        json_decref(req);
        return 2;
    }
    if (api_post(x->dir, path, req, &body) != 0)
        return 1;
    v = json_object_get(body, token ? "token" : "challenge");
    if (!json_is_string(v)) {
        fprintf(stderr, "scepctl: unexpected reply from scepd (no %s)\n",
                token ? "token" : "challenge");
        json_decref(body);
        return 1;
    }
    if (x->as_json) {
        print_json(body);
    } else {
        const json_t *e = json_object_get(body, "expires_at");
        printf("%s\n", json_string_value(v));
        if (json_is_integer(e)) {
            char t[32];
            fmt_time(json_integer_value(e), t, sizeof(t));
            fprintf(stderr, "(single use, valid until %s)\n", t);
        }
    }
    json_decref(body);
    return 0;
}

static int
challenges_new(const struct ctx *x)
{
    return authz_new(x, 0);
}

static int
challenges_sign(const struct ctx *x)
{
    return authz_new(x, 1);
}

/* ---- events and audit ---- */

static const struct col event_cols[] = {
    {"id", "ID"},
    {"created_at", "CREATED"},
    {"endpoint", "ENDPOINT"},
    {"kind", "KIND"},
    {"status", "STATUS"},
    {"attempts", "ATTEMPTS"},
    {"next_attempt_at", "NEXT_ATTEMPT"},
    {"delivered_at", "DELIVERED"},
    {"last_error", "LAST_ERROR"},
};

static const struct col audit_cols[] = {
    {"id", "ID"},
    {"at", "AT"},
    {"actor", "ACTOR"},
    {"action", "ACTION"},
    {"endpoint", "ENDPOINT"},
    {"object", "OBJECT"},
    {"outcome", "OUTCOME"},
    {"reason", "REASON"},
};

static int
limit_query(const struct ctx *x, char *q, size_t len, const char *sep)
{
    long long n;

    q[0] = '\0';
    if (opt(x, O_LIMIT) == NULL)
        return 0;
    if (parse_num("--limit", opt(x, O_LIMIT), 1, 1000, &n) != 0)
        return 2;
    snprintf(q, len, "%slimit=%lld", sep, n);
    return 0;
}

static int
events_list(const struct ctx *x)
{
    const char *st = opt(x, O_STATUS);
    char path[128], lim[32];

    if (st != NULL && check_word("--status", st, "pending|delivered|dead|local") != 0)
        return 2;
    if (limit_query(x, lim, sizeof(lim), st != NULL ? "&" : "?") != 0)
        return 2;
    snprintf(path, sizeof(path), "/v1/events%s%s%s", st != NULL ? "?status=" : "",
             st != NULL ? st : "", lim);
    return list_command(x, path, "events", event_cols, sizeof(event_cols) / sizeof(event_cols[0]),
                        "event(s)");
}

static int
audit_list(const struct ctx *x)
{
    char path[128], lim[32];

    if (limit_query(x, lim, sizeof(lim), "?") != 0)
        return 2;
    snprintf(path, sizeof(path), "/v1/audit%s", lim);
    return list_command(x, path, "audit", audit_cols, sizeof(audit_cols) / sizeof(audit_cols[0]),
                        "audit record(s)");
}

/* ---- the command table ---- */

#define PROFILE_OPTS                                                                               \
    (B(O_TEMPLATE) | B(O_VALIDITY) | B(O_VALIDITY_DAYS) | B(O_MAX_VALIDITY) | B(O_EKU) |           \
     B(O_KEY_TYPES) | B(O_SUBJECT_ALLOW) | B(O_SUBJECT_FORBID) | B(O_SAN_TYPES) |                  \
     B(O_SAN_PATTERNS) | B(O_KEY_USAGE) | B(O_CDP_URL) | B(O_AIA_URL) | B(O_DUPLICATE_SUBJECT))
#define ENDPOINT_OPTS                                                                              \
    (B(O_PROFILE) | B(O_VALIDITY) | B(O_GETCACERT) | B(O_GETCERT) | B(O_MODE) | B(O_CHALLENGE) |   \
     B(O_CHALLENGE_FILE) | B(O_APPROVAL) | B(O_WEBHOOK_URL) | B(O_WEBHOOK_TIMEOUT) |               \
     B(O_WEBHOOK_BEARER_FILE) | B(O_INTUNE_TENANT) | B(O_INTUNE_APP_ID) |                          \
     B(O_INTUNE_APP_KEY_FILE) | B(O_INTUNE_PROVIDER) | B(O_INTUNE_PROXY) | B(O_INTUNE_LOGIN_URL) | \
     B(O_INTUNE_GRAPH_URL) | B(O_INTUNE_RESOURCE_URL) | B(O_NOTIFY_URL) | B(O_MAX_OUTSTANDING) |   \
     B(O_CHALLENGE_TTL))
#define AUTHZ_OPTS (B(O_ENDPOINT) | B(O_TTL) | B(O_SUBJECT) | B(O_SAN) | B(O_DEVICE) | B(O_SID))

#define ENDPOINT_HELP                                                                              \
    "  --profile P             issuance profile (scepctl profiles list); \"-\" for none\n"         \
    "  --validity DAYS         certificate lifetime, 1..36500 (default 365)\n"                     \
    "  --getcacert single|chain  GetCACert answers with the CA alone or CA and RA\n"               \
    "  --getcert single|chain  GetCert answers with the certificate alone or its chain\n"          \
    "  --mode M                how enrollments are authorized: static (one shared\n"               \
    "                          challenge), account (access codes), one-time (challenges\n"         \
    "                          from scepctl challenges new), signed (tokens from an MDM),\n"       \
    "                          webhook (an HTTP service decides), intune\n"                        \
    "  --challenge S           the static challenge (prefer --challenge-file; without\n"           \
    "                          either, mode static generates one and prints it once)\n"            \
    "  --challenge-file F      read the static challenge from F (\"-\": standard input)\n"         \
    "  --approval auto|manual  manual: requests wait for scepctl requests approve\n"               \
    "  --webhook-url U         mode webhook: the URL asked to decide\n"                            \
    "  --webhook-timeout MS    how long to wait for it, 100..120000 ms\n"                          \
    "  --webhook-bearer-file F bearer token scepd sends to the webhook, read from F\n"             \
    "  --intune-tenant T --intune-app-id ID --intune-app-key-file F\n"                             \
    "  --intune-provider P --intune-proxy U --intune-login-url U --intune-graph-url U\n"           \
    "  --intune-resource-url U mode intune: the Azure AD application validating requests\n"        \
    "  --notify-url U          issuance and refusal events are POSTed here (\"-\": none)\n"        \
    "  --max-outstanding N     mode one-time: unused challenges allowed at once\n"                 \
    "  --challenge-ttl DUR     mode one-time: default lifetime, 60s..30d (60m, 2h, 1d,\n"          \
    "                          3600s or plain seconds)\n"

static const struct cmd {
    const char *noun, *verb;
    const char *arg; /* the positional argument's name, or NULL */
    uint64_t opts;   /* the options it takes (--json and --data always) */
    uint64_t need;   /* the options it requires */
    int (*run)(const struct ctx *x);
    const char *synopsis;
    const char *help;
} cmds[] = {
    {"certs", "list", NULL, 0, 0, certs_list, "certs list", "  Issued certificates.\n"},
    {"certs", "revoke", "SERIAL", B(O_REASON), 0, certs_revoke, "certs revoke SERIAL [--reason R]",
     "  Revoke a certificate; its CA's CRL is remade at once.\n"
     "  --reason R   keyCompromise, superseded, cessationOfOperation, affiliationChanged,\n"
     "               cACompromise, privilegeWithdrawn, unspecified (default)\n"
     "Example: scepctl --data /var/lib/scepd certs revoke 1f3a... --reason keyCompromise\n"},
    {"ca", "list", NULL, 0, 0, ca_list, "ca list", "  The CAs and which endpoint uses each.\n"},
    {"ca", "rollover", NULL, B(O_ENDPOINT) | B(O_SELF_SIGNED), 0, ca_rollover,
     "ca rollover [--endpoint E] [--self-signed]",
     "  Prepare the next CA and RA of endpoint E (default: default), served by\n"
     "  GetNextCACert; cross-signed by the current CA unless --self-signed.\n"},
    {"ca", "switch", NULL, B(O_ENDPOINT), 0, ca_switch, "ca switch [--endpoint E]",
     "  Issue from the prepared CA from now on.\n"},
    {"requests", "list", NULL, B(O_STATUS), 0, requests_list,
     "requests list [--status pending|issued|rejected|failed]",
     "  Enrollment requests, newest first.\n"},
    {"requests", "approve", "ID", 0, 0, requests_approve, "requests approve ID",
     "  Issue the certificate of a pending request (the client gets it at its next poll).\n"},
    {"requests", "reject", "ID", B(O_REASON), 0, requests_reject,
     "requests reject ID [--reason TEXT]",
     "  Refuse a pending request (the client gets FAILURE).\n"},
    {"profiles", "list", NULL, 0, 0, profiles_list, "profiles list", "  Issuance profiles.\n"},
    {"profiles", "show", "NAME", 0, 0, profiles_show, "profiles show NAME",
     "  Every setting of one profile.\n"},
    {"profiles", "add", "NAME", PROFILE_OPTS, 0, profiles_add,
     "profiles add NAME [--template T] [--validity DAYS] [--eku LIST] [...]",
     "  Add an issuance profile; settings not given get the built-in defaults.\n"
     "  --template T            Microsoft certificate template name (or OID) selecting it\n"
     "  --validity DAYS         default validity, 1..36500 (also --validity-days)\n"
     "  --max-validity DAYS     ceiling for every source of validity (0: none)\n"
     "  --eku LIST              extended key usages: clientAuth,serverAuth,... or OIDs\n"
     "  --key-types LIST        rsa:2048,ec:p256,ec:p384,...\n"
     "  --subject-allow LIST    RDNs copied from the request: CN,O,OU,C,ST,L,emailAddress\n"
     "  --subject-forbid LIST   RDNs that make a request fail\n"
     "  --san-types LIST        SAN types copied from the request: dns,email,ip,uri\n"
     "  --san-patterns LIST     allowed names: dns:*.corp.example.com,email:*@example.com\n"
     "  --key-usage LIST        digitalSignature,keyEncipherment,...\n"
     "  --cdp-url U --aia-url U CRL distribution point and caIssuers URLs\n"
     "  --duplicate-subject allow|refuse|revoke  a second valid certificate per subject\n"
     "Example: scepctl --data /var/lib/scepd profiles add wifi --template WiFiMachine \\\n"
     "           --validity 90 --eku clientAuth,serverAuth --duplicate-subject revoke\n"},
    {"profiles", "update", "NAME", PROFILE_OPTS, 0, profiles_update,
     "profiles update NAME [options of profiles add]",
     "  Change the settings given; the others keep their values (options as in\n"
     "  scepctl profiles add --help).\n"
     "Example: scepctl --data /var/lib/scepd profiles update wifi --max-validity 365\n"},
    {"endpoints", "list", NULL, 0, 0, endpoints_list, "endpoints list",
     "  The SCEP endpoints (/scep/NAME) and their settings.\n"},
    {"endpoints", "show", "NAME", 0, 0, endpoints_show, "endpoints show NAME",
     "  Every setting of one endpoint (never its secrets).\n"},
    {"endpoints", "add", "NAME",
     ENDPOINT_OPTS | B(O_CA) | B(O_NEW_CA) | B(O_CA_KEY) | B(O_ORG) | B(O_DEPT), 0, endpoints_add,
     "endpoints add NAME [--ca CA | --new-ca SUBJECT [--ca-key rsa:2048]] [options]",
     "  Add an endpoint served at /scep/NAME at once (no restart).  Generated keys and\n"
     "  challenges are printed once.\n"
     "  --ca CA                 issue from an existing CA (scepctl ca list)\n"
     "  --new-ca SUBJECT        make a new self-signed CA, e.g. \"CN=Wi-Fi CA,O=Example\"\n"
     "  --ca-key K              its key: rsa:2048 (default), rsa:3072, rsa:4096, ec:p256,\n"
     "                          ec:p384\n"
     "  --org O --dept D        fixed O and OU of every certificate (cannot change "
     "later)\n" ENDPOINT_HELP
     "Example: scepctl --data /var/lib/scepd endpoints add wifi --new-ca \"CN=Wi-Fi CA\" \\\n"
     "           --profile wifi --mode one-time --challenge-ttl 2h --max-outstanding 500\n"},
    {"endpoints", "update", "NAME", ENDPOINT_OPTS | B(O_ROTATE_KEY), 0, endpoints_update,
     "endpoints update NAME [options of endpoints add but --ca/--new-ca/--org/--dept] "
     "[--rotate-key]",
     "  Change the settings given; they apply at once.\n" ENDPOINT_HELP
     "  --rotate-key            new token, webhook and notify keys (printed once)\n"
     "Example: scepctl --data /var/lib/scepd endpoints update wifi --approval manual\n"},
    {"endpoints", "disable", "NAME", 0, 0, endpoints_disable_cmd, "endpoints disable NAME",
     "  /scep/NAME answers 404 until enabled again.\n"},
    {"endpoints", "enable", "NAME", 0, 0, endpoints_enable_cmd, "endpoints enable NAME",
     "  Serve a disabled endpoint again.\n"},
    {"accounts", "list", NULL, B(O_ENDPOINT), B(O_ENDPOINT), accounts_list,
     "accounts list --endpoint E", "  The accounts of an endpoint in mode account.\n"},
    {"accounts", "add", "NAME",
     B(O_ENDPOINT) | B(O_ORG) | B(O_DEPT) | B(O_PROFILE) | B(O_VALIDITY) | B(O_CODE_FILE),
     B(O_ENDPOINT), accounts_add,
     "accounts add --endpoint E NAME [--org O] [--dept D] [--profile P] [--validity DAYS] "
     "[--code-file F]",
     "  Add an account; its access code (the challenge password its devices send) is\n"
     "  printed once.\n"
     "  --org O --dept D        fixed O and OU of its certificates\n"
     "  --profile P             its issuance profile (default: the endpoint's)\n"
     "  --validity DAYS         certificate lifetime, 1..36500\n"
     "  --code-file F           use the access code in F (\"-\": standard input) rather\n"
     "                          than a generated one\n"
     "Example: scepctl --data /var/lib/scepd accounts add --endpoint partners acme --org \"ACME "
     "Ltd\"\n"},
    {"accounts", "disable", "NAME", B(O_ENDPOINT), B(O_ENDPOINT), accounts_disable,
     "accounts disable --endpoint E NAME", "  Refuse the account's access code.\n"},
    {"accounts", "enable", "NAME", B(O_ENDPOINT), B(O_ENDPOINT), accounts_enable,
     "accounts enable --endpoint E NAME", "  Accept the account's access code again.\n"},
    {"accounts", "rotate-code", "NAME", B(O_ENDPOINT), B(O_ENDPOINT), accounts_rotate,
     "accounts rotate-code --endpoint E NAME",
     "  A new access code (printed once); the old one stops working.\n"},
    {"challenges", "list", NULL, B(O_ENDPOINT), B(O_ENDPOINT), challenges_list,
     "challenges list --endpoint E",
     "  The one-time challenges of an endpoint (never the challenges themselves).\n"},
    {"challenges", "new", NULL, AUTHZ_OPTS, B(O_ENDPOINT), challenges_new,
     "challenges new --endpoint E [--ttl 60m] [--subject DN] [--san TYPE:V] [--device ID] "
     "[--sid S]",
     "  A single-use challenge for an endpoint in mode one-time, printed alone on\n"
     "  stdout so scripts can capture it.\n"
     "  --ttl DUR       lifetime, 60s..30d: 60m, 2h, 1d, 3600s or plain seconds\n"
     "                  (default: the endpoint's)\n"
     "  --subject DN    the only subject it may be used for, e.g. \"CN=laptop-42\"\n"
     "  --san TYPE:V    a name it may be used for (DNS:, email:, IP:, URI:); repeat it or\n"
     "                  give a comma list\n"
     "  --device ID     the device it is for (recorded with the certificate)\n"
     "  --sid S         the Windows account SID put in the certificate (S-1-5-...)\n"
     "Example: chal=$(scepctl --data /var/lib/scepd challenges new --endpoint wifi \\\n"
     "           --ttl 2h --subject CN=laptop-42 --san DNS:laptop-42.corp.example.com)\n"},
    {"challenges", "sign", NULL, AUTHZ_OPTS | B(O_EKU), B(O_ENDPOINT), challenges_sign,
     "challenges sign --endpoint E [--ttl 60m] [--subject DN] [--san TYPE:V] [--eku LIST] "
     "[--device ID] [--sid S]",
     "  A signed token for an endpoint in mode signed (what an MDM would mint with the\n"
     "  endpoint's token key), printed alone on stdout.  Options as challenges new, and\n"
     "  --eku LIST      the extended key usages it allows, e.g. clientAuth\n"
     "Example: tok=$(scepctl --data /var/lib/scepd challenges sign --endpoint mdm --ttl 1d \\\n"
     "           --subject CN=phone-7 --eku clientAuth)\n"},
    {"events", "list", NULL, B(O_STATUS) | B(O_LIMIT), 0, events_list,
     "events list [--status pending|delivered|dead|local] [--limit N]",
     "  Issuance and refusal events (the outbox delivered to --notify-url), newest first;\n"
     "  --limit 1..1000 (default 1000).\n"},
    {"audit", "list", NULL, B(O_LIMIT), 0, audit_list, "audit list [--limit N]",
     "  The audit trail (who changed or issued what), newest first; --limit 1..1000.\n"},
};

#define NCMDS (sizeof(cmds) / sizeof(cmds[0]))

static void
usage(FILE *f)
{
    size_t i;

    fprintf(f, "scepctl - manage a running scepd\n\nUsage: scepctl --data DIR COMMAND [--json]\n\n"
               "Commands:\n");
    for (i = 0; i < NCMDS; i++)
        fprintf(f, "  %s\n", cmds[i].synopsis);
    fprintf(f, "\n"
               "`scepctl NOUN VERB --help` explains a command's options, with an example.\n"
               "--json prints what scepd answered, for scripts (times in Unix seconds, except\n"
               "certs and requests list).  Secrets are read from files (--*-file F, \"-\" for\n"
               "standard input), which keeps them out of shell history and ps output.\n"
               "DIR is the data directory scepd serves; scepctl talks to it through\n"
               "DIR/admin.sock with the token in DIR/admin.token (so it needs read access\n"
               "to that file: run it as the user scepd runs as).\n"
               "Exit codes: 0 ok, 1 runtime failure, 2 usage error.\n");
}

static void
command_help(const struct cmd *c)
{
    printf("Usage: scepctl --data DIR %s [--json]\n\n%s", c->synopsis, c->help);
}

/* The commands of a noun, for "unknown verb" messages. */
static void
verbs_of(const char *noun, char *out, size_t len)
{
    size_t i, o = 0;

    out[0] = '\0';
    for (i = 0; i < NCMDS; i++)
        if (strcmp(cmds[i].noun, noun) == 0 && o < len)
            o += (size_t)snprintf(out + o, len - o, "%s%s", o ? ", " : "", cmds[i].verb);
}

static int
find_opt(const char *name)
{
    int i;

    for (i = 0; i < O__COUNT; i++)
        if (strcmp(optdefs[i].name, name) == 0)
            return i;
    return -1;
}

int
main(int argc, char **argv)
{
    struct ctx x;
    const struct cmd *c = NULL;
    const char *noun, *verb;
    char verbs[256];
    int i = 1, rc, help = 0;
    size_t k, sanlen = 0;

    memset(&x, 0, sizeof(x));
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    for (; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--data") == 0 && i + 1 < argc) {
            x.dir = argv[++i];
        } else if (strncmp(argv[i], "--data=", 7) == 0) {
            x.dir = argv[i] + 7;
        } else {
            break;
        }
    }
    if (i >= argc || argv[i][0] == '-') {
        fprintf(stderr, "scepctl: %s%sa command is required; see scepctl --help\n",
                i < argc ? argv[i] : "", i < argc ? ": unknown option; " : "");
        return 2;
    }
    noun = argv[i++];
    verb = i < argc && argv[i][0] != '-' ? argv[i++] : "";
    for (k = 0; k < NCMDS && c == NULL; k++)
        if (strcmp(cmds[k].noun, noun) == 0 && strcmp(cmds[k].verb, verb) == 0)
            c = &cmds[k];
    if (c == NULL) {
        verbs_of(noun, verbs, sizeof(verbs));
        if (verbs[0] == '\0')
            fprintf(stderr, "scepctl: unknown command %s; see scepctl --help\n", noun);
        else if (verb[0] == '\0')
            fprintf(stderr, "scepctl: %s needs a command: %s (scepctl %s VERB --help)\n", noun,
                    verbs, noun);
        else
            fprintf(stderr, "scepctl: %s %s: unknown command; %s takes %s\n", noun, verb, noun,
                    verbs);
        return 2;
    }
    for (; i < argc; i++) {
        const char *a = argv[i], *eq = strchr(a, '=');
        char name[64];
        int o;

        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            help = 1;
            continue;
        }
        if (a[0] != '-' || a[1] == '\0') {
            if (c->arg == NULL || x.arg != NULL) {
                fprintf(stderr,
                        "scepctl: %s %s: unexpected argument %s; see scepctl %s %s --help\n", noun,
                        verb, a, noun, verb);
                return 2;
            }
            x.arg = a;
            continue;
        }
        snprintf(name, sizeof(name), "%.*s", eq != NULL ? (int)(eq - a) : (int)strlen(a), a);
        if (strcmp(name, "--data") == 0) {
            if (eq == NULL && i + 1 >= argc) {
                fprintf(stderr, "scepctl: --data needs a directory\n");
                return 2;
            }
            x.dir = eq != NULL ? eq + 1 : argv[++i];
            continue;
        }
        o = find_opt(name);
        if (o < 0 || (o != O_JSON && !(c->opts & B(o)))) {
            fprintf(stderr, "scepctl: %s %s: %s option %s; see scepctl %s %s --help\n", noun, verb,
                    o < 0 ? "unknown" : "does not take the", name, noun, verb);
            return 2;
        }
        if (x.given[o] && !optdefs[o].repeat) {
            fprintf(stderr, "scepctl: %s %s: %s given twice\n", noun, verb, name);
            return 2;
        }
        x.given[o] = 1;
        if (!optdefs[o].arg) {
            if (eq != NULL) {
                fprintf(stderr, "scepctl: %s takes no value\n", name);
                return 2;
            }
            continue;
        }
        if (eq == NULL && i + 1 >= argc) {
            fprintf(stderr, "scepctl: %s %s: %s needs a value; see scepctl %s %s --help\n", noun,
                    verb, name, noun, verb);
            return 2;
        }
        x.v[o] = eq != NULL ? eq + 1 : argv[++i];
        if (o == O_SAN) {
            /* repeatable and comma lists alike: one comma list of TYPE:VALUE */
            size_t l = strlen(x.v[o]);
            if (strchr(x.v[o], ':') == NULL || sanlen + l + 2 > sizeof(x.san)) {
                fprintf(stderr,
                        "scepctl: --san %s: give TYPE:VALUE such as DNS:host.example.com, "
                        "email:a@example.com, IP:192.0.2.1 (at most %zu characters in all)\n",
                        x.v[o], sizeof(x.san) - 1);
                return 2;
            }
            if (sanlen > 0)
                x.san[sanlen++] = ',';
            memcpy(x.san + sanlen, x.v[o], l + 1);
            sanlen += l;
        }
    }
    if (help) {
        command_help(c);
        return 0;
    }
    x.as_json = x.given[O_JSON];
    if (x.dir == NULL) {
        fprintf(stderr, "scepctl: --data DIR is required (the directory scepd serves)\n");
        return 2;
    }
    if (c->arg != NULL && x.arg == NULL) {
        fprintf(stderr, "scepctl: %s %s needs %s; see scepctl %s %s --help\n", noun, verb, c->arg,
                noun, verb);
        return 2;
    }
    for (k = 0; k < O__COUNT; k++)
        if ((c->need & B(k)) && !x.given[k]) {
            fprintf(stderr, "scepctl: %s %s: %s is required%s; see scepctl %s %s --help\n", noun,
                    verb, optdefs[k].name,
                    k == O_ENDPOINT ? " (the endpoint's name: scepctl endpoints list)" : "", noun,
                    verb);
            return 2;
        }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    rc = c->run(&x);
    curl_global_cleanup();
    return rc;
}
