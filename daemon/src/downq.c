#define _GNU_SOURCE
#include "downq.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "sqlite_errno.h"

struct downq {
    struct spool *spool;
    sqlite3 *db;
    sqlite3_stmt *ins, *next, *del, *size_of, *sent, *node_cnt, *totals;
    uint64_t count;
    int64_t bytes;
    bool stale; /* a transaction was rolled back: recount from the table */
};

static void on_rollback(void *u)
{
    struct downq *q = u;
    q->stale = true;
}

static int step_error(int rc)
{
    int r = sqlite_errno(rc);
    return r < 0 ? r : -EIO;
}

/* Recounts rows and bytes from the table (as this connection sees it). */
static int refresh(struct downq *q)
{
    int r;
    sqlite3_reset(q->totals);
    int rc = sqlite3_step(q->totals);
    if (rc != SQLITE_ROW) {
        r = step_error(rc);
        goto out;
    }
    q->count = (uint64_t)sqlite3_column_int64(q->totals, 0);
    q->bytes = sqlite3_column_int64(q->totals, 1);
    q->stale = false;
    r = 0;
out:
    sqlite3_reset(q->totals);
    return r;
}

static int fresh(struct downq *q)
{
    return q->stale ? refresh(q) : 0;
}

int downq_open(struct spool *s, struct downq **ret)
{
    struct downq *q = calloc(1, sizeof(*q));
    int r;

    *ret = NULL;
    if (q == NULL)
        return -ENOMEM;
    q->spool = s;
    q->db = spool_sqlite(s);
    r = sqlite_errno(sqlite3_exec(q->db,
                                  "CREATE TABLE IF NOT EXISTS down ("
                                  " id INTEGER PRIMARY KEY AUTOINCREMENT,"
                                  " ts INTEGER NOT NULL, node TEXT NOT NULL, topic TEXT NOT NULL,"
                                  " payload BLOB NOT NULL, sent INTEGER NOT NULL DEFAULT 0);"
                                  "CREATE INDEX IF NOT EXISTS down_node ON down(node);"
                                  "CREATE INDEX IF NOT EXISTS down_ts ON down(ts);",
                                  NULL, NULL, NULL));
    const struct sqlite_stmt_spec stmts[] = {
        {&q->ins, "INSERT INTO down(ts, node, topic, payload) VALUES(?, ?, ?, ?)"},
        {&q->next, "SELECT id, ts, node, topic, payload, sent FROM down WHERE id > ? "
                   "ORDER BY id LIMIT 1"},
        {&q->del, "DELETE FROM down WHERE id = ?"},
        {&q->size_of, "SELECT length(topic) + length(payload) FROM down WHERE id = ?"},
        {&q->sent, "UPDATE down SET sent = sent + 1 WHERE id = ?"},
        {&q->node_cnt, "SELECT count(*) FROM down WHERE node = ?"},
        {&q->totals,
         "SELECT count(*), coalesce(sum(length(topic) + length(payload)), 0) FROM down"},
    };
    if (r == 0)
        r = sqlite_prepare_all(q->db, stmts, sizeof(stmts) / sizeof(stmts[0]));
    if (r == 0)
        r = refresh(q);
    if (r < 0)
        goto out;
    sqlite3_rollback_hook(q->db, on_rollback, q);
    *ret = q;
    q = NULL;
out:
    downq_close(q);
    return r;
}

void downq_close(struct downq *q)
{
    if (q == NULL)
        return;
    if (q->db != NULL)
        (void)sqlite3_rollback_hook(q->db, NULL, NULL);
    sqlite3_finalize(q->ins);
    sqlite3_finalize(q->next);
    sqlite3_finalize(q->del);
    sqlite3_finalize(q->size_of);
    sqlite3_finalize(q->sent);
    sqlite3_finalize(q->node_cnt);
    sqlite3_finalize(q->totals);
    free(q);
}

int downq_node_count(struct downq *q, const char *node, uint64_t *ret_n)
{
    int r;
    *ret_n = 0;
    sqlite3_reset(q->node_cnt);
    sqlite3_bind_text(q->node_cnt, 1, node, -1, SQLITE_STATIC);
    int rc = sqlite3_step(q->node_cnt);
    if (rc != SQLITE_ROW) {
        r = step_error(rc);
        goto out;
    }
    *ret_n = (uint64_t)sqlite3_column_int64(q->node_cnt, 0);
    r = 0;
out:
    sqlite3_clear_bindings(q->node_cnt);
    sqlite3_reset(q->node_cnt);
    return r;
}

int downq_append(struct downq *q, const char *node, const char *topic, const void *payload,
                 size_t len, int64_t now, int64_t max_per_node, int64_t max_bytes, int64_t *ret_id)
{
    size_t tl = strlen(topic), nl = strlen(node);
    uint64_t per_node = 0;
    int r;

    if (tl == 0 || tl >= SPOOL_TOPIC_MAX || nl == 0 || nl >= SPOOL_NODE_MAX ||
        len > (size_t)INT32_MAX)
        return -EINVAL;
    r = fresh(q);
    if (r < 0)
        return r;
    int64_t need = (int64_t)(tl + len);
    if (need > max_bytes - q->bytes)
        return -EDQUOT;
    r = downq_node_count(q, node, &per_node);
    if (r < 0)
        return r;
    if (max_per_node < 0 || per_node >= (uint64_t)max_per_node)
        return -ENOBUFS;
    r = spool_begin(q->spool);
    if (r < 0)
        return r;
    sqlite3_reset(q->ins);
    sqlite3_bind_int64(q->ins, 1, now);
    sqlite3_bind_text(q->ins, 2, node, (int)nl, SQLITE_STATIC);
    sqlite3_bind_text(q->ins, 3, topic, (int)tl, SQLITE_STATIC);
    sqlite3_bind_blob(q->ins, 4, len ? payload : "", (int)len, SQLITE_STATIC);
    r = sqlite_errno(sqlite3_step(q->ins));
    sqlite3_clear_bindings(q->ins);
    sqlite3_reset(q->ins);
    if (r < 0)
        return r;
    q->bytes += need;
    q->count++;
    if (ret_id != NULL)
        *ret_id = sqlite3_last_insert_rowid(q->db);
    return 0;
}

