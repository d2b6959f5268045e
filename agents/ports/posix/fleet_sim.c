/* fleet-sim: N simulated nodes in one single-threaded, poll()-driven process. Each node is
 * its own agent instance (agents/core) with its own TCP socket, its own TLS session and its
 * own certificate/key, publishing QoS 1 telemetry to a real broker.
 *
 *   fleet-sim --broker HOST:PORT --nodes N --cafile CA --cert-dir DIR --rate R --count K
 *             [--id-prefix node-] [--no-tls] [--server-name NAME] [--telemetry-topic T]
 *             [--keepalive S] [--max-attempts A] [--ramp-ms MS] [--first-index I]
 *             [--tls-max-fragment 0|512|1024|2048|4096] [--persistent-session]
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
 * (gave up connecting, or did not get all its messages acknowledged). --persistent-session:
 * each node keeps its MQTT session at the broker (agent_config.persistent_session), so the
 * commands sent while it was stopped reach it when it is run again with the same ids.
 *
 *   OTA (docs/agent.md, "OTA in fleet-sim"): --boot-key PUB.pem (with --iak-dir and --image,
 *             the factory image) gives every node a flash file in its state directory
 *             (--state-dir DIR: DIR/<name>/, kept; without it a temporary directory removed at
 *             the end unless --keep-state), the real bootloader at every reset and the
 *             agents/core OTA client; --fault RANGE:KIND[=ARG] (repeatable) makes a node group
 *             misbehave. --count 0: telemetry without end, run until SIGTERM/SIGINT. */
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
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fleetgw/agent.h"
#include "fleetgw/node_tls.h"
#include "fleetgw/posix_tcp.h"
#include "sim_attest.h"
#include "fleetgw_version.h"
#include "sim_device.h"

#include <openssl/pem.h>
#include <openssl/x509.h>

/* an ota-chunk of 2048 bytes (the protocol's largest) with its topic and headers */
#define SIM_RX_CAP 2304u
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
    /* OTA (--boot-key): the device, and what the link-side faults do */
    struct sim_device *dev; /* NULL without OTA */
    const struct sim_opts *opts;
    unsigned long index;
    bool dead;           /* no bootable image: stays in the bootloader */
    bool reboot_pending; /* install requested or power cut: reset at reboot_at */
    uint32_t reboot_at;
    bool go_offline, offline;
    uint32_t offline_until;
    bool stalled, stall_fired, power_cut_fired, offline_fired;
    uint32_t status_sent_for;    /* agent connects count the OTA status was published for */
    uint8_t held[OTA_REPLY_MAX]; /* slow link: the reply waiting for its time */
    size_t held_len;
    const char *held_topic;
    uint32_t held_due;
    uint32_t ota_hw; /* highest download offset reached (this campaign, this process) */
    char ota_campaign[MSG_CAMPAIGN_ID_MAX + 1];
    uint64_t ota_bytes_in, ota_bytes_resent;
    uint32_t power_cuts, offlines;
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
    const char *boot_key;
    const char *state_dir;
    int until_ota; /* -1, or exit once every node's update reached this state (or failed) */
    bool keep_state;
    bool persistent; /* --persistent-session: the broker queues commands while away */
    unsigned nfaults;
    struct sim_fault_spec {
        unsigned long first, last;
        struct sim_fault f;
    } faults[16];
};

static volatile sig_atomic_t g_stop;

static void on_stop_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

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

