# Suspend and resume (issue 16): `xl save`, `xl restore` and `xl save -c` on the ticker app, which prints a
# numbered tick with its monotonic time every second, as PV and as PVH (pvh:suspend); with PVH also `xl migrate`
# to this same dom0 through a pipe (`xl migrate -s "" NAME "xl migrate-receive"`). Then guests with devices: a
# 64 MiB TCP echo and four kv writers carried across the move, and kv moved again and again. `xl migrate` of a PV guest is not
# tried: it is live, and PV log-dirty needs shadow paging, which this lab's Xen lacks (`xl info`: virt_caps
# "pv hvm hap gnttab-v1 gnttab-v2"); a Linux PV guest's `xl migrate` fails here the same way ("Failed to enable
# logdirty", "domain did not respond to suspend request: Invalid argument"). PVH's log-dirty is HAP's.
# `xl create` without -F here: a foreground xl exits at the first suspend (docs/suspend.md, section 8).
cd /job
. /job/lab/net-lib.sh
ticks() { grep -o 'tick [0-9]* mono=[0-9.]*' "$1" 2>/dev/null; }
last_tick() { ticks "$1" | tail -n1 | awk '{ print $2 }'; }
# wait_tick LOG N SECONDS: until tick N (or a later one) is in LOG.
wait_tick() {
    for _ in $(seq $(( $3 * 5 ))); do t=$(last_tick "$1"); [ "${t:-0}" -ge "$2" ] && return 0; sleep 0.2; done
    return 1
}
# in_order LOG...: the ticks across the logs are 1, 2, 3... with none missing or repeated, and their monotonic times
# never go back nor jump: ticks are due a second apart on the guest's clock, which does not count the time
# suspended, so no two are 1.5 s apart (a clock that counted a save and a restore would put the next tick that
# much later).
in_order() {
    cat "$@" 2>/dev/null | grep -o 'tick [0-9]* mono=[0-9.]*' | awk '{ split($3, m, "="); n = $2 + 0; t = m[2] + 0;
        if (n != prev + 1) { print "lab: tick " n " after tick " prev; bad = 1 }
        if (t < last) { print "lab: monotonic time went back at tick " n ": " t " < " last; bad = 1 }
        if (prev > 0 && t - last > 1.5) { print "lab: monotonic time jumped " t - last " s before tick " n; bad = 1 }
        prev = n; last = t } END { exit bad }'
}
tk=tk
log=/var/log/xen/console/guest-$tk.log
rm -f "$log" /tmp/tk.sav /tmp/tk.ckpt
mlog=/var/log/xen/console/guest-$tk--incoming.log
rm -f "$mlog"
expect suspend-feature suspend-save suspend-restore suspend-ticks-go-on suspend-checkpoint suspend-checkpoint-ticks \
    suspend-save-again suspend-in-order suspend-shutdown-after
