# Network benchmark (issue 4): Sirocco (httpd, echo) and a Linux PV guest (lighttpd + nc) doing the same jobs on
# xenbr0 in the same lab run: xl create -> first HTTP 200, HTTP requests/s (wrk, keep-alive on both sides), TCP
# MB/s each way. Around each job it records where the time went: CPU seconds xl charged to dom0 and to the guest,
# and for Sirocco its own profile (idle / network stack / other, wakeups, kicks: httpd's /stats, echo's port 11).
cd /job
. /job/lab/net-lib.sh
MB=${BENCH_MB:-32}

linux_bench_peer # /tmp/nb.cfg: lighttpd on 80, discard on 9, zero source on 19, at 10.0.0.20

PROFILE_KEYS="uptime_ns idle_ns net_poll_ns other_ns wakeups kicks rx_packets tx_packets"
# snap GUEST IP STATS: CPU counters, and Sirocco's profile via STATS ("http", "systat" or "none"), into /tmp/snap.
snap() {
    { echo "dom0_cpu_s=$(cpu_s Domain-0)"; echo "guest_cpu_s=$(cpu_s "$1")"; echo "wall_s=$(now)"; } >/tmp/snap
    case $3 in
        http) curl -s --max-time 5 "http://$2/stats" ;;
        systat) nc -w 5 "$2" 11 ;;
        *) : ;;
    esac >/tmp/snap.json
    for k in $PROFILE_KEYS; do
        echo "$k=$(grep -o "\"$k\":[0-9]*" /tmp/snap.json | head -n1 | cut -d: -f2)"
    done >>/tmp/snap
}
# report LABEL JOB UNITS ...: the same as snap, then one SIROCCO-BENCH kind=prof line of the differences.
report() {
    label=$1; job=$2; units=$3; shift 3
    snap "$@"
    deltas=$(paste -d' ' /tmp/snap.prev /tmp/snap | awk '{
        split($1, a, "="); split($2, b, "=")
        if (a[2] != "" && b[2] != "") printf "%s=%.6g ", a[1], b[2] - a[2] }')
    echo "SIROCCO-BENCH kind=prof guest=$label job=$job units=$units $deltas"
}
begin() { snap "$@"; cp /tmp/snap /tmp/snap.prev; }

# tput LABEL NAME IP STATS: MiB/s to the guest's discard port 9 and from its zero source on port 19 (stamped when
# head has its bytes: openbsd nc keeps running after head exits, so it is ended then), profiled.
tput() {
    begin "$2" "$3" "$4"
    t=$(now); head -c "${MB}M" /dev/zero | timeout 300 nc -N "$3" 9; in_s=$(since "$t" 3)
    report "$1" to_guest "$MB" "$2" "$3" "$4"
    begin "$2" "$3" "$4"
    t=$(now)
    timeout 300 nc "$3" 19 | { head -c "${MB}M" >/tmp/src.out; now >/tmp/t_end; pkill -f "nc $3 19"; }
    out_s=$(awk -v a="$t" -v b="$(cat /tmp/t_end)" 'BEGIN { printf "%.3f", b - a }')
    got=$(stat -c %s /tmp/src.out)
    report "$1" from_guest "$(awk -v g="$got" 'BEGIN { printf "%.2f", g / 1048576 }')" "$2" "$3" "$4"
    TO=$(awk -v s="$in_s" -v m="$MB" 'BEGIN{printf "%.2f", m/s}'); FROM=$(awk -v s="$out_s" -v g="$got" 'BEGIN{printf "%.2f", g/1048576/s}')
}

