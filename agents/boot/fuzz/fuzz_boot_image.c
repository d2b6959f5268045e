/* Fuzz target: boot_verify_image() over a slot holding the input, and the image
 * extent reader. A verified image must report sizes inside the slot. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fleetgw/boot_image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_SLOT 0x4000u

static uint8_t slot[FUZZ_SLOT];

static int rd(void *ctx, uint32_t off, void *buf, uint32_t len)
{
    (void)ctx;
    if (off > FUZZ_SLOT || len > FUZZ_SLOT - off)
        return -1;
    memcpy(buf, slot + off, len);
    return 0;
}

static int wr(void *ctx, uint32_t off, const void *buf, uint32_t len)
{
    (void)ctx;
    (void)off;
    (void)buf;
    (void)len;
    return -1;
}

static const uint8_t *mp(void *ctx, uint32_t off, uint32_t len)
{
    (void)ctx;
    if (off > FUZZ_SLOT || len > FUZZ_SLOT - off)
        return NULL;
    return slot + off;
}

static int er(void *ctx, uint32_t off, uint32_t len)
{
    (void)ctx;
    (void)off;
    (void)len;
    return -1;
}

/* Public half of a throwaway key that signed corpus/signed-small.bin (private half discarded). */
static const uint8_t key[BOOT_P256_SPKI_LEN] = {
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00, 0x04, 0xc8, 0x72, 0x41, 0x4d, 0xd7,
    0x3a, 0x5f, 0x04, 0x9e, 0x34, 0xd4, 0x71, 0x08, 0x72, 0xc5, 0xb6, 0x5f, 0x9b, 0x37, 0xe7, 0x42,
    0x81, 0x26, 0xb9, 0xa1, 0xf1, 0x79, 0x2a, 0x6a, 0x1f, 0x32, 0xd4, 0x2b, 0x2c, 0xa8, 0xb1, 0xe6,
    0x3b, 0x77, 0xcd, 0xb8, 0x63, 0xe6, 0x75, 0x57, 0xb3, 0xdc, 0x0a, 0x07, 0x6b, 0xa5, 0x22, 0xf4,
    0x3c, 0xf3, 0xe7, 0x71, 0x55, 0xc5, 0xed, 0xce, 0x41, 0xfc, 0xa6};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct boot_flash f = {NULL, rd, wr, er, mp};
    struct boot_image_info info;
    size_t n = size < FUZZ_SLOT ? size : FUZZ_SLOT;
    memset(slot, 0xFF, sizeof(slot));
    memcpy(slot, data, n);
    if (boot_verify_image(&f, 0, FUZZ_SLOT, key, sizeof(key), &info) == BOOT_IMG_OK &&
        (info.total_size > FUZZ_SLOT || info.hdr_size + info.img_size > info.total_size))
        __builtin_trap();
    (void)boot_image_extent(&f, 0, FUZZ_SLOT);
    return 0;
}
