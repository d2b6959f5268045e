/* PSA attestation token: the RFC 9783 vector verifies and decodes to its .diag claims; every
 * single-byte change of payload or signature is refused; each invalid-claim case, built by
 * token_encode() and signed with a key generated here, is refused with its own reason. */
#include "check.h"
#include "check_crypto.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "fleetgw/cbor.h"
#include "fleetgw/crypto.h"
#include "fleetgw/token.h"

/* ---- OpenSSL helpers (test only) ----------------------------------------------------- */

static int failing_sign(void *key_ctx, const uint8_t digest[CRYPTO_SHA256_LEN],
                        uint8_t sig_rs[CRYPTO_P256_SIG_LEN])
{
    (void)key_ctx;
    (void)digest;
    (void)sig_rs;
    return -1;
}

/* Builds a COSE_Sign1 over arbitrary protected/payload bytes, for hand-made bad tokens. */
static size_t make_raw_sign1(EVP_PKEY *key, const uint8_t *prot, size_t prot_len,
                             const uint8_t *payload, size_t payload_len, int tagged, uint8_t *out,
                             size_t cap)
{
    uint8_t sigstruct[4096], digest[32], sig[64];
    struct cbor_enc e;
    size_t n = 0;

    cbor_enc_init(&e, sigstruct, sizeof(sigstruct));
    cbor_put_array(&e, 4);
    cbor_put_text(&e, "Signature1", 10);
    cbor_put_bytes(&e, prot, prot_len);
    cbor_put_bytes(&e, NULL, 0);
    cbor_put_bytes(&e, payload, payload_len);
    if (cbor_enc_finish(&e, &n) != CBOR_OK || crypto_sha256(sigstruct, n, digest) != 0 ||
        check_p256_sign(key, digest, sig) != 0)
        return 0;
    cbor_enc_init(&e, out, cap);
    if (tagged)
        cbor_put_tag(&e, 18);
    cbor_put_array(&e, 4);
    cbor_put_bytes(&e, prot, prot_len);
    cbor_put_map(&e, 0);
    cbor_put_bytes(&e, payload, payload_len);
    cbor_put_bytes(&e, sig, sizeof(sig));
    return cbor_enc_finish(&e, &n) == CBOR_OK ? n : 0;
}

/* ---- the documented claims example (docs/protocol.md, "token-claims") ------------------ */

/* The claims of the RFC 9783 example token. */
static void rfc_example_claims(struct token_claims *c)
{
    memset(c, 0, sizeof(*c));
    c->present = TOKEN_HAS_NONCE | TOKEN_HAS_INSTANCE_ID | TOKEN_HAS_PROFILE | TOKEN_HAS_BOOT_SEED |
                 TOKEN_HAS_CLIENT_ID | TOKEN_HAS_LIFECYCLE | TOKEN_HAS_IMPL_ID | TOKEN_HAS_SW_COMPS;
    memset(c->nonce, 0x01, 32);
    c->nonce_len = 32;
    c->instance_id[0] = 0x01;
    memset(c->instance_id + 1, 0x02, 32);
    c->instance_id_len = 33;
    strcpy(c->profile, TOKEN_PROFILE_2023);
    c->boot_seed_len = 8;
    c->client_id = 2147483647;
    c->lifecycle = 0x3000;
    c->impl_id_len = 32;
    c->sw_count = 1;
    c->sw[0].present = TOKEN_SWC_MEAS_TYPE | TOKEN_SWC_MEAS_VALUE | TOKEN_SWC_SIGNER_ID;
    strcpy(c->sw[0].meas_type, "PRoT");
    memset(c->sw[0].meas_value, 0x03, 32);
    c->sw[0].meas_value_len = 32;
    memset(c->sw[0].signer_id, 0x04, 32);
    c->sw[0].signer_id_len = 32;
}

/* token_encode()s c and checks that its payload is the documented example. */
static void check_payload_is_doc_example(const struct token_claims *c, EVP_PKEY *key)
{
    static uint8_t t[TOKEN_MAX_LEN];
    uint8_t want[512];
    size_t len = 0;
    const char *doc = check_read_source("docs/protocol.md");
    long wl = doc == NULL ? -1 : check_doc_example(doc, "token-claims", want, sizeof(want));
    CHECK(wl == 256);
    CHECK_EQ_INT(token_encode(c, check_p256_sign, key, t, sizeof(t), &len), TOKEN_OK);
    /* d2 84 43 a1 01 26 a0 59 01 00 <payload> */
    CHECK(len == 10 + 256 + 2 + 64 && t[7] == 0x59 && t[8] == 0x01 && t[9] == 0x00);
    CHECK(wl == 256 && memcmp(t + 10, want, 256) == 0);
}

