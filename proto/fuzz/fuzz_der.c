/* Fuzz target: strict DER. Whatever parses must re-encode to exactly the input (DER is
 * canonical), and whatever we encode must parse back to the same value. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fleetgw/der.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t raw[CRYPTO_P256_SIG_LEN], raw2[CRYPTO_P256_SIG_LEN];
    uint8_t der[DER_ECDSA_P256_SIG_MAX];
    uint8_t pub[CRYPTO_P256_PUB_LEN], spki[DER_P256_SPKI_LEN];
    size_t n = 0;

    if (der_ecdsa_sig_to_raw(data, size, raw) == DER_OK) {
        if (der_ecdsa_sig_from_raw(raw, der, sizeof(der), &n) != DER_OK || n != size ||
            memcmp(der, data, n) != 0)
            abort();
    }
    if (der_p256_spki_parse(data, size, pub) == DER_OK) {
        if (der_p256_spki_encode(pub, spki) != DER_OK || size != sizeof(spki) ||
            memcmp(spki, data, size) != 0)
            abort();
    }
    if (size >= CRYPTO_P256_SIG_LEN) {
        if (der_ecdsa_sig_from_raw(data, der, sizeof(der), &n) != DER_OK ||
            n < DER_ECDSA_P256_SIG_MIN || n > DER_ECDSA_P256_SIG_MAX ||
            der_ecdsa_sig_to_raw(der, n, raw2) != DER_OK ||
            memcmp(raw2, data, CRYPTO_P256_SIG_LEN) != 0)
            abort();
    }
    if (size >= CRYPTO_P256_PUB_LEN && data[0] == 0x04) {
        if (der_p256_spki_encode(data, spki) != DER_OK ||
            der_p256_spki_parse(spki, sizeof(spki), pub) != DER_OK ||
            memcmp(pub, data, CRYPTO_P256_PUB_LEN) != 0)
            abort();
    }
    return 0;
}
