/* Topic mapping edge <-> cloud and the token bucket. */
#include "check.h"
#include "relay.h"

#include <string.h>

static enum relay_kind up(const char *t, char *node, char *out)
{
    return relay_map_up(t, strlen(t), "acme/s1", node, RELAY_NODE_MAX + 1, out, 256);
}

int main(void)
{
    char node[RELAY_NODE_MAX + 1], out[256];

    CHECK_EQ_INT(up("fleet/n1/up/temp", node, out), RELAY_UP);
    CHECK(strcmp(node, "n1") == 0);
    CHECK(strcmp(out, "acme/s1/nodes/n1/temp") == 0);
    CHECK_EQ_INT(up("fleet/n1/up", node, out), RELAY_NONE);
    CHECK_EQ_INT(up("fleet/n.1/up/a", node, out), RELAY_NONE);
    CHECK_EQ_INT(up("fleet/n1/up/a//b", node, out), RELAY_NONE);
    CHECK_EQ_INT(up("fleet/n1/up/a/b/c", node, out), RELAY_UP);
    CHECK(strcmp(out, "acme/s1/nodes/n1/a/b/c") == 0);
    CHECK_EQ_INT(up("fleet/n1/attest/evidence", node, out), RELAY_EVIDENCE);
    CHECK(strcmp(node, "n1") == 0);
    CHECK_EQ_INT(up("fleet/n1/status", node, out), RELAY_STATUS);
    CHECK(strcmp(node, "n1") == 0);
    CHECK_EQ_INT(up("fleet/n1/status/x", node, out), RELAY_NONE);
    /* up/state is the gateway's own nodes/<id>/state upstream: reserved, never mapped. */
    CHECK_EQ_INT(up("fleet/n1/up/state", node, out), RELAY_RESERVED);
    CHECK(strcmp(node, "n1") == 0 && out[0] == '\0');
    CHECK_EQ_INT(up("fleet/n1/up/state/x", node, out), RELAY_UP);
    CHECK(strcmp(out, "acme/s1/nodes/n1/state/x") == 0);
    /* challenge topics are not the relay's; */
    /* the node's OTA replies go to the OTA module; what the gateway sends is not taken */
    CHECK_EQ_INT(up("fleet/n1/ota/status", node, out), RELAY_OTA_STATUS);
    CHECK(strcmp(node, "n1") == 0);
    CHECK_EQ_INT(up("fleet/n1/ota/ack", node, out), RELAY_OTA_ACK);
    CHECK_EQ_INT(up("fleet/n1/ota/request", node, out), RELAY_OTA_REQUEST);
    CHECK_EQ_INT(up("fleet/n1/ota/offer", node, out), RELAY_NONE);
    CHECK_EQ_INT(up("fleet/n1/ota/chunk", node, out), RELAY_NONE);
    CHECK_EQ_INT(up("fleet/n1/ota/confirm", node, out), RELAY_NONE);
    CHECK_EQ_INT(up("fleet/n1/attest/challenge", node, out), RELAY_NONE);
    CHECK_EQ_INT(up("fleet/n1/upx/a", node, out), RELAY_NONE);
    CHECK(out[0] == '\0' && node[0] == '\0');
    CHECK_EQ_INT(up("fleet/n1/up/", node, out), RELAY_NONE);
    CHECK_EQ_INT(up("fleet//up/a", node, out), RELAY_NONE);
    CHECK_EQ_INT(up("fleet/n 1/up/a", node, out), RELAY_NONE);
    CHECK_EQ_INT(up("fleet/n1/down/a", node, out), RELAY_NONE);
    CHECK_EQ_INT(up("other/n1/up/a", node, out), RELAY_NONE);
    CHECK_EQ_INT(up("fleet/n1/up/+", node, out), RELAY_NONE);
    CHECK_EQ_INT(up("fleet/", node, out), RELAY_NONE);
    char longnode[200] = "fleet/";
    memset(longnode + 6, 'a', 49);
    strcpy(longnode + 55, "/up/x");
    CHECK_EQ_INT(up(longnode, node, out), RELAY_NONE);
    /* Output too small: refused, not truncated. */
    CHECK_EQ_INT(relay_map_up("fleet/n1/up/temp", 16, "acme/s1", node, sizeof(node), out, 10),
                 RELAY_NONE);
    /* Not NUL-terminated input: only len bytes are looked at. */
    CHECK_EQ_INT(relay_map_up("fleet/n1/up/tempXXXX", 16, "p", node, sizeof(node), out, 256),
                 RELAY_UP);
    CHECK(strcmp(out, "p/nodes/n1/temp") == 0);

    CHECK(relay_map_down("acme/s1/cmd/n2/reboot", 21, "acme/s1", node, sizeof(node), out, 256));
    CHECK(strcmp(node, "n2") == 0);
    CHECK(strcmp(out, "fleet/n2/down/reboot") == 0);
    CHECK(!relay_map_down("acme/s1/cmd/n2", 14, "acme/s1", node, sizeof(node), out, 256));
    CHECK(!relay_map_down("acme/s1/cmd//x", 14, "acme/s1", node, sizeof(node), out, 256));
    CHECK(!relay_map_down("acme/s2/cmd/n2/x", 16, "acme/s1", node, sizeof(node), out, 256));
    CHECK(!relay_map_down("acme/s1/cmd/n2/", 15, "acme/s1", node, sizeof(node), out, 256));

    struct token_bucket b = {0};
    int taken = 0;
    for (int i = 0; i < 20; i++)
        taken += bucket_take(&b, 1000000, 5, 10);
    CHECK_EQ_INT(taken, 10); /* burst */
    CHECK(!bucket_take(&b, 1000000, 5, 10));
    CHECK(bucket_wait_us(&b, 5) > 199000 && bucket_wait_us(&b, 5) <= 200001);
    CHECK(bucket_take(&b, 1200001, 5, 10)); /* 0.2 s later: one token */
    CHECK(!bucket_take(&b, 1200001, 5, 10));
    taken = 0;
    for (int i = 0; i < 100; i++)
        taken += bucket_take(&b, 100000000, 5, 10);
    CHECK_EQ_INT(taken, 10); /* capped at burst after a long pause */
    return check_finish();
}
