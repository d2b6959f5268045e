/* Fuzz target: attestation evidence from a node (attest-evidence CBOR message carrying a
 * PSA token) through the whole verifier, the reference-value policy parser, and the signer
 * key (PEM) parser. The first byte selects which: bit 0 policy, else bit 1 keys, else bit 2
 * evidence of a symmetric-IAK node (COSE_Mac0, a fixed key, one extra reference value), else
 * evidence. */
#include "attest.h"

#include <fleetgw/image.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct attest_policy *pol;
    static const uint8_t nonce[32];
    static uint8_t pub[65] = {0x04};
    struct attest_result res;
    char err[200];

    if (pol == NULL) {
        static const char p[] =
            "{\"reference_values\":[{\"measurement\":"
            "\"a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf\","
            "\"signer_id\":\"101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f\"}]}";
        if (attest_policy_parse(p, strlen(p), &pol, err, sizeof(err)) < 0)
            abort();
    }
    if (size < 1)
        return 0;
    if (data[0] & 1) {
        struct attest_policy *q = NULL;
        if (attest_policy_parse((const char *)data + 1, size - 1, &q, err, sizeof(err)) == 0)
            attest_policy_free(q);
        return 0;
    }
    if (data[0] & 2) {
        struct image_key keys[IMAGE_MAX_KEYS];
        size_t n = 0;
        if (attest_signer_keys_parse((const char *)data + 1, size - 1, keys, IMAGE_MAX_KEYS, &n,
                                     err, sizeof(err)) == 0 &&
            (n == 0 || n > IMAGE_MAX_KEYS || keys[0].pub[0] != 0x04))
            abort(); /* success means 1..16 uncompressed points */
        return 0;
    }
    if (data[0] & 4) {
        static const uint8_t hkey[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
        static const struct attest_ref_value extra = {.version = "9.9.9"};
        attest_evaluate_mac0(pol, &extra, 1, data + 1, size - 1, hkey, sizeof(hkey), nonce,
                             sizeof(nonce), &res);
        if ((unsigned)res.code >= GATE_REASON__COUNT ||
            res.trusted != (res.code == GATE_R_ATTESTED))
            abort();
        if (res.reason[sizeof(res.reason) - 1] != '\0' ||
            res.profile[sizeof(res.profile) - 1] != '\0')
            abort();
        return 0;
    }
    attest_evaluate(pol, data + 1, size - 1, pub, nonce, sizeof(nonce), &res);
    if (res.trusted)
        abort(); /* nothing can verify against this all-zero key */
    if ((unsigned)res.code >= GATE_REASON__COUNT || res.code == GATE_R_ATTESTED)
        abort(); /* every refusal has a reason token */
    /* the gate's peek at the nonce an answer claims (no signature check) */
    uint8_t claimed[64];
    size_t clen = 0;
    if (attest_evidence_nonce(data + 1, size - 1, claimed, sizeof(claimed), &clen)) {
        if (clen == 0 || clen > sizeof(claimed))
            abort();
    } else if (clen != 0) {
        abort();
    }
    return 0;
}
