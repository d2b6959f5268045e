/* PSA attestation tokens: claims in a CBOR map, carried as the payload of a tagged COSE_Sign1
 * (RFC 9052, tag 18) signed with ES256, or of a tagged COSE_Mac0 (tag 17) with HMAC 256/256
 * (alg 5) for devices whose Initial Attestation Key is symmetric. Encoding, decoding and
 * verification over caller buffers; no allocation; the signature or MAC is checked before any
 * claim is parsed.
 *
 * Three profiles, as Veraison's psatoken and the profile documents define them, each with its
 * own claim-key table mapping onto the one struct token_claims (enum token_profile records
 * which one a token used):
 *   RFC 9783    "tag:psacertified.org,2023:psa#tfm"   (PSA attestation API 2.0)
 *   PSA 2.0.0   "http://arm.com/psa/2.0.0"            (TF-M 1.x, draft-tschofenig-rats-psa-token)
 *   PSA IoT 1   "PSA_IOT_PROFILE_1"                   (TF-M 1.x, the original PSA token)
 *
 * claim                      RFC 9783   PSA 2.0.0   IoT 1    type / rule
 *   profile                  265 req    265 req     -75000 opt  tstr, the profile's identifier
 *   nonce                    10 req     10 req      -75008 req  bstr .size (32 / 48 / 64)
 *   instance id (UEID)       256 req    256 req     -75009 req  bstr .size 33, first byte 0x01
 *   client id                2394 req   2394 req    -75001 req  int in [-2^31, 2^31-1]
 *   security lifecycle       2395 req   2395 req    -75002 req  uint in 0xX000..0xX0ff, X 0..6
 *   implementation id        2396 req   2396 req    -75003 req  bstr .size 32
 *   boot seed                268 opt    2397 opt    -75004 req  bstr, 8..32 (IoT 1: exactly 32)
 *   certification reference  2398 opt   2398 opt    -75005 opt  tstr, see below
 *   software components      2399 req   2399 req    -75006 (*)  [+ component], at most 8
 *   no software measurements  -          -          -75007 (*)  uint
 *   verification service     2400 opt   2400 opt    -75010 opt  tstr, 1..TOKEN_MAX_TEXT
 * (*) IoT 1: exactly one of software components (non-empty) and no-software-measurements.
 * The profile claim decides the table: 265 with a known identifier, or -75000 with
 * "PSA_IOT_PROFILE_1", or, with neither, any of the keys -75001..-75010 (IoT 1 makes the
 * profile claim optional, and Veraison reads such a token as IoT 1). Both 265 and -75000 in
 * one token is refused (TOKEN_ERR_PROFILE_CONFLICT).
 * Certification reference ("hardware version" in IoT 1): RFC 9783 13 digits [ "-"/"_" 5 digits ];
 * PSA 2.0.0 13 digits "-" 5 digits (EAN-13+5, the only form Veraison's P2 accepts); IoT 1
 * 13 digits or 13 digits "-" 5 digits (EAN-13 or EAN-13+5).
 * The security lifecycle encoding, the nonce sizes and the measurement description (optional
 * text; TF-M writes "SHA256", RFC 9783 suggests the IANA hash name "sha-256") are the same
 * in all three profiles, as in Veraison.
 * Component map: 1 measurement type (tstr, opt), 2 measurement value (hash, req),
 *   4 version (tstr, opt), 5 signer id (hash, req), 6 measurement description (tstr, opt).
 * Other claim keys (including another profile's keys) are skipped after a well-formedness
 * check (EAT allows extra claims); duplicate claims are rejected. See docs/protocol.md for the
 * byte layout. */
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

#define TOKEN_PROFILE_2023  "tag:psacertified.org,2023:psa#tfm"
#define TOKEN_PROFILE_2_0_0 "http://arm.com/psa/2.0.0"
#define TOKEN_PROFILE_IOT_1 "PSA_IOT_PROFILE_1"

