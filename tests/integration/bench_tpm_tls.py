"""Benchmark (make bench): full mutual-TLS handshakes (TCP connect + TLS 1.2 handshake, no
resumption) to a mosquitto broker on loopback that requires client certificates, N with
the gateway key in the TPM (swtpm behind tpm2-abrmd, tpm2-openssl provider) and N with a
software P-256 key, in the same run. Prints the mean per handshake and the ratio."""

import os
import re
import sys

from fleetgw_harness import Env, HarnessError, program

N = int(os.environ.get("FLEETGW_BENCH_HANDSHAKES", "50"))


def run_bench(env, tpm, args):
    r = env.run([program("fleetgw-tls-bench"), "--count", str(N)] + args, env=tpm.client_env(),
                timeout=600)
    m = re.search(r"handshakes (\d+) mean_ms ([\d.]+) min_ms ([\d.]+) max_ms ([\d.]+)", r.stdout)
    if r.returncode != 0 or m is None:
        raise HarnessError(f"fleetgw-tls-bench failed ({r.returncode}): {r.stdout}{r.stderr}")
    return float(m.group(2)), float(m.group(3)), float(m.group(4))


def main():
    with Env("bench-tpm-tls") as env:
        tpm = env.start_tpm()
        if tpm.identity("init").returncode != 0:
            raise HarnessError("identity init failed")
        csr = env.path("gw.csr")
        if tpm.identity("csr", "--subject", "/CN=gw-bench", "--out", csr).returncode != 0:
            raise HarnessError("identity csr failed")
        ca = env.ca("bench-ca")
        tpm_cert = ca.sign_csr(csr, env.path("gw.crt"))
        soft_cert, soft_key = ca.issue("gw-soft")
        broker = env.start_mosquitto(ca, name="bench", unix_socket=False, persistence=False)
        common = ["--port", str(broker.port), "--cafile", ca.cert_path]

        soft_args = common + ["--cert", soft_cert, "--key", soft_key]
        tpm_args = common + ["--tcti", tpm.tcti, "--key", "handle:0x81000001", "--cert", tpm_cert]
        # Interleaved (software, TPM, software, TPM) so that load from other processes on the
        # machine falls on both alike; each figure is the mean over 2*N handshakes.
        runs = {"soft": [], "tpm": []}
        for _ in range(2):
            runs["soft"].append(run_bench(env, tpm, soft_args))
            runs["tpm"].append(run_bench(env, tpm, tpm_args))
        res = {}
        for k, v in runs.items():
            res[k] = (sum(x[0] for x in v) / len(v), min(x[1] for x in v), max(x[2] for x in v))
        soft, tpmr = res["soft"], res["tpm"]
        print(f"BENCH tls-handshake software-key: {2 * N} handshakes, mean {soft[0]:.2f} ms "
              f"(min {soft[1]:.2f}, max {soft[2]:.2f})")
        print(f"BENCH tls-handshake tpm-key (swtpm+abrmd): {2 * N} handshakes, mean "
              f"{tpmr[0]:.2f} ms (min {tpmr[1]:.2f}, max {tpmr[2]:.2f})")
        print(f"BENCH tls-handshake ratio tpm/software: {tpmr[0] / soft[0]:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
