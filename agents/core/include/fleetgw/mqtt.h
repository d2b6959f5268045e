/* A small MQTT 3.1.1 client for the node agent: no heap, no globals, no clock of its own.
 *
 * Event-driven: the port feeds received bytes with mqtt_input(), passes time with
 * mqtt_tick(), and calls mqtt_flush() when the transport can take more bytes. Outgoing
 * packets are encoded into the caller's tx buffer and written through a struct transport.
 * Unacknowledged QoS 1 PUBLISH packets are kept in the caller's in-flight store and sent
 * again (DUP set) after a timeout and after a reconnect.
 *
 * Subset: CONNECT (client id, optional username/password, optional will, clean session,
 * keep-alive), CONNACK, PUBLISH QoS 0/1 both ways, PUBACK, SUBSCRIBE (QoS 0/1) / SUBACK,
 * PINGREQ/PINGRESP, DISCONNECT. Never sent: QoS 2, UNSUBSCRIBE. A packet from the broker
 * that this subset does not expect, or that is malformed, is a protocol error: the client
 * enters MQTT_STATE_ERROR and the caller drops the connection. */
#ifndef FLEETGW_MQTT_H
#define FLEETGW_MQTT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fleetgw/transport.h"

#if defined(__GNUC__)
#define MQTT_MUST_CHECK __attribute__((warn_unused_result))
#else
#define MQTT_MUST_CHECK
#endif

/* Hard limits. Remaining length is at most 4 bytes by the standard; on top of that a packet
 * may not exceed the caller's buffer, and never MQTT_MAX_PACKET. */
#define MQTT_MAX_PACKET       (64u * 1024u)
#define MQTT_MAX_INFLIGHT     8u  /* QoS 1 PUBLISH packets awaiting PUBACK */
#define MQTT_MAX_PENDING_ACKS 16u /* PUBACKs owed to the broker while the tx buffer is full */
#define MQTT_MAX_SUBSCRIBE    8u  /* topic filters in one SUBSCRIBE */
#define MQTT_MAX_TOPIC        256u

typedef enum mqtt_status {
    MQTT_OK = 0,
    MQTT_ERR_PARAM,    /* bad argument (NULL, empty or oversized string, bad QoS) */
    MQTT_ERR_STATE,    /* not allowed in the current state (e.g. publish before CONNACK) */
    MQTT_ERR_NOSPACE,  /* the packet does not fit the tx buffer now: flush and retry */
    MQTT_ERR_TOOBIG,   /* the packet can never fit (buffer or in-flight slot too small) */
    MQTT_ERR_BUSY,     /* all in-flight slots are in use: wait for PUBACKs */
    MQTT_ERR_IO,       /* the transport failed */
    MQTT_ERR_PROTOCOL, /* the broker sent a malformed or unexpected packet */
    MQTT_ERR_REFUSED,  /* CONNACK with a non-zero return code (see mqtt_connack_code) */
    MQTT_ERR_TIMEOUT   /* no CONNACK or PINGRESP in time */
} mqtt_status_t;

typedef enum mqtt_state {
    MQTT_STATE_IDLE = 0,   /* no connection; mqtt_connect() may be called */
    MQTT_STATE_CONNECTING, /* CONNECT queued, waiting for CONNACK */
    MQTT_STATE_CONNECTED,
    MQTT_STATE_ERROR /* fatal for this connection: call mqtt_connection_lost() */
} mqtt_state_t;

struct mqtt_message {
    const uint8_t *topic; /* not NUL-terminated; points into the rx buffer */
    size_t topic_len;
    const uint8_t *payload;
    size_t payload_len;
    uint8_t qos;
    bool dup;
    bool retain;
    uint16_t packet_id; /* 0 for QoS 0 */
};

/* Callbacks run from inside mqtt_input(). They may call mqtt_publish()/mqtt_subscribe(). */
struct mqtt_callbacks {
    void *user;
    void (*on_connack)(void *user, bool session_present);
    void (*on_message)(void *user, const struct mqtt_message *msg);
    void (*on_puback)(void *user, uint16_t packet_id);
    /* codes[i] is the granted QoS (0, 1, 2) or 0x80 (failure) for filter i. */
    void (*on_suback)(void *user, uint16_t packet_id, const uint8_t *codes, size_t n);
};

struct mqtt_config {
    uint8_t *rx_buf; /* largest packet accepted from the broker = rx_cap */
    size_t rx_cap;
    uint8_t *tx_buf; /* queue of encoded packets; largest packet sent = tx_cap */
    size_t tx_cap;
    uint8_t *store; /* in-flight QoS 1 copies: store_cap / MQTT_MAX_INFLIGHT bytes per slot */
    size_t store_cap;
    uint32_t retry_ms; /* resend an unacknowledged QoS 1 PUBLISH after this long */
    uint32_t connack_timeout_ms;
    struct transport *transport;
    struct mqtt_callbacks cb;
};

