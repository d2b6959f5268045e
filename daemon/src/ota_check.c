/* The staging checks of the OTA image store (contract in ota_check.h): format, the
 * size and digest a job named, signature by a key of the signer set, device class, signer
 * allowed for the class, security-counter floor, version (downgrade), slot size; each
 * refusal as enum ota_refusal, its REASON= token (ota_refusal_str) and a sentence. No file
 * is touched. Library code: returns refusals, never logs. */
#define _GNU_SOURCE
#include "ota_check.h"

#include <errno.h>
#include <fleetgw/crypto.h>
#include <fleetgw/hex.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static void format_uuid(const uint8_t u[IMAGE_UUID_LEN], char out[37])
{
    char hex[2 * IMAGE_UUID_LEN + 1];
    hex_encode(u, IMAGE_UUID_LEN, hex);
    snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16, hex + 20);
}

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

enum ota_refusal ota_refuse(enum ota_refusal r, char *why, size_t whylen, const char *fmt, ...)
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

void ota_version_format(const struct image_version *v, char *out, size_t cap)
{
    snprintf(out, cap, "%u.%u.%u+%u", v->major, v->minor, v->revision, v->build);
}

enum ota_refusal ota_check_signature(const uint8_t *img, size_t len, const struct image_key *keys,
                                     size_t n_keys, struct image_result *res, char *why,
                                     size_t whylen)
{
    if (keys == NULL || n_keys == 0)
        return ota_refuse(
            OTA_R_UNKNOWN_SIGNER, why, whylen,
            "no signer keys are configured (attestation.signer_keys): no image can be "
            "accepted");
    if (n_keys > IMAGE_MAX_KEYS)
        return ota_refuse(OTA_R_UNKNOWN_SIGNER, why, whylen,
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
        return ota_refuse(OTA_R_TAMPERED, why, whylen,
                          "the image's bytes do not match its hash or signature (%s)",
                          image_status_str(st));
    case IMAGE_ERR_NO_SIGNATURE:
    case IMAGE_ERR_NO_KEY_ID:
    case IMAGE_ERR_UNKNOWN_KEY:
        return ota_refuse(
            OTA_R_UNKNOWN_SIGNER, why, whylen,
            "no key of the signer set (attestation.signer_keys) signed the image (%s)",
            image_status_str(st));
    case IMAGE_ERR_CRYPTO:
        return ota_refuse(OTA_R_IO, why, whylen, "the crypto back-end failed verifying the image");
    default:
        return ota_refuse(OTA_R_FORMAT, why, whylen, "not a well-formed MCUboot image: %s",
                          image_status_str(st));
    }
}
/* The class of the image: its UUID_CID (and UUID_VID) where present, else declared. */
static enum ota_refusal resolve_class(const struct image_info *info, const struct ota_check_opts *o,
                                      const struct ota_class **ret, char *why, size_t whylen)
{
    const struct ota_classes *cs = o->classes;
    char u[37];
    if (cs == NULL || cs->n == 0)
        return ota_refuse(OTA_R_UNKNOWN_CLASS, why, whylen,
                          "no device classes are configured (ota.classes_file): images cannot be "
                          "staged until it names the classes and their signers");
    const struct ota_class *c = NULL;
    if (info->has_cid) {
        c = ota_class_by_cid(cs, info->cid);
        format_uuid(info->cid, u);
        if (c == NULL)
            return ota_refuse(OTA_R_UNKNOWN_CLASS, why, whylen,
                              "the image's UUID_CID %s names no configured device class", u);
        if (o->declared_class != NULL && strcmp(o->declared_class, c->name) != 0)
            return ota_refuse(OTA_R_CLASS_MISMATCH, why, whylen,
                              "the image's UUID_CID %s is class '%s', but class '%s' was declared",
                              u, c->name, o->declared_class);
    } else {
        if (o->declared_class == NULL)
            return ota_refuse(OTA_R_UNKNOWN_CLASS, why, whylen,
                              "the image has no UUID_CID TLV and no device class was declared");
        c = ota_class_find(cs, o->declared_class);
        if (c == NULL)
            return ota_refuse(OTA_R_UNKNOWN_CLASS, why, whylen,
                              "the declared device class '%s' is not configured (ota.classes_file)",
                              o->declared_class);
    }
    if (c->has_vid && info->has_vid && memcmp(c->vid, info->vid, IMAGE_UUID_LEN) != 0) {
        format_uuid(info->vid, u);
        return ota_refuse(OTA_R_CLASS_MISMATCH, why, whylen,
                          "the image's UUID_VID %s is not the vendor of class '%s'", u, c->name);
    }
    if (c->has_vid && info->has_cid && !info->has_vid)
        return ota_refuse(OTA_R_CLASS_MISMATCH, why, whylen,
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
        return ota_refuse(OTA_R_FORMAT, why, whylen, "the image is empty");
    if (len > IMAGE_MAX_LEN)
        return ota_refuse(OTA_R_FORMAT, why, whylen, "the image is %zu bytes, at most %u", len,
                          IMAGE_MAX_LEN);
    enum image_status st = image_parse(img, len, &info);
    if (st != IMAGE_OK)
        return ota_refuse(OTA_R_FORMAT, why, whylen, "not a well-formed MCUboot image: %s",
                          image_status_str(st));
    /* 2. the size the job named */
    if (o->expect_size >= 0 && (uint64_t)o->expect_size != (uint64_t)len)
        return ota_refuse(OTA_R_DIGEST_MISMATCH, why, whylen,
                          "the image is %zu bytes, the job named %lld bytes", len,
                          (long long)o->expect_size);
    /* 3. hash and signature by a key of the signer set */
    r = ota_check_signature(img, len, o->signers, o->n_signers, &res, why, whylen);
    if (r != OTA_OK)
        return r;
    /* 4. the digest the job named */
    if (o->expect_digest != NULL &&
        crypto_memcmp_ct(o->expect_digest, res.digest, OTA_DIGEST_LEN) != 0) {
        char want[OTA_DIGEST_HEX + 1], got[OTA_DIGEST_HEX + 1];
        hex_encode(o->expect_digest, OTA_DIGEST_LEN, want);
        hex_encode(res.digest, OTA_DIGEST_LEN, got);
        return ota_refuse(OTA_R_DIGEST_MISMATCH, why, whylen,
                          "the image hash is %s, the job named %s", got, want);
    }
    /* 5. device class */
    r = resolve_class(&res.info, o, &c, why, whylen);
    if (r != OTA_OK)
        return r;
    /* 6. signer allowed for the class */
    if (!ota_class_allows_signer(c, res.signer_keyhash)) {
        char id[OTA_DIGEST_HEX + 1];
        hex_encode(res.signer_keyhash, OTA_DIGEST_LEN, id);
        return ota_refuse(OTA_R_SIGNER_NOT_ALLOWED, why, whylen,
                          "signer %s is in the signer set but not allowed for class '%s'", id,
                          c->name);
    }
    /* 7. security counter, 8. version */
    struct ota_class_state cst;
    memset(&cst, 0, sizeof(cst));
    if (o->class_state != NULL) {
        int e = o->class_state(o->ctx, c->name, &cst);
        if (e < 0)
            return ota_refuse(OTA_R_IO, why, whylen, "cannot read the state of class '%s': %s",
                              c->name, strerror(-e));
    }
    uint32_t floor = cst.floor > c->min_security_counter ? cst.floor : c->min_security_counter;
    if (floor > 0 && !res.info.has_sec_cnt)
        return ota_refuse(OTA_R_COUNTER_LOW, why, whylen,
                          "the image has no security counter and class '%s' requires at least %u",
                          c->name, floor);
    if (res.info.has_sec_cnt && res.info.sec_cnt < floor)
        return ota_refuse(OTA_R_COUNTER_LOW, why, whylen,
                          "the image's security counter %u is below class '%s''s floor %u",
                          res.info.sec_cnt, c->name, floor);
    if (cst.has_current && version_cmp(&res.info.version, &cst.current) < 0 && !o->recovery) {
        ota_version_format(&res.info.version, v1, sizeof(v1));
        ota_version_format(&cst.current, v2, sizeof(v2));
        return ota_refuse(OTA_R_DOWNGRADE, why, whylen,
                          "version %s is older than %s, the current version of class '%s' "
                          "(only a recovery campaign may go back)",
                          v1, v2, c->name);
    }
    /* 9. fits the slot with the MCUboot trailer */
    if (res.info.tlv_end > c->slot_size || c->trailer_size > c->slot_size - res.info.tlv_end ||
        len > c->slot_size)
        return ota_refuse(OTA_R_TOO_BIG, why, whylen,
                          "the image needs %zu bytes plus a %u-byte trailer, class '%s''s slot has "
                          "%u (file: %zu bytes)",
                          res.info.tlv_end, c->trailer_size, c->name, c->slot_size, len);

    memcpy(meta->digest, res.digest, OTA_DIGEST_LEN);
    hex_encode(meta->digest, OTA_DIGEST_LEN, meta->digest_hex);
    if (crypto_sha256(img, len, meta->file_sha256) != 0) {
        memset(meta, 0, sizeof(*meta));
        return ota_refuse(OTA_R_IO, why, whylen, "the crypto back-end failed hashing the image");
    }
    meta->size = (uint32_t)len;
    meta->version = res.info.version;
    meta->has_counter = res.info.has_sec_cnt != 0;
    meta->security_counter = res.info.sec_cnt;
    snprintf(meta->class_name, sizeof(meta->class_name), "%s", c->name);
    memcpy(meta->signer_id, res.signer_keyhash, OTA_DIGEST_LEN);
    return OTA_OK;
}
