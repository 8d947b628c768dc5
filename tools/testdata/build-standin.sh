#!/usr/bin/env bash
# Builds the stand-in kernel (tools/testdata/standin-kernel.S): build-standin.sh OUT.elf [MODE]
# MODE 0 (default) behaves as Sirocco does outside Xen; 1, 2, 3 are the negative variants described there.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$1
mode=${2:-0}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
as --64 --defsym MODE="$mode" -o "$tmp/standin.o" "$here/standin-kernel.S"
ld -m elf_x86_64 -nostdlib -z max-page-size=0x1000 --build-id=none -T "$here/standin-kernel.ld" -o "$out" "$tmp/standin.o"
