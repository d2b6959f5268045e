#!/usr/bin/python3
"""The emulated node end to end: QEMU mps2-an385 boots the signed agent image the build
produced, the agent (agents/core: MQTT 3.1.1 over TLS 1.2, Mbed TLS on the Cortex-M3) reaches
a REAL mosquitto through the gateway's serial link (fleetgw-serial-link between QEMU's UART
socket and the broker's TLS listener; the TLS session is end to end) and answers an
attestation challenge with a PSA token that the verifier accepts.

Proves:
  1. The node's UART boot text is logged by fleetgw-serial-link, then LINK:BEGIN starts a
     broker session; mosquitto (require_certificate, use_identity_as_username, ACL
     fleet/%u/#) logs the node connecting with its certificate CN as user name and
     subscribing to fleet/<id>/attest/challenge.
  2. A challenge published by a test-side client (superuser certificate) on
     fleet/<id>/attest/challenge is answered on fleet/<id>/attest/evidence; the token
     verifies with `fleetgw-tool token verify` against the node's IAK public key (read from
     its UART banner: the factory step) and the nonce, and fails for another nonce.
  3. The token's software component measurement equals the digest of the signed image
     (`fleetgw-tool image info --json`), and its signer id the hash of the signing key.
  4. A node restart (QEMU killed, a new QEMU on the same flash) begins a new TLS session
     through a new fleetgw-serial-link and answers a second challenge.
Manufacture: the test issues the node's TLS certificate (CN = node id) from a CA made at
test time and writes CA, certificate and key into the provisioning record of the flash file
(agents/firmware/mkflash.py).
"""
import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time

import cbor2
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from fleetgw_harness import (Env, HarnessError, expect, free_port, program, require, wait_for, run_main)

NODE = "node-qemu-1"
WAIT = 180  # bounded wait for the node (boot + TLS handshake on an emulated Cortex-M3)


def wait_node(pred, what, procs):
    """Waits (at most WAIT s) for pred(); fails at once if one of procs exited."""
    deadline = time.monotonic() + WAIT
    while True:
        for p in procs:
            p.check_alive()
        if pred():
            return
        if time.monotonic() > deadline:
            raise HarnessError(f"timed out after {WAIT}s waiting for {what}")
        time.sleep(0.1)


def start_node(env, broker, qemu, bootloader, workdir, tag, extra=()):
    """QEMU (UART0 on a socket it waits on) + fleetgw-serial-link between it and broker."""
    qport = free_port()
    q = env.spawn(f"qemu-{tag}", [
        qemu, "-M", "mps2-an385", "-display", "none", "-monitor", "none",
        "-chardev", f"socket,id=u0,host=127.0.0.1,port={qport},server=on,wait=on",
        "-serial", "chardev:u0", "-semihosting-config", "enable=on,target=native",
        "-kernel", bootloader] + list(extra), cwd=workdir)
    link = env.spawn(f"serial-link-{tag}", [
        program("fleetgw-serial-link"), "--connect", f"127.0.0.1:{qport}",
        "--broker", f"127.0.0.1:{broker.port}"])
    return q, link


def connects(broker):
    return sum(1 for line in broker.log().splitlines()
               if f"u'{NODE}'" in line and " as " in line)


def challenge(env, broker, su, tag):
    """Publishes a fresh challenge, returns (nonce, token bytes) of the evidence answer."""
    nonce = os.urandom(32)
    msg = env.path(f"challenge-{tag}.cbor")
    with open(msg, "wb") as f:
        f.write(cbor2.dumps([1, nonce, 60]))
    out = env.path(f"evidence-{tag}.hex")
    sub = env.spawn(f"sub-{tag}", [require("mosquitto_sub")] + broker.client_args(su) + [
        "-i", f"monitor-{tag}", "-t", f"fleet/{NODE}/attest/evidence", "-C", "1", "-F", "%x",
        "-W", str(WAIT)])
    wait_for(lambda: any(c == f"monitor-{tag}" for c, _, _ in broker.subscriptions("monitor")),
             30, f"test subscriber {tag}")
    env.run([require("mosquitto_pub")] + broker.client_args(su) + [
        "-i", f"pub-{tag}", "-t", f"fleet/{NODE}/attest/challenge", "-q", "1", "-f", msg],
        check=True)
    sub.wait_output(WAIT + 10)
    expect(not sub.alive(), f"evidence for challenge {tag} arrived (mosquitto_sub -C 1 ended)")
    text = sub.output().strip()
    m = re.search(r"^([0-9a-f]+)$", text, re.M)
    expect(m is not None, f"evidence {tag} received on fleet/{NODE}/attest/evidence")
    with open(out, "w") as f:
        f.write(m.group(1))
    ev = cbor2.loads(bytes.fromhex(m.group(1)))
    expect(isinstance(ev, list) and len(ev) == 2 and ev[0] == 2 and isinstance(ev[1], bytes),
           f"evidence {tag} is an attest-evidence message [2, token] ({len(ev[1])}-byte token)")
    return nonce, ev[1]


def verify(env, tool, pem, nonce, token, tag):
    path = env.path(f"token-{tag}.cbor")
    with open(path, "wb") as f:
        f.write(token)
    r = subprocess.run([tool, "token", "verify", "-k", pem, "--nonce", nonce.hex(), "--json",
                        path], capture_output=True, text=True, timeout=60)
    expect(r.returncode == 0, f"token {tag}: fleetgw-tool token verify exits 0 "
                              f"({r.returncode}: {r.stderr.strip()})")
    bad = subprocess.run([tool, "token", "verify", "-k", pem, "--nonce", os.urandom(32).hex(),
                          path], capture_output=True, text=True, timeout=60)
    expect(bad.returncode == 1, f"token {tag}: refused for another nonce (exit {bad.returncode})")
    return json.loads(r.stdout).get("claims", {})


