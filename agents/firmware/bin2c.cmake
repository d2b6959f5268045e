# Writes the built-in bootloader public key (DER SubjectPublicKeyInfo) as C source.
#   cmake -DIN=key.pub.der -DOUT=boot_pubkey.c -P bin2c.cmake
file(READ "${IN}" hex HEX)
string(LENGTH "${hex}" n)
math(EXPR bytes "${n} / 2")
if(NOT bytes EQUAL 91)
    message(FATAL_ERROR "${IN}: expected a 91-byte P-256 SubjectPublicKeyInfo, got ${bytes} bytes")
endif()
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," body "${hex}")
file(WRITE "${OUT}.tmp"
"/* Generated from ${IN}: the bootloader's built-in image signing key. */\n"
"#include <stdint.h>\n"
"extern const uint8_t fleetgw_boot_pubkey[];\n"
"extern const unsigned fleetgw_boot_pubkey_len;\n"
"const uint8_t fleetgw_boot_pubkey[] = {${body}};\n"
"const unsigned fleetgw_boot_pubkey_len = sizeof(fleetgw_boot_pubkey);\n")
file(RENAME "${OUT}.tmp" "${OUT}")
