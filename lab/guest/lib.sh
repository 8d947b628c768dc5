# Helpers for lab jobs, sourced inside the lab's dom0 (busybox/Debian shell). Results go to the serial console as
#   SIROCCO-SUITE <suite>                         a suite starts (written by the job script)
#   SIROCCO-EXPECT <name>...                      the checks the suite will report, declared before any runs
#   SIROCCO-RESULT PASS|FAIL <name> <detail>      one per check
#   SIROCCO-BENCH <key>=<value> ...               raw figures for the host to tabulate
#   console|<line>  xl|<line>  xen|<line>         evidence shown when a check fails (or on request)
# which lab/lab.py reads.

LAB_PASSES=0
LAB_FAILS=0
# LAB_MODE: pv (the default) or pvh, set by the job script around a suite (lab.py's "pvh:SUITE"). Under pvh every
# Sirocco guest the suite starts gets `type="pvh"` (the same image: it carries both entry points), and every check
# name gets a "pvh-" prefix, so one lab boot runs a suite's checks for both modes and reports them apart.
LAB_MODE=${LAB_MODE:-pv}
# cname NAME: the check's name in this mode.
cname() { if [ "$LAB_MODE" = pv ]; then echo "$1"; else echo "$LAB_MODE-$1"; fi; }
# pv_only: true in PV mode; guards the long soaks, which the PVH pass does not repeat.
pv_only() { [ "$LAB_MODE" = pv ]; }
# LAB_HVM_XL: the xl settings every PVH/HVM guest gets in this lab, work-arounds for the lab's emulated CPU, not for
# Xen or for Sirocco.
# - cpus="1": the guest's vCPU stays on one physical CPU. Under QEMU's multi-threaded TCG, whose nested SVM is the
#   lab's only way to run PVH/HVM, a PVH guest was ended by "Triple fault" once in every one or two `make test` runs
#   (a migrated kv, an httpd under the soak), and under network load with every rdtsc emulated within 1-12 rounds of
#   the load below. The last case left proof that the emulator, not the guest, went wrong: the state Xen read back
#   as the guest's was Xen's own (RIP just after Xen's `vmrun`, Xen's CR3, IDT, GDT and CS 0xe008, RAX the VMCB's
#   address), with a double fault being delivered. Pinned, the same load ran 40 rounds clean; with QEMU's
#   single-threaded TCG (twice as slow) it ran 20. So the fault needs the vCPU to move between QEMU's vCPU threads.
#   `make lab-svm-repro` (suite pvh:svm-repro: the same load, not pinned) keeps it reproducible.
# - tsc_mode="native": QEMU's TCG advertises no invariant TSC, so Xen's default emulates every rdtsc of an
#   HVM-container guest, an SVM exit (slow under TCG) per clock read; "native" is what a host with an invariant
#   TSC gives. The emulated case is checked too, pinned (suite pvh:tsc-emulated).
# PV guests do not run under SVM and keep Xen's defaults.
LAB_HVM_XL='tsc_mode="native" cpus="1"'
# mode_type CFG: the xl overrides that boot a Sirocco guest (a config under xl-configs/) in this mode; nothing for
# PV (the configs say type="pv") or for the Linux peers' configs, which stay PV.
mode_type() { case "$LAB_MODE:$1" in pv:*) ;; *:xl-configs/*) echo "type=\"$LAB_MODE\" $LAB_HVM_XL" ;; esac; }
export PATH=/usr/lib/xen-4.17/bin:$PATH

log() { echo "lab: $*"; }
pass() { LAB_PASSES=$((LAB_PASSES + 1)); echo "SIROCCO-RESULT PASS $(cname "$1") ${2:-}"; }
fail() { LAB_FAILS=$((LAB_FAILS + 1)); echo "SIROCCO-RESULT FAIL $(cname "$1") ${2:-}"; }
# expect NAME...: declares checks the current suite will report. lab.py fails a declared check that never
# reported (a suite that died or skipped it) and a passing check that was never declared, so no check can pass
# by not running.
expect() { echo "SIROCCO-EXPECT $(for n in "$@"; do cname "$n"; done | tr '\n' ' ')"; }
now() { date +%s.%N; }
# cpu_s DOMAIN: CPU seconds Xen has charged to DOMAIN (all its vCPUs), from `xl list`.
cpu_s() { xl list "$1" 2>/dev/null | awk 'NR == 2 { print $6 }'; }
# since T0 [DECIMALS]: seconds from T0 (a `now`) until now.
since() { awk -v a="$1" -v b="$(now)" -v d="${2:-1}" 'BEGIN { printf "%.*f", d, b - a }'; }
# shutdown_reason FILE [head|tail]: the first (or last) shutdown `xl create -F` reported in FILE, by name.
shutdown_reason() {
    case $(sed -n 's/.*has shut down, reason code \([0-9]*\).*/\1/p' "$1" | "${2:-head}" -n1) in
        0) echo poweroff ;; 1) echo reboot ;; 3) echo crash ;; *) echo none ;;
    esac
}

