"""Cost of the edge broker plugin's registry look-ups (one per CONNECT and per ACL check, no
cache): broker CPU time for 20,000 QoS 1 publishes from one node through a real mosquitto,
with the shipped mosquitto 2.0 ACL file (the reference, use_identity_as_username + pattern
fleet/%u/#) and with fleetgw-mosquitto-auth.so reading 10,001 nodes, twice: from a registry
in the daemon's schema (WAL, as fleetgwd's own registry.path) and from a snapshot in the form
fleetgwd writes for the broker (registry.broker_snapshot: rollback journal, nodes(id,
verdict); what the package's conf uses). Prints each and the ratios; asserts nothing about
time."""

import os
import sqlite3
import subprocess
import time

from edge_broker import plugin_path, write_registry
from fleetgw_harness import Env, expect, free_port, port_open, require, run_main, wait_for

N = 20000


def broker_cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def write_snapshot(path, nodes):
    """The file registry_snapshot_write() makes (daemon/src/registry_snapshot.c)."""
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=DELETE")
    db.execute("CREATE TABLE nodes (id TEXT PRIMARY KEY, verdict TEXT NOT NULL)")
    db.executemany("INSERT INTO nodes (id, verdict) VALUES (?, ?)", sorted(nodes.items()))
    db.commit()
    db.close()


def run(env, ca, srv, node, registry, with_plugin, name=None):
    name = name or ("plugin" if with_plugin else "aclfile")
    port = free_port()
    conf = env.path(f"{name}.conf")
    lines = ["per_listener_settings true", f"listener {port} 127.0.0.1",
             f"cafile {ca.cert_path}", f"certfile {srv[0]}", f"keyfile {srv[1]}",
             "require_certificate true", "allow_anonymous false"]
    if with_plugin:
        lines += ["use_identity_as_username false", f"plugin {plugin_path()}",
                  "plugin_opt_listener node", f"plugin_opt_registry {registry}"]
    else:
        acl = env.path("edge.acl")
        with open(acl, "w") as f:
            f.write("pattern readwrite fleet/%u/#\n")
        lines += ["use_identity_as_username true", f"acl_file {acl}"]
    with open(conf, "w") as f:
        f.write("\n".join(["user root"] + lines) + "\n")
    broker = env.spawn(name, [require("mosquitto"), "-c", conf])
    wait_for(lambda: broker.check_alive() or port_open(port), 15, f"{name} broker")
    msgs = env.path("msgs")
    with open(msgs, "w") as f:
        f.write("x\n" * N)
    c0 = broker_cpu_s(broker.pid)
    t0 = time.monotonic()
    with open(msgs) as stdin:
        r = subprocess.run([require("mosquitto_pub"), "-h", "127.0.0.1", "-p", str(port),
                            "--cafile", ca.cert_path, "--cert", node[0], "--key", node[1],
                            "-t", "fleet/n1/up/telemetry", "-q", "1", "-l"], stdin=stdin,
                           capture_output=True, text=True, timeout=600)
    wall = time.monotonic() - t0
    cpu = broker_cpu_s(broker.pid) - c0
    expect(r.returncode == 0, f"{name}: {N} publishes accepted ({r.stderr.strip()})")
    broker.stop()
    return wall, cpu


def main():
    with Env("bench-broker-plugin") as env:
        ca = env.ca("mca")
        srv = ca.issue("srv", server=True, sans=["127.0.0.1"])
        node = ca.issue("n1")
        registry = env.path("registry.db")
        nodes = {f"x{i:05d}": "trusted" for i in range(10000)}
        nodes["n1"] = "trusted"
        write_registry(registry, nodes)
        snapshot = env.path("registry.snapshot")
        write_snapshot(snapshot, nodes)
        ref_wall, ref_cpu = run(env, ca, srv, node, registry, False)
        print(f"acl file: {N} QoS 1 publishes, wall {ref_wall:.2f} s, broker CPU "
              f"{ref_cpu / N * 1e6:.1f} us/publish")
        for label, path, name in (("plugin on the WAL registry", registry, "plugin"),
                                  ("plugin on the snapshot", snapshot, "plugin-snapshot")):
            wall, cpu = run(env, ca, srv, node, path, True, name)
            print(f"{label}: {N} QoS 1 publishes, wall {wall:.2f} s, broker CPU "
                  f"{cpu / N * 1e6:.1f} us/publish")
            print(f"  ratio to the acl file: broker CPU {cpu / max(ref_cpu, 1e-9):.2f}, "
                  f"extra {(cpu - ref_cpu) / N * 1e6:.1f} us/publish")
    print("PASS")
    return 0


if __name__ == "__main__":
    run_main(main)
