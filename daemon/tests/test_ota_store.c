/* The OTA image store (ota_store.c): the classes file parser, every staging refusal with
 * nothing stored (the directory listing before == after), acceptance and idempotent put,
 * reads at offsets, lookup by prefix, foreach, release links, removal, re-verification of a
 * stored image altered on disk, and the clean-up of an interrupted write at open. Keys are
 * generated here with OpenSSL; images are signed with proto's image_sign. */
#include "check.h"
#include "check_crypto.h"
#include "ota_store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fleetgw/hex.h>
#include <fleetgw/image.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[] = "/tmp/fleetgw-ota-XXXXXX";
static char store_dir[300];

static const uint8_t CID_A[16] = {0x3f, 0x2a, 0x0c, 0x1e, 0x5b, 0x7d, 0x4e, 0x8f,
                                  0x9a, 0x10, 0xb2, 0xc3, 0xd4, 0xe5, 0xf6, 0x07};
static const uint8_t VID_A[16] = {0x11, 0x11, 0x11, 0x11, 0x22, 0x22, 0x33, 0x33,
                                  0x44, 0x44, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55};
static const uint8_t CID_X[16] = {0xde, 0xad, 0xbe, 0xef};

struct img_spec {
    EVP_PKEY *key;
    size_t payload_len;
    struct image_version ver;
    int has_cnt;
    uint32_t cnt;
    const uint8_t *cid, *vid;
};

/* A signed image of spec into out (cap bytes); its length. */
static size_t make_image(const struct img_spec *sp, uint8_t *out, size_t cap)
{
    static uint8_t payload[70000];
    struct image_sign_opts o;
    size_t len = 0;
    for (size_t i = 0; i < sizeof(payload); i++)
        payload[i] = (uint8_t)(i * 13 + sp->ver.major);
    memset(&o, 0, sizeof(o));
    o.payload = payload;
    o.payload_len = sp->payload_len;
    o.version = sp->ver;
    o.hdr_size = 32;
    o.pad_header = 1;
    o.align = 4;
    o.has_sec_cnt = sp->has_cnt;
    o.sec_cnt = sp->cnt;
    o.cid = sp->cid;
    o.vid = sp->vid;
    (void)check_p256_pub(sp->key, o.pub);
    o.key_format = IMAGE_KEY_HASH;
    o.sign = check_p256_sign;
    o.sign_ctx = sp->key;
    CHECK_EQ_INT(image_sign(&o, out, cap, &len, NULL), IMAGE_OK);
    return len;
}

/* "name size\n" of every entry of the store and of released/, sorted by name. */
static void listing(char *out, size_t cap)
{
    static const char *const subs[] = {"", "/released"};
    static char names[64][400];
    size_t n = 0;
    for (size_t k = 0; k < 2; k++) {
        char p[400];
        snprintf(p, sizeof(p), "%s%s", store_dir, subs[k]);
        DIR *d = opendir(p);
        if (d == NULL)
            continue;
        struct dirent *de;
        while ((de = readdir(d)) != NULL && n < 64) {
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                continue;
            char f[1024];
            struct stat st;
            snprintf(f, sizeof(f), "%s/%s", p, de->d_name);
            if (stat(f, &st) != 0)
                st.st_size = -1;
            snprintf(names[n++], sizeof(names[0]), "%s/%s %lld", subs[k], de->d_name,
                     (long long)st.st_size);
        }
        closedir(d);
    }
    qsort(names, n, sizeof(names[0]), (int (*)(const void *, const void *))strcmp);
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(out);
        snprintf(out + l, cap - l, "%s\n", names[i]);
    }
}

/* What the class-state callback answers. */
static struct ota_class_state state_answer;
static int state_calls;

static int class_state(void *ctx, const char *cls, struct ota_class_state *ret)
{
    (void)ctx;
    (void)cls;
    state_calls++;
    *ret = state_answer;
    return 0;
}

static char classes_text[2048];

/* Replaces, in the metadata of image hx, the SHA-256 of file `was` by that of `now`. */
static int rewrite_file_sha(const char *hx, const uint8_t *now, size_t len, const uint8_t *was)
{
    uint8_t d[32];
    char oh[65], nh[65], f[600], text[4096];
    unsigned int dl = 0;
    EVP_Digest(was, len, d, &dl, EVP_sha256(), NULL);
    hex_encode(d, 32, oh);
    EVP_Digest(now, len, d, &dl, EVP_sha256(), NULL);
    hex_encode(d, 32, nh);
    snprintf(f, sizeof(f), "%s/%s.json", store_dir, hx);
    FILE *fp = fopen(f, "r");
    if (fp == NULL)
        return -1;
    size_t n = fread(text, 1, sizeof(text) - 1, fp);
    fclose(fp);
    text[n] = '\0';
    char *at = strstr(text, oh);
    if (at == NULL)
        return -1;
    memcpy(at, nh, 64);
    fp = fopen(f, "w");
    if (fp == NULL)
        return -1;
    fwrite(text, 1, n, fp);
    fclose(fp);
    return 0;
}

