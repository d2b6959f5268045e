/* Helpers shared by the fleetgw-tool command groups and by the tpm/ command-line code that is
 * linked into the tool (quote verify) or shares its text formats (identity). See tool_util.h. */
#define _GNU_SOURCE
#include "tool_util.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "fleetgw/der.h"
#include "fleetgw/hex.h"

int tool_hex_decode(const char *s, uint8_t *out, size_t cap, size_t *ret_len)
{
    return hex_decode(s, strlen(s), out, cap, ret_len) == 0 ? 0 : -1;
}

void tool_print_hex(FILE *f, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%02x", p[i]);
}

void tool_json_strn(FILE *f, const char *s, size_t n)
{
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20 || c == 0x7f)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

void tool_json_str(FILE *f, const char *s)
{
    tool_json_strn(f, s, strlen(s));
}

void tool_json_base64(FILE *f, const uint8_t *p, size_t n)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    fputc('"', f);
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < n)
            v |= p[i + 2];
        fputc(alphabet[(v >> 18) & 0x3f], f);
        fputc(alphabet[(v >> 12) & 0x3f], f);
        fputc(i + 1 < n ? alphabet[(v >> 6) & 0x3f] : '=', f);
        fputc(i + 2 < n ? alphabet[v & 0x3f] : '=', f);
    }
    fputc('"', f);
}

void tool_json_hex(FILE *f, const uint8_t *p, size_t n)
{
    fputc('"', f);
    tool_print_hex(f, p, n);
    fputc('"', f);
}

int tool_read_capped(const char *path, uint8_t *buf, size_t cap, size_t *ret_len)
{
    *ret_len = 0;
    FILE *f = fopen(path, "rbe");
    if (f == NULL)
        return errno != 0 ? -errno : -EIO;
    size_t n = fread(buf, 1, cap, f);
    int bad = ferror(f);
    int more = !bad && fgetc(f) != EOF;
    bad = bad || ferror(f);
    fclose(f);
    if (bad)
        return -EIO;
    if (more)
        return -EFBIG;
    *ret_len = n;
    return 0;
}

/* Writes data to path via a temporary file in the same folder, fsync and rename: readers
 * see the old file or the whole new one, never a part. */
int tool_write_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
    char tmp[4096];
    int fd = -1, ret = -1;
    if (snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path) >= (int)sizeof(tmp))
        return -1;
    fd = mkostemp(tmp, O_CLOEXEC); /* created 0600 */
    if (fd < 0) {
        fprintf(stderr, "fleetgw-tool: cannot create %s: %s\n", tmp, strerror(errno));
        return -1;
    }
    if (fchmod(fd, mode) != 0)
        goto out;
    const uint8_t *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t n = write(fd, p, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            goto out;
        p += n;
        left -= (size_t)n;
    }
    if (fsync(fd) != 0)
        goto out;
    if (close(fd) != 0) {
        fd = -1;
        goto out;
    }
    fd = -1;
    if (rename(tmp, path) != 0)
        goto out;
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s", path);
    int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
    ret = 0;
out:
    if (ret != 0) {
        fprintf(stderr, "fleetgw-tool: cannot write %s: %s\n", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        unlink(tmp);
    }
    return ret;
}

/* Reads a whole regular file of at most max bytes into a new buffer. */
int tool_read_file(const char *path, size_t max, uint8_t **data, size_t *len)
{
    *data = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "fleetgw-tool: cannot open %s: %s\n", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > max) {
        fprintf(stderr, "fleetgw-tool: %s: not a regular file of at most %zu bytes\n", path, max);
        close(fd);
        return -1;
    }
    size_t size = (size_t)st.st_size;
    uint8_t *buf = malloc(size ? size : 1);
    size_t got = 0;
    while (buf != NULL && got < size) {
        ssize_t n = read(fd, buf + got, size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    if (buf == NULL || got != size) {
        fprintf(stderr, "fleetgw-tool: cannot read %s\n", path);
        free(buf);
        return -1;
    }
    *data = buf;
    *len = size;
    return 0;
}

/* Loads a P-256 key from PEM: a private key (PKCS#8 or SEC1), or when !want_private also a
 * public key (SubjectPublicKeyInfo). */
EVP_PKEY *tool_load_key(const char *path, int want_private)
{
    uint8_t *pem = NULL;
    size_t len = 0;
    EVP_PKEY *key = NULL;
    if (tool_read_file(path, 0x10000, &pem, &len) != 0)
        return NULL;
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    if (bio != NULL)
        key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    if (key == NULL && bio != NULL && !want_private && BIO_reset(bio) == 1)
        key = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    BIO_free(bio);
    OPENSSL_cleanse(pem, len);
    free(pem);
    char group[64] = "";
    size_t glen = 0;
    if (key == NULL) {
        fprintf(stderr, "fleetgw-tool: %s: no %s PEM key\n", path,
                want_private ? "private" : "private or public");
        return NULL;
    }
    if (!EVP_PKEY_is_a(key, "EC") ||
        EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                       &glen) != 1 ||
        strcmp(group, "prime256v1") != 0) {
        fprintf(stderr, "fleetgw-tool: %s: not an EC P-256 key\n", path);
        EVP_PKEY_free(key);
        return NULL;
    }
    return key;
}

int tool_pub_point(EVP_PKEY *key, uint8_t pub[CRYPTO_P256_PUB_LEN])
{
    size_t n = 0;
    if (EVP_PKEY_set_utf8_string_param(key, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
                                       "uncompressed") != 1)
        return -1;
    if (EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, pub,
                                        CRYPTO_P256_PUB_LEN, &n) != 1 ||
        n != CRYPTO_P256_PUB_LEN || pub[0] != 0x04)
        return -1;
    return 0;
}

int tool_sign_p256(void *pkey, const uint8_t digest[CRYPTO_SHA256_LEN],
                   uint8_t sig_rs[CRYPTO_P256_SIG_LEN])
{
    EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new((EVP_PKEY *)pkey, NULL);
    uint8_t der[80];
    size_t n = sizeof(der);
    int ok = pc != NULL && EVP_PKEY_sign_init(pc) == 1 &&
             EVP_PKEY_sign(pc, der, &n, digest, CRYPTO_SHA256_LEN) == 1 &&
             der_ecdsa_sig_to_raw(der, n, sig_rs) == DER_OK;
    EVP_PKEY_CTX_free(pc);
    return ok ? 0 : -1;
}

void tool_stopwatch_start(struct tool_stopwatch *w)
{
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &w->cpu);
    clock_gettime(CLOCK_MONOTONIC, &w->wall);
}

static double seconds_since(clockid_t clock, const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(clock, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

void tool_stopwatch_read(const struct tool_stopwatch *w, double *cpu_s, double *wall_s)
{
    *cpu_s = seconds_since(CLOCK_PROCESS_CPUTIME_ID, &w->cpu);
    *wall_s = seconds_since(CLOCK_MONOTONIC, &w->wall);
}