xl create xl-configs/ticker.cfg "name=\"$tk\"" $(mode_type xl-configs/ticker.cfg) >/tmp/tk.xl 2>&1
# What a failing check shows (show_guest).
GUEST_NAME=$tk; GUEST_LOG=$log; GUEST_XL=/tmp/tk.xl
if wait_tick "$log" 2 60; then
    dom=/local/domain/$(xl domid $tk)
    feature=$(xenstore-read "$dom/control/feature-suspend" 2>&1)
    check suspend-feature "control/feature-suspend = $feature" [ "$feature" = 1 ]
    # xl save, then xl restore: a new domain, on the same host.
    before=$(last_tick "$log"); t0=$(now)
    timeout 180 xl save $tk /tmp/tk.sav >/tmp/tk-save.out 2>&1; rc=$?
    check suspend-save "xl save: exit $rc after $(since "$t0" 1) s, $(stat -c %s /tmp/tk.sav 2>/dev/null) bytes, at tick $before; $(tail -n1 /tmp/tk-save.out)" \
        sh -c "[ $rc = 0 ] && ! xl domid $tk >/dev/null 2>&1"
    # Saved for 5 s: Xen's clock moves on, the guest's must not (in_order looks for the jump).
    sleep 5
    t0=$(now)
    timeout 180 xl restore /tmp/tk.sav >/tmp/tk-restore.out 2>&1; rc=$?
    check suspend-restore "xl restore: exit $rc after $(since "$t0" 1) s; $(grep -o 'resumed in a new domain.*' "$log" | tail -n1)" \
        sh -c "[ $rc = 0 ] && xl domid $tk >/dev/null"
    wait_tick "$log" $((before + 3)) 60
    after=$(last_tick "$log")
    check suspend-ticks-go-on "tick $before before the save, tick ${after:-none} after the restore" \
        sh -c "[ ${after:-0} -ge $((before + 3)) ] && grep -q 'resumed in a new domain' $log"
    # xl save -c: a checkpoint, the domain goes on (a save of the restored domain: its p2m was published again).
    before=$(last_tick "$log"); t0=$(now)
    timeout 180 xl save -c $tk /tmp/tk.ckpt >/tmp/tk-ckpt.out 2>&1; rc=$?
    check suspend-checkpoint "xl save -c: exit $rc after $(since "$t0" 1) s, $(stat -c %s /tmp/tk.ckpt 2>/dev/null) bytes; $(grep -o 'suspend cancelled.*' "$log" | tail -n1)" \
        sh -c "[ $rc = 0 ] && xl domid $tk >/dev/null && grep -q 'suspend cancelled or a checkpoint taken' $log"
    grep -E "checkpoint|still bound|CALLBACK_IRQ" "$log" | sed 's/^/lab: console: /'
    wait_tick "$log" $((before + 3)) 60
    after=$(last_tick "$log")
    check suspend-checkpoint-ticks "tick $before before the checkpoint, ${after:-none} after" [ "${after:-0}" -ge $((before + 3)) ]
    # A second xl save and xl restore, of a domain that was itself restored: ports, p2m and watches are the
    # second domain's, not stale ones.
    before=$(last_tick "$log"); t0=$(now)
    timeout 180 xl save $tk /tmp/tk.sav >/tmp/tk-save2.out 2>&1 && timeout 180 xl restore /tmp/tk.sav >>/tmp/tk-save2.out 2>&1; rc=$?
    wait_tick "$log" $((before + 3)) 60
    after=$(last_tick "$log")
    check suspend-save-again "xl save + xl restore of the restored domain: exit $rc after $(since "$t0" 1) s; tick $before before, ${after:-none} after; $(grep -c 'resumed in a new domain' "$log") resumes in a new domain logged" \
        sh -c "[ $rc = 0 ] && [ ${after:-0} -ge $((before + 3)) ] && [ $(grep -c 'resumed in a new domain' "$log") = 2 ]"
    check suspend-in-order "ticks 1 to ${after:-?} across two saves and restores and a checkpoint: none missing or repeated, monotonic time never back and no gap of 1.5 s" \
        in_order "$log"
    last_log=$log
    if ! pv_only; then
        # xl migrate to this same dom0, through a pipe (live: HAP log-dirty).
        expect suspend-migrate suspend-migrate-ticks
        before=$(last_tick "$log"); t0=$(now)
        timeout 240 xl migrate -s "" $tk "xl migrate-receive" >/tmp/tk-migrate.out 2>&1; rc=$?
        [ $rc = 0 ] || { sed 's/^/lab: xl migrate: /' /tmp/tk-migrate.out | grep -v progress | tail -n 25; }
        check suspend-migrate "xl migrate (localhost): exit $rc after $(since "$t0" 1) s; $(grep -v progress /tmp/tk-migrate.out | tail -n1)" \
            sh -c "[ $rc = 0 ] && xl domid $tk >/dev/null"
        wait_tick "$mlog" $((before + 3)) 60
        after=$(last_tick "$mlog")
        check suspend-migrate-ticks "tick $before before the migration, ${after:-none} after (in $(basename "$mlog")); in order across both logs: $(in_order "$log" "$mlog" && echo yes || echo no)" \
            sh -c "[ ${after:-0} -ge $((before + 3)) ] && grep -q 'resumed in a new domain' $mlog" 
        last_log=$mlog
    fi
    timeout 60 xl shutdown -w $tk >/tmp/tk-shutdown.out 2>&1; rc=$?
    sleep 0.5
    check suspend-shutdown-after "xl shutdown after all that: exit $rc; $(grep -o 'ticker: .* requested after .*' "$last_log" | tail -n1)" \
        sh -c "[ $rc = 0 ] && grep -q 'ticker: poweroff requested' $last_log && ! xl domid $tk >/dev/null 2>&1"
