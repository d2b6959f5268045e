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
    CHECK_EQ_INT(n, 18);
    for (size_t i = 0; i < n; i++) {
        CHECK(t[i].handler != NULL);
        CHECK(ctl_command_of(t[i].cmd) == &t[i]);
        CHECK(ctl_command_find(t[i].name, strlen(t[i].name)) == &t[i]);
        CHECK(t[i].role == CTL_ROLE_READ || t[i].role == CTL_ROLE_ADMIN);
        for (size_t j = 0; j < i; j++)
            CHECK(strcmp(t[i].name, t[j].name) != 0);
        snprintf(line, sizeof(line), "{\"cmd\":\"%s\"}", t[i].name);
        int pr = parse(line, &r, err);
        /* "spec" is optional, the descriptor is checked by the server */
        unsigned required = t[i].args & ~(unsigned)(CTL_ARG_SPEC | CTL_ARG_FD);
        if (required == 0) {
            CHECK_EQ_INT(pr, 0);
            CHECK_EQ_INT(r.cmd, t[i].cmd);
            CHECK_EQ_INT(r.fd, -1);
            CHECK(!(t[i].args & CTL_ARG_SPEC) || strcmp(r.spec, "{}") == 0);
        } else {
            CHECK_EQ_INT(pr, -EINVAL);
            CHECK(strstr(err, (required & CTL_ARG_ID)         ? "'id'"
                              : (required & CTL_ARG_IAK_PUB)  ? "'iak_pub'"
                              : (required & CTL_ARG_DIGEST)   ? "'digest'"
                              : (required & CTL_ARG_CAMPAIGN) ? "'campaign'"
                                                              : "'iak_id'") != NULL);
        }
        /* reading commands need the read-only role, changing ones the admin role */
        CHECK((t[i].role == CTL_ROLE_ADMIN) ==
              (t[i].cmd == CTL_NODE_ADD || t[i].cmd == CTL_NODE_ADD_SYMMETRIC ||
               t[i].cmd == CTL_NODE_REMOVE || t[i].cmd == CTL_ATTEST || t[i].cmd == CTL_NODE_TAG ||
               t[i].cmd == CTL_OTA_STAGE || t[i].cmd == CTL_OTA_RM ||
               t[i].cmd == CTL_CAMPAIGN_CREATE || t[i].cmd == CTL_CAMPAIGN_HALT ||
               t[i].cmd == CTL_CAMPAIGN_RESUME || t[i].cmd == CTL_CAMPAIGN_ABORT));
    }
    /* The roles by name: what an operator reads in a refusal and in the docs. */
    CHECK(strcmp(ctl_role_name(CTL_ROLE_READ), "read-only") == 0);
    CHECK(strcmp(ctl_role_name(CTL_ROLE_ADMIN), "admin") == 0);
    CHECK(CTL_ROLE_READ < CTL_ROLE_ADMIN); /* control.c: a request needs role <= the peer's */
    static const char *const reads[] = {"status",     "nodes",         "node_show",      "spool",
                                        "ota_images", "campaign_list", "campaign_status"};
    for (size_t i = 0; i < sizeof(reads) / sizeof(reads[0]); i++) {
        const struct ctl_command *c = ctl_command_find(reads[i], strlen(reads[i]));
        CHECK(c != NULL && c->role == CTL_ROLE_READ);
    }
    static const char *const admins[] = {
        "node_add",      "node_add_symmetric", "node_remove",   "node_tag",
        "attest",        "ota_stage",          "ota_rm",        "campaign_create",
        "campaign_halt", "campaign_resume",    "campaign_abort"};
    for (size_t i = 0; i < sizeof(admins) / sizeof(admins[0]); i++) {
        const struct ctl_command *c = ctl_command_find(admins[i], strlen(admins[i]));
        CHECK(c != NULL && c->role == CTL_ROLE_ADMIN);
    }
    /* OTA arguments: a campaign id, a digest (8..64 hex), a spec object kept as its text */
    CHECK_EQ_INT(parse("{\"cmd\":\"campaign_halt\",\"campaign\":\"c-1.a\"}", &r, err), 0);
    CHECK(r.cmd == CTL_CAMPAIGN_HALT && strcmp(r.campaign, "c-1.a") == 0);
    CHECK_EQ_INT(parse("{\"cmd\":\"campaign_halt\",\"campaign\":\"c/1\"}", &r, err), -EINVAL);
    CHECK(strstr(err, "'campaign'") != NULL);
    CHECK_EQ_INT(parse("{\"cmd\":\"ota_rm\",\"digest\":\"0123abcd\"}", &r, err), 0);
    CHECK(strcmp(r.digest, "0123abcd") == 0);
    CHECK_EQ_INT(parse("{\"cmd\":\"ota_rm\",\"digest\":\"0123abc\"}", &r, err), -EINVAL);
    CHECK_EQ_INT(parse("{\"cmd\":\"ota_rm\",\"digest\":\"0123abcx\"}", &r, err), -EINVAL);
    CHECK_EQ_INT(parse("{\"cmd\":\"campaign_create\",\"spec\":{\"image\":\"ab\"}}", &r, err), 0);
    CHECK(r.cmd == CTL_CAMPAIGN_CREATE && strcmp(r.spec, "{\"image\":\"ab\"}") == 0);
    CHECK_EQ_INT(parse("{\"cmd\":\"campaign_create\",\"spec\":[1]}", &r, err), -EINVAL);
    CHECK(strstr(err, "'spec'") != NULL);
    /* node_add_symmetric: the IAK id (64 hex digits) and the sealed blob (hex, <= 1024 bytes) */
    {
        static char big[2 * 1025 + 200];
        const char *id64 = "2f287b4d3d4910f6cada9e1bd1b4648099e8c52c81aa4a6aebfa6fc86f19834e";
        snprintf(line, sizeof(line),
                 "{\"cmd\":\"node_add_symmetric\",\"iak_id\":\"%s\",\"iak_sealed\":"
                 "\"4647575300\",\"device_class\":\"sym\"}",
                 id64);
        CHECK_EQ_INT(parse(line, &r, err), 0);
        CHECK_EQ_INT(r.cmd, CTL_NODE_ADD_SYMMETRIC);
        CHECK(r.iak_id[0] == 0x2f && r.iak_id[31] == 0x4e);
        CHECK(r.iak_sealed_len == 5 && memcmp(r.iak_sealed, "FGWS", 4) == 0);
        CHECK(strcmp(r.device_class, "sym") == 0);
        snprintf(line, sizeof(line),
                 "{\"cmd\":\"node_add_symmetric\",\"iak_id\":\"%.62s\",\"iak_sealed\":"
                 "\"00\",\"device_class\":\"sym\"}",
                 id64);
        CHECK_EQ_INT(parse(line, &r, err), -EINVAL);
        CHECK(strstr(err, "'iak_id' must be 64 hex digits") != NULL);
        snprintf(line, sizeof(line),
                 "{\"cmd\":\"node_add_symmetric\",\"iak_id\":\"%s\",\"iak_sealed\":"
                 "\"0g\",\"device_class\":\"sym\"}",
                 id64);
        CHECK_EQ_INT(parse(line, &r, err), -EINVAL);
        CHECK(strstr(err, "'iak_sealed' is not hexadecimal") != NULL);
        int k =
            snprintf(big, sizeof(big),
                     "{\"cmd\":\"node_add_symmetric\",\"iak_id\":\"%s\",\"iak_sealed\":\"", id64);
        for (int q = 0; q < 2 * 1025; q++)
            big[k++] = '0';
        snprintf(big + k, sizeof(big) - (size_t)k, "\",\"device_class\":\"sym\"}");
        CHECK_EQ_INT(parse(big, &r, err), -EINVAL);
        CHECK(strstr(err, "'iak_sealed' must be 1..2048 characters") != NULL);
    }
    CHECK(ctl_command_find("statu", 5) == NULL);
    CHECK(ctl_command_find("status\0", 7) == NULL);
    return check_finish();
}
