"""Uplink shaping with REAL brokers and TPM (issue 17): a publish-rate ceiling and batching.

1. uplink.batch on, uplink.max_publish_per_s 4: 3 nodes send 200 messages each at once.
   Every message arrives on <prefix>/batch, split by tools/fleetgw-unbatch, exactly once
   and in order per node; fewer publishes than messages (batches_sent, batch_messages);
   fleetgwd logged REASON=uplink_ceiling and uplink_caught_up; no second holds more than 4
   batch publishes as a subscriber of the cloud broker received them (the exact window is
   unit.test_shape's); fleetgwctl status and STATUS= show the uplink fields.
2. Kill -9 with batches in flight: the cloud broker is paused (SIGSTOP) so no PUBACK comes,
   fleetgwd is killed, the broker resumed, fleetgwd restarted: the recorded batches are sent
   again first with the same entries (counted batches_resent), every message arrives, and
   no two batches with different entries share a message.
"""

import base64
import json
import os
import signal
import subprocess
import sys
import time

from fleetgw_harness import Env, expect, program, require, wait_for

from daemon_common import PREFIX, NotifySocket, Publisher, Site

NODES = ("n1", "n2", "n3")
N = 200
CEILING = 4


class HexObserver:
    """QoS 1 persistent subscriber printing receive time, topic and hex payload (as
    "observer", a name the cloud broker lets read everything)."""

    def __init__(self, site, name="observer"):
        cert = site.cloud_ca.issue(name)
        self.proc = site.env.spawn(name, [require("mosquitto_sub")] +
                                   site.cloud.client_args(cert) +
                                   ["-i", name, "-c", "-q", "1", "-t", PREFIX + "/#",
                                    "-F", "%U %t %x"])
        site.cloud.wait_subscribed(name)

    def batches(self):
        out = []
        for line in self.proc.output().splitlines():
            parts = line.split(" ")
            if len(parts) == 3 and parts[1] == PREFIX + "/batch":
                out.append((float(parts[0]), bytes.fromhex(parts[2])))
        return out


def unbatch(env, payloads, tag):
    """fleetgw-unbatch over every payload: [(batch id, seq, node, topic, payload text)]."""
    files = []
    for i, p in enumerate(payloads):
        path = env.path(f"{tag}-{i}.cbor")
        with open(path, "wb") as f:
            f.write(p)
        files.append(path)
    r = subprocess.run([program("fleetgw-unbatch"), "--prefix", PREFIX] + files,
                       capture_output=True, text=True, timeout=120)
    expect(r.returncode == 0, f"fleetgw-unbatch splits every batch: {r.stderr[-500:]}")
    out = []
    for line in r.stdout.splitlines():
        j = json.loads(line)
        out.append((j["batch"], j["seq"], j["node"], j["topic"],
                    base64.b64decode(j["payload"]).decode()))
    return out


def check_all(entries, total_per_node):
    """Every node's n:000001.. exactly once after dropping redeliveries (same seq), in order;
    and every batch id always with the same entries."""
    seen_seq = {}
    for bid, seq, node, topic, payload in entries:
        seen_seq.setdefault(seq, set()).add(bid)
    two_batches = [s for s, ids in seen_seq.items() if len(ids) > 1]
    expect(not two_batches, f"no message is in two different batches ({two_batches[:5]})")
    per_node, done, bad = {}, set(), []
    for bid, seq, node, topic, payload in sorted(entries, key=lambda e: e[1]):
        if seq in done:
            continue
        done.add(seq)
        if topic != f"{PREFIX}/nodes/{node}/telemetry":
            bad.append((seq, node, topic))
        per_node.setdefault(node, []).append(payload)
    expect(not bad, f"every entry's topic is <prefix>/nodes/<its node>/telemetry ({bad[:3]})")
    for n, total in total_per_node.items():
        want = [f"{n}:{i:06d}" for i in range(1, total + 1)]
        got = per_node.get(n, [])
        expect(got == want, f"{n}: {len(got)} message(s) in order, {total} expected "
               f"(first differences: {[(a, b) for a, b in zip(got, want) if a != b][:3]})")


def batch_compositions(entries):
    comp = {}
    for bid, seq, *_ in entries:
        comp.setdefault(bid, []).append(seq)
    return comp


