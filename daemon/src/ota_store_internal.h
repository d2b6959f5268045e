/* What the four files of the OTA image store share; other modules use ota_store.h only.
 *   ota_classes.c  the device classes file (parse, load, lookups)
 *   ota_check.c    the staging checks (ota_image_check) and their refusals (REASON tokens)
 *   ota_meta.c     the metadata document of a stored image (<digest>.json), to and from JSON
 *   ota_store.c    the content-addressed store: files, quota, reads, re-verify, release */
#ifndef FLEETGWD_OTA_STORE_INTERNAL_H
#define FLEETGWD_OTA_STORE_INTERNAL_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ota_store.h"

/* ota_classes.c */
/* A JSON string without NUL bytes (and its length); NULL otherwise. */
const char *ota_json_str(json_object *v, size_t *len);
/* True when signer id (SHA-256 of its SPKI) is one of the class's allowed signers. */
bool ota_class_allows_signer(const struct ota_class *c, const uint8_t id[OTA_DIGEST_LEN]);

/* ota_check.c */
/* Writes the sentence (printf format) into why and returns r. */
enum ota_refusal ota_refuse(enum ota_refusal r, char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* "major.minor.revision+build". */
void ota_version_format(const struct image_version *v, char *out, size_t cap);
/* The signature part of the checks: image_verify() with the signer set, its status as a
 * refusal (OTA_OK with res filled). */
enum ota_refusal ota_check_signature(const uint8_t *img, size_t len, const struct image_key *keys,
                                     size_t n_keys, struct image_result *res, char *why,
                                     size_t whylen);

/* ota_meta.c */
/* The metadata document, pretty-printed (no newline at the end); NULL on out of memory.
 * Caller frees. */
char *ota_meta_to_json(const struct ota_image_meta *m);
/* Parses a metadata document (NUL-terminated text): 0 with *ret filled, or -EBADMSG when a
 * key is missing, of another type or out of range. */
int ota_meta_parse(const char *text, struct ota_image_meta *ret)
    __attribute__((warn_unused_result));

#endif
