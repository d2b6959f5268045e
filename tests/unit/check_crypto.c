#include "check_crypto.h"

#include <stdio.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/pem.h>

EVP_PKEY *check_pem_private_key(const char *path)
{
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return NULL;
    EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    return k;
}

EVP_PKEY *check_pem_public_key(const char *path)
{
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return NULL;
    EVP_PKEY *k = PEM_read_PUBKEY(f, NULL, NULL, NULL);
    fclose(f);
    return k;
}

int check_p256_pub(EVP_PKEY *key, uint8_t pub[65])
{
    size_t n = 0;
    if (EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, pub, 65, &n) != 1)
        return -1;
    return n == 65 && pub[0] == 0x04 ? 0 : -1;
}

int check_p256_sign(void *key, const uint8_t digest[32], uint8_t raw[64])
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new((EVP_PKEY *)key, NULL);
    unsigned char der[80];
    size_t der_len = sizeof(der);
    const unsigned char *p = der;
    ECDSA_SIG *sig = NULL;
    int rc = -1;

    if (ctx == NULL || EVP_PKEY_sign_init(ctx) != 1 ||
        EVP_PKEY_sign(ctx, der, &der_len, digest, 32) != 1)
        goto out;
    sig = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
    if (sig == NULL || BN_bn2binpad(ECDSA_SIG_get0_r(sig), raw, 32) != 32 ||
        BN_bn2binpad(ECDSA_SIG_get0_s(sig), raw + 32, 32) != 32)
        goto out;
    rc = 0;
out:
    ECDSA_SIG_free(sig);
    EVP_PKEY_CTX_free(ctx);
    return rc;
}
