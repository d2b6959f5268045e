"""fleetgwd control socket and fleetgwctl, against a running daemon with real brokers and
TPM: status, node enrollment by IAK public key (node id = hex of the first 16 bytes of
SHA-256 of the 65-byte point) or by a certificate verified against a CA, list/show/remove with tables and --json, last-seen updated
by relayed traffic, socket mode 0660 in the daemon's own group (control.group unset; the
group cases and the SO_PEERCRED refusal of other uids are unit.test_control_socket and
unit.test_control_peer). Runs as root or as a normal user."""

import hashlib
import json
import os
import stat
import subprocess
import sys

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from fleetgw_harness import Env, expect, program, require, wait_for

from daemon_common import Site, Publisher


def main():
    ctl = program("fleetgwctl")
    with Env("daemon-control") as env:
        site = Site(env, nodes=("lim",))
        site.start_gwd(limits={"max_message_bytes": 1000, "per_node_rate": 1,
                               "per_node_burst": 3})
        site.wait_gwd_connected()
        sock = site.control_socket

        def run(*args):
            argv = [ctl, "--socket", sock, *args]
            return subprocess.run(argv, capture_output=True, text=True, timeout=60)

        st = os.stat(sock)
        expect(stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o660 and
               st.st_gid == os.getegid(),
               f"control socket is mode 0660 in the daemon's own group (mode "
               f"{oct(stat.S_IMODE(st.st_mode))}, gid {st.st_gid})")

        r = run("status")
        expect(r.returncode == 0 and "edge broker   connected" in r.stdout and
               "cloud broker  connected" in r.stdout, f"fleetgwctl status:\n{r.stdout}{r.stderr}")
        r = run("--json", "status")
        js = json.loads(r.stdout)
        expect(js["ok"] and js["edge"] == "connected" and js["cloud"] == "connected",
               "fleetgwctl --json status is JSON with the connection states")

        key = ec.generate_private_key(ec.SECP256R1())
        point = key.public_key().public_bytes(serialization.Encoding.X962,
                                              serialization.PublicFormat.UncompressedPoint)
        node_id = hashlib.sha256(point).digest()[:16].hex()
        pem = env.path("iak.pub.pem")
        with open(pem, "wb") as f:
            f.write(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo))
        r = run("node", "add", "--pub", pem, "--class", "sensor-v1")
        expect(r.returncode == 0 and node_id in r.stdout,
               f"node add enrolls the node under id {node_id} (hex of SHA-256(point)[:16])")
        r = run("node", "add", "--pub-hex", point.hex(), "--class", "sensor-v1")
        expect(r.returncode == 1 and "already enrolled" in r.stderr,
               f"enrolling the same key twice is refused: {r.stderr.strip()}")
        r = run("node", "add", "--pub-hex", "02" + point.hex()[2:])
        expect(r.returncode == 1 and "uncompressed" in r.stderr,
               f"a malformed key is refused with a reason: {r.stderr.strip()}")

        key2 = ec.generate_private_key(ec.SECP256R1())
        point2 = key2.public_key().public_bytes(serialization.Encoding.X962,
                                                serialization.PublicFormat.UncompressedPoint)
        r = run("node", "add", "--pub-hex", point2.hex(), "--class", "sensor-v2")
        expect(r.returncode == 0, "a second node enrolled by hex key")

        r = run("nodes")
        expect(r.returncode == 0 and node_id in r.stdout and "2 node(s)" in r.stdout and
               "sensor-v1" in r.stdout and "unknown" in r.stdout,
               f"fleetgwctl nodes prints a table:\n{r.stdout}")
        r = run("--json", "node", "list")
        js = json.loads(r.stdout)
        expect(sorted(n["id"] for n in js["nodes"]) ==
               sorted([node_id, hashlib.sha256(point2).digest()[:16].hex()]),
               "fleetgwctl --json node list lists both ids")

        # Traffic from the enrolled node (its certificate CN is its node id) updates last seen.
        site.node_certs[node_id] = site.edge_ca.issue(node_id)
        p = Publisher(site, node_id)
        p.send(1)
        p.close()
        wait_for(lambda: json.loads(run("--json", "node", "show", node_id).stdout)["node"]
                 ["last_seen"] > 0, 30, "last_seen to be set")
        r = run("node", "show", node_id)
        expect(r.returncode == 0 and point.hex() in r.stdout and "ago" in r.stdout,
               f"node show prints the key and when it was last seen:\n{r.stdout}")

        # Per-node limits: a burst of 10 against a bucket of 3 (1/s), and one oversize message.
        p = Publisher(site, "lim")
        for i in range(10):
            p.send(i + 1)
        p.close()
        env.run([require("mosquitto_pub")] + site.edge.client_args(site.node_certs["lim"]) +
                ["-q", "1", "-t", "fleet/lim/up/big", "-m", "x" * 1001], check=True)
        wait_for(lambda: site.counters().get("too_large", 0) == 1, 30, "the oversize drop")
        c = site.counters()
        expect(5 <= c.get("rate_limited", 0) <= 7 and c.get("too_large", 0) == 1,
               f"a burst over the node's token bucket and an oversize message are dropped and "
               f"counted by reason ({c})")

        r = run("spool")
        expect(r.returncode == 0 and "relayed_up" in r.stdout and "rate_limited" in r.stdout,
               f"fleetgwctl spool prints usage and counters:\n{r.stdout}")

        r = run("node", "remove", node_id)
        expect(r.returncode == 0, "node remove")
        r = run("node", "show", node_id)
        expect(r.returncode == 1 and "not enrolled" in r.stderr,
               f"a removed node is unknown: {r.stderr.strip()}")
        # Enrolment by certificate: the IAK key of a node certificate issued by a
        # manufacturer CA (made here at test time); with --ca it must verify against it.
        maker = env.ca("maker-ca")
        other = env.ca("other-ca")
        crt, crt_key = maker.issue("node-c")
        with open(crt_key, "rb") as f:
            ckey = serialization.load_pem_private_key(f.read(), None)
        cpoint = ckey.public_key().public_bytes(serialization.Encoding.X962,
                                                serialization.PublicFormat.UncompressedPoint)
        cid = hashlib.sha256(cpoint).digest()[:16].hex()
        r = run("node", "add", "--cert", crt, "--ca", other.cert_path)
        expect(r.returncode == 4 and "does not verify" in r.stderr and
               run("node", "show", cid).returncode == 1,
               f"a certificate from another CA is refused, nothing enrolled: {r.stderr.strip()}")
        r = run("node", "add", "--cert", crt_key)
        expect(r.returncode == 4 and "not a PEM certificate" in r.stderr,
               f"a file that is not a certificate is refused: {r.stderr.strip()}")
        r = run("node", "add", "--cert", crt, "--ca", maker.cert_path, "--class", "sensor-c")
        expect(r.returncode == 0 and cid in r.stdout,
               f"a certificate verified against its CA enrolls its key as node {cid}: "
               f"{r.stdout.strip()} {r.stderr.strip()}")
        expect(site.node_json(cid)["iak_pub"] == cpoint.hex(),
               "the enrolled key is the certificate's public key")
        r = run("node", "add", "--ca", maker.cert_path)
        expect(r.returncode == 2 and "--ca goes with --cert" in r.stderr,
               f"--ca alone is a usage error: {r.stderr.strip()}")

        r = run("bogus")
        expect(r.returncode == 2, "an unknown command is a usage error (exit 2)")
        rc = site.gwd.stop()
        expect(rc == 0, "fleetgwd stops cleanly")
        expect(not os.path.exists(sock), "the control socket is removed on exit")
    return 0


if __name__ == "__main__":
    sys.exit(main())
