"""Each failure of the identity commands has its own message and exit code (docs/tpm.md):
3 no TPM reachable, 4 TPM in dictionary-attack lockout, 5 handle holds a different key
(nothing overwritten without --force), 6 wrong owner authorization, 7 tpm2 provider missing,
8 no key yet."""

import os
import re
import sys

from fleetgw_harness import Env, expect, free_port


def name_of(tpm, handle):
    out = tpm.tool("tpm2_readpublic", "-c", handle).stdout
    m = re.search(r"^name:\s*(\S+)", out, re.M)
    return m.group(1) if m else None


def main():
    with Env("tpm-errors") as env:
        tpm = env.start_tpm()

        # 3: no TPM reachable.
        dead = f"swtpm:host=127.0.0.1,port={free_port()}"
        r = tpm.identity("init", tcti=dead)
        expect(r.returncode == 3 and "no TPM reachable" in r.stderr,
               f"nothing listening on the swtpm port: exit 3 ({r.stderr.strip()})")
        r = tpm.identity("show", tcti="device:/dev/fleetgw-no-such-tpm")
        expect(r.returncode == 3 and "no TPM reachable" in r.stderr,
               f"no TPM device: exit 3 ({r.stderr.strip()})")
        r = tpm.identity("csr", "--subject", "/CN=x", "--out", env.path("x.csr"), tcti=dead)
        expect(r.returncode == 3, "csr without a TPM: exit 3, not 'provider missing'")

        # 8: no key yet.
        r = tpm.identity("show")
        expect(r.returncode == 8 and "identity init" in r.stderr,
               f"show before init: exit 8 and says to run init ({r.stderr.strip()})")

        # 5: a different key at the handle: refused, nothing overwritten; --force replaces it.
        tpm.tool("tpm2_createprimary", "-C", "o", "-g", "sha256", "-G", "ecc256", "-c", "p.ctx")
        tpm.tool("tpm2_create", "-C", "p.ctx", "-G", "ecc256",
                 "-a", "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign|decrypt",
                 "-u", "other.pub", "-r", "other.priv")
        tpm.tool("tpm2_load", "-C", "p.ctx", "-u", "other.pub", "-r", "other.priv", "-c", "other.ctx")
        tpm.tool("tpm2_evictcontrol", "-C", "o", "-c", "other.ctx", "0x81000001")
        tpm.tool("tpm2_flushcontext", "-t")
        before = name_of(tpm, "0x81000001")
        r = tpm.identity("init")
        expect(r.returncode == 5 and "different object" in r.stderr and "--force" in r.stderr,
               f"init over a different key: exit 5 naming --force ({r.stderr.strip()})")
        expect(name_of(tpm, "0x81000001") == before, "the other key was not overwritten")
        r = tpm.identity("show")
        expect(r.returncode == 5, "show refuses a handle that holds another kind of object")
        r = tpm.identity("init", "--force")
        expect(r.returncode == 0 and "created" in r.stderr, "init --force replaces it")
        expect(name_of(tpm, "0x81000001") != before, "the handle now holds a new key")
        # The same for a key file that holds something else.
        junk = env.path("junk.pem")
        with open(junk, "w") as f:
            f.write("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
        r = tpm.identity("init", "--key-file", junk)
        expect(r.returncode == 5, f"init over a foreign key file: exit 5 ({r.stderr.strip()})")
        with open(junk) as f:
            expect("AAAA" in f.read(), "the foreign key file was left alone")

        # A key file made by another TPM is "a different key" here too.
        other_tpm = env.start_tpm(name="tpm-b")
        foreign = env.path("foreign.tss2.pem")
        r = other_tpm.identity("init", "--key-file", foreign)
        expect(r.returncode == 0, "a key file made on a second TPM")
        with open(foreign, "rb") as f:
            foreign_bytes = f.read()
        r = tpm.identity("init", "--key-file", foreign)
        expect(r.returncode == 5 and "not made by this TPM" in r.stderr,
               f"init with another TPM's key file: exit 5 ({r.stderr.strip()})")
        with open(foreign, "rb") as f:
            expect(f.read() == foreign_bytes, "the other TPM's key file was left alone")

        # 6: wrong owner authorization.
        tpm.tool("tpm2_changeauth", "-c", "o", "owner-secret")
        r = tpm.identity("init", "--handle", "0x81000010")
        expect(r.returncode == 6 and "wrong authorization" in r.stderr,
               f"init without the owner auth: exit 6 ({r.stderr.strip()})")
        r = tpm.identity("init", "--handle", "0x81000010", "--owner-auth", "not-it")
        expect(r.returncode == 6, "init with a wrong --owner-auth: exit 6")
        r = tpm.identity("init", "--handle", "0x81000010", "--owner-auth", "owner-secret")
        expect(r.returncode == 0, f"init with the right --owner-auth works ({r.stderr.strip()})")
        r = tpm.identity("quote", "--nonce", "00ff", "--pcrs", "sha256:0", "--out",
                         env.path("q.bin"), "--owner-auth", "owner-secret")
        expect(r.returncode == 0, "quote (creating the AK) with the owner auth works")
        tpm.tool("tpm2_changeauth", "-c", "o", "-p", "owner-secret")

        # 7: the tpm2 provider missing.
        empty = env.path("no-modules")
        os.makedirs(empty, exist_ok=True)
        penv = tpm.client_env()
        penv["OPENSSL_MODULES"] = empty
        r = tpm.identity("csr", "--subject", "/CN=gw", "--out", env.path("gw.csr"), env=penv)
        expect(r.returncode == 7 and "tpm2 provider" in r.stderr and "tpm2-openssl" in r.stderr,
               f"csr without the tpm2 provider: exit 7 naming the package ({r.stderr.strip()})")
        r = tpm.identity("csr", "--subject", "/CN=gw", "--out", env.path("gw.csr"))
        expect(r.returncode == 0, "csr works with the provider")

        # 4: dictionary-attack lockout. One allowed failure, long recovery; then a wrong
        # password on a DA-protected key.
        tpm.tool("tpm2_dictionarylockout", "--setup-parameters", "--max-tries=1",
                 "--recovery-time=600", "--lockout-recovery-time=600")
        tpm.tool("tpm2_create", "-C", "p.ctx", "-G", "ecc256", "-p", "right-password",
                 "-u", "da.pub", "-r", "da.priv")
        tpm.tool("tpm2_load", "-C", "p.ctx", "-u", "da.pub", "-r", "da.priv", "-c", "da.ctx")
        with open(env.path("digest"), "wb") as f:
            f.write(b"\x01" * 32)
        bad = tpm.tool("tpm2_sign", "-c", "da.ctx", "-p", "wrong-password", "-g", "sha256",
                       "-d", "-o", "sig", "digest", check=False)
        expect(bad.returncode != 0, "a wrong password on a DA-protected key is refused")
        tpm.tool("tpm2_flushcontext", "-t")
        caps = tpm.tool("tpm2_getcap", "properties-variable").stdout
        expect(re.search(r"inLockout:\s*1", caps) is not None, "the TPM is now in lockout")
        r = tpm.identity("quote", "--nonce", "00ff", "--pcrs", "sha256:0", "--out", env.path("q2.bin"))
        expect(r.returncode == 4 and "lockout" in r.stderr and "clear-lockout" in r.stderr,
               f"quote in lockout: exit 4 with the way out ({r.stderr.strip()})")
        with open(env.path("msg"), "w") as f:
            f.write("x")
        r = tpm.identity("sign", "--in", env.path("msg"), "--out", env.path("msg.sig"))
        expect(r.returncode == 4, "sign in lockout: exit 4")
        tpm.tool("tpm2_dictionarylockout", "--clear-lockout")
        r = tpm.identity("quote", "--nonce", "00ff", "--pcrs", "sha256:0", "--out", env.path("q3.bin"))
        expect(r.returncode == 0, "after clearing the lockout the quote works again")

        # 2: usage.
        r = tpm.identity("quote", "--nonce", "zz", "--pcrs", "sha256:0", "--out", env.path("q4"))
        expect(r.returncode == 2, "a non-hex nonce is a usage error (exit 2)")
        r = tpm.identity("init", "--handle", "0x01000000")
        expect(r.returncode == 2, "a non-persistent handle is a usage error (exit 2)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
