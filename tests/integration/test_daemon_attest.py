"""fleetgwd attestation gate with real brokers and TPM: nodes answer one-time nonces with
PSA attestation tokens (RFC 9783 profile, COSE_Sign1 ES256, built by attest_common with cbor2 +
cryptography, the node's IAK generated at test time). Proves:
 - an enrolled node with a good token becomes trusted (verdict + reason persisted, visible in
   fleetgwctl, retained JSON <prefix>/nodes/<id>/state upstream) and only then is relayed;
 - telemetry before attestation is held, and relayed (before the later one) once the node is
   trusted (issue 15; counted held, released);
 - a forged token (signed by another key) -> quarantined, its telemetry not relayed;
 - an unknown key (node not enrolled) -> refused, counted, nothing relayed;
 - a replayed token (its nonce already answered) is not judged: the node stays trusted, the
   copy is counted evidence_unsolicited (issue 21);
 - an unknown measurement -> quarantined; after SIGHUP with the measurement added to the
   reference values, the node is challenged again and becomes trusted;
 - the OTA store as a reference source (attestation.image_dir + signer_keys): an image
   signed by fleetgw-tool with a key made here, dropped into the store, becomes a reference
   value at SIGHUP (image hash, SHA-256 of the signer's key, header version), so a node
   measuring it is trusted with that version; a tampered image and one signed by another key
   are logged as refused and trust nobody; a store that cannot be read makes the reload
   refused, and the running policy stays."""

import json
import os
import signal
import sys
import time

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from fleetgw_harness import Env, expect, program, require, wait_for

from attest_common import MEAS_GOOD, MEAS_NEW, SIGNER, Node, token, write_reference
from daemon_common import PREFIX, Observer, Site

