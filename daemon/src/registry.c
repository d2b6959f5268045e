#define _GNU_SOURCE
#include "registry.h"

#include <fleetgw/ident.h>

#include <errno.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sqlite_errno.h"

struct registry {
    sqlite3 *db;
    uint64_t gen; /* registry_generation() */
};

uint64_t registry_generation(const struct registry *r)
{
    return r->gen;
}

int registry_node_id(const uint8_t pub[REGISTRY_PUB_LEN], char id[REGISTRY_ID_LEN + 1])
{
    return ident_node_id(pub, id) == 0 ? 0 : -EINVAL;
}

/* Whether table nodes has column col: 1, 0, or a negative errno. */
static int has_column(sqlite3 *db, const char *col)
{
    sqlite3_stmt *st = NULL;
    int found = 0, s;
    int rc = sqlite_prepare(db, "SELECT name FROM pragma_table_info('nodes')", &st);
    if (rc < 0)
        return rc;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        const unsigned char *name = sqlite3_column_text(st, 0);
        if (name != NULL && strcmp((const char *)name, col) == 0)
            found = 1;
    }
    rc = s == SQLITE_DONE ? found : (sqlite_errno(s) ? sqlite_errno(s) : -EIO);
    sqlite3_finalize(st);
    return rc;
}

/* Columns added after the first release, in order: a registry written by an older fleetgwd
 * gets them (with their defaults) when it is opened. Each ALTER is one statement, so a
 * crash leaves the column either there or not. */
static const struct {
    const char *column, *sql;
} migrations[] = {
    {"profile", "ALTER TABLE nodes ADD COLUMN profile TEXT NOT NULL DEFAULT ''"},
    {"iak_sealed", "ALTER TABLE nodes ADD COLUMN iak_sealed BLOB"},
    {"tags", "ALTER TABLE nodes ADD COLUMN tags TEXT NOT NULL DEFAULT ''"},
};

static int migrate(sqlite3 *db)
{
    for (size_t i = 0; i < sizeof(migrations) / sizeof(migrations[0]); i++) {
        int rc = has_column(db, migrations[i].column);
        if (rc == 0)
            rc = sqlite_exec(db, migrations[i].sql);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int registry_open(const char *path, struct registry **ret)
{
    struct registry *r = calloc(1, sizeof(*r));
    int rc;
    if (r == NULL)
        return -ENOMEM;
    rc = sqlite_errno(sqlite3_open_v2(
        path, &r->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL));
    if (rc == 0) {
        sqlite3_busy_timeout(r->db, 2000);
        rc = sqlite_errno(
            sqlite3_exec(r->db,
                         "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                         "CREATE TABLE IF NOT EXISTS nodes ("
                         " id TEXT PRIMARY KEY, iak_pub BLOB NOT NULL,"
                         " device_class TEXT NOT NULL, fw_version TEXT NOT NULL DEFAULT '',"
                         " verdict TEXT NOT NULL DEFAULT 'unknown',"
                         " reason TEXT NOT NULL DEFAULT '',"
                         " verdict_time INTEGER NOT NULL DEFAULT 0,"
                         " last_seen INTEGER NOT NULL DEFAULT 0,"
                         " added INTEGER NOT NULL,"
                         " profile TEXT NOT NULL DEFAULT '',"
                         " iak_sealed BLOB, tags TEXT NOT NULL DEFAULT '');",
                         NULL, NULL, NULL));
    }
    if (rc == 0)
        rc = migrate(r->db);
    if (rc < 0) {
        registry_close(r);
        return rc;
    }
    *ret = r;
    return 0;
}

void registry_close(struct registry *r)
{
    if (r == NULL)
        return;
    sqlite3_close_v2(r->db);
    free(r);
}

int registry_batch_begin(struct registry *r)
{
    if (!sqlite3_get_autocommit(r->db))
        return 0;
    return sqlite_exec(r->db, "BEGIN IMMEDIATE");
}

int registry_batch_commit(struct registry *r)
{
    if (sqlite3_get_autocommit(r->db))
        return 0;
    int rc = sqlite_exec(r->db, "COMMIT");
    if (rc < 0 && !sqlite3_get_autocommit(r->db))
        (void)sqlite_exec(r->db, "ROLLBACK");
    return rc;
}

bool registry_batch_open(const struct registry *r)
{
    return !sqlite3_get_autocommit(r->db);
}

static bool text_ok(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c >= 0x7f)
            return false;
    }
    return true;
}

static void col_text(sqlite3_stmt *st, int col, char *dst, size_t cap)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    snprintf(dst, cap, "%s", t ? (const char *)t : "");
}

