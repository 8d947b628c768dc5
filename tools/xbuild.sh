#!/usr/bin/env bash
# Builds Sirocco images for the x86_64-xen target: tools/xbuild.sh APP... -> build/APP.xen, where APP is an app of
# this workspace (apps/APP) or the directory of an application crate outside it (e.g. examples/standalone: its own
# workspace, a path dependency on kernel/), whose image is named after its package.
#
# Nothing about linking comes from here: the `sirocco` crate's build script ships the linker script and the target
# spec names it, so an app crate anywhere builds with `--target x86_64-xen.json` and -Zbuild-std alone.
#
# Building `core`/`alloc` for a custom target needs a toolchain that ships the library source (-Zbuild-std).
# In order of preference: $SIROCCO_RUSTC if set; the rustup toolchain on PATH if it has rust-src (the usual
# developer box: `rustup component add rust-src`); Debian's rustc-web + rust-web-src (installed by
# tools/setup-host.sh when nothing else has the source). Stable compilers need RUSTC_BOOTSTRAP=1 for -Zbuild-std,
# as the Linux kernel's Rust build does.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
[ $# -gt 0 ] || { echo "usage: $0 APP..." >&2; exit 2; }

has_src() { [ -d "$("$1" --print sysroot 2>/dev/null)/lib/rustlib/src/rust/library/core" ]; }
pick() {
    if [ -n "${SIROCCO_RUSTC:-}" ]; then
        RUSTC_BIN=$SIROCCO_RUSTC; CARGO_BIN=${SIROCCO_CARGO:-cargo}; WHY="SIROCCO_RUSTC"
    elif command -v rustc >/dev/null && has_src rustc; then
        RUSTC_BIN=$(command -v rustc); CARGO_BIN=cargo; WHY="rustup toolchain with rust-src"
    elif [ -x /usr/bin/rustc ] && has_src /usr/bin/rustc && [ -x /usr/bin/cargo ]; then
        RUSTC_BIN=/usr/bin/rustc; CARGO_BIN=/usr/bin/cargo; WHY="Debian rustc-web + rust-web-src"
    else
        return 1
    fi
}
if ! pick; then
    echo "xbuild: no Rust toolchain with library source found; installing Debian's rustc-web (tools/setup-host.sh)" >&2
    "$root/tools/setup-host.sh" >&2
    pick || { echo "xbuild: still no toolchain with rust-src; see README 'Toolchain'" >&2; exit 1; }
fi
echo "xbuild: using $("$RUSTC_BIN" --version) at $RUSTC_BIN ($WHY)" >&2

mkdir -p build
# xen_cargo ARGS...: cargo build for the target, sharing one target directory (and one build of core/alloc).
xen_cargo() {
    RUSTC_BOOTSTRAP=1 RUSTC="$RUSTC_BIN" CARGO_TARGET_DIR="$root/target/xen" \
        "$CARGO_BIN" build --release "$@" \
        -Zbuild-std=core,alloc -Zbuild-std-features=compiler-builtins-mem -Zjson-target-spec \
        --target "$root/x86_64-xen.json"
}
pkgs=(); names=(); for app in "$@"; do
    if [ -f "$app/Cargo.toml" ]; then
        # An application crate outside the workspace: its package name names the image.
        name=$(sed -n 's/^name *= *"\(.*\)"/\1/p' "$app/Cargo.toml" | head -n1)
        [ -n "$name" ] || { echo "xbuild: no package name in $app/Cargo.toml" >&2; exit 2; }
        xen_cargo --manifest-path "$app/Cargo.toml"
        names+=("$name")
    elif [ -f "apps/$app/Cargo.toml" ]; then
        pkgs+=(-p "$app"); names+=("$app")
    else
        echo "xbuild: no app '$app' (apps/: $(ls apps | tr '\n' ' '); or a crate directory)" >&2; exit 2
    fi
done
[ ${#pkgs[@]} -eq 0 ] || xen_cargo "${pkgs[@]}"
# Each image gets its symbol table for crash reports (the function names a backtrace prints in the guest) in its
# last section, filled in after the link so nothing else moves; its debug info goes to build/APP.debug (for
# tools/symbolize and gdb, linked by .gnu_debuglink) and out of the image.
cargo build -q --release -p sirocco-imgcheck --bin sirocco-symtab
for app in "${names[@]}"; do
    img="build/$app.xen"
    cp "target/xen/x86_64-xen/release/$app" "$img"
    target/release/sirocco-symtab "$img" "build/$app.symtab" >&2
    objcopy --update-section ".sirocco_syms=build/$app.symtab" "$img"
    objcopy --only-keep-debug "$img" "build/$app.debug"
    objcopy --strip-debug --add-gnu-debuglink="build/$app.debug" "$img"
    rm -f "build/$app.symtab"
    echo "xbuild: $img ($(stat -c %s "$img") bytes; debug info in build/$app.debug)" >&2
done
