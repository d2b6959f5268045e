"""The spool's acknowledgement rule, watched at the system-call level: fleetgwd runs under
strace with REAL brokers and TPM while nodes publish at a steady rate and in a burst (so
that both edge paths run: read-and-commit at once, and the batch held for the commit timer,
here with spool.commit_gap_ms at 50). From the trace of fleetgwd's main thread the test rebuilds the MQTT byte streams of
its edge socket and checks, for every PUBACK fleetgwd wrote to the edge broker, that the
PUBLISH it acknowledges was read before it and that an fdatasync (the spool's WAL commit)
ran between that read and the PUBACK. A PUBACK that left before its message was durable
fails the test, whatever the reason."""

import os
import re
import signal
import subprocess
import sys
import threading
import time

from fleetgw_harness import Env, HarnessError, expect, require, wait_for

from daemon_common import PREFIX, Observer, Publisher, Site

NODES = ("a1", "a2", "a3", "a4")
STEADY = 150      # messages per node at about 100/s
BURST = 2000      # messages from one node, as fast as mosquitto_pub sends them

LINE = re.compile(r"^(\d+)\s+(.*)$")
CALL = re.compile(r"^(\w+)\((\d+), (.*)\)\s+=\s+(-?\d+)")


def unescape(s):
    """strace -xx string contents -> bytes."""
    return bytes(int(h, 16) for h in re.findall(r"\\x([0-9a-f]{2})", s))


def parse_trace(path):
    """[(kind, fd, data)] for the main thread: kind is 'connect', 'read', 'write' or
    'fdatasync'; unfinished/resumed pairs are joined; failed calls are left out."""
    events, pending, main = [], {}, None
    with open(path, errors="replace") as f:
        for raw in f:
            m = LINE.match(raw.rstrip("\n"))
            if not m:
                continue
            pid, text = m.group(1), m.group(2)
            if main is None:
                main = pid
            if pid != main:
                continue
            if text.endswith("<unfinished ...>"):
                pending[pid] = text[: -len("<unfinished ...>")].rstrip()
                continue
            r = re.match(r"^<\.\.\. (\w+) resumed>(.*)$", text)
            if r:
                text = pending.pop(pid, r.group(1) + "(") + r.group(2)
            sync = re.match(r"^fdatasync\((\d+)\)\s+=\s+0", text)
            if sync:
                events.append(("fdatasync", int(sync.group(1)), b""))
                continue
            c = CALL.match(text)
            if not c or int(c.group(4)) < 0:
                continue
            name, fd, args, ret = c.group(1), int(c.group(2)), c.group(3), int(c.group(4))
            if name == "connect":
                path_m = re.search(r'sun_path="([^"]*)"', args)
                events.append(("connect", fd, unescape(path_m.group(1)) if path_m else b""))
            elif name in ("read", "write") and ret > 0:
                data_m = re.match(r'^"((?:\\x[0-9a-f]{2})*)"', args)
                data = unescape(data_m.group(1)) if data_m else b""
                events.append((name, fd, data[:ret]))
    return events


class Stream:
    """Cuts an MQTT byte stream into packets: feed bytes, get (type, packet id) for each
    packet completed by them."""

    def __init__(self):
        self.buf = b""

    def feed(self, data):
        self.buf += data
        out = []
        while len(self.buf) >= 2:
            n, mult, i = 0, 1, 1
            while True:
                if i >= len(self.buf):
                    return out
                b = self.buf[i]
                n += (b & 0x7F) * mult
                mult *= 128
                i += 1
                if not b & 0x80:
                    break
            if len(self.buf) < i + n:
                return out
            head, body = self.buf[0], self.buf[i:i + n]
            self.buf = self.buf[i + n:]
            kind, pid = head >> 4, None
            if kind == 3 and (head >> 1) & 3:  # PUBLISH QoS 1/2: topic, then packet id
                tl = int.from_bytes(body[:2], "big")
                pid = int.from_bytes(body[2 + tl:4 + tl], "big")
            elif kind == 4:  # PUBACK
                pid = int.from_bytes(body[:2], "big")
            out.append((kind, pid))
        return out


