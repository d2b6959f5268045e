/* OTA campaigns (issue 13): a persistent state machine in SQLite (ota.state_db), with no
 * I/O beyond that database. Like gate.h, the caller passes the time and the events in and
 * carries out the actions the engine asks for through struct campaign_ops; the engine never
 * touches a socket, the image store or a clock. Unit-tested (test_campaign.c) with a fake
 * clock and fake actions.
 *
 * Owns: campaigns (spec, state, wave, reason), every target node's state in its campaign
 * (state, attempts, offset, reason, deadlines), the per-class state (raised security-counter
 * floor, current version), and the status document published upstream.
 *
 * Rules:
 *  - every node and every campaign reaches a final state: a node's deadline starts when it
 *    is first offered (node_deadline_s); step_timeout_s bounds each wait (ack, next chunk
 *    request, the node's status after staging, attestation, confirmation); a step that
 *    times out or a transfer that fails is retried after retry_backoff_s * 2^(attempt-1)
 *    (at most `retries` times), then the node is final;
 *  - waves are cumulative sizes over the target list, in its order: [1, "10%", "100%"]
 *    means node 1, then up to 10 % of the targets, then all. At most max_parallel nodes are
 *    in progress at once. A wave advances when all its nodes are final and at least
 *    success_threshold_pct of its executed nodes (final, not skipped) succeeded; otherwise
 *    the campaign is halted with the reason. Later waves' nodes are never offered;
 *  - abort criteria: failures (failed, reverted, timed_out, rejected) >= abort_failures
 *    (0 = off), or, once at least abort_min_executed nodes were executed, failures >=
 *    abort_failure_pct of them (0 = off): the campaign is aborted with the reason;
 *  - a node counts as succeeded only after campaign_on_attested() reported a trusted token
 *    whose measurement is the campaign's digest and the node then confirmed (ota-status
 *    confirmed). A node whose token measures another image, or that reports reverted,
 *    is `reverted` with the reason;
 *  - halt stops new offers (nodes in progress finish); resume continues a halted campaign;
 *    abort cancels every node in progress at once (CAMPAIGN_ACT_CANCEL) and makes them
 *    `failed` with reason "aborted" (a node in test mode, never confirmed, reverts itself);
 *  - every state change is committed to SQLite before its action is returned, so a restart
 *    (campaign_open) resumes: nodes in progress are offered again (the node resumes at its
 *    own offset), challenged again (testing) or confirmed again (confirming).
 *
 * Decisions the contract above left open (campaign.c and its pieces, campaign_internal.h,
 * implement them; docs/ota.md):
 *  - attempts counts the tries a node was given: offers, and the re-sent CHALLENGE/CONFIRM
 *    after a step timeout in testing/confirming (those are re-sent at once, no back-off, as
 *    the step timeout already spaced them). A node gets at most retries + 1 tries;
 *  - a node that never answered anything (ack, request, status, token) and runs out of
 *    tries or reaches its deadline ends `skipped` reason "offline"; one that answered ends
 *    `timed_out`. A refusal with reason busy is retried like a failed step; any other
 *    refusal is `rejected` with the reason's name (campaign_ota_reason_str);
 *  - a token is judged only while the node is `testing` (it reported ota-status testing):
 *    one from before the reboot measures the old image and says nothing. ota-status
 *    confirmed counts only in `confirming`; otherwise it is ignored (-EPROTO);
 *  - a wave whose nodes are all final but none executed passes when none of them went
 *    offline (all skipped at creation); a wave whose nodes were all offline halts (no
 *    evidence the image works). Resuming a campaign halted at a wave threshold accepts that
 *    wave (the operator's override) and starts the next;
 *  - halted campaigns are "not final" for loading, -EBUSY and campaign_uses_image (they can
 *    be resumed): their nodes in progress run to their final states, pending ones stay
 *    pending. FINISHED is also emitted when a campaign halts (state HALTED). Aborted and
 *    failed campaigns make their pending nodes `skipped` ("campaign aborted"/"... failed");
 *  - a completed campaign always sets the class's current version; raise_floor also raises
 *    the floor to max(floor, security_counter);
 *  - STATUS comes from campaign_tick only (at most once a second per campaign) and from the
 *    call that makes a campaign final or halted; call campaign_tick after events (it is
 *    cheap, and returns the next wake-up), so that status and new offers follow them;
 *  - node events return 0 when they were applied, -ENOENT (not in progress there), or
 *    -EPROTO when the node is in progress but the event does not fit its state (liveness
 *    is still refreshed); a failed SQLite write returns its negative errno and its actions
 *    are dropped (timeouts then retry);
 *  - ops->act must not call back into the engine except for the read-only queries
 *    (campaign_status_json, campaign_node_active, campaign_class_state). */
