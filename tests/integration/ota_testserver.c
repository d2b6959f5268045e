/* fleetgw-ota-testserver: a TEST-ONLY stand-in for the gateway's side of an update
 * (docs/protocol.md 3.1-3.8), until the campaign engine (issue #13) replaces it. It speaks the
 * real protocol (proto/ msg_encode/msg_decode, token_verify) through the real broker
 * (libmosquitto over the broker's unix socket) with real signed images, for one node.
 *
 *   fleetgw-ota-testserver --socket PATH --username NAME --password-file F
 *                          (--node ID [--iak-pub PEM] | --nodes-file FILE)
 *
 * With --nodes-file (one node id per line) it serves a whole fleet: "offer" goes to every
 * listed node, chunks are served to whichever node asks, only status lines are printed (with
 * "node=ID"), and attestation is not available.
 *
 * Commands on stdin, one per line:
 *   offer CAMPAIGN IMAGE CHUNK   publish an ota-offer for the image file (digest, size and
 *                                version read from the image itself)
 *   challenge                    publish an attest-challenge with a fresh 32-byte nonce
 *   confirm CAMPAIGN             publish an ota-confirm for the offered image's digest
 *   stats                        print "stats bytes_sent=N bytes_resent=N chunks=N"
 *   quit
 * Events on stdout, one line each: "ready", "ack ...", "request ...", "status ...",
 * "evidence ...", "node-status ...", "error ...". Chunks are served automatically: after an
 * accepted ack from offset 0, on every chunk request at the requested offset, and after a
 * "downloading" status (a node that came back) at the offset it reports. Nothing here may
 * move into the daemon. */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <mosquitto.h>
#include <openssl/pem.h>

#include "fleetgw/image.h"
#include "fleetgw/msg.h"
#include "fleetgw/token.h"
#include "fleetgw_version.h"
#include "tool_util.h"

struct server {
    pthread_mutex_t lock;
    struct mosquitto *mosq;
    char node[MSG_NODE_ID_MAX + 1];
    char (*ids)[MSG_NODE_ID_MAX + 1]; /* --nodes-file */
    size_t n_ids;
    uint8_t iak_pub[CRYPTO_P256_PUB_LEN];
    int have_pub;
    /* the current offer */
    char campaign[MSG_CAMPAIGN_ID_MAX + 1];
    uint8_t *image;
    size_t image_len;
    uint8_t digest[MSG_DIGEST_LEN];
    uint32_t chunk;
    uint32_t sent_hw; /* highest end offset sent */
    uint64_t bytes_sent, bytes_resent, chunks;
    /* the last challenge */
    uint8_t nonce[32];
    int have_nonce;
};

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

static const char *state_name(unsigned st)
{
    static const char *const n[] = {"idle",    "downloading", "verifying", "staged",
                                    "testing", "confirmed",   "failed",    "reverted"};
    return st < 8 ? n[st] : "?";
}

static int publish_to(struct server *s, const char *node, const char *suffix, const struct msg *m)
{
    uint8_t buf[2200];
    size_t len = 0;
    char topic[128];
    if (msg_encode(m, buf, sizeof(buf), &len) != MSG_OK) {
        say("error cannot encode a %s message", suffix);
        return -1;
    }
    snprintf(topic, sizeof(topic), "fleet/%s/%s", node, suffix);
    int rc = mosquitto_publish(s->mosq, NULL, topic, (int)len, buf, 1, false);
    if (rc != MOSQ_ERR_SUCCESS) {
        say("error publish %s: %s", topic, mosquitto_strerror(rc));
        return -1;
    }
    return 0;
}

static int publish(struct server *s, const char *suffix, const struct msg *m)
{
    if (s->n_ids == 0)
        return publish_to(s, s->node, suffix, m);
    for (size_t i = 0; i < s->n_ids; i++)
        if (publish_to(s, s->ids[i], suffix, m) != 0)
            return -1;
    return 0;
}

