/* image.c: the MCUboot vectors verify with the documented digests, versions and counter;
 * every single flipped byte and every truncation is rejected; our signer reproduces imgtool's
 * images byte for byte (all but the randomized ECDSA value); our own images round-trip; each
 * rejection has its own reason. */
#include "check.h"
#include "check_crypto.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "fleetgw/image.h"

#define IMG_CAP (256u * 1024u)

static const char *hex(const uint8_t *p, size_t n, char *buf)
{
    for (size_t i = 0; i < n; i++)
        snprintf(buf + 2 * i, 3, "%02x", p[i]);
    return buf;
}

static int failing_sign(void *ctx, const uint8_t digest[32], uint8_t raw[64])
{
    (void)ctx;
    (void)digest;
    memset(raw, 0, 64);
    return -1;
}

/* Flips every byte of img (two masks) and counts how many variants still verify. */
static unsigned flips_accepted(uint8_t *img, size_t len, const struct image_verify_opts *vo)
{
    static const uint8_t masks[] = {0x01, 0xff};
    unsigned accepted = 0;
    struct image_result r;
    for (size_t i = 0; i < len; i++)
        for (size_t m = 0; m < sizeof(masks); m++) {
            img[i] ^= masks[m];
            if (image_verify(img, len, vo, &r) == IMAGE_OK) {
                accepted++;
                fprintf(stderr, "  flip 0x%02x at offset %zu accepted\n", masks[m], i);
            }
            img[i] ^= masks[m];
        }
    return accepted;
}

static unsigned truncations_accepted(const uint8_t *img, size_t len,
                                     const struct image_verify_opts *vo)
{
    unsigned accepted = 0;
    struct image_result r;
    for (size_t n = 0; n < len; n++)
        if (image_verify(img, n, vo, &r) == IMAGE_OK)
            accepted++;
    return accepted;
}

struct vector {
    const char *file;
    const char *digest;
    struct image_version ver;
    int has_sec_cnt;
    uint32_t sec_cnt;
    enum image_key_format fmt;
};

static const struct vector vectors[] = {
    {"mcuboot/signed-1.2.3+4-sc7.bin",
     "4f8030f84bca5177f40b5361ce20e4a166220efa35eca3dca86ac39a03cac32a",
     {1, 2, 3, 4},
     1,
     7,
     IMAGE_KEY_HASH},
    {"mcuboot/signed-2.0.0-fullkey.bin",
     "fa4d44d24596dab834339b3076625b965ab56ac6aaa96c81723884024d7e50f7",
     {2, 0, 0, 0},
     0,
     0,
     IMAGE_KEY_FULL},
};

/* Signs payload.bin with the vector's options and compares with the vector byte for byte,
 * except the ECDSA value. ECDSA is randomized, so we re-sign until the DER has the same
 * length as the vector's (a few tries) and then compare everything else. */
static void reproduce(const struct vector *v, const uint8_t *vec, size_t vec_len,
                      const struct image_info *vinfo, EVP_PKEY *root, const uint8_t *payload,
                      size_t payload_len)
{
    static uint8_t out[IMG_CAP];
    struct image_sign_opts o;
    memset(&o, 0, sizeof(o));
    o.payload = payload;
    o.payload_len = payload_len;
    o.version = v->ver;
    o.hdr_size = 0x200;
    o.pad_header = 1;
    o.slot_size = 0x20000;
    o.align = v->has_sec_cnt ? 4 : 1;
    o.has_sec_cnt = v->has_sec_cnt;
    o.sec_cnt = v->sec_cnt;
    o.key_format = v->fmt;
    o.sign = check_p256_sign;
    o.sign_ctx = root;
    CHECK(check_p256_pub(root, o.pub) == 0);
    size_t len = 0;
    uint8_t digest[32];
    int tries = 0;
    do {
        CHECK(image_sign(&o, out, sizeof(out), &len, digest) == IMAGE_OK);
    } while (len != vec_len && ++tries < 64);
    CHECK_EQ_INT(len, vec_len);
    if (len != vec_len)
        return;
    /* everything before the signature value is identical; so is the hash */
    CHECK(memcmp(out, vec, vinfo->sig_off) == 0);
    CHECK(memcmp(digest, vinfo->sha256, 32) == 0);
    /* and our signature differs (randomized) but verifies */
    struct image_key key;
    memcpy(key.pub, o.pub, 65);
    struct image_verify_opts vo = {.keys = &key, .n_keys = 1};
    struct image_result r;
    CHECK(image_verify(out, len, &vo, &r) == IMAGE_OK);
}

