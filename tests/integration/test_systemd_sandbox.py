"""The sandbox of fleetgwd.service does not break the gateway, and the mosquitto edge
examples (systemd/mosquitto/) do what they say. There is no systemd as PID 1 on CI machines,
so the unit's sandbox is reproduced with unshare + setpriv:
  - a private mount namespace where every mount is read-only (ProtectSystem=strict) except
    the state and runtime directories (StateDirectory=, RuntimeDirectory=), and empty
    /home and /root (ProtectHome=);
  - an unprivileged uid/gid (nobody/nogroup standing in for fleetgw, so that the host's user
    database is left alone) with the supplementary group tss only (User=, Group=,
    SupplementaryGroups=tss), no capabilities in any set (CapabilityBoundingSet= empty,
    AmbientCapabilities= empty), no_new_privs (NoNewPrivileges=), umask 0077 (UMask=).
  Not applied here (systemd applies them at start): the system-call filter and
  MemoryDenyWriteExecute= -- instead every system call of the sandboxed daemon is recorded
  with strace and held against the unit's SystemCallFilter= and the write+exec rule --
  and DevicePolicy=, ProtectProc=, namespace and address-family restrictions.

Real components: swtpm + tpm2-abrmd (on a private bus that admits the sandbox user, as the
system bus does), an edge mosquitto configured FROM systemd/mosquitto/fleetgw-edge.conf and
its ACL files, the mosquitto drop-in's socket hand-over, a cloud mosquitto.

Always (no daemon needed):
  1. the sandbox is real: the probe runs with the uid, groups, zero capabilities and
     no_new_privs, can write only its state/runtime directories, files it makes are 0600;
  2. the edge examples: a node (TLS, certificate CN = node id) reaches only fleet/<id>/#; the
     unix-socket listener refuses the sandbox user until the drop-in's ExecStartPost= commands
     hand the socket to its group, then gives it fleet/#;
  3. `fleetgwctl check`'s library (fleetgw-ops-check) inside the sandbox: TPM, identity,
     certificates, both brokers and disk all OK as the service user.
Once daemon/ is in the tree (a missing fleetgwd build is then a failure):
  4. fleetgwd runs inside the sandbox: READY=1 and WATCHDOG=1 on NOTIFY_SOCKET, connects to
     both brokers (TPM-held key through abrmd), relays a node's telemetry to the cloud as
     <prefix>/nodes/<id>/..., keeps its spool in the state directory (0600, owned by the
     service user), and stops with exit 0 on SIGTERM; every system call it made is allowed by
     the unit's SystemCallFilter= and it mapped no memory writable and executable."""

import datetime
import grp
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from edge_broker import EdgeBroker
from fleetgw_harness import (Env, HarnessError, Tpm, expect, free_port, port_open, program,
                             require, run_main, wait_for)

