/* Flash for the boot code: a host file (semihosting) mirrored in memory at the flash
 * addresses. Erase/program rules of NOR flash are kept: erase per 4 KiB sector, program only
 * erased bytes (anything else is refused, so an ordering bug shows up here too). */
#include <string.h>

#include "board.h"

static int flash_fd = -1;

static uint8_t *mirror(uint32_t off)
{
    return (uint8_t *)(uintptr_t)off; /* flash offset == address */
}

static int in_range(uint32_t off, uint32_t len)
{
    return off >= BOOT_PRIMARY_OFF && off <= BOOT_FLASH_SIZE && len <= BOOT_FLASH_SIZE - off;
}

static int fl_read(void *ctx, uint32_t off, void *buf, uint32_t len)
{
    (void)ctx;
    if (!in_range(off, len))
        return -1;
    memcpy(buf, mirror(off), len);
    return 0;
}

static int fl_write(void *ctx, uint32_t off, const void *buf, uint32_t len)
{
    (void)ctx;
    const uint8_t *src = buf;
    if (!in_range(off, len) || flash_fd < 0)
        return -1;
    for (uint32_t i = 0; i < len; i++)
        if (mirror(off)[i] != 0xFF)
            return -1;
    memcpy(mirror(off), src, len);
    if (semihost_seek(flash_fd, off) != 0 || semihost_write(flash_fd, src, len) != 0)
        return -1;
    return 0;
}

static int fl_erase(void *ctx, uint32_t off, uint32_t len)
{
    (void)ctx;
    static const uint8_t ff[256] = {[0 ... 255] = 0xFF};
    if (!in_range(off, len) || off % BOOT_SECTOR_SIZE != 0 || len % BOOT_SECTOR_SIZE != 0 ||
        flash_fd < 0)
        return -1;
    memset(mirror(off), 0xFF, len);
    if (semihost_seek(flash_fd, off) != 0)
        return -1;
    for (uint32_t done = 0; done < len; done += sizeof(ff))
        if (semihost_write(flash_fd, ff, sizeof(ff)) != 0)
            return -1;
    return 0;
}

static const uint8_t *fl_map(void *ctx, uint32_t off, uint32_t len)
{
    (void)ctx;
    return in_range(off, len) ? mirror(off) : NULL;
}

static const struct boot_flash flash_dev = {NULL, fl_read, fl_write, fl_erase, fl_map};

int board_flash_init(int load_mirror)
{
    if (flash_fd >= 0)
        return 0;
    flash_fd = semihost_open(BOARD_FLASH_FILE, 3 /* "r+b" */);
    if (flash_fd < 0)
        return -1;
    if (semihost_flen(flash_fd) != (int)BOOT_FLASH_SIZE)
        goto fail;
    if (load_mirror && (semihost_seek(flash_fd, BOOT_PRIMARY_OFF) != 0 ||
                        semihost_read(flash_fd, mirror(BOOT_PRIMARY_OFF),
                                      BOOT_FLASH_SIZE - BOOT_PRIMARY_OFF) != 0))
        goto fail;
    return 0;
fail:
    (void)semihost_close(flash_fd);
    flash_fd = -1;
    return -1;
}

const struct boot_flash *board_flash(void)
{
    return &flash_dev;
}
