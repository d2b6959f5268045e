/* The edge broker plugin's rules (fleetgw/auth_policy.h): CONNECT by registry state, topics
 * confined to the node's own id, the quarantine allow-list, the gateway identity, options and
 * the password file. */
#include "check.h"

#include <string.h>

#include "fleetgw/auth_policy.h"

#define N AUTH_LISTENER_NODE
#define G AUTH_LISTENER_GATEWAY

static bool pub(enum auth_node_state s, const char *user, const char *topic)
{
    return auth_acl(N, user, NULL, s, AUTH_PUBLISH, topic).allow;
}

static bool rd(enum auth_node_state s, const char *user, const char *topic)
{
    return auth_acl(N, user, NULL, s, AUTH_READ, topic).allow;
}

static bool sub(enum auth_node_state s, const char *user, const char *topic)
{
    return auth_acl(N, user, NULL, s, AUTH_SUBSCRIBE, topic).allow;
}

static void test_connect(void)
{
    CHECK(auth_connect(N, "n1", "c", AUTH_NODE_TRUSTED, NULL, false).allow);
    CHECK(auth_connect(N, "n1", "c", AUTH_NODE_QUARANTINED, NULL, false).allow);
    CHECK(auth_connect(N, "n1", "c", AUTH_NODE_UNKNOWN, NULL, false).allow);
    CHECK(!auth_connect(N, "n1", "c", AUTH_NODE_ABSENT, NULL, false).allow);
    CHECK(strstr(auth_connect(N, "n1", "c", AUTH_NODE_ABSENT, NULL, false).reason,
                 "not enrolled") != NULL);
    CHECK(!auth_connect(N, "n1", "c", AUTH_NODE_UNREADABLE, NULL, false).allow);
    CHECK(!auth_connect(N, "n1", "c", AUTH_NODE_BAD_VERDICT, NULL, false).allow);
    CHECK(!auth_connect(N, NULL, "c", AUTH_NODE_TRUSTED, NULL, false).allow);
    CHECK(!auth_connect(N, "a/b", "c", AUTH_NODE_TRUSTED, NULL, false).allow);
    CHECK(!auth_connect(N, "n+", "c", AUTH_NODE_TRUSTED, NULL, false).allow);
    CHECK(!auth_connect(N, "", "c", AUTH_NODE_TRUSTED, NULL, false).allow);
    /* Gateway listener: the configured user with the right password, nobody else. */
    CHECK(auth_connect(G, "fleetgwd", "x", AUTH_NODE_ABSENT, "fleetgwd", true).allow);
    CHECK(!auth_connect(G, "fleetgwd", "x", AUTH_NODE_ABSENT, "fleetgwd", false).allow);
    CHECK(!auth_connect(G, "operator", "x", AUTH_NODE_TRUSTED, "fleetgwd", true).allow);
    CHECK(!auth_connect(G, NULL, "x", AUTH_NODE_TRUSTED, "fleetgwd", true).allow);
    CHECK(!auth_connect(G, "fleetgwd", "x", AUTH_NODE_TRUSTED, "", true).allow);
    CHECK(!auth_connect((enum auth_listener)7, "fleetgwd", "x", AUTH_NODE_TRUSTED, "fleetgwd", true)
               .allow);
}

