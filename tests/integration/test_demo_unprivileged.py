"""`make demo` works for a person who is not root: the demo's short form (2 good nodes, the
3 bad ones and the unknown one, 3 messages each) runs end to end as an unprivileged user, from
a checkout outside any root-only place: swtpm + tpm2-abrmd on a private bus, both brokers,
fleetgwd (its control socket in the user's own group), fleet-sim and fleetgwctl.

As root (CI) the test makes that situation itself: it copies the scripts, the test tree and the
built programs and firmware into a fresh directory, and runs the demo there through setpriv as
nobody:nogroup (an identity with a passwd entry, which D-Bus requires, and no files of its
own), with no supplementary groups, no capabilities and no_new_privs, a clean environment and
a HOME and TMPDIR of its own that are removed afterwards. As a normal user it runs
the same short form as that user, from the checkout itself."""

import os
import pwd
import shutil
import subprocess
import tempfile

from fleetgw_harness import build_dir, expect, require, run_main

SRC = os.environ.get("FLEETGW_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
DEMO_ARGS = ["--quick"]  # 2 good nodes, 3 messages each
CLEAN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def copy_tree(top, uid, gid):
    """scripts/, tests/, the firmware's flash-file writer (the demo's QEMU node) and the
    build's programs and firmware under top, readable by all, written by root only; HOME and
    TMPDIR owned by uid."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    src = os.path.join(top, "src")
    for part in ("scripts", "tests"):
        shutil.copytree(os.path.join(SRC, part), os.path.join(src, part), ignore=ignore)
    os.makedirs(os.path.join(src, "agents", "firmware"))
    shutil.copy2(os.path.join(SRC, "agents", "firmware", "mkflash.py"),
                 os.path.join(src, "agents", "firmware", "mkflash.py"))
    build = os.path.join(top, "build")
    for part in ("bin", "firmware"):
        shutil.copytree(os.path.join(build_dir(), part), os.path.join(build, part))
    for d, dirs, files in os.walk(top):
        os.chmod(d, 0o755)
        for f in files:
            p = os.path.join(d, f)
            os.chmod(p, 0o755 if os.access(p, os.X_OK) else 0o644)
    home = os.path.join(top, "home")
    tmp = os.path.join(home, "tmp")
    os.makedirs(tmp)
    for d in (home, tmp):
        os.chown(d, uid, gid)
        os.chmod(d, 0o700)
    return src, build, home, tmp


def main():
    if os.geteuid() != 0:
        # Already a normal user: the demo runs as this user, from this checkout.
        argv = [os.path.join(SRC, "scripts", "demo.sh"), build_dir()] + DEMO_ARGS
        env = dict(os.environ)
        who = f"uid {os.getuid()}"
        top = None
    else:
        pw = pwd.getpwnam("nobody")
        uid, gid = pw.pw_uid, pw.pw_gid
        top = tempfile.mkdtemp(prefix="fleetgw-demo-unpriv-")
        os.chmod(top, 0o755)
        src, build, home, tmp = copy_tree(top, uid, gid)
        argv = [require("setpriv"), f"--reuid={uid}", f"--regid={gid}", "--clear-groups",
                "--no-new-privs", "--inh-caps=-all", "--bounding-set=-all", "--",
                "env", "-i", f"HOME={home}", f"TMPDIR={tmp}", f"PATH={CLEAN_PATH}",
                "LANG=C.UTF-8", os.path.join(src, "scripts", "demo.sh"), build] + DEMO_ARGS
        env = None
        who = f"nobody (uid {uid}, no supplementary groups, no capabilities)"
    try:
        print(f"running the demo's short form as {who}", flush=True)
        r = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=900)
        print(r.stdout + r.stderr, flush=True)
        lines = r.stdout.splitlines()
        expect(r.returncode == 0, f"the demo exits 0 as {who} (got {r.returncode})")
        expect(lines and lines[-1].startswith("demo: OK: 2 trusted node(s) delivered 6/6"),
               "its last line says the 2 trusted nodes' 6 messages were delivered")
        expect("Operation not permitted" not in r.stdout + r.stderr,
               "nothing was refused for want of privilege")
    finally:
        if top is not None:
            shutil.rmtree(top, ignore_errors=True)
    print("PASS")
    return 0


if __name__ == "__main__":
    run_main(main)
