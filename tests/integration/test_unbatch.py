"""fleetgw-unbatch, the cloud side of uplink batching (docs/batch-format.md), against an
independent encoder (python cbor2):
- the hex example of docs/batch-format.md is what cbor2 writes for the documented structure,
  and the tool splits it into exactly the documented lines (with and without --prefix);
- 3,000 random batches written by cbor2 (UTF-8 and JSON-special characters in gateway ids and
  tails, binary payloads of 0..300 bytes, seqs across every CBOR head size) in one
  --length-prefixed run come out as exactly the messages put in, in order; the python
  snippet of docs/batch-format.md gives the same messages; several FILE arguments and "-";
- bad input: a bad batch in a stream prints nothing of itself, the others still print, the
  error names the batch, the file offset and the byte offset of the problem, exit 1; the
  example truncated at every length, with a trailing byte, a non-shortest head, version 2,
  a bad node id; a broken frame; usage errors exit 2."""

import base64
import json
import os
import random
import re
import struct
import subprocess
import tempfile

import cbor2

from fleetgw_harness import expect, log, program, run_main

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.abspath(os.path.join(HERE, "..", ".."))
DOC = os.path.join(SOURCE, "docs", "batch-format.md")

EXAMPLE = [1, "gw-1", [["n1", "nodes/n1/telemetry", 41, 1796601600, bytes.fromhex("a1617415")],
                       ["n2", "nodes/n2/status", 42, 1796601601, b""]]]


def doc_text():
    with open(DOC, encoding="utf-8") as f:
        return f.read()


def doc_example_hex(doc, name):
    m = re.search(r"<!-- example: " + re.escape(name) + r" -->\s*```\n(.*?)```", doc, re.S)
    expect(m is not None, f"docs/batch-format.md has the example {name}")
    return bytes.fromhex("".join(m.group(1).split()))


def doc_snippet(doc, name):
    m = re.search(r"<!-- snippet: " + re.escape(name) + r" -->\s*```python\n(.*?)```", doc, re.S)
    expect(m is not None, f"docs/batch-format.md has the python snippet {name}")
    return m.group(1)


def unbatch(args, data=None):
    p = subprocess.run([program("fleetgw-unbatch"), *args], input=data, capture_output=True)
    return p.returncode, p.stdout.decode("utf-8"), p.stderr.decode("utf-8")


def lines_json(out):
    return [json.loads(line) for line in out.splitlines()]


def expected_lines(batch, prefix=None):
    _, gw, entries = batch
    return [{"gateway": gw, "batch": entries[0][2], "node": n,
             "topic": f"{prefix}/{t}" if prefix else t, "seq": s, "ts": ts,
             "payload": base64.b64encode(p).decode()} for n, t, s, ts, p in entries]


def framed(payloads):
    return b"".join(struct.pack(">I", len(p)) + p for p in payloads)


SEQ_EDGES = [0, 23, 24, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**64 - 1]
NODE_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"
TAIL_CHARS = "abcz/019-_\u00e9\u4e2d\U0001f600\"\\\n\t\x7f {}"


def random_batches(rng, count):
    batches, seq = [], 0
    for b in range(count):
        gw = "gw-" + "".join(rng.choice(TAIL_CHARS) for _ in range(rng.randint(0, 20)))
        entries = []
        for _ in range(rng.randint(1, 20)):
            node = "".join(rng.choice(NODE_CHARS) for _ in range(rng.randint(1, 48)))
            tail = "".join(rng.choice(TAIL_CHARS) for _ in range(rng.randint(1, 60)))
            while len(tail.encode()) > 256:
                tail = tail[:-1]
            payload = bytes(rng.getrandbits(8) for _ in range(rng.choice([0, 1, 2, 3, 23, 24,
                                                                          rng.randint(0, 300)])))
            ts = rng.choice([0, 24, 1796601600, 2**32, 2**64 - 1])
            entries.append([node, tail, seq, ts, payload])
            seq += rng.randint(1, 1000)
        if b == count - 1:  # the last batch crosses the largest seq heads
            entries = [[e[0], e[1], s, e[3], e[4]] for e, s in zip(entries, SEQ_EDGES)]
            entries = [e for e in entries if e[2] > batches[-1][2][-1][2]] or entries[-1:]
            entries[-1][2] = 2**64 - 1
        batches.append([1, gw, entries])
    return batches