/* Which profile a token follows (its claim-key table and rules). 0 is RFC 9783, so a struct
 * cleared with memset and given TOKEN_PROFILE_2023 keeps meaning what it always did. */
enum token_profile {
    TOKEN_PROFILE_RFC9783 = 0, /* "tag:psacertified.org,2023:psa#tfm" */
    TOKEN_PROFILE_PSA_2_0_0,   /* "http://arm.com/psa/2.0.0" */
    TOKEN_PROFILE_PSA_IOT_1,   /* "PSA_IOT_PROFILE_1" */
    TOKEN_PROFILE__COUNT
};

/* The profile's identifier (the profile claim's value), or "unknown". */
const char *token_profile_str(enum token_profile p);
/* The profile whose identifier is s; TOKEN_PROFILE__COUNT when none is. */
enum token_profile token_profile_from_str(const char *s);

/* The COSE envelope a token came in. */
enum token_envelope {
    TOKEN_ENVELOPE_SIGN1 = 0, /* COSE_Sign1, tag 18, ES256 (-7) */
    TOKEN_ENVELOPE_MAC0,      /* COSE_Mac0, tag 17, HMAC 256/256 (5) */
    TOKEN_ENVELOPE__COUNT
};

/* "COSE_Sign1" / "COSE_Mac0", or "unknown". */
const char *token_envelope_str(enum token_envelope e);

/* Maxima, all hard:
 * - 8 software components: a TF-M/MCUboot node reports BL2, the secure image, the
 *   non-secure image and at most a few partitions; 8 covers that with room and keeps
 *   struct token_claims around 2 KB, acceptable on the MCU stack of the verifier's caller
 *   (the node only encodes; decoding runs on the gateway).
 * - 64-byte hashes: the largest psa-hash-type (SHA-512).
 * - 64-byte texts: measurement type/version/description, certification reference (at most
 *   25 chars) and verification service URLs in practice are short; longer is refused.
 * - 2048-byte tokens: 8 components with 64-byte hashes and 64-byte texts come to about 2 KB
 *   worst case; a TF-M token with 3-4 components is 400-600 bytes.
 * - HMAC keys (COSE_Mac0): CRYPTO_HMAC_KEY_MIN..CRYPTO_HMAC_KEY_MAX (32..64) bytes; the MAC
 *   is the full 32-byte HMAC-SHA256 (HMAC 256/256, no truncated variants). */
#define TOKEN_MAX_SW_COMPONENTS 8u
#define TOKEN_MAX_HASH          64u
#define TOKEN_MAX_TEXT          64u
#define TOKEN_MAX_LEN           2048u
#define TOKEN_MAX_CLAIMS        32u /* map pairs, including unknown claims */
#define TOKEN_INSTANCE_ID_LEN   33u
#define TOKEN_IMPL_ID_LEN       32u
#define TOKEN_BOOT_SEED_MIN     8u
#define TOKEN_BOOT_SEED_MAX     32u
#define TOKEN_MAC_LEN           CRYPTO_HMAC_SHA256_LEN

