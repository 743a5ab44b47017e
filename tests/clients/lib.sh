# shellcheck shell=bash
# tests/clients/lib.sh: sourced by the client scripts in tests/clients/.
#
# It puts the shell at the repository root and sets, for the script:
#   PROXY   absolute path of build/libp11isolate.so (p11-kit and NSS resolve a
#           relative module path in their own directories, not ours)
#   VENDOR  the vendor module the proxy loads ($P11ISOLATE_MODULE, default
#           SoftHSM2's); cleanup and control runs use it directly
#   LABEL   the label of the token the checks use: $TOKEN_LABEL, else the first
#           initialized token of $SOFTHSM2_CONF; when SOFTHSM2_CONF is unset a
#           throwaway token is made under $tmp
#   PIN     the token's user PIN ($PIN, default 1234)
#   tmp     a temporary directory, removed on exit
#   run_id  a random hex string that names this run's objects
# and the functions ok, skip, fail, details, run, need, finish.
#
# Each check prints "ok   - ...", "skip - ..." or "FAIL - ..."; finish exits
# non-zero if any check failed. A missing tool stops the script with status 2
# and a message naming the Debian package (`make deps` installs them).

set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT=$PWD
PROXY=$ROOT/build/libp11isolate.so
PIN=${PIN:-1234}
SO_PIN=${SO_PIN:-12345678}
# Seconds one client command may run before it is killed (a hung proxy must
# fail a check, not the whole run).
CLIENT_TIMEOUT=${CLIENT_TIMEOUT:-180}
export P11ISOLATE_MODULE=${P11ISOLATE_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
VENDOR=$P11ISOLATE_MODULE
SCRIPT=${0##*/}

failures=0
ok() { printf 'ok   - %s\n' "$*"; }
skip() { printf 'skip - %s\n' "$*"; }
fail() {
	printf 'FAIL - %s\n' "$*"
	failures=$((failures + 1))
}
# details FILE [N]: the last N lines of a command's output, as comments.
details() {
	[[ -f $1 ]] || return 0
	tail -n "${2:-8}" "$1" | awk '{ print "#   " $0 }'
}
# run NAME CMD...: runs CMD (with a deadline, no stdin) with its stdout and
# stderr in $tmp/NAME.out. (The subshell puts bash's own report of a crash,
# "Segmentation fault ...", into that file too.)
run() {
	local name=$1
	shift
	(
		timeout -k 5 "$CLIENT_TIMEOUT" "$@"
		exit $?
	) >"$tmp/$name.out" 2>&1 </dev/null
}

# need TOOL PACKAGE: stops the script if TOOL is not installed.
need() {
	command -v "$1" >/dev/null 2>&1 && return 0
	printf 'FAIL - %s: %s is missing: run '\''make deps'\'' (Debian package %s)\n' "$SCRIPT" "$1" "$2" >&2
	exit 2
}

need timeout coreutils
need openssl openssl
need pkcs11-tool opensc
[[ -f $PROXY ]] || {
	echo "FAIL - $PROXY is missing: run 'make build/libp11isolate.so'" >&2
	exit 2
}
[[ -f $VENDOR ]] || {
	echo "FAIL - P11ISOLATE_MODULE=$VENDOR does not exist: run 'make deps' (Debian package softhsm2)" >&2
	exit 2
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/p11isolate-${SCRIPT%.sh}.XXXXXX")
# shellcheck disable=SC2034 # used by the scripts that source this file
run_id=$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')

# Cleanup hooks run on exit (in reverse order of registration), then $tmp goes.
cleanup_hooks=()
on_exit() { cleanup_hooks+=("$(printf '%q ' "$@")"); }
lib_cleanup() {
	local rc=$? i
	for ((i = ${#cleanup_hooks[@]} - 1; i >= 0; i--)); do
		eval "${cleanup_hooks[i]}" >/dev/null 2>&1 || true
	done
	rm -rf -- "$tmp"
	exit "$rc"
}
trap lib_cleanup EXIT
trap 'exit 130' INT TERM

if [[ -z ${SOFTHSM2_CONF:-} ]]; then
	need softhsm2-util softhsm2
	eval "$("$ROOT/softhsm-testenv/new-token" "$tmp/token" "p11c-${SCRIPT%.sh}" "$SO_PIN" "$PIN" 2>"$tmp/new-token.err")" || {
		cat "$tmp/new-token.err" >&2
		echo "FAIL - cannot create a SoftHSM2 token (softhsm-testenv/new-token)" >&2
		exit 2
	}
	export SOFTHSM2_CONF
fi

# Direct calls to the vendor module (never through the proxy).
vendor() { timeout -k 5 "$CLIENT_TIMEOUT" pkcs11-tool --module "$VENDOR" "$@" </dev/null; }

LABEL=${TOKEN_LABEL:-}
if [[ -z $LABEL ]]; then
	LABEL=$(vendor -T 2>/dev/null | sed -n 's/^ *token label *: //p' || true)
	LABEL=${LABEL%%$'\n'*}
fi
if [[ -z $LABEL ]]; then
	echo "FAIL - no initialized token in SOFTHSM2_CONF=$SOFTHSM2_CONF (see softhsm-testenv/new-token)"
	exit 1
fi

# vendor_delete TYPE (--id ID | --label LABEL): deletes every object of TYPE
# that matches, with the vendor module directly, so that a broken proxy
# cannot leave objects behind.
vendor_delete() {
	local type=$1 i
	shift
	for ((i = 0; i < 16; i++)); do
		vendor --token-label "$LABEL" --login --pin "$PIN" --delete-object --type "$type" "$@" >/dev/null 2>&1 || break
	done
}

# spy_init CMD...: runs CMD with OpenSC's pkcs11-spy.so between the client and
# the proxy; CMD must name the module as "$SPY". Prints what C_Initialize got
# and returned, e.g. "flags 3 (CKF_LIBRARY_CANT_CREATE_OS_THREADS
# CKF_OS_LOCKING_OK) -> CKR_NEED_TO_CREATE_THREADS". Prints nothing when
# pkcs11-spy.so is not installed.
SPY=
for f in /usr/lib/*/pkcs11-spy.so /usr/lib/*/pkcs11/pkcs11-spy.so /usr/lib/pkcs11-spy.so /usr/lib64/pkcs11-spy.so; do
	[[ -f $f ]] && { SPY=$f; break; }
done
spy_init() {
	[[ -n $SPY ]] || return 0
	local log=$tmp/spy.$RANDOM.log
	PKCS11SPY=$PROXY PKCS11SPY_OUTPUT=$log timeout -k 5 "$CLIENT_TIMEOUT" "$@" >/dev/null 2>&1 </dev/null || true
	[[ -f $log ]] || return 0
	awk '
		/^[0-9]+: C_Initialize$/ { on = 1; args = ""; next }
		on && /pInitArgs = \(nil\)/ { args = "NULL args" }
		on && /flags:/ { args = "flags=" $2 }
		on && /^ +CKF_/ { args = args (args ~ /\(/ ? "|" : " (") $1 }
		on && /^Returned:/ && args ~ /\(/ { args = args ")" }
		on && /^Returned:/ { printf "%s%s -> %s", sep, args, $3; sep = "; then "; on = 0 }
		END { if (sep != "") print "" }
	' "$log"
}

# finish: the script's last line and exit status.
finish() {
	if ((failures)); then
		echo "# $SCRIPT: $failures check(s) failed"
		exit 1
	fi
	echo "# $SCRIPT: all checks passed"
}

echo "# $SCRIPT: proxy $PROXY, vendor module $VENDOR, token \"$LABEL\" (SOFTHSM2_CONF=$SOFTHSM2_CONF)"