/* --fault FIRST[-LAST]:KIND[=ARG] or all:KIND[=ARG] (node indexes of this process, from 0). */
static int parse_fault(const char *spec, struct sim_fault_spec *fs)
{
    char buf[128], *colon, *kind, *arg, *dash;
    unsigned long v = 0, v2 = 0;
    memset(fs, 0, sizeof(*fs));
    if (strlen(spec) >= sizeof(buf))
        return -EINVAL;
    strcpy(buf, spec);
    colon = strchr(buf, ':');
    if (colon == NULL)
        return -EINVAL;
    *colon = '\0';
    kind = colon + 1;
    if (strcmp(buf, "all") == 0) {
        fs->first = 0;
        fs->last = ULONG_MAX;
    } else {
        dash = strchr(buf, '-');
        if (dash != NULL)
            *dash = '\0';
        if (parse_ulong(buf, SIM_MAX_NODES, &fs->first) != 0)
            return -EINVAL;
        fs->last = fs->first;
        if (dash != NULL &&
            (parse_ulong(dash + 1, SIM_MAX_NODES, &fs->last) != 0 || fs->last < fs->first))
            return -EINVAL;
    }
    arg = strchr(kind, '=');
    if (arg != NULL)
        *arg++ = '\0';
    if (strcmp(kind, "boot-fail") == 0 && arg == NULL) {
        fs->f.boot_fail = true;
    } else if (strcmp(kind, "wrong-measurement") == 0 && arg == NULL) {
        fs->f.wrong_measurement = true;
    } else if (strcmp(kind, "stall") == 0 && arg != NULL && parse_ulong(arg, 99, &v) == 0 &&
               v > 0) {
        fs->f.stall_pct = (unsigned)v;
    } else if (strcmp(kind, "power-cut") == 0 && arg != NULL && parse_ulong(arg, 99, &v) == 0 &&
               v > 0) {
        fs->f.power_cut_pct = (unsigned)v;
    } else if (strcmp(kind, "offline") == 0 && arg != NULL) {
        char *comma = strchr(arg, ',');
        if (comma == NULL)
            return -EINVAL;
        *comma = '\0';
        if (parse_ulong(arg, 99, &v) != 0 || v == 0 || parse_ulong(comma + 1, 3600, &v2) != 0 ||
            v2 == 0)
            return -EINVAL;
        fs->f.offline_pct = (unsigned)v;
        fs->f.offline_s = (unsigned)v2;
    } else if (strcmp(kind, "slow") == 0 && arg != NULL && parse_ulong(arg, 60000, &v) == 0 &&
               v > 0) {
        fs->f.slow_ms = (unsigned)v;
    } else if (strcmp(kind, "refuse") == 0 && arg != NULL &&
               (strcmp(arg, "no-space") == 0 || strcmp(arg, "downgrade") == 0)) {
        fs->f.refuse_reason = arg[0] == 'n' ? MSG_REASON_NO_SPACE : MSG_REASON_DOWNGRADE;
    } else if (strcmp(kind, "swap-cut") == 0 && arg != NULL && parse_ulong(arg, 100000, &v) == 0 &&
               v > 0) {
        fs->f.swap_cut_ops = (unsigned)v;
    } else {
        return -EINVAL;
    }
    return 0;
}

