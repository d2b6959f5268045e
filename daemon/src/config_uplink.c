/* config_uplink.c: the uplink's brokers in the configuration: uplink.hosts (a list of
 * host/port endpoints) or uplink.host + uplink.port, the server name each endpoint is checked
 * against, and uplink.service's limits (aws-iot). The key table, the parser and the other
 * checks are config.c's; errors are reported through its config_fail(). */
#define _GNU_SOURCE
#include "config.h"
#include "config_internal.h"
#include "jsonutil.h"

#include <errno.h>
#include <fleetgw/msg.h>
#include <json-c/json.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* A broker host name or address literal: printable ASCII without spaces, '/' or quotes (what
 * getaddrinfo() and a certificate name check can take). */
static bool valid_host(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] <= ' ' || s[i] > '~' || s[i] == '/' || s[i] == '"' || s[i] == '\\')
            return false;
    return true;
}

/* uplink.hosts: [{"host": "a.example", "port": 8883}, ...], 1..max entries, each a
 * distinct endpoint. Written to cfg only when the whole list is valid. */
int config_set_hosts(json_object *v, const char *section, const char *key, long long max,
                     const char *name, const char *text, size_t len, struct config *cfg,
                     struct config_error *err)
{
    struct config_endpoint eps[CONFIG_HOSTS_MAX];
    memset(eps, 0, sizeof(eps));
    if (json_object_get_type(v) != json_type_array)
        return config_fail(err, CONFIG_EXIT_TYPE, name, text, len, section, key,
                           "expected an array of {\"host\": ..., \"port\": ...} objects, found %s",
                           json_type_word(v));
    size_t n = json_object_array_length(v);
    if (n == 0)
        return config_fail(err, CONFIG_EXIT_RANGE, name, text, len, section, key,
                           "the list is empty: fleetgwd would have no broker to connect to");
    if (n > (size_t)max)
        return config_fail(err, CONFIG_EXIT_RANGE, name, text, len, section, key,
                           "%zu entries, at most %lld are accepted", n, max);
    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(v, i);
        if (json_object_get_type(e) != json_type_object)
            return config_fail(
                err, CONFIG_EXIT_TYPE, name, text, len, section, key,
                "entry %zu: expected an object {\"host\": ..., \"port\": ...}, found %s", i,
                json_type_word(e));
        bool have_host = false, have_port = false;
        json_object_object_foreach(e, k, ev)
        {
            if (strcmp(k, "host") == 0) {
                if (json_object_get_type(ev) != json_type_string)
                    return config_fail(err, CONFIG_EXIT_TYPE, name, text, len, section, key,
                                       "entry %zu: host: expected a string, found %s", i,
                                       json_type_word(ev));
                const char *h = json_object_get_string(ev);
                size_t hl = (size_t)json_object_get_string_len(ev);
                if (strlen(h) != hl || hl >= sizeof(eps[i].host) || !valid_host(h, hl))
                    return config_fail(
                        err, CONFIG_EXIT_RANGE, name, text, len, section, key,
                        "entry %zu: host '%.80s' is not a host name or address (1..%zu "
                        "printable characters, no spaces, '/', quotes or backslashes)",
                        i, h, sizeof(eps[i].host) - 1);
                memcpy(eps[i].host, h, hl + 1);
                have_host = true;
            } else if (strcmp(k, "port") == 0) {
                if (json_object_get_type(ev) != json_type_int)
                    return config_fail(err, CONFIG_EXIT_TYPE, name, text, len, section, key,
                                       "entry %zu: port: expected an integer, found %s", i,
                                       json_type_word(ev));
                errno = 0;
                int64_t p = json_object_get_int64(ev);
                if (errno != 0 || p < 1 || p > 65535)
                    return config_fail(err, CONFIG_EXIT_RANGE, name, text, len, section, key,
                                       "entry %zu: port %s is out of range [1, 65535]", i,
                                       json_object_to_json_string(ev));
                eps[i].port = (int)p;
                have_port = true;
            } else {
                return config_fail(
                    err, CONFIG_EXIT_UNKNOWN_KEY, name, text, len, section, key,
                    "entry %zu: unknown key '%.60s' (an entry has \"host\" and \"port\")", i, k);
            }
        }
        if (!have_host || !have_port)
            return config_fail(err, CONFIG_EXIT_MISSING, name, text, len, section, key,
                               "entry %zu: \"%s\" is missing (an entry has \"host\" and \"port\")",
                               i, have_host ? "port" : "host");
        for (size_t j = 0; j < i; j++)
            if (eps[j].port == eps[i].port && strcmp(eps[j].host, eps[i].host) == 0)
                return config_fail(err, CONFIG_EXIT_RANGE, name, text, len, section, key,
                                   "entry %zu: %s port %d is already entry %zu", i, eps[i].host,
                                   eps[i].port, j);
    }
    memcpy(cfg->uplink.hosts, eps, sizeof(eps));
    cfg->uplink.n_hosts = (int)n;
    return 0;
}

/* uplink.host + uplink.port or uplink.hosts; afterwards both forms are filled in (the list,
 * and its first entry as host/port for what shows one broker), and server_name defaults to
 * each endpoint's own host. */
