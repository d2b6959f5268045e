/* Minimal fleetgw agent firmware for mps2-an385: prints its banner and the measured-boot
 * record left by the bootloader, then serves single-byte commands on UART0:
 *   'c' confirm the running image (ends test mode), 'r' reset, 'u' request the install of the
 *   secondary slot's image at the next reset. */
#include <string.h>

#include "board.h"

static void print_version(const struct boot_image_version *v)
{
    char buf[48];
    size_t n = 0;
    uint32_t parts[4] = {v->major, v->minor, v->revision, v->build};
    for (int i = 0; i < 4; i++) {
        char tmp[11];
        size_t k = 0;
        uint32_t x = parts[i];
        do {
            tmp[k++] = (char)('0' + x % 10u);
            x /= 10u;
        } while (x != 0);
        while (k > 0)
            buf[n++] = tmp[--k];
        buf[n++] = i == 2 ? '+' : '.';
    }
    buf[n - 1] = '\0';
    uart_puts(buf);
}

int main(void)
{
    struct boot_record rec;
    uart_init();
    uart_puts("fleet-agent " FLEETGW_AGENT_VERSION " starting\n");
    memcpy(&rec, (const void *)(uintptr_t)BOARD_SHARED_ADDR, sizeof(rec));
    if (!boot_record_valid(&rec)) {
        uart_puts("agent: no valid boot record from the bootloader\n");
    } else {
        uart_puts("agent: image ");
        print_version(&rec.version);
        uart_puts(rec.confirmed ? " confirmed" : " test mode");
        uart_puts("\nagent: measurement ");
        uart_hex(rec.measurement, sizeof(rec.measurement));
        uart_puts("\nagent: signer-id ");
        uart_hex(rec.signer_id, sizeof(rec.signer_id));
        uart_puts("\n");
    }
    if (board_flash_init(0) != 0)
        uart_puts("agent: flash unavailable\n");
    uart_puts("agent: ready\n");
    for (;;) {
        int c = uart_getc_nonblock();
        if (c == 'r') {
            uart_puts("agent: reset\n");
            board_reset();
        } else if (c == 'c') {
            uart_puts(boot_confirm(board_flash()) == 0 ? "agent: image confirmed\n"
                                                       : "agent: confirm failed\n");
        } else if (c == 'u') {
            uart_puts(boot_request_install(board_flash()) == 0
                          ? "agent: update requested, reset to install\n"
                          : "agent: update request refused (confirm first)\n");
        }
    }
}
