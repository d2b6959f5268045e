/* Spool: group commit, order, acknowledgement (deleted at commit), quota, TTL, counters
 * (pending until commit), persistence across reopen, the in-memory window of new messages
 * agreeing with the database. */
#include "check.h"
#include "spool.h"

#include <sqlite3.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void held_cb(const char *node, uint64_t n, void *u);

/* Held rows (issue 15): written like any other, never handed out by spool_next nor expired
 * by the TTL, still held after a reopen (a crash or restart), released in their order after
 * every row there is, or dropped; a spool of an earlier version gets the column. */
/* A spool database and its WAL files. */
static void remove_db(const char *path)
{
    char f[300];
    const char *sfx[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        snprintf(f, sizeof(f), "%s%s", path, sfx[i]);
        unlink(f);
    }
}

static void test_held(const char *dir)
{
    char path[256];
    struct spool *s = NULL;
    struct spool_msg m;
    int64_t a0 = 0, a1 = 0, h1 = 0, h3 = 0, later = 0;
    uint64_t n = 0;

    snprintf(path, sizeof(path), "%s/held.db", dir);
    /* a spool written before issue 15: no held column */
    sqlite3 *db = NULL;
    CHECK_EQ_INT(sqlite3_open(path, &db), SQLITE_OK);
    CHECK_EQ_INT(sqlite3_exec(db,
                              "CREATE TABLE msgs (id INTEGER PRIMARY KEY, ts INTEGER NOT NULL,"
                              " node TEXT NOT NULL, topic TEXT NOT NULL, payload BLOB NOT NULL,"
                              " retain INTEGER NOT NULL DEFAULT 0);"
                              "INSERT INTO msgs VALUES(1, 100, 'n0', 'p/nodes/n0/o', 'old', 0);",
                              NULL, NULL, NULL),
                 SQLITE_OK);
    sqlite3_close(db);

    CHECK_EQ_INT(spool_open(path, 1 << 20, &s), 0);
    CHECK_EQ_INT(spool_held_messages(s), 0);
    CHECK_EQ_INT(spool_append(s, "n1", "p/nodes/n1/a", "a0", 2, 1000, false, &a0), 0);
    CHECK_EQ_INT(spool_hold(s, "n2", "p/nodes/n2/a", "h1", 2, 1000, 1000, &h1), 0);
    CHECK_EQ_INT(spool_hold(s, "n2", "p/nodes/n2/a", "h2", 2, 1000, 1000, NULL), 0);
    CHECK_EQ_INT(spool_append(s, "n1", "p/nodes/n1/a", "a1", 2, 1000, false, &a1), 0);
    CHECK_EQ_INT(spool_hold(s, "n2", "p/nodes/n2/a", "h3", 2, 1000, 1000, &h3), 0);
    CHECK(a0 < h1 && h1 < a1 && a1 < h3);
    CHECK_EQ_INT(spool_hold(s, "n2", "p/nodes/n2/a", "h4", 2, 1000, 3 * 14 + 13, NULL), -ENOBUFS);
    CHECK_EQ_INT(spool_commit(s), 0);
    CHECK_EQ_INT(spool_messages(s), 6);
    CHECK_EQ_INT(spool_held_messages(s), 3);
    CHECK_EQ_INT(spool_held_bytes(s), 3 * 14);
    /* the drain sees the old row and n1's, never n2's */
    const char *want[] = {"old", "a0", "a1"};
    int64_t after = 0;
    for (int i = 0; i < 3; i++) {
        CHECK_EQ_INT(spool_next(s, after, &m), 0);
        CHECK(m.len == strlen(want[i]) && memcmp(m.payload, want[i], m.len) == 0);
        after = m.id;
        spool_msg_clear(&m);
    }
    CHECK_EQ_INT(after, a1);
    CHECK_EQ_INT(spool_next(s, after, &m), -ENOENT);
    /* TTL expiry leaves held rows alone */
    CHECK_EQ_INT(spool_expire(s, 1000000, 10, &n), 0);
    CHECK_EQ_INT(n, 3);
    CHECK_EQ_INT(spool_commit(s), 0);
    CHECK_EQ_INT(spool_messages(s), 3);
    CHECK_EQ_INT(spool_held_messages(s), 3);
    /* a release that was never committed (a crash): still held after the reopen */
    CHECK_EQ_INT(spool_release(s, "n2", &n), 0);
    CHECK_EQ_INT(n, 3);
    CHECK_EQ_INT(spool_held_messages(s), 0);
    spool_close(s);
    s = NULL;
    CHECK_EQ_INT(spool_open(path, 1 << 20, &s), 0);
    CHECK_EQ_INT(spool_held_messages(s), 3);
    CHECK_EQ_INT(spool_held_bytes(s), 3 * 14);
    CHECK_EQ_INT(spool_next(s, 0, &m), -ENOENT);
    /* released: after every row there is, in their order, then a later message of n2 */
    CHECK_EQ_INT(spool_release(s, "n2", &n), 0);
    CHECK_EQ_INT(n, 3);
    CHECK_EQ_INT(spool_append(s, "n2", "p/nodes/n2/a", "l", 1, 1001, false, &later), 0);
    CHECK_EQ_INT(spool_commit(s), 0);
    CHECK_EQ_INT(spool_held_messages(s), 0);
    CHECK_EQ_INT(spool_held_bytes(s), 0);
    CHECK_EQ_INT(spool_messages(s), 4);
    CHECK_EQ_INT(spool_release(s, "n2", &n), 0); /* nothing left: nothing happens */
    CHECK_EQ_INT(n, 0);
    const char *rel[] = {"h1", "h2", "h3", "l"};
    after = a1;
    for (int i = 0; i < 4; i++) {
        CHECK_EQ_INT(spool_next(s, after, &m), 0);
        CHECK(m.len == strlen(rel[i]) && memcmp(m.payload, rel[i], m.len) == 0);
        CHECK(m.id > h3 && m.ts == (i < 3 ? 1000 : 1001));
        after = m.id;
        spool_msg_clear(&m);
    }
    CHECK_EQ_INT(after, later);
    CHECK_EQ_INT(spool_next(s, after, &m), -ENOENT);
    /* dropped: gone, and the sizes follow */
    int64_t bytes = spool_bytes(s);
    CHECK_EQ_INT(spool_hold(s, "n3", "p/nodes/n3/a", "q1", 2, 1002, 1000, NULL), 0);
    CHECK_EQ_INT(spool_hold(s, "n3", "p/nodes/n3/a", "q2", 2, 1002, 1000, NULL), 0);
    CHECK_EQ_INT(spool_hold(s, "n4", "p/nodes/n4/a", "k", 1, 1002, 1000, NULL), 0);
    CHECK_EQ_INT(spool_commit(s), 0);
    unsigned nodes = 0;
    CHECK_EQ_INT(spool_held_foreach(s, held_cb, &nodes), 0);
    CHECK_EQ_INT(nodes, 2 * 10 + 1); /* n3 (2), then n4 (1) */
    CHECK_EQ_INT(spool_drop_held(s, "n3", &n), 0);
    CHECK_EQ_INT(n, 2);
    CHECK_EQ_INT(spool_commit(s), 0);
    CHECK_EQ_INT(spool_held_messages(s), 1);
    CHECK_EQ_INT(spool_bytes(s), bytes + 13);
    CHECK_EQ_INT(spool_next(s, later, &m), -ENOENT);
    spool_close(s);
    remove_db(path);
}

