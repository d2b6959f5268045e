/* PSA attestation token (RFC 9783) in COSE_Sign1 (RFC 9052) with ES256. See fleetgw/token.h. */
#include "fleetgw/token.h"

#include <string.h>

#include "fleetgw/cbor.h"

#define COSE_SIGN1_TAG        18u
#define COSE_ALG_LABEL        1
#define COSE_ALG_ES256        (-7)
#define COSE_MAX_PROTECTED    64u /* bytes of the protected header bstr */
#define COSE_MAX_HEADER_PAIRS 8u
#define SWC_MAX_PAIRS         8u

static const uint8_t protected_es256[] = {0xa1, 0x01, 0x26}; /* {1: -7} */

static const char *const err_names[TOKEN_ERR__COUNT] = {
    [TOKEN_OK] = "ok",
    [TOKEN_ERR_ARG] = "invalid argument",
    [TOKEN_ERR_NOSPACE] = "buffer too small or token too large",
    [TOKEN_ERR_SIGNER] = "signing callback failed",
    [TOKEN_ERR_CRYPTO] = "hash computation failed",
    [TOKEN_ERR_COSE] = "bad COSE_Sign1 structure",
    [TOKEN_ERR_ALG] = "algorithm missing or not ES256",
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
    [TOKEN_ERR_BOOT_SEED_SIZE] = "bad boot seed size (8..32 bytes)",
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
    [TOKEN_ERR_CERT_REF_BAD] = "bad certification reference",
    [TOKEN_ERR_VERIF_SERVICE_BAD] = "bad verification service indicator",
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

static int cert_ref_ok(const char *s)
{
    long n = field_text_len(s);
    if (n != 13 && n != 19)
        return 0;
    for (long i = 0; i < n; i++) {
        if (i == 13) {
            if (s[i] != '-' && s[i] != '_') /* RFC 9783: [0-9]{13}[-_][0-9]{5} */
                return 0;
        } else if (s[i] < '0' || s[i] > '9') {
            return 0;
        }
    }
    return 1;
}

enum token_err token_check_claims(const struct token_claims *c)
{
    if (c == NULL)
        return TOKEN_ERR_ARG;
    if (!(c->present & TOKEN_HAS_PROFILE))
        return TOKEN_ERR_PROFILE_MISSING;
    if (field_text_len(c->profile) < 0 || strcmp(c->profile, TOKEN_PROFILE_2023) != 0)
        return TOKEN_ERR_PROFILE_UNKNOWN;
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
    if ((c->present & TOKEN_HAS_BOOT_SEED) &&
        (c->boot_seed_len < TOKEN_BOOT_SEED_MIN || c->boot_seed_len > TOKEN_BOOT_SEED_MAX))
        return TOKEN_ERR_BOOT_SEED_SIZE;
    if (!(c->present & TOKEN_HAS_SW_COMPS))
        return TOKEN_ERR_SWCOMP_MISSING;
    if (c->sw_count == 0)
        return TOKEN_ERR_SWCOMP_EMPTY;
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
    if ((c->present & TOKEN_HAS_CERT_REF) && !cert_ref_ok(c->cert_ref))
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

/* Claims map in deterministic order (integer keys ascending). */
static enum token_err encode_claims(struct cbor_enc *e, const struct token_claims *c)
{
    unsigned known = TOKEN_HAS_NONCE | TOKEN_HAS_INSTANCE_ID | TOKEN_HAS_PROFILE |
                     TOKEN_HAS_BOOT_SEED | TOKEN_HAS_CLIENT_ID | TOKEN_HAS_LIFECYCLE |
                     TOKEN_HAS_IMPL_ID | TOKEN_HAS_CERT_REF | TOKEN_HAS_SW_COMPS |
                     TOKEN_HAS_VERIF_SERVICE;
    enum token_err err = TOKEN_OK;

    if (c->nonce_len > TOKEN_MAX_HASH || c->instance_id_len > TOKEN_INSTANCE_ID_LEN ||
        c->boot_seed_len > TOKEN_BOOT_SEED_MAX || c->impl_id_len > TOKEN_IMPL_ID_LEN ||
        c->sw_count > TOKEN_MAX_SW_COMPONENTS)
        return TOKEN_ERR_ARG;
    cbor_put_map(e, popcount(c->present & known));
    if (c->present & TOKEN_HAS_NONCE) {
        cbor_put_uint(e, TOKEN_KEY_NONCE);
        cbor_put_bytes(e, c->nonce, c->nonce_len);
    }
    if (c->present & TOKEN_HAS_INSTANCE_ID) {
        cbor_put_uint(e, TOKEN_KEY_INSTANCE_ID);
        cbor_put_bytes(e, c->instance_id, c->instance_id_len);
    }
    if (c->present & TOKEN_HAS_PROFILE) {
        cbor_put_uint(e, TOKEN_KEY_PROFILE);
        if (put_field_text(e, c->profile) != 0)
            return TOKEN_ERR_ARG;
    }
    if (c->present & TOKEN_HAS_BOOT_SEED) {
        cbor_put_uint(e, TOKEN_KEY_BOOT_SEED);
        cbor_put_bytes(e, c->boot_seed, c->boot_seed_len);
    }
    if (c->present & TOKEN_HAS_CLIENT_ID) {
        cbor_put_uint(e, TOKEN_KEY_CLIENT_ID);
        cbor_put_int(e, c->client_id);
    }
    if (c->present & TOKEN_HAS_LIFECYCLE) {
        cbor_put_uint(e, TOKEN_KEY_LIFECYCLE);
        cbor_put_uint(e, c->lifecycle);
    }
    if (c->present & TOKEN_HAS_IMPL_ID) {
        cbor_put_uint(e, TOKEN_KEY_IMPL_ID);
        cbor_put_bytes(e, c->impl_id, c->impl_id_len);
    }
    if (c->present & TOKEN_HAS_CERT_REF) {
        cbor_put_uint(e, TOKEN_KEY_CERT_REF);
        if (put_field_text(e, c->cert_ref) != 0)
            return TOKEN_ERR_ARG;
    }
    if (c->present & TOKEN_HAS_SW_COMPS) {
        cbor_put_uint(e, TOKEN_KEY_SW_COMPS);
        cbor_put_array(e, c->sw_count);
        for (size_t i = 0; i < c->sw_count && err == TOKEN_OK; i++)
            err = encode_component(e, &c->sw[i]);
        if (err != TOKEN_OK)
            return err;
    }
    if (c->present & TOKEN_HAS_VERIF_SERVICE) {
        cbor_put_uint(e, TOKEN_KEY_VERIF_SERVICE);
        if (put_field_text(e, c->verif_service) != 0)
            return TOKEN_ERR_ARG;
    }
    return TOKEN_OK;
}

/* SHA-256 of Sig_structure = ["Signature1", protected, h'', payload] (RFC 9052 4.4). */
static enum token_err sig_structure_hash(const uint8_t *prot, size_t prot_len,
                                         const uint8_t *payload, size_t payload_len,
                                         uint8_t digest[CRYPTO_SHA256_LEN])
{
    uint8_t head[16 + COSE_MAX_PROTECTED];
    uint8_t tail[9];
    struct cbor_enc e, t;
    size_t head_len = 0, tail_len = 0;
    crypto_sha256_ctx ctx;
    enum token_err err = TOKEN_ERR_CRYPTO;

    cbor_enc_init(&e, head, sizeof(head));
    cbor_put_array(&e, 4);
    cbor_put_text(&e, "Signature1", 10);
    cbor_put_bytes(&e, prot, prot_len);
    cbor_put_bytes(&e, NULL, 0);
    cbor_enc_init(&t, tail, sizeof(tail));
    cbor_put_bytes_head(&t, payload_len);
    if (cbor_enc_finish(&e, &head_len) != CBOR_OK || cbor_enc_finish(&t, &tail_len) != CBOR_OK)
        return TOKEN_ERR_ARG;
    if (crypto_sha256_init(&ctx) != 0)
        return TOKEN_ERR_CRYPTO;
    if (crypto_sha256_update(&ctx, head, head_len) != 0 ||
        crypto_sha256_update(&ctx, tail, tail_len) != 0 ||
        crypto_sha256_update(&ctx, payload, payload_len) != 0) {
        crypto_sha256_abort(&ctx);
        goto out;
    }
    if (crypto_sha256_final(&ctx, digest) != 0)
        goto out;
    err = TOKEN_OK;
out:
    return err;
}

enum token_err token_encode(const struct token_claims *c, crypto_sign_fn sign, void *key_ctx,
                            uint8_t *out, size_t cap, size_t *out_len)
{
    struct cbor_enc m, e;
    size_t payload_len = 0, payload_off, total = 0;
    uint8_t digest[CRYPTO_SHA256_LEN];
    uint8_t sig[CRYPTO_P256_SIG_LEN];
    enum token_err err;

    if (out_len != NULL)
        *out_len = 0;
    if (c == NULL || sign == NULL || out == NULL || out_len == NULL)
        return TOKEN_ERR_ARG;
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
    cbor_put_tag(&e, COSE_SIGN1_TAG);
    cbor_put_array(&e, 4);
    cbor_put_bytes(&e, protected_es256, sizeof(protected_es256));
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
    cbor_put_bytes_head(&e, CRYPTO_P256_SIG_LEN);
    if (cbor_enc_finish(&e, &total) != CBOR_OK || CRYPTO_P256_SIG_LEN > cap - total ||
        total + CRYPTO_P256_SIG_LEN > TOKEN_MAX_LEN) {
        err = TOKEN_ERR_NOSPACE;
        goto out;
    }
    err = sig_structure_hash(protected_es256, sizeof(protected_es256), out + payload_off,
                             payload_len, digest);
    if (err != TOKEN_OK)
        goto out;
    if (sign(key_ctx, digest, sig) != 0) {
        err = TOKEN_ERR_SIGNER;
        goto out;
    }
    memcpy(out + total, sig, CRYPTO_P256_SIG_LEN);
    *out_len = total + CRYPTO_P256_SIG_LEN;
out:
    crypto_wipe(digest, sizeof(digest));
    return err;
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

static enum token_err parse_protected(const uint8_t *p, size_t len)
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
    if (!have_alg || alg != COSE_ALG_ES256)
        return TOKEN_ERR_ALG;
    return TOKEN_OK;
}

static enum token_err parse_cose(const uint8_t *tok, size_t len, struct cose_parts *parts)
{
    struct cbor_dec d;
    struct cbor_item it;
    uint64_t tag = 0;
    size_t n = 0;

    memset(parts, 0, sizeof(*parts));
    if (tok == NULL)
        return TOKEN_ERR_ARG;
    if (len > TOKEN_MAX_LEN)
        return TOKEN_ERR_NOSPACE;
    cbor_dec_init(&d, tok, len);
    if (cbor_get_tag(&d, &tag) != CBOR_OK || tag != COSE_SIGN1_TAG)
        return TOKEN_ERR_COSE;
    if (cbor_get_array(&d, &n, 4) != CBOR_OK || n != 4)
        return TOKEN_ERR_COSE;
    if (cbor_get_bytes(&d, &parts->prot, &parts->prot_len, COSE_MAX_PROTECTED) != CBOR_OK)
        return TOKEN_ERR_COSE;
    if (cbor_peek(&d, &it) != CBOR_OK || it.major != CBOR_MAJOR_MAP ||
        it.val > COSE_MAX_HEADER_PAIRS || cbor_skip(&d) != CBOR_OK)
        return TOKEN_ERR_COSE;
    if (cbor_get_bytes(&d, &parts->payload, &parts->payload_len, TOKEN_MAX_LEN) != CBOR_OK)
        return TOKEN_ERR_COSE;
    if (cbor_get_bytes(&d, &parts->sig, &parts->sig_len, CRYPTO_P256_SIG_LEN) != CBOR_OK ||
        parts->sig_len != CRYPTO_P256_SIG_LEN)
        return TOKEN_ERR_COSE;
    if (cbor_dec_done(&d) != CBOR_OK)
        return TOKEN_ERR_COSE;
    return parse_protected(parts->prot, parts->prot_len);
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

static enum token_err parse_claim(struct cbor_dec *d, int64_t key, struct token_claims *c)
{
    enum cbor_err ce;
    int64_t v = 0;
    uint64_t u = 0;
    size_t n = 0;
    enum token_err err = TOKEN_OK;

    switch (key) {
    case TOKEN_KEY_NONCE:
        return get_hash(d, c->nonce, &c->nonce_len, TOKEN_MAX_HASH, TOKEN_ERR_CLAIM_TYPE,
                        TOKEN_ERR_NONCE_SIZE);
    case TOKEN_KEY_INSTANCE_ID:
        return get_hash(d, c->instance_id, &c->instance_id_len, TOKEN_INSTANCE_ID_LEN,
                        TOKEN_ERR_CLAIM_TYPE, TOKEN_ERR_INSTANCE_BAD);
    case TOKEN_KEY_PROFILE:
        return get_text_field(d, c->profile, TOKEN_ERR_CLAIM_TYPE, TOKEN_ERR_PROFILE_UNKNOWN);
    case TOKEN_KEY_BOOT_SEED:
        return get_hash(d, c->boot_seed, &c->boot_seed_len, TOKEN_BOOT_SEED_MAX,
                        TOKEN_ERR_CLAIM_TYPE, TOKEN_ERR_BOOT_SEED_SIZE);
    case TOKEN_KEY_CLIENT_ID:
        ce = cbor_get_int(d, &v);
        if (ce != CBOR_OK)
            return claim_err(ce, TOKEN_ERR_CLAIM_TYPE, TOKEN_ERR_CLIENT_RANGE);
        if (v < INT32_MIN || v > INT32_MAX)
            return TOKEN_ERR_CLIENT_RANGE;
        c->client_id = (int32_t)v;
        return TOKEN_OK;
    case TOKEN_KEY_LIFECYCLE:
        ce = cbor_get_uint(d, &u);
        if (ce != CBOR_OK)
            return claim_err(ce, TOKEN_ERR_CLAIM_TYPE, TOKEN_ERR_LIFECYCLE_BAD);
        if (u > 0xffffu)
            return TOKEN_ERR_LIFECYCLE_BAD;
        c->lifecycle = (uint32_t)u;
        return TOKEN_OK;
    case TOKEN_KEY_IMPL_ID:
        return get_hash(d, c->impl_id, &c->impl_id_len, TOKEN_IMPL_ID_LEN, TOKEN_ERR_CLAIM_TYPE,
                        TOKEN_ERR_IMPL_SIZE);
    case TOKEN_KEY_CERT_REF:
        return get_text_field(d, c->cert_ref, TOKEN_ERR_CLAIM_TYPE, TOKEN_ERR_CERT_REF_BAD);
    case TOKEN_KEY_VERIF_SERVICE:
        return get_text_field(d, c->verif_service, TOKEN_ERR_CLAIM_TYPE, TOKEN_ERR_TEXT_TOO_LONG);
    case TOKEN_KEY_SW_COMPS:
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

static unsigned claim_bit(int64_t key)
{
    switch (key) {
    case TOKEN_KEY_NONCE:
        return TOKEN_HAS_NONCE;
    case TOKEN_KEY_INSTANCE_ID:
        return TOKEN_HAS_INSTANCE_ID;
    case TOKEN_KEY_PROFILE:
        return TOKEN_HAS_PROFILE;
    case TOKEN_KEY_BOOT_SEED:
        return TOKEN_HAS_BOOT_SEED;
    case TOKEN_KEY_CLIENT_ID:
        return TOKEN_HAS_CLIENT_ID;
    case TOKEN_KEY_LIFECYCLE:
        return TOKEN_HAS_LIFECYCLE;
    case TOKEN_KEY_IMPL_ID:
        return TOKEN_HAS_IMPL_ID;
    case TOKEN_KEY_CERT_REF:
        return TOKEN_HAS_CERT_REF;
    case TOKEN_KEY_SW_COMPS:
        return TOKEN_HAS_SW_COMPS;
    case TOKEN_KEY_VERIF_SERVICE:
        return TOKEN_HAS_VERIF_SERVICE;
    default:
        return 0;
    }
}

static enum token_err parse_claims(const uint8_t *p, size_t len, struct token_claims *c)
{
    struct cbor_dec d;
    size_t pairs = 0;
    enum token_err err = TOKEN_OK;
    enum cbor_err ce;

    cbor_dec_init(&d, p, len);
    ce = cbor_get_map(&d, &pairs, TOKEN_MAX_CLAIMS);
    if (ce != CBOR_OK)
        return TOKEN_ERR_CLAIMS;
    for (size_t i = 0; i < pairs && err == TOKEN_OK; i++) {
        struct cbor_item key;
        int64_t k = 0;
        unsigned bit;
        if (cbor_peek(&d, &key) != CBOR_OK)
            return TOKEN_ERR_CLAIMS;
        if (key.major != CBOR_MAJOR_UINT && key.major != CBOR_MAJOR_NINT) {
            /* text-keyed claims are allowed by EAT and not used by PSA: skip */
            if (cbor_skip(&d) != CBOR_OK || cbor_skip(&d) != CBOR_OK)
                return TOKEN_ERR_CLAIMS;
            continue;
        }
        if (cbor_get_int(&d, &k) != CBOR_OK) {
            if (cbor_skip(&d) != CBOR_OK || cbor_skip(&d) != CBOR_OK)
                return TOKEN_ERR_CLAIMS;
            continue; /* an integer key beyond int64: not ours */
        }
        bit = claim_bit(k);
        if (bit != 0) {
            if (c->present & bit)
                return TOKEN_ERR_CLAIM_DUPLICATE;
            c->present |= bit;
        }
        err = parse_claim(&d, k, c);
    }
    if (err == TOKEN_OK && cbor_dec_done(&d) != CBOR_OK)
        err = TOKEN_ERR_CLAIMS;
    return err;
}

enum token_err token_decode(const uint8_t *tok, size_t len, struct token_claims *out)
{
    struct cose_parts parts;
    enum token_err err;

    if (out == NULL)
        return TOKEN_ERR_ARG;
    memset(out, 0, sizeof(*out));
    err = parse_cose(tok, len, &parts);
    if (err == TOKEN_OK)
        err = parse_claims(parts.payload, parts.payload_len, out);
    if (err == TOKEN_OK)
        err = token_check_claims(out);
    if (err != TOKEN_OK)
        memset(out, 0, sizeof(*out));
    return err;
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
    uint8_t digest[CRYPTO_SHA256_LEN];
    enum token_err err;

    memset(c, 0, sizeof(*c));
    if (pub == NULL || (expected_nonce == NULL && expected_nonce_len != 0)) {
        err = TOKEN_ERR_ARG;
        goto out;
    }
    err = parse_cose(tok, len, &parts);
    if (err != TOKEN_OK)
        goto out;
    err = sig_structure_hash(parts.prot, parts.prot_len, parts.payload, parts.payload_len, digest);
    if (err != TOKEN_OK)
        goto out;
    if (crypto_p256_verify(pub, digest, parts.sig) != 0) {
        err = TOKEN_ERR_SIGNATURE;
        goto out;
    }
    err = parse_claims(parts.payload, parts.payload_len, c);
    if (err != TOKEN_OK)
        goto out;
    err = token_check_claims(c);
    if (err != TOKEN_OK)
        goto out;
    if (expected_nonce != NULL && (expected_nonce_len != c->nonce_len ||
                                   crypto_memcmp_ct(expected_nonce, c->nonce, c->nonce_len) != 0)) {
        err = TOKEN_ERR_NONCE_MISMATCH;
        goto out;
    }
out:
    if (err != TOKEN_OK)
        memset(c, 0, sizeof(*c));
    return err;
}
