/* Node <-> gateway message schemas and topic names. See fleetgw/msg.h, docs/protocol.md. */
#include "fleetgw/msg.h"

#include <string.h>

#include "fleetgw/cbor.h"

#define MSG_TIMESTAMP_MAX ((UINT64_C(1) << 53) - 1u)

static const char *const err_names[MSG_ERR__COUNT] = {
    [MSG_OK] = "ok",
    [MSG_ERR_ARG] = "invalid argument",
    [MSG_ERR_NOSPACE] = "output buffer too small",
    [MSG_ERR_CBOR] = "not well-formed CBOR, truncated or trailing bytes",
    [MSG_ERR_SCHEMA] = "message does not match its schema",
    [MSG_ERR_TYPE] = "unknown message type",
    [MSG_ERR_RANGE] = "value out of range",
    [MSG_ERR_ID] = "bad node id, campaign id or command name",
    [MSG_ERR_TOPIC] = "bad topic",
};

const char *msg_err_str(enum msg_err err)
{
    if ((unsigned)err >= (unsigned)MSG_ERR__COUNT)
        return "unknown error";
    return err_names[err];
}

static const char *const type_names[MSG_TYPE_MAX + 1] = {
    [MSG_ATTEST_CHALLENGE] = "attest-challenge",
    [MSG_ATTEST_EVIDENCE] = "attest-evidence",
    [MSG_OTA_OFFER] = "ota-offer",
    [MSG_OTA_ACK] = "ota-ack",
    [MSG_OTA_CHUNK_REQ] = "ota-chunk-request",
    [MSG_OTA_CHUNK] = "ota-chunk",
    [MSG_OTA_STATUS] = "ota-status",
    [MSG_OTA_CONFIRM] = "ota-confirm",
    [MSG_TELEMETRY] = "telemetry",
    [MSG_COMMAND] = "command",
    [MSG_NODE_STATUS] = "node-status",
};

const char *msg_type_str(enum msg_type type)
{
    if ((unsigned)type == 0 || (unsigned)type > MSG_TYPE_MAX)
        return "unknown";
    return type_names[type];
}

/* Number of fields after the type, per type. */
static const uint8_t field_count[MSG_TYPE_MAX + 1] = {
    [MSG_ATTEST_CHALLENGE] = 2, [MSG_ATTEST_EVIDENCE] = 1, [MSG_OTA_OFFER] = 5,
    [MSG_OTA_ACK] = 3,          [MSG_OTA_CHUNK_REQ] = 3,   [MSG_OTA_CHUNK] = 3,
    [MSG_OTA_STATUS] = 4,       [MSG_OTA_CONFIRM] = 2,     [MSG_TELEMETRY] = 3,
    [MSG_COMMAND] = 3,          [MSG_NODE_STATUS] = 3,
};

/* ---- identifiers ---------------------------------------------------------------------- */

static int is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

int msg_node_id_valid(const char *id, size_t len)
{
    if (id == NULL || len == 0 || len > MSG_NODE_ID_MAX)
        return -1;
    for (size_t i = 0; i < len; i++)
        if (!is_alnum(id[i]) && id[i] != '_' && id[i] != '-')
            return -1;
    return 0;
}

int msg_campaign_id_valid(const char *id, size_t len)
{
    if (id == NULL || len == 0 || len > MSG_CAMPAIGN_ID_MAX)
        return -1;
    for (size_t i = 0; i < len; i++)
        if (!is_alnum(id[i]) && id[i] != '_' && id[i] != '-' && id[i] != '.')
            return -1;
    return 0;
}

static int cmd_name_valid(const char *s, size_t len)
{
    if (s == NULL || len == 0 || len > MSG_CMD_NAME_MAX)
        return -1;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-'))
            return -1;
    }
    return 0;
}

int msg_subtopic_valid(const char *sub, size_t len)
{
    size_t seg = 0;
    if (sub == NULL || len == 0 || len > MSG_SUBTOPIC_MAX)
        return -1;
    for (size_t i = 0; i < len; i++) {
        char c = sub[i];
        if (c == '/') {
            if (seg == 0)
                return -1;
            seg = 0;
        } else if (is_alnum(c) || c == '_' || c == '-') {
            seg++;
        } else {
            return -1;
        }
    }
    return seg == 0 ? -1 : 0;
}

/* Length of a NUL-terminated id in a field of cap bytes, or cap if unterminated. */
static size_t field_len(const char *s, size_t cap)
{
    const char *nul = memchr(s, '\0', cap);
    return nul == NULL ? cap : (size_t)(nul - s);
}

static int campaign_ok(const char campaign[MSG_CAMPAIGN_ID_MAX + 1])
{
    return msg_campaign_id_valid(campaign, field_len(campaign, MSG_CAMPAIGN_ID_MAX + 1)) == 0;
}

/* ---- validation ----------------------------------------------------------------------- */

static int nonce_size_ok(size_t n)
{
    return n == 32u || n == 48u || n == 64u;
}

