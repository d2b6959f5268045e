/* MCUboot image format: parse, verify, build and sign (see image.h, docs/image-format.md). */
#include "fleetgw/image.h"

#include "fleetgw/bytes.h"

#include <string.h>

#include "fleetgw/der.h"

#define ERASED_VAL     0xffu
#define MAX_PUBKEY_TLV 512u

static const uint8_t boot_magic[IMAGE_TRAILER_MAGIC_LEN] = {
    0x77, 0xc2, 0x95, 0xf3, 0x60, 0xd2, 0xef, 0x7f, 0x35, 0x52, 0x50, 0x0f, 0x2c, 0xb6, 0x79, 0x80,
};
/* With max_align != 8 the magic starts with max_align (u16 LE) and continues with these. */
static const uint8_t boot_magic_aligned_tail[IMAGE_TRAILER_MAGIC_LEN - 2] = {
    0x2d, 0xe1, 0x5d, 0x29, 0x41, 0x0b, 0x8d, 0x77, 0x67, 0x9c, 0x11, 0x0f, 0x1f, 0x8a,
};

static void rd_version(const uint8_t *p, struct image_version *v)
{
    v->major = p[0];
    v->minor = p[1];
    v->revision = bytes_le16(p + 2);
    v->build = bytes_le32(p + 4);
}

static void wr_version(uint8_t *p, const struct image_version *v)
{
    p[0] = v->major;
    p[1] = v->minor;
    bytes_put_le16(p + 2, v->revision);
    bytes_put_le32(p + 4, v->build);
}

static int is_pow2(uint32_t v)
{
    return v != 0 && (v & (v - 1)) == 0;
}

static int valid_align(uint32_t a)
{
    return a == 1 || a == 2 || a == 4 || a == 8 || a == 16 || a == 32;
}

static size_t align_up(size_t n, size_t a)
{
    return (n + (a - 1)) & ~(a - 1);
}

size_t image_trailer_size(uint32_t align, uint32_t max_align, uint32_t max_sectors)
{
    if (max_align == 0)
        max_align = align > IMAGE_DEFAULT_MAX_ALIGN ? align : IMAGE_DEFAULT_MAX_ALIGN;
    if (max_sectors == 0)
        max_sectors = IMAGE_DEFAULT_MAX_SECTORS;
    if (!valid_align(align) || !is_pow2(max_align) || max_align > 32 ||
        max_sectors > IMAGE_MAX_SECTORS_LIMIT)
        return 0;
    /* swap status (3 entries per sector), image_ok/copy_done/swap_info/swap_size, magic */
    return (size_t)max_sectors * 3u * align + (size_t)max_align * 4u +
           align_up(IMAGE_TRAILER_MAGIC_LEN, max_align);
}

