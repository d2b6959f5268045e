/* The attestation gate (see gate.h): the attestation state machine over the node table
 * (gate_table.c), no I/O. */
#define _GNU_SOURCE /* explicit_bzero */
#include "gate.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "gate_internal.h"

static const char *const reason_names[GATE_REASON__COUNT] = {
    [GATE_R_NONE] = "none",
    [GATE_R_UNKNOWN] = "unknown",
    [GATE_R_ATTESTED] = "attested",
    [GATE_R_BAD_EVIDENCE] = "bad_evidence",
    [GATE_R_TOO_LARGE] = "evidence_too_large",
    [GATE_R_BAD_SIGNATURE] = "bad_signature",
    [GATE_R_NONCE_MISMATCH] = "nonce_mismatch",
    [GATE_R_BAD_TOKEN] = "bad_token",
    [GATE_R_INSTANCE_MISMATCH] = "instance_mismatch",
    [GATE_R_LIFECYCLE] = "lifecycle_refused",
    [GATE_R_UNKNOWN_MEASUREMENT] = "unknown_measurement",
    [GATE_R_TIMEOUT] = "attest_timeout",
    [GATE_R_INTERNAL] = "internal_error",
    [GATE_R_PROFILE] = "profile_not_allowed",
};

static const char *const verdict_names[GATE_VERDICT__COUNT] = {
    [GATE_UNLOADED] = "unloaded", [GATE_NOT_ENROLLED] = "not_enrolled", [GATE_NONE] = "unknown",
    [GATE_TRUSTED] = "trusted",   [GATE_QUARANTINED] = "quarantined",
};

const char *gate_reason_str(enum gate_reason r)
{
    return (unsigned)r < GATE_REASON__COUNT ? reason_names[r] : "invalid";
}

const char *gate_verdict_str(enum gate_verdict v)
{
    return (unsigned)v < GATE_VERDICT__COUNT ? verdict_names[v] : "invalid";
}

static void held_settle(struct gate *g, struct gate_node *n);

void gate_reload(struct gate *g, const struct gate_config *cfg)
{
    g->cfg = *cfg;
    /* Held messages under the new parameters (attestation.required may have changed): one
     * walk of the node table per reload. */
    for (size_t i = 0; i < g->n_nodes; i++)
        if (node_at(g, (uint32_t)i)->held > 0)
            held_settle(g, node_at(g, (uint32_t)i));
}

/* The node's verdict is pending on a challenge: outstanding, or waiting for a slot. */
static bool pending(const struct gate_node *n)
{
    return n->challenge_out || n->queued;
}

static int act(struct gate *g, const struct gate_action *a)
{
    return g->ops.act(g->ops.ctx, a);
}

static void count(struct gate *g, const char *node, const char *counter)
{
    struct gate_action a = {.kind = GATE_ACT_COUNT, .node = node, .counter = counter};
    (void)act(g, &a);
}

static void note(struct gate *g, const char *node, int priority, const char *token,
                 const char *text)
{
    struct gate_action a = {
        .kind = GATE_ACT_NOTE, .node = node, .priority = priority, .token = token, .text = text};
    (void)act(g, &a);
}

/* The node's held messages go to the drain (trusted, or attestation not required). If the
 * caller could not release them they stay counted (a later message is held behind them and
 * the release is tried again). */
static void held_release(struct gate *g, struct gate_node *n)
{
    if (n->held == 0)
        return;
    struct gate_action a = {.kind = GATE_ACT_RELEASE, .node = n->id, .held = n->held};
    if (act(g, &a) == 0)
        n->held = 0;
}

/* The node's held messages are deleted, counted under reason. */
static void held_drop(struct gate *g, struct gate_node *n, const char *reason)
{
    if (n->held == 0)
        return;
    struct gate_action a = {
        .kind = GATE_ACT_DROP_HELD, .node = n->id, .counter = reason, .held = n->held};
    (void)act(g, &a); /* rows the caller could not delete are settled again at a restart */
    n->held = 0;
}

/* Held messages follow the verdict: released when trusted, dropped when quarantined or no
 * longer enrolled; kept while there is none under an outstanding challenge (whose expiry
 * bounds them) or the registry cannot be read; dropped when there is none and nothing
 * bounds them (e.g. a trusted verdict that was not persisted, lost at a registry reload). */