enum msg_err msg_validate(const struct msg *m)
{
    if (m == NULL)
        return MSG_ERR_ARG;
    switch (m->type) {
    case MSG_ATTEST_CHALLENGE:
        if (!nonce_size_ok(m->u.challenge.nonce_len) || m->u.challenge.ttl_s == 0 ||
            m->u.challenge.ttl_s > MSG_TTL_MAX)
            return MSG_ERR_RANGE;
        return MSG_OK;
    case MSG_ATTEST_EVIDENCE:
        if (m->u.evidence.token == NULL)
            return MSG_ERR_ARG;
        if (m->u.evidence.token_len == 0 || m->u.evidence.token_len > MSG_TOKEN_MAX)
            return MSG_ERR_RANGE;
        return MSG_OK;
    case MSG_OTA_OFFER:
        if (!campaign_ok(m->u.offer.campaign))
            return MSG_ERR_ID;
        if (m->u.offer.size == 0 || m->u.offer.size > MSG_IMAGE_MAX ||
            m->u.offer.chunk_size < MSG_CHUNK_MIN || m->u.offer.chunk_size > MSG_CHUNK_MAX)
            return MSG_ERR_RANGE;
        return MSG_OK;
    case MSG_OTA_ACK:
        if (!campaign_ok(m->u.ack.campaign))
            return MSG_ERR_ID;
        if ((unsigned)m->u.ack.reason > MSG_REASON_MAX ||
            (m->u.ack.accepted != 0 && m->u.ack.accepted != 1) ||
            (m->u.ack.accepted == 1) != (m->u.ack.reason == MSG_REASON_NONE))
            return MSG_ERR_RANGE;
        return MSG_OK;
    case MSG_OTA_CHUNK_REQ:
        if (!campaign_ok(m->u.chunk_req.campaign))
            return MSG_ERR_ID;
        if (m->u.chunk_req.length == 0 || m->u.chunk_req.length > MSG_CHUNK_MAX ||
            m->u.chunk_req.offset >= MSG_IMAGE_MAX ||
            m->u.chunk_req.length > MSG_IMAGE_MAX - m->u.chunk_req.offset)
            return MSG_ERR_RANGE;
        return MSG_OK;
    case MSG_OTA_CHUNK:
        if (!campaign_ok(m->u.chunk.campaign))
            return MSG_ERR_ID;
        if (m->u.chunk.data == NULL)
            return MSG_ERR_ARG;
        if (m->u.chunk.data_len == 0 || m->u.chunk.data_len > MSG_CHUNK_MAX ||
            m->u.chunk.offset >= MSG_IMAGE_MAX ||
            m->u.chunk.data_len > MSG_IMAGE_MAX - m->u.chunk.offset)
            return MSG_ERR_RANGE;
        return MSG_OK;
    case MSG_OTA_STATUS: {
        const struct msg_ota_status *s = &m->u.status;
        int failed = s->state == MSG_OTA_FAILED || s->state == MSG_OTA_REVERTED;
        if (!campaign_ok(s->campaign))
            return MSG_ERR_ID;
        if ((unsigned)s->state > MSG_OTA_STATE_MAX || (unsigned)s->reason > MSG_REASON_MAX ||
            s->offset > MSG_IMAGE_MAX || failed != (s->reason != MSG_REASON_NONE))
            return MSG_ERR_RANGE;
        return MSG_OK;
    }
    case MSG_OTA_CONFIRM:
        return campaign_ok(m->u.confirm.campaign) ? MSG_OK : MSG_ERR_ID;
    case MSG_TELEMETRY:
        if (m->u.telemetry.payload == NULL && m->u.telemetry.payload_len != 0)
            return MSG_ERR_ARG;
        if (m->u.telemetry.timestamp_ms > MSG_TIMESTAMP_MAX ||
            m->u.telemetry.payload_len > MSG_TELEMETRY_MAX)
            return MSG_ERR_RANGE;
        return MSG_OK;
    case MSG_COMMAND:
        if (cmd_name_valid(m->u.command.name, field_len(m->u.command.name, MSG_CMD_NAME_MAX + 1)) !=
            0)
            return MSG_ERR_ID;
        if (m->u.command.args == NULL && m->u.command.args_len != 0)
            return MSG_ERR_ARG;
        if (m->u.command.args_len > MSG_CMD_ARGS_MAX)
            return MSG_ERR_RANGE;
        return MSG_OK;
    case MSG_NODE_STATUS:
        if ((unsigned)m->u.node_status.state > MSG_NODE_STATE_MAX)
            return MSG_ERR_RANGE;
        return MSG_OK;
    }
    return MSG_ERR_TYPE;
}

/* ---- encoding ------------------------------------------------------------------------- */

static void put_campaign(struct cbor_enc *e, const char *c)
{
    cbor_put_text(e, c, field_len(c, MSG_CAMPAIGN_ID_MAX + 1));
}

static void put_version(struct cbor_enc *e, const struct msg_version *v)
{
    cbor_put_array(e, 4);
    cbor_put_uint(e, v->major);
    cbor_put_uint(e, v->minor);
    cbor_put_uint(e, v->revision);
    cbor_put_uint(e, v->build);
}

enum msg_err msg_encode(const struct msg *m, uint8_t *out, size_t cap, size_t *out_len)
{
    struct cbor_enc e;
    enum msg_err err;

