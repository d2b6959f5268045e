/* The content-addressed OTA image store (ota_store.h): <dir>/<hex>.img and <hex>.json
 * (metadata, ota_meta.c) written durably within a byte quota, the clean-up at open, lookup
 * and listing, chunk reads on cached descriptors, re-verification before an offer, and the
 * released links (<dir>/released/). The checks an image passes first are ota_check.c's.
 * Library code: returns errors, never logs. */
#define _GNU_SOURCE
#include "ota_store.h"
#include "ota_meta.h"
#include "readfile.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fleetgw/crypto.h>
#include <fleetgw/hex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define OTA_META_MAX_FILE (64 * 1024)
#define OTA_FD_CACHE      4
#define OTA_LIST_MAX      65536 /* images listed by one foreach/lookup, at most */
#define OTA_TMP_PREFIX    ".tmp."

struct ota_fd {
    bool used;
    uint8_t digest[OTA_DIGEST_LEN];
    int fd;
    uint64_t last;
};

struct ota_store {
    int dirfd;
    int relfd;
    uint64_t quota;
    uint64_t used;
    uint64_t tick;
    struct ota_fd fds[OTA_FD_CACHE];
    char released[4096];
};

/* "<64 hex>.<ext>" with lower-case hex: the digest, or -1. */
static int name_digest(const char *name, const char *ext, uint8_t d[OTA_DIGEST_LEN])
{
    size_t el = strlen(ext), dl = 0;
    if (strlen(name) != OTA_DIGEST_HEX + 1 + el || name[OTA_DIGEST_HEX] != '.' ||
        strcmp(name + OTA_DIGEST_HEX + 1, ext) != 0)
        return -1;
    for (size_t i = 0; i < OTA_DIGEST_HEX; i++)
        if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f')))
            return -1;
    return hex_decode(name, OTA_DIGEST_HEX, d, OTA_DIGEST_LEN, &dl) == 0 ? 0 : -1;
}

static void file_name(const uint8_t d[OTA_DIGEST_LEN], const char *ext, char out[80])
{
    char hex[OTA_DIGEST_HEX + 1];
    hex_encode(d, OTA_DIGEST_LEN, hex);
    snprintf(out, 80, "%s.%s", hex, ext);
}

