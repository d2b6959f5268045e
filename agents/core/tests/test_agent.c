/* Unit tests of the agent state machine with a fake port (in-memory byte stream) and a
 * scripted broker built from hand-made packets: connect, subscribe, telemetry with
 * sequence numbers, clean stop, refusals, back-off and give-up, reconnect with resend,
 * commands (built-in ping), the attestation/OTA seams, the secure-layer seam. */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "fleetgw/agent.h"
#include "fleetgw/msg.h"

struct port {
    uint8_t in[2048]; /* broker -> node, not yet read */
    size_t in_len, in_off;
    uint8_t out[8192]; /* node -> broker */
    size_t out_len;
    size_t out_seen; /* packets before this offset were already inspected */
    int opens, closes;
    agent_status_t open_result;
    bool eof;
    bool block_writes;
    struct transport tr;
};

static long port_read(void *ctx, uint8_t *buf, size_t len)
{
    struct port *p = ctx;
    size_t n = p->in_len - p->in_off;
    if (n == 0)
        return p->eof ? TRANSPORT_EOF : TRANSPORT_AGAIN;
    if (n > len)
        n = len;
    memcpy(buf, p->in + p->in_off, n);
    p->in_off += n;
    return (long)n;
}

static long port_write(void *ctx, const uint8_t *buf, size_t len)
{
    struct port *p = ctx;
    if (p->block_writes || len > sizeof(p->out) - p->out_len)
        return TRANSPORT_AGAIN;
    memcpy(p->out + p->out_len, buf, len);
    p->out_len += len;
    return (long)len;
}

static agent_status_t port_open(void *ctx)
{
    struct port *p = ctx;
    p->opens++;
    p->in_len = p->in_off = 0;
    p->eof = false;
    return p->open_result;
}

static void port_close(void *ctx)
{
    struct port *p = ctx;
    p->closes++;
}

static void feed(struct port *p, const uint8_t *b, size_t n)
{
    memcpy(p->in + p->in_len, b, n);
    p->in_len += n;
}

/* Next unseen packet written by the node: its first byte, body and body length. */
static bool next_out(struct port *p, uint8_t *type, const uint8_t **body, size_t *blen)
{
    size_t off = p->out_seen, rl = 0, mul = 1;
    if (off + 2 > p->out_len)
        return false;
    *type = p->out[off++];
    for (int i = 0; i < 4; i++) {
        uint8_t b = p->out[off++];
        rl += (size_t)(b & 0x7f) * mul;
        mul *= 128;
        if (!(b & 0x80))
            break;
    }
    if (off + rl > p->out_len)
        return false;
    *body = p->out + off;
    *blen = rl;
    p->out_seen = off + rl;
    return true;
}

static bool body_has(const uint8_t *b, size_t n, const char *s)
{
    size_t sl = strlen(s);
    for (size_t i = 0; i + sl <= n; i++)
        if (memcmp(b + i, s, sl) == 0)
            return true;
    return false;
}

struct app_rec {
    int challenges;
    uint8_t nonce[64];
    size_t nonce_len;
    int commands;
    char cmd[32];
    int otas;
    uint32_t ttl;
    char ota_suffix[16];
};

static agent_status_t app_challenge(void *user, const uint8_t *nonce, size_t n, uint32_t ttl,
                                    uint8_t *out, size_t cap, size_t *ret_len)
{
    struct app_rec *r = user;
    r->ttl = ttl;
    static const char ev[] = "EVIDENCE:";
    r->challenges++;
    r->nonce_len = n < sizeof(r->nonce) ? n : sizeof(r->nonce);
    memcpy(r->nonce, nonce, r->nonce_len);
    if (cap < sizeof(ev) - 1 + n)
        return AGENT_ERR_NOSPACE;
    memcpy(out, ev, sizeof(ev) - 1);
    memcpy(out + sizeof(ev) - 1, nonce, n);
    *ret_len = sizeof(ev) - 1 + n;
    return AGENT_OK;
}

static void app_command(void *user, const char *suffix, size_t slen, const uint8_t *p, size_t n)
{
    struct app_rec *r = user;
    (void)p;
    (void)n;
    r->commands++;
    memset(r->cmd, 0, sizeof(r->cmd));
    memcpy(r->cmd, suffix, slen < sizeof(r->cmd) - 1 ? slen : sizeof(r->cmd) - 1);
}

static agent_status_t app_ota(void *user, const char *suffix, size_t slen, const uint8_t *p,
                              size_t n, uint8_t *out, size_t cap, size_t *ret_len,
                              const char **ret_topic)
{
    struct app_rec *r = user;
    (void)p;
    (void)n;
    r->otas++;
    memset(r->ota_suffix, 0, sizeof(r->ota_suffix));
    memcpy(r->ota_suffix, suffix, slen < sizeof(r->ota_suffix) - 1 ? slen : 15);
    *ret_topic = "ota/status";
    if (cap < 2)
        return AGENT_ERR_NOSPACE;
    out[0] = 'o';
    out[1] = 'k';
    *ret_len = 2;
    return AGENT_OK;
}

static int32_t app_sample(void *user)
{
    (void)user;
    return -7;
}

struct fx {
    struct agent a;
    struct port p;
    struct app_rec rec;
    uint8_t rx[512], tx[1024], store[8 * 128], ev[256];
};