static void row_to_node(sqlite3_stmt *st, struct registry_node *n)
{
    memset(n, 0, sizeof(*n));
    col_text(st, 0, n->id, sizeof(n->id));
    int kb = sqlite3_column_bytes(st, 1);
    if (kb == REGISTRY_PUB_LEN) {
        memcpy(n->iak_pub, sqlite3_column_blob(st, 1), REGISTRY_PUB_LEN);
    } else if (kb == REGISTRY_IAK_ID_LEN) {
        n->symmetric = true;
        memcpy(n->iak_id, sqlite3_column_blob(st, 1), REGISTRY_IAK_ID_LEN);
    }
    int sb = sqlite3_column_bytes(st, 10);
    if (n->symmetric && sb > 0 && (size_t)sb <= sizeof(n->iak_sealed)) {
        memcpy(n->iak_sealed, sqlite3_column_blob(st, 10), (size_t)sb);
        n->iak_sealed_len = (size_t)sb;
    }
    col_text(st, 2, n->device_class, sizeof(n->device_class));
    col_text(st, 3, n->fw_version, sizeof(n->fw_version));
    col_text(st, 4, n->verdict, sizeof(n->verdict));
    col_text(st, 5, n->reason, sizeof(n->reason));
    n->verdict_time = sqlite3_column_int64(st, 6);
    n->last_seen = sqlite3_column_int64(st, 7);
    n->added = sqlite3_column_int64(st, 8);
    col_text(st, 9, n->profile, sizeof(n->profile));
    col_text(st, 11, n->tags, sizeof(n->tags));
}

#define NODE_COLS                                                                                  \
    "id, iak_pub, device_class, fw_version, verdict, reason, verdict_time, last_seen, added, "     \
    "profile, iak_sealed, tags"

int registry_add(struct registry *r, const uint8_t pub[REGISTRY_PUB_LEN], const char *device_class,
                 int64_t now, struct registry_node *ret)
{
    r->gen++; /* membership or verdict: what the broker snapshot holds */
    char id[REGISTRY_ID_LEN + 1];
    sqlite3_stmt *st = NULL;
    int rc = registry_node_id(pub, id);
    if (rc < 0)
        return rc;
    if (!text_ok(device_class, REGISTRY_TEXT_MAX))
        return -EINVAL;
    rc = sqlite_errno(sqlite3_prepare_v2(
        r->db, "INSERT INTO nodes(id, iak_pub, device_class, added) VALUES(?, ?, ?, ?)", -1, &st,
        NULL));
    if (rc < 0)
        goto out;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, pub, REGISTRY_PUB_LEN, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, device_class, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, now);
    rc = sqlite_errno(sqlite3_step(st));
    if (rc < 0)
        goto out;
    if (ret != NULL)
        rc = registry_get(r, id, ret);
out:
    sqlite3_finalize(st);
    return rc;
}

int registry_add_symmetric(struct registry *r, const uint8_t key_id[REGISTRY_IAK_ID_LEN],
                           const uint8_t *sealed, size_t sealed_len, const char *device_class,
                           int64_t now, struct registry_node *ret)
{
    r->gen++; /* membership or verdict: what the broker snapshot holds */
    char id[REGISTRY_ID_LEN + 1];
    sqlite3_stmt *st = NULL;
    int rc;
    if (sealed == NULL || sealed_len == 0 || sealed_len > REGISTRY_SEALED_MAX ||
        !text_ok(device_class, REGISTRY_TEXT_MAX))
        return -EINVAL;
    ident_sym_node_id(key_id, id);
    rc = sqlite_prepare(r->db,
                        "INSERT INTO nodes(id, iak_pub, device_class, added, iak_sealed)"
                        " VALUES(?, ?, ?, ?, ?)",
                        &st);
    if (rc < 0)
        goto out;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, key_id, REGISTRY_IAK_ID_LEN, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, device_class, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, now);
    sqlite3_bind_blob(st, 5, sealed, (int)sealed_len, SQLITE_STATIC);
    rc = sqlite_errno(sqlite3_step(st));
    if (rc < 0)
        goto out;
    if (ret != NULL)
        rc = registry_get(r, id, ret);
out:
    sqlite3_finalize(st);
    return rc;
}

int registry_get(struct registry *r, const char *id, struct registry_node *ret)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite_prepare(r->db, "SELECT " NODE_COLS " FROM nodes WHERE id = ?", &st);
    if (rc < 0)
        goto out;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int s = sqlite3_step(st);
    if (s == SQLITE_DONE) {
        rc = -ENOENT;
        goto out;
    }
    if (s != SQLITE_ROW) {
        rc = sqlite_errno(s) ? sqlite_errno(s) : -EIO;
        goto out;
    }
    row_to_node(st, ret);
    rc = 0;
out:
    sqlite3_finalize(st);
    return rc;
}

