/* The node's OTA client (see fleetgw/ota.h). */
#include "fleetgw/ota.h"

#include <string.h>

#include "fleetgw/crypto.h"

const char *ota_err_str(enum ota_err e)
{
    switch (e) {
    case OTA_OK:
        return "ok";
    case OTA_ERR_ARG:
        return "bad argument";
    case OTA_ERR_NOSPACE:
        return "reply buffer too small";
    case OTA_ERR_MSG:
        return "bad message";
    case OTA_ERR_PORT:
        return "port failure";
    case OTA_ERR__COUNT:
        break;
    }
    return "unknown";
}

enum msg_ota_state ota_state(const struct ota *o)
{
    return (enum msg_ota_state)o->prog.state;
}

/* -1, 0, 1 as a is older, equal, newer than b (build number included, as MCUboot does with
 * MCUBOOT_VERSION_CMP_USE_BUILD_NUMBER). */
static int version_cmp(const struct msg_version *a, const struct msg_version *b)
{
    uint64_t x = ((uint64_t)a->major << 56) | ((uint64_t)a->minor << 48) |
                 ((uint64_t)a->revision << 32) | a->build;
    uint64_t y = ((uint64_t)b->major << 56) | ((uint64_t)b->minor << 48) |
                 ((uint64_t)b->revision << 32) | b->build;
    return x < y ? -1 : (x > y ? 1 : 0);
}

static void prog_reset(struct ota *o)
{
    memset(&o->prog, 0, sizeof(o->prog));
    o->prog.magic = OTA_PROGRESS_MAGIC;
    o->prog.state = MSG_OTA_IDLE;
    o->erased_upto = 0;
}

static int prog_valid(const struct ota *o, const struct ota_progress *p)
{
    if (p->magic != OTA_PROGRESS_MAGIC || p->state > MSG_OTA_STATE_MAX ||
        p->reason > MSG_REASON_MAX)
        return 0;
    if (p->state == MSG_OTA_IDLE)
        return 1;
    if (memchr(p->campaign, 0, sizeof(p->campaign)) == NULL ||
        msg_campaign_id_valid(p->campaign, strlen(p->campaign)) != 0)
        return 0;
    if (p->size == 0 || p->size > o->port.slot_size || p->offset > p->size ||
        p->chunk_size < MSG_CHUNK_MIN || p->chunk_size > MSG_CHUNK_MAX)
        return 0;
    return 1;
}

static enum ota_err prog_store(struct ota *o)
{
    return o->port.progress_store(o->port.ctx, &o->prog) == 0 ? OTA_OK : OTA_ERR_PORT;
}

enum ota_err ota_init(struct ota *o, const struct ota_port *port, const struct ota_config *cfg)
{
    enum ota_err err = OTA_ERR_ARG;
    struct ota_progress p;
    int r;

    if (o == NULL || port == NULL || cfg == NULL)
        goto out;
    memset(o, 0, sizeof(*o));
    if (port->erase == NULL || port->write == NULL || port->map == NULL ||
        port->progress_load == NULL || port->progress_store == NULL ||
        port->request_install == NULL || port->confirm == NULL || port->slot_size == 0 ||
        port->erase_size == 0 || (port->erase_size & (port->erase_size - 1u)) != 0 ||
        port->slot_size % port->erase_size != 0 || cfg->keys == NULL || cfg->n_keys == 0 ||
        cfg->n_keys > IMAGE_MAX_KEYS)
        goto out;
    o->port = *port;
    o->cfg = *cfg;
    prog_reset(o);
    memset(&p, 0, sizeof(p));
    r = port->progress_load(port->ctx, &p);
    if (r < 0) {
        err = OTA_ERR_PORT;
        goto out;
    }
    err = OTA_OK;
    if (r != 0 || !prog_valid(o, &p))
        goto out; /* none or garbage: start idle */
    o->prog = p;
    if ((p.state == MSG_OTA_DOWNLOADING || p.state == MSG_OTA_VERIFYING) &&
        cfg->running_test_mode) {
        /* A stale download while the slot holds the revert image: it cannot go on. */
        o->prog.state = MSG_OTA_FAILED;
        o->prog.reason = MSG_REASON_BUSY;
        err = prog_store(o);
    } else if (p.state == MSG_OTA_DOWNLOADING || p.state == MSG_OTA_VERIFYING) {
        /* The sector holding the offset may be half written: erase it again. */
        o->prog.state = MSG_OTA_DOWNLOADING;
        o->prog.offset = p.offset & ~(port->erase_size - 1u);
        o->erased_upto = o->prog.offset;
    } else if (p.state == MSG_OTA_STAGED) {
        if (cfg->running_digest != NULL &&
            crypto_memcmp_ct(cfg->running_digest, p.digest, MSG_DIGEST_LEN) == 0) {
            o->prog.state = MSG_OTA_TESTING;
            o->prog.reason = MSG_REASON_NONE;
        } else {
            o->prog.state = MSG_OTA_REVERTED;
            o->prog.reason = MSG_REASON_BOOT_FAILED;
        }
        err = prog_store(o);
    } else if (p.state == MSG_OTA_TESTING) {
        /* Reset again while testing: the bootloader reverted unless the image was kept. */
        if (cfg->running_digest == NULL ||
            crypto_memcmp_ct(cfg->running_digest, p.digest, MSG_DIGEST_LEN) != 0) {
            o->prog.state = MSG_OTA_REVERTED;
            o->prog.reason = MSG_REASON_BOOT_FAILED;
            err = prog_store(o);
        }
    }
out:
    return err;
}

