#!/usr/bin/env bash
# Installs what building Sirocco and running its Xen lab need on a Debian bookworm machine.
# Idempotent: does nothing when everything is present. Needs root (or sudo).
set -euo pipefail

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

need=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

# Toolchain with library source (see README "Toolchain"): only when no rustup toolchain has rust-src.
rustup_src=""
if command -v rustc >/dev/null 2>&1; then
    sysroot=$(rustc --print sysroot 2>/dev/null || true)
    [ -d "$sysroot/lib/rustlib/src/rust/library/core" ] && rustup_src=yes
fi
if [ -z "$rustup_src" ]; then
    for p in rustc-web cargo-web rust-web-src; do have_pkg "$p" || need+=("$p"); done
fi
for p in libxen-dev mmdebstrap e2fsprogs zstd; do have_pkg "$p" || need+=("$p"); done
# binutils: nm and objcopy (the symbol table and debug info split in tools/xbuild.sh), addr2line (tools/symbolize);
# gdb for `make debug-core`.
for p in binutils gdb; do have_pkg "$p" || need+=("$p"); done
# BIOS disk images (tools/mkimage.sh): GRUB's i386-pc images and grub-mkimage, sfdisk.
for p in grub-pc-bin grub-common fdisk; do have_pkg "$p" || need+=("$p"); done
qemu_needed=""
have_pkg qemu-system-x86 || qemu_needed=yes

if [ ${#need[@]} -eq 0 ] && [ -z "$qemu_needed" ]; then
    echo "setup-host: all host packages present"
    exit 0
fi

# bookworm-backports carries the QEMU the lab was verified with; add it using the mirror this
# machine already uses (never a hard-coded host).
if [ -n "$qemu_needed" ] && ! grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
    mirror=$(grep -rhoE '^(URIs:|deb) *https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
        | grep -oE "https?://[^ ]+" | grep -v security | head -n1 || true)
    mirror=${mirror:-http://deb.debian.org/debian}
    echo "setup-host: adding bookworm-backports from $mirror"
    printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
        "$mirror" | $SUDO tee /etc/apt/sources.list.d/sirocco-backports.sources >/dev/null
fi

echo "setup-host: installing ${need[*]} ${qemu_needed:+qemu-system-x86} (apt output follows)"
$SUDO apt-get update -q
[ ${#need[@]} -eq 0 ] || $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}"
if [ -n "$qemu_needed" ]; then
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends -t bookworm-backports qemu-system-x86 \
      || $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends qemu-system-x86
fi
echo "setup-host: done"
