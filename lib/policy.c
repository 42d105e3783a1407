/*
 * policy.c - authorization + profile -> the certificate to issue (policy.h).
 *
 * Trusts: the authorization (made by the challenge mode from a verified
 * secret) and the profile (made by an administrator and checked by
 * scep_policy_check_profile).  The CSR is the attacker's: it only ever
 * narrows what those two allow.  Must never: copy an RDN, SAN, usage or
 * SID the profile or authorization does not allow.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>

#include <jansson.h>

#include "scepd/csr.h"
#include "scepd/issue.h"
#include "scepd/pki.h"
#include "scepd/policy.h"

#define DEFAULT_KEY_TYPES "rsa:2048,ec:p256,ec:p384"
#define DEFAULT_SUBJECT_ALLOW "CN,C,ST,L,O,OU,emailAddress,serialNumber,DC,UID"
#define DEFAULT_SAN_TYPES "dns,email,ip,uri"
#define DEFAULT_EKU "clientAuth"
static const char *const ku_names[] = {
    /* bit order of RFC 5280 KeyUsage */
    "digitalSignature", "nonRepudiation", "keyEncipherment", "dataEncipherment", "keyAgreement",
    "keyCertSign",      "cRLSign",        "encipherOnly",    "decipherOnly",
};
#define KU_COUNT (sizeof(ku_names) / sizeof(ku_names[0]))

void
scep_policy_default_profile(struct scep_profile_row *p)
{
    memset(p, 0, sizeof(*p));
    p->validity_days = 0;
    snprintf(p->eku, sizeof(p->eku), "%s", DEFAULT_EKU);
    snprintf(p->key_types, sizeof(p->key_types), "%s", DEFAULT_KEY_TYPES);
    snprintf(p->subject_allow, sizeof(p->subject_allow), "%s", DEFAULT_SUBJECT_ALLOW);
    snprintf(p->san_types, sizeof(p->san_types), "%s", DEFAULT_SAN_TYPES);
    snprintf(p->duplicate_subject, sizeof(p->duplicate_subject), "allow");
}

void
scep_policy_out_clear(struct scep_policy_out *o)
{
    X509_NAME_free(o->subject);
    GENERAL_NAMES_free(o->sans);
    memset(o, 0, sizeof(*o));
}

/*
 * Call fn for each comma-separated item of list (trimmed, non-empty).
 * Stops and returns fn's non-zero result.  Items over 255 bytes fail (-1).
 */
static int
each_item(const char *list, int (*fn)(void *arg, const char *item), void *arg)
{
    const char *p = list;

    while (p != NULL && *p != '\0') {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        char item[256];
        int r;

        while (n > 0 && isspace((unsigned char)*p)) {
            p++;
            n--;
        }
        while (n > 0 && isspace((unsigned char)p[n - 1]))
            n--;
        if (n >= sizeof(item))
            return -1;
        if (n > 0) {
            memcpy(item, p, n);
            item[n] = '\0';
            if ((r = fn(arg, item)) != 0)
                return r;
        }
        p = comma ? comma + 1 : NULL;
    }
    return 0;
}

struct find {
    const char *want;
    int found;
};

static int
find_cb(void *arg, const char *item)
{
    struct find *f = arg;

    if (strcasecmp(item, f->want) == 0) {
        f->found = 1;
        return 1;
    }
    return 0;
}

/* Is word (case-insensitive) an item of list? */
static int
in_list(const char *list, const char *word)
{
    struct find f = {word, 0};

    each_item(list, find_cb, &f);
    return f.found;
}

/* ---- key ---- */

struct keyrule {
    int rsa_min;   /* 0: RSA not allowed */
    int curves[3]; /* NIDs allowed */
    size_t ncurves;
    int bad;
};

static int
keyrule_cb(void *arg, const char *item)
{
    struct keyrule *k = arg;

    if (strncasecmp(item, "rsa:", 4) == 0) {
        char *end = NULL;
        long bits = strtol(item + 4, &end, 10);
        if (end == item + 4 || *end != '\0' || bits < 2048 || bits > 8192) {
            k->bad = 1;
            return 1;
        }
        if (k->rsa_min == 0 || bits < k->rsa_min)
            k->rsa_min = (int)bits;
        return 0;
    }
    if (k->ncurves < 3 && (strcasecmp(item, "ec:p256") == 0 || strcasecmp(item, "ec:p384") == 0 ||
                           strcasecmp(item, "ec:p521") == 0)) {
        k->curves[k->ncurves++] = strcasecmp(item, "ec:p256") == 0   ? NID_X9_62_prime256v1
                                  : strcasecmp(item, "ec:p384") == 0 ? NID_secp384r1
                                                                     : NID_secp521r1;
        return 0;
    }
    k->bad = 1;
    return 1;
}

