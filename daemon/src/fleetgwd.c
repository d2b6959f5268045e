/* fleetgwd: the fleetgw gateway daemon (relay core).
 *
 * One sd-event loop drives two libmosquitto clients through their sockets:
 *  - edge:   the local broker over its unix socket, persistent session (clean_session
 *            false), QoS 1, subscribed to fleet/+/up/# and fleet/+/attest/evidence;
 *  - uplink: the cloud broker over mutual TLS with the TPM-held key (tpm_tls_ctx_new),
 *            will + retained status <prefix>/gateway/<client_id>/status.
 *
 * Durability of acknowledged messages (see docs/daemon.md, "Acknowledgement ordering").
 * libmosquitto 2.0.11 (Debian 12) sends the PUBACK of an incoming QoS 1 PUBLISH *before*
 * calling on_message (lib/handle_publish.c; the order was only reversed upstream in 2.0.16).
 * In the default non-threaded mode packet__queue() writes that PUBACK to the socket at once,
 * so a crash inside or right after on_message would lose an acknowledged message. fleetgwd
 * therefore marks both clients as externally threaded (mosquitto_threaded_set(m, true)):
 * packet__queue() then only queues packets, and nothing reaches the socket until we call
 * mosquitto_loop_write(). The edge read handler is:
 *     mosquitto_loop_read(edge)   -> on_message appends to the spool (open transaction),
 *                                    libmosquitto queues the PUBACKs
 *     daemon_commit()             -> one fsync'ed WAL commit for the whole batch
 *     mosquitto_loop_write(edge)  -> only now the PUBACKs leave (held back while
 *                                    edge_appended says a batch is not committed yet)
 * If the commit fails, the edge socket is shut down without writing, the queued PUBACKs are
 * discarded on reconnect and the broker redelivers the messages (persistent session).
 *
 * Cloud commands take the same way in the other direction (down-queue, daemon/src/downq.c):
 *     mosquitto_loop_read(up)     -> uplink_on_message appends the command to the down-queue
 *                                    (same open transaction), libmosquitto queues the PUBACK
 *     daemon_commit()             -> down_commit(), first thing in daemon_flush()
 *     mosquitto_loop_write(up)    -> only now the PUBACK leaves for the cloud broker
 * If that commit fails, the uplink socket is shut down without writing; the uplink client
 * is recreated per connection, so the queued PUBACKs die with it and the cloud broker
 * redelivers (persistent session). Queued commands go to the edge broker in id order, QoS 1,
 * at most DOWN_INFLIGHT_MAX unacknowledged, and are deleted on the edge broker's PUBACK.
 *
 * Throughput (docs/benchmarks.md): the costs are system calls, so the relay path counts
 * them per batch where it can. Under load the edge socket is read and committed at most
 * every spool.commit_gap_ms (one wake-up, one fsync per batch); acknowledgements from the
 * cloud and counters are written by the next commit, not per message (spool.h); the
 * uplink's TLS records are gathered and written once per loop iteration (tls_wbuf.h);
 * libmosquitto's per-packet log formatting is off unless debugging.
 */
#define _GNU_SOURCE
#include "attest.h"
#include "config.h"
#include "control.h"
#include "downq.h"
#include "gate.h"
#include "log.h"
#include "registry.h"
#include "relay.h"
#include "spool.h"
#include "tls_wbuf.h"

#include <fleetgw/tpm_tls.h>

#include <errno.h>
#include <fleetgw/msg.h>
#include <getopt.h>
#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>
#include <time.h>
#include <unistd.h>

#define NODE_TABLE_MAX      4096
#define EDGE_BACKOFF_MAX_MS 5000
#define EDGE_BATCH_MAX      1024 /* packets read from the edge per commit, at most */
/* QoS 1 messages the edge broker may have in flight to fleetgwd (MQTT v5 Receive Maximum).
 * Each edge batch costs one fsync; with the broker's own window (max_inflight_messages,
 * often 20-100) the broker stops sending while that fsync runs, so the window, not the
 * disk, bounded the throughput. With a wider window the broker keeps sending during the
 * fsync and the next commit covers more messages. */
#define EDGE_RECEIVE_MAX      1000
#define UP_BUFFERED_READS_MAX 4096     /* uplink loop_read calls per wakeup for buffered TLS */
#define COMMIT_DELAY_US       20000ULL /* group commit of deletes and counters */
#define DOWN_INFLIGHT_MAX     16       /* cloud commands published to the edge, not yet PUBACKed */
/* Timers on the relay path must fire on time: sd-event's default accuracy (0 = 250 ms of
 * allowed slack, for coalescing wake-ups) would stall the drain and the commits. */
#define TIMER_ACCURACY_US 1
#define UP_WBUF_CAP       (256 * 1024) /* TLS bytes buffered towards the cloud, at most */

enum uplink_state { UP_IDLE, UP_CONNECTING, UP_CONNECTED };

#define LAST_SEEN_INTERVAL_S 60

struct inflight {
    int mid;
    int64_t id;
};

struct daemon {
    const char *config_path;
    struct config cfg;
    sd_event *ev;
    struct spool *spool;
    struct registry *registry;
    struct attest_policy *policy;
    struct ctl_server *ctl;
    SSL_CTX *ssl_ctx;

    struct mosquitto *edge;
    sd_event_source *edge_io;
    int edge_fd;
    bool edge_connected;
    bool edge_configured;   /* host/port handed to libmosquitto by a successful connect */
    uint64_t edge_packets;  /* messages delivered by the edge client (see edge_read_batch) */
    unsigned edge_appended; /* node messages spooled, not yet committed: no PUBACK may leave */
    bool edge_hold;         /* readable edge socket left to fill until the commit timer */
    uint64_t last_commit_us;
    sd_event_source *edge_timer;
    int edge_backoff_ms;

    struct mosquitto *up;
    sd_event_source *up_io;
    int up_fd;
    enum uplink_state up_state;
    sd_event_source *up_timer; /* reconnect back-off or connect timeout */
    int up_backoff_ms;
    bool up_destroy_pending;
    bool up_tcp_ready;
    BIO *up_wbuf; /* write coalescing under the uplink's TLS, owned by its SSL */
    char up_last_error[256];

    struct inflight *inflight;
    unsigned n_inflight;
    int64_t last_sent_id;
    int64_t highest_sent_id; /* for counting replays after an outage */
    struct token_bucket drain_bucket;
    sd_event_source *drain_timer;
    sd_event_source *commit_timer;
    sd_event_source *up_buffered_timer; /* TLS records buffered by read-ahead, see below */

    struct gate *gate;             /* node table + attestation state machine (gate.h) */
    bool gate_wrote;               /* a verdict was persisted/published by gate_act */
    sd_event_source *attest_timer; /* earliest challenge expiry (attest_timer_cb) */

    sd_event_source *tick;
    sd_event_source *watchdog;
    uint64_t watchdog_usec;
    bool stopping;
    const char *warned[48]; /* drop reasons already logged at warning level (literals) */
    unsigned n_warned;
    uint64_t relayed_up, relayed_down;
    char last_status[256];

    /* down-queue: cloud -> edge */
    struct downq *downq;
    struct inflight down_inflight[DOWN_INFLIGHT_MAX];
    unsigned n_down_inflight;
    int64_t down_last_sent_id; /* rows up to this id are in flight or gone */
    bool down_uncommitted;     /* appended by the uplink read path, PUBACKs queued */
};

static void daemon_flush(struct daemon *d);
static int daemon_commit(struct daemon *d);
static void uplink_schedule(struct daemon *d, int delay_ms);
static void drain(struct daemon *d);
static void drain_down(struct daemon *d);
static void down_commit(struct daemon *d);

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000ULL + (uint64_t)ts.tv_nsec / 1000ULL;
}

static int64_t wall_s(void)
{
    return (int64_t)time(NULL);
}

static void count_drop(struct daemon *d, const char *node, const char *reason, const char *what)
{
    int r = spool_count(d->spool, reason, 1);
    if (r < 0)
        log_event(LOG_ERR, node, reason, "cannot record a drop counter: %s", strerror(-r));
    /* Each reason is logged at warning level the first time after start, at debug
     * afterwards (a flood of one kind of bad message costs no query and no log storm). */
    bool first = true;
    for (unsigned i = 0; i < d->n_warned && first; i++)
        first = strcmp(d->warned[i], reason) != 0;
    if (first && d->n_warned < sizeof(d->warned) / sizeof(d->warned[0]))
        d->warned[d->n_warned++] = reason;
    log_event(first ? LOG_WARNING : LOG_DEBUG, node, reason, "dropped %s", what);
}

/* ---- attestation gate: gate.c decides, this section carries out its actions ---- */

static void attest_publish_state(struct daemon *d, const char *node, const char *verdict,
                                 const char *reason, const char *fw, int64_t when)
{
    char topic[SPOOL_TOPIC_MAX];
    json_object *o = json_object_new_object();
    json_object_object_add(o, "verdict", json_object_new_string(verdict));
    json_object_object_add(o, "reason", json_object_new_string(reason));
    json_object_object_add(o, "fw_version", json_object_new_string(fw));
    json_object_object_add(o, "time", json_object_new_int64(when));
    const char *js = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
    snprintf(topic, sizeof(topic), "%s/nodes/%s/state", d->cfg.uplink.topic_prefix, node);
    int r = spool_append(d->spool, node, topic, js, strlen(js), when, true, NULL);
    if (r < 0)
        log_event(LOG_ERR, node, "spool_error", "cannot queue the node state upstream: %s",
                  strerror(-r));
    json_object_put(o);
}

/* Silent nodes are found by one timer (d->attest_timer) armed at the earliest outstanding
 * expiry; gate_on_timer() sweeps the node table at most once per GATE_SWEEP_MIN_US and only
 * while a challenge is outstanding. */
static void attest_timer_arm(struct daemon *d, uint64_t at)
{
    int on = SD_EVENT_OFF;
    uint64_t cur = 0;
    if (d->attest_timer == NULL)
        return;
    if (sd_event_source_get_enabled(d->attest_timer, &on) >= 0 && on != SD_EVENT_OFF &&
        sd_event_source_get_time(d->attest_timer, &cur) >= 0 && cur <= at)
        return;
    int r = sd_event_source_set_time(d->attest_timer, at);
    if (r >= 0)
        r = sd_event_source_set_enabled(d->attest_timer, SD_EVENT_ONESHOT);
    if (r < 0)
        log_err("cannot arm the attestation timer: %s", strerror(-r));
}

