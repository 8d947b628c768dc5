# Helpers for the network suites.
stop_net_guest() {
    timeout 30 xl shutdown -w "$GUEST_NAME" >/dev/null 2>&1 || xl destroy "$GUEST_NAME" 2>/dev/null
    wait $XL_PID 2>/dev/null
}
wait_http() { # HOST PORT TIMEOUT_S
    for _ in $(seq $(($3 * 2))); do
        curl -s -o /dev/null --max-time 2 "http://$1:$2/" && return 0
        sleep 0.5
    done
    return 1
}
wait_tcp() {
    for _ in $(seq $(($3 * 2))); do nc -z -w 2 "$1" "$2" && return 0; sleep 0.5; done
    return 1
}
keepalive_check() { # HOST N: N requests on one connection
    : >/tmp/urls
    for i in $(seq "$2"); do echo "url = \"http://$1/?n=$i\"" >>/tmp/urls; echo "output = /dev/null" >>/tmp/urls; done
    t0=$(now)
    curl -s -K /tmp/urls -w '%{http_code} %{num_connects}\n' >/tmp/ka.out
    took=$(since "$t0")
    ok=$(grep -c '^200 ' /tmp/ka.out); conns=$(awk '{ s += $2 } END { print s }' /tmp/ka.out)
    check http-keepalive "$ok of $2 sequential requests answered 200 over $conns connection(s) in ${took} s" \
        sh -c "[ $ok -eq $2 ] && [ $conns -eq 1 ]"
}
# heap_used HOST: the guest's heap bytes in use, from its /stats.
heap_used() { curl -s --max-time 10 "http://$1/stats" | sed -n 's/.*"heap":{[^}]*"used":\([0-9]*\).*/\1/p'; }
# quiesce HOST: waits (at most 60 s) until the guest holds no TCP connection in TIME-WAIT (its /stats).
quiesce() {
    for _ in $(seq 60); do
        curl -s --max-time 10 "http://$1/stats" | grep -q '"time_wait":0,' && return 0
        sleep 1
    done
    return 1
}
# http_soak PREFIX HOST REQUESTS FRESH: REQUESTS on 8 keep-alive connections, then FRESH connections (4 at a time)
# of one request each; every one must be answered 200, and afterwards the guest's heap in use must be back at its
# level before the soak (within 32 KiB). That level is taken after a warm-up of a hundredth of each load, once
# TIME-WAIT has drained: tables that keep their high-water mark (smoltcp's socket set keeps a 1 KiB slot per
# socket it ever held at once) are then at their working size, so what remains is what the soak leaked.
http_soak() {
    # Warm-up: 1% of each, but at least 1,000 requests and 100 connections, so a short soak (the PVH pass) starts
    # from tables at their working size too.
    ./lab/httpload ka "$2" 80 $(( $3 / 100 > 1000 ? $3 / 100 : 1000 )) 8 >/dev/null
    ./lab/httpload fresh "$2" 80 $(( $4 / 100 > 100 ? $4 / 100 : 100 )) 4 >/dev/null
    quiesce "$2"
    h0=$(heap_used "$2")
    out=$(timeout 3000 ./lab/httpload ka "$2" 80 "$3" 8); rc=$?
    check "$1-keepalive" "$3 requests on 8 keep-alive connections: $out" [ "$rc" = 0 ]
    out=$(timeout 3000 ./lab/httpload fresh "$2" 80 "$4" 4); rc=$?
    check "$1-fresh" "$4 fresh connections, 4 at a time: $out" [ "$rc" = 0 ]
    quiesce "$2"
    h1=$(heap_used "$2")
    check "$1-heap" "heap in use after a warm-up ${h0:-?} B, after the soak ${h1:-?} B (want within 32 KiB)" \
        sh -c "[ -n '$h0' ] && [ -n '$h1' ] && [ '$h1' -le $((${h0:-0} + 32768)) ]"
}
concurrent_check() { # HOST N: N clients at once
    : >/tmp/par
    pids=""
    for i in $(seq "$2"); do
        (curl -s -o /dev/null --max-time 60 -w '%{http_code}\n' "http://$1/?c=$i" >>/tmp/par) &
        pids="$pids $!"
    done
    wait $pids # only the clients: a bare `wait` would also wait for the guest's `xl create -F`
    ok=$(grep -c '^200$' /tmp/par)
    check http-concurrent "$ok of $2 concurrent clients answered 200" [ "$ok" -eq "$2" ]
}
# upload_flood_check NAME HOST N UPLOAD_PATH GET_PATH (issue 10, defect 4): N clients PUT 1 MiB each at once.
# Every upload must be answered with an HTTP status (200/204/405, or 503/413 where the guest's memory budget
# refuses it), never a reset (curl's 000); then GET_PATH must answer 200 and the guest must still be running.
# Checks NAME and NAME-after.
upload_flood_check() {
    head -c 1048576 /dev/urandom >/tmp/upload-1m
    : >/tmp/upflood
    pids=""
    for i in $(seq "$3"); do
        (curl -s -o /dev/null --max-time 120 -X PUT --data-binary @/tmp/upload-1m -w '%{http_code}\n' \
            "http://$2$4$i" >>/tmp/upflood) &
        pids="$pids $!"
    done
    wait $pids # only the clients
    answered=$(grep -cE '^[1-5][0-9][0-9]$' /tmp/upflood)
    codes=$(sort /tmp/upflood | uniq -c | awk '{ printf "%s%s x%s", sep, $2, $1; sep = ", " }')
    check "$1" "$answered of $3 concurrent 1 MiB uploads answered with a status, none reset (codes: $codes)" \
        [ "$answered" -eq "$3" ]
    code=$(curl -s -o /dev/null --max-time 10 -w '%{http_code}' "http://$2$5")
    state=running
    xl list "$GUEST_NAME" >/dev/null 2>&1 || state=gone
    [ "$(shutdown_reason "$GUEST_XL")" = none ] || state="$state (it shut down: $(shutdown_reason "$GUEST_XL"))"
    check "$1-after" "GET $5 after the uploads answered $code; guest $state" \
        sh -c "[ '$code' = 200 ] && [ '$state' = running ]"
}
# module_to MODULE FILE: dom0's kernel module MODULE, uncompressed, as FILE (for Linux peers' initrds).
module_to() {
    ko=$(modinfo -n "$1")
    case "$ko" in
        *.xz) xz -dc "$ko" >"$2" ;;
        *.zst) zstd -qdc "$ko" >"$2" ;;
        *) cp "$ko" "$2" ;;
    esac
}

