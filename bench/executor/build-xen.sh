#!/usr/bin/env bash
# Builds the three size probes for Sirocco's x86_64-xen target and prints their section sizes.
# Usage: ./build-xen.sh [extra cargo args]   (run from bench/executor; needs a rustc with library source)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export RUSTC_BOOTSTRAP=1 RUSTC=${RUSTC:-/usr/bin/rustc}
export RUSTFLAGS="-C link-arg=-T$here/xen-bench.ld -C relocation-model=static"
export CARGO_TARGET_DIR=$here/target/xen
${CARGO:-/usr/bin/cargo} build --release -Zbuild-std=core,alloc -Zbuild-std-features=compiler-builtins-mem \
    -Zjson-target-spec --target "$here/../../x86_64-xen.json" --no-default-features --features xen \
    --bin size_baseline --bin size_sirocco --bin size_embassy --bin size_embassy_boxed "$@"
out=$CARGO_TARGET_DIR/x86_64-xen/release
printf '%-18s %8s %8s %8s %8s %12s %10s\n' probe .text .rodata .data .bss text+ro+data vs-baseline
for p in size_baseline size_sirocco size_embassy size_embassy_boxed; do
    size -A "$out/$p" | awk -v p="$p" '
        $1==".text"{t=$2} $1==".rodata"{r=$2} $1==".data"{d=$2} $1==".bss"{b=$2}
        END{printf "%-18s %8d %8d %8d %8d %12d\n", p, t, r, d, b, t+r+d}'
done | awk 'NR==1{base=$6} {printf "%s %+10d\n", $0, $6-base}'