static enum ota_err put(const struct msg *m, uint8_t *out, size_t cap, size_t *out_len)
{
    enum msg_err e = msg_encode(m, out, cap, out_len);
    if (e == MSG_OK)
        return OTA_OK;
    *out_len = 0;
    return e == MSG_ERR_NOSPACE ? OTA_ERR_NOSPACE : OTA_ERR_ARG;
}

static enum ota_err reply_ack(const char *campaign, enum msg_ota_reason reason, uint8_t *out,
                              size_t cap, size_t *out_len, const char **topic)
{
    struct msg m;
    memset(&m, 0, sizeof(m));
    m.type = MSG_OTA_ACK;
    memcpy(m.u.ack.campaign, campaign, sizeof(m.u.ack.campaign));
    m.u.ack.accepted = reason == MSG_REASON_NONE;
    m.u.ack.reason = reason;
    *topic = "ota/ack";
    return put(&m, out, cap, out_len);
}

static enum ota_err reply_request(const struct ota *o, uint8_t *out, size_t cap, size_t *out_len,
                                  const char **topic)
{
    struct msg m;
    uint32_t left = o->prog.size - o->prog.offset;
    memset(&m, 0, sizeof(m));
    m.type = MSG_OTA_CHUNK_REQ;
    memcpy(m.u.chunk_req.campaign, o->prog.campaign, sizeof(m.u.chunk_req.campaign));
    m.u.chunk_req.offset = o->prog.offset;
    m.u.chunk_req.length = left < o->prog.chunk_size ? left : o->prog.chunk_size;
    *topic = "ota/request";
    return put(&m, out, cap, out_len);
}

enum ota_err ota_status_encode(const struct ota *o, uint8_t *out, size_t cap, size_t *out_len)
{
    struct msg m;
    if (o == NULL || out == NULL || out_len == NULL)
        return OTA_ERR_ARG;
    *out_len = 0;
    memset(&m, 0, sizeof(m));
    m.type = MSG_OTA_STATUS;
    /* Idle has no campaign; the schema wants a valid id, so an idle node says "-". */
    if (o->prog.campaign[0] != '\0')
        memcpy(m.u.status.campaign, o->prog.campaign, sizeof(m.u.status.campaign));
    else
        m.u.status.campaign[0] = '-';
    m.u.status.state = (enum msg_ota_state)o->prog.state;
    m.u.status.offset = o->prog.offset;
    m.u.status.reason = (o->prog.state == MSG_OTA_FAILED || o->prog.state == MSG_OTA_REVERTED)
                            ? (enum msg_ota_reason)o->prog.reason
                            : MSG_REASON_NONE;
    if ((m.u.status.state == MSG_OTA_FAILED || m.u.status.state == MSG_OTA_REVERTED) &&
        m.u.status.reason == MSG_REASON_NONE)
        m.u.status.reason = MSG_REASON_ABORTED;
    return put(&m, out, cap, out_len);
}

static enum ota_err reply_status(const struct ota *o, uint8_t *out, size_t cap, size_t *out_len,
                                 const char **topic)
{
    *topic = "ota/status";
    return ota_status_encode(o, out, cap, out_len);
}

static enum ota_err fail(struct ota *o, enum msg_ota_reason reason, uint8_t *out, size_t cap,
                         size_t *out_len, const char **topic)
{
    enum ota_err err;
    o->prog.state = MSG_OTA_FAILED;
    o->prog.reason = reason;
    err = prog_store(o);
    if (err == OTA_OK)
        err = reply_status(o, out, cap, out_len, topic);
    return err;
}

