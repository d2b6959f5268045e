"""The edge broker's limits as the package ships them (issue 19, items 2 and 3): mosquitto run
from each shipped edge conf, systemd/mosquitto/fleetgw-edge.conf and fleetgw-edge-plugin.conf
(with the registry plugin), with only paths and the port replaced (edge_broker.py). Proves,
for both:
 - the shipped max_packet_size is what fleetgwd announces as its Maximum Packet Size for the
   default limits.max_message_bytes (so the two cannot drift apart unseen);
 - a node's 4 MiB PUBLISH is refused by the broker (its connection closed) and never reaches
   the gateway's listener, while a message at the limit does;
 - the gateway's session queue is bounded by bytes at the spool's default size, not by
   mosquitto's default of 1000 messages;
 - the shipped unit sets MemoryMax=."""

import os
import re
import sqlite3
import sys

from fleetgw_harness import Env, expect, require, run_main, wait_for
from edge_broker import DEFAULT_CONF, PLUGIN_CONF, SHIPPED, SRC, EdgeBroker


def shipped_setting(name, conf=DEFAULT_CONF):
    with open(os.path.join(SHIPPED, conf)) as f:
        m = re.search(rf"^{name}\s+(\d+)\s*$", f.read(), re.M)
    return int(m.group(1)) if m else None


def daemon_constant(path, pattern):
    with open(os.path.join(SRC, path)) as f:
        m = re.search(pattern, f.read())
    return int(m.group(1)) if m else None


def main():
    max_msg = daemon_constant("daemon/src/config.c",
                              r"cfg->limits\.max_message_bytes = (\d+) \* 1024;")
    overhead = daemon_constant("daemon/src/daemon.h", r"#define EDGE_PACKET_OVERHEAD\s+(\d+)u")
    spool = daemon_constant("daemon/src/config.c", r"cfg->spool\.max_bytes = (\d+)LL \* 1024 \* 1024;")
    for conf in (DEFAULT_CONF, PLUGIN_CONF):
        pkt = shipped_setting("max_packet_size", conf)
        expect(max_msg is not None and overhead is not None and pkt == max_msg * 1024 + overhead,
               f"{conf}: max_packet_size {pkt} = fleetgwd's default max_message_bytes "
               f"{max_msg} KiB + {overhead} (its Maximum Packet Size)")
        expect(shipped_setting("max_queued_messages", conf) == 0 and
               shipped_setting("max_queued_bytes", conf) == spool * 1024 * 1024,
               f"{conf}: the gateway's queue is bounded by bytes "
               f"({shipped_setting('max_queued_bytes', conf)}) at the spool's default size "
               f"({spool} MiB), not by a message count")
    with open(os.path.join(SRC, "systemd", "fleetgwd.service")) as f:
        mm = re.search(r"^MemoryMax=(\S+)$", f.read(), re.M)
    expect(mm is not None, f"the unit caps fleetgwd's memory (MemoryMax={mm and mm.group(1)})")
    for conf in (DEFAULT_CONF, PLUGIN_CONF):
        check_broker(conf, max_msg)
    return 0


def check_broker(conf, max_msg):
    print(f"-- {conf}")
    with Env("edge-limits") as env:
        ca = env.ca("edge-ca")
        node = "n1"
        registry = None
        if conf == PLUGIN_CONF:
            # the plugin's registry (the snapshot's table, as fleetgwd writes it): n1 trusted
            registry = env.path("registry.snapshot")
            db = sqlite3.connect(registry)
            db.execute("CREATE TABLE nodes (id TEXT PRIMARY KEY, verdict TEXT NOT NULL)")
            db.execute("INSERT INTO nodes VALUES (?, 'trusted')", (node,))
            db.commit()
            db.close()
        eb = EdgeBroker(env, ca, registry, name="edge-shipped", conf=conf).start()
        cert = ca.issue(node)
        who = {} if conf == PLUGIN_CONF else {"user": ""}  # the gateway identity / anonymous
        sub = env.spawn("gateway-sub", ["stdbuf", "-oL", require("mosquitto_sub")] +
                        eb.gateway_args(**who) + ["-q", "1", "-t", "fleet/#", "-v"])
        wait_for(lambda: sub.check_alive() or "fleet/#" in eb.log(), 15,
                 "the gateway-side subscriber")
        big = env.path("big.bin")
        with open(big, "wb") as f:
            f.write(b"x" * (4 * 1024 * 1024))
        r = env.run([require("mosquitto_pub")] + eb.tls_args(cert) +
                    ["-q", "1", "-t", f"fleet/{node}/up/big", "-f", big])
        expect(r.returncode != 0, f"a 4 MiB publish fails for the node (exit {r.returncode}: "
               f"{(r.stderr or r.stdout).strip()[:120]})")
        fit = env.path("fit.bin")
        with open(fit, "wb") as f:
            f.write(b"y" * (max_msg * 1024))
        r = env.run([require("mosquitto_pub")] + eb.tls_args(cert) +
                    ["-q", "1", "-t", f"fleet/{node}/up/fit", "-f", fit])
        expect(r.returncode == 0, f"a message of limits.max_message_bytes is accepted "
               f"({r.stderr.strip()[:120]})")
        wait_for(lambda: sub.check_alive() or f"fleet/{node}/up/fit" in sub.output(), 30,
                 "the message at the limit at the gateway's listener")
        expect(f"fleet/{node}/up/big" not in sub.output(),
               "the 4 MiB message never reached the gateway's listener")
        log = eb.log()
        expect(re.search(r"(exceeded|too large|packet size|protocol error)", log, re.I) is not None
               or "disconnected" in log,
               "the broker closed the oversized sender's connection (its log says so)")


if __name__ == "__main__":
    sys.exit(run_main(main))
