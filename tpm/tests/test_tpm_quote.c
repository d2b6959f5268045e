/* Quote blob parser and verifier with fabricated blobs: a software P-256 key signs
 * hand-built TPMS_ATTEST structures the way a TPM's restricted AK would.
 * With an argument DIR it also writes the fuzz seed corpus there. */
#include "check.h"
#include "fleetgw/quote.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/param_build.h>

struct fab {
    uint32_t magic;
    uint16_t type;
    const uint8_t *nonce;
    size_t nonce_len;
    uint16_t bank_alg;
    uint32_t mask;
    int digest_tamper; /* flip a bit of the pcrDigest */
    uint16_t sig_hash;
};

static size_t put16(uint8_t *p, unsigned v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
    return 2;
}

static size_t put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
    return 4;
}

/* PCR i of the fabricated TPM holds the byte (i + 1) repeated. */
static void pcr_value(uint8_t idx, size_t size, uint8_t *out)
{
    memset(out, idx + 1, size);
}

static size_t make_attest(const struct fab *f, uint8_t *a)
{
    size_t n = 0, dsize = quote_hash_size(f->bank_alg);
    uint8_t digest[64];
    unsigned dlen = 0;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    const EVP_MD *alg = f->sig_hash == QUOTE_ALG_SHA384 ? EVP_sha384() : EVP_sha256();

    n += put32(a + n, f->magic);
    n += put16(a + n, f->type);
    n += put16(a + n, 34); /* qualifiedSigner: a sha256 name */
    a[n] = 0x00;
    a[n + 1] = 0x0b;
    memset(a + n + 2, 0xab, 32);
    n += 34;
    n += put16(a + n, (unsigned)f->nonce_len);
    memcpy(a + n, f->nonce, f->nonce_len);
    n += f->nonce_len;
    memset(a + n, 0x11, 17 + 8); /* clockInfo + firmwareVersion */
    n += 17 + 8;
    n += put32(a + n, 1);
    n += put16(a + n, f->bank_alg);
    a[n++] = 3;
    a[n++] = (uint8_t)f->mask;
    a[n++] = (uint8_t)(f->mask >> 8);
    a[n++] = (uint8_t)(f->mask >> 16);
    EVP_DigestInit_ex(md, alg, NULL);
    for (uint8_t i = 0; i < 24; i++) {
        if (f->mask & (1u << i)) {
            uint8_t v[64];
            pcr_value(i, dsize, v);
            EVP_DigestUpdate(md, v, dsize);
        }
    }
    EVP_DigestFinal_ex(md, digest, &dlen);
    EVP_MD_CTX_free(md);
    if (f->digest_tamper)
        digest[0] ^= 1;
    n += put16(a + n, dlen);
    memcpy(a + n, digest, dlen);
    n += dlen;
    return n;
}

/* Marshalled TPMT_SIGNATURE (ECDSA) over attest with key. */
static size_t make_sig(EVP_PKEY *key, uint16_t hash, const uint8_t *attest, size_t alen,
                       uint8_t *out)
{
    uint8_t der[128];
    size_t derlen = sizeof(der), n = 0;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_DigestSignInit(md, NULL, hash == QUOTE_ALG_SHA384 ? EVP_sha384() : EVP_sha256(), NULL, key);
    EVP_DigestSign(md, der, &derlen, attest, alen);
    EVP_MD_CTX_free(md);
    const unsigned char *p = der;
    ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)derlen);
    const BIGNUM *r, *s;
    ECDSA_SIG_get0(sig, &r, &s);
    n += put16(out + n, QUOTE_ALG_ECDSA);
    n += put16(out + n, hash);
    n += put16(out + n, 32);
    BN_bn2binpad(r, out + n, 32);
    n += 32;
    n += put16(out + n, 32);
    BN_bn2binpad(s, out + n, 32);
    n += 32;
    ECDSA_SIG_free(sig);
    return n;
}

