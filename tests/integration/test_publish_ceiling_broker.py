"""The test cloud broker with AWS IoT Core's per-connection publish ceiling (issue 17): a real
mosquitto with the test plugin tests/plugins/publish_ceiling.c at 100 publishes/s, the
harness's Mosquitto(publish_ceiling=100). Two TLS clients publish at the same time (QoS 1,
sends spaced at least 1/rate apart, never bunched up to catch up):
- "uplink-fast" at 150/s for 3 s: the broker logs `kick uplink-fast 101`, closes the
  connection (the client sees it before its 3 s are over; mosquitto logs the administrative
  disconnect), its highest 1 s window is 101, and a subscriber received only messages from
  before the kick (a gap-free prefix: the publish that crossed the ceiling was denied);
- "uplink-slow" at 80/s for 3 s (240 publishes): never kicked, its highest 1 s window is at
  most 100 (and at least 75: 80/s spaced a little over 12.5 ms apart gives 79 or 80 in a
  window, so the window counts what it should), and the subscriber
  received every one of its 240 messages, in order.
The two together are 230/s through one broker: the ceiling is per connection."""

import ssl
import struct
import threading
import time

from fleetgw_harness import CA, Env, Mosquitto, expect, log, run_main, wait_for
from ota_job_cloud import Mqtt, mqtt_str, varint

CEILING = 100


class Client(Mqtt):
    """ota_job_cloud's minimal MQTT 3.1.1 client over mutual TLS, with a reader thread that
    consumes what the broker sends and notes when it closes the connection."""

    def __init__(self, broker, ca, cert, client_id):
        super().__init__("127.0.0.1", broker.port, ca.cert_path, cert[0], cert[1], client_id)
        self.client_id = client_id
        self.closed_at = None
        self.received = []  # (topic, payload)

    def start_reader(self):
        def run():
            try:
                for topic, payload in self.messages():  # skips our PUBACKs
                    self.received.append((topic, payload))
            except (SystemExit, OSError, ssl.SSLError):  # Mqtt.read: SystemExit at EOF
                pass
            self.closed_at = time.monotonic()

        threading.Thread(target=run, daemon=True).start()

    def publish_qos1(self, topic, payload, pid):
        body = mqtt_str(topic) + struct.pack(">H", pid) + payload
        self.s.sendall(b"\x32" + varint(len(body)) + body)

    def disconnect(self):
        try:
            self.s.sendall(b"\xe0\x00")
            self.s.close()
        except OSError:
            pass


def publish_at(client, rate, seconds, result):
    """Publishes rate/s for `seconds` on fleet/<id>/t (the broker's ACL pattern), payload the
    message number; each send at least 1/rate after the previous one. Stops at the first send
    that fails (the broker closed the connection)."""
    gap = 1.0 / rate
    total = int(rate * seconds)
    sent, t_next = 0, time.monotonic()
    start = t_next
    for i in range(1, total + 1):
        now = time.monotonic()
        if now < t_next:
            time.sleep(t_next - now)
        t_next = max(t_next, time.monotonic()) + gap
        if client.closed_at is not None:
            break
        try:
            client.publish_qos1(f"fleet/{client.client_id}/t", str(i).encode(), (i % 65535) + 1)
        except (OSError, ssl.SSLError):
            break
        sent = i
    result["sent"] = sent
    result["seconds"] = time.monotonic() - start
    result["start"] = start


def main():
    with Env("publish-ceiling-broker") as env:
        ca = CA(env.dir, "cloud-ca")
        broker = Mosquitto(env, ca, name="cloud", unix_socket=False, superusers=("observer",),
                           publish_ceiling=CEILING).start()
        observer = Client(broker, ca, ca.issue("observer"), "observer")
        observer.subscribe("fleet/#")  # before the reader: Mqtt.subscribe waits for the SUBACK
        observer.start_reader()
        fast = Client(broker, ca, ca.issue("uplink-fast"), "uplink-fast")
        slow = Client(broker, ca, ca.issue("uplink-slow"), "uplink-slow")
        fast.start_reader()
        slow.start_reader()

        results = {"fast": {}, "slow": {}}
        threads = [threading.Thread(target=publish_at, args=(fast, 150, 3, results["fast"])),
                   threading.Thread(target=publish_at, args=(slow, 80, 3, results["slow"]))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        rf, rs = results["fast"], results["slow"]
        log(f"uplink-fast sent {rf['sent']} in {rf['seconds']:.2f} s; "
            f"uplink-slow sent {rs['sent']} in {rs['seconds']:.2f} s")
        slow.disconnect()

        # uplink-fast: kicked
        wait_for(lambda: fast.closed_at is not None, 10, "the broker closes uplink-fast")
        expect(fast.closed_at - rf["start"] < 3.0,
               f"uplink-fast's connection was closed by the broker within its 3 s of publishing "
               f"(after {fast.closed_at - rf['start']:.2f} s, {rf['sent']} of 450 sent)")
        wait_for(lambda: broker.ceiling_kicks(), 10, "a kick line in the plugin's log")
        kicks = broker.ceiling_kicks()
        expect(kicks == [("uplink-fast", CEILING + 1)],
               f"the plugin logged one kick: uplink-fast at {CEILING + 1} publishes in 1 s "
               f"({kicks})")
        expect("Client uplink-fast been disconnected by administrative action" in broker.log(),
               "mosquitto logged uplink-fast's administrative disconnect")

        # uplink-slow: never kicked, every message through
        wait_for(lambda: "uplink-slow" in broker.ceiling_max(), 10,
                 "the plugin's max line for uplink-slow at its disconnect")
        wait_for(lambda: "uplink-fast" in broker.ceiling_max(), 10,
                 "the plugin's max line for uplink-fast")
        peaks = broker.ceiling_max()
        expect(rs["sent"] == 240, f"uplink-slow sent all 240 publishes (got {rs['sent']})")
        expect(75 <= peaks["uplink-slow"] <= CEILING,
               f"uplink-slow's highest 1 s window is 75..{CEILING} (got {peaks['uplink-slow']})")
        expect(peaks["uplink-fast"] == CEILING + 1,
               f"uplink-fast's highest 1 s window is {CEILING + 1} (got {peaks['uplink-fast']})")

        def got(cid):
            return [int(p) for t, p in observer.received if t == f"fleet/{cid}/t"]

        wait_for(lambda: len(got("uplink-slow")) >= 240, 20,
                 "the observer receives uplink-slow's 240 messages")
        expect(got("uplink-slow") == list(range(1, 241)),
               "the observer received every uplink-slow message once, in order")
        fast_got = got("uplink-fast")
        expect(len(fast_got) >= CEILING and fast_got == list(range(1, len(fast_got) + 1))
               and len(fast_got) < rf["sent"],
               f"the observer received a gap-free prefix of uplink-fast's messages, at least "
               f"{CEILING}, without the denied one(s) ({len(fast_got)} of {rf['sent']} sent)")
        observer.disconnect()
        log(f"publish ceiling {CEILING}/s: peaks {peaks}, kicks {kicks}")
    return 0


if __name__ == "__main__":
    run_main(main)
