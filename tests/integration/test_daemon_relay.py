"""fleetgwd relay end to end, with REAL components: swtpm + tpm2-abrmd holding the gateway's
uplink key, an edge mosquitto (nodes on TLS, fleetgwd on the unix socket), a cloud mosquitto
(mutual TLS), nodes publishing with mosquitto_pub. Proves:
 1. READY=1 and WATCHDOG=1 reach NOTIFY_SOCKET; the retained gateway status is "online";
 2. telemetry arrives upstream mapped to <prefix>/nodes/<node>/... and in order per node;
 3. a cloud command reaches the addressed node only;
 4. the cloud broker stopped ~30 s under load and restarted: every message arrives, in order
    per node, distinct counts exact, duplicates only as counted re-sends;
 5. fleetgwd SIGKILLed under load and restarted: every message the edge broker accepted
    reaches the cloud, in order, duplicates bounded by the counted re-sends;
 6. SIGHUP reloads without dropping either connection;
 7. SIGTERM stops cleanly (exit 0) and the retained status becomes "offline"."""

import json
import os
import signal
import sys
import threading
import time

from fleetgw_harness import Env, HarnessError, expect, require, wait_for

from daemon_common import (PREFIX, GW_CN, NotifySocket, Observer, Publisher, Site,
                           check_sequences)