static int test_vectors(void)
{
    char path[4096], h[65];
    if (check_vector_path(path, sizeof(path), "mcuboot/root-ec-p256.pem") == NULL)
        return 0;
    EVP_PKEY *root = check_pem_private_key(path);
    CHECK(root != NULL);
    if (root == NULL)
        return 1;
    struct image_key keys[3];
    EVP_PKEY *other = EVP_EC_gen("P-256");
    CHECK(other != NULL && check_p256_pub(other, keys[0].pub) == 0);
    CHECK(check_p256_pub(root, keys[1].pub) == 0);
    memcpy(&keys[2], &keys[0], sizeof(keys[0]));
    static uint8_t payload[16384];
    CHECK(check_vector_path(path, sizeof(path), "mcuboot/payload.bin") != NULL);
    long plen = check_read_file(path, payload, sizeof(payload));
    CHECK_EQ_INT(plen, 6000);

    for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
        const struct vector *v = &vectors[i];
        static uint8_t img[IMG_CAP];
        CHECK(check_vector_path(path, sizeof(path), v->file) != NULL);
        long n = check_read_file(path, img, sizeof(img));
        CHECK(n > 0);
        if (n <= 0)
            continue;
        size_t len = (size_t)n;
        struct image_verify_opts vo = {.keys = keys + 1, .n_keys = 1};
        struct image_result r;
        enum image_status st = image_verify(img, len, &vo, &r);
        CHECK_EQ_INT(st, IMAGE_OK);
        CHECK(strcmp(hex(r.digest, 32, h), v->digest) == 0);
        printf("%s: %s digest %s\n", v->file, image_status_str(st), h);
        CHECK(r.info.version.major == v->ver.major && r.info.version.minor == v->ver.minor &&
              r.info.version.revision == v->ver.revision && r.info.version.build == v->ver.build);
        CHECK_EQ_INT(r.info.has_sec_cnt, v->has_sec_cnt);
        CHECK_EQ_INT(r.info.sec_cnt, v->sec_cnt);
        CHECK_EQ_INT(r.info.hdr_size, 0x200);
        CHECK_EQ_INT(r.info.img_size, 6000);
        CHECK_EQ_INT(r.info.has_keyhash, v->fmt == IMAGE_KEY_HASH);
        CHECK_EQ_INT(r.info.pubkey_len, v->fmt == IMAGE_KEY_FULL ? 91 : 0);
        CHECK_EQ_INT(r.info.padding_len, 0);
        CHECK_EQ_INT(r.info.tlv_end, len);
        CHECK(strcmp(hex(r.signer_keyhash, 32, h),
                     "e30466f6b8470c1f29070b17f1e2d3e94d445e3f608087fdc711e4382bb538b6") == 0);
        CHECK(memcmp(r.digest, r.info.sha256, 32) == 0);

        /* key choice: root key found among several */
        struct image_verify_opts many = {.keys = keys, .n_keys = 3};
        CHECK(image_verify(img, len, &many, &r) == IMAGE_OK);
        CHECK_EQ_INT(r.key_index, 1);
        struct image_verify_opts wrong = {.keys = keys, .n_keys = 1};
        CHECK_EQ_INT(image_verify(img, len, &wrong, &r), IMAGE_ERR_UNKNOWN_KEY);

        /* policy */
        struct image_verify_opts pol = vo;
        pol.check_min_counter = 1;
        pol.min_counter = 7;
        CHECK_EQ_INT(image_verify(img, len, &pol, &r),
                     v->has_sec_cnt ? IMAGE_OK : IMAGE_ERR_COUNTER_MISSING);
        pol.min_counter = 8;
        CHECK_EQ_INT(image_verify(img, len, &pol, &r),
                     v->has_sec_cnt ? IMAGE_ERR_COUNTER_LOW : IMAGE_ERR_COUNTER_MISSING);
        static const uint8_t cls[16] = {1, 2, 3};
        pol = vo;
        pol.expect_cid = cls;
        CHECK_EQ_INT(image_verify(img, len, &pol, &r), IMAGE_ERR_CLASS_MISSING);
        pol = vo;
        pol.expect_vid = cls;
        CHECK_EQ_INT(image_verify(img, len, &pol, &r), IMAGE_ERR_VENDOR_MISSING);

        /* representative single flips give the expected reason */
        struct image_info vi = r.info;
        img[0] ^= 1;
        CHECK_EQ_INT(image_verify(img, len, &vo, &r), IMAGE_ERR_BAD_MAGIC);
        img[0] ^= 1;
        img[0x200 + 100] ^= 1;
        CHECK_EQ_INT(image_verify(img, len, &vo, &r), IMAGE_ERR_HASH_MISMATCH);
        img[0x200 + 100] ^= 1;
        img[vi.sig_off + 10] ^= 1; /* inside r */
        CHECK_EQ_INT(image_verify(img, len, &vo, &r), IMAGE_ERR_BAD_SIGNATURE);
        img[vi.sig_off + 10] ^= 1;
        img[vi.sig_off + 1] ^= 1; /* DER length */
        CHECK_EQ_INT(image_verify(img, len, &vo, &r), IMAGE_ERR_SIG_ENCODING);
        img[vi.sig_off + 1] ^= 1;
        img[vi.hashed_len + 8] ^= 1; /* inside the SHA256 TLV value */
        CHECK_EQ_INT(image_verify(img, len, &vo, &r), IMAGE_ERR_HASH_MISMATCH);
        img[vi.hashed_len + 8] ^= 1;
        img[vi.hashed_len + 40 + 4 + 20] ^= 1; /* inside KEYHASH / PUBKEY */
        CHECK_EQ_INT(image_verify(img, len, &vo, &r),
                     v->fmt == IMAGE_KEY_HASH ? IMAGE_ERR_UNKNOWN_KEY : IMAGE_ERR_BAD_PUBKEY);
        img[vi.hashed_len + 40 + 4 + 20] ^= 1;
        CHECK(image_verify(img, len, &vo, &r) == IMAGE_OK);

        /* EVERY single byte of the file matters: header (and its 0xff padding), body,
         * protected TLVs, and also the whole unprotected area (see docs/image-format.md) */
        CHECK_EQ_INT(flips_accepted(img, len, &vo), 0);
        CHECK_EQ_INT(truncations_accepted(img, len, &vo), 0);
        CHECK(image_verify(img, len, &vo, &r) == IMAGE_OK);

        /* slot padding after the TLVs: erased bytes are fine, anything else is not */
        memset(img + len, 0xff, 64);
        CHECK(image_verify(img, len + 64, &vo, &r) == IMAGE_OK);
        CHECK_EQ_INT(r.info.padding_len, 64);
        img[len + 10] = 0;
        CHECK_EQ_INT(image_verify(img, len + 64, &vo, &r), IMAGE_ERR_SIZE_MISMATCH);

        reproduce(v, img, len, &vi, root, payload, (size_t)plen);
    }
    EVP_PKEY_free(other);
    EVP_PKEY_free(root);
    return 1;
}

