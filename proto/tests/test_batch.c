/* The uplink batch format (fleetgw/batch.h): the hex example of docs/batch-format.md is exactly
 * what the encoder writes (and what python cbor2 writes, checked when the example was made)
 * and decodes back; batches round-trip across every head-size boundary; the heads land right
 * before the entries; every error of enum batch_err is given where it should be, with the
 * byte offset; NOSPACE/FIELD/ORDER leave the encoder unchanged. */
#include "check.h"

#include <stdlib.h>
#include <string.h>

#include "fleetgw/batch.h"
#include "fleetgw/cbor.h"

static const uint8_t telemetry[4] = {0xa1, 0x61, 0x74, 0x15}; /* {"t": 21} */

/* The documented example: two entries of two nodes. */
static const struct batch_entry example_entries[2] = {
    {"n1", 2, "nodes/n1/telemetry", 18, 41, 1796601600, telemetry, sizeof(telemetry)},
    {"n2", 2, "nodes/n2/status", 15, 42, 1796601601, NULL, 0},
};

static uint8_t big[(1u << 20) + 64];
static uint8_t big2[(1u << 20) + 64];
static uint8_t huge[BATCH_ENTRIES_MAX * 16u + 1024u];

static void print_hex(const char *name, const uint8_t *b, size_t n)
{
    fprintf(stderr, "<!-- example: %s -->\n```\n", name);
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, "%02x%s", b[i], (i + 1) % 32 == 0 || i + 1 == n ? "\n" : "");
    fprintf(stderr, "```\n");
}

static int entry_eq(const struct batch_entry *a, const struct batch_entry *b)
{
    return a->node_len == b->node_len && memcmp(a->node, b->node, a->node_len) == 0 &&
           a->tail_len == b->tail_len && memcmp(a->tail, b->tail, a->tail_len) == 0 &&
           a->seq == b->seq && a->ts == b->ts && a->payload_len == b->payload_len &&
           (a->payload_len == 0 || memcmp(a->payload, b->payload, a->payload_len) == 0);
}

/* Decodes a whole batch: BATCH_OK with every entry in out[] (count in *n), or the first error
 * and its offset. */
static enum batch_err decode_all(const uint8_t *b, size_t len, struct batch_entry *out, size_t cap,
                                 size_t *n, size_t *where)
{
    struct batch_dec d;
    const char *gw;
    size_t gl, count;
    *n = 0;
    enum batch_err r = batch_dec_init(&d, b, len, &gw, &gl, &count, where);
    if (r != BATCH_OK)
        return r;
    for (size_t i = 0; i < count; i++) {
        struct batch_entry e;
        if ((r = batch_dec_next(&d, &e, where)) != BATCH_OK)
            return r;
        if (i < cap)
            out[i] = e;
        *n = i + 1;
    }
    return batch_dec_end(&d, where);
}

