"""fleetgwd periodic re-attestation with real brokers and TPM: a trusted node that stops
answering its challenges loses its verdict. The node's IAK is generated at test time and its
PSA tokens are signed with it (tests/integration/attest_common.py); attestation.interval_s
is 5 s (its minimum) and nonce_ttl_s 10 s. Proves:
 - a node that attested is trusted and relayed; once interval_s has passed, its next message
   draws a fresh challenge, and that message as well as telemetry sent while the challenge
   is outstanding is still relayed (grace until the nonce expires);
 - the node then sends nothing and answers nothing: fleetgwd's timer (not a message from the
   node) quarantines it with the reason "no answer to the attestation challenge within
   nonce_ttl_s", persisted in the registry (fleetgwctl node show), published as the retained
   <prefix>/nodes/<id>/state upstream, counted (attest_timeout, attest_quarantined) and
   logged with node and reason;
 - its telemetry is then dropped (counted quarantined) and never reaches the cloud;
 - it answers a fresh challenge with a good token: trusted again, relayed again; a challenge
   that was answered never times out."""

import json
import sys
import time

from fleetgw_harness import Env, expect, require, wait_for

from attest_common import MEAS_GOOD, SIGNER, Node, token, write_reference
from daemon_common import PREFIX, Observer, Site

INTERVAL_S = 5
NONCE_TTL_S = 10
TIMEOUT_REASON = "no answer to the attestation challenge within nonce_ttl_s"


