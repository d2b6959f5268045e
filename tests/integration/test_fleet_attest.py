"""fleet-sim nodes attest to fleetgwd with the real protocol and real keys (issue 5/6).

swtpm + tpm2-abrmd hold the gateway key (fleetgwctl identity init), edge + cloud mosquitto,
fleetgwd with the attestation gate on and reference values taken by fleetgw-tool from the
firmware image the build signed (build/firmware/fleet-agent-*.signed.bin). fleet-sim nodes
each have their own P-256 IAK (generated on first use, kept 0600 in a key dir; the node id is
derived from it as the gateway derives it), are enrolled with `fleetgwctl node add --pub`, and
answer the gateway's challenge with a PSA token whose software component is measured from
that same image (fleet-sim --image). Proves:
 - 20 enrolled nodes all become trusted (fw version from the reference value), and every one
   of their telemetry messages arrives upstream, mapped to <prefix>/nodes/<id>/telemetry, in
   order per node, counts exact; not one was dropped as not yet attested (the node sends its
   evidence before its telemetry);
 - a node reporting a flipped measurement, one signing with another key, one answering with
   an old nonce are quarantined with the matching reason; an unknown key (never enrolled) is
   refused; none of their telemetry reaches the cloud, and the drops are counted exactly;
 - the IAK files are mode 0600 and hold the only copy of the private key (fleet-sim's output
   has no key material), and a second export gives the same node ids (keys are reused)."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "demo"))

import fleet_scenario  # noqa: E402
from fleetgw_harness import Env, expect, program  # noqa: E402


def main():
    with Env("fleet-attest") as env:
        res = fleet_scenario.run(env, good=20, count=25, rate=25.0)
        for ok, line in fleet_scenario.judge(res):
            expect(ok, line)
        fleet = res["groups"]
        for g in fleet:
            expect("PRIVATE KEY" not in g["output"] and "BEGIN" not in g["output"],
                   f"fleet-sim {g['label']} printed no key material")
        key_dir = env.path("iak")
        files = sorted(os.listdir(key_dir))
        modes = {f: os.stat(os.path.join(key_dir, f)).st_mode & 0o777 for f in files}
        expect(len(files) == sum(g["n"] for g in fleet) and set(modes.values()) == {0o600},
               f"{len(files)} IAK files, all mode 0600")
        os.makedirs(env.path("again"))
        r = env.run([program("fleet-sim"), "--iak-dir", key_dir, "--nodes", "20",
                     "--id-prefix", "node-", "--export-pub", env.path("again")], check=True)
        again = [line.split()[1] for line in r.stdout.splitlines()]
        expect(again == fleet[0]["ids"], "a second run reuses the stored keys (same node ids)")
        c = res["spool"]["counters"]
        expect(c.get("attest_unknown_node", 0) == 0 and c.get("bad_topic", 0) == 0,
               f"no stray evidence or topics: {c}")
        rc = res["site"].gwd.stop()
        expect(rc == 0, "fleetgwd stops cleanly")
    return 0


if __name__ == "__main__":
    sys.exit(main())