static int attest_timer_cb(sd_event_source *s, uint64_t usec, void *u)
{
    (void)s;
    (void)usec;
    struct daemon *d = u;
    d->gate_wrote = false;
    uint64_t next = gate_on_timer(d->gate, now_us(), wall_s());
    if (next != 0)
        attest_timer_arm(d, next);
    if (d->gate_wrote) {
        /* The verdicts are in the registry already: make their state messages upstream and
         * the counters durable with them, not only at the next group commit. */
        (void)daemon_commit(d);
    }
    daemon_flush(d);
    return 0;
}

static int gate_load(void *u, const char *node, struct gate_record *ret)
{
    struct daemon *d = u;
    struct registry_node rn;
    int r = registry_get(d->registry, node, &rn);
    if (r < 0) {
        if (r != -ENOENT)
            log_event(LOG_ERR, node, "registry_error", "cannot read the registry: %s",
                      strerror(-r));
        return r;
    }
    memcpy(ret->pub, rn.iak_pub, sizeof(ret->pub));
    ret->verdict = strcmp(rn.verdict, "trusted") == 0       ? GATE_TRUSTED
                   : strcmp(rn.verdict, "quarantined") == 0 ? GATE_QUARANTINED
                                                            : GATE_NONE;
    ret->verdict_time = rn.verdict_time;
    snprintf(ret->fw_version, sizeof(ret->fw_version), "%s", rn.fw_version);
    return 0;
}

static void gate_verify(void *u, const uint8_t *msg, size_t len, const uint8_t pub[GATE_PUB_LEN],
                        const uint8_t nonce[GATE_NONCE_LEN], struct gate_judgement *ret)
{
    struct daemon *d = u;
    struct attest_result res;
    attest_evaluate(d->policy, msg, len, pub, nonce, GATE_NONCE_LEN, &res);
    ret->trusted = res.trusted;
    ret->code = res.code;
    memcpy(ret->reason, res.reason, sizeof(ret->reason));
    memcpy(ret->fw_version, res.fw_version, sizeof(ret->fw_version));
}

static bool gate_peek_nonce(void *u, const uint8_t *msg, size_t len, uint8_t nonce[GATE_NONCE_LEN])
{
    (void)u;
    uint8_t buf[64];
    size_t n = 0;
    bool ok = attest_evidence_nonce(msg, len, buf, sizeof(buf), &n) && n == GATE_NONCE_LEN;
    if (ok)
        memcpy(nonce, buf, GATE_NONCE_LEN);
    return ok;
}

static int gate_random(void *u, uint8_t *buf, size_t len)
{
    (void)u;
    return getrandom(buf, len, 0) == (ssize_t)len ? 0 : -EIO;
}

/* A challenge on fleet/<id>/attest/challenge. MOSQ_ERR_NO_CONN: libmosquitto keeps the
 * message queued and sends it after the reconnect, so it is outstanding like a sent one. */
static int gate_send_challenge(struct daemon *d, const struct gate_action *a)
{
    uint8_t buf[128];
    size_t len = 0;
    char topic[MSG_TOPIC_MAX + 1];
    if (attest_challenge_encode(a->nonce, a->ttl_s, buf, sizeof(buf), &len) < 0) {
        log_event(LOG_ERR, a->node, "challenge_error", "cannot make a challenge");
        return -EINVAL;
    }
    snprintf(topic, sizeof(topic), "fleet/%s/attest/challenge", a->node);
    int rc = mosquitto_publish(d->edge, NULL, topic, (int)len, buf, 1, false);
    if (rc != MOSQ_ERR_SUCCESS && rc != MOSQ_ERR_NO_CONN) {
        log_event(LOG_WARNING, a->node, "challenge_error", "cannot send a challenge: %s",
                  mosquitto_strerror(rc));
        return -EIO;
    }
    attest_timer_arm(d, a->expiry_us);
    log_event(LOG_INFO, a->node, "challenge", "attestation challenge %s (nonce valid %u s)",
              rc == MOSQ_ERR_SUCCESS ? "sent" : "queued until the edge broker is back", a->ttl_s);
    return 0;
}

static int gate_act(void *u, const struct gate_action *a)
{
    struct daemon *d = u;
    int r = 0;
    switch (a->kind) {
    case GATE_ACT_CHALLENGE:
        return gate_send_challenge(d, a);
    case GATE_ACT_PERSIST:
        d->gate_wrote = true;
        r = registry_set_verdict(d->registry, a->node, gate_verdict_str(a->verdict), a->reason,
                                 a->fw_version, a->time, a->seen);
        if (r < 0)
            log_event(LOG_ERR, a->node, "registry_error", "cannot persist the verdict: %s",
                      strerror(-r));
        return r;
    case GATE_ACT_PUBLISH:
        d->gate_wrote = true;
        attest_publish_state(d, a->node, gate_verdict_str(a->verdict), a->reason, a->fw_version,
                             a->time);
        return 0;
    case GATE_ACT_COUNT:
        r = spool_count(d->spool, a->counter, 1);
        if (r < 0)
            log_event(LOG_ERR, a->node, a->counter, "cannot count %s: %s", a->counter,
                      strerror(-r));
        return r;
    case GATE_ACT_NOTE:
        log_event(a->priority, a->node, a->token, "%s", a->text);
        return 0;
    }
    return -EINVAL;
}

static struct gate_config gate_config_of(const struct daemon *d)
{
    return (struct gate_config){.required = d->cfg.attestation.required,
                                .judging = d->policy != NULL,
                                .nonce_ttl_s = d->cfg.attestation.nonce_ttl_s,
                                .interval_s = d->cfg.attestation.interval_s,
                                .per_node_rate = d->cfg.limits.per_node_rate,
                                .per_node_burst = d->cfg.limits.per_node_burst,
                                .evidence_max = MSG_TOKEN_MAX + 16};
}

/* ---- libmosquitto <-> sd-event glue ---- */

static int mosq_io_cb(sd_event_source *s, int fd, uint32_t revents, void *u);

/* The uplink's write-coalescing BIO while its TLS session is the one it was attached to. */
static BIO *up_wbuf(struct daemon *d)
{
    if (d->up == NULL || d->up_wbuf == NULL)
        return NULL;
    SSL *ssl = mosquitto_ssl_get(d->up);
    if (ssl == NULL || SSL_get_wbio(ssl) != d->up_wbuf) {
        d->up_wbuf = NULL;
        return NULL;
    }
    return d->up_wbuf;
}

/* Everything libmosquitto queued for the cloud: its packets become TLS records in the
 * coalescing buffer, which then leaves in one write (the rest after EPOLLOUT). */
static void uplink_write(struct daemon *d)
{
    if (mosquitto_want_write(d->up))
        (void)mosquitto_loop_write(d->up, 64);
    BIO *b = up_wbuf(d);
    if (b != NULL && tls_wbuf_pending(b) > 0) {
        int r = tls_wbuf_flush(b);
        if (r < 0 && r != -EAGAIN)
            log_debug("uplink write failed: %s", strerror(-r));
    }
}

static void io_update(struct daemon *d, struct mosquitto *m, sd_event_source **src, int *cur_fd)
{
    int fd = m ? mosquitto_socket(m) : -1;
    if (fd != *cur_fd) {
        *src = sd_event_source_disable_unref(*src);
        *cur_fd = -1;
        if (fd >= 0) {
            int r = sd_event_add_io(d->ev, src, fd, EPOLLIN, mosq_io_cb, d);
            if (r < 0) {
                log_err("cannot watch a broker socket: %s", strerror(-r));
                return;
            }
            *cur_fd = fd;
        }
    }
    if (*src != NULL) {
        uint32_t ev = (m == d->edge && d->edge_hold) ? 0 : EPOLLIN;
        if (m != d->up) {
            /* The edge's PUBACKs wait for the commit (edge_appended), not for the socket. */
            if (d->edge_appended == 0 && mosquitto_want_write(m))
                ev |= EPOLLOUT;
        } else if (d->up_state == UP_CONNECTING) {
            /* Writable once, when the TCP connection is made; the TLS handshake is then
             * driven by reads (the queued CONNECT makes want_write true all along). */
            if (!d->up_tcp_ready)
                ev |= EPOLLOUT;
        } else if (mosquitto_want_write(m) ||
                   (up_wbuf(d) != NULL && tls_wbuf_pending(d->up_wbuf) > 0)) {
            ev |= EPOLLOUT;
        }
        (void)sd_event_source_set_io_events(*src, ev);
    }
}

/* ---- edge ---- */

static void down_on_edge_connect(struct daemon *d);

static void edge_on_connect(struct mosquitto *m, void *u, int rc)
{
    struct daemon *d = u;
    if (rc != 0) {
        log_err("the edge broker refused the connection: %s", mosquitto_reason_string(rc));
        return;
    }
    d->edge_connected = true;
    d->edge_backoff_ms = 0;
    down_on_edge_connect(d);
    int r1 = mosquitto_subscribe(m, NULL, "fleet/+/up/#", 1);
    int r2 = mosquitto_subscribe(m, NULL, "fleet/+/attest/evidence", 1);
    int r3 = mosquitto_subscribe(m, NULL, "fleet/+/status", 1);
    if (r1 != MOSQ_ERR_SUCCESS || r2 != MOSQ_ERR_SUCCESS || r3 != MOSQ_ERR_SUCCESS)
        log_err("cannot subscribe on the edge broker: %s",
                mosquitto_strerror(r1 ? r1 : (r2 ? r2 : r3)));
    log_info("connected to the edge broker");
}

static void edge_on_disconnect(struct mosquitto *m, void *u, int rc)
{
    (void)m;
    struct daemon *d = u;
    d->edge_connected = false;
    if (!d->stopping)
        log_warn("lost the edge broker connection (%s), reconnecting", mosquitto_strerror(rc));
}

