/* The daemon's SQLite helpers, shared by the spool, the down-queue and the registry: one
 * mapping from SQLite result codes to negative errno, statements prepared from a table, one
 * "exactly this row changed" step. */
#ifndef FLEETGWD_SQLITE_ERRNO_H
#define FLEETGWD_SQLITE_ERRNO_H

#include <stddef.h>

/* 0 for SQLITE_OK/ROW/DONE, otherwise a negative errno that names the class of failure. */
int sqlite_errno(int rc);

struct sqlite3;
struct sqlite3_stmt;

/* sqlite3_exec of sql (no rows wanted), as a negative errno. */
int sqlite_exec(struct sqlite3 *db, const char *sql);
/* sqlite3_prepare_v2 of sql into *st, as a negative errno. */
int sqlite_prepare(struct sqlite3 *db, const char *sql, struct sqlite3_stmt **st);

/* A statement a module keeps for its lifetime, and its text. */
struct sqlite_stmt_spec {
    struct sqlite3_stmt **st;
    const char *sql;
};
/* Prepares every statement of the table, in order; stops at the first error (the statements
 * prepared so far stay in place for the caller's cleanup to finalize). */
int sqlite_prepare_all(struct sqlite3 *db, const struct sqlite_stmt_spec *specs, size_t n);

/* Steps an UPDATE/DELETE of one row: 0, -ENOENT when it changed no row, or a negative errno. */
int sqlite_step_changed(struct sqlite3 *db, struct sqlite3_stmt *st);

#endif
