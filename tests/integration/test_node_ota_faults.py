"""fleet-sim's OTA fault switches (docs/agent.md, "OTA in fleet-sim") and power cuts at every
step of an update (issue 12), with the real broker, the real bootloader core on each node's
flash file, images signed now by fleetgw-tool, and the test-only fleetgw-ota-testserver.

One fleet-sim hosts a node group per fault (--fault I:KIND), each with its own server:
 - boot-fail: the new image crashes in test mode, the bootloader reverts: status reverted
   (9 boot-failed), token measures v1;
 - wrong-measurement: the new image boots (testing) but its token's measurement is neither
   v2's nor v1's (v2's with a flipped bit);
 - stall=50: chunk requests stop past 50 %; a new offer brings the node back, it steers the
   server to where it stopped (no byte written twice), staged; re-sent bytes reported;
 - power-cut=50: the node loses power past 50 % (restart from its flash and record): it
   reports downloading at its persisted offset (rounded down to the erase unit) and resumes;
 - offline=40,2: the node drops off the broker for 2 s, comes back, reports its offset and
   resumes;
 - slow=40: every chunk request is held 40 ms; the transfer still completes;
 - refuse=no-space: the offer is refused with reason 1;
 - swap-cut=1/25/60: the power is cut after that many flash operations of the swap; the
   bootloader resumes the swap at the next power-up and v2 runs in test mode.
Then a single node under SIGKILL (the whole process loses power) at each step: mid-transfer
(restart resumes from the persisted offset), in test mode before confirm (the bootloader
reverts: v1, status reverted 9), right after the install request (the next power-up
installs: v2 in test mode, then confirmed). After every cut the node boots v1 or v2 and its
next token says which."""

import re
import signal
import sys
import time

from fleetgw_harness import Env, expect
from ota_common import Server, Site, stop, transfer

ERASE = 4096


def flip(d):
    return "%02x" % (int(d[:2], 16) ^ 1) + d[2:]


def wait_staged_then_testing(srv, camp):
    srv.wait(r"^status campaign=%s state=staged" % camp, what=f"{camp} staged")
    srv.wait(r"^status campaign=%s state=testing" % camp, what=f"{camp} testing after reset")


def fault_groups(env, site):
    im = site.images
    d1, d2 = im.digest[im.v1], im.digest[im.v2]
    size = len(open(im.v2, "rb").read())
    kinds = ["boot-fail", "wrong-measurement", "stall=50", "power-cut=50", "offline=40,2",
             "slow=40", "refuse=no-space", "swap-cut=1", "swap-cut=25", "swap-cut=60"]
    ids = site.nodes("flt-", len(kinds))
    srv = {k: Server(site, ids[i], f"srv-{k.split('=')[0]}-{i}") for i, k in enumerate(kinds)}
    sim = site.fleet_sim("flt-", len(kinds), faults=[f"{i}:{k}" for i, k in enumerate(kinds)])
    for k in kinds:
        srv[k].wait(r"^node-status state=1 version=1\.0\.0", what=f"{k}: node up on v1")

    # offers all at once: the groups run side by side in one fleet-sim process
    t_slow = time.monotonic()
    for k in kinds:
        srv[k].cmd(f"offer c-{k.split('=')[0]} {im.v2} 1024")

    s = srv["refuse=no-space"]
    a = s.wait(r"^ack campaign=c-refuse accepted=(\d) reason=(\d+)")
    expect(a.groups() == ("0", "1"), "refuse=no-space: offer refused with reason 1 (no-space)")

    s = srv["boot-fail"]
    s.wait(r"^status campaign=c-boot-fail state=staged")
    st = s.wait(r"^status campaign=c-boot-fail state=(\w+) offset=\d+ reason=(\d+)",
                what="boot-fail: status after the reset")
    expect(st.groups() == ("reverted", "9"),
           f"boot-fail: the bootloader reverted, status {st.group(1)} reason {st.group(2)}")
    ok, meas, ver = s.attest()
    expect(ok and meas == d1, f"boot-fail: the token measures v1 ({ver})")

    s = srv["wrong-measurement"]
    wait_staged_then_testing(s, "c-wrong-measurement")
    ok, meas, ver = s.attest()
    expect(ok and meas == flip(d2) and meas not in (d1, d2),
           f"wrong-measurement: v2 ({ver}) boots but its token shows a wrong measurement")

    s = srv["stall=50"]
    reqs = []
    deadline_chunks = size // 2
    m = s.wait(r"^request offset=(\d+)", what="stall: first request")
    reqs.append(int(m.group(1)))
    while reqs[-1] + 1024 < deadline_chunks:
        reqs.append(int(s.wait(r"^request offset=(\d+)").group(1)))
    time.sleep(2)  # the node stalled: nothing more comes without a new offer
    later = s.seen(r"^request|^status")
    expect(len(later) <= 1, f"stall=50: requests stop near 50 % ({reqs[-1]} of {size})")
    stalled_at = reqs[-1] + (1024 if later else 0)
    s.cmd(f"offer c-stall {im.v2} 1024")
    s.wait(r"^ack campaign=c-stall accepted=1")
    r = s.wait(r"^request offset=(\d+)", what="stall: the node steers after the new offer")
    expect(int(r.group(1)) >= stalled_at - 1024 and int(r.group(1)) > 0,
           f"stall=50: a new offer resumes at {r.group(1)}, not from 0")
    wait_staged_then_testing(s, "c-stall")
    sent, resent, chunks = s.stats()
    expect(sent >= size and resent <= 1024,
           f"stall=50: bytes sent {sent} for {size}, re-sent {resent} (the first chunk only)")

    s = srv["power-cut=50"]
    st = s.wait(r"^status campaign=c-power-cut state=downloading offset=(\d+)",
                what="power-cut: status after the power came back")
    off = int(st.group(1))
    expect(off > 0 and off % ERASE == 0 and off <= size // 2 + 1024,
           f"power-cut=50: restarted from its persisted offset {off} (erase-unit aligned)")
    wait_staged_then_testing(s, "c-power-cut")
    ok, meas, _ = s.attest()
    expect(ok and meas == d2, "power-cut=50: resumed, installed, token measures v2")
    sent, resent, _ = s.stats()
    expect(resent > 0, f"power-cut=50: bytes re-sent reported ({resent} of {sent})")

    s = srv["offline=40,2"]
    st = s.wait(r"^status campaign=c-offline state=downloading offset=(\d+)",
                what="offline: status when the node is back")
    off = int(st.group(1))
    expect(off >= size * 40 // 100,
           f"offline=40,2: back after 2 s at offset {off}, resumes from there")
    wait_staged_then_testing(s, "c-offline")

    s = srv["slow=40"]
    wait_staged_then_testing(s, "c-slow")
    _, _, chunks = s.stats()
    took = time.monotonic() - t_slow
    expect(took >= chunks * 0.040 * 0.9,
           f"slow=40: {chunks} chunk requests held 40 ms each, transfer took {took:.1f} s")

    for n in (1, 25, 60):
        s = srv[f"swap-cut={n}"]
        wait_staged_then_testing(s, "c-swap-cut")
        ok, meas, _ = s.attest()
        expect(ok and meas == d2, f"swap-cut={n}: power cut during the swap, v2 runs in test mode")
    out = sim.output()
    cuts = len(re.findall(r"power cut during the boot \(swap\)", out))
    resumed = len(re.findall(r"boot: resuming interrupted install", out))
    expect(cuts == 3 and resumed >= 2,
           f"the bootloader saw {cuts} cuts in a swap and resumed {resumed} interrupted swap(s)")
    stop(sim)


