#!/usr/bin/python3
"""The bootloader on the host (fleetgw-boot-sim on a file-backed flash) with images signed by
fleetgw-tool: the tool and the bootloader agree (measurement = the digest the tool reports),
tampered and foreign images are refused with the reason, an update runs in test mode, is
reverted when not confirmed, stays when confirmed, and older images are refused afterwards.
The IAK persists in the flash file across runs (power cycles)."""
import os
import re
import shutil
import subprocess
import sys
import tempfile

failures = []


def fail(msg):
    print("FAIL: " + msg)
    failures.append(msg)


def run(args, expect_rc=0):
    p = subprocess.run(args, capture_output=True, text=True, timeout=120)
    if p.returncode != expect_rc:
        fail("%s: exit %d (wanted %d)\nstdout:\n%s\nstderr:\n%s" % (
            " ".join(args), p.returncode, expect_rc, p.stdout, p.stderr))
    return p.stdout + p.stderr


def main():
    build = os.environ.get("FLEETGW_BUILD_DIR")
    if not build:
        print("FAIL: FLEETGW_BUILD_DIR not set (run via ctest)")
        return 1
    tool = os.path.join(build, "bin", "fleetgw-tool")
    sim = os.path.join(build, "bin", "fleetgw-boot-sim")
    for p in (tool, sim):
        if not os.access(p, os.X_OK):
            print("FAIL: %s not built" % p)
            return 1
    tmp = tempfile.mkdtemp(prefix="fleetgw-bootsim-")
    try:
        j = lambda name: os.path.join(tmp, name)
        run([tool, "key", "gen", "-o", j("k.pem"), "--pub", j("k.pub.pem")])
        run([tool, "key", "gen", "-o", j("other.pem"), "--pub", j("other.pub.pem")])
        with open(j("payload.bin"), "wb") as f:
            f.write(os.urandom(5000))

        def sign(key, version, cnt, out):
            o = run([tool, "image", "sign", "-k", key, "-v", version, "-H", "0x200",
                     "--pad-header", "-S", "0x40000", "-s", str(cnt), j("payload.bin"), out])
            m = re.search(r"digest ([0-9a-f]{64})", o)
            return m.group(1) if m else None

        d1 = sign(j("k.pem"), "1.0.0", 1, j("v1.bin"))
        d2 = sign(j("k.pem"), "2.0.0", 2, j("v2.bin"))
        sign(j("other.pem"), "1.0.0", 1, j("foreign.bin"))
        with open(j("v1.bin"), "rb") as f:
            bad = bytearray(f.read())
        bad[0x200 + 100] ^= 0x01
        with open(j("tampered.bin"), "wb") as f:
            f.write(bad)

        def boot_sim(flash, *args, rc=0):
            return run([sim, "--flash", j(flash), "--key", j("k.pub.pem")] + list(args), rc)

        # Signed by the tool, booted by the bootloader core: same measurement.
        o = boot_sim("node.bin", "--load-primary", j("v1.bin"), "--boot")
        if "boot: starting image 1.0.0+0 (security counter 1, confirmed)" not in o:
            fail("v1 did not boot:\n" + o)
        m = re.search(r"measurement ([0-9a-f]{64})", o)
        if not m or m.group(1) != d1:
            fail("measurement %s != fleetgw-tool digest %s" % (m and m.group(1), d1))
        iak = re.search(r"iak-public (04[0-9a-f]{128})", o)

        # Refusals.
        o = boot_sim("t.bin", "--load-primary", j("tampered.bin"), "--boot", rc=1)
        if "boot: primary slot image rejected: hash mismatch" not in o:
            fail("tampered image not refused with its reason:\n" + o)
        o = boot_sim("f.bin", "--load-primary", j("foreign.bin"), "--boot", rc=1)
        if "boot: primary slot image rejected: signed by an unknown key" not in o:
            fail("foreign image not refused with its reason:\n" + o)
        print("ok: tool-signed image boots with the tool's digest; tampered/foreign refused")

        # Update in test mode, revert, confirmed update, rollback refused.
        o = boot_sim("node.bin", "--load-secondary", j("v2.bin"), "--request-install", "--boot")
        if "boot: installing image 2.0.0+0 in test mode" not in o or \
                "starting image 2.0.0+0 (security counter 2, test mode)" not in o:
            fail("install in test mode:\n" + o)
        m = re.search(r"measurement ([0-9a-f]{64})", o)
        if not m or m.group(1) != d2:
            fail("v2 measurement != tool digest")
        o = boot_sim("node.bin", "--boot")
        if "reverting" not in o or "starting image 1.0.0+0" not in o:
            fail("no revert of the unconfirmed image:\n" + o)
        o = boot_sim("node.bin", "--request-install", "--boot")
        if "starting image 2.0.0+0 (security counter 2, test mode)" not in o:
            fail("second install:\n" + o)
        o = boot_sim("node.bin", "--confirm", "--boot")
        if "starting image 2.0.0+0 (security counter 2, confirmed)" not in o:
            fail("confirmed image not kept:\n" + o)
        i2 = re.search(r"iak-public (04[0-9a-f]{128})", o)
        if not iak or not i2 or iak.group(1) != i2.group(1):
            fail("IAK changed across power cycles")
        o = boot_sim("node.bin", "--load-primary", j("v1.bin"), "--boot", rc=1)
        if "boot: primary slot image rejected: security counter 1 below minimum 2" not in o:
            fail("rollback to v1 not refused:\n" + o)
        print("ok: update in test mode, revert, confirm, anti-rollback, IAK persistent")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if failures:
        print("%d failure(s)" % len(failures))
        return 1
    print("all boot-sim checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
