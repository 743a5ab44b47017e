#!/usr/bin/env bash
# tests/faults/run.sh: the fault matrix of libp11isolate.so (issue 4).
#
# Builds the driver (tests/faults/faults.c) into build/tests/faults/, makes a
# throwaway SoftHSM2 token and runs the driver's modes against the proxy
# pointed at faultmod (tests/faultmod):
#   matrix   every fault kind x C_Initialize, C_OpenSession, C_Login, C_Sign,
#            C_GetAttributeValue, C_FindObjects, C_Finalize
#   threads  every fault kind hitting C_Sign while 4 threads sign + verify
#   appsig   the application's own SIGCHLD / SIGPIPE handling
#   appkill  the host ends with the application, even on SIGKILL
#   storm    a vendor that dies at every start: no fork storm, no hang
#   restart  a host's start (up to the deadline) holds up only the calls
#            that need the new host
# Prints every check ("ok   - ..." / "FAIL - ..."), then the tables, and ends
# with "N passed, N failed" (N counts checks). Exit status non-zero on any
# failure.
#
# Environment (optional):
#   FAULTS_ONLY       space-separated runs (default: all): matrix matrix-nosandbox
#                     threads appsig appsig-nosandbox appkill appkill-nosandbox storm restart
#   FAULTS_KINDS      comma-separated fault kinds (default: all; see faults.c)
#   FAULTS_FUNCS      comma-separated functions (default: all)
#   FAULTS_TIMEOUT    the proxy's per-call deadline (default 2s)
#   FAULTS_KEEP       keep the temporary directory (token, logs, outputs)
#   P11TEST_SOFTHSM   the vendor module faultmod wraps (default SoftHSM2)
#   P11TEST_FAULTMOD  libfaultmod.so (default build/tests/libfaultmod.so)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT=$PWD

die() {
	printf 'faults/run.sh: %s\n' "$*" >&2
	exit 2
}

LIB=${P11TEST_LIB:-$ROOT/build/libp11isolate.so}
FAULTMOD=${P11TEST_FAULTMOD:-$ROOT/build/tests/libfaultmod.so}
DRIVER=$ROOT/build/tests/faults/faults
SOFTHSM=${P11TEST_SOFTHSM:-/usr/lib/softhsm/libsofthsm2.so}
PIN=1234
SO_PIN=12345678
DEADLINE=${FAULTS_TIMEOUT:-2s}

command -v softhsm2-util >/dev/null 2>&1 || die "softhsm2-util is missing: run 'make deps'"
[[ -f $SOFTHSM ]] || die "SoftHSM2 module $SOFTHSM is missing: run 'make deps'"
if [[ ! -f $LIB || ! -f $FAULTMOD ]]; then
	make -s build/libp11isolate.so build/tests/libfaultmod.so >&2 || die "cannot build the library and faultmod"
fi

mkdir -p "$ROOT/build/tests/faults"
gcc -std=gnu11 -O2 -g -Wall -Wextra -Werror -I/usr/include/p11-kit-1 \
	-o "$DRIVER" "$ROOT/tests/faults/faults.c" -ldl -lpthread || die "cannot build the driver"

