"""fleetgw test harness: starts REAL components on free loopback ports in a per-test temp
dir, and always stops them (also when the test fails), killing only the PIDs it started.

    from fleetgw_harness import Env
    with Env("my-test") as env:
        tpm = env.start_tpm()                 # swtpm + tpm2-abrmd on a private D-Bus
        ca = env.ca("edge-ca")                # throwaway CA made at test time
        broker = env.start_mosquitto(ca)      # TLS, client certs required, ACL, unix socket
        ...

A component that cannot be found is a test FAILURE with a clear message (HarnessError),
never a silent skip. Vectors from ../shared/vectors are optional: vectors_dir() returns None
when absent and the test calls skip() (exit 77, a visible ctest skip).
"""

import datetime
import ipaddress
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SKIP = 77


class HarnessError(Exception):
    """A component is missing or did not come up: the test fails with this message."""


def log(msg):
    print(f"[harness] {msg}", flush=True)


def skip(why):
    print(f"SKIP: {why}", flush=True)
    sys.exit(SKIP)


def require(prog):
    """Absolute path of a program, or HarnessError naming the Debian package to install."""
    packages = {
        "swtpm": "swtpm", "tpm2-abrmd": "tpm2-abrmd", "dbus-daemon": "dbus",
        "mosquitto": "mosquitto", "mosquitto_pub": "mosquitto-clients",
        "mosquitto_sub": "mosquitto-clients", "qemu-system-arm": "qemu-system-arm",
        "openssl": "openssl",
    }
    path = shutil.which(prog, path=os.environ.get("PATH", "") + ":/usr/sbin:/usr/bin:/sbin")
    if path is None:
        if prog.startswith("tpm2_"):
            pkg = "tpm2-tools"
        else:
            pkg = packages.get(prog, prog)
        raise HarnessError(f"required program '{prog}' not found: install the Debian package "
                           f"'{pkg}' (scripts/deps.sh does it)")
    return path


def build_dir():
    d = os.environ.get("FLEETGW_BUILD_DIR")
    if not d:
        here = os.path.dirname(os.path.abspath(__file__))
        d = os.path.join(here, "..", "..", "build")
    return os.path.abspath(d)


def program(name):
    """A program built by this tree (build/bin/NAME); HarnessError if it was not built."""
    path = os.path.join(build_dir(), "bin", name)
    if not os.access(path, os.X_OK):
        raise HarnessError(f"{path} not built (run the build first)")
    return path


def vectors_dir():
    d = os.environ.get("FLEETGW_VECTORS")
    if d and os.path.isdir(d):
        return os.path.abspath(d)
    return None


