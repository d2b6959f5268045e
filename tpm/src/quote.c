/* TPM2 quote blob parser and verifier (OpenSSL only). See fleetgw/quote.h for the format. */
#include "fleetgw/quote.h"

#include <string.h>

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>

/* A read cursor over untrusted bytes: every read checks the remaining length first. */
struct rd {
    const uint8_t *p;
    size_t left;
};

static int rd_bytes(struct rd *r, size_t n, const uint8_t **ret)
{
    if (n > r->left)
        return -1;
    *ret = r->p;
    r->p += n;
    r->left -= n;
    return 0;
}

static int rd_u8(struct rd *r, uint8_t *v)
{
    const uint8_t *b;
    if (rd_bytes(r, 1, &b) < 0)
        return -1;
    *v = b[0];
    return 0;
}

static int rd_u16(struct rd *r, uint16_t *v)
{
    const uint8_t *b;
    if (rd_bytes(r, 2, &b) < 0)
        return -1;
    *v = (uint16_t)((unsigned)b[0] << 8 | b[1]);
    return 0;
}

static int rd_u32(struct rd *r, uint32_t *v)
{
    const uint8_t *b;
    if (rd_bytes(r, 4, &b) < 0)
        return -1;
    *v = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
    return 0;
}

static int rd_u64(struct rd *r, uint64_t *v)
{
    uint32_t hi, lo;
    if (rd_u32(r, &hi) < 0 || rd_u32(r, &lo) < 0)
        return -1;
    *v = (uint64_t)hi << 32 | lo;
    return 0;
}

/* A TPM2B: u16 size (at most max) then the bytes. */
static int rd_tpm2b(struct rd *r, size_t max, const uint8_t **ret, size_t *ret_len)
{
    uint16_t n;
    if (rd_u16(r, &n) < 0 || n > max)
        return -1;
    if (rd_bytes(r, n, ret) < 0)
        return -1;
    *ret_len = n;
    return 0;
}

size_t quote_hash_size(uint16_t alg)
{
    switch (alg) {
    case QUOTE_ALG_SHA1:
        return 20;
    case QUOTE_ALG_SHA256:
        return 32;
    case QUOTE_ALG_SHA384:
        return 48;
    case QUOTE_ALG_SHA512:
        return 64;
    default:
        return 0;
    }
}

uint16_t quote_hash_from_name(const char *name)
{
    if (name == NULL)
        return 0;
    if (strcmp(name, "sha1") == 0)
        return QUOTE_ALG_SHA1;
    if (strcmp(name, "sha256") == 0)
        return QUOTE_ALG_SHA256;
    if (strcmp(name, "sha384") == 0)
        return QUOTE_ALG_SHA384;
    if (strcmp(name, "sha512") == 0)
        return QUOTE_ALG_SHA512;
    return 0;
}

const char *quote_hash_name(uint16_t alg)
{
    switch (alg) {
    case QUOTE_ALG_SHA1:
        return "sha1";
    case QUOTE_ALG_SHA256:
        return "sha256";
    case QUOTE_ALG_SHA384:
        return "sha384";
    case QUOTE_ALG_SHA512:
        return "sha512";
    default:
        return NULL;
    }
}

static const EVP_MD *hash_md(uint16_t alg)
{
    switch (alg) {
    case QUOTE_ALG_SHA1:
        return EVP_sha1();
    case QUOTE_ALG_SHA256:
        return EVP_sha256();
    case QUOTE_ALG_SHA384:
        return EVP_sha384();
    case QUOTE_ALG_SHA512:
        return EVP_sha512();
    default:
        return NULL;
    }
}

enum quote_result quote_attest_parse(const uint8_t *p, size_t len, struct quote_attest *out)
{
    struct rd r = {p, len};
    uint32_t count;

