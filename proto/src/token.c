/* PSA attestation tokens (RFC 9783, PSA 2.0.0, PSA_IOT_PROFILE_1) in COSE_Sign1 with ES256 or
 * COSE_Mac0 with HMAC 256/256 (RFC 9052). See fleetgw/token.h. */
#include "fleetgw/token.h"

#include <string.h>

#include "fleetgw/cbor.h"

#define COSE_SIGN1_TAG        18u
#define COSE_MAC0_TAG         17u
#define COSE_ALG_LABEL        1
#define COSE_ALG_ES256        (-7)
#define COSE_ALG_HMAC256      5   /* HMAC 256/256 */
#define COSE_MAX_PROTECTED    64u /* bytes of the protected header bstr */
#define COSE_MAX_HEADER_PAIRS 8u
#define SWC_MAX_PAIRS         8u

static const uint8_t protected_es256[] = {0xa1, 0x01, 0x26};   /* {1: -7} */
static const uint8_t protected_hmac256[] = {0xa1, 0x01, 0x05}; /* {1: 5} */

/* ---- Profiles: one claim-key table each, onto the same struct token_claims --------------- */

enum claim_id {
    CL_NONCE,
    CL_INSTANCE,
    CL_PROFILE,
    CL_BOOT_SEED,
    CL_CLIENT,
    CL_LIFECYCLE,
    CL_IMPL,
    CL_CERT_REF,
    CL_SW,
    CL_NO_SW,
    CL_VSI,
    CL__COUNT
};

static const unsigned claim_bits[CL__COUNT] = {
    [CL_NONCE] = TOKEN_HAS_NONCE,       [CL_INSTANCE] = TOKEN_HAS_INSTANCE_ID,
    [CL_PROFILE] = TOKEN_HAS_PROFILE,   [CL_BOOT_SEED] = TOKEN_HAS_BOOT_SEED,
    [CL_CLIENT] = TOKEN_HAS_CLIENT_ID,  [CL_LIFECYCLE] = TOKEN_HAS_LIFECYCLE,
    [CL_IMPL] = TOKEN_HAS_IMPL_ID,      [CL_CERT_REF] = TOKEN_HAS_CERT_REF,
    [CL_SW] = TOKEN_HAS_SW_COMPS,       [CL_NO_SW] = TOKEN_HAS_NO_SW_MEAS,
    [CL_VSI] = TOKEN_HAS_VERIF_SERVICE,
};

/* Certification reference forms (bits of profile_rules.cert_ref_forms) */
#define CERT_EAN13          0x1u /* [0-9]{13} */
#define CERT_EAN13_DASH5    0x2u /* [0-9]{13}-[0-9]{5} */
#define CERT_EAN13_UNDERSC5 0x4u /* [0-9]{13}_[0-9]{5} */

struct profile_rules {
    const char *id;         /* the profile claim's value */
    int64_t key[CL__COUNT]; /* 0: the profile has no such claim */
    int profile_required;   /* IoT 1 makes the profile claim optional */
    int boot_seed_required; /* IoT 1 requires it */
    size_t seed_min, seed_max;
    unsigned cert_ref_forms; /* CERT_* */
    int no_sw_allowed;       /* no-software-measurements may stand in for the components */
};

#define LEGACY_KEY_FIRST (-75000)
#define LEGACY_KEY_LAST  (-75010)

static const struct profile_rules profiles[TOKEN_PROFILE__COUNT] = {
    [TOKEN_PROFILE_RFC9783] =
        {
            .id = TOKEN_PROFILE_2023,
            .key = {[CL_NONCE] = 10,
                    [CL_INSTANCE] = 256,
                    [CL_PROFILE] = 265,
                    [CL_BOOT_SEED] = 268,
                    [CL_CLIENT] = 2394,
                    [CL_LIFECYCLE] = 2395,
                    [CL_IMPL] = 2396,
                    [CL_CERT_REF] = 2398,
                    [CL_SW] = 2399,
                    [CL_NO_SW] = 0,
                    [CL_VSI] = 2400},
            .profile_required = 1,
            .boot_seed_required = 0,
            .seed_min = 8,
            .seed_max = 32,
            .cert_ref_forms = CERT_EAN13 | CERT_EAN13_DASH5 | CERT_EAN13_UNDERSC5,
            .no_sw_allowed = 0,
        },
    [TOKEN_PROFILE_PSA_2_0_0] =
        {
            .id = TOKEN_PROFILE_2_0_0,
            .key = {[CL_NONCE] = 10,
                    [CL_INSTANCE] = 256,
                    [CL_PROFILE] = 265,
                    [CL_BOOT_SEED] = 2397,
                    [CL_CLIENT] = 2394,
                    [CL_LIFECYCLE] = 2395,
                    [CL_IMPL] = 2396,
                    [CL_CERT_REF] = 2398,
                    [CL_SW] = 2399,
                    [CL_NO_SW] = 0,
                    [CL_VSI] = 2400},
            .profile_required = 1,
            .boot_seed_required = 0,
            .seed_min = 8,
            .seed_max = 32,
            .cert_ref_forms = CERT_EAN13_DASH5,
            .no_sw_allowed = 0,
        },
    [TOKEN_PROFILE_PSA_IOT_1] =
        {
            .id = TOKEN_PROFILE_IOT_1,
            .key = {[CL_NONCE] = -75008,
                    [CL_INSTANCE] = -75009,
                    [CL_PROFILE] = -75000,
                    [CL_BOOT_SEED] = -75004,
                    [CL_CLIENT] = -75001,
                    [CL_LIFECYCLE] = -75002,
                    [CL_IMPL] = -75003,
                    [CL_CERT_REF] = -75005,
                    [CL_SW] = -75006,
                    [CL_NO_SW] = -75007,
                    [CL_VSI] = -75010},
            .profile_required = 0,
            .boot_seed_required = 1,
            .seed_min = 32,
            .seed_max = 32,
            .cert_ref_forms = CERT_EAN13 | CERT_EAN13_DASH5,
            .no_sw_allowed = 1,
        },
};

static const char *const envelope_names[TOKEN_ENVELOPE__COUNT] = {
    [TOKEN_ENVELOPE_SIGN1] = "COSE_Sign1",
    [TOKEN_ENVELOPE_MAC0] = "COSE_Mac0",
};

const char *token_profile_str(enum token_profile p)
{
    return (unsigned)p < (unsigned)TOKEN_PROFILE__COUNT ? profiles[p].id : "unknown";
}

enum token_profile token_profile_from_str(const char *s)
{
    if (s == NULL)
        return TOKEN_PROFILE__COUNT;
    for (unsigned i = 0; i < (unsigned)TOKEN_PROFILE__COUNT; i++)
        if (strcmp(s, profiles[i].id) == 0)
            return (enum token_profile)i;
    return TOKEN_PROFILE__COUNT;
}

