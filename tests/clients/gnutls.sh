#!/usr/bin/env bash
# tests/clients/gnutls.sh: GnuTLS's p11tool and certtool through
# build/libp11isolate.so: list the tokens, generate an ECDSA P-256 key pair on
# the token, make a self-signed certificate with the token's private key, and
# verify that certificate (certtool --verify and openssl verify).
#
# Environment: see tests/clients/lib.sh (P11ISOLATE_MODULE, SOFTHSM2_CONF, PIN).
# GnuTLS loads the module through p11-kit.
set -euo pipefail
# shellcheck source=tests/clients/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

need p11tool gnutls-bin
need certtool gnutls-bin

export GNUTLS_PIN=$PIN
KEY=p11c-gnutls-$run_id
TOKEN_URL="pkcs11:token=$LABEL"
PRIV_URL="pkcs11:token=$LABEL;object=$KEY;type=private"
on_exit vendor_delete privkey --label "$KEY"
on_exit vendor_delete pubkey --label "$KEY"
on_exit vendor_delete privkey --label "$KEY-control"
on_exit vendor_delete pubkey --label "$KEY-control"

cat >"$tmp/template" <<EOF
cn = "p11isolate gnutls $run_id"
expiration_days = 2
serial = 1
ca
cert_signing_key
signing_key
EOF

declare -A step_ok=()

# flow MODULE TAG KEYLABEL: the GnuTLS steps with MODULE as the provider;
# each step runs only if the one before it passed. Sets step_ok[STEP] for the
# steps that passed; their outputs are $tmp/TAG-STEP.out.
STEPS=(list gen cert verify osslverify)
flow() {
	local module=$1 tag=$2 key=$3
	local priv="pkcs11:token=$LABEL;object=$key;type=private" pub="pkcs11:token=$LABEL;object=$key;type=public"
	step_ok=()
	run "$tag-list" p11tool --provider "$module" --list-tokens &&
		grep -q "Label: $LABEL\$" "$tmp/$tag-list.out" && step_ok[list]=1 || return 0
	run "$tag-gen" p11tool --provider "$module" --login --generate-privkey ECDSA --curve secp256r1 \
		--label "$key" "$TOKEN_URL" &&
		openssl pkey -pubin -in "$tmp/$tag-gen.out" -out "$tmp/$tag.pub.pem" >/dev/null 2>&1 &&
		step_ok[gen]=1 || return 0
	run "$tag-cert" certtool --provider "$module" --generate-self-signed --load-privkey "$priv" \
		--load-pubkey "$pub" --template "$tmp/template" --outfile "$tmp/$tag.cert.pem" &&
		step_ok[cert]=1 || return 0
	run "$tag-verify" certtool --verify --load-ca-certificate "$tmp/$tag.cert.pem" --infile "$tmp/$tag.cert.pem" &&
		grep -q 'Chain verification output: Verified' "$tmp/$tag-verify.out" && step_ok[verify]=1
	run "$tag-osslverify" openssl verify -CAfile "$tmp/$tag.cert.pem" "$tmp/$tag.cert.pem" &&
		grep -q ': OK$' "$tmp/$tag-osslverify.out" &&
		cmp -s <(openssl x509 -in "$tmp/$tag.cert.pem" -noout -pubkey 2>/dev/null) "$tmp/$tag.pub.pem" &&
		step_ok[osslverify]=1
	return 0
}

# report STEP DESCRIPTION: ok or FAIL for one step of the proxy run.
report() {
	if [[ -n ${step_ok[$1]:-} ]]; then
		ok "$2"
	elif [[ -f $tmp/proxy-$1.out ]]; then
		fail "$2"
		details "$tmp/proxy-$1.out" 4
	else
		fail "$2 (not run: an earlier step failed)"
	fi
}

flow "$PROXY" proxy "$KEY"

report list "p11tool --list-tokens through the proxy lists the token \"$LABEL\""
if [[ -z ${step_ok[list]:-} ]]; then
	init=$(spy_init p11tool --provider "$SPY" --list-tokens)
	[[ -n $init ]] && echo "#   pkcs11-spy: C_Initialize of the proxy through p11-kit: $init"
fi
report gen "p11tool --generate-privkey ECDSA secp256r1 on the token through the proxy (public key read by openssl)"
report cert "certtool --generate-self-signed signs with the token's key ($PRIV_URL)"
report verify "certtool --verify accepts the self-signed certificate made with the token's key"
report osslverify "openssl verify accepts it too, and its public key is the one p11tool generated on the token"

# A control run of the same steps with the vendor module itself tells a proxy
# failure from a broken script or GnuTLS installation.
if ((failures)); then
	flow "$VENDOR" control "$KEY-control"
	passed=()
	for s in "${STEPS[@]}"; do [[ -n ${step_ok[$s]:-} ]] && passed+=("$s"); done
	echo "# control: the same GnuTLS steps with the vendor module directly: ${#passed[@]} of 5 pass (${passed[*]:-none})"
fi

finish
