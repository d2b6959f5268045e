/* Node agent state machine (see fleetgw/agent.h). */
#include "fleetgw/agent.h"

#include <string.h>

#include "fleetgw/agent_log.h"
#include "fleetgw/cbor.h"
#include "fleetgw/msg.h"

static bool elapsed(uint32_t now, uint32_t since, uint32_t interval)
{
    return (uint32_t)(now - since) >= interval;
}

static bool before(uint32_t a, uint32_t b)
{
    return (int32_t)(a - b) < 0;
}

/* Node ids follow docs/protocol.md: [A-Za-z0-9_-], 1..48 (msg_node_id_valid). */
static bool id_valid(const char *id, size_t *ret_len)
{
    size_t n;
    for (n = 0; n <= AGENT_MAX_ID && id[n] != '\0'; n++)
        ;
    if (n == 0 || n > AGENT_MAX_ID || msg_node_id_valid(id, n) != 0)
        return false;
    *ret_len = n;
    return true;
}

/* The node's own topic for suffix ("ota/ack", "up/telemetry"...), by proto's grammar; false
 * if it does not fit or no topic has that suffix. */
static bool make_topic(const struct agent *a, const char *suffix, char out[AGENT_TOPIC_MAX])
{
    return msg_topic_build_suffix(a->id, strlen(a->id), suffix, strlen(suffix), out,
                                  AGENT_TOPIC_MAX, NULL) == MSG_OK;
}

static uint32_t rng_next(struct agent *a)
{
    /* xorshift32: only spreads reconnect times, nothing secret depends on it */
    uint32_t x = a->rng;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    a->rng = x;
    return x;
}

static void set_phase(struct agent *a, agent_phase_t ph)
{
    AGENT_LOGD("agent %s: %s -> %s", a->id, agent_phase_str(a->phase), agent_phase_str(ph));
    a->phase = ph;
    a->phase_start_ms = a->now_ms;
}

static void close_link(struct agent *a)
{
    mqtt_connection_lost(&a->mqtt);
    if (a->has_layer && a->layer.reset != NULL)
        a->layer.reset(a->layer.ctx);
    if (a->port.link_close != NULL)
        a->port.link_close(a->port.ctx);
}

/* One attempt failed: close everything and either back off or give up. */
static void attempt_failed(struct agent *a, agent_status_t why, uint8_t detail)
{
    uint32_t delay;
    a->last_error = why;
    a->last_detail = detail;
    a->stats.attempts_failed++;
    a->consecutive_failures++;
    AGENT_LOGE("agent %s: attempt failed in %s: %s (%u)", a->id, agent_phase_str(a->phase),
               agent_status_str(why), (unsigned)detail);
    close_link(a);
    if (a->cfg.max_attempts != 0 && a->consecutive_failures >= a->cfg.max_attempts) {
        set_phase(a, AGENT_FAILED);
        return;
    }
    delay = a->cfg.backoff_min_ms;
    for (uint32_t i = 1; i < a->consecutive_failures && delay < a->cfg.backoff_max_ms; i++)
        delay = delay > a->cfg.backoff_max_ms / 2u ? a->cfg.backoff_max_ms : delay * 2u;
    if (delay > a->cfg.backoff_max_ms)
        delay = a->cfg.backoff_max_ms;
    /* up to +50 % jitter */
    if (delay >= 2u)
        delay += rng_next(a) % (delay / 2u);
    a->backoff_until_ms = a->now_ms + delay;
    set_phase(a, AGENT_BACKOFF);
}

static void mqtt_failed(struct agent *a, mqtt_status_t st)
{
    if (st == MQTT_ERR_REFUSED)
        attempt_failed(a, AGENT_ERR_REFUSED, mqtt_connack_code(&a->mqtt));
    else if (st == MQTT_ERR_TIMEOUT)
        attempt_failed(a, AGENT_ERR_TIMEOUT, (uint8_t)st);
    else
        attempt_failed(a, AGENT_ERR_MQTT, (uint8_t)st);
}

