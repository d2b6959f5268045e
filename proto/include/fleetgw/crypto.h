/* Narrow crypto interface used by proto/ (images, tokens). Two back-ends implement it:
 * crypto_openssl.c (daemon, tools: OpenSSL 3) and crypto_mbedtls.c (firmware and posix
 * agent: Mbed TLS 2.28). Keys never cross this interface: signing goes through a callback
 * supplied by the key's owner (a PEM key in the tool, the IAK store in the firmware). */
#ifndef FLEETGW_CRYPTO_H
#define FLEETGW_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#define CRYPTO_SHA256_LEN      32u
#define CRYPTO_P256_PUB_LEN    65u /* uncompressed SEC1 point: 0x04 || X || Y */
#define CRYPTO_P256_SIG_LEN    64u /* raw r || s, 32 bytes each, big endian */
#define CRYPTO_HMAC_SHA256_LEN 32u
/* HMAC-SHA256 keys: at least the hash length (RFC 2104 section 3 discourages shorter keys;
 * TF-M's symmetric IAK is 32 bytes), at most one SHA-256 block (longer keys are hashed first,
 * which buys nothing). */
#define CRYPTO_HMAC_KEY_MIN   32u
#define CRYPTO_HMAC_KEY_MAX   64u
#define CRYPTO_HMAC_MAX_PARTS 8u

#if defined(__GNUC__)
#define CRYPTO_MUST_CHECK __attribute__((warn_unused_result))
#else
#define CRYPTO_MUST_CHECK
#endif

/* Streaming SHA-256. The context is opaque storage large enough for either back-end. */
typedef union crypto_sha256_ctx {
    uint64_t align_;
    void *ptr; /* back-ends that keep a handle store it here */
    unsigned char opaque[256];
} crypto_sha256_ctx;

/* All functions return 0 on success, -1 on failure (bad input, back-end error, or for
 * crypto_p256_verify: signature does not verify). */
int crypto_sha256_init(crypto_sha256_ctx *ctx) CRYPTO_MUST_CHECK;
int crypto_sha256_update(crypto_sha256_ctx *ctx, const uint8_t *data, size_t len) CRYPTO_MUST_CHECK;
/* Writes the digest and releases the context (also on failure). */
int crypto_sha256_final(crypto_sha256_ctx *ctx, uint8_t out[CRYPTO_SHA256_LEN]) CRYPTO_MUST_CHECK;
/* Releases a context without producing a digest (error paths). Safe on a finished context. */
void crypto_sha256_abort(crypto_sha256_ctx *ctx);
int crypto_sha256(const uint8_t *data, size_t len,
                  uint8_t out[CRYPTO_SHA256_LEN]) CRYPTO_MUST_CHECK;

/* ECDSA P-256 verification of a SHA-256 digest. Returns 0 only for a valid signature. */
int crypto_p256_verify(const uint8_t pub[CRYPTO_P256_PUB_LEN],
                       const uint8_t digest[CRYPTO_SHA256_LEN],
                       const uint8_t sig_rs[CRYPTO_P256_SIG_LEN]) CRYPTO_MUST_CHECK;

/* One piece of a message that is MACed without being copied together first. */
struct crypto_buf {
    const uint8_t *p;
    size_t len;
};

/* HMAC-SHA256 (RFC 2104) of the concatenation of parts[0..n-1] (n <= CRYPTO_HMAC_MAX_PARTS) with
 * a key of CRYPTO_HMAC_KEY_MIN..CRYPTO_HMAC_KEY_MAX bytes. Returns 0 and the 32-byte tag, or -1
 * (bad arguments, back-end failure; out is wiped then). The key is not kept. */
int crypto_hmac_sha256(const uint8_t *key, size_t key_len, const struct crypto_buf *parts, size_t n,
                       uint8_t out[CRYPTO_HMAC_SHA256_LEN]) CRYPTO_MUST_CHECK;

/* Constant-time comparison: 0 when equal. */
int crypto_memcmp_ct(const void *a, const void *b, size_t len);

/* Wipes memory in a way the compiler may not remove. */
void crypto_wipe(void *p, size_t len);

/* A signer: produces an ECDSA P-256 signature (raw r||s) over a SHA-256 digest with a key the
 * caller owns. Returns 0 on success. */
typedef int (*crypto_sign_fn)(void *key_ctx, const uint8_t digest[CRYPTO_SHA256_LEN],
                              uint8_t sig_rs[CRYPTO_P256_SIG_LEN]);

#endif
