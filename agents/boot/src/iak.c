/* IAK storage. Protected storage layout (BOOT_PSA_OFF, one sector):
 *   +0x000  seed record: "FGSD" | seed[32] | crc32          (written at manufacture)
 *   +0x100  up to 8 key slots of 0x80: "FGIK" | d[32] | Q[65] | 0[3] | crc32
 * The first valid key slot is the IAK. A torn key write fails its CRC; the next provisioning
 * writes the next erased slot. Nothing here is ever erased by the bootloader. */
#include "fleetgw/iak.h"
#include "fleetgw/bytes.h"

#include <string.h>

#include "mbedtls/ecdsa.h"
#include "mbedtls/ecp.h"
#include "mbedtls/hmac_drbg.h"
#include "mbedtls/md.h"
#include "mbedtls/platform_util.h"

#define SEED_MAGIC 0x44534746u /* "FGSD" */
#define KEY_MAGIC  0x4b494746u /* "FGIK" */
#define SEED_REC   (4u + IAK_SEED_LEN + 4u)
#define KEY_REC    108u
#define KEY_SLOTS  8u
#define KEY_BASE   (BOOT_PSA_OFF + 0x100u)
#define KEY_STRIDE 0x80u

static const char personalization[] = "fleetgw-iak-v1";

static uint32_t crc32(const uint8_t *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    while (n-- > 0) {
        c ^= *p++;
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
    }
    return ~c;
}

static int erased(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != 0xFF)
            return 0;
    return 1;
}

/* Finds the valid key record (copied into rec) and/or the first erased slot. */
static enum iak_status find_key(const struct boot_flash *flash, uint8_t rec[KEY_REC], int *found,
                                uint32_t *free_off)
{
    *found = 0;
    *free_off = 0;
    for (uint32_t i = 0; i < KEY_SLOTS; i++) {
        uint32_t off = KEY_BASE + i * KEY_STRIDE;
        if (flash->read(flash->ctx, off, rec, KEY_REC) != 0)
            return IAK_FLASH_ERROR;
        if (bytes_le32(rec) == KEY_MAGIC &&
            bytes_le32(rec + KEY_REC - 4) == crc32(rec, KEY_REC - 4)) {
            *found = 1;
            return IAK_OK;
        }
        if (*free_off == 0 && erased(rec, KEY_REC))
            *free_off = off;
    }
    mbedtls_platform_zeroize(rec, KEY_REC);
    return IAK_OK;
}

static int drbg_seeded(mbedtls_hmac_drbg_context *drbg, const uint8_t *seed, size_t len)
{
    uint8_t buf[IAK_SEED_LEN + sizeof(personalization)];
    memcpy(buf, seed, len);
    memcpy(buf + len, personalization, sizeof(personalization));
    int rc = mbedtls_hmac_drbg_seed_buf(drbg, mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), buf,
                                        len + sizeof(personalization));
    mbedtls_platform_zeroize(buf, sizeof(buf));
    return rc;
}

enum iak_status iak_provision(const struct boot_flash *flash, iak_entropy_fn entropy,
                              void *entropy_ctx)
{
    uint8_t rec[KEY_REC], seed[SEED_REC];
    mbedtls_hmac_drbg_context drbg;
    mbedtls_ecp_keypair kp;
    enum iak_status st;
    int found;
    uint32_t free_off;
    size_t qlen = 0;

    mbedtls_hmac_drbg_init(&drbg);
    mbedtls_ecp_keypair_init(&kp);
    st = find_key(flash, rec, &found, &free_off);
    if (st != IAK_OK || found)
        goto out;
    st = IAK_FLASH_ERROR;
    if (free_off == 0)
        goto out; /* every slot torn: protected storage needs a factory reset */
    if (entropy != NULL) {
        st = IAK_NO_SEED;
        if (entropy(entropy_ctx, seed + 4, IAK_SEED_LEN) != 0)
            goto out;
    } else {
        if (flash->read(flash->ctx, BOOT_PSA_OFF, seed, SEED_REC) != 0)
            goto out;
        st = IAK_NO_SEED;
        if (bytes_le32(seed) != SEED_MAGIC ||
            bytes_le32(seed + SEED_REC - 4) != crc32(seed, SEED_REC - 4))
            goto out;
    }
    st = IAK_CRYPTO_ERROR;
    if (drbg_seeded(&drbg, seed + 4, IAK_SEED_LEN) != 0 ||
        mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, &kp, mbedtls_hmac_drbg_random, &drbg) != 0)
        goto out;
    memset(rec, 0, sizeof(rec));
    bytes_put_le32(rec, KEY_MAGIC);
    if (mbedtls_mpi_write_binary(&kp.d, rec + 4, 32) != 0 ||
        mbedtls_ecp_point_write_binary(&kp.grp, &kp.Q, MBEDTLS_ECP_PF_UNCOMPRESSED, &qlen, rec + 36,
                                       65) != 0 ||
        qlen != 65)
        goto out;
    bytes_put_le32(rec + KEY_REC - 4, crc32(rec, KEY_REC - 4));
    st = flash->write(flash->ctx, free_off, rec, KEY_REC) == 0 ? IAK_OK : IAK_FLASH_ERROR;
