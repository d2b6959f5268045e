"""Cloud -> node commands through fleetgwd's durable down-queue, with REAL components: swtpm +
tpm2-abrmd holding the gateway's uplink key, the edge and cloud mosquittos, fleetgwd, nodes
subscribed with their own certificates (persistent sessions). Proves:
 a. with the edge broker stopped, commands the cloud publishes for two nodes are queued
    durably (committed rows, fleetgwctl spool shows the depth); fleetgwd is SIGKILLed, more
    commands are published while it is dead, it is restarted (edge still down), then the edge
    broker comes back: each node receives exactly its own commands, all of them, in order,
    none twice and none for the other node; relayed_down counts them on the edge's PUBACKs;
 b. spool.down_max_per_node (set by SIGHUP): commands over a node's cap are dropped and
    counted `down_queue_full`, the others delivered in order after an edge restart with
    fleetgwd running;
 d. the edge broker frozen with 16 commands in flight (the bound) and killed: after its
    restart the same fleetgwd sends them again (counted `down_resent`) and then the rest;
    each node still gets every command once, in order;
 b2. spool.down_max_bytes (set by SIGHUP): the commands over the down-queue's own byte
    budget are dropped, newest first, and counted `down_spool_full`; the rest delivered;
 c. spool.down_ttl_s: commands queued longer are dropped and counted `down_expired`, later
    commands still flow;
 e. a command fleetgwd cannot write (database locked) is not acknowledged: the cloud broker
    redelivers it and the node gets it once the database is writable again;
 and a command for a node without an edge session is counted `down_no_subscribers`.
Fails if fleetgwd publishes commands straight to the edge broker again (they are then
dropped while the edge is down, and nothing is queued)."""

import json
import signal
import sqlite3
import subprocess
import sys
import threading
import time

from fleetgw_harness import Env, HarnessError, expect, program, require, wait_for

from daemon_common import PREFIX, Site

NODES = ("n1", "n2")


def ctl(site, *args):
    r = subprocess.run([program("fleetgwctl"), "--socket", site.control_socket, *args],
                       capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise HarnessError(f"fleetgwctl {' '.join(args)} exited {r.returncode}: "
                           f"{r.stdout}{r.stderr}")
    return r.stdout


def ctl_json(site, cmd="spool"):
    return json.loads(ctl(site, "--json", cmd))


def committed_down(site):
    """[(node, topic, payload)] of the committed down-queue rows, in id order (a separate
    connection sees only committed transactions)."""
    db = sqlite3.connect(f"file:{site.spool}?mode=ro", uri=True)
    try:
        return db.execute("SELECT node, topic, payload FROM down ORDER BY id").fetchall()
    finally:
        db.close()


def cloud_publish(site, node, seqs, sub):
    """The operator publishes one QoS 1 command per seq on <prefix>/cmd/<node>/<sub>, in order,
    over one connection; returns once the cloud broker acknowledged all of them."""
    lines = "".join(f"{node}:{s:06d}\n" for s in seqs)
    site.env.run([require("mosquitto_pub")] + site.cloud.client_args(site.operator) +
                 ["-i", f"op-{node}-{time.monotonic_ns()}", "-q", "1",
                  "-t", f"{PREFIX}/cmd/{node}/{sub}", "-l"], input=lines, check=True)


def cloud_publish_all(site, batches):
    """batches: {node: (seqs, sub)}, published concurrently (interleaved between nodes)."""
    errors = []

    def run(node, seqs, sub):
        try:
            cloud_publish(site, node, seqs, sub)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(n, s, sub)) for n, (s, sub) in batches.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise HarnessError(f"publishing commands on the cloud broker failed: {errors[0]}")


class Nodes:
    """The nodes' command subscribers on the edge broker: persistent sessions (-c, fixed ids),
    QoS 1, each on fleet/<node>/down/# with its own certificate (the broker ACL allows a node
    only its own subtree). Processes come and go with the broker; lines() joins them all."""

    def __init__(self, site):
        self.site = site
        self.procs = {n: [] for n in NODES}
        self.runs = 0

    def start(self):
        self.runs += 1
        for n in NODES:
            self.procs[n].append(self.site.env.spawn(
                f"sub-{n}-{self.runs}",
                [require("mosquitto_sub")] + self.site.edge.client_args(self.site.node_certs[n]) +
                ["-i", f"sub-{n}", "-c", "-q", "1", "-t", f"fleet/{n}/down/#", "-v"]))
        for n in NODES:
            self.site.edge.wait_subscribed(n, self.runs)

    def stop(self):
        for n in NODES:
            self.procs[n][-1].stop()

    def lines(self, node):
        out = []
        for p in self.procs[node]:
            out += [line for line in p.output().splitlines() if line.startswith("fleet/")]
        return out