static enum scep_err
check_key(X509_REQ *req, const char *key_types)
{
    struct keyrule k;
    EVP_PKEY *pk = X509_REQ_get0_pubkey(req);
    size_t i;

    memset(&k, 0, sizeof(k));
    if (pk == NULL)
        return SCEP_E_KEY_POLICY;
    if (each_item(key_types, keyrule_cb, &k) != 0 || k.bad)
        return SCEP_E_KEY_POLICY;
    if (EVP_PKEY_get_base_id(pk) == EVP_PKEY_RSA)
        return k.rsa_min > 0 && EVP_PKEY_get_bits(pk) >= k.rsa_min ? SCEP_OK : SCEP_E_KEY_POLICY;
    if (EVP_PKEY_get_base_id(pk) == EVP_PKEY_EC) {
        char curve[64];
        size_t len = 0;
        int nid;
        if (EVP_PKEY_get_utf8_string_param(pk, "group", curve, sizeof(curve), &len) != 1) {
            ERR_clear_error();
            return SCEP_E_KEY_POLICY;
        }
        nid = OBJ_sn2nid(curve);
        if (nid == NID_undef)
            nid = EC_curve_nist2nid(curve);
        for (i = 0; i < k.ncurves; i++)
            if (k.curves[i] == nid)
                return SCEP_OK;
    }
    return SCEP_E_KEY_POLICY;
}

/* ---- subject ---- */

static int
add_text(X509_NAME *n, int nid, const char *v)
{
    return X509_NAME_add_entry_by_NID(n, nid, MBSTRING_UTF8, (const unsigned char *)v, -1, -1, 0) ==
           1;
}

/* The UTF-8 values of nid in name, as one "\n"-joined string for comparison. */
static int
values_of(const X509_NAME *name, int nid, char *out, size_t outlen)
{
    int i = -1, n = 0;
    size_t used = 0;

    out[0] = '\0';
    while ((i = X509_NAME_get_index_by_NID(name, nid, i)) >= 0) {
        unsigned char *u = NULL;
        int len = ASN1_STRING_to_UTF8(&u, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i)));
        if (len < 0 || used + (size_t)len + 2 > outlen) {
            OPENSSL_free(u);
            return -1;
        }
        memcpy(out + used, u, (size_t)len);
        used += (size_t)len;
        out[used++] = '\n';
        out[used] = '\0';
        OPENSSL_free(u);
        n++;
    }
    return n;
}

static enum scep_err
build_subject(X509_REQ *req, const struct scep_profile_row *p, const struct scep_authz *az,
              const char *org, const char *dept, X509_NAME **out)
{
    const X509_NAME *csr = X509_REQ_get_subject_name(req);
    X509_NAME *n = X509_NAME_new(), *bound = NULL;
    enum scep_err rc = SCEP_E_NAME_POLICY;
    int i;

    if (n == NULL)
        return SCEP_E_NOMEM;
    /* A forbidden RDN anywhere in the request fails it. */
    for (i = 0; i < X509_NAME_entry_count(csr); i++) {
        int nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(X509_NAME_get_entry(csr, i)));
        if (nid == NID_undef || in_list(p->subject_forbid, OBJ_nid2sn(nid)))
            goto out;
    }
    if (az->keep_subject) {
        /* a renewal: check_renewal made sure it is the renewed certificate's subject */
        X509_NAME_free(n);
        if ((*out = X509_NAME_dup(csr)) == NULL)
            return SCEP_E_NOMEM;
        return SCEP_OK;
    }
    if ((org[0] != '\0' && !add_text(n, NID_organizationName, org)) ||
        (dept[0] != '\0' && !add_text(n, NID_organizationalUnitName, dept))) {
        rc = SCEP_E_NOMEM;
        goto out;
    }
    if (az->bound && az->subject[0] != '\0') {
        /* Exactly the bound subject: every attribute it names, with the same values. */
        if (scep_pki_parse_dn(az->subject, &bound) != SCEP_OK) {
            rc = SCEP_E_INTERNAL;
            goto out;
        }
        for (i = 0; i < X509_NAME_entry_count(bound); i++) {
            const X509_NAME_ENTRY *e = X509_NAME_get_entry(bound, i);
            int nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(e));
            char want[1024], have[1024];
            if (values_of(bound, nid, want, sizeof(want)) < 0 ||
                values_of(csr, nid, have, sizeof(have)) < 0 || strcmp(want, have) != 0) {
                rc = SCEP_E_CHALLENGE_IDENTITY;
                goto out;
            }
            if ((nid == NID_organizationName && org[0] != '\0') ||
                (nid == NID_organizationalUnitName && dept[0] != '\0'))
                continue;
            if (X509_NAME_add_entry(n, e, -1, 0) != 1) {
                rc = SCEP_E_NOMEM;
                goto out;
            }
        }
    } else {
        for (i = 0; i < X509_NAME_entry_count(csr); i++) {
            const X509_NAME_ENTRY *e = X509_NAME_get_entry(csr, i);
            int nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(e));
            /* fixed values replace the request's; what is not allowed is dropped */
            if ((nid == NID_organizationName && org[0] != '\0') ||
                (nid == NID_organizationalUnitName && dept[0] != '\0'))
                continue;
            if (!in_list(p->subject_allow, OBJ_nid2sn(nid)))
                continue;
            if (X509_NAME_add_entry(n, e, -1, 0) != 1) {
                rc = SCEP_E_NOMEM;
                goto out;
            }
        }
    }
    *out = n;
    n = NULL; /* transferred */
    rc = SCEP_OK;
