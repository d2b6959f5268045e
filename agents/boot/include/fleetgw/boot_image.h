/* MCUboot image verification for the bootloader: the narrow seam boot_verify_image(), backed
 * by proto/'s image_verify() (fleetgw/image.h: header, SHA-256 over header + body + protected
 * TLVs, KEYHASH/PUBKEY against the built-in key, ECDSA P-256 signature) on the memory-mapped
 * slot. The bootloader applies its own anti-rollback policy on the result. */
#ifndef FLEETGW_BOOT_IMAGE_H
#define FLEETGW_BOOT_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "fleetgw/boot_flash.h"

#define BOOT_IMAGE_MAGIC    0x96f3b83du
#define BOOT_TLV_INFO_MAGIC 0x6907u
#define BOOT_TLV_PROT_MAGIC 0x6908u
#define BOOT_TLV_KEYHASH    0x01u
#define BOOT_TLV_PUBKEY     0x02u
#define BOOT_TLV_SHA256     0x10u
#define BOOT_TLV_ECDSA_SIG  0x22u
#define BOOT_TLV_SEC_CNT    0x50u
#define BOOT_TLV_AREA_MAX   1024u /* hard cap on each TLV area */
#define BOOT_P256_SPKI_LEN  91u   /* DER SubjectPublicKeyInfo of a P-256 key */

#if defined(__GNUC__)
#define BOOT_MUST_CHECK __attribute__((warn_unused_result))
#else
#define BOOT_MUST_CHECK
#endif

enum boot_img_status {
    BOOT_IMG_OK = 0,
    BOOT_IMG_NO_IMAGE,      /* no image magic: erased or foreign data */
    BOOT_IMG_BAD_HEADER,    /* sizes or flags out of bounds */
    BOOT_IMG_BAD_TLV,       /* TLV area malformed or a required TLV missing */
    BOOT_IMG_BAD_HASH,      /* SHA-256 TLV does not match the image */
    BOOT_IMG_UNKNOWN_KEY,   /* signed by a key other than the built-in one */
    BOOT_IMG_BAD_SIGNATURE, /* ECDSA signature does not verify */
    BOOT_IMG_UNSIGNED,      /* no key or no signature TLV */
    BOOT_IMG_FLASH_ERROR,   /* the flash could not be read */
    BOOT_IMG_CRYPTO_ERROR,  /* crypto back-end failure */
};

struct boot_image_version {
    uint8_t major;
    uint8_t minor;
    uint16_t revision;
    uint32_t build;
};

struct boot_image_info {
    struct boot_image_version version;
    uint32_t hdr_size;
    uint32_t img_size;
    uint32_t total_size; /* header + body + both TLV areas */
    uint32_t sec_cnt;    /* security counter (0 when the TLV is absent) */
    uint8_t has_sec_cnt;
    uint8_t hash[32];      /* measurement: the image hash (SHA-256 TLV, verified) */
    uint8_t signer_id[32]; /* SHA-256 of the signing key (DER SubjectPublicKeyInfo) */
};

/* Verifies the image at flash offset off within a slot of slot_size bytes against the P-256
 * key key_spki (DER SubjectPublicKeyInfo, BOOT_P256_SPKI_LEN bytes). info is cleared first
 * and filled only on BOOT_IMG_OK. */
enum boot_img_status boot_verify_image(const struct boot_flash *flash, uint32_t off,
                                       uint32_t slot_size, const uint8_t *key_spki,
                                       size_t key_spki_len,
                                       struct boot_image_info *info) BOOT_MUST_CHECK;

/* Reads only the header and TLV sizes: the number of bytes the image occupies (0 when there
 * is no plausible image). Used to size a swap; never a reason to trust the image. */
uint32_t boot_image_extent(const struct boot_flash *flash, uint32_t off, uint32_t slot_size);

const char *boot_img_status_str(enum boot_img_status st);

#endif