static void edge_on_message(struct mosquitto *m, void *u, const struct mosquitto_message *msg)
{
    (void)m;
    struct daemon *d = u;
    char node[RELAY_NODE_MAX + 1];
    char topic[SPOOL_TOPIC_MAX];
    size_t tl = strlen(msg->topic);

    d->edge_packets++;
    enum relay_kind k = relay_map_up(msg->topic, tl, d->cfg.uplink.topic_prefix, node, sizeof(node),
                                     topic, sizeof(topic));
    if (k == RELAY_NONE) {
        count_drop(d, NULL, "bad_topic", "a message on an unmapped or malformed topic");
        return;
    }
    struct gate_outcome o;
    if (k == RELAY_EVIDENCE) {
        o = gate_on_evidence(d->gate, node, msg->payload,
                             msg->payloadlen > 0 ? (size_t)msg->payloadlen : 0, now_us(), wall_s());
        if (o.decision == GATE_DROP)
            count_drop(d, node, o.drop_reason, o.drop_what);
        return;
    }
    if (k == RELAY_STATUS) {
        (void)gate_on_status(d->gate, node, now_us(), wall_s());
        return;
    }
    if (tl >= 9 && strcmp(msg->topic + tl - 9, "/up/state") == 0) {
        count_drop(d, node, "reserved_topic",
                   "a message on up/state (reserved for the gateway's verdict upstream)");
        return;
    }
    if (msg->payloadlen < 0 || msg->payloadlen > d->cfg.limits.max_message_bytes) {
        count_drop(d, node, "too_large", "a message larger than limits.max_message_bytes");
        return;
    }
    o = gate_on_up(d->gate, node, now_us(), wall_s());
    if (o.decision != GATE_RELAY) {
        count_drop(d, node, o.drop_reason, o.drop_what);
        return;
    }
    int r = spool_append(d->spool, node, topic, msg->payload, (size_t)msg->payloadlen, wall_s(),
                         false, NULL);
    if (r == 0)
        d->edge_appended++;
    if (r == -ENOSPC) {
        count_drop(d, node, "spool_full", "a message: the spool is at spool.max_bytes");
        return;
    }
    if (r == 0 && gate_touch_due(d->gate, node, wall_s(), LAST_SEEN_INTERVAL_S)) {
        int t = registry_touch(d->registry, node, wall_s());
        if (t < 0 && t != -ENOENT)
            log_event(LOG_WARNING, node, "registry_error", "cannot update last seen: %s",
                      strerror(-t));
    }
    if (r < 0) {
        /* The transaction is unusable: make sure nothing is acknowledged. */
        log_event(LOG_ERR, node, "spool_error", "cannot write to the spool: %s", strerror(-r));
        int fd = mosquitto_socket(d->edge);
        if (fd >= 0)
            shutdown(fd, SHUT_RDWR);
    }
}