    if (out == NULL)
        return QUOTE_ERR_ARG;
    memset(out, 0, sizeof(*out));
    if (p == NULL || len > QUOTE_MAX_ATTEST)
        return QUOTE_ERR_FORMAT;
    if (rd_u32(&r, &out->magic) < 0 || rd_u16(&r, &out->type) < 0)
        return QUOTE_ERR_FORMAT;
    if (rd_tpm2b(&r, QUOTE_MAX_NAME, &out->signer_name, &out->signer_name_len) < 0 ||
        rd_tpm2b(&r, QUOTE_MAX_NONCE, &out->extra_data, &out->extra_data_len) < 0)
        return QUOTE_ERR_FORMAT;
    if (rd_u64(&r, &out->clock) < 0 || rd_u32(&r, &out->reset_count) < 0 ||
        rd_u32(&r, &out->restart_count) < 0 || rd_u8(&r, &out->safe) < 0 ||
        rd_u64(&r, &out->firmware_version) < 0)
        return QUOTE_ERR_FORMAT;
    /* Only a quote's attested part is understood; other types end here and are reported by
     * the verifier as the wrong type. */
    if (out->type != QUOTE_ST_ATTEST_QUOTE)
        return QUOTE_OK;
    if (rd_u32(&r, &count) < 0 || count > QUOTE_MAX_BANKS)
        return QUOTE_ERR_FORMAT;
    for (uint32_t i = 0; i < count; i++) {
        struct quote_pcr_bank *b = &out->banks[i];
        const uint8_t *sel;
        if (rd_u16(&r, &b->alg) < 0 || rd_u8(&r, &b->size_of_select) < 0 ||
            b->size_of_select > QUOTE_PCR_SELECT_MAX)
            return QUOTE_ERR_FORMAT;
        if (rd_bytes(&r, b->size_of_select, &sel) < 0)
            return QUOTE_ERR_FORMAT;
        memcpy(b->select, sel, b->size_of_select);
        out->nbanks = i + 1;
    }
    if (rd_tpm2b(&r, QUOTE_MAX_DIGEST, &out->pcr_digest, &out->pcr_digest_len) < 0)
        return QUOTE_ERR_FORMAT;
    if (r.left != 0)
        return QUOTE_ERR_FORMAT;
    return QUOTE_OK;
}

static enum quote_result parse_signature(const uint8_t *p, size_t len, struct quote_blob *out)
{
    struct rd r = {p, len};
    if (rd_u16(&r, &out->sig_alg) < 0 || rd_u16(&r, &out->sig_hash) < 0)
        return QUOTE_ERR_FORMAT;
    if (out->sig_alg != QUOTE_ALG_ECDSA)
        return r.left <= QUOTE_MAX_SIG ? QUOTE_OK : QUOTE_ERR_FORMAT; /* judged by the verifier */
    if (rd_tpm2b(&r, QUOTE_MAX_ECC_PARAM, &out->sig_r, &out->sig_r_len) < 0 ||
        rd_tpm2b(&r, QUOTE_MAX_ECC_PARAM, &out->sig_s, &out->sig_s_len) < 0)
        return QUOTE_ERR_FORMAT;
    if (r.left != 0)
        return QUOTE_ERR_FORMAT;
    return QUOTE_OK;
}

enum quote_result quote_blob_parse(const uint8_t *p, size_t len, struct quote_blob *out)
{
    struct rd r = {p, len};
    const uint8_t *magic, *sig;
    uint16_t version, n, sig_len;
    enum quote_result res;

    if (out == NULL)
        return QUOTE_ERR_ARG;
    memset(out, 0, sizeof(*out));
    if (p == NULL || len > QUOTE_MAX_BLOB)
        return QUOTE_ERR_FORMAT;
    if (rd_bytes(&r, 4, &magic) < 0 || memcmp(magic, QUOTE_MAGIC, 4) != 0)
        return QUOTE_ERR_FORMAT;
    if (rd_u16(&r, &version) < 0 || version != QUOTE_VERSION)
        return QUOTE_ERR_FORMAT;
    if (rd_u16(&r, &n) < 0 || n == 0 || n > QUOTE_MAX_ATTEST || rd_bytes(&r, n, &out->attest) < 0)
        return QUOTE_ERR_FORMAT;
    out->attest_len = n;
    if (rd_u16(&r, &sig_len) < 0 || sig_len == 0 || sig_len > QUOTE_MAX_SIG ||
        rd_bytes(&r, sig_len, &sig) < 0)
        return QUOTE_ERR_FORMAT;
    res = parse_signature(sig, sig_len, out);
    if (res != QUOTE_OK)
        return res;
    if (rd_u16(&r, &n) < 0 || n > QUOTE_MAX_PCRS)
        return QUOTE_ERR_FORMAT;
    for (uint16_t i = 0; i < n; i++) {
        struct quote_pcr *e = &out->pcrs[i];
        const uint8_t *v;
        uint16_t size;
        size_t want;
        if (rd_u16(&r, &e->alg) < 0 || rd_u8(&r, &e->index) < 0 || rd_u16(&r, &size) < 0)
            return QUOTE_ERR_FORMAT;
        want = quote_hash_size(e->alg);
        if (want == 0 || size != want || e->index >= QUOTE_PCR_COUNT)
            return QUOTE_ERR_FORMAT;
        if (rd_bytes(&r, size, &v) < 0)
            return QUOTE_ERR_FORMAT;
        memcpy(e->value, v, size);
        e->size = (uint8_t)size;
        out->npcrs = (size_t)i + 1;
    }
    if (r.left != 0)
        return QUOTE_ERR_FORMAT;
    return QUOTE_OK;
}

