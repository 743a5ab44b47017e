#!/usr/bin/env bash
# tests/run.sh: the integration tests of libp11isolate.so (`make integration`
# builds first, then runs this).
#
# Every scenario of the driver (build/tests/p11test) runs against its own
# throwaway SoftHSM2 token, then the real-client tests (pkcs11-tool and
# OpenSSL, GnuTLS, NSS, Java, crypto11), the memfd fallback and, when
# present, the differential harness (tests/diff). Each
# scenario's output is printed; the last line is "N passed, N failed"
# (N counts scenarios), and the exit status is non-zero if any failed.
#
# Environment (optional):
#   P11TEST_SOFTHSM   the vendor module (default /usr/lib/softhsm/libsofthsm2.so)
#   P11TEST_TIMEOUT   seconds one scenario may run before it is killed (300)
#   P11TEST_ONLY      space-separated scenario names to run (default: all)
#   P11TEST_KEEP      set to keep the temporary directory (tokens, outputs)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

die() {
	printf 'run.sh: %s\n' "$*" >&2
	exit 2
}

# The tools the tests need; `make deps` installs them.
for tool in softhsm2-util pkcs11-tool timeout; do
	command -v "$tool" >/dev/null 2>&1 ||
		die "$tool is missing: run 'make deps' (apt-get install softhsm2 opensc coreutils)"
done

LIB=$ROOT/build/libp11isolate.so
FAULTMOD=$ROOT/build/tests/libfaultmod.so
DRIVER=$ROOT/build/tests/p11test
SOFTHSM=${P11TEST_SOFTHSM:-/usr/lib/softhsm/libsofthsm2.so}
TIMEOUT=${P11TEST_TIMEOUT:-300}
PIN=1234
SO_PIN=12345678

for f in "$LIB" "$FAULTMOD" "$DRIVER"; do
	[[ -f $f ]] || die "$f is missing: run 'make build/libp11isolate.so build/tests/libfaultmod.so build/tests/p11test' (or 'make integration')"
done
[[ -f $SOFTHSM ]] || die "SoftHSM2 module $SOFTHSM is missing: run 'make deps' (apt-get install softhsm2)"

