/* Link mode of the mps2-an385 agent (docs/firmware.md "Serial link"): agents/core (agent
 * state machine, MQTT 3.1.1, TLS 1.2 via node_tls) over UART0, to the broker through the
 * gateway's fleetgw-serial-link. Entered only when the flash holds a provisioning record. */
#ifndef FLEETGW_MPS2_AGENT_LINK_H
#define FLEETGW_MPS2_AGENT_LINK_H

#include <stddef.h>
#include <stdint.h>

#include "board.h"
#include "prov.h"

/* The provisioning record (prov.h) sits at PROV_OFF in the protected storage. */
#define PROV_OFF        (BOOT_PSA_OFF + 0x800u)
#define LINK_MARKER     "LINK:BEGIN\r\n"
#define LINK_MARKER_LEN 12u

/* Writes the PSA token for nonce into out; 0 on success. */
typedef int (*link_attest_fn)(void *user, const uint8_t *nonce, size_t nonce_len, uint8_t *out,
                              size_t cap, size_t *len);

/* Runs the agent over the UART forever (reconnecting as needed); rec: the bootloader's
 * record of the running image (version for the node-status; measurement, counter and test
 * mode for the OTA client). Updates (docs/protocol.md 3.3-3.8) go into the secondary slot of
 * the flash through agents/core's OTA client; its progress record is kept in two host files
 * (ping-pong, sequence + check word) next to the flash file; a staged image makes the node
 * reset into the bootloader, which installs it in test mode. */
_Noreturn void agent_link_run(const struct prov *p, const uint8_t seed[32],
                              const struct boot_record *rec, link_attest_fn attest, void *user);

#endif
