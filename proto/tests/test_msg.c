/* Node <-> gateway messages: every type round-trips (decode(encode(m)) re-encodes to the same
 * bytes), the hex examples printed in docs/protocol.md are exactly what the encoder produces
 * and decode back, every schema rule refuses what it should, and topics build/parse. */
#include "check.h"

#include <stdlib.h>
#include <string.h>

#include "fleetgw/cbor.h"
#include "fleetgw/msg.h"

static const uint8_t example_token[8] = {0xd2, 0x84, 0x43, 0xa1, 0x01, 0x26, 0xa0, 0x40};
static const uint8_t example_chunk[16] = {0x3d, 0xb8, 0xf3, 0x96};
static const uint8_t example_telemetry[4] = {0xa1, 0x61, 0x74, 0x15}; /* {"t": 21} */
static const uint8_t example_args[3] = {0xa1, 0x01, 0x05};            /* {1: 5} */

static void example(const char *name, struct msg *m)
{
    memset(m, 0, sizeof(*m));
    if (strcmp(name, "attest-challenge") == 0) {
        m->type = MSG_ATTEST_CHALLENGE;
        for (int i = 0; i < 32; i++)
            m->u.challenge.nonce[i] = (uint8_t)i;
        m->u.challenge.nonce_len = 32;
        m->u.challenge.ttl_s = 60;
    } else if (strcmp(name, "attest-evidence") == 0) {
        m->type = MSG_ATTEST_EVIDENCE;
        m->u.evidence.token = example_token;
        m->u.evidence.token_len = sizeof(example_token);
    } else if (strcmp(name, "ota-offer") == 0) {
        m->type = MSG_OTA_OFFER;
        strcpy(m->u.offer.campaign, "c-2026-11");
        memset(m->u.offer.digest, 0xab, 32);
        m->u.offer.size = 6000;
        m->u.offer.version = (struct msg_version){1, 2, 3, 4};
        m->u.offer.chunk_size = 1024;
    } else if (strcmp(name, "ota-ack") == 0) {
        m->type = MSG_OTA_ACK;
        strcpy(m->u.ack.campaign, "c-2026-11");
        m->u.ack.accepted = 1;
        m->u.ack.reason = MSG_REASON_NONE;
    } else if (strcmp(name, "ota-ack-refused") == 0) {
        m->type = MSG_OTA_ACK;
        strcpy(m->u.ack.campaign, "c-2026-11");
        m->u.ack.accepted = 0;
        m->u.ack.reason = MSG_REASON_DOWNGRADE;
    } else if (strcmp(name, "ota-chunk-request") == 0) {
        m->type = MSG_OTA_CHUNK_REQ;
        strcpy(m->u.chunk_req.campaign, "c-2026-11");
        m->u.chunk_req.offset = 1024;
        m->u.chunk_req.length = 1024;
    } else if (strcmp(name, "ota-chunk") == 0) {
        m->type = MSG_OTA_CHUNK;
        strcpy(m->u.chunk.campaign, "c-2026-11");
        m->u.chunk.offset = 0;
        m->u.chunk.data = example_chunk;
        m->u.chunk.data_len = sizeof(example_chunk);
    } else if (strcmp(name, "ota-status") == 0) {
        m->type = MSG_OTA_STATUS;
        strcpy(m->u.status.campaign, "c-2026-11");
        m->u.status.state = MSG_OTA_DOWNLOADING;
        m->u.status.offset = 2048;
        m->u.status.reason = MSG_REASON_NONE;
    } else if (strcmp(name, "ota-status-failed") == 0) {
        m->type = MSG_OTA_STATUS;
        strcpy(m->u.status.campaign, "c-2026-11");
        m->u.status.state = MSG_OTA_FAILED;
        m->u.status.offset = 6000;
        m->u.status.reason = MSG_REASON_BAD_SIGNATURE;
    } else if (strcmp(name, "ota-confirm") == 0) {
        m->type = MSG_OTA_CONFIRM;
        strcpy(m->u.confirm.campaign, "c-2026-11");
        memset(m->u.confirm.digest, 0xab, 32);
    } else if (strcmp(name, "telemetry") == 0) {
        m->type = MSG_TELEMETRY;
        m->u.telemetry.seq = 42;
        m->u.telemetry.timestamp_ms = 1764000000000u;
        m->u.telemetry.payload = example_telemetry;
        m->u.telemetry.payload_len = sizeof(example_telemetry);
    } else if (strcmp(name, "command") == 0) {
        m->type = MSG_COMMAND;
        m->u.command.id = 7;
        strcpy(m->u.command.name, "reboot");
        m->u.command.args = example_args;
        m->u.command.args_len = sizeof(example_args);
    } else if (strcmp(name, "node-status") == 0) {
        m->type = MSG_NODE_STATUS;
        m->u.node_status.state = MSG_NODE_ONLINE;
        m->u.node_status.uptime_s = 3600;
        m->u.node_status.version = (struct msg_version){1, 2, 3, 4};
    }
}

static const char *const example_names[] = {
    "attest-challenge",  "attest-evidence", "ota-offer",   "ota-ack",           "ota-ack-refused",
    "ota-chunk-request", "ota-chunk",       "ota-status",  "ota-status-failed", "ota-confirm",
    "telemetry",         "command",         "node-status",
};

static void print_hex(const char *name, const uint8_t *b, size_t n)
{
    fprintf(stderr, "<!-- example: %s -->\n```\n", name);
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, "%02x%s", b[i], (i + 1) % 32 == 0 || i + 1 == n ? "\n" : "");
    fprintf(stderr, "```\n");
}

