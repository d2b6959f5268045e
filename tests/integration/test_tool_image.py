#!/usr/bin/python3
"""fleetgw-tool key/image end to end: the MCUboot vectors verify and print their documented
digests, a flipped byte is refused (exit 1, reason printed), I/O and usage errors exit 2,
--json parses, outputs are written atomically, and sign+verify round-trips with a key made
here (also checked by an independent verifier written with python3-cryptography)."""
import hashlib
import json
import os
import stat
import struct
import subprocess
import sys
import tempfile

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

BUILD = os.environ.get("FLEETGW_BUILD_DIR", "build")
TOOL = os.path.join(BUILD, "bin", "fleetgw-tool")
VECTORS = os.environ.get("FLEETGW_VECTORS", "")
DIGESTS = {
    "signed-1.2.3+4-sc7.bin": ("4f8030f84bca5177f40b5361ce20e4a166220efa35eca3dca86ac39a03cac32a", "1.2.3+4", 7),
    "signed-2.0.0-fullkey.bin": ("fa4d44d24596dab834339b3076625b965ab56ac6aaa96c81723884024d7e50f7", "2.0.0+0", None),
}
failures = []


def run(*args, expect=None):
    p = subprocess.run([TOOL, *args], capture_output=True, text=True, timeout=120)
    if expect is not None and p.returncode != expect:
        fail(f"{' '.join(args)}: exit {p.returncode}, expected {expect}\n{p.stdout}{p.stderr}")
    return p


def fail(msg):
    failures.append(msg)
    print("FAIL:", msg)


def check(cond, msg):
    if not cond:
        fail(msg)


def independent_verify(path, pub_pem):
    """A second, independent MCUboot verifier: hash over header+body+protected TLVs, the
    SHA256 TLV, and the ECDSA signature with the given key."""
    b = open(path, "rb").read()
    magic, _, hdr, ptlv, size = struct.unpack_from("<IIHHI", b, 0)
    assert magic == 0x96F3B83D
    off = hdr + size + ptlv
    digest = hashlib.sha256(b[:off]).digest()
    tmagic, tot = struct.unpack_from("<HH", b, off)
    assert tmagic == 0x6907
    o, tlvs = off + 4, {}
    while o < off + tot:
        t, n = struct.unpack_from("<HH", b, o)
        tlvs[t] = b[o + 4:o + 4 + n]
        o += 4 + n
    assert tlvs[0x10] == digest
    key = serialization.load_pem_public_key(open(pub_pem, "rb").read())
    key.verify(tlvs[0x22], digest, ec.ECDSA(Prehashed(hashes.SHA256())))
    return digest.hex()


def main():
    if not os.access(TOOL, os.X_OK):
        print(f"FAIL: {TOOL} not found (build first; FLEETGW_BUILD_DIR={BUILD})")
        return 1
    tmp = tempfile.mkdtemp(prefix="fleetgw-tool-image-")
    try:
        return body(tmp)
    finally:
        for root, dirs, files in os.walk(tmp, topdown=False):
            for f in files:
                os.unlink(os.path.join(root, f))
            for d in dirs:
                os.rmdir(os.path.join(root, d))
        os.rmdir(tmp)