void downq_msg_clear(struct downq_msg *msg)
{
    free(msg->payload);
    memset(msg, 0, sizeof(*msg));
}

static void copy_text(char *dst, size_t cap, const unsigned char *src)
{
    size_t n = src ? strlen((const char *)src) : 0;
    if (n >= cap)
        n = cap - 1;
    if (n)
        memcpy(dst, src, n);
    dst[n] = '\0';
}

int downq_next(struct downq *q, int64_t after, struct downq_msg *msg)
{
    int r;
    memset(msg, 0, sizeof(*msg));
    sqlite3_reset(q->next);
    sqlite3_bind_int64(q->next, 1, after);
    int rc = sqlite3_step(q->next);
    if (rc == SQLITE_DONE) {
        r = -ENOENT;
        goto out;
    }
    if (rc != SQLITE_ROW) {
        r = step_error(rc);
        goto out;
    }
    msg->id = sqlite3_column_int64(q->next, 0);
    msg->ts = sqlite3_column_int64(q->next, 1);
    copy_text(msg->node, sizeof(msg->node), sqlite3_column_text(q->next, 2));
    copy_text(msg->topic, sizeof(msg->topic), sqlite3_column_text(q->next, 3));
    const void *p = sqlite3_column_blob(q->next, 4);
    int n = sqlite3_column_bytes(q->next, 4);
    msg->payload = malloc(n > 0 ? (size_t)n : 1);
    if (msg->payload == NULL) {
        r = -ENOMEM;
        goto out;
    }
    if (n > 0)
        memcpy(msg->payload, p, (size_t)n);
    msg->len = (size_t)n;
    msg->sent = sqlite3_column_int64(q->next, 5);
    r = 0;
out:
    sqlite3_reset(q->next);
    return r;
}

int downq_mark_sent(struct downq *q, int64_t id)
{
    int r = spool_begin(q->spool);
    if (r < 0)
        return r;
    sqlite3_reset(q->sent);
    sqlite3_bind_int64(q->sent, 1, id);
    r = sqlite_errno(sqlite3_step(q->sent));
    sqlite3_reset(q->sent);
    if (r == 0 && sqlite3_changes(q->db) == 0)
        r = -ENOENT;
    return r;
}

int downq_delete(struct downq *q, int64_t id)
{
    int r = spool_begin(q->spool);
    if (r < 0)
        return r;
    r = fresh(q);
    if (r < 0)
        return r;
    int64_t sz = -1;
    sqlite3_reset(q->size_of);
    sqlite3_bind_int64(q->size_of, 1, id);
    if (sqlite3_step(q->size_of) == SQLITE_ROW)
        sz = sqlite3_column_int64(q->size_of, 0);
    sqlite3_reset(q->size_of);
    if (sz < 0)
        return -ENOENT;
    sqlite3_reset(q->del);
    sqlite3_bind_int64(q->del, 1, id);
    r = sqlite_errno(sqlite3_step(q->del));
    sqlite3_reset(q->del);
    if (r < 0)
        return r;
    q->bytes -= sz;
    q->count--;
    return 0;
}

int downq_expire(struct downq *q, int64_t now, int64_t ttl, int64_t after, uint64_t *ret_n)
{
    sqlite3_stmt *st = NULL;
    *ret_n = 0;
    int r = spool_begin(q->spool);
    if (r == 0)
        r = fresh(q);
    if (r < 0)
        return r;
    r = sqlite_prepare(
        q->db,
        "SELECT count(*), coalesce(sum(length(topic) + length(payload)), 0) FROM down "
        "WHERE ts < ? AND id > ?",
        &st);
    if (r < 0)
        goto out;
    sqlite3_bind_int64(st, 1, now - ttl);
    sqlite3_bind_int64(st, 2, after);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        r = step_error(rc);
        goto out;
    }
    uint64_t n = (uint64_t)sqlite3_column_int64(st, 0);
    int64_t b = sqlite3_column_int64(st, 1);
    sqlite3_finalize(st);
    st = NULL;
    if (n == 0)
        goto out;
    r = sqlite_prepare(q->db, "DELETE FROM down WHERE ts < ? AND id > ?", &st);
    if (r < 0)
        goto out;
    sqlite3_bind_int64(st, 1, now - ttl);
    sqlite3_bind_int64(st, 2, after);
    r = sqlite_errno(sqlite3_step(st));
    if (r < 0)
        goto out;
    q->bytes -= b;
    q->count -= n;
    *ret_n = n;
    r = spool_count(q->spool, "down_expired", n);
out:
    sqlite3_finalize(st);
    return r;
}

uint64_t downq_count(struct downq *q)
{
    (void)fresh(q);
    return q->count;
}

int64_t downq_bytes(struct downq *q)
{
    (void)fresh(q);
    return q->bytes;
}
