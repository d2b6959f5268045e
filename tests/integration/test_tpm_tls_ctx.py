"""The TPM-backed TLS context is private to its SSL_CTX: after tpm_tls_ctx_new() with the key
in the TPM (swtpm behind tpm2-abrmd) and a mutual-TLS handshake with it, the process's
default OpenSSL library context has no tpm2 provider, fetches ECDSA from the default
provider, and proto's ECDSA P-256 verification (what fleetgwd uses for PSA tokens) accepts
a valid signature and refuses a corrupted one; a second handshake with the TPM key still
works (fleetgw-tls-ctxcheck). With the old process-wide "?tpm2.signature=yes" this fails."""

import hashlib
import sys

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from fleetgw_harness import Env, expect, program


def p256_vector():
    """A fresh P-256 key (made here, in the test) and its signature over a message, as proto
    takes them: uncompressed point, SHA-256 digest, raw r||s."""
    key = ec.generate_private_key(ec.SECP256R1())
    msg = b"fleetgw tls-ctxcheck: the default context still verifies"
    r, s = decode_dss_signature(key.sign(msg, ec.ECDSA(hashes.SHA256())))
    pub = key.public_key().public_bytes(serialization.Encoding.X962,
                                        serialization.PublicFormat.UncompressedPoint)
    return pub.hex(), hashlib.sha256(msg).hexdigest(), (r.to_bytes(32, "big") +
                                                        s.to_bytes(32, "big")).hex()


def main():
    with Env("tpm-tls-ctx") as env:
        tpm = env.start_tpm()
        r = tpm.identity("init")
        expect(r.returncode == 0, f"identity init ({r.stderr.strip()})")
        csr = env.path("gw.csr")
        r = tpm.identity("csr", "--subject", "/CN=gw-ctx", "--out", csr)
        expect(r.returncode == 0, f"identity csr ({r.stderr.strip()})")
        ca = env.ca("ctx-ca")
        cert = ca.sign_csr(csr, env.path("gw.crt"))
        broker = env.start_mosquitto(ca, name="ctx", unix_socket=False, persistence=False)

        pub, digest, sig = p256_vector()
        argv = [program("fleetgw-tls-ctxcheck"), "--port", str(broker.port), "--cafile",
                ca.cert_path, "--tcti", tpm.tcti, "--key", "handle:0x81000001", "--cert", cert,
                "--pub", pub, "--digest", digest, "--sig", sig]
        r = env.run(argv, env=tpm.client_env())
        print(r.stdout + r.stderr)
        expect("mutual-TLS handshake with the TPM key" in r.stdout,
               "the TPM-backed context completes a mutual-TLS handshake")
        expect("FAIL the tpm2 provider is loaded" not in r.stderr,
               "the tpm2 provider is not loaded into the default library context")
        expect("default context ECDSA provider: default" in r.stdout,
               "ECDSA fetched in the default library context comes from the default provider")
        expect("verification accepts the valid signature" in r.stdout and
               "accepts a corrupted signature" not in r.stderr,
               "proto's ECDSA P-256 verification in the default context accepts the valid "
               "signature and refuses a corrupted one")
        expect("second handshake" in r.stdout,
               "the TPM-backed context still handshakes after the default-context verification")
        expect(r.returncode == 0, f"fleetgw-tls-ctxcheck exits 0 (got {r.returncode})")

        # The same with the key as a TSS2 key file.
        kf = env.path("gw2.tss2.pem")
        r = tpm.identity("init", "--key-file", kf)
        expect(r.returncode == 0, "identity init --key-file")
        csr2 = env.path("gw2.csr")
        r = tpm.identity("csr", "--key-file", kf, "--subject", "/CN=gw-ctx-file", "--out", csr2)
        expect(r.returncode == 0, f"identity csr --key-file ({r.stderr.strip()})")
        cert2 = ca.sign_csr(csr2, env.path("gw2.crt"))
        argv[argv.index("handle:0x81000001")] = kf
        argv[argv.index(cert)] = cert2
        r = env.run(argv, env=tpm.client_env())
        print(r.stdout + r.stderr)
        expect(r.returncode == 0, "with a TSS2 key-file key the default context is untouched "
                                  f"too (exit {r.returncode})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
