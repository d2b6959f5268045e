/* The gateway's identity in the TPM (tpm2-tss ESAPI): the P-256 signing key (at a persistent
 * handle, or as a TSS2 PRIVATE KEY file for TPMs short of NV space), the attestation key and
 * quotes, and sealing a small secret. All functions return 0 or a negative errno and write a
 * one-line reason into err (never key material). The errno values are a closed set that the
 * CLI maps to exit codes (docs/tpm.md):
 *
 *   -ENODEV        no TPM reachable (TCTI cannot be loaded/connected, TPM does not answer)
 *   -ENOLCK        the TPM is in dictionary-attack lockout (TPM_RC_LOCKOUT)
 *   -EACCES        wrong authorization value (owner hierarchy or object: TPM_RC_BAD_AUTH /
 *                  TPM_RC_AUTH_FAIL)
 *   -EEXIST        the persistent handle (or key file) holds a different key
 *   -ENOKEY        no key at that handle / in that file
 *   -EKEYREJECTED  a policy (e.g. the PCR policy of a sealed secret) is not satisfied
 *   -ENOSPC        no NV space for another persistent object
 *   -EBADMSG       a file (key file, sealed blob) is malformed
 *   -EIO           any other TPM error (the reason names the TPM response code)
 *   -EINVAL, -ENOMEM, file errno values for what they usually mean. */
#ifndef FLEETGW_TPM_IDENTITY_H
#define FLEETGW_TPM_IDENTITY_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#define TPM_DEFAULT_TCTI       "device:/dev/tpmrm0"
#define TPM_DEFAULT_KEY_HANDLE 0x81000001u
#define TPM_DEFAULT_AK_HANDLE  0x81000002u
#define TPM_SEAL_MAX           128 /* MAX_SYM_DATA */
#define TPM_SEAL_BLOB_MAX      1024
#define TPM_PCR_BANKS_MAX      4

struct tpm;

/* Which key: a persistent handle (0x81000000..0x81ffffff), or a TSS2 PRIVATE KEY PEM file
 * (key_file not NULL) loaded under the owner's storage primary. */
struct tpm_key_ref {
    uint32_t handle;
    const char *key_file;
};

enum tpm_key_kind {
    TPM_KEY_IDENTITY, /* P-256 ECDSA signing key: fixedTPM fixedParent sensitiveDataOrigin
                         userWithAuth sign; NOT decrypt, NOT restricted */
    TPM_KEY_AK,       /* attestation key: the same, plus restricted */
};

/* A PCR selection: up to TPM_PCR_BANKS_MAX banks, each a hash algorithm and a bit mask of
 * PCRs 0..23. */
struct tpm_pcr_selection {
    size_t nbanks;
    struct {
        uint16_t alg;
        uint32_t mask;
    } banks[TPM_PCR_BANKS_MAX];
};

/* Parses "sha256:0,1,7" or "sha1:0+sha256:0,7" (banks joined by '+'). */
int tpm_pcr_selection_parse(const char *spec, struct tpm_pcr_selection *out)
    __attribute__((warn_unused_result));

/* Connects through the TCTI configuration ("device:/dev/tpmrm0", "tabrmd:bus_type=session",
 * "swtpm:host=127.0.0.1,port=2321") and checks the TPM answers. */
int tpm_open(const char *tcti, struct tpm **ret, char *err, size_t errlen)
    __attribute__((warn_unused_result));
void tpm_close(struct tpm *t);

/* The TPM's manufacturer (TPM2_PT_MANUFACTURER: four ASCII characters, e.g. "IBM ", "IFX "),
 * unprintable characters shown as spaces. */
int tpm_manufacturer(struct tpm *t, char out[5], char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Authorization value of the owner hierarchy (empty by default). */
int tpm_set_owner_auth(struct tpm *t, const char *auth) __attribute__((warn_unused_result));

/* Creates the key if absent (idempotent). An existing key with the expected template is kept
 * (*ret_created = 0); a different object at the handle / in the file is -EEXIST unless
 * force, which replaces it. *ret_pub receives the public key. */
int tpm_key_init(struct tpm *t, enum tpm_key_kind kind, const struct tpm_key_ref *ref, int force,
                 int *ret_created, EVP_PKEY **ret_pub, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* The public key of an existing key; -ENOKEY when absent, -EEXIST when the object there is
 * not a key of this kind. */
int tpm_key_public(struct tpm *t, enum tpm_key_kind kind, const struct tpm_key_ref *ref,
                   EVP_PKEY **ret_pub, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Signs a SHA-256 digest with the identity key; writes a DER ECDSA-Sig-Value. */
int tpm_key_sign(struct tpm *t, const struct tpm_key_ref *ref, const uint8_t digest[32],
                 uint8_t *sig, size_t cap, size_t *ret_len, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* TPM2_Quote with the AK over sel, qualified by nonce; writes the blob of fleetgw/quote.h. */
int tpm_quote(struct tpm *t, const struct tpm_key_ref *ak, const uint8_t *nonce, size_t nonce_len,
              const struct tpm_pcr_selection *sel, uint8_t *blob, size_t cap, size_t *ret_len,
              char *err, size_t errlen) __attribute__((warn_unused_result));

/* Seals up to TPM_SEAL_MAX bytes to this TPM (a keyedhash object under the owner's storage
 * primary), bound to the current values of the PCRs in policy when it is not NULL. The blob
 * (format in docs/tpm.md) is useless on another TPM. */
int tpm_seal(struct tpm *t, const uint8_t *secret, size_t len,
             const struct tpm_pcr_selection *policy, uint8_t *blob, size_t cap, size_t *ret_len,
             char *err, size_t errlen) __attribute__((warn_unused_result));

/* Unseals; -EKEYREJECTED when the PCR policy no longer holds. */
int tpm_unseal(struct tpm *t, const uint8_t *blob, size_t len, uint8_t *secret, size_t cap,
               size_t *ret_len, char *err, size_t errlen) __attribute__((warn_unused_result));

#endif
