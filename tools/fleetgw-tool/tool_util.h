/* Helpers shared by the fleetgw-tool command groups (tool_util.c, library fleetgw_tool_util),
 * also used by the tpm/ command-line code (quote verify is linked into the tool; the identity
 * commands read and print the same hex). Host-only: OpenSSL, stdio. */
#ifndef FLEETGW_TOOL_UTIL_H
#define FLEETGW_TOOL_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include <time.h>

#include <openssl/evp.h>

#include "fleetgw/crypto.h"
#include "fleetgw/hex.h"

/* ---- hex and JSON text ---- */

/* Hex digits and bytes: proto's fleetgw/hex.h (hex_value, hex_decode, hex_encode). */
/* Decodes an even-length NUL-terminated hex string of at most cap bytes into out; 0, or -1
 * when malformed or too long (out may then hold a part). */
int tool_hex_decode(const char *s, uint8_t *out, size_t cap, size_t *ret_len)
    __attribute__((warn_unused_result));
void tool_print_hex(FILE *f, const uint8_t *p, size_t n);
/* s as a JSON string, quotes included (control characters and DEL as \u00XX; other bytes,
 * UTF-8 included, as they are). */
void tool_json_str(FILE *f, const char *s);
/* The same for the n bytes at s (a (ptr,len) slice, no NUL needed). */
void tool_json_strn(FILE *f, const char *s, size_t n);
/* p[0..n) as a JSON string in standard base64 with padding (RFC 4648 section 4), the way
 * Go's encoding/json writes a []byte and python's base64.b64decode reads it. */
void tool_json_base64(FILE *f, const uint8_t *p, size_t n);
/* p[0..n) as a JSON string of lower-case hex. */
void tool_json_hex(FILE *f, const uint8_t *p, size_t n);

/* ---- files ---- */

/* Reads a whole file of at most cap bytes into buf (no message printed). Returns 0, -EFBIG
 * when the file is larger than cap, or another negative errno. */
int tool_read_capped(const char *path, uint8_t *buf, size_t cap, size_t *ret_len)
    __attribute__((warn_unused_result));
/* Reads a whole regular file of at most max bytes into a new buffer (free it); prints why
 * on failure. */
int tool_read_file(const char *path, size_t max, uint8_t **data, size_t *len)
    __attribute__((warn_unused_result));
/* Writes via a temporary file, fsync and rename, so that a failure never leaves a
 * half-written file; prints why on failure. */
int tool_write_atomic(const char *path, const void *data, size_t len, mode_t mode)
    __attribute__((warn_unused_result));

/* ---- timing (the hidden bench commands) ---- */

/* Process CPU time (what `openssl speed` reports unless -elapsed: on a shared machine wall
 * time measures the neighbours too) and monotonic wall time. */
struct tool_stopwatch {
    struct timespec cpu, wall;
};
void tool_stopwatch_start(struct tool_stopwatch *w);
/* Seconds of CPU and wall time since tool_stopwatch_start(). */
void tool_stopwatch_read(const struct tool_stopwatch *w, double *cpu_s, double *wall_s);

/* ---- P-256 keys (OpenSSL) ---- */

/* A P-256 key from PEM: a private key (PKCS#8 or SEC1), or when !want_private also a public
 * key (SubjectPublicKeyInfo); NULL (reason printed) otherwise. */
EVP_PKEY *tool_load_key(const char *path, int want_private);
/* The uncompressed public point 04 || X || Y. */
int tool_pub_point(EVP_PKEY *key, uint8_t pub[CRYPTO_P256_PUB_LEN])
    __attribute__((warn_unused_result));
/* ECDSA P-256 signature of a SHA-256 digest as raw r || s; pkey is an EVP_PKEY * (the
 * signer callback type of image_sign() and token_encode()). */
int tool_sign_p256(void *pkey, const uint8_t digest[CRYPTO_SHA256_LEN],
                   uint8_t sig_rs[CRYPTO_P256_SIG_LEN]);

#endif
