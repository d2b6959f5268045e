/* PSA token profiles and COSE_Mac0 (issue 20): tokens of each profile (RFC 9783, PSA 2.0.0,
 * PSA_IOT_PROFILE_1), made here in a COSE_Sign1 with a P-256 key and in a COSE_Mac0 with an
 * HMAC key, both generated at test time, verify and decode to the claims they were made from
 * with the profile recorded; each profile's keys are the ones its table names; a flipped byte,
 * a wrong key, the wrong envelope, each missing required claim and a wrong-size nonce of each
 * profile, and each profile's own boot-seed and certification-reference rules are refused
 * with their own reasons. The two signed TF-M field tokens of ../shared/vectors/psa/tfm-field/
 * verify with its public.pem and decode to the claims its README lists (a visible skip, exit
 * 77, when the vectors folder is absent). */
#include "check.h"
#include "check_crypto.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "fleetgw/cbor.h"
#include "fleetgw/crypto.h"
#include "fleetgw/token.h"

static const enum token_profile all_profiles[] = {TOKEN_PROFILE_RFC9783, TOKEN_PROFILE_PSA_2_0_0,
                                                  TOKEN_PROFILE_PSA_IOT_1};
#define N_PROFILES (sizeof(all_profiles) / sizeof(all_profiles[0]))

static uint8_t tok[TOKEN_MAX_LEN];
static uint8_t hmac_key[32], other_hmac_key[32];
static EVP_PKEY *key, *other;
static uint8_t pub[65], other_pub[65];

/* Claim keys of each profile, written out here independently of token.c's tables (token.h,
 * Veraison psatoken claims_p1.go / claims_p2.go, RFC 9783). Order: nonce, instance id,
 * profile, boot seed, client id, lifecycle, implementation id, certification reference,
 * software components, verification service. */
static const int64_t want_keys[3][10] = {
    {10, 256, 265, 268, 2394, 2395, 2396, 2398, 2399, 2400},
    {10, 256, 265, 2397, 2394, 2395, 2396, 2398, 2399, 2400},
    {-75008, -75009, -75000, -75004, -75001, -75002, -75003, -75005, -75006, -75010},
};

static void valid_claims(struct token_claims *c, enum token_profile p)
{
    memset(c, 0, sizeof(*c));
    c->profile_id = p;
    c->present = TOKEN_HAS_NONCE | TOKEN_HAS_INSTANCE_ID | TOKEN_HAS_PROFILE | TOKEN_HAS_BOOT_SEED |
                 TOKEN_HAS_CLIENT_ID | TOKEN_HAS_LIFECYCLE | TOKEN_HAS_IMPL_ID |
                 TOKEN_HAS_SW_COMPS | TOKEN_HAS_CERT_REF | TOKEN_HAS_VERIF_SERVICE;
    memset(c->nonce, 0x5a, 64);
    c->nonce_len = 64;
    c->instance_id[0] = 0x01;
    memset(c->instance_id + 1, 0x11, 32);
    c->instance_id_len = 33;
    strcpy(c->profile, token_profile_str(p));
    memset(c->boot_seed, 0x22, 32);
    c->boot_seed_len = 32;
    c->client_id = 3002;
    c->lifecycle = 0x3001;
    memset(c->impl_id, 0x33, 32);
    c->impl_id_len = 32;
    strcpy(c->cert_ref, "0604565272829-10010");
    strcpy(c->verif_service, "www.trustedfirmware.org");
    c->sw_count = 2;
    for (size_t i = 0; i < 2; i++) {
        struct token_sw_component *s = &c->sw[i];
        s->present = TOKEN_SWC_MEAS_TYPE | TOKEN_SWC_MEAS_VALUE | TOKEN_SWC_VERSION |
                     TOKEN_SWC_SIGNER_ID | TOKEN_SWC_MEAS_DESC;
        memset(s->meas_value, (int)(0x40 + i), 32);
        s->meas_value_len = 32;
        memset(s->signer_id, (int)(0x50 + i), 32);
        s->signer_id_len = 32;
        strcpy(s->meas_type, i == 0 ? "SPE" : "NSPE");
        strcpy(s->version, i == 0 ? "1.6.0" : "0.0.0");
        strcpy(s->meas_desc, "SHA256");
    }
}

/* Encodes c in the given envelope with the test keys. */
static enum token_err make(const struct token_claims *c, enum token_envelope env, size_t *len)
{
    if (env == TOKEN_ENVELOPE_MAC0)
        return token_encode_mac0(c, hmac_key, sizeof(hmac_key), tok, sizeof(tok), len);
    return token_encode(c, check_p256_sign, key, tok, sizeof(tok), len);
}

