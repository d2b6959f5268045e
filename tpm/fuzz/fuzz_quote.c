/* Fuzz target: the quote blob parser, the TPMS_ATTEST parser and the full verifier over
 * outside bytes. The AK is the public half of the throwaway corpus key of test_tpm_quote
 * (which writes the seeds: `test_tpm_quote tpm/fuzz/corpus/fuzz_quote`), so valid seeds get
 * past the signature check and mutations of their PCR section reach the PCR checks. */
#include "fleetgw/quote.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char corpus_ak_hex[] =
    "043ad3861a95621392516bb593ef05583ed2e5866f5cb6260a3017237fd89b90af"
    "d0961c7e37075a6791a39c61f56295b02b6d26567b615e60aa41ee1c8e83388d";

static unsigned hexval(char c)
{
    return c <= '9' ? (unsigned)(c - '0') : (unsigned)(c - 'a' + 10);
}

static EVP_PKEY *fuzz_key(void)
{
    static EVP_PKEY *key;
    uint8_t pub[65];
    if (key != NULL)
        return key;
    for (size_t i = 0; i < sizeof(pub); i++)
        pub[i] = (uint8_t)(hexval(corpus_ak_hex[2 * i]) << 4 | hexval(corpus_ak_hex[2 * i + 1]));
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    if (bld != NULL && ctx != NULL &&
        OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) == 1 &&
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof(pub)) == 1 &&
        (params = OSSL_PARAM_BLD_to_param(bld)) != NULL && EVP_PKEY_fromdata_init(ctx) == 1)
        (void)EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    EVP_PKEY_CTX_free(ctx);
    if (key == NULL)
        abort();
    return key;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t nonce[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    static struct quote_blob blob;
    struct quote_attest attest;
    enum quote_result r;

    if (quote_blob_parse(data, size, &blob) == QUOTE_OK) {
        r = quote_attest_parse(blob.attest, blob.attest_len, &attest);
        (void)r;
    }
    r = quote_attest_parse(data, size, &attest);
    (void)r;
    r = quote_verify(data, size, fuzz_key(), nonce, sizeof(nonce), &attest);
    (void)r;
    return 0;
}
