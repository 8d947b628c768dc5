# HTTPS benchmark (issue 17): Sirocco's httpd (tls=on, the P-256 certificate it makes at boot) as PV and PVH,
# against a Linux PV guest running lighttpd with mod_openssl (a P-256 certificate from dom0's openssl), in the
# same lab run, all from dom0's wrk (OpenSSL):
# - handshakes/s: wrk with `Connection: close`, so every request is a new TCP connection and a full handshake
#   (Sirocco keeps no session state; lighttpd is told to issue no tickets);
# - guest CPU per handshake: the CPU time xl charged to the guest over that run, divided by its handshakes;
# - HTTPS requests/s on kept-alive connections;
# - what each negotiated with wrk (openssl s_client: protocol and cipher).
cd /job
. /job/lab/net-lib.sh
TLS_S=${BENCH_TLS_S:-10}

# linux_tls_peer: /tmp/tnb.cfg, lighttpd on 80 and 443 (TLS) at 10.0.0.21.
linux_tls_peer() {
    [ -f /tmp/tnb.cfg ] && return 0
    d=/tmp/tnb
    mkdir -p $d/www $d/tmp $d/etc
    # The page Sirocco's httpd served in its run (tls_bench kept it), so both answer the same job.
    cp /tmp/tb-index.html $d/www/index.html 2>/dev/null || head -c 300 /dev/zero | tr '\0' x >$d/www/index.html
    add_binary $d lighttpd
    mkdir -p $d/usr/lib && cp -r /usr/lib/lighttpd $d/usr/lib/
    # mod_openssl is loaded at run time: its libraries are not lighttpd's.
    for lib in $(ldd /usr/lib/lighttpd/mod_openssl.so | grep -oE '/[^ ]+'); do
        mkdir -p "$d$(dirname "$lib")"; cp -L "$lib" "$d$lib"
    done
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout $d/etc/key.pem -out $d/etc/cert.pem \
        -days 30 -subj /CN=10.0.0.21 -addext subjectAltName=IP:10.0.0.21 2>/dev/null
    cat >$d/etc/lighttpd.conf <<'CONF'
server.modules += ( "mod_openssl" )
server.document-root = "/www"
server.port = 80
server.errorlog = "/tmp/lighttpd.err"
index-file.names = ( "index.html" )
mimetype.assign = ( ".html" => "text/html; charset=utf-8" )
server.max-keep-alive-requests = 100000
server.max-keep-alive-idle = 30
$SERVER["socket"] == ":443" {
    ssl.engine = "enable"
    ssl.pemfile = "/etc/cert.pem"
    ssl.privkey = "/etc/key.pem"
    ssl.openssl.ssl-conf-cmd = ( "Options" => "-SessionTicket" )
}
CONF
    cat >$d/init.sh <<'INIT'
#!/bin/busybox sh
b=/bin/busybox
$b mount -t proc proc /proc; $b mount -t sysfs sys /sys; $b mount -t devtmpfs dev /dev
$b insmod /netfront.ko
for i in 1 2 3 4 5 6 7 8 9 10; do [ -e /sys/class/net/eth0 ] && break; $b sleep 0.5; done
$b ip link set lo up; $b ip link set eth0 up; $b ip addr add 10.0.0.21/24 dev eth0
/usr/sbin/lighttpd -f /etc/lighttpd.conf || { echo "linux-peer: lighttpd failed"; $b cat /tmp/lighttpd.err; }
echo "linux-peer: serving"
while true; do $b sleep 3600; done
INIT
    peer_initrd $d
    kernel=$(ls /boot/vmlinuz-* | sort -V | tail -n1)
    printf 'type = "pv"\nkernel = "%s"\nramdisk = "/tmp/tnb.img"\nmemory = 128\nvif = [ "bridge=xenbr0" ]\nextra = "console=hvc0 quiet"\non_poweroff = "destroy"\n' "$kernel" >/tmp/tnb.cfg
}

# tls_bench LABEL IP CFG [overrides]
tls_bench() {
    label=$1; ip=$2; cfg=$3; shift 3
    start_bg "tlsbench-$label" "$cfg" "$@"
    if ! wait_tcp "$ip" 443 300 || ! curl -sk -o /dev/null --max-time 30 "https://$ip/"; then
        fail "tlsbench-$label" "no HTTPS answer from $ip:443"; show_guest; stop_net_guest; return
    fi
    [ "$label" = sirocco ] && curl -s -o /tmp/tb-index.html "http://$ip/"
    timeout 30 openssl s_client -connect "$ip:443" </dev/null >/tmp/tb-s.out 2>&1
    # "New, TLSv1.3, Cipher is ...": printed for both versions (the SSL-Session block names the protocol only
    # once a TLS 1.3 session ticket came, and this server sends none).
    proto=$(sed -n 's/^New, \(TLSv1\.[0-9]\), Cipher is .*/\1/p' /tmp/tb-s.out | head -n1)
    cipher=$(sed -n 's/^New, TLSv1\.[0-9], Cipher is //p' /tmp/tb-s.out | head -n1)
    c0=$(cpu_s "$GUEST_NAME")
    wrk -t2 -c10 -d${TLS_S}s -H 'Connection: close' "https://$ip/" >/tmp/wrk-hs.out 2>&1
    c1=$(cpu_s "$GUEST_NAME")
    hs=$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' /tmp/wrk-hs.out)
    hs_rate=$(sed -n 's/^Requests\/sec: *//p' /tmp/wrk-hs.out)
    errs=$(sed -n 's/^ *Socket errors: *//p' /tmp/wrk-hs.out)
    cpu_ms=$(awk -v a="$c0" -v b="$c1" -v n="${hs:-0}" 'BEGIN { if (n > 0) printf "%.2f", (b - a) * 1000 / n; else print 0 }')
    wrk -t2 -c10 -d${TLS_S}s "https://$ip/" >/tmp/wrk-ka.out 2>&1
    rps=$(sed -n 's/^Requests\/sec: *//p' /tmp/wrk-ka.out)
    check "tlsbench-$label" "$label: ${hs:-0} handshakes (${hs_rate:-0}/s, ${cpu_ms} ms guest CPU each), ${rps:-0} keep-alive requests/s, $proto $cipher${errs:+; wrk socket errors: $errs}" \
        sh -c "[ '${hs:-0}' -gt 0 ] && [ -n '$proto' ]"
    echo "SIROCCO-BENCH kind=tls guest=$label seconds=$TLS_S handshakes=${hs:-0} handshakes_per_s=${hs_rate:-0} handshake_cpu_ms=$cpu_ms rps=${rps:-0} protocol=${proto:-none} cipher=${cipher:-none}"
    stop_net_guest
}

expect tlsbench-linux tlsbench-sirocco tlsbench-sirocco-pvh
tls_bench sirocco 10.0.0.2 xl-configs/httpd.cfg 'extra="log=warn ip=10.0.0.2/24 gw=10.0.0.1 tls=on"'
linux_tls_peer
tls_bench linux 10.0.0.21 /tmp/tnb.cfg
tls_bench sirocco-pvh 10.0.0.2 xl-configs/httpd.cfg 'type="pvh"' $LAB_HVM_XL 'extra="log=warn ip=10.0.0.2/24 gw=10.0.0.1 tls=on"'
