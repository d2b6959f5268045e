"""systemd/fleetgw.sysusers and systemd/fleetgw.tmpfiles apply cleanly to a scratch root
(systemd-sysusers --root, systemd-tmpfiles --root) and create the user, the groups and the
directories with the owners and modes the unit relies on.

Needs root: tmpfiles gives the directories to the fleetgw user and to root, which only root
may do (chown); as another user the test is reported skipped, saying so."""

import os
import subprocess
import tempfile

from fleetgw_harness import expect, run_main

SRC = os.environ.get("FLEETGW_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))


def run(argv, **kw):
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, **kw)


def check_sysusers_tmpfiles(tmp):
    root = os.path.join(tmp, "root")
    os.makedirs(os.path.join(root, "etc"))
    r = run(["systemd-sysusers", f"--root={root}",
             os.path.join(SRC, "systemd", "fleetgw.sysusers")])
    expect(r.returncode == 0, f"systemd-sysusers applies fleetgw.sysusers ({r.stderr.strip()})")
    users = {}
    with open(os.path.join(root, "etc", "passwd")) as f:
        for line in f:
            p = line.rstrip("\n").split(":")
            users[p[0]] = p
    groups = {}
    with open(os.path.join(root, "etc", "group")) as f:
        for line in f:
            p = line.rstrip("\n").split(":")
            groups[p[0]] = p
    expect("fleetgw" in users and int(users["fleetgw"][2]) < 1000,
           "system user fleetgw created (uid < 1000)")
    expect(users["fleetgw"][6] in ("/usr/sbin/nologin", "/sbin/nologin"),
           "fleetgw has no login shell")
    expect(users["fleetgw"][5] == "/var/lib/fleetgw", "fleetgw's home is its state directory")
    expect("tss" in groups, "group tss exists (SupplementaryGroups=tss cannot fail)")
    expect("fleetgw" not in groups["tss"][3].split(","),
           "fleetgw is not a permanent member of tss (only the unit grants it)")
    for g in ("fleetgw-admin", "fleetgw-read"):
        expect(g in groups and int(groups[g][2]) < 1000 and groups[g][2] != groups["fleetgw"][2],
               f"the operators' group {g} exists (a system group of its own, not fleetgw: no "
               f"edge broker socket for operators)")

    r = run(["systemd-tmpfiles", f"--root={root}", "--create",
             os.path.join(SRC, "systemd", "fleetgw.tmpfiles")])
    expect(r.returncode == 0, f"systemd-tmpfiles applies fleetgw.tmpfiles ({r.stderr.strip()})")
    uid, gid = int(users["fleetgw"][2]), int(groups["fleetgw"][2])
    st = os.stat(os.path.join(root, "var", "lib", "fleetgw"))
    expect((st.st_uid, st.st_gid, st.st_mode & 0o7777) == (uid, gid, 0o750),
           "/var/lib/fleetgw is fleetgw:fleetgw 0750")
    st = os.stat(os.path.join(root, "run", "fleetgw-edge"))
    expect((st.st_uid, st.st_gid, st.st_mode & 0o7777) == (0, gid, 0o750),
           "/run/fleetgw-edge is root:fleetgw 0750")



def main():
    for prog in ("systemd-sysusers", "systemd-tmpfiles"):
        if run(["sh", "-c", f"command -v {prog}"]).returncode != 0:
            print(f"FAIL: {prog} not found: install the Debian package 'systemd'")
            return 1
    if os.geteuid() != 0:
        print("SKIP: needs root: systemd-tmpfiles gives the scratch root's directories to the "
              "fleetgw user and to root (chown); run as root, as CI does")
        return 77
    with tempfile.TemporaryDirectory(prefix="fleetgw-tmpfiles-") as tmp:
        check_sysusers_tmpfiles(tmp)
    print("PASS")
    return 0


if __name__ == "__main__":
    run_main(main)
