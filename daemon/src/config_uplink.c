/* config_uplink.c: the uplink's brokers in the configuration: uplink.hosts (a list of
 * host/port endpoints) or uplink.host + uplink.port, the server name each endpoint is checked
 * against, and uplink.profile (uplink.service): the cloud service's documented limits and
 * the shaping keys' defaults (issue 17). The key table, the parser and the other
 * checks are config.c's; errors are reported through its config_fail(). */
#define _GNU_SOURCE
#include "config.h"
#include "config_internal.h"
#include "jsonutil.h"

#include <errno.h>
#include <fleetgw/batch.h>
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

/* The deepest fixed topic: <prefix>/nodes/<node id>/<sub>, the node id at its maximum and a
 * one-level sub-topic; "/gateway/<client id>/status" has as many levels. */
static int check_aws_topics(const char *name, const char *text, size_t len,
                            const struct config *cfg, struct config_error *err)
{
    const char *p = cfg->uplink.topic_prefix;
    int slashes = 0;
    for (const char *q = p; *q; q++)
        slashes += *q == '/';
    if (slashes + 3 > CONFIG_AWS_IOT_SLASHES_MAX)
        return config_fail(err, CONFIG_EXIT_RANGE, name, text, len, "uplink", "topic_prefix",
                           "'%s' has %d levels: with /nodes/<node>/<sub> the upstream topics would "
                           "have more than AWS IoT Core's %d (uplink.profile is aws-iot-core)",
                           p, slashes + 1, CONFIG_AWS_IOT_SLASHES_MAX + 1);
    size_t longest = strlen(p) + strlen("/nodes/") + MSG_NODE_ID_MAX + 2;
    if (longest > CONFIG_AWS_IOT_TOPIC_MAX)
        return config_fail(err, CONFIG_EXIT_RANGE, name, text, len, "uplink", "topic_prefix",
                           "%zu bytes: a node's topic could be longer than AWS IoT Core's %d "
                           "(uplink.profile is aws-iot-core)",
                           strlen(p), CONFIG_AWS_IOT_TOPIC_MAX);
    return 0;
}

/* AWS IoT Core's documented quotas (docs/operator-guide.md, "Connecting to AWS IoT Core"). */
static int validate_aws(const char *name, const char *text, size_t len, const struct config *cfg,
                        struct config_error *err)
{
    if (cfg->limits.max_message_bytes > CONFIG_AWS_IOT_PAYLOAD_MAX)
        return config_fail(err, CONFIG_EXIT_RANGE, name, text, len, "limits", "max_message_bytes",
                           "%d is larger than AWS IoT Core's payload limit of %d bytes "
                           "(uplink.profile is aws-iot-core)",
                           cfg->limits.max_message_bytes, CONFIG_AWS_IOT_PAYLOAD_MAX);
    if (strlen(cfg->uplink.client_id) > CONFIG_AWS_IOT_CLIENT_ID_MAX)
        return config_fail(err, CONFIG_EXIT_RANGE, name, text, len, "uplink", "client_id",
                           "%zu bytes, AWS IoT Core accepts at most %d (uplink.profile is "
                           "aws-iot-core; use the thing name)",
                           strlen(cfg->uplink.client_id), CONFIG_AWS_IOT_CLIENT_ID_MAX);
    if (cfg->uplink.client_id[0] == '$')
        return config_fail(err, CONFIG_EXIT_RANGE, name, text, len, "uplink", "client_id",
                           "'%s' starts with '$', which AWS IoT Core reserves (uplink.profile is "
                           "aws-iot-core)",
                           cfg->uplink.client_id);
    if (cfg->uplink.max_publish_per_s == 0 ||
        cfg->uplink.max_publish_per_s > CONFIG_AWS_IOT_PUBLISH_PER_S)
        return config_fail(err, CONFIG_EXIT_RANGE, name, text, len, "uplink", "max_publish_per_s",
                           "%d%s exceeds AWS IoT Core's limit of %d publishes per second per "
                           "connection (uplink.profile is aws-iot-core)",
                           cfg->uplink.max_publish_per_s,
                           cfg->uplink.max_publish_per_s == 0 ? " (no ceiling)" : "",
                           CONFIG_AWS_IOT_PUBLISH_PER_S);
    if (cfg->spool.max_inflight > CONFIG_AWS_IOT_INFLIGHT_MAX)
        return config_fail(err, CONFIG_EXIT_RANGE, name, text, len, "spool", "max_inflight",
                           "%d is more than AWS IoT Core's %d unacknowledged QoS 1 publishes per "
                           "client (uplink.profile is aws-iot-core)",
                           cfg->spool.max_inflight, CONFIG_AWS_IOT_INFLIGHT_MAX);
    return check_aws_topics(name, text, len, cfg, err);
}

