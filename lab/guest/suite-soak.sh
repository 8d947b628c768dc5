# The long soak (`make soak`, not part of `make test`): httpd answers 1,000,000 keep-alive requests and 100,000
# fresh connections with its heap back at its starting level afterwards. (`make test` runs a tenth of that in the
# net suite, and kv's 20,000-PUT soak with a full replay on restart in the kv suite.)
cd /job
. /job/lab/net-lib.sh
SOAK_REQUESTS=${SOAK_REQUESTS:-1000000}
SOAK_FRESH=${SOAK_FRESH:-100000}
expect soak-http-keepalive soak-http-fresh soak-http-heap soak-http-still-serving
start_bg httpd-soak xl-configs/httpd.cfg 'extra="log=info ip=10.0.0.2/24 gw=10.0.0.1"'
if wait_http 10.0.0.2 80 60; then
    http_soak soak-http 10.0.0.2 "$SOAK_REQUESTS" "$SOAK_FRESH"
    curl -s http://10.0.0.2/stats | head -c 400 | sed 's/^/lab: stats after the soak: /'; echo
    code=$(curl -s -o /dev/null -w '%{http_code}' http://10.0.0.2/)
    check soak-http-still-serving "GET / after the soak answered $code" [ "$code" = 200 ]
else
    fail soak-http-up "httpd did not answer on 10.0.0.2:80 within 60 s"; show_guest
fi
stop_net_guest
