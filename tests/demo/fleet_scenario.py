"""The fleet scenario shared by `make demo` (tests/demo/demo.py) and
tests/integration/test_fleet_attest.py: a gateway with its identity in a TPM (swtpm +
tpm2-abrmd), a cloud broker (mutual TLS) and an edge broker (TLS for nodes, unix socket for
fleetgwd), fleetgwd with the attestation gate on and reference values taken from its OTA store
holding the firmware image the build signed, and fleet-sim nodes with their own IAKs that speak the real protocol.

Everything is started through the harness Env (torn down on exit). Helpers are reused from
tests/integration (daemon_common.Site, test_agent_mqtt.node_certs / run_sim / Subscriber)."""

import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
for p in (os.path.join(TESTS, "harness"), os.path.join(TESTS, "integration")):
    if p not in sys.path:
        sys.path.insert(0, p)

import cbor2  # noqa: E402
from cryptography.hazmat.primitives import serialization  # noqa: E402

from fleetgw_harness import (HarnessError, build_dir, fds_for_nodes, program, raise_nofile,  # noqa: E402
                             require, wait_for)
from daemon_common import GW_CN, HANDLE, PREFIX, Site  # noqa: E402
from test_agent_mqtt import Subscriber, node_certs  # noqa: E402

# (fleet-sim option, key-file prefix, label, what the gateway must answer)
BAD_KINDS = [
    ("--bad-measurement", "badmeas-", "bad measurement",
     "unknown measurement for software component 0 (NSPE)"),
    ("--forge", "forged-", "forged token", "token refused: bad signature"),
    ("--replay", "replay-", "replayed nonce", "token refused: nonce mismatch"),
]


# every reason fleetgwd has to drop a node message (docs/daemon.md, Counters)
DROP_COUNTERS = ("quarantined", "not_enrolled", "not_attested", "rate_limited", "too_large",
                 "spool_full", "expired", "bad_topic", "too_many_nodes", "reserved_topic",
                 "registry_error", "hold_expired", "hold_full")


def firmware_image():
    """The signed firmware image and its signing key as the build produced them
    (FLEETGW_FIRMWARE_DIR overrides BUILD/firmware, e.g. for a sanitizer build without
    firmware)."""
    fw = os.environ.get("FLEETGW_FIRMWARE_DIR") or os.path.join(build_dir(), "firmware")
    imgs = sorted(glob.glob(os.path.join(fw, "fleet-agent-*.signed.bin")))
    pub = os.path.join(fw, "signing-key.pub.pem")
    if not imgs or not os.path.exists(pub):
        raise HarnessError(f"no signed firmware image in {fw} (fleet-agent-*.signed.bin and "
                           "signing-key.pub.pem): build with the firmware (FLEETGW_FIRMWARE=ON)")
    return imgs[-1], pub


def ota_store(env, image, pub):
    """The gateway's OTA store holding the build's signed image: fleetgwd takes its reference
    values from there (attestation.image_dir, verified with the signing key). fleetgw-tool
    verifies the image too and gives the digest, signer and version the demo prints."""
    r = env.run([program("fleetgw-tool"), "image", "verify", "-k", pub, "--json", image])
    if r.returncode != 0:
        raise HarnessError(f"fleetgw-tool image verify {image}: {r.stdout}{r.stderr}")
    info = json.loads(r.stdout)
    ref = {"measurement": info["digest"], "signer_id": info["signer_keyhash"],
           "version": info["version"], "description": os.path.basename(image)}
    store = env.path("ota-store")
    os.makedirs(store, exist_ok=True)
    shutil.copyfile(image, os.path.join(store, os.path.basename(image)))
    return store, ref


