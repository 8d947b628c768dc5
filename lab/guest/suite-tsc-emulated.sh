# Reproduces the lab's one known PVH fault (not part of `make test`; `make lab-tsc-repro`): a PVH httpd whose
# every rdtsc Xen emulates (tsc_mode="always_emulate") under rounds of network load, preserved if it dies so its
# CPU state can be read. Under QEMU TCG's nested SVM it was seen to triple-fault within 3-10 rounds, with RIP just
# past an `rdtsc` and a #PF (error code 0, CR2 0) being delivered (lib.sh, LAB_HVM_XL). The check passes only if the
# guest serves every round, so it fails while the fault remains and passes once a QEMU or Xen upgrade fixes it.
cd /job
. /job/lab/net-lib.sh
rounds=${LAB_TSC_ROUNDS:-20}
expect tsc-emulated-survives
start_bg httpd xl-configs/httpd.cfg 'extra="log=info ip=10.0.0.2/24 gw=10.0.0.1"' 'tsc_mode="always_emulate"' \
    'on_reboot="preserve"' 'on_crash="preserve"'
dead=""
if wait_http 10.0.0.2 80 60; then
    for r in $(seq "$rounds"); do
        timeout 60 ./lab/httpload fresh 10.0.0.2 80 1000 4 >/dev/null
        (GUEST_XL=/dev/null upload_flood_check tsc-flood 10.0.0.2 24 /upload/ / >/dev/null)
        timeout 60 ./lab/httpload ka 10.0.0.2 80 3000 8 >/dev/null
        curl -s -o /dev/null --max-time 10 http://10.0.0.2/ || { dead=$r; break; }
        log "tsc-emulated: round $r of $rounds served"
    done
else
    dead=0
fi
if [ -n "$dead" ]; then
    fail tsc-emulated-survives "the guest stopped serving in round $dead of $rounds"
    show_guest
    id=$(xl domid "$GUEST_NAME" 2>/dev/null) &&
        xen-hvmctx "$id" 2>&1 | sed -n '/CPU:/,/event/p' | sed 's/^/xen|hvmctx: /'
else
    pass tsc-emulated-survives "$rounds rounds of 1,000 fresh connections, 24 uploads of 1 MiB and 3,000 keep-alive requests served with every rdtsc emulated"
fi
xl destroy "$GUEST_NAME" 2>/dev/null
wait $XL_PID 2>/dev/null
