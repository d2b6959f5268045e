/* The uplink batch format, version 1 (fleetgw/batch.h, docs/batch-format.md).
 *
 * Encoder: batch_enc_init() reserves room for the heads (array(3), uint 1, the gateway text,
 * the entries' array head at its largest for BATCH_ENTRIES_MAX), entries are appended after
 * that room, and batch_enc_finish() writes the heads in their preferred form right-aligned
 * against the first entry, so the batch is one contiguous run of bytes ending at the last
 * entry and no entry is ever moved.
 *
 * Decoder: a pull decoder over the caller's bytes on top of proto's strict CBOR decoder
 * (definite lengths, shortest heads, valid UTF-8). Every error reports the byte offset of the
 * item it was found at; the decoder's state only moves on success. */
#include "fleetgw/batch.h"

#include <string.h>

#include "fleetgw/cbor.h"
#include "fleetgw/msg.h"

#define ENTRY_FIELDS 5u
#define BATCH_FIELDS 3u

static const char *const err_str[] = {
    [BATCH_OK] = "ok",
    [BATCH_ERR_CBOR] = "not a well-formed batch (CBOR or item type)",
    [BATCH_ERR_VERSION] = "unknown batch version",
    [BATCH_ERR_FIELD] = "field out of range",
    [BATCH_ERR_ORDER] = "seq not strictly increasing",
    [BATCH_ERR_NOSPACE] = "entry does not fit the batch",
};

const char *batch_err_str(enum batch_err err)
{
    if ((unsigned)err >= sizeof(err_str) / sizeof(err_str[0]) || err_str[err] == NULL)
        return "unknown batch error";
    return err_str[err];
}

/* a + b, or SIZE_MAX when it overflows (sizes then never fit any buffer) */
static size_t add_sat(size_t a, size_t b)
{
    return a > SIZE_MAX - b ? SIZE_MAX : a + b;
}

static size_t str_size(size_t len)
{
    return add_sat(cbor_head_len((uint64_t)len), len);
}

static int gateway_valid(const char *gw, size_t len)
{
    return gw != NULL && len >= 1 && len <= BATCH_GATEWAY_MAX &&
           cbor_utf8_valid((const uint8_t *)gw, len) == 0;
}

static int tail_valid(const char *tail, size_t len)
{
    return tail != NULL && len >= 1 && len <= BATCH_TAIL_MAX &&
           cbor_utf8_valid((const uint8_t *)tail, len) == 0;
}

size_t batch_entry_size(const struct batch_entry *en)
{
    size_t n = 1; /* array(5) */
    n = add_sat(n, str_size(en->node_len));
    n = add_sat(n, str_size(en->tail_len));
    n = add_sat(n, cbor_head_len(en->seq));
    n = add_sat(n, cbor_head_len(en->ts));
    return add_sat(n, str_size(en->payload_len));
}

size_t batch_size(size_t gateway_len, size_t count, size_t entries_bytes)
{
    size_t n = 1 + 1; /* array(3), uint 1 */
    n = add_sat(n, str_size(gateway_len));
    n = add_sat(n, cbor_head_len((uint64_t)count));
    return add_sat(n, entries_bytes);
}

enum batch_err batch_enc_init(struct batch_enc *e, uint8_t *buf, size_t cap, const char *gateway,
                              size_t gateway_len)
{
    memset(e, 0, sizeof(*e));
    if (!gateway_valid(gateway, gateway_len))
        return BATCH_ERR_FIELD;
    /* the heads at their largest: the entries' array head for BATCH_ENTRIES_MAX entries */
    size_t start = batch_size(gateway_len, BATCH_ENTRIES_MAX, 0);
    if (buf == NULL || cap < start)
        return BATCH_ERR_NOSPACE;
    e->buf = buf;
    e->cap = cap;
    e->start = start;
    e->len = start;
    e->gateway = gateway;
    e->gateway_len = gateway_len;
    return BATCH_OK;
}