else
    fail suspend-feature "ticker did not tick"; GUEST_LOG=$log; show_guest
fi
xl destroy $tk >/dev/null 2>&1

# --- devices: a vif (echo) and a vif with a disk (kv), across a save and restore, and with PVH a migration --------
# move NAME: `xl save` + 2 s + `xl restore` (PV), or `xl migrate` to this dom0 (PVH); MOVED_LOG is where the
# domain's console goes afterwards.
move() {
    if pv_only; then
        timeout 180 xl save "$1" "/tmp/$1.sav" >"/tmp/$1-move.out" 2>&1 && sleep 2 &&
            timeout 180 xl restore "/tmp/$1.sav" >>"/tmp/$1-move.out" 2>&1
        rc=$?; MOVED_LOG=/var/log/xen/console/guest-$1.log
    else
        timeout 240 xl migrate -s "" "$1" "xl migrate-receive" >"/tmp/$1-move.out" 2>&1
        rc=$?; MOVED_LOG=/var/log/xen/console/guest-$1--incoming.log
    fi
    [ $rc = 0 ] || grep -v progress "/tmp/$1-move.out" | tail -n 15 | sed 's/^/lab: move: /'
    # How Xen keeps the moved domain's TSC (the lab runs PVH with tsc_mode "native": see LAB_HVM_XL).
    xl debug-keys s; xl dmesg | grep -E "dom$(xl domid "$1" 2>/dev/null)(\(hvm\))?:" | tail -n 2 | sed 's/^/lab: tsc after the move: /'
    return $rc
}
how=$(pv_only && echo "xl save + xl restore" || echo "xl migrate")
# alive NAME: the domain still exists (if not, say so and show its console: no minutes of reads from nobody).
alive() { xl domid "$1" >/dev/null 2>&1 && return 0; log "$1 is gone"; show_guest; return 1; }
# start_sus NAME CFG EXTRA...: xl create without -F (see the top).
start_sus() {
    GUEST_NAME=$1; GUEST_LOG=/var/log/xen/console/guest-$1.log; GUEST_XL=/tmp/xl-$1.out
    rm -f "$GUEST_LOG" "${GUEST_LOG%.log}--incoming.log"
    cfg=$2; shift 2
    xl create "$cfg" "name=\"$GUEST_NAME\"" $(mode_type "$cfg") "$@" >"$GUEST_XL" 2>&1
}
expect suspend-echo-64mib suspend-echo-reconnected suspend-echo-announced suspend-syslog-procid suspend-kv-moved \
    suspend-kv-acked suspend-kv-repeated suspend-kv-heap
syslog_collector /tmp/sus-syslog.out
start_sus sus-echo xl-configs/echo.cfg \
    'extra="log=info ip=10.0.0.3/24 gw=10.0.0.1 ip6=fd00::3/64 slaac=0 syslog=10.0.0.1:514"'
