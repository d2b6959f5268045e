/* Mutual-TLS client context whose private key is held by the TPM (tpm2-openssl provider),
 * ready for libmosquitto (MOSQ_OPT_SSL_CTX with MOSQ_OPT_SSL_CTX_WITH_DEFAULTS = 0).
 * Server verification is done here, not by libmosquitto: the CA file, SSL_VERIFY_PEER and
 * a host-name or IP check against server_name. */
#ifndef FLEETGW_TPM_TLS_H
#define FLEETGW_TPM_TLS_H

#include <stddef.h>
#include <openssl/ssl.h>

struct tpm_tls_config {
    /* TCTI for the tpm2 provider ("device:/dev/tpmrm0", "tabrmd:bus_type=session", ...).
     * NULL or "" means the key is a software PEM key file (development only). */
    const char *tcti;
    /* "handle:0x81000001", a TSS2 PRIVATE KEY PEM path (with tcti), or a PEM key path. */
    const char *key;
    const char *cert_file;   /* client certificate (chain) PEM */
    const char *ca_file;     /* trust anchors for the server certificate */
    const char *server_name; /* DNS name or IP literal the server certificate must match */
};

/* Builds the context. Returns 0 or a negative errno; on failure writes a one-line reason
 * (what failed and why, never key material) into err. *ret_ctx is set only on success.
 * With a TPM key (tcti set) the context is made in a private OpenSSL library context with
 * its own default and tpm2 providers (tpm_provider.h): only this SSL_CTX's operations use
 * the TPM; the process's default library context and its default properties are not
 * changed. Free it with tpm_tls_ctx_free(). */
int tpm_tls_ctx_new(const struct tpm_tls_config *cfg, SSL_CTX **ret_ctx, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Drops the caller's reference to a context from tpm_tls_ctx_new() (SSL_CTX_free) and closes
 * the private library contexts of every such SSL_CTX that is completely freed by now: its
 * providers are unloaded (the tpm2 provider closes its TPM connection) and the library
 * context freed. NULL is a no-op. libmosquitto takes its own reference with
 * MOSQ_OPT_SSL_CTX: when mosquitto_destroy drops the last one afterwards, or a plain
 * SSL_CTX_free is used, the private context is closed by the next tpm_tls_ctx_free() or
 * tpm_tls_ctx_new() and otherwise stays allocated (and referenced) until the process exits.
 * Objects taken out of the context (peer certificates, sessions) must be freed before the
 * last reference goes. Not safe while another thread is freeing such a context. */
void tpm_tls_ctx_free(SSL_CTX *ctx);

#endif
