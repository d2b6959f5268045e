"""The OTA part of `make demo` (tests/demo/demo.py): fleetgwd updates a fleet-sim fleet.

Real components, as in tests/integration/test_gateway_ota.py: a fresh gateway site
(gateway_ota_common.OtaSite: TPM identity, cloud and edge brokers, fleetgwd with the
attestation gate and OTA on, a device-class file "sim"), fleet-sim nodes with flash files
and the real bootloader core (--boot-key). fleet-sim images are signed now with the site's
signing key by fleetgw-tool (ota_common.Images): v1 is the factory image, v2 the update.
(The build's Cortex-M image, build/firmware/fleet-agent-*.signed.bin, is for the QEMU node,
not for fleet-sim, whose slot holds a test-time image.)

The story: a tampered copy and an image signed by an unknown key are refused at
`fleetgwctl ota stage` with their reasons; v2 is staged; a campaign in waves 1,10%,100% runs
with its progress narrated from `fleetgwctl --json campaign status` once a second; every
updated node is trusted again on firmware 2.0.0+0 (its post-reboot attestation); then a
second, small campaign whose canary's new image does not boot (fleet-sim --fault
all:boot-fail) halts at wave 1 and the other nodes are never offered the image.

Beside it (QemuAct, a thread): one QEMU mps2-an385 node with this build's Cortex-M firmware
(build/firmware: the factory image 0.1.0 and update/ 0.2.0, both built in this tree) is
made in a factory step, enrolled in class qemu-an385 and trusted on 0.1.0; once the main
story has staged 0.2.0 for it, its own campaign hands the image over the serial link, the
node resets, is powered up again, its bootloader installs 0.2.0 in test mode, and fleetgwd
re-attests it on 0.2.0 and confirms it. Its class offers chunks of 1 KiB (the agent's
receive buffer; the fleet-sim nodes get 2 KiB) and the site keeps a nonce for 120 s (longer
than a step).

run() returns [(ok, line)] checks and a dict of facts for the summary table."""

import os
import signal
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
INTEGRATION = os.path.join(os.path.dirname(HERE), "integration")
if INTEGRATION not in sys.path:
    sys.path.insert(0, INTEGRATION)

from fleetgw_harness import HarnessError, program, wait_for  # noqa: E402
from gateway_ota_common import CLASS, OtaSite, signer_id  # noqa: E402
from qemu_common import GatewayNode, update_image  # noqa: E402
from test_qemu_node import firmware  # noqa: E402

FINAL = ("completed", "halted", "aborted", "failed")
# The QEMU node: each campaign step may take QEMU_STEP_S (an emulated Cortex-M3 behind a
# serial link on a loaded host), its whole update QEMU_DEADLINE_S; the site's nonce lifetime
# is longer than a step, so a challenge lost between two of the agent's broker sessions is
# sent again before the first would expire (as in test_qemu_gateway_ota.py). Its agent's
# MQTT receive buffer is 2 KiB: its device class has a chunk_size of 1 KiB.
QEMU_STEP_S = 90
QEMU_DEADLINE_S = 900
NONCE_TTL_S = 120


