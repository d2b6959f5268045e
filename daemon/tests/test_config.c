/* Config parsing and validation: every error class, its exit code, key and line. */
#include "check.h"
#include "config.h"

#include <fleetgw/token.h>

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char good[] = "{\n"
                           "  \"edge\": { \"socket\": \"/run/fleetgw/edge.sock\" },\n"
                           "  \"uplink\": {\n"
                           "    \"host\": \"127.0.0.1\",\n"
                           "    \"port\": 8883,\n"
                           "    \"ca_file\": \"/etc/fleetgw/ca.pem\",\n"
                           "    \"cert_file\": \"/etc/fleetgw/gw.pem\",\n"
                           "    \"key\": \"handle:0x81000001\",\n"
                           "    \"tcti\": \"device:/dev/tpmrm0\",\n"
                           "    \"client_id\": \"gw-1\",\n"
                           "    \"topic_prefix\": \"acme/site1\"\n"
                           "  },\n"
                           "  \"spool\": { \"max_bytes\": 1048576, \"drain_rate\": 100 },\n"
                           "  \"attestation\": { \"required\": false }\n"
                           "}\n";

static int parse(const char *text, struct config *cfg, struct config_error *err)
{
    return config_parse("test.conf", text, strlen(text), false, cfg, err);
}

/* Replaces the first occurrence of from by to in good. */
static char *variant(const char *from, const char *to)
{
    static char buf[4096];
    const char *at = strstr(good, from);
    if (at == NULL)
        return NULL;
    size_t pre = (size_t)(at - good);
    snprintf(buf, sizeof(buf), "%.*s%s%s", (int)pre, good, to, at + strlen(from));
    return buf;
}

