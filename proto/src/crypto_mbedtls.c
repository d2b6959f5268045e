/* Mbed TLS 2.28 back-end of fleetgw/crypto.h (firmware and the posix agent). */
#include "fleetgw/crypto.h"

#include <string.h>

#include <mbedtls/bignum.h>
#include <mbedtls/ecdsa.h>
#include <mbedtls/ecp.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/sha256.h>

/* The Mbed TLS context lives inside the caller's crypto_sha256_ctx (no allocation), after a
 * marker that tells a live context from a finished one. */
#define CTX_LIVE 0x53484132u

struct mbed_ctx {
    uint32_t live;
    mbedtls_sha256_context sha;
};
typedef char
    crypto_mbedtls_wrap_fits[sizeof(struct mbed_ctx) <= sizeof(crypto_sha256_ctx) ? 1 : -1];

static struct mbed_ctx *ctx_of(crypto_sha256_ctx *ctx)
{
    return (struct mbed_ctx *)(void *)ctx->opaque;
}

int crypto_sha256_init(crypto_sha256_ctx *ctx)
{
    if (ctx == NULL)
        return -1;
    struct mbed_ctx *c = ctx_of(ctx);
    mbedtls_sha256_init(&c->sha);
    if (mbedtls_sha256_starts_ret(&c->sha, 0) != 0) {
        mbedtls_sha256_free(&c->sha);
        c->live = 0;
        return -1;
    }
    c->live = CTX_LIVE;
    return 0;
}

int crypto_sha256_update(crypto_sha256_ctx *ctx, const uint8_t *data, size_t len)
{
    if (ctx == NULL || ctx_of(ctx)->live != CTX_LIVE || (data == NULL && len > 0))
        return -1;
    if (len == 0)
        return 0;
    return mbedtls_sha256_update_ret(&ctx_of(ctx)->sha, data, len) == 0 ? 0 : -1;
}

int crypto_sha256_final(crypto_sha256_ctx *ctx, uint8_t out[CRYPTO_SHA256_LEN])
{
    if (ctx == NULL || ctx_of(ctx)->live != CTX_LIVE)
        return -1;
    struct mbed_ctx *c = ctx_of(ctx);
    int ok = out != NULL && mbedtls_sha256_finish_ret(&c->sha, out) == 0;
    mbedtls_sha256_free(&c->sha); /* zeroizes */
    c->live = 0;
    return ok ? 0 : -1;
}

void crypto_sha256_abort(crypto_sha256_ctx *ctx)
{
    if (ctx == NULL || ctx_of(ctx)->live != CTX_LIVE)
        return;
    mbedtls_sha256_free(&ctx_of(ctx)->sha);
    ctx_of(ctx)->live = 0;
}

int crypto_sha256(const uint8_t *data, size_t len, uint8_t out[CRYPTO_SHA256_LEN])
{
    if ((data == NULL && len > 0) || out == NULL)
        return -1;
    return mbedtls_sha256_ret(data, len, out, 0) == 0 ? 0 : -1;
}

int crypto_p256_verify(const uint8_t pub[CRYPTO_P256_PUB_LEN],
                       const uint8_t digest[CRYPTO_SHA256_LEN],
                       const uint8_t sig_rs[CRYPTO_P256_SIG_LEN])
{
    int ret = -1;
    mbedtls_ecp_group grp;
    mbedtls_ecp_point q;
    mbedtls_mpi r, s;

    if (pub == NULL || digest == NULL || sig_rs == NULL || pub[0] != 0x04)
        return -1;
    mbedtls_ecp_group_init(&grp);
    mbedtls_ecp_point_init(&q);
    mbedtls_mpi_init(&r);
    mbedtls_mpi_init(&s);
    if (mbedtls_ecp_group_load(&grp, MBEDTLS_ECP_DP_SECP256R1) != 0)
        goto out;
    if (mbedtls_ecp_point_read_binary(&grp, &q, pub, CRYPTO_P256_PUB_LEN) != 0)
        goto out;
    if (mbedtls_ecp_check_pubkey(&grp, &q) != 0)
        goto out;
    if (mbedtls_mpi_read_binary(&r, sig_rs, 32) != 0 ||
        mbedtls_mpi_read_binary(&s, sig_rs + 32, 32) != 0)
        goto out;
    /* mbedtls_ecdsa_verify rejects r, s outside [1, n-1]. */
    if (mbedtls_ecdsa_verify(&grp, digest, CRYPTO_SHA256_LEN, &q, &r, &s) == 0)
        ret = 0;
out:
    mbedtls_mpi_free(&s);
    mbedtls_mpi_free(&r);
    mbedtls_ecp_point_free(&q);
    mbedtls_ecp_group_free(&grp);
    return ret;
}

