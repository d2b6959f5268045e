#!/usr/bin/python3
"""Issue 17, "Done when": a site fits one AWS-IoT-Core-sized uplink connection, with nothing
lost or reordered.

Real components (shaping_common.ShapeSite): swtpm + tpm2-abrmd for the gateway key, the edge
mosquitto, fleet-sim nodes over mutual TLS, fleetgwd with uplink.profile aws-iot-core, and a
cloud mosquitto with the test plugin that disconnects a client above 100 publishes in any
1 s window (tests/plugins/publish_ceiling.c, AWS IoT Core's per-connection limit). Batches
are split by fleetgw-unbatch.

1. Batching on: NODES (2,000) nodes at 1 msg/s each for SECONDS: every message arrives, in
   order per node, counted exactly after decoding; the broker never disconnects fleetgwd and
   its busiest 1 s window stays <= 100; fleetgwctl status reports the batches and their fill.
2. Batching off: OFF_NODES (300) nodes at 1 msg/s (3x the ceiling): the backlog grows and is
   reported (status: backlog_messages rising, a drain rate near the ceiling and a time to
   drain), and when the load stops it drains in order, every message arriving once per node
   (duplicates only as QoS 1 redelivery, counted), never disconnected.
3. kill -9 with half-sent batches: batching on, nodes sending; the cloud broker is stopped
   (SIGSTOP: its PUBACKs stop, fleetgwd keeps sending batches into the connection until its
   in-flight window is full), fleetgwd is killed (SIGKILL), the broker resumes and fleetgwd
   is started again: every message arrives; no gateway seq is in two different batches (a
   batch resent after the restart is the same batch, same id and entries: a QoS 1
   redelivery, counted); never disconnected.

FLEETGW_SHAPE_NODES / _SECONDS / _OFF_NODES change the sizes."""

import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from fleetgw_harness import Env, expect, run_main, wait_for  # noqa: E402
from shaping_common import CEILING, CloudSink, ShapeSite, check_complete  # noqa: E402

NODES = int(os.environ.get("FLEETGW_SHAPE_NODES", "2000"))
SECONDS = int(os.environ.get("FLEETGW_SHAPE_SECONDS", "30"))
OFF_NODES = int(os.environ.get("FLEETGW_SHAPE_OFF_NODES", "300"))
OFF_SECONDS = 20
KILL_NODES = 300
KILL_SECONDS = 40


def no_kicks(site, what, mark):
    kicks, peak = site.ceiling_report(mark)
    expect(not kicks, f"{what}: the cloud broker never disconnected fleetgwd for exceeding "
                      f"{CEILING} publishes/s (kicks: {kicks[:3]})")
    expect(peak is not None and peak <= CEILING,
           f"{what}: fleetgwd's busiest 1 s window on the uplink held {peak} publishes "
           f"(ceiling {CEILING})")
    return peak


def phase_batching(site):
    mark = site.ceiling_mark()
    sink = CloudSink(site, "on")
    site.start_shaped(batch=True)
    t0 = time.monotonic()
    sim = site.fleet_sim(NODES, SECONDS)
    site.wait_sim(sim, NODES, SECONDS, 600 + SECONDS)
    site.wait_drained(600)
    st = site.status()["uplink"]
    wait_for(lambda: len(sink.raw()) >= st["batches_sent"], 120,
             f"the {st['batches_sent']} batches at the cloud subscriber", interval=1)
    elapsed = time.monotonic() - t0
    msgs, batches = sink.messages()
    dups = check_complete(msgs, site.ids[:NODES], SECONDS)
    per_node_topic = sum(1 for m in msgs if m["batch"] is None)
    fills = [b[2] for b in batches]
    sizes = [b[3] for b in batches]
    expect(per_node_topic == 0, f"with batching on every node message went in a batch "
                                f"({per_node_topic} alone)")
    expect(max(sizes) <= 65536, f"every batch within uplink.batch_max_bytes 65536 "
                                f"(largest {max(sizes)} bytes)")
    expect(st["batch"] and st["batches_sent"] >= len(set(b[1] for b in batches)) and
           st["batch_fill"] > 1,
           f"fleetgwctl status reports the batching: {st['batches_sent']} batches sent, "
           f"fill {st['batch_fill']:.1f} messages per batch")
    site.gwd.stop()
    peak = no_kicks(site, "batching on", mark)
    print(f"batching on: {NODES} nodes x {SECONDS} msgs = {NODES * SECONDS} messages in "
          f"{len(batches)} batches (fill mean {sum(fills) / len(fills):.0f}, max {max(fills)};"
          f" largest {max(sizes)} B), {dups} duplicate(s), busiest uplink second {peak} "
          f"publishes, {elapsed:.0f} s from start to drained", flush=True)


