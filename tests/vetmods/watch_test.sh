#!/usr/bin/env bash
# watch_test.sh: does the watch shim (host/watch/watch.c) see what a hostile
# vendor module does, name the right object, and stay silent about the
# application itself?
#
# Builds the shim, tests/vetmods/hostile.c and tests/vetmods/load.c into a
# temporary directory, makes a throwaway SoftHSM2 token, runs
#   load libhostile.so
# with the shim preloaded, and checks its event lines.  Exits non-zero
# naming every check that failed.
set -euo pipefail

here=$(cd -- "$(dirname -- "$0")" && pwd -P)
root=$(cd -- "$here/../.." && pwd -P)
tmp=$(mktemp -d)
trap 'rm -rf -- "$tmp"' EXIT

cflags=(-std=gnu11 -O2 -g -Wall -Wextra -Werror)
gcc "${cflags[@]}" -fPIC -shared -o "$tmp/libp11isolate-watch.so" \
	"$root/host/watch/watch.c" -ldl -lpthread
gcc "${cflags[@]}" -fPIC -shared -I/usr/include/p11-kit-1 -o "$tmp/libhostile.so" \
	"$here/hostile.c" -ldl -lpthread
gcc "${cflags[@]}" -I/usr/include/p11-kit-1 -o "$tmp/load" "$here/load.c" -ldl

eval "$("$root/softhsm-testenv/new-token" "$tmp/token" watchtest 12345678 87654321 2>"$tmp/token.log")"
if [[ -z ${SOFTHSM2_CONF:-} ]]; then
	echo "FAIL: softhsm-testenv/new-token made no token:"
	cat "$tmp/token.log"
	exit 1
fi

# HOSTILE_MARKER's value must never show up.  A distinctive string rather
# than a single letter, so that the check means something.
marker=marker-value-$$-b7e1

run() { # run OUT ERR [VAR=VALUE...]: load libhostile.so in a controlled env
	local out=$1 err=$2
	shift 2
	env -u AWS_SECRET_ACCESS_KEY -u P11I_WATCH -u LD_PRELOAD \
		HOME="$tmp" HOSTILE_MARKER="$marker" P11ISOLATE_PROBE_SELF=1 \
		SOFTHSM2_CONF="$SOFTHSM2_CONF" "$@" \
		"$tmp/load" "$tmp/libhostile.so" >"$out" 2>"$err"
}

status=0
run "$tmp/on.out" "$tmp/on.err" LD_PRELOAD="$tmp/libp11isolate-watch.so" P11I_WATCH=1 ||
	{ echo "FAIL: load exited $? with the shim armed"; status=1; }
run "$tmp/off.out" "$tmp/off.err" LD_PRELOAD="$tmp/libp11isolate-watch.so" ||
	{ echo "FAIL: load exited $? with the shim loaded but not armed"; status=1; }
run "$tmp/zero.out" "$tmp/zero.err" LD_PRELOAD="$tmp/libp11isolate-watch.so" P11I_WATCH=0 ||
	{ echo "FAIL: load exited $? with P11I_WATCH=0"; status=1; }

echo "--- load's stdout (armed)"
cat "$tmp/on.out"
echo "--- events"
cat "$tmp/on.err"
echo "---"

python3 - "$tmp" "$marker" "$SOFTHSM2_CONF" <<'EOF' || status=1
import json, sys

tmp, marker, conf = sys.argv[1:4]
failed = []

def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failed.append(what)

def read(name):
    with open(f"{tmp}/{name}", encoding="utf-8", errors="replace") as f:
        return f.read()

err = read("on.err")
events = []
for line in err.splitlines():
    if not line.startswith("p11isolate-watch "):
        continue
    try:
        events.append(json.loads(line[len("p11isolate-watch "):]))
    except ValueError as e:
        check(False, f"line is JSON: {line!r} ({e})")
check(len(events) > 0 and events[0].get("ev") == "watching" and isinstance(events[0].get("pid"), int),
      'armed run printed events, first {"ev":"watching","pid":N}')

def by_is(ev, lib):
    return ev.get("by", "").endswith("/" + lib)

def seen(lib, what, **want):
    hits = [e for e in events if by_is(e, lib) and all(e.get(k) == v for k, v in want.items())]
    check(len(hits) > 0, f"{what} by {lib}")

H = "libhostile.so"
seen(H, "open(/etc/passwd) for reading", ev="open", path="/etc/passwd", flags="r", ok=True)
seen(H, "connect(127.0.0.1:7)", ev="connect", addr="127.0.0.1:7")
seen(H, "getenv HOME (set)", ev="getenv", name="HOME", set=True)
seen(H, "getenv AWS_SECRET_ACCESS_KEY (unset)", ev="getenv", name="AWS_SECRET_ACCESS_KEY", set=False)
seen(H, "getenv HOSTILE_MARKER (set)", ev="getenv", name="HOSTILE_MARKER", set=True)
seen(H, "fork", ev="fork", ok=True)
seen(H, "thread", ev="thread", ok=True)
seen(H, "signal SIGUSR1 handler", ev="signal", sig="SIGUSR1", handler="function")
seen(H, "dlopen of SoftHSM2", ev="dlopen", path="/usr/lib/softhsm/libsofthsm2.so", ok=True)
# Attribution through a library the module loaded: SoftHSM2 reads its config.
seen("libsofthsm2.so", "open of SOFTHSM2_CONF", ev="open", path=conf, ok=True)

check(not any(e.get("ev") == "getenv" and e.get("name") == "P11ISOLATE_PROBE_SELF" for e in events),
      "the loader's own getenv(P11ISOLATE_PROBE_SELF) is not reported")
check(not any(e.get("ev") == "open" and e.get("path") == "/dev/null" for e in events),
      "the loader's own open(/dev/null) is not reported")
check(not any(by_is(e, "load") or by_is(e, "libp11isolate-watch.so") for e in events),
      "nothing is attributed to the executable or the shim")
names = [e["name"] for e in events if e.get("ev") == "getenv"]
check(len(names) == len(set(names)), "each getenv name is reported once")
check(marker not in err, "HOSTILE_MARKER's value appears nowhere")

out = read("on.out")
check("C_Initialize: 0x00000000" in out, "C_Initialize through libhostile.so returned CKR_OK")
check("LD_PRELOAD visible: no" in out, "LD_PRELOAD is hidden from the process")
check("P11I_WATCH visible: no" in out, "P11I_WATCH is hidden from the process")

for name, what in (("off", "not set"), ("zero", "0")):
    check("p11isolate-watch" not in read(f"{name}.err"), f"nothing printed with P11I_WATCH {what}")
    check("C_Initialize: 0x00000000" in read(f"{name}.out"), f"C_Initialize OK with P11I_WATCH {what}")

if failed:
    print(f"{len(failed)} check(s) failed: " + "; ".join(failed))
    sys.exit(1)
print("all checks passed")
EOF

exit "$status"
