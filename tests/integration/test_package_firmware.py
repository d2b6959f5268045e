"""The fleetgw-firmware package (scripts/make-deb.sh, FLEETGW_DEB_PARTS=firmware): from a
firmware folder like build/firmware/ (images signed at test time with fleetgw-tool, the public
signing key, a bootloader file), make-deb.sh builds fleetgw-firmware_<version>_all.deb that
lintian accepts without error or warning; the package holds exactly those files under
/usr/lib/fleetgw/firmware/, and the image extracted from it still verifies against the
packaged key. A private key among the files is refused, and so is a folder with signed images
but no public key."""

import os
import shutil
import subprocess
import tempfile

from fleetgw_harness import expect, program, run_main

SRC = os.environ.get("FLEETGW_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))


def run(argv, **kw):
    return subprocess.run(argv, capture_output=True, text=True, timeout=600, **kw)


def make_deb(fw, out):
    env = dict(os.environ, FLEETGW_DEB_PARTS="firmware", FLEETGW_FIRMWARE_DIR=fw,
               FLEETGW_DEB_OUT=out)
    return run([os.path.join(SRC, "scripts", "make-deb.sh")], env=env)


def main():
    for prog in ("dpkg-deb", "lintian"):
        if shutil.which(prog) is None:
            print(f"FAIL: {prog} not found: run scripts/deps.sh")
            return 1
    tool = program("fleetgw-tool")
    tmp = tempfile.mkdtemp(prefix="fleetgw-fwpkg-")
    try:
        fw = os.path.join(tmp, "firmware")
        keys = os.path.join(tmp, "keys")
        os.makedirs(fw)
        os.makedirs(keys)
        priv = os.path.join(keys, "sign.pem")
        pub = os.path.join(fw, "signing-key.pub.pem")
        r = run([tool, "key", "gen", "-o", priv, "--pub", pub])
        expect(r.returncode == 0, f"signing key made ({r.stderr.strip()})")
        for name, size in (("agent", 5000), ("agent-v2", 6000)):
            body = os.path.join(tmp, f"{name}.bin")
            with open(body, "wb") as f:
                f.write(os.urandom(size))
            r = run([tool, "image", "sign", "-k", priv, "-v", "1.0.0", "-H", "0x200",
                     "--pad-header", "-S", "0x20000", body, os.path.join(fw, f"{name}.signed.bin")])
            expect(r.returncode == 0, f"{name} signed ({r.stderr.strip()})")
        with open(os.path.join(fw, "boot.bin"), "wb") as f:
            f.write(os.urandom(2048))
        with open(os.path.join(fw, "unrelated.o"), "wb") as f:
            f.write(b"build debris")

        out = os.path.join(tmp, "out")
        r = make_deb(fw, out)
        print(r.stdout + r.stderr)
        expect(r.returncode == 0, "make-deb.sh builds fleetgw-firmware and lintian reports no "
                                  "error and no warning")
        version = run(["dpkg-parsechangelog", "-l",
                       os.path.join(SRC, "packaging", "debian", "changelog"),
                       "-S", "Version"]).stdout.strip()
        deb = os.path.join(out, f"fleetgw-firmware_{version}_all.deb")
        expect(os.path.isfile(deb), f"{os.path.basename(deb)} exists")
        expect(not os.path.exists(os.path.join(out, "src")),
               "the firmware-only build did not build the main package")
        fields = run(["dpkg-deb", "-f", deb, "Package", "Architecture", "Version"]).stdout
        expect("Architecture: all" in fields and f"Version: {version}" in fields,
               "Architecture: all, the tree's version")
        listing = run(["dpkg-deb", "-c", deb]).stdout
        shipped = sorted(line.split()[-1].rsplit("/", 1)[1] for line in listing.splitlines()
                         if "/usr/lib/fleetgw/firmware/" in line and not line.endswith("/"))
        expect(shipped == ["agent-v2.signed.bin", "agent.signed.bin", "boot.bin",
                           "signing-key.pub.pem"],
               f"exactly the images, the bootloader and the public key are shipped ({shipped})")
        expect("sign.pem" not in listing, "the private signing key is not in the package")

        root = os.path.join(tmp, "root")
        r = run(["dpkg-deb", "-x", deb, root])
        expect(r.returncode == 0, "the package extracts")
        d = os.path.join(root, "usr", "lib", "fleetgw", "firmware")
        r = run([tool, "image", "verify", "-k", os.path.join(d, "signing-key.pub.pem"),
                 os.path.join(d, "agent.signed.bin")])
        expect(r.returncode == 0, f"the packaged image verifies with the packaged key "
                                  f"({r.stdout.strip().splitlines()[0] if r.stdout else r.stderr})")

        # Refusals.
        shutil.copy(priv, os.path.join(fw, "mcuboot.bin"))
        r = make_deb(fw, out)
        expect(r.returncode != 0 and "private key" in r.stderr,
               f"a private key among the files is refused ({r.stderr.strip()[-200:]})")
        os.unlink(os.path.join(fw, "mcuboot.bin"))
        os.unlink(pub)
        r = make_deb(fw, out)
        expect(r.returncode != 0 and "signing-key.pub.pem" in r.stderr,
               "signed images without the public key are refused")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("PASS")
    return 0


if __name__ == "__main__":
    run_main(main)
