/* Relay rules, pure functions over outside bytes (fuzzed): which edge topics the relay handles
 * and how they map to the cloud namespace <prefix>/... and back (the grammar of both sides is
 * proto's fleetgw/msg.h), and a token bucket. */
#ifndef FLEETGWD_RELAY_H
#define FLEETGWD_RELAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <fleetgw/msg.h>

#define RELAY_NODE_MAX MSG_NODE_ID_MAX /* characters of a node id (docs/protocol.md) */

enum relay_kind {
    RELAY_NONE = 0,    /* not a topic the relay handles */
    RELAY_UP,          /* fleet/<node>/up[/...] */
    RELAY_EVIDENCE,    /* fleet/<node>/attest/evidence */
    RELAY_STATUS,      /* fleet/<node>/status (node-status: a trigger for attestation) */
    RELAY_RESERVED,    /* fleet/<node>/up/state: reserved (the gateway's nodes/<id>/state) */
    RELAY_OTA_ACK,     /* fleet/<node>/ota/ack     (node -> gateway, the OTA module's) */
    RELAY_OTA_REQUEST, /* fleet/<node>/ota/request */
    RELAY_OTA_STATUS,  /* fleet/<node>/ota/status */
};

/* Node ids: 1..48 of [A-Za-z0-9_-] (msg_node_id_valid). */
bool relay_node_valid(const char *s, size_t len);

/* Classifies an edge topic (topic,len need not be NUL terminated) and extracts the node id
 * into node (cap >= RELAY_NODE_MAX + 1). For RELAY_UP, writes the upstream topic
 * <prefix>/nodes/<node>/<sub> into out. <sub> follows docs/protocol.md
 * (1..64 chars, non-empty segments of [A-Za-z0-9_-]). Returns the kind, RELAY_NONE on anything
 * malformed or too long (out and node are then empty strings). prefix is the configured
 * uplink.topic_prefix, which config_parse() checked once: it is not checked per message. */
enum relay_kind relay_map_up(const char *topic, size_t len, const char *prefix, char *node,
                             size_t node_cap, char *out, size_t out_cap);

/* Maps a cloud command topic <prefix>/cmd/<node>/<sub> to fleet/<node>/down/<sub>.
 * Returns true on success. */
bool relay_map_down(const char *topic, size_t len, const char *prefix, char *node, size_t node_cap,
                    char *out, size_t out_cap);

struct token_bucket {
    double tokens;
    uint64_t last_us;
    bool primed;
};

/* Refills at rate tokens/s up to burst, then takes one token if available. */
bool bucket_take(struct token_bucket *b, uint64_t now_us, double rate, double burst);
/* Refills, then adds `extra` tokens above what burst allows: spent before the refill
 * resumes, until bucket_cap() takes the bucket back to burst. */
void bucket_credit(struct token_bucket *b, uint64_t now_us, double rate, double burst,
                   double extra);
void bucket_cap(struct token_bucket *b, double burst);
/* Microseconds until one token is available (0 if now). */
uint64_t bucket_wait_us(const struct token_bucket *b, double rate);

#endif
