/* Flash seam of the bootloader (MCUboot's flash_area idea, reduced): the portable boot code
 * sees one flash device through three calls, and the layout below. Ports: mps2-an385
 * (semihosting-backed flash mirrored in memory), posix (a host file), tests (in memory with
 * a write counter that cuts the power). */
#ifndef FLEETGW_BOOT_FLASH_H
#define FLEETGW_BOOT_FLASH_H

#include <stdint.h>

/* Flash layout (offsets are also the Cortex-M addresses: flash is mapped at 0x0).
 * See docs/firmware.md. Erase unit: one 4 KiB sector; erased bytes read 0xFF; a write may
 * only program erased bytes. */
#define BOOT_SECTOR_SIZE   0x1000u
#define BOOT_LOADER_OFF    0x00000000u /* bootloader code, 32 KiB */
#define BOOT_LOADER_SIZE   0x00008000u
#define BOOT_PRIMARY_OFF   0x00008000u /* slot 0: the image that runs (execute in place) */
#define BOOT_SLOT_SIZE     0x00040000u /* 256 KiB per slot */
#define BOOT_SECONDARY_OFF 0x00048000u /* slot 1: a downloaded update, or the reverted image */
#define BOOT_SCRATCH_OFF   0x00088000u /* one sector, swap scratch */
#define BOOT_STATE_OFF     0x00089000u /* two sectors, boot state log (ping-pong) */
#define BOOT_STATE_SIZE    0x00002000u
#define BOOT_PSA_OFF       0x0008B000u /* protected storage: device seed, IAK */
#define BOOT_PSA_SIZE      0x00001000u
#define BOOT_FLASH_SIZE    0x0008C000u

/* Each call returns 0 on success, -1 on failure (out of range, misaligned erase, program
 * over non-erased bytes, or in tests: the power was cut). */
struct boot_flash {
    void *ctx;
    int (*read)(void *ctx, uint32_t off, void *buf, uint32_t len);
    int (*write)(void *ctx, uint32_t off, const void *buf, uint32_t len);
    int (*erase)(void *ctx, uint32_t off, uint32_t len); /* sector aligned */
    /* Memory-mapped (execute-in-place) view of [off, off+len), or NULL. Image verification
     * works on this view, so what is verified is what the CPU executes. */
    const uint8_t *(*map)(void *ctx, uint32_t off, uint32_t len);
};

#endif