struct seen_list {
    size_t n, stop_after;
    uint8_t d[8][32];
};

static int collect(const struct ota_image_meta *m, void *u)
{
    struct seen_list *l = u;
    if (l->n < 8)
        memcpy(l->d[l->n], m->digest, 32);
    l->n++;
    return l->stop_after != 0 && l->n >= l->stop_after;
}

/* Refused by put with reason want, the why sentence non-empty, nothing on disk changed. */
static void expect_refused(struct ota_store *s, const uint8_t *img, size_t len,
                           const struct ota_check_opts *o, enum ota_refusal want, int line)
{
    char before[8192], after[8192], why[512];
    struct ota_image_meta m;
    uint64_t used = ota_store_used(s);
    listing(before, sizeof(before));
    why[0] = '\0';
    enum ota_refusal r = ota_store_put(s, img, len, o, "test", 1000, &m, why, sizeof(why));
    listing(after, sizeof(after));
    if (r != want)
        fprintf(stderr, "  line %d: %s, expected %s (%s)\n", line, ota_refusal_str(r),
                ota_refusal_str(want), why);
    else
        fprintf(stderr, "  refused as expected: REASON=%s: %s\n", ota_refusal_str(r), why);
    CHECK(r == want);
    CHECK(why[0] != '\0');
    CHECK(strcmp(before, after) == 0);
    CHECK(ota_store_used(s) == used);
}
#define REFUSED(s, img, len, o, want) expect_refused(s, img, len, o, want, __LINE__)

/* tmpl with @1 = s1, @2 = s2, @3 = the first 10 characters of s2. */
static void subst(char *out, size_t cap, const char *tmpl, const char *s1, const char *s2)
{
    size_t o = 0;
    for (const char *c = tmpl; *c && o + 1 < cap; c++) {
        const char *ins = NULL;
        size_t il = 0;
        if (c[0] == '@' && (c[1] == '1' || c[1] == '2' || c[1] == '3')) {
            ins = c[1] == '1' ? s1 : s2;
            il = c[1] == '3' ? 10 : strlen(ins);
            c++;
        }
        if (ins == NULL) {
            out[o++] = *c;
            continue;
        }
        for (size_t k = 0; k < il && o + 1 < cap; k++)
            out[o++] = ins[k];
    }
    out[o] = '\0';
}

