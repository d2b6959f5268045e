/* CBOR (RFC 8949) encoder and strict pull decoder. See fleetgw/cbor.h for the policy. */
#include "fleetgw/cbor.h"

#include <string.h>

const char *cbor_err_str(enum cbor_err err)
{
    switch (err) {
    case CBOR_OK:
        return "ok";
    case CBOR_ERR_ARG:
        return "invalid argument";
    case CBOR_ERR_NOSPACE:
        return "output buffer too small";
    case CBOR_ERR_TRUNCATED:
        return "input truncated";
    case CBOR_ERR_INDEFINITE:
        return "indefinite length not allowed";
    case CBOR_ERR_RESERVED:
        return "reserved additional information (not well-formed)";
    case CBOR_ERR_NONSHORTEST:
        return "argument not in shortest form";
    case CBOR_ERR_UNSUPPORTED:
        return "unsupported item (float or simple value)";
    case CBOR_ERR_TYPE:
        return "unexpected item type";
    case CBOR_ERR_RANGE:
        return "value out of range";
    case CBOR_ERR_DEPTH:
        return "nesting too deep";
    case CBOR_ERR_UTF8:
        return "text string is not valid UTF-8";
    case CBOR_ERR_TRAILING:
        return "trailing bytes after item";
    }
    return "unknown error";
}

/* ---- Encoder -------------------------------------------------------------------------- */

void cbor_enc_init(struct cbor_enc *e, uint8_t *buf, size_t cap)
{
    e->buf = buf;
    e->cap = buf == NULL ? 0 : cap;
    e->len = 0;
    e->err = CBOR_OK;
}

void cbor_put_raw(struct cbor_enc *e, const uint8_t *data, size_t len)
{
    if (e->err != CBOR_OK)
        return;
    if (data == NULL && len > 0) {
        e->err = CBOR_ERR_ARG;
        return;
    }
    if (e->buf == NULL) {
        if (len > SIZE_MAX - e->len)
            e->err = CBOR_ERR_NOSPACE;
        else
            e->len += len;
        return;
    }
    if (len > e->cap - e->len) {
        e->err = CBOR_ERR_NOSPACE;
        return;
    }
    if (len > 0)
        memcpy(e->buf + e->len, data, len);
    e->len += len;
}

size_t cbor_head_len(uint64_t v)
{
    if (v < 24u)
        return 1;
    if (v <= 0xffu)
        return 2;
    if (v <= 0xffffu)
        return 3;
    if (v <= 0xffffffffu)
        return 5;
    return 9;
}

static void put_head(struct cbor_enc *e, unsigned major, uint64_t v)
{
    uint8_t h[9];
    size_t n = cbor_head_len(v);
    uint8_t ib = (uint8_t)(major << 5);

    if (n == 1) {
        h[0] = (uint8_t)(ib | (uint8_t)v);
    } else {
        /* additional information 24..27 for 1, 2, 4, 8 argument bytes */
        uint8_t ai = n == 2 ? 24u : n == 3 ? 25u : n == 5 ? 26u : 27u;
        h[0] = (uint8_t)(ib | ai);
        for (size_t i = 1; i < n; i++)
            h[i] = (uint8_t)(v >> (8u * (n - 1u - i)));
    }
    cbor_put_raw(e, h, n);
}

void cbor_put_uint(struct cbor_enc *e, uint64_t v)
{
    put_head(e, CBOR_MAJOR_UINT, v);
}

void cbor_put_int(struct cbor_enc *e, int64_t v)
{
    if (v >= 0)
        put_head(e, CBOR_MAJOR_UINT, (uint64_t)v);
    else
        put_head(e, CBOR_MAJOR_NINT, (uint64_t)(-(v + 1)));
}

void cbor_put_bytes_head(struct cbor_enc *e, size_t len)
{
    put_head(e, CBOR_MAJOR_BYTES, (uint64_t)len);
}

void cbor_put_bytes(struct cbor_enc *e, const uint8_t *data, size_t len)
{
    if (e->err == CBOR_OK && data == NULL && len > 0)
        e->err = CBOR_ERR_ARG;
    put_head(e, CBOR_MAJOR_BYTES, (uint64_t)len);
    cbor_put_raw(e, data, len);
}

