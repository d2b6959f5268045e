"""fleetgwd attests nodes of the three PSA token profiles (issue 20), with real brokers and
TPM. The nodes are played by this test: each has a P-256 IAK generated here, a certificate of
the site's edge CA, listens for its challenges on the real edge broker and answers with a
token that `fleetgw-tool token make --profile ...` signs with its key. Proves:
 - one node per profile (RFC 9783 "tag:psacertified.org,2023:psa#tfm", "http://arm.com/psa/2.0.0",
   "PSA_IOT_PROFILE_1") is trusted through fleetgwd with the default attestation.profiles
   (all three); the verdict records the profile: `fleetgwctl node show` (text and --json) and
   the retained <prefix>/nodes/<id>/state upstream;
 - after a SIGHUP with attestation.profiles without PSA 2.0.0, a new node of that profile is
   quarantined with REASON=profile_not_allowed, and so is the trusted PSA 2.0.0 node when it is
   challenged again (its telemetry is no longer relayed), while the PSA_IOT_PROFILE_1 node
   re-attests as trusted;
 - a node with a symmetric IAK (COSE_Mac0, HMAC-SHA256; PSA_IOT_PROFILE_1 here): `fleetgwctl
   node add --hmac-key FILE --tcti ...` seals the key with the site's TPM and the daemon keeps
   only the sealed blob (the key's bytes are nowhere in the registry files, and the enrollment
   copy can be deleted); fleetgwd unseals it to verify the node's tokens: trusted, and a token
   MAC'd with another key is quarantined (bad MAC); a key of the wrong size is refused at
   enrollment;
 - a reload with an unknown profile name is refused and the running policy kept."""

import glob
import hashlib
import json
import os
import signal

from cryptography.hazmat.primitives import serialization

from fleetgw_harness import Env, expect, program, require, run_main, wait_for

from attest_common import MEAS_GOOD, SIGNER, Node, write_reference
from daemon_common import PREFIX, Observer, Site

RFC9783 = "tag:psacertified.org,2023:psa#tfm"
PSA200 = "http://arm.com/psa/2.0.0"
IOT1 = "PSA_IOT_PROFILE_1"


class ProfileNode(Node):
    """A node whose tokens fleetgw-tool makes, in one profile."""

    def __init__(self, site, profile):
        super().__init__(site)
        self.profile = profile
        self.key_pem = site.env.path(f"iak-{self.id[:8]}.pem")
        with open(self.key_pem, "wb") as f:
            f.write(self.key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))

    def make_token(self, nonce, meas=MEAS_GOOD):
        out = self.site.env.path(f"tok-{self.id[:8]}.cbor")
        args = [program("fleetgw-tool"), "token", "make", "-k", self.key_pem, "--profile",
                self.profile, "--nonce", nonce.hex(),
                "--sw", f"NSPE:{meas.hex()}:{SIGNER.hex()}:1.2.0:SHA256", "-o", out]
        if self.profile == IOT1:
            args += ["--boot-seed", "5a" * 32]  # required, 32 bytes, in this profile
        r = self.site.env.run(args)
        assert r.returncode == 0, f"fleetgw-tool token make: {r.stdout} {r.stderr}"
        with open(out, "rb") as f:
            return f.read()

    def answer(self, count):
        self.evidence(self.make_token(self.wait_challenge(count)))


class SymmetricNode(Node):
    """A node whose IAK is a symmetric key: node id from SHA-256(SHA-256(key)), tokens in
    COSE_Mac0 made by fleetgw-tool with the key (the device's copy, kept by this test)."""

    def __init__(self, site, profile):  # noqa: super().__init__ makes a P-256 key: not wanted
        self.site = site
        self.nonce_ttl_s = 5
        self.profile = profile
        self.hkey = os.urandom(32)
        self.id = hashlib.sha256(hashlib.sha256(self.hkey).digest()).digest()[:16].hex()
        self.key_file = site.env.path(f"device-{self.id[:8]}.hmac")
        with open(self.key_file, "wb") as f:
            f.write(self.hkey)
        self.cert = site.edge_ca.issue(self.id)
        self.sub = site.env.spawn(f"chal-{self.id[:8]}", [require("mosquitto_sub")] +
                                  site.edge.client_args(self.cert) +
                                  ["-i", f"chal-{self.id}", "-q", "1", "-t",
                                   f"fleet/{self.id}/attest/challenge", "-F", "%x"])
        site.edge.wait_subscribed(self.id)
        self.seq = 0

    def make_token(self, nonce, key_file=None):
        out = self.site.env.path(f"tok-{self.id[:8]}.cbor")
        args = [program("fleetgw-tool"), "token", "make", "--hmac-key",
                key_file or self.key_file, "--profile", self.profile, "--nonce", nonce.hex(),
                "--sw", f"NSPE:{MEAS_GOOD.hex()}:{SIGNER.hex()}:1.2.0:SHA256", "-o", out]
        if self.profile == IOT1:
            args += ["--boot-seed", "5a" * 32]
        r = self.site.env.run(args)
        assert r.returncode == 0, f"fleetgw-tool token make: {r.stdout} {r.stderr}"
        with open(out, "rb") as f:
            return f.read()


