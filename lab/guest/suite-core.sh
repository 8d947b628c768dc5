# The core suite (issue 3): run loop and idle CPU, clocks, timers, control/shutdown and reboot, xenstore and
# watches, device enumeration and backend state, grants mapped by dom0 and event channels to dom0.
cd /job
expect ticker-ticks ticker-cpu ticker-drift ticker-shutdown ticker-final-line ticker-poweroff \
    reboot-second-boot reboot-reasons xsprobe-probe xsprobe-identity xsprobe-vif xsprobe-backend-state \
    xsprobe-watch grant-mapped-by-dom0 grant-revoke-refused-in-use grant-revoked-after-unmap evtchn-interdomain \
    xsprobe-shutdown

# wait_for PATTERN TIMEOUT_S [FILE]: until FILE (default the console log) matches.
wait_for() {
    f=${3:-$GUEST_LOG}
    for _ in $(seq $(($2 * 10))); do grep -q -- "$1" "$f" 2>/dev/null && return 0; sleep 0.1; done
    return 1
}
last_tick() { sed -n 's/.*tick \([0-9]*\) mono.*/\1/p' "$GUEST_LOG" | tail -n1; }

# --- ticker: ticks, idle CPU, drift, clean shutdown -------------------------------------------------------
start_bg ticker xl-configs/ticker.cfg
# Stamp each console line with dom0's clock as it arrives (tail -F follows xenconsoled's writes).
( for _ in $(seq 100); do [ -f "$GUEST_LOG" ] && break; sleep 0.1; done
  tail -n0 -F "$GUEST_LOG" 2>/dev/null | while IFS= read -r line; do echo "$(now) $line"; done >/tmp/ticker.stamped ) &
