/* Hexadecimal text <-> bytes (see hex.h). */
#include "fleetgw/hex.h"

int hex_value(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int hex_decode(const char *s, size_t len, uint8_t *out, size_t cap, size_t *ret_len)
{
    *ret_len = 0;
    if (len % 2u != 0 || len / 2u > cap)
        return -1;
    for (size_t i = 0; i < len / 2u; i++) {
        int hi = hex_value((unsigned char)s[2u * i]);
        int lo = hex_value((unsigned char)s[2u * i + 1u]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    *ret_len = len / 2u;
    return 0;
}

void hex_encode(const uint8_t *p, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2u * i] = digits[p[i] >> 4];
        out[2u * i + 1u] = digits[p[i] & 15u];
    }
    out[2u * n] = '\0';
}
