/* Unit tests of the OTA client (ota.h) with an in-memory secondary slot (writes only over
 * erased bytes, like NOR flash), an in-memory progress record and a real MCUboot image
 * signed at test time with an OpenSSL P-256 key: full transfer -> verified -> install
 * requested; interrupted transfer resumed from the persisted offset; tampered chunk ->
 * verification fails, nothing installed; other-campaign chunk ignored; out-of-order chunk
 * steered back; older version and too large image refused; confirm only on ota/confirm. */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "check_crypto.h"

#include <openssl/ec.h>
#include <openssl/evp.h>
#include "fleetgw/image.h"
#include "fleetgw/msg.h"
#include "fleetgw/ota.h"

#define SLOT_SIZE  (32u * 1024u)
#define ERASE_SIZE 4096u
#define CHUNK      512u

struct dev {
    uint8_t slot[SLOT_SIZE];
    unsigned erases, writes, installs, confirms;
    int write_fail_after; /* -1: never */
    struct ota_progress prog;
    int has_prog;
    unsigned stores;
};

static int d_erase(void *ctx, uint32_t off, uint32_t len)
{
    struct dev *d = ctx;
    if (off % ERASE_SIZE != 0 || len % ERASE_SIZE != 0 || off > SLOT_SIZE || len > SLOT_SIZE - off)
        return -1;
    memset(d->slot + off, 0xff, len);
    d->erases++;
    return 0;
}

static int d_write(void *ctx, uint32_t off, const uint8_t *buf, uint32_t len)
{
    struct dev *d = ctx;
    if (off > SLOT_SIZE || len > SLOT_SIZE - off)
        return -1;
    if (d->write_fail_after == 0)
        return -1;
    if (d->write_fail_after > 0)
        d->write_fail_after--;
    for (uint32_t i = 0; i < len; i++)
        if (d->slot[off + i] != 0xff)
            return -1; /* not erased */
    memcpy(d->slot + off, buf, len);
    d->writes++;
    return 0;
}

static const uint8_t *d_map(void *ctx, uint32_t len)
{
    struct dev *d = ctx;
    return len <= SLOT_SIZE ? d->slot : NULL;
}

static int d_load(void *ctx, struct ota_progress *p)
{
    struct dev *d = ctx;
    if (!d->has_prog)
        return 1;
    *p = d->prog;
    return 0;
}

static int d_store(void *ctx, const struct ota_progress *p)
{
    struct dev *d = ctx;
    d->prog = *p;
    d->has_prog = 1;
    d->stores++;
    return 0;
}

static int d_install(void *ctx)
{
    ((struct dev *)ctx)->installs++;
    return 0;
}

static int d_confirm(void *ctx)
{
    ((struct dev *)ctx)->confirms++;
    return 0;
}

static struct ota_port port_of(struct dev *d)
{
    struct ota_port p;
    memset(&p, 0, sizeof(p));
    p.ctx = d;
    p.slot_size = SLOT_SIZE;
    p.erase_size = ERASE_SIZE;
    p.erase = d_erase;
    p.write = d_write;
    p.map = d_map;
    p.progress_load = d_load;
    p.progress_store = d_store;
    p.request_install = d_install;
    p.confirm = d_confirm;
    return p;
}

static void dev_init(struct dev *d)
{
    memset(d, 0, sizeof(*d));
    memset(d->slot, 0x5a, sizeof(d->slot)); /* not erased: the client must erase */
    d->write_fail_after = -1;
}

static const uint8_t cid[16] = {0xc1, 0xa5, 0x50, 0x02, 0, 0, 0x50, 0, 0x80, 0, 0, 0, 0, 0, 0, 2};
static const uint8_t other_cid[16] = {0xc1, 0xa5, 0x50, 0x02, 0, 0, 0x50, 0,
                                      0x80, 0,    0,    0,    0, 0, 0,    3};

static struct image_key trusted;
static EVP_PKEY *signer;

struct img {
    uint8_t b[SLOT_SIZE];
    size_t len;
    uint8_t digest[32];
};

