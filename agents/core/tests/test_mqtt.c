/* Unit tests of the MQTT client with hand-built broker packets: every packet type the
 * client sends or accepts, byte-exact encodings, QoS 1 resend with DUP, keep-alive, and
 * malformed/unexpected input rejected.
 * With FLEETGW_WRITE_CORPUS=DIR set, it also writes the fuzz seed corpus (broker streams
 * built from this encoder's own packets) into DIR. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "fleetgw/mqtt.h"

/* ---- a capturing transport ----------------------------------------------------------- */
struct sink {
    uint8_t out[8192];
    size_t len;
    size_t chunk; /* accept at most this many bytes per write (0: all) */
    int again;    /* next N writes return TRANSPORT_AGAIN */
    int fail;     /* writes fail */
};

static long sink_write(void *ctx, const uint8_t *buf, size_t len)
{
    struct sink *s = ctx;
    size_t n = len;
    if (s->fail)
        return TRANSPORT_ERROR;
    if (s->again > 0) {
        s->again--;
        return TRANSPORT_AGAIN;
    }
    if (s->chunk != 0 && n > s->chunk)
        n = s->chunk;
    if (n > sizeof(s->out) - s->len)
        n = sizeof(s->out) - s->len;
    memcpy(s->out + s->len, buf, n);
    s->len += n;
    return (long)n;
}

/* ---- recorded callbacks -------------------------------------------------------------- */
struct rec {
    int connacks;
    bool session_present;
    int messages;
    char topic[64];
    uint8_t payload[256];
    size_t payload_len;
    uint8_t qos;
    bool dup, retain;
    uint16_t msg_pid;
    int pubacks;
    uint16_t last_puback;
    int subacks;
    uint8_t codes[8];
    size_t ncodes;
};

static void on_connack(void *u, bool sp)
{
    struct rec *r = u;
    r->connacks++;
    r->session_present = sp;
}

static void on_message(void *u, const struct mqtt_message *m)
{
    struct rec *r = u;
    r->messages++;
    memset(r->topic, 0, sizeof(r->topic));
    memcpy(r->topic, m->topic, m->topic_len < sizeof(r->topic) - 1 ? m->topic_len : 63);
    r->payload_len = m->payload_len < sizeof(r->payload) ? m->payload_len : sizeof(r->payload);
    memcpy(r->payload, m->payload, r->payload_len);
    r->qos = m->qos;
    r->dup = m->dup;
    r->retain = m->retain;
    r->msg_pid = m->packet_id;
}

static void on_puback(void *u, uint16_t pid)
{
    struct rec *r = u;
    r->pubacks++;
    r->last_puback = pid;
}

static void on_suback(void *u, uint16_t pid, const uint8_t *codes, size_t n)
{
    struct rec *r = u;
    (void)pid;
    r->subacks++;
    r->ncodes = n < sizeof(r->codes) ? n : sizeof(r->codes);
    memcpy(r->codes, codes, r->ncodes);
}

/* ---- fixture ------------------------------------------------------------------------- */
struct fx {
    struct mqtt_client cl;
    struct sink sink;
    struct transport tr;
    struct rec rec;
    uint8_t rx[512];
    uint8_t tx[1024];
    uint8_t store[8 * 128];
};

static void fx_init(struct fx *f)
{
    struct mqtt_config cfg;
    memset(f, 0, sizeof(*f));
    f->tr.ctx = &f->sink;
    f->tr.write = sink_write;
    memset(&cfg, 0, sizeof(cfg));
    cfg.rx_buf = f->rx;
    cfg.rx_cap = sizeof(f->rx);
    cfg.tx_buf = f->tx;
    cfg.tx_cap = sizeof(f->tx);
    cfg.store = f->store;
    cfg.store_cap = sizeof(f->store);
    cfg.retry_ms = 1000;
    cfg.connack_timeout_ms = 5000;
    cfg.transport = &f->tr;
    cfg.cb.user = &f->rec;
    cfg.cb.on_connack = on_connack;
    cfg.cb.on_message = on_message;
    cfg.cb.on_puback = on_puback;
    cfg.cb.on_suback = on_suback;
    CHECK(mqtt_init(&f->cl, &cfg) == MQTT_OK);
}

static const uint8_t CONNACK_OK[] = {0x20, 0x02, 0x00, 0x00};

/* Connected client, sink emptied. */
static void fx_connected(struct fx *f)
{
    struct mqtt_connect_options o;
    fx_init(f);
    memset(&o, 0, sizeof(o));
    o.client_id = "n1";
    o.clean_session = true;
    o.keep_alive_s = 30;
    CHECK(mqtt_connect(&f->cl, &o, 0) == MQTT_OK);
    CHECK(mqtt_input(&f->cl, CONNACK_OK, sizeof(CONNACK_OK)) == MQTT_OK);
    CHECK(mqtt_state(&f->cl) == MQTT_STATE_CONNECTED);
    f->sink.len = 0;
}

