#!/bin/sh
# bench-compare.sh REF: the relay bench (tests/integration/bench_relay.py) with this tree's
# fleetgwd and the fleetgwd of git commit REF in the same run, rounds interleaved, printing
# each one's ratio to mosquitto's bridge, CPU per message, and this build / REF with its
# spread (docs/benchmarks.md).
#
# REF is built from a temporary `git worktree add` in a temporary directory (with the build
# type and C compiler of this tree's build directory, firmware off), which is removed
# afterwards; this tree's files and build directory are only read and built. Needs the
# project's git history (a clone; a shallow clone may lack REF).
#
# Environment: BUILD (this tree's build directory, default build), JOBS (default 2),
# ROUNDS (default 15), BENCH (the ctest name, default bench_relay). CALLGRIND=1 counts
# instructions per relayed message of both under valgrind instead
# (tests/integration/relay_instructions.py; MESSAGES, default 3000, and REPEAT, default 2).
set -eu

usage() {
    echo "usage: $0 REF   (a commit, tag or branch of this clone, e.g. f779f86)" >&2
    exit 64
}
[ $# -eq 1 ] || usage
REF=$1
case $REF in -*) usage ;; esac
JOBS=${JOBS:-2}
ROUNDS=${ROUNDS:-15}
BENCH=${BENCH:-bench_relay}

here=$(cd "$(dirname "$0")" && pwd)
if ! top=$(git -C "$here/.." rev-parse --show-toplevel 2>/dev/null); then
    echo "bench-compare: $here/.. is not a git work tree: comparing with another commit needs" \
        "the project's git history (use a git clone, not an exported copy)" >&2
    exit 1
fi
BUILD=${BUILD:-$top/build}
case $BUILD in /*) ;; *) BUILD=$top/$BUILD ;; esac

if ! commit=$(git -C "$top" rev-parse --verify --quiet "$REF^{commit}"); then
    hint="not in its history; if a remote has it, git fetch first"
    if [ "$(git -C "$top" rev-parse --is-shallow-repository)" = true ]; then
        hint="this clone is shallow: git fetch --unshallow"
    fi
    echo "bench-compare: '$REF' is not a commit of the clone at $top ($hint)" >&2
    exit 1
fi
short=$(git -C "$top" rev-parse --short=7 "$commit")

# This tree's build: configured as make does if it is not yet, then the bench's programs.
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
    cmake -S "$top" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo
fi
build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$BUILD/CMakeCache.txt")
cc=$(sed -n 's/^CMAKE_C_COMPILER:[A-Z]*=//p' "$BUILD/CMakeCache.txt")
if [ -z "$build_type" ]; then
    echo "bench-compare: note: $BUILD has no CMAKE_BUILD_TYPE (no optimisation); both" \
        "binaries are built that way (make uses RelWithDebInfo)" >&2
fi
cmake --build "$BUILD" -j"$JOBS" --target fleetgwd fleetgwctl fleetgw-bench-min-relay

tmp=$(mktemp -d "${TMPDIR:-/tmp}/fleetgw-bench-ref.XXXXXX")
cleanup() {
    if [ -d "$tmp/src" ]; then
        git -C "$top" worktree remove --force "$tmp/src" || true
    fi
    rm -rf "$tmp"
    git -C "$top" worktree prune || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "bench-compare: building fleetgwd at $REF ($short) in $tmp (build type '${build_type}')"
git -C "$top" worktree add --detach --quiet "$tmp/src" "$commit"
cmake -S "$tmp/src" -B "$tmp/build" -DCMAKE_BUILD_TYPE="$build_type" \
    ${cc:+-DCMAKE_C_COMPILER="$cc"} -DFLEETGW_FIRMWARE=OFF -DFLEETGW_WERROR=OFF >"$tmp/configure.log" ||
    { cat "$tmp/configure.log" >&2; echo "bench-compare: configuring $REF failed" >&2; exit 1; }
cmake --build "$tmp/build" -j"$JOBS" --target fleetgwd
ref_bin=$tmp/build/bin/fleetgwd
if [ ! -x "$ref_bin" ]; then
    echo "bench-compare: $REF built no $ref_bin" >&2
    exit 1
fi

cd "$BUILD"
if [ "${CALLGRIND:-0}" = 1 ]; then
    FLEETGW_BENCH_REF=$ref_bin FLEETGW_BENCH_REF_NAME=$short FLEETGW_BUILD_DIR=$BUILD \
        FLEETGW_SOURCE_DIR=$top FLEETGW_CALLGRIND_MESSAGES=${MESSAGES:-3000} \
        FLEETGW_CALLGRIND_REPEAT=${REPEAT:-2} PYTHONPATH=$top/tests/harness \
        PYTHONDONTWRITEBYTECODE=1 python3 -u "$top/tests/integration/relay_instructions.py"
else
    FLEETGW_BENCH_REF=$ref_bin FLEETGW_BENCH_REF_NAME=$short FLEETGW_BENCH_ROUNDS=$ROUNDS \
        ctest --output-on-failure -V -R "^$BENCH\$"
fi