def free_port(count=1):
    """A loopback TCP port P such that P..P+count-1 are all free right now."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base + count > 65535:
            continue
        ok = True
        for p in range(base, base + count):
            with socket.socket() as t:
                try:
                    t.bind(("127.0.0.1", p))
                except OSError:
                    ok = False
                    break
        if ok:
            return base
    raise HarnessError("no free loopback port found")


def wait_for(pred, timeout, what, interval=0.05):
    """Polls pred() until it is truthy; HarnessError naming `what` after `timeout` seconds.
    (A bound on waiting for a component to come up, not a performance limit.)"""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            v = pred()
            if v:
                return v
        except Exception as e:  # noqa: BLE001 - remembered for the message
            last = e
        time.sleep(interval)
    raise HarnessError(f"timed out after {timeout}s waiting for {what}"
                       + (f" (last error: {last})" if last else ""))


def port_open(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


class Proc:
    """A process the harness started; stop() kills exactly this PID."""

    def __init__(self, name, argv, env, cwd, log_path, stdin=subprocess.DEVNULL, user=None):
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self.logf = open(log_path, "ab")
        self.popen = subprocess.Popen(argv, env=env, cwd=cwd, stdin=stdin, stdout=self.logf,
                                      stderr=subprocess.STDOUT, start_new_session=True,
                                      user=user, group=None if user is None else user,
                                      extra_groups=None if user is None else [])
        self.pid = self.popen.pid

    def alive(self):
        return self.popen.poll() is None

    def send_signal(self, sig):
        if self.alive():
            os.kill(self.pid, sig)

    def stop(self, sig=signal.SIGTERM, timeout=10):
        if self.alive():
            try:
                os.kill(self.pid, sig)
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.popen.wait()
            except ProcessLookupError:
                pass
        self.logf.close()
        return self.popen.returncode

    def output(self):
        try:
            with open(self.log_path, "r", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def check_alive(self):
        if not self.alive():
            raise HarnessError(f"{self.name} exited with {self.popen.returncode}:\n"
                               + self.output()[-3000:])

    def wait_output(self, timeout=30):
        """Lets the process finish by itself (at most timeout s) and returns its output."""
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
        return self.output()


class CA:
    """A throwaway P-256 certificate authority made at test time."""

    def __init__(self, directory, name):
        self.dir = directory
        self.name = name
        self.key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.datetime.now(datetime.timezone.utc)
        self.cert = (x509.CertificateBuilder()
                     .subject_name(subject).issuer_name(subject)
                     .public_key(self.key.public_key())
                     .serial_number(x509.random_serial_number())
                     .not_valid_before(now - datetime.timedelta(minutes=5))
                     .not_valid_after(now + datetime.timedelta(days=2))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
                     .add_extension(x509.KeyUsage(False, False, False, False, False, True, True,
                                                  False, False), True)
                     .sign(self.key, hashes.SHA256()))
        self.cert_path = os.path.join(directory, f"{name}.crt")
        with open(self.cert_path, "wb") as f:
            f.write(self.cert.public_bytes(serialization.Encoding.PEM))

    def _sign(self, subject_cn, public_key, server, sans, days=1):
        now = datetime.datetime.now(datetime.timezone.utc)
        b = (x509.CertificateBuilder()
             .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject_cn)]))
             .issuer_name(self.cert.subject)
             .public_key(public_key)
             .serial_number(x509.random_serial_number())
             .not_valid_before(now - datetime.timedelta(minutes=5))
             .not_valid_after(now + datetime.timedelta(days=days))
             .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
             .add_extension(x509.ExtendedKeyUsage(
                 [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]),
                 False))
        if sans:
            names = []
            for s in sans:
                try:
                    names.append(x509.IPAddress(ipaddress.ip_address(s)))
                except ValueError:
                    names.append(x509.DNSName(s))
            b = b.add_extension(x509.SubjectAlternativeName(names), False)
        return b.sign(self.key, hashes.SHA256())

    def issue(self, cn, server=False, sans=None, days=1):
        """Key + certificate files for cn; returns (cert_path, key_path)."""
        key = ec.generate_private_key(ec.SECP256R1())
        cert = self._sign(cn, key.public_key(), server, sans, days)
        cert_path = os.path.join(self.dir, f"{self.name}-{cn}.crt")
        key_path = os.path.join(self.dir, f"{self.name}-{cn}.key")
        with open(cert_path, "wb") as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM))
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
        return cert_path, key_path

    def sign_csr(self, csr_path, out_path, server=False, sans=None):
        with open(csr_path, "rb") as f:
            csr = x509.load_pem_x509_csr(f.read())
        if not csr.is_signature_valid:
            raise HarnessError(f"CSR {csr_path} has an invalid signature")
        cn = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
        cert = self._sign(cn, csr.public_key(), server, sans)
        with open(out_path, "wb") as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM))
        return out_path


class Tpm:
    """swtpm (TCP on loopback) behind tpm2-abrmd on a private D-Bus session bus."""

    def __init__(self, env, name="tpm"):
        self.env = env
        self.name = name
        self.state = os.path.join(env.dir, f"{name}-state")
        os.makedirs(self.state, exist_ok=True)
        self.port = None
        self.swtpm = None
        self.dbus = None
        self.abrmd = None
        self.bus_path = os.path.join(env.dir, f"{name}-bus")
        self.bus_address = f"unix:path={self.bus_path}"
        # Each Tpm gets its own abrmd bus name so several can share one bus if needed.
        self.tcti = "tabrmd:bus_type=session"

    def client_env(self, base=None):
        e = dict(base if base is not None else os.environ)
        e["DBUS_SESSION_BUS_ADDRESS"] = self.bus_address
        e["TPM2TOOLS_TCTI"] = self.tcti
        e["TPM2OPENSSL_TCTI"] = self.tcti
        return e

    def start_swtpm(self):
        swtpm = require("swtpm")
        self.port = free_port(2)
        argv = [swtpm, "socket", "--tpmstate", f"dir={self.state}", "--tpm2",
                "--server", f"type=tcp,port={self.port},bindaddr=127.0.0.1",
                "--ctrl", f"type=tcp,port={self.port + 1},bindaddr=127.0.0.1",
                "--flags", "not-need-init,startup-clear"]
        self.swtpm = self.env.spawn(f"{self.name}-swtpm", argv)
        wait_for(lambda: self.swtpm.check_alive() or port_open(self.port), 15,
                 f"swtpm on 127.0.0.1:{self.port}")
        self.swtpm_tcti = f"swtpm:host=127.0.0.1,port={self.port}"

    def start(self):
        self.start_swtpm()
        dbus = require("dbus-daemon")
        abrmd = require("tpm2-abrmd")
        require("tpm2_getrandom")
        self.dbus = self.env.spawn(f"{self.name}-dbus", [
            dbus, "--session", "--nofork", "--nopidfile", f"--address={self.bus_address}"])
        wait_for(lambda: self.dbus.check_alive() or os.path.exists(self.bus_path), 10,
                 "private D-Bus session bus")
        self._start_abrmd(abrmd)
        return self

    def _start_abrmd(self, abrmd=None):
        abrmd = abrmd or require("tpm2-abrmd")
        env = dict(os.environ, DBUS_SESSION_BUS_ADDRESS=self.bus_address)
        self.abrmd = self.env.spawn(f"{self.name}-abrmd", [
            abrmd, "--session", "--allow-root", f"--tcti={self.swtpm_tcti}"], env=env)

        def ready():
            self.abrmd.check_alive()
            r = subprocess.run([require("tpm2_getrandom"), "-T", self.tcti, "--hex", "4"],
                               env=self.client_env(), capture_output=True, timeout=10)
            return r.returncode == 0

        wait_for(ready, 20, "tpm2-abrmd to answer on the private bus")

    def restart(self):
        """Stops abrmd and swtpm and starts them again on the same state dir."""
        self.abrmd.stop()
        self.swtpm.stop()
        self.start_swtpm()
        self._start_abrmd()

    def identity(self, *args, env=None, tcti=None):
        """Runs `fleetgwctl identity ARGS --tcti <this TPM>` and returns the CompletedProcess
        (stdout/stderr text); never raises on failure."""
        argv = [program("fleetgwctl"), "identity"] + list(args) + ["--tcti", tcti or self.tcti]
        r = subprocess.run(argv, env=env if env is not None else self.client_env(),
                           capture_output=True, text=True, cwd=self.env.dir, timeout=120)
        log(f"identity {' '.join(args)} -> {r.returncode}" +
            (f": {r.stderr.strip()[-300:]}" if r.stderr.strip() else ""))
        return r

    def tls_probe(self, broker, cafile, key, cert, topic, message=None, wait=30):
        """Runs fleetgw-tls-probe (mutual TLS with the key in this TPM: "handle:0x81..." or a
        TSS2 key file) against broker on 127.0.0.1: subscribe to topic, publish message, wait
        for it back. Prints its output and returns the CompletedProcess (0 ok, 4 refused)."""
        argv = [program("fleetgw-tls-probe"), "--port", str(broker.port), "--cafile", cafile,
                "--tcti", self.tcti, "--key", key, "--cert", cert, "--host", "127.0.0.1",
                "--topic", topic, "--wait", str(wait)]
        if message is not None:
            argv += ["--message", message]
        r = self.env.run(argv, env=self.client_env())
        print(r.stdout + r.stderr)
        return r

    def tool(self, *args, check=True):
        """Runs a tpm2-tools command against this TPM (through abrmd)."""
        argv = [require(args[0])] + list(args[1:])
        r = subprocess.run(argv, env=self.client_env(), capture_output=True, text=True,
                           cwd=self.env.dir, timeout=60)
        if check and r.returncode != 0:
            raise HarnessError(f"{' '.join(args)} failed ({r.returncode}): {r.stderr.strip()}")
        return r


class Mosquitto:
    """A mosquitto broker with a generated configuration.

    TLS listener on 127.0.0.1:port (server cert from `ca` unless server_cert is given),
    client certificates required, username = certificate CN, ACL `fleet/%u/#` for nodes plus
    full access for the names in `superusers`, and a unix-socket listener (no TLS) for the
    gateway when unix_socket=True.

    publish_ceiling=N loads the test plugin tests/plugins/publish_ceiling.c (built into
    build/tests/plugins/): like AWS IoT Core, a client connection that publishes more than N
    times in any 1 s is denied and disconnected; ceiling_kicks() and ceiling_max() read what
    it logged."""

    def __init__(self, env, ca, name="broker", require_certificate=True, unix_socket=True,
                 superusers=(), server_cert=None, acl_extra=(), persistence=True,
                 tls=True, extra_conf=(), max_connections=None, publish_ceiling=None):
        """max_connections: the node count the TLS listener is configured for (the open-file
        limit is raised for it, or the test fails saying so); None: mosquitto's default."""
        self.env = env
        self.ca = ca
        self.name = name
        self.port = free_port()
        self.dir = os.path.join(env.dir, name)
        os.makedirs(self.dir, exist_ok=True)
        self.socket_path = os.path.join(self.dir, "mosquitto.sock") if unix_socket else None
        if server_cert is None and tls:
            server_cert = ca.issue(f"{name}-server", server=True, sans=["127.0.0.1", "localhost"])
        self.server_cert = server_cert
        self.acl_path = os.path.join(self.dir, "acl")
        with open(self.acl_path, "w") as f:
            for su in superusers:
                f.write(f"user {su}\ntopic readwrite #\n\n")
            for line in acl_extra:
                f.write(line + "\n")
            f.write("pattern readwrite fleet/%u/#\n")
        lines = [
            f"# generated by the fleetgw test harness for {name}",
            "per_listener_settings false",
            "allow_anonymous false" if tls else "allow_anonymous true",
            f"acl_file {self.acl_path}",
            "max_queued_messages 100000",
            "max_inflight_messages 100",
            "log_type error", "log_type warning", "log_type notice", "log_type information",
            "log_type subscribe",
            f"log_dest file {os.path.join(self.dir, 'mosquitto.log')}",
            "connection_messages true",
        ]
        self.ceiling_log = None
        if publish_ceiling is not None:
            plugin = os.path.join(build_dir(), "tests", "plugins",
                                  "fleetgw-test-publish-ceiling.so")
            if not os.path.isfile(plugin):
                raise HarnessError(f"{plugin} not built (run the build first)")
            self.ceiling_log = os.path.join(self.dir, "publish-ceiling.log")
            # the plugin's kicks run on the broker's tick: per_listener_settings false (above)
            lines += [f"plugin {plugin}", f"plugin_opt_ceiling {int(publish_ceiling)}",
                      f"plugin_opt_log {self.ceiling_log}"]
        if persistence:
            lines += ["persistence true", f"persistence_location {self.dir}/",
                      "autosave_interval 1"]
        if os.geteuid() == 0:
            lines.append("user root")
        lines.append(f"listener {self.port} 127.0.0.1")
        if max_connections is not None:
            raise_nofile(fds_for_nodes(max_connections), f"broker {name} for "
                         f"{max_connections} connections")
            lines.append(f"max_connections {max_connections}")
        if tls:
            lines += [f"cafile {ca.cert_path}", f"certfile {server_cert[0]}",
                      f"keyfile {server_cert[1]}", "tls_version tlsv1.2"]
            if require_certificate:
                lines += ["require_certificate true", "use_identity_as_username true"]
        if self.socket_path:
            lines.append(f"listener 0 {self.socket_path}")
        lines += list(extra_conf)
        self.conf_path = os.path.join(self.dir, "mosquitto.conf")
        with open(self.conf_path, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.proc = None

    def start(self):
        exe = require("mosquitto")
        self.proc = self.env.spawn(self.name, [exe, "-c", self.conf_path])
        wait_for(lambda: self.proc.check_alive() or port_open(self.port), 15,
                 f"mosquitto {self.name} on 127.0.0.1:{self.port}")
        if self.socket_path:
            wait_for(lambda: os.path.exists(self.socket_path), 10,
                     f"mosquitto {self.name} unix socket")
        return self

    def stop(self):
        if self.proc:
            self.proc.stop()
            if self.socket_path and os.path.exists(self.socket_path):
                os.unlink(self.socket_path)

    def restart(self):
        self.stop()
        return self.start()

    def log(self):
        try:
            with open(os.path.join(self.dir, "mosquitto.log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def _ceiling_lines(self, kind):
        if self.ceiling_log is None:
            raise HarnessError(f"broker {self.name} was started without publish_ceiling")
        try:
            with open(self.ceiling_log) as f:
                text = f.read()
        except FileNotFoundError:
            return []
        out = []
        for line in text.splitlines():
            parts = line.split(" ")
            if len(parts) == 3 and parts[0] == kind:
                out.append((parts[1], int(parts[2])))
        return out

    def ceiling_kicks(self):
        """(client id, publishes in its 1 s window) of every client the ceiling disconnected,
        in order."""
        return self._ceiling_lines("kick")

    def ceiling_max(self):
        """client id -> the highest count of its publishes in any 1 s window, over the
        connections of that id that have ended (logged at disconnect and at broker stop)."""
        best = {}
        for cid, n in self._ceiling_lines("max"):
            best[cid] = max(n, best.get(cid, 0))
        return best

    def client_ids(self, username):
        """Client ids the broker has seen connect with this username (certificate CN)."""
        ids = set()
        for line in self.log().splitlines():
            if f"u'{username}'" in line and " as " in line:
                ids.add(line.split(" as ", 1)[1].split(" ", 1)[0])
        return ids

    def subscriptions(self, username):
        """(client id, qos, topic) of every SUBSCRIBE made by clients of this username."""
        ids = self.client_ids(username)
        subs = []
        for line in self.log().splitlines():
            parts = line.split(" ")
            if len(parts) == 4 and parts[1] in ids and parts[2].isdigit():
                subs.append((parts[1], int(parts[2]), parts[3]))
        return subs

    def wait_subscribed(self, username, count=1, timeout=20):
        wait_for(lambda: len(self.subscriptions(username)) >= count, timeout,
                 f"{count} subscription(s) by {username} on {self.name}")

    def client_args(self, cert=None):
        """mosquitto_pub/sub arguments for this broker with a client certificate."""
        args = ["-h", "127.0.0.1", "-p", str(self.port)]
        if self.server_cert is not None:
            args += ["--cafile", self.ca.cert_path]
            if cert:
                args += ["--cert", cert[0], "--key", cert[1]]
        return args


def raise_nofile(need, what):
    """Raises this process's open-file limit, soft to hard (mosquitto and fleet-sim inherit it),
    and fails clearly when even the hard limit is below `need` (`what` says for what).
    Returns the soft limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    if soft != resource.RLIM_INFINITY and soft < need:
        raise HarnessError(f"the open-file limit is {soft} (soft and hard) but {what} needs "
                           f"{need} descriptors per process: raise the hard limit "
                           f"(ulimit -Hn {need}, or LimitNOFILE= for a service) and run again")
    return soft


def fds_for_nodes(nodes):
    """Descriptors a process serving `nodes` connections needs: one each and room for its
    own files, logs and listeners."""
    return nodes + 256


class Env:
    """Per-test temp dir and the components started in it; tears everything down on exit."""

    def __init__(self, name, keep=None):
        self.name = name
        self.dir = tempfile.mkdtemp(prefix=f"fleetgw-{name}-")
        self.procs = []
        self.keep = keep if keep is not None else bool(os.environ.get("FLEETGW_KEEP_TMP"))
        self._old_term = None

    def __enter__(self):
        log(f"{self.name}: work dir {self.dir}")

        def on_term(signum, frame):
            raise SystemExit(f"terminated by signal {signum}")

        self._old_term = signal.signal(signal.SIGTERM, on_term)
        return self

    def __exit__(self, exc_type, exc, tb):
        failed = exc_type is not None and not (exc_type is SystemExit and
                                               (exc is None or exc.code in (0, None)))
        for p in reversed(self.procs):
            try:
                p.stop()
            except Exception as e:  # noqa: BLE001 - keep tearing down
                log(f"stopping {p.name} (pid {p.pid}): {e}")
        if failed:
            for p in self.procs:
                out = p.output()
                if out:
                    log(f"--- last output of {p.name} (pid {p.pid}) ---\n{out[-2500:]}")
        if self._old_term is not None:
            signal.signal(signal.SIGTERM, self._old_term)
        if self.keep or failed:
            log(f"kept {self.dir}")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)
        if exc_type is HarnessError:
            print(f"FAIL: {exc}", flush=True)
            sys.exit(1)
        return False

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def spawn(self, name, argv, env=None, cwd=None, stdin=subprocess.DEVNULL, user=None):
        """Starts argv (as `user` when given: the harness runs as root) logging to NAME.log."""
        p = Proc(name, argv, env if env is not None else os.environ.copy(), cwd or self.dir,
                 self.path(f"{name}.log"), stdin=stdin, user=user)
        self.procs.append(p)
        log(f"started {name} pid {p.pid}: {' '.join(argv[:6])}{' ...' if len(argv) > 6 else ''}")
        return p

    def ca(self, name):
        return CA(self.dir, name)

    def start_tpm(self, name="tpm"):
        return Tpm(self, name).start()

    def start_mosquitto(self, ca, name="broker", **kw):
        return Mosquitto(self, ca, name=name, **kw).start()

    def start_observer(self, broker, ca, topic, name="observer"):
        """An independent mosquitto_sub on broker as `name` (certificate from ca; start the
        broker with superusers=[name]) for one QoS 1 message on topic. Returns its Proc once the
        broker has the subscription; proc.wait_output() then tells what it saw."""
        cert = ca.issue(name)
        sub = self.spawn(f"{name}-sub", [require("mosquitto_sub")] + broker.client_args(cert)
                         + ["-t", topic, "-q", "1", "-C", "1", "-W", "60", "-v"])
        broker.wait_subscribed(name)
        return sub

    def start_impostor_brokers(self, ca):
        """Two brokers that a client trusting only ca must refuse: one whose server certificate
        is from another CA, and one with a certificate from ca for another host name
        (broker.invalid). Returns (other_ca_broker, other_host_broker, other_ca)."""
        other_ca = self.ca("rogue-ca")
        rogue = self.start_mosquitto(ca, name="rogue", server_cert=other_ca.issue(
            "rogue-server", server=True, sans=["127.0.0.1"]))
        other_host = self.start_mosquitto(ca, name="otherhost", server_cert=ca.issue(
            "otherhost-server", server=True, sans=["broker.invalid"]))
        return rogue, other_host, other_ca

    def run(self, argv, env=None, check=False, timeout=120, input=None):
        r = subprocess.run(argv, env=env, cwd=self.dir, capture_output=True, text=True,
                           timeout=timeout, input=input)
        if check and r.returncode != 0:
            raise HarnessError(f"{' '.join(argv)} failed ({r.returncode}):\n{r.stdout}{r.stderr}")
        return r


def run_main(main):
    """The last line of a test script: exits with main()'s code, or prints "FAIL: <sentence>"
    and exits 1 when an expect() did not hold or a component could not be had."""
    try:
        sys.exit(main())
    except (AssertionError, HarnessError) as e:
        print(f"FAIL: {e}")
        sys.exit(1)


def proc_cpu_s(pid):
    """utime + stime of a process in seconds (0 once it is gone): the benchmarks' CPU."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_vm_kib(pid, key):
    """A /proc/PID/status size (VmRSS, VmHWM, ...) in KiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise HarnessError(f"no {key} in /proc/{pid}/status")


def expect(cond, what):
    """A test assertion that reads as a sentence in the failure output."""
    if not cond:
        raise AssertionError(what)
    print(f"ok - {what}", flush=True)
