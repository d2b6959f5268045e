/* One mapping from SQLite result codes to negative errno, shared by the spool and the
 * registry. */
#ifndef FLEETGWD_SQLITE_ERRNO_H
#define FLEETGWD_SQLITE_ERRNO_H

/* 0 for SQLITE_OK/ROW/DONE, otherwise a negative errno that names the class of failure. */
int sqlite_errno(int rc);

#endif
