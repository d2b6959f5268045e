/* The attestation gate: fleetgwd's node table and attestation state machine, with no I/O.
 *
 * Owns, per node: the cached enrollment (IAK point) and verdict, the outstanding challenge
 * (nonce, expiry) and the nonces issued before it, the per-node token bucket and the
 * last-seen spacing. Decides for every node message whether it is relayed, dropped (with
 * a reason) or consumed by the gate, and when a node is challenged, judged or loses its
 * verdict. It never touches a socket, a database or a clock: the caller passes the time,
 * and everything outside comes in and goes out through struct gate_ops (registry read,
 * evidence verification, randomness, and the actions: send a challenge, persist a
 * verdict, publish the node's state upstream, count, log a note). Unit-tested
 * (test_gate.c) and fuzzed (fuzz_gate.c) without libmosquitto, sd-event or SQLite.
 *
 * Evidence rules (issue 21):
 *  - evidence is rate-limited per node like any other node message;
 *  - evidence is judged only while a challenge of that node is outstanding, and only if it
 *    is not a late copy of an answer to an earlier nonce of that node (an answer already
 *    judged, or one to a challenge that expired or was replaced). Everything else is not
 *    judged: counted `evidence_unsolicited`, noted once per node per GATE_NOTE_INTERVAL_S,
 *    and taken as a sign of life (a node due for attestation is challenged);
 *  - a challenge the caller accepted (handed to the broker client, even while the edge is
 *    down and it is only queued) is outstanding;
 *  - the verdict is persisted and published only when the verdict, its reason, the
 *    firmware version or the token's profile changes (or the last write failed); counters
 *    and notes say every judgement.
 *
 * Holding (issue 15): a message of an enrolled node that has no verdict yet ("unknown") and
 * an outstanding challenge is not dropped but held (GATE_HOLD: the caller stores it marked
 * held), at most gate_config.hold_per_node per node. The gate counts a node's held
 * messages and settles them with one action when their fate is known:
 *  - GATE_ACT_RELEASE when the node is trusted (by evidence judged against its own
 *    outstanding nonce, or by a trusted row loaded from the registry, which was written
 *    under that same rule), or when attestation.required is off: the caller hands them to
 *    the drain in their order, before any later message of the node (a later message is
 *    held behind them while a release is outstanding);
 *  - GATE_ACT_DROP_HELD with counter "quarantined" when the node is quarantined,
 *    "hold_expired" when the challenge that let them be held expires unanswered (the
 *    nonce's lifetime is their limit), "not_enrolled" when the node is removed.
 * A restart: gate_restore_held() takes the held rows found in the spool back and settles
 * them by the node's verdict then (challenging a node that still has none).
 *
 * Storm control (issue 15): at most gate_config.challenges_max challenges are outstanding.
 * A node due for one while all slots are taken waits in a queue, in arrival order (an
 * operator's gate_request_challenge goes to its front), and is challenged when an answer, an
 * expiry or a removal frees a slot, at the end of that event. Its nonce's lifetime starts
 * when it is sent, so a storm of arrivals never makes challenges expire while they wait.
 * A waiting node counts as pending: its messages are held as under an outstanding challenge.
 * Nothing per node costs O(fleet): the node table is a hash index over nodes allocated in
 * order of first message, outstanding challenges sit in a heap by expiry (gate_on_timer
 * touches only the expired ones), the queue is a linked list through the nodes. */
#ifndef FLEETGWD_GATE_H
#define FLEETGWD_GATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "relay.h"

#define GATE_NONCE_LEN       32
#define GATE_PUB_LEN         65
#define GATE_PAST_NONCES     3  /* earlier nonces of a node recognised as late copies */
#define GATE_NOTE_INTERVAL_S 60 /* unsolicited evidence noted once per node per interval */
#define GATE_SWEEP_MIN_US    1000000ULL
#define GATE_NODES_MAX       65536

enum gate_verdict {
    GATE_UNLOADED = 0, /* not read from the registry yet (or the read failed) */
    GATE_NOT_ENROLLED, /* not in the registry */
    GATE_NONE,         /* enrolled, never judged ("unknown" in the registry) */
    GATE_TRUSTED,
    GATE_QUARANTINED,
    GATE_VERDICT__COUNT
};

/* Why a verdict is what it is: the REASON= token of the journal (gate_reason_str). */
enum gate_reason {
    GATE_R_NONE = 0,            /* no verdict yet */
    GATE_R_UNKNOWN,             /* loaded from the registry: the sentence is there */
    GATE_R_ATTESTED,            /* trusted: signature, nonce, lifecycle, measurements */
    GATE_R_BAD_EVIDENCE,        /* not an attest-evidence message */
    GATE_R_TOO_LARGE,           /* larger than gate_config.evidence_max */
    GATE_R_BAD_SIGNATURE,       /* COSE signature does not verify with the enrolled key */
    GATE_R_NONCE_MISMATCH,      /* the token's nonce is not the outstanding one */
    GATE_R_BAD_TOKEN,           /* any other token defect (structure, claims) */
    GATE_R_INSTANCE_MISMATCH,   /* instance id is not the enrolled key's */
    GATE_R_LIFECYCLE,           /* security lifecycle not allowed */
    GATE_R_UNKNOWN_MEASUREMENT, /* a software component is not a reference value */
    GATE_R_TIMEOUT,             /* the challenge expired unanswered */
    GATE_R_INTERNAL,            /* out of memory or the like */
    GATE_R_PROFILE,             /* the token's PSA profile is not in attestation.profiles */
    GATE_REASON__COUNT
};