class QemuAct(threading.Thread):
    """The QEMU Cortex-M3 node's part of the story, run beside the fleet-sim campaigns: the
    factory step, enrolment in class qemu-an385 and the v1 boot (trusted by the gate), then,
    once the main story has staged the build's 0.2.0 (self.staged), its own campaign: the
    image over the UART, the node's reset and power-up, the bootloader installing 0.2.0 in
    test mode, re-attestation on 0.2.0 and confirmation. Its sentences are kept in
    self.lines (printed after it ends: the main story's progress line owns the terminal)."""

    def __init__(self, env, site, fw, update):
        super().__init__(daemon=True)
        self.env, self.site, self.fw = env, site, fw
        self.update_path, self.info2 = update
        self.staged = threading.Event()
        self.lines, self.error, self.facts = [], None, {}
        self.node = None

    def check(self, ok, line):
        self.lines.append((bool(ok), line))
        if not ok:
            raise AssertionError(line)

    def run(self):
        try:
            self._run()
        except Exception as e:  # noqa: BLE001 - reported by the main story
            self.error = e

    def _run(self):
        site, info = self.site, self.fw[3]
        t = time.monotonic()
        node = self.node = GatewayNode(self.env, self.fw, self.env.path("qemu-node"),
                                       check=lambda ok, line: None if ok else self.check(ok, line))
        node_id = node.enrol(site)
        node.boot(site, "v1")
        node.wait_trusted(site, info["version"])
        self.check(True, f"QEMU node {node_id[:12]}... (mps2-an385, serial link): enrolled in "
                   f"class {GatewayNode.CLASS}, trusted on {info['version']} "
                   f"({time.monotonic() - t:.0f} s)")
        if not self.staged.wait(timeout=QEMU_DEADLINE_S):
            raise HarnessError("the QEMU node's update was never staged")
        v2, d2 = self.info2["version"], self.info2["sha256_tlv"]
        cid = site.create("--image", d2[:16], "--id", "demo-qemu", "--nodes", node_id,
                          "--step-timeout", str(QEMU_STEP_S), "--deadline",
                          str(QEMU_DEADLINE_S))
        res = node.update(site, cid, self.update_path, v2, QEMU_STEP_S, QEMU_DEADLINE_S, FINAL)
        st, full = res["status"], res["full"]
        ok = st["state"] == "completed" and full["counts"].get("succeeded") == 1
        self.check(ok, f"campaign {cid} {st['state']} in {res['wall']:.0f} s: "
                   f"{os.path.getsize(self.update_path)} bytes over the UART in "
                   f"{res['staged_s']:.0f} s, the node reset, the bootloader installed {v2} "
                   "in test mode")
        n = site.node_json(node_id)
        self.check(n["verdict"] == "trusted" and n["fw_version"] == v2,
                   f"  the QEMU node re-attested: {n['verdict']} on {n['fw_version']}, "
                   "then confirmed")
        self.facts = {"cid": cid, "state": st["state"], "secs": res["wall"], "v2": v2,
                      "fw": n["fw_version"]}


def qemu_parts():
    """(firmware tuple, (update path, info), signer public key PEM) of this build's Cortex-M
    images, or None: firmware() and update_image() say why."""
    fw = firmware()
    if fw is None:
        return None
    upd = update_image(fw[2])
    if upd is None:
        return None
    pub = os.path.join(os.path.dirname(fw[2]), "signing-key.pub.pem")
    if not os.path.exists(pub) or signer_id(pub) != fw[4]:
        print(f"FAIL: {pub} missing or not the key the build signs with")
        return None
    return fw, upd, pub


def progress_text(st):
    """One line of a campaign's state: its wave and, per wave, done/size."""
    w = st.get("wave", {})
    parts = []
    for i, wave in enumerate(st.get("waves", []), 1):
        c = wave.get("counts", {})
        size = sum(c.values()) or wave.get("size", 0)
        parts.append(f"w{i} {c.get('succeeded', 0)}/{size}")
    c = st.get("counts", {})
    busy = sum(c.get(k, 0) for k in ("offered", "downloading", "staged", "testing",
                                      "confirming", "rebooting"))
    return (f"{st.get('state', '?'):9} wave {w.get('current', '?')}/{w.get('count', '?')}  "
            + "  ".join(parts) + f"  (in progress {busy})")


def watch(site, cid, say, tty, timeout=600):
    """Narrates the campaign once a second until it is final; returns (status, seconds)."""
    t0 = time.monotonic()
    shown, printed = None, 0
    deadline = t0 + timeout
    while True:
        site.gwd.check_alive()
        st = site.status(cid)
        text = progress_text(st)
        now = time.monotonic() - t0
        final = st["state"] in FINAL
        if tty:
            sys.stdout.write(f"\r    {now:4.0f}s {text}\033[K")
            sys.stdout.flush()
        elif text != shown and (printed < 6 or final):  # bounded: a few lines, and the end
            say(f"    {now:4.0f}s {text}")
            shown = text
            printed += 1
        if final:
            if tty:
                sys.stdout.write("\n")
            return st, now
        if time.monotonic() > deadline:
            raise HarnessError(f"campaign {cid} not final after {timeout} s: {text}")
        time.sleep(1)


