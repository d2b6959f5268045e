/* gate_internal.h: what gate.c (the attestation state machine) and gate_table.c (the node
 * table, the expiry heap, the challenge queue) share. Not for other modules: gate.h is the API. */
#ifndef FLEETGWD_GATE_INTERNAL_H
#define FLEETGWD_GATE_INTERNAL_H

#include "gate.h"

#include <stdbool.h>
#include <stdint.h>

#define NOT_ENROLLED_RECHECK_US 2000000ULL /* an enrollment takes effect this quickly */

struct gate_node {
    char id[RELAY_NODE_MAX + 1];
    bool used;
    struct token_bucket bucket;
    uint32_t credit_epoch; /* the gate's credit_epoch when this node last took its credit */
    int64_t last_touch;    /* last registry last_seen update (epoch s) */
    /* attestation state, cached from the registry */
    enum gate_verdict verdict;
    enum gate_reason code;
    bool persist_failed; /* the last verdict write failed: write the next one regardless */
    uint64_t loaded_us;
    int64_t verdict_time;
    char fw_version[65];
    char profile[65];
    uint8_t pub[GATE_PUB_LEN];
    /* the outstanding challenge */
    bool challenge_out;
    uint8_t nonce[GATE_NONCE_LEN];
    uint32_t challenge_ttl_s;
    uint64_t challenge_expiry_us;
    uint64_t last_challenge_us;
    /* nonces issued before the outstanding one (answered, expired or replaced) */
    uint8_t past[GATE_PAST_NONCES][GATE_NONCE_LEN];
    unsigned n_past, past_next;
    int64_t last_note; /* unsolicited evidence noted (epoch s), 0 = never */
    unsigned held;     /* messages held (GATE_HOLD) and not yet released or dropped */
    /* storm control: the node waits in the challenge queue (q_prev/q_next: node index + 1,
     * 0 = none), or its outstanding challenge sits in the expiry heap at heap_pos - 1 */
    bool queued;
    uint32_t q_prev, q_next;
    uint32_t heap_pos;
    uint32_t idx; /* its own index */
};

/* Nodes live in chunks of NODE_CHUNK, allocated as the fleet grows, in order of first
 * message: a node costs its own entry and a slot of the index, wherever its id hashes. */
#define NODE_CHUNK 256

struct gate {
    struct gate_config cfg;
    struct gate_ops ops;
    struct gate_node **chunks; /* max_nodes / NODE_CHUNK rounded up, NULL until used */
    size_t n_nodes, max_nodes;
    uint32_t *index; /* open addressing: node index + 1, 0 = empty; index_mask + 1 slots */
    size_t index_mask;
    uint32_t *heap; /* outstanding challenges by expiry (node indices), n_out of them */
    size_t n_out;
    uint32_t q_head, q_tail; /* the challenge queue, arrival order (node index + 1) */
    size_t n_queued;
    /* gate_credit_absence(): each node takes `credit` tokens once per epoch, until credit_until_us
     */
    uint32_t credit_epoch;
    double credit;
    uint64_t credit_until_us;
};

/* The node at index i (i < n_nodes). */
static inline struct gate_node *node_at(const struct gate *g, uint32_t i)
{
    return &g->chunks[i / NODE_CHUNK][i % NODE_CHUNK];
}

/* Node table (O(1) expected): the node with this id, or NULL; with add, a new entry unless
 * the table is full or the id too long (then NULL). */
struct gate_node *node_lookup(struct gate *g, const char *id, bool add);
/* The node, or NULL with *ret_slot the free index slot where it would go. */
struct gate_node *node_find(const struct gate *g, const char *id, size_t *ret_slot);
/* The expiry heap of outstanding challenges (earliest on top: g->heap[0]). */
void heap_add(struct gate *g, struct gate_node *n);
void heap_remove(struct gate *g, struct gate_node *n);
void heap_fix(struct gate *g, size_t pos);
/* The expiry of the challenge at heap position pos. */
uint64_t heap_key(const struct gate *g, size_t pos);
/* The challenge queue: nodes waiting for a slot, arrival order (front: operator requests). */
void queue_push(struct gate *g, struct gate_node *n, bool front);
void queue_remove(struct gate *g, struct gate_node *n);

#endif