/* ---- claims ---------------------------------------------------------------------------- */

static void valid_claims(struct token_claims *c)
{
    memset(c, 0, sizeof(*c));
    c->present = TOKEN_HAS_NONCE | TOKEN_HAS_INSTANCE_ID | TOKEN_HAS_PROFILE | TOKEN_HAS_BOOT_SEED |
                 TOKEN_HAS_CLIENT_ID | TOKEN_HAS_LIFECYCLE | TOKEN_HAS_IMPL_ID |
                 TOKEN_HAS_SW_COMPS | TOKEN_HAS_CERT_REF | TOKEN_HAS_VERIF_SERVICE;
    memset(c->nonce, 0xa5, 32);
    c->nonce_len = 32;
    c->instance_id[0] = 0x01;
    memset(c->instance_id + 1, 0x11, 32);
    c->instance_id_len = 33;
    strcpy(c->profile, TOKEN_PROFILE_2023);
    memset(c->boot_seed, 0x22, 16);
    c->boot_seed_len = 16;
    c->client_id = -5;
    c->lifecycle = 0x3000;
    memset(c->impl_id, 0x33, 32);
    c->impl_id_len = 32;
    strcpy(c->cert_ref, "1234567890123-12345");
    strcpy(c->verif_service, "https://veraison.example/v1");
    c->sw_count = 2;
    for (size_t i = 0; i < 2; i++) {
        struct token_sw_component *s = &c->sw[i];
        s->present = TOKEN_SWC_MEAS_TYPE | TOKEN_SWC_MEAS_VALUE | TOKEN_SWC_VERSION |
                     TOKEN_SWC_SIGNER_ID | TOKEN_SWC_MEAS_DESC;
        memset(s->meas_value, (int)(0x40 + i), 32);
        s->meas_value_len = 32;
        memset(s->signer_id, (int)(0x50 + i), 32);
        s->signer_id_len = 32;
        strcpy(s->meas_type, i == 0 ? "BL" : "NSPE");
        strcpy(s->version, "1.2.3+4");
        strcpy(s->meas_desc, "sha-256");
    }
}

static unsigned claim_bit_for_test(int64_t key)
{
    switch (key) {
    case TOKEN_KEY_NONCE:
        return TOKEN_HAS_NONCE;
    case TOKEN_KEY_INSTANCE_ID:
        return TOKEN_HAS_INSTANCE_ID;
    case TOKEN_KEY_BOOT_SEED:
        return TOKEN_HAS_BOOT_SEED;
    case TOKEN_KEY_CLIENT_ID:
        return TOKEN_HAS_CLIENT_ID;
    case TOKEN_KEY_LIFECYCLE:
        return TOKEN_HAS_LIFECYCLE;
    case TOKEN_KEY_IMPL_ID:
        return TOKEN_HAS_IMPL_ID;
    case TOKEN_KEY_SW_COMPS:
        return TOKEN_HAS_SW_COMPS;
    default:
        return 0;
    }
}

struct bad_case {
    const char *name;
    void (*mutate)(struct token_claims *c);
    enum token_err want;
};

