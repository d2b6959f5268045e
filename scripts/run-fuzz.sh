#!/usr/bin/env bash
# Runs each libFuzzer target built in BUILD for SECONDS, starting from its committed corpus
# (copied, so a run never rewrites the committed seeds). Fails on the first crash.
set -euo pipefail
build=${1:?build dir}
secs=${2:-60}
out="$build/fuzz-work"
mkdir -p "$out/artifacts"
found=0
for exe in "$build"/fuzz/fuzz_*; do
    [ -x "$exe" ] || continue
    found=1
    name=$(basename "$exe")
    seeds=$(find . -path "./build*" -prune -o -type d -path "*/fuzz/corpus/$name" -print | head -1)
    work="$out/corpus/$name"
    mkdir -p "$work"
    [ -n "$seeds" ] && cp -n "$seeds"/* "$work"/ 2>/dev/null || true
    echo "fuzz: $name for ${secs}s"
    "$exe" -max_total_time="$secs" -print_final_stats=1 -artifact_prefix="$out/artifacts/$name-" \
        "$work" 2>&1 | tail -n 12
done
[ $found -eq 1 ] || { echo "fuzz: no fuzz targets built in $build" >&2; exit 1; }
# Every fuzz target in the tree must have been built and run: one left out of this
# configuration would rot unseen.
missing=()
while IFS= read -r src; do
    name=$(basename "$src" .c)
    [ -x "$build/fuzz/$name" ] || missing+=("$name ($src)")
done < <(find . -path "./build*" -prune -o -type f -path "*/fuzz/fuzz_*.c" -print | sort)
if [ ${#missing[@]} -gt 0 ]; then
    echo "fuzz: not built in $build: ${missing[*]}" >&2
    exit 1
fi
echo "fuzz: every target ran for ${secs}s without a crash"