def main():
    with Env("daemon-attest-profiles") as env:
        site = Site(env, nodes=())
        ref = write_reference(env.path("reference.json"), [(MEAS_GOOD, "1.2.0")])
        att = {"required": True, "reference_file": ref, "nonce_ttl_s": 5, "interval_s": 3600}
        site.start_gwd(attestation=att)
        site.wait_gwd_connected()
        obs = Observer(site, f"{PREFIX}/nodes/#")

        def enroll(node):
            r = site.ctl("node", "add", "--pub-hex", node.point.hex(), "--class", "tfm")
            assert r.returncode == 0, r.stderr

        def verdict(node):
            return site.node_json(node.id)

        def state_upstream(node):
            r = env.run([require("mosquitto_sub")] + site.cloud.client_args(site.operator) +
                        ["-t", f"{PREFIX}/nodes/{node.id}/state", "-C", "1", "-W", "10"])
            return json.loads(r.stdout) if r.stdout.strip() else None

        def upstream_payloads(node):
            return [p for t, p in obs.messages() if t == f"{PREFIX}/nodes/{node.id}/telemetry"]

        # One node per profile, all trusted under the default attestation.profiles.
        nodes = {}
        for prof in (RFC9783, PSA200, IOT1):
            n = ProfileNode(site, prof)
            enroll(n)
            n.status()
            n.answer(1)
            wait_for(lambda: verdict(n)["verdict"] != "unknown", 30, f"the {prof} node judged")
            v = verdict(n)
            expect(v["verdict"] == "trusted" and v["profile"] == prof and
                   v["fw_version"] == "1.2.0",
                   f"a {prof} node is trusted and its profile recorded "
                   f"({v['verdict']}, {v['reason']}, profile {v['profile']!r})")
            shown = site.ctl("node", "show", n.id).stdout
            expect(f"token profile {prof}" in shown,
                   f"fleetgwctl node show names the profile {prof}")
            st = state_upstream(n)
            expect(st is not None and st["verdict"] == "trusted" and st.get("profile") == prof,
                   f"the retained state upstream names the profile: {st}")
            msg = n.telemetry()
            wait_for(lambda: msg in upstream_payloads(n), 30, f"the {prof} node's telemetry")
            nodes[prof] = n
        listed = json.loads(site.ctl("--json", "nodes").stdout)["nodes"]
        expect(sorted(x["profile"] for x in listed) == sorted((RFC9783, PSA200, IOT1)),
               "fleetgwctl nodes lists each node's profile")

        # A node with a symmetric IAK, enrolled with its key sealed by the gateway's TPM.
        sym = SymmetricNode(site, IOT1)
        enroll_copy = env.path("enroll.hmac")
        with open(enroll_copy, "wb") as f:
            f.write(sym.hkey)
        os.chmod(enroll_copy, 0o600)  # a secret: fleetgwctl refuses a key others may read

        def ctl_tpm(*args):
            return env.run([program("fleetgwctl"), "--socket", site.control_socket, *args],
                           env=site.tpm.client_env())

        short = env.path("short.hmac")
        with open(short, "wb") as f:
            f.write(os.urandom(16))
        os.chmod(short, 0o640)
        r = ctl_tpm("node", "add", "--hmac-key", short, "--tcti", site.tpm.tcti)
        expect(r.returncode == 4 and short in r.stderr and "mode 0640" in r.stderr,
               f"an HMAC key its group may read is refused, naming the file and its mode "
               f"({r.returncode}: {r.stderr.strip()})")
        os.chmod(short, 0o600)
        r = ctl_tpm("node", "add", "--hmac-key", short, "--tcti", site.tpm.tcti)
        expect(r.returncode == 4 and "32..64 raw bytes" in r.stderr,
               f"a 16-byte HMAC key is refused at enrollment ({r.returncode}: "
               f"{r.stderr.strip()})")
        r = ctl_tpm("node", "add", "--hmac-key", enroll_copy, "--tcti", site.tpm.tcti,
                    "--class", "tfm-sym")
        expect(r.returncode == 0 and sym.id in r.stdout and
               "symmetric (HMAC-SHA256, COSE_Mac0), sealed by the gateway's TPM" in r.stdout,
               f"fleetgwctl node add --hmac-key enrolls the node, key sealed by the TPM "
               f"({r.returncode}: {r.stdout.strip()} {r.stderr.strip()})")
        os.unlink(enroll_copy)  # the gateway keeps no copy of its own
        stored = b"".join(open(p, "rb").read() for p in glob.glob(env.path("registry.db") + "*"))
        expect(len(stored) > 0 and sym.hkey not in stored and sym.hkey.hex().encode() not in stored,
               "the key is in no registry file (only its TPM-sealed blob)")
        sym.status()
        sym.evidence(sym.make_token(sym.wait_challenge(1)))
        wait_for(lambda: verdict(sym)["verdict"] != "unknown", 30, "the symmetric node judged")
        v = verdict(sym)
        expect(v["verdict"] == "trusted" and v["profile"] == IOT1 and v["iak"] == "hmac-sha256",
               f"the COSE_Mac0 node, its key unsealed by fleetgwd, is trusted ({v['verdict']}: "
               f"{v['reason']}; profile {v['profile']})")
        sym_msg = sym.telemetry()
        wait_for(lambda: sym_msg in upstream_payloads(sym), 30, "the symmetric node's telemetry")
        other = env.path("other.hmac")
        with open(other, "wb") as f:
            f.write(os.urandom(32))
        r = site.ctl("attest", sym.id)
        assert r.returncode == 0, r.stderr
        sym.evidence(sym.make_token(sym.wait_challenge(2), key_file=other))
        wait_for(lambda: verdict(sym)["verdict"] == "quarantined", 30,
                 "the symmetric node re-judged")
        expect("bad MAC" in verdict(sym)["reason"],
               f"a token MAC'd with another key is quarantined: {verdict(sym)['reason']}")

        # The site stops accepting PSA 2.0.0 (SIGHUP).
        att2 = dict(att, profiles=[RFC9783, IOT1])
        site.config(attestation=att2)
        loaded = site.gwd.output().count("reference value(s) loaded")
        site.gwd.send_signal(signal.SIGHUP)
        wait_for(lambda: site.gwd.output().count("reference value(s) loaded") > loaded, 30,
                 "the reload with attestation.profiles")

        x = ProfileNode(site, PSA200)
        enroll(x)
        x.status()
        x.answer(1)
        wait_for(lambda: verdict(x)["verdict"] != "unknown", 30, "the new PSA 2.0.0 node judged")
        v = verdict(x)
        expect(v["verdict"] == "quarantined" and
               v["reason"] == f"token profile '{PSA200}' is not in attestation.profiles" and
               v["profile"] == PSA200,
               f"a node whose profile the policy does not allow is quarantined: {v['reason']}")
        expect(f"node={x.id} reason=profile_not_allowed" in site.gwd.output(),
               "the verdict is logged with REASON=profile_not_allowed")
        st = state_upstream(x)
        expect(st is not None and st["verdict"] == "quarantined" and st["profile"] == PSA200 and
               "attestation.profiles" in st["reason"],
               f"the retained state upstream says quarantined with the reason: {st}")
        x_msg = x.telemetry()

        # The trusted PSA 2.0.0 node loses its verdict at its next attestation; the IoT 1 node
        # keeps it.
        old = nodes[PSA200]
        r = site.ctl("attest", old.id)
        assert r.returncode == 0, r.stderr
        old.answer(2)
        wait_for(lambda: verdict(old)["verdict"] == "quarantined", 30,
                 "the PSA 2.0.0 node re-judged")
        expect("attestation.profiles" in verdict(old)["reason"],
               f"the trusted PSA 2.0.0 node is quarantined when it attests again: "
               f"{verdict(old)['reason']}")
        old_msg = old.telemetry()
        iot = nodes[IOT1]
        before = site.counters().get("attest_trusted", 0)
        r = site.ctl("attest", iot.id)
        assert r.returncode == 0, r.stderr
        iot.answer(2)
        wait_for(lambda: site.counters().get("attest_trusted", 0) == before + 1, 30,
                 "the IoT 1 node re-attested")
        expect(verdict(iot)["verdict"] == "trusted" and verdict(iot)["profile"] == IOT1,
               "the PSA_IOT_PROFILE_1 node, still allowed, stays trusted")
        iot_msg = iot.telemetry()
        wait_for(lambda: iot_msg in upstream_payloads(iot), 30, "the IoT 1 node's telemetry")
        expect(x_msg not in upstream_payloads(x) and old_msg not in upstream_payloads(old),
               "no telemetry of a node refused for its profile was relayed")

        # An unknown profile name: the reload is refused, the running policy stays.
        site.config(attestation=dict(att, profiles=[RFC9783, "PSA_IOT_PROFILE_2"]))
        refused = site.gwd.output().count("reload refused")
        site.gwd.send_signal(signal.SIGHUP)
        wait_for(lambda: site.gwd.output().count("reload refused") > refused, 30,
                 "the reload with an unknown profile refused")
        expect("'PSA_IOT_PROFILE_2' is not a PSA token profile" in
               site.gwd.output().split("reload refused")[-1],
               "the refusal names the unknown profile")
        y = ProfileNode(site, PSA200)
        enroll(y)
        y.status()
        y.answer(1)
        wait_for(lambda: verdict(y)["verdict"] != "unknown", 30, "another PSA 2.0.0 node judged")
        expect(verdict(y)["verdict"] == "quarantined" and
               "attestation.profiles" in verdict(y)["reason"],
               "after the refused reload the running profile list still applies")

        cnt = site.counters()
        expect(cnt.get("attest_trusted", 0) == 5 and cnt.get("attest_quarantined", 0) == 4,
               f"verdicts counted: {cnt}")
        rc = site.gwd.stop()
        expect(rc == 0, "fleetgwd stops cleanly")
    return 0


if __name__ == "__main__":
    run_main(main)