const char *token_envelope_str(enum token_envelope e)
{
    return (unsigned)e < (unsigned)TOKEN_ENVELOPE__COUNT ? envelope_names[e] : "unknown";
}

/* The claim a key stands for in profile p, or CL__COUNT. */
static enum claim_id claim_of_key(const struct profile_rules *p, int64_t key)
{
    for (unsigned i = 0; i < (unsigned)CL__COUNT; i++)
        if (p->key[i] != 0 && p->key[i] == key)
            return (enum claim_id)i;
    return CL__COUNT;
}

static const char *const err_names[TOKEN_ERR__COUNT] = {
    [TOKEN_OK] = "ok",
    [TOKEN_ERR_ARG] = "invalid argument",
    [TOKEN_ERR_NOSPACE] = "buffer too small or token too large",
    [TOKEN_ERR_SIGNER] = "signing callback failed",
    [TOKEN_ERR_CRYPTO] = "hash computation failed",
    [TOKEN_ERR_COSE] = "bad COSE_Sign1/COSE_Mac0 structure",
    [TOKEN_ERR_ALG] = "algorithm missing or not ES256 (Sign1) / HMAC 256/256 (Mac0)",
    [TOKEN_ERR_SIGNATURE] = "bad signature",
    [TOKEN_ERR_CLAIMS] = "claims are not a well-formed CBOR map",
    [TOKEN_ERR_CLAIM_TYPE] = "claim has the wrong type",
    [TOKEN_ERR_CLAIM_DUPLICATE] = "duplicate claim",
    [TOKEN_ERR_PROFILE_MISSING] = "missing profile",
    [TOKEN_ERR_PROFILE_UNKNOWN] = "unknown profile",
    [TOKEN_ERR_NONCE_MISSING] = "missing nonce",
    [TOKEN_ERR_NONCE_SIZE] = "bad nonce size (32, 48 or 64 bytes)",
    [TOKEN_ERR_NONCE_MISMATCH] = "nonce mismatch",
    [TOKEN_ERR_INSTANCE_MISSING] = "missing instance id",
    [TOKEN_ERR_INSTANCE_BAD] = "bad instance id (0x01 + 32 bytes)",
    [TOKEN_ERR_IMPL_MISSING] = "missing implementation id",
    [TOKEN_ERR_IMPL_SIZE] = "bad implementation id size (32 bytes)",
    [TOKEN_ERR_BOOT_SEED_SIZE] = "bad boot seed size (8..32 bytes; PSA_IOT_PROFILE_1: 32)",
    [TOKEN_ERR_CLIENT_MISSING] = "missing client id",
    [TOKEN_ERR_CLIENT_RANGE] = "client id out of range",
    [TOKEN_ERR_LIFECYCLE_MISSING] = "missing security lifecycle",
    [TOKEN_ERR_LIFECYCLE_BAD] = "bad security lifecycle",
    [TOKEN_ERR_SWCOMP_MISSING] = "missing software components",
    [TOKEN_ERR_SWCOMP_EMPTY] = "empty software components",
    [TOKEN_ERR_SWCOMP_TOO_MANY] = "too many software components",
    [TOKEN_ERR_SWCOMP_BAD] = "malformed software component",
    [TOKEN_ERR_SWCOMP_NO_MEASUREMENT] = "software component without measurement value",
    [TOKEN_ERR_SWCOMP_MEASUREMENT_SIZE] = "bad measurement value size",
    [TOKEN_ERR_SWCOMP_NO_SIGNER] = "software component without signer id",
    [TOKEN_ERR_SWCOMP_SIGNER_SIZE] = "bad signer id size",
    [TOKEN_ERR_TEXT_TOO_LONG] = "text claim too long",
    [TOKEN_ERR_CERT_REF_BAD] = "bad certification reference for the profile",
    [TOKEN_ERR_VERIF_SERVICE_BAD] = "bad verification service indicator",
    [TOKEN_ERR_PROFILE_CONFLICT] = "profile claims of two profiles",
    [TOKEN_ERR_BOOT_SEED_MISSING] = "missing boot seed",
    [TOKEN_ERR_SWCOMP_CONFLICT] = "software components and no-software-measurements both present",
    [TOKEN_ERR_ENVELOPE] = "wrong COSE envelope (Sign1 and Mac0 need different keys)",
    [TOKEN_ERR_MAC] = "bad MAC",
    [TOKEN_ERR_KEY_SIZE] = "bad HMAC key size (32..64 bytes)",
    [TOKEN_ERR_NO_MEASUREMENTS] = "token reports no software measurements (nothing to appraise)",
};

const char *token_err_str(enum token_err err)
{
    if ((unsigned)err >= (unsigned)TOKEN_ERR__COUNT || err_names[err] == NULL)
        return "unknown error";
    return err_names[err];
}

const char *token_lifecycle_str(uint32_t lc)
{
    static const char *const names[] = {
        "unknown",           "assembly-and-test",         "psa-rot-provisioning", "secured",
        "non-psa-rot-debug", "recoverable-psa-rot-debug", "decommissioned"};
    if (lc > 0x60ffu || (lc & 0x0f00u) != 0)
        return "invalid";
    return names[lc >> 12];
}

static int hash_size_ok(size_t n)
{
    return n == 32u || n == 48u || n == 64u;
}

/* Length of a NUL-terminated text held in a TOKEN_MAX_TEXT + 1 field, or -1 if unterminated. */
static long field_text_len(const char *s)
{
    const char *nul = memchr(s, '\0', TOKEN_MAX_TEXT + 1u);
    return nul == NULL ? -1 : (long)(nul - s);
}