const char *gate_reason_str(enum gate_reason r);
/* "unloaded", "not_enrolled", "unknown", "trusted", "quarantined" (the registry's words). */
const char *gate_verdict_str(enum gate_verdict v);

/* What the verifier found (gate_ops.verify). */
struct gate_judgement {
    bool trusted;
    enum gate_reason code;
    char reason[160];    /* the sentence */
    char fw_version[65]; /* "" when unknown */
    /* The first software component's measurement value when the token verified (also when
     * the verdict is untrusted for a lifecycle or measurement reason); gate.c copies it
     * through untouched (attest_result.has_measurement). */
    bool has_measurement;
    uint8_t measurement[32];
    char profile[65]; /* the token's PSA profile identifier when it verified, else "" */
};

/* A node's registry row, as gate_ops.load returns it. */
struct gate_record {
    /* The enrolled key as the loader encodes it (gate_io: a P-256 point 0x04..., or 0x00 and
     * a symmetric IAK's id); the gate only hands it to verify. */
    uint8_t pub[GATE_PUB_LEN];
    enum gate_verdict verdict; /* GATE_NONE, GATE_TRUSTED or GATE_QUARANTINED */
    int64_t verdict_time;      /* epoch s */
    char fw_version[65];
    char profile[65]; /* the profile of the last verdict's token, "" if none */
};

enum gate_action_kind {
    GATE_ACT_CHALLENGE, /* publish an attest-challenge: 0 = accepted (sent or queued) */
    GATE_ACT_PERSIST,   /* write the verdict to the registry: 0 = persisted */
    GATE_ACT_PUBLISH,   /* queue the retained node state upstream */
    GATE_ACT_COUNT,     /* add 1 to a counter */
    GATE_ACT_NOTE,      /* log a sentence with a REASON= token */
    GATE_ACT_RELEASE,   /* hand the node's held messages to the drain, in order: 0 = done */
    GATE_ACT_DROP_HELD, /* delete the node's held messages, counted under `counter` */
};

struct gate_action {
    enum gate_action_kind kind;
    const char *node;
    /* CHALLENGE */
    const uint8_t *nonce; /* GATE_NONCE_LEN bytes */
    uint32_t ttl_s;
    uint64_t expiry_us;
    /* PERSIST, PUBLISH */
    enum gate_verdict verdict;
    enum gate_reason code;
    const char *reason;     /* the sentence */
    const char *fw_version; /* PERSIST: NULL keeps the registry's */
    const char *profile;    /* PERSIST: NULL keeps the registry's; PUBLISH: "" if unknown */
    int64_t time;
    bool seen; /* PERSIST: on something the node sent (last_seen = time) */
    /* COUNT; DROP_HELD: the drop reason */
    const char *counter;
    /* RELEASE, DROP_HELD: how many messages the gate counted as held */
    unsigned held;
    /* NOTE (and the token of COUNT's log, if any) */
    int priority; /* syslog priority */
    const char *token;
    const char *text;
};

struct gate_ops {
    /* The node's registry row: 0, -ENOENT when not enrolled, other negative on error. */
    int (*load)(void *ctx, const char *node, struct gate_record *ret);
    /* Full verification of node's evidence (msg, len) with the enrolled key and the nonce. */
    void (*verify)(void *ctx, const char *node, const uint8_t *msg, size_t len,
                   const uint8_t pub[GATE_PUB_LEN], const uint8_t nonce[GATE_NONCE_LEN],
                   struct gate_judgement *ret);
    /* The nonce the evidence claims to answer, read without verifying anything: true and
     * nonce filled when it holds a GATE_NONCE_LEN-byte nonce. */
    bool (*peek_nonce)(void *ctx, const uint8_t *msg, size_t len, uint8_t nonce[GATE_NONCE_LEN]);
    /* Fresh unpredictable bytes: 0 or negative. */
    int (*random)(void *ctx, uint8_t *buf, size_t len);
    /* Carries out one action; the return value is the outcome (0 = done). */
    int (*act)(void *ctx, const struct gate_action *a);
    void *ctx;
};

struct gate_config {
    bool required; /* only trusted nodes are relayed */
    bool judging;  /* reference values are loaded: evidence can be judged */
    int nonce_ttl_s;
    int interval_s; /* a trusted verdict holds this long */
    double per_node_rate, per_node_burst;
    size_t evidence_max;     /* larger evidence is refused unread */
    unsigned hold_per_node;  /* messages held per node while its verdict is pending; 0 = none */
    unsigned challenges_max; /* challenges outstanding at once; 0 = no bound */
};

