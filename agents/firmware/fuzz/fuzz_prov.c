/* Fuzz target: the link-mode provisioning record parser on arbitrary flash contents (the
 * input, padded with 0xFF like erased flash to PROV_MAX bytes). A parsed record must point
 * inside the record and carry NUL-terminated names. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "prov.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t rec[PROV_MAX];
    struct prov p;
    memset(rec, 0xFF, sizeof(rec));
    memcpy(rec, data, size < sizeof(rec) ? size : sizeof(rec));
    if (prov_parse(rec, &p) != 0)
        return 0;
    const uint8_t *end = rec + sizeof(rec);
    if (strlen(p.id) == 0 || strlen(p.id) > PROV_ID_MAX || strlen(p.host) > PROV_HOST_MAX ||
        p.ca < rec || p.ca + p.ca_len > end || p.cert < rec || p.cert + p.cert_len > end ||
        p.key < rec || p.key + p.key_len > end)
        abort();
    return 0;
}