static void held_cb(const char *node, uint64_t n, void *u)
{
    unsigned *acc = u;
    *acc = *acc * 10 + (unsigned)n;
    CHECK((n == 2 && strcmp(node, "n3") == 0) || (n == 1 && strcmp(node, "n4") == 0));
}

/* The edge_seen mark: pending until a commit, then read back by the next open; a rolled
 * back or uncommitted value is not. */
static void test_edge_seen(const char *dir)
{
    char path[256];
    struct spool *s = NULL;
    snprintf(path, sizeof(path), "%s/seen.db", dir);
    CHECK_EQ_INT(spool_open(path, 1 << 20, &s), 0);
    CHECK_EQ_INT(spool_edge_seen(s), 0);
    CHECK(!spool_dirty(s));
    spool_set_edge_seen(s, 1765000000);
    CHECK(spool_dirty(s));
    CHECK_EQ_INT(spool_commit(s), 0);
    CHECK(!spool_dirty(s));
    spool_set_edge_seen(s, 1765000099); /* never committed */
    spool_close(s);
    s = NULL;
    CHECK_EQ_INT(spool_open(path, 1 << 20, &s), 0);
    CHECK_EQ_INT(spool_edge_seen(s), 1765000000);
    spool_close(s);
    remove_db(path);
}