/* Verifies tok with the test key of the envelope (or the other key). */
static enum token_err verify(size_t len, enum token_envelope env, int wrong_key,
                             struct token_claims *got)
{
    if (env == TOKEN_ENVELOPE_MAC0)
        return token_verify_mac0(tok, len, wrong_key ? other_hmac_key : hmac_key, 32, NULL, 0, got);
    return token_verify(tok, len, wrong_key ? other_pub : pub, NULL, 0, got);
}

/* The payload of a token in tok: *off, *plen. Returns 0 or -1. */
static int payload_of(const uint8_t *t, size_t len, size_t *off, size_t *plen)
{
    struct cbor_dec d;
    uint64_t tag = 0;
    size_t n = 0, pl = 0;
    const uint8_t *p = NULL;
    cbor_dec_init(&d, t, len);
    if (cbor_get_tag(&d, &tag) != CBOR_OK || cbor_get_array(&d, &n, 4) != CBOR_OK ||
        cbor_get_bytes(&d, &p, &pl, 64) != CBOR_OK || cbor_skip(&d) != CBOR_OK ||
        cbor_get_bytes(&d, &p, &pl, TOKEN_MAX_LEN) != CBOR_OK)
        return -1;
    *off = (size_t)(p - t);
    *plen = pl;
    return 0;
}

/* The integer keys of the payload map, in order; their count or -1. */
static long payload_keys(const uint8_t *t, size_t len, int64_t *keys, size_t cap)
{
    struct cbor_dec d;
    size_t off = 0, plen = 0, pairs = 0;
    if (payload_of(t, len, &off, &plen) != 0)
        return -1;
    cbor_dec_init(&d, t + off, plen);
    if (cbor_get_map(&d, &pairs, 32) != CBOR_OK || pairs > cap)
        return -1;
    for (size_t i = 0; i < pairs; i++)
        if (cbor_get_int(&d, &keys[i]) != CBOR_OK || cbor_skip(&d) != CBOR_OK)
            return -1;
    return (long)pairs;
}

static int has_key(const int64_t *keys, long n, int64_t k)
{
    for (long i = 0; i < n; i++)
        if (keys[i] == k)
            return 1;
    return 0;
}

/* ---- generated tokens of each profile, Sign1 and Mac0 ------------------------------------ */

