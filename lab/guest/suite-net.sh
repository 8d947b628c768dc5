# The network suite (issue 4): netfront + smoltcp against Linux's netback, checked from dom0.
cd /job
# Set up once per lab boot (the PVH pass runs this suite again).
ip -6 addr add fd00::1/64 dev xenbr0 2>/dev/null
ip link show xenbr1 >/dev/null 2>&1 ||
    { ip link add xenbr1 type bridge && ip addr add 10.0.1.1/24 dev xenbr1 && ip link set xenbr1 up; }
# DHCPv4 for guests without ip=, and router advertisements for SLAAC (prefix fd00::/64).
[ -f /tmp/dnsmasq.pid ] || dnsmasq --interface=xenbr0 --bind-interfaces --except-interface=lo --port=0 \
    --dhcp-range=10.0.0.100,10.0.0.150,255.255.255.0,1h --dhcp-range=fd00::,ra-only --enable-ra \
    --dhcp-leasefile=/tmp/dnsmasq.leases --pid-file=/tmp/dnsmasq.pid --log-dhcp --log-facility=/tmp/dnsmasq.log

. /job/lab/net-lib.sh
expect net-ping4 net-ping6 vif-one-evtchn http-index http-stats http-ipv6 http-keepalive http-concurrent http-malformed \
    http-after-malformed http-soak-keepalive http-soak-fresh http-soak-heap http-upload-flood \
    http-upload-flood-after linux-peer-fetch \
    echo-16mib echo-tso echo-lro echo-split-evtchn echo-ipv6 echo-ipv6-offload echo-udp netback-rebind-happened echo-16mib-across-netback-rebind netfront-reconnect \
    echo-64mib-across-detach-attach libvirt-create libvirt-http libvirt-shutdown dhcp-lease dhcp-reachable slaac two-vifs-first two-vifs-second

