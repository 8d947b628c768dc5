#!/usr/bin/env bash
# Runs the cargo-fuzz targets in fuzz/ (nightly + libFuzzer).
#   tools/fuzz.sh brief [SECONDS]   each target replays its committed corpus, then fuzzes SECONDS (default 10) more:
#                                   what `make test` runs, so a regression on a known input fails the build
#   tools/fuzz.sh long [SECONDS]    each target for SECONDS (default 300); new inputs are kept in the cache
#                                   ($SIROCCO_CACHE/fuzz/<target>), crashes in fuzz/artifacts/<target>/
# Prints, per target, the inputs tried (libFuzzer's "Done N runs") and fails on the first crash or oracle failure.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-brief}
case "$mode" in
    brief) secs=${2:-10} ;;
    long) secs=${2:-300} ;;
    *) echo "usage: tools/fuzz.sh brief|long [SECONDS]" >&2; exit 2 ;;
esac
cache=${SIROCCO_CACHE:-$HOME/.cache/sirocco}

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "fuzz: FAILED: no rustup nightly toolchain (libFuzzer needs nightly's sanitizer flags)" >&2
    exit 1
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz from crates.io (once; a few minutes)"
    cargo install --locked cargo-fuzz
fi

targets=$(sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^sirocco-fuzz$' || true)
if [ -z "$targets" ]; then
    echo "fuzz: FAILED: no targets in fuzz/Cargo.toml" >&2
    exit 1
fi
echo "fuzz: building $(echo $targets | wc -w) targets (nightly, ASan + coverage)"
(cd fuzz && cargo +nightly fuzz build)

passed=0
failed=0
for t in $targets; do
    corpus=fuzz/corpus/$t
    if [ ! -d "$corpus" ] || [ -z "$(ls -A "$corpus")" ]; then
        echo "fuzz: $t: FAILED: no committed corpus in $corpus"
        failed=$((failed + 1))
        continue
    fi
    if [ "$mode" = brief ]; then
        work=$(mktemp -d)
    else
        work=$cache/fuzz/$t
        mkdir -p "$work"
    fi
    log=$(mktemp)
    # The first corpus directory is where libFuzzer writes new inputs: never the committed one.
    if (cd fuzz && cargo +nightly fuzz run "$t" "$work" "../$corpus" -- \
            -max_total_time="$secs" -print_final_stats=1 -rss_limit_mb=4096) >"$log" 2>&1; then
        runs=$(grep -oE 'Done [0-9]+ runs in [0-9]+ second' "$log" | tail -1)
        echo "fuzz: $t: ok: ${runs:-? runs} ($(ls "$corpus" | wc -l) committed inputs replayed)"
        passed=$((passed + 1))
    else
        echo "fuzz: $t: FAILED; last lines of libFuzzer's output:"
        tail -40 "$log" | sed 's/^/    /'
        failed=$((failed + 1))
    fi
    rm -f "$log"
    [ "$mode" = brief ] && rm -rf "$work"
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
