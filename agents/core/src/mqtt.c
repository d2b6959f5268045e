/* MQTT 3.1.1 client subset (see fleetgw/mqtt.h). Every length from the broker is checked by
 * subtraction against what is left of the packet; the remaining length is capped both by
 * the 4-byte limit of the standard and by the caller's rx buffer. */
#include "fleetgw/mqtt.h"

#include <string.h>

#include "fleetgw/agent_log.h"

enum {
    PKT_CONNECT = 1,
    PKT_CONNACK = 2,
    PKT_PUBLISH = 3,
    PKT_PUBACK = 4,
    PKT_PUBREC = 5,
    PKT_PUBREL = 6,
    PKT_PUBCOMP = 7,
    PKT_SUBSCRIBE = 8,
    PKT_SUBACK = 9,
    PKT_UNSUBSCRIBE = 10,
    PKT_UNSUBACK = 11,
    PKT_PINGREQ = 12,
    PKT_PINGRESP = 13,
    PKT_DISCONNECT = 14
};

enum { RX_HEADER = 0, RX_LENGTH = 1, RX_BODY = 2 };

#define PUBLISH_DUP 0x08u

/* ---- small helpers ------------------------------------------------------------------- */

static bool elapsed(uint32_t now, uint32_t since, uint32_t interval)
{
    return (uint32_t)(now - since) >= interval;
}

static size_t varint_len(size_t rl)
{
    if (rl < 128u)
        return 1;
    if (rl < 16384u)
        return 2;
    if (rl < 2097152u)
        return 3;
    return 4;
}

/* Well-formed UTF-8 without U+0000 (MQTT 3.1.1 section 1.5.3). */
static bool utf8_valid(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = p[i];
        size_t need;
        uint32_t cp;
        uint32_t min;
        if (c == 0)
            return false;
        if (c < 0x80u) {
            i++;
            continue;
        }
        if (c >= 0xC2u && c <= 0xDFu) {
            need = 1;
            cp = c & 0x1Fu;
            min = 0x80u;
        } else if (c >= 0xE0u && c <= 0xEFu) {
            need = 2;
            cp = c & 0x0Fu;
            min = 0x800u;
        } else if (c >= 0xF0u && c <= 0xF4u) {
            need = 3;
            cp = c & 0x07u;
            min = 0x10000u;
        } else {
            return false;
        }
        if (need > n - i - 1)
            return false;
        for (size_t k = 1; k <= need; k++) {
            uint8_t cc = p[i + k];
            if ((cc & 0xC0u) != 0x80u)
                return false;
            cp = (cp << 6) | (cc & 0x3Fu);
        }
        if (cp < min || cp > 0x10FFFFu || (cp >= 0xD800u && cp <= 0xDFFFu))
            return false;
        i += need + 1;
    }
    return true;
}

static bool has_wildcard(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] == '+' || p[i] == '#')
            return true;
    return false;
}

/* A topic filter: '+' fills a whole level, '#' is a whole last level. */
static bool filter_valid(const char *f, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        bool level_start = (i == 0 || f[i - 1] == '/');
        bool level_end = (i + 1 == n || f[i + 1] == '/');
        if (f[i] == '+' && !(level_start && level_end))
            return false;
        if (f[i] == '#' && !(level_start && i + 1 == n))
            return false;
    }
    return true;
}

static bool str_ok(const char *s, size_t max, size_t *ret_len)
{
    size_t n;
    if (s == NULL)
        return false;
    for (n = 0; n <= max && s[n] != '\0'; n++)
        ;
    if (n > max)
        return false;
    *ret_len = n;
    return utf8_valid((const uint8_t *)s, n);
}

/* Bounded writer over a region that was sized beforehand; overflow is a bug we still
 * refuse to act on. */
struct wbuf {
    uint8_t *p;
    size_t cap;
    size_t len;
    bool overflow;
};

static void put_u8(struct wbuf *w, uint8_t v)
{
    if (w->cap - w->len < 1u) {
        w->overflow = true;
        return;
    }
    w->p[w->len++] = v;
}