/* The faults of node i: every matching --fault, merged. */
static struct sim_fault node_faults(const struct sim_opts *o, unsigned long i)
{
    struct sim_fault f;
    memset(&f, 0, sizeof(f));
    for (unsigned k = 0; k < o->nfaults; k++) {
        const struct sim_fault *g = &o->faults[k].f;
        if (i < o->faults[k].first || i > o->faults[k].last)
            continue;
        f.boot_fail |= g->boot_fail;
        f.wrong_measurement |= g->wrong_measurement;
        if (g->stall_pct)
            f.stall_pct = g->stall_pct;
        if (g->power_cut_pct)
            f.power_cut_pct = g->power_cut_pct;
        if (g->offline_pct) {
            f.offline_pct = g->offline_pct;
            f.offline_s = g->offline_s;
        }
        if (g->slow_ms)
            f.slow_ms = g->slow_ms;
        if (g->refuse_reason)
            f.refuse_reason = g->refuse_reason;
        if (g->swap_cut_ops)
            f.swap_cut_ops = g->swap_cut_ops;
    }
    return f;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: fleet-sim --broker HOST:PORT --nodes N --cafile CA --cert-dir DIR\n"
            "                 --rate MSGS_PER_SEC_PER_NODE --count MSGS_PER_NODE\n"
            "                 [--id-prefix node-] [--first-index 0] [--no-tls]\n"
            "                 [--server-name NAME] [--telemetry-topic TEMPLATE]\n"
            "                 [--keepalive 60] [--max-attempts 5] [--ramp-ms 2 (0: all at once)]\n"
            "                 [--tls-max-fragment 0|512|1024|2048|4096] [--persistent-session]\n"
            "                 [--iak-dir KEYDIR --image SIGNED.bin [--attest-wait-ms 10000]\n"
            "                  [--bad-measurement|--forge|--replay]]\n"
            "                 [--boot-key PUB.pem [--state-dir DIR | --keep-state]\n"
            "                  [--fault FIRST[-LAST]:KIND[=ARG]]...\n"
            "                  [--until-ota staged|testing|confirmed]]   (OTA, docs/agent.md)\n"
            "       fleet-sim --iak-dir KEYDIR --nodes N --export-pub OUTDIR\n"
            "                 [--id-prefix node-] [--first-index 0]\n"
            "       fleet-sim --help | --version\n");
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
    o->until_ota = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = (i + 1 < argc) ? argv[i + 1] : NULL;
        int r = 0;
        if (strcmp(a, "--no-tls") == 0) {
            o->no_tls = true;
            continue;
        }
        if (strcmp(a, "--keep-state") == 0) {
            o->keep_state = true;
            continue;
        }
        if (strcmp(a, "--persistent-session") == 0) {
            o->persistent = true;
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
            usage(stdout);
            exit(0);
        }
        if (strcmp(a, "--version") == 0)
            exit(fleetgw_print_version("fleet-sim"));
        if (v == NULL) {
            fprintf(stderr, "fleet-sim: unknown option or missing value: %s\n", a);
            usage(stderr);
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
        } else if (strcmp(a, "--boot-key") == 0) {
            o->boot_key = v;
        } else if (strcmp(a, "--state-dir") == 0) {
            o->state_dir = v;
        } else if (strcmp(a, "--until-ota") == 0) {
            if (strcmp(v, "staged") == 0)
                o->until_ota = MSG_OTA_STAGED;
            else if (strcmp(v, "testing") == 0)
                o->until_ota = MSG_OTA_TESTING;
            else if (strcmp(v, "confirmed") == 0)
                o->until_ota = MSG_OTA_CONFIRMED;
            else
                r = -EINVAL;
        } else if (strcmp(a, "--fault") == 0) {
            if (o->nfaults >= sizeof(o->faults) / sizeof(o->faults[0]) ||
                parse_fault(v, &o->faults[o->nfaults]) != 0) {
                fprintf(stderr,
                        "fleet-sim: bad --fault '%s' (at most 16; want FIRST[-LAST]:KIND[=ARG] or "
                        "all:KIND[=ARG], KIND one of boot-fail, wrong-measurement, stall=PCT, "
                        "power-cut=PCT, offline=PCT,SECONDS, slow=MS, refuse=no-space|downgrade, "
                        "swap-cut=N)\n",
                        v);
                usage(stderr);
                return -EINVAL;
            }
            o->nfaults++;
            continue;
        } else if (strcmp(a, "--ramp-ms") == 0) {
            r = parse_ulong(v, 60000, &o->ramp_ms);
        } else {
            fprintf(stderr, "fleet-sim: unknown option %s\n", a);
            usage(stderr);
            return -EINVAL;
        }
        if (r != 0) {
            fprintf(stderr, "fleet-sim: bad value for %s: '%s'\n", a, v);
            usage(stderr);
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
    if (o->boot_key != NULL && o->iak_dir == NULL) {
        fprintf(stderr, "fleet-sim: --boot-key (OTA) needs --iak-dir and --image (the factory "
                        "image)\n");
        return -EINVAL;
    }
    if (o->boot_key == NULL &&
        (o->state_dir != NULL || o->keep_state || o->nfaults > 0 || o->until_ota >= 0)) {
        fprintf(stderr,
                "fleet-sim: --state-dir, --keep-state, --fault and --until-ota need --boot-key\n");
        return -EINVAL;
    }
    if (o->broker == NULL || o->nodes == 0 || (o->count == 0 && o->boot_key == NULL) ||
        o->rate <= 0 || (!o->no_tls && (o->cafile == NULL || o->cert_dir == NULL))) {
        fprintf(stderr, "fleet-sim: --broker, --nodes (>0), --count (>0), --rate (>0) are "
                        "required, and --cafile/--cert-dir unless --no-tls\n");
        usage(stderr);
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

/* ---- OTA (--boot-key) ------------------------------------------------------------------ */

static bool is_suffix(const char *s, size_t n, const char *lit)
{
    return n == strlen(lit) && memcmp(s, lit, n) == 0;
}

/* app.on_ota: the agents/core OTA client, with the link-side faults around it. Runs inside
 * agent_io(): resets and link changes are only flagged here and done by the main loop. */
static agent_status_t sim_on_ota(void *user, const char *suffix, size_t slen,
                                 const uint8_t *payload, size_t plen, uint8_t *out, size_t cap,
                                 size_t *ret_len, const char **ret_topic)
{
    struct sim_node *n = user;
    struct sim_device *d = n->dev;
    const struct sim_fault *f = &d->fault;
    bool offer = is_suffix(suffix, slen, "offer"), chunk = is_suffix(suffix, slen, "chunk");
    uint32_t before = d->ota.prog.offset, prev_state = d->ota.prog.state, after, size;
    const char *topic = NULL;
    struct msg m;
    enum ota_err e;

    *ret_len = 0;
    if (offer && f->refuse_reason != 0) {
        struct msg ack;
        if (msg_decode(payload, plen, &m) != MSG_OK || m.type != MSG_OTA_OFFER)
            return AGENT_ERR_PARAM;
        memset(&ack, 0, sizeof(ack));
        ack.type = MSG_OTA_ACK;
        memcpy(ack.u.ack.campaign, m.u.offer.campaign, sizeof(ack.u.ack.campaign));
        ack.u.ack.accepted = false;
        ack.u.ack.reason = (enum msg_ota_reason)f->refuse_reason;
        if (msg_encode(&ack, out, cap, ret_len) != MSG_OK)
            return AGENT_ERR_NOSPACE;
        *ret_topic = "ota/ack";
        return AGENT_OK;
    }
    if (offer)
        n->stalled = false; /* a new offer brings a stalled node back */
    if (chunk && n->stalled)
        return AGENT_OK; /* stalled: no request, nothing written */
    if (chunk && msg_decode(payload, plen, &m) == MSG_OK && m.type == MSG_OTA_CHUNK &&
        strcmp(m.u.chunk.campaign, d->ota.prog.campaign) == 0) {
        n->ota_bytes_in += m.u.chunk.data_len;
        if (m.u.chunk.offset < n->ota_hw || m.u.chunk.offset != before)
            n->ota_bytes_resent += m.u.chunk.data_len; /* sent before, or not where we are */
    }
    e = ota_handle(&d->ota, suffix, slen, payload, plen, out, cap, ret_len, &topic);
    if (e != OTA_OK)
        return e == OTA_ERR_NOSPACE ? AGENT_ERR_NOSPACE : AGENT_ERR_PARAM;
    if (strcmp(n->ota_campaign, d->ota.prog.campaign) != 0) {
        memcpy(n->ota_campaign, d->ota.prog.campaign, sizeof(n->ota_campaign));
        n->ota_hw = 0;
    }
    after = d->ota.prog.offset;
    size = d->ota.prog.size;
    if (after > n->ota_hw)
        n->ota_hw = after;
    if (chunk && d->ota.prog.state == MSG_OTA_DOWNLOADING && after != before && size > 0) {
        uint64_t pct = (uint64_t)after * 100u / size;
        if (f->power_cut_pct != 0 && !n->power_cut_fired && pct >= f->power_cut_pct) {
            n->power_cut_fired = true; /* the reply never leaves: the power is gone */
            n->power_cuts++;
            n->reboot_pending = true;
            n->reboot_at = n->agent.now_ms;
            *ret_len = 0;
            return AGENT_OK;
        }
        if (f->stall_pct != 0 && !n->stall_fired && pct >= f->stall_pct) {
            n->stall_fired = true;
            n->stalled = true;
            *ret_len = 0;
            return AGENT_OK;
        }
        if (f->offline_pct != 0 && !n->offline_fired && pct >= f->offline_pct) {
            n->offline_fired = true;
            n->go_offline = true; /* the reply is lost with the link */
            *ret_len = 0;
            return AGENT_OK;
        }
    }
    if (d->ota.prog.state == MSG_OTA_STAGED && prev_state != MSG_OTA_STAGED) {
        /* the bootloader installs at the next reset: give the status a moment to leave */
        n->reboot_pending = true;
        n->reboot_at = n->agent.now_ms + 500u;
    }
    if (f->slow_ms != 0 && *ret_len > 0 && *ret_len <= sizeof(n->held) && topic != NULL &&
        strcmp(topic, "ota/request") == 0) {
        memcpy(n->held, out, *ret_len);
        n->held_len = *ret_len;
        n->held_topic = topic;
        n->held_due = n->agent.now_ms + f->slow_ms;
        *ret_len = 0;
        return AGENT_OK;
    }
    *ret_topic = topic;
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
    n->opts = o;
    n->index = index;
    return 0;
}

/* The agent of a node (again after every reset: a reset loses everything in RAM). */
static int node_agent_init(struct sim_node *n)
{
    const struct sim_opts *o = n->opts;
    unsigned long index = n->index;
    struct agent_config c;
    struct agent_port port;
    struct agent_app app;
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
    c.stop_when_done = o->count != 0;
    c.keep_alive_s = (uint16_t)o->keepalive;
    c.connect_timeout_ms = 30000;
    c.retry_ms = 10000;
    c.backoff_min_ms = 200;
    c.backoff_max_ms = 5000;
    c.max_attempts = (uint32_t)o->max_attempts;
    c.jitter_seed = (uint32_t)(index * 2654435761u + 1u);
    c.persistent_session = o->persistent;
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
        c.fw_version.major = n->iak->image->major; /* the booted image with OTA */
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
    if (n->dev != NULL)
        app.on_ota = sim_on_ota;
    if (agent_init(&n->agent, &c, &port, &app, n->use_tls ? node_tls_layer(&n->tls) : NULL) !=
        AGENT_OK) {
        fprintf(stderr, "fleet-sim: node %s: bad agent configuration\n", n->id);
        return -EINVAL;
    }
    return 0;
}

/* A reset of the node (install, power cut): the link drops, RAM is lost, the bootloader runs
 * on the node's flash, the OTA client restarts from its record, a new agent connects. */
static int node_boot(struct sim_node *n, const struct sim_image *factory)
{
    struct sim_device *d = n->dev;
    posix_tcp_close(&n->tcp);
    if (n->tls_ready)
        node_tls_reset(&n->tls);
    n->reboot_pending = false;
    n->go_offline = n->offline = false;
    n->stalled = false;
    n->held_len = 0;
    n->status_sent_for = 0;
    if (sim_device_boot(d) != 0) {
        n->dead = true;
        return -1;
    }
    n->iak->image = &d->image;
    /* a new boot seed every boot (the token says which boot it comes from) */
    if (mbedtls_hmac_drbg_random(&n->iak->crypto->drbg, n->iak->boot_seed,
                                 sizeof(n->iak->boot_seed)) != 0)
        return -1;
    /* wrong-measurement: the updated image (anything but the factory image) lies */
    if (d->fault.wrong_measurement)
        n->iak->bad = memcmp(d->rec.measurement, factory->measurement, 32) != 0
                          ? SIM_BAD_MEASUREMENT
                          : n->opts->bad;
    return node_agent_init(n);
}

static bool before_ms(uint32_t a, uint32_t b)
{
    return (int32_t)(a - b) < 0;
}

/* Per loop round: after every new connection the node tells the gateway where its update
 * stands (ota/status: testing after an install, reverted after a revert, downloading with
 * the offset to resume from); a slow link's held chunk request leaves when it is due. */
static void ota_housekeeping(struct sim_node *n, uint32_t now)
{
    const struct agent_stats *st = agent_stats(&n->agent);
    if (agent_phase(&n->agent) != AGENT_RUNNING)
        return;
    if (st->connects != n->status_sent_for && ota_state(&n->dev->ota) != MSG_OTA_IDLE) {
        uint8_t buf[OTA_REPLY_MAX];
        size_t len = 0;
        if (ota_status_encode(&n->dev->ota, buf, sizeof(buf), &len) == OTA_OK &&
            agent_publish(&n->agent, "ota/status", buf, len) == AGENT_OK)
            n->status_sent_for = st->connects;
    } else if (st->connects != n->status_sent_for) {
        n->status_sent_for = st->connects;
    }
    if (n->held_len > 0 && !before_ms(now, n->held_due) &&
        agent_publish(&n->agent, n->held_topic, n->held, n->held_len) == AGENT_OK)
        n->held_len = 0;
}

static const char *ota_state_name(uint32_t st)
{
    static const char *const names[] = {"idle",    "downloading", "verifying", "staged",
                                        "testing", "confirmed",   "failed",    "reverted"};
    return st < sizeof(names) / sizeof(names[0]) ? names[st] : "?";
}

/* The bootloader's key: a P-256 public key PEM -> DER SubjectPublicKeyInfo + point. */
static int read_boot_key(const char *path, struct sim_device_shared *sh)
{
    FILE *f = fopen(path, "re");
    EVP_PKEY *k = NULL;
    unsigned char *der = NULL;
    int n, rc = -1;
    if (f == NULL) {
        fprintf(stderr, "fleet-sim: cannot read --boot-key %s: %s\n", path, strerror(errno));
        return -1;
    }
    k = PEM_read_PUBKEY(f, NULL, NULL, NULL);
    fclose(f);
    n = k != NULL ? i2d_PUBKEY(k, &der) : -1;
    if (n == (int)BOOT_P256_SPKI_LEN) {
        memcpy(sh->boot_key_spki, der, BOOT_P256_SPKI_LEN);
        /* the point is the last 65 bytes of a P-256 SubjectPublicKeyInfo */
        memcpy(sh->ota_key.pub, der + BOOT_P256_SPKI_LEN - CRYPTO_P256_PUB_LEN,
               CRYPTO_P256_PUB_LEN);
        rc = 0;
    } else {
        fprintf(stderr, "fleet-sim: --boot-key %s: not a P-256 public key (PEM)\n", path);
    }
    OPENSSL_free(der);
    EVP_PKEY_free(k);
    return rc;
}

static uint8_t *read_image_bytes(const char *path, uint32_t *ret_len)
{
    FILE *f = fopen(path, "rbe");
    uint8_t *buf = NULL;
    long len;
    if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) <= 0 ||
        len > (long)BOOT_SLOT_SIZE || fseek(f, 0, SEEK_SET) != 0 ||
        (buf = malloc((size_t)len)) == NULL || fread(buf, 1, (size_t)len, f) != (size_t)len) {
        fprintf(stderr, "fleet-sim: %s: cannot read the factory image (1..%u bytes)\n", path,
                BOOT_SLOT_SIZE);
        free(buf);
        buf = NULL;
    } else {
        *ret_len = (uint32_t)len;
    }
    if (f != NULL)
        fclose(f);
    return buf;
}