def firmware():
    """(qemu, bootloader.elf, signed image, its `image info`, signer id hex), or None after
    printing why the test fails."""
    build = os.environ.get("FLEETGW_BUILD_DIR")
    if not build or not os.environ.get("FLEETGW_SOURCE_DIR"):
        print("FAIL: FLEETGW_BUILD_DIR/FLEETGW_SOURCE_DIR not set (run via ctest)")
        return None
    fw = os.path.join(build, "firmware")
    qemu = shutil.which("qemu-system-arm")
    if qemu is None:
        print("FAIL: qemu-system-arm not found: install the Debian package qemu-system-arm")
        return None
    bootloader = os.path.join(fw, "bootloader.elf")
    signed = sorted(glob.glob(os.path.join(fw, "fleet-agent-*.signed.bin")))
    if not os.path.exists(bootloader) or not signed:
        print(f"FAIL: {bootloader} or {fw}/fleet-agent-*.signed.bin missing: the firmware was "
              "not built (configure with -DFLEETGW_FIRMWARE=ON and build)")
        return None
    image = signed[-1]
    info = json.loads(subprocess.run([program("fleetgw-tool"), "image", "info", "--json", image],
                                     check=True, capture_output=True, text=True).stdout)
    with open(os.path.join(fw, "signing-key.pub.der"), "rb") as f:
        signer_id = hashlib.sha256(f.read()).hexdigest()
    return qemu, bootloader, image, info, signer_id


def main():
    fwi = firmware()
    if fwi is None:
        return 1
    qemu, bootloader, image, info, signer_id = fwi
    src = os.environ["FLEETGW_SOURCE_DIR"]
    tool = program("fleetgw-tool")

    with Env("qemu-node") as env:
        ca = env.ca("edge-ca")
        broker = env.start_mosquitto(ca, superusers=("monitor",), unix_socket=False,
                                     persistence=False)
        su = ca.issue("monitor")
        node_cert, node_key = ca.issue(NODE)
        # Manufacture: image in the primary slot, a per-device seed, link provisioning.
        workdir = env.path("node")
        os.makedirs(workdir)
        flash = os.path.join(workdir, "fleetgw-flash.bin")
        env.run([sys.executable, os.path.join(src, "agents", "firmware", "mkflash.py"),
                 "--primary", image, "--random-seed", "--node-id", NODE,
                 "--server-name", "localhost", "--ca", ca.cert_path, "--cert", node_cert,
                 "--key", node_key, flash], check=True)

        # 1. boot, serial link, TLS session to the broker
        q, link = start_node(env, broker, qemu, bootloader, workdir, "1")
        wait_node(lambda: re.search(r"agent: iak-public (04[0-9a-f]{128})", link.output()),
                  "the node's IAK public key in the serial-link log (UART boot text)", (q, link))
        pub_hex = re.search(r"agent: iak-public (04[0-9a-f]{128})", link.output()).group(1)
        pem = env.path("iak.pub.pem")
        with open(pem, "wb") as f:
            f.write(ec.EllipticCurvePublicKey.from_encoded_point(
                ec.SECP256R1(), bytes.fromhex(pub_hex)).public_bytes(
                    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        expect(re.search(r"boot: starting image", link.output()) is not None,
               "the bootloader's text reached the serial-link log")
        wait_node(lambda: "LINK:BEGIN from the node" in link.output(), "LINK:BEGIN from the node",
                  (q, link))
        wait_node(lambda: connects(broker) >= 1,
                  f"mosquitto logs {NODE} connecting with its certificate", (q, link))
        wait_node(lambda: any(t == f"fleet/{NODE}/attest/challenge"
                              for _, _, t in broker.subscriptions(NODE)),
                  f"{NODE} subscribed to its challenge topic", (q, link))
        expect(True, f"mosquitto: {NODE} connected (user = certificate CN) and subscribed")

        # 2./3. challenge -> evidence -> verified token, measurement = image digest
        nonce, token = challenge(env, broker, su, "1")
        claims = verify(env, tool, pem, nonce, token, "1")
        sw = (claims.get("software_components") or [{}])[0]
        expect(sw.get("measurement_value") == info["sha256_tlv"],
               f"token measurement {sw.get('measurement_value')} == image digest "
               f"{info['sha256_tlv']} ({os.path.basename(image)})")
        expect(sw.get("signer_id") == signer_id, "token signer id == SHA-256 of the signing key")

        # 4. node restart: a new QEMU and link on the same flash, a new TLS session
        link.stop()
        q.stop()
        q, link = start_node(env, broker, qemu, bootloader, workdir, "2")
        wait_node(lambda: connects(broker) >= 2, f"{NODE} connects again after a restart",
                  (q, link))
        out = link.output()
        expect(pub_hex in out, "same IAK after the restart (protected storage kept)")
        wait_node(lambda: sum(1 for _, _, t in broker.subscriptions(NODE)
                              if t == f"fleet/{NODE}/attest/challenge") >= 2,
                  f"{NODE} subscribed again", (q, link))
        nonce, token = challenge(env, broker, su, "2")
        verify(env, tool, pem, nonce, token, "2")
        link.stop()
        q.stop()
    print("PASS: test_qemu_node")
    return 0


if __name__ == "__main__":
    run_main(main)
