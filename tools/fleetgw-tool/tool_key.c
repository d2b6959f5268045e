/* fleetgw-tool key: P-256 key pairs in PEM (OpenSSL). */
#define _GNU_SOURCE
#include "tool.h"
#include "tool_util.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

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
