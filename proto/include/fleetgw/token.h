/* PSA attestation token (RFC 9783, profile "tag:psacertified.org,2023:psa#tfm"): claims in a
 * CBOR map, carried as the payload of a tagged COSE_Sign1 (RFC 9052, tag 18) signed with
 * ES256. Encoding, decoding and verification over caller buffers; no allocation.
 *
 * Claims (key: type):
 *   10   nonce                     bstr .size (32 / 48 / 64)           required
 *   256  instance id (UEID)        bstr .size 33, first byte 0x01      required
 *   265  profile                   tstr, must be the 2023 profile      required
 *   268  boot seed (EAT bootseed)  bstr .size (8..32)                  optional
 *   2394 client id                 int in [-2^31, 2^31-1]              required
 *   2395 security lifecycle        uint in 0xX000..0xX0ff, X = 0..6    required
 *   2396 implementation id         bstr .size 32                       required
 *   2398 certification reference   tstr, 13 digits [ "-"/"_" 5 digits ] opt.
 *   2399 software components       [+ component], at most 8            required
 *   2400 verification service      tstr, 1..TOKEN_MAX_TEXT             optional
 * Component map: 1 measurement type (tstr, opt), 2 measurement value (hash, req),
 *   4 version (tstr, opt), 5 signer id (hash, req), 6 measurement description (tstr, opt).
 * Other claim keys are skipped after a well-formedness check (EAT allows extra claims);
 * duplicate claims are rejected. See docs/protocol.md for the byte layout. */
#ifndef FLEETGW_TOKEN_H
#define FLEETGW_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#include "fleetgw/crypto.h"

#if defined(__GNUC__)
#define TOKEN_MUST_CHECK __attribute__((warn_unused_result))
#else
#define TOKEN_MUST_CHECK
#endif

#define TOKEN_PROFILE_2023 "tag:psacertified.org,2023:psa#tfm"

/* Maxima, all hard:
 * - 8 software components: a TF-M/MCUboot node reports BL2, the secure image, the
 *   non-secure image and at most a few partitions; 8 covers that with room and keeps
 *   struct token_claims around 2 KB, acceptable on the MCU stack of the verifier's caller
 *   (the node only encodes; decoding runs on the gateway).
 * - 64-byte hashes: the largest psa-hash-type (SHA-512).
 * - 64-byte texts: measurement type/version/description, certification reference (at most
 *   25 chars) and verification service URLs in practice are short; longer is refused.
 * - 2048-byte tokens: 8 components with 64-byte hashes and 64-byte texts come to about 2 KB
 *   worst case; a TF-M token with 3-4 components is 400-600 bytes. */
#define TOKEN_MAX_SW_COMPONENTS 8u
#define TOKEN_MAX_HASH          64u
#define TOKEN_MAX_TEXT          64u
#define TOKEN_MAX_LEN           2048u
#define TOKEN_MAX_CLAIMS        32u /* map pairs, including unknown claims */
#define TOKEN_INSTANCE_ID_LEN   33u
#define TOKEN_IMPL_ID_LEN       32u
#define TOKEN_BOOT_SEED_MIN     8u
#define TOKEN_BOOT_SEED_MAX     32u

/* Claim keys */
#define TOKEN_KEY_NONCE         10
#define TOKEN_KEY_INSTANCE_ID   256
#define TOKEN_KEY_PROFILE       265
#define TOKEN_KEY_BOOT_SEED     268
#define TOKEN_KEY_CLIENT_ID     2394
#define TOKEN_KEY_LIFECYCLE     2395
#define TOKEN_KEY_IMPL_ID       2396
#define TOKEN_KEY_CERT_REF      2398
#define TOKEN_KEY_SW_COMPS      2399
#define TOKEN_KEY_VERIF_SERVICE 2400

enum token_err {
    TOKEN_OK = 0,
    TOKEN_ERR_ARG,                     /* NULL pointer or impossible argument */
    TOKEN_ERR_NOSPACE,                 /* output buffer too small / token larger than the maximum */
    TOKEN_ERR_SIGNER,                  /* the signing callback failed */
    TOKEN_ERR_CRYPTO,                  /* hashing failed */
    TOKEN_ERR_COSE,                    /* not a tagged COSE_Sign1 [prot, unprot, payload, sig] */
    TOKEN_ERR_ALG,                     /* protected header alg missing or not ES256 (-7) */
    TOKEN_ERR_SIGNATURE,               /* signature does not verify with the given key */
    TOKEN_ERR_CLAIMS,                  /* payload is not a well-formed claims map */
    TOKEN_ERR_CLAIM_TYPE,              /* a known claim has the wrong CBOR type */
    TOKEN_ERR_CLAIM_DUPLICATE,         /* a claim appears twice */
    TOKEN_ERR_PROFILE_MISSING,         /* no profile claim (265) */
    TOKEN_ERR_PROFILE_UNKNOWN,         /* profile is not the 2023 PSA profile */
    TOKEN_ERR_NONCE_MISSING,           /* no nonce claim (10) */
    TOKEN_ERR_NONCE_SIZE,              /* nonce not 32, 48 or 64 bytes */
    TOKEN_ERR_NONCE_MISMATCH,          /* nonce differs from the expected one */
    TOKEN_ERR_INSTANCE_MISSING,        /* no instance id claim (256) */
    TOKEN_ERR_INSTANCE_BAD,            /* instance id not 0x01 followed by 32 bytes */
    TOKEN_ERR_IMPL_MISSING,            /* no implementation id claim (2396) */
    TOKEN_ERR_IMPL_SIZE,               /* implementation id not 32 bytes */
    TOKEN_ERR_BOOT_SEED_SIZE,          /* boot seed not 8..32 bytes */
    TOKEN_ERR_CLIENT_MISSING,          /* no client id claim (2394) */
    TOKEN_ERR_CLIENT_RANGE,            /* client id outside int32 */
    TOKEN_ERR_LIFECYCLE_MISSING,       /* no security lifecycle claim (2395) */
    TOKEN_ERR_LIFECYCLE_BAD,           /* lifecycle not in a defined range */
    TOKEN_ERR_SWCOMP_MISSING,          /* no software components claim (2399) */
    TOKEN_ERR_SWCOMP_EMPTY,            /* software components array is empty */
    TOKEN_ERR_SWCOMP_TOO_MANY,         /* more than TOKEN_MAX_SW_COMPONENTS */
    TOKEN_ERR_SWCOMP_BAD,              /* component is not a map / has a wrong-typed field / dup */
    TOKEN_ERR_SWCOMP_NO_MEASUREMENT,   /* component without measurement value (2) */
    TOKEN_ERR_SWCOMP_MEASUREMENT_SIZE, /* measurement value not 32, 48 or 64 bytes */
    TOKEN_ERR_SWCOMP_NO_SIGNER,        /* component without signer id (5) */
    TOKEN_ERR_SWCOMP_SIGNER_SIZE,      /* signer id not 32, 48 or 64 bytes */
    TOKEN_ERR_TEXT_TOO_LONG,           /* a text claim or field longer than TOKEN_MAX_TEXT */
    TOKEN_ERR_CERT_REF_BAD,            /* certification reference not 13 digits [-_ 5 digits] */
    TOKEN_ERR_VERIF_SERVICE_BAD,       /* verification service indicator empty */
    TOKEN_ERR__COUNT
};

