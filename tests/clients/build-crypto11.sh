# shellcheck shell=bash
# tests/clients/build-crypto11.sh: sourced after lib.sh by the scripts that
# run the crypto11 program. Builds tests/clients/crypto11 into
# build/tests/crypto11-check (go build caches, so this is quick when nothing
# changed) and sets C11 to its path.

# tmp, SCRIPT and the check functions come from lib.sh.
# shellcheck disable=SC2154
GO=${GO:-}
if [[ -z $GO ]]; then
	if command -v go >/dev/null 2>&1; then
		GO=go
	elif [[ -x /usr/local/go/bin/go ]]; then
		GO=/usr/local/go/bin/go
	else
		echo "FAIL - $SCRIPT: go is missing: install Go (see README.md) or set GO=/path/to/go" >&2
		exit 2
	fi
fi
C11=$ROOT/build/tests/crypto11-check
mkdir -p "$ROOT/build/tests"
if ! "$GO" build -o "$C11" ./tests/clients/crypto11 >"$tmp/go-build.out" 2>&1; then
	fail "go build ./tests/clients/crypto11 (github.com/ThalesGroup/crypto11 must be in go.mod)"
	details "$tmp/go-build.out" 12
	finish
fi