static void put_u16(struct wbuf *w, uint16_t v)
{
    put_u8(w, (uint8_t)(v >> 8));
    put_u8(w, (uint8_t)(v & 0xFFu));
}

static void put_bytes(struct wbuf *w, const uint8_t *b, size_t n)
{
    if (w->cap - w->len < n) {
        w->overflow = true;
        return;
    }
    if (n > 0)
        memcpy(w->p + w->len, b, n);
    w->len += n;
}

static void put_str(struct wbuf *w, const uint8_t *b, size_t n)
{
    put_u16(w, (uint16_t)n);
    put_bytes(w, b, n);
}

static void put_header(struct wbuf *w, uint8_t first, size_t rl)
{
    put_u8(w, first);
    do {
        uint8_t b = (uint8_t)(rl % 128u);
        rl /= 128u;
        if (rl > 0)
            b |= 0x80u;
        put_u8(w, b);
    } while (rl > 0);
}

static uint16_t get_u16(const uint8_t *p)
{
    return (uint16_t)(((unsigned)p[0] << 8) | p[1]);
}

/* ---- transmit queue ------------------------------------------------------------------ */

mqtt_status_t mqtt_flush(struct mqtt_client *cl)
{
    mqtt_status_t st = MQTT_OK;
    if (cl == NULL)
        return MQTT_ERR_PARAM;
    while (cl->tx_head < cl->tx_len) {
        long n = cl->cfg.transport->write(cl->cfg.transport->ctx, cl->cfg.tx_buf + cl->tx_head,
                                          cl->tx_len - cl->tx_head);
        if (n == TRANSPORT_AGAIN || n == 0)
            break;
        if (n < 0 || (size_t)n > cl->tx_len - cl->tx_head) {
            cl->state = MQTT_STATE_ERROR;
            st = MQTT_ERR_IO;
            goto out;
        }
        cl->tx_head += (size_t)n;
    }
    if (cl->tx_head == cl->tx_len)
        cl->tx_head = cl->tx_len = 0;
out:
    return st;
}

/* Makes room for total bytes at the end of the queue; returns a writer over them. */
static mqtt_status_t tx_reserve(struct mqtt_client *cl, size_t total, struct wbuf *w)
{
    mqtt_status_t st;
    if (total > cl->cfg.tx_cap)
        return MQTT_ERR_TOOBIG;
    if (cl->cfg.tx_cap - cl->tx_len < total) {
        st = mqtt_flush(cl);
        if (st != MQTT_OK)
            return st;
    }
    if (cl->cfg.tx_cap - cl->tx_len < total && cl->tx_head > 0) {
        memmove(cl->cfg.tx_buf, cl->cfg.tx_buf + cl->tx_head, cl->tx_len - cl->tx_head);
        cl->tx_len -= cl->tx_head;
        cl->tx_head = 0;
    }
    if (cl->cfg.tx_cap - cl->tx_len < total)
        return MQTT_ERR_NOSPACE;
    w->p = cl->cfg.tx_buf + cl->tx_len;
    w->cap = total;
    w->len = 0;
    w->overflow = false;
    return MQTT_OK;
}

static mqtt_status_t tx_commit(struct mqtt_client *cl, const struct wbuf *w)
{
    if (w->overflow || w->len != w->cap)
        return MQTT_ERR_PARAM; /* size computed wrongly: never send a torn packet */
    cl->tx_len += w->len;
    cl->last_tx_ms = cl->now_ms;
    return MQTT_OK;
}

static mqtt_status_t queue_small(struct mqtt_client *cl, uint8_t first, const uint16_t *pid)
{
    struct wbuf w;
    size_t rl = pid != NULL ? 2u : 0u;
    mqtt_status_t st = tx_reserve(cl, 1u + 1u + rl, &w);
    if (st != MQTT_OK)
        return st;
    put_header(&w, first, rl);
    if (pid != NULL)
        put_u16(&w, *pid);
    return tx_commit(cl, &w);
}

