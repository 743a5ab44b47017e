#!/usr/bin/env bash
# tests/bench/run.sh [--quick] [bench options]: benchmark libp11isolate.so
# against SoftHSM2 loaded directly and against p11-kit's RPC, in one run.
#
#   direct  /usr/lib/softhsm/libsofthsm2.so loaded into the bench process
#   proxy   build/libp11isolate.so with P11ISOLATE_MODULE=SoftHSM2
#   p11kit  p11-kit's RPC: the client module p11-kit-client.so talking to
#           `p11-kit server --provider SoftHSM2 pkcs11:token=<label>`.
#           The server runs in the foreground as our child, listening on a
#           unix socket under XDG_RUNTIME_DIR (pointed at the throwaway
#           directory); it prints P11_KIT_SERVER_ADDRESS (what the client
#           module reads). Per connection it starts p11-kit-remote, which
#           serves the provider over p11-kit's RPC (what `p11-kit remote`
#           does on stdio), so the bench sees
#             bench -> p11-kit-client.so -> unix socket -> p11-kit-remote -> SoftHSM2
#           The p11kit path is left out, with a note, when p11-kit or its
#           client module is missing (apt-get install p11-kit p11-kit-modules)
#           or the server does not start.
#
# All three use one throwaway SoftHSM2 token (session keys only). Builds
# build/tests/bench if it is missing or older than bench.c; expects
# build/libp11isolate.so (make build/libp11isolate.so). Arguments are passed
# to the bench (--quick, --reps N, --time SEC). The exit status is non-zero
# only if the benchmark could not run; missed targets are reported, not fatal.
#
# Environment (optional):
#   BENCH_SOFTHSM       SoftHSM2 module (default /usr/lib/softhsm/libsofthsm2.so)
#   BENCH_P11KIT_CLIENT p11-kit client module (default: found via dpkg or the
#                       usual multiarch path)
#   BENCH_NO_P11KIT     set to leave the p11kit path out
#   BENCH_KEEP          set to keep the temporary directory
#   BENCH_LOAD          set to run a CPU-bound loop on every CPU during the
#                       benchmark (a loaded machine)
#   BENCH_BASELINE      another build of libp11isolate.so to run beside this
#                       one, labelled "before" (make bench-baseline builds
#                       the last commit's)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT=$PWD

die() {
	printf 'bench/run.sh: %s\n' "$*" >&2
	exit 2
}
note() {
	printf 'bench/run.sh: %s\n' "$*" >&2
}

LIB=$ROOT/build/libp11isolate.so
BENCH=$ROOT/build/tests/bench
SRC=$ROOT/tests/bench/bench.c
SOFTHSM=${BENCH_SOFTHSM:-/usr/lib/softhsm/libsofthsm2.so}
LABEL=bench
PIN=1234
SO_PIN=12345678

[[ -f $LIB ]] || die "$LIB is missing: run 'make build/libp11isolate.so'"
[[ -f $SOFTHSM ]] || die "SoftHSM2 module $SOFTHSM is missing (apt-get install softhsm2)"

