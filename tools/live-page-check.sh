#!/usr/bin/env bash
# The live stats page (issue 15) in a real browser: headless Chromium loads it twice a few seconds apart while
# curl loads the guest, and the page must have changed, with no console error.
#
#   tools/live-page-check.sh              make build APP=httpd, boot it with the lab's serve mode
#                                         (python3 lab/lab.py serve httpd 80: http://localhost:8080/ is the guest's
#                                         port 80), check http://localhost:8080/live, stop the lab
#   tools/live-page-check.sh --url URL    check a page already served (a guest from `make run`, say); no lab
#   tools/live-page-check.sh --fake       check the page against a fake /stats served by python3 on the host (no
#                                         Xen, no guest: tools/live-page-fake.py): the page's own code, in a minute
#
# Settings: LIVE_PAGE_BUDGET_MS (6000), the page time Chromium gives each load; LIVE_PAGE_GAP_S (4), the pause
# between the two loads; LIVE_PAGE_HTML, the page --fake serves (kernel/src/stats/live.html).
#
# Checks, one line each (`live-page: NAME ok` or `live-page: NAME FAILED: why`), exit status non-zero if any failed:
#   served          the page answers 200 as text/html and has its script
#   screenshots     two screenshots (build/live-check/live-1.png, live-2.png) taken seconds apart differ
#   numbers-change  the page's numbers (read from the DOM Chromium dumps: data-values of each chart, the uptime)
#                   moved: uptime later, requests and packets per second above 0 under the load
#   no-console-errors  Chromium logged no console message and no uncaught exception (--enable-logging=stderr;
#                   the page logs nothing, so any message is a fault), and no poll of /stats failed
#   trace-timeline  (not with --fake) GET /trace, taken while the load ran (the lab boots httpd with trace=all),
#                   through `sirocco trace` into the HTML timeline, rendered by Chromium (trace.png): the screenshot
#                   has each traced layer's colour and the request paths' colour (counted by tools/png-colours.py),
#                   and the tool followed at least one request from netfront RX to the app and back
# Chromium runs each time as /usr/bin/chromium --headless with the flags this machine needs (a new empty profile,
# no background networking), for --virtual-time-budget ms of page time: the page polls /stats once a (virtual)
# second, so each load sees several polls. Evidence in build/live-check/.
set -Eeuo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/build/live-check"
mode=lab
url=http://localhost:8080/live
case "${1:-}" in
    --url) mode=url; url=${2:?--url needs a URL} ;;
    --fake) mode=fake ;;
    "") ;;
    *) sed -n '2,/^set -E/p' "$0" | sed '$d'; exit 2 ;;
esac
mkdir -p "$out"
rm -f "$out"/*.png "$out"/*.html "$out"/*.log "$out"/*.txt

pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

failed=0
ok() { echo "live-page: $1 ok${2:+ ($2)}"; }
bad() { echo "live-page: $1 FAILED: $2"; failed=1; }

chromium=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$chromium" ]; then
    echo "live-page: installing Debian's chromium (once)"
    sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo apt-get install -y chromium >"$out/apt.log" 2>&1 || { echo "live-page: FAILED: apt-get install chromium (see $out/apt.log)"; exit 1; }
    chromium=$(command -v chromium)
fi

case $mode in
    fake)
        port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
        python3 "$root/tools/live-page-fake.py" "$port" "${LIVE_PAGE_HTML:-$root/kernel/src/stats/live.html}" >"$out/fake.log" 2>&1 &
        pids+=($!)
        url="http://127.0.0.1:$port/live"
        base="http://127.0.0.1:$port"
        ;;
    lab)
        echo "live-page: building httpd and booting it in the lab (serve mode: a few minutes)"
        make -C "$root" build APP=httpd >"$out/build.log" 2>&1 || { echo "live-page: FAILED: make build APP=httpd (see $out/build.log)"; exit 1; }
        LAB_SERVE_EXTRA="trace=all tracebuf=16384" python3 "$root/lab/lab.py" serve httpd 80 >"$out/lab.log" 2>&1 &
        pids+=($!)
        base=http://localhost:8080
        ;;
    url) base=${url%/*} ;;
esac

# Wait for the page (the lab boots Xen, dom0 and the guest under TCG: allow 15 minutes).
for _ in $(seq 1800); do
    curl -s -o /dev/null --max-time 2 "$url" && break
    if [ $mode != url ] && ! kill -0 "${pids[0]}" 2>/dev/null; then
        echo "live-page: FAILED: the server ended before the page answered (see $out/$mode.log)"; exit 1
    fi
    sleep 0.5
done

code=$(curl -s --max-time 10 -D "$out/headers.txt" -o "$out/page.html" -w '%{http_code}' "$url" || true)
ctype=$(sed -n 's/^[Cc]ontent-[Tt]ype: *//p' "$out/headers.txt" | tr -d '\r')
if [ "$code" = 200 ] && [[ $ctype == text/html* ]] && grep -q '<script>' "$out/page.html"; then
    ok served "$code, $ctype, $(wc -c <"$out/page.html") bytes"