static size_t pcr_list(uint16_t alg, uint32_t mask, struct quote_pcr *out)
{
    size_t n = 0;
    for (uint8_t i = 0; i < 24; i++) {
        if (mask & (1u << i)) {
            out[n].alg = alg;
            out[n].index = i;
            out[n].size = (uint8_t)quote_hash_size(alg);
            pcr_value(i, out[n].size, out[n].value);
            n++;
        }
    }
    return n;
}

static const uint8_t nonce[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

static size_t make_blob(EVP_PKEY *key, const struct fab *f, struct quote_pcr *pcrs, size_t npcrs,
                        uint8_t *out, size_t cap)
{
    uint8_t attest[QUOTE_MAX_ATTEST], sig[QUOTE_MAX_SIG];
    size_t alen = make_attest(f, attest);
    size_t slen = make_sig(key, f->sig_hash, attest, alen, sig);
    size_t len = 0;
    CHECK(quote_blob_encode(attest, alen, sig, slen, pcrs, npcrs, out, cap, &len) == QUOTE_OK);
    return len;
}

static struct fab good(void)
{
    struct fab f = {.magic = QUOTE_TPM_GENERATED,
                    .type = QUOTE_ST_ATTEST_QUOTE,
                    .nonce = nonce,
                    .nonce_len = sizeof(nonce),
                    .bank_alg = QUOTE_ALG_SHA256,
                    .mask = (1u << 0) | (1u << 1) | (1u << 7),
                    .sig_hash = QUOTE_ALG_SHA256};
    return f;
}

static EVP_PKEY *p256(void)
{
    return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
}

/* The throwaway corpus key: private scalar 0x42..42, so that the fuzz target can hold its
 * public key (fuzz_quote.c) and valid seeds get past the signature to the PCR checks. */
static EVP_PKEY *corpus_key(uint8_t pub[65])
{
    uint8_t d[32];
    EVP_PKEY *key = NULL;
    memset(d, 0x42, sizeof(d));
    memset(pub, 0, 65);
    EC_GROUP *g = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
    BIGNUM *bn = BN_bin2bn(d, sizeof(d), NULL);
    EC_POINT *pt = g != NULL ? EC_POINT_new(g) : NULL;
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    if (pt != NULL && bn != NULL && bld != NULL && ctx != NULL &&
        EC_POINT_mul(g, pt, bn, NULL, NULL, NULL) == 1 &&
        EC_POINT_point2oct(g, pt, POINT_CONVERSION_UNCOMPRESSED, pub, 65, NULL) == 65 &&
        OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) == 1 &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, bn) == 1 &&
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub, 65) == 1 &&
        (params = OSSL_PARAM_BLD_to_param(bld)) != NULL && EVP_PKEY_fromdata_init(ctx) == 1)
        (void)EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_KEYPAIR, params);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    EVP_PKEY_CTX_free(ctx);
    EC_POINT_free(pt);
    BN_free(bn);
    EC_GROUP_free(g);
    return key;
}

static void write_corpus(const char *dir, const char *name, const uint8_t *p, size_t n)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return;
    fwrite(p, 1, n, f);
    fclose(f);
}