static void fill_opts(struct image_sign_opts *o, EVP_PKEY *k, const uint8_t *payload, size_t n)
{
    memset(o, 0, sizeof(*o));
    o->payload = payload;
    o->payload_len = n;
    o->version = (struct image_version){4, 5, 6, 7};
    o->hdr_size = 0x100;
    o->pad_header = 1;
    o->align = 4;
    o->sign = check_p256_sign;
    o->sign_ctx = k;
    CHECK(check_p256_pub(k, o->pub) == 0);
}

static const uint8_t vid[16] = {0xfe, 0xe1, 0x00, 0x01, 0, 0, 0x50, 0, 0x80, 0, 0, 0, 0, 0, 0, 1};
static const uint8_t cid[16] = {0xc1, 0xa5, 0x50, 0x02, 0, 0, 0x50, 0, 0x80, 0, 0, 0, 0, 0, 0, 2};

static void test_own_images(void)
{
    static uint8_t payload[1000], img[IMG_CAP];
    EVP_PKEY *k = EVP_EC_gen("P-256");
    CHECK(k != NULL);
    if (k == NULL)
        return;
    CHECK(RAND_bytes(payload, sizeof(payload)) == 1);
    struct image_key key;
    CHECK(check_p256_pub(k, key.pub) == 0);
    struct image_verify_opts vo = {.keys = &key, .n_keys = 1};
    struct image_result r;
    struct image_sign_opts o;
    size_t len = 0;
    uint8_t digest[32];

    CHECK_EQ_INT(image_trailer_size(4, 0, 0), 128 * 3 * 4 + 8 * 4 + 16);
    CHECK_EQ_INT(image_trailer_size(32, 0, 0), 128 * 3 * 32 + 32 * 4 + 32);
    CHECK_EQ_INT(image_trailer_size(3, 0, 0), 0);

    /* every combination of key format, padding, alignment */
    static const uint32_t aligns[] = {1, 2, 4, 8, 16, 32};
    unsigned bad = 0;
    for (int fmt = 0; fmt < 2; fmt++)
        for (int pad = 0; pad < 2; pad++)
            for (size_t a = 0; a < sizeof(aligns) / sizeof(aligns[0]); a++) {
                fill_opts(&o, k, payload, sizeof(payload));
                o.key_format = fmt ? IMAGE_KEY_FULL : IMAGE_KEY_HASH;
                o.align = aligns[a];
                o.slot_size = 0x10000;
                o.pad = pad;
                o.confirm = pad && (a % 2);
                if (image_sign(&o, img, sizeof(img), &len, digest) != IMAGE_OK) {
                    bad++;
                    continue;
                }
                if (image_verify(img, len, &vo, &r) != IMAGE_OK ||
                    memcmp(r.digest, digest, 32) != 0 || r.info.version.build != 7 ||
                    len != (pad ? 0x10000u : r.info.tlv_end))
                    bad++;
                if (pad) {
                    size_t ma = aligns[a] > 8 ? aligns[a] : 8;
                    const uint8_t *m = img + len - 16;
                    if (ma == 8 && m[0] != 0x77)
                        bad++;
                    if (ma != 8 && (m[0] != ma || m[1] != 0 || m[2] != 0x2d))
                        bad++;
                    size_t ok_at = len - (((16 + ma - 1) / ma) * ma + ma);
                    if (img[ok_at] != (o.confirm ? 0x01 : 0xff))
                        bad++;
                }
            }
    CHECK_EQ_INT(bad, 0);

    /* all protected TLVs; a padded slot; every byte matters */
    struct image_dependency deps[2] = {{1, {1, 0, 0, 0}}, {2, {2, 3, 4, 5}}};
    static const uint8_t record[] = {0xa1, 0x01, 0x02};
    fill_opts(&o, k, payload, 300);
    o.has_sec_cnt = 1;
    o.sec_cnt = 0x01020304;
    o.vid = vid;
    o.cid = cid;
    o.deps = deps;
    o.n_deps = 2;
    o.boot_record = record;
    o.boot_record_len = sizeof(record);
    o.slot_size = 2400;
    o.pad = 1;
    o.align = 2;
    CHECK(image_sign(&o, img, sizeof(img), &len, digest) == IMAGE_OK);
    CHECK_EQ_INT(len, 2400);
    CHECK(image_verify(img, len, &vo, &r) == IMAGE_OK);
    CHECK_EQ_INT(r.info.sec_cnt, 0x01020304);
    CHECK(r.info.has_vid && memcmp(r.info.vid, vid, 16) == 0);
    CHECK(r.info.has_cid && memcmp(r.info.cid, cid, 16) == 0);
    CHECK_EQ_INT(r.info.n_deps, 2);
    CHECK(r.info.deps[1].image_id == 2 && r.info.deps[1].min_version.build == 5 &&
          r.info.deps[1].min_version.revision == 4);
    CHECK_EQ_INT(r.info.boot_record_len, 3);
    CHECK(memcmp(img + r.info.boot_record_off, record, 3) == 0);
    CHECK_EQ_INT(r.info.n_prot_tlvs, 6);
    CHECK_EQ_INT(r.info.n_tlvs, 3);
    struct image_verify_opts pol = vo;
    pol.expect_cid = cid;
    pol.expect_vid = vid;
    pol.check_min_counter = 1;
    pol.min_counter = 0x01020304;
    CHECK(image_verify(img, len, &pol, &r) == IMAGE_OK);
    pol.expect_cid = vid;
    CHECK_EQ_INT(image_verify(img, len, &pol, &r), IMAGE_ERR_CLASS_MISMATCH);
    pol.expect_cid = cid;
    pol.expect_vid = cid;
    CHECK_EQ_INT(image_verify(img, len, &pol, &r), IMAGE_ERR_VENDOR_MISMATCH);
    CHECK_EQ_INT(flips_accepted(img, len, &vo), 0);
    /* cutting into the image is refused; cutting slot padding leaves a valid image */
    CHECK_EQ_INT(truncations_accepted(img, r.info.tlv_end, &vo), 0);
    CHECK(image_verify(img, len - 16, &vo, &r) == IMAGE_OK);
    CHECK_EQ_INT(image_verify(img, len - 1, &vo, &r), IMAGE_ERR_SIZE_MISMATCH);

    /* without pad-header the payload must start with hdr_size zero bytes */
    static uint8_t zpay[0x100 + 500];
    memset(zpay, 0, sizeof(zpay));
    memcpy(zpay + 0x100, payload, 500);
    fill_opts(&o, k, zpay, sizeof(zpay));
    o.pad_header = 0;
    CHECK(image_sign(&o, img, sizeof(img), &len, digest) == IMAGE_OK);
    CHECK(image_verify(img, len, &vo, &r) == IMAGE_OK);
    CHECK_EQ_INT(r.info.img_size, 500);
    CHECK(img[0x20] == 0 && img[0xff] == 0);
    zpay[0x80] = 1;
    CHECK_EQ_INT(image_sign(&o, img, sizeof(img), &len, digest), IMAGE_ERR_HEADER_NOT_ZERO);

    /* builder refusals */
    fill_opts(&o, k, payload, sizeof(payload));
    CHECK(image_sign(&o, img, sizeof(img), &len, digest) == IMAGE_OK);
    o.slot_size = (uint32_t)(len + 1584 + 2); /* fits (the DER length varies by +-1) */
    CHECK(image_sign(&o, img, sizeof(img), &len, digest) == IMAGE_OK);
    o.slot_size = (uint32_t)(len + 1584 - 4);
    CHECK_EQ_INT(image_sign(&o, img, sizeof(img), &len, digest), IMAGE_ERR_SLOT_SIZE);
    o.slot_size = 0;
    CHECK_EQ_INT(image_sign(&o, img, 0x100 + 1000 + 10, &len, digest), IMAGE_ERR_BUFFER);
    CHECK_EQ_INT(image_sign(&o, img, 0x100 + 10, &len, digest), IMAGE_ERR_BUFFER);
    o.align = 3;
    CHECK_EQ_INT(image_sign(&o, img, sizeof(img), &len, digest), IMAGE_ERR_ARG);
    o.align = 4;
    o.pad = 1;
    CHECK_EQ_INT(image_sign(&o, img, sizeof(img), &len, digest), IMAGE_ERR_ARG);
    o.pad = 0;
    o.hdr_size = 16;
    CHECK_EQ_INT(image_sign(&o, img, sizeof(img), &len, digest), IMAGE_ERR_ARG);
    o.hdr_size = 0x100;
    o.sign = failing_sign;
    CHECK_EQ_INT(image_sign(&o, img, sizeof(img), &len, digest), IMAGE_ERR_SIGNER);
    EVP_PKEY_free(k);
}