void cbor_put_text(struct cbor_enc *e, const char *text, size_t len)
{
    if (e->err == CBOR_OK && text == NULL && len > 0)
        e->err = CBOR_ERR_ARG;
    if (e->err == CBOR_OK && cbor_utf8_valid((const uint8_t *)text, len) != 0)
        e->err = CBOR_ERR_UTF8;
    put_head(e, CBOR_MAJOR_TEXT, (uint64_t)len);
    cbor_put_raw(e, (const uint8_t *)text, len);
}

void cbor_put_array(struct cbor_enc *e, size_t count)
{
    put_head(e, CBOR_MAJOR_ARRAY, (uint64_t)count);
}

void cbor_put_map(struct cbor_enc *e, size_t pairs)
{
    put_head(e, CBOR_MAJOR_MAP, (uint64_t)pairs);
}

void cbor_put_tag(struct cbor_enc *e, uint64_t tag)
{
    put_head(e, CBOR_MAJOR_TAG, tag);
}

void cbor_put_bool(struct cbor_enc *e, int value)
{
    put_head(e, CBOR_MAJOR_SIMPLE, value ? CBOR_SIMPLE_TRUE : CBOR_SIMPLE_FALSE);
}

void cbor_put_null(struct cbor_enc *e)
{
    put_head(e, CBOR_MAJOR_SIMPLE, CBOR_SIMPLE_NULL);
}

enum cbor_err cbor_enc_finish(const struct cbor_enc *e, size_t *len)
{
    if (e->err == CBOR_OK && len != NULL)
        *len = e->len;
    return e->err;
}

/* ---- UTF-8 ---------------------------------------------------------------------------- */

int cbor_utf8_valid(const uint8_t *s, size_t len)
{
    size_t i = 0;
    if (s == NULL)
        return len == 0 ? 0 : -1;
    while (i < len) {
        uint8_t c = s[i];
        size_t n;
        uint32_t cp, min;
        if (c < 0x80u) {
            i++;
            continue;
        }
        if (c >= 0xc2u && c <= 0xdfu) {
            n = 1;
            cp = c & 0x1fu;
            min = 0x80u;
        } else if (c >= 0xe0u && c <= 0xefu) {
            n = 2;
            cp = c & 0x0fu;
            min = 0x800u;
        } else if (c >= 0xf0u && c <= 0xf4u) {
            n = 3;
            cp = c & 0x07u;
            min = 0x10000u;
        } else {
            return -1;
        }
        if (n > len - i - 1u)
            return -1;
        for (size_t k = 1; k <= n; k++) {
            uint8_t cc = s[i + k];
            if ((cc & 0xc0u) != 0x80u)
                return -1;
            cp = (cp << 6) | (cc & 0x3fu);
        }
        if (cp < min || cp > 0x10ffffu || (cp >= 0xd800u && cp <= 0xdfffu))
            return -1;
        i += n + 1u;
    }
    return 0;
}

/* ---- Decoder -------------------------------------------------------------------------- */

void cbor_dec_init(struct cbor_dec *d, const uint8_t *buf, size_t len)
{
    d->buf = buf;
    d->len = buf == NULL ? 0 : len;
    d->off = 0;
}

size_t cbor_dec_remaining(const struct cbor_dec *d)
{
    return d->len - d->off;
}

enum cbor_err cbor_dec_done(const struct cbor_dec *d)
{
    return d->off == d->len ? CBOR_OK : CBOR_ERR_TRAILING;
}

/* Decodes the head at buf[off..len) into *it; *used is the number of bytes of the whole item
 * for strings (head + content) and of the head alone for everything else. */
