/* Minimal strict DER for the two structures MCUboot images and PSA tokens carry:
 * ECDSA-Sig-Value (RFC 3279) <-> raw r||s, and a P-256 SubjectPublicKeyInfo (RFC 5480,
 * id-ecPublicKey + prime256v1, uncompressed point) <-> the 65-byte SEC1 point.
 * Parsers accept only the one DER encoding of each value (short-form lengths, minimal
 * non-negative integers, no trailing bytes); encoders produce exactly that encoding, so
 * parse(encode(x)) == x and encode(parse(d)) == d for every accepted d. */
#ifndef FLEETGW_DER_H
#define FLEETGW_DER_H

#include <stddef.h>
#include <stdint.h>

#include "fleetgw/crypto.h"

#define DER_ECDSA_P256_SIG_MAX 72u /* 30 46 | 02 21 00 r(32) | 02 21 00 s(32) */
#define DER_ECDSA_P256_SIG_MIN 8u  /* 30 06 | 02 01 xx | 02 01 xx */
#define DER_P256_SPKI_LEN      91u /* 26-byte prefix + 65-byte point */

enum der_status {
    DER_OK = 0,
    DER_ERR_ARG,       /* NULL pointer or impossible length */
    DER_ERR_TRUNCATED, /* input ends inside an element */
    DER_ERR_TAG,       /* unexpected tag */
    DER_ERR_LENGTH,    /* non-minimal, long-form, or inconsistent length */
    DER_ERR_INTEGER,   /* INTEGER negative, non-minimal, or wider than 32 bytes */
    DER_ERR_TRAILING,  /* bytes after the outer element */
    DER_ERR_ALGORITHM, /* SPKI is not id-ecPublicKey on prime256v1 */
    DER_ERR_POINT,     /* not an uncompressed 65-byte point */
    DER_ERR_BUFFER,    /* output buffer too small */
};

#if defined(__GNUC__)
#define DER_MUST_CHECK __attribute__((warn_unused_result))
#else
#define DER_MUST_CHECK
#endif

/* ECDSA-Sig-Value DER -> r||s (each left-padded to 32 bytes). raw is cleared first. */
enum der_status der_ecdsa_sig_to_raw(const uint8_t *der, size_t der_len,
                                     uint8_t raw[CRYPTO_P256_SIG_LEN]) DER_MUST_CHECK;
/* r||s -> ECDSA-Sig-Value DER (8..72 bytes) into out[cap]; *out_len set on success. */
enum der_status der_ecdsa_sig_from_raw(const uint8_t raw[CRYPTO_P256_SIG_LEN], uint8_t *out,
                                       size_t cap, size_t *out_len) DER_MUST_CHECK;
/* P-256 SubjectPublicKeyInfo DER -> 65-byte point. pub is cleared first. */
enum der_status der_p256_spki_parse(const uint8_t *der, size_t der_len,
                                    uint8_t pub[CRYPTO_P256_PUB_LEN]) DER_MUST_CHECK;
/* 65-byte point -> 91-byte SubjectPublicKeyInfo DER. */
enum der_status der_p256_spki_encode(const uint8_t pub[CRYPTO_P256_PUB_LEN],
                                     uint8_t out[DER_P256_SPKI_LEN]) DER_MUST_CHECK;
/* A short English description of a status (never NULL). */
const char *der_status_str(enum der_status st);

#endif
