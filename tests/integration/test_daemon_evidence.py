"""fleetgwd's attestation gate against duplicated, redelivered and flooded evidence (issue 21),
with real swtpm, brokers and tokens (attest_common). Proves:
 1. evidence published twice (the QoS 1 resend of an agent after a reconnect): the node is
    trusted once and stays trusted; the copy is counted evidence_unsolicited, writes no
    verdict and sends no second state upstream;
 2. fleetgwd SIGKILLed between challenge and answer: the node answers while fleetgwd is
    dead, the edge broker redelivers the answer to the restarted fleetgwd (persistent
    session). That answer is not judged (no challenge of that run is outstanding): the node
    is not quarantined, it is challenged afresh and trusted on its answer;
 3. one trusted node floods 1,000 copies of its evidence while another node sends
    telemetry: every flood message is accounted for (evidence_unsolicited or rate_limited),
    none is judged, the flooding node's verdict is not rewritten, no spool row is added
    (relayed_up grows by exactly the other node's messages, no state message upstream), and
    the other node's telemetry all arrives, in order. The relay latency of the other node's
    messages during the flood is measured and printed (not asserted: no wall-clock limits);
    bench_evidence_flood measures it against the group-commit interval."""

import json
import signal
import statistics
import sys
import time

import cbor2

from fleetgw_harness import Env, expect, require, wait_for

from attest_common import MEAS_GOOD, SIGNER, Node, token, write_reference
from daemon_common import PREFIX, Observer, Site

FLOOD = 1000


