/* Reference values from the OTA store (attest_policy_build): every image in the directory
 * that verifies with a signer key becomes a reference value (image hash, SHA-256 of the
 * signer's SubjectPublicKeyInfo, header version); the others are reported with the reason
 * and left out; a token claiming an accepted image is trusted, one claiming a refused image
 * is not. Keys are generated here; with ../shared/vectors the images imgtool signed with
 * MCUboot's development key are accepted with the digests imgtool reported. */
#include "attest.h"
#include "check.h"
#include "check_crypto.h"

#include <errno.h>
#include <fleetgw/image.h>
#include <fleetgw/msg.h>
#include <fleetgw/token.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[] = "/tmp/fleetgw-attimg-XXXXXX";

static void path_of(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", dir, name);
}

static void write_file(const char *name, const void *data, size_t len)
{
    char p[256];
    path_of(p, sizeof(p), name);
    FILE *f = fopen(p, "wb");
    CHECK(f != NULL);
    if (f != NULL) {
        CHECK(fwrite(data, 1, len, f) == len);
        fclose(f);
    }
}

static void write_pubkeys(const char *name, EVP_PKEY *const *keys, size_t n)
{
    char p[256];
    path_of(p, sizeof(p), name);
    FILE *f = fopen(p, "w");
    CHECK(f != NULL);
    for (size_t i = 0; f != NULL && i < n; i++)
        CHECK(PEM_write_PUBKEY(f, keys[i]) == 1);
    if (f != NULL)
        fclose(f);
}

/* A signed image of payload, version, by key; its hash in digest. */
static size_t make_image(EVP_PKEY *key, const uint8_t *payload, size_t plen, uint8_t major,
                         uint8_t minor, uint16_t rev, uint32_t build, uint8_t *out, size_t cap,
                         uint8_t digest[32])
{
    struct image_sign_opts o;
    size_t len = 0;
    memset(&o, 0, sizeof(o));
    o.payload = payload;
    o.payload_len = plen;
    o.version = (struct image_version){major, minor, rev, build};
    o.hdr_size = 32;
    o.pad_header = 1;
    o.align = 4;
    (void)check_p256_pub(key, o.pub);
    o.key_format = IMAGE_KEY_HASH;
    o.sign = check_p256_sign;
    o.sign_ctx = key;
    CHECK_EQ_INT(image_sign(&o, out, cap, &len, digest), IMAGE_OK);
    return len;
}

/* What report() saw, one line per image. */
static char seen[4096];

static void report(void *ctx, const char *file, bool accepted, const char *detail)
{
    (void)ctx;
    size_t n = strlen(seen);
    snprintf(seen + n, sizeof(seen) - n, "%s %s %s\n", file, accepted ? "accepted" : "refused",
             detail);
}

/* attest-evidence for one software component (measurement, signer) signed by the node key. */
static size_t evidence(EVP_PKEY *node, const uint8_t nonce[32], const uint8_t meas[32],
                       const uint8_t signer[32], uint8_t *out, size_t cap)
{
    struct token_claims c;
    uint8_t pub[65], tok[TOKEN_MAX_LEN];
    unsigned int l;
    size_t tl = 0, ml = 0;
    (void)check_p256_pub(node, pub);
    memset(&c, 0, sizeof(c));
    c.present = TOKEN_HAS_NONCE | TOKEN_HAS_INSTANCE_ID | TOKEN_HAS_PROFILE | TOKEN_HAS_CLIENT_ID |
                TOKEN_HAS_LIFECYCLE | TOKEN_HAS_IMPL_ID | TOKEN_HAS_SW_COMPS;
    memcpy(c.nonce, nonce, 32);
    c.nonce_len = 32;
    c.instance_id[0] = 0x01;
    EVP_Digest(pub, 65, c.instance_id + 1, &l, EVP_sha256(), NULL);
    c.instance_id_len = 33;
    snprintf(c.profile, sizeof(c.profile), "%s", TOKEN_PROFILE_2023);
    c.client_id = 1;
    c.lifecycle = 0x3000;
    memset(c.impl_id, 0x55, 32);
    c.impl_id_len = 32;
    c.sw_count = 1;
    c.sw[0].present = TOKEN_SWC_MEAS_VALUE | TOKEN_SWC_SIGNER_ID | TOKEN_SWC_MEAS_TYPE;
    memcpy(c.sw[0].meas_value, meas, 32);
    c.sw[0].meas_value_len = 32;
    memcpy(c.sw[0].signer_id, signer, 32);
    c.sw[0].signer_id_len = 32;
    snprintf(c.sw[0].meas_type, sizeof(c.sw[0].meas_type), "fleet-agent");
    if (token_encode(&c, check_p256_sign, node, tok, sizeof(tok), &tl) != TOKEN_OK)
        return 0;
    struct msg m;
    memset(&m, 0, sizeof(m));
    m.type = MSG_ATTEST_EVIDENCE;
    m.u.evidence.token = tok;
    m.u.evidence.token_len = tl;
    if (msg_encode(&m, out, cap, &ml) != MSG_OK)
        return 0;
    return ml;
}