static int edge_connect(struct daemon *d)
{
    const char *host = d->cfg.edge.socket[0] ? d->cfg.edge.socket : d->cfg.edge.host;
    int port = d->cfg.edge.socket[0] ? 0 : d->cfg.edge.port;
    int rc;
    if (d->edge_fd < 0 && mosquitto_socket(d->edge) < 0) {
        /* mosquitto_connect() once, then mosquitto_reconnect() (same session). */
        if (d->edge_configured) {
            rc = mosquitto_reconnect(d->edge);
        } else {
            /* MQTT v5 for the Receive Maximum above; a v5 session ends at disconnect
             * unless it has an expiry interval: "never", as clean_session=false in v3.1.1
             * (the broker's persistent_client_expiration still applies). libmosquitto
             * keeps these CONNECT properties for mosquitto_reconnect(). */
            mosquitto_property *props = NULL;
            rc =
                mosquitto_property_add_int32(&props, MQTT_PROP_SESSION_EXPIRY_INTERVAL, UINT32_MAX);
            if (rc == MOSQ_ERR_SUCCESS)
                rc = mosquitto_connect_bind_v5(d->edge, host, port, d->cfg.edge.keepalive, NULL,
                                               props);
            mosquitto_property_free_all(&props);
        }
        if (rc == MOSQ_ERR_SUCCESS)
            d->edge_configured = true;
        if (rc != MOSQ_ERR_SUCCESS) {
            log_warn("cannot connect to the edge broker at %s: %s", host,
                     rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
            return -ECONNREFUSED;
        }
    }
    return 0;
}

static int edge_timer_cb(sd_event_source *s, uint64_t usec, void *u)
{
    (void)s;
    (void)usec;
    struct daemon *d = u;
    if (edge_connect(d) < 0) {
        d->edge_backoff_ms = d->edge_backoff_ms ? d->edge_backoff_ms * 2 : 100;
        if (d->edge_backoff_ms > EDGE_BACKOFF_MAX_MS)
            d->edge_backoff_ms = EDGE_BACKOFF_MAX_MS;
        (void)sd_event_source_set_time_relative(d->edge_timer, (uint64_t)d->edge_backoff_ms * 1000);
        (void)sd_event_source_set_enabled(d->edge_timer, SD_EVENT_ONESHOT);
    }
    daemon_flush(d);
    return 0;
}

/* Commits the spool. The PUBACKs of node messages appended since the last commit leave
 * only after it succeeded (daemon_flush holds them back while edge_appended is set); if it
 * failed, the edge connection is closed without writing them, so the broker redelivers. */
static int daemon_commit(struct daemon *d)
{
    d->last_commit_us = now_us(); /* when it started: the gap does not count the fsync */
    int r = spool_commit(d->spool);
    if (r < 0 && d->edge_appended > 0) {
        log_event(LOG_ERR, NULL, "spool_error",
                  "cannot commit the spool (%s): closing the edge connection so that the "
                  "broker redelivers",
                  strerror(-r));
        int fd = mosquitto_socket(d->edge);
        if (fd >= 0)
            shutdown(fd, SHUT_RDWR);
    } else if (r < 0) {
        log_err("cannot commit the spool: %s", strerror(-r));
    }
    d->edge_appended = 0;
    return r;
}

/* Arms the commit timer to fire at `at` (CLOCK_MONOTONIC us) unless it fires earlier. */
static void commit_at(struct daemon *d, uint64_t at)
{
    uint64_t cur = 0;
    int enabled = 0;
    (void)sd_event_source_get_enabled(d->commit_timer, &enabled);
    if (enabled && sd_event_source_get_time(d->commit_timer, &cur) >= 0 && cur <= at)
        return;
    (void)sd_event_source_set_time(d->commit_timer, at);
    (void)sd_event_source_set_enabled(d->commit_timer, SD_EVENT_ONESHOT);
}

/* Reads what the edge socket holds (bounded) into the open spool transaction.
 * libmosquitto reads about one packet per call when nothing is in flight; a call that
 * delivered no message found the socket empty (errno cannot tell: libmosquitto's wake-up
 * write to its unused socketpair leaves EAGAIN behind for every queued PUBACK), so no
 * FIONREAD per packet is needed. A packet without a message ends the batch early; the
 * socket stays readable and epoll wakes us again. */
static void edge_read_batch(struct daemon *d)
{
    for (int i = 0; i < EDGE_BATCH_MAX; i++) {
        uint64_t before = d->edge_packets;
        if (mosquitto_loop_read(d->edge, 1) != MOSQ_ERR_SUCCESS || mosquitto_socket(d->edge) < 0 ||
            d->edge_packets == before)
            break;
    }
}

/* The edge socket became readable. Under load (a commit less than spool.commit_gap_ms ago)
 * the socket is left to fill until the commit timer reads it all at once; otherwise it is
 * read and committed now. Either way one read batch = one commit, then the PUBACKs. */
static void edge_readable(struct daemon *d, uint32_t revents)
{
    uint64_t t = now_us(), gap = (uint64_t)d->cfg.spool.commit_gap_ms * 1000ULL;
    if (!(revents & (EPOLLHUP | EPOLLERR)) && t - d->last_commit_us < gap) {
        d->edge_hold = true; /* io_update stops watching EPOLLIN meanwhile */
        commit_at(d, d->last_commit_us + gap);
        return;
    }
    edge_read_batch(d);
    if (d->edge_appended > 0)
        (void)daemon_commit(d);
}

/* ---- uplink ---- */

static bool uplink_is_data_mid(struct daemon *d, int mid, unsigned *ret_idx)
{
    for (unsigned i = 0; i < d->n_inflight; i++)
        if (d->inflight[i].mid == mid) {
            *ret_idx = i;
            return true;
        }
    return false;
}

static void uplink_on_publish(struct mosquitto *m, void *u, int mid)
{
    (void)m;
    struct daemon *d = u;
    unsigned i;
    /* PUBACKs come back in order: the oldest message in flight is almost always the one. */
    if (d->n_inflight > 0 && d->inflight[0].mid == mid)
        i = 0;
    else if (!uplink_is_data_mid(d, mid, &i))
        return;
    int64_t id = d->inflight[i].id;
    memmove(&d->inflight[i], &d->inflight[i + 1], (d->n_inflight - i - 1) * sizeof(d->inflight[0]));
    d->n_inflight--;
    /* Deleted (and counted as relayed_up) by the next group commit. */
    int r = spool_ack(d->spool, id);
    if (r < 0)
        log_err("cannot delete spool entry %lld: %s", (long long)id, strerror(-r));
    else
        d->relayed_up++;
}

/* A cloud command: into the down-queue, in the open transaction. The cloud's PUBACK is
 * already queued by libmosquitto; daemon_flush() commits (down_commit) before it is written. */
static void uplink_on_message(struct mosquitto *m, void *u, const struct mosquitto_message *msg)
{
    (void)m;
    struct daemon *d = u;
    char node[RELAY_NODE_MAX + 1];
    char topic[SPOOL_TOPIC_MAX];
    d->down_uncommitted = true; /* a drop counter is written too */
    if (!relay_map_down(msg->topic, strlen(msg->topic), d->cfg.uplink.topic_prefix, node,
                        sizeof(node), topic, sizeof(topic))) {
        count_drop(d, NULL, "down_bad_topic", "a cloud command on a malformed topic");
        return;
    }
    if (msg->payloadlen < 0 || msg->payloadlen > d->cfg.limits.max_message_bytes) {
        count_drop(d, node, "down_too_large", "a cloud command larger than max_message_bytes");
        return;
    }
    int r = downq_append(d->downq, node, topic, msg->payload, (size_t)msg->payloadlen, wall_s(),
                         d->cfg.spool.down_max_per_node, d->cfg.spool.down_max_bytes, NULL);
    if (r == -ENOBUFS) {
        count_drop(d, node, "down_queue_full",
                   "a cloud command: spool.down_max_per_node commands are already queued for "
                   "this node");
        return;
    }
    if (r == -EDQUOT) {
        count_drop(d, node, "down_spool_full",
                   "a cloud command: the down-queue is at spool.down_max_bytes");
        return;
    }
    if (r < 0) {
        /* The transaction is unusable: make sure the PUBACK never leaves. */
        log_event(LOG_ERR, node, "spool_error", "cannot queue a cloud command: %s", strerror(-r));
        int fd = mosquitto_socket(d->up);
        if (fd >= 0)
            shutdown(fd, SHUT_RDWR);
    }
}

/* Makes the commands appended by the uplink read path durable before their PUBACKs can be
 * written; on failure the uplink socket is shut down unwritten (the cloud redelivers). */
static void down_commit(struct daemon *d)
{
    if (!d->down_uncommitted)
        return;
    d->down_uncommitted = false;
    int r = daemon_commit(d); /* also holds back / drops the edge's PUBACKs on failure */
    if (r < 0) {
        log_event(LOG_ERR, NULL, "spool_error",
                  "cannot commit cloud commands (%s): closing the cloud connection so that the "
                  "broker redelivers",
                  strerror(-r));
        if (d->up != NULL) {
            int fd = mosquitto_socket(d->up);
            if (fd >= 0)
                shutdown(fd, SHUT_RDWR);
        }
    }
}

/* ---- down-queue delivery: edge broker, id order, QoS 1, bounded in flight ---- */

static bool down_take_mid(struct daemon *d, int mid, int64_t *ret_id)
{
    for (unsigned i = 0; i < d->n_down_inflight; i++)
        if (d->down_inflight[i].mid == mid) {
            *ret_id = d->down_inflight[i].id;
            memmove(&d->down_inflight[i], &d->down_inflight[i + 1],
                    (d->n_down_inflight - i - 1) * sizeof(d->down_inflight[0]));
            d->n_down_inflight--;
            return true;
        }
    return false;
}

static void down_count(struct daemon *d, const char *name)
{
    int r = spool_count(d->spool, name, 1);
    if (r < 0)
        log_err("cannot count %s: %s", name, strerror(-r));
}

/* The edge broker's PUBACK. Mids that are not in the table are someone else's (attestation
 * challenges are published on the same client). */
static void edge_on_publish(struct mosquitto *m, void *u, int mid, int reason_code,
                            const mosquitto_property *props)
{
    (void)m;
    (void)props;
    struct daemon *d = u;
    int64_t id;
    if (!down_take_mid(d, mid, &id))
        return;
    int r = downq_delete(d->downq, id);
    if (r < 0) {
        if (r != -ENOENT)
            log_err("cannot delete down-queue entry %lld: %s", (long long)id, strerror(-r));
        return;
    }
    if (reason_code >= 0x80) {
        char what[96];
        snprintf(what, sizeof(what), "a cloud command: the edge broker refused it (reason 0x%02x)",
                 (unsigned)reason_code);
        count_drop(d, NULL, "down_edge_refused", what);
        return;
    }
    d->relayed_down++;
    down_count(d, "relayed_down");
    /* Accepted, but no node session is subscribed to it: no node will get it. */
    if (reason_code == MQTT_RC_NO_MATCHING_SUBSCRIBERS)
        down_count(d, "down_no_subscribers");
}

/* libmosquitto keeps the unacknowledged publishes across mosquitto_reconnect() and sends
 * them again, with the same mids and DUP set, after the CONNACK (message__retry_check); the
 * in-flight table therefore stays as it is and the queue continues after it. */
static void down_on_edge_connect(struct daemon *d)
{
    if (d->n_down_inflight == 0)
        return;
    int r = spool_count(d->spool, "down_resent", d->n_down_inflight);
    if (r < 0)
        log_err("cannot count resent commands: %s", strerror(-r));
    log_info("%u cloud command(s) in flight are sent to the edge broker again", d->n_down_inflight);
}

/* Runs from daemon_flush(), never from on_connect: libmosquitto resends the previous
 * in-flight publishes after on_connect returns, and new ones must follow them. */
static void drain_down(struct daemon *d)
{
    /* Nothing queued beyond what is in flight: no query (this runs at every flush). */
    bool more = d->edge_connected && d->edge != NULL && !d->stopping &&
                downq_count(d->downq) > d->n_down_inflight;
    while (more && d->n_down_inflight < DOWN_INFLIGHT_MAX) {
        struct downq_msg msg;
        int r = downq_next(d->downq, d->down_last_sent_id, &msg);
        if (r < 0) {
            if (r != -ENOENT)
                log_err("cannot read the down-queue: %s", strerror(-r));
            return;
        }
        int mid = 0;
        int rc = mosquitto_publish(d->edge, &mid, msg.topic, (int)msg.len, msg.payload, 1, false);
        if (rc == MOSQ_ERR_SUCCESS || rc == MOSQ_ERR_NO_CONN) {
            /* MOSQ_ERR_NO_CONN: libmosquitto keeps the message queued (mid assigned) and
             * sends it after the reconnect, like the ones in flight. */
            if (msg.sent > 0)
                down_count(d, "down_resent");
            r = downq_mark_sent(d->downq, msg.id);
            if (r < 0 && r != -ENOENT)
                log_err("cannot mark down-queue entry %lld: %s", (long long)msg.id, strerror(-r));
            d->down_inflight[d->n_down_inflight].mid = mid;
            d->down_inflight[d->n_down_inflight].id = msg.id;
            d->n_down_inflight++;
            d->down_last_sent_id = msg.id;
            more = rc == MOSQ_ERR_SUCCESS;
        } else if (rc == MOSQ_ERR_NOMEM) {
            more = false; /* try again at the next flush */
        } else {
            /* Can never be sent as it is (e.g. over the broker's maximum packet size). */
            log_event(LOG_WARNING, msg.node, "down_edge_refused",
                      "cannot publish a cloud command to the edge broker: %s",
                      mosquitto_strerror(rc));
            r = downq_delete(d->downq, msg.id);
            if (r == 0)
                count_drop(d, msg.node, "down_edge_refused", "a cloud command");
            d->down_last_sent_id = msg.id;
        }
        downq_msg_clear(&msg);
    }
}

/* Why the last server certificate was refused (set by the verify callback; one thread). */
static char verify_error[160];

static int verify_cb(int ok, X509_STORE_CTX *x)
{
    if (!ok && verify_error[0] == '\0') {
        int e = X509_STORE_CTX_get_error(x);
        snprintf(verify_error, sizeof(verify_error), "server certificate refused: %s",
                 X509_verify_cert_error_string(e));
    }
    return ok;
}

/* The failure reason to log with a failed connection attempt (then forgotten). */
static const char *uplink_reason(struct daemon *d)
{
    if (verify_error[0] != '\0')
        snprintf(d->up_last_error, sizeof(d->up_last_error), "%s", verify_error);
    verify_error[0] = '\0';
    return d->up_last_error;
}

static void mosq_log(struct mosquitto *m, void *u, int level, const char *str)
{
    struct daemon *d = u;
    /* libmosquitto prints OpenSSL's reasons ("certificate verify failed") at error level and
     * empties OpenSSL's error queue: keep the first one for the next failure message. */
    (void)level;
    if (m == d->up && strncmp(str, "OpenSSL Error", 13) == 0 && d->up_last_error[0] == '\0')
        snprintf(d->up_last_error, sizeof(d->up_last_error), "%s", str);
    log_debug("%s: %s", m == d->edge ? "edge" : "uplink", str);
}

/* libmosquitto formats every packet it sends or receives into a log line (a malloc and a
 * vsnprintf each) as soon as a log callback is set; on the relay path that is a cost per
 * message. So the callback is set only at debug level, and on the uplink while it connects
 * (for OpenSSL's reason of a failed handshake). */
static void mosq_log_enable(struct daemon *d, struct mosquitto *m, bool connecting)
{
    bool debug = config_log_priority(&d->cfg) >= LOG_DEBUG;
    mosquitto_log_callback_set(m, debug || connecting ? mosq_log : NULL);
}

static void status_topic(struct daemon *d, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/gateway/%s/status", d->cfg.uplink.topic_prefix, d->cfg.uplink.client_id);
}

static void uplink_on_connect(struct mosquitto *m, void *u, int rc)
{
    struct daemon *d = u;
    char t[SPOOL_TOPIC_MAX + 64], sub[SPOOL_TOPIC_MAX];
    if (rc != 0) {
        log_event(LOG_ERR, NULL, "uplink_refused", "the cloud broker refused the connection: %s",
                  mosquitto_connack_string(rc));
        return;
    }
    d->up_state = UP_CONNECTED;
    d->up_backoff_ms = 0;
    mosq_log_enable(d, m, false);
    /* The handshake is done: from now on TLS records are coalesced (see tls_wbuf.h). */
    SSL *ssl = mosquitto_ssl_get(m);
    if (ssl != NULL && d->up_wbuf == NULL) {
        BIO *b = tls_wbuf_new(mosquitto_socket(m), UP_WBUF_CAP);
        if (b != NULL) {
            SSL_set0_wbio(ssl, b);
            d->up_wbuf = b;
        } else {
            log_warn("no memory for the uplink write buffer; writing record by record");
        }
    }
    (void)sd_event_source_set_enabled(d->up_timer, SD_EVENT_OFF);
    status_topic(d, t, sizeof(t));
    static const char online[] = "{\"state\":\"online\"}";
    int r1 = mosquitto_publish(m, NULL, t, (int)strlen(online), online, 1, true);
    snprintf(sub, sizeof(sub), "%s/cmd/+/#", d->cfg.uplink.topic_prefix);
    int r2 = mosquitto_subscribe(m, NULL, sub, 1);
    if (r1 != MOSQ_ERR_SUCCESS || r2 != MOSQ_ERR_SUCCESS)
        log_err("cannot announce/subscribe on the cloud broker: %s",
                mosquitto_strerror(r1 ? r1 : r2));
    log_info("connected to the cloud broker %s:%d; %llu message(s) spooled", d->cfg.uplink.host,
             d->cfg.uplink.port, (unsigned long long)spool_messages(d->spool));
    d->last_sent_id = 0;
    d->n_inflight = 0;
    /* Acknowledgements of the last connection are deleted before the replay reads. */
    (void)daemon_commit(d);
    drain(d);
}

static void uplink_on_disconnect(struct mosquitto *m, void *u, int rc)
{
    (void)m;
    struct daemon *d = u;
    bool was = d->up_state == UP_CONNECTED;
    d->up_state = UP_IDLE;
    d->up_wbuf = NULL; /* freed with the SSL */
    /* Everything in flight will be replayed from the spool in order. */
    d->n_inflight = 0;
    d->last_sent_id = 0;
    d->up_destroy_pending = true;
    if (d->stopping)
        return;
    if (was) {
        log_event(LOG_WARNING, NULL, "uplink_lost", "lost the cloud broker connection (%s)",
                  mosquitto_strerror(rc));
    } else {
        /* A failed TLS handshake lands here: say why (certificate verification, ...). */
        log_event(LOG_WARNING, NULL, "uplink_connect",
                  "cannot connect to the cloud broker %s:%d: %s%s%s", d->cfg.uplink.host,
                  d->cfg.uplink.port, mosquitto_strerror(rc), uplink_reason(d)[0] ? ": " : "",
                  d->up_last_error);
        d->up_last_error[0] = '\0';
    }
    uplink_schedule(d, -1);
}

static void uplink_destroy(struct daemon *d)
{
    d->up_io = sd_event_source_disable_unref(d->up_io);
    d->up_fd = -1;
    d->up_wbuf = NULL;
    if (d->up != NULL)
        mosquitto_destroy(d->up);
    d->up = NULL;
    d->up_destroy_pending = false;
    d->up_state = UP_IDLE;
    d->n_inflight = 0;
    d->last_sent_id = 0;
}

static int uplink_start(struct daemon *d)
{
    char t[SPOOL_TOPIC_MAX + 64];
    static const char offline[] = "{\"state\":\"offline\"}";
    int rc;

    uplink_destroy(d);
    d->up = mosquitto_new(d->cfg.uplink.client_id, false, d);
    if (d->up == NULL)
        return -ENOMEM;
    mosquitto_threaded_set(d->up, true);
    (void)mosquitto_int_option(d->up, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
    rc = mosquitto_void_option(d->up, MOSQ_OPT_SSL_CTX, d->ssl_ctx);
    if (rc == MOSQ_ERR_SUCCESS)
        rc = mosquitto_int_option(d->up, MOSQ_OPT_SSL_CTX_WITH_DEFAULTS, 0);
    status_topic(d, t, sizeof(t));
    if (rc == MOSQ_ERR_SUCCESS)
        rc = mosquitto_will_set(d->up, t, (int)strlen(offline), offline, 1, true);
    if (rc == MOSQ_ERR_SUCCESS)
        rc = mosquitto_max_inflight_messages_set(d->up, (unsigned)d->cfg.spool.max_inflight + 4);
    if (rc != MOSQ_ERR_SUCCESS) {
        log_err("cannot set up the cloud client: %s", mosquitto_strerror(rc));
        return -EINVAL;
    }
    mosquitto_connect_callback_set(d->up, uplink_on_connect);
    mosquitto_disconnect_callback_set(d->up, uplink_on_disconnect);
    mosquitto_publish_callback_set(d->up, uplink_on_publish);
    mosquitto_message_callback_set(d->up, uplink_on_message);
    mosq_log_enable(d, d->up, true);
    rc = mosquitto_connect_async(d->up, d->cfg.uplink.host, d->cfg.uplink.port,
                                 d->cfg.uplink.keepalive);
    if (rc != MOSQ_ERR_SUCCESS) {
        /* The TLS handshake may already fail in here (loopback answers at once). */
        log_event(LOG_WARNING, NULL, "uplink_connect",
                  "cannot connect to the cloud broker %s:%d: %s%s%s", d->cfg.uplink.host,
                  d->cfg.uplink.port,
                  rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc),
                  uplink_reason(d)[0] ? ": " : "", d->up_last_error);
        d->up_last_error[0] = '\0';
        return -ECONNREFUSED;
    }
    d->up_state = UP_CONNECTING;
    d->up_tcp_ready = false;
    return 0;
}

/* Exponential back-off with full jitter in [min, current]. delay_ms >= 0 forces a delay. */
static void uplink_schedule(struct daemon *d, int delay_ms)
{
    if (delay_ms < 0) {
        int b = d->up_backoff_ms ? d->up_backoff_ms * 2 : d->cfg.uplink.backoff_min_ms;
        if (b > d->cfg.uplink.backoff_max_ms)
            b = d->cfg.uplink.backoff_max_ms;
        d->up_backoff_ms = b;
        uint32_t rnd = 0;
        if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != sizeof(rnd))
            rnd = (uint32_t)now_us();
        int span = b - d->cfg.uplink.backoff_min_ms;
        delay_ms =
            d->cfg.uplink.backoff_min_ms + (span > 0 ? (int)(rnd % (uint32_t)(span + 1)) : 0);
        log_debug("next cloud connection attempt in %d ms", delay_ms);
    }
    (void)sd_event_source_set_time_relative(d->up_timer, (uint64_t)delay_ms * 1000);
    (void)sd_event_source_set_enabled(d->up_timer, SD_EVENT_ONESHOT);
}

