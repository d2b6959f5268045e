"""The cloud-outage part of `make demo` (tests/demo/demo.py): the trusted nodes of the
attestation part send again (a second fleet-sim run); while they do, the cloud broker is
stopped for a few seconds and started again. fleetgwd keeps taking the nodes' messages into
its spool (depth sampled through `fleetgwctl --json spool`) and drains it when the cloud is
back; a persistent-session subscriber on the cloud broker (mosquitto_sub -c, QoS 1) counts
what arrived: every message of every node, once or more (a QoS 1 re-send is a duplicate,
counted), none missing."""

import time

import cbor2

from fleetgw_harness import HarnessError, program, require, wait_for
from daemon_common import PREFIX


class Observer:
    def __init__(self, site):
        cert = site.cloud_ca.issue("observer")
        self.proc = site.env.spawn("outage-observer", [
            require("stdbuf"), "-oL", require("mosquitto_sub")] + site.cloud.client_args(cert)
            + ["-i", "outage-observer", "-c", "-q", "1", "-t", f"{PREFIX}/nodes/+/telemetry",
               "-F", "MSG %t %x"])
        site.cloud.wait_subscribed("observer")

    def per_node(self):
        per = {}
        for line in self.proc.output().splitlines():
            parts = line.split(" ")
            if len(parts) != 3 or parts[0] != "MSG":
                continue
            try:
                msg = cbor2.loads(bytes.fromhex(parts[2]))
                per.setdefault(parts[1].split("/")[2], []).append(msg[1])
            except Exception:  # noqa: BLE001 - not telemetry: not counted
                continue
        return per


def run(env, res, say, count, rate=20.0, down_s=4.0):
    """Returns ([(ok, line)], facts)."""
    site = res["site"]
    good = [g for g in res["groups"] if g["expect"] == "trusted"][0]
    ids, n = good["ids"], good["n"]
    obs = Observer(site)
    argv = [program("fleet-sim"), "--broker", f"127.0.0.1:{site.edge.port}",
            "--nodes", str(n), "--cafile", site.edge_ca.cert_path,
            "--cert-dir", env.path("node-certs"), "--server-name", "localhost",
            "--rate", str(rate), "--count", str(count), "--id-prefix", good["prefix"],
            "--iak-dir", env.path("iak"), "--image", res["image"], "--attest-wait-ms", "3000"]
    say(f"cloud outage: {n} node(s) send {count} messages each at {rate:g}/s; the cloud "
        f"broker is stopped for {down_s:g} s in the middle")
    sim = env.spawn("fleet-sim-outage", argv)
    t0 = time.monotonic()
    # the outage starts once the gateway is relaying this run's messages
    base = site.counters().get("relayed_up", 0)
    wait_for(lambda: site.gwd.check_alive() or
             site.counters().get("relayed_up", 0) > base + n, 60, "the second run's traffic")
    site.cloud.stop()
    t_stop = time.monotonic()
    depths = []
    while time.monotonic() - t_stop < down_s:
        site.gwd.check_alive()
        depths.append(site.spooled())
        time.sleep(0.5)
    site.cloud.start()
    t_start = time.monotonic()
    peak = max(depths) if depths else 0
    say(f"  cloud broker stopped {t_stop - t0:.1f} s in; spool depth every 0.5 s: "
        + " ".join(str(d) for d in depths[:12]))
    drain = []

    def drained():
        site.gwd.check_alive()
        d = site.spooled()
        drain.append(d)
        return d == 0
    wait_for(drained, 120, "the spool to drain after the outage", interval=0.5)
    t_drained = time.monotonic()
    sim.popen.wait(timeout=300)
    wait_for(lambda: site.gwd.check_alive() or site.spooled() == 0, 60, "an empty spool")

    def arrived():
        per = obs.per_node()
        return all(set(per.get(i, [])) >= set(range(count)) for i in ids)
    try:
        wait_for(arrived, 60, f"all {n * count} messages at the cloud subscriber", interval=0.5)
    except HarnessError:
        pass
    per = obs.per_node()
    got = sum(len(set(per.get(i, [])) & set(range(count))) for i in ids)
    dups = sum(len(per.get(i, [])) - len(set(per.get(i, []))) for i in ids)
    checks = []

    def check(ok, line):
        checks.append((bool(ok), line))
        say(f"  {'ok ' if ok else 'BAD'} {line}")
    check(peak > 0, f"the spool rose to {peak} message(s) while the cloud was away")
    check(drain and drain[-1] == 0,
          f"back after {t_start - t_stop:.1f} s; drained in {t_drained - t_start:.1f} s "
          f"(depth {' '.join(str(d) for d in drain[:8])}{' ...' if len(drain) > 8 else ''})")
    check(sim.popen.returncode == 0 and got == n * count,
          f"at the cloud: {got}/{n * count} messages, none lost ({dups} QoS 1 duplicate(s)); "
          f"fleet-sim exit {sim.popen.returncode}")
    facts = {"peak": peak, "got": got, "want": n * count, "down": t_start - t_stop,
             "drain": t_drained - t_start}
    return checks, facts
