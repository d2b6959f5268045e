"""The checks behind `fleetgwctl check` (ops/, fleetgw/check.h) against REAL components:
swtpm + tpm2-abrmd holding the gateway key at a persistent handle, a certificate issued for
that key from a CSR the TPM signed, a TLS mosquitto (cloud broker) with a unix-socket
listener (edge broker).
- everything provisioned: every check is OK, exit 0, JSON "ok": true;
- a certificate that expires tomorrow: certificate WARN, exit 3;
- a certificate for ANOTHER key: identity FAIL (the check compares the TPM's public key with
  the certificate's);
- a handle with no key: identity FAIL naming the handle;
- the broker stopped: cloud and edge broker FAIL, the TPM checks still OK.
Driven through build/bin/fleetgw-ops-check, which calls check_run() as fleetgwctl does."""

import datetime
import json
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from fleetgw_harness import Env, expect, program, require, run_main

HANDLE = "0x81000001"


def make_tpm_key(tpm):
    tpm.tool("tpm2_createprimary", "-C", "o", "-g", "sha256", "-G", "ecc256", "-c", "primary.ctx")
    tpm.tool("tpm2_create", "-C", "primary.ctx", "-G", "ecc256:ecdsa-sha256",
             "-a", "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign",
             "-u", "key.pub", "-r", "key.priv")
    tpm.tool("tpm2_load", "-C", "primary.ctx", "-u", "key.pub", "-r", "key.priv",
             "-c", "key.ctx")
    tpm.tool("tpm2_evictcontrol", "-C", "o", "-c", "key.ctx", HANDLE)
    tpm.tool("tpm2_flushcontext", "-t")


class LongCA:
    """A CA whose certificates last a year (the harness CA's last a day, which the check
    rightly reports as close to expiry)."""

    def __init__(self, env):
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "long-lived test CA")])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(self.name).issuer_name(self.name)
                .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5))
                .not_valid_after(now + datetime.timedelta(days=730))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
                .sign(self.key, hashes.SHA256()))
        self.cert_path = env.path("long-ca.pem")
        with open(self.cert_path, "wb") as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM))

    def sign_csr(self, csr_path, out_path, days=365):
        with open(csr_path, "rb") as f:
            csr = x509.load_pem_x509_csr(f.read())
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(csr.subject).issuer_name(self.name)
                .public_key(csr.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5))
                .not_valid_after(now + datetime.timedelta(days=days))
                .sign(self.key, hashes.SHA256()))
        with open(out_path, "wb") as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM))
        return out_path


def write_conf(env, name, broker, tpm, ca, cert, key=f"handle:{HANDLE}"):
    # attestation is required by default (fail closed): it needs its reference values
    ref = env.path("reference.json")
    with open(ref, "w") as f:
        json.dump({"lifecycles": ["secured"], "reference_values": []}, f)
    conf = {
        "attestation": {"reference_file": ref},
        "uplink": {"host": "127.0.0.1", "port": broker.port, "ca_file": ca.cert_path,
                   "cert_file": cert, "key": key, "tcti": tpm.tcti, "client_id": "gw-test"},
        "edge": {"socket": broker.socket_path},
        "spool": {"path": env.path("state", "spool.db"), "max_bytes": 1 << 20},
        # never the system's /var/lib/fleetgw defaults
        "registry": {"path": env.path("state", "registry.db")},
        "ota": {"store_dir": env.path("state", "ota"), "state_db": env.path("state", "ota.db")},
    }
    path = env.path(name)
    with open(path, "w") as f:
        json.dump(conf, f, indent=2)
    return path


def run_check(env, tpm, conf):
    r = env.run([program("fleetgw-ops-check"), "--config", conf, "--json"],
                env=tpm.client_env())
    try:
        out = json.loads(r.stdout)
    except ValueError:
        raise AssertionError(f"fleetgw-ops-check printed no JSON: {r.stdout!r} {r.stderr!r}")
    checks = {c["name"]: c for c in out["checks"]}
    for c in out["checks"]:
        print(f"  {c['status']:4} {c['name']:12} {c['message']}"
              + (f"  -> {c['action']}" if c["action"] else ""))
    return r.returncode, out, checks


def main():
    with Env("ops-check") as env:
        os.makedirs(env.path("state"))
        tpm = env.start_tpm()
        make_tpm_key(tpm)
        ca = env.ca("cloud-ca")
        csr = env.path("gw.csr")
        env.run([require("openssl"), "req", "-provider", "tpm2", "-provider", "default",
                 "-propquery", "?provider=tpm2", "-new", "-key", f"handle:{HANDLE}",
                 "-subj", "/CN=gw-test", "-out", csr], env=tpm.client_env(), check=True)
        long_ca = LongCA(env)
        gw_cert = long_ca.sign_csr(csr, env.path("gw.crt"))
        broker = env.start_mosquitto(ca, name="cloud")

        conf = write_conf(env, "good.conf", broker, tpm, long_ca, gw_cert)
        rc, out, checks = run_check(env, tpm, conf)
        expect(rc == 0 and out["ok"] is True, f"provisioned gateway: every check OK (exit {rc})")
        expect(set(checks) == {"config", "tpm", "identity", "certificate", "cloud CA",
                               "cloud broker", "edge broker", "disk"}, "all eight checks ran")
        expect(HANDLE[2:] in checks["identity"]["message"], "identity names the handle")

        short_cert = ca.sign_csr(csr, env.path("gw-short.crt"))  # the TPM key, for one day
        conf = write_conf(env, "short.conf", broker, tpm, ca, short_cert)
        rc, out, checks = run_check(env, tpm, conf)
        expect(rc == 3 and checks["certificate"]["status"] == "warn"
               and checks["identity"]["status"] == "ok",
               "a certificate that expires within 30 days: WARN, exit 3")

        other_cert, _ = ca.issue("gw-test")  # same name, a software key: not the TPM's
        conf = write_conf(env, "other.conf", broker, tpm, long_ca, other_cert)
        rc, out, checks = run_check(env, tpm, conf)
        expect(rc == 1 and checks["identity"]["status"] == "fail"
               and "another key" in checks["identity"]["message"],
               "a certificate for another key: identity FAIL, exit 1")
        expect(checks["tpm"]["status"] == "ok", "the TPM itself is still OK")

        conf = write_conf(env, "nokey.conf", broker, tpm, long_ca, gw_cert,
                          key="handle:0x81000002")
        rc, out, checks = run_check(env, tpm, conf)
        expect(rc == 1 and checks["identity"]["status"] == "fail"
               and "81000002" in checks["identity"]["message"],
               "no key at the handle: identity FAIL naming it")

        broker.stop()
        conf = write_conf(env, "good.conf", broker, tpm, long_ca, gw_cert)
        rc, out, checks = run_check(env, tpm, conf)
        expect(rc == 1 and checks["cloud broker"]["status"] == "fail"
               and checks["edge broker"]["status"] == "fail",
               "broker stopped: cloud and edge broker FAIL")
        expect(checks["identity"]["status"] == "ok", "identity still OK")
    print("PASS")
    return 0


if __name__ == "__main__":
    run_main(main)
