#!/usr/bin/env bash
# tests/clients/crypto11.sh: the Go client github.com/ThalesGroup/crypto11
# through build/libp11isolate.so. Builds tests/clients/crypto11 into
# build/tests/crypto11-check and runs it as a process of its own (the library
# is never loaded into a `go test` process): ECDSA P-256 and RSA-2048 key
# pairs generated on the token, signatures verified with crypto/ecdsa and
# crypto/rsa, key lookup, and AES-256-GCM seal/open through the token
# (including a tampered ciphertext, which must not open).
#
# Environment: see tests/clients/lib.sh (P11ISOLATE_MODULE, SOFTHSM2_CONF, PIN);
# GO (default: go, else /usr/local/go/bin/go).
set -euo pipefail
# shellcheck source=tests/clients/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/clients/build-crypto11.sh
source "$ROOT/tests/clients/build-crypto11.sh"

KEYS=p11c-c11-$run_id
# The program's objects are deleted with the vendor module directly.
on_exit timeout 60 "$C11" -lib "$VENDOR" -token "$LABEL" -pin "$PIN" -mode delete -label "$KEYS"

rc=0
timeout -k 5 "$CLIENT_TIMEOUT" "$C11" -lib "$PROXY" -token "$LABEL" -pin "$PIN" -mode check -label "$KEYS" -keep \
	>"$tmp/check.out" 2>&1 </dev/null || rc=$?
# crypto11-check prints ok/FAIL lines of its own: they count here.
grep -E '^(ok  |FAIL) - ' "$tmp/check.out" || true
n=$(grep -c '^FAIL - ' "$tmp/check.out" || true)
failures=$((failures + n))
if ((rc != 0 && n == 0)); then
	fail "crypto11-check -mode check through the proxy exits with status 0 (it exited with $rc)"
	details "$tmp/check.out" 12
fi

# A control run of the same checks with the vendor module itself tells a
# proxy failure from a crypto11 or vendor one.
if ((failures)); then
	timeout -k 5 "$CLIENT_TIMEOUT" "$C11" -lib "$VENDOR" -token "$LABEL" -pin "$PIN" -mode check -label "$KEYS-direct" \
		>"$tmp/control.out" 2>&1 </dev/null || true
	echo "# control: the same crypto11 checks with the vendor module directly: $(grep -c '^ok ' "$tmp/control.out" || true) ok, $(grep -c '^FAIL ' "$tmp/control.out" || true) FAIL"
	grep '^FAIL ' "$tmp/control.out" | sed 's/^/#   control: /' || true
fi

finish
