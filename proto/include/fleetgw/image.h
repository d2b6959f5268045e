/* MCUboot image format: parse, verify (SHA-256 + ECDSA P-256) and build/sign images that
 * MCUboot and its imgtool accept. All integers in the image are little endian.
 *
 *   [header 32 bytes | header padding up to hdr_size][body img_size bytes]
 *   [protected TLV area: info(0x6908, tot) TLV...]   (only when protect_tlv_size != 0)
 *   [TLV area: info(0x6907, tot) TLV...]
 *   [optional slot padding: 0xff..., image trailer magic at the very end (imgtool --pad)]
 *
 * The image hash is SHA-256 over header, body and protected TLV area. See
 * docs/image-format.md for the order of the checks and the maxima. */
#ifndef FLEETGW_IMAGE_H
#define FLEETGW_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "fleetgw/crypto.h"

#define IMAGE_MAGIC               0x96f3b83du
#define IMAGE_HEADER_LEN          32u
#define IMAGE_TLV_INFO_MAGIC      0x6907u
#define IMAGE_TLV_PROT_INFO_MAGIC 0x6908u
#define IMAGE_TLV_INFO_LEN        4u
#define IMAGE_TLV_HDR_LEN         4u
#define IMAGE_UUID_LEN            16u
#define IMAGE_TRAILER_MAGIC_LEN   16u

/* Header flags. */
#define IMAGE_F_RAM_LOAD  0x00000020u
#define IMAGE_F_ROM_FIXED 0x00000100u
/* Flags we accept; anything else (encrypted, compressed, non-bootable, PIC) is refused. */
#define IMAGE_F_SUPPORTED (IMAGE_F_RAM_LOAD | IMAGE_F_ROM_FIXED)

/* TLV types we read or write. */
enum image_tlv_type {
    IMAGE_TLV_KEYHASH = 0x01,
    IMAGE_TLV_PUBKEY = 0x02,
    IMAGE_TLV_SHA256 = 0x10,
    IMAGE_TLV_ECDSA_SIG = 0x22,
    IMAGE_TLV_DEPENDENCY = 0x40,
    IMAGE_TLV_SEC_CNT = 0x50,
    IMAGE_TLV_BOOT_RECORD = 0x60,
    IMAGE_TLV_UUID_VID = 0x74,
    IMAGE_TLV_UUID_CID = 0x75,
};

/* Hard maxima. */
#define IMAGE_MAX_LEN             0x1000000u /* whole input, slot padding included */
#define IMAGE_MAX_TLVS            32u        /* per area */
#define IMAGE_MAX_DEPS            4u         /* DEPENDENCY TLVs */
#define IMAGE_MAX_KEYS            16u        /* trusted keys per verification */
#define IMAGE_MAX_BOOT_RECORD     512u       /* BOOT_RECORD payload (CBOR, not interpreted here) */
#define IMAGE_MAX_SIG_DER         72u
#define IMAGE_DEPENDENCY_LEN      12u
#define IMAGE_PUBKEY_SPKI_LEN     91u /* DER SubjectPublicKeyInfo of a P-256 key */
#define IMAGE_DEFAULT_MAX_ALIGN   8u
#define IMAGE_DEFAULT_MAX_SECTORS 128u
#define IMAGE_MAX_SECTORS_LIMIT   1024u

