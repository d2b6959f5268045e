/* ota_jobdoc.c: parsing and checking the cloud job path's outside bytes (ota_jobdoc.h). */
#define _GNU_SOURCE
#include "ota_jobdoc.h"
#include "jsonutil.h"

#include <errno.h>
#include <fleetgw/crypto.h>
#include <fleetgw/hex.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int get_hex32(json_object *o, const char *key, bool required, bool *has, uint8_t out[32],
                     char *err, size_t errlen)
{
    json_object *v;
    size_t n = 0;
    if (!json_object_object_get_ex(o, key, &v)) {
        if (!required)
            return 0;
        snprintf(err, errlen, "'image.%s' is required", key);
        return -EINVAL;
    }
    const char *s = json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "";
    if (strlen(s) != 2 * OTA_DIGEST_LEN || hex_decode(s, strlen(s), out, OTA_DIGEST_LEN, &n) != 0 ||
        n != OTA_DIGEST_LEN) {
        snprintf(err, errlen, "'image.%s' must be 64 hex digits", key);
        return -EINVAL;
    }
    if (has != NULL)
        *has = true;
    return 0;
}

static int get_uint(json_object *o, const char *where, const char *key, uint32_t *ret, uint32_t min,
                    uint32_t max, bool required, char *err, size_t errlen)
{
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v)) {
        if (required) {
            snprintf(err, errlen, "'%s.%s' is required", where, key);
            return -EINVAL;
        }
        return 0;
    }
    int64_t x = json_object_get_int64(v);
    if (!json_object_is_type(v, json_type_int) || x < (int64_t)min || x > (int64_t)max) {
        snprintf(err, errlen, "'%s.%s' must be an integer in %u..%u", where, key, (unsigned)min,
                 (unsigned)max);
        return -EINVAL;
    }
    *ret = (uint32_t)x;
    return 0;
}

static int get_object(json_object *o, const char *key, bool required, json_object **ret, char *err,
                      size_t errlen)
{
    json_object *v;
    *ret = NULL;
    if (!json_object_object_get_ex(o, key, &v)) {
        if (!required)
            return 0;
        snprintf(err, errlen, "'%s' is required", key);
        return -EINVAL;
    }
    if (!json_object_is_type(v, json_type_object)) {
        snprintf(err, errlen, "'%s' must be an object", key);
        return -EINVAL;
    }
    *ret = v;
    return 0;
}

/* Digits at p (1..10 of them, value <= max): the position after them, or NULL. */
static const char *number(const char *p, unsigned long max, unsigned long *v)
{
    unsigned long x = 0;
    int n = 0;
    while (*p >= '0' && *p <= '9') {
        if (++n > 10)
            return NULL;
        x = x * 10 + (unsigned long)(*p - '0');
        p++;
    }
    if (n == 0 || x > max)
        return NULL;
    *v = x;
    return p;
}

int ota_version_parse(const char *s, struct image_version *out)
{
    unsigned long maj, min, rev, build = 0;
    const char *p = number(s, 255, &maj);
    if (p == NULL || *p++ != '.' || (p = number(p, 255, &min)) == NULL || *p++ != '.' ||
        (p = number(p, 65535, &rev)) == NULL)
        return -1;
    if (*p == '+' && (p = number(p + 1, 4294967295ul, &build)) == NULL)
        return -1;
    if (*p != '\0')
        return -1;
    out->major = (uint8_t)maj;
    out->minor = (uint8_t)min;
    out->revision = (uint16_t)rev;
    out->build = (uint32_t)build;
    return 0;
}

