"""The edge mosquitto as the package ships it, from one of its two confs with the file paths and
the TLS port replaced by the test's, every other line as shipped:
  - systemd/mosquitto/fleetgw-edge.conf (the default: ACL files), test_systemd_sandbox.py;
  - systemd/mosquitto/fleetgw-edge-plugin.conf (opt-in: the registry plugin, this build's
    fleetgw-mosquitto-auth.so and the test's registry), test_broker_plugin.py."""

import os
import re
import sqlite3
import subprocess

from fleetgw_harness import (HarnessError, build_dir, expect, free_port, port_open, require,
                             wait_for)

SRC = os.environ.get("FLEETGW_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
SHIPPED = os.path.join(SRC, "systemd", "mosquitto")
PLUGIN_INSTALLED = "/usr/lib/fleetgw/fleetgw-mosquitto-auth.so"
REGISTRY_INSTALLED = "/var/lib/fleetgw/registry.snapshot"  # registry.broker_snapshot


def plugin_path():
    path = os.path.join(build_dir(), "lib", "fleetgw-mosquitto-auth.so")
    if not os.path.exists(path):
        raise HarnessError(f"{path} not built (run the build first: broker/)")
    return path


def registry_schema():
    """The CREATE TABLE statement fleetgwd runs (read from daemon/src/registry.c, so that a
    test registry made without fleetgwd has exactly the daemon's schema)."""
    with open(os.path.join(SRC, "daemon", "src", "registry.c")) as f:
        text = f.read()
    m = re.search(r'"CREATE TABLE IF NOT EXISTS nodes \(".*?\);"', text, re.S)
    if not m:
        raise HarnessError("daemon/src/registry.c: the nodes table's CREATE statement not found")
    return "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', m.group(0)))


def write_registry(path, nodes):
    """A registry with the daemon's schema; nodes: {id: verdict}."""
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(registry_schema())
    for node_id, verdict in nodes.items():
        db.execute("INSERT OR REPLACE INTO nodes(id, iak_pub, device_class, verdict, added)"
                   " VALUES(?, ?, 'test', ?, 1)", (node_id, b"\x04" + b"\0" * 64, verdict))
    db.commit()
    db.close()


DEFAULT_CONF = "fleetgw-edge.conf"
PLUGIN_CONF = "fleetgw-edge-plugin.conf"


class EdgeBroker:
    """mosquitto configured from a shipped conf (DEFAULT_CONF or PLUGIN_CONF). With the plugin
    conf, the gateway identity's password is made here (gateway.secret in the broker's folder,
    the file the conf names, mapped) and `registry` is the node registry the plugin reads."""

    def __init__(self, env, ca, registry=None, name="edge", conf=DEFAULT_CONF):
        self.env = env
        self.name = name
        self.dir = env.path(name)
        os.makedirs(self.dir)
        self.port = free_port()
        self.socket_path = os.path.join(self.dir, "mqtt.sock")
        self.cert = ca.issue("edge-server", server=True, sans=["127.0.0.1"])
        self.ca = ca
        self.registry = registry
        self.plugin = plugin_path() if conf == PLUGIN_CONF else None
        subst = {
            "listener 8883": f"listener {self.port} 127.0.0.1",
            "/etc/mosquitto/fleetgw/manufacturer-ca.pem": ca.cert_path,
            "/etc/mosquitto/fleetgw/edge-broker.crt": self.cert[0],
            "/etc/mosquitto/fleetgw/edge-broker.key": self.cert[1],
            "/etc/mosquitto/fleetgw/": self.dir + "/",
            "/run/fleetgw-edge/mqtt.sock": self.socket_path,
        }
        if self.plugin is not None:
            subst.update({PLUGIN_INSTALLED: self.plugin, REGISTRY_INSTALLED: registry})
        with open(os.path.join(SHIPPED, conf)) as f:
            text = f.read()
        for k, v in subst.items():
            text = text.replace(k, v)
        settings = "\n".join(l for l in text.split("\n") if not l.lstrip().startswith("#"))
        leftover = re.findall(r"/etc/\S*|/run/\S*|/usr/\S*|/var/\S*", settings)
        if leftover:
            raise HarnessError(f"{conf} names paths the test does not map: {leftover}")
        # The ACL files the conf names, as shipped, in the broker's folder.
        for acl in re.findall(r"^acl_file\s+\S*/(\S+)$", settings, re.M):
            with open(os.path.join(SHIPPED, acl)) as src, \
                    open(os.path.join(self.dir, acl), "w") as dst:
                dst.write(src.read())
        user = re.search(r"^plugin_opt_gateway_user\s+(\S+)", settings, re.M)
        self.gateway_user = user.group(1) if user else None
        if self.plugin is not None and self.gateway_user is None:
            raise HarnessError(f"{conf} sets no plugin_opt_gateway_user")
        self.secret = None
        if self.gateway_user is not None:
            self.secret_path = os.path.join(self.dir, "gateway.secret")
            self.secret = "gw-" + os.urandom(12).hex()
            fd = os.open(self.secret_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(self.secret + "\n")
        head = ["user root", f"log_dest file {self.dir}/mosquitto.log", "log_type all",
                "connection_messages true", "persistence false"]
        self.conf = os.path.join(self.dir, "mosquitto.conf")
        with open(self.conf, "w") as f:
            f.write("\n".join(head) + "\n" + text)
        self.proc = None

    def start(self):
        self.proc = self.env.spawn(self.name, [require("mosquitto"), "-c", self.conf])
        wait_for(lambda: self.proc.check_alive() or port_open(self.port), 15, "edge TLS listener")
        wait_for(lambda: os.path.exists(self.socket_path), 10, "edge unix socket")
        return self

    def apply_dropin(self, group_gid):
        """Runs the ExecStartPost= commands of the shipped mosquitto drop-in, mapped to the
        test's socket and the sandbox group."""
        with open(os.path.join(SHIPPED, "mosquitto-fleetgw.conf")) as f:
            cmds = [line.split("=", 1)[1].split() for line in f
                    if line.startswith("ExecStartPost=")]
        expect(len(cmds) >= 2, "the drop-in has its ExecStartPost= commands")
        for cmd in cmds:
            cmd = [self.socket_path if a == "/run/fleetgw-edge/mqtt.sock" else
                   str(group_gid) if a == "fleetgw" else a for a in cmd]
            self.env.run(cmd, check=True)

    def log(self):
        with open(os.path.join(self.dir, "mosquitto.log"), errors="replace") as f:
            return f.read()

    def tls_args(self, cert):
        return ["-h", "127.0.0.1", "-p", str(self.port), "--cafile", self.ca.cert_path,
                "--cert", cert[0], "--key", cert[1]]

    def gateway_args(self, user=None, password=None):
        """mosquitto_pub/sub arguments for the unix-socket listener, as the gateway identity
        unless told otherwise (user="" for none)."""
        user = self.gateway_user if user is None else user
        password = self.secret if password is None else password
        args = ["--unix", self.socket_path]
        if user:
            args += ["-u", user, "-P", password]
        return args
