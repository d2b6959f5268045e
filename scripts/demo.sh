#!/usr/bin/env bash
# make demo: the main job on loopback — swtpm, edge and cloud brokers, fleetgwd and a
# simulated fleet — and a report of what happened. Honest by construction: when a part the
# demo needs is not built yet, it says which and exits non-zero.
set -euo pipefail
build=${1:-build}
[ $# -gt 0 ] && shift
here=$(cd "$(dirname "$0")/.." && pwd)
missing=()
for prog in fleetgwd fleetgwctl fleet-sim fleetgw-tool; do
    [ -x "$build/bin/$prog" ] || missing+=("$prog")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "demo: cannot run the fleet demo yet: not built: ${missing[*]}" >&2
    echo "demo: build them first: make build (or cmake --build $build)" >&2
    exit 1
fi
exec /usr/bin/python3 -u "$here/tests/demo/demo.py" "$build" "$@"