static void begin_attempt(struct agent *a)
{
    agent_status_t st;
    set_phase(a, AGENT_LINKING);
    st = a->port.link_open(a->port.ctx);
    if (st != AGENT_OK)
        attempt_failed(a, AGENT_ERR_LINK, (uint8_t)st);
}

static void send_connect(struct agent *a)
{
    struct mqtt_connect_options o;
    mqtt_status_t st;
    memset(&o, 0, sizeof(o));
    o.client_id = a->id;
    o.clean_session = !a->cfg.persistent_session;
    o.keep_alive_s = a->cfg.keep_alive_s;
    set_phase(a, AGENT_MQTT_CONNECTING);
    st = mqtt_connect(&a->mqtt, &o, a->now_ms);
    if (st != MQTT_OK)
        mqtt_failed(a, st);
}

/* ---- MQTT callbacks ------------------------------------------------------------------ */

static void cb_connack(void *user, bool session_present)
{
    struct agent *a = user;
    /* Only what the gateway sends: subscribing to ota/# would echo our own ota/ack etc. */
    static const enum msg_topic wanted[] = {MSG_TOPIC_ATTEST_CHALLENGE, MSG_TOPIC_DOWN,
                                            MSG_TOPIC_OTA_OFFER, MSG_TOPIC_OTA_CHUNK,
                                            MSG_TOPIC_OTA_CONFIRM};
    enum { NSUB = sizeof(wanted) / sizeof(wanted[0]) };
    char topics[NSUB][AGENT_TOPIC_MAX];
    const char *filters[NSUB];
    uint8_t qos[NSUB];
    mqtt_status_t st;
    (void)session_present;
    for (size_t i = 0; i < NSUB; i++) {
        if (msg_topic_filter(wanted[i], a->id, strlen(a->id), topics[i], AGENT_TOPIC_MAX, NULL) !=
            MSG_OK) {
            attempt_failed(a, AGENT_ERR_PARAM, 0);
            return;
        }
        filters[i] = topics[i];
        /* persistent session: only commands are worth queueing while the node is away */
        qos[i] = (!a->cfg.persistent_session || wanted[i] == MSG_TOPIC_DOWN) ? 1u : 0u;
    }
    set_phase(a, AGENT_SUBSCRIBING);
    st = mqtt_subscribe(&a->mqtt, filters, qos, NSUB, NULL);
    if (st != MQTT_OK)
        mqtt_failed(a, st);
}

/* attest_first: a node-status on fleet/<id>/status asks the gateway for a challenge. */
static void publish_status(struct agent *a)
{
    struct msg m;
    uint8_t buf[32];
    char topic[AGENT_TOPIC_MAX];
    size_t len = 0;
    memset(&m, 0, sizeof(m));
    m.type = MSG_NODE_STATUS;
    m.u.node_status.state = MSG_NODE_ONLINE;
    m.u.node_status.uptime_s = (uint32_t)(a->now_ms - a->started_ms) / 1000u;
    m.u.node_status.version.major = a->cfg.fw_version.major;
    m.u.node_status.version.minor = a->cfg.fw_version.minor;
    m.u.node_status.version.revision = a->cfg.fw_version.revision;
    m.u.node_status.version.build = a->cfg.fw_version.build;
    if (!make_topic(a, "status", topic) || msg_encode(&m, buf, sizeof(buf), &len) != MSG_OK ||
        mqtt_publish(&a->mqtt, topic, buf, len, 1, false, NULL) != MQTT_OK) {
        /* not sent: telemetry is held until attest_wait_ms anyway */
        AGENT_LOGE("agent %s: cannot publish the node status", a->id);
    }
}

