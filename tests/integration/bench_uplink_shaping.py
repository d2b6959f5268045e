#!/usr/bin/python3
"""Benchmark, issue 17: what one 100-publish/s uplink connection (AWS IoT Core's ceiling,
enforced by the test cloud broker's plugin) carries with batching on and off, in one run.

shaping_common.ShapeSite: swtpm, the edge and cloud mosquitto, fleetgwd with uplink.profile
aws-iot-core, fleet-sim nodes at 1 msg/s each. Four runs, each on a fresh spool:

  ref   batching off, LOW nodes (under the ceiling): the latency reference
  lat   batching on,  LOW nodes: the latency batching adds (batch_max_delay_ms 250)
  off   batching off, HIGH nodes (above the ceiling): delivered rate, spool growth
  on    batching on,  HIGH nodes: delivered rate, batch fill, spool growth

Delivered rate: messages at the cloud subscriber / (last arrival - first); offered rate: the
same messages / (the newest node timestamp - the oldest). Latency: arrival
at the subscriber - the node's timestamp in the message (one clock: all on this machine).
Spool growth: the largest backlog fleetgwctl status showed (sampled every second). Figures
print as ratios between runs of this one run (on/off delivered, lat - ref latency).
FLEETGW_BENCH_SHAPE_LOW / _HIGH / _SECONDS change the sizes."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from fleetgw_harness import Env, expect, run_main  # noqa: E402
from shaping_common import CEILING, CloudSink, ShapeSite, check_complete, pct  # noqa: E402

LOW = int(os.environ.get("FLEETGW_BENCH_SHAPE_LOW", "60"))
HIGH = int(os.environ.get("FLEETGW_BENCH_SHAPE_HIGH", "400"))
SECONDS = int(os.environ.get("FLEETGW_BENCH_SHAPE_SECONDS", "20"))


def one_run(site, name, batch, nodes):
    if os.path.exists(site.spool):
        for sfx in ("", "-wal", "-shm"):
            if os.path.exists(site.spool + sfx):
                os.unlink(site.spool + sfx)
    sink = CloudSink(site, name)
    site.start_shaped(batch=batch)
    sim = site.fleet_sim(nodes, SECONDS)
    peak = 0
    while sim.popen.poll() is None:
        site.gwd.check_alive()
        peak = max(peak, site.status()["uplink"]["backlog_messages"])
        time.sleep(1)
    site.wait_sim(sim, nodes, SECONDS, 10)
    while True:
        st = site.status()["uplink"]
        peak = max(peak, st["backlog_messages"])
        if st["backlog_messages"] == 0:
            break
        site.gwd.check_alive()
        time.sleep(1)
    want = nodes * SECONDS
    deadline = time.monotonic() + 120
    while len({(m["node"], m["node_seq"]) for m in sink.messages()[0]}) < want:
        expect(time.monotonic() < deadline, f"{name}: {want} messages at the subscriber")
        time.sleep(1)
    msgs, batches = sink.messages()
    check_complete(msgs, site.ids[:nodes], SECONDS)
    site.gwd.stop()
    sink.proc.stop()
    first = {}
    for m in msgs:
        first.setdefault((m["node"], m["node_seq"]), m)
    ms = list(first.values())
    t = [m["t"] for m in ms]
    lat = [(m["t"] * 1000.0 - m["ts_ms"]) for m in ms]
    fill = sum(b[2] for b in batches) / len(batches) if batches else 1.0
    ts = [m["ts_ms"] / 1000.0 for m in ms]
    r = {"name": name, "nodes": nodes, "offered": len(ms) / (max(ts) - min(ts)),
         "delivered": len(ms) / (max(t) - min(t)),
         "p50": pct(lat, 50), "p99": pct(lat, 99), "peak_backlog": peak, "fill": fill,
         "publishes": len(batches) if batch else len(ms)}
    print(f"{name}: batching {'on' if batch else 'off'}, {nodes} nodes x 1 msg/s for "
          f"{SECONDS} s: offered {r['offered']:.0f} msg/s, delivered {r['delivered']:.0f} msg/s, latency p50 {r['p50']:.0f} ms "
          f"p99 {r['p99']:.0f} ms, spool peak {peak} messages, {r['publishes']} publishes "
          f"(fill {fill:.1f} msg/publish)", flush=True)
    return r


def main():
    with Env("bench-uplink-shaping") as env:
        site = ShapeSite(env, max(LOW, HIGH))
        ref = one_run(site, "ref", False, LOW)
        lat = one_run(site, "lat", True, LOW)
        off = one_run(site, "off", False, HIGH)
        on = one_run(site, "on", True, HIGH)
        kicks, top = site.ceiling_report()
        expect(not kicks, f"the ceiling broker never disconnected fleetgwd ({kicks[:3]})")
    print(f"\nthrough one {CEILING}-publish/s connection, {HIGH} nodes at 1 msg/s "
          f"({on['offered']:.0f} msg/s offered, measured from the nodes' timestamps):")
    print(f"  delivered, batching on  : {on['delivered']:.0f} msg/s "
          f"({on['delivered'] / on['offered']:.2f}x offered), batch fill {on['fill']:.1f} msg/publish, "
          f"spool peak {on['peak_backlog']} messages")
    print(f"  delivered, batching off : {off['delivered']:.0f} msg/s "
          f"({off['delivered'] / CEILING:.2f}x the ceiling), spool peak "
          f"{off['peak_backlog']} messages (grew {off['peak_backlog'] / SECONDS:.0f}/s)")
    print(f"  ratio on/off            : {on['delivered'] / off['delivered']:.2f}x")
    print(f"  added latency, {LOW} msgs/s: p50 +{lat['p50'] - ref['p50']:.0f} ms, "
          f"p99 +{lat['p99'] - ref['p99']:.0f} ms (batching on: p50 {lat['p50']:.0f} / p99 "
          f"{lat['p99']:.0f} ms; off: {ref['p50']:.0f} / {ref['p99']:.0f} ms); "
          f"busiest uplink second {top} publishes")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
