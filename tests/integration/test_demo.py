"""`make demo` works: scripts/demo.sh BUILD_DIR runs tests/demo/demo.py end to end (swtpm +
abrmd, gateway identity, brokers, fleetgwd, 20 simulated nodes + 3 bad + 1 unknown, the OTA
story with a QEMU node) and
exits 0 with a short report; and it is not an "always OK" script: when the good nodes report
a wrong measurement (--break-good-nodes) it exits non-zero and says what went wrong."""

import os
import subprocess
import sys

from fleetgw_harness import build_dir, expect

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")


def demo(*args):
    r = subprocess.run([os.path.join(ROOT, "scripts", "demo.sh"), build_dir(), *args],
                       capture_output=True, text=True, timeout=900)
    print(r.stdout + r.stderr, flush=True)
    return r


def main():
    r = demo()
    lines = r.stdout.splitlines()
    words = [" ".join(line.split()) for line in lines]  # the checks' text, spacing aside
    expect(r.returncode == 0, f"make demo exits 0 (got {r.returncode})")
    expect(lines and lines[-1].startswith("demo: OK: 20 trusted node(s) delivered 400/400"),
           "the last line says all 400 messages of the 20 trusted nodes were delivered")
    expect(len(lines) < 80, f"the report is short: {len(lines)} lines")
    expect(any(w.startswith("ok ota stage a tampered copy of an image: refused, tampered")
               for w in words) and
           any(w.startswith("ok ota stage an image signed by an unknown key: refused, "
                            "unknown_signer") for w in words),
           "staging refuses the tampered image and the unknown signer, with their reasons")
    expect(any(w.startswith("ok campaign demo-v2 completed") for w in words) and
           any(w.startswith("ok fleetgwctl nodes: 20/20 re-attested after the reboot: "
                            "trusted, firmware 2.0.0+0") for w in words),
           "the 3-wave campaign completes and all 20 nodes are trusted on 2.0.0+0")
    expect(any(w.startswith("ok campaign demo-canary halted") for w in words),
           "the campaign with the failing canary halts")
    expect(any(w.startswith("ok campaign demo-qemu completed") for w in words) and
           any(w.startswith("ok the QEMU node re-attested: trusted on 0.2.0") for w in words),
           "the QEMU node is updated by its campaign and re-attests on 0.2.0")
    expect(any(w.startswith("ok the spool rose to ") for w in words) and
           any(w.startswith("ok at the cloud: 2000/2000 messages, none lost") for w in words),
           "a cloud outage under load: the spool rose and drained, all 2000 messages arrived")
    expect(any(line.startswith("summary:") for line in lines), "it ends with a summary table")
    expect(sum(" trusted (fw " in line for line in lines) == 3 and
           any("... and 17 more node(s) like these" in line for line in lines) and
           sum(" quarantined: " in line for line in lines) == 3 and
           any("unknown key" in line and "not enrolled" in line for line in lines),
           "it lists 3 trusted nodes and 17 more in one line, 3 quarantined with their reasons "
           "and the unknown key")
    expect(any(line.startswith("gateway identity: TPM persistent handle 0x81") for line in lines)
           and any("public key SHA-256 " in line for line in lines),
           "it names the gateway identity (TPM handle, key fingerprint)")
    expect(not any(line.startswith(" BAD") for line in lines), "no expectation failed")

    r = demo("--nodes", "1000")
    err = r.stderr.splitlines()
    expect(r.returncode == 2 and err and err[-1].endswith("--nodes: 1000 is outside 1..200")
           and len(err) <= 4, "a bad --nodes value: one line plus the usage")

    r = demo("--count", "5", "--duration", "3")
    err = r.stderr.splitlines()
    expect(r.returncode == 2 and err and err[-1].endswith("give one of them") and len(err) <= 4,
           "--count with --duration: one line plus the usage")

    r = demo("--quick", "--break-good-nodes")
    expect(r.returncode == 1 and "demo: FAILED: " in r.stdout and
           "quarantined (fw" in r.stdout,
           "with the good nodes reporting a wrong measurement the demo fails and says why")

    keep()
    return 0


def keep():
    """--keep: everything stays up and answers the printed fleetgwctl lines until SIGTERM,
    which tears it all down (the temporary directories are gone) with exit 0."""
    import re
    import signal
    import time
    p = subprocess.Popen([os.path.join(ROOT, "scripts", "demo.sh"), build_dir(), "--quick",
                          "--keep"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True)
    lines = []
    for line in p.stdout:  # bounded: the demo ends or prints "stop it:"
        lines.append(line.rstrip("\n"))
        if line.startswith("stop it:"):
            break
    print("\n".join(lines), flush=True)
    ctl = [ln.split() for ln in lines if ln.strip().endswith(" nodes") and "--socket" in ln]
    expect(len(ctl) == 2, "--keep prints a fleetgwctl nodes line for each gateway")
    r = subprocess.run(ctl[-1], capture_output=True, text=True, timeout=60)
    expect(r.returncode == 0 and r.stdout.count(" 2.0.0+0 ") == 2,
           f"the kept OTA gateway answers: 2 nodes on 2.0.0+0 ({r.stderr.strip()})")
    dirs = set(re.findall(r"(/\S+/fleetgw-demo-[^/\s]+)/", "\n".join(lines)))
    expect(dirs and all(os.path.isdir(d) for d in dirs), f"its directories exist: {dirs}")
    p.send_signal(signal.SIGTERM)
    rest = p.stdout.read()
    p.wait(timeout=120)
    print(rest, flush=True)
    time.sleep(0.5)
    expect(p.returncode == 0 and "stopping everything the demo started" in rest,
           f"SIGTERM stops it, exit {p.returncode}")
    expect(not any(os.path.exists(d) for d in dirs), "and removes its directories")


if __name__ == "__main__":
    sys.exit(main())