#ifndef FLEETGWD_CAMPAIGN_H
#define FLEETGWD_CAMPAIGN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <fleetgw/msg.h>

#include "ota_store.h" /* struct ota_class_state, OTA_DIGEST_LEN */

#define CAMPAIGN_ID_MAX      MSG_CAMPAIGN_ID_MAX
#define CAMPAIGN_NODE_MAX    MSG_NODE_ID_MAX
#define CAMPAIGN_WAVES_MAX   8
#define CAMPAIGN_TARGETS_MAX 65536
#define CAMPAIGN_REASON_MAX  191

enum campaign_state {
    CAMPAIGN_RUNNING = 0,
    CAMPAIGN_HALTED,    /* by threshold or operator: final until resumed */
    CAMPAIGN_COMPLETED, /* final */
    CAMPAIGN_ABORTED,   /* final: operator or abort criteria */
    CAMPAIGN_FAILED,    /* final: the image failed re-verification, or an internal error */
    CAMPAIGN_STATE__COUNT
};

enum campaign_node_state {
    CN_PENDING = 0, /* not offered yet */
    CN_OFFERED,     /* offer sent, no ack yet */
    CN_DOWNLOADING, /* accepted; chunks flowing */
    CN_STAGED,      /* the node verified the image and resets into it */
    CN_TESTING,     /* runs it in test mode: challenged, waiting for its token */
    CN_CONFIRMING,  /* token measured the new image: confirm sent */
    CN_RETRY_WAIT,  /* a step failed: offered again at retry_at */
    CN_SUCCEEDED,   /* final states from here */
    CN_FAILED,
    CN_REVERTED,
    CN_TIMED_OUT,
    CN_REJECTED,
    CN_SKIPPED,
    CN__COUNT
};
#define CN_FINAL_FIRST CN_SUCCEEDED

/* "running", "halted", ... and "pending", "offered", ..., "skipped". */
const char *campaign_state_str(enum campaign_state s);
const char *campaign_node_state_str(enum campaign_node_state s);
/* "none", "no_space", "bad_digest", ..., "boot_failed": the REASON= and status name of a
 * node's reason code (proto has no table of its own). */
const char *campaign_ota_reason_str(enum msg_ota_reason r);

struct campaign_wave {
    bool percent;   /* value is a percentage of the targets (rounded up, at least 1) */
    uint32_t value; /* a node count, or 1..100 */
};

struct campaign_spec {
    char id[CAMPAIGN_ID_MAX + 1]; /* msg_campaign_id_valid */
    uint8_t digest[OTA_DIGEST_LEN];
    char device_class[OTA_CLASS_NAME_MAX + 1];
    struct image_version version; /* the image's, for status and the class's current */
    uint32_t security_counter;    /* the image's, for raise_floor */
    struct campaign_wave waves[CAMPAIGN_WAVES_MAX];
    size_t n_waves;                 /* 1..CAMPAIGN_WAVES_MAX, non-decreasing, last covers all */
    uint32_t max_parallel;          /* >= 1 */
    uint32_t node_deadline_s;       /* >= step_timeout_s */
    uint32_t step_timeout_s;        /* >= 1 */
    uint32_t retries;               /* 0.. */
    uint32_t retry_backoff_s;       /* >= 1 */
    uint32_t success_threshold_pct; /* 1..100 */
    uint32_t abort_failures;        /* 0 = off */
    uint32_t abort_failure_pct;     /* 0 = off, 1..100 */
    uint32_t abort_min_executed;
    bool recovery;    /* offered to quarantined nodes; older images allowed (at staging) */
    bool raise_floor; /* completed: the class's floor becomes security_counter */
};

/* A target as the caller resolved the selector: skip_reason non-NULL makes it `skipped`
 * at creation (e.g. "quarantined", "already_on_image"). */
struct campaign_target {
    char node[CAMPAIGN_NODE_MAX + 1];
    const char *skip_reason;
};

enum campaign_action_kind {
    CAMPAIGN_ACT_OFFER,     /* offer the image to node (resume: the node steers to its offset):
                               0, or -EBADMSG when the stored image failed re-verification
                               (the campaign fails, reason image_tampered), other < 0: retry */
    CAMPAIGN_ACT_CANCEL,    /* stop serving node (abort, timeout): no more chunks */
    CAMPAIGN_ACT_CHALLENGE, /* the node runs the new image in test mode: attest it now */
    CAMPAIGN_ACT_CONFIRM,   /* publish ota-confirm for digest to node */
    CAMPAIGN_ACT_STATUS,    /* publish the campaign's status document (json) upstream, retained */
    CAMPAIGN_ACT_FINISHED,  /* the campaign reached a final state (completed: release the
                               image, and raise_floor was applied to the class state) */
    CAMPAIGN_ACT_NOTE,      /* journal: priority, token (REASON=), text; node may be NULL */
};

