/* fleet-sim: N simulated nodes in one single-threaded, poll()-driven process. Each node is
 * its own agent instance (agents/core) with its own TCP socket, its own TLS session and its
 * own certificate/key, publishing QoS 1 telemetry to a real broker.
 *
 *   fleet-sim --broker HOST:PORT --nodes N --cafile CA --cert-dir DIR --rate R --count K
 *             [--id-prefix node-] [--no-tls] [--server-name NAME] [--telemetry-topic T]
 *             [--keepalive S] [--max-attempts A] [--ramp-ms MS] [--first-index I]
 *             [--tls-max-fragment 0|512|1024|2048|4096]
 *
 *   attestation (docs/agent.md): --iak-dir KEYDIR --image SIGNED.bin [--attest-wait-ms MS]
 *             [--bad-measurement | --forge | --replay];  fleet-sim --iak-dir KEYDIR
 *             --nodes N --export-pub OUTDIR [--id-prefix P] [--first-index I]
 *
 * Node i is "<prefix><first-index + i>" and uses DIR/<id>.crt and DIR/<id>.key. With
 * --iak-dir, "<prefix><first-index + i>" only names the node's key file
 * KEYDIR/<name>.iak.pem (created on first use, mode 0600) and the node id is derived from the
 * key as the gateway does (hex of the first 16 bytes of SHA-256 of the public point); the
 * certificate is then DIR/<derived id>.crt/.key. --export-pub writes OUTDIR/<id>.pem per
 * node, prints "<name> <id>" lines and exits. --rate is
 * messages per second per node. --telemetry-topic replaces fleet/<id>/up/telemetry; "{id}"
 * in it becomes the node id. Prints one summary line and exits non-zero if any node failed
 * (gave up connecting, or did not get all its messages acknowledged). */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <malloc.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "fleetgw/agent.h"
#include "fleetgw/node_tls.h"
#include "fleetgw/posix_tcp.h"
#include "sim_attest.h"

#define SIM_RX_CAP 1024u
#define SIM_TX_CAP 1024u
/* in-flight slots (store / 8) must hold the evidence: a token with one component is
 * ~345 bytes, the evidence PUBLISH ~410 with topic and MQTT header */
#define SIM_STORE_CAP (MQTT_MAX_INFLIGHT * 640u)
#define SIM_EVIDENCE  600u /* the token is ~345 bytes */
#define SIM_MAX_NODES 100000u
#define SIM_MAX_CRED  16384u

struct sim_node {
    struct agent agent;
    struct node_tls tls;
    struct posix_tcp tcp;
    bool use_tls;
    bool tls_ready;
    bool started;
    bool counted_connected;
    char id[AGENT_MAX_ID + 1];
    char topic[AGENT_TOPIC_MAX];
    uint8_t rx[SIM_RX_CAP];
    uint8_t tx[SIM_TX_CAP];
    uint8_t store[SIM_STORE_CAP];
    uint8_t evidence[SIM_EVIDENCE];
    struct sim_iak *iak; /* NULL without --iak-dir */
};

struct sim_opts {
    const char *broker;
    const char *cafile;
    const char *cert_dir;
    const char *prefix;
    const char *server_name;
    const char *topic_tmpl;
    unsigned long nodes;
    unsigned long count;
    unsigned long first_index;
    double rate;
    unsigned long keepalive;
    unsigned long max_attempts;
    unsigned long ramp_ms;
    unsigned long max_frag;
    bool no_tls;
    const char *iak_dir;
    const char *image;
    const char *export_pub;
    unsigned long attest_wait_ms;
    enum sim_bad bad;
};

#if AGENT_LOG_LEVEL > 0
void agent_log_write(int level, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "fleet-sim[%d]: ", level);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}
#endif

static uint32_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint32_t)((uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u);
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/statm", "re");
    long pages_total = 0, pages_res = 0;
    if (f == NULL)
        return -1;
    if (fscanf(f, "%ld %ld", &pages_total, &pages_res) != 2)
        pages_res = -1;
    fclose(f);
    return pages_res < 0 ? -1 : pages_res * (sysconf(_SC_PAGESIZE) / 1024);
}