/* lock held */
static void send_chunk(struct server *s, const char *node, uint32_t off, uint32_t len)
{
    struct msg m;
    if (s->image == NULL || off >= s->image_len)
        return;
    if (len == 0 || len > s->chunk)
        len = s->chunk;
    if (len > s->image_len - off)
        len = (uint32_t)(s->image_len - off);
    memset(&m, 0, sizeof(m));
    m.type = MSG_OTA_CHUNK;
    memcpy(m.u.chunk.campaign, s->campaign, sizeof(m.u.chunk.campaign));
    m.u.chunk.offset = off;
    m.u.chunk.data = s->image + off;
    m.u.chunk.data_len = len;
    if (publish_to(s, node, "ota/chunk", &m) != 0)
        return;
    s->chunks++;
    s->bytes_sent += len;
    if (s->n_ids > 0)
        return; /* a fleet: no per-node high-water mark */
    if (off < s->sent_hw)
        s->bytes_resent += (off + len <= s->sent_hw) ? len : s->sent_hw - off;
    if (off + len > s->sent_hw)
        s->sent_hw = off + len;
}

static void on_evidence(struct server *s, const struct msg *m)
{
    struct token_claims *c = calloc(1, sizeof(*c));
    enum token_err e;
    char hex[2 * TOKEN_MAX_HASH + 1], seed[2 * 32 + 1] = "";
    if (c == NULL)
        return;
    if (s->have_pub && s->have_nonce)
        e = token_verify(m->u.evidence.token, m->u.evidence.token_len, s->iak_pub, s->nonce,
                         sizeof(s->nonce), c);
    else
        e = token_decode(m->u.evidence.token, m->u.evidence.token_len, c);
    if (e != TOKEN_OK || c->sw_count == 0) {
        say("evidence verified=0 error=%s", e != TOKEN_OK ? token_err_str(e) : "no component");
        free(c);
        return;
    }
    hex_encode(c->sw[0].meas_value, c->sw[0].meas_value_len, hex);
    if (c->boot_seed_len <= 32)
        hex_encode(c->boot_seed, c->boot_seed_len, seed);
    say("evidence verified=%d measurement=%s version=%s boot_seed=%s",
        s->have_pub && s->have_nonce ? 1 : 0, hex, c->sw[0].version, seed);
    free(c);
}

static void on_message(struct mosquitto *mosq, void *obj, const struct mosquitto_message *mm)
{
    struct server *s = obj;
    struct msg m;
    char node[MSG_NODE_ID_MAX + 1];
    const char *suffix, *slash;
    size_t idl;
    (void)mosq;
    if (strncmp(mm->topic, "fleet/", 6) != 0 || (slash = strchr(mm->topic + 6, '/')) == NULL)
        return;
    idl = (size_t)(slash - (mm->topic + 6));
    if (idl == 0 || idl > MSG_NODE_ID_MAX)
        return;
    memcpy(node, mm->topic + 6, idl);
    node[idl] = '\0';
    if (s->n_ids == 0 && strcmp(node, s->node) != 0)
        return;
    suffix = slash + 1;
    if (msg_decode(mm->payload, (size_t)mm->payloadlen, &m) != MSG_OK) {
        say("error undecodable message on %s", mm->topic);
        return;
    }
    pthread_mutex_lock(&s->lock);
    if (strcmp(suffix, "ota/ack") == 0 && m.type == MSG_OTA_ACK) {
        if (s->n_ids == 0)
            say("ack campaign=%s accepted=%d reason=%u", m.u.ack.campaign, m.u.ack.accepted,
                (unsigned)m.u.ack.reason);
        else if (!m.u.ack.accepted)
            say("ack node=%s campaign=%s accepted=0 reason=%u", node, m.u.ack.campaign,
                (unsigned)m.u.ack.reason);
        if (m.u.ack.accepted && strcmp(m.u.ack.campaign, s->campaign) == 0)
            send_chunk(s, node, 0, s->chunk); /* from 0; a resumed node steers us */
    } else if (strcmp(suffix, "ota/request") == 0 && m.type == MSG_OTA_CHUNK_REQ) {
        if (s->n_ids == 0)
            say("request offset=%" PRIu32 " length=%" PRIu32, m.u.chunk_req.offset,
                m.u.chunk_req.length);
        if (strcmp(m.u.chunk_req.campaign, s->campaign) == 0)
            send_chunk(s, node, m.u.chunk_req.offset, m.u.chunk_req.length);
    } else if (strcmp(suffix, "ota/status") == 0 && m.type == MSG_OTA_STATUS) {
        if (s->n_ids == 0)
            say("status campaign=%s state=%s offset=%" PRIu32 " reason=%u", m.u.status.campaign,
                state_name(m.u.status.state), m.u.status.offset, (unsigned)m.u.status.reason);
        else
            say("status node=%s campaign=%s state=%s offset=%" PRIu32 " reason=%u", node,
                m.u.status.campaign, state_name(m.u.status.state), m.u.status.offset,
                (unsigned)m.u.status.reason);
        if (m.u.status.state == MSG_OTA_DOWNLOADING &&
            strcmp(m.u.status.campaign, s->campaign) == 0)
            send_chunk(s, node, m.u.status.offset, s->chunk); /* the node is back: go on */
    } else if (strcmp(suffix, "attest/evidence") == 0 && m.type == MSG_ATTEST_EVIDENCE) {
        on_evidence(s, &m);
    } else if (strcmp(suffix, "status") == 0 && m.type == MSG_NODE_STATUS && s->n_ids > 0) {
        say("node-status node=%s state=%u", node, (unsigned)m.u.node_status.state);
    } else if (strcmp(suffix, "status") == 0 && m.type == MSG_NODE_STATUS) {
        say("node-status state=%u version=%u.%u.%u+%" PRIu32, (unsigned)m.u.node_status.state,
            m.u.node_status.version.major, m.u.node_status.version.minor,
            m.u.node_status.version.revision, m.u.node_status.version.build);
    }
    pthread_mutex_unlock(&s->lock);
}

