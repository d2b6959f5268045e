/* Attestation verifier and policy. A node proves what it runs with a PSA attestation token
 * (proto/token.h) sent in an attest-evidence message (proto/msg.h) in answer to a one-time
 * nonce. attest_evaluate() turns the evidence into a verdict with a reason:
 *   1. the message decodes as attest-evidence;
 *   2. a challenge is outstanding for the node (else: replayed or unsolicited);
 *   3. token_verify(): COSE_Sign1 ES256 signature (any of the three PSA profiles)
 *      (attest_evaluate_mac0: token_verify_mac0(), COSE_Mac0 HMAC-SHA256 with the node's
 *      symmetric IAK) with the ENROLLED
 * key, claims, nonce (constant-time) equal to the outstanding challenge;
 *   4. the token's profile (RFC 9783, PSA 2.0.0, PSA_IOT_PROFILE_1) is one the policy
 *      allows (attest_policy_set_profiles; all three by default);
 *   5. instance id = 0x01 || SHA-256(65-byte enrolled point) (symmetric IAK:
 *      0x01 || SHA-256(SHA-256(key)));
 *   6. security lifecycle in the policy's allowed list;
 *   7. every software component's (measurement value, signer id) is a reference value.
 * The reference file (JSON, attestation.reference_file) is the policy:
 *   {"lifecycles": ["secured"],
 *    "reference_values": [{"measurement": "<hex>", "signer_id": "<hex>",
 *                          "version": "1.2.0", "description": "app"}]} */
#ifndef FLEETGWD_ATTEST_H
#define FLEETGWD_ATTEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gate.h" /* enum gate_reason */

#define ATTEST_NONCE_LEN 32
#define ATTEST_REFS_MAX  1024

struct attest_policy;

struct attest_result {
    bool trusted;
    enum gate_reason code; /* the REASON= token of the verdict */
    char reason[160];
    char fw_version[65]; /* version of the first component's reference value, or "" */
    /* The first software component's measurement value and signer id, as the token states
     * them, whenever the token verified (signature or MAC, and nonce): also when the verdict
     * is untrusted for an instance id, lifecycle or measurement reason. false when the token
     * did not verify or the first component's values are not 32 bytes (SHA-256) each. */
    bool has_measurement;
    uint8_t measurement[32];
    uint8_t signer_id[32];
    /* The token's profile identifier (token_profile_str) whenever the token verified, also
     * when the profile is not allowed; "" otherwise. */
    char profile[65];
};

/* A reference value accepted for one call only, besides the policy's (a node in an OTA
 * campaign's test mode runs an image that is not in the policy yet). version: "" or the
 * image's version, NUL-terminated. */
struct attest_ref_value {
    uint8_t measurement[32];
    uint8_t signer_id[32];
    char version[65];
};

