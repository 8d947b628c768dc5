# The block suite (issue 5): blkfront against Linux's blkback, checked from dom0 against the backing files.
cd /job
BLK_GUEST_CHECKS="pattern-readback unaligned-offset-refused unaligned-length-refused past-end-refused discard cancel-then-io \
    4k-512-write-refused 4k-512-read-refused 4k-pattern-readback ro-write-refused ro-discard-refused ro-read"
expect blk-loop4k blk-ended blk-three-disks $(for c in $BLK_GUEST_CHECKS; do echo "blk-$c"; done) \
    blk-dom0-sees-pattern blk-dom0-sees-4k-pattern blk-ro-content blk-backend-closed blk-backend-closed-caller
mkdir -p /var/lib/sirocco
D512=/var/lib/sirocco/d512.img; D4K=/var/lib/sirocco/d4k.img; DRO=/var/lib/sirocco/ro.img
truncate -s 128M "$D512"
truncate -s 16M "$D4K"
head -c 16M /dev/urandom >"$DRO"
# A 4096-byte logical sector disk: a loop device with that sector size (blkback reports the device's).
LOOP4K=$(losetup --sector-size 4096 -f --show "$D4K")
check blk-loop4k "loop device with 4096-byte sectors for the 4K disk ($LOOP4K)" \
    sh -c "[ \"\$(blockdev --getss $LOOP4K)\" = 4096 ]"

# --- blktest: 64 MiB pattern, refusals, a 4K-sector disk, a read-only disk --------------------------------------
boot_guest blktest 600 xl-configs/blktest.cfg \
    "disk=[ 'format=raw, vdev=xvda, access=rw, target=$D512', 'format=raw, vdev=xvdb, access=rw, target=$LOOP4K', 'format=raw, vdev=xvdc, access=ro, target=$DRO' ]" \
    'extra="log=info test=pattern mb=64 seed=77"'
grep -E 'blktest:|: connected, ' "$GUEST_LOG" | sed 's/^/lab: /' | head -n 24
check blk-ended "blktest powered off (got $GUEST_REASON)" ended poweroff
check blk-three-disks "three vbds connected (512 rw, 4096 rw, read-only)" \
    sh -c "[ \$(grep -c 'blktest: vbd[0-9]* ' '$GUEST_LOG') = 3 ] && grep -q 'sector size 4096, read-write' '$GUEST_LOG' && grep -q 'read-only' '$GUEST_LOG'"
for c in $BLK_GUEST_CHECKS; do
    check "blk-$c" "$(grep -o "blktest: check $c .*" "$GUEST_LOG" | head -c 300)" console_has "blktest: check $c ok"
done
# dom0 reads the backing files: what the guest says it wrote is there.
guest_sha=$(sed -n 's/.*blktest: pattern vbd51712 64 MiB seed 77 written sha256 \([0-9a-f]*\).*/\1/p' "$GUEST_LOG")
file_sha=$(head -c 64M "$D512" | sha256sum | cut -d' ' -f1)
check blk-dom0-sees-pattern "dom0's sha256 of the first 64 MiB of the backing file matches the guest's ($file_sha)" \
    sh -c "[ -n '$guest_sha' ] && [ '$guest_sha' = '$file_sha' ]"
guest_sha=$(sed -n 's/.*blktest: pattern vbd51728 1 MiB at 1 MiB seed 77 written sha256 \([0-9a-f]*\).*/\1/p' "$GUEST_LOG")
sync; file_sha=$(dd if="$D4K" bs=1M skip=1 count=1 2>/dev/null | sha256sum | cut -d' ' -f1)
check blk-dom0-sees-4k-pattern "dom0's sha256 of the 4K disk's 2nd MiB matches the guest's ($file_sha)" \
    sh -c "[ -n '$guest_sha' ] && [ '$guest_sha' = '$file_sha' ]"
ro_sha=$(head -c 4096 "$DRO" | sha256sum | cut -d' ' -f1)
check blk-ro-content "the read-only disk's first 4 KiB as the guest read them ($ro_sha)" \
    console_has "first 4 KiB sha256 $ro_sha"
losetup -d "$LOOP4K"

# --- the backend closes the disk under I/O (xl block-detach): pending operations fail with a clear error -------
start_bg blkdetach xl-configs/blktest.cfg "disk=[ 'format=raw, vdev=xvda, access=rw, target=$D512' ]" \
    'extra="log=info test=bench mb=16 qd=16 secs=40"'
for _ in $(seq 300); do grep -q 'blktest: vbd51712' "$GUEST_LOG" 2>/dev/null && break; sleep 0.2; done
sleep 8 # past the sequential part, into the random reads
t0=$(now)
timeout 60 xl block-detach blkdetach xvda >/tmp/detach.out 2>&1; rc=$?
took=$(since "$t0")
sleep 2
grep -E 'backend closed|random read failed' "$GUEST_LOG" | head -n 3 | sed 's/^/lab: /'
check blk-backend-closed "xl block-detach under I/O (rc $rc in ${took} s): the guest failed its pending operations with the reason" \
    console_has "vbd51712: the backend closed the device"
check blk-backend-closed-caller "the error reached the caller" console_has "random read failed: .*backend closed the device"
xl destroy blkdetach 2>/dev/null; wait $XL_PID 2>/dev/null
