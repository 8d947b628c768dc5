#!/usr/bin/env bash
# Packages a Sirocco image for HVM/BIOS machines (EC2 legacy-BIOS instances, QEMU's SeaBIOS):
#
#   tools/mkimage.sh ELF OUT.img [CMDLINE]
#
# writes a raw MBR disk image that boots SeaBIOS -> GRUB 2 -> multiboot2 -> ELF (which must carry a
# multiboot2 header). Without root: no loop devices, no mounts, only files.
#
# Layout (512-byte sectors):
#   LBA 0        MBR: GRUB's boot.img (code, bytes 0..439) + the partition table sfdisk wrote
#   LBA 1..      GRUB's core.img (diskboot.img + lzma'd kernel + modules), in the gap before the partition
#   LBA 2048..   partition 1 (type 0x83, active): ext2 with /boot/sirocco.elf and /boot/grub/grub.cfg
#
# core.img has every module it needs built in (nothing is loaded from the disk but grub.cfg and the
# ELF) and its prefix is (,msdos1)/boot/grub: partition 1 of the drive the BIOS booted from.
#
# What grub-bios-setup would patch, done here by hand: it guesses the root device from --directory's
# filesystem, so on an unmounted image file it stops ("/usr/lib/grub/i386-pc/grub-bios-setup
# --directory=D --device-map=M --skip-fs-probe disk.img": "error: guessing the root device failed,
# because of `disk `hostdisk//dev/vda' not found'", GRUB 2.06-13). The fields, from GRUB 2.06's
# include/grub/i386/pc/boot.h, boot/i386/pc/{boot,diskboot}.S and util/setup.c:
#   boot.img 0x5c (8 bytes, GRUB_BOOT_MACHINE_KERNEL_SECTOR): LBA of core.img's first sector -> 1
#   boot.img 0x64 (GRUB_BOOT_MACHINE_BOOT_DRIVE): 0xff = use the drive the BIOS passed in DL
#   boot.img 0x66 (GRUB_BOOT_MACHINE_DRIVE_CHECK): the 2-byte `jmp` over the "DL must have bit 7"
#            workaround becomes two NOPs, as setup.c does for hard disks
#   core.img 0x1f4 (last 12 bytes of diskboot.img, the first blocklist): start LBA (8 bytes) -> 2,
#            sectors (2 bytes) -> core.img's sectors - 1, load segment (2 bytes) 0x820; the entry
#            before it (0x1e8) stays zero, the terminator.
# 1, 0xff and 2/0x820 are also the values the stock files carry (GRUB's defaults are made for this
# placement); they are written anyway, and the sector count always.
#
# Deterministic: the same ELF, CMDLINE and tools give the same bytes (fixed disk id, filesystem UUID,
# hash seed and timestamps: SOURCE_DATE_EPOCH, default 2000-01-01; mke2fs 1.47.0 stamps the clock
# into the superblock and the inodes it creates itself, so debugfs resets those afterwards).
set -euo pipefail

die() { echo "mkimage: $*" >&2; exit 1; }

