/* The relay spool (contract in spool.h): the SQLite database and its schema, appends, the
 * drain's in-memory window, acknowledgements, TTL expiry, the persistent counters and the
 * group commit that writes them all. Held rows (spool_hold, spool_release, ...) are
 * spool_held.c's; both share struct spool through spool_internal.h. */
#define _GNU_SOURCE
#include "spool.h"
#include "spool_internal.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sqlite_errno.h"

/* The window: the rows that come next for the drain, in memory. It holds every row with an
 * id in (win_from, win_end], in id order, so spool_next(after) with win_from <= after is
 * answered from it without a query. New appends join it while it reaches the newest row
 * (win_end == id - 1) and has room; when the drain runs past it, or replays from an older
 * id, it is refilled from the database with one query for up to REFILL_ROWS rows. So the
 * relay path reads nothing back in the steady state, and a replay after an outage reads in
 * batches. Held rows (spool_hold) are never in it: "every row" means every row that is not
 * held, and a held append only moves win_end. */
#define WINDOW_MAX_MSGS  8192
#define WINDOW_MAX_BYTES (8 * 1024 * 1024)
#define REFILL_ROWS      512
/* Acknowledged ids waiting for the next commit: room for this many at first, more as
 * needed (an ack never commits by itself: only the caller decides when to commit). */
#define ACKS_INITIAL 1024

struct win_msg {
    int64_t id;
    int64_t ts;
    size_t len; /* payload */
    uint16_t node_len, topic_len;
    bool retain;
    char data[]; /* node, topic (not terminated), payload */
};

/* Reads one integer (the first column of the first row; 0 when there is no row). */
static int query_int(sqlite3 *db, const char *sql, int64_t *ret)
{
    sqlite3_stmt *st = NULL;
    int r = sqlite_prepare(db, sql, &st);
    if (r < 0)
        return r;
    *ret = 0;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *ret = sqlite3_column_int64(st, 0);
    else if (rc != SQLITE_DONE)
        r = sqlite_errno(rc) < 0 ? sqlite_errno(rc) : -EIO;
    sqlite3_finalize(st);
    return r;
}

/* How many rows (of those `where` selects) and their bytes (topic + payload). */
static int query_size(sqlite3 *db, const char *where, uint64_t *ret_count, int64_t *ret_bytes)
{
    char sql[160];
    sqlite3_stmt *st = NULL;
    snprintf(sql, sizeof(sql),
             "SELECT count(*), coalesce(sum(length(CAST(topic AS BLOB)) + length(payload)), 0) "
             "FROM msgs%s",
             where);
    int r = sqlite_prepare(db, sql, &st);
    if (r < 0)
        return r;
    if (sqlite3_step(st) == SQLITE_ROW) {
        *ret_count = (uint64_t)sqlite3_column_int64(st, 0);
        *ret_bytes = sqlite3_column_int64(st, 1);
    } else {
        r = -EIO;
    }
    sqlite3_finalize(st);
    return r;
}