static void test_examples(void)
{
    const char *doc = check_read_source("docs/protocol.md");
    CHECK(doc != NULL);
    for (size_t i = 0; i < sizeof(example_names) / sizeof(example_names[0]); i++) {
        struct msg m, d;
        uint8_t enc[256], enc2[256], want[256];
        size_t len = 0, len2 = 0;
        example(example_names[i], &m);
        CHECK_EQ_INT(msg_encode(&m, enc, sizeof(enc), &len), MSG_OK);
        /* the documented hex */
        long wl = doc == NULL ? -1 : check_doc_example(doc, example_names[i], want, sizeof(want));
        int same = wl >= 0 && (size_t)wl == len && memcmp(want, enc, len) == 0;
        if (!same) {
            fprintf(stderr,
                    "docs/protocol.md example '%s' differs from the encoder; encoder says:\n",
                    example_names[i]);
            print_hex(example_names[i], enc, len);
        }
        CHECK(same);
        CHECK_EQ_INT(cbor_check(enc, len), CBOR_OK);
        /* decode, compare, re-encode */
        CHECK_EQ_INT(msg_decode(enc, len, &d), MSG_OK);
        CHECK_EQ_INT(d.type, m.type);
        CHECK_EQ_INT(msg_encode(&d, enc2, sizeof(enc2), &len2), MSG_OK);
        CHECK(len == len2 && memcmp(enc, enc2, len) == 0);
        /* every too-small output buffer */
        for (size_t cap = 0; cap < len; cap++) {
            size_t l = 7;
            CHECK(msg_encode(&m, enc2, cap, &l) == MSG_ERR_NOSPACE && l == 0);
        }
        /* every truncation, and a trailing byte */
        for (size_t k = 0; k < len; k++)
            CHECK(msg_decode(enc, k, &d) == MSG_ERR_CBOR && d.type == 0);
        enc[len] = 0x00;
        CHECK_EQ_INT(msg_decode(enc, len + 1, &d), MSG_ERR_CBOR);
        /* one field more / one field less than the schema: patch the array head */
        CHECK(enc[0] >= 0x82 && enc[0] <= 0x86);
        enc[0]++;
        CHECK_EQ_INT(msg_decode(enc, len + 1, &d), MSG_ERR_SCHEMA);
        enc[0] = (uint8_t)(enc[0] - 2);
        CHECK(msg_decode(enc, len, &d) != MSG_OK);
    }
    /* field checks on decoded examples */
    struct msg m, d;
    uint8_t enc[256];
    size_t len = 0;
    example("ota-offer", &m);
    CHECK_EQ_INT(msg_encode(&m, enc, sizeof(enc), &len), MSG_OK);
    CHECK_EQ_INT(msg_decode(enc, len, &d), MSG_OK);
    CHECK(strcmp(d.u.offer.campaign, "c-2026-11") == 0 && d.u.offer.size == 6000 &&
          d.u.offer.chunk_size == 1024 && d.u.offer.version.major == 1 &&
          d.u.offer.version.minor == 2 && d.u.offer.version.revision == 3 &&
          d.u.offer.version.build == 4 && d.u.offer.digest[31] == 0xab);
    CHECK(memcmp(&m, &d, sizeof(m)) == 0);
    example("ota-chunk", &m);
    CHECK_EQ_INT(msg_encode(&m, enc, sizeof(enc), &len), MSG_OK);
    CHECK_EQ_INT(msg_decode(enc, len, &d), MSG_OK);
    CHECK(d.u.chunk.data_len == 16 && d.u.chunk.data == enc + len - 16 &&
          memcmp(d.u.chunk.data, example_chunk, 16) == 0);
    example("telemetry", &m);
    CHECK_EQ_INT(msg_encode(&m, enc, sizeof(enc), &len), MSG_OK);
    CHECK_EQ_INT(msg_decode(enc, len, &d), MSG_OK);
    CHECK(d.u.telemetry.seq == 42 && d.u.telemetry.timestamp_ms == 1764000000000u &&
          d.u.telemetry.payload_len == 4 &&
          memcmp(d.u.telemetry.payload, example_telemetry, 4) == 0);
    example("command", &m);
    CHECK_EQ_INT(msg_encode(&m, enc, sizeof(enc), &len), MSG_OK);
    CHECK_EQ_INT(msg_decode(enc, len, &d), MSG_OK);
    CHECK(d.u.command.id == 7 && strcmp(d.u.command.name, "reboot") == 0 &&
          d.u.command.args_len == 3);
    example("attest-challenge", &m);
    CHECK_EQ_INT(msg_encode(&m, enc, sizeof(enc), &len), MSG_OK);
    CHECK_EQ_INT(msg_decode(enc, len, &d), MSG_OK);
    CHECK(memcmp(&m, &d, sizeof(m)) == 0);
    example("node-status", &m);
    CHECK_EQ_INT(msg_encode(&m, enc, sizeof(enc), &len), MSG_OK);
    CHECK_EQ_INT(msg_decode(enc, len, &d), MSG_OK);
    CHECK(memcmp(&m, &d, sizeof(m)) == 0);
}

