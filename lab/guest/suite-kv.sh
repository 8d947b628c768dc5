# The kv suite (issue 5): the key-value store over HTTP, killed with `xl destroy` at random moments while
# clients write; every acknowledged PUT must be there, with its value, after every restart.
cd /job
. /job/lab/net-lib.sh
mkdir -p /var/lib/sirocco
KV=/var/lib/sirocco/kv.img
rm -f "$KV"; truncate -s 64M "$KV"
KVIP=10.0.0.5
CYCLES=${KV_CYCLES:-20}
value_for() { printf '%s:%s' "$1" "$(printf '%s' "$1" | sha256sum | cut -c1-48)"; }
: >/tmp/kv.acked

# verify LABEL: every acknowledged key read back (one keep-alive connection) and compared.
verify() {
    rm -rf /tmp/kvgot; mkdir -p /tmp/kvgot; : >/tmp/kv.urls
    while read -r k; do
        printf 'url = "http://%s/kv/%s"\noutput = "/tmp/kvgot/%s"\n' "$KVIP" "$k" "$k" >>/tmp/kv.urls
    done </tmp/kv.acked
    [ -s /tmp/kv.urls ] && curl -s --max-time 300 -K /tmp/kv.urls -w '%{http_code}\n' >/tmp/kv.codes
    acked=$(wc -l </tmp/kv.acked); bad=0
    while read -r k; do
        [ "$(cat "/tmp/kvgot/$k" 2>/dev/null)" = "$(value_for "$k")" ] || { bad=$((bad + 1)); echo "lab: kv: $k lost or wrong"; }
    done </tmp/kv.acked
    check "kv-$1" "$acked acknowledged keys all present with their values ($bad missing or wrong)" [ "$bad" = 0 ]
}

torn=0
for cycle in $(seq "$CYCLES"); do
    start_bg "kv-$cycle" xl-configs/kv.cfg "extra=\"log=info ip=$KVIP/24 gw=10.0.0.1\""
    if ! wait_http "$KVIP" 80 120; then
        fail "kv-up-$cycle" "kv did not answer after restart $cycle"; show_guest; xl destroy "kv-$cycle"; wait $XL_PID; break
    fi
    grep -o 'kv: store open: .*' "$GUEST_LOG" | sed "s/^/lab: cycle $cycle: /"
    grep -q 'torn tail' "$GUEST_LOG" && torn=$((torn + 1))
    verify "after-restart-$cycle"
    # Four writers put keys as fast as they can; each records a key only once it has its 204.
    pids=""
    for w in 1 2 3 4; do
        (
            i=0
            while :; do
                i=$((i + 1)); k="c$cycle-w$w-$i"
                code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -X PUT --data-binary "$(value_for "$k")" "http://$KVIP/kv/$k")
                [ "$code" = 204 ] && echo "$k" >>"/tmp/kv.acked.$w"
            done
        ) &
        pids="$pids $!"
    done
    # ... and the domain is destroyed at a random moment: no shutdown, no flush, the backend just goes.
    sleep "$(awk -v s="$cycle" 'BEGIN { srand(s * 7919); printf "%.2f", 0.5 + rand() * 3 }')"
    xl destroy "kv-$cycle"
    kill $pids 2>/dev/null
    wait $pids 2>/dev/null # only the writers: a bare `wait` would wait for other background jobs
    wait $XL_PID 2>/dev/null
    cat /tmp/kv.acked.[1-4] >>/tmp/kv.acked 2>/dev/null; rm -f /tmp/kv.acked.[1-4]
done
echo "lab: kv: $(wc -l </tmp/kv.acked) keys acknowledged over $CYCLES destroyed runs; $torn opens reported a torn tail"

# The last restart: everything acknowledged over all cycles, then deletes, the list and /stats.
start_bg kv-final xl-configs/kv.cfg "extra=\"log=info ip=$KVIP/24 gw=10.0.0.1\""
if wait_http "$KVIP" 80 120; then
    grep -o 'kv: store open: .*' "$GUEST_LOG" | sed 's/^/lab: final: /'
    verify final
    curl -s -o /dev/null -X PUT --data-binary gone "http://$KVIP/kv/to-delete"
    del=$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "http://$KVIP/kv/to-delete")
    after=$(curl -s -o /dev/null -w '%{http_code}' "http://$KVIP/kv/to-delete")
    check kv-delete "DELETE answered $del, then GET answered $after" [ "$del$after" = 204404 ]
    listed=$(curl -s "http://$KVIP/kv" | grep -c '^c')
    check kv-list "GET /kv lists every acknowledged key ($listed listed)" [ "$listed" -ge "$(wc -l </tmp/kv.acked)" ]
    curl -s "http://$KVIP/stats" >/tmp/kv.stats
    check kv-stats "GET /stats: $(head -c 300 /tmp/kv.stats)" grep -q '"live_keys"' /tmp/kv.stats
    timeout 30 xl shutdown -w kv-final >/dev/null 2>&1 || xl destroy kv-final
    wait $XL_PID 2>/dev/null
    start_bg kv-final2 xl-configs/kv.cfg "extra=\"log=info ip=$KVIP/24 gw=10.0.0.1\""
    wait_http "$KVIP" 80 120
    after=$(curl -s -o /dev/null -w '%{http_code}' "http://$KVIP/kv/to-delete")
    check kv-delete-durable "a deleted key stays deleted after a restart (GET answered $after)" [ "$after" = 404 ]
    # 24 concurrent 1 MiB PUTs: kv buffers values, so its memory budget must turn some away (503), not crash.
    upload_flood_check kv-upload-flood "$KVIP" 24 /kv/flood- /stats
    stop_net_guest
else
    fail kv-final-up "kv did not answer on the final restart"; show_guest
fi
