/* secret_file: secrets on disk (see fleetgw/secret_file.h). */
#define _GNU_SOURCE
#include <fleetgw/secret_file.h>

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (err == NULL || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

int secret_file_sync_dir(const char *path)
{
    char d[PATH_MAX];
    if (snprintf(d, sizeof(d), "%s", path) >= (int)sizeof(d))
        return -ENAMETOOLONG;
    int fd = open(dirname(d), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int r = fsync(fd) == 0 ? 0 : -errno;
    close(fd);
    return r;
}

int secret_file_write(const char *path, const void *data, size_t len, mode_t mode, bool replace,
                      char *err, size_t errlen)
{
    char tmp[PATH_MAX], d[PATH_MAX];
    const uint8_t *p = data;
    int fd = -1, r;
    bool created = false;

    if (snprintf(d, sizeof(d), "%s", path) >= (int)sizeof(d)) {
        set_err(err, errlen, "%s: path too long", path);
        return -ENAMETOOLONG;
    }
    const char *base = basename(d);
    size_t dirlen = (size_t)(base - d);
    /* A fresh name in the same directory (same file system, so the rename is atomic). */
    for (int attempt = 0; attempt < 16 && fd < 0; attempt++) {
        uint64_t rnd = 0;
        if (getrandom(&rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
            r = -errno;
            set_err(err, errlen, "cannot name a temporary file for %s: %s", path, strerror(-r));
            return r;
        }
        if (snprintf(tmp, sizeof(tmp), "%.*s.%s.%016llx.tmp", (int)dirlen, path, base,
                     (unsigned long long)rnd) >= (int)sizeof(tmp)) {
            set_err(err, errlen, "%s: path too long", path);
            return -ENAMETOOLONG;
        }
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode & 0777);
        if (fd < 0 && errno != EEXIST) {
            r = -errno;
            set_err(err, errlen, "cannot create %s: %s", tmp, strerror(-r));
            return r;
        }
    }
    if (fd < 0) {
        set_err(err, errlen, "cannot create a temporary file next to %s", path);
        return -EEXIST;
    }
    created = true;
    if (fchmod(fd, mode & 0777) != 0) {
        r = -errno;
        set_err(err, errlen, "cannot set the mode of %s: %s", tmp, strerror(-r));
        goto fail;
    }
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            r = n < 0 ? -errno : -EIO;
            set_err(err, errlen, "cannot write %s: %s", tmp, strerror(-r));
            goto fail;
        }
        p += n;
        len -= (size_t)n;
    }
    if (fsync(fd) != 0) {
        r = -errno;
        set_err(err, errlen, "cannot write %s: fsync: %s", tmp, strerror(-r));
        goto fail;
    }
    r = close(fd);
    fd = -1;
    if (r != 0) {
        r = -errno;
        set_err(err, errlen, "cannot write %s: %s", tmp, strerror(-r));
        goto fail;
    }
    if (replace) {
        if (rename(tmp, path) != 0) {
            r = -errno;
            set_err(err, errlen, "cannot rename %s to %s: %s", tmp, path, strerror(-r));
            goto fail;
        }
    } else {
        if (link(tmp, path) != 0) {
            r = -errno;
            set_err(err, errlen,
                    r == -EEXIST ? "%s already exists (not replaced)" : "cannot create %s: %s",
                    path, strerror(-r));
            goto fail;
        }
        (void)unlink(tmp);
    }
    created = false;
    r = secret_file_sync_dir(path);
    if (r < 0) {
        set_err(err, errlen, "%s written, but its directory cannot be synced: %s", path,
                strerror(-r));
        return r;
    }
    return 0;
fail:
    if (fd >= 0)
        close(fd);
    if (created)
        (void)unlink(tmp);
    return r;
}

int secret_file_check_fd(int fd, const char *path, const char *what, char *err, size_t errlen)
{
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int r = -errno;
        set_err(err, errlen, "%s %s: %s", what, path, strerror(-r));
        return r;
    }
    if (!S_ISREG(st.st_mode)) {
        set_err(err, errlen, "%s %s is not a regular file", what, path);
        return -EINVAL;
    }
    if (st.st_mode & 077) {
        set_err(err, errlen,
                "%s %s is mode %04o: group or others may use it; a secret must be readable by "
                "its owner only (chmod 600 %s)",
                what, path, (unsigned)(st.st_mode & 07777), path);
        return -EPERM;
    }
    return 0;
}

int secret_file_open(const char *path, const char *what, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        int r = -errno;
        set_err(err, errlen, "cannot open %s %s: %s", what, path, strerror(-r));
        return r;
    }
    int r = secret_file_check_fd(fd, path, what, err, errlen);
    if (r < 0) {
        close(fd);
        return r;
    }
    return fd;
}

int secret_file_read(const char *path, const char *what, void *buf, size_t cap, size_t *ret_len,
                     char *err, size_t errlen)
{
    int fd = secret_file_open(path, what, err, errlen);
    if (fd < 0)
        return fd;
    uint8_t *b = buf;
    size_t have = 0;
    int r = 0;
    for (;;) {
        if (have == cap) { /* full: one more byte says whether it is larger */
            uint8_t extra;
            ssize_t k = read(fd, &extra, 1);
            if (k > 0) {
                set_err(err, errlen, "%s %s is larger than %zu bytes", what, path, cap);
                r = -EFBIG;
            }
            break;
        }
        ssize_t k = read(fd, b + have, cap - have);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            r = -errno;
            set_err(err, errlen, "cannot read %s %s: %s", what, path, strerror(-r));
            break;
        }
        if (k == 0)
            break;
        have += (size_t)k;
    }
    close(fd);
    if (r == 0)
        *ret_len = have;
    return r;
}