static void drain_pending_acks(struct mqtt_client *cl)
{
    while (cl->pending_ack_count > 0) {
        uint16_t pid = cl->pending_acks[0];
        if (queue_small(cl, (uint8_t)(PKT_PUBACK << 4), &pid) != MQTT_OK)
            return;
        cl->pending_ack_count--;
        memmove(cl->pending_acks, cl->pending_acks + 1,
                cl->pending_ack_count * sizeof(cl->pending_acks[0]));
    }
}

static void resend_due(struct mqtt_client *cl, bool all)
{
    for (size_t i = 0; i < MQTT_MAX_INFLIGHT; i++) {
        struct mqtt_inflight *f = &cl->inflight[i];
        uint8_t *copy = cl->cfg.store + i * cl->slot_size;
        struct wbuf w;
        if (f->packet_id == 0)
            continue;
        if (!all && !elapsed(cl->now_ms, f->sent_ms, cl->cfg.retry_ms))
            continue;
        if (tx_reserve(cl, f->len, &w) != MQTT_OK)
            return; /* try again on the next tick */
        copy[0] |= PUBLISH_DUP;
        put_bytes(&w, copy, f->len);
        if (tx_commit(cl, &w) != MQTT_OK)
            return;
        f->sent_ms = cl->now_ms;
        AGENT_LOGD("mqtt: resent packet %u", (unsigned)f->packet_id);
    }
}

static bool packet_id_in_use(const struct mqtt_client *cl, uint16_t pid)
{
    if (cl->subscribe_pending == pid)
        return true;
    for (size_t i = 0; i < MQTT_MAX_INFLIGHT; i++)
        if (cl->inflight[i].packet_id == pid)
            return true;
    return false;
}

static uint16_t next_packet_id(struct mqtt_client *cl)
{
    /* At most MQTT_MAX_INFLIGHT + 1 ids are in use, so this ends quickly. */
    do {
        cl->next_packet_id++;
        if (cl->next_packet_id == 0)
            cl->next_packet_id = 1;
    } while (packet_id_in_use(cl, cl->next_packet_id));
    return cl->next_packet_id;
}

/* ---- public API: setup and outgoing packets ------------------------------------------ */

mqtt_status_t mqtt_init(struct mqtt_client *cl, const struct mqtt_config *cfg)
{
    if (cl == NULL || cfg == NULL)
        return MQTT_ERR_PARAM;
    memset(cl, 0, sizeof(*cl));
    if (cfg->rx_buf == NULL || cfg->rx_cap < 16u || cfg->rx_cap > MQTT_MAX_PACKET ||
        cfg->tx_buf == NULL || cfg->tx_cap < 16u || cfg->store == NULL ||
        cfg->store_cap / MQTT_MAX_INFLIGHT < 16u || cfg->transport == NULL ||
        cfg->transport->write == NULL || cfg->retry_ms == 0 || cfg->connack_timeout_ms == 0)
        return MQTT_ERR_PARAM;
    cl->cfg = *cfg;
    cl->slot_size = cfg->store_cap / MQTT_MAX_INFLIGHT;
    if (cl->slot_size > 0xFFFFu)
        cl->slot_size = 0xFFFFu;
    cl->state = MQTT_STATE_IDLE;
    return MQTT_OK;
}

