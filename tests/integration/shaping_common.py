"""Issue 17's site: fleetgwd in front of a test cloud broker that behaves like AWS IoT Core's
per-connection publish ceiling (tests/plugins/publish_ceiling.c: above CEILING publishes in
any 1 s window a publish is denied and the client disconnected), fleet-sim nodes on the edge
broker, and a cloud subscriber that keeps every message with its arrival time. Batches are
split by the shipped decoder (fleetgw-unbatch --length-prefixed), never by test code, so a
test fails if the decoder or the format breaks. Used by integration.uplink_shaping and
bench_uplink_shaping."""

import base64
import json
import os
import struct
import subprocess
import sys
import time

import cbor2

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from daemon_common import GW_CN, PREFIX, Site  # noqa: E402
from fleetgw_harness import (HarnessError, expect, program, raise_nofile, require,  # noqa: E402
                             wait_for)
from test_agent_mqtt import node_certs  # noqa: E402

CEILING = 100  # AWS IoT Core: publishes per second per connection


class ShapeSite(Site):
    """daemon_common.Site with the ceiling on the cloud broker and an edge broker sized for
    `nodes` connections."""

    def __init__(self, env, nodes):
        raise_nofile(2 * nodes + 512, f"{nodes} nodes")
        self.cloud_kw = {"publish_ceiling": CEILING}
        super().__init__(env, nodes=())
        self.edge.stop()
        self.edge = self.start_edge_like("edge-shape", max_connections=nodes)
        self.ids = [f"s-{i}" for i in range(nodes)]
        self.cert_dir = node_certs(self.edge_ca, env.path("node-certs"), self.ids)
        self.sims = 0

    def start_shaped(self, batch, **uplink):
        """fleetgwd with uplink.profile aws-iot-core (its ceiling 100/s, in-flight <= 100),
        batching on or off."""
        up = {"profile": "aws-iot-core", "batch": "on" if batch else "off"}
        up.update(uplink)
        self.start_gwd(uplink=up, spool={"drain_rate": 1000000, "max_inflight": 32})
        self.wait_gwd_connected()

    def status(self):
        return self.control({"cmd": "status"})

    def fleet_sim(self, nodes, seconds, rate=1.0):
        """fleet-sim: the first `nodes` ids, each sending `seconds * rate` telemetry messages
        at `rate` per second (QoS 1, acknowledged by the edge broker)."""
        self.sims += 1
        argv = [program("fleet-sim"), "--broker", f"127.0.0.1:{self.edge.port}",
                "--nodes", str(nodes), "--cafile", self.edge_ca.cert_path,
                "--cert-dir", self.cert_dir, "--server-name", "localhost",
                "--rate", str(rate), "--count", str(int(seconds * rate)), "--id-prefix", "s-",
                "--ramp-ms", "2", "--max-attempts", "10"]
        return self.env.spawn(f"fleet-sim-{self.sims}", argv)

    def wait_sim(self, sim, nodes, count, timeout):
        wait_for(lambda: sim.popen.poll() is not None, timeout, "fleet-sim to finish",
                 interval=1)
        expect(sim.popen.returncode == 0 and
               f"sent={nodes * count} acked={nodes * count} failed=0" in sim.output(),
               f"the edge broker acknowledged all {nodes * count} messages of {nodes} nodes "
               f"(fleet-sim exit {sim.popen.returncode})")

    def wait_drained(self, timeout):
        def drained():
            self.gwd.check_alive()
            return self.status()["uplink"]["backlog_messages"] == 0
        wait_for(drained, timeout, "fleetgwd's spool to drain upstream", interval=1)

    def ceiling_mark(self):
        """Where the ceiling plugin's log stands: ceiling_report(mark) sees what came after."""
        return len(self.cloud._ceiling_lines("kick")), len(self.cloud._ceiling_lines("max"))

    def ceiling_report(self, mark=(0, 0)):
        """The ceiling plugin's view of fleetgwd's connections since `mark`: its kicks and its
        busiest 1 s window (known once a connection ended: call after stopping fleetgwd)."""
        kicks = [k for k in self.cloud._ceiling_lines("kick")[mark[0]:] if k[0] == GW_CN]
        peaks = [n for c, n in self.cloud._ceiling_lines("max")[mark[1]:] if c == GW_CN]
        return kicks, max(peaks) if peaks else None


