/* fleetgw-tls-probe: connects to an MQTT broker with mutual TLS using tpm_tls_ctx_new (the
 * key in the TPM, or a PEM file without --tcti), subscribes to a topic, publishes a message
 * at QoS 1 and waits until the broker acknowledged it and delivered it back.
 * Exit: 0 success, 2 usage, 3 TLS context, 4 connection/handshake refused, 5 no delivery. */
#include "fleetgw/tpm_tls.h"
#include "tls_tool.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mosquitto.h>

struct probe {
    const char *topic;
    const char *message;
    int connected;
    int connect_rc;
    int subscribed;
    int acked;
    int received;
};

static void on_connect(struct mosquitto *m, void *obj, int rc)
{
    struct probe *p = obj;
    p->connect_rc = rc;
    if (rc != 0)
        return;
    p->connected = 1;
    if (mosquitto_subscribe(m, NULL, p->topic, 1) != MOSQ_ERR_SUCCESS)
        p->connect_rc = -1;
}

static void on_subscribe(struct mosquitto *m, void *obj, int mid, int qos_count, const int *granted)
{
    struct probe *p = obj;
    (void)mid;
    if (qos_count < 1 || granted[0] > 2) {
        fprintf(stderr, "tls-probe: subscription to %s refused\n", p->topic);
        p->connect_rc = -1;
        return;
    }
    p->subscribed = 1;
    if (mosquitto_publish(m, NULL, p->topic, (int)strlen(p->message), p->message, 1, false) !=
        MOSQ_ERR_SUCCESS)
        p->connect_rc = -1;
}

static void on_publish(struct mosquitto *m, void *obj, int mid)
{
    (void)m;
    (void)mid;
    ((struct probe *)obj)->acked = 1;
}

static void on_message(struct mosquitto *m, void *obj, const struct mosquitto_message *msg)
{
    struct probe *p = obj;
    (void)m;
    if (msg->payloadlen == (int)strlen(p->message) &&
        memcmp(msg->payload, p->message, (size_t)msg->payloadlen) == 0)
        p->received = 1;
}

static void on_log(struct mosquitto *m, void *obj, int level, const char *str)
{
    (void)m;
    (void)obj;
    if (level & (MOSQ_LOG_ERR | MOSQ_LOG_WARNING))
        fprintf(stderr, "tls-probe: libmosquitto: %s\n", str);
}

static const char usage[] =
    "usage: fleetgw-tls-probe --host H --port P --cert CRT --key KEY --cafile CA\n"
    "       [--tcti TCTI] [--server-name NAME] [--client-id ID] --topic T [--message M] [--wait "
    "S]\n"
    "       fleetgw-tls-probe --help | --version\n";

int main(int argc, char **argv)
{
    struct tpm_tls_config cfg = {0};
    const char *host = NULL, *client_id = NULL;
    int port = 0;
    double wait = 20;
    struct probe p = {.message = "hello from fleetgw", .connect_rc = -2};
    static const struct option opts[] = {TLS_TOOL_LONG_OPTIONS,
                                         {"host", required_argument, NULL, 'h'},
                                         {"client-id", required_argument, NULL, 'i'},
                                         {"topic", required_argument, NULL, 'T'},
                                         {"message", required_argument, NULL, 'm'},
                                         {"wait", required_argument, NULL, 'w'},
                                         {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (tls_tool_option(c, optarg, &cfg, &port))
            continue;
        if (tls_tool_info_option(c, "fleetgw-tls-probe", usage))
            return 0;
        switch (c) {
        case 'h':
            host = optarg;
            break;
        case 'i':
            client_id = optarg;
            break;
        case 'T':
            p.topic = optarg;
            break;
        case 'm':
            p.message = optarg;
            break;
        case 'w':
            wait = strtod(optarg, NULL);
            break;
        default:
            fputs(usage, stderr);
            return 2;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "tls-probe: unexpected argument '%s'\n", argv[optind]);
        fputs(usage, stderr);
        return 2;
    }
    if (host == NULL || port <= 0 || port > 65535 || p.topic == NULL) {
        fprintf(stderr, "tls-probe: --host, --port (1..65535) and --topic are required\n");
        fputs(usage, stderr);
        return 2;
    }
    if (cfg.server_name == NULL)
        cfg.server_name = host;

    SSL_CTX *ctx = tls_tool_ctx("tls-probe", &cfg);
    if (ctx == NULL)
        return 3;
    mosquitto_lib_init();
    struct mosquitto *m = mosquitto_new(client_id, true, &p);
    int rc = 4;
    if (m == NULL)
        goto out;
    mosquitto_int_option(m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
    mosquitto_void_option(m, MOSQ_OPT_SSL_CTX, ctx);
    mosquitto_int_option(m, MOSQ_OPT_SSL_CTX_WITH_DEFAULTS, 0);
    mosquitto_log_callback_set(m, on_log);
    mosquitto_connect_callback_set(m, on_connect);
    mosquitto_subscribe_callback_set(m, on_subscribe);
    mosquitto_publish_callback_set(m, on_publish);
    mosquitto_message_callback_set(m, on_message);
    int mrc = mosquitto_connect(m, host, port, 30);
    if (mrc != MOSQ_ERR_SUCCESS) {
        fprintf(stderr, "tls-probe: connect to %s:%d refused: %s\n", host, port,
                mrc == MOSQ_ERR_ERRNO ? "socket error" : mosquitto_strerror(mrc));
        tls_tool_print_ssl_errors("tls-probe");
        goto out;
    }
    double deadline = tls_tool_now_ms() + wait * 1e3;
    while (tls_tool_now_ms() < deadline && !(p.acked && p.received)) {
        mrc = mosquitto_loop(m, 100, 1);
        if (mrc != MOSQ_ERR_SUCCESS || (p.connect_rc != -2 && p.connect_rc != 0)) {
            fprintf(stderr, "tls-probe: connection to %s:%d failed: %s (connack %d)\n", host, port,
                    mosquitto_strerror(mrc), p.connect_rc);
            tls_tool_print_ssl_errors("tls-probe");
            goto out;
        }
    }
    if (p.acked && p.received) {
        printf("tls-probe: published to %s, acknowledged and received back\n", p.topic);
        rc = 0;
    } else {
        fprintf(stderr, "tls-probe: no %s within %.0fs (connected=%d subscribed=%d acked=%d)\n",
                p.acked ? "delivery" : "acknowledgement", wait, p.connected, p.subscribed, p.acked);
        rc = 5;
    }
    mosquitto_disconnect(m);
out:
    mosquitto_destroy(m);
    mosquitto_lib_cleanup();
    tpm_tls_ctx_free(ctx);
    return rc;
}