out:
    mbedtls_platform_zeroize(rec, sizeof(rec));
    mbedtls_platform_zeroize(seed, sizeof(seed));
    mbedtls_ecp_keypair_free(&kp);
    mbedtls_hmac_drbg_free(&drbg);
    return st;
}

enum iak_status iak_public_key(const struct boot_flash *flash, uint8_t pub[65])
{
    uint8_t rec[KEY_REC];
    int found;
    uint32_t free_off;
    memset(pub, 0, 65);
    enum iak_status st = find_key(flash, rec, &found, &free_off);
    if (st == IAK_OK && !found)
        st = IAK_NO_KEY;
    if (st == IAK_OK)
        memcpy(pub, rec + 36, 65);
    mbedtls_platform_zeroize(rec, sizeof(rec));
    return st;
}

int iak_sign(void *key_ctx, const uint8_t digest[32], uint8_t sig_rs[64])
{
    const struct boot_flash *flash = key_ctx;
    uint8_t rec[KEY_REC];
    mbedtls_ecp_group grp;
    mbedtls_mpi d, r, s;
    mbedtls_hmac_drbg_context blind;
    int found, rc = -1;
    uint32_t free_off;

    memset(sig_rs, 0, 64);
    mbedtls_ecp_group_init(&grp);
    mbedtls_mpi_init(&d);
    mbedtls_mpi_init(&r);
    mbedtls_mpi_init(&s);
    mbedtls_hmac_drbg_init(&blind);
    if (find_key(flash, rec, &found, &free_off) != IAK_OK || !found)
        goto out;
    /* Blinding values from a DRBG over (key, digest): any unpredictable source will do. */
    uint8_t bseed[64];
    memcpy(bseed, rec + 4, 32);
    memcpy(bseed + 32, digest, 32);
    int seeded = mbedtls_hmac_drbg_seed_buf(&blind, mbedtls_md_info_from_type(MBEDTLS_MD_SHA256),
                                            bseed, sizeof(bseed));
    mbedtls_platform_zeroize(bseed, sizeof(bseed));
    if (seeded != 0 || mbedtls_ecp_group_load(&grp, MBEDTLS_ECP_DP_SECP256R1) != 0 ||
        mbedtls_mpi_read_binary(&d, rec + 4, 32) != 0 ||
        mbedtls_ecdsa_sign_det_ext(&grp, &r, &s, &d, digest, 32, MBEDTLS_MD_SHA256,
                                   mbedtls_hmac_drbg_random, &blind) != 0 ||
        mbedtls_mpi_write_binary(&r, sig_rs, 32) != 0 ||
        mbedtls_mpi_write_binary(&s, sig_rs + 32, 32) != 0)
        goto out;
    rc = 0;
out:
    if (rc != 0)
        memset(sig_rs, 0, 64);
    mbedtls_platform_zeroize(rec, sizeof(rec));
    mbedtls_hmac_drbg_free(&blind);
    mbedtls_mpi_free(&s);
    mbedtls_mpi_free(&r);
    mbedtls_mpi_free(&d);
    mbedtls_ecp_group_free(&grp);
    return rc;
}

enum iak_status iak_write_seed(const struct boot_flash *flash, const uint8_t seed[IAK_SEED_LEN])
{
    uint8_t rec[SEED_REC];
    if (flash->read(flash->ctx, BOOT_PSA_OFF, rec, SEED_REC) != 0)
        return IAK_FLASH_ERROR;
    if (!erased(rec, SEED_REC))
        return IAK_FLASH_ERROR;
    bytes_put_le32(rec, SEED_MAGIC);
    memcpy(rec + 4, seed, IAK_SEED_LEN);
    bytes_put_le32(rec + SEED_REC - 4, crc32(rec, SEED_REC - 4));
    enum iak_status st =
        flash->write(flash->ctx, BOOT_PSA_OFF, rec, SEED_REC) == 0 ? IAK_OK : IAK_FLASH_ERROR;
    mbedtls_platform_zeroize(rec, sizeof(rec));
    return st;
}
