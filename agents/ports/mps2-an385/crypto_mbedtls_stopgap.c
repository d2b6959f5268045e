/* Mbed TLS back-end of fleetgw/crypto.h for the firmware, used only until proto/'s own
 * proto/src/crypto_mbedtls.c lands in main (the firmware build then uses that one instead:
 * see agents/firmware/cross/CMakeLists.txt). */
#include <string.h>

#include "fleetgw/crypto.h"
#include "mbedtls/bignum.h"
#include "mbedtls/ecdsa.h"
#include "mbedtls/ecp.h"
#include "mbedtls/sha256.h"

_Static_assert(sizeof(mbedtls_sha256_context) <= sizeof(crypto_sha256_ctx), "sha256 ctx size");

int crypto_sha256_init(crypto_sha256_ctx *ctx)
{
    mbedtls_sha256_context *c = (mbedtls_sha256_context *)ctx->opaque;
    mbedtls_sha256_init(c);
    return mbedtls_sha256_starts_ret(c, 0) == 0 ? 0 : -1;
}

int crypto_sha256_update(crypto_sha256_ctx *ctx, const uint8_t *data, size_t len)
{
    if (data == NULL && len > 0)
        return -1;
    return mbedtls_sha256_update_ret((mbedtls_sha256_context *)ctx->opaque, data, len) == 0 ? 0
                                                                                            : -1;
}

int crypto_sha256_final(crypto_sha256_ctx *ctx, uint8_t out[CRYPTO_SHA256_LEN])
{
    mbedtls_sha256_context *c = (mbedtls_sha256_context *)ctx->opaque;
    int rc = mbedtls_sha256_finish_ret(c, out) == 0 ? 0 : -1;
    mbedtls_sha256_free(c);
    return rc;
}

void crypto_sha256_abort(crypto_sha256_ctx *ctx)
{
    mbedtls_sha256_free((mbedtls_sha256_context *)ctx->opaque);
}

int crypto_sha256(const uint8_t *data, size_t len, uint8_t out[CRYPTO_SHA256_LEN])
{
    return mbedtls_sha256_ret(data, len, out, 0) == 0 ? 0 : -1;
}

int crypto_p256_verify(const uint8_t pub[CRYPTO_P256_PUB_LEN],
                       const uint8_t digest[CRYPTO_SHA256_LEN],
                       const uint8_t sig_rs[CRYPTO_P256_SIG_LEN])
{
    mbedtls_ecp_group grp;
    mbedtls_ecp_point q;
    mbedtls_mpi r, s;
    int rc = -1;
    mbedtls_ecp_group_init(&grp);
    mbedtls_ecp_point_init(&q);
    mbedtls_mpi_init(&r);
    mbedtls_mpi_init(&s);
    if (mbedtls_ecp_group_load(&grp, MBEDTLS_ECP_DP_SECP256R1) != 0 ||
        mbedtls_ecp_point_read_binary(&grp, &q, pub, CRYPTO_P256_PUB_LEN) != 0 ||
        mbedtls_ecp_check_pubkey(&grp, &q) != 0 || mbedtls_mpi_read_binary(&r, sig_rs, 32) != 0 ||
        mbedtls_mpi_read_binary(&s, sig_rs + 32, 32) != 0)
        goto out;
    if (mbedtls_ecdsa_verify(&grp, digest, CRYPTO_SHA256_LEN, &q, &r, &s) == 0)
        rc = 0;
out:
    mbedtls_mpi_free(&s);
    mbedtls_mpi_free(&r);
    mbedtls_ecp_point_free(&q);
    mbedtls_ecp_group_free(&grp);
    return rc;
}

int crypto_memcmp_ct(const void *a, const void *b, size_t len)
{
    const volatile uint8_t *x = a, *y = b;
    uint8_t d = 0;
    for (size_t i = 0; i < len; i++)
        d |= (uint8_t)(x[i] ^ y[i]);
    return d != 0;
}

void crypto_wipe(void *p, size_t len)
{
    volatile uint8_t *v = p;
    while (len-- > 0)
        *v++ = 0;
}
