/* The edge broker's access rules (the fleetgw mosquitto plugin, docs/operator-guide.md
 * "Edge broker plugin"): pure decisions, no mosquitto, no SQLite, no I/O.
 *
 * Listener "node" (TLS, user name = certificate CN = node id): a node that is not in the
 * registry is refused at CONNECT; an enrolled node may use only fleet/<its id>/...; a node
 * that is not trusted (verdict "quarantined" or "unknown": not attested yet) may publish only
 * fleet/<id>/attest/evidence and fleet/<id>/status and receive only fleet/<id>/attest/challenge.
 * Listener "gateway" (fleetgwd's unix socket): only the configured gateway user with the right
 * password connects, and it may use fleet/# (nothing outside fleet/). */
#ifndef FLEETGW_AUTH_POLICY_H
#define FLEETGW_AUTH_POLICY_H

#include <stdbool.h>
#include <stddef.h>

enum auth_listener { AUTH_LISTENER_NODE = 0, AUTH_LISTENER_GATEWAY };

/* What the registry says about a node id. */
enum auth_node_state {
    AUTH_NODE_ABSENT = 0,  /* no row: never enrolled, or removed */
    AUTH_NODE_UNKNOWN,     /* enrolled, verdict "unknown" (not attested yet) */
    AUTH_NODE_TRUSTED,     /* verdict "trusted" */
    AUTH_NODE_QUARANTINED, /* verdict "quarantined" */
    AUTH_NODE_UNREADABLE,  /* the registry cannot be read (fail closed) */
    AUTH_NODE_BAD_VERDICT, /* a verdict this plugin does not know (fail closed) */
};

enum auth_access { AUTH_PUBLISH = 0, AUTH_SUBSCRIBE, AUTH_READ, AUTH_UNSUBSCRIBE };

struct auth_decision {
    bool allow;
    const char *reason; /* static text, for the broker log */
};

/* The registry's verdict column as a state (NULL = no row). */
enum auth_node_state auth_verdict_state(const char *verdict);
const char *auth_state_name(enum auth_node_state s);

/* CONNECT. Node listener: username is the certificate CN, state its registry state
 * (password_ok ignored). Gateway listener: username must equal gateway_user and password_ok
 * must be true (state ignored). */
struct auth_decision auth_connect(enum auth_listener l, const char *username, const char *client_id,
                                  enum auth_node_state state, const char *gateway_user,
                                  bool password_ok);

/* One ACL check: topic is the publish topic, the subscription filter, or the topic of a
 * message about to be delivered (AUTH_READ). state as for auth_connect. */
struct auth_decision auth_acl(enum auth_listener l, const char *username, const char *gateway_user,
                              enum auth_node_state state, enum auth_access access,
                              const char *topic);

/* The plugin's options (plugin_opt_<key> <value> lines of mosquitto.conf). */
#define AUTH_OPT_PATH_MAX 4096
#define AUTH_USER_MAX     64
struct auth_options {
    enum auth_listener listener;
    char registry[AUTH_OPT_PATH_MAX];      /* node listener: the registry database */
    char gateway_user[AUTH_USER_MAX + 1];  /* gateway listener */
    char password_file[AUTH_OPT_PATH_MAX]; /* gateway listener */
};
/* Sets one option; 0, or -1 with a message in err (what and why) when the key is unknown or
 * the value is bad. */
int auth_option_set(struct auth_options *o, const char *key, const char *value, char *err,
                    size_t errlen);
/* After every option: 0 when the set is complete for its listener, else -1 and a message. */
int auth_options_check(const struct auth_options *o, char *err, size_t errlen);

/* The gateway password file's content (the format of fleetgwd's edge.password_file: the first
 * line is the password, a trailing "\n" or "\r\n" is not part of it). Copies it to out (NUL
 * terminated); 0, or -1 with a message when empty, longer than cap-1, or containing a NUL. */
#define AUTH_PASSWORD_MAX 256
int auth_password_parse(const char *buf, size_t len, char *out, size_t cap, char *err,
                        size_t errlen);
/* Constant-time comparison of two NUL-terminated passwords (time depends on the lengths only). */
bool auth_password_equal(const char *a, const char *b);

#endif
