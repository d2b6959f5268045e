#include "flash_sim.h"

#include <string.h>

static int sim_read(void *ctx, uint32_t off, void *buf, uint32_t len)
{
    struct flash_sim *s = ctx;
    if (!s->powered || off > BOOT_FLASH_SIZE || len > BOOT_FLASH_SIZE - off)
        return -1;
    memcpy(buf, s->mem + off, len);
    return 0;
}

/* 1: go on, 0: the power goes now (after doing *part of the operation when torn). */
static int sim_tick(struct flash_sim *s, int *tear)
{
    *tear = 0;
    if (!s->powered)
        return 0;
    if (s->budget >= 0 && s->ops >= s->budget) {
        s->powered = 0;
        *tear = s->torn;
        return 0;
    }
    s->ops++;
    return 1;
}

static int sim_write(void *ctx, uint32_t off, const void *buf, uint32_t len)
{
    struct flash_sim *s = ctx;
    if (off > BOOT_FLASH_SIZE || len > BOOT_FLASH_SIZE - off)
        return -1;
    int tear;
    int go = sim_tick(s, &tear);
    uint32_t n = go ? len : (tear ? len / 2 : 0);
    for (uint32_t i = 0; i < n; i++) {
        if (s->mem[off + i] != 0xFF)
            s->violations++;
        s->mem[off + i] &= ((const uint8_t *)buf)[i];
    }
    return go ? 0 : -1;
}

static int sim_erase(void *ctx, uint32_t off, uint32_t len)
{
    struct flash_sim *s = ctx;
    if (off % BOOT_SECTOR_SIZE || len % BOOT_SECTOR_SIZE || off > BOOT_FLASH_SIZE ||
        len > BOOT_FLASH_SIZE - off)
        return -1;
    int tear;
    int go = sim_tick(s, &tear);
    uint32_t n = go ? len : (tear ? len / 3 : 0);
    memset(s->mem + off, 0xFF, n);
    return go ? 0 : -1;
}

static const uint8_t *sim_map(void *ctx, uint32_t off, uint32_t len)
{
    struct flash_sim *s = ctx;
    if (!s->powered || off > BOOT_FLASH_SIZE || len > BOOT_FLASH_SIZE - off)
        return NULL;
    return s->mem + off;
}

void flash_sim_init(struct flash_sim *s)
{
    memset(s->mem, 0xFF, sizeof(s->mem));
    flash_sim_power_on(s, -1, 0);
    s->violations = 0;
}

void flash_sim_power_on(struct flash_sim *s, long budget, int torn)
{
    s->ops = 0;
    s->budget = budget;
    s->torn = torn;
    s->powered = 1;
}

struct boot_flash flash_sim_dev(struct flash_sim *s)
{
    struct boot_flash f = {s, sim_read, sim_write, sim_erase, sim_map};
    return f;
}