static void fx_init(struct fx *f, uint32_t count, uint32_t max_attempts, bool with_app,
                    const struct agent_layer *layer)
{
    struct agent_config c;
    struct agent_port port;
    struct agent_app app;
    memset(f, 0, sizeof(*f));
    f->p.tr.ctx = &f->p;
    f->p.tr.read = port_read;
    f->p.tr.write = port_write;
    memset(&c, 0, sizeof(c));
    c.node_id = "n1";
    c.telemetry_interval_ms = 100;
    c.telemetry_count = count;
    c.stop_when_done = true;
    c.keep_alive_s = 60;
    c.connect_timeout_ms = 5000;
    c.retry_ms = 2000;
    c.backoff_min_ms = 100;
    c.backoff_max_ms = 1000;
    c.max_attempts = max_attempts;
    c.jitter_seed = 1;
    c.rx_buf = f->rx;
    c.rx_cap = sizeof(f->rx);
    c.tx_buf = f->tx;
    c.tx_cap = sizeof(f->tx);
    c.store = f->store;
    c.store_cap = sizeof(f->store);
    c.evidence_buf = f->ev;
    c.evidence_cap = sizeof(f->ev);
    memset(&port, 0, sizeof(port));
    port.ctx = &f->p;
    port.link_open = port_open;
    port.link_close = port_close;
    port.lower = &f->p.tr;
    memset(&app, 0, sizeof(app));
    app.user = &f->rec;
    if (with_app) {
        app.on_challenge = app_challenge;
        app.on_command = app_command;
        app.on_ota = app_ota;
        app.telemetry_sample = app_sample;
    }
    CHECK(agent_init(&f->a, &c, &port, &app, layer) == AGENT_OK);
}

static const uint8_t CONNACK_OK[] = {0x20, 0x02, 0x00, 0x00};

/* Runs the node up to RUNNING; checks CONNECT and SUBSCRIBE on the way. */
static void bring_up(struct fx *f, uint32_t now, uint16_t sub_pid)
{
    uint8_t t;
    const uint8_t *b;
    size_t n;
    uint8_t suback[] = {0x90, 0x07, (uint8_t)(sub_pid >> 8), (uint8_t)sub_pid, 1, 1, 1, 1, 1};
    agent_link_up(&f->a, now);
    CHECK(agent_phase(&f->a) == AGENT_MQTT_CONNECTING);
    CHECK(next_out(&f->p, &t, &b, &n));
    CHECK_EQ_INT(t, 0x10);
    CHECK(body_has(b, n, "n1"));
    feed(&f->p, CONNACK_OK, sizeof(CONNACK_OK));
    agent_io(&f->a, now);
    /* a resend of in-flight telemetry may come before the SUBSCRIBE */
    do {
        CHECK(next_out(&f->p, &t, &b, &n));
    } while (t != 0x82 && f->p.out_seen < f->p.out_len);
    CHECK_EQ_INT(t, 0x82);
    CHECK(body_has(b, n, "fleet/n1/attest/challenge"));
    CHECK(body_has(b, n, "fleet/n1/down/#"));
    CHECK(body_has(b, n, "fleet/n1/ota/offer"));
    CHECK(body_has(b, n, "fleet/n1/ota/chunk"));
    CHECK(body_has(b, n, "fleet/n1/ota/confirm"));
    CHECK(!body_has(b, n, "ota/#")); /* would echo our own ota/ack, ota/status */
    CHECK(agent_phase(&f->a) == AGENT_SUBSCRIBING);
    feed(&f->p, suback, sizeof(suback));
    agent_io(&f->a, now);
    CHECK(agent_phase(&f->a) == AGENT_RUNNING);
}

/* Checks the next packet is telemetry with the given sequence number; returns its id. */
static uint16_t expect_telemetry(struct fx *f, uint32_t seq, bool dup)
{
    uint8_t t;
    const uint8_t *b;
    size_t n;
    static const char topic[] = "fleet/n1/up/telemetry";
    const size_t tl = sizeof(topic) - 1;
    CHECK(next_out(&f->p, &t, &b, &n));
    CHECK_EQ_INT(t, dup ? 0x3a : 0x32);
    if (n < 2 + tl + 2) {
        CHECK(n >= 2 + tl + 2); /* telemetry length */
        return 0;
    }
    CHECK(memcmp(b + 2, topic, tl) == 0);
    /* the payload is a protocol telemetry message (docs/protocol.md 3.9) */
    struct msg m;
    CHECK(msg_decode(b + 2 + tl + 2, n - (2 + tl + 2), &m) == MSG_OK);
    CHECK(m.type == MSG_TELEMETRY);
    CHECK_EQ_INT(m.u.telemetry.seq, seq);
    return (uint16_t)((b[2 + tl] << 8) | b[2 + tl + 1]);
}

static void puback(struct fx *f, uint16_t pid, uint32_t now)
{
    uint8_t ack[] = {0x40, 0x02, (uint8_t)(pid >> 8), (uint8_t)pid};
    feed(&f->p, ack, sizeof(ack));
    agent_io(&f->a, now);
}

/* The requested QoS that follows topic filter s in a SUBSCRIBE body, or -1. */
static int sub_qos(const uint8_t *b, size_t n, const char *s)
{
    size_t sl = strlen(s);
    for (size_t i = 2; i + 2 + sl < n; i++)
        if (b[i] == (uint8_t)(sl >> 8) && b[i + 1] == (uint8_t)sl && memcmp(b + i + 2, s, sl) == 0)
            return b[i + 2 + sl];
    return -1;
}

