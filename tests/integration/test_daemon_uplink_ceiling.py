"""fleetgwd against a cloud broker that enforces a per-connection publish ceiling (issue 17):
the test plugin tests/plugins/publish_ceiling.c (Mosquitto(publish_ceiling=N): a client above
N publishes in a sliding second is kicked, as AWS IoT Core does above 100/s).

1. batching off, uplink.max_publish_per_s = the broker's ceiling (40): 3 nodes send 120
   messages each at once. fleetgwd is never kicked, its highest 1 s window at the broker is
   at most 40; while the backlog drains `fleetgwctl --json status` reports it (backlog > 0,
   waiting on publish_ceiling); every message arrives once, in order per node.
2. the same ceiling with batching on: 3 x 300 messages, never kicked, fewer publishes than
   messages (batches_sent), every message relayed (relayed_up), nothing left spooled.
"""

import json
import sys

from fleetgw_harness import Env, expect, wait_for

from daemon_common import GW_CN, PREFIX, Observer, Publisher, Site, check_sequences

NODES = ("n1", "n2", "n3")
CEILING = 40


def burst(site, start, count):
    pubs = [Publisher(site, n) for n in NODES]
    for i in range(start, start + count):
        for p in pubs:
            p.send(i)
    for p in pubs:
        p.close()


def main():
    with Env("daemon-uplink-ceiling") as env:
        site = Site(env, NODES)
        site.cloud.stop()
        site.cloud = env.start_mosquitto(site.cloud_ca, name="cloud-ceiling", unix_socket=False,
                                         superusers=[GW_CN, "observer", "operator"],
                                         publish_ceiling=CEILING)
        obs = Observer(site, PREFIX + "/nodes/#")

        # 1. batching off: the backlog grows, is reported, drains in order
        site.start_gwd(uplink={"max_publish_per_s": CEILING, "batch": "off"})
        site.wait_gwd_connected()
        N = 120
        burst(site, 1, N)
        seen = []

        def backlog_reported():
            u = json.loads(site.ctl("--json", "status").stdout).get("uplink", {})
            if u.get("backlog_messages", 0) > 0 and u.get("waiting") == "publish_ceiling":
                seen.append(u)
            return bool(seen) or site.spooled() == 0
        wait_for(backlog_reported, 60, "the backlog in fleetgwctl status, or an empty spool")
        expect(seen, "fleetgwctl --json status reported a backlog waiting on the ceiling "
               f"({seen[:1]})")
        wait_for(lambda: site.spooled() == 0, 120, "the backlog drained")
        wait_for(lambda: len(obs.messages()) >= N * len(NODES), 60, "every message upstream")
        ok, dups, detail = check_sequences(obs.messages(), {n: N for n in NODES})
        expect(ok and dups == 0, f"every message once, in order per node: {detail}")
        expect(site.cloud.ceiling_kicks() == [],
               f"the ceiling broker never kicked fleetgwd: {site.cloud.ceiling_kicks()}")

        # 2. batching on
        site.gwd.stop()
        site.start_gwd(uplink={"max_publish_per_s": CEILING, "batch": "on",
                               "batch_max_bytes": 2048, "batch_max_delay_ms": 50})
        site.wait_gwd_connected()
        M = 300
        burst(site, N + 1, M)
        wait_for(lambda: site.spooled() == 0 and
                 site.counters().get("batch_messages", 0) >= M * len(NODES), 120,
                 "the batched backlog drained")
        c = site.counters()
        expect(0 < c.get("batches_sent", 0) < M * len(NODES) / 5,
               f"{c.get('batches_sent')} batches for {M * len(NODES)} messages")
        expect(c.get("relayed_up") == (N + M) * len(NODES),
               f"relayed_up counts every message of both runs: {c.get('relayed_up')}")
        site.gwd.stop()
        expect(site.cloud.ceiling_kicks() == [],
               f"the ceiling broker never kicked fleetgwd: {site.cloud.ceiling_kicks()}")
        site.cloud.stop()
        mx = site.cloud.ceiling_max().get(GW_CN, 0)
        expect(0 < mx <= CEILING,
               f"fleetgwd's highest 1 s window at the broker: {mx} (ceiling {CEILING})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