work=$(mktemp -d "${TMPDIR:-/tmp}/p11isolate-faults.XXXXXX")
cleanup() {
	if [[ -n ${FAULTS_KEEP:-} ]]; then
		echo "faults/run.sh: kept $work" >&2
	else
		rm -rf -- "$work"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Only what the runs need: no setting of the caller's leaks in.
while read -r v; do
	unset "$v"
done < <(compgen -v P11ISOLATE_; compgen -v FAULTMOD_)
unset SOFTHSM2_CONF

conf=$("$ROOT/softhsm-testenv/new-token" "$work/token" faults "$SO_PIN" "$PIN" 2>"$work/token.err") ||
	{ cat "$work/token.err" >&2; die "cannot create a SoftHSM2 token"; }
eval "$conf"
export TMPDIR=$work
export P11ISOLATE_MODULE=$FAULTMOD FAULTMOD_MODULE=$SOFTHSM
export P11ISOLATE_TIMEOUT=$DEADLINE P11ISOLATE_KEYGEN_TIMEOUT=30s P11ISOLATE_MEMORY_LIMIT=256M
export P11ISOLATE_ENV='FAULTMOD_*'

# The runs: NAME|ENVIRONMENT|MODE. The "-nosandbox" runs repeat what depends
# on the host's process layout with P11ISOLATE_SANDBOX=off (no pid namespace,
# no init above the host): the layout of systems where the kernel refuses
# namespaces. The "forked-" runs repeat the core rows in a child forked after
# the driver loaded, initialized, used and finalized the library (its C path
# without Go), then check the parent can use the library again.
runs=(
	"matrix||matrix"
	"matrix-nosandbox|P11ISOLATE_SANDBOX=off FAULTS_KINDS=segv,abort,exit3,kill-outside,fork+segv,thread+segv|matrix"
	"threads||threads"
	"appsig||appsig"
	"appsig-nosandbox|P11ISOLATE_SANDBOX=off|appsig"
	"appkill||appkill"
	"appkill-nosandbox|P11ISOLATE_SANDBOX=off|appkill"
	"storm||storm"
	"restart||restart"
	"forked-matrix|FAULTS_KINDS=segv,abort,exit3,kill-outside,hang,fork+segv|forked:matrix"
	"forked-threads|FAULTS_KINDS=segv,exit3,hang|forked:threads"
)

wanted() {
	[[ -z ${FAULTS_ONLY:-} ]] && return 0
	[[ " $FAULTS_ONLY " == *" $1 "* ]]
}

passed=0
failed=0
tables=()
names=()
start_all=$(date +%s)
for run in "${runs[@]}"; do
	IFS='|' read -r name envs mode <<<"$run"
	wanted "$name" || continue
	names+=("$name")
	out=$work/$name.out
	printf '\n=== %s%s\n' "$name" "${envs:+ ($envs)}"
	start=$(date +%s)
	rc=0
	# shellcheck disable=SC2086 # envs is a list of NAME=value words
	env FAULTMOD_FILE="$work/$name.fault" P11ISOLATE_LOG="$work/$name.log" $envs \
		timeout -k 5 240 "$DRIVER" "$LIB" "$PIN" "$mode" >"$out" 2>"$work/$name.err" </dev/null || rc=$?
	cat "$out"
	if [[ -s $work/$name.err ]]; then
		printf '# stderr of the driver:\n'
		sed 's/^/#   /' "$work/$name.err" | head -20
	fi
	ok=$(grep -c '^ok   - ' "$out" || true)
	bad=$(grep -c '^FAIL - ' "$out" || true)
	if ((rc != 0 && bad == 0)); then
		# the driver died (a signal, the timeout) before reporting a failure
		if ((rc > 128)); then
			printf 'FAIL - %s: the driver died of signal %d (SIG%s)\n' "$name" $((rc - 128)) "$(kill -l $((rc - 128)) 2>/dev/null || echo '?')" | tee -a "$out"
		else
			printf 'FAIL - %s: the driver exited with status %d\n' "$name" "$rc" | tee -a "$out"
		fi
		bad=1
	fi
	printf -- '--- %s: %d passed, %d failed (%ss)\n' "$name" "$ok" "$bad" "$(($(date +%s) - start))"
	passed=$((passed + ok))
	failed=$((failed + bad))
	grep -q '^| ' "$out" && tables+=("$name")
	if ((bad > 0)); then
		printf '# the proxy log of %s (its first 30 lines):\n' "$name"
		sed 's/^/#   /' "$work/$name.log" 2>/dev/null | head -30 || true
	fi
done

for name in "${tables[@]}"; do
	printf '\n%s:\n' "$name"
	grep '^| ' "$work/$name.out"
done
if ((failed > 0)); then
	printf '\nfailed checks:\n'
	for name in "${names[@]}"; do
		grep -h '^FAIL - ' "$work/$name.out" 2>/dev/null | sed "s/^/  [$name] /" || true
	done
fi
printf '\n(%ss in all)\n' "$(($(date +%s) - start_all))"
printf '%d passed, %d failed\n' "$passed" "$failed"
((failed == 0))