def power_cuts(env, site):
    im = site.images
    d1, d2 = im.digest[im.v1], im.digest[im.v2]
    (node,) = site.nodes("cut-", 1)
    s = Server(site, node, "srv-cut")
    sim = site.fleet_sim("cut-", 1)
    s.wait(r"^node-status state=1 version=1\.0\.0")

    # mid-transfer
    s.cmd(f"offer m1 {im.v2} 1024")
    s.wait(r"^request offset=(2[0-9]{4})", what="the transfer past 20000 bytes")
    stop(sim, signal.SIGKILL)
    sim = site.fleet_sim("cut-", 1)
    s.wait(r"^node-status state=1 version=1\.0\.0", what="v1 after the cut mid-transfer")
    st = s.wait(r"^status campaign=m1 state=downloading offset=(\d+)")
    ok, meas, _ = s.attest()
    expect(ok and meas == d1 and int(st.group(1)) >= 16384,
           f"cut mid-transfer: node boots v1 (token), resumes at {st.group(1)}")
    wait_staged_then_testing(s, "m1")
    ok, meas, _ = s.attest()
    expect(ok and meas == d2, "after the resumed transfer v2 runs in test mode (token)")

    # in test mode, before the confirm
    stop(sim, signal.SIGKILL)
    sim = site.fleet_sim("cut-", 1)
    st = s.wait(r"^status campaign=m1 state=(\w+) offset=\d+ reason=(\d+)")
    ok, meas, _ = s.attest()
    expect(st.groups() == ("reverted", "9") and ok and meas == d1,
           "cut in test mode before confirm: the bootloader reverted, status reverted (9), "
           "token measures v1")
    expect("boot: image was not confirmed, reverting to the previous image" in sim.output(),
           "the bootloader says it reverted")

    # right after the install request (status staged), before the node's own reset
    s.cmd(f"offer m2 {im.v2} 1024")
    s.wait(r"^status campaign=m2 state=staged")
    stop(sim, signal.SIGKILL)
    sim = site.fleet_sim("cut-", 1)
    st = s.wait(r"^status campaign=m2 state=(\w+)")
    ok, meas, _ = s.attest()
    expect(st.group(1) == "testing" and ok and meas == d2,
           "cut after the install request: the next power-up installs v2 in test mode (token)")
    s.cmd("confirm m2")
    s.wait(r"^status campaign=m2 state=confirmed")
    stop(sim, signal.SIGKILL)
    sim = site.fleet_sim("cut-", 1)
    s.wait(r"^node-status state=1 version=2\.0\.0", what="v2 up after the cut")
    ok, meas, _ = s.attest()
    expect(ok and meas == d2, "cut after the confirm: v2 stays (token)")
    stop(sim)


def main():
    with Env("node-ota-faults") as env:
        site = Site(env)
        fault_groups(env, site)
        power_cuts(env, site)
    return 0


if __name__ == "__main__":
    sys.exit(main())