static void held_settle(struct gate *g, struct gate_node *n)
{
    if (n->held == 0)
        return;
    if (n->verdict == GATE_TRUSTED || !g->cfg.required)
        held_release(g, n);
    else if (n->verdict == GATE_QUARANTINED)
        held_drop(g, n, "quarantined");
    else if (n->verdict == GATE_NOT_ENROLLED)
        held_drop(g, n, "not_enrolled");
    else if (n->verdict == GATE_NONE && !pending(n))
        held_drop(g, n, "hold_expired");
}

/* Loads the node's enrollment and verdict (re-checked every 2 s for a node that is not
 * enrolled, so that an enrollment takes effect quickly). */
static void node_load(struct gate *g, struct gate_node *n, uint64_t now_us)
{
    struct gate_record rec;
    if (n->verdict != GATE_UNLOADED &&
        !(n->verdict == GATE_NOT_ENROLLED && now_us - n->loaded_us > NOT_ENROLLED_RECHECK_US))
        return;
    n->loaded_us = now_us;
    memset(&rec, 0, sizeof(rec));
    int r = g->ops.load(g->ops.ctx, n->id, &rec);
    if (r == -ENOENT) {
        n->verdict = GATE_NOT_ENROLLED;
        held_settle(g, n);
        return;
    }
    if (r < 0 || (rec.verdict != GATE_NONE && rec.verdict != GATE_TRUSTED &&
                  rec.verdict != GATE_QUARANTINED)) {
        n->verdict = GATE_UNLOADED; /* the loader said why */
        return;
    }
    memcpy(n->pub, rec.pub, sizeof(n->pub));
    n->verdict = rec.verdict;
    n->code = rec.verdict == GATE_TRUSTED ? GATE_R_ATTESTED
              : rec.verdict == GATE_NONE  ? GATE_R_NONE
                                          : GATE_R_UNKNOWN;
    n->verdict_time = rec.verdict_time;
    rec.fw_version[sizeof(rec.fw_version) - 1] = '\0';
    memcpy(n->fw_version, rec.fw_version, sizeof(n->fw_version));
    rec.profile[sizeof(rec.profile) - 1] = '\0';
    memcpy(n->profile, rec.profile, sizeof(n->profile));
    n->persist_failed = false;
    held_settle(g, n);
}

static void past_push(struct gate_node *n, const uint8_t nonce[GATE_NONCE_LEN])
{
    memcpy(n->past[n->past_next], nonce, GATE_NONCE_LEN);
    n->past_next = (n->past_next + 1) % GATE_PAST_NONCES;
    if (n->n_past < GATE_PAST_NONCES)
        n->n_past++;
}

static bool past_has(const struct gate_node *n, const uint8_t nonce[GATE_NONCE_LEN])
{
    for (unsigned i = 0; i < n->n_past; i++)
        if (memcmp(n->past[i], nonce, GATE_NONCE_LEN) == 0)
            return true;
    return false;
}

/* The outstanding challenge ends (answered, expired or replaced): its nonce is kept to
 * recognise late copies of an answer to it; its slot is free for the next in the queue
 * (pump, at the end of the event). */
static void challenge_end(struct gate *g, struct gate_node *n)
{
    past_push(n, n->nonce);
    explicit_bzero(n->nonce, sizeof(n->nonce));
    n->challenge_out = false;
    heap_remove(g, n);
}

/* Records a verdict; persisted and published only when it (or its reason, the firmware
 * version or the token's profile) changed, or the last write failed. fw, profile: NULL or ""
 * = not known by this verdict (the previous one is kept). */
