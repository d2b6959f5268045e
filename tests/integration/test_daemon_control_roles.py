"""Control-socket roles against a running fleetgwd (real brokers and TPM): with
control.read_group and control.admin_group set, the socket is 0666 and each peer's role comes
from its credentials. The daemon's own uid (admin) enrols a node. Then, as root only, real
fleetgwctl processes run as a throwaway uid (setpriv):
  - in the read group: `status` and `nodes` answer; `node remove` and `node add` are refused
    with an error that names the missing admin role ("missing_role":"admin" in --json), the
    node stays enrolled, and the daemon logs the refusal (control_refused);
  - in the admin group (as a supplementary group): `node remove` works;
  - in neither: refused at connect ("permission denied"), logged (control_denied).
As a normal user the read-only and other-uid part needs root (changing uid): the admin part
runs, then the test reports a visible skip (exit 77) naming what did not run."""

import grp
import hashlib
import json
import os
import shutil
import stat
import subprocess
import tempfile

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from fleetgw_harness import Env, expect, program, skip, wait_for

from daemon_common import Site

PEER_UID = 65533


def main():
    ctl = program("fleetgwctl")
    root = os.geteuid() == 0
    if root and shutil.which("setpriv") is None:
        print("FAIL: setpriv not found (util-linux): it runs fleetgwctl as other uids")
        return 1
    read_group = grp.getgrgid(65534).gr_name  # nogroup: no member on a test machine
    admin_group = grp.getgrgid(1).gr_name     # daemon
    # The socket's directory must be searchable by the other uid: its own, outside the work
    # dir (which holds the test's secrets).
    ctl_dir = tempfile.mkdtemp(prefix="fleetgw-roles-")
    os.chmod(ctl_dir, 0o755)
    sock = os.path.join(ctl_dir, "control.sock")
    try:
        with Env("daemon-control-roles") as env:
            site = Site(env, nodes=("ro",))
            site.control_socket = sock
            site.start_gwd(control={"socket": sock, "read_group": read_group,
                                    "admin_group": admin_group})
            site.wait_gwd_connected()

            st = os.stat(sock)
            expect(stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o666,
                   f"with role groups the control socket is 0666 (the credentials decide; mode "
                   f"{oct(stat.S_IMODE(st.st_mode))})")

            def run(*args, as_ids=None):
                pre = []
                if as_ids is not None:
                    uid, gid, groups = as_ids
                    pre = ["setpriv", f"--reuid={uid}", f"--regid={gid}",
                           f"--groups={groups}" if groups else "--clear-groups"]
                return subprocess.run(pre + [ctl, "--socket", sock, *args],
                                      capture_output=True, text=True, timeout=60)

            key = ec.generate_private_key(ec.SECP256R1())
            point = key.public_key().public_bytes(serialization.Encoding.X962,
                                                  serialization.PublicFormat.UncompressedPoint)
            node_id = hashlib.sha256(point).digest()[:16].hex()
            r = run("node", "add", "--pub-hex", point.hex(), "--class", "sensor-v1")
            expect(r.returncode == 0 and node_id in r.stdout,
                   f"the daemon's own uid holds the admin role: node add ({r.stderr.strip()})")

            if not root:
                skip("the admin part ran; the read-only peer, the admin-group peer and the "
                     "peer without a role need other uids (setpriv), which only root may use: "
                     "run as root, as CI does")

            reader = (PEER_UID, 65534, None)
            r = run("status", as_ids=reader)
            expect(r.returncode == 0 and "edge broker" in r.stdout,
                   f"a read-only peer (uid {PEER_UID}, group {read_group}) reads status "
                   f"({r.returncode}: {r.stderr.strip()})")
            r = run("--json", "nodes", as_ids=reader)
            expect(r.returncode == 0 and
                   node_id in [n["id"] for n in json.loads(r.stdout)["nodes"]],
                   "the read-only peer lists the nodes")
            r = run("node", "remove", node_id, as_ids=reader)
            expect(r.returncode == 1 and "needs the admin role" in r.stderr and
                   "read-only role" in r.stderr,
                   f"the read-only peer cannot remove a node; the reply names the missing role "
                   f"({r.returncode}: {r.stderr.strip()})")
            r = run("--json", "node", "remove", node_id, as_ids=reader)
            js = json.loads(r.stdout)
            expect(not js["ok"] and js.get("missing_role") == "admin" and
                   js.get("role") == "read-only",
                   f"--json: \"missing_role\":\"admin\", \"role\":\"read-only\" ({js})")
            other = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
            r = run("node", "add", "--pub-hex", other.hex(), "--class", "sensor-v1",
                    as_ids=reader)
            expect(r.returncode == 1 and "needs the admin role" in r.stderr,
                   f"the read-only peer cannot add a node ({r.stderr.strip()})")
            r = run("--json", "nodes")
            ids = [n["id"] for n in json.loads(r.stdout)["nodes"]]
            expect(ids == [node_id], f"the registry is unchanged: only {node_id} ({ids})")
            wait_for(lambda: "refused control request 'node_remove'" in site.gwd.output() and
                     "refused control request 'node_add'" in site.gwd.output(), 10,
                     "fleetgwd to log the refused requests")
            line = [l for l in site.gwd.output().splitlines()
                    if "refused control request 'node_remove'" in l][0]
            expect(f"uid {PEER_UID}" in line and "needs the admin role" in line,
                   f"the log names the peer and the missing role ({line.strip()})")

            r = run("node", "remove", node_id, as_ids=(PEER_UID, PEER_UID, "1"))
            expect(r.returncode == 0 and f"removed {node_id}" in r.stdout,
                   f"a peer with {admin_group} as a supplementary group holds the admin role: "
                   f"node remove ({r.stderr.strip()})")
            r = run("--json", "nodes")
            expect(json.loads(r.stdout)["nodes"] == [], "the node is removed")

            r = run("status", as_ids=(PEER_UID, PEER_UID, None))
            expect(r.returncode != 0 and "permission denied" in r.stderr,
                   f"a peer in no role group is refused at connect ({r.stderr.strip()})")
            wait_for(lambda: "refused a control connection from uid "
                     f"{PEER_UID}" in site.gwd.output(), 10,
                     "fleetgwd to log the refused connection")
            site.gwd.check_alive()
            r = run("status")
            expect(r.returncode == 0, "fleetgwd still serves its own uid afterwards")
    finally:
        shutil.rmtree(ctl_dir, ignore_errors=True)
    print("PASS")
    return 0


if __name__ == "__main__":
    from fleetgw_harness import run_main
    run_main(main)
