/* Fuzz target: the PSA token decoder and both verifiers (COSE_Sign1 ES256 and COSE_Mac0 HMAC
 * 256/256), for the three profiles. Properties: no crash/overread; a reason from the closed
 * enum; outputs cleared on error; an accepted token's claims pass token_check_claims(),
 * re-encode in the same envelope and profile, and decode back to the same claims; a Mac0
 * token MACed with the fuzz key (the corpus has some) verifies and its re-encoding verifies to
 * the same claims; nothing verifies under the P-256 base point, whose key nobody holds. */
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

/* The fuzz corpus's HMAC key: 32 bytes 0x0b (a test pattern, as in RFC 4231). The seeds
 * token-<profile>-mac0* were made with it by "fleetgw-tool token make --hmac-key" (a file of
 * these 32 bytes) and --profile; token-<profile>-sign1 with a throwaway P-256 key. */
static const uint8_t fuzz_hmac_key[32] = {
    0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b,
    0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b};

static int zero_sign(void *key_ctx, const uint8_t digest[CRYPTO_SHA256_LEN],
                     uint8_t sig_rs[CRYPTO_P256_SIG_LEN])
{
    (void)key_ctx;
    (void)digest;
    memset(sig_rs, 0, CRYPTO_P256_SIG_LEN);
    return 0;
}

static struct token_claims c, c2;
static const struct token_claims zero;
static uint8_t out[TOKEN_MAX_LEN];

static void check_result(enum token_err r, const struct token_claims *claims)
{
    if ((unsigned)r >= (unsigned)TOKEN_ERR__COUNT)
        abort();
    if (r != TOKEN_OK && memcmp(claims, &zero, sizeof(*claims)) != 0)
        abort(); /* output cleared on error */
    if (r == TOKEN_OK && (token_check_claims(claims) != TOKEN_OK ||
                          (unsigned)claims->profile_id >= (unsigned)TOKEN_PROFILE__COUNT))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t len = 0;
    enum token_err r = token_decode(data, size, &c);

    check_result(r, &c);
    if (r == TOKEN_OK) {
        /* the re-encoding is at most as long (no unknown claims) and decodes identically */
        if (c.envelope == TOKEN_ENVELOPE_MAC0)
            r = token_encode_mac0(&c, fuzz_hmac_key, sizeof(fuzz_hmac_key), out, sizeof(out), &len);
        else
            r = token_encode(&c, zero_sign, NULL, out, sizeof(out), &len);
        if (r != TOKEN_OK)
            abort();
        if (token_decode(out, len, &c2) != TOKEN_OK || memcmp(&c, &c2, sizeof(c)) != 0)
            abort();
    }
    /* nobody holds the key to the base point: verification must fail */
    r = token_verify(data, size, pub_g, NULL, 0, &c);
    check_result(r, &c);
    if (r == TOKEN_OK)
        abort();
    /* Mac0 with the corpus key: what verifies re-encodes to a token that verifies the same */
    r = token_verify_mac0(data, size, fuzz_hmac_key, sizeof(fuzz_hmac_key), NULL, 0, &c);
    check_result(r, &c);
    if (r == TOKEN_OK) {
        if (c.envelope != TOKEN_ENVELOPE_MAC0 ||
            token_encode_mac0(&c, fuzz_hmac_key, sizeof(fuzz_hmac_key), out, sizeof(out), &len) !=
                TOKEN_OK ||
            token_verify_mac0(out, len, fuzz_hmac_key, sizeof(fuzz_hmac_key), c.nonce, c.nonce_len,
                              &c2) != TOKEN_OK ||
            memcmp(&c, &c2, sizeof(c)) != 0)
            abort();
    }
    return 0;
}