static void cb_suback(void *user, uint16_t pid, const uint8_t *codes, size_t n)
{
    struct agent *a = user;
    (void)pid;
    for (size_t i = 0; i < n; i++) {
        if (codes[i] == 0x80u) {
            attempt_failed(a, AGENT_ERR_REFUSED, 0x80u);
            return;
        }
    }
    a->consecutive_failures = 0;
    a->stats.connects++;
    if (a->cfg.telemetry_count == 0 || a->telemetry_seq < a->cfg.telemetry_count)
        a->next_telemetry_ms = a->now_ms;
    set_phase(a, AGENT_RUNNING);
    AGENT_LOGI("agent %s: running", a->id);
    if (a->cfg.attest_first && !a->attested) {
        a->attest_hold = true;
        a->attest_hold_ms = a->now_ms;
        publish_status(a);
    }
}

static void cb_puback(void *user, uint16_t pid)
{
    struct agent *a = user;
    for (size_t i = 0; i < MQTT_MAX_INFLIGHT; i++) {
        if (a->telemetry_pids[i] == pid) {
            a->telemetry_pids[i] = 0;
            a->stats.telemetry_acked++;
            return;
        }
    }
}

/* Returns true when the reply was handed to MQTT (QoS 1). */
static bool publish_reply(struct agent *a, const char *suffix, const uint8_t *b, size_t n)
{
    char topic[AGENT_TOPIC_MAX];
    mqtt_status_t st;
    if (!make_topic(a, suffix, topic)) {
        a->stats.ignored++;
        return false;
    }
    st = mqtt_publish(&a->mqtt, topic, b, n, 1, false, NULL);
    if (st != MQTT_OK) {
        /* the window is full or the packet too large: the requester asks again */
        AGENT_LOGE("agent %s: reply on %s dropped: %s", a->id, suffix, mqtt_status_str(st));
        a->stats.ignored++;
        return false;
    }
    return true;
}

static bool suffix_is(const char *suffix, size_t slen, const char *lit)
{
    size_t n = strlen(lit);
    return slen == n && memcmp(suffix, lit, n) == 0;
}

static void handle_challenge(struct agent *a, const struct mqtt_message *m)
{
    struct msg msg;
    uint8_t *tok = a->cfg.evidence_buf + AGENT_EVIDENCE_HDR;
    size_t tok_len = 0, head;
    uint8_t *start;

    a->stats.challenges++;
    if (msg_decode(m->payload, m->payload_len, &msg) != MSG_OK ||
        msg.type != MSG_ATTEST_CHALLENGE) {
        a->stats.ignored++;
        return;
    }
    if (a->app.on_challenge == NULL || a->cfg.evidence_buf == NULL ||
        a->cfg.evidence_cap <= AGENT_EVIDENCE_HDR) {
        a->stats.ignored++; /* attestation not wired in this build */
        return;
    }
    if (a->app.on_challenge(a->app.user, msg.u.challenge.nonce, msg.u.challenge.nonce_len,
                            msg.u.challenge.ttl_s, tok, a->cfg.evidence_cap - AGENT_EVIDENCE_HDR,
                            &tok_len) != AGENT_OK ||
        tok_len == 0 || tok_len > MSG_TOKEN_MAX ||
        tok_len > a->cfg.evidence_cap - AGENT_EVIDENCE_HDR) {
        a->stats.ignored++;
        return;
    }
    /* [2, bytes(token)] with the CBOR head written just before the token, in place. */
    head = 2u + cbor_head_len(tok_len);
    start = tok - head;
    start[0] = 0x82; /* array of 2 */
    start[1] = (uint8_t)MSG_ATTEST_EVIDENCE;
    if (tok_len < 24u) {
        start[2] = (uint8_t)(0x40u | tok_len);
    } else if (tok_len < 256u) {
        start[2] = 0x58;
        start[3] = (uint8_t)tok_len;
    } else {
        start[2] = 0x59;
        start[3] = (uint8_t)(tok_len >> 8);
        start[4] = (uint8_t)tok_len;
    }
    /* what the gateway will decode: check it here rather than publish garbage */
    if (msg_decode(start, head + tok_len, &msg) != MSG_OK || msg.type != MSG_ATTEST_EVIDENCE) {
        a->stats.ignored++;
        return;
    }
    if (publish_reply(a, "attest/evidence", start, head + tok_len)) {
        a->stats.evidence_sent++;
        a->attested = true;
        if (a->attest_hold) {
            /* telemetry due during the hold starts now, after the evidence */
            a->attest_hold = false;
            a->next_telemetry_ms = a->now_ms;
        }
    }
}