STAMPER=$!
if wait_for "tick 1 mono" 60; then
    t_a=$(now); n_a=$(last_tick); c_a=$(cpu_s ticker)
    sleep 10
    t_b=$(now); n_b=$(last_tick); c_b=$(cpu_s ticker)
    sleep 20
    t_c=$(now); c_c=$(cpu_s ticker)
    sleep 31
    ticks=$((n_b - n_a))
    check ticker-ticks "$ticks ticks in 10 s (want 9-11)" [ "$ticks" -ge 9 -a "$ticks" -le 11 ]
    pct10=$(awk -v a="$c_a" -v b="$c_b" -v t="$t_a" -v u="$t_b" 'BEGIN { printf "%.2f", 100 * (b - a) / (u - t) }')
    pct30=$(awk -v a="$c_a" -v b="$c_c" -v t="$t_a" -v u="$t_c" 'BEGIN { printf "%.2f", 100 * (b - a) / (u - t) }')
    check ticker-cpu "CPU ${pct10}% of wall over 10 s (xl list: ${c_a} s -> ${c_b} s; want < 5%)" \
        awk -v p="$pct10" 'BEGIN { exit !(p < 5) }'
    echo "SIROCCO-BENCH kind=idle guest=ticker cpu_s_start=$c_a cpu_s_30=$c_c wall_s=$(awk -v t="$t_a" -v u="$t_c" 'BEGIN{printf "%.1f", u-t}') pct=$pct30"
    log "idle: ticker used $(awk -v a="$c_a" -v b="$c_c" 'BEGIN{printf "%.1f", b-a}') s of CPU in 30 s (${pct30}%)"
    # Drift: guest wall clock minus dom0's arrival time, early ticks vs late ticks (~60 s apart). A line's trip
    # from the guest to dom0's stamp only ever adds delay (more under load), so each end takes its least-delayed
    # tick (the largest wall - arrival) of 10 rather than an average that load would skew.
    drift=$(awk '/tick [0-9]+ mono/ { for (i = 1; i <= NF; i++) if ($i ~ /^wall=/) { w = substr($i, 6); n++; d[n] = w - $1; t[n] = $1 } }
        END { if (n < 30) { print "none"; exit }
              a = d[1]; b = d[n]; for (i = 1; i <= 10; i++) { if (d[i] > a) a = d[i]; if (d[n - 10 + i] > b) b = d[n - 10 + i] }
              printf "%.3f %.1f %d", 1000 * (b - a), t[n] - t[1], n }' /tmp/ticker.stamped)
    set -- $drift
    if [ "$1" != none ]; then
        echo "SIROCCO-BENCH kind=drift guest=ticker drift_ms=$1 span_s=$2 samples=$3"
        log "clock drift of the guest's wall clock vs dom0: $1 ms over $2 s ($3 ticks stamped)"
        check ticker-drift "guest wall clock vs dom0: $1 ms over $2 s (want |drift| < 50 ms)" \
            awk -v d="$1" 'BEGIN { exit !(d < 50 && d > -50) }'
    else
        fail ticker-drift "too few stamped ticks"; show_guest
    fi
else
    fail ticker-ticks "no first tick within 60 s"; show_guest
fi
t0=$(now)
timeout 30 xl shutdown -w ticker >/tmp/xl-shutdown.out 2>&1
took=$(since "$t0")
wait $XL_PID; kill $STAMPER 2>/dev/null
check ticker-shutdown "xl shutdown -w returned in ${took} s (want < 10)" awk -v t="$took" 'BEGIN { exit !(t < 10) }'
check ticker-final-line "final line on the console after xl shutdown" console_has "ticker: poweroff requested"
GUEST_REASON=$(shutdown_reason "$GUEST_XL" tail)
check ticker-poweroff "domain powered off cleanly (got $GUEST_REASON)" ended poweroff

# --- xl reboot: a second boot ------------------------------------------------------------------------------
start_bg ticker-rb xl-configs/ticker.cfg
if wait_for "tick 1 mono" 60; then
    xl reboot ticker-rb
    wait_for "reboot requested" 30
    ok=1; for _ in $(seq 600); do [ "$(grep -c 'Sirocco .* booting' "$GUEST_LOG")" -ge 2 ] && break; sleep 0.1; done
    check reboot-second-boot "xl reboot: the guest said so, stopped, and booted again" \
        sh -c "[ \$(grep -c 'Sirocco .* booting' '$GUEST_LOG') -ge 2 ] && grep -q 'ticker: reboot requested' '$GUEST_LOG'"
    wait_for "tick 1 mono" 60
    timeout 30 xl shutdown -w ticker-rb >/dev/null 2>&1
else
    fail reboot-second-boot "no first tick"; show_guest
fi
wait $XL_PID
check reboot-reasons "xl saw a reboot, then a poweroff" \
    sh -c "grep -q 'reason code 1' '$GUEST_XL' && [ \$(sed -n 's/.*reason code \([0-9]*\).*/\1/p' '$GUEST_XL' | tail -n1) = 0 ]"

# --- xsprobe: xenstore, watches, devices, grants, event channels -------------------------------------------
start_bg xsprobe xl-configs/xsprobe.cfg
id=""; for _ in $(seq 100); do id=$(xl domid xsprobe 2>/dev/null) && break; sleep 0.1; done
dom=/local/domain/$id
for _ in $(seq 300); do [ "$(xenstore-read $dom/data/probe 2>/dev/null)" = ok ] && break; sleep 0.1; done
check xsprobe-probe "data/probe readable from dom0 ($(xenstore-read $dom/data/probe 2>&1))" \
    [ "$(xenstore-read $dom/data/probe 2>/dev/null)" = ok ]
check xsprobe-identity "guest read its own domid ($id) and name" console_has "xsprobe: domid $id name xsprobe"
check xsprobe-vif "vif 0 enumerated with its backend" console_has "xsprobe: vif 0: backend /local/domain/0/backend/vif/$id/0"
check xsprobe-backend-state "backend state read by watch (InitWait)" console_has "xsprobe: vif 0 backend is InitWait"
for c in alpha beta gamma; do
    xenstore-write $dom/data/cmd $c
    wait_for "xsprobe: cmd $c" 10
done
order=$(sed -n 's/.*xsprobe: cmd \(alpha\|beta\|gamma\).*/\1/p' "$GUEST_LOG" | tr '\n' ' ')
check xsprobe-watch "three commands echoed in order (got: $order)" [ "$order" = "alpha beta gamma " ]
gref=$(xenstore-read $dom/data/gref 2>/dev/null); port=$(xenstore-read $dom/data/evtchn 2>/dev/null)
/job/lab/labpeer gnt-read "$id" "$gref" 4 >/tmp/labpeer-gnt.out 2>&1 &
peer=$!
wait_for "holding the mapping" 10 /tmp/labpeer-gnt.out
xenstore-write $dom/data/cmd revoke
wait_for "xsprobe: revoke refused" 10
wait $peer
cat /tmp/labpeer-gnt.out | sed 's/^/lab: /'
check grant-mapped-by-dom0 "dom0 mapped gref $gref and read the guest's text" \
    grep -q "reads: sirocco grant page from domain $id" /tmp/labpeer-gnt.out
check grant-revoke-refused-in-use "revoke refused while dom0 maps the page" console_has "xsprobe: revoke refused"
xenstore-write $dom/data/cmd revoke2
wait_for "xsprobe: grant revoked" 10
check grant-revoked-after-unmap "revoke succeeds after dom0 unmapped" console_has "xsprobe: grant revoked"
/job/lab/labpeer evtchn-ping "$id" "$port" >/tmp/labpeer-ev.out 2>&1
sed 's/^/lab: /' /tmp/labpeer-ev.out
check evtchn-interdomain "dom0 bound our unbound port, notified us, got a notify back" \
    sh -c "grep -q 'event back' /tmp/labpeer-ev.out && grep -q 'xsprobe: event 1 on port $port' '$GUEST_LOG'"
timeout 30 xl shutdown -w xsprobe >/dev/null 2>&1
wait $XL_PID
GUEST_REASON=$(shutdown_reason "$GUEST_XL" tail)
check xsprobe-shutdown "xl shutdown of a guest blocked in watches (got $GUEST_REASON)" ended poweroff
