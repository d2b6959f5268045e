"""Gateway OTA tests (issue 13): fleetgwd hands images to fleet-sim nodes in campaigns.

Real components only: swtpm + tpm2-abrmd (the gateway key), the cloud mosquitto (mutual TLS),
the edge mosquitto (TLS for the nodes, unix socket for fleetgwd), fleetgwd with the
attestation gate on, fleet-sim nodes with flash files and the real bootloader core
(--boot-key), images signed at test time by fleetgw-tool (ota_common.Images: v1 factory,
v2 update, and the kinds the store must refuse), a device-class file written here.

The nodes' class is "sim" (slot 256 KiB, signer = the test's signing key, floor 2); a second
class "other" is allowed the other key only, so the other key is in the signer set but not
allowed for "sim"."""

import hashlib
import json
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "demo"))

from cryptography.hazmat.primitives import serialization  # noqa: E402

from fleetgw_harness import HarnessError, program, wait_for  # noqa: E402
from daemon_common import PREFIX  # noqa: E402
from fleet_scenario import FleetSite  # noqa: E402
from ota_common import Images, node_certs  # noqa: E402
from test_agent_mqtt import Subscriber  # noqa: E402

CLASS = "sim"
SLOT = 256 * 1024


def signer_id(pub_pem_path):
    with open(pub_pem_path, "rb") as f:
        key = serialization.load_pem_public_key(f.read())
    der = key.public_bytes(serialization.Encoding.DER,
                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


class OtaGateway(FleetSite):
    """FleetSite (TPM identity, cloud and edge brokers) plus what fleetgwd's OTA needs: the
    signer set (attestation.signer_keys: the public keys signer_pubs, PEM files), the
    device-class file (the list classes), the attestation policy's reference images
    (attestation.image_dir: copies of reference_images), the OTA store and the campaign
    database; and the helpers to stage, run and watch campaigns."""

    def __init__(self, env, signer_pubs, classes, reference_images, edge_conf=(), edge_acl=()):
        super().__init__(env, edge_conf=edge_conf, edge_acl=edge_acl)
        j = env.path
        self.signers = j("signers.pem")
        with open(self.signers, "w") as out:
            for p in signer_pubs:
                with open(p) as f:
                    out.write(f.read())
        self.classes = j("classes.json")
        with open(self.classes, "w") as f:
            json.dump({"classes": list(classes)}, f)
        self.ref_dir = j("reference-images")
        os.makedirs(self.ref_dir, exist_ok=True)
        for img in reference_images:
            with open(img, "rb") as src, \
                    open(os.path.join(self.ref_dir, os.path.basename(img)), "wb") as dst:
                dst.write(src.read())
        self.store_dir = j("ota-store")
        self.state_db = j("ota.db")
        self.status_sub = None

    def start(self, interval_s=3600, chunk_size=2048, nonce_ttl_s=20, **over):
        self.start_gwd(attestation={"required": True, "image_dir": self.ref_dir,
                                    "signer_keys": self.signers, "nonce_ttl_s": nonce_ttl_s,
                                    "interval_s": interval_s},
                       ota={"store_dir": self.store_dir, "state_db": self.state_db,
                            "classes_file": self.classes, "chunk_size": chunk_size}, **over)
        self.wait_gwd_connected()
        if self.status_sub is None:
            cert = self.cloud_ca.issue("monitor")
            self.status_sub = Subscriber(self.env, self.cloud, cert, client_id="ota-status",
                                         topic=f"{PREFIX}/ota/campaigns/+/status")

    def verdicts(self, ids):
        nodes = {n["id"]: n for n in self.ctl_json("nodes")["nodes"]}
        return {i: nodes.get(i, {}) for i in ids}

    def wait_trusted(self, ids, timeout=180):
        def all_trusted():
            self.gwd.check_alive()
            v = self.verdicts(ids)
            return all(n.get("verdict") == "trusted" for n in v.values())
        wait_for(all_trusted, timeout, f"{len(ids)} node(s) to be trusted", interval=0.5)

    def stage(self, image, *opts):
        """(exit code, parsed --json answer or None, stderr) of fleetgwctl ota stage."""
        r = self.ctl("--json", "ota", "stage", image, *opts)
        try:
            ans = json.loads(r.stdout)
        except ValueError:
            ans = None
        return r.returncode, ans, r.stderr

    def store_listing(self):
        out = []
        for root, _dirs, files in os.walk(self.store_dir):
            for f in files:
                p = os.path.join(root, f)
                with open(p, "rb") as fh:
                    out.append((os.path.relpath(p, self.store_dir),
                                hashlib.sha256(fh.read()).hexdigest()))
        return sorted(out)

    def create(self, *args):
        r = self.ctl("--json", "campaign", "create", *args)
        if r.returncode != 0:
            raise HarnessError(f"fleetgwctl campaign create {' '.join(args)}: "
                               f"{r.returncode} {r.stdout} {r.stderr}")
        return json.loads(r.stdout)["campaign"]

    def status(self, cid, nodes=False):
        args = ["campaign", "status", cid] + (["--nodes"] if nodes else [])
        return self.ctl_json(*args)["campaign"]

    def wait_final(self, cid, timeout=600):
        def final():
            self.gwd.check_alive()
            st = self.status(cid)
            return st if st["state"] in ("completed", "halted", "aborted", "failed") else None
        return wait_for(final, timeout, f"campaign {cid} to reach a final state", interval=1)

    def upstream_status(self, cid):
        """The last status document the cloud received for the campaign (retained)."""
        last = None
        for topic, payload in self.status_sub.messages():
            if topic == f"{PREFIX}/ota/campaigns/{cid}/status":
                last = json.loads(payload)
        return last

    def gwd_lines(self, pattern):
        rx = re.compile(pattern)
        return [ln for ln in self.gwd.output().splitlines() if rx.search(ln)]


class OtaSite(OtaGateway):
    """OtaGateway for fleet-sim nodes: test-time signing keys and images (ota_common.Images),
    classes "sim" and "other", v1 as the reference image, and fleet-sim runs with flash
    files. extra_signers, extra_classes and extra_refs add other devices to the site (the
    demo's QEMU node: the build's signing key, its class and its factory image)."""

    def __init__(self, env, edge_conf=(), edge_acl=(), extra_signers=(), extra_classes=(),
                 extra_refs=()):
        self.images = im = Images(env)
        other = env.path("other.pub.pem")
        super().__init__(env, edge_conf=edge_conf, edge_acl=edge_acl,
                         signer_pubs=(im.pub, other) + tuple(extra_signers), classes=[
            {"name": CLASS, "slot_size": SLOT, "signers": [signer_id(im.pub)],
             "min_security_counter": 2},
            {"name": "other", "slot_size": SLOT, "signers": [signer_id(other)],
             "cid": "6b1ee3a2-0c6a-4d57-9f0f-9d0c2a3e4b51"},
        ] + list(extra_classes), reference_images=(im.v1,) + tuple(extra_refs))
        j = env.path
        self.key_dir = j("iak")
        self.pub_dir = j("iak-pub")
        self.cert_dir = j("node-certs")
        self.state_dir = j("node-state")
        for d in (self.key_dir, self.pub_dir, self.cert_dir, self.state_dir):
            os.makedirs(d, exist_ok=True)
        self.sim_runs = 0

    def nodes(self, prefix, n, enroll=True):
        r = self.env.run([program("fleet-sim"), "--iak-dir", self.key_dir, "--nodes", str(n),
                          "--id-prefix", prefix, "--export-pub", self.pub_dir], check=True)
        ids = [line.split()[1] for line in r.stdout.splitlines() if line.strip()]
        node_certs(self.edge_ca, self.cert_dir, ids)
        for node_id in ids if enroll else ():
            a = self.ctl("node", "add", "--pub", os.path.join(self.pub_dir, f"{node_id}.pem"),
                         "--class", CLASS)
            if a.returncode != 0:
                raise HarnessError(f"fleetgwctl node add {node_id}: {a.stderr}")
        return ids

    def fleet_sim(self, prefix, n, faults=(), extra=()):
        self.sim_runs += 1
        argv = [program("fleet-sim"), "--broker", f"127.0.0.1:{self.edge.port}",
                "--nodes", str(n), "--cafile", self.edge_ca.cert_path, "--cert-dir",
                self.cert_dir, "--server-name", "localhost", "--rate", "0.2", "--count", "0",
                "--id-prefix", prefix, "--iak-dir", self.key_dir, "--image", self.images.v1,
                "--boot-key", self.images.pub, "--state-dir", self.state_dir,
                "--attest-wait-ms", "1000", "--max-attempts", "0"]
        for f in faults:
            argv += ["--fault", f]
        return self.env.spawn(f"fleet-sim-{prefix.rstrip('-')}-{self.sim_runs}",
                              argv + list(extra))


def sim_summary(output):
    """fleet-sim's per-node OTA lines: {node id: {state, reason, running, bytes_in, ...}}."""
    nodes = {}
    for line in output.splitlines():
        m = re.match(r"fleet-sim: node (\S+) ota (.*)$", line)
        if not m:
            continue
        kv = {}
        for part in m.group(2).split():
            if "=" in part:
                k, _, v = part.partition("=")
                kv[k] = v
        kv["test_mode"] = "(test mode)" in line or "test mode" in m.group(2)
        nodes[m.group(1)] = kv
    return nodes


def run_ctl(site, *args):
    return subprocess.run([program("fleetgwctl"), "--socket", site.control_socket, *args],
                          capture_output=True, text=True, timeout=60)
