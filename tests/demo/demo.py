"""make demo: the gateway's main job on loopback, then a plain-words report of what happened.

    /usr/bin/python3 tests/demo/demo.py BUILD_DIR [--nodes N] [--count K | --duration S]
                                                  [--rate R] [--quick] [--keep]

Part 1, attestation and relay (tests/demo/fleet_scenario.py): starts swtpm + tpm2-abrmd,
makes the gateway identity in the TPM (fleetgwctl identity init + a CSR signed by a
throwaway cloud CA), a cloud broker (mutual TLS) and an edge broker (TLS for the nodes, unix
socket for fleetgwd), fleetgwd with a generated configuration and the attestation gate on
(reference values from the signed firmware image of this build), enrols N simulated nodes
plus three bad ones (flipped measurement, forged signature, replayed nonce) and runs one node
with an unknown key; every node sends K telemetry messages. It prints the verdicts
(fleetgwctl nodes), what a cloud-side subscriber received per node, the drops and the spool.

Then a cloud outage (tests/demo/outage.py): the trusted nodes send again, the cloud broker is
stopped for a few seconds under that load and started again; the spool's depth is shown
rising and draining, and a persistent cloud subscriber counts every message (none lost).

Part 2, OTA (tests/demo/ota_story.py): a second gateway site with OTA on and N fleet-sim
nodes with flash files; a tampered image and one signed by an unknown key are refused at
staging, v2 is staged and rolled out in waves 1,10%,100% (progress once a second), every
node re-attests on 2.0.0+0; a second campaign whose canary's image does not boot halts.
Beside them a QEMU Cortex-M3 node with this build's firmware is updated 0.1.0 -> 0.2.0 by
its own campaign over its serial link and re-attests on 0.2.0.

Then a summary table; the exit code is 0 only if every check held. Everything runs in
temporary directories and is torn down at the end (FLEETGW_KEEP_TMP=1 keeps the
directories). --keep leaves everything running until Ctrl-C or SIGTERM and prints how to
explore it. --quick is the short form `make check` runs (2 nodes, 3 messages each).

--break-good-nodes makes the "good" nodes report a wrong measurement: the demo must then
fail (tests/integration/test_demo.py checks that it does)."""

import argparse
import os
import signal
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SHOW_TRUSTED = 3  # good nodes listed one by one in the report


def bounded_int(lo, hi):
    def parse(text):
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not lo <= v <= hi:
            raise argparse.ArgumentTypeError(f"{v} is outside {lo}..{hi}")
        return v
    parse.__name__ = f"{lo}..{hi}"
    return parse


