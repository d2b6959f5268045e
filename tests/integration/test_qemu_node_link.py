#!/usr/bin/python3
"""fleetgw-serial-link on its own, against a pseudo-terminal standing in for the node's UART
(--serial, termios raw mode) and a loopback TCP server standing in for the broker:

  1. Text before the marker is logged to stderr line by line and NOT sent anywhere; the
     marker LINK:BEGIN\\r\\n opens one connection to the broker.
  2. Bytes are copied unchanged in both directions (all 256 byte values, 200 KiB from the
     node, more than the adapter's buffers, and 64 KiB from the broker).
  3. The broker closing the session returns the adapter to text mode (later text is logged,
     not forwarded); the next marker opens a new connection.
  4. A marker inside a running session (the node restarted) closes the old connection and
     opens a new one; the bytes after the marker go only to the new one.
  5. SIGTERM ends it with exit 0; so does the serial source going away.
"""
import os
import select
import signal
import socket
import termios
import threading
import time
import tty

from fleetgw_harness import Env, HarnessError, expect, program, run_main

MARK = b"LINK:BEGIN\r\n"
WAIT = 30


def accept(srv):
    r, _, _ = select.select([srv], [], [], WAIT)
    if not r:
        raise HarnessError("fleetgw-serial-link did not connect to the broker")
    c, _ = srv.accept()
    c.setblocking(True)
    return c


def recv_exact(sock, n):
    out = b""
    end = time.monotonic() + WAIT
    while len(out) < n:
        r, _, _ = select.select([sock], [], [], max(0.0, end - time.monotonic()))
        if not r:
            raise HarnessError(f"broker side: got {len(out)} of {n} bytes")
        chunk = sock.recv(65536)
        if not chunk:
            raise HarnessError(f"broker side: EOF after {len(out)} of {n} bytes")
        out += chunk
    return out


def read_pty(fd, n):
    out = b""
    end = time.monotonic() + WAIT
    while len(out) < n:
        r, _, _ = select.select([fd], [], [], max(0.0, end - time.monotonic()))
        if not r:
            raise HarnessError(f"node side: got {len(out)} of {n} bytes")
        out += os.read(fd, 65536)
    return out


def write_all(fd, data):
    view = memoryview(data)
    while view:
        _, w, _ = select.select([], [fd], [], WAIT)
        if not w:
            raise HarnessError("node side: cannot write to the pty")
        n = os.write(fd, view[:4096])
        view = view[n:]


def wait_log(proc, text, count=1):
    end = time.monotonic() + WAIT
    while proc.output().count(text) < count:
        proc.check_alive()
        if time.monotonic() > end:
            raise HarnessError(f"serial-link log lacks {text!r} (x{count}):\n{proc.output()}")
        time.sleep(0.05)


def main():
    with Env("serial-link") as env:
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen(4)
        port = srv.getsockname()[1]
        master, slave = os.openpty()
        tty.setraw(master)
        slave_path = os.ttyname(slave)
        link = env.spawn("serial-link", [program("fleetgw-serial-link"), "--serial", slave_path,
                                         "--baud", "115200", "--broker", f"127.0.0.1:{port}"])
        wait_log(link, "waiting for LINK:BEGIN")
        attrs = termios.tcgetattr(slave)
        expect(not (attrs[3] & termios.ICANON) and not (attrs[3] & termios.ECHO),
               "the serial device is in raw mode (no ICANON, no ECHO)")

        # 1. text, then the marker
        write_all(master, b"fleet-agent 0.1.0 starting\r\nagent: link mode\r\n" + MARK)
        c1 = accept(srv)
        wait_log(link, "serial-link: node: agent: link mode")
        expect("node: fleet-agent 0.1.0 starting" in link.output(),
               "boot text before the marker is logged line by line")

        # 2. byte-exact copy both ways, more than the buffers hold
        # (writers in threads: the data exceeds what the pty, the adapter and the socket hold)
        up = bytes(range(256)) * 800
        t = threading.Thread(target=write_all, args=(master, up), daemon=True)
        t.start()
        expect(recv_exact(c1, len(up)) == up, f"{len(up)} bytes node -> broker unchanged")
        t.join(WAIT)
        down = bytes(reversed(range(256))) * 256
        t = threading.Thread(target=c1.sendall, args=(down,), daemon=True)
        t.start()
        expect(read_pty(master, len(down)) == down, f"{len(down)} bytes broker -> node unchanged")
        t.join(WAIT)

        # 3. the broker ends the session: text mode again, then a new marker
        c1.close()
        wait_log(link, "closed (the broker closed it)")
        write_all(master, b"agent: after the session\r\n")
        wait_log(link, "node: agent: after the session")
        write_all(master, MARK + b"\x16\x03\x01hello-2")
        c2 = accept(srv)
        expect(recv_exact(c2, 10) == b"\x16\x03\x01hello-2", "a new marker opens a new session")

        # 4. a marker inside the session: the old connection ends, the new one gets the rest
        write_all(master, b"tail" + MARK + b"\x16\x03\x01hello-3")
        c3 = accept(srv)
        expect(recv_exact(c3, 10) == b"\x16\x03\x01hello-3",
               "bytes after an in-session marker go to a new broker connection")
        c2.settimeout(WAIT)
        rest = b""
        while True:
            chunk = c2.recv(4096)
            if not chunk:
                break
            rest += chunk
        expect(rest.startswith(b"tail") and b"hello-3" not in rest,
               "the old connection got only the bytes before the marker, then EOF")
        wait_log(link, "the node began a new session")

        # 5. SIGTERM: clean exit 0
        link.send_signal(signal.SIGTERM)
        rc = link.stop()
        expect(rc == 0, f"SIGTERM: exit 0 (got {rc})")
        c3.close()

        # the serial source going away ends it too
        link2 = env.spawn("serial-link-2", [program("fleetgw-serial-link"), "--serial",
                                            slave_path, "--broker", f"127.0.0.1:{port}"])
        wait_log(link2, "waiting for LINK:BEGIN")
        os.close(slave)
        os.close(master)
        out = link2.wait_output(WAIT)
        expect(not link2.alive() and link2.popen.returncode == 0,
               f"source closed: exit 0 ({link2.popen.returncode}): {out.strip()[-200:]}")
        srv.close()
    print("PASS: test_qemu_node_link")
    return 0


if __name__ == "__main__":
    run_main(main)