static void on_connect(struct mosquitto *mosq, void *obj, int rc)
{
    struct server *s = obj;
    static const char *const subs[] = {"ota/ack", "ota/request", "ota/status", "attest/evidence",
                                       "status"};
    char topic[128];
    if (rc != 0) {
        say("error broker refused the connection: %s", mosquitto_connack_string(rc));
        return;
    }
    for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
        snprintf(topic, sizeof(topic), "fleet/%s/%s", s->n_ids > 0 ? "+" : s->node, subs[i]);
        (void)mosquitto_subscribe(mosq, NULL, topic, 1);
    }
}

static void on_subscribe(struct mosquitto *mosq, void *obj, int mid, int n, const int *granted)
{
    static int count;
    (void)mosq;
    (void)obj;
    (void)mid;
    for (int i = 0; i < n; i++)
        if (granted[i] > 1) {
            say("error subscription refused");
            return;
        }
    if (++count == 5)
        say("ready");
}

static int cmd_offer(struct server *s, const char *campaign, const char *path, const char *chunk)
{
    struct image_info info;
    struct msg m;
    uint8_t *data = NULL;
    size_t len = 0;
    char *end;
    unsigned long ck = strtoul(chunk, &end, 10);
    if (*end != '\0' || ck < MSG_CHUNK_MIN || ck > MSG_CHUNK_MAX ||
        msg_campaign_id_valid(campaign, strlen(campaign)) != 0) {
        say("error offer: bad campaign or chunk size");
        return -1;
    }
    if (tool_read_file(path, 16u << 20, &data, &len) != 0) {
        say("error offer: cannot read %s", path);
        return -1;
    }
    /* The gateway would refuse a bad image before offering it; this test server offers what
     * it is given (tampered, foreign, older, too big) so the node's own checks are tested.
     * Digest and version come from the image's header and SHA256 TLV. */
    if (image_parse(data, len, &info) != IMAGE_OK || !info.has_sha256) {
        say("error offer: %s is not an MCUboot image with a hash", path);
        free(data);
        return -1;
    }
    /* the same campaign and image again (a re-offer after a stall): the counters go on */
    int again = strcmp(s->campaign, campaign) == 0 && memcmp(s->digest, info.sha256, 32) == 0;
    free(s->image);
    s->image = data;
    s->image_len = len;
    memcpy(s->digest, info.sha256, sizeof(s->digest));
    snprintf(s->campaign, sizeof(s->campaign), "%s", campaign);
    s->chunk = (uint32_t)ck;
    if (!again) {
        s->sent_hw = 0;
        s->bytes_sent = s->bytes_resent = s->chunks = 0;
    }
    memset(&m, 0, sizeof(m));
    m.type = MSG_OTA_OFFER;
    memcpy(m.u.offer.campaign, s->campaign, sizeof(m.u.offer.campaign));
    memcpy(m.u.offer.digest, s->digest, sizeof(m.u.offer.digest));
    m.u.offer.size = (uint32_t)len;
    m.u.offer.version.major = info.version.major;
    m.u.offer.version.minor = info.version.minor;
    m.u.offer.version.revision = info.version.revision;
    m.u.offer.version.build = info.version.build;
    m.u.offer.chunk_size = s->chunk;
    return publish(s, "ota/offer", &m);
}