static void make_image(struct img *im, struct image_version v, uint32_t sec_cnt,
                       const uint8_t *class_id)
{
    static uint8_t payload[9000];
    struct image_sign_opts o;
    for (size_t i = 0; i < sizeof(payload); i++)
        payload[i] = (uint8_t)(i * 7u + 3u);
    memset(&o, 0, sizeof(o));
    o.payload = payload;
    o.payload_len = sizeof(payload);
    o.version = v;
    o.hdr_size = 0x100;
    o.pad_header = 1;
    o.align = 4;
    o.has_sec_cnt = 1;
    o.sec_cnt = sec_cnt;
    o.cid = class_id;
    o.sign = check_p256_sign;
    o.sign_ctx = signer;
    CHECK(check_p256_pub(signer, o.pub) == 0);
    CHECK(image_sign(&o, im->b, sizeof(im->b), &im->len, im->digest) == IMAGE_OK);
}

static const struct msg_version RUNNING = {1, 0, 0, 0};

static struct ota_config config(const uint8_t *running_digest)
{
    struct ota_config c;
    memset(&c, 0, sizeof(c));
    c.keys = &trusted;
    c.n_keys = 1;
    c.check_min_counter = 1;
    c.min_counter = 3;
    c.device_class = cid;
    c.running = RUNNING;
    c.running_digest = running_digest;
    return c;
}

/* One gateway -> node message; the reply decoded into *reply (type 0 when none). */
static enum ota_err send(struct ota *o, const char *suffix, const struct msg *m, struct msg *reply,
                         char *topic_out)
{
    static uint8_t buf[4096], out[OTA_REPLY_MAX];
    size_t n = 0, rn = 0;
    const char *topic = NULL;
    enum ota_err e;
    CHECK(msg_encode(m, buf, sizeof(buf), &n) == MSG_OK);
    e = ota_handle(o, suffix, strlen(suffix), buf, n, out, sizeof(out), &rn, &topic);
    memset(reply, 0, sizeof(*reply));
    topic_out[0] = '\0';
    if (e == OTA_OK && rn > 0) {
        CHECK(topic != NULL);
        if (topic != NULL)
            snprintf(topic_out, 32, "%s", topic);
        static uint8_t keep[OTA_REPLY_MAX];
        memcpy(keep, out, rn);
        CHECK(msg_decode(keep, rn, reply) == MSG_OK);
    }
    return e;
}

static void offer_msg(struct msg *m, const char *campaign, const struct img *im,
                      struct msg_version v)
{
    memset(m, 0, sizeof(*m));
    m->type = MSG_OTA_OFFER;
    snprintf(m->u.offer.campaign, sizeof(m->u.offer.campaign), "%s", campaign);
    memcpy(m->u.offer.digest, im->digest, 32);
    m->u.offer.size = (uint32_t)im->len;
    m->u.offer.version = v;
    m->u.offer.chunk_size = CHUNK;
}

static void chunk_msg(struct msg *m, const char *campaign, const uint8_t *data, uint32_t off,
                      uint32_t len)
{
    memset(m, 0, sizeof(*m));
    m->type = MSG_OTA_CHUNK;
    snprintf(m->u.chunk.campaign, sizeof(m->u.chunk.campaign), "%s", campaign);
    m->u.chunk.offset = off;
    m->u.chunk.data = data + off;
    m->u.chunk.data_len = len;
}

/* Serves chunk requests from img until a status arrives or max_chunks were sent; starts
 * with a chunk at `start`. Returns the number of chunks sent; *last is the final reply. */
static unsigned serve(struct ota *o, const char *campaign, const uint8_t *data, size_t size,
                      uint32_t start, unsigned max_chunks, struct msg *last, char *topic)
{
    struct msg m;
    uint32_t off = start, len;
    unsigned sent = 0;
    for (;;) {
        len = (uint32_t)(size - off < CHUNK ? size - off : CHUNK);
        chunk_msg(&m, campaign, data, off, len);
        CHECK(send(o, "chunk", &m, last, topic) == OTA_OK);
        sent++;
        if (last->type != MSG_OTA_CHUNK_REQ || sent >= max_chunks)
            return sent;
        CHECK(strcmp(topic, "ota/request") == 0);
        off = last->u.chunk_req.offset;
        CHECK(last->u.chunk_req.length == (size - off < CHUNK ? size - off : CHUNK));
    }
}

static const struct msg_version V2 = {2, 0, 0, 0};

