#!/usr/bin/python3
"""The emulated Cortex-M node takes an update over its UART (issue 12): QEMU mps2-an385 runs
the agent the build signed as 0.1.0 (counter 1); the OTA messages reach it through the real
mosquitto and fleetgw-serial-link (TLS end to end); the gateway's side is the test-only
fleetgw-ota-testserver with the build's second agent image, update/fleet-agent-0.2.0 (counter
2, signed by fleetgw-tool with the build's key).

Proves: the node attests 0.1.0 (token verified with its IAK, measurement = the image digest);
the offer is acked, the chunks go into the secondary slot of the semihosted flash, the agent
verifies the image and reports staged, resets itself (QEMU -no-reboot: the reset ends QEMU,
the test powers the board up again on the same flash file); the bootloader installs 0.2.0 in
test mode; the agent reconnects, reports testing and attests 0.2.0; on ota-confirm it reports
confirmed; a new QEMU on the same flash file starts 0.2.0 as confirmed and still attests it.
"""
import os
import re
import sys
import types

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from fleetgw_harness import Env, expect, run_main
from ota_common import Server, start_broker
from qemu_common import NO_REBOOT, power_up_after_reset, update_image
from test_qemu_node import NODE, firmware, start_node, wait_node


def main():
    fwi = firmware()
    if fwi is None:
        return 1
    qemu, bootloader, image, info, _ = fwi
    upd = update_image(image)
    if upd is None:
        return 1
    update, info2 = upd
    d1, d2 = info["sha256_tlv"], info2["sha256_tlv"]
    src = os.environ["FLEETGW_SOURCE_DIR"]

    with Env("qemu-node-ota") as env:
        ca = env.ca("edge-ca")
        broker, secret = start_broker(env, ca)
        node_cert, node_key = ca.issue(NODE)
        workdir = env.path("node")
        os.makedirs(workdir)
        env.run([sys.executable, os.path.join(src, "agents", "firmware", "mkflash.py"),
                 "--primary", image, "--random-seed", "--node-id", NODE,
                 "--server-name", "localhost", "--ca", ca.cert_path, "--cert", node_cert,
                 "--key", node_key, os.path.join(workdir, "fleetgw-flash.bin")], check=True)

        q, link = start_node(env, broker, qemu, bootloader, workdir, "1", NO_REBOOT)
        rx = r"agent: iak-public (04[0-9a-f]{128})"
        wait_node(lambda: re.search(rx, link.output()), "the node's IAK public key", (q, link))
        pub = re.search(rx, link.output()).group(1)
        pub_dir = env.path("iak-pub")
        os.makedirs(pub_dir)
        with open(os.path.join(pub_dir, f"{NODE}.pem"), "wb") as f:
            f.write(ec.EllipticCurvePublicKey.from_encoded_point(
                ec.SECP256R1(), bytes.fromhex(pub)).public_bytes(
                    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        site = types.SimpleNamespace(env=env, broker=broker, secret=secret, pub_dir=pub_dir)
        srv = Server(site, NODE, "otaserver")
        wait_node(lambda: any(t == f"fleet/{NODE}/ota/offer"
                              for _, _, t in broker.subscriptions(NODE)),
                  f"{NODE} subscribed to its OTA topics", (q, link))
        ok, meas, _ = srv.attest()
        expect(ok and meas == d1, "the node attests 0.1.0 (verified, measurement = v1 digest)")

        srv.cmd(f"offer q1 {update} 1024")
        a = srv.wait(r"^ack campaign=q1 accepted=(\d) reason=(\d+)", timeout=300)
        expect(a.groups() == ("1", "0"), "the node accepts the offer of 0.2.0")
        st = srv.wait(r"^status campaign=q1 state=(staged|failed) offset=(\d+) reason=(\d+)",
                      timeout=600, what="the transfer over the UART")
        expect(st.group(1) == "staged" and int(st.group(2)) == os.path.getsize(update),
               f"{st.group(2)} bytes over the UART into the secondary slot, verified: staged")
        # The agent resets itself (SYSRESETREQ); QEMU runs with -no-reboot, so the reset ends
        # it and the test powers the board up again (see the module docstring).
        q, link, _ = power_up_after_reset(env, broker, qemu, bootloader, workdir, q, link, "2")
        wait_node(lambda: "boot: installing image 0.2.0+0 in test mode" in link.output(),
                  "the bootloader installing 0.2.0", (q, link))
        srv.wait(r"^node-status state=1 version=0\.2\.0\+0", timeout=600,
                 what="the node's node-status from 0.2.0")
        st = srv.wait(r"^status campaign=q1 state=(\w+) offset=\d+ reason=(\d+)", timeout=600,
                      what="the node's status after the reset")
        expect(st.groups() == ("testing", "0"), "after the reset 0.2.0 reports testing")
        ok, meas, _ = srv.attest()
        expect(ok and meas == d2, "the node attests 0.2.0 in test mode (measurement = v2 digest)")
        srv.cmd("confirm q1")
        srv.wait(r"^status campaign=q1 state=confirmed", timeout=300, what="confirmed")
        expect(True, "ota-confirm: the node reports confirmed")

        link.stop()
        q.stop()
        q, link = start_node(env, broker, qemu, bootloader, workdir, "3", NO_REBOOT)
        wait_node(lambda: "boot: starting image 0.2.0+0 (security counter 2, confirmed)"
                  in link.output(), "0.2.0 starting as confirmed after a restart", (q, link))
        wait_node(lambda: sum(1 for _, _, t in broker.subscriptions(NODE)
                              if t == f"fleet/{NODE}/ota/offer") >= 3,
                  f"{NODE} subscribed again", (q, link))
        ok, meas, _ = srv.attest()
        expect(ok and meas == d2, "after a restart the node still attests 0.2.0")
        link.stop()
        q.stop()
    print("PASS: test_qemu_node_ota")
    return 0


if __name__ == "__main__":
    run_main(main)
