/* Identities derived from a node's Initial Attestation Key (IAK), once for the whole tree: the
 * gateway's registry, the attestation verifier, the simulated and the real node all call these
 * (docs/protocol.md, "Node identity").
 *
 *   node id      hex of the first 16 bytes of SHA-256(IAK point): 32 lower-case characters,
 *                the node's MQTT identity (certificate CN, fleet/<id>/...)
 *   instance id  0x01 || SHA-256(IAK point): the PSA token's instance id claim (RFC 9783,
 *                type 0x01 = RAND, the EAT UEID form TF-M uses)
 *
 * The IAK point is the 65-byte uncompressed P-256 point 0x04 || X || Y. No malloc, no I/O. */
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

#endif