    if (out_len != NULL)
        *out_len = 0;
    if (m == NULL || out == NULL || out_len == NULL)
        return MSG_ERR_ARG;
    err = msg_validate(m);
    if (err != MSG_OK)
        return err;
    cbor_enc_init(&e, out, cap);
    cbor_put_array(&e, 1u + field_count[m->type]);
    cbor_put_uint(&e, (uint64_t)m->type);
    switch (m->type) {
    case MSG_ATTEST_CHALLENGE:
        cbor_put_bytes(&e, m->u.challenge.nonce, m->u.challenge.nonce_len);
        cbor_put_uint(&e, m->u.challenge.ttl_s);
        break;
    case MSG_ATTEST_EVIDENCE:
        cbor_put_bytes(&e, m->u.evidence.token, m->u.evidence.token_len);
        break;
    case MSG_OTA_OFFER:
        put_campaign(&e, m->u.offer.campaign);
        cbor_put_bytes(&e, m->u.offer.digest, MSG_DIGEST_LEN);
        cbor_put_uint(&e, m->u.offer.size);
        put_version(&e, &m->u.offer.version);
        cbor_put_uint(&e, m->u.offer.chunk_size);
        break;
    case MSG_OTA_ACK:
        put_campaign(&e, m->u.ack.campaign);
        cbor_put_bool(&e, m->u.ack.accepted);
        cbor_put_uint(&e, (uint64_t)m->u.ack.reason);
        break;
    case MSG_OTA_CHUNK_REQ:
        put_campaign(&e, m->u.chunk_req.campaign);
        cbor_put_uint(&e, m->u.chunk_req.offset);
        cbor_put_uint(&e, m->u.chunk_req.length);
        break;
    case MSG_OTA_CHUNK:
        put_campaign(&e, m->u.chunk.campaign);
        cbor_put_uint(&e, m->u.chunk.offset);
        cbor_put_bytes(&e, m->u.chunk.data, m->u.chunk.data_len);
        break;
    case MSG_OTA_STATUS:
        put_campaign(&e, m->u.status.campaign);
        cbor_put_uint(&e, (uint64_t)m->u.status.state);
        cbor_put_uint(&e, m->u.status.offset);
        cbor_put_uint(&e, (uint64_t)m->u.status.reason);
        break;
    case MSG_OTA_CONFIRM:
        put_campaign(&e, m->u.confirm.campaign);
        cbor_put_bytes(&e, m->u.confirm.digest, MSG_DIGEST_LEN);
        break;
    case MSG_TELEMETRY:
        cbor_put_uint(&e, m->u.telemetry.seq);
        cbor_put_uint(&e, m->u.telemetry.timestamp_ms);
        cbor_put_bytes(&e, m->u.telemetry.payload, m->u.telemetry.payload_len);
        break;
    case MSG_COMMAND:
        cbor_put_uint(&e, m->u.command.id);
        cbor_put_text(&e, m->u.command.name, field_len(m->u.command.name, MSG_CMD_NAME_MAX + 1));
        cbor_put_bytes(&e, m->u.command.args, m->u.command.args_len);
        break;
    case MSG_NODE_STATUS:
        cbor_put_uint(&e, (uint64_t)m->u.node_status.state);
        cbor_put_uint(&e, m->u.node_status.uptime_s);
        put_version(&e, &m->u.node_status.version);
        break;
    }
    switch (cbor_enc_finish(&e, out_len)) {
    case CBOR_OK:
        return MSG_OK;
    case CBOR_ERR_NOSPACE:
        return MSG_ERR_NOSPACE;
    default:
        return MSG_ERR_ARG;
    }
}

/* ---- decoding ------------------------------------------------------------------------- */

static enum msg_err from_cbor(enum cbor_err e)
{
    switch (e) {
    case CBOR_OK:
        return MSG_OK;
    case CBOR_ERR_TYPE:
        return MSG_ERR_SCHEMA;
    case CBOR_ERR_RANGE:
        return MSG_ERR_RANGE;
    default:
        return MSG_ERR_CBOR;
    }
}

static enum msg_err get_u(struct cbor_dec *d, uint64_t max, uint64_t *v)
{
    enum msg_err err = from_cbor(cbor_get_uint(d, v));
    if (err == MSG_OK && *v > max)
        err = MSG_ERR_RANGE;
    return err;
}

static enum msg_err get_u32(struct cbor_dec *d, uint32_t *v)
{
    uint64_t u = 0;
    enum msg_err err = get_u(d, UINT32_MAX, &u);
    *v = (uint32_t)u;
    return err;
}

static enum msg_err get_campaign(struct cbor_dec *d, char dst[MSG_CAMPAIGN_ID_MAX + 1])
{
    const char *p;
    size_t n;
    enum cbor_err ce = cbor_get_text(d, &p, &n, MSG_CAMPAIGN_ID_MAX);
    if (ce == CBOR_ERR_RANGE)
        return MSG_ERR_ID;
    if (ce != CBOR_OK)
        return from_cbor(ce);
    if (msg_campaign_id_valid(p, n) != 0)
        return MSG_ERR_ID;
    memcpy(dst, p, n);
    dst[n] = '\0';
    return MSG_OK;
}

static enum msg_err get_digest(struct cbor_dec *d, uint8_t dst[MSG_DIGEST_LEN])
{
    const uint8_t *p;
    size_t n;
    enum msg_err err = from_cbor(cbor_get_bytes(d, &p, &n, MSG_DIGEST_LEN));
    if (err != MSG_OK)
        return err;
    if (n != MSG_DIGEST_LEN)
        return MSG_ERR_RANGE;
    memcpy(dst, p, n);
    return MSG_OK;
}