# peer_initrd DIR: busybox and xen-netfront.ko (a module in Debian's kernel: no eth0 without it) into DIR,
# with /init taken from DIR/init.sh (which may call `$b insmod /netfront.ko`); writes DIR.img.
peer_initrd() {
    d=$1
    mkdir -p "$d/bin" "$d/proc" "$d/sys" "$d/dev"
    cp "$(command -v busybox)" "$d/bin/busybox"
    module_to xen-netfront "$d/netfront.ko"
    cp "$d/init.sh" "$d/init" && chmod +x "$d/init"
    (cd "$d" && find . | busybox cpio -o -H newc 2>/dev/null | gzip -1) >"$d.img"
}

# add_binary DIR PROGRAM...: dom0's PROGRAMs and every shared library they load, at the same paths under DIR
# (for Linux peers running real servers and tools from dom0's Debian packages).
add_binary() {
    d=$1; shift
    for p in "$@"; do
        p=$(command -v "$p"); mkdir -p "$d$(dirname "$p")"; cp "$p" "$d$p"
        for lib in $(ldd "$p" | grep -oE '/[^ ]+'); do mkdir -p "$d$(dirname "$lib")"; cp -L "$lib" "$d$lib"; done
    done
}

linux_peer_fetch() { # HOST: a Linux PV guest on xenbr0 fetches / with busybox wget
    mkdir -p /tmp/lpeer
    cat >/tmp/lpeer/init.sh <<INIT
#!/bin/busybox sh
b=/bin/busybox
\$b mount -t proc proc /proc; \$b mount -t sysfs sys /sys
\$b insmod /netfront.ko
for i in 1 2 3 4 5 6 7 8 9 10; do [ -e /sys/class/net/eth0 ] && break; \$b sleep 0.5; done
\$b ip link set eth0 up; \$b ip addr add 10.0.0.9/24 dev eth0
# A hand-written request through nc: Debian's static busybox wget segfaults here.
for i in 1 2 3 4 5 6 7 8 9 10; do
    printf 'GET / HTTP/1.0\\r\\nHost: $1\\r\\n\\r\\n' | \$b nc -w 5 $1 80 >/page 2>/dev/null
    \$b grep -q '200 OK' /page && break; \$b sleep 1
done
echo "linux-peer: fetched \$(\$b wc -c </page) bytes: \$(\$b head -c 60 /page | \$b tr '\n' ' ')"
\$b poweroff -f
INIT
    peer_initrd /tmp/lpeer
    kernel=$(ls /boot/vmlinuz-* | sort -V | tail -n1)
    saved="$GUEST_NAME $GUEST_LOG $GUEST_XL $XL_PID"
    printf 'type = "pv"\nkernel = "%s"\nramdisk = "/tmp/lpeer.img"\nmemory = 128\nvif = [ "bridge=xenbr0" ]\nextra = "console=hvc0 quiet"\non_poweroff = "destroy"\non_crash = "destroy"\n' \
        "$kernel" >/tmp/lpeer.cfg
    boot_guest linux-fetch 180 /tmp/lpeer.cfg
    check linux-peer-fetch "a Linux PV guest on the same bridge fetched / from the Sirocco guest" \
        console_has "linux-peer: fetched [1-9]"
    set -- $saved; GUEST_NAME=$1; GUEST_LOG=$2; GUEST_XL=$3; XL_PID=$4
}