def phase_no_batching(site):
    mark = site.ceiling_mark()
    sink = CloudSink(site, "off")
    site.start_shaped(batch=False)
    sim = site.fleet_sim(OFF_NODES, OFF_SECONDS)
    samples = []
    while sim.popen.poll() is None:
        site.gwd.check_alive()
        samples.append(site.status()["uplink"])
        time.sleep(2)
    site.wait_sim(sim, OFF_NODES, OFF_SECONDS, 10)
    top = max(samples, key=lambda s: s["backlog_messages"])
    growing = [s["backlog_messages"] for s in samples]
    expect(top["backlog_messages"] > 2 * CEILING and growing.index(max(growing)) > 0,
           f"the backlog grew under {OFF_NODES} msgs/s into a {CEILING}/s ceiling "
           f"(backlog samples: {growing[:12]})")
    expect(top["drain_eta_s"] > 0 and 0.5 * CEILING <= top["drain_rate"] <= CEILING,
           f"status reported it: backlog {top['backlog_messages']} messages, "
           f"drain rate {top['drain_rate']:.0f}/s, time to drain {top['drain_eta_s']:.0f} s")
    t0 = time.monotonic()
    site.wait_drained(600)
    drain_s = time.monotonic() - t0
    wait_for(lambda: len(sink.raw()) >= OFF_NODES * OFF_SECONDS, 120,
             "every message at the cloud subscriber", interval=1)
    msgs, batches = sink.messages()
    expect(not batches, f"with batching off nothing is batched ({len(batches)} batches)")
    dups = check_complete(msgs, site.ids[:OFF_NODES], OFF_SECONDS)
    site.gwd.stop()
    peak = no_kicks(site, "batching off", mark)
    print(f"batching off: {OFF_NODES} msgs/s offered, backlog peaked at "
          f"{top['backlog_messages']} and drained in order in {drain_s:.0f} s after the load "
          f"stopped (status had said {top['drain_eta_s']:.0f} s); {dups} duplicate(s); "
          f"busiest uplink second {peak}", flush=True)


def phase_kill(site):
    mark = site.ceiling_mark()
    sink = CloudSink(site, "kill")
    site.start_shaped(batch=True, batch_max_delay_ms=50)
    sim = site.fleet_sim(KILL_NODES, KILL_SECONDS)
    wait_for(lambda: site.gwd.check_alive() or site.status()["uplink"]["batches_sent"] >= 20,
             120, "fleetgwd to have sent 20 batches", interval=0.5)
    sent0 = site.status()["uplink"]["batches_sent"]
    cloud_pid = site.cloud.proc.popen.pid
    os.kill(cloud_pid, signal.SIGSTOP)
    try:
        wait_for(lambda: site.gwd.check_alive() or
                 site.status()["uplink"]["batches_sent"] >= sent0 + 5, 60,
                 "fleetgwd to send batches the stopped broker cannot acknowledge", interval=0.2)
        unacked = site.status()["uplink"]["batches_sent"] - sent0
        site.gwd.stop(sig=signal.SIGKILL)
    finally:
        os.kill(cloud_pid, signal.SIGCONT)
    site.start_shaped(batch=True, batch_max_delay_ms=50)
    site.wait_sim(sim, KILL_NODES, KILL_SECONDS, 600 + KILL_SECONDS)
    site.wait_drained(600)
    st = site.status()["uplink"]
    expect(st["batches_resent"] > 0, f"the restarted fleetgwd re-sent the recorded batches "
                                     f"first ({st['batches_resent']} resent)")
    want = KILL_NODES * KILL_SECONDS
    wait_for(lambda: len({(m["node"], m["node_seq"]) for m in sink.messages()[0]}) >= want,
             120, f"{want} distinct messages at the cloud subscriber", interval=2)
    msgs, batches = sink.messages()
    dups = check_complete(msgs, site.ids[:KILL_NODES], KILL_SECONDS)
    ids = [b[1] for b in batches]
    redelivered = len(ids) - len(set(ids))
    site.gwd.stop()
    no_kicks(site, "kill -9", mark)
    print(f"kill -9 with {unacked} batches unacknowledged: every message arrived, none in two "
          f"batches; {redelivered} batch(es) delivered twice (QoS 1 redelivery: same id, same "
          f"entries), {dups} duplicate message(s); the restarted fleetgwd re-sent "
          f"{st['batches_resent']} batch(es)", flush=True)


def main():
    with Env("uplink-shaping") as env:
        site = ShapeSite(env, max(NODES, OFF_NODES, KILL_NODES))
        phase_batching(site)
        phase_no_batching(site)
        phase_kill(site)
    print("PASS: test_uplink_shaping")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
