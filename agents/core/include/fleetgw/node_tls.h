/* TLS client layer of the node agent, on Mbed TLS 2.28, over any struct transport (a TCP
 * socket on the posix port, a UART on the MCU). It is itself a struct transport for the
 * layer above (MQTT) and an agent_layer (handshake/reset) for the agent.
 *
 * Policy: TLS 1.2, the server certificate must chain to the configured CA (verification
 * required) and match the configured host name; the client authenticates with its own
 * certificate and key. Entropy comes from a port callback (getrandom on posix, the TRNG on
 * the MCU) and feeds an HMAC_DRBG (SHA-256) per session. No POSIX call in here.
 * Memory: Mbed TLS allocates through its platform calloc (the libc heap on the host, the
 * MBEDTLS_MEMORY_BUFFER_ALLOC_C arena on the MCU); this code itself allocates nothing. */
#ifndef FLEETGW_NODE_TLS_H
#define FLEETGW_NODE_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <mbedtls/hmac_drbg.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>

#include "fleetgw/agent.h"
#include "fleetgw/transport.h"

#if defined(__GNUC__)
#define NODE_TLS_MUST_CHECK __attribute__((warn_unused_result))
#else
#define NODE_TLS_MUST_CHECK
#endif

typedef enum node_tls_status {
    NODE_TLS_OK = 0,
    NODE_TLS_ERR_PARAM,
    NODE_TLS_ERR_CA,      /* the CA certificate(s) did not parse */
    NODE_TLS_ERR_CERT,    /* our certificate did not parse */
    NODE_TLS_ERR_KEY,     /* our key did not parse or does not match the certificate */
    NODE_TLS_ERR_ENTROPY, /* the DRBG could not be seeded */
    NODE_TLS_ERR_SETUP    /* Mbed TLS refused the configuration */
} node_tls_status_t;

/* Port entropy: fill buf with len bytes from a real source; 0 on success. */
typedef int (*node_tls_entropy_fn)(void *ctx, uint8_t *buf, size_t len);

/* Trust anchors, parsed once and shared read-only by any number of sessions. */
struct node_tls_trust {
    mbedtls_x509_crt ca;
    bool loaded;
};

struct node_tls {
    mbedtls_ssl_context ssl;
    mbedtls_ssl_config conf;
    mbedtls_hmac_drbg_context drbg;
    mbedtls_x509_crt own_cert;
    mbedtls_pk_context own_key;
    node_tls_entropy_fn entropy;
    void *entropy_ctx;
    struct transport *lower;
    struct transport upper;   /* handed to MQTT */
    struct agent_layer layer; /* handed to the agent */
    size_t write_pending;     /* length of a record Mbed TLS holds after WANT_WRITE */
    int last_error;           /* last Mbed TLS error code (negative), for diagnostics */
    uint32_t verify_flags;    /* X.509 verification result of the last handshake */
    bool ready;
    bool established;
};

/* pem/der buffers: PEM must include its terminating NUL in the length (Mbed TLS rule). */
node_tls_status_t node_tls_trust_init(struct node_tls_trust *t, const uint8_t *ca,
                                      size_t ca_len) NODE_TLS_MUST_CHECK;
void node_tls_trust_free(struct node_tls_trust *t);

struct node_tls_config {
    const struct node_tls_trust *trust;
    const uint8_t *cert; /* our certificate (chain), PEM or DER */
    size_t cert_len;
    const uint8_t *key; /* our private key, PEM or DER (not encrypted) */
    size_t key_len;
    const char *server_name; /* checked against the broker certificate (SAN DNS / CN) */
    node_tls_entropy_fn entropy;
    void *entropy_ctx;
    const char *personalization; /* e.g. the node id: mixed into the DRBG seed */
    /* 0, or 512/1024/2048/4096: asks the broker for records of at most this size (RFC 6066
     * max_fragment_length), so that an MCU build can use small Mbed TLS record buffers
     * (MBEDTLS_SSL_IN_CONTENT_LEN). Needs MBEDTLS_SSL_MAX_FRAGMENT_LENGTH. */
    uint16_t max_fragment_len;
};

node_tls_status_t node_tls_init(struct node_tls *tls, const struct node_tls_config *cfg,
                                struct transport *lower) NODE_TLS_MUST_CHECK;
/* Frees everything Mbed TLS holds for this session and wipes the key material. */
void node_tls_free(struct node_tls *tls);

/* One non-blocking handshake step. */
agent_hs_t node_tls_handshake(struct node_tls *tls);
/* Ready for a new connection over the (re-opened) lower transport. */
void node_tls_reset(struct node_tls *tls);

/* The protected stream (valid for the lifetime of tls). */
struct transport *node_tls_transport(struct node_tls *tls);
/* The agent_layer view (handshake/reset/upper). */
const struct agent_layer *node_tls_layer(struct node_tls *tls);

/* Human-readable description of the last failure (certificate verification reason when
 * the server certificate was refused). */
const char *node_tls_error_str(const struct node_tls *tls, char *buf, size_t len);

#endif
