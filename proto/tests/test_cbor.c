/* CBOR codec: RFC 8949 Appendix A encodings, the decoder's strictness (shortest form,
 * indefinite lengths, reserved values, floats, UTF-8, depth, truncation, trailing bytes) and
 * the encoder's bounds. */
#include "check.h"

#include <string.h>

#include "fleetgw/cbor.h"

static size_t unhex(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = 0;
    while (hex[0] != '\0' && hex[1] != '\0' && n < cap) {
        out[n++] = (uint8_t)(check_hexval(hex[0]) << 4 | check_hexval(hex[1]));
        hex += 2;
    }
    return n;
}

static int enc_is(const struct cbor_enc *e, const char *hex)
{
    uint8_t want[64];
    size_t n = unhex(hex, want, sizeof(want)), len = 0;
    return cbor_enc_finish(e, &len) == CBOR_OK && len == n && memcmp(e->buf, want, n) == 0;
}

static void test_encode_rfc_examples(void)
{
    static const struct {
        uint64_t v;
        const char *hex;
    } uints[] = {
        {0, "00"},
        {1, "01"},
        {10, "0a"},
        {23, "17"},
        {24, "1818"},
        {25, "1819"},
        {100, "1864"},
        {255, "18ff"},
        {256, "190100"},
        {1000, "1903e8"},
        {65535, "19ffff"},
        {65536, "1a00010000"},
        {1000000, "1a000f4240"},
        {4294967295u, "1affffffff"},
        {4294967296u, "1b0000000100000000"},
        {1000000000000u, "1b000000e8d4a51000"},
        {18446744073709551615u, "1bffffffffffffffff"},
    };
    static const struct {
        int64_t v;
        const char *hex;
    } ints[] = {
        {-1, "20"},
        {-10, "29"},
        {-24, "37"},
        {-25, "3818"},
        {-100, "3863"},
        {-1000, "3903e7"},
        {-7, "26"},
        {-35, "3822"},
        {INT64_MIN, "3b7fffffffffffffff"},
        {INT64_MAX, "1b7fffffffffffffff"},
    };
    uint8_t buf[64];
    struct cbor_enc e;

    for (size_t i = 0; i < sizeof(uints) / sizeof(uints[0]); i++) {
        cbor_enc_init(&e, buf, sizeof(buf));
        cbor_put_uint(&e, uints[i].v);
        CHECK(enc_is(&e, uints[i].hex));
        CHECK_EQ_INT(cbor_head_len(uints[i].v), strlen(uints[i].hex) / 2);
        /* and back */
        struct cbor_dec d;
        uint64_t v = 0;
        cbor_dec_init(&d, buf, e.len);
        CHECK(cbor_get_uint(&d, &v) == CBOR_OK && v == uints[i].v && cbor_dec_done(&d) == CBOR_OK);
    }
    for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
        cbor_enc_init(&e, buf, sizeof(buf));
        cbor_put_int(&e, ints[i].v);
        CHECK(enc_is(&e, ints[i].hex));
        struct cbor_dec d;
        int64_t v = 0;
        cbor_dec_init(&d, buf, e.len);
        CHECK(cbor_get_int(&d, &v) == CBOR_OK && v == ints[i].v && cbor_dec_done(&d) == CBOR_OK);
    }

    cbor_enc_init(&e, buf, sizeof(buf));
    cbor_put_bytes(&e, NULL, 0);
    CHECK(enc_is(&e, "40"));
    cbor_enc_init(&e, buf, sizeof(buf));
    cbor_put_bytes(&e, (const uint8_t *)"\x01\x02\x03\x04", 4);
    CHECK(enc_is(&e, "4401020304"));
    cbor_enc_init(&e, buf, sizeof(buf));
    cbor_put_text(&e, "IETF", 4);
    CHECK(enc_is(&e, "6449455446"));
    cbor_enc_init(&e, buf, sizeof(buf));
    cbor_put_text(&e, "\xc3\xbc", 2);
    CHECK(enc_is(&e, "62c3bc"));
    cbor_enc_init(&e, buf, sizeof(buf));
    cbor_put_text(&e, "\xf0\x90\x85\x91", 4);
    CHECK(enc_is(&e, "64f0908591"));
    /* [1, [2, 3], [4, 5]] */
    cbor_enc_init(&e, buf, sizeof(buf));
    cbor_put_array(&e, 3);
    cbor_put_uint(&e, 1);
    cbor_put_array(&e, 2);
    cbor_put_uint(&e, 2);
    cbor_put_uint(&e, 3);
    cbor_put_array(&e, 2);
    cbor_put_uint(&e, 4);
    cbor_put_uint(&e, 5);
    CHECK(enc_is(&e, "8301820203820405"));
    /* {"a": 1, "b": [2, 3]} */
    cbor_enc_init(&e, buf, sizeof(buf));
    cbor_put_map(&e, 2);
    cbor_put_text(&e, "a", 1);
    cbor_put_uint(&e, 1);
    cbor_put_text(&e, "b", 1);
    cbor_put_array(&e, 2);
    cbor_put_uint(&e, 2);
    cbor_put_uint(&e, 3);
    CHECK(enc_is(&e, "a26161016162820203"));
    /* 1(1363896240), false, true, null */
    cbor_enc_init(&e, buf, sizeof(buf));
    cbor_put_tag(&e, 1);
    cbor_put_uint(&e, 1363896240);
    cbor_put_bool(&e, 0);
    cbor_put_bool(&e, 1);
    cbor_put_null(&e);
    CHECK(enc_is(&e, "c11a514b67b0f4f5f6"));
    /* 25 element array: head 98 19 */
    cbor_enc_init(&e, buf, sizeof(buf));
    cbor_put_array(&e, 25);
    CHECK(enc_is(&e, "9819"));
}

