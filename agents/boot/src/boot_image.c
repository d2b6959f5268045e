/* MCUboot image verification over the flash seam. Bounds are checked by subtraction; nothing
 * is trusted until the hash and the signature over it are checked. */
#include "fleetgw/boot_image.h"

#include <string.h>

#include "fleetgw/crypto.h"

#define HDR_LEN   32u
#define CHUNK_LEN 256u

/* DER prefix of a P-256 SubjectPublicKeyInfo; the 65-byte SEC1 point follows. */
static const uint8_t p256_spki_prefix[26] = {0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48,
                                             0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48,
                                             0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00};

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

const char *boot_img_status_str(enum boot_img_status st)
{
    switch (st) {
    case BOOT_IMG_OK:
        return "ok";
    case BOOT_IMG_NO_IMAGE:
        return "no image (bad magic)";
    case BOOT_IMG_BAD_HEADER:
        return "malformed header";
    case BOOT_IMG_BAD_TLV:
        return "malformed or incomplete TLV area";
    case BOOT_IMG_BAD_HASH:
        return "hash mismatch";
    case BOOT_IMG_UNKNOWN_KEY:
        return "signed by an unknown key";
    case BOOT_IMG_BAD_SIGNATURE:
        return "bad signature";
    case BOOT_IMG_UNSIGNED:
        return "image is not signed";
    case BOOT_IMG_FLASH_ERROR:
        return "flash read error";
    }
    return "unknown error";
}

/* One DER INTEGER (positive, at most 32 significant bytes) into out[32], left padded. */
static int der_int(const uint8_t **pp, size_t *left, uint8_t out[32])
{
    const uint8_t *p = *pp;
    if (*left < 2 || p[0] != 0x02)
        return -1;
    size_t n = p[1];
    if (n == 0 || n > 33 || n > *left - 2)
        return -1;
    const uint8_t *v = p + 2;
    if (v[0] & 0x80)
        return -1; /* negative */
    if (n > 1 && v[0] == 0 && !(v[1] & 0x80))
        return -1; /* not minimal */
    if (n == 33) {
        if (v[0] != 0)
            return -1;
        v++;
        n--;
    }
    memset(out, 0, 32);
    memcpy(out + (32 - n), v, n);
    *pp = p + 2 + p[1];
    *left -= 2u + p[1];
    return 0;
}

int boot_ecdsa_der_to_raw(const uint8_t *der, size_t len, uint8_t raw[64])
{
    memset(raw, 0, 64);
    if (der == NULL || len < 2 || der[0] != 0x30 || der[1] > 0x7f || der[1] != len - 2)
        return -1;
    const uint8_t *p = der + 2;
    size_t left = len - 2;
    if (der_int(&p, &left, raw) != 0 || der_int(&p, &left, raw + 32) != 0 || left != 0) {
        memset(raw, 0, 64);
        return -1;
    }
    return 0;
}

struct parsed_hdr {
    uint32_t hdr_size, prot_size, img_size, flags;
    struct boot_image_version ver;
};

static enum boot_img_status read_header(const struct boot_flash *flash, uint32_t off,
                                        uint32_t slot_size, struct parsed_hdr *h)
{
    uint8_t b[HDR_LEN];
    memset(h, 0, sizeof(*h));
    if (slot_size < HDR_LEN)
        return BOOT_IMG_BAD_HEADER;
    if (flash->read(flash->ctx, off, b, HDR_LEN) != 0)
        return BOOT_IMG_FLASH_ERROR;
    if (get32(b) != BOOT_IMAGE_MAGIC)
        return BOOT_IMG_NO_IMAGE;
    h->hdr_size = get16(b + 8);
    h->prot_size = get16(b + 10);
    h->img_size = get32(b + 12);
    h->flags = get32(b + 16);
    h->ver.major = b[20];
    h->ver.minor = b[21];
    h->ver.revision = get16(b + 22);
    h->ver.build = get32(b + 24);
    /* No flags are supported (encrypted, RAM-load, non-bootable images are refused). */
    if (h->flags != 0 || h->hdr_size < HDR_LEN || h->hdr_size > slot_size)
        return BOOT_IMG_BAD_HEADER;
    if (h->img_size > slot_size - h->hdr_size)
        return BOOT_IMG_BAD_HEADER;
    if (h->prot_size != 0 && (h->prot_size < 4 || h->prot_size > BOOT_TLV_AREA_MAX))
        return BOOT_IMG_BAD_HEADER;
    if (h->prot_size > slot_size - h->hdr_size - h->img_size)
        return BOOT_IMG_BAD_HEADER;
    return BOOT_IMG_OK;
}

