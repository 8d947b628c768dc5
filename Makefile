# Sirocco: a Rust unikernel runtime for Xen (PV, PVH, and HVM from a boot loader). See README.md.
#   make                  build the default app (build/hello.xen)
#   make build APP=x      build build/x.xen (and check it as Xen's loader will)
#   make test             host tests + lints, the no-Xen boot checks, then every image under real Xen (PV and PVH)
#                         in the QEMU lab
#   make run              boot httpd under real Xen in the lab, reachable at http://localhost:8080/ (Ctrl-C stops)
#   make lab-run APP=x [XL_ARGS='memory=64 extra="log=debug"']
#   make bench            boot-time and size benchmarks against a Linux PV guest, as a table
#   make soak             the long lab soak (1,000,000 keep-alive requests, 100,000 connections, heap checked)
#   make fuzz             every fuzz target for FUZZ_SECONDS (default 300) each; make test replays their corpora
#   make image APP=x [CMDLINE='log=debug']  build/x.img: a BIOS-bootable disk (GRUB, multiboot2) for HVM/EC2
#   make qemu-boot-check  hello booted without Xen under QEMU, via PVH (-kernel) and via build/hello.img
#   make test-hvm         httpd's disk image booted as an HVM guest under Xen in the lab (opt-in: ~20 minutes)
DEFAULT_APP := httpd
APP ?= $(DEFAULT_APP)
APPS := $(notdir $(patsubst %/Cargo.toml,%,$(wildcard apps/*/Cargo.toml)))
XL_ARGS ?=
# The `sirocco` command (tools/cli) builds, checks, boots and packages images, here as for an app anywhere else.
SIROCCO = cargo run -q --release -p sirocco-cli --
# This workspace's images go to build/, all sharing one target directory (one build of core and alloc).
IN_BUILD = --out-dir build --target-dir target/xen

.PHONY: all setup build build-all host-test fuzz-brief fuzz lab-test soak test lab-run run bench clean
.PHONY: image qemu-boot-check test-hvm lab-svm-repro bench-loss bench-density debug-core api-check live-page-check
FUZZ_SECONDS ?= 300

all: build

setup:
	@tools/setup-host.sh

build: setup
	$(SIROCCO) build -p $(APP) $(IN_BUILD)

# Every app, the example outside the workspace, and the README's tutorial apps made with `sirocco new` in a
# temporary directory (tools/tutorial.sh); the lab boots them all, and httpd once more as a libvirt domain made
# by `sirocco libvirt` (its image where the lab's dom0 finds it).
build-all: setup
	$(SIROCCO) build $(addprefix -p ,$(APPS)) $(IN_BUILD)
	$(SIROCCO) build --manifest-path examples/standalone/Cargo.toml $(IN_BUILD)
	tools/tutorial.sh
	$(SIROCCO) libvirt -p httpd --kernel /job/build/httpd.xen $(IN_BUILD) > build/httpd.xml

image: setup
	$(SIROCCO) image -p $(APP) --cmdline "$(CMDLINE)" $(IN_BUILD)

# Outside Xen the image must say so and halt cleanly, booted by QEMU both ways (tools/qemu-boot-check.sh).
qemu-boot-check: APP = hello
qemu-boot-check: image
	tools/qemu-boot-check.sh build/$(APP).xen build/$(APP).img

# HVM under Xen, the EC2 way (BIOS -> GRUB -> Sirocco), with Debian's device model in the lab's dom0. Not in
# `make test`: hvmloader and SeaBIOS take ~15 minutes under nested TCG.
test-hvm: build-all
	$(SIROCCO) image -p httpd --cmdline "log=info ip=10.0.0.2/24 gw=10.0.0.1" $(IN_BUILD)
	python3 lab/lab.py test hvm

host-test:
	cargo fmt --all --check
	cargo clippy --all-targets -- -D warnings
	# The platform crate and apps are linted on the host too (checked, not linked; panic=abort as on the target).
	cargo clippy -p sirocco-boot -p sirocco $(addprefix -p ,$(APPS)) --config 'profile.dev.panic="abort"' -- -D warnings
	# ...and the sirocco crate alone, as an app without the `unstable` feature sees it (xsprobe enables it above).
	cargo clippy -p sirocco --config 'profile.dev.panic="abort"' -- -D warnings
	# The crates apps program against document every public item, and their docs build without a warning.
	RUSTDOCFLAGS=-Dwarnings cargo doc -q --no-deps -p sirocco -p sirocco-net -p sirocco-tls -p sirocco-kernel-logic -p sirocco-macros
	cargo test
	# The carried smoltcp's own tests: its patches (third_party/README.md) keep upstream's behaviour elsewhere.
	cargo test --manifest-path third_party/smoltcp/Cargo.toml --target-dir target/smoltcp --lib --features segmentation-offload
	python3 -m unittest discover -s lab -p 'test_*.py'
	python3 -m unittest discover -s tools -p 'test_*.py'

# Each fuzz target over its committed corpus plus a few seconds of new inputs (regressions surface in make test).
fuzz-brief:
	tools/fuzz.sh brief 10

fuzz:
	tools/fuzz.sh long $(FUZZ_SECONDS)

lab-test: build-all
	python3 lab/lab.py test

# The public API against its snapshot in docs/api/ (an API change needs a CHANGELOG.md entry: tools/api-check.sh).
api-check:
	tools/api-check.sh

# The live stats page in headless Chromium (installed if missing) against httpd under load, in a lab boot of its
# own (serve mode, about a minute): two screenshots differ, the numbers move, no console error.
live-page-check: build-all
	tools/live-page-check.sh

test: setup host-test api-check fuzz-brief qemu-boot-check lab-test live-page-check

soak: build-all
	python3 lab/lab.py test soak

# The lab's nested-SVM fault: a PVH guest under load, not pinned (lab/guest/lib.sh, LAB_HVM_XL). Fails while it
# remains.
lab-svm-repro: build-all
	python3 lab/lab.py test pvh:svm-repro

lab-run: setup
	$(SIROCCO) run -p $(APP) --lab $(IN_BUILD) $(XL_ARGS)

# Post-mortem of a crashed domain dumped on a Xen host (`xl dump-core DOMAIN dom.core`, with on_crash = "preserve"):
# make debug-core APP=httpd CORE=dom.core -> what happened, then gdb on build/APP.core with build/APP.debug.
debug-core:
	@test -n "$(CORE)" || { echo "usage: make debug-core APP=<app> CORE=<file from xl dump-core>"; exit 2; }
	tools/debug-core build/$(APP).xen $(CORE) build/$(APP).core
	gdb -q build/$(APP).debug build/$(APP).core -ex bt

run: setup
	$(SIROCCO) run -p $(DEFAULT_APP) --lab --serve 80 $(IN_BUILD)

bench: build-all
	@mkdir -p build/bench
	@echo "vnetif: 1 MiB transfers through the fault profiles (host, simulated clock)"
	cargo run --release -q -p sirocco-vnetif --example bench | tee build/bench/vnetif.md
	python3 lab/lab.py bench

# Only the TCP-under-loss table (one lab run; every build/echo*.xen against a Linux PV guest).
bench-loss: build-all
	python3 lab/lab.py bench loss

bench-density: build-all
	python3 lab/lab.py bench density

clean:
	rm -rf build target