static bool out_is(const struct fx *f, const uint8_t *exp, size_t n)
{
    if (f->sink.len != n || memcmp(f->sink.out, exp, n) != 0) {
        fprintf(stderr, "  wrote %zu bytes:", f->sink.len);
        for (size_t i = 0; i < f->sink.len && i < 64; i++)
            fprintf(stderr, " %02x", f->sink.out[i]);
        fprintf(stderr, "\n");
        return false;
    }
    return true;
}

/* ---- tests --------------------------------------------------------------------------- */

static void test_connect_encoding(void)
{
    struct fx f;
    struct mqtt_connect_options o;
    static const uint8_t exp[] = {0x10, 0x0e, 0x00, 0x04, 'M',  'Q',  'T', 'T',
                                  0x04, 0x02, 0x00, 0x1e, 0x00, 0x02, 'n', '1'};
    fx_init(&f);
    memset(&o, 0, sizeof(o));
    o.client_id = "n1";
    o.clean_session = true;
    o.keep_alive_s = 30;
    CHECK(mqtt_connect(&f.cl, &o, 0) == MQTT_OK);
    CHECK(out_is(&f, exp, sizeof(exp)));
    CHECK(mqtt_state(&f.cl) == MQTT_STATE_CONNECTING);
    CHECK(mqtt_connect(&f.cl, &o, 0) == MQTT_ERR_STATE);
}

static void test_connect_will_user(void)
{
    struct fx f;
    struct mqtt_connect_options o;
    static const uint8_t pw[] = {'p', 'w'};
    static const uint8_t will[] = {'x'};
    /* flags: user 0x80 | password 0x40 | will retain 0x20 | will qos1 0x08 | will 0x04 */
    static const uint8_t exp[] = {0x10, 0x1c, 0x00, 0x04, 'M', 'Q',  'T',  'T',  0x04, 0xec,
                                  0x00, 0x0a, 0x00, 0x01, 'c', 0x00, 0x02, 'w',  't',  0x00,
                                  0x01, 'x',  0x00, 0x02, 'u', 's',  0x00, 0x02, 'p',  'w'};
    fx_init(&f);
    memset(&o, 0, sizeof(o));
    o.client_id = "c";
    o.keep_alive_s = 10;
    o.will_topic = "wt";
    o.will_payload = will;
    o.will_payload_len = 1;
    o.will_qos = 1;
    o.will_retain = true;
    o.username = "us";
    o.password = pw;
    o.password_len = 2;
    CHECK(mqtt_connect(&f.cl, &o, 0) == MQTT_OK);
    CHECK(out_is(&f, exp, sizeof(exp)));

    /* Bad options are refused before anything is written. */
    fx_init(&f);
    o.will_topic = "w/#";
    CHECK(mqtt_connect(&f.cl, &o, 0) == MQTT_ERR_PARAM);
    o.will_topic = NULL;
    o.client_id = "";
    CHECK(mqtt_connect(&f.cl, &o, 0) == MQTT_ERR_PARAM);
    o.client_id = "\xff";
    CHECK(mqtt_connect(&f.cl, &o, 0) == MQTT_ERR_PARAM);
    o.client_id = "c";
    o.username = NULL;
    CHECK(mqtt_connect(&f.cl, &o, 0) == MQTT_ERR_PARAM); /* password without username */
    CHECK_EQ_INT(f.sink.len, 0);
}