static void m_no_nonce(struct token_claims *c)
{
    c->present &= ~TOKEN_HAS_NONCE;
}
static void m_nonce_16(struct token_claims *c)
{
    c->nonce_len = 16;
}
static void m_nonce_33(struct token_claims *c)
{
    c->nonce_len = 33;
}
static void m_no_instance(struct token_claims *c)
{
    c->present &= ~TOKEN_HAS_INSTANCE_ID;
}
static void m_instance_type(struct token_claims *c)
{
    c->instance_id[0] = 0x02;
}
static void m_instance_short(struct token_claims *c)
{
    c->instance_id_len = 32;
}
static void m_no_impl(struct token_claims *c)
{
    c->present &= ~TOKEN_HAS_IMPL_ID;
}
static void m_impl_short(struct token_claims *c)
{
    c->impl_id_len = 16;
}
static void m_seed_short(struct token_claims *c)
{
    c->boot_seed_len = 4;
}
static void m_seed_empty(struct token_claims *c)
{
    c->boot_seed_len = 0;
}
static void m_no_client(struct token_claims *c)
{
    c->present &= ~TOKEN_HAS_CLIENT_ID;
}
static void m_no_lifecycle(struct token_claims *c)
{
    c->present &= ~TOKEN_HAS_LIFECYCLE;
}
static void m_lifecycle_7000(struct token_claims *c)
{
    c->lifecycle = 0x7000;
}
static void m_lifecycle_3100(struct token_claims *c)
{
    c->lifecycle = 0x3100;
}
static void m_no_profile(struct token_claims *c)
{
    c->present &= ~TOKEN_HAS_PROFILE;
}
static void m_legacy_profile(struct token_claims *c)
{
    strcpy(c->profile, "PSA_IOT_PROFILE_1");
}
static void m_no_sw(struct token_claims *c)
{
    c->present &= ~TOKEN_HAS_SW_COMPS;
}
static void m_empty_sw(struct token_claims *c)
{
    c->sw_count = 0;
}
static void m_sw_no_meas(struct token_claims *c)
{
    c->sw[1].present &= ~TOKEN_SWC_MEAS_VALUE;
}
static void m_sw_meas_20(struct token_claims *c)
{
    c->sw[0].meas_value_len = 20;
}
static void m_sw_no_signer(struct token_claims *c)
{
    c->sw[0].present &= ~TOKEN_SWC_SIGNER_ID;
}
static void m_sw_signer_31(struct token_claims *c)
{
    c->sw[1].signer_id_len = 31;
}
static void m_cert_ref(struct token_claims *c)
{
    strcpy(c->cert_ref, "12345");
}
static void m_cert_ref_sep(struct token_claims *c)
{
    strcpy(c->cert_ref, "1234567890123+12345");
}
static void m_verif_empty(struct token_claims *c)
{
    c->verif_service[0] = '\0';
}

static const struct bad_case bad_cases[] = {
    {"missing nonce", m_no_nonce, TOKEN_ERR_NONCE_MISSING},
    {"nonce 16 bytes", m_nonce_16, TOKEN_ERR_NONCE_SIZE},
    {"nonce 33 bytes", m_nonce_33, TOKEN_ERR_NONCE_SIZE},
    {"missing instance id", m_no_instance, TOKEN_ERR_INSTANCE_MISSING},
    {"instance id type 0x02", m_instance_type, TOKEN_ERR_INSTANCE_BAD},
    {"instance id 32 bytes", m_instance_short, TOKEN_ERR_INSTANCE_BAD},
    {"missing implementation id", m_no_impl, TOKEN_ERR_IMPL_MISSING},
    {"implementation id 16 bytes", m_impl_short, TOKEN_ERR_IMPL_SIZE},
    {"boot seed 4 bytes", m_seed_short, TOKEN_ERR_BOOT_SEED_SIZE},
    {"boot seed empty", m_seed_empty, TOKEN_ERR_BOOT_SEED_SIZE},
    {"missing client id", m_no_client, TOKEN_ERR_CLIENT_MISSING},
    {"missing lifecycle", m_no_lifecycle, TOKEN_ERR_LIFECYCLE_MISSING},
    {"lifecycle 0x7000", m_lifecycle_7000, TOKEN_ERR_LIFECYCLE_BAD},
    {"lifecycle 0x3100", m_lifecycle_3100, TOKEN_ERR_LIFECYCLE_BAD},
    {"missing profile", m_no_profile, TOKEN_ERR_PROFILE_MISSING},
    {"legacy profile", m_legacy_profile, TOKEN_ERR_PROFILE_UNKNOWN},
    {"missing software components", m_no_sw, TOKEN_ERR_SWCOMP_MISSING},
    {"empty software components", m_empty_sw, TOKEN_ERR_SWCOMP_EMPTY},
    {"component without measurement", m_sw_no_meas, TOKEN_ERR_SWCOMP_NO_MEASUREMENT},
    {"measurement 20 bytes", m_sw_meas_20, TOKEN_ERR_SWCOMP_MEASUREMENT_SIZE},
    {"component without signer id", m_sw_no_signer, TOKEN_ERR_SWCOMP_NO_SIGNER},
    {"signer id 31 bytes", m_sw_signer_31, TOKEN_ERR_SWCOMP_SIGNER_SIZE},
    {"certification reference short", m_cert_ref, TOKEN_ERR_CERT_REF_BAD},
    {"certification reference separator", m_cert_ref_sep, TOKEN_ERR_CERT_REF_BAD},
    {"empty verification service", m_verif_empty, TOKEN_ERR_VERIF_SERVICE_BAD},
};

static uint8_t tok[TOKEN_MAX_LEN];
static uint8_t tok2[TOKEN_MAX_LEN + 16];

