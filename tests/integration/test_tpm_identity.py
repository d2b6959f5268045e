"""`identity init` on swtpm + tpm2-abrmd: the key is created once (a second run reports the
same public key), survives a TPM restart, has the attributes that keep it inside the TPM,
signs verifiably, works as a TSS2 key file too; seal/unseal, with a PCR policy that stops
unsealing once the PCR changes."""

import os
import re
import sys

from fleetgw_harness import Env, expect, require

HANDLE = "0x81000001"


def attributes(tpm, handle):
    out = tpm.tool("tpm2_readpublic", "-c", handle).stdout
    m = re.search(r"^attributes:\s*\n\s*value:\s*(\S+)", out, re.M)
    expect(m is not None, f"tpm2_readpublic -c {handle} shows the object attributes")
    return set(m.group(1).split("|")), out


def main():
    with Env("tpm-identity") as env:
        tpm = env.start_tpm()

        r1 = tpm.identity("init")
        expect(r1.returncode == 0 and "BEGIN PUBLIC KEY" in r1.stdout,
               f"identity init creates the key and prints its public key ({r1.stderr.strip()})")
        expect("created" in r1.stderr, "the first init says it created the key")
        r2 = tpm.identity("init")
        expect(r2.returncode == 0 and r2.stdout == r1.stdout,
               "a second init is a no-op reporting the same public key")
        expect("already present" in r2.stderr, "the second init says the key was already there")
        show = tpm.identity("show")
        expect(show.returncode == 0 and show.stdout == r1.stdout, "identity show prints the same key")

        attrs, out = attributes(tpm, HANDLE)
        for a in ("fixedtpm", "fixedparent", "sensitivedataorigin", "userwithauth", "sign"):
            expect(a in attrs, f"key attribute {a} is set")
        for a in ("decrypt", "restricted", "encryptedduplication"):
            expect(a not in attrs, f"key attribute {a} is not set")
        expect(re.search(r"^type:\s*\n\s*value:\s*ecc", out, re.M) is not None and
               re.search(r"^curve-id:\s*\n\s*value:.*\n\s*raw:\s*0x3\b", out, re.M) is not None,
               "the key is ECC P-256 (curve id 3)")

        tpm.restart()
        r3 = tpm.identity("init")
        expect(r3.returncode == 0 and r3.stdout == r1.stdout,
               "after a swtpm restart on the same state dir the same key is still there")

        # Signatures verify with the public key (OpenSSL, outside the TPM).
        pub = env.path("id.pem")
        with open(pub, "w") as f:
            f.write(r1.stdout)
        msg = env.path("msg")
        with open(msg, "wb") as f:
            f.write(b"fleetgw identity signature test\n" * 100)
        r = tpm.identity("sign", "--in", msg, "--out", env.path("msg.sig"))
        expect(r.returncode == 0, f"identity sign works ({r.stderr.strip()})")
        v = env.run([require("openssl"), "dgst", "-sha256", "-verify", pub, "-signature",
                     env.path("msg.sig"), msg])
        expect(v.returncode == 0 and "Verified OK" in v.stdout,
               "openssl verifies the TPM signature with the shown public key")
        with open(msg, "ab") as f:
            f.write(b"x")
        v = env.run([require("openssl"), "dgst", "-sha256", "-verify", pub, "-signature",
                     env.path("msg.sig"), msg])
        expect(v.returncode != 0, "the signature does not verify for other content")

        # The same as a TSS2 key file (no NV space used), loadable by the tpm2 provider.
        kf = env.path("gw.tss2.pem")
        k1 = tpm.identity("init", "--key-file", kf)
        expect(k1.returncode == 0 and "BEGIN PUBLIC KEY" in k1.stdout, "init --key-file creates a key file")
        with open(kf) as f:
            expect(f.read().startswith("-----BEGIN TSS2 PRIVATE KEY-----"),
                   "the key file is a TSS2 PRIVATE KEY PEM")
        k2 = tpm.identity("init", "--key-file", kf)
        expect(k2.returncode == 0 and k2.stdout == k1.stdout,
               "a second init --key-file reports the same key")
        expect(k1.stdout != r1.stdout, "the key file holds a different key than the handle")
        p = env.run([require("openssl"), "pkey", "-provider", "tpm2", "-provider", "default",
                     "-in", kf, "-pubout"], env=tpm.client_env())
        expect(p.returncode == 0 and p.stdout == k1.stdout,
               "the tpm2-openssl provider loads the key file and sees the same public key")
        tpm.restart()
        k3 = tpm.identity("show", "--key-file", kf)
        expect(k3.returncode == 0 and k3.stdout == k1.stdout, "the key file still works after a restart")

        # Seal / unseal, plain and bound to PCR 16.
        secret_bytes = b"spool-encryption-key-0123456789"
        secret = env.path("secret")
        with open(secret, "wb") as f:
            f.write(secret_bytes)
        os.chmod(secret, 0o644)
        r = tpm.identity("seal", "--in", secret, "--out", env.path("loose.sealed"))
        expect(r.returncode != 0 and secret in r.stderr and "mode 0644" in r.stderr and
               not os.path.exists(env.path("loose.sealed")),
               f"seal refuses a secret that others may read, naming the file and its mode "
               f"({r.stderr.strip()})")
        os.chmod(secret, 0o600)

        def unsealed(sealed, out):
            """`identity unseal`: the CompletedProcess and the bytes it wrote (None if none)."""
            r = tpm.identity("unseal", "--in", env.path(sealed), "--out", env.path(out))
            try:
                with open(env.path(out), "rb") as f:
                    return r, f.read()
            except OSError:
                return r, None

        r = tpm.identity("seal", "--in", secret, "--out", env.path("plain.sealed"))
        expect(r.returncode == 0, f"seal works ({r.stderr.strip()})")
        # The unsealed secret replaces an existing world-readable file and a symlink without
        # keeping the old mode or writing through the link.
        with open(env.path("plain.out"), "wb") as f:
            f.write(b"old")
        os.chmod(env.path("plain.out"), 0o644)
        r, data = unsealed("plain.sealed", "plain.out")
        expect(r.returncode == 0 and data == secret_bytes, "unseal returns the secret")
        expect(os.stat(env.path("plain.out")).st_mode & 0o777 == 0o600,
               "the unsealed secret is 0600, not the old file's 0644")
        with open(env.path("victim"), "wb") as f:
            f.write(b"victim")
        os.symlink(env.path("victim"), env.path("link.out"))
        r, data = unsealed("plain.sealed", "link.out")
        expect(r.returncode == 0 and data == secret_bytes and
               not os.path.islink(env.path("link.out")) and
               open(env.path("victim"), "rb").read() == b"victim",
               "unseal onto a symlink replaces the link, the file it pointed to is untouched")
        r = tpm.identity("seal", "--in", secret, "--out", env.path("pcr.sealed"),
                         "--pcrs", "sha256:16")
        expect(r.returncode == 0, f"seal bound to PCR 16 works ({r.stderr.strip()})")
        r, data = unsealed("pcr.sealed", "pcr.out")
        expect(r.returncode == 0 and data == secret_bytes,
               "unseal with the PCR policy satisfied returns the secret")
        tpm.tool("tpm2_pcrextend", "16:sha256=" + "11" * 32)
        r = tpm.identity("unseal", "--in", env.path("pcr.sealed"), "--out", env.path("pcr2.out"))
        expect(r.returncode == 9 and "policy" in r.stderr,
               f"after extending PCR 16 unseal is refused with exit 9 ({r.stderr.strip()})")
        with open(env.path("plain.sealed"), "r+b") as f:
            f.seek(40)
            b = f.read(1)
            f.seek(40)
            f.write(bytes([b[0] ^ 0xff]))
        r = tpm.identity("unseal", "--in", env.path("plain.sealed"), "--out", env.path("x.out"))
        expect(r.returncode != 0, "a corrupted sealed blob is refused")
    return 0


if __name__ == "__main__":
    sys.exit(main())
