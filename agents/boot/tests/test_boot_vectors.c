/* boot_verify_image() on MCUboot's own images (imgtool vectors in ../shared/vectors): both
 * accepted with the right digests, version, counter and signer id; every single flipped byte
 * refused. Visible skip (exit 77) without the vectors folder. */
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>

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

static void hex(const char *s, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned v = 0;
        sscanf(s + 2 * i, "%2x", &v);
        out[i] = (uint8_t)v;
    }
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

int main(void)
{
    test_vectors();
    return check_finish();
}
