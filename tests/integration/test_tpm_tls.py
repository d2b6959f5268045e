"""The gateway identity end to end: `identity init` + `identity csr` make a TPM-held key and
its request; the CSR verifies; a test CA signs it; with the TPM-backed SSL_CTX
(tpm_tls_ctx_new, through fleetgw-tls-probe) the gateway connects with mutual TLS to a
mosquitto that requires client certificates, publishes and receives. A broker whose
certificate is from another CA, or names another host, is refused. Also with the key as a
TSS2 key file."""

import sys

from fleetgw_harness import Env, expect, require


def main():
    with Env("tpm-tls") as env:
        tpm = env.start_tpm()
        openssl = require("openssl")

        r = tpm.identity("init")
        expect(r.returncode == 0, f"identity init ({r.stderr.strip()})")
        pub = r.stdout
        csr = env.path("gw.csr")
        r = tpm.identity("csr", "--subject", "/CN=gw-tpm/O=fleetgw test", "--out", csr)
        expect(r.returncode == 0, f"identity csr writes a request ({r.stderr.strip()})")
        v = env.run([openssl, "req", "-in", csr, "-verify", "-noout", "-subject"])
        expect(v.returncode == 0 and "verify OK" in (v.stdout + v.stderr),
               "openssl req -verify accepts the CSR's signature")
        expect("CN = gw-tpm" in v.stdout and "O = fleetgw test" in v.stdout,
               f"the CSR carries the requested subject ({v.stdout.strip()})")
        k = env.run([openssl, "req", "-in", csr, "-noout", "-pubkey"])
        expect(k.stdout == pub, "the CSR's public key is the TPM identity key")

        ca = env.ca("cloud-ca")
        gw_cert = ca.sign_csr(csr, env.path("gw.crt"))
        broker = env.start_mosquitto(ca, name="cloud", superusers=["observer"])
        sub = env.start_observer(broker, ca, "fleet/gw-tpm/#")

        def probe(b, key="handle:0x81000001", cert=gw_cert, topic="fleet/gw-tpm/hello",
                  message="hello-from-identity"):
            return tpm.tls_probe(b, ca.cert_path, key, cert, topic, message=message)

        r = probe(broker)
        expect(r.returncode == 0, "with the TPM identity key the gateway connects with mutual "
                                  "TLS, publishes (PUBACK) and receives its message back")
        expect("fleet/gw-tpm/hello hello-from-identity" in sub.wait_output(),
               "an independent subscriber saw the gateway's message")
        expect(broker.client_ids("gw-tpm"), "the broker identified the gateway by its certificate CN")

        rogue, other, rogue_ca = env.start_impostor_brokers(ca)
        r = probe(rogue)
        expect(r.returncode == 4 and "certificate verify failed" in r.stderr,
               "a broker whose certificate is from another CA is refused")
        r = probe(other)
        expect(r.returncode == 4 and "certificate verify failed" in r.stderr,
               "a broker whose certificate names another host is refused")

        # A broker that does not know the gateway's CA refuses the gateway in turn.
        strict = env.start_mosquitto(rogue_ca, name="strict", server_cert=ca.issue(
            "strict-server", server=True, sans=["127.0.0.1"]))
        r = probe(strict)
        # The broker refuses the client certificate; the client sees either the alert or,
        # when the broker closes first, a reset: the broker's own log says why.
        expect(r.returncode == 4 and ("unknown ca" in r.stderr or
                                      "certificate verify failed" in strict.log()),
               "a broker that does not trust the gateway's CA refuses it (unknown ca)")

        # The same with the key as a TSS2 key file.
        kf = env.path("gw2.tss2.pem")
        r = tpm.identity("init", "--key-file", kf)
        expect(r.returncode == 0, "identity init --key-file")
        csr2 = env.path("gw2.csr")
        r = tpm.identity("csr", "--key-file", kf, "--subject", "/CN=gw-file", "--out", csr2)
        expect(r.returncode == 0, f"identity csr --key-file ({r.stderr.strip()})")
        cert2 = ca.sign_csr(csr2, env.path("gw2.crt"))
        r = probe(broker, key=kf, cert=cert2, topic="fleet/gw-file/hello", message=None)
        expect(r.returncode == 0, "a TSS2 key-file identity connects with mutual TLS too")
    return 0


if __name__ == "__main__":
    sys.exit(main())
