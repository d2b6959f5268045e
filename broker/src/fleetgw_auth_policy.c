/* The edge broker's access rules: see fleetgw/auth_policy.h. Topics are judged with proto's
 * grammar (msg_topic_parse, msg_node_id_valid), never parsed here. */
#include "fleetgw/auth_policy.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "fleetgw/msg.h"

static const char topic_root[] = "fleet/";

enum auth_node_state auth_verdict_state(const char *verdict)
{
    if (verdict == NULL)
        return AUTH_NODE_ABSENT;
    if (strcmp(verdict, "trusted") == 0)
        return AUTH_NODE_TRUSTED;
    if (strcmp(verdict, "quarantined") == 0)
        return AUTH_NODE_QUARANTINED;
    if (strcmp(verdict, "unknown") == 0)
        return AUTH_NODE_UNKNOWN;
    return AUTH_NODE_BAD_VERDICT;
}

const char *auth_state_name(enum auth_node_state s)
{
    switch (s) {
    case AUTH_NODE_ABSENT:
        return "not enrolled";
    case AUTH_NODE_UNKNOWN:
        return "unknown";
    case AUTH_NODE_TRUSTED:
        return "trusted";
    case AUTH_NODE_QUARANTINED:
        return "quarantined";
    case AUTH_NODE_UNREADABLE:
        return "registry unreadable";
    case AUTH_NODE_BAD_VERDICT:
        return "unrecognised verdict";
    }
    return "?";
}

static struct auth_decision allow(const char *reason)
{
    return (struct auth_decision){true, reason};
}

static struct auth_decision deny(const char *reason)
{
    return (struct auth_decision){false, reason};
}

static bool node_id_ok(const char *username)
{
    return username != NULL && msg_node_id_valid(username, strlen(username)) == 0;
}

/* A node that is enrolled, whatever its verdict: what it may do is decided per topic. */
static struct auth_decision node_state_gate(enum auth_node_state state)
{
    switch (state) {
    case AUTH_NODE_TRUSTED:
    case AUTH_NODE_QUARANTINED:
    case AUTH_NODE_UNKNOWN:
        return allow("enrolled");
    case AUTH_NODE_ABSENT:
        return deny("node not enrolled in the registry (never added, or removed)");
    case AUTH_NODE_UNREADABLE:
        return deny("registry unreadable: nodes refused (fail closed)");
    case AUTH_NODE_BAD_VERDICT:
        return deny("registry verdict not recognised: node refused (fail closed)");
    }
    return deny("unknown node state");
}

struct auth_decision auth_connect(enum auth_listener l, const char *username, const char *client_id,
                                  enum auth_node_state state, const char *gateway_user,
                                  bool password_ok)
{
    (void)client_id; /* any client id: a node is known by its certificate, not its client id */
    if (l == AUTH_LISTENER_GATEWAY) {
        if (username == NULL || gateway_user == NULL || gateway_user[0] == '\0')
            return deny("gateway listener: no user name (only the gateway identity may connect)");
        if (strcmp(username, gateway_user) != 0)
            return deny("gateway listener: not the gateway identity");
        if (!password_ok)
            return deny("gateway listener: wrong password for the gateway identity");
        return allow("gateway identity");
    }
    if (l != AUTH_LISTENER_NODE)
        return deny("unknown listener kind");
    if (!node_id_ok(username))
        return deny("user name (certificate CN) is not a valid node id");
    return node_state_gate(state);
}

static bool under_own_prefix(const char *username, const char *topic)
{
    size_t rl = sizeof(topic_root) - 1u, ul = strlen(username);
    return strncmp(topic, topic_root, rl) == 0 && strncmp(topic + rl, username, ul) == 0 &&
           topic[rl + ul] == '/' && topic[rl + ul + 1u] != '\0';
}

static struct auth_decision node_acl(const char *username, enum auth_node_state state,
                                     enum auth_access access, const char *topic)
{
    struct msg_topic_parsed p;
    bool trusted = state == AUTH_NODE_TRUSTED;
    struct auth_decision gate = node_state_gate(state);

    if (!gate.allow)
        return gate;
    if (!node_id_ok(username))
        return deny("user name (certificate CN) is not a valid node id");
    if (access == AUTH_UNSUBSCRIBE)
        return allow("unsubscribe");
    if (access == AUTH_SUBSCRIBE) {
        /* A filter may hold wildcards after fleet/<id>/; each delivery is checked again
         * (AUTH_READ) against the concrete topic. */
        if (!under_own_prefix(username, topic))
            return deny("subscription outside fleet/<own id>/");
        return allow("subscription under fleet/<own id>/");
    }
    if (msg_topic_parse(topic, strlen(topic), &p) != MSG_OK)
        return deny("not a fleetgw node topic (proto topic grammar)");
    if (strcmp(p.node_id, username) != 0)
        return deny("topic of another node");
    if (access == AUTH_PUBLISH) {
        if (trusted)
            return allow("trusted node, own topic");
        if (p.topic == MSG_TOPIC_ATTEST_EVIDENCE || p.topic == MSG_TOPIC_STATUS)
            return allow("untrusted node: attestation evidence / status only");
        return deny(state == AUTH_NODE_QUARANTINED
                        ? "quarantined node: may publish only attest/evidence and status"
                        : "node not attested yet: may publish only attest/evidence and status");
    }
    if (access == AUTH_READ) {
        if (trusted)
            return allow("trusted node, own topic");
        if (p.topic == MSG_TOPIC_ATTEST_CHALLENGE)
            return allow("untrusted node: its attestation challenge");
        return deny("untrusted node: receives only its attestation challenge");
    }
    return deny("unknown access type");
}