int spool_open(const char *path, int64_t max_bytes, struct spool **ret)
{
    struct spool *s = calloc(1, sizeof(*s));
    sqlite3_stmt *st = NULL;
    int64_t v = 0;
    int r;

    if (s == NULL)
        return -ENOMEM;
    s->max_bytes = max_bytes;
    s->acks = calloc(ACKS_INITIAL, sizeof(*s->acks));
    s->cap_acks = ACKS_INITIAL;
    s->win = calloc(WINDOW_MAX_MSGS, sizeof(*s->win));
    if (s->acks == NULL || s->win == NULL) {
        r = -ENOMEM;
        goto out;
    }
    r = sqlite_errno(sqlite3_open_v2(
        path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL));
    if (r < 0)
        goto out;
    sqlite3_busy_timeout(s->db, 2000);
    /* WAL + synchronous=FULL: every COMMIT is fsync'ed in the WAL before it returns. Locks
     * are taken per transaction (a few fcntl calls per commit, not per message: commits
     * are per batch), so that operators and tests can read the spool while it runs. */
    r = sqlite_exec(s->db, "PRAGMA journal_mode=WAL;");
    if (r == 0)
        r = sqlite_exec(s->db, "PRAGMA synchronous=FULL;");
    /* Ids are assigned here (see next_id), so the table needs no AUTOINCREMENT; TTL expiry
     * walks the oldest ids, so no index on ts (a spool from an earlier version may have
     * both: the index is dropped, AUTOINCREMENT is harmless). */
    if (r == 0)
        r = sqlite_exec(s->db, "CREATE TABLE IF NOT EXISTS msgs ("
                               " id INTEGER PRIMARY KEY,"
                               " ts INTEGER NOT NULL, node TEXT NOT NULL, topic TEXT NOT NULL,"
                               " payload BLOB NOT NULL, retain INTEGER NOT NULL DEFAULT 0);"
                               "DROP INDEX IF EXISTS msgs_ts;"
                               "CREATE TABLE IF NOT EXISTS counters ("
                               " name TEXT PRIMARY KEY, n INTEGER NOT NULL);"
                               "CREATE TABLE IF NOT EXISTS meta ("
                               " name TEXT PRIMARY KEY, v INTEGER NOT NULL);");
    if (r < 0)
        goto out;
    /* Held rows (issue 15): a spool from an earlier version gets the column. The partial
     * index finds a node's held rows without touching the others. */
    if (sqlite_prepare(s->db, "SELECT held FROM msgs LIMIT 0", &st) < 0)
        r = sqlite_exec(s->db, "ALTER TABLE msgs ADD COLUMN held INTEGER NOT NULL DEFAULT 0;");
    sqlite3_finalize(st);
    st = NULL;
    if (r == 0)
        r = sqlite_exec(s->db,
                        "CREATE INDEX IF NOT EXISTS msgs_held ON msgs(node, id) WHERE held = 1;");
    if (r < 0)
        goto out;
    r = query_int(s->db, "SELECT coalesce(max(id), 0) FROM msgs", &v);
    if (r < 0)
        goto out;
    s->next_id = v + 1;
    r = query_int(s->db, "SELECT v FROM meta WHERE name = 'next_id'", &v);
    if (r < 0)
        goto out;
    s->next_id_saved = v;
    r = query_int(s->db, "SELECT v FROM meta WHERE name = 'edge_seen'", &s->edge_seen);
    if (r < 0)
        goto out;
    s->edge_seen_saved = s->edge_seen;
    if (v > s->next_id)
        s->next_id = v;
    if (query_int(s->db, "SELECT seq FROM sqlite_sequence WHERE name = 'msgs'", &v) == 0 &&
        v + 1 > s->next_id)
        s->next_id = v + 1; /* a spool written by an AUTOINCREMENT version */

    const struct sqlite_stmt_spec stmts[] = {
        {&s->ins, "INSERT INTO msgs(id, ts, node, topic, payload, retain, held) "
                  "VALUES(?, ?, ?, ?, ?, ?, ?)"},
        {&s->next, "SELECT id, ts, node, topic, payload, retain FROM msgs WHERE id > ? AND "
                   "held = 0 ORDER BY id LIMIT ?"},
        {&s->del_range, "DELETE FROM msgs WHERE id BETWEEN ? AND ? AND held = 0 "
                        "RETURNING length(CAST(topic AS BLOB)) + length(payload)"},
        {&s->held_sel, "SELECT id, ts, topic, payload, retain FROM msgs WHERE node = ? AND "
                       "held = 1 ORDER BY id"},
        {&s->held_del, "DELETE FROM msgs WHERE node = ? AND held = 1 "
                       "RETURNING length(CAST(topic AS BLOB)) + length(payload)"},
        {&s->cnt_add, "INSERT INTO counters(name, n) VALUES(?, ?) "
                      "ON CONFLICT(name) DO UPDATE SET n = n + excluded.n"},
        {&s->cnt_get, "SELECT n FROM counters WHERE name = ?"},
        {&s->meta_set, "INSERT INTO meta(name, v) VALUES(?, ?) "
                       "ON CONFLICT(name) DO UPDATE SET v = excluded.v"},
    };
    r = sqlite_prepare_all(s->db, stmts, sizeof(stmts) / sizeof(stmts[0]));
    if (r == 0)
        r = spool_batch_open(s); /* the batches table (issue 17) */
    if (r == 0)
        r = query_size(s->db, "", &s->count, &s->bytes);
    if (r == 0)
        r = query_size(s->db, " WHERE held = 1", &s->held_count, &s->held_bytes);
    if (r < 0)
        goto out;
    s->win_from = s->win_end = s->next_id - 1; /* empty, and nothing above it */
    *ret = s;
    s = NULL;
    r = 0;
out:
    sqlite3_finalize(st);
    spool_close(s);
    return r;
}

