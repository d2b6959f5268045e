"""uplink.hosts: fleetgwd tries the brokers of the list in order, verifies each one's
certificate against that endpoint's own name (uplink.server_name unset), skips the ones it
must refuse (nothing listening, a certificate from another CA, a certificate for another
host) with the reason logged, connects to the first good one and says which one it is in
`fleetgwctl status`, STATUS= and the retained status message upstream; when that broker goes
away it keeps cycling through the list and comes back to it, with nothing lost."""

import json
import subprocess
import sys

from fleetgw_harness import (Env, expect, free_port, program, require, run_main,
                             wait_for)

from daemon_common import GW_CN, PREFIX, NotifySocket, Observer, Publisher, Site


def retained_status(site):
    obs = site.cloud_ca.issue("operator")
    r = subprocess.run([require("mosquitto_sub")] + site.cloud.client_args(obs) +
                       ["-t", f"{PREFIX}/gateway/{GW_CN}/status", "-C", "1", "-W", "10"],
                       capture_output=True, text=True, timeout=30)
    return r.stdout.strip()


def main():
    with Env("daemon-uplink-hosts") as env:
        site = Site(env, nodes=("n1",))
        rogue, other_host, _ = env.start_impostor_brokers(site.cloud_ca)
        dead = free_port()  # nothing listens there
        hosts = [{"host": "127.0.0.1", "port": dead},
                 {"host": "127.0.0.1", "port": rogue.port},
                 {"host": "127.0.0.1", "port": other_host.port},
                 # the cloud broker's certificate names 127.0.0.1 and localhost: this entry is
                 # checked against "localhost", its own host
                 {"host": "localhost", "port": site.cloud.port}]
        obs = Observer(site, f"{PREFIX}/nodes/#")
        ns = NotifySocket(env.path("notify.sock"))
        gwd = site.start_gwd(uplink={"host": None, "port": None, "hosts": hosts,
                                     "backoff_min_ms": 50, "backoff_max_ms": 200},
                             extra_env={"NOTIFY_SOCKET": ns.path})
        site.wait_gwd_connected()
        out = gwd.output()
        good = f"localhost:{site.cloud.port}"
        expect(f"cannot connect to the cloud broker 127.0.0.1:{dead}" in out,
               "the first endpoint (nothing listening) is tried and reported by name")
        expect(f"cannot connect to the cloud broker 127.0.0.1:{rogue.port}" in out and
               "unable to get local issuer certificate" in out,
               "the second (certificate from another CA) is refused, with the reason")
        expect(f"cannot connect to the cloud broker 127.0.0.1:{other_host.port}" in out and
               "IP address mismatch" in out,
               "the third (certificate for broker.invalid) is refused: its name is checked")
        expect(f"connected to the cloud broker {good}" in out,
               "fleetgwd connects to the fourth, verified against its own name 'localhost'")
        expect(GW_CN not in " ".join(rogue.client_ids(GW_CN) | other_host.client_ids(GW_CN)),
               "no refused broker saw an MQTT session from the gateway")
        r = site.ctl("status")
        expect(r.returncode == 0 and f"cloud broker  connected ({good})" in r.stdout,
               f"fleetgwctl status names the endpoint in use:\n{r.stdout}{r.stderr}")
        js = json.loads(site.ctl("--json", "status").stdout)
        expect(js.get("cloud_endpoint") == good, "the JSON status has cloud_endpoint")
        wait_for(lambda: any(good in x for x in ns.poll() if x.startswith("STATUS=")), 10,
                 "STATUS= naming the endpoint")
        expect(True, "STATUS= names the endpoint in use")
        st = retained_status(site)
        expect({k: json.loads(st).get(k) for k in ("state", "endpoint")} ==
               {"state": "online", "endpoint": good},
               f"the retained status upstream names the endpoint: {st}")

        p = Publisher(site, "n1")
        for i in range(1, 11):
            p.send(i)
        wait_for(lambda: len(obs.lines()) >= 10, 60, "10 messages upstream")

        # The broker in use goes away: fleetgwd cycles through the list (all refused), spools,
        # and is back on it when it returns.
        site.cloud.stop()
        wait_for(lambda: gwd.check_alive() or "lost the cloud broker connection to " + good
                 in gwd.output(), 60, "the loss to be noticed")
        for i in range(11, 21):
            p.send(i)
        p.close()
        wait_for(lambda: gwd.check_alive() or
                 gwd.output().count(f"cannot connect to the cloud broker {good}") >= 1 and
                 gwd.output().count(f"cannot connect to the cloud broker 127.0.0.1:{dead}") >= 2,
                 60, "a second round through the list")
        expect(True, "after the loss every endpoint is tried again, in order")
        site.cloud.start()
        wait_for(lambda: gwd.check_alive() or
                 gwd.output().count(f"connected to the cloud broker {good}") >= 2, 90,
                 "the reconnection")
        wait_for(lambda: len({pl for _, pl in obs.messages()}) >= 20, 60,
                 "20 distinct messages upstream")
        got = [pl for _, pl in obs.messages()]
        distinct = []
        for x in got:
            if x not in distinct:
                distinct.append(x)
        expect(distinct == [f"n1:{i:06d}" for i in range(1, 21)],
               "every message arrived, in order, across the outage")
        ns.close()
        expect(gwd.stop() == 0, "fleetgwd stops cleanly")
    return 0


if __name__ == "__main__":
    run_main(main)