/* Azure IoT Hub's MQTT support, from its documentation (not tested against the service):
 * the client id is the device id, a device publishes only under
 * devices/<device id>/messages/events/. */
static bool azure_device_id_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           strchr("-.%_*?!(),:=@$'", c) != NULL;
}

static int validate_azure(const char *name, const char *text, size_t len, const struct config *cfg,
                          struct config_error *err)
{
    const char *id = cfg->uplink.client_id;
    if (cfg->limits.max_message_bytes > CONFIG_AZURE_MESSAGE_MAX)
        return config_fail(err, CONFIG_EXIT_RANGE, name, text, len, "limits", "max_message_bytes",
                           "%d is larger than Azure IoT Hub's message limit of %d bytes "
                           "(uplink.profile is azure-iot-hub-mqtt)",
                           cfg->limits.max_message_bytes, CONFIG_AZURE_MESSAGE_MAX);
    if (strlen(id) > CONFIG_AZURE_DEVICE_ID_MAX)
        return config_fail(err, CONFIG_EXIT_RANGE, name, text, len, "uplink", "client_id",
                           "%zu bytes, an Azure IoT Hub device id has at most %d "
                           "(uplink.profile is azure-iot-hub-mqtt: the client id is the device id)",
                           strlen(id), CONFIG_AZURE_DEVICE_ID_MAX);
    for (const char *q = id; *q; q++)
        if (!azure_device_id_char(*q))
            return config_fail(err, CONFIG_EXIT_RANGE, name, text, len, "uplink", "client_id",
                               "'%s': '%c' is not allowed in an Azure IoT Hub device id (letters, "
                               "digits and -.%%_*?!(),:=@$' only; uplink.profile is "
                               "azure-iot-hub-mqtt: the client id is the device id)",
                               id, *q);
    char want[CONFIG_STR_MAX + 32];
    snprintf(want, sizeof(want), "devices/%s/messages/events", id);
    if (strcmp(cfg->uplink.topic_prefix, want) != 0)
        return config_fail(err, CONFIG_EXIT_RANGE, name, text, len, "uplink", "topic_prefix",
                           "'%s': Azure IoT Hub accepts device messages only under "
                           "devices/<client id>/messages/events/, so the prefix must be '%s' "
                           "(uplink.profile is azure-iot-hub-mqtt)",
                           cfg->uplink.topic_prefix, want);
    return 0;
}

static const char *const profile_names[] = {
    [CONFIG_PROFILE_GENERIC] = "generic",
    [CONFIG_PROFILE_AWS_IOT_CORE] = "aws-iot-core",
    [CONFIG_PROFILE_AZURE_IOT_HUB] = "azure-iot-hub-mqtt",
};

/* uplink.profile (or uplink.service, its older form: "aws-iot" = aws-iot-core), the shaping
 * keys' profile defaults, and the service's documented limits checked where the
 * configuration decides them. */