/* persistent_session: CONNECT without the clean-session flag, commands subscribed QoS 1 (the
 * broker queues them while the node is away), challenges and OTA messages QoS 0; without
 * it a clean session and QoS 1 for all. */
static void test_persistent_session(void)
{
    static const char *const qos0[] = {"fleet/n1/attest/challenge", "fleet/n1/ota/offer",
                                       "fleet/n1/ota/chunk", "fleet/n1/ota/confirm"};
    for (int persistent = 0; persistent <= 1; persistent++) {
        struct fx f;
        uint8_t t;
        const uint8_t *b;
        size_t n;
        fx_init(&f, 1, 0, true, NULL);
        f.a.cfg.persistent_session = persistent != 0;
        CHECK(agent_start(&f.a, 0) == AGENT_OK);
        agent_link_up(&f.a, 0);
        CHECK(next_out(&f.p, &t, &b, &n));
        CHECK_EQ_INT(t, 0x10);
        CHECK(n > 8 && memcmp(b + 2, "MQTT", 4) == 0);
        if (n > 8)
            CHECK_EQ_INT(b[7] & 0x02, persistent ? 0 : 0x02); /* the clean-session flag */
        feed(&f.p, CONNACK_OK, sizeof(CONNACK_OK));
        agent_io(&f.a, 0);
        CHECK(next_out(&f.p, &t, &b, &n));
        CHECK_EQ_INT(t, 0x82);
        CHECK_EQ_INT(sub_qos(b, n, "fleet/n1/down/#"), 1);
        for (size_t i = 0; i < sizeof(qos0) / sizeof(qos0[0]); i++)
            CHECK_EQ_INT(sub_qos(b, n, qos0[i]), persistent ? 0 : 1);
    }
}

static void test_happy_path(void)
{
    struct fx f;
    uint8_t t;
    const uint8_t *b;
    size_t n;
    fx_init(&f, 3, 0, true, NULL);
    CHECK(agent_start(&f.a, 1000) == AGENT_OK);
    CHECK_EQ_INT(f.p.opens, 1);
    CHECK(agent_phase(&f.a) == AGENT_LINKING);
    bring_up(&f, 1000, 1);
    agent_tick(&f.a, 1000);
    uint16_t p0 = expect_telemetry(&f, 0, false);
    agent_tick(&f.a, 1050); /* not yet */
    CHECK(!next_out(&f.p, &t, &b, &n));
    agent_tick(&f.a, 1100);
    uint16_t p1 = expect_telemetry(&f, 1, false);
    CHECK(p0 != p1);
    puback(&f, p0, 1110);
    puback(&f, p1, 1120);
    agent_tick(&f.a, 1200);
    uint16_t p2 = expect_telemetry(&f, 2, false);
    agent_tick(&f.a, 1300); /* count reached: nothing more */
    CHECK(!next_out(&f.p, &t, &b, &n));
    CHECK(agent_phase(&f.a) == AGENT_RUNNING); /* waiting for the last ack */
    puback(&f, p2, 1310);
    agent_tick(&f.a, 1320);
    CHECK(next_out(&f.p, &t, &b, &n));
    CHECK_EQ_INT(t, 0xe0); /* DISCONNECT */
    CHECK(agent_phase(&f.a) == AGENT_DONE);
    CHECK(agent_finished(&f.a));
    CHECK_EQ_INT(f.p.closes, 1);
    CHECK_EQ_INT(agent_stats(&f.a)->telemetry_sent, 3);
    CHECK_EQ_INT(agent_stats(&f.a)->telemetry_acked, 3);
    CHECK_EQ_INT(agent_stats(&f.a)->connects, 1);
}

static void test_catch_up_bounded(void)
{
    struct fx f;
    uint8_t t;
    const uint8_t *b;
    size_t n;
    fx_init(&f, 0, 0, false, NULL); /* unlimited */
    CHECK(agent_start(&f.a, 0) == AGENT_OK);
    bring_up(&f, 0, 1);
    /* a late tick sends what fell due (t = 0, 100, 200), not more */
    agent_tick(&f.a, 250);
    expect_telemetry(&f, 0, false);
    expect_telemetry(&f, 1, false);
    expect_telemetry(&f, 2, false);
    CHECK(!next_out(&f.p, &t, &b, &n));
    /* a very long stall: at most one window, then the schedule restarts from now */
    agent_tick(&f.a, 100000);
    for (uint32_t i = 0; i < MQTT_MAX_INFLIGHT - 3; i++)
        expect_telemetry(&f, 3 + i, false);
    /* the three unacknowledged ones are resent (DUP); the new ones are not (they are
     * stamped with the current time); the resends count as traffic: no PINGREQ */
    for (uint32_t i = 0; i < 3; i++)
        expect_telemetry(&f, i, true);
    CHECK(!next_out(&f.p, &t, &b, &n));
    CHECK_EQ_INT(agent_stats(&f.a)->telemetry_sent, MQTT_MAX_INFLIGHT);
}

