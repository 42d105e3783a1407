/*
 * oids.c - OID registration and provider loading (see oids.h).
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/provider.h>

#include "scepd/oids.h"

static struct scep_nids nids;
static int have_des;
static int initialised;
static OSSL_PROVIDER *prov_default, *prov_legacy;

static const char *const cipher_names[] = {"AES-128-CBC", "AES-192-CBC", "AES-256-CBC",
                                           "DES-EDE3-CBC", "DES-CBC"};
#define NCIPHERS (sizeof(cipher_names) / sizeof(cipher_names[0]))
static EVP_CIPHER *ciphers[NCIPHERS];

/*
 * Unloaded at exit, before OpenSSL's own cleanup (atexit runs in reverse):
 * otherwise the legacy module's allocations outlive its dlclose and
 * LeakSanitizer reports them.
 */
static void
unload_providers(void)
{
    size_t i;

    for (i = 0; i < NCIPHERS; i++) {
        EVP_CIPHER_free(ciphers[i]);
        ciphers[i] = NULL;
    }
    if (prov_legacy != NULL)
        OSSL_PROVIDER_unload(prov_legacy);
    if (prov_default != NULL)
        OSSL_PROVIDER_unload(prov_default);
    prov_legacy = prov_default = NULL;
}

static int
reg(const char *oid, const char *sn, const char *ln)
{
    int nid = OBJ_txt2nid(oid);

    if (nid != NID_undef)
        return nid;
    return OBJ_create(oid, sn, ln);
}

enum scep_err
scep_lib_init(void)
{
    if (initialised)
        return SCEP_OK;
    nids.message_type = reg("2.16.840.1.113733.1.9.2", "scepMessageType", "SCEP messageType");
    nids.pki_status = reg("2.16.840.1.113733.1.9.3", "scepPkiStatus", "SCEP pkiStatus");
    nids.fail_info = reg("2.16.840.1.113733.1.9.4", "scepFailInfo", "SCEP failInfo");
    nids.sender_nonce = reg("2.16.840.1.113733.1.9.5", "scepSenderNonce", "SCEP senderNonce");
    nids.recipient_nonce =
        reg("2.16.840.1.113733.1.9.6", "scepRecipientNonce", "SCEP recipientNonce");
    nids.transaction_id = reg("2.16.840.1.113733.1.9.7", "scepTransactionID", "SCEP transactionID");
    nids.fail_info_text = reg("1.3.6.1.5.5.7.24.1", "scepFailInfoText", "SCEP failInfoText");
    nids.ms_name_value = reg("1.3.6.1.4.1.311.13.2.1", "msEnrollNameValuePair",
                             "Microsoft enrollment name-value pair");
    nids.ms_cert_type =
        reg("1.3.6.1.4.1.311.20.2", "msEnrollCertType", "Microsoft certificate template name");
    nids.ms_template =
        reg("1.3.6.1.4.1.311.21.7", "msCertTemplate", "Microsoft certificate template");
    nids.ms_sid = reg("1.3.6.1.4.1.311.25.2", "msNTDSCASecurityExt", "Microsoft NTDS CA security");
    if (nids.message_type == NID_undef || nids.pki_status == NID_undef ||
        nids.fail_info == NID_undef || nids.sender_nonce == NID_undef ||
        nids.recipient_nonce == NID_undef || nids.transaction_id == NID_undef ||
        nids.fail_info_text == NID_undef || nids.ms_name_value == NID_undef ||
        nids.ms_cert_type == NID_undef || nids.ms_template == NID_undef || nids.ms_sid == NID_undef)
        return SCEP_E_INTERNAL;
    /*
     * Loading "legacy" replaces the implicit default provider, so load both.
     * Single DES is what micromdm's scepclient and the Go SCEP library send
     * by default (issue 2); without the legacy module it is refused.
     */
    if ((prov_default = OSSL_PROVIDER_load(NULL, "default")) == NULL)
        return SCEP_E_INTERNAL;
    prov_legacy = OSSL_PROVIDER_load(NULL, "legacy");
    have_des = prov_legacy != NULL;
    atexit(unload_providers);
    {
        size_t i;
        for (i = 0; i < NCIPHERS; i++)
            ciphers[i] = EVP_CIPHER_fetch(NULL, cipher_names[i], NULL);
    }
    have_des = have_des && scep_cipher("DES-CBC") != NULL;
    ERR_clear_error();
    initialised = 1;
    return SCEP_OK;
}

const EVP_CIPHER *
scep_cipher(const char *name)
{
    size_t i;

    for (i = 0; i < NCIPHERS; i++)
        if (strcmp(cipher_names[i], name) == 0)
            return ciphers[i];
    return NULL;
}

const struct scep_nids *
scep_nids(void)
{
    return &nids;
}

int
scep_lib_have_des(void)
{
    return have_des;
}
