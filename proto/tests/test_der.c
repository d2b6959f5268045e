/* der.c: strict ECDSA-Sig-Value and P-256 SPKI, cross-checked against OpenSSL's encoders. */
#include "check.h"

#include <string.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "fleetgw/der.h"

static enum der_status parse(const uint8_t *d, size_t n)
{
    uint8_t raw[64];
    return der_ecdsa_sig_to_raw(d, n, raw);
}

/* OpenSSL's DER for r||s, for comparison. */
static int openssl_sig_der(const uint8_t raw[64], uint8_t *out, size_t cap)
{
    ECDSA_SIG *sig = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(raw, 32, NULL), *s = BN_bin2bn(raw + 32, 32, NULL);
    int n = -1;
    if (sig != NULL && r != NULL && s != NULL && ECDSA_SIG_set0(sig, r, s) == 1) {
        r = s = NULL;
        unsigned char *der = NULL;
        n = i2d_ECDSA_SIG(sig, &der);
        if (n > 0 && (size_t)n <= cap)
            memcpy(out, der, (size_t)n);
        else
            n = -1;
        OPENSSL_free(der);
    }
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(sig);
    return n;
}

static void test_sig_known(void)
{
    /* r has its top bit set (needs 0x00), s has two leading zero bytes (shortened). */
    uint8_t raw[64], back[64], der[80];
    size_t n = 0;
    memset(raw, 0x11, sizeof(raw));
    raw[0] = 0x80;
    raw[32] = 0x00;
    raw[33] = 0x00;
    raw[34] = 0x7f;
    CHECK(der_ecdsa_sig_from_raw(raw, der, sizeof(der), &n) == DER_OK);
    CHECK_EQ_INT(n, 2 + 35 + 32);
    CHECK(der[0] == 0x30 && der[1] == 67 && der[2] == 0x02 && der[3] == 33 && der[4] == 0);
    CHECK(der[37] == 0x02 && der[38] == 30 && der[39] == 0x7f);
    CHECK(der_ecdsa_sig_to_raw(der, n, back) == DER_OK);
    CHECK(memcmp(raw, back, 64) == 0);
    /* too small buffer */
    CHECK(der_ecdsa_sig_from_raw(raw, der, n - 1, &n) == DER_ERR_BUFFER);
    /* r = s = 0 encodes as 02 01 00 (minimal) */
    memset(raw, 0, sizeof(raw));
    CHECK(der_ecdsa_sig_from_raw(raw, der, sizeof(der), &n) == DER_OK);
    CHECK_EQ_INT(n, 8);
    CHECK(der_ecdsa_sig_to_raw(der, n, back) == DER_OK);
}

static void test_sig_rejects(void)
{
    static const uint8_t ok[] = {0x30, 0x06, 0x02, 0x01, 0x05, 0x02, 0x01, 0x07};
    CHECK(parse(ok, sizeof(ok)) == DER_OK);
    static const uint8_t nonmin[] = {0x30, 0x07, 0x02, 0x02, 0x00, 0x05, 0x02, 0x01, 0x07};
    CHECK(parse(nonmin, sizeof(nonmin)) == DER_ERR_INTEGER);
    static const uint8_t neg[] = {0x30, 0x06, 0x02, 0x01, 0x85, 0x02, 0x01, 0x07};
    CHECK(parse(neg, sizeof(neg)) == DER_ERR_INTEGER);
    static const uint8_t empty_int[] = {0x30, 0x05, 0x02, 0x00, 0x02, 0x01, 0x07};
    CHECK(parse(empty_int, sizeof(empty_int)) == DER_ERR_INTEGER);
    static const uint8_t longform[] = {0x30, 0x81, 0x06, 0x02, 0x01, 0x05, 0x02, 0x01, 0x07};
    CHECK(parse(longform, sizeof(longform)) == DER_ERR_LENGTH);
    static const uint8_t trailing[] = {0x30, 0x06, 0x02, 0x01, 0x05, 0x02, 0x01, 0x07, 0x00};
    CHECK(parse(trailing, sizeof(trailing)) == DER_ERR_TRAILING);
    CHECK(parse(ok, sizeof(ok) - 1) == DER_ERR_TRUNCATED);
    CHECK(parse(ok, 1) == DER_ERR_TRUNCATED);
    static const uint8_t tag[] = {0x31, 0x06, 0x02, 0x01, 0x05, 0x02, 0x01, 0x07};
    CHECK(parse(tag, sizeof(tag)) == DER_ERR_TAG);
    static const uint8_t inttag[] = {0x30, 0x06, 0x02, 0x01, 0x05, 0x04, 0x01, 0x07};
    CHECK(parse(inttag, sizeof(inttag)) == DER_ERR_TAG);
    static const uint8_t three[] = {0x30, 0x09, 0x02, 0x01, 0x05, 0x02,
                                    0x01, 0x07, 0x02, 0x01, 0x01};
    CHECK(parse(three, sizeof(three)) == DER_ERR_LENGTH);
    static const uint8_t inner_over[] = {0x30, 0x06, 0x02, 0x01, 0x05, 0x02, 0x02, 0x07};
    CHECK(parse(inner_over, sizeof(inner_over)) == DER_ERR_TRUNCATED);
    /* 33 significant bytes: wider than a P-256 scalar */
    uint8_t wide[2 + 2 + 33 + 3];
    wide[0] = 0x30;
    wide[1] = (uint8_t)(sizeof(wide) - 2);
    wide[2] = 0x02;
    wide[3] = 33;
    memset(wide + 4, 0x01, 33);
    wide[37] = 0x02;
    wide[38] = 0x01;
    wide[39] = 0x01;
    CHECK(parse(wide, sizeof(wide)) == DER_ERR_INTEGER);
    uint8_t raw[64];
    CHECK(der_ecdsa_sig_to_raw(NULL, 0, raw) == DER_ERR_ARG);
    /* raw is cleared on failure */
    memset(raw, 0xaa, sizeof(raw));
    CHECK(der_ecdsa_sig_to_raw(neg, sizeof(neg), raw) != DER_OK);
    uint8_t zero[64] = {0};
    CHECK(memcmp(raw, zero, 64) == 0);
}

