#include "sqlite_errno.h"

#include <errno.h>
#include <sqlite3.h>

int sqlite_errno(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_DONE:
    case SQLITE_ROW:
        return 0;
    case SQLITE_NOMEM:
        return -ENOMEM;
    case SQLITE_FULL:
        return -ENOSPC;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return -EBUSY;
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH:
        return -EACCES;
    case SQLITE_CANTOPEN:
        return -ENOENT;
    case SQLITE_CONSTRAINT:
        return -EEXIST;
    default:
        return -EIO;
    }
}

int sqlite_exec(sqlite3 *db, const char *sql)
{
    return sqlite_errno(sqlite3_exec(db, sql, NULL, NULL, NULL));
}

int sqlite_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st)
{
    return sqlite_errno(sqlite3_prepare_v2(db, sql, -1, st, NULL));
}

int sqlite_prepare_all(sqlite3 *db, const struct sqlite_stmt_spec *specs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int r = sqlite_prepare(db, specs[i].sql, specs[i].st);
        if (r < 0)
            return r;
    }
    return 0;
}

int sqlite_step_changed(sqlite3 *db, sqlite3_stmt *st)
{
    int r = sqlite_errno(sqlite3_step(st));
    if (r == 0 && sqlite3_changes(db) == 0)
        r = -ENOENT;
    return r;
}
