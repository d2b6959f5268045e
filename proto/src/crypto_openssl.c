/* OpenSSL 3 back-end of fleetgw/crypto.h (daemon and host tools). */
#include "fleetgw/crypto.h"

#include <pthread.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

static EVP_MD_CTX **ctx_slot(crypto_sha256_ctx *ctx)
{
    return (EVP_MD_CTX **)&ctx->ptr;
}

int crypto_sha256_init(crypto_sha256_ctx *ctx)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (md == NULL)
        return -1;
    if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(md);
        return -1;
    }
    *ctx_slot(ctx) = md;
    return 0;
}

int crypto_sha256_update(crypto_sha256_ctx *ctx, const uint8_t *data, size_t len)
{
    EVP_MD_CTX *md = *ctx_slot(ctx);
    if (md == NULL || (data == NULL && len > 0))
        return -1;
    return EVP_DigestUpdate(md, data, len) == 1 ? 0 : -1;
}

int crypto_sha256_final(crypto_sha256_ctx *ctx, uint8_t out[CRYPTO_SHA256_LEN])
{
    EVP_MD_CTX *md = *ctx_slot(ctx);
    if (md == NULL)
        return -1;
    unsigned int n = 0;
    int ok = EVP_DigestFinal_ex(md, out, &n) == 1 && n == CRYPTO_SHA256_LEN;
    EVP_MD_CTX_free(md);
    *ctx_slot(ctx) = NULL;
    return ok ? 0 : -1;
}

void crypto_sha256_abort(crypto_sha256_ctx *ctx)
{
    EVP_MD_CTX_free(*ctx_slot(ctx));
    *ctx_slot(ctx) = NULL;
}

int crypto_sha256(const uint8_t *data, size_t len, uint8_t out[CRYPTO_SHA256_LEN])
{
    unsigned int n = 0;
    if (data == NULL && len > 0)
        return -1;
    return EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) == 1 && n == CRYPTO_SHA256_LEN ? 0
                                                                                             : -1;
}

