/* Mutual-TLS client context with the private key in the TPM (tpm2-openssl provider). */
#include "fleetgw/tpm_tls.h"

#include <fleetgw/secret_file.h>
#include "fleetgw/tpm_provider.h"
#include "tpm_err.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

/* A TPM-backed SSL_CTX owns its private library context (tpm_provider) through ex_data.
 * OpenSSL frees an SSL_CTX's ex_data at the start of SSL_CTX_free, before the certificates,
 * key and fetched algorithms that still belong to the library context, so the free callback
 * cannot close the context there: it moves it to a list of released contexts, which are
 * closed by the next tpm_tls_ctx_free() or tpm_tls_ctx_new() (by then that SSL_CTX_free has
 * returned) and otherwise stay referenced from that list until the process exits. Whoever
 * drops the last reference (tpm_tls_ctx_free, SSL_CTX_free, libmosquitto's
 * mosquitto_destroy) releases it. */
struct tls_owned {
    struct tpm_provider *prov;
    struct tls_owned *next;
};

static pthread_once_t ex_once = PTHREAD_ONCE_INIT;
static int ex_index = -1;
static pthread_mutex_t released_lock = PTHREAD_MUTEX_INITIALIZER;
static struct tls_owned *released;

static void ex_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    struct tls_owned *o = ptr;
    (void)parent;
    (void)ad;
    (void)idx;
    (void)argl;
    (void)argp;
    if (o == NULL)
        return;
    (void)pthread_mutex_lock(&released_lock);
    o->next = released;
    released = o;
    (void)pthread_mutex_unlock(&released_lock);
}

static void ex_index_init(void)
{
    ex_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, ex_free);
}

/* Closes the contexts of SSL_CTXs that are completely freed. */
static void close_released(void)
{
    (void)pthread_mutex_lock(&released_lock);
    struct tls_owned *o = released;
    released = NULL;
    (void)pthread_mutex_unlock(&released_lock);
    while (o != NULL) {
        struct tls_owned *next = o->next;
        tpm_provider_close(o->prov);
        free(o);
        o = next;
    }
}

static EVP_PKEY *load_tpm_key(const struct tpm_provider *prov, const char *uri, char *err,
                              size_t errlen)
{
    EVP_PKEY *pkey = NULL;
    if (tpm_provider_key(prov, uri, &pkey, err, errlen) < 0)
        return NULL;
    return pkey;
}

/* A software PEM key (development, no TPM): a secret, refused when its group or others may
 * use it (secret_file_open: the message names the file and its mode). */
static EVP_PKEY *load_file_key(const char *path, char *err, size_t errlen)
{
    int fd = secret_file_open(path, "key file", err, errlen);
    if (fd < 0)
        return NULL;
    FILE *f = fdopen(fd, "r");
    if (f == NULL) {
        tpm_set_ssl_err(err, errlen, "cannot open key file %s: %s", path, strerror(errno));
        close(fd);
        return NULL;
    }
    EVP_PKEY *pkey = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    if (pkey == NULL)
        tpm_set_ssl_err(err, errlen, "key file %s holds no PEM private key", path);
    return pkey;
}

static int is_ip_literal(const char *s)
{
    ASN1_OCTET_STRING *ip = a2i_IPADDRESS(s);
    if (ip == NULL) {
        ERR_clear_error();
        return 0;
    }
    ASN1_OCTET_STRING_free(ip);
    return 1;
}