/* Records one TLV of the protected area. */
static enum image_status take_prot(const uint8_t *img, uint16_t type, size_t off, size_t len,
                                   struct image_info *out)
{
    const uint8_t *v = img + off;
    switch (type) {
    case IMAGE_TLV_SEC_CNT:
        if (len != 4)
            return IMAGE_ERR_TLV_LENGTH;
        if (out->has_sec_cnt)
            return IMAGE_ERR_TLV_DUPLICATE;
        out->has_sec_cnt = 1;
        out->sec_cnt = bytes_le32(v);
        return IMAGE_OK;
    case IMAGE_TLV_DEPENDENCY:
        if (len != IMAGE_DEPENDENCY_LEN)
            return IMAGE_ERR_TLV_LENGTH;
        if (out->n_deps >= IMAGE_MAX_DEPS)
            return IMAGE_ERR_TLV_COUNT;
        out->deps[out->n_deps].image_id = v[0];
        rd_version(v + 4, &out->deps[out->n_deps].min_version);
        out->n_deps++;
        return IMAGE_OK;
    case IMAGE_TLV_BOOT_RECORD:
        if (len == 0 || len > IMAGE_MAX_BOOT_RECORD)
            return IMAGE_ERR_TLV_LENGTH;
        if (out->boot_record_off != 0)
            return IMAGE_ERR_TLV_DUPLICATE;
        out->boot_record_off = off;
        out->boot_record_len = len;
        return IMAGE_OK;
    case IMAGE_TLV_UUID_VID:
    case IMAGE_TLV_UUID_CID: {
        int *has = type == IMAGE_TLV_UUID_VID ? &out->has_vid : &out->has_cid;
        uint8_t *dst = type == IMAGE_TLV_UUID_VID ? out->vid : out->cid;
        if (len != IMAGE_UUID_LEN)
            return IMAGE_ERR_TLV_LENGTH;
        if (*has)
            return IMAGE_ERR_TLV_DUPLICATE;
        *has = 1;
        memcpy(dst, v, IMAGE_UUID_LEN);
        return IMAGE_OK;
    }
    case IMAGE_TLV_KEYHASH:
    case IMAGE_TLV_PUBKEY:
    case IMAGE_TLV_SHA256:
    case IMAGE_TLV_ECDSA_SIG:
        /* These describe the hash and cannot be part of it. */
        return IMAGE_ERR_TLV_PLACEMENT;
    default:
        /* Other protected TLVs are covered by the hash and signature; like MCUboot we
         * skip the ones we do not use. */
        return IMAGE_OK;
    }
}

/* Records one TLV of the unprotected area. Only hash, key id and signature may live here
 * (MCUboot's allowed_unprot_tlvs, restricted to what we verify). */
static enum image_status take_unprot(const uint8_t *img, uint16_t type, size_t off, size_t len,
                                     struct image_info *out)
{
    switch (type) {
    case IMAGE_TLV_SHA256:
        if (len != CRYPTO_SHA256_LEN)
            return IMAGE_ERR_TLV_LENGTH;
        if (out->has_sha256)
            return IMAGE_ERR_TLV_DUPLICATE;
        out->has_sha256 = 1;
        memcpy(out->sha256, img + off, CRYPTO_SHA256_LEN);
        return IMAGE_OK;
    case IMAGE_TLV_KEYHASH:
        if (len != CRYPTO_SHA256_LEN)
            return IMAGE_ERR_TLV_LENGTH;
        if (out->has_keyhash || out->pubkey_off != 0)
            return IMAGE_ERR_TLV_DUPLICATE; /* exactly one key id */
        out->has_keyhash = 1;
        memcpy(out->keyhash, img + off, CRYPTO_SHA256_LEN);
        return IMAGE_OK;
    case IMAGE_TLV_PUBKEY:
        if (len == 0 || len > MAX_PUBKEY_TLV)
            return IMAGE_ERR_TLV_LENGTH;
        if (out->has_keyhash || out->pubkey_off != 0)
            return IMAGE_ERR_TLV_DUPLICATE;
        out->pubkey_off = off;
        out->pubkey_len = len;
        return IMAGE_OK;
    case IMAGE_TLV_ECDSA_SIG:
        if (len == 0 || len > IMAGE_MAX_SIG_DER)
            return IMAGE_ERR_TLV_LENGTH;
        if (out->sig_off != 0)
            return IMAGE_ERR_TLV_DUPLICATE;
        out->sig_off = off;
        out->sig_len = len;
        return IMAGE_OK;
    default:
        return IMAGE_ERR_TLV_PLACEMENT;
    }
}

/* Walks the TLVs in img[start, end). */
static enum image_status walk_tlvs(const uint8_t *img, size_t start, size_t end, int prot,
                                   struct image_info *out, unsigned *count)
{
    size_t off = start;
    unsigned n = 0;
    while (off < end) {
        if (end - off < IMAGE_TLV_HDR_LEN)
            return IMAGE_ERR_TLV_OVERRUN;
        uint16_t type = bytes_le16(img + off);
        size_t tlen = bytes_le16(img + off + 2);
        if (tlen > end - off - IMAGE_TLV_HDR_LEN)
            return IMAGE_ERR_TLV_OVERRUN;
        if (++n > IMAGE_MAX_TLVS)
            return IMAGE_ERR_TLV_COUNT;
        size_t v = off + IMAGE_TLV_HDR_LEN;
        enum image_status st =
            prot ? take_prot(img, type, v, tlen, out) : take_unprot(img, type, v, tlen, out);
        if (st != IMAGE_OK)
            return st;
        off = v + tlen;
        *count = n;
    }
    return IMAGE_OK;
}

