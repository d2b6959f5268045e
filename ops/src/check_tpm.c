/* fleetgw operational checks: the TPM (reachable through the configured TCTI) and the
 * gateway identity (the key exists at the persistent handle or in the TSS2 key file, is a
 * fleetgw identity key: P-256 ECDSA, signing only, created in and bound to the TPM, and is
 * the key of the gateway certificate). Read-only, through tpm/'s API (fleetgw/tpm_identity.h):
 * tpm_open, tpm_manufacturer, tpm_key_public. */
#define _GNU_SOURCE
#include <errno.h>
#include <fleetgw/tpm_identity.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_internal.h"

/* 0 when the certificate's public key is key, 1 when it differs, -errno when the certificate
 * cannot be read. */
static int cert_matches(const char *cert_path, EVP_PKEY *key, char *why, size_t why_len)
{
    int ret = -EINVAL;
    FILE *f = fopen(cert_path, "re");
    X509 *cert = NULL;

    if (f == NULL) {
        ret = -errno;
        snprintf(why, why_len, "cannot open %s: %s", cert_path, strerror(errno));
        goto out;
    }
    cert = PEM_read_X509(f, NULL, NULL, NULL);
    if (cert == NULL) {
        snprintf(why, why_len, "%s holds no PEM certificate", cert_path);
        goto out;
    }
    EVP_PKEY *pk = X509_get0_pubkey(cert);
    if (pk == NULL || EVP_PKEY_eq(pk, key) != 1) {
        snprintf(why, why_len, "%s certifies another key than the TPM's", cert_path);
        ret = 1;
        goto out;
    }
    ret = 0;
out:
    ERR_clear_error();
    X509_free(cert);
    if (f != NULL)
        fclose(f);
    return ret;
}

static void check_identity(struct tpm *t, const struct tpm_key_ref *ref, const char *cert_path,
                           struct check_result *ident)
{
    EVP_PKEY *pub = NULL;
    char where[CHECK_KEY_NAME_MAX], why[600], action[CHECK_KEY_NAME_MAX + 200];

    if (ref->key_file != NULL)
        snprintf(where, sizeof(where), "in key file %s", ref->key_file);
    else
        snprintf(where, sizeof(where), "at persistent handle 0x%08x", (unsigned)ref->handle);
    snprintf(action, sizeof(action),
             "provision the gateway key: `fleetgwctl identity init` creates a P-256 signing key "
             "in the TPM %s (operator guide, \"Provisioning\")",
             where);
    int r = tpm_key_public(t, TPM_KEY_IDENTITY, ref, &pub, why, sizeof(why));
    if (r == -ENOKEY) {
        check_set(ident, "identity", CHECK_FAIL, action, "no key %s (%s)", where, why);
        goto out;
    }
    if (r == -EEXIST) {
        check_set(ident, "identity", CHECK_FAIL, action,
                  "the key %s is not a gateway identity key: a P-256 ECDSA signing-only key "
                  "created in the TPM and bound to it (fixedTPM, fixedParent, "
                  "sensitiveDataOrigin) is required",
                  where);
        goto out;
    }
    if (r < 0) {
        check_set(ident, "identity", CHECK_FAIL, action, "cannot read the key %s: %s", where, why);
        goto out;
    }
    if (cert_path != NULL) {
        int m = cert_matches(cert_path, pub, why, sizeof(why));
        if (m != 0) {
            check_set(ident, "identity", CHECK_FAIL,
                      "have the certificate issued for this TPM key (CSR made with the key "
                      "itself: `fleetgwctl identity csr`) or point uplink.cert_file at it",
                      "%s", why);
            goto out;
        }
        check_set(ident, "identity", CHECK_OK, NULL,
                  "P-256 signing key %s, kept in the TPM, is the key of %s", where, cert_path);
    } else {
        check_set(ident, "identity", CHECK_OK, NULL, "P-256 signing key %s, kept in the TPM",
                  where);
    }
out:
    EVP_PKEY_free(pub);
}

void check_tpm(const char *tcti, const struct tpm_key_ref *ref, const char *cert_path,
               struct check_result *tpm, struct check_result *ident)
{
    struct tpm *t = NULL;
    char why[600], action[512], vendor[5];

    /* The TSS logs every failed connection attempt on stderr; the check reports it itself.
     * A caller that set TSS2_LOG keeps its choice. */
    setenv("TSS2_LOG", "all+none", 0);
    snprintf(action, sizeof(action),
             "check the TPM: on hardware /dev/tpmrm0 exists and belongs to group tss (tpm-udev); "
             "with tpm2-abrmd the service runs; uplink.tcti is '%s'",
             tcti);
    if (ident != NULL)
        check_set(ident, "identity", CHECK_FAIL, "make the TPM reachable first",
                  "not checked: the TPM is not reachable");
    if (tpm_open(tcti, &t, why, sizeof(why)) < 0) {
        check_set(tpm, "tpm", CHECK_FAIL, action, "%s", why);
        goto out;
    }
    if (tpm_manufacturer(t, vendor, why, sizeof(why)) < 0) {
        check_set(tpm, "tpm", CHECK_FAIL, action, "the TPM behind '%s' does not answer: %s", tcti,
                  why);
        goto out;
    }
    check_set(tpm, "tpm", CHECK_OK, NULL, "TPM 2.0 reachable through '%s' (manufacturer '%s')",
              tcti, vendor);
    if (ident != NULL && ref != NULL)
        check_identity(t, ref, cert_path, ident);
out:
    tpm_close(t);
}
