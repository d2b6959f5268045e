/* secret_file: a secret is written through a fresh temporary file (O_EXCL|O_NOFOLLOW, the
 * requested mode whatever the umask, fsync, rename), never into an existing file: an old
 * file's mode is not kept, a symlink at the target is replaced and its victim untouched, no
 * temporary file is left behind, and replace=false never overwrites. A key or password file
 * that its group or others may use is refused naming the file and its mode; a directory or a
 * FIFO is refused as not a regular file (without blocking); a file larger than the buffer is
 * refused. Runs as any user. */
#define _GNU_SOURCE
#include "check.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fleetgw/secret_file.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[128];

static const char *at(const char *name)
{
    static char p[4][256];
    static int i;
    i = (i + 1) % 4;
    snprintf(p[i], sizeof(p[i]), "%s/%s", dir, name);
    return p[i];
}

static int entries(void)
{
    int n = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    if (d != NULL)
        closedir(d);
    return n;
}

static mode_t mode_of(const char *p)
{
    struct stat st;
    return lstat(p, &st) == 0 ? st.st_mode : 0;
}

static void put(const char *p, const char *text, mode_t mode)
{
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, mode);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    CHECK(fchmod(fd, mode) == 0);
    close(fd);
}

int main(void)
{
    char err[512], buf[64];
    size_t n = 0;
    snprintf(dir, sizeof(dir), "%s/fleetgw-secret-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }

    /* A new secret: exactly 0600 whatever the umask, the content, nothing else left. */
    mode_t old = umask(0);
    CHECK_EQ_INT(secret_file_write(at("key"), "s3cret", 6, 0600, false, err, sizeof(err)), 0);
    umask(old);
    CHECK_EQ_INT(mode_of(at("key")) & 07777, 0600);
    CHECK(S_ISREG(mode_of(at("key"))));
    CHECK_EQ_INT(secret_file_read(at("key"), "test key", buf, sizeof(buf), &n, err, sizeof(err)),
                 0);
    CHECK(n == 6 && memcmp(buf, "s3cret", 6) == 0);
    CHECK_EQ_INT(entries(), 1);

    /* replace=false: an existing file is never overwritten, and nothing is left behind. */
    CHECK_EQ_INT(secret_file_write(at("key"), "other!", 6, 0600, false, err, sizeof(err)), -EEXIST);
    CHECK(strstr(err, at("key")) != NULL && strstr(err, "already exists") != NULL);
    CHECK_EQ_INT(secret_file_read(at("key"), "test key", buf, sizeof(buf), &n, err, sizeof(err)),
                 0);
    CHECK(n == 6 && memcmp(buf, "s3cret", 6) == 0);
    CHECK_EQ_INT(entries(), 1);

    /* Replacing an existing world-readable file: the new file has the requested mode, not the
     * old one (O_TRUNC into it would have kept 0644). */
    put(at("pw"), "old password, longer than the new one\n", 0644);
    CHECK_EQ_INT(secret_file_write(at("pw"), "new\n", 4, 0600, true, err, sizeof(err)), 0);
    CHECK_EQ_INT(mode_of(at("pw")) & 07777, 0600);
    CHECK_EQ_INT(
        secret_file_read(at("pw"), "password file", buf, sizeof(buf), &n, err, sizeof(err)), 0);
    CHECK(n == 4 && memcmp(buf, "new\n", 4) == 0);

    /* A symlink at the target is replaced, its victim untouched (no write through it). */
    put(at("victim"), "victim", 0644);
    CHECK(symlink(at("victim"), at("link")) == 0);
    CHECK_EQ_INT(secret_file_write(at("link"), "sealed", 6, 0600, true, err, sizeof(err)), 0);
    CHECK(S_ISREG(mode_of(at("link"))));
    CHECK_EQ_INT(mode_of(at("victim")) & 07777, 0644);
    CHECK_EQ_INT(
        secret_file_read(at("link"), "sealed blob", buf, sizeof(buf), &n, err, sizeof(err)), 0);
    CHECK(n == 6 && memcmp(buf, "sealed", 6) == 0);
    long vl = check_read_file(at("victim"), (uint8_t *)buf, sizeof(buf));
    CHECK(vl == 6 && memcmp(buf, "victim", 6) == 0);
    CHECK_EQ_INT(entries(), 4); /* key, pw, victim, link: no temporary file */

    /* A directory that does not exist: the error names the temporary file's place. */
    CHECK(secret_file_write(at("no/such/key"), "x", 1, 0600, true, err, sizeof(err)) == -ENOENT);
    CHECK(strstr(err, "no/such/") != NULL);

    /* Reading: group or others may use it -> refused, naming the file and the mode. */
    static const mode_t loose[] = {0640, 0604, 0620, 0644, 0660, 0601};
    for (size_t i = 0; i < sizeof(loose) / sizeof(loose[0]); i++) {
        CHECK(chmod(at("key"), loose[i]) == 0);
        err[0] = '\0';
        CHECK_EQ_INT(secret_file_read(at("key"), "edge password file", buf, sizeof(buf), &n, err,
                                      sizeof(err)),
                     -EPERM);
        char want[16];
        snprintf(want, sizeof(want), "mode %04o", (unsigned)loose[i]);
        CHECK(strstr(err, at("key")) != NULL && strstr(err, want) != NULL &&
              strstr(err, "edge password file") != NULL && strstr(err, "chmod 600") != NULL);
        CHECK(secret_file_open(at("key"), "key", err, sizeof(err)) == -EPERM);
    }
    /* 0400 and 0600 are accepted. */
    CHECK(chmod(at("key"), 0400) == 0);
    CHECK_EQ_INT(secret_file_read(at("key"), "key", buf, sizeof(buf), &n, err, sizeof(err)), 0);
    CHECK(chmod(at("key"), 0600) == 0);
    int fd = secret_file_open(at("key"), "key", err, sizeof(err));
    CHECK(fd >= 0);
    if (fd >= 0)
        close(fd);
    /* Not a regular file: a directory, a FIFO (refused without blocking on it). */
    CHECK(mkdir(at("d"), 0700) == 0);
    CHECK_EQ_INT(secret_file_read(at("d"), "key", buf, sizeof(buf), &n, err, sizeof(err)), -EINVAL);
    CHECK(strstr(err, "not a regular file") != NULL);
    CHECK(mkfifo(at("fifo"), 0600) == 0);
    CHECK_EQ_INT(secret_file_read(at("fifo"), "key", buf, sizeof(buf), &n, err, sizeof(err)),
                 -EINVAL);
    /* Missing: the open's errno, the path named. */
    CHECK_EQ_INT(
        secret_file_read(at("missing"), "HMAC key", buf, sizeof(buf), &n, err, sizeof(err)),
        -ENOENT);
    CHECK(strstr(err, "HMAC key") != NULL && strstr(err, at("missing")) != NULL);
    /* Larger than the buffer: refused; exactly the buffer: accepted. */
    CHECK_EQ_INT(secret_file_write(at("big"), "0123456789", 10, 0600, false, err, sizeof(err)), 0);
    CHECK_EQ_INT(secret_file_read(at("big"), "key", buf, 9, &n, err, sizeof(err)), -EFBIG);
    CHECK(strstr(err, "larger than 9 bytes") != NULL);
    CHECK_EQ_INT(secret_file_read(at("big"), "key", buf, 10, &n, err, sizeof(err)), 0);
    CHECK_EQ_INT(n, 10);

    const char *names[] = {"key", "pw", "victim", "link", "fifo", "big"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        (void)unlink(at(names[i]));
    (void)rmdir(at("d"));
    (void)rmdir(dir);
    return check_finish();
}