static void test_sample_and_encoding(void)
{
    uint8_t out[AGENT_TELEMETRY_MAX];
    size_t len = 0;
    /* [9, 0x01020304, 1764000000000, h'A1617626'] with payload {"v": -7} */
    static const uint8_t exp[] = {0x84, 0x09, 0x1a, 0x01, 0x02, 0x03, 0x04, 0x1b, 0x00, 0x00, 0x01,
                                  0x9a, 0xb6, 0x97, 0xe8, 0x00, 0x44, 0xa1, 0x61, 0x76, 0x26};
    CHECK(agent_telemetry_encode(out, sizeof(out), 0x01020304u, 1764000000000ull, -7, &len) ==
          AGENT_OK);
    CHECK(len == sizeof(exp) && memcmp(out, exp, sizeof(exp)) == 0);
    CHECK(agent_telemetry_encode(out, 8, 1, 0, 0, &len) == AGENT_ERR_NOSPACE);
    CHECK(agent_telemetry_encode(out, sizeof(out), 1, 1ull << 53, 0, &len) == AGENT_ERR_PARAM);
}

static void test_suback_refused_backoff_give_up(void)
{
    struct fx f;
    static const uint8_t suback_bad[] = {0x90, 0x07, 0x00, 0x01, 1, 0x80, 1, 1, 1};
    fx_init(&f, 1, 2, false, NULL);
    CHECK(agent_start(&f.a, 0) == AGENT_OK);
    agent_link_up(&f.a, 0);
    feed(&f.p, CONNACK_OK, sizeof(CONNACK_OK));
    agent_io(&f.a, 0);
    feed(&f.p, suback_bad, sizeof(suback_bad));
    agent_io(&f.a, 0);
    CHECK(agent_phase(&f.a) == AGENT_BACKOFF);
    CHECK(agent_last_error(&f.a) == AGENT_ERR_REFUSED);
    CHECK_EQ_INT(f.p.closes, 1);
    agent_tick(&f.a, 99); /* back-off is at least backoff_min_ms */
    CHECK_EQ_INT(f.p.opens, 1);
    agent_tick(&f.a, 150); /* and at most 1.5 x */
    CHECK_EQ_INT(f.p.opens, 2);
    CHECK(agent_phase(&f.a) == AGENT_LINKING);
    agent_link_down(&f.a, 160); /* second failure: max_attempts = 2 */
    CHECK(agent_phase(&f.a) == AGENT_FAILED);
    CHECK(agent_last_error(&f.a) == AGENT_ERR_LINK);
    CHECK_EQ_INT(agent_stats(&f.a)->attempts_failed, 2);
    agent_tick(&f.a, 100000);
    CHECK_EQ_INT(f.p.opens, 2);
}

static void test_connack_refused_and_link_open_fail(void)
{
    struct fx f;
    static const uint8_t refused[] = {0x20, 0x02, 0x00, 0x05};
    fx_init(&f, 1, 1, false, NULL);
    CHECK(agent_start(&f.a, 0) == AGENT_OK);
    agent_link_up(&f.a, 0);
    feed(&f.p, refused, sizeof(refused));
    agent_io(&f.a, 0);
    CHECK(agent_phase(&f.a) == AGENT_FAILED);
    CHECK(agent_last_error(&f.a) == AGENT_ERR_REFUSED);
    CHECK_EQ_INT(f.a.last_detail, 5);

    fx_init(&f, 1, 1, false, NULL);
    f.p.open_result = AGENT_ERR_LINK;
    CHECK(agent_start(&f.a, 0) == AGENT_OK);
    CHECK(agent_phase(&f.a) == AGENT_FAILED);
    CHECK(agent_start(&f.a, 0) == AGENT_ERR_STATE);
}

static void test_backoff_grows(void)
{
    struct fx f;
    uint32_t now = 0;
    uint32_t gaps[6];
    fx_init(&f, 1, 0, false, NULL);
    CHECK(agent_start(&f.a, 0) == AGENT_OK);
    for (int i = 0; i < 6; i++) {
        agent_link_down(&f.a, now);
        CHECK(agent_phase(&f.a) == AGENT_BACKOFF);
        uint32_t start = now;
        int opens = f.p.opens;
        while (f.p.opens == opens)
            agent_tick(&f.a, ++now);
        gaps[i] = now - start;
    }
    /* 100, 200, 400, 800, 1000, 1000 ms plus up to 50 % jitter */
    CHECK(gaps[0] >= 100 && gaps[0] < 150);
    CHECK(gaps[1] >= 200 && gaps[1] < 300);
    CHECK(gaps[2] >= 400 && gaps[2] < 600);
    CHECK(gaps[4] >= 1000 && gaps[4] < 1500);
    CHECK(gaps[5] >= 1000 && gaps[5] < 1500);
}

static void test_connect_timeout(void)
{
    struct fx f;
    fx_init(&f, 1, 0, false, NULL);
    CHECK(agent_start(&f.a, 0) == AGENT_OK);
    agent_tick(&f.a, 4999);
    CHECK(agent_phase(&f.a) == AGENT_LINKING);
    agent_tick(&f.a, 5000);
    CHECK(agent_phase(&f.a) == AGENT_BACKOFF);
    CHECK(agent_last_error(&f.a) == AGENT_ERR_TIMEOUT);
    /* CONNACK never comes */
    agent_tick(&f.a, 6000);
    CHECK(agent_phase(&f.a) == AGENT_LINKING);
    agent_link_up(&f.a, 6000);
    agent_tick(&f.a, 10999);
    CHECK(agent_phase(&f.a) == AGENT_MQTT_CONNECTING);
    agent_tick(&f.a, 11000);
    CHECK(agent_phase(&f.a) == AGENT_BACKOFF);
    CHECK(agent_last_error(&f.a) == AGENT_ERR_TIMEOUT);
}

