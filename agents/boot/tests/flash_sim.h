/* In-memory NOR flash for the bootloader tests: erase to 0xFF per sector, writes only over
 * erased bytes (a violation is counted: it would be a bug in the write ordering), and a power
 * cut after a given number of write/erase operations, optionally tearing the interrupted one. */
#ifndef FLASH_SIM_H
#define FLASH_SIM_H

#include <stdint.h>

#include "fleetgw/boot_flash.h"

struct flash_sim {
    uint8_t mem[BOOT_FLASH_SIZE];
    long ops;        /* write/erase operations done */
    long budget;     /* operations allowed before the power goes (-1: unlimited) */
    int torn;        /* the interrupted operation does half its work */
    int powered;     /* 0 after the cut: every call fails */
    long violations; /* writes over non-erased bytes */
};

void flash_sim_init(struct flash_sim *s);
void flash_sim_power_on(struct flash_sim *s, long budget, int torn);
struct boot_flash flash_sim_dev(struct flash_sim *s);

#endif
