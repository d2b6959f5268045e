#!/usr/bin/python3
"""500 simulated nodes (one fleet-sim process, one thread, 500 agent instances, 500 TLS
sessions, 500 client certificates) against ONE real mosquitto on this machine.

Proves every node connects over mutual TLS, subscribes, publishes a bounded number of QoS 1
telemetry messages that the broker acknowledges and a subscriber receives (each node's full
sequence), and that fleet-sim reports the memory used per node.
"""
import os
import sys

from fleetgw_harness import raise_nofile as harness_raise_nofile
from fleetgw_harness import Env, HarnessError, expect
from test_agent_mqtt import Subscriber, node_certs, run_sim, telemetry_by_node

NODES = int(os.environ.get("FLEETGW_SIM_NODES", "500"))
COUNT = 10


def raise_nofile(need):
    soft = harness_raise_nofile(need, f"{NODES} nodes")
    print(f"open-file limit: {soft}", flush=True)


def main():
    raise_nofile(2 * NODES + 256)
    with Env("fleet-sim-scale") as env:
        ca = env.ca("edge-ca")
        broker = env.start_mosquitto(
            ca, superusers=("monitor",), unix_socket=False, persistence=False,
            extra_conf=["max_connections -1", "max_keepalive 3600"])
        monitor = ca.issue("monitor")
        ids = [f"node-{i}" for i in range(NODES)]
        cert_dir = node_certs(ca, env.path("certs"), ids)
        sub = Subscriber(env, broker, monitor)

        rc, out, s = run_sim(env, broker, ca.cert_path, cert_dir, NODES, COUNT, rate=5,
                             extra=["--ramp-ms", "2", "--max-attempts", "10"])
        expect(s is not None, "fleet-sim printed its summary")
        expect(rc == 0 and s["failed"] == 0, f"fleet-sim exits 0, no node failed ({s})")
        expect(s["connected"] == NODES, f"all {NODES} nodes connected over mutual TLS")
        expect(s["acked"] == NODES * COUNT,
               f"{NODES}*{COUNT} = {NODES * COUNT} QoS 1 messages acknowledged")
        print(f"memory: rss_per_node_kib={s['rss_per_node_kib']} "
              f"heap_per_node_kib={s['heap_per_node_kib']} sizeof_node={s['sizeof_node']} "
              f"sizeof_agent={s['sizeof_agent']} sizeof_tls={s['sizeof_tls']} "
              f"connect_all_ms={s['connect_all_ms']} elapsed_ms={s['elapsed_ms']}", flush=True)
        expect(float(s["rss_per_node_kib"]) > 0 and float(s["heap_per_node_kib"]) > 0,
               "memory per node reported")

        sub.barrier(env, broker, monitor, "scale-done")
        per = telemetry_by_node(sub.messages())
        expect(len(per) == NODES, f"telemetry from all {NODES} nodes reached the subscriber")
        incomplete = [n for n in ids if sorted(set(per.get(n, []))) != list(range(COUNT))]
        expect(not incomplete, f"every node's sequence 0..{COUNT - 1} arrived "
                               f"(incomplete: {incomplete[:5]})")
        dups = sum(len(v) for v in per.values()) - NODES * COUNT
        print(f"duplicates (QoS 1 resends): {dups}", flush=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (AssertionError, HarnessError) as e:
        print(f"FAIL: {e}", flush=True)
        sys.exit(1)
