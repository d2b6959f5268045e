/* edge.c: the edge side of fleetgwd. Owns the edge broker client (connect, reconnect
 * back-off, subscriptions, the batched read that feeds the spool's open transaction), the
 * ingress policy (topic mapping, size limit, reserved topics, the gate's relay/drop
 * decision, drop counters and their once-per-reason warning) and the delivery of the
 * down-queue to the edge broker (id order, QoS 1, at most DOWN_INFLIGHT_MAX in flight).
 * The ordering of spool commits and PUBACKs is fleetgwd.c's (daemon_commit, daemon_flush). */
#define _GNU_SOURCE
#include "daemon.h"

#include <fleetgw/secret_file.h>

#include <errno.h>
#include <fleetgw/msg.h>
#include <mqtt_protocol.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

static void down_on_edge_connect(struct daemon *d);

/* Back at the edge broker after being away from it (fleetgwd stopped, or the connection
 * lost): the broker hands over at once what it queued for fleetgwd's session meanwhile, so
 * the gate credits every node's rate limit with the time away (gate_credit_absence). The
 * time is counted from the last moment fleetgwd knew itself connected: the lost
 * connection, or across a restart the edge_seen mark in the spool (written every
 * EDGE_SEEN_EVERY_S, so a crash over-counts by at most that). */
static void edge_credit_absence(struct daemon *d)
{
    int64_t now = wall_s();
    if (d->edge_away_since > 0 && now > d->edge_away_since) {
        int64_t away = now - d->edge_away_since;
        gate_credit_absence(d->gate, (double)away, now_us());
        log_info("back at the edge broker after %llds away: each node's rate limit is credited "
                 "with %llds of limits.per_node_rate for the backlog",
                 (long long)away, (long long)away);
    }
    d->edge_away_since = 0;
    spool_set_edge_seen(d->spool, now);
}

static void edge_on_connect(struct mosquitto *m, void *u, int rc)
{
    struct daemon *d = u;
    if (rc != 0) {
        log_err("the edge broker refused the connection: %s", mosquitto_reason_string(rc));
        return;
    }
    d->edge_connected = true;
    d->edge_backoff_ms = 0;
    edge_credit_absence(d);
    down_on_edge_connect(d);
    /* What the relay and the gate take from the nodes (proto's topic grammar). */
    static const enum msg_topic wanted[] = {MSG_TOPIC_UP,          MSG_TOPIC_ATTEST_EVIDENCE,
                                            MSG_TOPIC_STATUS,      MSG_TOPIC_OTA_ACK,
                                            MSG_TOPIC_OTA_REQUEST, MSG_TOPIC_OTA_STATUS};
    for (size_t i = 0; i < sizeof(wanted) / sizeof(wanted[0]); i++) {
        char filter[MSG_TOPIC_MAX + 1];
        int r = msg_topic_filter(wanted[i], NULL, 0, filter, sizeof(filter), NULL) == MSG_OK
                    ? mosquitto_subscribe(m, NULL, filter, 1)
                    : MOSQ_ERR_INVAL;
        if (r != MOSQ_ERR_SUCCESS)
            log_err("cannot subscribe to %s on the edge broker: %s", filter, mosquitto_strerror(r));
    }
    log_info("connected to the edge broker");
}

static void edge_on_disconnect(struct mosquitto *m, void *u, int rc)
{
    (void)m;
    struct daemon *d = u;
    if (d->edge_connected && !d->stopping)
        d->edge_away_since = wall_s();
    d->edge_connected = false;
    if (!d->stopping)
        log_warn("lost the edge broker connection (%s), reconnecting", mosquitto_strerror(rc));
}

/* The gate holds the message while the node's verdict is pending (issue 15): it goes to the
 * spool marked held, in the same transaction as the rest of the batch (so before its
 * PUBACK), and reaches the drain only when the gate releases it. */
