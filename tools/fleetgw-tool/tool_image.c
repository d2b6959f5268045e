/* fleetgw-tool image: sign, verify and inspect MCUboot images (imgtool-compatible). */
#define _GNU_SOURCE
#include "tool.h"
#include "tool_util.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "fleetgw/der.h"
#include "fleetgw/image.h"

static const char *const status_ids[] = {
    [IMAGE_OK] = "ok",
    [IMAGE_ERR_ARG] = "invalid_argument",
    [IMAGE_ERR_TOO_LARGE] = "too_large",
    [IMAGE_ERR_TRUNCATED] = "truncated",
    [IMAGE_ERR_BAD_MAGIC] = "bad_magic",
    [IMAGE_ERR_HEADER] = "bad_header",
    [IMAGE_ERR_FLAGS] = "unsupported_flags",
    [IMAGE_ERR_PROT_TLV_MAGIC] = "protected_tlv_magic",
    [IMAGE_ERR_PROT_TLV_SIZE] = "protected_tlv_size",
    [IMAGE_ERR_TLV_MAGIC] = "tlv_magic",
    [IMAGE_ERR_TLV_OVERRUN] = "tlv_overrun",
    [IMAGE_ERR_TLV_COUNT] = "tlv_count",
    [IMAGE_ERR_TLV_LENGTH] = "tlv_length",
    [IMAGE_ERR_TLV_DUPLICATE] = "tlv_duplicate",
    [IMAGE_ERR_TLV_PLACEMENT] = "tlv_placement",
    [IMAGE_ERR_SIZE_MISMATCH] = "size_mismatch",
    [IMAGE_ERR_NO_HASH] = "no_hash",
    [IMAGE_ERR_HASH_MISMATCH] = "hash_mismatch",
    [IMAGE_ERR_NO_SIGNATURE] = "no_signature",
    [IMAGE_ERR_NO_KEY_ID] = "no_key_id",
    [IMAGE_ERR_BAD_PUBKEY] = "bad_pubkey",
    [IMAGE_ERR_UNKNOWN_KEY] = "unknown_key",
    [IMAGE_ERR_SIG_ENCODING] = "signature_encoding",
    [IMAGE_ERR_BAD_SIGNATURE] = "bad_signature",
    [IMAGE_ERR_COUNTER_MISSING] = "counter_missing",
    [IMAGE_ERR_COUNTER_LOW] = "counter_below_minimum",
    [IMAGE_ERR_CLASS_MISSING] = "device_class_missing",
    [IMAGE_ERR_CLASS_MISMATCH] = "device_class_mismatch",
    [IMAGE_ERR_VENDOR_MISSING] = "vendor_missing",
    [IMAGE_ERR_VENDOR_MISMATCH] = "vendor_mismatch",
    [IMAGE_ERR_CRYPTO] = "crypto_failure",
    [IMAGE_ERR_BUFFER] = "buffer_too_small",
    [IMAGE_ERR_SLOT_SIZE] = "slot_too_small",
    [IMAGE_ERR_HEADER_NOT_ZERO] = "header_not_zero",
    [IMAGE_ERR_SIGNER] = "signing_failed",
};

static const char *status_id(enum image_status st)
{
    if ((size_t)st < sizeof(status_ids) / sizeof(status_ids[0]) && status_ids[st] != NULL)
        return status_ids[st];
    return "unknown";
}

static void uuid_str(const uint8_t u[16], char out[37])
{
    char h[33];
    hex_encode(u, 16, h);
    snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", h, h + 8, h + 12, h + 16, h + 20);
}

static void version_str(const struct image_version *v, char *out, size_t cap)
{
    snprintf(out, cap, "%u.%u.%u+%" PRIu32, v->major, v->minor, v->revision, v->build);
}

/* Unsigned integer in C syntax (0x.., decimal); -1 when malformed or above max. */
static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    char *end = NULL;
    if (s == NULL || *s == '\0' || *s == '-' || *s == '+')
        return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno != 0 || end == s || *end != '\0' || v > max)
        return -1;
    *out = v;
    return 0;
}