static enum msg_err get_version(struct cbor_dec *d, struct msg_version *v)
{
    size_t n = 0;
    uint64_t u[4] = {0, 0, 0, 0};
    static const uint64_t max[4] = {0xffu, 0xffu, 0xffffu, 0xffffffffu};
    enum msg_err err = from_cbor(cbor_get_array(d, &n, 4));
    if (err != MSG_OK)
        return err == MSG_ERR_RANGE ? MSG_ERR_SCHEMA : err;
    if (n != 4)
        return MSG_ERR_SCHEMA;
    for (size_t i = 0; i < 4 && err == MSG_OK; i++)
        err = get_u(d, max[i], &u[i]);
    v->major = (uint8_t)u[0];
    v->minor = (uint8_t)u[1];
    v->revision = (uint16_t)u[2];
    v->build = (uint32_t)u[3];
    return err;
}

static enum msg_err decode_fields(struct cbor_dec *d, struct msg *m)
{
    enum msg_err err = MSG_OK;
    uint64_t u = 0;
    const uint8_t *p = NULL;
    const char *t = NULL;
    size_t n = 0;

    switch (m->type) {
    case MSG_ATTEST_CHALLENGE:
        err = from_cbor(cbor_get_bytes(d, &p, &n, MSG_NONCE_MAX));
        if (err != MSG_OK)
            return err;
        memcpy(m->u.challenge.nonce, p, n);
        m->u.challenge.nonce_len = n;
        return get_u32(d, &m->u.challenge.ttl_s);
    case MSG_ATTEST_EVIDENCE:
        return from_cbor(
            cbor_get_bytes(d, &m->u.evidence.token, &m->u.evidence.token_len, MSG_TOKEN_MAX));
    case MSG_OTA_OFFER:
        err = get_campaign(d, m->u.offer.campaign);
        if (err == MSG_OK)
            err = get_digest(d, m->u.offer.digest);
        if (err == MSG_OK)
            err = get_u32(d, &m->u.offer.size);
        if (err == MSG_OK)
            err = get_version(d, &m->u.offer.version);
        if (err == MSG_OK)
            err = get_u32(d, &m->u.offer.chunk_size);
        return err;
    case MSG_OTA_ACK:
        err = get_campaign(d, m->u.ack.campaign);
        if (err == MSG_OK)
            err = from_cbor(cbor_get_bool(d, &m->u.ack.accepted));
        if (err == MSG_OK)
            err = get_u(d, MSG_REASON_MAX, &u);
        m->u.ack.reason = (enum msg_ota_reason)u;
        return err;
    case MSG_OTA_CHUNK_REQ:
        err = get_campaign(d, m->u.chunk_req.campaign);
        if (err == MSG_OK)
            err = get_u32(d, &m->u.chunk_req.offset);
        if (err == MSG_OK)
            err = get_u32(d, &m->u.chunk_req.length);
        return err;
    case MSG_OTA_CHUNK:
        err = get_campaign(d, m->u.chunk.campaign);
        if (err == MSG_OK)
            err = get_u32(d, &m->u.chunk.offset);
        if (err == MSG_OK)
            err =
                from_cbor(cbor_get_bytes(d, &m->u.chunk.data, &m->u.chunk.data_len, MSG_CHUNK_MAX));
        return err;
    case MSG_OTA_STATUS:
        err = get_campaign(d, m->u.status.campaign);
        if (err == MSG_OK)
            err = get_u(d, MSG_OTA_STATE_MAX, &u);
        m->u.status.state = (enum msg_ota_state)u;
        if (err == MSG_OK)
            err = get_u32(d, &m->u.status.offset);
        u = 0;
        if (err == MSG_OK)
            err = get_u(d, MSG_REASON_MAX, &u);
        m->u.status.reason = (enum msg_ota_reason)u;
        return err;
    case MSG_OTA_CONFIRM:
        err = get_campaign(d, m->u.confirm.campaign);
        if (err == MSG_OK)
            err = get_digest(d, m->u.confirm.digest);
        return err;
    case MSG_TELEMETRY:
        err = get_u32(d, &m->u.telemetry.seq);
        if (err == MSG_OK)
            err = get_u(d, MSG_TIMESTAMP_MAX, &m->u.telemetry.timestamp_ms);
        if (err == MSG_OK)
            err = from_cbor(cbor_get_bytes(d, &m->u.telemetry.payload, &m->u.telemetry.payload_len,
                                           MSG_TELEMETRY_MAX));
        return err;
    case MSG_COMMAND:
        err = get_u32(d, &m->u.command.id);
        if (err != MSG_OK)
            return err;
        err = from_cbor(cbor_get_text(d, &t, &n, MSG_CMD_NAME_MAX));
        if (err != MSG_OK)
            return err == MSG_ERR_RANGE ? MSG_ERR_ID : err;
        if (cmd_name_valid(t, n) != 0)
            return MSG_ERR_ID;
        memcpy(m->u.command.name, t, n);
        m->u.command.name[n] = '\0';
        return from_cbor(
            cbor_get_bytes(d, &m->u.command.args, &m->u.command.args_len, MSG_CMD_ARGS_MAX));
    case MSG_NODE_STATUS:
        err = get_u(d, MSG_NODE_STATE_MAX, &u);
        m->u.node_status.state = (enum msg_node_state)u;
        if (err == MSG_OK)
            err = get_u32(d, &m->u.node_status.uptime_s);
        if (err == MSG_OK)
            err = get_version(d, &m->u.node_status.version);
        return err;
    }
    return MSG_ERR_TYPE;
}

