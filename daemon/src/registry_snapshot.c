/* registry_snapshot.c: the edge broker's copy of the registry (registry.h,
 * registry_snapshot_write). The broker runs as another user than fleetgwd and must keep
 * deciding while fleetgwd is stopped; the registry itself is a WAL database that a reader
 * without write access cannot open once fleetgwd has closed it (its -shm is gone). The
 * snapshot is a separate, small SQLite file in rollback-journal mode with only what the
 * broker needs (node id and verdict: no keys, no sealed blobs), replaced atomically. */
#define _GNU_SOURCE
#include "registry.h"

#include <fleetgw/secret_file.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sqlite_errno.h"

static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    if (err != NULL && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

struct fill {
    sqlite3 *db;
    sqlite3_stmt *ins;
    int rc;
};

static int add_row(const struct registry_node *n, void *u)
{
    struct fill *f = u;
    sqlite3_bind_text(f->ins, 1, n->id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(f->ins, 2, n->verdict, -1, SQLITE_TRANSIENT);
    int s = sqlite3_step(f->ins);
    sqlite3_reset(f->ins);
    if (s != SQLITE_DONE) {
        f->rc = sqlite_errno(s) ? sqlite_errno(s) : -EIO;
        return 1;
    }
    return 0;
}

int registry_snapshot_write(struct registry *r, const char *path, char *err, size_t errlen)
{
    char tmp[PATH_MAX], journal[PATH_MAX];
    if (registry_batch_open(r))
        return fail(err, errlen, -EBUSY, "a registry write batch is open");
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp) ||
        snprintf(journal, sizeof(journal), "%s.tmp-journal", path) >= (int)sizeof(journal))
        return fail(err, errlen, -ENAMETOOLONG, "%s: path too long", path);
    /* what a crash in the middle of the last attempt left */
    if ((unlink(tmp) != 0 && errno != ENOENT) || (unlink(journal) != 0 && errno != ENOENT))
        return fail(err, errlen, -errno, "cannot remove %s: %s", tmp, strerror(errno));

    sqlite3 *db = NULL;
    struct fill f = {0};
    int rc = sqlite_errno(sqlite3_open_v2(
        tmp, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL));
    if (rc == 0)
        rc = sqlite_errno(sqlite3_exec(db,
                                       "PRAGMA journal_mode=DELETE; PRAGMA synchronous=FULL;"
                                       "CREATE TABLE nodes (id TEXT PRIMARY KEY,"
                                       " verdict TEXT NOT NULL); BEGIN",
                                       NULL, NULL, NULL));
    if (rc == 0)
        rc = sqlite_errno(sqlite3_prepare_v2(db, "INSERT INTO nodes (id, verdict) VALUES (?1, ?2)",
                                             -1, &f.ins, NULL));
    if (rc == 0) {
        f.db = db;
        rc = registry_foreach(r, add_row, &f);
        if (rc == 0)
            rc = f.rc;
    }
    sqlite3_finalize(f.ins);
    if (rc == 0) /* synchronous=FULL: the commit fsyncs the file */
        rc = sqlite_errno(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL));
    const char *why = rc < 0 && db != NULL ? sqlite3_errmsg(db) : NULL;
    char reason[256];
    snprintf(reason, sizeof(reason), "%s", why ? why : strerror(-rc));
    if (sqlite3_close(db) != SQLITE_OK && rc == 0) {
        rc = -EIO;
        snprintf(reason, sizeof(reason), "closing it failed (a statement left open)");
    }
    /* the file mode is the broker's access (group), whatever fleetgwd's umask (0077) */
    if (rc == 0 && chmod(tmp, 0640) != 0) {
        rc = -errno;
        snprintf(reason, sizeof(reason), "chmod: %s", strerror(-rc));
    }
    if (rc == 0 && rename(tmp, path) != 0) {
        rc = -errno;
        snprintf(reason, sizeof(reason), "rename to %s: %s", path, strerror(-rc));
    }
    if (rc == 0) {
        rc = secret_file_sync_dir(path);
        if (rc < 0)
            snprintf(reason, sizeof(reason), "fsync of its directory: %s", strerror(-rc));
        return rc == 0 ? 0 : fail(err, errlen, rc, "%s: %s", path, reason);
    }
    (void)unlink(tmp);
    (void)unlink(journal);
    return fail(err, errlen, rc, "cannot write %s: %s", tmp, reason);
}