/* Hand-made images for the structural rejections. The body is 16 bytes; with_sha adds a
 * correct SHA256 TLV first in the unprotected area. */
static size_t craft(uint8_t *out, const uint8_t *prot, size_t prot_len, int prot_hdr_len,
                    const uint8_t *unprot, size_t unprot_len, int with_sha)
{
    memset(out, 0, 64);
    out[0] = 0x3d;
    out[1] = 0xb8;
    out[2] = 0xf3;
    out[3] = 0x96;
    out[8] = 32;
    out[12] = 16;
    size_t off = 48;
    if (prot_len > 0 || prot_hdr_len >= 0) {
        size_t tot = 4 + prot_len;
        size_t hdr = prot_hdr_len >= 0 ? (size_t)prot_hdr_len : tot;
        out[10] = (uint8_t)hdr;
        out[11] = (uint8_t)(hdr >> 8);
        out[off] = 0x08;
        out[off + 1] = 0x69;
        out[off + 2] = (uint8_t)tot;
        out[off + 3] = (uint8_t)(tot >> 8);
        if (prot_len > 0)
            memcpy(out + off + 4, prot, prot_len);
        off += tot;
    }
    size_t hashed = off;
    size_t tot = 4 + unprot_len + (with_sha ? 36u : 0u);
    out[off] = 0x07;
    out[off + 1] = 0x69;
    out[off + 2] = (uint8_t)tot;
    out[off + 3] = (uint8_t)(tot >> 8);
    off += 4;
    if (with_sha) {
        out[off] = 0x10;
        out[off + 1] = 0;
        out[off + 2] = 32;
        out[off + 3] = 0;
        CHECK(crypto_sha256(out, hashed, out + off + 4) == 0);
        off += 36;
    }
    if (unprot_len > 0)
        memcpy(out + off, unprot, unprot_len);
    return off + unprot_len;
}