static void test_generated(void)
{
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    EVP_PKEY *other = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    uint8_t pub[65], other_pub[65];
    struct token_claims c, got;
    size_t len = 0, len2 = 0;

    CHECK(key != NULL && other != NULL);
    if (key == NULL || other == NULL)
        return;
    CHECK(check_p256_pub(key, pub) == 0);
    CHECK(check_p256_pub(other, other_pub) == 0);

    /* the documented example payload */
    rfc_example_claims(&c);
    CHECK_EQ_INT(token_check_claims(&c), TOKEN_OK);
    check_payload_is_doc_example(&c, key);

    /* round trip */
    valid_claims(&c);
    CHECK_EQ_INT(token_check_claims(&c), TOKEN_OK);
    CHECK_EQ_INT(token_encode(&c, check_p256_sign, key, tok, sizeof(tok), &len), TOKEN_OK);
    CHECK_EQ_INT(token_verify(tok, len, pub, c.nonce, c.nonce_len, &got), TOKEN_OK);
    CHECK(memcmp(&c, &got, sizeof(c)) == 0);
    CHECK_EQ_INT(token_decode(tok, len, &got), TOKEN_OK);
    CHECK(memcmp(&c, &got, sizeof(c)) == 0);
    CHECK_EQ_INT(token_verify(tok, len, pub, NULL, 0, NULL), TOKEN_OK);
    /* the encoding is canonical: the claims re-encoded by an independent check are sorted and
     * the structure is well-formed */
    CHECK_EQ_INT(cbor_check(tok, len), CBOR_OK);
    CHECK(tok[0] == 0xd2 && tok[1] == 0x84 && tok[2] == 0x43 && tok[3] == 0xa1 && tok[4] == 0x01 &&
          tok[5] == 0x26 && tok[6] == 0xa0);
    /* payload determinism: two encodings differ only in the (randomised) signature */
    CHECK_EQ_INT(token_encode(&c, check_p256_sign, key, tok2, sizeof(tok2), &len2), TOKEN_OK);
    CHECK_EQ_INT(len, len2);
    CHECK(memcmp(tok, tok2, len - 64) == 0);

    /* wrong key, wrong nonce, wrong nonce length */
    CHECK_EQ_INT(token_verify(tok, len, other_pub, NULL, 0, &got), TOKEN_ERR_SIGNATURE);
    CHECK(got.present == 0);
    uint8_t wrong[32];
    memset(wrong, 0xa5, 32);
    wrong[31] ^= 1;
    CHECK_EQ_INT(token_verify(tok, len, pub, wrong, 32, &got), TOKEN_ERR_NONCE_MISMATCH);
    CHECK_EQ_INT(token_verify(tok, len, pub, c.nonce, 31, &got), TOKEN_ERR_NONCE_MISMATCH);
    /* truncation anywhere and a trailing byte are structure errors */
    for (size_t n = 0; n < len; n++)
        CHECK(token_verify(tok, n, pub, NULL, 0, &got) == TOKEN_ERR_COSE);
    memcpy(tok2, tok, len);
    tok2[len] = 0x00;
    CHECK_EQ_INT(token_verify(tok2, len + 1, pub, NULL, 0, &got), TOKEN_ERR_COSE);
    /* every output buffer size below the token's size is refused, never overrun */
    for (size_t cap = 0; cap < len; cap++) {
        size_t l = 123;
        CHECK(token_encode(&c, check_p256_sign, key, tok2, cap, &l) == TOKEN_ERR_NOSPACE && l == 0);
    }
    CHECK_EQ_INT(token_encode(&c, failing_sign, NULL, tok2, sizeof(tok2), &len2), TOKEN_ERR_SIGNER);

    /* optional claims absent, 8 components with 64-byte hashes, 48-byte nonce, seed 8 and 32 */
    valid_claims(&c);
    c.present &= ~(TOKEN_HAS_CERT_REF | TOKEN_HAS_VERIF_SERVICE | TOKEN_HAS_BOOT_SEED);
    memset(c.cert_ref, 0, sizeof(c.cert_ref));
    memset(c.verif_service, 0, sizeof(c.verif_service));
    memset(c.boot_seed, 0, sizeof(c.boot_seed));
    c.boot_seed_len = 0;
    c.nonce_len = 48;
    c.sw_count = TOKEN_MAX_SW_COMPONENTS;
    for (size_t i = 0; i < TOKEN_MAX_SW_COMPONENTS; i++) {
        c.sw[i] = c.sw[0];
        c.sw[i].meas_value_len = 64;
        memset(c.sw[i].meas_value, (int)i, 64);
        c.sw[i].signer_id_len = 48;
        memset(c.sw[i].meas_type, 'x', TOKEN_MAX_TEXT);
    }
    CHECK_EQ_INT(token_encode(&c, check_p256_sign, key, tok, sizeof(tok), &len), TOKEN_OK);
    CHECK_EQ_INT(token_verify(tok, len, pub, c.nonce, 48, &got), TOKEN_OK);
    CHECK(memcmp(&c, &got, sizeof(c)) == 0);
    for (size_t i = 0; i < sizeof(c); i++)
        if (((uint8_t *)&c)[i] != ((uint8_t *)&got)[i]) {
            fprintf(stderr, "first difference at struct offset %zu\n", i);
            break;
        }
    for (size_t seed = 8; seed <= 32; seed += 24) {
        valid_claims(&c);
        c.boot_seed_len = seed;
        CHECK_EQ_INT(token_encode(&c, check_p256_sign, key, tok, sizeof(tok), &len), TOKEN_OK);
        CHECK_EQ_INT(token_verify(tok, len, pub, NULL, 0, &got), TOKEN_OK);
    }
    /* EAN-13 alone and with an underscore separator are accepted too */
    valid_claims(&c);
    strcpy(c.cert_ref, "1234567890123");
    CHECK_EQ_INT(token_check_claims(&c), TOKEN_OK);
    strcpy(c.cert_ref, "1234567890123_12345");
    CHECK_EQ_INT(token_encode(&c, check_p256_sign, key, tok, sizeof(tok), &len), TOKEN_OK);
    CHECK_EQ_INT(token_verify(tok, len, pub, NULL, 0, &got), TOKEN_OK);
    /* a text field without its NUL is refused by the encoder */
    valid_claims(&c);
    memset(c.sw[0].version, 'v', sizeof(c.sw[0].version));
    CHECK_EQ_INT(token_encode(&c, check_p256_sign, key, tok, sizeof(tok), &len), TOKEN_ERR_ARG);
    CHECK_EQ_INT(token_check_claims(&c), TOKEN_ERR_TEXT_TOO_LONG);

    /* each invalid claim, signed correctly, is refused with its own reason */
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        enum token_err r1, r2, r3;
        valid_claims(&c);
        bad_cases[i].mutate(&c);
        r3 = token_check_claims(&c);
        CHECK_EQ_INT(token_encode(&c, check_p256_sign, key, tok, sizeof(tok), &len), TOKEN_OK);
        r1 = token_verify(tok, len, pub, NULL, 0, &got);
        r2 = token_decode(tok, len, &got);
        if (r1 != bad_cases[i].want || r2 != bad_cases[i].want || r3 != bad_cases[i].want)
            fprintf(stderr, "case '%s': verify %s, decode %s, check %s; want %s\n",
                    bad_cases[i].name, token_err_str(r1), token_err_str(r2), token_err_str(r3),
                    token_err_str(bad_cases[i].want));
        CHECK_EQ_INT(r1, bad_cases[i].want);
        CHECK_EQ_INT(r2, bad_cases[i].want);
        CHECK_EQ_INT(r3, bad_cases[i].want);
        CHECK(got.present == 0);
    }
    /* every reason has its own string */
    for (int a = 0; a < TOKEN_ERR__COUNT; a++)
        for (int b = a + 1; b < TOKEN_ERR__COUNT; b++)
            CHECK(strcmp(token_err_str((enum token_err)a), token_err_str((enum token_err)b)) != 0);

    /* hand-made tokens for structure-level failures */
    {
        static const uint8_t prot_ok[] = {0xa1, 0x01, 0x26};
        static const uint8_t prot_es384[] = {0xa1, 0x01, 0x38, 0x22}; /* {1: -35} */
        static const uint8_t prot_noalg[] = {0xa1, 0x04, 0x41, 0x00}; /* {4: h'00'} */
        static const uint8_t prot_dup[] = {0xa2, 0x01, 0x26, 0x01, 0x26};
        static const uint8_t prot_long[] = {0xa1, 0x18, 0x01, 0x26}; /* non-shortest key */
        uint8_t payload[1024];
        struct cbor_enc e;
        size_t plen = 0, n;

        valid_claims(&c);
        CHECK_EQ_INT(token_encode(&c, check_p256_sign, key, tok, sizeof(tok), &len), TOKEN_OK);
        /* payload of the valid token: after d2 84 43 a1 01 26 a0 59 LL LL */
        plen = ((size_t)tok[8] << 8) | tok[9];
        memcpy(payload, tok + 10, plen);

        n = make_raw_sign1(key, prot_ok, 3, payload, plen, 1, tok2, sizeof(tok2));
        CHECK_EQ_INT(token_verify(tok2, n, pub, NULL, 0, &got), TOKEN_OK);
        n = make_raw_sign1(key, prot_ok, 3, payload, plen, 0, tok2, sizeof(tok2));
        CHECK_EQ_INT(token_verify(tok2, n, pub, NULL, 0, &got), TOKEN_ERR_COSE);
        n = make_raw_sign1(key, prot_es384, sizeof(prot_es384), payload, plen, 1, tok2,
                           sizeof(tok2));
        CHECK_EQ_INT(token_verify(tok2, n, pub, NULL, 0, &got), TOKEN_ERR_ALG);
        n = make_raw_sign1(key, prot_noalg, sizeof(prot_noalg), payload, plen, 1, tok2,
                           sizeof(tok2));
        CHECK_EQ_INT(token_verify(tok2, n, pub, NULL, 0, &got), TOKEN_ERR_ALG);
        n = make_raw_sign1(key, prot_ok, 0, payload, plen, 1, tok2, sizeof(tok2));
        CHECK_EQ_INT(token_verify(tok2, n, pub, NULL, 0, &got), TOKEN_ERR_ALG);
        n = make_raw_sign1(key, prot_dup, sizeof(prot_dup), payload, plen, 1, tok2, sizeof(tok2));
        CHECK_EQ_INT(token_verify(tok2, n, pub, NULL, 0, &got), TOKEN_ERR_COSE);
        n = make_raw_sign1(key, prot_long, sizeof(prot_long), payload, plen, 1, tok2, sizeof(tok2));
        CHECK_EQ_INT(token_verify(tok2, n, pub, NULL, 0, &got), TOKEN_ERR_COSE);

        /* payload variants: [prefix claims of the valid map] + extra pair(s) */
        struct {
            const char *name;
            uint8_t extra[80];
            size_t extra_len;
            unsigned extra_pairs;
            enum token_err want;
        } pv[] = {
            {"duplicate nonce", {0x0a, 0x58, 0x20}, 35, 1, TOKEN_ERR_CLAIM_DUPLICATE},
            {"unknown int claim", {0x19, 0x27, 0x10, 0x82, 0x01, 0xa1, 0x02, 0x03}, 8, 1, TOKEN_OK},
            {"unknown text claim", {0x61, 0x78, 0xf6}, 3, 1, TOKEN_OK},
            {"float claim", {0x19, 0x27, 0x10, 0xf9, 0x3c, 0x00}, 6, 1, TOKEN_ERR_CLAIMS},
            {"indefinite claim",
             {0x19, 0x27, 0x10, 0x5f, 0x41, 0x00, 0xff},
             7,
             1,
             TOKEN_ERR_CLAIMS},
        };
        for (size_t i = 0; i < sizeof(pv) / sizeof(pv[0]); i++) {
            uint8_t p2[1200];
            /* the valid payload starts with map head 0xaa (10 pairs); rewrite the count */
            CHECK(payload[0] == 0xaa);
            p2[0] = (uint8_t)(0xa0 + 10 + pv[i].extra_pairs);
            memcpy(p2 + 1, payload + 1, plen - 1);
            memcpy(p2 + plen, pv[i].extra, pv[i].extra_len);
            n = make_raw_sign1(key, prot_ok, 3, p2, plen + pv[i].extra_len, 1, tok2, sizeof(tok2));
            enum token_err r = token_verify(tok2, n, pub, NULL, 0, &got);
            if (r != pv[i].want)
                fprintf(stderr, "payload case '%s': %s\n", pv[i].name, token_err_str(r));
            CHECK_EQ_INT(r, pv[i].want);
        }

        /* wrong types / ranges of single claims, in a minimal otherwise-valid map */
        struct {
            const char *name;
            int64_t key;
            int kind; /* 0 text, 1 int, 2 big uint, 3 array of 9 maps, 4 bytes(40) */
            enum token_err want;
        } tv[] = {
            {"nonce as text", TOKEN_KEY_NONCE, 0, TOKEN_ERR_CLAIM_TYPE},
            {"client id 2^31", TOKEN_KEY_CLIENT_ID, 2, TOKEN_ERR_CLIENT_RANGE},
            {"lifecycle negative", TOKEN_KEY_LIFECYCLE, 1, TOKEN_ERR_CLAIM_TYPE},
            {"lifecycle huge", TOKEN_KEY_LIFECYCLE, 2, TOKEN_ERR_LIFECYCLE_BAD},
            {"9 components", TOKEN_KEY_SW_COMPS, 3, TOKEN_ERR_SWCOMP_TOO_MANY},
            {"boot seed 40 bytes", TOKEN_KEY_BOOT_SEED, 4, TOKEN_ERR_BOOT_SEED_SIZE},
            {"instance id 40 bytes", TOKEN_KEY_INSTANCE_ID, 4, TOKEN_ERR_INSTANCE_BAD},
            {"impl id 40 bytes", TOKEN_KEY_IMPL_ID, 4, TOKEN_ERR_IMPL_SIZE},
            {"components as text", TOKEN_KEY_SW_COMPS, 0, TOKEN_ERR_CLAIM_TYPE},
        };
        for (size_t i = 0; i < sizeof(tv) / sizeof(tv[0]); i++) {
            uint8_t p2[1200], b40[40] = {0};
            valid_claims(&c);
            c.present &= ~claim_bit_for_test(tv[i].key);
            cbor_enc_init(&e, p2, sizeof(p2));
            /* the valid map minus the claim, then the claim: re-use the encoder for the rest */
            size_t rest_len = 0;
            uint8_t rest[1100];
            CHECK_EQ_INT(token_encode(&c, check_p256_sign, key, rest, sizeof(rest), &rest_len),
                         TOKEN_OK);
            /* payload bstr head at rest[7]: 0x58 LL or 0x59 LL LL */
            size_t rl, po;
            if (rest[7] == 0x58) {
                rl = rest[8];
                po = 9;
            } else {
                rl = ((size_t)rest[8] << 8) | rest[9];
                po = 10;
            }
            CHECK(rest[po] >= 0xa1 && rest[po] <= 0xb0);
            cbor_put_map(&e, (size_t)(rest[po] - 0xa0) + 1);
            cbor_put_raw(&e, rest + po + 1, rl - 1);
            cbor_put_int(&e, tv[i].key);
            if (tv[i].kind == 0) {
                cbor_put_text(&e, "abc", 3);
            } else if (tv[i].kind == 1) {
                cbor_put_int(&e, -1);
            } else if (tv[i].kind == 2) {
                cbor_put_uint(&e, 0x80000000u);
            } else if (tv[i].kind == 3) {
                cbor_put_array(&e, 9);
                for (int k = 0; k < 9; k++)
                    cbor_put_map(&e, 0);
            } else {
                cbor_put_bytes(&e, b40, sizeof(b40));
            }
            size_t p2len = 0;
            CHECK_EQ_INT(cbor_enc_finish(&e, &p2len), CBOR_OK);
            n = make_raw_sign1(key, prot_ok, 3, p2, p2len, 1, tok2, sizeof(tok2));
            enum token_err r = token_verify(tok2, n, pub, NULL, 0, &got);
            if (r != tv[i].want)
                fprintf(stderr, "type case '%s': %s\n", tv[i].name, token_err_str(r));
            CHECK_EQ_INT(r, tv[i].want);
        }
    }
    EVP_PKEY_free(key);
    EVP_PKEY_free(other);
}