static int up_timer_cb(sd_event_source *s, uint64_t usec, void *u)
{
    (void)s;
    (void)usec;
    struct daemon *d = u;
    if (d->up_state == UP_CONNECTING) {
        log_event(LOG_WARNING, NULL, "uplink_timeout",
                  "no answer from the cloud broker %s:%d within %d s", d->cfg.uplink.host,
                  d->cfg.uplink.port, d->cfg.uplink.connect_timeout_s);
        uplink_destroy(d);
        uplink_schedule(d, -1);
    } else if (d->up_state == UP_IDLE) {
        if (uplink_start(d) < 0) {
            uplink_destroy(d);
            uplink_schedule(d, -1);
        } else {
            (void)sd_event_source_set_time_relative(
                d->up_timer, (uint64_t)d->cfg.uplink.connect_timeout_s * 1000000ULL);
            (void)sd_event_source_set_enabled(d->up_timer, SD_EVENT_ONESHOT);
        }
    }
    daemon_flush(d);
    return 0;
}

/* ---- drain: spool -> cloud, in id order, rate-limited, bounded in flight ---- */

static int drain_timer_cb(sd_event_source *s, uint64_t usec, void *u)
{
    (void)s;
    (void)usec;
    daemon_flush(u);
    return 0;
}

static void drain(struct daemon *d)
{
    if (d->up_state != UP_CONNECTED || d->up == NULL || d->stopping)
        return;
    while (d->n_inflight < (unsigned)d->cfg.spool.max_inflight) {
        struct spool_msg msg;
        int r = spool_next(d->spool, d->last_sent_id, &msg);
        if (r == -ENOENT)
            return;
        if (r < 0) {
            log_err("cannot read the spool: %s", strerror(-r));
            return;
        }
        uint64_t t = now_us();
        if (!bucket_take(&d->drain_bucket, t, d->cfg.spool.drain_rate,
                         d->cfg.spool.drain_rate > 10 ? d->cfg.spool.drain_rate / 10 : 1)) {
            spool_msg_clear(&msg);
            uint64_t w = bucket_wait_us(&d->drain_bucket, d->cfg.spool.drain_rate);
            (void)sd_event_source_set_time_relative(d->drain_timer, w ? w : 1000);
            (void)sd_event_source_set_enabled(d->drain_timer, SD_EVENT_ONESHOT);
            return;
        }
        int mid = 0;
        int rc =
            mosquitto_publish(d->up, &mid, msg.topic, (int)msg.len, msg.payload, 1, msg.retain);
        if (rc != MOSQ_ERR_SUCCESS) {
            log_warn("cannot publish upstream: %s", mosquitto_strerror(rc));
            spool_msg_clear(&msg);
            return;
        }
        if (msg.id <= d->highest_sent_id) {
            r = spool_count(d->spool, "resent", 1);
            if (r < 0)
                log_err("cannot count a resent message: %s", strerror(-r));
        } else {
            d->highest_sent_id = msg.id;
        }
        d->inflight[d->n_inflight].mid = mid;
        d->inflight[d->n_inflight].id = msg.id;
        d->n_inflight++;
        d->last_sent_id = msg.id;
        spool_msg_clear(&msg);
    }
}

static int commit_timer_cb(sd_event_source *s, uint64_t usec, void *u)
{
    (void)s;
    (void)usec;
    struct daemon *d = u;
    if (d->edge_hold) {
        d->edge_hold = false;
        if (d->edge != NULL && mosquitto_socket(d->edge) >= 0)
            edge_read_batch(d);
    }
    (void)daemon_commit(d);
    daemon_flush(d);
    return 0;
}

/* Commits, drains, writes what libmosquitto queued, and re-arms the io sources. */
static void daemon_flush(struct daemon *d)
{
    down_commit(d); /* before anything can write the cloud's PUBACKs */
    drain(d);
    drain_down(d);
    /* Deletes (after cloud PUBACKs), counters and the like are group-committed by a short
     * timer; node messages by the edge read path (edge_readable), before any PUBACK. */
    if (spool_dirty(d->spool))
        commit_at(d, now_us() + COMMIT_DELAY_US);
    if (d->edge != NULL && mosquitto_socket(d->edge) >= 0 && d->edge_appended == 0 &&
        mosquitto_want_write(d->edge))
        (void)mosquitto_loop_write(d->edge, 64);
    if (d->up != NULL && d->up_state != UP_IDLE && mosquitto_socket(d->up) >= 0)
        uplink_write(d);
    if (d->up != NULL && d->up_state == UP_CONNECTING && mosquitto_socket(d->up) < 0 &&
        !d->up_destroy_pending) {
        /* libmosquitto closed the socket on a failed TLS handshake without calling
         * on_disconnect (net__socket_connect_tls() returns straight from loop_read). */
        log_event(LOG_WARNING, NULL, "uplink_connect",
                  "cannot connect to the cloud broker %s:%d: TLS handshake failed%s%s",
                  d->cfg.uplink.host, d->cfg.uplink.port, uplink_reason(d)[0] ? ": " : "",
                  d->up_last_error);
        d->up_last_error[0] = '\0';
        d->up_destroy_pending = true;
        d->up_state = UP_IDLE;
        uplink_schedule(d, -1);
    }
    if (d->up_destroy_pending && !d->stopping) {
        /* The uplink client is recreated per connection: its in-memory queue is dropped,
         * the spool is the only source of what is still to be sent. */
        d->up_io = sd_event_source_disable_unref(d->up_io);
        d->up_fd = -1;
        d->up_wbuf = NULL;
        mosquitto_destroy(d->up);
        d->up = NULL;
        d->up_destroy_pending = false;
    }
    io_update(d, d->edge, &d->edge_io, &d->edge_fd);
    if (d->up != NULL)
        io_update(d, d->up, &d->up_io, &d->up_fd);
    if (d->edge != NULL && mosquitto_socket(d->edge) < 0 && !d->stopping &&
        sd_event_source_get_enabled(d->edge_timer, NULL) == 0) {
        d->edge_backoff_ms = d->edge_backoff_ms ? d->edge_backoff_ms : 100;
        (void)sd_event_source_set_time_relative(d->edge_timer, (uint64_t)d->edge_backoff_ms * 1000);
        (void)sd_event_source_set_enabled(d->edge_timer, SD_EVENT_ONESHOT);
    }
}

