"""Benchmark: does one node flooding evidence delay another node's telemetry (issue 21)?

A real fleetgwd (attestation required) with real brokers and TPM (daemon_common), two
enrolled nodes made trusted by real PSA tokens (attest_common): node A floods 1,000 copies of
its evidence (mosquitto_pub --repeat: the QoS 1 resend storm of a broken agent), node B sends
telemetry at RATE msg/s through one mosquitto_pub -l. Measured: the latency of B's messages,
from the write to B's publisher to the arrival at a subscriber on the cloud broker
(mosquitto_sub %U), in three phases per round, their order rotating over ROUNDS rounds so
machine load falls on all: "quiet" (no flood), "evidence" (B's messages sent from the flood's
start until fleetgwd has counted all 1,000) and the control "noise" (the same 1,000 messages
on fleet/<A>/noise, which fleetgwd does not subscribe to: the publisher's and the edge
broker's load without fleetgwd's work).

The reference is the group-commit interval, COMMIT_DELAY_US in daemon/src/daemon.h (read from
the source): printed is the delay the flood adds at p50, p99 and max, and that delay / the
interval (the issue's goal: at most 1.0). Not a test: no figure here fails the run (house
rule, no wall-clock limits); the checks that can fail are the flood's accounting (every flood
message counted evidence_unsolicited or rate_limited, none judged, no spool row: relayed_up
grows by B's messages only), which integration.daemon_evidence asserts as well.

Limits are the harness's (per_node_rate 1000, burst 1000), so the whole flood reaches the
attestation gate rather than the rate limiter: the gate's worst case.
FLEETGW_BENCH_ROUNDS sets the number of rounds (default 10)."""

import os
import re
import statistics
import subprocess
import sys
import threading
import time

import cbor2

from fleetgw_harness import Env, HarnessError, expect, require, wait_for

from attest_common import MEAS_GOOD, Node, token, write_reference
from daemon_common import PREFIX, Site, pct

FLOOD = 1000
RATE = 200                # B's telemetry, messages per second
QUIET_S = 1.5             # length of a phase without flood
ROUNDS = int(os.environ.get("FLEETGW_BENCH_ROUNDS") or 10)
DAEMON_H = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "daemon", "src",
                        "daemon.h")


def commit_delay_us():
    """COMMIT_DELAY_US from daemon/src/daemon.h (the group-commit interval)."""
    try:
        with open(DAEMON_H) as f:
            m = re.search(r"#define\s+COMMIT_DELAY_US\s+(\d+)", f.read())
    except OSError as e:
        raise HarnessError(f"cannot read {DAEMON_H} for COMMIT_DELAY_US: {e}") from e
    if not m:
        raise HarnessError(f"{DAEMON_H}: no '#define COMMIT_DELAY_US <number>' (the reference "
                           "this bench compares with)")
    return int(m.group(1))


class Telemetry:
    """Node B's paced publisher: one mosquitto_pub -l; each line is '<seq> <send time>'."""

    def __init__(self, site, node):
        self.proc = site.env.spawn(f"telemetry-{node.id[:8]}", [require("mosquitto_pub")] +
                                   site.edge.client_args(node.cert) +
                                   ["-i", f"tel-{node.id}", "-q", "1", "-t",
                                    f"fleet/{node.id}/up/telemetry", "-l"],
                                   stdin=subprocess.PIPE)
        self.sent = {}  # seq -> send time (time.time())
        self.seq = 0

    def run(self, stop, max_s):
        """Sends at RATE until stop is set (or max_s passed); returns [seq] sent."""
        seqs = []
        t0 = time.time()
        for i in range(int(max_s * RATE)):
            if stop.is_set():
                break
            self.seq += 1
            t = time.time()
            self.proc.popen.stdin.write(f"{self.seq} {t:.6f}\n".encode())
            self.proc.popen.stdin.flush()
            self.sent[self.seq] = t
            seqs.append(self.seq)
            d = t0 + (i + 1) / RATE - time.time()
            if d > 0:
                time.sleep(d)
        return seqs

    def close(self):
        self.proc.popen.stdin.close()
        self.proc.popen.wait(timeout=120)