static void handle_ota(struct agent *a, const char *suffix, size_t slen,
                       const struct mqtt_message *m)
{
    size_t out_len = 0;
    const char *reply_topic = NULL;
    if (a->app.on_ota == NULL || a->cfg.evidence_buf == NULL) {
        a->stats.ignored++; /* OTA client not wired in this build */
        return;
    }
    if (a->app.on_ota(a->app.user, suffix, slen, m->payload, m->payload_len, a->cfg.evidence_buf,
                      a->cfg.evidence_cap, &out_len, &reply_topic) != AGENT_OK ||
        out_len > a->cfg.evidence_cap) {
        a->stats.ignored++;
        return;
    }
    if (out_len == 0)
        return;
    if (reply_topic == NULL ||
        !(strcmp(reply_topic, "ota/ack") == 0 || strcmp(reply_topic, "ota/request") == 0 ||
          strcmp(reply_topic, "ota/status") == 0)) {
        a->stats.ignored++;
        return;
    }
    (void)publish_reply(a, reply_topic, a->cfg.evidence_buf, out_len);
}

static void cb_message(void *user, const struct mqtt_message *m)
{
    struct agent *a = user;
    struct msg_topic_parsed tp;

    /* Only this node's own topics, by proto's grammar (down/<sub> with a valid subtopic). */
    if (msg_topic_parse((const char *)m->topic, m->topic_len, &tp) != MSG_OK ||
        strcmp(tp.node_id, a->id) != 0) {
        a->stats.ignored++;
        return;
    }
    switch (tp.topic) {
    case MSG_TOPIC_ATTEST_CHALLENGE:
        handle_challenge(a, m);
        return;
    case MSG_TOPIC_DOWN:
        a->stats.commands++;
        if (suffix_is(tp.sub, tp.sub_len, "ping")) {
            (void)publish_reply(a, "up/pong", m->payload,
                                m->payload_len > AGENT_PONG_MAX ? AGENT_PONG_MAX : m->payload_len);
            return;
        }
        if (a->app.on_command == NULL) {
            a->stats.ignored++;
            return;
        }
        if (suffix_is(tp.sub, tp.sub_len, "command")) {
            struct msg msg;
            if (msg_decode(m->payload, m->payload_len, &msg) != MSG_OK || msg.type != MSG_COMMAND) {
                a->stats.ignored++;
                return;
            }
            a->app.on_command(a->app.user, msg.u.command.name, strlen(msg.u.command.name),
                              msg.u.command.args, msg.u.command.args_len);
            return;
        }
        a->app.on_command(a->app.user, tp.sub, tp.sub_len, m->payload, m->payload_len);
        return;
    case MSG_TOPIC_OTA_OFFER:
        handle_ota(a, "offer", 5, m);
        return;
    case MSG_TOPIC_OTA_CHUNK:
        handle_ota(a, "chunk", 5, m);
        return;
    case MSG_TOPIC_OTA_CONFIRM:
        handle_ota(a, "confirm", 7, m);
        return;
    default:
        a->stats.ignored++;
        return;
    }
}

/* ---- public API ---------------------------------------------------------------------- */

