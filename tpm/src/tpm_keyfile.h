/* TSS2 PRIVATE KEY PEM files (the format of the tpm2-openssl provider and tpm2-tss-engine):
 * SEQUENCE { type OID 2.23.133.10.1.3, [0] emptyAuth BOOLEAN, parent INTEGER (TPM_RH_OWNER),
 * pubkey OCTET STRING (TPM2B_PUBLIC), privkey OCTET STRING (TPM2B_PRIVATE) }. Internal. */
#ifndef FLEETGW_TPM_KEYFILE_H
#define FLEETGW_TPM_KEYFILE_H

#include <stddef.h>

#include <tss2/tss2_tpm2_types.h>

/* 1 when path exists, 0 when not, negative errno on another error. */
int tpm_keyfile_exists(const char *path) __attribute__((warn_unused_result));

int tpm_keyfile_read(const char *path, TPM2B_PUBLIC *pub, TPM2B_PRIVATE *priv, char *err,
                     size_t errlen) __attribute__((warn_unused_result));

/* Writes the file with mode 0600; refuses to replace an existing file unless replace. */
int tpm_keyfile_write(const char *path, const TPM2B_PUBLIC *pub, const TPM2B_PRIVATE *priv,
                      int replace, char *err, size_t errlen) __attribute__((warn_unused_result));

#endif