enum msg_err msg_decode(const uint8_t *in, size_t len, struct msg *m)
{
    struct cbor_dec d;
    size_t count = 0;
    uint64_t type = 0;
    enum msg_err err;

    if (m == NULL)
        return MSG_ERR_ARG;
    memset(m, 0, sizeof(*m));
    if (in == NULL) {
        err = MSG_ERR_ARG;
        goto out;
    }
    cbor_dec_init(&d, in, len);
    err = from_cbor(cbor_get_array(&d, &count, 1u + MSG_MAX_FIELDS));
    if (err != MSG_OK) {
        if (err == MSG_ERR_RANGE)
            err = MSG_ERR_SCHEMA;
        goto out;
    }
    if (count == 0) {
        err = MSG_ERR_SCHEMA;
        goto out;
    }
    err = from_cbor(cbor_get_uint(&d, &type));
    if (err != MSG_OK)
        goto out;
    if (type == 0 || type > MSG_TYPE_MAX) {
        err = MSG_ERR_TYPE;
        goto out;
    }
    m->type = (enum msg_type)type;
    if (count != 1u + field_count[type]) {
        err = MSG_ERR_SCHEMA;
        goto out;
    }
    err = decode_fields(&d, m);
    if (err != MSG_OK)
        goto out;
    if (cbor_dec_done(&d) != CBOR_OK) {
        err = MSG_ERR_CBOR;
        goto out;
    }
    err = msg_validate(m);
out:
    if (err != MSG_OK)
        memset(m, 0, sizeof(*m));
    return err;
}

/* ---- topics --------------------------------------------------------------------------- */

static const char *const topic_suffix[MSG_TOPIC__COUNT] = {
    [MSG_TOPIC_ATTEST_CHALLENGE] = "attest/challenge",
    [MSG_TOPIC_ATTEST_EVIDENCE] = "attest/evidence",
    [MSG_TOPIC_OTA_OFFER] = "ota/offer",
    [MSG_TOPIC_OTA_ACK] = "ota/ack",
    [MSG_TOPIC_OTA_REQUEST] = "ota/request",
    [MSG_TOPIC_OTA_CHUNK] = "ota/chunk",
    [MSG_TOPIC_OTA_STATUS] = "ota/status",
    [MSG_TOPIC_OTA_CONFIRM] = "ota/confirm",
    [MSG_TOPIC_STATUS] = "status",
    [MSG_TOPIC_UP] = "up",
    [MSG_TOPIC_DOWN] = "down",
};

static const char topic_prefix[] = "fleet/";

static void append(char *out, size_t *pos, const char *s, size_t n)
{
    memcpy(out + *pos, s, n);
    *pos += n;
}

enum msg_err msg_topic_build(enum msg_topic topic, const char *node_id, size_t node_id_len,
                             const char *sub, size_t sub_len, char *out, size_t cap, size_t *len)
{
    int has_sub = topic == MSG_TOPIC_UP || topic == MSG_TOPIC_DOWN;
    size_t need, pos = 0, suffix_len;

    if (len != NULL)
        *len = 0;
    if (out == NULL || (unsigned)topic >= (unsigned)MSG_TOPIC__COUNT)
        return MSG_ERR_ARG;
    if (cap > 0)
        out[0] = '\0';
    if (msg_node_id_valid(node_id, node_id_len) != 0)
        return MSG_ERR_ID;
    if (has_sub ? msg_subtopic_valid(sub, sub_len) != 0 : (sub != NULL || sub_len != 0))
        return MSG_ERR_TOPIC;
    suffix_len = strlen(topic_suffix[topic]);
    /* all terms are bounded by the maxima above: no overflow */
    need = sizeof(topic_prefix) - 1u + node_id_len + 1u + suffix_len +
           (has_sub ? 1u + sub_len : 0u) + 1u;
    if (need > cap)
        return MSG_ERR_NOSPACE;
    append(out, &pos, topic_prefix, sizeof(topic_prefix) - 1u);
    append(out, &pos, node_id, node_id_len);
    append(out, &pos, "/", 1);
    append(out, &pos, topic_suffix[topic], suffix_len);
    if (has_sub) {
        append(out, &pos, "/", 1);
        append(out, &pos, sub, sub_len);
    }
    out[pos] = '\0';
    if (len != NULL)
        *len = pos;
    return MSG_OK;
}

/* The part after "fleet/<id>/": which topic, and the subtopic of up/down (into rest). */
static enum msg_err suffix_parse(const char *rest, size_t rest_len, enum msg_topic *ret,
                                 const char **sub, size_t *sub_len)
{
    for (unsigned t = 0; t < (unsigned)MSG_TOPIC__COUNT; t++) {
        size_t sl = strlen(topic_suffix[t]);
        int has_sub = t == MSG_TOPIC_UP || t == MSG_TOPIC_DOWN;
        if (!has_sub) {
            if (rest_len != sl || memcmp(rest, topic_suffix[t], sl) != 0)
                continue;
        } else {
            if (rest_len <= sl + 1u || memcmp(rest, topic_suffix[t], sl) != 0 || rest[sl] != '/')
                continue;
            if (msg_subtopic_valid(rest + sl + 1u, rest_len - sl - 1u) != 0)
                return MSG_ERR_TOPIC;
            *sub = rest + sl + 1u;
            *sub_len = rest_len - sl - 1u;
        }
        *ret = (enum msg_topic)t;
        return MSG_OK;
    }
    return MSG_ERR_TOPIC;
}

