/* Recorded batches of the relay spool (issue 17, contract in spool.h): the batches table,
 * kept in memory too (a handful: at most what is in flight, and what was when the
 * connection or the daemon went down), so the drain finds them without a query. The rows,
 * the transaction and the acks are spool.c's. */
#define _GNU_SOURCE
#include "spool.h"
#include "spool_internal.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "sqlite_errno.h"

/* Inserts a record in first-id order. */
static int insert(struct spool *s, int64_t first, int64_t last, uint32_t n,
                  enum spool_batch_state state)
{
    if (s->n_batches == s->cap_batches) {
        size_t cap = s->cap_batches ? s->cap_batches * 2 : 64;
        struct spool_batch_rec *b = reallocarray(s->batches, cap, sizeof(*b));
        if (b == NULL)
            return -ENOMEM;
        s->batches = b;
        s->cap_batches = cap;
    }
    size_t i = s->n_batches;
    while (i > 0 && s->batches[i - 1].first > first)
        i--;
    memmove(&s->batches[i + 1], &s->batches[i], (s->n_batches - i) * sizeof(s->batches[0]));
    s->batches[i] = (struct spool_batch_rec){.first = first, .last = last, .n = n, .state = state};
    s->n_batches++;
    return 0;
}

static bool live(const struct spool_batch_rec *b)
{
    return b->state == SPOOL_BATCH_LIVE || b->state == SPOOL_BATCH_NEW;
}

int spool_batch_open(struct spool *s)
{
    sqlite3_stmt *st = NULL;
    int r = sqlite_exec(s->db, "CREATE TABLE IF NOT EXISTS batches ("
                               " id INTEGER PRIMARY KEY, last INTEGER NOT NULL,"
                               " n INTEGER NOT NULL);");
    const struct sqlite_stmt_spec stmts[] = {
        {&s->batch_ins, "INSERT INTO batches(id, last, n) VALUES(?, ?, ?)"},
        {&s->batch_del, "DELETE FROM batches WHERE id = ?"},
    };
    if (r == 0)
        r = sqlite_prepare_all(s->db, stmts, sizeof(stmts) / sizeof(stmts[0]));
    if (r == 0)
        r = sqlite_prepare(s->db, "SELECT id, last, n FROM batches ORDER BY id", &st);
    if (r < 0)
        return r;
    int rc;
    while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t first = sqlite3_column_int64(st, 0), last = sqlite3_column_int64(st, 1);
        int64_t n = sqlite3_column_int64(st, 2);
        if (last < first || n < 1 || n > UINT32_MAX)
            r = -EBADMSG; /* not a record spool_batch_record wrote */
        else
            r = insert(s, first, last, (uint32_t)n, SPOOL_BATCH_LIVE);
    }
    if (r == 0 && rc != SQLITE_DONE)
        r = sqlite_errno(rc) < 0 ? sqlite_errno(rc) : -EIO;
    sqlite3_finalize(st);
    return r;
}

void spool_batch_close(struct spool *s)
{
    sqlite3_finalize(s->batch_ins);
    sqlite3_finalize(s->batch_del);
    free(s->batches);
}

int spool_batch_record(struct spool *s, int64_t first, int64_t last, uint32_t n)
{
    if (first < 1 || last < first || n == 0)
        return -EINVAL;
    for (size_t i = 0; i < s->n_batches; i++)
        if (live(&s->batches[i]) && s->batches[i].first <= last && s->batches[i].last >= first)
            return -EINVAL; /* batches never overlap */
    int r = spool_begin(s);
    if (r < 0)
        return r;
    sqlite3_reset(s->batch_ins);
    sqlite3_bind_int64(s->batch_ins, 1, first);
    sqlite3_bind_int64(s->batch_ins, 2, last);
    sqlite3_bind_int64(s->batch_ins, 3, n);
    r = sqlite_errno(sqlite3_step(s->batch_ins));
    sqlite3_reset(s->batch_ins);
    if (r < 0)
        return r;
    return insert(s, first, last, n, SPOOL_BATCH_NEW);
}

