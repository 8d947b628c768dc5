# Reproduces the lab's one known fault (not part of `make test`; `make lab-svm-repro`): the load of suite
# tsc-emulated on a PVH httpd whose vCPU may run on either physical CPU (cpus="all"), i.e. move between the
# threads of QEMU's multi-threaded TCG. There it was ended by "Triple fault" within 1-12 rounds, Xen reading back
# its own registers as the guest's (lib.sh, LAB_HVM_XL); pinned, the same load ran 40 rounds clean. The check
# passes only if the guest serves every round, so it fails while the emulator's fault remains.
cd /job
. /job/lab/net-lib.sh
expect svm-repro-unpinned-survives
load_rounds svm-repro-unpinned-survives 40 "every rdtsc emulated, the vCPU free to move between physical CPUs" \
    '"tsc_mode": "always_emulate".*affinity all$' 'tsc_mode="always_emulate"' 'cpus="all"'
