/* Link-mode provisioning record of the mps2-an385 agent (docs/firmware.md "Serial link"),
 * written at manufacture (here: by the test / mkflash.py), little endian:
 *   "FGPV" | u16 id_len | u16 host_len | u16 ca_len | u16 cert_len | u16 key_len | u16 0
 *   | id | host | CA cert (DER) | device cert (DER) | device key (DER, SEC1 or PKCS#8)
 *   | CRC-32 (zlib) of everything before it; at most PROV_MAX bytes in all.
 * Portable (no board calls): also built on the host for its unit test and fuzz target. */
#ifndef FLEETGW_MPS2_PROV_H
#define FLEETGW_MPS2_PROV_H

#include <stddef.h>
#include <stdint.h>

#define PROV_MAX      0x800u
#define PROV_HDR      16u
#define PROV_ID_MAX   48u
#define PROV_HOST_MAX 64u

struct prov {
    char id[PROV_ID_MAX + 1];
    char host[PROV_HOST_MAX + 1];
    const uint8_t *ca, *cert, *key; /* point into the record */
    size_t ca_len, cert_len, key_len;
};

/* Parses the record at p (PROV_MAX readable bytes). 0 when a valid record was found (out
 * filled); -1 otherwise (out cleared). */
int prov_parse(const uint8_t p[PROV_MAX], struct prov *out);

#endif