/* Encoder-side refusals: each invalid struct is refused with the given error. */
static void test_invalid_structs(void)
{
    static uint8_t big[4096];
    struct msg m;
    uint8_t out[4200];
    size_t len;

#define REFUSE(name, mutation, want)                                                               \
    do {                                                                                           \
        example(name, &m);                                                                         \
        mutation;                                                                                  \
        CHECK_EQ_INT(msg_validate(&m), want);                                                      \
        CHECK_EQ_INT(msg_encode(&m, out, sizeof(out), &len), want);                                \
    } while (0)

    REFUSE("attest-challenge", m.u.challenge.nonce_len = 31, MSG_ERR_RANGE);
    REFUSE("attest-challenge", m.u.challenge.nonce_len = 0, MSG_ERR_RANGE);
    REFUSE("attest-challenge", m.u.challenge.ttl_s = 0, MSG_ERR_RANGE);
    REFUSE("attest-challenge", m.u.challenge.ttl_s = MSG_TTL_MAX + 1, MSG_ERR_RANGE);
    REFUSE("attest-evidence", m.u.evidence.token_len = 0, MSG_ERR_RANGE);
    REFUSE("attest-evidence",
           (m.u.evidence.token = big, m.u.evidence.token_len = MSG_TOKEN_MAX + 1), MSG_ERR_RANGE);
    REFUSE("attest-evidence", m.u.evidence.token = NULL, MSG_ERR_ARG);
    REFUSE("ota-offer", strcpy(m.u.offer.campaign, "bad/id"), MSG_ERR_ID);
    REFUSE("ota-offer", m.u.offer.campaign[0] = '\0', MSG_ERR_ID);
    REFUSE("ota-offer", memset(m.u.offer.campaign, 'a', sizeof(m.u.offer.campaign)), MSG_ERR_ID);
    REFUSE("ota-offer", m.u.offer.size = 0, MSG_ERR_RANGE);
    REFUSE("ota-offer", m.u.offer.size = MSG_IMAGE_MAX + 1, MSG_ERR_RANGE);
    REFUSE("ota-offer", m.u.offer.chunk_size = MSG_CHUNK_MIN - 1, MSG_ERR_RANGE);
    REFUSE("ota-offer", m.u.offer.chunk_size = MSG_CHUNK_MAX + 1, MSG_ERR_RANGE);
    REFUSE("ota-ack", m.u.ack.reason = MSG_REASON_BUSY, MSG_ERR_RANGE);
    REFUSE("ota-ack-refused", m.u.ack.reason = MSG_REASON_NONE, MSG_ERR_RANGE);
    REFUSE("ota-ack", m.u.ack.accepted = 2, MSG_ERR_RANGE);
    REFUSE("ota-chunk-request", m.u.chunk_req.length = 0, MSG_ERR_RANGE);
    REFUSE("ota-chunk-request", m.u.chunk_req.length = MSG_CHUNK_MAX + 1, MSG_ERR_RANGE);
    REFUSE("ota-chunk-request", m.u.chunk_req.offset = MSG_IMAGE_MAX - 10, MSG_ERR_RANGE);
    REFUSE("ota-chunk", (m.u.chunk.data = big, m.u.chunk.data_len = MSG_CHUNK_MAX + 1),
           MSG_ERR_RANGE);
    REFUSE("ota-chunk", m.u.chunk.offset = MSG_IMAGE_MAX, MSG_ERR_RANGE);
    REFUSE("ota-chunk", m.u.chunk.data_len = 0, MSG_ERR_RANGE);
    REFUSE("ota-status", m.u.status.state = (enum msg_ota_state)(MSG_OTA_STATE_MAX + 1),
           MSG_ERR_RANGE);
    REFUSE("ota-status", m.u.status.reason = MSG_REASON_TIMEOUT, MSG_ERR_RANGE);
    REFUSE("ota-status-failed", m.u.status.reason = MSG_REASON_NONE, MSG_ERR_RANGE);
    REFUSE("ota-status", m.u.status.offset = MSG_IMAGE_MAX + 1, MSG_ERR_RANGE);
    REFUSE("ota-confirm", strcpy(m.u.confirm.campaign, "a b"), MSG_ERR_ID);
    REFUSE("telemetry", m.u.telemetry.timestamp_ms = UINT64_C(1) << 53, MSG_ERR_RANGE);
    REFUSE("telemetry",
           (m.u.telemetry.payload = big, m.u.telemetry.payload_len = MSG_TELEMETRY_MAX + 1),
           MSG_ERR_RANGE);
    REFUSE("command", strcpy(m.u.command.name, "Reboot"), MSG_ERR_ID);
    REFUSE("command", m.u.command.name[0] = '\0', MSG_ERR_ID);
    REFUSE("command", (m.u.command.args = big, m.u.command.args_len = MSG_CMD_ARGS_MAX + 1),
           MSG_ERR_RANGE);
    REFUSE("node-status", m.u.node_status.state = (enum msg_node_state)(MSG_NODE_STATE_MAX + 1),
           MSG_ERR_RANGE);
    REFUSE("node-status", m.type = (enum msg_type)12, MSG_ERR_TYPE);
    REFUSE("node-status", m.type = (enum msg_type)0, MSG_ERR_TYPE);
    /* the limits themselves are accepted */
    REFUSE("ota-chunk", (m.u.chunk.data = big, m.u.chunk.data_len = MSG_CHUNK_MAX), MSG_OK);
    REFUSE("attest-evidence", (m.u.evidence.token = big, m.u.evidence.token_len = MSG_TOKEN_MAX),
           MSG_OK);
    REFUSE("telemetry", (m.u.telemetry.payload = NULL, m.u.telemetry.payload_len = 0), MSG_OK);
    REFUSE("ota-offer", memset(m.u.offer.campaign, 'a', MSG_CAMPAIGN_ID_MAX), MSG_OK);
#undef REFUSE
}

/* Decoder-side refusals on hand-built CBOR. */
static enum msg_err decode_built(void (*build)(struct cbor_enc *e))
{
    uint8_t buf[4200];
    struct cbor_enc e;
    struct msg m;
    size_t len = 0;
    cbor_enc_init(&e, buf, sizeof(buf));
    build(&e);
    if (cbor_enc_finish(&e, &len) != CBOR_OK)
        return MSG_ERR__COUNT;
    enum msg_err err = msg_decode(buf, len, &m);
    if (err != MSG_OK && m.type != 0)
        return MSG_ERR__COUNT; /* not cleared */
    return err;
}

static const uint8_t d32[32];
static uint8_t d4096[4096];