agent_status_t agent_init(struct agent *a, const struct agent_config *cfg,
                          const struct agent_port *port, const struct agent_app *app,
                          const struct agent_layer *layer)
{
    struct mqtt_config mc;
    size_t id_len = 0;
    if (a == NULL || cfg == NULL || port == NULL || port->link_open == NULL ||
        port->lower == NULL || port->lower->read == NULL || cfg->node_id == NULL)
        return AGENT_ERR_PARAM;
    memset(a, 0, sizeof(*a));
    if (!id_valid(cfg->node_id, &id_len) || cfg->backoff_min_ms == 0 ||
        cfg->backoff_max_ms < cfg->backoff_min_ms || cfg->connect_timeout_ms == 0 ||
        (cfg->telemetry_interval_ms == 0 && cfg->telemetry_count != 1))
        return AGENT_ERR_PARAM;
    if (layer != NULL && (layer->handshake == NULL || layer->upper == NULL ||
                          layer->upper->read == NULL || layer->upper->write == NULL))
        return AGENT_ERR_PARAM;
    a->cfg = *cfg;
    a->port = *port;
    if (app != NULL)
        a->app = *app;
    memcpy(a->id, cfg->node_id, id_len);
    a->id[id_len] = '\0';
    a->cfg.node_id = a->id;
    if (layer != NULL) {
        a->layer = *layer;
        a->has_layer = true;
        a->upper = layer->upper;
    } else {
        a->upper = port->lower;
    }
    if (cfg->telemetry_topic != NULL && strlen(cfg->telemetry_topic) >= AGENT_TOPIC_MAX)
        return AGENT_ERR_PARAM;
    memset(&mc, 0, sizeof(mc));
    mc.rx_buf = cfg->rx_buf;
    mc.rx_cap = cfg->rx_cap;
    mc.tx_buf = cfg->tx_buf;
    mc.tx_cap = cfg->tx_cap;
    mc.store = cfg->store;
    mc.store_cap = cfg->store_cap;
    mc.retry_ms = cfg->retry_ms;
    mc.connack_timeout_ms = cfg->connect_timeout_ms;
    mc.transport = a->upper;
    mc.cb.user = a;
    mc.cb.on_connack = cb_connack;
    mc.cb.on_message = cb_message;
    mc.cb.on_puback = cb_puback;
    mc.cb.on_suback = cb_suback;
    if (mqtt_init(&a->mqtt, &mc) != MQTT_OK)
        return AGENT_ERR_PARAM;
    a->rng = cfg->jitter_seed != 0 ? cfg->jitter_seed : 0x9E3779B9u;
    a->phase = AGENT_IDLE;
    return AGENT_OK;
}

agent_status_t agent_publish(struct agent *a, const char *suffix, const uint8_t *payload,
                             size_t len)
{
    char topic[AGENT_TOPIC_MAX];
    mqtt_status_t st;
    if (a == NULL || suffix == NULL || suffix[0] == '\0' || (payload == NULL && len != 0))
        return AGENT_ERR_PARAM;
    if (a->phase != AGENT_RUNNING)
        return AGENT_ERR_STATE;
    if (!make_topic(a, suffix, topic))
        return AGENT_ERR_PARAM;
    st = mqtt_publish(&a->mqtt, topic, payload, len, 1, false, NULL);
    if (st == MQTT_OK)
        return AGENT_OK;
    return (st == MQTT_ERR_BUSY || st == MQTT_ERR_NOSPACE) ? AGENT_ERR_NOSPACE : AGENT_ERR_PARAM;
}

agent_status_t agent_start(struct agent *a, uint32_t now_ms)
{
    if (a == NULL)
        return AGENT_ERR_PARAM;
    if (a->phase != AGENT_IDLE)
        return AGENT_ERR_STATE;
    a->now_ms = now_ms;
    a->started_ms = now_ms;
    begin_attempt(a);
    return AGENT_OK;
}

