#!/usr/bin/env bash
# tests/fork/run.sh: the prefork pattern (issue 10) with 8 workers and a
# fork of a fork, against SoftHSM2 loaded directly and through
# libp11isolate.so (there also with a parent thread mid-call during the
# forks: SoftHSM2 loaded directly may deadlock in a child on a lock that
# thread held): the same verdicts, every worker signs and verifies; worker 1
# changes its environment first (its settings are resolved anew). The same
# with a parent that never called C_Initialize, and through p11-kit's proxy
# module. Then
# faults inside a forked child (crash, hang, lie) and Python multiprocessing
# with PyKCS11 both ways. Ends with "N passed, N
# failed" over every run.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT=$PWD
SOFTHSM=${P11TEST_SOFTHSM:-/usr/lib/softhsm/libsofthsm2.so}
LIB=$ROOT/build/libp11isolate.so
DRIVER=$ROOT/build/tests/prefork

die() {
	printf 'fork/run.sh: %s\n' "$*" >&2
	exit 2
}
command -v softhsm2-util >/dev/null 2>&1 || die "softhsm2-util is missing: run 'make deps'"
[[ -f $SOFTHSM ]] || die "SoftHSM2 module $SOFTHSM is missing: run 'make deps'"
mkdir -p "$ROOT/build/tests"
gcc -std=gnu11 -O2 -g -Wall -Wextra -Werror -I/usr/include/p11-kit-1 \
	-o "$DRIVER" "$ROOT/tests/fork/prefork.c" -ldl -lpthread || die "cannot build the driver"

work=$(mktemp -d "${TMPDIR:-/tmp}/p11isolate-fork.XXXXXX")
trap 'rm -rf -- "$work"' EXIT
while read -r v; do unset "$v"; done < <(compgen -v P11ISOLATE_)

eval "$("$ROOT/softhsm-testenv/new-token" "$work/direct" prefork 12345678 1234 2>/dev/null)" ||
	die "cannot create a SoftHSM2 token"
hosts_before=$(pgrep -fc '^p11isolate-host' || true)
echo "--- SoftHSM2 directly"
rc=0
timeout 120 "$DRIVER" "$SOFTHSM" 1234 8 | tee "$work/direct.out" || rc=$?

[[ -f $LIB ]] || die "$LIB is missing: run make"
eval "$("$ROOT/softhsm-testenv/new-token" "$work/proxy" prefork 12345678 1234 2>/dev/null)" ||
	die "cannot create a SoftHSM2 token"
echo "--- through libp11isolate.so, a parent thread mid-call"
P11ISOLATE_MODULE=$SOFTHSM P11ISOLATE_LOG=$work/proxy.log timeout 120 "$DRIVER" "$LIB" 1234 8 busy |
	tee "$work/proxy.out" || rc=$?
# The same verdicts, worker by worker.
verdicts() { grep -E '^(ok|FAIL) +- (worker [0-9]+:|grandchild)' "$1" | sed 's/^ok  */ok /'; }
if ! diff <(verdicts "$work/direct.out") <(verdicts "$work/proxy.out"); then
	echo "FAIL - the workers' verdicts differ between SoftHSM2 directly and the proxy"
	rc=1
fi
if ((rc != 0)); then
	echo "--- the proxy's log:"
	tail -n 20 "$work/proxy.log" || true
fi
# A parent that loads the module and never initializes it: its children
# initialize, sign and verify, the same verdicts both ways.
for side in direct proxy; do
	eval "$("$ROOT/softhsm-testenv/new-token" "$work/uninit-$side" prefork 12345678 1234 2>/dev/null)" ||
		die "cannot create a SoftHSM2 token"
	echo "--- a parent that never called C_Initialize, $side"
	if [[ $side == direct ]]; then
		timeout 120 "$DRIVER" "$SOFTHSM" 1234 4 uninit | tee "$work/uninit-$side.out" || rc=$?
	else
		P11ISOLATE_MODULE=$SOFTHSM P11ISOLATE_LOG=$work/proxy.log timeout 120 "$DRIVER" "$LIB" 1234 4 uninit |
			tee "$work/uninit-$side.out" || rc=$?
	fi
done
if ! diff <(verdicts "$work/uninit-direct.out") <(verdicts "$work/uninit-proxy.out"); then
	echo "FAIL - with a never-initialized parent, the workers' verdicts differ between SoftHSM2 directly and the proxy"
	rc=1
fi
# Faults inside a forked child (faultmod wrapping SoftHSM2): the host's crash,
# hang and lie are the child's CKR_DEVICE_ERROR and a fresh host, logged,
# never the parent's.
FAULTMOD=$ROOT/build/tests/libfaultmod.so
[[ -f $FAULTMOD ]] || make -s build/tests/libfaultmod.so >&2 || die "cannot build faultmod"
eval "$("$ROOT/softhsm-testenv/new-token" "$work/faults" faults 12345678 1234 2>/dev/null)" ||
	die "cannot create a SoftHSM2 token"
