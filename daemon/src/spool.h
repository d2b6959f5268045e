/* Durable relay spool in SQLite (WAL, synchronous=FULL). A node message is appended inside
 * an open transaction; spool_commit() makes every append since the last commit durable at
 * once (group commit). Rows are deleted only when the cloud acknowledged them, replayed in
 * id order (ids are never reused), bounded by a byte quota and a TTL. Drop counters live
 * in the same database so that they survive restarts and are committed with the data.
 *
 * Costs on the relay path are per commit, not per message: acknowledgements (spool_ack)
 * and counter increments (spool_count) are kept in memory and written by the next
 * spool_commit(), in the same transaction; messages appended and not yet handed out are
 * also kept in a bounded in-memory window, so spool_next() reads the database only when
 * it replays (after an outage or a restart). */
#ifndef FLEETGWD_SPOOL_H
#define FLEETGWD_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SPOOL_TOPIC_MAX        512
#define SPOOL_NODE_MAX         65
#define SPOOL_COUNTERS_MAX     64
#define SPOOL_COUNTER_NAME_MAX 48

struct spool;

struct spool_msg {
    int64_t id;
    int64_t ts; /* seconds since the epoch, when spooled */
    char node[SPOOL_NODE_MAX];
    char topic[SPOOL_TOPIC_MAX]; /* upstream topic */
    uint8_t *payload;            /* malloc'd, freed by spool_msg_clear */
    size_t len;
    bool retain; /* publish upstream as a retained message */
};

int spool_open(const char *path, int64_t max_bytes, struct spool **ret)
    __attribute__((warn_unused_result));
void spool_close(struct spool *s);
void spool_set_quota(struct spool *s, int64_t max_bytes);

/* Appends one message (in the open transaction, begun if needed). -ENOSPC when it would
 * exceed the byte quota (nothing written), -EINVAL for oversize topic/node. */
int spool_append(struct spool *s, const char *node, const char *topic, const void *payload,
                 size_t len, int64_t now, bool retain, int64_t *ret_id)
    __attribute__((warn_unused_result));
/* Held messages (issue 15, spool_held.c): a message of a node whose attestation verdict is pending
 * is written like any other (in the open transaction, before its PUBACK) but marked held:
 * spool_next() never hands it out and TTL expiry leaves it alone (its limit is the
 * gate's). When the node is trusted, spool_release() appends the node's held rows again
 * after every row there is (new ids, same order, same bytes), so they drain before any
 * later message of that node and the drain's cursor never has to go back; when it is not,
 * spool_drop_held() deletes them. Both write in the open transaction, committed by the next
 * spool_commit() (a failed commit rolls them back with the rest); a restart finds the held
 * rows still held (spool_held_foreach).
 * spool_hold(): as spool_append(), plus -ENOBUFS when the held rows would exceed
 * max_held_bytes (nothing written). */
int spool_hold(struct spool *s, const char *node, const char *topic, const void *payload,
               size_t len, int64_t now, int64_t max_held_bytes, int64_t *ret_id)
    __attribute__((warn_unused_result));
/* *ret_n = how many held rows of node were released (0 when it had none). All or nothing. */
int spool_release(struct spool *s, const char *node, uint64_t *ret_n)
    __attribute__((warn_unused_result));
/* *ret_n = how many held rows of node were deleted. */
int spool_drop_held(struct spool *s, const char *node, uint64_t *ret_n)
    __attribute__((warn_unused_result));
/* Calls fn for each node with held rows (committed ones), oldest first, with their number. */
int spool_held_foreach(struct spool *s, void (*fn)(const char *node, uint64_t n, void *u), void *u)
    __attribute__((warn_unused_result));
uint64_t spool_held_messages(const struct spool *s);
int64_t spool_held_bytes(const struct spool *s);

/* Commits the open transaction, if any. On failure the transaction is rolled back and
 * every append since the last commit is lost (the caller must not acknowledge them). */
