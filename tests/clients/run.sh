#!/usr/bin/env bash
# tests/clients/run.sh: real PKCS#11 clients through build/libp11isolate.so,
# each checking a real result (a signature verified in software, a
# certificate verified):
#   gnutls.sh      GnuTLS p11tool + certtool
#   nss.sh         NSS modutil + certutil
#   java.sh        Java SunPKCS11: keytool + tests/clients/SignCheck.java
#   crypto11.sh    Go github.com/ThalesGroup/crypto11 (tests/clients/crypto11)
#   concurrent.sh  8 signing processes at once, 16 signing threads in one
#
# Environment:
#   P11ISOLATE_MODULE  the vendor module (default /usr/lib/softhsm/libsofthsm2.so)
#   SOFTHSM2_CONF      a SoftHSM2 configuration with an initialized token that
#                      every script uses; when unset, each script gets a
#                      throwaway token of its own
#   PIN                the token's user PIN (default 1234)
#   CLIENTS_ONLY       space-separated script names to run (default: all)
#   CLIENTS_TIMEOUT    seconds one script may run (default 600)
#
# Prints each script's output; the last line is "N passed, N failed" (N
# counts scripts), and the exit status is non-zero if any failed.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT=$PWD

export P11ISOLATE_MODULE=${P11ISOLATE_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
export PIN=${PIN:-1234}
TIMEOUT=${CLIENTS_TIMEOUT:-600}
SCRIPTS=(gnutls nss java crypto11 concurrent)

[[ -f build/libp11isolate.so ]] || {
	echo "run.sh: build/libp11isolate.so is missing: run 'make build/libp11isolate.so'" >&2
	exit 2
}
command -v timeout >/dev/null || {
	echo "run.sh: timeout is missing: run 'make deps' (Debian package coreutils)" >&2
	exit 2
}

passed=0
failed=0
failed_names=()
for name in "${SCRIPTS[@]}"; do
	if [[ -n ${CLIENTS_ONLY:-} && " $CLIENTS_ONLY " != *" $name "* ]]; then
		continue
	fi
	printf '\n=== %s\n' "$name"
	start=$(date +%s)
	rc=0
	timeout -k 10 "$TIMEOUT" bash "$ROOT/tests/clients/$name.sh" </dev/null 2>&1 || rc=$?
	end=$(date +%s)
	if ((rc == 124 || rc == 137)); then
		printf 'FAIL - %s: killed after %ss (timeout)\n' "$name" "$TIMEOUT"
	fi
	if ((rc == 0)); then
		printf -- '--- %s: PASS (%ss)\n' "$name" "$((end - start))"
		passed=$((passed + 1))
	else
		printf -- '--- %s: FAIL (exit status %s, %ss)\n' "$name" "$rc" "$((end - start))"
		failed=$((failed + 1))
		failed_names+=("$name")
	fi
done

printf '\n'
((failed == 0)) || printf 'failed: %s\n' "${failed_names[*]}"
printf '%d passed, %d failed\n' "$passed" "$failed"
((failed == 0))