SRC = os.environ.get("FLEETGW_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
HANDLE = "0x81000001"
GW_CN = "gw-sandbox"
PREFIX = "site1"

# The sandbox: runs as root inside `unshare --mount`, then drops to the service identity.
SANDBOX_SH = r"""
set -eu
uid=$1; gid=$2; groups=$3; shift 3
rw=""
while [ "$1" != "--" ]; do rw="$rw $1"; shift; done
shift
mount --make-rprivate /
for p in $rw; do mount --bind "$p" "$p"; done
fails=""
for mp in $(awk '{print $5}' /proc/self/mountinfo | sort -u); do
    case "$mp" in /proc|/proc/*|/sys|/sys/*|/dev|/dev/*) continue;; esac
    keep=0
    for p in $rw; do [ "$mp" = "$p" ] && keep=1; done
    [ $keep = 1 ] && continue
    mount -o remount,bind,ro "$mp" 2>/dev/null || fails="$fails $mp"
done
[ -z "$fails" ] || echo "sandbox: could not make read-only:$fails" >&2
mount -t tmpfs -o ro,mode=0755 tmpfs /home
mount -t tmpfs -o ro,mode=0700 tmpfs /root
exec setpriv --reuid "$uid" --regid "$gid" --groups "$groups" --no-new-privs \
    --bounding-set=-all --inh-caps=-all --ambient-caps=-all -- \
    sh -c 'umask 0077; exec "$@"' sh "$@"
"""

BUS_CONF = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={path}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""


class SharedBusTpm(Tpm):
    """swtpm + tpm2-abrmd on a private bus that, like the system bus, admits other users."""

    def start(self):
        self.start_swtpm()
        conf = os.path.join(self.env.dir, f"{self.name}-bus.conf")
        with open(conf, "w") as f:
            f.write(BUS_CONF.format(path=self.bus_path))
        self.dbus = self.env.spawn(f"{self.name}-dbus", [
            require("dbus-daemon"), f"--config-file={conf}", "--nofork", "--nopidfile"])
        wait_for(lambda: self.dbus.check_alive() or os.path.exists(self.bus_path), 10,
                 "private D-Bus bus")
        os.chmod(self.bus_path, 0o666)
        self._start_abrmd()
        return self


class Sandbox:
    def __init__(self, env, rw_dirs):
        self.env = env
        # An unprivileged identity WITH a passwd entry (D-Bus, like the system bus, looks the
        # peer's user up): nobody/nogroup stands in for fleetgw, without touching the host's
        # user database.
        pw = pwd.getpwnam("nobody")
        self.uid = pw.pw_uid
        self.gid = pw.pw_gid
        try:
            self.tss = grp.getgrnam("tss").gr_gid
        except KeyError:
            raise HarnessError("group tss not found: install tpm-udev (libtss2-dev pulls it)")
        self.rw = rw_dirs
        for d in rw_dirs:
            os.makedirs(d, exist_ok=True)
            os.chown(d, self.uid, self.gid)
            os.chmod(d, 0o750)
        self.script = env.path("sandbox.sh")
        with open(self.script, "w") as f:
            f.write(SANDBOX_SH)

    def argv(self, cmd):
        return ([require("unshare"), "--mount", "--propagation", "private", "sh", self.script,
                 str(self.uid), str(self.gid), f"{self.gid},{self.tss}"] + self.rw + ["--"]
                + cmd)

    def run(self, cmd, env=None):
        return subprocess.run(self.argv(cmd), env=env, capture_output=True, text=True,
                              timeout=120)


class LongCA:
    def __init__(self, env, name):
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.datetime.now(datetime.timezone.utc)
        self.cert = (x509.CertificateBuilder().subject_name(self.name).issuer_name(self.name)
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - datetime.timedelta(minutes=5))
                     .not_valid_after(now + datetime.timedelta(days=730))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
                     .sign(self.key, hashes.SHA256()))
        self.cert_path = env.path(f"{name}.pem")
        with open(self.cert_path, "wb") as f:
            f.write(self.cert.public_bytes(serialization.Encoding.PEM))
        os.chmod(self.cert_path, 0o644)

    def sign_csr(self, csr_path, out_path):
        with open(csr_path, "rb") as f:
            csr = x509.load_pem_x509_csr(f.read())
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(csr.subject).issuer_name(self.name)
                .public_key(csr.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5))
                .not_valid_after(now + datetime.timedelta(days=365))
                .sign(self.key, hashes.SHA256()))
        with open(out_path, "wb") as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM))
        os.chmod(out_path, 0o644)
        return out_path


def make_tpm_key(tpm):
    tpm.tool("tpm2_createprimary", "-C", "o", "-g", "sha256", "-G", "ecc256", "-c", "primary.ctx")
    tpm.tool("tpm2_create", "-C", "primary.ctx", "-G", "ecc256:ecdsa-sha256",
             "-a", "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign",
             "-u", "key.pub", "-r", "key.priv")
    tpm.tool("tpm2_load", "-C", "primary.ctx", "-u", "key.pub", "-r", "key.priv",
             "-c", "key.ctx")
    tpm.tool("tpm2_evictcontrol", "-C", "o", "-c", "key.ctx", HANDLE)
    tpm.tool("tpm2_flushcontext", "-t")


def sub_one(env, name, args, topic, wait_s=8):
    """Starts mosquitto_sub for one message; returns the Proc."""
    return env.spawn(name, [require("mosquitto_sub")] + args +
                     ["-t", topic, "-C", "1", "-W", str(wait_s), "-v", "-q", "1"])


def wait_done(proc, timeout=30):
    try:
        proc.popen.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        pass
    return proc.output()


