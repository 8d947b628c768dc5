# The TLS suite (issue 17): httpd serving HTTPS with a certificate it made at boot, checked from dom0 with
# OpenSSL's clients (curl, openssl s_client) and sslscan; clients that misbehave; the entropy refusal.
cd /job
. /job/lab/net-lib.sh

expect tls-cert-published tls13-curl tls12-curl tls13-s-client tls12-s-client tls-keepalive tls-garbage \
    tls-truncated-hello tls-vanished-mid-handshake tls-serving-after tls-failures-counted tls-sslscan-protocols \
    tls-sslscan-ciphers tls-http-beside
expect tls-xenstore-cert
pv_only || expect tls-entropy-refused tls-entropy-weak-accepted

ca=/tmp/sirocco-ca.pem
metric() { curl -s --max-time 10 "http://$1/metrics" | awk -v m="$2" '$1 == m { print $2 }'; }

start_bg httpd xl-configs/httpd.cfg 'extra="log=info ip=10.0.0.2/24 gw=10.0.0.1 tls=on tls-name=httpd.lab"'
if wait_tcp 10.0.0.2 443 90; then
    # The certificate the guest made, as it published it in xenstore; its fingerprint as the console printed it.
    # -R: the value raw (xenstore-read escapes newlines otherwise).
    xenstore-read -R "/local/domain/$(xl domid httpd)/data/tls-certificate" >$ca 2>/dev/null
    printed=$(sed -n 's/.*tls: self-signed certificate, SHA-256 fingerprint \([0-9A-F:]*\).*/\1/p' "$GUEST_LOG" | head -n1)
    computed=$(openssl x509 -in $ca -noout -fingerprint -sha256 2>/dev/null | sed 's/.*=//')
    check tls-cert-published "data/tls-certificate's SHA-256 ${computed:-none} is the console's ${printed:-none}" \
        sh -c "[ -n '$printed' ] && [ '$printed' = '$computed' ]"

    out=$(curl -s --cacert $ca --tlsv1.3 -o /tmp/tls-index.html -w '%{http_code} %{ssl_verify_result}' https://10.0.0.2/)
    check tls13-curl "curl --cacert --tlsv1.3 https://10.0.0.2/: code and verify result '$out'" \
        sh -c "[ '$out' = '200 0' ] && grep -q 'Hello from Sirocco' /tmp/tls-index.html"
    out=$(curl -s --cacert $ca --tlsv1.2 --tls-max 1.2 --resolve httpd.lab:443:10.0.0.2 -o /dev/null \
        -w '%{http_code} %{ssl_verify_result}' https://httpd.lab/stats)
    check tls12-curl "curl --cacert --tls-max 1.2 https://httpd.lab/stats (by its DNS name): '$out'" [ "$out" = "200 0" ]

    for v in 3 2; do
        timeout 30 openssl s_client -connect 10.0.0.2:443 -CAfile $ca -verify_return_error -tls1_$v </dev/null \
            >/tmp/s_client-$v.out 2>&1
        # "New, TLSv1.3, Cipher is ...": printed for both versions (the SSL-Session block names the protocol only
        # once a TLS 1.3 session ticket came, and this server sends none).
        proto=$(sed -n 's/^New, \(TLSv1\.[0-9]\), Cipher is .*/\1/p' /tmp/s_client-$v.out | head -n1)
        cipher=$(sed -n 's/^New, TLSv1\.[0-9], Cipher is //p' /tmp/s_client-$v.out | head -n1)
        check tls1$v-s-client "openssl s_client -tls1_$v: $proto, $cipher, $(grep -o 'Verify return code: .*' /tmp/s_client-$v.out | head -n1)" \
            sh -c "grep -q 'Verify return code: 0 (ok)' /tmp/s_client-$v.out && [ '$proto' = 'TLSv1.$v' ]"
    done

    # 1000 requests on one TLS connection (curl reuses it: num_connects counts the new ones).
    : >/tmp/tls-urls
    for i in $(seq 1000); do echo "url = \"https://10.0.0.2/?n=$i\"" >>/tmp/tls-urls; echo "output = /dev/null" >>/tmp/tls-urls; done
    t0=$(now)
    curl -s --cacert $ca -K /tmp/tls-urls -w '%{http_code} %{num_connects}\n' >/tmp/tls-ka.out
    took=$(since "$t0")
    ok=$(grep -c '^200 ' /tmp/tls-ka.out); conns=$(awk '{ s += $2 } END { print s }' /tmp/tls-ka.out)
    check tls-keepalive "$ok of 1000 sequential HTTPS requests answered 200 over $conns connection(s) in ${took} s" \
        sh -c "[ $ok -eq 1000 ] && [ $conns -eq 1 ]"

    # Clients that misbehave. A real ClientHello first: curl's, caught by nc on dom0's loopback.
    f0=$(metric 10.0.0.2 https_handshake_failures_total)
    nc -l 127.0.0.1 4433 >/tmp/hello.bin & ncpid=$!
    sleep 0.5; timeout 3 curl -sk https://127.0.0.1:4433/ >/dev/null 2>&1; kill $ncpid 2>/dev/null; wait $ncpid 2>/dev/null
    hello_len=$(stat -c %s /tmp/hello.bin)
    printf 'GET / HTTP/1.1\r\nHost: 10.0.0.2\r\n\r\n' | timeout 10 nc -q 2 10.0.0.2 443 >/tmp/tls-garbage.out 2>&1
    # A fatal alert record: type 21 (0x15).
    check tls-garbage "plain HTTP to port 443 answered with $(stat -c %s /tmp/tls-garbage.out) bytes starting $(head -c 1 /tmp/tls-garbage.out | od -An -tx1 | tr -d ' ') (a TLS alert is 15)" \
        sh -c "[ \"\$(head -c 1 /tmp/tls-garbage.out | od -An -tx1 | tr -d ' ')\" = 15 ]"
    head -c $((hello_len / 2)) /tmp/hello.bin | timeout 10 nc -q 1 10.0.0.2 443 >/dev/null 2>&1
    code=$(curl -s --cacert $ca -o /dev/null -w '%{http_code}' https://10.0.0.2/)
    check tls-truncated-hello "half of a ${hello_len}-byte ClientHello, then FIN; HTTPS after: $code" [ "$code" = 200 ]
    # The whole hello, then gone before the server's flight (nc -q 0: closes as its input ends).
    timeout 10 nc -q 0 10.0.0.2 443 </tmp/hello.bin >/dev/null 2>&1
    code=$(curl -s --cacert $ca -o /dev/null -w '%{http_code}' https://10.0.0.2/)
    check tls-vanished-mid-handshake "a client gone after its ClientHello; HTTPS after: $code" [ "$code" = 200 ]
    sleep 1
    f1=$(metric 10.0.0.2 https_handshake_failures_total)
    out=$(curl -s --cacert $ca -o /dev/null -w '%{http_code}' https://10.0.0.2/?after)
    check tls-serving-after "HTTPS after the three bad clients: $out; guest $(xl list httpd >/dev/null 2>&1 && echo running || echo gone)" \
        sh -c "[ '$out' = 200 ] && xl list httpd >/dev/null 2>&1"
    check tls-failures-counted "https_handshake_failures_total went from ${f0:-?} to ${f1:-?} (want +3)" \
        sh -c "[ -n '$f0' ] && [ -n '$f1' ] && [ $((${f1:-0} - ${f0:-0})) -eq 3 ]"

    # What the server offers, as sslscan sees it: TLS 1.2 and 1.3 only, AEAD suites with ECDHE only.
    timeout 300 sslscan --no-colour --no-heartbleed 10.0.0.2:443 >/tmp/sslscan.out 2>&1
    protos=$(awk '/^(SSLv[23]|TLSv1\.[0-3]) +(enabled|disabled)/ { printf "%s%s %s", sep, $1, $2; sep = ", " }' /tmp/sslscan.out)
    check tls-sslscan-protocols "sslscan: $protos" \
        sh -c "echo '$protos' | grep -q 'TLSv1.3 enabled' && echo '$protos' | grep -q 'TLSv1.2 enabled' && ! echo '$protos' | grep -qE '(SSLv[23]|TLSv1\.[01]) enabled'"
    accepted=$(grep -E '^(Preferred|Accepted)' /tmp/sslscan.out)
    n=$(echo "$accepted" | grep -c .)
    weak=$(echo "$accepted" | grep -vE 'TLSv1\.[23] .*(TLS_AES_|TLS_CHACHA20_|ECDHE-(ECDSA|RSA)-(AES[0-9]*-GCM|CHACHA20-POLY1305))' || true)
    check tls-sslscan-ciphers "$n suites accepted ($(echo "$accepted" | awk '{ print $2 "/" $5 }' | paste -sd ' ')), none weak${weak:+: $weak}" \
        sh -c "[ $n -ge 3 ] && [ -z '$weak' ]"

    code=$(curl -s -o /dev/null -w '%{http_code}' http://10.0.0.2/)
    check tls-http-beside "plain HTTP on port 80 beside HTTPS: $code" [ "$code" = 200 ]
else
    fail tls-cert-published "httpd with tls=on did not listen on 10.0.0.2:443 within 90 s"; show_guest
fi
stop_net_guest

# The user's own certificate and key (an RSA key, unlike the P-256 ones the guest makes), written into the
# domain's xenstore directory while it is paused, as the README says.
openssl req -x509 -newkey rsa:2048 -nodes -keyout /tmp/own-key.pem -out /tmp/own-cert.pem -days 30 \
    -subj /CN=own.lab -addext subjectAltName=DNS:own.lab,IP:10.0.0.2 2>/dev/null
GUEST_NAME=httpd-own; GUEST_LOG=/var/log/xen/console/guest-$GUEST_NAME.log; GUEST_XL=/tmp/xl-$GUEST_NAME.out
rm -f "$GUEST_LOG"
xl create -p xl-configs/httpd.cfg "name=\"$GUEST_NAME\"" $(mode_type xl-configs/httpd.cfg) \
    'extra="log=info ip=10.0.0.2/24 gw=10.0.0.1 tls=on"' >"$GUEST_XL" 2>&1
dom=/local/domain/$(xl domid $GUEST_NAME)
# `--`: a PEM starts with dashes, which xenstore-write would parse as options (it then wrote the second path as
# the first value: found by this check).
xenstore-write -- $dom/tls/certificate "$(cat /tmp/own-cert.pem)" $dom/tls/key "$(cat /tmp/own-key.pem)"
xl unpause $GUEST_NAME
if wait_tcp 10.0.0.2 443 90; then
    out=$(curl -s --cacert /tmp/own-cert.pem --resolve own.lab:443:10.0.0.2 -o /dev/null \
        -w '%{http_code} %{ssl_verify_result}' https://own.lab/)
    check tls-xenstore-cert "the toolstack's RSA certificate from xenstore served (curl --cacert it: '$out')" \
        sh -c "[ '$out' = '200 0' ] && grep -q 'tls: certificate and key from xenstore' '$GUEST_LOG'"
else
    fail tls-xenstore-cert "httpd with a certificate in xenstore did not listen on 443 within 90 s"; show_guest
fi
timeout 30 xl shutdown -w $GUEST_NAME >/dev/null 2>&1 || xl destroy $GUEST_NAME 2>/dev/null

# Without hardware entropy (the domain's CPUID policy hides RDRAND and RDSEED; PV guests read the CPU's CPUID
# directly, so this is a PVH check): the guest says so and refuses HTTPS; entropy=weak accepts the jitter seed.
if ! pv_only; then
    boot_guest httpd-noent 120 xl-configs/httpd.cfg 'cpuid="host,rdrand=0,rdseed=0"' \
        'extra="log=info ip=10.0.0.2/24 gw=10.0.0.1 tls=on"'
    check tls-entropy-refused "no RDRAND/RDSEED: jitter-only seed reported and HTTPS refused (ended: $GUEST_REASON)" \
        sh -c "grep -q 'random numbers: no hardware entropy' '$GUEST_LOG' && grep -q 'starting HTTPS: random numbers: no hardware entropy' '$GUEST_LOG'"
    start_bg httpd-weak xl-configs/httpd.cfg 'cpuid="host,rdrand=0,rdseed=0"' \
        'extra="log=info ip=10.0.0.2/24 gw=10.0.0.1 tls=on entropy=weak"'
    if wait_tcp 10.0.0.2 443 90; then
        code=$(curl -sk -o /dev/null -w '%{http_code}' https://10.0.0.2/)
        check tls-entropy-weak-accepted "entropy=weak: HTTPS on the jitter seed answered $code" \
            sh -c "[ '$code' = 200 ] && grep -q 'entropy=weak accepts it' '$GUEST_LOG'"
    else
        fail tls-entropy-weak-accepted "httpd with entropy=weak did not listen on 443 within 90 s"; show_guest
    fi
    stop_net_guest
fi