int main(int argc, char **argv)
{
    uint8_t corpus_pub[65];
    EVP_PKEY *ak = corpus_key(corpus_pub), *other = p256();
    static uint8_t blob[QUOTE_MAX_BLOB], blob2[QUOTE_MAX_BLOB];
    struct quote_pcr pcrs[QUOTE_MAX_PCRS];
    struct quote_attest info;
    struct quote_blob parsed;
    struct fab f = good();
    size_t np = pcr_list(f.bank_alg, f.mask, pcrs);
    size_t len = make_blob(ak, &f, pcrs, np, blob, sizeof(blob));
    const char *corpus = argc > 1 ? argv[1] : NULL;

    CHECK(ak != NULL && other != NULL);
    if (corpus) {
        printf("corpus key public point: ");
        for (size_t i = 0; i < sizeof(corpus_pub); i++)
            printf("%02x", corpus_pub[i]);
        printf("\n");
    }
    /* A genuine quote verifies and reports what it attests. */
    CHECK_EQ_INT(quote_verify(blob, len, ak, nonce, sizeof(nonce), &info), QUOTE_OK);
    CHECK_EQ_INT(info.nbanks, 1);
    CHECK_EQ_INT(info.banks[0].alg, QUOTE_ALG_SHA256);
    CHECK_EQ_INT(info.extra_data_len, sizeof(nonce));
    CHECK_EQ_INT(quote_blob_parse(blob, len, &parsed), QUOTE_OK);
    CHECK_EQ_INT(parsed.npcrs, 3);
    CHECK_EQ_INT(parsed.pcrs[2].index, 7);
    if (corpus)
        write_corpus(corpus, "valid-sha256-0-1-7", blob, len);

    /* Another nonce, another key, a shorter nonce. */
    uint8_t nonce2[16];
    memcpy(nonce2, nonce, sizeof(nonce2));
    nonce2[15] ^= 0x80;
    CHECK_EQ_INT(quote_verify(blob, len, ak, nonce2, sizeof(nonce2), NULL), QUOTE_ERR_NONCE);
    CHECK_EQ_INT(quote_verify(blob, len, ak, nonce, 15, NULL), QUOTE_ERR_NONCE);
    CHECK_EQ_INT(quote_verify(blob, len, other, nonce, sizeof(nonce), NULL), QUOTE_ERR_SIGNATURE);

    /* A PCR value changed in the blob: no longer matches the signed digest. */
    memcpy(blob2, blob, len);
    blob2[len - 1] ^= 0x01; /* last byte of PCR 7's value */
    CHECK_EQ_INT(quote_verify(blob2, len, ak, nonce, sizeof(nonce), NULL), QUOTE_ERR_PCR_DIGEST);
    if (corpus)
        write_corpus(corpus, "tampered-pcr", blob2, len);

    /* A byte of the signed attest changed: the signature fails (or the parse). */
    for (size_t off = 8; off < 8 + 20; off++) {
        memcpy(blob2, blob, len);
        blob2[off] ^= 0x40;
        CHECK(quote_verify(blob2, len, ak, nonce, sizeof(nonce), NULL) != QUOTE_OK);
    }

    /* PCR set mismatches: one missing, one extra, one twice. */
    size_t l2 = make_blob(ak, &f, pcrs, np - 1, blob2, sizeof(blob2));
    CHECK_EQ_INT(quote_verify(blob2, l2, ak, nonce, sizeof(nonce), NULL), QUOTE_ERR_PCR_SET);
    struct quote_pcr extra[QUOTE_MAX_PCRS];
    size_t ne = pcr_list(f.bank_alg, f.mask | (1u << 9), extra);
    l2 = make_blob(ak, &f, extra, ne, blob2, sizeof(blob2));
    CHECK_EQ_INT(quote_verify(blob2, l2, ak, nonce, sizeof(nonce), NULL), QUOTE_ERR_PCR_SET);
    memcpy(extra, pcrs, sizeof(pcrs[0]) * np);
    extra[np] = pcrs[0];
    l2 = make_blob(ak, &f, extra, np + 1, blob2, sizeof(blob2));
    CHECK_EQ_INT(quote_verify(blob2, l2, ak, nonce, sizeof(nonce), NULL), QUOTE_ERR_PCR_SET);

    /* The TPM's digest itself differs from the values (e.g. PCR extended after reading). */
    struct fab g = good();
    g.digest_tamper = 1;
    l2 = make_blob(ak, &g, pcrs, np, blob2, sizeof(blob2));
    CHECK_EQ_INT(quote_verify(blob2, l2, ak, nonce, sizeof(nonce), NULL), QUOTE_ERR_PCR_DIGEST);

    /* Not TPM-generated, not a quote. */
    g = good();
    g.magic = 0x12345678;
    l2 = make_blob(ak, &g, pcrs, np, blob2, sizeof(blob2));
    CHECK_EQ_INT(quote_verify(blob2, l2, ak, nonce, sizeof(nonce), NULL), QUOTE_ERR_MAGIC);
    if (corpus)
        write_corpus(corpus, "bad-magic", blob2, l2);
    g = good();
    g.type = 0x8017; /* TPM_ST_ATTEST_CERTIFY: its attested part is not parsed */
    l2 = make_blob(ak, &g, pcrs, np, blob2, sizeof(blob2));
    CHECK(quote_verify(blob2, l2, ak, nonce, sizeof(nonce), NULL) != QUOTE_OK);

    /* SHA-384 signature scheme verifies; a SHA-1 one is refused. */
    g = good();
    g.sig_hash = QUOTE_ALG_SHA384;
    l2 = make_blob(ak, &g, pcrs, np, blob2, sizeof(blob2));
    CHECK_EQ_INT(quote_verify(blob2, l2, ak, nonce, sizeof(nonce), NULL), QUOTE_OK);
    g.sig_hash = QUOTE_ALG_SHA1;
    l2 = make_blob(ak, &g, pcrs, np, blob2, sizeof(blob2));
    CHECK_EQ_INT(quote_verify(blob2, l2, ak, nonce, sizeof(nonce), NULL), QUOTE_ERR_UNSUPPORTED);

    /* Every truncation and a trailing byte are malformed, never a crash. */
    for (size_t cut = 0; cut < len; cut++)
        CHECK_EQ_INT(quote_verify(blob, cut, ak, nonce, sizeof(nonce), NULL), QUOTE_ERR_FORMAT);
    memcpy(blob2, blob, len);
    blob2[len] = 0;
    CHECK_EQ_INT(quote_verify(blob2, len + 1, ak, nonce, sizeof(nonce), NULL), QUOTE_ERR_FORMAT);
    /* Lengths beyond the hard maxima. */
    memcpy(blob2, blob, len);
    blob2[6] = 0xff; /* attest_len high byte */
    CHECK_EQ_INT(quote_verify(blob2, len, ak, nonce, sizeof(nonce), NULL), QUOTE_ERR_FORMAT);
    memcpy(blob2, blob, len);
    blob2[4] = 0;
    blob2[5] = 2; /* version */
    CHECK_EQ_INT(quote_verify(blob2, len, ak, nonce, sizeof(nonce), NULL), QUOTE_ERR_FORMAT);
    if (corpus) {
        write_corpus(corpus, "truncated", blob, len / 2);
        write_corpus(corpus, "empty", blob, 0);
    }
    /* The attest parser alone: a selection count above the maximum. */
    {
        uint8_t attest[QUOTE_MAX_ATTEST];
        struct quote_attest a;
        size_t alen = make_attest(&f, attest);
        CHECK_EQ_INT(quote_attest_parse(attest, alen, &a), QUOTE_OK);
        size_t count_off = 4 + 2 + 2 + 34 + 2 + sizeof(nonce) + 17 + 8;
        attest[count_off + 3] = 9;
        CHECK_EQ_INT(quote_attest_parse(attest, alen, &a), QUOTE_ERR_FORMAT);
        for (size_t cut = 0; cut < alen; cut++)
            CHECK_EQ_INT(quote_attest_parse(attest, cut, &a), QUOTE_ERR_FORMAT);
    }

    /* Selection parsing of names. */
    CHECK_EQ_INT(quote_hash_from_name("sha256"), QUOTE_ALG_SHA256);
    CHECK_EQ_INT(quote_hash_from_name("md5"), 0);
    CHECK(quote_result_str(QUOTE_ERR_NONCE) != NULL);

    EVP_PKEY_free(ak);
    EVP_PKEY_free(other);
    return check_finish();
}
