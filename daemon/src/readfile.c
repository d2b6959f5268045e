/* One whole-file reader (see readfile.h). */
#include "readfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char *readfile_at(int dirfd, const char *name, size_t max, size_t *ret_len, const char **why,
                  int *ret_err)
{
    struct stat st;
    char *buf = NULL;
    int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    *ret_err = 0;
    if (fd < 0) {
        *ret_err = -errno;
        *why = strerror(errno);
        return NULL;
    }
    if (fstat(fd, &st) != 0) {
        *ret_err = -errno;
        *why = strerror(errno);
    } else if (!S_ISREG(st.st_mode)) {
        *ret_err = -EINVAL;
        *why = "not a regular file";
    } else if ((uint64_t)st.st_size > max) {
        *ret_err = -EFBIG;
        *why = "larger than allowed";
    } else if ((buf = malloc((size_t)st.st_size + 1)) == NULL) {
        *ret_err = -ENOMEM;
        *why = strerror(ENOMEM);
    } else {
        size_t have = 0;
        while (have < (size_t)st.st_size) {
            ssize_t k = read(fd, buf + have, (size_t)st.st_size - have);
            if (k < 0 && errno == EINTR)
                continue;
            if (k <= 0) {
                *ret_err = k == 0 ? -EIO : -errno;
                *why = k == 0 ? "shorter than its size (changed while read)" : strerror(errno);
                free(buf);
                buf = NULL;
                break;
            }
            have += (size_t)k;
        }
        if (buf != NULL) {
            buf[have] = '\0';
            *ret_len = have;
        }
    }
    close(fd);
    return buf;
}
