# Checks of the stats endpoint (issue 15): Prometheus text, the JSON document, the live page. dom0 has no jq and
# no python: awk, sed, grep and perl-base (Debian's essential perl, without JSON::PP) do it.

# prom_check FILE: FILE is Prometheus text exposition 0.0.4, strictly: every line is `# HELP name text`,
# `# TYPE name type` (one per name) or a sample `name{label="value",...} value`, and every sample's family has a
# TYPE line before it (a histogram's name_bucket, name_sum and name_count under name). Prints the first faults.
prom_check() {
    awk '
    function fault(why) { if (bad < 5) print why ": " $0; bad++ }
    /^# HELP / { if ($0 !~ /^# HELP [a-zA-Z_:][a-zA-Z0-9_:]* /) fault("bad HELP line"); next }
    /^# TYPE / {
        if ($0 !~ /^# TYPE [a-zA-Z_:][a-zA-Z0-9_:]* (counter|gauge|histogram|summary|untyped)$/) fault("bad TYPE line")
        else if ($3 in type) fault("a second TYPE line")
        else type[$3] = $4
        next
    }
    {
        if ($0 !~ /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*"(,[a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*")*\})? -?([0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?|\+?Inf|NaN)$/) {
            fault("not a sample line")
            next
        }
        match($0, /^[a-zA-Z_:][a-zA-Z0-9_:]*/)
        name = substr($0, 1, RLENGTH); base = name
        sub(/_(bucket|sum|count)$/, "", base)
        if (!(name in type) && !((base in type) && type[base] == "histogram")) fault("no TYPE line before")
        samples++
    }
    END { if (samples == 0) { print "no samples"; bad++ }; exit bad > 0 }' "$1"
}
# prom_value FILE SERIES: the value of the sample whose series is exactly SERIES (`name` or `name{labels}`).
prom_value() { awk -v s="$2" 'index($0, s " ") == 1 { print substr($0, length(s) + 2); exit }' "$1"; }
# prom_families FILE NAME...: the NAMEs that have no TYPE line in FILE (none: all there).
prom_missing() { f=$1; shift; for n in "$@"; do grep -q "^# TYPE $n " "$f" || printf '%s ' "$n"; done; }