static size_t heap_in_use(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks;
}

static int parse_ulong(const char *s, unsigned long max, unsigned long *ret)
{
    char *end;
    unsigned long v;
    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v > max || s[0] == '-')
        return -EINVAL;
    *ret = v;
    return 0;
}

/* Reads a whole credential file, NUL-terminated (Mbed TLS wants the NUL counted for PEM). */
static long read_file(const char *path, uint8_t *buf, size_t cap)
{
    FILE *f = fopen(path, "rbe");
    size_t n;
    if (f == NULL)
        return -errno;
    n = fread(buf, 1, cap - 1, f);
    if (!feof(f)) {
        fclose(f);
        return -EFBIG;
    }
    fclose(f);
    buf[n] = '\0';
    return (long)n + 1;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: fleet-sim --broker HOST:PORT --nodes N --cafile CA --cert-dir DIR\n"
            "                 --rate MSGS_PER_SEC_PER_NODE --count MSGS_PER_NODE\n"
            "                 [--id-prefix node-] [--first-index 0] [--no-tls]\n"
            "                 [--server-name NAME] [--telemetry-topic TEMPLATE]\n"
            "                 [--keepalive 60] [--max-attempts 5] [--ramp-ms 2]\n"
            "                 [--tls-max-fragment 0|512|1024|2048|4096]\n"
            "                 [--iak-dir KEYDIR --image SIGNED.bin [--attest-wait-ms 10000]\n"
            "                  [--bad-measurement|--forge|--replay]]\n"
            "       fleet-sim --iak-dir KEYDIR --nodes N --export-pub OUTDIR\n"
            "                 [--id-prefix node-] [--first-index 0]\n");
}