static void test_reconnect_resends_telemetry(void)
{
    struct fx f;
    fx_init(&f, 2, 0, false, NULL);
    CHECK(agent_start(&f.a, 0) == AGENT_OK);
    bring_up(&f, 0, 1);
    agent_tick(&f.a, 0);
    uint16_t p0 = expect_telemetry(&f, 0, false);
    /* the broker goes away before acknowledging */
    f.p.eof = true;
    agent_io(&f.a, 10);
    CHECK(agent_phase(&f.a) == AGENT_BACKOFF);
    CHECK(agent_last_error(&f.a) == AGENT_ERR_LINK);
    agent_tick(&f.a, 200);
    CHECK_EQ_INT(f.p.opens, 2);
    agent_link_up(&f.a, 200);
    uint8_t t;
    const uint8_t *b;
    size_t n;
    CHECK(next_out(&f.p, &t, &b, &n));
    CHECK_EQ_INT(t, 0x10);
    feed(&f.p, CONNACK_OK, sizeof(CONNACK_OK));
    agent_io(&f.a, 200);
    /* the unacknowledged telemetry goes first, DUP set, same id and sequence */
    uint16_t again = expect_telemetry(&f, 0, true);
    CHECK_EQ_INT(again, p0);
    CHECK(next_out(&f.p, &t, &b, &n));
    CHECK_EQ_INT(t, 0x82);
    uint8_t suback[] = {0x90, 0x07, b[0], b[1], 1, 1, 1, 1, 1};
    feed(&f.p, suback, sizeof(suback));
    agent_io(&f.a, 200);
    CHECK(agent_phase(&f.a) == AGENT_RUNNING);
    puback(&f, p0, 210);
    agent_tick(&f.a, 220);
    uint16_t p1 = expect_telemetry(&f, 1, false);
    puback(&f, p1, 230);
    agent_tick(&f.a, 240);
    CHECK(agent_phase(&f.a) == AGENT_DONE);
    CHECK_EQ_INT(agent_stats(&f.a)->telemetry_acked, 2);
    CHECK_EQ_INT(agent_stats(&f.a)->connects, 2);
}

/* A PUBLISH from the broker, framed by hand (short packets only). */
static size_t mkpub(uint8_t *out, const char *topic, const void *payload, size_t pl, int qos,
                    uint16_t pid)
{
    size_t tl = strlen(topic), o = 0;
    size_t rl = 2 + tl + (qos ? 2 : 0) + pl;
    out[o++] = (uint8_t)(0x30 | (qos << 1));
    out[o++] = (uint8_t)rl;
    out[o++] = 0;
    out[o++] = (uint8_t)tl;
    memcpy(out + o, topic, tl);
    o += tl;
    if (qos) {
        out[o++] = (uint8_t)(pid >> 8);
        out[o++] = (uint8_t)pid;
    }
    memcpy(out + o, payload, pl);
    return o + pl;
}

