/* TLS client layer on Mbed TLS 2.28 (see fleetgw/node_tls.h). */
#include "fleetgw/node_tls.h"

#include <limits.h>
#include <string.h>

#include <mbedtls/error.h>

/* The BIO error codes of Mbed TLS's own socket module (net_sockets.h), which MCU builds do
 * not compile: the values are part of the 2.28 API. */
#ifndef MBEDTLS_ERR_NET_SEND_FAILED
#define MBEDTLS_ERR_NET_SEND_FAILED -0x004E
#endif
#ifndef MBEDTLS_ERR_NET_RECV_FAILED
#define MBEDTLS_ERR_NET_RECV_FAILED -0x004C
#endif

#include "fleetgw/agent_log.h"

/* The DRBG (re)seeds through the port's entropy callback kept in the session. */
static int entropy_adapter(void *ctx, unsigned char *buf, size_t len)
{
    const struct node_tls *t = ctx;
    return t->entropy(t->entropy_ctx, buf, len) == 0 ? 0
                                                     : MBEDTLS_ERR_HMAC_DRBG_ENTROPY_SOURCE_FAILED;
}

/* ---- BIO over the lower transport ---------------------------------------------------- */

static int bio_send(void *ctx, const unsigned char *buf, size_t len)
{
    struct node_tls *t = ctx;
    long n;
    if (len > INT_MAX)
        len = INT_MAX;
    n = t->lower->write(t->lower->ctx, buf, len);
    if (n == TRANSPORT_AGAIN || n == 0)
        return MBEDTLS_ERR_SSL_WANT_WRITE;
    if (n < 0 || (size_t)n > len)
        return MBEDTLS_ERR_NET_SEND_FAILED;
    return (int)n;
}

static int bio_recv(void *ctx, unsigned char *buf, size_t len)
{
    struct node_tls *t = ctx;
    long n;
    if (len > INT_MAX)
        len = INT_MAX;
    n = t->lower->read(t->lower->ctx, buf, len);
    if (n == TRANSPORT_AGAIN)
        return MBEDTLS_ERR_SSL_WANT_READ;
    if (n == TRANSPORT_EOF || n == 0)
        return 0; /* Mbed TLS turns this into MBEDTLS_ERR_SSL_CONN_EOF */
    if (n < 0 || (size_t)n > len)
        return MBEDTLS_ERR_NET_RECV_FAILED;
    return (int)n;
}

/* ---- the protected stream ------------------------------------------------------------ */

static long upper_read(void *ctx, uint8_t *buf, size_t len)
{
    struct node_tls *t = ctx;
    int r;
    if (!t->established)
        return TRANSPORT_ERROR;
    r = mbedtls_ssl_read(&t->ssl, buf, len);
    if (r > 0)
        return r;
    if (r == MBEDTLS_ERR_SSL_WANT_READ || r == MBEDTLS_ERR_SSL_WANT_WRITE)
        return TRANSPORT_AGAIN;
    if (r == 0 || r == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY || r == MBEDTLS_ERR_SSL_CONN_EOF)
        return TRANSPORT_EOF;
    t->last_error = r;
    return TRANSPORT_ERROR;
}

static long upper_write(void *ctx, const uint8_t *buf, size_t len)
{
    struct node_tls *t = ctx;
    size_t want = len;
    int r;
    if (!t->established || len == 0)
        return len == 0 ? 0 : TRANSPORT_ERROR;
    /* After WANT_WRITE Mbed TLS holds an encrypted record of write_pending bytes and must be
     * called again with the same data; the caller keeps those leading bytes unchanged. */
    if (t->write_pending != 0) {
        if (len < t->write_pending)
            return TRANSPORT_ERROR;
        want = t->write_pending;
    } else {
        int max = mbedtls_ssl_get_max_out_record_payload(&t->ssl);
        if (max > 0 && want > (size_t)max)
            want = (size_t)max;
    }
    r = mbedtls_ssl_write(&t->ssl, buf, want);
    if (r > 0) {
        t->write_pending = 0;
        return r;
    }
    if (r == MBEDTLS_ERR_SSL_WANT_WRITE || r == MBEDTLS_ERR_SSL_WANT_READ) {
        t->write_pending = want;
        return TRANSPORT_AGAIN;
    }
    t->last_error = r;
    return TRANSPORT_ERROR;
}

static agent_hs_t layer_handshake(void *ctx)
{
    return node_tls_handshake(ctx);
}

static void layer_reset(void *ctx)
{
    node_tls_reset(ctx);
}