static void test_classes_parse(const char *s1, const char *s2)
{
    struct ota_classes c;
    char err[512], t[2048];

    CHECK_EQ_INT(ota_classes_parse(classes_text, strlen(classes_text), &c, err, sizeof(err)), 0);
    CHECK_EQ_INT(c.n, 2);
    const struct ota_class *a = ota_class_find(&c, "sensor-m3");
    CHECK(a != NULL && a->has_cid && a->has_vid && a->slot_size == 65536 && a->n_signers == 1 &&
          a->min_security_counter == 2 && a->flash_align == 8 && a->max_sectors == 128);
    CHECK(a != NULL && a->trailer_size == image_trailer_size(8, 0, 128));
    CHECK(a != NULL && a->trailer_size == 3120);
    CHECK(ota_class_by_cid(&c, CID_A) == a);
    CHECK(ota_class_by_cid(&c, CID_X) == NULL);
    CHECK(ota_class_find(&c, "nope") == NULL);
    const struct ota_class *b = ota_class_find(&c, "plain");
    CHECK(b != NULL && !b->has_cid && b->n_signers == 2 && b->flash_align == 4 &&
          b->max_sectors == 64 && b->trailer_size == image_trailer_size(4, 0, 64));
    /* chunk_size: the class's own (its nodes' receive buffer), else 0 = ota.chunk_size */
    CHECK(b != NULL && b->chunk_size == 1024 && a != NULL && a->chunk_size == 0);

    /* Each error names the class (index and name) and the key. */
    static const struct {
        const char *text;
        const char *must[3];
    } bad[] = {
        {"{\"classes\": [{\"name\": \"a\", \"slot_size\": 65536, \"signers\": [\"@1\"]}, "
         "{\"name\": \"b\", \"slot_size\": 65536, \"signers\": [\"@2\"], \"colour\": 1}]}",
         {"classes[1]", "(\"b\")", "'colour'"}},
        {"{\"classes\": [{\"name\": \"a\", \"signers\": [\"@2\"]}]}",
         {"classes[0]", "(\"a\")", "'slot_size'"}},
        {"{\"classes\": [{\"name\": \"a\", \"slot_size\": \"big\", \"signers\": [\"@2\"]}]}",
         {"classes[0]", "'slot_size'", "integer"}},
        {"{\"classes\": [{\"name\": \"a\", \"slot_size\": 65536, \"signers\": [\"@2\"], "
         "\"cid\": \"3f2a0c1e5b7d4e8f9a10b2c3d4e5f607\"}]}",
         {"classes[0]", "'cid'", "UUID"}},
        {"{\"classes\": [{\"name\": \"a\", \"slot_size\": 65536, \"signers\": [\"@1\", \"@2\"], "
         "\"flash_align\": 3}]}",
         {"classes[0]", "'flash_align'", "32"}},
        {"{\"classes\": [{\"name\": \"a\", \"slot_size\": 65536, \"signers\": [\"@1\"], "
         "\"chunk_size\": 4096}]}",
         {"classes[0]", "'chunk_size'", "2048"}},
        {"{\"classes\": [{\"name\": \"a\", \"slot_size\": 65536, \"signers\": [\"@1\", \"@1\"]}]}",
         {"classes[0]", "'signers'", "repeats"}},
        {"{\"classes\": [{\"name\": \"a\", \"slot_size\": 65536}]}",
         {"classes[0]", "'signers'", "missing"}},
        {"{\"classes\": [{\"slot_size\": 65536}]}", {"classes[0]", "'name'", "missing"}},
        {"{\"classes\": [{\"name\": \"a\", \"slot_size\": 65536, \"signers\": [\"@2\", "
         "\"@3\"]}]}",
         {"classes[0]", "'signers'", "entry 1"}},
        {"{\"classes\": [{\"name\": \"a b\", \"slot_size\": 65536, \"signers\": [\"@2\"]}]}",
         {"classes[0]", "'name'", "A-Z"}},
        {"{\"classes\": [{\"name\": \"a\", \"slot_size\": 65536, \"signers\": [\"@2\"]}, "
         "{\"name\": \"a\", \"slot_size\": 65536, \"signers\": [\"@2\"]}]}",
         {"classes[1]", "'name'", "same name"}},
        {"{\"classes\": [{\"name\": \"a\", \"slot_size\": 65536, \"signers\": [\"@2\"], "
         "\"cid\": \"3f2a0c1e-5b7d-4e8f-9a10-b2c3d4e5f607\"}, {\"name\": \"b\", \"slot_size\": "
         "65536, \"signers\": [\"@2\"], \"cid\": \"3F2A0C1E-5B7D-4E8F-9A10-B2C3D4E5F607\"}]}",
         {"classes[1]", "'cid'", "(\"a\")"}},
        {"{\"classes\": [{\"name\": \"a\", \"slot_size\": 2048, \"signers\": [\"@2\"], "
         "\"flash_align\": 32}]}",
         {"classes[0]", "trailer", "slot_size 2048"}},
        {"{\"classes\": [], \"extra\": 1}", {"'extra'", "top level", ""}},
        {"{\"classes\": [{\"name\": \"a\", ", {"syntax", "", ""}},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        subst(t, sizeof(t), bad[i].text, s1, s2);
        err[0] = '\0';
        int r = ota_classes_parse(t, strlen(t), &c, err, sizeof(err));
        CHECK_EQ_INT(r, -EINVAL);
        CHECK(c.n == 0);
        for (size_t k = 0; k < 3; k++) {
            if (strstr(err, bad[i].must[k]) == NULL) {
                fprintf(stderr, "  case %zu: '%s' not in \"%s\"\n", i, bad[i].must[k], err);
                CHECK(false);
            }
        }
    }

    /* From a file: the path prefixes the error. */
    char p[400];
    snprintf(p, sizeof(p), "%s/classes.json", dir);
    FILE *f = fopen(p, "w");
    CHECK(f != NULL);
    if (f != NULL) {
        fputs("{\"classes\": [{\"name\": \"a\"}]}\n", f);
        fclose(f);
    }
    CHECK_EQ_INT(ota_classes_load(p, &c, err, sizeof(err)), -EINVAL);
    CHECK(strstr(err, p) != NULL && strstr(err, "'slot_size'") != NULL);
    unlink(p);
    CHECK(ota_classes_load(p, &c, err, sizeof(err)) == -ENOENT);
    CHECK(strstr(err, p) != NULL);
}

