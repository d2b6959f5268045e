/* uplink.c: the cloud side of fleetgwd. Owns the uplink client (mutual TLS with the
 * TPM-held key through tpm_tls_ctx_new, recreated per connection, will + retained status),
 * its write-coalescing buffer under TLS (tls_wbuf.h), the reasons a server certificate or
 * handshake failed, the reconnect back-off with jitter, the drain of the spool upstream
 * (id order, rate-limited, bounded in flight) and cloud commands into the down-queue. */
#define _GNU_SOURCE
#include "daemon.h"
#include "tls_wbuf.h"

#include <errno.h>
#include <fleetgw/msg.h>
#include <fleetgw/tpm_tls.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sysexits.h>
#include <unistd.h>

/* The uplink's write-coalescing BIO while its TLS session is the one it was attached to. */
BIO *up_wbuf(struct daemon *d)
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
void uplink_write(struct daemon *d)
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
    struct inflight f = d->inflight[i];
    memmove(&d->inflight[i], &d->inflight[i + 1], (d->n_inflight - i - 1) * sizeof(d->inflight[0]));
    d->n_inflight--;
    /* Deleted (and counted as relayed_up) by the next group commit; a batch as a whole. */
    int r = f.last > 0 ? spool_batch_ack(d->spool, f.id, f.last) : spool_ack(d->spool, f.id);
    if (r < 0) {
        log_err("cannot delete spool entry %lld: %s", (long long)f.id, strerror(-r));
        return;
    }
    d->relayed_up += f.n;
    /* The meter's clock: the last commit's start (seconds matter, not a clock read per ack). */
    shape_meter_add(&d->meter, d->last_commit_us, f.n);
}

/* A cloud command: into the down-queue, in the open transaction. The cloud's PUBACK is
 * already queued by libmosquitto; daemon_flush() commits (commit_before_uplink) before it is
 * written. */
