/* Hexadecimal text <-> bytes, one copy for the tree (configuration values, control requests,
 * command-line arguments). No malloc; explicit lengths. */
#ifndef FLEETGW_HEX_H
#define FLEETGW_HEX_H

#include <stddef.h>
#include <stdint.h>

/* The value of one hex digit (either case), or -1. */
int hex_value(int c);

/* Decodes exactly len characters (an even number, all hex digits) into out (at most cap
 * bytes); *ret_len = len / 2. Returns 0, or -1 (odd length, a non-hex character, too long);
 * out is then left partly written and *ret_len 0. len 0 decodes to nothing. */
int hex_decode(const char *s, size_t len, uint8_t *out, size_t cap, size_t *ret_len);

/* Writes 2 * n lower-case digits and a NUL into out (2 * n + 1 bytes). */
void hex_encode(const uint8_t *p, size_t n, char *out);

#endif
