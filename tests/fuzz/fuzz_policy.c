/*
 * fuzz_policy.c - libFuzzer target for policy (policy.h) and what issue.c
 * makes of its decision: an attacker's CSR + a profile + an authorization
 * -> the certificate.
 *
 * Input:
 *   byte 0  profile (byte % 3) and endpoint (byte / 3 % 2: 1 gives the
 *           endpoint fixed O "EP Org" and OU "EP Unit")
 *             0  NULL (the built-in default)
 *             1  strict: subject-allow CN, san-types dns, san-patterns
 *                dns:*.corp.example.com, eku clientAuth, key-usage
 *                digitalSignature, validity 30, maximum 90
 *             2  subject-forbid OU,street, eku clientAuth,serverAuth, the
 *                other lists empty (the defaults), maximum 365
 *   byte 1  authorization (byte % 4)
 *             0  none (static challenge)
 *             1  bound subject CN=dev1 with SAN DNS:dev1.example.com
 *             2  account with fixed O "Acme", OU "IT", validity 400
 *             3  a SID S-1-5-21-1-2-3-500 (Intune)
 *   rest    the CSR (DER), parsed with scep_csr_parse (its signature is not
 *           checked: the service does, but a fuzzer cannot forge one)
 *
 * On SCEP_OK from scep_policy_apply, abort() (a crash for libFuzzer) when
 * the decision breaks policy.h's promises, checked against lists written
 * out here rather than read back from the module:
 *   - subject: every RDN type in the profile's allow list and not in its
 *     forbid list, except the fixed O/OU; O/OU exactly the authorization's
 *     (else the endpoint's) when fixed; with a bound subject, exactly that
 *     subject plus the fixed O/OU;
 *   - SANs: types the profile allows, matching its patterns, only the bound
 *     ones when bound, never a SID URI (tag:microsoft.com,2022-09-14:sid:,
 *     any case, also after leading white space);
 *   - EKUs a subset of the profile's (by OID); key usage within the
 *     profile's and never keyCertSign or cRLSign; validity 1..the maximum;
 *     the SID the authorization's.
 * Then scep_issue_cert as the service calls it, with an EC P-256 test CA
 * made once, and on the certificate: CA:FALSE, no keyCertSign/cRLSign, the
 * subject policy decided, no SID URI nor extension 1.3.6.1.4.1.311.25.2
 * without an authorized SID, and with one exactly one SID URI (equal to it)
 * and the extension.
 *
 * Seeds: corpus/fuzz_policy/, written by make_corpus (mode "policy").
 */
#include <ctype.h>
#include <fnmatch.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "fuzzutil.h"
#include "scepd/csr.h"
#include "scepd/issue.h"
#include "scepd/pki.h"
#include "scepd/policy.h"

#define SID_URI_PREFIX "tag:microsoft.com,2022-09-14:sid:"
#define FUZZ_SID "S-1-5-21-1-2-3-500"
#define EP_VALIDITY 365

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What a profile variant means, written out independently of policy.c. */
struct oracle {
    const char *allow;   /* RDN short names */
    const char *forbid;  /* RDN short names */
    const char *sans;    /* SAN types */
    const char *dns_pat; /* a glob every DNS SAN must match, or NULL */
    const char *eku;     /* the EKUs that may be issued */
    const char *ku;      /* the key usages that may be issued, NULL: by key type */
    int max_validity;    /* 0: none */
};

static const struct oracle oracles[3] = {
    {"CN,C,ST,L,O,OU,emailAddress,serialNumber,DC,UID", "", "dns,email,ip,uri", NULL, "clientAuth",
     NULL, 0},
    {"CN", "", "dns", "*.corp.example.com", "clientAuth", "digitalSignature", 90},
    {"CN,C,ST,L,O,OU,emailAddress,serialNumber,DC,UID", "OU,street", "dns,email,ip,uri", NULL,
     "clientAuth,serverAuth", NULL, 365},
};

static struct scep_profile_row profiles[3];
static struct scep_authz authzs[4];
static EVP_PKEY *ca_key;
static X509 *ca_cert;

static void
check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_policy: property violated: %s\n", what);
        abort();
    }
}

static void
die(const char *what)
{
    fprintf(stderr, "fuzz_policy: %s\n", what);
    ERR_print_errors_fp(stderr);
    exit(1);
}

