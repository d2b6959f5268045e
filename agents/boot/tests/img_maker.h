/* Test-side MCUboot image signer (OpenSSL), independent of the verifier under test: header
 * 0x200, protected SEC_CNT TLV, then SHA256, KEYHASH and ECDSA_SIG TLVs, as imgtool does. */
#ifndef IMG_MAKER_H
#define IMG_MAKER_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

EVP_PKEY *img_key_new(void);
/* DER SubjectPublicKeyInfo of key into spki[91]; 0 on success. */
int img_key_spki(EVP_PKEY *key, uint8_t spki[91]);
/* Builds a signed image; returns its length, or 0 on failure. sign=0 leaves out KEYHASH and
 * signature (an unsigned image). */
size_t img_make(EVP_PKEY *key, const uint8_t *body, size_t body_len, uint8_t major, uint8_t minor,
                uint16_t rev, uint32_t sec_cnt, int sign, uint8_t *out, size_t cap);

#endif
