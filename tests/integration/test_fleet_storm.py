"""Issue 15: an attestation storm of 2,000 nodes at once, and a gateway restart under them.

The fleet scenario of tests/demo/fleet_scenario.py (swtpm + tpm2-abrmd for the gateway key,
edge and cloud mosquitto, fleetgwd with the attestation gate on and reference values from
the build's signed image, fleet-sim nodes with their own IAKs speaking the real protocol),
with FLEETGW_STORM_NODES (default 2000) good nodes connecting all at once (--ramp-ms 0) and a
short attest wait (1 s: then they send whether or not their verdict came), the quarantined
kinds (bad measurement, forged token, replayed nonce) and one node that is not enrolled.
fleetgwd runs with storm control at attestation.challenges_max 256 (the test prints the
peak of outstanding and waiting challenges it saw).

Phase 1, the storm. Proves, with exact counts at the moment every good node is trusted:
attest_trusted = the good nodes, attest_quarantined = the bad ones, not_attested 0,
hold_expired 0, hold_full 0.

Phase 2, the restart. Once all are trusted, fleetgwd is stopped (SIGTERM) and started again
while every node stays connected to the edge broker and keeps sending (the broker queues
their messages in fleetgwd's persistent session meanwhile). The second run has
attestation.interval_s 5, so every verdict is due again: each node is challenged once more
through storm control (then a SIGHUP sets it back to a day). Proves every good node is
re-attested (a `verdict trusted` line for each in the second run's log) and prints the time
from the restart until then.

At the end (fleet-sim done, spool drained), for both phases together: every message of every
good node reached the cloud, in order per node (QoS 1 duplicates counted, none missing); the
held messages of the nodes that end quarantined never did (counted `quarantined`, exactly
their count); the node that is not enrolled: `not_enrolled`, exactly; nothing dropped as
not_attested, hold_expired or hold_full; held = released + held_dropped; nothing left held.

A node must stay connected until it can answer its challenge (fleet-sim leaves after its
last message): each sends COUNT messages at RATE per second, so it stays COUNT/RATE seconds,
longer than the storm and the restart take on the 2-core machine."""

import os
import re
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "demo"))

import fleet_scenario  # noqa: E402
from fleetgw_harness import Env, HarnessError, expect, wait_for  # noqa: E402

NODES = int(os.environ.get("FLEETGW_STORM_NODES", "2000"))
COUNT = int(os.environ.get("FLEETGW_STORM_COUNT", "20"))
RATE = float(os.environ.get("FLEETGW_STORM_RATE", "0.1"))
SLOTS = 256
TRUSTED_RE = re.compile(r"attestation verdict trusted: .*\[node=(\S+) reason=attested\]")


def poll_status(site, peak):
    st = site.ctl_json("status")
    peak["outstanding"] = max(peak["outstanding"], st.get("challenges_outstanding", 0))
    peak["queued"] = max(peak["queued"], st.get("challenges_queued", 0))
    return st


ATTESTATION = {"hold_per_node": 64, "nonce_ttl_s": 60, "challenges_max": SLOTS}


def conf_attestation(res, interval_s):
    """fleetgwd's attestation section as fleet_scenario.run made it, with interval_s."""
    return {**ATTESTATION, "required": True, "image_dir": res["store"],
            "signer_keys": fleet_scenario.firmware_image()[1], "interval_s": interval_s}


