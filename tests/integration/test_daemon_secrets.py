"""fleetgwd's secrets on disk, with real brokers and TPM: an edge.password_file its group or
others may read is refused at start (exit 69), the message naming the file and its mode, and
nothing is relayed; the same file at 0600 is accepted and fleetgwd connects. (The writers -
key files, sealed blobs - and the readers' rules are unit.test_secret_file; fleetgwctl's
--hmac-key refusal is integration.daemon_attest_profiles, identity seal's
integration.tpm_identity.) Runs as root or as a normal user."""

import os

from fleetgw_harness import Env, expect, wait_for

from daemon_common import Site


def main():
    with Env("daemon-secrets") as env:
        site = Site(env, nodes=("s1",))
        secret = env.path("edge.secret")
        expect(os.stat(secret).st_mode & 0o777 == 0o600, "the test's edge secret is 0600")
        for mode in (0o640, 0o604):
            os.chmod(secret, mode)
            gwd = site.start_gwd()
            out = gwd.wait_output(60)
            expect(not gwd.alive() and gwd.popen.returncode == 69,
                   f"fleetgwd refuses to start with edge.password_file mode {mode:04o} "
                   f"(exit {gwd.popen.returncode})")
            expect(secret in out and f"mode {mode:04o}" in out and "chmod 600" in out,
                   f"the message names the file and the mode {mode:04o}: "
                   f"{[l for l in out.splitlines() if 'edge.password_file' in l]}")
            expect("connected to the edge broker" not in out,
                   "it never connected to the edge broker")
        os.chmod(secret, 0o600)
        site.start_gwd()
        site.wait_gwd_connected()
        expect(True, "with mode 0600 fleetgwd starts and connects to both brokers")
        site.gwd.stop()
    print("PASS")
    return 0


if __name__ == "__main__":
    from fleetgw_harness import run_main
    run_main(main)