def test_example(doc):
    vec = doc_example_hex(doc, "batch-2")
    expect(cbor2.dumps(EXAMPLE) == vec,
           "cbor2 writes exactly the documented 71-byte example for the documented structure")
    rc, out, err = unbatch([], vec)
    expect(rc == 0 and err == "", f"the example splits (rc {rc}, stderr {err!r})")
    expect(lines_json(out) == expected_lines(EXAMPLE), "two lines, exactly the documented ones")
    expect(out.splitlines()[0] == '{"gateway":"gw-1","batch":41,"node":"n1","topic":'
           '"nodes/n1/telemetry","seq":41,"ts":1796601600,"payload":"oWF0FQ=="}',
           "the first line byte for byte as printed in docs/batch-format.md")
    rc, out, err = unbatch(["--prefix", "acme/site1"], vec)
    expect(rc == 0 and lines_json(out) == expected_lines(EXAMPLE, "acme/site1"),
           "--prefix acme/site1: topics acme/site1/<tail>")
    for line in out.splitlines():
        expect(line in doc, f"docs/batch-format.md shows the tool's line {line[:60]}...")
    return vec


def test_random(doc, rng):
    batches = random_batches(rng, 3000)
    payloads = [cbor2.dumps(b) for b in batches]
    rc, out, err = unbatch(["--length-prefixed", "--prefix", "p/q"], framed(payloads))
    got = lines_json(out)
    want = [line for b in batches for line in expected_lines(b, "p/q")]
    expect(rc == 0 and err == "", f"3000 cbor2 batches in one --length-prefixed run: rc 0, no "
           f"error (rc {rc}, {err[:200]!r})")
    expect(len(got) == len(want), f"{len(want)} messages out (got {len(got)})")
    expect(got == want, "every message exactly as put in, in order (gateway, batch id, node, "
           "topic, seq, ts, payload)")

    # the python snippet of the doc gives the same messages
    scope = {}
    exec(doc_snippet(doc, "split-batch"), scope)
    split_batch = scope["split_batch"]
    mine = [dict(m, payload=base64.b64encode(m["payload"]).decode())
            for p in payloads for m in split_batch(p, "p/q")]
    expect(mine == got, "the docs' python split_batch() agrees with the tool on every message")
    # and its de-duplication snippet drops a redelivered batch
    handled = []
    scope.update(handle=handled.append)
    code = doc_snippet(doc, "dedup")
    expect("seen = {}" in code, "the de-duplication snippet starts with an empty seen set")
    code = code.replace("seen = {}", "seen = globals().setdefault('SEEN', {})")
    for p in payloads[:5] + payloads[2:4]:  # batches 3 and 4 delivered twice
        scope["payload"] = p
        exec(code, scope)
    expect(len(handled) == sum(len(b[2]) for b in batches[:5]),
           "the docs' de-duplication snippet handles a redelivered batch's messages once")

    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for i, p in enumerate(payloads[:3]):
            files.append(os.path.join(tmp, f"b{i}.cbor"))
            with open(files[-1], "wb") as f:
                f.write(p)
        rc, out, err = unbatch([files[0], "-", files[2]], payloads[1])
        expect(rc == 0 and lines_json(out) == [line for b in batches[:3]
                                               for line in expected_lines(b)],
               "FILE - FILE: the three batches in argument order, stdin as the second")
        rc, out, err = unbatch([files[0], os.path.join(tmp, "missing")])
        expect(rc == 2 and "missing" in err and "No such file" in err,
               f"a missing file: exit 2 naming it ({err.strip()!r})")
    return batches, payloads