/* Is word (case-insensitive) one of the comma-separated items of list? */
static int
listed(const char *list, const char *word)
{
    size_t n = strlen(word);
    const char *p = list;

    while (*p != '\0') {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len == n && strncasecmp(p, word, n) == 0)
            return 1;
        if (comma == NULL)
            break;
        p = comma + 1;
    }
    return 0;
}

static void
make_variants(void)
{
    struct scep_profile_row *p;
    char err[256];
    size_t i;

    memset(profiles, 0, sizeof(profiles));
    scep_policy_default_profile(&profiles[0]); /* only to check it: variant 0 passes NULL */
    p = &profiles[1];
    snprintf(p->name, sizeof(p->name), "strict");
    snprintf(p->key_types, sizeof(p->key_types), "rsa:2048,ec:p256,ec:p384");
    snprintf(p->subject_allow, sizeof(p->subject_allow), "CN");
    snprintf(p->san_types, sizeof(p->san_types), "dns");
    snprintf(p->san_patterns, sizeof(p->san_patterns), "dns:*.corp.example.com");
    snprintf(p->eku, sizeof(p->eku), "clientAuth");
    snprintf(p->key_usage, sizeof(p->key_usage), "digitalSignature");
    snprintf(p->duplicate_subject, sizeof(p->duplicate_subject), "allow");
    p->validity_days = 30;
    p->max_validity_days = 90;
    p = &profiles[2];
    snprintf(p->name, sizeof(p->name), "forbid");
    snprintf(p->key_types, sizeof(p->key_types), "rsa:2048,ec:p256,ec:p384");
    snprintf(p->subject_forbid, sizeof(p->subject_forbid), "OU,street");
    snprintf(p->eku, sizeof(p->eku), "clientAuth,serverAuth");
    p->max_validity_days = 365;
    for (i = 0; i < 3; i++)
        if (scep_policy_check_profile(&profiles[i], err, sizeof(err)) != SCEP_OK)
            die(err);

    memset(authzs, 0, sizeof(authzs));
    authzs[0].mode = "static";
    authzs[1].mode = "one-time";
    authzs[1].bound = 1;
    snprintf(authzs[1].subject, sizeof(authzs[1].subject), "CN=dev1");
    if (scep_policy_parse_sans("DNS:dev1.example.com", &authzs[1]) != SCEP_OK)
        die("parse_sans");
    authzs[2].mode = "account";
    authzs[2].account_id = 1;
    snprintf(authzs[2].organization, sizeof(authzs[2].organization), "Acme");
    snprintf(authzs[2].department, sizeof(authzs[2].department), "IT");
    authzs[2].validity_days = 400;
    authzs[3].mode = "intune";
    snprintf(authzs[3].sid, sizeof(authzs[3].sid), "%s", FUZZ_SID);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    X509_NAME *name = NULL;

    (void)argc;
    (void)argv;
    (void)fuzz_init(); /* scep_lib_init(); the RSA keys are not used here */
    make_variants();
    if (scep_pki_genkey("ec:p256", &ca_key) != SCEP_OK ||
        scep_pki_parse_dn("CN=scepd fuzz policy CA", &name) != SCEP_OK ||
        scep_pki_make_root(ca_key, name, 3650, &ca_cert) != SCEP_OK)
        die("test CA");
    X509_NAME_free(name);
    return 0;
}

/*
 * The UTF-8 value of an entry into buf (terminated, may hold a NUL), its
 * length; -1 when it has none or does not fit.  Policy copies the request's
 * values as they are (scep_issue_check_names judges them), so only the
 * values compared below must convert.
 */
static int
entry_text(const X509_NAME_ENTRY *e, char *buf, size_t len)
{
    unsigned char *u = NULL;
    int n = ASN1_STRING_to_UTF8(&u, X509_NAME_ENTRY_get_data(e));

    if (n < 0 || (size_t)n >= len) {
        OPENSSL_free(u);
        ERR_clear_error();
        return -1;
    }
    memcpy(buf, u, (size_t)n);
    buf[n] = '\0';
    OPENSSL_free(u);
    return n;
}