def check_sandbox_itself(env, sb, state, runtime):
    probe = ("id -u; id -G; grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs):' "
             "/proc/self/status; "
             f"echo x > {state}/probe && stat -c %a {state}/probe; "
             f"echo x > {runtime}/probe && echo runtime-ok; "
             f"for p in /etc/fleetgw-sandbox-probe /usr/fleetgw-sandbox-probe "
             f"{env.dir}/outside-probe; do (echo x > $p) 2>/dev/null && echo WROTE $p; done; "
             "ls -A /root 2>&1 | head -1; ls -A /home | wc -l")
    r = sb.run(["sh", "-c", probe])
    out = r.stdout
    print(out + r.stderr)
    lines = out.split("\n")
    expect(r.returncode == 0, "the sandbox starts a process")
    expect("could not make read-only" not in r.stderr, "every mount was made read-only")
    expect(lines[0] == str(sb.uid), f"runs as the service uid {sb.uid}")
    expect(sorted(lines[1].split()) == sorted([str(sb.gid), str(sb.tss)]),
           "groups: its own and tss, nothing else")
    for cap in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        expect(re.search(rf"^{cap}:\s+0+$", out, re.M) is not None, f"{cap} is empty")
    expect(re.search(r"^NoNewPrivs:\s+1$", out, re.M) is not None, "no_new_privs is set")
    expect("\n600\n" in out, "files it creates are 0600 (UMask=0077)")
    expect("runtime-ok" in out, "the runtime directory is writable")
    expect("WROTE" not in out, "nothing outside the state/runtime directories is writable")
    expect(lines[-2].strip() == "0" and "Permission denied" in out,
           "/home is empty and /root unreadable")


def check_edge_examples(env, sb, edge):
    # Before the drop-in: the socket mosquitto made as root is closed to the service user.
    r = sb.run([require("mosquitto_pub"), "--unix", edge.socket_path, "-t", "fleet/n1/down/x",
                "-m", "early"])
    expect(r.returncode != 0, "without the drop-in the sandbox user cannot use the edge socket")
    edge.apply_dropin(sb.gid)
    st = os.stat(edge.socket_path)
    expect(st.st_gid == sb.gid and st.st_mode & 0o777 == 0o660,
           "the drop-in made the socket 0660 for the service group")

    n1 = edge.ca.issue("n1")
    n2 = edge.ca.issue("n2")
    gw_sub = env.spawn("gw-sub", sb.argv([require("mosquitto_sub"), "--unix", edge.socket_path,
                                          "-t", "fleet/#", "-C", "1", "-W", "8", "-v",
                                          "-q", "1"]))
    n2_sub = sub_one(env, "n2-sub", edge.tls_args(n2), "fleet/#", wait_s=6)
    time.sleep(1.0)
    r = env.run([require("mosquitto_pub")] + edge.tls_args(n1) +
                ["-t", "fleet/n2/up/spoof", "-m", "spoof", "-q", "1"])
    r = env.run([require("mosquitto_pub")] + edge.tls_args(n1) +
                ["-t", "fleet/n1/up/telemetry", "-m", "hello-from-n1", "-q", "1"])
    expect(r.returncode == 0, "node n1 publishes on fleet/n1/up/telemetry over TLS")
    out = wait_done(gw_sub)
    expect("fleet/n1/up/telemetry hello-from-n1" in out,
           "the gateway (unix socket, in the sandbox) receives it on fleet/#")
    out = wait_done(n2_sub)
    expect("hello-from-n1" not in out and "spoof" not in out,
           "node n2 subscribed to fleet/# sees neither n1's topics nor n1's spoofed publish "
           "on fleet/n2/...")
    expect("spoof" not in open(gw_sub.log_path, errors="replace").read(),
           "n1 cannot publish into fleet/n2/...")
    n1_sub = sub_one(env, "n1-sub", edge.tls_args(n1), "fleet/n1/down/#")
    time.sleep(1.0)
    r = sb.run([require("mosquitto_pub"), "--unix", edge.socket_path, "-q", "1",
                "-t", "fleet/n1/down/cmd", "-m", "reboot"])
    expect(r.returncode == 0, "the gateway publishes a command from inside the sandbox")
    expect("fleet/n1/down/cmd reboot" in wait_done(n1_sub), "node n1 receives its command")
    r = env.run([require("mosquitto_pub"), "-h", "127.0.0.1", "-p", str(edge.port),
                 "--cafile", edge.ca.cert_path, "-t", "fleet/x/up", "-m", "anon"])
    expect(r.returncode != 0, "a client without a certificate is refused on the TLS listener")


