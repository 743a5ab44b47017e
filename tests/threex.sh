#!/usr/bin/env bash
# tests/threex.sh: PKCS#11 3.x clients through libp11isolate.so.
#
#  1. pkcs11-tool (OpenSC calls C_GetInterface when a module exports it)
#     through OpenSC's pkcs11-spy wrapped around the proxy, with NSS's
#     softokn (a 3.0 module) behind it: the spy shows C_GetInterface
#     answered, C_GetInfo's cryptokiVersion is softokn's 3.0, and the
#     mechanism list has AES-GCM with softokn's message-encryption flags.
#  2. tests/mod32/check.c, a client that asks for the "PKCS 11" 3.2 and 3.0
#     interfaces by name and version and exercises every 3.2 function,
#     directly against the 3.2 test module (tests/mod32) and through the
#     proxy: both must pass the same checks.
#
# Needs build/libp11isolate.so and build/tests/libmod32.so (make
# integration builds them); softokn comes with libnss3, certutil with
# libnss3-tools, pkcs11-spy with opensc-pkcs11 (make deps).
set -euo pipefail

root=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)
lib=$root/build/libp11isolate.so
mod32=$root/build/tests/libmod32.so
softokn=/usr/lib/x86_64-linux-gnu/libsoftokn3.so
spy=/usr/lib/x86_64-linux-gnu/pkcs11-spy.so

fail=0
check() { # check DESCRIPTION CMD...: one line per check
	if "${@:2}"; then
		printf 'ok   %s\n' "$1"
	else
		printf 'FAIL %s\n' "$1"
		fail=1
	fi
}
for f in "$lib" "$mod32" "$softokn" "$spy"; do
	[[ -f $f ]] || { echo "threex: $f missing (make integration; make deps installs libnss3 and opensc-pkcs11)" >&2; exit 2; }
done
command -v certutil >/dev/null || { echo "threex: certutil missing: make deps (libnss3-tools)" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/p11threex.XXXXXX")
trap 'rm -rf -- "$work"' EXIT

# 1. pkcs11-tool, softokn behind the proxy.
mkdir "$work/nssdb"
printf 'pw\n' >"$work/pw"
certutil -N -d "sql:$work/nssdb" -f "$work/pw" >/dev/null
export P11ISOLATE_MODULE=$softokn
export P11ISOLATE_VENDOR_RESERVED="configdir='sql:$work/nssdb' certPrefix='' keyPrefix='' secmod='secmod.db' flags="
PKCS11SPY=$lib PKCS11SPY_OUTPUT=$work/spy.log pkcs11-tool --module "$spy" -I >"$work/info.out" 2>&1 || true
PKCS11SPY=$lib PKCS11SPY_OUTPUT=$work/spy-m.log pkcs11-tool --module "$spy" -M >"$work/mechs.out" 2>&1 || true
check "pkcs11-tool asked the proxy for an interface (C_GetInterface in the spy's log)" \
	grep -q '^[0-9]*: C_GetInterface$' "$work/spy.log"
check "C_GetInfo through the 3.0 interface: cryptokiVersion 3.0 (softokn's)" \
	grep -q 'Cryptoki version 3.0' "$work/info.out"
check "the mechanism list has AES-GCM with message encryption and decryption (flags 0x6)" \
	grep -q 'AES-GCM.*other flags=0x6' "$work/mechs.out"
unset P11ISOLATE_MODULE P11ISOLATE_VENDOR_RESERVED

# 2. The 3.2 client, directly and through the proxy.
gcc -std=gnu11 -O2 -Wall -Wextra -Werror -I/usr/include/p11-kit-1 -I"$root/cshim" \
	-o "$work/check" "$root/tests/mod32/check.c" "$root/cshim/sha256.c" -ldl
check "tests/mod32/check.c directly against the 3.2 module" "$work/check" "$mod32"
check "tests/mod32/check.c through the proxy" env P11ISOLATE_MODULE="$mod32" "$work/check" "$lib" --proxy

# 3. The same run traced: the 3.x calls are named, their arguments by kind,
# and neither the PIN nor C_LoginUser's user name appears.
check "tests/mod32/check.c through the proxy, traced" \
	env P11ISOLATE_MODULE="$mod32" P11ISOLATE_TRACE="$work/trace.json" "$work/check" "$lib" --proxy
check "the trace: every line JSON; the 3.x calls and mechanisms named; no PIN, no user name" python3 - "$work/trace.json" <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
fns = {l["fn"] for l in lines}
want = {"C_EncapsulateKey", "C_DecapsulateKey", "C_EncryptMessage", "C_SignMessage", "C_VerifySignature",
        "C_AsyncComplete", "C_AsyncJoin", "C_LoginUser", "C_SessionCancel", "C_WrapKeyAuthenticated"}
missing = want - fns
text = open(sys.argv[1]).read()
ok = not missing and "CKM_ML_KEM" in text and "CKR_PENDING" in text and "alice" not in text and '"1234"' not in text
if not ok:
    print(f"missing {sorted(missing)}; ML_KEM named: {'CKM_ML_KEM' in text}; CKR_PENDING: {'CKR_PENDING' in text}; "
          f"user name: {'alice' in text}", file=sys.stderr)
sys.exit(0 if ok else 1)
PY

((fail == 0)) && echo "threex: all checks passed"
exit "$fail"
