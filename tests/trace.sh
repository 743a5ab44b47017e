#!/usr/bin/env bash
# The trace setting on full pkcs11-tool runs (key generation, then
# pkcs11-tool --test, which signs, verifies, decrypts, digests and draws
# random bytes), each through OpenSC's pkcs11-spy wrapped around
# libp11isolate.so: the spy's record of the calls the client made is the
# reference. Checks: every line parses and has its fields; the functions,
# in order, are the spy's (but C_GetFunctionList / C_GetInterface, which
# the shim answers alone); each line's rv is the one the spy saw returned;
# the PINs appear nowhere, in text or hex; an attribute's value appears only
# for the attributes the trace may show. Needs P11ISOLATE_MODULE (SoftHSM2).
set -euo pipefail
cd "$(dirname "$0")/.."
: "${P11ISOLATE_MODULE:?}"
spy=/usr/lib/x86_64-linux-gnu/pkcs11-spy.so
for f in "$spy" "$(command -v pkcs11-tool || true)" "$(command -v python3 || true)"; do
	[[ -n $f && -e $f ]] || { echo "FAIL - pkcs11-tool, OpenSC's pkcs11-spy.so or python3 is missing: run 'make deps'"; exit 1; }
done
lib=$PWD/build/libp11isolate.so
work=$(mktemp -d "${TMPDIR:-/tmp}/p11isolate-trace.XXXXXX")
trap 'rm -rf "$work"' EXIT
# PINs no number in a trace line can contain by chance.
pin=TrPin-u7Qx3 so_pin=TrSo-k9Wv2
conf=$(softhsm-testenv/new-token "$work/token" trace "$so_pin" "$pin" 2>"$work/token.err") ||
	{ cat "$work/token.err"; echo "FAIL - cannot create a SoftHSM2 token"; exit 1; }
eval "$conf"
unset P11ISOLATE_LOG
export P11ISOLATE_TRACE=$work/trace.jsonl PKCS11SPY=$lib

head -c 1000 /dev/urandom >"$work/data"
head -c 32 /dev/urandom >"$work/hash"
# --test before the RSA key: SoftHSM2 refuses the OAEP label pkcs11-tool
# --test decrypts with, loaded directly too.
runs=(
	"--keypairgen --key-type EC:prime256v1 --label ec --id 02"
	"--keygen --key-type AES:32 --label aes --id 03"
	"--test"
	"--keypairgen --key-type rsa:2048 --label rsa --id 01"
	"--sign -m SHA256-RSA-PKCS --id 01 -i $work/data -o $work/sig.rsa"
	"--sign -m ECDSA --id 02 -i $work/hash -o $work/sig.ec"
	"--list-objects"
	"--change-pin --new-pin $pin"
)
fail=0
for i in "${!runs[@]}"; do
	: >"$work/trace.jsonl"
	# shellcheck disable=SC2086 # the run's options are words
	if ! PKCS11SPY_OUTPUT=$work/spy.$i.log pkcs11-tool --module "$spy" --login --pin "$pin" ${runs[$i]} \
		>"$work/out.$i" 2>&1; then
		cat "$work/out.$i"
		echo "FAIL - pkcs11-tool ${runs[$i]//$pin/PIN} through pkcs11-spy and libp11isolate.so failed"
		fail=1
		continue
	fi
	cp "$work/trace.jsonl" "$work/trace.$i.jsonl"
	python3 - "$work/spy.$i.log" "$work/trace.$i.jsonl" "$pin" "$so_pin" "${runs[$i]//$pin/PIN}" <<'EOF' || fail=1
import json, re, sys
spy_path, trace_path, pin, so_pin, what = sys.argv[1:]
ok = True
def bad(msg):
    global ok
    ok = False
    print(f"FAIL - {what}: {msg}")