static void test_full_transfer_and_confirm(void)
{
    static struct dev d;
    static struct img im;
    struct ota o;
    struct ota_port p;
    struct ota_config c = config(NULL);
    struct msg m, r;
    char topic[32];

    dev_init(&d);
    make_image(&im, (struct image_version){2, 0, 0, 0}, 5, cid);
    p = port_of(&d);
    CHECK(ota_init(&o, &p, &c) == OTA_OK);
    CHECK_EQ_INT(ota_state(&o), MSG_OTA_IDLE);

    /* confirm before anything: no effect */
    memset(&m, 0, sizeof(m));
    m.type = MSG_OTA_CONFIRM;
    strcpy(m.u.confirm.campaign, "c1");
    memcpy(m.u.confirm.digest, im.digest, 32);
    CHECK(send(&o, "confirm", &m, &r, topic) == OTA_OK);
    CHECK_EQ_INT(d.confirms, 0);

    offer_msg(&m, "c1", &im, V2);
    CHECK(send(&o, "offer", &m, &r, topic) == OTA_OK);
    CHECK(strcmp(topic, "ota/ack") == 0);
    CHECK_EQ_INT(r.type, MSG_OTA_ACK);
    CHECK_EQ_INT(r.u.ack.accepted, 1);
    CHECK_EQ_INT(ota_state(&o), MSG_OTA_DOWNLOADING);

    unsigned n = serve(&o, "c1", im.b, im.len, 0, 1000, &r, topic);
    CHECK_EQ_INT(n, (im.len + CHUNK - 1) / CHUNK);
    CHECK(strcmp(topic, "ota/status") == 0);
    CHECK_EQ_INT(r.type, MSG_OTA_STATUS);
    CHECK_EQ_INT(r.u.status.state, MSG_OTA_STAGED);
    CHECK_EQ_INT(r.u.status.offset, im.len);
    CHECK_EQ_INT(d.installs, 1);
    CHECK(memcmp(d.slot, im.b, im.len) == 0);
    CHECK_EQ_INT(d.erases, (im.len + ERASE_SIZE - 1) / ERASE_SIZE);

    /* a new offer while staged: busy */
    offer_msg(&m, "c2", &im, (struct msg_version){3, 0, 0, 0});
    CHECK(send(&o, "offer", &m, &r, topic) == OTA_OK);
    CHECK_EQ_INT(r.u.ack.accepted, 0);
    CHECK_EQ_INT(r.u.ack.reason, MSG_REASON_BUSY);

    /* reset into the new image: testing, unconfirmed */
    struct ota o2;
    struct ota_config c2 = config(im.digest);
    c2.running = V2;
    CHECK(ota_init(&o2, &p, &c2) == OTA_OK);
    CHECK_EQ_INT(ota_state(&o2), MSG_OTA_TESTING);
    uint8_t st[OTA_REPLY_MAX];
    size_t stn = 0;
    struct msg sm;
    CHECK(ota_status_encode(&o2, st, sizeof(st), &stn) == OTA_OK);
    CHECK(msg_decode(st, stn, &sm) == MSG_OK);
    CHECK_EQ_INT(sm.u.status.state, MSG_OTA_TESTING);

    /* confirm with the wrong digest or campaign: still testing, no confirm */
    memset(&m, 0, sizeof(m));
    m.type = MSG_OTA_CONFIRM;
    strcpy(m.u.confirm.campaign, "c1");
    memset(m.u.confirm.digest, 0xab, 32);
    CHECK(send(&o2, "confirm", &m, &r, topic) == OTA_OK);
    CHECK_EQ_INT(r.u.status.state, MSG_OTA_TESTING);
    strcpy(m.u.confirm.campaign, "c9");
    memcpy(m.u.confirm.digest, im.digest, 32);
    CHECK(send(&o2, "confirm", &m, &r, topic) == OTA_OK);
    CHECK_EQ_INT(d.confirms, 0);
    /* a confirm message on the offer topic is not a confirm */
    strcpy(m.u.confirm.campaign, "c1");
    CHECK(send(&o2, "offer", &m, &r, topic) == OTA_ERR_MSG);
    CHECK_EQ_INT(d.confirms, 0);
    CHECK(send(&o2, "confirm", &m, &r, topic) == OTA_OK);
    CHECK_EQ_INT(d.confirms, 1);
    CHECK_EQ_INT(r.u.status.state, MSG_OTA_CONFIRMED);
    CHECK_EQ_INT(ota_state(&o2), MSG_OTA_CONFIRMED);

    /* staged but the node came back on the old image: reverted */
    dev_init(&d);
    p = port_of(&d);
    CHECK(ota_init(&o, &p, &c) == OTA_OK);
    offer_msg(&m, "c1", &im, V2);
    CHECK(send(&o, "offer", &m, &r, topic) == OTA_OK);
    (void)serve(&o, "c1", im.b, im.len, 0, 1000, &r, topic);
    CHECK_EQ_INT(r.u.status.state, MSG_OTA_STAGED);
    uint8_t old_digest[32];
    memset(old_digest, 0x11, sizeof(old_digest));
    struct ota_config c3 = config(old_digest);
    CHECK(ota_init(&o2, &p, &c3) == OTA_OK);
    CHECK_EQ_INT(ota_state(&o2), MSG_OTA_REVERTED);
}