static void b_type0(struct cbor_enc *e)
{
    cbor_put_array(e, 1);
    cbor_put_uint(e, 0);
}
static void b_type12(struct cbor_enc *e)
{
    cbor_put_array(e, 1);
    cbor_put_uint(e, 12);
}
static void b_type_text(struct cbor_enc *e)
{
    cbor_put_array(e, 1);
    cbor_put_text(e, "x", 1);
}
static void b_empty(struct cbor_enc *e)
{
    cbor_put_array(e, 0);
}
static void b_map(struct cbor_enc *e)
{
    cbor_put_map(e, 0);
}
static void b_big_array(struct cbor_enc *e)
{
    cbor_put_array(e, 7);
    for (int i = 0; i < 7; i++)
        cbor_put_uint(e, 1);
}
static void b_challenge_nonce_text(struct cbor_enc *e)
{
    cbor_put_array(e, 3);
    cbor_put_uint(e, 1);
    cbor_put_text(e, "abc", 3);
    cbor_put_uint(e, 60);
}
static void b_challenge_nonce_65(struct cbor_enc *e)
{
    cbor_put_array(e, 3);
    cbor_put_uint(e, 1);
    cbor_put_bytes(e, d4096, 65);
    cbor_put_uint(e, 60);
}
static void b_challenge_nonce_40(struct cbor_enc *e)
{
    cbor_put_array(e, 3);
    cbor_put_uint(e, 1);
    cbor_put_bytes(e, d4096, 40);
    cbor_put_uint(e, 60);
}
static void b_challenge_ttl_neg(struct cbor_enc *e)
{
    cbor_put_array(e, 3);
    cbor_put_uint(e, 1);
    cbor_put_bytes(e, d32, 32);
    cbor_put_int(e, -1);
}
static void b_challenge_ttl_huge(struct cbor_enc *e)
{
    cbor_put_array(e, 3);
    cbor_put_uint(e, 1);
    cbor_put_bytes(e, d32, 32);
    cbor_put_uint(e, UINT64_C(1) << 40);
}
static void b_challenge_ok(struct cbor_enc *e)
{
    cbor_put_array(e, 3);
    cbor_put_uint(e, 1);
    cbor_put_bytes(e, d32, 32);
    cbor_put_uint(e, 3600);
}
/* ota-offer up to its size field; the campaign may hold a NUL. */
static void offer_head_n(struct cbor_enc *e, const char *campaign, size_t campaign_len,
                         size_t digest_len)
{
    cbor_put_array(e, 6);
    cbor_put_uint(e, 3);
    cbor_put_text(e, campaign, campaign_len);
    cbor_put_bytes(e, d4096, digest_len);
    cbor_put_uint(e, 6000);
}
static void offer_head(struct cbor_enc *e, const char *campaign, size_t digest_len)
{
    offer_head_n(e, campaign, strlen(campaign), digest_len);
}
/* A valid ota-offer tail: version 1.1.1+1, chunk size 1024. */
static void offer_tail(struct cbor_enc *e)
{
    cbor_put_array(e, 4);
    for (int i = 0; i < 4; i++)
        cbor_put_uint(e, 1);
    cbor_put_uint(e, 1024);
}
static void b_offer_version3(struct cbor_enc *e)
{
    offer_head(e, "c1", 32);
    cbor_put_array(e, 3);
    cbor_put_uint(e, 1);
    cbor_put_uint(e, 2);
    cbor_put_uint(e, 3);
    cbor_put_uint(e, 1024);
}
static void b_offer_version_major256(struct cbor_enc *e)
{
    offer_head(e, "c1", 32);
    cbor_put_array(e, 4);
    cbor_put_uint(e, 256);
    cbor_put_uint(e, 2);
    cbor_put_uint(e, 3);
    cbor_put_uint(e, 4);
    cbor_put_uint(e, 1024);
}
static void b_offer_digest31(struct cbor_enc *e)
{
    offer_head(e, "c1", 31);
    offer_tail(e);
}
static void b_offer_campaign_long(struct cbor_enc *e)
{
    offer_head(e, "c123456789012345678901234567890123", 32);
    offer_tail(e);
}
static void b_offer_campaign_nul(struct cbor_enc *e)
{
    offer_head_n(e, "c\0", 2, 32);
    offer_tail(e);
}
static void b_ack_reason_text(struct cbor_enc *e)
{
    cbor_put_array(e, 4);
    cbor_put_uint(e, 4);
    cbor_put_text(e, "c1", 2);
    cbor_put_bool(e, 0);
    cbor_put_text(e, "x", 1);
}
static void b_ack_bool_null(struct cbor_enc *e)
{
    cbor_put_array(e, 4);
    cbor_put_uint(e, 4);
    cbor_put_text(e, "c1", 2);
    cbor_put_null(e);
    cbor_put_uint(e, 0);
}
static void b_ack_reason_99(struct cbor_enc *e)
{
    cbor_put_array(e, 4);
    cbor_put_uint(e, 4);
    cbor_put_text(e, "c1", 2);
    cbor_put_bool(e, 0);
    cbor_put_uint(e, 99);
}
static void b_chunk_2049(struct cbor_enc *e)
{
    cbor_put_array(e, 4);
    cbor_put_uint(e, 6);
    cbor_put_text(e, "c1", 2);
    cbor_put_uint(e, 0);
    cbor_put_bytes(e, d4096, MSG_CHUNK_MAX + 1);
}
static void b_status_state8(struct cbor_enc *e)
{
    cbor_put_array(e, 5);
    cbor_put_uint(e, 7);
    cbor_put_text(e, "c1", 2);
    cbor_put_uint(e, 8);
    cbor_put_uint(e, 0);
    cbor_put_uint(e, 0);
}
static void b_telemetry_ts53(struct cbor_enc *e)
{
    cbor_put_array(e, 4);
    cbor_put_uint(e, 9);
    cbor_put_uint(e, 1);
    cbor_put_uint(e, UINT64_C(1) << 53);
    cbor_put_bytes(e, NULL, 0);
}
static void b_telemetry_seq33(struct cbor_enc *e)
{
    cbor_put_array(e, 4);
    cbor_put_uint(e, 9);
    cbor_put_uint(e, UINT64_C(1) << 32);
    cbor_put_uint(e, 1);
    cbor_put_bytes(e, NULL, 0);
}
static void b_command_name_upper(struct cbor_enc *e)
{
    cbor_put_array(e, 4);
    cbor_put_uint(e, 10);
    cbor_put_uint(e, 1);
    cbor_put_text(e, "Reboot", 6);
    cbor_put_bytes(e, NULL, 0);
}
static void b_command_args_513(struct cbor_enc *e)
{
    cbor_put_array(e, 4);
    cbor_put_uint(e, 10);
    cbor_put_uint(e, 1);
    cbor_put_text(e, "x", 1);
    cbor_put_bytes(e, d4096, MSG_CMD_ARGS_MAX + 1);
}
static void b_node_status_state4(struct cbor_enc *e)
{
    cbor_put_array(e, 4);
    cbor_put_uint(e, 11);
    cbor_put_uint(e, 4);
    cbor_put_uint(e, 0);
    cbor_put_array(e, 4);
    for (int i = 0; i < 4; i++)
        cbor_put_uint(e, 1);
}
static void b_tagged(struct cbor_enc *e)
{
    cbor_put_tag(e, 24);
    b_challenge_ok(e);
}