static void test_example(void)
{
    uint8_t buf[256], want[256];
    struct batch_enc e;
    const uint8_t *out = NULL;
    size_t len = 0, entries = 0;

    CHECK_EQ_INT(batch_enc_init(&e, buf, sizeof(buf), "gw-1", 4), BATCH_OK);
    for (size_t i = 0; i < 2; i++) {
        CHECK_EQ_INT(batch_enc_add(&e, &example_entries[i]), BATCH_OK);
        entries += batch_entry_size(&example_entries[i]);
    }
    CHECK_EQ_INT(batch_enc_finish(&e, &out, &len), BATCH_OK);
    CHECK_EQ_INT(len, 71);
    CHECK_EQ_INT(len, batch_size(4, 2, entries));
    CHECK(out + len == buf + e.len); /* ends at the last entry */
    CHECK(out >= buf && out <= buf + e.start);
    CHECK_EQ_INT(cbor_check(out, len), CBOR_OK);

    const char *doc = check_read_source("docs/batch-format.md");
    CHECK(doc != NULL);
    long wl = doc == NULL ? -1 : check_doc_example(doc, "batch-2", want, sizeof(want));
    int same = wl >= 0 && (size_t)wl == len && memcmp(want, out, len) == 0;
    if (!same) {
        fprintf(stderr, "docs/batch-format.md example 'batch-2' differs; the encoder says:\n");
        print_hex("batch-2", out, len);
    }
    CHECK(same);
    /* the bytes as derived by hand in docs/batch-format.md (and written by python cbor2) */
    static const char hand[] = "83016467772d318285626e31726e6f6465732f6e312f74656c656d6574727918"
                               "291a6b15f70044a161741585626e326f6e6f6465732f6e322f73746174757318"
                               "2a1a6b15f70140";
    CHECK_EQ_INT(strlen(hand), 2 * len);
    int hand_same = strlen(hand) == 2 * len;
    for (size_t i = 0; hand_same && i < len; i++)
        hand_same =
            (uint8_t)(check_hexval(hand[2 * i]) * 16 + check_hexval(hand[2 * i + 1])) == out[i];
    CHECK(hand_same);

    struct batch_dec d;
    const char *gw = NULL;
    size_t gl = 0, count = 0, where = 99;
    struct batch_entry got;
    CHECK_EQ_INT(batch_dec_init(&d, out, len, &gw, &gl, &count, &where), BATCH_OK);
    CHECK(gl == 4 && memcmp(gw, "gw-1", 4) == 0 && count == 2);
    CHECK_EQ_INT(batch_dec_end(&d, &where), BATCH_ERR_CBOR); /* entries left */
    for (size_t i = 0; i < 2; i++) {
        CHECK_EQ_INT(batch_dec_next(&d, &got, &where), BATCH_OK);
        CHECK(entry_eq(&got, &example_entries[i]));
        CHECK(got.node >= (const char *)out && got.node < (const char *)out + len);
    }
    CHECK_EQ_INT(batch_dec_end(&d, &where), BATCH_OK);
    /* one call too many */
    CHECK_EQ_INT(batch_dec_next(&d, &got, &where), BATCH_ERR_CBOR);
    CHECK_EQ_INT(where, len);
    CHECK(got.node == NULL && got.seq == 0);

    /* every truncation fails, none gives BATCH_OK; a trailing byte fails at its offset */
    struct batch_entry tmp[2];
    size_t n;
    for (size_t k = 0; k < len; k++) {
        enum batch_err r = decode_all(out, k, tmp, 2, &n, &where);
        CHECK(r == BATCH_ERR_CBOR);
        CHECK(where <= k);
    }
    uint8_t trail[256];
    memcpy(trail, out, len);
    trail[len] = 0x00;
    CHECK_EQ_INT(decode_all(trail, len + 1, tmp, 2, &n, &where), BATCH_ERR_CBOR);
    CHECK_EQ_INT(where, len);
    CHECK_EQ_INT(n, 1); /* the first entry was fine; the last one sees the trailing byte */
}

/* Values that sit at every CBOR head-size boundary. */
static const uint64_t edges[] = {
    0, 23, 24, 255, 256, 65535, 65536, 0xffffffffu, 0x100000000u, UINT64_MAX - 1, UINT64_MAX};
static const size_t len_edges[] = {0, 1, 23, 24, 255, 256, 65535, 65536, BATCH_PAYLOAD_MAX};

