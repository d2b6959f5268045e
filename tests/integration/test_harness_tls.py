"""Proves the harness: swtpm + tpm2-abrmd and a TLS mosquitto come up; a client whose key
lives in the TPM (tpm2-openssl provider) connects with mutual TLS, publishes and receives;
a broker whose certificate comes from another CA, or names another host, is refused."""

import subprocess
import sys

from fleetgw_harness import Env, expect, program, require

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
        observer = ca.issue("observer")
        sub = env.spawn("observer-sub", [require("mosquitto_sub")] + broker.client_args(observer)
                        + ["-t", "fleet/gw-test/#", "-q", "1", "-C", "1", "-W", "60", "-v"])

        broker.wait_subscribed("observer")
        probe = program("fleetgw-tls-probe")
        common = ["--tcti", tpm.tcti, "--key", f"handle:{HANDLE}", "--cert", gw_cert,
                  "--host", "127.0.0.1", "--topic", "fleet/gw-test/hello",
                  "--message", "hello-from-tpm", "--wait", "30"]
        r = env.run([probe, "--port", str(broker.port), "--cafile", ca.cert_path] + common,
                    env=tpm.client_env())
        print(r.stdout + r.stderr)
        expect(r.returncode == 0, "TPM-key client connects with mutual TLS, publishes (PUBACK) "
                                  "and receives its message back")
        try:
            sub.popen.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        expect("fleet/gw-test/hello hello-from-tpm" in sub.output(),
               "an independent subscriber saw the TPM client's message")
        expect(broker.client_ids("gw-test"), "the broker identified the client by its certificate CN")

        # A broker whose certificate comes from another CA must be refused by the client.
        rogue_ca = env.ca("rogue-ca")
        rogue = env.start_mosquitto(ca, name="rogue",
                                    server_cert=rogue_ca.issue("rogue-server", server=True,
                                                               sans=["127.0.0.1"]))
        r = env.run([probe, "--port", str(rogue.port), "--cafile", ca.cert_path] + common,
                    env=tpm.client_env())
        print(r.stdout + r.stderr)
        expect(r.returncode == 4, "a broker certificate from another CA is refused")
        expect("certificate verify failed" in r.stderr, "the refusal names certificate verification")

        # Same CA, but the certificate names another host: refused by the host check.
        other = env.start_mosquitto(ca, name="otherhost",
                                    server_cert=ca.issue("otherhost-server", server=True,
                                                         sans=["broker.invalid"]))
        r = env.run([probe, "--port", str(other.port), "--cafile", ca.cert_path] + common,
                    env=tpm.client_env())
        print(r.stdout + r.stderr)
        expect(r.returncode == 4, "a broker certificate for another host name is refused")
    return 0


if __name__ == "__main__":
    sys.exit(main())