static void test_decode_refusals(void)
{
    CHECK_EQ_INT(decode_built(b_challenge_ok), MSG_OK);
    CHECK_EQ_INT(decode_built(b_type0), MSG_ERR_TYPE);
    CHECK_EQ_INT(decode_built(b_type12), MSG_ERR_TYPE);
    CHECK_EQ_INT(decode_built(b_type_text), MSG_ERR_SCHEMA);
    CHECK_EQ_INT(decode_built(b_empty), MSG_ERR_SCHEMA);
    CHECK_EQ_INT(decode_built(b_map), MSG_ERR_SCHEMA);
    CHECK_EQ_INT(decode_built(b_big_array), MSG_ERR_SCHEMA);
    CHECK_EQ_INT(decode_built(b_tagged), MSG_ERR_SCHEMA);
    CHECK_EQ_INT(decode_built(b_challenge_nonce_text), MSG_ERR_SCHEMA);
    CHECK_EQ_INT(decode_built(b_challenge_nonce_65), MSG_ERR_RANGE);
    CHECK_EQ_INT(decode_built(b_challenge_nonce_40), MSG_ERR_RANGE);
    CHECK_EQ_INT(decode_built(b_challenge_ttl_neg), MSG_ERR_SCHEMA);
    CHECK_EQ_INT(decode_built(b_challenge_ttl_huge), MSG_ERR_RANGE);
    CHECK_EQ_INT(decode_built(b_offer_version3), MSG_ERR_SCHEMA);
    CHECK_EQ_INT(decode_built(b_offer_version_major256), MSG_ERR_RANGE);
    CHECK_EQ_INT(decode_built(b_offer_digest31), MSG_ERR_RANGE);
    CHECK_EQ_INT(decode_built(b_offer_campaign_long), MSG_ERR_ID);
    CHECK_EQ_INT(decode_built(b_offer_campaign_nul), MSG_ERR_ID);
    CHECK_EQ_INT(decode_built(b_ack_reason_text), MSG_ERR_SCHEMA);
    CHECK_EQ_INT(decode_built(b_ack_bool_null), MSG_ERR_SCHEMA);
    CHECK_EQ_INT(decode_built(b_ack_reason_99), MSG_ERR_RANGE);
    CHECK_EQ_INT(decode_built(b_chunk_2049), MSG_ERR_RANGE);
    CHECK_EQ_INT(decode_built(b_status_state8), MSG_ERR_RANGE);
    CHECK_EQ_INT(decode_built(b_telemetry_ts53), MSG_ERR_RANGE);
    CHECK_EQ_INT(decode_built(b_telemetry_seq33), MSG_ERR_RANGE);
    CHECK_EQ_INT(decode_built(b_command_name_upper), MSG_ERR_ID);
    CHECK_EQ_INT(decode_built(b_command_args_513), MSG_ERR_RANGE);
    CHECK_EQ_INT(decode_built(b_node_status_state4), MSG_ERR_RANGE);

    /* non-shortest heads and indefinite arrays are not well-formed for us */
    static const uint8_t nonshort[] = {0x82, 0x18, 0x02, 0x40};    /* [2 as 18 02, h''] */
    static const uint8_t indef[] = {0x9f, 0x02, 0x41, 0x00, 0xff}; /* [_ 2, h'00'] */
    static const uint8_t ttl_long[] = {0x83, 0x01, 0x58, 0x20};    /* truncated */
    struct msg m;
    CHECK_EQ_INT(msg_decode(nonshort, sizeof(nonshort), &m), MSG_ERR_CBOR);
    CHECK_EQ_INT(msg_decode(indef, sizeof(indef), &m), MSG_ERR_CBOR);
    CHECK_EQ_INT(msg_decode(ttl_long, sizeof(ttl_long), &m), MSG_ERR_CBOR);
    CHECK_EQ_INT(msg_decode(NULL, 0, &m), MSG_ERR_ARG);
    for (int i = 0; i < MSG_ERR__COUNT; i++)
        for (int j = i + 1; j < MSG_ERR__COUNT; j++)
            CHECK(strcmp(msg_err_str((enum msg_err)i), msg_err_str((enum msg_err)j)) != 0);
    for (int t = 1; t <= MSG_TYPE_MAX; t++)
        CHECK(strcmp(msg_type_str((enum msg_type)t), "unknown") != 0);
}