/* The entry checks the decoder makes, in the same order. */
static enum batch_err entry_check(const struct batch_entry *en)
{
    if (msg_node_id_valid(en->node, en->node_len) != 0 || !tail_valid(en->tail, en->tail_len) ||
        en->payload_len > BATCH_PAYLOAD_MAX || (en->payload == NULL && en->payload_len > 0))
        return BATCH_ERR_FIELD;
    return BATCH_OK;
}

enum batch_err batch_enc_add(struct batch_enc *e, const struct batch_entry *en)
{
    struct cbor_enc c;
    size_t n = 0;
    enum batch_err err = entry_check(en);
    if (err != BATCH_OK)
        return err;
    if (e->count > 0 && en->seq <= e->last_seq)
        return BATCH_ERR_ORDER;
    size_t size = batch_entry_size(en);
    if (e->buf == NULL || e->count >= BATCH_ENTRIES_MAX || size > e->cap - e->len)
        return BATCH_ERR_NOSPACE;
    cbor_enc_init(&c, e->buf + e->len, size);
    cbor_put_array(&c, ENTRY_FIELDS);
    cbor_put_text(&c, en->node, en->node_len);
    cbor_put_text(&c, en->tail, en->tail_len);
    cbor_put_uint(&c, en->seq);
    cbor_put_uint(&c, en->ts);
    cbor_put_bytes(&c, en->payload, en->payload_len);
    /* batch_entry_size() is exact, so this cannot fail; if it ever did, nothing is counted */
    if (cbor_enc_finish(&c, &n) != CBOR_OK || n != size)
        return BATCH_ERR_NOSPACE;
    e->len += size;
    e->count++;
    e->last_seq = en->seq;
    return BATCH_OK;
}

enum batch_err batch_enc_finish(struct batch_enc *e, const uint8_t **out, size_t *out_len)
{
    struct cbor_enc c;
    size_t n = 0;
    *out = NULL;
    *out_len = 0;
    if (e->buf == NULL || e->count == 0)
        return BATCH_ERR_FIELD;
    size_t heads = batch_size(e->gateway_len, e->count, 0);
    if (heads > e->start) /* cannot happen: start was reserved for the largest count */
        return BATCH_ERR_NOSPACE;
    size_t at = e->start - heads;
    cbor_enc_init(&c, e->buf + at, heads);
    cbor_put_array(&c, BATCH_FIELDS);
    cbor_put_uint(&c, BATCH_VERSION);
    cbor_put_text(&c, e->gateway, e->gateway_len);
    cbor_put_array(&c, e->count);
    if (cbor_enc_finish(&c, &n) != CBOR_OK || n != heads)
        return BATCH_ERR_NOSPACE;
    *out = e->buf + at;
    *out_len = e->len - at;
    return BATCH_OK;
}

/* ---- Decoder ------------------------------------------------------------------------------ */

static void set_where(size_t *where, size_t off)
{
    if (where != NULL)
        *where = off;
}

/* A typed read that failed: CBOR errors are BATCH_ERR_CBOR except a limit (RANGE). */
static enum batch_err from_cbor(enum cbor_err err)
{
    return err == CBOR_ERR_RANGE ? BATCH_ERR_FIELD : BATCH_ERR_CBOR;
}