def check_node(lines, node, expected):
    """Every line is `fleet/<node>/down/<sub> <node>:<seq>` for this node, and the seqs are
    exactly `expected` (all of them, in order, none twice)."""
    seqs = []
    for line in lines:
        topic, _, payload = line.partition(" ")
        owner, _, seq = payload.partition(":")
        if not topic.startswith(f"fleet/{node}/down/"):
            return False, f"{node} received on {topic}"
        if owner != node:
            return False, f"{node} received a command for {owner} ({line})"
        seqs.append(int(seq))
    if seqs != expected:
        return False, (f"{node} received {len(seqs)} command(s) {seqs[:8]}..{seqs[-3:]}, "
                       f"expected {len(expected)} {expected[:8]}..{expected[-3:]}")
    return True, f"{len(seqs)} command(s)"


def expect_delivered(site, nodes, expected, what):
    """Waits until every node has at least its expected commands and the down-queue is empty,
    gives a duplicate time to arrive, then checks each node's commands exactly."""
    for n in NODES:
        wait_for(lambda n=n: len(nodes.lines(n)) >= len(expected[n]), 60,
                 f"{len(expected[n])} commands at {n}")
    wait_for(lambda: len(committed_down(site)) == 0, 30, "an empty down-queue")
    time.sleep(1)  # anything extra (a duplicate) would arrive now
    for n in NODES:
        ok, detail = check_node(nodes.lines(n), n, expected[n])
        expect(ok, f"{what}: {n} received its commands, in order, once ({detail})")


def reload(site, **over):
    """Rewrites fleetgwd's configuration (sections in over) and has it reloaded by SIGHUP."""
    site.config(**over)
    reloads = site.gwd.output().count("configuration reloaded")
    site.gwd.send_signal(signal.SIGHUP)
    wait_for(lambda: site.gwd.output().count("configuration reloaded") > reloads, 30,
             "the reload")


def stop_edge(site, nodes):
    """Nodes leave (sessions kept), the edge broker stops, fleetgwd notices."""
    lost = site.gwd.output().count("lost the edge broker connection")
    nodes.stop()
    site.edge.stop()
    wait_for(lambda: site.gwd.output().count("lost the edge broker connection") > lost, 30,
             "fleetgwd to notice that the edge broker is gone")


def start_edge(site, nodes):
    conn = site.gwd.output().count("connected to the edge broker")
    site.edge.start()
    wait_for(lambda: site.gwd.output().count("connected to the edge broker") > conn, 60,
             "fleetgwd to reconnect to the edge broker")
    nodes.start()