mqtt_status_t mqtt_connect(struct mqtt_client *cl, const struct mqtt_connect_options *opt,
                           uint32_t now_ms)
{
    static const uint8_t proto_name[4] = {'M', 'Q', 'T', 'T'};
    size_t id_len = 0, user_len = 0, wt_len = 0, rl;
    uint8_t flags = 0;
    struct wbuf w;
    mqtt_status_t st;

    if (cl == NULL || opt == NULL)
        return MQTT_ERR_PARAM;
    if (cl->state != MQTT_STATE_IDLE)
        return MQTT_ERR_STATE;
    if (!str_ok(opt->client_id, MQTT_MAX_TOPIC, &id_len) || id_len == 0)
        return MQTT_ERR_PARAM;
    rl = 10u + 2u + id_len;
    if (opt->clean_session)
        flags |= 0x02u;
    if (opt->will_topic != NULL) {
        if (!str_ok(opt->will_topic, MQTT_MAX_TOPIC, &wt_len) || wt_len == 0 ||
            has_wildcard((const uint8_t *)opt->will_topic, wt_len) || opt->will_qos > 1u ||
            opt->will_payload_len > 0xFFFFu ||
            (opt->will_payload == NULL && opt->will_payload_len > 0))
            return MQTT_ERR_PARAM;
        flags |= (uint8_t)(0x04u | (opt->will_qos << 3) | (opt->will_retain ? 0x20u : 0u));
        rl += 2u + wt_len + 2u + opt->will_payload_len;
    }
    if (opt->username != NULL) {
        if (!str_ok(opt->username, MQTT_MAX_TOPIC, &user_len))
            return MQTT_ERR_PARAM;
        flags |= 0x80u;
        rl += 2u + user_len;
    }
    if (opt->password != NULL) {
        if (opt->username == NULL || opt->password_len > 0xFFFFu)
            return MQTT_ERR_PARAM;
        flags |= 0x40u;
        rl += 2u + opt->password_len;
    }
    cl->now_ms = now_ms;
    st = tx_reserve(cl, 1u + varint_len(rl) + rl, &w);
    if (st != MQTT_OK)
        return st;
    put_header(&w, (uint8_t)(PKT_CONNECT << 4), rl);
    put_str(&w, proto_name, sizeof(proto_name));
    put_u8(&w, 4); /* protocol level: 3.1.1 */
    put_u8(&w, flags);
    put_u16(&w, opt->keep_alive_s);
    put_str(&w, (const uint8_t *)opt->client_id, id_len);
    if (opt->will_topic != NULL) {
        put_str(&w, (const uint8_t *)opt->will_topic, wt_len);
        put_str(&w, opt->will_payload, opt->will_payload_len);
    }
    if (opt->username != NULL)
        put_str(&w, (const uint8_t *)opt->username, user_len);
    if (opt->password != NULL)
        put_str(&w, opt->password, opt->password_len);
    st = tx_commit(cl, &w);
    if (st != MQTT_OK)
        return st;
    cl->state = MQTT_STATE_CONNECTING;
    cl->keep_alive_s = opt->keep_alive_s;
    cl->connect_ms = now_ms;
    cl->connack_code = 0;
    cl->rx_phase = RX_HEADER;
    return mqtt_flush(cl);
}

mqtt_status_t mqtt_publish(struct mqtt_client *cl, const char *topic, const uint8_t *payload,
                           size_t payload_len, uint8_t qos, bool retain, uint16_t *ret_packet_id)
{
    size_t topic_len = 0, rl, total;
    struct mqtt_inflight *slot = NULL;
    size_t slot_index = 0;
    uint16_t pid = 0;
    struct wbuf w;
    mqtt_status_t st;

    if (ret_packet_id != NULL)
        *ret_packet_id = 0;
    if (cl == NULL || qos > 1u || (payload == NULL && payload_len > 0) ||
        !str_ok(topic, MQTT_MAX_TOPIC, &topic_len) || topic_len == 0 ||
        has_wildcard((const uint8_t *)topic, topic_len) || payload_len > MQTT_MAX_PACKET)
        return MQTT_ERR_PARAM;
    if (cl->state != MQTT_STATE_CONNECTED)
        return MQTT_ERR_STATE;
    rl = 2u + topic_len + (qos > 0 ? 2u : 0u) + payload_len;
    total = 1u + varint_len(rl) + rl;
    if (total > cl->cfg.tx_cap || (qos > 0 && total > cl->slot_size))
        return MQTT_ERR_TOOBIG;
    if (qos > 0) {
        for (size_t i = 0; i < MQTT_MAX_INFLIGHT; i++) {
            if (cl->inflight[i].packet_id == 0) {
                slot = &cl->inflight[i];
                slot_index = i;
                break;
            }
        }
        if (slot == NULL)
            return MQTT_ERR_BUSY;
    }
    st = tx_reserve(cl, total, &w);
    if (st != MQTT_OK)
        return st;
    if (qos > 0)
        pid = next_packet_id(cl);
    put_header(&w, (uint8_t)((PKT_PUBLISH << 4) | (qos << 1) | (retain ? 1u : 0u)), rl);
    put_str(&w, (const uint8_t *)topic, topic_len);
    if (qos > 0)
        put_u16(&w, pid);
    put_bytes(&w, payload, payload_len);
    if (w.overflow || w.len != total)
        return MQTT_ERR_PARAM;
    if (slot != NULL) {
        memcpy(cl->cfg.store + slot_index * cl->slot_size, w.p, total);
        slot->packet_id = pid;
        slot->len = (uint16_t)total;
        slot->sent_ms = cl->now_ms;
    }
    st = tx_commit(cl, &w);
    if (st != MQTT_OK)
        return st;
    if (ret_packet_id != NULL)
        *ret_packet_id = pid;
    return mqtt_flush(cl);
}

