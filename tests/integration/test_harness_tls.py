"""Proves the harness: swtpm + tpm2-abrmd and a TLS mosquitto come up; a client whose key
lives in the TPM (tpm2-openssl provider) connects with mutual TLS, publishes and receives;
a broker whose certificate comes from another CA, or names another host, is refused."""

import sys

from fleetgw_harness import Env, expect, require

HANDLE = "0x81000001"


def make_tpm_key(tpm, env):
    """A persistent P-256 signing key made with tpm2-tools (fixedTPM, fixedParent,
    sensitiveDataOrigin: it cannot leave the TPM)."""
    tpm.tool("tpm2_createprimary", "-C", "o", "-g", "sha256", "-G", "ecc256",
             "-c", "primary.ctx")
    tpm.tool("tpm2_create", "-C", "primary.ctx", "-G", "ecc256:ecdsa-sha256",
             "-a", "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign",
             "-u", "key.pub", "-r", "key.priv")
    tpm.tool("tpm2_load", "-C", "primary.ctx", "-u", "key.pub", "-r", "key.priv",
             "-c", "key.ctx")
    tpm.tool("tpm2_evictcontrol", "-C", "o", "-c", "key.ctx", HANDLE)
    tpm.tool("tpm2_flushcontext", "-t")


def main():
    with Env("harness-tls") as env:
        tpm = env.start_tpm()
        make_tpm_key(tpm, env)

        ca = env.ca("cloud-ca")
        csr = env.path("gw.csr")
        r = env.run([require("openssl"), "req", "-provider", "tpm2", "-provider", "default",
                     "-propquery", "?provider=tpm2", "-new", "-key", f"handle:{HANDLE}",
                     "-subj", "/CN=gw-test", "-out", csr], env=tpm.client_env())
        expect(r.returncode == 0, f"CSR made with the TPM key ({r.stderr.strip()[:200]})")
        gw_cert = ca.sign_csr(csr, env.path("gw.crt"))

        broker = env.start_mosquitto(ca, name="cloud", superusers=["observer"])
        sub = env.start_observer(broker, ca, "fleet/gw-test/#")

        def probe(b):
            return tpm.tls_probe(b, ca.cert_path, f"handle:{HANDLE}", gw_cert,
                                 "fleet/gw-test/hello", message="hello-from-tpm")

        r = probe(broker)
        expect(r.returncode == 0, "TPM-key client connects with mutual TLS, publishes (PUBACK) "
                                  "and receives its message back")
        expect("fleet/gw-test/hello hello-from-tpm" in sub.wait_output(),
               "an independent subscriber saw the TPM client's message")
        expect(broker.client_ids("gw-test"), "the broker identified the client by its certificate CN")

        rogue, other, _ = env.start_impostor_brokers(ca)
        # A broker whose certificate comes from another CA must be refused by the client.
        r = probe(rogue)
        expect(r.returncode == 4, "a broker certificate from another CA is refused")
        expect("certificate verify failed" in r.stderr, "the refusal names certificate verification")

        # Same CA, but the certificate names another host: refused by the host check.
        r = probe(other)
        expect(r.returncode == 4, "a broker certificate for another host name is refused")
    return 0


if __name__ == "__main__":
    sys.exit(main())
