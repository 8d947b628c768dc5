# Migration benchmark (issue 16): how long a guest is unreachable when it moves, seen from dom0 by a ping every
# 10 ms (downtime: the longest gap between two replies), and how long the whole move takes. Sirocco's echo and a
# Linux PV guest (the netbench peer) of the same memory size (128 MiB) are saved and restored at once (`xl save`
# then `xl restore`: the move both can make in this lab); Sirocco as PVH is also live-migrated to this same dom0
# (`xl migrate`), at 32, 128 and 256 MiB. A Linux guest cannot be live-migrated here: as PV, log-dirty needs shadow
# paging, which this lab's Xen lacks; as PVH it is not booted (shared/xen-lab.md: one hung for minutes).
cd /job
. /job/lab/net-lib.sh
RUNS=${BENCH_MIGRATE_RUNS:-3}
linux_bench_peer # /tmp/nb.cfg: a Linux PV guest at 10.0.0.20, 128 MiB

# gap_ms FILE: the longest gap between two consecutive ping replies (ping -D timestamps), in ms.
gap_ms() {
    sed -n 's/^\[\([0-9.]*\)\] .*bytes from.*/\1/p' "$1" | awk 'NR > 1 { g = ($1 - p) * 1000; if (g > m) m = g } { p = $1 } END { printf "%.0f", m }'
}
# bench_move LABEL NAME IP HOW MEM: one move of the running domain NAME (HOW: save-restore or migrate) under a
# 10 ms ping; prints a SIROCCO-BENCH kind=migrate line.
bench_move() {
    ping -D -i 0.01 -W 1 "$3" >/tmp/mig-ping.out 2>&1 &
    pp=$!
    sleep 1
    t0=$(now)
    case $4 in
        save-restore) timeout 240 xl save "$2" /tmp/mig.sav >/tmp/mig.out 2>&1 && timeout 240 xl restore /tmp/mig.sav >>/tmp/mig.out 2>&1 ;;
        migrate) timeout 240 xl migrate -s "" "$2" "xl migrate-receive" >/tmp/mig.out 2>&1 ;;
    esac
    rc=$?
    total=$(since "$t0" 2)
    # Until the guest answers again after the move (at most 30 s), then a second more.
    n=$(grep -c 'bytes from' /tmp/mig-ping.out)
    for _ in $(seq 300); do [ "$(grep -c 'bytes from' /tmp/mig-ping.out)" -gt "$n" ] && break; sleep 0.1; done
    sleep 1
    kill $pp 2>/dev/null; wait $pp 2>/dev/null
    [ $rc = 0 ] || grep -v progress /tmp/mig.out | tail -n 5 | sed "s/^/lab: $1: /"
    echo "SIROCCO-BENCH kind=migrate guest=$1 how=$4 memory_mib=$5 rc=$rc total_s=$total downtime_ms=$(gap_ms /tmp/mig-ping.out) replies=$(grep -c 'bytes from' /tmp/mig-ping.out)"
}
# start_echo NAME MODE MEM: Sirocco's echo as MODE with MEM MiB at 10.0.0.3 (true once it answers).
start_echo() {
    rm -f /var/log/xen/console/guest-$1*.log
    xl create xl-configs/echo.cfg "name=\"$1\"" "memory=$3" 'extra="log=warn ip=10.0.0.3/24 gw=10.0.0.1"' \
        $([ "$2" = pvh ] && echo "type=\"pvh\" $LAB_HVM_XL") >/tmp/mig-create.out 2>&1
    wait_tcp 10.0.0.3 7 60 || { log "migbench: $1 did not come up: $(tail -n 3 /tmp/mig-create.out)"; return 1; }
}

# Save + restore, Sirocco (PV, then PVH) and Linux PV taking turns, so that whatever else dom0 is doing at the
# time weighs on both alike (in one run, moves made early in the lab's life took 3-5 times longer than later ones).
xl create /tmp/nb.cfg 'name="mig-linux"' >/tmp/mig-linux.out 2>&1
wait_tcp 10.0.0.20 9 90 || log "migbench: the Linux guest did not come up: $(tail -n 3 /tmp/mig-linux.out)"
for mode in pv pvh; do
    if start_echo "mig-$mode" "$mode" 128; then
        for _ in $(seq "$RUNS"); do
            bench_move "sirocco-$mode" "mig-$mode" 10.0.0.3 save-restore 128
            bench_move linux-pv mig-linux 10.0.0.20 save-restore 128
        done
    fi
    xl destroy "mig-$mode" >/dev/null 2>&1
done
xl destroy mig-linux >/dev/null 2>&1
# Live migration of Sirocco PVH at three sizes (no Linux guest can be migrated here).
for mem in 32 128 256; do
    if start_echo "mig-pvh-$mem" pvh "$mem"; then
        for _ in $(seq "$RUNS"); do bench_move sirocco-pvh "mig-pvh-$mem" 10.0.0.3 migrate "$mem"; done
    fi
    xl destroy "mig-pvh-$mem" >/dev/null 2>&1
done
