/* ota_xfer.c: the hand-over of firmware images to nodes (issue 13), fleetgwd's side of
 * docs/protocol.md 3.3-3.8, driven by the campaign engine (campaign.h).
 *
 * Owns: opening the OTA store and the campaign database at start, the engine's timer, the
 * engine's actions (offer after re-verifying the stored image, confirm, challenge through
 * the gate, status upstream through the spool, release of a completed campaign's image),
 * the node's OTA replies from the edge (ack, chunk request, status) and the chunks: every
 * chunk is read from the store at the offset the node asks for (one chunk per request, so
 * the node paces its own download and memory does not grow with the fleet), and a node that
 * comes back reports its offset and is served from there. Per node it counts the bytes sent
 * and the bytes sent again (below the highest offset already sent), for the status and the
 * benchmarks. */
#define _GNU_SOURCE
#include "daemon.h"
#include "ota.h"
#include "readfile.h"

#include <errno.h>
#include <fcntl.h>
#include <fleetgw/hex.h>
#include <fleetgw/msg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define XFER_BUCKETS 8192u

/* What the transfer knows of a node (in memory; the engine persists the states). */
struct xfer_node {
    struct xfer_node *next;
    char id[MSG_NODE_ID_MAX + 1];
    uint32_t hwm; /* highest end offset sent in this campaign */
    char campaign[MSG_CAMPAIGN_ID_MAX + 1];
    uint64_t bytes_sent, bytes_resent, chunks;
};

struct ota_xfer {
    struct ota_ctx ctx;
    struct daemon *d;
    sd_event_source *timer;
    struct xfer_node *buckets[XFER_BUCKETS];
    uint64_t bytes_sent, bytes_resent, chunks;
    /* the last judgement of a node in an OTA test, until the gate returns */
    bool pending, p_trusted, p_has_measured;
    char p_node[MSG_NODE_ID_MAX + 1];
    uint8_t p_measured[OTA_DIGEST_LEN];
    char p_reason[160];
};

