#!/usr/bin/env python3
"""The cloud side of the OTA job path (docs/protocol.md 2.3), for tests: serves the images of
OTA jobs in the chunks a gateway asks for.

A minimal MQTT 3.1.1 client over mutual TLS (Python's ssl; no paho): subscribes to
<prefix>/ota/jobs/+/get (QoS 0) and answers every request {"offset", "length"} on
<prefix>/ota/jobs/<job>/data with "FGJD" | offset u32 BE | length u32 BE | SHA-256(data) |
data. One line per event on stdout:
    READY
    GET <job> <offset> <length>
    SENT <job> <offset> <length>
    FAULT <job> <kind> <offset>
    STOPPED <job> <offset>           (--stop-at reached: exits without answering)

Options: --serve JOB=FILE (repeatable); --stop-at N (exit at the first request at or beyond
offset N, unanswered: the cloud going away mid-download); --fault KIND@OFFSET (once, the
first request at that offset gets a bad reply: wrong_offset, too_long, bad_hash)."""

import argparse
import hashlib
import json
import socket
import ssl
import struct
import sys


def varint(n):
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def mqtt_str(s):
    b = s.encode()
    return struct.pack(">H", len(b)) + b


class Mqtt:
    def __init__(self, host, port, cafile, cert, key, client_id):
        ctx = ssl.create_default_context(cafile=cafile)
        ctx.load_cert_chain(cert, key)
        raw = socket.create_connection((host, port))
        self.s = ctx.wrap_socket(raw, server_hostname="localhost")
        body = mqtt_str("MQTT") + bytes([4, 0x02]) + struct.pack(">H", 0) + mqtt_str(client_id)
        self.s.sendall(b"\x10" + varint(len(body)) + body)
        kind, _, data = self.read()
        if kind != 0x20 or data[1] != 0:
            raise SystemExit(f"CONNACK refused: {data.hex()}")
        self.pid = 1

    def read_exact(self, n):
        buf = bytearray()
        while len(buf) < n:
            b = self.s.recv(n - len(buf))
            if not b:
                raise SystemExit("the broker closed the connection")
            buf += b
        return bytes(buf)

    def read(self):
        """(packet type, flags byte, body) of the next packet."""
        h = self.read_exact(1)[0]
        n, mult = 0, 1
        while True:
            b = self.read_exact(1)[0]
            n += (b & 0x7F) * mult
            mult *= 128
            if not b & 0x80:
                break
        return h & 0xF0, h, self.read_exact(n) if n else b""

    def subscribe(self, topic):
        body = struct.pack(">H", self.pid) + mqtt_str(topic) + b"\x00"
        self.pid += 1
        self.s.sendall(b"\x82" + varint(len(body)) + body)
        while True:
            kind, _, _ = self.read()
            if kind == 0x90:
                return

    def publish(self, topic, payload):
        body = mqtt_str(topic) + payload
        self.s.sendall(b"\x30" + varint(len(body)) + body)

    def messages(self):
        while True:
            kind, h, data = self.read()
            if kind != 0x30:
                continue
            tl = struct.unpack(">H", data[:2])[0]
            topic = data[2:2 + tl].decode()
            rest = data[2 + tl:]
            if (h >> 1) & 3:
                rest = rest[2:]  # packet id (never asked for: subscribed at QoS 0)
            yield topic, rest


def chunk(offset, data, declared=None, digest=None):
    return (b"FGJD" + struct.pack(">II", offset, len(data) if declared is None else declared) +
            (digest or hashlib.sha256(data).digest()) + data)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--cafile", required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--prefix", required=True)
    ap.add_argument("--client-id", default="ota-job-cloud")
    ap.add_argument("--serve", action="append", default=[])
    ap.add_argument("--stop-at", type=int, default=-1)
    ap.add_argument("--fault", action="append", default=[])
    a = ap.parse_args()
    images = {}
    for s in a.serve:
        job, _, path = s.partition("=")
        with open(path, "rb") as f:
            images[job] = f.read()
    faults = {}
    for f in a.fault:
        kind, _, off = f.partition("@")
        faults[int(off)] = kind
    m = Mqtt(a.host, a.port, a.cafile, a.cert, a.key, a.client_id)
    m.subscribe(f"{a.prefix}/ota/jobs/+/get")
    print("READY", flush=True)
    base = f"{a.prefix}/ota/jobs/"
    for topic, payload in m.messages():
        if not topic.startswith(base) or not topic.endswith("/get"):
            continue
        job = topic[len(base):-len("/get")]
        req = json.loads(payload)
        off, length = int(req["offset"]), int(req["length"])
        print(f"GET {job} {off} {length}", flush=True)
        if job not in images:
            continue
        if 0 <= a.stop_at <= off:
            print(f"STOPPED {job} {off}", flush=True)
            return 0
        data = images[job][off:off + length]
        kind = faults.pop(off, None)
        if kind == "wrong_offset":
            reply = chunk(off + length, data)
        elif kind == "too_long":
            reply = chunk(off, images[job][off:off + length + 16])
        elif kind == "bad_hash":
            reply = chunk(off, data, digest=bytes(32))
        else:
            reply = chunk(off, data)
        if kind:
            print(f"FAULT {job} {kind} {off}", flush=True)
        m.publish(f"{base}{job}/data", reply)
        if not kind:
            print(f"SENT {job} {off} {len(data)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