spy = []
for m in re.finditer(r'^\d+: (C_\w+)\n.*?^Returned:\s+\d+ (\w+)', open(spy_path).read(), re.M | re.S):
    if m.group(1) not in ("C_GetFunctionList", "C_GetInterface", "C_GetInterfaceList"):
        spy.append((m.group(1), m.group(2)))
raw = open(trace_path).read()
lines = [json.loads(l) for l in raw.splitlines()]
for l in lines:
    for k in ("time", "pid", "host_pid", "fn", "args", "rv", "us"):
        if k not in l:
            bad(f"a line lacks {k}: {l}")
got = [(l["fn"], l["rv"]) for l in lines]
if got != spy:
    for i, (a, b) in enumerate(zip(spy, got)):
        if a != b:
            bad(f"call {i}: the spy saw {a}, the trace has {b}")
            break
    if len(spy) != len(got):
        bad(f"the spy saw {len(spy)} calls, the trace has {len(got)}")
if len(lines) < 5:
    bad(f"only {len(lines)} trace lines")
for secret in (pin, so_pin):
    for form in (secret, secret.encode().hex(), secret.encode().hex().upper()):
        if form in raw:
            bad("a PIN is in the trace")
shown = {"CKA_CLASS", "CKA_KEY_TYPE", "CKA_CERTIFICATE_TYPE", "CKA_MODULUS_BITS", "CKA_VALUE_LEN",
         "CKA_KEY_GEN_MECHANISM", "CKA_PRIME_BITS", "CKA_SUBPRIME_BITS", "CKA_LABEL", "CKA_ID", "CKA_EC_PARAMS",
         "CKA_TOKEN", "CKA_PRIVATE", "CKA_TRUSTED", "CKA_SENSITIVE", "CKA_ENCRYPT", "CKA_DECRYPT", "CKA_WRAP",
         "CKA_UNWRAP", "CKA_SIGN", "CKA_SIGN_RECOVER", "CKA_VERIFY", "CKA_VERIFY_RECOVER", "CKA_DERIVE",
         "CKA_EXTRACTABLE", "CKA_LOCAL", "CKA_NEVER_EXTRACTABLE", "CKA_ALWAYS_SENSITIVE", "CKA_MODIFIABLE",
         "CKA_COPYABLE", "CKA_DESTROYABLE", "CKA_ALWAYS_AUTHENTICATE", "CKA_WRAP_WITH_TRUSTED"}
values = 0
for l in lines:
    for k, v in l["args"].items():
        if k.startswith("template") and isinstance(v, list):
            for a in v:
                if "value" in a:
                    values += 1
                    if a["type"] not in shown:
                        bad(f"{l['fn']} shows the value of {a['type']}")
    if l["fn"] in ("C_Login", "C_InitPIN", "C_SetPIN", "C_InitToken") and "data" in l["args"]:
        bad(f"{l['fn']} shows its PIN argument")
fns = {l["fn"] for l in lines}
if ok:
    print(f"ok   - {what}: {len(lines)} calls, the spy's functions and codes in order ({', '.join(sorted(fns)[:8])}...), "
          f"{values} attribute values shown (all allowed), no PIN")
sys.exit(0 if ok else 1)
EOF
done
# The trace names mechanisms and attributes; a sign shows its output length.
if grep -q '"fn":"C_SignInit","args":{"session":[0-9]*,"mechanism":{"type":"CKM_' "$work"/trace.*.jsonl &&
	grep -q '"type":"CKA_CLASS","len":8,"value":"CKO_' "$work"/trace.*.jsonl &&
	grep -q '"fn":"C_Sign","args":{"session":[0-9]*,"data":{"len":[0-9]*},"out":{"buffer":true,"cap":[0-9]*,"len":[0-9]*}' "$work"/trace.*.jsonl; then
	echo "ok   - mechanisms, classes and output lengths are named and shown"
else
	echo "FAIL - the trace lacks named mechanisms, classes or C_Sign's output length"

	fail=1
fi
exit $fail