static void test_connack(void)
{
    struct fx f;
    struct mqtt_connect_options o;
    static const uint8_t refused[] = {0x20, 0x02, 0x00, 0x05};
    static const uint8_t badflags[] = {0x20, 0x02, 0x02, 0x00};
    static const uint8_t badlen[] = {0x20, 0x03, 0x00, 0x00, 0x00};
    static const uint8_t badcode[] = {0x20, 0x02, 0x00, 0x06};
    static const uint8_t sp[] = {0x20, 0x02, 0x01, 0x00};
    static const uint8_t pub_first[] = {0x30, 0x03, 0x00, 0x01, 'a'};
    memset(&o, 0, sizeof(o));
    o.client_id = "n1";

    fx_init(&f);
    CHECK(mqtt_connect(&f.cl, &o, 0) == MQTT_OK);
    CHECK(mqtt_input(&f.cl, sp, sizeof(sp)) == MQTT_OK);
    CHECK_EQ_INT(f.rec.connacks, 1);
    CHECK(f.rec.session_present);

    fx_init(&f);
    CHECK(mqtt_connect(&f.cl, &o, 0) == MQTT_OK);
    CHECK(mqtt_input(&f.cl, refused, sizeof(refused)) == MQTT_ERR_REFUSED);
    CHECK_EQ_INT(mqtt_connack_code(&f.cl), 5);
    CHECK(mqtt_state(&f.cl) == MQTT_STATE_ERROR);
    CHECK_EQ_INT(f.rec.connacks, 0);

    const uint8_t *bad[] = {badflags, badlen, badcode, pub_first};
    const size_t badn[] = {sizeof(badflags), sizeof(badlen), sizeof(badcode), sizeof(pub_first)};
    for (size_t i = 0; i < 4; i++) {
        fx_init(&f);
        CHECK(mqtt_connect(&f.cl, &o, 0) == MQTT_OK);
        CHECK(mqtt_input(&f.cl, bad[i], badn[i]) == MQTT_ERR_PROTOCOL);
        CHECK(mqtt_state(&f.cl) == MQTT_STATE_ERROR);
        /* once in error, everything is refused until the connection is dropped */
        CHECK(mqtt_input(&f.cl, CONNACK_OK, sizeof(CONNACK_OK)) == MQTT_ERR_PROTOCOL);
    }

    /* Bytes before any CONNECT are refused too. */
    fx_init(&f);
    CHECK(mqtt_input(&f.cl, CONNACK_OK, sizeof(CONNACK_OK)) == MQTT_ERR_PROTOCOL);
}

static void test_connack_timeout(void)
{
    struct fx f;
    struct mqtt_connect_options o;
    memset(&o, 0, sizeof(o));
    o.client_id = "n1";
    fx_init(&f);
    CHECK(mqtt_connect(&f.cl, &o, 100) == MQTT_OK);
    CHECK(mqtt_tick(&f.cl, 5099) == MQTT_OK);
    CHECK(mqtt_tick(&f.cl, 5100) == MQTT_ERR_TIMEOUT);
    CHECK(mqtt_state(&f.cl) == MQTT_STATE_ERROR);
}

static void test_publish_qos0(void)
{
    struct fx f;
    static const uint8_t exp[] = {0x31, 0x06, 0x00, 0x01, 't', 'a', 'b', 'c'};
    uint16_t pid = 99;
    fx_connected(&f);
    CHECK(mqtt_publish(&f.cl, "t", (const uint8_t *)"abc", 3, 0, true, &pid) == MQTT_OK);
    CHECK_EQ_INT(pid, 0);
    CHECK(out_is(&f, exp, sizeof(exp)));
    CHECK_EQ_INT(mqtt_inflight_count(&f.cl), 0);
    CHECK(mqtt_publish(&f.cl, "a/+", NULL, 0, 0, false, NULL) == MQTT_ERR_PARAM);
    CHECK(mqtt_publish(&f.cl, "a/#", NULL, 0, 0, false, NULL) == MQTT_ERR_PARAM);
    CHECK(mqtt_publish(&f.cl, "", NULL, 0, 0, false, NULL) == MQTT_ERR_PARAM);
    CHECK(mqtt_publish(&f.cl, "t", NULL, 0, 2, false, NULL) == MQTT_ERR_PARAM);
}

static void test_publish_qos1_ack_and_resend(void)
{
    struct fx f;
    static const uint8_t exp[] = {0x32, 0x07, 0x00, 0x02, 'u', 'p', 0x00, 0x01, 'z'};
    static const uint8_t exp_dup[] = {0x3a, 0x07, 0x00, 0x02, 'u', 'p', 0x00, 0x01, 'z'};
    static const uint8_t puback1[] = {0x40, 0x02, 0x00, 0x01};
    uint16_t pid = 0;
    fx_connected(&f);
    CHECK(mqtt_publish(&f.cl, "up", (const uint8_t *)"z", 1, 1, false, &pid) == MQTT_OK);
    CHECK_EQ_INT(pid, 1);
    CHECK(out_is(&f, exp, sizeof(exp)));
    CHECK_EQ_INT(mqtt_inflight_count(&f.cl), 1);

    /* not yet due */
    f.sink.len = 0;
    CHECK(mqtt_tick(&f.cl, 999) == MQTT_OK);
    CHECK_EQ_INT(f.sink.len, 0);
    /* due: same packet with DUP */
    CHECK(mqtt_tick(&f.cl, 1000) == MQTT_OK);
    CHECK(out_is(&f, exp_dup, sizeof(exp_dup)));

    CHECK(mqtt_input(&f.cl, puback1, sizeof(puback1)) == MQTT_OK);
    CHECK_EQ_INT(f.rec.pubacks, 1);
    CHECK_EQ_INT(f.rec.last_puback, 1);
    CHECK_EQ_INT(mqtt_inflight_count(&f.cl), 0);
    /* a second PUBACK for the same id (after a resend) is harmless */
    CHECK(mqtt_input(&f.cl, puback1, sizeof(puback1)) == MQTT_OK);
    CHECK_EQ_INT(f.rec.pubacks, 1);
    f.sink.len = 0;
    CHECK(mqtt_tick(&f.cl, 5000) == MQTT_OK);
    CHECK_EQ_INT(f.sink.len, 0);
}