static void test_round_trip(void)
{
    struct token_claims c, got;
    size_t len = 0;

    for (size_t pi = 0; pi < N_PROFILES; pi++) {
        enum token_profile p = all_profiles[pi];
        for (int env = 0; env < 2; env++) {
            enum token_envelope e = (enum token_envelope)env;
            valid_claims(&c, p);
            CHECK_EQ_INT(token_check_claims(&c), TOKEN_OK);
            CHECK_EQ_INT(make(&c, e, &len), TOKEN_OK);
            CHECK_EQ_INT(verify(len, e, 0, &got), TOKEN_OK);
            CHECK_EQ_INT(got.profile_id, p);
            CHECK_EQ_INT(got.envelope, e);
            c.envelope = e;
            CHECK(memcmp(&c, &got, sizeof(c)) == 0);
            CHECK_EQ_INT(token_decode(tok, len, &got), TOKEN_OK);
            CHECK(memcmp(&c, &got, sizeof(c)) == 0);
            /* the expected nonce is compared in both envelopes */
            uint8_t n2[64];
            memcpy(n2, c.nonce, 64);
            if (e == TOKEN_ENVELOPE_MAC0) {
                CHECK_EQ_INT(token_verify_mac0(tok, len, hmac_key, 32, n2, 64, &got), TOKEN_OK);
                n2[63] ^= 1;
                CHECK_EQ_INT(token_verify_mac0(tok, len, hmac_key, 32, n2, 64, &got),
                             TOKEN_ERR_NONCE_MISMATCH);
            } else {
                CHECK_EQ_INT(token_verify(tok, len, pub, n2, 64, &got), TOKEN_OK);
                n2[63] ^= 1;
                CHECK_EQ_INT(token_verify(tok, len, pub, n2, 64, &got), TOKEN_ERR_NONCE_MISMATCH);
            }
            /* the envelope's header: tag 18 + {1: -7} or tag 17 + {1: 5} */
            CHECK(tok[0] == (e == TOKEN_ENVELOPE_MAC0 ? 0xd1 : 0xd2) && tok[1] == 0x84 &&
                  tok[2] == 0x43 && tok[3] == 0xa1 && tok[4] == 0x01 &&
                  tok[5] == (e == TOKEN_ENVELOPE_MAC0 ? 0x05 : 0x26));
            CHECK_EQ_INT(cbor_check(tok, len), CBOR_OK);

            /* the claims sit under this profile's keys, and only those */
            int64_t keys[16];
            long nk = payload_keys(tok, len, keys, 16);
            CHECK_EQ_INT(nk, 10);
            for (size_t k = 0; k < 10; k++)
                if (!has_key(keys, nk, want_keys[pi][k])) {
                    fprintf(stderr, "profile %s: key %lld missing\n", token_profile_str(p),
                            (long long)want_keys[pi][k]);
                    CHECK(0);
                }

            /* wrong key, other envelope's verifier */
            CHECK_EQ_INT(verify(len, e, 1, &got),
                         e == TOKEN_ENVELOPE_MAC0 ? TOKEN_ERR_MAC : TOKEN_ERR_SIGNATURE);
            CHECK(got.present == 0 && got.profile_id == 0);
            if (e == TOKEN_ENVELOPE_MAC0)
                CHECK_EQ_INT(token_verify(tok, len, pub, NULL, 0, &got), TOKEN_ERR_ENVELOPE);
            else
                CHECK_EQ_INT(token_verify_mac0(tok, len, hmac_key, 32, NULL, 0, &got),
                             TOKEN_ERR_ENVELOPE);

            /* every bit of payload and signature/MAC flipped: refused by the signature or MAC
             * (never a claim error: the claims are not parsed before) */
            size_t off = 0, plen = 0, rejected = 0, tried = 0, wrong_reason = 0;
            CHECK(payload_of(tok, len, &off, &plen) == 0);
            size_t tag_len = e == TOKEN_ENVELOPE_MAC0 ? 32 : 64;
            for (size_t i = off; i < len; i++) {
                if (i >= off + plen && i < len - tag_len)
                    continue; /* the tag's bstr head */
                for (unsigned b = 0; b < 8; b++) {
                    tok[i] ^= (uint8_t)(1u << b);
                    enum token_err r = verify(len, e, 0, &got);
                    tok[i] ^= (uint8_t)(1u << b);
                    tried++;
                    if (r != TOKEN_OK)
                        rejected++;
                    if (r != (e == TOKEN_ENVELOPE_MAC0 ? TOKEN_ERR_MAC : TOKEN_ERR_SIGNATURE))
                        wrong_reason++;
                }
            }
            CHECK_EQ_INT(rejected, tried);
            CHECK_EQ_INT(wrong_reason, 0);
            CHECK_EQ_INT(tried, (plen + tag_len) * 8);
            CHECK_EQ_INT(verify(len, e, 0, &got), TOKEN_OK);
        }
    }
    /* HMAC key sizes outside 32..64 bytes */
    valid_claims(&c, TOKEN_PROFILE_PSA_IOT_1);
    CHECK_EQ_INT(token_encode_mac0(&c, hmac_key, 16, tok, sizeof(tok), &len), TOKEN_ERR_KEY_SIZE);
    CHECK_EQ_INT(token_encode_mac0(&c, hmac_key, 32, tok, sizeof(tok), &len), TOKEN_OK);
    CHECK_EQ_INT(token_verify_mac0(tok, len, hmac_key, 31, NULL, 0, &got), TOKEN_ERR_KEY_SIZE);
    CHECK_EQ_INT(token_verify_mac0(tok, len, hmac_key, 65, NULL, 0, &got), TOKEN_ERR_KEY_SIZE);
    CHECK_EQ_INT(token_verify_mac0(tok, len, NULL, 32, NULL, 0, &got), TOKEN_ERR_ARG);
    /* a 64-byte key works too */
    uint8_t k64[64];
    CHECK(RAND_bytes(k64, 64) == 1);
    CHECK_EQ_INT(token_encode_mac0(&c, k64, 64, tok, sizeof(tok), &len), TOKEN_OK);
    CHECK_EQ_INT(token_verify_mac0(tok, len, k64, 64, NULL, 0, &got), TOKEN_OK);
    CHECK_EQ_INT(token_verify_mac0(tok, len, k64, 63, NULL, 0, &got), TOKEN_ERR_MAC);
}

/* ---- each profile's rules ---------------------------------------------------------------- */

struct bad_case {
    const char *name;
    unsigned drop;          /* TOKEN_HAS_* to remove */
    size_t nonce_len;       /* 0: keep */
    size_t seed_len;        /* 0: keep */
    const char *cert_ref;   /* NULL: keep */
    enum token_err want[3]; /* per profile: RFC 9783, PSA 2.0.0, IoT 1 */
};

