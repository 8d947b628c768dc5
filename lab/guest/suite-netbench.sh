# Network benchmark (issue 4): Sirocco (httpd, echo) and a Linux PV guest (busybox httpd + nc) doing the same
# jobs on xenbr0 in the same lab run: xl create -> first HTTP 200, HTTP requests/s (wrk), TCP MB/s each way.
cd /job
. /job/lab/net-lib.sh
MB=${BENCH_MB:-32}

# The Linux peer's initrd: busybox httpd on 80, a discard sink on 9, a zero source on 19.
mkdir -p /tmp/nb/www
# The same page size as Sirocco's index, so both answer the same job.
curl -s -o /tmp/nb/www/index.html http://10.0.0.2/ 2>/dev/null
[ -s /tmp/nb/www/index.html ] || head -c 300 /dev/zero | tr '\0' x >/tmp/nb/www/index.html
cat >/tmp/nb/init.sh <<'INIT'
#!/bin/busybox sh
b=/bin/busybox
$b mount -t proc proc /proc; $b mount -t sysfs sys /sys; $b mount -t devtmpfs dev /dev
$b insmod /netfront.ko
for i in 1 2 3 4 5 6 7 8 9 10; do [ -e /sys/class/net/eth0 ] && break; $b sleep 0.5; done
$b ip link set lo up; $b ip link set eth0 up; $b ip addr add 10.0.0.20/24 dev eth0
( while true; do $b nc -l -p 9 >/dev/null; done ) &
( while true; do $b nc -l -p 19 </dev/zero; done ) &
$b httpd -f -p 80 -h /www &
echo "linux-peer: serving"
while true; do $b sleep 3600; done
INIT
peer_initrd /tmp/nb
kernel=$(ls /boot/vmlinuz-* | sort -V | tail -n1)
printf 'type = "pv"\nkernel = "%s"\nramdisk = "/tmp/nb.img"\nmemory = 128\nvif = [ "bridge=xenbr0" ]\nextra = "console=hvc0 quiet"\non_poweroff = "destroy"\n' "$kernel" >/tmp/nb.cfg

# tput IP: MiB/s to the guest's discard port 9 and from its zero source on port 19 (stamped when head has its
# bytes: openbsd nc keeps running after head exits, so it is ended then).
tput() {
    t=$(now); head -c "${MB}M" /dev/zero | timeout 300 nc -N "$1" 9; in_s=$(since "$t" 3)
    t=$(now)
    timeout 300 nc "$1" 19 | { head -c "${MB}M" >/tmp/src.out; now >/tmp/t_end; pkill -f "nc $1 19"; }
    out_s=$(awk -v a="$t" -v b="$(cat /tmp/t_end)" 'BEGIN { printf "%.3f", b - a }')
    got=$(stat -c %s /tmp/src.out)
    TO=$(awk -v s="$in_s" -v m="$MB" 'BEGIN{printf "%.2f", m/s}'); FROM=$(awk -v s="$out_s" -v g="$got" 'BEGIN{printf "%.2f", g/1048576/s}')
}

# bench_guest LABEL IP CFG [overrides]: start, time to first 200, wrk, throughput both ways, stop.
bench_guest() {
    label=$1; ip=$2; cfg=$3; shift 3
    t0=$(now)
    start_bg "bench-$label" "$cfg" "$@"
    if ! wait_http "$ip" 80 300; then fail "netbench-$label" "no HTTP 200 from $ip"; show_guest; stop_net_guest; return; fi
    first=$(since "$t0" 2)
    rps=$(wrk -t2 -c10 -d10s "http://$ip:80/" 2>/dev/null | sed -n 's/^Requests\/sec: *//p')
    TO=0; FROM=0
    # Sirocco's httpd has no discard/source ports: its throughput is measured on echo below.
    [ "$label" = linux ] && wait_tcp "$ip" 9 30 && tput "$ip"
    echo "SIROCCO-BENCH kind=net guest=$label first_200_s=$first rps=${rps:-0} to_guest_mbps=$TO from_guest_mbps=$FROM"
    stop_net_guest
}

bench_guest sirocco 10.0.0.2 xl-configs/httpd.cfg 'extra="log=warn ip=10.0.0.2/24 gw=10.0.0.1"'
# httpd has no discard/source ports: measure throughput against echo, the same image family.
start_bg bench-echo xl-configs/echo.cfg 'extra="log=warn ip=10.0.0.3/24 gw=10.0.0.1"'
if wait_tcp 10.0.0.3 9 120; then
    tput 10.0.0.3
    echo "SIROCCO-BENCH kind=tput guest=sirocco to_guest_mbps=$TO from_guest_mbps=$FROM"
else
    fail netbench-echo "echo did not come up"; show_guest
fi
stop_net_guest
bench_guest linux 10.0.0.20 /tmp/nb.cfg
pass netbench-complete "network benchmark ran"