def main():
    interval_ms = commit_delay_us() / 1000.0
    with Env("bench-evidence-flood") as env:
        site = Site(env, nodes=())
        ref = write_reference(env.path("reference.json"))
        attestation = {"required": True, "reference_file": ref, "nonce_ttl_s": 30,
                       "interval_s": 3600}
        site.start_gwd(attestation=attestation)
        site.wait_gwd_connected()

        def count(name):
            return site.counters().get(name, 0)

        # Both nodes enrolled and trusted on real tokens.
        a, b = Node(site, nonce_ttl_s=30), Node(site, nonce_ttl_s=30)
        toks = {}
        for i, n in enumerate((a, b)):
            r = site.ctl("node", "add", "--pub-hex", n.point.hex(), "--class", "sensor")
            expect(r.returncode == 0, f"node {n.id} enrolled ({r.stderr.strip()})")
            n.status()
            toks[n.id] = token(n.key, n.point, n.wait_challenge(1), MEAS_GOOD)
            n.evidence(toks[n.id])
            wait_for(lambda: count("attest_trusted") == i + 1, 30, f"node {n.id} trusted")
        flood_file = env.path("flood.cbor")
        with open(flood_file, "wb") as f:
            f.write(cbor2.dumps([2, toks[a.id]]))  # a copy of an answer already judged

        # B's telemetry upstream, with the cloud broker's arrival time.
        sub = env.spawn("latency-sub", [require("mosquitto_sub")] +
                        site.cloud.client_args(site.operator) +
                        ["-i", "latency-sub", "-q", "1", "-t", f"{PREFIX}/nodes/{b.id}/telemetry",
                         "-F", "%U %p"])
        site.cloud.wait_subscribed("operator")
        tel = Telemetry(site, b)

        def arrivals():
            out = {}
            for line in sub.output().splitlines():
                parts = line.split(" ")
                if len(parts) == 3:
                    out[int(parts[1])] = float(parts[0])
            return out

        def settle(seqs):
            def arrived():
                got = arrivals()
                return all(s in got for s in seqs)
            wait_for(arrived, 120, f"B's {len(seqs)} messages upstream")
            wait_for(lambda: site.spooled() == 0, 60, "the spool drained")

        def quiet_phase():
            sent = tel.run(threading.Event(), QUIET_S)
            return sent, {"during": sent}

        def flood_phase(r, kind):
            """B sends while A publishes FLOOD messages: its evidence (kind "evidence") or, as
            the control, the same bytes on a topic fleetgwd does not subscribe to (kind
            "noise": the publisher's and the edge broker's work without fleetgwd's). Returns
            (B's seqs, {"during": B's seqs sent from the flood's start until fleetgwd counted
            all of it (evidence) or the publisher finished (noise), ...})."""
            before = site.counters()
            stop = threading.Event()
            box = {}
            sender = threading.Thread(target=lambda: box.setdefault("seqs", tel.run(stop, 120)))
            sender.start()
            time.sleep(0.1)  # B's stream is running before the flood starts
            t_start = time.time()
            topic = f"fleet/{a.id}/attest/evidence" if kind == "evidence" else f"fleet/{a.id}/noise"
            flood = env.spawn(f"{kind}-{r}", [require("mosquitto_pub")] +
                              site.edge.client_args(a.cert) +
                              ["-i", f"flood-{a.id}", "-q", "1", "-t", topic, "-f", flood_file,
                               "--repeat", str(FLOOD)]).popen
            flood.wait(timeout=120)
            t_pub = time.time()
            if kind == "evidence":
                keys = ("evidence_unsolicited", "rate_limited")
                wait_for(lambda: sum(count(k) - before.get(k, 0) for k in keys) >= FLOOD, 60,
                         "fleetgwd to count the whole flood", interval=0.02)
            t_end = time.time()
            time.sleep(0.1)
            stop.set()
            sender.join()
            expect(flood.returncode == 0, f"round {r + 1}: {FLOOD} {kind} messages published")
            seqs = [s for s in box["seqs"] if t_start <= tel.sent[s] <= t_end]
            return box["seqs"], {"during": seqs, "publish_s": t_pub - t_start, "t_start": t_start,
                                 "handled_s": t_end - t_start, "before": before}

        phases = ("quiet", "noise", "evidence")
        lat = {k: [] for k in phases}          # pooled latencies, ms
        rounds = {k: [] for k in phases}       # per round: (p50, p99, max)
        floods = []
        before_all = site.counters()
        settle(tel.run(threading.Event(), 0.5))  # warm-up: B's publisher connected, not measured
        for r in range(ROUNDS):
            order = phases[r % 3:] + phases[:r % 3]
            line = []
            for phase in order:
                sent, info = quiet_phase() if phase == "quiet" else flood_phase(r, phase)
                settle(sent)
                got = arrivals()
                v = [(got[s] - tel.sent[s]) * 1000 for s in info["during"]]
                expect(len(v) > 0, f"round {r + 1}: B sent during the {phase} phase")
                lat[phase] += v
                rounds[phase].append((pct(v, 50), pct(v, 99), max(v)))
                desc = f"{phase} n={len(v)} p50 {pct(v, 50):.2f} p99 {pct(v, 99):.2f} max " \
                       f"{max(v):.2f} ms"
                if phase == "evidence":
                    after = site.counters()
                    d = {k: after.get(k, 0) - info["before"].get(k, 0)
                         for k in ("evidence_unsolicited", "rate_limited", "attest_trusted",
                                   "attest_quarantined", "relayed_up")}
                    expect(d["evidence_unsolicited"] + d["rate_limited"] == FLOOD and
                           d["attest_trusted"] == 0 and d["attest_quarantined"] == 0 and
                           d["relayed_up"] == len(sent),
                           f"round {r + 1}: all {FLOOD} counted ({d['evidence_unsolicited']} "
                           f"unsolicited, {d['rate_limited']} rate_limited), none judged, "
                           f"relayed_up grew by B's {len(sent)} messages only")
                    floods.append(info)
                    worst = max(info["during"], key=lambda s: got[s] - tel.sent[s])
                    desc += (f" (flood handled in {info['handled_s'] * 1000:.0f} ms; the worst "
                             f"sent {(tel.sent[worst] - info['t_start']) * 1000:.0f} ms into it)")
                line.append(desc)
            print(f"round {r + 1}: " + "; ".join(line), flush=True)
        tel.close()
        settle(list(tel.sent))
        after_all = site.counters()
        expect(after_all.get("relayed_up", 0) - before_all.get("relayed_up", 0) == len(tel.sent),
               f"over the whole run relayed_up grew by B's {len(tel.sent)} messages only")
        expect(site.node_json(a.id)["verdict"] == "trusted", "A is still trusted after the floods")

        print("\n== bench_evidence_flood (same machine, same run) ==")
        print(f"reference   group-commit interval COMMIT_DELAY_US = {interval_ms:.1f} ms "
              f"(daemon/src/daemon.h)")
        print(f"flood       {FLOOD} evidence messages of node A, {ROUNDS} times: published in "
              f"median {statistics.median(f['publish_s'] for f in floods) * 1000:.0f} ms, "
              f"all counted by fleetgwd in median "
              f"{statistics.median(f['handled_s'] for f in floods) * 1000:.0f} ms "
              f"(range {min(f['handled_s'] for f in floods) * 1000:.0f}-"
              f"{max(f['handled_s'] for f in floods) * 1000:.0f})")
        print(f"control     'noise': the same {FLOOD} messages on fleet/<A>/noise, which fleetgwd "
              f"does not subscribe to (publisher and edge broker load without fleetgwd's work)")
        print(f"telemetry   node B at {RATE} msg/s, edge publish -> cloud receipt, ms:")
        print(f"  {'phase':9s} {'n':>5s} {'p50':>8s} {'p99':>8s} {'max':>8s}   median of the "
              f"rounds' p99 / max")
        for k in phases:
            v = lat[k]
            print(f"  {k:9s} {len(v):5d} {pct(v, 50):8.2f} {pct(v, 99):8.2f} {max(v):8.2f}   "
                  f"{statistics.median(x[1] for x in rounds[k]):8.2f} / "
                  f"{statistics.median(x[2] for x in rounds[k]):8.2f}")
        for base in ("quiet", "noise"):
            parts = []
            for name, p in (("p50", 50), ("p99", 99), ("max", 100)):
                added = pct(lat["evidence"], p) - pct(lat[base], p)
                parts.append(f"{name} {added:+.2f} ms ({added / interval_ms:+.2f}x)")
            med = [e[1] - q[1] for e, q in zip(rounds["evidence"], rounds[base])]
            print(f"added by the evidence flood vs {base}: " + ", ".join(parts) +
                  f"; per round p99 difference median {statistics.median(med):+.2f} ms "
                  f"({statistics.median(med) / interval_ms:+.2f}x), range "
                  f"{min(med):+.2f} to {max(med):+.2f} ms   (x: of the group-commit interval; "
                  f"goal <= 1.0)")
        rc = site.gwd.stop()
        expect(rc == 0, "fleetgwd stopped cleanly")
    return 0


if __name__ == "__main__":
    sys.exit(main())