def main():
    with Env("daemon-uplink-batch") as env:
        site = Site(env, NODES)
        obs = HexObserver(site)
        up = {"batch": "on", "max_publish_per_s": CEILING, "batch_max_delay_ms": 100,
              "batch_max_bytes": 1024}
        ns = NotifySocket(env.path("notify.sock"))
        site.start_gwd(uplink=up, extra_env={"NOTIFY_SOCKET": ns.path})
        site.wait_gwd_connected()

        # 1. a burst under the ceiling
        pubs = [Publisher(site, n) for n in NODES]
        for i in range(1, N + 1):
            for p in pubs:
                p.send(i)
        for p in pubs:
            p.close()
        wait_for(lambda: site.counters().get("batch_messages", 0) >= N * len(NODES) and
                 site.spooled() == 0, 120, "every message sent in batches and acknowledged")
        c = site.counters()
        expect(c.get("batch_messages") == N * len(NODES) and c.get("relayed_up") == N * 3,
               f"batch_messages and relayed_up count every message once: {c}")
        expect(c.get("batches_sent", 0) < N * len(NODES) / 5,
               f"batches_sent {c.get('batches_sent')} is far below the {N * 3} messages")
        expect("reason=uplink_ceiling" in site.gwd.output() and
               "reason=uplink_caught_up" in site.gwd.output(),
               "fleetgwd logged that the ceiling held the drain back")
        js = json.loads(site.ctl("--json", "status").stdout)
        u = js.get("uplink", {})
        expect(u.get("max_publish_per_s") == CEILING and u.get("batch") is True and
               u.get("batches_sent") == c.get("batches_sent") and
               u.get("batch_fill", 0) > 5 and "drain_rate" in u and "drain_eta_s" in u and
               u.get("backlog_messages") == 0,
               f"fleetgwctl --json status shows the uplink: {u}")
        wait_for(lambda: any(x.startswith("STATUS=") and "backlog 0 msg / 0 B, ceiling 4/s, drain "
                             in x and ", batch fill " in x for x in ns.poll()), 30,
                 "STATUS= with the backlog, the ceiling, the drain rate and the batch fill")
        ns.close()
        text = site.ctl("status").stdout
        expect("backlog" in text and "batches" in text, f"fleetgwctl status:\n{text}")
        wait_for(lambda: len(unbatch(env, [p for _, p in obs.batches()], "w")) >=
                 N * len(NODES), 60, "the observer to have every batch")
        got = obs.batches()
        entries = unbatch(env, [p for _, p in got], "a")
        check_all(entries, {n: N for n in NODES})
        times = sorted(t for t, _ in got)
        worst = max(sum(1 for u2 in times if t <= u2 < t + 1.0) for t in times)
        expect(worst <= CEILING,
               f"at most {CEILING} batch publishes within any second at the broker, as its "
               f"subscriber received them (worst {worst})")

        # 2. kill -9 with batches in flight
        site.cloud.proc.send_signal(signal.SIGSTOP)
        try:
            pubs = [Publisher(site, n) for n in NODES]
            for i in range(N + 1, 2 * N + 1):
                for p in pubs:
                    p.send(i)
            for p in pubs:
                p.close()
            wait_for(lambda: site.spooled() == 3 * N, 60, "the second burst spooled")
            wait_for(lambda: json.loads(site.ctl("--json", "status").stdout)["inflight"] > 0,
                     60, "batches in flight to the paused cloud broker")
            time.sleep(0.5)
            site.gwd.send_signal(signal.SIGKILL)
            site.gwd.popen.wait()
        finally:
            site.cloud.proc.send_signal(signal.SIGCONT)
        site.start_gwd(uplink=up)
        site.wait_gwd_connected()
        wait_for(lambda: site.spooled() == 0, 120, "the backlog sent after the restart")
        c = site.counters()
        expect(c.get("batches_resent", 0) >= 1,
               f"the recorded batches were sent again after the restart: {c}")
        wait_for(lambda: len({e[1] for e in unbatch(env, [p for _, p in obs.batches()], "w")})
                 >= 2 * N * len(NODES), 60, "the observer to have every message")
        entries = unbatch(env, [p for _, p in obs.batches()], "b")
        check_all(entries, {n: 2 * N for n in NODES})
        comp = batch_compositions(entries)
        # A batch delivered twice (before the kill and resent after) has the same entries.
        changed, twice = [], 0
        for bid, seqs in comp.items():
            uniq = sorted(set(seqs))
            reps = len(seqs) // len(uniq)
            twice += reps > 1
            if sorted(seqs) != sorted(uniq * reps):
                changed.append(bid)
        expect(not changed, f"a batch delivered more than once (QoS 1 redelivery, or sent "
               f"before the kill and again after it: {twice} of {len(comp)}) always has the "
               f"same entries (changed: {changed[:5]})")
        print(f"batches: {c.get('batches_sent')} sent for {c.get('batch_messages')} messages, "
              f"{c.get('batches_resent')} resent")
        site.gwd.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
