/* gate_table.c: the attestation gate's data structures (gate_internal.h): the node table
 * (nodes in chunks allocated as the fleet grows, a hash index over them), the expiry heap of
 * outstanding challenges and the challenge queue; gate_new() and gate_free(). No policy: that
 * is gate.c. */
#define _GNU_SOURCE /* explicit_bzero */
#include "gate_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int gate_new(const struct gate_config *cfg, const struct gate_ops *ops, size_t max_nodes,
             struct gate **ret)
{
    *ret = NULL;
    if (max_nodes == 0 || max_nodes > GATE_NODES_MAX || ops->load == NULL || ops->verify == NULL ||
        ops->peek_nonce == NULL || ops->random == NULL || ops->act == NULL)
        return -EINVAL;
    struct gate *g = calloc(1, sizeof(*g));
    if (g == NULL)
        return -ENOMEM;
    size_t slots = 1;
    while (slots < 2 * max_nodes)
        slots <<= 1; /* load factor at most 1/2: short probes */
    g->chunks = calloc((max_nodes + NODE_CHUNK - 1) / NODE_CHUNK, sizeof(*g->chunks));
    g->index = calloc(slots, sizeof(*g->index));
    g->heap = calloc(max_nodes, sizeof(*g->heap));
    if (g->chunks == NULL || g->index == NULL || g->heap == NULL) {
        gate_free(g);
        return -ENOMEM;
    }
    g->index_mask = slots - 1;
    g->cfg = *cfg;
    g->ops = *ops;
    g->max_nodes = max_nodes;
    *ret = g;
    return 0;
}

void gate_free(struct gate *g)
{
    if (g == NULL)
        return;
    /* nonces are secrets until answered */
    for (size_t i = 0; i < g->n_nodes; i++)
        explicit_bzero(node_at(g, (uint32_t)i)->nonce, GATE_NONCE_LEN);
    for (size_t c = 0; g->chunks != NULL && c * NODE_CHUNK < g->max_nodes; c++)
        free(g->chunks[c]);
    free(g->chunks);
    free(g->index);
    free(g->heap);
    free(g);
}

/* ---- node table ---- */

static uint32_t node_hash(const char *id)
{
    uint32_t h = 2166136261u;
    for (const char *p = id; *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    return h;
}

/* O(1) expected: the index is at most half full (gate_new), so a probe ends quickly. The
 * node, or NULL with *ret_slot the free slot where it would go. */
struct gate_node *node_find(const struct gate *g, const char *id, size_t *ret_slot)
{
    size_t slot = node_hash(id) & g->index_mask;
    for (size_t i = 0; i <= g->index_mask; i++, slot = (slot + 1) & g->index_mask) {
        uint32_t v = g->index[slot];
        if (v == 0)
            break;
        struct gate_node *n = node_at(g, v - 1);
        if (strcmp(n->id, id) == 0)
            return n;
    }
    *ret_slot = slot;
    return NULL;
}

struct gate_node *node_lookup(struct gate *g, const char *id, bool add)
{
    size_t slot = 0, len = strlen(id);
    struct gate_node *n = node_find(g, id, &slot);
    if (n != NULL || !add || len > RELAY_NODE_MAX || g->n_nodes >= g->max_nodes ||
        g->index[slot] != 0)
        return n;
    uint32_t i = (uint32_t)g->n_nodes;
    if (g->chunks[i / NODE_CHUNK] == NULL) {
        g->chunks[i / NODE_CHUNK] = calloc(NODE_CHUNK, sizeof(struct gate_node));
        if (g->chunks[i / NODE_CHUNK] == NULL)
            return NULL; /* out of memory: as if the table were full */
    }
    n = node_at(g, i);
    n->used = true;
    n->idx = i;
    memcpy(n->id, id, len + 1);
    g->n_nodes++;
    g->index[slot] = i + 1;
    return n;
}

/* ---- the expiry heap: outstanding challenges, earliest expiry on top ---- */

uint64_t heap_key(const struct gate *g, size_t pos)
{
    return node_at(g, g->heap[pos])->challenge_expiry_us;
}

static void heap_set(struct gate *g, size_t pos, uint32_t idx)
{
    g->heap[pos] = idx;
    node_at(g, idx)->heap_pos = (uint32_t)pos + 1;
}

void heap_fix(struct gate *g, size_t pos)
{
    uint32_t idx = g->heap[pos];
    uint64_t key = node_at(g, idx)->challenge_expiry_us;
    while (pos > 0 && heap_key(g, (pos - 1) / 2) > key) {
        heap_set(g, pos, g->heap[(pos - 1) / 2]);
        pos = (pos - 1) / 2;
    }
    for (;;) {
        size_t c = 2 * pos + 1;
        if (c >= g->n_out)
            break;
        if (c + 1 < g->n_out && heap_key(g, c + 1) < heap_key(g, c))
            c++;
        if (heap_key(g, c) >= key)
            break;
        heap_set(g, pos, g->heap[c]);
        pos = c;
    }
    heap_set(g, pos, idx);
}

void heap_add(struct gate *g, struct gate_node *n)
{
    g->heap[g->n_out] = n->idx;
    n->heap_pos = (uint32_t)g->n_out + 1;
    g->n_out++;
    heap_fix(g, g->n_out - 1);
}

void heap_remove(struct gate *g, struct gate_node *n)
{
    if (n->heap_pos == 0)
        return;
    size_t pos = n->heap_pos - 1;
    n->heap_pos = 0;
    g->n_out--;
    if (pos == g->n_out)
        return;
    heap_set(g, pos, g->heap[g->n_out]);
    heap_fix(g, pos);
}

/* ---- the challenge queue: nodes waiting for a slot, in arrival order ---- */

void queue_push(struct gate *g, struct gate_node *n, bool front)
{
    uint32_t i = n->idx + 1;
    n->queued = true;
    if (front) {
        n->q_prev = 0;
        n->q_next = g->q_head;
        if (g->q_head != 0)
            node_at(g, g->q_head - 1)->q_prev = i;
        else
            g->q_tail = i;
        g->q_head = i;
    } else {
        n->q_next = 0;
        n->q_prev = g->q_tail;
        if (g->q_tail != 0)
            node_at(g, g->q_tail - 1)->q_next = i;
        else
            g->q_head = i;
        g->q_tail = i;
    }
    g->n_queued++;
}

void queue_remove(struct gate *g, struct gate_node *n)
{
    if (!n->queued)
        return;
    if (n->q_prev != 0)
        node_at(g, n->q_prev - 1)->q_next = n->q_next;
    else
        g->q_head = n->q_next;
    if (n->q_next != 0)
        node_at(g, n->q_next - 1)->q_prev = n->q_prev;
    else
        g->q_tail = n->q_prev;
    n->q_prev = n->q_next = 0;
    n->queued = false;
    g->n_queued--;
}