/* Bytes after the TLV area are accepted only as imgtool --pad slot padding: erased 0xff,
 * optionally ending with the trailer magic (and image_ok = 0x01 from --confirm). */
static int padding_ok(const uint8_t *p, size_t n)
{
    size_t ok_idx = n; /* index of image_ok, n when none */
    size_t end = n;    /* bytes before end must be erased (except image_ok) */
    if (n >= IMAGE_TRAILER_MAGIC_LEN) {
        const uint8_t *m = p + n - IMAGE_TRAILER_MAGIC_LEN;
        size_t max_align = 0;
        if (memcmp(m, boot_magic, IMAGE_TRAILER_MAGIC_LEN) == 0)
            max_align = IMAGE_DEFAULT_MAX_ALIGN;
        else if (memcmp(m + 2, boot_magic_aligned_tail, sizeof(boot_magic_aligned_tail)) == 0 &&
                 is_pow2(bytes_le16(m)) && bytes_le16(m) >= 8 && bytes_le16(m) <= 32)
            max_align = bytes_le16(m);
        if (max_align != 0) {
            end = n - IMAGE_TRAILER_MAGIC_LEN;
            size_t back = align_up(IMAGE_TRAILER_MAGIC_LEN, max_align) + max_align;
            if (n >= back)
                ok_idx = n - back;
        }
    }
    for (size_t i = 0; i < end; i++) {
        if (p[i] == ERASED_VAL || (i == ok_idx && p[i] == 0x01))
            continue;
        return 0;
    }
    return 1;
}

enum image_status image_parse(const uint8_t *img, size_t len, struct image_info *out)
{
    enum image_status st;
    if (out == NULL)
        return IMAGE_ERR_ARG;
    memset(out, 0, sizeof(*out));
    if (img == NULL)
        return IMAGE_ERR_ARG;
    if (len > IMAGE_MAX_LEN)
        return IMAGE_ERR_TOO_LARGE;
    if (len < IMAGE_HEADER_LEN)
        return IMAGE_ERR_TRUNCATED;
    if (bytes_le32(img) != IMAGE_MAGIC)
        return IMAGE_ERR_BAD_MAGIC;
    out->load_addr = bytes_le32(img + 4);
    out->hdr_size = bytes_le16(img + 8);
    out->protect_tlv_size = bytes_le16(img + 10);
    out->img_size = bytes_le32(img + 12);
    out->flags = bytes_le32(img + 16);
    rd_version(img + 20, &out->version);
    if (out->hdr_size < IMAGE_HEADER_LEN)
        return IMAGE_ERR_HEADER;
    if ((out->flags & ~IMAGE_F_SUPPORTED) != 0)
        return IMAGE_ERR_FLAGS;
    if (out->hdr_size > len || out->img_size > len - out->hdr_size)
        return IMAGE_ERR_TRUNCATED;
    size_t off = (size_t)out->hdr_size + out->img_size;

    if (IMAGE_TLV_INFO_LEN > len - off)
        return IMAGE_ERR_TRUNCATED;
    uint16_t magic = bytes_le16(img + off);
    size_t tot = bytes_le16(img + off + 2);
    if (out->protect_tlv_size != 0) {
        if (magic != IMAGE_TLV_PROT_INFO_MAGIC)
            return IMAGE_ERR_PROT_TLV_MAGIC;
        if (tot != out->protect_tlv_size || tot < IMAGE_TLV_INFO_LEN)
            return IMAGE_ERR_PROT_TLV_SIZE;
        if (tot > len - off)
            return IMAGE_ERR_TRUNCATED;
        st = walk_tlvs(img, off + IMAGE_TLV_INFO_LEN, off + tot, 1, out, &out->n_prot_tlvs);
        if (st != IMAGE_OK)
            return st;
        off += tot;
        if (IMAGE_TLV_INFO_LEN > len - off)
            return IMAGE_ERR_TRUNCATED;
        magic = bytes_le16(img + off);
        tot = bytes_le16(img + off + 2);
    } else if (magic == IMAGE_TLV_PROT_INFO_MAGIC) {
        return IMAGE_ERR_PROT_TLV_SIZE; /* a protected area the header does not cover */
    }
    out->hashed_len = off;