static int parse_image(json_object *im, struct ota_jobdoc *out, char *err, size_t errlen)
{
    static const char *const known[] = {"sha256", "size", "version", "class", "digest", NULL};
    json_object *v;
    if (json_keys_known(im, "'image'", known, err, errlen) < 0 ||
        get_hex32(im, "sha256", true, NULL, out->sha256, err, errlen) < 0 ||
        get_hex32(im, "digest", false, &out->has_digest, out->digest, err, errlen) < 0 ||
        get_uint(im, "image", "size", &out->size, 1, IMAGE_MAX_LEN, true, err, errlen) < 0)
        return -EINVAL;
    if (json_object_object_get_ex(im, "version", &v)) {
        if (!json_object_is_type(v, json_type_string) ||
            ota_version_parse(json_object_get_string(v), &out->version) != 0) {
            snprintf(err, errlen, "'image.version' must be \"major.minor.revision[+build]\"");
            return -EINVAL;
        }
        out->has_version = true;
    }
    if (json_object_object_get_ex(im, "class", &v)) {
        const char *c = json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "";
        size_t n = strlen(c);
        bool ok = n >= 1 && n <= OTA_CLASS_NAME_MAX;
        for (size_t i = 0; ok && i < n; i++)
            ok = (c[i] >= 'a' && c[i] <= 'z') || (c[i] >= 'A' && c[i] <= 'Z') ||
                 (c[i] >= '0' && c[i] <= '9') || c[i] == '.' || c[i] == '_' || c[i] == '-';
        if (!ok) {
            snprintf(err, errlen, "'image.class' must match [A-Za-z0-9._-]{1,%d}",
                     OTA_CLASS_NAME_MAX);
            return -EINVAL;
        }
        memcpy(out->class_name, c, n + 1);
    }
    return 0;
}

static int parse_campaign(json_object *c, struct ota_jobdoc *out, char *err, size_t errlen)
{
    json_object *v;
    if (json_object_object_get_ex(c, "image", NULL)) {
        snprintf(err, errlen, "'campaign.image' is not allowed: the job's image is the campaign's");
        return -EINVAL;
    }
    if (json_object_object_get_ex(c, "recovery", &v)) {
        if (!json_object_is_type(v, json_type_boolean)) {
            snprintf(err, errlen, "'campaign.recovery' must be true or false");
            return -EINVAL;
        }
        out->recovery = json_object_get_boolean(v);
    }
    const char *s = json_object_to_json_string_ext(c, JSON_C_TO_STRING_PLAIN);
    if (s == NULL || strlen(s) > OTA_JOBDOC_SPEC_MAX) {
        snprintf(err, errlen, "'campaign' is longer than %u bytes", OTA_JOBDOC_SPEC_MAX);
        return -EINVAL;
    }
    memcpy(out->spec, s, strlen(s) + 1);
    return 0;
}

