/* fuzz_gate: random event sequences against the attestation gate (gate.c) with a fake
 * registry, a fake verifier and a sink that fails on request. Checks the invariant:
 *   a node becomes trusted only by valid evidence for its own outstanding nonce
 * (signed by its own key, carrying the nonce of the challenge the gate sent it and that is
 * still outstanding and unexpired), or by loading a trusted verdict that was persisted under
 * that same rule. Also: a verdict is never persisted unless it was just judged or expired,
 * and an outstanding challenge is always one the sink accepted.
 * Held messages (issue 15): a held message is never released unless its node is trusted by
 * that same rule (or attestation is not required any more); a node's message is never
 * relayed while messages of it are held (the order per node); a release or drop covers
 * exactly the messages held; the per-node bound holds.
 * Storm control: never more challenges outstanding than challenges_max (the largest since
 * the last reload lowered it, while those drain); no node waits in the queue while a slot
 * is free; queued nodes are challenged in the order they were queued (an operator's request
 * goes first); a node is never queued and outstanding at once.
 *
 * Input: a sequence of events, each one opcode byte and its argument bytes. */
#include "gate.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NODES  4  /* "n0".."n3"; n3 is never enrolled */
#define EV_LEN 36 /* 'E' 'V' nonce[32] signer kind */

static const char *const names[NODES] = {"n0", "n1", "n2", "n3"};

struct model {
    enum gate_verdict reg[NODES]; /* the fake registry */
    uint8_t nonce[NODES][GATE_NONCE_LEN];
    uint64_t expiry[NODES];
    bool sent[NODES]; /* the sink accepted a challenge for it at least once */
    int challenge_rc, persist_rc;
    uint64_t counter;
    /* the event being processed */
    int ev_node;   /* node of an evidence event, -1 otherwise */
    bool ev_valid; /* its evidence is valid for that node's outstanding nonce */
    bool may_persist;
    bool required;        /* the gate's cfg.required */
    bool release_fails;   /* the sink cannot release (the messages stay held) */
    unsigned held[NODES]; /* GATE_HOLD answers not yet released, dropped or failed */
    unsigned hold_per_node;
    struct gate *g;
    /* storm control */
    unsigned k, k_hi;    /* cfg.challenges_max, and the bound outstanding may still be at */
    int64_t qseq[NODES]; /* order seen queued (0 = not queued; front requests negative) */
    int64_t seq, front_seq;
    int front_node; /* the node of an operator's request in this event, else -1 */
    bool slack;     /* a reload may have added slots: given at the next event that pumps */
};

static int node_index(const char *id)
{
    for (int i = 0; i < NODES; i++)
        if (strcmp(id, names[i]) == 0)
            return i;
    abort();
}

static int f_load(void *ctx, const char *node, struct gate_record *ret)
{
    struct model *m = ctx;
    int i = node_index(node);
    if (i == 3)
        return -ENOENT;
    memset(ret->pub, i + 1, sizeof(ret->pub));
    ret->verdict = m->reg[i] ? m->reg[i] : GATE_NONE;
    ret->verdict_time = 0;
    return 0;
}

static void f_verify(void *ctx, const char *node, const uint8_t *msg, size_t len,
                     const uint8_t pub[GATE_PUB_LEN], const uint8_t nonce[GATE_NONCE_LEN],
                     struct gate_judgement *j)
{
    (void)ctx;
    (void)node;
    memset(j, 0, sizeof(*j));
    j->code = GATE_R_BAD_EVIDENCE;
    snprintf(j->reason, sizeof(j->reason), "refused");
    if (len != EV_LEN || msg[0] != 'E' || msg[1] != 'V')
        return;
    if (msg[34] + 1 != pub[0]) {
        j->code = GATE_R_BAD_SIGNATURE;
        return;
    }
    if (memcmp(msg + 2, nonce, GATE_NONCE_LEN) != 0) {
        j->code = GATE_R_NONCE_MISMATCH;
        return;
    }
    if (msg[35] % 4 == 0) {
        j->code = GATE_R_UNKNOWN_MEASUREMENT;
        return;
    }
    j->trusted = true;
    j->code = GATE_R_ATTESTED;
    snprintf(j->fw_version, sizeof(j->fw_version), "%u", msg[35] % 3u);
}

static bool f_peek(void *ctx, const uint8_t *msg, size_t len, uint8_t nonce[GATE_NONCE_LEN])
{
    (void)ctx;
    if (len != EV_LEN || msg[0] != 'E' || msg[1] != 'V')
        return false;
    memcpy(nonce, msg + 2, GATE_NONCE_LEN);
    return true;
}

static int f_random(void *ctx, uint8_t *buf, size_t len)
{
    struct model *m = ctx;
    m->counter++;
    memset(buf, 0, len);
    memcpy(buf, &m->counter, sizeof(m->counter) < len ? sizeof(m->counter) : len);
    return 0;
}