else
    bad served "HTTP ${code:-none}, content type '${ctype}', script: $(grep -c '<script>' "$out/page.html" 2>/dev/null || echo 0)"
fi

# Load: four curl loops on keep-alive-less requests to the guest's pages, for the whole check.
for _ in 1 2 3 4; do
    (while :; do curl -s -o /dev/null --max-time 5 "$base/" || sleep 0.2; done) &
    pids+=($!)
done
sleep 2

flags=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking
    --disable-component-update --disable-sync --hide-scrollbars --window-size=1280,900
    --virtual-time-budget="${LIVE_PAGE_BUDGET_MS:-6000}" --enable-logging=stderr --v=0)
# chrome N: screenshot live-N.png and the DOM dom-N.html, each from a fresh profile; logs chromium-N*.log.
chrome() {
    local profile
    profile=$(mktemp -d)
    timeout 120 "$chromium" "${flags[@]}" --user-data-dir="$profile" --screenshot="$out/live-$1.png" "$url" \
        >"$out/chromium-$1-shot.log" 2>&1 || echo "chromium exited $? (screenshot $1)" >>"$out/chromium-errors.txt"
    rm -rf "$profile"; profile=$(mktemp -d)
    timeout 120 "$chromium" "${flags[@]}" --user-data-dir="$profile" --dump-dom "$url" \
        >"$out/dom-$1.html" 2>"$out/chromium-$1-dom.log" || echo "chromium exited $? (DOM $1)" >>"$out/chromium-errors.txt"
    rm -rf "$profile"
}
chrome 1
sleep "${LIVE_PAGE_GAP_S:-4}"
chrome 2

# Screenshots: both there, not blank, different.
s1=$(stat -c %s "$out/live-1.png" 2>/dev/null || echo 0); s2=$(stat -c %s "$out/live-2.png" 2>/dev/null || echo 0)
if [ "$s1" -gt 10000 ] && [ "$s2" -gt 10000 ] && ! cmp -s "$out/live-1.png" "$out/live-2.png"; then
    ok screenshots "$s1 and $s2 bytes, different"
else
    bad screenshots "sizes $s1 and $s2 bytes (a blank page is smaller than 10 KB); identical: $(cmp -s "$out/live-1.png" "$out/live-2.png" && echo yes || echo no)"
fi

# values N CHART: the chart's latest values (data-values, space-separated) in dom-N.html.
values() { sed -n "s/.*id=\"v_$2\"[^>]*data-values=\"\([^\"]*\)\".*/\1/p; s/.*data-values=\"\([^\"]*\)\"[^>]*id=\"v_$2\".*/\1/p" "$out/dom-$1.html" | head -n1; }
uptime() { grep -o 'data-uptime-ms="[0-9]*"' "$out/dom-$1.html" | head -n1 | grep -o '[0-9]*'; }
u1=$(uptime 1); u2=$(uptime 2)
rps1=$(values 1 rps); rps2=$(values 2 rps); pps2=$(values 2 pps); lat2=$(values 2 lat); cpu2=$(values 2 cpu)
positive() { awk -v v="$1" 'BEGIN { exit !(v + 0 > 0) }'; }
if [ -n "$u1" ] && [ -n "$u2" ] && [ "$u2" -gt "$u1" ] && positive "$rps2" && positive "${pps2%% *}"; then
    ok numbers-change "uptime ${u1} -> ${u2} ms; requests/s ${rps1:-none} -> ${rps2}; packets/s rx tx ${pps2}; latency p50 p90 p99 ms ${lat2:-none}; vCPU % ${cpu2:-none}"