static const struct bad_case bad_cases[] = {
    {"missing nonce",
     TOKEN_HAS_NONCE,
     0,
     0,
     NULL,
     {TOKEN_ERR_NONCE_MISSING, TOKEN_ERR_NONCE_MISSING, TOKEN_ERR_NONCE_MISSING}},
    {"missing instance id",
     TOKEN_HAS_INSTANCE_ID,
     0,
     0,
     NULL,
     {TOKEN_ERR_INSTANCE_MISSING, TOKEN_ERR_INSTANCE_MISSING, TOKEN_ERR_INSTANCE_MISSING}},
    {"missing implementation id",
     TOKEN_HAS_IMPL_ID,
     0,
     0,
     NULL,
     {TOKEN_ERR_IMPL_MISSING, TOKEN_ERR_IMPL_MISSING, TOKEN_ERR_IMPL_MISSING}},
    {"missing client id",
     TOKEN_HAS_CLIENT_ID,
     0,
     0,
     NULL,
     {TOKEN_ERR_CLIENT_MISSING, TOKEN_ERR_CLIENT_MISSING, TOKEN_ERR_CLIENT_MISSING}},
    {"missing lifecycle",
     TOKEN_HAS_LIFECYCLE,
     0,
     0,
     NULL,
     {TOKEN_ERR_LIFECYCLE_MISSING, TOKEN_ERR_LIFECYCLE_MISSING, TOKEN_ERR_LIFECYCLE_MISSING}},
    {"missing software components",
     TOKEN_HAS_SW_COMPS,
     0,
     0,
     NULL,
     {TOKEN_ERR_SWCOMP_MISSING, TOKEN_ERR_SWCOMP_MISSING, TOKEN_ERR_SWCOMP_MISSING}},
    /* the profile claim: required in RFC 9783 and 2.0.0, optional in IoT 1 */
    {"missing profile",
     TOKEN_HAS_PROFILE,
     0,
     0,
     NULL,
     {TOKEN_ERR_PROFILE_MISSING, TOKEN_ERR_PROFILE_MISSING, TOKEN_OK}},
    /* the boot seed: optional except in IoT 1 */
    {"missing boot seed",
     TOKEN_HAS_BOOT_SEED,
     0,
     0,
     NULL,
     {TOKEN_OK, TOKEN_OK, TOKEN_ERR_BOOT_SEED_MISSING}},
    {"nonce 16 bytes",
     0,
     16,
     0,
     NULL,
     {TOKEN_ERR_NONCE_SIZE, TOKEN_ERR_NONCE_SIZE, TOKEN_ERR_NONCE_SIZE}},
    {"nonce 33 bytes",
     0,
     33,
     0,
     NULL,
     {TOKEN_ERR_NONCE_SIZE, TOKEN_ERR_NONCE_SIZE, TOKEN_ERR_NONCE_SIZE}},
    {"nonce 63 bytes",
     0,
     63,
     0,
     NULL,
     {TOKEN_ERR_NONCE_SIZE, TOKEN_ERR_NONCE_SIZE, TOKEN_ERR_NONCE_SIZE}},
    {"nonce 48 bytes", 0, 48, 0, NULL, {TOKEN_OK, TOKEN_OK, TOKEN_OK}},
    {"nonce 32 bytes", 0, 32, 0, NULL, {TOKEN_OK, TOKEN_OK, TOKEN_OK}},
    {"boot seed 8 bytes", 0, 0, 8, NULL, {TOKEN_OK, TOKEN_OK, TOKEN_ERR_BOOT_SEED_SIZE}},
    {"boot seed 31 bytes", 0, 0, 31, NULL, {TOKEN_OK, TOKEN_OK, TOKEN_ERR_BOOT_SEED_SIZE}},
    {"boot seed 7 bytes",
     0,
     0,
     7,
     NULL,
     {TOKEN_ERR_BOOT_SEED_SIZE, TOKEN_ERR_BOOT_SEED_SIZE, TOKEN_ERR_BOOT_SEED_SIZE}},
    {"certification reference EAN-13",
     0,
     0,
     0,
     "0604565272829",
     {TOKEN_OK, TOKEN_ERR_CERT_REF_BAD, TOKEN_OK}},
    {"certification reference EAN-13_5",
     0,
     0,
     0,
     "0604565272829_10010",
     {TOKEN_OK, TOKEN_ERR_CERT_REF_BAD, TOKEN_ERR_CERT_REF_BAD}},
    {"certification reference 12 digits",
     0,
     0,
     0,
     "060456527282",
     {TOKEN_ERR_CERT_REF_BAD, TOKEN_ERR_CERT_REF_BAD, TOKEN_ERR_CERT_REF_BAD}},
    {"certification reference letter",
     0,
     0,
     0,
     "0604565272829-1001a",
     {TOKEN_ERR_CERT_REF_BAD, TOKEN_ERR_CERT_REF_BAD, TOKEN_ERR_CERT_REF_BAD}},
};

