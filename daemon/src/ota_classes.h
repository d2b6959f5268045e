/* The device classes of the OTA image store (ota_classes.c): ota.classes_file parsed and
 * checked, and the lookups by name and by UUID_CID. A class names its slot (size, flash
 * alignment, trailer) and the signers allowed for it. Library code: returns errors, never
 * logs. */
#ifndef FLEETGWD_OTA_CLASSES_H
#define FLEETGWD_OTA_CLASSES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <fleetgw/image.h>
#include <json-c/json.h>

#define OTA_CLASS_NAME_MAX 63
#define OTA_CLASSES_MAX    64
#define OTA_CLASS_SIGNERS  16
#define OTA_DIGEST_LEN     32 /* SHA-256: image digests, signer ids */
#define OTA_DIGEST_HEX     64

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
    uint32_t chunk_size; /* bytes per OTA chunk for this class's nodes; 0: ota.chunk_size */
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
/* True when id (the SHA-256 of a signer's SubjectPublicKeyInfo) is allowed for class c. */
bool ota_class_allows_signer(const struct ota_class *c, const uint8_t id[OTA_DIGEST_LEN]);

/* A JSON string without NUL bytes (and its length); NULL otherwise (the classes parser's,
 * also ota_meta.c's). */
const char *ota_json_str(json_object *v, size_t *len);

#endif