out:
    X509_NAME_free(bound);
    X509_NAME_free(n);
    return rc;
}

/* ---- SANs ---- */

/* "DNS:x" style text of a SAN (types policy allows at all); 0 for other types. */
static int
san_text(const GENERAL_NAME *g, char *out, size_t outlen, const char **type)
{
    const ASN1_STRING *s;
    const char *prefix;

    switch (g->type) {
    case GEN_DNS:
        s = g->d.dNSName, prefix = "DNS", *type = "dns";
        break;
    case GEN_EMAIL:
        s = g->d.rfc822Name, prefix = "email", *type = "email";
        break;
    case GEN_URI:
        s = g->d.uniformResourceIdentifier, prefix = "URI", *type = "uri";
        break;
    case GEN_IPADD: {
        char ip[INET6_ADDRSTRLEN];
        int len = ASN1_STRING_length(g->d.iPAddress);
        *type = "ip";
        if ((len != 4 && len != 16) ||
            inet_ntop(len == 4 ? AF_INET : AF_INET6, ASN1_STRING_get0_data(g->d.iPAddress), ip,
                      sizeof(ip)) == NULL)
            return 0;
        return snprintf(out, outlen, "IP:%s", ip) < (int)outlen;
    }
    default:
        return 0;
    }
    if (ASN1_STRING_length(s) <= 0 ||
        memchr(ASN1_STRING_get0_data(s), 0, (size_t)ASN1_STRING_length(s)) != NULL)
        return 0;
    return snprintf(out, outlen, "%s:%.*s", prefix, ASN1_STRING_length(s),
                    (const char *)ASN1_STRING_get0_data(s)) < (int)outlen;
}

/* No white space, control or DEL: none belongs in a URI (RFC 3986 section 2). */
struct patmatch {
    const char *type;  /* "dns" */
    const char *value; /* "host.example.com" */
    int any;           /* a pattern for this type exists */
    int matched;
};

static int
pattern_cb(void *arg, const char *item)
{
    struct patmatch *m = arg;
    const char *colon = strchr(item, ':');

    if (colon == NULL || (size_t)(colon - item) != strlen(m->type) ||
        strncasecmp(item, m->type, strlen(m->type)) != 0)
        return 0;
    m->any = 1;
    if (fnmatch(colon + 1, m->value, FNM_CASEFOLD) == 0) {
        m->matched = 1;
        return 1;
    }
    return 0;
}

/* Normalize "IP:..." of an authorization to inet_ntop form for comparison. */
static void
normalize_san(const char *in, char *out, size_t outlen)
{
    unsigned char buf[16];

    if (strncasecmp(in, "IP:", 3) == 0) {
        int af = strchr(in + 3, ':') != NULL ? AF_INET6 : AF_INET;
        char ip[INET6_ADDRSTRLEN];
        if (inet_pton(af, in + 3, buf) == 1 && inet_ntop(af, buf, ip, sizeof(ip)) != NULL) {
            snprintf(out, outlen, "IP:%s", ip);
            return;
        }
    }
    snprintf(out, outlen, "%s", in);
}

static int
bound_allows(const struct scep_authz *az, const char *text)
{
    size_t i;
    const char *colon = strchr(text, ':');
    size_t tlen = colon ? (size_t)(colon - text) : 0;

    for (i = 0; i < az->nsans; i++) {
        char norm[300];
        normalize_san(az->sans[i], norm, sizeof(norm));
        /* type names are case-insensitive; DNS names and e-mail domains too */
        if (strncasecmp(norm, text, tlen + 1) != 0)
            continue;
        if ((strncasecmp(text, "DNS:", 4) == 0 || strncasecmp(text, "email:", 6) == 0)
                ? strcasecmp(norm + tlen + 1, text + tlen + 1) == 0
                : strcmp(norm + tlen + 1, text + tlen + 1) == 0)
            return 1;
    }
    return 0;
}