# json_check FILE: FILE is one JSON value (RFC 8259's grammar, as a recursive perl regex). Perl caps a quantifier on
# a complex group at 65534 repetitions (a trace's array has more elements): members and elements are matched in
# runs of up to 10,000, repeated.
json_check() {
    perl -e '
        my $json = qr{
            (?(DEFINE)
                (?<value> \s* (?: (?&object) | (?&array) | (?&string) | (?&number) | true | false | null ) \s* )
                (?<object> \{ \s* (?: (?&string) \s* : (?&value) (?> (?: , \s* (?&string) \s* : (?&value) ){1,10000} )* )? \} )
                (?<array> \[ \s* (?: (?&value) (?> (?: , (?&value) ){1,10000} )* )? \] )
                (?<string> " (?: [^"\\\x00-\x1f] | \\ (?: ["\\/bfnrt] | u[0-9a-fA-F]{4} ) )* " )
                (?<number> -? (?: 0 | [1-9][0-9]* ) (?: \. [0-9]+ )? (?: [eE] [-+]? [0-9]+ )? )
            )
            \A (?&value) \z
        }x;
        local $/; my $text = <STDIN>;
        exit(defined $text && $text =~ $json ? 0 : 1)' <"$1"
}

# vif_gso HOST: "TX RX", vif 0's GSO packet counts (sent as TSO, received as LRO; 0 when not found) from echo's
# port 11 (systat: the metrics' JSON document on one line).
vif_gso() {
    nc -w 5 "$1" 11 >/tmp/systat.json
    tx=$(grep -o '"tx_gso_packets":[0-9]*' /tmp/systat.json | head -n1 | cut -d: -f2)
    rx=$(grep -o '"rx_gso_packets":[0-9]*' /tmp/systat.json | head -n1 | cut -d: -f2)
    echo "${tx:-0} ${rx:-0}"
}

# stats_endpoint_checks HOST: httpd's /metrics, /stats, /live and /logs (checks http-metrics-format,
# http-metrics-move, http-stats-json, http-live-page, http-logs). /metrics is scraped twice around 100 keep-alive
# requests.
stats_endpoint_checks() {
    curl -s --max-time 10 -D /tmp/metrics1.head -o /tmp/metrics1.txt "http://$1/metrics"
    for i in $(seq 100); do echo "url = \"http://$1/?load=$i\""; echo "output = /dev/null"; done >/tmp/load.urls
    curl -s --max-time 60 -K /tmp/load.urls
    curl -s --max-time 10 -o /tmp/metrics2.txt "http://$1/metrics"
    faults=$( (prom_check /tmp/metrics1.txt; prom_check /tmp/metrics2.txt) | head -n 3 | tr '\n' ' ')
    missing=$(prom_missing /tmp/metrics2.txt sirocco_build_info sirocco_uptime_seconds sirocco_heap_used_bytes \
        sirocco_cpu_idle_seconds_total sirocco_vif_rx_packets_total sirocco_tcp_sockets sirocco_vif_tx_in_flight \
        http_requests_total http_request_duration_seconds http_budget_used_bytes)
    ctype=$(sed -n 's/^[Cc]ontent-[Tt]ype: *//p' /tmp/metrics1.head | tr -d '\r')
    check http-metrics-format "GET /metrics ($ctype): $(wc -l </tmp/metrics2.txt) lines, $(grep -c '^# TYPE' /tmp/metrics2.txt) families; faults: ${faults:-none}; families missing: ${missing:-none}" \
        sh -c "[ -z '$(echo "$faults" | tr -d "'")' ] && [ -z '$missing' ] && [ '$ctype' = 'text/plain; version=0.0.4; charset=utf-8' ]"
    r1=$(prom_value /tmp/metrics1.txt http_requests_total); r2=$(prom_value /tmp/metrics2.txt http_requests_total)
    p1=$(prom_value /tmp/metrics1.txt 'sirocco_vif_rx_packets_total{vif="0"}')
    p2=$(prom_value /tmp/metrics2.txt 'sirocco_vif_rx_packets_total{vif="0"}')
    l1=$(prom_value /tmp/metrics1.txt http_request_duration_seconds_count)
    l2=$(prom_value /tmp/metrics2.txt http_request_duration_seconds_count)
    check http-metrics-move "across 100 requests: http_requests_total ${r1:-?} -> ${r2:-?}, vif 0 rx packets ${p1:-?} -> ${p2:-?}, latency observations ${l1:-?} -> ${l2:-?}" \
        sh -c "[ -n '$r1' ] && [ -n '$p1' ] && [ -n '$l1' ] && [ $((${r2:-0} - ${r1:-0})) -ge 100 ] && [ ${p2:-0} -gt ${p1:-0} ] && [ $((${l2:-0} - ${l1:-0})) -ge 100 ]"
    curl -s --max-time 10 -D /tmp/stats.head -o /tmp/stats2.json "http://$1/stats"
    ok=no; json_check /tmp/stats2.json && ok=yes
    ctype=$(sed -n 's/^[Cc]ontent-[Tt]ype: *//p' /tmp/stats.head | tr -d '\r')
    check http-stats-json "GET /stats ($ctype, $(wc -c </tmp/stats2.json) bytes) parses as JSON: $ok; $(grep -o '"build":{[^}]*}' /tmp/stats2.json)" \
        sh -c "[ $ok = yes ] && [ '$ctype' = application/json ] && grep -q '\"build\":{\"version\":\"[^\"]*\",\"app\":\"httpd\"' /tmp/stats2.json && grep -q '\"heap\":{\"size\":[0-9]' /tmp/stats2.json && grep -q '\"profile\":{\"uptime_ns\":[0-9]' /tmp/stats2.json && grep -q '\"http_request_duration_seconds\":{\"unit\":\"us\",\"count\":[1-9]' /tmp/stats2.json"
    curl -s --max-time 10 -D /tmp/live.head -o /tmp/live.html "http://$1/live"
    ctype=$(sed -n 's/^[Cc]ontent-[Tt]ype: *//p' /tmp/live.head | tr -d '\r')
    check http-live-page "GET /live ($ctype): $(wc -c </tmp/live.html) bytes, a script that polls stats, no external assets" \
        sh -c "[ '$ctype' = 'text/html; charset=utf-8' ] && grep -q '<script>' /tmp/live.html && grep -q 'fetch(\"stats\"' /tmp/live.html && ! grep -qE '(src|href)=\"(https?:)?//' /tmp/live.html"
    logs_check "$1"
}

# logs_check HOST: GET /logs is the log ring as text, one record a line (check http-logs).
logs_check() {
    code=$(curl -s --max-time 10 -D /tmp/logs.head -o /tmp/logs.txt -w '%{http_code}' "http://$1/logs")
    ctype=$(sed -n 's/^[Cc]ontent-[Tt]ype: *//p' /tmp/logs.head | tr -d '\r')
    check http-logs "GET /logs: $code ($ctype), $(wc -l </tmp/logs.txt) records, the first: $(head -n1 /tmp/logs.txt | head -c 120)" \
        sh -c "[ '$code' = 200 ] && [ '$ctype' = 'text/plain; charset=utf-8' ] && grep -qE '\] INFO  [a-z_:]+: ' /tmp/logs.txt"
}

# stats_port_check HOST PORT APP: the stats endpoint on a port of its own (`sirocco::stats::serve`): /metrics well
# formed and naming APP, / the live page (check stats-port).
stats_port_check() {
    code=$(curl -s --max-time 10 -o /tmp/port-metrics.txt -w '%{http_code}' "http://$1:$2/metrics")
    faults=$(prom_check /tmp/port-metrics.txt | head -n 2 | tr '\n' ' ')
    live=$(curl -s --max-time 10 "http://$1:$2/" | grep -c 'fetch("stats"')
    code404=$(curl -s --max-time 10 -o /dev/null -w '%{http_code}' "http://$1:$2/nothing")
    check stats-port "port $2: /metrics $code ($(wc -l </tmp/port-metrics.txt) lines; faults: ${faults:-none}), / is the live page ($live), /nothing $code404" \
        sh -c "[ '$code' = 200 ] && [ -z '$(echo "$faults" | tr -d "'")' ] && grep -q '^sirocco_build_info{.*app=\"$3\"' /tmp/port-metrics.txt && [ '$live' = 1 ] && [ '$code404' = 404 ]"
}