static void test_roundtrip(void)
{
    static struct batch_entry in[300], dec[300];
    static char tails[300][BATCH_TAIL_MAX];
    static char nodes[300][48];
    static const size_t counts[] = {1, 2, 23, 24, 255, 256, 300};
    for (size_t i = 0; i < sizeof(big2); i++)
        big2[i] = (uint8_t)(i * 7u + 3u);
    for (size_t ci = 0; ci < sizeof(counts) / sizeof(counts[0]); ci++) {
        size_t count = counts[ci], entries = 0;
        uint64_t seq;
        for (size_t i = 0; i < count; i++) {
            struct batch_entry *x = &in[i];
            size_t nl = 1 + i % 48, tl = 1 + (i * 37u) % BATCH_TAIL_MAX;
            for (size_t j = 0; j < nl; j++)
                nodes[i][j] = "abcXYZ019_-"[(i + j) % 11];
            for (size_t j = 0; j < tl; j++)
                tails[i][j] = (char)('a' + (i + j) % 26);
            /* multi-byte UTF-8 in a tail */
            if (tl >= 2) {
                tails[i][0] = (char)0xc3;
                tails[i][1] = (char)0xa9;
            }
            x->node = nodes[i];
            x->node_len = nl;
            x->tail = tails[i];
            x->tail_len = tl;
            /* increasing seqs that cross the head-size edges */
            if (count <= sizeof(edges) / sizeof(edges[0]))
                seq = edges[i];
            else
                seq = (uint64_t)i * 0x01000193u + (i > 200 ? 0x100000000u : 0u);
            if (i == count - 1 && count > 1)
                seq = UINT64_MAX;
            x->seq = seq;
            x->ts = edges[(i * 3) % (sizeof(edges) / sizeof(edges[0]))];
            x->payload = big2;
            x->payload_len =
                count <= 24 ? len_edges[i % (sizeof(len_edges) / sizeof(len_edges[0]))] : i % 300;
            entries += batch_entry_size(x);
        }
        size_t cap = batch_size(7, count, entries);
        uint8_t *buf = malloc(cap + 16);
        CHECK(buf != NULL);
        if (buf == NULL)
            return;
        struct batch_enc e;
        const uint8_t *out;
        size_t len, n = 0, where = 0;
        /* the buffer exactly the reserved heads + entries: the last byte is used */
        size_t need = batch_size(7, BATCH_ENTRIES_MAX, entries);
        CHECK_EQ_INT(batch_enc_init(&e, buf, need, "gw-é12", 7), BATCH_OK);
        int ok = 1;
        for (size_t i = 0; i < count; i++)
            ok &= batch_enc_add(&e, &in[i]) == BATCH_OK;
        CHECK(ok);
        CHECK_EQ_INT(e.len, need);
        CHECK_EQ_INT(batch_enc_finish(&e, &out, &len), BATCH_OK);
        CHECK_EQ_INT(len, cap);
        CHECK(out + len == buf + need);
        CHECK_EQ_INT(cbor_check(out, len), CBOR_OK);
        CHECK_EQ_INT(decode_all(out, len, dec, 300, &n, &where), BATCH_OK);
        CHECK_EQ_INT(n, count);
        ok = 1;
        for (size_t i = 0; i < count; i++)
            ok &= entry_eq(&in[i], &dec[i]);
        CHECK(ok);
        free(buf);
    }
}

/* A batch built item by item, so that every field can be made wrong. */
struct raw {
    struct cbor_enc c;
    uint8_t buf[1024];
};

static void raw_head(struct raw *r, uint64_t version, const char *gw, size_t entries)
{
    cbor_enc_init(&r->c, r->buf, sizeof(r->buf));
    cbor_put_array(&r->c, 3);
    cbor_put_uint(&r->c, version);
    cbor_put_text(&r->c, gw, strlen(gw));
    cbor_put_array(&r->c, entries);
}

static void raw_entry(struct raw *r, const char *node, const char *tail, uint64_t seq)
{
    cbor_put_array(&r->c, 5);
    cbor_put_text(&r->c, node, strlen(node));
    cbor_put_text(&r->c, tail, strlen(tail));
    cbor_put_uint(&r->c, seq);
    cbor_put_uint(&r->c, 1000);
    cbor_put_bytes(&r->c, telemetry, sizeof(telemetry));
}

static enum batch_err raw_decode(struct raw *r, size_t *where)
{
    struct batch_entry tmp[4];
    size_t len = 0, n;
    CHECK_EQ_INT(cbor_enc_finish(&r->c, &len), CBOR_OK);
    return decode_all(r->buf, len, tmp, 4, &n, where);
}