lab_start() {
    modprobe -a xenfs xen-evtchn xen-gntdev xen-gntalloc xen-privcmd xen-netback xen-blkback bridge loop tun 2>&1 |
        sed 's/^/modprobe: /'
    mount -t xenfs xenfs /proc/xen
    mkdir -p /run/xen /var/lib/xen /var/log/xen/console /run/lock /var/run/xen
    xs=$(command -v xenstored || command -v oxenstored)
    "$xs" --pid-file /run/xen/xenstored.pid
    for _ in $(seq 50); do xenstore-exists / 2>/dev/null && break; sleep 0.2; done
    xen-init-dom0 >/tmp/xen-init-dom0.log 2>&1 || { cat /tmp/xen-init-dom0.log; fail lab-start "xen-init-dom0 failed"; }
    xenconsoled --log=guest --log-dir=/var/log/xen/console --timestamp=guest
    ip link set lo up # loopback: the device model of an HVM guest binds its (unused) VNC server there
    ip link add xenbr0 type bridge && ip addr add 10.0.0.1/24 dev xenbr0 && ip link set xenbr0 up
    log "Xen $(xl info | sed -n 's/^xen_version *: *//p') up, dom0 $(uname -r), $(xl info | sed -n 's/^free_memory *: *//p') MiB free for guests"
}

# boot_guest NAME TIMEOUT_S CFG [xl key=value overrides...]
# Runs `xl create -F` (foreground: returns when the domain is gone) and sets
#   GUEST_LOG (console log), GUEST_XL (xl's output), GUEST_REASON (poweroff|reboot|crash|timeout|unknown),
#   GUEST_T0 / GUEST_T_EXIT (dom0 clock around the run).
boot_guest() {
    GUEST_NAME=$1; timeout_s=$2; cfg=$3; shift 3
    GUEST_LOG=/var/log/xen/console/guest-$GUEST_NAME.log
    GUEST_XL=/tmp/xl-$GUEST_NAME.out
    rm -f "$GUEST_LOG"
    GUEST_T0=$(now)
    timeout "$timeout_s" xl create -F "$cfg" "name=\"$GUEST_NAME\"" $(mode_type "$cfg") "$@" >"$GUEST_XL" 2>&1
    rc=$?
    GUEST_T_EXIT=$(now)
    if [ $rc -eq 124 ]; then
        GUEST_REASON=timeout
        echo "(lab: no exit after ${timeout_s}s; destroying)" >>"$GUEST_XL"
        xl destroy "$GUEST_NAME" >>"$GUEST_XL" 2>&1
    else
        GUEST_REASON=$(shutdown_reason "$GUEST_XL")
        [ "$GUEST_REASON" = none ] && GUEST_REASON="unknown(xl rc $rc)"
    fi
    sleep 0.2 # let xenconsoled write out the last lines it read
}

# start_bg NAME CFG [overrides]: `xl create -F` in the background (it follows reboots and reports every shutdown).
start_bg() {
    GUEST_NAME=$1; cfg=$2; shift 2
    GUEST_LOG=/var/log/xen/console/guest-$GUEST_NAME.log
    GUEST_XL=/tmp/xl-$GUEST_NAME.out
    rm -f "$GUEST_LOG"
    xl create -F "$cfg" "name=\"$GUEST_NAME\"" $(mode_type "$cfg") "$@" >"$GUEST_XL" 2>&1 &
    XL_PID=$!
}
show_guest() {
    echo "---- console of $GUEST_NAME ($GUEST_LOG) ----"
    sed 's/^/console|/' "$GUEST_LOG" 2>/dev/null || echo "console|(no console log)"
    echo "---- xl create -F output ----"
    sed 's/^/xl|/' "$GUEST_XL"
    echo "---- xl dmesg (last 15 lines) ----"
    xl dmesg | tail -n 15 | sed 's/^/xen|/'
}

# check NAME DETAIL COMMAND...: pass if COMMAND succeeds, else fail and show the guest's evidence.
check() {
    name=$1; detail=$2; shift 2
    if "$@"; then pass "$name" "$detail"; else fail "$name" "$detail"; show_guest; fi
}

console_has() { grep -q -- "$1" "$GUEST_LOG" 2>/dev/null; }
ended() { [ "$GUEST_REASON" = "$1" ]; }

lab_summary() {
    log "summary: $LAB_PASSES passed, $LAB_FAILS failed"
    [ "$LAB_FAILS" -eq 0 ]
}
