#!/usr/bin/python3
"""fleet-sim (agents/core + agents/ports/posix) against a REAL mosquitto over mutual TLS.

Proves, with a throwaway CA made at test time and one certificate per node (CN = node id):
  1. 5 nodes each publish K telemetry messages (QoS 1); a mosquitto_sub subscriber with its
     own client certificate receives exactly 5*K of them, per node in sequence order 0..K-1,
     and fleet-sim reports every message acknowledged.
  2. A node whose certificate comes from another CA is refused by the broker (fleet-sim
     fails, nothing of it arrives).
  3. A node that does not trust the broker's CA, or expects another host name, refuses the
     broker (the agent's TLS verification and host-name check are real).
  4. A node publishing outside its ACL (fleet/<other node>/...) gets nothing through.
  5. A running node answers a command: fleet/<id>/down/ping -> fleet/<id>/up/pong (same
     payload), end to end through the broker.
  6. Nodes survive a broker restart: they reconnect with back-off (driven by their own
     clock), resend what was not acknowledged, and still get every message acknowledged.

Also the helpers (node certificates, fleet-sim runs, subscriber parsing) used by
test_fleet_sim_scale.py and bench_fleet_sim.py.
"""
import os
import re
import shutil
import time

import cbor2
import subprocess
import sys

from fleetgw_harness import Env, HarnessError, expect, program, require, wait_for

SUMMARY_RE = re.compile(r"^fleet-sim: nodes=(\d+) connected=(\d+) sent=(\d+) acked=(\d+) "
                        r"failed=(\d+) .*$", re.M)


def node_certs(ca, cert_dir, ids):
    """Certificate + key per node id, named <id>.crt / <id>.key in cert_dir (CN = id)."""
    os.makedirs(cert_dir, exist_ok=True)
    for node_id in ids:
        crt, key = ca.issue(node_id)
        shutil.move(crt, os.path.join(cert_dir, f"{node_id}.crt"))
        shutil.move(key, os.path.join(cert_dir, f"{node_id}.key"))
    return cert_dir


def run_sim(env, broker, cafile, cert_dir, nodes, count, rate, prefix="node-",
            extra=(), name="fleet-sim", timeout=1500):
    """Runs fleet-sim to completion; returns (returncode, output, summary dict or None)."""
    argv = [program("fleet-sim"), "--broker", f"127.0.0.1:{broker.port}",
            "--nodes", str(nodes), "--cafile", cafile, "--cert-dir", cert_dir,
            "--rate", str(rate), "--count", str(count), "--id-prefix", prefix,
            "--server-name", "localhost"] + list(extra)
    print(f"running: {' '.join(argv)}", flush=True)
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=env.dir)
    out = r.stdout + r.stderr
    with open(env.path(f"{name}.log"), "a") as f:
        f.write(out)
    print(out[-4000:], flush=True)
    m = SUMMARY_RE.search(r.stdout)
    summary = None
    if m:
        summary = dict(zip(("nodes", "connected", "sent", "acked", "failed"),
                           (int(x) for x in m.groups())))
        for kv in m.group(0).split()[1:]:
            k, _, v = kv.partition("=")
            summary.setdefault(k, v)
    return r.returncode, out, summary


class Subscriber:
    """mosquitto_sub with a client certificate on fleet/#, one line per message."""

    def __init__(self, env, broker, cert, client_id="monitor-sub", topic="fleet/#"):
        sub = require("mosquitto_sub")
        stdbuf = require("stdbuf")
        self.proc = env.spawn("subscriber", [stdbuf, "-oL", sub] + broker.client_args(cert) + [
            "-i", client_id, "-t", topic, "-q", "1", "-F", "MSG %t %x"])
        broker.wait_subscribed("monitor")

    def messages(self):
        msgs = []
        for line in self.proc.output().splitlines():
            if line.startswith("MSG "):
                parts = line.split(" ")
                msgs.append((parts[1], bytes.fromhex(parts[2]) if len(parts) > 2 else b""))
        return msgs

    def barrier(self, env, broker, cert, tag):
        """Publishes a sentinel after everything else and waits for it: every message the
        broker accepted before it has been delivered to this subscriber by then."""
        pub = require("mosquitto_pub")
        topic = f"fleet/sentinel/{tag}"
        env.run([pub] + broker.client_args(cert) + ["-t", topic, "-m", tag, "-q", "1"],
                check=True)
        wait_for(lambda: self.proc.check_alive() or
                 any(t == topic for t, _ in self.messages()), 60,
                 f"sentinel {tag} at the subscriber")


