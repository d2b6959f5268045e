/* The node agent: one instance per node (a process may host many, the MCU hosts one).
 *
 * State machine, driven entirely by the caller (no threads, no clock, no heap):
 *   IDLE --agent_start--> LINKING --agent_link_up--> HANDSHAKE (if a secure layer is set)
 *   --> MQTT_CONNECTING --CONNACK--> SUBSCRIBING --SUBACK--> RUNNING
 *   RUNNING: telemetry every interval on fleet/<id>/up/telemetry (QoS 1, sequence number),
 *            commands on fleet/<id>/down/#, challenges on fleet/<id>/attest/challenge,
 *            OTA traffic on fleet/<id>/ota/{offer,chunk,confirm}.
 * Messages follow docs/protocol.md (CBOR, proto/include/fleetgw/msg.h).
 *   Any failure: the link is closed, in-flight telemetry is kept, and after an exponential
 *   back-off (with jitter) the agent reconnects; after max_attempts consecutive failures it
 *   stops in FAILED. With telemetry_count set and stop_when_done, it disconnects cleanly
 *   once every telemetry message was acknowledged (DONE).
 *
 * The port provides the lower byte stream (TCP, UART) and calls agent_link_up/down,
 * agent_io (stream readable/writable) and agent_tick (timers). An optional secure layer
 * (TLS, see node_tls.h) sits between MQTT and the lower stream. */
#ifndef FLEETGW_AGENT_H
#define FLEETGW_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fleetgw/mqtt.h"
#include "fleetgw/transport.h"

#if defined(__GNUC__)
#define AGENT_MUST_CHECK __attribute__((warn_unused_result))
#else
#define AGENT_MUST_CHECK
#endif

#define AGENT_MAX_ID        48u  /* node id length (= MSG_NODE_ID_MAX) */
#define AGENT_TOPIC_MAX     128u /* longest topic the agent builds */
#define AGENT_TELEMETRY_MAX 64u  /* an encoded telemetry message, see agent_telemetry_encode() */
#define AGENT_PONG_MAX      64u  /* payload bytes echoed by the built-in down/ping */
#define AGENT_EVIDENCE_HDR  5u   /* room before the token for the attest-evidence CBOR head */

typedef enum agent_status {
    AGENT_OK = 0,
    AGENT_ERR_PARAM,   /* bad configuration or argument */
    AGENT_ERR_STATE,   /* not allowed now */
    AGENT_ERR_LINK,    /* the lower stream could not be opened or broke */
    AGENT_ERR_SECURE,  /* TLS handshake or record failure (incl. certificate refused) */
    AGENT_ERR_MQTT,    /* MQTT protocol or transport error */
    AGENT_ERR_REFUSED, /* broker refused CONNECT or a subscription */
    AGENT_ERR_TIMEOUT, /* link, handshake, CONNACK, SUBACK or keep-alive took too long */
    AGENT_ERR_NOSPACE  /* an answer did not fit the evidence buffer */
} agent_status_t;

typedef enum agent_phase {
    AGENT_IDLE = 0,
    AGENT_BACKOFF,
    AGENT_LINKING,
    AGENT_HANDSHAKE,
    AGENT_MQTT_CONNECTING,
    AGENT_SUBSCRIBING,
    AGENT_RUNNING,
    AGENT_CLOSING, /* DISCONNECT queued, waiting for it to be written */
    AGENT_DONE,
    AGENT_FAILED
} agent_phase_t;

/* Result of one handshake step of the secure layer. */
typedef enum agent_hs { AGENT_HS_DONE = 0, AGENT_HS_AGAIN, AGENT_HS_FAILED } agent_hs_t;

/* Optional layer between MQTT and the lower stream (TLS). */
struct agent_layer {
    void *ctx;
    agent_hs_t (*handshake)(void *ctx); /* one non-blocking step */
    void (*reset)(void *ctx);           /* forget the session; the link is being closed */
    struct transport *upper;            /* the protected byte stream MQTT uses */
};

/* The port: opens/closes the lower stream and provides it. */
struct agent_port {
    void *ctx;
    /* Starts opening the lower stream. AGENT_OK means started; the port later calls
     * agent_link_up() or agent_link_down(). Anything else counts as a failed attempt. */
    agent_status_t (*link_open)(void *ctx);
    void (*link_close)(void *ctx);
    struct transport *lower;
};

