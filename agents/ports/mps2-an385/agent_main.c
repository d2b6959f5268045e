/* Minimal fleetgw agent firmware for mps2-an385: prints its banner, the measured-boot record
 * left by the bootloader and the IAK public key, then serves commands on UART0:
 *   'c' confirm the running image (ends test mode), 'r' reset, 'u' request the install of the
 *   secondary slot's image at the next reset, 's' + 64 hex digits: sign that SHA-256 digest
 *   with the IAK (the agent holds a sign call, never the key). */
#include <string.h>

#include "board.h"
#include "fleetgw/iak.h"
#include "mbedtls/memory_buffer_alloc.h"

static unsigned char heap[8 * 1024]; /* Mbed TLS arena */

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Reads 64 hex digits (bounded: gives up on a non-hex character). */
static int read_digest(uint8_t digest[32])
{
    for (int i = 0; i < 64;) {
        int c = uart_getc_nonblock();
        if (c < 0)
            continue;
        int v = hexval(c);
        if (v < 0)
            return -1;
        if (i % 2 == 0)
            digest[i / 2] = (uint8_t)(v << 4);
        else
            digest[i / 2] = (uint8_t)(digest[i / 2] | v);
        i++;
    }
    return 0;
}

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
    mbedtls_memory_buffer_alloc_init(heap, sizeof(heap));
    uint8_t pub[65];
    if (board_flash_init(0) != 0) {
        uart_puts("agent: flash unavailable\n");
    } else if (iak_public_key(board_flash(), pub) == IAK_OK) {
        uart_puts("agent: iak-public ");
        uart_hex(pub, sizeof(pub));
        uart_puts("\n");
    } else {
        uart_puts("agent: no IAK\n");
    }
    uart_puts("agent: ready\n");
    for (;;) {
        int c = uart_getc_nonblock();
        if (c == 'r') {
            uart_puts("agent: reset\n");
            board_reset();
        } else if (c == 'c') {
            uart_puts(boot_confirm(board_flash()) == 0 ? "agent: image confirmed\n"
                                                       : "agent: confirm failed\n");
        } else if (c == 's') {
            uint8_t digest[32], sig[64];
            if (read_digest(digest) != 0) {
                uart_puts("agent: sign: expected 64 hex digits\n");
            } else if (iak_sign((void *)(uintptr_t)board_flash(), digest, sig) != 0) {
                uart_puts("agent: sign failed\n");
            } else {
                uart_puts("agent: sig ");
                uart_hex(sig, sizeof(sig));
                uart_puts("\n");
            }
        } else if (c == 'u') {
            uart_puts(boot_request_install(board_flash()) == 0
                          ? "agent: update requested, reset to install\n"
                          : "agent: update request refused (confirm first)\n");
        }
    }
}