static int parse_args(int argc, char **argv, struct sim_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->prefix = "node-";
    o->keepalive = 60;
    o->max_attempts = 5;
    o->ramp_ms = 2;
    o->rate = -1;
    o->attest_wait_ms = 10000;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = (i + 1 < argc) ? argv[i + 1] : NULL;
        int r = 0;
        if (strcmp(a, "--no-tls") == 0) {
            o->no_tls = true;
            continue;
        }
        if (strcmp(a, "--bad-measurement") == 0 || strcmp(a, "--forge") == 0 ||
            strcmp(a, "--replay") == 0) {
            if (o->bad != SIM_GOOD) {
                fprintf(stderr, "fleet-sim: at most one of --bad-measurement, --forge, --replay\n");
                return -EINVAL;
            }
            o->bad = a[2] == 'b' ? SIM_BAD_MEASUREMENT : (a[2] == 'f' ? SIM_FORGE : SIM_REPLAY);
            continue;
        }
        if (strcmp(a, "--help") == 0) {
            usage();
            exit(0);
        }
        if (v == NULL) {
            fprintf(stderr, "fleet-sim: %s needs a value\n", a);
            return -EINVAL;
        }
        i++;
        if (strcmp(a, "--broker") == 0) {
            o->broker = v;
        } else if (strcmp(a, "--nodes") == 0) {
            r = parse_ulong(v, SIM_MAX_NODES, &o->nodes);
        } else if (strcmp(a, "--cafile") == 0) {
            o->cafile = v;
        } else if (strcmp(a, "--cert-dir") == 0) {
            o->cert_dir = v;
        } else if (strcmp(a, "--rate") == 0) {
            char *end;
            errno = 0;
            o->rate = strtod(v, &end);
            if (errno != 0 || end == v || *end != '\0' || !(o->rate > 0) || o->rate > 1000)
                r = -EINVAL;
        } else if (strcmp(a, "--count") == 0) {
            r = parse_ulong(v, UINT32_MAX, &o->count);
        } else if (strcmp(a, "--id-prefix") == 0) {
            o->prefix = v;
        } else if (strcmp(a, "--first-index") == 0) {
            r = parse_ulong(v, UINT32_MAX, &o->first_index);
        } else if (strcmp(a, "--server-name") == 0) {
            o->server_name = v;
        } else if (strcmp(a, "--telemetry-topic") == 0) {
            o->topic_tmpl = v;
        } else if (strcmp(a, "--keepalive") == 0) {
            r = parse_ulong(v, 65535, &o->keepalive);
        } else if (strcmp(a, "--max-attempts") == 0) {
            r = parse_ulong(v, 1000000, &o->max_attempts);
        } else if (strcmp(a, "--tls-max-fragment") == 0) {
            r = parse_ulong(v, 4096, &o->max_frag);
        } else if (strcmp(a, "--iak-dir") == 0) {
            o->iak_dir = v;
        } else if (strcmp(a, "--image") == 0) {
            o->image = v;
        } else if (strcmp(a, "--export-pub") == 0) {
            o->export_pub = v;
        } else if (strcmp(a, "--attest-wait-ms") == 0) {
            r = parse_ulong(v, 600000, &o->attest_wait_ms);
        } else if (strcmp(a, "--ramp-ms") == 0) {
            r = parse_ulong(v, 60000, &o->ramp_ms);
        } else {
            fprintf(stderr, "fleet-sim: unknown option %s\n", a);
            usage();
            return -EINVAL;
        }
        if (r != 0) {
            fprintf(stderr, "fleet-sim: bad value for %s: '%s'\n", a, v);
            return -EINVAL;
        }
    }
    if (o->export_pub != NULL) {
        if (o->iak_dir == NULL || o->nodes == 0) {
            fprintf(stderr, "fleet-sim: --export-pub needs --iak-dir and --nodes\n");
            return -EINVAL;
        }
        return 0;
    }
    if ((o->iak_dir != NULL) != (o->image != NULL) || (o->bad != SIM_GOOD && o->iak_dir == NULL)) {
        fprintf(stderr, "fleet-sim: --iak-dir and --image go together (and the bad-node options "
                        "need them)\n");
        return -EINVAL;
    }
    if (o->broker == NULL || o->nodes == 0 || o->count == 0 || o->rate <= 0 ||
        (!o->no_tls && (o->cafile == NULL || o->cert_dir == NULL))) {
        fprintf(stderr, "fleet-sim: --broker, --nodes (>0), --count (>0), --rate (>0) are "
                        "required, and --cafile/--cert-dir unless --no-tls\n");
        usage();
        return -EINVAL;
    }
    return 0;
}

static agent_status_t sim_link_open(void *ctx)
{
    struct sim_node *n = ctx;
    return posix_tcp_open(&n->tcp) == 0 ? AGENT_OK : AGENT_ERR_LINK;
}

static void sim_link_close(void *ctx)
{
    struct sim_node *n = ctx;
    posix_tcp_close(&n->tcp);
}

static int32_t sim_sample(void *user)
{
    struct sim_node *n = user;
    /* a plausible sensor value: varies with the sequence number */
    return (int32_t)(2000 + (int32_t)(n->agent.telemetry_seq % 100u));
}