/* imgtool's version syntax: major[.minor[.revision]][+build]. */
static int parse_version(const char *s, struct image_version *v)
{
    uint64_t part[4] = {0, 0, 0, 0};
    static const uint64_t max[4] = {0xff, 0xff, 0xffff, 0xffffffff};
    char buf[64];
    if (strlen(s) >= sizeof(buf))
        return -1;
    snprintf(buf, sizeof(buf), "%s", s);
    char *plus = strchr(buf, '+');
    if (plus != NULL) {
        *plus = '\0';
        if (parse_u64(plus + 1, max[3], &part[3]) != 0 || plus[1] < '0' || plus[1] > '9')
            return -1;
    }
    char *p = buf;
    for (int i = 0; i < 3; i++) {
        char *dot = strchr(p, '.');
        if (dot != NULL)
            *dot = '\0';
        if (*p < '0' || *p > '9' || strspn(p, "0123456789") != strlen(p) ||
            parse_u64(p, max[i], &part[i]) != 0)
            return -1;
        if (dot == NULL)
            break;
        if (i == 2)
            return -1;
        p = dot + 1;
    }
    v->major = (uint8_t)part[0];
    v->minor = (uint8_t)part[1];
    v->revision = (uint16_t)part[2];
    v->build = (uint32_t)part[3];
    return 0;
}

/* imgtool's UUID syntax: 8-4-4-4-12 hex, 32 hex digits, or a name turned into a version 5
 * UUID in namespace ns (NULL: names are not allowed). */
static int parse_uuid(const char *s, const uint8_t *ns, uint8_t out[16])
{
    size_t n = strlen(s);
    if (n == 36 || n == 32) {
        size_t j = 0;
        int ok = 1;
        for (size_t i = 0; i < n && ok; i++) {
            if (n == 36 && (i == 8 || i == 13 || i == 18 || i == 23)) {
                ok = s[i] == '-';
                continue;
            }
            int hi = hex_value(s[i]), lo = i + 1 < n ? hex_value(s[i + 1]) : -1;
            if (hi < 0 || lo < 0 || j >= 16) {
                ok = 0;
                break;
            }
            out[j++] = (uint8_t)(hi << 4 | lo);
            i++;
        }
        if (ok && j == 16)
            return 0;
    }
    if (ns == NULL || n == 0)
        return -1;
    /* RFC 4122 version 5: SHA-1(namespace || name), version and variant bits set */
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    uint8_t h[EVP_MAX_MD_SIZE];
    unsigned hl = 0;
    int ok = md != NULL && EVP_DigestInit_ex(md, EVP_sha1(), NULL) == 1 &&
             EVP_DigestUpdate(md, ns, 16) == 1 && EVP_DigestUpdate(md, s, n) == 1 &&
             EVP_DigestFinal_ex(md, h, &hl) == 1 && hl >= 16;
    EVP_MD_CTX_free(md);
    if (!ok)
        return -1;
    memcpy(out, h, 16);
    out[6] = (uint8_t)((out[6] & 0x0f) | 0x50);
    out[8] = (uint8_t)((out[8] & 0x3f) | 0x80);
    return 0;
}

static const uint8_t ns_dns[16] = {0x6b, 0xa7, 0xb8, 0x10, 0x9d, 0xad, 0x11, 0xd1,
                                   0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8};

static void image_usage(FILE *f)
{
    fprintf(f, "usage: fleetgw-tool image sign -k KEY.pem -v VERSION -H HDRSIZE [--pad-header]\n"
               "           -S SLOTSIZE [-s SECCNT|auto] [--align N] [--max-align N]\n"
               "           [--max-sectors N] [--pad] [--confirm] [--load-addr ADDR]\n"
               "           [--vid UUID] [--cid UUID] [--public-key-format hash|full] IN OUT\n"
               "       fleetgw-tool image verify -k PUB.pem [-k PUB2.pem...] [--min-counter N]\n"
               "           [--vid UUID] [--cid UUID] [--json] IMAGE\n"
               "       fleetgw-tool image info [--json] IMAGE\n"
               "VERSION is major[.minor[.revision]][+build]. UUIDs are 8-4-4-4-12 hex, 32 hex\n"
               "digits, or a name (imgtool: --vid in the DNS namespace, --cid in the vid's).\n"
               "exit: 0 valid, 1 invalid (reason printed), 2 usage or I/O error\n");
}

