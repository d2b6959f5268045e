/* Link mode of the mps2-an385 agent (docs/firmware.md "Serial link"): agents/core (agent
 * state machine, MQTT 3.1.1, TLS 1.2 via node_tls) over UART0, to the broker through the
 * gateway's fleetgw-serial-link. Entered only when the flash holds a provisioning record. */
#ifndef FLEETGW_MPS2_AGENT_LINK_H
#define FLEETGW_MPS2_AGENT_LINK_H

#include <stddef.h>
#include <stdint.h>

#include "board.h"

/* Provisioning record at PROV_OFF (written at manufacture, here: by the test/factory):
 *   "FGPV" | u16 id_len | u16 host_len | u16 ca_len | u16 cert_len | u16 key_len | u16 0
 *   | id | host | CA cert (DER) | device cert (DER) | device key (DER, SEC1 or PKCS#8)
 *   | CRC-32 (zlib) of everything before it; little endian; at most PROV_MAX bytes. */
#define PROV_OFF        (BOOT_PSA_OFF + 0x800u)
#define PROV_MAX        0x800u
#define PROV_HDR        16u
#define PROV_HOST_MAX   64u
#define LINK_MARKER     "LINK:BEGIN\r\n"
#define LINK_MARKER_LEN 12u

struct prov {
    char id[49];
    char host[PROV_HOST_MAX + 1];
    const uint8_t *ca, *cert, *key;
    size_t ca_len, cert_len, key_len;
};

/* Parses the record at p (PROV_MAX bytes). 0 when a valid record was found. */
int prov_parse(const uint8_t *p, struct prov *out);

/* Writes the PSA token for nonce into out; 0 on success. */
typedef int (*link_attest_fn)(void *user, const uint8_t *nonce, size_t nonce_len, uint8_t *out,
                              size_t cap, size_t *len);

/* Runs the agent over the UART forever (reconnecting as needed). */
_Noreturn void agent_link_run(const struct prov *p, const uint8_t seed[32], link_attest_fn attest,
                              void *user);

#endif