static enum scep_err
build_sans(const STACK_OF(X509_EXTENSION) * exts, const struct scep_profile_row *p,
           const struct scep_authz *az, GENERAL_NAMES **out)
{
    GENERAL_NAMES *gns = NULL, *res = NULL;
    enum scep_err rc = SCEP_E_NAME_POLICY;
    int crit = -1, i;

    *out = NULL;
    if (exts != NULL)
        gns = X509V3_get_d2i(exts, NID_subject_alt_name, &crit, NULL);
    ERR_clear_error();
    if (gns == NULL && crit != -1)
        return SCEP_E_NAME_POLICY; /* present but unparseable or repeated */
    if (gns == NULL || sk_GENERAL_NAME_num(gns) == 0) {
        GENERAL_NAMES_free(gns);
        return SCEP_OK;
    }
    if ((res = GENERAL_NAMES_new()) == NULL) {
        rc = SCEP_E_NOMEM;
        goto out;
    }
    for (i = 0; i < sk_GENERAL_NAME_num(gns); i++) {
        GENERAL_NAME *g = sk_GENERAL_NAME_value(gns, i);
        char text[600];
        const char *type = NULL;
        struct patmatch m;

        if (!san_text(g, text, sizeof(text), &type) || !in_list(p->san_types, type))
            goto out;
        /* the request's URI by the one rule for SAN URIs (no SID, no white space; issue.h) */
        if (g->type == GEN_URI && !scep_san_uri_ok(g->d.uniformResourceIdentifier))
            goto out;
        memset(&m, 0, sizeof(m));
        m.type = type;
        m.value = strchr(text, ':') + 1;
        if (each_item(p->san_patterns, pattern_cb, &m) < 0 || (m.any && !m.matched))
            goto out;
        if (az->bound && !bound_allows(az, text)) {
            rc = SCEP_E_CHALLENGE_IDENTITY;
            goto out;
        }
        if (!sk_GENERAL_NAME_push(res, g)) {
            rc = SCEP_E_NOMEM;
            goto out;
        }
        sk_GENERAL_NAME_set(gns, i, NULL); /* moved to res */
    }
    *out = res;
    res = NULL; /* transferred */
    rc = SCEP_OK;
out:
    GENERAL_NAMES_free(res);
    GENERAL_NAMES_free(gns); /* NULL slots are skipped */
    return rc;
}

/* ---- usages ---- */

struct ekuset {
    ASN1_OBJECT *objs[16];
    size_t n;
    int bad;
};

static int
eku_cb(void *arg, const char *item)
{
    struct ekuset *e = arg;
    ASN1_OBJECT *o;

    if (e->n == sizeof(e->objs) / sizeof(e->objs[0]) || (o = OBJ_txt2obj(item, 0)) == NULL) {
        ERR_clear_error();
        e->bad = 1;
        return 1;
    }
    e->objs[e->n++] = o;
    return 0;
}

static void
ekuset_free(struct ekuset *e)
{
    size_t i;

    for (i = 0; i < e->n; i++)
        ASN1_OBJECT_free(e->objs[i]);
    e->n = 0;
}

static int
ekuset_has(const struct ekuset *e, const ASN1_OBJECT *o)
{
    size_t i;

    for (i = 0; i < e->n; i++)
        if (OBJ_cmp(e->objs[i], o) == 0)
            return 1;
    return 0;
}

/* Append the dotted OID of o to a comma list. */
static int
append_oid(char *list, size_t len, const ASN1_OBJECT *o)
{
    char txt[128];
    size_t used = strlen(list);

    if (OBJ_obj2txt(txt, sizeof(txt), o, 1) <= 0)
        return 0;
    return snprintf(list + used, len - used, "%s%s", used ? "," : "", txt) < (int)(len - used);
}

static enum scep_err
build_eku(const STACK_OF(X509_EXTENSION) * exts, const struct scep_profile_row *p,
          const struct scep_authz *az, char *out, size_t outlen)
{
    struct ekuset allowed, narrowed;
    EXTENDED_KEY_USAGE *want = NULL;
    enum scep_err rc = SCEP_E_EKU_POLICY;
    int crit = -1, i;
    size_t k;

    memset(&allowed, 0, sizeof(allowed));
    memset(&narrowed, 0, sizeof(narrowed));
    out[0] = '\0';
    if (each_item(p->eku[0] ? p->eku : DEFAULT_EKU, eku_cb, &allowed) != 0 || allowed.bad)
        goto out;
    if (az->eku[0] != '\0') {
        /* the authorization narrows the profile: keep what both allow */
        if (each_item(az->eku, eku_cb, &narrowed) != 0 || narrowed.bad)
            goto out;
        for (k = 0; k < allowed.n; k++)
            if (!ekuset_has(&narrowed, allowed.objs[k])) {
                ASN1_OBJECT_free(allowed.objs[k]);
                allowed.objs[k] = allowed.objs[--allowed.n];
                k--;
            }
    }
    if (allowed.n == 0)
        goto out;
    if (exts != NULL)
        want = X509V3_get_d2i(exts, NID_ext_key_usage, &crit, NULL);
    if (want == NULL && crit != -1)
        goto out; /* unparseable or repeated */
    if (want != NULL) {
        /*
         * The request may only narrow: what it asks for and the profile
         * allows; a usage outside the profile is dropped, never copied
         * (matrix P3).  Nothing in common: the profile's set.
         */
        for (i = 0; i < sk_ASN1_OBJECT_num(want); i++) {
            const ASN1_OBJECT *o = sk_ASN1_OBJECT_value(want, i);
            if (ekuset_has(&allowed, o) && !append_oid(out, outlen, o)) {
                rc = SCEP_E_INTERNAL;
                goto out;
            }
        }
    }
    if (out[0] == '\0') {
        for (k = 0; k < allowed.n; k++)
            if (!append_oid(out, outlen, allowed.objs[k])) {
                rc = SCEP_E_INTERNAL;
                goto out;
            }
    }
    rc = SCEP_OK;
out:
    if (rc != SCEP_OK)
        out[0] = '\0';
    sk_ASN1_OBJECT_pop_free(want, ASN1_OBJECT_free);
    ekuset_free(&allowed);
    ekuset_free(&narrowed);
    ERR_clear_error();
    return rc;
}

