"""Instructions per relayed message of this build's fleetgwd and a reference fleetgwd
(FLEETGW_BENCH_REF), counted by valgrind's callgrind: unlike bench_relay's CPU time, an
instruction count does not change with the machine's load, so it tells a few per cent apart
where the timed bench cannot. Not a ctest (valgrind makes fleetgwd ~50x slower); run by
`CALLGRIND=1 scripts/bench-compare.sh REF`.

Each binary runs under callgrind on its own edge broker (Site.twin), relays a warm-up, then
the counters are zeroed (callgrind_control --zero), MESSAGES QoS 1 messages are relayed edge ->
cloud as fast as one mosquitto_pub -l sends them, and the counts are dumped
(callgrind_control --dump). Binaries alternate, REPEAT times each. Printed: instructions per
message (user space, the whole process: fleetgwd, libmosquitto, SQLite, OpenSSL, libc), the
ratio this build / reference, and each binary's costliest functions (self cost,
callgrind_annotate), so a difference can be placed. Batching depends on timing, so the
per-message count moves a little between runs; REPEAT shows by how much."""

import glob
import grp
import os
import re
import statistics
import subprocess
import sys
import time

from fleetgw_harness import Env, HarnessError, expect, require, wait_for

from bench_relay import run_path
from daemon_common import PREFIX, Site

MESSAGES = int(os.environ.get("FLEETGW_CALLGRIND_MESSAGES") or 3000)
REPEAT = int(os.environ.get("FLEETGW_CALLGRIND_REPEAT") or 2)
REF = os.environ.get("FLEETGW_BENCH_REF")
REF_NAME = os.environ.get("FLEETGW_BENCH_REF_NAME") or "reference"
TOP = 15


def callgrind_control(*args):
    r = subprocess.run([require("callgrind_control"), *args], capture_output=True, text=True,
                       timeout=120)
    if r.returncode != 0:
        raise HarnessError(f"callgrind_control {' '.join(args)} failed: {r.stdout}{r.stderr}")


def total_ir(path):
    with open(path) as f:
        for line in f:
            m = re.match(r"^(summary|totals):\s+(\d+)", line)
            if m:
                return int(m.group(2))
    raise HarnessError(f"{path}: no summary line (not a callgrind dump?)")


def function_costs(path):
    """{"function [object]": self instructions} of a callgrind dump (callgrind_annotate; the
    source file is left out of the name, so a function that moved to another file matches)."""
    r = subprocess.run([require("callgrind_annotate"), "--auto=no", "--inclusive=no",
                        "--threshold=100", path], capture_output=True, text=True, timeout=120)
    costs = {}
    for line in r.stdout.splitlines():
        m = re.match(r"^\s*([\d,]+) \(\s*[\d.]+%\)\s+(.*?):(\S+)(?: \[(.*)\])?\s*$", line)
        if m:
            key = f"{m.group(3)} [{os.path.basename(m.group(4) or '?')}]"
            costs[key] = costs.get(key, 0) + int(m.group(1).replace(",", ""))
    if not costs:
        raise HarnessError(f"callgrind_annotate gave no function rows for {path}:\n"
                           f"{r.stdout[-2000:]}{r.stderr[-500:]}")
    return costs


def main():
    if not REF or not os.access(REF, os.X_OK):
        raise SystemExit("FLEETGW_BENCH_REF must name the reference fleetgwd (see "
                         "scripts/bench-compare.sh)")
    valgrind = require("valgrind")
    with Env("relay-instructions") as env:
        site = Site(env, nodes=("n1",))
        site._subs = 0
        sites = {"fleetgwd": site,
                 REF_NAME: site.twin("ref", site.start_edge_like("edge-ref"), REF)}
        control = {"group": grp.getgrgid(os.getegid()).gr_name}
        per_msg = {name: [] for name in sites}
        tops = {}
        for i in range(REPEAT):
            order = list(sites) if i % 2 == 0 else list(sites)[::-1]
            for name in order:
                s = sites[name]
                out = env.path(f"callgrind-{s.tag or 'this'}-{i}.out")
                s.start_gwd(wrap=[valgrind, "--tool=callgrind", f"--callgrind-out-file={out}"],
                            control=control,
                            spool={"drain_rate": 1000000, "max_inflight": 100},
                            limits={"per_node_rate": 1000000, "per_node_burst": 1000000})
                wait_for(lambda: s.gwd.check_alive() or
                         "connected to the cloud broker" in s.gwd.output(), 300,
                         f"{name} under callgrind to connect to the cloud broker")
                wait_for(lambda: s.gwd.check_alive() or
                         "connected to the edge broker" in s.gwd.output(), 120,
                         f"{name} under callgrind to connect to the edge broker")
                s.edge.wait_subscribed("fleetgwd", 3 * s.gwd_runs, timeout=120)
                time.sleep(1)
                run_path(site, s.edge, "fleet/n1/up/bench", f"{PREFIX}/nodes/n1/bench", 200,
                         None, f"{name}-warm{i}")
                callgrind_control("--zero", str(s.gwd.pid))
                run_path(site, s.edge, "fleet/n1/up/bench", f"{PREFIX}/nodes/n1/bench",
                         MESSAGES, None, f"{name}-cg{i}")
                time.sleep(0.5)  # the last group commit (20 ms) and the drain's acknowledgements
                before = set(glob.glob(out + "*"))
                callgrind_control("--dump=relay", str(s.gwd.pid))
                wait_for(lambda: set(glob.glob(out + "*")) - before, 60, "the callgrind dump")
                dump = sorted(set(glob.glob(out + "*")) - before)[0]
                total = total_ir(dump)
                per_msg[name].append(total / MESSAGES)
                # callgrind_annotate lists the frames below the dump point (main, libc's
                # start) with the whole count: not a function's own cost
                tops[name] = {k: v for k, v in function_costs(dump).items() if v < total}
                rc = s.gwd.stop(timeout=120)
                expect(rc == 0, f"{name} under callgrind stopped cleanly (run {i + 1})")
                print(f"run {i + 1} {name}: {per_msg[name][-1]:,.0f} instructions per message",
                      flush=True)

        print(f"\n== instructions per relayed message (callgrind, {MESSAGES} messages, "
              f"{REPEAT} runs each) ==")
        for name, v in per_msg.items():
            print(f"{name:10s} " + ", ".join(f"{x:,.0f}" for x in v))
        ratios = [a / b for a, b in zip(per_msg["fleetgwd"], per_msg[REF_NAME])]
        med = statistics.median(per_msg["fleetgwd"]) / statistics.median(per_msg[REF_NAME])
        print(f"this build / {REF_NAME}: runs " + ", ".join(f"{x:.3f}" for x in ratios) +
              f"; of the medians {med:.3f}")
        this, ref = tops["fleetgwd"], tops[REF_NAME]
        print(f"\nper message, self instructions of the last run, by function (this build / "
              f"{REF_NAME} / difference):")
        for key in sorted(this, key=lambda k: -this[k])[:TOP]:
            print(f"  {this[key] / MESSAGES:9,.0f} {ref.get(key, 0) / MESSAGES:9,.0f} "
                  f"{(this[key] - ref.get(key, 0)) / MESSAGES:+9,.0f}  {key}")
        print("largest differences per message (this build - reference):")
        keys = set(this) | set(ref)
        for key in sorted(keys, key=lambda k: -abs(this.get(k, 0) - ref.get(k, 0)))[:TOP]:
            print(f"  {(this.get(key, 0) - ref.get(key, 0)) / MESSAGES:+9,.0f}  {key}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
