#!/usr/bin/env bash
# The README's tutorial ("Your first application"), step by step, as `make build-all` (and so `make test`) runs it:
# installs the `sirocco` command from this checkout, makes a new application in a temporary directory outside the
# repository, builds and checks it, then the README's network example as a second app (echo-xen, its code taken
# from README.md), and leaves their images and xl configs in build/, where the lab boots them as PV and PVH
# (lab/guest/suite-boot.sh: tutorial-*).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
say() { echo "tutorial: $*" >&2; }

# 1. Install the command. A newcomer runs `cargo install --path tools/cli` (or `--git URL sirocco-cli`); here it
# goes into the temporary directory, built in the checkout's target/ so a re-run does not rebuild it.
say "cargo install --path tools/cli"
cargo install -q --locked --path "$root/tools/cli" --root "$work/cargo" --target-dir "$root/target/cli"
export PATH="$work/cargo/bin:$PATH"

# 2. Make an application, outside the repository.
cd "$work"
say "sirocco new hello-xen (in $work)"
sirocco new hello-xen
cd hello-xen
test -f Cargo.toml -a -f src/main.rs -a -f hello-xen.cfg || { say "sirocco new wrote no crate"; exit 1; }

# 3. Build and check it. CARGO_TARGET_DIR shares the build of core, alloc and the runtime with this checkout's own
# images (minutes saved; nothing else changes).
export CARGO_TARGET_DIR="$root/target/xen"
say "sirocco build"
sirocco build
say "sirocco check"
sirocco check

# 4. `sirocco run` would boot it now; `make test` boots it in its one lab boot instead (suite-boot).
mkdir -p "$root/build"
cp "$CARGO_TARGET_DIR/sirocco/hello-xen.xen" "$CARGO_TARGET_DIR/sirocco/hello-xen.debug" hello-xen.cfg "$root/build/"

# 5. The network service of the README's next step: its code block, verbatim, as src/main.rs of a second app, with
# the vif and the address the README adds to the xl config.
cd "$work"
sirocco new echo-xen >/dev/null
cd echo-xen
awk '/^<!-- tutorial: echo-xen\/src\/main.rs -->$/ { on = 1; next } on && /^```rust$/ { copy = 1; next }
     copy && /^```$/ { exit } copy { print }' "$root/README.md" >src/main.rs
grep -q 'TcpListener::bind' src/main.rs || { say "no echo-xen code block found in README.md"; exit 1; }
sed -i 's|^# vif = \[.*|vif = [ '"'"'bridge=xenbr0'"'"' ]|; s|^extra = .*|extra = "log=info ip=10.0.0.9/24 gw=10.0.0.1"|' echo-xen.cfg
grep -q "^vif = \[ 'bridge=xenbr0' \]" echo-xen.cfg || { say "echo-xen.cfg has no vif line to enable"; exit 1; }
say "sirocco build (echo-xen, the README's network example)"
sirocco build
cp "$CARGO_TARGET_DIR/sirocco/echo-xen.xen" "$CARGO_TARGET_DIR/sirocco/echo-xen.debug" echo-xen.cfg "$root/build/"
say "build/{hello-xen,echo-xen}.{xen,cfg} ready for the lab"