/* Empties the window; it then covers (after, after]: nothing. */
void spool_win_reset(struct spool *s, int64_t after)
{
    for (unsigned i = 0; i < s->win_n; i++) {
        free(s->win[(s->win_head + i) % WINDOW_MAX_MSGS]);
        s->win[(s->win_head + i) % WINDOW_MAX_MSGS] = NULL;
    }
    s->win_head = 0;
    s->win_n = 0;
    s->win_bytes = 0;
    s->win_from = s->win_end = after;
}

/* Forgets the rows with id <= upto (handed out, acknowledged or deleted). */
static void win_drop_upto(struct spool *s, int64_t upto)
{
    while (s->win_n > 0 && s->win[s->win_head]->id <= upto) {
        s->win_bytes -= s->win[s->win_head]->len;
        free(s->win[s->win_head]);
        s->win[s->win_head] = NULL;
        s->win_head = (s->win_head + 1) % WINDOW_MAX_MSGS;
        s->win_n--;
    }
    if (upto > s->win_from)
        s->win_from = upto < s->win_end ? upto : s->win_end;
}

/* Adds a row at the end of the window; false when it is full (the row stays out). */
static bool win_push(struct spool *s, int64_t id, int64_t ts, const char *node, size_t nl,
                     const char *topic, size_t tl, const void *payload, size_t len, bool retain)
{
    if (s->win_n == WINDOW_MAX_MSGS || s->win_bytes + len + nl + tl > WINDOW_MAX_BYTES)
        return false;
    struct win_msg *w = malloc(sizeof(*w) + nl + tl + len);
    if (w == NULL)
        return false;
    w->id = id;
    w->ts = ts;
    w->len = len;
    w->node_len = (uint16_t)nl;
    w->topic_len = (uint16_t)tl;
    w->retain = retain;
    memcpy(w->data, node, nl);
    memcpy(w->data + nl, topic, tl);
    if (len)
        memcpy(w->data + nl + tl, payload, len);
    s->win[(s->win_head + s->win_n) % WINDOW_MAX_MSGS] = w;
    s->win_n++;
    s->win_bytes += len + nl + tl;
    s->win_end = id;
    return true;
}

void spool_close(struct spool *s)
{
    if (s == NULL)
        return;
    if (s->in_txn && s->db != NULL)
        (void)sqlite_exec(s->db, "ROLLBACK;");
    spool_win_reset(s, 0);
    free(s->win);
    free(s->acks);
    sqlite3_finalize(s->ins);
    sqlite3_finalize(s->next);
    sqlite3_finalize(s->del_range);
    sqlite3_finalize(s->cnt_add);
    sqlite3_finalize(s->cnt_get);
    sqlite3_finalize(s->meta_set);
    sqlite3_finalize(s->held_sel);
    sqlite3_finalize(s->held_del);
    spool_batch_close(s);
    sqlite3_close_v2(s->db);
    free(s);
}

void spool_set_quota(struct spool *s, int64_t max_bytes)
{
    s->max_bytes = max_bytes;
}

