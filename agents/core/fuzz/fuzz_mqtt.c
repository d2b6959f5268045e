/* Fuzz target: the MQTT client parsing a byte stream from a hostile broker.
 * Input: byte 0 selects how the stream is cut (bits 0-1: whole, 1 byte, 7 bytes, 64 bytes
 * per mqtt_input call) and whether time advances between calls (bit 2); the rest is what the
 * broker sends after our CONNECT. On CONNACK the harness publishes a QoS 1 message (packet
 * id 1) and subscribes (packet id 2), so PUBACK/SUBACK paths are reachable, and it answers
 * every received message with a publish, to exercise re-entrancy. */
#include <stdint.h>
#include <string.h>

#include "fleetgw/mqtt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fz {
    struct mqtt_client cl;
    struct transport tr;
    uint8_t rx[1024];
    uint8_t tx[512];
    uint8_t store[8 * 64];
    size_t written;
};

static long fz_write(void *ctx, const uint8_t *buf, size_t len)
{
    struct fz *f = ctx;
    (void)buf;
    f->written += len;
    return (long)len;
}

static void fz_connack(void *user, bool sp)
{
    struct fz *f = user;
    const char *filters[] = {"fleet/n/down/#", "fleet/n/ota/#"};
    const uint8_t qos[] = {1, 1};
    (void)sp;
    if (mqtt_publish(&f->cl, "fleet/n/up/t", (const uint8_t *)"x", 1, 1, false, NULL) != MQTT_OK)
        return;
    if (mqtt_subscribe(&f->cl, filters, qos, 2, NULL) != MQTT_OK)
        return;
}

static void fz_message(void *user, const struct mqtt_message *m)
{
    struct fz *f = user;
    /* touch every byte the client hands out, so ASan checks the bounds */
    volatile uint8_t sink = 0;
    for (size_t i = 0; i < m->topic_len; i++)
        sink ^= m->topic[i];
    for (size_t i = 0; i < m->payload_len; i++)
        sink ^= m->payload[i];
    (void)sink;
    if (mqtt_publish(&f->cl, "fleet/n/up/echo", m->payload,
                     m->payload_len > 32 ? 32 : m->payload_len, 0, false, NULL) != MQTT_OK)
        f->written = 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct fz f;
    struct mqtt_config cfg;
    struct mqtt_connect_options o;
    static const size_t chunks[4] = {0, 1, 7, 64};
    uint32_t now = 0;
    size_t chunk;
    bool ticks;

    if (size < 1)
        return 0;
    memset(&f, 0, sizeof(f));
    f.tr.ctx = &f;
    f.tr.write = fz_write;
    memset(&cfg, 0, sizeof(cfg));
    cfg.rx_buf = f.rx;
    cfg.rx_cap = sizeof(f.rx);
    cfg.tx_buf = f.tx;
    cfg.tx_cap = sizeof(f.tx);
    cfg.store = f.store;
    cfg.store_cap = sizeof(f.store);
    cfg.retry_ms = 100;
    cfg.connack_timeout_ms = 1000;
    cfg.transport = &f.tr;
    cfg.cb.user = &f;
    cfg.cb.on_connack = fz_connack;
    cfg.cb.on_message = fz_message;
    if (mqtt_init(&f.cl, &cfg) != MQTT_OK)
        return 0;
    memset(&o, 0, sizeof(o));
    o.client_id = "n";
    o.keep_alive_s = 1;
    if (mqtt_connect(&f.cl, &o, 0) != MQTT_OK)
        return 0;
    chunk = chunks[data[0] & 3u];
    ticks = (data[0] & 4u) != 0;
    data++;
    size--;
    while (size > 0) {
        size_t n = (chunk == 0 || chunk > size) ? size : chunk;
        mqtt_status_t st = mqtt_input(&f.cl, data, n);
        data += n;
        size -= n;
        if (st != MQTT_OK && st != MQTT_ERR_NOSPACE)
            break;
        if (ticks) {
            now += 150;
            if (mqtt_tick(&f.cl, now) != MQTT_OK)
                break;
        }
    }
    mqtt_connection_lost(&f.cl);
    return 0;
}
