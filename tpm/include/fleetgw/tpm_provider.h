/* The tpm2-openssl provider: loading it for a TCTI, loading a TPM key through OSSL_STORE,
 * and making a certificate signing request signed inside the TPM. */
#ifndef FLEETGW_TPM_PROVIDER_H
#define FLEETGW_TPM_PROVIDER_H

#include <stddef.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

/* Loads the default and tpm2 providers for this TCTI (process-wide, once; a second call
 * with another TCTI is -EBUSY). -ENOPKG when the tpm2 provider cannot be loaded (not
 * installed, OPENSSL_MODULES pointing elsewhere, or it could not reach the TPM). */
int tpm_provider_load(const char *tcti, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Unloads what tpm_provider_load loaded (at the end of a program, after every key and
 * SSL_CTX from the provider was freed). */
void tpm_provider_unload(void);

/* The private key at uri ("handle:0x81000001" or a TSS2 PRIVATE KEY PEM path) through the
 * tpm2 provider; -ENOKEY when none. The provider must be loaded. */
int tpm_provider_key(const char *uri, EVP_PKEY **ret_pkey, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Parses "/CN=gw-1/O=Example" into an X509_NAME (UTF-8; '\' escapes '/'). */
int tpm_subject_parse(const char *subject, X509_NAME **ret_name)
    __attribute__((warn_unused_result));

/* A PKCS#10 request for the key at uri, subject as above, signed (ECDSA-SHA256) by the TPM. */
int tpm_csr_make(const char *tcti, const char *uri, const char *subject, X509_REQ **ret_req,
                 char *err, size_t errlen) __attribute__((warn_unused_result));

#endif