    if (magic != IMAGE_TLV_INFO_MAGIC)
        return IMAGE_ERR_TLV_MAGIC;
    if (tot < IMAGE_TLV_INFO_LEN)
        return IMAGE_ERR_TLV_OVERRUN;
    if (tot > len - off)
        return IMAGE_ERR_TRUNCATED;
    st = walk_tlvs(img, off + IMAGE_TLV_INFO_LEN, off + tot, 0, out, &out->n_tlvs);
    if (st != IMAGE_OK)
        return st;
    off += tot;
    out->tlv_end = off;
    out->padding_len = len - off;
    if (!padding_ok(img + off, len - off))
        return IMAGE_ERR_SIZE_MISMATCH;
    return IMAGE_OK;
}

enum image_status image_key_hash(const uint8_t pub[CRYPTO_P256_PUB_LEN],
                                 uint8_t out[CRYPTO_SHA256_LEN])
{
    uint8_t spki[DER_P256_SPKI_LEN];
    if (pub == NULL || out == NULL)
        return IMAGE_ERR_ARG;
    if (der_p256_spki_encode(pub, spki) != DER_OK)
        return IMAGE_ERR_ARG;
    if (crypto_sha256(spki, sizeof(spki), out) != 0)
        return IMAGE_ERR_CRYPTO;
    return IMAGE_OK;
}

/* Finds the trusted key the image names; returns its index or n_keys. */
static enum image_status find_key(const uint8_t *img, const struct image_info *info,
                                  const struct image_verify_opts *opts, size_t *index)
{
    uint8_t named[CRYPTO_P256_PUB_LEN];
    uint8_t h[CRYPTO_SHA256_LEN];
    *index = opts->n_keys;
    if (!info->has_keyhash) {
        if (der_p256_spki_parse(img + info->pubkey_off, info->pubkey_len, named) != DER_OK)
            return IMAGE_ERR_BAD_PUBKEY;
    }
    for (size_t i = 0; i < opts->n_keys; i++) {
        if (info->has_keyhash) {
            enum image_status st = image_key_hash(opts->keys[i].pub, h);
            if (st != IMAGE_OK)
                return st;
            if (crypto_memcmp_ct(h, info->keyhash, sizeof(h)) == 0) {
                *index = i;
                break;
            }
        } else if (crypto_memcmp_ct(named, opts->keys[i].pub, sizeof(named)) == 0) {
            *index = i;
            break;
        }
    }
    return *index < opts->n_keys ? IMAGE_OK : IMAGE_ERR_UNKNOWN_KEY;
}

enum image_status image_verify(const uint8_t *img, size_t len, const struct image_verify_opts *opts,
                               struct image_result *out)
{
    enum image_status st;
    uint8_t raw_sig[CRYPTO_P256_SIG_LEN];
    if (out == NULL)
        return IMAGE_ERR_ARG;
    memset(out, 0, sizeof(*out));
    if (opts == NULL || opts->keys == NULL || opts->n_keys == 0 || opts->n_keys > IMAGE_MAX_KEYS)
        return IMAGE_ERR_ARG;
    st = image_parse(img, len, &out->info);
    if (st != IMAGE_OK)
        return st;
    const struct image_info *info = &out->info;