int main(void)
{
    static uint8_t good[80000], img[80000], buf[80000];
    EVP_PKEY *k1 = EVP_EC_gen("P-256"), *k2 = EVP_EC_gen("P-256"), *k3 = EVP_EC_gen("P-256");
    uint8_t id1[32], id2[32], pub[65];
    char s1[65], s2[65], why[512], p[600];
    struct image_key signers[2];
    struct ota_classes classes, no_classes;
    struct ota_store *s = NULL;
    struct ota_image_meta m;

    CHECK(k1 != NULL && k2 != NULL && k3 != NULL);
    if (mkdtemp(dir) == NULL)
        check_skip("cannot create a temporary directory");
    snprintf(store_dir, sizeof(store_dir), "%s/store", dir);
    (void)check_p256_pub(k1, pub);
    memcpy(signers[0].pub, pub, 65);
    CHECK_EQ_INT(image_key_hash(pub, id1), IMAGE_OK);
    (void)check_p256_pub(k2, pub);
    memcpy(signers[1].pub, pub, 65);
    CHECK_EQ_INT(image_key_hash(pub, id2), IMAGE_OK);
    hex_encode(id1, 32, s1);
    hex_encode(id2, 32, s2);

    /* sensor-m3: identified by CID/VID, only k1, floor 2. plain: no CID, k1 and k2. */
    snprintf(classes_text, sizeof(classes_text),
             "{\"classes\": [\n"
             " {\"name\": \"sensor-m3\", \"cid\": \"3f2a0c1e-5b7d-4e8f-9a10-b2c3d4e5f607\",\n"
             "  \"vid\": \"11111111-2222-3333-4444-555555555555\", \"slot_size\": 65536,\n"
             "  \"signers\": [\"%s\"], \"min_security_counter\": 2},\n"
             " {\"name\": \"plain\", \"slot_size\": 65536, \"signers\": [\"%s\", \"%s\"],\n"
             "  \"flash_align\": 4, \"max_sectors\": 64, \"chunk_size\": 1024}\n"
             "]}\n",
             s1, s1, s2);
    test_classes_parse(s1, s2);
    CHECK_EQ_INT(ota_classes_parse(classes_text, strlen(classes_text), &classes, why, sizeof(why)),
                 0);
    memset(&no_classes, 0, sizeof(no_classes));

    snprintf(p, sizeof(p), "%s/no/such/dir", dir);
    CHECK_EQ_INT(ota_store_open(p, 160000, &s), -ENOENT);
    CHECK(s == NULL);
    CHECK_EQ_INT(ota_store_open(store_dir, 160000, &s), 0);
    if (s == NULL)
        return check_finish();
    struct stat st;
    CHECK(stat(store_dir, &st) == 0 && (st.st_mode & 0777) == 0750);
    CHECK(strstr(ota_store_released_dir(s), "/store/released") != NULL);

    struct ota_check_opts o;
    memset(&o, 0, sizeof(o));
    o.classes = &classes;
    o.signers = signers;
    o.n_signers = 2;
    o.expect_size = -1;

    /* The good image: sensor-m3 by CID/VID, k1, counter 3, version 1.2.0+0. */
    struct img_spec gs = {k1, 20000, {1, 2, 0, 0}, 1, 3, CID_A, VID_A};
    size_t gl = make_image(&gs, good, sizeof(good));
    struct img_spec sp;
    size_t l;

    /* format */
    REFUSED(s, (const uint8_t *)"not an MCUboot image at all", 27, &o, OTA_R_FORMAT);
    REFUSED(s, good, 0, &o, OTA_R_FORMAT);
    REFUSED(s, good, 40, &o, OTA_R_FORMAT);
    /* tampered: one byte of the body */
    memcpy(img, good, gl);
    img[32 + 5000] ^= 0x01;
    REFUSED(s, img, gl, &o, OTA_R_TAMPERED);
    /* unknown signer */
    sp = gs;
    sp.key = k3;
    l = make_image(&sp, img, sizeof(img));
    REFUSED(s, img, l, &o, OTA_R_UNKNOWN_SIGNER);
    o.n_signers = 0;
    REFUSED(s, good, gl, &o, OTA_R_UNKNOWN_SIGNER);
    o.n_signers = 2;
    /* signer in the set, not allowed for sensor-m3 */
    sp = gs;
    sp.key = k2;
    l = make_image(&sp, img, sizeof(img));
    REFUSED(s, img, l, &o, OTA_R_SIGNER_NOT_ALLOWED);
    /* security counter: below the class floor (2), missing, below a raised floor */
    sp = gs;
    sp.cnt = 1;
    l = make_image(&sp, img, sizeof(img));
    REFUSED(s, img, l, &o, OTA_R_COUNTER_LOW);
    sp.has_cnt = 0;
    l = make_image(&sp, img, sizeof(img));
    REFUSED(s, img, l, &o, OTA_R_COUNTER_LOW);
    o.class_state = class_state;
    memset(&state_answer, 0, sizeof(state_answer));
    state_answer.floor = 4;
    REFUSED(s, good, gl, &o, OTA_R_COUNTER_LOW);
    /* downgrade: the class runs 1.3.0; 1.2.0 is refused without recovery */
    state_answer.floor = 0;
    state_answer.has_current = true;
    state_answer.current = (struct image_version){1, 3, 0, 0};
    state_calls = 0;
    REFUSED(s, good, gl, &o, OTA_R_DOWNGRADE);
    CHECK(state_calls == 1);
    state_answer.current = (struct image_version){1, 2, 0, 1}; /* the build number counts */
    REFUSED(s, good, gl, &o, OTA_R_DOWNGRADE);
    /* device class: TLV says sensor-m3, declared plain */
    state_answer.has_current = false;
    o.declared_class = "plain";
    REFUSED(s, good, gl, &o, OTA_R_CLASS_MISMATCH);
    o.declared_class = NULL;
    /* an unknown CID; a VID of another vendor; CID without the class's VID */
    sp = gs;
    sp.cid = CID_X;
    l = make_image(&sp, img, sizeof(img));
    REFUSED(s, img, l, &o, OTA_R_UNKNOWN_CLASS);
    sp = gs;
    sp.vid = CID_X;
    l = make_image(&sp, img, sizeof(img));
    REFUSED(s, img, l, &o, OTA_R_CLASS_MISMATCH);
    sp.vid = NULL;
    l = make_image(&sp, img, sizeof(img));
    REFUSED(s, img, l, &o, OTA_R_CLASS_MISMATCH);
    /* no CID: the declared class decides; none declared, or an unknown one, is refused */
    sp = gs;
    sp.cid = sp.vid = NULL;
    size_t nl = make_image(&sp, img, sizeof(img));
    REFUSED(s, img, nl, &o, OTA_R_UNKNOWN_CLASS);
    o.declared_class = "no-such-class";
    REFUSED(s, img, nl, &o, OTA_R_UNKNOWN_CLASS);
    /* the declared class decides the signer list too: k3 signs nothing here, k2 is not
     * allowed for sensor-m3 */
    o.declared_class = "sensor-m3";
    sp.key = k2;
    l = make_image(&sp, img, sizeof(img));
    REFUSED(s, img, l, &o, OTA_R_SIGNER_NOT_ALLOWED);
    /* no classes configured at all */
    o.declared_class = "plain";
    o.classes = &no_classes;
    REFUSED(s, good, gl, &o, OTA_R_UNKNOWN_CLASS);
    o.classes = &classes;
    o.declared_class = NULL;
    /* too big: 63000 payload bytes + header + TLVs fit 65536, not with the 3120-byte
     * trailer */
    sp = gs;
    sp.payload_len = 63000;
    l = make_image(&sp, img, sizeof(img));
    CHECK(l <= 65536 && l + 3120 > 65536);
    REFUSED(s, img, l, &o, OTA_R_TOO_BIG);
    sp.payload_len = 66000;
    l = make_image(&sp, img, sizeof(img));
    REFUSED(s, img, l, &o, OTA_R_TOO_BIG);
    /* not the image the job named: digest, size */
    uint8_t wrong[32];
    memset(wrong, 0x5a, sizeof(wrong));
    o.expect_digest = wrong;
    REFUSED(s, good, gl, &o, OTA_R_DIGEST_MISMATCH);
    o.expect_digest = NULL;
    o.expect_size = (int64_t)gl + 1;
    REFUSED(s, good, gl, &o, OTA_R_DIGEST_MISMATCH);
    o.expect_size = -1;
    /* nothing at all was stored */
    CHECK(ota_store_used(s) == 0);

    /* Accepted, with the job's digest and size. */
    uint8_t gd[32];
    CHECK_EQ_INT(ota_image_check(good, gl, &o, &m, why, sizeof(why)), OTA_OK);
    memcpy(gd, m.digest, 32);
    o.expect_digest = gd;
    o.expect_size = (int64_t)gl;
    CHECK_EQ_INT(ota_store_put(s, good, gl, &o, "fleetgwctl", 1234, &m, why, sizeof(why)), OTA_OK);
    o.expect_digest = NULL;
    o.expect_size = -1;
    CHECK(memcmp(m.digest, gd, 32) == 0);
    CHECK(m.size == gl && m.version.major == 1 && m.version.minor == 2 && m.has_counter &&
          m.security_counter == 3 && strcmp(m.class_name, "sensor-m3") == 0 &&
          memcmp(m.signer_id, id1, 32) == 0 && m.staged == 1234 &&
          strcmp(m.source, "fleetgwctl") == 0 && !m.released);
    CHECK(ota_store_used(s) == gl);
    snprintf(p, sizeof(p), "%s/%s.img", store_dir, m.digest_hex);
    CHECK(stat(p, &st) == 0 && (size_t)st.st_size == gl);
    snprintf(p, sizeof(p), "%s/%s.json", store_dir, m.digest_hex);
    CHECK(stat(p, &st) == 0);
    /* idempotent: the same image again changes nothing and answers the stored metadata */
    {
        char before[8192], after[8192];
        listing(before, sizeof(before));
        CHECK_EQ_INT(ota_store_put(s, good, gl, &o, "job:x", 9999, &m, why, sizeof(why)), OTA_OK);
        listing(after, sizeof(after));
        CHECK(strcmp(before, after) == 0);
        CHECK(m.staged == 1234 && strcmp(m.source, "fleetgwctl") == 0);
        CHECK(ota_store_used(s) == gl);
    }
    struct ota_image_meta g;
    CHECK_EQ_INT(ota_store_get(s, gd, &g), 0);
    CHECK(memcmp(&g, &m, sizeof(g)) == 0);

    /* Reads at offsets from the store. */
    CHECK(ota_store_read(s, gd, 0, buf, 1024) == 1024 && memcmp(buf, good, 1024) == 0);
    CHECK(ota_store_read(s, gd, 777, buf, 2048) == 2048 && memcmp(buf, good + 777, 2048) == 0);
    CHECK(ota_store_read(s, gd, (uint32_t)gl - 10, buf, 2048) == 10 &&
          memcmp(buf, good + gl - 10, 10) == 0);
    CHECK(ota_store_read(s, gd, (uint32_t)gl, buf, 2048) == 0);
    CHECK(ota_store_read(s, wrong, 0, buf, 16) == -ENOENT);

    /* A downgrade accepted as recovery; the second image (class plain by declaration,
     * signed by k2). Both fit the 160000-byte quota; a third does not. */
    state_answer.has_current = true;
    state_answer.current = (struct image_version){9, 0, 0, 0};
    sp = gs;
    sp.ver = (struct image_version){1, 1, 0, 0};
    sp.payload_len = 30000;
    size_t rl = make_image(&sp, img, sizeof(img));
    REFUSED(s, img, rl, &o, OTA_R_DOWNGRADE);
    o.recovery = true;
    CHECK_EQ_INT(ota_store_put(s, img, rl, &o, "job:rec", 2000, &m, why, sizeof(why)), OTA_OK);
    o.recovery = false;
    uint8_t rd[32];
    memcpy(rd, m.digest, 32);
    state_answer.has_current = false;
    CHECK(ota_store_used(s) == gl + rl);
    sp = gs;
    sp.key = k2;
    sp.cid = sp.vid = NULL;
    sp.payload_len = 60000;
    sp.ver = (struct image_version){2, 0, 0, 0};
    l = make_image(&sp, img, sizeof(img));
    o.declared_class = "plain";
    CHECK_EQ_INT(ota_store_put(s, img, l, &o, "job:p", 3000, &m, why, sizeof(why)), OTA_OK);
    CHECK(strcmp(m.class_name, "plain") == 0 && memcmp(m.signer_id, id2, 32) == 0);
    uint8_t pd[32];
    memcpy(pd, m.digest, 32);
    CHECK(ota_store_used(s) == gl + rl + l);
    sp.ver.minor = 1;
    sp.payload_len = 60000;
    size_t ql = make_image(&sp, img, sizeof(img));
    REFUSED(s, img, ql, &o, OTA_R_QUOTA);
    o.declared_class = NULL;

    /* Lookup: whole digest, 8-digit prefix, either case; errors. */
    uint8_t out[32];
    char hx[65], up[65];
    hex_encode(gd, 32, hx);
    CHECK_EQ_INT(ota_store_lookup(s, hx, out), 0);
    CHECK(memcmp(out, gd, 32) == 0);
    snprintf(up, sizeof(up), "%.8s", hx);
    memset(out, 0, 32);
    CHECK_EQ_INT(ota_store_lookup(s, up, out), 0);
    CHECK(memcmp(out, gd, 32) == 0);
    for (char *c = up; *c; c++)
        if (*c >= 'a' && *c <= 'f')
            *c = (char)(*c - 'a' + 'A');
    CHECK_EQ_INT(ota_store_lookup(s, up, out), 0);
    CHECK_EQ_INT(ota_store_lookup(s, "abc", out), -EINVAL);
    CHECK_EQ_INT(ota_store_lookup(s, "zzzzzzzz", out), -EINVAL);
    {
        /* a prefix of no stored image: the first 8 digits of none of the three */
        char miss[9], rh[65], ph[65];
        hex_encode(rd, 32, rh);
        hex_encode(pd, 32, ph);
        for (unsigned v = 0; v < 16; v++) {
            snprintf(miss, sizeof(miss), "%x%.7s", v, hx + 1);
            if (strncmp(miss, hx, 8) != 0 && strncmp(miss, rh, 8) != 0 && strncmp(miss, ph, 8) != 0)
                break;
        }
        CHECK_EQ_INT(ota_store_lookup(s, miss, out), -ENOENT);
    }
    /* an ambiguous prefix: a second metadata name sharing the first 8 digits */
    {
        char other[65], f[600];
        memcpy(other, hx, 65);
        other[63] = other[63] == '0' ? '1' : '0';
        snprintf(f, sizeof(f), "%s/%s.json", store_dir, other);
        FILE *fp = fopen(f, "w");
        CHECK(fp != NULL);
        if (fp != NULL)
            fclose(fp);
        snprintf(up, sizeof(up), "%.8s", hx);
        CHECK_EQ_INT(ota_store_lookup(s, up, out), -ENOTUNIQ);
        CHECK_EQ_INT(ota_store_lookup(s, hx, out), 0);
        unlink(f);
    }

    /* foreach: every image once, in digest order. */
    struct seen_list fe;
    memset(&fe, 0, sizeof(fe));
    CHECK_EQ_INT(ota_store_foreach(s, collect, &fe), 0);
    CHECK_EQ_INT(fe.n, 3);
    for (size_t i = 1; i < fe.n; i++)
        CHECK(memcmp(fe.d[i - 1], fe.d[i], 32) < 0);
    CHECK(fe.n == 3 && (memcmp(fe.d[0], gd, 32) == 0 || memcmp(fe.d[1], gd, 32) == 0 ||
                        memcmp(fe.d[2], gd, 32) == 0));
    memset(&fe, 0, sizeof(fe));
    fe.stop_after = 1;
    CHECK_EQ_INT(ota_store_foreach(s, collect, &fe), 0);
    CHECK_EQ_INT(fe.n, 1);

    /* Re-verification before an offer. */
    CHECK_EQ_INT(ota_store_verify(s, gd, &o, why, sizeof(why)), OTA_OK);
    CHECK_EQ_INT(ota_store_verify(s, pd, &o, why, sizeof(why)), OTA_OK);
    /* the signer set no longer holds k1; the class no longer allows k2 */
    o.n_signers = 1;
    o.signers = &signers[1];
    CHECK_EQ_INT(ota_store_verify(s, gd, &o, why, sizeof(why)), OTA_R_UNKNOWN_SIGNER);
    o.signers = signers;
    o.n_signers = 2;
    {
        struct ota_classes c2 = classes;
        struct ota_class *pc = (struct ota_class *)ota_class_find(&c2, "plain");
        CHECK(pc != NULL);
        if (pc != NULL)
            pc->n_signers = 1; /* k1 only */
        o.classes = &c2;
        CHECK_EQ_INT(ota_store_verify(s, pd, &o, why, sizeof(why)), OTA_R_SIGNER_NOT_ALLOWED);
        CHECK_EQ_INT(ota_store_verify(s, gd, &o, why, sizeof(why)), OTA_OK);
        o.classes = &no_classes;
        CHECK_EQ_INT(ota_store_verify(s, gd, &o, why, sizeof(why)), OTA_R_UNKNOWN_CLASS);
        o.classes = &classes;
    }
    CHECK_EQ_INT(ota_store_verify(s, wrong, &o, why, sizeof(why)), OTA_R_IO);

    /* Release: a hard link in released/, the metadata says so; twice is fine. */
    CHECK_EQ_INT(ota_store_release(s, gd), 0);
    CHECK_EQ_INT(ota_store_release(s, gd), 0);
    CHECK_EQ_INT(ota_store_get(s, gd, &g), 0);
    CHECK(g.released);
    {
        struct stat a, b;
        char f[600];
        snprintf(f, sizeof(f), "%s/%s.img", ota_store_released_dir(s), hx);
        snprintf(p, sizeof(p), "%s/%s.img", store_dir, hx);
        CHECK(stat(f, &a) == 0 && stat(p, &b) == 0 && a.st_ino == b.st_ino);
    }
    CHECK_EQ_INT(ota_store_release(s, wrong), -ENOENT);

    /* Altered in the store after staging: a body byte (hash), then a byte of the
     * unprotected TLV area (the signature, caught by the file's SHA-256 or the signature). */
    {
        uint8_t byte;
        snprintf(p, sizeof(p), "%s/%s.img", store_dir, hx);
        int fd = open(p, O_RDWR | O_CLOEXEC);
        CHECK(fd >= 0);
        CHECK(pread(fd, &byte, 1, 32 + 100) == 1);
        byte ^= 0x80;
        CHECK(pwrite(fd, &byte, 1, 32 + 100) == 1);
        CHECK_EQ_INT(ota_store_verify(s, gd, &o, why, sizeof(why)), OTA_R_TAMPERED);
        fprintf(stderr, "  altered body: %s\n", why);
        byte ^= 0x80;
        CHECK(pwrite(fd, &byte, 1, 32 + 100) == 1);
        CHECK_EQ_INT(ota_store_verify(s, gd, &o, why, sizeof(why)), OTA_OK);
        CHECK(pread(fd, &byte, 1, (off_t)gl - 3) == 1);
        byte ^= 0x01;
        CHECK(pwrite(fd, &byte, 1, (off_t)gl - 3) == 1);
        CHECK_EQ_INT(ota_store_verify(s, gd, &o, why, sizeof(why)), OTA_R_TAMPERED);
        fprintf(stderr, "  altered signature: %s\n", why);
        byte ^= 0x01;
        CHECK(pwrite(fd, &byte, 1, (off_t)gl - 3) == 1);
        /* the body altered and the recorded file SHA-256 made to match: the image hash and
         * the signature still catch it */
        CHECK(pread(fd, &byte, 1, 32 + 100) == 1);
        byte ^= 0x80;
        CHECK(pwrite(fd, &byte, 1, 32 + 100) == 1);
        CHECK(pread(fd, buf, gl, 0) == (ssize_t)gl);
        CHECK(rewrite_file_sha(hx, buf, gl, good) == 0);
        CHECK_EQ_INT(ota_store_verify(s, gd, &o, why, sizeof(why)), OTA_R_TAMPERED);
        fprintf(stderr, "  altered body, metadata to match: %s\n", why);
        byte ^= 0x80;
        CHECK(pwrite(fd, &byte, 1, 32 + 100) == 1);
        CHECK(rewrite_file_sha(hx, good, gl, buf) == 0);
        CHECK_EQ_INT(ota_store_verify(s, gd, &o, why, sizeof(why)), OTA_OK);
        /* appended bytes */
        CHECK(pwrite(fd, "x", 1, (off_t)gl) == 1);
        CHECK_EQ_INT(ota_store_verify(s, gd, &o, why, sizeof(why)), OTA_R_TAMPERED);
        CHECK(ftruncate(fd, (off_t)gl) == 0);
        CHECK_EQ_INT(ota_store_verify(s, gd, &o, why, sizeof(why)), OTA_OK);
        if (fd >= 0)
            close(fd);
    }

    /* Remove: files, released link and bytes gone; then unknown. */
    uint64_t used = ota_store_used(s);
    CHECK_EQ_INT(ota_store_remove(s, gd), 0);
    CHECK(ota_store_used(s) == used - gl);
    snprintf(p, sizeof(p), "%s/%s.img", store_dir, hx);
    CHECK(access(p, F_OK) != 0);
    snprintf(p, sizeof(p), "%s/%s.json", store_dir, hx);
    CHECK(access(p, F_OK) != 0);
    snprintf(p, sizeof(p), "%s/%s.img", ota_store_released_dir(s), hx);
    CHECK(access(p, F_OK) != 0);
    CHECK_EQ_INT(ota_store_remove(s, gd), -ENOENT);
    CHECK(ota_store_read(s, gd, 0, buf, 16) == -ENOENT);
    CHECK_EQ_INT(ota_store_get(s, gd, &g), -ENOENT);
    CHECK_EQ_INT(ota_store_lookup(s, hx, out), -ENOENT);
    /* the space is free again: the refused image fits now */
    o.declared_class = "plain";
    CHECK_EQ_INT(ota_store_put(s, img, ql, &o, "job:q", 4000, &m, why, sizeof(why)), OTA_OK);
    o.declared_class = NULL;
    uint8_t qd[32];
    memcpy(qd, m.digest, 32);
    ota_store_close(s);
    s = NULL;

    /* An interrupted write: temp files, an image without metadata, a released link without
     * metadata. The next open removes them and counts only complete images. */
    {
        static const char *const junk[] = {
            ".tmp.0011.img",
            ".tmp.0011.json",
            "released/.tmp.abcd.img",
            "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff.img",
            "released/00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff.img",
        };
        char before[8192], after[8192];
        listing(before, sizeof(before));
        for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
            snprintf(p, sizeof(p), "%s/%s", store_dir, junk[i]);
            FILE *fp = fopen(p, "w");
            CHECK(fp != NULL);
            if (fp != NULL) {
                fputs("partial", fp);
                fclose(fp);
            }
        }
        /* a file the store does not own stays */
        snprintf(p, sizeof(p), "%s/README", store_dir);
        FILE *fp = fopen(p, "w");
        if (fp != NULL)
            fclose(fp);
        CHECK_EQ_INT(ota_store_open(store_dir, 160000, &s), 0);
        CHECK(access(p, F_OK) == 0);
        unlink(p);
        listing(after, sizeof(after));
        CHECK(strcmp(before, after) == 0);
        if (strcmp(before, after) != 0)
            fprintf(stderr, "before:\n%safter:\n%s", before, after);
        CHECK(s != NULL && ota_store_used(s) == rl + l + ql);
        if (s != NULL) {
            CHECK_EQ_INT(ota_store_verify(s, rd, &o, why, sizeof(why)), OTA_OK);
            CHECK_EQ_INT(ota_store_verify(s, qd, &o, why, sizeof(why)), OTA_OK);
            CHECK(ota_store_read(s, pd, 0, buf, 32) == 32);
        }
    }

    /* Clean up. */
    if (s != NULL) {
        CHECK_EQ_INT(ota_store_remove(s, rd), 0);
        CHECK_EQ_INT(ota_store_remove(s, pd), 0);
        CHECK_EQ_INT(ota_store_remove(s, qd), 0);
        CHECK(ota_store_used(s) == 0);
        ota_store_close(s);
    }
    snprintf(p, sizeof(p), "%s/released", store_dir);
    CHECK_EQ_INT(rmdir(p), 0);
    CHECK_EQ_INT(rmdir(store_dir), 0);
    CHECK_EQ_INT(rmdir(dir), 0);
    EVP_PKEY_free(k1);
    EVP_PKEY_free(k2);
    EVP_PKEY_free(k3);
    return check_finish();
}