mqtt_status_t mqtt_subscribe(struct mqtt_client *cl, const char *const *filters, const uint8_t *qos,
                             size_t n, uint16_t *ret_packet_id)
{
    size_t lens[MQTT_MAX_SUBSCRIBE];
    size_t rl = 2;
    uint16_t pid;
    struct wbuf w;
    mqtt_status_t st;

    if (ret_packet_id != NULL)
        *ret_packet_id = 0;
    if (cl == NULL || filters == NULL || qos == NULL || n == 0 || n > MQTT_MAX_SUBSCRIBE)
        return MQTT_ERR_PARAM;
    for (size_t i = 0; i < n; i++) {
        if (!str_ok(filters[i], MQTT_MAX_TOPIC, &lens[i]) || lens[i] == 0 ||
            !filter_valid(filters[i], lens[i]) || qos[i] > 1u)
            return MQTT_ERR_PARAM;
        rl += 2u + lens[i] + 1u;
    }
    if (cl->state != MQTT_STATE_CONNECTED)
        return MQTT_ERR_STATE;
    if (cl->subscribe_pending != 0)
        return MQTT_ERR_BUSY;
    st = tx_reserve(cl, 1u + varint_len(rl) + rl, &w);
    if (st != MQTT_OK)
        return st;
    pid = next_packet_id(cl);
    put_header(&w, (uint8_t)((PKT_SUBSCRIBE << 4) | 0x02u), rl);
    put_u16(&w, pid);
    for (size_t i = 0; i < n; i++) {
        put_str(&w, (const uint8_t *)filters[i], lens[i]);
        put_u8(&w, qos[i]);
    }
    st = tx_commit(cl, &w);
    if (st != MQTT_OK)
        return st;
    cl->subscribe_pending = pid;
    if (ret_packet_id != NULL)
        *ret_packet_id = pid;
    return mqtt_flush(cl);
}

mqtt_status_t mqtt_disconnect(struct mqtt_client *cl)
{
    mqtt_status_t st;
    if (cl == NULL)
        return MQTT_ERR_PARAM;
    if (cl->state != MQTT_STATE_CONNECTED)
        return MQTT_ERR_STATE;
    st = queue_small(cl, (uint8_t)(PKT_DISCONNECT << 4), NULL);
    if (st != MQTT_OK)
        return st;
    st = mqtt_flush(cl);
    /* No more input is expected on this connection; the caller closes the transport once
     * mqtt_want_write() turns false. */
    cl->state = MQTT_STATE_IDLE;
    return st;
}

/* ---- incoming packets ---------------------------------------------------------------- */

static mqtt_status_t fail(struct mqtt_client *cl, mqtt_status_t st)
{
    cl->state = MQTT_STATE_ERROR;
    return st;
}

static mqtt_status_t handle_connack(struct mqtt_client *cl, const uint8_t *b, size_t n)
{
    if (n != 2 || (b[0] & 0xFEu) != 0 || b[1] > 5u)
        return fail(cl, MQTT_ERR_PROTOCOL);
    if (b[1] != 0) {
        cl->connack_code = b[1];
        return fail(cl, MQTT_ERR_REFUSED);
    }
    cl->state = MQTT_STATE_CONNECTED;
    cl->ping_outstanding = false;
    cl->last_tx_ms = cl->now_ms;
    /* Unacknowledged QoS 1 messages from an earlier connection go out again (DUP). */
    resend_due(cl, true);
    if (cl->cfg.cb.on_connack != NULL)
        cl->cfg.cb.on_connack(cl->cfg.cb.user, (b[0] & 1u) != 0);
    return MQTT_OK;
}

