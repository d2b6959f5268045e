/* Fuzz target: every message decoder (msg_decode() dispatches on the type field, so one target
 * reaches all of them) and the topic parser. Properties: no crash/overread; an accepted message
 * re-encodes to exactly the input; an accepted topic rebuilds to exactly the input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fleetgw/msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t out[8192];

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
    return 0;
}
