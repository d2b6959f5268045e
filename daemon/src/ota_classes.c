/* The device classes of the OTA image store (contract in ota_classes.h): ota.classes_file
 * parsed and checked (every error names the class index, name and key), and the lookups by
 * name, by UUID_CID and of an allowed signer. Library code: returns errors, never logs. */
#define _GNU_SOURCE
#include "jsonutil.h"
#include "ota_classes.h"
#include "readfile.h"

#include <errno.h>
#include <fcntl.h>
#include <fleetgw/hex.h>
#include <fleetgw/msg.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OTA_CLASSES_MAX_FILE (1024 * 1024)
#define OTA_DEFAULT_ALIGN    8u
#define OTA_SLOT_MIN         1024u

static int cls_fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int cls_fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -EINVAL;
}

static bool valid_class_name(const char *s, size_t n)
{
    if (n == 0 || n > OTA_CLASS_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" (either case) into 16 bytes. */
static int parse_uuid(const char *s, size_t n, uint8_t out[IMAGE_UUID_LEN])
{
    if (n != 36)
        return -1;
    size_t o = 0;
    for (size_t i = 0; i < 36;) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return -1;
            i++;
            continue;
        }
        int hi = hex_value(s[i]), lo = hex_value(s[i + 1]);
        if (hi < 0 || lo < 0 || i + 1 == 8 || i + 1 == 13 || i + 1 == 18 || i + 1 == 23)
            return -1;
        out[o++] = (uint8_t)(hi << 4 | lo);
        i += 2;
    }
    return o == IMAGE_UUID_LEN ? 0 : -1;
}

const char *ota_json_str(json_object *v, size_t *len)
{
    if (!json_object_is_type(v, json_type_string))
        return NULL;
    const char *s = json_object_get_string(v);
    *len = (size_t)json_object_get_string_len(v);
    return strlen(s) == *len ? s : NULL;
}

static int class_int(json_object *v, const char *where, const char *key, int64_t lo, int64_t hi,
                     int64_t *ret, char *err, size_t errlen)
{
    if (!json_object_is_type(v, json_type_int))
        return cls_fail(err, errlen, "%s: key '%s': expected an integer, found %s", where, key,
                        json_type_word(v));
    errno = 0;
    int64_t x = json_object_get_int64(v);
    if (errno != 0 || x < lo || x > hi)
        return cls_fail(err, errlen, "%s: key '%s': value %s is out of range [%lld, %lld]", where,
                        key, json_object_to_json_string(v), (long long)lo, (long long)hi);
    *ret = x;
    return 0;
}

static int class_uuid(json_object *v, const char *where, const char *key, uint8_t out[16],
                      char *err, size_t errlen)
{
    size_t n = 0;
    const char *s = ota_json_str(v, &n);
    if (s == NULL || parse_uuid(s, n, out) != 0)
        return cls_fail(err, errlen,
                        "%s: key '%s': expected a UUID string "
                        "(xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)",
                        where, key);
    return 0;
}

static int class_signers(json_object *v, const char *where, struct ota_class *c, char *err,
                         size_t errlen)
{
    if (!json_object_is_type(v, json_type_array))
        return cls_fail(err, errlen, "%s: key 'signers': expected an array, found %s", where,
                        json_type_word(v));
    size_t n = json_object_array_length(v);
    if (n < 1 || n > OTA_CLASS_SIGNERS)
        return cls_fail(err, errlen, "%s: key 'signers': %zu entries, expected 1..%d", where, n,
                        OTA_CLASS_SIGNERS);
    for (size_t i = 0; i < n; i++) {
        size_t sl = 0, dl = 0;
        const char *s = ota_json_str(json_object_array_get_idx(v, i), &sl);
        if (s == NULL || sl != OTA_DIGEST_HEX ||
            hex_decode(s, sl, c->signers[i], OTA_DIGEST_LEN, &dl) != 0 || dl != OTA_DIGEST_LEN)
            return cls_fail(err, errlen,
                            "%s: key 'signers': entry %zu is not 64 hex digits (the SHA-256 of "
                            "the signer's SubjectPublicKeyInfo)",
                            where, i);
        for (size_t j = 0; j < i; j++)
            if (memcmp(c->signers[j], c->signers[i], OTA_DIGEST_LEN) == 0)
                return cls_fail(err, errlen, "%s: key 'signers': entry %zu repeats entry %zu",
                                where, i, j);
    }
    c->n_signers = n;
    return 0;
}