void agent_link_up(struct agent *a, uint32_t now_ms)
{
    a->now_ms = now_ms;
    mqtt_set_time(&a->mqtt, now_ms);
    if (a->phase != AGENT_LINKING)
        return;
    if (a->has_layer) {
        set_phase(a, AGENT_HANDSHAKE);
        agent_io(a, now_ms);
    } else {
        send_connect(a);
    }
}

void agent_link_down(struct agent *a, uint32_t now_ms)
{
    a->now_ms = now_ms;
    mqtt_set_time(&a->mqtt, now_ms);
    switch (a->phase) {
    case AGENT_LINKING:
    case AGENT_HANDSHAKE:
    case AGENT_MQTT_CONNECTING:
    case AGENT_SUBSCRIBING:
    case AGENT_RUNNING:
        attempt_failed(a, AGENT_ERR_LINK, 0);
        break;
    case AGENT_CLOSING:
        close_link(a);
        set_phase(a, AGENT_DONE);
        break;
    default:
        break;
    }
}

static bool connected_phase(agent_phase_t ph)
{
    return ph == AGENT_MQTT_CONNECTING || ph == AGENT_SUBSCRIBING || ph == AGENT_RUNNING;
}

static void read_input(struct agent *a)
{
    uint8_t buf[256];
    /* Bounded: at most 64 reads per call so that one busy node cannot starve the others. */
    for (int i = 0; i < 64 && connected_phase(a->phase); i++) {
        long n = a->upper->read(a->upper->ctx, buf, sizeof(buf));
        mqtt_status_t st;
        if (n == TRANSPORT_AGAIN)
            return;
        if (n == TRANSPORT_EOF || n == 0) {
            attempt_failed(a, AGENT_ERR_LINK, 0);
            return;
        }
        if (n < 0 || (size_t)n > sizeof(buf)) {
            attempt_failed(a, a->has_layer ? AGENT_ERR_SECURE : AGENT_ERR_LINK, 0);
            return;
        }
        st = mqtt_input(&a->mqtt, buf, (size_t)n);
        if (!connected_phase(a->phase))
            return; /* a callback ended the attempt */
        if (st != MQTT_OK) {
            mqtt_failed(a, st);
            return;
        }
    }
}

void agent_io(struct agent *a, uint32_t now_ms)
{
    mqtt_status_t st;
    a->now_ms = now_ms;
    mqtt_set_time(&a->mqtt, now_ms);
    if (a->phase == AGENT_HANDSHAKE) {
        agent_hs_t hs = a->layer.handshake(a->layer.ctx);
        if (hs == AGENT_HS_FAILED) {
            attempt_failed(a, AGENT_ERR_SECURE, 0);
            return;
        }
        if (hs == AGENT_HS_AGAIN)
            return;
        send_connect(a);
    }
    if (connected_phase(a->phase)) {
        read_input(a);
        if (!connected_phase(a->phase))
            return;
    }
    if (connected_phase(a->phase) || a->phase == AGENT_CLOSING) {
        st = mqtt_flush(&a->mqtt);
        if (st != MQTT_OK) {
            if (a->phase == AGENT_CLOSING) {
                close_link(a);
                set_phase(a, AGENT_DONE);
            } else {
                mqtt_failed(a, st);
            }
            return;
        }
        if (a->phase == AGENT_CLOSING && !mqtt_want_write(&a->mqtt)) {
            close_link(a);
            set_phase(a, AGENT_DONE);
        }
    }
}

