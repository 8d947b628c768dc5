#!/usr/bin/env bash
# Tests tools/mkimage.sh and tools/qemu-boot-check.sh against the stand-in kernel and its broken
# variants (tools/testdata/standin-kernel.S): the good one must pass both boots, each broken one must
# fail both with the expected reason, mkimage must refuse an ELF without a multiboot2 header and give
# the same bytes twice. Needs binutils (as, ld) besides what the scripts need. Prints PASS/FAIL lines.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tools=$(dirname "$here")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
bad=0
expect() { # expect DESCRIPTION ok|fail PATTERN OUTPUT EXIT-STATUS
    if grep -q "internal error" <<<"$4"; then
        echo "selftest: FAIL $1: internal error in the check:"
        echo "$4"
        bad=1
    elif [ "$2" = ok ] && [ "$5" -eq 0 ] && grep -q "qemu-boot: pvh ok" <<<"$4" && grep -q "qemu-boot: bios-grub ok" <<<"$4"; then
        echo "selftest: PASS $1"
    elif [ "$2" = fail ] && [ "$5" -ne 0 ] && [ "$(grep -c "FAILED: $3" <<<"$4")" -eq 2 ]; then
        echo "selftest: PASS $1"
    else
        echo "selftest: FAIL $1; the check exited $5 and printed:"
        echo "$4"
        bad=1
    fi
}
for mode in 0 1 2 3 4; do
    "$here/build-standin.sh" "$tmp/k$mode.elf" "$mode"
    "$tools/mkimage.sh" "$tmp/k$mode.elf" "$tmp/k$mode.img" "log=debug greet=you" >/dev/null
    rc=0
    out=$(QEMU_BOOT_TIMEOUT=5 "$tools/qemu-boot-check.sh" "$tmp/k$mode.elf" "$tmp/k$mode.img" 2>&1) || rc=$?
    case $mode in
    0) expect "stand-in boots both ways" ok "" "$out" "$rc" ;;
    1) expect "line absent -> fails" fail "no 'sirocco: no Xen hypervisor found' line" "$out" "$rc" ;;
    2) expect "triple fault after the line -> fails" fail "QEMU exited" "$out" "$rc" ;;
    3) expect "spinning instead of halting -> fails" fail "the CPU is not halted" "$out" "$rc" ;;
    4) expect "halted with interrupts on -> fails" fail "halted with interrupts on" "$out" "$rc" ;;
    esac
done
"$tools/mkimage.sh" "$tmp/k0.elf" "$tmp/again.img" "log=debug greet=you" >/dev/null
if cmp -s "$tmp/k0.img" "$tmp/again.img"; then echo "selftest: PASS same ELF, same image bytes"; else echo "selftest: FAIL image bytes differ between two runs"; bad=1; fi
if "$tools/mkimage.sh" "$(command -v true)" "$tmp/no.img" 2>/dev/null; then
    echo "selftest: FAIL mkimage accepted an ELF without a multiboot2 header"; bad=1
else
    echo "selftest: PASS mkimage refuses an ELF without a multiboot2 header"
fi
exit "$bad"