if [[ ! -x $BENCH || $SRC -nt $BENCH ]]; then
	mkdir -p "$ROOT/build/tests"
	note "building $BENCH"
	# bench.c is kept clean under -Wall -Wextra -Werror; not imposed here so
	# that a newer compiler's new warning cannot stop a benchmark.
	gcc -std=gnu11 -O2 -g -I/usr/include/p11-kit-1 -o "$BENCH" "$SRC" -ldl -lpthread -lm
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/p11isolate-bench.XXXXXX")
server_pid=
load_pids=()
cleanup() {
	((${#load_pids[@]} == 0)) || kill "${load_pids[@]}" 2>/dev/null || true
	if [[ -n $server_pid ]]; then
		kill "$server_pid" 2>/dev/null || true
		wait "$server_pid" 2>/dev/null || true
	fi
	if [[ -n ${BENCH_KEEP:-} ]]; then
		note "kept $work"
	else
		rm -rf -- "$work"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Nothing from the caller's environment configures the modules but this.
unset P11ISOLATE_MODULE P11ISOLATE_TIMEOUT P11ISOLATE_KEYGEN_TIMEOUT P11ISOLATE_LOG \
	P11ISOLATE_CONFIG P11ISOLATE_HOST P11ISOLATE_VENDOR_RESERVED \
	P11_KIT_SERVER_ADDRESS P11_KIT_SERVER_PID SOFTHSM2_CONF

eval "$("$ROOT/softhsm-testenv/new-token" "$work/token" "$LABEL" "$SO_PIN" "$PIN" 2>"$work/new-token.log")" ||
	{ cat "$work/new-token.log" >&2; die "cannot create the token"; }
export SOFTHSM2_CONF
export BENCH_PIN=$PIN BENCH_TOKEN=$LABEL
export P11ISOLATE_MODULE=$SOFTHSM

paths=("$SOFTHSM=direct" "$LIB=proxy")
if [[ -n ${BENCH_BASELINE:-} ]]; then
	[[ -f $BENCH_BASELINE ]] || die "BENCH_BASELINE=$BENCH_BASELINE does not exist"
	paths+=("$BENCH_BASELINE=before")
fi

# ---- p11-kit: client module + server ----
p11kit_client=${BENCH_P11KIT_CLIENT:-}
if [[ -z $p11kit_client ]]; then
	p11kit_client=$(dpkg -L p11-kit-modules 2>/dev/null | grep '/p11-kit-client\.so$' | head -n1 || true)
	[[ -n $p11kit_client ]] || p11kit_client=/usr/lib/$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)/pkcs11/p11-kit-client.so
fi
p11kit_note=
if [[ -n ${BENCH_NO_P11KIT:-} ]]; then
	p11kit_note="BENCH_NO_P11KIT is set"
elif ! command -v p11-kit >/dev/null 2>&1; then
	p11kit_note="p11-kit is not installed (apt-get install p11-kit p11-kit-modules)"
elif [[ ! -f $p11kit_client ]]; then
	p11kit_note="client module $p11kit_client is missing (apt-get install p11-kit-modules)"
else
	# The server puts its socket in $XDG_RUNTIME_DIR/p11-kit/; without a
	# runtime directory it refuses to start.
	export XDG_RUNTIME_DIR=$work/run
	mkdir -m 700 "$XDG_RUNTIME_DIR"
	# -f: the server stays our child, so it is killed and reaped on exit
	# (as a daemon it would be reparented, and left a zombie where init
	# does not reap). It prints its settings, then serves.
	p11-kit server -f --sh --provider "$SOFTHSM" "pkcs11:token=$LABEL" \
		>"$work/p11kit-server.out" 2>"$work/p11kit-server.log" &
	server_pid=$!
	addr=
	for _ in $(seq 100); do
		# Output: NAME=value; export NAME;  (one line each)
		addr=$(sed -n 's/^P11_KIT_SERVER_ADDRESS=\([^;]*\);.*/\1/p' "$work/p11kit-server.out")
		[[ -z $addr ]] || break
		kill -0 "$server_pid" 2>/dev/null || break
		sleep 0.05
	done
	sock=${addr#unix:path=}
	if [[ -n $addr && -S $sock ]]; then
		export P11_KIT_SERVER_ADDRESS=$addr P11_KIT_SERVER_PID=$server_pid
		paths+=("$p11kit_client=p11kit")
		note "p11-kit server pid $server_pid at $addr"
	else
		p11kit_note="p11-kit server did not start: $(cat "$work/p11kit-server.out" "$work/p11kit-server.log")"
	fi
fi
[[ -z $p11kit_note ]] || echo "note: p11kit path omitted: $p11kit_note"

if [[ -n ${BENCH_LOAD:-} ]]; then
	for _ in $(seq "$(nproc)"); do
		sh -c 'while :; do :; done' &
		load_pids+=($!)
	done
	echo "note: a CPU-bound loop runs on each of $(nproc) CPUs (BENCH_LOAD)"
fi
# Not exec: the trap must kill the server and remove the token afterwards.
"$BENCH" "$@" "${paths[@]}"
