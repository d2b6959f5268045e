#!/usr/bin/env bash
# Installs the Debian packages that fleetgw's build, tests, firmware and packaging need.
# Idempotent and quick when everything is present. As root it runs apt-get; otherwise it
# prints the one command to run (with sudo, or su where sudo is absent) and fails.
#   scripts/deps.sh            everything (build, tests, firmware, packaging)
#   scripts/deps.sh --check    only report what is missing (exit 1 if anything is)
set -euo pipefail

HOST_PKGS=(
    build-essential cmake pkg-config clang libclang-rt-14-dev clang-format clang-tidy cppcheck
    libmosquitto-dev mosquitto-dev mosquitto mosquitto-clients libssl-dev openssl libsystemd-dev systemd
    libtss2-dev tpm2-openssl tpm2-tools swtpm swtpm-tools tpm2-abrmd libtss2-tcti-tabrmd0
    dbus libjson-c-dev libsqlite3-dev sqlite3 libmbedtls-dev
    python3 python3-cryptography python3-cbor2 strace util-linux
    # the clustered cloud broker of integration.rabbitmq_cluster (its nodes are the test's own;
    # the package's system service is not used)
    rabbitmq-server
)
FIRMWARE_PKGS=(gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm dpkg-dev)
PACKAGING_PKGS=(debhelper dpkg-dev lintian fakeroot)

want=("${HOST_PKGS[@]}" "${FIRMWARE_PKGS[@]}" "${PACKAGING_PKGS[@]}")

missing=()
for p in "${want[@]}"; do
    st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    [ "$st" = "installed" ] || missing+=("$p")
done
# Remove duplicates while keeping order.
if [ ${#missing[@]} -gt 0 ]; then
    mapfile -t missing < <(printf '%s\n' "${missing[@]}" | awk '!seen[$0]++')
fi

# Mbed TLS for the firmware is cross-built from Debian's source package: apt needs a deb-src
# entry for it (a copy of the system's deb entries with Types: deb-src).
SRC_LIST=/etc/apt/sources.list.d/fleetgw-deb-src.sources
need_src=0
if ! grep -rqs '^Types:.*deb-src' /etc/apt/sources.list.d/ && ! grep -qs '^deb-src ' /etc/apt/sources.list; then
    need_src=1
fi

if [ "${1:-}" = "--check" ]; then
    [ ${#missing[@]} -eq 0 ] && [ $need_src -eq 0 ] && { echo "deps: all present"; exit 0; }
    echo "deps: missing: ${missing[*]:-} $([ $need_src -eq 1 ] && echo '(deb-src entry)')"
    exit 1
fi

if [ ${#missing[@]} -eq 0 ] && [ $need_src -eq 0 ]; then
    echo "deps: all ${#want[@]} Debian packages present"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    # One line to copy: what this script would do as root (the deb-src entry, the package
    # lists, the packages), for sudo, or for su where sudo is not installed.
    steps=""
    if [ $need_src -eq 1 ]; then
        if [ -f /etc/apt/sources.list.d/debian.sources ]; then
            steps="sed 's/^Types: deb\$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources > $SRC_LIST && "
        else
            steps="grep '^deb ' /etc/apt/sources.list | sed 's/^deb /deb-src /' > ${SRC_LIST%.sources}.list && "
        fi
    fi
    steps="${steps}apt-get update && apt-get install -y --no-install-recommends ${missing[*]:-}"
    echo "deps: missing Debian packages: ${missing[*]:-none}$([ $need_src -eq 1 ] && echo ' (and a deb-src entry for the firmware'"'"'s Mbed TLS source)')" >&2
    echo "deps: install them with this one command, then run make again:" >&2
    if command -v sudo >/dev/null 2>&1; then
        echo "  sudo sh -c \"$steps\"" >&2
    else
        echo "  su -c \"$steps\"" >&2
    fi
    exit 1
fi

if [ $need_src -eq 1 ]; then
    if [ -f /etc/apt/sources.list.d/debian.sources ]; then
        sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources > "$SRC_LIST.tmp"
    else
        grep '^deb ' /etc/apt/sources.list | sed 's/^deb /deb-src /' > "${SRC_LIST%.sources}.list.tmp"
        mv "${SRC_LIST%.sources}.list.tmp" "${SRC_LIST%.sources}.list"
    fi
    [ -f "$SRC_LIST.tmp" ] && mv "$SRC_LIST.tmp" "$SRC_LIST"
    echo "deps: added a deb-src entry for Debian's mbedtls source package"
fi

export DEBIAN_FRONTEND=noninteractive
echo "deps: installing ${missing[*]:-(source lists only)}"
apt-get update -q
if [ ${#missing[@]} -gt 0 ]; then
    apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
echo "deps: done"
