/* Recorded batches of the spool (issue 17, spool_batch.c): recorded in the transaction and
 * durable only with its commit; found again after a restart with the same rows; deleted
 * with their rows on the acknowledgement; never half expired. */
#include "check.h"
#include "spool.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The ids the drain would put into the batch [first, last]: rows not held in the range. */
static unsigned rows_in(struct spool *s, int64_t first, int64_t last, int64_t *ids, unsigned cap)
{
    struct spool_msg m;
    unsigned n = 0;
    int64_t after = first - 1;
    while (n < cap && spool_next(s, after, &m) == 0 && m.id <= last) {
        ids[n++] = m.id;
        after = m.id;
        spool_msg_clear(&m);
    }
    spool_msg_clear(&m);
    return n;
}

int main(void)
{
    char dir[] = "/tmp/fleetgw-spoolbatch-XXXXXX";
    char path[256];
    struct spool *s = NULL;
    int64_t id[10], first, last, ids[16];
    uint32_t n;

    if (mkdtemp(dir) == NULL)
        check_skip("cannot create a temporary directory");
    snprintf(path, sizeof(path), "%s/spool.db", dir);

    CHECK_EQ_INT(spool_open(path, 1 << 20, &s), 0);
    for (int i = 0; i < 10; i++) {
        char node[8];
        snprintf(node, sizeof(node), "n%d", i % 3);
        CHECK_EQ_INT(spool_append(s, node, "p/nodes/x/t", "abc", 3, 1000 + i, false, &id[i]), 0);
    }
    int64_t held = 0;
    CHECK_EQ_INT(spool_commit(s), 0);
    CHECK_EQ_INT(spool_batch_next(s, 0, &first, &last, &n), -ENOENT);

    /* Record [id0, id3]: durable only with the commit; a failed (here: abandoned)
     * transaction loses it. */
    CHECK_EQ_INT(spool_batch_record(s, id[0], id[3], 4), 0);
    CHECK_EQ_INT(spool_batches(s), 1);
    CHECK_EQ_INT(spool_batch_record(s, id[2], id[5], 4), -EINVAL); /* overlaps */
    CHECK_EQ_INT(spool_batch_record(s, id[3], id[3], 1), -EINVAL);
    spool_close(s);
    CHECK_EQ_INT(spool_open(path, 1 << 20, &s), 0);
    CHECK_EQ_INT(spool_batch_next(s, 0, &first, &last, &n), -ENOENT);
    CHECK_EQ_INT(spool_batches(s), 0);

    CHECK_EQ_INT(spool_batch_record(s, id[0], id[3], 4), 0);
    CHECK_EQ_INT(spool_commit(s), 0);
    CHECK_EQ_INT(spool_hold(s, "n9", "p/nodes/n9/t", "h", 1, 1010, 1 << 20, &held), 0);
    CHECK_EQ_INT(spool_batch_record(s, id[4], id[6], 3), 0);
    CHECK_EQ_INT(spool_commit(s), 0);
    /* A restart (the process gone: no close of the transaction state): both batches are
     * found where the drain resumes, with the same rows. */
    spool_close(s);
    CHECK_EQ_INT(spool_open(path, 1 << 20, &s), 0);
    CHECK_EQ_INT(spool_batches(s), 2);
    CHECK_EQ_INT(spool_batch_next(s, 0, &first, &last, &n), 0);
    CHECK_EQ_INT(first, id[0]);
    CHECK_EQ_INT(last, id[3]);
    CHECK_EQ_INT(n, 4);
    CHECK_EQ_INT(rows_in(s, first, last, ids, 16), 4);
    CHECK_EQ_INT(ids[0], id[0]);
    CHECK_EQ_INT(ids[3], id[3]);
    CHECK_EQ_INT(spool_batch_next(s, id[0], &first, &last, &n), 0);
    CHECK_EQ_INT(first, id[4]);
    CHECK_EQ_INT(last, id[6]);
    CHECK_EQ_INT(spool_batch_next(s, id[4], &first, &last, &n), -ENOENT);

    /* The acknowledgement: the rows and the record go with the next commit, counted. */
    uint64_t relayed0 = spool_counter(s, "relayed_up");
    CHECK_EQ_INT(spool_batch_ack(s, id[0], id[3]), 0);
    CHECK_EQ_INT(spool_batch_next(s, 0, &first, &last, &n), 0); /* the next live one */
    CHECK_EQ_INT(first, id[4]);
    CHECK(spool_dirty(s));
    CHECK_EQ_INT(spool_commit(s), 0);
    CHECK_EQ_INT(spool_counter(s, "relayed_up"), relayed0 + 4);
    CHECK_EQ_INT(spool_messages(s), 10 - 4 + 1);
    spool_close(s);
    CHECK_EQ_INT(spool_open(path, 1 << 20, &s), 0);
    CHECK_EQ_INT(spool_batches(s), 1);
    CHECK_EQ_INT(spool_batch_next(s, 0, &first, &last, &n), 0);
    CHECK_EQ_INT(first, id[4]);

    /* Expiry never takes half a batch: with rows up to id5 old enough ([id4, id6] is
     * recorded), nothing of the batch goes; once id6 is old too, the whole batch and its
     * record go (and id7 with them). The held row stays (its limit is the gate's). */
    uint64_t x = 0;
    CHECK_EQ_INT(spool_expire(s, 1005 + 1, 1, &x), 0); /* cutoff 1005: ts 1004 expires */
    CHECK_EQ_INT(x, 0);
    CHECK_EQ_INT(spool_commit(s), 0);
    CHECK_EQ_INT(spool_messages(s), 7);
    CHECK_EQ_INT(spool_batches(s), 1);
    CHECK_EQ_INT(spool_expire(s, 1008 + 1, 1, &x), 0); /* cutoff 1008: ts <= 1007 */
    CHECK_EQ_INT(x, 4);                                /* id4..id7 */
    CHECK_EQ_INT(spool_batches(s), 0);
    CHECK_EQ_INT(spool_commit(s), 0);
    CHECK_EQ_INT(spool_messages(s), 3); /* id8, id9, the held row */
    spool_close(s);
    CHECK_EQ_INT(spool_open(path, 1 << 20, &s), 0);
    CHECK_EQ_INT(spool_batches(s), 0);
    CHECK_EQ_INT(spool_messages(s), 3);

    /* The acknowledgement of a batch that expired meanwhile deletes nothing more. */
    CHECK_EQ_INT(spool_batch_ack(s, id[4], id[6]), 0);
    CHECK_EQ_INT(spool_commit(s), 0);
    CHECK_EQ_INT(spool_messages(s), 3);
    /* Recorded out of order (a batch of rows below a recorded one, after a configuration
     * change): kept in id order; a failed commit loses only what was recorded in it. */
    CHECK_EQ_INT(spool_batch_record(s, id[9], id[9], 1), 0);
    CHECK_EQ_INT(spool_commit(s), 0);
    CHECK_EQ_INT(spool_batch_record(s, id[8], id[8], 1), 0);
    CHECK_EQ_INT(spool_batch_next(s, 0, &first, &last, &n), 0);
    CHECK_EQ_INT(first, id[8]);
    spool_close(s); /* the transaction with id8's record never committed */
    CHECK_EQ_INT(spool_open(path, 1 << 20, &s), 0);
    CHECK_EQ_INT(spool_batch_next(s, 0, &first, &last, &n), 0);
    CHECK_EQ_INT(first, id[9]);
    CHECK_EQ_INT(spool_batch_ack(s, id[9], id[9]), 0);
    CHECK_EQ_INT(spool_commit(s), 0);
    CHECK_EQ_INT(spool_messages(s), 2);
    CHECK_EQ_INT(spool_append(s, "n1", "p/nodes/x/t", "abc", 3, 2000, false, &id[9]), 0);
    /* The next batch after the expired ones. */
    CHECK_EQ_INT(spool_batch_record(s, id[8], id[9], 2), 0);
    CHECK_EQ_INT(spool_commit(s), 0);
    CHECK_EQ_INT(spool_batch_ack(s, id[8], id[9]), 0);
    CHECK_EQ_INT(spool_commit(s), 0);
    CHECK_EQ_INT(spool_messages(s), 1);
    CHECK_EQ_INT(spool_batches(s), 0);
    spool_close(s);

    char f[300];
    const char *sfx[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        snprintf(f, sizeof(f), "%s%s", path, sfx[i]);
        unlink(f);
    }
    rmdir(dir);
    return check_finish();
}
