#!/usr/bin/env bash
# p11isolate vet on real modules, each report checked for what must be in it:
#   SoftHSM2       a clean report (exit 0), its conformance verdicts the same
#                  as the driver's run against SoftHSM2 loaded directly
#   faultmod       each fault in its section: a crash, a hang, a lie and an
#                  undefined code under Robustness; a fork and a thread
#                  under Behaviour
#   hostile        a module that opens /etc/passwd, connects to a local
#                  port, reads environment variables, forks, starts a thread
#                  and installs a signal handler: each under Behaviour
#   badmod         badly built and badly behaved: each of its faults found
# Needs the build (make), SoftHSM2 and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SOFTHSM=${P11TEST_SOFTHSM:-/usr/lib/softhsm/libsofthsm2.so}
cmd=$ROOT/build/p11isolate
for f in "$cmd" build/p11isolate-vet-driver build/libp11isolate-watch.so build/tests/libfaultmod.so \
	build/tests/libhostile.so build/tests/libbadmod.so "$SOFTHSM"; do
	[[ -e $f ]] || { echo "FAIL - $f is missing: run make and make deps"; exit 1; }
done
command -v python3 >/dev/null || { echo "FAIL - python3 is missing: run 'make deps'"; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/p11isolate-vet.XXXXXX")
trap 'rm -rf "$work"' EXIT
fail=0
while read -r v; do unset "$v"; done < <(compgen -v P11ISOLATE_; compgen -v FAULTMOD_)
unset SOFTHSM2_CONF

pin=VetPin-3k8 so_pin=VetSo-9q2
printf '%s\n' "$pin" >"$work/pin"
conf=$(softhsm-testenv/new-token "$work/token" vet "$so_pin" "$pin" 2>"$work/token.err") ||
	{ cat "$work/token.err"; echo "FAIL - cannot create a SoftHSM2 token"; exit 1; }
eval "$conf"

# vet NAME EXPECTED_STATUS ARGS... runs p11isolate vet into $work/NAME.{json,md}.
vet() {
	local name=$1 want=$2 rc=0
	shift 2
	"$cmd" vet --json "$work/$name.json" --markdown "$work/$name.md" "$@" >"$work/$name.out" 2>&1 || rc=$?
	if [[ $rc != "$want" ]]; then
		echo "FAIL - vet $name: exit status $rc, want $want"
		sed 's/^/#   /' "$work/$name.out" | tail -20
		fail=1
		return 1
	fi
	echo "ok   - vet $name: exit status $rc"
}

# check NAME PYTHON: asserts over the report r (the JSON) and md (the Markdown).
check() {
	python3 - "$work/$1.json" "$work/$1.md" "$1" "$2" <<'EOF' || fail=1
import json, sys
r = json.load(open(sys.argv[1])); md = open(sys.argv[2]).read(); name = sys.argv[3]
ok = True
def want(cond, what):
    global ok
    print(("ok   - " if cond else "FAIL - ") + f"{name}: {what}")
    ok = ok and bool(cond)
rb = r["calls"]["robustness"]; out = rb["outcomes"]; bh = r["behaviour"]; conf = r["calls"]["conformance"]
def findings(outcome, fn=None):
    return [f for f in rb["findings"] if f["outcome"] == outcome and (fn is None or f["function"] == fn)]
exec(sys.argv[4])
sys.exit(0 if ok else 1)
EOF
}

# 1. SoftHSM2: a clean report on a throwaway token of its own.
if vet softhsm2 0 --throwaway-token --calls 3000 "$SOFTHSM"; then
	sha=$(sha256sum "$SOFTHSM" | cut -d' ' -f1)
	check softhsm2 "
want(r['identity']['sha256'] == '$sha', 'the SHA-256 is the file\'s')
want(r['identity']['hardening']['relro'] == 'full' and r['identity']['hardening']['nx_stack'], 'full RELRO and an NX stack')
fails = [c['id'] for c in conf if c['verdict'] == 'fail']
want(not fails, f'no conformance rule fails: {fails}')
want(sum(c['verdict'] == 'pass' for c in conf) >= 15, f\"{sum(c['verdict'] == 'pass' for c in conf)} conformance rules pass (want >= 15)\")
want(rb['calls'] >= 100, f\"{rb['calls']} robustness calls\")
want(all(out.get(k, 0) == 0 for k in ('crash', 'hang', 'lie', 'undefined')), f'no crash, hang, lie or undefined code: {out}')
slot = r['calls']['slot']
mechs = [m['type'] for s in r['calls']['slots'] if s['id'] == slot for m in s['mechanisms']]
want(0x1041 in mechs and 0x1 in mechs, 'the inventory lists CKM_ECDSA and CKM_RSA_PKCS')
want(bh['watched'] and any(f['path'].endswith('softhsm2.conf') and f['by'].endswith('libsofthsm2.so') for f in bh['files']),
     'Behaviour: SoftHSM2 opened its configuration file')
want(not bh['network'] and not bh['processes'], 'Behaviour: no network, no process')
l = r['calls']['leaks']
want(l['calls'] == 3000 and len(l['fds']) == 2 and l['fds'][1] == l['fds'][0], f\"no fd grew over the leak check: {l['fds']}\")
want(len(r['calls']['cost']) >= 3, 'Cost: latencies measured')
want(r['sandbox'].startswith('sandbox='), 'the sandbox line')
want(r['calls']['interfaces'] == [{'name': 'PKCS 11', 'version': '2.40', 'flags': 0}], 'Identity: the one interface of a 2.40 module: ' + str(r['calls']['interfaces']))
want('| interfaces (through the proxy) | PKCS 11 2.40 |' in md, 'the Markdown names the interfaces offered')
for sec in ('## Identity', '## Inventory', '## Conformance', '## Robustness', '## Behaviour while it ran', '## Cost'):
    want(sec in md, f'the Markdown has {sec}')
want('$pin' not in md and '$so_pin' not in md and '$pin' not in json.dumps(r), 'no PIN in the reports')
"
fi

# The same conformance rules on SoftHSM2 loaded directly, with the driver:
# every verdict the proxy gave is the one the module gives alone.
if vet softhsm2-token 0 --pin-file "$work/pin" --env SOFTHSM2_CONF --calls 200 "$SOFTHSM"; then
	VET_PIN=$pin VET_SKIP=robustness,leaks,cost build/p11isolate-vet-driver "$SOFTHSM" >"$work/direct.json" 2>"$work/direct.err" ||
		{ cat "$work/direct.err"; echo "FAIL - the vetting driver on SoftHSM2 directly"; fail=1; }
	check softhsm2-token "
d = {c['id']: c for c in json.load(open('$work/direct.json'))['conformance']}
p = {c['id']: c for c in conf}
want(set(d) == set(p) and len(d) >= 15, f'the same {len(d)} rules directly and through the proxy')
diff = [(k, d[k]['verdict'], p[k]['verdict']) for k in d if k in p and d[k]['verdict'] != p[k]['verdict']]
want(not diff, f'every verdict is the one SoftHSM2 gives loaded directly: {diff}')
"
fi

# 2. Each fault of faultmod in its section.
faults=(
	"segv:C_Sign|crash|want(out['crash'] >= 1 and findings('crash', 'C_Sign'), 'Robustness: the crash in C_Sign')"
	"hang:C_FindObjects|hang|want(out['hang'] >= 1 and findings('hang', 'C_FindObjects'), 'Robustness: the hang in C_FindObjects')"
	"biglen:C_GetAttributeValue|lie|want(out['lie'] >= 1 and findings('lie', 'C_GetAttributeValue'), 'Robustness: the lie of C_GetAttributeValue')"
	"rv=0x7ffffff0:C_GenerateRandom|undefined|want(out['undefined'] >= 1 and findings('undefined', 'C_GenerateRandom'), 'Robustness: the undefined code of C_GenerateRandom')"
	"fork:C_OpenSession|process|want(any(e['ev'] == 'fork' and e['by'].endswith('libfaultmod.so') for e in bh['processes']), 'Behaviour: the fork by libfaultmod.so')"
	"thread:C_Login|thread|want(bh['threads_started'] >= 1, 'Behaviour: the thread it started')"
)
for f in "${faults[@]}"; do
	IFS='|' read -r spec category assertion <<<"$f"
	name=fault-${spec%%:*}
	name=${name%%=*}
	if FAULTMOD_MODULE=$SOFTHSM FAULTMOD_FAULT=$spec vet "$name" 1 --pin-file "$work/pin" --env 'SOFTHSM2_CONF,FAULTMOD_*' \
		--calls 300 --timeout 2s --fail-on "$category" build/tests/libfaultmod.so; then
		check "$name" "want(r['policy']['failed'] == ['$category'], f\"--fail-on $category fails: {r['policy']['failed']}\")
$assertion"
	fi
done

# Every other way faultmod makes a vendor die or hang, in C_Sign during the
# conformance checks: each is a crash or a hang under Robustness.
for kind in hlt bus ill fpe abort stack kill exit0 exit3 spin oom; do
	category=crash
	[[ $kind == spin || $kind == oom ]] && category=hang # oom: malloc fails under the memory limit, and it retries
	if FAULTMOD_MODULE=$SOFTHSM FAULTMOD_FAULT=$kind:C_Sign vet "kind-$kind" 1 --pin-file "$work/pin" \
		--env 'SOFTHSM2_CONF,FAULTMOD_*' --skip robustness,leaks,cost --timeout 2s --fail-on "$category" \
		build/tests/libfaultmod.so; then
		check "kind-$kind" "want(findings('$category', 'C_Sign'), 'Robustness: the $category in C_Sign ($kind)')"
	fi
done

# 3. The hostile module: what it did, under Behaviour.
if HOSTILE_MODULE=$SOFTHSM HOSTILE_MARKER=vet-marker-71 vet hostile 1 --pin-file "$work/pin" \
	--env 'SOFTHSM2_CONF,HOSTILE_*,HOME' --calls 300 --fail-on network,process,thread,signal build/tests/libhostile.so; then
	check hostile "
by = lambda e: e['by'].endswith('libhostile.so')
want(any(f['path'] == '/etc/passwd' and by(f) for f in bh['files']), 'Behaviour: /etc/passwd opened, outside the module\'s directory')
want(any(e['addr'] == '127.0.0.1:7' and by(e) for e in bh['network']), 'Behaviour: the connection to 127.0.0.1:7 tried')
want({'HOME', 'AWS_SECRET_ACCESS_KEY', 'HOSTILE_MARKER'} <= set(bh['environment_read']), f\"Behaviour: the environment variables read: {bh['environment_read']}\")
want(any(e['ev'] == 'fork' and by(e) for e in bh['processes']) and bh['threads_started'] >= 1, 'Behaviour: the fork and the thread')
want(any(e['sig'] == 'SIGUSR1' and by(e) for e in bh['signal_handlers']), 'Behaviour: the SIGUSR1 handler')
want(sorted(r['policy']['failed']) == ['network', 'process', 'signal', 'thread'], f\"the policy fails on each: {r['policy']['failed']}\")
want('vet-marker-71' not in json.dumps(r) and 'vet-marker-71' not in md, 'no environment value in the reports')
"
fi

# 4. The badly built, badly behaved module: each of its faults found.
if BADMOD_MODULE=$SOFTHSM vet badmod 1 --pin-file "$work/pin" --env 'SOFTHSM2_CONF,BADMOD_*' --calls 5000 --timeout 2s \
	--fail-on crash,hang,lie,undefined,conformance,hardening,exports,leak build/tests/libbadmod.so; then
	check badmod "
h = r['identity']['hardening']
want(h['relro'] == 'none' and not h['nx_stack'] and not h['stack_protector'], 'Identity: no RELRO, an executable stack, no stack protector')
want('/tmp/badmod' in (r['identity'].get('rpath') or []) + (r['identity'].get('runpath') or []), 'Identity: the RPATH /tmp/badmod')
want('badmod_debug_dump' in r['identity']['other_exports'], 'Identity: the extra export badmod_debug_dump')
want(findings('crash', 'C_GetSlotInfo'), 'Robustness: the crash of C_GetSlotInfo on slot 0x10000')
want(findings('hang', 'C_FindObjectsInit'), 'Robustness: the hang of C_FindObjectsInit on a long template')
want(findings('lie', 'C_GetAttributeValue'), 'Robustness: the lie of C_GetAttributeValue')
want(findings('undefined', 'C_GenerateRandom'), 'Robustness: the undefined code of C_GenerateRandom(0)')
fails = {c['id']: c for c in conf if c['verdict'] == 'fail'}
want(any('sign' in k for k in fails), f'Conformance: the C_Sign length query fails: {sorted(fails)}')
want('session-handle-closed-close' in fails, f'Conformance: C_CloseSession on a closed session\'s handle fails: {sorted(fails)}')
l = r['calls']['leaks']
want(l['fds'][1] > l['fds'][0] and l['rss_kib'][1] - l['rss_kib'][0] > 1024, f\"Behaviour: the fd and memory leaks: fds {l['fds']}, rss {l['rss_kib']}\")
want(set(r['policy']['failed']) == {'crash', 'hang', 'lie', 'undefined', 'conformance', 'hardening', 'exports', 'leak'}, f\"every category fails: {r['policy']['failed']}\")
"
fi
if [[ -n ${VET_KEEP_REPORTS:-} ]]; then
	mkdir -p "$VET_KEEP_REPORTS" && cp "$work"/*.md "$work"/*.json "$VET_KEEP_REPORTS"/
fi
exit $fail