# linux_bench_peer: the Linux PV guest the benchmarks compare against (/tmp/nb.cfg, address 10.0.0.20): lighttpd
# (keep-alive, as Sirocco's httpd) on 80, a discard sink on 9, a zero source on 19, `iperf3 -s` on 5201 (dom0's
# iperf3 3.12). Its initrd is built once per lab boot.
linux_bench_peer() {
    [ -f /tmp/nb.cfg ] && return 0
    mkdir -p /tmp/nb/www /tmp/nb/tmp /tmp/nb/etc
    # The same page as Sirocco's index, so both answer the same job.
    curl -s -o /tmp/nb/www/index.html http://10.0.0.2/ 2>/dev/null
    [ -s /tmp/nb/www/index.html ] || head -c 300 /dev/zero | tr '\0' x >/tmp/nb/www/index.html
    add_binary /tmp/nb lighttpd iperf3
    cp -r /usr/lib/lighttpd /tmp/nb/usr/lib/ 2>/dev/null
    cat >/tmp/nb/etc/lighttpd.conf <<'CONF'
server.document-root = "/www"
server.port = 80
server.errorlog = "/tmp/lighttpd.err"
index-file.names = ( "index.html" )
mimetype.assign = ( ".html" => "text/html; charset=utf-8" )
server.max-keep-alive-requests = 100000
server.max-keep-alive-idle = 30
CONF
    cat >/tmp/nb/init.sh <<'INIT'
#!/bin/busybox sh
b=/bin/busybox
$b mount -t proc proc /proc; $b mount -t sysfs sys /sys; $b mount -t devtmpfs dev /dev
$b insmod /netfront.ko
for i in 1 2 3 4 5 6 7 8 9 10; do [ -e /sys/class/net/eth0 ] && break; $b sleep 0.5; done
$b ip link set lo up; $b ip link set eth0 up; $b ip addr add 10.0.0.20/24 dev eth0
( while true; do $b nc -l -p 9 >/dev/null; done ) &
( while true; do $b nc -l -p 19 </dev/zero; done ) &
/usr/sbin/lighttpd -f /etc/lighttpd.conf || { echo "linux-peer: lighttpd failed"; $b cat /tmp/lighttpd.err; }
/usr/bin/iperf3 -s -D || echo "linux-peer: iperf3 -s failed"
echo "linux-peer: serving"
while true; do $b sleep 3600; done
INIT
    peer_initrd /tmp/nb
    kernel=$(ls /boot/vmlinuz-* | sort -V | tail -n1)
    printf 'type = "pv"\nkernel = "%s"\nramdisk = "/tmp/nb.img"\nmemory = 128\nvif = [ "bridge=xenbr0" ]\nextra = "console=hvc0 quiet"\non_poweroff = "destroy"\n' "$kernel" >/tmp/nb.cfg
}
# libvirt_up: starts libvirtd with its Xen (libxl) driver, once per lab boot. Two lab-only adjustments: libvirt
# has no CPU model its decoder matches to the lab's QEMU TCG CPU as Xen reports it ("Cannot find suitable CPU
# model for given data" from libxlCapsInitCPU), so a minimal model is added to its CPU map; and the QEMU driver,
# which comes with the package and wants users this root does not have, is removed (only Xen is driven here).
libvirt_up() {
    [ -S /run/libvirt/libvirt-sock ] && return 0
    mkdir -p /run/libvirt /var/lib/libvirt/libxl /var/log/libvirt/libxl
    map=/usr/share/libvirt/cpu_map
    printf "<cpus>\n  <model name='sirocco-lab'>\n    <decode host='on' guest='off'/>\n    <feature name='fpu'/>\n  </model>\n</cpus>\n" \
        >$map/x86_sirocco-lab.xml
    grep -q sirocco-lab $map/index.xml ||
        sed -i "s|<include filename='x86_486.xml'/>|&<include filename='x86_sirocco-lab.xml'/>|" $map/index.xml
    rm -f /usr/lib/x86_64-linux-gnu/libvirt/connection-driver/libvirt_driver_qemu.so
    /usr/sbin/virtlogd --daemon
    /usr/sbin/libvirtd >/tmp/libvirtd.log 2>&1 &
    for _ in $(seq 60); do [ -S /run/libvirt/libvirt-sock ] && return 0; sleep 0.5; done
    log "libvirtd did not start: $(grep -E 'error' /tmp/libvirtd.log | tail -n 3)"
    return 1
}
# syslog_collector FILE: a syslog collector on dom0's UDP port 514 (every address) that writes each datagram it
# receives to FILE as it came, followed by a line feed: one RFC 5424 message per line, so a message that carried
# a line feed of its own shows up as a malformed line. perl-base's IO::Socket::INET (in every Debian root) rather
# than nc, which runs datagrams together. Sets COLLECTOR_PID.
syslog_collector() {
    : >"$1"
    perl -MIO::Socket::INET -e '
        my $s = IO::Socket::INET->new(LocalPort => 514, Proto => "udp") or die "collector: $!\n";
        open(my $out, ">>", $ARGV[0]) or die "collector: $ARGV[0]: $!\n";
        $out->autoflush(1);
        while (defined $s->recv(my $m, 65535)) { print $out "$m\n" }' "$1" &
    COLLECTOR_PID=$!
    sleep 0.5
}
# iperf_num FILE SECTION KEY: KEY's number in SECTION ("sum_received", "sum_sent") of `iperf3 -J`'s output FILE
# (cJSON's layout: one key per line; the sections hold no nested objects). Empty if absent.
iperf_num() { sed -n "/\"$2\":/,/}/p" "$1" | sed -n "s/.*\"$3\":[[:space:]]*\([-0-9.e+]*\).*/\1/p" | head -n1; }
# iperf_error FILE: the "error" iperf3 -J reported (3.12 exits 0 even then), empty if none.
iperf_error() { sed -n 's/.*"error":[[:space:]]*"\(.*\)".*/\1/p' "$1" | head -n1; }