static void cleanup(void)
{
    static const char *const names[] = {
        "good.bin", "other.bin", "tampered.bin", "junk.bin",      ".hidden.bin",   "keys.pem",
        "rsa.pem",  "empty.pem", "ref.json",     "vstore/v1.bin", "vstore/v2.bin", "store/dev.pem"};
    char p[256];
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        path_of(p, sizeof(p), names[i]);
        unlink(p);
    }
    path_of(p, sizeof(p), "sub");
    rmdir(p);
    path_of(p, sizeof(p), "store");
    rmdir(p);
    path_of(p, sizeof(p), "vstore");
    rmdir(p);
    rmdir(dir);
}

int main(void)
{
    static uint8_t img[3][4096], buf[4096];
    uint8_t payload[1500], d_good[32], d_other[32], kh[32], okh[32], node_pub[65], nonce[32];
    EVP_PKEY *signer = EVP_EC_gen("P-256"), *other = EVP_EC_gen("P-256");
    EVP_PKEY *node = EVP_EC_gen("P-256");
    struct attest_policy *pol = NULL;
    struct attest_result res;
    char err[300], keys[256], p[256];

    CHECK(signer != NULL && other != NULL && node != NULL);
    if (mkdtemp(dir) == NULL)
        check_skip("cannot create a temporary directory");
    for (size_t i = 0; i < sizeof(payload); i++)
        payload[i] = (uint8_t)(i * 7);
    memset(nonce, 0x42, sizeof(nonce));
    (void)check_p256_pub(node, node_pub);
    uint8_t spub[65], opub[65];
    (void)check_p256_pub(signer, spub);
    (void)check_p256_pub(other, opub);
    CHECK_EQ_INT(image_key_hash(spub, kh), IMAGE_OK);
    CHECK_EQ_INT(image_key_hash(opub, okh), IMAGE_OK);

    /* The store: one good image, one by an unknown signer, one tampered, one not an image,
     * a dot file (ignored) and a directory. */
    size_t gl =
        make_image(signer, payload, sizeof(payload), 1, 4, 2, 7, img[0], sizeof(img[0]), d_good);
    size_t ol =
        make_image(other, payload, sizeof(payload), 1, 4, 2, 7, img[1], sizeof(img[1]), d_other);
    memcpy(img[2], img[0], gl);
    img[2][100] ^= 1;
    char store[256];
    path_of(store, sizeof(store), "store");
    /* (images live directly in dir; "store" is an empty second directory) */
    CHECK_EQ_INT(mkdir(store, 0700), 0);
    write_file("good.bin", img[0], gl);
    write_file("other.bin", img[1], ol);
    write_file("tampered.bin", img[2], gl);
    write_file("junk.bin", "not an image", 12);
    write_file(".hidden.bin", img[1], ol);
    path_of(p, sizeof(p), "sub");
    CHECK_EQ_INT(mkdir(p, 0700), 0);
    write_pubkeys("keys.pem", &signer, 1);
    path_of(keys, sizeof(keys), "keys.pem");

    seen[0] = '\0';
    err[0] = '\0';
    CHECK_EQ_INT(attest_policy_build("", dir, keys, report, NULL, &pol, err, sizeof(err)), 0);
    if (pol == NULL) {
        fprintf(stderr, "attest_policy_build: %s\n", err);
        cleanup();
        return check_finish();
    }
    CHECK_EQ_INT(attest_policy_count(pol), 1);
    fprintf(stderr, "%s", seen);
    CHECK(strstr(seen, "good.bin accepted 1.4.2+7\n") != NULL);
    CHECK(strstr(seen, "other.bin refused ") != NULL);
    CHECK(strstr(seen, "tampered.bin refused ") != NULL);
    CHECK(strstr(seen, "junk.bin refused ") != NULL);
    CHECK(strstr(seen, "sub refused not a regular file\n") != NULL);
    CHECK(strstr(seen, "hidden") == NULL);
    /* (keys.pem itself is in the directory too: not an image) */
    CHECK(strstr(seen, "keys.pem refused ") != NULL);

    /* A node measuring the good image is trusted, with the image's version; one measuring
     * the image of the unknown signer is not. */
    size_t len = evidence(node, nonce, d_good, kh, buf, sizeof(buf));
    CHECK(len > 0);
    attest_evaluate(pol, buf, len, node_pub, nonce, 32, &res);
    CHECK(res.trusted);
    CHECK(strcmp(res.fw_version, "1.4.2+7") == 0);
    len = evidence(node, nonce, d_other, okh, buf, sizeof(buf));
    attest_evaluate(pol, buf, len, node_pub, nonce, 32, &res);
    CHECK(!res.trusted);
    CHECK(strstr(res.reason, "unknown measurement") != NULL);
    attest_policy_free(pol);
    pol = NULL;

    /* Both signer keys: the other image counts too (two keys in one PEM file). */
    EVP_PKEY *both[2] = {signer, other};
    write_pubkeys("keys.pem", both, 2);
    CHECK_EQ_INT(attest_policy_build("", dir, keys, NULL, NULL, &pol, err, sizeof(err)), 0);
    CHECK_EQ_INT(attest_policy_count(pol), 2);
    attest_policy_free(pol);
    pol = NULL;

    /* With a reference file: its values and lifecycles, plus the images. */
    write_file("ref.json",
               "{\"lifecycles\":[\"secured\",\"non-psa-rot-debug\"],\"reference_values\":["
               "{\"measurement\":\""
               "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
               "\",\"signer_id\":\""
               "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
               "\"}]}",
               strlen("{\"lifecycles\":[\"secured\",\"non-psa-rot-debug\"],\"reference_values\":["
                      "{\"measurement\":\""
                      "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
                      "\",\"signer_id\":\""
                      "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
                      "\"}]}"));
    path_of(p, sizeof(p), "ref.json");
    CHECK_EQ_INT(attest_policy_build(p, dir, keys, NULL, NULL, &pol, err, sizeof(err)), 0);
    CHECK_EQ_INT(attest_policy_count(pol), 3);
    attest_policy_free(pol);
    pol = NULL;

    /* An empty store: no values, not an error. */
    CHECK_EQ_INT(attest_policy_build("", store, keys, NULL, NULL, &pol, err, sizeof(err)), 0);
    CHECK_EQ_INT(attest_policy_count(pol), 0);
    attest_policy_free(pol);
    pol = NULL;

    /* Errors: each names the file and leaves *ret alone. */
    path_of(p, sizeof(p), "missing");
    CHECK_EQ_INT(attest_policy_build("", p, keys, NULL, NULL, &pol, err, sizeof(err)), -ENOENT);
    CHECK(pol == NULL && strstr(err, "missing") != NULL);
    CHECK_EQ_INT(attest_policy_build("", dir, p, NULL, NULL, &pol, err, sizeof(err)), -ENOENT);
    CHECK(pol == NULL && strstr(err, "missing: ") != NULL);
    write_file("empty.pem", "", 0);
    path_of(p, sizeof(p), "empty.pem");
    CHECK_EQ_INT(attest_policy_build("", dir, p, NULL, NULL, &pol, err, sizeof(err)), -EINVAL);
    CHECK(pol == NULL && strstr(err, "no PEM public key") != NULL);
    EVP_PKEY *rsa = EVP_RSA_gen(2048);
    CHECK(rsa != NULL);
    write_pubkeys("rsa.pem", &rsa, 1);
    path_of(p, sizeof(p), "rsa.pem");
    CHECK_EQ_INT(attest_policy_build("", dir, p, NULL, NULL, &pol, err, sizeof(err)), -EINVAL);
    CHECK(pol == NULL && strstr(err, "key 1 is not a P-256 public key") != NULL);
    path_of(p, sizeof(p), "ref.json");
    write_file("ref.json", "{\"reference_values\": 3}", 23);
    CHECK_EQ_INT(attest_policy_build(p, dir, keys, NULL, NULL, &pol, err, sizeof(err)), -EINVAL);
    CHECK(pol == NULL && strstr(err, "ref.json") != NULL);
    EVP_PKEY_free(rsa);

    /* Interop: images signed by MCUboot's imgtool with its development key. */
    char vp[512];
    bool have_vectors = check_vector_path(vp, sizeof(vp), "mcuboot/root-ec-p256.pem") != NULL;
    if (have_vectors) {
        /* A store of its own holding the two vector images; the key file lives elsewhere. */
        char vstore[256];
        path_of(vstore, sizeof(vstore), "vstore");
        CHECK_EQ_INT(mkdir(vstore, 0700), 0);
        FILE *f = fopen(vp, "r");
        EVP_PKEY *dev = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
        if (f)
            fclose(f);
        CHECK(dev != NULL);
        char devpub[300];
        snprintf(devpub, sizeof(devpub), "%s/dev.pem", store);
        FILE *o = fopen(devpub, "w");
        CHECK(o != NULL && dev != NULL && PEM_write_PUBKEY(o, dev) == 1);
        if (o)
            fclose(o);
        static const char *const vimg[2][2] = {
            {"mcuboot/signed-1.2.3+4-sc7.bin", "vstore/v1.bin"},
            {"mcuboot/signed-2.0.0-fullkey.bin", "vstore/v2.bin"}};
        static uint8_t vbuf[1 << 18];
        for (int i = 0; i < 2; i++) {
            long n =
                check_read_file(check_vector_path(vp, sizeof(vp), vimg[i][0]), vbuf, sizeof(vbuf));
            CHECK(n > 0);
            write_file(vimg[i][1], vbuf, n > 0 ? (size_t)n : 0);
        }
        seen[0] = '\0';
        CHECK_EQ_INT(attest_policy_build("", vstore, devpub, report, NULL, &pol, err, sizeof(err)),
                     0);
        fprintf(stderr, "%s", seen);
        CHECK_EQ_INT(attest_policy_count(pol), 2);
        CHECK(strstr(seen, "v1.bin accepted 1.2.3+4\n") != NULL);
        CHECK(strstr(seen, "v2.bin accepted 2.0.0+0\n") != NULL);
        /* A token claiming imgtool's reported digest and the key's hash is trusted. */
        static const uint8_t d1[32] = {0x4f, 0x80, 0x30, 0xf8, 0x4b, 0xca, 0x51, 0x77,
                                       0xf4, 0x0b, 0x53, 0x61, 0xce, 0x20, 0xe4, 0xa1,
                                       0x66, 0x22, 0x0e, 0xfa, 0x35, 0xec, 0xa3, 0xdc,
                                       0xa8, 0x6a, 0xc3, 0x9a, 0x03, 0xca, 0xc3, 0x2a};
        uint8_t devpt[65], dkh[32];
        if (dev != NULL) {
            (void)check_p256_pub(dev, devpt);
            CHECK_EQ_INT(image_key_hash(devpt, dkh), IMAGE_OK);
            len = evidence(node, nonce, d1, dkh, buf, sizeof(buf));
            attest_evaluate(pol, buf, len, node_pub, nonce, 32, &res);
            CHECK(res.trusted);
            CHECK(strcmp(res.fw_version, "1.2.3+4") == 0);
        }
        attest_policy_free(pol);
        pol = NULL;
        unlink(devpub);
        EVP_PKEY_free(dev);
    }
    cleanup();
    EVP_PKEY_free(signer);
    EVP_PKEY_free(other);
    EVP_PKEY_free(node);
    if (!have_vectors && check_failed == 0)
        check_skip("the MCUboot interop part: ../shared/vectors/mcuboot absent (everything "
                   "else passed)");
    return check_finish();
}