static void test_node_acl(void)
{
    enum auth_node_state T = AUTH_NODE_TRUSTED, Q = AUTH_NODE_QUARANTINED, U = AUTH_NODE_UNKNOWN;
    /* Trusted: its own topics of the protocol, nothing else. */
    CHECK(pub(T, "n1", "fleet/n1/up/telemetry"));
    CHECK(pub(T, "n1", "fleet/n1/status"));
    CHECK(pub(T, "n1", "fleet/n1/ota/request"));
    CHECK(!pub(T, "n1", "fleet/n2/up/telemetry"));
    CHECK(!pub(T, "n1", "fleet/n10/up/telemetry"));
    CHECK(!pub(T, "n10", "fleet/n1/up/telemetry"));
    CHECK(!pub(T, "n1", "fleet/n1/nonsense"));
    CHECK(!pub(T, "n1", "fleet/n1"));
    CHECK(!pub(T, "n1", "other/n1/up/telemetry"));
    CHECK(!pub(T, "n1", "$SYS/broker"));
    CHECK(!pub(T, "n1", ""));
    CHECK(!pub(AUTH_NODE_ABSENT, "n1", "fleet/n1/up/telemetry"));
    CHECK(!pub(AUTH_NODE_UNREADABLE, "n1", "fleet/n1/attest/evidence"));
    CHECK(rd(T, "n1", "fleet/n1/down/command"));
    CHECK(rd(T, "n1", "fleet/n1/ota/chunk"));
    CHECK(!rd(T, "n1", "fleet/n2/down/command"));
    /* Quarantined or not yet attested: evidence and status out, the challenge in. */
    for (int i = 0; i < 2; i++) {
        enum auth_node_state s = i == 0 ? Q : U;
        CHECK(pub(s, "n1", "fleet/n1/attest/evidence"));
        CHECK(pub(s, "n1", "fleet/n1/status"));
        CHECK(!pub(s, "n1", "fleet/n1/up/telemetry"));
        CHECK(!pub(s, "n1", "fleet/n1/ota/request"));
        CHECK(!pub(s, "n1", "fleet/n2/attest/evidence"));
        CHECK(rd(s, "n1", "fleet/n1/attest/challenge"));
        CHECK(!rd(s, "n1", "fleet/n1/down/command"));
        CHECK(!rd(s, "n1", "fleet/n1/ota/offer"));
        CHECK(sub(s, "n1", "fleet/n1/#"));
    }
    CHECK(strstr(auth_acl(N, "n1", NULL, Q, AUTH_PUBLISH, "fleet/n1/up/t").reason, "quarantined") !=
          NULL);
    /* Subscriptions: filters below fleet/<own id>/ only. */
    CHECK(sub(T, "n1", "fleet/n1/#"));
    CHECK(sub(T, "n1", "fleet/n1/down/+"));
    CHECK(!sub(T, "n1", "fleet/#"));
    CHECK(!sub(T, "n1", "fleet/+/down/#"));
    CHECK(!sub(T, "n1", "fleet/n1"));
    CHECK(!sub(T, "n1", "fleet/n1/"));
    CHECK(!sub(T, "n1", "fleet/n10/#"));
    CHECK(!sub(T, "n1", "#"));
    CHECK(auth_acl(N, "n1", NULL, T, AUTH_UNSUBSCRIBE, "fleet/#").allow);
    CHECK(!auth_acl(N, "n1", NULL, T, (enum auth_access)9, "fleet/n1/status").allow);
    CHECK(!auth_acl(N, NULL, NULL, T, AUTH_PUBLISH, "fleet/n1/status").allow);
    CHECK(!auth_acl(N, "n1", NULL, T, AUTH_PUBLISH, NULL).allow);
}

static void test_gateway_acl(void)
{
    CHECK(
        auth_acl(G, "fleetgwd", "fleetgwd", AUTH_NODE_ABSENT, AUTH_PUBLISH, "fleet/n1/down/command")
            .allow);
    CHECK(auth_acl(G, "fleetgwd", "fleetgwd", AUTH_NODE_ABSENT, AUTH_SUBSCRIBE, "fleet/+/up/#")
              .allow);
    CHECK(auth_acl(G, "fleetgwd", "fleetgwd", AUTH_NODE_ABSENT, AUTH_READ, "fleet/n1/up/t").allow);
    CHECK(!auth_acl(G, "fleetgwd", "fleetgwd", AUTH_NODE_ABSENT, AUTH_PUBLISH, "other/x").allow);
    CHECK(!auth_acl(G, "fleetgwd", "fleetgwd", AUTH_NODE_ABSENT, AUTH_SUBSCRIBE, "#").allow);
    CHECK(!auth_acl(G, "fleetgwd", "fleetgwd", AUTH_NODE_ABSENT, AUTH_PUBLISH, "fleet/").allow);
    CHECK(!auth_acl(G, "operator", "fleetgwd", AUTH_NODE_TRUSTED, AUTH_PUBLISH,
                    "fleet/n1/down/command")
               .allow);
    CHECK(!auth_acl(G, NULL, "fleetgwd", AUTH_NODE_TRUSTED, AUTH_PUBLISH, "fleet/n1/status").allow);
}

