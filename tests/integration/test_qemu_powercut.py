#!/usr/bin/python3
"""Power cuts on the emulated device: QEMU (mps2-an385) is killed (SIGKILL) at spread-out
moments while the bootloader installs an update or reverts it, writing to its semihosting
flash file; a new QEMU on the same file must then start a verified image, old or new, and the
device must stay consistent (an unconfirmed new image is reverted at the following reset).
The exhaustive every-write proof is the unit test test_boot_powercut; this one checks the
real port (semihosting file I/O, memory-mapped flash mirror) end to end."""
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_qemu_boot as qb  # noqa: E402  (shared QEMU driver and image signer)

from cryptography.hazmat.primitives import serialization  # noqa: E402

CUTS = 12


def main():
    build = os.environ.get("FLEETGW_BUILD_DIR") or qb.die("FLEETGW_BUILD_DIR not set")
    fw = os.path.join(build, "firmware")
    qemu = shutil.which("qemu-system-arm") or qb.die(
        "qemu-system-arm not found: install the Debian package qemu-system-arm")
    bootloader = os.path.join(fw, "bootloader.elf")
    for p in (bootloader, os.path.join(fw, "fleet-agent.bin"), os.path.join(fw, "signing-key.pem")):
        if not os.path.exists(p):
            qb.die(p + " missing: the firmware was not built (-DFLEETGW_FIRMWARE=ON)")
    with open(os.path.join(fw, "signing-key.pem"), "rb") as f:
        key = serialization.load_pem_private_key(f.read(), None)
    with open(os.path.join(fw, "fleet-agent.bin"), "rb") as f:
        body = f.read()
    v1, _ = qb.sign_image(body, key, (0, 1, 0, 0), 1)
    v2, _ = qb.sign_image(body, key, (0, 2, 0, 0), 2)
    tmp = tempfile.mkdtemp(prefix="fleetgw-qemu-cut-")
    procs = []

    def start(d, flash=None):
        if flash is None:
            with open(os.path.join(d, "fleetgw-flash.bin"), "rb") as f:
                flash = f.read()
        q = qb.Qemu(qemu, d, bootloader, flash)
        procs.append(q)
        return q

    def must(q, pattern, what):
        m = q.wait_for(pattern)
        if m is None:
            qb.fail("%s: no %r; UART:\n%s" % (what, pattern, q.text()))
        return m

    try:
        # Reference: how long the install and the revert take on this machine.
        d = os.path.join(tmp, "ref")
        os.mkdir(d)
        q = start(d, qb.flash_with(v1, v2, seed=os.urandom(32)))
        must(q, r"agent: ready", "ref boot")
        q.send("u")
        must(q, r"agent: update requested", "ref request")
        # The swap window: from the bootloader's announcement to the start of the image.
        q.out = b""
        t0 = time.monotonic()
        q.send("r")
        must(q, r"boot: installing image", "ref install")
        t1 = time.monotonic()
        must(q, r"boot: swap complete: install", "ref install")
        windows = {"install": time.monotonic() - t1}
        must(q, r"boot: starting image 0\.2\.0", "ref install")
        must(q, r"agent: ready", "ref v2")
        q.out = b""
        t0 = time.monotonic()
        q.send("r")
        must(q, r"boot: image was not confirmed, reverting", "ref revert")
        t1 = time.monotonic()
        must(q, r"boot: swap complete: revert", "ref revert")
        windows["revert"] = time.monotonic() - t1
        must(q, r"boot: starting image 0\.1\.0", "ref revert")
        q.stop()
        for k, v in windows.items():
            print("%s: swap takes %.0f ms (announcement to 'swap complete')" %
                  (k, v * 1000))

        outcomes = {"0.1.0": 0, "0.2.0": 0, "resumed": 0}
        announce = {"install": r"boot: installing image",
                    "revert": r"boot: image was not confirmed, reverting"}
        for phase in ("install", "revert"):
            for i in range(CUTS):
                d = os.path.join(tmp, "%s%d" % (phase, i))
                os.mkdir(d)
                q = start(d, qb.flash_with(v1, v2, seed=os.urandom(32)))
                must(q, r"agent: ready", phase + " boot")
                q.send("u")
                must(q, r"agent: update requested", phase + " request")
                if phase == "revert":
                    q.send("r")
                    must(q, r"agent: image 0\.2\.0\+0 test mode", "revert: v2 under test")
                    must(q, r"agent: ready", "revert: v2 ready")
                q.out = b""
                q.send("r")
                # Cut at spread-out points of the swap (the first one right at its start).
                must(q, announce[phase], "%s cut %d: announcement" % (phase, i))
                time.sleep(windows[phase] * i / (CUTS - 1))
                q.stop()  # SIGKILL: the power goes
                # Power back on: a verified image must start.
                q = start(d)
                m = must(q, r"boot: starting image (0\.[12]\.0)\+0 \(security counter \d, "
                            r"(confirmed|test mode)\)", "%s cut %d: recovery" % (phase, i))
                must(q, r"agent: ready", "%s cut %d: agent" % (phase, i))
                if m:
                    outcomes[m.group(1)] += 1
                    if "boot: resuming interrupted" in q.text():
                        outcomes["resumed"] += 1  # the cut hit the middle of a swap
                    if phase == "revert" and m.group(1) == "0.2.0" and m.group(2) == "confirmed":
                        qb.fail("revert cut %d: the unconfirmed image became confirmed" % i)
                    if m.group(2) == "test mode":
                        # Not confirmed: the next reset must bring back 0.1.0.
                        q.out = b""
                        q.send("r")
                        must(q, r"boot: starting image 0\.1\.0\+0 \(security counter 1, "
                                r"confirmed\)", "%s cut %d: revert after" % (phase, i))
                q.stop()
        # How many cuts fell inside a swap depends on timing; each one is checked either way.
        print("recoveries: %s" % outcomes)
    finally:
        for q in procs:
            if q.proc.returncode is None:
                q.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    if qb.failures:
        print("%d failure(s)" % len(qb.failures))
        return 1
    print("all QEMU power-cut checks passed (%d cuts)" % (2 * CUTS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
