"""The Debian package: `scripts/make-deb.sh` builds it (lintian: no error, no warning), it
installs on THIS machine with its maintainer scripts (dpkg -i; the issue allows "this machine
in CI"), does what it promises, survives `remove`, and `purge` leaves nothing behind but what
Debian policy keeps (the system user and group). The host is restored afterwards: the
package is purged in every case, and a user/group the test itself created is deleted.

What it proves, installed:
- the programs this tree builds (fleetgwd, fleetgwctl, fleetgw-tool, fleetgw-unbatch, whichever
  exist in the package build) are in /usr/bin with their man pages, and run (fleetgw-unbatch
  splits the example batch of the installed docs/batch-format.md);
- postinst created the system user fleetgw (sysusers.d) and /var/lib/fleetgw,
  /run/fleetgw-edge (tmpfiles.d) with the right owners; no secret was created;
- /etc/fleetgw/fleetgwd.conf is a conffile; the unit is installed disabled and
  `systemd-analyze verify` of the installed unit is clean;
- once daemon/ is in the tree: `fleetgwd --check-config` accepts a complete configuration
  (certificate files made at test time) run as user fleetgw, refuses the shipped example
  only for the site files it lacks (exit 82, naming uplink.ca_file), and `fleetgwctl --help`
  works. Before that (daemon/ absent) the test says these checks are inactive.
- a fresh install relays nothing from a node that has not attested: the installed fleetgwd
  with the installed configuration's attestation and control sections (test paths, ports
  and reference values), real brokers and TPM: an enrolled node that does not answer its
  challenge has its messages held, never relayed, and dropped at its removal; a node that
  is not enrolled is dropped; a node that attests is relayed (the control);
- remove keeps the conffile and the state; purge removes both, the run-time directories and
  systemd's enablement state.
Needs root (dpkg); as another user it is reported skipped, saying so."""

import datetime
import grp
import gzip
import json
import os
import pwd
import shutil
import subprocess
import tempfile
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from fleetgw_harness import expect, run_main

SRC = os.environ.get("FLEETGW_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
PKG = "fleetgw"
PROGRAMS = {"fleetgwd": "8", "fleetgwctl": "8", "fleetgw-tool": "1", "fleetgw-unbatch": "1"}


def run(argv, check=False, **kw):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=1800, **kw)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed ({r.returncode}):\n{r.stdout}{r.stderr}")
    return r


def dpkg(*args):
    """dpkg with a retry while another process holds the dpkg lock (other work on the host)."""
    for _ in range(60):
        r = run(["dpkg"] + list(args))
        if r.returncode != 0 and "lock" in (r.stderr + r.stdout).lower():
            time.sleep(2)
            continue
        return r
    return r


def status(pkg):
    r = run(["dpkg-query", "-W", "-f=${db:Status-Status}", pkg])
    return r.stdout.strip() if r.returncode == 0 else "not-installed"


def user_exists(name):
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def group_exists(name):
    try:
        grp.getgrnam(name)
        return True
    except KeyError:
        return False