class FleetSite(Site):
    """daemon_common.Site, but the gateway identity is made the way an operator makes it:
    `fleetgwctl identity init` (key created in the TPM at HANDLE) and `fleetgwctl identity csr`,
    signed by a throwaway cloud CA. A `monitor` certificate may read the cloud broker."""

    def __init__(self, env, edge_conf=(), edge_acl=(), nodes=None):  # noqa: super() replaced
        """edge_conf, edge_acl: extra mosquitto.conf and ACL lines for the edge broker (the
        ACL lines follow fleetgwd's superuser block, so a bare `topic` line is fleetgwd's);
        nodes: the node count the edge broker is configured for (open files, connections)."""
        self.env = env
        self.tpm = env.start_tpm()
        r = self.tpm.identity("init")
        if r.returncode != 0:
            raise HarnessError(f"fleetgwctl identity init failed ({r.returncode}): {r.stderr}")
        key = serialization.load_pem_public_key(r.stdout.encode())
        der = key.public_bytes(serialization.Encoding.DER,
                               serialization.PublicFormat.SubjectPublicKeyInfo)
        self.identity_fpr = hashlib.sha256(der).hexdigest()
        self.identity_handle = HANDLE
        csr = env.path("gw.csr")
        r = self.tpm.identity("csr", "--subject", f"/CN={GW_CN}", "--out", csr)
        if r.returncode != 0:
            raise HarnessError(f"fleetgwctl identity csr failed ({r.returncode}): {r.stderr}")
        self.cloud_ca = env.ca("cloud-ca")
        self.gw_cert = self.cloud_ca.sign_csr(csr, env.path("gw.crt"))
        self.cloud = env.start_mosquitto(self.cloud_ca, name="cloud", unix_socket=False,
                                         superusers=[GW_CN, "observer", "operator", "monitor"],
                                         **self.cloud_kw)
        self.operator = self.cloud_ca.issue("operator")
        self.edge_ca = env.ca("edge-ca")
        self.edge_pw = env.path("edge.passwd")
        secret = "edge-secret-" + os.urandom(6).hex()
        # A secret: fleetgwd refuses a password file its group or others may read.
        with open(os.open(env.path("edge.secret"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600),
                  "w") as f:
            f.write(secret + "\n")
        env.run([require("mosquitto_passwd"), "-b", "-c", self.edge_pw, "fleetgwd", secret],
                check=True)
        self.edge = self.start_edge_like("edge", edge_conf, edge_acl,
                                         max_connections=None if nodes is None else nodes + 16)
        self.node_certs = {}
        self.spool = env.path("spool.db")
        self.control_socket = env.path("control.sock")
        self.gwd = None
        self.gwd_runs = 0

    def ctl(self, *args):
        r = subprocess.run([program("fleetgwctl"), "--socket", self.control_socket, *args],
                           capture_output=True, text=True, timeout=60)
        return r

    def ctl_json(self, *args):
        r = self.ctl("--json", *args)
        if r.returncode != 0:
            raise HarnessError(f"fleetgwctl {' '.join(args)}: {r.returncode} {r.stderr}")
        return json.loads(r.stdout)


class Fleet:
    """fleet-sim node groups: keys in one directory, certificates (CN = the IAK-derived node
    id) from the edge CA, enrolled through fleetgwctl unless told otherwise."""

    def __init__(self, site, image):
        self.site = site
        self.image = image
        env = site.env
        self.key_dir = env.path("iak")
        self.pub_dir = env.path("iak-pub")
        self.cert_dir = env.path("node-certs")
        for d in (self.key_dir, self.pub_dir, self.cert_dir):
            os.makedirs(d, exist_ok=True)
        self.groups = []  # dicts: prefix, n, ids, extra, label, expect, enrolled

    def add_group(self, label, prefix, n, extra=(), enroll=True, expect=None, direct=False):
        """direct: enrolled by node_add requests on fleetgwd's control socket (what
        fleetgwctl node add sends), without a fleetgwctl process per node (thousands)."""
        env = self.site.env
        r = env.run([program("fleet-sim"), "--iak-dir", self.key_dir, "--nodes", str(n),
                     "--id-prefix", prefix, "--export-pub", self.pub_dir])
        if r.returncode != 0:
            raise HarnessError(f"fleet-sim --export-pub: {r.returncode} {r.stderr}")
        ids = [line.split()[1] for line in r.stdout.splitlines() if line.strip()]
        if len(ids) != n:
            raise HarnessError(f"fleet-sim --export-pub printed {len(ids)} ids, not {n}")
        node_certs(self.site.edge_ca, self.cert_dir, ids)
        if enroll and direct:
            for node_id in ids:
                with open(os.path.join(self.pub_dir, f"{node_id}.pem"), "rb") as f:
                    key = serialization.load_pem_public_key(f.read())
                point = key.public_bytes(serialization.Encoding.X962,
                                         serialization.PublicFormat.UncompressedPoint)
                self.site.control({"cmd": "node_add", "iak_pub": point.hex(),
                                   "device_class": "fleet-sim"})
        elif enroll:
            for node_id in ids:
                a = self.site.ctl("node", "add", "--pub", os.path.join(self.pub_dir,
                                                                        f"{node_id}.pem"),
                                  "--class", "fleet-sim")
                if a.returncode != 0:
                    raise HarnessError(f"fleetgwctl node add {node_id}: {a.stderr}")
        g = {"label": label, "prefix": prefix, "n": n, "ids": ids, "extra": list(extra),
             "enrolled": enroll, "expect": expect}
        self.groups.append(g)
        return g

    def start(self, count, rate, attest_wait_ms=3000):
        """Starts one fleet-sim per group, all at once; returns the processes."""
        procs = []
        for g in self.groups:
            argv = [program("fleet-sim"), "--broker", f"127.0.0.1:{self.site.edge.port}",
                    "--nodes", str(g["n"]), "--cafile", self.site.edge_ca.cert_path,
                    "--cert-dir", self.cert_dir, "--server-name", "localhost",
                    "--rate", str(rate), "--count", str(count), "--id-prefix", g["prefix"],
                    "--iak-dir", self.key_dir, "--image", self.image,
                    "--attest-wait-ms", str(attest_wait_ms)] + g["extra"]
            g["proc"] = self.site.env.spawn(f"fleet-sim-{g['prefix'].rstrip('-')}", argv)
            procs.append(g["proc"])
        return procs

    def wait(self, timeout=300):
        for g in self.groups:
            g["proc"].popen.wait(timeout=timeout)
            g["rc"] = g["proc"].popen.returncode
            out = g["proc"].output()
            g["summary"] = {}
            for line in out.splitlines():
                if line.startswith("fleet-sim: nodes="):
                    g["summary"] = dict(kv.partition("=")[::2] for kv in line.split()[1:])
            g["output"] = out


class CloudTelemetry:
    """A subscriber on the cloud broker counting the telemetry fleetgwd relayed upstream."""

    def __init__(self, site):
        cert = site.cloud_ca.issue("monitor")
        self.sub = Subscriber(site.env, site.cloud, cert, client_id="monitor-sub",
                              topic=f"{PREFIX}/nodes/+/telemetry")

    def per_node(self):
        """{node id: [telemetry sequence numbers in arrival order]}, and a list of problems
        (unmapped topic, undecodable payload)."""
        per, problems = {}, []
        for topic, payload in self.sub.messages():
            parts = topic.split("/")
            if len(parts) != 4 or parts[0] != PREFIX or parts[1] != "nodes" or \
                    parts[3] != "telemetry":
                problems.append(f"unexpected topic {topic}")
                continue
            try:
                msg = cbor2.loads(payload)
                assert isinstance(msg, list) and len(msg) == 4 and msg[0] == 9
            except Exception:  # noqa: BLE001 - reported
                problems.append(f"{topic}: not a telemetry message: {payload[:16].hex()}")
                continue
            per.setdefault(parts[2], []).append(msg[1])
        return per, problems

    def total(self):
        return len(self.sub.messages())


def check_node(seqs, count):
    """(distinct, duplicates, problem or None): sequence numbers 0..count-1, each new one in
    order (a QoS 1 duplicate re-arrival is counted, not an error)."""
    seen, dups, last = set(), 0, -1
    for s in seqs:
        if s in seen:
            dups += 1
            continue
        if s != last + 1:
            return len(seen), dups, f"sequence {s} after {last} (gap or out of order)"
        seen.add(s)
        last = s
    if len(seen) != count:
        return len(seen), dups, f"{len(seen)} of {count} messages arrived"
    return len(seen), dups, None


def run(env, good=20, count=20, rate=20.0, bad=True, unknown=True, log=print, good_extra=(),
        attest_wait_ms=3000, attestation=None, settle_s=120, sim_wait_s=300, during=None):
    """Runs the whole scenario; returns a result dict (judged by the caller).
    attest_wait_ms: fleet-sim's wait for a verdict before its telemetry (0: it sends at once,
    before its verdict: the gateway holds it, issue 15); attestation: more fleetgwd
    attestation keys (e.g. hold_per_node); settle_s, sim_wait_s: how long to wait for the
    gateway to settle and for fleet-sim to finish (a hang guard, not a measurement);
    during(site, fleet, res): called while fleet-sim runs (e.g. to restart the gateway)."""
    image, sign_pub = firmware_image()
    res = {"image": image}
    n_nodes = good + (len(BAD_KINDS) if bad else 0) + (1 if unknown else 0)
    site = FleetSite(env, nodes=n_nodes)
    raise_nofile(fds_for_nodes(n_nodes), f"fleet-sim for {n_nodes} nodes")
    res["identity"] = {"handle": site.identity_handle, "fingerprint": site.identity_fpr}
    store, ref = ota_store(env, image, sign_pub)
    res["reference"] = ref
    res["store"] = store
    site.start_gwd(attestation={"required": True, "image_dir": store, "signer_keys": sign_pub,
                                "nonce_ttl_s": 30, "interval_s": 3600, **(attestation or {})})
    site.wait_gwd_connected()
    cloud = CloudTelemetry(site)
    fleet = Fleet(site, image)
    fleet.add_group("good", "node-", good, extra=good_extra, expect="trusted")
    if bad:
        for opt, prefix, label, reason in BAD_KINDS:
            fleet.add_group(label, prefix, 1, extra=[opt], expect=reason)
    if unknown:
        fleet.add_group("unknown key", "unknown-", 1, enroll=False, expect="not enrolled")
    log(f"enrolled {sum(g['n'] for g in fleet.groups if g['enrolled'])} node(s) with "
        "fleetgwctl node add; starting fleet-sim")
    fleet.start(count, rate, attest_wait_ms=attest_wait_ms)
    if during is not None:
        during(site, fleet, res)
    fleet.wait(timeout=sim_wait_s)
    total_sent = sum(g["n"] for g in fleet.groups) * count

    def settled():
        """Every message fleet-sim got acknowledged by the edge broker has been handled by
        the gateway (relayed and acknowledged by the cloud, or dropped and counted), and the
        cloud subscriber has received what was relayed."""
        site.gwd.check_alive()
        c = site.counters()
        # What the cloud got plus what was dropped: a verdict's state message upstream is not
        # telemetry, and an unchanged verdict (a quarantined node that lingers and answers a
        # second challenge) is counted attest_quarantined without one, so relayed_up cannot
        # tell the telemetry apart. spooled() covers held rows too.
        handled = cloud.total() + sum(c.get(k, 0) for k in DROP_COUNTERS)
        return site.spooled() == 0 and handled >= total_sent

    try:
        wait_for(settled, settle_s, f"the gateway to relay or drop all {total_sent} messages")
    except HarnessError as e:
        res["wait_error"] = str(e)
    res["cloud"], res["cloud_problems"] = cloud.per_node()
    res["nodes"] = {n["id"]: n for n in site.ctl_json("nodes")["nodes"]}
    res["spool"] = site.ctl_json("spool")
    res["groups"] = fleet.groups
    res["count"] = count
    res["site"] = site
    res["unknown_show"] = {}
    for g in fleet.groups:
        if not g["enrolled"]:
            for node_id in g["ids"]:
                r = site.ctl("node", "show", node_id)
                res["unknown_show"][node_id] = (r.returncode, (r.stderr + r.stdout).strip())
    return res


def judge(res):
    """[(ok, line)] for every expectation, in the order they are printed."""
    out = []
    count = res["count"]
    cloud = res["cloud"]
    for g in res["groups"]:
        s = g.get("summary", {})
        sim_ok = g.get("rc") == 0 and s.get("acked") == str(g["n"] * count)
        out.append((sim_ok, f"fleet-sim {g['label']}: {g['n']} node(s), exit {g.get('rc')}, "
                            f"{s.get('acked', '?')}/{g['n'] * count} acked by the edge broker, "
                            f"challenges {s.get('challenges', '?')}, "
                            f"evidence {s.get('evidence', '?')}"))
        for node_id in g["ids"]:
            got = cloud.get(node_id, [])
            if g["expect"] == "trusted":
                n = res["nodes"].get(node_id, {})
                distinct, dups, problem = check_node(got, count)
                ok = n.get("verdict") == "trusted" and problem is None
                out.append((ok, f"  {node_id} {n.get('verdict', 'absent')} "
                                f"(fw {n.get('fw_version', '?')}): {distinct}/{count} upstream "
                                f"in order{f', {dups} duplicate(s)' if dups else ''}"
                                f"{'' if problem is None else ' -- ' + problem}"))
            elif g["enrolled"]:
                n = res["nodes"].get(node_id, {})
                ok = (n.get("verdict") == "quarantined" and n.get("reason") == g["expect"]
                      and not got)
                out.append((ok, f"  {node_id} {n.get('verdict', 'absent')}: "
                                f"{n.get('reason', '')}; sent {count}, upstream {len(got)}"))
            else:
                rc, text = res["unknown_show"].get(node_id, (None, ""))
                ok = rc == 1 and "not enrolled" in text and not got
                out.append((ok, f"  {node_id} unknown key ({text}); sent {count}, "
                                f"upstream {len(got)}"))
    c = res["spool"].get("counters", {})
    n_bad = sum(g["n"] for g in res["groups"] if g["enrolled"] and g["expect"] != "trusted")
    n_unknown = sum(g["n"] for g in res["groups"] if not g["enrolled"])
    n_good = sum(g["n"] for g in res["groups"] if g["expect"] == "trusted")
    exp = {"attest_trusted": n_good, "attest_quarantined": n_bad,
           "quarantined": n_bad * count, "not_enrolled": n_unknown * count, "not_attested": 0,
           "relayed_up_min": n_good * count + n_good + n_bad}
    ok = (c.get("attest_trusted", 0) == exp["attest_trusted"] and
          c.get("attest_quarantined", 0) == exp["attest_quarantined"] and
          c.get("quarantined", 0) == exp["quarantined"] and
          c.get("not_enrolled", 0) == exp["not_enrolled"] and
          c.get("not_attested", 0) == 0 and
          c.get("relayed_up", 0) >= exp["relayed_up_min"])
    out.append((ok, "gateway counters: " + ", ".join(
        f"{k} {c.get(k, 0)}" for k in ("relayed_up", "attest_trusted", "attest_quarantined",
                                       "quarantined", "not_enrolled", "not_attested", "resent"))))
    sp = res["spool"]
    out.append((sp.get("spooled_messages") == 0,
                f"spool: {sp.get('spooled_messages')} message(s) / {sp.get('spooled_bytes')} B "
                f"left, {sp.get('inflight')} in flight, edge {sp.get('edge')}, "
                f"cloud {sp.get('cloud')}"))
    out.append((not res["cloud_problems"] and "wait_error" not in res,
                "cloud side: " + (res.get("wait_error") or "; ".join(res["cloud_problems"][:3])
                                  or "every upstream message mapped to "
                                     f"{PREFIX}/nodes/<id>/telemetry")))
    return out