int main(void)
{
    struct config cfg;
    struct config_error err;

    CHECK_EQ_INT(parse(good, &cfg, &err), 0);
    CHECK(strcmp(cfg.uplink.host, "127.0.0.1") == 0);
    CHECK_EQ_INT(cfg.uplink.port, 8883);
    CHECK(strcmp(cfg.uplink.server_name, "127.0.0.1") == 0);
    CHECK_EQ_INT(cfg.spool.max_bytes, 1048576);
    CHECK_EQ_INT(cfg.spool.drain_rate, 100);
    CHECK_EQ_INT(cfg.limits.per_node_rate, 50); /* default */
    CHECK(strcmp(cfg.uplink.topic_prefix, "acme/site1") == 0);

    /* Unknown key: class, key name and the line it is on. */
    CHECK_EQ_INT(parse(variant("\"port\": 8883", "\"prot\": 8883"), &cfg, &err), -22);
    CHECK_EQ_INT(err.exit_code, CONFIG_EXIT_UNKNOWN_KEY);
    CHECK(strcmp(err.key, "uplink.prot") == 0);
    CHECK_EQ_INT(err.line, 5);
    CHECK(strstr(err.message, "test.conf:5: key 'uplink.prot': unknown key") != NULL);

    /* Unknown section. */
    CHECK_EQ_INT(parse(variant("\"spool\":", "\"spol\":"), &cfg, &err), -22);
    CHECK_EQ_INT(err.exit_code, CONFIG_EXIT_UNKNOWN_KEY);
    CHECK_EQ_INT(err.line, 13);

    /* Bad type. */
    CHECK_EQ_INT(parse(variant("8883", "\"8883\""), &cfg, &err), -22);
    CHECK_EQ_INT(err.exit_code, CONFIG_EXIT_TYPE);
    CHECK(strcmp(err.key, "uplink.port") == 0);
    CHECK(strstr(err.message, "expected an integer, found a string") != NULL);
    CHECK_EQ_INT(parse(variant("8883", "8883.5"), &cfg, &err), -22);
    CHECK_EQ_INT(err.exit_code, CONFIG_EXIT_TYPE);
    CHECK_EQ_INT(parse(variant("{ \"socket\": \"/run/fleetgw/edge.sock\" }", "[]"), &cfg, &err),
                 -22);
    CHECK_EQ_INT(err.exit_code, CONFIG_EXIT_TYPE);
    CHECK(strcmp(err.key, "edge") == 0);

    /* Range. */
    CHECK_EQ_INT(parse(variant("8883", "70000"), &cfg, &err), -22);
    CHECK_EQ_INT(err.exit_code, CONFIG_EXIT_RANGE);
    CHECK(strstr(err.message, "out of range [1, 65535]") != NULL);
    CHECK_EQ_INT(parse(variant("8883", "-1"), &cfg, &err), -22);
    CHECK_EQ_INT(err.exit_code, CONFIG_EXIT_RANGE);
    CHECK_EQ_INT(parse(variant("8883", "99999999999999999999999"), &cfg, &err), -22);
    CHECK(err.exit_code == CONFIG_EXIT_RANGE || err.exit_code == CONFIG_EXIT_TYPE);
    CHECK_EQ_INT(parse(variant("handle:0x81000001", "handle:0x01000001"), &cfg, &err), -22);
    CHECK_EQ_INT(err.exit_code, CONFIG_EXIT_RANGE);
    CHECK_EQ_INT(parse(variant("acme/site1", "acme/#"), &cfg, &err), -22);
    CHECK_EQ_INT(err.exit_code, CONFIG_EXIT_RANGE);
    CHECK(strcmp(err.key, "uplink.topic_prefix") == 0);
    CHECK_EQ_INT(parse(variant("/etc/fleetgw/ca.pem", "ca.pem"), &cfg, &err), -22);
    CHECK_EQ_INT(err.exit_code, CONFIG_EXIT_RANGE);
    CHECK_EQ_INT(parse(variant("gw-1", "gw 1"), &cfg, &err), -22);
    CHECK_EQ_INT(err.exit_code, CONFIG_EXIT_RANGE);

    /* The down-queue bounds: defaults, values, range errors naming file and key. */
    CHECK_EQ_INT(parse(good, &cfg, &err), 0);
    CHECK_EQ_INT(cfg.spool.down_max_per_node, 1000);
    CHECK_EQ_INT(cfg.spool.down_ttl_s, 86400);
    CHECK_EQ_INT(cfg.spool.commit_gap_ms, 4);
    CHECK_EQ_INT(parse(variant("\"drain_rate\": 100", "\"commit_gap_ms\": 1001"), &cfg, &err), -22);
    CHECK_EQ_INT(err.exit_code, CONFIG_EXIT_RANGE);
    CHECK(strcmp(err.key, "spool.commit_gap_ms") == 0);
    CHECK_EQ_INT(parse(variant("\"drain_rate\": 100", "\"commit_gap_ms\": 0"), &cfg, &err), 0);
    CHECK_EQ_INT(cfg.spool.commit_gap_ms, 0);
    CHECK_EQ_INT(
        parse(variant("\"drain_rate\": 100", "\"drain_rate\": 100, \"down_max_per_node\": 5, "
                                             "\"down_ttl_s\": 60"),
              &cfg, &err),
        0);
    CHECK_EQ_INT(cfg.spool.down_max_per_node, 5);
    CHECK_EQ_INT(cfg.spool.down_ttl_s, 60);
    CHECK_EQ_INT(parse(variant("\"drain_rate\": 100", "\"down_max_per_node\": 0"), &cfg, &err),
                 -22);
    CHECK_EQ_INT(err.exit_code, CONFIG_EXIT_RANGE);
    CHECK(strcmp(err.key, "spool.down_max_per_node") == 0);
    CHECK(strstr(err.message, "test.conf:13: key 'spool.down_max_per_node': value 0 is out of "
                              "range [1, 1000000]") != NULL);
    CHECK_EQ_INT(parse(variant("\"drain_rate\": 100", "\"down_ttl_s\": 31536001"), &cfg, &err),
                 -22);
    CHECK_EQ_INT(err.exit_code, CONFIG_EXIT_RANGE);
    CHECK(strcmp(err.key, "spool.down_ttl_s") == 0);
    CHECK_EQ_INT(parse(variant("\"drain_rate\": 100", "\"down_ttl_s\": \"1h\""), &cfg, &err), -22);
    CHECK_EQ_INT(err.exit_code, CONFIG_EXIT_TYPE);
    CHECK(strcmp(err.key, "spool.down_ttl_s") == 0);
    /* The down-queue's own byte budget: default, value, range, and it must hold the largest
     * command (limits.max_message_bytes, 64 KiB by default). */
    CHECK_EQ_INT(parse(good, &cfg, &err), 0);
    CHECK(cfg.spool.down_max_bytes == 16LL * 1024 * 1024);
    CHECK_EQ_INT(parse(variant("\"drain_rate\": 100", "\"down_max_bytes\": 1048576"), &cfg, &err),
                 0);
    CHECK(cfg.spool.down_max_bytes == 1048576);
    CHECK_EQ_INT(parse(variant("\"drain_rate\": 100", "\"down_max_bytes\": 4095"), &cfg, &err),
                 -22);
    CHECK_EQ_INT(err.exit_code, CONFIG_EXIT_RANGE);
    CHECK(strcmp(err.key, "spool.down_max_bytes") == 0);
    CHECK_EQ_INT(parse(variant("\"drain_rate\": 100", "\"down_max_bytes\": 65535"), &cfg, &err),
                 -22);
    CHECK_EQ_INT(err.exit_code, CONFIG_EXIT_RANGE);
    CHECK(strcmp(err.key, "limits.max_message_bytes") == 0);
    CHECK(strstr(err.message, "larger than spool.down_max_bytes") != NULL);

    /* uplink.host/port is a one-element list; uplink.hosts a list of brokers. */
    CHECK_EQ_INT(parse(good, &cfg, &err), 0);
    CHECK_EQ_INT(cfg.uplink.n_hosts, 1);
    CHECK(strcmp(cfg.uplink.hosts[0].host, "127.0.0.1") == 0);
    CHECK_EQ_INT(cfg.uplink.hosts[0].port, 8883);
    CHECK(strcmp(config_uplink_server_name(&cfg, 0), "127.0.0.1") == 0);
    static const char two[] = "\"hosts\": [{\"host\": \"b1.example\", \"port\": 8883},\n"
                              "              {\"host\": \"10.0.0.2\", \"port\": 8884}],";
    CHECK_EQ_INT(parse(variant("\"host\": \"127.0.0.1\",\n    \"port\": 8883,", two), &cfg, &err),
                 0);
    CHECK_EQ_INT(cfg.uplink.n_hosts, 2);
    CHECK(strcmp(cfg.uplink.hosts[1].host, "10.0.0.2") == 0);
    CHECK_EQ_INT(cfg.uplink.hosts[1].port, 8884);
    /* what shows one broker (fleetgwctl check) sees the first */
    CHECK(strcmp(cfg.uplink.host, "b1.example") == 0);
    CHECK_EQ_INT(cfg.uplink.port, 8883);
    /* without uplink.server_name each endpoint is verified against its own name */
    CHECK(strcmp(config_uplink_server_name(&cfg, 0), "b1.example") == 0);
    CHECK(strcmp(config_uplink_server_name(&cfg, 1), "10.0.0.2") == 0);
    /* with it, every endpoint against that one name */
    {
        char buf[4096];
        snprintf(buf, sizeof(buf), "%s",
                 variant("\"host\": \"127.0.0.1\",\n    \"port\": 8883,",
                         "\"hosts\": [{\"host\": \"10.0.0.1\", \"port\": 1}, {\"host\": "
                         "\"10.0.0.2\", \"port\": 1}], \"server_name\": \"mq.example\","));
        CHECK_EQ_INT(parse(buf, &cfg, &err), 0);
        CHECK(strcmp(config_uplink_server_name(&cfg, 0), "mq.example") == 0);
        CHECK(strcmp(config_uplink_server_name(&cfg, 1), "mq.example") == 0);
    }
    /* Each bad list: one error naming uplink.hosts, its line, the entry and why. */
    static const struct {
        const char *hosts;
        enum config_exit code;
        const char *why;
    } bad_hosts[] = {
        {"\"hosts\": [],", CONFIG_EXIT_RANGE, "the list is empty"},
        {"\"hosts\": \"a:1\",", CONFIG_EXIT_TYPE, "expected an array"},
        {"\"hosts\": [\"a:1\"],", CONFIG_EXIT_TYPE, "entry 0: expected an object"},
        {"\"hosts\": [{\"host\": \"a\"}],", CONFIG_EXIT_MISSING, "entry 0: \"port\" is missing"},
        {"\"hosts\": [{\"port\": 1}],", CONFIG_EXIT_MISSING, "entry 0: \"host\" is missing"},
        {"\"hosts\": [{\"host\": \"a\", \"port\": 1}, {\"host\": \"a\", \"port\": 0}],",
         CONFIG_EXIT_RANGE, "entry 1: port 0 is out of range [1, 65535]"},
        {"\"hosts\": [{\"host\": \"a\", \"port\": \"1\"}],", CONFIG_EXIT_TYPE,
         "entry 0: port: expected an integer"},
        {"\"hosts\": [{\"host\": \"a b\", \"port\": 1}],", CONFIG_EXIT_RANGE,
         "entry 0: host 'a b' is not a host name"},
        {"\"hosts\": [{\"host\": \"\", \"port\": 1}],", CONFIG_EXIT_RANGE, "entry 0: host ''"},
        {"\"hosts\": [{\"host\": \"a\", \"port\": 1, \"tls\": true}],", CONFIG_EXIT_UNKNOWN_KEY,
         "entry 0: unknown key 'tls'"},
        {"\"hosts\": [{\"host\": \"a\", \"port\": 1}, {\"host\": \"a\", \"port\": 1}],",
         CONFIG_EXIT_RANGE, "entry 1: a port 1 is already entry 0"},
        {"\"hosts\": [{\"host\":\"a\",\"port\":1},{\"host\":\"a\",\"port\":2},"
         "{\"host\":\"a\",\"port\":3},{\"host\":\"a\",\"port\":4},{\"host\":\"a\",\"port\":5},"
         "{\"host\":\"a\",\"port\":6},{\"host\":\"a\",\"port\":7},{\"host\":\"a\",\"port\":8},"
         "{\"host\":\"a\",\"port\":9}],",
         CONFIG_EXIT_RANGE, "9 entries, at most 8"},
    };
    for (size_t i = 0; i < sizeof(bad_hosts) / sizeof(bad_hosts[0]); i++) {
        char buf[4096];
        snprintf(buf, sizeof(buf), "%s",
                 variant("\"host\": \"127.0.0.1\",\n    \"port\": 8883,", bad_hosts[i].hosts));
        CHECK_EQ_INT(parse(buf, &cfg, &err), -22);
        CHECK_EQ_INT(err.exit_code, bad_hosts[i].code);
        CHECK(strcmp(err.key, "uplink.hosts") == 0);
        CHECK_EQ_INT(err.line, 4);
        if (strstr(err.message, bad_hosts[i].why) == NULL)
            fprintf(stderr, "  case %zu: %s\n", i, err.message);
        CHECK(strstr(err.message, bad_hosts[i].why) != NULL);
    }
    /* The list and the single keys exclude each other; neither is missing too. */
    CHECK_EQ_INT(parse(variant("\"port\": 8883,", "\"port\": 8883, \"hosts\": [{\"host\": "
                                                  "\"a\", \"port\": 1}],"),
                       &cfg, &err),
                 -22);
    CHECK_EQ_INT(err.exit_code, CONFIG_EXIT_RANGE);
    CHECK(strcmp(err.key, "uplink.host") == 0);
    CHECK(strstr(err.message, "exclude each other") != NULL);
    CHECK_EQ_INT(parse(variant("\"host\": \"127.0.0.1\",", "\"hosts\": [{\"host\": \"a\", "
                                                           "\"port\": 1}],"),
                       &cfg, &err),
                 -22);
    CHECK(strcmp(err.key, "uplink.port") == 0);
    CHECK(strstr(err.message, "exclude each other") != NULL);
    CHECK_EQ_INT(parse(variant("\"host\": \"127.0.0.1\",", ""), &cfg, &err), -22);
    CHECK_EQ_INT(err.exit_code, CONFIG_EXIT_MISSING);
    CHECK(strcmp(err.key, "uplink.host") == 0);
    CHECK(strstr(err.message, "uplink.hosts") != NULL);
    CHECK_EQ_INT(parse(variant("\"port\": 8883,", ""), &cfg, &err), -22);
    CHECK_EQ_INT(err.exit_code, CONFIG_EXIT_MISSING);
    CHECK(strcmp(err.key, "uplink.port") == 0);
    CHECK_EQ_INT(parse(variant("\"127.0.0.1\"", "\"a b\""), &cfg, &err), -22);
    CHECK_EQ_INT(err.exit_code, CONFIG_EXIT_RANGE);
    CHECK(strcmp(err.key, "uplink.host") == 0);

    /* uplink.service: generic by default; aws-iot checks AWS IoT Core's limits. */
    CHECK_EQ_INT(parse(good, &cfg, &err), 0);
    CHECK(strcmp(cfg.uplink.service, "generic") == 0);
    CHECK_EQ_INT(
        parse(variant("\"acme/site1\"", "\"acme/site1\", \"service\": \"aws-iot\""), &cfg, &err),
        0);
    CHECK(strcmp(cfg.uplink.service, "aws-iot") == 0);
    CHECK_EQ_INT(
        parse(variant("\"acme/site1\"", "\"acme/site1\", \"service\": \"azure\""), &cfg, &err),
        -22);
    CHECK(strcmp(err.key, "uplink.service") == 0);
    CHECK(strstr(err.message, "not one of generic, aws-iot") != NULL);
    CHECK_EQ_INT(
        parse(variant("\"acme/site1\"", "\"a/b/c/d/e/f\", \"service\": \"aws-iot\""), &cfg, &err),
        -22);
    CHECK(strcmp(err.key, "uplink.topic_prefix") == 0);
    CHECK(strstr(err.message, "AWS IoT Core's 8") != NULL);
    CHECK_EQ_INT(
        parse(variant("\"acme/site1\"", "\"a/b/c/d/e\", \"service\": \"aws-iot\""), &cfg, &err), 0);
    {
        char big[4096];
        snprintf(big, sizeof(big), "%s",
                 variant("\"drain_rate\": 100",
                         "\"drain_rate\": 100 }, \"limits\": { \"max_message_bytes\": 131073"));
        char *at = strstr(big, "\"acme/site1\"");
        CHECK(at != NULL);
        char buf[4096];
        snprintf(buf, sizeof(buf), "%.*s\"acme/site1\", \"service\": \"aws-iot\"%s",
                 (int)(at - big), big, at + strlen("\"acme/site1\""));
        CHECK_EQ_INT(parse(buf, &cfg, &err), -22);
        CHECK(strcmp(err.key, "limits.max_message_bytes") == 0);
        CHECK(strstr(err.message, "payload limit of 131072") != NULL);
    }

    {
        char id[160], from[200];
        memset(id, 'g', 129);
        id[129] = '\0';
        snprintf(from, sizeof(from), "\"%s\", \"service\": \"aws-iot\"", id);
        char buf[4096];
        snprintf(buf, sizeof(buf), "%s", variant("\"gw-1\"", from));
        CHECK_EQ_INT(parse(buf, &cfg, &err), -22);
        CHECK(strcmp(err.key, "uplink.client_id") == 0);
        CHECK(strstr(err.message, "129 bytes, AWS IoT Core accepts at most 128") != NULL);
        id[128] = '\0';
        snprintf(from, sizeof(from), "\"%s\", \"service\": \"aws-iot\"", id);
        snprintf(buf, sizeof(buf), "%s", variant("\"gw-1\"", from));
        CHECK_EQ_INT(parse(buf, &cfg, &err), 0);
    }

    /* uplink.profile (issue 17): defaults of the shaping keys and the services' limits. */
    CHECK_EQ_INT(parse(good, &cfg, &err), 0);
    CHECK(strcmp(cfg.uplink.profile, "generic") == 0);
    CHECK_EQ_INT(cfg.uplink.max_publish_per_s, 0);
    CHECK_EQ_INT(cfg.uplink.max_bytes_per_s, 0);
    CHECK(!cfg.uplink.batch_on);
    CHECK_EQ_INT(cfg.uplink.batch_max_bytes, 65536);
    CHECK_EQ_INT(cfg.uplink.batch_max_delay_ms, 250);
    CHECK_EQ_INT(
        parse(variant("\"acme/site1\"", "\"acme/site1\", \"service\": \"aws-iot\""), &cfg, &err),
        0);
    CHECK(strcmp(cfg.uplink.profile, "aws-iot-core") == 0); /* the synonym */
    CHECK_EQ_INT(cfg.uplink.profile_id, CONFIG_PROFILE_AWS_IOT_CORE);
    CHECK_EQ_INT(cfg.uplink.max_publish_per_s, 100);
    CHECK(cfg.uplink.batch_on);
    CHECK_EQ_INT(cfg.uplink.inflight_max, 100);
    CHECK_EQ_INT(parse(variant("\"acme/site1\"", "\"acme/site1\", \"profile\": \"aws-iot-core\", "
                                                 "\"batch\": \"off\", \"max_publish_per_s\": 50"),
                       &cfg, &err),
                 0);
    CHECK(!cfg.uplink.batch_on);
    CHECK_EQ_INT(cfg.uplink.max_publish_per_s, 50);
    CHECK_EQ_INT(parse(variant("\"acme/site1\"", "\"acme/site1\", \"profile\": \"aws-iot-core\", "
                                                 "\"max_publish_per_s\": 101"),
                       &cfg, &err),
                 -22);
    CHECK_EQ_INT(err.exit_code, CONFIG_EXIT_RANGE);
    CHECK(strcmp(err.key, "uplink.max_publish_per_s") == 0);
    CHECK(strstr(err.message, "101 exceeds AWS IoT Core's limit of 100 publishes per second") !=
          NULL);
    CHECK_EQ_INT(parse(variant("\"acme/site1\"", "\"acme/site1\", \"profile\": \"aws-iot-core\", "
                                                 "\"max_publish_per_s\": 0"),
                       &cfg, &err),
                 -22);
    CHECK(strcmp(err.key, "uplink.max_publish_per_s") == 0);
    CHECK_EQ_INT(parse(variant("\"acme/site1\"", "\"acme/site1\", \"profile\": \"aws-iot-core\", "
                                                 "\"batch_max_bytes\": 131073"),
                       &cfg, &err),
                 -22);
    CHECK(strcmp(err.key, "uplink.batch_max_bytes") == 0);
    CHECK(strstr(err.message, "131073 is larger than the AWS IoT Core message size limit of "
                              "131072") != NULL);
    CHECK_EQ_INT(parse(variant("\"drain_rate\": 100", "\"drain_rate\": 100, \"max_inflight\": 101"),
                       &cfg, &err),
                 0); /* generic: no cap */
    {
        char buf[4096];
        snprintf(buf, sizeof(buf), "%s",
                 variant("\"drain_rate\": 100", "\"drain_rate\": 100, \"max_inflight\": 101"));
        char *at = strstr(buf, "\"acme/site1\"");
        CHECK(at != NULL);
        char buf2[4096];
        snprintf(buf2, sizeof(buf2), "%.*s\"acme/site1\", \"profile\": \"aws-iot-core\"%s",
                 (int)(at - buf), buf, at + strlen("\"acme/site1\""));
        CHECK_EQ_INT(parse(buf2, &cfg, &err), -22);
        CHECK(strcmp(err.key, "spool.max_inflight") == 0);
        CHECK(strstr(err.message, "101 is more than AWS IoT Core's 100 unacknowledged") != NULL);
    }
    CHECK_EQ_INT(
        parse(variant("\"acme/site1\"", "\"acme/site1\", \"profile\": \"aws\""), &cfg, &err), -22);
    CHECK(strcmp(err.key, "uplink.profile") == 0);
    CHECK(strstr(err.message, "not one of generic, aws-iot-core, azure-iot-hub-mqtt") != NULL);
    CHECK_EQ_INT(parse(variant("\"acme/site1\"", "\"acme/site1\", \"service\": \"aws-iot\", "
                                                 "\"profile\": \"generic\""),
                       &cfg, &err),
                 -22);
    CHECK(strcmp(err.key, "uplink.profile") == 0);
    CHECK_EQ_INT(parse(variant("\"acme/site1\"", "\"acme/site1\", \"batch\": \"yes\""), &cfg, &err),
                 -22);
    CHECK(strcmp(err.key, "uplink.batch") == 0);
    CHECK_EQ_INT(parse(variant("\"acme/site1\"", "\"acme/site1\", \"batch\": \"on\", "
                                                 "\"max_publish_per_s\": 7, \"max_bytes_per_s\": "
                                                 "9000, \"batch_max_bytes\": 2048, "
                                                 "\"batch_max_delay_ms\": 0"),
                       &cfg, &err),
                 0);
    CHECK(cfg.uplink.batch_on);
    CHECK_EQ_INT(cfg.uplink.max_publish_per_s, 7);
    CHECK_EQ_INT(cfg.uplink.max_bytes_per_s, 9000);
    CHECK_EQ_INT(cfg.uplink.batch_max_bytes, 2048);
    CHECK_EQ_INT(cfg.uplink.batch_max_delay_ms, 0);
    CHECK_EQ_INT(
        parse(variant("\"acme/site1\"", "\"acme/site1\", \"batch_max_bytes\": 100"), &cfg, &err),
        -22);
    CHECK(strcmp(err.key, "uplink.batch_max_bytes") == 0);
    /* Azure IoT Hub: the prefix is devices/<client id>/messages/events, the id a device id. */
    CHECK_EQ_INT(parse(variant("\"acme/site1\"", "\"acme/site1\", \"profile\": "
                                                 "\"azure-iot-hub-mqtt\""),
                       &cfg, &err),
                 -22);
    CHECK(strcmp(err.key, "uplink.topic_prefix") == 0);
    CHECK(strstr(err.message, "must be 'devices/gw-1/messages/events'") != NULL);
    CHECK_EQ_INT(parse(variant("\"acme/site1\"", "\"devices/gw-1/messages/events\", \"profile\": "
                                                 "\"azure-iot-hub-mqtt\""),
                       &cfg, &err),
                 0);
    CHECK_EQ_INT(cfg.uplink.profile_id, CONFIG_PROFILE_AZURE_IOT_HUB);
    CHECK_EQ_INT(cfg.uplink.max_publish_per_s, 0);
    CHECK(!cfg.uplink.batch_on);
    CHECK_EQ_INT(cfg.uplink.message_max, 262144);
    CHECK_EQ_INT(parse(variant("\"acme/site1\"", "\"devices/gw-1/messages/events\", \"profile\": "
                                                 "\"azure-iot-hub-mqtt\", \"batch_max_bytes\": "
                                                 "262145"),
                       &cfg, &err),
                 -22);
    CHECK(strcmp(err.key, "uplink.batch_max_bytes") == 0);
    CHECK(strstr(err.message, "Azure IoT Hub message size limit of 262144") != NULL);
    {
        char buf[4096];
        snprintf(buf, sizeof(buf), "%s", variant("\"gw-1\"", "\"gw&1\""));
        char *at = strstr(buf, "\"acme/site1\"");
        CHECK(at != NULL);
        char buf2[4096];
        snprintf(buf2, sizeof(buf2),
                 "%.*s\"devices/gw&1/messages/events\", \"profile\": \"azure-iot-hub-mqtt\"%s",
                 (int)(at - buf), buf, at + strlen("\"acme/site1\""));
        CHECK_EQ_INT(parse(buf2, &cfg, &err), -22);
        CHECK(strcmp(err.key, "uplink.client_id") == 0);
        CHECK(strstr(err.message, "'&' is not allowed in an Azure IoT Hub device id") != NULL);
    }

    /* Missing required key, and the TPM handle without a TCTI. */
    CHECK_EQ_INT(parse(variant("\"client_id\": \"gw-1\",", ""), &cfg, &err), -22);
    CHECK_EQ_INT(err.exit_code, CONFIG_EXIT_MISSING);
    CHECK(strcmp(err.key, "uplink.client_id") == 0);
    CHECK_EQ_INT(parse(variant("\"tcti\": \"device:/dev/tpmrm0\",", ""), &cfg, &err), -22);
    CHECK_EQ_INT(err.exit_code, CONFIG_EXIT_MISSING);

    /* Booleans, and attestation (off by default) needing its reference file when required. */
    CHECK_EQ_INT(parse(variant("\"required\": false", "\"required\": 0"), &cfg, &err), -22);
    CHECK_EQ_INT(err.exit_code, CONFIG_EXIT_TYPE);
    CHECK(strstr(err.message, "expected true or false") != NULL);
    /* fail closed: required is the default, so a config without reference values is refused,
     * saying how to turn attestation off explicitly */
    CHECK_EQ_INT(parse(variant("\"required\": false", "\"nonce_ttl_s\": 30"), &cfg, &err), -22);
    CHECK_EQ_INT(err.exit_code, CONFIG_EXIT_MISSING);
    CHECK(strstr(err.message, "the default") != NULL &&
          strstr(err.message, "\"required\": false") != NULL);
    CHECK_EQ_INT(parse(variant("\"required\": false",
                               "\"nonce_ttl_s\": 30, \"reference_file\": \"/etc/r.json\""),
                       &cfg, &err),
                 0);
    CHECK(cfg.attestation.required); /* the default */
    CHECK_EQ_INT(parse(variant("\"required\": false", "\"required\": true"), &cfg, &err), -22);
    CHECK_EQ_INT(err.exit_code, CONFIG_EXIT_MISSING);
    CHECK(strcmp(err.key, "attestation.reference_file") == 0);
    CHECK_EQ_INT(parse(variant("\"required\": false",
                               "\"required\": true, \"reference_file\": \"/etc/r.json\""),
                       &cfg, &err),
                 0);
    CHECK(cfg.attestation.required);
    CHECK_EQ_INT(cfg.attestation.nonce_ttl_s, 60);
    CHECK_EQ_INT(cfg.attestation.interval_s, 86400);
    /* Re-attestation interval: 5 s .. 30 days (5 s lets a test see an unanswered challenge). */
    CHECK_EQ_INT(
        parse(variant("\"required\": false", "\"required\": false, \"interval_s\": 5"), &cfg, &err),
        0);
    CHECK_EQ_INT(cfg.attestation.interval_s, 5);
    CHECK_EQ_INT(
        parse(variant("\"required\": false", "\"required\": false, \"interval_s\": 4"), &cfg, &err),
        -22);
    CHECK_EQ_INT(err.exit_code, CONFIG_EXIT_RANGE);
    CHECK(strcmp(err.key, "attestation.interval_s") == 0);
    CHECK(strstr(err.message, "out of range [5, 2592000]") != NULL);
    CHECK_EQ_INT(
        parse(variant("\"required\": false", "\"required\": false, \"interval_s\": 2592001"), &cfg,
              &err),
        -22);
    CHECK_EQ_INT(err.exit_code, CONFIG_EXIT_RANGE);

    /* Token profiles: all three by default; a subset; every refusal names the key. */
    CHECK_EQ_INT(parse(good, &cfg, &err), 0);
    CHECK_EQ_INT(cfg.attestation.profiles, CONFIG_PROFILES_ALL);
    CHECK_EQ_INT(parse(variant("\"required\": false",
                               "\"required\": false, \"profiles\": [\"PSA_IOT_PROFILE_1\", "
                               "\"tag:psacertified.org,2023:psa#tfm\"]"),
                       &cfg, &err),
                 0);
    CHECK_EQ_INT(cfg.attestation.profiles,
                 (1u << TOKEN_PROFILE_PSA_IOT_1) | (1u << TOKEN_PROFILE_RFC9783));
    CHECK_EQ_INT(parse(variant("\"required\": false",
                               "\"required\": false, \"profiles\": [\"http://arm.com/psa/2.0.0\"]"),
                       &cfg, &err),
                 0);
    CHECK_EQ_INT(cfg.attestation.profiles, 1u << TOKEN_PROFILE_PSA_2_0_0);
    CHECK_EQ_INT(
        parse(variant("\"required\": false", "\"required\": false, \"profiles\": []"), &cfg, &err),
        -22);
    CHECK_EQ_INT(err.exit_code, CONFIG_EXIT_RANGE);
    CHECK(strcmp(err.key, "attestation.profiles") == 0);
    CHECK(strstr(err.message, "empty") != NULL);
    CHECK_EQ_INT(
        parse(variant("\"required\": false", "\"required\": false, \"profiles\": [\"psa-2.0\"]"),
              &cfg, &err),
        -22);
    CHECK_EQ_INT(err.exit_code, CONFIG_EXIT_RANGE);
    CHECK(strstr(err.message, "'psa-2.0' is not a PSA token profile") != NULL);
    CHECK_EQ_INT(
        parse(variant("\"required\": false", "\"required\": false, \"profiles\": "
                                             "[\"PSA_IOT_PROFILE_1\", \"PSA_IOT_PROFILE_1\"]"),
              &cfg, &err),
        -22);
    CHECK(strstr(err.message, "listed twice") != NULL);
    CHECK_EQ_INT(parse(variant("\"required\": false",
                               "\"required\": false, \"profiles\": \"PSA_IOT_PROFILE_1\""),
                       &cfg, &err),
                 -22);
    CHECK_EQ_INT(err.exit_code, CONFIG_EXIT_TYPE);
    CHECK_EQ_INT(
        parse(variant("\"required\": false", "\"required\": false, \"profiles\": [1]"), &cfg, &err),
        -22);
    CHECK_EQ_INT(err.exit_code, CONFIG_EXIT_TYPE);
    /* reloadable: a SIGHUP applies a new list at once */
    {
        struct config run, next;
        char fixed[128];
        CHECK_EQ_INT(parse(good, &run, &err), 0);
        CHECK_EQ_INT(parse(variant("\"required\": false",
                                   "\"required\": false, \"profiles\": [\"PSA_IOT_PROFILE_1\"]"),
                           &next, &err),
                     0);
        CHECK_EQ_INT(config_reload_apply(&run, &next, fixed, sizeof(fixed)), 0);
        CHECK_EQ_INT(run.attestation.profiles, 1u << TOKEN_PROFILE_PSA_IOT_1);
    }

    /* Syntax errors name the line. */
    CHECK_EQ_INT(parse(variant("\"port\": 8883,", "\"port\": 8883,,"), &cfg, &err), -22);
    CHECK_EQ_INT(err.exit_code, CONFIG_EXIT_SYNTAX);
    CHECK_EQ_INT(err.line, 5);
    CHECK(strstr(err.message, "test.conf:5: JSON syntax error") == err.message);
    CHECK_EQ_INT(parse("{\n \"edge\": {\n", &cfg, &err), -22);
    CHECK_EQ_INT(err.exit_code, CONFIG_EXIT_SYNTAX);
    CHECK(strstr(err.message, "unexpected end of file") != NULL);
    CHECK_EQ_INT(parse("{} {}", &cfg, &err), -22);
    CHECK_EQ_INT(err.exit_code, CONFIG_EXIT_SYNTAX);
    CHECK_EQ_INT(parse("[1]", &cfg, &err), -22);
    CHECK_EQ_INT(err.exit_code, CONFIG_EXIT_TYPE);

    /* Files: a missing config file; an unreadable certificate file. */
    CHECK_EQ_INT(config_load("/nonexistent/fleetgwd.conf", &cfg, &err) < 0, 1);
    CHECK_EQ_INT(err.exit_code, CONFIG_EXIT_FILE);
    CHECK(strstr(err.message, "/nonexistent/fleetgwd.conf: cannot read the configuration file: "
                              "No such file or directory") != NULL);
    CHECK_EQ_INT(config_parse("test.conf", good, strlen(good), true, &cfg, &err), -22);
    CHECK_EQ_INT(err.exit_code, CONFIG_EXIT_CERT);
    CHECK(strcmp(err.key, "uplink.ca_file") == 0);
    CHECK(strstr(err.message, "cannot read '/etc/fleetgw/ca.pem'") != NULL);

    /* A real file round trip with readable certificate files. */
    char dir[] = "/tmp/fleetgw-cfgtest-XXXXXX";
    if (mkdtemp(dir) != NULL) {
        char ca[256], conf[256], text[2048];
        snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
        snprintf(conf, sizeof(conf), "%s/f.conf", dir);
        FILE *f = fopen(ca, "w");
        fputs("-----BEGIN CERTIFICATE-----\n", f);
        fclose(f);
        snprintf(text, sizeof(text),
                 "{\"uplink\":{\"host\":\"h\",\"port\":1,\"ca_file\":\"%s\",\"cert_file\":\"%s\","
                 "\"key\":\"%s\",\"client_id\":\"g\"},\"attestation\":{\"required\":false}}",
                 ca, ca, ca);
        f = fopen(conf, "w");
        fputs(text, f);
        fclose(f);
        CHECK_EQ_INT(config_load(conf, &cfg, &err), 0);
        CHECK(strcmp(cfg.edge.socket, CONFIG_DEFAULT_EDGE_SOCKET) == 0);
        unlink(ca);
        unlink(conf);
        rmdir(dir);
    }

    /* The ota section: defaults, values, range errors naming the key. */
    {
        const char *att = "\"attestation\": { \"required\": false }";
        char with[512];
        CHECK_EQ_INT(parse(good, &cfg, &err), 0);
        CHECK(strcmp(cfg.ota.store_dir, "/var/lib/fleetgw/ota") == 0);
        CHECK_EQ_INT(cfg.ota.store_quota_bytes, 268435456);
        CHECK(strcmp(cfg.ota.classes_file, "") == 0);
        CHECK(strcmp(cfg.ota.state_db, "/var/lib/fleetgw/ota.db") == 0);
        CHECK_EQ_INT(cfg.ota.chunk_size, 1024);
        snprintf(with, sizeof(with),
                 "%s, \"ota\": { \"store_dir\": \"/srv/ota\", \"store_quota_bytes\": 1048576, "
                 "\"classes_file\": \"/etc/fleetgw/classes.json\", \"state_db\": \"/srv/ota.db\", "
                 "\"chunk_size\": 2048 }",
                 att);
        CHECK_EQ_INT(parse(variant(att, with), &cfg, &err), 0);
        CHECK(strcmp(cfg.ota.store_dir, "/srv/ota") == 0);
        CHECK_EQ_INT(cfg.ota.store_quota_bytes, 1048576);
        CHECK(strcmp(cfg.ota.classes_file, "/etc/fleetgw/classes.json") == 0);
        CHECK(strcmp(cfg.ota.state_db, "/srv/ota.db") == 0);
        CHECK_EQ_INT(cfg.ota.chunk_size, 2048);
        static const struct {
            const char *kv;
            enum config_exit code;
            const char *key;
        } bad[] = {
            {"\"chunk_size\": 63", CONFIG_EXIT_RANGE, "ota.chunk_size"},
            {"\"chunk_size\": 2049", CONFIG_EXIT_RANGE, "ota.chunk_size"},
            {"\"store_quota_bytes\": 4095", CONFIG_EXIT_RANGE, "ota.store_quota_bytes"},
            {"\"store_dir\": \"ota\"", CONFIG_EXIT_RANGE, "ota.store_dir"},
            {"\"classes_file\": \"classes.json\"", CONFIG_EXIT_RANGE, "ota.classes_file"},
            {"\"state_db\": \"/var/lib/fleetgw/spool.db\"", CONFIG_EXIT_RANGE, "ota.state_db"},
            {"\"state_db\": \"/var/lib/fleetgw/registry.db\"", CONFIG_EXIT_RANGE, "ota.state_db"},
            {"\"chunk\": 1024", CONFIG_EXIT_UNKNOWN_KEY, "ota.chunk"},
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            snprintf(with, sizeof(with), "%s,\n  \"ota\": { %s }", att, bad[i].kv);
            CHECK_EQ_INT(parse(variant(att, with), &cfg, &err), -22);
            CHECK_EQ_INT(err.exit_code, bad[i].code);
            CHECK(strcmp(err.key, bad[i].key) == 0);
            CHECK_EQ_INT(err.line, 15);
        }
    }

    /* registry.broker_snapshot: off by default; a file of its own, never another database. */
    {
        char with[4096];
        const char *att = "\"attestation\": { \"required\": false }";
        CHECK_EQ_INT(parse(good, &cfg, &err), 0);
        CHECK(cfg.registry.broker_snapshot[0] == '\0');
        snprintf(with, sizeof(with),
                 "%s,\n  \"registry\": { \"broker_snapshot\": \"/var/lib/fleetgw/snap\" }", att);
        CHECK_EQ_INT(parse(variant(att, with), &cfg, &err), 0);
        CHECK(strcmp(cfg.registry.broker_snapshot, "/var/lib/fleetgw/snap") == 0);
        static const char *const same[] = {"/var/lib/fleetgw/registry.db",
                                           "/var/lib/fleetgw/spool.db", "/var/lib/fleetgw/ota.db"};
        static const char *const named[] = {"registry.path", "spool.path", "ota.state_db"};
        for (size_t i = 0; i < 3; i++) {
            snprintf(with, sizeof(with), "%s,\n  \"registry\": { \"broker_snapshot\": \"%s\" }",
                     att, same[i]);
            CHECK_EQ_INT(parse(variant(att, with), &cfg, &err), -22);
            CHECK_EQ_INT(err.exit_code, CONFIG_EXIT_RANGE);
            CHECK(strcmp(err.key, "registry.broker_snapshot") == 0);
            CHECK(strstr(err.message, named[i]) != NULL);
        }
        snprintf(with, sizeof(with), "%s,\n  \"registry\": { \"broker_snapshot\": \"snap\" }", att);
        CHECK_EQ_INT(parse(variant(att, with), &cfg, &err), -22); /* not absolute */
        CHECK(strcmp(err.key, "registry.broker_snapshot") == 0);
    }

    /* SIGHUP: reloadable keys are applied, the others kept and named; derived values (the
     * server name that defaults to the host) never count as a change of their own. */
    {
        struct config run, next;
        char fixed[256];
        CHECK_EQ_INT(parse(good, &run, &err), 0);
        CHECK_EQ_INT(parse(good, &next, &err), 0);
        CHECK_EQ_INT(config_reload_apply(&run, &next, fixed, sizeof(fixed)), 0);
        CHECK(strcmp(fixed, "") == 0);
        char text[2048];
        snprintf(text, sizeof(text), "%s", variant("\"drain_rate\": 100", "\"drain_rate\": 7"));
        CHECK_EQ_INT(parse(text, &next, &err), 0);
        next.uplink.port = 9999;
        snprintf(next.edge.socket, sizeof(next.edge.socket), "/run/other.sock");
        next.limits.per_node_burst = 3;
        next.attestation.required = true;
        snprintf(next.log.level, sizeof(next.log.level), "debug");
        CHECK_EQ_INT(config_reload_apply(&run, &next, fixed, sizeof(fixed)), 2);
        CHECK(strcmp(fixed, "edge.socket, uplink.port") == 0);
        CHECK_EQ_INT(run.spool.drain_rate, 7);
        CHECK_EQ_INT(run.limits.per_node_burst, 3);
        CHECK(run.attestation.required);
        CHECK(strcmp(run.log.level, "debug") == 0);
        CHECK_EQ_INT(run.uplink.port, 8883);
        CHECK(strcmp(run.edge.socket, "/run/fleetgw/edge.sock") == 0);
        /* A list longer than the buffer is cut, the count still whole. */
        CHECK_EQ_INT(config_reload_apply(&run, &next, fixed, 8), 2);
        CHECK(strlen(fixed) < 8);
        /* Every key is in one class or the other, and both classes exist. */
        size_t n_reload = 0;
        for (size_t i = 0; i < config_key_count(); i++)
            n_reload += config_key_reloadable(i);
        CHECK(n_reload > 0 && n_reload < config_key_count());
    }
    return check_finish();
}
