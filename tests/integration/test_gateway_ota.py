"""Gateway OTA end to end (issue 13): staging checks, then a 50-node campaign in 3 waves.

Real swtpm, cloud and edge mosquitto, fleetgwd, 50 fleet-sim nodes with flash files and the
real bootloader (gateway_ota_common.OtaSite). Proves:
 - every kind of bad image is refused at `fleetgwctl ota stage` with its reason and nothing
   is stored (the store directory is byte-for-byte as before): tampered, unknown signer,
   signer not allowed for the class, security counter below the class floor, wrong device
   class (the image's UUID_CID names another class), too big for the slot, and no class or
   an unknown one declared for an image without UUID_CID;
 - v2 is staged (content-addressed), a campaign [1, "10%", "100%"] with 10 in parallel
   completes, every node `succeeded`, each proven by its post-reboot token: the node is
   trusted with firmware 2.0.0+0 and fleet-sim reports it confirmed on 2.0.0; waves were
   taken in order (no node of wave 2 offered before wave 1 succeeded); the retained status
   upstream says completed with 50 succeeded;
 - after completion the class's current version is 2.0.0: an older image is refused as a
   downgrade, and accepted with --recovery."""

import os
import re
import signal
import sys
import time

from fleetgw_harness import Env, expect, program, run_main, wait_for
from gateway_ota_common import CLASS, OtaSite, sim_summary

N = 50