static int begin(struct spool *s)
{
    if (s->in_txn)
        return 0;
    int r = sqlite_exec(s->db, "BEGIN IMMEDIATE;");
    if (r < 0)
        return r;
    s->in_txn = true;
    s->bytes_txn0 = s->bytes;
    s->count_txn0 = s->count;
    s->held_count_txn0 = s->held_count;
    s->held_bytes_txn0 = s->held_bytes;
    return 0;
}

/* A row that is not held joins the window while it reaches the newest row, a held one only
 * moves the window's end (the window holds every row that is not held). */
int spool_row_insert(struct spool *s, const char *node, size_t nl, const char *topic, size_t tl,
                     const void *payload, size_t len, int64_t ts, bool retain, bool held,
                     int64_t *ret_id)
{
    int r = begin(s);
    if (r < 0)
        return r;
    int64_t id = s->next_id;
    sqlite3_reset(s->ins);
    sqlite3_bind_int64(s->ins, 1, id);
    sqlite3_bind_int64(s->ins, 2, ts);
    sqlite3_bind_text(s->ins, 3, node, (int)nl, SQLITE_STATIC);
    sqlite3_bind_text(s->ins, 4, topic, (int)tl, SQLITE_STATIC);
    sqlite3_bind_blob(s->ins, 5, len ? payload : "", (int)len, SQLITE_STATIC);
    sqlite3_bind_int(s->ins, 6, retain ? 1 : 0);
    sqlite3_bind_int(s->ins, 7, held ? 1 : 0);
    r = sqlite_errno(sqlite3_step(s->ins));
    sqlite3_clear_bindings(s->ins);
    sqlite3_reset(s->ins);
    if (r < 0)
        return r;
    s->next_id = id + 1;
    if (ret_id != NULL)
        *ret_id = id;
    /* Into the window while it reaches the newest row (then nothing is missing from it). */
    if (s->win_end == id - 1) {
        if (held)
            s->win_end = id;
        else
            (void)win_push(s, id, ts, node, nl, topic, tl, payload, len, retain);
    }
    return 0;
}

int spool_row_append(struct spool *s, const char *node, const char *topic, const void *payload,
                     size_t len, int64_t now, bool retain, bool held, int64_t max_held_bytes,
                     int64_t *ret_id)
{
    size_t tl = strlen(topic), nl = strlen(node);

    if (tl == 0 || tl >= SPOOL_TOPIC_MAX || nl == 0 || nl >= SPOOL_NODE_MAX ||
        len > (size_t)INT32_MAX)
        return -EINVAL;
    int64_t need = (int64_t)(tl + len);
    if (need > s->max_bytes - s->bytes)
        return -ENOSPC;
    if (held && need > max_held_bytes - s->held_bytes)
        return -ENOBUFS;
    int r = spool_row_insert(s, node, nl, topic, tl, payload, len, now, retain, held, ret_id);
    if (r < 0)
        return r;
    s->bytes += need;
    s->count++;
    if (held) {
        s->held_bytes += need;
        s->held_count++;
    }
    return 0;
}

int spool_append(struct spool *s, const char *node, const char *topic, const void *payload,
                 size_t len, int64_t now, bool retain, int64_t *ret_id)
{
    return spool_row_append(s, node, topic, payload, len, now, retain, false, 0, ret_id);
}