def main():
    N, M = 40, 10  # commands per node before the kill, and while fleetgwd is dead
    with Env("daemon-downlink") as env:
        site = Site(env, NODES)
        site.start_gwd()
        site.wait_gwd_connected()
        nodes = Nodes(site)
        nodes.start()  # the nodes' persistent sessions exist on the edge broker

        # a. edge down; commands queued; SIGKILL; more while dead; restart; edge back
        stop_edge(site, nodes)
        cloud_publish_all(site, {n: (list(range(1, N + 1)), "set") for n in NODES})
        wait_for(lambda: len(committed_down(site)) == 2 * N, 60,
                 f"{2 * N} committed rows in the down-queue")
        js = ctl_json(site)
        expect(js["edge"] == "disconnected" and js["down_queued"] == 2 * N and
               js["down_bytes"] > 0 and js["down_inflight"] == 0,
               f"fleetgwctl --json spool shows the {2 * N} queued commands while the edge broker "
               f"is down (down_queued {js.get('down_queued')}, down_bytes {js.get('down_bytes')})")
        text = ctl(site, "spool")
        line = [x for x in text.splitlines() if x.startswith("down queue")]
        expect(line and line[0].startswith(f"down queue    {2 * N} command(s)"),
               f"fleetgwctl spool prints the down-queue depth ({line})")
        rows = committed_down(site)
        for n in NODES:
            mine = [(t, p.decode()) for (node, t, p) in rows if node == n]
            expect(mine == [(f"fleet/{n}/down/set", f"{n}:{s:06d}") for s in range(1, N + 1)],
                   f"the committed rows for {n} are its {N} commands, mapped, in order")
        time.sleep(1)  # the cloud's PUBACKs leave right after the commit; let them go
        site.gwd.send_signal(signal.SIGKILL)
        site.gwd.popen.wait()
        cloud_publish_all(site, {n: (list(range(N + 1, N + M + 1)), "set") for n in NODES})
        site.start_gwd()
        wait_for(lambda: site.gwd.check_alive() or
                 "connected to the cloud broker" in site.gwd.output(), 60,
                 "the restarted fleetgwd to connect to the cloud broker")
        wait_for(lambda: len(committed_down(site)) == 2 * (N + M), 60,
                 f"{2 * (N + M)} committed rows after the restart (the {2 * M} published while "
                 f"fleetgwd was dead added)")
        expect(f"{2 * N} cloud command(s) queued" in site.gwd.output(),
               f"the restarted fleetgwd found the {2 * N} commands queued before the kill")
        start_edge(site, nodes)
        total = N + M
        for n in NODES:
            wait_for(lambda n=n: len(nodes.lines(n)) >= total, 60, f"{total} commands at {n}")
        wait_for(lambda: len(committed_down(site)) == 0 and
                 site.counters().get("relayed_down", 0) == 2 * total, 30,
                 "an empty down-queue and every command counted relayed_down")
        time.sleep(1)  # anything extra (a duplicate) would arrive now
        expected = {n: list(range(1, total + 1)) for n in NODES}
        for n in NODES:
            ok, detail = check_node(nodes.lines(n), n, expected[n])
            expect(ok, f"after edge outage + SIGKILL + restart {n} received exactly its "
                       f"commands, all, in order, once ({detail})")
        c = site.counters()
        expect(c.get("relayed_down") == 2 * total and not c.get("down_resent"),
               f"relayed_down = {2 * total} (counted on the edge broker's PUBACKs), nothing "
               f"resent (counters {c})")
        drops = {k: v for k, v in c.items() if k.startswith("down_")}
        expect(not drops, f"no command dropped ({drops})")

        # b. per-node cap, set by SIGHUP; edge restart with fleetgwd running
        reload(site, spool={"down_max_per_node": 5})
        stop_edge(site, nodes)
        cloud_publish_all(site, {"n1": (list(range(1001, 1009)), "cfg/limit"),
                                 "n2": (list(range(1001, 1004)), "cfg/limit")})
        wait_for(lambda: site.counters().get("down_queue_full", 0) == 3 and
                 len(committed_down(site)) == 8, 60,
                 "3 commands over n1's cap counted down_queue_full, 8 rows queued")
        expect(ctl_json(site)["counters"].get("down_queue_full") == 3,
               "fleetgwctl shows the down_queue_full counter")
        start_edge(site, nodes)
        expected["n1"] += list(range(1001, 1006))
        expected["n2"] += list(range(1001, 1004))
        expect_delivered(site, nodes, expected,
                         "with spool.down_max_per_node 5, up to the cap")
        c = site.counters()
        expect(c.get("down_queue_full") == 3 and c.get("relayed_down") == 2 * total + 8,
               f"the cap dropped exactly 3 commands (down_queue_full), 8 relayed (counters {c})")

        # b2. the down-queue's own byte budget (spool.down_max_bytes), set by SIGHUP: the
        # commands that would take it over are dropped (the newest), counted down_spool_full;
        # the ones queued are delivered in order.
        reload(site, spool={"down_max_bytes": 4096})
        stop_edge(site, nodes)
        full0 = site.counters().get("down_spool_full", 0)
        seqs = list(range(5001, 5151))
        cloud_publish(site, "n1", seqs, "cfg/bytes")
        wait_for(lambda: site.counters().get("down_spool_full", 0) - full0 +
                 len(committed_down(site)) == len(seqs), 60,
                 "every command either queued or counted down_spool_full")
        rows = committed_down(site)
        used = sum(len(t) + len(p) for _, t, p in rows)
        dropped = site.counters().get("down_spool_full", 0) - full0
        got = [int(p.decode().partition(":")[2]) for _, _, p in rows]
        expect(dropped > 0 and used <= 4096 and used + 32 > 4096 and got == seqs[:len(rows)],
               f"spool.down_max_bytes 4096: the first {len(rows)} commands queued ({used} "
               f"bytes of topics and payloads), the {dropped} newest dropped (down_spool_full)")
        js = ctl_json(site)
        expect(js.get("down_max_bytes") == 4096 and js.get("down_bytes") == used,
               f"fleetgwctl spool shows the budget and its use ({js.get('down_bytes')} of "
               f"{js.get('down_max_bytes')} bytes)")
        start_edge(site, nodes)
        expected["n1"] += seqs[:len(rows)]
        expect_delivered(site, nodes, expected, "with spool.down_max_bytes 4096")

        # d. commands in flight when the edge broker dies: the edge broker is frozen
        # (SIGSTOP), fleetgwd publishes up to its in-flight bound and waits for PUBACKs; the
        # broker is then SIGKILLed (it never read them) and restarted: fleetgwd (still the same
        # process) sends the in-flight ones again, then the rest, in order.
        reload(site)
        nodes.stop()
        site.edge.proc.send_signal(signal.SIGSTOP)
        before = site.counters()
        cloud_publish_all(site, {n: (list(range(3001, 3021)), "set") for n in NODES})
        wait_for(lambda: len(committed_down(site)) == 40, 60, "40 commands queued")
        time.sleep(1)  # fleetgwd has published what its in-flight bound allows
        js = ctl_json(site)
        expect(js["down_queued"] == 40 and js["down_inflight"] == 16,
               f"at most 16 commands are in flight to the edge broker (down_inflight "
               f"{js['down_inflight']} of {js['down_queued']} queued)")
        lost = site.gwd.output().count("lost the edge broker connection")
        site.edge.proc.send_signal(signal.SIGKILL)
        site.edge.proc.popen.wait()
        wait_for(lambda: site.gwd.output().count("lost the edge broker connection") > lost, 30,
                 "fleetgwd to notice that the edge broker died")
        site.edge.stop()
        start_edge(site, nodes)
        for n in NODES:
            expected[n] += list(range(3001, 3021))
        expect_delivered(site, nodes, expected,
                         "after the edge broker died with commands in flight")
        c = site.counters()
        expect(c.get("down_resent", 0) - before.get("down_resent", 0) == 16 and
               c.get("relayed_down", 0) - before.get("relayed_down", 0) == 40,
               f"the 16 in flight were counted down_resent, all 40 relayed_down (counters {c})")

        # c. TTL: commands older than spool.down_ttl_s are dropped and counted
        reload(site, spool={"down_max_per_node": 1000, "down_ttl_s": 1})
        stop_edge(site, nodes)
        cloud_publish(site, "n1", [2001, 2002], "set")
        wait_for(lambda: site.counters().get("down_expired", 0) == 2, 60,
                 "2 commands expired (down_expired)")
        # (the counters shown include what the next group commit writes: wait for it)
        wait_for(lambda: len(committed_down(site)) == 0, 30,
                 "the expired commands gone from the committed queue")
        start_edge(site, nodes)
        cloud_publish(site, "n1", [2003], "set")
        expected["n1"].append(2003)
        wait_for(lambda: len(nodes.lines("n1")) >= len(expected["n1"]), 60, "the command 2003")
        time.sleep(1)
        ok, detail = check_node(nodes.lines("n1"), "n1", expected["n1"])
        expect(ok, f"expired commands never reach the node, later ones do ({detail})")

        # e. the database refuses the write (another connection holds the write lock, so
        # fleetgwd's BEGIN fails after its busy timeout): the command is not acknowledged to the
        # cloud (the uplink is shut down unwritten), the cloud broker redelivers it after the
        # reconnect, and once the lock is gone it is queued and delivered, once.
        errors = site.gwd.output().count("cannot queue a cloud command")
        lock = sqlite3.connect(site.spool, isolation_level=None, timeout=30)
        try:
            lock.execute("BEGIN IMMEDIATE")
            cloud_publish(site, "n1", [4001], "set")
            wait_for(lambda: site.gwd.output().count("cannot queue a cloud command") > errors, 60,
                     "fleetgwd to fail writing the command")
        finally:
            lock.execute("ROLLBACK")
            lock.close()
        expected["n1"].append(4001)
        wait_for(lambda: len(nodes.lines("n1")) >= len(expected["n1"]), 60,
                 "the command 4001, redelivered by the cloud broker")
        wait_for(lambda: len(committed_down(site)) == 0, 30, "an empty down-queue")
        time.sleep(1)
        ok, detail = check_node(nodes.lines("n1"), "n1", expected["n1"])
        expect(ok, f"a command fleetgwd could not write was not acknowledged, the cloud "
                   f"redelivered it and the node got it once ({detail})")

        # A command for a node that has no session on the edge broker: accepted by the broker
        # (relayed_down) with reason "no matching subscribers", counted so.
        relayed = site.counters().get("relayed_down", 0)
        cloud_publish(site, "n9", [1], "set")
        wait_for(lambda: site.counters().get("down_no_subscribers", 0) == 1, 30,
                 "the command for n9 counted down_no_subscribers")
        expect(site.counters().get("relayed_down", 0) == relayed + 1 and
               len(committed_down(site)) == 0,
               "a command nobody subscribed to is counted down_no_subscribers and not kept")

        expect(site.gwd.stop() == 0, "fleetgwd stops cleanly")
    return 0


if __name__ == "__main__":
    sys.exit(main())