static void test_publish_stamped_with_set_time(void)
{
    struct fx f;
    fx_connected(&f); /* client clock at 0 */
    mqtt_set_time(&f.cl, 5000);
    CHECK(mqtt_publish(&f.cl, "up", (const uint8_t *)"z", 1, 1, false, NULL) == MQTT_OK);
    f.sink.len = 0;
    CHECK(mqtt_tick(&f.cl, 5999) == MQTT_OK); /* retry_ms 1000 counts from 5000, not 0 */
    CHECK_EQ_INT(f.sink.len, 0);
    CHECK(mqtt_tick(&f.cl, 6000) == MQTT_OK);
    CHECK(f.sink.len == 9 && f.sink.out[0] == 0x3a);
}

static void test_inflight_window_and_reconnect(void)
{
    struct fx f;
    struct mqtt_connect_options o;
    uint16_t pids[MQTT_MAX_INFLIGHT];
    fx_connected(&f);
    for (size_t i = 0; i < MQTT_MAX_INFLIGHT; i++)
        CHECK(mqtt_publish(&f.cl, "q", (const uint8_t *)"1", 1, 1, false, &pids[i]) == MQTT_OK);
    CHECK(mqtt_publish(&f.cl, "q", (const uint8_t *)"1", 1, 1, false, NULL) == MQTT_ERR_BUSY);
    /* QoS 0 still goes */
    CHECK(mqtt_publish(&f.cl, "q", (const uint8_t *)"1", 1, 0, false, NULL) == MQTT_OK);
    for (size_t i = 1; i < MQTT_MAX_INFLIGHT; i++)
        CHECK(pids[i] != pids[i - 1] && pids[i] != 0);

    /* connection lost: in-flight kept, resent with DUP after the next CONNACK */
    mqtt_connection_lost(&f.cl);
    CHECK(mqtt_state(&f.cl) == MQTT_STATE_IDLE);
    CHECK_EQ_INT(mqtt_inflight_count(&f.cl), MQTT_MAX_INFLIGHT);
    CHECK(mqtt_publish(&f.cl, "q", NULL, 0, 0, false, NULL) == MQTT_ERR_STATE);
    memset(&o, 0, sizeof(o));
    o.client_id = "n1";
    f.sink.len = 0;
    CHECK(mqtt_connect(&f.cl, &o, 10) == MQTT_OK);
    size_t connect_len = f.sink.len;
    CHECK(mqtt_input(&f.cl, CONNACK_OK, sizeof(CONNACK_OK)) == MQTT_OK);
    /* 8 resent packets of 8 bytes each, each with DUP */
    CHECK_EQ_INT(f.sink.len - connect_len, 8 * MQTT_MAX_INFLIGHT);
    for (size_t i = 0; i < MQTT_MAX_INFLIGHT; i++)
        CHECK_EQ_INT(f.sink.out[connect_len + 8 * i], 0x3a);
    /* acks free the slots; new ids avoid the ones still in use */
    uint8_t ack[4] = {0x40, 0x02, (uint8_t)(pids[3] >> 8), (uint8_t)pids[3]};
    CHECK(mqtt_input(&f.cl, ack, sizeof(ack)) == MQTT_OK);
    uint16_t p = 0;
    CHECK(mqtt_publish(&f.cl, "q", (const uint8_t *)"1", 1, 1, false, &p) == MQTT_OK);
    for (size_t i = 0; i < MQTT_MAX_INFLIGHT; i++)
        CHECK(i == 3 || p != pids[i]);
    mqtt_drop_inflight(&f.cl);
    CHECK_EQ_INT(mqtt_inflight_count(&f.cl), 0);
}

static void test_publish_too_big(void)
{
    struct fx f;
    uint8_t big[200];
    memset(big, 'b', sizeof(big));
    fx_connected(&f);
    /* 128-byte in-flight slots: QoS 1 refused, QoS 0 fits the 1 KiB tx buffer */
    CHECK(mqtt_publish(&f.cl, "t", big, sizeof(big), 1, false, NULL) == MQTT_ERR_TOOBIG);
    CHECK(mqtt_publish(&f.cl, "t", big, sizeof(big), 0, false, NULL) == MQTT_OK);
    uint8_t huge[2000];
    memset(huge, 'h', sizeof(huge));
    CHECK(mqtt_publish(&f.cl, "t", huge, sizeof(huge), 0, false, NULL) == MQTT_ERR_TOOBIG);
}