/* Reads a TLV area (info header + entries) at off into buf; returns its total length in *len. */
static enum boot_img_status read_tlv_area(const struct boot_flash *flash, uint32_t off,
                                          uint32_t room, uint16_t magic, uint8_t *buf,
                                          uint32_t *len)
{
    *len = 0;
    if (room < 4)
        return BOOT_IMG_BAD_TLV;
    if (flash->read(flash->ctx, off, buf, 4) != 0)
        return BOOT_IMG_FLASH_ERROR;
    uint32_t tot = get16(buf + 2);
    if (get16(buf) != magic || tot < 4 || tot > BOOT_TLV_AREA_MAX || tot > room)
        return BOOT_IMG_BAD_TLV;
    if (tot > 4 && flash->read(flash->ctx, off + 4, buf + 4, tot - 4) != 0)
        return BOOT_IMG_FLASH_ERROR;
    *len = tot;
    return BOOT_IMG_OK;
}

uint32_t boot_image_extent(const struct boot_flash *flash, uint32_t off, uint32_t slot_size)
{
    struct parsed_hdr h;
    uint8_t b[4];
    if (read_header(flash, off, slot_size, &h) != BOOT_IMG_OK)
        return 0;
    uint32_t end = h.hdr_size + h.img_size + h.prot_size;
    if (slot_size - end < 4 || flash->read(flash->ctx, off + end, b, 4) != 0 ||
        get16(b) != BOOT_TLV_INFO_MAGIC || get16(b + 2) > slot_size - end)
        return 0;
    return end + get16(b + 2);
}

static enum boot_img_status hash_range(const struct boot_flash *flash, uint32_t off, uint32_t len,
                                       uint8_t out[32])
{
    crypto_sha256_ctx c;
    uint8_t chunk[CHUNK_LEN];
    enum boot_img_status st = BOOT_IMG_FLASH_ERROR;
    if (crypto_sha256_init(&c) != 0)
        return BOOT_IMG_FLASH_ERROR;
    while (len > 0) {
        uint32_t n = len < CHUNK_LEN ? len : CHUNK_LEN;
        if (flash->read(flash->ctx, off, chunk, n) != 0 || crypto_sha256_update(&c, chunk, n) != 0)
            goto out;
        off += n;
        len -= n;
    }
    if (crypto_sha256_final(&c, out) != 0)
        return BOOT_IMG_FLASH_ERROR;
    return BOOT_IMG_OK;
out:
    crypto_sha256_abort(&c);
    return st;
}