/* An image is stored while its metadata file exists. */
static bool stored(const struct ota_store *s, const uint8_t d[OTA_DIGEST_LEN])
{
    char name[80];
    struct stat st;
    file_name(d, "json", name);
    return fstatat(s->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

/* The stored image's file, opened read-only: a descriptor, or -1 with errno set. */
static int image_open(const struct ota_store *s, const uint8_t d[OTA_DIGEST_LEN])
{
    char name[80];
    file_name(d, "img", name);
    return openat(s->dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
}

/* A directory stream over dirfd's directory (on a descriptor of its own): 0 or -errno. */
static int dir_open(int dirfd, DIR **ret)
{
    int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    *ret = fdopendir(fd);
    if (*ret == NULL) {
        int e = -errno;
        close(fd);
        return e;
    }
    return 0;
}

/* Every "<hex>.json" of the store, sorted; *ret (caller frees) and the count, or -errno. */
static int cmp_digest(const void *a, const void *b)
{
    return memcmp(a, b, OTA_DIGEST_LEN);
}

static ssize_t list_digests(int dirfd, uint8_t (**ret)[OTA_DIGEST_LEN])
{
    uint8_t(*v)[OTA_DIGEST_LEN] = NULL;
    size_t n = 0, cap = 0;
    DIR *d = NULL;
    int e = dir_open(dirfd, &d);
    if (e < 0)
        return e;
    struct dirent *de;
    ssize_t r = 0;
    while ((errno = 0, de = readdir(d)) != NULL) {
        uint8_t dg[OTA_DIGEST_LEN];
        if (name_digest(de->d_name, "json", dg) != 0)
            continue;
        if (n == OTA_LIST_MAX) {
            r = -E2BIG;
            goto out;
        }
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 16;
            void *nv = realloc(v, nc * sizeof(*v));
            if (nv == NULL) {
                r = -ENOMEM;
                goto out;
            }
            v = nv;
            cap = nc;
        }
        memcpy(v[n++], dg, OTA_DIGEST_LEN);
    }
    if (errno != 0)
        r = -errno;
out:
    closedir(d);
    if (r < 0) {
        free(v);
        return r;
    }
    if (n > 1)
        qsort(v, n, sizeof(*v), cmp_digest);
    *ret = v;
    return (ssize_t)n;
}

/* Removes what a put, remove or release cut short from dirfd (the store, or released/):
 * temp files, and images (or released links) without metadata; fsyncs dirfd when it
 * removed any. With sum, adds the sizes of the stored images to *sum. 0 or -errno. */
static int sweep(struct ota_store *s, int dirfd, uint64_t *sum)
{
    DIR *d = NULL;
    int r = dir_open(dirfd, &d);
    if (r < 0)
        return r;
    struct dirent *de;
    bool changed = false;
    while ((errno = 0, de = readdir(d)) != NULL) {
        uint8_t dg[OTA_DIGEST_LEN];
        bool tmp = strncmp(de->d_name, OTA_TMP_PREFIX, strlen(OTA_TMP_PREFIX)) == 0;
        if (!tmp && name_digest(de->d_name, "img", dg) != 0)
            continue;
        if (!tmp && stored(s, dg)) {
            struct stat st;
            if (sum == NULL)
                continue;
            if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
                r = -errno;
                break;
            }
            *sum += (uint64_t)st.st_size;
            continue;
        }
        if (unlinkat(dirfd, de->d_name, 0) != 0 && errno != ENOENT) {
            r = -errno;
            break;
        }
        changed = true;
    }
    if (r == 0 && errno != 0)
        r = -errno;
    closedir(d);
    if (r == 0 && changed && fsync(dirfd) != 0)
        r = -errno;
    return r;
}

int ota_store_open(const char *dir, uint64_t quota_bytes, struct ota_store **ret)
{
    struct ota_store *s = NULL;
    int r = 0;

    if (dir == NULL || dir[0] == '\0' || ret == NULL)
        return -EINVAL;
    if (strlen(dir) + sizeof("/released") > sizeof(s->released))
        return -ENAMETOOLONG;
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return -ENOMEM;
    s->dirfd = s->relfd = -1;
    for (size_t i = 0; i < OTA_FD_CACHE; i++)
        s->fds[i].fd = -1;
    s->quota = quota_bytes;
    snprintf(s->released, sizeof(s->released), "%s/released", dir);
    if (mkdir(dir, 0750) != 0 && errno != EEXIST) {
        r = -errno;
        goto out;
    }
    /* The configured path may be a symbolic link (a store on another disk); what the store
     * creates inside it never is. */
    s->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->dirfd < 0) {
        r = -errno;
        goto out;
    }
    if (mkdirat(s->dirfd, "released", 0750) != 0 && errno != EEXIST) {
        r = -errno;
        goto out;
    }
    s->relfd = openat(s->dirfd, "released", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (s->relfd < 0) {
        r = -errno;
        goto out;
    }
    r = sweep(s, s->dirfd, &s->used);
    if (r == 0)
        r = sweep(s, s->relfd, NULL);
out:
    if (r < 0) {
        ota_store_close(s);
        return r;
    }
    *ret = s;
    return 0;
}

void ota_store_close(struct ota_store *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < OTA_FD_CACHE; i++)
        if (s->fds[i].fd >= 0)
            close(s->fds[i].fd);
    if (s->relfd >= 0)
        close(s->relfd);
    if (s->dirfd >= 0)
        close(s->dirfd);
    free(s);
}

uint64_t ota_store_used(const struct ota_store *s)
{
    return s->used;
}

const char *ota_store_released_dir(const struct ota_store *s)
{
    return s->released;
}

/* Unlinks an image's file and its released link, if any (the metadata is gone already or
 * was never written; what a failure here leaves is removed by the next ota_store_open). */
static void image_unlink(struct ota_store *s, const char *img)
{
    if (unlinkat(s->relfd, img, 0) == 0)
        (void)fsync(s->relfd);
    (void)unlinkat(s->dirfd, img, 0);
}

static void fd_forget(struct ota_store *s, const uint8_t d[OTA_DIGEST_LEN])
{
    for (size_t i = 0; i < OTA_FD_CACHE; i++) {
        if (s->fds[i].used && memcmp(s->fds[i].digest, d, OTA_DIGEST_LEN) == 0) {
            close(s->fds[i].fd);
            s->fds[i].fd = -1;
            s->fds[i].used = false;
        }
    }
}

/* Writes len bytes to a new temp file, fsyncs it and renames it to name: 0 or -errno
 * (nothing left behind on failure). */
