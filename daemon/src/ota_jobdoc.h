/* The cloud job path's outside bytes (issue 13, docs/protocol.md 2.3): the job document the
 * cloud publishes on <prefix>/ota/jobs/<job>, the chunk replies it answers on
 * <prefix>/ota/jobs/<job>/data, and the gateway's chunk requests. Pure parsing and checking:
 * no files, no sockets (ota_job.c, fleetgwd's side, does the rest). Fuzzed by
 * daemon/fuzz/fuzz_ota_job.c. */
#ifndef FLEETGWD_OTA_JOBDOC_H
#define FLEETGWD_OTA_JOBDOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <fleetgw/image.h>

#include "ota_store.h"

#define OTA_JOB_ID_MAX      32u   /* the campaign id grammar: [A-Za-z0-9._-]{1,32} */
#define OTA_JOBDOC_MAX      8192u /* bytes of a job document, at most */
#define OTA_JOBDOC_SPEC_MAX 4096u /* the campaign object, re-serialized, at most */
#define OTA_JOB_CHUNK_MAGIC "FGJD"
#define OTA_JOB_CHUNK_HDR   44u /* magic 4, offset 4, length 4 (big-endian), SHA-256 32 */
#define OTA_JOB_BLOCK_MIN   64u
#define OTA_JOB_BLOCK_MAX   65536u
#define OTA_JOB_BLOCK_DEF   4096u
#define OTA_JOB_TIMEOUT_DEF 5000u /* ms per chunk request */
#define OTA_JOB_RETRIES_DEF 10u   /* consecutive unanswered or bad replies before failing */

/* A job document:
 *   {"image": {"sha256": "<64 hex: SHA-256 of the whole image file>",
 *              "size": <bytes, 1..IMAGE_MAX_LEN>,
 *              "version": "2.0.0+0"            optional: must match the image's header,
 *              "class": "<device class>"       optional: the declared class,
 *              "digest": "<64 hex>"            optional: the MCUboot image hash},
 *    "campaign": {<ota_spec_parse's keys but "image">},
 *    "transfer": {"block_size": 4096, "timeout_ms": 5000, "retries": 10}   optional}
 * Unknown keys are refused with their name. */
struct ota_jobdoc {
    uint8_t sha256[OTA_DIGEST_LEN];
    bool has_digest;
    uint8_t digest[OTA_DIGEST_LEN];
    uint32_t size;
    bool has_version;
    struct image_version version;
    char class_name[OTA_CLASS_NAME_MAX + 1]; /* "" = none declared */
    bool recovery;                           /* campaign.recovery */
    char spec[OTA_JOBDOC_SPEC_MAX + 1];      /* the campaign object as JSON text */
    uint32_t block_size, timeout_ms, retries;
};

/* Parses a job document. 0, or -EINVAL with err naming the key and why. */
int ota_jobdoc_parse(const char *text, size_t len, struct ota_jobdoc *out, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* "2.0.0" or "2.0.0+7" (major.minor 0..255, revision 0..65535, build 0..2^32-1). 0 or -1. */
int ota_version_parse(const char *s, struct image_version *out);

/* One chunk reply: "FGJD", offset, length, SHA-256 of the data, then length bytes. */
struct ota_job_chunk {
    uint32_t offset;
    const uint8_t *data; /* into the input */
    size_t len;
};

/* Parses and checks a chunk reply on its own: magic, header, the length field against the
 * bytes that follow, the data against its SHA-256. 0 or -EINVAL/-EBADMSG with err. */
int ota_job_chunk_parse(const uint8_t *buf, size_t len, struct ota_job_chunk *out, char *err,
                        size_t errlen) __attribute__((warn_unused_result));

/* Checks a parsed chunk against the request it answers (want_off, want_len) and the job's
 * size: the offset asked for, inside the image, exactly min(want_len, size - offset) bytes.
 * 0 or -ERANGE with err. */
int ota_job_chunk_check(const struct ota_job_chunk *c, uint32_t want_off, uint32_t want_len,
                        uint32_t size, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Encodes a chunk reply (the cloud's side; tests and tools). Returns the bytes written or 0
 * when cap is too small. */
size_t ota_job_chunk_encode(uint32_t offset, const uint8_t *data, size_t len, uint8_t *out,
                            size_t cap);

/* The gateway's request {"offset": o, "length": l, "gateway": "<client id>"}. Bytes written
 * (NUL-terminated) or 0 when cap is too small. */
size_t ota_job_get_json(uint32_t offset, uint32_t length, const char *gateway, char *out,
                        size_t cap);

#endif