static void edge_hold(struct daemon *d, const char *node, const char *topic,
                      const struct mosquitto_message *msg)
{
    int r = spool_hold(d->spool, node, topic, msg->payload, (size_t)msg->payloadlen, wall_s(),
                       d->cfg.attestation.hold_max_bytes, NULL);
    if (r == 0) {
        d->edge_appended++;
        int c = spool_count(d->spool, "held", 1);
        if (c < 0)
            log_event(LOG_ERR, node, "held", "cannot count held: %s", strerror(-c));
        return;
    }
    gate_hold_failed(d->gate, node);
    if (r == -ENOBUFS)
        count_drop(d, node, "hold_full",
                   "a message of a node whose verdict is pending: attestation.hold_max_bytes "
                   "are held already");
    else if (r == -ENOSPC)
        count_drop(d, node, "spool_full", "a message: the spool is at spool.max_bytes");
    else {
        log_event(LOG_ERR, node, "spool_error", "cannot write to the spool: %s", strerror(-r));
        int fd = mosquitto_socket(d->edge);
        if (fd >= 0)
            shutdown(fd, SHUT_RDWR); /* the transaction is unusable: nothing acknowledged */
    }
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
        ota_xfer_after_gate(d); /* a judgement of a node in an OTA test goes to its campaign */
        if (o.decision == GATE_DROP)
            count_drop(d, node, o.drop_reason, o.drop_what);
        return;
    }
    if (k == RELAY_STATUS) {
        (void)gate_on_status(d->gate, node, now_us(), wall_s());
        return;
    }
    if (k == RELAY_OTA_ACK || k == RELAY_OTA_REQUEST || k == RELAY_OTA_STATUS) {
        ota_xfer_on_message(d, k, node, msg->payload,
                            msg->payloadlen > 0 ? (size_t)msg->payloadlen : 0);
        return;
    }
    if (k == RELAY_RESERVED) {
        count_drop(d, node, "reserved_topic",
                   "a message on up/state (reserved for the gateway's verdict upstream)");
        return;
    }
    if (msg->payloadlen < 0 || msg->payloadlen > d->cfg.limits.max_message_bytes) {
        count_drop(d, node, "too_large", "a message larger than limits.max_message_bytes");
        return;
    }
    o = gate_on_up(d->gate, node, now_us(), wall_s());
    if (o.decision == GATE_HOLD) {
        edge_hold(d, node, topic, msg);
        return;
    }
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
        gate_io_batch(d); /* committed with the spool's batch */
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

int edge_connect(struct daemon *d)
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
            /* Maximum Packet Size: the broker never sends fleetgwd a packet larger than the
             * largest node message it takes (a telemetry message of limits.max_message_bytes,
             * or evidence) plus room for the topic and the MQTT header, so an oversized
             * message is never read into memory here. */
            uint32_t biggest = (uint32_t)d->cfg.limits.max_message_bytes;
            if (biggest < MSG_TOKEN_MAX + 16u)
                biggest = MSG_TOKEN_MAX + 16u;
            if (rc == MOSQ_ERR_SUCCESS)
                rc = mosquitto_property_add_int32(&props, MQTT_PROP_MAXIMUM_PACKET_SIZE,
                                                  biggest + EDGE_PACKET_OVERHEAD);
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

int edge_timer_cb(sd_event_source *s, uint64_t usec, void *u)
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
    return 0;
}

/* Reads what the edge socket holds (bounded) into the open spool transaction.
 * libmosquitto reads about one packet per call when nothing is in flight; a call that
 * delivered no message found the socket empty (errno cannot tell: libmosquitto's wake-up
 * write to its unused socketpair leaves EAGAIN behind for every queued PUBACK), so no
 * FIONREAD per packet is needed. The PUBACKs of fleetgwd's own publishes (OTA chunks,
 * challenges, commands) count as packets too: in an OTA fan-out they alternate with the
 * nodes' requests, and ending the batch at each one cost a whole loop pass per request
 * (bench_ota_fanout). Another packet without a callback (PINGRESP, SUBACK) ends the batch
 * early; the socket stays readable and epoll wakes us again. */
void edge_read_batch(struct daemon *d)
{
    for (int i = 0; i < EDGE_BATCH_MAX; i++) {
        uint64_t before = d->edge_packets;
        if (mosquitto_loop_read(d->edge, 1) != MOSQ_ERR_SUCCESS || mosquitto_socket(d->edge) < 0 ||
            d->edge_packets == before)
            break;
    }
}

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
    d->edge_packets++; /* a packet read: edge_read_batch goes on reading */
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

/* Publishes a queued command to the edge broker, QoS 1, with what is left of its lifetime
 * (spool.down_ttl_s from when it was queued) as its MQTT v5 Message Expiry Interval: the
 * edge broker keeps it for a node that is away (a persistent session) at most that long,
 * and a node that comes back later does not get a stale command. */
