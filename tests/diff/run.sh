#!/usr/bin/env bash
# tests/diff/run.sh: the differential harness.
#
# Builds build/tests/diff, makes two fresh SoftHSM2 tokens with the same
# label and PINs, runs the same scripted call sequences against SoftHSM2
# loaded directly (one process, first token) and through libp11isolate.so
# (another process, second token), and compares the two logs line by line.
# Prints every difference, the per-area summary, and ends with
# "N passed, N failed" (N counts comparisons). Exits non-zero on any
# difference. The SoftHSM2 comparison runs twice: as before, and with every
# process of the script a forked child of one that used the module
# ("run-forked").
#
# Then the PKCS#11 3.x comparisons, each its own named comparison with its
# own PASS/FAIL line, the same way (diff.c's run3 script: the interface
# list, C_GetInterface, and everything through the highest "PKCS 11"
# interface's function list):
#   softokn  NSS softokn (3.0), each side on a fresh NSS database with the
#            same password; directly, its configuration is C_Initialize's
#            pReserved (DIFF_INIT_RESERVED); through the proxy,
#            P11ISOLATE_VENDOR_RESERVED, the application's pReserved NULL.
#   mod32    tests/mod32 (3.2): build/tests/libmod32.so, made by the
#            Makefile's rule when it is out of date.
# Each also runs forked ("softokn-forked", "mod32-forked", after its plain
# form, on fresh databases for softokn): diff.c's run3-forked, the whole
# 3.x script and its probes in children of two parent processes that
# loaded the library first, one that called only C_GetInterfaceList and
# C_GetInterface ("ifparent/" areas), one that initialized it through the
# 3.x list and kept a session with a message encryption active
# ("initparent/" areas; after its children it encrypts the same message
# again, compared with the first).
# A 3.x comparison passes only if the direct side's script ran to its end
# (forked: under both parents).
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
#   P11TEST_SOFTOKN   NSS softokn (default /usr/lib/x86_64-linux-gnu/libsoftokn3.so)
#   P11TEST_MOD32     the 3.2 test module (default build/tests/libmod32.so, built)
#   DIFF_ONLY         the comparisons to run, separated by spaces: softhsm (or
#                     run, run-forked), softokn, softokn-forked, mod32,
#                     mod32-forked (default: all)
#   DIFF_KEEP         keep the work directory (logs: NAME-direct.log,
#                     NAME-proxy.log, NAME-proxy-lib.log) and print its path
set -euo pipefail

root=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd -P)
cd -- "$root"

softhsm=${P11TEST_SOFTHSM:-/usr/lib/softhsm/libsofthsm2.so}
softokn=${P11TEST_SOFTOKN:-/usr/lib/x86_64-linux-gnu/libsoftokn3.so}
lib=${P11TEST_LIB:-$root/build/libp11isolate.so}
bin=$root/build/tests/diff
mod32=${P11TEST_MOD32:-$root/build/tests/libmod32.so}

wanted() {
	[[ -z ${DIFF_ONLY:-} || " $DIFF_ONLY " == *" $1 "* ]]
}

[[ -f $lib ]] || { echo "diff: $lib missing (make build/libp11isolate.so)" >&2; exit 2; }
if wanted softhsm || wanted run || wanted run-forked; then
	[[ -f $softhsm ]] || { echo "diff: SoftHSM2 not found at $softhsm" >&2; exit 2; }
fi
if wanted softokn || wanted softokn-forked; then
	[[ -f $softokn ]] ||
		{ echo "diff: NSS softokn not found at $softokn (apt-get install libnss3)" >&2; exit 2; }
	command -v certutil >/dev/null 2>&1 ||
		{ echo "diff: certutil is missing (apt-get install libnss3-tools)" >&2; exit 2; }
fi
wanted_mod32() { wanted mod32 || wanted mod32-forked; }
if wanted_mod32 && [[ -z ${P11TEST_MOD32:-} ]]; then
	[[ -f tests/mod32/mod32.c ]] || { echo "diff: tests/mod32/mod32.c missing" >&2; exit 2; }
fi

mkdir -p build/tests
gcc -std=gnu11 -O2 -g -Wall -Wextra -Werror -I/usr/include/p11-kit-1 -Icshim -o "$bin" tests/diff/diff.c -ldl -lpthread
# The 3.2 test module: the Makefile's rule (a no-op when it is up to date).
if wanted_mod32 && [[ -z ${P11TEST_MOD32:-} ]]; then
	make -s build/tests/libmod32.so
fi
if wanted_mod32; then
	[[ -f $mod32 ]] || { echo "diff: $mod32 missing" >&2; exit 2; }
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/p11diff.XXXXXX")
cleanup() {
	if [[ -n ${DIFF_KEEP:-} ]]; then
		echo "diff: kept $work" >&2
	else
		rm -rf -- "$work"
	fi
}
trap cleanup EXIT

