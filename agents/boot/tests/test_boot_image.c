/* boot_verify_image(): MCUboot's own images (imgtool vectors), images signed at test time,
 * and refusals: every flipped byte, wrong key, unsigned image, malformed headers. */
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "check.h"
#include "flash_sim.h"
#include "img_maker.h"
#include "fleetgw/boot_image.h"

static struct flash_sim sim;

static void load_slot(const uint8_t *img, size_t len)
{
    flash_sim_init(&sim);
    memcpy(sim.mem + BOOT_PRIMARY_OFF, img, len);
}

static enum boot_img_status verify(const uint8_t *spki, struct boot_image_info *info)
{
    struct boot_flash f = flash_sim_dev(&sim);
    return boot_verify_image(&f, BOOT_PRIMARY_OFF, BOOT_SLOT_SIZE, spki, 91, info);
}

static void hex(const char *s, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned v = 0;
        sscanf(s + 2 * i, "%2x", &v);
        out[i] = (uint8_t)v;
    }
}

static int load_vector_key(uint8_t spki[91])
{
    char path[512];
    if (check_vector_path(path, sizeof(path), "mcuboot/root-ec-p256.pem") == NULL)
        return -1;
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return -1;
    EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    int rc = k != NULL ? img_key_spki(k, spki) : -1;
    EVP_PKEY_free(k);
    return rc;
}

static void test_vectors(void)
{
    static uint8_t img[0x20000];
    uint8_t spki[91], want[32];
    char path[512];
    struct boot_image_info info;
    if (load_vector_key(spki) != 0)
        check_skip("../shared/vectors/mcuboot absent (FLEETGW_VECTORS): imgtool vectors not run");

    CHECK(check_vector_path(path, sizeof(path), "mcuboot/signed-1.2.3+4-sc7.bin") != NULL);
    long n = check_read_file(path, img, sizeof(img));
    CHECK(n > 0);
    load_slot(img, (size_t)n);
    CHECK_EQ_INT(verify(spki, &info), BOOT_IMG_OK);
    hex("4f8030f84bca5177f40b5361ce20e4a166220efa35eca3dca86ac39a03cac32a", want, 32);
    CHECK(memcmp(info.hash, want, 32) == 0);
    CHECK(info.version.major == 1 && info.version.minor == 2 && info.version.revision == 3 &&
          info.version.build == 4);
    CHECK_EQ_INT(info.sec_cnt, 7);
    CHECK(info.has_sec_cnt);
    CHECK_EQ_INT(info.total_size, n);
    hex("e30466f6b8470c1f29070b17f1e2d3e94d445e3f608087fdc711e4382bb538b6", want, 32);
    CHECK(memcmp(info.signer_id, want, 32) == 0);

    /* Every single flipped byte is refused (header, body, protected TLVs, TLVs). */
    long refused = 0;
    for (long i = 0; i < n; i++) {
        load_slot(img, (size_t)n);
        sim.mem[BOOT_PRIMARY_OFF + i] ^= 0x01;
        if (verify(spki, &info) != BOOT_IMG_OK)
            refused++;
        else
            fprintf(stderr, "  flipped byte %ld accepted\n", i);
    }
    CHECK_EQ_INT(refused, n);

    CHECK(check_vector_path(path, sizeof(path), "mcuboot/signed-2.0.0-fullkey.bin") != NULL);
    n = check_read_file(path, img, sizeof(img));
    CHECK(n > 0);
    load_slot(img, (size_t)n);
    CHECK_EQ_INT(verify(spki, &info), BOOT_IMG_OK);
    hex("fa4d44d24596dab834339b3076625b965ab56ac6aaa96c81723884024d7e50f7", want, 32);
    CHECK(memcmp(info.hash, want, 32) == 0);
    CHECK(!info.has_sec_cnt);
    CHECK(info.version.major == 2);
}