static enum cbor_err read_head(const uint8_t *buf, size_t len, size_t off, struct cbor_item *it,
                               size_t *used)
{
    enum cbor_err err = CBOR_OK;
    size_t avail, n = 0;
    uint64_t v = 0;
    uint8_t ib, ai;
    unsigned major;

    memset(it, 0, sizeof(*it));
    *used = 0;
    if (off >= len) {
        err = CBOR_ERR_TRUNCATED;
        goto out;
    }
    ib = buf[off];
    major = (unsigned)(ib >> 5);
    ai = (uint8_t)(ib & 0x1fu);
    avail = len - off - 1u;

    if (ai >= 28u) {
        err = ai == 31u ? CBOR_ERR_INDEFINITE : CBOR_ERR_RESERVED;
        goto out;
    }
    if (major == CBOR_MAJOR_SIMPLE) {
        /* 20..22 only: other simple values (incl. 24 + byte) and floats (25..27) are refused */
        if (ai < CBOR_SIMPLE_FALSE || ai > CBOR_SIMPLE_NULL) {
            err = CBOR_ERR_UNSUPPORTED;
            goto out;
        }
        v = ai;
    } else if (ai < 24u) {
        v = ai;
    } else {
        n = (size_t)1u << (ai - 24u);
        if (n > avail) {
            err = CBOR_ERR_TRUNCATED;
            goto out;
        }
        for (size_t i = 0; i < n; i++)
            v = (v << 8) | buf[off + 1u + i];
        if ((ai == 24u && v < 24u) || (ai == 25u && v <= 0xffu) || (ai == 26u && v <= 0xffffu) ||
            (ai == 27u && v <= 0xffffffffu)) {
            err = CBOR_ERR_NONSHORTEST;
            goto out;
        }
    }
    avail -= n;
    switch (major) {
    case CBOR_MAJOR_BYTES:
    case CBOR_MAJOR_TEXT:
        if (v > (uint64_t)avail) {
            err = CBOR_ERR_TRUNCATED;
            goto out;
        }
        it->ptr = buf + off + 1u + n;
        if (major == CBOR_MAJOR_TEXT && cbor_utf8_valid(it->ptr, (size_t)v) != 0) {
            err = CBOR_ERR_UTF8;
            goto out;
        }
        *used = 1u + n + (size_t)v;
        break;
    case CBOR_MAJOR_ARRAY:
        /* every element takes at least one byte */
        if (v > (uint64_t)avail) {
            err = CBOR_ERR_TRUNCATED;
            goto out;
        }
        *used = 1u + n;
        break;
    case CBOR_MAJOR_MAP:
        if (v > (uint64_t)(avail / 2u)) {
            err = CBOR_ERR_TRUNCATED;
            goto out;
        }
        *used = 1u + n;
        break;
    default:
        *used = 1u + n;
        break;
    }
    it->major = (enum cbor_major)major;
    it->val = v;
out:
    if (err != CBOR_OK) {
        memset(it, 0, sizeof(*it));
        *used = 0;
    }
    return err;
}

enum cbor_err cbor_peek(const struct cbor_dec *d, struct cbor_item *it)
{
    size_t used;
    return read_head(d->buf, d->len, d->off, it, &used);
}

enum cbor_err cbor_next(struct cbor_dec *d, struct cbor_item *it)
{
    size_t used;
    enum cbor_err err = read_head(d->buf, d->len, d->off, it, &used);
    if (err == CBOR_OK)
        d->off += used;
    return err;
}

enum cbor_err cbor_skip(struct cbor_dec *d)
{
    /* pending[k]: items still to read at nesting level k (level 0 = the item itself) */
    uint64_t pending[CBOR_MAX_DEPTH + 1u];
    size_t depth = 1, off = d->off;
    enum cbor_err err = CBOR_OK;

    pending[0] = 1;
    while (depth > 0) {
        struct cbor_item it;
        size_t used;
        uint64_t count = 0;
        if (pending[depth - 1u] == 0) {
            depth--;
            continue;
        }
        pending[depth - 1u]--;
        err = read_head(d->buf, d->len, off, &it, &used);
        if (err != CBOR_OK)
            goto out;
        off += used;
        if (it.major == CBOR_MAJOR_ARRAY)
            count = it.val;
        else if (it.major == CBOR_MAJOR_MAP)
            count = it.val * 2u; /* val <= remaining/2: no overflow */
        else if (it.major == CBOR_MAJOR_TAG)
            count = 1;
        if (count > 0) {
            if (depth > CBOR_MAX_DEPTH) {
                err = CBOR_ERR_DEPTH;
                goto out;
            }
            pending[depth++] = count;
        }
    }
    d->off = off;
out:
    return err;
}

enum cbor_err cbor_check(const uint8_t *buf, size_t len)
{
    struct cbor_dec d;
    enum cbor_err err;
    if (buf == NULL)
        return CBOR_ERR_ARG;
    cbor_dec_init(&d, buf, len);
    err = cbor_skip(&d);
    if (err == CBOR_OK)
        err = cbor_dec_done(&d);
    return err;
}

/* Reads the next head if it has the wanted major type. */
static enum cbor_err next_of(struct cbor_dec *d, enum cbor_major major, struct cbor_item *it)
{
    size_t used;
    enum cbor_err err = read_head(d->buf, d->len, d->off, it, &used);
    if (err != CBOR_OK)
        return err;
    if (it->major != major)
        return CBOR_ERR_TYPE;
    d->off += used;
    return CBOR_OK;
}