static int cmp_id(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Deletes the acknowledged ids, as ranges of consecutive ids; *ret_n = rows deleted. */
static int flush_acks(struct spool *s, uint64_t *ret_n)
{
    uint64_t n = 0;
    int64_t freed = 0;
    int r = 0;

    *ret_n = 0;
    if (s->n_acks == 0)
        return 0;
    qsort(s->acks, s->n_acks, sizeof(s->acks[0]), cmp_id);
    for (size_t i = 0; i < s->n_acks && r == 0;) {
        size_t j = i;
        while (j + 1 < s->n_acks && s->acks[j + 1] <= s->acks[j] + 1)
            j++;
        sqlite3_reset(s->del_range);
        sqlite3_bind_int64(s->del_range, 1, s->acks[i]);
        sqlite3_bind_int64(s->del_range, 2, s->acks[j]);
        int rc;
        while ((rc = sqlite3_step(s->del_range)) == SQLITE_ROW) {
            freed += sqlite3_column_int64(s->del_range, 0);
            n++;
        }
        r = sqlite_errno(rc);
        sqlite3_reset(s->del_range);
        i = j + 1;
    }
    if (r < 0)
        return r;
    s->bytes -= freed;
    s->count -= n;
    *ret_n = n;
    return 0;
}

static int add_counter(struct spool *s, const char *name, uint64_t n)
{
    for (unsigned i = 0; i < s->n_counters; i++)
        if (strcmp(s->counters[i].name, name) == 0) {
            s->counters[i].n += n;
            return 0;
        }
    if (s->n_counters == SPOOL_COUNTERS_MAX)
        return -ENOSPC;
    struct pending_counter *c = &s->counters[s->n_counters++];
    memcpy(c->name, name, strlen(name) + 1);
    c->n = n;
    return 0;
}

static int meta_put(struct spool *s, const char *name, int64_t v)
{
    sqlite3_reset(s->meta_set);
    sqlite3_bind_text(s->meta_set, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s->meta_set, 2, v);
    int r = sqlite_errno(sqlite3_step(s->meta_set));
    sqlite3_clear_bindings(s->meta_set);
    sqlite3_reset(s->meta_set);
    return r;
}

/* Writes the pending acks, counters, the id high-water mark and the edge_seen mark into
 * the transaction. */
static int flush_pending(struct spool *s)
{
    uint64_t acked = 0;
    int r = flush_acks(s, &acked);
    if (r == 0)
        r = spool_batch_flush(s);
    if (r == 0 && acked > 0)
        r = add_counter(s, "relayed_up", acked);
    for (unsigned i = 0; i < s->n_counters && r == 0; i++) {
        if (s->counters[i].n == 0)
            continue;
        sqlite3_reset(s->cnt_add);
        sqlite3_bind_text(s->cnt_add, 1, s->counters[i].name, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s->cnt_add, 2, (int64_t)s->counters[i].n);
        r = sqlite_errno(sqlite3_step(s->cnt_add));
        sqlite3_clear_bindings(s->cnt_add);
        sqlite3_reset(s->cnt_add);
    }
    if (r == 0 && s->next_id != s->next_id_saved)
        r = meta_put(s, "next_id", s->next_id);
    if (r == 0 && s->edge_seen != s->edge_seen_saved)
        r = meta_put(s, "edge_seen", s->edge_seen);
    return r;
}

int spool_commit(struct spool *s)
{
    if (!spool_dirty(s))
        return 0;
    int r = begin(s);
    if (r == 0)
        r = flush_pending(s);
    if (r == 0)
        r = sqlite_exec(s->db, "COMMIT;");
    if (r < 0) {
        /* Nothing of this transaction happened: appends are gone (the caller must not
         * acknowledge them), acks and counters stay pending for the next commit. */
        (void)sqlite_exec(s->db, "ROLLBACK;");
        s->bytes = s->bytes_txn0;
        s->count = s->count_txn0;
        s->held_count = s->held_count_txn0;
        s->held_bytes = s->held_bytes_txn0;
        spool_win_reset(s, s->next_id - 1); /* next_id stays: an id handed out may have been sent */
        spool_batch_rolled_back(s);
        s->in_txn = false;
        return r;
    }
    s->in_txn = false;
    spool_batch_committed(s);
    s->n_acks = 0;
    s->n_counters = 0;
    s->next_id_saved = s->next_id;
    s->edge_seen_saved = s->edge_seen;
    return 0;
}

void spool_set_edge_seen(struct spool *s, int64_t wall)
{
    s->edge_seen = wall;
}

int64_t spool_edge_seen(const struct spool *s)
{
    return s->edge_seen;
}

void spool_msg_clear(struct spool_msg *msg)
{
    free(msg->payload);
    memset(msg, 0, sizeof(*msg));
}

/* Refills the window with the rows after `after`, in one query. */
static int win_refill(struct spool *s, int64_t after)
{
    int rc, r = 0;
    unsigned n = 0;
    bool full = false;
    spool_win_reset(s, after);
    sqlite3_reset(s->next);
    sqlite3_bind_int64(s->next, 1, after);
    sqlite3_bind_int(s->next, 2, REFILL_ROWS);
    while ((rc = sqlite3_step(s->next)) == SQLITE_ROW) {
        const unsigned char *node = sqlite3_column_text(s->next, 2);
        int nl = sqlite3_column_bytes(s->next, 2);
        const unsigned char *topic = sqlite3_column_text(s->next, 3);
        int tl = sqlite3_column_bytes(s->next, 3);
        const void *p = sqlite3_column_blob(s->next, 4);
        int len = sqlite3_column_bytes(s->next, 4);
        if (node == NULL || topic == NULL || nl <= 0 || nl >= SPOOL_NODE_MAX || tl <= 0 ||
            tl >= SPOOL_TOPIC_MAX || len < 0) {
            r = -EBADMSG; /* not a row spool_append wrote */
            break;
        }
        if (!win_push(s, sqlite3_column_int64(s->next, 0), sqlite3_column_int64(s->next, 1),
                      (const char *)node, (size_t)nl, (const char *)topic, (size_t)tl, p,
                      (size_t)len, sqlite3_column_int(s->next, 5) != 0)) {
            full = true;
            break;
        }
        n++;
    }
    if (r == 0 && !full && rc != SQLITE_ROW && rc != SQLITE_DONE)
        r = sqlite_errno(rc) < 0 ? sqlite_errno(rc) : -EIO;
    sqlite3_reset(s->next);
    if (r < 0) {
        spool_win_reset(s, s->next_id - 1);
        return r;
    }
    /* All rows above `after` were read: the window reaches the newest one. */
    if (!full && n < REFILL_ROWS)
        s->win_end = s->next_id - 1;
    return 0;
}

int spool_next(struct spool *s, int64_t after, struct spool_msg *msg)
{
    memset(msg, 0, sizeof(*msg));
    if (after >= s->next_id - 1)
        return -ENOENT; /* caught up: no id above the last one handed out (no query) */
    if (after >= s->win_from)
        win_drop_upto(s, after);
    /* An empty window that reaches the newest row: every row above `after` is held. */
    if (after < s->win_from || (s->win_n == 0 && s->win_end < s->next_id - 1)) {
        int r = win_refill(s, after);
        if (r < 0)
            return r;
    }
    if (s->win_n == 0)
        return -ENOENT;
    const struct win_msg *w = s->win[s->win_head];
    msg->payload = malloc(w->len > 0 ? w->len : 1);
    if (msg->payload == NULL)
        return -ENOMEM;
    if (w->len)
        memcpy(msg->payload, w->data + w->node_len + w->topic_len, w->len);
    msg->id = w->id;
    msg->ts = w->ts;
    memcpy(msg->node, w->data, w->node_len);
    msg->node[w->node_len] = '\0';
    memcpy(msg->topic, w->data + w->node_len, w->topic_len);
    msg->topic[w->topic_len] = '\0';
    msg->len = w->len;
    msg->retain = w->retain;
    return 0;
}

int spool_ack(struct spool *s, int64_t id)
{
    /* An acknowledged message is never handed out again from the window. */
    win_drop_upto(s, id);
    if (s->n_acks == s->cap_acks) {
        int64_t *n = reallocarray(s->acks, s->cap_acks * 2, sizeof(*s->acks));
        if (n == NULL)
            return -ENOMEM; /* the row stays and is sent again after a reconnect */
        s->acks = n;
        s->cap_acks *= 2;
    }
    s->acks[s->n_acks++] = id;
    return 0;
}

int spool_expire(struct spool *s, int64_t now, int64_t ttl, uint64_t *ret_n)
{
    sqlite3_stmt *st = NULL;
    int64_t last = 0, cutoff = now - ttl;
    uint64_t n = 0;
    int rc, r;

    *ret_n = 0;
    /* Oldest first, up to the first message young enough to keep: ids grow with time, so
     * this is every expired message unless the clock was set back meanwhile (then the
     * older ones behind a younger one wait for it). */
    r = sqlite_prepare(s->db, "SELECT id, ts FROM msgs WHERE held = 0 ORDER BY id", &st);
    if (r < 0)
        return r;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && sqlite3_column_int64(st, 1) < cutoff)
        last = sqlite3_column_int64(st, 0);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        r = sqlite_errno(rc) < 0 ? sqlite_errno(rc) : -EIO;
    sqlite3_finalize(st);
    if (r < 0 || last == 0)
        return r;
    r = begin(s);
    if (r < 0)
        return r;
    /* Never half a recorded batch (spool_batch.c): its rows expire together. */
    r = spool_batch_expire_bound(s, last, &last);
    if (r < 0 || last <= 0)
        return r;
    win_drop_upto(s, last);
    int64_t freed = 0;
    sqlite3_reset(s->del_range);
    sqlite3_bind_int64(s->del_range, 1, INT64_MIN);
    sqlite3_bind_int64(s->del_range, 2, last);
    while ((rc = sqlite3_step(s->del_range)) == SQLITE_ROW) {
        freed += sqlite3_column_int64(s->del_range, 0);
        n++;
    }
    r = sqlite_errno(rc);
    sqlite3_reset(s->del_range);
    if (r < 0)
        return r;
    s->bytes -= freed;
    s->count -= n;
    *ret_n = n;
    return add_counter(s, "expired", n);
}

