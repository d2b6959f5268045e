/* Mbed TLS 2.28 configuration for the fleetgw Cortex-M firmware (MBEDTLS_CONFIG_FILE).
 * Bootloader: SHA-256 + ECDSA P-256 verify. Agent: IAK (ECDSA P-256 sign with HMAC_DRBG),
 * and a TLS 1.2 client with ECDHE-ECDSA-AES128-GCM-SHA256 and X.509. No heap: the memory
 * buffer allocator works in a static arena; no OS entropy: the DRBG is seeded by the port. */
#ifndef FLEETGW_MBEDTLS_CONFIG_H
#define FLEETGW_MBEDTLS_CONFIG_H

/* Platform */
#define MBEDTLS_PLATFORM_C
#define MBEDTLS_PLATFORM_MEMORY
#define MBEDTLS_MEMORY_BUFFER_ALLOC_C
#define MBEDTLS_NO_PLATFORM_ENTROPY
/* No libc heap and no exit(): calloc fails until the arena is set up, exit halts. */
#define MBEDTLS_PLATFORM_STD_CALLOC fleetgw_mbedtls_calloc_none
#define MBEDTLS_PLATFORM_STD_FREE   fleetgw_mbedtls_free_none
#define MBEDTLS_PLATFORM_EXIT_ALT
#define MBEDTLS_PLATFORM_STD_EXIT fleetgw_mbedtls_exit
#include <stddef.h>
void *fleetgw_mbedtls_calloc_none(size_t n, size_t size);
void fleetgw_mbedtls_free_none(void *p);
void fleetgw_mbedtls_exit(int status);
#define MBEDTLS_HAVE_ASM
#define MBEDTLS_DEPRECATED_REMOVED

/* Hash, big numbers, curves */
#define MBEDTLS_SHA256_C
#define MBEDTLS_SHA256_SMALLER
#define MBEDTLS_MD_C
#define MBEDTLS_BIGNUM_C
#define MBEDTLS_ECP_C
#define MBEDTLS_ECP_DP_SECP256R1_ENABLED
#define MBEDTLS_ECP_NIST_OPTIM
#define MBEDTLS_ECP_WINDOW_SIZE       2
#define MBEDTLS_ECP_FIXED_POINT_OPTIM 0
#define MBEDTLS_ECDSA_C
#define MBEDTLS_ECDSA_DETERMINISTIC
#define MBEDTLS_ECDH_C
#define MBEDTLS_HMAC_DRBG_C

/* ASN.1, keys, certificates */
#define MBEDTLS_ASN1_PARSE_C
#define MBEDTLS_ASN1_WRITE_C
#define MBEDTLS_OID_C
#define MBEDTLS_PK_C
#define MBEDTLS_PK_PARSE_C
#define MBEDTLS_PK_WRITE_C
#define MBEDTLS_X509_USE_C
#define MBEDTLS_X509_CRT_PARSE_C

/* TLS 1.2 client, one suite */
#define MBEDTLS_AES_C
#define MBEDTLS_AES_ROM_TABLES
#define MBEDTLS_GCM_C
#define MBEDTLS_CIPHER_C
#define MBEDTLS_SSL_TLS_C
#define MBEDTLS_SSL_CLI_C
#define MBEDTLS_SSL_PROTO_TLS1_2
#define MBEDTLS_KEY_EXCHANGE_ECDHE_ECDSA_ENABLED
#define MBEDTLS_SSL_SERVER_NAME_INDICATION
#define MBEDTLS_SSL_CIPHERSUITES    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
#define MBEDTLS_SSL_IN_CONTENT_LEN  4096
#define MBEDTLS_SSL_OUT_CONTENT_LEN 2048

#include "mbedtls/check_config.h"

#endif
