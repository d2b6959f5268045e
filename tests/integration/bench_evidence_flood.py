"""Benchmark: does one node flooding evidence delay another node's telemetry (issue 21)?

A real fleetgwd (attestation required) with real brokers and TPM (daemon_common), two
enrolled nodes made trusted by real PSA tokens (attest_common): node A floods 1,000 copies of
its evidence (mosquitto_pub --repeat: the QoS 1 resend storm of a broken agent), node B sends
telemetry at RATE msg/s through one mosquitto_pub -l. Measured: the latency of B's messages,
from the write to B's publisher to the arrival at a subscriber on the cloud broker
(mosquitto_sub %U), for the messages sent while the flood is being handled (from the flood's
start until fleetgwd has counted all 1,000) against the messages sent with no flood. Phases
alternate (quiet, flood / flood, quiet, ...) for ROUNDS rounds so machine load falls on both.

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
from daemon_common import PREFIX, Site

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


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


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
            return tel.run(threading.Event(), QUIET_S), None

        def flood_phase(r):
            """B sends while A floods; returns (B's seqs sent in the flood window, stats)."""
            before = site.counters()
            stop = threading.Event()
            box = {}
            sender = threading.Thread(target=lambda: box.setdefault("seqs", tel.run(stop, 120)))
            sender.start()
            time.sleep(0.1)  # B's stream is running before the flood starts
            t_start = time.time()
            flood = env.spawn(f"flood-{r}", [require("mosquitto_pub")] +
                              site.edge.client_args(a.cert) +
                              ["-i", f"flood-{a.id}", "-q", "1", "-t",
                               f"fleet/{a.id}/attest/evidence", "-f", flood_file,
                               "--repeat", str(FLOOD)]).popen
            flood.wait(timeout=120)
            t_pub = time.time()
            keys = ("evidence_unsolicited", "rate_limited")
            wait_for(lambda: sum(count(k) - before.get(k, 0) for k in keys) >= FLOOD, 60,
                     "fleetgwd to count the whole flood", interval=0.02)
            t_end = time.time()
            time.sleep(0.1)
            stop.set()
            sender.join()
            expect(flood.returncode == 0, f"flood {r + 1}: {FLOOD} evidence messages published")
            seqs = [s for s in box["seqs"] if t_start <= tel.sent[s] <= t_end]
            return box["seqs"], {"during": seqs, "publish_s": t_pub - t_start,
                                 "handled_s": t_end - t_start, "before": before}

        before_all = site.counters()
        settle(tel.run(threading.Event(), 0.5))  # warm-up: B's publisher connected, not measured
        quiet_lat, flood_lat, per_round, floods = [], [], [], []
        for r in range(ROUNDS):
            order = ("quiet", "flood") if r % 2 == 0 else ("flood", "quiet")
            lat = {}
            for phase in order:
                sent, info = quiet_phase() if phase == "quiet" else flood_phase(r)
                settle(sent)
                got = arrivals()
                window = sent if info is None else info["during"]
                lat[phase] = [(got[s] - tel.sent[s]) * 1000 for s in window]
                if info is not None:
                    after = site.counters()
                    d = {k: after.get(k, 0) - info["before"].get(k, 0)
                         for k in ("evidence_unsolicited", "rate_limited", "attest_trusted",
                                   "attest_quarantined", "relayed_up")}
                    expect(d["evidence_unsolicited"] + d["rate_limited"] == FLOOD and
                           d["attest_trusted"] == 0 and d["attest_quarantined"] == 0 and
                           d["relayed_up"] == len(sent),
                           f"flood {r + 1}: all {FLOOD} counted ({d['evidence_unsolicited']} "
                           f"unsolicited, {d['rate_limited']} rate_limited), none judged, "
                           f"relayed_up grew by B's {len(sent)} messages only")
                    floods.append(info)
            expect(len(lat["flood"]) > 0, f"round {r + 1}: B sent during the flood")
            quiet_lat += lat["quiet"]
            flood_lat += lat["flood"]
            per_round.append((pct(lat["quiet"], 50), pct(lat["flood"], 50),
                              max(lat["quiet"]), max(lat["flood"]), len(lat["flood"])))
            print(f"round {r + 1}: quiet p50 {per_round[-1][0]:6.2f} ms max "
                  f"{per_round[-1][2]:6.2f} ms; flood ({per_round[-1][4]} msgs, handled in "
                  f"{floods[-1]['handled_s'] * 1000:.0f} ms) p50 {per_round[-1][1]:6.2f} ms "
                  f"max {per_round[-1][3]:6.2f} ms", flush=True)
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
        print(f"telemetry   node B at {RATE} msg/s, edge publish -> cloud receipt:")
        rows = (("no flood", quiet_lat), ("flood", flood_lat))
        for name, v in rows:
            print(f"  {name:9s} n={len(v):5d}  p50 {pct(v, 50):7.2f} ms  p99 {pct(v, 99):7.2f} ms  "
                  f"max {max(v):7.2f} ms")
        for name, p in (("p50", 50), ("p99", 99), ("max", 100)):
            added = pct(flood_lat, p) - pct(quiet_lat, p)
            print(f"  added {name}: {added:+7.2f} ms = {added / interval_ms:+.2f} x the "
                  f"group-commit interval (goal <= 1.0)")
        d50 = [f50 - q50 for q50, f50, _, _, _ in per_round]
        print(f"  per round, flood p50 - quiet p50: median {statistics.median(d50):+.2f} ms, "
              f"range {min(d50):+.2f} to {max(d50):+.2f} ms")
        rc = site.gwd.stop()
        expect(rc == 0, "fleetgwd stopped cleanly")
    return 0


if __name__ == "__main__":
    sys.exit(main())
