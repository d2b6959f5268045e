/* fleetgw-tool: the offline toolbox. Each command group lives in its own tool_<group>.c and
 * is listed in main.c. Exit codes everywhere: 0 valid/ok, 1 invalid (reason printed),
 * 2 usage or I/O error. */
#ifndef FLEETGW_TOOL_H
#define FLEETGW_TOOL_H

enum { TOOL_OK = 0, TOOL_INVALID = 1, TOOL_USAGE = 2 };

struct tool_group {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv); /* argv[0] is the group name */
};

/* Shared helpers (tool_key.c). Files are read whole, with a cap; outputs are written to a
 * temporary file, synced and renamed, so a failure never leaves a half-written file. */
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <openssl/evp.h>
#include "fleetgw/crypto.h"
int tool_write_atomic(const char *path, const void *data, size_t len, mode_t mode);
int tool_read_file(const char *path, size_t max, uint8_t **data, size_t *len);
EVP_PKEY *tool_load_key(const char *path, int want_private);
int tool_pub_point(EVP_PKEY *key, uint8_t pub[CRYPTO_P256_PUB_LEN]);

int tool_key(int argc, char **argv);
int tool_image(int argc, char **argv);
int tool_token(int argc, char **argv);
int tool_quote(int argc, char **argv);

#endif
