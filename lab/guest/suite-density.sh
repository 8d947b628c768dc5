# Density (issue 12): the smallest memory each network app serves in, the same for the Linux PV guest (the bench
# peer: lighttpd on a busybox initramfs), then as many of the smallest httpd guests as Xen's free memory holds,
# started one after another, each answering HTTP from dom0 before the next is created. Bring-up per guest is set
# beside the toolstack floor: `xl create` of a do-nothing PV kernel (ticker) with the same vif and memory.
cd /job
. /job/lab/net-lib.sh
DENSITY_MAX=${DENSITY_MAX:-2000} # guests at most (the fill stops earlier when Xen's memory is full)
DENSITY_MEMS=${DENSITY_MEMS:-"2 3 4 5 6 8 12 16 32"} # MiB tried for each Sirocco app, smallest first
LINUX_MEMS=${LINUX_MEMS:-"16 32 48 64 72 80 88 96 128"}
ip addr add 10.1.0.1/16 dev xenbr0
linux_bench_peer

free_mib() { xl info | sed -n 's/^free_memory *: *//p'; }
# alive_wait KIND IP: waits (60 s at most) for the guest to answer (http: a 200 for /; tcp: a connect to port 7),
# giving up as soon as its `xl create -F` has exited (creation failed, or the domain crashed or ended).
alive_wait() {
    for _ in $(seq 400); do
        case $1 in
            http) [ "$(curl -s -o /dev/null --connect-timeout 0.2 --max-time 2 -w '%{http_code}' "http://$2/")" = 200 ] &&
                return 0 ;;
            tcp) nc -z -w 1 "$2" 7 && return 0 ;;
        esac
        kill -0 "$XL_PID" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}
# serves_http IP: the guest answers 200 to 200 requests on 4 keep-alive connections.
serves_http() {
    alive_wait http "$1" || return 1
    timeout 120 ./lab/httpload ka "$1" 80 200 4 >/tmp/d-probe.out 2>&1
}
# serves_echo IP: 1 MiB through the guest's TCP echo port comes back unchanged.
serves_echo() {
    alive_wait tcp "$1" || return 1
    head -c 1048576 /dev/urandom >/tmp/d-echo.in
    timeout 60 nc -q 2 "$1" 7 </tmp/d-echo.in | head -c 1048576 >/tmp/d-echo.out
    cmp -s /tmp/d-echo.in /tmp/d-echo.out
}
# smallest LABEL CFG PROBE IP MEMS [overrides]: boots CFG at each memory size in MEMS, smallest first, until PROBE IP
# passes; reports every try and the smallest that served (SIROCCO-BENCH kind=minmem).
smallest() {
    label=$1; cfg=$2; probe=$3; ip=$4; mems=$5; shift 5
    for mem in $mems; do
        start_bg "min-$label-$mem" "$cfg" "memory=$mem" "$@"
        : >/tmp/d-probe.out
        if $probe "$ip"; then ok=yes; else ok=no; fi
        reason=$(grep -m1 -i -E "error|fail|out of memory|panic" "$GUEST_XL" "$GUEST_LOG" 2>/dev/null | head -c 200)
        log "density: $label at $mem MiB: served $ok${reason:+ ($reason)}"
        if [ $ok = no ] && [ -z "$reason" ]; then
            sed 's/^/density: probe| /' /tmp/d-probe.out | tail -n 3 | while read -r l; do log "$l"; done
            tail -n 3 "$GUEST_LOG" 2>/dev/null | sed 's/^/density: console| /' | while read -r l; do log "$l"; done
        fi
        xl destroy "$GUEST_NAME" 2>/dev/null
        wait $XL_PID 2>/dev/null
        if [ $ok = yes ]; then
            echo "SIROCCO-BENCH kind=minmem guest=$label mib=$mem"
            MIN_MEM=$mem
            return 0
        fi
    done
    fail "density-$label" "$label served at none of $mems MiB"
    MIN_MEM=
    return 1
}