/* With read-ahead OpenSSL may hold whole TLS records that mosquitto_loop_read() left
 * unprocessed (it stops after as many packets as are in flight, plus SSL_pending(), which
 * counts only decrypted bytes). The socket is then empty and epoll would not wake us for
 * them: process them now. Ends on a read that would block (a partial record; the rest
 * arrives on the socket) or when nothing is buffered. */
static void uplink_read_buffered(struct daemon *d)
{
    for (int i = 0; i < UP_BUFFERED_READS_MAX; i++) {
        if (d->up == NULL || d->up_state != UP_CONNECTED || mosquitto_socket(d->up) < 0)
            return;
        SSL *ssl = mosquitto_ssl_get(d->up);
        if (ssl == NULL || SSL_has_pending(ssl) != 1)
            return;
        errno = 0;
        if (mosquitto_loop_read(d->up, 1) != MOSQ_ERR_SUCCESS || errno == EAGAIN ||
            errno == EWOULDBLOCK)
            return;
    }
    /* Still buffered after the bound: come back from the event loop. */
    (void)sd_event_source_set_time_relative(d->up_buffered_timer, 0);
    (void)sd_event_source_set_enabled(d->up_buffered_timer, SD_EVENT_ONESHOT);
}

static int up_buffered_timer_cb(sd_event_source *s, uint64_t usec, void *u)
{
    (void)s;
    (void)usec;
    struct daemon *d = u;
    uplink_read_buffered(d);
    daemon_flush(d);
    return 0;
}

static int mosq_io_cb(sd_event_source *s, int fd, uint32_t revents, void *u)
{
    (void)s;
    struct daemon *d = u;
    if (d->edge != NULL && fd == d->edge_fd) {
        if (revents & (EPOLLIN | EPOLLHUP | EPOLLERR))
            edge_readable(d, revents);
        /* PUBACKs leave only after the commit above (in daemon_flush). */
    } else if (d->up != NULL && fd == d->up_fd) {
        if (d->up_state == UP_CONNECTING && (revents & (EPOLLERR | EPOLLHUP))) {
            int soerr = 0;
            socklen_t sl = sizeof(soerr);
            (void)getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
            log_event(LOG_WARNING, NULL, "uplink_connect",
                      "cannot connect to the cloud broker %s:%d: %s", d->cfg.uplink.host,
                      d->cfg.uplink.port, soerr ? strerror(soerr) : "connection closed");
            uplink_destroy(d);
            uplink_schedule(d, -1);
            daemon_flush(d);
            return 0;
        }
        if (revents & EPOLLOUT)
            d->up_tcp_ready = true;
        /* loop_read also advances the TLS handshake (want_connect), on either event. */
        if (revents & (EPOLLIN | EPOLLHUP | EPOLLERR) || d->up_state == UP_CONNECTING) {
            (void)mosquitto_loop_read(d->up, 64);
            uplink_read_buffered(d);
        }
    }
    daemon_flush(d);
    return 0;
}

/* ---- periodic work, signals, notify ---- */

static void update_status(struct daemon *d)
{
    char st[256];
    snprintf(st, sizeof(st),
             "edge %s, cloud %s; spooled %llu msg / %lld B; relayed up %llu, "
             "down %llu",
             d->edge_connected ? "up" : "down",
             d->up_state == UP_CONNECTED ? "up"
                                         : (d->up_state == UP_CONNECTING ? "connecting" : "down"),
             (unsigned long long)spool_messages(d->spool), (long long)spool_bytes(d->spool),
             (unsigned long long)d->relayed_up, (unsigned long long)d->relayed_down);
    if (strcmp(st, d->last_status) != 0) {
        memcpy(d->last_status, st, sizeof(st));
        (void)sd_notifyf(0, "STATUS=%s", st);
    }
}

static int tick_cb(sd_event_source *s, uint64_t usec, void *u)
{
    struct daemon *d = u;
    static unsigned n;
    if (d->edge != NULL && mosquitto_socket(d->edge) >= 0)
        (void)mosquitto_loop_misc(d->edge);
    if (d->up != NULL && d->up_state == UP_CONNECTED)
        (void)mosquitto_loop_misc(d->up);
    if (++n % 10 == 0) {
        uint64_t x = 0;
        int r = spool_expire(d->spool, wall_s(), d->cfg.spool.ttl_seconds, &x);
        if (r < 0)
            log_err("cannot expire old spool entries: %s", strerror(-r));
        else if (x > 0)
            log_event(LOG_WARNING, NULL, "expired",
                      "dropped %llu spooled message(s) older than spool.ttl_seconds",
                      (unsigned long long)x);
        r = downq_expire(d->downq, wall_s(), d->cfg.spool.down_ttl_s, d->down_last_sent_id, &x);
        if (r < 0)
            log_err("cannot expire old cloud commands: %s", strerror(-r));
        else if (x > 0)
            log_event(LOG_WARNING, NULL, "down_expired",
                      "dropped %llu queued cloud command(s) older than spool.down_ttl_s",
                      (unsigned long long)x);
    }
    daemon_flush(d);
    update_status(d);
    (void)sd_event_source_set_time(s, usec + 1000000ULL);
    return 0;
}

static int watchdog_cb(sd_event_source *s, uint64_t usec, void *u)
{
    struct daemon *d = u;
    (void)sd_notify(0, "WATCHDOG=1");
    (void)sd_event_source_set_time(s, usec + d->watchdog_usec / 2);
    return 0;
}

static int on_sigterm(sd_event_source *s, const struct signalfd_siginfo *si, void *u)
{
    (void)s;
    struct daemon *d = u;
    char t[SPOOL_TOPIC_MAX + 64];
    static const char offline[] = "{\"state\":\"offline\"}";
    log_notice("received %s, stopping", si->ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
    (void)sd_notify(0, "STOPPING=1");
    int r = daemon_commit(d);
    if (r == 0 && d->edge != NULL && mosquitto_socket(d->edge) >= 0) {
        (void)mosquitto_loop_write(d->edge, 64);
        d->stopping = true;
        (void)mosquitto_disconnect(d->edge);
        (void)mosquitto_loop_write(d->edge, 8);
    }
    d->stopping = true;
    if (d->up != NULL && d->up_state == UP_CONNECTED) {
        status_topic(d, t, sizeof(t));
        (void)mosquitto_publish(d->up, NULL, t, (int)strlen(offline), offline, 1, true);
        (void)mosquitto_disconnect(d->up);
        for (int i = 0; i < 8 && (mosquitto_want_write(d->up) ||
                                  (up_wbuf(d) != NULL && tls_wbuf_pending(d->up_wbuf) > 0));
             i++) {
            uplink_write(d);
            if (up_wbuf(d) != NULL && tls_wbuf_pending(d->up_wbuf) > 0)
                usleep(10000);
        }
    }
    return sd_event_exit(sd_event_source_get_event(s), 0);
}

/* One image of attestation.image_dir: logged with its outcome. */
static void image_report(void *ctx, const char *file, bool accepted, const char *detail)
{
    const char *dir = ctx;
    if (accepted)
        log_info("attestation: reference value from the image %s/%s (version %s)", dir, file,
                 detail);
    else
        log_event(LOG_WARNING, NULL, "image_refused",
                  "attestation: the image %s/%s is not a reference value: %s", dir, file, detail);
}

/* The attestation policy of cfg (NULL, and 0, when it names no reference source). */
static int policy_load(const struct config *cfg, struct attest_policy **ret, char *err,
                       size_t errlen)
{
    *ret = NULL;
    if (cfg->attestation.reference_file[0] == '\0' && cfg->attestation.image_dir[0] == '\0')
        return 0;
    return attest_policy_build(cfg->attestation.reference_file, cfg->attestation.image_dir,
                               cfg->attestation.signer_keys, image_report,
                               (void *)cfg->attestation.image_dir, ret, err, errlen);
}

static int on_sighup(sd_event_source *s, const struct signalfd_siginfo *si, void *u)
{
    (void)s;
    (void)si;
    struct daemon *d = u;
    struct config *n = calloc(1, sizeof(*n));
    struct config_error err;
    if (n == NULL)
        return 0;
    (void)sd_notify(0, "RELOADING=1");
    if (config_load(d->config_path, n, &err) < 0) {
        log_event(LOG_ERR, NULL, "config_invalid",
                  "reload refused, keeping the running configuration: %s", err.message);
        goto out;
    }
    if (memcmp(&n->edge, &d->cfg.edge, sizeof(n->edge)) != 0 ||
        memcmp(&n->uplink, &d->cfg.uplink, sizeof(n->uplink)) != 0 ||
        strcmp(n->spool.path, d->cfg.spool.path) != 0 ||
        n->spool.max_inflight != d->cfg.spool.max_inflight)
        log_notice("reload: changes to edge.*, uplink.*, spool.path or spool.max_inflight take "
                   "effect at the next restart");
    {
        struct attest_policy *np = NULL;
        char perr[512];
        if (policy_load(n, &np, perr, sizeof(perr)) < 0) {
            log_event(LOG_ERR, NULL, "config_invalid",
                      "reload refused, keeping the running configuration: attestation: %s", perr);
            goto out;
        }
        attest_policy_free(d->policy);
        d->policy = np;
        if (np != NULL)
            log_notice("attestation: %zu reference value(s) loaded", attest_policy_count(np));
    }
    d->cfg.attestation = n->attestation;
    d->cfg.limits = n->limits;
    d->cfg.spool.max_bytes = n->spool.max_bytes;
    d->cfg.spool.ttl_seconds = n->spool.ttl_seconds;
    d->cfg.spool.drain_rate = n->spool.drain_rate;
    d->cfg.spool.down_max_per_node = n->spool.down_max_per_node;
    d->cfg.spool.down_ttl_s = n->spool.down_ttl_s;
    d->cfg.spool.down_max_bytes = n->spool.down_max_bytes;
    d->cfg.spool.commit_gap_ms = n->spool.commit_gap_ms;
    d->cfg.log = n->log;
    d->cfg.registry = n->registry;
    {
        struct gate_config gc = gate_config_of(d);
        gate_reload(d->gate, &gc); /* verdicts, challenges and buckets are kept */
    }
    spool_set_quota(d->spool, n->spool.max_bytes);
    log_setup(config_log_priority(&d->cfg));
    if (d->edge != NULL)
        mosq_log_enable(d, d->edge, false);
    if (d->up != NULL)
        mosq_log_enable(d, d->up, d->up_state != UP_CONNECTED);
    log_notice("configuration reloaded from %s", d->config_path);
out:
    (void)sd_notify(0, "READY=1");
    free(n);
    return 0;
}

static void print_counter(const char *name, uint64_t n, void *u)
{
    (void)u;
    log_info("counter %s = %llu", name, (unsigned long long)n);
}

static void usage(FILE *f)
{
    fprintf(f, "Usage: fleetgwd [--config FILE] [--check-config]\n"
               "  --config FILE   configuration (default " CONFIG_DEFAULT_PATH ")\n"
               "  --check-config  validate the configuration and exit (0 when valid)\n");
}

/* ---- control socket ---- */

static void json_add_str(json_object *o, const char *k, const char *v)
{
    json_object_object_add(o, k, json_object_new_string(v));
}

static void json_add_int(json_object *o, const char *k, int64_t v)
{
    json_object_object_add(o, k, json_object_new_int64(v));
}

static json_object *node_json(const struct registry_node *n, bool with_key)
{
    json_object *o = json_object_new_object();
    json_add_str(o, "id", n->id);
    json_add_str(o, "device_class", n->device_class);
    json_add_str(o, "fw_version", n->fw_version);
    json_add_str(o, "verdict", n->verdict);
    json_add_str(o, "reason", n->reason);
    json_add_int(o, "verdict_time", n->verdict_time);
    json_add_int(o, "last_seen", n->last_seen);
    json_add_int(o, "added", n->added);
    if (with_key) {
        char hex[2 * REGISTRY_PUB_LEN + 1];
        for (size_t i = 0; i < REGISTRY_PUB_LEN; i++)
            snprintf(hex + 2 * i, 3, "%02x", n->iak_pub[i]);
        json_add_str(o, "iak_pub", hex);
    }
    return o;
}

static int node_list_cb(const struct registry_node *n, void *u)
{
    json_object_array_add(u, node_json(n, false));
    return 0;
}

static void counter_json_cb(const char *name, uint64_t n, void *u)
{
    json_add_int(u, name, (int64_t)n);
}

static json_object *ctl_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static json_object *ctl_fail(const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "ok", json_object_new_boolean(0));
    json_add_str(o, "error", msg);
    return o;
}