static int put(uint8_t *out, size_t cap, size_t *pos, const void *src, size_t n)
{
    if (n > cap - *pos)
        return -1;
    memcpy(out + *pos, src, n);
    *pos += n;
    return 0;
}

static int put_u16(uint8_t *out, size_t cap, size_t *pos, size_t v)
{
    uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    return v > 0xffff ? -1 : put(out, cap, pos, b, 2);
}

enum quote_result quote_blob_encode(const uint8_t *attest, size_t attest_len, const uint8_t *sig,
                                    size_t sig_len, const struct quote_pcr *pcrs, size_t npcrs,
                                    uint8_t *out, size_t cap, size_t *ret_len)
{
    size_t pos = 0;
    if (attest == NULL || sig == NULL || out == NULL || ret_len == NULL || attest_len == 0 ||
        attest_len > QUOTE_MAX_ATTEST || sig_len == 0 || sig_len > QUOTE_MAX_SIG ||
        npcrs > QUOTE_MAX_PCRS || (npcrs > 0 && pcrs == NULL))
        return QUOTE_ERR_ARG;
    if (put(out, cap, &pos, QUOTE_MAGIC, 4) < 0 || put_u16(out, cap, &pos, QUOTE_VERSION) < 0 ||
        put_u16(out, cap, &pos, attest_len) < 0 || put(out, cap, &pos, attest, attest_len) < 0 ||
        put_u16(out, cap, &pos, sig_len) < 0 || put(out, cap, &pos, sig, sig_len) < 0 ||
        put_u16(out, cap, &pos, npcrs) < 0)
        return QUOTE_ERR_ARG;
    for (size_t i = 0; i < npcrs; i++) {
        const struct quote_pcr *e = &pcrs[i];
        uint8_t idx = e->index;
        if (quote_hash_size(e->alg) != e->size || e->index >= QUOTE_PCR_COUNT)
            return QUOTE_ERR_ARG;
        if (put_u16(out, cap, &pos, e->alg) < 0 || put(out, cap, &pos, &idx, 1) < 0 ||
            put_u16(out, cap, &pos, e->size) < 0 || put(out, cap, &pos, e->value, e->size) < 0)
            return QUOTE_ERR_ARG;
    }
    *ret_len = pos;
    return QUOTE_OK;
}

static enum quote_result check_signature(const struct quote_blob *b, EVP_PKEY *ak)
{
    enum quote_result res = QUOTE_ERR_SIGNATURE;
    ECDSA_SIG *sig = NULL;
    BIGNUM *r = NULL, *s = NULL;
    unsigned char *der = NULL;
    EVP_MD_CTX *md = NULL;
    const EVP_MD *alg;
    int der_len;

    if (b->sig_alg != QUOTE_ALG_ECDSA ||
        (b->sig_hash != QUOTE_ALG_SHA256 && b->sig_hash != QUOTE_ALG_SHA384))
        return QUOTE_ERR_UNSUPPORTED;
    if (EVP_PKEY_get_base_id(ak) != EVP_PKEY_EC)
        return QUOTE_ERR_UNSUPPORTED;
    alg = hash_md(b->sig_hash);
    sig = ECDSA_SIG_new();
    r = BN_bin2bn(b->sig_r, (int)b->sig_r_len, NULL);
    s = BN_bin2bn(b->sig_s, (int)b->sig_s_len, NULL);
    if (sig == NULL || r == NULL || s == NULL || ECDSA_SIG_set0(sig, r, s) != 1)
        goto out;
    r = s = NULL; /* owned by sig now */
    der_len = i2d_ECDSA_SIG(sig, &der);
    if (der_len <= 0)
        goto out;
    md = EVP_MD_CTX_new();
    if (md == NULL || EVP_DigestVerifyInit(md, NULL, alg, NULL, ak) != 1)
        goto out;
    if (EVP_DigestVerify(md, der, (size_t)der_len, b->attest, b->attest_len) == 1)
        res = QUOTE_OK;
out:
    EVP_MD_CTX_free(md);
    OPENSSL_free(der);
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(sig);
    return res;
}

/* The blob's PCR entries must be exactly the quoted selection; the values, in selection
 * order (bank by bank, PCR index ascending), hash to pcrDigest. */
