# The kv suite (issue 5): the key-value store over HTTP, killed with `xl destroy` at random moments while
# clients write; every acknowledged PUT must be there, with its value, after every restart.
cd /job
. /job/lab/net-lib.sh
mkdir -p /var/lib/sirocco
KV=/var/lib/sirocco/kv.img
rm -f "$KV"; truncate -s 64M "$KV"
KVIP=10.0.0.5
CYCLES=${KV_CYCLES:-12}
SOAK_PUTS=20000
# The PVH pass: the same checks over a subset of crash cycles and a smaller soak.
pv_only || { CYCLES=3; SOAK_PUTS=2000; }
expect $(for c in $(seq "$CYCLES"); do echo "kv-after-restart-$c kv-acked-$c"; done) trace-blk \
    kv-final kv-delete kv-list kv-stats kv-soak-puts kv-delete-durable kv-soak-replayed kv-soak-all-present \
    kv-upload-flood kv-upload-flood-after kv-https
: >/tmp/kv.acked
rm -f /tmp/kv.acked.[1-4]
# Writers and the verifier are lab/peer/httpload.c: one keep-alive connection each, every key recorded (write(2))
# only once its 204 arrived, values derived from the key (so a value under the wrong key is caught).

# verify LABEL [FILE]: every acknowledged key (default: all so far) read back and compared.
verify() {
    f=${2:-/tmp/kv.acked}
    acked=$(wc -l <"$f")
    out=$(timeout 600 ./lab/httpload verify "$KVIP" 80 "$f"); rc=$?
    echo "$out" | grep -v '^httpload: ok=' | head -n 20 | sed 's/^/lab: kv: /'
    # Only the first boot has nothing to read back; everywhere else an empty list would be a zero-work pass.
    nonempty=yes; [ "$1" = after-restart-1 ] || [ "$acked" -gt 0 ] || nonempty=no
    check "kv-$1" "$acked acknowledged keys read back: $(echo "$out" | tail -n1)" [ "$rc" = 0 -a "$nonempty" = yes ]
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
    # Four writers put keys as fast as they can, each on its own keep-alive connection.
    pids=""
    for w in 1 2 3 4; do
        ./lab/httpload put "$KVIP" 80 "c$cycle-w$w" "/tmp/kv.acked.$w" >/dev/null &
        pids="$pids $!"
    done
    # ... and the domain is destroyed at a random moment: no shutdown, no flush, the backend just goes.
    sleep "$(awk -v s="$cycle" 'BEGIN { srand(s * 7919); printf "%.2f", 0.5 + rand() * 3 }')"
    xl destroy "kv-$cycle"
    kill $pids 2>/dev/null
    wait $pids 2>/dev/null # only the writers: a bare `wait` would wait for other background jobs
    wait $XL_PID 2>/dev/null
    n=$(cat /tmp/kv.acked.[1-4] 2>/dev/null | wc -l)
    check "kv-acked-$cycle" "$n writes acknowledged in cycle $cycle before the destroy" [ "$n" -gt 0 ]
    cat /tmp/kv.acked.[1-4] >>/tmp/kv.acked 2>/dev/null; rm -f /tmp/kv.acked.[1-4]
done
echo "lab: kv: $(wc -l </tmp/kv.acked) keys acknowledged over $CYCLES destroyed runs; $torn opens reported a torn tail"

# The last restart: everything acknowledged over all cycles, then deletes, the list and /stats.
start_bg kv-final xl-configs/kv.cfg "extra=\"log=info ip=$KVIP/24 gw=10.0.0.1 trace=blk,app tracebuf=8192 tls=on\""
if wait_http "$KVIP" 80 120; then
    grep -o 'kv: store open: .*' "$GUEST_LOG" | sed 's/^/lab: final: /'
    verify final
    curl -s -o /dev/null -X PUT --data-binary gone "http://$KVIP/kv/to-delete"
    del=$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "http://$KVIP/kv/to-delete")
    after=$(curl -s -o /dev/null -w '%{http_code}' "http://$KVIP/kv/to-delete")
    check kv-delete "DELETE answered $del, then GET answered $after" [ "$del$after" = 204404 ]
    # The same API over HTTPS (issue 17; tls=on): a PUT through TLS, trusted by the certificate kv published.
    xenstore-read -R "/local/domain/$(xl domid kv-final)/data/tls-certificate" >/tmp/kv-ca.pem 2>/dev/null
    put=$(curl -s -o /dev/null -w '%{http_code}' --cacert /tmp/kv-ca.pem -X PUT --data-binary over-tls \
        "https://$KVIP/kv/via-https")
    got=$(curl -s "http://$KVIP/kv/via-https")
    check kv-https "PUT over HTTPS (verified) answered $put; GET over HTTP read '$got'" \
        sh -c "[ '$put' = 204 ] && [ '$got' = over-tls ]"
    # Blkfront's trace points (issue 15): this boot traces blk and app; the PUT and DELETE above were written.
    curl -s -o /tmp/kv-trace.json "http://$KVIP/trace"
    ./lab/sirocco trace /tmp/kv-trace.json >/tmp/kv-trace.txt 2>&1
    sed 's/^/lab: kv trace: /' /tmp/kv-trace.txt
    check trace-blk "$(grep '^  blk' /tmp/kv-trace.txt)" grep -Eq '^  blk .*complete [0-9]+.*requests in flight [0-9]+.*submit [0-9]+' /tmp/kv-trace.txt
    listed=$(curl -s "http://$KVIP/kv" | grep -c '^c')
    check kv-list "GET /kv lists every acknowledged key ($listed listed)" [ "$listed" -ge "$(wc -l </tmp/kv.acked)" ]
    curl -s "http://$KVIP/stats" >/tmp/kv.stats
    check kv-stats "GET /stats: $(grep -o '"app":.*' /tmp/kv.stats | head -c 300)" grep -q '"kv_store_live_keys":[0-9]' /tmp/kv.stats
    # Soak: 20,000 PUTs (four keep-alive writers), then a clean restart must replay every one.
    : >/tmp/kv.soak
    rm -f /tmp/kv.soak.[1-4] /tmp/kv.soak.out.* # the writers append: a second pass (PVH) must start empty
    t0=$(now); pids=""
    for w in 1 2 3 4; do
        timeout 900 ./lab/httpload put "$KVIP" 80 "s-w$w" "/tmp/kv.soak.$w" $((SOAK_PUTS / 4)) >/tmp/kv.soak.out.$w &
        pids="$pids $!"
    done
    wait $pids
    cat /tmp/kv.soak.[1-4] >/tmp/kv.soak
    soaked=$(wc -l </tmp/kv.soak)
    check kv-soak-puts "$soaked of $SOAK_PUTS PUTs acknowledged in $(since "$t0") s ($(cat /tmp/kv.soak.out.* | tr '\n' ' '))" [ "$soaked" -eq "$SOAK_PUTS" ]
    timeout 30 xl shutdown -w kv-final >/dev/null 2>&1 || xl destroy kv-final
    wait $XL_PID 2>/dev/null
    start_bg kv-final2 xl-configs/kv.cfg "extra=\"log=info ip=$KVIP/24 gw=10.0.0.1\""
    wait_http "$KVIP" 80 120
    after=$(curl -s -o /dev/null -w '%{http_code}' "http://$KVIP/kv/to-delete")
    check kv-delete-durable "a deleted key stays deleted after a restart (GET answered $after)" [ "$after" = 404 ]
    opened=$(grep -o 'kv: store open: .*' "$GUEST_LOG" | head -n1)
    replayed=$(echo "$opened" | sed -n 's/.*replayed \([0-9]*\) records.*/\1/p')
    echo "lab: soak restart: $opened"
    check kv-soak-replayed "the restart replayed ${replayed:-no} records (want >= $SOAK_PUTS)" [ "${replayed:-0}" -ge "$SOAK_PUTS" ]
    verify soak-all-present /tmp/kv.soak
    # 24 concurrent 1 MiB PUTs: kv buffers values, so its memory budget must turn some away (503), not crash.
    upload_flood_check kv-upload-flood "$KVIP" 24 /kv/flood- /stats
    stop_net_guest
else
    fail kv-final-up "kv did not answer on the final restart"; show_guest
fi