enum batch_err batch_dec_init(struct batch_dec *d, const uint8_t *buf, size_t len,
                              const char **gateway, size_t *gateway_len, size_t *count,
                              size_t *where)
{
    struct cbor_dec c;
    enum cbor_err ce;
    size_t n = 0, at = 0, gl = 0, entries = 0;
    uint64_t version = 0;
    const char *gw = NULL;

    memset(d, 0, sizeof(*d));
    *gateway = NULL;
    *gateway_len = 0;
    *count = 0;
    set_where(where, 0);
    if (buf == NULL)
        return BATCH_ERR_CBOR;
    cbor_dec_init(&c, buf, len);
    /* any array length here, so that a future version with more fields gets VERSION */
    if ((ce = cbor_get_array(&c, &n, SIZE_MAX)) != CBOR_OK)
        goto cbor;
    at = c.off;
    if (n == 0 || (ce = cbor_get_uint(&c, &version)) != CBOR_OK) {
        ce = n == 0 ? CBOR_ERR_TYPE : ce;
        goto cbor;
    }
    if (version != BATCH_VERSION) {
        set_where(where, at);
        return BATCH_ERR_VERSION;
    }
    if (n != BATCH_FIELDS) {
        set_where(where, 0);
        return BATCH_ERR_CBOR;
    }
    at = c.off;
    if ((ce = cbor_get_text(&c, &gw, &gl, BATCH_GATEWAY_MAX)) != CBOR_OK)
        goto cbor;
    if (gl == 0) {
        set_where(where, at);
        return BATCH_ERR_FIELD;
    }
    at = c.off;
    if ((ce = cbor_get_array(&c, &entries, BATCH_ENTRIES_MAX)) != CBOR_OK)
        goto cbor;
    if (entries == 0) {
        set_where(where, at);
        return BATCH_ERR_FIELD;
    }
    d->buf = buf;
    d->len = len;
    d->off = c.off;
    d->left = entries;
    *gateway = gw;
    *gateway_len = gl;
    *count = entries;
    return BATCH_OK;
cbor:
    set_where(where, c.off);
    return from_cbor(ce);
}

enum batch_err batch_dec_next(struct batch_dec *d, struct batch_entry *en, size_t *where)
{
    struct cbor_dec c;
    struct batch_entry e;
    enum cbor_err ce;
    size_t n = 0, at;

    memset(en, 0, sizeof(*en));
    memset(&e, 0, sizeof(e));
    set_where(where, d->off);
    if (d->buf == NULL || d->left == 0) /* not initialised, or every entry was read */
        return BATCH_ERR_CBOR;
    cbor_dec_init(&c, d->buf, d->len);
    c.off = d->off;
    if ((ce = cbor_get_array(&c, &n, SIZE_MAX)) != CBOR_OK)
        goto cbor;
    if (n != ENTRY_FIELDS) {
        set_where(where, d->off);
        return BATCH_ERR_CBOR;
    }
    at = c.off;
    if ((ce = cbor_get_text(&c, &e.node, &e.node_len, SIZE_MAX)) != CBOR_OK)
        goto cbor;
    if (msg_node_id_valid(e.node, e.node_len) != 0) {
        set_where(where, at);
        return BATCH_ERR_FIELD;
    }
    at = c.off;
    if ((ce = cbor_get_text(&c, &e.tail, &e.tail_len, BATCH_TAIL_MAX)) != CBOR_OK)
        goto cbor;
    if (e.tail_len == 0) {
        set_where(where, at);
        return BATCH_ERR_FIELD;
    }
    at = c.off;
    if ((ce = cbor_get_uint(&c, &e.seq)) != CBOR_OK)
        goto cbor;
    if (d->started && e.seq <= d->last_seq) {
        set_where(where, at);
        return BATCH_ERR_ORDER;
    }
    if ((ce = cbor_get_uint(&c, &e.ts)) != CBOR_OK)
        goto cbor;
    if ((ce = cbor_get_bytes(&c, &e.payload, &e.payload_len, BATCH_PAYLOAD_MAX)) != CBOR_OK)
        goto cbor;
    if (d->left == 1 && c.off != d->len) { /* the last entry: nothing may trail the batch */
        set_where(where, c.off);
        return BATCH_ERR_CBOR;
    }
    d->off = c.off;
    d->left--;
    d->last_seq = e.seq;
    d->started = 1;
    *en = e;
    set_where(where, 0);
    return BATCH_OK;
cbor:
    set_where(where, c.off);
    return from_cbor(ce);
}

enum batch_err batch_dec_end(const struct batch_dec *d, size_t *where)
{
    set_where(where, d->off);
    if (d->buf == NULL || d->left != 0 || d->off != d->len)
        return BATCH_ERR_CBOR;
    set_where(where, 0);
    return BATCH_OK;
}