int tpm_tls_ctx_new(const struct tpm_tls_config *cfg, SSL_CTX **ret_ctx, char *err, size_t errlen)
{
    int r = -EINVAL;
    SSL_CTX *ctx = NULL;
    EVP_PKEY *pkey = NULL;
    struct tls_owned *owned = NULL;
    const struct tpm_provider *prov = NULL; /* borrowed: owned->prov, then the SSL_CTX's */
    int use_tpm = cfg != NULL && cfg->tcti != NULL && cfg->tcti[0] != '\0';

    if (cfg == NULL || ret_ctx == NULL || cfg->key == NULL || cfg->cert_file == NULL ||
        cfg->ca_file == NULL || cfg->server_name == NULL || cfg->server_name[0] == '\0') {
        tpm_set_ssl_err(err, errlen,
                        "TLS configuration incomplete: key, certificate, CA file and "
                        "server name are all required");
        return -EINVAL;
    }
    if (pthread_once(&ex_once, ex_index_init) != 0 || ex_index < 0) {
        tpm_set_ssl_err(err, errlen, "cannot register the TLS context's data index");
        return -ENOMEM;
    }
    close_released();
    /* The TPM key lives in a private library context: only this SSL_CTX uses the tpm2
     * provider; the process's default context is not touched. A software key uses the
     * default context. */
    if (use_tpm) {
        owned = calloc(1, sizeof(*owned));
        if (owned == NULL) {
            tpm_set_err(err, errlen, "out of memory");
            r = -ENOMEM;
            goto out;
        }
        r = tpm_provider_open(cfg->tcti, &owned->prov, err, errlen);
        if (r < 0)
            goto out;
        prov = owned->prov;
        ctx = SSL_CTX_new_ex(tpm_provider_libctx(prov), TPM_PROVIDER_PROPQ, TLS_client_method());
    } else {
        ctx = SSL_CTX_new(TLS_client_method());
    }
    if (ctx == NULL || (owned != NULL && SSL_CTX_set_ex_data(ctx, ex_index, owned) != 1)) {
        tpm_set_ssl_err(err, errlen, "cannot create an OpenSSL TLS context");
        r = -ENOMEM;
        goto out;
    }
    owned = NULL; /* the SSL_CTX's now: released when it is freed */
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
        tpm_set_ssl_err(err, errlen, "cannot require TLS 1.2");
        r = -EINVAL;
        goto out;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, cfg->cert_file) != 1) {
        tpm_set_ssl_err(err, errlen, "cannot use client certificate %s", cfg->cert_file);
        r = -ENOENT;
        goto out;
    }
    pkey =
        use_tpm ? load_tpm_key(prov, cfg->key, err, errlen) : load_file_key(cfg->key, err, errlen);
    if (pkey == NULL) {
        r = -ENOKEY;
        goto out;
    }
    if (SSL_CTX_use_PrivateKey(ctx, pkey) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
        tpm_set_ssl_err(err, errlen, "client certificate %s does not match the key %s",
                        cfg->cert_file, cfg->key);
        r = -EKEYREJECTED;
        goto out;
    }
    /* Server verification is ours: libmosquitto checks nothing with WITH_DEFAULTS = 0. */
    if (SSL_CTX_load_verify_locations(ctx, cfg->ca_file, NULL) != 1) {
        tpm_set_ssl_err(err, errlen, "cannot load CA file %s", cfg->ca_file);
        r = -ENOENT;
        goto out;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    X509_VERIFY_PARAM *param = SSL_CTX_get0_param(ctx);
    int ok = is_ip_literal(cfg->server_name)
                 ? X509_VERIFY_PARAM_set1_ip_asc(param, cfg->server_name)
                 : X509_VERIFY_PARAM_set1_host(param, cfg->server_name, 0);
    if (ok != 1) {
        tpm_set_ssl_err(err, errlen, "cannot set the expected server name '%s'", cfg->server_name);
        r = -EINVAL;
        goto out;
    }
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    *ret_ctx = ctx;
    ctx = NULL;
    r = 0;
out:
    EVP_PKEY_free(pkey);
    SSL_CTX_free(ctx);
    if (owned != NULL) {
        tpm_provider_close(owned->prov);
        free(owned);
    }
    close_released();
    return r;
}

void tpm_tls_ctx_free(SSL_CTX *ctx)
{
    SSL_CTX_free(ctx);
    close_released();
}