static void test_decode_errors(void)
{
    struct raw r;
    size_t where = 0;
    char s[300];

    /* well-formed control: offsets below are counted from this layout */
    raw_head(&r, 1, "gw", 2);
    raw_entry(&r, "n1", "t", 5);
    raw_entry(&r, "n2", "t", 6);
    CHECK_EQ_INT(raw_decode(&r, &where), BATCH_OK);

    /* VERSION: 2, also with another array length (a future shape) */
    raw_head(&r, 2, "gw", 1);
    raw_entry(&r, "n1", "t", 5);
    CHECK_EQ_INT(raw_decode(&r, &where), BATCH_ERR_VERSION);
    CHECK_EQ_INT(where, 1);
    cbor_enc_init(&r.c, r.buf, sizeof(r.buf));
    cbor_put_array(&r.c, 4);
    cbor_put_uint(&r.c, 0);
    cbor_put_null(&r.c);
    cbor_put_null(&r.c);
    cbor_put_null(&r.c);
    CHECK_EQ_INT(raw_decode(&r, &where), BATCH_ERR_VERSION);
    CHECK_EQ_INT(where, 1);

    /* CBOR: not an array; version 1 in a 4-array; version a text; an entry of 4 fields;
     * seq a negative int; payload a text; indefinite and non-shortest heads; bad UTF-8 */
    static const uint8_t not_array[] = {0x01};
    struct batch_dec d;
    const char *gw;
    size_t gl, count;
    CHECK_EQ_INT(batch_dec_init(&d, not_array, 1, &gw, &gl, &count, &where), BATCH_ERR_CBOR);
    CHECK_EQ_INT(where, 0);
    CHECK(gw == NULL && gl == 0 && count == 0);
    CHECK_EQ_INT(batch_dec_init(&d, NULL, 0, &gw, &gl, &count, &where), BATCH_ERR_CBOR);
    static const uint8_t empty_array[] = {0x80};
    CHECK_EQ_INT(batch_dec_init(&d, empty_array, 1, &gw, &gl, &count, &where), BATCH_ERR_CBOR);
    cbor_enc_init(&r.c, r.buf, sizeof(r.buf));
    cbor_put_array(&r.c, 4);
    cbor_put_uint(&r.c, 1);
    cbor_put_text(&r.c, "gw", 2);
    cbor_put_array(&r.c, 0);
    cbor_put_null(&r.c);
    CHECK_EQ_INT(raw_decode(&r, &where), BATCH_ERR_CBOR);
    cbor_enc_init(&r.c, r.buf, sizeof(r.buf));
    cbor_put_array(&r.c, 3);
    cbor_put_text(&r.c, "1", 1);
    cbor_put_text(&r.c, "gw", 2);
    cbor_put_array(&r.c, 1);
    raw_entry(&r, "n1", "t", 1);
    CHECK_EQ_INT(raw_decode(&r, &where), BATCH_ERR_CBOR);
    CHECK_EQ_INT(where, 1);

    raw_head(&r, 1, "gw", 1); /* 83 01 62 6777 81 = 6 bytes */
    cbor_put_array(&r.c, 4);
    cbor_put_text(&r.c, "n1", 2);
    CHECK_EQ_INT(raw_decode(&r, &where), BATCH_ERR_CBOR);
    CHECK_EQ_INT(where, 6);

    raw_head(&r, 1, "gw", 1);
    cbor_put_array(&r.c, 5);
    cbor_put_text(&r.c, "n1", 2);
    cbor_put_text(&r.c, "t", 1);
    cbor_put_int(&r.c, -1);
    CHECK_EQ_INT(raw_decode(&r, &where), BATCH_ERR_CBOR);
    CHECK_EQ_INT(where, 6 + 1 + 3 + 2); /* the seq item */

    raw_head(&r, 1, "gw", 1);
    cbor_put_array(&r.c, 5);
    cbor_put_text(&r.c, "n1", 2);
    cbor_put_text(&r.c, "t", 1);
    cbor_put_uint(&r.c, 1);
    cbor_put_uint(&r.c, 1);
    cbor_put_text(&r.c, "p", 1);
    CHECK_EQ_INT(raw_decode(&r, &where), BATCH_ERR_CBOR);
    CHECK_EQ_INT(where, 6 + 1 + 3 + 2 + 1 + 1);

    static const uint8_t indefinite[] = {0x9f, 0x01, 0xff};
    CHECK_EQ_INT(batch_dec_init(&d, indefinite, 3, &gw, &gl, &count, &where), BATCH_ERR_CBOR);
    static const uint8_t nonshortest[] = {0x98, 0x03, 0x01, 0x61, 0x67, 0x80};
    CHECK_EQ_INT(batch_dec_init(&d, nonshortest, 6, &gw, &gl, &count, &where), BATCH_ERR_CBOR);
    CHECK_EQ_INT(where, 0);
    static const uint8_t nonshortest_version[] = {0x83, 0x18, 0x01, 0x61, 0x67, 0x80};
    CHECK_EQ_INT(batch_dec_init(&d, nonshortest_version, 6, &gw, &gl, &count, &where),
                 BATCH_ERR_CBOR);
    CHECK_EQ_INT(where, 1);
    raw_head(&r, 1, "gw", 1);
    raw_entry(&r, "n1", "tx", 1);
    r.buf[6 + 1 + 3 + 2] = 0xff; /* the encoder refuses bad UTF-8: patch it in */
    CHECK_EQ_INT(raw_decode(&r, &where), BATCH_ERR_CBOR);
    CHECK_EQ_INT(where, 6 + 1 + 3);
    raw_head(&r, 1, "gxx", 1);
    r.buf[4] = 0xc0; /* an overlong NUL */
    r.buf[5] = 0x80;
    raw_entry(&r, "n1", "t", 1);
    CHECK_EQ_INT(raw_decode(&r, &where), BATCH_ERR_CBOR);
    CHECK_EQ_INT(where, 2);

    /* FIELD: gateway empty / too long; no entries; bad node ids; tail empty / too long */
    raw_head(&r, 1, "", 1);
    raw_entry(&r, "n1", "t", 1);
    CHECK_EQ_INT(raw_decode(&r, &where), BATCH_ERR_FIELD);
    CHECK_EQ_INT(where, 2);
    memset(s, 'g', sizeof(s));
    s[BATCH_GATEWAY_MAX] = '\0';
    raw_head(&r, 1, s, 1);
    raw_entry(&r, "n1", "t", 1);
    CHECK_EQ_INT(raw_decode(&r, &where), BATCH_OK);
    s[BATCH_GATEWAY_MAX] = 'g';
    s[BATCH_GATEWAY_MAX + 1] = '\0';
    raw_head(&r, 1, s, 1);
    raw_entry(&r, "n1", "t", 1);
    CHECK_EQ_INT(raw_decode(&r, &where), BATCH_ERR_FIELD);
    CHECK_EQ_INT(where, 2);
    raw_head(&r, 1, "gw", 0);
    CHECK_EQ_INT(raw_decode(&r, &where), BATCH_ERR_FIELD);
    CHECK_EQ_INT(where, 5);
    static const char *const bad_nodes[] = {
        "", "n/1", "n 1", "n+1", "é", "0123456789012345678901234567890123456789012345678"};
    for (size_t i = 0; i < sizeof(bad_nodes) / sizeof(bad_nodes[0]); i++) {
        raw_head(&r, 1, "gw", 2);
        raw_entry(&r, "n1", "t", 1);
        raw_entry(&r, bad_nodes[i], "t", 2);
        CHECK_EQ_INT(raw_decode(&r, &where), BATCH_ERR_FIELD);
        CHECK_EQ_INT(where, 6 + 15 + 1);
    }
    raw_head(&r, 1, "gw", 1);
    raw_entry(&r, "012345678901234567890123456789012345678901234567", "t", 1); /* 48: fine */
    CHECK_EQ_INT(raw_decode(&r, &where), BATCH_OK);
    raw_head(&r, 1, "gw", 1);
    raw_entry(&r, "n1", "", 1);
    CHECK_EQ_INT(raw_decode(&r, &where), BATCH_ERR_FIELD);
    CHECK_EQ_INT(where, 6 + 1 + 3);
    memset(s, 't', sizeof(s));
    s[BATCH_TAIL_MAX] = '\0';
    raw_head(&r, 1, "gw", 1);
    raw_entry(&r, "n1", s, 1);
    CHECK_EQ_INT(raw_decode(&r, &where), BATCH_OK);
    s[BATCH_TAIL_MAX] = 't';
    s[BATCH_TAIL_MAX + 1] = '\0';
    raw_head(&r, 1, "gw", 1);
    raw_entry(&r, "n1", s, 1);
    CHECK_EQ_INT(raw_decode(&r, &where), BATCH_ERR_FIELD);
    CHECK_EQ_INT(where, 6 + 1 + 3);

    /* FIELD: a payload of BATCH_PAYLOAD_MAX + 1 bytes (real bytes: lengths are checked
     * against the input first); BATCH_PAYLOAD_MAX itself is fine */
    for (int over = 0; over <= 1; over++) {
        struct cbor_enc c;
        size_t len = 0, n;
        struct batch_entry tmp[1];
        cbor_enc_init(&c, big, sizeof(big));
        cbor_put_array(&c, 3);
        cbor_put_uint(&c, 1);
        cbor_put_text(&c, "gw", 2);
        cbor_put_array(&c, 1);
        cbor_put_array(&c, 5);
        cbor_put_text(&c, "n1", 2);
        cbor_put_text(&c, "t", 1);
        cbor_put_uint(&c, 1);
        cbor_put_uint(&c, 1);
        cbor_put_bytes_head(&c, BATCH_PAYLOAD_MAX + (size_t)over);
        CHECK_EQ_INT(cbor_enc_finish(&c, &len), CBOR_OK);
        memset(big + len, 0x5a, BATCH_PAYLOAD_MAX + (size_t)over);
        len += BATCH_PAYLOAD_MAX + (size_t)over;
        CHECK_EQ_INT(decode_all(big, len, tmp, 1, &n, &where), over ? BATCH_ERR_FIELD : BATCH_OK);
        if (over)
            CHECK_EQ_INT(where, 6 + 1 + 3 + 2 + 1 + 1);
        else
            CHECK(n == 1 && tmp[0].payload_len == BATCH_PAYLOAD_MAX && tmp[0].payload[0] == 0x5a);
    }
    /* FIELD: more entries than BATCH_ENTRIES_MAX (with enough bytes behind the head) */
    {
        struct cbor_enc c;
        size_t len = 0;
        cbor_enc_init(&c, huge, sizeof(huge));
        cbor_put_array(&c, 3);
        cbor_put_uint(&c, 1);
        cbor_put_text(&c, "gw", 2);
        cbor_put_array(&c, (size_t)BATCH_ENTRIES_MAX + 1);
        CHECK_EQ_INT(cbor_enc_finish(&c, &len), CBOR_OK);
        memset(huge + len, 0x00, (size_t)BATCH_ENTRIES_MAX + 1);
        CHECK_EQ_INT(
            batch_dec_init(&d, huge, len + BATCH_ENTRIES_MAX + 1, &gw, &gl, &count, &where),
            BATCH_ERR_FIELD);
        CHECK_EQ_INT(where, 5);
    }

    /* ORDER: equal and decreasing seqs; where is the second seq */
    for (uint64_t second = 4; second <= 5; second++) {
        raw_head(&r, 1, "gw", 2);
        raw_entry(&r, "n1", "t", 5);
        raw_entry(&r, "n2", "t", second);
        CHECK_EQ_INT(raw_decode(&r, &where), BATCH_ERR_ORDER);
        CHECK_EQ_INT(where, 6 + 15 + 1 + 3 + 2);
    }
    /* a decoder that failed did not move: the same call fails the same way */
    {
        struct batch_entry en;
        size_t len = 0, w2 = 0;
        CHECK_EQ_INT(cbor_enc_finish(&r.c, &len), CBOR_OK);
        CHECK_EQ_INT(batch_dec_init(&d, r.buf, len, &gw, &gl, &count, &where), BATCH_OK);
        CHECK_EQ_INT(batch_dec_next(&d, &en, &where), BATCH_OK);
        struct batch_dec before = d;
        CHECK_EQ_INT(batch_dec_next(&d, &en, &where), BATCH_ERR_ORDER);
        CHECK(memcmp(&before, &d, sizeof(d)) == 0 && en.node == NULL);
        CHECK_EQ_INT(batch_dec_next(&d, &en, &w2), BATCH_ERR_ORDER);
        CHECK_EQ_INT(where, w2);
    }
}