static void test_receive_publish(void)
{
    struct fx f;
    static const uint8_t q0[] = {0x31, 0x07, 0x00, 0x03, 'a', '/', 'b', 'h', 'i'};
    static const uint8_t q1[] = {0x3a, 0x08, 0x00, 0x01, 'c', 0x12, 0x34, 'x', 'y', 'z'};
    static const uint8_t ack[] = {0x40, 0x02, 0x12, 0x34};
    static const uint8_t empty[] = {0x30, 0x03, 0x00, 0x01, 'e'};
    fx_connected(&f);
    CHECK(mqtt_input(&f.cl, q0, sizeof(q0)) == MQTT_OK);
    CHECK_EQ_INT(f.rec.messages, 1);
    CHECK(strcmp(f.rec.topic, "a/b") == 0);
    CHECK(f.rec.payload_len == 2 && memcmp(f.rec.payload, "hi", 2) == 0);
    CHECK(f.rec.retain && f.rec.qos == 0 && !f.rec.dup);
    CHECK_EQ_INT(f.sink.len, 0); /* no ack for QoS 0 */

    CHECK(mqtt_input(&f.cl, q1, sizeof(q1)) == MQTT_OK);
    CHECK_EQ_INT(f.rec.messages, 2);
    CHECK(f.rec.qos == 1 && f.rec.dup && f.rec.msg_pid == 0x1234);
    CHECK(f.rec.payload_len == 3 && memcmp(f.rec.payload, "xyz", 3) == 0);
    CHECK(out_is(&f, ack, sizeof(ack)));

    CHECK(mqtt_input(&f.cl, empty, sizeof(empty)) == MQTT_OK);
    CHECK_EQ_INT(f.rec.messages, 3);
    CHECK_EQ_INT(f.rec.payload_len, 0);
}

static void test_byte_at_a_time(void)
{
    struct fx f;
    static const uint8_t stream[] = {0x32, 0x08, 0x00, 0x01, 'c',  0x00, 0x07,
                                     'x',  'y',  'z',  0x40, 0x02, 0x00, 0x09,
                                     0xd0, 0x00, 0x30, 0x03, 0x00, 0x01, 'q'};
    fx_connected(&f);
    for (size_t i = 0; i < sizeof(stream); i++)
        CHECK(mqtt_input(&f.cl, stream + i, 1) == MQTT_OK);
    CHECK_EQ_INT(f.rec.messages, 2);
    CHECK(strcmp(f.rec.topic, "q") == 0);
    CHECK(mqtt_state(&f.cl) == MQTT_STATE_CONNECTED);
}

static void test_pending_acks_when_tx_full(void)
{
    struct fx f;
    static const uint8_t q1[] = {0x32, 0x06, 0x00, 0x01, 'c', 0x00, 0x05, 'x'};
    uint8_t big[1000];
    memset(big, 0, sizeof(big));
    fx_connected(&f);
    f.sink.again = 1000; /* the transport accepts nothing */
    CHECK(mqtt_publish(&f.cl, "t", big, 1000 - 10, 0, false, NULL) == MQTT_OK);
    CHECK(mqtt_want_write(&f.cl));
    CHECK(mqtt_input(&f.cl, q1, sizeof(q1)) == MQTT_OK); /* PUBACK owed, no room */
    f.sink.again = 0;
    CHECK(mqtt_tick(&f.cl, 1) == MQTT_OK);
    CHECK(!mqtt_want_write(&f.cl));
    CHECK(f.sink.len >= 4);
    static const uint8_t ack[] = {0x40, 0x02, 0x00, 0x05};
    CHECK(memcmp(f.sink.out + f.sink.len - 4, ack, 4) == 0);
}