enum {
    OPT_PAD_HEADER = 256,
    OPT_ALIGN,
    OPT_MAX_ALIGN,
    OPT_MAX_SECTORS,
    OPT_PAD,
    OPT_CONFIRM,
    OPT_VID,
    OPT_CID,
    OPT_KEY_FORMAT,
    OPT_MIN_COUNTER,
    OPT_JSON,
    OPT_LOAD_ADDR,
    OPT_SIZE,
    OPT_ITER,
};

static const struct option image_opts[] = {
    {"key", required_argument, NULL, 'k'},
    {"version", required_argument, NULL, 'v'},
    {"header-size", required_argument, NULL, 'H'},
    {"slot-size", required_argument, NULL, 'S'},
    {"security-counter", required_argument, NULL, 's'},
    {"pad-header", no_argument, NULL, OPT_PAD_HEADER},
    {"align", required_argument, NULL, OPT_ALIGN},
    {"max-align", required_argument, NULL, OPT_MAX_ALIGN},
    {"max-sectors", required_argument, NULL, OPT_MAX_SECTORS},
    {"pad", no_argument, NULL, OPT_PAD},
    {"confirm", no_argument, NULL, OPT_CONFIRM},
    {"load-addr", required_argument, NULL, OPT_LOAD_ADDR},
    {"vid", required_argument, NULL, OPT_VID},
    {"cid", required_argument, NULL, OPT_CID},
    {"public-key-format", required_argument, NULL, OPT_KEY_FORMAT},
    {"min-counter", required_argument, NULL, OPT_MIN_COUNTER},
    {"json", no_argument, NULL, OPT_JSON},
    {"size", required_argument, NULL, OPT_SIZE},
    {"iterations", required_argument, NULL, OPT_ITER},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

struct args {
    const char *keys[IMAGE_MAX_KEYS];
    size_t n_keys;
    const char *version, *seccnt, *vid, *cid, *key_format;
    uint64_t hdr_size, slot_size, align, max_align, max_sectors, min_counter, load_addr;
    uint64_t size, iterations;
    int has_hdr, has_slot, has_min_counter, pad_header, pad, confirm, json, has_load_addr;
    int first_pos; /* index of the first positional argument in the sub-argv */
};

/* Parses options of argv (argv[0] is the subcommand). */
static int parse_args(int argc, char **argv, struct args *a)
{
    memset(a, 0, sizeof(*a));
    a->align = 1;
    a->size = 0x100000;
    a->iterations = 200;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "k:v:H:S:s:h", image_opts, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case 'k':
            if (a->n_keys >= IMAGE_MAX_KEYS)
                bad = 1;
            else
                a->keys[a->n_keys++] = optarg;
            break;
        case 'v':
            a->version = optarg;
            break;
        case 'H':
            bad = parse_u64(optarg, 0xffff, &a->hdr_size) != 0;
            a->has_hdr = 1;
            break;
        case 'S':
            bad = parse_u64(optarg, IMAGE_MAX_LEN, &a->slot_size) != 0;
            a->has_slot = 1;
            break;
        case 's':
            a->seccnt = optarg;
            break;
        case OPT_PAD_HEADER:
            a->pad_header = 1;
            break;
        case OPT_ALIGN:
            bad = parse_u64(optarg, 32, &a->align) != 0;
            break;
        case OPT_MAX_ALIGN:
            bad = parse_u64(optarg, 32, &a->max_align) != 0;
            break;
        case OPT_MAX_SECTORS:
            bad = parse_u64(optarg, IMAGE_MAX_SECTORS_LIMIT, &a->max_sectors) != 0;
            break;
        case OPT_PAD:
            a->pad = 1;
            break;
        case OPT_CONFIRM:
            a->confirm = 1;
            break;
        case OPT_LOAD_ADDR:
            bad = parse_u64(optarg, 0xffffffffu, &a->load_addr) != 0;
            a->has_load_addr = 1;
            break;
        case OPT_VID:
            a->vid = optarg;
            break;
        case OPT_CID:
            a->cid = optarg;
            break;
        case OPT_KEY_FORMAT:
            a->key_format = optarg;
            break;
        case OPT_MIN_COUNTER:
            bad = parse_u64(optarg, 0xffffffffu, &a->min_counter) != 0;
            a->has_min_counter = 1;
            break;
        case OPT_JSON:
            a->json = 1;
            break;
        case OPT_SIZE:
            bad = parse_u64(optarg, 0x800000, &a->size) != 0;
            break;
        case OPT_ITER:
            bad = parse_u64(optarg, 1000000, &a->iterations) != 0 || a->iterations == 0;
            break;
        case 'h':
            image_usage(stdout);
            exit(TOOL_OK);
        default:
            bad = 1;
        }
        if (bad) {
            if (c != '?')
                fprintf(stderr, "fleetgw-tool: bad or repeated option value: %s\n",
                        optarg != NULL ? optarg : "(none)");
            return -1;
        }
    }
    a->first_pos = optind;
    return 0;
}