static void test_commands_and_seams(void)
{
    struct fx f;
    uint8_t t;
    const uint8_t *b;
    size_t n;
    uint8_t ping[64], reboot[64], challenge[96], ota[64], other[64], cmd[64], bad_ch[64];
    /* [1, h'00..1f', 60] (docs/protocol.md 3.1) */
    uint8_t ch_msg[2 + 2 + 32 + 2] = {0x83, 0x01, 0x58, 0x20};
    for (int i = 0; i < 32; i++)
        ch_msg[4 + i] = (uint8_t)i;
    ch_msg[36] = 0x18;
    ch_msg[37] = 60;
    /* [10, 7, "reboot", h'A10105'] (docs/protocol.md 3.10) */
    static const uint8_t cmd_msg[] = {0x84, 0x0a, 0x07, 0x66, 'r',  'e',  'b',
                                      'o',  'o',  't',  0x43, 0xa1, 0x01, 0x05};
    size_t ping_n = mkpub(ping, "fleet/n1/down/ping", "abc", 3, 1, 7);
    size_t reboot_n = mkpub(reboot, "fleet/n1/down/re", "", 0, 0, 0);
    size_t challenge_n =
        mkpub(challenge, "fleet/n1/attest/challenge", ch_msg, sizeof(ch_msg), 0, 0);
    size_t bad_ch_n = mkpub(bad_ch, "fleet/n1/attest/challenge", "NON", 3, 0, 0);
    size_t ota_n = mkpub(ota, "fleet/n1/ota/offer", "\x80", 1, 0, 0);
    size_t other_n = mkpub(other, "fleet/n2/down/x", "", 0, 0, 0);
    size_t cmd_n = mkpub(cmd, "fleet/n1/down/command", cmd_msg, sizeof(cmd_msg), 0, 0);

    fx_init(&f, 1, 0, true, NULL);
    CHECK(agent_start(&f.a, 0) == AGENT_OK);
    bring_up(&f, 0, 1);
    feed(&f.p, ping, ping_n);
    agent_io(&f.a, 1);
    /* pong first (published from the callback), then our PUBACK for id 7 */
    CHECK(next_out(&f.p, &t, &b, &n));
    CHECK_EQ_INT(t, 0x32);
    CHECK(body_has(b, n, "fleet/n1/up/pong"));
    CHECK(n >= 3 && memcmp(b + n - 3, "abc", 3) == 0);
    CHECK(next_out(&f.p, &t, &b, &n));
    CHECK(t == 0x40 && n == 2 && b[0] == 0 && b[1] == 7);

    feed(&f.p, reboot, reboot_n);
    agent_io(&f.a, 2);
    CHECK_EQ_INT(f.rec.commands, 1);
    CHECK(strcmp(f.rec.cmd, "re") == 0);

    feed(&f.p, cmd, cmd_n);
    agent_io(&f.a, 2);
    CHECK_EQ_INT(f.rec.commands, 2);
    CHECK(strcmp(f.rec.cmd, "reboot") == 0);

    feed(&f.p, challenge, challenge_n);
    agent_io(&f.a, 3);
    CHECK_EQ_INT(f.rec.challenges, 1);
    CHECK(f.rec.nonce_len == 32 && f.rec.nonce[31] == 31 && f.rec.ttl == 60);
    CHECK(next_out(&f.p, &t, &b, &n));
    CHECK_EQ_INT(t, 0x32);
    static const char ev_topic[] = "fleet/n1/attest/evidence";
    CHECK(n > 2 + sizeof(ev_topic) - 1 + 2 && memcmp(b + 2, ev_topic, sizeof(ev_topic) - 1) == 0);
    if (n > 2 + sizeof(ev_topic) - 1 + 2) {
        struct msg m;
        const uint8_t *pl = b + 2 + sizeof(ev_topic) - 1 + 2;
        size_t pl_len = n - (2 + sizeof(ev_topic) - 1 + 2);
        CHECK(msg_decode(pl, pl_len, &m) == MSG_OK);
        CHECK(m.type == MSG_ATTEST_EVIDENCE);
        CHECK(m.u.evidence.token_len == 9 + 32 && memcmp(m.u.evidence.token, "EVIDENCE:", 9) == 0 &&
              memcmp(m.u.evidence.token + 9, ch_msg + 4, 32) == 0);
    }
    /* a challenge that is not a protocol message is not answered */
    uint32_t ignored = agent_stats(&f.a)->ignored;
    feed(&f.p, bad_ch, bad_ch_n);
    agent_io(&f.a, 3);
    CHECK_EQ_INT(f.rec.challenges, 1);
    CHECK_EQ_INT(agent_stats(&f.a)->ignored, ignored + 1);
    CHECK(!next_out(&f.p, &t, &b, &n));

    feed(&f.p, ota, ota_n);
    agent_io(&f.a, 4);
    CHECK_EQ_INT(f.rec.otas, 1);
    CHECK(strcmp(f.rec.ota_suffix, "offer") == 0);
    CHECK(next_out(&f.p, &t, &b, &n));
    CHECK(body_has(b, n, "fleet/n1/ota/status"));

    ignored = agent_stats(&f.a)->ignored;
    feed(&f.p, other, other_n);
    agent_io(&f.a, 5);
    CHECK_EQ_INT(agent_stats(&f.a)->ignored, ignored + 1);
    CHECK(agent_phase(&f.a) == AGENT_RUNNING);

    /* without handlers, challenges and OTA are counted and ignored */
    fx_init(&f, 1, 0, false, NULL);
    CHECK(agent_start(&f.a, 0) == AGENT_OK);
    bring_up(&f, 0, 1);
    size_t before = f.p.out_len;
    feed(&f.p, challenge, challenge_n);
    feed(&f.p, ota, ota_n);
    agent_io(&f.a, 1);
    CHECK_EQ_INT(f.p.out_len, before);
    CHECK_EQ_INT(agent_stats(&f.a)->challenges, 1);
    CHECK_EQ_INT(agent_stats(&f.a)->ignored, 2);
}

/* The node-status PUBLISH that attest_first sends after SUBACK. */
static void expect_status(struct fx *f)
{
    uint8_t t;
    const uint8_t *b;
    size_t n;
    static const char topic[] = "fleet/n1/status";
    const size_t tl = sizeof(topic) - 1;
    struct msg m;
    CHECK(next_out(&f->p, &t, &b, &n));
    CHECK_EQ_INT(t, 0x32);
    if (n < 2 + tl + 2 || memcmp(b + 2, topic, tl) != 0) {
        fprintf(stderr, "  not the node-status topic\n");
        CHECK(0);
        return;
    }
    CHECK(msg_decode(b + 2 + tl + 2, n - (2 + tl + 2), &m) == MSG_OK);
    CHECK(m.type == MSG_NODE_STATUS);
    CHECK(m.u.node_status.state == MSG_NODE_ONLINE);
    CHECK(m.u.node_status.version.major == 1 && m.u.node_status.version.minor == 2 &&
          m.u.node_status.version.revision == 3 && m.u.node_status.version.build == 4);
}

static void attest_first_init(struct fx *f)
{
    fx_init(f, 2, 0, true, NULL);
    f->a.cfg.attest_first = true;
    f->a.cfg.attest_wait_ms = 500;
    f->a.cfg.fw_version.major = 1;
    f->a.cfg.fw_version.minor = 2;
    f->a.cfg.fw_version.revision = 3;
    f->a.cfg.fw_version.build = 4;
}

/* attest_first: node-status after SUBACK, telemetry held until the evidence is out (and then
 * sent after it), or until attest_wait_ms without a challenge; once only per agent. */