# load_rounds CHECK ROUNDS WHAT REQUIRE XL-SETTINGS...: an httpd (10.0.0.2, preserved if it dies, so its CPU state
# can be read) under ROUNDS rounds of 1,000 fresh connections, 24 uploads of 1 MiB and 3,000 keep-alive requests.
# REQUIRE is a grep pattern over what xl reports about the running guest (its tsc_mode and its vCPU's hard
# affinity); CHECK fails at once, before any load, if the guest does not match it, and passes only if it answers
# after every round. WHAT names the case in the pass message.
load_rounds() {
    lr_check=$1 lr_rounds=$2 lr_what=$3 lr_require=$4
    shift 4
    start_bg httpd xl-configs/httpd.cfg 'extra="log=info ip=10.0.0.2/24 gw=10.0.0.1"' "$@" \
        'on_reboot="preserve"' 'on_crash="preserve"'
    lr_dead=""
    wait_http 10.0.0.2 80 60
    lr_up=$?
    lr_info="$(xl list -l "$GUEST_NAME" 2>/dev/null | grep -o '"tsc_mode": "[a-z_]*"' | head -n1),\
 affinity $(xl vcpu-list "$GUEST_NAME" 2>/dev/null | awk 'NR == 2 { print $7 }')"
    if ! echo "$lr_info" | grep -q "$lr_require"; then
        fail "$lr_check" "the guest did not run as the check needs ($lr_require): $lr_info"
    else
        if [ "$lr_up" = 0 ]; then
            for r in $(seq "$lr_rounds"); do
                timeout 60 ./lab/httpload fresh 10.0.0.2 80 1000 4 >/dev/null
                (GUEST_XL=/dev/null upload_flood_check lr-flood 10.0.0.2 24 /upload/ / >/dev/null)
                timeout 60 ./lab/httpload ka 10.0.0.2 80 3000 8 >/dev/null
                curl -s -o /dev/null --max-time 10 http://10.0.0.2/ || { lr_dead=$r; break; }
                log "$lr_check: round $r of $lr_rounds served"
            done
        else
            lr_dead=0
        fi
        if [ -n "$lr_dead" ]; then
            fail "$lr_check" "the guest stopped serving in round $lr_dead of $lr_rounds ($lr_info)"
            show_guest
            id=$(xl domid "$GUEST_NAME" 2>/dev/null) &&
                xen-hvmctx "$id" 2>&1 | sed -n '/CPU:/,/event/p' | sed 's/^/xen|hvmctx: /'
        else
            pass "$lr_check" "$lr_rounds rounds of 1,000 fresh connections, 24 uploads of 1 MiB and 3,000 keep-alive requests served; $lr_what ($lr_info)"
        fi
    fi
    xl destroy "$GUEST_NAME" 2>/dev/null
    wait $XL_PID 2>/dev/null
}