static void test_rules(void)
{
    struct token_claims c, got;
    size_t len = 0;

    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        const struct bad_case *b = &bad_cases[i];
        for (size_t pi = 0; pi < N_PROFILES; pi++) {
            for (int env = 0; env < 2; env++) {
                enum token_envelope e = (enum token_envelope)env;
                enum token_err r1, r2, r3;
                valid_claims(&c, all_profiles[pi]);
                c.present &= ~b->drop;
                if (b->nonce_len != 0)
                    c.nonce_len = b->nonce_len;
                if (b->seed_len != 0)
                    c.boot_seed_len = b->seed_len;
                if (b->cert_ref != NULL)
                    strcpy(c.cert_ref, b->cert_ref);
                r3 = token_check_claims(&c);
                CHECK_EQ_INT(make(&c, e, &len), TOKEN_OK);
                r1 = verify(len, e, 0, &got);
                if (r1 == TOKEN_OK)
                    CHECK_EQ_INT(got.profile_id, all_profiles[pi]);
                else
                    CHECK(got.present == 0);
                r2 = token_decode(tok, len, &got);
                if (r1 != b->want[pi] || r2 != b->want[pi] || r3 != b->want[pi])
                    fprintf(stderr, "%s, %s, %s: verify '%s', decode '%s', check '%s'; want '%s'\n",
                            b->name, token_profile_str(all_profiles[pi]), token_envelope_str(e),
                            token_err_str(r1), token_err_str(r2), token_err_str(r3),
                            token_err_str(b->want[pi]));
                CHECK_EQ_INT(r1, b->want[pi]);
                CHECK_EQ_INT(r2, b->want[pi]);
                CHECK_EQ_INT(r3, b->want[pi]);
            }
        }
    }

    /* IoT 1: "no software measurements" stands in for the components, not beside them; the
     * other profiles have no key for it */
    valid_claims(&c, TOKEN_PROFILE_PSA_IOT_1);
    c.present = (c.present & ~TOKEN_HAS_SW_COMPS) | TOKEN_HAS_NO_SW_MEAS;
    c.sw_count = 0;
    memset(c.sw, 0, sizeof(c.sw));
    c.no_sw_measurements = 1;
    CHECK_EQ_INT(token_check_claims(&c), TOKEN_OK);
    CHECK_EQ_INT(make(&c, TOKEN_ENVELOPE_SIGN1, &len), TOKEN_OK);
    CHECK_EQ_INT(token_decode(tok, len, &got), TOKEN_OK);
    CHECK(got.present & TOKEN_HAS_NO_SW_MEAS && got.no_sw_measurements == 1 && got.sw_count == 0);
    /* valid for the profile, but the verifiers refuse it: verified claims always carry
     * software components (fleetgwd's gate loops over them to appraise the node) */
    CHECK_EQ_INT(token_verify(tok, len, pub, NULL, 0, &got), TOKEN_ERR_NO_MEASUREMENTS);
    CHECK(got.present == 0);
    CHECK_EQ_INT(make(&c, TOKEN_ENVELOPE_MAC0, &len), TOKEN_OK);
    CHECK_EQ_INT(token_verify_mac0(tok, len, hmac_key, 32, NULL, 0, &got),
                 TOKEN_ERR_NO_MEASUREMENTS);
    {
        int64_t keys[16];
        long nk = payload_keys(tok, len, keys, 16);
        CHECK(has_key(keys, nk, -75007) && !has_key(keys, nk, -75006));
    }
    valid_claims(&c, TOKEN_PROFILE_PSA_IOT_1);
    c.present |= TOKEN_HAS_NO_SW_MEAS;
    CHECK_EQ_INT(make(&c, TOKEN_ENVELOPE_MAC0, &len), TOKEN_OK);
    CHECK_EQ_INT(token_verify_mac0(tok, len, hmac_key, 32, NULL, 0, &got),
                 TOKEN_ERR_SWCOMP_CONFLICT);
    valid_claims(&c, TOKEN_PROFILE_PSA_2_0_0);
    c.present |= TOKEN_HAS_NO_SW_MEAS;
    CHECK_EQ_INT(make(&c, TOKEN_ENVELOPE_SIGN1, &len), TOKEN_ERR_ARG);

    /* IoT 1 without its (optional) profile claim is still read with IoT 1's table */
    valid_claims(&c, TOKEN_PROFILE_PSA_IOT_1);
    c.present &= ~TOKEN_HAS_PROFILE;
    memset(c.profile, 0, sizeof(c.profile));
    CHECK_EQ_INT(make(&c, TOKEN_ENVELOPE_SIGN1, &len), TOKEN_OK);
    CHECK_EQ_INT(token_verify(tok, len, pub, NULL, 0, &got), TOKEN_OK);
    CHECK(got.profile_id == TOKEN_PROFILE_PSA_IOT_1 && !(got.present & TOKEN_HAS_PROFILE));

    /* a profile's identifier under another profile's key, and a profile id that does not match
     * the identifier in the struct */
    valid_claims(&c, TOKEN_PROFILE_RFC9783);
    strcpy(c.profile, TOKEN_PROFILE_IOT_1);
    CHECK_EQ_INT(make(&c, TOKEN_ENVELOPE_SIGN1, &len), TOKEN_OK);
    CHECK_EQ_INT(token_verify(tok, len, pub, NULL, 0, &got), TOKEN_ERR_PROFILE_UNKNOWN);
    valid_claims(&c, TOKEN_PROFILE_PSA_IOT_1);
    strcpy(c.profile, TOKEN_PROFILE_2_0_0);
    CHECK_EQ_INT(make(&c, TOKEN_ENVELOPE_SIGN1, &len), TOKEN_OK);
    CHECK_EQ_INT(token_verify(tok, len, pub, NULL, 0, &got), TOKEN_ERR_PROFILE_UNKNOWN);
    CHECK_EQ_INT(token_check_claims(&c), TOKEN_ERR_PROFILE_UNKNOWN);
    c.profile_id = TOKEN_PROFILE__COUNT;
    CHECK_EQ_INT(token_check_claims(&c), TOKEN_ERR_PROFILE_UNKNOWN);

    /* both profile keys in one token: which table would apply is ambiguous, refused */
    {
        uint8_t p2[1200], raw[1400];
        struct cbor_enc en;
        size_t off = 0, plen = 0, p2len = 0, n = 0;
        valid_claims(&c, TOKEN_PROFILE_PSA_2_0_0);
        CHECK_EQ_INT(make(&c, TOKEN_ENVELOPE_MAC0, &len), TOKEN_OK);
        CHECK(payload_of(tok, len, &off, &plen) == 0 && tok[off] == 0xaa); /* map of 10 */
        cbor_enc_init(&en, p2, sizeof(p2));
        cbor_put_map(&en, 11);
        cbor_put_raw(&en, tok + off + 1, plen - 1);
        cbor_put_int(&en, -75000);
        cbor_put_text(&en, TOKEN_PROFILE_IOT_1, strlen(TOKEN_PROFILE_IOT_1));
        CHECK_EQ_INT(cbor_enc_finish(&en, &p2len), CBOR_OK);
        /* MAC it by hand: ["MAC0", h'a10105', h'', payload] */
        static const uint8_t prot[] = {0xa1, 0x01, 0x05};
        uint8_t ms[1400], tag[32];
        size_t mslen = 0;
        cbor_enc_init(&en, ms, sizeof(ms));
        cbor_put_array(&en, 4);
        cbor_put_text(&en, "MAC0", 4);
        cbor_put_bytes(&en, prot, 3);
        cbor_put_bytes(&en, NULL, 0);
        cbor_put_bytes(&en, p2, p2len);
        CHECK_EQ_INT(cbor_enc_finish(&en, &mslen), CBOR_OK);
        struct crypto_buf part = {ms, mslen};
        CHECK(crypto_hmac_sha256(hmac_key, 32, &part, 1, tag) == 0);
        cbor_enc_init(&en, raw, sizeof(raw));
        cbor_put_tag(&en, 17);
        cbor_put_array(&en, 4);
        cbor_put_bytes(&en, prot, 3);
        cbor_put_map(&en, 0);
        cbor_put_bytes(&en, p2, p2len);
        cbor_put_bytes(&en, tag, 32);
        CHECK_EQ_INT(cbor_enc_finish(&en, &n), CBOR_OK);
        CHECK_EQ_INT(token_verify_mac0(raw, n, hmac_key, 32, NULL, 0, &got),
                     TOKEN_ERR_PROFILE_CONFLICT);
        /* and the same payload without the extra pair verifies (the hand-made MAC is right) */
        cbor_enc_init(&en, ms, sizeof(ms));
        cbor_put_array(&en, 4);
        cbor_put_text(&en, "MAC0", 4);
        cbor_put_bytes(&en, prot, 3);
        cbor_put_bytes(&en, NULL, 0);
        cbor_put_bytes(&en, tok + off, plen);
        CHECK_EQ_INT(cbor_enc_finish(&en, &mslen), CBOR_OK);
        part.len = mslen;
        CHECK(crypto_hmac_sha256(hmac_key, 32, &part, 1, tag) == 0);
        CHECK(memcmp(tag, tok + len - 32, 32) == 0);
    }

    /* names */
    CHECK(strcmp(token_profile_str(TOKEN_PROFILE_PSA_IOT_1), "PSA_IOT_PROFILE_1") == 0);
    CHECK(strcmp(token_profile_str(TOKEN_PROFILE_PSA_2_0_0), "http://arm.com/psa/2.0.0") == 0);
    CHECK(strcmp(token_profile_str(TOKEN_PROFILE__COUNT), "unknown") == 0);
    CHECK_EQ_INT(token_profile_from_str("http://arm.com/psa/2.0.0"), TOKEN_PROFILE_PSA_2_0_0);
    CHECK_EQ_INT(token_profile_from_str("PSA_IOT_PROFILE_2"), TOKEN_PROFILE__COUNT);
    CHECK(strcmp(token_envelope_str(TOKEN_ENVELOPE_MAC0), "COSE_Mac0") == 0);
    for (int a = 0; a < TOKEN_ERR__COUNT; a++)
        for (int b = a + 1; b < TOKEN_ERR__COUNT; b++)
            CHECK(strcmp(token_err_str((enum token_err)a), token_err_str((enum token_err)b)) != 0);
}

