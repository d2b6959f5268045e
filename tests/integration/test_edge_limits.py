"""The edge broker's limits as the package ships them (issue 19, items 2 and 3): mosquitto run
from systemd/mosquitto/fleetgw-edge.conf with only paths and the port replaced (edge_broker.py).
Proves:
 - the shipped max_packet_size is what fleetgwd announces as its Maximum Packet Size for the
   default limits.max_message_bytes (so the two cannot drift apart unseen);
 - a node's 4 MiB PUBLISH is refused by the broker (its connection closed) and never reaches
   the gateway's listener, while a message at the limit does;
 - the gateway's session queue is bounded by bytes at the spool's default size, not by
   mosquitto's default of 1000 messages;
 - the shipped unit sets MemoryMax=."""

import os
import re
import sys

from fleetgw_harness import Env, expect, require, run_main, wait_for
from edge_broker import SHIPPED, SRC, EdgeBroker


def shipped_setting(name):
    with open(os.path.join(SHIPPED, "fleetgw-edge.conf")) as f:
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
    pkt = shipped_setting("max_packet_size")
    expect(max_msg is not None and overhead is not None and pkt == max_msg * 1024 + overhead,
           f"shipped max_packet_size {pkt} = fleetgwd's default max_message_bytes "
           f"{max_msg} KiB + {overhead} (its Maximum Packet Size)")
    expect(shipped_setting("max_queued_messages") == 0 and
           shipped_setting("max_queued_bytes") == spool * 1024 * 1024,
           f"the gateway's queue is bounded by bytes ({shipped_setting('max_queued_bytes')}) "
           f"at the spool's default size ({spool} MiB), not by a message count")
    with open(os.path.join(SRC, "systemd", "fleetgwd.service")) as f:
        mm = re.search(r"^MemoryMax=(\S+)$", f.read(), re.M)
    expect(mm is not None, f"the unit caps fleetgwd's memory (MemoryMax={mm and mm.group(1)})")
    with Env("edge-limits") as env:
        ca = env.ca("edge-ca")
        eb = EdgeBroker(env, ca, name="edge-shipped").start()
        node = "n1"
        cert = ca.issue(node)
        sub = env.spawn("gateway-sub", ["stdbuf", "-oL", require("mosquitto_sub")] +
                        eb.gateway_args(user="") + ["-q", "1", "-t", "fleet/#", "-v"])
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
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