int ota_jobdoc_parse(const char *text, size_t len, struct ota_jobdoc *out, char *err, size_t errlen)
{
    static const char *const known[] = {"image", "campaign", "transfer", NULL};
    static const char *const tknown[] = {"block_size", "timeout_ms", "retries", NULL};
    memset(out, 0, sizeof(*out));
    out->block_size = OTA_JOB_BLOCK_DEF;
    out->timeout_ms = OTA_JOB_TIMEOUT_DEF;
    out->retries = OTA_JOB_RETRIES_DEF;
    if (len == 0 || len > OTA_JOBDOC_MAX) {
        snprintf(err, errlen, "the job document is %zu bytes: 1..%u allowed", len, OTA_JOBDOC_MAX);
        return -EINVAL;
    }
    if (memchr(text, '\0', len) != NULL) {
        snprintf(err, errlen, "the job document contains a NUL byte");
        return -EINVAL;
    }
    json_tokener *tok = json_tokener_new_ex(16);
    if (tok == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    json_object *o = json_tokener_parse_ex(tok, text, (int)len);
    enum json_tokener_error je = json_tokener_get_error(tok);
    size_t used = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    int r = -EINVAL;
    if (o == NULL || je != json_tokener_success || used != len) {
        snprintf(err, errlen, "the job document is not JSON (at byte %zu: %s)", used,
                 je == json_tokener_continue  ? "it ends early"
                 : je != json_tokener_success ? json_tokener_error_desc(je)
                                              : "text after the object");
        goto out;
    }
    if (!json_object_is_type(o, json_type_object)) {
        snprintf(err, errlen, "the job document is not a JSON object");
        goto out;
    }
    json_object *im, *c, *t;
    if (json_keys_known(o, "the job document", known, err, errlen) < 0 ||
        get_object(o, "image", true, &im, err, errlen) < 0 ||
        get_object(o, "campaign", true, &c, err, errlen) < 0 ||
        get_object(o, "transfer", false, &t, err, errlen) < 0 ||
        parse_image(im, out, err, errlen) < 0 || parse_campaign(c, out, err, errlen) < 0)
        goto out;
    if (t != NULL &&
        (json_keys_known(t, "'transfer'", tknown, err, errlen) < 0 ||
         get_uint(t, "transfer", "block_size", &out->block_size, OTA_JOB_BLOCK_MIN,
                  OTA_JOB_BLOCK_MAX, false, err, errlen) < 0 ||
         get_uint(t, "transfer", "timeout_ms", &out->timeout_ms, 100, 600000, false, err, errlen) <
             0 ||
         get_uint(t, "transfer", "retries", &out->retries, 0, 1000, false, err, errlen) < 0))
        goto out;
    r = 0;
out:
    if (o != NULL)
        json_object_put(o);
    if (r < 0) {
        struct ota_jobdoc z = {0};
        *out = z;
    }
    return r;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

int ota_job_chunk_parse(const uint8_t *buf, size_t len, struct ota_job_chunk *out, char *err,
                        size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (len < OTA_JOB_CHUNK_HDR || memcmp(buf, OTA_JOB_CHUNK_MAGIC, 4) != 0) {
        snprintf(err, errlen,
                 "not a chunk reply (%zu bytes; a reply starts with the %u-byte "
                 "header \"FGJD\" offset length sha256)",
                 len, OTA_JOB_CHUNK_HDR);
        return -EINVAL;
    }
    uint32_t off = be32(buf + 4), n = be32(buf + 8);
    if ((size_t)n != len - OTA_JOB_CHUNK_HDR || n == 0 || n > OTA_JOB_BLOCK_MAX) {
        snprintf(err, errlen, "the chunk at offset %u says %u bytes but carries %zu (1..%u)",
                 (unsigned)off, (unsigned)n, len - OTA_JOB_CHUNK_HDR, OTA_JOB_BLOCK_MAX);
        return -EINVAL;
    }
    uint8_t h[OTA_DIGEST_LEN];
    if (crypto_sha256(buf + OTA_JOB_CHUNK_HDR, n, h) != 0) {
        snprintf(err, errlen, "cannot hash the chunk");
        return -EIO;
    }
    if (crypto_memcmp_ct(h, buf + 12, OTA_DIGEST_LEN) != 0) {
        snprintf(err, errlen, "the chunk at offset %u does not match its SHA-256", (unsigned)off);
        return -EBADMSG;
    }
    out->offset = off;
    out->data = buf + OTA_JOB_CHUNK_HDR;
    out->len = n;
    return 0;
}

int ota_job_chunk_check(const struct ota_job_chunk *c, uint32_t want_off, uint32_t want_len,
                        uint32_t size, char *err, size_t errlen)
{
    if (c->offset != want_off) {
        snprintf(err, errlen, "a chunk at offset %u, but offset %u was asked for",
                 (unsigned)c->offset, (unsigned)want_off);
        return -ERANGE;
    }
    if (want_off >= size || c->len > size - want_off) {
        snprintf(err, errlen, "the chunk at offset %u (%zu bytes) ends beyond the image's %u bytes",
                 (unsigned)c->offset, c->len, (unsigned)size);
        return -ERANGE;
    }
    uint32_t expect = size - want_off < want_len ? size - want_off : want_len;
    if (c->len != expect) {
        snprintf(err, errlen, "the chunk at offset %u has %zu bytes, %u were asked for",
                 (unsigned)c->offset, c->len, (unsigned)expect);
        return -ERANGE;
    }
    return 0;
}

size_t ota_job_chunk_encode(uint32_t offset, const uint8_t *data, size_t len, uint8_t *out,
                            size_t cap)
{
    if (len > OTA_JOB_BLOCK_MAX || cap < OTA_JOB_CHUNK_HDR + len)
        return 0;
    memcpy(out, OTA_JOB_CHUNK_MAGIC, 4);
    put_be32(out + 4, offset);
    put_be32(out + 8, (uint32_t)len);
    if (crypto_sha256(data, len, out + 12) != 0)
        return 0;
    memcpy(out + OTA_JOB_CHUNK_HDR, data, len);
    return OTA_JOB_CHUNK_HDR + len;
}

size_t ota_job_get_json(uint32_t offset, uint32_t length, const char *gateway, char *out,
                        size_t cap)
{
    json_object *o = json_object_new_object();
    if (o == NULL)
        return 0;
    json_object_object_add(o, "offset", json_object_new_int64(offset));
    json_object_object_add(o, "length", json_object_new_int64(length));
    json_object_object_add(o, "gateway", json_object_new_string(gateway));
    const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
    size_t n = s != NULL ? strlen(s) : 0;
    if (n == 0 || n + 1 > cap) {
        json_object_put(o);
        return 0;
    }
    memcpy(out, s, n + 1);
    json_object_put(o);
    return n;
}
