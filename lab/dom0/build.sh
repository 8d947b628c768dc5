#!/usr/bin/env bash
# Builds (once) the lab's dom0: a Debian bookworm root with Xen 4.17 and Linux, as an ext4 image, plus the
# uncompressed hypervisor, dom0 kernel and initrd QEMU boots. Cached outside the repo under
#   ${SIROCCO_CACHE:-$HOME/.cache/sirocco}/dom0-<hash of this recipe>/
# and rebuilt only when the recipe (this script, packages.txt, sirocco-lab-init) changes. Prints the cache dir on stdout.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache_root=${SIROCCO_CACHE:-$HOME/.cache/sirocco}
hash=$(cat "$here/build.sh" "$here/packages.txt" "$here/sirocco-lab-init" | sha256sum | cut -c1-12)
out="$cache_root/dom0-$hash"
if [ -f "$out/ready" ]; then echo "$out"; exit 0; fi

log() { echo "dom0-build: $*" >&2; }
for tool in mmdebstrap mke2fs; do
    command -v "$tool" >/dev/null || { log "missing $tool: run tools/setup-host.sh"; exit 1; }
done
# Mirrors from this machine's own apt sources (never a hard-coded host).
mirrors=$(grep -rhoE '^(URIs:|deb) *https?://[^ ]+' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources \
            /etc/apt/sources.list.d/*.list 2>/dev/null | grep -oE 'https?://[^ ]+' | grep -E '/debian(-security)?/?$' | sort -u || true)
main=$(echo "$mirrors" | grep -v security | head -n1 || true); sec=$(echo "$mirrors" | grep security | head -n1 || true)
main=${main:-http://deb.debian.org/debian}
srcs=("deb $main bookworm main" "deb $main bookworm-updates main")
[ -n "$sec" ] && srcs+=("deb $sec bookworm-security main")
pkgs=$(grep -vE '^\s*(#|$)' "$here/packages.txt" | paste -sd, -)

rm -rf "$out.tmp"; mkdir -p "$out.tmp"
log "building dom0 root in $out (mmdebstrap, about 1-3 minutes; apt progress follows)"
start=$(date +%s)
mmdebstrap --variant=minbase --include="$pkgs" \
    --customize-hook='mkdir -p "$1/job"' \
    --customize-hook="copy-in $here/sirocco-lab-init /sbin" \
    bookworm "$out.tmp/root" "${srcs[@]}" >&2
[ -x "$out.tmp/root/sbin/sirocco-lab-init" ] || { log "init script missing from root"; exit 1; }
log "root done in $(( $(date +%s) - start ))s; extracting kernel, initrd, hypervisor"
cp "$(ls "$out.tmp"/root/boot/vmlinuz-* | sort -V | tail -n1)" "$out.tmp/vmlinuz"
cp "$(ls "$out.tmp"/root/boot/initrd.img-* | sort -V | tail -n1)" "$out.tmp/initrd.img"
zcat "$out.tmp"/root/boot/xen-4.17-amd64.gz > "$out.tmp/xen"
log "making ext4 image of the root"
mke2fs -q -F -t ext4 -d "$out.tmp/root" "$out.tmp/dom0.img" 3G
rm -rf "$out.tmp/root"
touch "$out.tmp/ready"
rm -rf "$out"; mv "$out.tmp" "$out"
# Older recipes' images (3 GiB sparse each) are of no further use.
for old in "$cache_root"/dom0-*; do [ "$old" = "$out" ] || rm -rf "$old"; done
log "dom0 ready in $(( $(date +%s) - start ))s"
echo "$out"