/* HMAC (RFC 2104) on mbedtls_sha256 directly: mbedtls_md_setup() would allocate the pads,
 * and the firmware has no heap. Keys are at most one block (CRYPTO_HMAC_KEY_MAX = 64), so they
 * are never hashed first. */
int crypto_hmac_sha256(const uint8_t *key, size_t key_len, const struct crypto_buf *parts, size_t n,
                       uint8_t out[CRYPTO_HMAC_SHA256_LEN])
{
    uint8_t pad[64];
    uint8_t inner[CRYPTO_HMAC_SHA256_LEN];
    mbedtls_sha256_context sha;
    int ret = -1;

    if (out == NULL)
        return -1;
    mbedtls_sha256_init(&sha);
    if (key == NULL || key_len < CRYPTO_HMAC_KEY_MIN || key_len > CRYPTO_HMAC_KEY_MAX ||
        (parts == NULL && n > 0) || n > CRYPTO_HMAC_MAX_PARTS)
        goto out;
    for (size_t i = 0; i < n; i++)
        if (parts[i].p == NULL && parts[i].len > 0)
            goto out;
    /* inner = H((K ^ ipad) || message) */
    memset(pad, 0x36, sizeof(pad));
    for (size_t i = 0; i < key_len; i++)
        pad[i] ^= key[i];
    if (mbedtls_sha256_starts_ret(&sha, 0) != 0 || mbedtls_sha256_update_ret(&sha, pad, 64) != 0)
        goto out;
    for (size_t i = 0; i < n; i++)
        if (parts[i].len > 0 && mbedtls_sha256_update_ret(&sha, parts[i].p, parts[i].len) != 0)
            goto out;
    if (mbedtls_sha256_finish_ret(&sha, inner) != 0)
        goto out;
    /* out = H((K ^ opad) || inner) */
    memset(pad, 0x5c, sizeof(pad));
    for (size_t i = 0; i < key_len; i++)
        pad[i] ^= key[i];
    if (mbedtls_sha256_starts_ret(&sha, 0) != 0 || mbedtls_sha256_update_ret(&sha, pad, 64) != 0 ||
        mbedtls_sha256_update_ret(&sha, inner, sizeof(inner)) != 0 ||
        mbedtls_sha256_finish_ret(&sha, out) != 0)
        goto out;
    ret = 0;
out:
    if (ret != 0)
        mbedtls_platform_zeroize(out, CRYPTO_HMAC_SHA256_LEN);
    mbedtls_platform_zeroize(pad, sizeof(pad));
    mbedtls_platform_zeroize(inner, sizeof(inner));
    mbedtls_sha256_free(&sha); /* zeroizes the state */
    return ret;
}

int crypto_memcmp_ct(const void *a, const void *b, size_t len)
{
    const volatile uint8_t *x = a;
    const volatile uint8_t *y = b;
    uint8_t diff = 0;
    for (size_t i = 0; i < len; i++)
        diff |= (uint8_t)(x[i] ^ y[i]);
    return diff == 0 ? 0 : 1;
}

void crypto_wipe(void *p, size_t len)
{
    mbedtls_platform_zeroize(p, len);
}
