"""Shared set-up for the fleetgwd integration tests (tests/integration/test_daemon_*.py):
a real TPM (swtpm + tpm2-abrmd) holding the gateway key, an edge mosquitto (TLS for nodes,
unix socket + password for fleetgwd), a cloud mosquitto (mutual TLS), and fleetgwd itself.
Everything is started through tests/harness/fleetgw_harness.py."""

import copy
import json
import os
import socket
import sqlite3
import subprocess
import time

from fleetgw_harness import HarnessError, program, require, wait_for

HANDLE = "0x81000001"
PREFIX = "site1"
GW_CN = "gw-test"


def make_tpm_key(tpm):
    """A persistent P-256 signing key created inside the TPM (it cannot leave it)."""
    tpm.tool("tpm2_createprimary", "-C", "o", "-g", "sha256", "-G", "ecc256", "-c", "primary.ctx")
    tpm.tool("tpm2_create", "-C", "primary.ctx", "-G", "ecc256:ecdsa-sha256",
             "-a", "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign",
             "-u", "key.pub", "-r", "key.priv")
    tpm.tool("tpm2_load", "-C", "primary.ctx", "-u", "key.pub", "-r", "key.priv", "-c", "key.ctx")
    tpm.tool("tpm2_evictcontrol", "-C", "o", "-c", "key.ctx", HANDLE)
    tpm.tool("tpm2_flushcontext", "-t")