int attest_policy_load(const char *path, struct attest_policy **ret, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* Same, from text (for tests and fuzzing). */
int attest_policy_parse(const char *text, size_t len, struct attest_policy **ret, char *err,
                        size_t errlen) __attribute__((warn_unused_result));
#define ATTEST_KEYS_MAX_TEXT (64 * 1024)

struct image_key;

/* The P-256 public keys of a PEM text (attestation.signer_keys): every "-----BEGIN" block
 * must be a "PUBLIC KEY" of curve P-256, 1..cap of them, the text at most 64 KiB with no NUL.
 * Points go to keys[0..*ret_n) uncompressed. 0, or -EINVAL/-EFBIG/-ENOMEM with err saying
 * why (*ret_n is then 0). */
int attest_signer_keys_parse(const char *text, size_t len, struct image_key *keys, size_t cap,
                             size_t *ret_n, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Reports one image of attestation.image_dir: accepted (detail = its version) or left out
 * (detail = why). */
typedef void (*attest_image_report_fn)(void *ctx, const char *file, bool accepted,
                                       const char *detail);

/* The configured policy: the reference file's (reference_file not empty; else lifecycle
 * "secured" and no reference values), plus one reference value for every image in
 * image_dir (not empty; the OTA store) that verifies as an MCUboot image signed by a key of
 * signer_keys (a PEM file of 1..16 P-256 public keys): measurement = the image hash, signer
 * id = SHA-256 of the signer's SubjectPublicKeyInfo (what MCUboot's measured boot reports),
 * version = the image header's. Files are taken in name order, dot files skipped. An image
 * that does not verify is left out and reported; an unreadable directory or key file, a key
 * that is not P-256, or more than ATTEST_REFS_MAX values in all fail the whole call (err
 * names the file and the reason), so a caller keeps its previous policy. report may be NULL. */
int attest_policy_build(const char *reference_file, const char *image_dir, const char *signer_keys,
                        attest_image_report_fn report, void *ctx, struct attest_policy **ret,
                        char *err, size_t errlen) __attribute__((warn_unused_result));
void attest_policy_free(struct attest_policy *p);
/* Appends src's reference values to *dst (its lifecycles and profiles stay): the images a
 * completed OTA campaign released join the policy this way. 0, -E2BIG (more than
 * ATTEST_REFS_MAX in all) or -ENOMEM, *dst unchanged on failure. */
int attest_policy_add(struct attest_policy **dst, const struct attest_policy *src, char *err,
                      size_t errlen) __attribute__((warn_unused_result));
size_t attest_policy_count(const struct attest_policy *p);
/* The token profiles the policy accepts: bit (1u << enum token_profile) per profile
 * (config's attestation.profiles). 0, or -EINVAL for an empty mask or an unknown bit. */
int attest_policy_set_profiles(struct attest_policy *p, unsigned mask)
    __attribute__((warn_unused_result));

/* nonce NULL: no challenge outstanding. Never fails: the result says why not trusted. */
void attest_evaluate(const struct attest_policy *p, const uint8_t *msg, size_t len,
                     const uint8_t pub[65], const uint8_t *nonce, size_t nonce_len,
                     struct attest_result *res);
/* The same, where a software component also matches when its (measurement value, signer id)
 * is one of extra[0..n_extra) (32-byte values; extra may be NULL when n_extra is 0). The
 * policy's reference value wins when both match (its version is the one reported); an extra
 * one's version, when not "", is reported as fw_version. attest_evaluate() is this with no
 * extra. */
void attest_evaluate_extra(const struct attest_policy *p, const struct attest_ref_value *extra,
                           size_t n_extra, const uint8_t *msg, size_t len, const uint8_t pub[65],
                           const uint8_t *nonce, size_t nonce_len, struct attest_result *res);

/* The same for a node enrolled with a symmetric IAK: the token must be a COSE_Mac0 whose
 * HMAC-SHA256 tag verifies with key (key_len CRYPTO_HMAC_KEY_MIN..MAX bytes, compared in
 * constant time by proto), and its instance id 0x01 || SHA-256(SHA-256(key)) (ident.h). A
 * COSE_Sign1 token is bad_token, a wrong tag bad_signature. The key is only read; the caller
 * wipes it. */
void attest_evaluate_mac0(const struct attest_policy *p, const struct attest_ref_value *extra,
                          size_t n_extra, const uint8_t *msg, size_t len, const uint8_t *key,
                          size_t key_len, const uint8_t *nonce, size_t nonce_len,
                          struct attest_result *res);

/* The nonce claim of an attest-evidence message, read WITHOUT verifying the signature (to
 * tell which challenge it claims to answer). true with the nonce in nonce[0..*ret_len)
 * (cap bytes at most); false if the message, the token or its claims do not decode. */
bool attest_evidence_nonce(const uint8_t *msg, size_t len, uint8_t *nonce, size_t cap,
                           size_t *ret_len);

/* Encodes an attest-challenge (nonce, ttl) into out. 0 or -ENOBUFS/-EINVAL. */
int attest_challenge_encode(const uint8_t nonce[ATTEST_NONCE_LEN], uint32_t ttl_s, uint8_t *out,
                            size_t cap, size_t *ret_len) __attribute__((warn_unused_result));

#endif
