/* What fleetgwd's modules share: the daemon's state (struct daemon) and the functions one
 * module calls in another. Private to the fleetgwd program (not the core library).
 *   fleetgwd.c  event-loop wiring, commit orchestration (daemon_commit, daemon_flush),
 *               signals, reload, main
 *   edge.c      edge client, ingress policy (mapping, limits, drop reasons), down-queue
 *               delivery to the edge broker
 *   uplink.c    uplink TLS client, write buffer, verify reasons, back-off, spool drain
 *   gate_io.c   carries out the attestation gate's actions (challenge, registry, state)
 *   ota_xfer.c  OTA hand-over: the campaign engine's actions, the nodes' OTA replies, chunks
 *   ota_job.c   OTA cloud jobs: job documents, the image fetched in chunks over the uplink
 *   ctl_api.c   the control requests (core library; fleetgwd hands it its state) */
#ifndef FLEETGWD_DAEMON_H
#define FLEETGWD_DAEMON_H

#include "attest.h"
#include "clock.h"
#include "config.h"
#include "control.h"
#include "ctl_api.h"
#include "downq.h"
#include "drop.h"
#include "endpoint.h"
#include "gate.h"
#include "log.h"
#include "registry.h"
#include "relay.h"
#include "shape.h"
#include "spool.h"

#include <fleetgw/batch.h>
#include <mosquitto.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#define NODE_TABLE_MAX      16384 /* nodes the gate tracks (issue 15: 5,000 and room) */
#define EDGE_BACKOFF_MAX_MS 5000
#define EDGE_SEEN_EVERY_S   5    /* the spool's edge_seen mark, while connected (edge.c) */
#define EDGE_BATCH_MAX      1024 /* packets read from the edge per commit, at most */
/* QoS 1 messages the edge broker may have in flight to fleetgwd (MQTT v5 Receive Maximum).
 * Each edge batch costs one fsync; with the broker's own window (max_inflight_messages,
 * often 20-100) the broker stops sending while that fsync runs, so the window, not the
 * disk, bounded the throughput. With a wider window the broker keeps sending during the
 * fsync and the next commit covers more messages. */
#define EDGE_RECEIVE_MAX 1000
/* Bytes beyond a node message's payload in its MQTT PUBLISH (fixed header, topic of at most
 * MSG_TOPIC_MAX, packet id, properties): the edge's Maximum Packet Size is payload + this. */
#define EDGE_PACKET_OVERHEAD  1024u
#define UP_BUFFERED_READS_MAX 4096     /* uplink loop_read calls per wakeup for buffered TLS */
#define COMMIT_DELAY_US       20000ULL /* group commit of deletes and counters */
#define DOWN_INFLIGHT_MAX     16       /* cloud commands published to the edge, not yet PUBACKed */
/* Timers on the relay path must fire on time: sd-event's default accuracy (0 = 250 ms of
 * allowed slack, for coalescing wake-ups) would stall the drain and the commits. */
#define TIMER_ACCURACY_US 1
#define UP_WBUF_CAP       (256 * 1024) /* TLS bytes buffered towards the cloud, at most */
#define STATUS_JSON_MAX   (320 + ENDPOINT_NAME_MAX) /* the retained status upstream */

enum uplink_state { UP_IDLE, UP_CONNECTING, UP_CONNECTED };

#define LAST_SEEN_INTERVAL_S 60

/* A batch being built in daemon->batch_buf (uplink_drain.c): n rows, first..last, begun
 * when the drain's cursor was at `after`; n 0 = none. */
struct drain_build {
    struct batch_enc enc;
    int64_t after;
    int64_t first, last;
    uint32_t n;
};

struct inflight {
    int mid;
    int64_t id;
    int64_t last; /* uplink: a batch's last id (its rows: [id, last]); 0 for one message */
    uint32_t n;   /* uplink: messages in it */
};

struct daemon {
    const char *config_path;
    struct config cfg;
    sd_event *ev;
    struct spool *spool;
    struct registry *registry;
    struct attest_policy *policy;
    struct ctl_server *ctl;
    struct ctl_api ctl_api; /* what the control requests use (ctl_api.h) */
    SSL_CTX *ssl_ctx;

