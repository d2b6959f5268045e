"""Node-side OTA tests (issue 12): a real mosquitto, fleet-sim nodes with their own flash
files running the real bootloader core, images signed at test time by fleetgw-tool, and the
test-only OTA server (fleetgw-ota-testserver, tests/integration/ota_testserver.c) playing
the gateway's side of docs/protocol.md 3.3-3.8 through the broker."""

import os
import re
import shutil
import signal
import subprocess

from fleetgw_harness import HarnessError, program, require, wait_for

SERVER_USER = "otaserver"
PAYLOAD = 40 * 1024  # the image body: ten erase units, so percentages mean something


def node_certs(ca, cert_dir, ids):
    os.makedirs(cert_dir, exist_ok=True)
    for node_id in ids:
        crt, key = ca.issue(node_id)
        shutil.move(crt, os.path.join(cert_dir, f"{node_id}.crt"))
        shutil.move(key, os.path.join(cert_dir, f"{node_id}.key"))


def start_broker(env, ca, broker_conf=()):
    """mosquitto (TLS listener for the nodes, unix socket for the server, whose user has a
    password made now). Returns (broker, path of the server's password file)."""
    secret = env.path("otaserver.secret")
    with open(secret, "w") as f:
        f.write("ota-" + os.urandom(8).hex() + "\n")
    with open(secret) as f:
        pw = f.read().strip()
    pwfile = env.path("edge.passwd")
    env.run([require("mosquitto_passwd"), "-b", "-c", pwfile, SERVER_USER, pw], check=True)
    broker = env.start_mosquitto(ca, name="edge", superusers=[SERVER_USER],
                                 extra_conf=[f"password_file {pwfile}"] + list(broker_conf))
    return broker, secret


class Images:
    """Signing keys made now; v1 (factory) and v2 plus the refused kinds."""

    def __init__(self, env):
        self.env = env
        self.tool = program("fleetgw-tool")
        j = env.path
        self.key, self.pub = j("sign.pem"), j("sign.pub.pem")
        self.other = j("other.pem")
        env.run([self.tool, "key", "gen", "-o", self.key, "--pub", self.pub], check=True)
        env.run([self.tool, "key", "gen", "-o", self.other, "--pub", j("other.pub.pem")],
                check=True)
        self.digest = {}
        self.v1 = self.sign("v1", "1.0.0", 2)
        self.v2 = self.sign("v2", "2.0.0", 3)
        self.foreign = self.sign("foreign", "3.0.0", 3, key=self.other)
        self.older = self.sign("older-counter", "3.0.0", 1)  # newer version, lower counter
        self.big = self.sign("too-big", "3.0.0", 3, payload=260 * 1024, slot="0x80000")
        t = self.sign("tampered-src", "3.0.0", 3)
        with open(t, "rb") as f:
            data = bytearray(f.read())
        data[0x200 + 1000] ^= 0x01  # one body bit: the hash no longer matches
        self.tampered = j("tampered.bin")
        with open(self.tampered, "wb") as f:
            f.write(data)

    def sign(self, name, version, counter, key=None, payload=PAYLOAD, slot="0x40000"):
        j = self.env.path
        body = j(f"{name}.payload")
        with open(body, "wb") as f:
            f.write(os.urandom(payload))
        out = j(f"{name}.bin")
        r = self.env.run([self.tool, "image", "sign", "-k", key or self.key, "-v", version,
                          "-H", "0x200", "--pad-header", "-S", slot, "-s", str(counter),
                          body, out], check=True)
        m = re.search(r"digest ([0-9a-f]{64})", r.stdout + r.stderr)
        if not m:
            raise HarnessError(f"fleetgw-tool image sign printed no digest: {r.stdout}")
        self.digest[out] = m.group(1)
        return out


