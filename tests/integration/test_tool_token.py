#!/usr/bin/python3
"""fleetgw-tool token: make / verify / decode, checked against an independent verifier
(python3-cryptography + python3-cbor2) and the RFC 9783 vector.

Exit 0 pass, 1 fail, 77 skip (only the vector part: ../shared/vectors absent)."""
import json
import os
import secrets
import subprocess
import sys
import tempfile

import cbor2
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

FAILS = []


def check(cond, what):
    if cond:
        print(f"ok   {what}")
    else:
        print(f"FAIL {what}")
        FAILS.append(what)


def tool_path():
    build = os.environ.get("FLEETGW_BUILD_DIR")
    if not build:
        here = os.path.dirname(os.path.abspath(__file__))
        build = os.path.join(here, "..", "..", "build")
    path = os.path.join(build, "bin", "fleetgw-tool")
    if not os.access(path, os.X_OK):
        print(f"FAIL: fleetgw-tool not found at {path} (build it first)")
        sys.exit(1)
    return path


TOOL = tool_path()


def run(*args):
    p = subprocess.run([TOOL, "token", *args], capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def independent_verify(token, pub):
    """Verifies a COSE_Sign1 ES256 token with python-cryptography; returns the claims."""
    tag = cbor2.loads(token)
    assert isinstance(tag, cbor2.CBORTag) and tag.tag == 18, "not tag 18"
    prot, unprot, payload, sig = tag.value
    assert cbor2.loads(prot) == {1: -7}, "alg"
    sig_structure = cbor2.dumps(["Signature1", prot, b"", payload])
    der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
    pub.verify(der, sig_structure, ec.ECDSA(hashes.SHA256()))
    return cbor2.loads(payload)


def flip(data, index):
    b = bytearray(data)
    b[index] ^= 0x01
    return bytes(b)


def self_contained(tmp):
    key = ec.generate_private_key(ec.SECP256R1())
    priv_pem = os.path.join(tmp, "iak.pem")
    pub_pem = os.path.join(tmp, "iak-pub.pem")
    with open(priv_pem, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    with open(pub_pem, "wb") as f:
        f.write(key.public_key().public_bytes(serialization.Encoding.PEM,
                                              serialization.PublicFormat.SubjectPublicKeyInfo))
    nonce = secrets.token_bytes(32)
    meas, signer = secrets.token_bytes(32), secrets.token_bytes(32)
    out = os.path.join(tmp, "t.cbor")
    rc, so, se = run("make", "-k", priv_pem, "--nonce", nonce.hex(),
                     "--sw", f"BL2:{meas.hex()}:{signer.hex()}:1.2.3",
                     "--sw", f"SPE:{signer.hex()}:{meas.hex()}",
                     "--boot-seed", "11" * 16, "--client-id", "-3", "-o", out)
    check(rc == 0, f"make exits 0 ({rc}: {so.strip()} {se.strip()})")
    with open(out, "rb") as f:
        token = f.read()

    # an independent verifier accepts what we made, and sees the claims we asked for
    try:
        claims = independent_verify(token, key.public_key())
        ok = True
    except Exception as e:  # noqa: BLE001 - report any failure
        print(f"  independent verify: {e!r}")
        claims, ok = {}, False
    check(ok, "python-cryptography verifies the token made by fleetgw-tool")
    pub_point = key.public_key().public_bytes(serialization.Encoding.X962,
                                              serialization.PublicFormat.UncompressedPoint)
    from cryptography.hazmat.primitives.hashes import Hash, SHA256
    h = Hash(SHA256())
    h.update(pub_point)
    check(claims.get(10) == nonce, "nonce claim")
    check(claims.get(256) == b"\x01" + h.finalize(), "instance id = 0x01 || SHA-256(pub)")
    check(claims.get(265) == "tag:psacertified.org,2023:psa#tfm", "profile claim")
    check(claims.get(2394) == -3 and claims.get(2395) == 0x3000, "client id, lifecycle")
    check(claims.get(268) == b"\x11" * 16, "boot seed")
    sw = claims.get(2399, [])
    check(len(sw) == 2 and sw[0] == {1: "BL2", 2: meas, 4: "1.2.3", 5: signer}
          and sw[1] == {1: "SPE", 2: signer, 5: meas}, "software components")
    check(list(claims.keys()) == sorted(claims.keys()), "claims written in ascending key order")

    rc, so, _ = run("verify", "-k", pub_pem, "--nonce", nonce.hex(), out)
    check(rc == 0 and "token valid" in so, "verify with the public key: exit 0")
    rc, so, _ = run("verify", "-k", priv_pem, out)
    check(rc == 0, "verify with the private key file (public half used): exit 0")
    rc, so, _ = run("verify", "-k", pub_pem, "--json", "--nonce", nonce.hex(), out)
    try:
        j = json.loads(so)
    except ValueError:
        j = {}
    check(rc == 0 and j.get("valid") is True and j.get("signature_checked") is True,
          "verify --json parses, valid")
    jc = j.get("claims", {})
    check(jc.get("nonce") == nonce.hex() and jc.get("client_id") == -3
          and jc.get("security_lifecycle_name") == "secured"
          and len(jc.get("software_components", [])) == 2
          and jc["software_components"][0].get("version") == "1.2.3", "JSON claims")

    wrong = bytearray(nonce)
    wrong[0] ^= 0xff
    rc, so, _ = run("verify", "-k", pub_pem, "--nonce", wrong.hex(), out)
    check(rc == 1 and "nonce mismatch" in so, "wrong nonce: exit 1, reason printed")

    # flipped bytes: the last one (signature) and one in the payload
    for idx, name in ((len(token) - 1, "signature"), (40, "payload")):
        bad = os.path.join(tmp, f"flip-{name}.cbor")
        with open(bad, "wb") as f:
            f.write(flip(token, idx))
        rc, so, _ = run("verify", "-k", pub_pem, bad)
        check(rc == 1 and "bad signature" in so, f"flipped {name} byte: exit 1 'bad signature'")
        rc, so, _ = run("verify", "-k", pub_pem, "--json", bad)
        j = json.loads(so) if so.strip().startswith("{") else {}
        check(rc == 1 and j.get("valid") is False and j.get("reason") == "bad signature",
              f"flipped {name} byte: --json reason")

    rc, so, _ = run("decode", "--json", out)
    j = json.loads(so) if rc == 0 else {}
    check(rc == 0 and j.get("signature_checked") is False and j["claims"]["nonce"] == nonce.hex(),
          "decode --json without a key")
    rc, so, _ = run("decode", out)
    check(rc == 0 and "signature NOT checked" in so, "decode says the signature was not checked")

    # usage and I/O errors: exit 2
    rc, _, se = run("verify", "-k", pub_pem, os.path.join(tmp, "missing.cbor"))
    check(rc == 2 and "cannot read" in se, "missing token file: exit 2")
    rc, _, _ = run("verify", "-k", os.path.join(tmp, "missing.pem"), out)
    check(rc == 2, "missing key file: exit 2")
    rc, _, _ = run("verify", out)
    check(rc == 2, "verify without -k: exit 2")
    rc, _, _ = run("verify", "-k", pub_pem, "--nonce", "xyz", out)
    check(rc == 2, "bad hex nonce: exit 2")
    rc, _, _ = run("frobnicate")
    check(rc == 2, "unknown command: exit 2")
    rc, so, _ = run("make", "-k", priv_pem, "--nonce", "00" * 16, "--sw",
                    f"x:{meas.hex()}:{signer.hex()}", "-o", os.path.join(tmp, "n.cbor"))
    check(rc == 1 and "bad nonce size" in so, "make refuses a 16-byte nonce: exit 1")
    # --no-check writes an invalid token; verify names the reason
    bad = os.path.join(tmp, "noseed.cbor")
    rc, _, _ = run("make", "-k", priv_pem, "--nonce", nonce.hex(), "--sw",
                   f"x::{signer.hex()}", "--no-check", "-o", bad)
    rc2, so, _ = run("verify", "-k", pub_pem, bad)
    check(rc == 0 and rc2 == 1 and "software component without measurement value" in so,
          "--no-check token without measurement: verify exit 1 with its reason")
    # not a token at all
    junk = os.path.join(tmp, "junk.cbor")
    with open(junk, "wb") as f:
        f.write(b"\xa0")
    rc, so, _ = run("verify", "-k", pub_pem, junk)
    check(rc == 1 and "bad COSE_Sign1/COSE_Mac0 structure" in so, "non-token: exit 1, COSE reason")


def vector_part():
    vdir = os.environ.get("FLEETGW_VECTORS", "")
    tok = os.path.join(vdir, "psa", "psa-sign1.cbor")
    key = os.path.join(vdir, "psa", "tfm-es-iak.pem")
    if not (vdir and os.path.exists(tok) and os.path.exists(key)):
        return False
    rc, so, _ = run("verify", "-k", key, tok)
    check(rc == 0 and "token valid" in so, "RFC 9783 vector verifies: exit 0")
    rc, so, _ = run("verify", "-k", key, "--json", "--nonce", "01" * 32, tok)
    j = json.loads(so) if rc == 0 else {}
    c = j.get("claims", {})
    check(rc == 0 and c.get("client_id") == 2147483647 and c.get("boot_seed") == "00" * 8
          and c.get("instance_id") == "01" + "02" * 32
          and c["software_components"][0]["measurement_type"] == "PRoT",
          "vector --json claims")
    rc, so, _ = run("verify", "-k", key, "--nonce", "02" * 32, tok)
    check(rc == 1 and "nonce mismatch" in so, "vector with the wrong nonce: exit 1")
    with open(tok, "rb") as f:
        data = f.read()
    with tempfile.TemporaryDirectory() as tmp:
        bad = os.path.join(tmp, "flip.cbor")
        with open(bad, "wb") as f:
            f.write(flip(data, 100))
        rc, so, _ = run("verify", "-k", key, bad)
        check(rc == 1 and "token invalid:" in so, "vector with a flipped payload byte: exit 1")
    return True


def main():
    with tempfile.TemporaryDirectory() as tmp:
        self_contained(tmp)
    have_vectors = vector_part()
    if FAILS:
        print(f"{len(FAILS)} check(s) failed")
        return 1
    if not have_vectors:
        print("SKIP: vectors psa/psa-sign1.cbor + psa/tfm-es-iak.pem not found under "
              "FLEETGW_VECTORS (../shared/vectors); self-contained checks passed")
        return 77
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