/* Claim keys of the RFC 9783 profile (the other tables are in token.c; see the list above) */
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
    TOKEN_ERR_ARG,                   /* NULL pointer or impossible argument */
    TOKEN_ERR_NOSPACE,               /* output buffer too small / token larger than the maximum */
    TOKEN_ERR_SIGNER,                /* the signing callback failed */
    TOKEN_ERR_CRYPTO,                /* hashing failed */
    TOKEN_ERR_COSE,                  /* not a tagged COSE_Sign1/Mac0 [prot, unprot, payload, sig] */
    TOKEN_ERR_ALG,                   /* alg missing or not ES256 (-7) / HMAC 256/256 (5) */
    TOKEN_ERR_SIGNATURE,             /* signature does not verify with the given key */
    TOKEN_ERR_CLAIMS,                /* payload is not a well-formed claims map */
    TOKEN_ERR_CLAIM_TYPE,            /* a known claim has the wrong CBOR type */
    TOKEN_ERR_CLAIM_DUPLICATE,       /* a claim appears twice */
    TOKEN_ERR_PROFILE_MISSING,       /* no profile claim where the profile requires one */
    TOKEN_ERR_PROFILE_UNKNOWN,       /* profile is none of the three (or not its key's) */
    TOKEN_ERR_NONCE_MISSING,         /* no nonce claim (10) */
    TOKEN_ERR_NONCE_SIZE,            /* nonce not 32, 48 or 64 bytes */
    TOKEN_ERR_NONCE_MISMATCH,        /* nonce differs from the expected one */
    TOKEN_ERR_INSTANCE_MISSING,      /* no instance id claim (256) */
    TOKEN_ERR_INSTANCE_BAD,          /* instance id not 0x01 followed by 32 bytes */
    TOKEN_ERR_IMPL_MISSING,          /* no implementation id claim (2396) */
    TOKEN_ERR_IMPL_SIZE,             /* implementation id not 32 bytes */
    TOKEN_ERR_BOOT_SEED_SIZE,        /* boot seed not 8..32 bytes (IoT 1: not 32) */
    TOKEN_ERR_CLIENT_MISSING,        /* no client id claim (2394) */
    TOKEN_ERR_CLIENT_RANGE,          /* client id outside int32 */
    TOKEN_ERR_LIFECYCLE_MISSING,     /* no security lifecycle claim (2395) */
    TOKEN_ERR_LIFECYCLE_BAD,         /* lifecycle not in a defined range */
    TOKEN_ERR_SWCOMP_MISSING,        /* no software components claim (2399) */
    TOKEN_ERR_SWCOMP_EMPTY,          /* software components array is empty */
    TOKEN_ERR_SWCOMP_TOO_MANY,       /* more than TOKEN_MAX_SW_COMPONENTS */
    TOKEN_ERR_SWCOMP_BAD,            /* component is not a map / has a wrong-typed field / dup */
    TOKEN_ERR_SWCOMP_NO_MEASUREMENT, /* component without measurement value (2) */
    TOKEN_ERR_SWCOMP_MEASUREMENT_SIZE, /* measurement value not 32, 48 or 64 bytes */
    TOKEN_ERR_SWCOMP_NO_SIGNER,        /* component without signer id (5) */
    TOKEN_ERR_SWCOMP_SIGNER_SIZE,      /* signer id not 32, 48 or 64 bytes */
    TOKEN_ERR_TEXT_TOO_LONG,           /* a text claim or field longer than TOKEN_MAX_TEXT */
    TOKEN_ERR_CERT_REF_BAD,            /* certification reference not 13 digits [-_ 5 digits] */
    TOKEN_ERR_VERIF_SERVICE_BAD,       /* verification service indicator empty */
    TOKEN_ERR_PROFILE_CONFLICT,        /* profile claims under two profiles' keys (265, -75000) */
    TOKEN_ERR_BOOT_SEED_MISSING,       /* no boot seed where the profile requires one (IoT 1) */
    TOKEN_ERR_SWCOMP_CONFLICT,         /* software components and no-sw-measurements both there */
    TOKEN_ERR_ENVELOPE,                /* COSE_Mac0 given to the Sign1 verifier or the reverse */
    TOKEN_ERR_MAC,                     /* COSE_Mac0 tag does not verify with the given key */
    TOKEN_ERR_KEY_SIZE,                /* HMAC key not CRYPTO_HMAC_KEY_MIN..MAX bytes */
    TOKEN_ERR_NO_MEASUREMENTS,         /* verify: IoT 1 token reports no software measurements */
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
#define TOKEN_HAS_NO_SW_MEAS    0x400u /* IoT 1 only */