static void test_generated(void)
{
    static uint8_t body[5000], img[8192];
    uint8_t spki[91], other_spki[91];
    struct boot_image_info info;
    EVP_PKEY *key = img_key_new(), *other = img_key_new();
    CHECK(key != NULL && other != NULL);
    CHECK(img_key_spki(key, spki) == 0 && img_key_spki(other, other_spki) == 0);
    CHECK(RAND_bytes(body, sizeof(body)) == 1);

    size_t n = img_make(key, body, sizeof(body), 3, 1, 4, 9, 1, img, sizeof(img));
    CHECK(n > 0);
    load_slot(img, n);
    CHECK_EQ_INT(verify(spki, &info), BOOT_IMG_OK);
    CHECK_EQ_INT(info.sec_cnt, 9);
    CHECK_EQ_INT(info.hdr_size, 0x200);
    CHECK_EQ_INT(info.img_size, sizeof(body));
    CHECK_EQ_INT(boot_image_extent(&(struct boot_flash){0}, 0, 0), 0);
    struct boot_flash f = flash_sim_dev(&sim);
    CHECK_EQ_INT(boot_image_extent(&f, BOOT_PRIMARY_OFF, BOOT_SLOT_SIZE), n);

    /* Another key: refused as unknown key. */
    CHECK_EQ_INT(verify(other_spki, &info), BOOT_IMG_UNKNOWN_KEY);
    /* Signed by another key: refused as unknown key; and when its KEYHASH TLV is replaced by
     * ours, refused as a bad signature. */
    size_t m = img_make(other, body, sizeof(body), 3, 1, 4, 9, 1, img, sizeof(img));
    CHECK(m > 0);
    load_slot(img, m);
    CHECK_EQ_INT(verify(spki, &info), BOOT_IMG_UNKNOWN_KEY);
    size_t kh = 0x200 + sizeof(body) + 12 + 4 + 36 + 4;
    CHECK(img[kh - 4] == 0x01);
    SHA256(spki, sizeof(spki), img + kh);
    load_slot(img, m);
    CHECK_EQ_INT(verify(spki, &info), BOOT_IMG_BAD_SIGNATURE);
    /* Unsigned. */
    m = img_make(key, body, sizeof(body), 3, 1, 4, 9, 0, img, sizeof(img));
    load_slot(img, m);
    CHECK_EQ_INT(verify(spki, &info), BOOT_IMG_UNSIGNED);
    /* Body byte flipped: hash mismatch. */
    n = img_make(key, body, sizeof(body), 3, 1, 4, 9, 1, img, sizeof(img));
    img[0x200 + 100] ^= 0x80;
    load_slot(img, n);
    CHECK_EQ_INT(verify(spki, &info), BOOT_IMG_BAD_HASH);
    img[0x200 + 100] ^= 0x80;
    /* Signature byte flipped (last byte of s). */
    img[n - 1] ^= 0x01;
    load_slot(img, n);
    CHECK_EQ_INT(verify(spki, &info), BOOT_IMG_BAD_SIGNATURE);
    img[n - 1] ^= 0x01;
    /* Oversized img_size / erased slot. */
    img[15] = 0x7f;
    load_slot(img, n);
    CHECK_EQ_INT(verify(spki, &info), BOOT_IMG_BAD_HEADER);
    flash_sim_init(&sim);
    CHECK_EQ_INT(verify(spki, &info), BOOT_IMG_NO_IMAGE);
    /* A bad built-in key is refused outright. */
    struct boot_flash g = flash_sim_dev(&sim);
    CHECK_EQ_INT(boot_verify_image(&g, BOOT_PRIMARY_OFF, BOOT_SLOT_SIZE, spki, 90, &info),
                 BOOT_IMG_UNKNOWN_KEY);
    EVP_PKEY_free(key);
    EVP_PKEY_free(other);
}

int main(void)
{
    test_generated();
    test_vectors();
    return check_finish();
}
