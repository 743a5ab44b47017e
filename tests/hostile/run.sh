#!/usr/bin/env bash
# tests/hostile/run.sh: broken and hostile input (issue 9). Builds the driver
# (tests/hostile/hostile.c), makes a throwaway SoftHSM2 token and runs every
# section against SoftHSM2 and faultmod directly and through the proxy.
# Prints every check and ends with "N passed, N failed"; exit status non-zero
# on any failure.
#
# Environment (optional):
#   HOSTILE_ONLY      sections to run (default: all; see hostile.c)
#   HOSTILE_KEEP      keep the temporary directory
#   P11TEST_SOFTHSM   the vendor module (default SoftHSM2)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT=$PWD

die() {
	printf 'hostile/run.sh: %s\n' "$*" >&2
	exit 2
}

LIB=${P11TEST_LIB:-$ROOT/build/libp11isolate.so}
FAULTMOD=$ROOT/build/tests/libfaultmod.so
DRIVER=$ROOT/build/tests/hostile
SOFTHSM=${P11TEST_SOFTHSM:-/usr/lib/softhsm/libsofthsm2.so}
PIN=1234

command -v softhsm2-util >/dev/null 2>&1 || die "softhsm2-util is missing: run 'make deps'"
[[ -f $SOFTHSM ]] || die "SoftHSM2 module $SOFTHSM is missing: run 'make deps'"
if [[ ! -f $LIB || ! -f $FAULTMOD ]]; then
	make -s build/libp11isolate.so build/tests/libfaultmod.so >&2 || die "cannot build the library and faultmod"
fi
mkdir -p "$ROOT/build/tests"
gcc -std=gnu11 -O2 -g -Wall -Wextra -Werror -I/usr/include/p11-kit-1 \
	-o "$DRIVER" "$ROOT/tests/hostile/hostile.c" -ldl || die "cannot build the driver"

work=$(mktemp -d "${TMPDIR:-/tmp}/p11isolate-hostile.XXXXXX")
cleanup() {
	if [[ -n ${HOSTILE_KEEP:-} ]]; then
		echo "hostile/run.sh: kept $work" >&2
	else
		rm -rf -- "$work"
	fi
}
trap cleanup EXIT

while read -r v; do
	unset "$v"
done < <(compgen -v P11ISOLATE_; compgen -v FAULTMOD_)

conf=$("$ROOT/softhsm-testenv/new-token" "$work/token" hostile 12345678 "$PIN" 2>"$work/token.err") ||
	{ cat "$work/token.err" >&2; die "cannot create a SoftHSM2 token"; }
eval "$conf"
export TMPDIR=$work
export P11ISOLATE_MODULE=$FAULTMOD FAULTMOD_MODULE=$SOFTHSM FAULTMOD_FILE=$work/fault
export P11ISOLATE_TIMEOUT=2s P11ISOLATE_LOG=$work/proxy.log P11ISOLATE_ENV='FAULTMOD_*'
echo none >"$FAULTMOD_FILE"

rc=0
"$DRIVER" "$LIB" "$SOFTHSM" "$FAULTMOD" "$PIN" | tee "$work/out" || rc=$?
passed=$(grep -c '^ok   - ' "$work/out" || true)
failed=$(grep -c '^FAIL - ' "$work/out" || true)
if ((rc != 0)); then
	echo "--- the proxy's log:"
	tail -n 40 "$P11ISOLATE_LOG" || true
fi
printf '%d passed, %d failed\n' "$passed" "$failed"
exit "$rc"