struct token_claims {
    unsigned present;
    enum token_profile profile_id; /* the claim-key table and rules the token follows */
    enum token_envelope envelope;  /* set by decode/verify; the encoder used decides it */
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
    uint32_t no_sw_measurements; /* IoT 1 "no software measurements" value */
    size_t sw_count;
    struct token_sw_component sw[TOKEN_MAX_SW_COMPONENTS];
};

/* Security lifecycle names ("secured", ...) for a value, or "invalid". */
const char *token_lifecycle_str(uint32_t lifecycle);

/* Checks the claims against the rules of c->profile_id (presence, sizes, ranges, formats), in
 * a fixed order; returns the first problem. When the profile claim is present it must be
 * c->profile_id's identifier. token_verify*() and token_decode() call it. */
enum token_err token_check_claims(const struct token_claims *c) TOKEN_MUST_CHECK;

/* Encodes the present claims under c->profile_id's keys (deterministic order: CBOR's
 * length-first canonical key order), wraps them in a COSE_Sign1 with protected header
 * {1: -7}, hashes the Sig_structure and asks sign() for the signature. c->envelope is ignored.
 * Does NOT run token_check_claims() (tests build invalid tokens with it); it only refuses
 * lengths larger than the struct fields and claims the profile has no key for. */
enum token_err token_encode(const struct token_claims *c, crypto_sign_fn sign, void *key_ctx,
                            uint8_t *out, size_t cap, size_t *out_len) TOKEN_MUST_CHECK;

/* The same claims in a COSE_Mac0 (tag 17, protected header {1: 5}) whose tag is the HMAC-SHA256
 * of the MAC_structure ["MAC0", protected, h'', payload] under key (32..64 bytes). */
enum token_err token_encode_mac0(const struct token_claims *c, const uint8_t *key, size_t key_len,
                                 uint8_t *out, size_t cap, size_t *out_len) TOKEN_MUST_CHECK;

/* Parses the COSE_Sign1 or COSE_Mac0 structure and the claims and checks them
 * (token_check_claims()), WITHOUT verifying the signature or MAC. For display and diagnostics
 * only. *out is cleared first; out->envelope and out->profile_id say what the token is. */
enum token_err token_decode(const uint8_t *tok, size_t len,
                            struct token_claims *out) TOKEN_MUST_CHECK;

/* Full verification of a COSE_Sign1 token of any of the three profiles: COSE structure, alg,
 * ES256 signature with pub (65-byte uncompressed P-256 point), claims, and, when
 * expected_nonce != NULL, a constant-time comparison with the token's nonce. *out (may be
 * NULL) receives the claims only on TOKEN_OK (out->profile_id: which profile); cleared
 * otherwise. A COSE_Mac0 token is refused with TOKEN_ERR_ENVELOPE.
 * Verified claims always hold at least one software component: a PSA_IOT_PROFILE_1 token that
 * carries "no software measurements" instead (valid for its profile, and accepted by
 * token_decode()) is refused with TOKEN_ERR_NO_MEASUREMENTS, because a verifier that
 * appraises measurements (fleetgwd's gate) has nothing to compare and must not trust it. */
enum token_err token_verify(const uint8_t *tok, size_t len, const uint8_t pub[CRYPTO_P256_PUB_LEN],
                            const uint8_t *expected_nonce, size_t expected_nonce_len,
                            struct token_claims *out) TOKEN_MUST_CHECK;

/* The same for a COSE_Mac0 token with HMAC 256/256 under a symmetric IAK of key_len
 * (CRYPTO_HMAC_KEY_MIN..MAX) bytes; the tag is compared in constant time. The key is only
 * read; the caller owns (and wipes) it. A COSE_Sign1 token is refused with TOKEN_ERR_ENVELOPE. */
enum token_err token_verify_mac0(const uint8_t *tok, size_t len, const uint8_t *key, size_t key_len,
                                 const uint8_t *expected_nonce, size_t expected_nonce_len,
                                 struct token_claims *out) TOKEN_MUST_CHECK;

#endif