def make_site_files(d):
    """A CA and a gateway certificate, as a provisioned site has (the key would be in the TPM:
    --check-config only reads the certificate files)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test cloud CA")])
    ca = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
          .public_key(key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
          .sign(key, hashes.SHA256()))
    gw_key = ec.generate_private_key(ec.SECP256R1())
    gw = (x509.CertificateBuilder()
          .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gw-test")]))
          .issuer_name(name).public_key(gw_key.public_key())
          .serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=2))
          .sign(key, hashes.SHA256()))
    paths = {}
    for n, c in (("ca", ca), ("gw", gw)):
        paths[n] = os.path.join(d, f"{n}.pem")
        with open(paths[n], "wb") as f:
            f.write(c.public_bytes(serialization.Encoding.PEM))
        os.chmod(paths[n], 0o644)
    return paths


def build_package(out):
    env = dict(os.environ, FLEETGW_DEB_OUT=out, FLEETGW_DEB_NOCHECK="1", FLEETGW_DEB_PARTS="main")
    r = run([os.path.join(SRC, "scripts", "make-deb.sh")], env=env)
    print(r.stdout[-3000:] + r.stderr[-3000:])
    expect(r.returncode == 0, "scripts/make-deb.sh builds the package and lintian reports no "
                              "error and no warning")
    arch = run(["dpkg-architecture", "-qDEB_HOST_ARCH"], check=True).stdout.strip()
    version = run(["dpkg-parsechangelog", "-l",
                   os.path.join(SRC, "packaging", "debian", "changelog"), "-S", "Version"],
                  check=True).stdout.strip()
    deb = os.path.join(out, f"{PKG}_{version}_{arch}.deb")
    expect(os.path.isfile(deb), f"{os.path.basename(deb)} exists")
    built = set()
    for d in os.listdir(os.path.join(out, "src")):
        if d.startswith("obj-"):
            for p in PROGRAMS:
                if os.access(os.path.join(out, "src", d, "bin", p), os.X_OK):
                    built.add(p)
    return deb, built


def check_installed(deb, built, tmp):
    files = run(["dpkg", "-L", PKG], check=True).stdout.split("\n")
    for p, sec in PROGRAMS.items():
        exe = f"/usr/bin/{p}"
        if p in built:
            expect(os.access(exe, os.X_OK), f"{exe} installed (built by this tree)")
            expect(f"/usr/share/man/man{sec}/{p}.{sec}.gz" in files, f"man page {p}({sec})")
        else:
            expect(exe not in files, f"{p} is not built by this tree and not in the package")
    expect("/usr/share/man/man5/fleetgwd.conf.5.gz" in files, "man page fleetgwd.conf(5)")
    plugin = "/usr/lib/fleetgw/fleetgw-mosquitto-auth.so"
    with open(os.path.join(SRC, "systemd", "mosquitto", "fleetgw-edge-plugin.conf")) as f:
        loads = f"plugin {plugin}" in f.read()
    expect(loads and plugin in files and os.path.isfile(plugin),
           f"the package installs the edge broker plugin the opt-in conf loads ({plugin})")

    expect(user_exists("fleetgw"), "postinst created the system user fleetgw (sysusers.d)")
    u = pwd.getpwnam("fleetgw")
    expect(u.pw_uid < 1000 and u.pw_shell.endswith("nologin"), "fleetgw: system uid, no shell")
    for g in ("fleetgw-admin", "fleetgw-read"):
        expect(group_exists(g), f"postinst created the operators' group {g} (control roles)")
        expect(grp.getgrnam(g).gr_gid != grp.getgrnam("fleetgw").gr_gid,
               f"{g} is not the daemon's group fleetgw (no edge broker socket for operators)")
    st = os.stat("/var/lib/fleetgw")
    expect((st.st_uid, st.st_mode & 0o7777) == (u.pw_uid, 0o750),
           "/var/lib/fleetgw is fleetgw's, 0750 (tmpfiles.d)")
    left = os.listdir("/var/lib/fleetgw")
    expect(left == [], f"postinst created no files (no secrets) in /var/lib/fleetgw ({left})")
    st = os.stat("/run/fleetgw-edge")
    expect(st.st_gid == grp.getgrnam("fleetgw").gr_gid and st.st_mode & 0o7777 == 0o750,
           "/run/fleetgw-edge is root:fleetgw 0750")
    check_broker_reads_snapshot()
    conffiles = run(["dpkg-query", "-W", "-f=${Conffiles}", PKG], check=True).stdout
    expect("/etc/fleetgw/fleetgwd.conf" in conffiles, "/etc/fleetgw/fleetgwd.conf is a conffile")
    expect(not os.path.exists("/etc/systemd/system/multi-user.target.wants/fleetgwd.service"),
           "the service is installed disabled (enabled by the operator once provisioned)")

    unit = "/lib/systemd/system/fleetgwd.service"
    expect(os.path.isfile(unit), f"{unit} installed")
    if "fleetgwd" in built:
        r = run(["systemd-analyze", "verify", unit])
        out = (r.stdout + r.stderr).strip()
        expect(r.returncode == 0 and out == "",
               f"systemd-analyze verify of the installed unit is clean ({out!r})")

    daemon_in_tree = os.path.exists(os.path.join(SRC, "daemon", "CMakeLists.txt"))
    if not daemon_in_tree:
        print("NOTE: daemon/ is not in this tree yet: the fleetgwd --check-config and "
              "fleetgwctl --help checks are inactive")
    else:
        for p in ("fleetgwd", "fleetgwctl"):
            expect(p in built, f"daemon/ is in the tree, so the package has {p}")
        os.makedirs(tmp, exist_ok=True)
        os.chmod(os.path.dirname(tmp), 0o755)  # user fleetgw reads the files below
        os.chmod(tmp, 0o755)
        site = make_site_files(tmp)
        conf = os.path.join(tmp, "fleetgwd.conf")
        with open("/etc/fleetgw/fleetgwd.conf") as f:
            text = f.read()
        ref = os.path.join(tmp, "reference-values.json")
        with open(ref, "w") as f:
            json.dump({"lifecycles": ["secured"], "reference_values": [
                {"measurement": os.urandom(32).hex(), "signer_id": os.urandom(32).hex(),
                 "version": "1.0.0", "description": "node application"}]}, f)
        os.chmod(ref, 0o644)
        text = (text.replace("/etc/fleetgw/cloud-ca.pem", site["ca"])
                .replace("/etc/fleetgw/gateway.crt", site["gw"])
                .replace("/etc/fleetgw/reference-values.json", ref))
        with open(conf, "w") as f:
            f.write(text)
        os.chmod(conf, 0o644)
        as_fleetgw = ["setpriv", "--reuid=fleetgw", "--regid=fleetgw", "--clear-groups",
                      "--inh-caps=-all", "--bounding-set=-all"]
        r = run(as_fleetgw + ["/usr/bin/fleetgwd", "--check-config", "--config", conf])
        expect(r.returncode == 0, "installed fleetgwd --check-config accepts a complete "
                                  f"configuration, run as user fleetgw ({r.stdout}{r.stderr})")
        r = run(["/usr/bin/fleetgwd", "--check-config", "--config", "/etc/fleetgw/fleetgwd.conf"])
        expect(r.returncode == 82 and "uplink.ca_file" in r.stdout + r.stderr,
               "the shipped example lacks only the site's certificate files (exit 82, names "
               f"uplink.ca_file): rc {r.returncode} {r.stdout}{r.stderr}")
        r = run(["/usr/bin/fleetgwctl", "--help"])
        expect(r.returncode == 0, f"installed fleetgwctl --help works ({r.returncode})")
        ctl_src = os.path.join(SRC, "daemon", "src", "fleetgwctl.c")
        hooked = os.path.exists(ctl_src) and "fleetgw/check.h" in open(ctl_src).read()
        if hooked:
            expect("check" in r.stdout + r.stderr, "fleetgwctl --help lists `check`")
            r = run(["/usr/bin/fleetgwctl", "check", "--config", conf, "--json"])
            out = json.loads(r.stdout) if r.stdout.strip().startswith("{") else {}
            names = {c.get("name") for c in out.get("checks", [])}
            expect({"config", "tpm", "certificate", "disk"} <= names,
                   f"installed `fleetgwctl check` runs the checks ({r.stdout[-300:]})")
        else:
            print("NOTE: fleetgwctl does not include fleetgw/check.h yet: `fleetgwctl check` "
                  "(ops/ check_run) is not hooked, its package check is inactive")
    if "fleetgw-tool" in built:
        r = run(["/usr/bin/fleetgw-tool", "--help"])
        expect(r.returncode == 0, "installed fleetgw-tool --help works")
    if "fleetgw-unbatch" in built:
        # dh_compress gzips documentation above 4 KiB
        docs = [d for d in ("/usr/share/doc/fleetgw/batch-format.md",
                            "/usr/share/doc/fleetgw/batch-format.md.gz") if d in files]
        expect(len(docs) == 1, f"the package installs docs/batch-format.md ({docs})")
        with (gzip.open if docs[0].endswith(".gz") else open)(docs[0], "rt",
                                                              encoding="utf-8") as f:
            text = f.read()
        block = text.split("<!-- example: batch-2 -->", 1)[1].split("```")[1]
        # the lines shown there are those of --prefix acme/site1
        r = subprocess.run(["/usr/bin/fleetgw-unbatch", "--prefix", "acme/site1"],
                           input=bytes.fromhex("".join(block.split())),
                           capture_output=True, timeout=60)
        lines = r.stdout.decode().splitlines()
        expect(r.returncode == 0 and len(lines) == 2 and all(line in text for line in lines),
               f"installed fleetgw-unbatch splits the documented example batch into the two "
               f"documented lines (rc {r.returncode}, {lines}, {r.stderr!r})")
    return [f for f in files if f and f != "/."]


def check_broker_reads_snapshot():
    """The edge broker plugin's registry snapshot as installed: the packaged configuration
    names it in /var/lib/fleetgw, the plugin's example conf reads that file, and the broker's
    user can read a file there with the mode fleetgwd gives the snapshot (0640, made by user
    fleetgw under its UMask=0077) while other users cannot: postinst added user mosquitto
    to group fleetgw."""
    with open("/etc/fleetgw/fleetgwd.conf") as f:
        snap = json.load(f).get("registry", {}).get("broker_snapshot", "")
    expect(snap.startswith("/var/lib/fleetgw/"),
           f"the installed configuration sets registry.broker_snapshot in /var/lib/fleetgw "
           f"({snap!r})")
    with open(os.path.join(SRC, "systemd", "mosquitto", "fleetgw-edge-plugin.conf")) as f:
        expect(f"plugin_opt_registry {snap}\n" in f.read(),
               "the plugin's example conf reads that snapshot")
    expect(user_exists("mosquitto"), "user mosquitto exists (mosquitto is installed)")
    members = grp.getgrnam("fleetgw").gr_mem
    expect("mosquitto" in members, f"postinst added user mosquitto to group fleetgw ({members})")
    probe = snap + ".probe"
    as_fleetgw = ["setpriv", "--reuid=fleetgw", "--regid=fleetgw", "--clear-groups"]
    r = run(as_fleetgw + ["sh", "-c", f"umask 077 && echo probe > {probe} && chmod 0640 {probe}"])
    expect(r.returncode == 0, f"user fleetgw writes {probe} ({r.stderr.strip()})")
    try:
        r = run(["setpriv", "--reuid=mosquitto", "--regid=mosquitto", "--init-groups",
                 "cat", probe])
        expect(r.returncode == 0 and r.stdout.strip() == "probe",
               f"user mosquitto reads a 0640 file of fleetgw's in /var/lib/fleetgw "
               f"({r.stderr.strip()})")
        r = run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--init-groups", "cat", probe])
        expect(r.returncode != 0, "user nobody does not")
    finally:
        os.unlink(probe)


def check_fresh_install_relays_nothing_unattested():
    """The installed fleetgwd with the installed configuration's attestation and control
    sections (only paths, ports and the reference file made for the test), against real
    brokers and a real TPM: an enrolled node that does not answer its challenge and a node
    that is not enrolled get nothing to the cloud, while a node that attests does (so the
    path works and the absence means something). Then the unattested node is removed and
    its held messages are dropped, never relayed."""
    from attest_common import MEAS_GOOD, Node, token, write_reference
    from daemon_common import PREFIX, Observer, Site
    from fleetgw_harness import Env, wait_for

    with open("/etc/fleetgw/fleetgwd.conf") as f:
        installed = json.load(f)
    att = dict(installed.get("attestation", {}))
    expect(att.get("required", True) is True,
           f"the installed configuration does not turn attestation off ({att})")
    with Env("package-relay") as env:
        site = Site(env, nodes=())
        site.binary = "/usr/bin/fleetgwd"
        att["reference_file"] = write_reference(env.path("reference.json"))
        control = dict(installed.get("control", {}))
        control["socket"] = site.control_socket
        site.start_gwd(attestation=att, control=control)
        site.wait_gwd_connected()
        obs = Observer(site, f"{PREFIX}/nodes/#")

        def ctl(*args):
            return run(["/usr/bin/fleetgwctl", "--socket", site.control_socket, *args])

        ttl = att.get("nonce_ttl_s", 60)
        good, mute, stranger = Node(site, nonce_ttl_s=ttl), Node(site, nonce_ttl_s=ttl), \
            Node(site, nonce_ttl_s=ttl)
        for n in (good, mute):
            r = ctl("node", "add", "--pub-hex", n.point.hex(), "--class", "sensor")
            expect(r.returncode == 0, f"installed fleetgwctl enrols {n.id} ({r.stderr.strip()})")
        for _ in range(3):
            mute.telemetry()
            stranger.telemetry()
        mute.wait_challenge(1)
        good.telemetry()
        nonce = good.wait_challenge(1)
        good.evidence(token(good.key, good.point, nonce, MEAS_GOOD))
        last = good.telemetry()
        wait_for(lambda: any(p == last for _, p in obs.messages()), 60,
                 "the attested node's telemetry at the cloud")

        def telemetry_of(node):
            return [p for t, p in obs.messages()
                    if t.startswith(f"{PREFIX}/nodes/{node.id}/") and not t.endswith("/state")]

        expect(len(telemetry_of(good)) == 2, "the node that attested is relayed (both messages)")
        c = site.counters()
        st = json.loads(ctl("--json", "status").stdout)
        expect(telemetry_of(mute) == [] and st["held_messages"] == 3,
               f"a fresh install relays nothing from an enrolled node that has not attested: "
               f"its 3 messages are held ({st['held_messages']} held)")
        expect(telemetry_of(stranger) == [] and c.get("not_enrolled", 0) >= 3,
               f"nor from a node that is not enrolled (not_enrolled {c.get('not_enrolled')})")
        r = ctl("node", "remove", mute.id)
        expect(r.returncode == 0, f"node remove {mute.id}")
        wait_for(lambda: json.loads(ctl("--json", "status").stdout)["held_messages"] == 0, 30,
                 "the removed node's held messages to be dropped")
        mute.telemetry()
        last = good.telemetry()
        wait_for(lambda: any(p == last for _, p in obs.messages()), 60,
                 "the attested node's next telemetry at the cloud")
        expect(telemetry_of(mute) == [] and telemetry_of(stranger) == [],
               "the unattested node's held messages were dropped at its removal, never relayed")
        site.gwd.stop()


def check_remove_purge(files):
    # State the daemon would have written, owned by fleetgw.
    spool = "/var/lib/fleetgw/spool.db"
    with open(spool, "w") as f:
        f.write("spool written by the test\n")
    u = pwd.getpwnam("fleetgw")
    os.chown(spool, u.pw_uid, u.pw_gid)

    r = dpkg("--remove", PKG)
    expect(r.returncode == 0, f"dpkg --remove ({r.stderr.strip()})")
    expect(status(PKG) == "config-files", "after remove only the configuration is kept")
    expect(os.path.isfile("/etc/fleetgw/fleetgwd.conf"), "remove keeps the conffile")
    expect(os.path.isfile(spool), "remove keeps the state in /var/lib/fleetgw")
    expect(not os.path.exists("/lib/systemd/system/fleetgwd.service"), "remove drops the unit")

    r = dpkg("--purge", PKG)
    expect(r.returncode == 0, f"dpkg --purge ({r.stderr.strip()})")
    expect(status(PKG) == "not-installed", "after purge the package is unknown to dpkg")
    left = [f for f in files if os.path.lexists(f) and not os.path.isdir(f)]
    expect(left == [], f"purge removed every file of the package (left: {left})")
    for d in ("/etc/fleetgw", "/var/lib/fleetgw", "/run/fleetgw", "/run/fleetgw-edge",
              "/usr/share/doc/fleetgw"):
        expect(not os.path.exists(d), f"purge removed {d}")
    dsh = "/var/lib/systemd/deb-systemd-helper-enabled"
    stale = [n for n in (os.listdir(dsh) if os.path.isdir(dsh) else []) if "fleetgwd" in n]
    expect(stale == [], f"no systemd enablement state left ({stale})")
    expect(user_exists("fleetgw"), "the system user fleetgw stays after purge (Debian policy)")


def main():
    if os.geteuid() != 0:
        print("SKIP: needs root: installs the .deb on this machine (dpkg -i, then purge) and "
              "checks its system user and directories; run as root, as CI does")
        return 77
    for prog in ("dpkg-buildpackage", "lintian", "setpriv"):
        if shutil.which(prog) is None:
            print(f"FAIL: {prog} not found: run scripts/deps.sh")
            return 1
    if status(PKG) != "not-installed":
        print(f"FAIL: {PKG} is already installed on this machine ({status(PKG)}): the test "
              "will not replace or purge an installation it did not make")
        return 1
    had_user, had_group = user_exists("fleetgw"), group_exists("fleetgw")
    had_tss = group_exists("tss")
    had_roles = {g: group_exists(g) for g in ("fleetgw-admin", "fleetgw-read")}
    tmp = tempfile.mkdtemp(prefix="fleetgw-package-")
    try:
        deb, built = build_package(os.path.join(tmp, "deb"))
        print(f"programs built into the package: {sorted(built) or 'none yet'}")
        r = dpkg("-i", deb)
        expect(r.returncode == 0, f"dpkg -i {os.path.basename(deb)} ({r.stdout}{r.stderr})")
        files = check_installed(deb, built, os.path.join(tmp, "site"))
        if "fleetgwd" in built:
            check_fresh_install_relays_nothing_unattested()
        check_remove_purge(files)
    finally:
        if status(PKG) != "not-installed":
            print("cleanup: purging the package")
            dpkg("--purge", PKG)
        # Restore the host: what policy keeps after purge, this test made and now removes.
        if not had_user and user_exists("fleetgw"):
            run(["userdel", "fleetgw"])
        if not had_group and group_exists("fleetgw"):
            run(["groupdel", "fleetgw"])
        if not had_tss and group_exists("tss"):
            run(["groupdel", "tss"])
        for g, had in had_roles.items():
            if not had and group_exists(g):
                run(["groupdel", g])
        shutil.rmtree(tmp, ignore_errors=True)
    expect(status(PKG) == "not-installed" and user_exists("fleetgw") == had_user,
           "the host is as before the test")
    print("PASS")
    return 0


if __name__ == "__main__":
    run_main(main)