# --- httpd with a static address: ping, curl, keep-alive, concurrency, malformed requests, upload flood ---------
start_bg httpd xl-configs/httpd.cfg 'extra="log=info ip=10.0.0.2/24 gw=10.0.0.1 ip6=fd00::2/64"'
if wait_http 10.0.0.2 80 60; then
    check net-ping4 "ping 10.0.0.2 from dom0" ping -c 3 -W 5 10.0.0.2
    check net-ping6 "ping fd00::2 from dom0" ping -6 -c 3 -W 5 fd00::2
    hvif=/local/domain/$(xl domid httpd)/device/vif/0
    check vif-one-evtchn "by default one event channel for both rings ($(xenstore-read $hvif/event-channel 2>&1))" \
        sh -c "xenstore-read $hvif/event-channel >/dev/null && ! xenstore-read $hvif/event-channel-tx 2>/dev/null"
    code=$(curl -s -o /tmp/index.html -w '%{http_code}' http://10.0.0.2/)
    check http-index "GET / answered $code" [ "$code" = 200 ]
    curl -s http://10.0.0.2/stats >/tmp/stats.json
    check http-stats "GET /stats is JSON with uptime and vif counters: $(head -c 200 /tmp/stats.json)" \
        sh -c "grep -q '\"uptime_ms\"' /tmp/stats.json && grep -q '\"vifs\"' /tmp/stats.json"
    check http-ipv6 "GET / over IPv6" sh -c "curl -s -g -o /dev/null -w '%{http_code}' 'http://[fd00::2]/' | grep -q 200"
    keepalive_check 10.0.0.2 1000
    concurrent_check 10.0.0.2 50
    bad=$(printf 'BLAH\r\n\r\n' | nc -w 5 10.0.0.2 80 | head -n1 | tr -d '\r')
    check http-malformed "malformed request answered: $bad" sh -c "echo '$bad' | grep -q '400'"
    code=$(curl -s -o /dev/null -w '%{http_code}' http://10.0.0.2/)
    check http-after-malformed "still serving after a malformed request ($code)" [ "$code" = 200 ]
    # The soak issue 10 asks for, in every run (about a minute): 100,000 keep-alive requests and 10,000 fresh
    # connections, every one answered 200, and the heap back where it was. `make soak` runs ten times that.
    if pv_only; then http_soak http-soak 10.0.0.2 100000 10000; else http_soak http-soak 10.0.0.2 10000 1000; fi
    # 24 concurrent 1 MiB uploads (15 crashed the 32 MiB guest before issue 10): httpd streams bodies past.
    upload_flood_check http-upload-flood 10.0.0.2 24 /upload/ /
    linux_peer_fetch 10.0.0.2
else
    fail http-up "httpd did not answer on 10.0.0.2:80 within 60 s"; show_guest
fi
stop_net_guest

# --- libvirt: httpd as a libvirt domain (the XML `sirocco libvirt` made from httpd.cfg), libxl driver -----------
# virsh create, reachable over the bridge, and `virsh shutdown` ends it (through control/shutdown, as xl does).
xml=/tmp/httpd-libvirt.xml
if pv_only; then cp build/httpd.xml $xml; else
    sed "s|<type arch='x86_64' machine='xenpv'>linux</type>|<type arch='x86_64' machine='xenpvh'>xenpvh</type>|" build/httpd.xml >$xml
fi
if libvirt_up && virsh -c xen:///system create $xml >/tmp/virsh.out 2>&1; then
    GUEST_NAME=httpd; GUEST_LOG=/var/log/xen/console/guest-httpd.log
    check libvirt-create "virsh create of the generated domain ($(grep -o "machine='[a-z]*'" $xml)): $(xl list httpd | awk 'NR == 2 { print "domain " $2 ", " $3 " MiB" }')" xl list httpd
    check libvirt-http "the libvirt-started httpd answers on the bridge" wait_http 10.0.0.2 80 60
    virsh -c xen:///system shutdown httpd >>/tmp/virsh.out 2>&1
    gone=no; for _ in $(seq 60); do xl list httpd >/dev/null 2>&1 || { gone=yes; break; }; sleep 0.5; done
    check libvirt-shutdown "virsh shutdown stopped the domain within 30 s (gone: $gone)" [ $gone = yes ]
    [ $gone = yes ] || virsh -c xen:///system destroy httpd >/dev/null 2>&1
else
    fail libvirt-create "virsh create failed: $(tail -n 3 /tmp/virsh.out 2>/dev/null) $(tail -n 3 /tmp/libvirtd.log)"
fi

# --- echo: 16 MiB each way with identical SHA-256, UDP echo ----------------------------------------------------
start_bg echo xl-configs/echo.cfg 'extra="log=info ip=10.0.0.3/24 gw=10.0.0.1 ip6=fd00::3/64 split-evtchn=on"'
if wait_tcp 10.0.0.3 7 60; then
    head -c 16777216 /dev/urandom >/tmp/rand
    t0=$(now)
    timeout 300 nc -N 10.0.0.3 7 </tmp/rand >/tmp/rand.back
    took=$(since "$t0")
    sent=$(sha256sum </tmp/rand | cut -c1-16); back=$(sha256sum </tmp/rand.back | cut -c1-16)
    check echo-16mib "16 MiB through TCP echo and back in ${took} s: sha256 $sent vs $back ($(stat -c %s /tmp/rand.back) bytes)" [ "$sent" = "$back" ]
    # Linux's netback offers feature-gso-tcpv4: the guest's big sends went out as TSO segments, cut up by netback.
    gso=$(nc -w 5 10.0.0.3 11 | sed -n 's/.*tx [0-9]* pkts (\([0-9]*\) gso).*/\1/p')
    check echo-tso "the 16 MiB echo left the guest as TSO segments netback cut up (${gso:-?} GSO packets)" \
        [ "${gso:-0}" -gt 0 ]
    # And dom0's big sends came in whole (large receive: the guest wrote feature-gso-tcpv4, so netback gave the vif
    # TSO and hands the guest up to 64 KiB per packet, with a GSO extra info slot).
    lro=$(nc -w 5 10.0.0.3 11 | sed -n 's/.*rx [0-9]* pkts (\([0-9]*\) gso).*/\1/p')
    check echo-lro "dom0's side of the 16 MiB echo arrived as large segments (${lro:-?} GSO packets received)" \
        [ "${lro:-0}" -gt 0 ]
    # Split event channels (netback offers them; this echo asks with split-evtchn=on, and its reconnect checks below
    # run with them): the guest wrote one port per ring, and netback's TX and RX
    # interrupts for this vif (named -q0-tx and -q0-rx in dom0's /proc/interrupts) both fired during the echo.
    edom=$(xl domid echo)
    etx=$(xenstore-read "/local/domain/$edom/device/vif/0/event-channel-tx" 2>/dev/null)
    erx=$(xenstore-read "/local/domain/$edom/device/vif/0/event-channel-rx" 2>/dev/null)
    irqs=$(awk -v v="vif$edom.0-q0-" '$NF ~ "^"v"(tx|rx)$" { n = 0; for (i = 2; i < NF; i++) if ($i ~ /^[0-9]+$/) n += $i; printf "%s=%d ", $NF, n }' /proc/interrupts)
    check echo-split-evtchn "one event channel per ring: ports tx ${etx:-none} rx ${erx:-none}; dom0 interrupts: ${irqs:-none}" \
        sh -c "[ -n '$etx' ] && [ -n '$erx' ] && [ '$etx' != '$erx' ] && echo '$irqs' | grep -q 'q0-tx=[1-9]' && echo '$irqs' | grep -q 'q0-rx=[1-9]'"
    # The same over IPv6: the guest wrote feature-gso-tcpv6 (and netback offers it), so both directions' big
    # segments grow the GSO counts again.
    gso6=$(nc -w 5 10.0.0.3 11 | sed -n 's/.*tx [0-9]* pkts (\([0-9]*\) gso).*rx [0-9]* pkts (\([0-9]*\) gso).*/\1 \2/p')
    head -c 8388608 /dev/urandom >/tmp/rand6
    timeout 300 nc -N fd00::3 7 </tmp/rand6 >/tmp/rand6.back
    sent6=$(sha256sum </tmp/rand6 | cut -c1-16); back6=$(sha256sum </tmp/rand6.back | cut -c1-16)
    check echo-ipv6 "8 MiB through TCP echo over IPv6: sha256 $sent6 vs $back6 ($(stat -c %s /tmp/rand6.back) bytes)" \
        [ "$sent6" = "$back6" ]
    after6=$(nc -w 5 10.0.0.3 11 | sed -n 's/.*tx [0-9]* pkts (\([0-9]*\) gso).*rx [0-9]* pkts (\([0-9]*\) gso).*/\1 \2/p')
    check echo-ipv6-offload "IPv6 segments offloaded both ways (GSO tx/rx before: ${gso6:-?}, after: ${after6:-?})" \
        sh -c "set -- ${gso6:-0 0} ${after6:-0 0}; [ \$3 -gt \$1 ] && [ \$4 -gt \$2 ]"
    reply=$(echo "udp-hello" | nc -u -w 2 10.0.0.3 7)
    check echo-udp "UDP echo answered '$reply'" [ "$reply" = udp-hello ]
    # The backend vanishes mid-transfer and comes back: netback is unbound from the vif and bound again (as a
    # restarted driver domain would be), the new vif interface put back on the bridge (the toolstack's job).
    # Linux 6.1's netback re-attaches to the rings the guest still has Connected (it never reports Closed), so the
    # guest sees a gap, not a close: TCP must carry the transfer across it.
    domid=$(xl domid echo); bvif="vif-$domid-0"
    idx0=$(cat "/sys/class/net/vif$domid.0/ifindex" 2>/dev/null)
    t0=$(now)
    timeout 300 nc -N 10.0.0.3 7 </tmp/rand >/tmp/rand.back2 &
    nc_pid=$!
    sleep 1
    echo "$bvif" >/sys/bus/xen-backend/drivers/vif/unbind
    sleep 1
    gone=yes; [ -e "/sys/class/net/vif$domid.0" ] && gone=no
    echo "$bvif" >/sys/bus/xen-backend/drivers/vif/bind
    for _ in $(seq 50); do ip link show "vif$domid.0" >/dev/null 2>&1 && break; sleep 0.2; done
    idx1=$(cat "/sys/class/net/vif$domid.0/ifindex" 2>/dev/null)
    # Proof that netback really let go and came back: its interface vanished while unbound, and the one after the
    # bind is a new device (a new ifindex), not the old one left in place.
    check netback-rebind-happened "vif$domid.0 gone while unbound: $gone; ifindex before $idx0, after $idx1" \
        sh -c "[ '$gone' = yes ] && [ -n '$idx0' ] && [ -n '$idx1' ] && [ '$idx0' != '$idx1' ]"
    ip link set "vif$domid.0" master xenbr0 up
    wait $nc_pid # only the transfer: a bare `wait` would also wait for the guest's `xl create -F`
    took=$(since "$t0")
    back=$(sha256sum </tmp/rand.back2 | cut -c1-16)
    log "after the rebind: backend state $(xenstore-read "/local/domain/0/backend/vif/$domid/0/state"), guest: $(grep -cE 'vif0: (backend|reconnect)' "$GUEST_LOG") reconnect line(s)"
    check echo-16mib-across-netback-rebind "16 MiB echoed across netback unbound and rebound mid-transfer in ${took} s: sha256 $sent vs $back ($(stat -c %s /tmp/rand.back2) bytes)" [ "$sent" = "$back" ]
    # The network pulled mid-transfer and given back: `xl network-detach` (the backend closes and its directory
    # goes), then `xl network-attach` with the same MAC and device id (a new backend at InitWait). The guest
    # closes its end in step, resets netfront, and reconnects; TCP carries the 64 MiB transfer across the gap.
    head -c 67108864 /dev/urandom >/tmp/rand64; sent64=$(sha256sum </tmp/rand64 | cut -c1-16)
    mac=$(xenstore-read "/local/domain/$domid/device/vif/0/mac")
    t0=$(now)
    timeout 300 nc -N 10.0.0.3 7 </tmp/rand64 >/tmp/rand64.back &
    nc_pid=$!
    sleep 0.3
    timeout 60 xl network-detach echo 0; det=$?
    timeout 60 xl network-attach echo bridge=xenbr0 "mac=$mac" devid=0; att=$?
    wait $nc_pid # only the transfer
    took=$(since "$t0")
    back64=$(sha256sum </tmp/rand64.back | cut -c1-16)
    grep -E 'vif0: (backend|disconnect|reconnect)' "$GUEST_LOG" | tail -n 4 | sed 's/^/lab: /'
    check netfront-reconnect "xl network-detach (rc $det) then network-attach (rc $att) mid-transfer: the guest disconnected and reconnected" \
        sh -c "grep -q 'vif0: disconnected' '$GUEST_LOG' && grep -q 'vif0: reconnected' '$GUEST_LOG'"
    check echo-64mib-across-detach-attach "64 MiB echoed across the detach and attach in ${took} s: sha256 $sent64 vs $back64 ($(stat -c %s /tmp/rand64.back) bytes)" [ "$sent64" = "$back64" ]
else
    fail echo-up "echo did not listen on 10.0.0.3:7 within 60 s"; show_guest
fi
stop_net_guest

# --- DHCP: no ip= on the command line --------------------------------------------------------------------------
start_bg httpd-dhcp xl-configs/httpd.cfg 'extra="log=info"'
lease=""
for _ in $(seq 600); do lease=$(sed -n 's/.*DHCP lease \([0-9.]*\).*/\1/p' "$GUEST_LOG" | head -n1); [ -n "$lease" ] && break; sleep 0.1; done
check dhcp-lease "lease from dnsmasq in dom0: ${lease:-none}" [ -n "$lease" ]
[ -n "$lease" ] && check dhcp-reachable "httpd reachable at its leased address" wait_http "$lease" 80 30
# SLAAC from dnsmasq's router advertisements: always checked (an address that never came is a failure).
slaac=""
for _ in $(seq 300); do
    slaac=$(grep -o 'SLAAC address.*' "$GUEST_LOG" | grep -o 'fd00:[0-9a-f:]*' | head -n1)
    [ -n "$slaac" ] && break; sleep 0.1
done
check slaac "SLAAC address ${slaac:-none} answers ping" sh -c "[ -n '$slaac' ] && ping -6 -c 2 -W 5 '$slaac'"
stop_net_guest

# --- two vifs on two bridges ---------------------------------------------------------------------------------
start_bg httpd-2vif xl-configs/httpd.cfg "vif=['bridge=xenbr0','bridge=xenbr1']" \
    'extra="log=info ip=10.0.0.4/24 ip1=10.0.1.4/24"'
if wait_http 10.0.0.4 80 60; then
    check two-vifs-first "reachable on vif 0 (xenbr0)" ping -c 2 -W 5 10.0.0.4
    check two-vifs-second "reachable on vif 1 (xenbr1)" ping -c 2 -W 5 10.0.1.4
else
    fail two-vifs "httpd with two vifs did not come up"; show_guest
fi
stop_net_guest