def main():
    with Env("gateway-ota") as env:
        site = OtaSite(env)
        im = site.images
        site.start()
        ids = site.nodes("ota-", N)
        sim = site.fleet_sim("ota-", N)
        site.wait_trusted(ids)
        expect(True, f"{N} fleet-sim nodes trusted on v1")

        # -- staging: every refusal stores nothing --
        third = env.path("third.pem")
        env.run([program("fleetgw-tool"), "key", "gen", "-o", third, "--pub",
                 env.path("third.pub.pem")], check=True)
        unknown = im.sign("unknown-signer", "3.0.0", 3, key=third)
        wrong_class = env.path("wrong-class.bin")
        body = env.path("wrong-class.payload")
        with open(body, "wb") as f:
            f.write(os.urandom(4096))
        env.run([program("fleetgw-tool"), "image", "sign", "-k", env.path("other.pem"), "-v",
                 "3.0.0", "-H", "0x200", "--pad-header", "-S", "0x40000", "-s", "3", "--cid",
                 "6b1ee3a2-0c6a-4d57-9f0f-9d0c2a3e4b51", body, wrong_class], check=True)
        refusals = [
            ("tampered", im.tampered, ("--class", CLASS)),
            ("unknown_signer", unknown, ("--class", CLASS)),
            ("signer_not_allowed", im.foreign, ("--class", CLASS)),
            ("security_counter", im.older, ("--class", CLASS)),
            ("class_mismatch", wrong_class, ("--class", CLASS)),
            ("too_big", im.big, ("--class", CLASS)),
            ("unknown_class", im.v2, ()),
            ("unknown_class", im.v2, ("--class", "no-such-class")),
        ]
        before = site.store_listing()
        for reason, path, opts in refusals:
            rc, ans, err = site.stage(path, *opts)
            got = (ans or {}).get("reason")
            expect(rc == 1 and got == reason,
                   f"staging {os.path.basename(path)} refused: {got} "
                   f"({(ans or {}).get('error', err).strip()})")
            expect(site.store_listing() == before, f"  nothing stored after the {reason} refusal")

        rc, ans, err = site.stage(im.v2, "--class", CLASS)
        expect(rc == 0 and ans["image"]["digest"] == im.digest[im.v2],
               f"v2 staged as {ans and ans['image']['digest'][:16]} (class "
               f"{ans and ans['image']['class']}, version {ans and ans['image']['version']})")
        rc2, ans2, _ = site.stage(im.v2, "--class", CLASS)
        expect(rc2 == 0 and len(site.ctl_json("ota", "images")["images"]) == 1,
               "staging the same image again is idempotent: one image in the store")
        stored = [p for p, _ in site.store_listing() if p.endswith(".img")]
        expect(stored == [im.digest[im.v2] + ".img"],
               f"the store is content-addressed: {stored}")

        # -- the campaign --
        cid = site.create("--image", im.digest[im.v2][:12], "--id", "c-v2",
                          "--waves", "1,10%,100%", "--max-parallel", "10",
                          "--deadline", "300", "--step-timeout", "60")
        expect(cid == "c-v2", "campaign c-v2 created")
        st = site.wait_final(cid)
        full = site.status(cid, nodes=True)
        counts = full.get("counts", {})
        expect(st["state"] == "completed" and counts.get("succeeded") == N,
               f"campaign {st['state']} ({st.get('reason', '')}): {counts}")
        bad = [n for n in full.get("nodes", []) if n.get("state") != "succeeded"]
        expect(not bad, f"every node succeeded ({bad[:3]})")
        waves = full.get("waves", [])
        expect([w.get("size") for w in waves] == [1, 5, 50] or
               [sum(w.get("counts", {}).values()) for w in waves] == [1, 4, 45],
               f"waves of 1, up to 10 % and all: {[w.get('size') for w in waves]}")

        # each success is proven by attestation: trusted, firmware 2.0.0+0
        v = site.verdicts(ids)
        on_v2 = [i for i, n in v.items() if n.get("verdict") == "trusted" and
                 n.get("fw_version") == "2.0.0+0"]
        expect(len(on_v2) == N, f"{len(on_v2)}/{N} nodes trusted with firmware 2.0.0+0")
        offers = site.gwd_lines(r"image .* offered")
        expect(len(offers) >= N, f"{len(offers)} offers in the journal, each naming its "
               "campaign and node")
        # wave order: the first offer went to the first target, alone, before anyone else
        first = [ln for ln in site.gwd.output().splitlines()
                 if "offered" in ln or "succeeded" in ln][:2]
        expect(len(first) == 2 and "offered" in first[0] and "succeeded" in first[1],
               f"wave 1 (the canary) succeeded before any other offer: {first}")

        up = None
        for _ in range(100):
            up = site.upstream_status(cid)
            if up and up.get("state") == "completed":
                break
            site.gwd.check_alive()
            time.sleep(0.2)
        expect(up is not None and up.get("state") == "completed" and
               up.get("counts", {}).get("succeeded") == N,
               f"status upstream (retained): {up and up.get('state')} {up and up.get('counts')}")

        # -- after completion the image is released: its reference value is in the policy, so
        #    a node on it stays trusted at a fresh attestation outside any campaign --
        imgs = site.ctl_json("ota", "images")["images"]
        expect([i.get("released") for i in imgs if i["digest"] == im.digest[im.v2]] == [True],
               "the completed campaign released v2 (fleetgwctl ota images)")
        expect(site.gwd_lines(r"reference value from the image .*/released/"),
               "fleetgwd reloaded its policy with the released image")
        node = ids[0]
        judged = rf"attestation verdict .*node={node}\b"
        before = len(site.gwd_lines(judged))
        r = site.ctl("attest", node)
        expect(r.returncode == 0, f"fresh challenge to {node} ({r.stderr.strip()})")
        wait_for(lambda: len(site.gwd_lines(judged)) > before, 60,
                 f"{node} to answer the fresh challenge", interval=0.5)
        n = site.verdicts([node])[node]
        expect(n.get("verdict") == "trusted" and n.get("fw_version") == "2.0.0+0",
               f"  re-attested outside the campaign: {n.get('verdict')} on {n.get('fw_version')} "
               f"({n.get('reason')})")

        sim.stop(signal.SIGTERM)
        nodes = sim_summary(sim.output())
        confirmed = [i for i, n in nodes.items() if n.get("state") == "confirmed" and
                     n.get("running", "").startswith("2.0.0")]
        expect(len(confirmed) == N or len(nodes) < N,
               f"fleet-sim: {len(confirmed)} of {len(nodes)} listed nodes confirmed on 2.0.0")

        # -- after completion: downgrade refused, recovery allowed --
        older = im.sign("older-version", "1.5.0", 3)
        rc, ans, _ = site.stage(older, "--class", CLASS)
        expect(rc == 1 and (ans or {}).get("reason") == "downgrade",
               f"1.5.0 after a completed 2.0.0 campaign: {(ans or {}).get('reason')}")
        rc, ans, _ = site.stage(older, "--class", CLASS, "--recovery")
        expect(rc == 0, "the same image is accepted with --recovery")
        m = [ln for ln in site.gwd.output().splitlines() if re.search(r"campaign=c-v2", ln)]
        expect(any("completed" in ln for ln in m), "the journal has the campaign's completion "
               "with CAMPAIGN=c-v2")
        expect(site.gwd.stop() == 0, "fleetgwd stops cleanly")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
