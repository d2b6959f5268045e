/* The tpm2-openssl provider: loading it for a TCTI, loading a TPM key through OSSL_STORE,
 * and making a certificate signing request signed inside the TPM. */
#ifndef FLEETGW_TPM_PROVIDER_H
#define FLEETGW_TPM_PROVIDER_H

#include <stddef.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

/* A private OpenSSL library context (OSSL_LIB_CTX) holding its own default and tpm2
 * providers, the tpm2 one connected to the TPM through one TCTI. Only objects made in this
 * context (keys loaded with tpm_provider_key, an SSL_CTX_new_ex(tpm_provider_libctx(p),
 * TPM_PROVIDER_PROPQ, ...)) use the TPM: the process's default library context, its
 * providers and its default properties are left as they were, so other code in the process
 * (e.g. proto/'s ECDSA verification) keeps using the default provider. */
struct tpm_provider;

/* The property query of the private context (also set as its default properties): prefer
 * the tpm2 provider's signature (and with it its EC key management), which is what makes a
 * TPM key sign inside the TPM; OpenSSL 3.0 fetches the signature by this query, not from the
 * key's provider, so without it a TPM key fails with "missing private key". Digests,
 * random numbers and key exchange stay with the default provider. */
#define TPM_PROVIDER_PROPQ "?tpm2.signature=yes"

/* Creates the context and loads the default and tpm2 providers into it. The provider reads
 * its TCTI from the environment variable TPM2OPENSSL_TCTI while it is loaded: it is set to
 * tcti for that moment and then put back as it was (not thread-safe against other code
 * changing the environment). -ENOPKG when the tpm2 provider cannot be loaded (not
 * installed, OPENSSL_MODULES pointing elsewhere, or it could not reach the TPM). */
int tpm_provider_open(const char *tcti, struct tpm_provider **ret, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* The private library context (owned by p). */
OSSL_LIB_CTX *tpm_provider_libctx(const struct tpm_provider *p);

/* Unloads the providers (the tpm2 provider's teardown closes its TPM connection) and frees
 * the context; NULL is a no-op. Every key and SSL_CTX made in the context must be freed
 * first. */
void tpm_provider_close(struct tpm_provider *p);

/* The private key at uri ("handle:0x81000001" or a TSS2 PRIVATE KEY PEM path) through the
 * tpm2 provider of p; -ENOKEY when none. */
int tpm_provider_key(const struct tpm_provider *p, const char *uri, EVP_PKEY **ret_pkey, char *err,
                     size_t errlen) __attribute__((warn_unused_result));

/* Parses "/CN=gw-1/O=Example" into an X509_NAME (UTF-8; '\' escapes '/'). */
int tpm_subject_parse(const char *subject, X509_NAME **ret_name)
    __attribute__((warn_unused_result));

/* A PKCS#10 request for the key at uri, subject as above, signed (ECDSA-SHA256) by the TPM
 * through a private context (tpm_provider_open) that is closed again before returning. */
int tpm_csr_make(const char *tcti, const char *uri, const char *subject, X509_REQ **ret_req,
                 char *err, size_t errlen) __attribute__((warn_unused_result));

#endif