static int write_durable(int dirfd, const char *name, const void *data, size_t len)
{
    char tmp[128];
    int r = 0;
    snprintf(tmp, sizeof(tmp), "%s%s", OTA_TMP_PREFIX, name);
    (void)unlinkat(dirfd, tmp, 0);
    int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0640);
    if (fd < 0)
        return -errno;
    const uint8_t *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            r = -errno;
            break;
        }
        p += w;
        left -= (size_t)w;
    }
    if (r == 0 && fsync(fd) != 0)
        r = -errno;
    if (close(fd) != 0 && r == 0)
        r = -errno;
    if (r == 0 && renameat(dirfd, tmp, dirfd, name) != 0)
        r = -errno;
    if (r < 0)
        (void)unlinkat(dirfd, tmp, 0);
    return r;
}

static int meta_write(struct ota_store *s, const struct ota_image_meta *m)
{
    char name[80];
    char *text = ota_meta_to_json(m);
    if (text == NULL)
        return -ENOMEM;
    file_name(m->digest, "json", name);
    size_t tl = strlen(text);
    text[tl] = '\n'; /* replaces the NUL: written as tl + 1 bytes */
    int r = write_durable(s->dirfd, name, text, tl + 1);
    free(text);
    return r;
}

int ota_store_get(struct ota_store *s, const uint8_t digest[OTA_DIGEST_LEN],
                  struct ota_image_meta *meta)
{
    char name[80];
    const char *why = NULL;
    size_t len = 0;
    int r = 0;
    struct ota_image_meta m;

    file_name(digest, "json", name);
    char *text = readfile_at(s->dirfd, name, OTA_META_MAX_FILE, &len, &why, &r);
    if (text == NULL)
        return r;
    r = ota_meta_parse(text, &m);
    free(text);
    if (r == 0 && memcmp(m.digest, digest, OTA_DIGEST_LEN) != 0)
        r = -EBADMSG; /* the metadata of another image under this name */
    if (r < 0)
        return r;
    *meta = m;
    return 0;
}

enum ota_refusal ota_store_put(struct ota_store *s, const uint8_t *img, size_t len,
                               const struct ota_check_opts *o, const char *source, int64_t now,
                               struct ota_image_meta *meta, char *why, size_t whylen)
{
    struct ota_image_meta m;
    char iname[80], jname[80];
    enum ota_refusal rr = ota_image_check(img, len, o, &m, why, whylen);
    if (rr != OTA_OK) {
        memset(meta, 0, sizeof(*meta));
        return rr;
    }
    int e = ota_store_get(s, m.digest, meta);
    if (e == 0)
        return OTA_OK; /* already stored: the stored image and its metadata */
    memset(meta, 0, sizeof(*meta));
    if (e != -ENOENT)
        return ota_refuse(OTA_R_IO, why, whylen, "cannot read the metadata of stored image %s: %s",
                          m.digest_hex, strerror(-e));
    if (s->used > s->quota || len > s->quota - s->used)
        return ota_refuse(OTA_R_QUOTA, why, whylen,
                          "the store holds %llu bytes; this image (%zu bytes) would exceed "
                          "ota.store_quota_bytes (%llu)",
                          (unsigned long long)s->used, len, (unsigned long long)s->quota);
    m.staged = now;
    snprintf(m.source, sizeof(m.source), "%s", source != NULL ? source : "");
    m.released = false;
    file_name(m.digest, "img", iname);
    file_name(m.digest, "json", jname);
    /* The image first, its metadata last: an image exists once its .json does; an .img
     * without one (a crash in between) is removed by the next ota_store_open. */
    e = write_durable(s->dirfd, iname, img, len);
    if (e == 0) {
        e = meta_write(s, &m);
        if (e == 0 && fsync(s->dirfd) != 0)
            e = -errno;
        if (e < 0) {
            (void)unlinkat(s->dirfd, jname, 0);
            image_unlink(s, iname);
        }
    }
    if (e < 0)
        return ota_refuse(OTA_R_IO, why, whylen, "cannot write image %s to the store: %s",
                          m.digest_hex, strerror(-e));
    s->used += len;
    *meta = m;
    return OTA_OK;
}

