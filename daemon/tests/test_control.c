/* Control request parsing: every command, and refusals of malformed requests. */
#include "check.h"
#include "control.h"

#include <string.h>

static int parse(const char *s, struct ctl_request *r, char *err)
{
    return ctl_parse_request(s, strlen(s), r, err, 160);
}

int main(void)
{
    struct ctl_request r;
    char err[160];
    char line[512];

    CHECK_EQ_INT(parse("{\"cmd\":\"status\"}", &r, err), 0);
    CHECK_EQ_INT(r.cmd, CTL_STATUS);
    CHECK_EQ_INT(parse("{\"cmd\":\"nodes\"}", &r, err), 0);
    CHECK_EQ_INT(r.cmd, CTL_NODES);
    CHECK_EQ_INT(parse("{\"cmd\":\"spool\"}", &r, err), 0);
    CHECK_EQ_INT(r.cmd, CTL_SPOOL);
    CHECK_EQ_INT(parse("{\"cmd\":\"node_show\",\"id\":\"abc-1\"}", &r, err), 0);
    CHECK_EQ_INT(r.cmd, CTL_NODE_SHOW);
    CHECK(strcmp(r.id, "abc-1") == 0);
    CHECK_EQ_INT(parse("{\"cmd\":\"node_remove\",\"id\":\"abc\"}", &r, err), 0);
    CHECK_EQ_INT(r.cmd, CTL_NODE_REMOVE);

    char hex[131];
    hex[0] = '0';
    hex[1] = '4';
    for (int i = 2; i < 130; i++)
        hex[i] = "0123456789abcdef"[i % 16];
    hex[130] = '\0';
    snprintf(line, sizeof(line),
             "{\"cmd\":\"node_add\",\"iak_pub\":\"%s\",\"device_class\":\"s1\"}", hex);
    CHECK_EQ_INT(parse(line, &r, err), 0);
    CHECK_EQ_INT(r.cmd, CTL_NODE_ADD);
    CHECK_EQ_INT(r.iak_pub[0], 0x04);
    CHECK_EQ_INT(r.iak_pub[1], 0x23);
    CHECK(strcmp(r.device_class, "s1") == 0);

    /* refusals */
    CHECK_EQ_INT(parse("{\"cmd\":\"reboot\"}", &r, err), -22);
    CHECK(strstr(err, "unknown command") != NULL);
    CHECK_EQ_INT(parse("{\"cmd\":1}", &r, err), -22);
    CHECK_EQ_INT(parse("[\"status\"]", &r, err), -22);
    CHECK_EQ_INT(parse("{\"cmd\":\"status\"} x", &r, err), -22);
    CHECK_EQ_INT(parse("{\"cmd\":\"node_show\",\"id\":\"a/b\"}", &r, err), -22);
    CHECK_EQ_INT(parse("{\"cmd\":\"node_show\"}", &r, err), -22);
    hex[0] = '0';
    hex[1] = '2';
    snprintf(line, sizeof(line),
             "{\"cmd\":\"node_add\",\"iak_pub\":\"%s\",\"device_class\":\"s1\"}", hex);
    CHECK_EQ_INT(parse(line, &r, err), -22);
    CHECK(strstr(err, "uncompressed") != NULL);
    hex[0] = '0';
    hex[1] = '4';
    hex[5] = 'g';
    snprintf(line, sizeof(line),
             "{\"cmd\":\"node_add\",\"iak_pub\":\"%s\",\"device_class\":\"s1\"}", hex);
    CHECK_EQ_INT(parse(line, &r, err), -22);
    CHECK_EQ_INT(parse("{\"cmd\":\"node_add\",\"iak_pub\":\"04\",\"device_class\":\"s\"}", &r, err),
                 -22);
    CHECK_EQ_INT(r.cmd, 0);
    return check_finish();
}
