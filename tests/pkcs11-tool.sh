#!/usr/bin/env bash
# tests/pkcs11-tool.sh: acceptance test of build/libp11isolate.so with real
# clients (OpenSC's pkcs11-tool, openssl and OpenSSL's pkcs11 engine).
#
# The caller exports:
#   P11ISOLATE_MODULE  the vendor module the proxy loads (normally
#                      /usr/lib/softhsm/libsofthsm2.so)
#   SOFTHSM2_CONF      a SoftHSM2 configuration with an initialized token, e.g.
#                      eval "$(softhsm-testenv/new-token DIR LABEL 12345678 1234)"
#   PIN                optional, the token's user PIN (default 1234)
#
# Each check prints "ok   - ...", "skip - ..." or "FAIL - ..."; the script
# exits non-zero if any check failed. The objects it creates on the token
# carry a per-run id and label and are deleted again at the end.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

: "${P11ISOLATE_MODULE:?export P11ISOLATE_MODULE=/path/of/the/vendor/module.so (e.g. /usr/lib/softhsm/libsofthsm2.so)}"
: "${SOFTHSM2_CONF:?export SOFTHSM2_CONF (see softhsm-testenv/new-token)}"
PIN=${PIN:-1234}
# The host sees only allowlisted variables; faultmod is set up by FAULTMOD_*.
export P11ISOLATE_ENV=${P11ISOLATE_ENV:-FAULTMOD_*}

PROXY=build/libp11isolate.so
FAULTMOD=$PWD/build/tests/libfaultmod.so
VENDOR=$P11ISOLATE_MODULE
for f in "$PROXY" "$FAULTMOD"; do
	[[ -f $f ]] || { echo "FAIL - $f is missing: run make build/libp11isolate.so build/tests/libfaultmod.so"; exit 1; }