# report NAME DIRECT_RC PROXY_RC COMPARE_RC [DIRECT_LOG [SCRIPTS]]: one
# comparison's PASS or FAIL line. With DIRECT_LOG (a 3.x comparison), the
# direct side's script must have run to its end (SCRIPTS times, default
# once: run3-forked runs it under two parents): two logs that agree because
# both sides stopped early are no pass.
passed=0
failed=0
report() {
	local name=$1 direct_rc=$2 proxy_rc=$3 cmp_rc=$4 direct_log=${5:-} scripts=${6:-1} ended=0
	if [[ -n $direct_log ]]; then
		ended=$(grep -c $'^supervisor\t[^\t]* 3.x script\tprocess exit status 0$' "$direct_log" || true)
	fi
	if ((direct_rc != 0)); then
		echo "$name: FAIL: direct side exited with status $direct_rc"
		sed 's/^/  direct stderr: /' "$work/$name-direct.stderr" | head -20
	elif ((proxy_rc != 0)); then
		echo "$name: FAIL: proxy side exited with status $proxy_rc"
		sed 's/^/  proxy stderr: /' "$work/$name-proxy.stderr" | head -20
	elif [[ -n $direct_log ]] && ((ended != scripts)); then
		echo "$name: FAIL: the direct side's script ran to its end $ended time(s) of $scripts:"
		grep -E $'^(supervisor|([a-z]+/)?load|([a-z]+/)?[a-z0-9]+\twatchdog)\t' "$direct_log" |
			sed 's/^/  direct: /' | head -10
	elif ((cmp_rc != 0)); then
		echo "$name: FAIL: the direct and proxied logs differ"
	else
		echo "$name: PASS"
		passed=$((passed + 1))
		return 0
	fi
	failed=$((failed + 1))
}

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
for mode in run run-forked; do
	wanted softhsm || wanted "$mode" || continue
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
	report "$mode" "$direct_rc" "$proxy_rc" "$cmp_rc"
done

# The PKCS#11 3.x comparisons. run3 NAME TARGET MODULE DIRECT_RESERVED
# PROXY_RESERVED [MODE]: diff.c's 3.x script for TARGET against MODULE
# directly (DIRECT_RESERVED, if any, its C_Initialize pReserved) and through
# the proxy (PROXY_RESERVED, if any, as P11ISOLATE_VENDOR_RESERVED; the
# application's pReserved is NULL). MODE: run3 (default) or run3-forked.
run3() {
	local name=$1 target=$2 module=$3 direct_reserved=$4 proxy_reserved=$5 mode=${6:-run3} scripts=1
	[[ $mode == run3-forked ]] && scripts=2
	local -a direct_env=(env -u P11ISOLATE_MODULE -u P11ISOLATE_CONFIG -u P11ISOLATE_VENDOR_RESERVED
		-u DIFF_INIT_RESERVED)
	local -a proxy_env=(env -u P11ISOLATE_CONFIG -u P11ISOLATE_VENDOR_RESERVED -u DIFF_INIT_RESERVED
		P11ISOLATE_MODULE="$module" P11ISOLATE_LOG="$work/$name-proxy-lib.log")
	[[ -n $direct_reserved ]] && direct_env+=(DIFF_INIT_RESERVED="$direct_reserved")
	[[ -n $proxy_reserved ]] && proxy_env+=(P11ISOLATE_VENDOR_RESERVED="$proxy_reserved")
	set +e
	"${direct_env[@]}" timeout 300 "$bin" "$mode" "$target" "$module" "$work/$name-direct.log" \
		2>"$work/$name-direct.stderr"
	local direct_rc=$?
	"${proxy_env[@]}" timeout 300 "$bin" "$mode" "$target" "$lib" "$work/$name-proxy.log" \
		2>"$work/$name-proxy.stderr"
	local proxy_rc=$?
	"$bin" compare "$work/$name-direct.log" "$work/$name-proxy.log"
	local cmp_rc=$?
	set -e
	report "$name" "$direct_rc" "$proxy_rc" "$cmp_rc" "$work/$name-direct.log" "$scripts"
}

# softokn: one fresh database per side, the password diff.c's targets[]
# gives softokn ("diff-nss-pw"); its configuration string names the
# database (softokn's C_Initialize reads it from pReserved, NSS's
# LibraryParameters).
nss_pw=diff-nss-pw
nssdb() {
	mkdir -p "$1" && printf '%s\n' "$nss_pw" >"$1.pw" &&
		certutil -N -d "sql:$1" -f "$1.pw" >>"$work/certutil.log" 2>&1
}
nss_config() {
	printf "configdir='sql:%s' certPrefix='' keyPrefix='' secmod='secmod.db' flags=" "$1"
}
declare -A forked_note=([run3]="" [run3-forked]=", in children forked from parents that used it")

# Each form on databases of its own.
for mode in run3 run3-forked; do
	name=softokn${mode#run3}
	wanted "$name" || continue
	nssdb "$work/$name-direct-db" && nssdb "$work/$name-proxy-db" ||
		{ cat "$work/certutil.log" >&2; echo "diff: NSS database setup failed" >&2; exit 2; }
	echo "--- $name: NSS softokn (PKCS#11 3.0) directly vs libp11isolate.so${forked_note[$mode]}"
	run3 "$name" softokn "$softokn" "$(nss_config "$work/$name-direct-db")" \
		"$(nss_config "$work/$name-proxy-db")" "$mode"
done

for mode in run3 run3-forked; do
	name=mod32${mode#run3}
	wanted "$name" || continue
	echo "--- $name: tests/mod32 (PKCS#11 3.2) directly vs libp11isolate.so${forked_note[$mode]}"
	run3 "$name" mod32 "$mod32" "" "" "$mode"
done

echo "$passed passed, $failed failed"
((failed == 0))