/* Seams for the application parts that live elsewhere (attestation token, OTA client).
 * All optional: a NULL callback means the request is counted and ignored. */
struct agent_app {
    void *user;
    /* An attest-challenge arrived (decoded and checked: nonce of 32, 48 or 64 bytes). Write
     * the PSA attestation token for this nonce into out (at most out_cap bytes) and set
     * *ret_len. The agent wraps it in an attest-evidence message and publishes it on
     * fleet/<id>/attest/evidence, QoS 1. */
    agent_status_t (*on_challenge)(void *user, const uint8_t *nonce, size_t nonce_len,
                                   uint32_t ttl_s, uint8_t *out, size_t out_cap, size_t *ret_len);
    /* A message on fleet/<id>/ota/<suffix> (offer, chunk, confirm), raw CBOR. A non-empty
     * reply written into out is published, QoS 1, on fleet/<id>/<*ret_topic> where
     * *ret_topic is one of "ota/ack", "ota/request", "ota/status". */
    agent_status_t (*on_ota)(void *user, const char *suffix, size_t suffix_len,
                             const uint8_t *payload, size_t payload_len, uint8_t *out,
                             size_t out_cap, size_t *ret_len, const char **ret_topic);
    /* A command: a decoded command message on fleet/<id>/down/command (name and args), or
     * an application payload on fleet/<id>/down/<sub> other than the built-in "ping"
     * (name = sub, args = the raw payload). */
    void (*on_command)(void *user, const char *name, size_t name_len, const uint8_t *args,
                       size_t args_len);
    /* The sample carried in each telemetry message (0 if NULL). */
    int32_t (*telemetry_sample)(void *user);
    /* Wall-clock time, ms since the Unix epoch, for telemetry timestamps (0 if NULL: the
     * node has no wall clock; the gateway stamps on receipt). */
    uint64_t (*wall_clock_ms)(void *user);
};

struct agent_config {
    const char *node_id;         /* [A-Za-z0-9_-], 1..AGENT_MAX_ID; MQTT client id too */
    const char *telemetry_topic; /* NULL: fleet/<id>/up/telemetry */
    uint32_t telemetry_interval_ms;
    uint32_t telemetry_count; /* 0: unlimited */
    bool stop_when_done;      /* disconnect once telemetry_count messages are acknowledged */
    uint16_t keep_alive_s;
    uint32_t connect_timeout_ms; /* link + handshake + CONNACK + SUBACK */
    uint32_t retry_ms;           /* QoS 1 resend */
    uint32_t backoff_min_ms;
    uint32_t backoff_max_ms;
    uint32_t max_attempts; /* consecutive failed attempts before FAILED; 0: never give up */
    uint32_t jitter_seed;  /* spreads reconnects of many nodes */
    /* A persistent MQTT session (clean session off; the client id is the node id): the
     * broker keeps this node's subscriptions while it is away and queues its commands
     * (fleet/<id>/down/#, subscribed QoS 1) until it is back. Challenges and OTA messages
     * are then subscribed QoS 0, so nothing stale waits for them: the gateway challenges a
     * returning node afresh and resumes a transfer from the node's own offset. Off: a clean
     * session, everything QoS 1, and a command sent while the node is away is lost. */
    bool persistent_session;
    /* Caller storage (no heap): MQTT rx/tx buffers, the QoS 1 in-flight store (its slots
     * must hold the largest QoS 1 message: evidence with a token is 300-600 bytes), and the
     * buffer evidence / OTA replies are built in. */
    uint8_t *rx_buf;
    size_t rx_cap;
    uint8_t *tx_buf;
    size_t tx_cap;
    uint8_t *store;
    size_t store_cap;
    uint8_t *evidence_buf;
    size_t evidence_cap;
    /* Attestation before telemetry (needs app.on_challenge): after SUBACK, until the first
     * challenge of this agent's life has been answered, publish a node-status (state online,
     * fw_version) on fleet/<id>/status, which makes the gateway challenge an enrolled node,
     * and hold telemetry until the evidence is published or attest_wait_ms have passed (then
     * telemetry flows anyway: a gateway without attestation, or one that does not know the
     * node, never challenges). The evidence goes out before any telemetry on the same
     * connection, so the gateway judges the node before it sees its data. */
    bool attest_first;
    uint32_t attest_wait_ms;
    struct agent_version {
        uint8_t major;
        uint8_t minor;
        uint16_t revision;
        uint32_t build;
    } fw_version; /* reported in the node-status */
};