enum boot_img_status boot_verify_image(const struct boot_flash *flash, uint32_t off,
                                       uint32_t slot_size, const uint8_t *key_spki,
                                       size_t key_spki_len, struct boot_image_info *info)
{
    struct parsed_hdr h;
    uint8_t tlv[BOOT_TLV_AREA_MAX];
    uint8_t hash[32], key_hash[32], raw_sig[64];
    uint32_t tlv_len = 0, sec_cnt = 0;
    int have_hash = 0, have_key = 0, have_sig = 0, have_cnt = 0;
    enum boot_img_status st;

    memset(info, 0, sizeof(*info));
    if (key_spki == NULL || key_spki_len != BOOT_P256_SPKI_LEN ||
        memcmp(key_spki, p256_spki_prefix, sizeof(p256_spki_prefix)) != 0)
        return BOOT_IMG_UNKNOWN_KEY;
    st = read_header(flash, off, slot_size, &h);
    if (st != BOOT_IMG_OK)
        return st;
    uint32_t body_end = h.hdr_size + h.img_size;

    /* Protected TLVs: hashed with the image. */
    if (h.prot_size != 0) {
        st = read_tlv_area(flash, off + body_end, h.prot_size, BOOT_TLV_PROT_MAGIC, tlv, &tlv_len);
        if (st != BOOT_IMG_OK)
            return st;
        if (tlv_len != h.prot_size)
            return BOOT_IMG_BAD_TLV;
        for (uint32_t p = 4; p < tlv_len;) {
            if (tlv_len - p < 4)
                return BOOT_IMG_BAD_TLV;
            uint16_t type = get16(tlv + p), len = get16(tlv + p + 2);
            p += 4;
            if (len > tlv_len - p)
                return BOOT_IMG_BAD_TLV;
            if (type == BOOT_TLV_SEC_CNT) {
                if (len != 4 || have_cnt)
                    return BOOT_IMG_BAD_TLV;
                sec_cnt = get32(tlv + p);
                have_cnt = 1;
            } else if (type == BOOT_TLV_SHA256 || type == BOOT_TLV_ECDSA_SIG ||
                       type == BOOT_TLV_KEYHASH || type == BOOT_TLV_PUBKEY) {
                return BOOT_IMG_BAD_TLV; /* these belong to the unprotected area */
            }
            p += len;
        }
    }
    uint32_t signed_len = body_end + h.prot_size;
    st = hash_range(flash, off, signed_len, hash);
    if (st != BOOT_IMG_OK)
        return st;
    if (crypto_sha256(key_spki, key_spki_len, key_hash) != 0)
        return BOOT_IMG_FLASH_ERROR;

    /* Unprotected TLVs: hash, key, signature. */
    st = read_tlv_area(flash, off + signed_len, slot_size - signed_len, BOOT_TLV_INFO_MAGIC, tlv,
                       &tlv_len);
    if (st != BOOT_IMG_OK)
        return st;
    for (uint32_t p = 4; p < tlv_len;) {
        if (tlv_len - p < 4)
            return BOOT_IMG_BAD_TLV;
        uint16_t type = get16(tlv + p), len = get16(tlv + p + 2);
        p += 4;
        if (len > tlv_len - p)
            return BOOT_IMG_BAD_TLV;
        const uint8_t *v = tlv + p;
        switch (type) {
        case BOOT_TLV_SHA256:
            if (len != 32 || have_hash)
                return BOOT_IMG_BAD_TLV;
            if (crypto_memcmp_ct(v, hash, 32) != 0)
                return BOOT_IMG_BAD_HASH;
            have_hash = 1;
            break;
        case BOOT_TLV_KEYHASH:
        case BOOT_TLV_PUBKEY:
            if (have_key)
                return BOOT_IMG_BAD_TLV;
            if (type == BOOT_TLV_KEYHASH
                    ? (len != 32 || crypto_memcmp_ct(v, key_hash, 32) != 0)
                    : (len != key_spki_len || crypto_memcmp_ct(v, key_spki, key_spki_len) != 0))
                return BOOT_IMG_UNKNOWN_KEY;
            have_key = 1;
            break;
        case BOOT_TLV_ECDSA_SIG:
            /* Checked only after hash and key: MCUboot also requires them first. */
            if (have_sig || !have_hash || !have_key)
                return BOOT_IMG_BAD_TLV;
            if (boot_ecdsa_der_to_raw(v, len, raw_sig) != 0)
                return BOOT_IMG_BAD_SIGNATURE;
            if (crypto_p256_verify(key_spki + sizeof(p256_spki_prefix), hash, raw_sig) != 0)
                return BOOT_IMG_BAD_SIGNATURE;
            have_sig = 1;
            break;
        case BOOT_TLV_SEC_CNT:
            return BOOT_IMG_BAD_TLV; /* an unsigned counter would let anyone roll back */
        default:
            break;
        }
        p += len;
    }
    if (!have_hash)
        return BOOT_IMG_BAD_TLV;
    if (!have_key || !have_sig)
        return BOOT_IMG_UNSIGNED;

    info->version = h.ver;
    info->hdr_size = h.hdr_size;
    info->img_size = h.img_size;
    info->total_size = signed_len + tlv_len;
    info->sec_cnt = sec_cnt;
    info->has_sec_cnt = (uint8_t)have_cnt;
    memcpy(info->hash, hash, 32);
    memcpy(info->signer_id, key_hash, 32);
    return BOOT_IMG_OK;
}
