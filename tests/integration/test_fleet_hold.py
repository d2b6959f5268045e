"""Issue 15: a node's telemetry sent before its verdict is held, not dropped.

The fleet scenario of tests/demo/fleet_scenario.py (swtpm + tpm2-abrmd for the gateway key,
edge and cloud mosquitto, fleetgwd with the attestation gate on and reference values from
the build's signed image, fleet-sim nodes with their own IAKs speaking the real protocol),
with every fleet-sim sending its telemetry at once after SUBACK (--attest-wait-ms 0), all
good nodes connecting at once (--ramp-ms 0). Proves:
 - every message of every good node reaches the cloud, in order per node (what arrived before
   the node's verdict was held in the spool and released when it was trusted), counts exact;
   none dropped as not_attested, none held too long (hold_expired) or over the bound;
 - the held messages of nodes that end quarantined (bad measurement, forged token, replayed
   nonce) never reach the cloud: every one of their messages is counted `quarantined`;
   a node that is not enrolled is dropped as before (`not_enrolled`), never held;
 - the held-message bookkeeping adds up exactly: held = released + held_dropped, and the
   spool holds nothing at the end (fleetgwctl spool: held 0 message(s), 0 bytes).

A node must stay connected until it can answer its challenge (fleet-sim leaves once its
last message is acknowledged): each sends `count` messages at `rate` per second, so it stays
count/rate seconds. A node that leaves before its challenge reaches it cannot be trusted,
and its held messages are dropped when the nonce expires (hold_expired), as they must be.
FLEETGW_HOLD_NODES sets the number of good nodes (default 200; the issue's storm is 2000),
FLEETGW_HOLD_RATE their rate (default 1/s; slower keeps them longer under a larger storm)."""

import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "demo"))

import fleet_scenario  # noqa: E402
from fleetgw_harness import Env, expect  # noqa: E402


def main():
    good = int(os.environ.get("FLEETGW_HOLD_NODES", "200"))
    count, rate = 5, float(os.environ.get("FLEETGW_HOLD_RATE", "1"))
    with Env("fleet-hold") as env:
        t0 = time.monotonic()
        res = fleet_scenario.run(env, good=good, count=count, rate=rate, attest_wait_ms=0,
                                 good_extra=["--ramp-ms", "0"],
                                 attestation={"hold_per_node": 64, "nonce_ttl_s": 120},
                                 settle_s=120 + good, sim_wait_s=300 + good)
        elapsed = time.monotonic() - t0
        for ok, line in fleet_scenario.judge(res):
            expect(ok, line)
        c = res["spool"]["counters"]
        sp = res["spool"]
        n_bad = sum(g["n"] for g in res["groups"] if g["enrolled"] and g["expect"] != "trusted")
        held, released, dropped = c.get("held", 0), c.get("released", 0), c.get("held_dropped", 0)
        print(f"held {held}, released {released}, held_dropped {dropped}, "
              f"{good} good node(s) x {count} message(s), scenario {elapsed:.0f} s")
        expect(released > 0, f"telemetry sent before the verdict was held and released "
                             f"({released} message(s))")
        expect(held == released + dropped, f"held {held} = released {released} + "
                                           f"held_dropped {dropped}")
        expect(dropped <= n_bad * count,
               f"only quarantined nodes' held messages were dropped ({dropped} <= "
               f"{n_bad * count})")
        expect(c.get("hold_expired", 0) == 0 and c.get("hold_full", 0) == 0,
               f"none expired or over the bound: hold_expired {c.get('hold_expired', 0)}, "
               f"hold_full {c.get('hold_full', 0)}")
        expect(sp.get("held_messages") == 0 and sp.get("held_bytes") == 0,
               f"nothing held at the end: {sp.get('held_messages')} message(s), "
               f"{sp.get('held_bytes')} B")
        r = res["site"].ctl("spool")
        expect(r.returncode == 0 and "held          0 message(s), 0 of 16777216 bytes" in r.stdout
               and "released" in r.stdout,
               f"fleetgwctl spool shows what is held and the counters:\n{r.stdout}")
        rc = res["site"].gwd.stop()
        expect(rc == 0, "fleetgwd stops cleanly")
    return 0


if __name__ == "__main__":
    sys.exit(main())