static void test_attest_first(void)
{
    struct fx f;
    uint8_t t;
    const uint8_t *b;
    size_t n;
    uint8_t challenge[96];
    uint8_t ch_msg[2 + 2 + 32 + 2] = {0x83, 0x01, 0x58, 0x20};
    for (int i = 0; i < 32; i++)
        ch_msg[4 + i] = (uint8_t)(0xa0 + i);
    ch_msg[36] = 0x18;
    ch_msg[37] = 60;
    size_t challenge_n =
        mkpub(challenge, "fleet/n1/attest/challenge", ch_msg, sizeof(ch_msg), 0, 0);
    static const char ev_topic[] = "fleet/n1/attest/evidence";

    /* answered: evidence, then telemetry */
    attest_first_init(&f);
    CHECK(agent_start(&f.a, 0) == AGENT_OK);
    bring_up(&f, 0, 1);
    expect_status(&f);
    agent_tick(&f.a, 0);
    agent_tick(&f.a, 300);
    CHECK(!next_out(&f.p, &t, &b, &n)); /* held */
    feed(&f.p, challenge, challenge_n);
    agent_io(&f.a, 310);
    CHECK(next_out(&f.p, &t, &b, &n));
    CHECK(t == 0x32 && n > 2 + sizeof(ev_topic) - 1 &&
          memcmp(b + 2, ev_topic, sizeof(ev_topic) - 1) == 0);
    CHECK_EQ_INT(agent_stats(&f.a)->evidence_sent, 1);
    agent_tick(&f.a, 310);
    uint16_t p0 = expect_telemetry(&f, 0, false);
    CHECK_EQ_INT(agent_stats(&f.a)->attest_timeouts, 0);
    /* after a reconnect the node does not ask again (it has attested) */
    f.p.eof = true;
    agent_io(&f.a, 320);
    CHECK(agent_phase(&f.a) == AGENT_BACKOFF);
    agent_tick(&f.a, 2000);
    agent_link_up(&f.a, 2000);
    CHECK(next_out(&f.p, &t, &b, &n));
    CHECK_EQ_INT(t, 0x10);
    feed(&f.p, CONNACK_OK, sizeof(CONNACK_OK));
    agent_io(&f.a, 2000);
    do { /* unacknowledged evidence and telemetry resent (DUP), then SUBSCRIBE */
        CHECK(next_out(&f.p, &t, &b, &n));
    } while (t != 0x82 && f.p.out_seen < f.p.out_len);
    CHECK_EQ_INT(t, 0x82);
    uint8_t suback[] = {0x90, 0x07, b[0], b[1], 1, 1, 1, 1, 1};
    feed(&f.p, suback, sizeof(suback));
    agent_io(&f.a, 2000);
    agent_tick(&f.a, 2000);
    CHECK(agent_phase(&f.a) == AGENT_RUNNING);
    int status_again = 0;
    while (next_out(&f.p, &t, &b, &n))
        status_again += body_has(b, n, "fleet/n1/status");
    CHECK_EQ_INT(status_again, 0);
    CHECK_EQ_INT(agent_stats(&f.a)->connects, 2);
    (void)p0;

    /* no challenge: telemetry flows after attest_wait_ms */
    attest_first_init(&f);
    CHECK(agent_start(&f.a, 0) == AGENT_OK);
    bring_up(&f, 0, 1);
    expect_status(&f);
    agent_tick(&f.a, 499);
    CHECK(!next_out(&f.p, &t, &b, &n));
    agent_tick(&f.a, 500);
    expect_telemetry(&f, 0, false);
    CHECK_EQ_INT(agent_stats(&f.a)->attest_timeouts, 1);
    CHECK_EQ_INT(agent_stats(&f.a)->evidence_sent, 0);
}

static void test_protocol_error_drops_link(void)
{
    struct fx f;
    static const uint8_t pubrec[] = {0x50, 0x02, 0x00, 0x01};
    fx_init(&f, 1, 0, false, NULL);
    CHECK(agent_start(&f.a, 0) == AGENT_OK);
    bring_up(&f, 0, 1);
    feed(&f.p, pubrec, sizeof(pubrec));
    agent_io(&f.a, 1);
    CHECK(agent_phase(&f.a) == AGENT_BACKOFF);
    CHECK(agent_last_error(&f.a) == AGENT_ERR_MQTT);
    CHECK_EQ_INT(f.p.closes, 1);
}

/* A fake secure layer: handshake needs `steps` calls, or fails. */
struct fake_layer {
    int steps;
    bool fail;
    int resets;
    struct port *p;
};

static agent_hs_t fl_handshake(void *ctx)
{
    struct fake_layer *l = ctx;
    if (l->fail)
        return AGENT_HS_FAILED;
    if (l->steps > 0) {
        l->steps--;
        return AGENT_HS_AGAIN;
    }
    return AGENT_HS_DONE;
}

static void fl_reset(void *ctx)
{
    struct fake_layer *l = ctx;
    l->resets++;
}