int spool_commit(struct spool *s) __attribute__((warn_unused_result));
/* Oldest message with id > after. 0 and *msg filled, -ENOENT when none. */
int spool_next(struct spool *s, int64_t after, struct spool_msg *msg)
    __attribute__((warn_unused_result));
void spool_msg_clear(struct spool_msg *msg);
/* The cloud acknowledged message `id`: it is deleted by the next spool_commit(), which also
 * adds the number of rows it deleted to the counter "relayed_up" (an id that no longer
 * exists, e.g. expired meanwhile, is not counted). */
int spool_ack(struct spool *s, int64_t id) __attribute__((warn_unused_result));
/* Deletes messages spooled before now - ttl; *ret_n = how many (also counted as "expired"). */
int spool_expire(struct spool *s, int64_t now, int64_t ttl, uint64_t *ret_n)
    __attribute__((warn_unused_result));
/* Adds n to the persistent counter `name`, written by the next spool_commit(). -ENOSPC when
 * more than SPOOL_COUNTERS_MAX distinct counters are pending (never in fleetgwd, whose
 * counter names are fixed), -EINVAL for a name longer than SPOOL_COUNTER_NAME_MAX. */
int spool_count(struct spool *s, const char *name, uint64_t n) __attribute__((warn_unused_result));
/* Reads a persistent counter (0 when absent). */
uint64_t spool_counter(struct spool *s, const char *name);
/* When fleetgwd last knew itself connected to the edge broker (wall clock, s; 0 = never):
 * written with the next spool_commit(), read back by spool_open(). The edge broker queues
 * the nodes' messages for fleetgwd's session while it is away; the gate credits each node's
 * rate limit with the time since (gate_credit_absence). */
void spool_set_edge_seen(struct spool *s, int64_t wall);
int64_t spool_edge_seen(const struct spool *s);
/* True while something is not yet committed (appends, deletes, acks, counts). */
bool spool_dirty(const struct spool *s);
/* Every row, held ones included (spool_held_messages/bytes: those alone). */
uint64_t spool_messages(const struct spool *s);
int64_t spool_bytes(const struct spool *s);
/* Calls fn for each counter. */
int spool_counters_foreach(struct spool *s, void (*fn)(const char *name, uint64_t n, void *u),
                           void *u) __attribute__((warn_unused_result));

/* Batches (issue 17, spool_batch.c). With uplink.batch on, fleetgwd packs consecutive rows
 * into one publish. Before its bytes may leave, the batch is recorded here: its first and
 * last id and how many rows it has (its rows are the rows not held with ids in
 * [first, last]), written in the open transaction and made durable by the next
 * spool_commit(). A batch not acknowledged before a restart (or a lost connection) is sent
 * again first, with the same rows (spool_batch_next finds it where the drain resumes), so
 * a message is never in two different acknowledged batches. spool_batch_ack(): the batch's
 * PUBACK: its rows (counted as relayed_up) and its record are deleted by the next commit.
 * TTL expiry never deletes part of a recorded batch: a batch's rows expire together, when
 * its newest row is older than the TTL, and its record with them. */
int spool_batch_record(struct spool *s, int64_t first, int64_t last, uint32_t n)
    __attribute__((warn_unused_result));
/* The live recorded batch with the lowest first id > after: 0, or -ENOENT. */
int spool_batch_next(const struct spool *s, int64_t after, int64_t *ret_first, int64_t *ret_last,
                     uint32_t *ret_n) __attribute__((warn_unused_result));
int spool_batch_ack(struct spool *s, int64_t first, int64_t last)
    __attribute__((warn_unused_result));
/* Live recorded batches (committed or in the open transaction). */
size_t spool_batches(const struct spool *s);

/* For daemon/src/downq.c, which keeps its own table in the same database and writes inside
 * the spool's transaction. spool_sqlite(): the connection (owned by the spool).
 * spool_begin(): opens the spool's transaction unless one is open (0 or negative errno);
 * what is written after it is made durable by spool_commit(). */
struct sqlite3;
struct sqlite3 *spool_sqlite(struct spool *s);
int spool_begin(struct spool *s) __attribute__((warn_unused_result));

#endif