def parse_args(argv=None):
    ap = argparse.ArgumentParser(prog="demo.py", description="fleetgw demo on loopback")
    ap.add_argument("build_dir")
    ap.add_argument("--nodes", type=bounded_int(1, 200), default=None, metavar="1..200",
                    help="good simulated nodes (default 20; 2 with --quick)")
    ap.add_argument("--count", type=bounded_int(1, 1000), default=None, metavar="1..1000",
                    help="telemetry messages per node (default 20; 3 with --quick)")
    ap.add_argument("--duration", type=bounded_int(1, 600), default=None, metavar="1..600",
                    help="seconds of telemetry (sets --count to rate x seconds)")
    ap.add_argument("--rate", type=float, default=20.0, help="messages per second per node")
    ap.add_argument("--quick", action="store_true", help="the short form make check runs")
    ap.add_argument("--keep", action="store_true",
                    help="leave everything running until Ctrl-C, with how to explore it")
    ap.add_argument("--break-good-nodes", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if not 0.1 <= args.rate <= 100:
        ap.error(f"--rate: {args.rate} is outside 0.1..100 messages per second")
    if args.duration is not None:
        if args.count is not None:
            ap.error("--count and --duration: give one of them")
        args.count = max(1, round(args.rate * args.duration))
    if args.nodes is None:
        args.nodes = 2 if args.quick else 20
    if args.count is None:
        args.count = 3 if args.quick else 20
    return args


class Out:
    def __init__(self):
        self.tty = sys.stdout.isatty()

    def colour(self, ok, text):
        if not self.tty:
            return text
        return f"\033[{'32' if ok else '31;1'}m{text}\033[0m"

    def __call__(self, line=""):
        if self.tty:
            body = line.lstrip(" ")
            pad = line[:len(line) - len(body)]
            for word, ok in (("ok ", True), ("BAD ", False)):
                if body.startswith(word):
                    line = pad + self.colour(ok, word.strip()) + " " + body[len(word):]
                    break
        print(line, flush=True)


def main():
    args = parse_args()
    os.environ["FLEETGW_BUILD_DIR"] = os.path.abspath(args.build_dir)
    os.environ.setdefault("FLEETGW_SOURCE_DIR", os.path.dirname(os.path.dirname(HERE)))

    sys.path.insert(0, HERE)
    import fleet_scenario  # noqa: E402 - needs FLEETGW_BUILD_DIR and the paths above
    import fleetgw_harness
    import ota_story
    import outage

    from fleetgw_harness import Env, HarnessError

    quiet_log = []
    fleetgw_harness.log = quiet_log.append  # component start/stop chatter: kept, not printed
    say = Out()
    rows = []  # summary: (ok, step, result, seconds)

    say("fleetgw demo: TPM, brokers, gateway and a simulated fleet, all on 127.0.0.1")
    checks, ota_checks = [], []
    try:
        with Env("demo") as env, Env("demo-ota") as env_ota:
            t = time.monotonic()
            results = fleet_scenario.run(env, good=args.nodes, count=args.count,
                                         rate=args.rate, log=lambda m: say(f"  {m}"),
                                         good_extra=(["--bad-measurement"]
                                                     if args.break_good_nodes else []))
            checks = fleet_scenario.judge(results)
            report(say, results, checks, args)
            t_att = time.monotonic() - t
            add_rows(rows, results, checks, args, t_att)
            facts = {}
            if all(ok for ok, _ in checks):
                t = time.monotonic()
                out_checks, out_facts = outage.run(
                    env, results, say, count=40 if args.quick else 100, rate=args.rate,
                    down_s=2.0 if args.quick else 4.0)
                checks += out_checks
                rows.append((all(ok for ok, _ in out_checks), "cloud outage",
                             f"down {out_facts['down']:.0f} s, spool peak {out_facts['peak']}, "
                             f"drained in {out_facts['drain']:.1f} s, "
                             f"{out_facts['got']}/{out_facts['want']} arrived",
                             time.monotonic() - t))
            if all(ok for ok, _ in checks):
                t = time.monotonic()
                ota_checks, facts = ota_story.run(env_ota, args.nodes, say, tty=say.tty)
                t_ota = time.monotonic() - t
                add_ota_rows(rows, ota_checks, facts, t_ota)
            else:
                rows.append((False, "OTA", "not run: the attestation part failed", 0))
            summary(say, rows)
            if args.keep:
                keep(say, results["site"], facts.get("site"))
            ota_story.stop(facts)
            results["site"].gwd.stop()
    except HarnessError as e:
        say(f"demo: FAILED: {e}")
        return 1
    except SystemExit as e:  # the harness turns its errors into exit 1 after tearing down
        if e.code not in (0, None):
            say("demo: FAILED (see the message above)")
        return e.code if isinstance(e.code, int) else 1
    bad = [line for ok, line in checks + ota_checks if not ok]
    if bad or not ota_checks:
        say(f"demo: FAILED: {len(bad) or 'the OTA part did not run;'} expectation(s) not met:")
        for line in bad[:10]:
            say(f"  - {line.strip()}")
        return 1
    good_msgs = args.nodes * args.count
    say(f"demo: OK: {args.nodes} trusted node(s) delivered {good_msgs}/{good_msgs} messages in "
        f"order; 3 quarantined nodes and 1 unknown node got nothing upstream; "
        f"a cloud outage lost nothing; {args.nodes} node(s) and the QEMU node updated and "
        "re-attested; the bad canary halted its campaign")
    return 0


def report(say, res, checks, args):
    ident = res["identity"]
    ref = res["reference"]
    say(f"gateway identity: TPM persistent handle {ident['handle']} (key created in the TPM, "
        "never leaves it)")
    say(f"  public key SHA-256 {ident['fingerprint']}")
    say("  certificate CN=gw-test from a CSR signed in the TPM, issued by a throwaway cloud CA")
    say(f"firmware reference: {os.path.basename(res['image'])}, version {ref['version']} "
        f"(in the gateway's OTA store, attestation.image_dir, verified with the signing key)")
    say(f"  measurement {ref['measurement']}")
    say(f"  signer id   {ref['signer_id']}")
    say(f"fleet: {args.nodes} enrolled nodes, 3 enrolled bad nodes, 1 unknown key; "
        f"{args.count} telemetry messages each")
    trusted = [n for n in res["nodes"].values() if n.get("verdict") == "trusted"]
    if trusted:
        say(f"trusted because: {trusted[0]['reason']}")
    say("verdicts (fleetgwctl nodes) and telemetry counted at the cloud:")
    shown = 0
    trusted_lines = [(ok, line) for ok, line in checks if " trusted (fw " in line]
    for ok, line in checks:
        # the good nodes: the first SHOW_TRUSTED, then one line for the rest (all ok), so
        # that the report fits a terminal; a node that is not ok is always shown
        if " trusted (fw " in line and ok:
            shown += 1
            if shown == SHOW_TRUSTED + 1:
                rest = [ln for k, ln in trusted_lines[SHOW_TRUSTED:] if k]
                say(f" ok    ... and {len(rest)} more node(s) like these, each trusted with "
                    "every message upstream in order")
            if shown > SHOW_TRUSTED:
                continue
        say(f" {'ok ' if ok else 'BAD'} {line}")


def add_rows(rows, res, checks, args, secs):
    good = [g for g in res["groups"] if g["expect"] == "trusted"]
    n_good = sum(g["n"] for g in good)
    trusted = sum(1 for n in res["nodes"].values() if n.get("verdict") == "trusted")
    quar = sum(1 for n in res["nodes"].values() if n.get("verdict") == "quarantined")
    node_ok = all(ok for ok, line in checks if line.startswith("  "))
    rows.append((True, "identity", f"TPM key {res['identity']['handle']}, CSR signed in TPM",
                 None))
    rows.append((node_ok, "attestation", f"{trusted}/{n_good} trusted, {quar}/3 quarantined, "
                 "1 unknown refused", secs))
    cloud = sum(len(v) for v in res["cloud"].values())
    rows.append((all(ok for ok, _ in checks[-3:]), "relay",
                 f"{cloud} msgs at the cloud (want {n_good * args.count}), spool "
                 f"{res['spool'].get('spooled_messages')} left", None))


def add_ota_rows(rows, checks, facts, secs):
    stage_ok = "staged" in facts and all(ok for ok, line in checks if line.startswith("ota stage"))
    rows.append((stage_ok, "ota stage", "tampered + unknown signer refused, v2 stored", None))
    cid, state, done, n, csecs = facts.get("campaign", ("?", "?", 0, 0, 0))
    on, n2 = facts.get("on_v2", (0, 0))
    rows.append((state == "completed" and done == n, "campaign",
                 f"{cid} {state}: {done}/{n} succeeded, waves 1,10%,100%", csecs))
    rows.append((on == n2 and n2 > 0, "re-attested", f"{on}/{n2} trusted on 2.0.0+0", None))
    cid2, st2, canary, hsecs = facts.get("halt", ("?", "?", "?", 0))
    halt_ok = "halt" in facts and all(ok for ok, line in checks
                                      if line.startswith("campaign demo-canary") or
                                      line.startswith("  "))
    rows.append((halt_ok, "halt path", f"{cid2} {st2}, canary {canary}, others untouched",
                 hsecs))
    q = facts.get("qemu")
    qf = q.facts if q is not None else {}
    rows.append((bool(qf) and qf["state"] == "completed" and qf["fw"] == qf["v2"], "QEMU node",
                 f"{qf.get('cid', 'demo-qemu')} {qf.get('state', 'not finished')}"
                 + (f", trusted on {qf['fw']}" if qf else ""), qf.get("secs")))


def summary(say, rows):
    say("summary:")
    for ok, step, result, secs in rows:
        t = f"{secs:5.0f} s" if secs is not None else "       "
        say(f"  {'ok ' if ok else 'BAD'} {step:12} {t}  {result}")


def keep(say, site, ota_site):
    """Everything stays up until Ctrl-C or SIGTERM; then the caller tears down."""
    from fleetgw_harness import program
    from daemon_common import PREFIX
    ctl = program("fleetgwctl")
    cert = site.cloud_ca.issue("monitor")
    sub = " ".join(["mosquitto_sub"] + site.cloud.client_args(cert) + ["-t", f"{PREFIX}/#",
                                                                       "-v"])
    say("kept running; explore it from another terminal:")
    say(f"  {ctl} --socket {site.control_socket} status")
    say(f"  {ctl} --socket {site.control_socket} nodes")
    if ota_site is not None:
        say(f"  {ctl} --socket {ota_site.control_socket} campaign status demo-v2 --watch")
        say(f"  {ctl} --socket {ota_site.control_socket} nodes")
    say(f"  {sub}")
    say(f"stop it: Ctrl-C here, or kill -TERM {os.getpid()}")

    def on_term(signum, frame):
        raise KeyboardInterrupt
    old = signal.signal(signal.SIGTERM, on_term)
    try:
        while True:
            site.gwd.check_alive()
            time.sleep(1)
    except KeyboardInterrupt:
        say("")
        say("stopping everything the demo started")
    finally:
        signal.signal(signal.SIGTERM, old)


if __name__ == "__main__":
    sys.exit(main())
