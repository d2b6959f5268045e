"""Gateway OTA when things go wrong (issue 13). One site (real swtpm, brokers, fleetgwd,
fleet-sim nodes with flash files and the real bootloader), one scenario after the other:
 1. canary halt: the canary's new image crashes before it runs (fault boot-fail: the
    bootloader reverts it) -> the canary is `reverted`, the campaign `halted` at wave 1's
    threshold, no node of wave 2 is ever offered the image, the status upstream says halted
    and why; the same with a canary whose image measures wrong (fault wrong-measurement);
 2. an image altered in the store after staging is caught before the next hand-over: the
    campaign fails (image_tampered) and no node gets an offer;
 3. a node that goes silent mid-transfer (offline far beyond its deadline) ends `timed_out`
    at its deadline and the campaign still reaches a final state (its targets selected by a
    tag: exactly the tagged nodes of the class);
 4. abort stops every transfer: after `campaign abort` no chunk is served beyond those
    already requested (one chunk round-trip), every node in progress ends failed/aborted;
 5. fleetgwd SIGKILLed mid-campaign resumes where it was and the campaign completes; a node
    whose power is cut mid-transfer resumes from its offset (the bytes sent again are
    measured and reported)."""

import os
import signal
import sys
import time

from fleetgw_harness import Env, expect, run_main, wait_for
from gateway_ota_common import CLASS, OtaSite, sim_summary


def offered_to(site, ids):
    return [i for i in ids if site.gwd_lines(rf"offered.*node={i}\b")]


def node_states(site, cid):
    return {n["node"]: n for n in site.status(cid, nodes=True).get("nodes", [])}


def ota_stats(site):
    return site.ctl_json("status").get("ota", {})


