"""fleetgwd's uplink verifies the cloud broker (libmosquitto is told to check nothing
itself, MOSQ_OPT_SSL_CTX_WITH_DEFAULTS = 0, so the check is ours): a broker whose
certificate comes from another CA, or names another host, is refused; the refusal is logged
with the reason; node messages stay in the spool; and against the right broker the same
daemon connects with its TPM key and delivers them."""

import sys
import time

from fleetgw_harness import Env, expect, wait_for

from daemon_common import GW_CN, PREFIX, Observer, Publisher, Site


def main():
    with Env("daemon-uplink-tls") as env:
        site = Site(env, nodes=("n1",))
        rogue_ca = env.ca("rogue-ca")
        rogue = env.start_mosquitto(site.cloud_ca, name="rogue", unix_socket=False,
                                    superusers=[GW_CN],
                                    server_cert=rogue_ca.issue("rogue-server", server=True,
                                                               sans=["127.0.0.1"]))
        cases = [
            ("a broker certificate from another CA", {"port": rogue.port},
             "server certificate refused: unable to get local issuer certificate"),
            ("a broker certificate for another host name",
             {"server_name": "broker.invalid"}, "server certificate refused: hostname mismatch"),
        ]
        for what, uplink, reason in cases:
            gwd = site.start_gwd(uplink=uplink)
            wait_for(lambda: gwd.check_alive() or
                     gwd.output().count("cannot connect to the cloud broker") >= 2, 60,
                     f"two refused attempts ({what})")
            out = gwd.output()
            expect("connected to the cloud broker" not in out,
                   f"{what}: fleetgwd does not connect")
            expect(reason in out, f"{what}: the log says why ('{reason}')")
            p = Publisher(site, "n1")
            p.send(1)
            p.close()
            wait_for(lambda: site.spooled() >= 1, 30, "the message in the spool")
            expect(site.spooled() >= 1, f"{what}: the node message waits in the spool")
            expect(GW_CN not in " ".join(rogue.client_ids(GW_CN)),
                   "the rogue broker never saw an MQTT session from the gateway")
            gwd.stop()

        obs = Observer(site, f"{PREFIX}/nodes/#")
        site.start_gwd()
        site.wait_gwd_connected()
        wait_for(lambda: len(obs.lines()) >= 2, 60, "the spooled messages upstream")
        expect([p for _, p in obs.messages()] == ["n1:000001", "n1:000001"],
               "with the right broker both spooled messages are delivered, in order")
        wait_for(lambda: site.spooled() == 0, 30, "an empty spool")
        expect(site.gwd.stop() == 0, "fleetgwd stops cleanly")
    return 0


if __name__ == "__main__":
    sys.exit(main())
