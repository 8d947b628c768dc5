# `make run`: the app reachable from the host. QEMU's user-mode NIC (10.0.2.0/24, host port forward to
# 10.0.2.15) is bridged into xenbr0, the guest takes 10.0.2.15, and the lab stays up until the host stops it.
cd /job
modprobe virtio_net 2>/dev/null
nic=""; for _ in $(seq 50); do
    for d in /sys/class/net/*; do [ -e "$d/device" ] && nic=$(basename "$d"); done
    [ -n "$nic" ] && break; sleep 0.1
done
[ -n "$nic" ] || { fail serve-nic "no NIC in dom0 to bridge"; return 1; }
ip link set "$nic" up && ip link set "$nic" master xenbr0 && ip addr add 10.0.2.16/24 dev xenbr0
log "bridged $nic into xenbr0 (10.0.2.0/24, QEMU user networking)"
GUEST_NAME=$LAB_APP; GUEST_LOG=/var/log/xen/console/guest-$LAB_APP.log; GUEST_XL=/tmp/xl-$LAB_APP.out
xl create -F "xl-configs/$LAB_APP.cfg" "name=\"$LAB_APP\"" "extra=\"log=info ip=10.0.2.15/24 gw=10.0.2.2 ${LAB_EXTRA:-}\"" >"$GUEST_XL" 2>&1 &
for _ in $(seq 600); do
    if curl -s -o /dev/null --max-time 2 "http://10.0.2.15:${LAB_PORT:-80}/"; then
        echo "SIROCCO-SERVE-READY"
        break
    fi
    sleep 0.5
done
# Show the guest's console as it grows, until the host powers the lab off.
tail -n +1 -F "$GUEST_LOG" 2>/dev/null | sed -u 's/^/console|/'
