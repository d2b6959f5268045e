"""Every program this tree builds into build/bin keeps the command-line conventions
(issue 16, docs/testing.md):
- `PROG --version` prints "PROG VERSION" on stdout, nothing on stderr, exits 0, and VERSION
  is the package version: project(fleetgw VERSION ...) in the top CMakeLists.txt (which
  scripts/make-deb.sh checks against packaging/debian/changelog);
- `PROG --help` prints the usage on stdout, nothing on stderr, exits 0;
- `PROG --no-such-option` prints on stderr one line naming the option, then the usage, nothing
  on stdout, and exits with the program's usage code (64 for fleetgwd, 2 for the others);
- a bad value (a few programs check values at parse time) is named the same way, never with a
  list of the allowed values;
- fleetgwctl's command families (identity, ota, campaign, ota campaign, check, node add) answer
  --help on stdout with 0 and a bogus option with one line plus the usage and exit 2.
The set of programs is whatever build/bin holds, and the expected ones must all be there: a
program added later is checked without editing this file, one that went missing fails."""

import os
import re
import subprocess

from fleetgw_harness import build_dir, expect, log, run_main

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.abspath(os.path.join(HERE, "..", ".."))

EXPECTED = {
    "fleetgwd", "fleetgwctl", "fleet-sim", "fleetgw-tool", "fleetgw-serial-link",
    "fleetgw-ops-check", "fleetgw-boot-sim", "fleetgw-tls-bench", "fleetgw-tls-probe",
    "fleetgw-tls-ctxcheck", "fleetgw-bench-min-relay", "fleetgw-ota-testserver",
    "fleetgw-unbatch",
}
USAGE_CODE = {"fleetgwd": 64}  # sysexits EX_USAGE (docs/daemon.md); every other program: 2
BOGUS = "--no-such-option-xyz"
# A usage is a screenful, not a list of every allowed value.
MAX_USAGE_LINES = 40


def project_version():
    with open(os.path.join(SOURCE, "CMakeLists.txt"), encoding="utf-8") as f:
        m = re.search(r"^project\(fleetgw VERSION ([0-9][0-9.]*)", f.read(), re.M)
    expect(m is not None, "the top CMakeLists.txt declares project(fleetgw VERSION ...)")
    return m.group(1)


def run(argv):
    # No FLEETGW_CONTROL_SOCKET and no TPM needed: nothing here reaches a daemon or a TPM.
    env = dict(os.environ)
    env.pop("FLEETGW_CONTROL_SOCKET", None)
    p = subprocess.run(argv, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout, p.stderr


def is_usage(text):
    return re.search(r"^usage:", text, re.I | re.M) is not None


def check_bad(label, argv, named, code):
    """argv must fail with code: first stderr line names `named`, then the usage."""
    rc, out, err = run(argv)
    lines = err.splitlines()
    expect(rc == code, f"{label}: exit {code} (got {rc})")
    expect(out == "", f"{label}: nothing on stdout (got {out[:80]!r})")
    expect(len(lines) >= 2 and named in lines[0],
           f"{label}: the first stderr line names {named!r} (got {lines[:1]!r})")
    expect(is_usage("\n".join(lines[1:])),
           f"{label}: the usage follows the one-line error on stderr")
    expect(len(lines) <= MAX_USAGE_LINES,
           f"{label}: at most {MAX_USAGE_LINES} lines on stderr (got {len(lines)})")


def main():
    version = project_version()
    bindir = os.path.join(build_dir(), "bin")
    expect(os.path.isdir(bindir), f"{bindir} exists (run the build first)")
    found = sorted(n for n in os.listdir(bindir)
                   if os.path.isfile(os.path.join(bindir, n))
                   and os.access(os.path.join(bindir, n), os.X_OK))
    missing = EXPECTED - set(found)
    expect(not missing, f"every program is built in {bindir} (missing: {sorted(missing)})")
    log(f"package version {version}; programs: {' '.join(found)}")

    for name in found:
        path = os.path.join(bindir, name)
        code = USAGE_CODE.get(name, 2)

        rc, out, err = run([path, "--version"])
        expect(rc == 0 and out == f"{name} {version}\n" and err == "",
               f"{name} --version prints '{name} {version}' and exits 0 "
               f"(got rc {rc}, {out!r}, stderr {err[:80]!r})")

        rc, out, err = run([path, "--help"])
        expect(rc == 0 and is_usage(out) and name in out and err == "",
               f"{name} --help prints its usage on stdout and exits 0 "
               f"(got rc {rc}, stderr {err[:80]!r})")

        check_bad(f"{name} {BOGUS}", [path, BOGUS], BOGUS, code)

    ctl = os.path.join(bindir, "fleetgwctl")
    for family in (["identity"], ["ota"], ["campaign"], ["ota", "campaign"], ["check"],
                   ["node", "add"]):
        words = " ".join(family)
        rc, out, err = run([ctl, *family, "--help"])
        expect(rc == 0 and is_usage(out) and err == "",
               f"fleetgwctl {words} --help prints the usage on stdout and exits 0 "
               f"(got rc {rc}, stderr {err[:80]!r})")
        check_bad(f"fleetgwctl {words} {BOGUS}", [ctl, *family, BOGUS], BOGUS, 2)

    # Values checked while parsing: named in one line, then the usage; never the allowed list.
    check_bad("fleet-sim --nodes 1000000000", [os.path.join(bindir, "fleet-sim"), "--nodes",
                                               "1000000000"], "--nodes", 2)
    check_bad("fleetgwctl campaign create --waves x",
              [ctl, "campaign", "create", "--image", "ab", "--waves", "x"], "--waves", 2)
    check_bad("fleetgwctl campaign create --retries x",
              [ctl, "campaign", "create", "--image", "ab", "--retries", "x"], "--retries", 2)
    check_bad("fleetgw-unbatch --prefix a/#", [os.path.join(bindir, "fleetgw-unbatch"), "--prefix",
                                               "a/#"], "--prefix", 2)
    check_bad("fleetgw-serial-link --broker", [os.path.join(bindir, "fleetgw-serial-link"),
                                               "--broker"], "--broker", 2)
    return 0


if __name__ == "__main__":
    run_main(main)
