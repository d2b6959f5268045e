"""Benchmark: fleetgwd relay vs mosquitto's own bridge on the same path (edge broker ->
cloud broker over mutual TLS, QoS 1), measured in the same run on this machine.

Figures (printed, and as ratios fleetgwd / bridge):
 - throughput: N messages published as fast as one mosquitto_pub -l can, time from the first
   publish to the last arrival upstream; ROUNDS rounds (every path back to back, order
   rotating), the median of the rounds' ratios is the figure (this VM's speed drifts
   between runs), with the CPU time per message of every process on each path;
 - the ceiling: a third path through fleetgw-bench-min-relay (tests/bench/min_relay.c), the
   least work a relay that adds a hop can do under fleetgwd's durability rule (bulk reads,
   one fsync'ed SQLite batch, batched PUBACKs, several MQTT packets per TLS record, no
   libmosquitto, no checks). Its ratio to the bridge is how far any two-hop relay can go on
   this machine; fleetgwd / ceiling is what fleetgwd's own work costs;
 - added latency: messages paced at 200/s, p50 / p99 of (arrival upstream - write to the
   publisher) — the publisher and subscriber overhead is the same on both paths;
 - idle RSS of fleetgwd (and of the bridging broker, for scale);
 - time from exec to READY=1 on NOTIFY_SOCKET (spool open, TPM TLS context, control socket);
 - the clustered cloud (issue 14): a fourth path, this build's fleetgwd on an edge broker of its
   own relaying to a 2-node RabbitMQ cluster (tests/harness/rabbitmq_harness.py; uplink.hosts
   = both nodes, the subscriber on the node it uses), in the same rounds: its throughput
   beside fleetgwd -> mosquitto, and their per-round ratio; and a fifth, mosquitto_pub
   publishing straight to that RabbitMQ node (no edge broker, no relay): what the cluster
   takes from one QoS 1 publisher on this machine, the ceiling of the fourth.

Differences kept visible: fleetgwd signs its TLS handshake in the TPM (swtpm via abrmd) and
fsyncs every spool batch (SQLite WAL, synchronous=FULL) before acknowledging; the bridge uses
a software key and acknowledges from memory.

Two builds in one run: with FLEETGW_BENCH_REF=<path of another fleetgwd> (as
scripts/bench-compare.sh sets it), that reference daemon runs beside this build's, on its own
edge broker configured like the first (same TPM key, cloud broker, configuration), and every
round measures both back to back (which goes first alternates), so machine load falls on both
alike. Printed in addition: each binary's ratio to the bridge, its CPU per message, and the
per-round ratio this build / reference (throughput, fleetgwd CPU per message) with its
median, quartiles and range. FLEETGW_BENCH_REF_NAME names the reference in the output,
FLEETGW_BENCH_ROUNDS sets the number of rounds (default 7)."""

import grp
import os
import statistics
import subprocess
import sys
import threading
import time

from fleetgw_harness import Env, expect, program, require, wait_for
from rabbitmq_harness import RabbitCluster

from daemon_common import GW_CN, PREFIX, NotifySocket, Site, pct

