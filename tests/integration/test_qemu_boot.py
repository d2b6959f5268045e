#!/usr/bin/python3
"""QEMU mps2-an385 secure boot: the cross-built bootloader verifies the agent image in the
primary slot of its semihosting flash file and starts it only when it is signed by the
built-in key; tampered, unsigned and wrongly signed images are refused with a clear UART
message. Also an update in test mode, its revert at the next reset, and a confirmed update.

Images are signed with the build's dev key (build/firmware/signing-key.pem) by this test's own
MCUboot-format signer (python3-cryptography), independent of the C code under test; when the
build produced fleet-agent-<version>.signed.bin with fleetgw-tool, that image is booted too.
"""
import hashlib
import json
import os
import re
import select
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zlib

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils

FLASH_SIZE = 0x8C000
PRIMARY = 0x8000
SECONDARY = 0x48000
PSA = 0x8B000  # protected storage: per-device seed (manufacture), IAK
HDR = 0x200
WAIT = 30.0  # upper bound for any expected UART line (a boot takes well under 1 s)

failures = []


def fail(msg):
    print("FAIL: " + msg)
    failures.append(msg)


def die(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def spki_der(key):
    return key.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


def sign_image(body, key, version=(0, 1, 0, 0), sec_cnt=1, sign=True):
    """MCUboot image: header 0x200, body, protected TLVs (SEC_CNT), TLVs SHA256, KEYHASH,
    ECDSA_SIG (DER), as imgtool -H 0x200 --pad-header -s <cnt> makes them."""
    major, minor, rev, build = version
    hdr = struct.pack("<IIHHIIBBHI", 0x96F3B83D, 0, HDR, 12, len(body), 0, major, minor, rev,
                      build).ljust(HDR, b"\0")
    prot = struct.pack("<HHHHI", 0x6908, 12, 0x50, 4, sec_cnt)
    signed = hdr + body + prot
    digest = hashlib.sha256(signed).digest()
    tlvs = struct.pack("<HH", 0x10, 32) + digest
    if sign:
        tlvs += struct.pack("<HH", 0x01, 32) + hashlib.sha256(spki_der(key)).digest()
        sig = key.sign(digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
        tlvs += struct.pack("<HH", 0x22, len(sig)) + sig
    return signed + struct.pack("<HH", 0x6907, 4 + len(tlvs)) + tlvs, digest


class Qemu:
    def __init__(self, qemu, workdir, bootloader, flash):
        with open(os.path.join(workdir, "fleetgw-flash.bin"), "wb") as f:
            f.write(flash)
        self.out = b""
        self.proc = subprocess.Popen(
            [qemu, "-M", "mps2-an385", "-display", "none", "-monitor", "none",
             "-serial", "stdio", "-semihosting-config", "enable=on,target=native",
             "-kernel", bootloader],
            cwd=workdir, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT)

    def wait_for(self, pattern, timeout=WAIT):
        """Returns the match of pattern in the UART output, or None after timeout s."""
        rx = re.compile(pattern)
        end = time.monotonic() + timeout
        while True:
            m = rx.search(self.out.decode("latin-1"))
            if m:
                return m
            left = end - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                return None
            r, _, _ = select.select([self.proc.stdout], [], [], min(left, 0.5))
            if r:
                chunk = os.read(self.proc.stdout.fileno(), 4096)
                if not chunk:
                    continue
                self.out += chunk

    def send(self, text):
        self.proc.stdin.write(text.encode())
        self.proc.stdin.flush()

    def text(self):
        return self.out.decode("latin-1")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()  # only the QEMU this test started
        self.proc.wait(timeout=10)
        self.proc.stdin.close()
        self.proc.stdout.close()


def seed_record(seed):
    """Manufacture step: the per-device seed record ("FGSD" | seed | CRC-32)."""
    rec = b"FGSD" + seed
    return rec + struct.pack("<I", zlib.crc32(rec))


def flash_with(primary=None, secondary=None, seed=None):
    flash = bytearray(b"\xff" * FLASH_SIZE)
    if seed is not None:
        flash[PSA:PSA + 40] = seed_record(seed)
    if primary is not None:
        flash[PRIMARY:PRIMARY + len(primary)] = primary
    if secondary is not None:
        flash[SECONDARY:SECONDARY + len(secondary)] = secondary
    return bytes(flash)


def main():
    build = os.environ.get("FLEETGW_BUILD_DIR") or die("FLEETGW_BUILD_DIR not set (run via ctest)")
    fw = os.path.join(build, "firmware")
    qemu = shutil.which("qemu-system-arm")
    if qemu is None:
        die("qemu-system-arm not found: install the Debian package qemu-system-arm "
            "(scripts/deps.sh)")
    bootloader = os.path.join(fw, "bootloader.elf")
    agent_bin = os.path.join(fw, "fleet-agent.bin")
    key_pem = os.path.join(fw, "signing-key.pem")
    for p in (bootloader, agent_bin, key_pem):
        if not os.path.exists(p):
            die(p + " missing: the firmware was not built (configure with "
                "-DFLEETGW_FIRMWARE=ON and build)")
    with open(key_pem, "rb") as f:
        key = serialization.load_pem_private_key(f.read(), None)
    with open(agent_bin, "rb") as f:
        body = f.read()
    other_key = ec.generate_private_key(ec.SECP256R1())
    signer_id = hashlib.sha256(spki_der(key)).hexdigest()

    good, good_hash = sign_image(body, key, (0, 1, 0, 0), 1)
    tmp = tempfile.mkdtemp(prefix="fleetgw-qemu-")
    runs = []

    def boot(flash, name):
        d = os.path.join(tmp, name)
        os.mkdir(d)
        q = Qemu(qemu, d, bootloader, flash)
        runs.append(q)
        return q

    def expect(q, pattern, what):
        m = q.wait_for(pattern)
        if m is None:
            fail("%s: did not see %r within %.0f s; UART said:\n%s" % (what, pattern, WAIT,
                                                                       q.text()))
        return m

    try:
        # 1. The signed agent boots; its banner and the measured-boot record match the image.
        q = boot(flash_with(good), "good")
        expect(q, r"boot: starting image 0\.1\.0\+0 \(security counter 1, confirmed\)",
               "signed image")
        expect(q, r"fleet-agent \S+ starting", "agent banner")
        m = expect(q, r"agent: measurement ([0-9a-f]{64})", "measurement")
        if m and m.group(1) != good_hash.hex():
            fail("measurement %s != image hash %s" % (m.group(1), good_hash.hex()))
        m = expect(q, r"agent: signer-id ([0-9a-f]{64})", "signer id")
        if m and m.group(1) != signer_id:
            fail("signer id %s != SHA-256 of the signing key %s" % (m.group(1), signer_id))
        q.stop()
        print("ok: signed agent booted, measurement and signer id reported")

        # 2. Refusals: one flipped byte, a flipped signature byte, unsigned, another key.
        tampered = bytearray(good)
        tampered[HDR + len(body) // 2] ^= 0x01
        bad_sig = bytearray(good)
        bad_sig[-1] ^= 0x01
        unsigned, _ = sign_image(body, key, sign=False)
        other, _ = sign_image(body, other_key)
        cases = [
            ("tampered", bytes(tampered), "hash mismatch"),
            ("badsig", bytes(bad_sig), "bad signature"),
            ("unsigned", unsigned, "image is not signed"),
            ("otherkey", other, "signed by an unknown key"),
            ("empty", None, r"no image \(bad magic\)"),
        ]
        for name, img, reason in cases:
            q = boot(flash_with(img), name)
            expect(q, r"boot: primary slot image rejected: " + reason, name)
            expect(q, r"boot: halted: no verified image to start", name)
            time.sleep(0.3)  # give a wrongly started agent the time to show itself
            q.wait_for(r"fleet-agent", timeout=0.5)
            if "fleet-agent" in q.text() or "agent:" in q.text():
                fail(name + ": the agent ran although its image was refused")
            q.stop()
            print("ok: %s image refused: %s" % (name, reason.replace("\\", "")))

        # 3. Update in test mode, revert at the next reset, then a confirmed update.
        v2, v2_hash = sign_image(body, key, (0, 2, 0, 0), 2)
        q = boot(flash_with(good, v2), "update")
        expect(q, r"agent: ready", "update: v1 boots")
        q.send("u")
        expect(q, r"agent: update requested", "update: request")
        q.send("r")
        expect(q, r"boot: installing image 0\.2\.0\+0 in test mode", "update: install")
        expect(q, r"boot: starting image 0\.2\.0\+0 \(security counter 2, test mode\)",
               "update: v2 in test mode")
        m = expect(q, r"agent: image 0\.2\.0\+0 test mode\s+agent: measurement ([0-9a-f]{64})",
                   "update: v2 measurement")
        if m and m.group(1) != v2_hash.hex():
            fail("update: measurement of v2 wrong")
        q.out = b""
        q.send("r")  # reset without confirming: the bootloader reverts
        expect(q, r"boot: image was not confirmed, reverting", "revert")
        expect(q, r"boot: starting image 0\.1\.0\+0 \(security counter 1, confirmed\)",
               "revert: v1 back")
        expect(q, r"agent: ready", "revert: agent")
        q.out = b""
        q.send("u")
        expect(q, r"agent: update requested", "update 2: request")
        q.send("r")
        expect(q, r"agent: image 0\.2\.0\+0 test mode", "update 2: v2 test mode")
        expect(q, r"agent: ready", "update 2: agent")
        q.send("c")
        expect(q, r"agent: image confirmed", "confirm")
        q.out = b""
        q.send("r")
        expect(q, r"boot: starting image 0\.2\.0\+0 \(security counter 2, confirmed\)",
               "confirmed v2 stays")
        q.stop()
        # The flash file persists: a new QEMU run (power cycle) keeps v2 and refuses v1 now.
        with open(os.path.join(tmp, "update", "fleetgw-flash.bin"), "rb") as f:
            flash = bytearray(f.read())
        flash[PRIMARY:PRIMARY + 0x40000] = b"\xff" * 0x40000
        flash[PRIMARY:PRIMARY + len(good)] = good
        q = boot(bytes(flash), "rollback")
        expect(q, r"boot: primary slot image rejected: security counter 1 below minimum 2",
               "rollback refused")
        q.stop()
        print("ok: update in test mode, revert, confirm, anti-rollback across power cycles")

        # 4. IAK: created by the bootloader on first boot from the manufacture seed, kept in
        # protected storage across power cycles, used by the agent through a sign call.
        q = boot(flash_with(good, seed=os.urandom(32)), "iak")
        expect(q, r"boot: IAK ready", "iak: provisioned")
        m = expect(q, r"agent: iak-public (04[0-9a-f]{128})", "iak: public key")
        pub1 = m.group(1) if m else None
        # The IAK signs attestation tokens only: a caller's digest is refused (else whoever
        # reaches the UART could have a token claiming any measurement signed).
        digest = hashlib.sha256(b"fleetgw challenge " + os.urandom(8)).digest()
        q.send("s" + digest.hex())
        expect(q, r"agent: sign: refused: the IAK signs attestation tokens only",
               "iak: a caller's digest is not signed")
        # Attestation: a PSA token for a fresh challenge, checked by fleetgw-tool token verify
        # with the IAK public key and the nonce; its software component is the booted image.
        nonce = os.urandom(32)
        q.send("a" + nonce.hex())
        m = expect(q, r"agent: token ([0-9a-f]+)\r?\n", "attestation token")
        if m and pub1:
            tok_path = os.path.join(tmp, "token.cbor")
            with open(tok_path, "wb") as f:
                f.write(bytes.fromhex(m.group(1)))
            pem_path = os.path.join(tmp, "iak.pub.pem")
            with open(pem_path, "wb") as f:
                f.write(ec.EllipticCurvePublicKey.from_encoded_point(
                    ec.SECP256R1(), bytes.fromhex(pub1)).public_bytes(
                        serialization.Encoding.PEM,
                        serialization.PublicFormat.SubjectPublicKeyInfo))
            tool = os.path.join(build, "bin", "fleetgw-tool")
            if not os.access(tool, os.X_OK):
                fail("fleetgw-tool not built: cannot check the attestation token")
            else:
                p = subprocess.run([tool, "token", "verify", "-k", pem_path, "--nonce",
                                    nonce.hex(), "--json", tok_path], capture_output=True,
                                   text=True, timeout=60)
                if p.returncode != 0:
                    fail("token verify: exit %d: %s %s" % (p.returncode, p.stdout, p.stderr))
                else:
                    claims = json.loads(p.stdout).get("claims", {})
                    sw = claims.get("software_components", [{}])[0]
                    if sw.get("measurement_value") != good_hash.hex() or \
                            sw.get("signer_id") != signer_id:
                        fail("token software component %r != image hash/signer id" % sw)
                p = subprocess.run([tool, "token", "verify", "-k", pem_path, "--nonce",
                                    os.urandom(32).hex(), tok_path], capture_output=True,
                                   text=True, timeout=60)
                if p.returncode != 1:
                    fail("token verify accepted the token for another nonce")
        q.stop()
        with open(os.path.join(tmp, "iak", "fleetgw-flash.bin"), "rb") as f:
            flash = f.read()
        if flash[PSA + 0x100:PSA + 0x104] != b"FGIK":
            fail("iak: no key record in protected storage after first boot")
        q = boot(flash, "iak2")
        m = expect(q, r"agent: iak-public (04[0-9a-f]{128})", "iak: second power-on")
        if m and m.group(1) != pub1:
            fail("iak: the key changed across a power cycle")
        q.stop()
        q = boot(flash_with(good, seed=os.urandom(32)), "iak3")
        m = expect(q, r"agent: iak-public (04[0-9a-f]{128})", "iak: other device")
        if m and m.group(1) == pub1:
            fail("iak: two devices with different seeds got the same key")
        q.stop()
        q = boot(flash_with(good), "noseed")
        expect(q, r"boot: no device seed in protected storage: IAK not provisioned", "no seed")
        expect(q, r"agent: no IAK", "no seed: agent")
        q.stop()
        print("ok: IAK provisioned from the manufacture seed, persistent, signs verifiably; "
              "PSA token for a challenge verifies with fleetgw-tool")

        # 5. The image signed by the build (fleetgw-tool image sign), when the build made one.
        signed = sorted(f for f in os.listdir(fw) if re.match(r"fleet-agent-.*\.signed\.bin$", f))
        if signed:
            with open(os.path.join(fw, signed[-1]), "rb") as f:
                img = f.read()
            hdr_size, prot, img_size = struct.unpack_from("<HHI", img, 8)
            want = hashlib.sha256(img[:hdr_size + img_size + prot]).hexdigest()
            q = boot(flash_with(img), "toolsigned")
            expect(q, r"fleet-agent \S+ starting", signed[-1])
            m = expect(q, r"agent: measurement ([0-9a-f]{64})", signed[-1] + " measurement")
            if m and m.group(1) != want:
                fail("%s: measurement %s != image hash %s" % (signed[-1], m.group(1), want))
            q.stop()
            print("ok: %s (signed by fleetgw-tool) boots" % signed[-1])
        else:
            print("note: no fleet-agent-*.signed.bin in %s (fleetgw-tool image sign not in "
                  "the build yet); images signed by this test only" % fw)
    finally:
        for q in runs:
            q.stop() if q.proc.returncode is None else None
        shutil.rmtree(tmp, ignore_errors=True)

    if failures:
        print("%d failure(s)" % len(failures))
        return 1
    print("all QEMU boot checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
