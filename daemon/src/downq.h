/* Durable down-queue: cloud -> node commands waiting for the edge broker, in table `down` of
 * the spool database (daemon/src/spool.c). Every write happens inside the spool's open
 * transaction (spool_begin), so a command is durable exactly when spool_commit() returned 0
 * — fleetgwd commits before the cloud's PUBACK leaves. Rows are delivered in id order
 * (AUTOINCREMENT: ids are never reused, id order is arrival order across restarts) and
 * deleted only after the edge broker's PUBACK. Bounded by a per-node row cap, a byte budget
 * and a TTL.
 *
 * The row count and byte total are cached; downq installs the connection's rollback hook
 * (sqlite3_rollback_hook, unused by the spool) to notice a rolled-back transaction and
 * recount from the table. */
#ifndef FLEETGWD_DOWNQ_H
#define FLEETGWD_DOWNQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spool.h"

struct downq;

struct downq_msg {
    int64_t id;
    int64_t ts; /* seconds since the epoch, when queued */
    char node[SPOOL_NODE_MAX];
    char topic[SPOOL_TOPIC_MAX]; /* edge topic fleet/<node>/down/<sub> */
    uint8_t *payload;            /* malloc'd, freed by downq_msg_clear */
    size_t len;
    int64_t sent; /* times handed to the edge broker before (downq_mark_sent) */
};

/* Creates the table if needed, on the spool's connection. The spool must outlive the
 * queue (downq_close before spool_close). */
int downq_open(struct spool *s, struct downq **ret) __attribute__((warn_unused_result));
void downq_close(struct downq *q);

/* Appends one command in the spool's open transaction (begun if needed). Nothing is written
 * and: -ENOBUFS when `node` already has max_per_node rows, -EDQUOT when topic + payload
 * would take the queue over max_bytes, -EINVAL for an empty/oversize node or topic. */
int downq_append(struct downq *q, const char *node, const char *topic, const void *payload,
                 size_t len, int64_t now, int64_t max_per_node, int64_t max_bytes, int64_t *ret_id)
    __attribute__((warn_unused_result));
/* Oldest row with id > after: 0 and *msg filled, -ENOENT when none. */
int downq_next(struct downq *q, int64_t after, struct downq_msg *msg)
    __attribute__((warn_unused_result));
void downq_msg_clear(struct downq_msg *msg);
/* Records that row id was published to the edge broker (sent + 1), -ENOENT when absent. */
int downq_mark_sent(struct downq *q, int64_t id) __attribute__((warn_unused_result));
/* Deletes row id (after the edge broker's PUBACK), -ENOENT when absent. */
int downq_delete(struct downq *q, int64_t id) __attribute__((warn_unused_result));
/* Deletes rows queued before now - ttl whose id is > after (rows up to `after` may be in
 * flight to the edge broker and are left alone); *ret_n = how many, also added to the
 * spool counter "down_expired". */
int downq_expire(struct downq *q, int64_t now, int64_t ttl, int64_t after, uint64_t *ret_n)
    __attribute__((warn_unused_result));
/* Rows queued for one node. */
int downq_node_count(struct downq *q, const char *node, uint64_t *ret_n)
    __attribute__((warn_unused_result));
/* Rows and bytes (topic + payload) in the queue, pending writes included. */
uint64_t downq_count(struct downq *q);
int64_t downq_bytes(struct downq *q);

#endif
