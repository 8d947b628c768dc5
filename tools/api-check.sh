#!/usr/bin/env bash
# The public API of the crates applications program against (sirocco, sirocco-net, sirocco-tls, and sirocco-kernel-logic where
# JoinHandle lives), held against committed snapshots in docs/api/, so that no API change goes unannounced:
#
#   tools/api-check.sh            fails if the API differs from docs/api/*.txt (prints the diff)
#   tools/api-check.sh --update   rewrites the snapshots, but only if CHANGELOG.md's Unreleased section changed
#                                 since they were last taken (docs/api/unreleased.sha256): an API change must be
#                                 described there first
#
# Why cargo-public-api against a snapshot rather than cargo-semver-checks: there is no tagged release to compare
# with yet, and both need the network only to install; cargo-public-api's list (one line per item, with its
# signature) diffs readably in review. It reads nightly rustdoc's JSON, so it is pinned to a version that reads
# this machine's nightly, and installed once into the cache outside the repository.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
crates=(sirocco sirocco-net sirocco-kernel-logic sirocco-tls)
version=0.52.0
cache=${SIROCCO_CACHE:-$HOME/.cache/sirocco}
tool="$cache/cargo-public-api-$version/bin"

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "api-check: FAILED: no rustup nightly toolchain (cargo-public-api reads nightly rustdoc's JSON)" >&2
    exit 1
fi
if [ ! -x "$tool/cargo-public-api" ]; then
    echo "api-check: installing cargo-public-api $version from crates.io into $cache (once; about 3 minutes)"
    cargo install -q --locked --version "$version" --root "$cache/cargo-public-api-$version" cargo-public-api
fi
export PATH="$tool:$PATH"

unreleased() { awk '/^## \[Unreleased\]/ { on = 1; next } on && /^## / { exit } on { print }' CHANGELOG.md; }
now=$(mktemp -d)
trap 'rm -rf "$now"' EXIT
for c in "${crates[@]}"; do
    # -ss: without blanket and auto-trait impls (`impl<T> Any for T`, `impl Send for ...`), which only add noise.
    cargo public-api -p "$c" -ss >"$now/$c.txt" 2>"$now/$c.err" || { cat "$now/$c.err" >&2; exit 1; }
done

changed=()
for c in "${crates[@]}"; do
    cmp -s "$now/$c.txt" "docs/api/$c.txt" 2>/dev/null || changed+=("$c")
done
if [ "${1:-}" = --update ]; then
    if [ ${#changed[@]} -eq 0 ]; then echo "api-check: the API matches the snapshots; nothing to update"; exit 0; fi
    if [ "$(unreleased | sha256sum | cut -c1-64)" = "$(cat docs/api/unreleased.sha256 2>/dev/null)" ]; then
        echo "api-check: the public API of ${changed[*]} changed, and CHANGELOG.md's Unreleased section did not:" >&2
        echo "api-check: describe the change there (under Breaking if it breaks an app), then run this again" >&2
        exit 1
    fi
    mkdir -p docs/api
    for c in "${crates[@]}"; do cp "$now/$c.txt" "docs/api/$c.txt"; done
    unreleased | sha256sum | cut -c1-64 >docs/api/unreleased.sha256
    echo "api-check: snapshots of ${changed[*]} updated in docs/api/"
    exit 0
fi
if [ ${#changed[@]} -ne 0 ]; then
    for c in "${changed[@]}"; do diff -u "docs/api/$c.txt" "$now/$c.txt" | head -n 60 >&2 || true; done
    echo "api-check: FAILED: the public API of ${changed[*]} differs from docs/api/ (above). Describe the change in" >&2
    echo "api-check: CHANGELOG.md's Unreleased section, then run tools/api-check.sh --update and commit both" >&2
    exit 1
fi
echo "api-check: the public API of ${crates[*]} matches docs/api/ ($(cat "$now"/*.txt | wc -l) items)"