static uint64_t sim_wall_clock(void *user)
{
    struct timespec ts;
    (void)user;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static agent_status_t sim_on_challenge(void *user, const uint8_t *nonce, size_t nonce_len,
                                       uint32_t ttl_s, uint8_t *out, size_t out_cap,
                                       size_t *ret_len)
{
    struct sim_node *n = user;
    (void)ttl_s;
    if (n->iak == NULL || sim_iak_token(n->iak, nonce, nonce_len, out, out_cap, ret_len) != 0)
        return AGENT_ERR_NOSPACE;
    return AGENT_OK;
}

/* topic template with {id} replaced */
static int make_topic(char *out, size_t cap, const char *tmpl, const char *id)
{
    const char *p = strstr(tmpl, "{id}");
    int w;
    if (p == NULL)
        w = snprintf(out, cap, "%s", tmpl);
    else
        w = snprintf(out, cap, "%.*s%s%s", (int)(p - tmpl), tmpl, id, p + 4);
    return (w < 0 || (size_t)w >= cap) ? -ENAMETOOLONG : 0;
}

static int setup_node(struct sim_node *n, const struct sim_opts *o, unsigned long index,
                      const struct sockaddr_storage *addr, socklen_t alen,
                      const struct node_tls_trust *trust, const char *server_name,
                      uint8_t *cred_buf, uint8_t *key_buf)
{
    struct agent_config c;
    struct agent_port port;
    struct agent_app app;
    int w;

    w = snprintf(n->id, sizeof(n->id), "%s%lu", o->prefix, o->first_index + index);
    if (w < 0 || (size_t)w >= sizeof(n->id)) {
        fprintf(stderr, "fleet-sim: node id too long\n");
        return -ENAMETOOLONG;
    }
    if (n->iak != NULL) /* the identity is the key's */
        snprintf(n->id, sizeof(n->id), "%s", n->iak->node_id);
    posix_tcp_init(&n->tcp, addr, alen);
    n->use_tls = !o->no_tls;
    if (n->use_tls) {
        char path[4096];
        struct node_tls_config tc;
        long cert_len, key_len;
        node_tls_status_t ts;
        snprintf(path, sizeof(path), "%s/%s.crt", o->cert_dir, n->id);
        cert_len = read_file(path, cred_buf, SIM_MAX_CRED);
        if (cert_len < 0) {
            fprintf(stderr, "fleet-sim: cannot read %s: %s\n", path, strerror((int)-cert_len));
            return (int)cert_len;
        }
        snprintf(path, sizeof(path), "%s/%s.key", o->cert_dir, n->id);
        key_len = read_file(path, key_buf, SIM_MAX_CRED);
        if (key_len < 0) {
            fprintf(stderr, "fleet-sim: cannot read %s: %s\n", path, strerror((int)-key_len));
            return (int)key_len;
        }
        memset(&tc, 0, sizeof(tc));
        tc.trust = trust;
        tc.cert = cred_buf;
        tc.cert_len = (size_t)cert_len;
        tc.key = key_buf;
        tc.key_len = (size_t)key_len;
        tc.server_name = server_name;
        tc.entropy = posix_entropy;
        tc.personalization = n->id;
        tc.max_fragment_len = (uint16_t)o->max_frag;
        ts = node_tls_init(&n->tls, &tc, &n->tcp.tr);
        explicit_bzero(key_buf, SIM_MAX_CRED);
        if (ts != NODE_TLS_OK) {
            fprintf(stderr, "fleet-sim: node %s: TLS setup failed (%d): check %s/%s.crt/.key\n",
                    n->id, (int)ts, o->cert_dir, n->id);
            return -EINVAL;
        }
        n->tls_ready = true;
    }
    memset(&c, 0, sizeof(c));
    c.node_id = n->id;
    if (o->topic_tmpl != NULL) {
        if (make_topic(n->topic, sizeof(n->topic), o->topic_tmpl, n->id) != 0) {
            fprintf(stderr, "fleet-sim: telemetry topic too long\n");
            return -ENAMETOOLONG;
        }
        c.telemetry_topic = n->topic;
    }
    c.telemetry_interval_ms = (uint32_t)(1000.0 / o->rate);
    if (c.telemetry_interval_ms == 0)
        c.telemetry_interval_ms = 1;
    c.telemetry_count = (uint32_t)o->count;
    c.stop_when_done = true;
    c.keep_alive_s = (uint16_t)o->keepalive;
    c.connect_timeout_ms = 30000;
    c.retry_ms = 10000;
    c.backoff_min_ms = 200;
    c.backoff_max_ms = 5000;
    c.max_attempts = (uint32_t)o->max_attempts;
    c.jitter_seed = (uint32_t)(index * 2654435761u + 1u);
    c.rx_buf = n->rx;
    c.rx_cap = sizeof(n->rx);
    c.tx_buf = n->tx;
    c.tx_cap = sizeof(n->tx);
    c.store = n->store;
    c.store_cap = sizeof(n->store);
    c.evidence_buf = n->evidence;
    c.evidence_cap = sizeof(n->evidence);
    if (n->iak != NULL) {
        c.attest_first = true;
        c.attest_wait_ms = (uint32_t)o->attest_wait_ms;
        c.fw_version.major = n->iak->image->major;
        c.fw_version.minor = n->iak->image->minor;
        c.fw_version.revision = n->iak->image->revision;
        c.fw_version.build = n->iak->image->build;
    }
    memset(&port, 0, sizeof(port));
    port.ctx = n;
    port.link_open = sim_link_open;
    port.link_close = sim_link_close;
    port.lower = &n->tcp.tr;
    memset(&app, 0, sizeof(app));
    app.user = n;
    app.telemetry_sample = sim_sample;
    app.wall_clock_ms = sim_wall_clock;
    if (n->iak != NULL)
        app.on_challenge = sim_on_challenge;
    /* OTA (on_ota) is not wired yet: see docs/agent.md. */
    if (agent_init(&n->agent, &c, &port, &app, n->use_tls ? node_tls_layer(&n->tls) : NULL) !=
        AGENT_OK) {
        fprintf(stderr, "fleet-sim: node %s: bad agent configuration\n", n->id);
        return -EINVAL;
    }
    return 0;
}

static void raise_fd_limit(unsigned long nodes)
{
    struct rlimit rl;
    rlim_t want = (rlim_t)nodes + 64u;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= want)
        return;
    rl.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < want)
        fprintf(stderr, "fleet-sim: warning: open-file limit %lu < %lu needed\n",
                (unsigned long)rl.rlim_cur, (unsigned long)want);
}