static void test_options(void)
{
    struct auth_options o;
    char err[200];
    memset(&o, 0, sizeof(o));
    CHECK(auth_option_set(&o, "listener", "node", err, sizeof(err)) == 0);
    CHECK(auth_options_check(&o, err, sizeof(err)) != 0 && strstr(err, "registry") != NULL);
    CHECK(auth_option_set(&o, "registry", "relative.db", err, sizeof(err)) != 0 &&
          strstr(err, "absolute") != NULL);
    CHECK(auth_option_set(&o, "registry", "/var/lib/fleetgw/registry.db", err, sizeof(err)) == 0);
    CHECK(auth_options_check(&o, err, sizeof(err)) == 0);
    CHECK(strcmp(o.registry, "/var/lib/fleetgw/registry.db") == 0);
    CHECK(auth_option_set(&o, "listener", "both", err, sizeof(err)) != 0 &&
          strstr(err, "neither") != NULL);
    CHECK(auth_option_set(&o, "frobnicate", "1", err, sizeof(err)) != 0 &&
          strstr(err, "unknown option") != NULL);
    CHECK(auth_option_set(&o, "registry", NULL, err, sizeof(err)) != 0);
    CHECK(auth_option_set(&o, "registry", "/a\nb", err, sizeof(err)) != 0);
    CHECK(auth_option_set(&o, "gateway_user", "fleetgwd", err, sizeof(err)) == 0);
    CHECK(auth_options_check(&o, err, sizeof(err)) != 0); /* node listener takes none */
    memset(&o, 0, sizeof(o));
    CHECK(auth_option_set(&o, "listener", "gateway", err, sizeof(err)) == 0);
    CHECK(auth_option_set(&o, "gateway_user", "fleetgwd", err, sizeof(err)) == 0);
    CHECK(auth_options_check(&o, err, sizeof(err)) != 0 && strstr(err, "password") != NULL);
    CHECK(auth_option_set(&o, "gateway_password_file", "/etc/fleetgw/edge.secret", err,
                          sizeof(err)) == 0);
    CHECK(auth_options_check(&o, err, sizeof(err)) == 0);
    CHECK(auth_option_set(&o, "gateway_user", "a b", err, sizeof(err)) != 0);
    CHECK(auth_option_set(&o, "gateway_user", "", err, sizeof(err)) != 0);
    CHECK(strcmp(o.gateway_user, "fleetgwd") == 0); /* a refused value changes nothing */
}

static void test_password(void)
{
    char out[AUTH_PASSWORD_MAX + 1], err[100];
    CHECK(auth_password_parse("s3cret\n", 7, out, sizeof(out), err, sizeof(err)) == 0 &&
          strcmp(out, "s3cret") == 0);
    CHECK(auth_password_parse("s3cret\r\nmore\n", 13, out, sizeof(out), err, sizeof(err)) == 0 &&
          strcmp(out, "s3cret") == 0);
    CHECK(auth_password_parse("s3cret", 6, out, sizeof(out), err, sizeof(err)) == 0 &&
          strcmp(out, "s3cret") == 0);
    CHECK(auth_password_parse("\nx", 2, out, sizeof(out), err, sizeof(err)) != 0 &&
          strstr(err, "empty") != NULL);
    CHECK(auth_password_parse("", 0, out, sizeof(out), err, sizeof(err)) != 0);
    CHECK(auth_password_parse("a\0b\n", 4, out, sizeof(out), err, sizeof(err)) != 0);
    CHECK(auth_password_parse("abcdef", 6, out, 4, err, sizeof(err)) != 0 &&
          strstr(err, "too long") != NULL);
    CHECK(auth_password_equal("abc", "abc"));
    CHECK(!auth_password_equal("abc", "abd"));
    CHECK(!auth_password_equal("abc", "abcd"));
    CHECK(!auth_password_equal("", "a"));
}

static void test_verdicts(void)
{
    CHECK_EQ_INT(auth_verdict_state(NULL), AUTH_NODE_ABSENT);
    CHECK_EQ_INT(auth_verdict_state("trusted"), AUTH_NODE_TRUSTED);
    CHECK_EQ_INT(auth_verdict_state("quarantined"), AUTH_NODE_QUARANTINED);
    CHECK_EQ_INT(auth_verdict_state("unknown"), AUTH_NODE_UNKNOWN);
    CHECK_EQ_INT(auth_verdict_state("Trusted"), AUTH_NODE_BAD_VERDICT);
    CHECK(strcmp(auth_state_name(AUTH_NODE_ABSENT), "not enrolled") == 0);
}

int main(void)
{
    test_connect();
    test_node_acl();
    test_gateway_acl();
    test_options();
    test_password();
    test_verdicts();
    return check_finish();
}
