#include "flash_file.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static int ff_read(void *ctx, uint32_t off, void *buf, uint32_t len)
{
    struct flash_file *ff = ctx;
    if (ff->mem == NULL || off > BOOT_FLASH_SIZE || len > BOOT_FLASH_SIZE - off)
        return -1;
    memcpy(buf, ff->mem + off, len);
    return 0;
}

static int ff_write(void *ctx, uint32_t off, const void *buf, uint32_t len)
{
    struct flash_file *ff = ctx;
    if (ff->mem == NULL || off > BOOT_FLASH_SIZE || len > BOOT_FLASH_SIZE - off)
        return -1;
    for (uint32_t i = 0; i < len; i++)
        if (ff->mem[off + i] != 0xFF)
            return -1; /* NOR: program only erased bytes */
    memcpy(ff->mem + off, buf, len);
    return 0;
}

static int ff_erase(void *ctx, uint32_t off, uint32_t len)
{
    struct flash_file *ff = ctx;
    if (ff->mem == NULL || off % BOOT_SECTOR_SIZE != 0 || len % BOOT_SECTOR_SIZE != 0 ||
        off > BOOT_FLASH_SIZE || len > BOOT_FLASH_SIZE - off)
        return -1;
    memset(ff->mem + off, 0xFF, len);
    return 0;
}

static const uint8_t *ff_map(void *ctx, uint32_t off, uint32_t len)
{
    struct flash_file *ff = ctx;
    if (ff->mem == NULL || off > BOOT_FLASH_SIZE || len > BOOT_FLASH_SIZE - off)
        return NULL;
    return ff->mem + off;
}

int flash_file_open(struct flash_file *ff, const char *path)
{
    struct stat st;
    int r;
    memset(ff, 0, sizeof(*ff));
    ff->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (ff->fd < 0)
        return -errno;
    if (fstat(ff->fd, &st) != 0) {
        r = -errno;
        goto fail;
    }
    int fresh = st.st_size == 0;
    if (!fresh && st.st_size != (off_t)BOOT_FLASH_SIZE) {
        r = -EINVAL;
        goto fail;
    }
    if (fresh && ftruncate(ff->fd, BOOT_FLASH_SIZE) != 0) {
        r = -errno;
        goto fail;
    }
    void *m = mmap(NULL, BOOT_FLASH_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, ff->fd, 0);
    if (m == MAP_FAILED) {
        r = -errno;
        goto fail;
    }
    ff->mem = m;
    if (fresh)
        memset(ff->mem, 0xFF, BOOT_FLASH_SIZE);
    ff->dev = (struct boot_flash){ff, ff_read, ff_write, ff_erase, ff_map};
    return 0;
fail:
    close(ff->fd);
    ff->fd = -1;
    return r;
}

void flash_file_close(struct flash_file *ff)
{
    if (ff->mem != NULL) {
        (void)msync(ff->mem, BOOT_FLASH_SIZE, MS_SYNC);
        munmap(ff->mem, BOOT_FLASH_SIZE);
        ff->mem = NULL;
    }
    if (ff->fd >= 0)
        close(ff->fd);
    ff->fd = -1;
}