static int parse_class(json_object *o, size_t idx, struct ota_class *c, char *err, size_t errlen)
{
    char where[OTA_CLASS_NAME_MAX + 64];
    int64_t x = 0;
    int r;

    memset(c, 0, sizeof(*c));
    snprintf(where, sizeof(where), "classes[%zu]", idx);
    if (!json_object_is_type(o, json_type_object))
        return cls_fail(err, errlen, "%s: expected an object, found %s", where, json_type_word(o));
    json_object *nv = NULL;
    if (!json_object_object_get_ex(o, "name", &nv))
        return cls_fail(err, errlen, "%s: key 'name' is required and missing", where);
    size_t nl = 0;
    const char *name = ota_json_str(nv, &nl);
    if (name == NULL || !valid_class_name(name, nl))
        return cls_fail(err, errlen,
                        "%s: key 'name': expected a string of 1..%d characters "
                        "A-Z a-z 0-9 . _ -",
                        where, OTA_CLASS_NAME_MAX);
    memcpy(c->name, name, nl + 1);
    snprintf(where, sizeof(where), "classes[%zu] (\"%s\")", idx, c->name);

    bool have_slot = false, have_signers = false;
    c->flash_align = OTA_DEFAULT_ALIGN;
    c->max_sectors = IMAGE_DEFAULT_MAX_SECTORS;
    json_object_object_foreach(o, key, v)
    {
        if (strcmp(key, "name") == 0)
            continue;
        if (strcmp(key, "cid") == 0) {
            if ((r = class_uuid(v, where, key, c->cid, err, errlen)) < 0)
                return r;
            c->has_cid = true;
        } else if (strcmp(key, "vid") == 0) {
            if ((r = class_uuid(v, where, key, c->vid, err, errlen)) < 0)
                return r;
            c->has_vid = true;
        } else if (strcmp(key, "slot_size") == 0) {
            if ((r = class_int(v, where, key, OTA_SLOT_MIN, IMAGE_MAX_LEN, &x, err, errlen)) < 0)
                return r;
            c->slot_size = (uint32_t)x;
            have_slot = true;
        } else if (strcmp(key, "signers") == 0) {
            if ((r = class_signers(v, where, c, err, errlen)) < 0)
                return r;
            have_signers = true;
        } else if (strcmp(key, "min_security_counter") == 0) {
            if ((r = class_int(v, where, key, 0, UINT32_MAX, &x, err, errlen)) < 0)
                return r;
            c->min_security_counter = (uint32_t)x;
        } else if (strcmp(key, "flash_align") == 0) {
            if ((r = class_int(v, where, key, 1, 32, &x, err, errlen)) < 0)
                return r;
            if ((x & (x - 1)) != 0)
                return cls_fail(err, errlen,
                                "%s: key 'flash_align': %lld is not 1, 2, 4, 8, "
                                "16 or 32",
                                where, (long long)x);
            c->flash_align = (uint32_t)x;
        } else if (strcmp(key, "max_sectors") == 0) {
            if ((r = class_int(v, where, key, 1, IMAGE_MAX_SECTORS_LIMIT, &x, err, errlen)) < 0)
                return r;
            c->max_sectors = (uint32_t)x;
        } else if (strcmp(key, "chunk_size") == 0) {
            /* what the class's nodes can take in one MQTT message (their receive buffer) */
            if ((r = class_int(v, where, key, MSG_CHUNK_MIN, MSG_CHUNK_MAX, &x, err, errlen)) < 0)
                return r;
            c->chunk_size = (uint32_t)x;
        } else {
            return cls_fail(err, errlen,
                            "%s: unknown key '%s' (known: name, cid, vid, slot_size, signers, "
                            "min_security_counter, flash_align, max_sectors, chunk_size)",
                            where, key);
        }
    }
    if (!have_slot)
        return cls_fail(err, errlen, "%s: key 'slot_size' is required and missing", where);
    if (!have_signers)
        return cls_fail(err, errlen, "%s: key 'signers' is required and missing", where);
    size_t t = image_trailer_size(c->flash_align, 0, c->max_sectors);
    if (t == 0 || t >= c->slot_size)
        return cls_fail(err, errlen,
                        "%s: the image trailer (%zu bytes for flash_align %u, max_sectors %u) "
                        "leaves no room in slot_size %u",
                        where, t, c->flash_align, c->max_sectors, c->slot_size);
    c->trailer_size = (uint32_t)t;
    return 0;
}

