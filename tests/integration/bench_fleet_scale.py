"""Benchmark (issue 15): one gateway, 1,000 / 2,500 / 5,000 nodes connecting all at once.

The fleet scenario of tests/demo/fleet_scenario.py with good nodes only: swtpm + tpm2-abrmd for
the gateway key, edge and cloud mosquitto (the edge configured for the node count), fleetgwd
with the attestation gate on (reference values from the build's signed image, storm control
at its default attestation.challenges_max), one fleet-sim per size with --ramp-ms 0 (every
node starts at once) and a 1 s attest wait (then it sends whether or not its verdict came: the
gateway holds such messages). Each node sends COUNT messages over 60 s + 30 ms per node of
the size (rate(n)), so it stays connected that long after its SUBACK: longer than all the
nodes take to connect and be attested on the 2-core machine.

Per size, printed:
 - time from fleet-sim's start until every node is trusted (attest_trusted = N), and until
   every node's messages are in the cloud;
 - messages lost: sent and acknowledged by the edge broker, but not in the cloud (must be 0;
   each node's sequence is also checked in order, as integration.fleet_storm does);
 - fleetgwd's idle VmRSS (connected, no node yet), its peak (VmHWM) over the run, VmRSS once
   every node is trusted, and per node beyond idle: (VmHWM - idle) / N and
   (VmRSS all trusted - idle) / N (goal: under 2 KiB per node);
 - fleetgwd's CPU time from the start until all are trusted, per node attested;
 - verdicts per second: N / (time from the first to the last verdict, wall clock) and
   N / fleetgwd's CPU seconds in that time (an upper bound of what one core of its work
   gives), beside `openssl speed -seconds 3 ecdsap256` verifications per second (CPU time)
   from the same run (one verification is the bulk of a verdict).
Not a test: no figure fails the run (house rule, no wall-clock limits) except lost messages,
nodes not trusted, and fleet-sim failures, which are failures of the gateway.
FLEETGW_SCALE_SIZES (default "1000,2500,5000") and FLEETGW_SCALE_COUNT (6) change the run."""

import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "demo"))

import fleet_scenario  # noqa: E402
from fleetgw_harness import (Env, expect, HarnessError, proc_cpu_s, proc_vm_kib,  # noqa: E402
                             wait_for)

SIZES = [int(s) for s in os.environ.get("FLEETGW_SCALE_SIZES", "1000,2500,5000").split(",")]
COUNT = int(os.environ.get("FLEETGW_SCALE_COUNT", "6"))


def rate(n):
    """Messages per second per node: COUNT over 60 s + 30 ms per node."""
    return COUNT / (60 + 0.03 * n)


cpu_s = proc_cpu_s  # the harness's, shared by the benchmarks
vm = proc_vm_kib


