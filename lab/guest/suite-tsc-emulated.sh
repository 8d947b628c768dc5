# A PVH httpd whose every rdtsc Xen emulates (tsc_mode="always_emulate", what a pool that migrates between hosts of
# different TSC frequencies uses) under 20 rounds of network load: an SVM exit per clock read, thousands a second.
# It runs pinned to one physical CPU like every PVH guest in this lab (lib.sh, LAB_HVM_XL); suite svm-repro is the
# same load unpinned, where the lab's emulator fails.
cd /job
. /job/lab/net-lib.sh
expect tsc-emulated-survives
load_rounds tsc-emulated-survives 20 "every rdtsc emulated, the vCPU pinned" \
    '"tsc_mode": "always_emulate".*affinity 1$' 'tsc_mode="always_emulate"'
