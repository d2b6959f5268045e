/* The metadata document of a stored OTA image (contract in ota_meta.h): struct
 * ota_image_meta to JSON and back. No files: ota_store.c reads and writes them. */
#define _GNU_SOURCE
#include "ota_meta.h"
#include "ota_classes.h"

#include <errno.h>
#include <fleetgw/hex.h>
#include <json-c/json.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void json_add_hex(json_object *o, const char *k, const uint8_t *p, size_t n)
{
    char hex[2 * OTA_DIGEST_LEN + 1];
    hex_encode(p, n, hex);
    json_object_object_add(o, k, json_object_new_string(hex));
}

char *ota_meta_to_json(const struct ota_image_meta *m)
{
    char ver[48];
    json_object *o = json_object_new_object();
    if (o == NULL)
        return NULL;
    ota_version_format(&m->version, ver, sizeof(ver));
    json_add_hex(o, "digest", m->digest, OTA_DIGEST_LEN);
    json_add_hex(o, "file_sha256", m->file_sha256, OTA_DIGEST_LEN);
    json_object_object_add(o, "size", json_object_new_int64(m->size));
    json_object_object_add(o, "version", json_object_new_string(ver));
    json_object_object_add(o, "version_major", json_object_new_int(m->version.major));
    json_object_object_add(o, "version_minor", json_object_new_int(m->version.minor));
    json_object_object_add(o, "version_revision", json_object_new_int(m->version.revision));
    json_object_object_add(o, "version_build", json_object_new_int64(m->version.build));
    json_object_object_add(o, "security_counter",
                           m->has_counter ? json_object_new_int64(m->security_counter) : NULL);
    json_object_object_add(o, "class", json_object_new_string(m->class_name));
    json_add_hex(o, "signer_id", m->signer_id, OTA_DIGEST_LEN);
    json_object_object_add(o, "staged", json_object_new_int64(m->staged));
    json_object_object_add(o, "source", json_object_new_string(m->source));
    json_object_object_add(o, "released", json_object_new_boolean(m->released));
    const char *t = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY);
    char *copy = t != NULL ? strdup(t) : NULL;
    json_object_put(o);
    return copy;
}

static int get_int(json_object *o, const char *k, int64_t lo, int64_t hi, int64_t *ret)
{
    json_object *v = NULL;
    if (!json_object_object_get_ex(o, k, &v) || !json_object_is_type(v, json_type_int))
        return -EBADMSG;
    errno = 0;
    int64_t x = json_object_get_int64(v);
    if (errno != 0 || x < lo || x > hi)
        return -EBADMSG;
    *ret = x;
    return 0;
}

static int get_hex(json_object *o, const char *k, uint8_t out[OTA_DIGEST_LEN])
{
    json_object *v = NULL;
    size_t n = 0, dl = 0;
    if (!json_object_object_get_ex(o, k, &v))
        return -EBADMSG;
    const char *s = ota_json_str(v, &n);
    if (s == NULL || n != OTA_DIGEST_HEX || hex_decode(s, n, out, OTA_DIGEST_LEN, &dl) != 0)
        return -EBADMSG;
    return 0;
}

static int get_str(json_object *o, const char *k, char *out, size_t cap)
{
    json_object *v = NULL;
    size_t n = 0;
    if (!json_object_object_get_ex(o, k, &v))
        return -EBADMSG;
    const char *s = ota_json_str(v, &n);
    if (s == NULL || n >= cap)
        return -EBADMSG;
    memcpy(out, s, n + 1);
    return 0;
}

static int meta_from_json(json_object *o, struct ota_image_meta *m)
{
    int64_t x = 0;
    json_object *v = NULL;
    if (!json_object_is_type(o, json_type_object))
        return -EBADMSG;
    if (get_hex(o, "digest", m->digest) < 0 || get_hex(o, "file_sha256", m->file_sha256) < 0 ||
        get_hex(o, "signer_id", m->signer_id) < 0)
        return -EBADMSG;
    hex_encode(m->digest, OTA_DIGEST_LEN, m->digest_hex);
    if (get_int(o, "size", 1, IMAGE_MAX_LEN, &x) < 0)
        return -EBADMSG;
    m->size = (uint32_t)x;
    if (get_int(o, "version_major", 0, UINT8_MAX, &x) < 0)
        return -EBADMSG;
    m->version.major = (uint8_t)x;
    if (get_int(o, "version_minor", 0, UINT8_MAX, &x) < 0)
        return -EBADMSG;
    m->version.minor = (uint8_t)x;
    if (get_int(o, "version_revision", 0, UINT16_MAX, &x) < 0)
        return -EBADMSG;
    m->version.revision = (uint16_t)x;
    if (get_int(o, "version_build", 0, UINT32_MAX, &x) < 0)
        return -EBADMSG;
    m->version.build = (uint32_t)x;
    if (!json_object_object_get_ex(o, "security_counter", &v))
        return -EBADMSG;
    if (v != NULL) {
        if (get_int(o, "security_counter", 0, UINT32_MAX, &x) < 0)
            return -EBADMSG;
        m->has_counter = true;
        m->security_counter = (uint32_t)x;
    }
    if (get_str(o, "class", m->class_name, sizeof(m->class_name)) < 0 ||
        get_str(o, "source", m->source, sizeof(m->source)) < 0)
        return -EBADMSG;
    if (get_int(o, "staged", INT64_MIN, INT64_MAX, &m->staged) < 0)
        return -EBADMSG;
    if (!json_object_object_get_ex(o, "released", &v) || !json_object_is_type(v, json_type_boolean))
        return -EBADMSG;
    m->released = json_object_get_boolean(v) != 0;
    return 0;
}

int ota_meta_parse(const char *text, struct ota_image_meta *ret)
{
    struct ota_image_meta m;
    memset(&m, 0, sizeof(m));
    json_object *o = json_tokener_parse(text);
    if (o == NULL)
        return -EBADMSG;
    int r = meta_from_json(o, &m);
    json_object_put(o);
    if (r < 0)
        return r;
    *ret = m;
    return 0;
}