    struct mosquitto *edge;
    sd_event_source *edge_io;
    int edge_fd;
    bool edge_connected;
    int64_t edge_away_since; /* wall s: last known connected to the edge, 0 = now or never */
    bool edge_configured;    /* host/port handed to libmosquitto by a successful connect */
    uint64_t edge_packets;   /* messages and PUBACKs the edge client handled (edge_read_batch) */
    unsigned edge_appended;  /* node messages spooled, not yet committed: no PUBACK may leave */
    bool edge_hold;          /* readable edge socket left to fill until the commit timer */
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
    struct endpoint_ring up_ring;        /* which of uplink.hosts (endpoint.h); n 0 = unset */
    char up_endpoint[ENDPOINT_NAME_MAX]; /* its "host:port" */
    bool up_subacked; /* the broker acknowledged a subscription of this connection */
    char up_status_sent[STATUS_JSON_MAX]; /* the retained status last published */
    bool up_status_due; /* it changed, the ceiling's window was full: the drain sends it */

    struct inflight *inflight;
    unsigned n_inflight;
    int64_t last_sent_id;
    int64_t highest_sent_id; /* for counting replays after an outage */
    struct token_bucket drain_bucket;
    struct shape shape;       /* uplink.max_publish_per_s, max_bytes_per_s (shape.h) */
    struct shape_meter meter; /* messages acknowledged by the cloud per second */
    /* batching (uplink_drain.c) */
    uint8_t *batch_buf; /* uplink.batch_max_bytes, or more to resend a batch whole */
    size_t batch_cap;
    int64_t batch_head_id;            /* the oldest row of the partial batch waiting ... */
    uint64_t batch_head_us;           /* ... since then (CLOCK_MONOTONIC) */
    bool batch_uncommitted;           /* a batch recorded, not committed: nothing may be written */
    struct drain_build batch_pending; /* the partial batch waiting for batch_max_delay_ms */
    char shape_reason[32];            /* why the drain waits now (REASON= of its log line) */
    bool ceiling_episode;             /* a ceiling held the drain back since it last caught up */
    sd_event_source *drain_timer;
    sd_event_source *commit_timer;
    sd_event_source *up_buffered_timer; /* TLS records buffered by read-ahead, see below */

    struct gate *gate;             /* node table + attestation state machine (gate.h) */
    bool gate_wrote;               /* a verdict was persisted/published by gate_act */
    sd_event_source *attest_timer; /* earliest challenge expiry (attest_timer_cb) */

    sd_event_source *tick;
    sd_event_source *flush_post; /* daemon_flush after every dispatched event */
    sd_event_source *watchdog;
    uint64_t watchdog_usec;
    bool stopping;
    struct drop_log drops; /* drop reasons already logged at warning level */
    bool commit_wanted;    /* a module asks daemon_flush() to commit first */
    unsigned ticks;        /* 1 s ticks since start (the TTL sweeps run every 10th) */
    uint64_t relayed_up, relayed_down;
    char last_status[384];

    struct ota_xfer *ota;      /* ota_xfer.c; NULL when OTA is unavailable (logged at start) */
    struct ota_jobs *ota_jobs; /* ota_job.c: cloud jobs; NULL when OTA is unavailable */
    struct broker_snap *bsnap; /* broker_snapshot.c; NULL without registry.broker_snapshot */

    /* down-queue: cloud -> edge */
    struct downq *downq;
    struct inflight down_inflight[DOWN_INFLIGHT_MAX];
    unsigned n_down_inflight;
    int64_t down_last_sent_id; /* rows up to this id are in flight or gone */
    bool down_uncommitted;     /* appended by the uplink read path, PUBACKs queued */
};

/* Commits are fleetgwd.c's (daemon_commit, daemon_flush): the modules ask through
 * commit_wanted, down_uncommitted and edge_appended and never commit themselves. */

static inline void count_drop(struct daemon *d, const char *node, const char *reason,
                              const char *what)
{
    drop_count(&d->drops, d->spool, node, reason, what);
}

/* edge.c */
int edge_setup(struct daemon *d) __attribute__((warn_unused_result));
int edge_connect(struct daemon *d);
int edge_timer_cb(sd_event_source *s, uint64_t usec, void *u);
void edge_read_batch(struct daemon *d);
void drain_down(struct daemon *d);
void edge_expire(struct daemon *d);
void edge_mark_seen(struct daemon *d);

/* gate_io.c */
int gate_io_start(struct daemon *d) __attribute__((warn_unused_result));
struct gate_config gate_config_of(const struct daemon *d);
void attest_timer_arm(struct daemon *d, uint64_t at);
int attest_timer_cb(sd_event_source *s, uint64_t usec, void *u);
void gate_io_restore_held(struct daemon *d);
/* Registry writes of the node path (verdicts, last seen) go into one batch per event,
 * committed by daemon_commit before the spool (gate_io_commit), asked for at the end of the
 * event that opened it (commit_wanted): one fsync per batch instead of one per node. */