static void test_encoder_bounds(void)
{
    uint8_t buf[16];
    struct cbor_enc e;
    size_t len = 99;

    /* measuring mode */
    cbor_enc_init(&e, NULL, 0);
    cbor_put_bytes(&e, (const uint8_t *)"0123456789", 10);
    cbor_put_uint(&e, 1000000);
    CHECK(cbor_enc_finish(&e, &len) == CBOR_OK && len == 16);
    /* every too-small buffer fails with NOSPACE and writes nothing past cap */
    for (size_t cap = 0; cap < 16; cap++) {
        memset(buf, 0xee, sizeof(buf));
        cbor_enc_init(&e, buf, cap);
        cbor_put_bytes(&e, (const uint8_t *)"0123456789", 10);
        cbor_put_uint(&e, 1000000);
        CHECK_EQ_INT(cbor_enc_finish(&e, &len), CBOR_ERR_NOSPACE);
        for (size_t i = cap; i < sizeof(buf); i++)
            CHECK(buf[i] == 0xee);
    }
    cbor_enc_init(&e, buf, sizeof(buf));
    cbor_put_bytes(&e, (const uint8_t *)"0123456789", 10);
    cbor_put_uint(&e, 1000000);
    CHECK(cbor_enc_finish(&e, &len) == CBOR_OK && len == 16);
    /* the first error sticks */
    cbor_enc_init(&e, buf, sizeof(buf));
    cbor_put_text(&e, "\xff", 1);
    cbor_put_uint(&e, 1);
    CHECK_EQ_INT(cbor_enc_finish(&e, &len), CBOR_ERR_UTF8);
    cbor_enc_init(&e, buf, sizeof(buf));
    cbor_put_bytes(&e, NULL, 3);
    CHECK_EQ_INT(cbor_enc_finish(&e, &len), CBOR_ERR_ARG);
}

/* Decodes hex with cbor_check() (one complete item, exact). */
static enum cbor_err check_hex(const char *hex)
{
    uint8_t buf[128];
    size_t n = unhex(hex, buf, sizeof(buf));
    return cbor_check(buf, n);
}