/* An entry's value is exactly the text want. */
static int
entry_is(const X509_NAME_ENTRY *e, const char *want)
{
    char v[1024];
    int n = entry_text(e, v, sizeof(v));

    return n >= 0 && (size_t)n == strlen(want) && memcmp(v, want, (size_t)n) == 0;
}

static void
check_subject(const X509_NAME *subj, const struct oracle *orc, const struct scep_authz *az,
              const char *org, const char *dept)
{
    X509_NAME *bound = NULL;
    int i, nb = 0, no = 0, nou = 0;
    char v[1024], w[1024];

    check(subj != NULL, "a subject");
    if (az->bound && az->subject[0] != '\0')
        check(scep_pki_parse_dn(az->subject, &bound) == SCEP_OK, "the bound subject parses");
    for (i = 0; i < X509_NAME_entry_count(subj); i++) {
        const X509_NAME_ENTRY *e = X509_NAME_get_entry(subj, i);
        int nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(e));
        const char *sn = nid != NID_undef ? OBJ_nid2sn(nid) : NULL;

        check(sn != NULL, "subject RDN types are known");
        if (nid == NID_organizationName && org[0] != '\0') {
            check(entry_is(e, org), "O is the fixed organization");
            no++;
            continue;
        }
        if (nid == NID_organizationalUnitName && dept[0] != '\0') {
            check(entry_is(e, dept), "OU is the fixed department");
            nou++;
            continue;
        }
        check(listed(orc->allow, sn), "subject RDN type in the profile's allow list");
        check(!listed(orc->forbid, sn), "no forbidden RDN type in the subject");
        if (bound != NULL) {
            const X509_NAME_ENTRY *b = X509_NAME_get_entry(bound, nb++);
            int nv, nw;
            check(b != NULL, "no RDN beyond the bound subject");
            check(OBJ_cmp(X509_NAME_ENTRY_get_object(b), X509_NAME_ENTRY_get_object(e)) == 0,
                  "RDN types of the bound subject, in order");
            nv = entry_text(e, v, sizeof(v));
            nw = entry_text(b, w, sizeof(w));
            check(nv >= 0 && nv == nw && memcmp(v, w, (size_t)nv) == 0,
                  "RDN values of the bound subject");
        }
    }
    check(org[0] == '\0' || no == 1, "exactly one fixed O");
    check(dept[0] == '\0' || nou == 1, "exactly one fixed OU");
    if (bound != NULL)
        check(nb == X509_NAME_entry_count(bound), "every RDN of the bound subject");
    X509_NAME_free(bound);
}

/* "x" is a SID URI: the prefix in any case, also after white space. */
static int
sid_uri(const unsigned char *p, size_t n)
{
    size_t plen = strlen(SID_URI_PREFIX);

    while (n > 0 && isspace(*p)) {
        p++;
        n--;
    }
    return n >= plen && strncasecmp((const char *)p, SID_URI_PREFIX, plen) == 0;
}

/* A bound SAN "TYPE:value" of az equal to g (DNS and email names case-insensitive). */
static int
bound_has(const struct scep_authz *az, const GENERAL_NAME *g)
{
    size_t i;
    const ASN1_STRING *s = g->type == GEN_DNS     ? g->d.dNSName
                           : g->type == GEN_EMAIL ? g->d.rfc822Name
                           : g->type == GEN_URI   ? g->d.uniformResourceIdentifier
                                                  : NULL;
    const char *prefix = g->type == GEN_DNS ? "DNS:" : g->type == GEN_EMAIL ? "email:" : "URI:";
    size_t plen = strlen(prefix);

    if (s == NULL) /* the variants bind no IP address */
        return 0;
    for (i = 0; i < az->nsans; i++) {
        const char *b = az->sans[i];
        size_t n = (size_t)ASN1_STRING_length(s);
        if (strncasecmp(b, prefix, plen) != 0 || strlen(b + plen) != n)
            continue;
        if (g->type == GEN_URI
                ? memcmp(b + plen, ASN1_STRING_get0_data(s), n) == 0
                : strncasecmp(b + plen, (const char *)ASN1_STRING_get0_data(s), n) == 0)
            return 1;
    }
    return 0;
}