def run(env, n, say, tty=False):
    checks, facts = [], {}

    def check(ok, line):
        checks.append((bool(ok), line))
        say(f"  {'ok ' if ok else 'BAD'} {line}")
        return ok

    parts = qemu_parts()
    if parts is None:
        check(False, "the QEMU node: this build's Cortex-M firmware is missing (see above)")
        return checks, facts
    fw, upd, qemu_pub = parts
    site = OtaSite(env, extra_signers=(qemu_pub,),
                   extra_classes=(GatewayNode.device_class(fw[4]),), extra_refs=(fw[2],))
    im = site.images
    site.start(nonce_ttl_s=NONCE_TTL_S)
    facts["site"] = site
    say(f"OTA: a second gateway site; fleet-sim images signed now with the site's key "
        f"(v1 factory, v2 update), device class '{CLASS}'; one QEMU Cortex-M3 node with this "
        f"build's firmware {fw[3]['version']}, class '{GatewayNode.CLASS}'")
    qemu = facts["qemu"] = QemuAct(env, site, fw, upd)
    qemu.start()
    ids = site.nodes("ota-", n)
    sims = [site.fleet_sim("ota-", n)]
    t = time.monotonic()
    site.wait_trusted(ids)
    check(True, f"{n} fleet-sim node(s) with flash files and the real bootloader: trusted on "
          f"v1 ({time.monotonic() - t:.1f} s)")

    # -- staging: a tampered copy and an unknown signer are refused, v2 is staged --
    third = env.path("unknown.pem")
    env.run([program("fleetgw-tool"), "key", "gen", "-o", third, "--pub",
             env.path("unknown.pub.pem")], check=True)
    unknown = im.sign("unknown-signer", "2.0.0", 3, key=third)
    before = site.store_listing()
    for label, path, want in (("a tampered copy of an image", im.tampered, "tampered"),
                              ("an image signed by an unknown key", unknown,
                               "unknown_signer")):
        rc, ans, err = site.stage(path, "--class", CLASS)
        got = (ans or {}).get("reason")
        why = ((ans or {}).get("error") or err).strip()
        check(rc == 1 and got == want and site.store_listing() == before,
              f"ota stage {label}: refused, {got}: {why}")
    rc, ans, err = site.stage(im.v2, "--class", CLASS)
    v2 = im.digest[im.v2]
    check(rc == 0 and ans and ans["image"]["digest"] == v2,
          f"ota stage v2: stored as {v2[:16]}... (version "
          f"{ans and ans['image'].get('version')}, class {ans and ans['image'].get('class')})"
          + ("" if rc == 0 else f" -- {err.strip()}"))
    rc, ans, err = site.stage(upd[0], "--class", GatewayNode.CLASS)
    check(rc == 0 and ans and ans["image"]["digest"] == upd[1]["sha256_tlv"],
          f"ota stage this build's Cortex-M image {upd[1]['version']} for the QEMU node: "
          f"stored as {upd[1]['sha256_tlv'][:16]}... (class {GatewayNode.CLASS})"
          + ("" if rc == 0 else f" -- {(ans or {}).get('error', err).strip()}"))
    qemu.staged.set()
    facts["staged"] = (2, rc == 0)

    # -- the 3-wave campaign --
    cid = site.create("--image", v2[:12], "--id", "demo-v2", "--waves", "1,10%,100%",
                      "--max-parallel", "10", "--deadline", "300", "--step-timeout", "60")
    say(f"  campaign {cid}: fleetgwctl campaign create --image {v2[:12]} --waves 1,10%,100%"
        " --max-parallel 10")
    st, secs = watch(site, cid, say, tty)
    counts = st.get("counts", {})
    sizes = [w.get("size") for w in st.get("waves", [])]
    check(st["state"] == "completed" and counts.get("succeeded") == n,
          f"campaign {cid} {st['state']} in {secs:.0f} s: {counts.get('succeeded', 0)}/{n} "
          f"succeeded, waves of {sizes}")
    v = site.verdicts(ids)
    on_v2 = [i for i, x in v.items() if x.get("verdict") == "trusted" and
             x.get("fw_version") == "2.0.0+0"]
    check(len(on_v2) == n, f"fleetgwctl nodes: {len(on_v2)}/{n} re-attested after the reboot: "
          "trusted, firmware 2.0.0+0")
    facts["campaign"] = (cid, st["state"], counts.get("succeeded", 0), n, secs)
    facts["on_v2"] = (len(on_v2), n)

    # -- the halt path: a canary whose new image does not come back --
    canary = site.nodes("canary-", 1)
    others = site.nodes("later-", 2)
    sims.append(site.fleet_sim("canary-", 1, faults=["all:boot-fail"]))
    sims.append(site.fleet_sim("later-", 2))
    site.wait_trusted(canary + others)
    cid2 = site.create("--image", v2[:12], "--id", "demo-canary", "--nodes",
                       ",".join(canary + others), "--waves", "1,100%", "--step-timeout", "30",
                       "--deadline", "120", "--retries", "0")
    say(f"  campaign {cid2}: 1 canary whose v2 does not boot (fleet-sim --fault "
        "all:boot-fail), then 2 more nodes")
    st2, secs2 = watch(site, cid2, say, tty)
    full = site.status(cid2, nodes=True)
    ns = {x["node"]: x for x in full.get("nodes", [])}
    c = ns.get(canary[0], {})
    untouched = all(ns.get(i, {}).get("state") == "pending" for i in others)
    check(st2["state"] == "halted" and c.get("state") in ("reverted", "failed") and untouched,
          f"campaign {cid2} {st2['state']} in {secs2:.0f} s: {st2.get('reason', '')}")
    check(untouched, f"  the canary is {c.get('state')} ({c.get('reason')}); the other "
          f"{len(others)} node(s) were never offered the image")
    v = site.verdicts(canary + others)
    v1 = [i for i, x in v.items() if x.get("verdict") == "trusted" and
          x.get("fw_version", "").startswith("1.0.0")]
    check(len(v1) == 3, f"  all 3 still trusted on firmware 1.0.0 ({len(v1)}/3)")
    r = site.ctl("campaign", "abort", cid2)
    said = (r.stdout + r.stderr).strip().splitlines()
    check(r.returncode == 0, f"  the operator aborts the halted campaign "
          f"(fleetgwctl: {said[-1] if said else 'no answer'})")
    facts["halt"] = (cid2, st2["state"], c.get("state"), secs2)
    facts["sims"] = sims

    # -- the QEMU node's campaign, run beside the others: wait for its end --
    if qemu.is_alive():
        say("  waiting for the QEMU node's update (campaign demo-qemu, over its serial link)")
    end = time.monotonic() + 2 * QEMU_DEADLINE_S
    while qemu.is_alive() and time.monotonic() < end:
        site.gwd.check_alive()
        qemu.join(1)
    for ok, line in qemu.lines:
        check(ok, line)
    if qemu.is_alive() or (qemu.error is not None and
                           not isinstance(qemu.error, AssertionError)):  # that one is in lines
        check(False, f"the QEMU node: {qemu.error or 'its update did not end'}")
    return checks, facts


def stop(facts):
    for p in facts.get("sims", []):
        p.stop(signal.SIGTERM)
    qemu = facts.get("qemu")
    if qemu is not None and qemu.node is not None:
        qemu.node.stop()
    site = facts.get("site")
    if site is not None and site.gwd is not None:
        site.gwd.stop()


def wait_quiet(site, timeout=30):
    """The control socket answers (used by --keep before printing how to explore)."""
    wait_for(lambda: site.ctl("status").returncode == 0, timeout, "fleetgwd to answer")