def main():
    strace = require("strace")
    with Env("daemon-ack-order") as env:
        site = Site(env, NODES)
        obs = Observer(site, f"{PREFIX}/nodes/#")
        trace = env.path("fleetgwd.strace")
        site.start_gwd(wrap=[strace, "-f", "-qq", "-xx", "-s", "65536", "-o", trace,
                             "-e", "trace=connect,read,write,fdatasync"],
                       # a long commit gap (the default is 4 ms, which fleetgwd under strace
                       # rarely meets): batches are held for the commit timer while the
                       # uplink's PUBACKs keep the loop busy, the case the rule is about
                       spool={"drain_rate": 1000000, "max_inflight": 100,
                              "commit_gap_ms": 50},
                       limits={"per_node_rate": 1000000, "per_node_burst": 1000000})
        site.wait_gwd_connected()

        # steady load from every node, then a burst from one
        pubs = {n: Publisher(site, n) for n in NODES}

        def steady(node):
            for i in range(STEADY):
                pubs[node].send(i)
                time.sleep(0.01)

        threads = [threading.Thread(target=steady, args=(n,)) for n in NODES]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for i in range(STEADY, STEADY + BURST):
            pubs["a1"].send(i)
        for p in pubs.values():
            p.close()
        total = len(NODES) * STEADY + BURST
        wait_for(lambda: len(obs.lines()) >= total, 300,
                 f"{total} messages upstream (fleetgwd under strace is slow)")

        # stop fleetgwd (strace's child) cleanly; strace then exits by itself
        children = subprocess.run(["pgrep", "-P", str(site.gwd.pid)], capture_output=True,
                                  text=True).stdout.split()
        if not children:
            raise HarnessError("cannot find fleetgwd under strace")
        os.kill(int(children[0]), signal.SIGTERM)
        wait_for(lambda: site.gwd.popen.poll() is not None, 60, "fleetgwd and strace to exit")

        events = parse_trace(trace)
        edge_path = site.edge.socket_path.encode()
        edge_fds = {fd for kind, fd, data in events if kind == "connect" and data == edge_path}
        expect(len(edge_fds) == 1, f"the edge connection found in the trace ({edge_fds})")
        edge = edge_fds.pop() if edge_fds else -1
        rx, tx = Stream(), Stream()
        read_at = {}      # packet id -> index of the read that completed its PUBLISH
        last_sync = -1
        checked, bad = 0, []
        for idx, (kind, fd, data) in enumerate(events):
            if kind == "fdatasync":
                last_sync = idx
            elif kind == "connect" and fd == edge:
                rx, tx = Stream(), Stream()  # a new connection on that descriptor
            elif kind == "read" and fd == edge:
                for ptype, pid in rx.feed(data):
                    if ptype == 3 and pid is not None:
                        read_at[pid] = idx
            elif kind == "write" and fd == edge:
                for ptype, pid in tx.feed(data):
                    if ptype != 4:
                        continue
                    r = read_at.get(pid)
                    if r is None:
                        bad.append(f"PUBACK {pid} for a PUBLISH never read")
                    elif not r < last_sync < idx:
                        bad.append(f"PUBACK {pid} at event {idx}: its PUBLISH was read at "
                                   f"{r}, the last fdatasync before it is at {last_sync}")
                    checked += 1
        expect(checked >= total,
               f"the trace holds a PUBACK for every message ({checked} of at least {total})")
        expect(not bad, f"every PUBACK left after its message was fsync'ed "
                        f"({len(bad)} did not: {bad[:3]})")
        syncs = sum(1 for e in events if e[0] == "fdatasync")
        print(f"ok: {checked} PUBACKs, each after the fsync of its message "
              f"({syncs} fdatasync calls)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
