/* The Mbed TLS back-end (crypto_*) agrees with the OpenSSL back-end (linked here renamed to
 * ossl_crypto_*) on SHA-256, HMAC-SHA256 and ECDSA P-256 verification, and image.c on top of Mbed
 * TLS verifies the MCUboot vectors and its own images. */
#include "check.h"
#include "check_crypto.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/ec.h>
#include <openssl/hmac.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "fleetgw/crypto.h"
#include "fleetgw/image.h"

/* The OpenSSL back-end, renamed at compile time (proto/CMakeLists.txt). */
int ossl_crypto_sha256_init(crypto_sha256_ctx *ctx);
int ossl_crypto_sha256_update(crypto_sha256_ctx *ctx, const uint8_t *data, size_t len);
int ossl_crypto_sha256_final(crypto_sha256_ctx *ctx, uint8_t out[CRYPTO_SHA256_LEN]);
void ossl_crypto_sha256_abort(crypto_sha256_ctx *ctx);
int ossl_crypto_sha256(const uint8_t *data, size_t len, uint8_t out[CRYPTO_SHA256_LEN]);
int ossl_crypto_p256_verify(const uint8_t pub[CRYPTO_P256_PUB_LEN],
                            const uint8_t digest[CRYPTO_SHA256_LEN],
                            const uint8_t sig_rs[CRYPTO_P256_SIG_LEN]);
int ossl_crypto_memcmp_ct(const void *a, const void *b, size_t len);
int ossl_crypto_hmac_sha256(const uint8_t *key, size_t key_len, const struct crypto_buf *parts,
                            size_t n, uint8_t out[CRYPTO_HMAC_SHA256_LEN]);

static void test_sha256_kat(void)
{
    static const uint8_t abc_hash[32] = {
        0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40,
        0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17,
        0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad,
    };
    uint8_t h[32];
    CHECK(crypto_sha256((const uint8_t *)"abc", 3, h) == 0);
    CHECK(memcmp(h, abc_hash, 32) == 0);
    CHECK(crypto_sha256(NULL, 1, h) != 0);
    crypto_sha256_ctx c;
    CHECK(crypto_sha256_init(&c) == 0);
    crypto_sha256_abort(&c);
    crypto_sha256_abort(&c);                                       /* safe twice */
    CHECK(crypto_sha256_update(&c, (const uint8_t *)"a", 1) != 0); /* finished context */
}

static void test_sha256_agree(void)
{
    static const size_t lens[] = {0, 1, 55, 56, 63, 64, 65, 127, 128, 1000, 4096, 100003};
    uint8_t *buf = malloc(100003);
    CHECK(buf != NULL);
    if (buf == NULL)
        return;
    CHECK(RAND_bytes(buf, 100003) == 1);
    unsigned differ = 0;
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        uint8_t a[32], b[32], c[32], d[32];
        CHECK(crypto_sha256(buf, lens[i], a) == 0);
        CHECK(ossl_crypto_sha256(buf, lens[i], b) == 0);
        /* streaming in uneven chunks */
        crypto_sha256_ctx m, o;
        CHECK(crypto_sha256_init(&m) == 0);
        CHECK(ossl_crypto_sha256_init(&o) == 0);
        size_t off = 0, step = 1;
        while (off < lens[i]) {
            size_t n = lens[i] - off < step ? lens[i] - off : step;
            CHECK(crypto_sha256_update(&m, buf + off, n) == 0);
            CHECK(ossl_crypto_sha256_update(&o, buf + off, n) == 0);
            off += n;
            step = step * 3 + 1;
        }
        CHECK(crypto_sha256_final(&m, c) == 0);
        CHECK(ossl_crypto_sha256_final(&o, d) == 0);
        if (memcmp(a, b, 32) != 0 || memcmp(a, c, 32) != 0 || memcmp(a, d, 32) != 0)
            differ++;
    }
    CHECK_EQ_INT(differ, 0);
    free(buf);
}