enum msg_err msg_topic_parse(const char *topic, size_t len, struct msg_topic_parsed *out)
{
    size_t plen = sizeof(topic_prefix) - 1u, id_len = 0;
    enum msg_err err;

    if (out == NULL)
        return MSG_ERR_ARG;
    memset(out, 0, sizeof(*out));
    if (topic == NULL)
        return MSG_ERR_ARG;
    if (len < plen || memcmp(topic, topic_prefix, plen) != 0)
        return MSG_ERR_TOPIC;
    while (plen + id_len < len && topic[plen + id_len] != '/')
        id_len++;
    if (plen + id_len == len)
        return MSG_ERR_TOPIC; /* no suffix */
    if (msg_node_id_valid(topic + plen, id_len) != 0)
        return MSG_ERR_ID;
    err = suffix_parse(topic + plen + id_len + 1u, len - plen - id_len - 1u, &out->topic, &out->sub,
                       &out->sub_len);
    if (err != MSG_OK) {
        memset(out, 0, sizeof(*out));
        return err;
    }
    memcpy(out->node_id, topic + plen, id_len);
    out->node_id[id_len] = '\0';
    out->node_id_len = id_len;
    return MSG_OK;
}

enum msg_err msg_topic_build_suffix(const char *node_id, size_t node_id_len, const char *suffix,
                                    size_t suffix_len, char *out, size_t cap, size_t *len)
{
    enum msg_topic t = MSG_TOPIC__COUNT;
    const char *sub = NULL;
    size_t sub_len = 0;

    if (len != NULL)
        *len = 0;
    if (out == NULL || suffix == NULL)
        return MSG_ERR_ARG;
    if (cap > 0)
        out[0] = '\0';
    if (suffix_parse(suffix, suffix_len, &t, &sub, &sub_len) != MSG_OK)
        return MSG_ERR_TOPIC;
    return msg_topic_build(t, node_id, node_id_len, sub, sub_len, out, cap, len);
}

enum msg_type msg_topic_type(enum msg_topic topic, const char *sub, size_t sub_len)
{
    switch (topic) {
    case MSG_TOPIC_ATTEST_CHALLENGE:
        return MSG_ATTEST_CHALLENGE;
    case MSG_TOPIC_ATTEST_EVIDENCE:
        return MSG_ATTEST_EVIDENCE;
    case MSG_TOPIC_OTA_OFFER:
        return MSG_OTA_OFFER;
    case MSG_TOPIC_OTA_ACK:
        return MSG_OTA_ACK;
    case MSG_TOPIC_OTA_REQUEST:
        return MSG_OTA_CHUNK_REQ;
    case MSG_TOPIC_OTA_CHUNK:
        return MSG_OTA_CHUNK;
    case MSG_TOPIC_OTA_STATUS:
        return MSG_OTA_STATUS;
    case MSG_TOPIC_OTA_CONFIRM:
        return MSG_OTA_CONFIRM;
    case MSG_TOPIC_STATUS:
        return MSG_NODE_STATUS;
    case MSG_TOPIC_UP:
        if (sub != NULL && sub_len == 9 && memcmp(sub, "telemetry", 9) == 0)
            return MSG_TELEMETRY;
        break;
    case MSG_TOPIC_DOWN:
        if (sub != NULL && sub_len == 7 && memcmp(sub, "command", 7) == 0)
            return MSG_COMMAND;
        break;
    default:
        break;
    }
    return (enum msg_type)0;
}

enum msg_err msg_topic_filter(enum msg_topic topic, const char *node_id, size_t node_id_len,
                              char *out, size_t cap, size_t *len)
{
    int has_sub = topic == MSG_TOPIC_UP || topic == MSG_TOPIC_DOWN;
    size_t pos = 0, suffix_len, need, id_len = node_id != NULL ? node_id_len : 1u;

    if (len != NULL)
        *len = 0;
    if (out == NULL || (unsigned)topic >= (unsigned)MSG_TOPIC__COUNT)
        return MSG_ERR_ARG;
    if (cap > 0)
        out[0] = '\0';
    if (node_id != NULL && msg_node_id_valid(node_id, node_id_len) != 0)
        return MSG_ERR_ID;
    suffix_len = strlen(topic_suffix[topic]);
    need = sizeof(topic_prefix) - 1u + id_len + 1u + suffix_len + (has_sub ? 2u : 0u) + 1u;
    if (need > cap)
        return MSG_ERR_NOSPACE;
    append(out, &pos, topic_prefix, sizeof(topic_prefix) - 1u);
    append(out, &pos, node_id != NULL ? node_id : "+", id_len);
    append(out, &pos, "/", 1);
    append(out, &pos, topic_suffix[topic], suffix_len);
    if (has_sub)
        append(out, &pos, "/#", 2);
    out[pos] = '\0';
    if (len != NULL)
        *len = pos;
    return MSG_OK;
}

