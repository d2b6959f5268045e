/* Fuzz target: every message decoder (msg_decode() dispatches on the type field, so one target
 * reaches all of them), the node topic parser and the cloud topic parser (under a fixed prefix,
 * and under the input's own first segments as prefix). Properties: no crash/overread; an
 * accepted message re-encodes to exactly the input; an accepted topic rebuilds to exactly the
 * input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fleetgw/msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t out[8192];

static void cloud_roundtrip(const char *t, size_t len, const char *prefix, size_t prefix_len)
{
    static struct msg_cloud_parsed c;
    static char topic[MSG_CLOUD_TOPIC_MAX + 1];
    size_t n = 0;
    if (msg_cloud_topic_parse(t, len, prefix, prefix_len, &c) != MSG_OK)
        return;
    if (msg_cloud_topic_build(c.topic, prefix, prefix_len, c.id, strlen(c.id), c.sub, c.sub_len,
                              topic, sizeof(topic), &n) != MSG_OK ||
        n != len || memcmp(topic, t, len) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct msg m;
    struct msg_topic_parsed t;
    size_t len = 0;
    char topic[MSG_TOPIC_MAX];

    enum msg_err r = msg_decode(data, size, &m);
    if (r == MSG_OK) {
        if (msg_validate(&m) != MSG_OK || msg_encode(&m, out, sizeof(out), &len) != MSG_OK ||
            len != size || memcmp(out, data, size) != 0)
            abort();
    } else if (m.type != 0) {
        abort();
    }
    r = msg_topic_parse((const char *)data, size, &t);
    if (r == MSG_OK) {
        if (msg_topic_build(t.topic, t.node_id, strlen(t.node_id), t.sub, t.sub_len, topic,
                            sizeof(topic), &len) != MSG_OK ||
            len != size || memcmp(topic, data, size) != 0)
            abort();
    }
    static const char fixed_prefix[] = "acme/site1";
    cloud_roundtrip((const char *)data, size, fixed_prefix, sizeof(fixed_prefix) - 1);
    /* The input's first byte chooses how much of it is taken as the prefix. */
    if (size > 1 && (size_t)data[0] < size - 1)
        cloud_roundtrip((const char *)data + 1, size - 1, (const char *)data + 1, data[0]);
    return 0;
}
