/* boot_verify_image(): proto's MCUboot verifier (image_verify) on the memory-mapped slot,
 * with the bootloader's built-in key. The image length handed to it comes from the header and
 * TLV info only (bounded by the slot): bytes after the image in a slot are leftovers of swaps,
 * not part of any image. */
#include "fleetgw/boot_image.h"

#include <string.h>

#include "fleetgw/bytes.h"
#include "fleetgw/crypto.h"
#include "fleetgw/der.h"
#include "fleetgw/image.h"

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
    case BOOT_IMG_CRYPTO_ERROR:
        return "crypto failure";
    }
    return "unknown error";
}

uint32_t boot_image_extent(const struct boot_flash *flash, uint32_t off, uint32_t slot_size)
{
    uint8_t h[IMAGE_HEADER_LEN], b[IMAGE_TLV_INFO_LEN];
    if (slot_size < IMAGE_HEADER_LEN || flash->read(flash->ctx, off, h, IMAGE_HEADER_LEN) != 0 ||
        bytes_le32(h) != IMAGE_MAGIC)
        return 0;
    uint32_t hdr = bytes_le16(h + 8), prot = bytes_le16(h + 10), img = bytes_le32(h + 12);
    if (hdr > slot_size || img > slot_size - hdr || prot > slot_size - hdr - img)
        return 0;
    uint32_t end = hdr + img + prot;
    if (slot_size - end < IMAGE_TLV_INFO_LEN ||
        flash->read(flash->ctx, off + end, b, IMAGE_TLV_INFO_LEN) != 0 ||
        bytes_le16(b) != IMAGE_TLV_INFO_MAGIC || bytes_le16(b + 2) > slot_size - end)
        return 0;
    return end + bytes_le16(b + 2);
}

static enum boot_img_status map_status(enum image_status st)
{
    switch (st) {
    case IMAGE_OK:
        return BOOT_IMG_OK;
    case IMAGE_ERR_BAD_MAGIC:
        return BOOT_IMG_NO_IMAGE;
    case IMAGE_ERR_TOO_LARGE:
    case IMAGE_ERR_TRUNCATED:
    case IMAGE_ERR_HEADER:
    case IMAGE_ERR_FLAGS:
        return BOOT_IMG_BAD_HEADER;
    case IMAGE_ERR_NO_HASH:
    case IMAGE_ERR_HASH_MISMATCH:
        return BOOT_IMG_BAD_HASH;
    case IMAGE_ERR_NO_SIGNATURE:
    case IMAGE_ERR_NO_KEY_ID:
        return BOOT_IMG_UNSIGNED;
    case IMAGE_ERR_BAD_PUBKEY:
    case IMAGE_ERR_UNKNOWN_KEY:
        return BOOT_IMG_UNKNOWN_KEY;
    case IMAGE_ERR_SIG_ENCODING:
    case IMAGE_ERR_BAD_SIGNATURE:
        return BOOT_IMG_BAD_SIGNATURE;
    case IMAGE_ERR_CRYPTO:
        return BOOT_IMG_CRYPTO_ERROR;
    default:
        return BOOT_IMG_BAD_TLV;
    }
}

enum boot_img_status boot_verify_image(const struct boot_flash *flash, uint32_t off,
                                       uint32_t slot_size, const uint8_t *key_spki,
                                       size_t key_spki_len, struct boot_image_info *info)
{
    struct image_key key;
    struct image_result res;
    enum boot_img_status st;

    memset(info, 0, sizeof(*info));
    if (key_spki == NULL || key_spki_len != BOOT_P256_SPKI_LEN ||
        der_p256_spki_parse(key_spki, key_spki_len, key.pub) != DER_OK)
        return BOOT_IMG_UNKNOWN_KEY;
    uint32_t len = boot_image_extent(flash, off, slot_size);
    if (len == 0)
        len = slot_size < IMAGE_HEADER_LEN ? slot_size : IMAGE_HEADER_LEN; /* for the reason */
    const uint8_t *img = flash->map != NULL ? flash->map(flash->ctx, off, len) : NULL;
    if (img == NULL)
        return BOOT_IMG_FLASH_ERROR;
    struct image_verify_opts opts = {.keys = &key, .n_keys = 1};
    st = map_status(image_verify(img, len, &opts, &res));
    if (st != BOOT_IMG_OK)
        return st;
    info->version.major = res.info.version.major;
    info->version.minor = res.info.version.minor;
    info->version.revision = res.info.version.revision;
    info->version.build = res.info.version.build;
    info->hdr_size = res.info.hdr_size;
    info->img_size = res.info.img_size;
    info->total_size = len;
    info->sec_cnt = res.info.has_sec_cnt ? res.info.sec_cnt : 0;
    info->has_sec_cnt = res.info.has_sec_cnt ? 1 : 0;
    memcpy(info->hash, res.digest, sizeof(info->hash));
    memcpy(info->signer_id, res.signer_keyhash, sizeof(info->signer_id));
    return BOOT_IMG_OK;
}