static void test_topics(void)
{
    static const struct {
        enum msg_topic topic;
        const char *sub;
        const char *want;
        enum msg_type type;
    } t[] = {
        {MSG_TOPIC_ATTEST_CHALLENGE, NULL, "fleet/node-7/attest/challenge", MSG_ATTEST_CHALLENGE},
        {MSG_TOPIC_ATTEST_EVIDENCE, NULL, "fleet/node-7/attest/evidence", MSG_ATTEST_EVIDENCE},
        {MSG_TOPIC_OTA_OFFER, NULL, "fleet/node-7/ota/offer", MSG_OTA_OFFER},
        {MSG_TOPIC_OTA_ACK, NULL, "fleet/node-7/ota/ack", MSG_OTA_ACK},
        {MSG_TOPIC_OTA_REQUEST, NULL, "fleet/node-7/ota/request", MSG_OTA_CHUNK_REQ},
        {MSG_TOPIC_OTA_CHUNK, NULL, "fleet/node-7/ota/chunk", MSG_OTA_CHUNK},
        {MSG_TOPIC_OTA_STATUS, NULL, "fleet/node-7/ota/status", MSG_OTA_STATUS},
        {MSG_TOPIC_OTA_CONFIRM, NULL, "fleet/node-7/ota/confirm", MSG_OTA_CONFIRM},
        {MSG_TOPIC_STATUS, NULL, "fleet/node-7/status", MSG_NODE_STATUS},
        {MSG_TOPIC_UP, "telemetry", "fleet/node-7/up/telemetry", MSG_TELEMETRY},
        {MSG_TOPIC_DOWN, "command", "fleet/node-7/down/command", MSG_COMMAND},
        {MSG_TOPIC_UP, "app/temp_1", "fleet/node-7/up/app/temp_1", (enum msg_type)0},
    };
    char buf[MSG_TOPIC_MAX];
    size_t len = 0;
    struct msg_topic_parsed p;

    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        size_t sl = t[i].sub ? strlen(t[i].sub) : 0;
        CHECK_EQ_INT(msg_topic_build(t[i].topic, "node-7", 6, t[i].sub, sl, buf, sizeof(buf), &len),
                     MSG_OK);
        CHECK(strcmp(buf, t[i].want) == 0 && len == strlen(t[i].want));
        CHECK_EQ_INT(msg_topic_parse(buf, len, &p), MSG_OK);
        CHECK(p.topic == t[i].topic && strcmp(p.node_id, "node-7") == 0);
        CHECK(p.sub_len == sl && (sl == 0 ? p.sub == NULL : memcmp(p.sub, t[i].sub, sl) == 0));
        CHECK_EQ_INT(msg_topic_type(p.topic, p.sub, p.sub_len), t[i].type);
        /* exact-size buffer works, one less does not */
        CHECK_EQ_INT(msg_topic_build(t[i].topic, "node-7", 6, t[i].sub, sl, buf, len + 1, &len),
                     MSG_OK);
        CHECK_EQ_INT(msg_topic_build(t[i].topic, "node-7", 6, t[i].sub, sl, buf, len, &len),
                     MSG_ERR_NOSPACE);
    }
    /* longest node id and subtopic fit MSG_TOPIC_MAX */
    char id[MSG_NODE_ID_MAX + 2], sub[MSG_SUBTOPIC_MAX + 2];
    memset(id, 'a', sizeof(id));
    memset(sub, 'b', sizeof(sub));
    CHECK_EQ_INT(msg_topic_build(MSG_TOPIC_DOWN, id, MSG_NODE_ID_MAX, sub, MSG_SUBTOPIC_MAX, buf,
                                 sizeof(buf), &len),
                 MSG_OK);
    CHECK_EQ_INT(msg_topic_parse(buf, len, &p), MSG_OK);
    CHECK_EQ_INT(
        msg_topic_build(MSG_TOPIC_DOWN, id, MSG_NODE_ID_MAX + 1, sub, 3, buf, sizeof(buf), &len),
        MSG_ERR_ID);
    CHECK_EQ_INT(
        msg_topic_build(MSG_TOPIC_DOWN, id, 3, sub, MSG_SUBTOPIC_MAX + 1, buf, sizeof(buf), &len),
        MSG_ERR_TOPIC);
    /* bad node ids */
    static const char *const bad_ids[] = {"", "a/b", "a+b", "a#", "a b", "\xc3\xa9", "a.b", "a\nb"};
    for (size_t i = 0; i < sizeof(bad_ids) / sizeof(bad_ids[0]); i++)
        CHECK_EQ_INT(msg_topic_build(MSG_TOPIC_STATUS, bad_ids[i], strlen(bad_ids[i]), NULL, 0, buf,
                                     sizeof(buf), &len),
                     MSG_ERR_ID);
    CHECK_EQ_INT(msg_node_id_valid("Node_01-x", 9), 0);
    CHECK_EQ_INT(msg_topic_build(MSG_TOPIC_STATUS, "n", 1, "x", 1, buf, sizeof(buf), &len),
                 MSG_ERR_TOPIC);
    CHECK_EQ_INT(msg_topic_build(MSG_TOPIC_UP, "n", 1, NULL, 0, buf, sizeof(buf), &len),
                 MSG_ERR_TOPIC);
    CHECK_EQ_INT(msg_topic_build(MSG_TOPIC__COUNT, "n", 1, NULL, 0, buf, sizeof(buf), &len),
                 MSG_ERR_ARG);
    /* bad topics */
    static const struct {
        const char *topic;
        enum msg_err want;
    } bad[] = {
        {"fleet/n1", MSG_ERR_TOPIC},
        {"fleet/n1/", MSG_ERR_TOPIC},
        {"fleet//status", MSG_ERR_ID},
        {"fleet/n+/status", MSG_ERR_ID},
        {"fleet/n1/statusx", MSG_ERR_TOPIC},
        {"fleet/n1/attest/challenge/x", MSG_ERR_TOPIC},
        {"fleet/n1/up", MSG_ERR_TOPIC},
        {"fleet/n1/up/", MSG_ERR_TOPIC},
        {"fleet/n1/up//x", MSG_ERR_TOPIC},
        {"fleet/n1/up/x/", MSG_ERR_TOPIC},
        {"fleet/n1/up/+", MSG_ERR_TOPIC},
        {"fleet/n1/down/#", MSG_ERR_TOPIC},
        {"fleet/n1/sideways/x", MSG_ERR_TOPIC},
        {"fleets/n1/status", MSG_ERR_TOPIC},
        {"Fleet/n1/status", MSG_ERR_TOPIC},
        {"", MSG_ERR_TOPIC},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        enum msg_err r = msg_topic_parse(bad[i].topic, strlen(bad[i].topic), &p);
        if (r != bad[i].want)
            fprintf(stderr, "topic '%s': %s\n", bad[i].topic, msg_err_str(r));
        CHECK_EQ_INT(r, bad[i].want);
        CHECK(p.node_id[0] == '\0');
    }
    /* the length argument is honoured: no reliance on a NUL */
    CHECK_EQ_INT(msg_topic_parse("fleet/n1/statusXYZ", 15, &p), MSG_OK);

    /* subscription filters */
    CHECK_EQ_INT(msg_topic_filter(MSG_TOPIC_UP, NULL, 0, buf, sizeof(buf), &len), MSG_OK);
    CHECK(strcmp(buf, "fleet/+/up/#") == 0 && len == 12);
    CHECK_EQ_INT(msg_topic_filter(MSG_TOPIC_ATTEST_EVIDENCE, NULL, 0, buf, sizeof(buf), &len),
                 MSG_OK);
    CHECK(strcmp(buf, "fleet/+/attest/evidence") == 0);
    CHECK_EQ_INT(msg_topic_filter(MSG_TOPIC_STATUS, NULL, 0, buf, 15, &len), MSG_OK);
    CHECK_EQ_INT(msg_topic_filter(MSG_TOPIC_STATUS, NULL, 0, buf, 14, &len), MSG_ERR_NOSPACE);
    CHECK_EQ_INT(msg_topic_filter(MSG_TOPIC__COUNT, NULL, 0, buf, sizeof(buf), &len), MSG_ERR_ARG);
    /* one node's own filters */
    CHECK_EQ_INT(msg_topic_filter(MSG_TOPIC_DOWN, "n-1", 3, buf, sizeof(buf), &len), MSG_OK);
    CHECK(strcmp(buf, "fleet/n-1/down/#") == 0 && len == 16);
    CHECK_EQ_INT(msg_topic_filter(MSG_TOPIC_OTA_OFFER, "n-1", 3, buf, sizeof(buf), &len), MSG_OK);
    CHECK(strcmp(buf, "fleet/n-1/ota/offer") == 0);
    CHECK_EQ_INT(msg_topic_filter(MSG_TOPIC_OTA_OFFER, "n+1", 3, buf, sizeof(buf), &len),
                 MSG_ERR_ID);
}

/* The uplink side: build/parse round trips under a prefix with segments, the reserved
 * nodes/<id>/state, filters, and refusals. */