done
[[ -f $VENDOR ]] || { echo "FAIL - P11ISOLATE_MODULE=$VENDOR does not exist"; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/p11isolate-pkcs11-tool.XXXXXX")
run_id=$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')
EC_ID=${run_id}01 RSA_ID=${run_id}02 AES_ID=${run_id}03 AESX_ID=${run_id}04
EC_LABEL=p11t-ec-$run_id RSA_LABEL=p11t-rsa-$run_id

failures=0
ok() { printf 'ok   - %s\n' "$*"; }
skip() { printf 'skip - %s\n' "$*"; }
fail() {
	printf 'FAIL - %s\n' "$*"
	failures=$((failures + 1))
}
# details FILE: the tail of a command's output, as comments under a FAIL.
details() { tail -n "${2:-8}" "$1" | sed 's/^/#   /'; }

# run NAME CMD...: runs CMD with its stdout and stderr in $tmp/NAME.out.
run() {
	local name=$1
	shift
	"$@" >"$tmp/$name.out" 2>&1
}

# Direct calls to the vendor module, and calls through the proxy.
vendor() { pkcs11-tool --module "$VENDOR" "$@"; }
proxy() { pkcs11-tool --module "$PROXY" "$@"; }

cleanup() {
	local rc=$?
	# Remove this run's objects with the vendor module directly, so that a
	# broken proxy cannot leave them behind.
	if [[ -n ${LABEL:-} ]]; then
		local id type
		for id in "$EC_ID:privkey" "$EC_ID:pubkey" "$RSA_ID:privkey" "$RSA_ID:pubkey" \
			"$AES_ID:secrkey" "$AESX_ID:secrkey"; do
			type=${id#*:}
			vendor --token-label "$LABEL" -l -p "$PIN" --delete-object \
				--type "$type" --id "${id%%:*}" >/dev/null 2>&1 || true
		done
	fi
	rm -rf "$tmp"
	exit "$rc"
}
trap cleanup EXIT

echo "# proxy $PROXY, vendor module $VENDOR"

# --- slots, token and mechanisms --------------------------------------------

LABEL=$(vendor -T 2>/dev/null | sed -n 's/^ *token label *: //p' | head -n1)
if [[ -z $LABEL ]]; then
	echo "FAIL - no initialized token in SOFTHSM2_CONF=$SOFTHSM2_CONF (see softhsm-testenv/new-token)"
	exit 1
fi
P=(--token-label "$LABEL")         # pick the token's slot in every call
L=("${P[@]}" --login --pin "$PIN") # and log in

if run list proxy -L && grep -q "token label *: $LABEL\$" "$tmp/list.out"; then
	ok "-L through the proxy lists the token \"$LABEL\""
else
	fail "-L through the proxy lists the token \"$LABEL\""
	details "$tmp/list.out"
fi

vendor -L >"$tmp/list.vendor" 2>/dev/null || true
if diff -u "$tmp/list.vendor" <(proxy -L 2>/dev/null) >"$tmp/list.diff"; then
	ok "-L output is identical through the proxy and directly"
else
	fail "-L output is identical through the proxy and directly"
	details "$tmp/list.diff" 20
fi

vendor "${P[@]}" -M >"$tmp/mech.vendor" 2>/dev/null || true
if run mech proxy "${P[@]}" -M && [[ -s $tmp/mech.vendor ]] &&
	diff -u "$tmp/mech.vendor" <(proxy "${P[@]}" -M 2>/dev/null) >"$tmp/mech.diff"; then
	ok "-M lists the same $(grep -c '^  ' "$tmp/mech.vendor") mechanisms through the proxy as directly"
else
	fail "-M lists the same mechanisms through the proxy as directly"
	details "$tmp/mech.diff" 20
	details "$tmp/mech.out" 4
fi

has_mech() { grep -q "^  $1," "$tmp/mech.vendor"; }

# --- EC P-256 -----------------------------------------------------------------

head -c 3000 /dev/urandom >"$tmp/data"
openssl dgst -sha256 -binary "$tmp/data" >"$tmp/data.sha256"

if run ec-gen proxy "${L[@]}" --keypairgen --key-type EC:prime256v1 --id "$EC_ID" --label "$EC_LABEL"; then
	ok "EC P-256 key pair generated through the proxy"
else
	fail "EC P-256 key pair generated through the proxy"
	details "$tmp/ec-gen.out"
fi

if run ec-pub proxy "${P[@]}" --read-object --type pubkey --id "$EC_ID" -o "$tmp/ec.pub.der" &&
	run ec-pem openssl pkey -pubin -inform DER -in "$tmp/ec.pub.der" -out "$tmp/ec.pub.pem" &&
	grep -q 'prime256v1\|P-256' <(openssl pkey -pubin -in "$tmp/ec.pub.pem" -noout -text 2>&1); then
	ok "EC public key exported (--read-object --type pubkey) and read by openssl as a P-256 key"
else
	fail "EC public key exported (--read-object --type pubkey) and read by openssl as a P-256 key"
	details "$tmp/ec-pub.out"
	[[ -f $tmp/ec-pem.out ]] && details "$tmp/ec-pem.out"
fi

# ECDSA-SHA256 hashes inside the token. A vendor without it (SoftHSM2 2.6
# offers only raw CKM_ECDSA) gets the SHA-256 digest signed with CKM_ECDSA,
# which is the same ECDSA-with-SHA256 signature.
if has_mech ECDSA-SHA256; then
	ec_mech=ECDSA-SHA256 ec_in=$tmp/data
else
	ec_mech=ECDSA ec_in=$tmp/data.sha256
	if ! run ec-sha256 proxy "${L[@]}" --sign -m ECDSA-SHA256 --id "$EC_ID" -i "$tmp/data" -o "$tmp/x.sig" &&
		grep -q 'C_SignInit failed: rv = CKR_MECHANISM_INVALID' "$tmp/ec-sha256.out"; then
		ok "ECDSA-SHA256 is not a mechanism of the vendor: the proxy passes on its CKR_MECHANISM_INVALID (signing the SHA-256 digest with ECDSA instead)"
	else
		fail "ECDSA-SHA256 is not a mechanism of the vendor: the proxy passes on its CKR_MECHANISM_INVALID"
		details "$tmp/ec-sha256.out"
	fi
fi

if run ec-sign proxy "${L[@]}" --sign -m "$ec_mech" --signature-format openssl --id "$EC_ID" \
	-i "$ec_in" -o "$tmp/ec.sig" &&
	run ec-verify openssl dgst -sha256 -verify "$tmp/ec.pub.pem" -signature "$tmp/ec.sig" "$tmp/data" &&
	grep -qx 'Verified OK' "$tmp/ec-verify.out"; then
	ok "ECDSA P-256/SHA-256 signature made through the proxy ($ec_mech) verifies with openssl dgst -verify"
else
	fail "ECDSA P-256/SHA-256 signature made through the proxy ($ec_mech) verifies with openssl dgst -verify"
	details "$tmp/ec-sign.out"
	[[ -f $tmp/ec-verify.out ]] && details "$tmp/ec-verify.out"
fi

cp "$tmp/data" "$tmp/data.tampered"
printf '\x55' | dd of="$tmp/data.tampered" bs=1 seek=1000 conv=notrunc status=none
if cmp -s "$tmp/data" "$tmp/data.tampered"; then
	printf '\xaa' | dd of="$tmp/data.tampered" bs=1 seek=1000 conv=notrunc status=none
fi
if ! run ec-tampered openssl dgst -sha256 -verify "$tmp/ec.pub.pem" -signature "$tmp/ec.sig" "$tmp/data.tampered" &&
	grep -q 'Verification failure' "$tmp/ec-tampered.out"; then
	ok "openssl rejects the ECDSA signature on a tampered copy of the data"
else
	fail "openssl rejects the ECDSA signature on a tampered copy of the data"
	details "$tmp/ec-tampered.out"
fi

# Sanity: the same signing directly with the vendor module and through the
# proxy; both signatures verify with openssl, and each side's pkcs11-tool
# --verify accepts the other's signature.
if run ec-direct vendor "${L[@]}" --sign -m "$ec_mech" --signature-format openssl --id "$EC_ID" \
	-i "$ec_in" -o "$tmp/ec.direct.sig" &&
	run ec-direct-verify openssl dgst -sha256 -verify "$tmp/ec.pub.pem" -signature "$tmp/ec.direct.sig" "$tmp/data" &&
	run ec-proxy-verify openssl dgst -sha256 -verify "$tmp/ec.pub.pem" -signature "$tmp/ec.sig" "$tmp/data"; then
	ok "the same ECDSA signing directly with the vendor module and through the proxy: both verify with openssl"
else
	fail "the same ECDSA signing directly with the vendor module and through the proxy: both verify with openssl"
	details "$tmp/ec-direct.out"
	[[ -f $tmp/ec-direct-verify.out ]] && details "$tmp/ec-direct-verify.out"
fi
if run ec-xverify1 proxy "${P[@]}" --verify -m "$ec_mech" --signature-format openssl --id "$EC_ID" \
	-i "$ec_in" --signature-file "$tmp/ec.direct.sig" &&
	grep -q 'Signature is valid' "$tmp/ec-xverify1.out" &&
	run ec-xverify2 vendor "${P[@]}" --verify -m "$ec_mech" --signature-format openssl --id "$EC_ID" \
		-i "$ec_in" --signature-file "$tmp/ec.sig" &&
	grep -q 'Signature is valid' "$tmp/ec-xverify2.out"; then
	ok "C_Verify through the proxy accepts the direct signature, and the vendor accepts the proxy's"
else
	fail "C_Verify through the proxy accepts the direct signature, and the vendor accepts the proxy's"
	details "$tmp/ec-xverify1.out"
	[[ -f $tmp/ec-xverify2.out ]] && details "$tmp/ec-xverify2.out"
fi

# With only the EC key pair on the token, pkcs11-tool's self test passes.
if run selftest-ec proxy --token-label "$LABEL" --test --login --pin "$PIN" &&
	grep -q '^No errors' "$tmp/selftest-ec.out"; then
	ok "pkcs11-tool --test --login through the proxy reports no errors (EC key on the token)"
else
	fail "pkcs11-tool --test --login through the proxy reports no errors (EC key on the token)"
	details "$tmp/selftest-ec.out"
fi

# --- RSA-2048 -------------------------------------------------------------------

if run rsa-gen proxy "${L[@]}" --keypairgen --key-type rsa:2048 --id "$RSA_ID" --label "$RSA_LABEL" &&
	run rsa-pub proxy "${P[@]}" --read-object --type pubkey --id "$RSA_ID" -o "$tmp/rsa.pub.der" &&
	run rsa-pem openssl pkey -pubin -inform DER -in "$tmp/rsa.pub.der" -out "$tmp/rsa.pub.pem" &&
	grep -q '2048 bit' <(openssl pkey -pubin -in "$tmp/rsa.pub.pem" -noout -text 2>&1); then
	ok "RSA-2048 key pair generated through the proxy, public key exported and read by openssl"
else
	fail "RSA-2048 key pair generated through the proxy, public key exported and read by openssl"
	for f in rsa-gen rsa-pub rsa-pem; do [[ -f $tmp/$f.out ]] && details "$tmp/$f.out" 4; done
fi

if run rsa-sign proxy "${L[@]}" --sign -m SHA256-RSA-PKCS --id "$RSA_ID" -i "$tmp/data" -o "$tmp/rsa.sig" &&
	run rsa-verify openssl dgst -sha256 -verify "$tmp/rsa.pub.pem" -signature "$tmp/rsa.sig" "$tmp/data" &&
	grep -qx 'Verified OK' "$tmp/rsa-verify.out" &&
	! openssl dgst -sha256 -verify "$tmp/rsa.pub.pem" -signature "$tmp/rsa.sig" "$tmp/data.tampered" >/dev/null 2>&1; then
	ok "SHA256-RSA-PKCS signature made through the proxy verifies with openssl (and fails on tampered data)"
else
	fail "SHA256-RSA-PKCS signature made through the proxy verifies with openssl (and fails on tampered data)"
	details "$tmp/rsa-sign.out"
	[[ -f $tmp/rsa-verify.out ]] && details "$tmp/rsa-verify.out"
fi

head -c 48 /dev/urandom >"$tmp/secret"
# RSA-PKCS-OAEP carries a CK_RSA_PKCS_OAEP_PARAMS through the proxy. SoftHSM2
# accepts OAEP with SHA-1 only, so both sides use SHA-1 and MGF1-SHA1.
if run oaep-enc openssl pkeyutl -encrypt -pubin -inkey "$tmp/rsa.pub.pem" -in "$tmp/secret" -out "$tmp/secret.oaep" \
	-pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha1 -pkeyopt rsa_mgf1_md:sha1 &&
	run oaep-dec proxy "${L[@]}" --decrypt -m RSA-PKCS-OAEP --hash-algorithm SHA-1 --mgf MGF1-SHA1 \
		--id "$RSA_ID" -i "$tmp/secret.oaep" -o "$tmp/secret.oaep.dec" &&
	cmp -s "$tmp/secret" "$tmp/secret.oaep.dec"; then
	ok "RSA-OAEP (SHA-1): encrypted by openssl, decrypted through the proxy, bytes equal"
else
	fail "RSA-OAEP (SHA-1): encrypted by openssl, decrypted through the proxy, bytes equal"
	details "$tmp/oaep-enc.out"
	[[ -f $tmp/oaep-dec.out ]] && details "$tmp/oaep-dec.out"
fi
if run pkcs1-enc openssl pkeyutl -encrypt -pubin -inkey "$tmp/rsa.pub.pem" -in "$tmp/secret" -out "$tmp/secret.pkcs1" \
	-pkeyopt rsa_padding_mode:pkcs1 &&
	run pkcs1-dec proxy "${L[@]}" --decrypt -m RSA-PKCS --id "$RSA_ID" -i "$tmp/secret.pkcs1" -o "$tmp/secret.pkcs1.dec" &&
	cmp -s "$tmp/secret" "$tmp/secret.pkcs1.dec"; then
	ok "RSA-PKCS v1.5: encrypted by openssl, decrypted through the proxy, bytes equal"
else
	fail "RSA-PKCS v1.5: encrypted by openssl, decrypted through the proxy, bytes equal"
	details "$tmp/pkcs1-enc.out"
	[[ -f $tmp/pkcs1-dec.out ]] && details "$tmp/pkcs1-dec.out"
fi

# --- AES-256 ---------------------------------------------------------------------

IV=00112233445566778899aabbccddeeff
head -c 5000 /dev/urandom >"$tmp/plain" # several of pkcs11-tool's 1 KiB chunks, not block aligned

# aes_roundtrip ID TAG: AES-CBC-PAD encrypt and decrypt through the proxy.
aes_roundtrip() {
	run "$2-enc" proxy "${L[@]}" --encrypt -m AES-CBC-PAD --iv "$IV" --id "$1" -i "$tmp/plain" -o "$tmp/$2.ct" &&
		run "$2-dec" proxy "${L[@]}" --decrypt -m AES-CBC-PAD --iv "$IV" --id "$1" -i "$tmp/$2.ct" -o "$tmp/$2.pt" &&
		cmp -s "$tmp/plain" "$tmp/$2.pt"
}
# aes_vs_openssl ID TAG: compares the proxy's ciphertext with openssl enc, if
# the key's value can be read.
aes_vs_openssl() {
	if ! run "$2-value" proxy "${L[@]}" --read-object --type secrkey --id "$1" -o "$tmp/$2.key" ||
		[[ $(stat -c %s "$tmp/$2.key" 2>/dev/null || echo 0) != 32 ]]; then
		skip "AES key ($2) value cannot be read ($(grep -o 'CKR_[A-Z_]*' "$tmp/$2-value.out" | head -n1 || true)): no comparison with openssl enc"
		return
	fi
	if openssl enc -aes-256-cbc -K "$(od -An -tx1 -v "$tmp/$2.key" | tr -d ' \n')" -iv "$IV" \
		-in "$tmp/plain" -out "$tmp/$2.ct.openssl" >"$tmp/$2-openssl.out" 2>&1 &&
		cmp -s "$tmp/$2.ct" "$tmp/$2.ct.openssl"; then
		ok "AES key ($2) read through the proxy: openssl enc -aes-256-cbc gives the same ciphertext"
	else
		fail "AES key ($2) read through the proxy: openssl enc -aes-256-cbc gives the same ciphertext"
		details "$tmp/$2-openssl.out"
	fi
}

if run aes-gen proxy "${L[@]}" --keygen --key-type AES:32 --id "$AES_ID" --label "p11t-aes-$run_id" &&
	aes_roundtrip "$AES_ID" aes; then
	ok "AES-256 key generated through the proxy; AES-CBC-PAD encrypt + decrypt of 5000 bytes round-trips"
else
	fail "AES-256 key generated through the proxy; AES-CBC-PAD encrypt + decrypt of 5000 bytes round-trips"
	for f in aes-gen aes-enc aes-dec; do [[ -f $tmp/$f.out ]] && details "$tmp/$f.out" 4; done
fi
aes_vs_openssl "$AES_ID" aes

# The default key is sensitive; a second, extractable key lets openssl check
# the ciphertext itself.
if run aesx-gen proxy "${L[@]}" --keygen --key-type AES:32 --extractable --id "$AESX_ID" --label "p11t-aesx-$run_id" &&
	aes_roundtrip "$AESX_ID" aesx; then
	ok "extractable AES-256 key generated through the proxy; AES-CBC-PAD round-trips"
	aes_vs_openssl "$AESX_ID" aesx
else
	fail "extractable AES-256 key generated through the proxy; AES-CBC-PAD round-trips"
	for f in aesx-gen aesx-enc aesx-dec; do [[ -f $tmp/$f.out ]] && details "$tmp/$f.out" 4; done
fi

# --- OpenSSL's pkcs11 engine (libp11) through the proxy -------------------------------

engine_tests() {
	if ! run engine-t openssl engine -t pkcs11 || ! grep -q 'available' "$tmp/engine-t.out"; then
		skip "OpenSSL pkcs11 engine: 'openssl engine -t pkcs11' fails ($(head -n1 "$tmp/engine-t.out")); install libengine-pkcs11-openssl"
		return
	fi
	# libp11 loads the module named by PKCS11_MODULE_PATH.
	export PKCS11_MODULE_PATH=$PWD/$PROXY
	local ec_uri="pkcs11:object=$EC_LABEL;type=private;pin-value=$PIN"
	local rsa_uri="pkcs11:object=$RSA_LABEL;type=private;pin-value=$PIN"

	if run eng-sign openssl dgst -sha256 -engine pkcs11 -keyform engine -sign "$ec_uri" \
		-out "$tmp/eng.sig" "$tmp/data" &&
		run eng-verify openssl dgst -sha256 -verify "$tmp/ec.pub.pem" -signature "$tmp/eng.sig" "$tmp/data" &&
		grep -qx 'Verified OK' "$tmp/eng-verify.out"; then
		ok "openssl dgst -sign with the pkcs11 engine through the proxy (EC key): openssl verifies it in software"
	else
		fail "openssl dgst -sign with the pkcs11 engine through the proxy (EC key): openssl verifies it in software"
		details "$tmp/eng-sign.out"
		[[ -f $tmp/eng-verify.out ]] && details "$tmp/eng-verify.out"
	fi

	if run eng-pkeyutl openssl pkeyutl -sign -engine pkcs11 -keyform engine -inkey "$rsa_uri" \
		-pkeyopt digest:sha256 -in "$tmp/data.sha256" -out "$tmp/eng.rsa.sig" &&
		run eng-pkeyutl-verify openssl dgst -sha256 -verify "$tmp/rsa.pub.pem" -signature "$tmp/eng.rsa.sig" "$tmp/data" &&
		grep -qx 'Verified OK' "$tmp/eng-pkeyutl-verify.out"; then
		ok "openssl pkeyutl -sign with the pkcs11 engine through the proxy (RSA key): openssl verifies it in software"
	else
		fail "openssl pkeyutl -sign with the pkcs11 engine through the proxy (RSA key): openssl verifies it in software"
		details "$tmp/eng-pkeyutl.out"
		[[ -f $tmp/eng-pkeyutl-verify.out ]] && details "$tmp/eng-pkeyutl-verify.out"
	fi

	if run eng-req openssl req -new -x509 -engine pkcs11 -keyform engine -key "$rsa_uri" \
		-subj "/CN=p11isolate test $run_id" -days 1 -sha256 -out "$tmp/cert.pem" &&
		run eng-cert-verify openssl verify -CAfile "$tmp/cert.pem" "$tmp/cert.pem" &&
		grep -q ': OK$' "$tmp/eng-cert-verify.out" &&
		cmp -s <(openssl x509 -in "$tmp/cert.pem" -noout -pubkey) "$tmp/rsa.pub.pem"; then
		ok "openssl req -x509 with the pkcs11 engine through the proxy: self-signed certificate of the token's key, openssl verify OK"
	else
		fail "openssl req -x509 with the pkcs11 engine through the proxy: self-signed certificate of the token's key, openssl verify OK"
		details "$tmp/eng-req.out"
		[[ -f $tmp/eng-cert-verify.out ]] && details "$tmp/eng-cert-verify.out"
	fi

	# The engine really goes through the proxy: a vendor crash in C_Sign shows
	# up in the proxy's log, and openssl fails without being killed.
	local st=0
	P11ISOLATE_MODULE=$FAULTMOD FAULTMOD_MODULE=$VENDOR FAULTMOD_FAULT=segv:C_Sign \
		P11ISOLATE_LOG=$tmp/eng-crash.log \
		openssl dgst -sha256 -engine pkcs11 -keyform engine -sign "$ec_uri" \
		-out "$tmp/eng.crash.sig" "$tmp/data" >"$tmp/eng-crash.out" 2>&1 || st=$?
	if ((st != 0 && st < 128)) && grep -q 'died during C_Sign' "$tmp/eng-crash.log" 2>/dev/null; then
		ok "pkcs11 engine with a vendor that crashes in C_Sign: openssl fails with status $st, the proxy logs the host's death"
	else
		fail "pkcs11 engine with a vendor that crashes in C_Sign: openssl fails with status $st (want 1..127), the proxy logs the host's death"
		details "$tmp/eng-crash.out" 4
		[[ -f $tmp/eng-crash.log ]] && grep -v 'host\[[0-9]*\]' "$tmp/eng-crash.log" | sed 's/^/#   /'
	fi
	unset PKCS11_MODULE_PATH
}
engine_tests

# --- a vendor crash --------------------------------------------------------------

# pkcs11-spy (OpenSC) between pkcs11-tool and the proxy records what each call
# returned to the application: pkcs11-tool itself does not print the result of
# a failed C_Sign, it retries with C_SignInit + C_SignUpdate.
SPY=
for f in /usr/lib/*/pkcs11-spy.so /usr/lib/*/pkcs11/pkcs11-spy.so /usr/lib/pkcs11-spy.so /usr/lib64/pkcs11-spy.so; do
	[[ -f $f ]] && { SPY=$f; break; }
done

# crash_run TAG FAULT [spy]: pkcs11-tool --sign through the proxy with faultmod
# as the vendor module and FAULT armed. Sets $st to pkcs11-tool's status.
crash_run() {
	local tag=$1 fault=$2 module=$PROXY
	local -a env=(P11ISOLATE_MODULE="$FAULTMOD" FAULTMOD_MODULE="$VENDOR" P11ISOLATE_LOG="$tmp/$tag.log")
	[[ -n $fault ]] && env+=(FAULTMOD_FAULT="$fault")
	if [[ ${3:-} == spy ]]; then
		module=$SPY
		env+=(PKCS11SPY="$PWD/$PROXY" PKCS11SPY_OUTPUT="$tmp/$tag.spy")
	fi
	st=0
	env -u FAULTMOD_FAULT -u FAULTMOD_FILE "${env[@]}" \
		pkcs11-tool --module "$module" "${L[@]}" --sign -m "$ec_mech" --signature-format openssl \
		--id "$EC_ID" -i "$ec_in" -o "$tmp/$tag.sig" >"$tmp/$tag.out" 2>&1 || st=$?
}
# died_line TAG: the proxy's own line about the host's death.
died_line() { grep -v 'host\[[0-9]*\]:' "$tmp/$1.log" 2>/dev/null | grep 'died during' | head -n1; }

if [[ -n $SPY ]]; then
	crash_run crash segv:C_Sign spy
else
	crash_run crash segv:C_Sign
fi
if ((st != 0 && st < 128)); then
	ok "segv:C_Sign: pkcs11-tool is not killed, it exits with error status $st"
else
	fail "segv:C_Sign: pkcs11-tool is not killed, it exits with error status $st (want 1..127)"
	details "$tmp/crash.out"
fi
if [[ -n $SPY ]]; then
	# The spy prints "N: C_Sign", the arguments, then "Returned:  48 CKR_DEVICE_ERROR".
	sign_rv=$(awk '/^[0-9]+: C_Sign$/ {s = 1} s && /^Returned:/ {print $3; exit}' "$tmp/crash.spy" 2>/dev/null || true)
	if [[ $sign_rv == CKR_DEVICE_ERROR ]]; then
		ok "segv:C_Sign: C_Sign returned CKR_DEVICE_ERROR to pkcs11-tool (pkcs11-spy trace); pkcs11-tool then said: $(grep -m1 '^error:' "$tmp/crash.out" || true)"
	else
		fail "segv:C_Sign: C_Sign returned CKR_DEVICE_ERROR to pkcs11-tool (pkcs11-spy trace says ${sign_rv:-nothing})"
		details "$tmp/crash.out"
	fi
else
	skip "segv:C_Sign: pkcs11-spy.so not found: cannot see what C_Sign returned (pkcs11-tool retries a failed C_Sign)"
fi
line=$(died_line crash)
if [[ -n $line ]]; then
	ok "segv:C_Sign: the proxy logs the host's death: ${line#p11isolate: }"
else
	fail "segv:C_Sign: the proxy logs the host's death (no 'died during' line in P11ISOLATE_LOG)"
	[[ -f $tmp/crash.log ]] && details "$tmp/crash.log"
fi
if [[ $line == *'died during C_Sign'*SIGSEGV* ]]; then
	ok "segv:C_Sign: the proxy's log line says the host died of SIGSEGV in C_Sign"
else
	fail "segv:C_Sign: the proxy's log line says the host died of SIGSEGV in C_Sign (it says: ${line:-nothing})"
	grep -m3 'host\[[0-9]*\]: .*SIG' "$tmp/crash.log" 2>/dev/null | sed 's/^/#   relayed from the host: /' || true
fi

# pkcs11-tool's own self test, with the keys of this run on the token: it
# must report exactly what it reports with the vendor module directly (with
# RSA keys present, SoftHSM2 itself fails pkcs11-tool's default OAEP-SHA256).
run selftest-direct vendor --token-label "$LABEL" --test --login --pin "$PIN" && st_direct=0 || st_direct=$?
run selftest proxy --token-label "$LABEL" --test --login --pin "$PIN" && st_proxy=0 || st_proxy=$?
if ((st_direct == st_proxy)) && diff -q "$tmp/selftest-direct.out" "$tmp/selftest.out" >/dev/null; then
	ok "pkcs11-tool --test --login: the same report and status ($st_proxy) through the proxy as directly ($(grep -m1 -E '^No errors|^error' "$tmp/selftest.out" || echo 'see output'))"
else
	fail "pkcs11-tool --test --login: the report through the proxy differs from the direct one"
	diff "$tmp/selftest-direct.out" "$tmp/selftest.out" | head -n 12 | sed 's/^/#   /'
fi

# A crash in C_SignInit is fatal to pkcs11-tool, which prints the result.
crash_run crash-init segv:C_SignInit
if ((st != 0 && st < 128)) && grep -q 'C_SignInit failed: rv = CKR_DEVICE_ERROR' "$tmp/crash-init.out"; then
	ok "segv:C_SignInit: pkcs11-tool says 'C_SignInit failed: rv = CKR_DEVICE_ERROR' and exits with status $st"
else
	fail "segv:C_SignInit: pkcs11-tool says 'C_SignInit failed: rv = CKR_DEVICE_ERROR' and exits with status $st (want 1..127)"
	grep -v 'host\[[0-9]*\]:' "$tmp/crash-init.out" | tail -n 6 | sed 's/^/#   /'
fi

# The same faultmod module with no fault armed works again.
crash_run after-crash ""
if ((st == 0)) &&
	run after-crash-verify openssl dgst -sha256 -verify "$tmp/ec.pub.pem" -signature "$tmp/after-crash.sig" "$tmp/data" &&
	grep -qx 'Verified OK' "$tmp/after-crash-verify.out"; then
	ok "after the crash: the same sign through faultmod with no fault armed works and verifies"
else
	fail "after the crash: the same sign through faultmod with no fault armed works and verifies"
	details "$tmp/after-crash.out"
fi

if ((failures)); then
	echo "# $failures check(s) failed"
	exit 1
fi
echo "# all checks passed"
