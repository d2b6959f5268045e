#!/usr/bin/env bash
# make deb: builds the Debian packages into build/deb/ and checks them with lintian.
#   fleetgw_<version>_<arch>.deb          daemon, CLI, tools, unit, sysusers/tmpfiles, docs,
#                                         man pages, /etc/fleetgw/fleetgwd.conf (conffile)
#   fleetgw-firmware_<version>_all.deb    the signed node images, the bootloader and the
#                                         public signing key from build/firmware/, only when
#                                         that folder holds signed images
# The source tree is exported (tracked and new files, never build output) into
# build/deb/src/ and packaging/debian/ is placed at its root, so the working tree itself is
# never touched by dpkg-buildpackage. Installs nothing: scripts/deps.sh provides debhelper,
# dpkg-dev, lintian and fakeroot.
#
# Environment: FLEETGW_DEB_OUT (default build/deb), FLEETGW_FIRMWARE_DIR (default
# build/firmware), FLEETGW_DEB_JOBS (default 2), FLEETGW_DEB_NOCHECK=1 to skip the unit tests
# during the package build, FLEETGW_DEB_PARTS (default "main firmware") to build only some.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
out=${FLEETGW_DEB_OUT:-$here/build/deb}
fwdir=${FLEETGW_FIRMWARE_DIR:-$here/build/firmware}
jobs=${FLEETGW_DEB_JOBS:-2}
parts=" ${FLEETGW_DEB_PARTS:-main firmware} "

die() { echo "make-deb: $*" >&2; exit 1; }

for tool in dpkg-buildpackage dpkg-deb dpkg-parsechangelog dh lintian fakeroot cmake; do
    command -v "$tool" >/dev/null ||
        die "'$tool' not found: run scripts/deps.sh (it installs debhelper, dpkg-dev, lintian, fakeroot)"
done

# One version: debian/changelog must agree with project(VERSION) in CMakeLists.txt.
version=$(dpkg-parsechangelog -l "$here/packaging/debian/changelog" -S Version)
cmake_version=$(sed -n 's/^project(fleetgw VERSION \([0-9.]*\).*/\1/p' "$here/CMakeLists.txt")
[ "${version%%-*}" = "$cmake_version" ] ||
    die "packaging/debian/changelog says $version but CMakeLists.txt says $cmake_version"
arch=$(dpkg-architecture -qDEB_HOST_ARCH)

mkdir -p "$out"
checked=() # what lintian checks at the end

# fleetgw: dpkg-buildpackage in a fresh staging tree, build/deb/src = the source tree + debian/.
build_main() {
    src="$out/src"
    rm -rf "$src"
    mkdir -p "$src"
    if git -C "$here" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        # Tracked and untracked-but-not-ignored files as they are in the working tree (so an
        # uncommitted change is packaged as the developer sees it), minus deleted ones.
        (cd "$here" && git ls-files -z --cached --others --exclude-standard |
            while IFS= read -r -d '' f; do [ -f "$f" ] && printf '%s\0' "$f"; done |
            tar --null -T - -cf -) | tar -C "$src" -xf -
    else
        tar -C "$here" --exclude='./build' --exclude='./build-*' --exclude='./.git' -cf - . |
            tar -C "$src" -xf -
    fi
    rm -rf "$src/debian"
    cp -a "$here/packaging/debian" "$src/debian"

    rm -f "$out"/fleetgw_* "$out"/fleetgw-dbgsym_*
    echo "make-deb: building fleetgw $version ($arch) in $src"
    opts="parallel=$jobs"
    [ "${FLEETGW_DEB_NOCHECK:-0}" = 1 ] && opts="$opts nocheck"
    (cd "$src" && DEB_BUILD_OPTIONS="$opts" dpkg-buildpackage --build=binary -us -uc) \
        > "$out/build.log" 2>&1 || { tail -60 "$out/build.log" >&2; die "dpkg-buildpackage failed (full log: $out/build.log)"; }
    deb="$out/fleetgw_${version}_${arch}.deb"
    [ -f "$deb" ] || die "dpkg-buildpackage did not produce $deb"
    echo "make-deb: $deb"
    checked+=("$out/fleetgw_${version}_${arch}.changes")
}
if [[ "$parts" == *" main "* ]]; then
    build_main
fi

# fleetgw-firmware: built with dpkg-deb from the images the tree produced, when there are.
shopt -s nullglob
rm -f "$out"/fleetgw-firmware_*
images=()
[[ "$parts" == *" firmware "* ]] && images=("$fwdir"/*.signed.bin)
if [ ${#images[@]} -gt 0 ]; then
    [ -f "$fwdir/signing-key.pub.pem" ] ||
        die "$fwdir has signed images but no signing-key.pub.pem"
    files=("${images[@]}" "$fwdir/signing-key.pub.pem")
    # The bootloader as flashed (raw binary); ELF files and link maps stay in the build tree.
    for f in "$fwdir"/boot*.bin "$fwdir"/mcuboot*.bin; do
        files+=("$f")
    done
    for f in "${files[@]}"; do
        if grep -qa 'PRIVATE KEY' "$f"; then
            die "$f contains a private key: refusing to package it"
        fi
    done
    fw="$out/fleetgw-firmware-root"
    rm -rf "$fw"
    mkdir -p "$fw/DEBIAN" "$fw/usr/lib/fleetgw/firmware" "$fw/usr/share/doc/fleetgw-firmware"
    install -m 0644 "${files[@]}" "$fw/usr/lib/fleetgw/firmware/"
    install -m 0644 "$here/packaging/debian/copyright" "$fw/usr/share/doc/fleetgw-firmware/copyright"
    {
        echo "fleetgw-firmware ($version) unstable; urgency=medium"
        echo
        echo "  * Signed node firmware images built by the fleetgw tree $version."
        echo
        echo " -- $(dpkg-parsechangelog -l "$here/packaging/debian/changelog" -S Maintainer)  $(dpkg-parsechangelog -l "$here/packaging/debian/changelog" -S Date)"
    } | gzip -9n > "$fw/usr/share/doc/fleetgw-firmware/changelog.gz"
    size=$(du -k -s --exclude=DEBIAN "$fw" | cut -f1)
    sed -e "s/@VERSION@/$version/" -e "s/@SIZE@/$size/" \
        -e "s/@MAINTAINER@/$(dpkg-parsechangelog -l "$here/packaging/debian/changelog" -S Maintainer)/" \
        "$here/packaging/firmware/control.in" > "$fw/DEBIAN/control"
    (cd "$fw" && find usr -type f -print0 | sort -z | xargs -0 md5sum) > "$fw/DEBIAN/md5sums"
    find "$fw" -type d -exec chmod 0755 {} +
    fwdeb="$out/fleetgw-firmware_${version}_all.deb"
    dpkg-deb --root-owner-group -Zxz --build "$fw" "$fwdeb" >/dev/null
    rm -rf "$fw"
    checked+=("$fwdeb")
    echo "make-deb: $fwdeb (${#files[@]} files from $fwdir)"
elif [[ "$parts" == *" firmware "* ]]; then
    echo "make-deb: no signed images in $fwdir: fleetgw-firmware not built"
fi

# lintian: no error and no warning, with no overrides.
echo "make-deb: lintian"
[ ${#checked[@]} -gt 0 ] || die "nothing was built (FLEETGW_DEB_PARTS='${parts# }')"
lintian --fail-on error,warning --display-info "${checked[@]}"
echo "make-deb: done"
