/* Spool: group commit, order, delete, quota, TTL, counters, persistence across reopen,
 * rollback on a failed commit path. */
#include "check.h"
#include "spool.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

    /* Delete, and reopen: committed data and counters survive, uncommitted does not. */
    CHECK_EQ_INT(spool_delete(s, id1), 0);
    CHECK_EQ_INT(spool_delete(s, id1), -ENOENT);
    CHECK_EQ_INT(spool_commit(s), 0);
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

    /* Ids are never reused, even after the highest row was deleted. */
    CHECK_EQ_INT(spool_delete(s, id3), 0);
    int64_t id4 = 0;
    CHECK_EQ_INT(spool_append(s, "n1", "p/nodes/n1/d", "x", 1, 5000, false, &id4), 0);
    CHECK(id4 > id3);
    CHECK_EQ_INT(spool_commit(s), 0);

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