static struct auth_decision gateway_acl(const char *username, const char *gateway_user,
                                        const char *topic)
{
    size_t rl = sizeof(topic_root) - 1u;
    if (username == NULL || gateway_user == NULL || gateway_user[0] == '\0' ||
        strcmp(username, gateway_user) != 0)
        return deny("gateway listener: not the gateway identity");
    if (strncmp(topic, topic_root, rl) != 0 || topic[rl] == '\0')
        return deny("gateway identity: outside fleet/");
    return allow("gateway identity under fleet/");
}

struct auth_decision auth_acl(enum auth_listener l, const char *username, const char *gateway_user,
                              enum auth_node_state state, enum auth_access access,
                              const char *topic)
{
    if (topic == NULL || topic[0] == '\0')
        return deny("empty topic");
    if (access != AUTH_PUBLISH && access != AUTH_SUBSCRIBE && access != AUTH_READ &&
        access != AUTH_UNSUBSCRIBE)
        return deny("unknown access type");
    if (l == AUTH_LISTENER_GATEWAY) {
        if (access == AUTH_UNSUBSCRIBE)
            return allow("unsubscribe");
        return gateway_acl(username, gateway_user, topic);
    }
    if (l != AUTH_LISTENER_NODE)
        return deny("unknown listener kind");
    if (username == NULL)
        return deny("no user name");
    return node_acl(username, state, access, topic);
}

__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t errlen, const char *fmt,
                                                      ...)
{
    va_list ap;
    if (err != NULL && errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static bool printable(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s == 0x7f)
            return false;
    return true;
}

static int set_path(char *dst, size_t cap, const char *key, const char *value, char *err,
                    size_t errlen)
{
    size_t n = strlen(value);
    if (n == 0 || value[0] != '/')
        return fail(err, errlen, "plugin_opt_%s: needs an absolute path", key);
    if (n >= cap)
        return fail(err, errlen, "plugin_opt_%s: path too long", key);
    if (!printable(value))
        return fail(err, errlen, "plugin_opt_%s: control character in the path", key);
    memcpy(dst, value, n + 1u);
    return 0;
}

int auth_option_set(struct auth_options *o, const char *key, const char *value, char *err,
                    size_t errlen)
{
    if (o == NULL || key == NULL)
        return fail(err, errlen, "%s", "no option");
    if (value == NULL)
        return fail(err, errlen, "plugin_opt_%s: no value", key);
    if (strcmp(key, "listener") == 0) {
        if (strcmp(value, "node") == 0)
            o->listener = AUTH_LISTENER_NODE;
        else if (strcmp(value, "gateway") == 0)
            o->listener = AUTH_LISTENER_GATEWAY;
        else
            return fail(err, errlen, "plugin_opt_listener: '%s' is neither node nor gateway",
                        printable(value) ? value : "(unprintable)");
        return 0;
    }
    if (strcmp(key, "registry") == 0)
        return set_path(o->registry, sizeof(o->registry), key, value, err, errlen);
    if (strcmp(key, "gateway_password_file") == 0)
        return set_path(o->password_file, sizeof(o->password_file), key, value, err, errlen);
    if (strcmp(key, "gateway_user") == 0) {
        size_t n = strlen(value);
        if (n == 0 || n > AUTH_USER_MAX || msg_node_id_valid(value, n) != 0)
            return fail(err, errlen, "plugin_opt_gateway_user: '%s' is not 1..64 of [A-Za-z0-9_-]",
                        printable(value) && n <= AUTH_USER_MAX ? value : "(bad value)");
        memcpy(o->gateway_user, value, n + 1u);
        return 0;
    }
    return fail(err, errlen,
                "plugin_opt_%s: unknown option (known: listener, registry, "
                "gateway_user, gateway_password_file)",
                printable(key) && strlen(key) < 64 ? key : "(bad key)");
}

int auth_options_check(const struct auth_options *o, char *err, size_t errlen)
{
    if (o->listener == AUTH_LISTENER_NODE) {
        if (o->registry[0] == '\0')
            return fail(err, errlen, "%s", "listener node needs plugin_opt_registry");
        if (o->gateway_user[0] != '\0' || o->password_file[0] != '\0')
            return fail(err, errlen, "%s",
                        "listener node takes no gateway_user/gateway_password_file (they "
                        "belong to the plugin instance of the gateway listener)");
        return 0;
    }
    if (o->gateway_user[0] == '\0' || o->password_file[0] == '\0')
        return fail(err, errlen, "%s",
                    "listener gateway needs plugin_opt_gateway_user and "
                    "plugin_opt_gateway_password_file");
    return 0;
}

int auth_password_parse(const char *buf, size_t len, char *out, size_t cap, char *err,
                        size_t errlen)
{
    size_t n = 0;
    if (buf == NULL || out == NULL || cap == 0)
        return fail(err, errlen, "%s", "no buffer");
    while (n < len && buf[n] != '\n')
        n++;
    if (n > 0 && buf[n - 1u] == '\r')
        n--;
    if (n == 0)
        return fail(err, errlen, "%s", "the first line (the password) is empty");
    if (n >= cap)
        return fail(err, errlen, "%s", "the password is too long");
    if (memchr(buf, '\0', n) != NULL)
        return fail(err, errlen, "%s", "the password contains a NUL byte");
    memcpy(out, buf, n);
    out[n] = '\0';
    return 0;
}

bool auth_password_equal(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned char diff = la != lb;
    for (size_t i = 0; i < la && i < lb; i++)
        diff |= (unsigned char)(a[i] ^ b[i]);
    return diff == 0;
}
