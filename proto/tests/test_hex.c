/* Hex text <-> bytes: both cases, odd lengths, non-hex characters, capacity, the length
 * argument honoured without a NUL. */
#include <string.h>

#include "check.h"
#include "fleetgw/hex.h"

int main(void)
{
    uint8_t out[4];
    size_t n = 99;
    char txt[9];

    CHECK_EQ_INT(hex_decode("00ffA5b7", 8, out, sizeof(out), &n), 0);
    CHECK_EQ_INT(n, 4);
    CHECK(out[0] == 0x00 && out[1] == 0xff && out[2] == 0xa5 && out[3] == 0xb7);
    hex_encode(out, 4, txt);
    CHECK(strcmp(txt, "00ffa5b7") == 0);
    CHECK_EQ_INT(hex_decode("", 0, out, sizeof(out), &n), 0);
    CHECK_EQ_INT(n, 0);
    CHECK_EQ_INT(hex_decode("abc", 3, out, sizeof(out), &n), -1); /* odd */
    CHECK_EQ_INT(n, 0);
    CHECK_EQ_INT(hex_decode("0g", 2, out, sizeof(out), &n), -1);
    CHECK_EQ_INT(hex_decode("0 ", 2, out, sizeof(out), &n), -1);
    CHECK_EQ_INT(hex_decode("0011223344", 10, out, sizeof(out), &n), -1); /* 5 > 4 */
    CHECK_EQ_INT(hex_decode("0011zz", 4, out, sizeof(out), &n), 0);       /* len honoured */
    CHECK_EQ_INT(n, 2);
    CHECK_EQ_INT(hex_value('F'), 15);
    CHECK_EQ_INT(hex_value('/'), -1);
    CHECK_EQ_INT(hex_value(':'), -1);
    CHECK_EQ_INT(hex_value('G'), -1);
    return check_finish();
}