# iperf3 (issue 15): iperf3's own figures, Debian's 3.12 client in dom0 against Sirocco's iperf app and against
# `iperf3 -s` in the Linux PV guest. Each the receiver's bits per second (`-J`, end.sum_received), in Mbit/s; 0 for
# a run that failed.
IPERF_S=${BENCH_IPERF_S:-5}
iperf_mbit() { # HOST [IPERF3 ARGS]
    host=$1; shift
    timeout 120 iperf3 -c "$host" -J -t "$IPERF_S" "$@" >/tmp/iperf-bench.json 2>&1
    bps=$(iperf_num /tmp/iperf-bench.json sum_received bits_per_second)
    [ -n "$(iperf_error /tmp/iperf-bench.json)" ] && bps=0
    awk -v b="${bps:-0}" 'BEGIN { printf "%.1f", b / 1e6 }'
}
iperf_bench() { # LABEL HOST
    to=$(iperf_mbit "$2"); from=$(iperf_mbit "$2" -R); par=$(iperf_mbit "$2" -P 4)
    echo "SIROCCO-BENCH kind=iperf guest=$1 seconds=$IPERF_S to_guest_mbps=$to from_guest_mbps=$from parallel4_mbps=$par"
}

# bench_guest LABEL IP STATS CFG [overrides]: start, time to first 200, wrk, throughput both ways, stop.
bench_guest() {
    label=$1; ip=$2; stats=$3; cfg=$4; shift 4
    t0=$(now)
    start_bg "bench-$label" "$cfg" "$@"
    if ! wait_http "$ip" 80 300; then fail "netbench-$label" "no HTTP 200 from $ip"; show_guest; stop_net_guest; return; fi
    first=$(since "$t0" 2)
    # Both servers must keep connections alive, or the figure measures connection setup.
    conns=$(curl -s -o /dev/null -o /dev/null -w '%{num_connects}\n' "http://$ip/" "http://$ip/" | awk '{ s += $1 } END { print s }')
    check "netbench-$label-keepalive" "$label's HTTP server keeps the connection alive (2 requests, $conns connection)" [ "$conns" = 1 ]
    begin "$GUEST_NAME" "$ip" "$stats"
    wrk -t2 -c10 -d10s "http://$ip:80/" >/tmp/wrk.out 2>&1
    rps=$(sed -n 's/^Requests\/sec: *//p' /tmp/wrk.out)
    reqs=$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' /tmp/wrk.out)
    report "$label" http "${reqs:-0}" "$GUEST_NAME" "$ip" "$stats"
    TO=0; FROM=0
    # Sirocco's httpd has no discard/source ports: its throughput is measured on echo below.
    [ "$label" = linux ] && wait_tcp "$ip" 9 30 && tput linux "$GUEST_NAME" "$ip" none
    if [ "$label" = linux ]; then
        if wait_tcp "$ip" 5201 30; then iperf_bench linux "$ip"; else fail netbench-iperf-linux "no iperf3 -s on $ip"; fi
    fi
    echo "SIROCCO-BENCH kind=net guest=$label first_200_s=$first rps=${rps:-0} to_guest_mbps=$TO from_guest_mbps=$FROM"
    stop_net_guest
}

bench_guest sirocco 10.0.0.2 http xl-configs/httpd.cfg 'extra="log=warn ip=10.0.0.2/24 gw=10.0.0.1"'
bench_guest sirocco-pvh 10.0.0.2 http xl-configs/httpd.cfg 'type="pvh"' $LAB_HVM_XL 'extra="log=warn ip=10.0.0.2/24 gw=10.0.0.1"'

