#!/usr/bin/python3
"""fleetgwd stopped while its nodes keep sending, at the shipped broker limits (issue 19, "Done
when": 20 nodes x 5,000 messages): what the edge broker acknowledged to the nodes while the
gateway was away reaches the cloud when it returns, every message, in order per node.

Real components (gateway_ota_common.OtaSite): swtpm + tpm2-abrmd, the cloud and edge
mosquitto, fleetgwd with the attestation gate on, fleet-sim nodes with their own IAKs. The edge
broker runs with the limits of the shipped systemd/mosquitto/fleetgw-edge.conf, read from that
file (max_packet_size, max_queued_messages, max_queued_bytes): with mosquitto's default
max_queued_messages of 1000 the broker would drop what it acknowledged beyond 1000 messages
for the gateway's session, and this test would fail.

The nodes attest and start sending; fleetgwd is stopped (SIGTERM) while they send; every
node's 5,000 messages are acknowledged by the broker (fleet-sim exits 0); fleetgwd is started
again and the cloud subscriber counts each node's sequence numbers: 0..4999, in order,
duplicates only as QoS 1 redelivery (counted). FLEETGW_STOPPED_NODES / _COUNT change the
sizes.

fleetgwd runs with its own default per-node rate limit (limits.per_node_rate 50/s,
per_node_burst 200: the keys left out of the test's configuration) and the nodes send within
it (40/s). The broker hands the whole backlog over at once when fleetgwd returns; without the
gate's absence credit (gate_credit_absence: per_node_rate x the time fleetgwd was away, from
the spool's edge_seen mark across the restart) fleetgwd would drop what exceeds each node's
burst as `rate_limited`, acknowledged messages included, and this test would fail. The test
asserts that nothing was rate-limited."""

import os
import re
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "demo"))

from fleet_scenario import CloudTelemetry, check_node  # noqa: E402
from fleetgw_harness import Env, HarnessError, expect, run_main, wait_for  # noqa: E402
from edge_broker import SHIPPED  # noqa: E402
from gateway_ota_common import OtaSite  # noqa: E402

NODES = int(os.environ.get("FLEETGW_STOPPED_NODES", "20"))
COUNT = int(os.environ.get("FLEETGW_STOPPED_COUNT", "5000"))
RATE = 40  # messages per second per node, within the default limit: COUNT / RATE seconds
LIMITS = ("max_packet_size", "max_queued_messages", "max_queued_bytes")
DEFAULT_RATE_LIMIT = {"per_node_rate": None, "per_node_burst": None}  # the daemon's


def shipped_limits():
    with open(os.path.join(SHIPPED, "fleetgw-edge.conf")) as f:
        text = f.read()
    lines = []
    for name in LIMITS:
        m = re.search(rf"^{name}\s+(\d+)\s*$", text, re.M)
        expect(m is not None, f"the shipped fleetgw-edge.conf sets {name}")
        lines.append(f"{name} {m.group(1)}")
    return lines


def main():
    limits = shipped_limits()
    with Env("edge-gateway-stopped") as env:
        site = OtaSite(env, edge_conf=limits)
        site.start(limits=DEFAULT_RATE_LIMIT)
        cloud = CloudTelemetry(site)
        ids = site.nodes("s-", NODES)
        sim = site.fleet_sim("s-", NODES, extra=["--count", str(COUNT), "--rate", str(RATE)])
        site.wait_trusted(ids)
        relayed_before = site.counters().get("relayed_up", 0)
        expect(site.gwd.stop() == 0, f"fleetgwd stopped while {NODES} nodes send {COUNT} "
               f"messages each (edge broker: {', '.join(limits)})")
        t_stop = time.monotonic()
        wait_for(lambda: sim.popen.poll() is not None, 600 + COUNT // RATE,
                 "fleet-sim to have every message acknowledged by the edge broker", interval=1)
        sent = time.monotonic() - t_stop
        expect(sim.popen.returncode == 0 and
               f"sent={NODES * COUNT} acked={NODES * COUNT} failed=0" in sim.output(),
               f"the edge broker acknowledged all {NODES * COUNT} messages to the nodes "
               f"(fleet-sim exit {sim.popen.returncode}, {sent:.0f} s after the stop)")
        queued = NODES * COUNT - cloud.total()
        site.start(limits=DEFAULT_RATE_LIMIT)
        t_back = time.monotonic()

        def arrived():
            site.gwd.check_alive()
            lost = site.counters().get("rate_limited", 0)
            if lost:
                raise HarnessError(f"{lost} message(s) of the backlog dropped as rate_limited")
            return all(check_node(s, COUNT)[2] is None for s in
                       (cloud.per_node()[0].get(i, []) for i in ids))
        wait_for(arrived,
                 1200, f"every node's {COUNT} messages at the cloud", interval=1)
        drained = time.monotonic() - t_back
        per, problems = cloud.per_node()
        expect(not problems, f"every upstream message is a node's telemetry ({problems[:3]})")
        dups = 0
        for i in ids:
            n, d, bad = check_node(per.get(i, []), COUNT)
            dups += d
            expect(bad is None, f"{i}: {n}/{COUNT} in order ({bad})")
        m = re.search(r"back at the edge broker after (\d+)s away", site.gwd.output())
        expect(m is not None and int(m.group(1)) >= int(sent),
               f"fleetgwd credited the nodes' rate limits with its absence "
               f"({m.group(0) if m else 'no such log line'}; stopped {sent:.0f} s)")
        c = site.counters()
        expect(c.get("rate_limited", 0) == 0, f"nothing dropped as rate_limited "
               f"({c.get('rate_limited', 0)})")
        expect(True, f"all {NODES * COUNT} messages reached the cloud, in order per node: "
               f"{queued} of them were queued at the edge broker while fleetgwd was stopped "
               f"and relayed {drained:.0f} s after its return; {dups} QoS 1 duplicate(s); "
               f"relayed_up {relayed_before} before the stop, {c.get('relayed_up', 0)} in all")
        expect(site.gwd.stop() == 0, "fleetgwd stops cleanly")
    print("PASS: test_edge_gateway_stopped")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
