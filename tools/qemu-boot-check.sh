#!/usr/bin/env bash
# The HVM boot chain without Xen, under QEMU (TCG):
#
#   tools/qemu-boot-check.sh ELF [IMG]
#
#   pvh        qemu -kernel ELF: QEMU boots an ELF64 only through its PVH note (XEN_ELFNOTE_PHYS32_ENTRY)
#   bios-grub  qemu -drive IMG (tools/mkimage.sh): SeaBIOS -> GRUB's MBR -> core.img -> grub.cfg ->
#              multiboot2 -> ELF                                    (only when IMG is given)
#
# Each passes when "sirocco: no Xen hypervisor found" is a line (alone, or followed by more words) on
# COM1 and on the debug port 0xE9, QEMU is still running QEMU_BOOT_SETTLE (2) seconds later (with
# -no-reboot a triple fault or a reset ends it), and the CPU is then halted with interrupts off
# (HLT=1, EFLAGS.IF=0 in the monitor's `info registers`). Anything else fails, with the reason and the tail of both logs; no line, no pass.
# Each waits at most QEMU_BOOT_TIMEOUT (120) seconds for the line. Prints one line per check:
#   qemu-boot: <name> ok (N.N s)          (N.N: QEMU start to the line seen)
#   qemu-boot: <name> FAILED: <why>
# and exits non-zero if any failed. QEMU runs in a private temporary directory, killed on exit.
set -Eeuo pipefail
trap 'echo "qemu-boot: FAILED: internal error in $0 at line $LINENO" >&2' ERR

LINE='sirocco: no Xen hypervisor found'
timeout=${QEMU_BOOT_TIMEOUT:-120}
settle=${QEMU_BOOT_SETTLE:-2}
qemu=${QEMU:-qemu-system-x86_64}

if [ $# -lt 1 ] || [ $# -gt 2 ]; then echo "usage: $0 ELF [IMG]" >&2; exit 2; fi
elf=$1
img=${2-}
for f in "$elf" ${img:+"$img"}; do
    [ -f "$f" ] || { echo "qemu-boot: $f: no such file" >&2; exit 2; }
done
command -v "$qemu" >/dev/null || { echo "qemu-boot: $qemu not found (tools/setup-host.sh installs it)" >&2; exit 2; }
command -v python3 >/dev/null || { echo "qemu-boot: python3 not found (it reads QEMU's monitor)" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/qemu-boot.XXXXXX")
qemu_pid=""
stop_qemu() {
    if [ -n "$qemu_pid" ]; then
        kill "$qemu_pid" 2>/dev/null || true
        wait "$qemu_pid" 2>/dev/null || true
        qemu_pid=""
    fi
}
trap 'stop_qemu; rm -rf "$work"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A zombie still answers kill -0: look at the state instead.
running() { [ -r "/proc/$1/stat" ] && [ "$(sed 's/.*) //' "/proc/$1/stat" | cut -d' ' -f1)" != Z ]; }
# The phrase as a line, or opening one with more after it ("...found (no Xen signature ...); stopping").
has_line() { [ -f "$1" ] && grep -aqE "(^|[^[:alnum:]])${LINE}([^[:alnum:]]|\$)" "$1"; }
now() { date +%s%N; }
secs() { printf '%d.%d' $(($1 / 1000000000)) $(($1 % 1000000000 / 100000000)); } # ns -> N.N

# `info registers` through the HMP monitor socket.
registers() {
    python3 - "$1" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(10)
s.connect(sys.argv[1])
def until(token):
    buf = b""
    while token not in buf:
        data = s.recv(65536)
        if not data:
            break
        buf += data
    return buf
until(b"(qemu) ")
s.sendall(b"info registers\n")
sys.stdout.write(until(b"(qemu) ").decode("latin-1"))
EOF
}

failed=0
# check NAME QEMU-ARGS...: boot, wait for the line, verify the clean halt; prints the one result line.
check() {
    local name=$1
    shift
    local dir=$work/$name
    mkdir -p "$dir"
    local serial=$dir/serial.log debugcon=$dir/debugcon.log monitor=$dir/monitor.sock
    local why="" start t_line="" elapsed next_note=10 rc regs efl
    : >"$serial"
    : >"$debugcon"
    start=$(now)
    (cd "$dir" && TMPDIR=$dir exec "$qemu" -machine pc -accel tcg -m 128 -display none -no-reboot -nic none \
        -serial "file:$serial" -debugcon "file:$debugcon" -monitor "unix:$monitor,server=on,wait=off" \
        "$@" </dev/null >"$dir/qemu.out" 2>&1) &
    qemu_pid=$!
    while :; do
        if has_line "$serial" && has_line "$debugcon"; then
            t_line=$(($(now) - start))
            break
        fi
        if ! running "$qemu_pid"; then
            rc=0
            wait "$qemu_pid" || rc=$?
            qemu_pid=""
            why="QEMU exited (status $rc) before the line was on both COM1 and port 0xE9"
            break
        fi
        elapsed=$((($(now) - start) / 1000000000))
        if [ "$elapsed" -ge "$timeout" ]; then
            why="no '$LINE' line on both COM1 and port 0xE9 within ${timeout} s"
            break
        fi
        if [ "$elapsed" -ge "$next_note" ]; then
            echo "qemu-boot: $name: waiting for the line (${elapsed} s)"
            next_note=$((next_note + 10))
        fi
        sleep 0.1
    done
    if [ -z "$why" ]; then
        sleep "$settle"
        if ! running "$qemu_pid"; then
            rc=0
            wait "$qemu_pid" || rc=$?
            qemu_pid=""
            why="QEMU exited (status $rc) within ${settle} s of the line: a reset or triple fault, not a halt"
        elif ! regs=$(registers "$monitor" 2>&1); then
            why="could not read the registers from QEMU's monitor: $regs"
        elif ! grep -q 'HLT=1' <<<"$regs"; then
            why="the CPU is not halted ${settle} s after the line ($(grep -oE '[ER]IP=[0-9a-f]+' <<<"$regs" | head -n1 || true))"
        else
            # EFL= in 32-bit modes, RFL= in long mode.
            efl=$(grep -oE '[ER]FL=[0-9a-f]+' <<<"$regs" | head -n1 | cut -d= -f2 || true)
            if [ -z "$efl" ]; then
                why="no EFL/RFL in QEMU's register dump"
            elif (((16#$efl & 0x200) != 0)); then
                why="halted with interrupts on (EFLAGS=$efl)"
            fi
        fi
    fi
    stop_qemu
    if [ -z "$why" ]; then
        echo "qemu-boot: $name ok ($(secs "$t_line") s)"
    else
        failed=1
        echo "qemu-boot: $name FAILED: $why"
        echo "--- COM1 (last 20 lines, control characters shown as ^X):"
        tail -n 20 "$serial" | cat -v
        echo "--- port 0xE9 (last 5 lines):"
        tail -n 5 "$debugcon" | cat -v
        if [ -s "$dir/qemu.out" ]; then
            echo "--- QEMU:"
            tail -n 5 "$dir/qemu.out"
        fi
        echo "---"
    fi
}

check pvh -kernel "$(realpath "$elf")"
if [ -n "$img" ]; then
    # snapshot=on: the guest's writes go to a temporary overlay, the image stays as built.
    check bios-grub -drive "file=$(realpath "$img"),format=raw,if=ide,snapshot=on"
fi
exit "$failed"
