/* Development fallback for tpm_tls_ctx_new(), compiled ONLY when the tpm/ library is not
 * part of the build (see daemon/CMakeLists.txt). It supports the software-key case of
 * tpm/include/fleetgw/tpm_tls.h (cfg->tcti NULL or "") and refuses a TPM key with a clear
 * reason. When tpm/ is built, its implementation is linked instead and this file is not. */
#include <fleetgw/tpm_tls.h>

#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <arpa/inet.h>

static void ssl_reason(char *err, size_t errlen, const char *what)
{
    char buf[256];
    unsigned long e = ERR_get_error();
    ERR_error_string_n(e, buf, sizeof(buf));
    snprintf(err, errlen, "%s: %s", what, e ? buf : "unknown error");
    ERR_clear_error();
}

int tpm_tls_ctx_new(const struct tpm_tls_config *cfg, SSL_CTX **ret_ctx, char *err, size_t errlen)
{
    SSL_CTX *ctx = NULL;
    int r = -EINVAL;
    unsigned char ipbuf[16];

    if (cfg->tcti != NULL && cfg->tcti[0] != '\0') {
        snprintf(err, errlen,
                 "this fleetgwd was built without the tpm/ library: a TPM key (tcti '%s') "
                 "cannot be used",
                 cfg->tcti);
        return -EOPNOTSUPP;
    }
    ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL) {
        ssl_reason(err, errlen, "SSL_CTX_new");
        r = -ENOMEM;
        goto out;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (SSL_CTX_use_certificate_chain_file(ctx, cfg->cert_file) != 1) {
        ssl_reason(err, errlen, "client certificate");
        goto out;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, cfg->key, SSL_FILETYPE_PEM) != 1) {
        ssl_reason(err, errlen, "client key");
        goto out;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        ssl_reason(err, errlen, "client key does not match the certificate");
        goto out;
    }
    if (SSL_CTX_load_verify_locations(ctx, cfg->ca_file, NULL) != 1) {
        ssl_reason(err, errlen, "CA file");
        goto out;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    X509_VERIFY_PARAM *param = SSL_CTX_get0_param(ctx);
    if (inet_pton(AF_INET, cfg->server_name, ipbuf) == 1 ||
        inet_pton(AF_INET6, cfg->server_name, ipbuf) == 1) {
        if (X509_VERIFY_PARAM_set1_ip_asc(param, cfg->server_name) != 1) {
            ssl_reason(err, errlen, "server IP check");
            goto out;
        }
    } else if (X509_VERIFY_PARAM_set1_host(param, cfg->server_name, 0) != 1) {
        ssl_reason(err, errlen, "server name check");
        goto out;
    }
    *ret_ctx = ctx;
    ctx = NULL;
    r = 0;
out:
    SSL_CTX_free(ctx);
    return r;
}
