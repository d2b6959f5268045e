#!/usr/bin/python3
"""Benchmark of the node agent in fleet-sim against a real mosquitto: the cost of mutual TLS
(Mbed TLS in the agent, OpenSSL in the broker) per node, as ratios against the same fleet
over plain TCP measured in the same run (the reference).

Figures (each printed with its reference and the ratio):
  connect   time until every node of an N-node fleet is connected and subscribed, and the
            fleet-sim CPU time spent (TLS / plain)
  memory    RSS and heap growth per node (TLS / plain), and sizeof the per-node state
  telemetry QoS 1 messages acknowledged per second by a small fleet publishing flat out
            (TLS / plain)
"""
import os
import sys

from fleetgw_harness import Env, HarnessError
from test_agent_mqtt import node_certs, run_sim

CONNECT_NODES = int(os.environ.get("FLEETGW_BENCH_NODES", "200"))
TPUT_NODES, TPUT_COUNT = 20, 500


def one(env, broker, ca, cert_dir, nodes, count, rate, tls, name):
    extra = ["--max-attempts", "10", "--ramp-ms", "1"] + ([] if tls else ["--no-tls"])
    rc, out, s = run_sim(env, broker, ca.cert_path, cert_dir, nodes, count, rate,
                         extra=extra, name=name)
    if rc != 0 or s is None or s["failed"] != 0:
        raise HarnessError(f"{name}: fleet-sim failed (rc {rc}): {out[-2000:]}")
    return s


def ratio(a, b):
    return a / b if b else float("inf")


def main():
    with Env("bench-fleet-sim") as env:
        ca = env.ca("edge-ca")
        extra = ["max_connections -1", "max_keepalive 3600"]
        tls_broker = env.start_mosquitto(ca, name="tls-broker", unix_socket=False,
                                         persistence=False, extra_conf=extra)
        plain_broker = env.start_mosquitto(ca, name="plain-broker", unix_socket=False,
                                           persistence=False, tls=False,
                                           acl_extra=("topic readwrite fleet/#",),
                                           extra_conf=extra)
        cert_dir = node_certs(ca, env.path("certs"),
                              [f"node-{i}" for i in range(max(CONNECT_NODES, TPUT_NODES))])

        # connect + memory: N nodes, one message each
        t = one(env, tls_broker, ca, cert_dir, CONNECT_NODES, 1, 1, True, "connect-tls")
        p = one(env, plain_broker, ca, cert_dir, CONNECT_NODES, 1, 1, False, "connect-plain")
        t_conn, p_conn = int(t["connect_all_ms"]), int(p["connect_all_ms"])
        t_cpu, p_cpu = int(t["cpu_ms"]), int(p["cpu_ms"])
        print(f"bench fleet_sim connect: {CONNECT_NODES} nodes all connected in {t_conn} ms "
              f"with TLS vs {p_conn} ms plain (reference): ratio {ratio(t_conn, p_conn):.2f}")
        print(f"bench fleet_sim connect cpu: {t_cpu / CONNECT_NODES:.2f} ms/node with TLS vs "
              f"{p_cpu / CONNECT_NODES:.2f} ms/node plain: ratio {ratio(t_cpu, p_cpu):.2f}")
        t_rss, p_rss = float(t["rss_per_node_kib"]), float(p["rss_per_node_kib"])
        t_heap, p_heap = float(t["heap_per_node_kib"]), float(p["heap_per_node_kib"])
        print(f"bench fleet_sim memory: RSS {t_rss:.1f} KiB/node with TLS vs {p_rss:.1f} "
              f"KiB/node plain: ratio {ratio(t_rss, p_rss):.2f}; heap {t_heap:.1f} vs "
              f"{p_heap:.1f} KiB/node; sizeof(node state) {t['sizeof_node']} B "
              f"(agent {t['sizeof_agent']} B, mqtt client {t['sizeof_mqtt']} B, "
              f"node_tls {t['sizeof_tls']} B)")

        # telemetry throughput: a small fleet publishing as fast as the window allows
        t = one(env, tls_broker, ca, cert_dir, TPUT_NODES, TPUT_COUNT, 1000, True, "tput-tls")
        p = one(env, plain_broker, ca, cert_dir, TPUT_NODES, TPUT_COUNT, 1000, False,
                "tput-plain")
        t_rate = t["acked"] / (int(t["elapsed_ms"]) / 1000.0)
        p_rate = p["acked"] / (int(p["elapsed_ms"]) / 1000.0)
        print(f"bench fleet_sim telemetry: {t_rate:.0f} QoS 1 msgs/s acknowledged with TLS vs "
              f"{p_rate:.0f} msgs/s plain ({TPUT_NODES} nodes x {TPUT_COUNT}): ratio "
              f"{ratio(t_rate, p_rate):.2f}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except HarnessError as e:
        print(f"FAIL: {e}", flush=True)
        sys.exit(1)