/* One telemetry message if one is due. Returns false when nothing (more) can be sent now. */
static bool send_one_telemetry(struct agent *a)
{
    char topic[AGENT_TOPIC_MAX];
    uint8_t payload[AGENT_TELEMETRY_MAX];
    size_t len = 0;
    uint16_t pid = 0;
    int32_t sample = 0;
    uint64_t wall = 0;
    mqtt_status_t st;

    if (a->cfg.telemetry_count != 0 && a->telemetry_seq >= a->cfg.telemetry_count)
        return false;
    if (before(a->now_ms, a->next_telemetry_ms))
        return false;
    if (a->cfg.telemetry_topic != NULL) {
        memcpy(topic, a->cfg.telemetry_topic, strlen(a->cfg.telemetry_topic) + 1u);
    } else if (!make_topic(a, "up/telemetry", topic)) {
        return false;
    }
    if (a->app.telemetry_sample != NULL)
        sample = a->app.telemetry_sample(a->app.user);
    if (a->app.wall_clock_ms != NULL)
        wall = a->app.wall_clock_ms(a->app.user);
    if (agent_telemetry_encode(payload, sizeof(payload), a->telemetry_seq, wall, sample, &len) !=
        AGENT_OK)
        return false;
    st = mqtt_publish(&a->mqtt, topic, payload, len, 1, false, &pid);
    if (st == MQTT_ERR_BUSY || st == MQTT_ERR_NOSPACE)
        return false; /* window full: try again on the next tick, same sequence number */
    if (st != MQTT_OK) {
        mqtt_failed(a, st);
        return false;
    }
    for (size_t i = 0; i < MQTT_MAX_INFLIGHT; i++) {
        if (a->telemetry_pids[i] == 0) {
            a->telemetry_pids[i] = pid;
            break;
        }
    }
    a->telemetry_seq++;
    a->stats.telemetry_sent++;
    a->next_telemetry_ms += a->cfg.telemetry_interval_ms;
    return true;
}

static void send_telemetry(struct agent *a)
{
    if (a->attest_hold) {
        if (!elapsed(a->now_ms, a->attest_hold_ms, a->cfg.attest_wait_ms))
            return;
        a->attest_hold = false; /* no challenge came: send anyway */
        a->stats.attest_timeouts++;
        a->next_telemetry_ms = a->now_ms;
    }
    /* Catch up on messages that fell due since the last tick, at most one window's worth;
     * after a long stall (e.g. a reconnect) do not burst: restart the schedule from now. */
    for (unsigned i = 0; i < MQTT_MAX_INFLIGHT && a->phase == AGENT_RUNNING; i++)
        if (!send_one_telemetry(a))
            break;
    if (a->phase == AGENT_RUNNING &&
        before(a->next_telemetry_ms, a->now_ms - MQTT_MAX_INFLIGHT * a->cfg.telemetry_interval_ms))
        a->next_telemetry_ms = a->now_ms;
}

void agent_tick(struct agent *a, uint32_t now_ms)
{
    mqtt_status_t st;
    a->now_ms = now_ms;
    mqtt_set_time(&a->mqtt, now_ms);
    switch (a->phase) {
    case AGENT_BACKOFF:
        if (!before(now_ms, a->backoff_until_ms))
            begin_attempt(a);
        return;
    case AGENT_LINKING:
    case AGENT_HANDSHAKE:
    case AGENT_MQTT_CONNECTING:
    case AGENT_SUBSCRIBING:
        if (elapsed(now_ms, a->phase_start_ms, a->cfg.connect_timeout_ms)) {
            attempt_failed(a, AGENT_ERR_TIMEOUT, 0);
            return;
        }
        if (a->phase == AGENT_HANDSHAKE) {
            agent_io(a, now_ms);
            return;
        }
        break;
    case AGENT_CLOSING:
        /* the DISCONNECT could not be written in time: close anyway */
        if (elapsed(now_ms, a->phase_start_ms, a->cfg.connect_timeout_ms)) {
            close_link(a);
            set_phase(a, AGENT_DONE);
        }
        return;
    case AGENT_RUNNING:
        send_telemetry(a);
        if (a->phase != AGENT_RUNNING)
            return;
        if (a->cfg.stop_when_done && a->cfg.telemetry_count != 0 &&
            a->stats.telemetry_acked >= a->cfg.telemetry_count &&
            mqtt_inflight_count(&a->mqtt) == 0) {
            agent_stop(a, now_ms);
            return;
        }
        break;
    default:
        return;
    }
    if (a->phase == AGENT_LINKING)
        return;
    st = mqtt_tick(&a->mqtt, now_ms);
    if (st != MQTT_OK)
        mqtt_failed(a, st);
}

