# p11isolate: `make` builds build/libp11isolate.so; `make demo` shows it
# working; `make test` runs every test. Both install what they need first.

GO       ?= go
CC       ?= gcc
BUILD    := build
CFLAGS_C := -std=gnu11 -O2 -g -Wall -Wextra -Werror -I/usr/include/p11-kit-1
PREFIX   ?= /usr/local
LIBDIR   ?= $(PREFIX)/lib/p11isolate

HOST_BIN := proxy/hostimage/p11isolate-host
LIB      := $(BUILD)/libp11isolate.so
CMD      := $(BUILD)/p11isolate
PROBE    := $(BUILD)/p11isolate-probe
VETDRV   := $(BUILD)/p11isolate-vet-driver
WATCH    := $(BUILD)/libp11isolate-watch.so
VETMODS  := $(BUILD)/tests/libhostile.so $(BUILD)/tests/libbadmod.so
BINDIR   ?= $(PREFIX)/bin
DATADIR  ?= $(PREFIX)/share/p11isolate
VERSION  ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
FAULTMOD := $(BUILD)/tests/libfaultmod.so
DRIVER   := $(BUILD)/tests/p11test
MOD32    := $(BUILD)/tests/libmod32.so
SOURCES  := $(shell find proxy host cshim internal cmd -name '*.go' -o -name '*.c' -o -name '*.h' -o -name '*.inc' -o -name '*.map' | LC_ALL=C sort) go.mod go.sum
# The proxy and host check in their handshake that they come from one build.
BUILD_ID := $(shell cat $(SOURCES) | sha256sum | cut -c1-16)
# Go's build cache does not see a change to a C file that a package's C
# includes from elsewhere (proxy/plane.c and host/spin.c include cshim/):
# the sources' hash in the C flags of the host and the tests makes it.
CGO_ENV := CGO_CFLAGS="-O2 -g -DP11I_SOURCES=$(BUILD_ID)"

# Debian packages the build, the tests and the demo use.
APT_PACKAGES := gcc make libp11-kit-dev p11-kit softhsm2 opensc opensc-pkcs11 p11-kit-modules openssl libnss3 libnss3-dev libnss3-tools default-jdk-headless \
	libengine-pkcs11-openssl gnutls-bin python3-pykcs11

.PHONY: all deps demo test unit integration vet fuzz bench bench-baseline isolation install clean generate

all: $(LIB) $(CMD) $(PROBE) $(VETDRV) $(WATCH)

deps:
	@missing=""; for p in $(APT_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

$(HOST_BIN): $(SOURCES)
	$(CGO_ENV) $(GO) build -trimpath -ldflags "-s -w -X main.buildID=$(BUILD_ID)" -o $@ ./host

# The host image is assembled into the library by cshim/image.c (.incbin),
# with its SHA-256 and the build ID: C has them from the moment the library
# is loaded, before any Go runs. The hash in the flags also tells Go's build
# cache when the image changed.
$(LIB): $(HOST_BIN) $(SOURCES)
	@mkdir -p $(BUILD)
	sha=$$(sha256sum $(HOST_BIN) | cut -d' ' -f1) && \
	CGO_CFLAGS="-O2 -g '-DP11I_HOST_IMAGE=\"$(CURDIR)/$(HOST_BIN)\"' '-DP11I_HOST_SHA256=\"$$sha\"' '-DP11I_BUILD_ID=\"$(BUILD_ID)\"'" \
	$(GO) build -trimpath -buildmode=c-shared \
		-ldflags "-s -w -extldflags '-Wl,--version-script=$(CURDIR)/cshim/exports.map -Wl,-z,nodelete'" \
		-o $@ ./proxy
	@rm -f $(BUILD)/libp11isolate.h
	cp $(HOST_BIN) $(BUILD)/p11isolate-host

# The operator's command, and the helper it loads the library with (a Go
# program cannot load the library's Go runtime into its own).
$(CMD): $(SOURCES)
	@mkdir -p $(BUILD)
	$(GO) build -trimpath -ldflags "-s -w -X main.version=$(VERSION) -X main.buildID=$(BUILD_ID)" -o $@ ./cmd/p11isolate

$(PROBE): cmd/p11isolate-probe/probe.c
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS_C) -o $@ $< -ldl

# p11isolate vet's driver (it loads the library and makes the calls) and
# the shim that reports the vendor's behaviour, preloaded into the host of
# a vetting run only.
$(VETDRV): cmd/p11isolate-vet/driver.c cshim/pkcs11_3x.h
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS_C) -Icshim -o $@ $< -ldl -lpthread

$(WATCH): host/watch/watch.c
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS_C) -fPIC -shared -o $@ $< -ldl -lpthread

# The modules vet is tested on: one that does what a reviewer must see
# (files, network, environment, processes, signals), one badly built and
# badly behaved (built without hardening on purpose).
$(BUILD)/tests/libhostile.so: tests/vetmods/hostile.c tests/vetmods/forward.h
	@mkdir -p $(BUILD)/tests
	$(CC) $(CFLAGS_C) -fPIC -shared -o $@ $< -ldl -lpthread

