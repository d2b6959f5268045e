/* Identities derived from a node's IAK (see ident.h). */
#include "fleetgw/ident.h"

#include <string.h>

int ident_node_id(const uint8_t pub[CRYPTO_P256_PUB_LEN], char out[IDENT_NODE_ID_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    uint8_t md[CRYPTO_SHA256_LEN];

    out[0] = '\0';
    if (pub == NULL || pub[0] != 0x04 || crypto_sha256(pub, CRYPTO_P256_PUB_LEN, md) != 0)
        return -1;
    for (size_t i = 0; i < IDENT_NODE_ID_LEN / 2u; i++) {
        out[2u * i] = hex[md[i] >> 4];
        out[2u * i + 1u] = hex[md[i] & 15u];
    }
    out[IDENT_NODE_ID_LEN] = '\0';
    return 0;
}

int ident_instance_id(const uint8_t pub[CRYPTO_P256_PUB_LEN], uint8_t out[IDENT_INSTANCE_ID_LEN])
{
    memset(out, 0, IDENT_INSTANCE_ID_LEN);
    if (pub == NULL || pub[0] != 0x04 || crypto_sha256(pub, CRYPTO_P256_PUB_LEN, out + 1) != 0) {
        memset(out, 0, IDENT_INSTANCE_ID_LEN);
        return -1;
    }
    out[0] = 0x01;
    return 0;
}