echo none >"$work/fault"
echo "--- faults in a forked child"
FAULTMOD_FILE=$work/fault FAULTMOD_MODULE=$SOFTHSM P11ISOLATE_ENV='FAULTMOD_*' P11ISOLATE_MODULE=$FAULTMOD \
	P11ISOLATE_TIMEOUT=2s P11ISOLATE_LOG=$work/faults.log timeout 120 "$DRIVER" "$LIB" 1234 faults |
	tee "$work/faults.out" || rc=$?

# Python multiprocessing (fork start method) with Debian's PyKCS11: a pool of
# forked workers signs, directly and through the proxy.
PYTHON=/usr/bin/python3
"$PYTHON" -c 'import PyKCS11' 2>/dev/null || die "python3-pykcs11 is missing: run 'make deps'"
for side in direct proxy; do
	eval "$("$ROOT/softhsm-testenv/new-token" "$work/py-$side" mp 12345678 1234 2>/dev/null)" ||
		die "cannot create a SoftHSM2 token"
	echo "--- Python multiprocessing, $side"
	if [[ $side == direct ]]; then
		timeout 120 "$PYTHON" "$ROOT/tests/fork/multiprocessing_sign.py" "$SOFTHSM" 1234 4 | tee "$work/py-$side.out" || rc=$?
	else
		P11ISOLATE_MODULE=$SOFTHSM P11ISOLATE_LOG=$work/proxy.log timeout 120 \
			"$PYTHON" "$ROOT/tests/fork/multiprocessing_sign.py" "$LIB" 1234 4 | tee "$work/py-$side.out" || rc=$?
	fi
done

# p11-kit's proxy module (p11-kit-proxy.so) with libp11isolate.so as its only
# configured module, against SoftHSM2 as its only module: the prefork
# pattern through p11-kit, which initializes its modules again in a forked
# child. p11-kit reads no user configuration as root, and the test must not
# write /etc: a mount namespace of the test's own shows p11-kit a module
# directory with the one module file (unshare -m; -r -m when not root).
P11KIT_PROXY=$(dpkg -L p11-kit-modules 2>/dev/null | grep '/p11-kit-proxy\.so$' | head -n1 || true)
[[ -n $P11KIT_PROXY && -f $P11KIT_PROXY ]] || die "p11-kit-proxy.so is missing: run 'make deps' (apt-get install p11-kit-modules)"
if (($(id -u) == 0)); then ns=(unshare -m); else ns=(unshare -r -m); fi
mkdir -p "$work/p11kit-direct" "$work/p11kit-proxy"
echo "module: $SOFTHSM" >"$work/p11kit-direct/softhsm2.module"
echo "module: $LIB" >"$work/p11kit-proxy/p11isolate.module"
for side in direct proxy; do
	eval "$("$ROOT/softhsm-testenv/new-token" "$work/p11kit-tok-$side" prefork 12345678 1234 2>/dev/null)" ||
		die "cannot create a SoftHSM2 token"
	echo "--- p11-kit-proxy.so with $([[ $side == direct ]] && echo SoftHSM2 || echo libp11isolate.so) as its module"
	P11ISOLATE_MODULE=$SOFTHSM P11ISOLATE_LOG=$work/p11kit.log timeout 120 "${ns[@]}" sh -c \
		'mount --bind "$1" /usr/share/p11-kit/modules && if [ -d /etc/pkcs11/modules ]; then mount --bind "$1" /etc/pkcs11/modules; fi && shift && exec "$@"' \
		sh "$work/p11kit-$side" "$DRIVER" "$P11KIT_PROXY" 1234 4 | tee "$work/p11kit-$side.out" || rc=$?
done
if ! diff <(verdicts "$work/p11kit-direct.out") <(verdicts "$work/p11kit-proxy.out"); then
	echo "FAIL - through p11-kit-proxy.so, the workers' verdicts differ between SoftHSM2 and libp11isolate.so"
	rc=1
elif [[ $(verdicts "$work/p11kit-proxy.out" | grep -c '^ok') -ne 5 ]]; then
	echo "FAIL - through p11-kit-proxy.so, not every worker signed and verified"
	rc=1
else
	# libp11isolate.so answers a child's calls only after the child's own
	# C_Initialize: p11-kit made it, and each worker's host was its own.
	echo "ok   - through p11-kit-proxy.so: the same verdicts, every worker and the grandchild signed and verified"
fi

# Nothing of the parent's or the children's hosts is left once they exited.
sleep 1
hosts_after=$(pgrep -fc '^p11isolate-host' || true)
if ((hosts_after > hosts_before)); then
	echo "FAIL - $((hosts_after - hosts_before)) host processes left after the workers and the parent exited"
	pgrep -fa '^p11isolate-host' || true
	rc=1
else
	echo "ok   - no host process left after the workers and the parent exited"
fi
passed=$(cat "$work"/*.out | grep -c '^ok ' || true)
failed=$(cat "$work"/*.out | grep -c '^FAIL ' || true)
printf '%d passed, %d failed\n' "$passed" "$failed"
exit "$rc"