def main():
    with Env("daemon-evidence") as env:
        site = Site(env, nodes=())
        ref = write_reference(env.path("reference.json"))
        attestation = {"required": True, "reference_file": ref, "nonce_ttl_s": 30,
                       "interval_s": 3600}
        limits = {"max_message_bytes": 4096, "per_node_rate": 100, "per_node_burst": 200}
        site.start_gwd(attestation=attestation, limits=limits)
        site.wait_gwd_connected()
        obs = Observer(site, f"{PREFIX}/nodes/#")

        def enroll(node):
            r = site.ctl("node", "add", "--pub-hex", node.point.hex(), "--class", "sensor")
            assert r.returncode == 0, r.stderr

        def count(name):
            return site.counters().get(name, 0)

        def states(node):
            return [p for t, p in obs.messages() if t == f"{PREFIX}/nodes/{node.id}/state"]

        def telemetry_up(node):
            return [p for t, p in obs.messages() if t == f"{PREFIX}/nodes/{node.id}/telemetry"]

        # 1. Evidence published twice.
        a = Node(site, nonce_ttl_s=30)
        enroll(a)
        a.status()
        tok = token(a.key, a.point, a.wait_challenge(1), MEAS_GOOD)
        a.evidence(tok)
        a.evidence(tok)
        wait_for(lambda: count("evidence_unsolicited") == 1, 30, "the copy counted")
        v = site.node_json(a.id)
        expect(v["verdict"] == "trusted" and count("attest_trusted") == 1 and
               count("attest_quarantined") == 0,
               f"evidence published twice: trusted once, the copy not judged ({v['verdict']}, "
               f"{site.counters()})")
        wait_for(lambda: len(states(a)) >= 1, 30, "A's state upstream")
        msg = a.telemetry()
        wait_for(lambda: msg in telemetry_up(a), 30, "A's telemetry upstream")
        expect(len(states(a)) == 1 and json.loads(states(a)[0])["verdict"] == "trusted",
               f"one state message upstream for A, trusted ({states(a)})")
        expect(f"node={a.id} reason=evidence_unsolicited" in site.gwd.output(),
               "the copy is logged with the node id and REASON=evidence_unsolicited")

        # 2. SIGKILL between challenge and answer; the answer is redelivered after restart.
        b = Node(site, nonce_ttl_s=30)
        enroll(b)
        b.status()
        nonce1 = b.wait_challenge(1)
        site.gwd.send_signal(signal.SIGKILL)
        site.gwd.popen.wait(timeout=30)
        expect(site.gwd.popen.returncode == -signal.SIGKILL, "fleetgwd SIGKILLed after the challenge")
        b.evidence(token(b.key, b.point, nonce1, MEAS_GOOD))  # queued for fleetgwd's session
        unsolicited = count("evidence_unsolicited")
        site.start_gwd(attestation=attestation, limits=limits)
        site.wait_gwd_connected()
        wait_for(lambda: count("evidence_unsolicited") == unsolicited + 1, 30,
                 "the redelivered answer counted as unsolicited")
        v = site.node_json(b.id)
        expect(v["verdict"] == "unknown" and count("attest_quarantined") == 0,
               f"the redelivered answer did not quarantine B (verdict {v['verdict']})")
        nonce2 = b.wait_challenge(2)
        expect(nonce2 != nonce1, "B is challenged afresh after the redelivered answer")
        b.evidence(token(b.key, b.point, nonce2, MEAS_GOOD))
        wait_for(lambda: site.node_json(b.id)["verdict"] == "trusted", 30, "B trusted")
        expect(count("attest_trusted") == 2 and count("attest_quarantined") == 0,
               f"B trusted on its answer to the fresh challenge ({site.counters()})")

        # 3. A floods 1,000 copies of its evidence while B sends telemetry.
        wait_for(lambda: site.spooled() == 0, 30, "the spool drained")
        before = site.counters()
        vt_a = site.node_json(a.id)["verdict_time"]
        n_states = len(states(a))
        flood_file = env.path("flood.cbor")
        with open(flood_file, "wb") as f:
            f.write(cbor2.dumps([2, tok]))
        t0 = time.monotonic()
        flood = env.spawn("flood", [require("mosquitto_pub")] + site.edge.client_args(a.cert) +
                          ["-i", f"flood-{a.id}", "-q", "1", "-t",
                           f"fleet/{a.id}/attest/evidence", "-f", flood_file,
                           "--repeat", str(FLOOD)]).popen
        sent, during, lat = [], 0, []
        for _ in range(400):
            running = flood.poll() is None
            t = time.monotonic()
            sent.append(b.telemetry())  # returns once fleetgwd committed it (PUBACK)
            lat.append(time.monotonic() - t)
            during += 1 if running else 0
            if not running and len(sent) > during + 2:
                break
        flood_s = time.monotonic() - t0
        flood.wait(timeout=120)
        expect(flood.returncode == 0, f"the flood of {FLOOD} messages was published")
        expect(during >= 1, f"{during} of B's messages were sent while the flood ran")
        wait_for(lambda: all(m in telemetry_up(b) for m in sent), 60, "B's telemetry upstream")
        wait_for(lambda: count("evidence_unsolicited") + count("rate_limited") -
                 before.get("evidence_unsolicited", 0) - before.get("rate_limited", 0) == FLOOD,
                 60, "every flood message counted")
        time.sleep(1)  # a group commit later: nothing else arrives
        after = site.counters()
        got = telemetry_up(b)
        expect(got == sent, f"B's {len(sent)} telemetry messages arrived, each once, in order")
        d_unsol = after.get("evidence_unsolicited", 0) - before.get("evidence_unsolicited", 0)
        d_rl = after.get("rate_limited", 0) - before.get("rate_limited", 0)
        expect(d_unsol + d_rl == FLOOD and d_rl > 0,
               f"the flood: {d_unsol} not judged (evidence_unsolicited) + {d_rl} rate_limited "
               f"= {FLOOD}")
        expect(after.get("attest_trusted", 0) == before.get("attest_trusted", 0) and
               after.get("attest_quarantined", 0) == before.get("attest_quarantined", 0),
               "no flood message was judged")
        expect(after.get("relayed_up", 0) - before.get("relayed_up", 0) == len(sent) and
               len(states(a)) == n_states and site.spooled() == 0,
               f"the flood added no spool row: relayed_up grew by B's {len(sent)} messages "
               f"only, no state message upstream for A")
        v = site.node_json(a.id)
        expect(v["verdict"] == "trusted" and v["verdict_time"] == vt_a,
               "A's verdict was not rewritten by the flood")
        site.gwd.check_alive()
        print(f"measured: flood of {FLOOD} evidence messages published in {flood_s:.2f} s; "
              f"B's telemetry publish->PUBACK (committed) during the flood: median "
              f"{statistics.median(lat[:max(during, 1)]) * 1000:.1f} ms, max "
              f"{max(lat[:max(during, 1)]) * 1000:.1f} ms over {during} message(s)")
        rc = site.gwd.stop()
        expect(rc == 0, "fleetgwd stops cleanly")
    return 0


if __name__ == "__main__":
    sys.exit(main())