static int down_publish(struct daemon *d, const struct downq_msg *msg, int *mid)
{
    mosquitto_property *props = NULL;
    int64_t ttl = d->cfg.spool.down_ttl_s;
    if (ttl > 0) {
        int64_t left = msg->ts + ttl - wall_s();
        uint32_t expiry = left < 1 ? 1u : left > UINT32_MAX ? UINT32_MAX : (uint32_t)left;
        if (mosquitto_property_add_int32(&props, MQTT_PROP_MESSAGE_EXPIRY_INTERVAL, expiry) !=
            MOSQ_ERR_SUCCESS)
            return MOSQ_ERR_NOMEM;
    }
    int rc = mosquitto_publish_v5(d->edge, mid, msg->topic, (int)msg->len, msg->payload, 1, false,
                                  props);
    mosquitto_property_free_all(&props);
    return rc;
}

/* Runs from daemon_flush(), never from on_connect: libmosquitto resends the previous
 * in-flight publishes after on_connect returns, and new ones must follow them. */
void drain_down(struct daemon *d)
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
        int rc = down_publish(d, &msg, &mid);
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

/* The first line of edge.password_file: a secret, refused when its group or others may use
 * it (secret_file_read; err says which file and mode). */
static int read_secret(const char *path, char *buf, size_t cap, char *err, size_t errlen)
{
    size_t n = 0;
    int r = secret_file_read(path, "edge.password_file", buf, cap - 1, &n, err, errlen);
    if (r < 0)
        return r;
    buf[n] = '\0';
    if (n == 0 || buf[0] == '\n' || buf[0] == '\r') {
        snprintf(err, errlen, "edge.password_file %.400s: the first line is empty", path);
        explicit_bzero(buf, cap);
        return -ENODATA;
    }
    buf[strcspn(buf, "\r\n")] = '\0';
    return 0;
}

/* The edge client: MQTT v5 with a wide Receive Maximum, externally threaded (see
 * fleetgwd.c: PUBACKs leave only after the commit), the broker password from
 * edge.password_file. edge_connect() connects it. */
int edge_setup(struct daemon *d)
{
    int r;
    d->edge_away_since = spool_edge_seen(d->spool);
    d->edge = mosquitto_new(d->cfg.edge.client_id, false, d);
    if (d->edge == NULL)
        return -ENOMEM;
    mosquitto_threaded_set(d->edge, true);
    if (mosquitto_int_option(d->edge, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5) !=
            MOSQ_ERR_SUCCESS ||
        mosquitto_int_option(d->edge, MOSQ_OPT_RECEIVE_MAXIMUM, EDGE_RECEIVE_MAX) !=
            MOSQ_ERR_SUCCESS) {
        log_err("cannot set the edge MQTT options");
        return -EINVAL;
    }
    if (d->cfg.edge.username[0] != '\0') {
        char pw[256] = "";
        if (d->cfg.edge.password_file[0] != '\0') {
            char err[512];
            r = read_secret(d->cfg.edge.password_file, pw, sizeof(pw), err, sizeof(err));
            if (r < 0) {
                log_event(LOG_ERR, NULL, "edge_password", "%s", err);
                return -EACCES;
            }
        }
        r = mosquitto_username_pw_set(d->edge, d->cfg.edge.username, pw[0] ? pw : NULL);
        explicit_bzero(pw, sizeof(pw));
        if (r != MOSQ_ERR_SUCCESS) {
            log_err("cannot set the edge credentials: %s", mosquitto_strerror(r));
            return -EACCES;
        }
    }
    mosquitto_connect_callback_set(d->edge, edge_on_connect);
    mosquitto_disconnect_callback_set(d->edge, edge_on_disconnect);
    mosquitto_message_callback_set(d->edge, edge_on_message);
    mosquitto_publish_v5_callback_set(d->edge, edge_on_publish);
    return 0;
}

/* Queued cloud commands older than spool.down_ttl_s (every 10 s, from the tick). */
void edge_expire(struct daemon *d)
{
    uint64_t x = 0;
    int r = downq_expire(d->downq, wall_s(), d->cfg.spool.down_ttl_s, d->down_last_sent_id, &x);
    if (r < 0)
        log_err("cannot expire old cloud commands: %s", strerror(-r));
    else if (x > 0)
        log_event(LOG_WARNING, NULL, "down_expired",
                  "dropped %llu queued cloud command(s) older than spool.down_ttl_s",
                  (unsigned long long)x);
}

/* The edge_seen mark (edge_credit_absence), every EDGE_SEEN_EVERY_S from the tick while
 * connected, and once more at a clean stop; committed with the next group commit. */
void edge_mark_seen(struct daemon *d)
{
    if (d->edge_connected)
        spool_set_edge_seen(d->spool, wall_s());
}
