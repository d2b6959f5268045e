#!/usr/bin/python3
"""Image verification throughput against OpenSSL's own SHA-256, measured in the same run.

fleetgw-tool image bench verifies a 1 MiB MCUboot image (SHA-256 over header, body and
protected TLVs, then one ECDSA P-256 verification) many times; `openssl speed -evp sha256`
gives the reference (the better of its 8192- and 16384-byte columns). Best of three rounds
each, interleaved, to damp noise from other work on the machine. Goal: ratio >= 0.8."""
import json
import os
import re
import subprocess
import sys

BUILD = os.environ.get("FLEETGW_BUILD_DIR", "build")
TOOL = os.path.join(BUILD, "bin", "fleetgw-tool")
SIZE = 1024 * 1024
ROUNDS = 3
GOAL = 0.8


def openssl_sha256():
    out = subprocess.run(["openssl", "speed", "-seconds", "3", "-evp", "sha256"],
                         capture_output=True, text=True, check=True, timeout=300).stdout
    cols = line = None
    for ln in out.splitlines():
        if ln.startswith("type"):
            cols = re.findall(r"(\d+) bytes", ln)
        if ln.startswith("sha256"):
            line = ln
    if cols is None or line is None:
        raise RuntimeError("cannot parse openssl speed output:\n" + out)
    vals = [float(v) * 1000.0 for v in re.findall(r"([\d.]+)k", line)]  # 1000s of bytes/s
    table = dict(zip(cols, vals))
    return max(table["8192"], table["16384"]), table


def tool_bench(iterations):
    out = subprocess.run([TOOL, "image", "bench", "--size", str(SIZE), "--iterations", str(iterations)],
                         capture_output=True, text=True, check=True, timeout=600).stdout
    return json.loads(out)


def main():
    if not os.access(TOOL, os.X_OK):
        print(f"FAIL: {TOOL} not found (build first)")
        return 1
    probe = tool_bench(20)
    iterations = max(50, int(3.0 * 20 / probe["seconds"]))  # about 3 s per round
    best_tool = best_ref = 0.0
    for r in range(ROUNDS):
        ref, table = openssl_sha256()
        res = tool_bench(iterations)
        best_ref = max(best_ref, ref)
        best_tool = max(best_tool, res["bytes_per_second"])
        print(f"round {r + 1}: fleetgw image verify {res['bytes_per_second'] / 1e6:.1f} MB/s "
              f"({res['iterations']} x {res['image_bytes']} bytes in {res['seconds']:.2f} s); "
              f"openssl speed sha256 8192B {table['8192'] / 1e6:.1f} MB/s, "
              f"16384B {table['16384'] / 1e6:.1f} MB/s")
    ratio = best_tool / best_ref
    print(f"image verification throughput: {best_tool / 1e6:.1f} MB/s; openssl sha256: "
          f"{best_ref / 1e6:.1f} MB/s; ratio {ratio:.3f} (goal >= {GOAL})")
    return 0 if ratio >= GOAL else 1


if __name__ == "__main__":
    sys.exit(main())