static int validate_endpoints(const char *name, const char *text, size_t len, struct config *cfg,
                              struct config_error *err)
{
    struct config_endpoint *eps = cfg->uplink.hosts;
    if (cfg->uplink.n_hosts > 0) {
        if (cfg->uplink.host[0] != '\0' || cfg->uplink.port != 0)
            return config_fail(err, CONFIG_EXIT_RANGE, name, text, len, "uplink",
                               cfg->uplink.host[0] != '\0' ? "host" : "port",
                               "uplink.hosts and uplink.host/uplink.port exclude each other (give "
                               "every broker, with its port, in uplink.hosts)");
        _Static_assert(sizeof(cfg->uplink.host) == sizeof(eps[0].host), "host sizes");
        memcpy(cfg->uplink.host, eps[0].host, sizeof(cfg->uplink.host));
        cfg->uplink.host[sizeof(cfg->uplink.host) - 1] = '\0';
        cfg->uplink.port = eps[0].port;
    } else {
        if (cfg->uplink.host[0] == '\0')
            return config_fail(err, CONFIG_EXIT_MISSING, name, NULL, 0, "uplink", "host",
                               "this key is required and missing (or give uplink.hosts, a list of "
                               "brokers)");
        if (cfg->uplink.port == 0)
            return config_fail(err, CONFIG_EXIT_MISSING, name, NULL, 0, "uplink", "port",
                               "this key is required and missing");
        if (!valid_host(cfg->uplink.host, strlen(cfg->uplink.host)))
            return config_fail(err, CONFIG_EXIT_RANGE, name, text, len, "uplink", "host",
                               "'%s' is not a host name or address (no spaces, '/', quotes or "
                               "backslashes)",
                               cfg->uplink.host);
        memset(eps, 0, sizeof(cfg->uplink.hosts));
        memcpy(eps[0].host, cfg->uplink.host, sizeof(eps[0].host));
        eps[0].port = cfg->uplink.port;
        cfg->uplink.n_hosts = 1;
    }
    cfg->uplink.server_name_per_host = cfg->uplink.server_name[0] == '\0';
    if (cfg->uplink.server_name_per_host)
        memcpy(cfg->uplink.server_name, cfg->uplink.host, sizeof(cfg->uplink.server_name));
    return 0;
}

/* uplink.service: "generic" (any MQTT 3.1.1 broker) or "aws-iot", whose documented limits
 * are checked here where the configuration decides them (docs/operator-guide.md). */
static int validate_service(const char *name, const char *text, size_t len,
                            const struct config *cfg, struct config_error *err)
{
    const char *svc = cfg->uplink.service;
    if (strcmp(svc, "generic") == 0)
        return 0;
    if (strcmp(svc, "aws-iot") != 0)
        return config_fail(err, CONFIG_EXIT_RANGE, name, text, len, "uplink", "service",
                           "'%s' is not one of generic, aws-iot", svc);
    if (cfg->limits.max_message_bytes > CONFIG_AWS_IOT_PAYLOAD_MAX)
        return config_fail(err, CONFIG_EXIT_RANGE, name, text, len, "limits", "max_message_bytes",
                           "%d is larger than AWS IoT Core's payload limit of %d bytes "
                           "(uplink.service is aws-iot)",
                           cfg->limits.max_message_bytes, CONFIG_AWS_IOT_PAYLOAD_MAX);
    if (strlen(cfg->uplink.client_id) > CONFIG_AWS_IOT_CLIENT_ID_MAX)
        return config_fail(err, CONFIG_EXIT_RANGE, name, text, len, "uplink", "client_id",
                           "%zu bytes, AWS IoT Core accepts at most %d (uplink.service is aws-iot; "
                           "use the thing name)",
                           strlen(cfg->uplink.client_id), CONFIG_AWS_IOT_CLIENT_ID_MAX);
    /* The deepest fixed topic: <prefix>/nodes/<node id>/<sub>, the node id at its maximum
     * and a one-level sub-topic; "/gateway/<client id>/status" has as many levels. */
    const char *p = cfg->uplink.topic_prefix;
    int slashes = 0;
    for (const char *q = p; *q; q++)
        slashes += *q == '/';
    if (slashes + 3 > CONFIG_AWS_IOT_SLASHES_MAX)
        return config_fail(err, CONFIG_EXIT_RANGE, name, text, len, "uplink", "topic_prefix",
                           "'%s' has %d levels: with /nodes/<node>/<sub> the upstream topics would "
                           "have more than AWS IoT Core's %d (uplink.service is aws-iot)",
                           p, slashes + 1, CONFIG_AWS_IOT_SLASHES_MAX + 1);
    size_t longest = strlen(p) + strlen("/nodes/") + MSG_NODE_ID_MAX + 2;
    if (longest > CONFIG_AWS_IOT_TOPIC_MAX)
        return config_fail(err, CONFIG_EXIT_RANGE, name, text, len, "uplink", "topic_prefix",
                           "%zu bytes: a node's topic could be longer than AWS IoT Core's %d "
                           "(uplink.service is aws-iot)",
                           strlen(p), CONFIG_AWS_IOT_TOPIC_MAX);
    return 0;
}

const char *config_uplink_server_name(const struct config *cfg, int i)
{
    if (cfg->uplink.server_name_per_host && i >= 0 && i < cfg->uplink.n_hosts)
        return cfg->uplink.hosts[i].host;
    return cfg->uplink.server_name;
}

int config_validate_uplink(const char *name, const char *text, size_t len, struct config *cfg,
                           struct config_error *err)
{
    int r = validate_endpoints(name, text, len, cfg, err);
    if (r < 0)
        return r;
    return validate_service(name, text, len, cfg, err);
}
