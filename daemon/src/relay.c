#include "relay.h"

#include <string.h>

bool relay_node_valid(const char *s, size_t len)
{
    if (len == 0 || len > RELAY_NODE_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_' || c == '.';
        if (!ok)
            return false;
    }
    return true;
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
    if (tl < 2 || memcmp(tail, "up", 2) != 0 || (tl > 2 && tail[2] != '/'))
        return RELAY_NONE;
    const char *sub = tail + 2; /* "" or "/<rest>" */
    size_t sl = tl - 2;
    if (sl == 1) /* "fleet/<node>/up/" : empty level, refuse */
        return RELAY_NONE;
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
    size_t nl = slash ? (size_t)(slash - n) : rest;
    if (!relay_node_valid(n, nl))
        return false;
    const char *sub = n + nl; /* "" or "/<rest>" */
    size_t sl = rest - nl;
    if (sl == 1)
        return false;
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