static void set_verdict(struct gate *g, struct gate_node *n, enum gate_verdict v,
                        enum gate_reason code, const char *sentence, const char *fw,
                        const char *profile, int64_t wall, bool seen)
{
    bool has_fw = fw != NULL && fw[0] != '\0';
    bool has_profile = profile != NULL && profile[0] != '\0';
    bool changed = n->verdict != v || n->code != code || n->persist_failed ||
                   (has_fw && strcmp(fw, n->fw_version) != 0) ||
                   (has_profile && strcmp(profile, n->profile) != 0);
    n->verdict = v;
    n->code = code;
    n->verdict_time = wall;
    if (has_fw)
        snprintf(n->fw_version, sizeof(n->fw_version), "%s", fw);
    if (has_profile)
        snprintf(n->profile, sizeof(n->profile), "%s", profile);
    if (!changed) {
        held_settle(g, n);
        return;
    }
    struct gate_action a = {.kind = GATE_ACT_PERSIST,
                            .node = n->id,
                            .verdict = v,
                            .code = code,
                            .reason = sentence,
                            .fw_version = has_fw ? fw : NULL,
                            .profile = has_profile ? profile : NULL,
                            .time = wall,
                            .seen = seen};
    n->persist_failed = act(g, &a) < 0;
    a.kind = GATE_ACT_PUBLISH;
    a.fw_version = has_fw ? fw : "";
    a.profile = n->profile;
    (void)act(g, &a);
    held_settle(g, n);
}

/* The outstanding challenge of n expired without an answer. */
static void expire(struct gate *g, struct gate_node *n, int64_t wall)
{
    char text[224];
    unsigned ttl_s = n->challenge_ttl_s;

    challenge_end(g, n);
    count(g, n->id, "attest_timeout");
    if (n->verdict != GATE_TRUSTED || !g->cfg.judging) {
        /* Not trusted: nothing to take away (a quarantined node keeps its first reason);
         * no reference values: no evidence could have been judged. */
        snprintf(text, sizeof(text), "attestation challenge not answered within nonce_ttl_s (%u s)",
                 ttl_s);
        note(g, n->id, LOG_INFO, gate_reason_str(GATE_R_TIMEOUT), text);
        if (n->verdict != GATE_TRUSTED)
            held_drop(g, n, "hold_expired"); /* the nonce's lifetime was their limit */
        return;
    }
    char reason[128];
    snprintf(reason, sizeof(reason),
             "no answer to the attestation challenge within nonce_ttl_s (%u s)", ttl_s);
    set_verdict(g, n, GATE_QUARANTINED, GATE_R_TIMEOUT, reason, NULL, NULL, wall, false);
    snprintf(text, sizeof(text), "attestation verdict quarantined: %s", reason);
    note(g, n->id, LOG_WARNING, gate_reason_str(GATE_R_TIMEOUT), text);
    count(g, n->id, "attest_quarantined"); /* a verdict given, as on evidence */
}

static bool expired(const struct gate_node *n, uint64_t now_us)
{
    return n->challenge_out && now_us >= n->challenge_expiry_us;
}

/* Sends a fresh one-time nonce now (a slot is free): outstanding if the caller accepted it. */
static void challenge_send(struct gate *g, struct gate_node *n, uint64_t now_us)
{
    uint64_t ttl_us = (uint64_t)g->cfg.nonce_ttl_s * 1000000ULL;
    uint8_t nonce[GATE_NONCE_LEN];

    if (g->ops.random(g->ops.ctx, nonce, sizeof(nonce)) < 0) {
        note(g, n->id, LOG_ERR, "challenge_error", "cannot make a challenge: no random bytes");
        return;
    }
    struct gate_action a = {.kind = GATE_ACT_CHALLENGE,
                            .node = n->id,
                            .nonce = nonce,
                            .ttl_s = (uint32_t)g->cfg.nonce_ttl_s,
                            .expiry_us = now_us + ttl_us};
    if (act(g, &a) < 0) {
        explicit_bzero(nonce, sizeof(nonce));
        return; /* the caller said why */
    }
    memcpy(n->nonce, nonce, sizeof(nonce));
    explicit_bzero(nonce, sizeof(nonce));
    n->challenge_out = true;
    n->challenge_ttl_s = (uint32_t)g->cfg.nonce_ttl_s;
    n->challenge_expiry_us = a.expiry_us;
    n->last_challenge_us = now_us;
    heap_add(g, n);
}

static size_t slots(const struct gate *g)
{
    return g->cfg.challenges_max > 0 ? g->cfg.challenges_max : SIZE_MAX;
}