class Site:
    """TPM + edge broker + cloud broker + gateway certificate; fleetgwd started on demand."""

    # What twin() changes for a second daemon (class defaults, so that a subclass with an
    # __init__ of its own, tests/demo's FleetSite, has them too).
    binary = None  # None: this build's fleetgwd
    tag = ""
    conf_name = "fleetgwd.conf"
    client_id = GW_CN
    registry = None  # None: <env>/registry.db
    cloud_kw = {}  # extra harness Mosquitto options of the cloud broker (e.g. publish_ceiling)

    def __init__(self, env, nodes=("n1", "n2", "n3")):
        self.env = env
        self.tpm = env.start_tpm()
        make_tpm_key(self.tpm)
        self.cloud_ca = env.ca("cloud-ca")
        csr = env.path("gw.csr")
        env.run([require("openssl"), "req", "-provider", "tpm2", "-provider", "default",
                 "-propquery", "?provider=tpm2", "-new", "-key", f"handle:{HANDLE}",
                 "-subj", f"/CN={GW_CN}", "-out", csr], env=self.tpm.client_env(), check=True)
        self.gw_cert = self.cloud_ca.sign_csr(csr, env.path("gw.crt"))
        self.cloud = env.start_mosquitto(self.cloud_ca, name="cloud", unix_socket=False,
                                         superusers=[GW_CN, "observer", "operator"],
                                         **self.cloud_kw)
        self.operator = self.cloud_ca.issue("operator")
        self.edge_ca = env.ca("edge-ca")
        self.edge_pw = env.path("edge.passwd")
        # A secret: fleetgwd refuses a password file its group or others may read.
        with open(os.open(env.path("edge.secret"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600),
                  "w") as f:
            f.write("edge-secret-" + os.urandom(6).hex() + "\n")
        with open(env.path("edge.secret")) as f:
            secret = f.read().strip()
        env.run([require("mosquitto_passwd"), "-b", "-c", self.edge_pw, "fleetgwd", secret],
                check=True)
        self.edge = self.start_edge_like("edge")
        self.node_certs = {n: self.edge_ca.issue(n) for n in nodes}
        self.spool = env.path("spool.db")
        self.control_socket = env.path("control.sock")
        self.gwd = None
        self.gwd_runs = 0

    def twin(self, tag, edge, binary):
        """A second fleetgwd on this site (same TPM key, certificate and cloud broker), for
        comparing two builds in one run: `binary` is its fleetgwd, `edge` its own edge broker
        (made like self.edge), and its spool, registry, control socket, configuration file and
        cloud client id carry `tag`. Both can run at once; each relays only its edge's traffic."""
        t = copy.copy(self)
        t.edge, t.binary, t.tag = edge, binary, tag
        t.spool = self.env.path(f"spool-{tag}.db")
        t.control_socket = self.env.path(f"control-{tag}.sock")
        t.registry = self.env.path(f"registry-{tag}.db")
        t.conf_name = f"fleetgwd-{tag}.conf"
        t.client_id = f"{GW_CN}-{tag}"
        t.gwd = None
        t.gwd_runs = 0
        return t

    def start_edge_like(self, name, edge_conf=(), edge_acl=(), max_connections=None):
        """Another edge broker configured as self.edge (fleetgwd's password, node ACL), with
        extra configuration and ACL lines if given; max_connections: the node count it is
        configured for (harness Mosquitto)."""
        return self.env.start_mosquitto(self.edge_ca, name=name, superusers=["fleetgwd"],
                                        acl_extra=tuple(edge_acl),
                                        max_connections=max_connections,
                                        extra_conf=[f"password_file {self.edge_pw}"] +
                                        list(edge_conf))

    def config(self, **over):
        cfg = {
            "edge": {"socket": self.edge.socket_path, "client_id": "fleetgwd",
                     "username": "fleetgwd", "password_file": self.env.path("edge.secret")},
            "uplink": {"host": "127.0.0.1", "port": self.cloud.port,
                       "ca_file": self.cloud_ca.cert_path, "cert_file": self.gw_cert,
                       "key": f"handle:{HANDLE}", "tcti": self.tpm.tcti,
                       "client_id": self.client_id,
                       "topic_prefix": PREFIX, "backoff_min_ms": 200, "backoff_max_ms": 2000,
                       "connect_timeout_s": 10},
            "spool": {"path": self.spool, "drain_rate": 2000, "max_inflight": 32},
            "limits": {"max_message_bytes": 4096, "per_node_rate": 1000,
                       "per_node_burst": 1000},
            "registry": {"path": self.registry or self.env.path("registry.db")},
            # every path in the test's own directory: the defaults are the system's
            # /var/lib/fleetgw, which a root test run must never write (integration.package
            # checks that directory is empty after install)
            "ota": {"store_dir": self.env.path("gwd-ota-store"),
                    "state_db": self.env.path("gwd-ota.db")},
            "attestation": {"required": False},
            "control": {"socket": self.control_socket},
            "log": {"level": "info"},
        }
        for k, v in over.items():
            if k == "attestation":
                cfg[k] = dict(v)
            else:
                cfg.setdefault(k, {}).update(v)
                for key in [key for key, val in cfg[k].items() if val is None]:
                    del cfg[k][key]  # None removes a key (e.g. uplink.host for uplink.hosts)
        for sec, key in (("spool", "path"), ("registry", "path"), ("ota", "store_dir"),
                         ("ota", "state_db")):
            p = cfg.get(sec, {}).get(key)
            assert p is not None and not p.startswith("/var/lib/fleetgw"), \
                f"test config: {sec}.{key} must be in the test's directory, not {p!r}"
        path = self.env.path(self.conf_name)
        with open(path, "w") as f:
            json.dump(cfg, f, indent=2)
        return path

    def start_gwd(self, extra_env=None, wrap=None, **over):
        """fleetgwd with this site's configuration (sections in `over` replace keys);
        `wrap` is an argv prefix it runs under (e.g. strace)."""
        conf = self.config(**over)
        e = self.tpm.client_env()
        e.pop("NOTIFY_SOCKET", None)
        e.pop("JOURNAL_STREAM", None)
        if extra_env:
            e.update(extra_env)
        self.gwd_runs += 1
        self.gwd = self.env.spawn(f"fleetgwd{self.tag and '-' + self.tag}-{self.gwd_runs}",
                                  list(wrap or []) + [self.binary or program("fleetgwd"),
                                                      "--config", conf], env=e)
        return self.gwd

    def wait_gwd_connected(self):
        wait_for(lambda: self.gwd.check_alive() or
                 "connected to the cloud broker" in self.gwd.output(), 60,
                 "fleetgwd to connect to the cloud broker")
        wait_for(lambda: self.gwd.check_alive() or
                 "connected to the edge broker" in self.gwd.output(), 30,
                 "fleetgwd to connect to the edge broker")
        self.edge.wait_subscribed("fleetgwd", 6)  # up, evidence, status, ota x3

    def ctl(self, *args):
        """fleetgwctl on this site's control socket (a CompletedProcess, text output)."""
        return subprocess.run([program("fleetgwctl"), "--socket", self.control_socket, *args],
                              capture_output=True, text=True, timeout=60)

    def node_json(self, node_id):
        """`fleetgwctl --json node show` of one node: its registry record."""
        return json.loads(self.ctl("--json", "node", "show", node_id).stdout)["node"]

    def _gwd_running(self):
        return self.gwd is not None and self.gwd.popen.poll() is None

    def control(self, request):
        """One request on fleetgwd's control socket (line-delimited JSON)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(30)
            s.connect(self.control_socket)
            s.sendall((json.dumps(request) + "\n").encode())
            buf = b""
            while not buf.endswith(b"\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
        reply = json.loads(buf)
        if not reply.get("ok"):
            raise HarnessError(f"control request {request} failed: {reply}")
        return reply

    def counters(self):
        """fleetgwd's counters: from the control socket while it runs (committed values plus
        what the next group commit writes, as fleetgwctl shows them), from the database when
        it is stopped."""
        if self._gwd_running():
            return self.control({"cmd": "spool"})["counters"]
        db = sqlite3.connect(f"file:{self.spool}?mode=ro", uri=True)
        try:
            return dict(db.execute("SELECT name, n FROM counters").fetchall())
        finally:
            db.close()

    def spooled(self):
        if self._gwd_running():
            return self.control({"cmd": "spool"})["spooled_messages"]
        db = sqlite3.connect(f"file:{self.spool}?mode=ro", uri=True)
        try:
            return db.execute("SELECT count(*) FROM msgs").fetchone()[0]
        finally:
            db.close()


class Publisher:
    """One node publishing QoS 1 lines through mosquitto_pub -l (one TLS connection)."""

    def __init__(self, site, node, topic_tail="telemetry"):
        self.node = node
        args = [require("mosquitto_pub")] + site.edge.client_args(site.node_certs[node]) + [
            "-i", f"pub-{node}", "-q", "1", "-t", f"fleet/{node}/up/{topic_tail}", "-l"]
        self.proc = site.env.spawn(f"pub-{node}-{time.monotonic_ns()}", args,
                                   stdin=subprocess.PIPE)
        self.sent = 0

    def send(self, seq):
        self.proc.popen.stdin.write(f"{self.node}:{seq:06d}\n".encode())
        self.proc.popen.stdin.flush()
        self.sent += 1

    def close(self):
        """Closes stdin; mosquitto_pub -l exits once every QoS 1 message was acknowledged."""
        self.proc.popen.stdin.close()
        self.proc.popen.wait(timeout=120)
        if self.proc.popen.returncode != 0:
            raise HarnessError(f"mosquitto_pub for {self.node} exited with "
                               f"{self.proc.popen.returncode}: {self.proc.output()[-500:]}")


class Observer:
    """A persistent-session QoS 1 subscriber on the cloud broker (mosquitto_sub -c)."""

    def __init__(self, site, topic, name="observer"):
        self.site = site
        cert = site.cloud_ca.issue(name)
        self.proc = site.env.spawn(name, [require("mosquitto_sub")] + site.cloud.client_args(cert)
                                   + ["-i", name, "-c", "-q", "1", "-t", topic, "-v"])
        site.cloud.wait_subscribed(name)

    def lines(self):
        return [line for line in self.proc.output().splitlines() if line.startswith(PREFIX + "/")]

    def messages(self):
        """[(topic, payload)] in arrival order."""
        out = []
        for line in self.lines():
            topic, _, payload = line.partition(" ")
            out.append((topic, payload))
        return out


def check_sequences(messages, expected_per_node):
    """Returns (ok, duplicates, detail): every node's payloads n:000001.. arrive complete
    and in order, where a duplicate is a re-arrival of an already seen sequence number."""
    seen = {}
    dups = 0
    for topic, payload in messages:
        node, _, seq = payload.partition(":")
        s = int(seq)
        last = seen.setdefault(node, [])
        if s in set(last):
            dups += 1
            continue
        if last and s != last[-1] + 1:
            return False, dups, f"node {node}: {s} after {last[-1]} (out of order or a gap)"
        if not last and s != 1:
            return False, dups, f"node {node}: first message is {s}"
        last.append(s)
        if topic != f"{PREFIX}/nodes/{node}/telemetry":
            return False, dups, f"node {node}: mapped to {topic}"
    for node, n in expected_per_node.items():
        got = len(seen.get(node, []))
        if got != n:
            return False, dups, f"node {node}: {got} distinct messages upstream, {n} sent"
    return True, dups, "ok"


def pct(values, p):
    """The p-th percentile of values (nearest rank; p=100 is the maximum), for the benches."""
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


class NotifySocket:
    """A unix datagram socket standing in for systemd's NOTIFY_SOCKET."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.2)
        self.received = []

    def poll(self):
        try:
            while True:
                data = self.sock.recv(4096)
                self.received.extend(data.decode(errors="replace").split("\n"))
        except (socket.timeout, BlockingIOError):
            pass
        return self.received

    def close(self):
        self.sock.close()
