/* One whole-file reader for the daemon's inputs (the configuration, the attestation reference
 * file, the signer keys, the OTA store's images): a regular file, at most a given size, read
 * whole into a new NUL-terminated buffer, opened without following it into a FIFO or a tty. */
#ifndef FLEETGWD_READFILE_H
#define FLEETGWD_READFILE_H

#include <stddef.h>

/* name relative to dirfd (or a path with AT_FDCWD), at most max bytes: a new buffer the caller
 * frees, with a NUL after the *ret_len bytes. NULL with the reason in *why (a static string)
 * and a negative errno in *ret_err: -ENOENT etc. from open, -EINVAL (not a regular file),
 * -EFBIG (larger than max), -ENOMEM, -EIO (changed while read). */
char *readfile_at(int dirfd, const char *name, size_t max, size_t *ret_len, const char **why,
                  int *ret_err);

#endif