    /* 1. integrity: the hash over header, body and protected TLVs */
    if (crypto_sha256(img, info->hashed_len, out->digest) != 0)
        return IMAGE_ERR_CRYPTO;
    if (!info->has_sha256)
        return IMAGE_ERR_NO_HASH;
    if (crypto_memcmp_ct(out->digest, info->sha256, CRYPTO_SHA256_LEN) != 0)
        return IMAGE_ERR_HASH_MISMATCH;

    /* 2. authenticity: a trusted key's signature over that hash */
    if (info->sig_off == 0)
        return IMAGE_ERR_NO_SIGNATURE;
    if (!info->has_keyhash && info->pubkey_off == 0)
        return IMAGE_ERR_NO_KEY_ID;
    size_t k;
    st = find_key(img, info, opts, &k);
    if (st != IMAGE_OK)
        return st;
    if (der_ecdsa_sig_to_raw(img + info->sig_off, info->sig_len, raw_sig) != DER_OK)
        return IMAGE_ERR_SIG_ENCODING;
    if (crypto_p256_verify(opts->keys[k].pub, out->digest, raw_sig) != 0)
        return IMAGE_ERR_BAD_SIGNATURE;
    out->key_index = k;
    st = image_key_hash(opts->keys[k].pub, out->signer_keyhash);
    if (st != IMAGE_OK)
        return st;

    /* 3. policy, judged only on authenticated fields */
    if (opts->check_min_counter) {
        if (!info->has_sec_cnt)
            return IMAGE_ERR_COUNTER_MISSING;
        if (info->sec_cnt < opts->min_counter)
            return IMAGE_ERR_COUNTER_LOW;
    }
    if (opts->expect_vid != NULL) {
        if (!info->has_vid)
            return IMAGE_ERR_VENDOR_MISSING;
        if (memcmp(info->vid, opts->expect_vid, IMAGE_UUID_LEN) != 0)
            return IMAGE_ERR_VENDOR_MISMATCH;
    }
    if (opts->expect_cid != NULL) {
        if (!info->has_cid)
            return IMAGE_ERR_CLASS_MISSING;
        if (memcmp(info->cid, opts->expect_cid, IMAGE_UUID_LEN) != 0)
            return IMAGE_ERR_CLASS_MISMATCH;
    }
    return IMAGE_OK;
}

/* Appends one TLV at out[*off]; the caller has checked the room. */
static void put_tlv(uint8_t *out, size_t *off, uint16_t type, const uint8_t *v, size_t len)
{
    bytes_put_le16(out + *off, type);
    bytes_put_le16(out + *off + 2, (uint16_t)len);
    memcpy(out + *off + IMAGE_TLV_HDR_LEN, v, len);
    *off += IMAGE_TLV_HDR_LEN + len;
}

static enum image_status check_sign_opts(const struct image_sign_opts *o, uint32_t *max_align)
{
    if (o->payload == NULL && o->payload_len > 0)
        return IMAGE_ERR_ARG;
    if (o->hdr_size < IMAGE_HEADER_LEN || !valid_align(o->align) || o->sign == NULL ||
        o->pub[0] != 0x04 || (o->key_format != IMAGE_KEY_HASH && o->key_format != IMAGE_KEY_FULL))
        return IMAGE_ERR_ARG;
    *max_align = o->max_align != 0
                     ? o->max_align
                     : (o->align > IMAGE_DEFAULT_MAX_ALIGN ? o->align : IMAGE_DEFAULT_MAX_ALIGN);
    if (!is_pow2(*max_align) || *max_align < 8 || *max_align > 32)
        return IMAGE_ERR_ARG;
    if (o->max_sectors > IMAGE_MAX_SECTORS_LIMIT)
        return IMAGE_ERR_ARG;
    if ((o->n_deps > 0 && o->deps == NULL) || o->n_deps > IMAGE_MAX_DEPS)
        return IMAGE_ERR_ARG;
    if (o->boot_record != NULL &&
        (o->boot_record_len == 0 || o->boot_record_len > IMAGE_MAX_BOOT_RECORD))
        return IMAGE_ERR_ARG;
    if ((o->pad || o->confirm) && o->slot_size == 0)
        return IMAGE_ERR_ARG;
    if (o->payload_len > IMAGE_MAX_LEN || o->slot_size > IMAGE_MAX_LEN)
        return IMAGE_ERR_TOO_LARGE;
    return IMAGE_OK;
}

