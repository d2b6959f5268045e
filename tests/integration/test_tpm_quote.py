"""TPM2_Quote with the attestation key: `identity quote` writes the blob, `fleetgw-tool quote
verify` checks it with OpenSSL only. It
verifies with the AK's public key and the right nonce; it fails with another nonce, another
key, PCR values tampered in the blob, or the blob of a later quote checked against an old
expectation."""

import re
import sys

from fleetgw_harness import Env, expect, program

NONCE = "a1b2c3d4e5f60718293a4b5c6d7e8f90"


def verify(env, ak, nonce, blob):
    r = env.run([program("fleetgw-tool"), "quote", "verify", "--ak", ak, "--nonce", nonce, "--show", blob])
    print(r.stdout + r.stderr)
    return r


def pcr_values(stdout):
    return dict(re.findall(r"^(sha\d+:\d+)=([0-9a-f]+)$", stdout, re.M))


def altered_copy(env, src, name, change):
    """A copy of file src as env.path(name), its bytes changed in place by change(bytearray)."""
    with open(src, "rb") as f:
        data = bytearray(f.read())
    change(data)
    out = env.path(name)
    with open(out, "wb") as f:
        f.write(data)
    return out


def main():
    with Env("tpm-quote") as env:
        tpm = env.start_tpm()
        ak = env.path("ak.pem")
        r = tpm.identity("ak", "--out", ak)
        expect(r.returncode == 0, f"identity ak creates the attestation key ({r.stderr.strip()})")
        r2 = tpm.identity("show", "--ak")
        with open(ak) as f:
            expect(r2.returncode == 0 and r2.stdout == f.read(),
                   "identity show --ak exports the same AK public key")
        attrs = tpm.tool("tpm2_readpublic", "-c", "0x81000002").stdout
        m = re.search(r"^attributes:\s*\n\s*value:\s*(\S+)", attrs, re.M)
        ak_attrs = set(m.group(1).split("|")) if m else set()
        expect({"restricted", "sign", "fixedtpm", "fixedparent", "sensitivedataorigin"} <= ak_attrs
               and "decrypt" not in ak_attrs,
               f"the AK at 0x81000002 is a restricted signing key that stays in the TPM ({ak_attrs})")

        tpm.tool("tpm2_pcrextend", "7:sha256=" + "42" * 32)
        blob = env.path("q1.bin")
        r = tpm.identity("quote", "--nonce", NONCE, "--pcrs", "sha256:0,1,7", "--out", blob)
        expect(r.returncode == 0, f"identity quote writes a blob ({r.stderr.strip()})")
        v = verify(env, ak, NONCE, blob)
        expect(v.returncode == 0 and v.stdout.startswith("VALID"),
               "the quote verifies with the AK public key and the nonce")
        vals = pcr_values(v.stdout)
        expect(set(vals) == {"sha256:0", "sha256:1", "sha256:7"},
               "the blob carries exactly the quoted PCRs")
        tools_pcr7 = tpm.tool("tpm2_pcrread", "sha256:7").stdout
        expect(vals["sha256:7"].upper() in tools_pcr7.upper().replace("0X", ""),
               "the PCR 7 value in the blob is the TPM's (tpm2_pcrread)")
        expect(vals["sha256:7"] != "00" * 32, "PCR 7 was extended before the quote")

        v = verify(env, ak, NONCE[:-2] + "00", blob)
        expect(v.returncode == 1 and "nonce" in v.stdout, "another nonce fails (nonce mismatch)")
        other_ak = env.path("other.pem")
        r = tpm.identity("ak", "--ak-handle", "0x81000003", "--out", other_ak)
        expect(r.returncode == 0, "a second AK for the negative test")
        v = verify(env, other_ak, NONCE, blob)
        expect(v.returncode == 1 and "signature" in v.stdout, "another AK's public key fails")

        # Tamper with the PCR 7 value in the blob (the last entry, last 32 bytes).
        def flip_last_bit(data):
            data[-1] ^= 0x01

        tampered = altered_copy(env, blob, "q1-tampered.bin", flip_last_bit)
        v = verify(env, ak, NONCE, tampered)
        expect(v.returncode == 1 and "PCR" in v.stdout,
               "a PCR value changed in the blob fails (PCR digest mismatch)")

        # Extend PCR 7 after quoting: a new quote shows the new value; the old blob's values
        # no longer describe the TPM.
        tpm.tool("tpm2_pcrextend", "7:sha256=" + "43" * 32)
        blob2 = env.path("q2.bin")
        r = tpm.identity("quote", "--nonce", NONCE, "--pcrs", "sha256:0,1,7", "--out", blob2)
        expect(r.returncode == 0, "a second quote after extending PCR 7")
        v2 = verify(env, ak, NONCE, blob2)
        expect(v2.returncode == 0, "the second quote verifies")
        vals2 = pcr_values(v2.stdout)
        expect(vals2["sha256:7"] != vals["sha256:7"] and vals2["sha256:0"] == vals["sha256:0"],
               "only PCR 7 differs between the two quotes")
        # Splice the old PCR values into the new quote: must fail.
        with open(blob, "rb") as f:
            old = f.read()

        def old_pcr7(data):
            data[-32:] = old[-32:]

        spliced = altered_copy(env, blob2, "q2-spliced.bin", old_pcr7)
        v = verify(env, ak, NONCE, spliced)
        expect(v.returncode == 1 and "PCR" in v.stdout,
               "the new quote with the old PCR 7 value fails")

        # Malformed input is refused as malformed (exit 1), usage errors are exit 2.
        with open(env.path("junk.bin"), "wb") as f:
            f.write(b"FGWQ\x00\x01\xff\xff")
        v = verify(env, ak, NONCE, env.path("junk.bin"))
        expect(v.returncode == 1 and "malformed" in v.stdout, "a malformed blob is refused")
        v = env.run([program("fleetgw-tool"), "quote", "verify", "--nonce", NONCE, blob])
        expect(v.returncode == 2, "missing --ak is a usage error (exit 2)")

        # Quote over two banks.
        r = tpm.identity("quote", "--nonce", NONCE, "--pcrs", "sha1:0+sha256:7,16",
                         "--out", env.path("q3.bin"))
        expect(r.returncode == 0, f"a quote over sha1 and sha256 banks ({r.stderr.strip()})")
        v = verify(env, ak, NONCE, env.path("q3.bin"))
        expect(v.returncode == 0 and set(pcr_values(v.stdout)) == {"sha1:0", "sha256:7", "sha256:16"},
               "the two-bank quote verifies with all three PCRs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