static int validate_profile(const char *name, const char *text, size_t len, struct config *cfg,
                            struct config_error *err)
{
    __typeof__(cfg->uplink) *u = &cfg->uplink;
    const char *svc = u->service;
    if (strcmp(svc, "generic") != 0 && strcmp(svc, "aws-iot") != 0)
        return config_fail(err, CONFIG_EXIT_RANGE, name, text, len, "uplink", "service",
                           "'%s' is not one of generic, aws-iot", svc);
    bool svc_aws = strcmp(svc, "aws-iot") == 0;
    if (u->profile[0] == '\0')
        snprintf(u->profile, sizeof(u->profile), "%s", svc_aws ? "aws-iot-core" : "generic");
    int id = -1;
    for (size_t i = 0; i < sizeof(profile_names) / sizeof(profile_names[0]); i++)
        if (strcmp(u->profile, profile_names[i]) == 0)
            id = (int)i;
    if (id < 0)
        return config_fail(err, CONFIG_EXIT_RANGE, name, text, len, "uplink", "profile",
                           "'%s' is not one of generic, aws-iot-core, azure-iot-hub-mqtt",
                           u->profile);
    if (svc_aws && id != CONFIG_PROFILE_AWS_IOT_CORE)
        return config_fail(err, CONFIG_EXIT_RANGE, name, text, len, "uplink", "profile",
                           "'%s' contradicts uplink.service aws-iot (its synonym is "
                           "aws-iot-core; give only uplink.profile)",
                           u->profile);
    u->profile_id = (enum config_profile)id;
    bool aws = id == CONFIG_PROFILE_AWS_IOT_CORE, azure = id == CONFIG_PROFILE_AZURE_IOT_HUB;
    u->message_max = aws ? CONFIG_AWS_IOT_PAYLOAD_MAX : azure ? CONFIG_AZURE_MESSAGE_MAX : 0;
    u->inflight_max = aws ? CONFIG_AWS_IOT_INFLIGHT_MAX : 0;
    if (u->max_publish_per_s < 0)
        u->max_publish_per_s = aws ? CONFIG_AWS_IOT_PUBLISH_PER_S : 0;
    if (u->batch[0] == '\0')
        snprintf(u->batch, sizeof(u->batch), "%s", aws ? "on" : "off");
    if (strcmp(u->batch, "on") != 0 && strcmp(u->batch, "off") != 0)
        return config_fail(err, CONFIG_EXIT_RANGE, name, text, len, "uplink", "batch",
                           "'%s' is not one of off, on", u->batch);
    u->batch_on = strcmp(u->batch, "on") == 0;
    if (u->batch_max_bytes < 0)
        u->batch_max_bytes = u->message_max > 0 && u->message_max < CONFIG_BATCH_MAX_BYTES_DEFAULT
                                 ? u->message_max
                                 : CONFIG_BATCH_MAX_BYTES_DEFAULT;
    if (u->message_max > 0 && u->batch_max_bytes > u->message_max)
        return config_fail(err, CONFIG_EXIT_RANGE, name, text, len, "uplink", "batch_max_bytes",
                           "%d is larger than the %s message size limit of %d bytes "
                           "(uplink.profile is %s)",
                           u->batch_max_bytes, aws ? "AWS IoT Core" : "Azure IoT Hub",
                           u->message_max, u->profile);
    int r = aws     ? validate_aws(name, text, len, cfg, err)
            : azure ? validate_azure(name, text, len, cfg, err)
                    : 0;
    if (r < 0)
        return r;
    if (u->batch_on && strlen(u->client_id) > BATCH_GATEWAY_MAX)
        return config_fail(err, CONFIG_EXIT_RANGE, name, text, len, "uplink", "client_id",
                           "%zu bytes: with uplink.batch on the client id names the gateway in "
                           "every batch, at most %d bytes (docs/batch-format.md)",
                           strlen(u->client_id), BATCH_GATEWAY_MAX);
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
    return validate_profile(name, text, len, cfg, err);
}
