#!/usr/bin/env bash
# tests/clients/nss.sh: NSS's modutil and certutil through
# build/libp11isolate.so: add the module to an NSS database, see the token,
# make self-signed certificates (EC P-256, RSA-2048, EC P-384) whose key pairs
# are generated and used on the token, verify each certificate (certutil -V
# -e, openssl verify), check that its public key is the token's key, and list
# the token's certificates and keys.
#
# Environment: see tests/clients/lib.sh (P11ISOLATE_MODULE, SOFTHSM2_CONF, PIN).
set -euo pipefail
# shellcheck source=tests/clients/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

need certutil libnss3-tools
need modutil libnss3-tools

DB=sql:$tmp/nssdb
mkdir -p "$tmp/nssdb"
printf '%s\n' "$PIN" >"$tmp/pinfile"
head -c 2048 /dev/urandom >"$tmp/noise"
run nss-init certutil -N -d "$DB" --empty-password || {
	fail "certutil -N creates an empty NSS database"
	details "$tmp/nss-init.out"
	finish
}

# --- the module and its token --------------------------------------------------

# FRIENDLY makes NSS read the token's certificates without a login, so that
# certutil -V (which takes no password file) finds them.
if run add modutil -dbdir "$DB" -add p11isolate -libfile "$PROXY" -mechanisms FRIENDLY -force &&
	grep -q 'Module "p11isolate" added to database' "$tmp/add.out"; then
	ok "modutil -add loads libp11isolate.so into an NSS database"
else
	fail "modutil -add loads libp11isolate.so into an NSS database"
	details "$tmp/add.out"
fi
if [[ -n $SPY ]]; then
	mkdir -p "$tmp/spydb"
	certutil -N -d "sql:$tmp/spydb" --empty-password >/dev/null 2>&1 || true
	init=$(spy_init modutil -dbdir "sql:$tmp/spydb" -add spy -libfile "$SPY" -force)
	[[ -n $init ]] && echo "# pkcs11-spy: NSS's C_Initialize calls of the proxy: $init"
fi

if run list modutil -dbdir "$DB" -list p11isolate && grep -Eq "^ *Token Name: $LABEL *\$" "$tmp/list.out" &&
	[[ $(grep -B4 -E "^ *Token Name: $LABEL *\$" "$tmp/list.out") == *'Status: Enabled'* ]]; then
	ok "modutil -list p11isolate shows the module with its token \"$LABEL\""
else
	fail "modutil -list p11isolate shows the module with its token \"$LABEL\""
	details "$tmp/list.out" 20
fi

# --- certificates made on the token ------------------------------------------------

# cert_id NICK: the CKA_ID of the certificate NICK on the token, read with the
# vendor module directly.
cert_id() {
	vendor --token-label "$LABEL" --list-objects --type cert 2>/dev/null | awk -v want="$1" '
		/^Certificate Object/ { label = "" }
		/^ *label: / { sub(/^ *label: */, ""); label = $0 }
		/^ *ID: / && label == want && !found { print $2; found = 1 }
	'
}

