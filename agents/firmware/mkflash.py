#!/usr/bin/python3
"""Composes the emulated flash of an mps2-an385 node (the semihosting file
fleetgw-flash.bin the bootloader opens in QEMU's working directory):

  mkflash.py [--primary IMG] [--secondary IMG] [--seed HEX64 | --random-seed]
             [--node-id ID --server-name NAME --ca CA --cert CERT --key KEY] OUT

Layout (docs/firmware.md): primary slot 0x8000, secondary 0x48000, protected storage 0x8B000
(the manufacture seed record the IAK is derived from on first boot; at +0x800 the optional
provisioning record of link mode: node id, broker name, CA, device certificate and key, PEM or
DER files, stored as DER). Everything else erased (0xFF). The bootloader region 0x0-0x8000 is not used from the file (QEMU -kernel loads it).
"""
import argparse
import os
import struct
import sys
import zlib

FLASH_SIZE = 0x8C000
SLOT_SIZE = 0x40000
PRIMARY, SECONDARY, PSA = 0x8000, 0x48000, 0x8B000
PROV, PROV_MAX = PSA + 0x800, 0x800


def der_of(path, kind):
    """DER bytes of a PEM or DER file (kind: "cert" or "key")."""
    with open(path, "rb") as f:
        data = f.read()
    if not data.startswith(b"-----BEGIN"):
        return data
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    if kind == "cert":
        return x509.load_pem_x509_certificate(data).public_bytes(serialization.Encoding.DER)
    key = serialization.load_pem_private_key(data, None)
    return key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def prov_record(node_id, server_name, ca, cert, key):
    """Link-mode provisioning record (agents/ports/mps2-an385/agent_link.h)."""
    parts = [node_id.encode(), server_name.encode(), ca, cert, key]
    hdr = b"FGPV" + struct.pack("<6H", *(len(x) for x in parts), 0)
    body = hdr + b"".join(parts)
    rec = body + struct.pack("<I", zlib.crc32(body))
    if len(rec) > PROV_MAX:
        sys.exit("mkflash: provisioning record too large (%d > %d bytes)" % (len(rec), PROV_MAX))
    return rec


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--primary")
    ap.add_argument("--secondary")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--seed", help="per-device seed, 64 hex digits")
    g.add_argument("--random-seed", action="store_true")
    ap.add_argument("--node-id", help="link mode: node id (= CN of the device certificate)")
    ap.add_argument("--server-name", default="localhost",
                    help="link mode: the broker certificate's host name")
    ap.add_argument("--ca", help="link mode: CA certificate of the broker (PEM or DER)")
    ap.add_argument("--cert", help="link mode: device certificate (PEM or DER)")
    ap.add_argument("--key", help="link mode: device private key (PEM or DER)")
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
    prov = (a.node_id, a.ca, a.cert, a.key)
    if any(prov):
        if not all(prov):
            sys.exit("mkflash: link mode needs --node-id, --ca, --cert and --key")
        rec = prov_record(a.node_id, a.server_name, der_of(a.ca, "cert"),
                          der_of(a.cert, "cert"), der_of(a.key, "key"))
        flash[PROV:PROV + len(rec)] = rec
    with open(a.out, "wb") as f:
        f.write(flash)


if __name__ == "__main__":
    main()