static void test_verify_agree(void)
{
    unsigned disagree = 0, accepted_bad = 0, rejected_good = 0;
    for (int i = 0; i < 40; i++) {
        EVP_PKEY *k = EVP_EC_gen("P-256");
        uint8_t pub[65], digest[32], sig[64];
        CHECK(k != NULL && check_p256_pub(k, pub) == 0);
        CHECK(RAND_bytes(digest, 32) == 1);
        CHECK(check_p256_sign(k, digest, sig) == 0);
        int m = crypto_p256_verify(pub, digest, sig);
        int o = ossl_crypto_p256_verify(pub, digest, sig);
        if (m != 0 || o != 0)
            rejected_good++;
        /* tampered signature, digest and key */
        for (int t = 0; t < 3; t++) {
            uint8_t p2[65], d2[32], s2[64];
            memcpy(p2, pub, 65);
            memcpy(d2, digest, 32);
            memcpy(s2, sig, 64);
            if (t == 0)
                s2[i % 64] ^= (uint8_t)(1u << (i % 8));
            else if (t == 1)
                d2[i % 32] ^= 0x01;
            else
                p2[1 + i % 64] ^= 0x01; /* usually off the curve */
            m = crypto_p256_verify(p2, d2, s2);
            o = ossl_crypto_p256_verify(p2, d2, s2);
            if (m != o)
                disagree++;
            if (m == 0 || o == 0)
                accepted_bad++;
        }
        EVP_PKEY_free(k);
    }
    CHECK_EQ_INT(rejected_good, 0);
    CHECK_EQ_INT(disagree, 0);
    CHECK_EQ_INT(accepted_bad, 0);

    /* degenerate signatures: r = 0, s = n (the group order), all-ones */
    static const uint8_t n_order[32] = {
        0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17,
        0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
    };
    EVP_PKEY *k = EVP_EC_gen("P-256");
    uint8_t pub[65], digest[32] = {1}, sig[64];
    CHECK(k != NULL && check_p256_pub(k, pub) == 0);
    memset(sig, 0, 32);
    memset(sig + 32, 0x11, 32);
    CHECK(crypto_p256_verify(pub, digest, sig) != 0);
    CHECK(ossl_crypto_p256_verify(pub, digest, sig) != 0);
    memset(sig, 0x11, 32);
    memcpy(sig + 32, n_order, 32);
    CHECK(crypto_p256_verify(pub, digest, sig) != 0);
    CHECK(ossl_crypto_p256_verify(pub, digest, sig) != 0);
    memset(sig, 0xff, 64);
    CHECK(crypto_p256_verify(pub, digest, sig) != 0);
    CHECK(ossl_crypto_p256_verify(pub, digest, sig) != 0);
    pub[0] = 0x02;
    CHECK(crypto_p256_verify(pub, digest, sig) != 0);
    EVP_PKEY_free(k);

    CHECK(crypto_memcmp_ct("abcd", "abcd", 4) == 0 &&
          ossl_crypto_memcmp_ct("abcd", "abcd", 4) == 0);
    CHECK(crypto_memcmp_ct("abcd", "abce", 4) != 0 &&
          ossl_crypto_memcmp_ct("abcd", "abce", 4) != 0);
    uint8_t w[8];
    memset(w, 0x5a, sizeof(w));
    crypto_wipe(w, sizeof(w));
    CHECK(w[0] == 0 && w[7] == 0);
}

/* image.c over the Mbed TLS back-end: own images (signed by OpenSSL) verify, tampering is
 * caught. */
