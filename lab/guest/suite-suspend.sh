# Suspend and resume (issue 16): `xl save`, `xl restore` and `xl save -c` on the ticker app, which prints a
# numbered tick with its monotonic time every second, as PV and as PVH (pvh:suspend); with PVH also `xl migrate`
# to this same dom0 through a pipe (`xl migrate -s "" NAME "xl migrate-receive"`). A guest with a vif leaves the
# request unacknowledged and says why (the devices' resume is not done yet). `xl migrate` of a PV guest is not
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
# refused NAME LOG WHY: control/shutdown = suspend is left unacknowledged, with WHY on the console.
refused() {
    dom=/local/domain/$(xl domid "$1")
    xenstore-write "$dom/control/shutdown" suspend
    for _ in $(seq 50); do grep -q "suspend requested, not acknowledged" "$2" && break; sleep 0.2; done
    sleep 0.5
    key=$(xenstore-read "$dom/control/shutdown" 2>&1)
    xenstore-write "$dom/control/shutdown" ""
    grep -q "suspend requested, not acknowledged: $3" "$2" && [ "$key" = suspend ]
}

tk=tk
log=/var/log/xen/console/guest-$tk.log
rm -f "$log" /tmp/tk.sav /tmp/tk.ckpt
mlog=/var/log/xen/console/guest-$tk--incoming.log
rm -f "$mlog"
expect suspend-feature suspend-save suspend-restore suspend-ticks-go-on suspend-checkpoint suspend-checkpoint-ticks \
    suspend-save-again suspend-in-order suspend-shutdown-after suspend-refused-with-devices
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
# A guest with a vif: its resume is not done, so the request is refused (left unacknowledged), saying why.
start_bg sus-echo xl-configs/echo.cfg 'extra="log=info ip=10.0.0.3/24 gw=10.0.0.1"'
if wait_tcp 10.0.0.3 7 60; then
    refused sus-echo "$GUEST_LOG" "a guest with network or block devices cannot suspend yet"; rc=$?
    check suspend-refused-with-devices "echo (a vif) left control/shutdown=suspend unacknowledged: $(grep -o 'not acknowledged: .*' "$GUEST_LOG" | head -n1)" \
        [ $rc = 0 ]
else
    fail suspend-refused-with-devices "echo did not answer on 10.0.0.3:7"; show_guest
fi
stop_net_guest