static void test_resume(void)
{
    static struct dev d;
    static struct img im;
    struct ota o;
    struct ota_port p;
    struct ota_config c = config(NULL);
    struct msg m, r;
    char topic[32];

    dev_init(&d);
    make_image(&im, (struct image_version){2, 0, 0, 0}, 5, cid);
    p = port_of(&d);
    CHECK(ota_init(&o, &p, &c) == OTA_OK);
    offer_msg(&m, "c1", &im, V2);
    CHECK(send(&o, "offer", &m, &r, topic) == OTA_OK);
    /* 11 chunks (5632 bytes: into the second erase unit), then the node "restarts" */
    unsigned n = serve(&o, "c1", im.b, im.len, 0, 11, &r, topic);
    CHECK_EQ_INT(n, 11);
    CHECK_EQ_INT(d.prog.offset, 11 * CHUNK);
    /* a power cut right after a write, before the progress store: the record lags a chunk
     * behind bytes already in flash; the restart must erase that sector again */
    d.prog.offset = 10 * CHUNK;

    struct ota o2;
    CHECK(ota_init(&o2, &p, &c) == OTA_OK);
    CHECK_EQ_INT(ota_state(&o2), MSG_OTA_DOWNLOADING);
    /* the gateway re-offers and restarts at 0: the node steers it to its offset */
    CHECK(send(&o2, "offer", &m, &r, topic) == OTA_OK);
    CHECK_EQ_INT(r.u.ack.accepted, 1);
    chunk_msg(&m, "c1", im.b, 0, CHUNK);
    unsigned writes_before = d.writes;
    CHECK(send(&o2, "chunk", &m, &r, topic) == OTA_OK);
    CHECK_EQ_INT(d.writes, writes_before); /* out of order: nothing written */
    CHECK_EQ_INT(r.type, MSG_OTA_CHUNK_REQ);
    CHECK_EQ_INT(r.u.chunk_req.offset, ERASE_SIZE); /* 5120 rounded down to 4096 */
    n = serve(&o2, "c1", im.b, im.len, r.u.chunk_req.offset, 1000, &r, topic);
    CHECK_EQ_INT(n, (im.len - ERASE_SIZE + CHUNK - 1) / CHUNK);
    CHECK_EQ_INT(r.u.status.state, MSG_OTA_STAGED);
    CHECK_EQ_INT(d.installs, 1);
    CHECK(memcmp(d.slot, im.b, im.len) == 0);
}