def main():
    attestation = ATTESTATION
    phase = {}
    peak = {"outstanding": 0, "queued": 0}

    def during(site, fleet, res):
        good = set(next(g for g in fleet.groups if g["expect"] == "trusted")["ids"])
        n_bad = sum(g["n"] for g in fleet.groups if g["enrolled"] and g["expect"] != "trusted")
        t0 = time.monotonic()

        def all_trusted():
            site.gwd.check_alive()
            poll_status(site, peak)
            c = site.counters()
            return c.get("attest_trusted", 0) >= len(good) and \
                c.get("attest_quarantined", 0) >= n_bad
        wait_for(all_trusted, 600, f"all {len(good)} good nodes trusted", interval=1)
        phase["storm_s"] = time.monotonic() - t0
        phase["storm_counters"] = dict(site.counters())
        nodes = {n["id"]: n for n in site.ctl_json("nodes")["nodes"]}
        phase["storm_trusted"] = sum(1 for i in good if nodes.get(i, {}).get("verdict") ==
                                     "trusted")
        # the restart: the nodes stay connected to the edge broker and keep sending
        t1 = time.monotonic()
        rc = site.gwd.stop()
        phase["stop_rc"] = rc
        site.start_gwd(attestation=conf_attestation(res, 5))
        site.wait_gwd_connected()
        phase["reconnect_s"] = time.monotonic() - t1

        def reattested():
            site.gwd.check_alive()
            poll_status(site, peak)
            seen = set(TRUSTED_RE.findall(site.gwd.output()))
            return good <= seen
        try:
            wait_for(reattested, 600, f"all {len(good)} good nodes re-attested after the "
                     "restart", interval=1)
        except HarnessError as e:
            phase["reattest_error"] = str(e)
        seen = set(TRUSTED_RE.findall(site.gwd.output()))
        phase["reattested"] = len(good & seen)
        phase["restart_s"] = time.monotonic() - t1
        # back to a day's interval (SIGHUP), so that no node is challenged again as it leaves
        site.config(attestation=conf_attestation(res, 3600))
        site.gwd.send_signal(signal.SIGHUP)

    with Env("fleet-storm") as env:
        t0 = time.monotonic()
        res = fleet_scenario.run(env, good=NODES, count=COUNT, rate=RATE, attest_wait_ms=1000,
                                 good_extra=["--ramp-ms", "0"], attestation=attestation,
                                 settle_s=600, sim_wait_s=COUNT / RATE + 900, during=during)
        elapsed = time.monotonic() - t0
        n_good = NODES
        n_bad = sum(g["n"] for g in res["groups"] if g["enrolled"] and g["expect"] != "trusted")
        sc = phase.get("storm_counters", {})
        print(f"storm: {NODES} nodes at once, all trusted after {phase.get('storm_s', 0):.1f} s "
              f"(challenges outstanding at most {peak['outstanding']} of {SLOTS}, "
              f"{peak['queued']} waiting at most)")
        expect(phase.get("storm_trusted") == n_good,
               f"after the storm {phase.get('storm_trusted')}/{n_good} good nodes trusted")
        expect(sc.get("attest_trusted") == n_good and sc.get("attest_quarantined") == n_bad and
               sc.get("not_attested", 0) == 0 and sc.get("hold_expired", 0) == 0 and
               sc.get("hold_full", 0) == 0,
               f"storm counters exact: attest_trusted {sc.get('attest_trusted')} = {n_good}, "
               f"attest_quarantined {sc.get('attest_quarantined')} = {n_bad}, not_attested "
               f"{sc.get('not_attested', 0)}, hold_expired {sc.get('hold_expired', 0)}, "
               f"hold_full {sc.get('hold_full', 0)}")
        expect(peak["outstanding"] <= SLOTS,
               f"never more than challenges_max outstanding ({peak['outstanding']})")
        expect(phase.get("stop_rc") == 0, "fleetgwd stops cleanly under the fleet")
        print(f"restart: fleetgwd back on both brokers after {phase.get('reconnect_s', 0):.1f} s; "
              f"{phase.get('reattested')}/{n_good} good nodes re-attested "
              f"{phase.get('restart_s', 0):.1f} s after the stop")
        expect("reattest_error" not in phase and phase.get("reattested") == n_good,
               f"every good node re-attested after the restart "
               f"({phase.get('reattested')}/{n_good}) {phase.get('reattest_error', '')}")
        for ok, line in fleet_scenario.judge(res):
            if line.startswith("gateway counters:"):
                continue  # attest_trusted counts the re-attestations too: checked below
            if not ok or not line.startswith("  "):
                print(line)
            expect(ok, line)
        c = res["spool"]["counters"]
        held, released, dropped = c.get("held", 0), c.get("released", 0), c.get("held_dropped", 0)
        print(f"end: {n_good} good node(s) x {COUNT} message(s) all upstream in order; "
              f"held {held}, released {released}, held_dropped {dropped}; quarantined "
              f"{c.get('quarantined', 0)}, not_enrolled {c.get('not_enrolled', 0)}; "
              f"scenario {elapsed:.0f} s")
        expect(c.get("quarantined", 0) == n_bad * COUNT,
               f"every message of the quarantined nodes dropped: {c.get('quarantined', 0)} = "
               f"{n_bad * COUNT}")
        expect(c.get("not_enrolled", 0) == COUNT,
               f"the unknown node's messages dropped: not_enrolled {c.get('not_enrolled', 0)}")
        expect(all(c.get(k, 0) == 0 for k in ("not_attested", "hold_expired", "hold_full",
                                              "spool_full", "rate_limited")),
               "nothing else dropped: " + ", ".join(
                   f"{k} {c.get(k, 0)}" for k in ("not_attested", "hold_expired", "hold_full",
                                                  "spool_full", "rate_limited")))
        expect(c.get("attest_trusted", 0) >= 2 * n_good,
               f"attest_trusted {c.get('attest_trusted', 0)} >= {2 * n_good} (storm + restart)")
        expect(held == released + dropped and dropped <= n_bad * COUNT,
               f"held {held} = released {released} + held_dropped {dropped}, only quarantined "
               "nodes' dropped")
        sp = res["spool"]
        expect(sp.get("held_messages") == 0 and sp.get("spooled_messages") == 0,
               f"nothing held or spooled at the end: {sp.get('held_messages')}, "
               f"{sp.get('spooled_messages')}")
        rc = res["site"].gwd.stop()
        expect(rc == 0, "fleetgwd stops cleanly")
    return 0


if __name__ == "__main__":
    sys.exit(main())