void agent_stop(struct agent *a, uint32_t now_ms)
{
    a->now_ms = now_ms;
    mqtt_set_time(&a->mqtt, now_ms);
    if (a->phase == AGENT_RUNNING || a->phase == AGENT_SUBSCRIBING) {
        if (mqtt_disconnect(&a->mqtt) == MQTT_OK) {
            set_phase(a, AGENT_CLOSING);
            agent_io(a, now_ms);
            return;
        }
    }
    if (a->phase == AGENT_DONE || a->phase == AGENT_FAILED || a->phase == AGENT_CLOSING)
        return;
    if (a->phase != AGENT_IDLE && a->phase != AGENT_BACKOFF)
        close_link(a);
    set_phase(a, AGENT_DONE);
}

agent_phase_t agent_phase(const struct agent *a)
{
    return a->phase;
}

bool agent_finished(const struct agent *a)
{
    return a->phase == AGENT_DONE || a->phase == AGENT_FAILED;
}

const struct agent_stats *agent_stats(const struct agent *a)
{
    return &a->stats;
}

agent_status_t agent_last_error(const struct agent *a)
{
    return a->last_error;
}

const char *agent_status_str(agent_status_t st)
{
    switch (st) {
    case AGENT_OK:
        return "ok";
    case AGENT_ERR_PARAM:
        return "bad parameter";
    case AGENT_ERR_STATE:
        return "wrong state";
    case AGENT_ERR_LINK:
        return "link failed";
    case AGENT_ERR_SECURE:
        return "TLS failed";
    case AGENT_ERR_MQTT:
        return "MQTT error";
    case AGENT_ERR_REFUSED:
        return "refused by broker";
    case AGENT_ERR_TIMEOUT:
        return "timeout";
    case AGENT_ERR_NOSPACE:
        return "no space";
    }
    return "unknown";
}

const char *agent_phase_str(agent_phase_t ph)
{
    static const char *const names[] = {"idle",        "backoff", "linking", "handshake", "connect",
                                        "subscribing", "running", "closing", "done",      "failed"};
    if ((unsigned)ph < sizeof(names) / sizeof(names[0]))
        return names[ph];
    return "?";
}

agent_status_t agent_telemetry_encode(uint8_t *out, size_t cap, uint32_t seq, uint64_t timestamp_ms,
                                      int32_t sample, size_t *ret_len)
{
    uint8_t body[16];
    struct cbor_enc e;
    struct msg m;
    size_t body_len = 0;

    if (out == NULL || ret_len == NULL)
        return AGENT_ERR_PARAM;
    *ret_len = 0;
    cbor_enc_init(&e, body, sizeof(body));
    cbor_put_map(&e, 1);
    cbor_put_text(&e, "v", 1);
    cbor_put_int(&e, sample);
    if (cbor_enc_finish(&e, &body_len) != CBOR_OK)
        return AGENT_ERR_NOSPACE;
    memset(&m, 0, sizeof(m));
    m.type = MSG_TELEMETRY;
    m.u.telemetry.seq = seq;
    m.u.telemetry.timestamp_ms = timestamp_ms;
    m.u.telemetry.payload = body;
    m.u.telemetry.payload_len = body_len;
    switch (msg_encode(&m, out, cap, ret_len)) {
    case MSG_OK:
        return AGENT_OK;
    case MSG_ERR_NOSPACE:
        return AGENT_ERR_NOSPACE;
    default:
        return AGENT_ERR_PARAM; /* e.g. a timestamp >= 2^53 */
    }
}
