#!/usr/bin/env bash
# tests/demo.sh: what `make demo` runs after building. A short tour of
# p11isolate with OpenSC's pkcs11-tool and openssl on a throwaway SoftHSM2
# token: sign and verify through the proxy, then make the vendor module
# crash in C_Sign and watch the application carry on.
# Exits non-zero if any step does not behave as shown.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

PROXY=build/libp11isolate.so
FAULTMOD=build/tests/libfaultmod.so
SOFTHSM=/usr/lib/softhsm/libsofthsm2.so
PIN=1234

for f in "$PROXY" "$FAULTMOD" "$SOFTHSM"; do
	[[ -f $f ]] || { echo "demo: $f is missing (run: make demo)" >&2; exit 1; }
done
SPY=
for f in /usr/lib/*/pkcs11-spy.so /usr/lib/*/pkcs11/pkcs11-spy.so /usr/lib/pkcs11-spy.so /usr/lib64/pkcs11-spy.so; do
	[[ -f $f ]] && { SPY=$f; break; }
done
[[ -n $SPY ]] || { echo "demo: pkcs11-spy.so not found (apt-get install opensc-pkcs11)" >&2; exit 1; }

# A fault armed in the caller's environment would spoil the demo.
unset FAULTMOD_FAULT FAULTMOD_FILE FAULTMOD_MODULE P11ISOLATE_LOG
# The host sees only allowlisted environment variables: let the fault
# module's settings through.
export P11ISOLATE_ENV='FAULTMOD_*'

T=$(mktemp -d "${TMPDIR:-/tmp}/p11isolate-demo.XXXXXX")
trap 'rm -rf "$T"' EXIT

if [[ -t 1 ]]; then
	B=$'\e[1m' G=$'\e[32m' RED=$'\e[31m' D=$'\e[2m' N=$'\e[0m'
else
	B='' G='' RED='' D='' N=''
fi

step_no=0
step() {
	step_no=$((step_no + 1))
	printf '\n%s[%d] %s%s\n' "$B" "$step_no" "$*" "$N"
}
# say TEXT: a result line, indented under the command.
say() { printf '      %s\n' "$*"; }
note() { printf '      %s%s%s\n' "$D" "$*" "$N"; }
good() { printf '      %s%s%s\n' "$G" "$*" "$N"; }
die() {
	printf '\n%sdemo FAILED at step %d: %s%s\n' "$RED" "$step_no" "$*" "$N"
	if [[ -s $T/out ]]; then
		echo "last output:"
		grep -v 'host\[[0-9]*\]:' "$T/out" | tail -n 8 | sed 's/^/  | /'
	fi
	exit 1
}