/* Storm control: a node due for a challenge gets one now when fewer than
 * gate_config.challenges_max are outstanding and nobody waits; else it waits in the queue,
 * in arrival order (front: an operator's request goes first), and pump() sends it when a
 * slot frees. At most once per nonce_ttl_s per node (counted from when it was sent). */
static void pump(struct gate *g, uint64_t now_us, int64_t wall);

static void challenge_at(struct gate *g, struct gate_node *n, uint64_t now_us, int64_t wall,
                         bool front)
{
    uint64_t ttl_us = (uint64_t)g->cfg.nonce_ttl_s * 1000000ULL;

    if (expired(n, now_us)) {
        expire(g, n, wall);    /* before the sweep got to it: the verdict goes first */
        pump(g, now_us, wall); /* its slot goes to the queue first (n is not in it) */
    }
    if (pending(n))
        return;
    if (n->last_challenge_us != 0 && now_us - n->last_challenge_us < ttl_us)
        return;
    if (g->n_out < slots(g) && (g->n_queued == 0 || front))
        challenge_send(g, n, now_us);
    else
        queue_push(g, n, front);
}

static void challenge(struct gate *g, struct gate_node *n, uint64_t now_us, int64_t wall)
{
    challenge_at(g, n, now_us, wall, false);
}

static bool due(const struct gate *g, const struct gate_node *n, uint64_t now_us, int64_t wall);

/* Free slots go to the queue's head, in order: a node that no longer needs a challenge (it
 * was removed, or is trusted by a registry row read since) leaves the queue without one; a
 * node whose challenge could not be sent leaves it too, and its held messages with it. At
 * most one pass over the queue per call. */
static void pump(struct gate *g, uint64_t now_us, int64_t wall)
{
    while (g->q_head != 0 && g->n_out < slots(g)) {
        struct gate_node *n = node_at(g, g->q_head - 1);
        queue_remove(g, n);
        node_load(g, n, now_us);
        if (n->verdict == GATE_NOT_ENROLLED || n->verdict == GATE_UNLOADED || !g->cfg.judging ||
            (g->cfg.required && !due(g, n, now_us, wall))) {
            held_settle(g, n);
            continue;
        }
        challenge_send(g, n, now_us);
        held_settle(g, n); /* not sent: nothing bounds its held messages */
    }
}

/* Not trusted, trusted for interval_s already, or an outstanding challenge has expired. */
static bool due(const struct gate *g, const struct gate_node *n, uint64_t now_us, int64_t wall)
{
    return n->verdict != GATE_TRUSTED || wall - n->verdict_time >= g->cfg.interval_s ||
           expired(n, now_us);
}

static struct gate_outcome drop(const char *reason, const char *what)
{
    return (struct gate_outcome){.decision = GATE_DROP, .drop_reason = reason, .drop_what = what};
}

static const struct gate_outcome consumed = {.decision = GATE_CONSUMED};

static bool rate_ok(struct gate *g, struct gate_node *n, uint64_t now_us)
{
    double rate = g->cfg.per_node_rate, burst = g->cfg.per_node_burst;
    if (now_us >= g->credit_until_us) {
        bucket_cap(&n->bucket, burst); /* an unspent credit ends with its window */
    } else if (n->credit_epoch != g->credit_epoch) {
        n->credit_epoch = g->credit_epoch;
        bucket_credit(&n->bucket, now_us, rate, burst, g->credit);
    }
    return bucket_take(&n->bucket, now_us, rate, burst);
}

void gate_credit_absence(struct gate *g, double away_s, uint64_t now_us)
{
    if (!(away_s > 0))
        return;
    if (away_s > GATE_CREDIT_AWAY_MAX_S)
        away_s = GATE_CREDIT_AWAY_MAX_S;
    g->credit_epoch++;
    g->credit = g->cfg.per_node_rate * away_s;
    g->credit_until_us = now_us + (uint64_t)((GATE_CREDIT_WINDOW_S + away_s) * 1e6);
}