const char *token_err_str(enum token_err err);

/* Presence flags in struct token_sw_component.present */
#define TOKEN_SWC_MEAS_TYPE  0x01u
#define TOKEN_SWC_MEAS_VALUE 0x02u
#define TOKEN_SWC_VERSION    0x04u
#define TOKEN_SWC_SIGNER_ID  0x08u
#define TOKEN_SWC_MEAS_DESC  0x10u

struct token_sw_component {
    unsigned present;
    uint8_t meas_value[TOKEN_MAX_HASH];
    size_t meas_value_len;
    uint8_t signer_id[TOKEN_MAX_HASH];
    size_t signer_id_len;
    char meas_type[TOKEN_MAX_TEXT + 1]; /* NUL-terminated */
    char version[TOKEN_MAX_TEXT + 1];
    char meas_desc[TOKEN_MAX_TEXT + 1];
};

/* Presence flags in struct token_claims.present */
#define TOKEN_HAS_NONCE         0x001u
#define TOKEN_HAS_INSTANCE_ID   0x002u
#define TOKEN_HAS_PROFILE       0x004u
#define TOKEN_HAS_BOOT_SEED     0x008u
#define TOKEN_HAS_CLIENT_ID     0x010u
#define TOKEN_HAS_LIFECYCLE     0x020u
#define TOKEN_HAS_IMPL_ID       0x040u
#define TOKEN_HAS_CERT_REF      0x080u
#define TOKEN_HAS_SW_COMPS      0x100u
#define TOKEN_HAS_VERIF_SERVICE 0x200u

struct token_claims {
    unsigned present;
    uint8_t nonce[TOKEN_MAX_HASH];
    size_t nonce_len;
    uint8_t instance_id[TOKEN_INSTANCE_ID_LEN];
    size_t instance_id_len;
    char profile[TOKEN_MAX_TEXT + 1];
    uint8_t boot_seed[TOKEN_BOOT_SEED_MAX];
    size_t boot_seed_len;
    int32_t client_id;
    uint32_t lifecycle;
    uint8_t impl_id[TOKEN_IMPL_ID_LEN];
    size_t impl_id_len;
    char cert_ref[TOKEN_MAX_TEXT + 1];
    char verif_service[TOKEN_MAX_TEXT + 1];
    size_t sw_count;
    struct token_sw_component sw[TOKEN_MAX_SW_COMPONENTS];
};

/* Security lifecycle names ("secured", ...) for a value, or "invalid". */
const char *token_lifecycle_str(uint32_t lifecycle);

/* Checks the claims against the profile's rules (presence, sizes, ranges), in a fixed order;
 * returns the first problem. token_verify() and token_decode() call it. */
enum token_err token_check_claims(const struct token_claims *c) TOKEN_MUST_CHECK;

/* Encodes the present claims (deterministic order), wraps them in a COSE_Sign1 with
 * protected header {1: -7}, hashes the Sig_structure and asks sign() for the signature.
 * Does NOT run token_check_claims() (tests build invalid tokens with it); it only refuses
 * lengths larger than the struct fields. */
enum token_err token_encode(const struct token_claims *c, crypto_sign_fn sign, void *key_ctx,
                            uint8_t *out, size_t cap, size_t *out_len) TOKEN_MUST_CHECK;

/* Parses the COSE_Sign1 structure and the claims and checks them (token_check_claims()),
 * WITHOUT verifying the signature. For display and diagnostics only. *out is cleared first. */
enum token_err token_decode(const uint8_t *tok, size_t len,
                            struct token_claims *out) TOKEN_MUST_CHECK;

/* Full verification: COSE structure, alg, ES256 signature with pub (65-byte uncompressed
 * P-256 point), claims, and, when expected_nonce != NULL, a constant-time comparison with the
 * token's nonce. *out (may be NULL) receives the claims only on TOKEN_OK; cleared otherwise. */
enum token_err token_verify(const uint8_t *tok, size_t len, const uint8_t pub[CRYPTO_P256_PUB_LEN],
                            const uint8_t *expected_nonce, size_t expected_nonce_len,
                            struct token_claims *out) TOKEN_MUST_CHECK;

#endif