enum gate_decision {
    GATE_RELAY,    /* relay it (then gate_touch_due) */
    GATE_DROP,     /* count and drop it: drop_reason (token), drop_what (sentence) */
    GATE_CONSUMED, /* the gate took it (evidence, status): nothing else to do */
    GATE_HOLD,     /* store it held (spool_hold); gate_hold_failed() if it was not stored */
};

struct gate_outcome {
    enum gate_decision decision;
    const char *drop_reason;
    const char *drop_what;
};

struct gate;

int gate_new(const struct gate_config *cfg, const struct gate_ops *ops, size_t max_nodes,
             struct gate **ret) __attribute__((warn_unused_result));
void gate_free(struct gate *g);

/* Policy reloaded: new parameters; every cached verdict, challenge and bucket is kept; held
 * messages are settled under the new parameters (released if attestation is no longer
 * required). */
void gate_reload(struct gate *g, const struct gate_config *cfg);

/* fleetgwd was away from the edge broker for away_s seconds (its own outage, or a lost edge
 * connection) and is back: the broker now hands over at once what it queued for fleetgwd's
 * session meanwhile. Each node's rate limit gets, once, per_node_rate x away_s tokens above
 * its burst: what the node could have sent within its limit while fleetgwd was away, so the
 * backlog is not dropped as rate_limited, while a node that sent faster than its limit loses
 * the excess as it would have live. The credit lasts until spent or until
 * GATE_CREDIT_WINDOW_S + away_s from now, then buckets are back to per_node_burst. away_s
 * is capped at GATE_CREDIT_AWAY_MAX_S; 0 or less clears nothing and gives nothing. */
#define GATE_CREDIT_WINDOW_S   60
#define GATE_CREDIT_AWAY_MAX_S 86400
void gate_credit_absence(struct gate *g, double away_s, uint64_t now_us);

/* A node message on fleet/<node>/up/...: relay or drop (may challenge the node). */
struct gate_outcome gate_on_up(struct gate *g, const char *node, uint64_t now_us, int64_t wall);
/* A node-status message: challenges the node when it is due. */
struct gate_outcome gate_on_status(struct gate *g, const char *node, uint64_t now_us, int64_t wall);
/* Evidence on fleet/<node>/attest/evidence. */
struct gate_outcome gate_on_evidence(struct gate *g, const char *node, const uint8_t *msg,
                                     size_t len, uint64_t now_us, int64_t wall);
/* The expiry timer fired: expires the challenges due by now_us. Returns when to fire next
 * (CLOCK_MONOTONIC us, at least GATE_SWEEP_MIN_US later), 0 when nothing is outstanding. */
uint64_t gate_on_timer(struct gate *g, uint64_t now_us, int64_t wall);
/* A message the gate said GATE_HOLD for was not stored (held bytes full, spool full,
 * error): it no longer counts as held. */
void gate_hold_failed(struct gate *g, const char *node);
/* At start: node has n held messages in the spool. They are settled by its verdict now
 * (released when trusted, dropped when quarantined or not enrolled) or, when it has none,
 * stay held under a fresh challenge (dropped, "hold_expired", if none can be sent). */
void gate_restore_held(struct gate *g, const char *node, uint64_t n, uint64_t now_us, int64_t wall);
/* The operator asks for a fresh challenge now (replacing an outstanding one), sent at once or,
 * when challenges_max are outstanding, first in the queue.
 * 0 (sent, or queued), -ENOENT (not enrolled), -EIO (registry), -ENOSPC (node table full),
 * -ENOTCONN (the challenge was not accepted), -EPERM (no reference values: nothing could be
 * judged). */
int gate_request_challenge(struct gate *g, const char *node, uint64_t now_us, int64_t wall)
    __attribute__((warn_unused_result));
/* The node was enrolled or removed: its cached row is read again at its next message
 * (removed: its outstanding or queued challenge is dropped too, and the slot given on). */
void gate_forget(struct gate *g, const char *node, bool removed, uint64_t now_us, int64_t wall);
/* After a relayed message was stored: true (once per LAST_SEEN interval) when the caller
 * should update the node's last_seen. */
bool gate_touch_due(struct gate *g, const char *node, int64_t wall, int64_t interval_s);

/* For tests and the control API: the cached verdict (GATE_UNLOADED if unknown). */
enum gate_verdict gate_node_verdict(const struct gate *g, const char *node);
/* How many of node's messages the gate counts as held. */
unsigned gate_node_held(const struct gate *g, const char *node);
/* True while a challenge of node is outstanding. */
bool gate_node_challenged(const struct gate *g, const char *node);
/* True while node waits in the challenge queue for a slot. */
bool gate_node_queued(const struct gate *g, const char *node);
/* How many challenges are outstanding, and how many nodes wait for a slot. */
void gate_challenges(const struct gate *g, size_t *ret_outstanding, size_t *ret_queued);

#endif