static int cmd_challenge(struct server *s)
{
    struct msg m;
    if (getrandom(s->nonce, sizeof(s->nonce), 0) != (ssize_t)sizeof(s->nonce))
        return -1;
    s->have_nonce = 1;
    memset(&m, 0, sizeof(m));
    m.type = MSG_ATTEST_CHALLENGE;
    memcpy(m.u.challenge.nonce, s->nonce, sizeof(s->nonce));
    m.u.challenge.nonce_len = sizeof(s->nonce);
    m.u.challenge.ttl_s = 60;
    return publish(s, "attest/challenge", &m);
}

static int cmd_confirm(struct server *s, const char *campaign)
{
    struct msg m;
    memset(&m, 0, sizeof(m));
    m.type = MSG_OTA_CONFIRM;
    snprintf(m.u.confirm.campaign, sizeof(m.u.confirm.campaign), "%s", campaign);
    memcpy(m.u.confirm.digest, s->digest, sizeof(s->digest));
    return publish(s, "ota/confirm", &m);
}

static int read_pub(const char *path, uint8_t pub[CRYPTO_P256_PUB_LEN])
{
    FILE *f = fopen(path, "re");
    EVP_PKEY *k;
    int rc;
    if (f == NULL)
        return -1;
    k = PEM_read_PUBKEY(f, NULL, NULL, NULL);
    fclose(f);
    rc = k != NULL ? tool_pub_point(k, pub) : -1;
    EVP_PKEY_free(k);
    return rc;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: fleetgw-ota-testserver --socket PATH --username NAME --password-file F\n"
               "           (--node ID [--iak-pub PEM] | --nodes-file FILE)\n"
               "       fleetgw-ota-testserver --help | --version\n");
}