static uint32_t hash_id(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

static struct xfer_node *xnode(struct ota_xfer *x, const char *id, bool create)
{
    uint32_t b = hash_id(id) % XFER_BUCKETS;
    for (struct xfer_node *n = x->buckets[b]; n != NULL; n = n->next)
        if (strcmp(n->id, id) == 0)
            return n;
    if (!create)
        return NULL;
    struct xfer_node *n = calloc(1, sizeof(*n));
    if (n == NULL)
        return NULL;
    snprintf(n->id, sizeof(n->id), "%s", id);
    n->next = x->buckets[b];
    x->buckets[b] = n;
    return n;
}

static int publish_node(struct daemon *d, enum msg_topic t, const char *node, const uint8_t *buf,
                        size_t len)
{
    char topic[MSG_TOPIC_MAX + 1];
    if (msg_topic_build(t, node, strlen(node), NULL, 0, topic, sizeof(topic), NULL) != MSG_OK)
        return -EINVAL;
    int rc = mosquitto_publish(d->edge, NULL, topic, (int)len, buf, 1, false);
    /* NO_CONN: libmosquitto keeps it queued for after the reconnect */
    return rc == MOSQ_ERR_SUCCESS || rc == MOSQ_ERR_NO_CONN ? 0 : -EIO;
}

static void version_of(const struct image_version *v, struct msg_version *m)
{
    m->major = v->major;
    m->minor = v->minor;
    m->revision = v->revision;
    m->build = v->build;
}

/* One chunk of the campaign's image at off (at most len bytes) to node. */
static int send_chunk(struct ota_xfer *x, const char *node, const char *campaign,
                      const uint8_t digest[OTA_DIGEST_LEN], uint32_t off, uint32_t len)
{
    uint8_t data[MSG_CHUNK_MAX];
    uint8_t buf[MSG_CHUNK_MAX + 128];
    size_t blen = 0;
    if (len == 0 || len > MSG_CHUNK_MAX)
        len = x->ctx.chunk_size;
    ssize_t n = ota_store_read(x->ctx.store, digest, off, data, len);
    if (n <= 0) {
        if (n < 0)
            log_campaign(LOG_ERR, campaign, node, "store_error",
                         "cannot read the image at offset %u: %s", (unsigned)off,
                         strerror((int)-n));
        return n < 0 ? (int)n : -ERANGE;
    }
    struct msg m = {.type = MSG_OTA_CHUNK};
    snprintf(m.u.chunk.campaign, sizeof(m.u.chunk.campaign), "%s", campaign);
    m.u.chunk.offset = off;
    m.u.chunk.data = data;
    m.u.chunk.data_len = (size_t)n;
    if (msg_encode(&m, buf, sizeof(buf), &blen) != MSG_OK)
        return -EINVAL;
    int r = publish_node(x->d, MSG_TOPIC_OTA_CHUNK, node, buf, blen);
    if (r < 0)
        return r;
    struct xfer_node *xn = xnode(x, node, true);
    if (xn != NULL) {
        if (strcmp(xn->campaign, campaign) != 0) {
            snprintf(xn->campaign, sizeof(xn->campaign), "%s", campaign);
            xn->hwm = 0;
            xn->bytes_sent = xn->bytes_resent = xn->chunks = 0;
        }
        uint32_t end = off + (uint32_t)n;
        uint64_t again = off < xn->hwm ? (uint64_t)((end < xn->hwm ? end : xn->hwm) - off) : 0;
        xn->bytes_sent += (uint64_t)n;
        xn->bytes_resent += again;
        xn->chunks++;
        if (end > xn->hwm)
            xn->hwm = end;
        x->bytes_resent += again;
    }
    x->bytes_sent += (uint64_t)n;
    x->chunks++;
    return 0;
}

/* Bytes per chunk for an image's nodes: its class's chunk_size, else ota.chunk_size. */
static uint32_t class_chunk(const struct ota_xfer *x, const struct ota_image_meta *meta)
{
    const struct ota_class *c = ota_class_find(&x->ctx.classes, meta->class_name);
    return c != NULL && c->chunk_size > 0 ? c->chunk_size : x->ctx.chunk_size;
}

/* The same for a stored image by digest (a chunk fleetgwd sends unasked: after an ack, or
 * from the offset a status reports). */
static uint32_t image_chunk(const struct ota_xfer *x, const uint8_t digest[OTA_DIGEST_LEN])
{
    struct ota_image_meta meta;
    if (ota_store_get(x->ctx.store, digest, &meta) != 0)
        return x->ctx.chunk_size;
    return class_chunk(x, &meta);
}

static int act_offer(struct ota_xfer *x, const struct campaign_action *a)
{
    char why[256] = "";
    struct ota_check_opts co;
    struct ota_image_meta meta;
    ota_check_opts_of(&x->ctx, NULL, true, &co);
    /* The stored image is checked again before every offer: a file altered in the store
     * after staging is never handed to a node. */
    enum ota_refusal rr = ota_store_verify(x->ctx.store, a->digest, &co, why, sizeof(why));
    if (rr != OTA_OK) {
        log_campaign(LOG_ERR, a->campaign, a->node, ota_refusal_str(rr),
                     "the stored image failed its check before the offer: %s", why);
        return rr == OTA_R_IO ? -EIO : -EBADMSG;
    }
    if (ota_store_get(x->ctx.store, a->digest, &meta) != 0)
        return -EIO;
    struct msg m = {.type = MSG_OTA_OFFER};
    snprintf(m.u.offer.campaign, sizeof(m.u.offer.campaign), "%s", a->campaign);
    memcpy(m.u.offer.digest, a->digest, MSG_DIGEST_LEN);
    m.u.offer.size = meta.size;
    version_of(&meta.version, &m.u.offer.version);
    m.u.offer.chunk_size = class_chunk(x, &meta);
    uint8_t buf[256];
    size_t len = 0;
    if (msg_encode(&m, buf, sizeof(buf), &len) != MSG_OK)
        return -EINVAL;
    int r = publish_node(x->d, MSG_TOPIC_OTA_OFFER, a->node, buf, len);
    if (r == 0)
        log_campaign(LOG_INFO, a->campaign, a->node, "offer", "image %.16s... offered",
                     meta.digest_hex);
    return r;
}

static int act_confirm(struct ota_xfer *x, const struct campaign_action *a)
{
    struct msg m = {.type = MSG_OTA_CONFIRM};
    snprintf(m.u.confirm.campaign, sizeof(m.u.confirm.campaign), "%s", a->campaign);
    memcpy(m.u.confirm.digest, a->digest, MSG_DIGEST_LEN);
    uint8_t buf[128];
    size_t len = 0;
    if (msg_encode(&m, buf, sizeof(buf), &len) != MSG_OK)
        return -EINVAL;
    return publish_node(x->d, MSG_TOPIC_OTA_CONFIRM, a->node, buf, len);
}

static int act_status(struct ota_xfer *x, const struct campaign_action *a)
{
    struct daemon *d = x->d;
    char topic[SPOOL_TOPIC_MAX];
    const char *prefix = d->cfg.uplink.topic_prefix;
    if (msg_cloud_topic_build(MSG_CLOUD_CAMPAIGN_STATUS, prefix, strlen(prefix), a->campaign,
                              strlen(a->campaign), NULL, 0, topic, sizeof(topic), NULL) != MSG_OK)
        return -EINVAL;
    /* the spool keys its rows by a source name: the campaign for its status */
    int r =
        spool_append(d->spool, a->campaign, topic, a->json, strlen(a->json), wall_s(), true, NULL);
    if (r < 0) {
        log_campaign(LOG_ERR, a->campaign, NULL, "spool_error",
                     "cannot queue the campaign status upstream: %s", strerror(-r));
        return r;
    }
    d->commit_wanted = true;
    return 0;
}

static int act_finished(struct ota_xfer *x, const struct campaign_action *a)
{
    struct daemon *d = x->d;
    if (a->state != CAMPAIGN_COMPLETED)
        return 0;
    int r = ota_store_release(x->ctx.store, a->digest);
    if (r < 0) {
        log_campaign(LOG_ERR, a->campaign, NULL, "store_error",
                     "cannot release the campaign's image: %s", strerror(-r));
        return r;
    }
    /* The released image's reference value joins the attestation policy. */
    r = policy_reload(d, &d->cfg);
    if (r < 0)
        log_campaign(LOG_ERR, a->campaign, NULL, "policy_error",
                     "the released image is stored but the policy was not reloaded");
    return 0;
}

static int ota_act(void *u, const struct campaign_action *a)
{
    struct ota_xfer *x = u;
    switch (a->kind) {
    case CAMPAIGN_ACT_OFFER:
        return act_offer(x, a);
    case CAMPAIGN_ACT_CANCEL:
        /* Chunks are served only to nodes the engine has in progress: nothing to undo. */
        log_campaign(LOG_INFO, a->campaign, a->node, "cancelled", "transfer stopped");
        return 0;
    case CAMPAIGN_ACT_CHALLENGE: {
        int r = gate_request_challenge(x->d->gate, a->node, now_us(), wall_s());
        if (r < 0)
            log_campaign(LOG_WARNING, a->campaign, a->node, "challenge_error",
                         "cannot challenge the node in test mode: %s", strerror(-r));
        return r;
    }
    case CAMPAIGN_ACT_CONFIRM:
        return act_confirm(x, a);
    case CAMPAIGN_ACT_STATUS:
        return act_status(x, a);
    case CAMPAIGN_ACT_FINISHED:
        return act_finished(x, a);
    case CAMPAIGN_ACT_NOTE:
        log_campaign(a->priority, a->campaign, a->node, a->token, "%s", a->text);
        return 0;
    }
    return -EINVAL;
}

static void timer_arm(struct ota_xfer *x, int64_t at_s)
{
    if (x->timer == NULL)
        return;
    if (at_s <= 0) {
        (void)sd_event_source_set_enabled(x->timer, SD_EVENT_OFF);
        return;
    }
    int64_t delta = at_s - wall_s();
    uint64_t when = now_us() + (delta > 0 ? (uint64_t)delta * 1000000ULL : 0);
    (void)sd_event_source_set_time(x->timer, when);
    (void)sd_event_source_set_enabled(x->timer, SD_EVENT_ONESHOT);
}

static void run_tick(struct ota_xfer *x)
{
    int64_t next = campaign_tick(x->ctx.engine, wall_s());
    timer_arm(x, next);
}

static int timer_cb(sd_event_source *s, uint64_t usec, void *u)
{
    (void)s;
    (void)usec;
    run_tick(u);
    return 0;
}

static void kick(void *u)
{
    struct ota_xfer *x = u;
    if (x->timer != NULL) {
        (void)sd_event_source_set_time(x->timer, now_us());
        (void)sd_event_source_set_enabled(x->timer, SD_EVENT_ONESHOT);
    }
}

static int load_signers(struct ota_xfer *x, const struct config *cfg, char *err, size_t errlen)
{
    x->ctx.n_signers = 0;
    if (cfg->attestation.signer_keys[0] == '\0')
        return 0;
    size_t len = 0;
    const char *why = NULL;
    int r = 0;
    char *text =
        readfile_at(AT_FDCWD, cfg->attestation.signer_keys, ATTEST_KEYS_MAX_TEXT, &len, &why, &r);
    if (text == NULL) {
        snprintf(err, errlen, "cannot read attestation.signer_keys %.200s: %s",
                 cfg->attestation.signer_keys, why);
        return r < 0 ? r : -EIO;
    }
    r = attest_signer_keys_parse(text, len, x->ctx.signers, IMAGE_MAX_KEYS, &x->ctx.n_signers, err,
                                 errlen);
    free(text);
    return r;
}

int ota_xfer_start(struct daemon *d)
{
    const struct config *cfg = &d->cfg;
    char err[512] = "";
    struct ota_xfer *x = calloc(1, sizeof(*x));
    if (x == NULL)
        return -ENOMEM;
    x->d = d;
    x->ctx.registry = d->registry;
    x->ctx.chunk_size = (uint32_t)cfg->ota.chunk_size;
    x->ctx.kick = kick;
    x->ctx.u = x;
    int r = 0;
    if (cfg->ota.classes_file[0] != '\0')
        r = ota_classes_load(cfg->ota.classes_file, &x->ctx.classes, err, sizeof(err));
    if (r == 0)
        r = load_signers(x, cfg, err, sizeof(err));
    if (r == 0) {
        r = ota_store_open(cfg->ota.store_dir, (uint64_t)cfg->ota.store_quota_bytes, &x->ctx.store);
        if (r < 0)
            snprintf(err, sizeof(err), "cannot open ota.store_dir %.200s: %s", cfg->ota.store_dir,
                     strerror(-r));
    }
    if (r == 0) {
        struct campaign_ops ops = {.act = ota_act, .ctx = x};
        char e2[256] = "";
        r = campaign_open(cfg->ota.state_db, &ops, &x->ctx.engine, e2, sizeof(e2));
        if (r < 0)
            snprintf(err, sizeof(err), "cannot open ota.state_db %.200s: %.200s", cfg->ota.state_db,
                     e2);
    }
    if (r == 0)
        r = sd_event_add_time(d->ev, &x->timer, CLOCK_MONOTONIC, now_us(), TIMER_ACCURACY_US,
                              timer_cb, x);
    if (r < 0) {
        /* OTA is a capability of its own: without it the gateway still relays and attests,
         * and says loudly why updates are unavailable. */
        log_event(LOG_WARNING, NULL, "ota_unavailable", "OTA updates are unavailable: %s",
                  err[0] ? err : strerror(-r));
        if (x->ctx.engine != NULL)
            campaign_close(x->ctx.engine);
        if (x->ctx.store != NULL)
            ota_store_close(x->ctx.store);
        sd_event_source_disable_unref(x->timer);
        free(x);
        d->ota = NULL;
        d->ctl_api.ota = NULL;
        return 0;
    }
    (void)sd_event_source_set_enabled(x->timer, SD_EVENT_ONESHOT); /* resume at once */
    d->ota = x;
    d->ctl_api.ota = &x->ctx;
    log_info("OTA: store %s (%zu device classes, %zu signer keys), campaigns in %s",
             cfg->ota.store_dir, x->ctx.classes.n, x->ctx.n_signers, cfg->ota.state_db);
    return 0;
}

void ota_xfer_stop(struct daemon *d)
{
    struct ota_xfer *x = d->ota;
    if (x == NULL)
        return;
    sd_event_source_disable_unref(x->timer);
    campaign_close(x->ctx.engine);
    ota_store_close(x->ctx.store);
    for (size_t b = 0; b < XFER_BUCKETS; b++)
        for (struct xfer_node *n = x->buckets[b], *next; n != NULL; n = next) {
            next = n->next;
            free(n);
        }
    free(x);
    d->ota = NULL;
    d->ctl_api.ota = NULL;
}

/* A node's OTA reply on fleet/<node>/ota/{ack,request,status}. */
void ota_xfer_on_message(struct daemon *d, enum relay_kind kind, const char *node,
                         const uint8_t *payload, size_t len)
{
    struct ota_xfer *x = d->ota;
    struct msg m;
    char cid[CAMPAIGN_ID_MAX + 1];
    uint8_t digest[OTA_DIGEST_LEN];
    enum campaign_node_state st;
    int64_t now = wall_s();

    if (x == NULL) {
        count_drop(d, node, "ota_unavailable", "an OTA reply: OTA is not available");
        return;
    }
    static const enum msg_type want[] = {
        [RELAY_OTA_ACK] = MSG_OTA_ACK,
        [RELAY_OTA_REQUEST] = MSG_OTA_CHUNK_REQ,
        [RELAY_OTA_STATUS] = MSG_OTA_STATUS,
    };
    if (msg_decode(payload, len, &m) != MSG_OK || m.type != want[kind]) {
        count_drop(d, node, "bad_ota_message", "an OTA reply that does not decode for its topic");
        return;
    }
    bool active = campaign_node_active(x->ctx.engine, node, cid, digest, &st);
    switch (kind) {
    case RELAY_OTA_ACK:
        (void)campaign_on_ack(x->ctx.engine, node, m.u.ack.campaign, m.u.ack.accepted != 0,
                              m.u.ack.reason, now);
        active = campaign_node_active(x->ctx.engine, node, cid, digest, &st);
        /* Accepted: the first chunk, at 0; a node that resumes steers the transfer to its
         * own offset with its request reply (one chunk re-sent, counted). */
        if (m.u.ack.accepted && active && strcmp(cid, m.u.ack.campaign) == 0)
            (void)send_chunk(x, node, cid, digest, 0, image_chunk(x, digest));
        break;
    case RELAY_OTA_REQUEST:
        (void)campaign_on_request(x->ctx.engine, node, m.u.chunk_req.campaign, m.u.chunk_req.offset,
                                  now);
        if (active && strcmp(cid, m.u.chunk_req.campaign) == 0 &&
            (st == CN_OFFERED || st == CN_DOWNLOADING))
            (void)send_chunk(x, node, cid, digest, m.u.chunk_req.offset, m.u.chunk_req.length);
        else
            count_drop(d, node, "ota_not_active",
                       "a chunk request for a transfer that is not in progress");
        break;
    case RELAY_OTA_STATUS:
        (void)campaign_on_status(x->ctx.engine, node, m.u.status.campaign, m.u.status.state,
                                 m.u.status.offset, m.u.status.reason, now);
        active = campaign_node_active(x->ctx.engine, node, cid, digest, &st);
        /* a node that came back mid-download: serve it from where it stands */
        if (m.u.status.state == MSG_OTA_DOWNLOADING && active &&
            strcmp(cid, m.u.status.campaign) == 0 && st == CN_DOWNLOADING)
            (void)send_chunk(x, node, cid, digest, m.u.status.offset, image_chunk(x, digest));
        break;
    default:
        break;
    }
    /* the engine's tick (offers to the next nodes, coalesced status) once per loop pass, not
     * once per node message: with hundreds of nodes downloading, a tick per chunk request
     * scanned every node in progress for each chunk */
    kick(x);
}

/* The gate's verifier asks: does node run (or is about to run) a campaign's image, in test
 * mode or after succeeding with it while the campaign goes on? Then that image, with the
 * signers its class allows, is a reference value for this node's tokens. */
bool ota_xfer_node_image(struct daemon *d, const char *node, uint8_t digest[OTA_DIGEST_LEN],
                         uint8_t signers[OTA_CLASS_SIGNERS][OTA_DIGEST_LEN], size_t *n_signers,
                         char version[65])
{
    struct ota_xfer *x = d->ota;
    struct ota_image_meta meta;
    if (x == NULL || !campaign_node_image(x->ctx.engine, node, digest))
        return false;
    if (ota_store_get(x->ctx.store, digest, &meta) != 0)
        return false;
    const struct ota_class *c = ota_class_find(&x->ctx.classes, meta.class_name);
    if (c == NULL)
        return false;
    memcpy(signers, c->signers, sizeof(c->signers));
    *n_signers = c->n_signers;
    snprintf(version, 65, "%u.%u.%u+%u", (unsigned)meta.version.major, (unsigned)meta.version.minor,
             (unsigned)meta.version.revision, (unsigned)meta.version.build);
    return true;
}

/* The gate judged node's token (called from inside the gate's verifier): kept until the
 * gate has finished with the evidence (ota_xfer_after_gate), since the engine's actions may
 * call into the gate again (a challenge for another node). One evidence is judged per gate
 * call, so one slot is enough. */
void ota_xfer_attested(struct daemon *d, const char *node, bool trusted, const uint8_t *measured,
                       const char *reason)
{
    struct ota_xfer *x = d->ota;
    if (x == NULL)
        return;
    x->pending = true;
    snprintf(x->p_node, sizeof(x->p_node), "%s", node);
    x->p_trusted = trusted;
    x->p_has_measured = measured != NULL;
    if (measured != NULL)
        memcpy(x->p_measured, measured, sizeof(x->p_measured));
    snprintf(x->p_reason, sizeof(x->p_reason), "%s", reason);
}

/* Tells the engine what the gate judged (it confirms, or fails/reverts the node). */
void ota_xfer_after_gate(struct daemon *d)
{
    struct ota_xfer *x = d->ota;
    if (x == NULL || !x->pending)
        return;
    x->pending = false;
    if (campaign_on_attested(x->ctx.engine, x->p_node, x->p_trusted,
                             x->p_has_measured ? x->p_measured : NULL, x->p_reason, wall_s()) == 0)
        kick(x);
}

void ota_xfer_stats(const struct daemon *d, uint64_t *sent, uint64_t *resent, uint64_t *chunks)
{
    const struct ota_xfer *x = d->ota;
    *sent = x ? x->bytes_sent : 0;
    *resent = x ? x->bytes_resent : 0;
    *chunks = x ? x->chunks : 0;
}
