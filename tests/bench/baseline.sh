#!/usr/bin/env bash
# tests/bench/baseline.sh [REV] [bench options]: the benchmark with this
# build and the build of REV (default HEAD, the last commit) side by side,
# interleaved in one run: REV is checked out in a temporary worktree and
# built there, then tests/bench/run.sh runs with BENCH_BASELINE pointing at
# its library (rows labelled "before", and a section comparing the two).
# Then tests/bench/ab.c compares the two builds on the shortest calls with 1
# and 2 threads in alternating one-second rounds (steadier than the bench's
# short slices where scheduling noise is most of a call).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT=$PWD
rev=${1:-HEAD}
[[ $# -gt 0 ]] && shift

dir=$(mktemp -d "${TMPDIR:-/tmp}/p11isolate-baseline.XXXXXX")
hogs=()
cleanup() {
	((${#hogs[@]} == 0)) || kill "${hogs[@]}" 2>/dev/null || true
	git -C "$ROOT" worktree remove --force "$dir/src" >/dev/null 2>&1 || true
	rm -rf -- "$dir"
}
trap cleanup EXIT
git -C "$ROOT" worktree add --detach "$dir/src" "$rev" >/dev/null 2>&1 ||
	{ echo "baseline.sh: cannot check out $rev" >&2; exit 2; }
echo "baseline.sh: building $(git -C "$dir/src" log -1 --format='%h %s' | cut -c1-80)" >&2
make -s -C "$dir/src" build/libp11isolate.so >&2 || { echo "baseline.sh: cannot build $rev" >&2; exit 2; }
cp "$dir/src/build/libp11isolate.so" "$dir/libp11isolate-before.so"
BENCH_BASELINE=$dir/libp11isolate-before.so "$ROOT/tests/bench/run.sh" "$@"

gcc -std=gnu11 -O2 -g -Wall -Wextra -Werror -I/usr/include/p11-kit-1 -o "$dir/ab" "$ROOT/tests/bench/ab.c" -ldl -lpthread
eval "$("$ROOT/softhsm-testenv/new-token" "$dir/token" ab 12345678 1234 2>/dev/null)" ||
	{ echo "baseline.sh: cannot create a SoftHSM2 token" >&2; exit 2; }
export SOFTHSM2_CONF P11ISOLATE_MODULE=${BENCH_SOFTHSM:-/usr/lib/softhsm/libsofthsm2.so}
unset P11ISOLATE_LOG P11ISOLATE_CONFIG
echo
echo "== alternating one-second rounds: A = the earlier build (before), B = this build =="
for threads in 1 2 16; do
	for op in info open digest; do
		"$dir/ab" "$dir/libp11isolate-before.so" "$ROOT/build/libp11isolate.so" "$op" "$threads" 6 | tail -n1
	done
done
echo
echo "== the same with a CPU-bound loop on each of $(nproc) CPUs (a loaded machine) =="
for _ in $(seq "$(nproc)"); do
	sh -c 'while :; do :; done' &
	hogs+=($!)
done
for threads in 1 2; do
	for op in info digest; do
		"$dir/ab" "$dir/libp11isolate-before.so" "$ROOT/build/libp11isolate.so" "$op" "$threads" 6 | tail -n1
	done
done
kill "${hogs[@]}"
hogs=()