static void test_cloud_topics(void)
{
    static const char pre[] = "acme/site1";
    const size_t pl = sizeof(pre) - 1;
    char buf[MSG_CLOUD_TOPIC_MAX + 1];
    size_t len = 0;
    struct msg_cloud_parsed c;
    static const struct {
        enum msg_cloud_topic t;
        const char *id, *sub, *want;
    } ok[] = {
        {MSG_CLOUD_NODE_UP, "n1", "telemetry", "acme/site1/nodes/n1/telemetry"},
        {MSG_CLOUD_NODE_UP, "n1", "a/b-c", "acme/site1/nodes/n1/a/b-c"},
        {MSG_CLOUD_NODE_UP, "n1", "states", "acme/site1/nodes/n1/states"},
        {MSG_CLOUD_NODE_UP, "n1", "state/x", "acme/site1/nodes/n1/state/x"},
        {MSG_CLOUD_NODE_STATE, "n1", NULL, "acme/site1/nodes/n1/state"},
        {MSG_CLOUD_CMD, "n_2", "command", "acme/site1/cmd/n_2/command"},
        {MSG_CLOUD_GATEWAY_STATUS, "gw.1:x", NULL, "acme/site1/gateway/gw.1:x/status"},
        {MSG_CLOUD_CAMPAIGN_STATUS, "c-2026.11", NULL, "acme/site1/ota/campaigns/c-2026.11/status"},
        {MSG_CLOUD_JOB, "j-7.a", NULL, "acme/site1/ota/jobs/j-7.a"},
        {MSG_CLOUD_JOB_GET, "j-7.a", NULL, "acme/site1/ota/jobs/j-7.a/get"},
        {MSG_CLOUD_JOB_DATA, "j-7.a", NULL, "acme/site1/ota/jobs/j-7.a/data"},
        {MSG_CLOUD_JOB_STATUS, "j-7.a", NULL, "acme/site1/ota/jobs/j-7.a/status"},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        size_t sl = ok[i].sub ? strlen(ok[i].sub) : 0;
        CHECK_EQ_INT(msg_cloud_topic_build(ok[i].t, pre, pl, ok[i].id, strlen(ok[i].id), ok[i].sub,
                                           sl, buf, sizeof(buf), &len),
                     MSG_OK);
        CHECK(strcmp(buf, ok[i].want) == 0 && len == strlen(ok[i].want));
        CHECK_EQ_INT(msg_cloud_topic_parse(buf, len, pre, pl, &c), MSG_OK);
        CHECK_EQ_INT(c.topic, ok[i].t);
        CHECK(strcmp(c.id, ok[i].id) == 0);
        CHECK(ok[i].sub ? (c.sub_len == sl && memcmp(c.sub, ok[i].sub, sl) == 0) : c.sub == NULL);
        /* exactly fits; one byte less does not */
        CHECK_EQ_INT(msg_cloud_topic_build(ok[i].t, pre, pl, ok[i].id, strlen(ok[i].id), ok[i].sub,
                                           sl, buf, len + 1, &len),
                     MSG_OK);
        CHECK_EQ_INT(msg_cloud_topic_build(ok[i].t, pre, pl, ok[i].id, strlen(ok[i].id), ok[i].sub,
                                           sl, buf, len, &len),
                     MSG_ERR_NOSPACE);
    }
    /* The relay's fast path gives what msg_cloud_topic_build gives, from a parsed edge topic */
    {
        static const char *const edge[] = {"fleet/n1/up/telemetry", "fleet/n_2/up/a/b-c",
                                           "fleet/n1/up/state/x", "fleet/n1/up/states"};
        for (size_t i = 0; i < sizeof(edge) / sizeof(edge[0]); i++) {
            struct msg_topic_parsed t;
            char want[300];
            size_t wl = 0;
            CHECK_EQ_INT(msg_topic_parse(edge[i], strlen(edge[i]), &t), MSG_OK);
            CHECK(t.node_id_len == strlen(t.node_id));
            CHECK_EQ_INT(msg_cloud_topic_build(MSG_CLOUD_NODE_UP, pre, pl, t.node_id, t.node_id_len,
                                               t.sub, t.sub_len, want, sizeof(want), &wl),
                         MSG_OK);
            CHECK_EQ_INT(msg_cloud_up_from_edge(&t, pre, pl, buf, sizeof(buf), &len), MSG_OK);
            CHECK(len == wl && strcmp(buf, want) == 0);
            CHECK_EQ_INT(msg_cloud_up_from_edge(&t, pre, pl, buf, wl, &len), MSG_ERR_NOSPACE);
        }
        struct msg_topic_parsed t;
        CHECK_EQ_INT(msg_topic_parse("fleet/n1/up/state", 17, &t), MSG_OK);
        CHECK_EQ_INT(msg_cloud_up_from_edge(&t, pre, pl, buf, sizeof(buf), &len), MSG_ERR_TOPIC);
        CHECK_EQ_INT(msg_topic_parse("fleet/n1/status", 15, &t), MSG_OK);
        CHECK_EQ_INT(msg_cloud_up_from_edge(&t, pre, pl, buf, sizeof(buf), &len), MSG_ERR_ARG);
    }
    /* A campaign id is not a node id: '.' is allowed, ':' is not. */
    CHECK_EQ_INT(msg_cloud_topic_build(MSG_CLOUD_CAMPAIGN_STATUS, pre, pl, "c:1", 3, NULL, 0, buf,
                                       sizeof(buf), &len),
                 MSG_ERR_ID);
    /* A node's up/state would forge the gateway's state topic: reserved. */
    CHECK_EQ_INT(msg_cloud_topic_build(MSG_CLOUD_NODE_UP, pre, pl, "n1", 2, "state", 5, buf,
                                       sizeof(buf), &len),
                 MSG_ERR_TOPIC);
    CHECK_EQ_INT(msg_cloud_sub_reserved("state", 5), 1);
    CHECK_EQ_INT(msg_cloud_sub_reserved("states", 6), 0);
    CHECK_EQ_INT(msg_cloud_sub_reserved("state/x", 7), 0);
    /* Refusals: ids by kind, subtopics, prefixes. */
    CHECK_EQ_INT(msg_cloud_topic_build(MSG_CLOUD_NODE_UP, pre, pl, "gw.1", 4, "t", 1, buf,
                                       sizeof(buf), &len),
                 MSG_ERR_ID);
    CHECK_EQ_INT(msg_cloud_topic_build(MSG_CLOUD_GATEWAY_STATUS, pre, pl, "g/w", 3, NULL, 0, buf,
                                       sizeof(buf), &len),
                 MSG_ERR_ID);
    CHECK_EQ_INT(
        msg_cloud_topic_build(MSG_CLOUD_CMD, pre, pl, "n1", 2, NULL, 0, buf, sizeof(buf), &len),
        MSG_ERR_TOPIC);
    CHECK_EQ_INT(msg_cloud_topic_build(MSG_CLOUD_NODE_STATE, pre, pl, "n1", 2, "x", 1, buf,
                                       sizeof(buf), &len),
                 MSG_ERR_TOPIC);
    static const char *const bad_prefix[] = {"", "/a", "a/", "a//b", "$SYS", "a/+", "a#"};
    for (size_t i = 0; i < sizeof(bad_prefix) / sizeof(bad_prefix[0]); i++) {
        CHECK(msg_cloud_prefix_valid(bad_prefix[i], strlen(bad_prefix[i])) != 0);
        CHECK_EQ_INT(msg_cloud_topic_build(MSG_CLOUD_CMD, bad_prefix[i], strlen(bad_prefix[i]),
                                           "n1", 2, "c", 1, buf, sizeof(buf), &len),
                     MSG_ERR_TOPIC);
    }
    CHECK_EQ_INT(msg_cloud_prefix_valid("fleetgw", 7), 0);
    static const struct {
        const char *topic;
        enum msg_err want;
    } bad[] = {
        {"acme/site1", MSG_ERR_TOPIC},
        {"acme/site1/", MSG_ERR_TOPIC},
        {"acme/site2/cmd/n1/c", MSG_ERR_TOPIC},
        {"acme/site1x/cmd/n1/c", MSG_ERR_TOPIC},
        {"acme/site1/cmd/n1", MSG_ERR_TOPIC},
        {"acme/site1/cmd/n1/", MSG_ERR_TOPIC},
        {"acme/site1/cmd/n1/+", MSG_ERR_TOPIC},
        {"acme/site1/cmd//c", MSG_ERR_ID},
        {"acme/site1/cmd/n.1/c", MSG_ERR_ID},
        {"acme/site1/nodes/n1/state/", MSG_ERR_TOPIC},
        {"acme/site1/gateway/gw/state", MSG_ERR_TOPIC},
        {"acme/site1/gateway/gw/status/x", MSG_ERR_TOPIC},
        {"acme/site1/other/n1/x", MSG_ERR_TOPIC},
        {"acme/site1/ota/jobs", MSG_ERR_TOPIC},
        {"acme/site1/ota/jobs/", MSG_ERR_TOPIC},
        {"acme/site1/ota/jobs/j1/", MSG_ERR_TOPIC},
        {"acme/site1/ota/jobs/j1/put", MSG_ERR_TOPIC},
        {"acme/site1/ota/jobs/j1/data/x", MSG_ERR_TOPIC},
        {"acme/site1/ota/jobs/j:1", MSG_ERR_ID},
        {"acme/site1/ota/jobs//data", MSG_ERR_ID},
        {"acme/site1/ota/jobs/j+/get", MSG_ERR_ID},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        enum msg_err r = msg_cloud_topic_parse(bad[i].topic, strlen(bad[i].topic), pre, pl, &c);
        if (r != bad[i].want)
            fprintf(stderr, "cloud topic '%s': %s\n", bad[i].topic, msg_err_str(r));
        CHECK_EQ_INT(r, bad[i].want);
        CHECK(c.id[0] == '\0' && c.sub == NULL);
    }
    CHECK_EQ_INT(msg_cloud_topic_parse("x/cmd/n1/c", 10, "", 0, &c), MSG_ERR_ARG);
    /* filters */
    CHECK_EQ_INT(msg_cloud_filter(MSG_CLOUD_CMD, pre, pl, buf, sizeof(buf), &len), MSG_OK);
    CHECK(strcmp(buf, "acme/site1/cmd/+/#") == 0 && len == 18);
    CHECK_EQ_INT(msg_cloud_filter(MSG_CLOUD_NODE_STATE, pre, pl, buf, sizeof(buf), &len), MSG_OK);
    CHECK(strcmp(buf, "acme/site1/nodes/+/state") == 0);
    CHECK_EQ_INT(msg_cloud_filter(MSG_CLOUD_JOB, pre, pl, buf, sizeof(buf), &len), MSG_OK);
    CHECK(strcmp(buf, "acme/site1/ota/jobs/+") == 0 && len == 21);
    CHECK_EQ_INT(msg_cloud_filter(MSG_CLOUD_JOB_DATA, pre, pl, buf, sizeof(buf), &len), MSG_OK);
    CHECK(strcmp(buf, "acme/site1/ota/jobs/+/data") == 0);
    /* a job id is a campaign id: '.' allowed, ':' not; a job topic takes no subtopic */
    CHECK_EQ_INT(
        msg_cloud_topic_build(MSG_CLOUD_JOB, pre, pl, "j:1", 3, NULL, 0, buf, sizeof(buf), &len),
        MSG_ERR_ID);
    CHECK_EQ_INT(
        msg_cloud_topic_build(MSG_CLOUD_JOB_GET, pre, pl, "j1", 2, "x", 1, buf, sizeof(buf), &len),
        MSG_ERR_TOPIC);
    CHECK_EQ_INT(msg_cloud_filter(MSG_CLOUD_GATEWAY_STATUS, pre, pl, buf, 28, &len), MSG_OK);
    CHECK(strcmp(buf, "acme/site1/gateway/+/status") == 0 && len == 27);
    CHECK_EQ_INT(msg_cloud_filter(MSG_CLOUD_NODE_UP, pre, pl, buf, sizeof(buf), &len), MSG_OK);
    CHECK(strcmp(buf, "acme/site1/nodes/+/#") == 0);
    CHECK_EQ_INT(msg_cloud_filter(MSG_CLOUD_CMD, pre, pl, buf, 18, &len), MSG_ERR_NOSPACE);
}

int main(void)
{
    for (size_t i = 0; i < sizeof(d4096); i++)
        d4096[i] = (uint8_t)i;
    test_examples();
    test_invalid_structs();
    test_decode_refusals();
    test_topics();
    test_cloud_topics();
    return check_finish();
}
