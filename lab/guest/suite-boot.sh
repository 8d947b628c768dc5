# The boot suite (issue 2): each image under real Xen, its console and how it ended as dom0 sees it.
cd /job
expect hello-greeting hello-cmdline hello-debug-log hello-poweroff memtest-32 memtest-32-poweroff \
    memtest-256 memtest-256-poweroff memtest-detects-corruption crash-message crash-location crash-reason \
    hello-8m hello-8m-poweroff

boot_guest hello 120 xl-configs/hello.cfg 'extra="log=debug greet=lab"'
check hello-greeting "greeting with Xen version and memory sizes" \
    console_has "Hello from Sirocco! Xen 4\.17"
check hello-cmdline "guest command line reaches the app" console_has "Hello, lab!"
check hello-debug-log "log=debug on the command line enables debug records" console_has "DEBUG sirocco"
check hello-poweroff "ended with poweroff (got $GUEST_REASON)" ended poweroff

for mem in 32 256; do
    boot_guest memtest-$mem 600 xl-configs/memtest.cfg "memory=$mem"
    check memtest-$mem "memtest at memory=$mem: >= 85% allocated and verified" console_has "memtest: PASS"
    check memtest-$mem-poweroff "ended with poweroff (got $GUEST_REASON)" ended poweroff
    sed -n 's/.*\(memtest: PASS.*\)/\1/p' "$GUEST_LOG" | head -n1 | sed "s/^/lab: memory=$mem: /"
done

boot_guest memtest-corrupt 300 xl-configs/memtest.cfg "memory=32" 'extra="corrupt"'
check memtest-detects-corruption "a flipped bit is reported and crashes the domain ($GUEST_REASON)" \
    sh -c "grep -q 'memtest: FAIL round 1: 1 words wrong' '$GUEST_LOG' && [ '$GUEST_REASON' = crash ]"

boot_guest crash 120 xl-configs/crash.cfg
check crash-message "panic message on the console" \
    console_has "PANIC: deliberate crash from the crash app (code 42)"
check crash-location "panic location on the console" console_has "at apps/crash/src/main.rs:"
check crash-reason "xl saw a crash (got $GUEST_REASON)" ended crash

# CPU exceptions (PVH/HVM have an IDT; PV's trap table is issue 13): each reported, then the domain crashes.
if ! pv_only; then
    expect fault-null fault-ud fault-stack
    boot_guest crash-null 120 xl-configs/crash.cfg 'extra="fault=null"'
    check fault-null "a read of address 0 is reported as a page fault and crashes the domain ($GUEST_REASON)" \
        sh -c "grep -q 'CPU exception 14 (page fault).*read of 0x0: page not present' '$GUEST_LOG' && [ '$GUEST_REASON' = crash ]"
    boot_guest crash-ud 120 xl-configs/crash.cfg 'extra="fault=ud"'
    check fault-ud "ud2 is reported as an invalid opcode and crashes the domain ($GUEST_REASON)" \
        sh -c "grep -q 'CPU exception 6 (invalid opcode)' '$GUEST_LOG' && [ '$GUEST_REASON' = crash ]"
    boot_guest crash-stack 120 xl-configs/crash.cfg 'extra="fault=stack"'
    check fault-stack "unbounded recursion is reported as a stack overflow and crashes the domain ($GUEST_REASON)" \
        sh -c "grep -q 'STACK OVERFLOW' '$GUEST_LOG' && [ '$GUEST_REASON' = crash ]"
fi

boot_guest hello-8m 120 xl-configs/hello.cfg "memory=8"
check hello-8m "memory=8 still greets" console_has "Hello from Sirocco!.*domain memory 8\.0 MiB"
check hello-8m-poweroff "ended with poweroff (got $GUEST_REASON)" ended poweroff