static void test_subscribe(void)
{
    struct fx f;
    const char *filters[] = {"a/+/c", "d/#"};
    const uint8_t qos[] = {1, 0};
    static const uint8_t exp[] = {0x82, 0x10, 0x00, 0x01, 0x00, 0x05, 'a', '/', '+',
                                  '/',  'c',  0x01, 0x00, 0x03, 'd',  '/', '#', 0x00};
    static const uint8_t suback[] = {0x90, 0x04, 0x00, 0x01, 0x01, 0x80};
    uint16_t pid = 0;
    fx_connected(&f);
    CHECK(mqtt_subscribe(&f.cl, filters, qos, 2, &pid) == MQTT_OK);
    CHECK_EQ_INT(pid, 1);
    CHECK(out_is(&f, exp, sizeof(exp)));
    CHECK(mqtt_subscribe(&f.cl, filters, qos, 2, NULL) == MQTT_ERR_BUSY);
    CHECK(mqtt_input(&f.cl, suback, sizeof(suback)) == MQTT_OK);
    CHECK_EQ_INT(f.rec.subacks, 1);
    CHECK(f.rec.ncodes == 2 && f.rec.codes[0] == 1 && f.rec.codes[1] == 0x80);

    /* invalid filters */
    const char *bad1[] = {"a/b#"};
    const char *bad2[] = {"a+/b"};
    const char *bad3[] = {"#/a"};
    const uint8_t q[] = {0};
    const uint8_t q2[] = {2};
    const char *ok[] = {"+"};
    CHECK(mqtt_subscribe(&f.cl, bad1, q, 1, NULL) == MQTT_ERR_PARAM);
    CHECK(mqtt_subscribe(&f.cl, bad2, q, 1, NULL) == MQTT_ERR_PARAM);
    CHECK(mqtt_subscribe(&f.cl, bad3, q, 1, NULL) == MQTT_ERR_PARAM);
    CHECK(mqtt_subscribe(&f.cl, ok, q2, 1, NULL) == MQTT_ERR_PARAM);
    CHECK(mqtt_subscribe(&f.cl, ok, q, 0, NULL) == MQTT_ERR_PARAM);
    CHECK(mqtt_subscribe(&f.cl, ok, q, 1, NULL) == MQTT_OK);
}

static void test_bad_suback(void)
{
    struct fx f;
    const char *filters[] = {"x"};
    const uint8_t qos[] = {0};
    static const uint8_t wrong_pid[] = {0x90, 0x03, 0x00, 0x07, 0x00};
    static const uint8_t bad_code[] = {0x90, 0x03, 0x00, 0x01, 0x03};
    static const uint8_t no_codes[] = {0x90, 0x02, 0x00, 0x01};
    static const uint8_t unsolicited[] = {0x90, 0x03, 0x00, 0x01, 0x00};
    const uint8_t *bad[] = {wrong_pid, bad_code, no_codes};
    for (size_t i = 0; i < 3; i++) {
        fx_connected(&f);
        CHECK(mqtt_subscribe(&f.cl, filters, qos, 1, NULL) == MQTT_OK);
        CHECK(mqtt_input(&f.cl, bad[i], (size_t)bad[i][1] + 2u) == MQTT_ERR_PROTOCOL);
        CHECK_EQ_INT(f.rec.subacks, 0);
    }
    fx_connected(&f);
    CHECK(mqtt_input(&f.cl, unsolicited, sizeof(unsolicited)) == MQTT_ERR_PROTOCOL);
}

static void test_keepalive(void)
{
    struct fx f;
    static const uint8_t pingreq[] = {0xc0, 0x00};
    static const uint8_t pingresp[] = {0xd0, 0x00};
    fx_connected(&f); /* keep-alive 30 s, connected at t=0 */
    CHECK(mqtt_tick(&f.cl, 29999) == MQTT_OK);
    CHECK_EQ_INT(f.sink.len, 0);
    CHECK(mqtt_tick(&f.cl, 30000) == MQTT_OK);
    CHECK(out_is(&f, pingreq, sizeof(pingreq)));
    f.sink.len = 0;
    CHECK(mqtt_tick(&f.cl, 40000) == MQTT_OK); /* only one PINGREQ outstanding */
    CHECK_EQ_INT(f.sink.len, 0);
    CHECK(mqtt_input(&f.cl, pingresp, sizeof(pingresp)) == MQTT_OK);
    CHECK(mqtt_tick(&f.cl, 60000) == MQTT_OK); /* next interval */
    CHECK(out_is(&f, pingreq, sizeof(pingreq)));
    /* no PINGRESP within the keep-alive: timeout */
    CHECK(mqtt_tick(&f.cl, 89999) == MQTT_OK);
    CHECK(mqtt_tick(&f.cl, 90000) == MQTT_ERR_TIMEOUT);
    CHECK(mqtt_state(&f.cl) == MQTT_STATE_ERROR);
}

static void test_disconnect(void)
{
    struct fx f;
    static const uint8_t exp[] = {0xe0, 0x00};
    fx_connected(&f);
    CHECK(mqtt_disconnect(&f.cl) == MQTT_OK);
    CHECK(out_is(&f, exp, sizeof(exp)));
    CHECK(mqtt_state(&f.cl) == MQTT_STATE_IDLE);
    CHECK(mqtt_disconnect(&f.cl) == MQTT_ERR_STATE);
}