def publish_load(site, nodes, count, start_seq, rate_per_node, during=None):
    """Each node publishes `count` messages (seq start_seq..) at about rate_per_node/s, in
    threads; `during(i)` is called by the first node's thread after message i."""
    pubs = {n: Publisher(site, n) for n in nodes}

    def run(node, first):
        for i in range(count):
            pubs[node].send(start_seq + i)
            if first and during:
                during(i)
            time.sleep(1.0 / rate_per_node)

    threads = [threading.Thread(target=run, args=(n, idx == 0)) for idx, n in enumerate(nodes)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for p in pubs.values():
        p.close()  # every message was PUBACKed by the edge broker


def retained_status(site):
    r = site.env.run([require("mosquitto_sub")] + site.cloud.client_args(site.operator) +
                     ["-t", f"{PREFIX}/gateway/{GW_CN}/status", "-C", "1", "-W", "10"])
    return r.stdout.strip()


def main():
    # 20 nodes, each publishing QoS 1 through its own TLS connection to the edge broker.
    nodes = tuple(f"n{i}" for i in range(1, 21))
    with Env("daemon-relay") as env:
        site = Site(env, nodes)
        obs = Observer(site, f"{PREFIX}/nodes/#")

        # 1. start under a NOTIFY_SOCKET with a watchdog
        ns = NotifySocket(env.path("notify.sock"))
        gwd = site.start_gwd(extra_env={"NOTIFY_SOCKET": ns.path, "WATCHDOG_USEC": "1000000"})
        site.wait_gwd_connected()
        wait_for(lambda: "READY=1" in ns.poll(), 30, "READY=1 on NOTIFY_SOCKET")
        wait_for(lambda: ns.poll().count("WATCHDOG=1") >= 3, 30, "three WATCHDOG=1 pings")
        expect(True, "fleetgwd sent READY=1 and WATCHDOG=1 (WATCHDOG_USEC=1s)")
        expect(any(x.startswith("STATUS=") for x in ns.poll()), "fleetgwd sent STATUS=")
        st = json.loads(retained_status(site))
        expect(st.get("state") == "online" and
               st.get("endpoint") == "127.0.0.1:%d" % site.cloud.port,
               "the retained gateway status upstream is online and names the endpoint in use")
        expect(all(k in st for k in ("backlog_messages", "backlog_bytes", "max_publish_per_s",
                                     "drain_rate", "drain_eta_s", "batch", "batch_fill")),
               f"the retained status shows the uplink's backlog and drain rate: {st}")
        expect(any(x.startswith("STATUS=") and f"cloud up (127.0.0.1:{site.cloud.port})" in x
                   for x in ns.poll()), "STATUS= names the cloud endpoint in use")
        ns.close()

        # 2. telemetry, mapped and in order
        total = {n: 0 for n in nodes}
        publish_load(site, nodes, 50, 1, 200)
        for n in nodes:
            total[n] += 50
        wait_for(lambda: len(obs.lines()) >= sum(total.values()), 60,
                 f"{sum(total.values())} messages upstream")
        ok, dups, detail = check_sequences(obs.messages(), total)
        expect(ok and dups == 0, f"{sum(total.values())} node messages arrived upstream mapped "
                                 f"and in order "
                                 f"per node ({detail}, {dups} duplicates)")

        # 3. commands reach the addressed node only
        subs = {}
        for n in ("n1", "n2"):
            subs[n] = env.spawn(f"sub-{n}", [require("mosquitto_sub")] +
                                site.edge.client_args(site.node_certs[n]) +
                                ["-i", f"sub-{n}", "-q", "1", "-t", f"fleet/{n}/down/#", "-v"])
        site.edge.wait_subscribed("n1")
        site.edge.wait_subscribed("n2")
        op = site.operator
        for target in ("n2", "n1"):
            site.env.run([require("mosquitto_pub")] + site.cloud.client_args(op) +
                         ["-q", "1", "-t", f"{PREFIX}/cmd/{target}/reboot", "-m",
                          f"cmd-for-{target}"], check=True)
        wait_for(lambda: "cmd-for-n1" in subs["n1"].output(), 30, "the command for n1")
        wait_for(lambda: "cmd-for-n2" in subs["n2"].output(), 30, "the command for n2")
        expect(subs["n1"].output().strip() == "fleet/n1/down/reboot cmd-for-n1",
               "n1 received exactly its own command on fleet/n1/down/reboot")
        expect(subs["n2"].output().strip() == "fleet/n2/down/reboot cmd-for-n2",
               "n2 received exactly its own command on fleet/n2/down/reboot")

        # 4. cloud outage of ~30 s under load: 20 nodes x 50 msg/s for 35 s
        outage = {}

        def cloud_cycle(i):
            if i == 50:
                site.cloud.stop()
                outage["stopped"] = time.monotonic()
            if "stopped" in outage and "restarted" not in outage and \
                    time.monotonic() - outage["stopped"] >= 30:
                site.cloud.start()
                outage["restarted"] = time.monotonic()

        publish_load(site, nodes, 1750, total["n1"] + 1, 50, during=cloud_cycle)
        for n in nodes:
            total[n] += 1750
        if "restarted" not in outage:
            time.sleep(max(0.0, 30 - (time.monotonic() - outage["stopped"])))
            site.cloud.start()
            outage["restarted"] = time.monotonic()
        down = outage["restarted"] - outage["stopped"]
        expect(down >= 30, f"the cloud broker was down {down:.0f} s while nodes published")
        wait_for(lambda: len(obs.lines()) >= sum(total.values()), 180,
                 f"{sum(total.values())} messages upstream after the outage")
        wait_for(lambda: site.gwd.check_alive() or site.spooled() == 0, 60, "an empty spool")
        time.sleep(1)
        c = site.counters()
        ok, dups, detail = check_sequences(obs.messages(), total)
        expect(ok, f"after a 30 s cloud outage every message arrived, in order per node "
                   f"({detail})")
        # Duplicates: fleetgwd's counted re-sends, plus QoS 1 messages the restarted cloud
        # broker redelivers to the observer itself (in flight to the observer when it stopped;
        # at most the observer's in-flight window, 20 in mosquitto's default).
        observer_window = 20
        expect(dups <= c.get("resent", 0) + observer_window,
               f"duplicates upstream ({dups}) are within counted re-sends "
               f"({c.get('resent', 0)}) plus the observer's redelivery window ({observer_window})")
        drops = {k: v for k, v in c.items() if k not in ("relayed_up", "relayed_down", "resent")}
        expect(not drops, f"no message dropped (counters {c})")

        # 5. fleetgwd SIGKILLed under load and restarted
        killed = {}

        def kill_cycle(i):
            if i == 100:
                site.gwd.send_signal(signal.SIGKILL)
                site.gwd.popen.wait()
                killed["at"] = time.monotonic()
            if i == 200:
                site.start_gwd()

        before_resent = site.counters().get("resent", 0)
        publish_load(site, nodes, 400, total["n1"] + 1, 50, during=kill_cycle)
        for n in nodes:
            total[n] += 400
        expect("at" in killed, "fleetgwd was SIGKILLed while nodes published")
        wait_for(lambda: len(obs.lines()) >= sum(total.values()), 180,
                 f"{sum(total.values())} messages upstream after the kill")
        wait_for(lambda: site.gwd.check_alive() or site.spooled() == 0, 60, "an empty spool")
        time.sleep(1)
        c = site.counters()
        ok, dups2, detail = check_sequences(obs.messages(), total)
        expect(ok, f"after SIGKILL + restart every message the edge broker accepted reached "
                   f"the cloud, in order per node ({detail})")
        # Re-sends counted by fleetgwd, plus at most one batch of QoS 1 redeliveries from the
        # edge broker (messages spooled whose PUBACK was lost with the killed process).
        redeliver_bound = c.get("resent", 0) - before_resent + 64
        expect(dups2 - dups <= redeliver_bound,
               f"duplicates from the kill ({dups2 - dups}) are within counted re-sends plus one "
               f"in-flight window ({redeliver_bound})")

        # 6. SIGHUP: reload without dropping connections
        edge_conns = site.edge.log().count("as fleetgwd")
        cloud_conns = site.cloud.log().count(f"as {GW_CN}")
        site.gwd.send_signal(signal.SIGHUP)
        wait_for(lambda: "configuration reloaded" in site.gwd.output(), 30, "the reload")
        publish_load(site, ("n1",), 10, total["n1"] + 1, 100)
        total["n1"] += 10
        wait_for(lambda: len(obs.lines()) >= sum(total.values()) + dups2, 60,
                 "messages after the reload")
        expect(site.edge.log().count("as fleetgwd") == edge_conns and
               site.cloud.log().count(f"as {GW_CN}") == cloud_conns,
               "SIGHUP reloaded the configuration without reconnecting to either broker")

        # 7. SIGTERM: clean stop, status offline
        rc = site.gwd.stop()
        expect(rc == 0, f"fleetgwd exits 0 on SIGTERM (got {rc})")
        expect(retained_status(site) == '{"state":"offline"}',
               "the retained gateway status upstream is offline after the stop")
    return 0


if __name__ == "__main__":
    sys.exit(main())