# show ARGS...: prints a command as a user would type it ("env" dropped,
# the temporary directory written as $T); a long environment prefix goes on
# lines of its own.
show() {
	local words=() w envs=() seen_cmd='' line
	for w in "$@"; do
		[[ $w == env && ${#words[@]} -eq 0 && ${#envs[@]} -eq 0 ]] && continue
		w=${w//"$T"/\$T}
		[[ $w == *[[:space:]]* ]] && w="'$w'"
		if [[ -z $seen_cmd && $w == [A-Z]*=* ]]; then
			envs+=("$w")
		else
			seen_cmd=1
			words+=("$w")
		fi
	done
	local all="${envs[*]}${envs[*]:+ }${words[*]}"
	if ((${#envs[@]} == 0 || ${#all} < 100)); then
		printf '  $ %s\n' "$all"
		return
	fi
	line=
	for w in "${envs[@]}"; do
		if [[ -n $line ]] && ((${#line} + ${#w} > 90)); then
			printf '%s \\\n' "$line"
			line="      $w"
		else
			line=${line:-"  \$"}" $w"
		fi
	done
	printf '%s \\\n      %s\n' "$line" "${words[*]}"
}
# run ARGS...: show and run a command; output in $T/out, status in $rc.
run() {
	show "$@"
	rc=0
	"$@" >"$T/out" 2>&1 || rc=$?
}

printf '%sp11isolate demo%s: every PKCS#11 call goes from the application, through\n' "$B" "$N"
printf '%s, to a separate host process that loads the vendor module.\n' "$PROXY"

# ---------------------------------------------------------------------------
step "A throwaway SoftHSM2 token (T=$T)"
run softhsm-testenv/new-token "$T/softhsm" demo 12345678 "$PIN"
((rc == 0)) || die "new-token failed"
eval "$(grep '^export SOFTHSM2_CONF=' "$T/out")"
good "token \"demo\", user PIN $PIN"

# ---------------------------------------------------------------------------
step "List the slots through the proxy, with SoftHSM2 as the vendor module"
export P11ISOLATE_MODULE=$SOFTHSM
run env P11ISOLATE_MODULE="$SOFTHSM" pkcs11-tool --module "$PROXY" -L
((rc == 0)) || die "pkcs11-tool -L failed"
grep -q 'token label *: demo$' "$T/out" || die "the token \"demo\" is not listed"
grep -m3 -E '^Slot 0|token label|token model' "$T/out" | sed 's/^ *//; s/^/      /'

P11=(pkcs11-tool --module "$PROXY" --login --pin "$PIN")

# ---------------------------------------------------------------------------
step "Generate an EC P-256 key pair on the token"
run "${P11[@]}" --keypairgen --key-type EC:prime256v1 --id 01 --label demo-key
((rc == 0)) || die "key pair generation failed"
grep -E '^(Private|Public) Key Object' "$T/out" | sed 's/^/      /'

# ---------------------------------------------------------------------------
step "Sign a message (SoftHSM2 has no ECDSA-SHA256: openssl hashes, the token signs)"
echo "Hello from p11isolate" >"$T/msg.txt"
run openssl dgst -sha256 -binary -out "$T/msg.sha256" "$T/msg.txt"
((rc == 0)) || die "openssl dgst failed"
run "${P11[@]}" --sign -m ECDSA --signature-format openssl --id 01 -i "$T/msg.sha256" -o "$T/msg.sig"
{ ((rc == 0)) && [[ -s $T/msg.sig ]]; } || die "signing failed"
good "$(stat -c %s "$T/msg.sig")-byte ECDSA signature in \$T/msg.sig"

# ---------------------------------------------------------------------------
step "Export the public key and verify the signature with openssl"
run pkcs11-tool --module "$PROXY" --read-object --type pubkey --id 01 -o "$T/pub.der"
((rc == 0)) || die "exporting the public key failed"
run openssl pkey -pubin -inform DER -in "$T/pub.der" -out "$T/pub.pem"
((rc == 0)) || die "openssl cannot read the exported public key"
run openssl dgst -sha256 -verify "$T/pub.pem" -signature "$T/msg.sig" "$T/msg.txt"
{ grep -qx 'Verified OK' "$T/out" && ((rc == 0)); } || die "openssl does not verify the signature"
good "Verified OK"

# ---------------------------------------------------------------------------
step "A prefork application: Python multiprocessing workers sign after fork()"
note "The parent opens the module through the proxy and signs; then a pool of forked"
note "workers initialize again, log in, sign and verify, each with a host of its own."
run env P11ISOLATE_MODULE="$SOFTHSM" P11ISOLATE_LOG="$T/fork.log" \
	/usr/bin/python3 tests/fork/multiprocessing_sign.py "$PROXY" "$PIN" 3
grep -E '^(ok|FAIL) +- ' "$T/out" | sed 's/^/      /'
[[ $rc -eq 0 && $(grep -c '^ok  *- worker [0-9]' "$T/out") -eq 3 ]] || die "the forked workers did not all sign and verify"
good "3 forked workers signed and verified; the parent kept its own host"

# ---------------------------------------------------------------------------
step "Now the vendor module crashes (SIGSEGV) inside C_Sign"
note "faultmod wraps SoftHSM2 and segfaults on C_Sign; pkcs11-spy (OpenSC) sits"
note "between pkcs11-tool and the proxy and records what each call returns."
run env P11ISOLATE_MODULE="$FAULTMOD" FAULTMOD_FAULT=segv:C_Sign P11ISOLATE_LOG="$T/proxy.log" \
	PKCS11SPY="$PROXY" PKCS11SPY_OUTPUT="$T/spy.log" \
	pkcs11-tool --module "$SPY" --login --pin "$PIN" --sign -m ECDSA --id 01 -i "$T/msg.sha256" -o "$T/crash.sig"
crash_rc=$rc
sign_rv=$(awk '/^[0-9]+: C_Sign$/ {s = 1} s && /^Returned:/ {print $3; exit}' "$T/spy.log" 2>/dev/null || true)
[[ $sign_rv == CKR_DEVICE_ERROR ]] || die "C_Sign returned ${sign_rv:-nothing}, not CKR_DEVICE_ERROR"
say "C_Sign returned:  ${B}CKR_DEVICE_ERROR${N}   (pkcs11-spy)"
tool_err=$(grep -m1 '^error:' "$T/out" || true)
if [[ -n $tool_err ]]; then
	say "pkcs11-tool said: $tool_err"
	[[ $tool_err == *C_SignInit*CKR_SESSION_HANDLE_INVALID* ]] &&
		note "(it retries a failed C_Sign with C_SignInit, on a session that died with the host)"
fi
died=$(grep -v 'host\[[0-9]*\]:' "$T/proxy.log" 2>/dev/null | grep -m1 'died during C_Sign' || true)
[[ -n $died ]] || die "the proxy log has no line about the host dying in C_Sign"
say "proxy log:        $died"
relayed=$(grep -c 'host\[[0-9]*\]:' "$T/proxy.log" || true)
first=$(grep -m1 'host\[[0-9]*\]:' "$T/proxy.log" || true)
if [[ -n $first ]]; then
	say "                  $first"
	((relayed > 1)) && note "                  (+$((relayed - 1)) more lines the dying host wrote to stderr)"
fi
((crash_rc > 0 && crash_rc < 128)) || die "pkcs11-tool ended with status $crash_rc, not an ordinary error exit (1..127)"
good "pkcs11-tool exited with status $crash_rc: an ordinary error exit, the application was not killed"

# ---------------------------------------------------------------------------
step "The next run works again (same faulty module, no fault armed)"
run env P11ISOLATE_MODULE="$FAULTMOD" "${P11[@]}" --sign -m ECDSA --signature-format openssl --id 01 \
	-i "$T/msg.sha256" -o "$T/again.sig"
((rc == 0)) || die "signing after the crash failed"
run openssl dgst -sha256 -verify "$T/pub.pem" -signature "$T/again.sig" "$T/msg.txt"
{ grep -qx 'Verified OK' "$T/out" && ((rc == 0)); } || die "the new signature does not verify"
good "Verified OK"

printf '\n%sSummary:%s signed and verified through p11isolate, in a process and in its forked workers; a SIGSEGV in the vendor'"'"'s C_Sign became CKR_DEVICE_ERROR, pkcs11-tool exited normally (status %d), and the next run worked.\n' "$B" "$N" "$crash_rc"
