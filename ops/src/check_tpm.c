/* fleetgw operational checks: the TPM (reachable through the configured TCTI) and the
 * gateway identity (the persistent key exists, is a non-duplicable signing key, and is the
 * key of the gateway certificate). Read-only: GetCapability and ReadPublic. */
#define _GNU_SOURCE
#include <errno.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tss2/tss2_esys.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_tctildr.h>

#include "check_internal.h"

/* The manufacturer property is four ASCII characters in a UINT32 (big-endian). */
static void manufacturer_name(uint32_t v, char out[5])
{
    for (int i = 0; i < 4; i++) {
        char ch = (char)((v >> (24 - 8 * i)) & 0xffu);
        out[i] = (ch >= 0x20 && ch < 0x7f) ? ch : ' ';
    }
    out[4] = '\0';
}

/* 0 when the certificate's public key is the TPM key (x, y), 1 when it differs, -errno when
 * the certificate cannot be read. */
static int cert_matches(const char *cert_path, const TPM2B_ECC_PARAMETER *x,
                        const TPM2B_ECC_PARAMETER *y, char *why, size_t why_len)
{
    int ret = -EINVAL;
    FILE *f = fopen(cert_path, "re");
    X509 *cert = NULL;
    unsigned char enc[133], want[133];
    size_t enc_len = 0;

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
    if (pk == NULL || EVP_PKEY_get_base_id(pk) != EVP_PKEY_EC ||
        EVP_PKEY_get_octet_string_param(pk, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, enc, sizeof(enc),
                                        &enc_len) != 1) {
        snprintf(why, why_len, "the key of %s is not an EC key", cert_path);
        ret = 1;
        goto out;
    }
    /* Uncompressed point 04 || X || Y, coordinates left-padded to the field size. */
    size_t field = (enc_len - 1) / 2;
    if (enc_len < 3 || enc[0] != 0x04 || x->size > field || y->size > field) {
        snprintf(why, why_len, "the key of %s is not on the TPM key's curve", cert_path);
        ret = 1;
        goto out;
    }
    memset(want, 0, sizeof(want));
    want[0] = 0x04;
    memcpy(want + 1 + (field - x->size), x->buffer, x->size);
    memcpy(want + 1 + field + (field - y->size), y->buffer, y->size);
    if (memcmp(want, enc, enc_len) != 0) {
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

static void check_identity(ESYS_CONTEXT *esys, uint32_t handle, const char *cert_path,
                           struct check_result *ident)
{
    ESYS_TR obj = ESYS_TR_NONE;
    TPM2B_PUBLIC *pub = NULL;
    char why[600];
    char action[512];

    snprintf(action, sizeof(action),
             "provision the gateway key: create a P-256 signing key in the TPM and make it "
             "persistent at 0x%08x (operator guide, \"Provisioning\")",
             (unsigned)handle);
    TSS2_RC rc =
        Esys_TR_FromTPMPublic(esys, handle, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &obj);
    if (rc != TSS2_RC_SUCCESS) {
        check_set(ident, "identity", CHECK_FAIL, action, "no key at persistent handle 0x%08x (%s)",
                  (unsigned)handle, Tss2_RC_Decode(rc));
        goto out;
    }
    rc = Esys_ReadPublic(esys, obj, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &pub, NULL, NULL);
    if (rc != TSS2_RC_SUCCESS) {
        check_set(ident, "identity", CHECK_FAIL, action,
                  "cannot read the public part of 0x%08x (%s)", (unsigned)handle,
                  Tss2_RC_Decode(rc));
        goto out;
    }
    const TPMT_PUBLIC *p = &pub->publicArea;
    TPMA_OBJECT attrs = p->objectAttributes;
    if (p->type != TPM2_ALG_ECC || p->parameters.eccDetail.curveID != TPM2_ECC_NIST_P256) {
        check_set(ident, "identity", CHECK_FAIL, action,
                  "the key at 0x%08x is not an ECC P-256 key", (unsigned)handle);
        goto out;
    }
    if (!(attrs & TPMA_OBJECT_SIGN_ENCRYPT) || (attrs & TPMA_OBJECT_DECRYPT)) {
        check_set(ident, "identity", CHECK_FAIL, action,
                  "the key at 0x%08x is not a signing-only key", (unsigned)handle);
        goto out;
    }
    if (!(attrs & TPMA_OBJECT_FIXEDTPM) || !(attrs & TPMA_OBJECT_FIXEDPARENT) ||
        !(attrs & TPMA_OBJECT_SENSITIVEDATAORIGIN)) {
        check_set(ident, "identity", CHECK_FAIL, action,
                  "the key at 0x%08x can leave the TPM or was imported (fixedTPM, fixedParent "
                  "and sensitiveDataOrigin are required)",
                  (unsigned)handle);
        goto out;
    }
    if (cert_path != NULL) {
        int m = cert_matches(cert_path, &p->unique.ecc.x, &p->unique.ecc.y, why, sizeof(why));
        if (m != 0) {
            check_set(ident, "identity", CHECK_FAIL,
                      "have the certificate issued for this TPM key (CSR made with the key at "
                      "the handle) or point uplink.cert_file at it",
                      "%s", why);
            goto out;
        }
        check_set(ident, "identity", CHECK_OK, NULL,
                  "P-256 signing key at 0x%08x, kept in the TPM, is the key of %s",
                  (unsigned)handle, cert_path);
    } else {
        check_set(ident, "identity", CHECK_OK, NULL, "P-256 signing key at 0x%08x, kept in the TPM",
                  (unsigned)handle);
    }
out:
    free(pub);
    if (obj != ESYS_TR_NONE)
        (void)Esys_TR_Close(esys, &obj);
}

void check_tpm(const char *tcti, uint32_t handle, const char *cert_path, struct check_result *tpm,
               struct check_result *ident)
{
    TSS2_TCTI_CONTEXT *tctx = NULL;
    ESYS_CONTEXT *esys = NULL;
    TPMS_CAPABILITY_DATA *cap = NULL;
    TPMI_YES_NO more = TPM2_NO;
    char action[512];

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
    TSS2_RC rc = Tss2_TctiLdr_Initialize(tcti, &tctx);
    if (rc != TSS2_RC_SUCCESS) {
        check_set(tpm, "tpm", CHECK_FAIL, action, "cannot open TCTI '%s' (%s)", tcti,
                  Tss2_RC_Decode(rc));
        goto out;
    }
    rc = Esys_Initialize(&esys, tctx, NULL);
    if (rc != TSS2_RC_SUCCESS) {
        check_set(tpm, "tpm", CHECK_FAIL, action, "cannot talk to the TPM through '%s' (%s)", tcti,
                  Tss2_RC_Decode(rc));
        goto out;
    }
    rc = Esys_GetCapability(esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, TPM2_CAP_TPM_PROPERTIES,
                            TPM2_PT_MANUFACTURER, 1, &more, &cap);
    if (rc != TSS2_RC_SUCCESS || cap == NULL || cap->data.tpmProperties.count < 1 ||
        cap->data.tpmProperties.tpmProperty[0].property != TPM2_PT_MANUFACTURER) {
        check_set(tpm, "tpm", CHECK_FAIL, action, "the TPM behind '%s' does not answer (%s)", tcti,
                  rc != TSS2_RC_SUCCESS ? Tss2_RC_Decode(rc) : "no manufacturer property");
        goto out;
    }
    char vendor[5];
    manufacturer_name(cap->data.tpmProperties.tpmProperty[0].value, vendor);
    check_set(tpm, "tpm", CHECK_OK, NULL, "TPM 2.0 reachable through '%s' (manufacturer '%s')",
              tcti, vendor);
    if (ident != NULL && handle != 0)
        check_identity(esys, handle, cert_path, ident);
out:
    free(cap);
    if (esys != NULL)
        Esys_Finalize(&esys);
    if (tctx != NULL)
        Tss2_TctiLdr_Finalize(&tctx);
}