static int f_act(void *ctx, const struct gate_action *a)
{
    struct model *m = ctx;
    int i = node_index(a->node);
    switch (a->kind) {
    case GATE_ACT_CHALLENGE:
        for (int j = 0; j < NODES; j++)
            if (j != i && m->qseq[j] != 0 && gate_node_queued(m->g, names[j]) &&
                i != m->front_node && (m->qseq[i] == 0 || m->qseq[j] < m->qseq[i]))
                abort(); /* challenged ahead of a node queued before it */
        if (m->challenge_rc < 0)
            return m->challenge_rc;
        memcpy(m->nonce[i], a->nonce, GATE_NONCE_LEN);
        m->expiry[i] = a->expiry_us;
        m->sent[i] = true;
        return 0;
    case GATE_ACT_PERSIST:
        if (!m->may_persist)
            abort(); /* a write that no judgement or expiry asked for */
        if (a->verdict == GATE_TRUSTED && !(m->ev_node == i && m->ev_valid))
            abort(); /* persisted trusted without valid evidence for its own nonce */
        if (m->persist_rc < 0)
            return m->persist_rc;
        m->reg[i] = a->verdict;
        return 0;
    case GATE_ACT_RELEASE:
        if (a->held != m->held[i] || a->held == 0)
            abort(); /* a release that is not exactly the messages held */
        /* The gate's verdict is trusted (and the loop below checks, after every event, that
         * a node only ever becomes trusted by valid evidence or a registry row written so). */
        if (m->required && gate_node_verdict(m->g, a->node) != GATE_TRUSTED)
            abort(); /* held messages released without the node trusted */
        if (m->release_fails)
            return -EIO;
        m->held[i] = 0;
        return 0;
    case GATE_ACT_DROP_HELD:
        if (a->held != m->held[i] || a->held == 0 || a->counter == NULL)
            abort();
        m->held[i] = 0;
        return 0;
    case GATE_ACT_PUBLISH:
    case GATE_ACT_COUNT:
    case GATE_ACT_NOTE:
        if (a->kind == GATE_ACT_NOTE && (a->token == NULL || a->text == NULL))
            abort();
        return 0;
    }
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct model m;
    struct gate_config cfg = {.required = true,
                              .judging = true,
                              .nonce_ttl_s = 3,
                              .interval_s = 20,
                              .per_node_rate = 1000,
                              .per_node_burst = 1000,
                              .evidence_max = 64,
                              .hold_per_node = 2,
                              .challenges_max = 2};
    struct gate_ops ops = {f_load, f_verify, f_peek, f_random, f_act, &m};
    struct gate *g = NULL;
    uint64_t now = 1000000;
    int64_t wall = 1700000000;
    size_t pos = 0;

    memset(&m, 0, sizeof(m));
    m.required = cfg.required;
    m.hold_per_node = cfg.hold_per_node;
    m.k = m.k_hi = cfg.challenges_max;
    if (gate_new(&cfg, &ops, 8, &g) != 0)
        abort();
    m.g = g;
#define NEXT() (pos < size ? data[pos++] : 0)
    for (unsigned steps = 0; pos < size && steps < 4096; steps++) {
        uint8_t op = NEXT(), arg = NEXT();
        int node = arg % NODES;
        const char *id = names[node];
        enum gate_verdict before[NODES];
        for (int i = 0; i < NODES; i++)
            before[i] = gate_node_verdict(g, names[i]);
        bool was_challenged = gate_node_challenged(g, id);
        m.ev_node = -1;
        m.ev_valid = false;
        m.may_persist = false;
        m.front_node = -1;

        switch (op % 12) {
        case 0: {
            m.may_persist = true; /* an expired challenge found on the message */
            struct gate_outcome o = gate_on_up(g, id, now, wall);
            if (o.decision == GATE_RELAY && m.held[node] > 0)
                abort(); /* relayed ahead of the node's held messages */
            if (o.decision == GATE_HOLD && ++m.held[node] > m.hold_per_node)
                abort(); /* over the per-node bound */
            break;
        }
        case 1:
            m.may_persist = true;
            (void)gate_on_status(g, id, now, wall);
            break;
        case 2: {
            uint8_t ev[EV_LEN + 8];
            size_t len = EV_LEN;
            uint8_t src = NEXT(), signer = NEXT(), kind = NEXT();
            ev[0] = 'E';
            ev[1] = 'V';
            switch (src % 5) {
            case 0: /* its own last challenge */
                memcpy(ev + 2, m.nonce[node], GATE_NONCE_LEN);
                break;
            case 1: /* another node's */
                memcpy(ev + 2, m.nonce[(node + 1) % NODES], GATE_NONCE_LEN);
                break;
            case 2: /* a guess */
                memset(ev + 2, 0, GATE_NONCE_LEN);
                ev[2] = NEXT();
                break;
            case 3: /* garbage or too long */
                len = (size_t)(kind % (sizeof(ev) + 1));
                memset(ev + 2, kind, sizeof(ev) - 2);
                break;
            default:
                memcpy(ev + 2, m.nonce[node], GATE_NONCE_LEN);
                ev[2 + signer % GATE_NONCE_LEN] ^= 1;
                break;
            }
            ev[34] = (uint8_t)(signer % NODES);
            ev[35] = kind;
            m.ev_node = node;
            m.ev_valid = len == EV_LEN && was_challenged && now < m.expiry[node] &&
                         memcmp(ev + 2, m.nonce[node], GATE_NONCE_LEN) == 0 && ev[34] == node &&
                         kind % 4 != 0;
            m.may_persist = true;
            (void)gate_on_evidence(g, id, ev, len, now, wall);
            break;
        }
        case 3:
            m.may_persist = true;
            (void)gate_on_timer(g, now, wall);
            break;
        case 4: {
            uint64_t d = (uint64_t)arg * 50000ULL;
            now += d;
            wall += (int64_t)(d / 1000000ULL);
            break;
        }
        case 5:
            cfg.required = arg & 1;
            cfg.judging = (arg & 2) != 0;
            cfg.nonce_ttl_s = 1 + (arg >> 2) % 8;
            cfg.interval_s = 1 + NEXT() % 60;
            cfg.per_node_rate = 1 + NEXT();
            cfg.hold_per_node = NEXT() % 4;
            cfg.challenges_max = 1 + arg % 3;
            m.k = cfg.challenges_max;
            if (m.k > m.k_hi)
                m.k_hi = m.k;
            m.required = cfg.required;
            if (cfg.hold_per_node > m.hold_per_node)
                m.hold_per_node = cfg.hold_per_node; /* held before the reload stay */
            gate_reload(g, &cfg);
            break;
        case 6:
            m.may_persist = true;
            m.front_node = node;
            if (gate_request_challenge(g, id, now, wall) == 0 && !gate_node_challenged(g, id) &&
                !gate_node_queued(g, id))
                abort(); /* "accepted" must mean outstanding or first in the queue */
            if (gate_node_queued(g, id))
                m.qseq[node] = --m.front_seq;
            break;
        case 7:
            gate_forget(g, id, arg & 0x80, now, wall);
            break;
        case 8:
            m.challenge_rc = (arg & 1) ? -ENOTCONN : 0;
            m.persist_rc = (arg & 2) ? -EIO : 0;
            m.release_fails = (arg & 4) != 0;
            break;
        case 10: /* the caller could not store a held message */
            gate_hold_failed(g, id);
            if (m.held[node] > 0)
                m.held[node]--;
            break;
        case 11: /* a restart with held rows: a fresh gate, the model's registry kept */
            m.may_persist = true;
            gate_free(g);
            if (gate_new(&cfg, &ops, 8, &g) != 0)
                abort();
            m.g = g;
            m.k_hi = m.k;
            for (int i = 0; i < NODES; i++) {
                m.sent[i] = false;
                m.qseq[i] = 0;
                if (m.held[i] > 0)
                    gate_restore_held(g, names[i], m.held[i], now, wall);
            }
            break;
        default:
            (void)gate_touch_due(g, id, wall, arg % 5);
            break;
        }
        for (int i = 0; i < NODES; i++) {
            enum gate_verdict v = gate_node_verdict(g, names[i]);
            if (v == GATE_TRUSTED && before[i] != GATE_TRUSTED && !(m.ev_node == i && m.ev_valid) &&
                m.reg[i] != GATE_TRUSTED)
                abort(); /* trusted without valid evidence for its own outstanding nonce */
            if (gate_node_challenged(g, names[i]) && !m.sent[i])
                abort(); /* outstanding without the sink having accepted a challenge */
            if (gate_node_held(g, names[i]) != m.held[i])
                abort(); /* the gate's count of held messages is not the sink's */
            if (m.required && m.held[i] > 0 && v == GATE_NONE &&
                !gate_node_challenged(g, names[i]) && !gate_node_queued(g, names[i]))
                abort(); /* held under no pending challenge: nothing bounds them */
            if (gate_node_challenged(g, names[i]) && gate_node_queued(g, names[i]))
                abort(); /* queued and outstanding at once */
            if (i == 3 && v != GATE_UNLOADED && v != GATE_NOT_ENROLLED)
                abort(); /* a node that is not enrolled has no verdict */
            if (!gate_node_queued(g, names[i]))
                m.qseq[i] = 0;
            else if (m.qseq[i] == 0)
                m.qseq[i] = ++m.seq; /* queued in this event, behind the others */
        }
        size_t out = 0, queued = 0, n_out = 0, n_queued = 0;
        for (int i = 0; i < NODES; i++) {
            out += gate_node_challenged(g, names[i]);
            queued += gate_node_queued(g, names[i]);
        }
        gate_challenges(g, &n_out, &n_queued);
        if (out != n_out || queued != n_queued)
            abort(); /* the gate's counts are not its nodes' */
        if (out <= m.k)
            m.k_hi = m.k; /* drained to the current bound */
        if (out > m.k_hi)
            abort(); /* more outstanding than challenges_max */
        unsigned kind = op % 12u;
        if (kind == 5)
            m.slack = true;
        else if (kind <= 3 || kind == 6 || kind == 7 || kind == 11)
            m.slack = false; /* events that give free slots to the queue */
        if (queued > 0 && out < m.k && !m.slack)
            abort(); /* a node waits while a slot is free */
    }
#undef NEXT
    gate_free(g);
    return 0;
}