static void test_decoder_strict(void)
{
    /* well-formed and accepted */
    CHECK_EQ_INT(check_hex("00"), CBOR_OK);
    CHECK_EQ_INT(check_hex("8301820203820405"), CBOR_OK);
    CHECK_EQ_INT(check_hex("a26161016162820203"), CBOR_OK);
    CHECK_EQ_INT(check_hex("c11a514b67b0"), CBOR_OK);
    CHECK_EQ_INT(check_hex("f4"), CBOR_OK);
    CHECK_EQ_INT(check_hex("f6"), CBOR_OK);
    CHECK_EQ_INT(check_hex("80"), CBOR_OK);
    CHECK_EQ_INT(check_hex("a0"), CBOR_OK);
    /* non-shortest heads of every width and type */
    CHECK_EQ_INT(check_hex("1817"), CBOR_ERR_NONSHORTEST);
    CHECK_EQ_INT(check_hex("1900ff"), CBOR_ERR_NONSHORTEST);
    CHECK_EQ_INT(check_hex("1a0000ffff"), CBOR_ERR_NONSHORTEST);
    CHECK_EQ_INT(check_hex("1b00000000ffffffff"), CBOR_ERR_NONSHORTEST);
    CHECK_EQ_INT(check_hex("3800"), CBOR_ERR_NONSHORTEST);
    CHECK_EQ_INT(check_hex("5801ff"), CBOR_ERR_NONSHORTEST);
    CHECK_EQ_INT(check_hex("780161"), CBOR_ERR_NONSHORTEST);
    CHECK_EQ_INT(check_hex("980100"), CBOR_ERR_NONSHORTEST);
    CHECK_EQ_INT(check_hex("b8010000"), CBOR_ERR_NONSHORTEST);
    CHECK_EQ_INT(check_hex("d81200"), CBOR_ERR_NONSHORTEST);
    /* indefinite lengths and break */
    CHECK_EQ_INT(check_hex("5f4100ff"), CBOR_ERR_INDEFINITE);
    CHECK_EQ_INT(check_hex("7f6161ff"), CBOR_ERR_INDEFINITE);
    CHECK_EQ_INT(check_hex("9f01ff"), CBOR_ERR_INDEFINITE);
    CHECK_EQ_INT(check_hex("bf0101ff"), CBOR_ERR_INDEFINITE);
    CHECK_EQ_INT(check_hex("ff"), CBOR_ERR_INDEFINITE);
    CHECK_EQ_INT(check_hex("1f"), CBOR_ERR_INDEFINITE);
    /* reserved additional information */
    CHECK_EQ_INT(check_hex("1c"), CBOR_ERR_RESERVED);
    CHECK_EQ_INT(check_hex("5d"), CBOR_ERR_RESERVED);
    CHECK_EQ_INT(check_hex("fe"), CBOR_ERR_RESERVED);
    /* floats, undefined, other simple values */
    CHECK_EQ_INT(check_hex("f93c00"), CBOR_ERR_UNSUPPORTED);
    CHECK_EQ_INT(check_hex("fa47c35000"), CBOR_ERR_UNSUPPORTED);
    CHECK_EQ_INT(check_hex("fb3ff199999999999a"), CBOR_ERR_UNSUPPORTED);
    CHECK_EQ_INT(check_hex("f7"), CBOR_ERR_UNSUPPORTED);
    CHECK_EQ_INT(check_hex("f0"), CBOR_ERR_UNSUPPORTED);
    CHECK_EQ_INT(check_hex("f8ff"), CBOR_ERR_UNSUPPORTED);
    CHECK_EQ_INT(check_hex("f818"), CBOR_ERR_UNSUPPORTED);
    /* truncation */
    CHECK_EQ_INT(check_hex(""), CBOR_ERR_TRUNCATED);
    CHECK_EQ_INT(check_hex("18"), CBOR_ERR_TRUNCATED);
    CHECK_EQ_INT(check_hex("1901"), CBOR_ERR_TRUNCATED);
    CHECK_EQ_INT(check_hex("4401"), CBOR_ERR_TRUNCATED);
    CHECK_EQ_INT(check_hex("8301"), CBOR_ERR_TRUNCATED);
    CHECK_EQ_INT(check_hex("a101"), CBOR_ERR_TRUNCATED);
    CHECK_EQ_INT(check_hex("c1"), CBOR_ERR_TRUNCATED);
    CHECK_EQ_INT(check_hex("5bffffffffffffffff00"), CBOR_ERR_TRUNCATED);
    CHECK_EQ_INT(check_hex("9bffffffffffffffff00"), CBOR_ERR_TRUNCATED);
    CHECK_EQ_INT(check_hex("bbffffffffffffffff0000"), CBOR_ERR_TRUNCATED);
    CHECK_EQ_INT(check_hex("bb7fffffffffffffff0000"), CBOR_ERR_TRUNCATED);
    /* trailing */
    CHECK_EQ_INT(check_hex("0000"), CBOR_ERR_TRAILING);
    CHECK_EQ_INT(check_hex("8000"), CBOR_ERR_TRAILING);
    /* UTF-8 */
    CHECK_EQ_INT(check_hex("62c3bc"), CBOR_OK);
    CHECK_EQ_INT(check_hex("64f0908591"), CBOR_OK);
    CHECK_EQ_INT(check_hex("61ff"), CBOR_ERR_UTF8);
    CHECK_EQ_INT(check_hex("62c0af"), CBOR_ERR_UTF8);     /* overlong '/' */
    CHECK_EQ_INT(check_hex("63eda080"), CBOR_ERR_UTF8);   /* surrogate U+D800 */
    CHECK_EQ_INT(check_hex("64f4908080"), CBOR_ERR_UTF8); /* > U+10FFFF */
    CHECK_EQ_INT(check_hex("63e08080"), CBOR_ERR_UTF8);   /* overlong 3-byte */
    CHECK_EQ_INT(check_hex("61c3"), CBOR_ERR_UTF8);       /* cut sequence */
    CHECK_EQ_INT(check_hex("6280bf"), CBOR_ERR_UTF8);     /* lone continuation */
    CHECK_EQ_INT(check_hex("4280bf"), CBOR_OK);           /* bytes are not text */
}

