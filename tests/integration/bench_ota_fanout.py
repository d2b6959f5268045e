#!/usr/bin/python3
"""Benchmark of fleetgwd's OTA fan-out (issue 13): one ~256 KiB image to 100 and to 500
simulated nodes, against the test-only fleetgw-ota-testserver serving the same fan-out
through the same broker in the same run (the reference: it offers to every node and serves
chunks, with no checks, no campaign state and no attestation, so it is bound by the broker
and the nodes only).

Real components (gateway_ota_common.OtaSite): swtpm, cloud and edge mosquitto, fleetgwd with
the attestation gate on, fleet-sim nodes (one process per run) with flash files and the real
bootloader. Each fleet size runs in a fresh site (fresh fleetgwd, registry and campaign
database), so fleetgwd's peak RSS is per size.

The image: a 250 KiB body (256000 bytes) signed at test time in the class "sim", whose slot
is 256 KiB: image header (0x200) + body + TLVs + MCUboot's trailer (3120 bytes for the
class defaults) must fit 262144 bytes, so the body cannot be a full 256 KiB.

Per size:
  reference  fleet-sim "ref-" nodes (not enrolled, fleetgwd not started yet), the test server
             offers to all (--nodes-file), timed from the offer to every node staged (ota-status
             staged) and to every node running the image in test mode (fleet-sim --until-ota
             testing exits)
  fleetgwd   fleet-sim "gw-" nodes enrolled and trusted on v1, the image staged, a campaign of
             one wave with max_parallel = all nodes, timed from `campaign create` to no node
             pending/offered/downloading/retry_wait (the transfer phase) and to `completed`
             (re-attestation of every node on the new image, then ota-confirm)
Printed: times and their ratio (fleetgwd / test server, transfer phase), image payload and
MQTT bytes per node (the broker's $SYS/broker/bytes counters, sys_interval 1: (received +
sent) / 2 / nodes is the MQTT bytes one node's link carries, before TLS), chunks served per
second, fleetgwd's VmRSS before the campaign and VmHWM after it, CPU seconds of fleetgwd,
the broker, fleet-sim and the test server during the transfer, where fleetgwd's threads were
(state and wchan sampled every 10 ms), and the fsync latency of the run's directory.

FLEETGW_BENCH_OTA_NODES overrides the sizes (comma-separated, default "100,500");
FLEETGW_BENCH_OTA_STRACE=S counts fleetgwd's system calls (strace -c) for S seconds from 10 s
into each campaign (a diagnostic: it slows fleetgwd, so that run's times are not figures)."""

import collections
import os
import subprocess
import sys
import threading
import time

from fleetgw_harness import (Env, HarnessError, proc_cpu_s, proc_vm_kib, program, require,
                             wait_for)
from gateway_ota_common import CLASS, OtaSite
from test_fleet_sim_ota_scale import raise_nofile

SIZES = [int(x) for x in os.environ.get("FLEETGW_BENCH_OTA_NODES", "100,500").split(",")]
BODY = 250 * 1024
CHUNK = 2048  # OtaSite's ota.chunk_size; the test server is given the same
POLL = 0.25
# FLEETGW_BENCH_OTA_STRACE=S: fleetgwd's syscalls counted for S seconds of the transfer
STRACE = int(os.environ.get("FLEETGW_BENCH_OTA_STRACE", "0"))


cpu_s = proc_cpu_s  # the harness's, shared by the benchmarks
vm = proc_vm_kib


class Sampler(threading.Thread):
    """Where a process's threads are: (state, wchan) of every task, every 10 ms."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid = pid
        self.counts = collections.Counter()
        self.samples = 0
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set():
            try:
                tasks = os.listdir(f"/proc/{self.pid}/task")
            except OSError:
                return
            for t in tasks:
                try:
                    with open(f"/proc/{self.pid}/task/{t}/stat") as f:
                        st = f.read().rsplit(")", 1)[1].split()[0]
                    with open(f"/proc/{self.pid}/task/{t}/wchan") as f:
                        wchan = f.read().strip() or "-"
                    with open(f"/proc/{self.pid}/task/{t}/comm") as f:
                        comm = f.read().strip()
                except OSError:
                    continue
                self.counts[(comm, st, wchan if st != "R" else "-")] += 1
            self.samples += 1
            time.sleep(0.01)

    def stop(self):
        self.halt.set()
        self.join()

    def top(self, k=6):
        return ", ".join(f"{comm} {st} {w} {100.0 * c / max(self.samples, 1):.0f}%"
                         for (comm, st, w), c in self.counts.most_common(k))


def sys_bytes(site):
    """The edge broker's ($SYS/broker/bytes/received, .../sent), at most 1 s old."""
    with open(site.env.path("edge.secret")) as f:
        pw = f.read().strip()
    time.sleep(1.2)  # sys_interval 1: a value published after everything before this call
    r = subprocess.run([require("mosquitto_sub"), "--unix", site.edge.socket_path, "-u",
                        "fleetgwd", "-P", pw, "-i", f"bench-sys-{os.getpid()}", "-v", "-C",
                        "2", "-W", "10", "-t", "$SYS/broker/bytes/received", "-t",
                        "$SYS/broker/bytes/sent"], capture_output=True, text=True, timeout=30)
    vals = {}
    for line in r.stdout.splitlines():
        topic, _, v = line.partition(" ")
        vals[topic.rsplit("/", 1)[1]] = int(v)
    if set(vals) != {"received", "sent"}:
        raise HarnessError(f"no $SYS byte counters from the edge broker: {r.stdout!r} "
                           f"{r.stderr!r}")
    return vals["received"], vals["sent"]