static void test_sig_random(void)
{
    unsigned mismatches = 0;
    for (int i = 0; i < 2000; i++) {
        uint8_t raw[64], back[64], der[80], ref[80];
        size_t n = 0;
        CHECK(RAND_bytes(raw, sizeof(raw)) == 1);
        /* exercise short scalars and top-bit patterns */
        if (i % 4 == 1)
            memset(raw, 0, (size_t)(i % 31));
        if (i % 4 == 2)
            memset(raw + 32, 0, (size_t)(i % 33));
        if (i % 8 == 3)
            raw[0] |= 0x80;
        CHECK(der_ecdsa_sig_from_raw(raw, der, sizeof(der), &n) == DER_OK);
        int rn = openssl_sig_der(raw, ref, sizeof(ref));
        if (rn < 0 || (size_t)rn != n || memcmp(der, ref, n) != 0)
            mismatches++;
        if (der_ecdsa_sig_to_raw(der, n, back) != DER_OK || memcmp(raw, back, 64) != 0)
            mismatches++;
        /* every single-byte change either fails or decodes to a different value */
        uint8_t mut[80];
        memcpy(mut, der, n);
        size_t pos = (size_t)i % n;
        mut[pos] ^= (uint8_t)(1u << (i % 8));
        if (der_ecdsa_sig_to_raw(mut, n, back) == DER_OK && memcmp(raw, back, 64) == 0)
            mismatches++;
    }
    CHECK_EQ_INT(mismatches, 0);
}

static void test_spki(void)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    CHECK(k != NULL);
    if (k == NULL)
        return;
    unsigned char *ref = NULL;
    int rn = i2d_PUBKEY(k, &ref);
    CHECK_EQ_INT(rn, DER_P256_SPKI_LEN);
    uint8_t pub[65], enc[DER_P256_SPKI_LEN];
    size_t plen = 0;
    CHECK(EVP_PKEY_get_octet_string_param(k, "encoded-pub-key", pub, sizeof(pub), &plen) == 1);
    CHECK_EQ_INT(plen, 65);
    CHECK(der_p256_spki_encode(pub, enc) == DER_OK);
    CHECK(rn == DER_P256_SPKI_LEN && memcmp(enc, ref, DER_P256_SPKI_LEN) == 0);
    uint8_t back[65];
    CHECK(der_p256_spki_parse(ref, (size_t)rn, back) == DER_OK);
    CHECK(memcmp(back, pub, 65) == 0);
    CHECK(der_p256_spki_parse(ref, (size_t)rn - 1, back) == DER_ERR_TRUNCATED);
    uint8_t longer[DER_P256_SPKI_LEN + 1];
    memcpy(longer, ref, DER_P256_SPKI_LEN);
    longer[DER_P256_SPKI_LEN] = 0;
    CHECK(der_p256_spki_parse(longer, sizeof(longer), back) == DER_ERR_TRAILING);
    uint8_t bad[DER_P256_SPKI_LEN];
    memcpy(bad, ref, sizeof(bad));
    bad[22] ^= 1; /* curve OID */
    CHECK(der_p256_spki_parse(bad, sizeof(bad), back) == DER_ERR_ALGORITHM);
    memcpy(bad, ref, sizeof(bad));
    bad[26] = 0x02; /* compressed point marker */
    CHECK(der_p256_spki_parse(bad, sizeof(bad), back) == DER_ERR_POINT);
    /* every single flipped bit of the prefix is rejected */
    unsigned accepted = 0;
    for (size_t i = 0; i < 27; i++)
        for (unsigned b = 0; b < 8; b++) {
            memcpy(bad, ref, sizeof(bad));
            bad[i] ^= (uint8_t)(1u << b);
            if (der_p256_spki_parse(bad, sizeof(bad), back) == DER_OK)
                accepted++;
        }
    CHECK_EQ_INT(accepted, 0);
    pub[0] = 0x03;
    CHECK(der_p256_spki_encode(pub, enc) == DER_ERR_POINT);
    OPENSSL_free(ref);
    EVP_PKEY_free(k);

    /* a P-384 key is not accepted */
    EVP_PKEY *k384 = EVP_EC_gen("P-384");
    unsigned char *d384 = NULL;
    int n384 = k384 != NULL ? i2d_PUBKEY(k384, &d384) : -1;
    CHECK(n384 > 0);
    if (n384 > 0)
        CHECK(der_p256_spki_parse(d384, (size_t)n384, back) != DER_OK);
    OPENSSL_free(d384);
    EVP_PKEY_free(k384);
    CHECK(strcmp(der_status_str(DER_ERR_INTEGER), "ok") != 0);
}

int main(void)
{
    test_sig_known();
    test_sig_rejects();
    test_sig_random();
    test_spki();
    return check_finish();
}