enum cbor_err cbor_get_uint(struct cbor_dec *d, uint64_t *v)
{
    struct cbor_item it;
    enum cbor_err err = next_of(d, CBOR_MAJOR_UINT, &it);
    *v = err == CBOR_OK ? it.val : 0;
    return err;
}

enum cbor_err cbor_get_int(struct cbor_dec *d, int64_t *v)
{
    struct cbor_item it;
    size_t used;
    enum cbor_err err = read_head(d->buf, d->len, d->off, &it, &used);
    *v = 0;
    if (err != CBOR_OK)
        return err;
    if (it.major != CBOR_MAJOR_UINT && it.major != CBOR_MAJOR_NINT)
        return CBOR_ERR_TYPE;
    if (it.val > (uint64_t)INT64_MAX)
        return CBOR_ERR_RANGE;
    *v = it.major == CBOR_MAJOR_UINT ? (int64_t)it.val : -1 - (int64_t)it.val;
    d->off += used;
    return CBOR_OK;
}

static enum cbor_err get_string(struct cbor_dec *d, enum cbor_major major, const uint8_t **ptr,
                                size_t *len, size_t max_len)
{
    struct cbor_item it;
    size_t used;
    enum cbor_err err = read_head(d->buf, d->len, d->off, &it, &used);
    *ptr = NULL;
    *len = 0;
    if (err != CBOR_OK)
        return err;
    if (it.major != major)
        return CBOR_ERR_TYPE;
    if (it.val > (uint64_t)max_len)
        return CBOR_ERR_RANGE;
    *ptr = it.ptr;
    *len = (size_t)it.val;
    d->off += used;
    return CBOR_OK;
}

enum cbor_err cbor_get_bytes(struct cbor_dec *d, const uint8_t **ptr, size_t *len, size_t max_len)
{
    return get_string(d, CBOR_MAJOR_BYTES, ptr, len, max_len);
}

enum cbor_err cbor_get_text(struct cbor_dec *d, const char **ptr, size_t *len, size_t max_len)
{
    const uint8_t *p;
    enum cbor_err err = get_string(d, CBOR_MAJOR_TEXT, &p, len, max_len);
    *ptr = (const char *)p;
    return err;
}

static enum cbor_err get_count(struct cbor_dec *d, enum cbor_major major, size_t *count,
                               size_t max_count)
{
    struct cbor_item it;
    size_t used;
    enum cbor_err err = read_head(d->buf, d->len, d->off, &it, &used);
    *count = 0;
    if (err != CBOR_OK)
        return err;
    if (it.major != major)
        return CBOR_ERR_TYPE;
    if (it.val > (uint64_t)max_count)
        return CBOR_ERR_RANGE;
    *count = (size_t)it.val;
    d->off += used;
    return CBOR_OK;
}

enum cbor_err cbor_get_array(struct cbor_dec *d, size_t *count, size_t max_count)
{
    return get_count(d, CBOR_MAJOR_ARRAY, count, max_count);
}

enum cbor_err cbor_get_map(struct cbor_dec *d, size_t *pairs, size_t max_pairs)
{
    return get_count(d, CBOR_MAJOR_MAP, pairs, max_pairs);
}

enum cbor_err cbor_get_tag(struct cbor_dec *d, uint64_t *tag)
{
    struct cbor_item it;
    enum cbor_err err = next_of(d, CBOR_MAJOR_TAG, &it);
    *tag = err == CBOR_OK ? it.val : 0;
    return err;
}

enum cbor_err cbor_get_bool(struct cbor_dec *d, int *value)
{
    struct cbor_item it;
    size_t used;
    enum cbor_err err = read_head(d->buf, d->len, d->off, &it, &used);
    *value = 0;
    if (err != CBOR_OK)
        return err;
    if (it.major != CBOR_MAJOR_SIMPLE ||
        (it.val != CBOR_SIMPLE_FALSE && it.val != CBOR_SIMPLE_TRUE))
        return CBOR_ERR_TYPE;
    *value = it.val == CBOR_SIMPLE_TRUE;
    d->off += used;
    return CBOR_OK;
}

enum cbor_err cbor_get_null(struct cbor_dec *d)
{
    struct cbor_item it;
    size_t used;
    enum cbor_err err = read_head(d->buf, d->len, d->off, &it, &used);
    if (err != CBOR_OK)
        return err;
    if (it.major != CBOR_MAJOR_SIMPLE || it.val != CBOR_SIMPLE_NULL)
        return CBOR_ERR_TYPE;
    d->off += used;
    return CBOR_OK;
}
