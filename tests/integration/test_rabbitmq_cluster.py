"""Edge-to-cloud at scale (issue 14): three sites feed one REAL 2-node RabbitMQ cluster.

Each site is a fleetgwd with its own swtpm identity (key made in its TPM, certificate CN
gw-siteN from the cloud CA, which RabbitMQ takes as the user: ssl_cert_login), its own edge
mosquitto and 10 nodes (mosquitto_pub over mutual TLS, as in the other daemon tests); its
uplink.hosts lists both cluster nodes. A cloud-side consumer (a persistent QoS 1 MQTT
subscription on the cluster) counts every message.

  1. every message of every node arrives, in order per node, counted exactly;
  2. under load, the cluster node site1 is connected to is stopped: site1 fails over to the
     other node on its next attempt (one back-off delay), spools meanwhile, loses nothing;
     duplicates only as QoS 1 redelivery (at most what the gateways count as resent, none
     for the gateways that were not on the stopped node);
  3. the stopped node returns: no gateway reconnects or changes endpoint, and a second round
     of messages arrives exactly;
  4. cloud commands published to the cluster reach the right node at the right site only
     (the same node ids exist at every site; the topic prefix names the site).

One cluster for all scenarios (started once: about 40 s)."""

import contextlib
import os
import subprocess
import threading
import time

from fleetgw_harness import Env, HarnessError, expect, log, require, run_main, wait_for
from rabbitmq_harness import RabbitCluster

from daemon_common import HANDLE, Publisher, Site, make_tpm_key

SITES = 3
NODES = [f"n{i:02d}" for i in range(1, 11)]
ROUND1 = 150  # messages per node while the node is stopped under load
ROUND2 = 20   # messages per node after it returned


