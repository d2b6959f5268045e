"""Attesting test nodes for the fleetgwd integration tests (test_daemon_attest.py,
test_daemon_reattest.py, test_daemon_evidence.py): each node has a P-256 IAK generated at test time, a certificate
from the site's edge CA with its node id as CN, a mosquitto_sub listening for its
attest-challenges, and answers with PSA attestation tokens (RFC 9783 profile, COSE_Sign1
ES256) built here with cbor2 + cryptography and signed with its own key."""

import hashlib
import json

import cbor2
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from fleetgw_harness import require, wait_for

PROFILE = "tag:psacertified.org,2023:psa#tfm"
SIGNER = bytes(range(0x10, 0x30))
MEAS_GOOD = hashlib.sha256(b"firmware 1.2.0").digest()
MEAS_NEW = hashlib.sha256(b"firmware 1.3.0").digest()


def write_reference(path, measurements=((MEAS_GOOD, "1.2.0"),)):
    """fleetgwd's reference file: lifecycle `secured`, one entry per (measurement, version)
    with this module's signer id; returns path."""
    with open(path, "w") as f:
        json.dump({"lifecycles": ["secured"], "reference_values": [
            {"measurement": m.hex(), "signer_id": SIGNER.hex(), "version": v}
            for m, v in measurements]}, f)
    return path


def point(key):
    return key.public_key().public_bytes(serialization.Encoding.X962,
                                         serialization.PublicFormat.UncompressedPoint)


def token(signing_key, iak_point, nonce, meas, lifecycle=0x3000, signer=SIGNER):
    claims = {
        10: nonce,
        256: b"\x01" + hashlib.sha256(iak_point).digest(),
        265: PROFILE,
        2394: 1,
        2395: lifecycle,
        2396: b"\x55" * 32,
        2399: [{1: "NSPE", 2: meas, 4: "1.2.0", 5: signer}],
    }
    payload = cbor2.dumps(claims)
    prot = b"\xa1\x01\x26"
    tbs = cbor2.dumps(["Signature1", prot, b"", payload])
    r, s = decode_dss_signature(signing_key.sign(tbs, ec.ECDSA(hashes.SHA256())))
    sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return cbor2.dumps(cbor2.CBORTag(18, [prot, {}, payload, sig]))


class Node:
    def __init__(self, site, key=None, nonce_ttl_s=5):
        self.site = site
        self.nonce_ttl_s = nonce_ttl_s  # the ttl every challenge must carry
        self.key = key or ec.generate_private_key(ec.SECP256R1())
        self.point = point(self.key)
        self.id = hashlib.sha256(self.point).digest()[:16].hex()
        self.cert = site.edge_ca.issue(self.id)
        self.sub = site.env.spawn(f"chal-{self.id[:8]}", [require("mosquitto_sub")] +
                                  site.edge.client_args(self.cert) +
                                  ["-i", f"chal-{self.id}", "-q", "1", "-t",
                                   f"fleet/{self.id}/attest/challenge", "-F", "%x"])
        site.edge.wait_subscribed(self.id)
        self.seq = 0

    def pub(self, suffix, data):
        path = self.site.env.path(f"{self.id}.bin")
        with open(path, "wb") as f:
            f.write(data)
        self.site.env.run([require("mosquitto_pub")] + self.site.edge.client_args(self.cert) +
                          ["-q", "1", "-t", f"fleet/{self.id}/{suffix}", "-f", path], check=True)

    def challenges(self):
        out = []
        for line in self.sub.output().split():
            msg = cbor2.loads(bytes.fromhex(line))
            assert msg[0] == 1 and len(msg[1]) == 32 and msg[2] == self.nonce_ttl_s, msg
            out.append(msg[1])
        return out

    def wait_challenge(self, count):
        wait_for(lambda: len(self.challenges()) >= count, 30, f"challenge #{count} for {self.id}")
        return self.challenges()[count - 1]

    def status(self):
        self.pub("status", cbor2.dumps([11, 1, 10, [1, 2, 0, 0]]))

    def evidence(self, tok):
        self.pub("attest/evidence", cbor2.dumps([2, tok]))

    def telemetry(self):
        self.seq += 1
        self.pub("up/telemetry", f"{self.id}:{self.seq:06d}".encode())
        return f"{self.id}:{self.seq:06d}"