static void test_partial_writes_and_errors(void)
{
    struct fx f;
    uint8_t payload[100];
    memset(payload, 'p', sizeof(payload));
    fx_connected(&f);
    f.sink.chunk = 3;
    f.sink.again = 1;
    CHECK(mqtt_publish(&f.cl, "t", payload, sizeof(payload), 0, false, NULL) == MQTT_OK);
    CHECK(mqtt_want_write(&f.cl)); /* first write said AGAIN */
    CHECK(mqtt_flush(&f.cl) == MQTT_OK);
    CHECK(!mqtt_want_write(&f.cl));
    CHECK_EQ_INT(f.sink.len, 2 + 3 + 100);
    f.sink.fail = 1;
    CHECK(mqtt_publish(&f.cl, "t", payload, 1, 0, false, NULL) == MQTT_ERR_IO);
    CHECK(mqtt_state(&f.cl) == MQTT_STATE_ERROR);
}

/* Every malformed or unexpected packet from the broker puts the client in error. */
static void test_malformed(void)
{
    struct {
        const char *what;
        uint8_t b[12];
        size_t n;
    } cases[] = {
        {"5-byte remaining length", {0x30, 0xff, 0xff, 0xff, 0xff, 0x01}, 6},
        {"oversize (> rx buffer)", {0x30, 0x81, 0x04}, 3}, /* 513 > 512 */
        {"non-minimal length", {0xd0, 0x80, 0x00}, 3},
        {"QoS 3", {0x36, 0x03, 0x00, 0x01, 'a'}, 5},
        {"QoS 2", {0x34, 0x05, 0x00, 0x01, 'a', 0x00, 0x01}, 7},
        {"DUP on QoS 0", {0x38, 0x03, 0x00, 0x01, 'a'}, 5},
        {"topic longer than packet", {0x30, 0x03, 0x00, 0x05, 'a'}, 5},
        {"empty topic", {0x30, 0x02, 0x00, 0x00}, 4},
        {"publish shorter than topic length", {0x30, 0x01, 0x00}, 3},
        {"QoS 1 without packet id", {0x32, 0x04, 0x00, 0x01, 'a', 0x00}, 6},
        {"QoS 1 packet id 0", {0x32, 0x05, 0x00, 0x01, 'a', 0x00, 0x00}, 7},
        {"wildcard topic", {0x30, 0x03, 0x00, 0x01, '#'}, 5},
        {"bad UTF-8 topic", {0x30, 0x04, 0x00, 0x02, 0xc0, 0x80}, 6},
        {"NUL in topic", {0x30, 0x03, 0x00, 0x01, 0x00}, 5},
        {"surrogate in topic", {0x30, 0x05, 0x00, 0x03, 0xed, 0xa0, 0x80}, 7},
        {"PUBACK short", {0x40, 0x01, 0x00}, 3},
        {"PUBACK id 0", {0x40, 0x02, 0x00, 0x00}, 4},
        {"PUBACK flags", {0x41, 0x02, 0x00, 0x01}, 4},
        {"PINGRESP with body", {0xd0, 0x01, 0x00}, 3},
        {"second CONNACK", {0x20, 0x02, 0x00, 0x00}, 4},
        {"CONNECT", {0x10, 0x00}, 2},
        {"PUBREC", {0x50, 0x02, 0x00, 0x01}, 4},
        {"PUBREL", {0x62, 0x02, 0x00, 0x01}, 4},
        {"PUBCOMP", {0x70, 0x02, 0x00, 0x01}, 4},
        {"SUBSCRIBE", {0x82, 0x00}, 2},
        {"UNSUBSCRIBE", {0xa2, 0x00}, 2},
        {"UNSUBACK", {0xb0, 0x02, 0x00, 0x01}, 4},
        {"PINGREQ", {0xc0, 0x00}, 2},
        {"DISCONNECT", {0xe0, 0x00}, 2},
        {"reserved 0", {0x00, 0x00}, 2},
        {"reserved 15", {0xf0, 0x00}, 2},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct fx f;
        fx_connected(&f);
        mqtt_status_t st = mqtt_input(&f.cl, cases[i].b, cases[i].n);
        if (st != MQTT_ERR_PROTOCOL || mqtt_state(&f.cl) != MQTT_STATE_ERROR)
            fprintf(stderr, "  case '%s' gave %s\n", cases[i].what, mqtt_status_str(st));
        CHECK(st == MQTT_ERR_PROTOCOL);
        CHECK(mqtt_state(&f.cl) == MQTT_STATE_ERROR);
        CHECK_EQ_INT(f.rec.messages, 0);
        CHECK_EQ_INT(f.sink.len, 0); /* nothing acknowledged */
    }
}