struct campaign_action {
    enum campaign_action_kind kind;
    const char *campaign;
    const char *node;
    const uint8_t *digest;
    enum campaign_state state; /* FINISHED */
    const char *json;          /* STATUS */
    int priority;              /* NOTE */
    const char *token;
    const char *text;
};

struct campaign_ops {
    int (*act)(void *ctx, const struct campaign_action *a);
    void *ctx;
};

struct campaign_engine;

/* Opens (creating) the database, loads every campaign that is not final. 0 or negative
 * errno, err saying why. */
int campaign_open(const char *path, const struct campaign_ops *ops, struct campaign_engine **ret,
                  char *err, size_t errlen) __attribute__((warn_unused_result));
void campaign_close(struct campaign_engine *e);

/* Creates and starts a campaign. -EEXIST (id used), -EINVAL (spec: err says which field),
 * -EBUSY (a target is already in another non-final campaign), -ENOSPC, other negative. */
int campaign_create(struct campaign_engine *e, const struct campaign_spec *spec,
                    const struct campaign_target *targets, size_t n_targets, int64_t now, char *err,
                    size_t errlen) __attribute__((warn_unused_result));

/* Operator commands: 0, -ENOENT, or -EALREADY/-EINVAL when the state does not allow it. */
int campaign_halt(struct campaign_engine *e, const char *id, int64_t now, const char *why)
    __attribute__((warn_unused_result));
int campaign_resume(struct campaign_engine *e, const char *id, int64_t now)
    __attribute__((warn_unused_result));
int campaign_abort(struct campaign_engine *e, const char *id, int64_t now, const char *why)
    __attribute__((warn_unused_result));

/* Node events, from the node's ota-ack / ota-chunk-request / ota-status messages and the
 * attestation gate. Events for a campaign the node is not in (or not in progress) are
 * ignored and return -ENOENT; the node's liveness is refreshed by any of them. */
int campaign_on_ack(struct campaign_engine *e, const char *node, const char *campaign,
                    bool accepted, enum msg_ota_reason reason, int64_t now);
int campaign_on_request(struct campaign_engine *e, const char *node, const char *campaign,
                        uint32_t offset, int64_t now);
int campaign_on_status(struct campaign_engine *e, const char *node, const char *campaign,
                       enum msg_ota_state state, uint32_t offset, enum msg_ota_reason reason,
                       int64_t now);
/* trusted: the gate's verdict; measured: the token's first software component's
 * measurement (NULL when unknown); reason: the gate's sentence. */
int campaign_on_attested(struct campaign_engine *e, const char *node, bool trusted,
                         const uint8_t *measured, const char *reason, int64_t now);

/* Timers: deadlines, step timeouts, retries, starting nodes, wave advance, coalesced status
 * (at most one STATUS per campaign per second, and one at every final state). Returns the
 * next time (epoch s) it wants to run, or 0 when nothing is running. */
int64_t campaign_tick(struct campaign_engine *e, int64_t now);

/* The campaign node is in, when it is in progress there (not pending, not final): true with
 * id and digest filled. Used to serve chunks and to judge its post-reboot token. */
bool campaign_node_active(const struct campaign_engine *e, const char *node,
                          char id[CAMPAIGN_ID_MAX + 1], uint8_t digest[OTA_DIGEST_LEN],
                          enum campaign_node_state *state);

/* The image node runs or is about to run under a campaign that is not final (it staged it,
 * tests it, confirms it, or succeeded with it while the campaign goes on): true with its
 * digest. Its tokens measure that image before the campaign completes and releases it into
 * the attestation policy, so the verifier accepts it for this node only. */
bool campaign_node_image(const struct campaign_engine *e, const char *node,
                         uint8_t digest[OTA_DIGEST_LEN]);

/* Status document (JSON text, caller frees with free()): id, state, reason, image digest
 * and version, class, wave (current / count), counts per node state overall and per wave,
 * created/updated/finished times; with nodes=true, every node's state, attempts, offset and
 * reason. NULL when unknown. */
char *campaign_status_json(struct campaign_engine *e, const char *id, bool nodes);
/* Calls fn for every campaign (newest first), final ones included. */
int campaign_foreach(struct campaign_engine *e,
                     int (*fn)(const char *id, enum campaign_state st, void *u), void *u);
/* Whether a campaign that is not final uses digest (the store refuses to remove it). */
bool campaign_uses_image(struct campaign_engine *e, const uint8_t digest[OTA_DIGEST_LEN]);

/* The class state for ota_check_opts.class_state (ctx = the engine): floor raised by
 * completed campaigns with raise_floor, current version = the newest completed campaign's. */
int campaign_class_state(void *engine, const char *cls, struct ota_class_state *ret);

#endif
