/* Identities derived from a node's Initial Attestation Key (IAK), once for the whole tree: the
 * gateway's registry, the attestation verifier, the simulated and the real node all call these
 * (docs/protocol.md, "Node identity").
 *
 *   node id      hex of the first 16 bytes of SHA-256(IAK point): 32 lower-case characters,
 *                the node's MQTT identity (certificate CN, fleet/<id>/...)
 *   instance id  0x01 || SHA-256(IAK point): the PSA token's instance id claim (RFC 9783,
 *                type 0x01 = RAND, the EAT UEID form TF-M uses)
 *
 * The IAK point is the 65-byte uncompressed P-256 point 0x04 || X || Y.
 *
 * A node with a symmetric IAK (COSE_Mac0, HMAC-SHA256; docs/protocol.md 4.5) has no public
 * key: its identity is the IAK id SHA-256(SHA-256(key)) (PSA attestation API 2.0, table 4:
 * H(H(IAK)), so that nothing usable about the secret is revealed):
 *   node id      hex of the first 16 bytes of the IAK id
 *   instance id  0x01 || IAK id
 * No malloc, no I/O. */
#ifndef FLEETGW_IDENT_H
#define FLEETGW_IDENT_H

#include <stddef.h>
#include <stdint.h>

#include "fleetgw/crypto.h"

#define IDENT_NODE_ID_LEN     32u /* characters, without the NUL */
#define IDENT_INSTANCE_ID_LEN 33u

/* 0, or -1 when pub is not an uncompressed point (out is then the empty string). */
int ident_node_id(const uint8_t pub[CRYPTO_P256_PUB_LEN],
                  char out[IDENT_NODE_ID_LEN + 1]) CRYPTO_MUST_CHECK;
/* 0, or -1 when pub is not an uncompressed point (out is then zeroed). */
int ident_instance_id(const uint8_t pub[CRYPTO_P256_PUB_LEN],
                      uint8_t out[IDENT_INSTANCE_ID_LEN]) CRYPTO_MUST_CHECK;

#define IDENT_SYM_KEY_ID_LEN 32u

/* The IAK id of a symmetric key of CRYPTO_HMAC_KEY_MIN..MAX bytes: 0, or -1 (out zeroed). */
int ident_sym_key_id(const uint8_t *key, size_t key_len,
                     uint8_t out[IDENT_SYM_KEY_ID_LEN]) CRYPTO_MUST_CHECK;
/* Node id and instance id of a symmetric IAK, from its IAK id (never fails). */
void ident_sym_node_id(const uint8_t key_id[IDENT_SYM_KEY_ID_LEN], char out[IDENT_NODE_ID_LEN + 1]);
void ident_sym_instance_id(const uint8_t key_id[IDENT_SYM_KEY_ID_LEN],
                           uint8_t out[IDENT_INSTANCE_ID_LEN]);

#endif