int spool_batch_next(const struct spool *s, int64_t after, int64_t *ret_first, int64_t *ret_last,
                     uint32_t *ret_n)
{
    for (size_t i = 0; i < s->n_batches; i++) {
        const struct spool_batch_rec *b = &s->batches[i];
        if (b->first > after && live(b)) {
            *ret_first = b->first;
            *ret_last = b->last;
            *ret_n = b->n;
            return 0;
        }
    }
    return -ENOENT;
}

int spool_batch_ack(struct spool *s, int64_t first, int64_t last)
{
    for (size_t i = 0; i < s->n_batches; i++) {
        struct spool_batch_rec *b = &s->batches[i];
        if (b->first != first || !live(b))
            continue;
        for (int64_t id = first; id <= b->last; id++) {
            int r = spool_ack(s, id);
            if (r < 0)
                return r; /* the record stays: the batch is sent again after a reconnect */
        }
        b->state = SPOOL_BATCH_ACKED;
        s->batch_acks = true;
        return 0;
    }
    /* Not recorded (any more): expired meanwhile. Its rows, if any are left, go as acks. */
    for (int64_t id = first; id <= last; id++) {
        int r = spool_ack(s, id);
        if (r < 0)
            return r;
    }
    return 0;
}

size_t spool_batches(const struct spool *s)
{
    size_t n = 0;
    for (size_t i = 0; i < s->n_batches; i++)
        n += live(&s->batches[i]);
    return n;
}

int spool_batch_flush(struct spool *s)
{
    if (!s->batch_acks)
        return 0;
    for (size_t i = 0; i < s->n_batches; i++) {
        if (s->batches[i].state != SPOOL_BATCH_ACKED)
            continue;
        sqlite3_reset(s->batch_del);
        sqlite3_bind_int64(s->batch_del, 1, s->batches[i].first);
        int r = sqlite_errno(sqlite3_step(s->batch_del));
        sqlite3_reset(s->batch_del);
        if (r < 0)
            return r;
    }
    return 0;
}

void spool_batch_committed(struct spool *s)
{
    size_t j = 0;
    for (size_t i = 0; i < s->n_batches; i++)
        if (live(&s->batches[i])) {
            s->batches[j] = s->batches[i];
            s->batches[j++].state = SPOOL_BATCH_LIVE;
        }
    s->n_batches = j;
    s->batch_acks = false;
}

void spool_batch_rolled_back(struct spool *s)
{
    /* Recorded in the failed transaction: gone (never sent: the caller sends only after a
     * successful commit). Expired in it: live again. Acknowledged: still pending. */
    size_t j = 0;
    for (size_t i = 0; i < s->n_batches; i++) {
        if (s->batches[i].state == SPOOL_BATCH_NEW)
            continue;
        s->batches[j] = s->batches[i];
        if (s->batches[j].state == SPOOL_BATCH_EXPIRED)
            s->batches[j].state = SPOOL_BATCH_LIVE;
        j++;
    }
    s->n_batches = j;
}

int spool_batch_expire_bound(struct spool *s, int64_t upto, int64_t *ret_bound)
{
    int64_t bound = upto;
    for (size_t i = 0; i < s->n_batches; i++) {
        const struct spool_batch_rec *b = &s->batches[i];
        if (live(b) && b->first <= bound && b->last > bound) {
            bound = b->first - 1; /* not half of it: wait until its newest row expires */
            break;
        }
    }
    *ret_bound = bound;
    for (size_t i = 0; i < s->n_batches; i++) {
        struct spool_batch_rec *b = &s->batches[i];
        if (b->last > bound || !live(b))
            continue;
        int r = spool_begin(s);
        if (r < 0)
            return r;
        sqlite3_reset(s->batch_del);
        sqlite3_bind_int64(s->batch_del, 1, b->first);
        r = sqlite_errno(sqlite3_step(s->batch_del));
        sqlite3_reset(s->batch_del);
        if (r < 0)
            return r;
        b->state = SPOOL_BATCH_EXPIRED;
    }
    return 0;
}