static void test_tampered_and_foreign(void)
{
    static struct dev d;
    static struct img im, bad;
    struct ota o;
    struct ota_port p;
    struct ota_config c = config(NULL);
    struct msg m, r;
    char topic[32];

    dev_init(&d);
    make_image(&im, (struct image_version){2, 0, 0, 0}, 5, cid);
    bad = im;
    bad.b[0x100 + 3000] ^= 0x01; /* one body bit */
    p = port_of(&d);
    CHECK(ota_init(&o, &p, &c) == OTA_OK);
    offer_msg(&m, "c1", &im, V2);
    CHECK(send(&o, "offer", &m, &r, topic) == OTA_OK);

    /* a chunk of another campaign: ignored, no reply, nothing written */
    chunk_msg(&m, "other", im.b, 0, CHUNK);
    CHECK(send(&o, "chunk", &m, &r, topic) == OTA_OK);
    CHECK_EQ_INT(r.type, 0);
    CHECK_EQ_INT(d.writes, 0);
    /* oversize chunk (more than the offered chunk size) and past the end: steered back */
    chunk_msg(&m, "c1", im.b, 0, CHUNK + 1);
    CHECK(send(&o, "chunk", &m, &r, topic) == OTA_OK);
    CHECK_EQ_INT(r.type, MSG_OTA_CHUNK_REQ);
    CHECK_EQ_INT(r.u.chunk_req.offset, 0);
    CHECK_EQ_INT(d.writes, 0);
    /* garbage payload */
    uint8_t junk[3] = {0x83, 0x06, 0x00};
    uint8_t out[OTA_REPLY_MAX];
    size_t on = 99;
    const char *t = NULL;
    CHECK(ota_handle(&o, "chunk", 5, junk, sizeof(junk), out, sizeof(out), &on, &t) == OTA_ERR_MSG);
    CHECK_EQ_INT(on, 0);
    CHECK(ota_handle(&o, "status", 6, junk, sizeof(junk), out, sizeof(out), &on, &t) ==
          OTA_ERR_MSG);

    (void)serve(&o, "c1", bad.b, bad.len, 0, 1000, &r, topic);
    CHECK_EQ_INT(r.type, MSG_OTA_STATUS);
    CHECK_EQ_INT(r.u.status.state, MSG_OTA_FAILED);
    CHECK_EQ_INT(r.u.status.reason, MSG_REASON_BAD_DIGEST);
    CHECK_EQ_INT(d.installs, 0);

    /* properly signed image for another device class: failed, not installed */
    static struct img wrongclass;
    make_image(&wrongclass, (struct image_version){2, 0, 0, 0}, 5, other_cid);
    offer_msg(&m, "c2", &wrongclass, V2);
    CHECK(send(&o, "offer", &m, &r, topic) == OTA_OK);
    CHECK_EQ_INT(r.u.ack.accepted, 1);
    (void)serve(&o, "c2", wrongclass.b, wrongclass.len, 0, 1000, &r, topic);
    CHECK_EQ_INT(r.u.status.state, MSG_OTA_FAILED);
    CHECK_EQ_INT(r.u.status.reason, MSG_REASON_BAD_SIGNATURE);
    CHECK_EQ_INT(d.installs, 0);

    /* security counter below the minimum: refused as a downgrade */
    static struct img lowcnt;
    make_image(&lowcnt, (struct image_version){2, 0, 0, 0}, 2, cid);
    offer_msg(&m, "c3", &lowcnt, V2);
    CHECK(send(&o, "offer", &m, &r, topic) == OTA_OK);
    (void)serve(&o, "c3", lowcnt.b, lowcnt.len, 0, 1000, &r, topic);
    CHECK_EQ_INT(r.u.status.reason, MSG_REASON_DOWNGRADE);

    /* the offer claims 2.0.0 but the signed image says 1.0.0: refused after verification */
    static struct img old;
    make_image(&old, (struct image_version){1, 0, 0, 0}, 5, cid);
    offer_msg(&m, "c4", &old, V2);
    CHECK(send(&o, "offer", &m, &r, topic) == OTA_OK);
    (void)serve(&o, "c4", old.b, old.len, 0, 1000, &r, topic);
    CHECK_EQ_INT(r.u.status.state, MSG_OTA_FAILED);
    CHECK_EQ_INT(r.u.status.reason, MSG_REASON_DOWNGRADE);

    /* offer digest not the image's: failed */
    offer_msg(&m, "c5", &im, V2);
    m.u.offer.digest[0] ^= 1;
    CHECK(send(&o, "offer", &m, &r, topic) == OTA_OK);
    (void)serve(&o, "c5", im.b, im.len, 0, 1000, &r, topic);
    CHECK_EQ_INT(r.u.status.reason, MSG_REASON_BAD_DIGEST);
    CHECK_EQ_INT(d.installs, 0);

    /* flash write failure: failed with FLASH_ERROR */
    offer_msg(&m, "c6", &im, V2);
    CHECK(send(&o, "offer", &m, &r, topic) == OTA_OK);
    d.write_fail_after = 2;
    (void)serve(&o, "c6", im.b, im.len, 0, 1000, &r, topic);
    CHECK_EQ_INT(r.u.status.state, MSG_OTA_FAILED);
    CHECK_EQ_INT(r.u.status.reason, MSG_REASON_FLASH_ERROR);
    CHECK_EQ_INT(d.installs, 0);
}

