/* Identities derived from a node's IAK (see ident.h). */
#include "fleetgw/ident.h"

#include <string.h>

#include "fleetgw/hex.h"

int ident_node_id(const uint8_t pub[CRYPTO_P256_PUB_LEN], char out[IDENT_NODE_ID_LEN + 1])
{
    uint8_t md[CRYPTO_SHA256_LEN];

    out[0] = '\0';
    if (pub == NULL || pub[0] != 0x04 || crypto_sha256(pub, CRYPTO_P256_PUB_LEN, md) != 0)
        return -1;
    hex_encode(md, IDENT_NODE_ID_LEN / 2u, out);
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

int ident_sym_key_id(const uint8_t *key, size_t key_len, uint8_t out[IDENT_SYM_KEY_ID_LEN])
{
    uint8_t h[CRYPTO_SHA256_LEN];
    int r = -1;

    memset(out, 0, IDENT_SYM_KEY_ID_LEN);
    if (key != NULL && key_len >= CRYPTO_HMAC_KEY_MIN && key_len <= CRYPTO_HMAC_KEY_MAX &&
        crypto_sha256(key, key_len, h) == 0 && crypto_sha256(h, sizeof(h), out) == 0)
        r = 0;
    crypto_wipe(h, sizeof(h));
    if (r != 0)
        memset(out, 0, IDENT_SYM_KEY_ID_LEN);
    return r;
}

void ident_sym_node_id(const uint8_t key_id[IDENT_SYM_KEY_ID_LEN], char out[IDENT_NODE_ID_LEN + 1])
{
    hex_encode(key_id, IDENT_NODE_ID_LEN / 2u, out);
}

void ident_sym_instance_id(const uint8_t key_id[IDENT_SYM_KEY_ID_LEN],
                           uint8_t out[IDENT_INSTANCE_ID_LEN])
{
    out[0] = 0x01;
    memcpy(out + 1, key_id, IDENT_SYM_KEY_ID_LEN);
}
