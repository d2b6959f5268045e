/* The edge broker's registry snapshot (registry_snapshot_write, registry_generation): what a
 * reader of the file sees (only id and verdict, committed state, not WAL), its mode, the
 * replacement by rename, a failure leaving nothing behind, and the generation that tells
 * fleetgwd when to write again. */
#include "check.h"
#include "registry.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void make_pub(uint8_t pub[65], int seed)
{
    pub[0] = 0x04;
    for (int i = 1; i < 65; i++)
        pub[i] = (uint8_t)(i * 13 + seed * 31 + 1);
}

/* The verdict of id in the snapshot at path, opened read-only as the plugin opens it: "" when
 * absent, NULL when the file cannot be read. */
static const char *snap_verdict(const char *path, const char *id, char *out, size_t cap)
{
    char uri[400];
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    const char *ret = NULL;
    snprintf(uri, sizeof(uri), "file:%s?mode=ro", path);
    if (sqlite3_open_v2(uri, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, "SELECT verdict FROM nodes WHERE id = ?", -1, &st, NULL) ==
            SQLITE_OK) {
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        int s = sqlite3_step(st);
        if (s == SQLITE_ROW) {
            snprintf(out, cap, "%s", (const char *)sqlite3_column_text(st, 0));
            ret = out;
        } else if (s == SQLITE_DONE) {
            out[0] = '\0';
            ret = out;
        }
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return ret;
}

static int snap_columns(const char *path)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int n = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, "SELECT * FROM nodes", -1, &st, NULL) == SQLITE_OK)
        n = sqlite3_column_count(st);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

int main(void)
{
    char dir[] = "/tmp/fleetgw-regsnap-XXXXXX", path[256], snap[256], tmp[400], v[64];
    if (mkdtemp(dir) == NULL)
        check_skip("cannot create a temporary directory");
    snprintf(path, sizeof(path), "%s/registry.db", dir);
    snprintf(snap, sizeof(snap), "%s/registry.snapshot", dir);
    snprintf(tmp, sizeof(tmp), "%s.tmp", snap);

    struct registry *r = NULL;
    struct registry_node a, b;
    uint8_t pa[65], pb[65];
    make_pub(pa, 1);
    make_pub(pb, 2);
    CHECK_EQ_INT(registry_open(path, &r), 0);
    uint64_t g0 = registry_generation(r);
    CHECK_EQ_INT(registry_add(r, pa, "sensor", 10, &a), 0);
    CHECK_EQ_INT(registry_add(r, pb, "sensor", 10, &b), 0);
    uint64_t g1 = registry_generation(r);
    CHECK(g1 != g0);
    CHECK_EQ_INT(registry_set_verdict(r, a.id, "trusted", "", "1.0.0", 11, true), 0);
    uint64_t g2 = registry_generation(r);
    CHECK(g2 != g1);
    CHECK_EQ_INT(registry_touch(r, a.id, 12), 0);
    CHECK(registry_generation(r) == g2); /* last_seen is not the broker's business */

    char err[512] = "";
    CHECK_EQ_INT(registry_snapshot_write(r, snap, err, sizeof(err)), 0);
    CHECK(snap_verdict(snap, a.id, v, sizeof(v)) != NULL && strcmp(v, "trusted") == 0);
    CHECK(snap_verdict(snap, b.id, v, sizeof(v)) != NULL && strcmp(v, "unknown") == 0);
    CHECK(snap_verdict(snap, "0123456789abcdef0123456789abcdef", v, sizeof(v)) != NULL &&
          v[0] == '\0');
    CHECK_EQ_INT(snap_columns(snap), 2); /* id and verdict only: no keys, no sealed blobs */
    struct stat st;
    CHECK(stat(snap, &st) == 0 && (st.st_mode & 07777) == 0640);
    CHECK(access(tmp, F_OK) != 0);
    /* not WAL (header bytes 18/19 = 1, rollback journal): a read-only reader needs no -shm */
    unsigned char hdr[20];
    int fd = open(snap, O_RDONLY);
    CHECK(fd >= 0 && read(fd, hdr, sizeof(hdr)) == (ssize_t)sizeof(hdr));
    close(fd);
    CHECK(hdr[18] == 1 && hdr[19] == 1);
    char side[300];
    snprintf(side, sizeof(side), "%s-wal", snap);
    CHECK(access(side, F_OK) != 0);

    /* A new write is a new file (rename): a reader that holds the old one keeps it whole,
     * and the name now gives the new content. */
    ino_t before = st.st_ino;
    CHECK_EQ_INT(registry_remove(r, b.id), 0);
    CHECK_EQ_INT(registry_set_verdict(r, a.id, "quarantined", "bad", "", 13, true), 0);
    CHECK_EQ_INT(registry_snapshot_write(r, snap, err, sizeof(err)), 0);
    CHECK(stat(snap, &st) == 0 && st.st_ino != before);
    CHECK(snap_verdict(snap, b.id, v, sizeof(v)) != NULL && v[0] == '\0');
    CHECK(snap_verdict(snap, a.id, v, sizeof(v)) != NULL && strcmp(v, "quarantined") == 0);

    /* Uncommitted writes never reach the broker: refused while a batch is open. */
    CHECK_EQ_INT(registry_batch_begin(r), 0);
    CHECK_EQ_INT(registry_set_verdict(r, a.id, "trusted", "", "", 14, true), 0);
    CHECK_EQ_INT(registry_snapshot_write(r, snap, err, sizeof(err)), -EBUSY);
    CHECK_EQ_INT(registry_batch_commit(r), 0);
    CHECK(snap_verdict(snap, a.id, v, sizeof(v)) != NULL && strcmp(v, "quarantined") == 0);
    CHECK_EQ_INT(registry_snapshot_write(r, snap, err, sizeof(err)), 0);
    CHECK(snap_verdict(snap, a.id, v, sizeof(v)) != NULL && strcmp(v, "trusted") == 0);

    /* A leftover temp file from a crash is replaced; an impossible path fails with the
     * reason, leaves no temp file, and keeps the old snapshot as it was. */
    FILE *f = fopen(tmp, "w");
    CHECK(f != NULL);
    fputs("half a snapshot", f);
    fclose(f);
    CHECK_EQ_INT(registry_snapshot_write(r, snap, err, sizeof(err)), 0);
    CHECK(access(tmp, F_OK) != 0);
    char bad[300];
    snprintf(bad, sizeof(bad), "%s/missing-dir/registry.snapshot", dir);
    err[0] = '\0';
    CHECK(registry_snapshot_write(r, bad, err, sizeof(err)) < 0);
    CHECK(strstr(err, "missing-dir") != NULL);
    snprintf(tmp, sizeof(tmp), "%s.tmp", bad);
    CHECK(access(tmp, F_OK) != 0);

    registry_close(r);
    char p2[300];
    unlink(snap);
    unlink(path);
    snprintf(p2, sizeof(p2), "%s-wal", path);
    unlink(p2);
    snprintf(p2, sizeof(p2), "%s-shm", path);
    unlink(p2);
    rmdir(dir);
    return check_finish();
}