static void uplink_on_message(struct mosquitto *m, void *u, const struct mosquitto_message *msg)
{
    (void)m;
    struct daemon *d = u;
    char node[RELAY_NODE_MAX + 1];
    char topic[SPOOL_TOPIC_MAX];
    if (msg->payloadlen >= 0 &&
        ota_job_on_message(d, msg->topic, msg->payload, (size_t)msg->payloadlen))
        return;                 /* an OTA job's document or chunk (ota_job.c) */
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
void mosq_log_enable(struct daemon *d, struct mosquitto *m, bool connecting)
{
    bool debug = config_log_priority(&d->cfg) >= LOG_DEBUG;
    mosquitto_log_callback_set(m, debug || connecting ? mosq_log : NULL);
}

/* The endpoint of uplink.hosts in use (the ring starts at the first on first use). */
static const struct config_endpoint *uplink_ep(struct daemon *d)
{
    if (d->up_ring.n == 0) {
        endpoint_ring_init(&d->up_ring, d->cfg.uplink.n_hosts);
        endpoint_format(&d->cfg.uplink.hosts[0], d->up_endpoint, sizeof(d->up_endpoint));
    }
    return &d->cfg.uplink.hosts[d->up_ring.cur];
}

const char *uplink_endpoint(struct daemon *d)
{
    (void)uplink_ep(d);
    return d->up_endpoint;
}

/* The current endpoint failed or was lost: the next attempt goes to the next one. */
static void uplink_failover(struct daemon *d)
{
    (void)uplink_ep(d);
    int before = d->up_ring.cur;
    int i = endpoint_ring_failed(&d->up_ring);
    if (i != before) {
        endpoint_format(&d->cfg.uplink.hosts[i], d->up_endpoint, sizeof(d->up_endpoint));
        log_info("next cloud broker to try: %s (uplink.hosts entry %d of %d)", d->up_endpoint,
                 i + 1, d->up_ring.n);
    }
}

/* The server certificate must match this endpoint's name (uplink.server_name when set, else
 * the endpoint's host). The SSL of each connection copies the context's parameters. */
static int uplink_expect_name(struct daemon *d)
{
    const char *name = config_uplink_server_name(&d->cfg, d->up_ring.cur);
    X509_VERIFY_PARAM *param = SSL_CTX_get0_param(d->ssl_ctx);
    ASN1_OCTET_STRING *ip = a2i_IPADDRESS(name);
    int ok;
    if (ip != NULL) {
        ASN1_OCTET_STRING_free(ip);
        ok = X509_VERIFY_PARAM_set1_host(param, NULL, 0) == 1 &&
             X509_VERIFY_PARAM_set1_ip_asc(param, name) == 1;
    } else {
        ERR_clear_error();
        ok = X509_VERIFY_PARAM_set1_ip(param, NULL, 0) == 1 &&
             X509_VERIFY_PARAM_set1_host(param, name, 0) == 1;
    }
    if (!ok) {
        ERR_clear_error();
        log_err("cannot set the expected server name '%s' for %s", name, d->up_endpoint);
        return -EINVAL;
    }
    return 0;
}

static void status_topic(struct daemon *d, char *buf, size_t cap)
{
    const struct config *c = &d->cfg;
    /* The prefix and the client id are validated by config_load with the same grammar. */
    if (msg_cloud_topic_build(MSG_CLOUD_GATEWAY_STATUS, c->uplink.topic_prefix,
                              strlen(c->uplink.topic_prefix), c->uplink.client_id,
                              strlen(c->uplink.client_id), NULL, 0, buf, cap, NULL) != MSG_OK)
        buf[0] = '\0';
}

/* The retained status upstream: online, the endpoint in use, and the uplink's backlog
 * (issue 17). The endpoint is validated by config_load (no quotes or backslashes). */
static void status_json(struct daemon *d, char *buf, size_t cap)
{
    struct shape_status ss;
    shape_status_of(d, &ss);
    snprintf(buf, cap,
             "{\"state\":\"online\",\"endpoint\":\"%s\",\"backlog_messages\":%llu,"
             "\"backlog_bytes\":%lld,\"max_publish_per_s\":%d,\"drain_rate\":%.1f,"
             "\"drain_eta_s\":%.0f,\"batch\":%s,\"batch_fill\":%.1f}",
             d->up_endpoint, (unsigned long long)ss.backlog_messages, (long long)ss.backlog_bytes,
             ss.max_publish_per_s, ss.drain_rate, ss.drain_eta_s, ss.batch ? "true" : "false",
             ss.batch_fill);
}

/* From the tick (every 10 s): the retained status again when it changed. It counts in the
 * ceiling: when the window is full it is due, and the drain sends it first when the window
 * reopens (so a saturated uplink, when the backlog matters, still reports it). */
void uplink_publish_status(struct daemon *d)
{
    char t[SPOOL_TOPIC_MAX + 64], st[STATUS_JSON_MAX];
    d->up_status_due = false;
    if (d->up == NULL || d->up_state != UP_CONNECTED || d->stopping)
        return;
    status_json(d, st, sizeof(st));
    if (strcmp(st, d->up_status_sent) == 0)
        return;
    uint64_t now = now_us();
    if (shape_wait_us(&d->shape, now, strlen(st)) > 0) {
        d->up_status_due = true;
        return;
    }
    status_topic(d, t, sizeof(t));
    if (mosquitto_publish(d->up, NULL, t, (int)strlen(st), st, 1, true) != MOSQ_ERR_SUCCESS)
        return;
    shape_record(&d->shape, now, strlen(st));
    snprintf(d->up_status_sent, sizeof(d->up_status_sent), "%s", st);
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
    d->up_subacked = false;
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
    char online[STATUS_JSON_MAX];
    status_json(d, online, sizeof(online));
    int r1 = mosquitto_publish(m, NULL, t, (int)strlen(online), online, 1, true);
    shape_record(&d->shape, now_us(), strlen(online));
    snprintf(d->up_status_sent, sizeof(d->up_status_sent), "%s", online);
    const char *prefix = d->cfg.uplink.topic_prefix;
    int r2 =
        msg_cloud_filter(MSG_CLOUD_CMD, prefix, strlen(prefix), sub, sizeof(sub), NULL) == MSG_OK
            ? mosquitto_subscribe(m, NULL, sub, 1)
            : MOSQ_ERR_INVAL;
    if (r1 != MOSQ_ERR_SUCCESS || r2 != MOSQ_ERR_SUCCESS)
        log_err("cannot announce/subscribe on the cloud broker: %s",
                mosquitto_strerror(r1 ? r1 : r2));
    ota_job_on_connect(d, m);
    log_info("connected to the cloud broker %s; %llu message(s) spooled", d->up_endpoint,
             (unsigned long long)spool_messages(d->spool));
    d->last_sent_id = 0;
    d->n_inflight = 0;
    batch_pending_drop(d);
    /* Acknowledgements of the last connection are deleted before the replay reads: the
     * next daemon_flush() commits first, then drains. */
    d->commit_wanted = true;
}

static void uplink_on_subscribe(struct mosquitto *m, void *u, int mid, int n, const int *qos)
{
    (void)m;
    (void)mid;
    struct daemon *d = u;
    for (int i = 0; i < n; i++)
        if (qos[i] == 0x80)
            log_event(LOG_WARNING, NULL, "uplink_subscribe",
                      "the cloud broker %s refused a subscription (SUBACK failure): check "
                      "the gateway's permissions on its topics",
                      d->up_endpoint);
    d->up_subacked = true;
}

static void uplink_on_disconnect(struct mosquitto *m, void *u, int rc)
{
    (void)m;
    struct daemon *d = u;
    bool was = d->up_state == UP_CONNECTED;
    if (was && !d->up_subacked && !d->stopping)
        /* Found with RabbitMQ 3.10 (docs/operator-guide.md, "Connecting to a clustered
         * broker"): a persistent session's subscription is a durable queue on one cluster
         * node; while that node is down, the SUBSCRIBE on another node is answered by closing
         * the connection. The next attempt goes to the next endpoint, as for any loss. */
        log_event(LOG_WARNING, NULL, "uplink_subscribe",
                  "the cloud broker %s closed the connection before acknowledging the "
                  "subscription to cloud commands; with a RabbitMQ cluster this is the "
                  "durable queue of this client id's session on a node that is down (mirror "
                  "the MQTT subscription queues to every node, see the operator guide)",
                  d->up_endpoint);
    d->up_state = UP_IDLE;
    d->up_wbuf = NULL; /* freed with the SSL */
    /* Everything in flight will be replayed from the spool in order. */
    d->n_inflight = 0;
    d->last_sent_id = 0;
    d->up_destroy_pending = true;
    if (d->stopping)
        return;
    if (was) {
        log_event(LOG_WARNING, NULL, "uplink_lost", "lost the cloud broker connection to %s (%s)",
                  d->up_endpoint, mosquitto_strerror(rc));
    } else {
        /* A failed TLS handshake lands here: say why (certificate verification, ...). */
        log_event(LOG_WARNING, NULL, "uplink_connect",
                  "cannot connect to the cloud broker %s: %s%s%s", d->up_endpoint,
                  mosquitto_strerror(rc), uplink_reason(d)[0] ? ": " : "", d->up_last_error);
        d->up_last_error[0] = '\0';
    }
    uplink_schedule(d, -1);
}

void uplink_destroy(struct daemon *d)
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
    const struct config_endpoint *ep = uplink_ep(d);
    if (uplink_expect_name(d) < 0)
        return -EINVAL;
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
    mosquitto_subscribe_callback_set(d->up, uplink_on_subscribe);
    mosq_log_enable(d, d->up, true);
    rc = mosquitto_connect_async(d->up, ep->host, ep->port, d->cfg.uplink.keepalive);
    if (rc != MOSQ_ERR_SUCCESS) {
        /* The TLS handshake may already fail in here (loopback answers at once). */
        log_event(LOG_WARNING, NULL, "uplink_connect",
                  "cannot connect to the cloud broker %s: %s%s%s", d->up_endpoint,
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
void uplink_schedule(struct daemon *d, int delay_ms)
{
    if (delay_ms < 0) {
        uplink_failover(d);
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

int up_timer_cb(sd_event_source *s, uint64_t usec, void *u)
{
    (void)s;
    (void)usec;
    struct daemon *d = u;
    if (d->up_state == UP_CONNECTING) {
        log_event(LOG_WARNING, NULL, "uplink_timeout",
                  "no answer from the cloud broker %s within %d s", d->up_endpoint,
                  d->cfg.uplink.connect_timeout_s);
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
    return 0;
}

int drain_timer_cb(sd_event_source *s, uint64_t usec, void *u)
{
    (void)s;
    (void)usec;
    (void)u; /* waking the loop is all: the post source (daemon_flush) drains */
    return 0;
}

/* Sends what the spool holds, in id order, while the in-flight window has room: one
 * message per publish, or batches (uplink_drain.c), under the ceilings (shape.h). */
void drain(struct daemon *d)
{
    if (d->up_state != UP_CONNECTED || d->up == NULL || d->stopping)
        return;
    if (d->up_status_due)
        uplink_publish_status(d);
    /* The profile's cap on unacknowledged publishes (AWS IoT Core: 100) keeps room for the
     * retained status and an OTA job request, which are not in the window. */
    unsigned cap = (unsigned)d->cfg.spool.max_inflight;
    if (d->cfg.uplink.inflight_max > 2 && cap > (unsigned)d->cfg.uplink.inflight_max - 2)
        cap = (unsigned)d->cfg.uplink.inflight_max - 2;
    while (d->n_inflight < cap)
        if ((d->cfg.uplink.batch_on ? drain_batch(d) : drain_one(d)) <= 0)
            return;
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

int up_buffered_timer_cb(sd_event_source *s, uint64_t usec, void *u)
{
    (void)s;
    (void)usec;
    struct daemon *d = u;
    uplink_read_buffered(d);
    return 0;
}

/* The TLS context for the cloud: tpm/'s (TPM key, or a software PEM key when uplink.tcti is
 * empty), with a callback that remembers why a server certificate was refused, and read
 * ahead: one read() takes in every TLS record the socket holds (the cloud sends one record
 * per PUBACK) instead of two reads per record; see uplink_read_buffered(). */
int uplink_tls_setup(struct daemon *d)
{
    char err[512];
    struct tpm_tls_config tc = {
        .tcti = d->cfg.uplink.tcti[0] ? d->cfg.uplink.tcti : NULL,
        .key = d->cfg.uplink.key,
        .cert_file = d->cfg.uplink.cert_file,
        .ca_file = d->cfg.uplink.ca_file,
        .server_name = d->cfg.uplink.server_name,
    };
    int r = tpm_tls_ctx_new(&tc, &d->ssl_ctx, err, sizeof(err));
    if (r < 0) {
        log_event(LOG_ERR, NULL, "tls_setup", "cannot set up TLS to the cloud broker: %s", err);
        return r;
    }
    SSL_CTX_set_verify(d->ssl_ctx, SSL_CTX_get_verify_mode(d->ssl_ctx), verify_cb);
    SSL_CTX_set_read_ahead(d->ssl_ctx, 1);
    return 0;
}

int uplink_setup(struct daemon *d)
{
    if (uplink_tls_setup(d) < 0)
        return EX_UNAVAILABLE;
    d->inflight = calloc((size_t)d->cfg.spool.max_inflight, sizeof(*d->inflight));
    if (d->inflight == NULL ||
        shape_init(&d->shape, d->cfg.uplink.max_publish_per_s, d->cfg.uplink.max_bytes_per_s) < 0)
        return EX_OSERR;
    log_info("uplink profile %s: at most %d publish(es)/s, %lld byte(s)/s (0: no ceiling), "
             "%d in flight; batching %s",
             d->cfg.uplink.profile, d->cfg.uplink.max_publish_per_s,
             (long long)d->cfg.uplink.max_bytes_per_s, d->cfg.spool.max_inflight,
             d->cfg.uplink.batch_on ? "on" : "off");
    return 0;
}

void uplink_free(struct daemon *d)
{
    free(d->inflight);
    shape_free(&d->shape);
    free(d->batch_buf);
}

/* The uplink socket is ready (fd, revents from epoll). */
void uplink_io(struct daemon *d, int fd, uint32_t revents)
{
    if (d->up_state == UP_CONNECTING && (revents & (EPOLLERR | EPOLLHUP))) {
        int soerr = 0;
        socklen_t sl = sizeof(soerr);
        (void)getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
        log_event(LOG_WARNING, NULL, "uplink_connect", "cannot connect to the cloud broker %s: %s",
                  d->up_endpoint, soerr ? strerror(soerr) : "connection closed");
        uplink_destroy(d);
        uplink_schedule(d, -1);
        return;
    }
    if (revents & EPOLLOUT)
        d->up_tcp_ready = true;
    /* loop_read also advances the TLS handshake (want_connect), on either event. */
    if (revents & (EPOLLIN | EPOLLHUP | EPOLLERR) || d->up_state == UP_CONNECTING) {
        (void)mosquitto_loop_read(d->up, 64);
        uplink_read_buffered(d);
    }
}

/* From daemon_flush(), after the writes: a failed handshake is reported and the client
 * destroyed when it asked for it. */
void uplink_after_write(struct daemon *d)
{
    if (d->up != NULL && d->up_state == UP_CONNECTING && mosquitto_socket(d->up) < 0 &&
        !d->up_destroy_pending) {
        /* libmosquitto closed the socket on a failed TLS handshake without calling
         * on_disconnect (net__socket_connect_tls() returns straight from loop_read). */
        log_event(LOG_WARNING, NULL, "uplink_connect",
                  "cannot connect to the cloud broker %s: TLS handshake failed%s%s", d->up_endpoint,
                  uplink_reason(d)[0] ? ": " : "", d->up_last_error);
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
}

/* On SIGTERM: the retained status "offline", a clean disconnect, and what is buffered
 * written out (bounded). */
void uplink_stop(struct daemon *d)
{
    char t[SPOOL_TOPIC_MAX + 64];
    static const char offline[] = "{\"state\":\"offline\"}";
    if (d->up == NULL || d->up_state != UP_CONNECTED)
        return;
    status_topic(d, t, sizeof(t));
    /* It counts in the ceiling too: a stop right after a busy second waits for room (at
     * most the window, 1.05 s), or the broker could disconnect us for this publish. */
    uint64_t w = shape_wait_us(&d->shape, now_us(), strlen(offline));
    if (w > 0 && w <= SHAPE_HOLD_US)
        usleep((useconds_t)w);
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

/* Spooled messages older than spool.ttl_seconds (every 10 s, from the tick). */
void uplink_expire(struct daemon *d)
{
    uint64_t x = 0;
    batch_pending_drop(d); /* its rows may go */
    int r = spool_expire(d->spool, wall_s(), d->cfg.spool.ttl_seconds, &x);
    if (r < 0)
        log_err("cannot expire old spool entries: %s", strerror(-r));
    else if (x > 0)
        log_event(LOG_WARNING, NULL, "expired",
                  "dropped %llu spooled message(s) older than spool.ttl_seconds",
                  (unsigned long long)x);
}
