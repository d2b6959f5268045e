/* OpenSSL helpers for unit tests that make or check P-256 keys and signatures (library
 * fleetgw_testlib_crypto: libcrypto only, no fleetgw code, so that it is an independent
 * oracle and links next to either crypto back-end). */
#ifndef FLEETGW_CHECK_CRYPTO_H
#define FLEETGW_CHECK_CRYPTO_H

#include <stdint.h>

#include <openssl/evp.h>

/* The private key in a PEM file, or NULL when the file is missing or holds none. */
EVP_PKEY *check_pem_private_key(const char *path);
/* The public key in a PEM file (SubjectPublicKeyInfo), or NULL. */
EVP_PKEY *check_pem_public_key(const char *path);
/* The uncompressed public point 04 || X || Y of a P-256 key; 0 or -1. */
int check_p256_pub(EVP_PKEY *key, uint8_t pub[65]);
/* ECDSA P-256 signature of a SHA-256 digest as raw r || s, decoded from DER by OpenSSL;
 * key is an EVP_PKEY * (the crypto_sign_fn signature); 0 or -1. */
int check_p256_sign(void *key, const uint8_t digest[32], uint8_t raw[64]);

#endif
