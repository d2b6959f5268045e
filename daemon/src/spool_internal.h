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

#endif
