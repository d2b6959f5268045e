/* The gateway's OTA image store (issue 13): device classes (ota_classes.h), the checks
 * every image passes before anything is stored (ota_check.h), and the content-addressed
 * store itself (ota_store.c, this header). No sockets, no event loop, no SQLite: files
 * under ota.store_dir and the caller's policy.
 *
 * The store owns:
 *  - <dir>/<sha256-hex>.img and <sha256-hex>.json (metadata, ota_meta.c), written as temp
 *    file + fsync + rename + directory fsync, within a byte quota; <dir>/released/ holds a
 *    hard link of every image a completed campaign released (an attestation image
 *    directory: those images' reference values join the policy);
 *  - reading chunks for hand-over (pread on a cached descriptor, memory independent of the
 *    number of nodes) and re-verifying a stored image before an offer.
 * A refusal leaves the store exactly as it was. */
#ifndef FLEETGWD_OTA_STORE_H
#define FLEETGWD_OTA_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ota_check.h"
#include "ota_classes.h"

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