/* ---- cloud-side topics ---------------------------------------------------------------- */

/* The part between "<prefix>/" and "/<id>", and what follows the id. */
static const struct {
    const char *area;   /* "nodes", "cmd", "gateway", "ota/campaigns" */
    const char *suffix; /* "/state", "/status", "" (the id ends the topic), or NULL: "/<sub>"
                           follows */
} cloud_form[MSG_CLOUD__COUNT] = {
    [MSG_CLOUD_NODE_UP] = {"nodes", NULL},
    [MSG_CLOUD_NODE_STATE] = {"nodes", "/state"},
    [MSG_CLOUD_CMD] = {"cmd", NULL},
    [MSG_CLOUD_GATEWAY_STATUS] = {"gateway", "/status"},
    [MSG_CLOUD_CAMPAIGN_STATUS] = {"ota/campaigns", "/status"},
    [MSG_CLOUD_JOB] = {"ota/jobs", ""},
    [MSG_CLOUD_JOB_GET] = {"ota/jobs", "/get"},
    [MSG_CLOUD_JOB_DATA] = {"ota/jobs", "/data"},
    [MSG_CLOUD_JOB_STATUS] = {"ota/jobs", "/status"},
};

int msg_cloud_prefix_valid(const char *prefix, size_t len)
{
    if (prefix == NULL || len == 0 || len > MSG_CLOUD_PREFIX_MAX || prefix[0] == '/' ||
        prefix[len - 1] == '/' || prefix[0] == '$')
        return -1;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)prefix[i];
        if (c < 0x20 || c == 0x7f || c == '+' || c == '#')
            return -1;
        if (c == '/' && i + 1 < len && prefix[i + 1] == '/')
            return -1;
    }
    return 0;
}

int msg_gateway_id_valid(const char *id, size_t len)
{
    if (id == NULL || len == 0 || len > MSG_GATEWAY_ID_MAX)
        return -1;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)id[i];
        if (c <= 0x20 || c >= 0x7f || c == '/' || c == '+' || c == '#')
            return -1;
    }
    return 0;
}

/* "state" is the gateway's own NODE_STATE topic under nodes/<id>/: no node's up/<sub> may
 * take it, or a node could forge its attestation state upstream. */
int msg_cloud_sub_reserved(const char *sub, size_t sub_len)
{
    return sub != NULL && sub_len == 5 && memcmp(sub, "state", 5) == 0;
}

static int cloud_id_valid(enum msg_cloud_topic topic, const char *id, size_t id_len)
{
    if (topic == MSG_CLOUD_GATEWAY_STATUS)
        return msg_gateway_id_valid(id, id_len);
    if (topic == MSG_CLOUD_CAMPAIGN_STATUS || topic == MSG_CLOUD_JOB ||
        topic == MSG_CLOUD_JOB_GET || topic == MSG_CLOUD_JOB_DATA || topic == MSG_CLOUD_JOB_STATUS)
        return msg_campaign_id_valid(id, id_len);
    return msg_node_id_valid(id, id_len);
}

enum msg_err msg_cloud_topic_build(enum msg_cloud_topic topic, const char *prefix,
                                   size_t prefix_len, const char *id, size_t id_len,
                                   const char *sub, size_t sub_len, char *out, size_t cap,
                                   size_t *len)
{
    size_t pos = 0, need, area_len, suffix_len;
    int has_sub;

    if (len != NULL)
        *len = 0;
    if (out == NULL || (unsigned)topic >= (unsigned)MSG_CLOUD__COUNT)
        return MSG_ERR_ARG;
    if (cap > 0)
        out[0] = '\0';
    has_sub = cloud_form[topic].suffix == NULL;
    if (msg_cloud_prefix_valid(prefix, prefix_len) != 0)
        return MSG_ERR_TOPIC;
    if (cloud_id_valid(topic, id, id_len) != 0)
        return MSG_ERR_ID;
    if (has_sub ? (msg_subtopic_valid(sub, sub_len) != 0 ||
                   (topic == MSG_CLOUD_NODE_UP && msg_cloud_sub_reserved(sub, sub_len)))
                : (sub != NULL || sub_len != 0))
        return MSG_ERR_TOPIC;
    area_len = strlen(cloud_form[topic].area);
    suffix_len = has_sub ? 1u + sub_len : strlen(cloud_form[topic].suffix);
    /* every term is bounded by the maxima checked above: no overflow */
    need = prefix_len + 1u + area_len + 1u + id_len + suffix_len + 1u;
    if (need > cap)
        return MSG_ERR_NOSPACE;
    append(out, &pos, prefix, prefix_len);
    append(out, &pos, "/", 1);
    append(out, &pos, cloud_form[topic].area, area_len);
    append(out, &pos, "/", 1);
    append(out, &pos, id, id_len);
    if (has_sub) {
        append(out, &pos, "/", 1);
        append(out, &pos, sub, sub_len);
    } else {
        append(out, &pos, cloud_form[topic].suffix, suffix_len);
    }
    out[pos] = '\0';
    if (len != NULL)
        *len = pos;
    return MSG_OK;
}

