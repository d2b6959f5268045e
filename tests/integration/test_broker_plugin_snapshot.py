"""The edge broker plugin as the package sets it up: it reads the registry snapshot fleetgwd
keeps for it (registry.broker_snapshot; systemd/mosquitto/fleetgw-edge-plugin.conf names
/var/lib/fleetgw/registry.snapshot, mapped here to the test's file by edge_broker.py), never
fleetgwd's WAL registry. A real mosquitto with this build's plugin, a real fleetgwd, and
every registry change made through `fleetgwctl` (no test writes to either file):

  1. before fleetgwd ever ran there is no snapshot: every node is refused (fail closed);
  2. fleetgwd writes the snapshot at start: a SQLite file, mode 0640, with only node ids and
     verdicts; an enrolled node connects, an unenrolled one is refused;
  3. `fleetgwctl node remove` reaches the running broker (a new file, opened again by the
     plugin): the node is refused at its next CONNECT, without a broker restart;
  4. fleetgwd stopped (SIGTERM, then SIGKILL): the broker keeps deciding from the last
     snapshot (enrolled in, removed out) -- what the WAL registry could not give a reader
     without write access once fleetgwd had closed it;
  5. a snapshot that is not a database (damaged while fleetgwd is stopped) refuses every node,
     and the broker log says so; fleetgwd's next start writes it again and the node is back."""

import os
import signal
import sqlite3
import stat

from test_broker_plugin import new_node_key

from daemon_common import Site
from edge_broker import PLUGIN_CONF, EdgeBroker
from fleetgw_harness import Env, HarnessError, expect, require, run_main, wait_for


def main():
    with Env("broker-plugin-snapshot") as env:
        site = Site(env, nodes=())
        snap = env.path("registry.snapshot")
        eb = EdgeBroker(env, site.edge_ca, snap, name="edge-shipped", conf=PLUGIN_CONF).start()
        pub = require("mosquitto_pub")

        def node_pub(cert, node_id, msg):
            return env.run([pub] + eb.tls_args(cert) +
                           ["-q", "1", "-t", f"fleet/{node_id}/status", "-m", msg])

        def refused(r):
            return r.returncode != 0 and "not authorised" in r.stderr

        def logged(text):
            try:
                wait_for(lambda: text in eb.log(), 10, f"broker log: {text}")
            except HarnessError:
                return False
            return True

        def start_gwd():
            site.start_gwd(edge={"socket": eb.socket_path, "username": eb.gateway_user,
                                 "password_file": eb.secret_path},
                           registry={"broker_snapshot": snap})
            wait_for(lambda: site.gwd.check_alive() or
                     "connected to the edge broker" in site.gwd.output(), 60,
                     "fleetgwd to connect to the shipped edge broker")

        # 1. No snapshot yet.
        _, early_id = new_node_key()
        r = node_pub(site.edge_ca.issue(early_id), early_id, "early")
        expect(refused(r), f"with no snapshot a node is refused at CONNECT ({r.stderr.strip()})")
        expect(logged("cannot be read"), "the broker log says the registry cannot be read")

        # 2. fleetgwd writes it at start.
        start_gwd()
        wait_for(lambda: site.gwd.check_alive() or os.path.exists(snap), 30,
                 "fleetgwd to write the broker snapshot")
        mode = stat.S_IMODE(os.stat(snap).st_mode)
        expect(mode == 0o640, f"the snapshot is mode 0640 (group: the broker's access): {mode:o}")
        ids = {}
        for role in ("a", "b"):
            point, node_id = new_node_key()
            r = site.ctl("node", "add", "--pub-hex", point.hex(), "--class", "sensor")
            expect(r.returncode == 0 and node_id in r.stdout, f"fleetgwctl node add {role}")
            ids[role] = node_id
        _, ids["u"] = new_node_key()
        certs = {k: site.edge_ca.issue(v) for k, v in ids.items()}
        a, b, u = ids["a"], ids["b"], ids["u"]
        def snap_query(sql):
            """A fresh read-only connection each time: fleetgwd replaces the file."""
            db = sqlite3.connect(f"file:{snap}?mode=ro", uri=True)
            try:
                return db.execute(sql).fetchall()
            finally:
                db.close()

        wait_for(lambda: snap_query("SELECT count(*) FROM nodes")[0][0] == 2, 10,
                 "the enrolments in the snapshot")
        cols = [c[1] for c in snap_query("PRAGMA table_info(nodes)")]
        jm = snap_query("PRAGMA journal_mode")[0][0]
        expect(cols == ["id", "verdict"] and jm == "delete",
               f"the snapshot holds only id and verdict, in rollback-journal mode ({cols}, {jm})")
        r = node_pub(certs["a"], a, "a-1")
        expect(r.returncode == 0, f"an enrolled node connects ({r.stderr.strip()})")
        r = node_pub(certs["u"], u, "u-1")
        expect(refused(r), "an unenrolled node is refused at CONNECT")

        # 3. A removal reaches the running broker.
        r = node_pub(certs["b"], b, "b-1")
        expect(r.returncode == 0, "node b connects while enrolled")
        ino = os.stat(snap).st_ino
        r = site.ctl("node", "remove", b)
        expect(r.returncode == 0, f"fleetgwctl node remove {b}")
        wait_for(lambda: os.stat(snap).st_ino != ino, 10, "fleetgwd to replace the snapshot")
        r = node_pub(certs["b"], b, "b-2")
        expect(refused(r), "the removed node is refused at its next CONNECT, no broker restart")
        expect(logged(f"CONNECT refused: listener node user '{b}'"), "the broker logs it")

        # 4. fleetgwd stopped: the broker still decides.
        expect(site.gwd.stop(signal.SIGTERM) == 0, "fleetgwd stops cleanly")
        r = node_pub(certs["a"], a, "a-2")
        expect(r.returncode == 0, f"fleetgwd stopped: the enrolled node still connects "
                                  f"({r.stderr.strip()})")
        r = node_pub(certs["b"], b, "b-3")
        expect(refused(r), "fleetgwd stopped: the removed node is still refused")
        start_gwd()
        site.gwd.stop(signal.SIGKILL)
        r = node_pub(certs["a"], a, "a-3")
        expect(r.returncode == 0, "fleetgwd killed (-9): the enrolled node still connects")

        # 5. A damaged snapshot fails closed; fleetgwd's next start repairs it.
        with open(snap + ".bad", "wb") as f:
            f.write(b"this is not a SQLite database: a damaged copy" * 100)
        os.rename(snap + ".bad", snap)
        r = node_pub(certs["a"], a, "a-4")
        expect(refused(r), "a damaged snapshot refuses every node (fail closed)")
        start_gwd()
        wait_for(lambda: site.gwd.check_alive() or
                 "edge broker registry snapshot" in site.gwd.output(), 30,
                 "fleetgwd to write the snapshot again")
        r = node_pub(certs["a"], a, "a-5")
        expect(r.returncode == 0, f"after fleetgwd's start the node connects again "
                                  f"({r.stderr.strip()})")
        expect(site.gwd.stop() == 0, "fleetgwd stops cleanly")
    return 0


if __name__ == "__main__":
    run_main(main)