if [ $# -lt 2 ] || [ $# -gt 3 ]; then die "usage: $0 ELF OUT.img [CMDLINE]"; fi
elf=$1
out=$2
cmdline=${3-}
grub_dir=${GRUB_PC_DIR:-/usr/lib/grub/i386-pc}
epoch=${SOURCE_DATE_EPOCH:-946684800}

for tool in grub-mkimage grub-file mke2fs debugfs dumpe2fs sfdisk; do
    command -v "$tool" >/dev/null 2>&1 || PATH=$PATH:/usr/sbin:/sbin
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found (tools/setup-host.sh installs grub-pc-bin, grub-common, e2fsprogs, fdisk)"
done
[ -f "$grub_dir/boot.img" ] || die "no GRUB i386-pc files in $grub_dir (package grub-pc-bin)"
[ -f "$elf" ] || die "$elf: no such file"
grub-file --is-x86-multiboot2 "$elf" || die "$elf has no multiboot2 header GRUB accepts (grub-file --is-x86-multiboot2)"
case $cmdline in
*$'\n'*) die "the command line must be one line" ;;
# GRUB hands these on backslash-escaped (greet=it's arrives as greet=it\'s): refused rather than altered.
*[\'\"\\]*) die "the command line may not contain ', \" or \\ (GRUB would pass them on escaped)" ;;
esac

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Every word single-quoted for GRUB's script parser ($, ;, {, } and the like reach the kernel as they are).
quoted=""
read -r -a words <<<"$cmdline"
for w in ${words[@]+"${words[@]}"}; do
    quoted+=" '$w'"
done

# --- the filesystem's contents
root=$tmp/root
mkdir -p "$root/boot/grub"
cp "$elf" "$root/boot/sirocco.elf"
cat >"$root/boot/grub/grub.cfg" <<EOF
# Written by tools/mkimage.sh: the console on COM1 (115200 8N1) and the screen, no menu delay.
serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console
set timeout=0
set default=0

menuentry 'Sirocco' {
    multiboot2 /boot/sirocco.elf$quoted
    boot
}
EOF
chmod 0755 "$root" "$root/boot" "$root/boot/grub"
chmod 0644 "$root/boot/sirocco.elf" "$root/boot/grub/grub.cfg"
find "$root" -exec touch -h -d "@$epoch" {} +

# --- core.img
# biosdisk, part_msdos, ext2: find and read grub.cfg and the ELF; normal: runs grub.cfg (menuentry);
# serial, terminal: the commands grub.cfg starts with; multiboot2 (+ boot, a dependency of normal).
# grub-mkimage adds what these depend on (moddep.lst).
modules=(biosdisk part_msdos ext2 normal multiboot2 serial terminal)
grub-mkimage -O i386-pc -d "$grub_dir" -p '(,msdos1)/boot/grub' -o "$tmp/core.img" "${modules[@]}"
core_bytes=$(stat -c %s "$tmp/core.img")
core_sectors=$(((core_bytes + 511) / 512))
# setup.c's limit: diskboot loads core.img at 0x8000 and it must end below 0x78000 (444 sectors).
[ "$core_sectors" -le $(((0x78000 - 0x9000) / 512)) ] || die "core.img is $core_sectors sectors, more than GRUB can load"

# --- the partition: ext2 sized for the ELF with room to spare, at least an 8 MiB disk
part_start=2048
elf_mib=$((($(stat -c %s "$elf") + 1048575) / 1048576))
part_mib=$((elf_mib + 3))
[ "$part_mib" -ge 7 ] || part_mib=7
disk_mib=$((part_mib + 1))
truncate -s "${part_mib}M" "$tmp/part.ext2"
mke2fs -q -F -t ext2 -b 1024 -m 0 -L sirocco \
    -U 5c1e0cc0-0000-4000-8000-000000000001 \
    -E root_owner=0:0,hash_seed=5c1e0cc0-0000-4000-8000-000000000002 \
    -d "$root" "$tmp/part.ext2" >/dev/null
# The clock out of the filesystem: superblock times and every inode in use (reserved 1, 2, 7, then
# lost+found and our files, allocated in sequence from 11 on a fresh filesystem).
inodes_used=$(dumpe2fs -h "$tmp/part.ext2" 2>/dev/null | awk -F: '
    /^Inode count/ { n = $2 } /^Free inodes/ { f = $2 } END { print n - f }')
{
    echo "set_current_time @$epoch"
    for f in mkfs_time wtime lastcheck; do echo "ssv $f @$epoch"; done
    for ((i = 1; i <= inodes_used; i++)); do
        case $i in 3 | 4 | 5 | 6 | 8 | 9 | 10) continue ;; esac
        for f in atime ctime mtime crtime; do echo "sif <$i> $f @$epoch"; done
    done
} >"$tmp/debugfs.cmd"
debugfs -w -f "$tmp/debugfs.cmd" "$tmp/part.ext2" >"$tmp/debugfs.log" 2>&1 || { cat "$tmp/debugfs.log" >&2; die "debugfs failed"; }

# --- the disk
disk=$tmp/disk.img
truncate -s "${disk_mib}M" "$disk"
sfdisk --quiet --no-reread --no-tell-kernel "$disk" >/dev/null <<EOF
label: dos
label-id: 0x5c1e0cc0
start=$part_start, type=83, bootable
EOF
put() { dd of="$disk" bs=1 seek="$(($1))" conv=notrunc status=none; } # put OFFSET < bytes
le() { # le VALUE NBYTES: little-endian bytes on stdout
    local v=$1 n=$2 i s=""
    for ((i = 0; i < n; i++)); do s+=$(printf '\\%03o' $(((v >> (8 * i)) & 0xff))); done
    printf '%b' "$s"
}
head -c 440 "$grub_dir/boot.img" | put 0                 # code only: keep disk id and partition table
le 1 8 | put 0x5c                                         # kernel sector: core.img at LBA 1
le 0xff 1 | put 0x64                                      # boot drive: from DL
printf '\x90\x90' | put 0x66                              # hard-disk DL workaround on (setup.c)
[ $((1 + core_sectors)) -le $part_start ] || die "core.img ($core_sectors sectors) does not fit before the partition"
dd if="$tmp/core.img" of="$disk" bs=512 seek=1 conv=notrunc status=none
le 2 8 | put $((512 + 0x1f4))                             # blocklist: the rest of core.img from LBA 2,
le $((core_sectors - 1)) 2 | put $((512 + 0x1fc))         # this many sectors,
le 0x820 2 | put $((512 + 0x1fe))                         # loaded at 0x820:0 (right after diskboot at 0x8000)
dd if="$tmp/part.ext2" of="$disk" bs=512 seek=$part_start conv=notrunc status=none

mkdir -p "$(dirname "$out")"
mv "$disk" "$out.tmp"
mv "$out.tmp" "$out"
echo "mkimage: $out: ${disk_mib} MiB, core.img $core_sectors sectors, ext2 partition ${part_mib} MiB at LBA $part_start, cmdline '${cmdline}'"