static json_object *ctl_handle(const struct ctl_request *req, void *u)
{
    struct daemon *d = u;
    struct registry_node n;
    json_object *o = json_object_new_object();
    json_object *counters = NULL;
    int r;

    json_object_object_add(o, "ok", json_object_new_boolean(1));
    switch (req->cmd) {
    case CTL_STATUS:
    case CTL_SPOOL:
        json_add_str(o, "edge", d->edge_connected ? "connected" : "disconnected");
        json_add_str(o, "cloud",
                     d->up_state == UP_CONNECTED    ? "connected"
                     : d->up_state == UP_CONNECTING ? "connecting"
                                                    : "disconnected");
        json_add_int(o, "spooled_messages", (int64_t)spool_messages(d->spool));
        json_add_int(o, "spooled_bytes", spool_bytes(d->spool));
        json_add_int(o, "spool_max_bytes", d->cfg.spool.max_bytes);
        json_add_int(o, "inflight", d->n_inflight);
        json_add_int(o, "down_queued", (int64_t)downq_count(d->downq));
        json_add_int(o, "down_bytes", downq_bytes(d->downq));
        json_add_int(o, "down_max_bytes", d->cfg.spool.down_max_bytes);
        json_add_int(o, "down_inflight", d->n_down_inflight);
        counters = json_object_new_object();
        if (spool_counters_foreach(d->spool, counter_json_cb, counters) < 0)
            log_err("cannot read the counters");
        json_object_object_add(o, "counters", counters);
        if (req->cmd == CTL_SPOOL) {
            struct spool_msg m;
            if (spool_next(d->spool, 0, &m) == 0) {
                json_add_int(o, "oldest_age_s", wall_s() - m.ts);
                spool_msg_clear(&m);
            } else {
                json_add_int(o, "oldest_age_s", 0);
            }
            struct downq_msg dm;
            if (downq_next(d->downq, 0, &dm) == 0) {
                json_add_int(o, "down_oldest_age_s", wall_s() - dm.ts);
                downq_msg_clear(&dm);
            } else {
                json_add_int(o, "down_oldest_age_s", 0);
            }
        }
        return o;
    case CTL_NODES: {
        json_object *arr = json_object_new_array();
        json_object_object_add(o, "nodes", arr);
        r = registry_foreach(d->registry, node_list_cb, arr);
        if (r < 0)
            break;
        return o;
    }
    case CTL_NODE_ADD:
        r = registry_add(d->registry, req->iak_pub, req->device_class, wall_s(), &n);
        if (r == -EEXIST) {
            char id[REGISTRY_ID_LEN + 1];
            if (registry_node_id(req->iak_pub, id) < 0)
                id[0] = '\0';
            json_object_put(o);
            return ctl_fail("node %s is already enrolled", id);
        }
        if (r < 0)
            break;
        log_event(LOG_NOTICE, n.id, "enrolled", "node enrolled (device class %s)", n.device_class);
        gate_forget(d->gate, n.id, false);
        json_object_object_add(o, "node", node_json(&n, true));
        return o;
    case CTL_NODE_SHOW:
        r = registry_get(d->registry, req->id, &n);
        if (r == -ENOENT) {
            json_object_put(o);
            return ctl_fail("node %s is not enrolled", req->id);
        }
        if (r < 0)
            break;
        json_object_object_add(o, "node", node_json(&n, true));
        return o;
    case CTL_ATTEST: {
        /* An operator's request: a fresh nonce now, replacing any outstanding one. */
        r = registry_get(d->registry, req->id, &n);
        if (r == -ENOENT) {
            json_object_put(o);
            return ctl_fail("node %s is not enrolled", req->id);
        }
        if (r < 0)
            break;
        r = gate_request_challenge(d->gate, req->id, now_us(), wall_s());
        if (r == -ENOENT) {
            json_object_put(o);
            return ctl_fail("node %s is not enrolled", req->id);
        }
        if (r == -ENOSPC || r == -ENOTCONN) {
            json_object_put(o);
            return ctl_fail(r == -ENOSPC ? "too many nodes in the table to challenge %s"
                                         : "cannot send a challenge to %s: the edge broker "
                                           "client refused it (see the log)",
                            req->id);
        }
        if (r < 0)
            break;
        log_event(LOG_NOTICE, req->id, "attest_requested", "re-attestation requested");
        json_add_str(o, "challenged", req->id);
        return o;
    }
    case CTL_NODE_REMOVE:
        r = registry_remove(d->registry, req->id);
        if (r == -ENOENT) {
            json_object_put(o);
            return ctl_fail("node %s is not enrolled", req->id);
        }
        if (r < 0)
            break;
        log_event(LOG_NOTICE, req->id, "removed", "node removed from the registry");
        gate_forget(d->gate, req->id, true);
        return o;
    default:
        r = -EINVAL;
        break;
    }
    json_object_put(o);
    return ctl_fail("registry error: %s", strerror(-r));
}

/* Reads the first line of path (the edge broker password) into buf. */
static int read_secret(const char *path, char *buf, size_t cap)
{
    int r = 0;
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return -errno;
    if (fgets(buf, (int)cap, f) == NULL) {
        r = -ENODATA;
        goto out;
    }
    buf[strcspn(buf, "\r\n")] = '\0';
out:
    fclose(f);
    return r;
}

