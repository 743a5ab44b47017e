#!/usr/bin/env bash
# make install into a DESTDIR, then use only the installed files: the
# command (version, help, check), pkcs11-tool on the installed library, and
# p11-kit (list-modules) with the installed p11-kit module file example.
# Needs P11ISOLATE_MODULE (SoftHSM2) and SOFTHSM2_CONF with a token labelled
# $1 (run.sh makes it).
set -euo pipefail
cd "$(dirname "$0")/.."
label=${1:?usage: install.sh TOKEN_LABEL}
: "${P11ISOLATE_MODULE:?}" "${SOFTHSM2_CONF:?}"
for tool in pkcs11-tool p11-kit unshare; do
	command -v "$tool" >/dev/null || { echo "FAIL - $tool is missing: run 'make deps'"; exit 1; }
done
fail=0
ok() { echo "ok   - $*"; }
bad() { echo "FAIL - $*"; fail=1; }

root=$(mktemp -d "${TMPDIR:-/tmp}/p11isolate-install.XXXXXX")
trap 'rm -rf "$root"' EXIT
${MAKE:-make} -s install DESTDIR="$root" PREFIX=/usr/local >"$root.make.out" 2>&1 || { cat "$root.make.out"; bad "make install DESTDIR=$root failed"; exit 1; }
rm -f "$root.make.out"
lib=$root/usr/local/lib/p11isolate/libp11isolate.so
cmd=$root/usr/local/bin/p11isolate
example=$root/usr/local/share/p11isolate/p11isolate.module.example
for f in "$lib" "$root/usr/local/lib/p11isolate/p11isolate-host" "$root/usr/local/lib/p11isolate/p11isolate-probe" \
	"$root/usr/local/lib/p11isolate/p11isolate-vet-driver" "$root/usr/local/lib/p11isolate/libp11isolate-watch.so" "$cmd" "$example"; do
	[[ -f $f ]] || bad "make install did not install ${f#"$root"}"
done
((fail == 0)) && ok "make install DESTDIR=... PREFIX=/usr/local: library, host, probe, vet driver and watch shim, command, p11-kit module example"
if grep -qx "module: /usr/local/lib/p11isolate/libp11isolate.so" "$example"; then
	ok "the module file example names the installed library"
else
	bad "the module file example does not name /usr/local/lib/p11isolate/libp11isolate.so: $(cat "$example")"
fi

out=$("$cmd" version)
if [[ $out =~ ^p11isolate\ .+\ \(build\ [0-9a-f]{16},\ wire\ protocol\ [0-9]+, ]]; then ok "p11isolate version: $out"; else bad "p11isolate version: $out"; fi
out=$("$cmd" help)
missing=""
for s in module timeout keygen_timeout log trace vendor_reserved host memory_limit sandbox sandbox_paths env module_sha256; do
	grep -q "^  $s " <<<"$out" || missing+=" $s"
done
if [[ -z $missing ]]; then ok "p11isolate help documents every setting"; else bad "p11isolate help lacks:$missing"; fi

# check: the installed command finds the installed library by itself.
out=$(P11ISOLATE_TIMEOUT=20s "$cmd" check 2>&1) && rc=0 || rc=$?
missing=""
for re in "^  module +$P11ISOLATE_MODULE +P11ISOLATE_MODULE$" "^  timeout +20s +P11ISOLATE_TIMEOUT$" \
	"^  sandbox +default +default$" "sandbox=default \(from default\):" "token $label 0x" \
	"^environment: the host gets [0-9]+ of [0-9]+ variables: .*SOFTHSM2_CONF"; do
	grep -Eq "$re" <<<"$out" || missing+=" [$re]"
done
if ((rc == 0)) && [[ -z $missing ]]; then
	ok "p11isolate check: each setting with its source, the host's environment names, the sandbox line, token $label"
else
	bad "p11isolate check (exit $rc) lacks$missing: $out"
fi
# Names only: no value of the application's environment is printed.
if grep -qF "$SOFTHSM2_CONF" <<<"$(grep -v '^  module' <<<"$out")"; then bad "p11isolate check printed an environment value"; else ok "p11isolate check prints environment names, not values"; fi
out=$(P11ISOLATE_MODULE=/nonexistent/vendor.so "$cmd" check 2>&1) && rc=0 || rc=$?
if ((rc == 1)) && grep -q "the library would refuse these settings: the vendor module /nonexistent/vendor.so (from P11ISOLATE_MODULE) does not exist" <<<"$out"; then
	ok "p11isolate check on a missing module: exit 1 and what to fix"
else
	bad "p11isolate check on a missing module (exit $rc): $out"
fi

# A module that loads but is no PKCS#11 module: the library answers
# C_Initialize with an error, and check says the module did not load.
notp11=$(ldd "$(command -v p11-kit)" | awk '$1 ~ /^libc\.so/ {print $3}')
out=$(P11ISOLATE_MODULE=$notp11 "$cmd" check 2>&1) && rc=0 || rc=$?
if ((rc == 1)) && grep -q "^  rv C_Initialize 0x" <<<"$out" && grep -q "the module did not load or answer" <<<"$out"; then
	ok "p11isolate check on a library that is no PKCS#11 module ($notp11): exit 1, C_Initialize's error"
else
	bad "p11isolate check on $notp11 (exit $rc): $out"
fi

out=$(pkcs11-tool --module "$lib" -L 2>&1) || true
if grep -q "token label *: *$label" <<<"$out"; then ok "pkcs11-tool on the installed library lists token $label"; else bad "pkcs11-tool on the installed library: $out"; fi

# p11-kit with the installed example as its only module file (p11-kit reads
# no user configuration as root: a mount namespace of our own shows it the
# directory).
mods=$root/modules
mkdir -p "$mods"
sed -e "s|^module: .*|module: $lib|" -e "s|^x-init-reserved: .*|x-init-reserved: module=$P11ISOLATE_MODULE|" "$example" >"$mods/p11isolate.module"
if (($(id -u) == 0)); then ns=(unshare -m); else ns=(unshare -r -m); fi
out=$(env -u P11ISOLATE_MODULE "${ns[@]}" sh -c 'mount --bind "$1" /usr/share/p11-kit/modules && if [ -d /etc/pkcs11/modules ]; then mount --bind "$1" /etc/pkcs11/modules; fi && p11-kit list-modules' sh "$mods" 2>&1) || true
if grep -qx "p11isolate: $lib" <<<"$out" && grep -qx "    token: $label" <<<"$out"; then
	ok "p11-kit list-modules with the installed module file: module p11isolate, token $label (the vendor named by x-init-reserved)"
else
	bad "p11-kit list-modules with the installed module file: $out"
fi
exit $fail
