/* The gateway's OTA (issue 13), as the rest of the daemon sees it.
 *   ota_store.c  device classes, staging checks, the content-addressed image store
 *   campaign.c   campaigns: the persistent state machine (waves, deadlines, thresholds)
 *   ota_ctl.c    the control requests (fleetgwctl ota ..., campaign ...): this header
 *   ota_xfer.c   (fleetgwd) the hand-over: offers, chunks read from the store, the node's
 *                replies, re-attestation in test mode, confirmation, status upstream
 * struct ota_ctx is what they share: the store, the engine, the classes and the signer set. */
#ifndef FLEETGWD_OTA_H
#define FLEETGWD_OTA_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "campaign.h"
#include "ctl_api.h"
#include "ota_store.h"

struct registry;

struct ota_ctx {
    struct ota_store *store;
    struct campaign_engine *engine;
    struct ota_classes classes;
    struct image_key signers[IMAGE_MAX_KEYS]; /* attestation.signer_keys */
    size_t n_signers;
    struct registry *registry;
    uint32_t chunk_size;
    /* The engine has work (a campaign was created, resumed, ...): run its tick soon. */
    void (*kick)(void *u);
    void *u;
};

/* The staging checks' options for this gateway (classes, signers, the engine's class state). */
void ota_check_opts_of(const struct ota_ctx *o, const char *declared_class, bool recovery,
                       struct ota_check_opts *ret);

/* Reads an image of at most IMAGE_MAX_LEN bytes from fd (a regular file) into a new buffer.
 * 0 with *ret (free()) and *ret_len, or negative errno with why filled. */
int ota_read_fd(int fd, uint8_t **ret, size_t *ret_len, char *why, size_t whylen)
    __attribute__((warn_unused_result));

/* A campaign spec from the control request's "spec" object (fleetgwctl campaign create):
 *   {"id": "c-1" (optional: generated), "image": "<hex digest or unique prefix>",
 *    "class": "<device class>" (default: the image's), "nodes": ["id", ...] (optional),
 *    "waves": [1, "10%", "100%"], "max_parallel": 8, "node_deadline_s": 1800,
 *    "step_timeout_s": 120, "retries": 2, "retry_backoff_s": 10,
 *    "success_threshold_pct": 100, "abort_failures": 0, "abort_failure_pct": 0,
 *    "abort_min_executed": 0, "recovery": false, "raise_floor": false}
 * Unknown keys and bad values are refused with the key named. */
int ota_spec_parse(const struct ota_ctx *o, const char *json, int64_t now,
                   struct campaign_spec *spec, char nodes[][CAMPAIGN_NODE_MAX + 1],
                   size_t nodes_cap, size_t *n_nodes, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Creates a campaign from a spec (ota_spec_parse's JSON text), the targets resolved from the
 * registry (every enrolled node of the image's class, or the spec's "nodes" in their order;
 * quarantined and already-updated nodes skipped with their reason), then kicks the engine.
 * Shared by fleetgwctl campaign create and the cloud job path (ota_job.c). 0 with id and
 * *n_targets, or negative errno with err. */
int ota_campaign_create(const struct ota_ctx *o, const char *spec_json, int64_t now,
                        char id[CAMPAIGN_ID_MAX + 1], size_t *n_targets, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Control handlers (ctl_api.c's table). */
json_object *ota_ctl_stage(const struct ctl_request *req, const struct ctl_api *api,
                           json_object *ok);
json_object *ota_ctl_images(const struct ctl_request *req, const struct ctl_api *api,
                            json_object *ok);
json_object *ota_ctl_rm(const struct ctl_request *req, const struct ctl_api *api, json_object *ok);
json_object *ota_ctl_create(const struct ctl_request *req, const struct ctl_api *api,
                            json_object *ok);
json_object *ota_ctl_list(const struct ctl_request *req, const struct ctl_api *api,
                          json_object *ok);
json_object *ota_ctl_status(const struct ctl_request *req, const struct ctl_api *api,
                            json_object *ok);
json_object *ota_ctl_halt(const struct ctl_request *req, const struct ctl_api *api,
                          json_object *ok);
json_object *ota_ctl_resume(const struct ctl_request *req, const struct ctl_api *api,
                            json_object *ok);
json_object *ota_ctl_abort(const struct ctl_request *req, const struct ctl_api *api,
                           json_object *ok);

#endif