static enum ota_err on_offer(struct ota *o, const struct msg_ota_offer *of, uint8_t *out,
                             size_t cap, size_t *out_len, const char **topic)
{
    enum msg_ota_reason reason = MSG_REASON_NONE;
    enum ota_err err;
    uint32_t st = o->prog.state;

    /* Running in test mode: the secondary slot holds the revert image. Checked first, so
     * that not even a stale DOWNLOADING record resumes into it. */
    if (o->cfg.running_test_mode)
        return reply_ack(of->campaign, MSG_REASON_BUSY, out, cap, out_len, topic);
    /* The same offer again while downloading: resume (the next chunk is steered by the
     * request replies). */
    if (st == MSG_OTA_DOWNLOADING && strcmp(of->campaign, o->prog.campaign) == 0 &&
        crypto_memcmp_ct(of->digest, o->prog.digest, MSG_DIGEST_LEN) == 0 &&
        of->size == o->prog.size && version_cmp(&of->version, &o->prog.version) == 0) {
        o->prog.chunk_size = of->chunk_size; /* 64..2048, checked by msg_decode() */
        err = prog_store(o);
        if (err == OTA_OK)
            err = reply_ack(of->campaign, MSG_REASON_NONE, out, cap, out_len, topic);
        return err;
    }
    if (st == MSG_OTA_STAGED || st == MSG_OTA_TESTING || st == MSG_OTA_VERIFYING)
        reason = MSG_REASON_BUSY;
    else if (version_cmp(&of->version, &o->cfg.running) <= 0)
        reason = MSG_REASON_DOWNGRADE;
    else if (of->size > o->port.slot_size || of->size < IMAGE_HEADER_LEN)
        reason = MSG_REASON_NO_SPACE;
    if (reason != MSG_REASON_NONE)
        return reply_ack(of->campaign, reason, out, cap, out_len, topic);
    /* Accepted (a new offer supersedes an unfinished download). */
    prog_reset(o);
    o->prog.state = MSG_OTA_DOWNLOADING;
    memcpy(o->prog.campaign, of->campaign, sizeof(o->prog.campaign));
    memcpy(o->prog.digest, of->digest, MSG_DIGEST_LEN);
    o->prog.size = of->size;
    o->prog.chunk_size = of->chunk_size;
    o->prog.version = of->version;
    o->prog.offset = 0;
    err = prog_store(o);
    if (err == OTA_OK)
        err = reply_ack(of->campaign, MSG_REASON_NONE, out, cap, out_len, topic);
    return err;
}

static enum ota_err finish(struct ota *o, uint8_t *out, size_t cap, size_t *out_len,
                           const char **topic)
{
    struct image_verify_opts vo;
    struct image_result res;
    const uint8_t *img;
    enum image_status ist;
    enum ota_err err;
    struct msg_version v;

    o->prog.state = MSG_OTA_VERIFYING;
    err = prog_store(o);
    if (err != OTA_OK)
        return err;
    img = o->port.map(o->port.ctx, o->prog.size);
    if (img == NULL)
        return fail(o, MSG_REASON_FLASH_ERROR, out, cap, out_len, topic);
    memset(&vo, 0, sizeof(vo));
    vo.keys = o->cfg.keys;
    vo.n_keys = o->cfg.n_keys;
    vo.check_min_counter = o->cfg.check_min_counter;
    vo.min_counter = o->cfg.min_counter;
    vo.expect_cid = o->cfg.device_class;
    ist = image_verify(img, o->prog.size, &vo, &res);
    if (ist != IMAGE_OK) {
        enum msg_ota_reason r = MSG_REASON_BAD_SIGNATURE;
        if (ist == IMAGE_ERR_HASH_MISMATCH)
            r = MSG_REASON_BAD_DIGEST;
        else if (ist == IMAGE_ERR_COUNTER_LOW || ist == IMAGE_ERR_COUNTER_MISSING)
            r = MSG_REASON_DOWNGRADE;
        return fail(o, r, out, cap, out_len, topic);
    }
    if (crypto_memcmp_ct(res.digest, o->prog.digest, MSG_DIGEST_LEN) != 0)
        return fail(o, MSG_REASON_BAD_DIGEST, out, cap, out_len, topic);
    v.major = res.info.version.major;
    v.minor = res.info.version.minor;
    v.revision = res.info.version.revision;
    v.build = res.info.version.build;
    if (version_cmp(&v, &o->prog.version) != 0 || version_cmp(&v, &o->cfg.running) <= 0)
        return fail(o, MSG_REASON_DOWNGRADE, out, cap, out_len, topic);
    if (o->port.request_install(o->port.ctx) != 0)
        return fail(o, MSG_REASON_FLASH_ERROR, out, cap, out_len, topic);
    o->prog.state = MSG_OTA_STAGED;
    o->prog.reason = MSG_REASON_NONE;
    err = prog_store(o);
    if (err == OTA_OK)
        err = reply_status(o, out, cap, out_len, topic);
    return err;
}