def main():
    with Env("daemon-attest") as env:
        site = Site(env, nodes=())
        ref = env.path("reference.json")

        def write_ref(measurements):
            write_reference(ref, measurements)

        write_ref([(MEAS_GOOD, "1.2.0")])
        site.start_gwd(attestation={"required": True, "reference_file": ref, "nonce_ttl_s": 5,
                                    "interval_s": 3600})
        site.wait_gwd_connected()
        obs = Observer(site, f"{PREFIX}/nodes/#")

        fleetgwctl = site.ctl

        def verdict(node):
            return site.node_json(node.id)

        def enroll(node):
            r = fleetgwctl("node", "add", "--pub-hex", node.point.hex(), "--class", "sensor")
            assert r.returncode == 0, r.stderr

        def state_upstream(node):
            r = env.run([require("mosquitto_sub")] + site.cloud.client_args(site.operator) +
                        ["-t", f"{PREFIX}/nodes/{node.id}/state", "-C", "1", "-W", "10"])
            return json.loads(r.stdout) if r.stdout.strip() else None

        def upstream_payloads(node):
            return [p for t, p in obs.messages() if t == f"{PREFIX}/nodes/{node.id}/telemetry"]

        # A: good node. Telemetry before attestation is held and triggers a challenge.
        a = Node(site)
        enroll(a)
        early = a.telemetry()
        nonce = a.wait_challenge(1)
        expect(True, "telemetry from an enrolled, unattested node triggers a 32-byte challenge")
        good_tok = token(a.key, a.point, nonce, MEAS_GOOD)
        a.evidence(good_tok)
        wait_for(lambda: verdict(a)["verdict"] == "trusted", 30, "A trusted")
        v = verdict(a)
        expect(v["fw_version"] == "1.2.0" and "match" in v["reason"],
               f"A is trusted, reason and firmware persisted: {v['reason']} / {v['fw_version']}")
        st = state_upstream(a)
        expect(st is not None and st["verdict"] == "trusted",
               f"retained state upstream for A: {st}")
        late = a.telemetry()
        wait_for(lambda: late in upstream_payloads(a), 30, "A's telemetry upstream")
        ups = upstream_payloads(a)
        expect(early in ups and ups.index(early) < ups.index(late),
               "A's telemetry from before the verdict was held and relayed once A was trusted, "
               "before its later telemetry")

        # `fleetgwctl attest` challenges an enrolled node at once (no nonce_ttl spacing); A's
        # second trusted verdict counts in attest_trusted below.
        before = site.counters().get("attest_trusted", 0)
        r = fleetgwctl("attest", a.id)
        expect(r.returncode == 0 and "challenge sent" in r.stdout,
               f"fleetgwctl attest {a.id} sends a challenge ({r.stdout.strip()}{r.stderr.strip()})")
        nonce2 = a.wait_challenge(2)
        expect(nonce2 != nonce, "the operator's challenge carries a fresh nonce")
        a.evidence(token(a.key, a.point, nonce2, MEAS_GOOD))
        wait_for(lambda: site.counters().get("attest_trusted", 0) == before + 1, 30,
                 "A re-attested (one more trusted verdict)")
        expect(verdict(a)["verdict"] == "trusted", "A is trusted again after the re-attestation")
        r = fleetgwctl("attest", "0123456789abcdef0123456789abcdef")
        expect(r.returncode == 1 and "not enrolled" in r.stderr,
               f"fleetgwctl attest of an unknown node is refused ({r.stderr.strip()})")

        # B: forged token (signed with another key than the enrolled IAK).
        b = Node(site)
        enroll(b)
        b.status()
        nonce = b.wait_challenge(1)
        b.evidence(token(ec.generate_private_key(ec.SECP256R1()), b.point, nonce, MEAS_GOOD))
        wait_for(lambda: verdict(b)["verdict"] == "quarantined", 30, "B quarantined")
        expect("signature" in verdict(b)["reason"],
               f"a forged token is quarantined: {verdict(b)['reason']}")
        st = state_upstream(b)
        expect(st is not None and st["verdict"] == "quarantined" and "signature" in st["reason"],
               f"retained state upstream for B says quarantined with the reason: {st}")
        b_msg = b.telemetry()

        # C: unknown key (never enrolled).
        c = Node(site)
        c.status()
        c.evidence(token(c.key, c.point, b"\x00" * 32, MEAS_GOOD))
        c_msg = c.telemetry()
        wait_for(lambda: site.counters().get("attest_unknown_node", 0) >= 1, 30,
                 "the unknown-key evidence to be counted")
        expect(c.challenges() == [], "a node that is not enrolled is never challenged")

        # A again: a replay of its earlier token (nonce already answered) is not judged.
        unsolicited = site.counters().get("evidence_unsolicited", 0)
        vt_a = verdict(a)["verdict_time"]
        a.evidence(good_tok)
        wait_for(lambda: site.counters().get("evidence_unsolicited", 0) == unsolicited + 1, 30,
                 "the replayed token counted as evidence_unsolicited")
        v = verdict(a)
        expect(v["verdict"] == "trusted" and "match" in v["reason"] and v["verdict_time"] == vt_a,
               f"a replayed token changes nothing: A stays trusted, no verdict written ({v})")
        a_ok = a.telemetry()

        # D: unknown measurement, then the reference values are reloaded with it.
        d = Node(site)
        enroll(d)
        d.status()
        nonce = d.wait_challenge(1)
        d.evidence(token(d.key, d.point, nonce, MEAS_NEW))
        wait_for(lambda: verdict(d)["verdict"] == "quarantined", 30, "D quarantined")
        expect("unknown measurement" in verdict(d)["reason"],
               f"an unknown measurement is quarantined: {verdict(d)['reason']}")
        d_msg = d.telemetry()

        write_ref([(MEAS_GOOD, "1.2.0"), (MEAS_NEW, "1.3.0")])
        site.gwd.send_signal(signal.SIGHUP)
        wait_for(lambda: "2 reference value(s) loaded" in site.gwd.output(), 30, "the reload")
        time.sleep(5.5)  # challenges are spaced by nonce_ttl_s (5 s)
        d.status()
        nonce = d.wait_challenge(2)
        d.evidence(token(d.key, d.point, nonce, MEAS_NEW))
        wait_for(lambda: verdict(d)["verdict"] == "trusted", 30, "D trusted after the reload")
        expect(verdict(d)["fw_version"] == "1.3.0",
               "after SIGHUP with new reference values D is re-attested as trusted (1.3.0)")
        d_ok = d.telemetry()
        wait_for(lambda: d_ok in upstream_payloads(d), 30, "D's telemetry upstream")

        # E: the OTA store. Images signed by fleetgw-tool with a key made here; the store
        # and the signer key file are added to the configuration and loaded by SIGHUP.
        store = env.path("ota-store")
        os.mkdir(store)
        keys, pubs = {}, {}
        for name in ("vendor", "rogue"):
            k = ec.generate_private_key(ec.SECP256R1())
            pubs[name] = k.public_key()
            keys[name] = env.path(f"{name}.pem")
            with open(keys[name], "wb") as f:
                f.write(k.private_bytes(serialization.Encoding.PEM,
                                        serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()))
        signer_keys = env.path("signer-keys.pem")
        with open(signer_keys, "wb") as f:
            f.write(pubs["vendor"].public_bytes(serialization.Encoding.PEM,
                                                serialization.PublicFormat.SubjectPublicKeyInfo))
        payload = env.path("agent.bin")
        with open(payload, "wb") as f:
            f.write(os.urandom(4000))

        def sign(key, version, out):
            env.run([program("fleetgw-tool"), "image", "sign", "-k", keys[key], "-v", version,
                     "-H", "32", "--pad-header", "-S", "0x20000", payload, out], check=True)
            r = env.run([program("fleetgw-tool"), "image", "verify", "-k", keys[key], "--json",
                         out], check=True)
            return json.loads(r.stdout)

        good = sign("vendor", "2.1.0+5", os.path.join(store, "agent-2.1.0.bin"))
        rogue = sign("rogue", "2.1.0+5", os.path.join(store, "agent-rogue.bin"))
        tampered = os.path.join(store, "agent-tampered.bin")
        with open(os.path.join(store, "agent-2.1.0.bin"), "rb") as f:
            img = bytearray(f.read())
        img[100] ^= 1
        with open(tampered, "wb") as f:
            f.write(img)
        e = Node(site)
        enroll(e)
        e.status()
        nonce = e.wait_challenge(1)
        meas = bytes.fromhex(good["digest"])
        signer = bytes.fromhex(good["signer_keyhash"])
        e.evidence(token(e.key, e.point, nonce, meas, signer=signer))
        wait_for(lambda: verdict(e)["verdict"] == "quarantined", 30,
                 "E quarantined before the store is configured")
        site.config(attestation={"required": True, "reference_file": ref, "nonce_ttl_s": 5,
                                 "interval_s": 3600, "image_dir": store,
                                 "signer_keys": signer_keys})
        site.gwd.send_signal(signal.SIGHUP)
        wait_for(lambda: "3 reference value(s) loaded" in site.gwd.output(), 30,
                 "the reload with the OTA store (2 values from the file, 1 image)")
        out = site.gwd.output()
        expect("reference value from the image " + os.path.join(store, "agent-2.1.0.bin") +
               " (version 2.1.0+5)" in out and
               "agent-tampered.bin is not a reference value: image hash mismatch" in out and
               "agent-rogue.bin is not a reference value: signed by an unknown key" in out,
               "the store's images are logged: the vendor's accepted with its version, the "
               "tampered and the rogue-signed ones refused with the reason")
        time.sleep(5.5)  # challenges are spaced by nonce_ttl_s
        e.status()
        nonce = e.wait_challenge(2)
        e.evidence(token(e.key, e.point, nonce, meas, signer=signer))
        wait_for(lambda: verdict(e)["verdict"] == "trusted", 30,
                 "E trusted once its image is in the store")
        expect(verdict(e)["fw_version"] == "2.1.0+5",
               f"a node measuring a store image is trusted with the image's version "
               f"({verdict(e)['fw_version']})")
        # The rogue image's measurement (same payload, other signer) trusts nobody.
        f2 = Node(site)
        enroll(f2)
        f2.status()
        nonce = f2.wait_challenge(1)
        f2.evidence(token(f2.key, f2.point, nonce, bytes.fromhex(rogue["digest"]),
                          signer=bytes.fromhex(rogue["signer_keyhash"])))
        wait_for(lambda: verdict(f2)["verdict"] == "quarantined", 30,
                 "a node measuring the rogue-signed image quarantined")
        # A store that cannot be read: the reload is refused, the policy stays.
        site.config(attestation={"required": True, "reference_file": ref, "nonce_ttl_s": 5,
                                 "interval_s": 3600, "image_dir": store + "-missing",
                                 "signer_keys": signer_keys})
        refused = site.gwd.output().count("reload refused")
        site.gwd.send_signal(signal.SIGHUP)
        wait_for(lambda: site.gwd.output().count("reload refused") > refused, 30,
                 "the reload with an unreadable store refused")
        expect("ota-store-missing" in site.gwd.output().split("reload refused")[-1],
               "the refusal names the store")
        time.sleep(5.5)
        trusted_before = site.counters().get("attest_trusted", 0)
        r = fleetgwctl("attest", e.id)  # a trusted node is challenged on the operator's word
        assert r.returncode == 0, r.stderr
        nonce = e.wait_challenge(3)
        e.evidence(token(e.key, e.point, nonce, meas, signer=signer))
        wait_for(lambda: site.counters().get("attest_trusted", 0) == trusted_before + 1, 30,
                 "E's new verdict")
        expect(verdict(e)["verdict"] == "trusted" and verdict(e)["fw_version"] == "2.1.0+5",
               "after the refused reload the store's image still counts (running policy kept)")

        wait_for(lambda: a_ok in upstream_payloads(a), 30,
                 "A's telemetry after the replayed token upstream")
        time.sleep(1)
        cnt = site.counters()
        expect(b_msg not in upstream_payloads(b) and c_msg not in upstream_payloads(c) and
               d_msg not in upstream_payloads(d),
               "no telemetry of a quarantined or unknown node was relayed")
        expect(cnt.get("quarantined", 0) >= 2 and cnt.get("not_enrolled", 0) >= 1 and
               cnt.get("released", 0) >= 1 and cnt.get("attest_trusted", 0) == 5 and
               cnt.get("attest_quarantined", 0) == 4 and cnt.get("evidence_unsolicited", 0) == 1,
               f"drops and verdicts counted by reason: {cnt}")
        expect("NODE_ID" not in site.gwd.output() and f"node={b.id}" in site.gwd.output(),
               "verdicts are logged with the node id (stderr form outside the journal)")
        rc = site.gwd.stop()
        expect(rc == 0, "fleetgwd stops cleanly")
    return 0


if __name__ == "__main__":
    sys.exit(main())