int main(int argc, char **argv)
{
    static struct server s;
    const char *sock = NULL, *user = NULL, *pub = NULL, *pwfile = NULL, *nodes_file = NULL;
    char pw[256] = "";
    char line[1024];
    int rc;

    for (int i = 1; i < argc; i += 2) {
        if (strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(argv[i], "--version") == 0)
            return fleetgw_print_version("fleetgw-ota-testserver");
        if (i + 1 == argc) {
            fprintf(stderr, "fleetgw-ota-testserver: unknown option or missing value: %s\n",
                    argv[i]);
            usage(stderr);
            return 2;
        }
        if (strcmp(argv[i], "--socket") == 0)
            sock = argv[i + 1];
        else if (strcmp(argv[i], "--username") == 0)
            user = argv[i + 1];
        else if (strcmp(argv[i], "--node") == 0)
            snprintf(s.node, sizeof(s.node), "%s", argv[i + 1]);
        else if (strcmp(argv[i], "--nodes-file") == 0)
            nodes_file = argv[i + 1];
        else if (strcmp(argv[i], "--password-file") == 0)
            pwfile = argv[i + 1];
        else if (strcmp(argv[i], "--iak-pub") == 0)
            pub = argv[i + 1];
        else {
            fprintf(stderr, "fleetgw-ota-testserver: unknown option %s\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (nodes_file != NULL) {
        FILE *f = fopen(nodes_file, "re");
        char id[128];
        s.ids = calloc(100000, sizeof(*s.ids));
        if (f == NULL || s.ids == NULL) {
            fprintf(stderr, "fleetgw-ota-testserver: cannot read %s\n", nodes_file);
            return 2;
        }
        while (s.n_ids < 100000 && fgets(id, sizeof(id), f) != NULL) {
            id[strcspn(id, "\r\n")] = '\0';
            if (id[0] == '\0')
                continue;
            if (msg_node_id_valid(id, strlen(id)) != 0) {
                fprintf(stderr, "fleetgw-ota-testserver: %s: bad node id '%s'\n", nodes_file, id);
                fclose(f);
                return 2;
            }
            memcpy(s.ids[s.n_ids++], id, strlen(id) + 1); /* <= 48 characters: checked */
        }
        fclose(f);
        snprintf(s.node, sizeof(s.node), "fleet");
    }
    if (sock == NULL || user == NULL || pwfile == NULL ||
        msg_node_id_valid(s.node, strlen(s.node)) != 0 || (s.n_ids > 0 && pub != NULL)) {
        fprintf(stderr, "fleetgw-ota-testserver: --socket, --username, --password-file and one of "
                        "--node ID (valid), --nodes-file are required\n");
        usage(stderr);
        return 2;
    }
    {
        FILE *f = fopen(pwfile, "re");
        if (f == NULL || fgets(pw, sizeof(pw), f) == NULL) {
            fprintf(stderr, "fleetgw-ota-testserver: cannot read %s\n", pwfile);
            if (f != NULL)
                fclose(f);
            return 2;
        }
        fclose(f);
        pw[strcspn(pw, "\r\n")] = '\0';
    }
    if (pub != NULL) {
        if (read_pub(pub, s.iak_pub) != 0) {
            fprintf(stderr, "fleetgw-ota-testserver: %s: not a P-256 public key\n", pub);
            return 2;
        }
        s.have_pub = 1;
    }
    pthread_mutex_init(&s.lock, NULL);
    mosquitto_lib_init();
    char client_id[96];
    snprintf(client_id, sizeof(client_id), "ota-testserver-%s", s.node); /* one per node */
    s.mosq = mosquitto_new(client_id, true, &s);
    if (s.mosq == NULL || mosquitto_username_pw_set(s.mosq, user, pw) != MOSQ_ERR_SUCCESS)
        return 1;
    mosquitto_connect_callback_set(s.mosq, on_connect);
    mosquitto_subscribe_callback_set(s.mosq, on_subscribe);
    mosquitto_message_callback_set(s.mosq, on_message);
    rc = mosquitto_connect(s.mosq, sock, 0, 30);
    if (rc != MOSQ_ERR_SUCCESS) {
        fprintf(stderr, "fleetgw-ota-testserver: cannot connect to %s: %s\n", sock,
                mosquitto_strerror(rc));
        return 1;
    }
    if (mosquitto_loop_start(s.mosq) != MOSQ_ERR_SUCCESS)
        return 1;
    while (fgets(line, sizeof(line), stdin) != NULL) {
        char a[256] = "", b[512] = "", c[64] = "";
        char camp[64] = "";
        int n = sscanf(line, "%255s %511s", a, b);
        if (n < 1)
            continue;
        pthread_mutex_lock(&s.lock);
        if (strcmp(a, "offer") == 0) {
            if (sscanf(line, "%*s %63s %511s %63s", camp, b, c) == 3)
                (void)cmd_offer(&s, camp, b, c);
            else
                say("error offer: want CAMPAIGN IMAGE CHUNK");
        } else if (strcmp(a, "challenge") == 0) {
            (void)cmd_challenge(&s);
        } else if (strcmp(a, "confirm") == 0 && n >= 2) {
            (void)cmd_confirm(&s, b);
        } else if (strcmp(a, "stats") == 0) {
            say("stats bytes_sent=%" PRIu64 " bytes_resent=%" PRIu64 " chunks=%" PRIu64,
                s.bytes_sent, s.bytes_resent, s.chunks);
        } else if (strcmp(a, "quit") == 0) {
            pthread_mutex_unlock(&s.lock);
            break;
        } else {
            say("error unknown command %s", a);
        }
        pthread_mutex_unlock(&s.lock);
    }
    mosquitto_disconnect(s.mosq);
    mosquitto_loop_stop(s.mosq, false);
    mosquitto_destroy(s.mosq);
    mosquitto_lib_cleanup();
    free(s.image);
    free(s.ids);
    return 0;
}
