#include "relay.h"

#include <fleetgw/msg.h>
#include <string.h>

_Static_assert(RELAY_NODE_MAX == MSG_NODE_ID_MAX, "node id length as in docs/protocol.md");

bool relay_node_valid(const char *s, size_t len)
{
    return msg_node_id_valid(s, len) == 0;
}

static bool sub_valid(const char *s, size_t len)
{
    return msg_subtopic_valid(s, len) == 0;
}

static bool has_bad_bytes(const char *t, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)t[i];
        if (c == 0 || c == '+' || c == '#')
            return true;
    }
    return false;
}

/* Appends src[0..n) to out at *pos, bounds checked by subtraction. */
static bool put(char *out, size_t cap, size_t *pos, const char *src, size_t n)
{
    if (n >= cap - *pos)
        return false;
    memcpy(out + *pos, src, n);
    *pos += n;
    out[*pos] = '\0';
    return true;
}

enum relay_kind relay_map_up(const char *topic, size_t len, const char *prefix, char *node,
                             size_t node_cap, char *out, size_t out_cap)
{
    static const char fleet[] = "fleet/";
    const size_t fl = sizeof(fleet) - 1;

    if (node_cap > 0)
        node[0] = '\0';
    if (out_cap > 0)
        out[0] = '\0';
    if (node_cap < RELAY_NODE_MAX + 1 || out_cap == 0)
        return RELAY_NONE;
    if (len <= fl || memcmp(topic, fleet, fl) != 0 || has_bad_bytes(topic, len))
        return RELAY_NONE;
    const char *n = topic + fl;
    size_t rest = len - fl;
    const char *slash = memchr(n, '/', rest);
    if (slash == NULL)
        return RELAY_NONE;
    size_t nl = (size_t)(slash - n);
    if (!relay_node_valid(n, nl))
        return RELAY_NONE;
    const char *tail = slash + 1; /* after "<node>/" */
    size_t tl = rest - nl - 1;

    if (tl == strlen("attest/evidence") && memcmp(tail, "attest/evidence", tl) == 0) {
        memcpy(node, n, nl);
        node[nl] = '\0';
        return RELAY_EVIDENCE;
    }
    if (tl == 6 && memcmp(tail, "status", 6) == 0) {
        memcpy(node, n, nl);
        node[nl] = '\0';
        return RELAY_STATUS;
    }
    if (tl < 4 || memcmp(tail, "up/", 3) != 0 || !sub_valid(tail + 3, tl - 3))
        return RELAY_NONE;
    const char *sub = tail + 2; /* "/<sub>" */
    size_t sl = tl - 2;
    size_t pos = 0;
    if (!put(out, out_cap, &pos, prefix, strlen(prefix)) ||
        !put(out, out_cap, &pos, "/nodes/", 7) || !put(out, out_cap, &pos, n, nl) ||
        !put(out, out_cap, &pos, sub, sl)) {
        out[0] = '\0';
        return RELAY_NONE;
    }
    memcpy(node, n, nl);
    node[nl] = '\0';
    return RELAY_UP;
}

bool relay_map_down(const char *topic, size_t len, const char *prefix, char *node, size_t node_cap,
                    char *out, size_t out_cap)
{
    size_t pl = strlen(prefix);

    if (node_cap > 0)
        node[0] = '\0';
    if (out_cap > 0)
        out[0] = '\0';
    if (node_cap < RELAY_NODE_MAX + 1 || out_cap == 0 || has_bad_bytes(topic, len))
        return false;
    if (len < pl + 5 || memcmp(topic, prefix, pl) != 0 || memcmp(topic + pl, "/cmd/", 5) != 0)
        return false;
    const char *n = topic + pl + 5;
    size_t rest = len - pl - 5;
    const char *slash = memchr(n, '/', rest);
    if (slash == NULL)
        return false;
    size_t nl = (size_t)(slash - n);
    if (!relay_node_valid(n, nl) || !sub_valid(slash + 1, rest - nl - 1))
        return false;
    const char *sub = slash; /* "/<sub>" */
    size_t sl = rest - nl;
    size_t pos = 0;
    if (!put(out, out_cap, &pos, "fleet/", 6) || !put(out, out_cap, &pos, n, nl) ||
        !put(out, out_cap, &pos, "/down", 5) || !put(out, out_cap, &pos, sub, sl)) {
        out[0] = '\0';
        return false;
    }
    memcpy(node, n, nl);
    node[nl] = '\0';
    return true;
}

bool bucket_take(struct token_bucket *b, uint64_t now_us, double rate, double burst)
{
    if (!b->primed) {
        b->tokens = burst;
        b->last_us = now_us;
        b->primed = true;
    }
    if (now_us > b->last_us) {
        b->tokens += (double)(now_us - b->last_us) * rate / 1e6;
        if (b->tokens > burst)
            b->tokens = burst;
        b->last_us = now_us;
    }
    if (b->tokens >= 1.0) {
        b->tokens -= 1.0;
        return true;
    }
    return false;
}

uint64_t bucket_wait_us(const struct token_bucket *b, double rate)
{
    if (!b->primed || b->tokens >= 1.0 || rate <= 0)
        return 0;
    return (uint64_t)((1.0 - b->tokens) * 1e6 / rate) + 1;
}