static enum image_status verify_crafted(const uint8_t *img, size_t len)
{
    struct image_key key;
    memset(&key, 0, sizeof(key));
    key.pub[0] = 0x04;
    struct image_verify_opts vo = {.keys = &key, .n_keys = 1};
    struct image_result r;
    return image_verify(img, len, &vo, &r);
}

static void test_rejections(void)
{
    static uint8_t img[4096];
    static uint8_t t[2048];
    size_t n;
    const int P = -1; /* protected area length taken from the TLVs */
    static const uint8_t seccnt[] = {0x50, 0, 4, 0, 7, 0, 0, 0};
    static const uint8_t seccnt3[] = {0x50, 0, 3, 0, 7, 0, 0};
    static const uint8_t sig8[] = {0x22, 0, 8, 0, 0x30, 6, 2, 1, 1, 2, 1, 1};
    static const uint8_t kh[36] = {0x01, 0, 32, 0};
    uint8_t pk[4 + 91] = {0x02, 0, 91, 0};

    n = craft(img, seccnt, sizeof(seccnt), P, sig8, sizeof(sig8), 1);
    CHECK_EQ_INT(verify_crafted(img, n), IMAGE_ERR_NO_KEY_ID);
    struct image_info info;
    CHECK(image_parse(img, n, &info) == IMAGE_OK);
    CHECK(info.has_sec_cnt && info.sec_cnt == 7);
    CHECK_EQ_INT(verify_crafted(img, 31), IMAGE_ERR_TRUNCATED);
    CHECK_EQ_INT(verify_crafted(img, IMAGE_MAX_LEN + 1u), IMAGE_ERR_TOO_LARGE);
    img[8] = 16;
    CHECK_EQ_INT(verify_crafted(img, n), IMAGE_ERR_HEADER);
    img[8] = 32;
    img[16] = 0x04; /* encrypted */
    CHECK_EQ_INT(verify_crafted(img, n), IMAGE_ERR_FLAGS);
    img[16] = 0;
    img[12] = 0xff; /* img_size beyond the input */
    CHECK_EQ_INT(verify_crafted(img, n), IMAGE_ERR_TRUNCATED);
    img[12] = 16;
    img[10] = 16; /* header's protected size differs from the area's */
    CHECK_EQ_INT(verify_crafted(img, n), IMAGE_ERR_PROT_TLV_SIZE);
    img[10] = 0; /* protected area present, header says none */
    CHECK_EQ_INT(verify_crafted(img, n), IMAGE_ERR_PROT_TLV_SIZE);

    n = craft(img, NULL, 0, -2, sig8, sizeof(sig8), 1);
    CHECK_EQ_INT(verify_crafted(img, n), IMAGE_ERR_NO_KEY_ID);
    img[10] = 12; /* header claims a protected area, there is none */
    CHECK_EQ_INT(verify_crafted(img, n), IMAGE_ERR_PROT_TLV_MAGIC);
    img[10] = 0;
    img[48] = 0x06;
    CHECK_EQ_INT(verify_crafted(img, n), IMAGE_ERR_TLV_MAGIC);
    img[48] = 0x07;
    img[52 + 2] = 200; /* SHA256 TLV length past the area */
    CHECK_EQ_INT(verify_crafted(img, n), IMAGE_ERR_TLV_OVERRUN);

    CHECK_EQ_INT(verify_crafted(img, craft(img, seccnt3, sizeof(seccnt3), P, NULL, 0, 1)),
                 IMAGE_ERR_TLV_LENGTH);
    memcpy(t, seccnt, 8);
    memcpy(t + 8, seccnt, 8);
    CHECK_EQ_INT(verify_crafted(img, craft(img, t, 16, P, NULL, 0, 1)), IMAGE_ERR_TLV_DUPLICATE);
    CHECK_EQ_INT(verify_crafted(img, craft(img, kh, sizeof(kh), P, NULL, 0, 1)),
                 IMAGE_ERR_TLV_PLACEMENT);
    for (int i = 0; i < 5; i++) {
        static const uint8_t dep[16] = {0x40, 0, 12, 0, 1};
        memcpy(t + 16 * i, dep, 16);
    }
    CHECK_EQ_INT(verify_crafted(img, craft(img, t, 64, P, NULL, 0, 1)), IMAGE_ERR_NO_SIGNATURE);
    CHECK_EQ_INT(verify_crafted(img, craft(img, t, 80, P, NULL, 0, 1)), IMAGE_ERR_TLV_COUNT);
    for (int i = 0; i < 33; i++) {
        t[4 * i] = 0xa0; /* vendor TLV, skipped but counted */
        t[4 * i + 1] = 0;
        t[4 * i + 2] = 0;
        t[4 * i + 3] = 0;
    }
    CHECK_EQ_INT(verify_crafted(img, craft(img, t, 32 * 4, P, NULL, 0, 1)), IMAGE_ERR_NO_SIGNATURE);
    CHECK_EQ_INT(verify_crafted(img, craft(img, t, 33 * 4, P, NULL, 0, 1)), IMAGE_ERR_TLV_COUNT);
    CHECK_EQ_INT(verify_crafted(img, craft(img, NULL, 0, -2, seccnt, 8, 1)),
                 IMAGE_ERR_TLV_PLACEMENT);
    CHECK_EQ_INT(verify_crafted(img, craft(img, NULL, 0, -2, t, 4, 1)), IMAGE_ERR_TLV_PLACEMENT);
    CHECK_EQ_INT(verify_crafted(img, craft(img, NULL, 0, -2, NULL, 0, 0)), IMAGE_ERR_NO_HASH);
    CHECK_EQ_INT(verify_crafted(img, craft(img, NULL, 0, -2, NULL, 0, 1)), IMAGE_ERR_NO_SIGNATURE);
    /* SHA256 twice; a type with its high byte set is not SHA256 */
    n = craft(img, NULL, 0, -2, NULL, 0, 1);
    memcpy(t, img + 52, 36);
    CHECK_EQ_INT(verify_crafted(img, craft(img, NULL, 0, -2, t, 36, 1)), IMAGE_ERR_TLV_DUPLICATE);
    t[1] = 0x01;
    CHECK_EQ_INT(verify_crafted(img, craft(img, NULL, 0, -2, t, 36, 1)), IMAGE_ERR_TLV_PLACEMENT);
    /* KEYHASH and PUBKEY together; a wrong-length key hash; an oversized signature */
    memcpy(t, kh, 36);
    memcpy(t + 36, pk, sizeof(pk));
    CHECK_EQ_INT(verify_crafted(img, craft(img, NULL, 0, -2, t, 36 + sizeof(pk), 1)),
                 IMAGE_ERR_TLV_DUPLICATE);
    t[2] = 31;
    CHECK_EQ_INT(verify_crafted(img, craft(img, NULL, 0, -2, t, 35, 1)), IMAGE_ERR_TLV_LENGTH);
    static uint8_t bigsig[4 + 73] = {0x22, 0, 73, 0};
    CHECK_EQ_INT(verify_crafted(img, craft(img, NULL, 0, -2, bigsig, sizeof(bigsig), 1)),
                 IMAGE_ERR_TLV_LENGTH);
    /* PUBKEY that is no P-256 SPKI */
    memcpy(t, sig8, sizeof(sig8));
    memcpy(t + sizeof(sig8), pk, sizeof(pk));
    CHECK_EQ_INT(verify_crafted(img, craft(img, NULL, 0, -2, t, sizeof(sig8) + sizeof(pk), 1)),
                 IMAGE_ERR_BAD_PUBKEY);
    /* unknown key hash */
    memcpy(t + sizeof(sig8), kh, sizeof(kh));
    CHECK_EQ_INT(verify_crafted(img, craft(img, NULL, 0, -2, t, sizeof(sig8) + sizeof(kh), 1)),
                 IMAGE_ERR_UNKNOWN_KEY);
    struct image_result r;
    CHECK_EQ_INT(image_verify(img, n, NULL, &r), IMAGE_ERR_ARG);
    CHECK_EQ_INT(image_parse(NULL, 0, &info), IMAGE_ERR_ARG);

    /* every status has its own text */
    unsigned dup = 0;
    for (int a = IMAGE_OK; a <= IMAGE_ERR_SIGNER; a++)
        for (int b = a + 1; b <= IMAGE_ERR_SIGNER; b++)
            if (strcmp(image_status_str((enum image_status)a),
                       image_status_str((enum image_status)b)) == 0)
                dup++;
    CHECK_EQ_INT(dup, 0);
}

int main(void)
{
    test_own_images();
    test_rejections();
    if (!test_vectors() && check_failed == 0) {
        printf("own-image and rejection checks: %u passed\n", check_passed);
        check_skip("MCUboot vectors absent: set FLEETGW_VECTORS to ../shared/vectors "
                   "(needs mcuboot/root-ec-p256.pem and mcuboot/signed-*.bin)");
    }
    return check_finish();
}
