"""fleetgwd configuration errors: each class gives ONE message naming the file, the key and
(where it applies) the line, and a distinct exit code (docs/configuration.md); the daemon
refuses to start with the same code as --check-config. Needs no other component."""

import json
import os
import subprocess
import sys

from fleetgw_harness import Env, expect, program


def main():
    gwd = program("fleetgwd")
    with Env("daemon-config") as env:
        certs = {}
        for name in ("ca.pem", "gw.pem", "gw.key", "edge.secret"):
            certs[name] = env.path(name)
            with open(certs[name], "w") as f:
                f.write("placeholder, only readability is checked here\n")

        good = {
            "edge": {"socket": env.path("edge.sock"), "username": "fleetgwd",
                     "password_file": certs["edge.secret"]},
            "uplink": {"host": "127.0.0.1", "port": 8883, "ca_file": certs["ca.pem"],
                       "cert_file": certs["gw.pem"], "key": certs["gw.key"],
                       "client_id": "gw-1", "topic_prefix": "site1"},
            "spool": {"path": env.path("spool.db"), "max_bytes": 1048576},
            "attestation": {"required": False},
        }

        def write(text):
            path = env.path("fleetgwd.conf")
            with open(path, "w") as f:
                f.write(text)
            return path

        def check(text, *extra, path=None):
            p = path or write(text)
            r = subprocess.run([gwd, "--config", p, "--check-config", *extra],
                               capture_output=True, text=True, timeout=60)
            return r, p

        text = json.dumps(good, indent=2)
        r, p = check(text)
        expect(r.returncode == 0 and "configuration is valid" in r.stdout,
               f"a valid configuration passes --check-config ({r.stdout.strip()}{r.stderr})")

        cases = [
            # (what, text transform, exit code, expected message fragment)
            ("missing file", None, 66,
             "{missing}: cannot read the configuration file: No such file or directory"),
            ("JSON syntax error", lambda t: t.replace('"port": 8883,', '"port": 8883,,'), 65,
             "{conf}:9: JSON syntax error"),
            ("unknown key", lambda t: t.replace('"port": 8883', '"prot": 8883'), 78,
             "{conf}:9: key 'uplink.prot': unknown key"),
            ("unknown section", lambda t: t.replace('"spool"', '"spoool"'), 78,
             "key 'spoool': unknown section"),
            ("bad type", lambda t: t.replace('"port": 8883', '"port": "8883"'), 79,
             "{conf}:9: key 'uplink.port': expected an integer, found a string"),
            ("out of range", lambda t: t.replace('"port": 8883', '"port": 0'), 80,
             "{conf}:9: key 'uplink.port': value 0 is out of range [1, 65535]"),
            ("bad value", lambda t: t.replace('"site1"', '"site1/#"'), 80,
             "key 'uplink.topic_prefix': 'site1/#' is not a valid topic prefix"),
            ("missing key", lambda t: t.replace('"client_id": "gw-1",', ''), 81,
             "key 'uplink.client_id': this key is required and missing"),
            ("unreadable certificate", lambda t: t.replace(certs["gw.pem"], env.path("nope.pem")),
             82, "key 'uplink.cert_file': cannot read '{dir}/nope.pem': No such file or directory"),
            ("certificate is a directory", lambda t: t.replace(certs["ca.pem"], env.dir), 82,
             "key 'uplink.ca_file': cannot read '{dir}': Is a directory"),
            ("a cloud profile's limit (issue 17)",
             lambda t: t.replace('"topic_prefix": "site1"', '"topic_prefix": "site1", '
                                 '"profile": "aws-iot-core", "max_publish_per_s": 150'), 80,
             "key 'uplink.max_publish_per_s': 150 exceeds AWS IoT Core's limit of 100 "
             "publishes per second per connection"),
        ]
        for what, transform, code, fragment in cases:
            if transform is None:
                missing = env.path("does-not-exist.conf")
                r, p = check(None, path=missing)
            else:
                variant = transform(text)
                assert variant != text, what
                r, p = check(variant)
            frag = fragment.format(conf=p, missing=env.path("does-not-exist.conf"), dir=env.dir)
            lines = [x for x in r.stderr.splitlines() if x.strip()]
            expect(r.returncode == code, f"{what}: exit code {code} (got {r.returncode})")
            expect(len(lines) == 1 and frag in lines[0],
                   f"{what}: one message naming file, key and reason: {lines}")

        # Without --check-config the daemon refuses to start, with the same code and message.
        r = subprocess.run([gwd, "--config", write(text.replace('"port": 8883', '"port": 0'))],
                           capture_output=True, text=True, timeout=60)
        expect(r.returncode == 80 and "uplink.port" in r.stderr,
               f"the daemon refuses to start on a bad value with exit 80 ({r.stderr.strip()})")
        r, p = check(text.replace('"required": false', '"required": true'))
        expect(r.returncode == 81 and "attestation.reference_file" in r.stderr,
               f"attestation.required needs its reference file ({r.stderr.strip()})")
        # --check-config loads the attestation sources as the daemon would: a broken reference
        # file, an unreadable image store, signer keys without a store, each refused.
        ref = env.path("reference.json")
        with open(ref, "w") as f:
            f.write('{"reference_values": [{"measurement": "zz", "signer_id": "00"}]}')
        r, p = check(text.replace('"required": false',
                                  f'"required": false, "reference_file": "{ref}"'))
        expect(r.returncode == 80 and "reference.json" in r.stderr and
               "measurement must be" in r.stderr,
               f"--check-config reads the reference file ({r.stderr.strip()})")
        keys = env.path("signer-keys.pem")
        with open(keys, "w") as f:
            f.write("not a key\n")
        store = env.path("no-such-store")
        r, p = check(text.replace('"required": false',
                                  f'"required": false, "image_dir": "{store}", '
                                  f'"signer_keys": "{keys}"'))
        expect(r.returncode == 80 and "signer-keys.pem" in r.stderr and
               "no PEM public key" in r.stderr,
               f"--check-config reads the signer keys ({r.stderr.strip()})")
        r, p = check(text.replace('"required": false', f'"required": false, "signer_keys": "{keys}"'))
        expect(r.returncode == 81 and "attestation.image_dir" in r.stderr,
               f"signer_keys without image_dir is refused ({r.stderr.strip()})")
        # fleetgwctl check runs the daemon's own validation as its "config" check.
        bad = write(text.replace('"port": 8883', '"port": 0'))
        r = subprocess.run([program("fleetgwctl"), "--json", "check", "--config", bad],
                           capture_output=True, text=True, timeout=120)
        js = json.loads(r.stdout)
        cfg_check = [c for c in js["checks"] if c["name"] == "config"][0]
        expect(r.returncode == 1 and cfg_check["status"] == "fail" and
               "uplink.port" in cfg_check["message"] and "exit 80" in cfg_check["message"],
               f"fleetgwctl check reports the daemon's own verdict on the file: {cfg_check}")
        r = subprocess.run([program("fleetgwctl"), "--json", "check", "--config", write(text)],
                           capture_output=True, text=True, timeout=120)
        cfg_check = [c for c in json.loads(r.stdout)["checks"] if c["name"] == "config"][0]
        expect(cfg_check["status"] == "warn" and "attestation.required is false" in
               cfg_check["message"],
               f"a valid one with attestation turned off passes with a warning: {cfg_check}")
        # fail closed: without "required": false and without reference values, no start
        r = subprocess.run([gwd, "--check-config", "--config",
                            write(text.replace('"required": false', '"nonce_ttl_s": 30'))],
                           capture_output=True, text=True, timeout=60)
        expect(r.returncode == 81 and "the default" in r.stderr,
               f"attestation is required by default: no reference values, no start "
               f"({r.stderr.strip()})")
        r = subprocess.run([gwd, "--bogus"], capture_output=True, text=True, timeout=60)
        expect(r.returncode == 64, f"an unknown option is a usage error, exit 64 (got {r.returncode})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