enum image_status image_sign(const struct image_sign_opts *o, uint8_t *out, size_t cap,
                             size_t *out_len, uint8_t digest_out[CRYPTO_SHA256_LEN])
{
    enum image_status st;
    uint32_t max_align = 0;
    uint8_t digest[CRYPTO_SHA256_LEN];
    uint8_t raw_sig[CRYPTO_P256_SIG_LEN];
    uint8_t der_sig[IMAGE_MAX_SIG_DER];
    uint8_t keyid[DER_P256_SPKI_LEN];
    size_t der_len = 0;

    if (o == NULL || out == NULL || out_len == NULL)
        return IMAGE_ERR_ARG;
    *out_len = 0;
    st = check_sign_opts(o, &max_align);
    if (st != IMAGE_OK)
        return st;

    /* Header and body. */
    size_t body_end = o->pad_header ? (size_t)o->hdr_size + o->payload_len : o->payload_len;
    if (body_end > IMAGE_MAX_LEN)
        return IMAGE_ERR_TOO_LARGE;
    if (!o->pad_header) {
        if (o->payload_len < o->hdr_size)
            return IMAGE_ERR_HEADER_NOT_ZERO;
        for (size_t i = 0; i < o->hdr_size; i++)
            if (o->payload[i] != 0)
                return IMAGE_ERR_HEADER_NOT_ZERO;
    }
    size_t prot = 0;
    if (o->has_sec_cnt)
        prot += IMAGE_TLV_HDR_LEN + 4;
    if (o->boot_record != NULL)
        prot += IMAGE_TLV_HDR_LEN + o->boot_record_len;
    prot += o->n_deps * (IMAGE_TLV_HDR_LEN + IMAGE_DEPENDENCY_LEN);
    if (o->vid != NULL)
        prot += IMAGE_TLV_HDR_LEN + IMAGE_UUID_LEN;
    if (o->cid != NULL)
        prot += IMAGE_TLV_HDR_LEN + IMAGE_UUID_LEN;
    if (prot != 0)
        prot += IMAGE_TLV_INFO_LEN;
    size_t hashed_len = body_end + prot;
    if (cap < hashed_len)
        return IMAGE_ERR_BUFFER;

    if (o->pad_header) {
        memset(out, ERASED_VAL, o->hdr_size);
        if (o->payload_len > 0)
            memcpy(out + o->hdr_size, o->payload, o->payload_len);
    } else if (o->payload_len > 0) {
        memcpy(out, o->payload, o->payload_len);
    }
    uint32_t flags = 0;
    if (o->ram_load)
        flags |= IMAGE_F_RAM_LOAD;
    if (o->rom_fixed)
        flags |= IMAGE_F_ROM_FIXED;
    bytes_put_le32(out, IMAGE_MAGIC);
    bytes_put_le32(out + 4, o->load_addr);
    bytes_put_le16(out + 8, o->hdr_size);
    bytes_put_le16(out + 10, (uint16_t)prot);
    bytes_put_le32(out + 12, (uint32_t)(body_end - o->hdr_size));
    bytes_put_le32(out + 16, flags);
    wr_version(out + 20, &o->version);
    bytes_put_le32(out + 28, 0);

    /* Protected TLVs, in imgtool's order. */
    size_t off = body_end;
    if (prot != 0) {
        uint8_t v[IMAGE_DEPENDENCY_LEN];
        bytes_put_le16(out + off, IMAGE_TLV_PROT_INFO_MAGIC);
        bytes_put_le16(out + off + 2, (uint16_t)prot);
        off += IMAGE_TLV_INFO_LEN;
        if (o->has_sec_cnt) {
            bytes_put_le32(v, o->sec_cnt);
            put_tlv(out, &off, IMAGE_TLV_SEC_CNT, v, 4);
        }
        if (o->boot_record != NULL)
            put_tlv(out, &off, IMAGE_TLV_BOOT_RECORD, o->boot_record, o->boot_record_len);
        for (size_t i = 0; i < o->n_deps; i++) {
            memset(v, 0, sizeof(v));
            v[0] = o->deps[i].image_id;
            wr_version(v + 4, &o->deps[i].min_version);
            put_tlv(out, &off, IMAGE_TLV_DEPENDENCY, v, IMAGE_DEPENDENCY_LEN);
        }
        if (o->vid != NULL)
            put_tlv(out, &off, IMAGE_TLV_UUID_VID, o->vid, IMAGE_UUID_LEN);
        if (o->cid != NULL)
            put_tlv(out, &off, IMAGE_TLV_UUID_CID, o->cid, IMAGE_UUID_LEN);
    }

    /* Hash and signature. */
    if (crypto_sha256(out, hashed_len, digest) != 0)
        return IMAGE_ERR_CRYPTO;
    if (o->sign(o->sign_ctx, digest, raw_sig) != 0) {
        st = IMAGE_ERR_SIGNER;
        goto out;
    }
    if (der_ecdsa_sig_from_raw(raw_sig, der_sig, sizeof(der_sig), &der_len) != DER_OK) {
        st = IMAGE_ERR_SIGNER;
        goto out;
    }
    if (der_p256_spki_encode(o->pub, keyid) != DER_OK) {
        st = IMAGE_ERR_ARG;
        goto out;
    }
    size_t keyid_len = sizeof(keyid);
    if (o->key_format == IMAGE_KEY_HASH) {
        if (crypto_sha256(keyid, sizeof(keyid), keyid) != 0) {
            st = IMAGE_ERR_CRYPTO;
            goto out;
        }
        keyid_len = CRYPTO_SHA256_LEN;
    }
    size_t tlv_tot = IMAGE_TLV_INFO_LEN + IMAGE_TLV_HDR_LEN + CRYPTO_SHA256_LEN +
                     IMAGE_TLV_HDR_LEN + keyid_len + IMAGE_TLV_HDR_LEN + der_len;
    size_t tlv_end = hashed_len + tlv_tot;
    if (o->slot_size != 0) {
        size_t tsize = image_trailer_size(o->align, max_align, o->max_sectors);
        if (tsize == 0) {
            st = IMAGE_ERR_ARG;
            goto out;
        }
        if (tlv_end > o->slot_size || tsize > o->slot_size - tlv_end) {
            st = IMAGE_ERR_SLOT_SIZE;
            goto out;
        }
    }
    size_t total = o->pad ? o->slot_size : tlv_end;
    if (cap < total) {
        st = IMAGE_ERR_BUFFER;
        goto out;
    }
    bytes_put_le16(out + off, IMAGE_TLV_INFO_MAGIC);
    bytes_put_le16(out + off + 2, (uint16_t)tlv_tot);
    off += IMAGE_TLV_INFO_LEN;
    put_tlv(out, &off, IMAGE_TLV_SHA256, digest, CRYPTO_SHA256_LEN);
    put_tlv(out, &off,
            o->key_format == IMAGE_KEY_HASH ? (uint16_t)IMAGE_TLV_KEYHASH
                                            : (uint16_t)IMAGE_TLV_PUBKEY,
            keyid, keyid_len);
    put_tlv(out, &off, IMAGE_TLV_ECDSA_SIG, der_sig, der_len);

    if (o->pad) {
        memset(out + off, ERASED_VAL, total - off);
        uint8_t *m = out + total - IMAGE_TRAILER_MAGIC_LEN;
        if (max_align == IMAGE_DEFAULT_MAX_ALIGN) {
            memcpy(m, boot_magic, IMAGE_TRAILER_MAGIC_LEN);
        } else {
            bytes_put_le16(m, (uint16_t)max_align);
            memcpy(m + 2, boot_magic_aligned_tail, sizeof(boot_magic_aligned_tail));
        }
        if (o->confirm)
            out[total - (align_up(IMAGE_TRAILER_MAGIC_LEN, max_align) + max_align)] = 0x01;
        off = total;
    }
    *out_len = off;
    if (digest_out != NULL)
        memcpy(digest_out, digest, CRYPTO_SHA256_LEN);
    st = IMAGE_OK;
out:
    crypto_wipe(raw_sig, sizeof(raw_sig));
    return st;
}