static mqtt_status_t handle_publish(struct mqtt_client *cl, uint8_t hdr, const uint8_t *b, size_t n)
{
    struct mqtt_message m;
    size_t off = 0;
    uint16_t tlen;

    memset(&m, 0, sizeof(m));
    m.qos = (uint8_t)((hdr >> 1) & 3u);
    m.dup = (hdr & PUBLISH_DUP) != 0;
    m.retain = (hdr & 1u) != 0;
    /* QoS 2 is never granted by our SUBSCRIBE, QoS 3 is malformed, DUP needs QoS > 0. */
    if (m.qos > 1u || (m.qos == 0 && m.dup))
        return fail(cl, MQTT_ERR_PROTOCOL);
    if (n < 2u)
        return fail(cl, MQTT_ERR_PROTOCOL);
    tlen = get_u16(b);
    off = 2;
    if (tlen == 0 || tlen > n - off)
        return fail(cl, MQTT_ERR_PROTOCOL);
    m.topic = b + off;
    m.topic_len = tlen;
    if (!utf8_valid(m.topic, m.topic_len) || has_wildcard(m.topic, m.topic_len))
        return fail(cl, MQTT_ERR_PROTOCOL);
    off += tlen;
    if (m.qos > 0) {
        if (n - off < 2u)
            return fail(cl, MQTT_ERR_PROTOCOL);
        m.packet_id = get_u16(b + off);
        off += 2;
        if (m.packet_id == 0)
            return fail(cl, MQTT_ERR_PROTOCOL);
    }
    m.payload = b + off;
    m.payload_len = n - off;
    if (cl->cfg.cb.on_message != NULL)
        cl->cfg.cb.on_message(cl->cfg.cb.user, &m);
    if (m.qos == 1u) {
        if (queue_small(cl, (uint8_t)(PKT_PUBACK << 4), &m.packet_id) != MQTT_OK) {
            if (cl->pending_ack_count >= MQTT_MAX_PENDING_ACKS)
                return fail(cl, MQTT_ERR_NOSPACE);
            cl->pending_acks[cl->pending_ack_count++] = m.packet_id;
        }
    }
    return MQTT_OK;
}

static mqtt_status_t handle_puback(struct mqtt_client *cl, const uint8_t *b, size_t n)
{
    uint16_t pid;
    if (n != 2)
        return fail(cl, MQTT_ERR_PROTOCOL);
    pid = get_u16(b);
    if (pid == 0)
        return fail(cl, MQTT_ERR_PROTOCOL);
    for (size_t i = 0; i < MQTT_MAX_INFLIGHT; i++) {
        if (cl->inflight[i].packet_id == pid) {
            cl->inflight[i].packet_id = 0;
            if (cl->cfg.cb.on_puback != NULL)
                cl->cfg.cb.on_puback(cl->cfg.cb.user, pid);
            break;
        }
    }
    /* An id we do not hold: a second PUBACK after a resend. Harmless. */
    return MQTT_OK;
}

static mqtt_status_t handle_suback(struct mqtt_client *cl, const uint8_t *b, size_t n)
{
    uint16_t pid;
    if (n < 3u || n - 2u > MQTT_MAX_SUBSCRIBE)
        return fail(cl, MQTT_ERR_PROTOCOL);
    pid = get_u16(b);
    if (pid == 0 || pid != cl->subscribe_pending)
        return fail(cl, MQTT_ERR_PROTOCOL);
    for (size_t i = 2; i < n; i++)
        if (b[i] > 2u && b[i] != 0x80u)
            return fail(cl, MQTT_ERR_PROTOCOL);
    cl->subscribe_pending = 0;
    if (cl->cfg.cb.on_suback != NULL)
        cl->cfg.cb.on_suback(cl->cfg.cb.user, pid, b + 2, n - 2u);
    return MQTT_OK;
}