struct agent_stats {
    uint32_t connects;        /* times RUNNING was reached */
    uint32_t attempts_failed; /* total failed attempts */
    uint32_t telemetry_sent;
    uint32_t telemetry_acked;
    uint32_t challenges;
    uint32_t evidence_sent;   /* challenges answered with evidence */
    uint32_t attest_timeouts; /* attest_first: no challenge within attest_wait_ms */
    uint32_t commands;
    uint32_t ignored; /* requests without a handler, or malformed */
};

struct agent {
    struct agent_config cfg;
    struct agent_port port;
    struct agent_app app;
    struct agent_layer layer;
    bool has_layer;
    struct transport *upper; /* what MQTT reads/writes: layer->upper or port.lower */
    struct mqtt_client mqtt;
    char id[AGENT_MAX_ID + 1];
    agent_phase_t phase;
    agent_status_t last_error;
    uint8_t last_detail; /* CONNACK code, or the MQTT status of the last MQTT error */
    uint32_t now_ms;
    uint32_t phase_start_ms;
    uint32_t backoff_until_ms;
    uint32_t consecutive_failures;
    uint32_t rng;
    uint32_t telemetry_seq;
    uint32_t next_telemetry_ms;
    uint16_t telemetry_pids[MQTT_MAX_INFLIGHT];
    bool attested;           /* attest_first: a challenge was answered */
    bool attest_hold;        /* attest_first: telemetry held on this connection */
    uint32_t attest_hold_ms; /* when the hold began */
    uint32_t started_ms;     /* agent_start(), for the node-status uptime */
    struct agent_stats stats;
};

agent_status_t agent_init(struct agent *a, const struct agent_config *cfg,
                          const struct agent_port *port, const struct agent_app *app,
                          const struct agent_layer *layer) AGENT_MUST_CHECK;

/* Begins the first connection attempt. */
agent_status_t agent_start(struct agent *a, uint32_t now_ms) AGENT_MUST_CHECK;
/* The port's lower stream is open (e.g. TCP connect completed). */
void agent_link_up(struct agent *a, uint32_t now_ms);
/* The lower stream failed or was closed by the peer. */
void agent_link_down(struct agent *a, uint32_t now_ms);
/* The lower stream may be readable or writable: progresses handshake, input, output. */
void agent_io(struct agent *a, uint32_t now_ms);
/* Timers: back-off, timeouts, keep-alive, resends, telemetry. Call at least every ~10 ms
 * or at agent_next_deadline(). */
void agent_tick(struct agent *a, uint32_t now_ms);
/* Requests a clean DISCONNECT (or stops reconnecting). */
void agent_stop(struct agent *a, uint32_t now_ms);

/* Publishes a message of the node's own (QoS 1) on fleet/<id>/<suffix> while RUNNING, e.g.
 * the OTA status after a reset. AGENT_ERR_STATE when not RUNNING, AGENT_ERR_PARAM for a
 * topic that does not fit, AGENT_ERR_NOSPACE when the in-flight window or the tx buffer is
 * full (try again later). */
agent_status_t agent_publish(struct agent *a, const char *suffix, const uint8_t *payload,
                             size_t len) AGENT_MUST_CHECK;

agent_phase_t agent_phase(const struct agent *a);
bool agent_finished(const struct agent *a); /* DONE or FAILED */
const struct agent_stats *agent_stats(const struct agent *a);
agent_status_t agent_last_error(const struct agent *a);
const char *agent_status_str(agent_status_t st);
const char *agent_phase_str(agent_phase_t ph);

/* A telemetry message (docs/protocol.md 3.9): [9, seq, timestamp_ms, payload] in CBOR, where
 * payload is the CBOR map {"v": sample}. Writes at most cap bytes. */
agent_status_t agent_telemetry_encode(uint8_t *out, size_t cap, uint32_t seq, uint64_t timestamp_ms,
                                      int32_t sample, size_t *ret_len) AGENT_MUST_CHECK;

#endif