static void
check_sans(const GENERAL_NAMES *gns, const struct oracle *orc, const struct scep_authz *az)
{
    int i;

    for (i = 0; gns != NULL && i < sk_GENERAL_NAME_num(gns); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gns, i);
        const ASN1_STRING *s = NULL;
        const char *type = NULL;
        char v[1024];

        switch (g->type) {
        case GEN_DNS:
            type = "dns", s = g->d.dNSName;
            break;
        case GEN_EMAIL:
            type = "email", s = g->d.rfc822Name;
            break;
        case GEN_URI:
            type = "uri", s = g->d.uniformResourceIdentifier;
            break;
        case GEN_IPADD:
            type = "ip";
            check(ASN1_STRING_length(g->d.iPAddress) == 4 ||
                      ASN1_STRING_length(g->d.iPAddress) == 16,
                  "IP SANs of 4 or 16 bytes");
            break;
        default:
            check(0, "SAN types dns, email, uri, ip only");
        }
        check(listed(orc->sans, type), "SAN type allowed by the profile");
        if (s != NULL) {
            size_t n = (size_t)ASN1_STRING_length(s);
            check(n > 0 && n < sizeof(v) && memchr(ASN1_STRING_get0_data(s), 0, n) == NULL,
                  "SAN values non-empty without NUL");
            memcpy(v, ASN1_STRING_get0_data(s), n);
            v[n] = '\0';
            if (g->type == GEN_URI)
                check(!sid_uri(ASN1_STRING_get0_data(s), n), "no SID URI from a request");
            if (g->type == GEN_DNS && orc->dns_pat != NULL)
                check(fnmatch(orc->dns_pat, v, FNM_CASEFOLD) == 0,
                      "DNS SANs match the profile's pattern");
        }
        if (az->bound)
            check(bound_has(az, g), "only the bound SANs when bound");
    }
}

static void
check_eku(const char *eku, const struct oracle *orc)
{
    char item[256];
    const char *p = eku;
    int n = 0;

    while (*p != '\0') {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        ASN1_OBJECT *o;
        int found = 0;
        const char *q = orc->eku;

        check(len > 0 && len < sizeof(item), "EKU items non-empty");
        memcpy(item, p, len);
        item[len] = '\0';
        o = OBJ_txt2obj(item, 0);
        check(o != NULL, "EKU items are OIDs");
        while (!found && *q != '\0') {
            const char *c2 = strchr(q, ',');
            size_t l2 = c2 ? (size_t)(c2 - q) : strlen(q);
            char allowed[64];
            ASN1_OBJECT *a;
            memcpy(allowed, q, l2);
            allowed[l2] = '\0';
            a = OBJ_txt2obj(allowed, 0);
            found = a != NULL && OBJ_cmp(a, o) == 0;
            ASN1_OBJECT_free(a);
            q = c2 ? c2 + 1 : q + l2;
        }
        ASN1_OBJECT_free(o);
        check(found, "EKUs a subset of the profile's");
        n++;
        p = comma ? comma + 1 : p + len;
    }
    check(n > 0, "at least one EKU");
}

static void
check_ku(const char *ku, const struct oracle *orc)
{
    char item[64];
    const char *p = ku;

    while (*p != '\0') {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);

        check(len > 0 && len < sizeof(item), "key usage items non-empty");
        memcpy(item, p, len);
        item[len] = '\0';
        check(strcasecmp(item, "keyCertSign") != 0 && strcasecmp(item, "cRLSign") != 0,
              "never keyCertSign or cRLSign");
        if (orc->ku != NULL)
            check(listed(orc->ku, item), "key usage within the profile's");
        p = comma ? comma + 1 : p + len;
    }
}

