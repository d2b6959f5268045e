/* Fuzz target: the quote blob parser, the TPMS_ATTEST parser and the full verifier over
 * outside bytes (a software P-256 key made once per process stands for the AK). The seeds
 * come from test_tpm_quote (run it with the corpus folder as argument to regenerate). */
#include "fleetgw/quote.h"

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static EVP_PKEY *fuzz_key(void)
{
    static EVP_PKEY *key;
    if (key == NULL)
        key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    return key;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t nonce[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    static struct quote_blob blob;
    struct quote_attest attest;

    static volatile int sink;
    enum quote_result r;

    if (quote_blob_parse(data, size, &blob) == QUOTE_OK) {
        r = quote_attest_parse(blob.attest, blob.attest_len, &attest);
        sink += (int)r;
    }
    r = quote_attest_parse(data, size, &attest);
    sink += (int)r;
    r = quote_verify(data, size, fuzz_key(), nonce, sizeof(nonce), &attest);
    sink += (int)r;
    return 0;
}
