/* The gateway's OTA image store (issue 13): device classes, the checks every image passes
 * before anything is stored, and the content-addressed store itself. No sockets, no event
 * loop, no SQLite: files under ota.store_dir and the caller's policy.
 *
 * Owns:
 *  - the device classes (ota.classes_file, JSON, see ota_classes_parse);
 *  - the staging checks (ota_image_check): MCUboot format, signature by a key of the signer
 *    set (attestation.signer_keys), that signer allowed for the class, security counter not
 *    below the class's floor, version not older than the class's current one unless
 *    recovery, device class known (the image's UUID_CID/UUID_VID TLVs where present, else the
 *    declared class; both present and different = refused), image fits the class's slot;
 *  - the store: <dir>/<sha256-hex>.img and <sha256-hex>.json (metadata), written as temp
 *    file + fsync + rename + directory fsync, within a byte quota; <dir>/released/ holds a
 *    hard link of every image a completed campaign released (an attestation image
 *    directory: those images' reference values join the policy);
 *  - reading chunks for hand-over (pread on a cached descriptor, memory independent of the
 *    number of nodes) and re-verifying a stored image before an offer.
 * A refusal names its reason (enum ota_refusal, a REASON= token, and a sentence) and leaves
 * the store exactly as it was. */
#ifndef FLEETGWD_OTA_STORE_H
#define FLEETGWD_OTA_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <fleetgw/image.h>

#define OTA_CLASS_NAME_MAX 63
#define OTA_CLASSES_MAX    64
#define OTA_CLASS_SIGNERS  16
#define OTA_DIGEST_LEN     32
#define OTA_DIGEST_HEX     64
#define OTA_SOURCE_MAX     127

/* One device class of ota.classes_file:
 *   {"classes": [{"name": "sensor-m3",
 *                 "cid": "<uuid, 8-4-4-4-12 hex>",        optional
 *                 "vid": "<uuid>",                          optional
 *                 "slot_size": 262144,                      bytes, required
 *                 "signers": ["<64 hex: SHA-256 of the signer's SPKI>", ...],  1..16
 *                 "min_security_counter": 0,                optional floor, default 0
 *                 "flash_align": 8,                         optional, 1/2/4/8/16/32, default 8
 *                 "max_sectors": 128}]}                     optional, 1..1024, default 128
 * Class names match [A-Za-z0-9._-]{1,63}; no two classes share a name or a cid; no key
 * beyond these. flash_align and max_sectors size the MCUboot image trailer the slot must
 * keep free (image_trailer_size(flash_align, 0, max_sectors): 3120 bytes with the defaults,
 * which are conservative: imgtool's own default alignment is 1). */
struct ota_class {
    char name[OTA_CLASS_NAME_MAX + 1];
    bool has_cid, has_vid;
    uint8_t cid[IMAGE_UUID_LEN];
    uint8_t vid[IMAGE_UUID_LEN];
    uint32_t slot_size;
    uint8_t signers[OTA_CLASS_SIGNERS][OTA_DIGEST_LEN]; /* allowed signer ids */
    size_t n_signers;
    uint32_t min_security_counter; /* the configured floor (the state may raise it) */
    uint32_t flash_align;          /* the slot's flash write size */
    uint32_t max_sectors;          /* the slot's sector count bound of the trailer */
    uint32_t trailer_size;         /* image_trailer_size(flash_align, 0, max_sectors) */
};

struct ota_classes {
    struct ota_class cls[OTA_CLASSES_MAX];
    size_t n;
};

/* Parses a classes file's text. 0, or -EINVAL with err naming the key/index and why. */
int ota_classes_parse(const char *text, size_t len, struct ota_classes *out, char *err,
                      size_t errlen) __attribute__((warn_unused_result));
int ota_classes_load(const char *path, struct ota_classes *out, char *err, size_t errlen)
    __attribute__((warn_unused_result));
const struct ota_class *ota_class_find(const struct ota_classes *c, const char *name);
const struct ota_class *ota_class_by_cid(const struct ota_classes *c,
                                         const uint8_t cid[IMAGE_UUID_LEN]);

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

struct ota_store;

/* Opens (creating with mode 0750 if needed) the store directory. Leftover temp files of an
 * interrupted write are removed. 0 or negative errno. */
int ota_store_open(const char *dir, uint64_t quota_bytes, struct ota_store **ret)
    __attribute__((warn_unused_result));
void ota_store_close(struct ota_store *s);

/* Checks img and stores it (meta->staged = now, meta->source = source). Storing an image
 * already stored is OTA_OK (idempotent) with its metadata. */
enum ota_refusal ota_store_put(struct ota_store *s, const uint8_t *img, size_t len,
                               const struct ota_check_opts *o, const char *source, int64_t now,
                               struct ota_image_meta *meta, char *why, size_t whylen);

/* 0 with meta, -ENOENT, or negative errno. */
int ota_store_get(struct ota_store *s, const uint8_t digest[OTA_DIGEST_LEN],
                  struct ota_image_meta *meta) __attribute__((warn_unused_result));
/* A digest from 64 hex characters (or a unique prefix of at least 8, either case): 0,
 * -ENOENT (no stored image), -EINVAL (not 8..64 hex digits), -ENOTUNIQ (a prefix of more
 * than one stored image). */
int ota_store_lookup(struct ota_store *s, const char *hex, uint8_t digest[OTA_DIGEST_LEN])
    __attribute__((warn_unused_result));
/* Calls fn for every stored image in digest order; stops when fn returns non-zero. */
int ota_store_foreach(struct ota_store *s, int (*fn)(const struct ota_image_meta *m, void *u),
                      void *u) __attribute__((warn_unused_result));
/* Removes an image (and its released link): 0 or -ENOENT. The caller refuses first when a
 * campaign that is not final uses it. */
int ota_store_remove(struct ota_store *s, const uint8_t digest[OTA_DIGEST_LEN])
    __attribute__((warn_unused_result));
uint64_t ota_store_used(const struct ota_store *s);

/* Re-verifies a stored image before an offer: the file's SHA-256 is the one recorded at
 * staging, the image still verifies (hash TLV, signature) with a key of the signer set, its
 * image hash is its name, and that key is allowed for its class. OTA_OK, or
 * OTA_R_TAMPERED / OTA_R_UNKNOWN_SIGNER / OTA_R_SIGNER_NOT_ALLOWED / OTA_R_IO, or
 * OTA_R_UNKNOWN_CLASS when its class is no longer configured. */
enum ota_refusal ota_store_verify(struct ota_store *s, const uint8_t digest[OTA_DIGEST_LEN],
                                  const struct ota_check_opts *o, char *why, size_t whylen);

/* Reads up to len bytes at off of a stored image into buf: bytes read (0 at the end), or
 * negative errno. Descriptors are cached (a few at most), so no image is held in memory. */
ssize_t ota_store_read(struct ota_store *s, const uint8_t digest[OTA_DIGEST_LEN], uint32_t off,
                       uint8_t *buf, size_t len);

/* Marks an image released (metadata + hard link in <dir>/released/). 0 or negative errno. */
int ota_store_release(struct ota_store *s, const uint8_t digest[OTA_DIGEST_LEN])
    __attribute__((warn_unused_result));
/* "<dir>/released" (an image directory for attest_policy_build). */
const char *ota_store_released_dir(const struct ota_store *s);

#endif