static struct gate_outcome hold(struct gate *g, struct gate_node *n, uint64_t now_us)
{
    if (n->held >= g->cfg.hold_per_node)
        return drop("hold_full", "a message of a node whose verdict is pending: "
                                 "attestation.hold_per_node messages are held already");
    if (!rate_ok(g, n, now_us))
        return drop("rate_limited", "a message over limits.per_node_rate");
    n->held++;
    return (struct gate_outcome){.decision = GATE_HOLD};
}

/* ---- events ---- */

static struct gate_outcome on_up(struct gate *g, const char *node, uint64_t now_us, int64_t wall)
{
    struct gate_node *n = node_lookup(g, node, true);
    if (n == NULL)
        return drop("too_many_nodes", "a message from one node too many");
    if (g->cfg.required) {
        node_load(g, n, now_us);
        if (n->verdict == GATE_NOT_ENROLLED)
            return drop("not_enrolled", "a message from a node that is not enrolled");
        if (n->verdict == GATE_UNLOADED)
            return drop("registry_error", "a message: the registry cannot be read");
        if (g->cfg.judging && due(g, n, now_us, wall))
            challenge(g, n, now_us, wall);
        held_settle(g, n);
        if (n->verdict == GATE_QUARANTINED)
            return drop("quarantined", "a message from a quarantined node");
        /* Held while the verdict is pending under an outstanding challenge, or behind held
         * messages whose release has not happened yet. */
        if (n->held > 0 ||
            (n->verdict == GATE_NONE && pending(n) && g->cfg.judging && g->cfg.hold_per_node > 0))
            return hold(g, n, now_us);
        if (n->verdict != GATE_TRUSTED)
            return drop("not_attested", "a message from a node not yet attested");
    } else {
        held_release(g, n); /* attestation no longer required */
        if (n->held > 0)
            return hold(g, n, now_us);
    }
    if (!rate_ok(g, n, now_us))
        return drop("rate_limited", "a message over limits.per_node_rate");
    return (struct gate_outcome){.decision = GATE_RELAY};
}

static struct gate_outcome on_status(struct gate *g, const char *node, uint64_t now_us,
                                     int64_t wall)
{
    if (!g->cfg.required || !g->cfg.judging)
        return consumed;
    struct gate_node *n = node_lookup(g, node, true);
    if (n == NULL)
        return consumed;
    node_load(g, n, now_us);
    if (n->verdict != GATE_NOT_ENROLLED && n->verdict != GATE_UNLOADED && due(g, n, now_us, wall))
        challenge(g, n, now_us, wall);
    return consumed;
}

/* Evidence that is not judged: counted, noted once per node per GATE_NOTE_INTERVAL_S, and
 * taken as a sign of life (a node due for attestation gets a fresh challenge). */
static void unsolicited(struct gate *g, struct gate_node *n, const char *why, uint64_t now_us,
                        int64_t wall)
{
    count(g, n->id, "evidence_unsolicited");
    if (n->last_note == 0 || wall - n->last_note >= GATE_NOTE_INTERVAL_S) {
        char text[256];
        n->last_note = wall;
        snprintf(text, sizeof(text),
                 "attestation evidence not judged: %s (counted evidence_unsolicited; noted "
                 "once per node per %d s)",
                 why, GATE_NOTE_INTERVAL_S);
        note(g, n->id, LOG_NOTICE, "evidence_unsolicited", text);
    }
    if (g->cfg.required && due(g, n, now_us, wall))
        challenge(g, n, now_us, wall);
}

