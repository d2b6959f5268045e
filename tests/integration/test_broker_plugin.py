"""The edge broker enforces fleetgwd's node registry: a real mosquitto configured FROM the
shipped systemd/mosquitto/fleetgw-edge-plugin.conf (paths, port, plugin and registry mapped to the
test's, see edge_broker.py) with this build's fleetgw-mosquitto-auth.so, and a registry made
by the real code path: a running fleetgwd (which creates it) and `fleetgwctl node add` /
`node remove` on its control socket. The verdicts "trusted" and "quarantined" are written
with sqlite3 as fleetgwd's registry_set_verdict() writes them (reaching them through
attestation is test_daemon_attest's subject, not this one's).

  1. no registry yet: every node is refused at CONNECT, and the broker log says why;
  2. fleetgwd connects on the gateway listener as the gateway identity (edge.username /
     edge.password_file) once the plugin lets it;
  3. an unenrolled node is refused at CONNECT; an enrolled node that is removed with
     `fleetgwctl node remove` is refused at its next CONNECT, without a broker restart;
  4. a node's publish under another node's id is denied (never reaches the gateway);
  5. a quarantined node's evidence reaches the gateway, its telemetry does not; once its
     verdict turns trusted its telemetry passes (no restart);
  6. on the gateway listener: no user name, another user (an operator who can open the
     socket) and the gateway user with a wrong password are refused, and what they try to
     publish under fleet/ reaches no node; the gateway identity's command does;
  7. a bad plugin option or a world-readable password file stops mosquitto at start."""

import hashlib
import os
import sqlite3
import subprocess
import time

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from daemon_common import Site
from edge_broker import PLUGIN_CONF, EdgeBroker
from fleetgw_harness import Env, HarnessError, expect, require, run_main, wait_for


def new_node_key():
    key = ec.generate_private_key(ec.SECP256R1())
    point = key.public_key().public_bytes(serialization.Encoding.X962,
                                          serialization.PublicFormat.UncompressedPoint)
    return point, hashlib.sha256(point).digest()[:16].hex()