enum image_status {
    IMAGE_OK = 0,
    IMAGE_ERR_ARG,             /* NULL pointer or invalid option */
    IMAGE_ERR_TOO_LARGE,       /* input or a field above a hard maximum */
    IMAGE_ERR_TRUNCATED,       /* input shorter than the header says */
    IMAGE_ERR_BAD_MAGIC,       /* header magic is not 0x96f3b83d */
    IMAGE_ERR_HEADER,          /* hdr_size < 32 or sizes overflow */
    IMAGE_ERR_FLAGS,           /* unsupported flag (encrypted, compressed, ...) */
    IMAGE_ERR_PROT_TLV_MAGIC,  /* protect_tlv_size != 0 but no 0x6908 info there */
    IMAGE_ERR_PROT_TLV_SIZE,   /* protected info total != protect_tlv_size */
    IMAGE_ERR_TLV_MAGIC,       /* no 0x6907 info after the protected area */
    IMAGE_ERR_TLV_OVERRUN,     /* a TLV header or value runs past its area */
    IMAGE_ERR_TLV_COUNT,       /* more than IMAGE_MAX_TLVS in an area */
    IMAGE_ERR_TLV_LENGTH,      /* a known TLV with the wrong length */
    IMAGE_ERR_TLV_DUPLICATE,   /* a TLV that may appear once appears twice */
    IMAGE_ERR_TLV_PLACEMENT,   /* a TLV in the wrong area, or not allowed unprotected */
    IMAGE_ERR_SIZE_MISMATCH,   /* bytes after the TLV area are not slot padding */
    IMAGE_ERR_NO_HASH,         /* no SHA256 TLV */
    IMAGE_ERR_HASH_MISMATCH,   /* SHA256 TLV differs from the computed hash */
    IMAGE_ERR_NO_SIGNATURE,    /* no ECDSA signature TLV */
    IMAGE_ERR_NO_KEY_ID,       /* signature without KEYHASH or PUBKEY */
    IMAGE_ERR_BAD_PUBKEY,      /* PUBKEY TLV is not a P-256 SubjectPublicKeyInfo */
    IMAGE_ERR_UNKNOWN_KEY,     /* KEYHASH/PUBKEY names no trusted key */
    IMAGE_ERR_SIG_ENCODING,    /* signature is not strict DER ECDSA-Sig-Value */
    IMAGE_ERR_BAD_SIGNATURE,   /* signature does not verify */
    IMAGE_ERR_COUNTER_MISSING, /* caller gave a minimum counter, image has no SEC_CNT */
    IMAGE_ERR_COUNTER_LOW,     /* SEC_CNT below the caller's minimum */
    IMAGE_ERR_CLASS_MISSING,   /* caller gave a device class, image has no UUID_CID */
    IMAGE_ERR_CLASS_MISMATCH,  /* UUID_CID differs from the caller's device class */
    IMAGE_ERR_VENDOR_MISSING,  /* caller gave a vendor, image has no UUID_VID */
    IMAGE_ERR_VENDOR_MISMATCH, /* UUID_VID differs from the caller's vendor */
    IMAGE_ERR_CRYPTO,          /* crypto back-end failure */
    IMAGE_ERR_BUFFER,          /* (build) output buffer too small */
    IMAGE_ERR_SLOT_SIZE,       /* (build) image + trailer do not fit the slot */
    IMAGE_ERR_HEADER_NOT_ZERO, /* (build) no pad_header and payload does not start zeroed */
    IMAGE_ERR_SIGNER,          /* (build) the signing callback failed */
};

#if defined(__GNUC__)
#define IMAGE_MUST_CHECK __attribute__((warn_unused_result))
#else
#define IMAGE_MUST_CHECK
#endif

struct image_version {
    uint8_t major;
    uint8_t minor;
    uint16_t revision;
    uint32_t build;
};

struct image_dependency {
    uint8_t image_id;
    struct image_version min_version;
};

/* Everything image_parse() learns without cryptography. Offsets are into the input. */
struct image_info {
    uint32_t load_addr;
    uint16_t hdr_size;
    uint16_t protect_tlv_size;
    uint32_t img_size;
    uint32_t flags;
    struct image_version version;
    size_t hashed_len;  /* header + body + protected TLV area */
    size_t tlv_end;     /* end of the (unprotected) TLV area */
    size_t padding_len; /* bytes after tlv_end (imgtool --pad), 0 if none */
    unsigned n_prot_tlvs;
    unsigned n_tlvs;
    int has_sec_cnt;
    uint32_t sec_cnt;
    int has_vid;
    uint8_t vid[IMAGE_UUID_LEN];
    int has_cid;
    uint8_t cid[IMAGE_UUID_LEN];
    unsigned n_deps;
    struct image_dependency deps[IMAGE_MAX_DEPS];
    size_t boot_record_off; /* 0 when absent */
    size_t boot_record_len;
    int has_sha256;
    uint8_t sha256[CRYPTO_SHA256_LEN]; /* as stored in the SHA256 TLV */
    int has_keyhash;
    uint8_t keyhash[CRYPTO_SHA256_LEN]; /* as stored in the KEYHASH TLV */
    size_t pubkey_off;                  /* PUBKEY TLV value, 0 when absent */
    size_t pubkey_len;
    size_t sig_off; /* ECDSA_SIG TLV value, 0 when absent */
    size_t sig_len;
};