enum msg_err msg_cloud_up_from_edge(const struct msg_topic_parsed *t, const char *prefix,
                                    size_t prefix_len, char *out, size_t cap, size_t *len)
{
    const char *area = cloud_form[MSG_CLOUD_NODE_UP].area;
    size_t area_len = strlen(area), pos = 0, need;

    if (len != NULL)
        *len = 0;
    if (t == NULL || out == NULL || prefix == NULL || t->topic != MSG_TOPIC_UP || t->sub == NULL)
        return MSG_ERR_ARG;
    if (cap > 0)
        out[0] = '\0';
    /* the node id and the sub were checked by msg_topic_parse; the edge grammar allows the
     * reserved sub, the cloud's does not */
    if (msg_cloud_sub_reserved(t->sub, t->sub_len))
        return MSG_ERR_TOPIC;
    need = prefix_len + 1u + area_len + 1u + t->node_id_len + 1u + t->sub_len + 1u;
    if (need > cap)
        return MSG_ERR_NOSPACE;
    append(out, &pos, prefix, prefix_len);
    append(out, &pos, "/", 1);
    append(out, &pos, area, area_len);
    append(out, &pos, "/", 1);
    append(out, &pos, t->node_id, t->node_id_len);
    append(out, &pos, "/", 1);
    append(out, &pos, t->sub, t->sub_len);
    out[pos] = '\0';
    if (len != NULL)
        *len = pos;
    return MSG_OK;
}

enum msg_err msg_cloud_topic_parse(const char *topic, size_t len, const char *prefix,
                                   size_t prefix_len, struct msg_cloud_parsed *out)
{
    if (out == NULL)
        return MSG_ERR_ARG;
    memset(out, 0, sizeof(*out));
    if (topic == NULL || msg_cloud_prefix_valid(prefix, prefix_len) != 0)
        return MSG_ERR_ARG;
    if (len <= prefix_len + 1u || memcmp(topic, prefix, prefix_len) != 0 ||
        topic[prefix_len] != '/')
        return MSG_ERR_TOPIC;
    const char *area = topic + prefix_len + 1u;
    size_t area_room = len - prefix_len - 1u;
    for (unsigned t = 0; t < (unsigned)MSG_CLOUD__COUNT; t++) {
        size_t al = strlen(cloud_form[t].area);
        if (area_room <= al + 1u || memcmp(area, cloud_form[t].area, al) != 0 || area[al] != '/')
            continue;
        const char *id = area + al + 1u;
        size_t rest = area_room - al - 1u, id_len = 0;
        while (id_len < rest && id[id_len] != '/')
            id_len++;
        int id_ends = cloud_form[t].suffix != NULL && cloud_form[t].suffix[0] == '\0';
        if (id_len == rest && !id_ends)
            return MSG_ERR_TOPIC;       /* nothing after the id */
        const char *tail = id + id_len; /* "/..." */
        size_t tail_len = rest - id_len;
        if (cloud_form[t].suffix != NULL) {
            size_t sl = strlen(cloud_form[t].suffix);
            if (tail_len != sl || memcmp(tail, cloud_form[t].suffix, sl) != 0)
                continue; /* nodes/<id>/<sub> is tried as NODE_UP */
        } else {
            if (msg_subtopic_valid(tail + 1, tail_len - 1u) != 0)
                return MSG_ERR_TOPIC;
            if (t == MSG_CLOUD_NODE_UP && msg_cloud_sub_reserved(tail + 1, tail_len - 1u))
                continue; /* nodes/<id>/state: NODE_STATE */
            out->sub = tail + 1;
            out->sub_len = tail_len - 1u;
        }
        if (cloud_id_valid((enum msg_cloud_topic)t, id, id_len) != 0) {
            out->sub = NULL;
            out->sub_len = 0;
            return MSG_ERR_ID;
        }
        out->topic = (enum msg_cloud_topic)t;
        memcpy(out->id, id, id_len);
        out->id[id_len] = '\0';
        return MSG_OK;
    }
    return MSG_ERR_TOPIC;
}

enum msg_err msg_cloud_filter(enum msg_cloud_topic topic, const char *prefix, size_t prefix_len,
                              char *out, size_t cap, size_t *len)
{
    size_t pos = 0, need, area_len, suffix_len;

    if (len != NULL)
        *len = 0;
    if (out == NULL || (unsigned)topic >= (unsigned)MSG_CLOUD__COUNT)
        return MSG_ERR_ARG;
    if (cap > 0)
        out[0] = '\0';
    if (msg_cloud_prefix_valid(prefix, prefix_len) != 0)
        return MSG_ERR_TOPIC;
    area_len = strlen(cloud_form[topic].area);
    suffix_len = cloud_form[topic].suffix != NULL ? strlen(cloud_form[topic].suffix) : 2u;
    need = prefix_len + 1u + area_len + 2u + suffix_len + 1u;
    if (need > cap)
        return MSG_ERR_NOSPACE;
    append(out, &pos, prefix, prefix_len);
    append(out, &pos, "/", 1);
    append(out, &pos, cloud_form[topic].area, area_len);
    append(out, &pos, "/+", 2);
    append(out, &pos, cloud_form[topic].suffix != NULL ? cloud_form[topic].suffix : "/#",
           suffix_len);
    out[pos] = '\0';
    if (len != NULL)
        *len = pos;
    return MSG_OK;
}