if wait_tcp 10.0.0.3 7 60; then
    olddom=$(xl domid sus-echo)
    mac=$(xenstore-read "/local/domain/$(xl domid sus-echo)/device/vif/0/mac")
    head -c 67108864 /dev/urandom >/tmp/sus64; sent=$(sha256sum </tmp/sus64 | cut -c1-16)
    ./lab/labpeer announcements xenbr0 "$mac" 90 >/tmp/sus-announce.out 2>&1 &
    watcher=$!
    # The connection must span the move: the first 32 MiB are written while the domain moves, the other 32 only
    # once the move is over (through a fifo), so half the echo crosses the new backend whenever the move ends.
    rm -f /tmp/sus.fifo; mkfifo /tmp/sus.fifo
    t0=$(now)
    timeout 300 nc -N 10.0.0.3 7 </tmp/sus.fifo >/tmp/sus64.back &
    nc_pid=$!
    exec 7>/tmp/sus.fifo
    head -c 33554432 /tmp/sus64 >&7 &
    first=$!
    sleep 1
    # Without fd 7: the xl daemon a restore or migration leaves behind would hold the fifo open, and nc would
    # never see the end of its input.
    move sus-echo 7>&-; mrc=$?
    moved=$(since "$t0" 1); mid=$(stat -c %s /tmp/sus64.back)
    wait $first
    tail -c +33554433 /tmp/sus64 >&7
    exec 7>&-
    wait $nc_pid
    took=$(since "$t0" 1)
    back=$(sha256sum </tmp/sus64.back | cut -c1-16)
    GUEST_LOG=$MOVED_LOG
    check suspend-echo-64mib "64 MiB TCP echo across $how (exit $mrc at ${moved} s, $mid bytes echoed by then) in ${took} s: sha256 $sent vs $back ($(stat -c %s /tmp/sus64.back) bytes)" \
        sh -c "[ $mrc = 0 ] && [ '$sent' = '$back' ] && [ ${mid:-0} -le 33554432 ]"
    check suspend-echo-reconnected "$(grep -o 'vif0: resumed.*' "$MOVED_LOG" | head -n1); $(grep -o 'vif0: reconnected after the resume' "$MOVED_LOG" | head -n1)" \
        grep -q 'vif0: reconnected after the resume' "$MOVED_LOG"
    sleep 1; kill $watcher 2>/dev/null; wait $watcher 2>/dev/null
    # The link-local address from the MAC (EUI-64, as the guest forms it).
    ll=$(set -- $(echo "$mac" | tr : ' '); printf 'fe80::%x:%x:%x:%x' $(( (0x$1 ^ 2) << 8 | 0x$2 )) \
        $(( 0x$3 << 8 | 0xff )) $(( 0xfe00 | 0x$4 )) $(( 0x$5 << 8 | 0x$6 )))
    sed 's/^/lab: seen on xenbr0: /' /tmp/sus-announce.out
    # Announcements after the move: the gratuitous ARP for 10.0.0.3 (the boot's own came before the watcher) and an
    # unsolicited, overriding neighbour advertisement for each IPv6 address.
    check suspend-echo-announced "after the move the guest announced 10.0.0.3, fd00::3 and its link-local address $ll: $(tr '\n' ';' </tmp/sus-announce.out)" \
        sh -c "grep -qx 'garp 10.0.0.3' /tmp/sus-announce.out && grep -qx 'na fd00::3 override=1' /tmp/sus-announce.out && grep -qx 'na $ll override=1' /tmp/sus-announce.out"
    # Syslog's PROCID is the domain id: after the move, the new one.
    newdom=$(xl domid sus-echo)
    procid=$(grep 'reconnected after the resume' /tmp/sus-syslog.out | head -n1 | awk '{ print $5 }')
    check suspend-syslog-procid "domain $olddom before the move, $newdom after; PROCID of the guest's syslog record of its reconnect: ${procid:-none}" \
        sh -c "[ -n '$newdom' ] && [ '$newdom' != '$olddom' ] && [ '${procid:-x}' = '$newdom' ]"
else
    fail suspend-echo-64mib "echo did not answer on 10.0.0.3:7"; show_guest