def syscall_group(name, cache={}):
    """Every system call of a systemd syscall group, nested groups expanded."""
    if name not in cache:
        r = subprocess.run(["systemd-analyze", "syscall-filter", name], capture_output=True,
                           text=True, timeout=60)
        if r.returncode != 0:
            raise HarnessError(f"systemd-analyze syscall-filter {name}: {r.stderr.strip()}")
        calls = set()
        for line in r.stdout.splitlines()[1:]:
            word = line.strip()
            if not word or word.startswith("#"):
                continue
            calls |= syscall_group(word) if word.startswith("@") else {word}
        cache[name] = calls
    return cache[name]


def unit_allowed_syscalls():
    """The system calls fleetgwd.service allows, from its SystemCallFilter= lines (the first
    is an allow list; later "~" lines remove, later plain lines add back)."""
    allowed = None
    with open(os.path.join(SRC, "systemd", "fleetgwd.service")) as f:
        for line in f:
            if not line.startswith("SystemCallFilter="):
                continue
            value = line.split("=", 1)[1].strip()
            deny = value.startswith("~")
            names = set()
            for w in value.lstrip("~").split():
                names |= syscall_group(w) if w.startswith("@") else {w}
            if allowed is None:
                if deny:
                    raise HarnessError("the unit's first SystemCallFilter= is not an allow list")
                allowed = names
            elif deny:
                allowed -= names
            else:
                allowed |= names
    if allowed is None:
        raise HarnessError("the unit has no SystemCallFilter=")
    return allowed


def audit_strace(path):
    """(system calls used, write+exec mappings) from an strace -f log."""
    used, wx = set(), []
    call = re.compile(r"^(?:\d+\s+)?(?:<\.\.\. )?([a-z0-9_]+)(?:\(| resumed>)")
    with open(path, errors="replace") as f:
        for line in f:
            m = call.match(line)
            if not m:
                continue
            used.add(m.group(1))
            if m.group(1) in ("mmap", "mprotect", "pkey_mprotect") and \
                    "PROT_WRITE" in line and "PROT_EXEC" in line:
                wx.append(line.strip())
    return used, wx


