/* fleetgw bootloader for mps2-an385: open the flash (semihosting file mirrored at the flash
 * addresses), run the portable boot core, leave the measured-boot record in shared RAM and
 * jump to the verified primary image. Never jumps to anything boot_go() did not verify. */
#include <string.h>

#include "board.h"
#include "fleetgw/crypto.h"
#include "fleetgw/iak.h"
#include "mbedtls/memory_buffer_alloc.h"

extern const uint8_t fleetgw_boot_pubkey[];
extern const unsigned fleetgw_boot_pubkey_len;

static unsigned char heap[6 * 1024]; /* Mbed TLS arena: one P-256 verify needs ~2.3 KB */

static void log_line(void *ctx, const char *line)
{
    (void)ctx;
    uart_puts(line);
    uart_puts("\n");
}

static _Noreturn void jump(uint32_t vtor)
{
    const uint32_t *vec = (const uint32_t *)(uintptr_t)vtor;
    *(volatile uint32_t *)0xE000ED08u = vtor; /* SCB->VTOR */
    __asm__ volatile("dsb\nisb" ::: "memory");
    __asm__ volatile("msr msp, %0\nbx %1" ::"r"(vec[0]), "r"(vec[1]) : "memory");
    __builtin_unreachable();
}

int main(void)
{
    struct boot_image_info info;
    struct boot_record rec;

    uart_init();
    uart_puts("fleetgw bootloader " FLEETGW_VERSION " (mps2-an385)\n");
    mbedtls_memory_buffer_alloc_init(heap, sizeof(heap));
    if (board_flash_init(1) != 0) {
        uart_puts("boot: cannot open the flash file " BOARD_FLASH_FILE
                  " (semihosting off, or file missing/wrong size), halting\n");
        board_halt();
    }
    /* First boot: create the IAK. QEMU's mps2-an385 has no TRNG: the key is derived from the
     * per-device seed written into protected storage at manufacture. */
    enum iak_status ist = iak_provision(board_flash(), NULL, NULL);
    uart_puts(ist == IAK_OK        ? "boot: IAK ready\n"
              : ist == IAK_NO_SEED ? "boot: no device seed in protected storage: IAK not "
                                     "provisioned (attestation unavailable)\n"
                                   : "boot: IAK provisioning failed (attestation unavailable)\n");
    struct boot_ctx ctx = {board_flash(), fleetgw_boot_pubkey, fleetgw_boot_pubkey_len, log_line,
                           NULL};
    enum boot_result r = boot_go(&ctx, &info, &rec);
    if (r != BOOT_GO) {
        uart_puts(r == BOOT_FLASH_FAILURE ? "boot: flash failure, halting\n"
                                          : "boot: halted: no verified image to start\n");
        board_halt();
    }
    memcpy((void *)(uintptr_t)BOARD_SHARED_ADDR, &rec, sizeof(rec));
    crypto_wipe(heap, sizeof(heap));
    jump(BOOT_PRIMARY_OFF + info.hdr_size);
}