static int digits(const char *s, long n)
{
    for (long i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

static int cert_ref_ok(const char *s, unsigned forms)
{
    long n = field_text_len(s);
    if (n == 13)
        return (forms & CERT_EAN13) && digits(s, 13);
    if (n != 19 || !digits(s, 13) || !digits(s + 14, 5))
        return 0;
    return (s[13] == '-' && (forms & CERT_EAN13_DASH5)) ||
           (s[13] == '_' && (forms & CERT_EAN13_UNDERSC5));
}

enum token_err token_check_claims(const struct token_claims *c)
{
    const struct profile_rules *p;

    if (c == NULL)
        return TOKEN_ERR_ARG;
    if ((unsigned)c->profile_id >= (unsigned)TOKEN_PROFILE__COUNT)
        return TOKEN_ERR_PROFILE_UNKNOWN;
    p = &profiles[c->profile_id];
    if (c->present & TOKEN_HAS_PROFILE) {
        if (field_text_len(c->profile) < 0 || strcmp(c->profile, p->id) != 0)
            return TOKEN_ERR_PROFILE_UNKNOWN;
    } else if (p->profile_required) {
        return TOKEN_ERR_PROFILE_MISSING;
    }
    if (!(c->present & TOKEN_HAS_NONCE))
        return TOKEN_ERR_NONCE_MISSING;
    if (!hash_size_ok(c->nonce_len))
        return TOKEN_ERR_NONCE_SIZE;
    if (!(c->present & TOKEN_HAS_INSTANCE_ID))
        return TOKEN_ERR_INSTANCE_MISSING;
    if (c->instance_id_len != TOKEN_INSTANCE_ID_LEN || c->instance_id[0] != 0x01u)
        return TOKEN_ERR_INSTANCE_BAD;
    if (!(c->present & TOKEN_HAS_IMPL_ID))
        return TOKEN_ERR_IMPL_MISSING;
    if (c->impl_id_len != TOKEN_IMPL_ID_LEN)
        return TOKEN_ERR_IMPL_SIZE;
    if (!(c->present & TOKEN_HAS_CLIENT_ID))
        return TOKEN_ERR_CLIENT_MISSING;
    if (!(c->present & TOKEN_HAS_LIFECYCLE))
        return TOKEN_ERR_LIFECYCLE_MISSING;
    if (c->lifecycle > 0x60ffu || (c->lifecycle & 0x0f00u) != 0)
        return TOKEN_ERR_LIFECYCLE_BAD;
    if (!(c->present & TOKEN_HAS_BOOT_SEED)) {
        if (p->boot_seed_required)
            return TOKEN_ERR_BOOT_SEED_MISSING;
    } else if (c->boot_seed_len < p->seed_min || c->boot_seed_len > p->seed_max) {
        return TOKEN_ERR_BOOT_SEED_SIZE;
    }
    if ((c->present & TOKEN_HAS_NO_SW_MEAS) && !p->no_sw_allowed)
        return TOKEN_ERR_ARG; /* only a caller's struct can hold this: the decoder skips it */
    if (c->present & TOKEN_HAS_NO_SW_MEAS) {
        if (c->present & TOKEN_HAS_SW_COMPS)
            return TOKEN_ERR_SWCOMP_CONFLICT;
    } else {
        if (!(c->present & TOKEN_HAS_SW_COMPS))
            return TOKEN_ERR_SWCOMP_MISSING;
        if (c->sw_count == 0)
            return TOKEN_ERR_SWCOMP_EMPTY;
    }
    if (c->sw_count > TOKEN_MAX_SW_COMPONENTS)
        return TOKEN_ERR_SWCOMP_TOO_MANY;
    for (size_t i = 0; i < c->sw_count; i++) {
        const struct token_sw_component *s = &c->sw[i];
        if (!(s->present & TOKEN_SWC_MEAS_VALUE))
            return TOKEN_ERR_SWCOMP_NO_MEASUREMENT;
        if (!hash_size_ok(s->meas_value_len))
            return TOKEN_ERR_SWCOMP_MEASUREMENT_SIZE;
        if (!(s->present & TOKEN_SWC_SIGNER_ID))
            return TOKEN_ERR_SWCOMP_NO_SIGNER;
        if (!hash_size_ok(s->signer_id_len))
            return TOKEN_ERR_SWCOMP_SIGNER_SIZE;
        if (field_text_len(s->meas_type) < 0 || field_text_len(s->version) < 0 ||
            field_text_len(s->meas_desc) < 0)
            return TOKEN_ERR_TEXT_TOO_LONG;
    }
    if ((c->present & TOKEN_HAS_CERT_REF) && !cert_ref_ok(c->cert_ref, p->cert_ref_forms))
        return TOKEN_ERR_CERT_REF_BAD;
    if (c->present & TOKEN_HAS_VERIF_SERVICE) {
        long n = field_text_len(c->verif_service);
        if (n < 0)
            return TOKEN_ERR_TEXT_TOO_LONG;
        if (n == 0)
            return TOKEN_ERR_VERIF_SERVICE_BAD;
    }
    return TOKEN_OK;
}

/* ---- Encoding ------------------------------------------------------------------------- */

static int put_field_text(struct cbor_enc *e, const char *s)
{
    long n = field_text_len(s);
    if (n < 0)
        return -1;
    cbor_put_text(e, s, (size_t)n);
    return 0;
}

static unsigned popcount(unsigned v)
{
    unsigned n = 0;
    for (; v != 0; v &= v - 1u)
        n++;
    return n;
}

static enum token_err encode_component(struct cbor_enc *e, const struct token_sw_component *s)
{
    unsigned known = TOKEN_SWC_MEAS_TYPE | TOKEN_SWC_MEAS_VALUE | TOKEN_SWC_VERSION |
                     TOKEN_SWC_SIGNER_ID | TOKEN_SWC_MEAS_DESC;
    if (s->meas_value_len > TOKEN_MAX_HASH || s->signer_id_len > TOKEN_MAX_HASH)
        return TOKEN_ERR_ARG;
    cbor_put_map(e, popcount(s->present & known));
    if (s->present & TOKEN_SWC_MEAS_TYPE) {
        cbor_put_uint(e, 1);
        if (put_field_text(e, s->meas_type) != 0)
            return TOKEN_ERR_ARG;
    }
    if (s->present & TOKEN_SWC_MEAS_VALUE) {
        cbor_put_uint(e, 2);
        cbor_put_bytes(e, s->meas_value, s->meas_value_len);
    }
    if (s->present & TOKEN_SWC_VERSION) {
        cbor_put_uint(e, 4);
        if (put_field_text(e, s->version) != 0)
            return TOKEN_ERR_ARG;
    }
    if (s->present & TOKEN_SWC_SIGNER_ID) {
        cbor_put_uint(e, 5);
        cbor_put_bytes(e, s->signer_id, s->signer_id_len);
    }
    if (s->present & TOKEN_SWC_MEAS_DESC) {
        cbor_put_uint(e, 6);
        if (put_field_text(e, s->meas_desc) != 0)
            return TOKEN_ERR_ARG;
    }
    return TOKEN_OK;
}

/* Canonical (RFC 8949 4.2.1) order of two integer map keys: unsigned before negative, then by
 * the encoded argument (for negative keys, -1 - key), shorter before longer, which for
 * integers is the same as smaller before larger. */
static int key_before(int64_t a, int64_t b)
{
    if ((a >= 0) != (b >= 0))
        return a >= 0;
    return a >= 0 ? a < b : a > b;
}

/* Writes one claim's value. */
static enum token_err encode_claim(struct cbor_enc *e, const struct token_claims *c,
                                   enum claim_id id)
{
    enum token_err err = TOKEN_OK;

    switch (id) {
    case CL_NONCE:
        cbor_put_bytes(e, c->nonce, c->nonce_len);
        break;
    case CL_INSTANCE:
        cbor_put_bytes(e, c->instance_id, c->instance_id_len);
        break;
    case CL_PROFILE:
        return put_field_text(e, c->profile) == 0 ? TOKEN_OK : TOKEN_ERR_ARG;
    case CL_BOOT_SEED:
        cbor_put_bytes(e, c->boot_seed, c->boot_seed_len);
        break;
    case CL_CLIENT:
        cbor_put_int(e, c->client_id);
        break;
    case CL_LIFECYCLE:
        cbor_put_uint(e, c->lifecycle);
        break;
    case CL_IMPL:
        cbor_put_bytes(e, c->impl_id, c->impl_id_len);
        break;
    case CL_CERT_REF:
        return put_field_text(e, c->cert_ref) == 0 ? TOKEN_OK : TOKEN_ERR_ARG;
    case CL_SW:
        cbor_put_array(e, c->sw_count);
        for (size_t i = 0; i < c->sw_count && err == TOKEN_OK; i++)
            err = encode_component(e, &c->sw[i]);
        return err;
    case CL_NO_SW:
        cbor_put_uint(e, c->no_sw_measurements);
        break;
    case CL_VSI:
        return put_field_text(e, c->verif_service) == 0 ? TOKEN_OK : TOKEN_ERR_ARG;
    default:
        return TOKEN_ERR_ARG;
    }
    return TOKEN_OK;
}

/* Claims map under c->profile_id's keys, in canonical key order. */
static enum token_err encode_claims(struct cbor_enc *e, const struct token_claims *c)
{
    const struct profile_rules *p;
    enum claim_id order[CL__COUNT];
    size_t n = 0;
    enum token_err err = TOKEN_OK;

    if ((unsigned)c->profile_id >= (unsigned)TOKEN_PROFILE__COUNT)
        return TOKEN_ERR_ARG;
    p = &profiles[c->profile_id];
    if (c->nonce_len > TOKEN_MAX_HASH || c->instance_id_len > TOKEN_INSTANCE_ID_LEN ||
        c->boot_seed_len > TOKEN_BOOT_SEED_MAX || c->impl_id_len > TOKEN_IMPL_ID_LEN ||
        c->sw_count > TOKEN_MAX_SW_COMPONENTS)
        return TOKEN_ERR_ARG;
    for (unsigned i = 0; i < (unsigned)CL__COUNT; i++) {
        if (!(c->present & claim_bits[i]))
            continue;
        if (p->key[i] == 0)
            return TOKEN_ERR_ARG; /* a claim this profile has no key for */
        /* insertion sort by canonical key order (at most CL__COUNT entries) */
        size_t j = n++;
        while (j > 0 && key_before(p->key[i], p->key[order[j - 1]])) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = (enum claim_id)i;
    }
    cbor_put_map(e, n);
    for (size_t i = 0; i < n && err == TOKEN_OK; i++) {
        cbor_put_int(e, p->key[order[i]]);
        err = encode_claim(e, c, order[i]);
    }
    return err;
}

/* The CBOR head of the to-be-signed/MACed structure [context, protected, h'', payload] up to
 * the payload's bstr head (RFC 9052 4.4 and 6.3): head[0..*head_len) then the payload bytes. */
static enum token_err tbs_head(const char *context, const uint8_t *prot, size_t prot_len,
                               size_t payload_len, uint8_t head[32 + COSE_MAX_PROTECTED],
                               size_t *head_len)
{
    struct cbor_enc e;

    if (prot_len > COSE_MAX_PROTECTED)
        return TOKEN_ERR_ARG;
    cbor_enc_init(&e, head, 32 + COSE_MAX_PROTECTED);
    cbor_put_array(&e, 4);
    cbor_put_text(&e, context, strlen(context));
    cbor_put_bytes(&e, prot, prot_len);
    cbor_put_bytes(&e, NULL, 0);
    cbor_put_bytes_head(&e, payload_len);
    return cbor_enc_finish(&e, head_len) == CBOR_OK ? TOKEN_OK : TOKEN_ERR_ARG;
}

/* SHA-256 of Sig_structure = ["Signature1", protected, h'', payload] (RFC 9052 4.4). */
static enum token_err sig_structure_hash(const uint8_t *prot, size_t prot_len,
                                         const uint8_t *payload, size_t payload_len,
                                         uint8_t digest[CRYPTO_SHA256_LEN])
{
    uint8_t head[32 + COSE_MAX_PROTECTED];
    size_t head_len = 0;
    crypto_sha256_ctx ctx;
    enum token_err err = tbs_head("Signature1", prot, prot_len, payload_len, head, &head_len);

    if (err != TOKEN_OK)
        return err;
    if (crypto_sha256_init(&ctx) != 0)
        return TOKEN_ERR_CRYPTO;
    if (crypto_sha256_update(&ctx, head, head_len) != 0 ||
        crypto_sha256_update(&ctx, payload, payload_len) != 0) {
        crypto_sha256_abort(&ctx);
        return TOKEN_ERR_CRYPTO;
    }
    return crypto_sha256_final(&ctx, digest) == 0 ? TOKEN_OK : TOKEN_ERR_CRYPTO;
}

/* HMAC-SHA256 of MAC_structure = ["MAC0", protected, h'', payload] (RFC 9052 6.3). */
static enum token_err mac_structure_tag(const uint8_t *key, size_t key_len, const uint8_t *prot,
                                        size_t prot_len, const uint8_t *payload, size_t payload_len,
                                        uint8_t tag[TOKEN_MAC_LEN])
{
    uint8_t head[32 + COSE_MAX_PROTECTED];
    size_t head_len = 0;
    struct crypto_buf parts[2];
    enum token_err err = tbs_head("MAC0", prot, prot_len, payload_len, head, &head_len);

    if (err != TOKEN_OK)
        return err;
    parts[0].p = head;
    parts[0].len = head_len;
    parts[1].p = payload;
    parts[1].len = payload_len;
    return crypto_hmac_sha256(key, key_len, parts, 2, tag) == 0 ? TOKEN_OK : TOKEN_ERR_CRYPTO;
}

/* Writes the COSE envelope around the claims; the signature or MAC comes from sign() or key. */
static enum token_err encode_envelope(const struct token_claims *c, enum token_envelope env,
                                      crypto_sign_fn sign, void *key_ctx, const uint8_t *key,
                                      size_t key_len, uint8_t *out, size_t cap, size_t *out_len)
{
    struct cbor_enc m, e;
    size_t payload_len = 0, payload_off, total = 0;
    const uint8_t *prot = env == TOKEN_ENVELOPE_MAC0 ? protected_hmac256 : protected_es256;
    size_t prot_len =
        env == TOKEN_ENVELOPE_MAC0 ? sizeof(protected_hmac256) : sizeof(protected_es256);
    size_t tag_len = env == TOKEN_ENVELOPE_MAC0 ? TOKEN_MAC_LEN : CRYPTO_P256_SIG_LEN;
    uint8_t digest[CRYPTO_SHA256_LEN];
    uint8_t sig[CRYPTO_P256_SIG_LEN];
    enum token_err err;

    if (out_len != NULL)
        *out_len = 0;
    if (c == NULL || out == NULL || out_len == NULL ||
        (env == TOKEN_ENVELOPE_SIGN1 && sign == NULL) ||
        (env == TOKEN_ENVELOPE_MAC0 && key == NULL))
        return TOKEN_ERR_ARG;
    if (env == TOKEN_ENVELOPE_MAC0 &&
        (key_len < CRYPTO_HMAC_KEY_MIN || key_len > CRYPTO_HMAC_KEY_MAX))
        return TOKEN_ERR_KEY_SIZE;
    /* pass 1: measure the payload */
    cbor_enc_init(&m, NULL, 0);
    err = encode_claims(&m, c);
    if (err != TOKEN_OK)
        goto out;
    if (cbor_enc_finish(&m, &payload_len) != CBOR_OK) {
        err = TOKEN_ERR_ARG;
        goto out;
    }
    /* pass 2: write */
    cbor_enc_init(&e, out, cap);
    cbor_put_tag(&e, env == TOKEN_ENVELOPE_MAC0 ? COSE_MAC0_TAG : COSE_SIGN1_TAG);
    cbor_put_array(&e, 4);
    cbor_put_bytes(&e, prot, prot_len);
    cbor_put_map(&e, 0);
    cbor_put_bytes_head(&e, payload_len);
    payload_off = e.len;
    err = encode_claims(&e, c);
    if (err != TOKEN_OK)
        goto out;
    if (e.err == CBOR_OK && e.len - payload_off != payload_len) {
        err = TOKEN_ERR_ARG;
        goto out;
    }
    cbor_put_bytes_head(&e, tag_len);
    if (cbor_enc_finish(&e, &total) != CBOR_OK || tag_len > cap - total ||
        total + tag_len > TOKEN_MAX_LEN) {
        err = TOKEN_ERR_NOSPACE;
        goto out;
    }
    if (env == TOKEN_ENVELOPE_MAC0) {
        err = mac_structure_tag(key, key_len, prot, prot_len, out + payload_off, payload_len,
                                out + total);
        if (err != TOKEN_OK)
            goto out;
    } else {
        err = sig_structure_hash(prot, prot_len, out + payload_off, payload_len, digest);
        if (err != TOKEN_OK)
            goto out;
        if (sign(key_ctx, digest, sig) != 0) {
            err = TOKEN_ERR_SIGNER;
            goto out;
        }
        memcpy(out + total, sig, CRYPTO_P256_SIG_LEN);
    }
    *out_len = total + tag_len;
out:
    crypto_wipe(digest, sizeof(digest));
    return err;
}

enum token_err token_encode(const struct token_claims *c, crypto_sign_fn sign, void *key_ctx,
                            uint8_t *out, size_t cap, size_t *out_len)
{
    return encode_envelope(c, TOKEN_ENVELOPE_SIGN1, sign, key_ctx, NULL, 0, out, cap, out_len);
}

enum token_err token_encode_mac0(const struct token_claims *c, const uint8_t *key, size_t key_len,
                                 uint8_t *out, size_t cap, size_t *out_len)
{
    return encode_envelope(c, TOKEN_ENVELOPE_MAC0, NULL, NULL, key, key_len, out, cap, out_len);
}

/* ---- Decoding ------------------------------------------------------------------------- */

struct cose_parts {
    const uint8_t *prot;
    size_t prot_len;
    const uint8_t *payload;
    size_t payload_len;
    const uint8_t *sig;
    size_t sig_len;
};

static enum token_err parse_protected(const uint8_t *p, size_t len, int64_t want_alg)
{
    struct cbor_dec d;
    size_t pairs = 0;
    int have_alg = 0;
    int64_t alg = 0;

    if (len == 0)
        return TOKEN_ERR_ALG;
    cbor_dec_init(&d, p, len);
    if (cbor_get_map(&d, &pairs, COSE_MAX_HEADER_PAIRS) != CBOR_OK)
        return TOKEN_ERR_COSE;
    for (size_t i = 0; i < pairs; i++) {
        struct cbor_item key;
        int64_t label = 0;
        if (cbor_peek(&d, &key) != CBOR_OK)
            return TOKEN_ERR_COSE;
        if (key.major == CBOR_MAJOR_UINT || key.major == CBOR_MAJOR_NINT) {
            if (cbor_get_int(&d, &label) != CBOR_OK)
                return TOKEN_ERR_COSE;
        } else {
            if (cbor_skip(&d) != CBOR_OK)
                return TOKEN_ERR_COSE;
            label = INT64_MIN; /* a text label: never the alg */
        }
        if (label == COSE_ALG_LABEL) {
            if (have_alg)
                return TOKEN_ERR_COSE;
            have_alg = 1;
            if (cbor_get_int(&d, &alg) != CBOR_OK)
                return TOKEN_ERR_ALG; /* text algorithm names are not ES256 */
        } else if (cbor_skip(&d) != CBOR_OK) {
            return TOKEN_ERR_COSE;
        }
    }
    if (cbor_dec_done(&d) != CBOR_OK)
        return TOKEN_ERR_COSE;
    if (!have_alg || alg != want_alg)
        return TOKEN_ERR_ALG;
    return TOKEN_OK;
}

/* Parses a tagged COSE_Sign1 (tag 18) or COSE_Mac0 (tag 17). want: the envelope the caller
 * holds a key for, or TOKEN_ENVELOPE__COUNT for either (decode). *env: what it is. */
static enum token_err parse_cose(const uint8_t *tok, size_t len, enum token_envelope want,
                                 enum token_envelope *env, struct cose_parts *parts)
{
    struct cbor_dec d;
    struct cbor_item it;
    uint64_t tag = 0;
    size_t n = 0, tag_len;

    memset(parts, 0, sizeof(*parts));
    if (tok == NULL)
        return TOKEN_ERR_ARG;
    if (len > TOKEN_MAX_LEN)
        return TOKEN_ERR_NOSPACE;
    cbor_dec_init(&d, tok, len);
    if (cbor_get_tag(&d, &tag) != CBOR_OK || (tag != COSE_SIGN1_TAG && tag != COSE_MAC0_TAG))
        return TOKEN_ERR_COSE;
    *env = tag == COSE_MAC0_TAG ? TOKEN_ENVELOPE_MAC0 : TOKEN_ENVELOPE_SIGN1;
    if (want != TOKEN_ENVELOPE__COUNT && want != *env)
        return TOKEN_ERR_ENVELOPE;
    tag_len = *env == TOKEN_ENVELOPE_MAC0 ? TOKEN_MAC_LEN : CRYPTO_P256_SIG_LEN;
    if (cbor_get_array(&d, &n, 4) != CBOR_OK || n != 4)
        return TOKEN_ERR_COSE;
    if (cbor_get_bytes(&d, &parts->prot, &parts->prot_len, COSE_MAX_PROTECTED) != CBOR_OK)
        return TOKEN_ERR_COSE;
    if (cbor_peek(&d, &it) != CBOR_OK || it.major != CBOR_MAJOR_MAP ||
        it.val > COSE_MAX_HEADER_PAIRS || cbor_skip(&d) != CBOR_OK)
        return TOKEN_ERR_COSE;
    if (cbor_get_bytes(&d, &parts->payload, &parts->payload_len, TOKEN_MAX_LEN) != CBOR_OK)
        return TOKEN_ERR_COSE;
    if (cbor_get_bytes(&d, &parts->sig, &parts->sig_len, tag_len) != CBOR_OK ||
        parts->sig_len != tag_len)
        return TOKEN_ERR_COSE;
    if (cbor_dec_done(&d) != CBOR_OK)
        return TOKEN_ERR_COSE;
    return parse_protected(parts->prot, parts->prot_len,
                           *env == TOKEN_ENVELOPE_MAC0 ? COSE_ALG_HMAC256 : COSE_ALG_ES256);
}

/* Maps a CBOR error on a known claim: wrong type, over the limit, or not well-formed. */
static enum token_err claim_err(enum cbor_err e, enum token_err on_type, enum token_err on_range)
{
    if (e == CBOR_ERR_TYPE)
        return on_type;
    if (e == CBOR_ERR_RANGE)
        return on_range;
    return TOKEN_ERR_CLAIMS;
}

static enum token_err get_hash(struct cbor_dec *d, uint8_t *dst, size_t *dst_len, size_t max,
                               enum token_err on_type, enum token_err on_range)
{
    const uint8_t *p;
    size_t n;
    enum cbor_err e = cbor_get_bytes(d, &p, &n, max);
    if (e != CBOR_OK)
        return claim_err(e, on_type, on_range);
    memcpy(dst, p, n);
    *dst_len = n;
    return TOKEN_OK;
}

static enum token_err get_text_field(struct cbor_dec *d, char dst[TOKEN_MAX_TEXT + 1],
                                     enum token_err on_type, enum token_err on_range)
{
    const char *p;
    size_t n;
    enum cbor_err e = cbor_get_text(d, &p, &n, TOKEN_MAX_TEXT);
    if (e != CBOR_OK)
        return claim_err(e, on_type, on_range);
    if (memchr(p, '\0', n) != NULL)
        return on_type; /* an embedded NUL would hide the rest from every reader */
    memcpy(dst, p, n);
    dst[n] = '\0';
    return TOKEN_OK;
}

static enum token_err parse_component(struct cbor_dec *d, struct token_sw_component *s)
{
    size_t pairs = 0;
    enum token_err err = TOKEN_OK;
    enum cbor_err ce = cbor_get_map(d, &pairs, SWC_MAX_PAIRS);

    if (ce != CBOR_OK)
        return ce == CBOR_ERR_TYPE || ce == CBOR_ERR_RANGE ? TOKEN_ERR_SWCOMP_BAD
                                                           : TOKEN_ERR_CLAIMS;
    for (size_t i = 0; i < pairs && err == TOKEN_OK; i++) {
        int64_t key = 0;
        unsigned bit = 0;
        ce = cbor_get_int(d, &key);
        if (ce != CBOR_OK)
            return ce == CBOR_ERR_TYPE || ce == CBOR_ERR_RANGE ? TOKEN_ERR_SWCOMP_BAD
                                                               : TOKEN_ERR_CLAIMS;
        switch (key) {
        case 1:
            bit = TOKEN_SWC_MEAS_TYPE;
            break;
        case 2:
            bit = TOKEN_SWC_MEAS_VALUE;
            break;
        case 4:
            bit = TOKEN_SWC_VERSION;
            break;
        case 5:
            bit = TOKEN_SWC_SIGNER_ID;
            break;
        case 6:
            bit = TOKEN_SWC_MEAS_DESC;
            break;
        default:
            break;
        }
        if (bit == 0) {
            if (cbor_skip(d) != CBOR_OK)
                return TOKEN_ERR_CLAIMS;
            continue;
        }
        if (s->present & bit)
            return TOKEN_ERR_SWCOMP_BAD;
        s->present |= bit;
        switch (bit) {
        case TOKEN_SWC_MEAS_TYPE:
            err = get_text_field(d, s->meas_type, TOKEN_ERR_SWCOMP_BAD, TOKEN_ERR_TEXT_TOO_LONG);
            break;
        case TOKEN_SWC_MEAS_VALUE:
            err = get_hash(d, s->meas_value, &s->meas_value_len, TOKEN_MAX_HASH,
                           TOKEN_ERR_SWCOMP_BAD, TOKEN_ERR_SWCOMP_MEASUREMENT_SIZE);
            break;
        case TOKEN_SWC_VERSION:
            err = get_text_field(d, s->version, TOKEN_ERR_SWCOMP_BAD, TOKEN_ERR_TEXT_TOO_LONG);
            break;
        case TOKEN_SWC_SIGNER_ID:
            err = get_hash(d, s->signer_id, &s->signer_id_len, TOKEN_MAX_HASH, TOKEN_ERR_SWCOMP_BAD,
                           TOKEN_ERR_SWCOMP_SIGNER_SIZE);
            break;
        default:
            err = get_text_field(d, s->meas_desc, TOKEN_ERR_SWCOMP_BAD, TOKEN_ERR_TEXT_TOO_LONG);
            break;
        }
    }
    return err;
}

static enum token_err parse_claim(struct cbor_dec *d, enum claim_id id, struct token_claims *c)
{
    enum cbor_err ce;
    int64_t v = 0;
    uint64_t u = 0;
    size_t n = 0;
    enum token_err err = TOKEN_OK;

    switch (id) {
    case CL_NONCE:
        return get_hash(d, c->nonce, &c->nonce_len, TOKEN_MAX_HASH, TOKEN_ERR_CLAIM_TYPE,
                        TOKEN_ERR_NONCE_SIZE);
    case CL_INSTANCE:
        return get_hash(d, c->instance_id, &c->instance_id_len, TOKEN_INSTANCE_ID_LEN,
                        TOKEN_ERR_CLAIM_TYPE, TOKEN_ERR_INSTANCE_BAD);
    case CL_PROFILE:
        return get_text_field(d, c->profile, TOKEN_ERR_CLAIM_TYPE, TOKEN_ERR_PROFILE_UNKNOWN);
    case CL_BOOT_SEED:
        return get_hash(d, c->boot_seed, &c->boot_seed_len, TOKEN_BOOT_SEED_MAX,
                        TOKEN_ERR_CLAIM_TYPE, TOKEN_ERR_BOOT_SEED_SIZE);
    case CL_CLIENT:
        ce = cbor_get_int(d, &v);
        if (ce != CBOR_OK)
            return claim_err(ce, TOKEN_ERR_CLAIM_TYPE, TOKEN_ERR_CLIENT_RANGE);
        if (v < INT32_MIN || v > INT32_MAX)
            return TOKEN_ERR_CLIENT_RANGE;
        c->client_id = (int32_t)v;
        return TOKEN_OK;
    case CL_LIFECYCLE:
        ce = cbor_get_uint(d, &u);
        if (ce != CBOR_OK)
            return claim_err(ce, TOKEN_ERR_CLAIM_TYPE, TOKEN_ERR_LIFECYCLE_BAD);
        if (u > 0xffffu)
            return TOKEN_ERR_LIFECYCLE_BAD;
        c->lifecycle = (uint32_t)u;
        return TOKEN_OK;
    case CL_IMPL:
        return get_hash(d, c->impl_id, &c->impl_id_len, TOKEN_IMPL_ID_LEN, TOKEN_ERR_CLAIM_TYPE,
                        TOKEN_ERR_IMPL_SIZE);
    case CL_CERT_REF:
        return get_text_field(d, c->cert_ref, TOKEN_ERR_CLAIM_TYPE, TOKEN_ERR_CERT_REF_BAD);
    case CL_VSI:
        return get_text_field(d, c->verif_service, TOKEN_ERR_CLAIM_TYPE, TOKEN_ERR_TEXT_TOO_LONG);
    case CL_NO_SW:
        ce = cbor_get_uint(d, &u);
        if (ce != CBOR_OK)
            return claim_err(ce, TOKEN_ERR_CLAIM_TYPE, TOKEN_ERR_CLAIM_TYPE);
        if (u > UINT32_MAX)
            return TOKEN_ERR_CLAIM_TYPE;
        c->no_sw_measurements = (uint32_t)u;
        return TOKEN_OK;
    case CL_SW:
        ce = cbor_get_array(d, &n, TOKEN_MAX_SW_COMPONENTS);
        if (ce != CBOR_OK)
            return claim_err(ce, TOKEN_ERR_CLAIM_TYPE, TOKEN_ERR_SWCOMP_TOO_MANY);
        c->sw_count = n;
        for (size_t i = 0; i < n && err == TOKEN_OK; i++)
            err = parse_component(d, &c->sw[i]);
        return err;
    default:
        return cbor_skip(d) == CBOR_OK ? TOKEN_OK : TOKEN_ERR_CLAIMS;
    }
}

/* Reads a map key: *is_int and *k for an integer key that fits int64, otherwise skips the key
 * (text keys are allowed by EAT and used by no PSA profile; integers beyond int64 are not
 * ours). TOKEN_ERR_CLAIMS when the key is not well-formed. */
static enum token_err get_claim_key(struct cbor_dec *d, int *is_int, int64_t *k)
{
    struct cbor_item key;

    *is_int = 0;
    if (cbor_peek(d, &key) != CBOR_OK)
        return TOKEN_ERR_CLAIMS;
    if ((key.major == CBOR_MAJOR_UINT || key.major == CBOR_MAJOR_NINT) &&
        cbor_get_int(d, k) == CBOR_OK) {
        *is_int = 1;
        return TOKEN_OK;
    }
    return cbor_skip(d) == CBOR_OK ? TOKEN_OK : TOKEN_ERR_CLAIMS;
}

/* First pass over the claims map: which profile's key table applies (see token.h). */
static enum token_err find_profile(const uint8_t *p, size_t len, enum token_profile *out)
{
    static const struct {
        int64_t key;
        enum token_profile first, last; /* the profiles this key may name */
    } profile_keys[] = {
        {265, TOKEN_PROFILE_RFC9783, TOKEN_PROFILE_PSA_2_0_0},
        {LEGACY_KEY_FIRST, TOKEN_PROFILE_PSA_IOT_1, TOKEN_PROFILE_PSA_IOT_1},
    };
    struct cbor_dec d;
    size_t pairs = 0;
    int found = -1, legacy = 0;
    enum token_profile prof = TOKEN_PROFILE__COUNT;

    cbor_dec_init(&d, p, len);
    if (cbor_get_map(&d, &pairs, TOKEN_MAX_CLAIMS) != CBOR_OK)
        return TOKEN_ERR_CLAIMS;
    for (size_t i = 0; i < pairs; i++) {
        int is_int = 0, which = -1;
        int64_t k = 0;
        enum token_err err = get_claim_key(&d, &is_int, &k);
        if (err != TOKEN_OK)
            return err;
        for (size_t j = 0; is_int && j < sizeof(profile_keys) / sizeof(profile_keys[0]); j++)
            if (k == profile_keys[j].key)
                which = (int)j;
        if (is_int && k < LEGACY_KEY_FIRST && k >= LEGACY_KEY_LAST)
            legacy = 1;
        if (which < 0) {
            if (cbor_skip(&d) != CBOR_OK)
                return TOKEN_ERR_CLAIMS;
            continue;
        }
        if (found == which)
            return TOKEN_ERR_CLAIM_DUPLICATE;
        if (found >= 0)
            return TOKEN_ERR_PROFILE_CONFLICT;
        found = which;
        {
            const char *t;
            size_t n = 0;
            enum cbor_err ce = cbor_get_text(&d, &t, &n, TOKEN_MAX_TEXT);
            if (ce != CBOR_OK)
                return claim_err(ce, TOKEN_ERR_CLAIM_TYPE, TOKEN_ERR_PROFILE_UNKNOWN);
            for (unsigned q = (unsigned)profile_keys[which].first;
                 q <= (unsigned)profile_keys[which].last; q++)
                if (strlen(profiles[q].id) == n && memcmp(profiles[q].id, t, n) == 0)
                    prof = (enum token_profile)q;
            if (prof == TOKEN_PROFILE__COUNT)
                return TOKEN_ERR_PROFILE_UNKNOWN;
        }
    }
    if (cbor_dec_done(&d) != CBOR_OK)
        return TOKEN_ERR_CLAIMS;
    if (found < 0) {
        /* IoT 1's profile claim is optional: its other keys say which table applies */
        if (!legacy)
            return TOKEN_ERR_PROFILE_MISSING;
        prof = TOKEN_PROFILE_PSA_IOT_1;
    }
    *out = prof;
    return TOKEN_OK;
}

static enum token_err parse_claims(const uint8_t *p, size_t len, struct token_claims *c)
{
    struct cbor_dec d;
    size_t pairs = 0;
    const struct profile_rules *rules;
    enum token_err err = find_profile(p, len, &c->profile_id);

    if (err != TOKEN_OK)
        return err;
    rules = &profiles[c->profile_id];
    cbor_dec_init(&d, p, len);
    if (cbor_get_map(&d, &pairs, TOKEN_MAX_CLAIMS) != CBOR_OK)
        return TOKEN_ERR_CLAIMS;
    for (size_t i = 0; i < pairs && err == TOKEN_OK; i++) {
        int is_int = 0;
        int64_t k = 0;
        enum claim_id id;
        err = get_claim_key(&d, &is_int, &k);
        if (err != TOKEN_OK)
            return err;
        id = is_int ? claim_of_key(rules, k) : CL__COUNT;
        if (id != CL__COUNT) {
            if (c->present & claim_bits[id])
                return TOKEN_ERR_CLAIM_DUPLICATE;
            c->present |= claim_bits[id];
        }
        err = parse_claim(&d, id, c);
    }
    if (err == TOKEN_OK && cbor_dec_done(&d) != CBOR_OK)
        err = TOKEN_ERR_CLAIMS;
    return err;
}

enum token_err token_decode(const uint8_t *tok, size_t len, struct token_claims *out)
{
    struct cose_parts parts;
    enum token_envelope env = TOKEN_ENVELOPE_SIGN1;
    enum token_err err;

    if (out == NULL)
        return TOKEN_ERR_ARG;
    memset(out, 0, sizeof(*out));
    err = parse_cose(tok, len, TOKEN_ENVELOPE__COUNT, &env, &parts);
    if (err == TOKEN_OK)
        err = parse_claims(parts.payload, parts.payload_len, out);
    if (err == TOKEN_OK)
        err = token_check_claims(out);
    if (err == TOKEN_OK)
        out->envelope = env;
    else
        memset(out, 0, sizeof(*out));
    return err;
}

/* After the signature or MAC: claims, rules, nonce. */
static enum token_err verified_claims(const struct cose_parts *parts, const uint8_t *expected_nonce,
                                      size_t expected_nonce_len, struct token_claims *c)
{
    enum token_err err = parse_claims(parts->payload, parts->payload_len, c);
    if (err != TOKEN_OK)
        return err;
    err = token_check_claims(c);
    if (err != TOKEN_OK)
        return err;
    if (c->present & TOKEN_HAS_NO_SW_MEAS)
        return TOKEN_ERR_NO_MEASUREMENTS; /* see token.h: verified claims have components */
    if (expected_nonce != NULL && (expected_nonce_len != c->nonce_len ||
                                   crypto_memcmp_ct(expected_nonce, c->nonce, c->nonce_len) != 0))
        return TOKEN_ERR_NONCE_MISMATCH;
    return TOKEN_OK;
}

enum token_err token_verify(const uint8_t *tok, size_t len, const uint8_t pub[CRYPTO_P256_PUB_LEN],
                            const uint8_t *expected_nonce, size_t expected_nonce_len,
                            struct token_claims *out)
{
    struct token_claims local;
    /* (only the address: cleared by the memset below) */
    /* cppcheck-suppress uninitvar */
    struct token_claims *c = out != NULL ? out : &local;
    struct cose_parts parts;
    enum token_envelope env = TOKEN_ENVELOPE_SIGN1;
    uint8_t digest[CRYPTO_SHA256_LEN];
    enum token_err err;

    memset(c, 0, sizeof(*c));
    if (pub == NULL || (expected_nonce == NULL && expected_nonce_len != 0)) {
        err = TOKEN_ERR_ARG;
        goto out;
    }
    err = parse_cose(tok, len, TOKEN_ENVELOPE_SIGN1, &env, &parts);
    if (err != TOKEN_OK)
        goto out;
    err = sig_structure_hash(parts.prot, parts.prot_len, parts.payload, parts.payload_len, digest);
    if (err != TOKEN_OK)
        goto out;
    if (crypto_p256_verify(pub, digest, parts.sig) != 0) {
        err = TOKEN_ERR_SIGNATURE;
        goto out;
    }
    err = verified_claims(&parts, expected_nonce, expected_nonce_len, c);
    if (err == TOKEN_OK)
        c->envelope = TOKEN_ENVELOPE_SIGN1;
out:
    if (err != TOKEN_OK)
        memset(c, 0, sizeof(*c));
    return err;
}

enum token_err token_verify_mac0(const uint8_t *tok, size_t len, const uint8_t *key, size_t key_len,
                                 const uint8_t *expected_nonce, size_t expected_nonce_len,
                                 struct token_claims *out)
{
    struct token_claims local;
    /* (only the address: cleared by the memset below) */
    /* cppcheck-suppress uninitvar */
    struct token_claims *c = out != NULL ? out : &local;
    struct cose_parts parts;
    enum token_envelope env = TOKEN_ENVELOPE_MAC0;
    uint8_t tag[TOKEN_MAC_LEN];
    enum token_err err;

    memset(c, 0, sizeof(*c));
    memset(tag, 0, sizeof(tag));
    if (key == NULL || (expected_nonce == NULL && expected_nonce_len != 0)) {
        err = TOKEN_ERR_ARG;
        goto out;
    }
    if (key_len < CRYPTO_HMAC_KEY_MIN || key_len > CRYPTO_HMAC_KEY_MAX) {
        err = TOKEN_ERR_KEY_SIZE;
        goto out;
    }
    err = parse_cose(tok, len, TOKEN_ENVELOPE_MAC0, &env, &parts);
    if (err != TOKEN_OK)
        goto out;
    err = mac_structure_tag(key, key_len, parts.prot, parts.prot_len, parts.payload,
                            parts.payload_len, tag);
    if (err != TOKEN_OK)
        goto out;
    if (crypto_memcmp_ct(tag, parts.sig, TOKEN_MAC_LEN) != 0) {
        err = TOKEN_ERR_MAC;
        goto out;
    }
    err = verified_claims(&parts, expected_nonce, expected_nonce_len, c);
    if (err == TOKEN_OK)
        c->envelope = TOKEN_ENVELOPE_MAC0;
out:
    crypto_wipe(tag, sizeof(tag));
    if (err != TOKEN_OK)
        memset(c, 0, sizeof(*c));
    return err;
}