static void judge(struct gate *g, struct gate_node *n, const uint8_t *msg, size_t len, int64_t wall)
{
    struct gate_judgement j;
    uint8_t nonce[GATE_NONCE_LEN];
    char text[256];

    memcpy(nonce, n->nonce, sizeof(nonce));
    challenge_end(g, n); /* one-time: consumed by the answer, good or bad */
    memset(&j, 0, sizeof(j));
    if (len > g->cfg.evidence_max) {
        j.code = GATE_R_TOO_LARGE;
        snprintf(j.reason, sizeof(j.reason), "evidence larger than %zu bytes", g->cfg.evidence_max);
    } else {
        g->ops.verify(g->ops.ctx, n->id, msg, len, n->pub, nonce, &j);
        j.reason[sizeof(j.reason) - 1] = '\0';
        j.fw_version[sizeof(j.fw_version) - 1] = '\0';
        j.profile[sizeof(j.profile) - 1] = '\0';
        if (j.trusted != (j.code == GATE_R_ATTESTED) || (unsigned)j.code >= GATE_REASON__COUNT) {
            /* a verifier that contradicts itself trusts nobody */
            j.trusted = false;
            j.code = GATE_R_INTERNAL;
            snprintf(j.reason, sizeof(j.reason), "the verifier gave no consistent verdict");
        }
    }
    explicit_bzero(nonce, sizeof(nonce));
    count(g, n->id, j.trusted ? "attest_trusted" : "attest_quarantined");
    snprintf(text, sizeof(text), "attestation verdict %s: %s",
             j.trusted ? "trusted" : "quarantined", j.reason);
    note(g, n->id, j.trusted ? LOG_NOTICE : LOG_WARNING, gate_reason_str(j.code), text);
    set_verdict(g, n, j.trusted ? GATE_TRUSTED : GATE_QUARANTINED, j.code, j.reason, j.fw_version,
                j.profile, wall, true);
}

static struct gate_outcome on_evidence(struct gate *g, const char *node, const uint8_t *msg,
                                       size_t len, uint64_t now_us, int64_t wall)
{
    uint8_t claimed[GATE_NONCE_LEN];
    struct gate_node *n = node_lookup(g, node, true);
    if (n == NULL)
        return drop("too_many_nodes", "evidence from one node too many");
    node_load(g, n, now_us);
    if (n->verdict == GATE_NOT_ENROLLED)
        return drop("attest_unknown_node",
                    "attestation evidence from a node that is not enrolled (unknown key)");
    if (n->verdict == GATE_UNLOADED)
        return consumed;
    if (!rate_ok(g, n, now_us))
        return drop("rate_limited", "attestation evidence over limits.per_node_rate");
    if (!g->cfg.judging)
        return drop("attestation_disabled", "attestation evidence (no attestation.reference_file "
                                            "or image_dir configured)");
    if (expired(n, now_us))
        expire(g, n, wall);
    bool has_nonce = len <= g->cfg.evidence_max && g->ops.peek_nonce(g->ops.ctx, msg, len, claimed);
    if (has_nonce && past_has(n, claimed))
        unsolicited(g, n, "a copy of an answer to an earlier challenge of this node", now_us, wall);
    else if (!n->challenge_out)
        unsolicited(g, n, "no challenge of this node is outstanding", now_us, wall);
    else
        judge(g, n, msg, len, wall);
    explicit_bzero(claimed, sizeof(claimed));
    return consumed;
}

/* Every event starts by giving free challenge slots to the queue (slots a reload added) and
 * ends so (slots the event freed). A telemetry message is the exception at the end: the
 * message it may have just held is not stored yet, so nothing may settle its node's held
 * messages after the decision; the only slot it can free (its node's expired challenge,
 * in challenge_at) is given on at once, before the decision. */
struct gate_outcome gate_on_up(struct gate *g, const char *node, uint64_t now_us, int64_t wall)
{
    pump(g, now_us, wall);
    return on_up(g, node, now_us, wall);
}

struct gate_outcome gate_on_status(struct gate *g, const char *node, uint64_t now_us, int64_t wall)
{
    pump(g, now_us, wall);
    struct gate_outcome o = on_status(g, node, now_us, wall);
    pump(g, now_us, wall);
    return o;
}

struct gate_outcome gate_on_evidence(struct gate *g, const char *node, const uint8_t *msg,
                                     size_t len, uint64_t now_us, int64_t wall)
{
    pump(g, now_us, wall);
    struct gate_outcome o = on_evidence(g, node, msg, len, now_us, wall);
    pump(g, now_us, wall);
    return o;
}

/* O(expired + log outstanding): the heap's top is the earliest expiry. */
uint64_t gate_on_timer(struct gate *g, uint64_t now_us, int64_t wall)
{
    while (g->n_out > 0 && now_us >= heap_key(g, 0))
        expire(g, node_at(g, g->heap[0]), wall); /* challenge_end takes it off the heap */
    pump(g, now_us, wall);
    if (g->n_out == 0)
        return 0;
    uint64_t next = heap_key(g, 0);
    return next > now_us + GATE_SWEEP_MIN_US ? next : now_us + GATE_SWEEP_MIN_US;
}