static int uuid_args(const struct args *a, uint8_t vid[16], uint8_t cid[16], int *has_vid,
                     int *has_cid)
{
    *has_vid = *has_cid = 0;
    if (a->vid != NULL) {
        if (parse_uuid(a->vid, ns_dns, vid) != 0) {
            fprintf(stderr, "fleetgw-tool: bad --vid '%s'\n", a->vid);
            return -1;
        }
        *has_vid = 1;
    }
    if (a->cid != NULL) {
        if (parse_uuid(a->cid, *has_vid ? vid : NULL, cid) != 0) {
            fprintf(stderr, "fleetgw-tool: bad --cid '%s' (a name needs --vid as its namespace)\n",
                    a->cid);
            return -1;
        }
        *has_cid = 1;
    }
    return 0;
}

static int cmd_sign(int argc, char **argv)
{
    struct args a;
    struct image_sign_opts o;
    uint8_t vid[16], cid[16], digest[CRYPTO_SHA256_LEN];
    int has_vid, has_cid, rc = TOOL_USAGE;
    uint8_t *payload = NULL, *out = NULL;
    size_t payload_len = 0, out_len = 0;
    EVP_PKEY *key = NULL;

    memset(&o, 0, sizeof(o));
    if (parse_args(argc, argv, &a) != 0 || a.n_keys != 1 || a.version == NULL || !a.has_hdr ||
        !a.has_slot || argc - a.first_pos != 2 || a.has_min_counter || a.json) {
        image_usage(stderr);
        return TOOL_USAGE;
    }
    if (parse_version(a.version, &o.version) != 0) {
        fprintf(stderr, "fleetgw-tool: bad version '%s'\n", a.version);
        return TOOL_USAGE;
    }
    if (a.seccnt != NULL) {
        uint64_t v = 0;
        if (strcmp(a.seccnt, "auto") == 0) {
            v = ((uint64_t)o.version.major << 24) + ((uint64_t)o.version.minor << 16) +
                o.version.revision;
        } else if (parse_u64(a.seccnt, 0xffffffffu, &v) != 0) {
            fprintf(stderr, "fleetgw-tool: bad security counter '%s'\n", a.seccnt);
            return TOOL_USAGE;
        }
        o.has_sec_cnt = 1;
        o.sec_cnt = (uint32_t)v;
    }
    if (a.key_format != NULL && strcmp(a.key_format, "hash") != 0 &&
        strcmp(a.key_format, "full") != 0) {
        fprintf(stderr, "fleetgw-tool: --public-key-format is hash or full\n");
        return TOOL_USAGE;
    }
    if (uuid_args(&a, vid, cid, &has_vid, &has_cid) != 0)
        return TOOL_USAGE;
    key = tool_load_key(a.keys[0], 1);
    if (key == NULL)
        goto out;
    if (tool_pub_point(key, o.pub) != 0) {
        fprintf(stderr, "fleetgw-tool: cannot read the public point of %s\n", a.keys[0]);
        goto out;
    }
    const char *in_path = argv[a.first_pos], *out_path = argv[a.first_pos + 1];
    if (tool_read_file(in_path, IMAGE_MAX_LEN, &payload, &payload_len) != 0)
        goto out;
    o.payload = payload;
    o.payload_len = payload_len;
    o.hdr_size = (uint16_t)a.hdr_size;
    o.pad_header = a.pad_header;
    o.slot_size = (uint32_t)a.slot_size;
    o.align = (uint32_t)a.align;
    o.max_align = (uint32_t)a.max_align;
    o.max_sectors = (uint32_t)a.max_sectors;
    o.pad = a.pad || a.confirm; /* as imgtool: --confirm implies --pad */
    o.confirm = a.confirm;
    o.load_addr = (uint32_t)a.load_addr;
    o.ram_load = a.has_load_addr && a.load_addr != 0;
    o.vid = has_vid ? vid : NULL;
    o.cid = has_cid ? cid : NULL;
    o.key_format =
        a.key_format != NULL && strcmp(a.key_format, "full") == 0 ? IMAGE_KEY_FULL : IMAGE_KEY_HASH;
    o.sign = tool_sign_p256;
    o.sign_ctx = key;
    size_t cap = (size_t)o.hdr_size + payload_len + 4096;
    if (cap < o.slot_size)
        cap = o.slot_size;
    out = malloc(cap);
    if (out == NULL)
        goto out;
    enum image_status st = image_sign(&o, out, cap, &out_len, digest);
    if (st != IMAGE_OK) {
        fprintf(stderr, "fleetgw-tool: cannot sign %s: %s\n", in_path, image_status_str(st));
        goto out;
    }
    if (tool_write_atomic(out_path, out, out_len, 0644) != 0)
        goto out;
    char h[65], ver[48];
    hex_encode(digest, sizeof(digest), h);
    version_str(&o.version, ver, sizeof(ver));
    printf("signed %s: version %s, %zu bytes, digest %s\n", out_path, ver, out_len, h);
    rc = TOOL_OK;
out:
    free(out);
    free(payload);
    EVP_PKEY_free(key);
    return rc;
}