def main():
    with Env("gateway-ota-faults") as env:
        site = OtaSite(env)
        im = site.images
        site.start()
        rc, ans, err = site.stage(im.v2, "--class", CLASS)
        expect(rc == 0, f"v2 staged ({err.strip()})")
        v2 = im.digest[im.v2]

        # -- 1. canary halt: boot-fail, then wrong-measurement --
        for kind in ("boot-fail", "wrong-measurement"):
            tag = "bf" if kind == "boot-fail" else "wm"
            canary = site.nodes(f"{tag}c-", 1)
            rest = site.nodes(f"{tag}r-", 4)
            sim_c = site.fleet_sim(f"{tag}c-", 1, faults=[f"all:{kind}"])
            sim_r = site.fleet_sim(f"{tag}r-", 4)
            site.wait_trusted(canary + rest)
            cid = site.create("--image", v2, "--id", f"halt-{tag}", "--nodes",
                              ",".join(canary + rest), "--waves", "1,100%",
                              "--step-timeout", "30", "--deadline", "120", "--retries", "0")
            st = site.wait_final(cid)
            ns = node_states(site, cid)
            c = ns.get(canary[0], {})
            expect(st["state"] == "halted" and "wave 1" in st.get("reason", ""),
                   f"{kind}: campaign {st['state']}: {st.get('reason')}")
            expect(c.get("state") in ("reverted", "failed"),
                   f"  the canary is {c.get('state')}: {c.get('reason')}")
            expect(all(ns.get(i, {}).get("state") == "pending" for i in rest) and
                   not offered_to(site, rest),
                   "  the 4 nodes of wave 2 were never offered the image")
            up = None
            for _ in range(100):
                up = site.upstream_status(cid)
                if up and up.get("state") == "halted":
                    break
                time.sleep(0.2)
            expect(up is not None and up.get("state") == "halted" and up.get("reason"),
                   f"  status upstream: {up and up.get('state')}: {up and up.get('reason')}")
            r = site.ctl("campaign", "abort", cid)
            expect(r.returncode == 0, f"  the halted campaign is aborted by the operator "
                   f"({r.stderr.strip()})")
            sim_c.stop(signal.SIGTERM)
            sim_r.stop(signal.SIGTERM)
            summary = sim_summary(sim_r.output())
            expect(all(n.get("running", "").startswith("1.0.0") for n in summary.values()),
                   "  the nodes of wave 2 still run 1.0.0")

        # -- 2. an image altered in the store after staging --
        ids = site.nodes("alt-", 2)
        sim = site.fleet_sim("alt-", 2)
        site.wait_trusted(ids)
        path = os.path.join(site.store_dir, v2 + ".img")
        with open(path, "r+b") as f:
            f.seek(0x200 + 100)
            b = f.read(1)
            f.seek(0x200 + 100)
            f.write(bytes([b[0] ^ 0x40]))
        cid = site.create("--image", v2, "--id", "tampered", "--nodes", ",".join(ids))
        st = site.wait_final(cid)
        expect(st["state"] == "failed" and "tamper" in st.get("reason", ""),
               f"altered in the store: campaign {st['state']}: {st.get('reason')}")
        expect(not offered_to(site, ids), "  no node was offered the altered image")
        with open(path, "r+b") as f:  # put the byte back for the next scenarios
            f.seek(0x200 + 100)
            f.write(b)
        sim.stop(signal.SIGTERM)

        # -- 3. a node that goes silent ends timed_out --
        silent = site.nodes("sil-", 1)
        good = site.nodes("sok-", 2)
        sim_s = site.fleet_sim("sil-", 1, faults=["all:offline=30,3600"])
        sim_g = site.fleet_sim("sok-", 2)
        site.wait_trusted(silent + good)
        # selected by a tag: the other nodes of the class (earlier scenarios) are not targets
        for i in silent + good:
            r = site.ctl("node", "tag", i, "site-b,batch-3")
            expect(r.returncode == 0, f"node {i} tagged ({r.stderr.strip()})")
        cid = site.create("--image", v2, "--id", "silent", "--tags", "site-b",
                          "--waves", "100%", "--deadline", "25", "--step-timeout", "8",
                          "--retries", "1", "--backoff", "1", "--threshold", "50")
        targets = sorted(n["node"] for n in site.status(cid, nodes=True).get("nodes", []))
        expect(targets == sorted(silent + good),
               f"--tags site-b selected exactly the 3 tagged nodes ({len(targets)} targets)")
        st = site.wait_final(cid, timeout=180)
        ns = node_states(site, cid)
        expect(ns.get(silent[0], {}).get("state") == "timed_out",
               f"the silent node ends {ns.get(silent[0], {}).get('state')} "
               f"({ns.get(silent[0], {}).get('reason')})")
        expect(st["state"] in ("completed", "halted") and
               all(ns.get(i, {}).get("state") == "succeeded" for i in good),
               f"the campaign still ends: {st['state']} ({st.get('reason', '')}), the others "
               f"{[ns.get(i, {}).get('state') for i in good]}")
        # the completed campaign made 2.0.0 the class's current image: nodes left on 1.0.0
        # (wave 2 of the halted campaigns) are flagged, the updated ones are not
        nodes = {n["id"]: n for n in site.ctl_json("nodes")["nodes"]}
        expect(nodes[rest[0]].get("outdated") is True and nodes[good[0]].get("outdated") is False
               and nodes[good[0]].get("class_current") == "2.0.0+0",
               f"nodes on 1.0.0 flagged outdated, updated ones not (class current "
               f"{nodes[good[0]].get('class_current')})")
        r = site.ctl("node", "show", rest[0])
        expect("older than its class's current image 2.0.0+0" in r.stdout,
               "fleetgwctl node show says so")
        sim_s.stop(signal.SIGKILL)
        sim_g.stop(signal.SIGTERM)

        # -- 4. abort stops every transfer --
        slow = site.nodes("slow-", 3)
        sim = site.fleet_sim("slow-", 3, faults=["all:slow=400"])
        site.wait_trusted(slow)
        cid = site.create("--image", v2, "--id", "abort", "--nodes", ",".join(slow),
                          "--waves", "100%", "--max-parallel", "3")
        wait_for(lambda: ota_stats(site).get("chunks", 0) >= 6, 60, "a few chunks served")
        r = site.ctl("campaign", "abort", "abort")
        at_abort = ota_stats(site)["chunks"]
        time.sleep(3)
        after = ota_stats(site)["chunks"]
        st = site.status(cid, nodes=True)
        expect(r.returncode == 0 and st["state"] == "aborted",
               f"abort: campaign {st['state']} ({r.stderr.strip()})")
        expect(after - at_abort <= len(slow),
               f"  chunks served after the abort: {after - at_abort} (at most one round-trip "
               f"per node: {len(slow)})")
        expect(all(n["state"] == "failed" and "abort" in n.get("reason", "")
                   for n in st.get("nodes", [])),
               f"  every node failed/aborted: {[(n['state'], n.get('reason')) for n in st.get('nodes', [])]}")
        sim.stop(signal.SIGTERM)

        # -- 5. SIGKILL fleetgwd mid-campaign; a node's power cut mid-transfer --
        ids = site.nodes("res-", 6)
        sim = site.fleet_sim("res-", 6, faults=["0:power-cut=50", "1-5:slow=100"])
        site.wait_trusted(ids)
        before = ota_stats(site)
        cid = site.create("--image", v2, "--id", "resume", "--nodes", ",".join(ids),
                          "--waves", "100%", "--max-parallel", "6", "--step-timeout", "20")
        wait_for(lambda: ota_stats(site).get("chunks", 0) - before.get("chunks", 0) >= 20, 60,
                 "the transfer under way")
        site.gwd.stop(signal.SIGKILL)  # the campaign's state is only in its database now
        site.start()
        st = site.wait_final(cid, timeout=300)
        ns = node_states(site, cid)
        expect(st["state"] == "completed" and
               all(ns.get(i, {}).get("state") == "succeeded" for i in ids),
               f"after SIGKILL and restart the campaign {st['state']} "
               f"({[ns.get(i, {}).get('state') for i in ids]})")
        sim.stop(signal.SIGTERM)
        summary = sim_summary(sim.output())
        resent = {i: n.get("bytes_resent") for i, n in summary.items()}
        cut = [n for n in summary.values() if n.get("power_cuts", "0") != "0"]
        expect(len(cut) == 1 and cut[0].get("state") == "confirmed",
               f"the node whose power was cut resumed and confirmed "
               f"(bytes re-sent per node as fleet-sim counted them: {resent})")
        stats = ota_stats(site)
        print(f"gateway after restart: {stats.get('chunks')} chunks, {stats.get('bytes_sent')} "
              f"bytes sent, {stats.get('bytes_resent')} bytes sent again", flush=True)
        expect(site.gwd.stop() == 0, "fleetgwd stops cleanly")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