static void test_offer_refusals(void)
{
    static struct dev d;
    static struct img im;
    struct ota o;
    struct ota_port p;
    struct ota_config c = config(NULL);
    struct msg m, r;
    char topic[32];

    dev_init(&d);
    make_image(&im, (struct image_version){2, 0, 0, 0}, 5, cid);
    p = port_of(&d);
    CHECK(ota_init(&o, &p, &c) == OTA_OK);
    offer_msg(&m, "c1", &im, (struct msg_version){0, 9, 0, 0});
    CHECK(send(&o, "offer", &m, &r, topic) == OTA_OK);
    CHECK_EQ_INT(r.u.ack.accepted, 0);
    CHECK_EQ_INT(r.u.ack.reason, MSG_REASON_DOWNGRADE);
    offer_msg(&m, "c1", &im, RUNNING); /* same version */
    CHECK(send(&o, "offer", &m, &r, topic) == OTA_OK);
    CHECK_EQ_INT(r.u.ack.reason, MSG_REASON_DOWNGRADE);
    offer_msg(&m, "c1", &im, V2);
    m.u.offer.size = SLOT_SIZE + 1u;
    CHECK(send(&o, "offer", &m, &r, topic) == OTA_OK);
    CHECK_EQ_INT(r.u.ack.reason, MSG_REASON_NO_SPACE);
    CHECK_EQ_INT(ota_state(&o), MSG_OTA_IDLE);
    CHECK_EQ_INT(d.writes + d.erases, 0);
    /* chunk without an accepted offer: ignored */
    chunk_msg(&m, "c1", im.b, 0, CHUNK);
    CHECK(send(&o, "chunk", &m, &r, topic) == OTA_OK);
    CHECK_EQ_INT(r.type, 0);
    /* garbage progress record: starts idle */
    d.has_prog = 1;
    memset(&d.prog, 0x77, sizeof(d.prog));
    CHECK(ota_init(&o, &p, &c) == OTA_OK);
    CHECK_EQ_INT(ota_state(&o), MSG_OTA_IDLE);
    /* the agent seam (agent_app.on_ota) */
    {
        uint8_t pl[256], rep[OTA_REPLY_MAX];
        size_t pn = 0, rn = 0;
        const char *rt = NULL;
        struct msg am;
        offer_msg(&m, "c7", &im, V2);
        CHECK(msg_encode(&m, pl, sizeof(pl), &pn) == MSG_OK);
        CHECK(ota_agent_on_ota(&o, "offer", 5, pl, pn, rep, sizeof(rep), &rn, &rt) == AGENT_OK);
        CHECK(rt != NULL && strcmp(rt, "ota/ack") == 0);
        CHECK(msg_decode(rep, rn, &am) == MSG_OK && am.type == MSG_OTA_ACK &&
              am.u.ack.accepted == 1);
        CHECK(ota_agent_on_ota(&o, "offer", 5, pl, pn, rep, 4, &rn, &rt) == AGENT_ERR_NOSPACE);
        CHECK_EQ_INT(rn, 0);
        CHECK(ota_agent_on_ota(&o, "chunk", 5, pl, pn, rep, sizeof(rep), &rn, &rt) ==
              AGENT_ERR_PARAM);
    }
    /* bad configuration */
    struct ota_port bp = p;
    bp.erase_size = 3000;
    CHECK(ota_init(&o, &bp, &c) == OTA_ERR_ARG);
    struct ota_config bc = c;
    bc.n_keys = 0;
    CHECK(ota_init(&o, &p, &bc) == OTA_ERR_ARG);
    for (int e = 0; e <= OTA_ERR__COUNT; e++)
        CHECK(ota_err_str((enum ota_err)e) != NULL);
}

/* Review finding: the progress record is lost (or stale) while the node runs a new image in
 * test mode. The secondary slot then holds the revert image: no offer may be accepted and
 * nothing may be erased or written until the running image is confirmed. */