const char *image_status_str(enum image_status st)
{
    switch (st) {
    case IMAGE_OK:
        return "ok";
    case IMAGE_ERR_ARG:
        return "invalid argument";
    case IMAGE_ERR_TOO_LARGE:
        return "image larger than the maximum";
    case IMAGE_ERR_TRUNCATED:
        return "image truncated: shorter than its header and TLV areas say";
    case IMAGE_ERR_BAD_MAGIC:
        return "bad image magic (not an MCUboot image)";
    case IMAGE_ERR_HEADER:
        return "bad header: header size below 32 bytes";
    case IMAGE_ERR_FLAGS:
        return "unsupported header flags (encrypted, compressed or non-bootable image)";
    case IMAGE_ERR_PROT_TLV_MAGIC:
        return "protected TLV area missing (bad magic)";
    case IMAGE_ERR_PROT_TLV_SIZE:
        return "protected TLV area size differs from the header";
    case IMAGE_ERR_TLV_MAGIC:
        return "TLV area missing (bad magic)";
    case IMAGE_ERR_TLV_OVERRUN:
        return "TLV overruns its area";
    case IMAGE_ERR_TLV_COUNT:
        return "too many TLVs";
    case IMAGE_ERR_TLV_LENGTH:
        return "TLV has the wrong length for its type";
    case IMAGE_ERR_TLV_DUPLICATE:
        return "duplicate TLV";
    case IMAGE_ERR_TLV_PLACEMENT:
        return "TLV not allowed in this area";
    case IMAGE_ERR_SIZE_MISMATCH:
        return "size mismatch: bytes after the TLV area are not slot padding";
    case IMAGE_ERR_NO_HASH:
        return "no SHA256 TLV";
    case IMAGE_ERR_HASH_MISMATCH:
        return "image hash mismatch";
    case IMAGE_ERR_NO_SIGNATURE:
        return "image is not signed (no ECDSA signature TLV)";
    case IMAGE_ERR_NO_KEY_ID:
        return "signature without KEYHASH or PUBKEY TLV";
    case IMAGE_ERR_BAD_PUBKEY:
        return "PUBKEY TLV is not a P-256 public key";
    case IMAGE_ERR_UNKNOWN_KEY:
        return "signed by an unknown key";
    case IMAGE_ERR_SIG_ENCODING:
        return "signature is not a DER ECDSA-Sig-Value";
    case IMAGE_ERR_BAD_SIGNATURE:
        return "bad signature";
    case IMAGE_ERR_COUNTER_MISSING:
        return "no security counter in the image";
    case IMAGE_ERR_COUNTER_LOW:
        return "security counter below the minimum (rollback)";
    case IMAGE_ERR_CLASS_MISSING:
        return "no device class (UUID_CID) in the image";
    case IMAGE_ERR_CLASS_MISMATCH:
        return "device class mismatch";
    case IMAGE_ERR_VENDOR_MISSING:
        return "no vendor (UUID_VID) in the image";
    case IMAGE_ERR_VENDOR_MISMATCH:
        return "vendor mismatch";
    case IMAGE_ERR_CRYPTO:
        return "crypto back-end failure";
    case IMAGE_ERR_BUFFER:
        return "output buffer too small";
    case IMAGE_ERR_SLOT_SIZE:
        return "image and trailer exceed the slot size";
    case IMAGE_ERR_HEADER_NOT_ZERO:
        return "payload does not start with header-size zero bytes (use pad-header)";
    case IMAGE_ERR_SIGNER:
        return "signing failed";
    }
    return "unknown image status";
}
