"""A fleet-sim node takes a firmware update end to end (issue 12), through the real mosquitto,
with images signed now by fleetgw-tool, the node's own flash file and the real bootloader
core at every reset; the gateway's side is the test-only fleetgw-ota-testserver.

Proves:
 - the factory image v1 boots from the node's flash file and its token measures v1;
 - refused with the protocol's reason code, node still on v1 (token) and not rebooted: an
   image too big for the slot (ack, 1 no-space), tampered (status failed, 2 bad-digest),
   signed by an unknown key (3 bad-signature), newer version with an older security counter
   (4 downgrade), the running version again (ack, 4 downgrade);
 - v1 -> v2: offer, chunks, verify, staged, reset through the bootloader (install in test
   mode), status testing, token measuring v2 (verified with the node's IAK), confirm,
   status confirmed; a new offer during test mode is refused busy (the slot holds v1);
 - a power cycle (new fleet-sim process on the same flash files) still runs v2, confirmed."""

import signal
import sys

from fleetgw_harness import Env, expect
from ota_common import Server, Site, stop, transfer


def main():
    with Env("node-ota") as env:
        site = Site(env)
        im = site.images
        d1, d2 = im.digest[im.v1], im.digest[im.v2]
        (node,) = site.nodes("ota-", 1)
        srv = Server(site, node, "otaserver")
        sim = site.fleet_sim("ota-", 1)
        srv.wait(r"^node-status state=1 version=1\.0\.0\+0", what="v1 node-status")
        ok, meas, ver = srv.attest()
        expect(ok and meas == d1 and ver == "1.0.0+0",
               f"factory image booted from the flash file; token verified, measures v1 ({ver})")

        for camp, image, want in (("big", im.big, ("refused", 1)),
                                  ("tampered", im.tampered, ("failed", 2)),
                                  ("foreign", im.foreign, ("failed", 3)),
                                  ("older", im.older, ("failed", 4)),
                                  ("same", im.v1, ("refused", 4))):
            got = transfer(srv, camp, image)
            expect(got == want, f"{camp} image: {got[0]} with reason {got[1]} (want {want})")
            ok, meas, _ = srv.attest()
            expect(ok and meas == d1, f"after the {camp} image the node still runs v1")
        expect(sim.output().count("boot: starting image") == 1,
               "no refused image caused a reset")

        got = transfer(srv, "v2", im.v2)
        expect(got == ("staged", 0), f"v2 downloaded, verified and staged: {got}")
        srv.wait(r"^node-status state=1 version=2\.0\.0\+0", what="v2 node-status")
        srv.wait(r"^status campaign=v2 state=testing", what="status testing after the reset")
        out = sim.output()
        expect("boot: installing image 2.0.0+0 in test mode" in out and
               "boot: starting image 2.0.0+0 (security counter 3, test mode)" in out,
               "the bootloader installed v2 in test mode")
        ok, meas, ver = srv.attest()
        expect(ok and meas == d2 and ver == "2.0.0+0", "token after the reset measures v2")
        got = transfer(srv, "during-test", im.v2)
        expect(got == ("refused", 7), f"an offer during test mode is refused busy: {got}")
        srv.cmd("confirm v2")
        srv.wait(r"^status campaign=v2 state=confirmed offset=\d+ reason=0",
                 what="status confirmed")

        out = stop(sim, signal.SIGTERM)
        expect("ota state=confirmed" in out and "running=2.0.0+0 (confirmed)" in out,
               "fleet-sim reports the node confirmed on 2.0.0")
        sim = site.fleet_sim("ota-", 1)
        srv.wait(r"^node-status state=1 version=2\.0\.0\+0", what="v2 node-status after restart")
        ok, meas, _ = srv.attest()
        expect(ok and meas == d2, "after a power cycle the node still runs v2")
        expect("boot: starting image 2.0.0+0 (security counter 3, confirmed)" in sim.output(),
               "the bootloader starts v2 as confirmed")
        stop(sim)
    return 0


if __name__ == "__main__":
    sys.exit(main())