struct mqtt_connect_options {
    const char *client_id;   /* 1..23 chars recommended; up to MQTT_MAX_TOPIC accepted */
    const char *username;    /* optional */
    const uint8_t *password; /* optional, requires username */
    size_t password_len;
    bool clean_session;
    uint16_t keep_alive_s;  /* 0 disables PINGREQ */
    const char *will_topic; /* optional */
    const uint8_t *will_payload;
    size_t will_payload_len;
    uint8_t will_qos;
    bool will_retain;
};

struct mqtt_inflight {
    uint32_t sent_ms;
    uint16_t packet_id; /* 0 = free slot */
    uint16_t len;
};

/* Everything one connection needs, apart from the caller's buffers. Treat as opaque. */
struct mqtt_client {
    struct mqtt_config cfg;
    mqtt_state_t state;
    uint8_t connack_code;
    uint16_t keep_alive_s;
    uint16_t next_packet_id;
    /* receive state machine */
    uint8_t rx_header;
    uint8_t rx_len_bytes;
    uint8_t rx_phase; /* 0 fixed header byte, 1 remaining length, 2 body */
    uint32_t rx_remaining;
    uint32_t rx_multiplier;
    size_t rx_have;
    /* transmit queue: bytes [tx_head, tx_len) are waiting for the transport */
    size_t tx_head;
    size_t tx_len;
    /* timers (caller's clock, milliseconds, wrapping arithmetic) */
    uint32_t now_ms;
    uint32_t last_tx_ms;
    uint32_t connect_ms;
    uint32_t ping_sent_ms;
    bool ping_outstanding;
    uint16_t subscribe_pending; /* packet id of the SUBSCRIBE awaiting SUBACK, 0 if none */
    uint16_t pending_acks[MQTT_MAX_PENDING_ACKS];
    uint8_t pending_ack_count;
    struct mqtt_inflight inflight[MQTT_MAX_INFLIGHT];
    size_t slot_size;
};

/* Checks and copies cfg; the buffers stay the caller's and must outlive the client. */
mqtt_status_t mqtt_init(struct mqtt_client *cl, const struct mqtt_config *cfg) MQTT_MUST_CHECK;

/* Queues CONNECT on a freshly opened transport. State must be IDLE. */
mqtt_status_t mqtt_connect(struct mqtt_client *cl, const struct mqtt_connect_options *opt,
                           uint32_t now_ms) MQTT_MUST_CHECK;

/* Queues PUBLISH. For QoS 1 a packet id is assigned (*ret_packet_id, may be NULL), a copy is
 * kept until PUBACK and resent as needed. Topic must not contain wildcards. */
mqtt_status_t mqtt_publish(struct mqtt_client *cl, const char *topic, const uint8_t *payload,
                           size_t payload_len, uint8_t qos, bool retain,
                           uint16_t *ret_packet_id) MQTT_MUST_CHECK;

/* Queues one SUBSCRIBE with n (1..MQTT_MAX_SUBSCRIBE) filters at the given QoS (0/1). */
mqtt_status_t mqtt_subscribe(struct mqtt_client *cl, const char *const *filters, const uint8_t *qos,
                             size_t n, uint16_t *ret_packet_id) MQTT_MUST_CHECK;

/* Queues DISCONNECT and returns to IDLE once it is written (mqtt_flush). */
mqtt_status_t mqtt_disconnect(struct mqtt_client *cl) MQTT_MUST_CHECK;

/* Parses bytes from the broker, running callbacks for complete packets. Any error other
 * than MQTT_ERR_NOSPACE/IO leaves the client in MQTT_STATE_ERROR. */
mqtt_status_t mqtt_input(struct mqtt_client *cl, const uint8_t *buf, size_t len) MQTT_MUST_CHECK;

/* Advances timers: CONNACK timeout, keep-alive PINGREQ and its timeout, QoS 1 resends.
 * Also flushes. */
mqtt_status_t mqtt_tick(struct mqtt_client *cl, uint32_t now_ms) MQTT_MUST_CHECK;

/* Tells the client the time without running any timer, so that packets queued next (e.g.
 * from a caller that publishes before calling mqtt_tick) are stamped correctly. */
void mqtt_set_time(struct mqtt_client *cl, uint32_t now_ms);

/* Writes as much of the tx queue as the transport accepts. */
mqtt_status_t mqtt_flush(struct mqtt_client *cl) MQTT_MUST_CHECK;

/* The transport is gone (closed, failed, or the caller gave up). Clears the connection
 * state; keeps the in-flight QoS 1 messages, which are resent after the next CONNACK. */
void mqtt_connection_lost(struct mqtt_client *cl);

/* Forgets the in-flight messages too (e.g. before a clean-session reconnect that should
 * not resend). */
void mqtt_drop_inflight(struct mqtt_client *cl);

mqtt_state_t mqtt_state(const struct mqtt_client *cl);
bool mqtt_want_write(const struct mqtt_client *cl);
size_t mqtt_inflight_count(const struct mqtt_client *cl);
uint8_t mqtt_connack_code(const struct mqtt_client *cl);
const char *mqtt_status_str(mqtt_status_t st);

#endif
