"""Shared steps of the tests that run the emulated node (QEMU mps2-an385) with a gateway:
test_qemu_node_ota.py (the test-only OTA server), test_qemu_node_gate.py (fleetgwd's gate)
and test_qemu_gateway_ota.py (fleetgwd's campaigns). Booting QEMU and its serial link is
test_qemu_node.start_node; this module adds the factory step, the build's update image and
the power cycle after the agent's own reset."""
import hashlib
import json
import os
import re
import subprocess
import sys

from fleetgw_harness import expect, program
from test_qemu_node import start_node, wait_node

# A guest reset ends QEMU (the test starts it again on the same flash file: a power cycle).
# With QEMU resetting in place and the same fleetgw-serial-link, every broker session after
# the reset was refused by mosquitto ("wrong version number"); see docs/firmware.md.
NO_REBOOT = ("-no-reboot",)

IAK_BANNER = r"agent: iak-public (04[0-9a-f]{128})"


def image_info(path):
    """`fleetgw-tool image info --json` of a signed image."""
    return json.loads(subprocess.run([program("fleetgw-tool"), "image", "info", "--json", path],
                                     check=True, capture_output=True, text=True).stdout)


def update_image(image):
    """(path, image info) of the build's update image (update/fleet-agent-0.2.0.signed.bin
    next to the factory image), or None after printing why the test fails."""
    update = os.path.join(os.path.dirname(image), "update", "fleet-agent-0.2.0.signed.bin")
    if not os.path.exists(update):
        print(f"FAIL: {update} missing: the firmware build signs it (agents/firmware)")
        return None
    return update, image_info(update)


def factory(env, broker, ca, qemu, bootloader, image, workdir):
    """The factory step: QEMU boots the image once without link provisioning (UART command
    mode), the IAK public key is read from the banner, the node id derived from it as
    fleetgwd does (hex of SHA-256(IAK)[:16]), a TLS certificate with CN = node id issued by
    ca, and the provisioning record written with the same manufacture seed (the IAK is
    derived from the seed, so it stays the same). Returns (node id, IAK public key hex,
    flash file)."""
    mkflash = os.path.join(os.environ["FLEETGW_SOURCE_DIR"], "agents", "firmware", "mkflash.py")
    seed = os.urandom(32).hex()
    flash = os.path.join(workdir, "fleetgw-flash.bin")
    env.run([sys.executable, mkflash, "--primary", image, "--seed", seed, flash], check=True)
    q, link = start_node(env, broker, qemu, bootloader, workdir, "factory")
    wait_node(lambda: re.search(IAK_BANNER, link.output()) and "agent: ready" in link.output(),
              "the IAK public key and 'agent: ready' (command mode) on the UART", (q, link))
    pub = re.search(IAK_BANNER, link.output()).group(1)
    expect("LINK:BEGIN from the node" not in link.output(),
           "without provisioning the agent stays in UART command mode")
    link.stop()
    q.stop()
    node_id = hashlib.sha256(bytes.fromhex(pub)).digest()[:16].hex()
    cert, key = ca.issue(node_id)
    env.run([sys.executable, mkflash, "--primary", image, "--seed", seed, "--node-id",
             node_id, "--server-name", "localhost", "--ca", ca.cert_path,
             "--cert", cert, "--key", key, flash], check=True)
    return node_id, pub, flash


def power_up_after_reset(env, broker, qemu, bootloader, workdir, q, link, tag, watch=()):
    """The agent resets itself (SYSRESETREQ) after staging an image; QEMU runs with
    -no-reboot, so the reset ends it: waits for that exit (status 0; watch = processes that
    must stay alive meanwhile), stops the old serial link and powers the board up again on
    the same flash file (new QEMU, new fleetgw-serial-link). Returns (qemu, link, the old
    link's output)."""
    wait_node(lambda: q.popen.poll() is not None, "the node to reset itself (QEMU exits)",
              tuple(watch))
    expect(q.popen.returncode == 0, "the node reset itself after staging the image")
    before = link.output()
    link.stop()
    q, link = start_node(env, broker, qemu, bootloader, workdir, tag, NO_REBOOT)
    return q, link, before
