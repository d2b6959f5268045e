/* fleetgw-tool key: P-256 key pairs in PEM (OpenSSL). Also the PEM/file helpers that
 * tool_image.c uses (declared again there; they belong to this file). */
#define _GNU_SOURCE
#include "tool.h"
#include "tool_util.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "fleetgw/crypto.h"

/* Shared with tool_image.c. */
int tool_write_atomic(const char *path, const void *data, size_t len, mode_t mode);
int tool_read_file(const char *path, size_t max, uint8_t **data, size_t *len);
EVP_PKEY *tool_load_key(const char *path, int want_private);
int tool_pub_point(EVP_PKEY *key, uint8_t pub[CRYPTO_P256_PUB_LEN]);

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

static int write_pem(const char *path, EVP_PKEY *key, int private_part)
{
    BIO *bio = BIO_new(BIO_s_mem());
    int ret = -1;
    if (bio == NULL)
        return -1;
    int ok = private_part ? PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL)
                          : PEM_write_bio_PUBKEY(bio, key);
    char *data = NULL;
    long n = BIO_get_mem_data(bio, &data);
    if (ok == 1 && n > 0)
        ret = tool_write_atomic(path, data, (size_t)n, private_part ? 0600 : 0644);
    if (data != NULL && n > 0)
        OPENSSL_cleanse(data, (size_t)n);
    BIO_free(bio);
    return ret;
}

static void key_usage(FILE *f)
{
    fprintf(f, "usage: fleetgw-tool key gen -o PRIV.pem [--pub PUB.pem]\n"
               "       fleetgw-tool key pub -k PRIV.pem -o PUB.pem\n"
               "P-256 keys in PEM; the private key file is created with mode 0600 and is\n"
               "never printed. An existing output file is not overwritten.\n");
}

static int refuse_existing(const char *path)
{
    if (access(path, F_OK) == 0) {
        fprintf(stderr, "fleetgw-tool: %s exists; not overwriting a key file\n", path);
        return 1;
    }
    return 0;
}

int tool_key(int argc, char **argv)
{
    static const struct option opts[] = {
        {"out", required_argument, NULL, 'o'},
        {"key", required_argument, NULL, 'k'},
        {"pub", required_argument, NULL, 'p'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *out = NULL, *in = NULL, *pub = NULL;
    if (argc < 2) {
        key_usage(stderr);
        return TOOL_USAGE;
    }
    const char *cmd = argv[1];
    optind = 1;
    int c;
    while ((c = getopt_long(argc - 1, argv + 1, "o:k:h", opts, NULL)) != -1) {
        switch (c) {
        case 'o':
            out = optarg;
            break;
        case 'k':
            in = optarg;
            break;
        case 'p':
            pub = optarg;
            break;
        case 'h':
            key_usage(stdout);
            return TOOL_OK;
        default:
            key_usage(stderr);
            return TOOL_USAGE;
        }
    }
    if (optind != argc - 1) {
        key_usage(stderr);
        return TOOL_USAGE;
    }
    if (strcmp(cmd, "gen") == 0 && out != NULL && in == NULL) {
        if (refuse_existing(out) || (pub != NULL && refuse_existing(pub)))
            return TOOL_USAGE;
        EVP_PKEY *key = EVP_EC_gen("P-256");
        if (key == NULL) {
            fprintf(stderr, "fleetgw-tool: key generation failed\n");
            return TOOL_USAGE;
        }
        int rc = write_pem(out, key, 1) == 0 && (pub == NULL || write_pem(pub, key, 0) == 0)
                     ? TOOL_OK
                     : TOOL_USAGE;
        EVP_PKEY_free(key);
        if (rc == TOOL_OK)
            printf("wrote P-256 private key %s%s%s\n", out, pub ? ", public key " : "",
                   pub ? pub : "");
        return rc;
    }
    if (strcmp(cmd, "pub") == 0 && in != NULL && out != NULL && pub == NULL) {
        EVP_PKEY *key = tool_load_key(in, 0);
        if (key == NULL)
            return TOOL_USAGE;
        int rc = write_pem(out, key, 0) == 0 ? TOOL_OK : TOOL_USAGE;
        EVP_PKEY_free(key);
        if (rc == TOOL_OK)
            printf("wrote public key %s\n", out);
        return rc;
    }
    key_usage(stderr);
    return TOOL_USAGE;
}