/* Removes what the devices left in a temporary state root (flash files, OTA records). */
static void remove_state(const char *root, const struct sim_device *devs, unsigned long count)
{
    static const char *const files[] = {"flash.bin", "ota.rec", "ota.rec.tmp"};
    char path[1024];
    for (unsigned long i = 0; i < count; i++) {
        if (devs[i].dir[0] == '\0')
            continue;
        for (size_t k = 0; k < sizeof(files) / sizeof(files[0]); k++) {
            if (snprintf(path, sizeof(path), "%s/%s", devs[i].dir, files[k]) < (int)sizeof(path))
                (void)unlink(path);
        }
        if (rmdir(devs[i].dir) != 0 && errno != ENOENT)
            fprintf(stderr, "fleet-sim: cannot remove %s: %s\n", devs[i].dir, strerror(errno));
    }
    if (rmdir(root) != 0)
        fprintf(stderr, "fleet-sim: cannot remove %s: %s\n", root, strerror(errno));
}

/* One descriptor per node and room for the rest: the soft open-file limit is raised to the
 * hard one; when even that is too low, fleet-sim says so and by how much, and does not start
 * (nodes beyond the limit would fail one by one with EMFILE). 0 or -EMFILE. */
static int raise_fd_limit(unsigned long nodes)
{
    struct rlimit rl;
    rlim_t want = (rlim_t)nodes + 64u;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        fprintf(stderr, "fleet-sim: cannot read the open-file limit: %s\n", strerror(errno));
        return -EMFILE;
    }
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            (void)getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
        fprintf(stderr,
                "fleet-sim: the open-file limit is %lu (hard %lu) but %lu node(s) need %lu: "
                "raise the hard limit (ulimit -Hn %lu) or run fewer nodes per fleet-sim\n",
                (unsigned long)rl.rlim_cur, (unsigned long)rl.rlim_max, nodes, (unsigned long)want,
                (unsigned long)want);
        return -EMFILE;
    }
    return 0;
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
    unsigned long ota_count[8] = {0}, dead = 0;
    uint64_t sent = 0, acked = 0, retries = 0, challenges = 0, evidence = 0, att_timeouts = 0;
    struct sim_crypto crypto;
    struct sim_image image;
    struct sim_iak *iaks = NULL;
    unsigned long iaks_ready = 0;
    uint32_t t0, t_all_connected = 0, t_end, last_sample = 0;
    int ret = 1;
    struct sim_device_shared dsh;
    struct sim_device *devs = NULL;
    unsigned long devs_open = 0;
    uint8_t *factory = NULL;
    char state_root[512] = "";
    bool remove_root = false;

    /* line by line: tests and operators follow the boot lines while the run goes on */
    setvbuf(stdout, NULL, _IOLBF, 0);
    memset(&crypto, 0, sizeof(crypto));
    memset(&dsh, 0, sizeof(dsh));
    if (parse_args(argc, argv, &o) != 0)
        return 2;
    if (o.export_pub == NULL && raise_fd_limit(o.nodes) != 0)
        return 2; /* said why */
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
    if (o.boot_key != NULL) {
        if (read_boot_key(o.boot_key, &dsh) != 0 ||
            (factory = read_image_bytes(o.image, &dsh.factory_len)) == NULL) {
            ret = 2;
            goto out;
        }
        dsh.factory_image = factory;
        dsh.verbose = true;
        if (o.state_dir != NULL) {
            if (mkdir(o.state_dir, 0700) != 0 && errno != EEXIST) {
                fprintf(stderr, "fleet-sim: cannot create --state-dir %s: %s\n", o.state_dir,
                        strerror(errno));
                ret = 2;
                goto out;
            }
            snprintf(state_root, sizeof(state_root), "%s", o.state_dir);
        } else {
            const char *tmp = getenv("TMPDIR");
            snprintf(state_root, sizeof(state_root), "%s/fleet-sim-XXXXXX",
                     tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
            if (mkdtemp(state_root) == NULL) {
                fprintf(stderr, "fleet-sim: cannot create a state directory: %s\n",
                        strerror(errno));
                ret = 2;
                goto out;
            }
            remove_root = !o.keep_state;
            printf("fleet-sim: state directory %s (%s at the end)\n", state_root,
                   remove_root ? "removed" : "kept");
        }
        devs = calloc(o.nodes, sizeof(*devs));
        if (devs == NULL)
            goto out;
        for (unsigned long i = 0; i < o.nodes; i++) {
            char slot[AGENT_MAX_ID + 1], dir[1024];
            struct sim_fault f = node_faults(&o, i);
            snprintf(slot, sizeof(slot), "%s%lu", o.prefix, o.first_index + i);
            if (snprintf(dir, sizeof(dir), "%s/%s", state_root, slot) >= (int)sizeof(dir) ||
                sim_device_open(&devs[i], &dsh, dir, iaks[i].node_id, &f) != 0) {
                devs_open = i + 1;
                goto out;
            }
            devs_open = i + 1;
        }
    }
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
        nodes[i].dev = devs != NULL ? &devs[i] : NULL;
        if (setup_node(&nodes[i], &o, i, &addr, alen, trust_loaded ? &trust : NULL,
                       o.server_name != NULL ? o.server_name : host, cred, keybuf) != 0)
            goto out;
        if (nodes[i].dev != NULL) {
            if (node_boot(&nodes[i], &image) != 0 && !nodes[i].dead)
                goto out;
        } else if (node_agent_init(&nodes[i]) != 0) {
            goto out;
        }
    }
    signal(SIGTERM, on_stop_signal);
    signal(SIGINT, on_stop_signal);

    rss_peak = rss0;
    heap_peak = heap0;
    t0 = now_ms();
    for (;;) {
        uint32_t now = now_ms();
        nfds_t nf = 0;
        unsigned long finished = 0, ota_done = 0;
        int timeout = 10;

        /* ramp up: start node i at t0 + i * ramp_ms */
        if (g_stop)
            break;
        while (started < o.nodes && (uint32_t)(now - t0) >= started * o.ramp_ms) {
            if (!nodes[started].dead && agent_start(&nodes[started].agent, now) != AGENT_OK)
                goto out;
            nodes[started].started = true;
            started++;
        }
        for (unsigned long i = 0; i < started; i++) {
            struct sim_node *n = &nodes[i];
            if (n->dev != NULL) {
                if (n->dead) {
                    finished++;
                    continue;
                }
                if (n->reboot_pending && !before_ms(now, n->reboot_at)) {
                    if (node_boot(n, &image) != 0) {
                        if (n->dead) {
                            finished++;
                            continue;
                        }
                        goto out;
                    }
                    if (agent_start(&n->agent, now) != AGENT_OK)
                        goto out;
                }
                if (n->go_offline) {
                    n->go_offline = false;
                    n->offline = true;
                    n->offlines++;
                    n->offline_until = now + n->dev->fault.offline_s * 1000u;
                    posix_tcp_close(&n->tcp); /* the broker sees the link go */
                }
                if (n->offline) {
                    if (before_ms(now, n->offline_until))
                        continue;
                    n->offline = false;
                    agent_link_down(&n->agent, now); /* back: reconnect */
                }
                ota_housekeeping(n, now);
                if (o.until_ota >= 0 && !n->reboot_pending &&
                    (ota_state(&n->dev->ota) == (enum msg_ota_state)o.until_ota ||
                     ota_state(&n->dev->ota) == MSG_OTA_FAILED ||
                     ota_state(&n->dev->ota) == MSG_OTA_REVERTED))
                    ota_done++;
            }
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
        if (o.until_ota >= 0 && ota_done + finished == o.nodes)
            break; /* every update reached the state asked for (or failed) */
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
        if (n->dev != NULL) {
            const struct sim_device *d = n->dev;
            if (o.nodes <= 50 || n->dead)
                printf("fleet-sim: node %s ota state=%s reason=%u offset=%" PRIu32
                       " running=%s%s boots=%" PRIu32 " power_cuts=%" PRIu32 " swap_cuts=%" PRIu32
                       " crashes=%" PRIu32 " offline=%" PRIu32 " bytes_in=%" PRIu64
                       " bytes_resent=%" PRIu64 "\n",
                       n->id, ota_state_name(d->ota.prog.state), (unsigned)d->ota.prog.reason,
                       d->ota.prog.offset, n->dead ? "none" : d->image.version,
                       n->dead ? "" : (d->rec.confirmed ? " (confirmed)" : " (test mode)"),
                       d->boots, n->power_cuts, d->swap_cuts, d->crashes, n->offlines,
                       n->ota_bytes_in, n->ota_bytes_resent);
            ota_count[d->ota.prog.state < 8 ? d->ota.prog.state : 0]++;
            dead += n->dead ? 1u : 0u;
        }
        if (n->dead || agent_phase(&n->agent) == AGENT_FAILED ||
            (s->telemetry_acked < o.count && !g_stop)) {
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
        if (devs != NULL)
            printf("fleet-sim: ota idle=%lu downloading=%lu staged=%lu testing=%lu confirmed=%lu "
                   "failed=%lu reverted=%lu no_image=%lu stopped_by_signal=%d "
                   "sizeof_device=%zu\n",
                   ota_count[0], ota_count[1], ota_count[3], ota_count[4], ota_count[5],
                   ota_count[6], ota_count[7], dead, g_stop ? 1 : 0, sizeof(struct sim_device));
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
    for (unsigned long i = 0; i < devs_open; i++)
        sim_device_close(&devs[i]);
    if (remove_root)
        remove_state(state_root, devs, devs != NULL ? o.nodes : 0);
    free(devs);
    free(factory);
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