expect density-smallest density-floor density-fill density-all-answer
net="ip=10.0.0.2/24 gw=10.0.0.1"
smallest echo xl-configs/echo.cfg serves_echo 10.0.0.2 "$DENSITY_MEMS" "extra=\"log=warn $net\""
smallest linux /tmp/nb.cfg serves_http 10.0.0.20 "$LINUX_MEMS"
LINUX_MIN=$MIN_MEM
smallest httpd xl-configs/httpd.cfg serves_http 10.0.0.2 "$DENSITY_MEMS" "extra=\"log=warn $net\""
MEM=$MIN_MEM
check density-smallest "httpd serves in ${MEM:-?} MiB, the Linux PV guest in ${LINUX_MIN:-?} MiB" [ -n "$MEM" ]
[ -n "$MEM" ] || MEM=8

# The toolstack floor: `xl create` of a kernel that does nothing (ticker) with one vif, at the same memory.
floor_n=0
for i in 1 2 3 4 5; do
    t0=$(now)
    xl create xl-configs/ticker.cfg "name=\"floor-$i\"" "memory=$MEM" "vif=['bridge=xenbr0']" >/tmp/floor.xl 2>&1 &&
        floor_n=$((floor_n + 1))
    echo "SIROCCO-BENCH kind=density-floor run=$i xl_s=$(since "$t0" 3)"
    xl destroy "floor-$i" 2>/dev/null
done
check density-floor "$floor_n of 5 do-nothing guests created" [ "$floor_n" = 5 ]

# The fill: httpd guests of MEM MiB, each at its own address, until Xen has no room for another.
free0=$(free_mib)
n=0
while [ "$n" -lt "$DENSITY_MAX" ] && [ "$(free_mib)" -ge "$MEM" ]; do
    ip=10.1.$((n / 250)).$((n % 250 + 2))
    t0=$(now)
    if ! xl create xl-configs/httpd.cfg "name=\"d$n\"" "memory=$MEM" "extra=\"log=warn ip=$ip/16\"" >/tmp/d.xl 2>&1
    then
        log "density: xl create of guest $((n + 1)) failed with $(free_mib) MiB free: $(tail -n1 /tmp/d.xl)"
        break
    fi
    t_xl=$(since "$t0" 3)
    up=no
    for _ in $(seq 600); do
        [ "$(curl -s -o /dev/null --connect-timeout 0.1 --max-time 2 -w '%{http_code}' "http://$ip/")" = 200 ] &&
            { up=yes; break; }
        sleep 0.05
    done
    if [ $up = no ]; then
        fail density-fill "guest $((n + 1)) ($ip) did not answer HTTP within 60 s"
        break
    fi
    echo "SIROCCO-BENCH kind=density guest=$n mib=$MEM xl_s=$t_xl http_s=$(since "$t0" 3) free_mib=$(free_mib)"
    n=$((n + 1))
    [ $((n % 25)) = 0 ] && log "density: $n guests up, $(free_mib) MiB free"
done
free1=$(free_mib)
echo "SIROCCO-BENCH kind=density-total guests=$n mib=$MEM free0_mib=$free0 free1_mib=$free1 linux_mib=${LINUX_MIN:-}"
check density-fill "$n httpd guests of $MEM MiB started from $free0 MiB free, $free1 MiB left" \
    sh -c "[ $n -gt 0 ] && [ $free1 -lt $((MEM * 2)) ]"

# Every guest still answers, all up at once.
ok=0
i=0
while [ "$i" -lt "$n" ]; do
    ip=10.1.$((i / 250)).$((i % 250 + 2))
    [ "$(curl -s -o /dev/null --max-time 5 -w '%{http_code}' "http://$ip/")" = 200 ] && ok=$((ok + 1))
    i=$((i + 1))
done
check density-all-answer "$ok of $n guests answered HTTP 200 with all $n running" sh -c "[ $ok = $n ] && [ $n -gt 0 ]"