def main():
    with Env("broker-plugin") as env:
        site = Site(env, nodes=())
        registry = env.path("registry.db")  # fleetgwd's registry.path (daemon_common.Site)
        eb = EdgeBroker(env, site.edge_ca, registry, name="edge-shipped", conf=PLUGIN_CONF).start()
        pub = require("mosquitto_pub")

        def node_pub(cert, topic, msg):
            return env.run([pub] + eb.tls_args(cert) + ["-q", "1", "-t", topic, "-m", msg])

        def logged(*texts):
            """True once the broker's log holds every text (it is written as it goes)."""
            try:
                wait_for(lambda: all(t in eb.log() for t in texts), 10, f"broker log: {texts}")
            except HarnessError:
                print(f"not in the broker log: {[t for t in texts if t not in eb.log()]}")
                return False
            return True

        def gw_pub(topic, msg, **who):
            return env.run([pub] + eb.gateway_args(**who) + ["-q", "1", "-t", topic, "-m", msg])

        # 1. Fail closed: the registry does not exist yet.
        _, early_id = new_node_key()
        early = site.edge_ca.issue(early_id)
        r = node_pub(early, f"fleet/{early_id}/status", "early")
        expect(r.returncode != 0 and "not authorised" in r.stderr,
               f"with no registry a node is refused at CONNECT ({r.stderr.strip()})")
        expect(logged("cannot be read", "fail closed"),
               "the broker log says the registry cannot be read and nodes are refused")

        # 2. fleetgwd on the gateway listener with the gateway identity.
        site.start_gwd(edge={"socket": eb.socket_path, "username": eb.gateway_user,
                             "password_file": eb.secret_path})
        wait_for(lambda: site.gwd.check_alive() or
                 "connected to the edge broker" in site.gwd.output(), 60,
                 "fleetgwd to connect to the shipped edge broker")
        expect(logged(f"u'{eb.gateway_user}'"),
               f"fleetgwd is connected as the gateway identity '{eb.gateway_user}'")
        wait_for(lambda: os.path.exists(registry), 30, "fleetgwd to create its registry")

        ids = {}
        for role in ("a", "b", "q"):
            point, node_id = new_node_key()
            r = site.ctl("node", "add", "--pub-hex", point.hex(), "--class", "sensor")
            expect(r.returncode == 0 and node_id in r.stdout,
                   f"fleetgwctl node add enrols node {role} as {node_id}")
            ids[role] = node_id
        _, ids["u"] = new_node_key()  # never enrolled
        certs = {role: site.edge_ca.issue(node_id) for role, node_id in ids.items()}
        db = sqlite3.connect(registry)
        for role, verdict in (("a", "trusted"), ("b", "trusted"), ("q", "quarantined")):
            db.execute("UPDATE nodes SET verdict = ?, reason = 'set by the test', "
                       "verdict_time = 1 WHERE id = ?", (verdict, ids[role]))
        db.commit()
        a, b, q, u = (ids[k] for k in "abqu")

        # What reaches the gateway side: an observer with the gateway identity on fleet/#.
        obs = env.spawn("observer", [require("mosquitto_sub")] + eb.gateway_args() +
                        ["-i", "observer", "-t", "fleet/#", "-v", "-q", "1", "-W", "300"])
        wait_for(lambda: obs.check_alive() or "Received SUBSCRIBE from observer" in eb.log(),
                 20, "the observer's subscription")
        a_sub = env.spawn("a-sub", [require("mosquitto_sub")] + eb.tls_args(certs["a"]) +
                          ["-i", "a-sub", "-t", f"fleet/{a}/down/#", "-v", "-q", "1",
                           "-W", "300"])
        wait_for(lambda: a_sub.check_alive() or "Received SUBSCRIBE from a-sub" in eb.log(),
                 20, "node a's subscription to its commands")

        # 3. Unenrolled and removed nodes.
        r = node_pub(certs["u"], f"fleet/{u}/up/telemetry", "u-telemetry")
        expect(r.returncode != 0 and "not authorised" in r.stderr,
               f"an unenrolled node (valid manufacturer certificate) is refused at CONNECT "
               f"({r.stderr.strip()})")
        expect(logged(f"CONNECT refused: listener node user '{u}'", "readable again"),
               "the broker logs the refusal; the registry was picked up once fleetgwd made it")
        r = node_pub(certs["b"], f"fleet/{b}/up/telemetry", "b-before-removal")
        expect(r.returncode == 0, "node b connects and publishes while enrolled")
        r = site.ctl("node", "remove", b)
        expect(r.returncode == 0, f"fleetgwctl node remove {b}")
        r = node_pub(certs["b"], f"fleet/{b}/up/telemetry", "b-after-removal")
        expect(r.returncode != 0 and "not authorised" in r.stderr,
               "the removed node is refused at its next CONNECT, without a broker restart")

        # 4. Another node's id.
        r = node_pub(certs["a"], f"fleet/{q}/up/telemetry", "a-spoofs-q")
        expect(logged(f"publish 'fleet/{q}/up/telemetry': topic of another node"),
               "node a's publish under node q's id is denied by ACL")
        node_pub(certs["a"], f"fleet/{a}/up/telemetry", "a-own")

        # 5. Quarantined node.
        node_pub(certs["q"], f"fleet/{q}/attest/evidence", "q-evidence")
        node_pub(certs["q"], f"fleet/{q}/status", "q-status")
        node_pub(certs["q"], f"fleet/{q}/up/telemetry", "q-telemetry-quarantined")
        expect(logged("quarantined node: may publish only attest/evidence and status"),
               "the quarantined node's telemetry is denied, with the reason in the log")

        # 6. The gateway listener.
        for who, what in (({"user": ""}, "no user name"),
                          ({"user": "operator", "password": eb.secret}, "another user"),
                          ({"password": "wrong-" + eb.secret}, "a wrong password")):
            r = gw_pub(f"fleet/{a}/down/command", "injected", **who)
            expect(r.returncode != 0 and "not authorised" in r.stderr,
                   f"the gateway listener refuses {what} at CONNECT ({r.stderr.strip()})")
        r = gw_pub(f"fleet/{a}/down/command", "gw-command")
        expect(r.returncode == 0, "the gateway identity publishes a command")

        db.execute("UPDATE nodes SET verdict = 'trusted' WHERE id = ?", (q,))
        db.commit()
        db.close()
        node_pub(certs["q"], f"fleet/{q}/up/telemetry", "q-telemetry-trusted")
        node_pub(certs["a"], f"fleet/{a}/up/telemetry", "marker")
        wait_for(lambda: obs.check_alive() or "marker" in obs.output(), 30,
                 "the marker at the observer")
        wait_for(lambda: a_sub.check_alive() or "gw-command" in a_sub.output(), 30,
                 "the gateway's command at node a")
        seen, a_got = obs.output(), a_sub.output()
        print("observer saw:\n" + seen)
        expect(f"fleet/{a}/up/telemetry a-own" in seen, "node a's own telemetry passes")
        expect(f"fleet/{b}/up/telemetry b-before-removal" in seen and
               "b-after-removal" not in seen, "node b passed before its removal, not after")
        expect("u-telemetry" not in seen, "nothing from the unenrolled node")
        expect("a-spoofs-q" not in seen, "nothing published under another node's id")
        expect(f"fleet/{q}/attest/evidence q-evidence" in seen and
               f"fleet/{q}/status q-status" in seen,
               "the quarantined node's evidence and status pass")
        expect("q-telemetry-quarantined" not in seen,
               "the quarantined node's telemetry does not")
        expect(f"fleet/{q}/up/telemetry q-telemetry-trusted" in seen,
               "once trusted (verdict changed in the registry, no restart) its telemetry passes")
        expect("injected" not in seen and "injected" not in a_got,
               "nothing from the refused gateway-listener clients reached anyone")
        expect(f"fleet/{a}/down/command gw-command" in a_got,
               "node a received the gateway identity's command")
        site.gwd.stop()
        expect(site.gwd.popen.returncode == 0, "fleetgwd exits 0")

        # 7. A bad plugin option or an unsafe password file stops mosquitto at start, with a
        # line that names it.
        world = env.path("world.secret")
        with open(world, "w") as f:
            f.write("pw\n")
        os.chmod(world, 0o644)
        for opts, says in (
                (["plugin_opt_listener both"], "neither node nor gateway"),
                (["plugin_opt_listener node"], "needs plugin_opt_registry"),
                (["plugin_opt_listener gateway", "plugin_opt_gateway_user fleetgwd",
                  f"plugin_opt_gateway_password_file {world}"], "lets every user read it"),
                (["plugin_opt_listener node", f"plugin_opt_registry {registry}",
                  "plugin_opt_colour blue"], "plugin_opt_colour: unknown option")):
            conf = env.path("bad.conf")
            with open(conf, "w") as f:
                f.write("\n".join(["user root", "log_dest stderr", "per_listener_settings true",
                                   f"listener 0 {env.path('bad.sock')}",
                                   "allow_anonymous false", f"plugin {eb.plugin}"] + opts)
                        + "\n")
            r = subprocess.run([require("mosquitto"), "-c", conf], capture_output=True,
                               text=True, timeout=60)
            expect(r.returncode != 0 and says in r.stdout + r.stderr,
                   f"mosquitto refuses to start with {opts[-1]!r}: "
                   f"{(r.stdout + r.stderr).strip().splitlines()[-2:]}")
    print("PASS")
    return 0


if __name__ == "__main__":
    run_main(main)