class CloudSink:
    """mosquitto_sub on the cloud broker for <prefix>/batch and <prefix>/nodes/#, each
    message with its arrival time (Unix ns)."""

    def __init__(self, site, name):
        sub, stdbuf = require("mosquitto_sub"), require("stdbuf")
        cert = site.cloud_ca.issue("observer")  # may read everything (daemon_common.Site)
        self.proc = site.env.spawn(f"sink-{name}", [stdbuf, "-oL", sub] +
                                   site.cloud.client_args(cert) +
                                   ["-i", f"sink-{name}", "-q", "1", "-t", f"{PREFIX}/batch",
                                    "-t", f"{PREFIX}/nodes/#", "-F", "MSG %U %t %x"])
        wait_for(lambda: self.proc.check_alive() or
                 sum(1 for c, _q, _t in site.cloud.subscriptions("observer")
                     if c == f"sink-{name}") >= 2, 20, f"sink-{name}'s subscriptions")
        self.env = site.env

    def raw(self):
        """[(arrival s, topic, payload)] in arrival order."""
        out = []
        for line in self.proc.output().splitlines():
            if line.startswith("MSG "):
                parts = line.split(" ")
                out.append((float(parts[1]), parts[2],
                            bytes.fromhex(parts[3]) if len(parts) > 3 else b""))
        return out

    def messages(self):
        """Every node message that arrived, batches split by fleetgw-unbatch: a list of dicts
        {node, topic, seq (gateway), batch (id or None), node_seq, ts_ms (the node's), t
        (arrival s)} in arrival order, and the batches as [(arrival s, id, entry count,
        bytes)]."""
        raw = self.raw()
        stream = bytearray()
        batch_t = []
        msgs, batches = [], []
        for t, topic, payload in raw:
            if topic == f"{PREFIX}/batch":
                stream += struct.pack(">I", len(payload)) + payload
                batch_t.append((t, len(payload)))
        lines = []
        if batch_t:
            path = self.env.path(f"batches-{time.monotonic_ns()}.bin")
            with open(path, "wb") as f:
                f.write(stream)
            r = subprocess.run([program("fleetgw-unbatch"), "--length-prefixed", "--prefix",
                                PREFIX, path], capture_output=True, text=True, timeout=600)
            if r.returncode != 0:
                raise HarnessError(f"fleetgw-unbatch refused a batch fleetgwd sent: "
                                   f"{r.stderr.strip()[:500]}")
            lines = [json.loads(x) for x in r.stdout.splitlines() if x.strip()]
            os.unlink(path)
        # fleetgw-unbatch prints the batches in input order, each batch's entries in order:
        # re-attach arrival times by walking batch ids.
        bi = -1
        for e in lines:
            if e["seq"] == e["batch"]:  # a batch's first entry (its id is its first seq)
                bi += 1
                batches.append([batch_t[bi][0], e["batch"], 0, batch_t[bi][1]])
            batches[bi][2] += 1
            msgs.append(_node_msg(e["node"], e["topic"], base64.b64decode(e["payload"]),
                                  e["seq"], e["batch"], batch_t[bi][0]))
        expect(bi + 1 == len(batch_t), f"fleetgw-unbatch split every batch "
                                       f"({bi + 1} of {len(batch_t)})")
        for t, topic, payload in raw:
            if topic.startswith(f"{PREFIX}/nodes/") and topic.endswith("/telemetry"):
                msgs.append(_node_msg(topic.split("/")[-2], topic, payload, None, None, t))
        msgs.sort(key=lambda m: m["t"])
        return msgs, [tuple(b) for b in batches]


def _node_msg(node, topic, payload, seq, batch, t):
    m = cbor2.loads(payload)
    if not (isinstance(m, list) and len(m) == 4 and m[0] == 9):
        raise HarnessError(f"{topic}: not a telemetry message: {payload[:16].hex()}")
    return {"node": node, "topic": topic, "seq": seq, "batch": batch, "node_seq": m[1],
            "ts_ms": m[2], "t": t}


def check_complete(msgs, ids, count):
    """Every node's sequence 0..count-1, in order once duplicates are set aside; returns the
    number of duplicates. A duplicate must be a redelivery: the same gateway seq in the same
    batch (a message is never in two different batches)."""
    per = {}
    where = {}
    dups = 0
    for m in msgs:
        if m["seq"] is not None:
            b = where.setdefault(m["seq"], m["batch"])
            if b != m["batch"]:
                raise HarnessError(f"gateway seq {m['seq']} ({m['node']} #{m['node_seq']}) is "
                                   f"in two batches: {b} and {m['batch']}")
        seqs = per.setdefault(m["node"], [])
        if m["node_seq"] in seqs:
            dups += 1
            continue
        seqs.append(m["node_seq"])
    bad = [(n, per.get(n, [])[:5]) for n in ids if per.get(n, []) != list(range(count))]
    expect(not bad, f"every one of {len(ids)} nodes' {count} messages arrived once and in "
                    f"order, duplicates aside ({len(bad)} wrong: {bad[:3]})")
    return dups


def pct(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]