static enum quote_result check_pcrs(const struct quote_blob *b, const struct quote_attest *a)
{
    enum quote_result res = QUOTE_ERR_PCR_DIGEST;
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;
    size_t selected = 0;
    const EVP_MD *alg = hash_md(b->sig_hash);
    EVP_MD_CTX *md = EVP_MD_CTX_new();

    if (md == NULL || alg == NULL || EVP_DigestInit_ex(md, alg, NULL) != 1) {
        res = QUOTE_ERR_ARG;
        goto out;
    }
    for (size_t i = 0; i < a->nbanks; i++) {
        const struct quote_pcr_bank *bank = &a->banks[i];
        for (unsigned idx = 0; idx < (unsigned)bank->size_of_select * 8u; idx++) {
            if (!(bank->select[idx / 8] & (1u << (idx % 8))))
                continue;
            const struct quote_pcr *found = NULL;
            for (size_t k = 0; k < b->npcrs; k++) {
                if (b->pcrs[k].alg == bank->alg && b->pcrs[k].index == idx) {
                    if (found != NULL) { /* the same PCR twice */
                        res = QUOTE_ERR_PCR_SET;
                        goto out;
                    }
                    found = &b->pcrs[k];
                }
            }
            if (found == NULL) {
                res = QUOTE_ERR_PCR_SET;
                goto out;
            }
            selected++;
            if (EVP_DigestUpdate(md, found->value, found->size) != 1) {
                res = QUOTE_ERR_ARG;
                goto out;
            }
        }
    }
    if (selected != b->npcrs) { /* values for PCRs the TPM did not quote */
        res = QUOTE_ERR_PCR_SET;
        goto out;
    }
    if (EVP_DigestFinal_ex(md, digest, &dlen) != 1) {
        res = QUOTE_ERR_ARG;
        goto out;
    }
    if (dlen == a->pcr_digest_len && CRYPTO_memcmp(digest, a->pcr_digest, dlen) == 0)
        res = QUOTE_OK;
out:
    EVP_MD_CTX_free(md);
    return res;
}

enum quote_result quote_verify(const uint8_t *blob, size_t len, EVP_PKEY *ak, const uint8_t *nonce,
                               size_t nonce_len, struct quote_attest *info)
{
    struct quote_blob b;
    struct quote_attest a;
    enum quote_result res;

    if (info != NULL)
        memset(info, 0, sizeof(*info));
    if (blob == NULL || ak == NULL || (nonce == NULL && nonce_len > 0))
        return QUOTE_ERR_ARG;
    res = quote_blob_parse(blob, len, &b);
    if (res != QUOTE_OK)
        return res;
    res = quote_attest_parse(b.attest, b.attest_len, &a);
    if (res != QUOTE_OK)
        return res;
    if (a.magic != QUOTE_TPM_GENERATED)
        return QUOTE_ERR_MAGIC;
    if (a.type != QUOTE_ST_ATTEST_QUOTE)
        return QUOTE_ERR_TYPE;
    res = check_signature(&b, ak);
    if (res != QUOTE_OK)
        return res;
    if (a.extra_data_len != nonce_len ||
        (nonce_len > 0 && CRYPTO_memcmp(a.extra_data, nonce, nonce_len) != 0))
        return QUOTE_ERR_NONCE;
    res = check_pcrs(&b, &a);
    if (res != QUOTE_OK)
        return res;
    if (info != NULL)
        *info = a;
    return QUOTE_OK;
}

const char *quote_result_str(enum quote_result r)
{
    switch (r) {
    case QUOTE_OK:
        return "quote verified";
    case QUOTE_ERR_FORMAT:
        return "malformed quote blob or TPMS_ATTEST";
    case QUOTE_ERR_MAGIC:
        return "TPMS_ATTEST magic is not TPM_GENERATED_VALUE (not made by a TPM)";
    case QUOTE_ERR_TYPE:
        return "TPMS_ATTEST is not a quote (type is not TPM_ST_ATTEST_QUOTE)";
    case QUOTE_ERR_UNSUPPORTED:
        return "unsupported signature or hash algorithm (ECDSA with SHA-256/384 and an EC "
               "attestation key expected)";
    case QUOTE_ERR_SIGNATURE:
        return "signature does not verify with the attestation key";
    case QUOTE_ERR_NONCE:
        return "nonce mismatch: the quote was not made for this challenge";
    case QUOTE_ERR_PCR_SET:
        return "PCR values in the blob are not exactly the PCRs the TPM quoted";
    case QUOTE_ERR_PCR_DIGEST:
        return "PCR values do not match the quoted PCR digest";
    case QUOTE_ERR_ARG:
        return "invalid argument";
    }
    return "unknown result";
}
