/* The gateway's OTA image store (ota_store.h): device classes, staging checks, and the
 * content-addressed store. Library code: returns errors, never logs. */
#define _GNU_SOURCE
#include "ota_store.h"
#include "jsonutil.h"
#include "readfile.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fleetgw/crypto.h>
#include <fleetgw/hex.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define OTA_CLASSES_MAX_FILE (1024 * 1024)
#define OTA_META_MAX_FILE    (64 * 1024)
#define OTA_FD_CACHE         4
#define OTA_LIST_MAX         65536 /* images listed by one foreach/lookup, at most */
#define OTA_TMP_PREFIX       ".tmp."
#define OTA_DEFAULT_ALIGN    8u
#define OTA_SLOT_MIN         1024u

/* ---- device classes ---------------------------------------------------------------- */

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

static void format_uuid(const uint8_t u[IMAGE_UUID_LEN], char out[37])
{
    char hex[2 * IMAGE_UUID_LEN + 1];
    hex_encode(u, IMAGE_UUID_LEN, hex);
    snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16, hex + 20);
}

/* A JSON string without NUL bytes; NULL otherwise. */
static const char *json_str(json_object *v, size_t *len)
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
    const char *s = json_str(v, &n);
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
        const char *s = json_str(json_object_array_get_idx(v, i), &sl);
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
    const char *name = json_str(nv, &nl);
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
        } else {
            return cls_fail(err, errlen,
                            "%s: unknown key '%s' (known: name, cid, vid, slot_size, signers, "
                            "min_security_counter, flash_align, max_sectors)",
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

/* ---- staging checks ---------------------------------------------------------------- */

static const char *const refusal_names[OTA_R__COUNT] = {
    [OTA_OK] = "ok",
    [OTA_R_FORMAT] = "format",
    [OTA_R_TAMPERED] = "tampered",
    [OTA_R_UNKNOWN_SIGNER] = "unknown_signer",
    [OTA_R_SIGNER_NOT_ALLOWED] = "signer_not_allowed",
    [OTA_R_COUNTER_LOW] = "security_counter",
    [OTA_R_DOWNGRADE] = "downgrade",
    [OTA_R_UNKNOWN_CLASS] = "unknown_class",
    [OTA_R_CLASS_MISMATCH] = "class_mismatch",
    [OTA_R_TOO_BIG] = "too_big",
    [OTA_R_QUOTA] = "quota",
    [OTA_R_DIGEST_MISMATCH] = "digest_mismatch",
    [OTA_R_IO] = "io",
};

const char *ota_refusal_str(enum ota_refusal r)
{
    if ((unsigned)r >= OTA_R__COUNT)
        return "unknown";
    return refusal_names[r];
}

static enum ota_refusal refuse(enum ota_refusal r, char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static enum ota_refusal refuse(enum ota_refusal r, char *why, size_t whylen, const char *fmt, ...)
{
    va_list ap;
    if (whylen > 0) {
        va_start(ap, fmt);
        vsnprintf(why, whylen, fmt, ap);
        va_end(ap);
    }
    return r;
}

static int version_cmp(const struct image_version *a, const struct image_version *b)
{
    if (a->major != b->major)
        return a->major < b->major ? -1 : 1;
    if (a->minor != b->minor)
        return a->minor < b->minor ? -1 : 1;
    if (a->revision != b->revision)
        return a->revision < b->revision ? -1 : 1;
    if (a->build != b->build)
        return a->build < b->build ? -1 : 1;
    return 0;
}

static void format_version(const struct image_version *v, char *out, size_t cap)
{
    snprintf(out, cap, "%u.%u.%u+%u", v->major, v->minor, v->revision, v->build);
}

/* The signature part of the checks: image_verify()'s status as a refusal. */
static enum ota_refusal verify_signature(const uint8_t *img, size_t len,
                                         const struct image_key *keys, size_t n_keys,
                                         struct image_result *res, char *why, size_t whylen)
{
    if (keys == NULL || n_keys == 0)
        return refuse(OTA_R_UNKNOWN_SIGNER, why, whylen,
                      "no signer keys are configured (attestation.signer_keys): no image can be "
                      "accepted");
    if (n_keys > IMAGE_MAX_KEYS)
        return refuse(OTA_R_UNKNOWN_SIGNER, why, whylen,
                      "%zu signer keys are configured, at most %u can verify an image", n_keys,
                      IMAGE_MAX_KEYS);
    struct image_verify_opts vo;
    memset(&vo, 0, sizeof(vo));
    vo.keys = keys;
    vo.n_keys = n_keys;
    enum image_status st = image_verify(img, len, &vo, res);
    switch (st) {
    case IMAGE_OK:
        return OTA_OK;
    case IMAGE_ERR_HASH_MISMATCH:
    case IMAGE_ERR_BAD_SIGNATURE:
    case IMAGE_ERR_SIG_ENCODING:
        return refuse(OTA_R_TAMPERED, why, whylen,
                      "the image's bytes do not match its hash or signature (%s)",
                      image_status_str(st));
    case IMAGE_ERR_NO_SIGNATURE:
    case IMAGE_ERR_NO_KEY_ID:
    case IMAGE_ERR_UNKNOWN_KEY:
        return refuse(OTA_R_UNKNOWN_SIGNER, why, whylen,
                      "no key of the signer set (attestation.signer_keys) signed the image (%s)",
                      image_status_str(st));
    case IMAGE_ERR_CRYPTO:
        return refuse(OTA_R_IO, why, whylen, "the crypto back-end failed verifying the image");
    default:
        return refuse(OTA_R_FORMAT, why, whylen, "not a well-formed MCUboot image: %s",
                      image_status_str(st));
    }
}

static bool signer_allowed(const struct ota_class *c, const uint8_t id[OTA_DIGEST_LEN])
{
    for (size_t i = 0; i < c->n_signers; i++)
        if (memcmp(c->signers[i], id, OTA_DIGEST_LEN) == 0)
            return true;
    return false;
}

/* The class of the image: its UUID_CID (and UUID_VID) where present, else declared. */
static enum ota_refusal resolve_class(const struct image_info *info, const struct ota_check_opts *o,
                                      const struct ota_class **ret, char *why, size_t whylen)
{
    const struct ota_classes *cs = o->classes;
    char u[37];
    if (cs == NULL || cs->n == 0)
        return refuse(OTA_R_UNKNOWN_CLASS, why, whylen,
                      "no device classes are configured (ota.classes_file): images cannot be "
                      "staged until it names the classes and their signers");
    const struct ota_class *c = NULL;
    if (info->has_cid) {
        c = ota_class_by_cid(cs, info->cid);
        format_uuid(info->cid, u);
        if (c == NULL)
            return refuse(OTA_R_UNKNOWN_CLASS, why, whylen,
                          "the image's UUID_CID %s names no configured device class", u);
        if (o->declared_class != NULL && strcmp(o->declared_class, c->name) != 0)
            return refuse(OTA_R_CLASS_MISMATCH, why, whylen,
                          "the image's UUID_CID %s is class '%s', but class '%s' was declared", u,
                          c->name, o->declared_class);
    } else {
        if (o->declared_class == NULL)
            return refuse(OTA_R_UNKNOWN_CLASS, why, whylen,
                          "the image has no UUID_CID TLV and no device class was declared");
        c = ota_class_find(cs, o->declared_class);
        if (c == NULL)
            return refuse(OTA_R_UNKNOWN_CLASS, why, whylen,
                          "the declared device class '%s' is not configured (ota.classes_file)",
                          o->declared_class);
    }
    if (c->has_vid && info->has_vid && memcmp(c->vid, info->vid, IMAGE_UUID_LEN) != 0) {
        format_uuid(info->vid, u);
        return refuse(OTA_R_CLASS_MISMATCH, why, whylen,
                      "the image's UUID_VID %s is not the vendor of class '%s'", u, c->name);
    }
    if (c->has_vid && info->has_cid && !info->has_vid)
        return refuse(OTA_R_CLASS_MISMATCH, why, whylen,
                      "the image names class '%s' by UUID_CID but has no UUID_VID, which that "
                      "class requires",
                      c->name);
    *ret = c;
    return OTA_OK;
}

enum ota_refusal ota_image_check(const uint8_t *img, size_t len, const struct ota_check_opts *o,
                                 struct ota_image_meta *meta, char *why, size_t whylen)
{
    struct image_info info;
    struct image_result res;
    const struct ota_class *c = NULL;
    enum ota_refusal r;
    char v1[48], v2[48];

    memset(meta, 0, sizeof(*meta));
    if (whylen > 0)
        why[0] = '\0';
    /* 1. format */
    if (img == NULL || len == 0)
        return refuse(OTA_R_FORMAT, why, whylen, "the image is empty");
    if (len > IMAGE_MAX_LEN)
        return refuse(OTA_R_FORMAT, why, whylen, "the image is %zu bytes, at most %u", len,
                      IMAGE_MAX_LEN);
    enum image_status st = image_parse(img, len, &info);
    if (st != IMAGE_OK)
        return refuse(OTA_R_FORMAT, why, whylen, "not a well-formed MCUboot image: %s",
                      image_status_str(st));
    /* 2. the size the job named */
    if (o->expect_size >= 0 && (uint64_t)o->expect_size != (uint64_t)len)
        return refuse(OTA_R_DIGEST_MISMATCH, why, whylen,
                      "the image is %zu bytes, the job named %lld bytes", len,
                      (long long)o->expect_size);
    /* 3. hash and signature by a key of the signer set */
    r = verify_signature(img, len, o->signers, o->n_signers, &res, why, whylen);
    if (r != OTA_OK)
        return r;
    /* 4. the digest the job named */
    if (o->expect_digest != NULL &&
        crypto_memcmp_ct(o->expect_digest, res.digest, OTA_DIGEST_LEN) != 0) {
        char want[OTA_DIGEST_HEX + 1], got[OTA_DIGEST_HEX + 1];
        hex_encode(o->expect_digest, OTA_DIGEST_LEN, want);
        hex_encode(res.digest, OTA_DIGEST_LEN, got);
        return refuse(OTA_R_DIGEST_MISMATCH, why, whylen, "the image hash is %s, the job named %s",
                      got, want);
    }
    /* 5. device class */
    r = resolve_class(&res.info, o, &c, why, whylen);
    if (r != OTA_OK)
        return r;
    /* 6. signer allowed for the class */
    if (!signer_allowed(c, res.signer_keyhash)) {
        char id[OTA_DIGEST_HEX + 1];
        hex_encode(res.signer_keyhash, OTA_DIGEST_LEN, id);
        return refuse(OTA_R_SIGNER_NOT_ALLOWED, why, whylen,
                      "signer %s is in the signer set but not allowed for class '%s'", id, c->name);
    }
    /* 7. security counter, 8. version */
    struct ota_class_state cst;
    memset(&cst, 0, sizeof(cst));
    if (o->class_state != NULL) {
        int e = o->class_state(o->ctx, c->name, &cst);
        if (e < 0)
            return refuse(OTA_R_IO, why, whylen, "cannot read the state of class '%s': %s", c->name,
                          strerror(-e));
    }
    uint32_t floor = cst.floor > c->min_security_counter ? cst.floor : c->min_security_counter;
    if (floor > 0 && !res.info.has_sec_cnt)
        return refuse(OTA_R_COUNTER_LOW, why, whylen,
                      "the image has no security counter and class '%s' requires at least %u",
                      c->name, floor);
    if (res.info.has_sec_cnt && res.info.sec_cnt < floor)
        return refuse(OTA_R_COUNTER_LOW, why, whylen,
                      "the image's security counter %u is below class '%s''s floor %u",
                      res.info.sec_cnt, c->name, floor);
    if (cst.has_current && version_cmp(&res.info.version, &cst.current) < 0 && !o->recovery) {
        format_version(&res.info.version, v1, sizeof(v1));
        format_version(&cst.current, v2, sizeof(v2));
        return refuse(OTA_R_DOWNGRADE, why, whylen,
                      "version %s is older than class '%s''s current %s (only a recovery "
                      "campaign may go back)",
                      v1, c->name, v2);
    }
    /* 9. fits the slot with the MCUboot trailer */
    if (res.info.tlv_end > c->slot_size || c->trailer_size > c->slot_size - res.info.tlv_end ||
        len > c->slot_size)
        return refuse(OTA_R_TOO_BIG, why, whylen,
                      "the image needs %zu bytes plus a %u-byte trailer, class '%s''s slot has "
                      "%u (file: %zu bytes)",
                      res.info.tlv_end, c->trailer_size, c->name, c->slot_size, len);

    memcpy(meta->digest, res.digest, OTA_DIGEST_LEN);
    hex_encode(meta->digest, OTA_DIGEST_LEN, meta->digest_hex);
    if (crypto_sha256(img, len, meta->file_sha256) != 0) {
        memset(meta, 0, sizeof(*meta));
        return refuse(OTA_R_IO, why, whylen, "the crypto back-end failed hashing the image");
    }
    meta->size = (uint32_t)len;
    meta->version = res.info.version;
    meta->has_counter = res.info.has_sec_cnt != 0;
    meta->security_counter = res.info.sec_cnt;
    snprintf(meta->class_name, sizeof(meta->class_name), "%s", c->name);
    memcpy(meta->signer_id, res.signer_keyhash, OTA_DIGEST_LEN);
    return OTA_OK;
}

/* ---- the store --------------------------------------------------------------------- */

struct ota_fd {
    bool used;
    uint8_t digest[OTA_DIGEST_LEN];
    int fd;
    uint64_t last;
};

struct ota_store {
    int dirfd;
    int relfd;
    uint64_t quota;
    uint64_t used;
    uint64_t tick;
    struct ota_fd fds[OTA_FD_CACHE];
    char released[4096];
};

/* "<64 hex>.<ext>" with lower-case hex: the digest, or -1. */
static int name_digest(const char *name, const char *ext, uint8_t d[OTA_DIGEST_LEN])
{
    size_t el = strlen(ext), dl = 0;
    if (strlen(name) != OTA_DIGEST_HEX + 1 + el || name[OTA_DIGEST_HEX] != '.' ||
        strcmp(name + OTA_DIGEST_HEX + 1, ext) != 0)
        return -1;
    for (size_t i = 0; i < OTA_DIGEST_HEX; i++)
        if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f')))
            return -1;
    return hex_decode(name, OTA_DIGEST_HEX, d, OTA_DIGEST_LEN, &dl) == 0 ? 0 : -1;
}

static void file_name(const uint8_t d[OTA_DIGEST_LEN], const char *ext, char out[80])
{
    char hex[OTA_DIGEST_HEX + 1];
    hex_encode(d, OTA_DIGEST_LEN, hex);
    snprintf(out, 80, "%s.%s", hex, ext);
}

static bool exists_at(int dirfd, const char *name)
{
    struct stat st;
    return fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

/* Every "<hex>.json" of the store, sorted; *ret (caller frees) and the count, or -errno. */
static int cmp_digest(const void *a, const void *b)
{
    return memcmp(a, b, OTA_DIGEST_LEN);
}

static ssize_t list_digests(int dirfd, uint8_t (**ret)[OTA_DIGEST_LEN])
{
    uint8_t(*v)[OTA_DIGEST_LEN] = NULL;
    size_t n = 0, cap = 0;
    int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    DIR *d = fdopendir(fd);
    if (d == NULL) {
        int e = -errno;
        close(fd);
        return e;
    }
    struct dirent *de;
    ssize_t r = 0;
    while ((errno = 0, de = readdir(d)) != NULL) {
        uint8_t dg[OTA_DIGEST_LEN];
        if (name_digest(de->d_name, "json", dg) != 0)
            continue;
        if (n == OTA_LIST_MAX) {
            r = -E2BIG;
            goto out;
        }
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 16;
            void *nv = realloc(v, nc * sizeof(*v));
            if (nv == NULL) {
                r = -ENOMEM;
                goto out;
            }
            v = nv;
            cap = nc;
        }
        memcpy(v[n++], dg, OTA_DIGEST_LEN);
    }
    if (errno != 0)
        r = -errno;
out:
    closedir(d);
    if (r < 0) {
        free(v);
        return r;
    }
    if (n > 1)
        qsort(v, n, sizeof(*v), cmp_digest);
    *ret = v;
    return (ssize_t)n;
}

/* Removes temp files, images without metadata (a put or remove cut short) and released
 * links without metadata; sums the stored images' sizes. */
static int store_scan(struct ota_store *s)
{
    int fd = openat(s->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    DIR *d = fdopendir(fd);
    if (d == NULL) {
        int e = -errno;
        close(fd);
        return e;
    }
    struct dirent *de;
    int r = 0;
    bool changed = false;
    s->used = 0;
    while ((errno = 0, de = readdir(d)) != NULL) {
        uint8_t dg[OTA_DIGEST_LEN];
        char json[80];
        if (strncmp(de->d_name, OTA_TMP_PREFIX, strlen(OTA_TMP_PREFIX)) == 0) {
            if (unlinkat(s->dirfd, de->d_name, 0) != 0 && errno != ENOENT) {
                r = -errno;
                break;
            }
            changed = true;
            continue;
        }
        if (name_digest(de->d_name, "img", dg) != 0)
            continue;
        file_name(dg, "json", json);
        if (!exists_at(s->dirfd, json)) {
            if (unlinkat(s->dirfd, de->d_name, 0) != 0 && errno != ENOENT) {
                r = -errno;
                break;
            }
            changed = true;
            continue;
        }
        struct stat st;
        if (fstatat(s->dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            r = -errno;
            break;
        }
        s->used += (uint64_t)st.st_size;
    }
    if (r == 0 && errno != 0)
        r = -errno;
    closedir(d);
    if (r < 0)
        return r;

    fd = openat(s->relfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    d = fdopendir(fd);
    if (d == NULL) {
        int e = -errno;
        close(fd);
        return e;
    }
    bool rel_changed = false;
    while ((errno = 0, de = readdir(d)) != NULL) {
        uint8_t dg[OTA_DIGEST_LEN];
        char json[80];
        bool tmp = strncmp(de->d_name, OTA_TMP_PREFIX, strlen(OTA_TMP_PREFIX)) == 0;
        if (!tmp) {
            if (name_digest(de->d_name, "img", dg) != 0)
                continue;
            file_name(dg, "json", json);
            if (exists_at(s->dirfd, json))
                continue;
        }
        if (unlinkat(s->relfd, de->d_name, 0) != 0 && errno != ENOENT) {
            r = -errno;
            break;
        }
        rel_changed = true;
    }
    if (r == 0 && errno != 0)
        r = -errno;
    closedir(d);
    if (r == 0 && changed && fsync(s->dirfd) != 0)
        r = -errno;
    if (r == 0 && rel_changed && fsync(s->relfd) != 0)
        r = -errno;
    return r;
}

int ota_store_open(const char *dir, uint64_t quota_bytes, struct ota_store **ret)
{
    struct ota_store *s = NULL;
    int r = 0;

    if (dir == NULL || dir[0] == '\0' || ret == NULL)
        return -EINVAL;
    if (strlen(dir) + sizeof("/released") > sizeof(s->released))
        return -ENAMETOOLONG;
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return -ENOMEM;
    s->dirfd = s->relfd = -1;
    for (size_t i = 0; i < OTA_FD_CACHE; i++)
        s->fds[i].fd = -1;
    s->quota = quota_bytes;
    snprintf(s->released, sizeof(s->released), "%s/released", dir);
    if (mkdir(dir, 0750) != 0 && errno != EEXIST) {
        r = -errno;
        goto out;
    }
    /* The configured path may be a symbolic link (a store on another disk); what the store
     * creates inside it never is. */
    s->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->dirfd < 0) {
        r = -errno;
        goto out;
    }
    if (mkdirat(s->dirfd, "released", 0750) != 0 && errno != EEXIST) {
        r = -errno;
        goto out;
    }
    s->relfd = openat(s->dirfd, "released", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (s->relfd < 0) {
        r = -errno;
        goto out;
    }
    r = store_scan(s);
out:
    if (r < 0) {
        ota_store_close(s);
        return r;
    }
    *ret = s;
    return 0;
}

void ota_store_close(struct ota_store *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < OTA_FD_CACHE; i++)
        if (s->fds[i].fd >= 0)
            close(s->fds[i].fd);
    if (s->relfd >= 0)
        close(s->relfd);
    if (s->dirfd >= 0)
        close(s->dirfd);
    free(s);
}

uint64_t ota_store_used(const struct ota_store *s)
{
    return s->used;
}

const char *ota_store_released_dir(const struct ota_store *s)
{
    return s->released;
}

static void fd_forget(struct ota_store *s, const uint8_t d[OTA_DIGEST_LEN])
{
    for (size_t i = 0; i < OTA_FD_CACHE; i++) {
        if (s->fds[i].used && memcmp(s->fds[i].digest, d, OTA_DIGEST_LEN) == 0) {
            close(s->fds[i].fd);
            s->fds[i].fd = -1;
            s->fds[i].used = false;
        }
    }
}

/* Writes len bytes to a new temp file, fsyncs it and renames it to name: 0 or -errno
 * (nothing left behind on failure). */
static int write_durable(int dirfd, const char *name, const void *data, size_t len)
{
    char tmp[128];
    int r = 0;
    snprintf(tmp, sizeof(tmp), "%s%s", OTA_TMP_PREFIX, name);
    (void)unlinkat(dirfd, tmp, 0);
    int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0640);
    if (fd < 0)
        return -errno;
    const uint8_t *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            r = -errno;
            break;
        }
        p += w;
        left -= (size_t)w;
    }
    if (r == 0 && fsync(fd) != 0)
        r = -errno;
    if (close(fd) != 0 && r == 0)
        r = -errno;
    if (r == 0 && renameat(dirfd, tmp, dirfd, name) != 0)
        r = -errno;
    if (r < 0)
        (void)unlinkat(dirfd, tmp, 0);
    return r;
}

static void json_add_hex(json_object *o, const char *k, const uint8_t *p, size_t n)
{
    char hex[2 * OTA_DIGEST_LEN + 1];
    hex_encode(p, n, hex);
    json_object_object_add(o, k, json_object_new_string(hex));
}

/* The metadata document; NULL on out of memory. Caller frees. */
static char *meta_to_json(const struct ota_image_meta *m)
{
    char ver[48];
    json_object *o = json_object_new_object();
    if (o == NULL)
        return NULL;
    format_version(&m->version, ver, sizeof(ver));
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

static int meta_write(struct ota_store *s, const struct ota_image_meta *m)
{
    char name[80];
    char *text = meta_to_json(m);
    if (text == NULL)
        return -ENOMEM;
    file_name(m->digest, "json", name);
    size_t tl = strlen(text);
    text[tl] = '\n'; /* replaces the NUL: written as tl + 1 bytes */
    int r = write_durable(s->dirfd, name, text, tl + 1);
    free(text);
    return r;
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
    const char *s = json_str(v, &n);
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
    const char *s = json_str(v, &n);
    if (s == NULL || n >= cap)
        return -EBADMSG;
    memcpy(out, s, n + 1);
    return 0;
}

static int meta_parse(json_object *o, struct ota_image_meta *m)
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

int ota_store_get(struct ota_store *s, const uint8_t digest[OTA_DIGEST_LEN],
                  struct ota_image_meta *meta)
{
    char name[80];
    const char *why = NULL;
    size_t len = 0;
    int r = 0;
    struct ota_image_meta m;

    memset(&m, 0, sizeof(m));
    file_name(digest, "json", name);
    char *text = readfile_at(s->dirfd, name, OTA_META_MAX_FILE, &len, &why, &r);
    if (text == NULL)
        return r;
    json_object *o = json_tokener_parse(text);
    free(text);
    if (o == NULL)
        return -EBADMSG;
    r = meta_parse(o, &m);
    json_object_put(o);
    if (r == 0 && memcmp(m.digest, digest, OTA_DIGEST_LEN) != 0)
        r = -EBADMSG; /* the metadata of another image under this name */
    if (r < 0)
        return r;
    *meta = m;
    return 0;
}

enum ota_refusal ota_store_put(struct ota_store *s, const uint8_t *img, size_t len,
                               const struct ota_check_opts *o, const char *source, int64_t now,
                               struct ota_image_meta *meta, char *why, size_t whylen)
{
    struct ota_image_meta m;
    char iname[80], jname[80];
    enum ota_refusal rr = ota_image_check(img, len, o, &m, why, whylen);
    if (rr != OTA_OK) {
        memset(meta, 0, sizeof(*meta));
        return rr;
    }
    int e = ota_store_get(s, m.digest, meta);
    if (e == 0)
        return OTA_OK; /* already stored: the stored image and its metadata */
    memset(meta, 0, sizeof(*meta));
    if (e != -ENOENT)
        return refuse(OTA_R_IO, why, whylen, "cannot read the metadata of stored image %s: %s",
                      m.digest_hex, strerror(-e));
    if (s->used > s->quota || len > s->quota - s->used)
        return refuse(OTA_R_QUOTA, why, whylen,
                      "the store holds %llu bytes; this image (%zu bytes) would exceed "
                      "ota.store_quota_bytes (%llu)",
                      (unsigned long long)s->used, len, (unsigned long long)s->quota);
    m.staged = now;
    snprintf(m.source, sizeof(m.source), "%s", source != NULL ? source : "");
    m.released = false;
    file_name(m.digest, "img", iname);
    file_name(m.digest, "json", jname);
    /* The image first, its metadata last: an image exists once its .json does; an .img
     * without one (a crash in between) is removed by the next ota_store_open. */
    e = write_durable(s->dirfd, iname, img, len);
    if (e == 0) {
        e = meta_write(s, &m);
        if (e < 0)
            (void)unlinkat(s->dirfd, iname, 0);
    }
    if (e == 0 && fsync(s->dirfd) != 0) {
        e = -errno;
        (void)unlinkat(s->dirfd, jname, 0);
        (void)unlinkat(s->dirfd, iname, 0);
    }
    if (e < 0)
        return refuse(OTA_R_IO, why, whylen, "cannot write image %s to the store: %s", m.digest_hex,
                      strerror(-e));
    s->used += len;
    *meta = m;
    return OTA_OK;
}

int ota_store_lookup(struct ota_store *s, const char *hex, uint8_t digest[OTA_DIGEST_LEN])
{
    char want[OTA_DIGEST_HEX + 1];
    size_t n = hex != NULL ? strlen(hex) : 0;
    if (n < 8 || n > OTA_DIGEST_HEX)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        int v = hex_value(hex[i]);
        if (v < 0)
            return -EINVAL;
        want[i] = "0123456789abcdef"[v];
    }
    want[n] = '\0';
    uint8_t(*v)[OTA_DIGEST_LEN] = NULL;
    ssize_t cnt = list_digests(s->dirfd, &v);
    if (cnt < 0)
        return (int)cnt;
    int r = -ENOENT;
    for (ssize_t i = 0; i < cnt; i++) {
        char h[OTA_DIGEST_HEX + 1];
        hex_encode(v[i], OTA_DIGEST_LEN, h);
        if (strncmp(h, want, n) != 0)
            continue;
        if (r == 0) {
            r = -ENOTUNIQ;
            break;
        }
        memcpy(digest, v[i], OTA_DIGEST_LEN);
        r = 0;
    }
    free(v);
    return r;
}

int ota_store_foreach(struct ota_store *s, int (*fn)(const struct ota_image_meta *m, void *u),
                      void *u)
{
    uint8_t(*v)[OTA_DIGEST_LEN] = NULL;
    ssize_t cnt = list_digests(s->dirfd, &v);
    if (cnt < 0)
        return (int)cnt;
    int r = 0;
    for (ssize_t i = 0; i < cnt; i++) {
        struct ota_image_meta m;
        int e = ota_store_get(s, v[i], &m);
        if (e == -ENOENT)
            continue; /* removed meanwhile */
        if (e < 0) {
            r = e;
            break;
        }
        if (fn(&m, u) != 0)
            break;
    }
    free(v);
    return r;
}

int ota_store_remove(struct ota_store *s, const uint8_t digest[OTA_DIGEST_LEN])
{
    char iname[80], jname[80];
    struct stat st;
    file_name(digest, "img", iname);
    file_name(digest, "json", jname);
    if (!exists_at(s->dirfd, jname))
        return -ENOENT;
    uint64_t size =
        fstatat(s->dirfd, iname, &st, AT_SYMLINK_NOFOLLOW) == 0 ? (uint64_t)st.st_size : 0;
    fd_forget(s, digest);
    /* Metadata first: the image is gone from then on; a crash later leaves files that the
     * next ota_store_open removes. */
    if (unlinkat(s->dirfd, jname, 0) != 0)
        return errno == ENOENT ? -ENOENT : -errno;
    if (unlinkat(s->relfd, iname, 0) == 0)
        (void)fsync(s->relfd);
    (void)unlinkat(s->dirfd, iname, 0);
    s->used = s->used >= size ? s->used - size : 0;
    if (fsync(s->dirfd) != 0)
        return -errno;
    return 0;
}

/* A cached read-only descriptor of the stored image, or -errno. */
static int image_fd(struct ota_store *s, const uint8_t digest[OTA_DIGEST_LEN])
{
    char name[80];
    size_t victim = 0;
    s->tick++;
    for (size_t i = 0; i < OTA_FD_CACHE; i++) {
        if (s->fds[i].used && memcmp(s->fds[i].digest, digest, OTA_DIGEST_LEN) == 0) {
            s->fds[i].last = s->tick;
            return s->fds[i].fd;
        }
        if (!s->fds[i].used)
            victim = i;
        else if (s->fds[victim].used && s->fds[i].last < s->fds[victim].last)
            victim = i;
    }
    file_name(digest, "json", name);
    if (!exists_at(s->dirfd, name))
        return -ENOENT;
    file_name(digest, "img", name);
    int fd = openat(s->dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
    if (fd < 0)
        return -errno;
    if (s->fds[victim].used)
        close(s->fds[victim].fd);
    s->fds[victim].used = true;
    s->fds[victim].fd = fd;
    s->fds[victim].last = s->tick;
    memcpy(s->fds[victim].digest, digest, OTA_DIGEST_LEN);
    return fd;
}

ssize_t ota_store_read(struct ota_store *s, const uint8_t digest[OTA_DIGEST_LEN], uint32_t off,
                       uint8_t *buf, size_t len)
{
    int fd = image_fd(s, digest);
    if (fd < 0)
        return fd;
    for (;;) {
        ssize_t n = pread(fd, buf, len, (off_t)off);
        if (n >= 0)
            return n;
        if (errno != EINTR)
            return -errno;
    }
}

enum ota_refusal ota_store_verify(struct ota_store *s, const uint8_t digest[OTA_DIGEST_LEN],
                                  const struct ota_check_opts *o, char *why, size_t whylen)
{
    struct ota_image_meta m;
    struct image_result res;
    char hex[OTA_DIGEST_HEX + 1], name[80];
    uint8_t fsha[OTA_DIGEST_LEN];
    uint8_t *buf = NULL;
    enum ota_refusal rr = OTA_OK;
    int fd = -1;

    if (whylen > 0)
        why[0] = '\0';
    hex_encode(digest, OTA_DIGEST_LEN, hex);
    int e = ota_store_get(s, digest, &m);
    if (e < 0)
        return refuse(OTA_R_IO, why, whylen, "cannot read the metadata of stored image %s: %s", hex,
                      strerror(-e));
    file_name(digest, "img", name);
    fd = openat(s->dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        rr = refuse(OTA_R_IO, why, whylen, "cannot open stored image %s: %s", hex, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode) || st.st_size <= 0 || (uint64_t)st.st_size > IMAGE_MAX_LEN ||
        (uint64_t)st.st_size != m.size) {
        rr = refuse(OTA_R_TAMPERED, why, whylen, "stored image %s is %lld bytes, %u were stored",
                    hex, (long long)st.st_size, m.size);
        goto out;
    }
    size_t len = (size_t)st.st_size;
    buf = malloc(len);
    if (buf == NULL) {
        rr = refuse(OTA_R_IO, why, whylen, "out of memory verifying stored image %s", hex);
        goto out;
    }
    for (size_t got = 0; got < len;) {
        ssize_t n = pread(fd, buf + got, len - got, (off_t)got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rr = refuse(OTA_R_IO, why, whylen, "cannot read stored image %s: %s", hex,
                        n < 0 ? strerror(errno) : "shorter than its size");
            goto out;
        }
        got += (size_t)n;
    }
    if (crypto_sha256(buf, len, fsha) != 0) {
        rr = refuse(OTA_R_IO, why, whylen, "the crypto back-end failed hashing image %s", hex);
        goto out;
    }
    if (crypto_memcmp_ct(fsha, m.file_sha256, OTA_DIGEST_LEN) != 0) {
        rr = refuse(OTA_R_TAMPERED, why, whylen,
                    "stored image %s changed since it was staged (its file SHA-256 differs)", hex);
        goto out;
    }
    rr = verify_signature(buf, len, o->signers, o->n_signers, &res, why, whylen);
    if (rr == OTA_R_FORMAT)
        rr = OTA_R_TAMPERED; /* it was well-formed when it was stored */
    if (rr != OTA_OK)
        goto out;
    if (crypto_memcmp_ct(res.digest, digest, OTA_DIGEST_LEN) != 0) {
        rr = refuse(OTA_R_TAMPERED, why, whylen, "stored image %s hashes to another digest", hex);
        goto out;
    }
    const struct ota_class *c = ota_class_find(o->classes, m.class_name);
    if (c == NULL) {
        rr = refuse(OTA_R_UNKNOWN_CLASS, why, whylen,
                    "stored image %s is of class '%s', which is no longer configured", hex,
                    m.class_name);
        goto out;
    }
    if (!signer_allowed(c, res.signer_keyhash)) {
        char id[OTA_DIGEST_HEX + 1];
        hex_encode(res.signer_keyhash, OTA_DIGEST_LEN, id);
        rr = refuse(OTA_R_SIGNER_NOT_ALLOWED, why, whylen,
                    "stored image %s: signer %s is no longer allowed for class '%s'", hex, id,
                    c->name);
        goto out;
    }
out:
    free(buf);
    if (fd >= 0)
        close(fd);
    return rr;
}

int ota_store_release(struct ota_store *s, const uint8_t digest[OTA_DIGEST_LEN])
{
    struct ota_image_meta m;
    char name[80];
    int r = ota_store_get(s, digest, &m);
    if (r < 0)
        return r;
    file_name(digest, "img", name);
    bool linked = false;
    if (linkat(s->dirfd, name, s->relfd, name, 0) == 0)
        linked = true;
    else if (errno != EEXIST)
        return -errno;
    if (fsync(s->relfd) != 0)
        r = -errno;
    if (r == 0 && !m.released) {
        m.released = true;
        r = meta_write(s, &m);
        if (r == 0 && fsync(s->dirfd) != 0)
            r = -errno;
    }
    if (r < 0 && linked) {
        (void)unlinkat(s->relfd, name, 0);
        (void)fsync(s->relfd);
    }
    return r;
}