static void test_encode_errors(void)
{
    uint8_t buf[256], snap[256];
    struct batch_enc e, before;
    const uint8_t *out = (const uint8_t *)"x";
    size_t len = 5;
    char s[300];

    /* gateway: empty, too long, bad UTF-8, NULL */
    memset(s, 'g', sizeof(s));
    CHECK_EQ_INT(batch_enc_init(&e, buf, sizeof(buf), "", 0), BATCH_ERR_FIELD);
    CHECK_EQ_INT(batch_enc_init(&e, buf, sizeof(buf), s, BATCH_GATEWAY_MAX + 1), BATCH_ERR_FIELD);
    CHECK_EQ_INT(batch_enc_init(&e, buf, sizeof(buf), "g\xff", 2), BATCH_ERR_FIELD);
    CHECK_EQ_INT(batch_enc_init(&e, buf, sizeof(buf), NULL, 2), BATCH_ERR_FIELD);
    /* NOSPACE: the heads do not fit (the reserve is the largest entries head, 3 bytes) */
    CHECK_EQ_INT(batch_enc_init(&e, buf, 1 + 1 + 1 + 2 + 3 - 1, "gw", 2), BATCH_ERR_NOSPACE);
    CHECK_EQ_INT(batch_enc_init(&e, buf, 1 + 1 + 1 + 2 + 3, "gw", 2), BATCH_OK);
    CHECK_EQ_INT(e.start, 8);
    /* finish with no entry */
    CHECK_EQ_INT(batch_enc_finish(&e, &out, &len), BATCH_ERR_FIELD);
    CHECK(out == NULL && len == 0);
    /* an entry into no room: NOSPACE, encoder and buffer unchanged */
    before = e;
    CHECK_EQ_INT(batch_enc_add(&e, &example_entries[0]), BATCH_ERR_NOSPACE);
    CHECK(memcmp(&before, &e, sizeof(e)) == 0);

    size_t one = batch_entry_size(&example_entries[0]);
    size_t two = batch_entry_size(&example_entries[1]);
    CHECK_EQ_INT(one, 1 + 3 + 19 + 2 + 5 + 5);
    CHECK_EQ_INT(two, 1 + 3 + 16 + 2 + 5 + 1);
    /* room for exactly the first entry and one byte less than the second */
    memset(buf, 0xee, sizeof(buf));
    CHECK_EQ_INT(batch_enc_init(&e, buf, 8 + one + two - 1, "gw", 2), BATCH_OK);
    CHECK_EQ_INT(batch_enc_add(&e, &example_entries[0]), BATCH_OK);
    before = e;
    memcpy(snap, buf, sizeof(buf));
    CHECK_EQ_INT(batch_enc_add(&e, &example_entries[1]), BATCH_ERR_NOSPACE);
    CHECK(memcmp(&before, &e, sizeof(e)) == 0 && memcmp(snap, buf, sizeof(buf)) == 0);
    /* FIELD / ORDER leave it unchanged too */
    struct batch_entry bad = example_entries[1];
    bad.node = "n/2";
    CHECK_EQ_INT(batch_enc_add(&e, &bad), BATCH_ERR_FIELD);
    bad = example_entries[1];
    bad.node_len = 0;
    CHECK_EQ_INT(batch_enc_add(&e, &bad), BATCH_ERR_FIELD);
    bad = example_entries[1];
    bad.tail_len = 0;
    CHECK_EQ_INT(batch_enc_add(&e, &bad), BATCH_ERR_FIELD);
    bad.tail = s;
    bad.tail_len = BATCH_TAIL_MAX + 1;
    CHECK_EQ_INT(batch_enc_add(&e, &bad), BATCH_ERR_FIELD);
    bad.tail = "t\xed\xa0\x80"; /* a surrogate */
    bad.tail_len = 4;
    CHECK_EQ_INT(batch_enc_add(&e, &bad), BATCH_ERR_FIELD);
    bad = example_entries[1];
    bad.payload = big;
    bad.payload_len = BATCH_PAYLOAD_MAX + 1;
    CHECK_EQ_INT(batch_enc_add(&e, &bad), BATCH_ERR_FIELD);
    bad.payload = NULL;
    bad.payload_len = 1;
    CHECK_EQ_INT(batch_enc_add(&e, &bad), BATCH_ERR_FIELD);
    bad = example_entries[1];
    bad.seq = 41; /* equal */
    CHECK_EQ_INT(batch_enc_add(&e, &bad), BATCH_ERR_ORDER);
    bad.seq = 40;
    CHECK_EQ_INT(batch_enc_add(&e, &bad), BATCH_ERR_ORDER);
    CHECK(memcmp(&before, &e, sizeof(e)) == 0 && memcmp(snap, buf, sizeof(buf)) == 0);
    /* the batch of one entry still finishes and decodes */
    CHECK_EQ_INT(batch_enc_finish(&e, &out, &len), BATCH_OK);
    CHECK_EQ_INT(len, batch_size(2, 1, one));
    CHECK(out == buf + 2); /* entries head 0x81 is 1 byte: 2 of the 3 reserved unused */
    struct batch_entry got[1];
    size_t n, where;
    CHECK_EQ_INT(decode_all(out, len, got, 1, &n, &where), BATCH_OK);
    CHECK(n == 1 && entry_eq(&got[0], &example_entries[0]));
    /* one byte more and the second entry fits */
    CHECK_EQ_INT(batch_enc_init(&e, buf, 8 + one + two, "gw", 2), BATCH_OK);
    CHECK_EQ_INT(batch_enc_add(&e, &example_entries[0]), BATCH_OK);
    CHECK_EQ_INT(batch_enc_add(&e, &example_entries[1]), BATCH_OK);
    CHECK_EQ_INT(e.len, e.cap);

    /* BATCH_ENTRIES_MAX entries fit (and decode), the next one is NOSPACE */
    struct batch_entry small = {"n", 1, "t", 1, 0, 0, NULL, 0};
    CHECK_EQ_INT(batch_enc_init(&e, huge, sizeof(huge), "gw", 2), BATCH_OK);
    int ok = 1;
    size_t entries = 0;
    for (size_t i = 0; i < BATCH_ENTRIES_MAX; i++) {
        small.seq = i;
        ok &= batch_enc_add(&e, &small) == BATCH_OK;
        entries += batch_entry_size(&small);
    }
    CHECK(ok);
    small.seq = BATCH_ENTRIES_MAX;
    before = e;
    CHECK_EQ_INT(batch_enc_add(&e, &small), BATCH_ERR_NOSPACE);
    CHECK(memcmp(&before, &e, sizeof(e)) == 0);
    CHECK_EQ_INT(batch_enc_finish(&e, &out, &len), BATCH_OK);
    CHECK(out == huge);
    CHECK_EQ_INT(len, batch_size(2, BATCH_ENTRIES_MAX, entries));
    struct batch_dec d;
    const char *gw;
    size_t gl, count;
    CHECK_EQ_INT(batch_dec_init(&d, out, len, &gw, &gl, &count, &where), BATCH_OK);
    CHECK_EQ_INT(count, BATCH_ENTRIES_MAX);
    ok = 1;
    for (size_t i = 0; i < count; i++) {
        struct batch_entry en;
        ok &= batch_dec_next(&d, &en, &where) == BATCH_OK && en.seq == i;
    }
    CHECK(ok);
    CHECK_EQ_INT(batch_dec_end(&d, &where), BATCH_OK);
}

static void test_strings(void)
{
    for (int i = BATCH_OK; i <= BATCH_ERR_NOSPACE; i++) {
        const char *s = batch_err_str((enum batch_err)i);
        CHECK(s != NULL && strcmp(s, "unknown batch error") != 0);
    }
    CHECK(strcmp(batch_err_str((enum batch_err)99), "unknown batch error") == 0);
    CHECK(strcmp(batch_err_str(BATCH_ERR_ORDER), batch_err_str(BATCH_ERR_FIELD)) != 0);
}

int main(void)
{
    test_example();
    test_roundtrip();
    test_decode_errors();
    test_encode_errors();
    test_strings();
    return check_finish();
}