int gate_request_challenge(struct gate *g, const char *node, uint64_t now_us, int64_t wall)
{
    pump(g, now_us, wall);
    struct gate_node *n = node_lookup(g, node, true);
    if (n == NULL)
        return -ENOSPC;
    node_load(g, n, now_us);
    if (n->verdict == GATE_NOT_ENROLLED)
        return -ENOENT;
    if (n->verdict == GATE_UNLOADED)
        return -EIO;
    if (expired(n, now_us))
        expire(g, n, wall); /* an unanswered challenge still counts */
    if (n->challenge_out)
        challenge_end(g, n); /* replaced: a late answer to it is not judged */
    queue_remove(g, n);      /* it goes first instead */
    n->last_challenge_us = 0;
    challenge_at(g, n, now_us, wall, true);
    if (!pending(n) && n->verdict != GATE_TRUSTED)
        held_drop(g, n, "hold_expired"); /* held under no challenge: nothing bounds them */
    int r = pending(n) ? 0 : -ENOTCONN;
    pump(g, now_us, wall); /* the slot it may have freed */
    return r;
}

void gate_forget(struct gate *g, const char *node, bool removed, uint64_t now_us, int64_t wall)
{
    struct gate_node *n = node_lookup(g, node, false);
    if (n != NULL) {
        n->verdict = GATE_UNLOADED;
        if (removed && n->challenge_out)
            challenge_end(g, n);
        if (removed) {
            queue_remove(g, n);
            held_drop(g, n, "not_enrolled");
        }
    }
    pump(g, now_us, wall);
}

void gate_hold_failed(struct gate *g, const char *node)
{
    struct gate_node *n = node_lookup(g, node, false);
    if (n != NULL && n->held > 0)
        n->held--;
}

void gate_restore_held(struct gate *g, const char *node, uint64_t held, uint64_t now_us,
                       int64_t wall)
{
    pump(g, now_us, wall);
    struct gate_node *n = node_lookup(g, node, true);
    if (n == NULL || held == 0)
        return; /* node table full: the rows stay held in the spool (a restart retries) */
    node_load(g, n, now_us);
    n->held = held > UINT32_MAX - n->held ? UINT32_MAX : n->held + (unsigned)held;
    if (n->verdict == GATE_NONE && g->cfg.required) {
        if (g->cfg.judging)
            challenge(g, n, now_us, wall);
        if (!pending(n))
            note(g, n->id, LOG_WARNING, "hold_expired",
                 "held messages dropped at start: the node has no verdict and cannot be "
                 "challenged");
    }
    held_settle(g, n); /* by the verdict; kept under the challenge, or if unreadable */
    pump(g, now_us, wall);
}

bool gate_touch_due(struct gate *g, const char *node, int64_t wall, int64_t interval_s)
{
    struct gate_node *n = node_lookup(g, node, false);
    if (n == NULL || wall - n->last_touch < interval_s)
        return false;
    n->last_touch = wall;
    return true;
}

enum gate_verdict gate_node_verdict(const struct gate *g, const char *node)
{
    size_t slot;
    const struct gate_node *n = node_find(g, node, &slot);
    return n == NULL ? GATE_UNLOADED : n->verdict;
}

unsigned gate_node_held(const struct gate *g, const char *node)
{
    size_t slot;
    const struct gate_node *n = node_find(g, node, &slot);
    return n == NULL ? 0 : n->held;
}

bool gate_node_challenged(const struct gate *g, const char *node)
{
    size_t slot;
    const struct gate_node *n = node_find(g, node, &slot);
    return n != NULL && n->challenge_out;
}

bool gate_node_queued(const struct gate *g, const char *node)
{
    size_t slot;
    const struct gate_node *n = node_find(g, node, &slot);
    return n != NULL && n->queued;
}

void gate_challenges(const struct gate *g, size_t *ret_outstanding, size_t *ret_queued)
{
    *ret_outstanding = g->n_out;
    *ret_queued = g->n_queued;
}
