/* fleet-sim attestation: a software Initial Attestation Key (P-256, Mbed TLS) per simulated
 * node, kept in a key directory, and PSA tokens (proto token_encode) for the gateway's
 * challenges, whose software component is measured from a real signed MCUboot image. */
#ifndef FLEETGW_SIM_ATTEST_H
#define FLEETGW_SIM_ATTEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fleetgw/ident.h"

#include <mbedtls/hmac_drbg.h>
#include <mbedtls/pk.h>

#include "fleetgw/crypto.h"

#define SIM_NODE_ID_LEN IDENT_NODE_ID_LEN /* proto's ident_node_id */

/* How a node misbehaves (tests and the demo). */
enum sim_bad { SIM_GOOD = 0, SIM_BAD_MEASUREMENT, SIM_FORGE, SIM_REPLAY };

/* What the node reports about its firmware, measured once from the signed image. */
struct sim_image {
    uint8_t measurement[CRYPTO_SHA256_LEN]; /* the MCUboot image hash */
    uint8_t signer_id[CRYPTO_SHA256_LEN];   /* SHA-256 of the signer's public key (SPKI DER) */
    char version[32];                       /* "major.minor.revision+build" */
    uint8_t major, minor;
    uint16_t revision;
    uint32_t build;
};

/* Shared by all nodes of the process (single-threaded). */
struct sim_crypto {
    mbedtls_hmac_drbg_context drbg;
    bool ready;
};

struct sim_iak {
    mbedtls_pk_context key;    /* the IAK (an EC key) */
    mbedtls_pk_context forged; /* SIM_FORGE only: the key it signs with instead */
    bool has_forged;
    uint8_t pub[CRYPTO_P256_PUB_LEN];
    char node_id[SIM_NODE_ID_LEN + 1];
    uint8_t boot_seed[16]; /* new every run */
    uint8_t old_nonce[32]; /* SIM_REPLAY: the stale nonce it answers with */
    enum sim_bad bad;
    const struct sim_image *image;
    struct sim_crypto *crypto;
};

int sim_crypto_init(struct sim_crypto *c);
void sim_crypto_free(struct sim_crypto *c);

/* Reads and checks a signed image (structure, stored hash = computed hash) and fills img.
 * Returns 0, or -1 with a message on stderr. */
int sim_image_load(const char *path, struct sim_image *img);

/* Loads DIR/<slot>.iak.pem, or creates it (mode 0600, O_EXCL) with a fresh key from the
 * DRBG. Refuses a key file readable by group or others. Fills pub and node_id. */
int sim_iak_load_or_create(struct sim_iak *k, struct sim_crypto *c, const char *dir,
                           const char *slot);
/* Writes the public key as DIR/<node_id>.pem (SubjectPublicKeyInfo PEM, what
 * `fleetgwctl node add --pub` reads). */
int sim_iak_export_pub(const struct sim_iak *k, const char *dir);
/* Sets the misbehaviour; SIM_FORGE generates the (unstored) key it signs with. */
int sim_iak_set_bad(struct sim_iak *k, enum sim_bad bad);
void sim_iak_free(struct sim_iak *k);

/* The PSA token for a challenge nonce. Returns 0 and *out_len, or -1. */
int sim_iak_token(struct sim_iak *k, const uint8_t *nonce, size_t nonce_len, uint8_t *out,
                  size_t cap, size_t *out_len);

#endif