# What tracing costs when on (issue 15): httpd under wrk with trace=all and without, alternated twice in this one
# lab run (runs minutes apart differ more than the effect), 5 s of wrk each.
for round in 1 2; do
    for tr in off all; do
        extra="log=warn ip=10.0.0.2/24 gw=10.0.0.1"; [ $tr = all ] && extra="$extra trace=all tracebuf=16384"
        start_bg "tc-$tr-$round" xl-configs/httpd.cfg "extra=\"$extra\""
        if wait_http 10.0.0.2 80 120; then
            wrk -t2 -c10 -d5s "http://10.0.0.2:80/" >/tmp/wrk-tc.out 2>&1
            rps=$(sed -n 's/^Requests\/sec: *//p' /tmp/wrk-tc.out)
            events=$( [ $tr = all ] && curl -s http://10.0.0.2/trace | grep -o '"ph":"[BEiCstf]"' | wc -l || echo 0)
            echo "SIROCCO-BENCH kind=tracecost trace=$tr round=$round rps=${rps:-0} events_kept=$events"
        else
            fail "netbench-trace-$tr" "httpd (trace=$tr) did not answer"; show_guest
        fi
        stop_net_guest
    done
done
# echo_tput LABEL [ECHO ARGS]: TCP MiB/s both ways against echo (httpd has no discard/source ports; the same
# image family), with ECHO ARGS added to its command line.
echo_tput() {
    label=$1; shift
    start_bg "bench-$label" xl-configs/echo.cfg "extra=\"log=warn ip=10.0.0.3/24 gw=10.0.0.1 $*\""
    if wait_tcp 10.0.0.3 9 120; then
        tput "$label" "$GUEST_NAME" 10.0.0.3 systat
        echo "SIROCCO-BENCH kind=tput guest=$label to_guest_mbps=$TO from_guest_mbps=$FROM"
    else
        fail "netbench-$label" "echo ($*) did not come up"; show_guest
    fi
    stop_net_guest
}
echo_tput sirocco
# Before/after for split event channels (one port per ring, which netback offers; off by default).
echo_tput sirocco-split split-evtchn=on
# Before/after for large receive: netback cuts dom0's segments into MTU-sized frames for us.
echo_tput sirocco-nolro lro=off
# The same with 256 KiB TCP buffers (echo's tcpbuf=): the window, not either side's CPU, bounds a transfer over
# this path (both sides mostly idle with 64 KiB); the stack keeps it within the posted RX buffers.
echo_tput sirocco-256k tcpbuf=262144
start_bg bench-iperf xl-configs/iperf.cfg 'extra="log=warn ip=10.0.0.7/24 gw=10.0.0.1"'
if wait_tcp 10.0.0.7 5201 120; then
    sleep 1 # the probe's connection ends as a test that never sent a cookie
    iperf_bench sirocco 10.0.0.7
else
    fail netbench-iperf "the iperf app did not listen on 10.0.0.7:5201"; show_guest
fi
stop_net_guest
bench_guest linux 10.0.0.20 none /tmp/nb.cfg

# --- Boot broken down (issue 12): xl create -> first HTTP 200, step by step, as dom0 and the guest see them. ---
# The guest reports its own steps (httpd's /stats, `boot_steps_us`: microseconds since its start of day, and that
# start on the wall clock, which is Xen's and so dom0's); dom0 times `xl create` returning and the first HTTP 200
# (a poller started before `xl create`), and stamps the xenbus states a xenstore watch reports (a shell loop under
# TCG: these may lag). The toolstack floor is `xl create` of a guest that does nothing (ticker) with the same vif.
bb_watch_start() {
    : >/tmp/bb.watch
    # Line-buffered: through a pipe xenstore-watch would hand over its lines in blocks, stamped late.
    (stdbuf -oL xenstore-watch / 2>/dev/null | while read -r p; do
        case $p in
            */state | /local/domain/[1-9]*/name) echo "$(now) $p $(xenstore-read "$p" 2>/dev/null)" ;;
        esac
    done >>/tmp/bb.watch) &
    sleep 0.5
}
bb_watch_stop() { pkill -f "xenstore-watch /" 2>/dev/null; sleep 0.2; }
# bb_first PATTERN VALUE: the dom0 time of the first watch line whose path matches PATTERN with VALUE.
bb_first() { awk -v p="$1" -v v="$2" '$2 ~ p && $3 == v { print $1; exit }' /tmp/bb.watch; }
BB_MEMORY=$(sed -n 's/^memory *= *//p' xl-configs/httpd.cfg)
# bb_poll_start: asks dom0 for http://10.0.0.2/ until a 200 (stamped in /tmp/bb.t200) or 60 s; started before
# `xl create`, so the first 200 is timed even if it comes before `xl create` returns. Each try gives up connecting
# after 0.1 s: a try whose SYN went out before the guest was there would otherwise wait for dom0's SYN
# retransmission (1 s later) and time dom0's TCP instead of the guest.
bb_poll_start() {
    rm -f /tmp/bb.t200
    # The guests benchmarked before had this address under other MACs: dom0's stale neighbour entry would send the
    # first SYNs to a MAC that is gone until the new guest's gratuitous ARP corrects it. Start without one.
    ip neigh flush to 10.0.0.2 2>/dev/null
    (for _ in $(seq 1200); do
        if [ "$(curl -s -o /dev/null --connect-timeout 0.1 --max-time 1 -w '%{http_code}' http://10.0.0.2/)" = 200 ]; then
            now >/tmp/bb.t200
            break
        fi
        sleep 0.05
    done) &
    poller=$!
}
boot_breakdown() {
    run=$1
    bb_watch_start
    bb_poll_start
    t0=$(now)
    xl create xl-configs/httpd.cfg 'name="bb-httpd"' 'extra="log=warn ip=10.0.0.2/24 gw=10.0.0.1"' >/tmp/bb.xl 2>&1
    t_ret=$(now)
    wait $poller
    t200=$(cat /tmp/bb.t200 2>/dev/null)
    steps=$(curl -s --max-time 5 http://10.0.0.2/stats | sed -n 's/.*"boot_steps_us":{\([^}]*\)}.*/\1/p' | tr -d '"' | tr ',' ' ' | tr ':' '=')
    [ -n "$steps" ] || fail "netbench-boot-breakdown" "run $run: no boot_steps_us in /stats"
    id=$(xl domid bb-httpd)
    xl destroy bb-httpd
    bb_watch_stop
    named=$(awk -v d="/local/domain/$id/name" '$2 == d { print $1; exit }' /tmp/bb.watch)
    [ -n "$t200" ] || { fail "netbench-boot-breakdown" "run $run: no HTTP 200 from 10.0.0.2 within 60 s"; }
    echo "SIROCCO-BENCH kind=bootsteps run=$run t0=$t0 named=${named:-none} xl_ret=$t_ret t200=${t200:-none}" \
        "front_init=$(bb_first "^/local/domain/$id/device/vif/0/state$" 1)" \
        "back_initwait=$(bb_first "^/local/domain/0/backend/vif/$id/0/state$" 2)" \
        "back_connected=$(bb_first "^/local/domain/0/backend/vif/$id/0/state$" 4)" \
        "front_connected=$(bb_first "^/local/domain/$id/device/vif/0/state$" 4) $steps"
    # The floor: the same toolstack work for a guest that does nothing (ticker, given the same vif and memory:
    # building a bigger domain takes the toolstack longer), with dom0 as busy as above: the xenstore watch loop and
    # the HTTP poller run during it too (under TCG they cost the toolstack ~0.1-0.3 s; without them the floor was
    # measured on a quieter dom0 than the guest it is compared with).
    bb_watch_start
    bb_poll_start
    t0=$(now)
    xl create xl-configs/ticker.cfg 'name="bb-floor"' 'vif=[ "bridge=xenbr0" ]' "memory=$BB_MEMORY" >/tmp/bb.xl 2>&1
    t_ret=$(now)
    kill $poller 2>/dev/null; wait $poller 2>/dev/null
    xl destroy bb-floor 2>/dev/null
    bb_watch_stop
    echo "SIROCCO-BENCH kind=bootfloor run=$run t0=$t0 xl_ret=$t_ret"
}
for run in 1 2 3; do boot_breakdown "$run"; done
pass netbench-complete "network benchmark ran"