def fsync_ms(env, rounds=20):
    """Mean latency of a 4 KiB write + fsync in the run's directory (what one SQLite
    commit with synchronous=FULL costs at least)."""
    p = env.path("fsync-probe")
    fd = os.open(p, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        t = time.monotonic()
        for i in range(rounds):
            os.pwrite(fd, os.urandom(4096), 4096 * i)
            os.fsync(fd)
        return (time.monotonic() - t) * 1000.0 / rounds
    finally:
        os.close(fd)
        os.unlink(p)


def staged_nodes(output):
    return {ln.split()[1] for ln in output.splitlines()
            if ln.startswith("status node=") and " state=staged " in ln}


def reference(env, site, n, image):
    ids = site.nodes("ref-", n, enroll=False)
    ids_file = env.path("ref-ids")
    with open(ids_file, "w") as f:
        f.write("\n".join(ids) + "\n")
    srv = env.spawn(f"ota-testserver-{n}",
                    [program("fleetgw-ota-testserver"), "--socket", site.edge.socket_path,
                     "--username", "fleetgwd", "--password-file", env.path("edge.secret"),
                     "--nodes-file", ids_file], stdin=subprocess.PIPE)
    wait_for(lambda: srv.check_alive() or "ready" in srv.output().splitlines(), 60,
             "the test server's subscriptions")
    sim = site.fleet_sim("ref-", n, extra=["--ramp-ms", "5", "--until-ota", "testing"])

    def up():
        sim.check_alive()
        srv.check_alive()
        return len({ln.split()[1] for ln in srv.output().splitlines()
                    if ln.startswith("node-status node=")}) >= n
    wait_for(up, 600, f"{n} reference nodes connected")
    b0 = sys_bytes(site)
    c0 = {k: cpu_s(p) for k, p in (("srv", srv.pid), ("broker", site.edge.proc.pid),
                                    ("sim", sim.pid))}
    t0 = time.monotonic()
    srv.popen.stdin.write(f"offer fan-ref {image} {CHUNK}\n".encode())
    srv.popen.stdin.flush()
    t_staged = None
    while True:  # bounded by the wait_for below, which raises at its timeout
        if t_staged is None and len(staged_nodes(srv.output())) >= n:
            t_staged = time.monotonic() - t0
            c1 = {k: cpu_s(p) for k, p in (("srv", srv.pid), ("broker", site.edge.proc.pid),
                                            ("sim", sim.pid))}
        if sim.popen.poll() is not None:
            break
        if time.monotonic() - t0 > 900:
            raise HarnessError(f"reference fan-out to {n} nodes not done in 900 s: "
                               f"{len(staged_nodes(srv.output()))} staged")
        time.sleep(POLL)
    t_testing = time.monotonic() - t0
    out = sim.output()
    if sim.popen.returncode != 0 or f"testing={n} " not in out or t_staged is None:
        raise HarnessError(f"reference: fleet-sim exit {sim.popen.returncode}, "
                           f"{len(staged_nodes(srv.output()))} staged: {out[-1500:]}")
    b1 = sys_bytes(site)
    srv.popen.stdin.write(b"stats\nquit\n")
    srv.popen.stdin.flush()
    srv.popen.wait(timeout=30)
    st = [ln for ln in srv.output().splitlines() if ln.startswith("stats ")][-1]
    kv = dict(p.split("=") for p in st.split()[1:])
    return {"staged_s": t_staged, "testing_s": t_testing, "chunks": int(kv["chunks"]),
            "bytes_sent": int(kv["bytes_sent"]), "bytes_resent": 0,
            "mqtt": (b1[0] - b0[0]) + (b1[1] - b0[1]),
            "cpu": {k: c1[k] - c0[k] for k in c0}}


def gateway(env, site, n, image, digest):
    site.start()
    ids = site.nodes("gw-", n)
    sim = site.fleet_sim("gw-", n, extra=["--ramp-ms", "5"])
    site.wait_trusted(ids, timeout=600)
    rc, ans, err = site.stage(image, "--class", CLASS)
    if rc != 0:
        raise HarnessError(f"staging the benchmark image: {rc} {ans} {err}")
    pid = site.gwd.pid
    rss0, hwm0 = vm(pid, "VmRSS"), vm(pid, "VmHWM")
    ota0 = site.ctl_json("status")["ota"]
    b0 = sys_bytes(site)
    pids = (("gwd", pid), ("broker", site.edge.proc.pid), ("sim", sim.pid))
    c0 = {k: cpu_s(p) for k, p in pids}
    sampler = Sampler(pid)
    sampler.start()
    t0 = time.monotonic()
    cid = site.create("--image", digest[:12], "--id", f"fan-{n}", "--waves", "100%",
                      "--max-parallel", str(n), "--deadline", "900", "--step-timeout", "120")
    t_staged = c1 = ota1 = trace = None
    while True:
        site.gwd.check_alive()
        if STRACE and trace is None and time.monotonic() - t0 > 10:
            trace = subprocess.Popen(["timeout", "-s", "INT", str(STRACE), require("strace"),
                                      "-f", "-c", "-w", "-p", str(pid)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True)
        st = site.status(cid)
        c = st.get("counts", {})
        if t_staged is None and sum(c.get(k, 0) for k in ("pending", "offered", "downloading",
                                                            "retry_wait")) == 0:
            t_staged = time.monotonic() - t0
            c1 = {k: cpu_s(p) for k, p in pids}
            ota1 = site.ctl_json("status")["ota"]
            sampler.stop()
        if st["state"] in ("completed", "halted", "aborted", "failed"):
            break
        if time.monotonic() - t0 > 900:
            raise HarnessError(f"campaign on {n} nodes not final in 900 s: {c}")
        time.sleep(POLL)
    t_done = time.monotonic() - t0
    if sampler.is_alive():
        sampler.stop()
    if trace is not None:
        out = trace.communicate(timeout=STRACE + 30)[1]
        print(f"  strace -c -f -w of fleetgwd for {STRACE} s from 10 s into the campaign "
              f"(diagnostic: slows fleetgwd, do not compare this run's times):\n" +
              "\n".join(out.splitlines()[:16]), flush=True)
    c = st.get("counts", {})
    if st["state"] != "completed" or c.get("succeeded") != n:
        raise HarnessError(f"campaign fan-{n}: {st['state']} ({st.get('reason', '')}): {c}")
    hwm = vm(pid, "VmHWM")
    rss_end = vm(pid, "VmRSS")
    b1 = sys_bytes(site)
    ota2 = site.ctl_json("status")["ota"]
    if t_staged is None or ota1 is None:
        t_staged, ota1, c1 = t_done, ota2, {k: cpu_s(p) for k, p in pids}
    sim.stop()
    return {"staged_s": t_staged, "done_s": t_done,
            "chunks": ota1["chunks"] - ota0["chunks"],
            "bytes_sent": ota1["bytes_sent"] - ota0["bytes_sent"],
            "bytes_resent": ota1["bytes_resent"] - ota0["bytes_resent"],
            "chunks_total": ota2["chunks"] - ota0["chunks"],
            "mqtt": (b1[0] - b0[0]) + (b1[1] - b0[1]),
            "rss0": rss0, "hwm0": hwm0, "hwm": hwm, "rss_end": rss_end,
            "cpu": {k: c1[k] - c0[k] for k in c0}, "where": sampler.top(),
            "samples": sampler.samples}


def ratio(a, b):
    return a / b if b else float("inf")


def one_size(n):
    with Env(f"bench-ota-fanout-{n}") as env:
        site = OtaSite(env, edge_conf=["sys_interval 1", "max_keepalive 3600"],
                       edge_acl=["topic read $SYS/broker/bytes/#"])
        image = site.images.sign("fanout", "2.0.0", 3, payload=BODY)
        digest = site.images.digest[image]
        size = os.path.getsize(image)
        load0 = os.getloadavg()[0]
        fs = fsync_ms(env)
        print(f"bench ota_fanout {n} nodes: image {size} bytes ({BODY} body), chunk {CHUNK}, "
              f"load average {load0:.1f}, fsync {fs:.2f} ms", flush=True)
        ref = reference(env, site, n, image)
        print(f"  reference (test server): all staged {ref['staged_s']:.1f} s, all in test "
              f"mode {ref['testing_s']:.1f} s, {ref['chunks']} chunks, cpu {ref['cpu']}",
              flush=True)
        gw = gateway(env, site, n, image, digest)
        print(f"  fleetgwd: all staged {gw['staged_s']:.1f} s, completed {gw['done_s']:.1f} s, "
              f"{gw['chunks']} chunks, cpu {gw['cpu']}, VmRSS before {gw['rss0']} KiB, "
              f"VmHWM {gw['hwm']} KiB", flush=True)
        print(f"  fleetgwd threads during the transfer ({gw['samples']} samples): "
              f"{gw['where']}", flush=True)
        return {"n": n, "size": size, "ref": ref, "gw": gw, "fsync_ms": fs,
                "load": (load0, os.getloadavg()[0])}


def report(r):
    n, size, ref, gw = r["n"], r["size"], r["ref"], r["gw"]
    print(f"bench ota_fanout {n} nodes time: fleetgwd {gw['staged_s']:.1f} s create -> all "
          f"staged vs test server {ref['staged_s']:.1f} s offer -> all staged (reference): "
          f"ratio {ratio(gw['staged_s'], ref['staged_s']):.2f}; fleetgwd to completed "
          f"(re-attested, confirmed) {gw['done_s']:.1f} s, test server to all in test mode "
          f"{ref['testing_s']:.1f} s")
    print(f"bench ota_fanout {n} nodes bytes per node: image {size}, fleetgwd payload "
          f"{gw['bytes_sent'] / n:.0f} ({gw['bytes_resent'] / n:.0f} resent) in "
          f"{gw['chunks'] / n:.1f} chunks vs test server {ref['bytes_sent'] / n:.0f} in "
          f"{ref['chunks'] / n:.1f} chunks; MQTT on the node link (broker $SYS, create -> "
          f"completed) {gw['mqtt'] / 2 / n:.0f} vs {ref['mqtt'] / 2 / n:.0f} (offer -> test "
          f"mode): overhead over the image {100.0 * (gw['mqtt'] / 2 / n - size) / size:.1f} % "
          f"vs {100.0 * (ref['mqtt'] / 2 / n - size) / size:.1f} %")
    g_rate, r_rate = gw["chunks"] / gw["staged_s"], ref["chunks"] / ref["staged_s"]
    print(f"bench ota_fanout {n} nodes chunk requests: fleetgwd {g_rate:.0f}/s vs test server "
          f"{r_rate:.0f}/s: ratio {ratio(g_rate, r_rate):.2f}")
    cg, cr = gw["cpu"], ref["cpu"]
    print(f"bench ota_fanout {n} nodes cpu during the transfer (s of {gw['staged_s']:.1f} / "
          f"{ref['staged_s']:.1f} s wall): fleetgwd {cg['gwd']:.1f} vs test server "
          f"{cr['srv']:.1f}; broker {cg['broker']:.1f} vs {cr['broker']:.1f}; fleet-sim "
          f"{cg['sim']:.1f} vs {cr['sim']:.1f}; per chunk fleetgwd "
          f"{1e6 * cg['gwd'] / max(gw['chunks'], 1):.0f} us vs test server "
          f"{1e6 * cr['srv'] / max(ref['chunks'], 1):.0f} us, broker "
          f"{1e6 * cg['broker'] / max(gw['chunks'], 1):.0f} us; the three processes used "
          f"{(cg['gwd'] + cg['broker'] + cg['sim']) / gw['staged_s']:.2f} of 2 cores vs "
          f"{(cr['srv'] + cr['broker'] + cr['sim']) / ref['staged_s']:.2f}")
    print(f"bench ota_fanout {n} nodes fleetgwd memory: VmRSS before the campaign "
          f"{gw['rss0']} KiB (VmHWM {gw['hwm0']} KiB), VmHWM after {gw['hwm']} KiB, VmRSS "
          f"after {gw['rss_end']} KiB")


def main():
    raise_nofile(2 * max(SIZES) + 256)
    results = [one_size(n) for n in SIZES]
    for r in results:
        report(r)
    if len(results) >= 2:
        a, b = results[0], results[-1]
        print(f"bench ota_fanout rss {b['n']}/{a['n']}: VmHWM {b['gw']['hwm']} / "
              f"{a['gw']['hwm']} KiB = {ratio(b['gw']['hwm'], a['gw']['hwm']):.2f}, growth "
              f"during the campaign {b['gw']['hwm'] - b['gw']['rss0']} / "
              f"{a['gw']['hwm'] - a['gw']['rss0']} KiB; time ratio fleetgwd/test server "
              f"{ratio(a['gw']['staged_s'], a['ref']['staged_s']):.2f} at {a['n']}, "
              f"{ratio(b['gw']['staged_s'], b['ref']['staged_s']):.2f} at {b['n']}")
    for r in results:
        print(f"bench ota_fanout {r['n']} nodes: load average {r['load'][0]:.1f} at the start, "
              f"{r['load'][1]:.1f} at the end; fsync {r['fsync_ms']:.2f} ms")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except HarnessError as e:
        print(f"FAIL: {e}", flush=True)
        sys.exit(1)