def main():
    with Env("daemon-reattest") as env:
        site = Site(env, nodes=())
        ref = write_reference(env.path("reference.json"))
        site.start_gwd(attestation={"required": True, "reference_file": ref,
                                    "nonce_ttl_s": NONCE_TTL_S, "interval_s": INTERVAL_S})
        site.wait_gwd_connected()
        obs = Observer(site, f"{PREFIX}/nodes/#")

        fleetgwctl = site.ctl

        def verdict(node):
            return site.node_json(node.id)

        def state_upstream(node):
            r = env.run([require("mosquitto_sub")] + site.cloud.client_args(site.operator) +
                        ["-t", f"{PREFIX}/nodes/{node.id}/state", "-C", "1", "-W", "10"])
            return json.loads(r.stdout) if r.stdout.strip() else None

        def upstream(node):
            return [p for t, p in obs.messages() if t == f"{PREFIX}/nodes/{node.id}/telemetry"]

        # 1. The node attests and is relayed.
        n = Node(site, nonce_ttl_s=NONCE_TTL_S)
        r = fleetgwctl("node", "add", "--pub-hex", n.point.hex(), "--class", "sensor")
        assert r.returncode == 0, r.stderr
        n.status()
        n.evidence(token(n.key, n.point, n.wait_challenge(1), MEAS_GOOD))
        wait_for(lambda: verdict(n)["verdict"] == "trusted", 30, "the node trusted")
        first = n.telemetry()
        wait_for(lambda: first in upstream(n), 30, "the trusted node's telemetry upstream")
        expect(True, "an attested node is trusted and its telemetry relayed")

        # 2. Re-attestation due: the node keeps publishing until the gateway challenges it.
        sent = []

        def challenged():
            if len(n.challenges()) >= 2:
                return True
            sent.append(n.telemetry())
            time.sleep(0.5)
            return False

        wait_for(challenged, 60, f"a re-attestation challenge after interval_s ({INTERVAL_S} s)")
        nonce2 = n.challenges()[1]
        grace = n.telemetry()  # while the challenge is outstanding
        wait_for(lambda: all(m in upstream(n) for m in sent + [grace]), 30,
                 "the telemetry up to and during the re-attestation challenge upstream")
        expect(verdict(n)["verdict"] == "trusted",
               f"while its challenge is outstanding the node stays trusted and relayed "
               f"({len(sent)} message(s) up to the challenge, 1 after it)")

        seen = verdict(n)["last_seen"]

        # 3. Silence: no evidence, no traffic. The gateway's own timer takes the verdict.
        wait_for(lambda: verdict(n)["verdict"] == "quarantined", NONCE_TTL_S + 60,
                 "the silent node quarantined once its nonce expired")
        v = verdict(n)
        expect(TIMEOUT_REASON in v["reason"] and v["fw_version"] == "1.2.0",
               f"registry: quarantined, reason '{v['reason']}' (firmware version kept)")
        expect(v["last_seen"] == seen and v["verdict_time"] > seen,
               f"the verdict in the node's absence keeps last_seen ({seen}; verdict at "
               f"{v['verdict_time']}, last_seen now {v['last_seen']})")
        expect(len(n.challenges()) == 2 and grace == upstream(n)[-1],
               "the quarantine came from the timer: the node sent nothing after its last "
               "relayed message and was challenged no further")
        st = state_upstream(n)
        expect(st is not None and st["verdict"] == "quarantined" and
               TIMEOUT_REASON in st["reason"],
               f"retained state upstream says quarantined with the reason: {st}")
        wait_for(lambda: site.counters().get("attest_timeout", 0) >= 1, 30,
                 "the unanswered challenge counted")
        cnt = site.counters()
        expect(cnt.get("attest_timeout", 0) == 1 and cnt.get("attest_quarantined", 0) == 1 and
               cnt.get("quarantined", 0) == 0,
               f"one unanswered challenge (attest_timeout), one quarantine verdict: {cnt}")
        expect(f"node={n.id} reason=attest_timeout" in site.gwd.output() and
               TIMEOUT_REASON in site.gwd.output(),
               "the lost verdict is logged with the node id and the reason")
        r = fleetgwctl("nodes")
        expect(r.returncode == 0 and "quarantined" in r.stdout,
               "fleetgwctl nodes lists the node as quarantined")

        # 4. Quarantined: its telemetry is dropped (and draws a fresh challenge).
        dropped = n.telemetry()
        wait_for(lambda: site.counters().get("quarantined", 0) == 1, 30,
                 "the quarantined node's telemetry counted as dropped")
        nonce3 = n.wait_challenge(3)
        expect(nonce3 != nonce2, "the quarantined node gets a fresh nonce")

        # 5. It answers correctly: trusted again.
        n.evidence(token(n.key, n.point, nonce3, MEAS_GOOD))
        wait_for(lambda: verdict(n)["verdict"] == "trusted", 30, "the node trusted again")
        v = verdict(n)
        expect("match" in v["reason"], f"trusted again after a good answer: {v['reason']}")
        wait_for(lambda: (state_upstream(n) or {}).get("verdict") == "trusted", 30,
                 "retained state upstream trusted again")
        expect(True, "the retained state upstream says trusted again")

        # 6. An answered challenge does not time out (no traffic, so no new challenge).
        time.sleep(NONCE_TTL_S + 2)
        cnt = site.counters()
        expect(verdict(n)["verdict"] == "trusted" and cnt.get("attest_timeout", 0) == 1 and
               len(n.challenges()) == 3,
               f"past the answered nonce's lifetime the node is still trusted: {cnt}")

        back = n.telemetry()
        wait_for(lambda: back in upstream(n), 30, "the re-attested node's telemetry upstream")
        expect(dropped not in upstream(n),
               "telemetry sent while quarantined never reached the cloud; after the new "
               "verdict it is relayed again")
        cnt = site.counters()
        expect(cnt.get("attest_trusted", 0) == 2 and cnt.get("attest_quarantined", 0) == 1 and
               cnt.get("attest_timeout", 0) == 1 and cnt.get("quarantined", 0) == 1,
               f"verdicts and drops counted: {cnt}")
        rc = site.gwd.stop()
        expect(rc == 0, "fleetgwd stops cleanly")
    return 0


if __name__ == "__main__":
    sys.exit(main())
