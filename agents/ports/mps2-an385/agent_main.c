/* Minimal fleetgw agent firmware for mps2-an385: prints its banner, the measured-boot record
 * left by the bootloader and the IAK public key, then serves commands on UART0:
 *   'c' confirm the running image (ends test mode), 'r' reset, 'u' request the install of the
 *   secondary slot's image at the next reset, 'a' + 64 hex digits: answer that 32-byte
 *   attestation challenge with a PSA attestation token (RFC 9783) signed by the IAK (the
 *   agent holds a sign call, never the key), its software component being the booted image
 *   as the bootloader measured it. The IAK signs attestation tokens only: 's' (sign a
 *   caller's digest) is refused, since a caller who chooses the digest could have any
 *   token signed, claiming any measurement.
 * With a provisioning record in the flash (agent_link.h) it runs agents/core over the UART
 * instead (link mode: MQTT over TLS to the broker through fleetgw-serial-link), answering
 * attestation challenges with the same token. */
#include <string.h>

#include "agent_link.h"
#include "board.h"
#include "fleetgw/iak.h"
#include "fleetgw/token.h"
#include "mbedtls/memory_buffer_alloc.h"

static unsigned char heap[48 * 1024]; /* Mbed TLS arena (TLS client in link mode) */

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Reads 64 hex digits (gives up on a non-hex character). */
static int read_hex32(uint8_t digest[32])
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

static struct token_claims claims; /* ~2.6 KB: not on the stack */
static uint8_t token[TOKEN_MAX_LEN];

/* The implementation id: SHA-256 of this string (one value per firmware implementation). */
static const char impl_name[] = "fleetgw agent, mps2-an385";

/* The PSA token for nonce (32, 48 or 64 bytes) into out: its software component is the
 * booted image as the bootloader measured it. 0 on success. */
static const struct boot_record *boot_rec;
static const uint8_t *iak_pub;

static int attest_token(void *user, const uint8_t *nonce, size_t nonce_len, uint8_t *out,
                        size_t cap, size_t *len)
{
    const struct boot_record *rec = boot_rec;
    (void)user;
    *len = 0;
    if (nonce_len > sizeof(claims.nonce))
        return -1;
    memset(&claims, 0, sizeof(claims));
    claims.present = TOKEN_HAS_NONCE | TOKEN_HAS_INSTANCE_ID | TOKEN_HAS_PROFILE |
                     TOKEN_HAS_CLIENT_ID | TOKEN_HAS_LIFECYCLE | TOKEN_HAS_IMPL_ID |
                     TOKEN_HAS_SW_COMPS;
    memcpy(claims.nonce, nonce, nonce_len);
    claims.nonce_len = nonce_len;
    claims.instance_id[0] = 0x01; /* UEID type RAND: 0x01 || SHA-256(IAK public key) */
    claims.instance_id_len = TOKEN_INSTANCE_ID_LEN;
    memcpy(claims.profile, TOKEN_PROFILE_2023, sizeof(TOKEN_PROFILE_2023));
    claims.client_id = 1;
    claims.lifecycle = 0x3000u; /* secured */
    claims.impl_id_len = TOKEN_IMPL_ID_LEN;
    claims.sw_count = 1;
    struct token_sw_component *sw = &claims.sw[0];
    sw->present = TOKEN_SWC_MEAS_TYPE | TOKEN_SWC_MEAS_VALUE | TOKEN_SWC_SIGNER_ID;
    memcpy(sw->meas_type, "fleet-agent", sizeof("fleet-agent"));
    memcpy(sw->meas_value, rec->measurement, 32);
    sw->meas_value_len = 32;
    memcpy(sw->signer_id, rec->signer_id, 32);
    sw->signer_id_len = 32;
    if (crypto_sha256(iak_pub, 65, claims.instance_id + 1) != 0 ||
        crypto_sha256((const uint8_t *)impl_name, sizeof(impl_name) - 1, claims.impl_id) != 0 ||
        token_encode(&claims, iak_sign, (void *)(uintptr_t)board_flash(), out, cap, len) !=
            TOKEN_OK)
        return -1;
    return 0;
}

static void attest(const uint8_t nonce[32])
{
    size_t len = 0;
    if (attest_token(NULL, nonce, 32, token, sizeof(token), &len) != 0) {
        uart_puts("agent: attestation failed\n");
        return;
    }
    uart_puts("agent: token ");
    uart_hex(token, len);
    uart_puts("\n");
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
    int have_iak = 0;
    if (board_flash_init(0) != 0) {
        uart_puts("agent: flash unavailable\n");
    } else if (iak_public_key(board_flash(), pub) == IAK_OK) {
        have_iak = 1;
        uart_puts("agent: iak-public ");
        uart_hex(pub, sizeof(pub));
        uart_puts("\n");
    } else {
        uart_puts("agent: no IAK\n");
    }
    boot_rec = &rec;
    iak_pub = pub;
    /* Link mode (agents/core over the UART) when the flash holds a provisioning record. */
    struct prov prov;
    const uint8_t *psa = board_flash()->map(NULL, BOOT_PSA_OFF, BOOT_PSA_SIZE);
    if (psa != NULL && prov_parse(psa + (PROV_OFF - BOOT_PSA_OFF), &prov) == 0) {
        if (!have_iak || !boot_record_valid(&rec)) {
            uart_puts("agent: link: no IAK or no boot record, staying in command mode\n");
        } else {
            agent_link_run(&prov, psa + 4, &rec, attest_token, NULL);
        }
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
            /* The digest is read (so its hex digits are not taken for commands), not signed. */
            uint8_t digest[32];
            if (read_hex32(digest) != 0)
                uart_puts("agent: sign: expected 64 hex digits\n");
            else
                uart_puts("agent: sign: refused: the IAK signs attestation tokens only\n");
        } else if (c == 'a') {
            uint8_t nonce[32];
            if (read_hex32(nonce) != 0)
                uart_puts("agent: attest: expected 64 hex digits\n");
            else if (!have_iak || !boot_record_valid(&rec))
                uart_puts("agent: attest: no IAK or no boot record\n");
            else
                attest(nonce);
        } else if (c == 'u') {
            uart_puts(boot_request_install(board_flash()) == 0
                          ? "agent: update requested, reset to install\n"
                          : "agent: update request refused (confirm first)\n");
        }
    }
}
