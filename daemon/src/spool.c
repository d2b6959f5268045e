#define _GNU_SOURCE
#include "spool.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "sqlite_errno.h"

struct spool {
    sqlite3 *db;
    sqlite3_stmt *ins, *next, *del, *size_of, *cnt_add, *cnt_get;
    bool in_txn;
    int64_t max_bytes;
    int64_t bytes;      /* committed + pending bytes (topic + payload) */
    int64_t bytes_txn0; /* bytes at the start of the open transaction */
    uint64_t count;
    uint64_t count_txn0;
};

static int exec(sqlite3 *db, const char *sql)
{
    return sqlite_errno(sqlite3_exec(db, sql, NULL, NULL, NULL));
}

int spool_open(const char *path, int64_t max_bytes, struct spool **ret)
{
    struct spool *s = calloc(1, sizeof(*s));
    sqlite3_stmt *st = NULL;
    int r;

    if (s == NULL)
        return -ENOMEM;
    s->max_bytes = max_bytes;
    r = sqlite_errno(sqlite3_open_v2(
        path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL));
    if (r < 0)
        goto out;
    sqlite3_busy_timeout(s->db, 2000);
    /* WAL + synchronous=FULL: every COMMIT is fsync'ed in the WAL before it returns. */
    r = exec(s->db, "PRAGMA journal_mode=WAL;");
    if (r == 0)
        r = exec(s->db, "PRAGMA synchronous=FULL;");
    if (r == 0)
        r = exec(s->db, "CREATE TABLE IF NOT EXISTS msgs ("
                        " id INTEGER PRIMARY KEY AUTOINCREMENT,"
                        " ts INTEGER NOT NULL, node TEXT NOT NULL, topic TEXT NOT NULL,"
                        " payload BLOB NOT NULL, retain INTEGER NOT NULL DEFAULT 0);"
                        "CREATE INDEX IF NOT EXISTS msgs_ts ON msgs(ts);"
                        "CREATE TABLE IF NOT EXISTS counters ("
                        " name TEXT PRIMARY KEY, n INTEGER NOT NULL);");
    if (r < 0)
        goto out;
    r = sqlite_errno(sqlite3_prepare_v2(
        s->db, "INSERT INTO msgs(ts, node, topic, payload, retain) VALUES(?, ?, ?, ?, ?)", -1,
        &s->ins, NULL));
    if (r == 0)
        r = sqlite_errno(sqlite3_prepare_v2(
            s->db,
            "SELECT id, ts, node, topic, payload, retain FROM msgs WHERE id > ? ORDER BY id "
            "LIMIT 1",
            -1, &s->next, NULL));
    if (r == 0)
        r = sqlite_errno(
            sqlite3_prepare_v2(s->db, "DELETE FROM msgs WHERE id = ?", -1, &s->del, NULL));
    if (r == 0)
        r = sqlite_errno(sqlite3_prepare_v2(
            s->db, "SELECT length(topic) + length(payload) FROM msgs WHERE id = ?", -1, &s->size_of,
            NULL));
    if (r == 0)
        r = sqlite_errno(sqlite3_prepare_v2(s->db,
                                            "INSERT INTO counters(name, n) VALUES(?, ?) "
                                            "ON CONFLICT(name) DO UPDATE SET n = n + excluded.n",
                                            -1, &s->cnt_add, NULL));
    if (r == 0)
        r = sqlite_errno(sqlite3_prepare_v2(s->db, "SELECT n FROM counters WHERE name = ?", -1,
                                            &s->cnt_get, NULL));
    if (r == 0)
        r = sqlite_errno(sqlite3_prepare_v2(
            s->db, "SELECT count(*), coalesce(sum(length(topic) + length(payload)), 0) FROM msgs",
            -1, &st, NULL));
    if (r < 0)
        goto out;
    if (sqlite3_step(st) != SQLITE_ROW) {
        r = -EIO;
        goto out;
    }
    s->count = (uint64_t)sqlite3_column_int64(st, 0);
    s->bytes = sqlite3_column_int64(st, 1);
    *ret = s;
    s = NULL;
    r = 0;
out:
    sqlite3_finalize(st);
    spool_close(s);
    return r;
}

void spool_close(struct spool *s)
{
    if (s == NULL)
        return;
    if (s->in_txn && s->db != NULL)
        (void)exec(s->db, "ROLLBACK;");
    sqlite3_finalize(s->ins);
    sqlite3_finalize(s->next);
    sqlite3_finalize(s->del);
    sqlite3_finalize(s->size_of);
    sqlite3_finalize(s->cnt_add);
    sqlite3_finalize(s->cnt_get);
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
    int r = exec(s->db, "BEGIN IMMEDIATE;");
    if (r < 0)
        return r;
    s->in_txn = true;
    s->bytes_txn0 = s->bytes;
    s->count_txn0 = s->count;
    return 0;
}

int spool_append(struct spool *s, const char *node, const char *topic, const void *payload,
                 size_t len, int64_t now, bool retain, int64_t *ret_id)
{
    size_t tl = strlen(topic), nl = strlen(node);
    int r;

    if (tl == 0 || tl >= SPOOL_TOPIC_MAX || nl == 0 || nl >= SPOOL_NODE_MAX ||
        len > (size_t)INT32_MAX)
        return -EINVAL;
    int64_t need = (int64_t)(tl + len);
    if (need > s->max_bytes - s->bytes)
        return -ENOSPC;
    r = begin(s);
    if (r < 0)
        return r;
    sqlite3_reset(s->ins);
    sqlite3_bind_int64(s->ins, 1, now);
    sqlite3_bind_text(s->ins, 2, node, (int)nl, SQLITE_STATIC);
    sqlite3_bind_text(s->ins, 3, topic, (int)tl, SQLITE_STATIC);
    sqlite3_bind_blob(s->ins, 4, len ? payload : "", (int)len, SQLITE_STATIC);
    sqlite3_bind_int(s->ins, 5, retain ? 1 : 0);
    r = sqlite_errno(sqlite3_step(s->ins));
    sqlite3_clear_bindings(s->ins);
    sqlite3_reset(s->ins);
    if (r < 0)
        return r;
    s->bytes += need;
    s->count++;
    if (ret_id != NULL)
        *ret_id = sqlite3_last_insert_rowid(s->db);
    return 0;
}

