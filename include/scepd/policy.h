/*
 * policy.h - what a request may get: an authorization (who asked, decided
 * by the challenge mode) plus a profile (what the endpoint or account
 * allows) turn a CSR into the exact subject, names, usages and validity of
 * the certificate to issue (DESIGN §3 step 6).
 *
 * Values the CSR may not choose are never copied from it: fixed O/OU come
 * from the endpoint or account, a bound identity from the authorization,
 * usages from the profile (a CSR may only narrow them), and the Microsoft
 * SID (SAN URI tag:microsoft.com,2022-09-14:sid: and extension
 * 1.3.6.1.4.1.311.25.2) only from an authorization (matrix P4, ESC16).
 */
#ifndef SCEPD_POLICY_H
#define SCEPD_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "scepd/err.h"
#include "scepd/issue.h"
#include "scepd/store.h"

#define SCEP_AUTHZ_MAX_SANS 8

/* Who may have what, as decided by the challenge mode. */
struct scep_authz {
    const char *mode;   /* "static" "account" "one-time" "signed" "webhook" "intune" "renewal" */
    char actor[192];    /* for the audit trail: "account:NAME", "challenge:ID", ... */
    int64_t account_id; /* 0: none */
    char organization[128]; /* fixed O (account), "" for the endpoint's */
    char department[128];   /* fixed OU (account), "" for the endpoint's */
    int64_t profile_id;     /* the account's profile, 0: the endpoint's */
    int validity_days;      /* the account's validity, 0: the profile's or endpoint's */
    int bound;              /* the identity below is bound: the CSR must ask for it exactly */
    char subject[256];      /* bound subject DN ("CN=dev1"), "" for none */
    char sans[SCEP_AUTHZ_MAX_SANS][256]; /* SANs the CSR may ask for: "DNS:x" "IP:1.2.3.4" */
    size_t nsans;
    char eku[256];        /* EKUs allowed by the authorization, "" for the profile's */
    char device[128];     /* device id, "" for none */
    char sid[96];         /* Windows SID to put in the certificate, "" for none */
    int keep_subject;     /* a renewal: the CSR subject as is (equal to the renewed one) */
    int64_t challenge_id; /* one-time challenge consumed with the issuance, 0: none */
    char nonce[65];       /* token nonce recorded with the issuance, "" for none */
    int64_t nonce_expires;
};

/* The certificate to issue, as policy decided it. */
struct scep_policy_out {
    X509_NAME *subject;  /* owned */
    GENERAL_NAMES *sans; /* owned; NULL for none */
    char eku[512];       /* extendedKeyUsage list for X509V3_EXT_conf ("clientAuth,1.2.3") */
    char key_usage[256]; /* keyUsage list, "" for the key type's default */
    int validity_days;
    char sid[96]; /* "" or the SID to add (SAN URI and extension) */
};
void scep_policy_out_clear(struct scep_policy_out *o);

/*
 * What policy decided, as issuance options: subject, SANs, EKU, key usage,
 * validity and SID from out, and the validity the request asks for
 * (Windows' ValidPeriod, within out's).  Zeroes io first; the caller adds
 * the CA and the CRL/AIA URLs.  io borrows from out.
 */
void scep_policy_issue_opts(X509_REQ *req, const struct scep_policy_out *out,
                            struct scep_issue_opts *io);

/*
 * Apply profile (NULL: the built-in default) and authorization az to req.
 * ep_org/ep_dept: the endpoint's fixed O/OU ("" none); ep_validity: the
 * endpoint's validity in days.  Errors: SCEP_E_KEY_POLICY (key type or
 * size), SCEP_E_NAME_POLICY (forbidden RDN, SAN type or pattern, nothing
 * left to name the subject), SCEP_E_CHALLENGE_IDENTITY (not what a bound
 * authorization allows), SCEP_E_EKU_POLICY (usages wider than allowed).
 * *out is filled only on SCEP_OK.
 */
enum scep_err scep_policy_apply(X509_REQ *req, const struct scep_profile_row *profile,
                                const struct scep_authz *az, const char *ep_org,
                                const char *ep_dept, int ep_validity,
                                struct scep_policy_out *out) SCEP_WUR;

/*
 * Check an administrator's profile: known key types, RDN and SAN type
 * names, EKU names or OIDs, key usages (never keyCertSign or cRLSign),
 * validity within 1..36500 and not over the maximum, duplicate rule.
 * errbuf says which field is wrong and what is allowed.
 */
enum scep_err scep_policy_check_profile(const struct scep_profile_row *p, char *errbuf,
                                        size_t errlen) SCEP_WUR;

/* Fill p with the built-in defaults (name and template left empty). */
void scep_policy_default_profile(struct scep_profile_row *p);

/*
 * Parse "DNS:a,email:b,IP:1.2.3.4,URI:x" (comma-separated) into az->sans;
 * SCEP_E_INVALID_ARG for an unknown type, too many names or a SID URI.
 */
enum scep_err scep_policy_parse_sans(const char *list, struct scep_authz *az) SCEP_WUR;

/*
 * An authorization as JSON (malloc'ed; NULL on ENOMEM), and back: kept
 * with a pending request so that its approval issues what the request was
 * authorized for.  from_json: SCEP_E_INVALID_ARG for text it did not write.
 * The mode is not kept (az->mode is left NULL).
 */
char *scep_policy_authz_to_json(const struct scep_authz *az);
enum scep_err scep_policy_authz_from_json(const char *text, struct scep_authz *az) SCEP_WUR;

/* Is s a Windows SID (S-1-<authority>(-<sub>)+)? */
int scep_policy_sid_ok(const char *s);

#endif
