/* Down-queue: order, per-node cap, byte budget, delete, sent marks, TTL that spares rows in
 * flight, durability only through spool_commit (shared transaction with the spool),
 * persistence across reopen, ids never reused, recount after a rollback. */
#include "check.h"
#include "downq.h"
#include "spool.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CAP   1000
#define BYTES (1 << 20)

static int64_t next_id(struct downq *q, int64_t after, const char *want_node,
                       const char *want_payload)
{
    struct downq_msg m;
    if (downq_next(q, after, &m) != 0)
        return -1;
    int64_t id = m.id;
    if (strcmp(m.node, want_node) != 0 || m.len != strlen(want_payload) ||
        memcmp(m.payload, want_payload, m.len) != 0)
        id = -2;
    downq_msg_clear(&m);
    return id;
}

int main(void)
{
    char dir[] = "/tmp/fleetgw-downqtest-XXXXXX";
    char path[256];
    struct spool *s = NULL;
    struct downq *q = NULL;
    struct downq_msg m;
    int64_t a1 = 0, b1 = 0, a2 = 0, a3 = 0, up = 0;
    uint64_t n = 0;

    if (mkdtemp(dir) == NULL)
        check_skip("cannot create a temporary directory");
    snprintf(path, sizeof(path), "%s/spool.db", dir);

    CHECK_EQ_INT(spool_open(path, 1 << 20, &s), 0);
    CHECK_EQ_INT(downq_open(s, &q), 0);
    CHECK_EQ_INT(downq_count(q), 0);

    /* Appends interleaved for two nodes, and an uplink row in the same transaction. */
    CHECK_EQ_INT(downq_append(q, "n1", "fleet/n1/down/a", "a1", 2, 1000, CAP, BYTES, &a1), 0);
    CHECK(spool_dirty(s));
    CHECK_EQ_INT(downq_append(q, "n2", "fleet/n2/down/a", "b1", 2, 1000, CAP, BYTES, &b1), 0);
    CHECK_EQ_INT(spool_append(s, "n1", "p/nodes/n1/t", "up", 2, 1000, false, &up), 0);
    CHECK_EQ_INT(downq_append(q, "n1", "fleet/n1/down/b", "a2", 2, 1001, CAP, BYTES, &a2), 0);
    CHECK_EQ_INT(downq_append(q, "n1", "fleet/n1/down/c", "", 0, 1002, CAP, BYTES, &a3), 0);
    CHECK(a1 < b1 && b1 < a2 && a2 < a3);
    CHECK_EQ_INT(downq_count(q), 4);
    CHECK_EQ_INT(downq_bytes(q), 15 + 2 + 15 + 2 + 15 + 2 + 15);
    CHECK_EQ_INT(downq_node_count(q, "n1", &n), 0);
    CHECK_EQ_INT(n, 3);
    CHECK_EQ_INT(downq_append(q, "", "fleet//down/a", "x", 1, 0, CAP, BYTES, NULL), -EINVAL);
    CHECK_EQ_INT(downq_append(q, "n1", "", "x", 1, 0, CAP, BYTES, NULL), -EINVAL);

    /* Uncommitted: a close (crash) loses them all, the spool's row too. */
    downq_close(q);
    spool_close(s);
    CHECK_EQ_INT(spool_open(path, 1 << 20, &s), 0);
    CHECK_EQ_INT(downq_open(s, &q), 0);
    CHECK_EQ_INT(downq_count(q), 0);
    CHECK_EQ_INT(downq_bytes(q), 0);
    CHECK_EQ_INT(spool_messages(s), 0);
    CHECK_EQ_INT(downq_next(q, 0, &m), -ENOENT);

    /* Again, committed this time: durable across reopen, in id order. */
    CHECK_EQ_INT(downq_append(q, "n1", "fleet/n1/down/a", "a1", 2, 1000, CAP, BYTES, &a1), 0);
    CHECK_EQ_INT(downq_append(q, "n2", "fleet/n2/down/a", "b1", 2, 1000, CAP, BYTES, &b1), 0);
    CHECK_EQ_INT(downq_append(q, "n1", "fleet/n1/down/b", "a2", 2, 1001, CAP, BYTES, &a2), 0);
    CHECK_EQ_INT(downq_append(q, "n1", "fleet/n1/down/c", "", 0, 1002, CAP, BYTES, &a3), 0);
    CHECK_EQ_INT(spool_commit(s), 0);
    CHECK(!spool_dirty(s));
    downq_close(q);
    spool_close(s);
    CHECK_EQ_INT(spool_open(path, 1 << 20, &s), 0);
    CHECK_EQ_INT(downq_open(s, &q), 0);
    CHECK_EQ_INT(downq_count(q), 4);
    CHECK_EQ_INT(downq_bytes(q), 15 + 2 + 15 + 2 + 15 + 2 + 15);
    CHECK_EQ_INT(next_id(q, 0, "n1", "a1"), a1);
    CHECK_EQ_INT(next_id(q, a1, "n2", "b1"), b1);
    CHECK_EQ_INT(next_id(q, b1, "n1", "a2"), a2);
    CHECK_EQ_INT(next_id(q, a2, "n1", ""), a3);
    CHECK_EQ_INT(next_id(q, a3, "n1", ""), -1);
    CHECK_EQ_INT(downq_next(q, 0, &m), 0);
    CHECK(strcmp(m.topic, "fleet/n1/down/a") == 0);
    CHECK_EQ_INT(m.ts, 1000);
    CHECK_EQ_INT(m.sent, 0);
    downq_msg_clear(&m);

    /* Per-node cap: n1 has 3 rows; with a cap of 3 a fourth is refused, n2 still fits. */
    CHECK_EQ_INT(downq_append(q, "n1", "fleet/n1/down/d", "a4", 2, 1003, 3, BYTES, NULL), -ENOBUFS);
    CHECK_EQ_INT(downq_append(q, "n2", "fleet/n2/down/b", "b2", 2, 1003, 3, BYTES, NULL), 0);
    CHECK_EQ_INT(downq_count(q), 5);
    /* Byte budget: 83 bytes used; 17 more would make 100 > 99. */
    CHECK_EQ_INT(downq_bytes(q), 83);
    CHECK_EQ_INT(downq_append(q, "n3", "fleet/n3/down/a", "xy", 2, 1003, CAP, 99, NULL), -EDQUOT);
    CHECK_EQ_INT(downq_append(q, "n3", "fleet/n3/down/a", "x", 1, 1003, CAP, 99, NULL), 0);
    CHECK_EQ_INT(downq_count(q), 6);
    CHECK_EQ_INT(spool_commit(s), 0);

    /* Sent marks persist; delete after the PUBACK. */
    CHECK_EQ_INT(downq_mark_sent(q, a1), 0);
    CHECK_EQ_INT(downq_mark_sent(q, a1), 0);
    CHECK_EQ_INT(downq_mark_sent(q, 999999), -ENOENT);
    CHECK_EQ_INT(spool_commit(s), 0);
    CHECK_EQ_INT(downq_next(q, 0, &m), 0);
    CHECK_EQ_INT(m.sent, 2);
    downq_msg_clear(&m);
    CHECK_EQ_INT(downq_delete(q, a1), 0);
    CHECK_EQ_INT(downq_delete(q, a1), -ENOENT);
    CHECK_EQ_INT(downq_count(q), 5);
    CHECK_EQ_INT(downq_bytes(q), 99 - 17);
    CHECK_EQ_INT(spool_commit(s), 0);
    CHECK_EQ_INT(next_id(q, 0, "n2", "b1"), b1);

    /* Ids are never reused, even after the highest row was deleted. */
    int64_t top = 0, again = 0;
    CHECK_EQ_INT(downq_append(q, "n4", "fleet/n4/down/a", "t", 1, 5000, CAP, BYTES, &top), 0);
    CHECK_EQ_INT(downq_delete(q, top), 0);
    CHECK_EQ_INT(spool_commit(s), 0);
    CHECK_EQ_INT(downq_append(q, "n4", "fleet/n4/down/a", "t", 1, 5000, CAP, BYTES, &again), 0);
    CHECK(again > top);
    CHECK_EQ_INT(downq_delete(q, again), 0);
    CHECK_EQ_INT(spool_commit(s), 0);

    /* A rolled-back transaction: cached count and bytes follow the table again. */
    uint64_t c0 = downq_count(q);
    int64_t b0 = downq_bytes(q);
    CHECK_EQ_INT(downq_append(q, "n5", "fleet/n5/down/a", "r", 1, 1003, CAP, BYTES, NULL), 0);
    CHECK_EQ_INT(downq_delete(q, b1), 0);
    CHECK_EQ_INT(downq_count(q), c0);
    CHECK_EQ_INT(sqlite3_exec(spool_sqlite(s), "ROLLBACK;", NULL, NULL, NULL), SQLITE_OK);
    CHECK(spool_commit(s) < 0); /* nothing to commit any more: reported, state reset */
    CHECK_EQ_INT(downq_count(q), c0);
    CHECK_EQ_INT(downq_bytes(q), b0);
    CHECK_EQ_INT(next_id(q, 0, "n2", "b1"), b1);

    /* TTL: rows before now - ttl go, unless their id is <= after (in flight). Rows: b1 (ts
     * 1000), a2 (1001), a3 (1002), b2 (1003), n3 (1003). At now 1102, ttl 100: b1 and a2
     * are old; with after = b1 only a2 goes. */
    CHECK_EQ_INT(downq_expire(q, 1102, 100, b1, &n), 0);
    CHECK_EQ_INT(n, 1);
    CHECK_EQ_INT(spool_counter(s, "down_expired"), 1);
    CHECK_EQ_INT(spool_commit(s), 0);
    CHECK_EQ_INT(next_id(q, 0, "n2", "b1"), b1);
    CHECK_EQ_INT(next_id(q, b1, "n1", ""), a3);
    CHECK_EQ_INT(downq_expire(q, 1102, 100, 0, &n), 0);
    CHECK_EQ_INT(n, 1);
    CHECK_EQ_INT(downq_expire(q, 1102, 100, 0, &n), 0);
    CHECK_EQ_INT(n, 0);
    CHECK_EQ_INT(spool_counter(s, "down_expired"), 2);
    CHECK_EQ_INT(spool_commit(s), 0);
    CHECK_EQ_INT(downq_count(q), 3);
    CHECK_EQ_INT(downq_bytes(q), 15 + 15 + 2 + 15 + 1);

    /* The uplink spool is untouched by all of this. */
    CHECK_EQ_INT(spool_messages(s), 0);
    downq_close(q);
    spool_close(s);
    CHECK_EQ_INT(spool_open(path, 1 << 20, &s), 0);
    CHECK_EQ_INT(downq_open(s, &q), 0);
    CHECK_EQ_INT(downq_count(q), 3);
    CHECK_EQ_INT(downq_bytes(q), 48);
    CHECK_EQ_INT(spool_counter(s, "down_expired"), 2);
    downq_close(q);
    spool_close(s);

    char f[300];
    snprintf(f, sizeof(f), "%s/spool.db", dir);
    unlink(f);
    snprintf(f, sizeof(f), "%s/spool.db-wal", dir);
    unlink(f);
    snprintf(f, sizeof(f), "%s/spool.db-shm", dir);
    unlink(f);
    rmdir(dir);
    return check_finish();
}
