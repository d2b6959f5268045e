"""fleetgwd and the edge broker restarting under it: the daemon reconnects to the broker's
unix socket with its persistent session (clean_session false), re-subscribes, and every
message published before and after the restart reaches the cloud in order."""

import sys

from fleetgw_harness import Env, expect, wait_for

from daemon_common import PREFIX, Observer, Publisher, Site, check_sequences


def main():
    with Env("daemon-edge-restart") as env:
        site = Site(env, nodes=("n1", "n2"))
        obs = Observer(site, f"{PREFIX}/nodes/#")
        gwd = site.start_gwd()
        site.wait_gwd_connected()
        total = {"n1": 0, "n2": 0}
        for n in total:
            p = Publisher(site, n)
            for i in range(20):
                p.send(total[n] + i + 1)
            p.close()
            total[n] += 20
        wait_for(lambda: len(obs.lines()) >= 40, 60, "40 messages upstream")

        site.edge.restart()
        wait_for(lambda: gwd.check_alive() or
                 gwd.output().count("connected to the edge broker") >= 2, 60,
                 "fleetgwd to reconnect to the restarted edge broker")
        expect("lost the edge broker connection" in gwd.output(),
               "fleetgwd noticed the edge broker going away and said so")
        site.edge.wait_subscribed("fleetgwd", 12)  # 6 filters, twice
        for n in total:
            p = Publisher(site, n)
            for i in range(20):
                p.send(total[n] + i + 1)
            p.close()
            total[n] += 20
        wait_for(lambda: len(obs.lines()) >= 80, 60, "80 messages upstream")
        ok, dups, detail = check_sequences(obs.messages(), total)
        expect(ok and dups == 0, f"all 80 messages upstream, in order per node ({detail})")
        expect(gwd.stop() == 0, "fleetgwd stops cleanly")
    return 0


if __name__ == "__main__":
    sys.exit(main())