class ClusterSite(Site):
    """daemon_common.Site, but the cloud is the RabbitMQ cluster: the gateway certificate is
    signed by the cluster's CA with CN gw-<tag>, and fleetgwd's uplink.hosts lists the cluster
    nodes in the order given."""

    def __init__(self, env, cluster, tag, order):  # noqa: super().__init__ replaced
        self.env = env
        self.tag_name = tag
        self.client_id = f"gw-{tag}"
        self.prefix = tag
        self.order = order
        self.tpm = env.start_tpm()
        make_tpm_key(self.tpm)
        self.cloud_ca = cluster.ca
        csr = env.path("gw.csr")
        env.run([require("openssl"), "req", "-provider", "tpm2", "-provider", "default",
                 "-propquery", "?provider=tpm2", "-new", "-key", f"handle:{HANDLE}",
                 "-subj", f"/CN={self.client_id}", "-out", csr], env=self.tpm.client_env(),
                check=True)
        self.gw_cert = self.cloud_ca.sign_csr(csr, env.path("gw.crt"))
        cluster.add_user(self.client_id)
        self.cluster = cluster
        self.cloud = cluster.nodes[order[0]]
        self.edge_ca = env.ca("edge-ca")
        self.edge_pw = env.path("edge.passwd")
        secret = "edge-secret-" + env.dir[-8:]
        # a secret: the owner's only (fleetgwd refuses a password file others may read)
        with open(os.open(env.path("edge.secret"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600),
                  "w") as f:
            f.write(secret + "\n")
        env.run([require("mosquitto_passwd"), "-b", "-c", self.edge_pw, "fleetgwd", secret],
                check=True)
        self.edge = self.start_edge_like("edge")
        self.node_certs = {n: self.edge_ca.issue(n) for n in NODES}
        self.spool = env.path("spool.db")
        self.control_socket = env.path("control.sock")
        self.registry = None
        self.gwd = None
        self.gwd_runs = 0

    def endpoint(self, i):
        return f"127.0.0.1:{self.cluster.nodes[i].mqtt_port}"

    def start(self):
        hosts = [{"host": "127.0.0.1", "port": self.cluster.nodes[i].mqtt_port}
                 for i in self.order]
        self.start_gwd(uplink={"host": None, "port": None, "hosts": hosts,
                               "topic_prefix": self.prefix, "backoff_min_ms": 200,
                               "backoff_max_ms": 2000, "connect_timeout_s": 10},
                       spool={"drain_rate": 5000, "max_inflight": 32})
        self.wait_gwd_connected()
        expect(f"connected to the cloud broker {self.endpoint(self.order[0])}"
               in self.gwd.output(), f"{self.tag_name}: fleetgwd connected to the first "
               f"endpoint of its list ({self.cluster.nodes[self.order[0]].name})")


class Consumer:
    """The cloud side: a persistent-session QoS 1 subscriber on a cluster node."""

    def __init__(self, env, cluster, node, topic, name):
        cluster.add_user(name)
        cert = cluster.ca.issue(name)
        self.proc = env.spawn(name, [require("mosquitto_sub")] + cluster.client_args(cert, node)
                              + ["-i", name, "-c", "-q", "1", "-t", topic, "-v"])

    def messages(self, prefix):
        out = []
        for line in self.proc.output().splitlines():
            if line.startswith(prefix + "/nodes/"):
                topic, _, payload = line.partition(" ")
                out.append((topic, payload))
        return out


def feed(pubs, first, last, pause):
    """Node messages first..last from every publisher, round-robin (the load)."""
    for seq in range(first, last + 1):
        for p in pubs:
            p.send(seq)
        time.sleep(pause)


def site_sequences(consumer, site, per_node):
    """check_sequences for one site: the payload is node:seq, the topic <site>/nodes/<n>/..."""
    msgs = consumer.messages(site.prefix)
    seen, dups, last = {}, 0, {}
    for topic, payload in msgs:
        node, _, seq = payload.partition(":")
        s = int(seq)
        if topic != f"{site.prefix}/nodes/{node}/telemetry":
            return False, dups, f"{site.tag_name}: {payload} on {topic}"
        got = seen.setdefault(node, set())
        if s in got:
            dups += 1
            continue
        if s != last.get(node, 0) + 1:
            return False, dups, f"{site.tag_name} node {node}: {s} after {last.get(node, 0)}"
        got.add(s)
        last[node] = s
    for n in NODES:
        if last.get(n, 0) != per_node:
            return False, dups, f"{site.tag_name} node {n}: {last.get(n, 0)} of {per_node}"
    return True, dups, "ok"


def main():
    with contextlib.ExitStack() as stack:
        env = stack.enter_context(Env("rabbitmq-cluster"))
        ca = env.ca("cloud-ca")
        t0 = time.monotonic()
        cluster = RabbitCluster(env, ca, nodes=2).start()
        log(f"cluster started in {time.monotonic() - t0:.1f} s")
        a, b = 0, 1
        # The consumer is on node b, which stays up; site1 starts on a, the others on b.
        consumer = Consumer(env, cluster, b, "+/nodes/#", "cloud-consumer")
        wait_for(lambda: "mqtt-subscription-cloud-consumerqos1" in
                 cluster.ctl("list_queues", "name").stdout, 30, "the consumer's queue")
        sites = []
        for i, order in enumerate(([a, b], [b, a], [b, a]), start=1):
            senv = stack.enter_context(Env(f"rabbitmq-site{i}"))
            s = ClusterSite(senv, cluster, f"site{i}", order)
            s.start()
            sites.append(s)

        # 1 + 2: load on every node of every site; node a stops under it.
        pubs = {s.tag_name: [Publisher(s, n) for n in NODES] for s in sites}
        allpubs = [p for s in sites for p in pubs[s.tag_name]]
        loader = threading.Thread(target=feed, args=(allpubs, 1, ROUND1, 0.1))
        loader.start()
        wait_for(lambda: len(consumer.messages("site1")) >= 200, 120,
                 "site1's traffic at the consumer")
        lost_at = time.monotonic()
        cluster.nodes[a].stop()
        stopped = time.monotonic()
        log(f"stopped {cluster.nodes[a].name} under load in {stopped - lost_at:.1f} s")
        s1 = sites[0]
        wait_for(lambda: s1.gwd.check_alive() or
                 f"connected to the cloud broker {s1.endpoint(b)}" in s1.gwd.output(), 120,
                 "site1 to fail over")
        failover_s = time.monotonic() - lost_at
        loader.join()
        for p in allpubs:
            p.close()
        out = s1.gwd.output()
        after = out[out.index(f"lost the cloud broker connection to {s1.endpoint(a)}"):]
        expect(after.index(f"connected to the cloud broker {s1.endpoint(b)}") <
               (after.index("cannot connect") if "cannot connect" in after else len(after)),
               "site1 failed over to the other node on its first attempt after the loss "
               f"(one back-off delay, <= backoff_max_ms 2000 ms; {failover_s:.1f} s after "
               "the stop began, which itself takes seconds)")
        line = [x for x in out.splitlines()
                if f"connected to the cloud broker {s1.endpoint(b)}" in x][0]
        spooled = int(line.rsplit("; ", 1)[1].split()[0])
        expect(spooled > 0, f"site1 spooled meanwhile: {spooled} message(s) waited in its spool "
               "when it reached the other node")
        r = s1.ctl("status")
        expect(f"cloud broker  connected ({s1.endpoint(b)})" in r.stdout,
               f"fleetgwctl status of site1 names the node it failed over to:\n{r.stdout}")
        for s in sites:
            wait_for(lambda s=s: s.gwd.check_alive() or
                     (s.spooled() == 0 and site_sequences(consumer, s, ROUND1)[0]), 180,
                     f"every message of {s.tag_name} at the consumer")
        resent = {}
        for s in sites:
            ok, dups, detail = site_sequences(consumer, s, ROUND1)
            resent[s.tag_name] = s.counters().get("resent", 0)
            expect(ok, f"{s.tag_name}: {len(NODES) * ROUND1} messages, all, in order per node "
                   f"({detail})")
            expect(dups <= resent[s.tag_name],
                   f"{s.tag_name}: {dups} duplicate(s) at the consumer, all QoS 1 redelivery "
                   f"(the gateway resent {resent[s.tag_name]} after a lost connection)")
            if s is not s1:
                expect(dups == 0 and "lost the cloud broker" not in s.gwd.output(),
                       f"{s.tag_name} (on the node that stayed) lost nothing and resent nothing")
        log(f"failover figures: site1 back {failover_s:.1f} s after the stop began; "
            f"duplicates {site_sequences(consumer, s1, ROUND1)[1]}, resent {resent}")

        # 3. node a returns: nothing changes for the gateways.
        logs_before = {s.tag_name: s.gwd.output().count("connected to the cloud broker")
                       for s in sites}
        t0 = time.monotonic()
        cluster.nodes[a].start()
        log(f"{cluster.nodes[a].name} back in {time.monotonic() - t0:.1f} s")
        pubs2 = {s.tag_name: [Publisher(s, n) for n in NODES] for s in sites}
        allpubs2 = [p for s in sites for p in pubs2[s.tag_name]]
        feed(allpubs2, ROUND1 + 1, ROUND1 + ROUND2, 0.02)
        for p in allpubs2:
            p.close()
        for s in sites:
            wait_for(lambda s=s: s.gwd.check_alive() or
                     (s.spooled() == 0 and site_sequences(consumer, s, ROUND1 + ROUND2)[0]),
                     180, f"the second round of {s.tag_name}")
            ok, _, detail = site_sequences(consumer, s, ROUND1 + ROUND2)
            expect(ok, f"{s.tag_name}: after the node returned, the second round arrived, "
                   f"all, in order ({detail})")
            expect(s.gwd.output().count("connected to the cloud broker") ==
                   logs_before[s.tag_name],
                   f"{s.tag_name}: the returning node changed nothing (no reconnection)")

        # 4. cloud commands reach the right node at the right site, and no other.
        targets = {("site1", "n03"), ("site2", "n07"), ("site3", "n03")}
        watch = {}
        for s in sites:
            for n in ("n03", "n07"):
                watch[(s.tag_name, n)] = s.env.spawn(
                    f"down-{n}", [require("mosquitto_sub")] +
                    s.edge.client_args(s.node_certs[n]) +
                    ["-i", f"down-{n}", "-q", "1", "-t", f"fleet/{n}/down/#", "-v"])
            wait_for(lambda s=s: len([x for x in s.edge.log().splitlines()
                                      if "fleet/n0" in x and "/down/#" in x]) >= 2, 30,
                     f"the node subscriptions at {s.tag_name}")
        operator = ca.issue("operator")
        cluster.add_user("operator")
        for site, node in sorted(targets):
            # published on node a (back in the cluster): routed cluster-wide
            r = subprocess.run([require("mosquitto_pub")] + cluster.client_args(operator, a) +
                               ["-i", "operator", "-q", "1", "-t", f"{site}/cmd/{node}/set",
                                "-m", f"for-{site}-{node}"],
                               capture_output=True, text=True, timeout=60)
            if r.returncode != 0:
                raise HarnessError(f"publishing a command failed: {r.stderr}")
        for key in sorted(targets):
            wait_for(lambda key=key: f"for-{key[0]}-{key[1]}" in watch[key].output(), 60,
                     f"the command for {key[1]} at {key[0]}")
        settle_until = time.monotonic() + 3  # strays, if any, would be as fast as these
        while time.monotonic() < settle_until:
            time.sleep(0.2)
        for key, proc in sorted(watch.items()):
            got = [x for x in proc.output().splitlines() if x.startswith("fleet/")]
            want = [f"fleet/{key[1]}/down/set for-{key[0]}-{key[1]}"] if key in targets else []
            expect(got == want, f"{key[1]} at {key[0]} received exactly {want or 'nothing'}")

        for s in sites[1:]:
            expect(s.gwd.stop() == 0, f"{s.tag_name}: fleetgwd stops cleanly")

        # 5. Without the mirroring policy (operator-guide.md), a persistent session's queue
        # lives on one node only; while that node is down RabbitMQ closes every connection of
        # that client id at its SUBSCRIBE. fleetgwd says so, and keeps trying the list.
        cluster.ctl("clear_policy", "mqtt-ha", check=True)
        expect(s1.gwd.stop() == 0, "site1: fleetgwd stops cleanly")
        s1.order = [a, b]  # its session's queue is on b (its mirror there took over)
        s1.start()
        cluster.nodes[b].stop()
        wait_for(lambda: s1.gwd.check_alive() or
                 s1.gwd.output().count("closed the connection before acknowledging the "
                                       "subscription") >= 1, 120,
                 "fleetgwd to name the refused session")
        expect(True, "site1 logs why node a closes its connection (the session's queue is on "
               "the stopped node b; mirror the subscription queues)")
        expect(s1.gwd.stop() == 0, "site1: fleetgwd stops cleanly")
    return 0


if __name__ == "__main__":
    run_main(main)
