#include "relay.h"

#include <fleetgw/msg.h>
#include <stdio.h>
#include <string.h>

bool relay_node_valid(const char *s, size_t len)
{
    return msg_node_id_valid(s, len) == 0;
}

/* The topic grammar on both sides is proto's (msg_topic_parse/build, msg_cloud_topic_parse/
 * build): this file only decides which edge topics the relay handles and how they map. */

enum relay_kind relay_map_up(const char *topic, size_t len, const char *prefix, char *node,
                             size_t node_cap, char *out, size_t out_cap)
{
    struct msg_topic_parsed t;
    enum relay_kind kind = RELAY_NONE;

    if (node_cap > 0)
        node[0] = '\0';
    if (out_cap > 0)
        out[0] = '\0';
    if (node_cap < RELAY_NODE_MAX + 1 || out_cap == 0)
        return RELAY_NONE;
    if (msg_topic_parse(topic, len, &t) != MSG_OK)
        return RELAY_NONE;
    switch (t.topic) {
    case MSG_TOPIC_ATTEST_EVIDENCE:
        kind = RELAY_EVIDENCE;
        break;
    case MSG_TOPIC_STATUS:
        kind = RELAY_STATUS;
        break;
    case MSG_TOPIC_OTA_ACK:
        kind = RELAY_OTA_ACK;
        break;
    case MSG_TOPIC_OTA_REQUEST:
        kind = RELAY_OTA_REQUEST;
        break;
    case MSG_TOPIC_OTA_STATUS:
        kind = RELAY_OTA_STATUS;
        break;
    case MSG_TOPIC_UP:
        if (msg_cloud_sub_reserved(t.sub, t.sub_len))
            kind = RELAY_RESERVED; /* up/state would forge the gateway's nodes/<id>/state */
        else if (msg_cloud_up_from_edge(&t, prefix, strlen(prefix), out, out_cap, NULL) == MSG_OK)
            kind = RELAY_UP;
        break;
    default:
        break;
    }
    if (kind != RELAY_NONE) /* msg_topic_parse bounded it to RELAY_NODE_MAX (node_cap above) */
        memcpy(node, t.node_id, t.node_id_len + 1);
    return kind;
}

bool relay_map_down(const char *topic, size_t len, const char *prefix, char *node, size_t node_cap,
                    char *out, size_t out_cap)
{
    struct msg_cloud_parsed c;

    if (node_cap > 0)
        node[0] = '\0';
    if (out_cap > 0)
        out[0] = '\0';
    if (node_cap < RELAY_NODE_MAX + 1 || out_cap == 0)
        return false;
    if (msg_cloud_topic_parse(topic, len, prefix, strlen(prefix), &c) != MSG_OK ||
        c.topic != MSG_CLOUD_CMD)
        return false;
    if (msg_topic_build(MSG_TOPIC_DOWN, c.id, strlen(c.id), c.sub, c.sub_len, out, out_cap, NULL) !=
        MSG_OK) {
        out[0] = '\0';
        return false;
    }
    snprintf(node, node_cap, "%s", c.id);
    return true;
}

static void bucket_refill(struct token_bucket *b, uint64_t now_us, double rate, double burst)
{
    if (!b->primed) {
        b->tokens = burst;
        b->last_us = now_us;
        b->primed = true;
    }
    if (now_us > b->last_us) {
        /* Refill stops at burst; tokens above it (bucket_credit) are spent first. */
        if (b->tokens < burst) {
            b->tokens += (double)(now_us - b->last_us) * rate / 1e6;
            if (b->tokens > burst)
                b->tokens = burst;
        }
        b->last_us = now_us;
    }
}

bool bucket_take(struct token_bucket *b, uint64_t now_us, double rate, double burst)
{
    bucket_refill(b, now_us, rate, burst);
    if (b->tokens >= 1.0) {
        b->tokens -= 1.0;
        return true;
    }
    return false;
}

void bucket_credit(struct token_bucket *b, uint64_t now_us, double rate, double burst, double extra)
{
    bucket_refill(b, now_us, rate, burst);
    if (extra > 0)
        b->tokens += extra;
}

void bucket_cap(struct token_bucket *b, double burst)
{
    if (b->tokens > burst)
        b->tokens = burst;
}

uint64_t bucket_wait_us(const struct token_bucket *b, double rate)
{
    if (!b->primed || b->tokens >= 1.0 || rate <= 0)
        return 0;
    return (uint64_t)((1.0 - b->tokens) * 1e6 / rate) + 1;
}