int spool_commit(struct spool *s)
{
    if (!s->in_txn)
        return 0;
    int r = exec(s->db, "COMMIT;");
    if (r < 0) {
        (void)exec(s->db, "ROLLBACK;");
        s->bytes = s->bytes_txn0;
        s->count = s->count_txn0;
    }
    s->in_txn = false;
    return r;
}

void spool_msg_clear(struct spool_msg *msg)
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

int spool_next(struct spool *s, int64_t after, struct spool_msg *msg)
{
    int r;
    memset(msg, 0, sizeof(*msg));
    sqlite3_reset(s->next);
    sqlite3_bind_int64(s->next, 1, after);
    int rc = sqlite3_step(s->next);
    if (rc == SQLITE_DONE) {
        r = -ENOENT;
        goto out;
    }
    if (rc != SQLITE_ROW) {
        r = sqlite_errno(rc);
        if (r == 0)
            r = -EIO;
        goto out;
    }
    msg->id = sqlite3_column_int64(s->next, 0);
    msg->ts = sqlite3_column_int64(s->next, 1);
    copy_text(msg->node, sizeof(msg->node), sqlite3_column_text(s->next, 2));
    copy_text(msg->topic, sizeof(msg->topic), sqlite3_column_text(s->next, 3));
    const void *p = sqlite3_column_blob(s->next, 4);
    int n = sqlite3_column_bytes(s->next, 4);
    msg->payload = malloc(n > 0 ? (size_t)n : 1);
    if (msg->payload == NULL) {
        r = -ENOMEM;
        goto out;
    }
    if (n > 0)
        memcpy(msg->payload, p, (size_t)n);
    msg->len = (size_t)n;
    msg->retain = sqlite3_column_int(s->next, 5) != 0;
    r = 0;
out:
    sqlite3_reset(s->next);
    return r;
}

int spool_delete(struct spool *s, int64_t id)
{
    int r = begin(s);
    if (r < 0)
        return r;
    int64_t sz = 0;
    sqlite3_reset(s->size_of);
    sqlite3_bind_int64(s->size_of, 1, id);
    if (sqlite3_step(s->size_of) == SQLITE_ROW)
        sz = sqlite3_column_int64(s->size_of, 0);
    else
        sz = -1;
    sqlite3_reset(s->size_of);
    if (sz < 0)
        return -ENOENT;
    sqlite3_reset(s->del);
    sqlite3_bind_int64(s->del, 1, id);
    r = sqlite_errno(sqlite3_step(s->del));
    sqlite3_reset(s->del);
    if (r < 0)
        return r;
    s->bytes -= sz;
    s->count--;
    return 0;
}

int spool_expire(struct spool *s, int64_t now, int64_t ttl, uint64_t *ret_n)
{
    sqlite3_stmt *st = NULL;
    int r = begin(s);
    *ret_n = 0;
    if (r < 0)
        return r;
    r = sqlite_errno(sqlite3_prepare_v2(
        s->db,
        "SELECT count(*), coalesce(sum(length(topic) + length(payload)), 0) FROM msgs WHERE ts < ?",
        -1, &st, NULL));
    if (r < 0)
        goto out;
    sqlite3_bind_int64(st, 1, now - ttl);
    if (sqlite3_step(st) != SQLITE_ROW) {
        r = -EIO;
        goto out;
    }
    uint64_t n = (uint64_t)sqlite3_column_int64(st, 0);
    int64_t b = sqlite3_column_int64(st, 1);
    sqlite3_finalize(st);
    st = NULL;
    if (n == 0)
        goto out;
    r = sqlite_errno(sqlite3_prepare_v2(s->db, "DELETE FROM msgs WHERE ts < ?", -1, &st, NULL));
    if (r < 0)
        goto out;
    sqlite3_bind_int64(st, 1, now - ttl);
    r = sqlite_errno(sqlite3_step(st));
    if (r < 0)
        goto out;
    s->bytes -= b;
    s->count -= n;
    *ret_n = n;
    r = spool_count(s, "expired", n);
out:
    sqlite3_finalize(st);
    return r;
}

int spool_count(struct spool *s, const char *name, uint64_t n)
{
    int r = begin(s);
    if (r < 0)
        return r;
    sqlite3_reset(s->cnt_add);
    sqlite3_bind_text(s->cnt_add, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s->cnt_add, 2, (int64_t)n);
    r = sqlite_errno(sqlite3_step(s->cnt_add));
    sqlite3_clear_bindings(s->cnt_add);
    sqlite3_reset(s->cnt_add);
    return r;
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
    return n;
}

bool spool_dirty(const struct spool *s)
{
    return s->in_txn;
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
    int r = sqlite_errno(
        sqlite3_prepare_v2(s->db, "SELECT name, n FROM counters ORDER BY name", -1, &st, NULL));
    if (r < 0)
        goto out;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        fn((const char *)sqlite3_column_text(st, 0), (uint64_t)sqlite3_column_int64(st, 1), u);
    r = sqlite_errno(rc);
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