class Server:
    """fleetgw-ota-testserver for one node: commands on stdin, event lines on stdout."""

    def __init__(self, site, node_id, name):
        self.site = site
        self.node_id = node_id
        self.proc = site.env.spawn(name, [program("fleetgw-ota-testserver"), "--socket",
                                          site.broker.socket_path, "--username", SERVER_USER,
                                          "--password-file", site.secret,
                                          "--node", node_id, "--iak-pub",
                                          os.path.join(site.pub_dir, f"{node_id}.pem")],
                                   stdin=subprocess.PIPE)
        self.cursor = 0
        self.wait(r"^ready$", what="the test server's subscriptions")

    def cmd(self, line):
        self.proc.popen.stdin.write((line + "\n").encode())
        self.proc.popen.stdin.flush()

    def lines(self):
        return self.proc.output().splitlines()

    def wait(self, pattern, what=None, timeout=120):
        """The first line from the cursor on that matches; moves the cursor past it."""
        rx = re.compile(pattern)

        def find():
            ls = self.lines()
            for i in range(self.cursor, len(ls)):
                m = rx.search(ls[i])
                if m:
                    self.cursor = i + 1
                    return m
            self.proc.check_alive()
            return None
        return wait_for(find, timeout, what or f"'{pattern}' from {self.proc.name}")

    def seen(self, pattern):
        rx = re.compile(pattern)
        return [ln for ln in self.lines()[self.cursor:] if rx.search(ln)]

    def attest(self):
        """Challenges the node; returns (verified, measurement, version) of its token."""
        self.cmd("challenge")
        m = self.wait(r"^evidence verified=(\d) measurement=([0-9a-f]+) version=(\S*)",
                      what=f"evidence from {self.node_id}")
        return m.group(1) == "1", m.group(2), m.group(3)

    def stats(self):
        self.cmd("stats")
        m = self.wait(r"^stats bytes_sent=(\d+) bytes_resent=(\d+) chunks=(\d+)")
        return int(m.group(1)), int(m.group(2)), int(m.group(3))


class Site:
    """Broker, images, node keys/certificates; fleet-sim runs started on demand."""

    def __init__(self, env, broker_conf=()):
        self.env = env
        self.ca = env.ca("edge-ca")
        self.broker, self.secret = start_broker(env, self.ca, broker_conf)
        self.images = Images(env)
        self.key_dir = env.path("iak")
        self.pub_dir = env.path("iak-pub")
        self.cert_dir = env.path("node-certs")
        self.state_dir = env.path("state")
        for d in (self.key_dir, self.pub_dir, self.cert_dir):
            os.makedirs(d, exist_ok=True)
        self.runs = 0

    def nodes(self, prefix, n):
        r = self.env.run([program("fleet-sim"), "--iak-dir", self.key_dir, "--nodes", str(n),
                          "--id-prefix", prefix, "--export-pub", self.pub_dir], check=True)
        ids = [line.split()[1] for line in r.stdout.splitlines() if line.strip()]
        node_certs(self.ca, self.cert_dir, ids)
        return ids

    def fleet_sim(self, prefix, n, faults=(), extra=()):
        self.runs += 1
        argv = [program("fleet-sim"), "--broker", f"127.0.0.1:{self.broker.port}",
                "--nodes", str(n), "--cafile", self.ca.cert_path, "--cert-dir", self.cert_dir,
                "--server-name", "localhost", "--rate", "1", "--count", "0",
                "--id-prefix", prefix, "--iak-dir", self.key_dir, "--image", self.images.v1,
                "--boot-key", self.images.pub, "--state-dir", self.state_dir,
                "--attest-wait-ms", "1000", "--max-attempts", "0"]
        for f in faults:
            argv += ["--fault", f]
        return self.env.spawn(f"fleet-sim-{prefix.rstrip('-')}-{self.runs}", argv + list(extra))


def stop(proc, sig=signal.SIGTERM):
    """Stops a fleet-sim (SIGKILL = the power is cut) and returns its output."""
    proc.stop(sig)
    return proc.output()


def transfer(server, campaign, image, chunk=1024):
    """Offers image and waits for the node's verdict on it (staged or failed)."""
    server.cmd(f"offer {campaign} {image} {chunk}")
    a = server.wait(r"^ack campaign=%s accepted=(\d) reason=(\d+)" % re.escape(campaign))
    if a.group(1) != "1":
        return "refused", int(a.group(2))
    s = server.wait(r"^status campaign=%s state=(staged|failed) offset=\d+ reason=(\d+)"
                    % re.escape(campaign), what=f"{campaign}: staged or failed")
    return s.group(1), int(s.group(2))
