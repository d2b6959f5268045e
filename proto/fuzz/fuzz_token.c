/* Fuzz target: the PSA token decoder and verifier. Properties: no crash/overread; an accepted
 * token's claims pass token_check_claims(), re-encode, and decode back to the same claims. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fleetgw/token.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The P-256 base point: a valid public key nobody signs fuzz inputs with. */
static const uint8_t pub_g[65] = {0x04, 0x6b, 0x17, 0xd1, 0xf2, 0xe1, 0x2c, 0x42, 0x47, 0xf8, 0xbc,
                                  0xe6, 0xe5, 0x63, 0xa4, 0x40, 0xf2, 0x77, 0x03, 0x7d, 0x81, 0x2d,
                                  0xeb, 0x33, 0xa0, 0xf4, 0xa1, 0x39, 0x45, 0xd8, 0x98, 0xc2, 0x96,
                                  0x4f, 0xe3, 0x42, 0xe2, 0xfe, 0x1a, 0x7f, 0x9b, 0x8e, 0xe7, 0xeb,
                                  0x4a, 0x7c, 0x0f, 0x9e, 0x16, 0x2b, 0xce, 0x33, 0x57, 0x6b, 0x31,
                                  0x5e, 0xce, 0xcb, 0xb6, 0x40, 0x68, 0x37, 0xbf, 0x51, 0xf5};

static int zero_sign(void *key_ctx, const uint8_t digest[CRYPTO_SHA256_LEN],
                     uint8_t sig_rs[CRYPTO_P256_SIG_LEN])
{
    (void)key_ctx;
    (void)digest;
    memset(sig_rs, 0, CRYPTO_P256_SIG_LEN);
    return 0;
}

static struct token_claims c, c2;
static uint8_t out[TOKEN_MAX_LEN];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t len = 0;
    enum token_err r = token_decode(data, size, &c);

    if ((unsigned)r >= (unsigned)TOKEN_ERR__COUNT)
        abort();
    if (r == TOKEN_OK) {
        if (token_check_claims(&c) != TOKEN_OK)
            abort();
        /* the re-encoding is at most as long (no unknown claims) and decodes identically */
        if (token_encode(&c, zero_sign, NULL, out, sizeof(out), &len) != TOKEN_OK)
            abort();
        if (token_decode(out, len, &c2) != TOKEN_OK || memcmp(&c, &c2, sizeof(c)) != 0)
            abort();
    } else {
        static const struct token_claims zero;
        if (memcmp(&c, &zero, sizeof(c)) != 0)
            abort(); /* output cleared on error */
    }
    /* nobody holds the key to the base point: verification must fail */
    if (token_verify(data, size, pub_g, NULL, 0, &c) == TOKEN_OK)
        abort();
    return 0;
}
