/* Control request parsing: every command, and refusals of malformed requests. */
#include "check.h"
#include "control.h"
#include "ctl_api.h"

#include <errno.h>
#include <stdio.h>
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
    /* The one table: every name is unique, has a handler, parses to its own command with
     * exactly its arguments, and a request missing an argument is refused naming it. */
    size_t n = 0;
    const struct ctl_command *t = ctl_commands(&n);
    CHECK_EQ_INT(n, 7);
    for (size_t i = 0; i < n; i++) {
        CHECK(t[i].handler != NULL);
        CHECK(ctl_command_of(t[i].cmd) == &t[i]);
        CHECK(ctl_command_find(t[i].name, strlen(t[i].name)) == &t[i]);
        CHECK(t[i].role == CTL_ROLE_OBSERVE || t[i].role == CTL_ROLE_OPERATE);
        for (size_t j = 0; j < i; j++)
            CHECK(strcmp(t[i].name, t[j].name) != 0);
        snprintf(line, sizeof(line), "{\"cmd\":\"%s\"}", t[i].name);
        int pr = parse(line, &r, err);
        if (t[i].args == 0) {
            CHECK_EQ_INT(pr, 0);
            CHECK_EQ_INT(r.cmd, t[i].cmd);
        } else {
            CHECK_EQ_INT(pr, -EINVAL);
            CHECK(strstr(err, (t[i].args & CTL_ARG_ID) ? "'id'" : "'iak_pub'") != NULL);
        }
        /* reading commands observe, changing ones operate */
        CHECK((t[i].role == CTL_ROLE_OPERATE) ==
              (t[i].cmd == CTL_NODE_ADD || t[i].cmd == CTL_NODE_REMOVE || t[i].cmd == CTL_ATTEST));
    }
    CHECK(ctl_command_find("statu", 5) == NULL);
    CHECK(ctl_command_find("status\0", 7) == NULL);
    return check_finish();
}