/* Builds an EVP_PKEY for a P-256 public point; NULL if the point is not on the curve. */
static EVP_PKEY *p256_pub_to_pkey(const uint8_t pub[CRYPTO_P256_PUB_LEN])
{
    EVP_PKEY *pkey = NULL;
    EVP_PKEY_CTX *pctx = NULL;
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;

    if (bld == NULL)
        goto out;
    if (!OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) ||
        !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub, CRYPTO_P256_PUB_LEN))
        goto out;
    params = OSSL_PARAM_BLD_to_param(bld);
    if (params == NULL)
        goto out;
    pctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    if (pctx == NULL || EVP_PKEY_fromdata_init(pctx) != 1 ||
        EVP_PKEY_fromdata(pctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
        pkey = NULL;
out:
    EVP_PKEY_CTX_free(pctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    return pkey;
}

/* A verifier checks many signatures from the same few keys: keep the last key's EVP_PKEY
 * instead of rebuilding it (OSSL_PARAM_BLD + EVP_PKEY_fromdata) for every signature, which
 * costs about a third of a verification. Returns a new reference, or NULL. */
static EVP_PKEY *p256_pub_cached(const uint8_t pub[CRYPTO_P256_PUB_LEN])
{
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    static uint8_t last_pub[CRYPTO_P256_PUB_LEN];
    static EVP_PKEY *last_pkey;
    EVP_PKEY *ret = NULL;

    pthread_mutex_lock(&lock);
    if (last_pkey == NULL || CRYPTO_memcmp(last_pub, pub, CRYPTO_P256_PUB_LEN) != 0) {
        EVP_PKEY *fresh = p256_pub_to_pkey(pub);
        if (fresh == NULL)
            goto out;
        EVP_PKEY_free(last_pkey);
        last_pkey = fresh;
        memcpy(last_pub, pub, CRYPTO_P256_PUB_LEN);
    }
    if (EVP_PKEY_up_ref(last_pkey) == 1)
        ret = last_pkey;
out:
    pthread_mutex_unlock(&lock);
    return ret;
}

int crypto_p256_verify(const uint8_t pub[CRYPTO_P256_PUB_LEN],
                       const uint8_t digest[CRYPTO_SHA256_LEN],
                       const uint8_t sig_rs[CRYPTO_P256_SIG_LEN])
{
    int ret = -1;
    EVP_PKEY *pkey = NULL;
    EVP_PKEY_CTX *vctx = NULL;
    ECDSA_SIG *sig = NULL;
    BIGNUM *r = NULL, *s = NULL;
    unsigned char *der = NULL;

    if (pub == NULL || digest == NULL || sig_rs == NULL || pub[0] != 0x04)
        return -1;
    pkey = p256_pub_cached(pub);
    if (pkey == NULL)
        goto out;
    sig = ECDSA_SIG_new();
    r = BN_bin2bn(sig_rs, 32, NULL);
    s = BN_bin2bn(sig_rs + 32, 32, NULL);
    if (sig == NULL || r == NULL || s == NULL || ECDSA_SIG_set0(sig, r, s) != 1)
        goto out;
    r = s = NULL; /* owned by sig now */
    int der_len = i2d_ECDSA_SIG(sig, &der);
    if (der_len <= 0)
        goto out;
    vctx = EVP_PKEY_CTX_new(pkey, NULL);
    if (vctx == NULL || EVP_PKEY_verify_init(vctx) != 1)
        goto out;
    if (EVP_PKEY_verify(vctx, der, (size_t)der_len, digest, CRYPTO_SHA256_LEN) == 1)
        ret = 0;
out:
    OPENSSL_free(der);
    EVP_PKEY_CTX_free(vctx);
    ECDSA_SIG_free(sig);
    BN_free(r);
    BN_free(s);
    EVP_PKEY_free(pkey);
    return ret;
}

int crypto_hmac_sha256(const uint8_t *key, size_t key_len, const struct crypto_buf *parts, size_t n,
                       uint8_t out[CRYPTO_HMAC_SHA256_LEN])
{
    EVP_MAC *mac = NULL;
    EVP_MAC_CTX *ctx = NULL;
    OSSL_PARAM params[2];
    char digest_name[] = "SHA256";
    size_t got = 0;
    int ret = -1;

    if (out == NULL)
        return -1;
    if (key == NULL || key_len < CRYPTO_HMAC_KEY_MIN || key_len > CRYPTO_HMAC_KEY_MAX ||
        (parts == NULL && n > 0) || n > CRYPTO_HMAC_MAX_PARTS)
        goto out;
    for (size_t i = 0; i < n; i++)
        if (parts[i].p == NULL && parts[i].len > 0)
            goto out;
    mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    ctx = mac == NULL ? NULL : EVP_MAC_CTX_new(mac);
    if (ctx == NULL)
        goto out;
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest_name, 0);
    params[1] = OSSL_PARAM_construct_end();
    if (EVP_MAC_init(ctx, key, key_len, params) != 1)
        goto out;
    for (size_t i = 0; i < n; i++)
        if (parts[i].len > 0 && EVP_MAC_update(ctx, parts[i].p, parts[i].len) != 1)
            goto out;
    if (EVP_MAC_final(ctx, out, &got, CRYPTO_HMAC_SHA256_LEN) != 1 || got != CRYPTO_HMAC_SHA256_LEN)
        goto out;
    ret = 0;
out:
    if (ret != 0)
        OPENSSL_cleanse(out, CRYPTO_HMAC_SHA256_LEN);
    EVP_MAC_CTX_free(ctx); /* cleanses the key schedule */
    EVP_MAC_free(mac);
    return ret;
}

int crypto_memcmp_ct(const void *a, const void *b, size_t len)
{
    return CRYPTO_memcmp(a, b, len) == 0 ? 0 : 1;
}

void crypto_wipe(void *p, size_t len)
{
    OPENSSL_cleanse(p, len);
}