static void test_image_own(void)
{
    static uint8_t payload[3000], img[8192];
    EVP_PKEY *k = EVP_EC_gen("P-256");
    struct image_sign_opts o;
    memset(&o, 0, sizeof(o));
    CHECK(k != NULL && check_p256_pub(k, o.pub) == 0);
    CHECK(RAND_bytes(payload, sizeof(payload)) == 1);
    o.payload = payload;
    o.payload_len = sizeof(payload);
    o.version.major = 3;
    o.hdr_size = 0x200;
    o.pad_header = 1;
    o.align = 4;
    o.has_sec_cnt = 1;
    o.sec_cnt = 9;
    o.sign = check_p256_sign;
    o.sign_ctx = k;
    size_t len = 0;
    uint8_t digest[32];
    CHECK(image_sign(&o, img, sizeof(img), &len, digest) == IMAGE_OK);
    struct image_key key;
    memcpy(key.pub, o.pub, 65);
    struct image_verify_opts vo = {.keys = &key, .n_keys = 1};
    struct image_result r;
    CHECK(image_verify(img, len, &vo, &r) == IMAGE_OK);
    CHECK(memcmp(r.digest, digest, 32) == 0);
    CHECK_EQ_INT(r.info.sec_cnt, 9);
    img[0x300] ^= 1;
    CHECK(image_verify(img, len, &vo, &r) == IMAGE_ERR_HASH_MISMATCH);
    img[0x300] ^= 1;
    img[len - 3] ^= 1;
    CHECK(image_verify(img, len, &vo, &r) == IMAGE_ERR_BAD_SIGNATURE);
    EVP_PKEY_free(k);
}

static void test_image_vectors(void)
{
    static const struct {
        const char *file;
        const char *digest;
    } vec[] = {
        {"mcuboot/signed-1.2.3+4-sc7.bin",
         "4f8030f84bca5177f40b5361ce20e4a166220efa35eca3dca86ac39a03cac32a"},
        {"mcuboot/signed-2.0.0-fullkey.bin",
         "fa4d44d24596dab834339b3076625b965ab56ac6aaa96c81723884024d7e50f7"},
    };
    char path[4096];
    if (check_vector_path(path, sizeof(path), "mcuboot/root-ec-p256.pem") == NULL) {
        printf("NOTE: vectors absent (FLEETGW_VECTORS): the Mbed TLS vector checks did not run\n");
        return;
    }
    EVP_PKEY *k = check_pem_private_key(path);
    struct image_key key;
    CHECK(k != NULL && check_p256_pub(k, key.pub) == 0);
    EVP_PKEY_free(k);
    for (size_t i = 0; i < 2; i++) {
        static uint8_t img[16384];
        CHECK(check_vector_path(path, sizeof(path), vec[i].file) != NULL);
        long n = check_read_file(path, img, sizeof(img));
        CHECK(n > 0);
        if (n <= 0)
            continue;
        struct image_verify_opts vo = {.keys = &key, .n_keys = 1};
        struct image_result r;
        CHECK(image_verify(img, (size_t)n, &vo, &r) == IMAGE_OK);
        char hex[65];
        for (int j = 0; j < 32; j++)
            snprintf(hex + 2 * j, 3, "%02x", r.digest[j]);
        CHECK(strcmp(hex, vec[i].digest) == 0);
        img[n - 1] ^= 0x40;
        CHECK(image_verify(img, (size_t)n, &vo, &r) != IMAGE_OK);
    }
}

/* HMAC-SHA256: a known answer (Python's hmac module, key 00..1f), then both back-ends against
 * OpenSSL's one-shot HMAC() for random keys of every allowed length and messages split into
 * uneven parts; keys outside 32..64 bytes and too many parts are refused by both. */