static void test_truncated(void)
{
    struct fx f;
    static const uint8_t part[] = {0x32, 0x08, 0x00, 0x01, 'c', 0x00};
    fx_connected(&f);
    /* a truncated packet delivers nothing; the rest of the connection is discarded */
    CHECK(mqtt_input(&f.cl, part, sizeof(part)) == MQTT_OK);
    CHECK_EQ_INT(f.rec.messages, 0);
    CHECK_EQ_INT(f.sink.len, 0);
    mqtt_connection_lost(&f.cl);
    CHECK(mqtt_state(&f.cl) == MQTT_STATE_IDLE);
    /* a new connection starts parsing afresh */
    struct mqtt_connect_options o;
    memset(&o, 0, sizeof(o));
    o.client_id = "n1";
    CHECK(mqtt_connect(&f.cl, &o, 0) == MQTT_OK);
    CHECK(mqtt_input(&f.cl, CONNACK_OK, sizeof(CONNACK_OK)) == MQTT_OK);
    CHECK(mqtt_state(&f.cl) == MQTT_STATE_CONNECTED);
    /* remaining length cut after a continuation byte */
    static const uint8_t cut[] = {0x30, 0x80};
    CHECK(mqtt_input(&f.cl, cut, sizeof(cut)) == MQTT_OK);
    CHECK_EQ_INT(f.rec.messages, 0);
}

static void test_init_params(void)
{
    struct mqtt_client cl;
    struct mqtt_config cfg;
    uint8_t b[64];
    memset(&cfg, 0, sizeof(cfg));
    CHECK(mqtt_init(&cl, &cfg) == MQTT_ERR_PARAM);
    CHECK(mqtt_init(NULL, &cfg) == MQTT_ERR_PARAM);
    cfg.rx_buf = b;
    cfg.rx_cap = sizeof(b);
    cfg.tx_buf = b;
    cfg.tx_cap = sizeof(b);
    cfg.store = b;
    cfg.store_cap = sizeof(b); /* 8 bytes per slot: too small */
    CHECK(mqtt_init(&cl, &cfg) == MQTT_ERR_PARAM);
}

/* ---- seed corpus for fuzz_mqtt (see fuzz/fuzz_mqtt.c for the input format) ----------- */

static size_t encode_publish(uint8_t *out, size_t cap, const char *topic, const char *payload,
                             uint8_t qos)
{
    struct fx f;
    fx_connected(&f);
    if (mqtt_publish(&f.cl, topic, (const uint8_t *)payload, strlen(payload), qos, false, NULL) !=
        MQTT_OK)
        return 0;
    if (f.sink.len > cap)
        return 0;
    memcpy(out, f.sink.out, f.sink.len);
    return f.sink.len;
}

static void write_seed(const char *dir, const char *name, uint8_t mode, const uint8_t *b, size_t n)
{
    char path[1024];
    FILE *fp;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    fp = fopen(path, "wb");
    CHECK(fp != NULL);
    if (fp == NULL)
        return;
    CHECK(fwrite(&mode, 1, 1, fp) == 1);
    CHECK(fwrite(CONNACK_OK, 1, sizeof(CONNACK_OK), fp) == sizeof(CONNACK_OK));
    CHECK(fwrite(b, 1, n, fp) == n);
    fclose(fp);
}

static void write_corpus(const char *dir)
{
    uint8_t b[512];
    size_t n;
    static const uint8_t control[] = {0x40, 0x02, 0x00, 0x01, 0x90, 0x03,
                                      0x00, 0x02, 0x01, 0xd0, 0x00};
    n = encode_publish(b, sizeof(b), "fleet/node-1/down/ping", "hello", 1);
    write_seed(dir, "publish_qos1", 0, b, n);
    n = encode_publish(b, sizeof(b), "fleet/node-1/attest/challenge",
                       "0123456789abcdef0123456789abcdef", 0);
    write_seed(dir, "publish_qos0", 3, b, n);
    size_t m = encode_publish(b, sizeof(b), "fleet/node-1/ota/chunk", "\x01\x02\x03", 1);
    n = m + encode_publish(b + m, sizeof(b) - m, "a/b", "", 0);
    write_seed(dir, "two_publishes_bytewise", 1, b, n);
    write_seed(dir, "acks_and_ping", 2, control, sizeof(control));
    printf("wrote seed corpus to %s\n", dir);
}

int main(void)
{
    test_connect_encoding();
    test_connect_will_user();
    test_connack();
    test_connack_timeout();
    test_publish_qos0();
    test_publish_qos1_ack_and_resend();
    test_publish_stamped_with_set_time();
    test_inflight_window_and_reconnect();
    test_publish_too_big();
    test_receive_publish();
    test_byte_at_a_time();
    test_pending_acks_when_tx_full();
    test_subscribe();
    test_bad_suback();
    test_keepalive();
    test_disconnect();
    test_partial_writes_and_errors();
    test_malformed();
    test_truncated();
    test_init_params();
    const char *dir = getenv("FLEETGW_WRITE_CORPUS");
    if (dir != NULL)
        write_corpus(dir);
    return check_finish();
}
