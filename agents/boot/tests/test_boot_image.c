/* boot_verify_image(): images signed at test time, and refusals: wrong key, a KEYHASH naming
 * our key over another key's signature, unsigned image, flipped bytes, malformed header. */
#include <stdlib.h>
#include <string.h>

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
    return check_finish();
}
