#!/usr/bin/python3
"""Cloud commands reach a node that was offline (issue 19, "Commands reach offline nodes").

Real components (gateway_ota_common.OtaSite): swtpm + tpm2-abrmd, the cloud and edge
mosquitto, fleetgwd with the attestation gate on, fleet-sim nodes with their own IAKs. The
command is the agent's built-in ping: the cloud publishes `<prefix>/cmd/<id>/ping` with a tag,
fleetgwd queues it durably and hands it to the edge broker, the node answers `up/pong` with
the same tag, and a cloud subscriber counts the pongs per node and tag.

Two nodes: P runs with --persistent-session (agent_config.persistent_session: clean session
off, commands subscribed QoS 1; the firmware's default), C with a clean session (the
control). Proves:
 1. both are trusted and answer a command while online;
 2. both are stopped; a command is published for each; fleetgwd is restarted (a second
    command published while it is down waits at the cloud broker for its session); after
    30 s offline both nodes come back: P gets both commands, each exactly once, and answers
    after it is trusted again; C gets neither (the edge broker had no session for it: counted
    `down_no_subscribers`) but answers a command sent after its return;
 3. the command's lifetime holds at the edge broker: fleetgwd publishes a command with what
    is left of spool.down_ttl_s as its Message Expiry Interval; P is stopped, a command sent,
    P comes back after that lifetime: the stale command never reaches it, a fresh one does.
Fails if the agent's session is clean again (2: P's commands lost), if the node subscribes to
its commands at QoS 0 (the broker does not queue them), or if fleetgwd publishes without an
expiry (3: the stale command arrives)."""

import collections
import signal
import sys
import time

from fleetgw_harness import Env, expect, require, run_main, wait_for

from daemon_common import PREFIX
from gateway_ota_common import OtaSite
from test_agent_mqtt import Subscriber

OFFLINE_S = 30
TTL_S = 40  # spool.down_ttl_s of the restarted fleetgwd: longer than OFFLINE_S


def main():
    with Env("offline-commands") as env:
        site = OtaSite(env)
        site.start()
        p_id = site.nodes("p-", 1)[0]
        c_id = site.nodes("c-", 1)[0]

        def run_p():
            return site.fleet_sim("p-", 1, extra=["--persistent-session"])

        def run_c():
            return site.fleet_sim("c-", 1)

        p, c = run_p(), run_c()
        site.wait_trusted([p_id, c_id])
        cert = site.cloud_ca.issue("observer")  # a user the cloud broker lets read site1/#
        pongs = Subscriber(env, site.cloud, cert, client_id="pong-sub",
                           topic=f"{PREFIX}/nodes/+/pong")
        site.cloud.wait_subscribed("observer")

        def command(node, tag):
            env.run([require("mosquitto_pub")] + site.cloud.client_args(site.operator) +
                    ["-i", f"op-{tag}-{time.monotonic_ns()}", "-q", "1",
                     "-t", f"{PREFIX}/cmd/{node}/ping", "-m", tag], check=True)

        def got():
            n = collections.Counter()
            for topic, payload in pongs.messages():
                n[(topic.split("/")[-2], payload.decode(errors="replace"))] += 1
            return n

        def wait_pong(node, tag, what):
            wait_for(lambda: site.gwd.check_alive() or got()[(node, tag)] > 0, 120, what,
                     interval=0.5)

        def queue_empty():
            return site.ctl_json("spool").get("down_queued", 1) == 0

        # 1. online
        for node in (p_id, c_id):
            command(node, "online")
        for node in (p_id, c_id):
            wait_pong(node, "online", f"{node}'s pong while online")
        expect(True, "both nodes answer a command while online")

        # 2. offline for OFFLINE_S, with a fleetgwd restart in between
        p.stop(signal.SIGTERM)
        c.stop(signal.SIGTERM)
        t_off = time.monotonic()
        no_subs = site.counters().get("down_no_subscribers", 0)
        for node in (p_id, c_id):
            command(node, "away-1")
        wait_for(lambda: site.gwd.check_alive() or queue_empty(), 60,
                 "fleetgwd to hand the commands to the edge broker")
        expect(site.gwd.stop() == 0, "fleetgwd stopped")
        for node in (p_id, c_id):
            command(node, "away-2")  # held by the cloud broker for fleetgwd's session
        site.start(spool={"down_ttl_s": TTL_S})
        wait_for(lambda: site.gwd.check_alive() or
                 (queue_empty() and site.counters().get("relayed_down", 0) >= 2), 60,
                 "the restarted fleetgwd to take the commands sent while it was down and "
                 "hand them to the edge broker")
        lost = site.counters().get("down_no_subscribers", 0)
        expect(lost >= 1, f"the commands for the clean-session node found no session at the "
               f"edge broker: down_no_subscribers {no_subs} -> {lost} (fleetgwd restarted)")
        time.sleep(max(0.0, OFFLINE_S - (time.monotonic() - t_off)))
        away = time.monotonic() - t_off
        p, c = run_p(), run_c()
        for tag in ("away-1", "away-2"):
            wait_pong(p_id, tag, f"the persistent node's pong for {tag}")
        site.wait_trusted([p_id, c_id])
        command(c_id, "back")
        wait_pong(c_id, "back", "the clean-session node's pong after its return")
        n = got()
        expect(n[(p_id, "away-1")] == 1 and n[(p_id, "away-2")] == 1,
               f"after {away:.0f} s offline and a fleetgwd restart the persistent node got "
               f"both commands, each once (pongs: away-1 x{n[(p_id, 'away-1')]}, away-2 "
               f"x{n[(p_id, 'away-2')]})")
        expect(n[(c_id, "away-1")] == 0 and n[(c_id, "away-2")] == 0,
               "the clean-session node got neither (no session kept them): the control")

        # 3. a command older than its lifetime is not delivered
        p.stop(signal.SIGTERM)
        t_off = time.monotonic()
        command(p_id, "stale")
        wait_for(lambda: site.gwd.check_alive() or queue_empty(), 60,
                 "fleetgwd to hand the stale command to the edge broker")
        time.sleep(max(0.0, TTL_S + 5 - (time.monotonic() - t_off)))
        p = run_p()
        site.wait_trusted([p_id])
        command(p_id, "fresh")
        wait_pong(p_id, "fresh", "the persistent node's pong for a fresh command")
        n = got()
        expect(n[(p_id, "stale")] == 0,
               f"a command queued {time.monotonic() - t_off:.0f} s ago with a lifetime of "
               f"{TTL_S} s (spool.down_ttl_s, sent as its Message Expiry Interval) never "
               "reached the node; a fresh one did")
        for proc in (p, c):
            proc.stop(signal.SIGTERM)
        expect(site.gwd.stop() == 0, "fleetgwd stops cleanly")
    print("PASS: test_daemon_offline_commands")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
