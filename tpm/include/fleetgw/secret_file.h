/* secret_file: secrets on disk (keys, passwords, sealed blobs), for the daemon and the tools.
 *
 * Writing: never into an existing file. A new temporary file next to the target, created
 * with O_CREAT|O_EXCL|O_NOFOLLOW (a name nobody else made, never a symlink followed) and the
 * requested mode (not an old file's), written, fsync'd, then renamed over the target (a
 * symlink at the target is replaced, not followed) and the directory fsync'd: the target is
 * either the old content or the whole new one, never a half-written secret.
 *
 * Reading: a key or password file must be a regular file that neither its group nor others
 * may read or write (the ssh rule for private keys: mode & 077 == 0); otherwise it is refused
 * with the file and its mode in the message. Library code: it reports through err, never
 * logs. */
#ifndef FLEETGW_SECRET_FILE_H
#define FLEETGW_SECRET_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Writes data[0..len) to path as described above, with exactly mode (0600 for a secret; set
 * with fchmod, whatever the umask). replace false: -EEXIST when path exists (the temporary
 * file is then link(2)ed to path, which never overwrites, instead of renamed). Returns 0 or
 * -errno, with a sentence in err; on failure nothing is left behind. */
int secret_file_write(const char *path, const void *data, size_t len, mode_t mode, bool replace,
                      char *err, size_t errlen) __attribute__((warn_unused_result));

/* Opens a key or password file for reading after the checks above: a descriptor (O_CLOEXEC),
 * or -errno with a sentence in err: -EPERM when group or others have any access
 * ("<path> is mode 0644: group or others may read it; chmod 600 <path>"), -EINVAL when it is
 * not a regular file, the open's errno otherwise. what names the file's role ("edge password
 * file", "HMAC key"). */
int secret_file_open(const char *path, const char *what, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* secret_file_open() and read it whole into buf (at most cap bytes; -EFBIG when larger). The
 * caller wipes buf. Returns 0 and *ret_len, or -errno with a sentence in err. */
int secret_file_read(const char *path, const char *what, void *buf, size_t cap, size_t *ret_len,
                     char *err, size_t errlen) __attribute__((warn_unused_result));

/* fsync of the directory holding path, so that a rename into it is durable (also for files
 * that are not secrets, written the same way: the broker's registry snapshot). 0 or -errno. */
int secret_file_sync_dir(const char *path) __attribute__((warn_unused_result));

/* The mode check alone, for a file already open (fstat): 0, -EPERM or -EINVAL as above. */
int secret_file_check_fd(int fd, const char *path, const char *what, char *err, size_t errlen)
    __attribute__((warn_unused_result));

#endif