static int
ku_bit(const char *name)
{
    size_t i;

    for (i = 0; i < KU_COUNT; i++)
        if (strcasecmp(name, ku_names[i]) == 0)
            return (int)i;
    return -1;
}

struct kuset {
    unsigned bits;
    int bad;
};

static int
ku_cb(void *arg, const char *item)
{
    struct kuset *k = arg;
    int b = ku_bit(item);

    if (b < 0) {
        k->bad = 1;
        return 1;
    }
    k->bits |= 1u << b;
    return 0;
}

static enum scep_err
build_ku(X509_REQ *req, const STACK_OF(X509_EXTENSION) * exts, const struct scep_profile_row *p,
         char *out, size_t outlen)
{
    struct kuset allowed = {0, 0};
    ASN1_BIT_STRING *want = NULL;
    unsigned bits;
    int crit = -1;
    size_t i, used = 0;
    EVP_PKEY *pk = X509_REQ_get0_pubkey(req);
    const char *dflt = pk != NULL && EVP_PKEY_get_base_id(pk) == EVP_PKEY_RSA
                           ? "digitalSignature,keyEncipherment"
                           : "digitalSignature,keyAgreement";

    out[0] = '\0';
    if (each_item(p->key_usage[0] ? p->key_usage : dflt, ku_cb, &allowed) != 0 || allowed.bad)
        return SCEP_E_EKU_POLICY;
    bits = allowed.bits;
    if (exts != NULL)
        want = X509V3_get_d2i(exts, NID_key_usage, &crit, NULL);
    ERR_clear_error();
    if (want == NULL && crit != -1)
        return SCEP_E_EKU_POLICY;
    if (want != NULL) {
        unsigned asked = 0;
        int b;
        for (b = 0; b < (int)KU_COUNT; b++)
            if (ASN1_BIT_STRING_get_bit(want, b))
                asked |= 1u << b;
        ASN1_BIT_STRING_free(want);
        /* narrowing only: bits outside the profile are dropped (matrix P3) */
        if ((asked & allowed.bits) != 0)
            bits = asked & allowed.bits;
    }
    for (i = 0; i < KU_COUNT; i++)
        if (bits & (1u << i)) {
            int n = snprintf(out + used, outlen - used, "%s%s", used ? "," : "", ku_names[i]);
            if (n < 0 || (size_t)n >= outlen - used)
                return SCEP_E_INTERNAL;
            used += (size_t)n;
        }
    return SCEP_OK;
}

int
scep_policy_sid_ok(const char *s)
{
    int parts = 0;
    size_t n;

    if (strncmp(s, "S-1-", 4) != 0)
        return 0;
    s += 4;
    for (;;) {
        for (n = 0; isdigit((unsigned char)s[n]); n++)
            ;
        if (n == 0 || n > 10)
            return 0;
        parts++;
        s += n;
        if (*s == '\0')
            break;
        if (*s != '-')
            return 0;
        s++;
    }
    /* the authority and at least one sub-authority; a SID has at most 15 of those */
    return parts >= 2 && parts <= 16;
}

