#!/usr/bin/python3
"""Composes the emulated flash of an mps2-an385 node (the semihosting file
fleetgw-flash.bin the bootloader opens in QEMU's working directory):

  mkflash.py [--primary IMG] [--secondary IMG] [--seed HEX64 | --random-seed] OUT

Layout (docs/firmware.md): primary slot 0x8000, secondary 0x48000, protected storage 0x8B000
(the manufacture seed record the IAK is derived from on first boot). Everything else erased
(0xFF). The bootloader region 0x0-0x8000 is not used from the file (QEMU -kernel loads it).
"""
import argparse
import os
import struct
import sys
import zlib

FLASH_SIZE = 0x8C000
SLOT_SIZE = 0x40000
PRIMARY, SECONDARY, PSA = 0x8000, 0x48000, 0x8B000


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--primary")
    ap.add_argument("--secondary")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--seed", help="per-device seed, 64 hex digits")
    g.add_argument("--random-seed", action="store_true")
    ap.add_argument("out")
    a = ap.parse_args()
    flash = bytearray(b"\xff" * FLASH_SIZE)
    for path, off in ((a.primary, PRIMARY), (a.secondary, SECONDARY)):
        if path:
            with open(path, "rb") as f:
                img = f.read()
            if len(img) > SLOT_SIZE:
                sys.exit("mkflash: %s is larger than a slot (%d > %d bytes)" % (path, len(img),
                                                                                 SLOT_SIZE))
            flash[off:off + len(img)] = img
    seed = None
    if a.seed:
        seed = bytes.fromhex(a.seed)
        if len(seed) != 32:
            sys.exit("mkflash: --seed needs 64 hex digits")
    elif a.random_seed:
        seed = os.urandom(32)
    if seed:
        rec = b"FGSD" + seed
        flash[PSA:PSA + 40] = rec + struct.pack("<I", zlib.crc32(rec))
    with open(a.out, "wb") as f:
        f.write(flash)


if __name__ == "__main__":
    main()