else
    bad numbers-change "uptime ${u1:-none} -> ${u2:-none} ms; requests/s ${rps1:-none} -> ${rps2:-none}; packets/s ${pps2:-none} (want a later uptime and rates above 0 under load)"
fi

# Console errors: with --enable-logging Chromium prints each console message of the page as `INFO:CONSOLE:LINE]
# "text"` whatever its level (console.error included), and an uncaught exception as `"Uncaught ...`. The page
# itself logs nothing, so any console line is a fault. A failed poll of /stats logs nothing either: the page then
# shows "no answer from /stats" (its #info gets the class err), which the DOM shows.
errors=$(cat "$out"/chromium-*.log | grep -E ':CONSOLE[:(]|Uncaught' || true)
poll_failed=$(grep -ho 'id="info" class="err"[^<]*<\|class="err" id="info"[^<]*<' "$out"/dom-*.html | head -n 1 || true)
if [ -z "$errors" ] && [ -z "$poll_failed" ] && [ ! -s "$out/chromium-errors.txt" ]; then
    ok no-console-errors "no console message, no uncaught exception, every poll of /stats answered"
else
    bad no-console-errors "$(printf '%s\n' "$errors" | head -n 3 | tr '\n' ' ')${poll_failed:+ page: $poll_failed} $(cat "$out/chromium-errors.txt" 2>/dev/null | tr '\n' ' ')"
fi

# The trace timeline (issue 15), from the same guest under the same load.
if [ $mode = fake ]; then
    echo "live-page: trace-timeline not checked: --fake serves no /trace"
else
    curl -s --max-time 60 -o "$out/trace.json" "$base/trace" || true
    cargo run -q --release --manifest-path "$root/Cargo.toml" -p sirocco-cli -- trace "$out/trace.json" \
        --json "$out/trace-perfetto.json" --html "$out/trace.html" >"$out/trace-summary.txt" 2>"$out/trace-tool.log" || true
    profile=$(mktemp -d)
    timeout 120 "$chromium" --headless --no-sandbox --disable-gpu --no-first-run --disable-background-networking \
        --disable-component-update --disable-sync --hide-scrollbars --window-size=1500,1400 --user-data-dir="$profile" \
        --screenshot="$out/trace.png" "file://$out/trace.html" >"$out/chromium-trace.log" 2>&1 || true
    rm -rf "$profile"
    # run evtchn net tcp app, then a request's path (tools/cli/src/trace.rs: COLOURS, FLOW_COLOUR).
    colours=("#4e79a7" "#f28e2b" "#59a14f" "#e15759" "#b07aa1" "#ff00ff")
    python3 "$root/tools/png-colours.py" "$out/trace.png" "${colours[@]}" >"$out/trace-colours.txt" 2>&1 || true
    few=$(awk 'NR > 1 && $1 ~ /^#/ && $2 < 200 { print $1 }' "$out/trace-colours.txt" | tr '\n' ' ')
    drawn=$(awk 'NR > 1 && $1 ~ /^#/ { printf "%s:%s ", $1, $2 }' "$out/trace-colours.txt")
    paths=$(sed -n 's/^request paths: \([0-9]*\) complete.*/\1/p' "$out/trace-summary.txt")
    if [ -s "$out/trace.png" ] && [ "$(grep -c '^#' "$out/trace-colours.txt")" = ${#colours[@]} ] && [ -z "$few" ] && [ "${paths:-0}" -ge 1 ]; then
        ok trace-timeline "$(head -n1 "$out/trace-summary.txt"); ${paths} request paths; pixels per colour $drawn"
    else
        bad trace-timeline "summary: $(head -n1 "$out/trace-summary.txt" 2>/dev/null) $(cat "$out/trace-tool.log" 2>/dev/null | head -n2 | tr '\n' ' '); request paths ${paths:-none}; pixels per colour ${drawn:-none}; under 200: ${few:-none}"
    fi
fi

echo "live-page: evidence in $out (live-1.png, live-2.png, dom-*.html, chromium-*.log, trace.html, trace.png)"
exit $failed
