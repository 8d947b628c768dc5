# Boot benchmark (issues 2, 11): xl create -> greeting line and -> domain gone, for Sirocco's hello booted as PV
# and as PVH (the same image), and for a Linux PV guest (dom0's Debian kernel + a busybox initrd whose init prints a line and powers off), alternating, same run.
cd /job
RUNS=${BENCH_RUNS:-5}

# The Linux peer: same kernel as dom0, initrd = static busybox + an init that greets and powers off.
mkdir -p /tmp/peer/bin /tmp/peer/proc /tmp/peer/dev
cp "$(command -v busybox)" /tmp/peer/bin/busybox
cat >/tmp/peer/init <<'INIT'
#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox echo "linux-peer: hello from Linux $(/bin/busybox uname -r)"
/bin/busybox poweroff -f
INIT
chmod +x /tmp/peer/init
(cd /tmp/peer && find . | busybox cpio -o -H newc 2>/dev/null | gzip -1) >/tmp/peer.img
kernel=$(ls /boot/vmlinuz-* | sort -V | tail -n1)
cat >/tmp/linux-peer.cfg <<CFG
name = "linux-peer"
type = "pv"
kernel = "$kernel"
ramdisk = "/tmp/peer.img"
memory = 128
vcpus = 1
on_poweroff = "destroy"
on_crash = "destroy"
extra = "console=hvc0 quiet"
CFG
echo "SIROCCO-BENCH kind=size guest=sirocco-hello bytes=$(stat -c %s build/hello.xen) memory_mib=32"
echo "SIROCCO-BENCH kind=size guest=linux-peer bytes=$(( $(stat -c %s "$kernel") + $(stat -c %s /tmp/peer.img) )) memory_mib=128"

# timed_boot LABEL NAME CFG GREETING-REGEX [overrides]: one run; prints a SIROCCO-BENCH line.
timed_boot() {
    label=$1; name=$2; cfg=$3; greet=$4; shift 4
    rm -f /tmp/greet-at "/var/log/xen/console/guest-$name.log"
    ( while ! grep -q "$greet" "/var/log/xen/console/guest-$name.log" 2>/dev/null; do sleep 0.02; done; now >/tmp/greet-at ) &
    watcher=$!
    boot_guest "$name" 300 "$cfg" "$@"
    sleep 0.3
    kill $watcher 2>/dev/null; wait $watcher 2>/dev/null
    if [ -s /tmp/greet-at ] && [ "$GUEST_REASON" = poweroff ]; then
        echo "SIROCCO-BENCH kind=boot guest=$label t0=$GUEST_T0 greet=$(cat /tmp/greet-at) exit=$GUEST_T_EXIT"
    else
        fail "bench-$label" "no greeting or no clean poweroff ($GUEST_REASON)"; show_guest
    fi
}

for i in $(seq "$RUNS"); do
    log "bench run $i of $RUNS"
    timed_boot sirocco-hello hello xl-configs/hello.cfg "Hello from Sirocco"
    timed_boot sirocco-hello-pvh hello xl-configs/hello.cfg "Hello from Sirocco" 'type="pvh"' $LAB_HVM_XL
    timed_boot linux-peer linux-peer /tmp/linux-peer.cfg "linux-peer: hello"
done
pass bench-complete "$RUNS runs of each guest"
