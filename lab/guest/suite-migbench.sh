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
# sirocco_moves MODE MEM HOW: boots echo as MODE with MEM MiB, moves it RUNS times, destroys it.
sirocco_moves() {
    name=mig-$1-$2
    rm -f /var/log/xen/console/guest-$name*.log
    xl create xl-configs/echo.cfg "name=\"$name\"" "memory=$2" 'extra="log=warn ip=10.0.0.3/24 gw=10.0.0.1"' \
        $([ "$1" = pvh ] && echo "type=\"pvh\" $LAB_HVM_XL") >/tmp/mig-create.out 2>&1
    if wait_tcp 10.0.0.3 7 60; then
        for _ in $(seq "$RUNS"); do bench_move "sirocco-$1" "$name" 10.0.0.3 "$3" "$2"; done
    else
        log "migbench: $name did not come up: $(tail -n 3 /tmp/mig-create.out)"
    fi
    xl destroy "$name" >/dev/null 2>&1
}

sirocco_moves pv 128 save-restore
sirocco_moves pvh 128 save-restore
for mem in 32 128 256; do sirocco_moves pvh "$mem" migrate; done
# The Linux PV guest, the same move.
xl create /tmp/nb.cfg 'name="mig-linux"' >/tmp/mig-create.out 2>&1
if wait_tcp 10.0.0.20 9 90; then
    for _ in $(seq "$RUNS"); do bench_move linux-pv mig-linux 10.0.0.20 save-restore 128; done
else
    log "migbench: the Linux guest did not come up: $(tail -n 3 /tmp/mig-create.out)"
fi
xl destroy mig-linux >/dev/null 2>&1
