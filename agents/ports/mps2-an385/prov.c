/* Parser of the link-mode provisioning record (prov.h). */
#include "prov.h"
#include "fleetgw/bytes.h"

#include <string.h>

static uint32_t crc32_le(const uint8_t *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
    }
    return ~c;
}

static int name_ok(const uint8_t *s, size_t n, int host)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t c = s[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '-' || c == '_' || (host && c == '.');
        if (!ok)
            return 0;
    }
    return n > 0;
}

int prov_parse(const uint8_t p[PROV_MAX], struct prov *out)
{
    size_t id_len, host_len, ca_len, cert_len, key_len, left, total;
    memset(out, 0, sizeof(*out));
    if (memcmp(p, "FGPV", 4) != 0)
        return -1;
    id_len = bytes_le16(p + 4);
    host_len = bytes_le16(p + 6);
    ca_len = bytes_le16(p + 8);
    cert_len = bytes_le16(p + 10);
    key_len = bytes_le16(p + 12);
    if (bytes_le16(p + 14) != 0 || id_len > sizeof(out->id) - 1 || host_len > PROV_HOST_MAX)
        return -1;
    left = PROV_MAX - PROV_HDR - 4u; /* room for the data */
    if (id_len > left)
        return -1;
    left -= id_len;
    if (host_len > left)
        return -1;
    left -= host_len;
    if (ca_len > left)
        return -1;
    left -= ca_len;
    if (cert_len > left)
        return -1;
    left -= cert_len;
    if (key_len > left)
        return -1;
    total = PROV_HDR + id_len + host_len + ca_len + cert_len + key_len;
    uint32_t crc = (uint32_t)p[total] | ((uint32_t)p[total + 1] << 8) |
                   ((uint32_t)p[total + 2] << 16) | ((uint32_t)p[total + 3] << 24);
    if (crc != crc32_le(p, total))
        return -1;
    p += PROV_HDR;
    if (!name_ok(p, id_len, 0) || !name_ok(p + id_len, host_len, 1) || ca_len == 0 ||
        cert_len == 0 || key_len == 0)
        return -1;
    memcpy(out->id, p, id_len);
    p += id_len;
    memcpy(out->host, p, host_len);
    p += host_len;
    out->ca = p;
    out->ca_len = ca_len;
    out->cert = p + ca_len;
    out->cert_len = cert_len;
    out->key = p + ca_len + cert_len;
    out->key_len = key_len;
    return 0;
}