int ota_store_lookup(struct ota_store *s, const char *hex, uint8_t digest[OTA_DIGEST_LEN])
{
    char want[OTA_DIGEST_HEX + 1];
    size_t n = hex != NULL ? strlen(hex) : 0;
    if (n < 8 || n > OTA_DIGEST_HEX)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        int v = hex_value(hex[i]);
        if (v < 0)
            return -EINVAL;
        want[i] = "0123456789abcdef"[v];
    }
    want[n] = '\0';
    uint8_t(*v)[OTA_DIGEST_LEN] = NULL;
    ssize_t cnt = list_digests(s->dirfd, &v);
    if (cnt < 0)
        return (int)cnt;
    int r = -ENOENT;
    for (ssize_t i = 0; i < cnt; i++) {
        char h[OTA_DIGEST_HEX + 1];
        hex_encode(v[i], OTA_DIGEST_LEN, h);
        if (strncmp(h, want, n) != 0)
            continue;
        if (r == 0) {
            r = -ENOTUNIQ;
            break;
        }
        memcpy(digest, v[i], OTA_DIGEST_LEN);
        r = 0;
    }
    free(v);
    return r;
}

int ota_store_foreach(struct ota_store *s, int (*fn)(const struct ota_image_meta *m, void *u),
                      void *u)
{
    uint8_t(*v)[OTA_DIGEST_LEN] = NULL;
    ssize_t cnt = list_digests(s->dirfd, &v);
    if (cnt < 0)
        return (int)cnt;
    int r = 0;
    for (ssize_t i = 0; i < cnt; i++) {
        struct ota_image_meta m;
        int e = ota_store_get(s, v[i], &m);
        if (e == -ENOENT)
            continue; /* removed meanwhile */
        if (e < 0) {
            r = e;
            break;
        }
        if (fn(&m, u) != 0)
            break;
    }
    free(v);
    return r;
}

int ota_store_remove(struct ota_store *s, const uint8_t digest[OTA_DIGEST_LEN])
{
    char iname[80], jname[80];
    struct stat st;
    if (!stored(s, digest))
        return -ENOENT;
    file_name(digest, "img", iname);
    file_name(digest, "json", jname);
    uint64_t size =
        fstatat(s->dirfd, iname, &st, AT_SYMLINK_NOFOLLOW) == 0 ? (uint64_t)st.st_size : 0;
    fd_forget(s, digest);
    /* Metadata first: the image is gone from then on; a crash later leaves files that the
     * next ota_store_open removes. */
    if (unlinkat(s->dirfd, jname, 0) != 0)
        return -errno;
    image_unlink(s, iname);
    s->used = s->used >= size ? s->used - size : 0;
    if (fsync(s->dirfd) != 0)
        return -errno;
    return 0;
}

/* A cached read-only descriptor of the stored image, or -errno. */
static int image_fd(struct ota_store *s, const uint8_t digest[OTA_DIGEST_LEN])
{
    size_t victim = 0;
    s->tick++;
    for (size_t i = 0; i < OTA_FD_CACHE; i++) {
        if (s->fds[i].used && memcmp(s->fds[i].digest, digest, OTA_DIGEST_LEN) == 0) {
            s->fds[i].last = s->tick;
            return s->fds[i].fd;
        }
        if (!s->fds[i].used)
            victim = i;
        else if (s->fds[victim].used && s->fds[i].last < s->fds[victim].last)
            victim = i;
    }
    if (!stored(s, digest))
        return -ENOENT;
    int fd = image_open(s, digest);
    if (fd < 0)
        return -errno;
    if (s->fds[victim].used)
        close(s->fds[victim].fd);
    s->fds[victim].used = true;
    s->fds[victim].fd = fd;
    s->fds[victim].last = s->tick;
    memcpy(s->fds[victim].digest, digest, OTA_DIGEST_LEN);
    return fd;
}

ssize_t ota_store_read(struct ota_store *s, const uint8_t digest[OTA_DIGEST_LEN], uint32_t off,
                       uint8_t *buf, size_t len)
{
    int fd = image_fd(s, digest);
    if (fd < 0)
        return fd;
    for (;;) {
        ssize_t n = pread(fd, buf, len, (off_t)off);
        if (n >= 0)
            return n;
        if (errno != EINTR)
            return -errno;
    }
}