$(BUILD)/tests/libbadmod.so: tests/vetmods/bad.c tests/vetmods/forward.h
	@mkdir -p $(BUILD)/tests
	$(CC) -std=gnu11 -O0 -g -fPIC -shared -fno-stack-protector -U_FORTIFY_SOURCE -Wl,-z,norelro -Wl,-z,execstack \
		-Wl,-rpath,/tmp/badmod -Wall -Wextra -Werror -I/usr/include/p11-kit-1 -o $@ $< -ldl -lpthread

$(FAULTMOD): tests/faultmod/faultmod.c tests/common/tls_prf.h
	@mkdir -p $(BUILD)/tests
	$(CC) $(CFLAGS_C) -fPIC -shared -o $@ $< -ldl -lpthread

# The PKCS#11 3.2 test module (tests/mod32): no packaged module has 3.2.
$(MOD32): tests/mod32/mod32.c cshim/sha256.c cshim/pkcs11_3x.h
	@mkdir -p $(BUILD)/tests
	$(CC) $(CFLAGS_C) -Icshim -fPIC -shared -o $@ tests/mod32/mod32.c cshim/sha256.c -lpthread

$(DRIVER): tests/driver/p11test.c
	@mkdir -p $(BUILD)/tests
	$(CC) $(CFLAGS_C) -o $@ $< -ldl -lpthread

generate:
	$(GO) generate ./...

# cgo's own generated code needs -Wno-unused-parameter; the hand-written C
# is held to the full warning set here.
vet: $(HOST_BIN)
	$(CC) $(CFLAGS_C) -fsyntax-only cshim/shim.c cshim/spawn.c cshim/mp.c cshim/plane.c cshim/handles.c cshim/sessions.c host/host.c host/invoke_gen.c host/spin.c cmd/p11isolate-probe/probe.c host/watch/watch.c tests/vetmods/hostile.c tests/vetmods/load.c
	@# The library's C as it is compiled: one unit including the rest of cshim/.
	$(CC) $(CFLAGS_C) -fsyntax-only proxy/plane.c
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: run gofmt -w on the files above"; exit 1; }
	$(GO) vet ./...

unit: $(HOST_BIN)
	$(CGO_ENV) $(GO) test ./...

# Fuzzing runs of the reply decoder and the wire decoder; their seed corpora
# run in every `make unit`.
fuzz: $(HOST_BIN)
	$(CGO_ENV) $(GO) test ./proxy -run '^$$' -fuzz FuzzReply -fuzztime 30s
	$(CGO_ENV) $(GO) test ./internal/wire -run '^$$' -fuzz FuzzDecoder -fuzztime 20s
	$(CGO_ENV) $(GO) test ./internal/cwire -run '^$$' -fuzz FuzzDecoders -fuzztime 20s
	$(CGO_ENV) $(GO) test ./proxy -run '^$$' -fuzz FuzzRingReply -fuzztime 20s
	$(CGO_ENV) $(GO) test ./internal/cwire -run '^$$' -fuzz FuzzSHA256 -fuzztime 10s

integration: $(LIB) $(CMD) $(PROBE) $(VETDRV) $(WATCH) $(VETMODS) $(FAULTMOD) $(DRIVER) $(MOD32)
	tests/run.sh
	tests/bench/run.sh --quick

# The hostile-module test of the sandbox profiles (also part of tests/run.sh).
isolation: $(LIB)
	tests/isolation/run.sh

# Direct vs. libp11isolate.so vs. p11-kit's RPC, interleaved, with ratios.
bench: $(LIB)
	tests/bench/run.sh

# The same, beside the build of BASELINE (a commit; default the last one),
# interleaved in one run: make bench-baseline BASELINE=<rev>.
BASELINE ?= HEAD
bench-baseline: $(LIB)
	tests/bench/baseline.sh $(BASELINE)

test: deps
	$(MAKE) vet unit integration

demo: deps
	$(MAKE) $(LIB) $(FAULTMOD)
	tests/demo.sh

install: $(LIB) $(CMD) $(PROBE) $(VETDRV) $(WATCH)
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(DATADIR)
	install -m 0644 $(LIB) $(DESTDIR)$(LIBDIR)/libp11isolate.so
	install -m 0755 $(BUILD)/p11isolate-host $(DESTDIR)$(LIBDIR)/p11isolate-host
	install -m 0755 $(PROBE) $(DESTDIR)$(LIBDIR)/p11isolate-probe
	install -m 0755 $(VETDRV) $(DESTDIR)$(LIBDIR)/p11isolate-vet-driver
	install -m 0644 $(WATCH) $(DESTDIR)$(LIBDIR)/libp11isolate-watch.so
	install -m 0755 $(CMD) $(DESTDIR)$(BINDIR)/p11isolate
	printf '%s\n' '# p11-kit module file: copy to /etc/pkcs11/modules/p11isolate.module and name the vendor module.' \
		'module: $(LIBDIR)/libp11isolate.so' 'x-init-reserved: module=/path/to/vendor-pkcs11.so' \
		> $(DESTDIR)$(DATADIR)/p11isolate.module.example
	chmod 0644 $(DESTDIR)$(DATADIR)/p11isolate.module.example

clean:
	rm -rf $(BUILD) $(HOST_BIN)