int main(int argc, char **argv)
{
    struct sim_opts o;
    struct sockaddr_storage addr;
    socklen_t alen = 0;
    char host[256];
    struct node_tls_trust trust;
    bool trust_loaded = false;
    struct sim_node *nodes = NULL;
    struct pollfd *pfds = NULL;
    unsigned long *pidx = NULL;
    uint8_t *cred = NULL, *keybuf = NULL;
    long rss0, rss_peak = 0;
    size_t heap0, heap_peak = 0;
    unsigned long connected = 0, failed = 0, started = 0;
    uint64_t sent = 0, acked = 0, retries = 0, challenges = 0, evidence = 0, att_timeouts = 0;
    struct sim_crypto crypto;
    struct sim_image image;
    struct sim_iak *iaks = NULL;
    unsigned long iaks_ready = 0;
    uint32_t t0, t_all_connected = 0, t_end, last_sample = 0;
    int ret = 1;

    memset(&crypto, 0, sizeof(crypto));
    if (parse_args(argc, argv, &o) != 0)
        return 2;
    if (o.iak_dir != NULL) {
        if (sim_crypto_init(&crypto) != 0)
            return 2;
        if (o.export_pub == NULL && sim_image_load(o.image, &image) != 0) {
            sim_crypto_free(&crypto);
            return 2;
        }
        iaks = calloc(o.nodes, sizeof(*iaks));
        if (iaks == NULL)
            goto out;
        for (unsigned long i = 0; i < o.nodes; i++) {
            char slot[AGENT_MAX_ID + 1];
            int w = snprintf(slot, sizeof(slot), "%s%lu", o.prefix, o.first_index + i);
            if (w < 0 || (size_t)w >= sizeof(slot) ||
                sim_iak_load_or_create(&iaks[i], &crypto, o.iak_dir, slot) != 0)
                goto out;
            iaks_ready++;
            iaks[i].image = &image;
            if (o.bad != SIM_GOOD && sim_iak_set_bad(&iaks[i], o.bad) != 0)
                goto out;
            if (o.export_pub != NULL) {
                if (sim_iak_export_pub(&iaks[i], o.export_pub) != 0)
                    goto out;
                printf("%s %s\n", slot, iaks[i].node_id);
            }
        }
        if (o.export_pub != NULL) {
            ret = 0;
            goto out;
        }
    }
    raise_fd_limit(o.nodes);
    if (posix_tcp_resolve(o.broker, &addr, &alen, host, sizeof(host)) != 0) {
        fprintf(stderr, "fleet-sim: cannot resolve broker address '%s' (want HOST:PORT)\n",
                o.broker);
        ret = 2;
        goto out;
    }
    cred = malloc(SIM_MAX_CRED);
    keybuf = malloc(SIM_MAX_CRED);
    pfds = calloc(o.nodes, sizeof(*pfds));
    pidx = calloc(o.nodes, sizeof(*pidx));
    if (cred == NULL || keybuf == NULL || pfds == NULL || pidx == NULL)
        goto out;
    if (!o.no_tls) {
        long n = read_file(o.cafile, cred, SIM_MAX_CRED);
        if (n < 0) {
            fprintf(stderr, "fleet-sim: cannot read CA file %s: %s\n", o.cafile, strerror((int)-n));
            goto out;
        }
        if (node_tls_trust_init(&trust, cred, (size_t)n) != NODE_TLS_OK) {
            fprintf(stderr, "fleet-sim: %s holds no usable CA certificate\n", o.cafile);
            goto out;
        }
        trust_loaded = true;
    }
    /* Memory baseline: everything shared is loaded; per-node state comes next. */
    rss0 = rss_kib();
    heap0 = heap_in_use();
    nodes = calloc(o.nodes, sizeof(*nodes));
    if (nodes == NULL) {
        fprintf(stderr, "fleet-sim: out of memory for %lu nodes\n", o.nodes);
        goto out;
    }
    for (unsigned long i = 0; i < o.nodes; i++) {
        nodes[i].iak = iaks != NULL ? &iaks[i] : NULL;
        if (setup_node(&nodes[i], &o, i, &addr, alen, trust_loaded ? &trust : NULL,
                       o.server_name != NULL ? o.server_name : host, cred, keybuf) != 0)
            goto out;
    }

    rss_peak = rss0;
    heap_peak = heap0;
    t0 = now_ms();
    for (;;) {
        uint32_t now = now_ms();
        nfds_t nf = 0;
        unsigned long finished = 0;
        int timeout = 10;

        /* ramp up: start node i at t0 + i * ramp_ms */
        while (started < o.nodes && (uint32_t)(now - t0) >= started * o.ramp_ms) {
            if (agent_start(&nodes[started].agent, now) != AGENT_OK)
                goto out;
            nodes[started].started = true;
            started++;
        }
        for (unsigned long i = 0; i < started; i++) {
            struct sim_node *n = &nodes[i];
            agent_tick(&n->agent, now);
            if (!n->counted_connected && agent_stats(&n->agent)->connects > 0) {
                n->counted_connected = true;
                connected++;
                if (connected == o.nodes) {
                    t_all_connected = now;
                }
            }
            if (agent_finished(&n->agent)) {
                finished++;
                continue;
            }
            if (n->tcp.fd >= 0) {
                pfds[nf].fd = n->tcp.fd;
                pfds[nf].events = POLLIN;
                if (n->tcp.connecting || n->tcp.write_blocked)
                    pfds[nf].events |= POLLOUT;
                pfds[nf].revents = 0;
                pidx[nf] = i;
                nf++;
                /* decrypted bytes already inside Mbed TLS: no poll wake-up will come */
                if (n->use_tls && n->tls.established && mbedtls_ssl_check_pending(&n->tls.ssl))
                    timeout = 0;
            }
        }
        if ((uint32_t)(now - last_sample) >= 50u || finished == o.nodes) {
            long r = rss_kib();
            last_sample = now;
            size_t h = heap_in_use();
            if (r > rss_peak)
                rss_peak = r;
            if (h > heap_peak)
                heap_peak = h;
        }
        if (finished == o.nodes)
            break;
        if (poll(pfds, nf, timeout) < 0 && errno != EINTR) {
            perror("fleet-sim: poll");
            goto out;
        }
        now = now_ms();
        for (nfds_t k = 0; k < nf; k++) {
            struct sim_node *n = &nodes[pidx[k]];
            if (n->tcp.fd != pfds[k].fd)
                continue; /* closed and maybe reopened in this round */
            if (n->tcp.connecting) {
                if (pfds[k].revents == 0)
                    continue;
                if (posix_tcp_finish(&n->tcp) != 0)
                    agent_link_down(&n->agent, now);
                else
                    agent_link_up(&n->agent, now);
                continue;
            }
            if (pfds[k].revents != 0 ||
                (n->use_tls && n->tls.established && mbedtls_ssl_check_pending(&n->tls.ssl)))
                agent_io(&n->agent, now);
        }
    }
    t_end = now_ms();

    for (unsigned long i = 0; i < o.nodes; i++) {
        const struct sim_node *n = &nodes[i];
        const struct agent_stats *s = agent_stats(&n->agent);
        sent += s->telemetry_sent;
        retries += s->attempts_failed;
        acked += s->telemetry_acked;
        challenges += s->challenges;
        evidence += s->evidence_sent;
        att_timeouts += s->attest_timeouts;
        if (agent_phase(&n->agent) == AGENT_FAILED || s->telemetry_acked < o.count) {
            char why[256] = "";
            failed++;
            if (failed <= 20) {
                if (n->use_tls && agent_last_error(&n->agent) == AGENT_ERR_SECURE)
                    node_tls_error_str(&n->tls, why, sizeof(why));
                fprintf(stderr,
                        "fleet-sim: node %s failed: %s after %" PRIu32 " attempt(s)%s%s "
                        "(acked %" PRIu32 "/%lu)\n",
                        n->id, agent_status_str(agent_last_error(&n->agent)), s->attempts_failed,
                        why[0] ? ": " : "", why, s->telemetry_acked, o.count);
            }
        }
    }
    {
        struct rusage ru;
        long cpu_ms = 0;
        long rss_delta = rss_peak - rss0;
        if (getrusage(RUSAGE_SELF, &ru) == 0)
            cpu_ms = (long)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000L +
                     (long)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000L;
        double per_node_rss = (double)rss_delta / (double)o.nodes;
        double per_node_heap =
            heap_peak > heap0 ? (double)(heap_peak - heap0) / 1024.0 / (double)o.nodes : 0.0;
        printf("fleet-sim: nodes=%lu connected=%lu sent=%" PRIu64 " acked=%" PRIu64
               " failed=%lu failed_attempts=%" PRIu64 " tls=%s elapsed_ms=%" PRIu32
               " connect_all_ms=%" PRIu32 " cpu_ms=%ld"
               " rss_delta_kib=%ld rss_per_node_kib=%.1f heap_per_node_kib=%.1f"
               " sizeof_node=%zu sizeof_agent=%zu sizeof_mqtt=%zu sizeof_tls=%zu"
               " attest=%s challenges=%" PRIu64 " evidence=%" PRIu64 " attest_timeouts=%" PRIu64
               "\n",
               o.nodes, connected, sent, acked, failed, retries, o.no_tls ? "off" : "on",
               t_end - t0, t_all_connected ? t_all_connected - t0 : 0, cpu_ms, rss_delta,
               per_node_rss, per_node_heap, sizeof(struct sim_node), sizeof(struct agent),
               sizeof(struct mqtt_client), sizeof(struct node_tls),
               iaks == NULL ? "off"
                            : (o.bad == SIM_GOOD
                                   ? "on"
                                   : (o.bad == SIM_FORGE
                                          ? "forge"
                                          : (o.bad == SIM_REPLAY ? "replay" : "bad-measurement"))),
               challenges, evidence, att_timeouts);
    }
    ret = failed == 0 ? 0 : 1;
out:
    if (nodes != NULL) {
        for (unsigned long i = 0; i < o.nodes; i++) {
            posix_tcp_close(&nodes[i].tcp);
            if (nodes[i].tls_ready)
                node_tls_free(&nodes[i].tls);
        }
        free(nodes);
    }
    if (trust_loaded)
        node_tls_trust_free(&trust);
    for (unsigned long i = 0; i < iaks_ready; i++)
        sim_iak_free(&iaks[i]);
    free(iaks);
    sim_crypto_free(&crypto);
    if (keybuf != NULL)
        explicit_bzero(keybuf, SIM_MAX_CRED);
    free(cred);
    free(keybuf);
    free(pfds);
    free(pidx);
    return ret;
}