def test_bad(vec, batches, payloads):
    # a batch with equal seqs, between two good ones in one stream
    head = b"\x83\x01" + cbor2.dumps("gw") + b"\x82"
    e1 = cbor2.dumps(["n1", "t", 5, 0, b""])
    before_seq = head + e1 + b"\x85" + cbor2.dumps("n2") + cbor2.dumps("t")
    bad = before_seq + cbor2.dumps(5) + cbor2.dumps(0) + cbor2.dumps(b"")
    expect(cbor2.loads(bad) == [1, "gw", [["n1", "t", 5, 0, b""], ["n2", "t", 5, 0, b""]]],
           "the bad batch is well-formed CBOR (only the seq order is wrong)")
    stream = framed([payloads[0], bad, payloads[1]])
    rc, out, err = unbatch(["--length-prefixed"], stream)
    want = expected_lines(batches[0]) + expected_lines(batches[1])
    file_off = 4 + len(payloads[0]) + 4
    expect(rc == 1, f"a bad batch in the stream: exit 1 (got {rc})")
    expect(lines_json(out) == want, "the good batches before and after it are printed, nothing "
           "of the bad one")
    expect(err.count("\n") == 1 and "<stdin>: batch 2" in err
           and f"byte {len(before_seq)}" in err and f"file offset {file_off + len(before_seq)}"
           in err and "seq not strictly increasing" in err,
           f"one error line: batch 2, byte {len(before_seq)} (the second seq), file offset, "
           f"what is wrong ({err.strip()!r})")

    for k in range(len(vec)):
        rc, out, err = unbatch([], vec[:k])
        if not (rc == 1 and out == "" and "batch 1" in err and ("byte" in err or k == 0)):
            expect(False, f"the example truncated to {k} bytes: exit 1, nothing printed, an "
                   f"error with the byte (rc {rc}, out {out[:80]!r}, err {err!r})")
    expect(True, f"the example truncated at every length 0..{len(vec) - 1}: exit 1, nothing "
           "printed, an error naming the batch and the byte")
    cases = [
        ("a trailing byte", vec + b"\x00", f"byte {len(vec)}", "well-formed"),
        ("a non-shortest version head", b"\x83\x18\x01" + vec[2:], "byte 1",
         "shortest form"),
        ("version 2", b"\x83\x02" + vec[2:], "byte 1", "unknown batch version"),
        ("a bad node id", cbor2.dumps([1, "gw", [["n/1", "t", 1, 0, b""]]]), "byte 7",
         'field out of range: text "n/1"'),
        ("an empty batch", b"", "empty", "empty"),
        ("a map instead of the batch array", cbor2.dumps({"v": 1}), "byte 0", "well-formed"),
    ]
    for what, data, where, words in cases:
        rc, out, err = unbatch([], data)
        expect(rc == 1 and out == "" and where in err and words in err,
               f"{what}: exit 1, nothing printed, the error says {where!r} and {words!r} "
               f"({err.strip()!r})")

    rc, out, err = unbatch(["--length-prefixed"], framed([payloads[0]]) + struct.pack(">I", 500)
                           + payloads[1][:10])
    expect(rc == 1 and lines_json(out) == expected_lines(batches[0])
           and "batch 2" in err and "500 bytes, 10 are left" in err,
           f"a stream that ends inside a frame: the good batch, then the error, exit 1 "
           f"({err.strip()!r})")
    rc, out, err = unbatch(["--length-prefixed"], b"\xff\xff\xff\xff" + vec)
    expect(rc == 1 and out == "" and "larger than any MQTT payload" in err,
           f"a length no MQTT payload has: exit 1 ({err.strip()!r})")
    for argv, named in ((["--prefix", ""], "--prefix"), (["--prefix", "a/"], "--prefix"),
                        (["--prefix", "a/#"], "--prefix"), (["--prefix"], "--prefix")):
        rc, out, err = unbatch(argv, vec)
        expect(rc == 2 and out == "" and named in err.splitlines()[0] and "usage:" in err,
               f"{argv}: exit 2, one line naming {named}, the usage ({err.splitlines()[:1]!r})")


def main():
    doc = doc_text()
    rng = random.Random(17)
    vec = test_example(doc)
    batches, payloads = test_random(doc, rng)
    test_bad(vec, batches, payloads)
    log("fleetgw-unbatch: example, 3000 cbor2 batches, bad input")
    return 0


if __name__ == "__main__":
    run_main(main)
