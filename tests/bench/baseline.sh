#!/usr/bin/env bash
# tests/bench/baseline.sh [REV] [bench options]: the benchmark with this
# build and the build of REV (default HEAD, the last commit) side by side,
# interleaved in one run: REV is checked out in a temporary worktree and
# built there, then tests/bench/run.sh runs with BENCH_BASELINE pointing at
# its library (rows labelled "before", and a section comparing the two).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT=$PWD
rev=${1:-HEAD}
[[ $# -gt 0 ]] && shift

dir=$(mktemp -d "${TMPDIR:-/tmp}/p11isolate-baseline.XXXXXX")
cleanup() {
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
