/* Held messages of the relay spool (issue 15, contract in spool.h): a node's messages kept
 * in the spool, marked held, while its attestation verdict is pending; released behind
 * every row there is when the node is trusted, deleted when it is not; the held counts. The
 * rows, the transaction and the drain's window are spool.c's. */
#define _GNU_SOURCE
#include "spool.h"
#include "spool_internal.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "sqlite_errno.h"

int spool_hold(struct spool *s, const char *node, const char *topic, const void *payload,
               size_t len, int64_t now, int64_t max_held_bytes, int64_t *ret_id)
{
    return spool_row_append(s, node, topic, payload, len, now, false, true, max_held_bytes, ret_id);
}

/* One held row, read back for spool_release. */
struct held_row {
    int64_t ts;
    size_t tl, len;
    bool retain;
    char data[]; /* topic, payload */
};

/* Deletes node's held rows (the statement returns each row's size): how many, how many bytes. */
static int held_delete(struct spool *s, const char *node, uint64_t *ret_n, int64_t *ret_freed)
{
    int rc;
    *ret_n = 0;
    *ret_freed = 0;
    sqlite3_reset(s->held_del);
    sqlite3_bind_text(s->held_del, 1, node, -1, SQLITE_STATIC);
    while ((rc = sqlite3_step(s->held_del)) == SQLITE_ROW) {
        *ret_freed += sqlite3_column_int64(s->held_del, 0);
        (*ret_n)++;
    }
    int r = sqlite_errno(rc);
    sqlite3_clear_bindings(s->held_del);
    sqlite3_reset(s->held_del);
    return r;
}

int spool_release(struct spool *s, const char *node, uint64_t *ret_n)
{
    struct held_row **rows = NULL;
    size_t n = 0, cap = 0;
    uint64_t deleted = 0;
    int64_t freed = 0;
    int rc, r;

    *ret_n = 0;
    r = spool_begin(s);
    if (r == 0)
        r = sqlite_exec(s->db, "SAVEPOINT spool_release;");
    if (r < 0)
        return r;
    /* Read first, then insert: the new rows must not be seen by the running query. */
    sqlite3_reset(s->held_sel);
    sqlite3_bind_text(s->held_sel, 1, node, -1, SQLITE_STATIC);
    while ((rc = sqlite3_step(s->held_sel)) == SQLITE_ROW) {
        const unsigned char *topic = sqlite3_column_text(s->held_sel, 2);
        int tl = sqlite3_column_bytes(s->held_sel, 2);
        const void *p = sqlite3_column_blob(s->held_sel, 3);
        int len = sqlite3_column_bytes(s->held_sel, 3);
        if (topic == NULL || tl <= 0 || tl >= SPOOL_TOPIC_MAX || len < 0) {
            r = -EBADMSG; /* not a row spool_hold wrote */
            break;
        }
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 16;
            struct held_row **nr = reallocarray(rows, nc, sizeof(*rows));
            if (nr == NULL) {
                r = -ENOMEM;
                break;
            }
            rows = nr;
            cap = nc;
        }
        struct held_row *h = malloc(sizeof(*h) + (size_t)tl + (size_t)len);
        if (h == NULL) {
            r = -ENOMEM;
            break;
        }
        h->ts = sqlite3_column_int64(s->held_sel, 1);
        h->tl = (size_t)tl;
        h->len = (size_t)len;
        h->retain = sqlite3_column_int(s->held_sel, 4) != 0;
        memcpy(h->data, topic, (size_t)tl);
        if (len > 0)
            memcpy(h->data + tl, p, (size_t)len);
        rows[n++] = h;
    }
    if (r == 0 && rc != SQLITE_ROW && rc != SQLITE_DONE)
        r = sqlite_errno(rc) < 0 ? sqlite_errno(rc) : -EIO;
    sqlite3_clear_bindings(s->held_sel);
    sqlite3_reset(s->held_sel);
    if (r < 0 || n == 0)
        goto out;
    r = held_delete(s, node, &deleted, &freed);
    if (r < 0)
        goto out;
    /* Appended again, in their order, after every row there is: the drain has not passed
     * them, and every later message of the node comes after them. */
    size_t nl = strlen(node);
    for (size_t i = 0; i < n && r == 0; i++)
        r = spool_row_insert(s, node, nl, rows[i]->data, rows[i]->tl, rows[i]->data + rows[i]->tl,
                             rows[i]->len, rows[i]->ts, rows[i]->retain, false, NULL);
    if (r < 0)
        goto out;
    s->held_count -= deleted;
    s->held_bytes -= freed;
    *ret_n = n;
out:
    if (r < 0) {
        /* All or nothing: the rows stay held; the window is read again from the database. */
        (void)sqlite_exec(s->db, "ROLLBACK TO spool_release;");
        spool_win_reset(s, s->next_id - 1);
    }
    (void)sqlite_exec(s->db, "RELEASE spool_release;");
    for (size_t i = 0; i < n; i++)
        free(rows[i]);
    free(rows);
    return r;
}

int spool_drop_held(struct spool *s, const char *node, uint64_t *ret_n)
{
    uint64_t n = 0;
    int64_t freed = 0;
    int r;

    *ret_n = 0;
    r = spool_begin(s);
    if (r < 0)
        return r;
    r = held_delete(s, node, &n, &freed);
    if (r < 0)
        return r;
    s->bytes -= freed;
    s->count -= n;
    s->held_bytes -= freed;
    s->held_count -= n;
    *ret_n = n;
    return 0;
}

int spool_held_foreach(struct spool *s, void (*fn)(const char *node, uint64_t n, void *u), void *u)
{
    sqlite3_stmt *st = NULL;
    int rc;
    int r = sqlite_prepare(
        s->db, "SELECT node, count(*) FROM msgs WHERE held = 1 GROUP BY node ORDER BY min(id)",
        &st);
    if (r < 0)
        return r;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *node = (const char *)sqlite3_column_text(st, 0);
        if (node != NULL)
            fn(node, (uint64_t)sqlite3_column_int64(st, 1), u);
    }
    r = sqlite_errno(rc);
    sqlite3_finalize(st);
    return r;
}

uint64_t spool_held_messages(const struct spool *s)
{
    return s->held_count;
}

int64_t spool_held_bytes(const struct spool *s)
{
    return s->held_bytes;
}