NICKS=()
# make_cert NICK DESCRIPTION KEYARGS...: certutil -S -x on the token, then
# the checks of the certificate.
make_cert() {
	local nick=$1 what=$2
	shift 2
	NICKS+=("$nick")
	if run "$nick-S" certutil -d "$DB" -h "$LABEL" -f "$tmp/pinfile" -z "$tmp/noise" -S -x \
		-s "CN=p11isolate nss $what $run_id" -n "$nick" -t CT,, -v 12 "$@"; then
		ok "certutil -S -x: $what key pair generated on the token, self-signed certificate stored there"
	else
		fail "certutil -S -x: $what key pair generated on the token, self-signed certificate stored there"
		details "$tmp/$nick-S.out"
		return 0
	fi
	local id
	id=$(cert_id "$nick" || true)
	if [[ -n $id ]]; then
		on_exit vendor_delete cert --id "$id"
		on_exit vendor_delete privkey --id "$id"
		on_exit vendor_delete pubkey --id "$id"
	fi

	if run "$nick-V" certutil -d "$DB" -V -e -u C -n "$LABEL:$nick" &&
		grep -q 'certificate is valid' "$tmp/$nick-V.out"; then
		ok "certutil -V -e -u C: $LABEL:$nick is valid (its signature, made by the token's key, checks)"
	else
		fail "certutil -V -e -u C: $LABEL:$nick is valid"
		details "$tmp/$nick-V.out"
	fi

	if run "$nick-L" certutil -d "$DB" -h "$LABEL" -f "$tmp/pinfile" -L -n "$LABEL:$nick" -a &&
		cp "$tmp/$nick-L.out" "$tmp/$nick.pem" &&
		run "$nick-verify" openssl verify -CAfile "$tmp/$nick.pem" "$tmp/$nick.pem" &&
		grep -q ': OK$' "$tmp/$nick-verify.out"; then
		ok "certutil -L -a exports $LABEL:$nick; openssl verify accepts the self-signed certificate"
	else
		fail "certutil -L -a exports $LABEL:$nick; openssl verify accepts the self-signed certificate"
		details "$tmp/$nick-L.out" 4
		details "$tmp/$nick-verify.out" 4
		return 0
	fi

	# The private key NSS generated signs through the proxy (pkcs11-tool),
	# and the certificate's public key verifies that signature.
	local -a mech=(-m SHA256-RSA-PKCS) in=$tmp/data
	if [[ $what == EC* ]]; then
		mech=(-m ECDSA --signature-format openssl) in=$tmp/data.sha256
	fi
	if [[ -n $id ]] &&
		run "$nick-sign" timeout -k 5 "$CLIENT_TIMEOUT" pkcs11-tool --module "$PROXY" --token-label "$LABEL" \
			--login --pin "$PIN" --sign "${mech[@]}" --id "$id" -i "$in" -o "$tmp/$nick.sig" &&
		openssl x509 -in "$tmp/$nick.pem" -noout -pubkey >"$tmp/$nick.pub.pem" 2>/dev/null &&
		run "$nick-sigverify" openssl dgst -sha256 -verify "$tmp/$nick.pub.pem" -signature "$tmp/$nick.sig" "$tmp/data" &&
		grep -qx 'Verified OK' "$tmp/$nick-sigverify.out"; then
		ok "the token's private key $id signs through the proxy (pkcs11-tool ${mech[1]}); the certificate's public key verifies it"
	else
		fail "the token's private key (id '$id') signs through the proxy (pkcs11-tool); the certificate's public key verifies it"
		details "$tmp/$nick-sign.out" 4
		details "$tmp/$nick-sigverify.out" 4
	fi
}

head -c 3000 /dev/urandom >"$tmp/data"
openssl dgst -sha256 -binary "$tmp/data" >"$tmp/data.sha256"
make_cert "p11c-ec-$run_id" "EC P-256" -k ec -q nistp256
make_cert "p11c-rsa-$run_id" "RSA-2048" -k rsa -g 2048
make_cert "p11c-ec384-$run_id" "EC P-384" -k ec -q secp384r1

# --- listing the token ------------------------------------------------------------

# missing FILE: the nicknames of this run that FILE does not mention.
missing() {
	local n out=()
	for n in "${NICKS[@]}"; do grep -q "$LABEL:$n\\b" "$1" || out+=("$n"); done
	echo "${out[*]}"
}

rc=0
run certs certutil -d "$DB" -h "$LABEL" -f "$tmp/pinfile" -L || rc=$?
miss=$(missing "$tmp/certs.out")
if ((rc == 0)) && [[ -z $miss ]]; then
	ok "certutil -L -h $LABEL lists the ${#NICKS[@]} certificates of this run"
else
	fail "certutil -L -h $LABEL lists the ${#NICKS[@]} certificates of this run (status $rc; missing: ${miss:-none})"
	details "$tmp/certs.out" 12
fi

rc=0
run keys certutil -d "$DB" -h "$LABEL" -f "$tmp/pinfile" -K || rc=$?
miss=$(missing "$tmp/keys.out")
if ((rc == 0)) && [[ -z $miss ]]; then
	ok "certutil -K -h $LABEL lists the ${#NICKS[@]} private keys of this run"
else
	sig=
	((rc > 128)) && sig=" = killed by SIG$(kill -l $((rc - 128)) 2>/dev/null || echo $((rc - 128)))"
	fail "certutil -K -h $LABEL lists the ${#NICKS[@]} private keys of this run (status $rc$sig; missing: ${miss:-none})"
	details "$tmp/keys.out" 12
fi

# A control run of the listings with the vendor module itself tells a proxy
# failure from an NSS one.
if ((failures)); then
	mkdir -p "$tmp/directdb"
	ddb=sql:$tmp/directdb
	certutil -N -d "$ddb" --empty-password >/dev/null 2>&1 || true
	run direct-add modutil -dbdir "$ddb" -add vendor -libfile "$VENDOR" -mechanisms FRIENDLY -force || true
	crc=0 krc=0
	run direct-certs certutil -d "$ddb" -h "$LABEL" -f "$tmp/pinfile" -L || crc=$?
	run direct-keys certutil -d "$ddb" -h "$LABEL" -f "$tmp/pinfile" -K || krc=$?
	echo "# control: with the vendor module directly, certutil -L (status $crc) misses: $(missing "$tmp/direct-certs.out" | sed 's/^$/none/');" \
		"certutil -K (status $krc) misses: $(missing "$tmp/direct-keys.out" | sed 's/^$/none/')"
fi

finish