/* ---- public API ---------------------------------------------------------------------- */

node_tls_status_t node_tls_trust_init(struct node_tls_trust *t, const uint8_t *ca, size_t ca_len)
{
    if (t == NULL || ca == NULL || ca_len == 0)
        return NODE_TLS_ERR_PARAM;
    memset(t, 0, sizeof(*t));
    mbedtls_x509_crt_init(&t->ca);
    if (mbedtls_x509_crt_parse(&t->ca, ca, ca_len) != 0) {
        mbedtls_x509_crt_free(&t->ca);
        return NODE_TLS_ERR_CA;
    }
    t->loaded = true;
    return NODE_TLS_OK;
}

void node_tls_trust_free(struct node_tls_trust *t)
{
    if (t == NULL || !t->loaded)
        return;
    mbedtls_x509_crt_free(&t->ca);
    t->loaded = false;
}

node_tls_status_t node_tls_init(struct node_tls *tls, const struct node_tls_config *cfg,
                                struct transport *lower)
{
    node_tls_status_t st = NODE_TLS_OK;
    const char *pers;
    int r;

    if (tls == NULL || cfg == NULL || lower == NULL || lower->read == NULL ||
        lower->write == NULL || cfg->trust == NULL || !cfg->trust->loaded || cfg->cert == NULL ||
        cfg->key == NULL || cfg->server_name == NULL || cfg->server_name[0] == '\0' ||
        cfg->entropy == NULL)
        return NODE_TLS_ERR_PARAM;
    memset(tls, 0, sizeof(*tls));
    mbedtls_ssl_init(&tls->ssl);
    mbedtls_ssl_config_init(&tls->conf);
    mbedtls_hmac_drbg_init(&tls->drbg);
    mbedtls_x509_crt_init(&tls->own_cert);
    mbedtls_pk_init(&tls->own_key);
    tls->lower = lower;
    tls->ready = true; /* everything above is safe to free from here on */

    tls->entropy = cfg->entropy;
    tls->entropy_ctx = cfg->entropy_ctx;
    pers = cfg->personalization != NULL ? cfg->personalization : "fleetgw-node";
    if (mbedtls_hmac_drbg_seed(&tls->drbg, mbedtls_md_info_from_type(MBEDTLS_MD_SHA256),
                               entropy_adapter, tls, (const unsigned char *)pers,
                               strlen(pers)) != 0) {
        st = NODE_TLS_ERR_ENTROPY;
        goto out;
    }
    if (mbedtls_x509_crt_parse(&tls->own_cert, cfg->cert, cfg->cert_len) != 0) {
        st = NODE_TLS_ERR_CERT;
        goto out;
    }
    if (mbedtls_pk_parse_key(&tls->own_key, cfg->key, cfg->key_len, NULL, 0) != 0 ||
        mbedtls_pk_check_pair(&tls->own_cert.pk, &tls->own_key) != 0) {
        st = NODE_TLS_ERR_KEY;
        goto out;
    }
    r = mbedtls_ssl_config_defaults(&tls->conf, MBEDTLS_SSL_IS_CLIENT, MBEDTLS_SSL_TRANSPORT_STREAM,
                                    MBEDTLS_SSL_PRESET_DEFAULT);
    if (r != 0) {
        st = NODE_TLS_ERR_SETUP;
        goto out;
    }
    mbedtls_ssl_conf_authmode(&tls->conf, MBEDTLS_SSL_VERIFY_REQUIRED);
    /* Mbed TLS takes a non-const pointer but only reads the chain. */
    mbedtls_ssl_conf_ca_chain(&tls->conf, (mbedtls_x509_crt *)(void *)&cfg->trust->ca, NULL);
    mbedtls_ssl_conf_rng(&tls->conf, mbedtls_hmac_drbg_random, &tls->drbg);
    mbedtls_ssl_conf_min_version(&tls->conf, MBEDTLS_SSL_MAJOR_VERSION_3,
                                 MBEDTLS_SSL_MINOR_VERSION_3);
    if (cfg->max_fragment_len != 0) {
#if defined(MBEDTLS_SSL_MAX_FRAGMENT_LENGTH)
        unsigned char code;
        switch (cfg->max_fragment_len) {
        case 512:
            code = MBEDTLS_SSL_MAX_FRAG_LEN_512;
            break;
        case 1024:
            code = MBEDTLS_SSL_MAX_FRAG_LEN_1024;
            break;
        case 2048:
            code = MBEDTLS_SSL_MAX_FRAG_LEN_2048;
            break;
        case 4096:
            code = MBEDTLS_SSL_MAX_FRAG_LEN_4096;
            break;
        default:
            st = NODE_TLS_ERR_PARAM;
            goto out;
        }
        if (mbedtls_ssl_conf_max_frag_len(&tls->conf, code) != 0) {
            st = NODE_TLS_ERR_SETUP;
            goto out;
        }
#else
        st = NODE_TLS_ERR_SETUP;
        goto out;
#endif
    }
    if (mbedtls_ssl_conf_own_cert(&tls->conf, &tls->own_cert, &tls->own_key) != 0 ||
        mbedtls_ssl_setup(&tls->ssl, &tls->conf) != 0 ||
        mbedtls_ssl_set_hostname(&tls->ssl, cfg->server_name) != 0) {
        st = NODE_TLS_ERR_SETUP;
        goto out;
    }
    mbedtls_ssl_set_bio(&tls->ssl, tls, bio_send, bio_recv, NULL);
    tls->upper.ctx = tls;
    tls->upper.read = upper_read;
    tls->upper.write = upper_write;
    tls->layer.ctx = tls;
    tls->layer.handshake = layer_handshake;
    tls->layer.reset = layer_reset;
    tls->layer.upper = &tls->upper;
out:
    if (st != NODE_TLS_OK)
        node_tls_free(tls);
    return st;
}