static enum ota_err on_chunk(struct ota *o, const struct msg_ota_chunk *c, uint8_t *out, size_t cap,
                             size_t *out_len, const char **topic)
{
    uint32_t off = o->prog.offset, n, end;
    enum ota_err err;

    if (o->prog.state != MSG_OTA_DOWNLOADING || strcmp(c->campaign, o->prog.campaign) != 0 ||
        o->cfg.running_test_mode) {
        o->stats_ignored++; /* not ours (or the slot holds the revert image): no reply */
        return OTA_OK;
    }
    if (c->offset != off || c->data_len == 0 || c->data_len > o->prog.chunk_size ||
        c->data_len > o->prog.size - off)
        return reply_request(o, out, cap, out_len, topic); /* steer back, nothing written */
    n = (uint32_t)c->data_len;
    end = off + n;
    while (o->erased_upto < end) {
        if (o->port.erase(o->port.ctx, o->erased_upto, o->port.erase_size) != 0)
            return fail(o, MSG_REASON_FLASH_ERROR, out, cap, out_len, topic);
        o->erased_upto += o->port.erase_size;
    }
    if (o->port.write(o->port.ctx, off, c->data, n) != 0)
        return fail(o, MSG_REASON_FLASH_ERROR, out, cap, out_len, topic);
    o->prog.offset = end;
    err = prog_store(o);
    if (err != OTA_OK)
        return err;
    if (end == o->prog.size)
        return finish(o, out, cap, out_len, topic);
    return reply_request(o, out, cap, out_len, topic);
}

static enum ota_err on_confirm(struct ota *o, const struct msg_ota_confirm *c, uint8_t *out,
                               size_t cap, size_t *out_len, const char **topic)
{
    enum ota_err err;
    if (o->prog.state != MSG_OTA_TESTING || strcmp(c->campaign, o->prog.campaign) != 0 ||
        crypto_memcmp_ct(c->digest, o->prog.digest, MSG_DIGEST_LEN) != 0) {
        o->stats_ignored++;
        return reply_status(o, out, cap, out_len, topic);
    }
    if (o->port.confirm(o->port.ctx) != 0)
        return reply_status(o, out, cap, out_len, topic); /* still testing; may retry */
    o->cfg.running_test_mode = 0;                         /* the secondary slot is free again */
    o->prog.state = MSG_OTA_CONFIRMED;
    o->prog.reason = MSG_REASON_NONE;
    err = prog_store(o);
    if (err == OTA_OK)
        err = reply_status(o, out, cap, out_len, topic);
    return err;
}

static int suffix_is(const char *s, size_t n, const char *want)
{
    size_t w = strlen(want);
    return n == w && memcmp(s, want, w) == 0;
}

enum ota_err ota_handle(struct ota *o, const char *suffix, size_t suffix_len,
                        const uint8_t *payload, size_t len, uint8_t *out, size_t cap,
                        size_t *out_len, const char **reply_topic)
{
    struct msg m;
    enum msg_type want;
    enum ota_err err = OTA_ERR_ARG;

    if (o == NULL || suffix == NULL || (payload == NULL && len != 0) || out == NULL ||
        out_len == NULL || reply_topic == NULL)
        goto out;
    *out_len = 0;
    *reply_topic = NULL;
    err = OTA_ERR_MSG;
    if (suffix_is(suffix, suffix_len, "offer"))
        want = MSG_OTA_OFFER;
    else if (suffix_is(suffix, suffix_len, "chunk"))
        want = MSG_OTA_CHUNK;
    else if (suffix_is(suffix, suffix_len, "confirm"))
        want = MSG_OTA_CONFIRM;
    else
        goto bad;
    if (payload == NULL || msg_decode(payload, len, &m) != MSG_OK || m.type != want)
        goto bad;
    if (want == MSG_OTA_OFFER)
        err = on_offer(o, &m.u.offer, out, cap, out_len, reply_topic);
    else if (want == MSG_OTA_CHUNK)
        err = on_chunk(o, &m.u.chunk, out, cap, out_len, reply_topic);
    else
        err = on_confirm(o, &m.u.confirm, out, cap, out_len, reply_topic);
    if (err != OTA_OK) {
        *out_len = 0;
        *reply_topic = NULL;
    }
    goto out;
bad:
    o->stats_ignored++;
out:
    return err;
}

agent_status_t ota_agent_on_ota(void *user, const char *suffix, size_t suffix_len,
                                const uint8_t *payload, size_t payload_len, uint8_t *out,
                                size_t out_cap, size_t *ret_len, const char **ret_topic)
{
    enum ota_err e = ota_handle((struct ota *)user, suffix, suffix_len, payload, payload_len, out,
                                out_cap, ret_len, ret_topic);
    if (e == OTA_OK)
        return AGENT_OK;
    return e == OTA_ERR_NOSPACE ? AGENT_ERR_NOSPACE : AGENT_ERR_PARAM;
}