enum scep_err
scep_policy_apply(X509_REQ *req, const struct scep_profile_row *profile,
                  const struct scep_authz *az, const char *ep_org, const char *ep_dept,
                  int ep_validity, struct scep_policy_out *out)
{
    struct scep_profile_row dflt;
    const struct scep_profile_row *p = profile;
    struct scep_policy_out o;
    const char *org = az->organization[0] ? az->organization : ep_org;
    const char *dept = az->department[0] ? az->department : ep_dept;
    /* the request's extensions, decoded once for the SAN, EKU and KU rules */
    STACK_OF(X509_EXTENSION) *exts = scep_csr_extensions(req);
    enum scep_err rc;

    memset(&o, 0, sizeof(o));
    scep_policy_default_profile(&dflt);
    if (p != NULL) {
        /* an empty list means the default; "none" (no such item) means nothing */
        struct scep_profile_row merged = *p;
        if (merged.key_types[0] == '\0')
            memcpy(merged.key_types, dflt.key_types, sizeof(merged.key_types));
        if (merged.subject_allow[0] == '\0')
            memcpy(merged.subject_allow, dflt.subject_allow, sizeof(merged.subject_allow));
        if (merged.san_types[0] == '\0')
            memcpy(merged.san_types, dflt.san_types, sizeof(merged.san_types));
        if (merged.eku[0] == '\0')
            memcpy(merged.eku, dflt.eku, sizeof(merged.eku));
        dflt = merged;
    }
    p = &dflt;
    if ((rc = check_key(req, p->key_types[0] ? p->key_types : DEFAULT_KEY_TYPES)) != SCEP_OK ||
        (rc = build_subject(req, p, az, org, dept, &o.subject)) != SCEP_OK ||
        (rc = build_sans(exts, p, az, &o.sans)) != SCEP_OK ||
        (rc = build_eku(exts, p, az, o.eku, sizeof(o.eku))) != SCEP_OK ||
        (rc = build_ku(req, exts, p, o.key_usage, sizeof(o.key_usage))) != SCEP_OK)
        goto out;
    if (az->sid[0] != '\0') {
        if (!scep_policy_sid_ok(az->sid)) {
            rc = SCEP_E_INTERNAL;
            goto out;
        }
        snprintf(o.sid, sizeof(o.sid), "%s", az->sid);
    }
    /* something must name the holder */
    if (X509_NAME_entry_count(o.subject) == 0 &&
        (o.sans == NULL || sk_GENERAL_NAME_num(o.sans) == 0) && o.sid[0] == '\0') {
        rc = SCEP_E_NAME_POLICY;
        goto out;
    }
    o.validity_days = ep_validity;
    if (p->validity_days > 0)
        o.validity_days = p->validity_days;
    if (az->validity_days > 0)
        o.validity_days = az->validity_days;
    if (p->max_validity_days > 0 && o.validity_days > p->max_validity_days)
        o.validity_days = p->max_validity_days;
    *out = o;
    memset(&o, 0, sizeof(o)); /* transferred */
    rc = SCEP_OK;
out:
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    scep_policy_out_clear(&o);
    return rc;
}

/* ---- administrator input ---- */

struct checker {
    int (*ok)(const char *item);
    const char *bad;
    char item[256];
};

static int
check_cb(void *arg, const char *item)
{
    struct checker *c = arg;

    if (!c->ok(item)) {
        snprintf(c->item, sizeof(c->item), "%s", item);
        return 1;
    }
    return 0;
}

static int
rdn_ok(const char *item)
{
    int nid = OBJ_txt2nid(item);
    return nid != NID_undef && OBJ_nid2sn(nid) != NULL && strcasecmp(OBJ_nid2sn(nid), item) == 0;
}

static int
santype_ok(const char *item)
{
    return strcasecmp(item, "dns") == 0 || strcasecmp(item, "email") == 0 ||
           strcasecmp(item, "ip") == 0 || strcasecmp(item, "uri") == 0;
}

static int
pattern_ok(const char *item)
{
    const char *colon = strchr(item, ':');
    char type[16];

    if (colon == NULL || colon == item || (size_t)(colon - item) >= sizeof(type) ||
        colon[1] == '\0')
        return 0;
    memcpy(type, item, (size_t)(colon - item));
    type[colon - item] = '\0';
    return santype_ok(type);
}

static int
eku_ok(const char *item)
{
    ASN1_OBJECT *o = OBJ_txt2obj(item, 0);
    int ok = o != NULL;

    ASN1_OBJECT_free(o);
    ERR_clear_error();
    return ok;
}

static int
ku_ok(const char *item)
{
    int b = ku_bit(item);
    /* an end-entity profile never signs certificates or CRLs */
    return b >= 0 && b != 5 && b != 6;
}

static int
keytype_ok(const char *item)
{
    struct keyrule k;

    memset(&k, 0, sizeof(k));
    return keyrule_cb(&k, item) == 0 && !k.bad;
}

static int
url_ok(const char *u)
{
    size_t i;

    if (u[0] == '\0')
        return 1;
    if (strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0 &&
        strncmp(u, "ldap://", 7) != 0)
        return 0;
    for (i = 0; u[i] != '\0'; i++)
        if ((unsigned char)u[i] <= 0x20 || (unsigned char)u[i] >= 0x7f || u[i] == ',')
            return 0;
    return 1;
}

static enum scep_err
check_list(const char *field, const char *list, int (*ok)(const char *), const char *allowed,
           char *errbuf, size_t errlen)
{
    struct checker c;

    memset(&c, 0, sizeof(c));
    c.ok = ok;
    if (each_item(list, check_cb, &c) != 0) {
        snprintf(errbuf, errlen, "%s: \"%s\" is not allowed; use %s", field, c.item, allowed);
        return SCEP_E_INVALID_ARG;
    }
    return SCEP_OK;
}