static void print_info_text(const struct image_info *i)
{
    char ver[48], u[37], h[65];
    version_str(&i->version, ver, sizeof(ver));
    printf("version:          %s\n", ver);
    printf("header size:      0x%x\n", i->hdr_size);
    printf("image size:       %" PRIu32 "\n", i->img_size);
    printf("load address:     0x%08" PRIx32 "\n", i->load_addr);
    printf("flags:            0x%08" PRIx32 "\n", i->flags);
    printf("protected TLVs:   %u (%u bytes)\n", i->n_prot_tlvs, i->protect_tlv_size);
    printf("TLVs:             %u\n", i->n_tlvs);
    if (i->has_sec_cnt)
        printf("security counter: %" PRIu32 "\n", i->sec_cnt);
    if (i->has_vid) {
        uuid_str(i->vid, u);
        printf("vendor (vid):     %s\n", u);
    }
    if (i->has_cid) {
        uuid_str(i->cid, u);
        printf("class (cid):      %s\n", u);
    }
    for (unsigned d = 0; d < i->n_deps; d++) {
        version_str(&i->deps[d].min_version, ver, sizeof(ver));
        printf("dependency:       image %u >= %s\n", i->deps[d].image_id, ver);
    }
    if (i->has_sha256) {
        hex_encode(i->sha256, 32, h);
        printf("SHA256 TLV:       %s\n", h);
    }
    if (i->has_keyhash) {
        hex_encode(i->keyhash, 32, h);
        printf("KEYHASH TLV:      %s\n", h);
    }
    if (i->pubkey_off != 0)
        printf("PUBKEY TLV:       %zu bytes\n", i->pubkey_len);
    if (i->sig_off != 0)
        printf("signature:        ECDSA P-256, %zu bytes DER\n", i->sig_len);
    if (i->padding_len != 0)
        printf("slot padding:     %zu bytes\n", i->padding_len);
}