static mqtt_status_t handle_packet(struct mqtt_client *cl)
{
    uint8_t type = (uint8_t)(cl->rx_header >> 4);
    const uint8_t *b = cl->cfg.rx_buf;
    size_t n = cl->rx_remaining;

    if (cl->state == MQTT_STATE_CONNECTING) {
        if (type != PKT_CONNACK)
            return fail(cl, MQTT_ERR_PROTOCOL);
        return handle_connack(cl, b, n);
    }
    switch (type) {
    case PKT_PUBLISH:
        return handle_publish(cl, cl->rx_header, b, n);
    case PKT_PUBACK:
        return handle_puback(cl, b, n);
    case PKT_SUBACK:
        return handle_suback(cl, b, n);
    case PKT_PINGRESP:
        if (n != 0)
            return fail(cl, MQTT_ERR_PROTOCOL);
        cl->ping_outstanding = false;
        return MQTT_OK;
    default: /* a second CONNACK, or a packet only a client or a QoS 2 peer sends */
        return fail(cl, MQTT_ERR_PROTOCOL);
    }
}

/* The fixed-header flags are fixed for every type but PUBLISH (section 2.2.2). */
static bool header_acceptable(uint8_t hdr)
{
    uint8_t type = (uint8_t)(hdr >> 4), flags = (uint8_t)(hdr & 0x0Fu);
    switch (type) {
    case PKT_PUBLISH:
        return ((flags >> 1) & 3u) != 3u;
    case PKT_CONNACK:
    case PKT_PUBACK:
    case PKT_SUBACK:
    case PKT_PINGRESP:
        return flags == 0;
    default:
        return false;
    }
}

mqtt_status_t mqtt_input(struct mqtt_client *cl, const uint8_t *buf, size_t len)
{
    mqtt_status_t st = MQTT_OK;

    if (cl == NULL || (buf == NULL && len > 0))
        return MQTT_ERR_PARAM;
    if (cl->state == MQTT_STATE_ERROR)
        return MQTT_ERR_PROTOCOL;
    if (cl->state == MQTT_STATE_IDLE)
        return len == 0 ? MQTT_OK : fail(cl, MQTT_ERR_PROTOCOL);

    while (len > 0) {
        if (cl->rx_phase == RX_HEADER) {
            if (!header_acceptable(buf[0])) {
                st = fail(cl, MQTT_ERR_PROTOCOL);
                goto out;
            }
            cl->rx_header = buf[0];
            cl->rx_phase = RX_LENGTH;
            cl->rx_remaining = 0;
            cl->rx_multiplier = 1;
            cl->rx_len_bytes = 0;
            buf++;
            len--;
            continue;
        }
        if (cl->rx_phase == RX_LENGTH) {
            uint8_t b = buf[0];
            buf++;
            len--;
            cl->rx_len_bytes++;
            cl->rx_remaining += (uint32_t)(b & 0x7Fu) * cl->rx_multiplier;
            cl->rx_multiplier *= 128u;
            if (b & 0x80u) {
                if (cl->rx_len_bytes >= 4u) { /* a fifth length byte: malformed */
                    st = fail(cl, MQTT_ERR_PROTOCOL);
                    goto out;
                }
                continue;
            }
            if (cl->rx_len_bytes > 1u && b == 0) { /* non-minimal encoding */
                st = fail(cl, MQTT_ERR_PROTOCOL);
                goto out;
            }
            if (cl->rx_remaining > cl->cfg.rx_cap) { /* larger than we accept */
                st = fail(cl, MQTT_ERR_PROTOCOL);
                goto out;
            }
            cl->rx_have = 0;
            cl->rx_phase = RX_BODY;
        } else {
            size_t want = cl->rx_remaining - cl->rx_have;
            size_t take = want < len ? want : len;
            if (take > 0)
                memcpy(cl->cfg.rx_buf + cl->rx_have, buf, take);
            cl->rx_have += take;
            buf += take;
            len -= take;
        }
        if (cl->rx_phase == RX_BODY && cl->rx_have == cl->rx_remaining) {
            cl->rx_phase = RX_HEADER;
            st = handle_packet(cl);
            if (st != MQTT_OK)
                goto out;
            if (cl->state != MQTT_STATE_CONNECTED) { /* a callback disconnected */
                break;
            }
        }
    }
    st = mqtt_flush(cl);
out:
    return st;
}