enum scep_err
scep_policy_check_profile(const struct scep_profile_row *p, char *errbuf, size_t errlen)
{
    enum scep_err rc;

    if (p->validity_days < 0 || p->validity_days > 36500 || p->max_validity_days < 0 ||
        p->max_validity_days > 36500) {
        snprintf(errbuf, errlen, "validity: days must be within 1..36500");
        return SCEP_E_INVALID_ARG;
    }
    if (p->max_validity_days > 0 && p->validity_days > p->max_validity_days) {
        snprintf(errbuf, errlen, "validity: %d days is over the maximum of %d", p->validity_days,
                 p->max_validity_days);
        return SCEP_E_INVALID_ARG;
    }
    if (p->key_types[0] == '\0') {
        snprintf(errbuf, errlen, "key-types: at least one, e.g. rsa:2048,ec:p256");
        return SCEP_E_INVALID_ARG;
    }
    if ((rc = check_list("key-types", p->key_types, keytype_ok,
                         "rsa:BITS (2048..8192), ec:p256, ec:p384, ec:p521", errbuf, errlen)) !=
            SCEP_OK ||
        (rc = check_list("subject-allow", p->subject_allow, rdn_ok,
                         "RDN short names such as CN,O,OU,C,ST,L,emailAddress,serialNumber", errbuf,
                         errlen)) != SCEP_OK ||
        (rc = check_list("subject-forbid", p->subject_forbid, rdn_ok,
                         "RDN short names such as CN,O,OU,C,ST,L,emailAddress,serialNumber", errbuf,
                         errlen)) != SCEP_OK ||
        (rc = check_list("san-types", p->san_types, santype_ok, "dns,email,ip,uri", errbuf,
                         errlen)) != SCEP_OK ||
        (rc = check_list("san-patterns", p->san_patterns, pattern_ok,
                         "TYPE:GLOB items such as dns:*.corp.example.com,email:*@example.com",
                         errbuf, errlen)) != SCEP_OK ||
        (rc = check_list("eku", p->eku, eku_ok,
                         "names such as clientAuth,serverAuth,emailProtection or dotted OIDs",
                         errbuf, errlen)) != SCEP_OK ||
        (rc = check_list("key-usage", p->key_usage, ku_ok,
                         "digitalSignature,nonRepudiation,keyEncipherment,dataEncipherment,"
                         "keyAgreement (never keyCertSign or cRLSign)",
                         errbuf, errlen)) != SCEP_OK)
        return rc;
    if (!url_ok(p->cdp_url) || !url_ok(p->aia_url)) {
        snprintf(errbuf, errlen,
                 "cdp-url/aia-url: an http://, https:// or ldap:// URL without "
                 "spaces or commas");
        return SCEP_E_INVALID_ARG;
    }
    if (p->duplicate_subject[0] != '\0' && strcmp(p->duplicate_subject, "allow") != 0 &&
        strcmp(p->duplicate_subject, "refuse") != 0 &&
        strcmp(p->duplicate_subject, "revoke") != 0) {
        snprintf(errbuf, errlen, "duplicate-subject: \"%s\"; use allow, refuse or revoke",
                 p->duplicate_subject);
        return SCEP_E_INVALID_ARG;
    }
    return SCEP_OK;
}

struct sanparse {
    struct scep_authz *az;
    int bad;
};

static int
sanparse_cb(void *arg, const char *item)
{
    struct sanparse *sp = arg;
    const char *colon = strchr(item, ':');
    char type[8];
    unsigned char ip[16];

    if (colon == NULL || colon == item || (size_t)(colon - item) >= sizeof(type) ||
        colon[1] == '\0' || sp->az->nsans == SCEP_AUTHZ_MAX_SANS)
        goto bad;
    memcpy(type, item, (size_t)(colon - item));
    type[colon - item] = '\0';
    if (strcasecmp(type, "IP") == 0) {
        if (inet_pton(strchr(colon + 1, ':') ? AF_INET6 : AF_INET, colon + 1, ip) != 1)
            goto bad;
    } else if (strcasecmp(type, "DNS") != 0 && strcasecmp(type, "email") != 0 &&
               strcasecmp(type, "URI") != 0)
        goto bad;
    if (strcasecmp(type, "URI") == 0 &&
        strncasecmp(colon + 1, SCEP_SID_URI_PREFIX, strlen(SCEP_SID_URI_PREFIX)) == 0)
        goto bad; /* a SID is given as a SID, not as a URI */
    snprintf(sp->az->sans[sp->az->nsans++], sizeof(sp->az->sans[0]), "%s", item);
    return 0;
bad:
    sp->bad = 1;
    return 1;
}