static void print_info_json(const struct image_info *i)
{
    char ver[48], u[37], h[65];
    version_str(&i->version, ver, sizeof(ver));
    printf("\"version\":\"%s\",\"header_size\":%u,\"image_size\":%" PRIu32 ",\"load_addr\":%" PRIu32
           ",\"flags\":%" PRIu32 ",\"protected_tlv_size\":%u",
           ver, i->hdr_size, i->img_size, i->load_addr, i->flags, i->protect_tlv_size);
    if (i->has_sec_cnt)
        printf(",\"security_counter\":%" PRIu32, i->sec_cnt);
    else
        printf(",\"security_counter\":null");
    if (i->has_vid) {
        uuid_str(i->vid, u);
        printf(",\"vid\":\"%s\"", u);
    }
    if (i->has_cid) {
        uuid_str(i->cid, u);
        printf(",\"cid\":\"%s\"", u);
    }
    printf(",\"dependencies\":[");
    for (unsigned d = 0; d < i->n_deps; d++) {
        version_str(&i->deps[d].min_version, ver, sizeof(ver));
        printf("%s{\"image\":%u,\"min_version\":\"%s\"}", d ? "," : "", i->deps[d].image_id, ver);
    }
    printf("]");
    if (i->has_sha256) {
        hex_encode(i->sha256, 32, h);
        printf(",\"sha256_tlv\":\"%s\"", h);
    }
    if (i->has_keyhash) {
        hex_encode(i->keyhash, 32, h);
        printf(",\"keyhash_tlv\":\"%s\"", h);
    }
    printf(",\"key_format\":\"%s\"",
           i->has_keyhash ? "hash" : (i->pubkey_off != 0 ? "full" : "none"));
    printf(",\"signed\":%s,\"padding\":%zu", i->sig_off != 0 ? "true" : "false", i->padding_len);
}

static int cmd_info(int argc, char **argv)
{
    struct args a;
    if (parse_args(argc, argv, &a) != 0 || argc - a.first_pos != 1 || a.n_keys != 0) {
        image_usage(stderr);
        return TOOL_USAGE;
    }
    const char *path = argv[a.first_pos];
    uint8_t *img = NULL;
    size_t len = 0;
    if (tool_read_file(path, IMAGE_MAX_LEN, &img, &len) != 0)
        return TOOL_USAGE;
    struct image_info info;
    enum image_status st = image_parse(img, len, &info);
    free(img);
    if (a.json) {
        printf("{\"file\":");
        tool_json_str(stdout, path);
        printf(",\"valid_structure\":%s,\"status\":\"%s\",\"reason\":\"%s\"",
               st == IMAGE_OK ? "true" : "false", status_id(st), image_status_str(st));
        if (st == IMAGE_OK) {
            printf(",");
            print_info_json(&info);
        }
        printf("}\n");
    } else if (st == IMAGE_OK) {
        printf("%s: MCUboot image (structure only, not verified)\n", path);
        print_info_text(&info);
    }
    if (st != IMAGE_OK) {
        fprintf(stderr, "%s: malformed: %s\n", path, image_status_str(st));
        return TOOL_INVALID;
    }
    return TOOL_OK;
}

static int load_trusted(const struct args *a, struct image_key *keys)
{
    for (size_t i = 0; i < a->n_keys; i++) {
        EVP_PKEY *k = tool_load_key(a->keys[i], 0);
        int ok = k != NULL && tool_pub_point(k, keys[i].pub) == 0;
        EVP_PKEY_free(k);
        if (!ok)
            return -1;
    }
    return 0;
}

static int cmd_verify(int argc, char **argv)
{
    struct args a;
    struct image_key keys[IMAGE_MAX_KEYS];
    uint8_t vid[16], cid[16];
    int has_vid, has_cid;
    if (parse_args(argc, argv, &a) != 0 || argc - a.first_pos != 1 || a.n_keys == 0) {
        image_usage(stderr);
        return TOOL_USAGE;
    }
    if (uuid_args(&a, vid, cid, &has_vid, &has_cid) != 0 || load_trusted(&a, keys) != 0)
        return TOOL_USAGE;
    const char *path = argv[a.first_pos];
    uint8_t *img = NULL;
    size_t len = 0;
    if (tool_read_file(path, IMAGE_MAX_LEN, &img, &len) != 0)
        return TOOL_USAGE;
    struct image_verify_opts vo = {
        .keys = keys,
        .n_keys = a.n_keys,
        .check_min_counter = a.has_min_counter,
        .min_counter = (uint32_t)a.min_counter,
        .expect_cid = has_cid ? cid : NULL,
        .expect_vid = has_vid ? vid : NULL,
    };
    struct image_result r;
    enum image_status st = image_verify(img, len, &vo, &r);
    free(img);
    char h[65], kh[65];
    hex_encode(r.digest, 32, h);
    hex_encode(r.signer_keyhash, 32, kh);
    if (a.json) {
        printf("{\"file\":");
        tool_json_str(stdout, path);
        printf(",\"valid\":%s,\"status\":\"%s\",\"reason\":\"%s\"",
               st == IMAGE_OK ? "true" : "false", status_id(st), image_status_str(st));
        if (st == IMAGE_OK) {
            printf(",\"digest\":\"%s\",\"signer_keyhash\":\"%s\",\"key\":", h, kh);
            tool_json_str(stdout, a.keys[r.key_index]);
            printf(",");
            print_info_json(&r.info);
        }
        printf("}\n");
    }
    if (st != IMAGE_OK) {
        fprintf(stderr, "%s: invalid: %s\n", path, image_status_str(st));
        return TOOL_INVALID;
    }
    if (!a.json) {
        char ver[48];
        version_str(&r.info.version, ver, sizeof(ver));
        printf("%s: valid\n", path);
        printf("digest:           %s\n", h);
        printf("signer:           %s (key hash %s)\n", a.keys[r.key_index], kh);
        print_info_text(&r.info);
    }
    return TOOL_OK;
}

