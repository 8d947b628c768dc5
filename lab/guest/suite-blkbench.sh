# Block benchmark (issue 5): Sirocco's blktest (bench mode) and a Linux PV guest running blkbench do the same jobs
# on the same kind of backing file in the same run: sequential write and read (1 MiB operations, 2 in flight,
# O_DIRECT on Linux) and 4 KiB random reads at queue depth 16. A discarded warm-up run first (the first guest after
# the lab boots runs dom0's blkback, loop and ext4 paths cold under TCG and measured up to 3x slower), then Sirocco and
# Linux in turn, twice, each on a fresh written-through file, and once each on a fresh sparse file. Then kv: PUT/s
# and GET/s from wrk.
cd /job
. /job/lab/net-lib.sh
mkdir -p /var/lib/sirocco
B=/var/lib/sirocco/bench.img
MB=${BENCH_BLK_MB:-64}
# Each guest gets a fresh backing file with dom0's page cache dropped: written through first ("alloc", as an
# image or a volume is in use), or sparse, so the guest's writes make dom0's ext4 allocate blocks. Whoever wrote
# a sparse file first would otherwise pay for the allocation the other one then finds done.
fresh_backing() {
    rm -f "$B"; truncate -s 256M "$B"
    [ "$1" = alloc ] && dd if=/dev/zero of="$B" bs=1M count=256 conv=notrunc status=none
    sync; echo 3 >/proc/sys/vm/drop_caches
}
# Tags a guest's SIROCCO-BENCH line with the backing file's kind and extra fields.
tagged() { grep -o 'SIROCCO-BENCH kind=blk.*' "$GUEST_LOG" | tr -d '\r' | sed "s/\$/ file=$1$2/"; }

sirocco_blk() { # file kind, tag
    fresh_backing "$1"
    boot_guest "blkbench-sirocco-$1" 900 xl-configs/blktest.cfg "disk=[ 'format=raw, vdev=xvda, access=rw, target=$B' ]" \
        "extra=\"log=warn test=bench mb=$MB qd=16 secs=10\""
    tagged "$1" "$2" | grep . || { fail "blkbench-sirocco-$1" "no figures from blktest"; show_guest; }
    grep -o 'blktest: counters.*' "$GUEST_LOG" | sed 's/^/lab: /'
}

mkdir -p /tmp/lb/dev
cp /job/lab/blkbench /tmp/lb/blkbench
module_to xen-blkfront /tmp/lb/blkfront.ko
cat >/tmp/lb/init.sh <<INIT
#!/bin/busybox sh
b=/bin/busybox
\$b mount -t proc proc /proc; \$b mount -t sysfs sys /sys; \$b mount -t devtmpfs dev /dev
\$b insmod /blkfront.ko
for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do [ -b /dev/xvda ] && break; \$b sleep 0.5; done
/blkbench /dev/xvda $MB 16 10
\$b poweroff -f
INIT
peer_initrd /tmp/lb
kernel=$(ls /boot/vmlinuz-* | sort -V | tail -n1)
printf 'type = "pv"\nkernel = "%s"\nramdisk = "/tmp/lb.img"\nmemory = 256\nextra = "console=hvc0 quiet"\non_poweroff = "destroy"\non_crash = "destroy"\n' "$kernel" >/tmp/lb.cfg
linux_blk() { # file kind, tag
    fresh_backing "$1"
    boot_guest "blkbench-linux-$1" 900 /tmp/lb.cfg "disk=[ 'format=raw, vdev=xvda, access=rw, target=$B' ]"
    tagged "$1" "$2" | grep . || { fail "blkbench-linux-$1" "no figures from the Linux guest"; show_guest; }
}
fresh_backing alloc
boot_guest blkbench-warmup 900 xl-configs/blktest.cfg "disk=[ 'format=raw, vdev=xvda, access=rw, target=$B' ]" \
    "extra=\"log=warn test=bench mb=$MB qd=16 secs=2\""
grep -o 'SIROCCO-BENCH kind=blk.*' "$GUEST_LOG" | sed 's/^SIROCCO-BENCH/lab: warm-up (discarded):/'
for round in 1 2; do
    sirocco_blk alloc " round=$round"
    linux_blk alloc " round=$round"
done
sirocco_blk sparse ""
linux_blk sparse ""

# kv: wrk with unique keys for PUT (each answered only once durable), then GET of those keys.
KV=/var/lib/sirocco/kvbench.img; rm -f "$KV"; truncate -s 256M "$KV"
cat >/tmp/put.lua <<'LUA'
local n = 0
request = function()
  n = n + 1
  return wrk.format("PUT", "/kv/bench-" .. tostring(math.random(1, 1000000000)) .. "-" .. n, nil, string.rep("v", 100))
end
LUA
cat >/tmp/get.lua <<'LUA'
request = function()
  return wrk.format("GET", "/kv/hot-" .. tostring(math.random(1, 100)))
end
LUA
start_bg kvbench xl-configs/kv.cfg "disk=[ 'format=raw, vdev=xvda, access=rw, target=$KV' ]" 'extra="log=warn ip=10.0.0.5/24 gw=10.0.0.1"'
if wait_http 10.0.0.5 80 120; then
    for i in $(seq 100); do curl -s -o /dev/null -X PUT --data-binary "hot value $i" "http://10.0.0.5/kv/hot-$i"; done
    puts=$(wrk -t2 -c16 -d10s -s /tmp/put.lua http://10.0.0.5/ 2>/dev/null | sed -n 's/^Requests\/sec: *//p')
    gets=$(wrk -t2 -c16 -d10s -s /tmp/get.lua http://10.0.0.5/ 2>/dev/null | sed -n 's/^Requests\/sec: *//p')
    curl -s http://10.0.0.5/stats >/tmp/kvbench.stats
    batches=$(grep -o '"kv_write_batches_total":[0-9]*' /tmp/kvbench.stats | cut -d: -f2); acked=$(grep -o '"kv_puts_total":[0-9]*' /tmp/kvbench.stats | cut -d: -f2)
    echo "SIROCCO-BENCH kind=kv guest=sirocco puts_per_s=${puts:-0} gets_per_s=${gets:-0} puts=${acked:-0} batches=${batches:-0}"
    stop_net_guest
else
    fail kvbench "kv did not come up"; show_guest
fi
pass blkbench-complete "block benchmark ran"