enum scep_err
scep_policy_parse_sans(const char *list, struct scep_authz *az)
{
    struct sanparse sp = {az, 0};

    az->nsans = 0;
    if (each_item(list, sanparse_cb, &sp) != 0 || sp.bad) {
        az->nsans = 0;
        return SCEP_E_INVALID_ARG;
    }
    return SCEP_OK;
}

/* ---- an authorization kept with a pending request ---- */

char *
scep_policy_authz_to_json(const struct scep_authz *az)
{
    json_t *o = json_object(), *sans = json_array();
    char *out = NULL;
    size_t i;

    if (o == NULL || sans == NULL)
        goto out;
    for (i = 0; i < az->nsans; i++)
        json_array_append_new(sans, json_string(az->sans[i]));
    json_object_set_new(o, "actor", json_string(az->actor));
    json_object_set_new(o, "account_id", json_integer((json_int_t)az->account_id));
    json_object_set_new(o, "organization", json_string(az->organization));
    json_object_set_new(o, "department", json_string(az->department));
    json_object_set_new(o, "profile_id", json_integer((json_int_t)az->profile_id));
    json_object_set_new(o, "validity_days", json_integer(az->validity_days));
    json_object_set_new(o, "bound", json_boolean(az->bound));
    json_object_set_new(o, "subject", json_string(az->subject));
    json_object_set_new(o, "sans", sans);
    sans = NULL;
    json_object_set_new(o, "eku", json_string(az->eku));
    json_object_set_new(o, "device", json_string(az->device));
    json_object_set_new(o, "sid", json_string(az->sid));
    out = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
out:
    json_decref(sans);
    json_decref(o);
    return out;
}

/* A string member into dst; 0 when missing, not a string or too long. */
static int
get_str(json_t *o, const char *key, char *dst, size_t len)
{
    json_t *v = json_object_get(o, key);

    if (!json_is_string(v) || json_string_length(v) >= len)
        return 0;
    memcpy(dst, json_string_value(v), json_string_length(v) + 1);
    return 1;
}

enum scep_err
scep_policy_authz_from_json(const char *text, struct scep_authz *az)
{
    json_error_t jerr;
    json_t *o = json_loads(text, JSON_REJECT_DUPLICATES, &jerr), *sans, *v;
    enum scep_err rc = SCEP_E_INVALID_ARG;
    size_t i;

    memset(az, 0, sizeof(*az));
    if (!json_is_object(o) || !get_str(o, "actor", az->actor, sizeof(az->actor)) ||
        !get_str(o, "organization", az->organization, sizeof(az->organization)) ||
        !get_str(o, "department", az->department, sizeof(az->department)) ||
        !get_str(o, "subject", az->subject, sizeof(az->subject)) ||
        !get_str(o, "eku", az->eku, sizeof(az->eku)) ||
        !get_str(o, "device", az->device, sizeof(az->device)) ||
        !get_str(o, "sid", az->sid, sizeof(az->sid)))
        goto out;
    if (!json_is_integer(v = json_object_get(o, "account_id")))
        goto out;
    az->account_id = (int64_t)json_integer_value(v);
    if (!json_is_integer(v = json_object_get(o, "profile_id")))
        goto out;
    az->profile_id = (int64_t)json_integer_value(v);
    if (!json_is_integer(v = json_object_get(o, "validity_days")) || json_integer_value(v) < 0 ||
        json_integer_value(v) > 36500)
        goto out;
    az->validity_days = (int)json_integer_value(v);
    if (!json_is_boolean(v = json_object_get(o, "bound")))
        goto out;
    az->bound = json_is_true(v);
    sans = json_object_get(o, "sans");
    if (!json_is_array(sans) || json_array_size(sans) > SCEP_AUTHZ_MAX_SANS)
        goto out;
    for (i = 0; i < json_array_size(sans); i++) {
        v = json_array_get(sans, i);
        if (!json_is_string(v) || json_string_length(v) >= sizeof(az->sans[0]))
            goto out;
        memcpy(az->sans[i], json_string_value(v), json_string_length(v) + 1);
    }
    az->nsans = i;
    if (az->sid[0] != '\0' && !scep_policy_sid_ok(az->sid))
        goto out;
    rc = SCEP_OK;
out:
    if (rc != SCEP_OK)
        memset(az, 0, sizeof(*az));
    json_decref(o);
    return rc;
}

void
scep_policy_issue_opts(X509_REQ *req, const struct scep_policy_out *out, struct scep_issue_opts *io)
{
    memset(io, 0, sizeof(*io));
    io->validity_days = out->validity_days;
    io->eku = out->eku;
    io->key_usage = out->key_usage[0] ? out->key_usage : NULL;
    io->subject = out->subject;
    io->use_sans = 1;
    io->sans = out->sans;
    io->sid = out->sid[0] ? out->sid : NULL;
    if (scep_csr_requested_validity(req, &io->validity_seconds) != SCEP_OK)
        io->validity_seconds = 0;
}