enum ota_refusal ota_store_verify(struct ota_store *s, const uint8_t digest[OTA_DIGEST_LEN],
                                  const struct ota_check_opts *o, char *why, size_t whylen)
{
    struct ota_image_meta m;
    struct image_result res;
    char hex[OTA_DIGEST_HEX + 1];
    uint8_t fsha[OTA_DIGEST_LEN];
    uint8_t *buf = NULL;
    enum ota_refusal rr = OTA_OK;
    int fd = -1;

    if (whylen > 0)
        why[0] = '\0';
    hex_encode(digest, OTA_DIGEST_LEN, hex);
    int e = ota_store_get(s, digest, &m);
    if (e < 0)
        return ota_refuse(OTA_R_IO, why, whylen, "cannot read the metadata of stored image %s: %s",
                          hex, strerror(-e));
    fd = image_open(s, digest);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        rr = ota_refuse(OTA_R_IO, why, whylen, "cannot open stored image %s: %s", hex,
                        strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode) || st.st_size <= 0 || (uint64_t)st.st_size > IMAGE_MAX_LEN ||
        (uint64_t)st.st_size != m.size) {
        rr =
            ota_refuse(OTA_R_TAMPERED, why, whylen, "stored image %s is %lld bytes, %u were stored",
                       hex, (long long)st.st_size, m.size);
        goto out;
    }
    size_t len = (size_t)st.st_size;
    buf = malloc(len);
    if (buf == NULL) {
        rr = ota_refuse(OTA_R_IO, why, whylen, "out of memory verifying stored image %s", hex);
        goto out;
    }
    for (size_t got = 0; got < len;) {
        ssize_t n = pread(fd, buf + got, len - got, (off_t)got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rr = ota_refuse(OTA_R_IO, why, whylen, "cannot read stored image %s: %s", hex,
                            n < 0 ? strerror(errno) : "shorter than its size");
            goto out;
        }
        got += (size_t)n;
    }
    if (crypto_sha256(buf, len, fsha) != 0) {
        rr = ota_refuse(OTA_R_IO, why, whylen, "the crypto back-end failed hashing image %s", hex);
        goto out;
    }
    if (crypto_memcmp_ct(fsha, m.file_sha256, OTA_DIGEST_LEN) != 0) {
        rr = ota_refuse(OTA_R_TAMPERED, why, whylen,
                        "stored image %s changed since it was staged (its file SHA-256 differs)",
                        hex);
        goto out;
    }
    rr = ota_check_signature(buf, len, o->signers, o->n_signers, &res, why, whylen);
    if (rr == OTA_R_FORMAT)
        rr = OTA_R_TAMPERED; /* it was well-formed when it was stored */
    if (rr != OTA_OK)
        goto out;
    if (crypto_memcmp_ct(res.digest, digest, OTA_DIGEST_LEN) != 0) {
        rr = ota_refuse(OTA_R_TAMPERED, why, whylen, "stored image %s hashes to another digest",
                        hex);
        goto out;
    }
    const struct ota_class *c = ota_class_find(o->classes, m.class_name);
    if (c == NULL) {
        rr = ota_refuse(OTA_R_UNKNOWN_CLASS, why, whylen,
                        "stored image %s is of class '%s', which is no longer configured", hex,
                        m.class_name);
        goto out;
    }
    if (!ota_class_allows_signer(c, res.signer_keyhash)) {
        char id[OTA_DIGEST_HEX + 1];
        hex_encode(res.signer_keyhash, OTA_DIGEST_LEN, id);
        rr = ota_refuse(OTA_R_SIGNER_NOT_ALLOWED, why, whylen,
                        "stored image %s: signer %s is no longer allowed for class '%s'", hex, id,
                        c->name);
        goto out;
    }
out:
    free(buf);
    if (fd >= 0)
        close(fd);
    return rr;
}

int ota_store_release(struct ota_store *s, const uint8_t digest[OTA_DIGEST_LEN])
{
    struct ota_image_meta m;
    char name[80];
    int r = ota_store_get(s, digest, &m);
    if (r < 0)
        return r;
    file_name(digest, "img", name);
    bool linked = false;
    if (linkat(s->dirfd, name, s->relfd, name, 0) == 0)
        linked = true;
    else if (errno != EEXIST)
        return -errno;
    if (fsync(s->relfd) != 0)
        r = -errno;
    if (r == 0 && !m.released) {
        m.released = true;
        r = meta_write(s, &m);
        if (r == 0 && fsync(s->dirfd) != 0)
            r = -errno;
    }
    if (r < 0 && linked) {
        (void)unlinkat(s->relfd, name, 0);
        (void)fsync(s->relfd);
    }
    return r;
}
