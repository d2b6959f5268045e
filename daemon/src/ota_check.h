/* The staging checks of the OTA image store (ota_check.c): what every image passes before
 * anything is stored, and again (in part) before each offer. MCUboot format, signature by
 * a key of the signer set (attestation.signer_keys), that signer allowed for the class,
 * security counter not below the class's floor, version not older than the class's current
 * one unless recovery, device class known (the image's UUID_CID/UUID_VID TLVs where
 * present, else the declared class; both present and different = refused), image fits the
 * class's slot. A refusal names its reason (enum ota_refusal, a REASON= token, and a
 * sentence). No file is touched. */
#ifndef FLEETGWD_OTA_CHECK_H
#define FLEETGWD_OTA_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <fleetgw/image.h>

#include "ota_classes.h"

#define OTA_SOURCE_MAX 127

/* Why an image was refused (ota_refusal_str gives the REASON= token). */
enum ota_refusal {
    OTA_OK = 0,
    OTA_R_FORMAT,             /* "format": not a well-formed MCUboot image */
    OTA_R_TAMPERED,           /* "tampered": hash TLV or signature does not match the bytes */
    OTA_R_UNKNOWN_SIGNER,     /* "unknown_signer": no key of the signer set verifies it */
    OTA_R_SIGNER_NOT_ALLOWED, /* "signer_not_allowed": signer not in the class's list */
    OTA_R_COUNTER_LOW,        /* "security_counter": missing or below the class's floor */
    OTA_R_DOWNGRADE,          /* "downgrade": older than the class's current version */
    OTA_R_UNKNOWN_CLASS,      /* "unknown_class": no class, or the declared class is unknown */
    OTA_R_CLASS_MISMATCH,     /* "class_mismatch": image TLVs name another class than declared */
    OTA_R_TOO_BIG,            /* "too_big": image (with trailer room) larger than the slot */
    OTA_R_QUOTA,              /* "quota": the store would exceed ota.store_quota_bytes */
    OTA_R_DIGEST_MISMATCH,    /* "digest_mismatch": not the image the job/operator named */
    OTA_R_IO,                 /* "io": a file could not be read or written (errno in text) */
    OTA_R__COUNT
};
const char *ota_refusal_str(enum ota_refusal r);

/* What the caller knows of the class's state (persisted by the campaign engine). */
struct ota_class_state {
    uint32_t floor;   /* raised floor (0 = none); the check uses max(this, class minimum) */
    bool has_current; /* a version is known to be the class's current one */
    struct image_version current;
};

struct ota_check_opts {
    const struct ota_classes *classes;
    const struct image_key *signers; /* attestation.signer_keys */
    size_t n_signers;
    const char *declared_class; /* job's or operator's class, or NULL */
    bool recovery;              /* allows an older (still allowed, still >= floor) version */
    /* The class's state; NULL = floor from the class file, no current version. */
    int (*class_state)(void *ctx, const char *cls, struct ota_class_state *ret);
    void *ctx;
    const uint8_t *expect_digest; /* the job's SHA-256, or NULL */
    int64_t expect_size;          /* the job's size, or -1 */
};

/* Metadata of a stored (or just checked) image. digest is the MCUboot image hash (SHA-256
 * over header, body and protected TLV area): what the SHA256 TLV holds, what the node's
 * bootloader measures and its attestation token reports, and the store's file name.
 * file_sha256 is the SHA-256 of the whole stored file (signature and padding included), so
 * that a change to any byte of it is found by ota_store_verify. */
struct ota_image_meta {
    uint8_t digest[OTA_DIGEST_LEN];
    uint8_t file_sha256[OTA_DIGEST_LEN];
    char digest_hex[OTA_DIGEST_HEX + 1];
    uint32_t size;
    struct image_version version;
    bool has_counter;
    uint32_t security_counter;
    char class_name[OTA_CLASS_NAME_MAX + 1];
    uint8_t signer_id[OTA_DIGEST_LEN];
    int64_t staged;                  /* epoch s */
    char source[OTA_SOURCE_MAX + 1]; /* "fleetgwctl", "job:<id>" */
    bool released;
};

/* Every check above on img (len bytes); no file is touched. OTA_OK with meta filled (staged
 * and source left to the caller), or the refusal with why (a sentence) filled. */
enum ota_refusal ota_image_check(const uint8_t *img, size_t len, const struct ota_check_opts *o,
                                 struct ota_image_meta *meta, char *why, size_t whylen);

/* For the store's other files (ota_meta.c, ota_store.c). ota_refuse: writes the sentence
 * (printf format) into why and returns r. ota_version_format: "major.minor.revision+build".
 * ota_check_signature: the signature part of the checks, image_verify() with the signer
 * set, its status as a refusal (OTA_OK with res filled). */
enum ota_refusal ota_refuse(enum ota_refusal r, char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void ota_version_format(const struct image_version *v, char *out, size_t cap);
enum ota_refusal ota_check_signature(const uint8_t *img, size_t len, const struct image_key *keys,
                                     size_t n_keys, struct image_result *res, char *why,
                                     size_t whylen);

#endif
