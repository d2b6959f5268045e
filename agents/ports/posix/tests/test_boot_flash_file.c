/* The posix file-backed flash (agents/ports/posix/flash_file.c) under the boot core: a node's
 * slots and boot state persist across process restarts (power cycles): install in test mode,
 * revert at the next restart, IAK kept; NOR rules enforced; a wrong-sized file refused. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "check.h"
#include "flash_file.h"
#include "img_maker.h"
#include "fleetgw/boot.h"
#include "fleetgw/iak.h"

static uint8_t spki[91];

static int trng(void *ctx, uint8_t *buf, size_t len)
{
    (void)ctx;
    return getrandom(buf, len, 0) == (ssize_t)len ? 0 : -1;
}

/* One power-on: open the file, provision the IAK, boot, close. */
static enum boot_result power_on(const char *path, struct boot_image_info *info, uint8_t pub[65])
{
    struct flash_file ff;
    struct boot_record rec;
    if (flash_file_open(&ff, path) != 0)
        return BOOT_FLASH_FAILURE;
    struct boot_ctx ctx = {&ff.dev, spki, sizeof(spki), NULL, NULL};
    enum boot_result r = BOOT_FLASH_FAILURE;
    if (iak_provision(&ff.dev, trng, NULL) == IAK_OK && iak_public_key(&ff.dev, pub) == IAK_OK)
        r = boot_go(&ctx, info, &rec);
    flash_file_close(&ff);
    return r;
}

int main(void)
{
    static uint8_t body_a[7000], body_b[9000], img[20000];
    char path[] = "/tmp/fleetgw-flash-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    EVP_PKEY *key = img_key_new();
    CHECK(key != NULL && img_key_spki(key, spki) == 0);
    CHECK(RAND_bytes(body_a, sizeof(body_a)) == 1 && RAND_bytes(body_b, sizeof(body_b)) == 1);

    /* Factory: an erased file is created; A written into the primary slot. */
    struct flash_file ff;
    CHECK_EQ_INT(flash_file_open(&ff, path), 0);
    uint8_t probe[16];
    CHECK(ff.dev.read(ff.dev.ctx, BOOT_SECONDARY_OFF, probe, sizeof(probe)) == 0);
    CHECK(probe[0] == 0xFF && probe[15] == 0xFF);
    size_t n = img_make(key, body_a, sizeof(body_a), 1, 0, 0, 1, 1, img, sizeof(img));
    CHECK(n > 0 && ff.dev.write(ff.dev.ctx, BOOT_PRIMARY_OFF, img, (uint32_t)n) == 0);
    /* NOR: no programming over programmed bytes. */
    CHECK(ff.dev.write(ff.dev.ctx, BOOT_PRIMARY_OFF, img, 4) != 0);
    CHECK(ff.dev.erase(ff.dev.ctx, BOOT_PRIMARY_OFF + 1, BOOT_SECTOR_SIZE) != 0);
    flash_file_close(&ff);

    struct boot_image_info info;
    uint8_t pub1[65], pub2[65], hash_a[32];
    CHECK_EQ_INT(power_on(path, &info, pub1), BOOT_GO);
    CHECK(info.version.major == 1);
    memcpy(hash_a, info.hash, 32);

    /* The application stores B and requests a test install; the next power-on installs it,
     * the one after reverts (never confirmed). The IAK stays the same throughout. */
    CHECK_EQ_INT(flash_file_open(&ff, path), 0);
    n = img_make(key, body_b, sizeof(body_b), 2, 0, 0, 2, 1, img, sizeof(img));
    CHECK(n > 0 && ff.dev.write(ff.dev.ctx, BOOT_SECONDARY_OFF, img, (uint32_t)n) == 0);
    CHECK(boot_request_install(&ff.dev) == 0);
    flash_file_close(&ff);
    CHECK_EQ_INT(power_on(path, &info, pub2), BOOT_GO);
    CHECK(info.version.major == 2);
    CHECK(memcmp(pub1, pub2, 65) == 0);
    CHECK_EQ_INT(power_on(path, &info, pub2), BOOT_GO);
    CHECK(info.version.major == 1 && memcmp(info.hash, hash_a, 32) == 0);

    /* A file of the wrong size is not a flash of this layout. */
    CHECK(truncate(path, 4096) == 0);
    CHECK_EQ_INT(flash_file_open(&ff, path), -EINVAL);
    flash_file_close(&ff);
    unlink(path);
    EVP_PKEY_free(key);
    return check_finish();
}