int spool_count(struct spool *s, const char *name, uint64_t n)
{
    if (strlen(name) > SPOOL_COUNTER_NAME_MAX)
        return -EINVAL;
    return add_counter(s, name, n);
}

uint64_t spool_counter(struct spool *s, const char *name)
{
    uint64_t n = 0;
    sqlite3_reset(s->cnt_get);
    sqlite3_bind_text(s->cnt_get, 1, name, -1, SQLITE_STATIC);
    if (sqlite3_step(s->cnt_get) == SQLITE_ROW)
        n = (uint64_t)sqlite3_column_int64(s->cnt_get, 0);
    sqlite3_clear_bindings(s->cnt_get);
    sqlite3_reset(s->cnt_get);
    for (unsigned i = 0; i < s->n_counters; i++)
        if (strcmp(s->counters[i].name, name) == 0)
            n += s->counters[i].n;
    return n;
}

bool spool_dirty(const struct spool *s)
{
    return s->in_txn || s->n_acks > 0 || s->n_counters > 0 || s->batch_acks ||
           s->edge_seen != s->edge_seen_saved;
}

uint64_t spool_messages(const struct spool *s)
{
    return s->count;
}

int64_t spool_bytes(const struct spool *s)
{
    return s->bytes;
}

int spool_counters_foreach(struct spool *s, void (*fn)(const char *name, uint64_t n, void *u),
                           void *u)
{
    sqlite3_stmt *st = NULL;
    bool seen[SPOOL_COUNTERS_MAX] = {false};
    int r = sqlite_prepare(s->db, "SELECT name, n FROM counters ORDER BY name", &st);
    if (r < 0)
        goto out;
    int rc;
    /* Committed values plus what is pending for the next commit. */
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        uint64_t n = (uint64_t)sqlite3_column_int64(st, 1);
        for (unsigned i = 0; name != NULL && i < s->n_counters; i++)
            if (strcmp(s->counters[i].name, name) == 0) {
                n += s->counters[i].n;
                seen[i] = true;
            }
        fn(name ? name : "", n, u);
    }
    r = sqlite_errno(rc);
    for (unsigned i = 0; r == 0 && i < s->n_counters; i++)
        if (!seen[i])
            fn(s->counters[i].name, s->counters[i].n, u);
out:
    sqlite3_finalize(st);
    return r;
}

struct sqlite3 *spool_sqlite(struct spool *s)
{
    return s->db;
}

int spool_begin(struct spool *s)
{
    return begin(s);
}
