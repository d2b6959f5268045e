/* Initial Attestation Key (IAK, ECDSA P-256) in the protected storage area of the flash
 * (BOOT_PSA_OFF). Generated once, on first boot, from a TRNG (posix: getrandom) or, on boards
 * without one (QEMU mps2-an385), from a per-device seed written into the protected storage at
 * manufacture. Callers get the public key and a sign call; the private key never leaves this
 * module (iak_sign matches crypto_sign_fn, key_ctx = the struct boot_flash). */
#ifndef FLEETGW_IAK_H
#define FLEETGW_IAK_H

#include <stddef.h>
#include <stdint.h>

#include "fleetgw/boot_flash.h"

#if defined(__GNUC__)
#define IAK_MUST_CHECK __attribute__((warn_unused_result))
#else
#define IAK_MUST_CHECK
#endif

#define IAK_SEED_LEN 32u

enum iak_status {
    IAK_OK = 0,
    IAK_NO_SEED,     /* no entropy source and no manufacture seed in protected storage */
    IAK_NO_KEY,      /* not provisioned */
    IAK_FLASH_ERROR, /* protected storage could not be read or written */
    IAK_CRYPTO_ERROR,
};

/* Fills buf with len bytes from a TRNG; 0 on success. */
typedef int (*iak_entropy_fn)(void *ctx, uint8_t *buf, size_t len);

/* Creates the IAK if protected storage holds none. entropy NULL: derive it from the
 * manufacture seed (deterministic: an interrupted provisioning re-creates the same key). */
enum iak_status iak_provision(const struct boot_flash *flash, iak_entropy_fn entropy,
                              void *entropy_ctx) IAK_MUST_CHECK;
/* The public key, uncompressed SEC1 (0x04 || X || Y). */
enum iak_status iak_public_key(const struct boot_flash *flash, uint8_t pub[65]) IAK_MUST_CHECK;
/* ECDSA P-256 (deterministic, RFC 6979) over a SHA-256 digest; raw r||s. Returns 0 on
 * success (crypto_sign_fn convention); key_ctx is a const struct boot_flash *. */
int iak_sign(void *key_ctx, const uint8_t digest[32], uint8_t sig_rs[64]) IAK_MUST_CHECK;

/* Manufacture step (factory tool, tests): writes the per-device seed. Fails if one exists. */
enum iak_status iak_write_seed(const struct boot_flash *flash,
                               const uint8_t seed[IAK_SEED_LEN]) IAK_MUST_CHECK;

#endif