void gate_io_batch(struct daemon *d);
void gate_io_commit(struct daemon *d);
/* The attestation policy of cfg (NULL, and 0, when it names no reference source). */
int policy_load(const struct config *cfg, struct attest_policy **ret, char *err, size_t errlen)
    __attribute__((warn_unused_result));
void policy_report(const struct daemon *d);
int policy_check(const struct config *cfg, const char *path) __attribute__((warn_unused_result));
int policy_reload(struct daemon *d, const struct config *n) __attribute__((warn_unused_result));

/* reload.c: SIGHUP (a configuration that does not validate changes nothing) */
void daemon_reload(struct daemon *d);

/* ota_xfer.c */
int ota_xfer_start(struct daemon *d) __attribute__((warn_unused_result));
void ota_xfer_stop(struct daemon *d);
void ota_xfer_on_message(struct daemon *d, enum relay_kind kind, const char *node,
                         const uint8_t *payload, size_t len);
/* For the gate's verifier: the image node runs in an OTA test (staged, testing, confirming),
 * with the signer ids allowed for its class and its version text. */
bool ota_xfer_node_image(struct daemon *d, const char *node, uint8_t digest[32],
                         uint8_t signers[16][32], size_t *n_signers, char version[65]);
void ota_xfer_attested(struct daemon *d, const char *node, bool trusted, const uint8_t *measured,
                       const char *reason);
void ota_xfer_after_gate(struct daemon *d);
void ota_xfer_stats(const struct daemon *d, uint64_t *sent, uint64_t *resent, uint64_t *chunks);

/* broker_snapshot.c: keeps registry.broker_snapshot (the edge broker plugin's copy of the
 * registry) current: written at start, then within BROKER_SNAPSHOT_PERIOD_MS of a change of
 * membership or verdict. Nothing to do without the key. */
int broker_snapshot_start(struct daemon *d) __attribute__((warn_unused_result));
void broker_snapshot_stop(struct daemon *d);

/* ota_job.c (after ota_xfer_start: uses its store and engine) */
int ota_job_start(struct daemon *d) __attribute__((warn_unused_result));
void ota_job_stop(struct daemon *d);
/* A message from the uplink: true when it was a job's (document or chunk reply) and was
 * handled, false when the topic is not a job's. */
bool ota_job_on_message(struct daemon *d, const char *topic, const void *payload, size_t len);
/* The uplink connected: subscribes to the jobs' topics and asks again for every download. */
void ota_job_on_connect(struct daemon *d, struct mosquitto *m);

/* uplink.c */
int uplink_tls_setup(struct daemon *d) __attribute__((warn_unused_result));
/* The uplink's TLS context, in-flight table and shaper (0, or the exit code to stop with);
 * uplink_free() releases them. */
int uplink_setup(struct daemon *d) __attribute__((warn_unused_result));
void uplink_free(struct daemon *d);
BIO *up_wbuf(struct daemon *d);
void uplink_write(struct daemon *d);
void mosq_log_enable(struct daemon *d, struct mosquitto *m, bool connecting);
void uplink_io(struct daemon *d, int fd, uint32_t revents);
void uplink_after_write(struct daemon *d);
void uplink_stop(struct daemon *d);
void uplink_destroy(struct daemon *d);
void uplink_schedule(struct daemon *d, int delay_ms);
int up_timer_cb(sd_event_source *s, uint64_t usec, void *u);
int drain_timer_cb(sd_event_source *s, uint64_t usec, void *u);
void drain(struct daemon *d);
int up_buffered_timer_cb(sd_event_source *s, uint64_t usec, void *u);
void uplink_expire(struct daemon *d);
/* The retained status upstream ({"state":"online",...} with the backlog), when the ceiling
 * has room (from the tick, every 10 s). */
void uplink_publish_status(struct daemon *d);

/* uplink_drain.c: the drain's steps (uplink.batch on: drain_batch). 1 = published (go on),
 * 0 = stop (nothing to send, or a timer armed for when to go on). */
int drain_one(struct daemon *d);
int drain_batch(struct daemon *d);
/* Forgets the partial batch kept between drains (the spool's rows or the cursor changed
 * under it: a reconnect, an expiry, a failed commit). */
void batch_pending_drop(struct daemon *d);
/* The ceiling stops the drain: arm the drain timer wait_us from now, log the reason once. */
void drain_wait(struct daemon *d, uint64_t wait_us, const char *reason);
/* The backlog, the ceilings and the drain rate now (shape.h). */
void shape_status_of(struct daemon *d, struct shape_status *ret);
/* The cloud broker endpoint in use or being tried, "host:port". */
const char *uplink_endpoint(struct daemon *d);

#endif