def openssl_verify_rate():
    out = subprocess.run(["openssl", "speed", "-seconds", "3", "ecdsap256"],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    m = re.search(r"256 bits ecdsa \(nistp256\)\s+\S+s\s+\S+s\s+([\d.]+)\s+([\d.]+)", out)
    if not m:
        raise HarnessError("cannot parse `openssl speed ecdsap256` output:\n" + out)
    return float(m.group(2))


def one(n):
    with Env(f"fleet-scale-{n}") as env:
        image, sign_pub = fleet_scenario.firmware_image()
        site = fleet_scenario.FleetSite(env, nodes=n)
        fleet_scenario.raise_nofile(fleet_scenario.fds_for_nodes(n), f"fleet-sim for {n} nodes")
        store, _ = fleet_scenario.ota_store(env, image, sign_pub)
        site.start_gwd(attestation={"required": True, "image_dir": store,
                                    "signer_keys": sign_pub, "nonce_ttl_s": 60,
                                    "interval_s": 3600, "hold_per_node": 64})
        site.wait_gwd_connected()
        cloud = fleet_scenario.CloudTelemetry(site)
        fleet = fleet_scenario.Fleet(site, image)
        t_enroll = time.monotonic()
        g = fleet.add_group("good", "node-", n, extra=["--ramp-ms", "0"], expect="trusted",
                            direct=True)
        t_enroll = time.monotonic() - t_enroll
        pid = site.gwd.pid
        time.sleep(1)
        idle = vm(pid, "VmRSS")
        cpu0 = cpu_s(pid)
        t0 = time.monotonic()
        fleet.start(COUNT, rate(n), attest_wait_ms=1000)
        first = {}

        def all_trusted():
            site.gwd.check_alive()
            c = site.counters()
            k = c.get("attest_trusted", 0)
            if k > 0 and "t" not in first:
                first["t"] = time.monotonic()
            return k >= n or c.get("attest_quarantined", 0) > 0
        wait_for(all_trusted, COUNT / rate(n) + 600, f"{n} nodes trusted", interval=0.5)
        t_trusted = time.monotonic() - t0
        cpu_trusted = cpu_s(pid) - cpu0
        rss_trusted = vm(pid, "VmRSS")
        c = site.counters()
        fleet.wait(timeout=COUNT / rate(n) + 900)
        total = n * COUNT

        def settled():
            site.gwd.check_alive()
            return site.spooled() == 0 and cloud.total() >= total
        try:
            wait_for(settled, 600, f"all {total} messages in the cloud", interval=0.5)
        except HarnessError as e:
            print(f"bench fleet_scale {n}: {e}", flush=True)
        t_done = time.monotonic() - t0
        hwm = vm(pid, "VmHWM")
        per, problems = cloud.per_node()
        delivered, bad_nodes = 0, []
        for node_id in g["ids"]:
            distinct, dups, problem = fleet_scenario.check_node(per.get(node_id, []), COUNT)
            delivered += distinct
            if problem:
                bad_nodes.append(f"{node_id}: {problem}")
        s = g.get("summary", {})
        cend = site.counters()
        rc = site.gwd.stop()
        span = max(t0 + t_trusted - first.get("t", t0), 1e-9)  # first to last verdict
        return {"n": n, "enroll_s": t_enroll, "trusted_s": t_trusted, "done_s": t_done,
                "trusted": c.get("attest_trusted", 0), "quarantined": c.get("attest_quarantined", 0),
                "lost": total - delivered, "total": total, "bad_nodes": bad_nodes,
                "problems": problems, "idle": idle, "hwm": hwm, "rss_trusted": rss_trusted,
                "cpu": cpu_trusted, "span": span, "sim_rc": g.get("rc"),
                "acked": s.get("acked"), "connect_all_ms": s.get("connect_all_ms"),
                "held": cend.get("held", 0), "released": cend.get("released", 0),
                "dropped": {k: cend.get(k, 0) for k in fleet_scenario.DROP_COUNTERS
                            if cend.get(k, 0)},
                "stop_rc": rc}


def main():
    ref = openssl_verify_rate()
    print(f"openssl speed ecdsap256: {ref:.0f} verify/s (CPU time, one core)", flush=True)
    results = []
    for n in SIZES:
        r = one(n)
        results.append(r)
        print(f"bench fleet_scale {n} nodes at once: all trusted after {r['trusted_s']:.1f} s "
              f"(fleet-sim connected all in {r['connect_all_ms']} ms), all messages in the cloud "
              f"after {r['done_s']:.1f} s; lost {r['lost']} of {r['total']} "
              f"(acked by the edge {r['acked']}); held {r['held']}, released {r['released']}, "
              f"dropped {r['dropped'] or 0}; enrolment {r['enroll_s']:.0f} s", flush=True)
        print(f"bench fleet_scale {n} fleetgwd memory: idle VmRSS {r['idle']} KiB, VmHWM "
              f"{r['hwm']} KiB, VmRSS all trusted {r['rss_trusted']} KiB; per node beyond idle "
              f"{(r['hwm'] - r['idle']) / n:.2f} KiB (peak), "
              f"{(r['rss_trusted'] - r['idle']) / n:.2f} KiB (all trusted)", flush=True)
        print(f"bench fleet_scale {n} fleetgwd CPU until all trusted: {r['cpu']:.2f} s, "
              f"{r['cpu'] / n * 1e3:.3f} ms per node attested; verdicts/s "
              f"{n / r['span']:.0f} wall (first to last verdict), {n / max(r['cpu'], 1e-9):.0f} "
              f"per fleetgwd CPU second; openssl ecdsap256 verify {ref:.0f}/s", flush=True)
    ref2 = openssl_verify_rate()
    print(f"openssl speed ecdsap256 after the runs: {ref2:.0f} verify/s", flush=True)
    for r in results:
        expect(r["sim_rc"] == 0, f"{r['n']}: fleet-sim exit {r['sim_rc']}")
        expect(r["trusted"] == r["n"] and r["quarantined"] == 0,
               f"{r['n']}: every node trusted ({r['trusted']}, quarantined {r['quarantined']})")
        expect(r["lost"] == 0 and not r["bad_nodes"] and not r["problems"],
               f"{r['n']}: no message lost ({r['lost']}), in order per node "
               f"{r['bad_nodes'][:5]} {r['problems'][:5]}")
        expect(r["stop_rc"] == 0, f"{r['n']}: fleetgwd stops cleanly")
    return 0


if __name__ == "__main__":
    sys.exit(main())
