/* Helpers shared by the fleetgw-tool command groups (implemented in tool_key.c). */
#ifndef FLEETGW_TOOL_UTIL_H
#define FLEETGW_TOOL_UTIL_H

/* Files are read whole, with a cap; outputs are written to a
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

#endif