void node_tls_free(struct node_tls *tls)
{
    if (tls == NULL || !tls->ready)
        return;
    mbedtls_ssl_free(&tls->ssl);
    mbedtls_ssl_config_free(&tls->conf);
    mbedtls_hmac_drbg_free(&tls->drbg);
    mbedtls_x509_crt_free(&tls->own_cert);
    mbedtls_pk_free(&tls->own_key); /* zeroizes the key */
    tls->ready = false;
    tls->established = false;
}

agent_hs_t node_tls_handshake(struct node_tls *tls)
{
    int r;
    if (tls == NULL || !tls->ready)
        return AGENT_HS_FAILED;
    if (tls->established)
        return AGENT_HS_DONE;
    r = mbedtls_ssl_handshake(&tls->ssl);
    if (r == 0) {
        tls->established = true;
        tls->verify_flags = 0;
        return AGENT_HS_DONE;
    }
    if (r == MBEDTLS_ERR_SSL_WANT_READ || r == MBEDTLS_ERR_SSL_WANT_WRITE)
        return AGENT_HS_AGAIN;
    tls->last_error = r;
    tls->verify_flags = mbedtls_ssl_get_verify_result(&tls->ssl);
    AGENT_LOGE("tls: handshake failed: -0x%04x", (unsigned)-r);
    return AGENT_HS_FAILED;
}

void node_tls_reset(struct node_tls *tls)
{
    if (tls == NULL || !tls->ready)
        return;
    (void)mbedtls_ssl_session_reset(&tls->ssl);
    tls->write_pending = 0;
    tls->established = false;
}

struct transport *node_tls_transport(struct node_tls *tls)
{
    return &tls->upper;
}

const struct agent_layer *node_tls_layer(struct node_tls *tls)
{
    return &tls->layer;
}

const char *node_tls_error_str(const struct node_tls *tls, char *buf, size_t len)
{
    if (buf == NULL || len == 0)
        return "";
    buf[0] = '\0';
    if (tls->verify_flags != 0 && tls->verify_flags != (uint32_t)-1) {
        int n = mbedtls_x509_crt_verify_info(buf, len, "", tls->verify_flags);
        /* one line: verify_info separates reasons with newlines */
        for (size_t i = 0; n > 0 && i < len && buf[i] != '\0'; i++)
            if (buf[i] == '\n')
                buf[i] = (buf[i + 1] == '\0') ? '\0' : ';';
        if (n > 0)
            return buf;
    }
    if (tls->last_error != 0) {
#if defined(MBEDTLS_ERROR_C) || defined(MBEDTLS_ERROR_STRERROR_DUMMY)
        mbedtls_strerror(tls->last_error, buf, len);
#else
        static const char hex[] = "0123456789abcdef";
        unsigned v = (unsigned)-tls->last_error;
        if (len >= 8) {
            buf[0] = '-';
            buf[1] = '0';
            buf[2] = 'x';
            for (int i = 0; i < 4; i++)
                buf[3 + i] = hex[(v >> (12 - 4 * i)) & 0xFu];
            buf[7] = '\0';
        }
#endif
        return buf;
    }
    return "no error";
}