def kill_traced(pid):
    """SIGKILL whatever still runs under the strace process pid (the sandboxed daemon)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            for child in f.read().split():
                try:
                    os.kill(int(child), signal.SIGKILL)
                except ProcessLookupError:
                    pass
    except OSError:
        pass


def sandboxed_program(env, name):
    """A copy of build/bin/NAME in the test's directory, where the sandbox can see it: the
    checkout may live under /home or /root, which the sandbox hides (ProtectHome=), as it
    hides them from the installed service."""
    for hidden in ("/home", "/root"):
        expect(not (env.dir + "/").startswith(hidden + "/"),
               f"the test directory {env.dir} is outside {hidden}, which the sandbox hides "
               "(set TMPDIR elsewhere)")
    bindir = env.path("sandbox-bin")
    os.makedirs(bindir, exist_ok=True)
    os.chmod(bindir, 0o755)
    dst = os.path.join(bindir, name)
    shutil.copy2(program(name), dst)
    os.chmod(dst, 0o755)
    return dst


def run_daemon(env, sb, tpm, edge, cloud, cloud_ca, csr, state, runtime):
    fleetgwd = sandboxed_program(env, "fleetgwd")
    gw_cert = cloud_ca.sign_csr(csr, env.path("gw-cloud.crt"))
    conf = {
        "edge": {"socket": edge.socket_path, "client_id": "fleetgwd"},
        "uplink": {"host": "127.0.0.1", "port": cloud.port, "ca_file": cloud_ca.cert_path,
                   "cert_file": gw_cert, "key": f"handle:{HANDLE}", "tcti": tpm.tcti,
                   "client_id": GW_CN, "topic_prefix": PREFIX, "backoff_min_ms": 200,
                   "backoff_max_ms": 2000},
        "spool": {"path": os.path.join(state, "spool.db")},
        # the broker snapshot as the package's conf sets it: its writes (chmod, rename,
        # directory fsync) are among the system calls audited against the unit's filter
        "registry": {"path": os.path.join(state, "registry.db"),
                     "broker_snapshot": os.path.join(state, "registry.snapshot")},
        "ota": {"store_dir": os.path.join(state, "ota"),
                "state_db": os.path.join(state, "ota.db")},
        # The sandbox is under test here, not attestation: relay from every valid topic.
        "attestation": {"required": False},
        "control": {"socket": os.path.join(runtime, "control.sock"),
                    "group": grp.getgrgid(sb.gid).gr_name},
        "log": {"level": "info"},
    }
    path = env.path("fleetgwd.conf")
    with open(path, "w") as f:
        json.dump(conf, f, indent=2)
    os.chmod(gw_cert, 0o644)
    os.chmod(path, 0o644)
    r = sb.run([fleetgwd, "--check-config", "--config", path], env=tpm.client_env())
    expect(r.returncode == 0, f"fleetgwd --check-config in the sandbox ({r.stdout}{r.stderr})")

    notify_path = env.path("notify.sock")
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(notify_path)
    os.chmod(notify_path, 0o666)
    notify.settimeout(0.2)
    got = []

    def poll_notify():
        try:
            while True:
                got.extend(notify.recv(4096).decode(errors="replace").split("\n"))
        except (socket.timeout, BlockingIOError):
            pass
        return got

    e = tpm.client_env()
    e.pop("JOURNAL_STREAM", None)  # log to stderr (the test's log), not to a journal
    e.update(NOTIFY_SOCKET=notify_path, WATCHDOG_USEC="2000000")
    obs_cert = cloud_ca.issue("observer")
    obs = env.spawn("observer", [require("mosquitto_sub")] + cloud.client_args(obs_cert) +
                    ["-t", f"{PREFIX}/nodes/#", "-q", "1", "-v", "-C", "1", "-W", "90"])
    # strace (inside the sandbox, tracing only the daemon) records every system call, to hold
    # them against the unit's SystemCallFilter= and MemoryDenyWriteExecute=, which this
    # sandbox cannot apply without systemd.
    strace_log = os.path.join(runtime, "fleetgwd.strace")
    gwd = env.spawn("fleetgwd", sb.argv([require("strace"), "-f", "-qq", "-o", strace_log,
                                         fleetgwd, "--config", path]), env=e)
    try:
        wait_for(lambda: gwd.check_alive() or "READY=1" in poll_notify(), 60,
                 "READY=1 from the sandboxed fleetgwd")
        wait_for(lambda: gwd.check_alive() or poll_notify().count("WATCHDOG=1") >= 2, 30,
                 "WATCHDOG=1 pings")
        expect(True, "sandboxed fleetgwd sent READY=1 and WATCHDOG=1")
        wait_for(lambda: gwd.check_alive() or f"as {GW_CN}" in cloud.log() or
                 f"u'{GW_CN}'" in cloud.log(), 60, "fleetgwd on the cloud broker (TPM key via abrmd)")
        wait_for(lambda: gwd.check_alive() or "as fleetgwd" in edge.log(), 30,
                 "fleetgwd on the edge broker's unix socket")
        expect(True, "sandboxed fleetgwd connected to both brokers")
        time.sleep(1.0)
        n3 = edge.ca.issue("n3")
        r = env.run([require("mosquitto_pub")] + edge.tls_args(n3) +
                    ["-t", "fleet/n3/up/telemetry", "-m", "sandboxed-relay", "-q", "1"])
        expect(r.returncode == 0, "node n3 published telemetry")
        out = wait_done(obs, 90)
        expect(f"{PREFIX}/nodes/n3/" in out and "sandboxed-relay" in out,
               f"the telemetry reached the cloud through the sandboxed daemon ({out.strip()[-200:]})")
        ctl = os.path.join(runtime, "control.sock")
        st = os.stat(ctl)
        expect(st.st_gid == sb.gid and st.st_mode & 0o007 == 0,
               f"the control socket is in the runtime directory, group {sb.gid}, closed to others "
               f"(mode {st.st_mode & 0o777:o})")
        spool = os.path.join(state, "spool.db")
        st = os.stat(spool)
        expect(st.st_uid == sb.uid and st.st_mode & 0o077 == 0,
               "the spool lives in the state directory, owned by the service user, mode 0600")
        snap = os.path.join(state, "registry.snapshot")
        wait_for(lambda: os.path.exists(snap), 10, "the broker snapshot")
        st = os.stat(snap)
        expect(st.st_uid == sb.uid and st.st_mode & 0o777 == 0o640,
               "fleetgwd (sandboxed, UMask=0077) writes the broker snapshot mode 0640 in the "
               f"state directory ({st.st_mode & 0o777:o})")
        # SIGTERM to fleetgwd itself (the spawned process is strace, its parent); strace exits
        # with the daemon's status.
        with open(f"/proc/{gwd.pid}/task/{gwd.pid}/children") as f:
            children = [int(x) for x in f.read().split()]
        expect(len(children) == 1, f"fleetgwd runs under strace (pid {children})")
        os.kill(children[0], signal.SIGTERM)
        rc = gwd.popen.wait(timeout=60)
        expect(rc == 0, f"fleetgwd exits 0 on SIGTERM in the sandbox (got {rc})")
    finally:
        # The harness stops strace; a daemon strace leaves behind would keep running.
        kill_traced(gwd.pid)
    notify.close()
    used, wx = audit_strace(strace_log)
    allowed = unit_allowed_syscalls()
    expect(len(used) > 20, f"strace recorded the daemon's system calls ({len(used)} distinct)")
    blocked = sorted(used - allowed - {"execve"})
    expect(not blocked, "every system call fleetgwd made is allowed by the unit's "
                        f"SystemCallFilter= (blocked: {blocked})")
    expect(not wx, f"no writable+executable mapping (MemoryDenyWriteExecute=): {wx[:3]}")


def main():
    for prog in ("unshare", "setpriv", "mount", "systemd-analyze"):
        require(prog)
    if os.geteuid() != 0:
        print("SKIP: needs root: reproducing the unit's sandbox takes a mount namespace "
              "(unshare --mount) and switching to the service user (setpriv); run as root, "
              "as CI does")
        return 77
    with Env("systemd-sandbox") as env:
        os.chmod(env.dir, 0o755)  # the sandbox user reads its configuration below
        state = env.path("var-lib-fleetgw")
        runtime = env.path("run-fleetgw")
        sb = Sandbox(env, [state, runtime])
        check_sandbox_itself(env, sb, state, runtime)

        tpm = SharedBusTpm(env).start()
        make_tpm_key(tpm)
        long_ca = LongCA(env, "cloud-ca-long")
        csr = env.path("gw.csr")
        env.run([require("openssl"), "req", "-provider", "tpm2", "-provider", "default",
                 "-propquery", "?provider=tpm2", "-new", "-key", f"handle:{HANDLE}",
                 "-subj", f"/CN={GW_CN}", "-out", csr], env=tpm.client_env(), check=True)
        gw_cert = long_ca.sign_csr(csr, env.path("gw.crt"))
        cloud_ca = env.ca("cloud-ca")
        cloud = env.start_mosquitto(cloud_ca, name="cloud", unix_socket=False,
                                    superusers=[GW_CN, "observer"])
        edge_ca = env.ca("manufacturer-ca")
        edge = EdgeBroker(env, edge_ca).start()
        for p in (cloud_ca.cert_path, edge_ca.cert_path):
            os.chmod(p, 0o644)

        check_edge_examples(env, sb, edge)

        # fleetgwctl check's library as the service user, inside the sandbox.
        conf = {
            "uplink": {"host": "127.0.0.1", "port": cloud.port, "ca_file": long_ca.cert_path,
                       "cert_file": gw_cert, "key": f"handle:{HANDLE}", "tcti": tpm.tcti,
                       "client_id": GW_CN},
            "edge": {"socket": edge.socket_path},
            "spool": {"path": os.path.join(state, "spool.db"), "max_bytes": 1 << 20},
            # attestation is required by default: its reference values, readable by the
            # service user
            "attestation": {"reference_file": env.path("check-reference.json")},
        }
        with open(env.path("check-reference.json"), "w") as f:
            json.dump({"lifecycles": ["secured"], "reference_values": []}, f)
        os.chmod(env.path("check-reference.json"), 0o644)
        cpath = env.path("check.conf")
        with open(cpath, "w") as f:
            json.dump(conf, f)
        os.chmod(cpath, 0o644)
        r = sb.run([sandboxed_program(env, "fleetgw-ops-check"), "--config", cpath], env=tpm.client_env())
        print(r.stdout + r.stderr)
        expect(r.returncode == 0, "every check of `fleetgwctl check` passes as the service "
                                  "user inside the sandbox (TPM through tss/abrmd, brokers, "
                                  "state directory)")

        if os.path.exists(os.path.join(SRC, "daemon", "CMakeLists.txt")):
            run_daemon(env, sb, tpm, edge, cloud, cloud_ca, csr, state, runtime)
        else:
            print("NOTE: daemon/ is not in this tree yet: the sandboxed fleetgwd scenario "
                  "(step 4) is inactive")
    print("PASS")
    return 0


if __name__ == "__main__":
    run_main(main)
