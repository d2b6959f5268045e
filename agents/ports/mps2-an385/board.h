/* mps2-an385 (Cortex-M3, QEMU): UART0, semihosting, reset, the semihosting-backed flash. */
#ifndef FLEETGW_MPS2_BOARD_H
#define FLEETGW_MPS2_BOARD_H

#include <stddef.h>
#include <stdint.h>

#include "fleetgw/boot.h"

/* The measured-boot record the bootloader leaves for the application: fixed RAM address,
 * outside both programs' .data/.bss (see the linker scripts). */
#define BOARD_SHARED_ADDR 0x2003F000u
#define BOARD_FLASH_FILE  "fleetgw-flash.bin"

void uart_init(void);
void uart_putc(char c);
void uart_puts(const char *s);
void uart_hex(const uint8_t *p, size_t n);
int uart_getc_nonblock(void); /* -1 when nothing is waiting */

/* Semihosting (QEMU -semihosting-config enable=on,target=native). */
int semihost_open(const char *path, int mode);
int semihost_close(int fd);
int semihost_seek(int fd, uint32_t pos);
int semihost_flen(int fd);
int semihost_read(int fd, void *buf, uint32_t len);        /* 0 when all read */
int semihost_write(int fd, const void *buf, uint32_t len); /* 0 when all written */

/* Flash: the persistent host file, mirrored at its own addresses in the SSRAM1 region the
 * code executes from. Reads come from the mirror (what was verified is what executes);
 * writes and erases go to both. 0 on success. */
int board_flash_init(int load_mirror); /* load_mirror=0: the bootloader already did */
const struct boot_flash *board_flash(void);

_Noreturn void board_reset(void);
_Noreturn void board_halt(void);

#endif