mqtt_status_t mqtt_tick(struct mqtt_client *cl, uint32_t now_ms)
{
    uint32_t ka_ms;
    mqtt_status_t st;
    if (cl == NULL)
        return MQTT_ERR_PARAM;
    cl->now_ms = now_ms;
    switch (cl->state) {
    case MQTT_STATE_CONNECTING:
        if (elapsed(now_ms, cl->connect_ms, cl->cfg.connack_timeout_ms))
            return fail(cl, MQTT_ERR_TIMEOUT);
        break;
    case MQTT_STATE_CONNECTED:
        drain_pending_acks(cl);
        resend_due(cl, false);
        ka_ms = (uint32_t)cl->keep_alive_s * 1000u;
        if (ka_ms > 0) {
            if (cl->ping_outstanding) {
                if (elapsed(now_ms, cl->ping_sent_ms, ka_ms))
                    return fail(cl, MQTT_ERR_TIMEOUT);
            } else if (elapsed(now_ms, cl->last_tx_ms, ka_ms)) {
                st = queue_small(cl, (uint8_t)(PKT_PINGREQ << 4), NULL);
                if (st == MQTT_OK) {
                    cl->ping_outstanding = true;
                    cl->ping_sent_ms = now_ms;
                } else if (st != MQTT_ERR_NOSPACE) {
                    return st;
                }
            }
        }
        break;
    case MQTT_STATE_ERROR:
        return MQTT_ERR_PROTOCOL;
    case MQTT_STATE_IDLE:
    default:
        break;
    }
    return mqtt_flush(cl);
}

void mqtt_set_time(struct mqtt_client *cl, uint32_t now_ms)
{
    if (cl != NULL)
        cl->now_ms = now_ms;
}

void mqtt_connection_lost(struct mqtt_client *cl)
{
    if (cl == NULL)
        return;
    cl->state = MQTT_STATE_IDLE;
    cl->rx_phase = RX_HEADER;
    cl->rx_have = 0;
    cl->tx_head = cl->tx_len = 0;
    cl->ping_outstanding = false;
    cl->subscribe_pending = 0;
    cl->pending_ack_count = 0;
}

void mqtt_drop_inflight(struct mqtt_client *cl)
{
    if (cl == NULL)
        return;
    memset(cl->inflight, 0, sizeof(cl->inflight));
}

mqtt_state_t mqtt_state(const struct mqtt_client *cl)
{
    return cl->state;
}

bool mqtt_want_write(const struct mqtt_client *cl)
{
    return cl->tx_head < cl->tx_len;
}

size_t mqtt_inflight_count(const struct mqtt_client *cl)
{
    size_t n = 0;
    for (size_t i = 0; i < MQTT_MAX_INFLIGHT; i++)
        if (cl->inflight[i].packet_id != 0)
            n++;
    return n;
}

uint8_t mqtt_connack_code(const struct mqtt_client *cl)
{
    return cl->connack_code;
}

const char *mqtt_status_str(mqtt_status_t st)
{
    switch (st) {
    case MQTT_OK:
        return "ok";
    case MQTT_ERR_PARAM:
        return "bad parameter";
    case MQTT_ERR_STATE:
        return "wrong state";
    case MQTT_ERR_NOSPACE:
        return "tx buffer full";
    case MQTT_ERR_TOOBIG:
        return "packet too large";
    case MQTT_ERR_BUSY:
        return "in-flight window full";
    case MQTT_ERR_IO:
        return "transport error";
    case MQTT_ERR_PROTOCOL:
        return "protocol error from broker";
    case MQTT_ERR_REFUSED:
        return "connection refused by broker";
    case MQTT_ERR_TIMEOUT:
        return "broker timed out";
    }
    return "unknown";
}
