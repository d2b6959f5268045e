/* Fuzz target: the whole agent (MQTT client + message routing + protocol decoding + the
 * in-place evidence framing) fed a hostile broker byte stream through a fake port, with
 * every application seam installed. Input: byte 0 = how many bytes per read (1..64, 0 =
 * all), the rest is the broker stream after our CONNECT (a seed starts with CONNACK and a
 * SUBACK for the agent's 5 filters). Time advances 50 ms per read. */
#include <stdint.h>
#include <string.h>

#include "fleetgw/agent.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fz {
    struct agent a;
    struct transport tr;
    const uint8_t *in;
    size_t in_len;
    size_t chunk;
    uint8_t rx[1024], tx[1024], store[8 * 160], ev[600];
    size_t written;
};

static long fz_read(void *ctx, uint8_t *buf, size_t len)
{
    struct fz *f = ctx;
    size_t n = f->in_len;
    if (n == 0)
        return TRANSPORT_AGAIN;
    if (n > len)
        n = len;
    if (f->chunk != 0 && n > f->chunk)
        n = f->chunk;
    memcpy(buf, f->in, n);
    f->in += n;
    f->in_len -= n;
    return (long)n;
}

static long fz_write(void *ctx, const uint8_t *buf, size_t len)
{
    struct fz *f = ctx;
    (void)buf;
    f->written += len;
    return (long)len;
}

static agent_status_t fz_open(void *ctx)
{
    (void)ctx;
    return AGENT_OK;
}

static agent_status_t fz_challenge(void *user, const uint8_t *nonce, size_t n, uint32_t ttl,
                                   uint8_t *out, size_t cap, size_t *ret_len)
{
    (void)user;
    (void)ttl;
    /* a "token" as long as the nonce says (first byte), to vary the CBOR head */
    size_t want = (size_t)nonce[0] * 3u;
    if (want > cap)
        want = cap;
    memset(out, 0xA5, want);
    if (want > 0)
        memcpy(out, nonce, want < n ? want : n);
    *ret_len = want;
    return AGENT_OK;
}

static agent_status_t fz_ota(void *user, const char *suffix, size_t slen, const uint8_t *p,
                             size_t n, uint8_t *out, size_t cap, size_t *ret_len,
                             const char **ret_topic)
{
    (void)user;
    (void)suffix;
    size_t k = n < cap ? n : cap;
    memcpy(out, p, k);
    *ret_len = k;
    *ret_topic = slen == 5 ? "ota/ack" : "ota/status";
    return AGENT_OK;
}

static void fz_command(void *user, const char *name, size_t nl, const uint8_t *args, size_t al)
{
    volatile uint8_t sink = 0;
    (void)user;
    for (size_t i = 0; i < nl; i++)
        sink ^= (uint8_t)name[i];
    for (size_t i = 0; i < al; i++)
        sink ^= args[i];
    (void)sink;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct fz f;
    struct agent_config c;
    struct agent_port port;
    struct agent_app app;
    uint32_t now = 0;

    if (size < 1)
        return 0;
    memset(&f, 0, sizeof(f));
    f.chunk = data[0] & 63u;
    f.in = data + 1;
    f.in_len = size - 1;
    f.tr.ctx = &f;
    f.tr.read = fz_read;
    f.tr.write = fz_write;
    memset(&c, 0, sizeof(c));
    c.node_id = "n1";
    c.telemetry_interval_ms = 100;
    c.telemetry_count = 5;
    c.stop_when_done = true;
    c.keep_alive_s = 1;
    c.connect_timeout_ms = 5000;
    c.retry_ms = 500;
    c.backoff_min_ms = 100;
    c.backoff_max_ms = 1000;
    c.max_attempts = 1;
    c.rx_buf = f.rx;
    c.rx_cap = sizeof(f.rx);
    c.tx_buf = f.tx;
    c.tx_cap = sizeof(f.tx);
    c.store = f.store;
    c.store_cap = sizeof(f.store);
    c.evidence_buf = f.ev;
    c.evidence_cap = sizeof(f.ev);
    memset(&port, 0, sizeof(port));
    port.ctx = &f;
    port.link_open = fz_open;
    port.lower = &f.tr;
    memset(&app, 0, sizeof(app));
    app.on_challenge = fz_challenge;
    app.on_ota = fz_ota;
    app.on_command = fz_command;
    if (agent_init(&f.a, &c, &port, &app, NULL) != AGENT_OK)
        return 0;
    if (agent_start(&f.a, now) != AGENT_OK)
        return 0;
    agent_link_up(&f.a, now);
    while (f.in_len > 0 && !agent_finished(&f.a) && agent_phase(&f.a) != AGENT_BACKOFF) {
        now += 50;
        agent_io(&f.a, now);
        agent_tick(&f.a, now);
    }
    return 0;
}