static int run(struct daemon *d)
{
    int r;
    char err[512];

    r = spool_open(d->cfg.spool.path, d->cfg.spool.max_bytes, &d->spool);
    if (r < 0) {
        log_event(LOG_ERR, NULL, "spool_open", "cannot open the spool %s: %s", d->cfg.spool.path,
                  strerror(-r));
        return 73; /* EX_CANTCREAT */
    }
    r = downq_open(d->spool, &d->downq);
    if (r < 0) {
        log_event(LOG_ERR, NULL, "spool_open", "cannot open the down-queue in %s: %s",
                  d->cfg.spool.path, strerror(-r));
        return 73; /* EX_CANTCREAT */
    }
    r = registry_open(d->cfg.registry.path, &d->registry);
    if (r < 0) {
        log_event(LOG_ERR, NULL, "registry_open", "cannot open the registry %s: %s",
                  d->cfg.registry.path, strerror(-r));
        return 73; /* EX_CANTCREAT */
    }
    r = policy_load(&d->cfg, &d->policy, err, sizeof(err));
    if (r < 0) {
        log_event(LOG_ERR, NULL, "config_invalid", "attestation: %s", err);
        return CONFIG_EXIT_RANGE;
    }
    if (d->policy != NULL)
        log_info("attestation: %zu reference value(s)%s%s%s%s%s", attest_policy_count(d->policy),
                 d->cfg.attestation.reference_file[0] ? " from " : "",
                 d->cfg.attestation.reference_file,
                 !d->cfg.attestation.image_dir[0]       ? ""
                 : d->cfg.attestation.reference_file[0] ? " and the images in "
                                                        : " from the images in ",
                 d->cfg.attestation.image_dir,
                 d->cfg.attestation.required ? "" : " (not required for relaying)");
    if (!d->cfg.attestation.required)
        log_event(LOG_WARNING, NULL, "attestation_off",
                  "attestation.required is false: telemetry of every node on a valid topic is "
                  "relayed without attestation");
    struct tpm_tls_config tc = {
        .tcti = d->cfg.uplink.tcti[0] ? d->cfg.uplink.tcti : NULL,
        .key = d->cfg.uplink.key,
        .cert_file = d->cfg.uplink.cert_file,
        .ca_file = d->cfg.uplink.ca_file,
        .server_name = d->cfg.uplink.server_name,
    };
    r = tpm_tls_ctx_new(&tc, &d->ssl_ctx, err, sizeof(err));
    if (r < 0) {
        log_event(LOG_ERR, NULL, "tls_setup", "cannot set up TLS to the cloud broker: %s", err);
        return 69; /* EX_UNAVAILABLE */
    }
    /* Keep tpm/'s verification mode, add a callback that remembers why a server
     * certificate was refused, for the log. */
    SSL_CTX_set_verify(d->ssl_ctx, SSL_CTX_get_verify_mode(d->ssl_ctx), verify_cb);
    /* Read ahead: one read() takes in every TLS record the socket holds (the cloud sends one
     * record per PUBACK) instead of two reads per record; see uplink_read_buffered(). */
    SSL_CTX_set_read_ahead(d->ssl_ctx, 1);
    d->inflight = calloc((size_t)d->cfg.spool.max_inflight, sizeof(*d->inflight));
    if (d->inflight == NULL)
        return 71;
    static const struct gate_ops gops = {gate_load,   gate_verify, gate_peek_nonce,
                                         gate_random, gate_act,    NULL};
    struct gate_ops ops = gops;
    ops.ctx = d;
    struct gate_config gc = gate_config_of(d);
    r = gate_new(&gc, &ops, NODE_TABLE_MAX, &d->gate);
    if (r < 0) {
        log_err("cannot set up the node table: %s", strerror(-r));
        return 71;
    }

    r = sd_event_default(&d->ev);
    if (r >= 0)
        r = sd_event_add_signal(d->ev, NULL, SIGTERM, on_sigterm, d);
    if (r >= 0)
        r = sd_event_add_signal(d->ev, NULL, SIGINT, on_sigterm, d);
    if (r >= 0)
        r = sd_event_add_signal(d->ev, NULL, SIGHUP, on_sighup, d);
    if (r >= 0)
        r = sd_event_add_time_relative(d->ev, &d->edge_timer, CLOCK_MONOTONIC, 0, 0, edge_timer_cb,
                                       d);
    if (r >= 0)
        r = sd_event_add_time_relative(d->ev, &d->up_timer, CLOCK_MONOTONIC, 0, 0, up_timer_cb, d);
    if (r >= 0)
        r = sd_event_add_time_relative(d->ev, &d->drain_timer, CLOCK_MONOTONIC, 1000,
                                       TIMER_ACCURACY_US, drain_timer_cb, d);
    if (r >= 0)
        r = sd_event_source_set_enabled(d->drain_timer, SD_EVENT_OFF);
    if (r >= 0)
        r = sd_event_add_time_relative(d->ev, &d->commit_timer, CLOCK_MONOTONIC, COMMIT_DELAY_US,
                                       TIMER_ACCURACY_US, commit_timer_cb, d);
    if (r >= 0)
        r = sd_event_source_set_enabled(d->commit_timer, SD_EVENT_OFF);
    if (r >= 0)
        r = sd_event_add_time_relative(d->ev, &d->up_buffered_timer, CLOCK_MONOTONIC, 0,
                                       TIMER_ACCURACY_US, up_buffered_timer_cb, d);
    if (r >= 0)
        r = sd_event_source_set_enabled(d->up_buffered_timer, SD_EVENT_OFF);
    if (r >= 0)
        r = sd_event_add_time_relative(d->ev, &d->tick, CLOCK_MONOTONIC, 1000000, 0, tick_cb, d);
    if (r >= 0)
        r = sd_event_source_set_enabled(d->tick, SD_EVENT_ON);
    if (r >= 0) /* armed by attest_challenge at the earliest outstanding expiry */
        r = sd_event_add_time_relative(d->ev, &d->attest_timer, CLOCK_MONOTONIC, 0, 0,
                                       attest_timer_cb, d);
    if (r >= 0)
        r = sd_event_source_set_enabled(d->attest_timer, SD_EVENT_OFF);
    if (r >= 0 && sd_watchdog_enabled(0, &d->watchdog_usec) > 0) {
        r = sd_event_add_time_relative(d->ev, &d->watchdog, CLOCK_MONOTONIC, d->watchdog_usec / 2,
                                       0, watchdog_cb, d);
        if (r >= 0)
            r = sd_event_source_set_enabled(d->watchdog, SD_EVENT_ON);
    }
    if (r < 0) {
        log_err("cannot set up the event loop: %s", strerror(-r));
        return 71;
    }

    r = ctl_server_start(d->ev, d->cfg.control.socket, d->cfg.control.group, ctl_handle, d, &d->ctl,
                         err, sizeof(err));
    if (r < 0) {
        log_event(LOG_ERR, NULL, "control_socket", "cannot open the control socket: %s", err);
        return 69;
    }

    d->edge = mosquitto_new(d->cfg.edge.client_id, false, d);
    if (d->edge == NULL)
        return 71;
    mosquitto_threaded_set(d->edge, true);
    if (mosquitto_int_option(d->edge, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5) !=
            MOSQ_ERR_SUCCESS ||
        mosquitto_int_option(d->edge, MOSQ_OPT_RECEIVE_MAXIMUM, EDGE_RECEIVE_MAX) !=
            MOSQ_ERR_SUCCESS) {
        log_err("cannot set the edge MQTT options");
        return 71;
    }
    if (d->cfg.edge.username[0] != '\0') {
        char pw[256] = "";
        if (d->cfg.edge.password_file[0] != '\0') {
            r = read_secret(d->cfg.edge.password_file, pw, sizeof(pw));
            if (r < 0) {
                log_err("cannot read edge.password_file %s: %s", d->cfg.edge.password_file,
                        strerror(-r));
                return 69;
            }
        }
        r = mosquitto_username_pw_set(d->edge, d->cfg.edge.username, pw[0] ? pw : NULL);
        explicit_bzero(pw, sizeof(pw));
        if (r != MOSQ_ERR_SUCCESS) {
            log_err("cannot set the edge credentials: %s", mosquitto_strerror(r));
            return 69;
        }
    }
    mosquitto_connect_callback_set(d->edge, edge_on_connect);
    mosquitto_disconnect_callback_set(d->edge, edge_on_disconnect);
    mosquitto_message_callback_set(d->edge, edge_on_message);
    mosquitto_publish_v5_callback_set(d->edge, edge_on_publish);
    mosq_log_enable(d, d->edge, false);
    if (edge_connect(d) < 0)
        (void)sd_event_source_set_enabled(d->edge_timer, SD_EVENT_ONESHOT);
    (void)sd_event_source_set_enabled(d->up_timer, SD_EVENT_ONESHOT); /* connect now */
    daemon_flush(d);

    log_notice("started: edge %s, cloud %s:%d, spool %s (%llu message(s) waiting)",
               d->cfg.edge.socket[0] ? d->cfg.edge.socket : d->cfg.edge.host, d->cfg.uplink.host,
               d->cfg.uplink.port, d->cfg.spool.path, (unsigned long long)spool_messages(d->spool));
    if (downq_count(d->downq) > 0)
        log_notice("%llu cloud command(s) queued for the edge broker",
                   (unsigned long long)downq_count(d->downq));
    (void)sd_notify(0, "READY=1");
    update_status(d);
    r = sd_event_loop(d->ev);
    if (r < 0) {
        log_err("event loop failed: %s", strerror(-r));
        return 70;
    }
    r = spool_commit(d->spool);
    if (spool_counters_foreach(d->spool, print_counter, NULL) < 0)
        log_err("cannot read the counters");
    log_notice("stopped");
    return r < 0 ? 70 : 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"check-config", no_argument, NULL, 'C'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    struct daemon *d = calloc(1, sizeof(*d));
    struct config_error err;
    bool check_only = false;
    int c, ret;

    /* Block the signals sd-event handles before anything can start a thread (the tpm2
     * provider's tabrmd TCTI runs a GDBus worker): a thread created earlier would keep
     * them unblocked and take the default action (termination) for the whole process. */
    sigset_t ss;
    sigemptyset(&ss);
    sigaddset(&ss, SIGTERM);
    sigaddset(&ss, SIGINT);
    sigaddset(&ss, SIGHUP);
    sigprocmask(SIG_BLOCK, &ss, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (d == NULL)
        return 71;
    d->config_path = CONFIG_DEFAULT_PATH;
    d->edge_fd = -1;
    d->up_fd = -1;
    log_setup(LOG_INFO);
    while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            d->config_path = optarg;
            break;
        case 'C':
            check_only = true;
            break;
        case 'h':
            usage(stdout);
            free(d);
            return 0;
        default:
            usage(stderr);
            free(d);
            return CONFIG_EXIT_USAGE;
        }
    }
    if (optind != argc) {
        usage(stderr);
        free(d);
        return CONFIG_EXIT_USAGE;
    }
    if (config_load(d->config_path, &d->cfg, &err) < 0) {
        log_event(LOG_ERR, NULL, "config_invalid", "%s", err.message);
        ret = (int)err.exit_code;
        free(d);
        return ret;
    }
    if (check_only) {
        /* The attestation sources too: the reference file and the signed images (each one
         * reported), as the daemon would load them. */
        char perr[512];
        struct attest_policy *pol = NULL;
        if (policy_load(&d->cfg, &pol, perr, sizeof(perr)) < 0) {
            log_event(LOG_ERR, NULL, "config_invalid", "attestation: %s", perr);
            free(d);
            return CONFIG_EXIT_RANGE;
        }
        if (pol != NULL)
            printf("%s: %zu attestation reference value(s)\n", d->config_path,
                   attest_policy_count(pol));
        attest_policy_free(pol);
        printf("%s: configuration is valid\n", d->config_path);
        free(d);
        return 0;
    }
    log_setup(config_log_priority(&d->cfg));
    mosquitto_lib_init();
    ret = run(d);

    uplink_destroy(d);
    if (d->edge != NULL)
        mosquitto_destroy(d->edge);
    d->edge_io = sd_event_source_disable_unref(d->edge_io);
    sd_event_source_disable_unref(d->edge_timer);
    sd_event_source_disable_unref(d->up_timer);
    sd_event_source_disable_unref(d->drain_timer);
    sd_event_source_disable_unref(d->commit_timer);
    sd_event_source_disable_unref(d->up_buffered_timer);
    sd_event_source_disable_unref(d->tick);
    sd_event_source_disable_unref(d->attest_timer);
    sd_event_source_disable_unref(d->watchdog);
    ctl_server_free(d->ctl);
    attest_policy_free(d->policy);
    registry_close(d->registry);
    sd_event_unref(d->ev);
    tpm_tls_ctx_free(d->ssl_ctx);
    downq_close(d->downq);
    spool_close(d->spool);
    free(d->inflight);
    gate_free(d->gate);
    free(d);
    mosquitto_lib_cleanup();
    return ret;
}
