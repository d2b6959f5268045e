/* The metadata document of a stored OTA image (ota_meta.c): <digest>.json beside
 * <digest>.img in the store (ota_store.c reads and writes the files), struct ota_image_meta
 * to JSON and back. The "version" string is for people; the parse reads the numbered keys,
 * every one required, typed and in range. */
#ifndef FLEETGWD_OTA_META_H
#define FLEETGWD_OTA_META_H

#include "ota_check.h"

/* The document, pretty-printed (no newline at the end); NULL on out of memory. Caller
 * frees. */
char *ota_meta_to_json(const struct ota_image_meta *m);
/* Parses a document (NUL-terminated text): 0 with *ret filled, or -EBADMSG when it is not
 * JSON or a key is missing, of another type or out of range (*ret untouched). */
int ota_meta_parse(const char *text, struct ota_image_meta *ret)
    __attribute__((warn_unused_result));

#endif