static void test_depth(void)
{
    uint8_t buf[64];
    /* n nested one-element arrays around a 0 */
    for (size_t n = 1; n <= CBOR_MAX_DEPTH + 2; n++) {
        memset(buf, 0x81, n);
        buf[n] = 0x00;
        enum cbor_err want = n <= CBOR_MAX_DEPTH ? CBOR_OK : CBOR_ERR_DEPTH;
        CHECK_EQ_INT(cbor_check(buf, n + 1), want);
    }
    /* tags nest too */
    memset(buf, 0xc1, CBOR_MAX_DEPTH + 1);
    buf[CBOR_MAX_DEPTH + 1] = 0x00;
    CHECK_EQ_INT(cbor_check(buf, CBOR_MAX_DEPTH + 2), CBOR_ERR_DEPTH);
    CHECK_EQ_INT(cbor_check(buf + 1, CBOR_MAX_DEPTH + 1), CBOR_OK);
}

static void test_typed_readers(void)
{
    uint8_t buf[64];
    size_t n = unhex("a3"
                     "0a"
                     "4401020304"
                     "3903e7"
                     "6449455446"
                     "19ffff"
                     "83f5f4f6",
                     buf, sizeof(buf));
    struct cbor_dec d;
    size_t count = 0, blen = 0;
    const uint8_t *b;
    const char *t;
    int64_t i = 0;
    uint64_t u = 0, tag = 0;
    int flag = 0;

    cbor_dec_init(&d, buf, n);
    CHECK_EQ_INT(cbor_get_array(&d, &count, 10), CBOR_ERR_TYPE);
    CHECK_EQ_INT(d.off, 0);
    CHECK_EQ_INT(cbor_get_map(&d, &count, 2), CBOR_ERR_RANGE);
    CHECK_EQ_INT(cbor_get_map(&d, &count, 3), CBOR_OK);
    CHECK_EQ_INT(count, 3);
    CHECK(cbor_get_uint(&d, &u) == CBOR_OK && u == 10);
    CHECK_EQ_INT(cbor_get_bytes(&d, &b, &blen, 3), CBOR_ERR_RANGE);
    CHECK(b == NULL && blen == 0);
    CHECK_EQ_INT(cbor_get_text(&d, &t, &blen, 10), CBOR_ERR_TYPE);
    CHECK(cbor_get_bytes(&d, &b, &blen, 4) == CBOR_OK && blen == 4 && b[3] == 4);
    CHECK_EQ_INT(cbor_get_uint(&d, &u), CBOR_ERR_TYPE);
    CHECK(cbor_get_int(&d, &i) == CBOR_OK && i == -1000);
    CHECK(cbor_get_text(&d, &t, &blen, 4) == CBOR_OK && blen == 4 && memcmp(t, "IETF", 4) == 0);
    CHECK(cbor_get_uint(&d, &u) == CBOR_OK && u == 65535);
    CHECK_EQ_INT(cbor_get_tag(&d, &tag), CBOR_ERR_TYPE);
    CHECK(cbor_get_array(&d, &count, 3) == CBOR_OK && count == 3);
    CHECK_EQ_INT(cbor_get_null(&d), CBOR_ERR_TYPE);
    CHECK(cbor_get_bool(&d, &flag) == CBOR_OK && flag == 1);
    CHECK(cbor_get_bool(&d, &flag) == CBOR_OK && flag == 0);
    CHECK_EQ_INT(cbor_get_bool(&d, &flag), CBOR_ERR_TYPE);
    CHECK_EQ_INT(cbor_get_null(&d), CBOR_OK);
    CHECK_EQ_INT(cbor_dec_done(&d), CBOR_OK);
    CHECK_EQ_INT(cbor_get_uint(&d, &u), CBOR_ERR_TRUNCATED);

    /* integers beyond int64 */
    n = unhex("1bffffffffffffffff"
              "3bffffffffffffffff"
              "3b8000000000000000",
              buf, sizeof(buf));
    cbor_dec_init(&d, buf, n);
    CHECK_EQ_INT(cbor_get_int(&d, &i), CBOR_ERR_RANGE);
    CHECK(cbor_get_uint(&d, &u) == CBOR_OK && u == UINT64_MAX);
    CHECK_EQ_INT(cbor_get_int(&d, &i), CBOR_ERR_RANGE);
    CHECK_EQ_INT(cbor_skip(&d), CBOR_OK);
    CHECK_EQ_INT(cbor_get_int(&d, &i), CBOR_ERR_RANGE);

    /* skip of a nested structure lands exactly after it */
    n = unhex("a2616182010261628201a10203"
              "07",
              buf, sizeof(buf));
    cbor_dec_init(&d, buf, n);
    CHECK_EQ_INT(cbor_skip(&d), CBOR_OK);
    CHECK(cbor_get_uint(&d, &u) == CBOR_OK && u == 7);
    CHECK_EQ_INT(cbor_dec_done(&d), CBOR_OK);

    /* every strict prefix of a valid item is truncated, never accepted */
    for (size_t k = 0; k + 1 < n; k++)
        CHECK_EQ_INT(cbor_check(buf, k), CBOR_ERR_TRUNCATED);

    for (int e = CBOR_OK; e <= CBOR_ERR_TRAILING; e++)
        CHECK(strcmp(cbor_err_str((enum cbor_err)e), "unknown error") != 0);
}

int main(void)
{
    test_encode_rfc_examples();
    test_encoder_bounds();
    test_decoder_strict();
    test_depth();
    test_typed_readers();
    return check_finish();
}