work=$(mktemp -d "${TMPDIR:-/tmp}/p11isolate-tests.XXXXXX")
cleanup() {
	if [[ -n ${P11TEST_KEEP:-} ]]; then
		echo "run.sh: kept $work" >&2
	else
		rm -rf -- "$work"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Settings a caller's environment must not leak into the scenarios: each
# scenario gets exactly what it needs.
unset P11ISOLATE_MODULE P11ISOLATE_TIMEOUT P11ISOLATE_KEYGEN_TIMEOUT P11ISOLATE_LOG \
	P11ISOLATE_CONFIG P11ISOLATE_HOST P11ISOLATE_VENDOR_RESERVED \
	P11ISOLATE_MEMORY_LIMIT P11ISOLATE_SANDBOX P11ISOLATE_SANDBOX_PATHS \
	P11ISOLATE_ENV P11ISOLATE_MODULE_SHA256 \
	FAULTMOD_FAULT FAULTMOD_FILE FAULTMOD_MODULE SOFTHSM2_CONF
# The host gets only allowlisted environment variables; the fault module is
# configured through FAULTMOD_*.
export P11ISOLATE_ENV='FAULTMOD_*'

passed=0
failed=0
failed_names=()
timing_line=

# collapse: long bursts of host log lines (a vendor's crash report) are cut
# to their first lines, so the output stays readable.
collapse() {
	awk '
		/^p11isolate: host\[[0-9]+\]: / {
			burst++
			if (burst <= 4) print
			next
		}
		{ flush(); print }
		function flush() {
			if (burst > 4) printf "    [... %d more host log lines]\n", burst - 4
			burst = 0
		}
		END { flush() }
	'
}

# scenario NAME CMD...: makes a token for NAME, runs CMD with SOFTHSM2_CONF
# exported and a deadline, prints its output and counts the result.
scenario() {
	local name=$1
	shift
	local dir=$work/$name out=$work/$name.out
	local conf rc=0 start end

	printf '\n=== %s\n' "$name"
	if ! conf=$("$ROOT/softhsm-testenv/new-token" "$dir" "p11test-$name" "$SO_PIN" "$PIN" 2>"$work/$name.token.err"); then
		cat "$work/$name.token.err"
		printf 'FAIL - %s: cannot create a SoftHSM2 token\n' "$name"
		failed=$((failed + 1))
		failed_names+=("$name")
		return 0
	fi
	start=$(date +%s)
	(
		eval "$conf"
		export TMPDIR=$dir
		exec timeout -k 10 "$TIMEOUT" "$@"
	) >"$out" 2>&1 </dev/null || rc=$?
	end=$(date +%s)
	collapse <"$out"
	if [[ $rc -eq 124 || $rc -eq 137 ]]; then
		printf 'FAIL - %s: killed after %ss (timeout)\n' "$name" "$TIMEOUT"
	fi
	if [[ $rc -eq 0 ]]; then
		printf -- '--- %s: PASS (%ss)\n' "$name" "$((end - start))"
		passed=$((passed + 1))
	else
		printf -- '--- %s: FAIL (exit status %s, %ss)\n' "$name" "$rc" "$((end - start))"
		failed=$((failed + 1))
		failed_names+=("$name")
	fi
	if [[ $name == timing ]]; then
		timing_line=$(grep -m1 '^C_GenerateRandom(32):' "$out" || true)
	fi
}

wanted() {
	[[ -z ${P11TEST_ONLY:-} ]] && return 0
	[[ " $P11TEST_ONLY " == *" $1 "* ]]
}

# The driver checks itself against SoftHSM2 directly first: a failure there
# is the driver's (or SoftHSM's), not the proxy's.
wanted basic-direct && scenario basic-direct "$DRIVER" "$SOFTHSM" basic "$PIN"

export P11TEST_SOFTHSM=$SOFTHSM P11TEST_FAULTMOD=$FAULTMOD
wanted basic && scenario basic env P11ISOLATE_MODULE="$SOFTHSM" "$DRIVER" "$LIB" basic "$PIN"
wanted compare && scenario compare env P11ISOLATE_MODULE="$SOFTHSM" "$DRIVER" "$LIB" compare "$SOFTHSM" "$PIN"
# crash and threads point the proxy at faultmod themselves (setenv before
# C_Initialize); errors sets and unsets P11ISOLATE_MODULE itself.
wanted crash && scenario crash "$DRIVER" "$LIB" crash "$PIN"
wanted fork && scenario fork env P11ISOLATE_MODULE="$SOFTHSM" "$DRIVER" "$LIB" fork
wanted fds && scenario fds env P11ISOLATE_MODULE="$SOFTHSM" "$DRIVER" "$LIB" fds
wanted threads && scenario threads "$DRIVER" "$LIB" threads "$PIN"
wanted errors && scenario errors "$DRIVER" "$LIB" errors
wanted timing && scenario timing env P11ISOLATE_MODULE="$SOFTHSM" "$DRIVER" "$LIB" timing 20000 "$SOFTHSM"

# Real clients, the memfd fallback and the differential harness.
wanted pkcs11-tool && scenario pkcs11-tool env P11ISOLATE_MODULE="$SOFTHSM" PIN="$PIN" bash "$ROOT/tests/pkcs11-tool.sh"
wanted trace && scenario trace env P11ISOLATE_MODULE="$SOFTHSM" bash "$ROOT/tests/trace.sh"
wanted threex && scenario threex bash "$ROOT/tests/threex.sh"
wanted watch && scenario watch bash "$ROOT/tests/vetmods/watch_test.sh"
wanted vet && scenario vet bash "$ROOT/tests/vet.sh"
wanted install && scenario install env P11ISOLATE_MODULE="$SOFTHSM" bash "$ROOT/tests/install.sh" p11test-install
wanted memfd-fallback && scenario memfd-fallback env P11ISOLATE_MODULE="$SOFTHSM" bash "$ROOT/tests/memfd-fallback.sh"
wanted large && scenario large env P11ISOLATE_MODULE="$SOFTHSM" bash "$ROOT/tests/bench/large.sh" "$PIN" all
wanted isolation && scenario isolation bash "$ROOT/tests/isolation/run.sh"
wanted hostile && scenario hostile bash "$ROOT/tests/hostile/run.sh"
wanted prefork && scenario prefork bash "$ROOT/tests/fork/run.sh"
if [[ -f $ROOT/tests/faults/run.sh ]] && wanted faults; then
	scenario faults bash "$ROOT/tests/faults/run.sh"
fi
wanted clients && scenario clients env -u SOFTHSM2_CONF P11ISOLATE_MODULE="$SOFTHSM" bash "$ROOT/tests/clients/run.sh"
if [[ -f $ROOT/tests/diff/run.sh ]] && wanted diff; then
	scenario diff bash "$ROOT/tests/diff/run.sh"
fi

printf '\n'
[[ -n $timing_line ]] && printf '%s\n' "$timing_line"
((failed == 0)) || printf 'failed: %s\n' "${failed_names[*]}"
printf '%d passed, %d failed\n' "$passed" "$failed"
((failed == 0))
