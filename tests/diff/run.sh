#!/usr/bin/env bash
# tests/diff/run.sh: the differential harness.
#
# Builds build/tests/diff, makes two fresh SoftHSM2 tokens with the same
# label and PINs, runs the same scripted call sequences against SoftHSM2
# loaded directly (one process, first token) and through libp11isolate.so
# (another process, second token), and compares the two logs line by line.
# Prints every difference, the per-area summary, and ends with
# "N passed, N failed" (1 passed when the logs agree). Exits non-zero on any
# difference. Both comparisons run twice: as before, and with every process
# of the script a forked child of one that used the module ("run-forked").
#
# A side's run is a supervisor process that never loads the module: it runs
# the main script in one child process and each isolated probe (calls that
# crashed a process) in another, and records how each process ended, so a
# crash is a reported difference rather than the end of the run.
#
# Uses build/libp11isolate.so as it is: run `make build/libp11isolate.so`
# first when the sources changed.
#
# Environment:
#   P11TEST_SOFTHSM   SoftHSM2 module (default /usr/lib/softhsm/libsofthsm2.so)
#   DIFF_KEEP         keep the work directory (logs: MODE-direct.log,
#                     MODE-proxy.log, MODE-proxy-lib.log) and print its path
set -euo pipefail

root=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd -P)
cd -- "$root"

softhsm=${P11TEST_SOFTHSM:-/usr/lib/softhsm/libsofthsm2.so}
lib=${P11TEST_LIB:-$root/build/libp11isolate.so}
bin=$root/build/tests/diff

[[ -f $softhsm ]] || { echo "diff: SoftHSM2 not found at $softhsm" >&2; exit 2; }
[[ -f $lib ]] || { echo "diff: $lib missing (make build/libp11isolate.so)" >&2; exit 2; }

mkdir -p build/tests
gcc -std=gnu11 -O2 -g -Wall -Wextra -Werror -I/usr/include/p11-kit-1 -o "$bin" tests/diff/diff.c -ldl -lpthread

work=$(mktemp -d "${TMPDIR:-/tmp}/p11diff.XXXXXX")
cleanup() {
	if [[ -n ${DIFF_KEEP:-} ]]; then
		echo "diff: kept $work" >&2
	else
		rm -rf -- "$work"
	fi
}
trap cleanup EXIT

# Two tokens with the label, SO PIN and user PIN diff.c expects. new-token
# prints "export SOFTHSM2_CONF=..." (%q-quoted): evaluate it in a subshell.
token() {
	local line
	line=$(softhsm-testenv/new-token "$1" difftok 12345678 1234 2>>"$work/new-token.log") || return 1
	(eval "$line" && printf '%s' "$SOFTHSM2_CONF")
}
# One process per side: SoftHSM2 reads SOFTHSM2_CONF at C_Initialize and
# keeps global state. The proxy's host inherits this environment.
# Each process of a side has its own watchdog; timeout is the backstop.
# Twice: "run" (the script's processes load the module themselves) and
# "run-forked" (they are forked from a process that loaded, initialized and
# finalized it: the proxy's forked-child path), each on fresh tokens.
failed=0
for mode in run run-forked; do
	direct_conf=$(token "$work/$mode-direct") && proxy_conf=$(token "$work/$mode-proxy") &&
		[[ -f $direct_conf && -f $proxy_conf ]] ||
		{ cat "$work/new-token.log" >&2; echo "diff: token setup failed" >&2; exit 2; }
	echo "--- $mode: SoftHSM2 directly vs libp11isolate.so"
	set +e
	env -u P11ISOLATE_MODULE -u P11ISOLATE_CONFIG SOFTHSM2_CONF="$direct_conf" \
		timeout 900 "$bin" "$mode" "$softhsm" "$work/$mode-direct.log" 2>"$work/$mode-direct.stderr"
	direct_rc=$?
	env -u P11ISOLATE_CONFIG SOFTHSM2_CONF="$proxy_conf" P11ISOLATE_MODULE="$softhsm" \
		P11ISOLATE_LOG="$work/$mode-proxy-lib.log" \
		timeout 900 "$bin" "$mode" "$lib" "$work/$mode-proxy.log" 2>"$work/$mode-proxy.stderr"
	proxy_rc=$?
	"$bin" compare "$work/$mode-direct.log" "$work/$mode-proxy.log"
	cmp_rc=$?
	set -e
	if ((direct_rc != 0)); then
		echo "$mode: direct side exited with status $direct_rc"
		sed 's/^/  direct stderr: /' "$work/$mode-direct.stderr" | head -20
		failed=$((failed + 1))
	elif ((proxy_rc != 0)); then
		echo "$mode: proxy side exited with status $proxy_rc"
		sed 's/^/  proxy stderr: /' "$work/$mode-proxy.stderr" | head -20
		failed=$((failed + 1))
	elif ((cmp_rc != 0)); then
		failed=$((failed + 1))
	fi
done
echo "$((2 - failed)) passed, $failed failed"
((failed == 0))