int ota_classes_parse(const char *text, size_t len, struct ota_classes *out, char *err,
                      size_t errlen)
{
    json_tokener *tok = NULL;
    json_object *root = NULL;
    int r = 0;

    memset(out, 0, sizeof(*out));
    if (errlen > 0)
        err[0] = '\0';
    if (len > OTA_CLASSES_MAX_FILE) {
        r = cls_fail(err, errlen, "larger than %d bytes", OTA_CLASSES_MAX_FILE);
        goto out;
    }
    if (memchr(text, '\0', len) != NULL) {
        r = cls_fail(err, errlen, "NUL byte in the text");
        goto out;
    }
    tok = json_tokener_new_ex(16);
    if (tok == NULL) {
        r = -ENOMEM;
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    root = json_tokener_parse_ex(tok, text, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    if (root == NULL || jerr != json_tokener_success) {
        r = cls_fail(err, errlen, "JSON syntax error: %s",
                     jerr == json_tokener_continue ? "unexpected end of text"
                                                   : json_tokener_error_desc(jerr));
        goto out;
    }
    for (size_t i = json_tokener_get_parse_end(tok); i < len; i++) {
        if (text[i] != ' ' && text[i] != '\t' && text[i] != '\n' && text[i] != '\r') {
            r = cls_fail(err, errlen, "JSON syntax error: data after the top-level object");
            goto out;
        }
    }
    if (!json_object_is_type(root, json_type_object)) {
        r = cls_fail(err, errlen, "the top level must be an object {\"classes\": [...]}, found %s",
                     json_type_word(root));
        goto out;
    }
    json_object *arr = NULL;
    json_object_object_foreach(root, key, v)
    {
        if (strcmp(key, "classes") != 0) {
            r = cls_fail(err, errlen, "unknown key '%s' at the top level (known: classes)", key);
            goto out;
        }
        arr = v;
    }
    if (arr == NULL) {
        r = cls_fail(err, errlen, "key 'classes' is required and missing");
        goto out;
    }
    if (!json_object_is_type(arr, json_type_array)) {
        r = cls_fail(err, errlen, "key 'classes': expected an array, found %s",
                     json_type_word(arr));
        goto out;
    }
    size_t n = json_object_array_length(arr);
    if (n > OTA_CLASSES_MAX) {
        r = cls_fail(err, errlen, "key 'classes': %zu classes, at most %d", n, OTA_CLASSES_MAX);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        struct ota_class *c = &out->cls[i];
        r = parse_class(json_object_array_get_idx(arr, i), i, c, err, errlen);
        if (r < 0)
            goto out;
        for (size_t j = 0; j < i; j++) {
            if (strcmp(out->cls[j].name, c->name) == 0) {
                r = cls_fail(err, errlen,
                             "classes[%zu] (\"%s\"): key 'name': classes[%zu] has "
                             "the same name",
                             i, c->name, j);
                goto out;
            }
            if (c->has_cid && out->cls[j].has_cid &&
                memcmp(out->cls[j].cid, c->cid, IMAGE_UUID_LEN) == 0) {
                r = cls_fail(err, errlen,
                             "classes[%zu] (\"%s\"): key 'cid': classes[%zu] (\"%s\") has the "
                             "same cid",
                             i, c->name, j, out->cls[j].name);
                goto out;
            }
        }
        out->n = i + 1;
    }
out:
    if (r < 0)
        memset(out, 0, sizeof(*out));
    if (root != NULL)
        json_object_put(root);
    if (tok != NULL)
        json_tokener_free(tok);
    return r;
}

int ota_classes_load(const char *path, struct ota_classes *out, char *err, size_t errlen)
{
    const char *why = NULL;
    size_t len = 0;
    int r = 0;
    char inner[512];

    memset(out, 0, sizeof(*out));
    char *buf = readfile_at(AT_FDCWD, path, OTA_CLASSES_MAX_FILE, &len, &why, &r);
    if (buf == NULL) {
        snprintf(err, errlen, "%s: cannot read the classes file: %s", path, why);
        return r;
    }
    r = ota_classes_parse(buf, len, out, inner, sizeof(inner));
    if (r < 0)
        snprintf(err, errlen, "%s: %s", path, inner);
    free(buf);
    return r;
}

const struct ota_class *ota_class_find(const struct ota_classes *c, const char *name)
{
    if (c == NULL || name == NULL)
        return NULL;
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->cls[i].name, name) == 0)
            return &c->cls[i];
    return NULL;
}

const struct ota_class *ota_class_by_cid(const struct ota_classes *c,
                                         const uint8_t cid[IMAGE_UUID_LEN])
{
    if (c == NULL)
        return NULL;
    for (size_t i = 0; i < c->n; i++)
        if (c->cls[i].has_cid && memcmp(c->cls[i].cid, cid, IMAGE_UUID_LEN) == 0)
            return &c->cls[i];
    return NULL;
}

bool ota_class_allows_signer(const struct ota_class *c, const uint8_t id[OTA_DIGEST_LEN])
{
    for (size_t i = 0; i < c->n_signers; i++)
        if (memcmp(c->signers[i], id, OTA_DIGEST_LEN) == 0)
            return true;
    return false;
}