static int exec_id(struct registry *r, const char *sql, const char *id)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite_prepare(r->db, sql, &st);
    if (rc < 0)
        goto out;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    rc = sqlite_step_changed(r->db, st);
out:
    sqlite3_finalize(st);
    return rc;
}

int registry_remove(struct registry *r, const char *id)
{
    r->gen++; /* membership or verdict: what the broker snapshot holds */
    return exec_id(r, "DELETE FROM nodes WHERE id = ?", id);
}

int registry_set_verdict(struct registry *r, const char *id, const char *verdict,
                         const char *reason, const char *fw_version, int64_t now, bool seen)
{
    return registry_record_verdict(r, id, verdict, reason, fw_version, NULL, now, seen);
}

int registry_record_verdict(struct registry *r, const char *id, const char *verdict,
                            const char *reason, const char *fw_version, const char *profile,
                            int64_t now, bool seen)
{
    r->gen++; /* membership or verdict: what the broker snapshot holds */
    sqlite3_stmt *st = NULL;
    int rc = sqlite_prepare(r->db,
                            "UPDATE nodes SET verdict = ?1, reason = ?2, verdict_time = ?3,"
                            " last_seen = CASE WHEN ?4 THEN ?5 ELSE last_seen END,"
                            " fw_version = CASE WHEN ?6 = '' THEN fw_version ELSE ?7 END,"
                            " profile = CASE WHEN ?9 = '' THEN profile ELSE ?9 END WHERE id = ?8",
                            &st);
    if (rc < 0)
        goto out;
    sqlite3_bind_text(st, 1, verdict, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, reason, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now);
    sqlite3_bind_int(st, 4, seen ? 1 : 0);
    sqlite3_bind_int64(st, 5, now);
    sqlite3_bind_text(st, 6, fw_version ? fw_version : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, fw_version ? fw_version : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 8, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 9, profile ? profile : "", -1, SQLITE_STATIC);
    rc = sqlite_step_changed(r->db, st);
out:
    sqlite3_finalize(st);
    return rc;
}

bool registry_tags_valid(const char *tags)
{
    size_t n = strlen(tags), count = 0, run = 0;
    if (n > REGISTRY_TAGS_MAX)
        return false;
    for (size_t i = 0; i <= n; i++) {
        char c = tags[i];
        if (c == ',' || c == '\0') {
            if (run == 0 && n > 0)
                return false; /* empty tag: ",a", "a,,b", "a," */
            if (run > 0)
                count++;
            run = 0;
            continue;
        }
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-') ||
            ++run > REGISTRY_TAG_MAX)
            return false;
    }
    return count <= REGISTRY_TAGS_COUNT_MAX;
}

bool registry_has_tag(const struct registry_node *n, const char *tag)
{
    size_t tl = strlen(tag);
    for (const char *p = n->tags; *p;) {
        const char *e = strchr(p, ',');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == tl && memcmp(p, tag, tl) == 0)
            return true;
        if (e == NULL)
            break;
        p = e + 1;
    }
    return false;
}

int registry_set_tags(struct registry *r, const char *id, const char *tags)
{
    sqlite3_stmt *st = NULL;
    if (!registry_tags_valid(tags))
        return -EINVAL;
    int rc = sqlite_prepare(r->db, "UPDATE nodes SET tags = ? WHERE id = ?", &st);
    if (rc < 0)
        goto out;
    sqlite3_bind_text(st, 1, tags, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
    rc = sqlite_errno(sqlite3_step(st));
    if (rc == 0 && sqlite3_changes(r->db) == 0)
        rc = -ENOENT;
out:
    sqlite3_finalize(st);
    return rc;
}

int registry_touch(struct registry *r, const char *id, int64_t now)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite_prepare(r->db, "UPDATE nodes SET last_seen = ? WHERE id = ?", &st);
    if (rc < 0)
        goto out;
    sqlite3_bind_int64(st, 1, now);
    sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
    rc = sqlite_errno(sqlite3_step(st));
    if (rc == 0 && sqlite3_changes(r->db) == 0)
        rc = -ENOENT;
out:
    sqlite3_finalize(st);
    return rc;
}

int registry_foreach(struct registry *r, int (*fn)(const struct registry_node *n, void *u), void *u)
{
    sqlite3_stmt *st = NULL;
    struct registry_node n;
    int rc = sqlite_prepare(r->db, "SELECT " NODE_COLS " FROM nodes ORDER BY id", &st);
    if (rc < 0)
        goto out;
    int s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        row_to_node(st, &n);
        if (fn(&n, u) != 0)
            break;
    }
    rc = (s == SQLITE_ROW || s == SQLITE_DONE) ? 0 : (sqlite_errno(s) ? sqlite_errno(s) : -EIO);
out:
    sqlite3_finalize(st);
    return rc;
}
