#!/usr/bin/env bash
# tests/bench/large.sh PIN [large|hol|all]: builds build/tests/large from
# large.c if needed and runs it against build/libp11isolate.so and SoftHSM2
# loaded directly, on the token of SOFTHSM2_CONF (tests/run.sh's scenario
# makes one). P11ISOLATE_MODULE must name SoftHSM2.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT=$PWD
SRC=$ROOT/tests/bench/large.c
BIN=$ROOT/build/tests/large
if [[ ! -x $BIN || $SRC -nt $BIN ]]; then
	mkdir -p "$ROOT/build/tests"
	gcc -std=gnu11 -O2 -g -Wall -Wextra -Werror -I/usr/include/p11-kit-1 -o "$BIN" "$SRC" -ldl -lpthread -lm
fi
exec "$BIN" "$ROOT/build/libp11isolate.so" "${P11TEST_SOFTHSM:-/usr/lib/softhsm/libsofthsm2.so}" "$@"
