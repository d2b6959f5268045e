/* TPM2 quote blob: format, parser and verifier. OpenSSL only, no TSS: the blob comes from
 * outside (a gateway proving its state to someone else), so every byte is parsed here with
 * explicit bounds.
 *
 * Blob format (version 1, all integers big-endian like the TPM's own marshalling):
 *
 *   "FGWQ"            4 bytes magic
 *   u16 version       = 1
 *   u16 attest_len    1..QUOTE_MAX_ATTEST, then attest_len bytes: the TPMS_ATTEST exactly as
 *                     the TPM signed it (the contents of TPM2B_ATTEST)
 *   u16 sig_len       1..QUOTE_MAX_SIG, then sig_len bytes: the marshalled TPMT_SIGNATURE
 *                     (u16 sigAlg = TPM_ALG_ECDSA, u16 hashAlg, TPM2B r, TPM2B s)
 *   u16 pcr_count     0..QUOTE_MAX_PCRS, then pcr_count entries:
 *                     u16 hashAlg, u8 pcr index (< 24), u16 size (= the digest size of
 *                     hashAlg), size bytes of PCR value
 *   nothing after the last entry.
 *
 * Verification (quote_verify): the signature over the attest bytes with the AK public key,
 * TPM_GENERATED magic and TPM_ST_ATTEST_QUOTE type, extraData == the caller's nonce
 * (constant time), the PCR entries are exactly the PCRs the TPM selected, and the TPM's
 * pcrDigest equals the hash (the signature's hash algorithm) of those values in selection
 * order. */
#ifndef FLEETGW_QUOTE_H
#define FLEETGW_QUOTE_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#define QUOTE_MAGIC          "FGWQ"
#define QUOTE_VERSION        1
#define QUOTE_MAX_ATTEST     1024
#define QUOTE_MAX_SIG        256
#define QUOTE_MAX_PCRS       64 /* entries in one blob (e.g. 24 sha256 + 24 sha1) */
#define QUOTE_MAX_BANKS      8
#define QUOTE_MAX_DIGEST     64
#define QUOTE_MAX_NONCE      64 /* sizeof(TPMU_HA) */
#define QUOTE_MAX_NAME       68 /* sizeof(TPMU_NAME) */
#define QUOTE_MAX_ECC_PARAM  66
#define QUOTE_PCR_COUNT      24
#define QUOTE_PCR_SELECT_MAX 4
#define QUOTE_MAX_BLOB                                                                             \
    (8 + QUOTE_MAX_ATTEST + 2 + QUOTE_MAX_SIG + 2 + QUOTE_MAX_PCRS * (5 + QUOTE_MAX_DIGEST))

#define QUOTE_TPM_GENERATED   0xff544347u
#define QUOTE_ST_ATTEST_QUOTE 0x8018u
#define QUOTE_ALG_ECDSA       0x0018u
#define QUOTE_ALG_SHA1        0x0004u
#define QUOTE_ALG_SHA256      0x000Bu
#define QUOTE_ALG_SHA384      0x000Cu
#define QUOTE_ALG_SHA512      0x000Du

enum quote_result {
    QUOTE_OK = 0,
    QUOTE_ERR_FORMAT,      /* blob or TPMS_ATTEST malformed (length, bound, trailing bytes) */
    QUOTE_ERR_MAGIC,       /* TPMS_ATTEST.magic is not TPM_GENERATED_VALUE */
    QUOTE_ERR_TYPE,        /* TPMS_ATTEST.type is not TPM_ST_ATTEST_QUOTE */
    QUOTE_ERR_UNSUPPORTED, /* signature or hash algorithm this verifier does not accept */
    QUOTE_ERR_SIGNATURE,   /* the AK's signature over the attest bytes does not verify */
    QUOTE_ERR_NONCE,       /* extraData differs from the expected nonce */
    QUOTE_ERR_PCR_SET,     /* the PCR values are not exactly the PCRs the TPM quoted */
    QUOTE_ERR_PCR_DIGEST,  /* the PCR values do not hash to the quoted pcrDigest */
    QUOTE_ERR_ARG,         /* bad call (NULL, buffer too small, too many entries) */
};

struct quote_pcr {
    uint16_t alg;
    uint8_t index;
    uint8_t size;
    uint8_t value[QUOTE_MAX_DIGEST];
};

struct quote_pcr_bank {
    uint16_t alg;
    uint8_t size_of_select;
    uint8_t select[QUOTE_PCR_SELECT_MAX];
};

/* A parsed TPMS_ATTEST of type quote. Pointers point into the caller's buffer. */
struct quote_attest {
    uint32_t magic;
    uint16_t type;
    const uint8_t *signer_name;
    size_t signer_name_len;
    const uint8_t *extra_data;
    size_t extra_data_len;
    uint64_t clock;
    uint32_t reset_count;
    uint32_t restart_count;
    uint8_t safe;
    uint64_t firmware_version;
    size_t nbanks;
    struct quote_pcr_bank banks[QUOTE_MAX_BANKS];
    const uint8_t *pcr_digest;
    size_t pcr_digest_len;
};

/* A parsed blob. Pointers point into the caller's buffer. */
struct quote_blob {
    const uint8_t *attest;
    size_t attest_len;
    uint16_t sig_alg;
    uint16_t sig_hash;
    const uint8_t *sig_r;
    size_t sig_r_len;
    const uint8_t *sig_s;
    size_t sig_s_len;
    size_t npcrs;
    struct quote_pcr pcrs[QUOTE_MAX_PCRS];
};

/* Digest size of a TPM hash algorithm, 0 when unknown. */
size_t quote_hash_size(uint16_t alg);

/* Parses a TPMS_ATTEST of type quote (magic and type are returned, not judged: the
 * verifier reports them with their own result). */
enum quote_result quote_attest_parse(const uint8_t *p, size_t len, struct quote_attest *out)
    __attribute__((warn_unused_result));

enum quote_result quote_blob_parse(const uint8_t *p, size_t len, struct quote_blob *out)
    __attribute__((warn_unused_result));

/* Writes a blob from its parts (sig is the marshalled TPMT_SIGNATURE). */
enum quote_result quote_blob_encode(const uint8_t *attest, size_t attest_len, const uint8_t *sig,
                                    size_t sig_len, const struct quote_pcr *pcrs, size_t npcrs,
                                    uint8_t *out, size_t cap, size_t *ret_len)
    __attribute__((warn_unused_result));

/* Full verification (see the top of this file). info, if not NULL, receives the parsed
 * attest on QUOTE_OK. */
enum quote_result quote_verify(const uint8_t *blob, size_t len, EVP_PKEY *ak, const uint8_t *nonce,
                               size_t nonce_len, struct quote_attest *info)
    __attribute__((warn_unused_result));

const char *quote_result_str(enum quote_result r);

/* "sha256" etc. <-> TPM algorithm id; 0 / NULL when unknown. */
uint16_t quote_hash_from_name(const char *name);
const char *quote_hash_name(uint16_t alg);

#endif
