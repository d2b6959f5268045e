/* What spool.c and spool_held.c share (the spool's state and its row writer); other
 * modules use spool.h only.
 *   spool.c       the database, appends, the drain's window, acks, TTL, counters, commit
 *   spool_held.c  held rows (issue 15): hold, release, drop, the held counts */
#ifndef FLEETGWD_SPOOL_INTERNAL_H
#define FLEETGWD_SPOOL_INTERNAL_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spool.h"

struct win_msg; /* spool.c: one row of the drain's window */

struct pending_counter {
    char name[SPOOL_COUNTER_NAME_MAX + 1];
    uint64_t n;
};

/* A recorded batch (spool_batch.c): its rows are the rows not held with ids in
 * [first, last]. state: live (committed), new (recorded in the open transaction: gone on
 * rollback), acknowledged (deleted by the next commit, kept pending across a failed one,
 * like acks) or expired in the open transaction (live again on rollback). */
enum spool_batch_state {
    SPOOL_BATCH_LIVE,
    SPOOL_BATCH_NEW,
    SPOOL_BATCH_ACKED,
    SPOOL_BATCH_EXPIRED
};
struct spool_batch_rec {
    int64_t first, last;
    uint32_t n;
    enum spool_batch_state state;
};

struct spool {
    sqlite3 *db;
    sqlite3_stmt *ins, *next, *del_range, *cnt_add, *cnt_get, *meta_set, *held_sel, *held_del;
    bool in_txn;
    int64_t max_bytes;
    int64_t bytes;      /* committed + pending bytes (topic + payload) */
    int64_t bytes_txn0; /* bytes at the start of the open transaction */
    uint64_t count;
    uint64_t count_txn0;
    uint64_t held_count; /* rows marked held (in count and bytes too) */
    int64_t held_bytes;
    uint64_t held_count_txn0;
    int64_t held_bytes_txn0;
    int64_t next_id;                    /* id of the next append; ids are never reused */
    int64_t next_id_saved;              /* value of meta 'next_id' in the database */
    int64_t edge_seen, edge_seen_saved; /* meta 'edge_seen' (spool_set_edge_seen) */

    struct win_msg **win; /* ring: win[(win_head + i) % WINDOW_MAX_MSGS], i < win_n */
    unsigned win_head, win_n;
    size_t win_bytes;
    int64_t win_from, win_end; /* every row not held with id in (win_from, win_end] */

    int64_t *acks; /* ascending in practice; sorted at commit */
    size_t n_acks, cap_acks;

    struct pending_counter counters[SPOOL_COUNTERS_MAX];
    unsigned n_counters;

    /* recorded batches (spool_batch.c), in first-id order */
    struct spool_batch_rec *batches;
    size_t n_batches, cap_batches;
    bool batch_acks; /* some are SPOOL_BATCH_ACKED */
    sqlite3_stmt *batch_ins, *batch_del;
};

/* spool.c */
/* Appends one row after checking its sizes and the quotas (held: max_held_bytes too, else
 * -ENOBUFS), and counts it: spool_append() and spool_hold(). */
int spool_row_append(struct spool *s, const char *node, const char *topic, const void *payload,
                     size_t len, int64_t now, bool retain, bool held, int64_t max_held_bytes,
                     int64_t *ret_id) __attribute__((warn_unused_result));
/* Inserts one row with id s->next_id in the open transaction (begun if needed), without
 * checks or counts; ret_id may be NULL. */
int spool_row_insert(struct spool *s, const char *node, size_t nl, const char *topic, size_t tl,
                     const void *payload, size_t len, int64_t ts, bool retain, bool held,
                     int64_t *ret_id) __attribute__((warn_unused_result));
/* Empties the drain's window; it is read again from the database (after: the last id
 * handed out, or s->next_id - 1). */
void spool_win_reset(struct spool *s, int64_t after);

/* spool_batch.c: the batches table, with spool.c's open, transaction and expiry. */
int spool_batch_open(struct spool *s) __attribute__((warn_unused_result));
void spool_batch_close(struct spool *s);
/* In the commit's transaction: deletes the records of acknowledged batches. */
int spool_batch_flush(struct spool *s) __attribute__((warn_unused_result));
void spool_batch_committed(struct spool *s);
void spool_batch_rolled_back(struct spool *s);
/* TTL expiry would delete the rows with id <= upto: returns the bound lowered so that no
 * recorded batch loses only part of its rows, and deletes (in the open transaction) the
 * records of the batches wholly below it. */
int spool_batch_expire_bound(struct spool *s, int64_t upto, int64_t *ret_bound)
    __attribute__((warn_unused_result));

#endif
