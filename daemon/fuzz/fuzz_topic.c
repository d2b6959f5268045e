/* Fuzz target: topic mapping of MQTT topics from nodes and from the cloud. The first byte
 * selects the direction; the rest is the topic (not NUL terminated). */
#include "relay.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char node[RELAY_NODE_MAX + 1], out[512];
    if (size < 1)
        return 0;
    const char *t = (const char *)data + 1;
    size_t n = size - 1;
    if (data[0] & 1) {
        if (relay_map_down(t, n, "acme/site", node, sizeof(node), out, sizeof(out)))
            (void)strlen(out);
    } else {
        if (relay_map_up(t, n, "acme/site", node, sizeof(node), out, sizeof(out)) == RELAY_UP)
            (void)strlen(out);
    }
    return 0;
}
