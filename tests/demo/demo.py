"""make demo: the gateway's main job on loopback, then a plain-words report of what happened.

    /usr/bin/python3 tests/demo/demo.py BUILD_DIR [--nodes N] [--count K] [--rate R]

Starts swtpm + tpm2-abrmd, makes the gateway identity in the TPM (fleetgwctl identity init + a
CSR signed by a throwaway cloud CA), a cloud broker (mutual TLS) and an edge broker (TLS for
the nodes, unix socket for fleetgwd), fleetgwd with a generated configuration and the
attestation gate on (reference values from the signed firmware image of this build), enrols
N simulated nodes plus three bad ones (flipped measurement, forged signature, replayed nonce)
and runs one node with an unknown key; every node sends K telemetry messages. Then it prints
the verdicts (fleetgwctl nodes), what a cloud-side subscriber received per node, the drops
and the spool, and exits 0 only if everything behaved as expected. Everything runs in a
temporary directory and is torn down at the end (FLEETGW_KEEP_TMP=1 keeps the directory).

--break-good-nodes makes the "good" nodes report a wrong measurement: the demo must then
fail (tests/integration/test_demo.py checks that it does)."""

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    ap = argparse.ArgumentParser(prog="demo.py")
    ap.add_argument("build_dir")
    ap.add_argument("--nodes", type=int, default=20, choices=range(1, 201), metavar="1..200")
    ap.add_argument("--count", type=int, default=20, choices=range(1, 1001), metavar="1..1000")
    ap.add_argument("--rate", type=float, default=20.0)
    ap.add_argument("--break-good-nodes", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    os.environ["FLEETGW_BUILD_DIR"] = os.path.abspath(args.build_dir)

    sys.path.insert(0, HERE)
    import fleet_scenario  # noqa: E402 - needs FLEETGW_BUILD_DIR and the paths above
    import fleetgw_harness

    from fleetgw_harness import Env, HarnessError

    quiet_log = []
    fleetgw_harness.log = quiet_log.append  # component start/stop chatter: kept, not printed

    def say(line=""):
        print(line, flush=True)

    say("fleetgw demo: TPM, brokers, gateway and a simulated fleet, all on 127.0.0.1")
    results = None
    env = Env("demo")
    try:
        with env:
            results = fleet_scenario.run(env, good=args.nodes, count=args.count,
                                         rate=args.rate, log=lambda m: say(f"  {m}"),
                                         good_extra=(["--bad-measurement"]
                                                     if args.break_good_nodes else []))
            checks = fleet_scenario.judge(results)
            report(say, results, checks, args)
            results["site"].gwd.stop()
    except HarnessError as e:
        say(f"demo: FAILED: {e}")
        return 1
    except SystemExit as e:  # the harness turns its errors into exit 1 after tearing down
        if e.code not in (0, None):
            say("demo: FAILED (see the message above)")
        return e.code if isinstance(e.code, int) else 1
    bad = [line for ok, line in checks if not ok]
    if bad:
        say(f"demo: FAILED: {len(bad)} expectation(s) not met:")
        for line in bad[:10]:
            say(f"  - {line.strip()}")
        return 1
    good_msgs = args.nodes * args.count
    say(f"demo: OK: {args.nodes} trusted node(s) delivered {good_msgs}/{good_msgs} messages in "
        f"order; 3 quarantined nodes and 1 unknown node got nothing upstream")
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
    for ok, line in checks:
        say(f" {'ok ' if ok else 'BAD'} {line}")


if __name__ == "__main__":
    sys.exit(main())