int main(void)
{
    char dir[] = "/tmp/fleetgw-spooltest-XXXXXX";
    char path[256];
    struct spool *s = NULL;
    struct spool_msg m;
    int64_t id1 = 0, id2 = 0, id3 = 0;

    if (mkdtemp(dir) == NULL)
        check_skip("cannot create a temporary directory");
    snprintf(path, sizeof(path), "%s/spool.db", dir);
    test_edge_seen(dir);

    CHECK_EQ_INT(spool_open(path, 100, &s), 0);
    CHECK_EQ_INT(spool_append(s, "n1", "p/nodes/n1/a", "hello", 5, 1000, false, &id1), 0);
    CHECK_EQ_INT(spool_append(s, "n2", "p/nodes/n2/a", "", 0, 1000, true, &id2), 0);
    CHECK_EQ_INT(spool_append(s, "n1", "p/nodes/n1/b", "world", 5, 2000, false, &id3), 0);
    CHECK(id1 < id2 && id2 < id3);
    CHECK_EQ_INT(spool_count(s, "too_large", 2), 0);
    CHECK_EQ_INT(spool_commit(s), 0);
    CHECK_EQ_INT(spool_messages(s), 3);
    CHECK_EQ_INT(spool_bytes(s), 12 + 5 + 12 + 0 + 12 + 5);

    /* Quota: 46 bytes used of 100; a 60-byte message is refused, nothing written. */
    char big[60];
    memset(big, 'x', sizeof(big));
    CHECK_EQ_INT(spool_append(s, "n1", "p/nodes/n1/c", big, sizeof(big), 3000, false, NULL),
                 -ENOSPC);
    CHECK_EQ_INT(spool_messages(s), 3);
    CHECK_EQ_INT(spool_append(s, "", "t", "x", 1, 0, false, NULL), -EINVAL);

    /* In order. */
    CHECK_EQ_INT(spool_next(s, 0, &m), 0);
    CHECK_EQ_INT(m.id, id1);
    CHECK(strcmp(m.node, "n1") == 0 && strcmp(m.topic, "p/nodes/n1/a") == 0);
    CHECK(m.len == 5 && memcmp(m.payload, "hello", 5) == 0);
    spool_msg_clear(&m);
    CHECK_EQ_INT(spool_next(s, id1, &m), 0);
    CHECK_EQ_INT(m.id, id2);
    CHECK_EQ_INT(m.len, 0);
    CHECK(m.retain);
    spool_msg_clear(&m);
    CHECK_EQ_INT(spool_next(s, id3, &m), -ENOENT);

    /* Ack: deleted by the next commit, counted once as relayed_up; an id acked twice (or
     * that no longer exists) is not counted again. */
    CHECK_EQ_INT(spool_ack(s, id1), 0);
    CHECK_EQ_INT(spool_messages(s), 3); /* not before the commit */
    CHECK(spool_dirty(s));
    CHECK_EQ_INT(spool_commit(s), 0);
    CHECK(!spool_dirty(s));
    CHECK_EQ_INT(spool_messages(s), 2);
    CHECK_EQ_INT(spool_counter(s, "relayed_up"), 1);
    CHECK_EQ_INT(spool_ack(s, id1), 0);
    CHECK_EQ_INT(spool_commit(s), 0);
    CHECK_EQ_INT(spool_counter(s, "relayed_up"), 1);
    CHECK_EQ_INT(spool_messages(s), 2);
    CHECK_EQ_INT(spool_append(s, "n3", "p/nodes/n3/a", "lost", 4, 3000, false, NULL), 0);
    spool_close(s); /* closes with an open transaction: rolled back */
    s = NULL;
    CHECK_EQ_INT(spool_open(path, 100, &s), 0);
    CHECK_EQ_INT(spool_messages(s), 2);
    CHECK_EQ_INT(spool_bytes(s), 12 + 12 + 5);
    CHECK_EQ_INT(spool_counter(s, "too_large"), 2);
    CHECK_EQ_INT(spool_next(s, 0, &m), 0);
    CHECK_EQ_INT(m.id, id2);
    spool_msg_clear(&m);

    /* Ids are never reused, even after the highest row was deleted and the spool reopened. */
    CHECK_EQ_INT(spool_ack(s, id3), 0);
    CHECK_EQ_INT(spool_commit(s), 0);
    spool_close(s);
    s = NULL;
    CHECK_EQ_INT(spool_open(path, 100, &s), 0);
    int64_t id4 = 0;
    CHECK_EQ_INT(spool_append(s, "n1", "p/nodes/n1/d", "x", 1, 5000, false, &id4), 0);
    CHECK(id4 > id3);
    CHECK_EQ_INT(spool_commit(s), 0);
    CHECK_EQ_INT(spool_counter(s, "relayed_up"), 2);

    /* Counters are pending until the commit, and visible (added) before it. */
    CHECK_EQ_INT(spool_count(s, "too_large", 3), 0);
    CHECK_EQ_INT(spool_counter(s, "too_large"), 5);
    char longname[SPOOL_COUNTER_NAME_MAX + 2];
    memset(longname, 'c', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    CHECK_EQ_INT(spool_count(s, longname, 1), -EINVAL);
    CHECK_EQ_INT(spool_commit(s), 0);
    CHECK_EQ_INT(spool_counter(s, "too_large"), 5);

    /* TTL: at now=1500 with ttl=100, id2 (ts 1000) expires, id4 (ts 5000) stays. */
    uint64_t n = 0;
    CHECK_EQ_INT(spool_expire(s, 1500, 100, &n), 0);
    CHECK_EQ_INT(n, 1);
    CHECK_EQ_INT(spool_commit(s), 0);
    CHECK_EQ_INT(spool_counter(s, "expired"), 1);
    CHECK_EQ_INT(spool_messages(s), 1);
    CHECK_EQ_INT(spool_next(s, 0, &m), 0);
    CHECK_EQ_INT(m.id, id4);
    spool_msg_clear(&m);

    /* The window of new messages hands out exactly what the database holds: a long run
     * (more than the window keeps) read with spool_next, interleaved with acks, agrees row
     * by row with a replay from the database after reopening. */
    CHECK_EQ_INT(spool_ack(s, id4), 0);
    CHECK_EQ_INT(spool_commit(s), 0);
    spool_set_quota(s, 64LL * 1024 * 1024);
    enum { RUN = 6000 };
    int64_t first = 0, last = 0, after = 0;
    char pl[32];
    unsigned bad = 0;
    for (int i = 0; i < RUN; i++) {
        int64_t id = 0;
        snprintf(pl, sizeof(pl), "m%05d", i);
        CHECK_EQ_INT(spool_append(s, "n9", "p/nodes/n9/w", pl, strlen(pl), 6000, false, &id), 0);
        if (i == 0)
            first = id;
        last = id;
        if (i % 100 == 99) {
            CHECK_EQ_INT(spool_commit(s), 0);
            /* hand out all but the last 10, ack every other one */
            while (after < last - 10) {
                if (spool_next(s, after, &m) != 0) {
                    bad++;
                    break;
                }
                snprintf(pl, sizeof(pl), "m%05d", (int)(m.id - first));
                if (m.len != strlen(pl) || memcmp(m.payload, pl, m.len) != 0 ||
                    strcmp(m.topic, "p/nodes/n9/w") != 0)
                    bad++;
                after = m.id;
                if (m.id % 2 == 0)
                    CHECK_EQ_INT(spool_ack(s, m.id), 0);
                spool_msg_clear(&m);
            }
        }
    }
    CHECK_EQ_INT(bad, 0);
    CHECK_EQ_INT(spool_commit(s), 0);

    /* A backlog larger than the window (it fills, the rest is only in the database), read
     * while one more row is appended, then replayed from the start (as after a reconnect):
     * both passes give every row in id order, once, with its payload. */
    enum { BACKLOG = 12000 };
    int64_t bfirst = 0, blast = 0;
    for (int i = 0; i < BACKLOG; i++) {
        int64_t id = 0;
        snprintf(pl, sizeof(pl), "b%05d", i);
        CHECK_EQ_INT(spool_append(s, "n8", "p/nodes/n8/b", pl, strlen(pl), 7000, false, &id), 0);
        if (i == 0)
            bfirst = id;
        blast = id;
    }
    CHECK_EQ_INT(blast - bfirst + 1, BACKLOG);
    CHECK_EQ_INT(spool_commit(s), 0);
    for (int pass = 0; pass < 2; pass++) {
        int64_t expect_id = bfirst;
        after = bfirst - 1;
        while (spool_next(s, after, &m) == 0) {
            if (m.id <= blast)
                snprintf(pl, sizeof(pl), "b%05d", (int)(m.id - bfirst));
            else
                snprintf(pl, sizeof(pl), "x");
            if (m.id != expect_id || m.len != strlen(pl) || memcmp(m.payload, pl, m.len) != 0)
                bad++;
            expect_id = m.id + 1;
            after = m.id;
            spool_msg_clear(&m);
            if (pass == 0 && after == bfirst + BACKLOG / 2) {
                int64_t id = 0;
                CHECK_EQ_INT(spool_append(s, "n8", "p/nodes/n8/b", "x", 1, 7000, false, &id), 0);
                CHECK_EQ_INT(id, blast + 1);
                CHECK_EQ_INT(spool_commit(s), 0);
            }
        }
        CHECK_EQ_INT(expect_id, blast + 2);
    }
    CHECK_EQ_INT(bad, 0);
    for (int64_t id = bfirst; id <= blast + 1; id++)
        CHECK_EQ_INT(spool_ack(s, id), 0);
    CHECK_EQ_INT(spool_commit(s), 0);
    uint64_t left = spool_messages(s);
    spool_close(s);
    s = NULL;
    CHECK_EQ_INT(spool_open(path, 100, &s), 0);
    CHECK_EQ_INT(spool_messages(s), left);
    /* replay from the start: odd ids of the handed-out part, then every one of the rest */
    after = 0;
    uint64_t seen = 0;
    while (spool_next(s, after, &m) == 0) {
        snprintf(pl, sizeof(pl), "m%05d", (int)(m.id - first));
        if (m.len != strlen(pl) || memcmp(m.payload, pl, m.len) != 0)
            bad++;
        if (m.id <= last - 10 && m.id % 2 == 0)
            bad++; /* acked: must be gone */
        after = m.id;
        seen++;
        spool_msg_clear(&m);
    }
    CHECK_EQ_INT(bad, 0);
    CHECK_EQ_INT(seen, left);
    CHECK_EQ_INT(after, last);
    test_held(dir);

    spool_close(s);
    char wal[300];
    unlink(path);
    snprintf(wal, sizeof(wal), "%s-wal", path);
    unlink(wal);
    snprintf(wal, sizeof(wal), "%s-shm", path);
    unlink(wal);
    rmdir(dir);
    return check_finish();
}
