/* posix port: the node's flash as a host file (BOOT_FLASH_SIZE bytes, erased = 0xFF), mapped
 * shared so that a simulated node keeps its slots, boot state and protected storage across
 * process restarts (power cycles). Same NOR rules as the device: erase per 4 KiB sector,
 * program only erased bytes. */
#ifndef FLEETGW_FLASH_FILE_H
#define FLEETGW_FLASH_FILE_H

#include <stdint.h>

#include "fleetgw/boot_flash.h"

struct flash_file {
    int fd;
    uint8_t *mem;
    struct boot_flash dev; /* the seam handed to the boot code */
};

/* Opens (creating it erased when absent) the flash file at path. Returns 0 or a negative
 * errno; -EINVAL when an existing file has the wrong size. */
int flash_file_open(struct flash_file *ff, const char *path) __attribute__((warn_unused_result));
/* Writes the mapping back (msync) and closes. Safe on a closed/never opened struct. */
void flash_file_close(struct flash_file *ff);

#endif