N_THROUGHPUT = 10000   # messages per throughput round
ROUNDS = int(os.environ.get("FLEETGW_BENCH_ROUNDS") or 7)  # rounds of every path, order rotating
REF = os.environ.get("FLEETGW_BENCH_REF")  # a second fleetgwd to compare with, or None
REF_NAME = os.environ.get("FLEETGW_BENCH_REF_NAME") or "reference"
N_LATENCY = 1000
RATE_LATENCY = 200


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def run_path(site, edge, topic_in, topic_out, count, rate, label, cluster=None):
    """Publishes `count` lines on topic_in (paced at rate/s, or unpaced if None) and collects
    them upstream on topic_out (on the RabbitMQ cluster's first node when cluster is given,
    else on the mosquitto cloud broker); returns (elapsed_s, [latency_s])."""
    sub_cert = site.operator
    args = (cluster.client_args(sub_cert, 0) if cluster is not None
            else site.cloud.client_args(sub_cert))
    sub = subprocess.Popen([require("mosquitto_sub")] + args +
                           ["-q", "1", "-t", topic_out, "-C", str(count), "-F", "%U %p",
                            "-i", f"bench-sub-{label}"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if cluster is not None:
        queue = f"mqtt-subscription-bench-sub-{label}qos1"
        wait_for(lambda: queue in cluster.ctl("list_queues", "name").stdout, 60,
                 f"the subscription {queue} on the RabbitMQ cluster")
    else:
        site.cloud.wait_subscribed("operator", site._subs + 1)
        site._subs += 1
    pub_args = (cluster.client_args(sub_cert, 0) if edge is None
                else edge.client_args(site.node_certs["n1"]))
    pub = subprocess.Popen([require("mosquitto_pub")] + pub_args +
                           ["-q", "1", "-t", topic_in, "-l", "-i", f"bench-pub-{label}"],
                           stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE)
    t0 = time.time()
    for i in range(count):
        pub.stdin.write(f"{i} {time.time():.6f}\n".encode())
        if rate:
            pub.stdin.flush()
            next_t = t0 + (i + 1) / rate
            d = next_t - time.time()
            if d > 0:
                time.sleep(d)
    pub.stdin.close()
    out, err = sub.communicate(timeout=600)
    pub.wait(timeout=60)
    lines = [x for x in out.splitlines() if x.strip()]
    if len(lines) != count:
        raise AssertionError(f"{label}: {len(lines)} of {count} arrived ({err.strip()[-300:]})")
    lat = []
    last = 0.0
    for line in lines:
        recv, seq, sent = line.split(" ")
        lat.append(float(recv) - float(sent))
        last = max(last, float(recv))
    return last - t0, lat


def cpu_ticks(pid):
    """user and system CPU time of a process so far, in clock ticks."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]), int(fields[12])


def quartiles(values):
    """(lower quartile, median, upper quartile) of values (inclusive method)."""
    if len(values) < 2:
        return values[0], values[0], values[0]
    q = statistics.quantiles(values, n=4, method="inclusive")
    return q[0], statistics.median(values), q[2]


def spread(values, fmt="{:.2f}"):
    lo, med, hi = quartiles(values)
    return (f"median {fmt.format(med)}, quartiles {fmt.format(lo)}-{fmt.format(hi)}, "
            f"range {fmt.format(min(values))}-{fmt.format(max(values))}")


def round_order(r, daemons, others):
    """The paths of round r: the fleetgwd binaries back to back (which goes first alternates),
    before or after the other paths (alternating), the other paths rotating."""
    pair = daemons if r % 2 == 0 else daemons[::-1]
    rest = others[r % len(others):] + others[:r % len(others)]
    return pair + rest if (r // 2) % 2 == 0 else rest + pair


def main():
    if REF and not os.access(REF, os.X_OK):
        raise SystemExit(f"FLEETGW_BENCH_REF={REF}: not an executable file (the reference "
                         "fleetgwd to compare with)")
    with Env("bench-relay") as env:
        site = Site(env, nodes=("n1",))
        site._subs = 0
        # Both daemons get the same control group (the reference may predate the default of
        # "the daemon's own group").
        control = {"group": grp.getgrgid(os.getegid()).gr_name}
        # Reference: a second edge broker that bridges fleet/# to the cloud itself.
        bridge_cert = site.cloud_ca.issue("bridge")
        ceiling_cert = site.cloud_ca.issue("ceiling")
        site.cloud.proc.stop()
        with open(site.cloud.acl_path, "a") as f:
            f.write("user bridge\ntopic readwrite #\nuser ceiling\ntopic readwrite #\n")
        site.cloud.start()
        # Nodes may also publish on ceiling/<node>/#, the ceiling relay's own topics (so that
        # fleetgwd, subscribed to fleet/+/up/#, does not see that path's traffic).
        site.edge.proc.stop()
        with open(site.edge.acl_path, "a") as f:
            f.write("pattern readwrite ceiling/%u/#\n")
        site.edge.start()
        bridge_edge = env.start_mosquitto(site.edge_ca, name="edge-bridge", unix_socket=False,
                                          extra_conf=[
            "connection cloud", f"address 127.0.0.1:{site.cloud.port}",
            f"bridge_cafile {site.cloud_ca.cert_path}", f"bridge_certfile {bridge_cert[0]}",
            f"bridge_keyfile {bridge_cert[1]}", "bridge_protocol_version mqttv311",
            "cleansession false", "bridge_insecure false",
            f"topic # out 1 fleet/ {PREFIX}/bridge/"])
        wait_for(lambda: "bridge" in " ".join(site.cloud.client_ids("bridge")) or
                 site.cloud.client_ids("bridge"), 30, "the bridge to connect")

        # The daemons: this build's, and the reference on an edge broker of its own.
        sites = {"fleetgwd": site}
        if REF:
            sites[REF_NAME] = site.twin("ref", site.start_edge_like("edge-ref"), REF)
        names = list(sites)

        # time to READY (3 starts each, interleaved), then keep the last ones running
        ready = {name: [] for name in names}
        for i in range(3):
            for name, s in sites.items():
                ns = NotifySocket(env.path(f"notify-{s.tag}{i}.sock"))
                t0 = time.monotonic()
                gwd = s.start_gwd(extra_env={"NOTIFY_SOCKET": ns.path}, control=control,
                                  spool={"drain_rate": 1000000, "max_inflight": 100},
                                  limits={"per_node_rate": 1000000, "per_node_burst": 1000000})
                wait_for(lambda: gwd.check_alive() or "READY=1" in ns.poll(), 60,
                         f"READY=1 from {name}")
                ready[name].append(time.monotonic() - t0)
                ns.close()
                if i < 2:
                    gwd.stop()
        for s in sites.values():
            s.wait_gwd_connected()
        time.sleep(2)
        idle_rss = {name: rss_kb(s.gwd.pid) for name, s in sites.items()}
        bridge_rss = rss_kb(bridge_edge.proc.pid)

        ceiling = env.spawn("min-relay", [
            program("fleetgw-bench-min-relay"), "--edge-socket", site.edge.socket_path,
            "--edge-user", "fleetgwd", "--edge-password-file", env.path("edge.secret"),
            "--client-id", "ceiling", "--cloud-port", str(site.cloud.port),
            "--cafile", site.cloud_ca.cert_path, "--cert", ceiling_cert[0],
            "--key", ceiling_cert[1], "--db", env.path("ceiling.db"),
            "--in-prefix", "ceiling/", "--out-prefix", f"{PREFIX}/ceiling/"])
        wait_for(lambda: ceiling.check_alive() or "ready" in ceiling.output(), 30,
                 "the ceiling relay to connect")

        # The clustered cloud: a 2-node RabbitMQ cluster (same CA: the gateway and operator
        # certificates log in by their CN) and this build's fleetgwd on an edge broker of its
        # own, connected to the first node (uplink.hosts lists both).
        cluster = RabbitCluster(env, site.cloud_ca, nodes=2).start()
        cluster.add_user(GW_CN)
        cluster.add_user("operator")
        rsite = site.twin("rabbit", site.start_edge_like("edge-rabbit"), None)
        rsite.cloud = cluster.nodes[0]
        rsite.start_gwd(control=control,
                        uplink={"host": None, "port": None,
                                "hosts": [{"host": "127.0.0.1", "port": n.mqtt_port}
                                          for n in cluster.nodes]},
                        spool={"drain_rate": 1000000, "max_inflight": 100},
                        limits={"per_node_rate": 1000000, "per_node_burst": 1000000})
        rsite.wait_gwd_connected()

        # Throughput: paired rounds, the paths back to back in alternating order. This
        # machine's speed drifts between runs (shared virtual CPUs: the same path varies by
        # up to 2x from one run to the next), so each round's ratio compares runs made
        # seconds apart, and the median of the rounds is the figure. CPU time per message of
        # each process on the path (user+system) shows where the work goes.
        paths = {}
        for name, s in sites.items():
            paths[name] = (s.edge, "fleet/n1/up/bench", f"{PREFIX}/nodes/n1/bench",
                           {"edge broker": s.edge.proc.pid, "fleetgwd": s.gwd.pid,
                            "cloud broker": site.cloud.proc.pid}, None)
        paths["bridge"] = (bridge_edge, "fleet/n1/up/bench", f"{PREFIX}/bridge/n1/up/bench",
                           {"edge broker + bridge": bridge_edge.proc.pid,
                            "cloud broker": site.cloud.proc.pid}, None)
        paths["ceiling"] = (site.edge, "ceiling/n1/up/bench", f"{PREFIX}/ceiling/n1/up/bench",
                            {"edge broker": site.edge.proc.pid, "min relay": ceiling.pid,
                             "cloud broker": site.cloud.proc.pid}, None)
        # (the RabbitMQ node's CPU is not sampled: its Erlang VM is a child of the start script)
        paths["rabbit"] = (rsite.edge, "fleet/n1/up/bench", f"{PREFIX}/nodes/n1/bench",
                           {"edge broker": rsite.edge.proc.pid, "fleetgwd": rsite.gwd.pid},
                           cluster)
        paths["rabbit-direct"] = (None, f"{PREFIX}/direct/n1/bench", f"{PREFIX}/direct/n1/bench",
                                  {}, cluster)
        tick_us = 1e6 / os.sysconf("SC_CLK_TCK")
        rates = {label: [] for label in paths}
        cpu = {label: {name: [] for name in paths[label][3]} for label in paths}
        to_bridge = {label: [] for label in paths if label != "bridge"}
        for label, (edge, topic_in, out, _, cl) in paths.items():
            run_path(site, edge, topic_in, out, 50, None, label + "-warm", cl)
        for r in range(ROUNDS):
            got = {}
            for label in round_order(r, names, ["bridge", "ceiling", "rabbit", "rabbit-direct"]):
                edge, topic_in, out, pids, cl = paths[label]
                c0 = {name: cpu_ticks(pid) for name, pid in pids.items()}
                thr_s, _ = run_path(site, edge, topic_in, out, N_THROUGHPUT, None,
                                    f"{label}-thr{r}", cl)
                for name, pid in pids.items():
                    u1, s1 = cpu_ticks(pid)
                    cpu[label][name].append(((u1 - c0[name][0]) + (s1 - c0[name][1])) *
                                            tick_us / N_THROUGHPUT)
                got[label] = N_THROUGHPUT / thr_s
                rates[label].append(got[label])
            for label in to_bridge:
                to_bridge[label].append(got[label] / got["bridge"])
            print(f"round {r + 1}: " + ", ".join(f"{label} {got[label]:7.0f} msg/s"
                                                 for label in paths) +
                  "; ratio to the bridge " + ", ".join(f"{label} {to_bridge[label][-1]:.2f}"
                                                       for label in to_bridge) +
                  (f"; fleetgwd / {REF_NAME} {got['fleetgwd'] / got[REF_NAME]:.3f}"
                   if REF else ""), flush=True)
        results = {}
        for label in names + ["bridge", "rabbit"]:
            edge, topic_in, out, _, cl = paths[label]
            _, lat = run_path(site, edge, topic_in, out, N_LATENCY, RATE_LATENCY,
                              label + "-lat", cl)
            results[label] = {"msgs_per_s": statistics.median(rates[label]),
                              "p50_ms": pct(lat, 50) * 1000, "p99_ms": pct(lat, 99) * 1000}

        b = results["bridge"]
        print("\n== bench_relay (same machine, same run) ==")
        if REF:
            print(f"fleetgwd    this build; {REF_NAME}: {REF}")
        print("throughput  " + "   ".join(f"{label} {results[label]['msgs_per_s']:8.0f} msg/s"
                                          for label in results) +
              f"   (medians of {ROUNDS} rounds of {N_THROUGHPUT} messages)")
        for label in names:
            print(f"ratio       {label} / bridge {spread(to_bridge[label])}   rounds: "
                  f"{', '.join(f'{x:.2f}' for x in to_bridge[label])}")
        ceil = to_bridge["ceiling"]
        print(f"ceiling     min relay / bridge median {statistics.median(ceil):.2f}"
              f"   rounds: {', '.join(f'{x:.2f}' for x in ceil)}")
        for label in names:
            print(f"            {label} / min relay median "
                  f"{statistics.median(a / c for a, c in zip(to_bridge[label], ceil)):.2f}")
        for label in paths:
            parts = [f"{name} {statistics.median(v):.1f}" for name, v in cpu[label].items()]
            if parts:
                print(f"cpu us/msg  {label:8s} " + ", ".join(parts))
        if REF:
            thr = [a / c for a, c in zip(rates["fleetgwd"], rates[REF_NAME])]
            cpu_r = [a / c for a, c in zip(cpu["fleetgwd"]["fleetgwd"], cpu[REF_NAME]["fleetgwd"])
                     if c > 0]
            faster = sum(1 for x in thr if x > 1.0)
            print(f"this build / {REF_NAME}, per round (throughput; > 1 is faster): "
                  f"{spread(thr, '{:.3f}')}; faster in {faster} of {len(thr)} rounds")
            print(f"            rounds: {', '.join(f'{x:.3f}' for x in thr)}")
            if cpu_r:
                print(f"this build / {REF_NAME}, fleetgwd CPU per message (< 1 is cheaper): "
                      f"{spread(cpu_r, '{:.3f}')}")
        to_mosq = [a / c for a, c in zip(rates["rabbit"], rates["fleetgwd"])]
        print(f"rabbitmq    fleetgwd -> RabbitMQ 3.10 cluster (2 nodes) "
              f"{results['rabbit']['msgs_per_s']:.0f} msg/s, fleetgwd -> mosquitto "
              f"{results['fleetgwd']['msgs_per_s']:.0f} msg/s; per round RabbitMQ / mosquitto "
              f"{spread(to_mosq)}; latency p50 {results['rabbit']['p50_ms']:.2f} ms, "
              f"p99 {results['rabbit']['p99_ms']:.2f} ms")
        to_direct = [a / c for a, c in zip(rates["rabbit"], rates["rabbit-direct"])]
        print(f"            one publisher straight to the RabbitMQ node "
              f"{statistics.median(rates['rabbit-direct']):.0f} msg/s; fleetgwd -> RabbitMQ / "
              f"direct per round {spread(to_direct)}")
        for label in names:
            f = results[label]
            print(f"latency     {label}: p50 {f['p50_ms']:.2f} ms "
                  f"(added {f['p50_ms'] - b['p50_ms']:+.2f}), p99 {f['p99_ms']:.2f} ms "
                  f"(added {f['p99_ms'] - b['p99_ms']:+.2f}); bridge p50 {b['p50_ms']:.2f} ms, "
                  f"p99 {b['p99_ms']:.2f} ms")
        for label in names:
            print(f"idle RSS    {label} {idle_rss[label]} kB (bridging mosquitto broker "
                  f"{bridge_rss} kB)")
            runs = ", ".join(f"{x * 1000:.0f}" for x in ready[label])
            print(f"time to READY=1 {label}: median "
                  f"{statistics.median(ready[label]) * 1000:.0f} ms (runs: {runs} ms)")
        for label, s in list(sites.items()) + [("fleetgwd -> RabbitMQ", rsite)]:
            c = s.counters()
            expect(c.get("relayed_up", 0) >= 50 + ROUNDS * N_THROUGHPUT + N_LATENCY,
                   f"{label} relayed every bench message ({c})")
        for label, s in list(sites.items()) + [("fleetgwd -> RabbitMQ", rsite)]:
            rc = s.gwd.stop()
            expect(rc == 0, f"{label} stopped cleanly")
        expect(ceiling.check_alive() is None, "the ceiling relay ran to the end without error")
    return 0


if __name__ == "__main__":
    sys.exit(main())