/* ---- the TF-M field vectors -------------------------------------------------------------- */

static int test_tfm_field(void)
{
    static const char *const names[2] = {"psa/tfm-field/psa-2_0_0_sign1.bin",
                                         "psa/tfm-field/psa-iot-1_sign1.bin"};
    static const enum token_profile want_prof[2] = {TOKEN_PROFILE_PSA_2_0_0,
                                                    TOKEN_PROFILE_PSA_IOT_1};
    char kpath[1024], tpath[1024];
    uint8_t vpub[65], buf[4096], zero[64];
    struct token_claims c[2], d;

    if (check_vector_path(kpath, sizeof(kpath), "psa/tfm-field/public.pem") == NULL)
        return -1;
    EVP_PKEY *vk = check_pem_public_key(kpath);
    CHECK(vk != NULL);
    if (vk == NULL)
        return 0;
    CHECK(check_p256_pub(vk, vpub) == 0);
    EVP_PKEY_free(vk);
    memset(zero, 0, sizeof(zero));

    for (int v = 0; v < 2; v++) {
        if (check_vector_path(tpath, sizeof(tpath), names[v]) == NULL)
            return -1;
        long n = check_read_file(tpath, buf, sizeof(buf));
        CHECK(n > 0);
        if (n <= 0)
            return 0;
        size_t len = (size_t)n;
        struct token_claims *x = &c[v];
        enum token_err r = token_verify(buf, len, vpub, NULL, 0, x);
        if (r != TOKEN_OK)
            fprintf(stderr, "%s: %s\n", names[v], token_err_str(r));
        CHECK_EQ_INT(r, TOKEN_OK);
        /* the claims of the README */
        CHECK_EQ_INT(x->profile_id, want_prof[v]);
        CHECK_EQ_INT(x->envelope, TOKEN_ENVELOPE_SIGN1);
        CHECK(strcmp(x->profile, v == 0 ? "http://arm.com/psa/2.0.0" : "PSA_IOT_PROFILE_1") == 0);
        CHECK(x->nonce_len == 64 && memcmp(x->nonce, zero, 64) == 0);
        CHECK(x->present & TOKEN_HAS_BOOT_SEED);
        CHECK_EQ_INT(x->boot_seed_len, 32);
        CHECK(strcmp(x->cert_ref, "0604565272829-10010") == 0);
        CHECK(strcmp(x->verif_service, "www.trustedfirmware.org") == 0);
        CHECK(x->sw_count >= 1);
        CHECK(strcmp(x->sw[0].meas_type, "SPE") == 0 && strcmp(x->sw[0].version, "1.6.0") == 0 &&
              strcmp(x->sw[0].meas_desc, "SHA256") == 0);
        CHECK(x->sw[0].meas_value_len == 32 && x->sw[0].signer_id_len == 32);
        CHECK(x->instance_id_len == 33 && x->instance_id[0] == 0x01 && x->impl_id_len == 32);
        CHECK(x->present & TOKEN_HAS_CLIENT_ID && x->present & TOKEN_HAS_LIFECYCLE);
        CHECK(strcmp(token_lifecycle_str(x->lifecycle), "secured") == 0);
        CHECK_EQ_INT(token_decode(buf, len, &d), TOKEN_OK);
        CHECK(memcmp(x, &d, sizeof(d)) == 0);
        CHECK_EQ_INT(token_verify(buf, len, vpub, zero, 64, &d), TOKEN_OK);
        CHECK_EQ_INT(token_verify(buf, len, vpub, zero, 32, &d), TOKEN_ERR_NONCE_MISMATCH);

        /* our table for the profile names exactly the keys TF-M wrote: re-encoding the
         * decoded claims gives the same key set */
        int64_t k_tfm[16], k_ours[16];
        long n_tfm = payload_keys(buf, len, k_tfm, 16);
        size_t olen = 0;
        CHECK_EQ_INT(token_encode(x, check_p256_sign, key, tok, sizeof(tok), &olen), TOKEN_OK);
        long n_ours = payload_keys(tok, olen, k_ours, 16);
        CHECK(n_tfm > 0 && n_tfm == n_ours);
        for (long i = 0; i < n_tfm; i++)
            CHECK(has_key(k_ours, n_ours, k_tfm[i]));
        CHECK(has_key(k_tfm, n_tfm, v == 0 ? 2397 : -75004)); /* the boot seed's key */

        /* a wrong key, the Mac0 verifier, and every bit of payload and signature flipped */
        CHECK_EQ_INT(token_verify(buf, len, pub, NULL, 0, &d), TOKEN_ERR_SIGNATURE);
        CHECK_EQ_INT(token_verify_mac0(buf, len, hmac_key, 32, NULL, 0, &d), TOKEN_ERR_ENVELOPE);
        size_t off = 0, plen = 0, rejected = 0, tried = 0;
        CHECK(payload_of(buf, len, &off, &plen) == 0);
        CHECK(off + plen + 2 + 64 == len);
        for (size_t i = off; i < len; i++) {
            if (i == off + plen || i == off + plen + 1)
                continue; /* the signature's bstr head */
            for (unsigned b = 0; b < 8; b++) {
                buf[i] ^= (uint8_t)(1u << b);
                if (token_verify(buf, len, vpub, NULL, 0, &d) == TOKEN_ERR_SIGNATURE)
                    rejected++;
                buf[i] ^= (uint8_t)(1u << b);
                tried++;
            }
        }
        CHECK_EQ_INT(rejected, tried);
        CHECK_EQ_INT(tried, (plen + 64) * 8);
    }
    /* both tokens carry the same values (only the SPE measurement differs) */
    CHECK(memcmp(c[0].nonce, c[1].nonce, 64) == 0 &&
          memcmp(c[0].instance_id, c[1].instance_id, 33) == 0 &&
          memcmp(c[0].impl_id, c[1].impl_id, 32) == 0 &&
          memcmp(c[0].boot_seed, c[1].boot_seed, 32) == 0 && c[0].client_id == c[1].client_id &&
          c[0].lifecycle == c[1].lifecycle && c[0].sw_count == c[1].sw_count);
    return 0;
}

int main(void)
{
    key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    other = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    CHECK(key != NULL && other != NULL);
    if (key == NULL || other == NULL)
        return check_finish();
    CHECK(check_p256_pub(key, pub) == 0 && check_p256_pub(other, other_pub) == 0);
    CHECK(RAND_bytes(hmac_key, 32) == 1 && RAND_bytes(other_hmac_key, 32) == 1);

    test_round_trip();
    test_rules();
    int vec = test_tfm_field();
    EVP_PKEY_free(key);
    EVP_PKEY_free(other);
    if (vec != 0) {
        int rc = check_finish();
        if (rc != 0)
            return rc;
        check_skip("vectors psa/tfm-field/{public.pem,psa-2_0_0_sign1.bin,psa-iot-1_sign1.bin} "
                   "not found under FLEETGW_VECTORS (../shared/vectors): TF-M field vector "
                   "checks skipped");
    }
    return check_finish();
}