static void test_hmac(void)
{
    static const uint8_t kat[32] = {0x09, 0x98, 0x05, 0xf4, 0xac, 0x31, 0x07, 0x86,
                                    0x96, 0x85, 0x65, 0xc0, 0x98, 0xdb, 0x51, 0x5c,
                                    0xc5, 0x08, 0x62, 0xb4, 0x20, 0xae, 0x31, 0xe2,
                                    0x02, 0x38, 0x31, 0x23, 0x44, 0xbe, 0xd3, 0x6a};
    static const char msg[] = "what do ya want for nothing?";
    uint8_t key[64], buf[1000], a[32], b[32], want[32];
    unsigned int wl = 0;
    struct crypto_buf parts[CRYPTO_HMAC_MAX_PARTS + 1];

    for (size_t i = 0; i < 32; i++)
        key[i] = (uint8_t)i;
    parts[0].p = (const uint8_t *)msg;
    parts[0].len = 10;
    parts[1].p = (const uint8_t *)msg + 10;
    parts[1].len = sizeof(msg) - 1 - 10;
    CHECK(crypto_hmac_sha256(key, 32, parts, 2, a) == 0 && memcmp(a, kat, 32) == 0);
    CHECK(ossl_crypto_hmac_sha256(key, 32, parts, 2, b) == 0 && memcmp(b, kat, 32) == 0);

    unsigned differ = 0;
    for (size_t kl = CRYPTO_HMAC_KEY_MIN; kl <= CRYPTO_HMAC_KEY_MAX; kl++) {
        size_t ml = (kl * 37u) % sizeof(buf);
        CHECK(RAND_bytes(key, (int)kl) == 1 && RAND_bytes(buf, (int)sizeof(buf)) == 1);
        CHECK(HMAC(EVP_sha256(), key, (int)kl, buf, ml, want, &wl) != NULL && wl == 32);
        size_t cut1 = ml / 3, cut2 = ml / 2;
        parts[0].p = buf;
        parts[0].len = cut1;
        parts[1].p = NULL;
        parts[1].len = 0;
        parts[2].p = buf + cut1;
        parts[2].len = cut2 - cut1;
        parts[3].p = buf + cut2;
        parts[3].len = ml - cut2;
        if (crypto_hmac_sha256(key, kl, parts, 4, a) != 0 ||
            ossl_crypto_hmac_sha256(key, kl, parts, 4, b) != 0 || memcmp(a, want, 32) != 0 ||
            memcmp(b, want, 32) != 0)
            differ++;
    }
    CHECK_EQ_INT(differ, 0);
    /* refused: short and long keys, NULL key, too many parts, a NULL part with a length */
    parts[0].p = buf;
    parts[0].len = 1;
    CHECK(crypto_hmac_sha256(key, CRYPTO_HMAC_KEY_MIN - 1, parts, 1, a) != 0);
    CHECK(ossl_crypto_hmac_sha256(key, CRYPTO_HMAC_KEY_MIN - 1, parts, 1, b) != 0);
    CHECK(crypto_hmac_sha256(key, CRYPTO_HMAC_KEY_MAX + 1, parts, 1, a) != 0);
    CHECK(ossl_crypto_hmac_sha256(key, CRYPTO_HMAC_KEY_MAX + 1, parts, 1, b) != 0);
    CHECK(crypto_hmac_sha256(NULL, 32, parts, 1, a) != 0);
    CHECK(ossl_crypto_hmac_sha256(NULL, 32, parts, 1, b) != 0);
    for (size_t i = 0; i <= CRYPTO_HMAC_MAX_PARTS; i++)
        parts[i] = parts[0];
    CHECK(crypto_hmac_sha256(key, 32, parts, CRYPTO_HMAC_MAX_PARTS + 1, a) != 0);
    CHECK(ossl_crypto_hmac_sha256(key, 32, parts, CRYPTO_HMAC_MAX_PARTS + 1, b) != 0);
    parts[0].p = NULL;
    CHECK(crypto_hmac_sha256(key, 32, parts, 1, a) != 0);
    CHECK(ossl_crypto_hmac_sha256(key, 32, parts, 1, b) != 0);
}

int main(void)
{
    test_sha256_kat();
    test_hmac();
    test_sha256_agree();
    test_verify_agree();
    test_image_own();
    test_image_vectors();
    return check_finish();
}
