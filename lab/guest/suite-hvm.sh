# The HVM suite (issue 11, `make test-hvm`, not part of `make test`: an HVM guest needs ~15 minutes here to get
# through hvmloader and SeaBIOS under nested TCG). The disk `make image` wrote is booted as type="hvm" with
# Debian's device model: SeaBIOS -> GRUB -> Sirocco (multiboot2), which must find Xen, unplug the emulated disk
# and NIC, connect netfront, and answer HTTP from dom0.
cd /job
. /job/lab/net-lib.sh
expect hvm-serial-greeting hvm-mode hvm-unplug hvm-http hvm-stats hvm-save-restore hvm-http-after-restore hvm-shutdown
start_bg httpd-hvm xl-configs/httpd-hvm.cfg $LAB_HVM_XL
# An HVM domain's console is its serial port (the device model's pty, which xenconsoled logs): COM1.
SERIAL=$GUEST_LOG
t0=$(now)
# hvmloader and SeaBIOS take ~15 minutes under nested TCG: say how it goes once a minute.
hvm_logs() {
    echo "xl|logs: $(ls /var/log/xen 2>&1 | tr '\n' ' ')"
    for f in /var/log/xen/qemu-dm-*.log* /var/log/xen/xl-*.log*; do
        [ -f "$f" ] && tail -n 40 "$f" | sed "s|^|xl|$(basename "$f"): |"
    done
}
for i in $(seq 2400); do
    grep -q 'Sirocco .* booting' "$SERIAL" 2>/dev/null && break
    # xl create -F returns when the domain is gone (or never started): no point waiting on.
    kill -0 "$XL_PID" 2>/dev/null || { log "hvm: xl create ended after $(since "$t0") s"; show_guest; hvm_logs; break; }
    [ $((i % 60)) = 0 ] && log "hvm: ${i} s, no Sirocco line yet; serial: $(tail -c 80 "$SERIAL" 2>/dev/null | tr -cd '[:print:]' | tail -c 60); $(xl list httpd-hvm 2>/dev/null | awk 'NR == 2 { print "cpu " $6 " s" }')"
    sleep 1
done
log "hvm: first Sirocco line on the serial port after $(since "$t0") s"
sed 's/^/serial|/' "$SERIAL" 2>/dev/null | tail -n 40
check hvm-serial-greeting "Sirocco's first line on the serial port (COM1)" grep -q 'Sirocco .* booting as HVM on Xen 4\.17' "$SERIAL"
check hvm-mode "the console names the mode HVM" grep -q 'booting as HVM' "$SERIAL"
check hvm-unplug "emulated disks and NICs unplugged before the PV drivers connect" \
    grep -q 'unplugged the emulated disks and NICs' "$SERIAL"
if grep -q 'Sirocco .* booting' "$SERIAL" 2>/dev/null && wait_http 10.0.0.2 80 300; then
    code=$(curl -s -o /dev/null -w '%{http_code}' http://10.0.0.2/)
    check hvm-http "GET / from dom0 answered $code (netfront over the PV vif)" [ "$code" = 200 ]
    curl -s http://10.0.0.2/stats >/tmp/hvm-stats.json
    check hvm-stats "GET /stats: $(head -c 200 /tmp/hvm-stats.json)" grep -q '"vifs"' /tmp/hvm-stats.json
else
    fail hvm-http "no greeting, or no HTTP answer from 10.0.0.2 within 300 s of it"; fail hvm-stats "no HTTP"
    show_guest; hvm_logs; sed 's/^/serial|/' "$SERIAL" | tail -n 60
fi
# Saved and restored (issue 16): the device model's state is saved by the toolstack; the guest suspends as a PVH
# guest does, then unplugs the new device model's emulated devices again and reconnects netfront. `xl create -F`
# above follows the first domain only: it ends at the save.
if wait_http 10.0.0.2 80 5; then
    t0=$(now)
    timeout 900 xl save httpd-hvm /tmp/hvm.sav >/tmp/hvm-save.out 2>&1; src=$?
    saved=$(since "$t0" 1)
    timeout 900 xl restore /tmp/hvm.sav >/tmp/hvm-restore.out 2>&1; rrc=$?
    resumed=$(cat /var/log/xen/console/guest-httpd-hvm*.log 2>/dev/null | grep -o 'resumed in a new domain.*' | tail -n1)
    check hvm-save-restore "xl save (exit $src, ${saved} s, $(stat -c %s /tmp/hvm.sav 2>/dev/null) bytes) + xl restore (exit $rrc) after $(since "$t0" 1) s; ${resumed:-no resume on the console}" \
        sh -c "[ $src = 0 ] && [ $rrc = 0 ] && [ -n '$resumed' ]"
    [ $src = 0 ] && [ $rrc = 0 ] || { sed 's/^/lab: save: /' /tmp/hvm-save.out | grep -v progress | tail -n 10; sed 's/^/lab: restore: /' /tmp/hvm-restore.out | grep -v progress | tail -n 10; }
    code=none; wait_http 10.0.0.2 80 300 && code=$(curl -s -o /dev/null -w '%{http_code}' http://10.0.0.2/)
    check hvm-http-after-restore "GET / after the restore answered $code" [ "$code" = 200 ]
else
    fail hvm-save-restore "no HTTP before the save"; fail hvm-http-after-restore "no HTTP before the save"
fi
timeout 120 xl shutdown -w httpd-hvm >/tmp/hvm-shutdown.out 2>&1; rc=$?
sed 's/^/lab: xl shutdown: /' /tmp/hvm-shutdown.out
for _ in $(seq 120); do xl domid httpd-hvm >/dev/null 2>&1 || break; sleep 0.5; done
wait $XL_PID
# `xl shutdown -w` reports how the domain ended ("... shut down, reason code N": 0 is poweroff, 3 a crash).
gone=yes; xl domid httpd-hvm >/dev/null 2>&1 && gone=no
check hvm-shutdown "xl shutdown -w of the restored HVM guest: exit $rc, domain gone: $gone; $(tr '\n' ' ' </tmp/hvm-shutdown.out)" \
    sh -c "[ $rc = 0 ] && [ $gone = yes ] && ! grep -q 'reason code [1-9]' /tmp/hvm-shutdown.out"
xl destroy httpd-hvm >/dev/null 2>&1
