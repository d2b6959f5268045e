"""The systemd files in systemd/ are valid and the unit is hardened:
- `systemd-analyze verify` prints nothing (no unknown key, no bad value, the programs exist);
- `systemd-analyze security --offline=true` gives an overall exposure <= 2.0 and every
  hardening setting the issue asks for is present with the required value;
- (sysusers.d and tmpfiles.d: integration.systemd_tmpfiles, which needs root);
- every man page the unit's Documentation= names is shipped in packaging/man/.

The executable check of `verify` needs /usr/bin/fleetgwd: once daemon/ is in the tree the
unit is verified against the BUILT fleetgwd (a missing build is a failure); before that
(daemon/ absent) the ExecStart paths are pointed at /bin/true for the verify run only and
the test says so."""

import os
import re
import subprocess
import tempfile

from fleetgw_harness import build_dir, expect, run_main

SRC = os.environ.get("FLEETGW_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
UNIT = os.path.join(SRC, "systemd", "fleetgwd.service")
MAX_EXPOSURE = 2.0


def run(argv, **kw):
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, **kw)


def unit_settings(path):
    """{key: [values...]} of the [Service] section (comments and blank lines dropped)."""
    settings = {}
    section = None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("["):
                section = line
                continue
            key, _, value = line.partition("=")
            settings.setdefault((section, key), []).append(value)
    return settings


def check_verify(tmp):
    daemon_in_tree = os.path.exists(os.path.join(SRC, "daemon", "CMakeLists.txt"))
    with open(UNIT) as f:
        text = f.read()
    if daemon_in_tree:
        fleetgwd = os.path.join(build_dir(), "bin", "fleetgwd")
        if not os.access(fleetgwd, os.X_OK):
            raise AssertionError(f"daemon/ is in the tree but {fleetgwd} is not built: "
                                 "build it first (the unit is verified against it)")
        text = text.replace("/usr/bin/fleetgwd", fleetgwd)
        print(f"verify: ExecStart= checked against the built {fleetgwd}")
    else:
        text = text.replace("/usr/bin/fleetgwd", "/bin/true")
        print("NOTE: daemon/ is not in this tree yet: for `systemd-analyze verify` only, "
              "ExecStart= points at /bin/true")
    copy = os.path.join(tmp, "fleetgwd.service")
    with open(copy, "w") as f:
        f.write(text)
    r = run(["systemd-analyze", "verify", "--man=no", copy])
    out = (r.stdout + r.stderr).strip()
    expect(r.returncode == 0 and out == "",
           f"systemd-analyze verify is clean (rc {r.returncode}, output: {out!r})")


def check_security():
    r = run(["systemd-analyze", "security", "--offline=true", "--no-pager", UNIT])
    m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", r.stdout + r.stderr)
    expect(m is not None, "systemd-analyze security printed an overall exposure level")
    exposure = float(m.group(1))
    print(f"overall exposure level: {exposure}")
    expect(exposure <= MAX_EXPOSURE, f"exposure {exposure} <= {MAX_EXPOSURE}")


def check_settings():
    s = unit_settings(UNIT)
    svc = "[Service]"
    want = {
        "Type": "notify", "Restart": "on-failure", "User": "fleetgw", "Group": "fleetgw",
        "SupplementaryGroups": "tss", "StateDirectory": "fleetgw",
        "ConfigurationDirectory": "fleetgw", "RuntimeDirectory": "fleetgw",
        "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
        "NoNewPrivileges": "yes", "CapabilityBoundingSet": "",
        "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
        "SystemCallArchitectures": "native", "MemoryDenyWriteExecute": "yes",
        "DevicePolicy": "closed", "DeviceAllow": "/dev/tpmrm0 rw",
        "ProtectKernelTunables": "yes", "ProtectKernelModules": "yes",
        "ProtectKernelLogs": "yes", "ProtectControlGroups": "yes", "ProtectClock": "yes",
        "ProtectHostname": "yes", "ProtectProc": "invisible", "ProcSubset": "pid",
        "LockPersonality": "yes", "RestrictNamespaces": "yes", "RestrictRealtime": "yes",
        "RestrictSUIDSGID": "yes", "UMask": "0077",
    }
    for key, value in want.items():
        got = s.get((svc, key))
        expect(got is not None and value in got, f"{key}={value} (unit has {got})")
    expect("@system-service" in s.get((svc, "SystemCallFilter"), []),
           "SystemCallFilter=@system-service")
    expect(any(v.strip() for v in s.get((svc, "WatchdogSec"), [])), "WatchdogSec= is set")
    # The unit must not grant anything back.
    expect(not any(v.strip() for v in s.get((svc, "AmbientCapabilities"), [])),
           "no ambient capabilities")
    expect((svc, "PrivateDevices") not in s or s[(svc, "PrivateDevices")] == ["no"],
           "PrivateDevices= off (it would hide /dev/tpmrm0; DevicePolicy=closed instead)")


def check_man_pages():
    s = unit_settings(UNIT)
    docs = " ".join(s.get(("[Unit]", "Documentation"), []))
    pages = re.findall(r"man:([\w.-]+)\((\d)\)", docs)
    expect(len(pages) >= 3, f"Documentation= names the man pages ({docs})")
    for name, sec in pages:
        path = os.path.join(SRC, "packaging", "man", f"{name}.{sec}")
        expect(os.path.isfile(path), f"man page {name}({sec}) is shipped ({path})")
        r = run(["man", "--warnings", "-l", "-Tutf8", path], env=dict(os.environ, MANWIDTH="80"))
        warn = r.stderr.strip()
        expect(r.returncode == 0 and not warn, f"{name}.{sec} renders without warnings {warn!r}")


def main():
    for prog in ("systemd-analyze",):
        if run(["sh", "-c", f"command -v {prog}"]).returncode != 0:
            print(f"FAIL: {prog} not found: install the Debian package 'systemd'")
            return 1
    with tempfile.TemporaryDirectory(prefix="fleetgw-unit-") as tmp:
        check_settings()
        check_verify(tmp)
        check_security()
        check_man_pages()
    print("PASS")
    return 0


if __name__ == "__main__":
    run_main(main)
