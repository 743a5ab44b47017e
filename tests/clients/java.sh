#!/usr/bin/env bash
# tests/clients/java.sh: Java's SunPKCS11 provider through
# build/libp11isolate.so: keytool lists the token, generates EC P-256 and
# RSA-2048 key pairs with self-signed certificates on it (verified by
# openssl), and tests/clients/SignCheck.java signs with the token's keys and
# verifies the signatures in software.
#
# Environment: see tests/clients/lib.sh (P11ISOLATE_MODULE, SOFTHSM2_CONF, PIN).
set -euo pipefail
# shellcheck source=tests/clients/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

need java default-jdk-headless
need javac default-jdk-headless
need keytool default-jdk-headless

CFG=$tmp/p11isolate.cfg
cat >"$CFG" <<EOF
name = p11isolate
library = $PROXY
slotListIndex = 0
EOF
# SunPKCS11 takes the first slot with a token: the checks need that to be the
# token "$LABEL".
first=$(vendor -L 2>/dev/null | sed -n 's/^ *token label *: //p' || true)
first=${first%%$'\n'*}
if [[ $first != "$LABEL" ]]; then
	fail "slotListIndex=0 is the token \"$LABEL\" (the first token is \"$first\"): set TOKEN_LABEL or use a token of its own"
	finish
fi

KT=(keytool -keystore NONE -storetype PKCS11 -providerClass sun.security.pkcs11.SunPKCS11
	-providerArg "$CFG" -storepass "$PIN")
EC=p11c-ec-$run_id
RSA=p11c-rsa-$run_id
# SunPKCS11 labels the certificate and the public key with the alias, and
# gives the private key the alias as its CKA_ID.
for a in "$EC" "$RSA"; do
	for t in privkey pubkey cert; do
		on_exit vendor_delete "$t" --label "$a"
		on_exit vendor_delete "$t" --id "$(printf %s "$a" | od -An -tx1 | tr -d ' \n')"
	done
done

if run list "${KT[@]}" -list && grep -q '^Keystore type: PKCS11' "$tmp/list.out" &&
	grep -q '^Keystore provider: SunPKCS11-p11isolate' "$tmp/list.out"; then
	ok "keytool -list -storetype PKCS11 logs in through the proxy ($(grep -o 'contains [0-9]* entr[a-z]*' "$tmp/list.out"))"
else
	fail "keytool -list -storetype PKCS11 logs in through the proxy"
	details "$tmp/list.out"
fi

# genkey ALIAS DESCRIPTION KEYTOOL-ARGS...: a key pair and a self-signed
# certificate on the token; the certificate is exported and verified.
genkey() {
	local alias=$1 what=$2
	shift 2
	if run "$alias-gen" "${KT[@]}" -genkeypair -alias "$alias" -dname "CN=p11isolate java $what $run_id" \
		-validity 2 "$@" &&
		run "$alias-list" "${KT[@]}" -list -alias "$alias" &&
		grep -q "^$alias, PrivateKeyEntry" "$tmp/$alias-list.out"; then
		ok "keytool -genkeypair: $what key pair and self-signed certificate on the token (PrivateKeyEntry $alias)"
	else
		fail "keytool -genkeypair: $what key pair and self-signed certificate on the token"
		details "$tmp/$alias-gen.out"
		details "$tmp/$alias-list.out" 4
		return 0
	fi
	if run "$alias-export" "${KT[@]}" -exportcert -rfc -alias "$alias" &&
		sed -n '/-----BEGIN CERTIFICATE-----/,/-----END CERTIFICATE-----/p' "$tmp/$alias-export.out" >"$tmp/$alias.pem" &&
		run "$alias-verify" openssl verify -CAfile "$tmp/$alias.pem" "$tmp/$alias.pem" &&
		grep -q ': OK$' "$tmp/$alias-verify.out"; then
		ok "keytool -exportcert: openssl verify accepts the certificate keytool signed with the token's $what key"
	else
		fail "keytool -exportcert: openssl verify accepts the certificate keytool signed with the token's $what key"
		details "$tmp/$alias-export.out" 4
		details "$tmp/$alias-verify.out" 4
	fi
}

genkey "$EC" "EC P-256" -keyalg EC -groupname secp256r1 -sigalg SHA256withECDSA
genkey "$RSA" "RSA-2048" -keyalg RSA -keysize 2048 -sigalg SHA256withRSA

if run javac javac -d "$tmp/classes" tests/clients/SignCheck.java; then
	rc=0
	timeout -k 5 "$CLIENT_TIMEOUT" java -cp "$tmp/classes" SignCheck "$CFG" "$PIN" "$EC" "$RSA" \
		>"$tmp/signcheck.out" 2>&1 </dev/null || rc=$?
	# SignCheck's own ok/FAIL lines count here.
	grep -E '^(ok  |FAIL) - ' "$tmp/signcheck.out" | sed -E 's/^(ok  |FAIL) - /\1 - SignCheck: /' || true
	n=$(grep -c '^FAIL - ' "$tmp/signcheck.out" || true)
	failures=$((failures + n))
	if ((rc != 0 && n == 0)); then
		fail "java SignCheck exits with status 0 (it exited with $rc)"
		details "$tmp/signcheck.out" 12
	elif ((n > 0)); then
		details "$tmp/signcheck.out" 12
	fi
else
	fail "javac compiles tests/clients/SignCheck.java"
	details "$tmp/javac.out"
fi

finish