/* ---- the RFC 9783 vector -------------------------------------------------------------- */

static int test_vector(void)
{
    char kpath[1024], tpath[1024];
    uint8_t pub[65], buf[4096];
    struct token_claims c;
    uint8_t v[33];
    long n;

    if (check_vector_path(kpath, sizeof(kpath), "psa/tfm-es-iak.pem") == NULL ||
        check_vector_path(tpath, sizeof(tpath), "psa/psa-sign1.cbor") == NULL)
        return -1;
    EVP_PKEY *key = check_pem_private_key(kpath);
    CHECK(key != NULL);
    if (key == NULL)
        return 0;
    CHECK(check_p256_pub(key, pub) == 0);
    n = check_read_file(tpath, buf, sizeof(buf));
    CHECK(n > 0);
    if (n <= 0) {
        EVP_PKEY_free(key);
        return 0;
    }
    size_t len = (size_t)n;

    CHECK_EQ_INT(token_verify(buf, len, pub, NULL, 0, &c), TOKEN_OK);
    /* the claims of psa-sign1.diag */
    CHECK_EQ_INT(c.present, TOKEN_HAS_NONCE | TOKEN_HAS_INSTANCE_ID | TOKEN_HAS_PROFILE |
                                TOKEN_HAS_BOOT_SEED | TOKEN_HAS_CLIENT_ID | TOKEN_HAS_LIFECYCLE |
                                TOKEN_HAS_IMPL_ID | TOKEN_HAS_SW_COMPS);
    v[0] = 0x01;
    memset(v + 1, 0x02, 32);
    CHECK(c.instance_id_len == 33 && memcmp(c.instance_id, v, 33) == 0);
    memset(v, 0x00, 32);
    CHECK(c.impl_id_len == 32 && memcmp(c.impl_id, v, 32) == 0);
    memset(v, 0x01, 32);
    CHECK(c.nonce_len == 32 && memcmp(c.nonce, v, 32) == 0);
    CHECK_EQ_INT(c.client_id, 2147483647);
    CHECK_EQ_INT(c.lifecycle, 0x3000);
    CHECK(strcmp(token_lifecycle_str(c.lifecycle), "secured") == 0);
    CHECK(strcmp(c.profile, "tag:psacertified.org,2023:psa#tfm") == 0);
    memset(v, 0x00, 8);
    CHECK(c.boot_seed_len == 8 && memcmp(c.boot_seed, v, 8) == 0);
    CHECK_EQ_INT(c.sw_count, 1);
    CHECK_EQ_INT(c.sw[0].present, TOKEN_SWC_MEAS_TYPE | TOKEN_SWC_MEAS_VALUE | TOKEN_SWC_SIGNER_ID);
    memset(v, 0x04, 32);
    CHECK(c.sw[0].signer_id_len == 32 && memcmp(c.sw[0].signer_id, v, 32) == 0);
    memset(v, 0x03, 32);
    CHECK(c.sw[0].meas_value_len == 32 && memcmp(c.sw[0].meas_value, v, 32) == 0);
    CHECK(strcmp(c.sw[0].meas_type, "PRoT") == 0);
    CHECK(c.sw[0].version[0] == '\0' && c.sw[0].meas_desc[0] == '\0');
    CHECK(c.cert_ref[0] == '\0' && c.verif_service[0] == '\0');

    struct token_claims d;
    CHECK_EQ_INT(token_decode(buf, len, &d), TOKEN_OK);
    CHECK(memcmp(&c, &d, sizeof(c)) == 0);
    /* our struct for the RFC example equals the decoded vector, and re-encoding the vector's
     * claims gives the documented (sorted) payload, signed with the same TF-M key */
    rfc_example_claims(&d);
    CHECK(memcmp(&c, &d, sizeof(c)) == 0);
    check_payload_is_doc_example(&c, key);
    memset(v, 0x01, 32);
    CHECK_EQ_INT(token_verify(buf, len, pub, v, 32, &d), TOKEN_OK);
    v[0] = 0x02;
    CHECK_EQ_INT(token_verify(buf, len, pub, v, 32, &d), TOKEN_ERR_NONCE_MISMATCH);

    /* d2 84 43 a1 01 26 a0 59 01 00 <256 payload bytes> 58 40 <64 signature bytes> */
    CHECK(len == 10 + 256 + 2 + 64 && buf[7] == 0x59 && buf[8] == 0x01 && buf[9] == 0x00);
    size_t rejected = 0, tried = 0;
    for (size_t i = 10; i < len; i++) {
        if (i == 10 + 256 || i == 10 + 256 + 1)
            continue; /* the signature's bstr head: a structure change, covered below */
        for (unsigned bit = 0; bit < 8; bit++) {
            buf[i] ^= (uint8_t)(1u << bit);
            enum token_err r = token_verify(buf, len, pub, NULL, 0, &d);
            buf[i] ^= (uint8_t)(1u << bit);
            tried++;
            if (r != TOKEN_OK)
                rejected++;
            else
                fprintf(stderr, "flip at %zu bit %u accepted\n", i, bit);
        }
    }
    CHECK_EQ_INT(rejected, tried);
    CHECK_EQ_INT(tried, (256 + 64) * 8);
    /* the header bytes too */
    for (size_t i = 0; i < 10; i++) {
        buf[i] ^= 0x01;
        CHECK(token_verify(buf, len, pub, NULL, 0, &d) != TOKEN_OK);
        buf[i] ^= 0x01;
    }
    CHECK_EQ_INT(token_verify(buf, len, pub, NULL, 0, &d), TOKEN_OK);
    EVP_PKEY_free(key);
    return 0;
}

int main(void)
{
    test_generated();
    if (test_vector() != 0) {
        int rc = check_finish();
        if (rc != 0)
            return rc;
        check_skip("vectors psa/psa-sign1.cbor, psa/tfm-es-iak.pem not found under "
                   "FLEETGW_VECTORS (../shared/vectors): vector checks skipped");
    }
    return check_finish();
}