/* A trusted signer: the uncompressed P-256 point (0x04 || X || Y). */
struct image_key {
    uint8_t pub[CRYPTO_P256_PUB_LEN];
};

struct image_verify_opts {
    const struct image_key *keys; /* trusted keys, n_keys in 1..IMAGE_MAX_KEYS */
    size_t n_keys;
    int check_min_counter; /* when set: SEC_CNT must exist and be >= min_counter */
    uint32_t min_counter;
    const uint8_t *expect_cid; /* when not NULL: UUID_CID must exist and equal it */
    const uint8_t *expect_vid; /* when not NULL: UUID_VID must exist and equal it */
};

struct image_result {
    struct image_info info;
    uint8_t digest[CRYPTO_SHA256_LEN];         /* computed image hash */
    uint8_t signer_keyhash[CRYPTO_SHA256_LEN]; /* SHA-256 of the signer's SPKI DER */
    size_t key_index;                          /* which of opts->keys verified */
};

/* Structure only: header, both TLV areas, padding. No hash, no signature. out is cleared
 * first and only meaningful on IMAGE_OK. */
enum image_status image_parse(const uint8_t *img, size_t len,
                              struct image_info *out) IMAGE_MUST_CHECK;

/* Full verification: image_parse(), then hash, signature against the trusted keys, then
 * the caller's policy (counter, device class, vendor). out is cleared first; on failure
 * it holds what was learned so far (never trust it unless IMAGE_OK). */
enum image_status image_verify(const uint8_t *img, size_t len, const struct image_verify_opts *opts,
                               struct image_result *out) IMAGE_MUST_CHECK;

/* SHA-256 of a key's SubjectPublicKeyInfo DER (what the KEYHASH TLV holds). */
enum image_status image_key_hash(const uint8_t pub[CRYPTO_P256_PUB_LEN],
                                 uint8_t out[CRYPTO_SHA256_LEN]) IMAGE_MUST_CHECK;

const char *image_status_str(enum image_status st);

/* Building and signing, with imgtool's semantics. */
enum image_key_format { IMAGE_KEY_HASH = 0, IMAGE_KEY_FULL = 1 };

struct image_sign_opts {
    const uint8_t *payload;
    size_t payload_len;
    struct image_version version;
    uint16_t hdr_size; /* >= 32 */
    int pad_header;    /* prepend hdr_size bytes of 0xff (imgtool --pad-header); otherwise
                          the payload's first hdr_size bytes must be zero and hold the header */
    uint32_t load_addr;
    int ram_load;       /* imgtool --load-addr: sets IMAGE_F_RAM_LOAD */
    int rom_fixed;      /* imgtool --rom-fixed: sets IMAGE_F_ROM_FIXED */
    uint32_t slot_size; /* image + trailer must fit (0: no check, no --pad) */
    int has_sec_cnt;
    uint32_t sec_cnt;
    uint32_t align;       /* flash write size: 1, 2, 4, 8, 16 or 32 */
    uint32_t max_align;   /* 0: max(8, align) */
    uint32_t max_sectors; /* 0: 128 */
    int pad;              /* pad to slot_size with 0xff and the trailer magic at the end */
    int confirm;          /* with pad: image_ok = 0x01 (imgtool --confirm) */
    const uint8_t *vid;   /* 16 bytes or NULL */
    const uint8_t *cid;   /* 16 bytes or NULL */
    const struct image_dependency *deps;
    size_t n_deps;
    const uint8_t *boot_record; /* raw BOOT_RECORD value or NULL */
    size_t boot_record_len;
    uint8_t pub[CRYPTO_P256_PUB_LEN]; /* the signer's public point */
    enum image_key_format key_format;
    crypto_sign_fn sign; /* raw r||s over the image hash */
    void *sign_ctx;
};

/* Builds and signs the image into out[cap]; *out_len is its length (slot_size with pad).
 * digest_out (optional) receives the image hash. */
enum image_status image_sign(const struct image_sign_opts *opts, uint8_t *out, size_t cap,
                             size_t *out_len,
                             uint8_t digest_out[CRYPTO_SHA256_LEN]) IMAGE_MUST_CHECK;

/* Length of the image trailer imgtool reserves at the end of a slot. 0 on bad options. */
size_t image_trailer_size(uint32_t align, uint32_t max_align, uint32_t max_sectors);

#endif