fi
xl destroy sus-echo >/dev/null 2>&1
kill $COLLECTOR_PID 2>/dev/null

# kv: four writers on their own keep-alive connections while the domain moves; then every acknowledged key is read
# back. Then it moves 10 more times (PV: 3 saves and restores, each takes longer), still serving, its heap not growing.
KVS=10.0.0.7
truncate -s 0 /tmp/sus-kv.img; truncate -s 64M /tmp/sus-kv.img
start_sus sus-kv xl-configs/kv.cfg "extra=\"log=info ip=$KVS/24 gw=10.0.0.1\"" \
    'disk=["format=raw, vdev=xvda, access=rw, target=/tmp/sus-kv.img"]'
if wait_http "$KVS" 80 120; then
    rm -f /tmp/sus-kv.acked.[1-4]
    pids=""
    for w in 1 2 3 4; do ./lab/httpload put "$KVS" 80 "sus-w$w" "/tmp/sus-kv.acked.$w" >/dev/null & pids="$pids $!"; done
    sleep 2
    before=$(cat /tmp/sus-kv.acked.[1-4] | wc -l)
    move sus-kv; mrc=$?
    sleep 3
    kill $pids 2>/dev/null; wait $pids 2>/dev/null
    GUEST_LOG=$MOVED_LOG
    total=$(cat /tmp/sus-kv.acked.[1-4] | wc -l)
    check suspend-kv-moved "kv across $how (exit $mrc): $before keys acknowledged before, $total in all; $(grep -o 'vbd51712: resumed.*' "$MOVED_LOG" | head -n1); $(grep -o 'vbd51712: reconnected after.*' "$MOVED_LOG" | head -n1)" \
        sh -c "[ $mrc = 0 ] && [ $total -gt $before ] && grep -q 'vbd51712: reconnected after the resume' '$MOVED_LOG'"
    cat /tmp/sus-kv.acked.[1-4] >/tmp/sus-kv.acked
    out=""; rc=1; alive sus-kv && { out=$(timeout 600 ./lab/httpload verify "$KVS" 80 /tmp/sus-kv.acked); rc=$?; }
    echo "$out" | grep -v '^httpload: ok=' | head -n 20 | sed 's/^/lab: kv: /'
    check suspend-kv-acked "$total acknowledged keys read back after the move: $(echo "$out" | tail -n1)" \
        sh -c "[ $rc = 0 ] && [ $total -gt 0 ]"
    rounds=10; pv_only && rounds=3
    timeout 120 ./lab/httpload put "$KVS" 80 sus-r /tmp/sus-kv.acked 20 >/dev/null
    h0=$(heap_used "$KVS"); ok=0
    for i in $(seq $rounds); do
        move sus-kv && alive sus-kv || break
        # The same 20 keys each round (overwritten): the store's index does not grow, so the heap check below
        # sees what the moves themselves keep.
        timeout 120 ./lab/httpload put "$KVS" 80 sus-r /tmp/sus-kv.acked 20 >/dev/null
        ok=$i
    done
    out=""; rc=1; alive sus-kv && { out=$(timeout 600 ./lab/httpload verify "$KVS" 80 /tmp/sus-kv.acked); rc=$?; }
    check suspend-kv-repeated "$ok of $rounds more moves ($how), the same 20 keys put after each; all $(wc -l </tmp/sus-kv.acked) keys read back: $(echo "$out" | tail -n1)" \
        sh -c "[ $ok = $rounds ] && [ $rc = 0 ]"
    h1=$(heap_used "$KVS")
    check suspend-kv-heap "heap in use before the $rounds moves ${h0:-?} B, after ${h1:-?} B (want within 32 KiB)" \
        sh -c "[ -n '$h0' ] && [ -n '$h1' ] && [ '$h1' -le $((${h0:-0} + 32768)) ]"
else
    fail suspend-kv-moved "kv did not answer on $KVS"; show_guest
fi
xl destroy sus-kv >/dev/null 2>&1
