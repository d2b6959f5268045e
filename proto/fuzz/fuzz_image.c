/* Fuzz target: image_parse() and image_verify() on arbitrary bytes, with invariants; and
 * image_sign() with options and payload taken from the input, whose output must parse.
 * The seed corpus (corpus/fuzz_image/) was made by image_sign() with a throw-away key whose
 * public half is trusted below, so mutations reach the hash, key and signature checks. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fleetgw/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct image_key keys[] = {
    /* the corpus signer (private key discarded after signing the seeds) */
    {{
        0x04, 0x5a, 0xdc, 0xce, 0xef, 0xd7, 0x2b, 0x62, 0x37, 0x34, 0x9e, 0xd1, 0x7d,
        0x2e, 0x72, 0x23, 0xe1, 0xdd, 0xd4, 0xfa, 0x19, 0x83, 0x64, 0xae, 0x45, 0x87,
        0x4e, 0x75, 0x4a, 0xce, 0x00, 0x2b, 0xf8, 0x3b, 0xed, 0x54, 0x38, 0x36, 0xac,
        0xee, 0xc2, 0x01, 0x83, 0xf7, 0x42, 0x27, 0x6b, 0x24, 0xa2, 0x73, 0xe6, 0xe5,
        0x79, 0x99, 0x78, 0x25, 0x13, 0x53, 0x2e, 0x34, 0x06, 0xf1, 0x7c, 0x84, 0x16,
    }},
    /* the P-256 base point G, a valid key nobody signs with */
    {{0x04, 0x6b, 0x17, 0xd1, 0xf2, 0xe1, 0x2c, 0x42, 0x47, 0xf8, 0xbc, 0xe6, 0xe5,
      0x63, 0xa4, 0x40, 0xf2, 0x77, 0x03, 0x7d, 0x81, 0x2d, 0xeb, 0x33, 0xa0, 0xf4,
      0xa1, 0x39, 0x45, 0xd8, 0x98, 0xc2, 0x96, 0x4f, 0xe3, 0x42, 0xe2, 0xfe, 0x1a,
      0x7f, 0x9b, 0x8e, 0xe7, 0xeb, 0x4a, 0x7c, 0x0f, 0x9e, 0x16, 0x2b, 0xce, 0x33,
      0x57, 0x6b, 0x31, 0x5e, 0xce, 0xcb, 0xb6, 0x40, 0x68, 0x37, 0xbf, 0x51, 0xf5}},
};

static int in_range(size_t off, size_t len, size_t end)
{
    return off <= end && len <= end - off;
}

/* A stand-in signer (r = s = digest): the builder does not care what the signature is. */
static int fixed_sign(void *ctx, const uint8_t digest[CRYPTO_SHA256_LEN],
                      uint8_t sig_rs[CRYPTO_P256_SIG_LEN])
{
    (void)ctx;
    memcpy(sig_rs, digest, CRYPTO_SHA256_LEN);
    memcpy(sig_rs + CRYPTO_SHA256_LEN, digest, CRYPTO_SHA256_LEN);
    return 0;
}

static void fuzz_sign(const uint8_t *data, size_t size)
{
    static uint8_t out[48 * 1024];
    static const uint8_t uuid[IMAGE_UUID_LEN] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    static const struct image_dependency deps[IMAGE_MAX_DEPS + 1] = {{0, {1, 2, 3, 4}}};
    struct image_sign_opts o;
    struct image_info info;
    uint8_t digest[CRYPTO_SHA256_LEN];
    size_t len = 0;
    if (size < 8 || size > 16384)
        return;
    memset(&o, 0, sizeof(o));
    o.pad_header = data[0] & 1;
    o.key_format = (data[0] & 2) ? IMAGE_KEY_FULL : IMAGE_KEY_HASH;
    o.has_sec_cnt = (data[0] >> 2) & 1;
    o.sec_cnt = data[7];
    o.vid = (data[0] & 8) ? uuid : NULL;
    o.cid = (data[0] & 16) ? uuid : NULL;
    o.pad = (data[0] >> 5) & 1;
    o.confirm = (data[0] >> 6) & 1;
    o.boot_record = (data[0] & 128) ? data : NULL;
    o.boot_record_len = (size_t)(data[4] >> 5) + 1; /* 1..8, within the 8-byte prefix */
    o.hdr_size = (uint16_t)(data[1] * 4u);
    o.align = 1u << (data[2] % 7); /* 64 is invalid on purpose */
    o.max_align = (data[2] & 0x80) ? 16 : 0;
    o.slot_size = (uint32_t)data[3] * 64u;
    o.n_deps = data[4] % (IMAGE_MAX_DEPS + 2);
    o.deps = deps;
    o.version = (struct image_version){data[5], data[6], 1, 2};
    o.payload = data + 8;
    o.payload_len = size - 8;
    memcpy(o.pub, keys[0].pub, sizeof(o.pub));
    o.sign = fixed_sign;
    enum image_status st = image_sign(&o, out, sizeof(out), &len, digest);
    if (st != IMAGE_OK)
        return;
    if (len > sizeof(out) || image_parse(out, len, &info) != IMAGE_OK ||
        memcmp(info.sha256, digest, sizeof(digest)) != 0 || info.version.major != data[5] ||
        (o.pad && len != o.slot_size) || info.n_deps != o.n_deps ||
        info.has_sec_cnt != o.has_sec_cnt)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_sign(data, size);

    struct image_info info;
    struct image_result r;
    enum image_status ps = image_parse(data, size, &info);
    struct image_verify_opts vo = {.keys = keys, .n_keys = 2};
    enum image_status vs = image_verify(data, size, &vo, &r);

    if (image_status_str(ps) == NULL || image_status_str(vs) == NULL)
        abort();
    if (ps != IMAGE_OK && vs != ps)
        abort(); /* verification starts with the same parse */
    if (ps == IMAGE_OK) {
        if (!(info.hdr_size >= IMAGE_HEADER_LEN && info.hashed_len <= info.tlv_end &&
              info.tlv_end + info.padding_len == size && info.n_deps <= IMAGE_MAX_DEPS &&
              info.n_tlvs <= IMAGE_MAX_TLVS && info.n_prot_tlvs <= IMAGE_MAX_TLVS))
            abort();
        if ((info.sig_off != 0 && !in_range(info.sig_off, info.sig_len, info.tlv_end)) ||
            (info.pubkey_off != 0 && !in_range(info.pubkey_off, info.pubkey_len, info.tlv_end)) ||
            (info.boot_record_off != 0 &&
             !in_range(info.boot_record_off, info.boot_record_len, info.hashed_len)))
            abort();
    }
    if (vs == IMAGE_OK) {
        if (memcmp(r.digest, r.info.sha256, sizeof(r.digest)) != 0 || r.key_index >= 2)
            abort();
        /* policy on an authentic image */
        struct image_verify_opts pol = vo;
        pol.check_min_counter = 1;
        pol.min_counter = 3;
        pol.expect_cid = r.info.has_cid ? r.info.cid : NULL;
        enum image_status st = image_verify(data, size, &pol, &r);
        if (st != IMAGE_OK && st != IMAGE_ERR_COUNTER_LOW && st != IMAGE_ERR_COUNTER_MISSING)
            abort();
    }
    return 0;
}