/* Hidden: verification throughput of a --size byte image (SHA-256 over it plus one ECDSA
 * verification), for tests/integration/bench_proto_image.py. */
static int cmd_bench(int argc, char **argv)
{
    struct args a;
    int rc = TOOL_USAGE;
    if (parse_args(argc, argv, &a) != 0 || argc != a.first_pos) {
        image_usage(stderr);
        return TOOL_USAGE;
    }
    EVP_PKEY *key = EVP_EC_gen("P-256");
    uint8_t *payload = malloc(a.size), *img = malloc(a.size + 8192);
    struct image_sign_opts o;
    memset(&o, 0, sizeof(o));
    if (key == NULL || payload == NULL || img == NULL || tool_pub_point(key, o.pub) != 0 ||
        RAND_bytes(payload, (int)a.size) != 1)
        goto out;
    o.payload = payload;
    o.payload_len = a.size;
    o.version.major = 1;
    o.hdr_size = 0x200;
    o.pad_header = 1;
    o.align = 4;
    o.has_sec_cnt = 1;
    o.sec_cnt = 1;
    o.sign = tool_sign_p256;
    o.sign_ctx = key;
    size_t len = 0;
    if (image_sign(&o, img, a.size + 8192, &len, NULL) != IMAGE_OK)
        goto out;
    struct image_key k;
    memcpy(k.pub, o.pub, sizeof(k.pub));
    struct image_verify_opts vo = {.keys = &k, .n_keys = 1};
    struct image_result r;
    /* Wall time, and CPU time as `openssl speed` measures by default (user time), so that
     * a loaded machine does not skew the comparison. */
    struct tool_stopwatch sw;
    double cpu, secs;
    tool_stopwatch_start(&sw);
    for (uint64_t i = 0; i < a.iterations; i++)
        if (image_verify(img, len, &vo, &r) != IMAGE_OK)
            goto out;
    tool_stopwatch_read(&sw, &cpu, &secs);
    double bytes = (double)len * (double)a.iterations;
    printf("{\"image_bytes\":%zu,\"iterations\":%" PRIu64
           ",\"seconds\":%.6f,\"bytes_per_second\":%.0f,\"cpu_seconds\":%.6f,"
           "\"bytes_per_cpu_second\":%.0f}\n",
           len, a.iterations, secs, bytes / secs, cpu, bytes / cpu);
    rc = TOOL_OK;
out:
    free(img);
    free(payload);
    EVP_PKEY_free(key);
    return rc;
}

int tool_image(int argc, char **argv)
{
    if (argc < 2) {
        image_usage(stderr);
        return TOOL_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "sign") == 0)
        return cmd_sign(argc - 1, argv + 1);
    if (strcmp(cmd, "verify") == 0)
        return cmd_verify(argc - 1, argv + 1);
    if (strcmp(cmd, "info") == 0)
        return cmd_info(argc - 1, argv + 1);
    if (strcmp(cmd, "bench") == 0)
        return cmd_bench(argc - 1, argv + 1);
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        image_usage(stdout);
        return TOOL_OK;
    }
    image_usage(stderr);
    return TOOL_USAGE;
}
