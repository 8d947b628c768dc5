#!/usr/bin/env bash
# Instructions per operation under valgrind's callgrind (deterministic, unlike wall time).
# Ir/op = (Ir of a run with 2*OPS operations - Ir of a run with OPS) / (difference in operations done), so
# start-up and setup cancel out.
# Usage: ./callgrind.sh   (run from bench/executor; builds the host binary first)
set -euo pipefail
cd "$(dirname "$0")"
cargo build --release -q --bin throughput
OPS=${OPS:-100000}
# Prints "Ir ops" for one run.
ir() { valgrind --tool=callgrind --callgrind-out-file=/dev/null ./target/release/throughput one "$@" 2>&1 |
       awk '/Collected :/{ir=$4} / ops=/{for(i=1;i<=NF;i++) if($i ~ /^ops=/){split($i,a,"=");ops=a[2]}}
            END{print ir, ops}'; }
printf '%-6s %5s | %13s | %13s | %13s\n' work n "sirocco Ir/op" "embassy Ir/op" "emb+Box Ir/op"
for c in "ring 2" "ring 8" "ring 64" "ring 1024" "ext 0" "ext 1000" "fanout 8" "fanout 64" "fanout 1024" "spawn 0"; do
    set -- $c
    row=()
    for e in sirocco embassy embassy-boxed; do
        read -r ia oa < <(ir "$1" "$e" "$2" "$OPS"); read -r ib ob < <(ir "$1" "$e" "$2" $((2 * OPS)))
        row+=("$(awk -v ia="$ia" -v ib="$ib" -v oa="$oa" -v ob="$ob" 'BEGIN{printf "%.1f", (ib-ia)/(ob-oa)}')")
    done
    printf '%-6s %5s | %13s | %13s | %13s\n' "$1" "$2" "${row[0]}" "${row[1]}" "${row[2]}"
done
