#!/usr/bin/env bash
# When executable memfds are refused (vm.memfd_noexec=2), the proxy runs the
# host binary installed beside the library, verified against the build hash.
# vm.memfd_noexec is per pid namespace: a fresh one keeps the change local.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${P11ISOLATE_MODULE:?}" "${SOFTHSM2_CONF:?}"
if ! unshare -pf --mount-proc true 2>/dev/null; then
	echo "skip - cannot make a pid namespace here (unshare -pf): memfd fallback not tested"
	exit 0
fi
fail=0
out=$(unshare -pf --mount-proc sh -c 'echo 2 > /proc/sys/vm/memfd_noexec && pkcs11-tool --module build/libp11isolate.so -L' 2>&1) || true
if grep -q "token label" <<<"$out"; then
	echo "ok   - vm.memfd_noexec=2: the host runs from build/p11isolate-host and lists the token"
else
	echo "FAIL - vm.memfd_noexec=2: no token listed: $out"; fail=1
fi
# A tampered host binary beside the library is refused with a clear line.
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
cp build/libp11isolate.so "$dir/"; cp build/p11isolate-host "$dir/"; printf 'x' >> "$dir/p11isolate-host"
out=$(unshare -pf --mount-proc sh -c "echo 2 > /proc/sys/vm/memfd_noexec && pkcs11-tool --module $dir/libp11isolate.so -L" 2>&1) || true
if grep -q "SHA-256 is" <<<"$out" && grep -q CKR_GENERAL_ERROR <<<"$out"; then
	echo "ok   - a tampered host binary is refused before exec: $(grep -o 'refusing to run it' <<<"$out")"
else
	echo "FAIL - tampered host binary not refused: $out"; fail=1
fi
exit $fail