static void
check_cert(X509 *issued, const struct scep_policy_out *po, const struct scep_authz *az)
{
    unsigned char *der = NULL;
    const unsigned char *q;
    int n = i2d_X509(issued, &der), i, nsid = 0, crit = -1;
    X509 *x;
    BASIC_CONSTRAINTS *bc;
    GENERAL_NAMES *gns;
    ASN1_OBJECT *sidext = OBJ_txt2obj("1.3.6.1.4.1.311.25.2", 1);
    char want[160];

    /* parsed again: issue.h says the issued X509's own key is not decoded */
    check(n > 0, "the certificate encodes");
    q = der;
    x = d2i_X509(NULL, &q, n);
    check(x != NULL && q == der + n, "the certificate parses again");
    OPENSSL_free(der);

    bc = X509_get_ext_d2i(x, NID_basic_constraints, &crit, NULL);
    check(bc != NULL && !bc->ca && crit == 1, "basicConstraints critical CA:FALSE");
    BASIC_CONSTRAINTS_free(bc);
    check((X509_get_key_usage(x) & (KU_KEY_CERT_SIGN | KU_CRL_SIGN)) == 0,
          "no keyCertSign or cRLSign in the certificate");
    check(X509_NAME_cmp(X509_get_subject_name(x), po->subject) == 0, "the subject policy decided");

    snprintf(want, sizeof(want), "%s%s", SID_URI_PREFIX, az->sid);
    gns = X509_get_ext_d2i(x, NID_subject_alt_name, &crit, NULL);
    check(gns != NULL || crit == -1, "the SAN extension parses");
    for (i = 0; gns != NULL && i < sk_GENERAL_NAME_num(gns); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gns, i);
        const ASN1_STRING *s;
        if (g->type != GEN_URI)
            continue;
        s = g->d.uniformResourceIdentifier;
        if (!sid_uri(ASN1_STRING_get0_data(s), (size_t)ASN1_STRING_length(s)))
            continue;
        nsid++;
        check(az->sid[0] != '\0', "no SID URI without an authorized SID");
        check((size_t)ASN1_STRING_length(s) == strlen(want) &&
                  memcmp(ASN1_STRING_get0_data(s), want, strlen(want)) == 0,
              "the SID URI is the authorized SID");
    }
    GENERAL_NAMES_free(gns);
    check(sidext != NULL, "the SID extension OID");
    if (az->sid[0] != '\0') {
        check(nsid == 1, "exactly one SID URI");
        check(X509_get_ext_by_OBJ(x, sidext, -1) >= 0, "the SID extension with a SID");
    } else {
        check(X509_get_ext_by_OBJ(x, sidext, -1) < 0, "no SID extension without a SID");
    }
    ASN1_OBJECT_free(sidext);
    X509_free(x);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct scep_profile_row *prof;
    const struct oracle *orc;
    const struct scep_authz *az;
    const char *ep_org, *ep_dept, *org, *dept;
    struct scep_policy_out po;
    struct scep_issue_opts io;
    X509_REQ *req = NULL;
    X509 *cert = NULL;
    char serial[SCEP_SERIAL_HEX];
    enum scep_err rc;
    int pv;

    if (size < 2)
        return 0;
    pv = data[0] % 3;
    prof = pv == 0 ? NULL : &profiles[pv];
    orc = &oracles[pv];
    ep_org = data[0] / 3 % 2 ? "EP Org" : "";
    ep_dept = data[0] / 3 % 2 ? "EP Unit" : "";
    az = &authzs[data[1] % 4];
    org = az->organization[0] ? az->organization : ep_org;
    dept = az->department[0] ? az->department : ep_dept;
    if (scep_csr_parse(data + 2, size - 2, &req) != SCEP_OK)
        goto out;

    memset(&po, 0, sizeof(po));
    rc = scep_policy_apply(req, prof, az, ep_org, ep_dept, EP_VALIDITY, &po);
    if (rc != SCEP_OK) {
        check(po.subject == NULL && po.sans == NULL, "*out untouched on failure");
        goto out;
    }
    check_subject(po.subject, orc, az, org, dept);
    check_sans(po.sans, orc, az);
    check(memchr(po.eku, 0, sizeof(po.eku)) != NULL, "eku terminated");
    check_eku(po.eku, orc);
    check(memchr(po.key_usage, 0, sizeof(po.key_usage)) != NULL, "key_usage terminated");
    check_ku(po.key_usage, orc);
    check(po.validity_days >= 1 &&
              (orc->max_validity == 0 || po.validity_days <= orc->max_validity),
          "validity within 1..the profile's maximum");
    check(strcmp(po.sid, az->sid) == 0, "the SID is the authorization's");

    /* As the service's issue_for() calls it. */
    scep_policy_issue_opts(req, &po, &io);
    io.ca_cert = ca_cert;
    io.ca_key = ca_key;
    if (scep_issue_cert(req, &io, &cert, serial) == SCEP_OK)
        check_cert(cert, &po, az);
    X509_free(cert);
    scep_policy_out_clear(&po);
out:
    X509_REQ_free(req);
    ERR_clear_error();
    return 0;
}