def telemetry_by_node(msgs):
    """{node id: [sequence numbers in arrival order]} from fleet/<id>/up/telemetry, whose
    payload must be a protocol telemetry message (docs/protocol.md 3.9):
    [9, seq, timestamp_ms, bytes(CBOR {"v": sample})]."""
    per = {}
    now_ms = int(time.time() * 1000)
    for topic, payload in msgs:
        m = re.fullmatch(r"fleet/([^/]+)/up/telemetry", topic)
        if not m:
            continue
        msg = cbor2.loads(payload)
        if (not isinstance(msg, list) or len(msg) != 4 or msg[0] != 9 or
                not isinstance(msg[1], int) or not isinstance(msg[3], bytes)):
            raise AssertionError(f"bad telemetry message on {topic}: {payload.hex()}")
        _type, seq, ts, body = msg
        if not (now_ms - 3600_000 < ts <= now_ms + 60_000):
            raise AssertionError(f"telemetry timestamp {ts} is not the wall clock ({now_ms})")
        sample = cbor2.loads(body)
        if set(sample) != {"v"} or not isinstance(sample["v"], int):
            raise AssertionError(f"bad telemetry payload on {topic}: {body.hex()}")
        per.setdefault(m.group(1), []).append(seq)
    return per


def main():
    nodes, count = 5, 20
    with Env("agent-mqtt") as env:
        ca = env.ca("edge-ca")
        broker = env.start_mosquitto(ca, superusers=("monitor",), unix_socket=False,
                                     persistence=False)
        monitor = ca.issue("monitor")
        cert_dir = node_certs(ca, env.path("certs"), [f"node-{i}" for i in range(nodes)])
        sub = Subscriber(env, broker, monitor)

        # 1. five nodes, K messages each, over TLS
        rc, out, s = run_sim(env, broker, ca.cert_path, cert_dir, nodes, count, rate=50)
        expect(rc == 0, "fleet-sim with 5 nodes exits 0")
        expect(s is not None, "fleet-sim prints its summary line")
        expect(s["connected"] == nodes and s["failed"] == 0,
               f"all {nodes} nodes connected, none failed ({s})")
        expect(s["sent"] == nodes * count and s["acked"] == nodes * count,
               f"{nodes * count} messages sent and acknowledged by the broker")
        expect(float(s["rss_per_node_kib"]) > 0 and int(s["sizeof_node"]) > 0,
               f"memory per node reported: rss/node {s['rss_per_node_kib']} KiB, "
               f"heap/node {s['heap_per_node_kib']} KiB, sizeof(node) {s['sizeof_node']} B")

        # 4. a node publishing outside its ACL: valid cert for node-evil-0, topic of node-0
        evil_dir = node_certs(ca, env.path("certs-evil"), ["node-evil-0"])
        rc, out, s = run_sim(env, broker, ca.cert_path, evil_dir, 1, count, rate=100,
                             prefix="node-evil-",
                             extra=["--telemetry-topic", "fleet/node-0/up/telemetry"],
                             name="fleet-sim-evil")
        expect(rc == 0 and s["connected"] == 1,
               "the out-of-ACL node connects (its certificate is valid) and its publishes are "
               "acknowledged (MQTT 3.1.1 brokers drop denied publishes silently)")

        sub.barrier(env, broker, monitor, "after-runs")
        msgs = sub.messages()
        per = telemetry_by_node(msgs)
        total = sum(len(v) for v in per.values())
        expect(sorted(per) == sorted(f"node-{i}" for i in range(nodes)),
               f"telemetry arrived from exactly the {nodes} nodes ({sorted(per)})")
        expect(total == nodes * count,
               f"the subscriber received exactly {nodes}*{count} = {nodes * count} messages "
               f"(got {total}); nothing from the out-of-ACL node reached fleet/node-0")
        for node_id, seqs in sorted(per.items()):
            expect(seqs == list(range(count)), f"{node_id}: sequence numbers 0..{count - 1} "
                                               f"in order")
        expect(not any("node-evil" in t for t, _ in msgs),
               "no topic of the out-of-ACL node appeared either")

        # 5. a command to a running node: down/ping is answered on up/pong
        cmd_dir = node_certs(ca, env.path("certs-cmd"), ["node-cmd-0"])
        sim = env.spawn("fleet-sim-cmd", [
            program("fleet-sim"), "--broker", f"127.0.0.1:{broker.port}", "--nodes", "1",
            "--cafile", ca.cert_path, "--cert-dir", cmd_dir, "--rate", "20", "--count", "100",
            "--id-prefix", "node-cmd-", "--server-name", "localhost"])
        broker.wait_subscribed("node-cmd-0", count=3)
        env.run([require("mosquitto_pub")] + broker.client_args(monitor) + [
            "-t", "fleet/node-cmd-0/down/ping", "-m", "are-you-there", "-q", "1"], check=True)
        wait_for(lambda: sub.proc.check_alive() or
                 ("fleet/node-cmd-0/up/pong", b"are-you-there") in sub.messages(), 60,
                 "the pong of node-cmd-0")
        expect(True, "node-cmd-0 answered fleet/node-cmd-0/down/ping on up/pong with the "
                     "same payload")
        sim.popen.wait(timeout=600)
        expect(sim.popen.returncode == 0, "the commanded node still completed its telemetry")

        # 2. a node whose certificate comes from another CA is refused by the broker
        rogue = env.ca("rogue-ca")
        rogue_dir = env.path("certs-rogue")
        node_certs(rogue, rogue_dir, ["node-rogue-0"])
        rc, out, s = run_sim(env, broker, ca.cert_path, rogue_dir, 1, 3, rate=100,
                             prefix="node-rogue-", extra=["--max-attempts", "2"],
                             name="fleet-sim-rogue")
        expect(rc != 0, "fleet-sim exits non-zero when its node is refused")
        expect(s is not None and s["connected"] == 0 and s["failed"] == 1 and s["acked"] == 0,
               f"the node with a foreign-CA certificate never got in ({s})")
        expect("node node-rogue-0 failed" in out, "fleet-sim names the failed node")

        # 3. the agent refuses a broker it cannot verify: wrong CA, wrong host name
        rc, out, s = run_sim(env, broker, rogue.cert_path, cert_dir, 1, 3, rate=100,
                             extra=["--max-attempts", "1"], name="fleet-sim-wrong-ca")
        expect(rc != 0 and s["connected"] == 0 and "TLS failed" in out,
               "a node that does not trust the broker's CA refuses the connection")
        rc, out, s = run_sim(env, broker, ca.cert_path, cert_dir, 1, 3, rate=100,
                             extra=["--max-attempts", "1", "--server-name", "wrong.example"],
                             name="fleet-sim-wrong-name")
        expect(rc != 0 and s["connected"] == 0 and "TLS failed" in out,
               "a node expecting another broker host name refuses the connection")
        expect("CN mismatch" in out or "name" in out.lower(),
               "the refusal names the host-name mismatch")

        sub.barrier(env, broker, monitor, "after-refusals")
        per2 = telemetry_by_node(sub.messages())
        per2.pop("node-cmd-0", None)
        expect(sum(len(v) for v in per2.values()) == nodes * count,
               "no telemetry arrived from refused nodes")
        sub.proc.check_alive()

        # 6. broker restart in the middle of a run
        rs_dir = node_certs(ca, env.path("certs-restart"), ["node-rs-0", "node-rs-1"])
        sim = env.spawn("fleet-sim-restart", [
            program("fleet-sim"), "--broker", f"127.0.0.1:{broker.port}", "--nodes", "2",
            "--cafile", ca.cert_path, "--cert-dir", rs_dir, "--rate", "10", "--count", "40",
            "--id-prefix", "node-rs-", "--server-name", "localhost", "--max-attempts", "30"])
        wait_for(lambda: sim.check_alive() or
                 len(telemetry_by_node(sub.messages()).get("node-rs-1", [])) >= 5, 60,
                 "the first messages of node-rs-1")
        broker.restart()
        print("broker restarted", flush=True)
        sim.popen.wait(timeout=600)
        out = sim.output()
        m = SUMMARY_RE.search(out)
        expect(sim.popen.returncode == 0 and m is not None,
               f"fleet-sim completed across the broker restart: {m.group(0) if m else out}")
        expect(int(m.group(4)) == 80 and int(m.group(5)) == 0,
               "all 2*40 messages acknowledged, no node failed")
        attempts = re.search(r"failed_attempts=(\d+)", m.group(0))
        expect(attempts is not None and int(attempts.group(1)) >= 2,
               f"both nodes lost the connection and reconnected ({attempts.group(0)})")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (AssertionError, HarnessError) as e:
        print(f"FAIL: {e}", flush=True)
        sys.exit(1)
