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
import time

from fleetgw_harness import HarnessError, expect, program, wait_for
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


def factory(env, broker, ca, qemu, bootloader, image, workdir, check=expect):
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
    check("LINK:BEGIN from the node" not in link.output(),
           "without provisioning the agent stays in UART command mode")
    link.stop()
    q.stop()
    node_id = hashlib.sha256(bytes.fromhex(pub)).digest()[:16].hex()
    cert, key = ca.issue(node_id)
    env.run([sys.executable, mkflash, "--primary", image, "--seed", seed, "--node-id",
             node_id, "--server-name", "localhost", "--ca", ca.cert_path,
             "--cert", cert, "--key", key, flash], check=True)
    return node_id, pub, flash


def power_up_after_reset(env, broker, qemu, bootloader, workdir, q, link, tag, watch=(),
                         check=expect):
    """The agent resets itself (SYSRESETREQ) after staging an image; QEMU runs with
    -no-reboot, so the reset ends it: waits for that exit (status 0; watch = processes that
    must stay alive meanwhile), stops the old serial link and powers the board up again on
    the same flash file (new QEMU, new fleetgw-serial-link). Returns (qemu, link, the old
    link's output)."""
    wait_node(lambda: q.popen.poll() is not None, "the node to reset itself (QEMU exits)",
              tuple(watch))
    check(q.popen.returncode == 0, "the node reset itself after staging the image")
    before = link.output()
    link.stop()
    q, link = start_node(env, broker, qemu, bootloader, workdir, tag, NO_REBOOT)
    return q, link, before


class GatewayNode:
    """The emulated node behind a fleetgwd site (gateway_ota_common.OtaGateway), used by
    test_qemu_gateway_ota.py and by the demo's OTA part: the factory step, enrolment in the
    device class CLASS, the v1 boot in link mode (QEMU -no-reboot), and an update through a
    fleetgwd campaign, with the power cycle after the agent's own reset.

    fw is test_qemu_node.firmware()'s tuple; the class's signer is the build's signing key
    (the images carry no UUID TLVs: the class has none). check is the assertion each step
    makes (the harness's expect by default; the demo collects the sentences instead)."""

    CLASS = "qemu-an385"
    SLOT = 0x40000  # agents/firmware/CMakeLists.txt signs with -S 0x40000 (docs/firmware.md)

    def __init__(self, env, fw, workdir, check=expect):
        self.env = env
        self.expect = check  # (cond, sentence): raises when cond is false
        self.qemu, self.bootloader, self.image, self.info, self.sid = fw
        self.workdir = workdir
        os.makedirs(workdir, exist_ok=True)
        self.pub_pem = os.path.join(os.path.dirname(self.image), "signing-key.pub.pem")
        self.node_id = None
        self.q = self.link = None

    CHUNK = 1024  # the agent's MQTT receive buffer is 2 KiB (docs/firmware.md)

    @classmethod
    def device_class(cls, signer):
        """The class in the gateway's classes file; its chunk_size makes fleetgwd offer this
        node chunks it can receive, whatever the site's ota.chunk_size."""
        return {"name": cls.CLASS, "slot_size": cls.SLOT, "signers": [signer],
                "min_security_counter": 1, "chunk_size": cls.CHUNK}

    def enrol(self, site):
        """Factory step, then `fleetgwctl node add --pub-hex` in CLASS; returns the node id."""
        self.node_id, pub, _ = factory(self.env, site.edge, site.edge_ca, self.qemu,
                                       self.bootloader, self.image, self.workdir, self.expect)
        r = site.ctl("node", "add", "--pub-hex", pub, "--class", self.CLASS)
        self.expect(r.returncode == 0, f"node {self.node_id} enrolled in class {self.CLASS} "
               f"({r.stderr.strip()})")
        return self.node_id

    def boot(self, site, tag):
        """Powers the board up on its flash file, in link mode to the site's edge broker."""
        self.q, self.link = start_node(self.env, site.edge, self.qemu, self.bootloader,
                                       self.workdir, tag, NO_REBOOT)

    def stop(self):
        for p in (self.link, self.q):
            if p is not None:
                p.stop()
        self.q = self.link = None

    def wait_trusted(self, site, version):
        wait_node(lambda: site.node_json(self.node_id).get("verdict") == "trusted",
                  f"fleetgwd's verdict 'trusted' for {self.node_id}", (self.q, self.link, site.gwd))
        n = site.node_json(self.node_id)
        self.expect(n["fw_version"] == version, f"the node is trusted on {n['fw_version']} "
               f"({n['reason']})")

    def update(self, site, cid, update, version, step_s, deadline_s, final_states):
        """Runs campaign cid (created by the caller for this node) to a final state: the
        transfer over the UART until the node reports staged, the power cycle after its
        reset, the bootloader installing `version` in test mode, then re-attestation and
        confirmation. Returns {"status", "full", "wall", "staged_s", "staged_offset"}."""
        t0 = time.monotonic()

        def node_state():
            site.gwd.check_alive()
            if self.q.popen.poll() not in (None, 0):  # 0: the node's own reset after staging
                self.q.check_alive()
            st = site.status(cid, nodes=True)
            if st["state"] in final_states:
                raise HarnessError(f"campaign {cid} ended {st['state']} ({st.get('reason')}) "
                                   f"before the node staged the image: {st.get('nodes')}")
            return st["nodes"][0]

        wait_for(lambda: node_state()["state"] in ("staged", "testing"), deadline_s,
                 "the node to download, verify and stage the update", interval=1)
        staged_s = time.monotonic() - t0
        offset = site.status(cid, nodes=True)["nodes"][0]["offset"]
        self.expect(offset == os.path.getsize(update),
               f"{self.node_id} staged {version} after {staged_s:.0f} s (offset {offset} of "
               f"{os.path.getsize(update)} bytes)")
        self.q, self.link, _ = power_up_after_reset(self.env, site.edge, self.qemu,
                                                    self.bootloader, self.workdir, self.q,
                                                    self.link, "updated", watch=(site.gwd,),
                                                    check=self.expect)
        wait_node(lambda: f"boot: installing image {version} in test mode" in self.link.output(),
                  f"the bootloader installing {version} in test mode",
                  (self.q, self.link, site.gwd))
        self.expect(True, f"serial output: boot: installing image {version} in test mode")

        def final():
            site.gwd.check_alive()
            self.q.check_alive()
            st = site.status(cid)
            return st if st["state"] in final_states else None
        st = wait_for(final, deadline_s, f"campaign {cid} to reach a final state", interval=1)
        return {"status": st, "full": site.status(cid, nodes=True),
                "wall": time.monotonic() - t0, "staged_s": staged_s, "staged_offset": offset}
