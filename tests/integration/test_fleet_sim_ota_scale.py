"""fleet-sim with many nodes (FLEETGW_OTA_NODES, default 500) each downloading a ~256 KiB
image (issue 12): one fleet-sim process, every node with its own flash file in a temporary
state directory, the real bootloader core at each node's reset, the test-only OTA server
serving the whole fleet through the real broker.

Proves: every node downloads, verifies and installs the image and boots it in test mode
(fleet-sim --until-ota testing: ota testing=N, no failures, no node without an image);
fleet-sim still reports RSS and heap per node; the temporary state directory with the flash
files is removed when the run ends, and kept with --keep-state."""

import os
import re
import sys

from fleetgw_harness import raise_nofile as harness_raise_nofile
from fleetgw_harness import Env, HarnessError, expect, program
from ota_common import SERVER_USER, Site

NODES = int(os.environ.get("FLEETGW_OTA_NODES", "500"))


def raise_nofile(need):
    soft = harness_raise_nofile(need, f"{NODES} nodes")
    print(f"open-file limit: {soft}", flush=True)


def run(env, site, prefix, n, image, tmp, extra=()):
    ids = site.nodes(prefix, n)
    with open(env.path(f"{prefix}ids"), "w") as f:
        f.write("\n".join(ids) + "\n")
    srv = env.spawn(f"srv-{prefix.rstrip('-')}",
                    [program("fleetgw-ota-testserver"), "--socket", site.broker.socket_path,
                     "--username", SERVER_USER, "--password-file", site.secret,
                     "--nodes-file", env.path(f"{prefix}ids")],
                    stdin=__import__("subprocess").PIPE)
    from fleetgw_harness import wait_for
    wait_for(lambda: "ready" in srv.output(), 60, "the fleet server")
    os.makedirs(tmp, exist_ok=True)
    argv = [program("fleet-sim"), "--broker", f"127.0.0.1:{site.broker.port}",
            "--nodes", str(n), "--cafile", site.ca.cert_path, "--cert-dir", site.cert_dir,
            "--server-name", "localhost", "--rate", "0.2", "--count", "0",
            "--id-prefix", prefix, "--iak-dir", site.key_dir, "--image", site.images.v1,
            "--boot-key", site.images.pub, "--attest-wait-ms", "1000",
            "--max-attempts", "0", "--ramp-ms", "5", "--until-ota", "testing"] + list(extra)
    environ = dict(os.environ, TMPDIR=tmp)
    sim = env.spawn(f"fleet-sim-{prefix.rstrip('-')}", argv, env=environ)
    wait_for(lambda: srv.output().count("node-status node=") >= n or sim.check_alive(), 600,
             f"{n} nodes up")
    srv.popen.stdin.write(f"offer big {image} 2048\n".encode())
    srv.popen.stdin.flush()
    rc = sim.popen.wait()
    out = sim.output()
    srv.popen.stdin.write(b"stats\nquit\n")
    srv.popen.stdin.flush()
    srv.popen.wait()
    return rc, out, srv.output()


def main():
    raise_nofile(2 * NODES + 256)
    with Env("fleet-sim-ota-scale") as env:
        site = Site(env, broker_conf=["max_connections -1", "max_keepalive 3600"])
        image = site.images.sign("big-v2", "2.0.0", 3, payload=250 * 1024)
        size = os.path.getsize(image)
        print(f"image {size} bytes, {NODES} nodes", flush=True)

        tmp = env.path("tmp")
        rc, out, sout = run(env, site, "big-", NODES, image, tmp)
        s = re.search(r"fleet-sim: nodes=.*", out).group(0)
        o = re.search(r"fleet-sim: ota .*", out).group(0)
        print(s + "\n" + o, flush=True)
        expect(rc == 0, f"fleet-sim exits 0 ({rc})")
        expect(f"testing={NODES} " in o and "failed=0" in o and "no_image=0" in o,
               f"all {NODES} nodes downloaded {size} bytes, installed and run v2 in test mode")
        stats = re.search(r"stats bytes_sent=(\d+)", sout)
        expect(stats and int(stats.group(1)) >= NODES * size,
               f"the server sent {stats and stats.group(1)} bytes (>= {NODES} x {size})")
        rss = re.search(r"rss_per_node_kib=([0-9.]+) heap_per_node_kib=([0-9.]+)", s)
        expect(rss and float(rss.group(1)) > 0,
               f"RSS per node reported: {rss.group(1)} KiB, heap {rss.group(2)} KiB")
        m = re.search(r"state directory (\S+) \(removed at the end\)", out)
        expect(m and m.group(1).startswith(tmp) and not os.path.exists(m.group(1)),
               f"the flash files were removed at the end ({m and m.group(1)})")

        rc, out, _ = run(env, site, "kept-", 2, image, tmp, extra=["--keep-state"])
        m = re.search(r"state directory (\S+) \(kept at the end\)", out)
        kept = m and sorted(os.listdir(m.group(1)))
        expect(rc == 0 and kept and len(kept) == 2 and all(
            os.path.getsize(os.path.join(m.group(1), d, "flash.bin")) == 0x8C000 for d in kept),
               f"--keep-state keeps each node's flash file ({kept})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
