#!/usr/bin/python3
"""The emulated node through fleetgwd's attestation gate (the gateway as the verifier):

  factory: QEMU boots the signed image once without link provisioning (UART command mode);
           the IAK public key is read from the UART banner (through fleetgw-serial-link's
           log), the node id derived from it as fleetgwd does (hex of SHA-256(IAK)[:16]),
           a TLS certificate with CN = node id issued by the edge CA, and the provisioning
           record written with the same manufacture seed (mkflash.py: the IAK is derived
           from the seed, so the key stays the same);
  gateway: fleetgwd (TPM, edge + cloud mosquitto, attestation required, reference values =
           the digest and signer id of the image the build produced), the node enrolled
           with `fleetgwctl node add --pub-hex`;
  node:    QEMU in link mode, fleetgw-serial-link to the edge broker's TLS listener. Its
           node-status (agents/core attest_first) makes fleetgwd challenge it; the node
           answers on attest/evidence and fleetgwd's verdict becomes "trusted" (measurement
           match); its telemetry, held until the evidence was sent, is relayed to the cloud
           broker and none of it was dropped as "not attested".
"""
import json
import os
import re
import subprocess

from fleetgw_harness import Env, expect, program, run_main

from daemon_common import PREFIX, Observer, Site
from qemu_common import IAK_BANNER, factory
from test_qemu_node import firmware, start_node, wait_node


def main():
    fwi = firmware()
    if fwi is None:
        return 1
    qemu, bootloader, image, info, signer_id = fwi
    ctl = program("fleetgwctl")
    with Env("qemu-node-gate") as env:
        site = Site(env, nodes=())
        workdir = env.path("node")
        os.makedirs(workdir)
        # factory: first boot in command mode, the IAK public key from the banner, then the
        # provisioning record for the node id derived from it
        node_id, pub, _ = factory(env, site.edge, site.edge_ca, qemu, bootloader, image, workdir)

        # gateway with the build's image as the only reference value
        ref = env.path("reference.json")
        with open(ref, "w") as f:
            json.dump({"lifecycles": ["secured"], "reference_values": [
                {"measurement": info["sha256_tlv"], "signer_id": signer_id,
                 "version": info["version"].split("+")[0]}]}, f)
        site.start_gwd(attestation={"required": True, "reference_file": ref,
                                    "nonce_ttl_s": 60, "interval_s": 3600})
        site.wait_gwd_connected()
        obs = Observer(site, f"{PREFIX}/nodes/#")
        r = subprocess.run([ctl, "--socket", site.control_socket, "node", "add", "--pub-hex",
                            pub, "--class", "qemu"], capture_output=True, text=True, timeout=60)
        expect(r.returncode == 0, f"node {node_id} enrolled ({r.stderr.strip()})")

        def verdict():
            r = subprocess.run([ctl, "--socket", site.control_socket, "--json", "node", "show",
                                node_id], capture_output=True, text=True, timeout=60)
            return json.loads(r.stdout)["node"] if r.returncode == 0 else {}

        # the node in link mode: connects, sends telemetry, gets challenged, answers
        q, link = start_node(env, site.edge, qemu, bootloader, workdir, "node")
        wait_node(lambda: re.search(IAK_BANNER, link.output()),
                  "the banner of the provisioned node", (q, link))
        expect(re.search(IAK_BANNER, link.output()).group(1) == pub,
               "same IAK after provisioning (derived from the same manufacture seed)")
        wait_node(lambda: "LINK:BEGIN from the node" in link.output(), "LINK:BEGIN", (q, link))
        wait_node(lambda: verdict().get("verdict") == "trusted",
                  f"fleetgwd's verdict 'trusted' for {node_id}", (q, link, site.gwd))
        v = verdict()
        expect("match" in v.get("reason", ""),
               f"fleetgwd trusts the emulated node: {v.get('reason')} (fw {v.get('fw_version')})")
        wait_node(lambda: any(t == f"{PREFIX}/nodes/{node_id}/telemetry"
                              for t, _ in obs.messages()),
                  "the attested node's telemetry relayed to the cloud broker", (q, link))
        expect(True, "the node's telemetry reaches the cloud broker after the verdict")
        cnt = site.counters()
        expect(cnt.get("not_attested", 0) == 0,
               f"no telemetry of the node arrived before its verdict (counters {cnt})")
        link.stop()
        q.stop()
    print("PASS: test_qemu_node_gate")
    return 0


if __name__ == "__main__":
    run_main(main)