def body(tmp):
    priv, pub = os.path.join(tmp, "k.pem"), os.path.join(tmp, "k.pub.pem")
    p = run("key", "gen", "-o", priv, "--pub", pub, expect=0)
    check(stat.S_IMODE(os.stat(priv).st_mode) == 0o600, "private key is not mode 0600")
    check("PRIVATE" not in p.stdout + p.stderr, "key gen printed key material")
    run("key", "gen", "-o", priv, expect=2)  # never overwrites a key
    pub2 = os.path.join(tmp, "k2.pub.pem")
    run("key", "pub", "-k", priv, "-o", pub2, expect=0)
    check(open(pub2).read() == open(pub).read(), "key pub differs from key gen --pub")

    payload = os.path.join(tmp, "payload.bin")
    with open(payload, "wb") as f:
        f.write(os.urandom(5000))
    img = os.path.join(tmp, "img.bin")
    run("image", "sign", "-k", priv, "-v", "1.4.2+77", "-H", "0x200", "--pad-header", "-S", "0x10000",
        "-s", "12", "--align", "8", "--pad", "--vid", "example.com", "--cid", "gateway-node",
        "--public-key-format", "hash", payload, img, expect=0)
    check(os.path.getsize(img) == 0x10000, "--pad did not pad to the slot size")
    p = run("image", "verify", "-k", pub, "--min-counter", "12", "--vid", "example.com",
            "--cid", "gateway-node", "--json", img, expect=0)
    v = json.loads(p.stdout)
    check(v["valid"] is True and v["version"] == "1.4.2+77" and v["security_counter"] == 12,
          f"round trip JSON {v}")
    check(v["digest"] == independent_verify(img, pub), "independent verifier disagrees")
    # policy refusals, each with its reason
    for args, status in ((["--min-counter", "13"], "counter_below_minimum"),
                         (["--cid", "other-class", "--vid", "example.com"], "device_class_mismatch")):
        p = run("image", "verify", "-k", pub, "--json", *args, img, expect=1)
        check(json.loads(p.stdout)["status"] == status, f"{args}: {p.stdout}")
    other = os.path.join(tmp, "o.pem")
    run("key", "gen", "-o", other, expect=0)
    p = run("image", "verify", "-k", other, img, expect=1)
    check("unknown key" in p.stderr, f"wrong key reason: {p.stderr}")
    p = run("image", "verify", "-k", other, "-k", pub, "--json", img, expect=0)
    check(json.loads(p.stdout)["key"] == pub, "second trusted key not reported")

    # info without verification
    p = run("image", "info", "--json", img, expect=0)
    check(json.loads(p.stdout)["padding"] > 0, "info --json")

    # atomic output: a failing sign leaves the old OUT and no temporary file
    out = os.path.join(tmp, "keep.bin")
    with open(out, "wb") as f:
        f.write(b"old")
    run("image", "sign", "-k", priv, "-v", "1", "-H", "0x200", "--pad-header", "-S", "0x1000",
        payload, out, expect=2)  # slot too small
    check(open(out, "rb").read() == b"old", "failed sign touched the output")
    check(not [f for f in os.listdir(tmp) if ".tmp." in f], "temporary file left behind")
    run("image", "sign", "-k", priv, "-v", "1", "-H", "0x200", "--pad-header", "-S", "0x10000",
        payload, os.path.join(tmp, "no", "such", "dir.bin"), expect=2)

    # I/O and usage errors
    run("image", "verify", "-k", pub, os.path.join(tmp, "missing.bin"), expect=2)
    run("image", "verify", "-k", os.path.join(tmp, "missing.pem"), img, expect=2)
    run("image", "verify", img, expect=2)
    run("image", "sign", "-k", priv, "-v", "x.y", "-H", "0x200", "-S", "0x10000", payload, img,
        expect=2)
    run("image", "frobnicate", expect=2)

    # the interop vectors
    if not VECTORS or not os.path.isfile(os.path.join(VECTORS, "mcuboot", "root-ec-p256.pem")):
        if failures:
            return 1
        print(f"SKIP: MCUboot vectors absent (FLEETGW_VECTORS={VECTORS!r}): own-image checks passed, "
              "vector checks not run")
        return 77
    vdir = os.path.join(VECTORS, "mcuboot")
    root_pub = os.path.join(tmp, "root.pub.pem")
    run("key", "pub", "-k", os.path.join(vdir, "root-ec-p256.pem"), "-o", root_pub, expect=0)
    for name, (digest, version, counter) in DIGESTS.items():
        path = os.path.join(vdir, name)
        p = run("image", "verify", "-k", root_pub, path, expect=0)
        check(digest in p.stdout, f"{name}: digest {digest} not printed:\n{p.stdout}")
        p = run("image", "verify", "-k", root_pub, "--json", path, expect=0)
        v = json.loads(p.stdout)
        check(v["digest"] == digest and v["version"] == version and
              v["security_counter"] == counter, f"{name}: JSON {v}")
        data = bytearray(open(path, "rb").read())
        info = json.loads(run("image", "info", "--json", path, expect=0).stdout)
        body_at = info["header_size"] + 100
        for off in (0, 20, 0x100, body_at, len(data) - 8):
            bad = os.path.join(tmp, "flipped.bin")
            d = bytearray(data)
            d[off] ^= 0x01
            with open(bad, "wb") as f:
                f.write(d)
            p = run("image", "verify", "-k", root_pub, bad, expect=1)
            check("invalid:" in p.stderr, f"{name} flip at {off}: no reason printed: {p.stderr}")
        print(f"{name}: verified, digest {digest}")
    # our signer with the vector's options reproduces imgtool's hash exactly
    mine = os.path.join(tmp, "mine.bin")
    p = run("image", "sign", "-k", os.path.join(vdir, "root-ec-p256.pem"), "-v", "1.2.3+4", "-H", "0x200",
            "--pad-header", "-S", "0x20000", "-s", "7", "--align", "4", os.path.join(vdir, "payload.bin"),
            mine, expect=0)
    check(DIGESTS["signed-1.2.3+4-sc7.bin"][0] in p.stdout, f"re-signed digest differs: {p.stdout}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
