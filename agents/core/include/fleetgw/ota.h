/* The node's OTA client: a state machine fed with the raw CBOR messages the gateway publishes
 * on fleet/<id>/ota/{offer,chunk,confirm}. Portable C99, no heap, no globals, no OS calls:
 * flash, the progress record and the bootloader requests go through struct ota_port.
 *
 * Flow (docs/agent.md, "OTA"):
 *   offer   -> checks (size fits the slot, version newer than running, chunk size sane,
 *              not busy with a staged/testing image) -> ota/ack accepted or refused.
 *   chunk   -> at the expected offset of the offered campaign: erase as needed, write into
 *              the secondary slot, persist the progress, reply ota/request for the next
 *              chunk. A chunk at another offset is not written; the reply is ota/request for
 *              the expected offset (so the gateway may start sending at 0 after the ack and a
 *              resumed node steers it to where it stopped). A chunk of another campaign is
 *              ignored (no reply).
 *           -> last byte written: image_verify() over the whole slot (trusted keys, minimum
 *              security counter, device class), image hash == offered digest, image version ==
 *              offered version; then the port's request_install (test mode) and ota/status
 *              STAGED; on any failure ota/status FAILED with a reason, nothing installed.
 *   (reset: the bootloader installs the image in test mode; the port tells ota_init() the
 *    running image's hash: equal to the staged digest -> TESTING, else REVERTED)
 *   confirm -> in TESTING, same campaign and digest: the port's confirm, ota/status CONFIRMED.
 *
 * Progress (state, campaign, digest, size, version, chunk size, offset) is persisted through
 * the port after every chunk, so a restarted node resumes: the offset is rounded down to the
 * erase unit, whose sector is erased again before the next write. */
#ifndef FLEETGW_OTA_H
#define FLEETGW_OTA_H

#include <stddef.h>
#include <stdint.h>

#include "fleetgw/image.h"
#include "fleetgw/msg.h"

#if defined(__GNUC__)
#define OTA_MUST_CHECK __attribute__((warn_unused_result))
#else
#define OTA_MUST_CHECK
#endif

#define OTA_PROGRESS_MAGIC 0x4f544131u /* "OTA1" */
#define OTA_REPLY_MAX      64u         /* largest reply message (ack/request/status) */

enum ota_err {
    OTA_OK = 0,
    OTA_ERR_ARG,     /* NULL pointer or bad configuration */
    OTA_ERR_NOSPACE, /* reply buffer too small */
    OTA_ERR_MSG,     /* undecodable message, wrong type for the topic, or unknown topic */
    OTA_ERR_PORT,    /* a port callback failed (progress record) */
    OTA_ERR__COUNT
};

const char *ota_err_str(enum ota_err e);

/* The persisted progress record (opaque to the port: store and load it as bytes). */
struct ota_progress {
    uint32_t magic;
    uint32_t state; /* enum msg_ota_state */
    char campaign[MSG_CAMPAIGN_ID_MAX + 1];
    uint8_t digest[MSG_DIGEST_LEN];
    uint32_t size;
    uint32_t chunk_size;
    struct msg_version version;
    uint32_t offset;
    uint32_t reason; /* enum msg_ota_reason, for FAILED / REVERTED */
};

struct ota_port {
    void *ctx;
    uint32_t slot_size;  /* secondary slot size in bytes */
    uint32_t erase_size; /* erase unit, a power of two */
    /* Secondary slot access, offsets relative to the slot start. 0 on success. */
    int (*erase)(void *ctx, uint32_t off, uint32_t len); /* erase-unit aligned */
    int (*write)(void *ctx, uint32_t off, const uint8_t *buf, uint32_t len);
    /* A contiguous read-only view of the first len bytes of the slot, or NULL. */
    const uint8_t *(*map)(void *ctx, uint32_t len);
    /* Progress record: load returns 0 (found), 1 (none) or -1; store returns 0 or -1. */
    int (*progress_load)(void *ctx, struct ota_progress *p);
    int (*progress_store)(void *ctx, const struct ota_progress *p);
    /* Bootloader: install the secondary slot in test mode at the next reset (e.g.
     * boot_request_install()); confirm the running image (boot_confirm()). 0 on success. */
    int (*request_install)(void *ctx);
    int (*confirm)(void *ctx);
};

struct ota_config {
    const struct image_key *keys; /* trusted signers, 1..IMAGE_MAX_KEYS */
    size_t n_keys;
    int check_min_counter;
    uint32_t min_counter;
    const uint8_t *device_class; /* 16-byte UUID_CID the image must carry, or NULL */
    struct msg_version running;  /* the running image's version */
    /* The running image's hash (from the boot record), or NULL when unknown. */
    const uint8_t *running_digest;
    /* The running image was started in test mode (boot record: not confirmed). The secondary
     * slot then holds the image the bootloader reverts to: every offer is refused (busy)
     * until the running image is confirmed, whatever the progress record says (it may be
     * lost or stale), so a new download can never overwrite the revert image. */
    int running_test_mode;
};

struct ota {
    struct ota_port port;
    struct ota_config cfg;
    struct ota_progress prog;
    uint32_t erased_upto; /* slot bytes erased in this life (not persisted) */
    uint32_t stats_ignored;
};

/* Loads the progress record and derives the state: DOWNLOADING resumes at the offset rounded
 * down to the erase unit; STAGED becomes TESTING when running_digest equals the staged digest,
 * REVERTED otherwise. */
enum ota_err ota_init(struct ota *o, const struct ota_port *port,
                      const struct ota_config *cfg) OTA_MUST_CHECK;

/* One message from fleet/<id>/ota/<suffix> (suffix "offer", "chunk" or "confirm"). A reply
 * (ack, request or status) is written into out with *out_len > 0 and *reply_topic set to
 * "ota/ack", "ota/request" or "ota/status"; *out_len == 0 means no reply. */
enum ota_err ota_handle(struct ota *o, const char *suffix, size_t suffix_len,
                        const uint8_t *payload, size_t len, uint8_t *out, size_t cap,
                        size_t *out_len, const char **reply_topic) OTA_MUST_CHECK;

/* The current ota-status message (e.g. to publish once after a reset). */
enum ota_err ota_status_encode(const struct ota *o, uint8_t *out, size_t cap,
                               size_t *out_len) OTA_MUST_CHECK;

enum msg_ota_state ota_state(const struct ota *o);

/* struct agent_app.on_ota with user = struct ota *. */
#include "fleetgw/agent.h"
agent_status_t ota_agent_on_ota(void *user, const char *suffix, size_t suffix_len,
                                const uint8_t *payload, size_t payload_len, uint8_t *out,
                                size_t out_cap, size_t *ret_len, const char **ret_topic);

#endif