static void test_secure_layer(void)
{
    struct fx f;
    struct fake_layer fl;
    struct agent_layer layer;
    uint8_t t;
    const uint8_t *b;
    size_t n;
    memset(&fl, 0, sizeof(fl));
    fl.steps = 2;
    /* the layer's upper stream is the fake port itself (a pass-through) */
    fx_init(&f, 1, 1, false, NULL);
    layer.ctx = &fl;
    layer.handshake = fl_handshake;
    layer.reset = fl_reset;
    layer.upper = &f.p.tr;
    {
        struct agent_config c = f.a.cfg;
        struct agent_port port = f.a.port;
        c.node_id = "n1";
        CHECK(agent_init(&f.a, &c, &port, NULL, &layer) == AGENT_OK);
    }
    CHECK(agent_start(&f.a, 0) == AGENT_OK);
    agent_link_up(&f.a, 0);
    CHECK(agent_phase(&f.a) == AGENT_HANDSHAKE);
    agent_io(&f.a, 1);
    CHECK(agent_phase(&f.a) == AGENT_HANDSHAKE);
    agent_tick(&f.a, 2); /* ticks also drive the handshake */
    CHECK(agent_phase(&f.a) == AGENT_MQTT_CONNECTING);
    CHECK(next_out(&f.p, &t, &b, &n));
    CHECK_EQ_INT(t, 0x10);

    memset(&fl, 0, sizeof(fl));
    fl.fail = true;
    {
        struct agent_config c = f.a.cfg;
        struct agent_port port = f.a.port;
        c.node_id = "n1";
        CHECK(agent_init(&f.a, &c, &port, NULL, &layer) == AGENT_OK);
    }
    CHECK(agent_start(&f.a, 0) == AGENT_OK);
    agent_link_up(&f.a, 0);
    CHECK(agent_phase(&f.a) == AGENT_FAILED);
    CHECK(agent_last_error(&f.a) == AGENT_ERR_SECURE);
    CHECK_EQ_INT(fl.resets, 1);
}

static void test_stop_when_blocked(void)
{
    struct fx f;
    fx_init(&f, 0, 0, false, NULL);
    CHECK(agent_start(&f.a, 0) == AGENT_OK);
    bring_up(&f, 0, 1);
    f.p.block_writes = true; /* the peer stopped reading */
    agent_stop(&f.a, 10);
    CHECK(agent_phase(&f.a) == AGENT_CLOSING);
    agent_io(&f.a, 20);
    agent_tick(&f.a, 5009);
    CHECK(agent_phase(&f.a) == AGENT_CLOSING);
    agent_tick(&f.a, 5010); /* connect_timeout_ms later: closed without the DISCONNECT */
    CHECK(agent_phase(&f.a) == AGENT_DONE);
    CHECK_EQ_INT(f.p.closes, 1);
    /* stopping while backing off just ends */
    fx_init(&f, 0, 0, false, NULL);
    CHECK(agent_start(&f.a, 0) == AGENT_OK);
    agent_link_down(&f.a, 1);
    CHECK(agent_phase(&f.a) == AGENT_BACKOFF);
    agent_stop(&f.a, 2);
    CHECK(agent_phase(&f.a) == AGENT_DONE);
    agent_tick(&f.a, 100000);
    CHECK_EQ_INT(f.p.opens, 1);
}

static void test_bad_config(void)
{
    struct fx f;
    struct agent a;
    fx_init(&f, 1, 0, false, NULL);
    struct agent_config c = f.a.cfg;
    struct agent_port port = f.a.port;
    c.node_id = "bad/id";
    CHECK(agent_init(&a, &c, &port, NULL, NULL) == AGENT_ERR_PARAM);
    c.node_id = "";
    CHECK(agent_init(&a, &c, &port, NULL, NULL) == AGENT_ERR_PARAM);
    c.node_id = "n+";
    CHECK(agent_init(&a, &c, &port, NULL, NULL) == AGENT_ERR_PARAM);
    c.node_id = "n.1"; /* protocol ids have no dots */
    CHECK(agent_init(&a, &c, &port, NULL, NULL) == AGENT_ERR_PARAM);
    c.node_id = "ok";
    c.backoff_min_ms = 0;
    CHECK(agent_init(&a, &c, &port, NULL, NULL) == AGENT_ERR_PARAM);
    c.backoff_min_ms = 10;
    c.store_cap = 8;
    CHECK(agent_init(&a, &c, &port, NULL, NULL) == AGENT_ERR_PARAM);
}

/* agent_publish(): only while RUNNING, QoS 1 on fleet/<id>/<suffix>. */
static void test_publish(void)
{
    struct fx f;
    uint8_t t;
    const uint8_t *b;
    size_t n;
    static const uint8_t st[] = {0x85, 0x07, 0x61, 'c', 0x04, 0x00, 0x00};
    fx_init(&f, 0, 0, false, NULL);
    CHECK(agent_publish(&f.a, "ota/status", st, sizeof(st)) == AGENT_ERR_STATE);
    CHECK(agent_start(&f.a, 0) == AGENT_OK);
    CHECK(agent_publish(&f.a, "ota/status", st, sizeof(st)) == AGENT_ERR_STATE);
    bring_up(&f, 0, 1);
    CHECK(agent_publish(&f.a, "", st, sizeof(st)) == AGENT_ERR_PARAM);
    CHECK(agent_publish(&f.a, NULL, st, sizeof(st)) == AGENT_ERR_PARAM);
    CHECK(agent_publish(&f.a, "ota/status", st, sizeof(st)) == AGENT_OK);
    CHECK(next_out(&f.p, &t, &b, &n));
    CHECK_EQ_INT(t, 0x32); /* PUBLISH QoS 1 */
    CHECK(body_has(b, n, "fleet/n1/ota/status"));
    CHECK(n >= sizeof(st) && memcmp(b + n - sizeof(st), st, sizeof(st)) == 0);
}

int main(void)
{
    test_happy_path();
    test_persistent_session();
    test_sample_and_encoding();
    test_catch_up_bounded();
    test_suback_refused_backoff_give_up();
    test_connack_refused_and_link_open_fail();
    test_backoff_grows();
    test_connect_timeout();
    test_reconnect_resends_telemetry();
    test_commands_and_seams();
    test_attest_first();
    test_protocol_error_drops_link();
    test_secure_layer();
    test_stop_when_blocked();
    test_bad_config();
    test_publish();
    return check_finish();
}