static void test_test_mode_keeps_revert_image(void)
{
    static struct dev d;
    static struct img im, im3;
    struct ota o;
    struct ota_port p;
    struct msg m, r;
    char topic[32];
    uint8_t revert_image[SLOT_SIZE];

    dev_init(&d);
    make_image(&im, (struct image_version){2, 0, 0, 0}, 5, cid);
    make_image(&im3, (struct image_version){3, 0, 0, 0}, 5, cid);
    memset(d.slot, 0x5a, 8192); /* stands for the previous image (the revert target) */
    memcpy(revert_image, d.slot, sizeof(revert_image));
    p = port_of(&d);
    struct ota_config c = config(im.digest);
    c.running = V2;
    c.running_test_mode = 1;

    /* 1. no record at all (lost during test mode) */
    CHECK(ota_init(&o, &p, &c) == OTA_OK);
    CHECK_EQ_INT(ota_state(&o), MSG_OTA_IDLE);
    offer_msg(&m, "c3", &im3, (struct msg_version){3, 0, 0, 0});
    CHECK(send(&o, "offer", &m, &r, topic) == OTA_OK);
    CHECK_EQ_INT(r.type, MSG_OTA_ACK);
    CHECK_EQ_INT(r.u.ack.accepted, 0);
    CHECK_EQ_INT(r.u.ack.reason, MSG_REASON_BUSY);
    chunk_msg(&m, "c3", im3.b, 0, CHUNK);
    CHECK(send(&o, "chunk", &m, &r, topic) == OTA_OK);
    CHECK_EQ_INT(d.erases, 0);
    CHECK_EQ_INT(d.writes, 0);

    /* 2. a stale DOWNLOADING record of the same offer: not even a resume */
    memset(&d.prog, 0, sizeof(d.prog));
    d.prog.magic = OTA_PROGRESS_MAGIC;
    d.prog.state = MSG_OTA_DOWNLOADING;
    strcpy(d.prog.campaign, "c3");
    memcpy(d.prog.digest, im3.digest, 32);
    d.prog.size = (uint32_t)im3.len;
    d.prog.chunk_size = CHUNK;
    d.prog.version = (struct msg_version){3, 0, 0, 0};
    d.prog.offset = 0;
    d.has_prog = 1;
    CHECK(ota_init(&o, &p, &c) == OTA_OK);
    CHECK_EQ_INT(ota_state(&o), MSG_OTA_FAILED); /* the stale download cannot go on */
    CHECK_EQ_INT(o.prog.reason, MSG_REASON_BUSY);
    chunk_msg(&m, "c3", im3.b, 0, CHUNK); /* a chunk of it, no offer: not written */
    CHECK(send(&o, "chunk", &m, &r, topic) == OTA_OK);
    offer_msg(&m, "c3", &im3, (struct msg_version){3, 0, 0, 0});
    CHECK(send(&o, "offer", &m, &r, topic) == OTA_OK);
    CHECK_EQ_INT(r.u.ack.accepted, 0);
    CHECK_EQ_INT(r.u.ack.reason, MSG_REASON_BUSY);
    CHECK_EQ_INT(d.erases, 0);
    CHECK_EQ_INT(d.writes, 0);
    CHECK(memcmp(d.slot, revert_image, sizeof(revert_image)) == 0);

    /* 3. a proper TESTING record: confirm frees the slot, then an offer is accepted */
    memset(&d.prog, 0, sizeof(d.prog));
    d.prog.magic = OTA_PROGRESS_MAGIC;
    d.prog.state = MSG_OTA_STAGED;
    strcpy(d.prog.campaign, "c2");
    memcpy(d.prog.digest, im.digest, 32);
    d.prog.size = (uint32_t)im.len;
    d.prog.offset = (uint32_t)im.len;
    d.prog.chunk_size = CHUNK;
    d.prog.version = V2;
    CHECK(ota_init(&o, &p, &c) == OTA_OK);
    CHECK_EQ_INT(ota_state(&o), MSG_OTA_TESTING);
    memset(&m, 0, sizeof(m));
    m.type = MSG_OTA_CONFIRM;
    strcpy(m.u.confirm.campaign, "c2");
    memcpy(m.u.confirm.digest, im.digest, 32);
    CHECK(send(&o, "confirm", &m, &r, topic) == OTA_OK);
    CHECK_EQ_INT(r.u.status.state, MSG_OTA_CONFIRMED);
    offer_msg(&m, "c3", &im3, (struct msg_version){3, 0, 0, 0});
    CHECK(send(&o, "offer", &m, &r, topic) == OTA_OK);
    CHECK_EQ_INT(r.u.ack.accepted, 1);
}

int main(void)
{
    signer = EVP_EC_gen("P-256");
    if (signer == NULL || check_p256_pub(signer, trusted.pub) != 0) {
        fprintf(stderr, "cannot make a P-256 test key with OpenSSL\n");
        return 1;
    }
    test_full_transfer_and_confirm();
    test_resume();
    test_tampered_and_foreign();
    test_offer_refusals();
    test_test_mode_keeps_revert_image();
    EVP_PKEY_free(signer);
    return check_finish();
}
