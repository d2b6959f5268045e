#!/usr/bin/python3
"""Benchmark: PSA token verifications per second by fleetgw (token_verify(): CBOR/COSE
parsing, Sig_structure hashing, ECDSA P-256 through the OpenSSL back-end, claim checks)
against the raw ECDSA P-256 verify rate of `openssl speed -seconds 3 ecdsap256` on the same
machine in the same run. Both are CPU-time rates (openssl speed reports user CPU time unless
-elapsed; `fleetgw-tool token bench` uses CLOCK_PROCESS_CPUTIME_ID), so other load on a
shared machine does not distort the ratio.

Exit 0 when the ratio reaches FLEETGW_BENCH_MIN_RATIO (default 0.8), 1 otherwise."""
import json
import os
import re
import secrets
import subprocess
import sys
import tempfile

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

MIN_RATIO = float(os.environ.get("FLEETGW_BENCH_MIN_RATIO", "0.8"))
ROUNDS = 3


def tool_path():
    build = os.environ.get("FLEETGW_BUILD_DIR") or os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..", "build")
    path = os.path.join(build, "bin", "fleetgw-tool")
    if not os.access(path, os.X_OK):
        print(f"FAIL: fleetgw-tool not found at {path}")
        sys.exit(1)
    return path


def openssl_verify_rate():
    out = subprocess.run(["openssl", "speed", "-seconds", "3", "ecdsap256"],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    m = re.search(r"256 bits ecdsa \(nistp256\)\s+\S+s\s+\S+s\s+([\d.]+)\s+([\d.]+)", out)
    if not m:
        print("FAIL: cannot parse `openssl speed` output:\n" + out)
        sys.exit(1)
    return float(m.group(2))


def main():
    tool = tool_path()
    with tempfile.TemporaryDirectory() as tmp:
        key = ec.generate_private_key(ec.SECP256R1())
        priv = os.path.join(tmp, "k.pem")
        pub = os.path.join(tmp, "k-pub.pem")
        with open(priv, "wb") as f:
            f.write(key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
        with open(pub, "wb") as f:
            f.write(key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        tok = os.path.join(tmp, "t.cbor")
        # a TF-M-like token: BL2, secure and non-secure images
        args = [tool, "token", "make", "-k", priv, "--nonce", secrets.token_hex(32),
                "--boot-seed", secrets.token_hex(32), "-o", tok]
        for name in ("BL2", "SPE", "NSPE"):
            args += ["--sw", f"{name}:{secrets.token_hex(32)}:{secrets.token_hex(32)}:1.0.0:sha-256"]
        subprocess.run(args, check=True, capture_output=True, timeout=60)

        ours, ref = [], []
        for _ in range(ROUNDS):
            p = subprocess.run([tool, "token", "bench", "-k", pub, "-n", "20000", tok],
                               capture_output=True, text=True, timeout=600)
            if p.returncode != 0:
                print(f"FAIL: token bench exit {p.returncode}: {p.stdout} {p.stderr}")
                return 1
            r = json.loads(p.stdout)
            ours.append(r["verify_per_cpu_sec"])
            ref.append(openssl_verify_rate())
        best_ours, best_ref = max(ours), max(ref)
        ratio = best_ours / best_ref
        print(f"token size: {r['token_bytes']} bytes")
        print(f"fleetgw token_verify:      {best_ours:10.1f} verifications/s (CPU), "
              f"rounds {', '.join(f'{x:.0f}' for x in ours)}")
        print(f"openssl speed ecdsap256:   {best_ref:10.1f} verify/s (CPU), "
              f"rounds {', '.join(f'{x:.0f}' for x in ref)}")
        print(f"ratio: {ratio:.3f} (goal >= {MIN_RATIO})")
        if ratio < MIN_RATIO:
            print("BELOW GOAL")
            return 1
        return 0


if __name__ == "__main__":
    sys.exit(main())
